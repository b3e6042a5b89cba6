/**
 * The fleet as this daemon shows it: every other node's coverage and counters, merged per target
 * (merge.ts) and fed into the registry, which then holds the union (seen bits, earliest
 * first-seen times) and the nodes' share (registry.setFleet / applyFleet).
 *
 * Nothing is merged before its PC table is known to match (docs/architecture.md, "Fleet"):
 * - a target a local fuzzer runs: a message must name its id, which is its PC table's hash
 *   (checked when dispatch read the file), and its number of PCs;
 * - any other target: only once a build record for it verified, its PC table hashing to the id;
 *   then it is added as a remote target with that record's source index. Messages for a target
 *   not yet verified are dropped, and re-read from the stream once it is (replay).
 * Every refusal is counted and logged (at most every 10 s per reason), and changes nothing.
 */
import type { TargetActivity, TargetNode } from '../contracts/hub.js';
import type { FleetShare, TargetRegistry } from '../daemon/registry.js';
import type { Logger } from '../util/log.js';
import { codeOf, ProtocolError } from '../contracts/errors.js';
import { FleetTarget, type MergeResult } from './merge.js';
import { chunkKey, decodeBuild, decodeCoverage, decodeManifest, decodeStatus, type BuildManifest, type CoverageMsg, type FleetNames, type NodeStatus } from './protocol.js';

/** A node that sent nothing for this long (or three of its status intervals) is offline. */
export const OFFLINE_MS = 10_000;
/** New coverage reaches the registry this long after it arrived (batching what comes together). */
const FLUSH_MS = 100;
/** Counters alone (runs, speed) at most this often per target: with hundreds of nodes they move all the time. */
const COUNTERS_MS = 1000;

export interface NodeRecord {
  name: string;
  self: boolean;
  /** Its latest status (by incarnation, seq). */
  status: NodeStatus | null;
  /** When it was last heard of (the stream's time of its latest message, capped at now). */
  lastSeenAt: number | null;
  /** Receive time minus send time of its latest live message, ms (includes clock skew). */
  lagMs: number | null;
}

interface ViewTarget {
  ft: FleetTarget;
  dirty: MergeResult;
  countersMoved: boolean;
  countersAt: number;
  /** Names and online flags last given to the registry: a change is a 'target' event. */
  shape: string;
  /** In the registry (a local target, or a remote one added from its build). */
  registered: boolean;
}

export interface ViewDeps {
  registry: TargetRegistry;
  self: string;
  names: FleetNames;
  maxPcs: number;
  log: Logger;
  /** Reads a stream subject again from the start (for a target that just verified). */
  replay(id: string): void;
  /** Fetches a build record's chunks. */
  fetchChunk(key: string): Promise<Uint8Array | null>;
  /** Own PCs read back from the stream (a previous incarnation's, or this one's). */
  onOwn(m: CoverageMsg): void;
  onOwnStatus(s: NodeStatus): void;
  now?: () => number;
}

export interface Rejections {
  total: number;
  byCode: Record<string, number>;
  last: { code: string; reason: string; at: number } | null;
}

