/**
 * afl-fuzz's statistics files, parsed: an instance's `fuzzer_stats` (rewritten about once a
 * minute, and at start and exit) and `plot_data` (a CSV that gains a row every 5 s after the first
 * minute), merged into one AflInstance, and the campaign's totals as afl-whatsup adds them.
 * Pure functions: reading the files (src/util/untrusted.ts rules) is src/afl/watcher.ts's job.
 */
import type { AflCounters, AflInstance, AflStats } from '../contracts/hub.js';
import type { AflPlotInstance } from '../contracts/inputs.js';

/** A stats file that cannot be used; the message says why (never quoting more than a field name). */
export class AflStatsError extends Error {
  override name = 'AflStatsError';
}

/** The fuzzer_stats fields covd reads, with the names older AFL++ / AFL releases used for them. */
const FIELDS: Record<keyof AflCounters, string[]> = {
  execs_per_sec: ['execs_per_sec'],
  execs_done: ['execs_done'],
  corpus_count: ['corpus_count', 'paths_total'],
  corpus_found: ['corpus_found', 'paths_found'],
  saved_crashes: ['saved_crashes', 'unique_crashes'],
  saved_hangs: ['saved_hangs', 'unique_hangs'],
  stability: ['stability'],
  bitmap_cvg: ['bitmap_cvg'],
  cycles_done: ['cycles_done'],
  last_find: ['last_find', 'last_path'],
  edges_found: ['edges_found'],
};

const PERCENT = new Set<string>(['stability', 'bitmap_cvg']);

/** `key : value` lines into a map (later keys win; lines without a colon are ignored). */
export function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim();
    if (/^[a-z_]{1,40}$/.test(k)) out.set(k, line.slice(i + 1).trim());
  }
  return out;
}

/** Rates afl-fuzz divides by a run time that may still be 0 (it then prints inf or nan). */
const RATES = new Set<string>(['execs_per_sec']);

function number(raw: string | undefined, key: string, percent: boolean): number {
  if (raw === undefined) throw new AflStatsError(`no ${key} field`);
  if (RATES.has(key) && /^-?(inf|nan)$/i.test(raw)) return 0;
  const s = percent ? raw.replace(/%$/, '') : raw;
  if (!/^\d{1,20}(\.\d{1,6})?$/.test(s)) throw new AflStatsError(`${key} is not a non-negative number`);
  const v = Number(s);
  if (!Number.isFinite(v) || (percent && v > 100)) throw new AflStatsError(`${key} is out of range`);
  return v;
}

/** What one fuzzer_stats file says. */
export interface FuzzerStats extends AflCounters {
  fuzzer_pid: number;
  start_time: number;
  last_update: number;
}

/** Parses a fuzzer_stats file; throws AflStatsError naming the first field that is missing or bad. */
export function parseFuzzerStats(text: string): FuzzerStats {
  const kv = parseKeyValues(text);
  const get = (names: string[]) => names.map((n) => kv.get(n)).find((v) => v !== undefined);
  const out = {} as FuzzerStats;
  for (const [key, names] of Object.entries(FIELDS) as [keyof AflCounters, string[]][]) {
    out[key] = number(get(names), key, PERCENT.has(key));
  }
  out.fuzzer_pid = number(kv.get('fuzzer_pid'), 'fuzzer_pid', false);
  out.start_time = number(kv.get('start_time'), 'start_time', false);
  out.last_update = number(kv.get('last_update'), 'last_update', false);
  if (!Number.isSafeInteger(out.fuzzer_pid) || out.fuzzer_pid <= 0) throw new AflStatsError('fuzzer_pid is not a process id');
  return out;
}

/** The newest row of plot_data, with the fields it carries. */
export interface PlotRow {
  relative_time: number;
  cycles_done: number;
  corpus_count: number;
  saved_crashes: number;
  saved_hangs: number;
  bitmap_cvg: number;
  execs_per_sec: number;
  execs_done: number;
  edges_found: number;
}

/** plot_data's columns in AFL++ 4.x, the order used when the header is missing or unreadable. */
export const PLOT_COLUMNS = [
  'relative_time', 'cycles_done', 'cur_item', 'corpus_count', 'pending_total', 'pending_favs', 'map_size',
  'saved_crashes', 'saved_hangs', 'max_depth', 'execs_per_sec', 'total_execs', 'edges_found',
];

/** Column names from plot_data's header line (`# relative_time, cycles_done, ...`), or null. */
export function parsePlotHeader(firstLine: string): string[] | null {
  if (!firstLine.startsWith('#')) return null;
  const cols = firstLine.slice(1).split(',').map((c) => c.trim());
  return cols.includes('relative_time') && cols.every((c) => /^[a-z_]{1,40}$/.test(c)) ? cols : null;
}

/**
 * The last complete row of the text (a tail of plot_data: its first line may be cut, its last may
 * still be being written), or null when there is none. Throws AflStatsError on a malformed row.
 */
