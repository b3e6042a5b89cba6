/**
 * AFL++ statistics for the daemon: which targets are AFL++ builds, where their afl-fuzz output
 * is, and each instance's fuzzer_stats and plot_data as they change, put on the target as
 * `engine: 'afl'` and `afl: AflStats` (src/contracts/hub.ts) through registry.setAfl().
 *
 * Where the output is: the agent's metadata (`aflOutDir`, the instance directory afl-fuzz passed
 * as __AFL_OUT_DIR, i.e. <-o>/<name>) names it; its parent is the sync directory, and every
 * directory in it holding a fuzzer_stats is an instance (as afl-whatsup finds them), so -M/-S
 * instances started in any order all show. `covd add --afl-out DIR` names it by hand (DIR may be
 * the -o directory or one instance in it). The newest word wins: a metadata file that changes to
 * name another directory (a new campaign) moves the target there. A target restored from the
 * store carries on with the directory it had.
 *
 * Hardening (README "Security"): every directory and file name comes from someone else's
 * metadata, so stats files are opened through src/util/untrusted.ts (non-blocking, regular files
 * owned by this user or root, bounded reads: fuzzer_stats whole up to 256 KiB, plot_data's first
 * line and last 16 KiB only), instance directories are real directories found by readdir (never
 * a symlink), at most 64 instances out of the first 1024 subdirectories, and all of it through
 * fs.promises (/proc included), so the main thread never waits on a file, one target after
 * another every 2 s. A file that cannot be used is skipped with
 * its reason logged once (a fuzzer_stats read mid-rewrite is retried at the next poll before it
 * counts as bad); the instance keeps its last good figures.
 *
 * Crash and hang records: the watcher emits 'findings' (AflFindings) whenever an instance's
 * saved_crashes or saved_hangs grows, and once per instance when first read (previous: null),
 * with the instance directory whose crashes/ and hangs/ hold the inputs; the inputs service
 * (src/daemon/inputs.ts, attachAfl) follows those directories from then on.
 *
 * plotSeries() gives the chart every instance's plot_data as series: parsed once, then only the
 * rows appended since (cached per instance by ino, size and mtime), a chunk at a time.
 */
import { EventEmitter } from 'node:events';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { AflInstance, AflStats, TargetInfo } from '../contracts/hub.js';
import { metaPathFor, readCoverageMetaAsync } from '../coverage/meta.js';
import type { TargetRegistry } from '../daemon/registry.js';
import type { Logger } from '../util/log.js';
import { openRegular, readBounded, UntrustedFileError } from '../util/untrusted.js';
import type { AflPlot } from '../contracts/inputs.js';
import { AflStatsError, mergeInstance, parseFuzzerStats, parseLastPlotRow, parsePlotHeader, PLOT_COLUMNS, PlotSeriesBuilder, totals, type FuzzerStats, type PlotRow } from './stats.js';

export const MAX_FUZZER_STATS_BYTES = 256 << 10;
export const PLOT_TAIL_BYTES = 16 << 10;
const PLOT_HEADER_BYTES = 1024;
export const MAX_INSTANCES = 64;
/** Subdirectories of a sync directory looked at for a fuzzer_stats, per scan. */
const MAX_CANDIDATES = 1024;
/** AFL++'s rule for -M/-S names (fix_up_sync): letters, digits, '_' and '-', at most 32. */
const INSTANCE_NAME = /^[A-Za-z0-9_-]{1,32}$/;
const RESCAN_MS = 10_000;

/** A new crash or hang count of one instance (see the module comment). */
export interface AflFindings {
  id: string;
  instance: string;
  /** The instance directory: its crashes/ and hangs/ hold the inputs. */
  dir: string;
  saved_crashes: number;
  saved_hangs: number;
  /** The counts before, null the first time this instance is read. */
  previous: { saved_crashes: number; saved_hangs: number } | null;
  /** The instance's start_time (seconds since the epoch): its crash and hang file names count `time:` from it. */
  startTime: number;
}

