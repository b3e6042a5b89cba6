/**
 * Coverage blockers from the static call graph (src/contracts/callgraph.ts, read by src/dwarf/callsites.ts): a call site in a covered
 * function (one with a PC seen) whose callee has no PC seen. With libFuzzer's PC table the block
 * holding a call has a PC of its own in most builds, and it is covered exactly when the call ran,
 * so the site's own PC is reported (`pcSeen`) rather than required: false is the usual case (a
 * condition before the call was never met), true means the callee was entered but never reached
 * a PC of its own (it crashed first, or its PCs are elsewhere). Its weight is what lies behind it: the uncovered
 * functions reachable (through uncovered functions only) from its callee and from no other
 * frontier call site, i.e. from no call site of a covered function to another uncovered callee.
 * Call sites of one callee share it, so two covered paths into one unsolved function both show
 * it, with the same weight. Cycles are walked once (a visited set per walk).
 *
 * Pure: no I/O, no hub.
 */
import type { CallSites } from '../contracts/callgraph.js';
import { NONE, type SourceIndex } from '../contracts/source-index.js';
import { isSeen } from '../contracts/seen.js';
import { sourcePathOf } from '../contracts/paths.js';

export interface Blocker {
  /** The calling function's name, and where the call site's PC is. */
  caller: string;
  file: string;
  line: number;
  column: number;
  /** The uncovered function called. */
  callee: string;
  /** The call site's PC (index into the target's PC list: the nearest PC before the call), and whether it is seen. */
  pc: number;
  pcSeen: boolean;
  /** Uncovered PCs and functions reachable only through this callee (itself included when so). */
  uncoveredBehind: number;
  functionsBehind: number;
}

/** GET /api/targets/:id/blockers: heaviest first. The page reads it as is. */
export interface BlockersAnswer {
  id: string;
  seq: number;
  callGraph: 'dwarf' | 'none';
  /** Why there is no call graph, when it is not the build's (a server without a call graph source). */
  reason?: string;
  blockers: Blocker[];
}

export function findBlockers(index: SourceIndex, seen: Uint8Array, pcsLen: number, cs: CallSites): Blocker[] {
  const nFn = index.functions.names.length;
  const n = Math.min(pcsLen, index.pcFunction.length);
  const pcsOf = new Uint32Array(nFn), seenOf = new Uint32Array(nFn);
  for (let pc = 0; pc < n; pc++) {
    const f = index.pcFunction[pc]!;
    if (f === NONE || f >= nFn) continue;
    pcsOf[f]!++;
    if (isSeen(seen, pc)) seenOf[f]!++;
  }
  const covered = (f: number) => seenOf[f]! > 0;
  // Out-edges per function (callees with PCs here), as CSR.
  const m = cs.caller.length;
  const valid = (i: number) => {
    const a = cs.caller[i]!, b = cs.callee[i]!;
    return a < nFn && b !== NONE && b < nFn;
  };
  const start = new Uint32Array(nFn + 1);
  for (let i = 0; i < m; i++) if (valid(i)) start[cs.caller[i]! + 1]!++;
  for (let f = 0; f < nFn; f++) start[f + 1]! += start[f]!;
  const to = new Uint32Array(start[nFn]!);
  const fill = start.slice(0, nFn);
  for (let i = 0; i < m; i++) if (valid(i)) to[fill[cs.caller[i]!]!++] = cs.callee[i]!;

  /** Uncovered functions reachable from f (an uncovered one) through uncovered functions, f included. */
  const mark = new Uint32Array(nFn);
  let stamp = 0;
  const reach = (f: number, visit: (g: number) => void) => {
    stamp++;
    const stack = [f];
    mark[f] = stamp;
    while (stack.length) {
      const g = stack.pop()!;
      visit(g);
      for (let e = start[g]!; e < start[g + 1]!; e++) {
        const h = to[e]!;
        if (mark[h] === stamp || covered(h)) continue;
        mark[h] = stamp;
        stack.push(h);
      }
    }
  };
  // Frontier callees: uncovered functions called from a covered one (reached or not).
  const frontier = new Set<number>();
  for (let i = 0; i < m; i++) if (valid(i) && covered(cs.caller[i]!) && !covered(cs.callee[i]!)) frontier.add(cs.callee[i]!);
  // How many frontier callees reach each uncovered function.
  const reachedBy = new Uint32Array(nFn);
  for (const c of frontier) reach(c, (g) => reachedBy[g]!++);
  const weight = new Map<number, { pcs: number; fns: number }>();
  for (const c of frontier) {
    const w = { pcs: 0, fns: 0 };
    reach(c, (g) => { if (reachedBy[g] === 1) { w.pcs += pcsOf[g]! - seenOf[g]!; w.fns++; } });
    weight.set(c, w);
  }
  const out: Blocker[] = [];
  const seenSite = new Set<string>();
  for (let i = 0; i < m; i++) {
    if (!valid(i)) continue;
    const a = cs.caller[i]!, b = cs.callee[i]!, pc = cs.pcIndex[i]!;
    if (!covered(a) || covered(b) || pc >= pcsLen) continue;
    const key = `${pc}:${b}`;
    if (seenSite.has(key)) continue; // two calls of one callee from one block: one site
    seenSite.add(key);
    const w = weight.get(b)!;
    const file = index.pcFile[pc]!;
    out.push({
      caller: index.functions.names[a] ?? '??',
      file: file === NONE ? '??' : sourcePathOf(index, file) || '??',
      line: index.pcLine[pc] ?? 0,
      column: index.pcColumn[pc] ?? 0,
      callee: index.functions.names[b] ?? '??',
      pc,
      pcSeen: isSeen(seen, pc),
      uncoveredBehind: w.pcs,
      functionsBehind: w.fns,
    });
  }
  out.sort((x, y) => y.uncoveredBehind - x.uncoveredBehind || y.functionsBehind - x.functionsBehind || x.file.localeCompare(y.file) || x.line - y.line || x.pc - y.pc);
  return out;
}
