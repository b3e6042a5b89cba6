/**
 * The target registry: the daemon's single source of truth about targets, implementing the
 * `Hub` contract (src/contracts/hub.ts) the web server reads and listens to.
 *
 * Only the daemon mutates it, always on the main thread:
 *   add()        a new coverage file was announced            -> state 'loading', event 'target'
 *   setIndex()   the symbolizer pool resolved every PC         -> state 'ready',   event 'target'
 *   fail()       symbolizing or reading failed (reason words)  -> state 'failed',  event 'target'
 *   retire()     an old build, kept as history                 -> state 'retired', event 'target'
 *   applyTick()  the coverage thread saw new PCs / new stats   -> event 'delta' (seq + 1)
 *   remove()     forgotten entirely                            -> event 'removed'
 *   sourceChanged() a source file named by the index changed  -> event 'sourceChanged'
 *   setAfl()     AFL++ engine and afl-fuzz statistics changed  -> event 'target' (src/afl/watcher.ts)
 * plus restore() to bring back a persisted target on start-up, without events.
 *
 * Besides the HubEvents it emits 'sample' (id, HistorySample) whenever a history sample is
 * recorded, which the store persists.
 *
 * Memory: one `seen` bitmap (pcsLen/8 bytes) and one `firstSeen` Uint32Array (4 bytes per PC)
 * per target, shared by every subscriber. A delta carries only the indices of newly seen PCs;
 * subscribers never get a copy of the bitmap except in a snapshot they asked for.
 *
 * History sampling: a sample is recorded on a tick when `historyIntervalMs` (default 5 s) has
 * passed since the last one, or at once when coverage grew and at least 1 s has passed, so the
 * chart's steps are where they happened. Each target keeps at most `maxHistory` samples
 * (default 4096); when full, the older half is thinned by keeping every other sample, so
 * recent history stays dense, old history gets sparser, and memory stays bounded for weeks.
 */
import { EventEmitter } from 'node:events';
import { basename } from 'node:path';
import type {
  CoverageDelta, HistorySample, Hub, HubEvents, TargetActivity, TargetDetail, TargetInfo, TargetState, TargetStats,
} from '../contracts/hub.js';
import type { AflStats, FuzzEngine } from '../contracts/hub.js';
import type { TargetFleet, TargetNode } from '../contracts/hub.js';
import type { SourceIndex } from '../workers/types.js';
import { countSeen, seenBytes, setSeen } from '../contracts/seen.js';
import { sourcePathOf } from '../contracts/paths.js';

/** What the daemon knows when a target is announced. */
export interface NewTarget {
  id: string;
  exe: string;
  coverageFile: string;
  pcsLen: number;
  buildId?: string | null;
  /** Hash of the PC table (pcTableHash); unknown when the file could not be read. */
  pcsHash?: string;
  /** Defaults to basename(exe). */
  name?: string;
  /** Defaults to now. */
  createdAt?: number;
}

/** One tick's worth of change for one target, as the coverage thread reports it. */
export interface TickUpdate {
  /** Indices of PCs whose seen bit turned on since the last tick. */
  newPcs: Uint32Array;
  nRuns: number;
  uniqueRuns: number;
  lowestStack: number | null;
  /** When the file was read, ms since epoch. */
  time: number;
}

/** A target known from other nodes of the fleet (src/fleet), from a verified build record. */
export interface RemoteTarget {
  id: string;
  name: string;
  exe: string;
  buildId: string | null;
  pcsLen: number;
  pcsHash: string;
  createdAt?: number;
}

/** The other nodes' share of a target, as src/fleet computes it (docs/architecture.md, "Fleet"). */
export interface FleetShare {
  /** Every node with a share, this daemon's included (its counters are filled in on read). */
  nodes: TargetNode[];
  /** Sums over the other nodes: latest runs and unique runs, speed of the online ones; the latest lastNewAt and updatedAt. */
  others: { nRuns: number; uniqueRuns: number; runsPerSec: number; lastNewAt: number | null; updatedAt: number };
  /** The most active of the other nodes (null: none online). */
  activity: TargetActivity | null;
  /** PCs this daemon's own fuzzers have seen. */
  ownCovered: number;
}

/** A persisted target, as the store hands it back on start-up. */
export interface RestoredTarget {
  info: TargetInfo;
  index: SourceIndex | null;
  seen: Uint8Array;
  firstSeen: Uint32Array;
  seq: number;
  history: HistorySample[];
  /** When it was retired (ms since epoch); the retention policy deletes it later. */
  retiredAt?: number;
}

