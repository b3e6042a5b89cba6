/**
 * HTTP route for comparisons (docs/protocol.md, "Comparisons"), registered from server.ts, which
 * has already admitted the request (Host, Origin, token, rate) exactly as for every other endpoint:
 *
 *   GET /api/targets/:a/compare/:b[?format=json|lcov]
 *
 * `b` is one of:
 *   - another target id: another build of the same program, matched by source path and line;
 *     A = target a now, B = target b now;
 *   - `@<ms since the epoch>`: target a as it was then (its PCs first seen at or before that time);
 *     the past is the base, A = a then, B = a now, so onlyB is what was covered since, and onlyA is
 *     always empty (coverage is never lost);
 *   - a prefix a resolver was registered for with `registerSide` (the fleet's `node:NAME` hook).
 *
 * The answer is `{a, b, files: [{path, onlyA, onlyB, both}], totals: {onlyA, onlyB, both}}` in
 * lines; `format=lcov` is the difference as an lcov tracefile (lines only in B, as hit).
 */
import type { Hub, TargetDetail } from '../contracts/hub.js';
import { compareLines, comparisonLcov, targetLines, type CompareAnswer, type CompareSideLabel, type CoveredLines } from './compare.js';
import type { RouteIo } from './inputs-routes.js';
import { TARGET_ID } from '../contracts/ids.js';

const ROUTE = /^\/api\/targets\/([^/]+)\/compare\/([^/]+)$/;
/** `@` then ms since the epoch; `%40` is how some clients spell the `@`. */
const AT = /^(?:@|%40)(\d{1,16})$/;

/** One side of a comparison as a resolver hands it back. */
export interface CompareSide {
  /** Covered lines by normalised source path. */
  lines: CoveredLines;
  /** Describes the side in the answer's `a` / `b` (e.g. `{node: 'n2'}`). */
  label: CompareSideLabel;
}

/**
 * Resolves a `b` of the form `<prefix>:<rest>` against target a (which is indexed). Returns the B
 * side, or an error to answer with (status, message); A is then target a now.
 */
export type SideResolver = (rest: string, a: TargetDetail) => CompareSide | { status: number; error: string };

export class CompareRoutes {
  private readonly resolvers = new Map<string, SideResolver>();

  constructor(private readonly hub: Hub) {}

  /**
   * Hook for other kinds of B: `b = <prefix>:<rest>` is handed to `fn` (e.g. the fleet's
   * `node:NAME`, another node's coverage of the same build). Prefixes are lower-case words.
   */
  registerSide(prefix: string, fn: SideResolver): void {
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(prefix)) throw new Error(`bad comparison prefix ${prefix}`);
    this.resolvers.set(prefix, fn);
  }

  /** Answers the request when the URL is this route; false otherwise. */
  handle(url: string, query: (k: string) => string, io: RouteIo): boolean {
    const m = ROUTE.exec(url);
    if (!m) return false;
    const id = m[1]!, spec = m[2]!;
    const format = query('format') || 'json';
    if (format !== 'json' && format !== 'lcov') return io.error(400, 'format must be json or lcov'), true;
    const a = TARGET_ID.test(id) ? this.hub.target(id) : undefined;
    if (!a) return io.error(404, `no target ${id.slice(0, 64)}`), true;
    const aLinesNow = targetLines(a);
    if (!aLinesNow) return io.error(409, `target ${a.id} has no source index yet (state ${a.state}${a.error ? ': ' + a.error : ''})`), true;

    let A: CompareSide, B: CompareSide;
    const at = AT.exec(spec);
    const colon = spec.indexOf(':');
    if (at) {
      const ms = Number(at[1]);
      A = { lines: targetLines(a, ms)!, label: { id: a.id, seq: a.seq, at: ms } };
      B = { lines: aLinesNow, label: { id: a.id, seq: a.seq } };
    } else if (TARGET_ID.test(spec)) {
      const b = this.hub.target(spec);
      if (!b) return io.error(404, `no target ${spec}`), true;
      const bLines = targetLines(b);
      if (!bLines) return io.error(409, `target ${b.id} has no source index yet (state ${b.state}${b.error ? ': ' + b.error : ''})`), true;
      A = { lines: aLinesNow, label: { id: a.id, seq: a.seq } };
      B = { lines: bLines, label: { id: b.id, seq: b.seq } };
    } else if (colon > 0) {
      const prefix = spec.slice(0, colon);
      const fn = this.resolvers.get(prefix);
      if (!fn) return io.error(400, `comparisons with '${prefix.slice(0, 32)}:' are not available in this daemon`), true;
      let rest: string;
      try {
        rest = decodeURIComponent(spec.slice(colon + 1));
      } catch {
        return io.error(400, 'the comparison is not valid percent-encoding'), true;
      }
      const r = fn(rest, a);
      if ('error' in r) return io.error(r.status, r.error), true;
      A = { lines: aLinesNow, label: { id: a.id, seq: a.seq } };
      B = r;
    } else {
      return io.error(400, 'compare with another target id, or @<ms since the epoch> for this target as it was then'), true;
    }

    const c = compareLines(A.lines, B.lines);
    if (format === 'json') return io.json(200, { a: A.label, b: B.label, ...c } satisfies CompareAnswer), true;
    io.send(200, [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Cache-Control', 'no-store'],
      ['Content-Disposition', `attachment; filename="${a.name.replace(/[^A-Za-z0-9._-]/g, '_')}-diff.info"`],
    ], Buffer.from(comparisonLcov(c, `${a.name}_diff`)));
    return true;
  }
}
