/**
 * Dispatch: what the daemon does with a `coverage` announcement (from the control socket or
 * the directory watcher), mirroring the seed's coverageRun.
 *
 * - Known id: a cheap no-op (the coverage thread is reminded to track the file, which wakes it:
 *   the agent re-announces whenever it finds new PCs), unless the target failed (then it is
 *   retried from scratch, except for a repeat from the same pid with the file unchanged) or the metadata beside the file names a
 *   different build-id than the target's (the executable was rebuilt with the same PC list,
 *   so the lines moved): then its PCs are resolved again against the new executable.
 * - New id: read the PC list (retrying while the file is still being written), add the target
 *   ('loading'), start tracking it on the coverage thread at once (stats flow while symbolizing),
 *   and resolve every PC: from the store when this build-id was resolved before, else on the
 *   symbolizer pool. Then the target is 'ready'. Any error fails this target only, with a reason.
 *
 * Retirement policy: a rebuilt executable has a different PC list, hence a new id and a new
 * target. When a target becomes ready, older live targets of the same executable path are
 * retired: kept read-only (coverage and history stay viewable, the coverage thread stops
 * reading their files). Retired targets are deleted `retireDays` after retirement, and beyond
 * the newest `keepRetired` retired targets per executable (checked at start and hourly).
 */
import { existsSync, statSync } from 'node:fs';
import type { CoverageMessage, BusMessage } from '../bus/messages.js';
import { CoverageFileError } from '../coverage/types.js';
import { DebugInfoError, type SourceIndex, type Symbolizer } from '../workers/types.js';
import type { TargetInfo } from './hub.js';
import type { TargetRegistry } from './registry.js';
import { Store } from './store.js';
import { readMeta } from './watch.js';
import type { Logger } from '../util/log.js';

export interface PcList {
  pcsLen: number;
  pcs: BigUint64Array;
}

export interface DispatchDeps {
  registry: TargetRegistry;
  symbolizer: Symbolizer;
  store?: Store;
  /** Posts to the coverage thread. */
  toThread: (m: BusMessage) => void;
  /** Reads a coverage file's PC list (throws CoverageFileError). */
  readPcs: (file: string) => Promise<PcList>;
  log: Logger;
  /** Retirement times by id, shared with the store wiring. */
  retiredAt: Map<string, number>;
  retireDays: number;
  keepRetired: number;
  /** Called when a target became ready, with the files it names (for change watching). */
  onReady?: (id: string) => void;
  now?: () => number;
}

/** How long to keep retrying a coverage file that is still being created. */
const OPEN_DEADLINE_MS = 10_000;

/** A reason a user can act on, for an error from reading or symbolizing. */
export function reasonFor(err: unknown, exe: string, file: string): string {
  if (err instanceof DebugInfoError || (err as { name?: string })?.name === 'DebugInfoError') {
    const e = err as DebugInfoError;
    switch (e.code) {
      case 'ENOENT': return `executable ${exe} does not exist (deleted or moved): ${e.message}`;
      case 'NO_DEBUG_INFO': return `executable ${exe} has no debug info; rebuild it with -g (${e.message})`;
      case 'NOT_ELF': return `executable ${exe} is not a 64-bit little-endian ELF file (${e.message})`;
      case 'CORRUPT': return `executable ${exe} has corrupt debug info: ${e.message}`;
      case 'UNSUPPORTED': return `executable ${exe} uses unsupported debug info: ${e.message}`;
    }
  }
  if (err instanceof CoverageFileError || (err as { name?: string })?.name === 'CoverageFileError') {
    const e = err as CoverageFileError;
    return `coverage file ${file} is unusable (${e.code}): ${e.message}`;
  }
  return `symbolizing ${exe} failed: ${(err as Error)?.message ?? String(err)}`;
}

export class Dispatcher {
  private readonly pending = new Map<string, Promise<TargetInfo>>();
  /** PC lists of targets being (re)resolved or kept for re-resolution, by id. */
  private readonly now: () => number;
  private closed = false;
  /** By id: the attempt (attemptKey) that last started resolving it, for failed-target repeats. */
  private readonly failedAttempt = new Map<string, string | undefined>();

  constructor(private readonly d: DispatchDeps) {
    this.now = d.now ?? Date.now;
  }

