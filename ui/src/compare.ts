/**
 * The compare view on the target page (GET /api/targets/:a/compare/:b, docs/protocol.md
 * "Comparisons"): this target against another build of the same program, a fleet node, or itself
 * at an earlier time (picked here or by clicking the coverage chart). It shows the totals, the
 * files sorted by how much differs, and one file's source with each covered line marked as only
 * in A, only in B or in both: a tint, a pattern and a gutter glyph each, so colour is never the
 * only cue. Reached at #/target/ID/compare/B (router.ts compareHref); asks again as coverage grows.
 * "N minutes ago" is `@-MS`, made a time when picked or opened. Screen readers hear the summary
 * when the user asked for a comparison, not each time fuzzing moves its counts.
 */
import { EditorState, RangeSetBuilder, StateEffect, type Extension } from '@codemirror/state';
import { Decoration, type DecorationSet, EditorView, GutterMarker, ViewPlugin, type ViewUpdate, gutter, lineNumbers } from '@codemirror/view';
import { StreamLanguage, syntaxHighlighting } from '@codemirror/language';
import { c as cMode, cpp as cppMode } from '@codemirror/legacy-modes/mode/clike';
import type { TargetInfo, TargetNode } from '../../src/contracts/hub.js';
import type { App } from './app.js';
import { LineState, type TargetModel } from './model.js';
import { Backoff } from './backoff.js';
import { authQuery, fetchSource } from './api.js';
import { readableHighlightStyle } from './highlight.js';
import { el, fullTime, int, setText, when } from './format.js';
import { compareHref } from './router.js';
import type { CompareAnswer, FileComparison } from '../../src/web/compare.js';
import './compare.css';

/** A line's side: 1 only in A, 2 only in B, 3 in both. */
const ONLY_A = 1, ONLY_B = 2, BOTH = 3;
const SIDE_CLASS = ['', 'cmp-only-a', 'cmp-only-b', 'cmp-both'];
const SIDE_GLYPH = ['', '−', '+', '='];
const REFRESH_MS = 3000;
/** Fleet nodes: the first wait after a failed (or empty) answer, doubled each time up to NODES_RETRY_MAX_MS. */
const NODES_RETRY_MS = 5_000;
const NODES_RETRY_MAX_MS = 120_000;
/** The choices of "this target earlier": relative to the time they are picked. */
const EARLIER: [label: string, ms: number][] = [['1 minute ago', 60_000], ['10 minutes ago', 600_000], ['1 hour ago', 3_600_000], ['1 day ago', 86_400_000]];

/** A spec as asked for: `@-MS` (MS before now) becomes the time `@T` (whole seconds); others as they are. */
export function resolveSpec(spec: string, now = Date.now()): string {
  const m = /^@-(\d+)$/.exec(spec);
  return m ? `@${Math.floor((now - Number(m[1])) / 1000) * 1000}` : spec;
}

