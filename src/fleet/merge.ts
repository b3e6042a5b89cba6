/**
 * The fleet's merge rules for one target, a state-based CRDT (docs/architecture.md, "Fleet"):
 *
 * - seen: a PC is seen when any node saw it (OR of every node's bits);
 * - first seen: per PC the smallest (second, node name) pair any node reported: the time is the
 *   minimum over nodes, and the node with it saw the PC first (equal seconds: the smaller name);
 * - each node's bits only grow (OR), so its `covered` is the number of its bits;
 * - each node's counters are the latest by (incarnation, seq) of its own messages.
 *
 * Every operation here is a join of a semilattice (OR, lexicographic min, max by a total order),
 * hence commutative, associative and idempotent: applying any set of messages, in any order, any
 * number of times, gives the same state. test/fleet/merge.test.ts checks this by permutation.
 *
 * Memory per target: 6 bytes per PC (first second and first node), plus one bit per PC and node.
 */
import { seenBytes, setSeen, isSeen } from '../contracts/seen.js';

export const NO_NODE = 0xffff;

/** A node's counters for one target, with the version that orders them. */
export interface NodeCounters {
  inc: number;
  seq: number;
  nRuns: number;
  uniqueRuns: number;
  runsPerSec: number;
  lastNewAt: number | null;
}

export interface NodeShare {
  name: string;
  /** Index in the target's node table (firstNode holds these). */
  ix: number;
  bits: Uint8Array;
  covered: number;
  /** PCs whose first (second, node) is this node's. */
  first: number;
  counters: NodeCounters | null;
}

/** What one application changed in the union: PCs seen for the first time, and PCs whose first-seen second went down. */
export interface MergeResult {
  pcs: number[];
  secs: number[];
  /** How many of those PCs are new to the union. */
  fresh: number;
}

export class FleetTarget {
  readonly firstSec: Uint32Array;
  readonly firstNode: Uint16Array;
  readonly nodes = new Map<string, NodeShare>();
  private readonly table: NodeShare[] = [];
  covered = 0;

  constructor(readonly id: string, readonly pcsLen: number) {
    this.firstSec = new Uint32Array(pcsLen);
    this.firstNode = new Uint16Array(pcsLen).fill(NO_NODE);
  }

  /** The node's share, created empty when new (at most 65535 nodes per target). */
  node(name: string): NodeShare {
    let n = this.nodes.get(name);
    if (!n) {
      if (this.table.length >= NO_NODE) throw new RangeError(`target ${this.id}: more than ${NO_NODE - 1} nodes`);
      n = { name, ix: this.table.length, bits: new Uint8Array(seenBytes(this.pcsLen)), covered: 0, first: 0, counters: null };
      this.nodes.set(name, n);
      this.table.push(n);
    }
    return n;
  }

  nameOf(ix: number): string | undefined {
    return this.table[ix]?.name;
  }

  /** Merges (pc, second) pairs a node reported; pcs must be < pcsLen and secs > 0 (the decoder checks). */
  apply(name: string, pcs: ArrayLike<number>, secs: ArrayLike<number>, out: MergeResult = { pcs: [], secs: [], fresh: 0 }): MergeResult {
    const n = this.node(name);
    for (let i = 0; i < pcs.length; i++) {
      const pc = pcs[i]!, sec = secs[i]!;
      if (pc >= this.pcsLen || !(sec > 0)) continue;
      if (setSeen(n.bits, pc)) n.covered++;
      const cur = this.firstSec[pc]!;
      if (cur === 0) {
        this.covered++;
        out.fresh++;
      } else {
        if (sec > cur) continue;
        const holder = this.firstNode[pc]!;
        if (sec === cur && (holder === n.ix || this.table[holder]!.name <= name)) continue;
        this.table[holder]!.first--;
      }
      this.firstSec[pc] = sec;
      this.firstNode[pc] = n.ix;
      n.first++;
      out.pcs.push(pc);
      out.secs.push(sec);
    }
    return out;
  }

  /** Sets a node's counters when they are newer than what it has (by incarnation, then seq). Returns whether they changed. */
  setCounters(name: string, c: NodeCounters): boolean {
    const n = this.node(name);
    const cur = n.counters;
    if (cur && (cur.inc > c.inc || (cur.inc === c.inc && cur.seq >= c.seq))) return false;
    n.counters = { ...c };
    return true;
  }

  /** Every seen PC with its first second, ascending (a snapshot of the union). */
  seenPairs(): { pcs: Uint32Array; secs: Uint32Array } {
    const pcs = new Uint32Array(this.covered), secs = new Uint32Array(this.covered);
    let k = 0;
    for (let pc = 0; pc < this.pcsLen; pc++) if (this.firstSec[pc] !== 0) { pcs[k] = pc; secs[k] = this.firstSec[pc]!; k++; }
    return { pcs, secs };
  }

  /** Whether node `name` has seen PC `pc`. */
  nodeSaw(name: string, pc: number): boolean {
    const n = this.nodes.get(name);
    return n !== undefined && isSeen(n.bits, pc);
  }
}
