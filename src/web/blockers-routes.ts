/**
 * HTTP route for coverage blockers (docs/protocol.md, "Blockers"), registered from server.ts,
 * which has already admitted the request (Host, Origin, token, rate) as for every endpoint:
 *
 *   GET /api/targets/:id/blockers
 *     -> {id, seq, callGraph: "dwarf" | "none", reason?: string, blockers: Blocker[] heaviest first}
 *
 * The call graph comes from the CallGraphSource the daemon hands over (src/contracts/callgraph.ts;
 * the DWARF one reads it on a worker thread, never on the event loop) on the first request, and is
 * kept while the target keeps that index; a failure is kept for a minute (then asked again), so
 * open tabs do not re-read a broken executable every few seconds. Blockers are computed per seq.
 * Without a source (a web server started on its own) the answer is `callGraph: "none"` with a
 * `reason`. The executable and coverage file are the ones the registry holds for the target:
 * nothing from the URL names a file.
 */
import type { Hub, TargetDetail } from '../contracts/hub.js';
import type { SourceIndex } from '../contracts/source-index.js';
import type { CallGraphSource, CallSites } from '../contracts/callgraph.js';
import { TARGET_ID } from '../contracts/ids.js';
import { findBlockers, type Blocker } from './blockers.js';
import type { RouteIo } from './inputs-routes.js';

export type { CallGraphSource };

const ROUTE = /^\/api\/targets\/([^/]+)\/blockers$/;

/** How long a failed read of a call graph is answered from memory before it is tried again. */
export const FAILURE_RETRY_MS = 60_000;

/** The reason given when the server has no call graph source. */
export const NO_SOURCE_REASON = 'this server reads no call graphs (it was started without a call graph source)';

interface Graph {
  index: SourceIndex;
  graph: Promise<CallSites | null>;
  /** Set when `graph` failed: when it may be tried again (ms since epoch). */
  retryAt?: number;
}

export class BlockersRoutes {
  private readonly graphs = new Map<string, Graph>();
  private readonly results = new Map<string, { index: SourceIndex; seq: number; blockers: Blocker[] }>();
  private readonly failureRetryMs: number;

  constructor(private readonly hub: Hub, private readonly source: CallGraphSource | null = null, opts: { failureRetryMs?: number } = {}) {
    this.failureRetryMs = opts.failureRetryMs ?? FAILURE_RETRY_MS;
  }

  /** Drops what is kept for targets that are gone (checked per request: no listener to remove at close). */
  private prune(): void {
    for (const id of this.graphs.keys()) if (!this.hub.target(id)) { this.graphs.delete(id); this.results.delete(id); }
  }

  /** The call graph read (or being read) for this index; a failure is read again once its time is up. */
  private graphFor(t: TargetDetail, index: SourceIndex, source: CallGraphSource): Graph {
    const id = t.id;
    const g = this.graphs.get(id);
    if (g && g.index === index && (g.retryAt === undefined || Date.now() < g.retryAt)) return g;
    const entry: Graph = { index, graph: source.callSites({ id, exe: t.exe, coverageFile: t.coverageFile, ...(t.pcsHash !== undefined ? { pcsHash: t.pcsHash } : {}), index }) };
    // Only this entry is marked: a newer one (another index) made meanwhile stays as it is.
    entry.graph.catch(() => { if (this.graphs.get(id) === entry) entry.retryAt = Date.now() + this.failureRetryMs; });
    this.graphs.set(id, entry);
    return entry;
  }

  /** Answers the request when the URL is this route; false otherwise. */
  handle(url: string, io: RouteIo): boolean {
    const m = ROUTE.exec(url);
    if (!m) return false;
    const id = m[1]!;
    this.prune();
    const t = TARGET_ID.test(id) ? this.hub.target(id) : undefined;
    if (!t) return io.error(404, `no target ${id.slice(0, 64)}`), true;
    const index = t.index;
    if (!index) return io.error(409, `target ${id} has no source index yet (state ${t.state}${t.error ? ': ' + t.error : ''})`), true;
    if (!this.source) return io.json(200, { id, seq: t.seq, callGraph: 'none', reason: NO_SOURCE_REASON, blockers: [] }), true;
    const g = this.graphFor(t, index, this.source);
    io.later();
    g.graph.then(
      (cs) => {
        const now = this.hub.target(id);
        if (!now || now.index !== index) return io.error(409, `target ${id} changed while its call graph was read; ask again`);
        if (!cs) return io.json(200, { id, seq: now.seq, callGraph: 'none', blockers: [] });
        let r = this.results.get(id);
        if (!r || r.index !== index || r.seq !== now.seq) {
          r = { index, seq: now.seq, blockers: findBlockers(index, now.seen, now.stats.pcsLen, cs) };
          this.results.set(id, r);
        }
        io.json(200, { id, seq: r.seq, callGraph: 'dwarf', blockers: r.blockers });
      },
      (err: unknown) => io.error(409, `cannot read the call graph of target ${id}: ${(err as Error).message}`),
    );
    return true;
  }
}