/** GET /api/targets/:id/afl/plot: every instance's plot_data as series (src/contracts/inputs.ts, src/web/engine-routes.ts). */
export type { AflPlot };

/** The tail of each plot_data read first for the series (about 50,000 rows: three days at one row per 5 s). */
export const PLOT_SERIES_BYTES = 4 << 20;
/** Points per instance in the series, and over all instances. */
export const PLOT_MAX_POINTS = 1000;
const PLOT_MAX_POINTS_TOTAL = 16_000;
/** plot_data is read and parsed this much at a time, the event loop let go in between. */
const PLOT_CHUNK_BYTES = 64 << 10;
/** A "line" longer than this is no plot_data row: dropped without being held. */
const PLOT_MAX_LINE = 64 << 10;

/** An instance's plot_data as parsed so far for the series: the rows of the bytes up to `offset`. */
interface PlotCache {
  ino: number;
  size: number;
  mtimeMs: number;
  /** Bytes parsed: the file up to here, from where the first read began. */
  offset: number;
  /** The first read began past the file's start (its older rows are left out). */
  truncated: boolean;
  /** The bytes before the first newline at `offset` are the end of a line cut by the first read (or of one too long). */
  skipLine: boolean;
  /** offset sits right after a newline (checked before appended bytes are trusted to continue the file). */
  atLine: boolean;
  series: PlotSeriesBuilder;
}

export interface AflWatcherOptions {
  registry: TargetRegistry;
  log: Logger;
  /** Default 2000 ms. */
  pollMs?: number;
  now?: () => number;
}

interface FileState {
  /** size:mtime of the last read, '' before any. */
  key: string;
  /** A failure seen once, re-read at the next poll before it is logged. */
  suspect?: string;
  /** The reason last logged, so a file that stays bad is logged once. */
  logged?: string;
}

interface Instance {
  name: string;
  dir: string;
  statsFile: FileState;
  plotFile: FileState;
  stats?: FuzzerStats;
  plot: PlotRow | null;
  plotColumns: string[] | null;
  alive: boolean;
  /** Crash and hang counts last reported in 'findings'. */
  counts?: { saved_crashes: number; saved_hangs: number };
  /** plot_data as series, parsed so far (plotSeries). */
  plotCache?: PlotCache;
}

interface Followed {
  dir?: string;
  metaKey?: string;
  engine?: 'afl';
  instances: Map<string, Instance>;
  lastScan: number;
  /** JSON of the instances last published, to publish only changes. */
  published?: string;
  dirMissingLogged?: boolean;
}

/** The sync directory of an instance directory or of a sync directory (an instance holds queue/ or fuzzer_stats). */
export async function syncDirOf(dir: string): Promise<string> {
  const isDir = (p: string) => stat(p).then((s) => s.isDirectory(), () => false);
  const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);
  return (await isDir(join(dir, 'queue'))) || (await isFile(join(dir, 'fuzzer_stats'))) ? dirname(dir) : dir;
}

function reasonOf(err: unknown): string {
  if (err instanceof UntrustedFileError) return err.message.slice(err.path.length + 2);
  if (err instanceof AflStatsError) return err.message;
  return (err as Error)?.message ?? String(err);
}

async function readPlot(path: string, tailBytes = PLOT_TAIL_BYTES): Promise<{ header: string; tail: string; cut: boolean }> {
  const { fh, st } = await openRegular(path, { owned: true });
  try {
    const head = Buffer.alloc(Math.min(PLOT_HEADER_BYTES, st.size));
    await fh.read(head, 0, head.length, 0);
    const from = Math.max(0, st.size - tailBytes);
    const tail = Buffer.alloc(st.size - from);
    const { bytesRead } = await fh.read(tail, 0, tail.length, from);
    const headText = head.toString('latin1');
    return { header: headText.slice(0, Math.max(0, headText.indexOf('\n'))), tail: tail.subarray(0, bytesRead).toString('latin1'), cut: from > 0 };
  } finally {
    await fh.close().catch(() => {});
  }
}

