/** The target view: the seed's stats, coverage over time, the file tree and the function list. */
import type { App, View } from './app.js';
import type { TargetModel } from './model.js';
import { CoverageChart } from './chart.js';
import { FileTree } from './tree.js';
import { FunctionList } from './functions.js';
import { ago, el, hex, int, pct, setText, when } from './format.js';
import { AflPanel, AflPlotFeed } from './afl.js';
import { FleetPanel } from './fleet.js';
import { CrashesPanel, InputsTimeline } from './inputs.js';
import { BlockersPanel } from './blockers.js';
import { ComparePanel } from './compare.js';
import { parseRoute } from './router.js';
import { bytesText, CorpusFeed } from './corpus.js';

interface Stat {
  value: HTMLElement;
  sub: HTMLElement;
}

export class TargetView implements View {
  readonly root: HTMLElement;
  private readonly stats = new Map<string, Stat>();
  private readonly chart = new CoverageChart();
  private readonly tree: FileTree;
  private readonly fns: FunctionList;
  private readonly title: HTMLElement;
  private readonly stateBadge: HTMLElement;
  private readonly meta: HTMLElement;
  private readonly notice: HTMLElement;
  /** AFL++ targets: afl-fuzz's totals and instances (./afl.ts). */
  private readonly afl = new AflPanel();
  /** AFL++ targets: plot_data series for the chart's overlay. */
  private readonly aflPlot: AflPlotFeed;
  /** Fleet targets: every node's share (./fleet.ts). */
  private readonly fleet: FleetPanel;
  /** Crashes and the inputs that found new coverage (./inputs.ts). */
  private readonly crashes: CrashesPanel;
  private readonly timeline: InputsTimeline;
  /** Where coverage stops (./blockers.ts), and comparisons (./compare.ts). */
  private readonly blockers: BlockersPanel;
  private readonly compare: ComparePanel;
  /** libFuzzer targets: the corpus directories' files and bytes (./corpus.ts). */
  private readonly corpus: CorpusFeed;

  constructor(private readonly app: App, private readonly model: TargetModel) {
    this.root = el('main', 'page target-page');
    const head = el('div', 'page-head');
    this.title = el('h1');
    this.stateBadge = el('span', 'state');
    head.append(this.title, this.stateBadge);
    this.root.append(head);
    this.meta = el('div', 'meta muted mono');
    this.root.append(this.meta);
    this.notice = el('div', 'notice');
    this.root.append(this.notice);

    const cards = el('section', 'cards');
    const card = (key: string, label: string) => {
      const c = el('div', 'card');
      c.dataset.stat = key;
      const value = el('div', 'card-value num');
      const sub = el('div', 'card-sub muted');
      c.append(el('div', 'card-label', label), value, sub);
      cards.append(c);
      this.stats.set(key, { value, sub });
    };
    card('coverage', 'Coverage');
    card('runs', 'Total runs');
    card('unique', 'Unique runs');
    card('speed', 'Speed');
    card('lowest', 'Lowest stack');
    card('last', 'Last new coverage');
    card('corpus', 'Corpus');
    // Shown once the daemon has counted a libFuzzer corpus.
    this.stats.get('corpus')!.value.parentElement!.hidden = true;
    this.root.append(cards);
    this.root.append(this.afl.root);
    this.fleet = new FleetPanel(model.info.id);
    this.root.append(this.fleet.root);
    this.root.append(this.chart.root);
    this.blockers = new BlockersPanel(model);
    const route = parseRoute(location.hash);
    this.compare = new ComparePanel(app, model, route.view === 'target' ? route.compare : undefined);
    this.chart.onPickTime = (ms) => this.compare.pickTime(ms);
    this.root.append(this.blockers.root, this.compare.root);
    const grid = el('div', 'split');
    this.tree = new FileTree(model);
    this.fns = new FunctionList(model);
    grid.append(this.tree.root, this.fns.root);
    this.root.append(grid);
    this.crashes = new CrashesPanel(model);
    this.timeline = new InputsTimeline(model);
    this.root.append(this.crashes.root, this.timeline.root);
    this.chart.set(model.history);
    this.aflPlot = new AflPlotFeed(model.info.id, (p) => this.chart.setOverlay(p), () => this.chart.overlayColumn !== '');
    this.corpus = new CorpusFeed(model.info.id, (c) => {
      const st = this.stats.get('corpus')!;
      st.value.parentElement!.hidden = !c || c.dirs.length === 0;
      if (!c) return;
      setText(st.value, int(c.files));
      setText(st.sub, `${c.bytes === null ? '' : bytesText(c.bytes) + ' in '}${c.dirs.length === 1 ? '1 directory' : `${c.dirs.length} directories`}`);
      st.value.parentElement!.title = c.dirs.map((d) => `${d.path}: ${d.error ?? `${d.files} files`}`).join('\n');
    });
    this.onTargets();
  }