export interface RegistryOptions {
  historyIntervalMs?: number;
  maxHistory?: number;
  now?: () => number;
}

/** A live target: what the store keeps of it, plus what is only worth knowing while running. */
interface Entry extends RestoredTarget {
  /** Recent (t, nRuns) points for runsPerSec. */
  rate: { t: number; n: number }[];
  /** When runs last moved (ms since epoch; 0: not since this daemon started). */
  lastRunsAt: number;
  /** Fleet: no local fuzzer runs it, everything comes from other nodes (never persisted). */
  remote?: boolean;
  /** Fleet: the other nodes' share, set by src/fleet (setFleet). */
  share?: FleetShare;
}

const RATE_WINDOW_MS = 5000;

export class TargetRegistry extends EventEmitter implements Hub {
  private readonly entries = new Map<string, Entry>();
  readonly historyIntervalMs: number;
  readonly maxHistory: number;
  private readonly now: () => number;

  constructor(opts: RegistryOptions = {}) {
    super();
    this.historyIntervalMs = opts.historyIntervalMs ?? 5000;
    this.maxHistory = Math.max(16, opts.maxHistory ?? 4096);
    this.now = opts.now ?? Date.now;
    this.setMaxListeners(0);
  }

  // ---------------------------------------------------------------- Hub (read side)

  targets(): TargetInfo[] {
    return [...this.entries.values()].map((e) => this.publicInfo(e));
  }