/** True when `pid` is a live (not zombie) process named afl-fuzz: /proc/<pid>/stat, read without blocking. */
async function isAflFuzz(pid: number): Promise<boolean> {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  const open = stat.indexOf('('), close = stat.lastIndexOf(')');
  if (open < 0 || close < open) return false;
  const state = stat.slice(close + 2, close + 3);
  return stat.slice(open + 1, close) === 'afl-fuzz' && state !== 'Z' && state !== 'X';
}

export class AflStatsWatcher extends EventEmitter {
  private readonly followed = new Map<string, Followed>();
  private readonly pollMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private polling: Promise<void> = Promise.resolve();
  private readonly onRemoved = (id: string) => { this.followed.delete(id); };
  /** plotSeries() in flight per target: concurrent requests share it. */
  private readonly plotting = new Map<string, Promise<AflPlot | undefined>>();
  /** plot_data reads for the series, and their bytes (tests, status). */
  readonly plotReads = { reads: 0, bytes: 0 };

  constructor(private readonly o: AflWatcherOptions) {
    super();
    this.pollMs = o.pollMs ?? 2000;
    this.now = o.now ?? Date.now;
    o.registry.on('removed', this.onRemoved);
    this.schedule(0);
  }

  /** `covd add --afl-out DIR`: the target's afl-fuzz output is DIR (the -o directory or one instance in it). */
  async follow(id: string, dir: string): Promise<void> {
    const sync = await syncDirOf(dir);
    const f = this.state(id);
    f.engine = 'afl';
    this.moveTo(id, f, sync, 'covd add --afl-out');
    this.schedule(0);
  }

  /** The sync directory followed for a target, if any (tests, status). */
  dirOf(id: string): string | undefined {
    return this.followed.get(id)?.dir;
  }

  /**
   * Every instance's plot_data as series, for the chart (GET /api/targets/:id/afl/plot): the
   * header and the last PLOT_SERIES_BYTES of each file at first, under the same rules as the stats
   * files, then only the bytes appended since (nothing is read while the file's ino, size and mtime
   * stay), parsed PLOT_CHUNK_BYTES at a time with the event loop let go in between; at most
   * PLOT_MAX_POINTS points per instance. One computation per target at a time: a request while
   * one runs gets its result. undefined when the target has no AFL++ output.
   */
  plotSeries(id: string): Promise<AflPlot | undefined> {
    const running = this.plotting.get(id);
    if (running) return running;
    const p = this.computePlot(id).finally(() => { if (this.plotting.get(id) === p) this.plotting.delete(id); });
    this.plotting.set(id, p);
    return p;
  }

  /** Runs one poll of every target now and waits for it (tests). */
  async pollNow(): Promise<void> {
    const p = this.polling.then(() => this.pollAll());
    this.polling = p.catch(() => {});
    await p;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.o.registry.off('removed', this.onRemoved);
  }

  // ---------------------------------------------------------------- internals

  private async computePlot(id: string): Promise<AflPlot | undefined> {
    const f = this.followed.get(id);
    if (!f?.dir) return undefined;
    const insts = [...f.instances.values()].filter((i) => i.stats).sort((a, b) => a.name.localeCompare(b.name));
    const max = Math.max(50, Math.min(PLOT_MAX_POINTS, Math.floor(PLOT_MAX_POINTS_TOTAL / Math.max(1, insts.length))));
    const out: AflPlot = { id, dir: f.dir, instances: [] };
    for (const inst of insts) {
      const path = join(inst.dir, 'plot_data');
      try {
        const c = await this.plotOf(inst, path);
        if (c) out.instances.push({ name: inst.name, truncated: c.truncated, ...c.series.result(inst.stats!.start_time, max) });
      } catch (err) {
        inst.plotCache = undefined;
        this.o.log.debug('plot_data not readable for the series', { id, file: path, reason: reasonOf(err) });
      }
    }
    return out;
  }

