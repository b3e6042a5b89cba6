/**
 * HTTP route for coverage blockers (docs/protocol.md, "Blockers"), registered from server.ts,
 * which has already admitted the request (Host, Origin, token, rate) as for every endpoint:
 *
 *   GET /api/targets/:id/blockers
 *     -> {id, seq, callGraph: "dwarf" | "none", blockers: Blocker[] heaviest first}
 *
 * The call graph is read from the target's debug info (src/dwarf/callsites.ts) on the first
 * request, for the PC list of its coverage file (checked against the target's pcsHash and the
 * index's build-id), on a worker thread (src/workers/callgraph.ts), never on the event loop, and
 * kept while the target keeps that index; blockers are computed per seq.
 * The executable and coverage file are the ones the registry holds for the target: nothing from
 * the URL names a file.
 */
import type { Hub, TargetDetail } from '../contracts/hub.js';
import type { SourceIndex } from '../contracts/source-index.js';
import { CovdError } from '../contracts/errors.js';
import type { CallSites } from '../dwarf/callsites.js';
import { readPcListAsync } from '../coverage/reader.js';
import { pcTableHash, TARGET_ID } from '../contracts/ids.js';
import { CallGraphPool } from '../workers/callgraph.js';
import { findBlockers, type Blocker } from './blockers.js';
import type { RouteIo } from './inputs-routes.js';

const ROUTE = /^\/api\/targets\/([^/]+)\/blockers$/;

/** Where call sites come from: by default the target's executable, read here (the hook for tests or a pool job). */
export interface CallGraphSource {
  /** The target's call sites mapped onto its PCs; null when its debug info has none (-O0). */
  callSites(t: TargetDetail & { index: SourceIndex }): Promise<CallSites | null>;
}

/**
 * Reads the call graph from the target's executable (DWARF call site entries) in a call graph
 * job on a worker thread (src/workers/callgraph.ts); the PC list is read here without blocking
 * (fs.promises), checked against the target's PC table hash, and handed over.
 */
export class DwarfCallGraph implements CallGraphSource {
  private pool: CallGraphPool | null = null;

  constructor(private readonly makePool: () => CallGraphPool = () => new CallGraphPool()) {}

  /** The pool, created on the first request (its thread exits when idle). */
  get jobs(): CallGraphPool {
    return (this.pool ??= this.makePool());
  }

  async callSites(t: TargetDetail & { index: SourceIndex }): Promise<CallSites | null> {
    const list = await readPcListAsync(t.coverageFile);
    if (t.pcsHash !== undefined && pcTableHash(list.pcs) !== t.pcsHash) throw new CovdError('COVD_ERR_COVERAGE_PCS_CHANGED', `coverage file ${t.coverageFile} now holds another PC table than target ${t.id}'s`);
    return this.jobs.callSites({ exe: t.exe, buildId: t.index.buildId ?? null, pcs: list.pcs, pcFunction: t.index.pcFunction });
  }

  async destroy(): Promise<void> {
    await this.pool?.destroy();
    this.pool = null;
  }
}

export class BlockersRoutes {
  private readonly graphs = new Map<string, { index: SourceIndex; graph: Promise<CallSites | null> }>();
  private readonly results = new Map<string, { index: SourceIndex; seq: number; blockers: Blocker[] }>();

  constructor(private readonly hub: Hub, private readonly source: CallGraphSource = new DwarfCallGraph()) {}

  /** Drops what is kept for targets that are gone (checked per request: no listener to remove at close). */
  private prune(): void {
    for (const id of this.graphs.keys()) if (!this.hub.target(id)) { this.graphs.delete(id); this.results.delete(id); }
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
    let g = this.graphs.get(id);
    if (!g || g.index !== index) {
      const graph = this.source.callSites({ ...t, index });
      graph.catch(() => this.graphs.delete(id)); // a failure is tried again on the next request
      this.graphs.set(id, (g = { index, graph }));
    }
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
