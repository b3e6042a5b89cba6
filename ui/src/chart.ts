/**
 * Coverage over time: covered PCs (left axis), exec/s (right axis) and total runs (legend) against
 * wall time, from the stored history, extended live; gaps where nothing ran, with the starts and
 * stops of fuzzing marked (chartSeries). uPlot draws to a canvas, so a long history stays cheap.
 * The host element carries data-gaps / data-starts / data-stops for tests.
 *
 * AFL++ targets: setOverlay() gives afl-fuzz's plot_data series (GET /api/targets/:id/afl/plot),
 * and a selector in the panel's head overlays one of them, one line per instance, on an axis of
 * its own at the right (exec/s shares the exec/s axis). The host element carries data-overlay
 * (the column shown) and, as `covdPlot`, the uPlot instance, whose data tests compare.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { HistorySample } from '../../src/contracts/hub.js';
import type { AflPlot } from '../../src/contracts/inputs.js';
import { compact, el, fullTime, int, tick } from './format.js';

/** The plot_data columns the selector offers: column, label, whether it shares the exec/s axis. */
export const OVERLAYS: [column: string, label: string, rate: boolean][] = [
  ['corpus_count', 'AFL++ corpus', false],
  ['saved_crashes', 'AFL++ crashes', false],
  ['saved_hangs', 'AFL++ hangs', false],
  ['edges_found', 'AFL++ edges', false],
  ['map_size', 'AFL++ map %', false],
  ['execs_per_sec', 'AFL++ exec/s', true],
];
const OVERLAY_COLORS = ['#7b1fa2', '#00838f', '#c62828', '#6d4c41', '#283593', '#558b2f'];

export class CoverageChart {
  readonly root: HTMLElement;
  private plot: uPlot | null = null;
  private readonly host: HTMLElement;
  private pending = false;
  /** destroy() was called: no frame, answer or resize draws again (a new uPlot would leak its window listeners). */
  private dead = false;
  private readonly resizer: ResizeObserver;
  private samples: HistorySample[] = [];
  private readonly empty: HTMLElement;
  private userZoomed = false;
  /** Called with the time (ms since the epoch) under a click on the plot (not a drag): the compare view's "as it was then". */
  onPickTime: ((ms: number) => void) | null = null;
  private overlay: AflPlot | null = null;
  private overlayKey = '';
  /** What the current uPlot was built for (series set): rebuilt when it changes. */
  private builtFor = '';
  private readonly select: HTMLSelectElement;

