/**
 * Coverage blockers in the page (GET /api/targets/:id/blockers, docs/protocol.md "Blockers"): the
 * target page lists the heaviest call sites where coverage stops (caller, call site, callee, what
 * lies behind it), each a link to its line; the source view marks them in a gutter of their own.
 * Both ask again as coverage grows, at most every few seconds (the daemon computes them per seq);
 * after a failure, less and less often (10 s, doubling up to 2 minutes), whatever coverage does.
 */
import { GutterMarker, gutter, ViewPlugin, type EditorView, type ViewUpdate } from '@codemirror/view';
import { StateEffect, StateField, type Extension } from '@codemirror/state';
import type { TargetModel } from './model.js';
import { authQuery } from './api.js';
import { Backoff } from './backoff.js';
import { el, int, setText } from './format.js';
import { fileHref } from './router.js';
import type { Blocker, BlockersAnswer } from '../../src/web/blockers.js';
import './blockers.css';

/** Fewest milliseconds between two requests of one target's blockers. */
const REFRESH_MS = 3000;
/** The first wait after a failed request, doubled after each further failure up to RETRY_MAX_MS. */
const RETRY_MS = 10_000;
const RETRY_MAX_MS = 120_000;
/** Rows shown on the target page. */
const TOP = 10;

/** One target's blockers, asked for at most every REFRESH_MS and only when its coverage moved. */
class BlockersSource {
  private last = 0;
  private version = -1;
  private inflight: Promise<BlockersAnswer> | null = null;
  /** After a failure: no request before its wait is over. */
  private readonly retry = new Backoff(RETRY_MS, RETRY_MAX_MS);
  answer: BlockersAnswer | null = null;
  error = '';

  constructor(readonly id: string) {}

  /** Fetches again when coverage changed since the last answer and enough time passed; resolves true when the answer changed. */
  async refresh(version: number, force = false): Promise<boolean> {
    if (this.inflight) return false;
    if (this.error && !this.retry.ready()) return false;
    // A failure is asked again once its wait is over, even when coverage did not move.
    if (!force && !this.error && (version === this.version || Date.now() - this.last < REFRESH_MS)) return false;
    this.last = Date.now();
    this.version = version;
    this.inflight = fetch(`/api/targets/${encodeURIComponent(this.id)}/blockers${authQuery()}`, { credentials: 'same-origin' }).then(async (r) => {
      const body = (await r.json()) as BlockersAnswer & { error?: string };
      if (!r.ok) throw new Error(body.error ?? `${r.status} ${r.statusText}`);
      return body;
    });
    try {
      const a = await this.inflight;
      const changed = JSON.stringify(a.blockers) !== JSON.stringify(this.answer?.blockers) || a.callGraph !== this.answer?.callGraph;
      this.answer = a;
      const wasError = this.error !== '';
      this.error = '';
      this.retry.succeeded();
      return changed || wasError;
    } catch (e) {
      // Not asked again at the next delta: after a wait that grows with each failure.
      this.retry.failed();
      const changed = this.error !== (e as Error).message;
      this.error = (e as Error).message;
      return changed;
    } finally {
      this.inflight = null;
    }
  }
}

