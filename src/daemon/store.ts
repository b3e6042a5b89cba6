/**
 * Persistent state under --state-dir, in LMDB (the `lmdb` package).
 *
 * Why LMDB: it is a copy-on-write B+tree with two meta pages, so a committed transaction is
 * durable and a crash (SIGKILL, OOM kill, power loss with sync on) can never leave a half-written
 * or corrupt database: there is no log to replay and no repair step on open. Readers never block
 * the writer, reads are zero-copy from a memory map (a 1M-PC firstSeen array loads in ~a ms),
 * and lmdb-js batches our small writes into one transaction per event-loop turn. Values are
 * msgpack (msgpackr, with typed arrays as extensions) so SourceIndex / bitmaps round-trip as the
 * same typed arrays the rest of the daemon uses. SQLite would also be safe but would need a
 * native build and a schema for what are really blobs keyed by name.
 *
 * Keys (strings, ordered):
 *   target/<id>               TargetInfo + { retiredAt? }           one per target
 *   index/<build-id>/<pcs>    SourceIndex (symbolization result)    shared by targets of one build and PC table
 *   index/id:<id>/<pcs>       SourceIndex of an executable without build-id
 *                             (<pcs>: pcTableHash; records from before it have no /<pcs>)
 *   cov/<id>                  { seq, seen, firstSeen }              compacted coverage snapshot
 *   delta/<id>/<seq:012>      { t, pcs }                            new PCs since the snapshot
 *   hist/<id>/<t:015>         [nRuns, uniqueRuns, covered]          history samples
 *
 * Coverage is written as an append-only log of deltas (a few bytes per new PC) and compacted
 * into the snapshot every COMPACT_EVERY deltas and at shutdown, in one transaction, so a crash
 * loses at most the writes of the last event-loop turns and never leaves the two disagreeing.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { Packr } from 'msgpackr';
import { packrOptions } from '../contracts/msgpack.js';
import { packLarge } from '../util/packed.js';
import type { HistorySample, TargetInfo } from '../contracts/hub.js';
import type { SourceIndex } from '../workers/types.js';
import type { RestoredTarget, TargetRegistry } from './registry.js';
import { seenBytes, setSeen } from '../contracts/seen.js';
import type { Logger } from '../util/log.js';

const packr = new Packr(packrOptions);
const COMPACT_EVERY = 256;
/** History rows appended before the stored history is replaced by the registry's thinned copy. */
const COMPACT_SAMPLES = 1024;

export interface StoredTarget extends TargetInfo {
  /** When the target was retired (ms since epoch); the retirement policy deletes it later. */
  retiredAt?: number;
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');
const deltaKey = (id: string, seq: number) => `delta/${id}/${pad(seq, 12)}`;
const histKey = (id: string, t: number) => `hist/${id}/${pad(t, 15)}`;

export class Store {
  private readonly db: RootDatabase<Buffer, string>;
  private readonly deltasSinceCompact = new Map<string, number>();
  private readonly samplesSinceCompact = new Map<string, number>();
  private closed = false;

  private constructor(db: RootDatabase<Buffer, string>, readonly path: string) {
    this.db = db;
  }

  static open(stateDir: string): Store {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const path = join(stateDir, 'covd.lmdb');
    // encoding 'binary': we do msgpack ourselves so typed arrays keep their types.
    const db = open<Buffer, string>({ path, encoding: 'binary', mapSize: 2 ** 34 });
    return new Store(db, path);
  }

  /** Writes after close() (late events during shutdown) are dropped, not thrown. */
  /**
   * Told about a failed commit (disk full, read-only state dir). Writes are fire-and-forget on the
   * hot path, so a failure must never surface as an unhandled rejection: the daemon keeps serving
   * from memory and says so in its log.
   */
  onWriteError: (err: unknown, key: string) => void = () => {};

  /** sized: value is large plain data (an index), packed into a buffer of its size (packLarge). */
  private put(key: string, value: unknown, sized = false): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.db.put(key, packLarge(packr, value, false, sized)).catch((err: unknown) => {
      this.onWriteError(err, key);
      return false;
    });
  }

  private get<T>(key: string): T | undefined {
    const b = this.db.get(key);
    return b === undefined ? undefined : (packr.unpack(b) as T);
  }

  private *range<T>(prefix: string): Generator<{ key: string; value: T }> {
    for (const { key, value } of this.db.getRange({ start: prefix, end: prefix + '\uffff' })) {
      yield { key: key as string, value: packr.unpack(value as Buffer) as T };
    }
  }

