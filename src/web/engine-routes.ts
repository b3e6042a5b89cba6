/**
 * HTTP routes for what the fuzzing engine itself reports beyond coverage (docs/protocol.md,
 * "Engine figures"):
 *
 *   GET /api/targets/:id/afl/plot        AflPlot: every afl-fuzz instance's plot_data as series
 *   GET /api/targets/:id/corpus          CorpusInfo: a libFuzzer target's corpus directories, counted
 *
 * The plot series are for the coverage chart's overlay (ui/src/chart.ts), from the instances'
 * plot_data (header and last 4 MiB each at first, then only what afl-fuzz appended, under the
 * stats files' untrusted-file rules; src/afl/watcher.ts plotSeries), at most 1000 points per
 * instance and 16,000 in all, evenly spaced, the newest row always given. The corpus is the daemon's last count (every 30 s) of the directories
 * in the fuzzer's argv. Nothing from the URL reaches a path: the target's id selects what the
 * daemon already follows. 404 for an unknown target, or one without such figures.
 *
 * Registered through InputsRoutes (src/web/inputs-routes.ts), which hands it every request first;
 * the source is the daemon's InputsProvider when it has `aflPlot` / `corpus` (src/daemon/inputs.ts).
 * No Node types here: the page bundles this file's types.
 */
import type { Hub } from '../contracts/hub.js';
import { TARGET_ID } from '../contracts/ids.js';
import type { AflPlot, AflPlotInstance, CorpusInfo, InputsProvider } from '../contracts/inputs.js';

/** The wire types (src/contracts/inputs.ts), under the names the page and the tests use. */

/** Where the figures come from: the daemon's InputsProvider, when it has `aflPlot` / `corpus` (src/daemon/inputs.ts). */
export type EngineSource = Pick<InputsProvider, 'aflPlot' | 'corpus'>;

/** The part of a route module's response helpers (inputs-routes.ts, RouteIo) these routes use. */
export interface EngineRouteIo {
  json(status: number, value: unknown): void;
  error(status: number, message: string): void;
  later(): void;
}

const ROUTE = /^\/api\/targets\/([^/]+)\/(afl\/plot|corpus)$/;

export class EngineRoutes {
  constructor(private readonly hub: Hub, private readonly source: EngineSource | undefined) {}

  /** Answers the request when the URL is one of these routes; false otherwise. */
  handle(url: string, io: EngineRouteIo): boolean {
    const m = ROUTE.exec(url);
    if (!m) return false;
    const id = m[1]!;
    if (!TARGET_ID.test(id) || !this.hub.target(id)) {
      io.error(404, `no target ${id.slice(0, 64)}`);
      return true;
    }
    const src = this.source;
    if (m[2] === 'corpus') {
      const c = src?.corpus?.(id);
      if (c) io.json(200, c);
      else if (this.hub.target(id)!.engine === 'afl') io.error(404, `target ${id} is an AFL++ target: its corpus is afl.corpus_count`);
      // Not counted (yet), or no corpus directory in the fuzzer's arguments: an empty count, not
      // an error, since the page asks for every libFuzzer target.
      else io.json(200, { id, dirs: [], files: 0, bytes: 0, updatedAt: 0 } satisfies CorpusInfo);
      return true;
    }
    if (!src?.aflPlot) {
      io.error(404, 'this daemon does not read AFL++ output');
      return true;
    }
    io.later();
    void src.aflPlot(id).then(
      (plot) => (plot ? io.json(200, plot) : io.error(404, `target ${id} has no AFL++ output directory`)),
      () => io.error(500, 'reading plot_data failed'),
    );
    return true;
  }
}
