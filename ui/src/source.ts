/**
 * The source view: CodeMirror 6, read-only, with line-level coverage as line decorations and a
 * gutter marker. Decorations and markers are built only for the visible lines, so a
 * 250,000-line file costs what a screenful costs.
 */
import { EditorState, RangeSetBuilder, StateEffect, StateField, type Extension } from '@codemirror/state';
import {
  Decoration,
  type DecorationSet,
  EditorView,
  GutterMarker,
  ViewPlugin,
  type ViewUpdate,
  gutter,
  showTooltip,
  type Tooltip,
  lineNumbers,
  drawSelection,
} from '@codemirror/view';
import { StreamLanguage, syntaxHighlighting } from '@codemirror/language';
import { readableHighlightStyle } from './highlight.js';
import { c as cMode, cpp as cppMode } from '@codemirror/legacy-modes/mode/clike';
import { LineState, type FileLines, type TargetModel } from './model.js';
import { el } from './format.js';
import { pcTooltip } from './pctip.js';
import { blockerGutter } from './blockers.js';

/** Coverage or the "new" window changed: rebuild decorations for the visible lines. */
const refresh = StateEffect.define<null>();
/** The line a deep link or a jump points at (0 = none). */
const setTarget = StateEffect.define<number>();

/** The line whose PCs the tooltip shows (0 = none): set by hovering anywhere on a line or its gutter. */
const setHover = StateEffect.define<number>();

const targetLine = StateField.define<number>({
  create: () => 0,
  update(v, tr) {
    for (const e of tr.effects) if (e.is(setTarget)) v = e.value;
    return v;
  },
});

const STATE_CLASS = ['', 'cm-cov-miss', 'cm-cov-part', 'cm-cov-hit'];
const STATE_NAME = ['not instrumented', 'uncovered', 'partly covered', 'covered'];
const GLYPH = ['', '○', '◐', '●'];
/** Where a jump puts its line (with context above it): this far down the view. */
const READING = 0.25;

class CovMarker extends GutterMarker {
  constructor(readonly state: number, readonly seen: number, readonly total: number, readonly fresh: boolean) {
    super();
  }
  override eq(o: GutterMarker): boolean {
    return o instanceof CovMarker && o.state === this.state && o.seen === this.seen && o.total === this.total && o.fresh === this.fresh;
  }
  override toDOM(): Node {
    const s = el('span', `cov-mark ${STATE_CLASS[this.state]}${this.fresh ? ' fresh' : ''}`);
    s.append(el('span', 'glyph', GLYPH[this.state]), el('span', 'count', `${this.seen}/${this.total}`));
    s.title = `${STATE_NAME[this.state]}: ${this.seen} of ${this.total} PCs seen${this.fresh ? ' (new)' : ''}`;
    return s;
  }
}

const spacer = new CovMarker(LineState.Partly, 9999, 9999, false);

export interface SourceViewOptions {
  model: TargetModel;
  file: number;
  text: string;
  path: string;
  /** Lines first covered within this many minutes are highlighted (0 = off). */
  newMinutes: number;
  onLineClick(line: number): void;
}

export class SourceView {
  readonly view: EditorView;
  lines: FileLines;
  newMinutes: number;
  private readonly model: TargetModel;
  readonly file: number;
  /** The line of the last jump (n / p, deep link, opening) and the scroll position it left, so
   *  n / p go on from it while the view has not moved; once it has, from the lines on screen. */
  cursorLine = 0;
  private jumpTop: number | null = null;
  private readonly decoCache = new Map<string, Decoration>();

  constructor(parent: HTMLElement, private readonly opts: SourceViewOptions) {
    this.model = opts.model;
    this.file = opts.file;
    this.newMinutes = opts.newMinutes;
    const state = EditorState.create({ doc: opts.text, extensions: this.extensions(opts.path) });
    this.lines = this.model.fileLines(this.file, state.doc.lines);
    this.view = new EditorView({ state, parent });
    this.watchHover();
  }

  private hovered = 0;
  private hoverTimer: ReturnType<typeof setTimeout> | null = null;

