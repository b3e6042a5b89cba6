/**
 * AFL++ figures in the page: a one-line summary for the dashboard row, and a panel for the target
 * page with the campaign's totals and one row per afl-fuzz instance (TargetInfo.afl, from the
 * instances' fuzzer_stats and plot_data; src/afl/watcher.ts). Shown only for AFL++ targets.
 */
import type { AflInstance, AflStats, TargetInfo } from '../../src/contracts/hub.js';
import type { AflPlot } from '../../src/contracts/inputs.js';
import { authQuery } from './api.js';
import { ago, el, int, setText, when } from './format.js';

const secondsAgo = (s: number) => (s > 0 ? ago(s * 1000) : 'never');
const percent = (p: number) => `${p.toFixed(2)}%`;

/** "AFL++ · 2 instances, 1 running · 48,432 exec/s · corpus 158 · 0 crashes · 0 hangs", or '' for other engines. */
export function aflSummary(t: TargetInfo): string {
  if (t.engine !== 'afl') return '';
  const a = t.afl;
  if (!a) return 'AFL++ · no afl-fuzz output found yet';
  const n = a.instances.length;
  const live = a.instances.filter((i) => i.alive).length;
  return [
    'AFL++',
    `${n} instance${n === 1 ? '' : 's'}, ${live} running`,
    `${int(a.execs_per_sec)} exec/s`,
    `corpus ${int(a.corpus_count)}`,
    `${int(a.saved_crashes)} crash${a.saved_crashes === 1 ? '' : 'es'}`,
    `${int(a.saved_hangs)} hang${a.saved_hangs === 1 ? '' : 's'}`,
  ].join(' · ');
}

const COLUMNS: [label: string, cls: string, cell: (i: AflInstance) => string][] = [
  ['Instance', '', (i) => i.name],
  ['State', '', (i) => (i.alive ? 'running' : 'stopped')],
  ['Exec/s', 'num', (i) => int(i.execs_per_sec)],
  ['Execs', 'num', (i) => int(i.execs_done)],
  ['Corpus', 'num', (i) => int(i.corpus_count)],
  ['Found', 'num', (i) => int(i.corpus_found)],
  ['Crashes', 'num', (i) => int(i.saved_crashes)],
  ['Hangs', 'num', (i) => int(i.saved_hangs)],
  ['Stability', 'num', (i) => percent(i.stability)],
  ['Map', 'num', (i) => percent(i.bitmap_cvg)],
  ['Edges', 'num', (i) => int(i.edges_found)],
  ['Cycles', 'num', (i) => int(i.cycles_done)],
  ['Last find', '', (i) => secondsAgo(i.last_find)],
];

/** The target page's AFL++ section: totals as cards, instances as a table. */
export class AflPanel {
  readonly root: HTMLElement;
  private readonly cards = new Map<string, { value: HTMLElement; sub: HTMLElement }>();
  private readonly body: HTMLTableSectionElement;
  private readonly dir: HTMLElement;

  constructor() {
    this.root = el('section', 'afl');
    this.root.hidden = true;
    const head = el('div', 'afl-head');
    head.append(el('h2', '', 'AFL++'));
    this.dir = el('span', 'muted mono');
    head.append(this.dir);
    this.root.append(head);
    const cards = el('div', 'cards');
    for (const [key, label] of [
      ['speed', 'Exec/s'], ['execs', 'Executions'], ['corpus', 'Corpus'], ['crashes', 'Crashes'], ['hangs', 'Hangs'],
      ['stability', 'Stability'], ['cycles', 'Cycles done'], ['find', 'Last find'],
    ] as const) {
      const c = el('div', 'card');
      c.dataset.afl = key;
      const value = el('div', 'card-value num');
      const sub = el('div', 'card-sub muted');
      c.append(el('div', 'card-label', label), value, sub);
      cards.append(c);
      this.cards.set(key, { value, sub });
    }
    this.root.append(cards);
    const panel = el('div', 'panel afl-instances');
    const table = el('table', 'targets');
    const hr = el('tr');
    for (const [label, cls] of COLUMNS) hr.append(el('th', cls, label));
    const thead = el('thead');
    thead.append(hr);
    this.body = el('tbody');
    table.append(thead, this.body);
    panel.append(table);
    this.root.append(panel);
  }

  update(t: TargetInfo): void {
    this.root.hidden = t.engine !== 'afl';
    if (this.root.hidden) return;
    const a: AflStats | undefined = t.afl;
    setText(this.dir, a ? a.dir : 'no afl-fuzz output found yet (covd add --afl-out DIR names it)');
    const set = (k: string, v: string, sub = '') => {
      const c = this.cards.get(k)!;
      setText(c.value, v);
      setText(c.sub, sub);
    };
    const live = a ? a.instances.filter((i) => i.alive).length : 0;
    set('speed', a ? int(a.execs_per_sec) : '–', a ? `${live} of ${a.instances.length} instances running` : '');
    set('execs', a ? int(a.execs_done) : '–');
    set('corpus', a ? int(a.corpus_count) : '–', a ? `${int(a.corpus_found)} found by afl-fuzz` : '');
    set('crashes', a ? int(a.saved_crashes) : '–');
    set('hangs', a ? int(a.saved_hangs) : '–');
    set('stability', a && a.instances.length ? percent(a.stability) : '–', 'lowest of the instances');
    set('cycles', a ? int(a.cycles_done) : '–', 'by every instance');
    set('find', a ? secondsAgo(a.last_find) : '–', a && a.last_find ? when(a.last_find * 1000) : '');
    const rows = a?.instances ?? [];
    while (this.body.rows.length > rows.length) this.body.deleteRow(-1);
    rows.forEach((inst, r) => {
      const tr = this.body.rows[r] ?? this.body.insertRow();
      tr.dataset.instance = inst.name;
      COLUMNS.forEach(([, cls, cell], c) => {
        const td = tr.cells[c] ?? tr.insertCell();
        if (td.className !== cls) td.className = cls;
        setText(td, cell(inst));
      });
    });
  }
}

/**
 * afl-fuzz's plot_data series for the chart's overlay (GET /api/targets/:id/afl/plot): fetched
 * when the target page opens, every 10 s until it has points to offer (afl-fuzz 4.x adds rows only
 * after its first minute), then only while `wanted()` (the chart overlays a column): at once when
 * it becomes true, every 10 s while it stays so (afl-fuzz adds a row every few seconds).
 */
export class AflPlotFeed {
  private last = 0;
  private busy = false;
  /** A plot with points arrived: the selector can offer it. */
  private offered = false;
  private wasWanted = false;

  constructor(private readonly id: string, private readonly onPlot: (p: AflPlot | null) => void, private readonly wanted: () => boolean = () => true, private readonly everyMs = 10_000) {}

  /** Called with the target's info (every second by the page's tick): fetches when due. */
  update(t: TargetInfo): void {
    if (t.engine !== 'afl' || !t.afl || this.busy) return;
    const wanted = this.wanted();
    const turnedOn = wanted && !this.wasWanted;
    this.wasWanted = wanted;
    if (this.offered && !wanted) return;
    if (!turnedOn && Date.now() - this.last < this.everyMs) return;
    this.busy = true;
    this.last = Date.now();
    void fetch(`/api/targets/${encodeURIComponent(this.id)}/afl/plot${authQuery()}`, { credentials: 'same-origin' })
      .then(async (r) => (r.ok ? ((await r.json()) as AflPlot) : null))
      .then((p) => {
        if (p?.instances.some((i) => i.points > 0)) this.offered = true;
        this.onPlot(p);
      }, () => {})
      .finally(() => { this.busy = false; });
  }
}
