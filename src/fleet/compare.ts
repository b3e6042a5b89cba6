/**
 * The fleet's kinds of comparison side (GET /api/targets/:id/compare/:b, src/web/compare-routes.ts):
 *   node:NAME    the lines node NAME has covered (so A = the union, B = that node: onlyA is what
 *                the others found that it did not);
 *   first:NAME   the lines of the PCs node NAME saw before any other node (which node found what, first).
 */
import type { TargetDetail } from '../contracts/hub.js';
import { isSeen } from '../contracts/seen.js';
import { coveredLines } from '../web/compare.js';
import type { SideResolver } from '../web/compare-routes.js';
import type { FleetView } from './view.js';
import type { FleetTarget, NodeShare } from './merge.js';
import { NAME_RE } from './config.js';

export function fleetCompareSides(view: FleetView): Record<string, SideResolver> {
  type Found = { ft: FleetTarget; n: NodeShare } | { status: number; error: string };
  const share = (name: string, a: TargetDetail): Found => {
    if (!NAME_RE.test(name)) return { status: 400, error: 'a node name is 1 to 64 characters of A-Z a-z 0-9 _ -' };
    const ft = view.targets.get(a.id)?.ft;
    const n = ft?.nodes.get(name);
    if (!ft || !n) return { status: 404, error: `node ${name} has no coverage of target ${a.id}` };
    return { ft, n };
  };
  return {
    node(name, a) {
      const s = share(name, a);
      if ('status' in s) return s;
      return { lines: coveredLines(a.index!, a.stats.pcsLen, (pc) => isSeen(s.n.bits, pc)), label: { node: name } };
    },
    first(name, a) {
      const s = share(name, a);
      if ('status' in s) return s;
      const ix = s.n.ix, first = s.ft.firstNode;
      return { lines: coveredLines(a.index!, a.stats.pcsLen, (pc) => first[pc] === ix), label: { firstSeenBy: name } };
    },
  };
}
