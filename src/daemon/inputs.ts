/**
 * Inputs behind coverage, and crashes, on the daemon's side (the agent's half is
 * agent/covd_inputs.c; formats in docs/coverage-file.md, "Inputs and crashes").
 *
 * For every target that is not retired it follows the two logs beside the coverage file,
 * v/<id>.inputs.log and v/<id>.crashes.log, as they grow: after every coverage tick that brought
 * new PCs (the agent logs an input right before the seen bits it set reach the daemon's next
 * tick) and every POLL_MS besides. Each pass reads what was appended since the stored offset,
 * copies the bytes of every input it names into a content-addressed directory under the state
 * directory (<state>/inputs/<2 hex>/<sha1>), so they outlive the fuzzer's directory, and then
 * commits, in one LMDB transaction, the records, the inputs and the new offset. A SIGKILL can
 * lose only a pass in flight, which the next start reads again (applying a record twice changes
 * nothing). For every PC it keeps the input that first reached it: the earliest record naming
 * it (the agent names a PC in one record only, unless the coverage file was recreated).
 *
 * Crash records are kept as they come, and folded into groups (src/daemon/crashes.ts) once
 * libFuzzer had time to write its artifact: their stacks are resolved in one request to the
 * symbolizer pool per target and pass, grouped by signature, and each group keeps its count,
 * its first and last time, its first and its smallest input, and the first crash's frames;
 * the bytes of other crashes' inputs are kept only for the files afl-fuzz saved.
 *
 * AFL++ targets (attachAfl): each afl-fuzz instance's crashes/ and hangs/ are followed too. A
 * file whose input an agent crash record names is linked to it as its artifact; any other file
 * becomes a crash record of its own, without a stack (readAflFiles). libFuzzer targets: the
 * corpus directories of the fuzzer's argv are counted every CORPUS_MS, beside the passes
 * (countCorpus).
 *
 * Everything read from the fuzzer's side is untrusted (src/util/untrusted.ts): logs and inputs
 * are opened non-blocking, regular files only, not through a symlink, this user's or root's,
 * bounded; an input whose bytes do not hash to its name is not kept. Records that are torn,
 * garbled, or name PCs the target does not have are skipped with a logged reason. Inputs are
 * never executed. The web server and the control socket only ever reach bytes through a hash
 * the target's records name (InputsProvider).
 *
 * Store (<state>/inputs.lmdb, its own environment beside covd.lmdb):
 *   pos/<id>/in | pos/<id>/cr    { ino, offset }          where each log was read to
 *   in/<id>/<sha1>               InputEntry                one per input the target knows
 *   rec/<id>/<seq:010>           { h, t, r, p, pcs }       input records in log order
 *   pcs/<id>                     BigUint64Array            the PC table (for /pcs/:index)
 *   cr/<id>/<seq:010>            StoredCrash               crash records not yet grouped
 *   cg/<id>/<key>                StoredGroup               crash groups
 *   meta/<id>                    { recSeq, crSeq }         next sequence numbers
 *   af/<id>/<inst>/<sub>/<name>  { h, p, linked }          AFL++ crash and hang files already taken
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { lstat, mkdir, opendir, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { isAbsolute, join, normalize, resolve } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { Packr } from 'msgpackr';
import { packrOptions } from '../contracts/msgpack.js';
import { packLarge } from '../util/packed.js';
import type { AflPlot, CorpusInfo, CrashGroup, CrashInputRef, CrashKind, InputSummary, InputsProvider, PcDetail } from '../contracts/inputs.js';
import { INPUT_HASH } from '../contracts/inputs.js';
import { isSeen } from '../contracts/seen.js';
import { sourcePathOf, normalizePath } from '../contracts/paths.js';
import type { TargetInfo } from '../contracts/hub.js';
import type { Symbolizer } from '../workers/types.js';
import { NONE } from '../workers/types.js';
import type { Logger } from '../util/log.js';
import { openRegular, readBounded, UntrustedFileError } from '../util/untrusted.js';
import type { TargetRegistry } from './registry.js';
import type { ControlReply } from './control.js';
import type { CrashesMessage, InputMessage, InputsMessage } from '../bus/messages.js';
import { readPcList } from './coverage-io.js';
import { MAX_META_BYTES, metaPathFor } from '../coverage/meta.js';
import { CR_NO_INPUT, IN_KEPT, IN_NOT_SAVED, IN_TOO_LARGE, parseRecords, type CrashRecord, type InputRecord } from './inputs-log.js';
import { aflCrashOf, parseAflFileName, readArtifact, resolveStacks, signatureKey, signatureOf, toStored, type StoredCrash } from './crashes.js';
import type { AflFindings } from '../afl/watcher.js';

const packr = new Packr(packrOptions);
/** Logs are re-read this often even without coverage ticks (crash logs grow without any). */
export const POLL_MS = 1000;
/** The largest input the daemon copies (the agent keeps at most COVD_AGENT_INPUT_MAX, default 1 MiB). */
export const MAX_INPUT_BYTES = 64 << 20;
/** Bytes of inputs the daemon keeps per target; past it, inputs are still recorded, without bytes. */
export const MAX_TARGET_BYTES = 1 << 30;
/** Input records kept per target (about 30 bytes each plus their PCs). */
export const MAX_RECORDS = 1_000_000;
/** Bytes of a log read per pass and target, so one huge log cannot hold the event loop's I/O for long. */
const PASS_BYTES = 16 << 20;
/** A crash is grouped this long after it was recorded: libFuzzer writes its artifact right after. */
const CRASH_SETTLE_MS = 1500;
/** Inputs larger than this are not sent over the control socket (its replies are at most 16 MiB). */
const CONTROL_BYTES = 15 << 20;
/** AFL++ crash and hang files taken per instance directory and pass, and remembered per target. */
const AFL_FILES_PER_PASS = 256;
export const MAX_AFL_FILES = 100_000;
/** Hashes of the agent's crash records remembered to match AFL++'s files against. */
const MAX_CRASH_HASHES = 200_000;
/**
 * An AFL++ file is looked at only once it is this much older than the start of the pass's read of
 * the crash log: the agent writes its record before the process dies, afl-fuzz the file after, so
 * by then the record (if any) was read (file times lag the clock by up to a tick). A file whose
 * mtime says otherwise (in the future: clock skew, NFS, `cp -p`) is looked at once the daemon
 * listed it before a pass's read of the crash log began: it existed, so the record was written.
 */
