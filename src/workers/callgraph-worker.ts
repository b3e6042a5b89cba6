/**
 * Piscina worker entry for call graph jobs (src/workers/callgraph.ts): loads an executable's DWARF,
 * checks its build-id, and maps its call site entries onto a resolved PC list
 * (src/dwarf/callsites.ts). Errors come back as tagged results, as in worker.ts; the arrays of
 * the answer are transferred, not copied.
 */
import { threadId } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { DebugInfo } from '../dwarf/resolve.js';
import { callSitesFor } from '../dwarf/callsites.js';
import type { CallSites } from '../contracts/callgraph.js';
import { DebugInfoError, type DebugInfoErrorCode } from './types.js';

export interface CallGraphJob {
  exe: string;
  debugFile?: string;
  /** The build-id the PC list was resolved from (null: not checked). */
  buildId: string | null;
  /** The PC list (u64 link-time addresses) and each PC's function index (Uint32Array), as SourceIndex.pcFunction. */
  pcs: SharedArrayBuffer | ArrayBuffer;
  pcFunction: SharedArrayBuffer | ArrayBuffer;
}

export type CallGraphResult =
  | { ok: true; sites: CallSites | null; loadMs: number; mapMs: number; threadId: number }
  | { ok: false; kind: DebugInfoErrorCode | 'BUILD_ID'; message: string };

export default function callGraphJob(job: CallGraphJob): CallGraphResult {
  try {
    const t0 = performance.now();
    const info = DebugInfo.open(job.exe, job.debugFile);
    const loadMs = performance.now() - t0;
    if (job.buildId && info.buildId !== job.buildId) {
      return { ok: false, kind: 'BUILD_ID', message: `executable ${job.exe} has build-id ${info.buildId ?? 'none'}, not the ${job.buildId} this target was resolved from (rebuilt since?)` };
    }
    const t1 = performance.now();
    const sites = callSitesFor(info, new BigUint64Array(job.pcs), { pcFunction: new Uint32Array(job.pcFunction) });
    const result: CallGraphResult = { ok: true, sites, loadMs, mapMs: performance.now() - t1, threadId };
    if (!sites) return result;
    return move({ [transferableSymbol]: [sites.caller.buffer, sites.callee.buffer, sites.pcIndex.buffer, sites.tail.buffer], [valueSymbol]: result } as never) as unknown as CallGraphResult;
  } catch (err) {
    if (err instanceof DebugInfoError) return { ok: false, kind: err.kind, message: err.message };
    const e = err as Error;
    return { ok: false, kind: 'INTERNAL', message: `${job.exe}: internal error while reading call sites: ${e?.stack ?? String(err)}` };
  }
}