export function parseLastPlotRow(tail: string, columns: string[] = PLOT_COLUMNS): PlotRow | null {
  const end = tail.lastIndexOf('\n');
  if (end < 0) return null;
  const start = tail.lastIndexOf('\n', end - 1) + 1;
  const line = tail.slice(start, end);
  // start 0: the row is the tail's first line, which may be cut (or is the header).
  if (start === 0 || line.startsWith('#') || line.trim() === '') return null;
  const cells = line.split(',').map((c) => c.trim());
  if (cells.length < columns.length) throw new AflStatsError(`plot_data row has ${cells.length} columns, the header ${columns.length}`);
  const col = (name: string, key: string, percent = false) => {
    const i = columns.indexOf(name);
    if (i < 0) throw new AflStatsError(`plot_data has no ${name} column`);
    return number(cells[i], key, percent);
  };
  const bitmapCol = columns.includes('map_size') ? 'map_size' : 'bitmap_cvg';
  return {
    relative_time: col('relative_time', 'relative_time'),
    cycles_done: col('cycles_done', 'cycles_done'),
    corpus_count: col(columns.includes('corpus_count') ? 'corpus_count' : 'paths_total', 'corpus_count'),
    saved_crashes: col(columns.includes('saved_crashes') ? 'saved_crashes' : 'unique_crashes', 'saved_crashes'),
    saved_hangs: col(columns.includes('saved_hangs') ? 'saved_hangs' : 'unique_hangs', 'saved_hangs'),
    bitmap_cvg: col(bitmapCol, 'bitmap_cvg', true),
    execs_per_sec: col('execs_per_sec', 'execs_per_sec'),
    execs_done: col('total_execs', 'execs_done'),
    edges_found: col('edges_found', 'edges_found'),
  };
}

/**
 * One instance's figures: fuzzer_stats, with the fields plot_data carries taken from its newest
 * row when that row is newer than fuzzer_stats' last_update (start_time + relative_time). On a
 * tie fuzzer_stats wins, so after afl-fuzz exits (it writes both) the API shows the file's values.
 * corpus_found, stability and last_find are in fuzzer_stats only.
 */
export function mergeInstance(name: string, stats: FuzzerStats, plot: PlotRow | null, alive: boolean): AflInstance {
  const inst: AflInstance = {
    name, alive, fuzzer_pid: stats.fuzzer_pid, last_update: stats.last_update,
    execs_per_sec: stats.execs_per_sec, execs_done: stats.execs_done, corpus_count: stats.corpus_count,
    corpus_found: stats.corpus_found, saved_crashes: stats.saved_crashes, saved_hangs: stats.saved_hangs,
    stability: stats.stability, bitmap_cvg: stats.bitmap_cvg, cycles_done: stats.cycles_done,
    last_find: stats.last_find, edges_found: stats.edges_found,
  };
  const at = plot ? stats.start_time + plot.relative_time : 0;
  if (plot && at > stats.last_update && plot.execs_done >= stats.execs_done) {
    inst.last_update = at;
    inst.execs_per_sec = plot.execs_per_sec;
    inst.execs_done = plot.execs_done;
    inst.corpus_count = plot.corpus_count;
    inst.saved_crashes = plot.saved_crashes;
    inst.saved_hangs = plot.saved_hangs;
    inst.bitmap_cvg = plot.bitmap_cvg;
    inst.cycles_done = plot.cycles_done;
    inst.edges_found = plot.edges_found;
  }
  return inst;
}

/**
 * Totals as afl-whatsup adds them: counts summed over every instance (dead ones too, like
 * `afl-whatsup -d`: what they did still happened), exec/s summed over live instances only (a
 * dead fuzzer runs nothing), the lowest stability; and the latest last_find, the largest
 * bitmap_cvg and edges_found (instances share one edge map layout), the lowest cycles_done.
 */
export function totals(dir: string, instances: AflInstance[], updatedAt: number): AflStats {
  const sum = (k: keyof AflCounters, only: (i: AflInstance) => boolean = () => true) =>
    instances.filter(only).reduce((a, i) => a + i[k], 0);
  const round2 = (x: number) => Math.round(x * 100) / 100;
  const none = instances.length === 0;
  return {
    dir,
    execs_per_sec: round2(sum('execs_per_sec', (i) => i.alive)),
    execs_done: sum('execs_done'),
    corpus_count: sum('corpus_count'),
    corpus_found: sum('corpus_found'),
    saved_crashes: sum('saved_crashes'),
    saved_hangs: sum('saved_hangs'),
    stability: none ? 0 : Math.min(...instances.map((i) => i.stability)),
    bitmap_cvg: none ? 0 : Math.max(...instances.map((i) => i.bitmap_cvg)),
    cycles_done: none ? 0 : Math.min(...instances.map((i) => i.cycles_done)),
    last_find: none ? 0 : Math.max(...instances.map((i) => i.last_find)),
    edges_found: none ? 0 : Math.max(...instances.map((i) => i.edges_found)),
    instances,
    updatedAt,
  };
}

