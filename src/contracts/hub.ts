/**
 * The daemon's view of its targets, as the web server (src/web) consumes it.
 * Implemented by the target registry in src/daemon; the web server only reads and listens.
 */
import type { SourceIndex } from './source-index.js';

export type TargetState = 'loading' | 'ready' | 'failed' | 'retired';

/**
 * Whether the target is being fuzzed, beside its symbolization `state`:
 * - running: a writer process is alive and runs moved within the idle time (default 10 s);
 * - idle:    a writer is alive, but no runs for that long (stopped in a debugger, stuck);
 * - stopped: no writer is alive (or, for a producer that names none, no runs for that long).
 */
export type TargetActivity = 'running' | 'idle' | 'stopped';

export interface TargetStats {
  nRuns: number;
  uniqueRuns: number;
  /** null when the target does not track it. */
  lowestStack: number | null;
  /** PCs seen so far, and PCs in all. */
  covered: number;
  pcsLen: number;
  /** Runs per second over the last few seconds; decays to 0 when runs stop. */
  runsPerSec: number;
  /** When the last new PC was seen (ms since epoch), null before any. */
  lastNewAt: number | null;
  /** When these stats were read (ms since epoch). */
  updatedAt: number;
}

export interface TargetInfo {
  /** The coverage file's id: 16 hex digits, a hash of the PC list. */
  id: string;
  /** Short human name (the executable's basename). */
  name: string;
  exe: string;
  buildId: string | null;
  coverageFile: string;
  /** Hash of the PC table the target was made from (the agent's id function); absent in records from before it was kept. */
  pcsHash?: string;
  state: TargetState;
  activity: TargetActivity;
  /** When the target was last seen to stop (no live writer), ms since epoch; null while fuzzed. */
  stoppedAt: number | null;
  /** Why the target failed, in words a user can act on. */
  error?: string;
  /** The failure's stable code (`COVD_ERR_*`, docs/protocol.md), to switch on. */
  errorCode?: string;
  /** First seen by this daemon (ms since epoch). */
  createdAt: number;
  stats: TargetStats;
  /** The fuzzing engine when known: 'afl' for AFL++ builds (`covd cc --engine=afl`); absent for libFuzzer and other producers. */
  engine?: FuzzEngine;
  /** AFL++ targets: afl-fuzz's own statistics, read from its output directory (src/afl). */
  afl?: AflStats;
}

export interface TargetDetail extends TargetInfo {
  /** null until symbolization finished (state 'loading') or when it failed. */
  index: SourceIndex | null;
  /** Seen bits, PC i = bit (i & 7) of byte (i >> 3); length ceil(pcsLen / 64) * 8. */
  seen: Uint8Array;
  /** Per PC: when first seen, seconds since the Unix epoch (0 = not seen). */
  firstSeen: Uint32Array;
  /** Sequence number of the last delta applied to `seen`. */
  seq: number;
}

export interface CoverageDelta {
  id: string;
  /** Increases by one per delta of this target; a client that misses one resynchronises. */
  seq: number;
  /** ms since epoch. */
  time: number;
  /** Indices of PCs newly seen in this tick (possibly none: then only stats changed). */
  newPcs: Uint32Array;
  stats: TargetStats;
}

export interface HistorySample {
  /** ms since epoch. */
  t: number;
  nRuns: number;
  uniqueRuns: number;
  covered: number;
}

export interface HubEvents {
  /** A target was added or its state/metadata changed. */
  target: (t: TargetInfo) => void;
  removed: (id: string) => void;
  delta: (d: CoverageDelta) => void;
  /** A source file of a target changed on disk (index into SourceIndex.files). */
  sourceChanged: (id: string, file: number) => void;
}

export interface Hub {
  targets(): TargetInfo[];
  target(id: string): TargetDetail | undefined;
  history(id: string, sinceMs?: number): HistorySample[];
  /**
   * Absolute path of a source file the target's debug info names, or undefined.
   * The only way the web server ever maps a request to the file system.
   */
  sourcePath(id: string, file: number): string | undefined;
  on<E extends keyof HubEvents>(event: E, fn: HubEvents[E]): this;
  off<E extends keyof HubEvents>(event: E, fn: HubEvents[E]): this;
}

// ---------------------------------------------------------------- AFL++ (src/afl)

export type FuzzEngine = 'libfuzzer' | 'afl';

/**
 * One afl-fuzz instance's statistics, field names and values as in its fuzzer_stats (the
 * percentages as numbers, times in seconds since the epoch, 0 = never), or from the newest row
 * of its plot_data when that is newer (plot_data carries the current exec/s).
 */
export interface AflCounters {
  execs_per_sec: number;
  execs_done: number;
  corpus_count: number;
  corpus_found: number;
  saved_crashes: number;
  saved_hangs: number;
  /** Percent, 0-100. */
  stability: number;
  /** Percent of the edge map, 0-100. */
  bitmap_cvg: number;
  cycles_done: number;
  /** Seconds since the epoch of the last new corpus entry, 0 = none yet. */
  last_find: number;
  edges_found: number;
}

export interface AflInstance extends AflCounters {
  /** The -M/-S name (the instance's directory in the sync directory). */
  name: string;
  /** Its afl-fuzz process (fuzzer_pid) is running. */
  alive: boolean;
  fuzzer_pid: number;
  /** When afl-fuzz last wrote these figures, seconds since the epoch. */
  last_update: number;
}

/**
 * The campaign: totals over its instances as afl-whatsup adds them (sums of counts, rates summed
 * over live instances only, the lowest stability), plus the latest last_find, the largest
 * bitmap_cvg and edges_found, and the lowest cycles_done (every instance has done that many).
 */
export interface AflStats extends AflCounters {
  /** The sync directory (afl-fuzz -o), absolute. */
  dir: string;
  instances: AflInstance[];
  /** When covd last read a change, ms since the epoch. */
  updatedAt: number;
}

// ---------------------------------------------------------------- fleet (src/fleet, `covd serve --nats`)

/**
 * One daemon's share of a fleet target (docs/architecture.md, "Fleet"): what it covered, how many
 * of those PCs it saw before every other node, and its latest run counters.
 */
export interface TargetNode {
  /** The node's name (`--node-name`, default the host name). */
  name: string;
  /** This daemon. */
  self: boolean;
  /** PCs this node has seen. */
  covered: number;
  /** PCs this node saw first (earliest first-seen time; ties go to the smaller name). */
  first: number;
  nRuns: number;
  uniqueRuns: number;
  /** 0 when the node is offline. */
  runsPerSec: number;
  /** The node published within the offline time (10 s). */
  online: boolean;
  /** When this daemon last heard from the node (ms since epoch); null before it did. */
  lastSeenAt: number | null;
}

/** A target's place in the fleet, on every TargetInfo of a daemon started with --nats. */
export interface TargetFleet {
  /** Nodes with coverage or stats of this target, this one included when it fuzzes it. */
  nodes: number;
  online: number;
  /** No fuzzer of this daemon runs this build: everything shown comes from other nodes. */
  remote: boolean;
  /** This daemon's own share (the target's `stats` are the union over every node). */
  own: { covered: number; nRuns: number; uniqueRuns: number };
}

export interface TargetInfo {
  /** Present when the daemon is in a fleet and some node publishes this target. */
  fleet?: TargetFleet;
}

export interface TargetDetail {
  /** Fleet: every node's share, this daemon's first (GET /api/targets/:id `nodes`). */
  nodes?: TargetNode[];
}