  /** Handles a `coverage` announcement; resolves once the target is ready or failed. */
  announce(m: CoverageMessage): Promise<TargetInfo> {
    const reg = this.d.registry;
    const inflight = this.pending.get(m.id);
    if (inflight) return inflight;
    const known = reg.info(m.id);
    if (known && known.state !== 'failed') {
      if (known.state === 'retired') return Promise.resolve({ ...known });
      this.d.toThread({ type: 'coverage', id: m.id, exe: known.exe, file: known.coverageFile });
      const meta = readMeta(m.file);
      if (known.state === 'ready' && meta?.buildId && known.buildId && meta.buildId !== known.buildId) {
        return this.track(m.id, this.reresolve(m.id, m.exe, meta.buildId));
      }
      return Promise.resolve({ ...known });
    }
    const attempt = this.attemptKey(m);
    if (known) {
      // Failed before: start over, unless it is the same process re-announcing the same file
      // (the agent re-sends its frame whenever it finds new PCs; redoing the work each time
      // would only fail again). A new process, a changed file or a manual add retries.
      if (attempt !== undefined && this.failedAttempt.get(m.id) === attempt) return Promise.resolve({ ...known });
      reg.remove(m.id);
    }
    this.failedAttempt.set(m.id, attempt);
    return this.track(m.id, this.addNew(m));
  }

  /** Which announcement a failure belongs to: the sender's pid and the file's size (undefined: always retry). */
  private attemptKey(m: CoverageMessage): string | undefined {
    if (m.pid === undefined) return undefined;
    try {
      return `${m.pid}:${statSync(m.file).size}`;
    } catch {
      return undefined;
    }
  }

  /** Never rejects: an unexpected error fails the target with its message. */
  private track(id: string, p: Promise<TargetInfo>): Promise<TargetInfo> {
    const q = p
      .catch((err: unknown) => {
        const info = this.d.registry.info(id);
        this.d.log.error('dispatch failed', { id, err });
        if (info) this.d.registry.fail(id, reasonFor(err, info.exe, info.coverageFile));
        return { ...(this.d.registry.info(id) ?? ({ id, state: 'failed' } as TargetInfo)) };
      })
      .finally(() => this.pending.delete(id));
    this.pending.set(id, q);
    return q;
  }

  /** Waits for every announcement in flight (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending.values()]);
  }

  private async readPcsPatiently(file: string): Promise<PcList> {
    const deadline = this.now() + OPEN_DEADLINE_MS;
    let delay = 50;
    for (;;) {
      try {
        return await this.d.readPcs(file);
      } catch (err) {
        if (!(err instanceof CoverageFileError) || !err.retryable || this.now() > deadline || this.closed) throw err;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 1000);
      }
    }
  }

  private async addNew(m: CoverageMessage): Promise<TargetInfo> {
    const reg = this.d.registry;
    const log = this.d.log.child({ id: m.id });
    const meta = readMeta(m.file);
    let list: PcList;
    try {
      list = await this.readPcsPatiently(m.file);
    } catch (err) {
      reg.add({ id: m.id, exe: m.exe, coverageFile: m.file, pcsLen: 0, buildId: meta?.buildId ?? null });
      const reason = reasonFor(err, m.exe, m.file);
      log.warn('target failed', { reason });
      reg.fail(m.id, reason);
      return reg.info(m.id)!;
    }
    reg.add({ id: m.id, exe: m.exe, coverageFile: m.file, pcsLen: list.pcsLen, buildId: meta?.buildId ?? null });
    log.info('new target', { exe: m.exe, pcs: list.pcsLen, pid: m.pid });
    this.d.toThread({ type: 'coverage', id: m.id, exe: m.exe, file: m.file });
    return this.resolveInto(m.id, m.exe, list, meta?.buildId ?? null);
  }

  /** Finishes a restored target that was still 'loading' when the daemon stopped. */
  resume(id: string): Promise<TargetInfo> {
    const info = this.d.registry.info(id);
    if (!info) return Promise.reject(new Error(`no target ${id}`));
    return this.track(id, (async () => {
      const list = await this.readPcsPatiently(info.coverageFile);
      this.d.toThread({ type: 'coverage', id, exe: info.exe, file: info.coverageFile });
      return this.resolveInto(id, info.exe, list, info.buildId);
    })());
  }

  private async reresolve(id: string, exe: string, buildId: string): Promise<TargetInfo> {
    const reg = this.d.registry;
    const info = reg.info(id)!;
    this.d.log.info('executable rebuilt with the same PCs; resolving again', { id, exe, buildId });
    let list: PcList;
    try {
      list = await this.readPcsPatiently(info.coverageFile);
    } catch (err) {
      reg.fail(id, reasonFor(err, exe, info.coverageFile));
      return reg.info(id)!;
    }
    info.buildId = buildId;
    reg.reload(id);
    return this.resolveInto(id, exe, list, buildId);
  }

