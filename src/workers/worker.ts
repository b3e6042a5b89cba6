/**
 * Piscina worker entry: resolves one job (a share of the work for one executable) and returns
 * a tagged result, so a DebugInfoError keeps its class and code across the thread boundary
 * (pool.ts rethrows it). Loaded DWARF is cached per thread by path, size and mtime, so the
 * next coverage file of the same executable skips loading.
 */
import { statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { kernels, releaseKernelMemory } from '../dwarf/kernels.js';
import { prepareDemangler } from '../dwarf/demangle.js';
import { DebugInfo } from '../dwarf/resolve.js';
import { DebugInfoError, type DebugInfoErrorCode, type SourceIndex } from './types.js';

export interface WorkerJob {
  exe: string;
  debugFile?: string;
  /** The PCs, shared by all jobs of one request. */
  pcs: SharedArrayBuffer | ArrayBuffer;
  lines: boolean;
  functions: boolean;
  share: [number, number];
  /** Keep the loaded DWARF for the next request (default true). */
  cache?: boolean;
  /** Find functions' declaration lines (default true). */
  declarations?: boolean;
  /** Find each PC's innermost inlined function and its call site (pcInlined, pcCallFile, pcCallLine; default false). */
  inlines?: boolean;
  /** Every inlined frame of each PC too (a request that is not split). */
  inlineFrames?: boolean;
  /** With inlines: only the inlined code (ResolveOptions.inlinedOnly). */
  inlinedOnly?: boolean;
}

export type WorkerResult =
  | { ok: true; index: SourceIndex; loadMs: number; resolveMs: number }
  | { ok: false; kind: DebugInfoErrorCode; message: string };

/** Loaded DWARF kept per thread: at most this many executables and bytes, dropped when idle. */
// Compile the WebAssembly kernels when the thread starts, not in its first request; the
// demangler too, so a C++ target's first request does not pay it. This entry point chooses the
// kernels' tier: TurboFan, all of the module up front (about 25 ms, off the request path when
// the pool starts its threads ahead), since a kernel runs once per request and wasm has no
// on-stack replacement (on sqlite a warm thread's first request took 65 ms so against 95 ms in
// V8's baseline code, bench/NOTES-cli.md). V8's flags are per process: they are switched back at
// once to the process's own (src/cli/v8-flags.ts: baseline compiler, lazy), which the demangler
// is compiled under as names need it.
setFlagsFromString('--no-liftoff');
setFlagsFromString('--no-wasm-lazy-compilation');
try {
  kernels();
} finally {
  setFlagsFromString('--liftoff');
  setFlagsFromString('--wasm-lazy-compilation');
}
prepareDemangler();

const CACHE_SIZE = 2;
const CACHE_BYTES = 96 << 20;
const CACHE_IDLE_MS = 30_000;
const cache = new Map<string, DebugInfo>();
let idleTimer: NodeJS.Timeout | undefined;

function touchCache(): void {
  if (idleTimer) clearTimeout(idleTimer);
  if (cache.size === 0) return;
  // The daemon keeps results by build-id, so a quiet thread need not hold on to DWARF.
  idleTimer = setTimeout(() => cache.clear(), CACHE_IDLE_MS);
  idleTimer.unref();
}

function load(job: WorkerJob): { info: DebugInfo; loadMs: number } {
  let key: string;
  try {
    const st = statSync(job.exe);
    key = `${job.exe}\0${st.size}\0${st.mtimeMs}\0${job.debugFile ?? ''}`;
  } catch {
    key = '';
  }
  const hit = key ? cache.get(key) : undefined;
  if (hit) return { info: hit, loadMs: 0 };
  const t0 = performance.now();
  const info = DebugInfo.open(job.exe, job.debugFile);
  const loadMs = performance.now() - t0;
  if (key && job.cache !== false && info.approxBytes() <= CACHE_BYTES) {
    cache.set(key, info);
    let bytes = 0;
    for (const v of cache.values()) bytes += v.approxBytes();
    while (cache.size > CACHE_SIZE || (cache.size > 1 && bytes > CACHE_BYTES)) {
      const oldest = cache.keys().next().value!;
      bytes -= cache.get(oldest)!.approxBytes();
      cache.delete(oldest);
    }
  }
  return { info, loadMs };
}

export default function resolveJob(job: WorkerJob): WorkerResult {
  try {
    const { info, loadMs } = load(job);
    const t0 = performance.now();
    const index = info.resolve(new BigUint64Array(job.pcs), { lines: job.lines, functions: job.functions, share: job.share, declarations: job.declarations ?? true, inlines: job.inlines ?? false, inlineFrames: job.inlineFrames ?? false, inlinedOnly: job.inlinedOnly ?? false });
    const resolveMs = performance.now() - t0;
    releaseKernelMemory();
    touchCache();
    const transfer = [index.pcFile.buffer, index.pcLine.buffer, index.pcColumn.buffer, index.pcFunction.buffer, index.fileDirs.buffer, index.functions.file.buffer, index.functions.line.buffer];
    if (index.pcInlined) transfer.push(index.pcInlined.buffer);
    if (index.pcCallFile) transfer.push(index.pcCallFile.buffer);
    if (index.pcCallLine) transfer.push(index.pcCallLine.buffer);
    const fr = index.inlineFrames;
    if (fr) transfer.push(fr.start.buffer, fr.fn.buffer, fr.file.buffer, fr.line.buffer, fr.column.buffer, ...(fr.of ? [fr.of.buffer] : []));
    const result: WorkerResult = { ok: true, index, loadMs, resolveMs };
    // Hand the typed arrays over instead of copying them.
    return move({ [transferableSymbol]: transfer, [valueSymbol]: result } as never) as unknown as WorkerResult;
  } catch (err) {
    if (err instanceof DebugInfoError) return { ok: false, kind: err.kind, message: err.message };
    // A reader bug on odd input must not take the daemon down: report it, with where it happened.
    const e = err as Error;
    return { ok: false, kind: 'INTERNAL', message: `${job.exe}: internal error while reading debug info: ${e?.stack ?? String(err)}` };
  }
}