const AFL_FILE_AGE_MS = 50;
/** afl-fuzz's names for saved crashes and hangs: `id:NNNNNN,...`; other names in crashes/ and hangs/ are not its files. */
const AFL_FILE_NAME = /^id:\d{1,15}(?:,|$)/;

/** What the inputs service uses of the AFL++ statistics watcher (src/afl/watcher.ts). */
export interface AflSource {
  on(event: 'findings', fn: (f: AflFindings) => void): unknown;
  plotSeries(id: string): Promise<AflPlot | undefined>;
}

/** libFuzzer's corpus directories are counted this often per target (src/web/engine-routes.ts, GET .../corpus; InputsServiceOptions.corpusMs). */
export const CORPUS_MS = 30_000;
/** Corpus directories per target, entries listed per directory, and files stat()ed per count. */
const CORPUS_DIRS = 16;
const CORPUS_ENTRIES = 1_000_000;
const CORPUS_STATS = 50_000;

/** GET /api/targets/:id/corpus (src/contracts/inputs.ts). */
export type { CorpusInfo };

/** An AFL++ crash or hang file looked at: its input's hash (null: not readable), whether an agent record had it. */
interface AflSeen { h: string | null; p: string; linked: boolean }

interface InputEntry {
  size: number;
  foundAt: number;
  run: number;
  pid: number;
  kept: boolean;
  reason?: string;
}

interface Rec { h: string; t: number; r: number; p: number }

interface StoredGroup extends CrashGroup {
  key: string;
}

interface Pos { ino: number; offset: number }

interface TargetState {
  id: string;
  inputs: Map<string, InputEntry>;
  records: Rec[];
  /** Per PC: the ordinal of its first record, -1 when none (allocated with the first record). */
  firstRec: Int32Array | null;
  /** Per hash: PCs whose first record names it. */
  firstCount: Map<string, number>;
  recSeq: number;
  crSeq: number;
  pos: { in?: Pos; cr?: Pos };
  pcs: BigUint64Array | null;
  groups: Map<string, StoredGroup>;
  pending: StoredCrash[];
  storedBytes: number;
  busy: boolean;
  again: boolean;
  /** Reasons already logged for this target, so a bad file is reported once, not every second. */
  told: Set<string>;
  /** AFL++ targets: instance name -> its directory and start_time (from the watcher's 'findings'). */
  aflDirs: Map<string, { dir: string; startTime: number }>;
  /** `instance/crashes` | `instance/hangs` -> the directory's ino:mtime when last listed completely. */
  aflDirKeys: Map<string, string>;
  /** `instance/sub/name` of every AFL++ file already taken. */
  aflSeen: Set<string>;
  /** `instance/sub/name` -> when the daemon first listed it, for files not taken yet. */
  aflFirstSeen: Map<string, number>;
  /** Input hash -> AFL++'s file for crashes the agent recorded too. */
  aflByHash: Map<string, string>;
  /** Hashes of the inputs of the agent's crash records (to tell AFL++'s files of those apart). */
  crashHashes: Set<string>;
  aflForce: boolean;
  /** libFuzzer targets: the last count of the corpus directories, and when it was due. */
  corpus: CorpusInfo | null;
  corpusAt: number;
  /** Per corpus directory: its ino:mtime when last counted, and that count. */
  corpusDirs: Map<string, { key: string; dir: CorpusInfo['dirs'][number] }>;
  /** The count running (outside the pass), if any. */
  corpusRun: Promise<void> | null;
}

export interface InputsServiceOptions {
  stateDir: string;
  registry: TargetRegistry;
  symbolizer: Symbolizer;
  log: Logger;
  pollMs?: number;
  /** How often libFuzzer corpus directories are counted; default CORPUS_MS. */
  corpusMs?: number;
  now?: () => number;
}

const pad = (n: number) => String(n).padStart(10, '0');

export class InputsService implements InputsProvider {
  private readonly db: RootDatabase<Buffer, string>;
  private readonly blobDir: string;
  private readonly targets = new Map<string, TargetState>();
  private readonly log: Logger;
  private readonly reg: TargetRegistry;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private readonly soon = new Map<string, NodeJS.Timeout>();
  private closed = false;
  /** Names each input write's temporary file (see keepInput). */
  private tmpSeq = 0;
  /** close() was called: nothing new is scheduled, passes in flight still commit. */
  private stopping = false;
  private readonly inflight = new Set<Promise<void>>();
  private afl: AflSource | undefined;

  private constructor(private readonly opts: InputsServiceOptions) {
    this.log = opts.log;
    this.reg = opts.registry;
    this.now = opts.now ?? Date.now;
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    this.blobDir = join(opts.stateDir, 'inputs');
    mkdirSync(this.blobDir, { recursive: true, mode: 0o700 });
    this.db = open<Buffer, string>({ path: join(opts.stateDir, 'inputs.lmdb'), encoding: 'binary', mapSize: 2 ** 34 });
  }

  /** Opens the store, restores every target's inputs and crashes, and starts following logs. */
  static start(opts: InputsServiceOptions): InputsService {
    const s = new InputsService(opts);
    s.load();
    s.reg.on('delta', s.onDelta);
    s.reg.on('target', s.onTarget);
    s.reg.on('removed', s.onRemoved);
    s.timer = setInterval(() => { for (const id of s.targets.keys()) s.schedule(id, 0); }, opts.pollMs ?? POLL_MS);
    s.timer.unref();
    for (const t of s.reg.targets()) s.ensure(t.id);
    return s;
  }

  /**
   * AFL++ targets: follows the crashes/ and hangs/ directories of every instance the watcher
   * reports ('findings'), so afl-fuzz's findings become crash records (readAflFiles), and serves
   * the watcher's plot_data series to the web server (aflPlot).
   */
  attachAfl(afl: AflSource): void {
    this.afl = afl;
    afl.on('findings', (f: AflFindings) => {
      if (!this.reg.has(f.id)) return;
      const t = this.ensure(f.id);
      const was = t.aflDirs.get(f.instance);
      if (was?.dir !== f.dir || was.startTime !== f.startTime) t.aflDirs.set(f.instance, { dir: f.dir, startTime: f.startTime });
      t.aflForce = true;
      this.schedule(f.id, 0);
    });
  }

  /** GET /api/targets/:id/afl/plot (src/web/engine-routes.ts): every instance's plot_data as series. */
  aflPlot(id: string): Promise<AflPlot | undefined> {
    return this.afl && this.reg.has(id) ? this.afl.plotSeries(id) : Promise.resolve(undefined);
  }

  // ------------------------------------------------------------------ events

