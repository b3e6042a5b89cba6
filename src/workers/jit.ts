/**
 * V8 settings for symbolizing, which runs on cold code: a thread resolves an executable once.
 *
 * - Optimizing compiles on the requesting thread (`--no-concurrent-recompilation`,
 *   `--no-concurrent-osr`): with background compiles, on a machine whose cores the workers
 *   already fill, optimized code arrived late. Read when an isolate starts, so it applies to
 *   threads started afterwards (the pool's), not to a thread already running.
 * - A larger interrupt budget (15x V8's default): the hot loops run in the WebAssembly kernels,
 *   and the JavaScript around them (per function and per file) runs too briefly to repay
 *   TurboFan compiling it mid-request. With the default budget a first request on sqlite took
 *   about a third longer, on a generated 100k-PC program about twice as long (interleaved runs,
 *   bench/NOTES-symbolize.md). V8 flags are per process: the daemon's own hot code also tiers
 *   up later, which costs nothing measurable in a process that runs for days.
 */
import { setFlagsFromString } from 'node:v8';

let done = false;

export function tuneJitForSymbolizing(): void {
  if (done) return;
  done = true;
  setFlagsFromString('--no-concurrent-recompilation');
  setFlagsFromString('--no-concurrent-osr');
  setFlagsFromString('--interrupt-budget=1000000');
}
