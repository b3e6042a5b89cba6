/** The dashboard: one row per target, updated in place as stats arrive. */
import type { TargetInfo } from '../../src/contracts/hub.js';
import type { App, TrendPoint, View } from './app.js';
import { ago, el, fullTime, int, pct, setText } from './format.js';
import { targetHref } from './router.js';
import { aflSummary } from './afl.js';
import { fleetSummary } from './fleet.js';

interface Row {
  tr: HTMLTableRowElement;
  name: HTMLAnchorElement;
  exe: HTMLElement;
  error: HTMLElement;
  /** AFL++ targets: the campaign in one line (./afl.ts). */
  afl: HTMLElement;
  /** Fleet targets: nodes and this daemon's share in one line (./fleet.ts). */
  fleet: HTMLElement;
  state: HTMLElement;
  activity: HTMLElement;
  fill: HTMLElement;
  pct: HTMLElement;
  count: HTMLElement;
  runs: HTMLElement;
  unique: HTMLElement;
  speed: HTMLElement;
  last: HTMLElement;
  trend: SVGPolylineElement;
}

const SVG = 'http://www.w3.org/2000/svg';

export class Dashboard implements View {
  readonly root: HTMLElement;
  private readonly body: HTMLTableSectionElement;
  private readonly rows = new Map<string, Row>();
  private readonly empty: HTMLElement;
  private readonly summary: HTMLElement;

  constructor(private readonly app: App) {
    this.root = el('main', 'page dashboard');
    const head = el('div', 'page-head');
    head.append(el('h1', '', 'Fuzz targets'));
    this.summary = el('span', 'muted');
    head.append(this.summary);
    this.root.append(head);
    const panel = el('section', 'panel');
    const table = el('table', 'targets');
    const thead = el('thead');
    const hr = el('tr');
    for (const [label, cls] of [
      ['Target', 'c-target'], ['State', 'c-state'], ['Coverage', 'c-coverage'], ['Runs', 'num c-runs'], ['Unique runs', 'num c-unique'],
      ['Runs/s', 'num c-speed'], ['Last new coverage', 'c-last'], ['Trend', 'c-trend'],
    ] as const) hr.append(el('th', cls, label));
    thead.append(hr);
    this.body = el('tbody');
    table.append(thead, this.body);
    panel.append(table);
    this.empty = el('p', 'empty muted', 'Waiting for the daemon…');
    panel.append(this.empty);
    this.root.append(panel);
    this.onTargets();
  }