  /** Hovering anywhere on a line (text, empty space after it, or its gutter) shows its PCs. */
  private watchHover(): void {
    const dom = this.view.dom;
    const set = (n: number) => {
      if (this.hoverTimer) clearTimeout(this.hoverTimer);
      this.hoverTimer = null;
      if (n === this.hovered) return;
      const apply = () => {
        this.hovered = n;
        this.view.dispatch({ effects: setHover.of(n) });
      };
      // Show after a short rest, hide at once.
      if (n === 0) apply();
      else this.hoverTimer = setTimeout(apply, 200);
    };
    dom.addEventListener('mousemove', (ev) => {
      if ((ev.target as HTMLElement).closest('.cm-tooltip')) {
        if (this.hoverTimer) clearTimeout(this.hoverTimer);
        return;
      }
      const rect = this.view.scrollDOM.getBoundingClientRect();
      if (ev.clientY < rect.top || ev.clientY > rect.bottom) return set(0);
      const block = this.view.lineBlockAtHeight(ev.clientY - this.view.documentTop);
      const n = this.view.state.doc.lineAt(block.from).number;
      set(this.lines.total[n] ? n : 0);
    });
    dom.addEventListener('mouseleave', () => set(0));
    // Escape closes a PC list opened from the keyboard (showPcs) and returns to the code.
    dom.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape' || !this.hovered) return;
      ev.stopPropagation();
      this.hovered = 0;
      this.view.dispatch({ effects: setHover.of(0) });
      this.view.contentDOM.focus();
    });
  }

  /** The keyboard's hover: shows the PCs of `line` (or of the next instrumented line after it) with focus in the list; false if none. */
  showPcs(line: number): boolean {
    const t = this.lines.total;
    let n = Math.max(1, line);
    while (n < t.length && !t[n]) n++;
    if (n >= t.length) return false;
    if (this.hoverTimer) clearTimeout(this.hoverTimer);
    this.hovered = n;
    this.view.dispatch({ effects: setHover.of(n) });
    requestAnimationFrame(() => this.view.dom.querySelector<HTMLElement>('.pc-tip-body')?.focus({ preventScroll: true }));
    return true;
  }

  private extensions(path: string): Extension[] {
    const self = this;
    const lang = /\.(c|h)$/i.test(path) ? cMode : /\.(cc|cpp|cxx|c\+\+|hh|hpp|hxx|h\+\+|inl|ipp|tcc)$/i.test(path) ? cppMode : null;
    const lineDecos = ViewPlugin.fromClass(
      class {
        decorations: DecorationSet;
        constructor(view: EditorView) {
          this.decorations = self.buildDecorations(view);
        }
        update(u: ViewUpdate) {
          if (u.viewportChanged || u.docChanged || u.transactions.some((t) => t.effects.some((e) => e.is(refresh) || e.is(setTarget))))
            this.decorations = self.buildDecorations(u.view);
        }
      },
      { decorations: (v) => v.decorations },
    );
    const covGutter = gutter({
      class: 'cm-cov-gutter',
      lineMarker(view, line) {
        const n = view.state.doc.lineAt(line.from).number;
        const st = self.lines.state[n] ?? 0;
        if (st === LineState.None) return null;
        return new CovMarker(st, self.lines.seen[n]!, self.lines.total[n]!, self.isFresh(n));
      },
      lineMarkerChange: (u) => u.transactions.some((t) => t.effects.some((e) => e.is(refresh))),
      initialSpacer: () => spacer,
    });
    const hover = StateField.define<Tooltip | null>({
      create: () => null,
      update(v, tr) {
        for (const e of tr.effects) {
          if (!e.is(setHover)) continue;
          if (e.value === 0) return null;
          const n = e.value;
          const line = tr.state.doc.line(n);
          const pcs = self.model.pcsOnLine(self.file, n);
          v = { pos: line.from, above: true, create: () => ({ dom: self.tooltip(n, pcs) }) };
        }
        return v && tr.docChanged ? null : v;
      },
      provide: (f) => showTooltip.from(f),
    });
    return [
      EditorState.readOnly.of(true),
      EditorView.editable.of(false),
      // Read-only but in the tab order, so the keyboard can reach and scroll the code (n / p work from there too).
      EditorView.contentAttributes.of({ tabindex: '0', 'aria-label': `Source of ${path}, read-only`, 'aria-readonly': 'true' }),
      // Keep a (hidden) selection so the browser's find-in-page and copy still work.
      drawSelection(),
      lineNumbers({
        domEventHandlers: {
          click: (view, line) => {
            const n = view.state.doc.lineAt(line.from).number;
            view.dispatch({ effects: setTarget.of(n) });
            self.opts.onLineClick(n);
            return true;
          },
        },
      }),
      covGutter,
      // Blockers of this file in a gutter of their own (./blockers.ts).
      blockerGutter(self.model, path),
      targetLine,
      lineDecos,
      hover,
      ...(lang ? [StreamLanguage.define(lang), syntaxHighlighting(readableHighlightStyle, { fallback: true })] : []),
      EditorView.theme({ '&': { height: '100%' }, '.cm-scroller': { overflow: 'auto' } }),
    ];
  }

  isFresh(line: number): boolean {
    if (this.newMinutes <= 0) return false;
    const t = this.lines.newest[line] ?? 0;
    return t > 0 && t * 1000 >= Date.now() - this.newMinutes * 60_000;
  }

  private deco(cls: string): Decoration {
    let d = this.decoCache.get(cls);
    if (!d) {
      d = Decoration.line({ class: cls });
      this.decoCache.set(cls, d);
    }
    return d;
  }

  private buildDecorations(view: EditorView): DecorationSet {
    const b = new RangeSetBuilder<Decoration>();
    const doc = view.state.doc;
    const target = view.state.field(targetLine);
    const st = this.lines.state;
    for (const { from, to } of view.visibleRanges) {
      const first = doc.lineAt(from).number, last = doc.lineAt(to).number;
      for (let n = first; n <= last; n++) {
        const s = st[n] ?? 0;
        let cls = STATE_CLASS[s]!;
        if (s !== LineState.None && this.isFresh(n)) cls += ' cm-cov-new';
        if (n === target) cls += ' cm-target-line';
        if (cls) b.add(doc.line(n).from, doc.line(n).from, this.deco(cls.trim()));
      }
    }
    return b.finish();
  }

  private tooltip(line: number, pcs: number[]): HTMLElement {
    return pcTooltip(this.model, line, pcs);
  }

  /** Coverage changed (delta/snapshot) or time moved on: recompute lines, redraw in place. */
  update(): void {
    this.lines = this.model.fileLines(this.file, this.view.state.doc.lines);
    this.view.dispatch({ effects: refresh.of(null) });
  }

  setNewMinutes(m: number): void {
    this.newMinutes = m;
    this.view.dispatch({ effects: refresh.of(null) });
  }

  /** The line marked by a deep link, jump or click (0 = none). */
  markedLine(): number {
    return this.view.state.field(targetLine);
  }

  /** Scrolls a line to the middle of the view and marks it. */
  goto(line: number): void {
    const doc = this.view.state.doc;
    const n = Math.max(1, Math.min(doc.lines, line));
    this.view.dispatch({
      effects: [setTarget.of(n), EditorView.scrollIntoView(doc.line(n).from, { y: 'center' })],
    });
    this.noteJump(n);
  }

  /**
   * Scrolls a line to the reading position (a quarter down the view); marks it unless `mark` is
   * false (opening a file at its first uncovered block shows it without marking it).
   */
  jumpTo(line: number, mark = true): void {
    const doc = this.view.state.doc;
    const n = Math.max(1, Math.min(doc.lines, line));
    const h = this.view.scrollDOM.clientHeight || 400;
    const scroll = EditorView.scrollIntoView(doc.line(n).from, { y: 'start', yMargin: Math.round(h * READING) });
    this.view.dispatch({ effects: mark ? [setTarget.of(n), scroll] : [scroll] });
    this.noteJump(n);
  }

  private noteJump(n: number): void {
    this.cursorLine = n;
    this.jumpTop = null;
    // CodeMirror scrolls in its next measure (a frame); remember where that left the view.
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (this.cursorLine === n) this.jumpTop = this.view.scrollDOM.scrollTop;
    }));
  }

  /**
   * The line n / p start from: the line at the top of the view, or the last jump's line while it
   * is still on screen (right after a jump, or after a small scroll, n goes on to the next block).
   */
  referenceLine(): number {
    const sc = this.view.scrollDOM;
    if (this.cursorLine && (this.jumpTop === null || Math.abs(sc.scrollTop - this.jumpTop) < 2)) return this.cursorLine;
    const [top, bottom] = this.visibleLines();
    return this.cursorLine >= top && this.cursorLine <= bottom ? this.cursorLine : top;
  }

  /** The first and last line shown whole in the scroller (for tests and the benchmark). */
  visibleLines(): [number, number] {
    const sc = this.view.scrollDOM.getBoundingClientRect();
    const at = (y: number) => this.view.state.doc.lineAt(this.view.lineBlockAtHeight(Math.max(0, y - this.view.documentTop)).from).number;
    const lh = this.view.defaultLineHeight;
    return [at(sc.top + lh / 2), at(sc.bottom - lh / 2)];
  }

  /** The line to open the file at: its first uncovered block, else its first instrumented line (0: none). */
  firstLine(): number {
    if (this.lines.missStarts.length) return this.lines.missStarts[0]!;
    const t = this.lines.total;
    for (let n = 1; n < t.length; n++) if (t[n]) return n;
    return 0;
  }

  /** The first line of the next (dir 1) / previous (dir -1) run of missed lines from the reference line (wrapping); null if none. */
  nextMiss(dir: 1 | -1): number | null {
    const starts = this.lines.missStarts;
    if (starts.length === 0) return null;
    const cur = this.referenceLine();
    // Binary search: first start > cur.
    let lo = 0, hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= cur) lo = mid + 1;
      else hi = mid;
    }
    if (dir > 0) return lo < starts.length ? starts[lo]! : starts[0]!;
    // Previous: last start < cur (wrap around).
    let k = lo - 1;
    if (k >= 0 && starts[k] === cur) k--;
    return k >= 0 ? starts[k]! : starts[starts.length - 1]!;
  }

  /** Counts of lines per state, for the header. */
  lineCounts(): [number, number, number, number] {
    const out: [number, number, number, number] = [0, 0, 0, 0];
    const st = this.lines.state;
    for (let n = 1; n < st.length; n++) out[st[n]!]++;
    return out;
  }

  destroy(): void {
    if (this.hoverTimer) clearTimeout(this.hoverTimer);
    this.view.destroy();
  }
}