  constructor() {
    this.root = el('section', 'panel chart-panel');
    const head = el('div', 'panel-head');
    head.append(el('h2', '', 'Coverage over time'));
    const reset = el('button', 'link-button', 'Reset zoom');
    reset.type = 'button';
    reset.addEventListener('click', () => {
      this.userZoomed = false;
      this.redraw();
    });
    this.select = el('select', 'chart-overlay');
    this.select.title = 'Overlay an afl-fuzz plot_data series';
    this.select.append(new Option('AFL++ overlay: none', ''));
    for (const [col, label] of OVERLAYS) this.select.append(new Option(label, col));
    this.select.hidden = true;
    this.select.addEventListener('change', () => {
      this.overlayKey = this.select.value;
      this.redraw();
    });
    head.append(this.select, reset, el('span', 'muted hint', 'drag to zoom'));
    this.root.append(head);
    this.host = el('div', 'chart');
    this.empty = el('div', 'chart-empty muted', 'No history yet');
    this.host.append(this.empty);
    this.root.append(this.host);
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.host);
  }

  set(samples: HistorySample[]): void {
    this.samples = samples;
    this.schedule();
  }

  /** afl-fuzz's plot_data series for the overlay selector (null: not an AFL++ target). */
  setOverlay(plot: AflPlot | null): void {
    this.overlay = plot && plot.instances.some((i) => i.points > 0) ? plot : null;
    this.select.hidden = this.overlay === null;
    if (this.overlayKey || this.overlay === null) this.schedule();
  }

  /** The plot_data column overlaid, '' for none (./afl.ts AflPlotFeed polls only while there is one). */
  get overlayColumn(): string {
    return this.overlayKey;
  }

  /** Samples were appended to the array given to set(). Redraws at most once per frame. */
  changed(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.pending || this.dead) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      if (!this.dead) this.redraw();
    });
  }

  private data(): uPlot.AlignedData {
    const r = chartSeries(this.samples, Date.now());
    this.marks = r.marks;
    const d = this.host.dataset;
    d.gaps = String(r.gaps);
    d.starts = String(r.marks.filter((m) => m.kind === 'start').length);
    d.stops = String(r.marks.filter((m) => m.kind === 'stop').length);
    const base = [r.xs, r.cov, r.rate, r.runs];
    const lines = this.overlayLines();
    d.overlay = lines.length ? this.overlayKey : '';
    if (!lines.length) return base as unknown as uPlot.AlignedData;
    // One x axis for both: the union of the times; a series has no point (undefined, which
    // uPlot joins across, unlike null, a gap) where only the other has one.
    const xs = [...new Set([...r.xs, ...lines.flatMap((l) => l.t)])].sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    const spread = (t: number[], v: (number | null)[]) => {
      const out: (number | null | undefined)[] = new Array(xs.length).fill(undefined);
      t.forEach((x, i) => { out[at.get(x)!] = v[i]; });
      return out;
    };
    return [xs, ...base.slice(1).map((v) => spread(r.xs, v as (number | null)[])), ...lines.map((l) => spread(l.t, l.v))] as unknown as uPlot.AlignedData;
  }

  /** The selected plot_data column of every instance that has it. */
  private overlayLines(): { name: string; t: number[]; v: number[] }[] {
    if (!this.overlay || !this.overlayKey) return [];
    return this.overlay.instances.filter((i) => i.series[this.overlayKey]?.length).map((i) => ({ name: i.name, t: i.t, v: i.series[this.overlayKey]! }));
  }

  /** Starts and stops of fuzzing, drawn as dashed vertical lines over the plot. */
  private marks: Mark[] = [];
  private drawMarks(u: uPlot): void {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.font = `${11 * dpr}px ${getComputedStyle(document.body).fontFamily}`;
    ctx.textBaseline = 'top';
    for (const m of this.marks) {
      const x = Math.round(u.valToPos(m.t / 1000, 'x', true));
      if (x < left || x > left + width) continue;
      const color = m.kind === 'start' ? this.colors.start : this.colors.stop;
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.lineWidth = dpr;
      ctx.setLineDash([4 * dpr, 3 * dpr]);
      ctx.beginPath();
      ctx.moveTo(x + 0.5, top);
      ctx.lineTo(x + 0.5, top + height);
      ctx.stroke();
      const label = m.kind === 'start' ? '▶ start' : '■ stop';
      const w = ctx.measureText(label).width;
      // Labels sit inside the plot: a start's to the right of its line, a stop's to the left.
      // (stops one text line lower, so a stop and a start close together do not overlap).
      ctx.fillText(label, m.kind === 'start' ? Math.min(x + 3 * dpr, left + width - w) : Math.max(left, x - 3 * dpr - w), top + (m.kind === 'start' ? 2 : 16) * dpr);
    }
    ctx.restore();
  }
  private colors = { start: '#2e7d32', stop: '#5f6b7a' };

  private redraw(): void {
    if (this.dead) return;
    // A line needs two points; a single sample would leave uPlot without a time span.
    this.empty.hidden = this.samples.length > 1;
    if (this.samples.length < 2) {
      this.empty.textContent = this.samples.length ? 'Collecting history: the chart starts with the next sample' : 'No history yet';
      return;
    }
    const data = this.data();
    const lines = this.overlayLines();
    const builtFor = lines.length ? `${this.overlayKey}:${lines.map((l) => l.name).join('\0')}` : '';
    if (this.plot && builtFor !== this.builtFor) this.dropPlot();
    this.builtFor = builtFor;
    if (!this.plot) {
      const w = this.host.clientWidth || 600;
      const styles = getComputedStyle(document.documentElement);
      const covColor = styles.getPropertyValue('--chart-cov').trim() || '#2e7d32';
      const runColor = styles.getPropertyValue('--chart-runs').trim() || '#1565c0';
      const rateColor = styles.getPropertyValue('--chart-rate').trim() || '#a14a00';
      this.colors = { start: covColor, stop: styles.getPropertyValue('--fg-muted').trim() || '#5f6b7a' };
      const axis = styles.getPropertyValue('--fg-muted').trim() || '#555';
      const grid = styles.getPropertyValue('--grid').trim() || '#eee';
      const opts: uPlot.Options = {
        width: w,
        height: 240,
        scales: {
          x: { time: true },
          cov: { auto: true },
          runs: { auto: true },
          rate: { auto: true, range: (_u, lo, hi) => [0, Math.max(hi, lo + 1)] },
          afl: { auto: true, range: (_u, lo, hi) => [0, Math.max(hi, lo + 1)] },
        },
        series: [
          { label: 'Time', value: (_u, v) => (v == null ? '–' : fullTime(v * 1000)) },
          { label: 'Covered PCs', scale: 'cov', stroke: covColor, width: 2, fill: covColor + '22', value: (_u, v) => (v == null ? '–' : int(v)) },
          { label: 'Exec/s', scale: 'rate', stroke: rateColor, width: 1.5, value: (_u, v) => (v == null ? '–' : int(v)) },
          // Total runs: in the legend (click to show the line); exec/s has the right axis.
          { label: 'Runs', scale: 'runs', stroke: runColor, width: 1.5, dash: [6, 3], show: false, value: (_u, v) => (v == null ? '–' : int(v)) },
          ...this.overlaySeries(lines),
        ],
        axes: [
          { stroke: axis, grid: { stroke: grid }, space: 90, incrs: TIME_INCRS, values: (u, vs) => timeLabels(u, vs) },
          { scale: 'cov', stroke: covColor, grid: { stroke: grid }, size: 60, values: (_u, vs) => vs.map((v) => compact(v)) },
          { scale: 'rate', side: 1, stroke: rateColor, grid: { show: false }, size: 60, values: (_u, vs) => vs.map((v) => compact(v)) },
          ...(lines.length && !this.overlayOnRate() ? [{ scale: 'afl', side: 1, stroke: OVERLAY_COLORS[0], grid: { show: false }, size: 60, values: (_u: uPlot, vs: number[]) => vs.map((v) => compact(v)) }] : []),
        ],
        cursor: { drag: { x: true, y: false } },
        hooks: { setSelect: [() => { this.userZoomed = true; }], draw: [(u) => this.drawMarks(u)] },
        legend: { live: true },
      };
      this.plot = new uPlot(opts, data, this.host);
      this.watchClicks(this.plot);
      Object.defineProperty(this.host, 'covdPlot', { value: this.plot, configurable: true });
    } else {
      // Keep a user's zoom while new points arrive.
      this.plot.setData(data, !this.userZoomed);
    }
  }

  private overlayOnRate(): boolean {
    return OVERLAYS.find(([c]) => c === this.overlayKey)?.[2] ?? false;
  }

  private overlaySeries(lines: { name: string }[]): uPlot.Series[] {
    const label = OVERLAYS.find(([c]) => c === this.overlayKey)?.[1] ?? this.overlayKey;
    const scale = this.overlayOnRate() ? 'rate' : 'afl';
    return lines.map((l, i) => ({
      label: lines.length > 1 ? `${label} (${l.name})` : label, scale, stroke: OVERLAY_COLORS[i % OVERLAY_COLORS.length], width: 1.5,
      dash: [2, 2], spanGaps: true, value: (_u: uPlot, v: number | null) => (v == null ? '–' : this.overlayKey === 'map_size' ? `${v.toFixed(2)}%` : int(v)),
    }));
  }

  /** A click that did not drag (a drag zooms) picks the time under it. */
  private watchClicks(u: uPlot): void {
    let downX = NaN;
    u.over.addEventListener('mousedown', (ev) => { downX = ev.clientX; });
    u.over.addEventListener('click', (ev) => {
      if (!this.onPickTime || Math.abs(ev.clientX - downX) > 3) return;
      const x = ev.clientX - u.over.getBoundingClientRect().left;
      const t = u.posToVal(x, 'x');
      if (Number.isFinite(t)) this.onPickTime(t * 1000);
    });
    u.over.title = 'click: compare with this moment; drag: zoom';
  }

  private resize(): void {
    if (!this.plot || this.dead) return;
    const w = this.host.clientWidth;
    if (w > 0 && w !== this.plot.width) this.plot.setSize({ width: w, height: 240 });
  }

  /** The uPlot instance goes (its listeners with it); the next redraw builds another (a new series set). */
  private dropPlot(): void {
    this.plot?.destroy();
    this.plot = null;
  }

  /** For good: the page is left. Whatever arrives later draws nothing. */
  destroy(): void {
    this.dead = true;
    this.resizer.disconnect();
    this.dropPlot();
  }
}