  // ---------------------------------------------------------------- targets and indexes

  putTarget(t: StoredTarget): void {
    void this.put(`target/${t.id}`, t);
  }

  getTarget(id: string): StoredTarget | undefined {
    return this.get<StoredTarget>(`target/${id}`);
  }

  /**
   * Where a symbolization is kept: by the build-id read from the ELF and the hash of the PC
   * table it was made for, so only the same binary with the same PCs finds it. Records from
   * before the hash was kept (no pcsHash) use the old key.
   */
  static indexKey(id: string, buildId: string | null, pcsHash?: string): string {
    const base = buildId ? `index/${buildId}` : `index/id:${id}`;
    return pcsHash ? `${base}/${pcsHash}` : base;
  }

  putIndex(key: string, index: SourceIndex): Promise<boolean> {
    return this.put(key, index, true);
  }

  getIndex(key: string): SourceIndex | undefined {
    return this.get<SourceIndex>(key);
  }

  // ---------------------------------------------------------------- coverage and history

  appendDelta(id: string, seq: number, t: number, pcs: Uint32Array): void {
    void this.put(deltaKey(id, seq), { t, pcs });
    this.deltasSinceCompact.set(id, (this.deltasSinceCompact.get(id) ?? 0) + 1);
  }

  /** True when the target's delta log is long enough to fold into its snapshot. */
  wantsCompaction(id: string): boolean {
    return (this.deltasSinceCompact.get(id) ?? 0) >= COMPACT_EVERY || (this.samplesSinceCompact.get(id) ?? 0) >= COMPACT_SAMPLES;
  }

  /** Appends a history sample; counts toward compaction so a plateaued target's samples get thinned too. */
  appendSample(id: string, s: HistorySample): void {
    void this.put(histKey(id, s.t), [s.nRuns, s.uniqueRuns, s.covered]);
    this.samplesSinceCompact.set(id, (this.samplesSinceCompact.get(id) ?? 0) + 1);
  }

  /**
   * Replaces the delta log with a snapshot and the stored history with `history` (the
   * registry's thinned copy), atomically.
   */
  compact(id: string, snap: { seq: number; seen: Uint8Array; firstSeen: Uint32Array }, history: HistorySample[]): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.deltasSinceCompact.set(id, 0);
    this.samplesSinceCompact.set(id, 0);
    const snapBytes = packLarge(packr, { seq: snap.seq, seen: snap.seen, firstSeen: snap.firstSeen }, false, true);
    const hist = history.map((s) => [histKey(id, s.t), packr.pack([s.nRuns, s.uniqueRuns, s.covered])] as const);
    return this.db.transaction(() => {
      // Only what the snapshot covers: writes queued after it was taken must survive.
      for (const key of [...this.db.getKeys({ start: `delta/${id}/`, end: deltaKey(id, snap.seq + 1) })]) this.db.removeSync(key as string);
      const lastT = history.length ? history[history.length - 1]!.t : -1;
      for (const key of [...this.db.getKeys({ start: `hist/${id}/`, end: histKey(id, lastT + 1) })]) this.db.removeSync(key as string);
      this.db.putSync(`cov/${id}`, snapBytes);
      for (const [k, v] of hist) this.db.putSync(k, v);
      return true;
    });
  }

  removeTarget(id: string): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.deltasSinceCompact.delete(id);
    return this.db.transaction(() => {
      for (const prefix of [`delta/${id}/`, `hist/${id}/`]) {
        for (const key of [...this.db.getKeys({ start: prefix, end: prefix + '\uffff' })]) this.db.removeSync(key as string);
      }
      this.db.removeSync(`cov/${id}`);
      const t = this.get<StoredTarget>(`target/${id}`);
      this.db.removeSync(`target/${id}`);
      // Drop the index when no other target uses it.
      if (t) {
        const key = Store.indexKey(id, t.buildId, t.pcsHash);
        const shared = [...this.range<StoredTarget>('target/')].some(({ value }) => Store.indexKey(value.id, value.buildId, value.pcsHash) === key);
        if (!shared) this.db.removeSync(key);
      }
      return true;
    });
  }

  /** Every stored target with its coverage (snapshot + log replayed) and history. */
  loadAll(): RestoredTarget[] {
    const out: RestoredTarget[] = [];
    for (const { key, value: t } of this.range<StoredTarget>('target/')) {
      try {
        out.push(this.loadTarget(t));
      } catch (err) {
        // One unreadable record (corrupt, or an older schema) must not keep the daemon from starting.
        this.onLoadError(err, key);
      }
    }
    return out;
  }

  /** Told about a stored target that could not be loaded (it is skipped). */
  onLoadError: (err: unknown, key: string) => void = () => {};

  private loadTarget(t: StoredTarget): RestoredTarget {
    const pcsLen = t.stats.pcsLen;
    const snap = this.get<{ seq: number; seen: Uint8Array; firstSeen: Uint32Array }>(`cov/${t.id}`);
    const ok = snap && snap.seen.length === seenBytes(pcsLen) && snap.firstSeen.length === pcsLen;
    const seen = ok ? snap.seen.slice() : new Uint8Array(seenBytes(pcsLen));
    const firstSeen = ok ? snap.firstSeen.slice() : new Uint32Array(pcsLen);
    let seq = ok ? snap.seq : 0;
    let n = 0;
    for (const { value: d } of this.range<{ t: number; pcs: Uint32Array }>(`delta/${t.id}/`)) {
      const sec = Math.floor(d.t / 1000) || 1;
      for (const pc of d.pcs) {
        if (pc >= pcsLen) continue;
        if (setSeen(seen, pc)) firstSeen[pc] = sec;
      }
      n++;
    }
    for (const k of this.db.getKeys({ start: `delta/${t.id}/`, end: `delta/${t.id}/\uffff` })) {
      seq = Math.max(seq, Number(String(k).slice(-12)));
    }
    this.deltasSinceCompact.set(t.id, n);
    const history: HistorySample[] = [];
    for (const { key, value } of this.range<[number, number, number]>(`hist/${t.id}/`)) {
      history.push({ t: Number(key.slice(-15)), nRuns: value[0], uniqueRuns: value[1], covered: value[2] });
    }
    const index = t.state === 'failed' ? null : this.getIndex(Store.indexKey(t.id, t.buildId, t.pcsHash)) ?? null;
    const { retiredAt, ...info } = t;
    return { info, index, seen, firstSeen, seq, history, retiredAt };
  }

  /** Resolves when every write so far is committed. */
  async flush(): Promise<void> {
    await this.db.flushed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.flushed;
    await this.db.close();
  }
}