const sources = new Map<string, BlockersSource>();
function sourceFor(id: string): BlockersSource {
  let s = sources.get(id);
  if (!s) sources.set(id, (s = new BlockersSource(id)));
  return s;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** "never reached: 118 uncovered PCs in 3 functions behind it" */
function behindText(b: Blocker): string {
  return `${int(b.uncoveredBehind)} uncovered PC${b.uncoveredBehind === 1 ? '' : 's'} in ${int(b.functionsBehind)} function${b.functionsBehind === 1 ? '' : 's'} behind it`;
}

/** The target page's list of the top blockers. */
export class BlockersPanel {
  readonly root: HTMLElement;
  private readonly body: HTMLTableSectionElement;
  private readonly table: HTMLTableElement;
  private readonly note: HTMLElement;
  private readonly source: BlockersSource;

  constructor(private readonly model: TargetModel) {
    this.source = sourceFor(model.info.id);
    this.root = el('section', 'panel blockers-panel');
    this.root.setAttribute('aria-labelledby', 'blockers-title');
    const head = el('div', 'panel-head');
    const h = el('h2', '', 'Blockers');
    h.id = 'blockers-title';
    head.append(h, el('span', 'muted', 'calls from covered code into functions never reached, by what lies behind them'));
    this.root.append(head);
    this.note = el('p', 'blockers-note muted');
    this.table = el('table', 'targets blockers');
    const hr = el('tr');
    for (const [label, cls] of [['Caller', ''], ['Call site', ''], ['Callee (never reached)', ''], ['Uncovered PCs behind', 'num'], ['Functions behind', 'num']] as const) {
      const th = el('th', cls, label);
      th.scope = 'col';
      hr.append(th);
    }
    const thead = el('thead');
    thead.append(hr);
    this.body = el('tbody');
    this.table.append(thead, this.body);
    this.table.hidden = true;
    this.root.append(this.note, this.table);
    setText(this.note, 'Reading the call graph…');
    // After the page has said whether the target is a remote fleet target (setRemote).
    queueMicrotask(() => this.update(true));
  }

  private remote = false;

  /** A fleet target no fuzzer of this daemon runs: its executable (and debug info) is on other hosts. */
  setRemote(remote: boolean): void {
    if (remote === this.remote) return;
    this.remote = remote;
    if (remote) {
      setText(this.note, 'Blockers come from a build\'s debug info: this build runs on other nodes of the fleet only, so this daemon has none to read. Open it on a daemon that fuzzes it.');
      this.note.hidden = false;
      this.table.hidden = true;
      this.body.replaceChildren();
    } else this.update(true);
  }

  /** Coverage moved (or the index came): ask again when due, redraw when the answer changed. */
  update(force = false): void {
    if (!this.model.index || this.remote) return;
    void this.source.refresh(this.model.version, force).then((changed) => { if (changed || force) this.render(); });
  }

  private render(): void {
    const s = this.source;
    const a = s.answer;
    const say = (text: string) => {
      setText(this.note, text);
      this.note.hidden = text === '';
    };
    const noRows = (text: string) => {
      say(text);
      this.table.hidden = true;
      this.body.replaceChildren();
    };
    this.root.dataset.callGraph = a?.callGraph ?? '';
    if (s.error) return noRows(`Blockers are not available: ${s.error}`);
    if (!a) return;
    this.root.dataset.seq = String(a.seq);
    if (a.callGraph === 'none' && a.reason) return noRows(`No call graph: ${a.reason}.`);
    if (a.callGraph === 'none') return noRows('No call graph in this build (-O0): its debug info has no call site entries. Build at -O1 or above (covd cc\'s default) to see blockers.');
    if (a.blockers.length === 0) return noRows('No blockers: every function called from covered code has been reached.');
    say(a.blockers.length > TOP ? `The top ${TOP} of ${int(a.blockers.length)}.` : '');
    this.table.hidden = false;
    const id = this.model.info.id;
    this.body.replaceChildren(...a.blockers.slice(0, TOP).map((b) => {
      const tr = el('tr', 'blocker');
      tr.dataset.callee = b.callee;
      tr.dataset.line = String(b.line);
      const link = el('a', 'mono blocker-site', `${baseName(b.file)}:${b.line}`);
      link.href = fileHref(id, b.file, b.line);
      link.title = `${b.file}:${b.line}:${b.column}`;
      const site = el('td');
      site.append(link);
      tr.append(el('td', 'mono', b.caller), site, el('td', 'mono', b.callee), el('td', 'num', int(b.uncoveredBehind)), el('td', 'num', int(b.functionsBehind)));
      return tr;
    }));
  }
}

// ---------------------------------------------------------------- the source view's gutter

const setBlockers = StateEffect.define<Map<number, Blocker[]>>();

const blockersField = StateField.define<Map<number, Blocker[]>>({
  create: () => new Map(),
  update(v, tr) {
    for (const e of tr.effects) if (e.is(setBlockers)) v = e.value;
    return v;
  },
});

export const BLOCKER_GLYPH = '⊘';

class BlockerMarker extends GutterMarker {
  constructor(readonly list: Blocker[]) {
    super();
  }
  override eq(o: GutterMarker): boolean {
    return o instanceof BlockerMarker && JSON.stringify(o.list) === JSON.stringify(this.list);
  }
  override toDOM(): Node {
    // The spacer (no blockers) only sizes the gutter.
    if (this.list.length === 0) return el('span', 'blocker-mark blocker-spacer', BLOCKER_GLYPH);
    const s = el('span', 'blocker-mark', BLOCKER_GLYPH);
    s.title = this.list.map((b) => `Blocker: ${b.caller} calls ${b.callee}, never reached; ${behindText(b)}`).join('\n');
    s.dataset.callee = this.list.map((b) => b.callee).join(' ');
    return s;
  }
}

const spacer = new BlockerMarker([]);

/**
 * A gutter marking the blockers of one file (`path`, as the source index spells it) of a
 * target's source view; asks for them when the view opens and again as coverage grows.
 */
export function blockerGutter(model: TargetModel, path: string): Extension {
  const source = sourceFor(model.info.id);
  const apply = (view: EditorView) => {
    const byLine = new Map<number, Blocker[]>();
    for (const b of source.answer?.blockers ?? []) {
      if (b.file !== path) continue;
      const l = byLine.get(b.line);
      if (l) l.push(b);
      else byLine.set(b.line, [b]);
    }
    view.dispatch({ effects: setBlockers.of(byLine) });
  };
  const poll = ViewPlugin.fromClass(
    class {
      private destroyed = false;
      /** Coverage that came while the last answer was fresh is asked for once it is due. */
      private readonly timer = setInterval(() => this.ask(false), 1000);
      constructor(readonly view: EditorView) {
        if (source.answer) queueMicrotask(() => { if (!this.destroyed) apply(view); });
        this.ask(true);
      }
      ask(force: boolean) {
        void source.refresh(model.version, force).then((changed) => { if (!this.destroyed && (changed || force)) apply(this.view); });
      }
      update(u: ViewUpdate) {
        if (u.transactions.some((t) => t.effects.some((e) => e.is(setBlockers)))) return;
        this.ask(false);
      }
      destroy() {
        this.destroyed = true;
        clearInterval(this.timer);
      }
    },
  );
  return [
    blockersField,
    poll,
    gutter({
      class: 'cm-blocker-gutter',
      lineMarker(view, line) {
        const list = view.state.field(blockersField).get(view.state.doc.lineAt(line.from).number);
        return list ? new BlockerMarker(list) : null;
      },
      lineMarkerChange: (u) => u.transactions.some((t) => t.effects.some((e) => e.is(setBlockers))),
      initialSpacer: () => spacer,
    }),
  ];
}

/** The legend's swatch for the gutter mark. */
export function blockerLegendItem(): HTMLElement {
  const i = el('span', 'legend-item');
  i.append(el('span', 'blocker-mark', BLOCKER_GLYPH), 'blocker: a call never made into unreached code');
  return i;
}
