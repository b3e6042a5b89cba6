/**
 * Coverage over time: covered PCs (left axis) and total runs (right axis) against wall time,
 * from the stored history, extended live. uPlot draws to a canvas, so a long history stays cheap.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { HistorySample } from '../../src/contracts/hub.js';
import { compact, el, int } from './format.js';

export class CoverageChart {
  readonly root: HTMLElement;
  private plot: uPlot | null = null;
  private readonly host: HTMLElement;
  private pending = false;
  private samples: HistorySample[] = [];
  private readonly empty: HTMLElement;
  private userZoomed = false;

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
    head.append(reset, el('span', 'muted hint', 'drag to zoom'));
    this.root.append(head);
    this.host = el('div', 'chart');
    this.empty = el('div', 'chart-empty muted', 'No history yet');
    this.host.append(this.empty);
    this.root.append(this.host);
    new ResizeObserver(() => this.resize()).observe(this.host);
  }

  set(samples: HistorySample[]): void {
    this.samples = samples;
    this.schedule();
  }

  /** Samples were appended to the array given to set(). Redraws at most once per frame. */
  changed(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.redraw();
    });
  }

  private data(): uPlot.AlignedData {
    const s = this.samples;
    const xs = new Float64Array(s.length), cov = new Float64Array(s.length), runs = new Float64Array(s.length);
    for (let i = 0; i < s.length; i++) {
      xs[i] = s[i]!.t / 1000;
      cov[i] = s[i]!.covered;
      runs[i] = s[i]!.nRuns;
    }
    return [xs, cov, runs] as unknown as uPlot.AlignedData;
  }

  private redraw(): void {
    // A line needs two points; a single sample would leave uPlot without a time span.
    this.empty.hidden = this.samples.length > 1;
    if (this.samples.length < 2) {
      this.empty.textContent = this.samples.length ? 'Collecting history: the chart starts with the next sample' : 'No history yet';
      return;
    }
    const data = this.data();
    if (!this.plot) {
      const w = this.host.clientWidth || 600;
      const styles = getComputedStyle(document.documentElement);
      const covColor = styles.getPropertyValue('--chart-cov').trim() || '#2e7d32';
      const runColor = styles.getPropertyValue('--chart-runs').trim() || '#1565c0';
      const axis = styles.getPropertyValue('--fg-muted').trim() || '#555';
      const grid = styles.getPropertyValue('--grid').trim() || '#eee';
      const opts: uPlot.Options = {
        width: w,
        height: 240,
        scales: {
          x: { time: true },
          cov: { auto: true },
          runs: { auto: true },
        },
        series: [
          {},
          { label: 'Covered PCs', scale: 'cov', stroke: covColor, width: 2, fill: covColor + '22', value: (_u, v) => (v == null ? '–' : int(v)) },
          { label: 'Runs', scale: 'runs', stroke: runColor, width: 1.5, dash: [6, 3], value: (_u, v) => (v == null ? '–' : int(v)) },
        ],
        axes: [
          { stroke: axis, grid: { stroke: grid }, space: 90, incrs: TIME_INCRS, values: (u, vs) => timeLabels(u, vs) },
          { scale: 'cov', stroke: covColor, grid: { stroke: grid }, size: 60, values: (_u, vs) => vs.map((v) => compact(v)) },
          { scale: 'runs', side: 1, stroke: runColor, grid: { show: false }, size: 60, values: (_u, vs) => vs.map((v) => compact(v)) },
        ],
        cursor: { drag: { x: true, y: false } },
        hooks: { setSelect: [() => { this.userZoomed = true; }] },
        legend: { live: true },
      };
      this.plot = new uPlot(opts, data, this.host);
    } else {
      // Keep a user's zoom while new points arrive.
      this.plot.setData(data, !this.userZoomed);
    }
  }

  private resize(): void {
    if (!this.plot) return;
    const w = this.host.clientWidth;
    if (w > 0 && w !== this.plot.width) this.plot.setSize({ width: w, height: 240 });
  }

  destroy(): void {
    this.plot?.destroy();
    this.plot = null;
  }
}

/** Tick steps in seconds: whole seconds and up, so labels never repeat. */
const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 30 * 86400];

/** Wall-clock tick labels: seconds for short runs, minutes for longer ones, dates for days. */
function timeLabels(u: uPlot, vs: number[]): string[] {
  const xs = u.data[0];
  const span = xs.length > 1 ? xs[xs.length - 1]! - xs[0]! : 0;
  const two = (n: number) => String(n).padStart(2, '0');
  return vs.map((v) => {
    const d = new Date(v * 1000);
    const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
    if (span < 3600) return `${hm}:${two(d.getSeconds())}`;
    if (span < 2 * 86400) return hm;
    return `${d.getMonth() + 1}/${d.getDate()} ${hm}`;
  });
}
