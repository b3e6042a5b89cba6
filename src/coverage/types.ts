/**
 * Contract of the coverage-file reader (implemented in src/coverage/reader.ts).
 * The format itself is specified in docs/coverage-file.md.
 */

/**
 * Which on-disk layout a file uses, told apart by its size (see docs/coverage-file.md):
 * - 'seed':      header {n_runs, unique_runs, pcs_len, lowest_stack}, PCs, then seen bits
 * - 'bits-first': header {n_runs, unique_runs, pcs_len, lowest_stack}, seen bits, then PCs
 * - 'no-lowest-stack': header {n_runs, unique_runs, pcs_len}, seen bits, then PCs
 */
export type CoverageLayout = 'seed' | 'bits-first' | 'no-lowest-stack';

export interface CoverageHeader {
  nRuns: bigint;
  uniqueRuns: bigint;
  pcsLen: number;
  /** null for the layout without the field, or when the target does not track it (value 0 / u64 max). */
  lowestStack: bigint | null;
}

export { CoverageFileError } from '../contracts/errors.js';
export type { CoverageErrorKind as CoverageErrorCode } from '../contracts/errors.js';

/** Metadata the agent writes beside a coverage file (`v/<id>.meta.json`). */
export interface CoverageMeta {
  /** Absolute path of the fuzzed executable. */
  exe: string;
  /** GNU build-id in lower-case hex, or null when the executable has none. */
  buildId: string | null;
  pid: number;
  /** Process start, milliseconds since the Unix epoch. */
  startTime: number;
  argv: string[];
  /** 'afl' when the agent runs linked with AFL++'s runtime (`covd cc --engine=afl`); absent otherwise. */
  engine?: 'afl';
  /** AFL++: the instance's output directory afl-fuzz gave the target (__AFL_OUT_DIR, <-o>/<name>), absolute. */
  aflOutDir?: string;
}
