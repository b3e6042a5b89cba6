/**
 * Inputs behind coverage, and crashes, in the page (docs/protocol.md, "Inputs and crashes"):
 *   - LinePanel (source view): click a line number to see the input that first reached its PCs:
 *     when, size, run, a hex and text preview, a download link and a copyable replay command;
 *   - InputsTimeline (target view): the inputs that found new coverage, over time;
 *   - CrashesPanel (target view): crash groups, their stack linked to source lines, their input.
 * Everything comes over HTTP from the daemon with the page's token; nothing is ever executed.
 */
import type { CrashGroup, CrashInputRef, FirstInput, InputSummary, PcDetail } from '../../src/contracts/inputs.js';
import type { TargetModel } from './model.js';
import { authQuery, HttpError } from './api.js';
import { ago, el, int, setText } from './format.js';
import { fileHref } from './router.js';
import './inputs.css';

const enc = encodeURIComponent;

async function getJson<T>(path: string): Promise<T> {
  const r = await fetch(path + authQuery(), { credentials: 'same-origin' });
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { msg = ((await r.json()) as { error?: string }).error ?? msg; } catch { /* not JSON */ }
    throw new HttpError(r.status, msg);
  }
  return (await r.json()) as T;
}

export const fetchPc = (id: string, pc: number) => getJson<PcDetail>(`/api/targets/${enc(id)}/pcs/${pc}`);
export const fetchInputs = async (id: string) => (await getJson<{ inputs: InputSummary[] }>(`/api/targets/${enc(id)}/inputs`)).inputs;
export const fetchCrashes = async (id: string) => (await getJson<{ crashes: CrashGroup[] }>(`/api/targets/${enc(id)}/crashes`)).crashes;
/** The download URL of an input (an attachment named by its hash). */
export const inputUrl = (id: string, hash: string) => `/api/targets/${enc(id)}/inputs/${hash}${authQuery()}`;

/** The first bytes of an input, for the preview (the whole input is at most what the agent keeps). */
async function fetchHead(id: string, hash: string, max: number): Promise<Uint8Array> {
  const r = await fetch(inputUrl(id, hash), { credentials: 'same-origin' });
  if (!r.ok) throw new HttpError(r.status, r.status === 404 ? 'the daemon does not keep this input' : `${r.status}`);
  return new Uint8Array(await r.arrayBuffer()).subarray(0, max);
}

const PREVIEW_BYTES = 256;