  onTargets(): void {
    const targets = [...this.app.targets.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    const ids = new Set(targets.map((t) => t.id));
    for (const [id, r] of this.rows) if (!ids.has(id)) { r.tr.remove(); this.rows.delete(id); }
    let prev: HTMLTableRowElement | null = null;
    for (const t of targets) {
      let r = this.rows.get(t.id);
      if (!r) {
        r = this.makeRow(t);
        this.rows.set(t.id, r);
      }
      // Keep DOM order = sorted order without re-inserting rows that are already in place.
      const want: ChildNode | null = prev ? prev.nextSibling : this.body.firstChild;
      if (want !== r.tr) this.body.insertBefore(r.tr, want);
      prev = r.tr;
      this.fill(r, t);
    }
    this.empty.hidden = targets.length > 0;
    setText(this.empty, this.app.targetsLoaded
      ? 'No targets yet. Run a fuzzer built with `covd cc` (or point covd at its coverage directory) and it appears here.'
      : 'Waiting for the daemon…');
    const live = targets.filter((t) => t.state === 'ready').length;
    setText(this.summary, targets.length ? `${targets.length} target${targets.length === 1 ? '' : 's'}, ${live} ready` : '');
  }

  destroy(): void {}

  tick(): void {
    for (const [id, r] of this.rows) {
      const t = this.app.targets.get(id);
      if (t) setText(r.last, ago(t.stats.lastNewAt));
    }
  }

  private makeRow(t: TargetInfo): Row {
    const tr = el('tr');
    tr.dataset.id = t.id;
    const c1 = el('td', 'c-target');
    const name = el('a', 'target-name');
    name.href = targetHref(t.id);
    const exe = el('div', 'exe muted mono');
    const error = el('div', 'error-text');
    const afl = el('div', 'afl-line muted');
    const fleet = el('div', 'fleet-line');
    c1.append(name, exe, afl, fleet, error);
    const state = el('span', 'state');
    const activity = el('span', 'activity');
    const c2 = el('td', 'c-state');
    c2.append(state, activity);
    const c3 = el('td', 'c-coverage');
    const bar = el('span', 'bar');
    const fill = el('span', 'bar-fill');
    bar.append(fill);
    const p = el('span', 'num pct');
    const count = el('span', 'num muted count');
    c3.append(bar, p, count);
    const runs = el('td', 'num runs c-runs'), unique = el('td', 'num unique c-unique'), speed = el('td', 'num speed c-speed'), last = el('td', 'c-last');
    const c8 = el('td', 'c-trend');
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 100 24');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('aria-label', 'coverage trend');
    const line = document.createElementNS(SVG, 'polyline');
    svg.append(line);
    c8.append(svg);
    tr.append(c1, c2, c3, runs, unique, speed, last, c8);
    return { tr, name, exe, error, afl, fleet, state, activity, fill, pct: p, count, runs, unique, speed, last, trend: line };
  }

  private fill(r: Row, t: TargetInfo): void {
    const s = t.stats;
    setText(r.name, t.name);
    r.name.title = `target ${t.id}`;
    // The end of the path (the executable's name) matters most: overflow is cut on the left.
    setText(r.exe, '\u200e' + t.exe + '\u200e');
    r.exe.title = t.exe;
    setText(r.error, t.state === 'failed' ? t.error ?? 'failed' : '');
    r.error.hidden = t.state !== 'failed';
    setText(r.afl, aflSummary(t));
    r.afl.title = r.afl.textContent ?? '';
    r.afl.hidden = r.afl.textContent === '';
    setText(r.fleet, fleetSummary(t));
    r.fleet.hidden = r.fleet.textContent === '';
    r.tr.classList.toggle('fleet-target', !!t.fleet);
    setText(r.state, t.state);
    r.state.className = `state state-${t.state}`;
    // Whether anyone fuzzes it, beside the symbolization state; a retired target is history.
    setText(r.activity, t.state === 'retired' ? '' : t.activity);
    r.activity.className = `activity activity-${t.activity}`;
    r.activity.title = t.activity === 'stopped' && t.stoppedAt ? `no fuzzer since ${fullTime(t.stoppedAt)}` : t.activity === 'idle' ? 'the fuzzer is alive but makes no runs' : '';
    const w = s.pcsLen ? `${(100 * s.covered) / s.pcsLen}%` : '0%';
    if (r.fill.style.width !== w) r.fill.style.width = w;
    setText(r.pct, pct(s.covered, s.pcsLen));
    setText(r.count, `${int(s.covered)} / ${int(s.pcsLen)}`);
    setText(r.runs, int(s.nRuns));
    setText(r.unique, int(s.uniqueRuns));
    setText(r.speed, int(s.runsPerSec));
    setText(r.last, ago(s.lastNewAt));
    r.last.title = s.lastNewAt ? fullTime(s.lastNewAt) : '';
    const pts = this.app.trends.get(t.id) ?? [];
    r.trend.setAttribute('points', sparkPoints(pts, s.pcsLen));
  }
}

function sparkPoints(pts: TrendPoint[], total: number): string {
  if (pts.length === 0) return '';
  const t0 = pts[0]!.t, t1 = pts[pts.length - 1]!.t;
  const lo = Math.min(...pts.map((p) => p.covered));
  const hi = Math.max(...pts.map((p) => p.covered), lo + 1);
  void total;
  const xs = (t: number) => (t1 > t0 ? ((t - t0) / (t1 - t0)) * 100 : 100);
  const ys = (c: number) => 22 - ((c - lo) / (hi - lo)) * 20;
  const out = pts.map((p) => `${xs(p.t).toFixed(1)},${ys(p.covered).toFixed(1)}`);
  if (pts.length === 1) out.unshift(`0,${ys(pts[0]!.covered).toFixed(1)}`);
  return out.join(' ');
}