  private readonly onDelta = (d: { id: string; newPcs: Uint32Array }) => {
    if (d.newPcs.length) this.schedule(d.id, 50);
  };
  private readonly onTarget = (t: TargetInfo) => {
    this.ensure(t.id);
    this.schedule(t.id, 0);
  };
  private readonly onRemoved = (id: string) => {
    this.targets.delete(id);
    void this.removeStored(id).catch((err) => this.log.error('removing stored inputs failed', { id, err }));
  };

  private ensure(id: string): TargetState {
    let t = this.targets.get(id);
    if (!t) {
      t = {
        id, inputs: new Map(), records: [], firstRec: null, firstCount: new Map(), recSeq: 0, crSeq: 0, pos: {}, pcs: null,
        groups: new Map(), pending: [], storedBytes: 0, busy: false, again: false, told: new Set(),
        aflDirs: new Map(), aflDirKeys: new Map(), aflSeen: new Set(), aflFirstSeen: new Map(), aflByHash: new Map(), crashHashes: new Set(), aflForce: false,
        corpus: null, corpusAt: 0, corpusDirs: new Map(), corpusRun: null,
      };
      this.targets.set(id, t);
    }
    return t;
  }

  private schedule(id: string, delayMs: number): void {
    if (this.stopping || this.soon.has(id)) return;
    const timer = setTimeout(() => {
      this.soon.delete(id);
      const p = this.pass(id).catch((err) => this.log.error('reading inputs failed', { id, err }));
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    }, delayMs);
    timer.unref();
    this.soon.set(id, timer);
  }

  /** Logs a reason once per target (a file that stays bad would otherwise be reported every pass). */
  private tell(t: TargetState, reason: string, fields: Record<string, unknown>): void {
    if (t.told.has(reason)) return;
    if (t.told.size > 1000) t.told.clear();
    t.told.add(reason);
    this.log.warn(reason, { id: t.id, ...fields });
  }

  // ------------------------------------------------------------------ restoring

  private get<T>(key: string): T | undefined {
    const b = this.db.get(key);
    return b === undefined ? undefined : (packr.unpack(b) as T);
  }

  private *range<T>(prefix: string): Generator<{ key: string; value: T }> {
    for (const { key, value } of this.db.getRange({ start: prefix, end: prefix + '\uffff' })) yield { key: key as string, value: packr.unpack(value as Buffer) as T };
  }

  private load(): void {
    let inputs = 0, groups = 0;
    const ids = new Set<string>();
    for (const key of this.db.getKeys({ start: 'meta/', end: 'meta/\uffff' })) ids.add(String(key).slice(5));
    const stale: string[] = [];
    for (const id of ids) {
      if (!this.reg.has(id)) { stale.push(id); continue; }
      try {
        const t = this.ensure(id);
        const meta = this.get<{ recSeq: number; crSeq: number }>(`meta/${id}`);
        t.recSeq = meta?.recSeq ?? 0;
        t.crSeq = meta?.crSeq ?? 0;
        t.pos.in = this.get<Pos>(`pos/${id}/in`);
        t.pos.cr = this.get<Pos>(`pos/${id}/cr`);
        t.pcs = this.get<BigUint64Array>(`pcs/${id}`) ?? null;
        for (const { key, value } of this.range<InputEntry>(`in/${id}/`)) {
          t.inputs.set(key.slice(key.lastIndexOf('/') + 1), value);
          if (value.kept) t.storedBytes += value.size;
          inputs++;
        }
        const pcsLen = this.reg.info(id)?.stats.pcsLen ?? 0;
        for (const { value } of this.range<Rec & { pcs: Uint32Array }>(`rec/${id}/`)) this.applyRecord(t, value, value.pcs, pcsLen);
        for (const { value } of this.range<StoredGroup>(`cg/${id}/`)) { t.groups.set(value.key, value); groups++; }
        for (const { value } of this.range<StoredCrash>(`cr/${id}/`)) { t.pending.push(value); if (value.hash) this.noteCrashHash(t, value.hash); }
        // Crash inputs: known inputs that are no PC's first.
        for (const h of t.inputs.keys()) if (!t.firstCount.get(h)) this.noteCrashHash(t, h);
        for (const { key, value } of this.range<AflSeen>(`af/${id}/`)) {
          t.aflSeen.add(key.slice(`af/${id}/`.length));
          if (value.linked && value.h) t.aflByHash.set(value.h, value.p);
        }
      } catch (err) {
        this.log.warn('skipping stored inputs of a target that do not load', { id, err });
      }
    }
    if (ids.size) this.log.info('inputs loaded', { targets: ids.size, inputs, crashGroups: groups });
    // Removed while the daemon was down (the coverage store forgot them): forget their inputs too,
    // once every other target's are loaded (a blob they share stays).
    for (const id of stale) void this.removeStored(id).catch((err) => this.log.warn('removing stored inputs failed', { id, err }));
  }

  // ------------------------------------------------------------------ reading the logs

  /** One pass over a target's logs; passes of one target never overlap. */
  private async pass(id: string): Promise<void> {
    const t = this.targets.get(id);
    if (!t || this.stopping) return;
    if (t.busy) { t.again = true; return; }
    t.busy = true;
    try {
      do {
        t.again = false;
        const info = this.reg.info(id);
        if (!info || info.state === 'retired' || info.stats.pcsLen === 0) return;
        if (!t.pcs) await this.loadPcs(t, info);
        await this.readInputs(t, info);
        const crashLogReadAt = Date.now();
        await this.readCrashes(t, info);
        if (t.aflDirs.size) await this.readAflFiles(t, crashLogReadAt);
        await this.groupCrashes(t, info);
        if (info.engine !== 'afl' && info.state !== 'failed' && !t.corpusRun && Date.now() - t.corpusAt >= (this.opts.corpusMs ?? CORPUS_MS)) this.startCorpusCount(t, info);
      } while (t.again && !this.stopping);
    } finally {
      t.busy = false;
    }
  }

  private async loadPcs(t: TargetState, info: TargetInfo): Promise<void> {
    try {
      const list = await readPcList(info.coverageFile);
      if (list.pcsLen !== info.stats.pcsLen || (info.pcsHash !== undefined && list.pcsHash !== info.pcsHash)) return;
      t.pcs = list.pcs;
      await this.db.put(`pcs/${t.id}`, packLarge(packr, list.pcs, false, true));
    } catch {
      /* the file is gone or still being written: pc stays unknown for now */
    }
  }

