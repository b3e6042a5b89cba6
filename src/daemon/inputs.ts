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
 * its first and last time, its first and its smallest input, and the first crash's frames.
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
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { Packr } from 'msgpackr';
import { packrOptions } from '../contracts/msgpack.js';
import type { CrashGroup, CrashInputRef, CrashKind, InputSummary, InputsProvider, PcDetail } from '../contracts/inputs.js';
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
import { IN_KEPT, IN_NOT_SAVED, IN_TOO_LARGE, parseRecords, type CrashRecord, type InputRecord } from './inputs-log.js';
import { readArtifact, resolveStacks, signatureKey, signatureOf, toStored, type StoredCrash } from './crashes.js';

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
}

export interface InputsServiceOptions {
  stateDir: string;
  registry: TargetRegistry;
  symbolizer: Symbolizer;
  log: Logger;
  pollMs?: number;
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
  /** close() was called: nothing new is scheduled, passes in flight still commit. */
  private stopping = false;
  private readonly inflight = new Set<Promise<void>>();

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
        for (const { value } of this.range<StoredCrash>(`cr/${id}/`)) t.pending.push(value);
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
        await this.readCrashes(t, info);
        await this.groupCrashes(t, info);
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
      await this.db.put(`pcs/${t.id}`, packr.pack(list.pcs));
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
    if (!bytes) {
      if (flags & IN_TOO_LARGE) { e.reason = `larger than the agent keeps (COVD_AGENT_INPUT_MAX): ${e.size} bytes`; return; }
      if (flags & IN_NOT_SAVED) { e.reason = 'the agent could not save it (disk full?)'; return; }
      if (e.size > MAX_INPUT_BYTES) { e.reason = `larger than the daemon keeps (${MAX_INPUT_BYTES} bytes)`; return; }
      if (t.storedBytes + e.size > MAX_TARGET_BYTES) { e.reason = `the daemon already keeps ${MAX_TARGET_BYTES} bytes of inputs for this target`; this.tell(t, 'input store of this target is full; new inputs are recorded without their bytes', {}); return; }
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
    const tmp = `${path}.${process.pid}.tmp`;
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
      const c = ready[i]!;
      const { frames, resolved } = stacks[i]!;
      const input = await this.crashInput(t, info, c);
      if (input.ref) puts.push([`in/${t.id}/${input.ref.hash}`, t.inputs.get(input.ref.hash)]);
      const signature = signatureOf(c.kind, c.detail, frames);
      const key = signatureKey(signature);
      let g = t.groups.get(key);
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

  /** A crash's input: from the agent's copy, else libFuzzer's artifact; kept in the store like inputs. */
  private async crashInput(t: TargetState, info: TargetInfo, c: StoredCrash): Promise<{ ref: CrashInputRef | null; artifact: string | null }> {
    const art = await readArtifact(c, MAX_INPUT_BYTES);
    const hash = c.hash ?? (art.path ? art.hash : null);
    if (!hash) return { ref: null, artifact: null };
    let e = t.inputs.get(hash);
    if (!e) {
      e = { size: c.size ?? (art.path ? art.bytes.length : 0), foundAt: c.time, run: c.run, pid: c.pid, kept: false };
      t.inputs.set(hash, e);
    }
    if (!e.kept) {
      if (art.path) await this.keepInput(t, e, hash, 0, art.path, art.bytes);
      else await this.keepInput(t, e, hash, c.flags, `${info.coverageFile}.inputs/${hash}`);
    }
    return { ref: { hash, size: e.size, kept: e.kept }, artifact: art.path };
  }

  // ------------------------------------------------------------------ removal

  private async removeStored(id: string): Promise<void> {
    const keys: string[] = [];
    const hashes: string[] = [];
    for (const prefix of [`in/${id}/`, `rec/${id}/`, `cr/${id}/`, `cg/${id}/`, `pos/${id}/`]) {
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