  target(id: string): TargetDetail | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    const nodes = e.share ? { nodes: this.nodesOf(e) } : {};
    return { ...this.publicInfo(e), index: e.index, seen: e.seen, firstSeen: e.firstSeen, seq: e.seq, ...nodes };
  }

  history(id: string, sinceMs?: number): HistorySample[] {
    const h = this.entries.get(id)?.history ?? [];
    return sinceMs === undefined ? h.slice() : h.filter((s) => s.t >= sinceMs);
  }

  sourcePath(id: string, file: number): string | undefined {
    // A remote target's index comes from another node: its paths never name files here.
    if (this.entries.get(id)?.remote) return undefined;
    const idx = this.entries.get(id)?.index;
    if (!idx || !Number.isInteger(file) || file < 0 || file >= idx.files.length) return undefined;
    const p = sourcePathOf(idx, file);
    return p.startsWith('/') ? p : undefined;
  }

  override on<E extends keyof HubEvents>(event: E, fn: HubEvents[E]): this;
  override on(event: 'sample', fn: (id: string, s: HistorySample) => void): this;
  override on(event: 'tick', fn: (id: string, u: TickUpdate) => void): this;
  override on(event: string, fn: (...args: any[]) => void): this {
    return super.on(event, fn);
  }

  override off<E extends keyof HubEvents>(event: E, fn: HubEvents[E]): this;
  override off(event: 'sample', fn: (id: string, s: HistorySample) => void): this;
  override off(event: 'tick', fn: (id: string, u: TickUpdate) => void): this;
  override off(event: string, fn: (...args: any[]) => void): this {
    return super.off(event, fn);
  }

  // ---------------------------------------------------------------- daemon (write side)

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** The live TargetInfo (not a copy); undefined for unknown ids. */
  info(id: string): TargetInfo | undefined {
    return this.entries.get(id)?.info;
  }

  /** Ids of targets whose executable is `exe`. */
  idsForExe(exe: string): string[] {
    return [...this.entries.values()].filter((e) => e.info.exe === exe && !e.remote).map((e) => e.info.id);
  }

  /** Adds a target in state 'loading'. Adding a known id returns it unchanged (the seed's no-op). */
  add(t: NewTarget): TargetInfo {
    const known = this.entries.get(t.id);
    if (known?.remote && this.adoptRemote(known, t)) return this.publicInfo(known);
    if (known && !known.remote) return this.publicInfo(known);
    if (!Number.isInteger(t.pcsLen) || t.pcsLen < 0) throw new RangeError(`bad pcsLen ${t.pcsLen}`);
    const now = this.now();
    const info: TargetInfo = {
      id: t.id,
      name: t.name ?? basename(t.exe),
      exe: t.exe,
      buildId: t.buildId ?? null,
      coverageFile: t.coverageFile,
      ...(t.pcsHash !== undefined ? { pcsHash: t.pcsHash } : {}),
      state: 'loading',
      activity: 'idle',
      stoppedAt: null,
      createdAt: t.createdAt ?? now,
      stats: {
        nRuns: 0, uniqueRuns: 0, lowestStack: null, covered: 0, pcsLen: t.pcsLen,
        runsPerSec: 0, lastNewAt: null, updatedAt: now,
      },
    };
    const e: Entry = {
      info, index: null, seen: new Uint8Array(seenBytes(t.pcsLen)), firstSeen: new Uint32Array(t.pcsLen),
      seq: 0, history: [], rate: [], lastRunsAt: 0,
    };
    this.entries.set(t.id, e);
    this.emit('target', this.publicInfo(e));
    return this.publicInfo(e);
  }

  /** Brings back a persisted target (no events: call before anyone subscribes, or emit yourself). */
  restore(r: RestoredTarget): void {
    // Until the activity monitor has looked, a restored target is as it was when stored, but not running.
    const was = r.info.activity;
    const info: TargetInfo = {
      ...r.info, stats: { ...r.info.stats, runsPerSec: 0 },
      activity: was === 'stopped' || was === undefined ? 'stopped' : 'idle', stoppedAt: r.info.stoppedAt ?? null,
    };
    if (info.state === 'loading') info.state = r.index ? 'ready' : 'loading';
    if (r.seen.length !== seenBytes(info.stats.pcsLen) || r.firstSeen.length !== info.stats.pcsLen) {
      throw new RangeError(`restored target ${info.id}: bitmap sizes do not match pcsLen ${info.stats.pcsLen}`);
    }
    info.stats.covered = countSeen(r.seen);
    // A record written with the fleet's union stats: back to this daemon's own counters.
    if (info.fleet) { info.stats.nRuns = info.fleet.own.nRuns; info.stats.uniqueRuns = info.fleet.own.uniqueRuns; delete info.fleet; }
    this.entries.set(info.id, {
      info, index: r.index, seen: r.seen, firstSeen: r.firstSeen, seq: r.seq, history: r.history.slice(-this.maxHistory), rate: [], lastRunsAt: 0,
      // A record retired before retirement times were kept counts from now.
      ...(info.state === 'retired' ? { retiredAt: r.retiredAt ?? this.now() } : {}),
    });
  }

  /** Symbolization finished: the target is ready (unless it was retired or failed meanwhile). */
  setIndex(id: string, index: SourceIndex): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.index = index;
    if (index.buildId && !e.info.buildId) e.info.buildId = index.buildId;
    if (e.info.state === 'loading') e.info.state = 'ready';
    this.emit('target', this.publicInfo(e));
  }

  /** Marks the target failed with a reason a user can act on, and its code (contracts/errors.ts). Its coverage so far stays. */
  fail(id: string, reason: string, code = 'COVD_ERR_INTERNAL'): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.info.state = 'failed';
    e.info.error = reason;
    e.info.errorCode = code;
    this.emit('target', this.publicInfo(e));
  }

  /** Keeps the target as history only: no more ticks are applied. */
  retire(id: string, reason?: string, at = this.now()): void {
    const e = this.entries.get(id);
    if (!e || e.info.state === 'retired') return;
    e.retiredAt = at;
    e.info.state = 'retired';
    if (reason) e.info.error = reason;
    e.info.stats.runsPerSec = 0;
    if (e.info.activity !== 'stopped') { e.info.activity = 'stopped'; e.info.stoppedAt = this.now(); }
    this.emit('target', this.publicInfo(e));
  }

  /**
   * Gives a target that failed before its PC list could be read (pcsLen 0) the list it now has.
   * Returns false, changing nothing, when the target already has PCs or any coverage.
   */
  setPcs(id: string, pcsLen: number, pcsHash: string): boolean {
    const e = this.entries.get(id);
    if (!e || e.info.stats.pcsLen !== 0 || e.info.stats.covered !== 0) return false;
    e.info.stats.pcsLen = pcsLen;
    e.info.pcsHash = pcsHash;
    e.seen = new Uint8Array(seenBytes(pcsLen));
    e.firstSeen = new Uint32Array(pcsLen);
    return true;
  }

  /** Drops an index that does not belong to the target (found at restore); the target must resolve again. */
  dropIndex(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.index = null;
    if (e.info.state === 'ready') e.info.state = 'loading';
  }

  /** Sets state back to 'loading' (re-resolving after the executable changed), clearing the error. */
  reload(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.info.state = 'loading';
    delete e.info.error;
    delete e.info.errorCode;
    this.emit('target', this.publicInfo(e));
  }

  /**
   * Applies one tick: sets the new PCs' bits, stamps their first-seen time, updates stats,
   * maybe records a history sample, and emits the delta (seq + 1). Returns undefined (and
   * emits nothing) when nothing changed or the target is unknown or retired.
   * PCs already marked seen, or out of range, are dropped from the delta.
   */
  applyTick(id: string, u: TickUpdate): CoverageDelta | undefined {
    const e = this.entries.get(id);
    if (!e || e.info.state === 'retired') return undefined;
    this.emit('tick', id, u); // the fleet's record of what this daemon's own fuzzers found
    const s = e.info.stats;
    const pcsLen = s.pcsLen;
    const sec = Math.floor(u.time / 1000) || 1;
    let fresh = u.newPcs;
    let n = 0;
    for (let i = 0; i < fresh.length; i++) {
      const pc = fresh[i]!;
      if (pc >= pcsLen) continue;
      if (!setSeen(e.seen, pc)) continue;
      e.firstSeen[pc] = sec;
      if (n !== i) { if (fresh === u.newPcs) fresh = fresh.slice(); fresh[n] = pc; }
      n++;
    }
    if (n !== fresh.length) fresh = fresh.subarray(0, n);

    const statsChanged = u.nRuns !== s.nRuns || u.uniqueRuns !== s.uniqueRuns || u.lowestStack !== s.lowestStack;
    if (n === 0 && !statsChanged) return undefined;

    s.covered += n;
    if (u.nRuns !== s.nRuns) e.lastRunsAt = u.time;
    s.nRuns = u.nRuns;
    s.uniqueRuns = u.uniqueRuns;
    s.lowestStack = u.lowestStack;
    s.updatedAt = u.time;
    if (n > 0) s.lastNewAt = u.time;
    // runs per second over the last few seconds; a restarted fuzzer (runs went down) starts over.
    const last = e.rate[e.rate.length - 1];
    if (last && u.nRuns < last.n) e.rate.length = 0;
    e.rate.push({ t: u.time, n: u.nRuns });
    while (e.rate.length > 2 && u.time - e.rate[1]!.t >= RATE_WINDOW_MS) e.rate.shift();
    const first = e.rate[0]!;
    s.runsPerSec = u.time > first.t ? Math.round(((u.nRuns - first.n) * 1000) / (u.time - first.t)) : s.runsPerSec;

    this.maybeSample(e, u.time, n > 0);
    e.seq++;
    const delta: CoverageDelta = { id, seq: e.seq, time: u.time, newPcs: fresh, stats: this.statsOf(e) };
    this.emit('delta', delta);
    return delta;
  }

  /** When the target was retired (ms since epoch), undefined unless it is. */
  retiredAt(id: string): number | undefined {
    return this.entries.get(id)?.retiredAt;
  }

  /** When runs of the target last moved (ms since epoch), 0 when not since this daemon started. */
  lastRunsAt(id: string): number {
    return this.entries.get(id)?.lastRunsAt ?? 0;
  }

  /**
   * The activity monitor's verdict. Also lets runs/s decay to 0 once runs stopped (ticks only
   * come when something changed, so nothing else would). Emits 'target' when anything changed.
   */
  setActivity(id: string, activity: TargetActivity, now: number): void {
    const e = this.entries.get(id);
    if (!e || e.info.state === 'retired') return;
    let changed = false;
    if (e.info.activity !== activity) {
      if (activity === 'stopped') e.info.stoppedAt = now;
      else if (e.info.activity === 'stopped') e.info.stoppedAt = null;
      e.info.activity = activity;
      changed = true;
    }
    if (e.info.stats.runsPerSec !== 0 && now - e.lastRunsAt >= RATE_WINDOW_MS) {
      e.info.stats.runsPerSec = 0;
      e.rate.length = 0;
      changed = true;
    }
    if (changed) this.emit('target', this.publicInfo(e));
  }

  /** Forgets a target. Returns false for unknown ids. */
  remove(id: string): boolean {
    if (!this.entries.delete(id)) return false;
    this.emit('removed', id);
    return true;
  }

  /** A source file (index into SourceIndex.files) of this target changed on disk. */
  sourceChanged(id: string, file: number): void {
    if (this.entries.has(id)) this.emit('sourceChanged', id, file);
  }

  /** Ids and file indices of every ready target whose debug info names `path`. */
  filesNamed(path: string): { id: string; file: number }[] {
    const out: { id: string; file: number }[] = [];
    for (const e of this.entries.values()) {
      if (!e.index) continue;
      for (let f = 0; f < e.index.files.length; f++) if (this.sourcePath(e.info.id, f) === path) out.push({ id: e.info.id, file: f });
    }
    return out;
  }

  /** Records a sample now regardless of the interval (used at shutdown so the chart ends at the end). */
  sampleNow(id: string): void {
    const e = this.entries.get(id);
    if (e) this.recordSample(e, this.now());
  }

  // ---------------------------------------------------------------- AFL++ (src/afl)

  /**
   * Sets a target's engine and afl-fuzz statistics (src/afl/watcher.ts); `afl` undefined keeps
   * the current ones. Emits 'target' when anything changed. A retired target keeps its last ones.
   */
  setAfl(id: string, engine: FuzzEngine, afl?: AflStats): void {
    const e = this.entries.get(id);
    if (!e || e.info.state === 'retired') return;
    if (e.info.engine === engine && (afl === undefined || JSON.stringify(e.info.afl) === JSON.stringify(afl))) return;
    e.info.engine = engine;
    if (afl !== undefined) e.info.afl = afl;
    this.emit('target', this.publicInfo(e));
  }

  // ---------------------------------------------------------------- fleet (src/fleet)

  /**
   * Adds a target no local fuzzer runs, known from other nodes of the fleet (src/fleet): never
   * persisted, never read from disk, its source paths never served. A local announcement of the
   * same id later adopts it in place (add), keeping its coverage and seq.
   */
  addRemote(t: RemoteTarget): TargetInfo {
    const known = this.entries.get(t.id);
    if (known) return this.publicInfo(known);
    const now = this.now();
    const info: TargetInfo = {
      id: t.id, name: t.name, exe: t.exe, buildId: t.buildId, coverageFile: '', pcsHash: t.pcsHash,
      state: 'loading', activity: 'stopped', stoppedAt: null, createdAt: t.createdAt ?? now,
      stats: { nRuns: 0, uniqueRuns: 0, lowestStack: null, covered: 0, pcsLen: t.pcsLen, runsPerSec: 0, lastNewAt: null, updatedAt: now },
    };
    const e: Entry = {
      info, index: null, seen: new Uint8Array(seenBytes(t.pcsLen)), firstSeen: new Uint32Array(t.pcsLen),
      seq: 0, history: [], rate: [], lastRunsAt: 0, remote: true,
    };
    this.entries.set(t.id, e);
    this.emit('target', this.publicInfo(e));
    return this.publicInfo(e);
  }

  /** Whether the target is known from other nodes only. */
  isRemote(id: string): boolean {
    return this.entries.get(id)?.remote === true;
  }

  /**
   * Merges other nodes' coverage: each PC's bit is set and its first-seen time (seconds) lowered
   * to `secs[i]` when earlier. PCs that were not seen before make a delta (seq + 1) with the
   * union stats; an earlier time for a seen PC changes firstSeen only. Returns the delta, if any.
   */
  applyFleet(id: string, pcs: ArrayLike<number>, secs: ArrayLike<number>, time: number): CoverageDelta | undefined {
    const e = this.entries.get(id);
    if (!e || e.info.state === 'retired') return undefined;
    const pcsLen = e.info.stats.pcsLen;
    const fresh: number[] = [];
    for (let i = 0; i < pcs.length; i++) {
      const pc = pcs[i]!, sec = secs[i]!;
      if (pc >= pcsLen || !(sec > 0)) continue;
      if (setSeen(e.seen, pc)) { e.firstSeen[pc] = sec; fresh.push(pc); } else if (e.firstSeen[pc] === 0 || sec < e.firstSeen[pc]!) e.firstSeen[pc] = sec;
    }
    if (fresh.length === 0) return undefined;
    const s = e.info.stats;
    s.covered += fresh.length;
    s.lastNewAt = Math.max(s.lastNewAt ?? 0, time);
    return this.emitFleetDelta(e, time, Uint32Array.from(fresh), true);
  }

  /**
   * Sets (or with null clears) the other nodes' share of a target. `emit`: 'target' when nodes
   * came, went or changed state (a 'target' event, persisted), 'delta' when only their counters
   * moved (a delta without PCs, so tabs see the union stats), 'none' when a delta follows anyway.
   */
  setFleet(id: string, share: FleetShare | null, emit: 'target' | 'delta' | 'none', time = this.now()): void {
    const e = this.entries.get(id);
    if (!e) return;
    if (share) e.share = share;
    else delete e.share;
    if (e.remote) {
      // A remote target is as current as its freshest node.
      e.info.stats.updatedAt = Math.max(e.info.stats.updatedAt, share?.others.updatedAt ?? 0);
    }
    if (emit === 'target') this.emit('target', this.publicInfo(e));
    else if (emit === 'delta' && e.info.state !== 'retired') this.emitFleetDelta(e, time, new Uint32Array(0), false);
  }

  private emitFleetDelta(e: Entry, time: number, newPcs: Uint32Array, grew: boolean): CoverageDelta {
    this.maybeSample(e, time, grew);
    e.seq++;
    const delta: CoverageDelta = { id: e.info.id, seq: e.seq, time, newPcs, stats: this.statsOf(e) };
    this.emit('delta', delta);
    return delta;
  }

  /** A local fuzzer announced a remote target: it becomes a local one with the same coverage, resolved here (its index dropped). */
  private adoptRemote(e: Entry, t: NewTarget): boolean {
    if (t.pcsLen !== e.info.stats.pcsLen || (t.pcsHash !== undefined && t.pcsHash !== e.info.pcsHash)) {
      this.entries.delete(t.id); // another PC table under that name: start over as a plain local target
      return false;
    }
    delete e.remote;
    Object.assign(e.info, {
      name: t.name ?? basename(t.exe), exe: t.exe, coverageFile: t.coverageFile, buildId: t.buildId ?? e.info.buildId,
      state: 'loading', activity: 'idle', stoppedAt: null,
    });
    e.index = null;
    this.emit('target', this.publicInfo(e));
    return true;
  }

  /** The target's stats: this daemon's own, plus the other nodes' share when in a fleet. */
  private statsOf(e: Entry): TargetStats {
    const s = e.info.stats;
    const o = e.share?.others;
    if (!o) return { ...s };
    return {
      ...s, nRuns: s.nRuns + o.nRuns, uniqueRuns: s.uniqueRuns + o.uniqueRuns, runsPerSec: s.runsPerSec + o.runsPerSec,
      lastNewAt: s.lastNewAt === null && o.lastNewAt === null ? null : Math.max(s.lastNewAt ?? 0, o.lastNewAt ?? 0),
      updatedAt: Math.max(s.updatedAt, o.updatedAt),
    };
  }

  private activityOf(e: Entry): TargetActivity {
    const rank = { stopped: 0, idle: 1, running: 2 } as const;
    const a = e.share?.activity;
    return a && rank[a] > rank[e.info.activity] ? a : e.info.activity;
  }

  private fleetOf(e: Entry): TargetFleet {
    const nodes = e.share?.nodes ?? [];
    const s = e.info.stats;
    return {
      nodes: nodes.length, online: nodes.filter((n) => n.online).length, remote: e.remote === true,
      own: { covered: e.share?.ownCovered ?? 0, nRuns: e.remote ? 0 : s.nRuns, uniqueRuns: e.remote ? 0 : s.uniqueRuns },
    };
  }

  /** Every node's share, with this daemon's counters as of now. */
  private nodesOf(e: Entry): TargetNode[] {
    const s = e.info.stats;
    return (e.share?.nodes ?? []).map((n) => (n.self ? { ...n, nRuns: s.nRuns, uniqueRuns: s.uniqueRuns, runsPerSec: s.runsPerSec, lastSeenAt: this.now() } : { ...n }));
  }

  // ---------------------------------------------------------------- internals

  private maybeSample(e: Entry, t: number, grew: boolean): void {
    const last = e.history[e.history.length - 1];
    const gap = last ? t - last.t : Infinity;
    if (gap >= this.historyIntervalMs || (grew && gap >= 1000)) this.recordSample(e, t);
  }

  private recordSample(e: Entry, t: number): void {
    const s = this.statsOf(e);
    const sample: HistorySample = { t, nRuns: s.nRuns, uniqueRuns: s.uniqueRuns, covered: s.covered };
    const h = e.history;
    if (h.length >= this.maxHistory) {
      // Thin the older half: keep every other sample there.
      const half = h.length >> 1;
      const kept: HistorySample[] = [];
      for (let i = 0; i < half; i += 2) kept.push(h[i]!);
      e.history = kept.concat(h.slice(half));
    }
    e.history.push(sample);
    this.emit('sample', e.info.id, sample);
  }

  private publicInfo(e: Entry): TargetInfo {
    if (!e.share && !e.remote) return { ...e.info, stats: { ...e.info.stats } };
    return { ...e.info, stats: this.statsOf(e), activity: this.activityOf(e), fleet: this.fleetOf(e) };
  }
}

export type { TargetState, TargetStats };
