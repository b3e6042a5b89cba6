/** The source view page: file tree on the side, the file with inline coverage, legend and controls. */
import type { App, View } from './app.js';
import type { TargetModel } from './model.js';
import { FileTree } from './tree.js';
import { SourceView } from './source.js';
import { fetchSource } from './api.js';
import { el, int, pct, setText } from './format.js';
import { fileHref } from './router.js';
import { treeDrawer } from './drawer.js';
import { LinePanel } from './inputs.js';
import { blockerLegendItem } from './blockers.js';

const NEW_CHOICES = [0, 1, 5, 15, 60, 24 * 60];

export class FileView implements View {
  readonly root: HTMLElement;
  private readonly tree: FileTree;
  private readonly main: HTMLElement;
  private readonly head: HTMLElement;
  private readonly pathEl: HTMLElement;
  private readonly statsEl: HTMLElement;
  private readonly editorHost: HTMLElement;
  private readonly status: HTMLElement;
  private readonly missEl: HTMLElement;
  private source: SourceView | null = null;
  private file = -1;
  private loading = false;
  private newMinutes = Number(localStorage.getItem('covd.newMinutes') ?? 5);
  /** The uncovered block last jumped to (its first line), for "block k of N" across live updates. */
  private block: number | null = null;
  private readonly keyHandler = (ev: KeyboardEvent) => this.onKey(ev);
  /** Click a line number: the inputs behind it (./inputs.ts). */
  private readonly lineInputs: LinePanel;

  constructor(private readonly app: App, private readonly model: TargetModel, private path: string, private line: number | null) {
    this.root = el('main', 'page file-page');
    this.lineInputs = new LinePanel(model);
    this.tree = new FileTree(model);
    this.tree.root.classList.add('side');
    this.main = el('section', 'source-panel');
    this.head = el('div', 'source-head');
    this.pathEl = el('h1', 'path mono');
    this.statsEl = el('div', 'source-stats');
    const controls = el('div', 'controls');
    const prev = el('button', 'btn');
    prev.append('↑ Previous uncovered ', el('kbd', '', 'p'));
    prev.type = 'button';
    prev.title = 'Previous uncovered block (p or [)';
    prev.addEventListener('click', () => this.jump(-1));
    const next = el('button', 'btn');
    next.append('↓ Next uncovered ', el('kbd', '', 'n'));
    next.type = 'button';
    next.title = 'Next uncovered block (n or ])';
    next.addEventListener('click', () => this.jump(1));
    this.missEl = el('span', 'muted miss-pos');
    const newLabel = el('label', 'new-select');
    newLabel.append('Highlight new in last ');
    const sel = el('select');
    for (const m of NEW_CHOICES) {
      const o = el('option', '', m === 0 ? 'off' : m < 60 ? `${m} min` : m < 1440 ? `${m / 60} h` : '24 h');
      o.value = String(m);
      sel.append(o);
    }
    if (!NEW_CHOICES.includes(this.newMinutes)) this.newMinutes = 5;
    sel.value = String(this.newMinutes);
    sel.addEventListener('change', () => {
      this.newMinutes = Number(sel.value);
      localStorage.setItem('covd.newMinutes', sel.value);
      this.source?.setNewMinutes(this.newMinutes);
    });
    newLabel.append(sel);
    controls.append(treeDrawer(this.root, this.tree.root), prev, next, this.missEl, newLabel);
    this.head.append(this.pathEl, this.statsEl, legend(), controls);
    this.editorHost = el('div', 'editor');
    this.status = el('div', 'source-status muted');
    this.main.append(this.head, this.lineInputs.root, this.status, this.editorHost);
    this.root.append(this.tree.root, this.main);
    document.addEventListener('keydown', this.keyHandler);
    this.load();
  }

  /** Same file, another line (hash changed): scroll without reloading. */
  showLine(line: number | null): void {
    this.line = line;
    if (line && this.source) this.source.goto(line);
  }