  /** Reads what was appended to a log since the stored offset; null when there is no log (yet). */
  private async readLog(t: TargetState, which: 'in' | 'cr', path: string): Promise<{ buf: Buffer; base: number; ino: number } | null> {
    let opened;
    try {
      opened = await openRegular(path, { noFollow: true, owned: true });
    } catch (err) {
      if (err instanceof UntrustedFileError && err.code === 'ENOENT') return null;
      this.tell(t, 'skipping a log the agent did not write as a regular file of this user', { file: path, reason: (err as Error).message });
      return null;
    }
    try {
      const { fh, st } = opened;
      let pos = t.pos[which];
      if (pos && (pos.ino !== st.ino || st.size < pos.offset)) {
        this.log.info('log was recreated; reading it from the start', { id: t.id, file: path });
        pos = undefined;
      }
      const base = pos?.offset ?? 0;
      const want = Math.min(st.size - base, PASS_BYTES);
      if (want <= 0) return { buf: Buffer.alloc(0), base, ino: st.ino };
      const buf = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, base + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return { buf: buf.subarray(0, got), base, ino: st.ino };
    } finally {
      await opened.fh.close().catch(() => {});
    }
  }

  /** One line per distinct reason and pass: where it first happened, how often, how many bytes. */
  private reportSkipped(t: TargetState, file: string, skipped: { offset: number; bytes: number; reason: string }[]): void {
    const by = new Map<string, { offset: number; bytes: number; count: number }>();
    for (const s of skipped) {
      const g = by.get(s.reason);
      if (g) { g.bytes += s.bytes; g.count++; } else by.set(s.reason, { offset: s.offset, bytes: s.bytes, count: 1 });
    }
    for (const [reason, g] of by) this.log.warn('skipping a log record', { id: t.id, file, offset: g.offset, bytes: g.bytes, count: g.count, reason });
  }

  private async readInputs(t: TargetState, info: TargetInfo): Promise<void> {
    // A fleet target fuzzed on other nodes only has no file here (and must not read a relative path).
    if (!info.coverageFile || this.reg.isRemote(info.id)) return;
    const path = `${info.coverageFile}.inputs.log`;
    for (let round = 0; round < 64; round++) {
      const got = await this.readLog(t, 'in', path);
      if (!got || got.buf.length === 0) return;
      const pcsLen = info.stats.pcsLen;
      const res = parseRecords<InputRecord>('input', got.buf, got.base, pcsLen);
      this.reportSkipped(t, path, res.skipped);
      const puts: [string, unknown][] = [];
      const dir = `${info.coverageFile}.inputs`;
      for (const { record: r } of res.records) {
        if (t.records.length >= MAX_RECORDS) { this.tell(t, `more than ${MAX_RECORDS} input records for one target; the rest are not kept`, {}); break; }
        let e = t.inputs.get(r.hash);
        const fresh = !e;
        if (!e) {
          e = { size: r.size, foundAt: r.time, run: r.run, pid: r.pid, kept: false };
          t.inputs.set(r.hash, e);
        } else if (r.time < e.foundAt) {
          Object.assign(e, { foundAt: r.time, run: r.run, pid: r.pid });
        }
        if (!e.kept && (fresh || (r.flags & IN_KEPT))) await this.keepInput(t, e, r.hash, r.flags, `${dir}/${r.hash}`);
        const rec: Rec = { h: r.hash, t: r.time, r: r.run, p: r.pid };
        this.applyRecord(t, rec, r.pcs, pcsLen);
        puts.push([`rec/${t.id}/${pad(t.recSeq++)}`, { ...rec, pcs: r.pcs }], [`in/${t.id}/${r.hash}`, e]);
      }
      const offset = got.base + res.consumed;
      puts.push([`pos/${t.id}/in`, { ino: got.ino, offset }], [`meta/${t.id}`, { recSeq: t.recSeq, crSeq: t.crSeq }]);
      await this.commit(puts);
      t.pos.in = { ino: got.ino, offset };
      if (res.consumed === 0 || got.buf.length < PASS_BYTES) return;
    }
  }

  /** Folds one record into the per-PC firsts: a PC's first is the earliest record naming it. */
  private applyRecord(t: TargetState, rec: Rec, pcs: Uint32Array, pcsLen: number): void {
    const ord = t.records.push(rec) - 1;
    if (pcsLen === 0) return;
    if (!t.firstRec || t.firstRec.length !== pcsLen) t.firstRec = new Int32Array(pcsLen).fill(-1);
    const first = t.firstRec;
    for (const pc of pcs) {
      if (pc >= pcsLen) continue;
      const cur = first[pc]!;
      if (cur >= 0) {
        const c = t.records[cur]!;
        if (c.t <= rec.t) continue;
        t.firstCount.set(c.h, (t.firstCount.get(c.h) ?? 1) - 1);
      }
      first[pc] = ord;
      t.firstCount.set(rec.h, (t.firstCount.get(rec.h) ?? 0) + 1);
    }
  }

  private blobPath(hash: string): string {
    return join(this.blobDir, hash.slice(0, 2), hash);
  }

  /** Copies an input's bytes into the store (or says why not), verifying they hash to their name. */
  private async keepInput(t: TargetState, e: InputEntry, hash: string, flags: number, src: string, bytes?: Buffer): Promise<void> {
    if (!INPUT_HASH.test(hash)) return;
    const path = this.blobPath(hash);
    if (await stat(path).then((s) => s.isFile(), () => false)) {
      e.kept = true;
      delete e.reason;
      t.storedBytes += e.size;
      return;
    }
    // The same limits for bytes read elsewhere (libFuzzer's artifacts, AFL++'s files) as for the agent's copies.
    const size = bytes ? bytes.length : e.size;
    if (size > MAX_INPUT_BYTES) { e.reason = `larger than the daemon keeps (${MAX_INPUT_BYTES} bytes)`; return; }
    if (t.storedBytes + size > MAX_TARGET_BYTES) { e.reason = `the daemon already keeps ${MAX_TARGET_BYTES} bytes of inputs for this target`; this.tell(t, 'input store of this target is full; new inputs are recorded without their bytes', {}); return; }
    if (!bytes) {
      if (flags & IN_TOO_LARGE) { e.reason = `larger than the agent keeps (COVD_AGENT_INPUT_MAX): ${e.size} bytes`; return; }
      if (flags & IN_NOT_SAVED) { e.reason = 'the agent could not save it (disk full?)'; return; }
      try {
        bytes = await readBounded(src, MAX_INPUT_BYTES, { noFollow: true, owned: true });
      } catch (err) {
        const gone = err instanceof UntrustedFileError && err.code === 'ENOENT';
        e.reason = gone ? 'gone from the fuzzer\'s directory before the daemon copied it' : (err as Error).message;
        if (!gone) this.log.warn('skipping an input file', { id: t.id, file: src, reason: e.reason });
        return;
      }
      const got = createHash('sha1').update(bytes).digest('hex');
      if (got !== hash) {
        e.reason = 'its bytes do not match its SHA-1 name';
        this.log.warn('skipping an input file', { id: t.id, file: src, reason: e.reason });
        return;
      }
    }
    await mkdir(join(this.blobDir, hash.slice(0, 2)), { recursive: true, mode: 0o700 });
    // Inputs are shared by content: two targets' passes (or a crash and a coverage record) may
    // keep the same hash at once, so each write has a name of its own; the last rename wins, with
    // the same bytes.
    const tmp = `${path}.${process.pid}.${++this.tmpSeq}.tmp`;
    await writeFile(tmp, bytes, { mode: 0o600 });
    await rename(tmp, path);
    e.kept = true;
    e.size = bytes.length;
    delete e.reason;
    t.storedBytes += bytes.length;
  }

