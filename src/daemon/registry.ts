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
    return { ...this.publicInfo(e), index: e.index, seen: e.seen, firstSeen: e.firstSeen, seq: e.seq };
  }

  history(id: string, sinceMs?: number): HistorySample[] {
    const h = this.entries.get(id)?.history ?? [];
    return sinceMs === undefined ? h.slice() : h.filter((s) => s.t >= sinceMs);
  }

  sourcePath(id: string, file: number): string | undefined {
    const idx = this.entries.get(id)?.index;
    if (!idx || !Number.isInteger(file) || file < 0 || file >= idx.files.length) return undefined;
    const p = sourcePathOf(idx, file);
    return p.startsWith('/') ? p : undefined;
  }

  override on<E extends keyof HubEvents>(event: E, fn: HubEvents[E]): this;
  override on(event: 'sample', fn: (id: string, s: HistorySample) => void): this;
  override on(event: string, fn: (...args: any[]) => void): this {
    return super.on(event, fn);
  }

  override off<E extends keyof HubEvents>(event: E, fn: HubEvents[E]): this;
  override off(event: 'sample', fn: (id: string, s: HistorySample) => void): this;
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
    return [...this.entries.values()].filter((e) => e.info.exe === exe).map((e) => e.info.id);
  }

  /** Adds a target in state 'loading'. Adding a known id returns it unchanged (the seed's no-op). */
  add(t: NewTarget): TargetInfo {
    const known = this.entries.get(t.id);
    if (known) return this.publicInfo(known);
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
    const delta: CoverageDelta = { id, seq: e.seq, time: u.time, newPcs: fresh, stats: { ...s } };
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

  // ---------------------------------------------------------------- internals

  private maybeSample(e: Entry, t: number, grew: boolean): void {
    const last = e.history[e.history.length - 1];
    const gap = last ? t - last.t : Infinity;
    if (gap >= this.historyIntervalMs || (grew && gap >= 1000)) this.recordSample(e, t);
  }

  private recordSample(e: Entry, t: number): void {
    const s = e.info.stats;
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
    return { ...e.info, stats: { ...e.info.stats } };
  }
}

export type { TargetState, TargetStats };