  /** For tests and benchmarks: the marked line and the per-state line counts. */
  probe(withStates = false): { file: number; marked: number; lines: number[]; docLines: number; visible: [number, number]; missStarts: number[]; states?: number[] } | null {
    if (!this.source) return null;
    const p: { file: number; marked: number; lines: number[]; docLines: number; visible: [number, number]; missStarts: number[]; states?: number[] } = { file: this.file, marked: this.source.markedLine(), lines: this.source.lineCounts(), docLines: this.source.view.state.doc.lines, visible: this.source.visibleLines(), missStarts: Array.from(this.source.lines.missStarts) };
    if (withStates) p.states = Array.from(this.source.lines.state);
    return p;
  }

  sameFile(path: string): boolean {
    return path === this.path;
  }

  private setStatus(msg: string, bad = false): void {
    setText(this.status, msg);
    this.status.hidden = msg === '';
    this.status.classList.toggle('bad', bad);
  }

  private load(): void {
    setText(this.pathEl, ltr(this.path));
    this.pathEl.title = this.path;
    const m = this.model;
    if (!m.index) {
      const info = this.app.targets.get(m.info.id);
      const err = this.app.targetErrors.get(m.info.id);
      if (err) this.setStatus(err, true);
      else if (info?.state === 'failed') this.setStatus(`This target failed: ${info.error ?? ''}`, true);
      else if (!info && this.app.targetsLoaded) this.setStatus(`No target ${m.info.id} on this daemon.`, true);
      else this.setStatus('Waiting for the source index…');
      return;
    }
    const f = m.fileByPath(this.path);
    if (f === undefined) {
      this.setStatus(`No file matching "${this.path}" in this target's debug info.`, true);
      return;
    }
    if (f === this.file || this.loading) return;
    this.file = f;
    this.path = m.paths[f]!;
    setText(this.pathEl, ltr(this.path));
    this.pathEl.title = this.path;
    this.tree.setSelected(f);
    this.fetch(false);
  }

  private fetch(keepScroll: boolean): void {
    const f = this.file;
    this.loading = true;
    this.setStatus(this.source ? '' : 'Loading source…');
    fetchSource(this.model.info.id, f)
      .then((text) => {
        performance.mark('covd:source');
        this.loading = false;
        if (f !== this.file) return;
        const scroll = keepScroll && this.source ? this.source.view.scrollDOM.scrollTop : null;
        this.source?.destroy();
        this.source = new SourceView(this.editorHost, {
          model: this.model,
          file: f,
          text,
          path: this.path,
          newMinutes: this.newMinutes,
          onLineClick: (n) => {
            this.line = n;
            history.replaceState(null, '', fileHref(this.model.info.id, this.path, n));
            void this.lineInputs.show(f, n); // the inputs that first reached this line (./inputs.ts)
          },
        });
        performance.mark('covd:editor');
        this.setStatus('');
        if (scroll !== null) this.source.view.scrollDOM.scrollTop = scroll;
        else if (this.line) this.source.goto(this.line);
        else {
          // No line asked for: open at the first uncovered block (else the first instrumented line).
          const first = this.source.firstLine();
          if (first) this.source.jumpTo(first, false);
          this.block = this.source.lines.missStarts[0] === first ? first : null;
        }
        this.updateStats();
        // Ready once CodeMirror has applied the first scroll (it does in its next frame).
        requestAnimationFrame(() => requestAnimationFrame(() => (this.root.dataset.ready = '1')));
      })
      .catch((e: Error) => {
        this.loading = false;
        this.setStatus(`Could not load the source: ${e.message}`, true);
      });
  }

