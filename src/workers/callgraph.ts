/**
 * Call graph jobs on a worker thread: the static call graph of a target (its DWARF call site
 * entries mapped onto its PC list, src/dwarf/callsites.ts) takes a few hundred milliseconds for a
 * large program (sqlite3), which the daemon's event loop must never spend. A job runs on a piscina
 * thread of its own pool (one thread, exiting after a few seconds without work, with a heap
 * limit and a deadline, like the symbolizer's), so a huge or hostile binary fails its request
 * only. Jobs wait their turn here, not in piscina's queue, so a job's deadline starts when it
 * starts: one waiting behind another large target is not timed out for the wait.
 *
 *   const pool = new CallGraphPool();
 *   const sites = await pool.callSites({ exe, buildId, pcs, pcFunction }); // CallSites | null (-O0)
 *   await pool.destroy();
 *
 * DwarfCallGraph is the web server's CallGraphSource (src/contracts/callgraph.ts) over such a
 * pool: the daemon creates it, hands it to the web server, and destroys it at shutdown.
 */
import { Piscina } from 'piscina';
import { CovdError } from '../contracts/errors.js';
import type { CallGraphSource, CallGraphTarget, CallSites } from '../contracts/callgraph.js';
import { pcTableHash } from '../contracts/ids.js';
import { readPcListAsync } from '../coverage/reader.js';
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
  /** Abandon a job after this long from its start (default 120 s; time spent waiting for an earlier job does not count): its thread is terminated. */
  timeoutMs?: number;
}

/** Timing of the last job, and the thread it ran on (for logs, benchmarks and tests). */
export interface CallGraphTiming {
  /** Waiting for earlier jobs. */
  waitMs: number;
  loadMs: number;
  mapMs: number;
  /** From the job's start (after the wait) to its answer. */
  totalMs: number;
  threadId: number;
}

export class CallGraphPool {
  private readonly piscina: Piscina;
  private readonly timeoutMs: number;
  /** Settles when the last job submitted is done: the next one starts after it (one thread). */
  private tail: Promise<void> = Promise.resolve();
  private destroyed = false;
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

  /** Runs the job after those submitted before it; its deadline starts then. */
  async callSites(req: CallGraphRequest): Promise<CallSites | null> {
    const submitted = performance.now();
    const before = this.tail;
    let done!: () => void;
    this.tail = new Promise<void>((r) => { done = r; });
    try {
      await before;
      if (this.destroyed) throw new CovdError('COVD_ERR_INTERNAL', `${req.exe}: call graph pool closed before the job started`);
      return await this.run(req, performance.now() - submitted);
    } finally {
      done();
    }
  }

  private async run(req: CallGraphRequest, waitMs: number): Promise<CallSites | null> {
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
    this.lastTiming = { waitMs, loadMs: r.loadMs, mapMs: r.mapMs, totalMs: performance.now() - t0, threadId: r.threadId };
    return r.sites;
  }

  /** Ends the running job (it rejects) and every waiting one. */
  async destroy(): Promise<void> {
    this.destroyed = true;
    await this.piscina.destroy();
  }
}

/**
 * The call graph from the target's executable (DWARF call site entries), read in a call graph
 * job on a worker thread; the PC list is read here without blocking (fs.promises), checked
 * against the target's PC table hash, and handed over.
 */
export class DwarfCallGraph implements CallGraphSource {
  private pool: CallGraphPool | null = null;
  private closed = false;

  constructor(private readonly makePool: () => CallGraphPool = () => new CallGraphPool()) {}

  /** The pool, created on the first request (its thread exits when idle). */
  get jobs(): CallGraphPool {
    if (this.closed) throw new CovdError('COVD_ERR_INTERNAL', 'the call graph source is closed');
    return (this.pool ??= this.makePool());
  }

  async callSites(t: CallGraphTarget): Promise<CallSites | null> {
    const jobs = this.jobs;
    const list = await readPcListAsync(t.coverageFile);
    if (t.pcsHash !== undefined && pcTableHash(list.pcs) !== t.pcsHash) throw new CovdError('COVD_ERR_COVERAGE_PCS_CHANGED', `coverage file ${t.coverageFile} now holds another PC table than target ${t.id}'s`);
    return jobs.callSites({ exe: t.exe, buildId: t.index.buildId ?? null, pcs: list.pcs, pcFunction: t.index.pcFunction });
  }

  /** Ends the running job and every later request (the daemon's shutdown). */
  async destroy(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = null;
    await pool?.destroy();
  }
}