interface Mark {
  t: number;
  kind: 'start' | 'stop';
}

/** An interval longer than this without a sample means nothing ran (samples come every few seconds while runs grow). */
const GAP_MS = 15_000;
/** Runs that did not grow for this long are a stop (shorter pauses, e.g. while a fuzzer loads its corpus, are not). */
const MIN_IDLE_MS = 5_000;

/**
 * The chart's series from the history samples: covered PCs, exec/s (runs between two samples over
 * their time apart) and total runs, with a break (null) wherever nothing ran, so a stopped period
 * shows as a gap rather than a flat line, and marks where fuzzing started and stopped.
 * Nothing ran between two samples when the runs did not grow for MIN_IDLE_MS or longer, when they
 * went down (a new fuzzer process starts counting again), or, for an interval over GAP_MS, when its exec/s is under a
 * quarter of its neighbours' (a fuzzer stopped, and another one started later).
 */
export function chartSeries(s: HistorySample[], now: number): { xs: number[]; cov: (number | null)[]; rate: (number | null)[]; runs: (number | null)[]; marks: Mark[]; gaps: number } {
  const n = s.length;
  const rateOf = (i: number) => (i > 0 && i < n && s[i]!.t > s[i - 1]!.t ? ((s[i]!.nRuns - s[i - 1]!.nRuns) * 1000) / (s[i]!.t - s[i - 1]!.t) : 0);
  /** idle[i]: nothing ran between samples i - 1 and i. */
  const idle: boolean[] = [false];
  for (let i = 1; i < n; i++) {
    const d = s[i]!.nRuns - s[i - 1]!.nRuns;
    const dt = s[i]!.t - s[i - 1]!.t;
    idle.push(d < 0 || (d === 0 && dt >= MIN_IDLE_MS) || (dt > GAP_MS && rateOf(i) < 0.25 * Math.max(rateOf(i - 1), rateOf(i + 1))));
  }
  const xs: number[] = [], cov: (number | null)[] = [], rate: (number | null)[] = [], runs: (number | null)[] = [];
  const marks: Mark[] = [];
  const push = (t: number, c: number | null, r: number | null, u: number | null) => {
    xs.push(t / 1000);
    cov.push(c);
    rate.push(r);
    runs.push(u);
  };
  let gaps = 0;
  let running = false;
  const stopped = n > 0 && now - s[n - 1]!.t > GAP_MS;
  for (let i = 0; i < n; i++) {
    const before = i === 0 || idle[i]!;
    // The last sample: whether anything runs after it is not known yet, unless it is old.
    const after = i === n - 1 ? stopped || idle[i]! : idle[i + 1]!;
    if (i > 0 && idle[i]) {
      // A null between the two samples breaks every line there.
      push((s[i - 1]!.t + s[i]!.t) / 2, null, null, null);
      // Counted once per stretch of idle intervals.
      if (i === 1 || !idle[i - 1]) gaps++;
    }
    // A sample with nothing run on either side shows nothing.
    const alone = before && after;
    const x = s[i]!;
    push(x.t, alone ? null : x.covered, !alone && !before ? Math.max(0, Math.round(rateOf(i))) : null, alone ? null : x.nRuns);
    if (alone) continue;
    if (!running) {
      marks.push({ t: x.t, kind: 'start' });
      running = true;
    }
    if (after) {
      marks.push({ t: x.t, kind: 'stop' });
      running = false;
    }
  }
  if (stopped) {
    // The time since the last sample, empty: the chart reaches now.
    push(now, null, null, null);
    if (n < 2 || !idle[n - 1]) gaps++;
  }
  return { xs, cov, rate, runs, marks, gaps };
}

/** Tick steps in seconds: whole seconds and up, so labels never repeat. */
const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 30 * 86400];

/** Wall-clock tick labels in the page's one time format (format.ts): seconds for short spans, minutes for longer ones, dates for days. */
function timeLabels(u: uPlot, vs: number[]): string[] {
  const xs = u.data[0];
  const span = xs.length > 1 ? (xs[xs.length - 1]! - xs[0]!) * 1000 : 0;
  return vs.map((v) => tick(v * 1000, span));
}