  private async commit(puts: [string, unknown][], removes: string[] = []): Promise<void> {
    if (this.closed) return;
    const packed = puts.map(([k, v]) => [k, packr.pack(v)] as const);
    await this.db.transaction(() => {
      for (const [k, v] of packed) this.db.putSync(k, v);
      for (const k of removes) this.db.removeSync(k);
    });
  }

  private async readCrashes(t: TargetState, info: TargetInfo): Promise<void> {
    if (!info.coverageFile || this.reg.isRemote(info.id)) return;
    const path = `${info.coverageFile}.crashes.log`;
    const got = await this.readLog(t, 'cr', path);
    if (!got || got.buf.length === 0) return;
    const res = parseRecords<CrashRecord>('crash', got.buf, got.base, info.stats.pcsLen);
    this.reportSkipped(t, path, res.skipped);
    const puts: [string, unknown][] = [];
    for (const { record } of res.records) {
      const c = toStored(t.crSeq++, record);
      t.pending.push(c);
      if (c.hash) this.noteCrashHash(t, c.hash);
      puts.push([`cr/${t.id}/${pad(c.seq)}`, c]);
      this.log.info('crash recorded', { id: t.id, kind: c.kind, detail: c.detail, pid: c.pid, input: c.hash });
    }
    const offset = got.base + res.consumed;
    puts.push([`pos/${t.id}/cr`, { ino: got.ino, offset }], [`meta/${t.id}`, { recSeq: t.recSeq, crSeq: t.crSeq }]);
    await this.commit(puts);
    t.pos.cr = { ino: got.ino, offset };
  }

  /** Resolves and groups the crashes that have settled (libFuzzer wrote its artifact by then). */
  private async groupCrashes(t: TargetState, info: TargetInfo): Promise<void> {
    const now = this.now();
    const ready = t.pending.filter((c) => now - c.time >= CRASH_SETTLE_MS);
    if (ready.length === 0) {
      if (t.pending.length) this.schedule(t.id, CRASH_SETTLE_MS);
      return;
    }
    const project = new Set<string>();
    const idx = this.reg.target(t.id)?.index;
    if (idx) for (const f of new Set(idx.pcFile)) if (f !== NONE) project.add(sourcePathOf(idx, f));
    const stacks = await resolveStacks(this.opts.symbolizer, info.exe, info.buildId, ready, project);
    const puts: [string, unknown][] = [];
    const removes: string[] = [];
    for (let i = 0; i < ready.length; i++) {
      let c = ready[i]!;
      const { frames, resolved } = stacks[i]!;
      // A crash the agent recorded under afl-fuzz: AFL++'s saved file is its artifact.
      const aflFile = c.hash ? t.aflByHash.get(c.hash) : undefined;
      if (aflFile) c = { ...c, artifact: { exact: aflFile } };
      const signature = signatureOf(c.kind, c.detail, frames);
      const key = signatureKey(signature);
      let g = t.groups.get(key);
      // A group shows its first and its smallest input: the bytes of another crash are kept only
      // when afl-fuzz saved it (a new path, at most MAX_AFL_FILES of them); the agent records
      // every crashing run under afl-fuzz, many a minute, and those are counted by hash and size.
      const seen = g, saved = !!c.artifact && 'exact' in c.artifact;
      const input = await this.crashInput(t, info, c, (size) => saved || !seen || c.time < seen.firstAt || !seen.input || !seen.input.kept || size < seen.input.size);
      if (input.ref) puts.push([`in/${t.id}/${input.ref.hash}`, t.inputs.get(input.ref.hash)]);
      if (!g) {
        g = {
          key, signature, kind: c.kind, detail: c.detail, count: 0, firstAt: c.time, lastAt: c.time, input: null, firstInput: input.ref,
          frames, resolved, artifact: input.artifact,
        };
        t.groups.set(key, g);
        this.log.warn('new crash', { id: t.id, signature, kind: c.kind });
      }
      g.count++;
      if (c.time < g.firstAt) { g.firstAt = c.time; g.firstInput = input.ref; g.frames = frames; g.resolved = resolved; g.detail = c.detail; g.artifact = input.artifact; }
      g.lastAt = Math.max(g.lastAt, c.time);
      if (input.ref && (!g.input || input.ref.size < g.input.size || (!g.input.kept && input.ref.kept))) g.input = input.ref;
      g.firstInput ??= input.ref;
      puts.push([`cg/${t.id}/${key}`, g]);
      removes.push(`cr/${t.id}/${pad(c.seq)}`);
    }
    await this.commit(puts, removes);
    const done = new Set(ready);
    t.pending = t.pending.filter((c) => !done.has(c));
  }

  /**
   * A crash's input: from the agent's copy, else libFuzzer's artifact; its bytes kept in the store
   * like inputs when wanted(size) says its group will show it.
   */
  private async crashInput(t: TargetState, info: TargetInfo, c: StoredCrash, wanted: (size: number) => boolean): Promise<{ ref: CrashInputRef | null; artifact: string | null }> {
    const art = await readArtifact(c, MAX_INPUT_BYTES);
    const hash = c.hash ?? (art.path ? art.hash : null);
    if (!hash) return { ref: null, artifact: null };
    let e = t.inputs.get(hash);
    if (!e) {
      e = { size: c.size ?? (art.path ? art.bytes.length : 0), foundAt: c.time, run: c.run, pid: c.pid, kept: false };
      t.inputs.set(hash, e);
    }
    if (!e.kept && wanted(e.size)) {
      if (art.path) await this.keepInput(t, e, hash, 0, art.path, art.bytes);
      else await this.keepInput(t, e, hash, c.flags, `${info.coverageFile}.inputs/${hash}`);
    }
    return { ref: { hash, size: e.size, kept: e.kept }, artifact: art.path };
  }

