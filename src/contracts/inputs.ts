/**
 * Inputs behind coverage, and crashes: what the daemon (src/daemon/inputs.ts) tells the web
 * server (src/web/inputs-routes.ts), the control socket and the browser. Times are ms since the
 * epoch; hashes are SHA-1, 40 lower-case hex digits (libFuzzer's corpus and artifact names).
 * No Node imports: the browser bundles this.
 */

export const INPUT_HASH = /^[0-9a-f]{40}$/;

/** The input that first reached a PC. */
export interface FirstInput {
  hash: string;
  size: number;
  /** When the agent logged it. */
  foundAt: number;
  /** The fuzzer process's run number (inputs it had run, this one included). */
  run: number;
}

/** GET /api/targets/:id/pcs/:index */
export interface PcDetail {
  index: number;
  /** Link-time address, "0x..." (null when the PC table is not known to the daemon). */
  pc: string | null;
  /** Normalised path (src/contracts/paths.ts); null when unknown. */
  file: string | null;
  line: number | null;
  column: number | null;
  function: string | null;
  seen: boolean;
  /** First seen by the daemon (ms; second resolution), null when not seen. */
  firstSeenAt: number | null;
  input: FirstInput | null;
}

/** One entry of GET /api/targets/:id/inputs (newest first). */
export interface InputSummary {
  hash: string;
  size: number;
  /** When it was first logged. */
  foundAt: number;
  run: number;
  pid: number;
  /** PCs whose first input this is. */
  firstPcs: number;
  /** Whether the daemon holds its bytes (GET .../inputs/:hash); false: too large, or gone before it was copied. */
  kept: boolean;
  /** Why not kept. */
  reason?: string;
}

export type CrashKind = 'signal' | 'sanitizer' | 'timeout' | 'oom' | 'leak' | 'exit';

export interface CrashFrame {
  /** Link-time address for frames in the executable, else the runtime address; "0x...". */
  pc: string;
  function: string | null;
  file: string | null;
  line: number | null;
  column: number | null;
  /** Inlined frames are not expanded yet: always false. */
  inlined: boolean;
  /** In one of the target's instrumented source files (what the signature is made of). */
  project: boolean;
}

export interface CrashInputRef {
  hash: string;
  size: number;
  /** Whether the daemon holds the bytes. */
  kept: boolean;
}

/** A group of crashes with the same signature. */
export interface CrashGroup {
  /** kind, and the top three project frames (function, or file:line), like ClusterFuzz's crash state. */
  signature: string;
  kind: CrashKind;
  /** The sanitizer's summary, the signal, or libFuzzer's reason, of the first crash. */
  detail: string;
  count: number;
  firstAt: number;
  lastAt: number;
  /** The smallest input of the group (null when no crash of it had one). */
  input: CrashInputRef | null;
  /** The first crash's input. */
  firstInput: CrashInputRef | null;
  /** The first crash's stack, innermost first, the agent's own frames left out. */
  frames: CrashFrame[];
  /** Whether frames were resolved with the target's debug info (false: executable gone or rebuilt, or no stack: a record derived from an AFL++ file). */
  resolved: boolean;
  /** The artifact libFuzzer or afl-fuzz wrote for the first crash, when found. */
  artifact: string | null;
}

/** One afl-fuzz instance's plot_data as series (src/afl/stats.ts builds it). */
export interface AflPlotInstance {
  name: string;
  /** fuzzer_stats start_time (seconds since the epoch); plot_data's relative_time counts from it. */
  startTime: number;
  /** Rows in the part of plot_data read, and how many are given (evenly spaced, the last always). */
  rows: number;
  points: number;
  /** Only the last 4 MiB of the file were read at first (older rows left out). */
  truncated: boolean;
  /** Seconds since the epoch of each point (start_time + relative_time). */
  t: number[];
  /** Per column (plot_data's header names: corpus_count, saved_crashes, saved_hangs, map_size in percent, execs_per_sec, total_execs, edges_found, ...), one value per point. */
  series: Record<string, number[]>;
}

/** GET /api/targets/:id/afl/plot: every afl-fuzz instance's plot_data as series (src/afl/watcher.ts, plotSeries). */
export interface AflPlot {
  id: string;
  /** The sync directory (afl-fuzz -o). */
  dir: string;
  instances: AflPlotInstance[];
}

/** GET /api/targets/:id/corpus: the libFuzzer corpus directories named in the fuzzer's argv, counted (src/daemon/inputs.ts, countCorpus). */
export interface CorpusInfo {
  id: string;
  /** Each directory (absolute): regular files at its top level and their bytes (null: not counted, too many files). */
  dirs: { path: string; files: number; bytes: number | null; error?: string }[];
  files: number;
  bytes: number | null;
  /** When counted (or found unchanged since the last count), ms since the epoch; 0: not counted yet. */
  updatedAt: number;
}

/** What the web server asks; implemented by the daemon's InputsService. */
export interface InputsProvider {
  pcDetail(id: string, index: number): PcDetail | undefined;
  inputs(id: string): InputSummary[] | undefined;
  /** The bytes of an input the target knows (coverage or crash input); undefined when unknown or not kept. */
  inputBytes(id: string, hash: string): Promise<Uint8Array | undefined>;
  crashes(id: string): CrashGroup[] | undefined;
  /** Crash counts per target and kind, for /metrics. */
  crashCounts(): { id: string; kind: CrashKind; count: number }[];
  /** AFL++ targets: every instance's plot_data as series (undefined: no AFL++ output). Absent: the daemon reads no AFL++ output. */
  aflPlot?(id: string): Promise<AflPlot | undefined>;
  /** libFuzzer targets: the last corpus count (undefined: unknown target, an AFL++ or remote target, or not counted yet). */
  corpus?(id: string): CorpusInfo | undefined;
}
