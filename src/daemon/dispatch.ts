/**
 * Dispatch: what the daemon does with a `coverage` announcement (from the control socket or
 * the directory watcher), mirroring the seed's coverageRun.
 *
 * - Known id: a cheap no-op (the coverage thread is reminded to track the file, which wakes it:
 *   the agent re-announces whenever it finds new PCs), unless the target failed (then it is
 *   retried, keeping its coverage, history and creation time, except for a repeat from the same
 *   pid with the file unchanged) or the metadata beside the file names a different build-id
 *   than the target's (the executable was rebuilt with the same PC list, so the lines moved):
 *   then its PCs are resolved again against the new executable.
 * - New id: read the PC list (retrying while the file is still being written), add the target
 *   ('loading'), start tracking it on the coverage thread at once (stats flow while symbolizing),
 *   and resolve every PC: from the store when this build-id was resolved before, else on the
 *   symbolizer pool. Then the target is 'ready'. Any error fails this target only, with a reason.
 *   An index without the inlined code (pcInlined) then gets a second pass in the background
 *   (upgrade): the inlined code alone is resolved and added to it (merge.ts's addInlined), stored,
 *   and put in place; a failure there keeps it as is.
 * - What a stored index is trusted for: it is keyed by the build-id read from the ELF and the
 *   hash of the PC table, and a fresh resolution is kept only when the executable's build-id is
 *   the one its fuzzer reported; so a metadata file naming some other binary can fail its own
 *   target but never change another's lines.
 *
 * Retirement policy: a rebuilt executable has a different PC list, hence a new id and a new
 * target. When a target becomes ready (and every SWEEP_MS after), older targets of the same
 * executable path are retired when no writer of theirs is alive (liveness.ts) and either their
 * build-id differs or their file has not changed for IDLE_RETIRE_MS: kept read-only (coverage and history stay viewable, the coverage thread stops
 * reading their files). Deleting them later is the retention policy's (retention.ts).
 */
import { stat } from 'node:fs/promises';
import type { CoverageMessage, BusMessage } from '../bus/messages.js';
import { readMeta } from '../coverage/meta.js';
import { CoverageFileError } from '../coverage/types.js';
import { trustedOwner } from '../util/untrusted.js';
import { codeOf, CovdError } from '../contracts/errors.js';
import { DebugInfoError, type SourceIndex, type Symbolizer } from '../workers/types.js';
import { addInlined } from '../workers/merge.js';
import type { TargetInfo } from '../contracts/hub.js';
import { writerAlive } from './liveness.js';
import type { TargetRegistry } from './registry.js';
import { Store } from './store.js';
import type { Logger } from '../util/log.js';

export interface PcList {
  pcsLen: number;
  pcs: BigUint64Array;
  /** pcTableHash(pcs) */
  pcsHash: string;
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
  /** Called after targets were retired (the retention policy runs then). */
  onRetired?: () => void;
  /** Called when a target became ready, with the files it names (for change watching). */
  onReady?: (id: string) => void;
  now?: () => number;
}

/** How long to keep retrying a coverage file that is still being created. */
const OPEN_DEADLINE_MS = 10_000;
/** A superseded target of unknown build whose file has not changed for this long (and whose writer is gone) is retired. */
export const IDLE_RETIRE_MS = 30_000;
/** The log lines that end a target's second pass (the inlined code), one of the three each time. */
export const INLINED_ADDED = 'inlined code symbolized';
export const INLINED_DROPPED = 'inlined code not added';
export const INLINED_FAILED = 'could not symbolize the inlined code; the target keeps its index without it';

/** A reason a user can act on, for an error from reading or symbolizing; switched on its code. */
export function reasonFor(err: unknown, exe: string, file: string): string {
  const msg = (err as Error)?.message ?? String(err);
  switch (codeOf(err)) {
    case 'COVD_ERR_DEBUG_INFO_ENOENT': return `executable ${exe} does not exist (deleted or moved): ${msg}`;
    case 'COVD_ERR_DEBUG_INFO_NO_DEBUG_INFO': return `executable ${exe} has no debug info; rebuild it with -g (${msg})`;
    case 'COVD_ERR_DEBUG_INFO_NOT_ELF': return `executable ${exe} is not a 64-bit little-endian ELF file (${msg})`;
    case 'COVD_ERR_DEBUG_INFO_CORRUPT': return `executable ${exe} has corrupt debug info: ${msg}`;
    case 'COVD_ERR_DEBUG_INFO_UNSUPPORTED': return `executable ${exe} uses unsupported debug info: ${msg}`;
    case 'COVD_ERR_DEBUG_INFO_NOT_REGULAR': return `executable ${exe} is not a regular file (${msg})`;
    case 'COVD_ERR_DEBUG_INFO_TIMEOUT': return `symbolizing ${exe} took too long: ${msg}`;
  }
  if (err instanceof CoverageFileError) return `coverage file ${file} is unusable (${err.kind}): ${msg}`;
  return `symbolizing ${exe} failed: ${msg}`;
}