  // ------------------------------------------------------------------ AFL++'s crashes/ and hangs/

  private noteCrashHash(t: TargetState, hash: string): void {
    if (t.crashHashes.has(hash)) return;
    if (t.crashHashes.size >= MAX_CRASH_HASHES) t.crashHashes.delete(t.crashHashes.values().next().value as string);
    t.crashHashes.add(hash);
  }

  /**
   * Takes the files afl-fuzz saved in each instance's crashes/ and hangs/ since the last pass.
   * A file whose input an agent crash record names is that crash's artifact (the agent's record,
   * with its stack, is the crash); any other (a hang: afl-fuzz kills it with SIGKILL; a crash the
   * agent's handler did not see, e.g. AFL_CRASH_EXITCODE or COVD_AGENT_CRASHES=0) becomes a record
   * of its own from the file name (signal, time) and its bytes, without a stack: covd never runs
   * inputs. Directories must be real directories of this user or root, files regular ones
   * (src/util/untrusted.ts), read within MAX_INPUT_BYTES.
   */
  private async readAflFiles(t: TargetState, crashLogReadAt: number): Promise<void> {
    const puts: [string, unknown][] = [];
    const uid = process.getuid?.() ?? 0;
    const force = t.aflForce;
    t.aflForce = false;
    for (const [instance, { dir, startTime }] of t.aflDirs) {
      for (const sub of ['crashes', 'hangs'] as const) {
        const d = join(dir, sub);
        const dk = `${instance}/${sub}`;
        const st = await lstat(d).catch(() => null);
        if (!st) continue;
        if (!st.isDirectory() || (st.uid !== uid && st.uid !== 0)) { this.tell(t, 'skipping an AFL++ directory that is not a directory of this user', { dir: d }); continue; }
        const key = `${st.ino}:${st.mtimeMs}`;
        if (!force && t.aflDirKeys.get(dk) === key) continue;
        let names: string[];
        try { names = await readdir(d); } catch { continue; }
        let complete = true;
        let taken = 0;
        const listedAt = Date.now();
        for (const name of names.filter((n) => AFL_FILE_NAME.test(n)).sort()) {
          const k = `${dk}/${name}`;
          if (t.aflSeen.has(k)) continue;
          if (t.aflSeen.size >= MAX_AFL_FILES) { this.tell(t, `more than ${MAX_AFL_FILES} AFL++ crash and hang files; later ones are not recorded`, { dir: d }); break; }
          if (taken >= AFL_FILES_PER_PASS) { complete = false; break; }
          const path = join(d, name);
          const fst = await lstat(path).catch(() => null);
          if (!fst) { t.aflFirstSeen.delete(k); continue; }
          const firstSeen = t.aflFirstSeen.get(k);
          if (fst.mtimeMs > crashLogReadAt - AFL_FILE_AGE_MS && !(firstSeen !== undefined && firstSeen < crashLogReadAt)) {
            // The next pass: listed before its read of the crash log, the file is old enough whatever its mtime says.
            if (firstSeen === undefined) {
              if (t.aflFirstSeen.size >= MAX_AFL_FILES) t.aflFirstSeen.clear();
              t.aflFirstSeen.set(k, listedAt);
            }
            complete = false;
            continue;
          }
          t.aflFirstSeen.delete(k);
          taken++;
          await this.aflFile(t, sub, k, path, name, fst, startTime, puts);
        }
        if (complete) t.aflDirKeys.set(dk, key);
        else { t.aflDirKeys.delete(dk); this.schedule(t.id, 200); }
      }
    }
    if (puts.length) {
      puts.push([`meta/${t.id}`, { recSeq: t.recSeq, crSeq: t.crSeq }]);
      await this.commit(puts);
    }
  }

  private async aflFile(t: TargetState, sub: 'crashes' | 'hangs', k: string, path: string, name: string, fst: Stats, startTime: number, puts: [string, unknown][]): Promise<void> {
    let bytes: Buffer | null = null;
    let hash: string | null = null;
    if (!fst.isFile()) {
      // A symlink, FIFO, directory, ... is no file afl-fuzz saved: taken (not looked at again), no record.
      this.tell(t, 'skipping an AFL++ file that is not a regular file', { file: path });
      t.aflSeen.add(k);
      puts.push([`af/${t.id}/${k}`, { h: null, p: path, linked: false } satisfies AflSeen]);
      return;
    }
    if (fst.size > MAX_INPUT_BYTES) this.tell(t, `AFL++ file larger than the daemon keeps (${MAX_INPUT_BYTES} bytes): recorded without its input`, { file: path });
    else {
      try {
        bytes = await readBounded(path, MAX_INPUT_BYTES, { noFollow: true, owned: true });
        hash = createHash('sha1').update(bytes).digest('hex');
      } catch (err) {
        if (err instanceof UntrustedFileError && err.code === 'ENOENT') return; // removed: nothing to record
        this.tell(t, 'skipping an AFL++ file', { file: path, reason: (err as Error).message });
      }
    }
    const linked = hash !== null && t.crashHashes.has(hash);
    t.aflSeen.add(k);
    puts.push([`af/${t.id}/${k}`, { h: hash, p: path, linked } satisfies AflSeen]);
    if (linked) {
      // The agent recorded this crash: AFL++'s file is its artifact (groupCrashes, or the group formed already).
      if (t.aflByHash.size >= MAX_CRASH_HASHES) t.aflByHash.delete(t.aflByHash.keys().next().value as string);
      t.aflByHash.set(hash!, path);
      // Grouped before afl-fuzz saved it, the agent's crash kept no bytes unless its group shows it: a saved file's are kept.
      const e = t.inputs.get(hash!);
      if (e && !e.kept && bytes) {
        await this.keepInput(t, e, hash!, 0, path, bytes);
        puts.push([`in/${t.id}/${hash!}`, e]);
      }
      for (const g of t.groups.values()) {
        if (g.artifact || (g.firstInput?.hash !== hash && g.input?.hash !== hash)) continue;
        g.artifact = path;
        puts.push([`cg/${t.id}/${g.key}`, g]);
      }
      return;
    }
    const parsed = parseAflFileName(name);
    let time = fst.mtimeMs;
    // The name's time: ms since the instance started (afl-fuzz adds earlier runs' time when resuming, so check it).
    if (parsed.time !== null && startTime > 0) {
      const at = startTime * 1000 + parsed.time;
      if (at <= fst.mtimeMs + 1000 && at > fst.mtimeMs - 86_400_000) time = at;
    }
    // Never in the future (a skewed mtime): the crash is grouped once it settled (groupCrashes).
    time = Math.min(time, Date.now());
    const { kind, detail, signo } = aflCrashOf(sub, parsed.sig);
    const c: StoredCrash = {
      seq: t.crSeq++, kind, hash, size: bytes ? bytes.length : null, flags: hash ? 0 : CR_NO_INPUT, signo, status: 0, pid: 0, time: Math.round(time),
      run: parsed.execs ?? 0, bias: '0x0', lo: '0x0', hi: '0x0', frames: [], exact: '0x0', detail, artifact: { exact: path },
    };
    t.pending.push(c);
    if (hash) this.noteCrashHash(t, hash); // another instance's file with the same input is the same crash
    puts.push([`cr/${t.id}/${pad(c.seq)}`, c]);
    this.log.info('crash recorded from AFL++', { id: t.id, kind, detail, file: path, input: hash });
  }