/** One instance's plot_data as series (GET /api/targets/:id/afl/plot; docs/protocol.md): the wire type, src/contracts/inputs.ts. */
export type { AflPlotInstance };

/** Columns of plot_data given as series (all numeric columns but relative_time). */
export const PLOT_SERIES_COLUMNS = [
  'cycles_done', 'cur_item', 'corpus_count', 'pending_total', 'pending_favs', 'map_size', 'saved_crashes', 'saved_hangs',
  'max_depth', 'execs_per_sec', 'total_execs', 'edges_found',
  // AFL++ 3.x and AFL spell some differently.
  'cur_path', 'paths_total', 'unique_crashes', 'unique_hangs', 'bitmap_cvg',
];

/**
 * plot_data rows as series, at most `maxPoints` of them (evenly spaced over the rows, the last row
 * always kept). `text` holds whole lines except maybe its first (cut when only a tail was read:
 * `cut` true drops it). Rows that do not parse are skipped, as are rows going back in time.
 */
export function parsePlotSeries(text: string, columns: string[], startTime: number, maxPoints: number, cut: boolean): Omit<AflPlotInstance, 'name' | 'truncated'> {
  const lines = text.split('\n');
  if (!text.endsWith('\n')) lines.pop(); // being written
  if (cut) lines.shift();
  const b = new PlotSeriesBuilder(columns, Infinity);
  for (const line of lines) b.addLine(line);
  return b.result(startTime, maxPoints);
}

/**
 * plot_data rows as series, fed a few lines at a time (the watcher parses only what was appended
 * to the file since its last read), holding at most 2 * `cap` rows: every row while there are
 * that few, then every 2nd, 4th, ... (the stride doubles whenever the rows kept pass 2 * cap),
 * plus the newest. result() picks at most maxPoints (<= cap) evenly spaced among them, the newest
 * always; up to 2 * cap rows it gives exactly what parsePlotSeries gives for the same lines.
 * Rows that do not parse are skipped, as are rows going back in time.
 */
export class PlotSeriesBuilder {
  /** Rows taken (every valid row, kept or thinned out). */
  rows = 0;
  private readonly keep: string[];
  /** Cells read per row: relative_time, then the kept columns. */
  private readonly cells: number[];
  private readonly ncols: number;
  private stride = 1;
  /** Rows whose ordinal is a multiple of stride: [relative_time, ...values]. */
  private kept: number[][] = [];
  private newest: number[] | null = null;
  private newestKept = false;
  private last = -Infinity;

  constructor(columns: string[], private readonly cap: number) {
    this.keep = PLOT_SERIES_COLUMNS.filter((c) => columns.includes(c));
    this.cells = [columns.indexOf('relative_time'), ...this.keep.map((c) => columns.indexOf(c))];
    this.ncols = columns.length;
  }

  /** Whole lines, '\n'-separated, no line cut (a trailing partial line is the caller's to hold back). */
  addLines(text: string): void {
    let from = 0;
    while (from < text.length) {
      let end = text.indexOf('\n', from);
      if (end < 0) end = text.length;
      this.addLine(text.slice(from, end));
      from = end + 1;
    }
  }

  addLine(line: string): void {
    if (line === '' || line.startsWith('#')) return;
    const cells = line.split(',');
    if (cells.length < this.ncols) return;
    const vals: number[] = [];
    for (const i of this.cells) {
      const s = cells[i]!.trim().replace(/%$/, '');
      const v = /^-?(inf|nan)$/i.test(s) ? 0 : /^\d{1,20}(\.\d{1,6})?$/.test(s) ? Number(s) : NaN;
      if (!Number.isFinite(v)) return;
      vals.push(v);
    }
    if (vals[0]! < this.last) return;
    this.last = vals[0]!;
    const ord = this.rows++;
    this.newest = vals;
    this.newestKept = ord % this.stride === 0;
    if (!this.newestKept) return;
    this.kept.push(vals);
    if (this.kept.length > 2 * this.cap) {
      this.stride *= 2;
      this.kept = this.kept.filter((_, k) => k % 2 === 0);
      this.newestKept = ord % this.stride === 0;
    }
  }

  /** At most maxPoints points, evenly spaced over the rows held, the newest always. */
  result(startTime: number, maxPoints: number): Omit<AflPlotInstance, 'name' | 'truncated'> {
    const rows = this.newest && !this.newestKept ? [...this.kept, this.newest] : this.kept;
    const n = rows.length;
    const pick: number[] = [];
    if (n <= maxPoints) for (let i = 0; i < n; i++) pick.push(i);
    else {
      const step = (n - 1) / (maxPoints - 1);
      for (let k = 0; k < maxPoints; k++) pick.push(Math.round(k * step));
    }
    const series: Record<string, number[]> = {};
    this.keep.forEach((c, j) => { series[c] = pick.map((i) => rows[i]![j + 1]!); });
    return { startTime, rows: this.rows, points: pick.length, t: pick.map((i) => startTime + rows[i]![0]!), series };
  }
}
