/**
 * Fleet figures in the page (`covd serve --nats`; src/fleet): a one-line summary for the dashboard
 * row, and a panel for the target page with one row per node: what it covered, how many of those
 * PCs it found before any other node, its runs and speed, whether it is online. The panel reads
 * GET /api/targets/:id `nodes` (the list and the WebSocket carry only the summary, TargetInfo.fleet).
 */
import type { TargetInfo, TargetNode } from '../../src/contracts/hub.js';
import { authQuery } from './api.js';
import { ago, el, int, pct, setText } from './format.js';
import './fleet.css';

/** "fleet · 3 nodes, 2 online · 120 PCs here" / "fleet · fuzzed on 2 other nodes", or '' outside a fleet. */
export function fleetSummary(t: TargetInfo): string {
  const f = t.fleet;
  if (!f || f.nodes === 0) return '';
  if (f.remote) return `fleet · fuzzed on ${f.nodes} other node${f.nodes === 1 ? '' : 's'}, ${f.online} online`;
  const others = f.nodes - (f.own.covered > 0 ? 1 : 0);
  return `fleet · ${f.nodes} node${f.nodes === 1 ? '' : 's'}, ${f.online} online · ${int(f.own.covered)} PCs found here${others > 0 ? '' : ', no other node yet'}`;
}

const COLUMNS: [label: string, cls: string, cell: (n: TargetNode, total: number) => string][] = [
  ['Node', '', (n) => (n.self ? `${n.name} (this daemon)` : n.name)],
  ['State', '', (n) => (n.self ? 'self' : n.online ? 'online' : 'offline')],
  ['Covered', 'num', (n, total) => `${int(n.covered)} (${pct(n.covered, total)})`],
  ['Found first', 'num', (n) => int(n.first)],
  ['Runs', 'num', (n) => int(n.nRuns)],
  ['Unique runs', 'num', (n) => int(n.uniqueRuns)],
  ['Runs/s', 'num', (n) => int(n.runsPerSec)],
  ['Last heard', '', (n) => (n.self ? 'now' : ago(n.lastSeenAt))],
];

/** The target page's fleet section, shown only for fleet targets; refreshed every few seconds. */
export class FleetPanel {
  readonly root: HTMLElement;
  private readonly body: HTMLTableSectionElement;
  private readonly line: HTMLElement;
  private last = 0;
  private busy = false;
  private shown = '';

  constructor(private readonly id: string) {
    this.root = el('section', 'fleet panel');
    this.root.hidden = true;
    const head = el('div', 'panel-head');
    head.append(el('h2', '', 'Nodes'));
    this.line = el('span', 'muted');
    head.append(this.line);
    this.root.append(head);
    const table = el('table', 'targets fleet-nodes');
    const hr = el('tr');
    for (const [label, cls] of COLUMNS) hr.append(el('th', cls, label));
    const thead = el('thead');
    thead.append(hr);
    this.body = el('tbody');
    table.append(thead, this.body);
    this.root.append(table);
  }

  /** Shows or hides the panel for the target as the dashboard knows it; fetches the breakdown at most every 2 s. */
  update(info: TargetInfo, force = false): void {
    const f = info.fleet;
    this.root.hidden = !f || f.nodes === 0;
    if (this.root.hidden) return;
    setText(this.line, f!.remote
      ? 'No fuzzer of this daemon runs this build: everything here comes from the nodes below. Source files are not served for it.'
      : 'Coverage, runs and speed above are the union of these nodes.');
    if (this.busy || (!force && Date.now() - this.last < 2000)) return;
    this.busy = true;
    this.last = Date.now();
    void fetch(`/api/targets/${encodeURIComponent(this.id)}${authQuery()}`, { credentials: 'same-origin' })
      .then((r) => (r.ok ? (r.json() as Promise<{ nodes?: TargetNode[]; stats: { pcsLen: number } }>) : null))
      .then((d) => { if (d?.nodes) this.render(d.nodes, d.stats.pcsLen); })
      .catch(() => {})
      .finally(() => { this.busy = false; });
  }

  private render(nodes: TargetNode[], total: number): void {
    const rows = nodes.map((n) => COLUMNS.map(([, , cell]) => cell(n, total)));
    const key = JSON.stringify(rows);
    if (key === this.shown) return;
    this.shown = key;
    this.body.replaceChildren(...nodes.map((n, i) => {
      const tr = el('tr', n.self ? 'fleet-self' : n.online ? '' : 'fleet-offline');
      rows[i]!.forEach((text, c) => tr.append(el('td', COLUMNS[c]![1], text)));
      return tr;
    }));
  }
}