  onTargets(): void {
    const m = this.model;
    const info = this.app.targets.get(m.info.id) ?? m.info;
    const s = info.stats;
    setText(this.title, info.name);
    setText(this.stateBadge, info.state);
    this.stateBadge.className = `state state-${info.state}`;
    setText(this.meta, [info.exe, `target ${info.id}`, info.buildId ? 'build ' + info.buildId : ''].filter(Boolean).join(' · '));
    const set = (k: string, v: string, sub = '') => {
      const st = this.stats.get(k)!;
      setText(st.value, v);
      setText(st.sub, sub);
    };
    set('coverage', pct(s.covered, s.pcsLen), `${int(s.covered)} of ${int(s.pcsLen)} PCs`);
    set('runs', int(s.nRuns));
    set('unique', int(s.uniqueRuns), s.nRuns ? `${((100 * s.uniqueRuns) / s.nRuns).toFixed(2)}% of runs` : '');
    set('speed', int(s.runsPerSec), info.activity === 'stopped' ? (info.stoppedAt ? `stopped ${ago(info.stoppedAt)}` : 'no fuzzer running') : info.activity === 'idle' ? 'idle: the fuzzer makes no runs' : 'runs per second');
    set('lowest', s.lowestStack == null ? '–' : hex(s.lowestStack), s.lowestStack == null ? 'not tracked' : '');
    set('last', ago(s.lastNewAt), s.lastNewAt ? when(s.lastNewAt) : '');
    this.afl.update(info);
    this.aflPlot.update(info);
    this.corpus.update(info);
    this.fleet.update(info);
    this.blockers.setRemote(!!info.fleet?.remote);
    this.compare.fillChoices();
    let notice = '';
    const err = this.app.targetErrors.get(m.info.id);
    if (err) notice = err;
    else if (!this.app.targets.has(m.info.id) && this.app.targetsLoaded) notice = `No target ${m.info.id} on this daemon.`;
    else if (info.state === 'failed') notice = `This target failed: ${info.error ?? 'unknown reason'}`;
    else if (!m.index) notice = info.state === 'loading' ? 'Reading debug info…' : 'Waiting for the source index…';
    // An unknown target has nothing to show but the notice.
    const missing = !!err || (!this.app.targets.has(m.info.id) && this.app.targetsLoaded);
    this.root.classList.toggle('missing', missing);
    if (missing) {
      setText(this.stateBadge, 'unknown');
      this.stateBadge.className = 'state state-retired';
    }
    setText(this.notice, notice);
    this.notice.hidden = notice === '';
    this.notice.classList.toggle('bad', info.state === 'failed' || !!err || notice.startsWith('No target'));
  }

  onIndex(id: string): void {
    if (id !== this.model.info.id) return;
    this.tree.build();
    this.fns.rebuild();
    this.blockers.update(true);
    this.compare.update();
    this.onTargets();
  }

  onCoverage(id: string, changed: Set<number> | null): void {
    if (id !== this.model.info.id) return;
    if (changed === null) {
      this.chart.set(this.model.history);
      this.tree.update();
      this.fns.update();
      this.blockers.update();
      this.compare.update();
    } else {
      this.chart.changed();
      if (changed.size) void this.timeline.refresh();
      if (changed.size) {
        this.tree.update();
        this.fns.update();
        this.blockers.update();
        this.compare.update();
      }
    }
  }

  tick(): void {
    const s = (this.app.targets.get(this.model.info.id) ?? this.model.info).stats;
    setText(this.stats.get('last')!.value, ago(s.lastNewAt));
    this.fleet.update(this.app.targets.get(this.model.info.id) ?? this.model.info);
    this.aflPlot.update(this.app.targets.get(this.model.info.id) ?? this.model.info);
    this.corpus.update(this.app.targets.get(this.model.info.id) ?? this.model.info);
    void this.crashes.refresh();
    // Coverage that came while the last answer was fresh: asked for once it is due.
    this.blockers.update();
    this.compare.update();
  }

  destroy(): void {
    this.chart.destroy();
    this.compare.destroy();
  }
}