  // ------------------------------------------------------------------ libFuzzer's corpus

  /** Starts a count of the target's corpus directories beside its passes (close() waits for it). */
  private startCorpusCount(t: TargetState, info: TargetInfo): void {
    t.corpusAt = Date.now();
    const p = this.countCorpus(t, info)
      .catch((err) => this.log.warn('counting the corpus failed', { id: t.id, err }))
      .finally(() => { t.corpusRun = null; this.inflight.delete(p); });
    t.corpusRun = p;
    this.inflight.add(p);
  }

  /**
   * Counts the corpus directories of a libFuzzer target: the arguments of the fuzzer's argv (in
   * its metadata, `argv` and `cwd`) that are not flags and name directories, as libFuzzer takes
   * them (the first is where it writes new inputs). Top-level regular files and their sizes, the
   * directories of this user or root only, listed as a stream (opendir) of at most CORPUS_ENTRIES
   * entries, at most CORPUS_STATS files stat()ed per count; a directory whose ino and mtime did not
   * move since its last count keeps that count. Every CORPUS_MS, outside the target's passes.
   * Nothing is read from the files. Not for remote (fleet) targets: no file here.
   */
  private async countCorpus(t: TargetState, info: TargetInfo): Promise<void> {
    if (!info.coverageFile || this.reg.isRemote(info.id)) return;
    let meta: { argv?: unknown; cwd?: unknown };
    try {
      meta = JSON.parse((await readBounded(metaPathFor(info.coverageFile), MAX_META_BYTES, { noFollow: true, owned: true })).toString('utf8')) as typeof meta;
    } catch {
      return; // no metadata (a hand-made file): nothing to count
    }
    if (!Array.isArray(meta.argv)) return;
    const cwd = typeof meta.cwd === 'string' && isAbsolute(meta.cwd) ? meta.cwd : null;
    const uid = process.getuid?.() ?? 0;
    const dirs: CorpusInfo['dirs'] = [];
    const counted = new Map<string, { key: string; dir: CorpusInfo['dirs'][number] }>();
    let stats = 0;
    for (const a of meta.argv.slice(1)) {
      if (this.stopping) return;
      if (dirs.length >= CORPUS_DIRS) break;
      if (typeof a !== 'string' || a === '' || a.startsWith('-') || a.includes('\0')) continue;
      if (!isAbsolute(a) && !cwd) continue; // written before the agent recorded its cwd
      const path = normalize(isAbsolute(a) ? a : resolve(cwd!, a));
      const st = await stat(path).catch(() => null);
      if (!st?.isDirectory()) continue; // a file to run, not a corpus
      if (st.uid !== uid && st.uid !== 0) { dirs.push({ path, files: 0, bytes: null, error: 'not a directory of this user' }); continue; }
      const key = `${st.ino}:${st.mtimeMs}`;
      const before = t.corpusDirs.get(path);
      if (before?.key === key) { dirs.push(before.dir); counted.set(path, before); continue; }
      let files = 0, bytes: number | null = 0, entries = 0;
      try {
        // The loop closes the directory however it ends (its end, break, return, a throw).
        for await (const e of await opendir(path)) {
          if (this.stopping) return;
          if (++entries > CORPUS_ENTRIES) break;
          if (!e.isFile()) continue;
          files++;
          if (bytes === null) continue;
          if (stats >= CORPUS_STATS) { bytes = null; continue; }
          stats++;
          const f = await lstat(join(path, e.name)).catch(() => null);
          if (f?.isFile()) bytes += f.size;
        }
        const d = { path, files, bytes };
        dirs.push(d);
        counted.set(path, { key, dir: d });
      } catch (err) {
        dirs.push({ path, files: 0, bytes: null, error: (err as NodeJS.ErrnoException).code ?? 'unreadable' });
      }
    }
    t.corpusDirs = counted;
    const all = dirs.filter((d) => !d.error);
    t.corpus = {
      id: t.id, dirs, files: all.reduce((n, d) => n + d.files, 0),
      bytes: all.some((d) => d.bytes === null) ? null : all.reduce((n, d) => n + d.bytes!, 0), updatedAt: Date.now(),
    };
  }

  /** GET /api/targets/:id/corpus: the last count (undefined: unknown target, an AFL++ target, or not counted yet). */
  corpus(id: string): CorpusInfo | undefined {
    const info = this.reg.info(id);
    if (!info || info.engine === 'afl') return undefined;
    return this.targets.get(id)?.corpus ?? undefined;
  }

  // ------------------------------------------------------------------ removal

  private async removeStored(id: string): Promise<void> {
    const keys: string[] = [];
    const hashes: string[] = [];
    for (const prefix of [`in/${id}/`, `rec/${id}/`, `cr/${id}/`, `cg/${id}/`, `pos/${id}/`, `af/${id}/`]) {
      for (const k of this.db.getKeys({ start: prefix, end: prefix + '\uffff' })) {
        keys.push(String(k));
        if (prefix.startsWith('in/')) hashes.push(String(k).slice(prefix.length));
      }
    }
    keys.push(`pcs/${id}`, `meta/${id}`);
    await this.db.transaction(() => { for (const k of keys) this.db.removeSync(k); });
    // A blob is shared by every target that knows its hash: delete it only when none does.
    for (const h of hashes) {
      let used = false;
      for (const t of this.targets.values()) if (t.inputs.has(h)) { used = true; break; }
      if (!used) await unlink(this.blobPath(h)).catch(() => {});
    }
  }

