/**
 * Contract of the symbolizer pool (src/workers/pool.ts) and its result, the source index.
 * Mirrors the seed's std.debug.Coverage: interned directories and files, one location per PC.
 * Everything numeric is a typed array so results transfer between threads without copying.
 */

export interface ResolveRequest {
  /** The executable the PCs belong to (link-time addresses). */
  exe: string;
  /** Separate debug file; otherwise found by build-id / .gnu_debuglink next to exe. */
  debugFile?: string;
  pcs: BigUint64Array;
  /** Overrides the pool's deadline for this request, ms. */
  timeoutMs?: number;
}

/** Sentinel in pcFile / pcFunction: no file or function known. */
export const NONE = 0xffffffff;

export interface SourceIndex {
  /** The build-id read from the executable's ELF notes (not from anyone's word). */
  buildId: string | null;
  /** Set by the daemon: pcTableHash of the PCs this index answers, checked on every restore. */
  pcsHash?: string;
  /** Interned directory names (absolute where the debug info makes them so). */
  directories: string[];
  /** File basenames (may contain '/' when the debug info names a relative subpath); fileDirs[i] indexes directories. */
  files: string[];
  fileDirs: Uint32Array;
  /** Functions, interned: names[i], declared in functions.file[i] at functions.line[i]. */
  functions: { names: string[]; file: Uint32Array; line: Uint32Array };
  /** Per PC, in the request's order: file index (NONE = unknown, shown as '??'), line (0 = unknown), column, function index. */
  pcFile: Uint32Array;
  pcLine: Uint32Array;
  pcColumn: Uint32Array;
  pcFunction: Uint32Array;
}

export type DebugInfoErrorCode =
  | 'ENOENT'          // the executable (or debug file) is missing
  | 'NOT_ELF'         // not an ELF64 little-endian file
  | 'NO_DEBUG_INFO'   // no .debug_info / .debug_line, and no separate debug file found
  | 'CORRUPT'         // malformed DWARF or ELF (message says where)
  | 'UNSUPPORTED'     // e.g. an unknown compression type
  | 'NOT_REGULAR'     // a FIFO, device or directory where an executable should be
  | 'TIMEOUT';        // the pool's per-request deadline passed

export class DebugInfoError extends Error {
  override name = 'DebugInfoError';
  constructor(readonly code: DebugInfoErrorCode, message: string) {
    super(message);
  }
}

export interface Symbolizer {
  /** Resolves every PC; rejects with a DebugInfoError (also across the thread boundary, by code). */
  resolve(req: ResolveRequest): Promise<SourceIndex>;
  destroy(): Promise<void>;
}