/**
 * Wires registry events to the store: targets on every change, deltas as they happen,
 * history samples, compaction when a log grows long. Returns a function that compacts every
 * target (call at shutdown) and detaches.
 */
export function persistRegistry(reg: TargetRegistry, store: Store, log: Logger): { compactAll(): Promise<void>; detach(): void } {
  const compactOne = (id: string) => {
    const d = reg.target(id);
    if (!d || reg.isRemote(id)) return Promise.resolve(false); // a fleet target no fuzzer here runs: rebuilt from JetStream, never stored
    return store.compact(id, { seq: d.seq, seen: d.seen, firstSeen: d.firstSeen }, reg.history(id));
  };
  const onTarget = (t: TargetInfo) => { if (!reg.isRemote(t.id)) store.putTarget({ ...t, retiredAt: reg.retiredAt(t.id) }); };
  const onDelta = (d: { id: string; seq: number; time: number; newPcs: Uint32Array }) => {
    if (reg.isRemote(d.id)) return;
    const info = reg.info(d.id);
    if (info) store.putTarget({ ...info, retiredAt: reg.retiredAt(d.id) });
    if (d.newPcs.length) {
      store.appendDelta(d.id, d.seq, d.time, d.newPcs);
      if (store.wantsCompaction(d.id)) compactOne(d.id).catch((err) => log.error('store compaction failed', { id: d.id, err }));
    }
  };
  const onSample = (id: string, s: HistorySample) => {
    if (reg.isRemote(id)) return;
    store.appendSample(id, s);
    if (store.wantsCompaction(id)) compactOne(id).catch((err) => log.error('store compaction failed', { id, err }));
  };
  const onRemoved = (id: string) => { store.removeTarget(id).catch((err) => log.error('store removal failed', { id, err })); };
  reg.on('target', onTarget);
  reg.on('delta', onDelta);
  reg.on('sample', onSample);
  reg.on('removed', onRemoved);
  return {
    async compactAll() {
      await Promise.all(reg.targets().map((t) => compactOne(t.id)));
    },
    detach() {
      reg.off('target', onTarget);
      reg.off('delta', onDelta);
      reg.off('sample', onSample);
      reg.off('removed', onRemoved);
    },
  };
}
