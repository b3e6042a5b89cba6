/**
 * Contract of the symbolizer pool (src/workers/pool.ts). Its result, the source index, is a
 * contract of every layer and lives in src/contracts/source-index.ts.
 */

export interface ResolveRequest {
  /** The executable the PCs belong to (link-time addresses). */
  exe: string;
  /** Separate debug file; otherwise found by build-id / .gnu_debuglink next to exe. */
  debugFile?: string;
  pcs: BigUint64Array;
  /** Overrides the pool's deadline for this request, ms. */
  timeoutMs?: number;
  /**
   * Also return every inlined frame of each PC (the resolver's inlineFrames), for short requests
   * such as crash stacks: such a request runs as one job, never split across threads.
   */
  inlineFrames?: boolean;
  /** Overrides the pool's `inlines` for this request: each PC's innermost inlined function and its call site (SourceIndex.pcInlined, pcCallFile, pcCallLine). */
  inlines?: boolean;
  /**
   * Only the inlined code (pcInlined, pcCallFile, pcCallLine; pcFunction left NONE and functions
   * holding the inlined ones), to be added to an index resolved without it by merge.ts's
   * addInlined: the daemon's second pass, which then resolves nothing twice. One job.
   */
  inlinedOnly?: boolean;
}

export { NONE } from '../contracts/source-index.js';
export type { SourceIndex } from '../contracts/source-index.js';
import type { SourceIndex } from '../contracts/source-index.js';

export { DebugInfoError } from '../contracts/errors.js';
export type { DebugInfoErrorKind as DebugInfoErrorCode } from '../contracts/errors.js';

export interface Symbolizer {
  /** Resolves every PC; rejects with a DebugInfoError (also across the thread boundary, by code). */
  resolve(req: ResolveRequest): Promise<SourceIndex>;
  destroy(): Promise<void>;
}