export class Dispatcher {
  private readonly pending = new Map<string, Promise<TargetInfo>>();
  private readonly now: () => number;
  private closed = false;
  /** By id: the attempt (attemptKey) that last started resolving it, for failed-target repeats. */
  private readonly failedAttempt = new Map<string, string | undefined>();
  /** Targets whose stored index (without pcInlined) was resolved again, or tried: once per run. */
  private readonly upgraded = new Set<string>();
  /** Second passes (inlined code) running, by target. */
  private readonly background = new Map<string, Promise<void>>();

  constructor(private readonly d: DispatchDeps) {
    this.now = d.now ?? Date.now;
  }

  /** Handles a `coverage` announcement; resolves once the target is ready or failed. */
  announce(m: CoverageMessage): Promise<TargetInfo> {
    const reg = this.d.registry;
    const inflight = this.pending.get(m.id);
    if (inflight) return inflight;
    const known = reg.info(m.id);
    // A fleet target other nodes fuzz, now fuzzed here too: read and resolve it as a new one (the registry keeps its coverage).
    if (known && reg.isRemote(m.id)) return this.track(m.id, this.addNew(m));
    if (known && known.state !== 'failed') {
      if (known.state === 'retired') return Promise.resolve({ ...known });
      this.follow(m.id);
      if (known.state !== 'ready') return Promise.resolve({ ...known });
      return this.checkRebuilt(m.id, m.file, m.exe);
    }
    if (known) return this.retryFailed(m);
    // Remember which announcement this is, so a failure is not redone for each repeat of it.
    return this.track(m.id, this.attemptKey(m).then((a) => { this.failedAttempt.set(m.id, a); return this.addNew(m); }));
  }

  /** Tells the coverage thread to follow a target's file, with the PC table it must hold. */
  private follow(id: string): void {
    const t = this.d.registry.info(id);
    if (t) this.d.toThread({ type: 'coverage', id, exe: t.exe, file: t.coverageFile, ...(t.pcsHash ? { pcsHash: t.pcsHash } : {}) });
  }

  /** A ready target re-announced: resolve again when its metadata names another build. */
  private async checkRebuilt(id: string, file: string, exe: string): Promise<TargetInfo> {
    const meta = await readMeta(file);
    const t = this.d.registry.info(id);
    if (!t) return { id, state: 'failed' } as TargetInfo;
    if (t.state === 'ready' && meta?.buildId && t.buildId && meta.buildId !== t.buildId && !this.pending.has(id)) {
      return this.track(id, this.reresolve(id, exe, meta.buildId));
    }
    // Restored with an index from before inlined code was resolved: resolve it once more, in
    // the background (the target stays ready and keeps its index meanwhile).
    const ix = this.d.registry.target(id)?.index;
    if (t.state === 'ready' && ix && !ix.pcInlined && !this.upgraded.has(id) && !this.pending.has(id) && !this.background.has(id) && (!meta?.buildId || meta.buildId === t.buildId)) {
      this.upgraded.add(id);
      this.inBackground(id, (async () => {
        const list = await this.readPcsPatiently(file);
        if (t.pcsHash === undefined || t.pcsHash === list.pcsHash) await this.upgrade(id, exe, list, ix);
      })());
    }
    return { ...t };
  }

  private async retryFailed(m: CoverageMessage): Promise<TargetInfo> {
    // Failed before: retry, unless it is the same process re-announcing the same file (the agent
    // re-sends its frame whenever it finds new PCs; redoing the work each time would only fail
    // again). A new process, a changed file or a manual add retries.
    const attempt = await this.attemptKey(m);
    const inflight = this.pending.get(m.id);
    if (inflight) return inflight;
    const known = this.d.registry.info(m.id);
    if (!known || known.state !== 'failed') return known ? { ...known } : this.announce(m);
    if (attempt !== undefined && this.failedAttempt.get(m.id) === attempt) return { ...known };
    this.failedAttempt.set(m.id, attempt);
    return this.track(m.id, this.retry(m));
  }