/** Offset, 16 hex bytes, and their text (printable ASCII, else '.'), per row. */
export function hexDump(b: Uint8Array): string {
  const rows: string[] = [];
  for (let o = 0; o < b.length; o += 16) {
    const row = b.subarray(o, o + 16);
    const hex = Array.from(row, (x) => x.toString(16).padStart(2, '0')).join(' ').padEnd(47);
    const text = Array.from(row, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
    rows.push(`${o.toString(16).padStart(8, '0')}  ${hex}  ${text}`);
  }
  return rows.join('\n');
}

/** The command that replays an input: the target's executable with the input as its argument. */
export function replayCommand(exeName: string, hash: string): string {
  return `./${exeName} path/to/${hash}`;
}

function copyButton(text: () => string, label = 'Copy'): HTMLButtonElement {
  const b = el('button', 'btn btn-small', label);
  b.type = 'button';
  b.addEventListener('click', () => {
    const t = text();
    const done = () => { b.textContent = 'Copied'; setTimeout(() => (b.textContent = label), 1200); };
    if (navigator.clipboard?.writeText) navigator.clipboard.writeText(t).then(done, () => fallbackCopy(t, done));
    else fallbackCopy(t, done);
  });
  return b;
}

function fallbackCopy(t: string, done: () => void): void {
  const ta = el('textarea');
  ta.value = t;
  document.body.append(ta);
  ta.select();
  try { document.execCommand('copy'); done(); } catch { /* nothing more to try */ }
  ta.remove();
}

/** Download link, replay command with a copy button. */
function inputActions(m: TargetModel, hash: string, kept: boolean): HTMLElement {
  const box = el('div', 'input-actions');
  if (kept) {
    const a = el('a', 'btn btn-small', 'Download');
    a.href = inputUrl(m.info.id, hash);
    a.setAttribute('download', hash);
    box.append(a);
  } else {
    box.append(el('span', 'muted', 'bytes not kept'));
  }
  const cmd = replayCommand(m.info.name, hash);
  box.append(el('code', 'mono replay', cmd), copyButton(() => cmd));
  return box;
}

function inputCard(m: TargetModel, inp: FirstInput, pcs: number[], kept: boolean): HTMLElement {
  const card = el('div', 'input-card');
  card.dataset.hash = inp.hash;
  const when = new Date(inp.foundAt);
  card.append(
    el('div', 'input-title mono', inp.hash),
    el('div', 'muted', `found ${when.toLocaleString()} (${ago(inp.foundAt)}) · ${int(inp.size)} bytes · run ${int(inp.run)} · first to PC${pcs.length === 1 ? '' : 's'} ${pcs.map((p) => '#' + p).join(', ')}`),
    inputActions(m, inp.hash, kept),
  );
  const pre = el('pre', 'hexdump mono', kept ? 'loading preview…' : '');
  if (kept) {
    fetchHead(m.info.id, inp.hash, PREVIEW_BYTES).then(
      (b) => {
        pre.textContent = b.length ? hexDump(b) + (inp.size > b.length ? `\n… ${int(inp.size - b.length)} more bytes` : '') : '(empty input)';
      },
      (e: Error) => { pre.textContent = `no preview: ${e.message}`; },
    );
    card.append(pre);
  }
  return card;
}

/** Source view: what first reached the PCs of a clicked line. */
export class LinePanel {
  readonly root = el('section', 'line-inputs');
  private seq = 0;

  constructor(private readonly model: TargetModel) {
    this.root.hidden = true;
  }

  hide(): void {
    this.seq++;
    this.root.hidden = true;
    this.root.replaceChildren();
  }

  /** Shows the inputs behind `line` of file index `file` (nothing for lines without seen PCs). */
  async show(file: number, line: number): Promise<void> {
    const m = this.model;
    const seq = ++this.seq;
    const pcs = m.index ? m.pcsOnLine(file, line) : [];
    const seen = pcs.filter((p) => m.isSeen(p));
    const head = el('div', 'line-inputs-head');
    const close = el('button', 'btn btn-small', '×');
    close.type = 'button';
    close.title = 'Close';
    close.addEventListener('click', () => this.hide());
    head.append(el('h2', '', `Line ${line}`), close);
    this.root.replaceChildren(head);
    this.root.hidden = false;
    if (pcs.length === 0) { this.root.append(el('div', 'muted', 'No instrumented PC on this line.')); return; }
    if (seen.length === 0) { this.root.append(el('div', 'muted', `None of its ${pcs.length} PC${pcs.length === 1 ? ' is' : 's are'} covered yet.`)); return; }
    const status = el('div', 'muted', 'Looking up the inputs…');
    this.root.append(status);
    let details: PcDetail[];
    try {
      details = await Promise.all(seen.slice(0, 32).map((p) => fetchPc(m.info.id, p)));
    } catch (e) {
      if (seq === this.seq) setText(status, `Could not look up the inputs: ${(e as Error).message}`);
      return;
    }
    if (seq !== this.seq) return;
    // One card per input, the earliest (the line's first) on top.
    const byHash = new Map<string, { inp: FirstInput; pcs: number[] }>();
    for (const d of details) {
      if (!d.input) continue;
      const g = byHash.get(d.input.hash) ?? { inp: d.input, pcs: [] };
      if (d.input.foundAt < g.inp.foundAt) g.inp = d.input;
      g.pcs.push(d.index);
      byHash.set(d.input.hash, g);
    }
    const groups = [...byHash.values()].sort((a, b) => a.inp.foundAt - b.inp.foundAt);
    const unknown = details.filter((d) => !d.input).length;
    setText(status, groups.length
      ? `${seen.length} of ${pcs.length} PCs covered; first reached by ${groups.length} input${groups.length === 1 ? '' : 's'}${unknown ? ` (${unknown} PC${unknown === 1 ? '' : 's'} with no recorded input)` : ''}. Replay one with the same executable:`
      : 'No input was recorded for these PCs (the fuzzer ran without inputs being kept, or before this daemon saw them).');
    let kept = new Map<string, boolean>();
    try { kept = new Map((await fetchInputs(m.info.id)).map((x) => [x.hash, x.kept])); } catch { /* assume kept */ }
    if (seq !== this.seq) return;
    for (const g of groups) this.root.append(inputCard(m, g.inp, g.pcs, kept.get(g.inp.hash) ?? true));
  }
}

/** Target view: inputs that found new coverage, as a step chart of PCs over time and the newest few. */
export class InputsTimeline {
  readonly root = el('section', 'inputs-timeline panel');
  private readonly chart = el('div', 'timeline-chart');
  private readonly list = el('div', 'timeline-list');
  private readonly summary = el('div', 'muted');
  private last = 0;
  private busy = false;

  constructor(private readonly model: TargetModel) {
    this.root.append(el('h2', '', 'Inputs that found new coverage'), this.summary, this.chart, this.list);
    void this.refresh(true);
  }

  /** Fetches again, at most every 2 s (called on coverage changes and ticks). */
  async refresh(force = false): Promise<void> {
    if (this.busy || (!force && Date.now() - this.last < 2000)) return;
    this.busy = true;
    this.last = Date.now();
    try {
      this.render(await fetchInputs(this.model.info.id));
    } catch (e) {
      setText(this.summary, `Could not load the inputs: ${(e as Error).message}`);
    } finally {
      this.busy = false;
    }
  }

  private render(inputs: InputSummary[]): void {
    const m = this.model;
    if (inputs.length === 0) {
      setText(this.summary, 'None recorded yet (the agent saves an input when it reaches PCs no process had reached).');
      this.chart.replaceChildren();
      this.list.replaceChildren();
      return;
    }
    const total = inputs.reduce((n, x) => n + x.firstPcs, 0);
    setText(this.summary, `${int(inputs.length)} inputs, first to ${int(total)} PCs; newest ${ago(inputs[0]!.foundAt)}.`);
    // Step chart: cumulative PCs first reached, against time; one dot per input.
    const asc = [...inputs].reverse();
    const t0 = asc[0]!.foundAt, t1 = Math.max(asc[asc.length - 1]!.foundAt, t0 + 1);
    const W = 600, H = 90, P = 4;
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('class', 'timeline-svg');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `PCs first reached over time by ${inputs.length} inputs`);
    const x = (t: number) => P + ((W - 2 * P) * (t - t0)) / (t1 - t0);
    const y = (n: number) => H - P - ((H - 2 * P) * n) / Math.max(1, total);
    let acc = 0;
    let d = `M ${x(t0)} ${y(0)}`;
    const dots: SVGElement[] = [];
    for (const inp of asc) {
      d += ` H ${x(inp.foundAt).toFixed(1)}`;
      acc += inp.firstPcs;
      d += ` V ${y(acc).toFixed(1)}`;
      const c = document.createElementNS(ns, 'circle');
      c.setAttribute('cx', x(inp.foundAt).toFixed(1));
      c.setAttribute('cy', y(acc).toFixed(1));
      c.setAttribute('r', String(Math.min(5, 1.5 + Math.log2(1 + inp.firstPcs) / 2)));
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${inp.hash}\n${new Date(inp.foundAt).toLocaleString()} · ${inp.size} bytes · first to ${inp.firstPcs} PCs`;
      c.append(title);
      dots.push(c);
    }
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    path.setAttribute('class', 'timeline-line');
    svg.append(path, ...dots);
    this.chart.replaceChildren(svg);
    const table = el('table', 'timeline-table');
    for (const inp of inputs.slice(0, 10)) {
      const tr = el('tr');
      tr.dataset.hash = inp.hash;
      const a = el('a', 'mono', inp.hash.slice(0, 12));
      if (inp.kept) { a.href = inputUrl(m.info.id, inp.hash); a.setAttribute('download', inp.hash); }
      a.title = inp.kept ? `download ${inp.hash}` : inp.reason ?? 'bytes not kept';
      tr.append(el('td', '', ago(inp.foundAt)), el('td'), el('td', 'num', `${int(inp.size)} B`), el('td', 'num', `+${int(inp.firstPcs)} PCs`));
      tr.children[1]!.append(a);
      table.append(tr);
    }
    this.list.replaceChildren(table);
  }
}

/** Target view: crash groups with their stacks (project frames linked to their lines) and inputs. */
export class CrashesPanel {
  readonly root = el('section', 'crashes panel');
  private readonly body = el('div');
  private readonly title = el('h2', '', 'Crashes');
  private last = 0;
  private busy = false;
  private shown = '';

  constructor(private readonly model: TargetModel) {
    this.root.append(this.title, this.body);
    void this.refresh(true);
  }

  async refresh(force = false): Promise<void> {
    if (this.busy || (!force && Date.now() - this.last < 5000)) return;
    this.busy = true;
    this.last = Date.now();
    try {
      this.render(await fetchCrashes(this.model.info.id));
    } catch (e) {
      this.body.replaceChildren(el('div', 'muted', `Could not load the crashes: ${(e as Error).message}`));
    } finally {
      this.busy = false;
    }
  }

  private render(groups: CrashGroup[]): void {
    const key = JSON.stringify(groups.map((g) => [g.signature, g.count, g.lastAt]));
    if (key === this.shown) return; // nothing changed: keep the DOM (and any open details)
    this.shown = key;
    const n = groups.reduce((s, g) => s + g.count, 0);
    setText(this.title, n ? `Crashes: ${int(n)} in ${groups.length} group${groups.length === 1 ? '' : 's'}` : 'Crashes');
    this.root.classList.toggle('has-crashes', n > 0);
    if (groups.length === 0) {
      this.body.replaceChildren(el('div', 'muted', 'None recorded.'));
      return;
    }
    this.body.replaceChildren(...groups.map((g) => this.group(g)));
  }

  private group(g: CrashGroup): HTMLElement {
    const m = this.model;
    const box = el('details', 'crash');
    box.dataset.signature = g.signature;
    const sum = el('summary');
    sum.append(el('span', `crash-kind kind-${g.kind}`, g.kind), el('span', 'crash-count num', `${int(g.count)}×`), el('span', 'mono crash-sig', g.signature));
    box.append(sum);
    box.append(el('div', 'muted', `${g.detail} · first ${ago(g.firstAt)} · last ${ago(g.lastAt)}${g.resolved ? '' : g.frames.length ? ' · stack not resolved (executable gone or rebuilt)' : ' · no stack: only the fuzzer\'s saved input (e.g. an AFL++ hang)'}`));
    const inp: CrashInputRef | null = g.input;
    if (inp) {
      const line = el('div', 'crash-input');
      line.append(el('span', '', `smallest input ${inp.hash.slice(0, 12)}… (${int(inp.size)} bytes)`), inputActions(m, inp.hash, inp.kept));
      box.append(line);
    } else {
      box.append(el('div', 'muted', 'No input recorded for this crash.'));
    }
    if (g.artifact) box.append(el('div', 'muted mono', `the fuzzer's artifact: ${g.artifact}`));
    const ol = el('ol', 'frames mono');
    let shown = 0;
    for (const f of g.frames) {
      if (shown === 0 && !f.function && !f.project) continue;
      if (++shown > 16) break;
      const li = el('li', f.project ? 'project' : 'runtime');
      li.append(el('span', 'fn', f.function ?? '??'), ' ');
      const where = f.file ? `${f.file}:${f.line ?? 0}${f.column ? ':' + f.column : ''}` : f.pc;
      if (f.project && f.file && f.line && m.fileByPath(f.file) !== undefined) {
        const a = el('a', '', where);
        a.href = fileHref(m.info.id, m.paths[m.fileByPath(f.file)!]!, f.line);
        li.append(a);
      } else {
        li.append(el('span', 'muted', where));
      }
      ol.append(li);
    }
    box.append(ol);
    return box;
  }
}
