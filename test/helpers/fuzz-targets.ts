/**
 * Shared test helpers for real fuzz targets (used by the coverage, agent, daemon, web and UI tests).
 * The implementations live in src/build/targets.ts (also used by `covd demo` and the benchmarks).
 *
 * - buildExampleTarget(): Promise<string>
 *     Builds examples/tinyimg with the covd agent (clang-14 -g -O1 -fsanitize=fuzzer + agent),
 *     once per content hash of its sources, flags and the agent, cached under build/targets/;
 *     resolves to the executable path. Real DWARF (the sources are examples/tinyimg/*.c).
 * - buildSqliteTarget(): Promise<string>
 *     The same for the sqlite3 amalgamation (scripts/build-sqlite-target.sh, ~47k PCs). The first
 *     build takes minutes (give the test a timeout of 10 minutes); later calls are instant.
 * - runFuzzer(exe, { covdDir, seconds?, runs?, socket?, extraArgs?, env?, corpus? })
 *     Starts libFuzzer with COVD_DIR=covdDir (and COVD_SOCKET=socket if given), in a temp working
 *     directory, on a temp copy of the target's seed corpus. Returns { child, done } where done
 *     resolves to { code, stderr } at exit, and stop(signal = 'SIGTERM') which signals the fuzzer
 *     and all its -jobs/-fork workers and resolves like done. With neither seconds nor runs it
 *     runs until stopped: always `await run.stop()` in an after/afterEach hook.
 * - findCoverageFile(covdDir, timeoutMs = 60000): Promise<string>
 *     Polls for <covdDir>/v/<16 hex digits> (at least a header long) and returns its path.
 *     The metadata file is the same path + '.meta.json' (written right after; poll for it).
 */
export {
  buildExampleTarget,
  buildSqliteTarget,
  buildFuzzTarget,
  runFuzzer,
  findCoverageFile,
  listCoverageFiles,
  seedCorpusFor,
  type RunFuzzerOptions,
  type FuzzerRun,
} from '../../src/build/targets.js';