export class FleetView {
  readonly targets = new Map<string, ViewTarget>();
  readonly nodes = new Map<string, NodeRecord>();
  readonly rejected: Rejections = { total: 0, byCode: {}, last: null };
  readonly received = { messages: 0, bytes: 0 };
  private readonly manifests = new Map<string, BuildManifest[]>();
  private readonly fetching = new Set<string>();
  private readonly badBuilds = new Map<string, string>();
  private readonly lastLog = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly d: ViewDeps) {
    this.now = d.now ?? Date.now;
    this.nodes.set(d.self, { name: d.self, self: true, status: null, lastSeenAt: null, lagMs: null });
    // Nodes go offline by time alone: look every second.
    this.ticker = setInterval(() => this.markOnline(), 1000);
    this.ticker.unref();
  }

  // ---------------------------------------------------------------- intake

  private reject(err: unknown, where: string): void {
    const code = codeOf(err) === 'COVD_ERR_INTERNAL' ? 'COVD_ERR_FLEET_BAD_MESSAGE' : codeOf(err);
    const reason = (err as Error).message;
    this.rejected.total++;
    this.rejected.byCode[code] = (this.rejected.byCode[code] ?? 0) + 1;
    this.rejected.last = { code, reason, at: this.now() };
    const key = `${code}:${where}`;
    if (this.now() - (this.lastLog.get(key) ?? 0) < 10_000) return;
    this.lastLog.set(key, this.now());
    this.d.log.warn('fleet: rejected a message; nothing of it is merged', { code, reason, where, rejected: this.rejected.total });
  }

  /** A message of the coverage stream. `at`: the stream's timestamp (ms). */
  onCoverage(subject: string, data: Uint8Array, at: number, live: boolean): void {
    this.received.messages++;
    this.received.bytes += data.length;
    let m: CoverageMsg;
    try {
      m = decodeCoverage(this.d.names, subject, data, this.d.maxPcs);
    } catch (err) {
      return this.reject(err, subject.slice(0, 200));
    }
    const vt = this.verified(m.id, m.pcsLen, m.node, subject);
    if (vt === 'reject') return;
    if (vt === 'wait') return; // (its node counts as heard of once something of it is accepted)
    if (m.node === this.d.self) this.d.onOwn(m);
    this.heard(m.node, at, live ? m.sent : null);
    if (m.pcs.length) vt.ft.apply(m.node, m.pcs, m.secs, vt.dirty);
    this.dirty();
  }

  /** A node status (bucket key = node name). */
  onStatus(key: string, data: Uint8Array, at: number, live: boolean): void {
    this.received.messages++;
    this.received.bytes += data.length;
    let s: NodeStatus;
    try {
      s = decodeStatus(key, data, this.d.maxPcs);
    } catch (err) {
      return this.reject(err, `status ${key.slice(0, 80)}`);
    }
    if (s.node === this.d.self) { this.d.onOwnStatus(s); return; }
    // Every target it names must fit what is known here, or none of the status counts.
    const vts = s.targets.map((t) => this.verified(t.id, t.pcsLen, s.node, `status ${s.node}`));
    if (vts.includes('reject')) return;
    const rec = this.heard(s.node, at, live ? s.sent : null);
    if (rec.status && (rec.status.inc > s.inc || (rec.status.inc === s.inc && rec.status.seq >= s.seq))) return;
    rec.status = s;
    for (let i = 0; i < s.targets.length; i++) {
      const t = s.targets[i]!, vt = vts[i]!;
      if (vt === 'reject' || vt === 'wait') continue;
      if (vt.ft.setCounters(s.node, { inc: s.inc, seq: s.seq, nRuns: t.nRuns, uniqueRuns: t.uniqueRuns, runsPerSec: t.runsPerSec, lastNewAt: t.lastNewAt })) vt.countersMoved = true;
    }
    this.dirty();
  }

  /** A build manifest (bucket key <id>.<build>.m). */
  onManifest(key: string, data: Uint8Array): void {
    let m: BuildManifest;
    try {
      m = decodeManifest(key, data, this.d.maxPcs);
    } catch (err) {
      return this.reject(err, `build ${key.slice(0, 120)}`);
    }
    const list = this.manifests.get(m.id) ?? [];
    if (!list.some((x) => x.sha256 === m.sha256)) list.push(m);
    this.manifests.set(m.id, list);
    this.badBuilds.delete(m.id);
    if (this.wanted.has(m.id)) void this.fetchBuild(m.id);
  }

  private heard(name: string, at: number, sent: number | null): NodeRecord {
    let rec = this.nodes.get(name);
    if (!rec) this.nodes.set(name, (rec = { name, self: false, status: null, lastSeenAt: null, lagMs: null }));
    const when = Math.min(at, this.now());
    if (rec.lastSeenAt === null || when > rec.lastSeenAt) rec.lastSeenAt = when;
    if (sent !== null) rec.lagMs = Math.max(0, this.now() - sent);
    return rec;
  }

  // ---------------------------------------------------------------- verification

  /** Ids referenced by other nodes whose build is not verified yet. */
  private readonly wanted = new Set<string>();

  /**
   * The view of a target whose PC table is known to be the one the message claims; 'reject'
   * (refused: logged and counted), or 'wait' (for the target's build record).
   */
  private verified(id: string, pcsLen: number, node: string, where: string): ViewTarget | 'reject' | 'wait' {
    const reg = this.d.registry;
    const info = reg.info(id);
    if (info) {
      // A local target whose PC table could not be read takes nothing until it can.
      if (info.pcsHash === undefined && !reg.isRemote(id)) return 'wait';
      if (info.pcsHash !== id || info.stats.pcsLen !== pcsLen) {
        this.reject(new ProtocolError(`node ${node} has ${pcsLen} PCs for target ${id}, whose PC table here (${info.pcsHash ?? 'unknown'}) has ${info.stats.pcsLen}`, 'COVD_ERR_FLEET_PCS_MISMATCH'), where);
        return 'reject';
      }
      return this.viewOf(id, pcsLen, true);
    }
    // Not here: wait for a verified build.
    if (!this.wanted.has(id)) {
      this.wanted.add(id);
      void this.fetchBuild(id);
    }
    return 'wait';
  }

  private viewOf(id: string, pcsLen: number, registered: boolean): ViewTarget {
    let vt = this.targets.get(id);
    if (!vt || vt.ft.pcsLen !== pcsLen) {
      vt = { ft: new FleetTarget(id, pcsLen), dirty: { pcs: [], secs: [], fresh: 0 }, countersMoved: false, countersAt: 0, shape: '', registered };
      this.targets.set(id, vt);
    }
    if (registered && !vt.registered) {
      // Back in the registry (a remote target added again after `covd remove`): give it everything.
      vt.registered = true;
      const all = vt.ft.seenPairs();
      for (let i = 0; i < all.pcs.length; i++) { vt.dirty.pcs.push(all.pcs[i]!); vt.dirty.secs.push(all.secs[i]!); }
      vt.shape = '';
    }
    return vt;
  }

  private async fetchBuild(id: string): Promise<void> {
    if (this.fetching.has(id)) return;
    const reg = this.d.registry;
    const list = this.manifests.get(id);
    if (!list?.length) return; // its manifest may not have been read yet: onManifest comes back here
    this.fetching.add(id);
    try {
      for (const m of list) {
        if (reg.info(id)?.pcsHash === id) break; // a local fuzzer took it meanwhile
        let rec;
        try {
          const chunks: Uint8Array[] = [];
          for (let n = 0; n < m.chunks; n++) {
            const c = await this.d.fetchChunk(chunkKey(m.id, m.buildId, n));
            if (!c) throw new ProtocolError(`build record of ${id}: chunk ${n} of ${m.chunks} is missing`, 'COVD_ERR_FLEET_BAD_BUILD');
            chunks.push(c);
          }
          rec = decodeBuild(m, chunks);
        } catch (err) {
          this.badBuilds.set(id, (err as Error).message);
          this.reject(err, `build ${id} from ${m.node}`);
          continue;
        }
        if (!reg.has(id)) {
          reg.addRemote({ id, name: rec.name, exe: rec.exe, buildId: rec.buildId, pcsLen: rec.pcs.length, pcsHash: id });
          reg.setIndex(id, rec.index);
          this.d.log.info('fleet: showing a target other nodes fuzz', { id, target: rec.name, buildId: rec.buildId, from: m.node });
        }
        this.wanted.delete(id);
        this.viewOf(id, rec.pcs.length, true);
        // Its counters from every node's latest status, and its coverage from the stream.
        for (const n of this.nodes.values()) if (n.status && !n.self) {
          const s = n.status;
          for (const t of s.targets) if (t.id === id && t.pcsLen === rec.pcs.length) this.targets.get(id)!.ft.setCounters(n.name, { inc: s.inc, seq: s.seq, nRuns: t.nRuns, uniqueRuns: t.uniqueRuns, runsPerSec: t.runsPerSec, lastNewAt: t.lastNewAt });
        }
        this.targets.get(id)!.countersMoved = true;
        this.d.replay(id);
        this.dirty();
        break;
      }
    } finally {
      this.fetching.delete(id);
    }
  }

  /** A target of the registry appeared or changed: a local one verifies what waited for it. */
  localTarget(id: string): void {
    const info = this.d.registry.info(id);
    if (!info || info.pcsHash !== id || info.stats.pcsLen === 0) return;
    const known = this.targets.get(id);
    if (this.wanted.delete(id) || (known && !known.registered)) {
      this.viewOf(id, info.stats.pcsLen, true);
      this.d.replay(id);
      this.dirty();
    }
  }

  /** A target left the registry (`covd remove`): its fleet state stays, to come back when referenced again. */
  removed(id: string): void {
    const vt = this.targets.get(id);
    if (vt) vt.registered = false;
  }

  /** This daemon's own fuzzers saw these PCs (the registry applies them itself). */
  applyLocal(id: string, pcsLen: number, pcs: ArrayLike<number>, sec: number): void {
    const vt = this.viewOf(id, pcsLen, true);
    const secs = new Array<number>(pcs.length).fill(sec);
    vt.ft.apply(this.d.self, pcs, secs, vt.dirty);
    this.dirty();
  }

  // ---------------------------------------------------------------- feeding the registry

  private dirty(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; this.flush(); }, FLUSH_MS);
    this.timer.unref();
  }

  private online(rec: NodeRecord, now = this.now()): boolean {
    if (rec.self) return true;
    if (rec.lastSeenAt === null) return false;
    return now - rec.lastSeenAt < Math.max(OFFLINE_MS, 3 * (rec.status?.every ?? 0));
  }

  private markOnline(): void {
    for (const vt of this.targets.values()) {
      if (!vt.registered) continue;
      if (this.shapeOf(vt) !== vt.shape) { this.dirty(); return; }
    }
  }

  private shapeOf(vt: ViewTarget): string {
    let s = '';
    for (const n of vt.ft.nodes.values()) s += `${n.name}:${this.online(this.nodes.get(n.name) ?? { self: n.name === this.d.self, lastSeenAt: null } as NodeRecord) ? 1 : 0};`;
    return s;
  }

  /** Gives the registry what changed since the last flush. */
  flush(): void {
    const reg = this.d.registry;
    const now = this.now();
    let later = false;
    for (const [id, vt] of this.targets) {
      if (!vt.registered || !reg.has(id)) continue;
      const shape = this.shapeOf(vt);
      const changedShape = shape !== vt.shape;
      const hasPcs = vt.dirty.pcs.length > 0;
      if (!changedShape && !hasPcs && !vt.countersMoved) continue;
      if (!changedShape && !hasPcs && now - vt.countersAt < COUNTERS_MS) { later = true; continue; }
      vt.countersAt = now;
      const share = this.shareOf(vt, now);
      reg.setFleet(id, share, changedShape ? 'target' : hasPcs ? 'none' : 'delta', now);
      if (hasPcs) reg.applyFleet(id, vt.dirty.pcs, vt.dirty.secs, now);
      vt.dirty = { pcs: [], secs: [], fresh: 0 };
      vt.countersMoved = false;
      vt.shape = shape;
    }
    if (later) this.dirty();
  }

  private shareOf(vt: ViewTarget, now: number): FleetShare {
    const nodes: TargetNode[] = [];
    const others = { nRuns: 0, uniqueRuns: 0, runsPerSec: 0, lastNewAt: null as number | null, updatedAt: 0 };
    let activity: TargetActivity | null = null;
    let ownCovered = 0;
    for (const n of vt.ft.nodes.values()) {
      const rec = this.nodes.get(n.name);
      const self = n.name === this.d.self;
      const online = self || (rec !== undefined && this.online(rec, now));
      const c = n.counters;
      if (self) ownCovered = n.covered;
      else if (c) {
        others.nRuns += c.nRuns;
        others.uniqueRuns += c.uniqueRuns;
        if (online) others.runsPerSec += c.runsPerSec;
        if (c.lastNewAt !== null) others.lastNewAt = Math.max(others.lastNewAt ?? 0, c.lastNewAt);
      }
      if (!self) {
        others.updatedAt = Math.max(others.updatedAt, rec?.lastSeenAt ?? 0);
        const a: TargetActivity = online ? ((c?.runsPerSec ?? 0) > 0 ? 'running' : 'idle') : 'stopped';
        if (activity === null || a === 'running' || (a === 'idle' && activity === 'stopped')) activity = a;
      }
      nodes.push({
        name: n.name, self, covered: n.covered, first: n.first, nRuns: c?.nRuns ?? 0, uniqueRuns: c?.uniqueRuns ?? 0,
        runsPerSec: online ? c?.runsPerSec ?? 0 : 0, online, lastSeenAt: self ? now : rec?.lastSeenAt ?? null,
      });
    }
    nodes.sort((a, b) => (a.self === b.self ? a.name.localeCompare(b.name) : a.self ? -1 : 1));
    return { nodes, others, activity, ownCovered };
  }

  /** Which node saw each PC first, for the API: names and, per PC, an index into them (-1: nobody). */
  firstSeenBy(id: string): { nodes: string[]; first: Int32Array } | undefined {
    const vt = this.targets.get(id);
    if (!vt) return undefined;
    const names: string[] = [];
    const map = new Map<number, number>();
    const first = new Int32Array(vt.ft.pcsLen).fill(-1);
    for (let pc = 0; pc < vt.ft.pcsLen; pc++) {
      const ix = vt.ft.firstNode[pc]!;
      if (ix === 0xffff) continue;
      let k = map.get(ix);
      if (k === undefined) { k = names.length; names.push(vt.ft.nameOf(ix)!); map.set(ix, k); }
      first[pc] = k;
    }
    return { nodes: names, first };
  }

  isOnline(name: string): boolean {
    const rec = this.nodes.get(name);
    return rec !== undefined && this.online(rec);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.ticker) clearInterval(this.ticker);
  }
}