/** The files of a comparison, most different first (then by path). */
export function byDifference(files: FileComparison[]): FileComparison[] {
  return files.slice().sort((x, y) => y.onlyA.length + y.onlyB.length - (x.onlyA.length + x.onlyB.length) || (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

class SideMarker extends GutterMarker {
  constructor(readonly side: number, readonly label: string) {
    super();
  }
  override eq(o: GutterMarker): boolean {
    return o instanceof SideMarker && o.side === this.side && o.label === this.label;
  }
  override toDOM(): Node {
    const s = el('span', `cmp-mark ${SIDE_CLASS[this.side]}`, SIDE_GLYPH[this.side]);
    s.title = this.label;
    return s;
  }
}

const redraw = StateEffect.define<null>();

export class ComparePanel {
  readonly root: HTMLElement;
  private readonly select: HTMLSelectElement;
  private readonly timeInput: HTMLInputElement;
  private readonly summary: HTMLElement;
  /** Polite live region: says the summary of a comparison the user asked for (open()), once. */
  private readonly announcer: HTMLElement;
  private announce = false;
  private readonly legendEl: HTMLElement;
  private readonly list: HTMLElement;
  private readonly srcHead: HTMLElement;
  private readonly editorHost: HTMLElement;
  private spec = '';
  private cmp: CompareAnswer | null = null;
  private labels = { a: 'A', b: 'B' };
  private shownPath = '';
  private editor: EditorView | null = null;
  /** Per line of the shown file: its side (0 none). */
  private sides = new Uint8Array(0);
  private last = 0;
  private busy = false;
  /** open() came while a request was in flight: asked again when it ends. */
  private pending = false;
  private version = -1;
  private nodes: TargetNode[] = [];
  private nodesLoading = false;
  private readonly nodesRetry = new Backoff(NODES_RETRY_MS, NODES_RETRY_MAX_MS);
  /** destroy() was called: nothing more is drawn (answers still in flight are dropped). */
  private dead = false;

  constructor(private readonly app: App, private readonly model: TargetModel, initial?: string) {
    this.root = el('section', 'panel compare-panel');
    this.root.setAttribute('aria-labelledby', 'compare-title');
    const head = el('div', 'panel-head');
    const h = el('h2', '', 'Compare');
    h.id = 'compare-title';
    head.append(h, el('span', 'muted', 'covered lines against another build, a fleet node, or this target at an earlier time (or click the chart)'));
    const controls = el('div', 'compare-controls');
    const selLabel = el('label', '', 'With ');
    this.select = el('select', 'compare-with');
    selLabel.append(this.select);
    const timeLabel = el('label', '', 'or as it was at ');
    this.timeInput = el('input', 'compare-time');
    this.timeInput.type = 'datetime-local';
    this.timeInput.step = '1';
    timeLabel.append(this.timeInput);
    controls.append(selLabel, timeLabel);
    // "N minutes ago" (`@-MS`) is made a time now, when it is picked (open).
    this.select.addEventListener('change', () => { if (this.select.value) this.open(this.select.value); });
    this.timeInput.addEventListener('change', () => {
      const ms = new Date(this.timeInput.value).getTime();
      if (Number.isFinite(ms)) this.open(`@${ms}`);
    });
    this.summary = el('p', 'compare-summary');
    this.announcer = el('p', 'compare-announce');
    this.announcer.setAttribute('aria-live', 'polite');
    this.legendEl = el('div', 'legend compare-legend');
    this.legendEl.setAttribute('aria-label', 'Legend of the comparison');
    this.legendEl.hidden = true;
    const body = el('div', 'compare-body');
    this.list = el('ul', 'compare-files');
    this.list.setAttribute('aria-label', 'Files, most different first');
    const src = el('div', 'compare-source');
    this.srcHead = el('div', 'compare-source-head mono muted');
    this.editorHost = el('div', 'compare-editor');
    src.append(this.srcHead, this.editorHost);
    body.append(this.list, src);
    body.hidden = true;
    this.root.append(head, controls, this.summary, this.announcer, this.legendEl, body);
    this.fillChoices();
    if (initial) this.open(initial, false);
  }

  /** The choices: other builds of the same program, fleet nodes, and times. */
  fillChoices(): void {
    if (this.dead) return;
    const info = this.app.targets.get(this.model.info.id) ?? this.model.info;
    const opts: HTMLElement[] = [];
    const none = el('option', '', 'choose…');
    none.value = '';
    opts.push(none);
    const builds = [...this.app.targets.values()].filter((t) => t.id !== info.id && sameProgram(t, info));
    if (builds.length) {
      const g = el('optgroup');
      g.label = 'Other builds of this program';
      for (const t of builds) g.append(option(t.id, `${t.name} · ${t.id}${t.buildId ? ' · build ' + t.buildId.slice(0, 12) : ''} (${t.state})`));
      opts.push(g);
    }
    if (this.nodes.length) {
      const g = el('optgroup');
      g.label = 'Fleet nodes (all nodes against one)';
      for (const n of this.nodes) g.append(option(`node:${n.name}`, `node ${n.name}${n.self ? ' (this daemon)' : ''}`));
      opts.push(g);
    }
    const g = el('optgroup');
    g.label = 'This target earlier';
    for (const [label, ms] of EARLIER) g.append(option(`@-${ms}`, label));
    if (this.spec.startsWith('@')) g.append(option(this.spec, `at ${when(Number(this.spec.slice(1)))}`));
    opts.push(g);
    const key = opts.map((o) => o.textContent).join('|') + this.spec;
    if (this.select.dataset.key === key) return;
    this.select.dataset.key = key;
    this.select.replaceChildren(...opts);
    this.select.value = [...this.select.options].some((o) => o.value === this.spec) ? this.spec : '';
    if (info.fleet && info.fleet.nodes > 0 && this.nodes.length === 0) void this.loadNodes();
  }

  /** The fleet's nodes, one request at a time; after a failure or an empty answer, less and less often. */
  private async loadNodes(): Promise<void> {
    if (this.nodesLoading || !this.nodesRetry.ready()) return;
    this.nodesLoading = true;
    let nodes: TargetNode[] = [];
    try {
      const r = await fetch(`/api/targets/${encodeURIComponent(this.model.info.id)}${authQuery()}`, { credentials: 'same-origin' });
      if (r.ok) nodes = ((await r.json()) as { nodes?: TargetNode[] }).nodes ?? [];
    } catch { /* no nodes this time */ } finally {
      this.nodesLoading = false;
    }
    if (this.dead) return;
    if (nodes.length === 0) {
      this.nodesRetry.failed();
      return;
    }
    this.nodesRetry.succeeded();
    this.nodes = nodes;
    this.fillChoices();
  }

  /** A time picked on the chart (ms since the epoch). */
  pickTime(ms: number): void {
    this.open(`@${Math.round(ms)}`);
    this.root.scrollIntoView({ block: 'start', behavior: 'smooth' });
  }

  /** Opens the comparison with `spec` (a target id, @ms, @-ms before now, node:NAME) and puts it in the address. */
  open(asked: string, remember = true): void {
    if (this.dead) return;
    const spec = resolveSpec(asked);
    this.spec = spec;
    this.root.dataset.spec = spec;
    this.version = -1;
    this.cmp = null;
    if (remember) history.replaceState(null, '', compareHref(this.model.info.id, spec));
    if (spec.startsWith('@')) {
      const d = new Date(Number(spec.slice(1)));
      this.timeInput.value = new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
    }
    this.fillChoices();
    setText(this.summary, 'Comparing…');
    this.announce = true;
    void this.refresh(true);
  }

  /** Coverage moved: ask again when due. */
  update(): void {
    if (this.spec && !this.dead) void this.refresh(false);
  }

  /** The summary line; read out too when the user asked for this comparison. */
  private say(text: string): void {
    setText(this.summary, text);
    if (this.announce) setText(this.announcer, text);
    this.announce = false;
  }

  private async refresh(force: boolean): Promise<void> {
    if (this.dead || !this.model.index) return;
    if (this.busy) {
      // The answer in flight is for an older spec (or as good as this one): ask again after it.
      if (force) this.pending = true;
      return;
    }
    if (!force && (this.version === this.model.version || Date.now() - this.last < REFRESH_MS)) return;
    this.busy = true;
    this.last = Date.now();
    const spec = this.spec, version = this.model.version;
    try {
      const r = await fetch(`/api/targets/${encodeURIComponent(this.model.info.id)}/compare/${encodeURIComponent(spec)}${authQuery()}`, { credentials: 'same-origin' });
      const body = (await r.json()) as CompareAnswer & { error?: string };
      if (spec !== this.spec || this.dead || this.pending) return;
      if (!r.ok) {
        this.say(`Cannot compare: ${body.error ?? r.status}`);
        this.root.dataset.state = 'error';
        return;
      }
      this.version = version;
      this.cmp = body;
      this.render();
    } catch (e) {
      if (spec === this.spec && !this.dead && !this.pending) this.say(`Cannot compare: ${(e as Error).message}`);
    } finally {
      this.busy = false;
      if (this.pending && !this.dead) {
        this.pending = false;
        void this.refresh(true);
      }
    }
  }

  private render(): void {
    const c = this.cmp!;
    const info = this.app.targets.get(this.model.info.id) ?? this.model.info;
    this.labels = c.a.at !== undefined
      ? { a: `as at ${when(c.a.at)}`, b: 'now' }
      : c.b.node !== undefined
        ? { a: 'all nodes', b: `node ${c.b.node}` }
        : { a: `this build (${info.id})`, b: `build ${c.b.id ?? '?'}` };
    if (c.a.at !== undefined) this.root.title = `Compared with ${fullTime(c.a.at)}`;
    this.say(`${int(c.totals.onlyB)} line${c.totals.onlyB === 1 ? '' : 's'} covered only ${this.labels.b}, ${int(c.totals.onlyA)} only ${this.labels.a}, ${int(c.totals.both)} in both.`);
    this.renderLegend();
    this.root.dataset.state = 'ready';
    this.root.dataset.totals = `${c.totals.onlyA},${c.totals.onlyB},${c.totals.both}`;
    const files = byDifference(c.files);
    const root = commonDir(files.map((f) => f.path));
    const rows = files.map((f) => {
      const li = el('li');
      const b = el('button', 'compare-file');
      b.type = 'button';
      b.dataset.path = f.path;
      b.setAttribute('aria-pressed', String(f.path === this.shownPath));
      b.append(el('span', 'mono compare-path', f.path.slice(root.length)), el('span', 'num cmp-count cmp-only-b', `+${f.onlyB.length}`), el('span', 'num cmp-count cmp-only-a', `−${f.onlyA.length}`), el('span', 'num cmp-count cmp-both', `=${f.both}`));
      b.title = `${f.path}: ${f.onlyB.length} only ${this.labels.b}, ${f.onlyA.length} only ${this.labels.a}, ${f.both} in both`;
      b.addEventListener('click', () => this.show(f.path));
      li.append(b);
      return li;
    });
    this.list.replaceChildren(...rows);
    (this.list.parentElement as HTMLElement).hidden = files.length === 0;
    if (files.length === 0) return;
    const keep = files.find((f) => f.path === this.shownPath);
    void this.show((keep ?? files[0]!).path, !!keep);
  }

  private renderLegend(): void {
    const item = (side: number, label: string) => {
      const i = el('span', 'legend-item');
      i.append(el('span', `cmp-mark cmp-swatch ${SIDE_CLASS[side]}`, SIDE_GLYPH[side]), label);
      return i;
    };
    this.legendEl.replaceChildren(item(ONLY_B, `covered only ${this.labels.b}`), item(ONLY_A, `covered only ${this.labels.a}`), item(BOTH, 'covered in both'));
    this.legendEl.hidden = false;
  }

  /** Shows one file's source with its lines marked. */
  private async show(path: string, inPlace = false): Promise<void> {
    const c = this.cmp;
    const f = c?.files.find((x) => x.path === path);
    if (!c || !f) return;
    this.shownPath = path;
    for (const b of this.list.querySelectorAll<HTMLButtonElement>('button.compare-file')) b.setAttribute('aria-pressed', String(b.dataset.path === path));
    setText(this.srcHead, path);
    const file = this.model.fileByPath(path);
    if (file === undefined) {
      this.editor?.destroy();
      this.editor = null;
      this.editorHost.replaceChildren(el('p', 'muted', 'This file is not in this build: no source to show here.'));
      this.root.dataset.file = path;
      return;
    }
    let text: string;
    if (inPlace && this.editor && this.editorHost.dataset.path === path) text = this.editor.state.doc.toString();
    else {
      try {
        text = await fetchSource(this.model.info.id, file);
      } catch (e) {
        if (this.dead) return;
        this.editor?.destroy();
        this.editor = null;
        this.editorHost.replaceChildren(el('p', 'muted', `Could not load the source: ${(e as Error).message}`));
        return;
      }
      if (this.shownPath !== path || this.dead) return;
    }
    const nLines = text.split('\n').length;
    // Lines only in A / only in B come from the answer; "both" are this target's covered lines
    // (it is the A side now, or the B side of a time comparison) that are on neither list.
    const sides = new Uint8Array(nLines + 1);
    const lines = this.model.fileLines(file, nLines);
    for (let n = 1; n <= nLines; n++) if (lines.state[n] === LineState.Partly || lines.state[n] === LineState.Covered) sides[n] = BOTH;
    for (const l of f.onlyA) if (l <= nLines) sides[l] = ONLY_A;
    for (const l of f.onlyB) if (l <= nLines) sides[l] = ONLY_B;
    this.sides = sides;
    const d = this.root.dataset;
    d.file = path;
    d.onlyA = f.onlyA.join(',');
    d.onlyB = f.onlyB.join(',');
    d.both = [...sides.keys()].filter((n) => sides[n] === BOTH).join(',');
    if (this.editor && this.editorHost.dataset.path === path) {
      this.editor.dispatch({ effects: redraw.of(null) });
      return;
    }
    this.editor?.destroy();
    this.editorHost.replaceChildren();
    this.editorHost.dataset.path = path;
    this.editor = new EditorView({ state: EditorState.create({ doc: text, extensions: this.extensions(path) }), parent: this.editorHost });
    const first = sides.findIndex((s) => s === ONLY_B || s === ONLY_A);
    if (first > 0) this.editor.dispatch({ effects: EditorView.scrollIntoView(this.editor.state.doc.line(Math.min(first, this.editor.state.doc.lines)).from, { y: 'center' }) });
  }

  private extensions(path: string): Extension[] {
    const self = this;
    const lang = /\.(c|h)$/i.test(path) ? cMode : /\.(cc|cpp|cxx|c\+\+|hh|hpp|hxx|h\+\+|inl|ipp|tcc)$/i.test(path) ? cppMode : null;
    const decos = SIDE_CLASS.map((cls) => (cls ? Decoration.line({ class: cls }) : null));
    const build = (view: EditorView): DecorationSet => {
      const b = new RangeSetBuilder<Decoration>();
      const doc = view.state.doc;
      for (const { from, to } of view.visibleRanges) {
        for (let n = doc.lineAt(from).number; n <= doc.lineAt(to).number; n++) {
          const d = decos[self.sides[n] ?? 0];
          if (d) b.add(doc.line(n).from, doc.line(n).from, d);
        }
      }
      return b.finish();
    };
    const lineDecos = ViewPlugin.fromClass(
      class {
        decorations: DecorationSet;
        constructor(view: EditorView) { this.decorations = build(view); }
        update(u: ViewUpdate) {
          if (u.viewportChanged || u.transactions.some((t) => t.effects.some((e) => e.is(redraw)))) this.decorations = build(u.view);
        }
      },
      { decorations: (v) => v.decorations },
    );
    const label = (side: number) => (side === ONLY_A ? `covered only ${self.labels.a}` : side === ONLY_B ? `covered only ${self.labels.b}` : 'covered in both');
    return [
      EditorState.readOnly.of(true),
      EditorView.editable.of(false),
      EditorView.contentAttributes.of({ tabindex: '0', 'aria-label': `Source of ${path} compared, read-only`, 'aria-readonly': 'true' }),
      lineNumbers(),
      gutter({
        class: 'cm-cmp-gutter',
        lineMarker(view, line) {
          const s = self.sides[view.state.doc.lineAt(line.from).number] ?? 0;
          return s ? new SideMarker(s, label(s)) : null;
        },
        lineMarkerChange: (u) => u.transactions.some((t) => t.effects.some((e) => e.is(redraw))),
        initialSpacer: () => new SideMarker(BOTH, ''),
      }),
      lineDecos,
      ...(lang ? [StreamLanguage.define(lang), syntaxHighlighting(readableHighlightStyle, { fallback: true })] : []),
      EditorView.theme({ '&': { height: '100%' }, '.cm-scroller': { overflow: 'auto' } }),
    ];
  }

  destroy(): void {
    this.dead = true;
    this.editor?.destroy();
    this.editor = null;
  }
}

function option(value: string, label: string): HTMLOptionElement {
  const o = el('option', '', label);
  o.value = value;
  return o;
}

/** Builds of one program: the same name (the executable's basename). */
function sameProgram(a: TargetInfo, b: TargetInfo): boolean {
  return a.name === b.name;
}

function commonDir(paths: string[]): string {
  if (paths.length === 0) return '';
  let root = paths[0]!.slice(0, paths[0]!.lastIndexOf('/') + 1);
  for (const p of paths) while (root && !p.startsWith(root)) root = root.slice(0, root.slice(0, -1).lastIndexOf('/') + 1);
  return root;
}