  private updateStats(): void {
    const m = this.model;
    const f = this.file;
    if (f < 0) return;
    const covered = m.fileCovered[f]!, total = m.fileTotal[f]!;
    const parts = [`${pct(covered, total)} of PCs (${int(covered)} / ${int(total)})`];
    if (this.source) {
      const [, miss, part, hit] = this.source.lineCounts();
      parts.push(`${pct(m.fileLineHit[f] ?? 0, m.fileLineTotal[f] ?? 0)} of lines: ${int(hit)} covered · ${int(part)} partly · ${int(miss)} uncovered`);
      setText(this.missEl, blockText(this.source.lines.missStarts, this.block));
    }
    setText(this.statsEl, parts.join('   ·   '));
  }

  private jump(dir: 1 | -1): void {
    if (!this.source) return;
    const line = this.source.nextMiss(dir);
    if (line === null) return;
    this.source.jumpTo(line);
    this.line = line;
    this.block = line;
    history.replaceState(null, '', fileHref(this.model.info.id, this.path, line));
    setText(this.missEl, blockText(this.source.lines.missStarts, line));
  }

  private onKey(ev: KeyboardEvent): void {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target as HTMLElement | null;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
    if (ev.key === 'n' || ev.key === ']') this.jump(1);
    else if (ev.key === 'p' || ev.key === '[') this.jump(-1);
    else if (ev.key === 'i' && this.source) {
      if (!this.source.showPcs(this.source.markedLine() || this.source.referenceLine())) return;
    } else return;
    ev.preventDefault();
  }

  onIndex(id: string): void {
    if (id !== this.model.info.id) return;
    this.tree.build();
    // The same index again (e.g. resent after a reconnect): keep the editor and its scroll position.
    const f = this.model.fileByPath(this.path);
    if (this.source && f === this.file && this.model.paths[f] === this.path) {
      this.tree.setSelected(f);
      this.source.update();
      this.updateStats();
      return;
    }
    this.source?.destroy();
    this.source = null;
    this.file = -1;
    this.load();
  }

  onTargets(): void {
    if (!this.model.index) this.load();
  }

  onCoverage(id: string, changed: Set<number> | null): void {
    if (id !== this.model.info.id) return;
    this.tree.update();
    if (this.file < 0) {
      this.load();
      return;
    }
    if (changed === null || changed.has(this.file)) {
      this.source?.update();
      this.updateStats();
    }
  }

  onSourceChanged(id: string, file: number): void {
    if (id === this.model.info.id && file === this.file) this.fetch(true);
  }

  private ticks = 0;
  tick(): void {
    // Lines age out of the "new" highlight; re-evaluate twice a minute.
    if (++this.ticks % 30 === 0 && this.source && this.newMinutes > 0) this.source.setNewMinutes(this.newMinutes);
  }

  destroy(): void {
    document.removeEventListener('keydown', this.keyHandler);
    this.source?.destroy();
  }
}

function legend(): HTMLElement {
  const l = el('div', 'legend');
  l.setAttribute('aria-label', 'Legend');
  const item = (cls: string, glyph: string, label: string) => {
    const i = el('span', 'legend-item');
    const sw = el('span', `cov-mark ${cls}`);
    sw.append(el('span', 'glyph', glyph));
    i.append(sw, label);
    l.append(i);
  };
  item('cm-cov-hit', '●', 'covered');
  item('cm-cov-part', '◐', 'partly covered');
  item('cm-cov-miss', '○', 'uncovered');
  item('none', ' ', 'not instrumented');
  item('cm-cov-hit fresh', '●', 'new');
  l.append(blockerLegendItem());
  return l;
}

/** "uncovered block k of N" for the block starting at (or last before) `line`, else "N uncovered blocks". */
function blockText(starts: Uint32Array, line: number | null): string {
  let k = 0;
  if (line !== null) while (k < starts.length && starts[k]! <= line) k++;
  if (k > 0) return `uncovered block ${k} of ${starts.length}`;
  return `${starts.length} uncovered block${starts.length === 1 ? '' : 's'}`;
}

/** The path header is right-aligned-overflow (direction: rtl) so the file name stays visible; marks keep the slashes in place. */
function ltr(s: string): string {
  return '\u200e' + s + '\u200e';
}
