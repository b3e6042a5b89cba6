/**
 * The V8 flags of a symbolizing covd process (`covd serve`, `covd demo`, `covd symbolize`), set
 * once by the entry point (main.ts) before the command's modules load. V8's flags are per
 * process: set from a library module they would change every other module's code, and toggled
 * around one compile they race with other threads compiling. Benchmarks that symbolize set the
 * same flags themselves, as their own entry points.
 *
 * Symbolizing runs on cold code: a thread resolves an executable once.
 * - Optimizing compiles on the requesting thread (`--no-concurrent-recompilation`,
 *   `--no-concurrent-osr`): with background compiles, on a machine whose cores the workers
 *   already fill, optimized code arrived late. Read when an isolate starts, so they apply to the
 *   pool's threads, started afterwards.
 * - A larger interrupt budget (15x V8's default): the hot loops run in the WebAssembly kernels,
 *   and the JavaScript around them (per function and per file) runs too briefly to repay
 *   TurboFan compiling it mid-request (bench/NOTES-symbolize.md).
 * - WebAssembly in V8's baseline compiler only (`--no-wasm-tier-up`; Liftoff and lazy
 *   compilation are V8's defaults): both modules, the kernels and the demangler, compile each
 *   function when it is first called and never recompile it. Tiering the demangler up cost more
 *   than it saved up to 10,000 names; compiling the kernels with TurboFan up front, in a cold
 *   `covd symbolize`, cost as much as it saved on the sqlite target and on a 100k-PC program,
 *   and made a one-address request slower (bench/NOTES-cli.md). A pool thread, which compiles
 *   its kernels when it starts, ahead of its first request, chooses TurboFan for them in its own
 *   entry point (src/workers/worker.ts).
 * The daemon's own hot code tiers up later too, which costs nothing measurable in a process that
 * runs for days.
 */
import { setFlagsFromString } from 'node:v8';

export const SYMBOLIZER_V8_FLAGS = ['--no-concurrent-recompilation', '--no-concurrent-osr', '--interrupt-budget=1000000', '--no-wasm-tier-up'];

let done = false;

/** Sets SYMBOLIZER_V8_FLAGS (once per process). */
export function setSymbolizerV8Flags(): void {
  if (done) return;
  done = true;
  for (const f of SYMBOLIZER_V8_FLAGS) setFlagsFromString(f);
}
