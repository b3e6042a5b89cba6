/**
 * Call graph jobs on a worker thread: the static call graph of a target (its DWARF call site
 * entries mapped onto its PC list, src/dwarf/callsites.ts) takes a few hundred milliseconds for a
 * large program (sqlite3), which the daemon's event loop must never spend. A job runs on a piscina
 * thread of its own pool (one thread, exiting after a few seconds without work, with a heap
 * limit and a deadline, like the symbolizer's), so a huge or hostile binary fails its request
 * only.
 *
 *   const pool = new CallGraphPool();
 *   const sites = await pool.callSites({ exe, buildId, pcs, pcFunction }); // CallSites | null (-O0)
 *   await pool.destroy();
 */
import { Piscina } from 'piscina';
import { CovdError } from '../contracts/errors.js';
import type { CallSites } from '../dwarf/callsites.js';
import { DebugInfoError } from './types.js';
import type { CallGraphJob, CallGraphResult } from './callgraph-worker.js';

export interface CallGraphRequest {
  exe: string;
  debugFile?: string;
  /** The build-id the PC list was resolved from; the executable must still have it. */
  buildId: string | null;
  pcs: BigUint64Array;
  /** Each PC's function index (SourceIndex.pcFunction). */
  pcFunction: Uint32Array;
}

export interface CallGraphPoolOptions {
  /** Threads exit after this long without work (default 5 s). */
  idleExitMs?: number;
  /** Old-generation heap limit of the thread, MiB (default 2048). */
  maxHeapMb?: number;
  /** Abandon a job after this long (default 120 s): its thread is terminated. */
  timeoutMs?: number;
}

/** Timing of the last job, and the thread it ran on (for logs, benchmarks and tests). */
export interface CallGraphTiming {
  loadMs: number;
  mapMs: number;
  totalMs: number;
  threadId: number;
}

export class CallGraphPool {
  private readonly piscina: Piscina;
  private readonly timeoutMs: number;
  lastTiming: CallGraphTiming | null = null;

  constructor(opts: CallGraphPoolOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.piscina = new Piscina({
      filename: new URL('./callgraph-worker.js', import.meta.url).href,
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: opts.idleExitMs ?? 5_000,
      resourceLimits: { maxOldGenerationSizeMb: opts.maxHeapMb ?? 2048 },
    });
  }

  async callSites(req: CallGraphRequest): Promise<CallSites | null> {
    const t0 = performance.now();
    const pcs = new SharedArrayBuffer(req.pcs.length * 8);
    new BigUint64Array(pcs).set(req.pcs);
    const pcFunction = new SharedArrayBuffer(req.pcFunction.length * 4);
    new Uint32Array(pcFunction).set(req.pcFunction);
    const job: CallGraphJob = { exe: req.exe, buildId: req.buildId, pcs, pcFunction };
    if (req.debugFile !== undefined) job.debugFile = req.debugFile;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.timeoutMs);
    let r: CallGraphResult;
    try {
      r = (await this.piscina.run(job, { signal: deadline.signal })) as CallGraphResult;
    } catch (err) {
      if (deadline.signal.aborted) throw new DebugInfoError('TIMEOUT', `${req.exe}: call graph not read after ${Math.round(this.timeoutMs / 1000)} s; abandoned`);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (!r.ok) {
      if (r.kind === 'BUILD_ID') throw new CovdError('COVD_ERR_DEBUG_INFO_BUILD_ID', r.message);
      throw new DebugInfoError(r.kind, r.message);
    }
    this.lastTiming = { loadMs: r.loadMs, mapMs: r.mapMs, totalMs: performance.now() - t0, threadId: r.threadId };
    return r.sites;
  }

  async destroy(): Promise<void> {
    await this.piscina.destroy();
  }
}