  /** The instance's plot_data parsed up to its current end: unchanged, appended to, or read anew. null: no file. */
  private async plotOf(inst: Instance, path: string): Promise<PlotCache | null> {
    const st = await stat(path).catch(() => null);
    if (!st) { inst.plotCache = undefined; return null; }
    let c = inst.plotCache;
    const same = (x: { ino: number; size: number; mtimeMs: number }) => c !== undefined && c.ino === x.ino && c.size === x.size && c.mtimeMs === x.mtimeMs;
    if (same(st)) return c!;
    const { fh, st: fst } = await openRegular(path, { owned: true });
    try {
      if (same(fst)) return c!;
      // Appended to: the same file, longer, still a newline where the last read stopped (afl-fuzz only appends).
      let appended = c !== undefined && c.ino === fst.ino && fst.size > c.size && fst.size >= c.offset;
      if (appended && c!.atLine && c!.offset > 0) {
        const nl = Buffer.alloc(1);
        await fh.read(nl, 0, 1, c!.offset - 1);
        appended = nl[0] === 0x0a;
      }
      if (!appended) {
        const head = Buffer.alloc(Math.min(PLOT_HEADER_BYTES, fst.size));
        await fh.read(head, 0, head.length, 0);
        const headText = head.toString('latin1');
        const cols = parsePlotHeader(headText.slice(0, Math.max(0, headText.indexOf('\n')))) ?? PLOT_COLUMNS;
        const from = Math.max(0, fst.size - PLOT_SERIES_BYTES);
        c = { ino: fst.ino, size: 0, mtimeMs: 0, offset: from, truncated: from > 0, skipLine: from > 0, atLine: from === 0, series: new PlotSeriesBuilder(cols, PLOT_MAX_POINTS) };
      }
      const cache = c!;
      inst.plotCache = cache;
      let pos = cache.offset;
      let carry = '';
      while (pos < fst.size) {
        const buf = Buffer.allocUnsafe(Math.min(PLOT_CHUNK_BYTES, fst.size - pos));
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        this.plotReads.reads++;
        this.plotReads.bytes += bytesRead;
        pos += bytesRead;
        const text = carry + buf.toString('latin1', 0, bytesRead);
        const end = text.lastIndexOf('\n');
        if (end < 0) {
          carry = text;
          if (carry.length > PLOT_MAX_LINE) { carry = ''; cache.offset = pos; cache.skipLine = true; cache.atLine = false; }
          continue;
        }
        let from = 0;
        if (cache.skipLine) { from = text.indexOf('\n') + 1; cache.skipLine = false; }
        if (from <= end) cache.series.addLines(text.slice(from, end));
        carry = text.slice(end + 1);
        cache.offset = pos - carry.length; // latin1: one character per byte
        cache.atLine = true;
        if (pos < fst.size) await new Promise<void>((r) => setImmediate(r));
      }
      cache.ino = fst.ino;
      cache.size = fst.size;
      cache.mtimeMs = fst.mtimeMs;
      return cache;
    } finally {
      await fh.close().catch(() => {});
    }
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.polling = this.polling.then(() => this.pollAll()).catch((err) => this.o.log.error('AFL++ stats poll failed', { err }))
        .finally(() => { if (!this.closed && !this.timer) this.schedule(this.pollMs); });
    }, ms);
    this.timer.unref();
  }

  private state(id: string): Followed {
    let f = this.followed.get(id);
    if (!f) this.followed.set(id, (f = { instances: new Map(), lastScan: 0 }));
    return f;
  }

  private moveTo(id: string, f: Followed, dir: string, from: string): void {
    if (f.dir === dir) return;
    if (f.dir !== undefined) this.o.log.info('AFL++ output directory changed', { id, from: f.dir, to: dir, by: from });
    else this.o.log.info('following AFL++ output', { id, dir, by: from });
    f.dir = dir;
    f.instances.clear();
    f.lastScan = 0;
    f.published = undefined;
    f.dirMissingLogged = false;
  }

  private async pollAll(): Promise<void> {
    for (const t of this.o.registry.targets()) {
      if (this.closed) return;
      if (t.state === 'retired') continue;
      try {
        await this.pollTarget(t);
      } catch (err) {
        this.o.log.warn('reading AFL++ stats failed', { id: t.id, err });
      }
    }
  }

  private async pollTarget(t: TargetInfo): Promise<void> {
    const f = this.state(t.id);
    await this.checkMeta(t, f);
    if (f.dir === undefined && t.afl?.dir) this.moveTo(t.id, f, t.afl.dir, 'the stored target');
    if (f.engine === undefined && t.engine === 'afl') f.engine = 'afl';
    if (f.engine === 'afl' && t.engine !== 'afl') this.o.registry.setAfl(t.id, 'afl');
    if (f.dir === undefined) return;
    const now = this.now();
    if (f.instances.size === 0 || now - f.lastScan >= RESCAN_MS) await this.scan(t.id, f, now);
    let changed = false;
    for (const inst of f.instances.values()) if (await this.readInstance(t.id, inst)) changed = true;
    for (const inst of f.instances.values()) {
      const alive = inst.stats ? await isAflFuzz(inst.stats.fuzzer_pid) : false;
      if (alive !== inst.alive) { inst.alive = alive; changed = true; }
    }
    if (!changed && f.published !== undefined) return;
    const list: AflInstance[] = [];
    for (const inst of [...f.instances.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      if (!inst.stats) continue;
      const merged = mergeInstance(inst.name, inst.stats, inst.plot, inst.alive);
      list.push(merged);
      this.findings(t.id, inst, merged);
    }
    const json = JSON.stringify(list);
    if (json === f.published) return;
    f.published = json;
    const stats: AflStats = totals(f.dir, list, now);
    f.engine = 'afl';
    this.o.registry.setAfl(t.id, 'afl', stats);
  }

  /** Reads the metadata again when it changed: the engine, and the output directory it names. */
  private async checkMeta(t: TargetInfo, f: Followed): Promise<void> {
    const path = metaPathFor(t.coverageFile);
    const st = await stat(path).catch(() => null);
    const key = st ? `${st.size}:${st.mtimeMs}:${st.ino}` : 'none';
    if (key === f.metaKey) return;
    f.metaKey = key;
    // Every afl-fuzz instance that starts rewrites the metadata: look for new instances now.
    f.lastScan = 0;
    if (!st) return;
    let meta;
    try {
      meta = await readCoverageMetaAsync(t.coverageFile);
    } catch {
      return; // the dispatcher reports unusable metadata; here it only names no directory
    }
    if (meta?.engine === 'afl') f.engine = 'afl';
    if (meta?.aflOutDir) this.moveTo(t.id, f, dirname(meta.aflOutDir), 'the metadata');
  }

  /** Finds the instances: the sync directory itself and its subdirectories, when they hold a fuzzer_stats. */
  private async scan(id: string, f: Followed, now: number): Promise<void> {
    const dir = f.dir!;
    f.lastScan = now;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (!f.dirMissingLogged) {
        f.dirMissingLogged = true;
        this.o.log.info('AFL++ output directory not readable (yet)', { id, dir, code: (err as NodeJS.ErrnoException).code });
      }
      return;
    }
    f.dirMissingLogged = false;
    const candidates: [string, string][] = [['', dir]];
    for (const e of entries) {
      if (candidates.length > MAX_CANDIDATES) break; // not an afl-fuzz output directory, or a huge one: look no further
      if (e.isDirectory() && INSTANCE_NAME.test(e.name)) candidates.push([e.name, join(dir, e.name)]);
    }
    for (const [name, d] of candidates) {
      if (f.instances.size >= MAX_INSTANCES) break;
      const key = name || '.';
      if (f.instances.has(key)) continue;
      const has = await stat(join(d, 'fuzzer_stats')).then(() => true, () => false);
      if (!has) continue;
      f.instances.set(key, { name: name || basename(d), dir: d, statsFile: { key: '' }, plotFile: { key: '' }, plot: null, plotColumns: null, alive: false });
    }
  }

  /** Re-reads an instance's files that changed; true when its figures changed. */
  private async readInstance(id: string, inst: Instance): Promise<boolean> {
    let changed = false;
    const statsPath = join(inst.dir, 'fuzzer_stats');
    if (await this.changed(inst.statsFile, statsPath)) {
      const ok = await this.attempt(id, statsPath, inst.statsFile, async () => {
        inst.stats = parseFuzzerStats((await readBounded(statsPath, MAX_FUZZER_STATS_BYTES, { owned: true })).toString('latin1'));
      });
      if (ok) changed = true;
    }
    const plotPath = join(inst.dir, 'plot_data');
    if (await this.changed(inst.plotFile, plotPath)) {
      const ok = await this.attempt(id, plotPath, inst.plotFile, async () => {
        const { header, tail } = await readPlot(plotPath);
        inst.plotColumns ??= parsePlotHeader(header);
        inst.plot = parseLastPlotRow(tail, inst.plotColumns ?? PLOT_COLUMNS) ?? inst.plot;
      });
      if (ok) changed = true;
    }
    return changed;
  }

  /** True when the file's size or mtime moved since the last read (or a suspect read is due again). */
  private async changed(fs: FileState, path: string): Promise<boolean> {
    const st = await stat(path).catch(() => null);
    const key = st ? `${st.size}:${st.mtimeMs}:${st.ino}` : 'none';
    if (key === 'none') return false;
    if (key === fs.key && fs.suspect === undefined) return false;
    fs.key = key;
    return true;
  }

  /** Runs a read; a failure is logged when it repeats at the next poll, once per reason. */
  private async attempt(id: string, path: string, fs: FileState, read: () => Promise<void>): Promise<boolean> {
    try {
      await read();
      if (fs.logged) this.o.log.info('AFL++ stats file usable again', { id, file: path });
      fs.suspect = undefined;
      fs.logged = undefined;
      return true;
    } catch (err) {
      const reason = reasonOf(err);
      // Not a regular file, someone else's, too large: no point waiting. A parse error may be a
      // read that raced afl-fuzz rewriting the file in place: give it one more poll.
      const final = err instanceof UntrustedFileError || fs.suspect !== undefined;
      if (!final) {
        fs.suspect = reason;
        return false;
      }
      fs.suspect = undefined;
      if (fs.logged !== reason) {
        fs.logged = reason;
        this.o.log.warn('skipping an AFL++ stats file', { id, file: path, reason });
      }
      return false;
    }
  }

  /** Emits 'findings' when an instance's crash or hang count grew (or on its first read). */
  private findings(id: string, inst: Instance, s: AflInstance): void {
    const before = inst.counts;
    if (before && s.saved_crashes <= before.saved_crashes && s.saved_hangs <= before.saved_hangs) return;
    inst.counts = { saved_crashes: Math.max(s.saved_crashes, before?.saved_crashes ?? 0), saved_hangs: Math.max(s.saved_hangs, before?.saved_hangs ?? 0) };
    const ev: AflFindings = {
      id, instance: inst.name, dir: inst.dir, saved_crashes: s.saved_crashes, saved_hangs: s.saved_hangs,
      previous: before ? { ...before } : null, startTime: inst.stats?.start_time ?? 0,
    };
    try {
      this.emit('findings', ev);
    } catch (err) {
      this.o.log.error('an AFL++ findings listener failed', { id, err });
    }
  }
}