  private async resolveInto(id: string, exe: string, list: PcList, buildId: string | null): Promise<TargetInfo> {
    const reg = this.d.registry;
    const log = this.d.log.child({ id });
    const key = Store.indexKey(id, buildId);
    let index: SourceIndex | undefined;
    if (buildId && this.d.store) {
      const cached = this.d.store.getIndex(key);
      if (cached && cached.pcFile.length === list.pcsLen) {
        index = cached;
        log.info('symbolization loaded from the store', { buildId });
      }
    }
    if (!index) {
      const t0 = performance.now();
      try {
        index = await this.d.symbolizer.resolve({ exe, pcs: list.pcs });
      } catch (err) {
        const reason = reasonFor(err, exe, reg.info(id)?.coverageFile ?? '');
        log.warn('target failed', { reason });
        reg.fail(id, reason);
        return reg.info(id)!;
      }
      if (index.pcFile.length !== list.pcsLen) {
        reg.fail(id, `symbolizer returned ${index.pcFile.length} locations for ${list.pcsLen} PCs`);
        return reg.info(id)!;
      }
      log.info('symbolized', { ms: Math.round(performance.now() - t0), files: index.files.length, buildId: index.buildId });
      if (this.d.store) await this.d.store.putIndex(Store.indexKey(id, index.buildId ?? buildId), index);
    }
    if (!reg.has(id)) return { ...(reg.info(id) as TargetInfo) }; // removed meanwhile
    reg.setIndex(id, index);
    this.retireOlder(id);
    this.d.onReady?.(id);
    return { ...reg.info(id)! };
  }

  /** Retires every other live target of the same executable that is older than `id`. */
  private retireOlder(id: string): void {
    const reg = this.d.registry;
    const me = reg.info(id)!;
    for (const other of reg.idsForExe(me.exe)) {
      if (other === id) continue;
      const o = reg.info(other)!;
      if (o.state === 'retired' || o.createdAt > me.createdAt) continue;
      this.d.retiredAt.set(other, this.now());
      this.d.toThread({ type: 'remove', id: other });
      reg.retire(other, `the executable was rebuilt; superseded by target ${id}`);
      this.d.log.info('target retired', { id: other, by: id });
    }
    this.enforceRetention();
  }

  /** Deletes retired targets past retireDays, and beyond keepRetired per executable. */
  enforceRetention(): void {
    const reg = this.d.registry;
    const now = this.now();
    const byExe = new Map<string, { id: string; at: number }[]>();
    for (const t of reg.targets()) {
      if (t.state !== 'retired') continue;
      const at = this.d.retiredAt.get(t.id) ?? now;
      if (!this.d.retiredAt.has(t.id)) this.d.retiredAt.set(t.id, at);
      if (now - at > this.d.retireDays * 86_400_000) { this.drop(t.id, 'retired too long ago'); continue; }
      const list = byExe.get(t.exe) ?? [];
      list.push({ id: t.id, at });
      byExe.set(t.exe, list);
    }
    for (const list of byExe.values()) {
      list.sort((a, b) => b.at - a.at);
      for (const extra of list.slice(this.d.keepRetired)) this.drop(extra.id, 'too many retired targets for this executable');
    }
  }

  private drop(id: string, why: string): void {
    this.d.log.info('deleting retired target', { id, why });
    this.remove(id);
  }

  /** Forgets a target (and its stored data). */
  remove(id: string): boolean {
    this.d.toThread({ type: 'remove', id });
    this.d.retiredAt.delete(id);
    return this.d.registry.remove(id);
  }

  /** An executable changed on disk: re-resolve targets whose agent already announced the new build. */
  exeChanged(exe: string): void {
    const reg = this.d.registry;
    for (const id of reg.idsForExe(exe)) {
      const t = reg.info(id)!;
      if (t.state === 'retired' || t.state === 'failed') continue;
      if (!existsSync(exe)) {
        this.d.log.warn('executable deleted; the target keeps its symbolization', { id, exe });
        continue;
      }
      const meta = readMeta(t.coverageFile);
      if (meta?.buildId && t.buildId && meta.buildId !== t.buildId && !this.pending.has(id)) {
        void this.track(id, this.reresolve(id, exe, meta.buildId));
      } else {
        this.d.log.info('executable changed on disk; waiting for it to run to see whether its PCs changed', { id, exe });
      }
    }
  }

  /** A source file changed: tell every target whose debug info names it. */
  sourceChanged(path: string): void {
    for (const { id, file } of this.d.registry.filesNamed(path)) this.d.registry.sourceChanged(id, file);
  }

  /** New retention settings (SIGHUP). */
  setRetention(retireDays: number, keepRetired: number): void {
    this.d.retireDays = retireDays;
    this.d.keepRetired = keepRetired;
  }

  close(): void {
    this.closed = true;
  }
}
