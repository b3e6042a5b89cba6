/**
 * Where the web server's blockers route (src/web/blockers-routes.ts) gets a target's static call
 * graph. Implemented over a worker pool in src/workers/callgraph.ts (DwarfCallGraph), created and
 * destroyed by the daemon (src/daemon/daemon.ts) and handed to the web server as
 * WebServerOptions.callGraph; without one, blockers answer `callGraph: "none"` with a reason.
 */
import type { TargetInfo } from './hub.js';
import type { SourceIndex } from './source-index.js';

/**
 * The call sites of a resolved PC list, as the source index can hold them: per site the caller's
 * function index, the callee's (NONE: indirect, or a function with no PC here, e.g. libc's), and
 * the index of the site's own PC. Sites outside instrumented code are left out.
 */
export interface CallSites {
  caller: Uint32Array;
  callee: Uint32Array;
  pcIndex: Uint32Array;
  /** Tail calls (1) among them. */
  tail: Uint8Array;
}

/**
 * What a call graph is read for: the target's executable and coverage file (whose PC list must
 * still hash to `pcsHash`), and the index it was resolved into (whose build-id the executable
 * must still have, and whose per-PC functions the sites are mapped onto).
 */
export type CallGraphTarget = Pick<TargetInfo, 'id' | 'exe' | 'coverageFile' | 'pcsHash'> & { index: Pick<SourceIndex, 'buildId' | 'pcFunction'> };

export interface CallGraphSource {
  /** The target's call sites mapped onto its PCs; null when its debug info has none (-O0). Rejects with a CovdError when it cannot be read. */
  callSites(t: CallGraphTarget): Promise<CallSites | null>;
}