  // ------------------------------------------------------------------ InputsProvider

  pcDetail(id: string, index: number): PcDetail | undefined {
    const d = this.reg.target(id);
    if (!d || !Number.isInteger(index) || index < 0 || index >= d.stats.pcsLen) return undefined;
    const t = this.targets.get(id);
    const ix = d.index;
    let file: string | null = null, line: number | null = null, column: number | null = null, fn: string | null = null;
    if (ix && index < ix.pcFile.length) {
      const f = ix.pcFile[index]!;
      if (f !== NONE) { file = sourcePathOf(ix, f) || null; line = ix.pcLine[index]! || null; column = ix.pcColumn[index]! || null; }
      const g = ix.pcFunction[index]!;
      if (g !== NONE) fn = ix.functions.names[g] ?? null;
    }
    const pc = t?.pcs && index < t.pcs.length ? '0x' + t.pcs[index]!.toString(16) : null;
    const seen = isSeen(d.seen, index);
    const ord = t?.firstRec?.[index] ?? -1;
    const rec = ord >= 0 ? t!.records[ord] : undefined;
    const e = rec ? t!.inputs.get(rec.h) : undefined;
    return {
      index, pc, file, line, column, function: fn, seen, firstSeenAt: seen && d.firstSeen[index] ? d.firstSeen[index]! * 1000 : null,
      input: rec && e ? { hash: rec.h, size: e.size, foundAt: rec.t, run: rec.r } : null,
    };
  }

  inputs(id: string): InputSummary[] | undefined {
    if (!this.reg.has(id)) return undefined;
    const t = this.targets.get(id);
    if (!t) return [];
    const out: InputSummary[] = [];
    for (const [hash, e] of t.inputs) {
      const firstPcs = t.firstCount.get(hash) ?? 0;
      if (firstPcs === 0) continue; // a crash input, or superseded: not one that found coverage
      out.push({ hash, size: e.size, foundAt: e.foundAt, run: e.run, pid: e.pid, firstPcs, kept: e.kept, ...(e.reason ? { reason: e.reason } : {}) });
    }
    return out.sort((a, b) => b.foundAt - a.foundAt || (a.hash < b.hash ? -1 : 1));
  }

  /** Inputs that were first to reach a PC on `file:line` (file: a normalised path or a unique suffix of one). */
  inputsForLine(id: string, file: string, line: number): { pcs: number[]; inputs: InputSummary[] } | undefined {
    const d = this.reg.target(id);
    const t = this.targets.get(id);
    if (!d) return undefined;
    const ix = d.index;
    if (!ix) return { pcs: [], inputs: [] };
    const want = normalizePath(file);
    const fileIdx = new Set<number>();
    for (let f = 0; f < ix.files.length; f++) {
      const p = sourcePathOf(ix, f);
      if (p === want || p.endsWith('/' + want.replace(/^\.?\//, ''))) fileIdx.add(f);
    }
    const pcs: number[] = [];
    const hashes = new Set<string>();
    for (let i = 0; i < ix.pcFile.length; i++) {
      if (!fileIdx.has(ix.pcFile[i]!) || ix.pcLine[i] !== line) continue;
      pcs.push(i);
      const ord = t?.firstRec?.[i] ?? -1;
      if (ord >= 0) hashes.add(t!.records[ord]!.h);
    }
    return { pcs, inputs: (this.inputs(id) ?? []).filter((x) => hashes.has(x.hash)) };
  }

  async inputBytes(id: string, hash: string): Promise<Buffer | undefined> {
    const e = INPUT_HASH.test(hash) ? this.targets.get(id)?.inputs.get(hash) : undefined;
    if (!e?.kept) return undefined;
    try {
      // Our own file, still read under the same rules as everything else.
      return await readBounded(this.blobPath(hash), MAX_INPUT_BYTES, { noFollow: true, owned: true });
    } catch {
      return undefined;
    }
  }

  crashes(id: string): CrashGroup[] | undefined {
    if (!this.reg.has(id)) return undefined;
    const t = this.targets.get(id);
    if (!t) return [];
    return [...t.groups.values()].map(({ key: _key, ...g }) => g).sort((a, b) => b.lastAt - a.lastAt);
  }

  crashCounts(): { id: string; kind: CrashKind; count: number }[] {
    const out: { id: string; kind: CrashKind; count: number }[] = [];
    for (const t of this.targets.values()) {
      const by = new Map<CrashKind, number>();
      for (const g of t.groups.values()) by.set(g.kind, (by.get(g.kind) ?? 0) + g.count);
      for (const [kind, count] of by) out.push({ id: t.id, kind, count });
    }
    return out;
  }

  /** Answers the control-socket queries `inputs`, `crashes` and `input` (covd inputs / crashes / input). */
  async control(m: InputsMessage | CrashesMessage | InputMessage): Promise<ControlReply> {
    if (!this.reg.has(m.id)) return { ok: false, error: `no target with id ${m.id}`, code: 'COVD_ERR_NO_TARGET' };
    switch (m.type) {
      case 'inputs': {
        if (m.file !== undefined && m.line !== undefined) return { ok: true, ...this.inputsForLine(m.id, m.file, m.line)! };
        return { ok: true, inputs: this.inputs(m.id) ?? [] };
      }
      case 'crashes':
        return { ok: true, crashes: this.crashes(m.id) ?? [] };
      case 'input': {
        const e = this.targets.get(m.id)?.inputs.get(m.hash);
        if (e && e.size > CONTROL_BYTES) return { ok: false, error: `input ${m.hash} is ${e.size} bytes, more than a control-socket reply carries; use GET /api/targets/${m.id}/inputs/${m.hash}` };
        const bytes = await this.inputBytes(m.id, m.hash);
        if (!bytes) return { ok: false, error: e ? `target ${m.id} knows input ${m.hash} but does not keep its bytes${e.reason ? `: ${e.reason}` : ''}` : `target ${m.id} has no input ${m.hash}` };
        return { ok: true, hash: m.hash, size: bytes.length, bytes };
      }
    }
  }

  /** Waits for the passes in flight (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  async close(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.timer);
    for (const t of this.soon.values()) clearTimeout(t);
    this.soon.clear();
    this.reg.off('delta', this.onDelta);
    this.reg.off('target', this.onTarget);
    this.reg.off('removed', this.onRemoved);
    await this.idle();
    this.closed = true;
    await this.db.flushed;
    await this.db.close();
  }
}
