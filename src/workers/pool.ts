/**
 * The symbolizer pool: piscina worker threads that load an executable's DWARF and resolve PCs.
 * A large request is split in two jobs that run on two threads at once (line tables in one,
 * functions in the other; with several threads, also by unit share), then merged.
 * Errors come back as tagged results and are rethrown here as DebugInfoError with their code.
 *
 *   const pool = createSymbolizerPool();            // threads default: min(2, cores)
 *   const index = await pool.resolve({ exe, pcs }); // SourceIndex, per PC in pcs order
 *   await pool.destroy();
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { mergeIndexes } from './merge.js';
import { DebugInfoError, type ResolveRequest, type SourceIndex, type Symbolizer } from './types.js';
import type { WorkerJob, WorkerResult } from './worker.js';

export interface SymbolizerPoolOptions {
  /**
   * Let threads exit after this long without work (default: keep them). A long-running daemon
   * resolves rarely, and an exited thread gives back the heap a large binary made it grow.
   */
  idleExitMs?: number;
  /** Old-generation heap limit of each worker thread, MiB (default 4096). */
  maxHeapMb?: number;
  /** Worker threads (default: 2, or 1 on a single-core machine). */
  threads?: number;
  /** Requests with fewer PCs than this run as one job (default 4096). */
  splitMinPcs?: number;
  /** Keep loaded DWARF in the workers between requests (default true). */
  cache?: boolean;
  /** Find declaration files and lines of functions (default true; see ResolveOptions). */
  declarations?: boolean;
  /** Also find each PC's innermost inlined function, SourceIndex.pcInlined (default false; see ResolveOptions.inlines). */
  inlines?: boolean;
  /**
   * Abandon a request after this long (default: never): its threads are terminated, so one
   * executable that stalls or takes forever cannot keep every other target waiting.
   */
  timeoutMs?: number;
}

export interface ResolveTiming {
  /** Wall time of the whole resolve call, including merging. */
  totalMs: number;
  /** Per job: DWARF loading and resolving inside the worker. */
  jobs: { loadMs: number; resolveMs: number }[];
}

export class SymbolizerPool implements Symbolizer {
  private readonly piscina: Piscina;
  private readonly threads: number;
  private readonly splitMinPcs: number;
  private readonly cache: boolean;
  private readonly declarations: boolean;
  private readonly inlines: boolean;
  private readonly timeoutMs: number | undefined;
  /** Timing of the last resolve (for benchmarks and logs). */
  lastTiming: ResolveTiming | null = null;

  constructor(opts: SymbolizerPoolOptions = {}) {
    this.threads = Math.max(1, opts.threads ?? Math.min(2, availableParallelism()));
    this.splitMinPcs = opts.splitMinPcs ?? 4096;
    this.cache = opts.cache ?? true;
    this.declarations = opts.declarations ?? true;
    this.inlines = opts.inlines ?? false;
    this.timeoutMs = opts.timeoutMs;
    this.piscina = new Piscina({
      filename: new URL('./worker.js', import.meta.url).href,
      minThreads: opts.idleExitMs === undefined ? this.threads : 0,
      maxThreads: this.threads,
      idleTimeout: opts.idleExitMs ?? 60_000,
      // A heap limit per thread: a huge or hostile binary then kills only its worker (the task
      // rejects and that target fails) instead of aborting the whole daemon at V8's fatal limit.
      resourceLimits: { maxOldGenerationSizeMb: opts.maxHeapMb ?? 4096 },
    });
  }

  /** Splits one request into jobs: by kind first, then by unit share when there are more threads. */
  private plan(n: number): { lines: boolean; functions: boolean; share: [number, number] }[] {
    if (this.threads < 2 || n < this.splitMinPcs) return [{ lines: true, functions: true, share: [0, 1] }];
    const perKind = Math.max(1, Math.floor(this.threads / 2));
    const jobs: { lines: boolean; functions: boolean; share: [number, number] }[] = [];
    for (let k = 0; k < perKind; k++) {
      jobs.push({ lines: true, functions: false, share: [k, perKind] });
      jobs.push({ lines: false, functions: true, share: [k, perKind] });
    }
    return jobs;
  }

  async resolve(req: ResolveRequest): Promise<SourceIndex> {
    const t0 = performance.now();
    const n = req.pcs.length;
    // One shared copy of the PCs for every job of this request.
    const shared = new SharedArrayBuffer(n * 8);
    new BigUint64Array(shared).set(req.pcs);
    // Inline frames come from one job: a split request would need its chains merged too. The
    // inlined code alone is one job of functions.
    const plan = req.inlineFrames ? [{ lines: true, functions: true, share: [0, 1] as [number, number] }]
      : req.inlinedOnly ? [{ lines: false, functions: true, share: [0, 1] as [number, number] }] : this.plan(n);
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    const deadline = timeoutMs === undefined ? undefined : new AbortController();
    const timer = deadline && setTimeout(() => deadline.abort(), timeoutMs);
    let results: WorkerResult[];
    try {
      results = await Promise.all(
        plan.map((p) => {
          const job: WorkerJob = { exe: req.exe, pcs: shared, ...p, cache: this.cache, declarations: this.declarations, ...((req.inlines ?? this.inlines) || req.inlinedOnly ? { inlines: true } : {}), ...(req.inlineFrames ? { inlineFrames: true } : {}), ...(req.inlinedOnly ? { inlinedOnly: true } : {}) };
          if (req.debugFile !== undefined) job.debugFile = req.debugFile;
          return this.piscina.run(job, deadline ? { signal: deadline.signal } : {}) as Promise<WorkerResult>;
        }),
      );
    } catch (err) {
      // Aborting terminates the threads running this request's jobs; the pool starts fresh ones.
      if (deadline?.signal.aborted) throw new DebugInfoError('TIMEOUT', `${req.exe}: not done after ${timeoutMs! < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs! / 1000)} s`} (--symbolize-timeout); abandoned so other targets can go on`);
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
    }
    const parts: SourceIndex[] = [];
    for (const r of results) {
      if (!r.ok) {
        throw new DebugInfoError(r.kind, r.message);
      }
      parts.push(r.index);
    }
    const index = mergeIndexes(parts, n, plan);
    this.lastTiming = {
      totalMs: performance.now() - t0,
      jobs: results.map((r) => (r.ok ? { loadMs: r.loadMs, resolveMs: r.resolveMs } : { loadMs: 0, resolveMs: 0 })),
    };
    return index;
  }

  async destroy(): Promise<void> {
    await this.piscina.destroy();
  }
}

export function createSymbolizerPool(opts?: SymbolizerPoolOptions): SymbolizerPool {
  return new SymbolizerPool(opts);
}