  /** Which announcement a failure belongs to: the sender's pid and the file's size (undefined: always retry). */
  private async attemptKey(m: CoverageMessage): Promise<string | undefined> {
    if (m.pid === undefined) return undefined;
    try {
      return `${m.pid}:${(await stat(m.file)).size}`;
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
        if (info) this.d.registry.fail(id, reasonFor(err, info.exe, info.coverageFile), codeOf(err));
        return { ...(this.d.registry.info(id) ?? ({ id, state: 'failed' } as TargetInfo)) };
      })
      .finally(() => this.pending.delete(id));
    this.pending.set(id, q);
    return q;
  }

  /** Waits for every announcement in flight (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.pending.size || this.background.size) await Promise.allSettled([...this.pending.values(), ...this.background.values()]);
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
    const meta = await readMeta(m.file);
    let list: PcList;
    try {
      list = await this.readPcsPatiently(m.file);
    } catch (err) {
      reg.add({ id: m.id, exe: m.exe, coverageFile: m.file, pcsLen: 0, buildId: meta?.buildId ?? null });
      const reason = reasonFor(err, m.exe, m.file);
      log.warn('target failed', { reason });
      reg.fail(m.id, reason, codeOf(err));
      return reg.info(m.id)!;
    }
    reg.add({ id: m.id, exe: m.exe, coverageFile: m.file, pcsLen: list.pcsLen, pcsHash: list.pcsHash, buildId: meta?.buildId ?? null });
    log.info('new target', { exe: m.exe, pcs: list.pcsLen, fuzzerPid: m.pid });
    this.follow(m.id);
    return this.resolveInto(m.id, m.exe, list, meta?.buildId ?? null);
  }

  /**
   * A failed target announced again: read what failed once more, keeping everything stored (its
   * coverage, history and creation time). A file that now holds another PC table stays failed.
   */
  private async retry(m: CoverageMessage): Promise<TargetInfo> {
    const reg = this.d.registry;
    const info = reg.info(m.id)!;
    const log = this.d.log.child({ id: m.id });
    const meta = await readMeta(info.coverageFile);
    let list: PcList;
    try {
      list = await this.readPcsPatiently(info.coverageFile);
    } catch (err) {
      const reason = reasonFor(err, info.exe, info.coverageFile);
      if (reason !== info.error) reg.fail(m.id, reason, codeOf(err));
      return { ...reg.info(m.id)! };
    }
    if (info.stats.pcsLen === 0) reg.setPcs(m.id, list.pcsLen, list.pcsHash);
    const t = reg.info(m.id)!;
    if (t.stats.pcsLen !== list.pcsLen || (t.pcsHash !== undefined && t.pcsHash !== list.pcsHash)) {
      reg.fail(m.id, `coverage file ${t.coverageFile} now holds a different PC table than this target's; its coverage is kept, and the new file is not read`, 'COVD_ERR_COVERAGE_PCS_CHANGED');
      return { ...reg.info(m.id)! };
    }
    if (t.pcsHash === undefined) t.pcsHash = list.pcsHash;
    const buildId = meta?.buildId ?? t.buildId;
    if (buildId !== t.buildId) t.buildId = buildId;
    log.info('retrying a failed target', { exe: t.exe, fuzzerPid: m.pid });
    reg.reload(m.id);
    this.follow(m.id);
    return this.resolveInto(m.id, t.exe, list, buildId);
  }

  /**
   * The second pass over a ready target: the inlined code of its PCs (pcInlined, and the call
   * sites) added to `from`, which the result replaces when it is still the target's index. Run after
   * the target is ready, so the inlined chains (a walk of every DIE of each unit; several times
   * the plain resolve, bench/NOTES-symbolize.md) never delay it, and a failure or a deadline
   * there keeps the index the target has.
   */
  private async upgrade(id: string, exe: string, list: PcList, from: SourceIndex): Promise<void> {
    const reg = this.d.registry;
    const t0 = performance.now();
    try {
      // The inlined code alone, added to the index the target has: nothing is resolved twice.
      const part = await this.d.symbolizer.resolve({ exe, pcs: list.pcs, inlinedOnly: true });
      // Added only to the index it was resolved for, of the same build (a mismatch of PC counts
      // is addInlined's to refuse, and lands in the catch below).
      const dropped = (reason: string) => this.d.log.info(INLINED_DROPPED, { id, reason });
      if (!reg.info(id)) return dropped('target removed');
      if (reg.target(id)?.index !== from) return dropped('index replaced meanwhile');
      if (part.buildId !== from.buildId) return dropped('executable rebuilt meanwhile');
      const index = addInlined(from, part);
      index.pcsHash = list.pcsHash;
      if (this.d.store) await this.d.store.putIndex(Store.indexKey(id, index.buildId, list.pcsHash), index);
      if (reg.target(id)?.index !== from) return dropped('index replaced meanwhile');
      reg.setIndex(id, index);
      this.d.log.info(INLINED_ADDED, { id, ms: Math.round(performance.now() - t0) });
    } catch (err) {
      this.d.log.info(INLINED_FAILED, { id, reason: reasonFor(err, exe, reg.info(id)?.coverageFile ?? '') });
    }
  }

  /** Whether the target's index is being resolved or given its second pass now (it changes soon). */
  settling(id: string): boolean {
    return this.pending.has(id) || this.background.has(id);
  }

  /** Runs a second pass in the background; idle() waits for it too. */
  private inBackground(id: string, p: Promise<void>): void {
    const q = p.catch((err: unknown) => this.d.log.error('background symbolization failed', { id, err })).finally(() => { if (this.background.get(id) === q) this.background.delete(id); });
    this.background.set(id, q);
  }

  /** Finishes a restored target that was still 'loading' when the daemon stopped (or whose stored index did not match). */
  resume(id: string): Promise<TargetInfo> {
    const info = this.d.registry.info(id);
    if (!info) return Promise.reject(new CovdError('COVD_ERR_NO_TARGET', `no target ${id}`));
    return this.track(id, (async () => {
      const list = await this.readPcsPatiently(info.coverageFile);
      if (info.pcsHash !== undefined && info.pcsHash !== list.pcsHash) {
        this.d.registry.fail(id, `coverage file ${info.coverageFile} now holds a different PC table than this target's; its coverage is kept, and the new file is not read`, 'COVD_ERR_COVERAGE_PCS_CHANGED');
        return { ...this.d.registry.info(id)! };
      }
      info.pcsHash ??= list.pcsHash;
      this.follow(id);
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
      reg.fail(id, reasonFor(err, exe, info.coverageFile), codeOf(err));
      return reg.info(id)!;
    }
    if (info.pcsHash !== undefined && info.pcsHash !== list.pcsHash) {
      reg.fail(id, `coverage file ${info.coverageFile} now holds a different PC table than this target's; its coverage is kept, and the new file is not read`, 'COVD_ERR_COVERAGE_PCS_CHANGED');
      return reg.info(id)!;
    }
    info.buildId = buildId;
    reg.reload(id);
    return this.resolveInto(id, exe, list, buildId);
  }

  /** The executable must be a file of this user or root, like the coverage files that name it. */
  private async checkExecutable(exe: string): Promise<string | undefined> {
    try {
      const st = await stat(exe);
      if (!trustedOwner(st.uid)) return `executable ${exe} is owned by uid ${st.uid}, neither this user nor root; covd reads only executables it can trust to name source files`;
      if (!st.isFile()) return `executable ${exe} is not a regular file`;
    } catch {
      return undefined; // missing: the symbolizer says so in its own words
    }
    return undefined;
  }

  private async resolveInto(id: string, exe: string, list: PcList, buildId: string | null): Promise<TargetInfo> {
    const reg = this.d.registry;
    const log = this.d.log.child({ id });
    const failWith = (reason: string, code: string) => {
      log.warn('target failed', { reason, code });
      reg.fail(id, reason, code);
      return { ...reg.info(id)! };
    };
    let index: SourceIndex | undefined;
    if (this.d.store) {
      const cached = this.d.store.getIndex(Store.indexKey(id, buildId, list.pcsHash));
      // One stored without the inlined code (from before it was resolved, or its second pass
      // never finished) is used, and the second pass runs below.
      if (cached && cached.pcFile.length === list.pcsLen && cached.pcsHash === list.pcsHash) {
        index = cached;
        log.info('symbolization loaded from the store', { buildId });
      }
    }
    if (!index) {
      const refused = await this.checkExecutable(exe);
      if (refused) return failWith(refused, 'COVD_ERR_FILE_OWNER');
      const t0 = performance.now();
      try {
        // Without the inlined code: that comes in a second pass once the target is ready (upgrade).
        index = await this.d.symbolizer.resolve({ exe, pcs: list.pcs });
      } catch (err) {
        return failWith(reasonFor(err, exe, reg.info(id)?.coverageFile ?? ''), codeOf(err));
      }
      if (index.pcFile.length !== list.pcsLen) return failWith(`symbolizer returned ${index.pcFile.length} locations for ${list.pcsLen} PCs`, 'COVD_ERR_INTERNAL');
      // The file at `exe` may not be the binary the fuzzer runs (rebuilt since, or a metadata
      // file naming another one): its lines would be wrong, so nothing of it is kept.
      if (buildId && index.buildId !== buildId) {
        return failWith(`executable ${exe} has build-id ${index.buildId ?? 'none'}, but the fuzzer that wrote this coverage file runs build ${buildId}; rebuilt or replaced since it started? Restart the fuzzer`, 'COVD_ERR_DEBUG_INFO_BUILD_ID');
      }
      index.pcsHash = list.pcsHash;
      log.info('symbolized', { ms: Math.round(performance.now() - t0), files: index.files.length, buildId: index.buildId });
      if (this.d.store) await this.d.store.putIndex(Store.indexKey(id, index.buildId, list.pcsHash), index);
    }
    if (!reg.has(id)) return { ...(reg.info(id) as TargetInfo) }; // removed meanwhile
    reg.setIndex(id, index);
    await this.retireSuperseded(reg.info(id)!.exe);
    this.d.onReady?.(id);
    if (!index.pcInlined && !this.closed) {
      this.upgraded.add(id);
      this.inBackground(id, this.upgrade(id, exe, list, index));
    }
    return { ...reg.info(id)! };
  }

  /**
   * Retires older targets of an executable superseded by its newest ready one, when no writer
   * of theirs is alive and either the build-id changed or their file stopped changing. A copy of
   * the same PC table, or another PC table claiming the same build-id, is no rebuild: it never
   * retires anything.
   */
  async retireSuperseded(exe: string): Promise<void> {
    const reg = this.d.registry;
    const ids = reg.idsForExe(exe).map((i) => reg.info(i)!).filter((t) => t.state !== 'retired');
    const newest = ids.filter((t) => t.state === 'ready').sort((a, b) => b.createdAt - a.createdAt)[0];
    if (!newest) return;
    const now = this.now();
    let retired = false;
    for (const o of ids) {
      if (o.id === newest.id || o.createdAt > newest.createdAt) continue;
      if (o.pcsHash !== undefined && o.pcsHash === newest.pcsHash) continue;
      const known = o.buildId !== null && newest.buildId !== null;
      if (known && o.buildId === newest.buildId) continue;
      const rebuilt = known && o.buildId !== newest.buildId;
      const stopped = now - o.stats.updatedAt >= IDLE_RETIRE_MS;
      if (!rebuilt && !stopped) continue;
      const meta = await readMeta(o.coverageFile);
      if (meta && writerAlive(meta.pid, meta.startTime)) continue;
      const cur = reg.info(o.id);
      if (!cur || cur.state === 'retired' || this.pending.has(o.id)) continue;
      this.d.toThread({ type: 'remove', id: o.id });
      reg.retire(o.id, `the executable was rebuilt; superseded by target ${newest.id}`, this.now());
      this.d.log.info('target retired', { id: o.id, by: newest.id, rebuilt });
      retired = true;
    }
    if (retired) this.d.onRetired?.();
  }

  /** Periodic: retire what became retirable since (a superseded fuzzer that has since exited). */
  async sweep(): Promise<void> {
    const exes = new Set<string>();
    for (const t of this.d.registry.targets()) if (t.state !== 'retired') exes.add(t.exe);
    for (const exe of exes) if (this.d.registry.idsForExe(exe).length > 1) await this.retireSuperseded(exe);
  }

  /** Forgets a target (and its stored data). */
  remove(id: string): boolean {
    this.d.toThread({ type: 'remove', id });
    return this.d.registry.remove(id);
  }

  /** An executable changed on disk: re-resolve targets whose agent already announced the new build. */
  async exeChanged(exe: string): Promise<void> {
    const reg = this.d.registry;
    const exists = await stat(exe).then(() => true, () => false);
    for (const id of reg.idsForExe(exe)) {
      const t = reg.info(id);
      if (!t || t.state === 'retired' || t.state === 'failed') continue;
      if (!exists) {
        this.d.log.warn('executable deleted; the target keeps its symbolization', { id, exe });
        continue;
      }
      const meta = await readMeta(t.coverageFile);
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

  close(): void {
    this.closed = true;
  }
}
