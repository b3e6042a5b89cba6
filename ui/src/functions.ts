/**
 * The function list of a target: covered / total PCs per function, sortable, filterable,
 * virtualised. A PC counts under the function it physically belongs to (llvm-symbolizer
 * --no-inlines, libFuzzer's -print_coverage); a function with code of others inlined into it
 * opens (▸, Right / Left) to rows for each inlined function: its PCs there, covered / total.
 */
import type { TargetModel } from './model.js';
import { VList } from './vlist.js';
import { Roving } from './roving.js';
import { el, pct, setText } from './format.js';
import { fileHref } from './router.js';

type FnSort = 'name' | 'coverage' | 'missed' | 'size';
const ROW_H = 24;
const collator = new Intl.Collator('en', { numeric: true });

/** A function, or (with `inl`) code of function `inl` inlined into it. */
type FnRow = { fn: number; inl?: number; covered?: number; total?: number };

export class FunctionList {
  readonly root: HTMLElement;
  private readonly list: VList;
  private rows: FnRow[] = [];
  /** Functions whose inlined code is shown. */
  private readonly open = new Set<number>();
  private sort: FnSort = 'missed';
  private desc = true;
  private filter = '';
  private readonly sortButtons = new Map<FnSort, HTMLButtonElement>();
  private readonly summary: HTMLElement;
  /** Keyboard: one row in the tab order, arrows move, Enter opens the function's source. */
  private readonly roving: Roving;

  constructor(private readonly model: TargetModel) {
    this.root = el('section', 'panel fn-panel');
    const head = el('div', 'panel-head');
    head.append(el('h2', '', 'Functions'));
    this.summary = el('span', 'muted');
    head.append(this.summary);
    const box = el('input', 'filter');
    box.type = 'search';
    box.placeholder = 'Filter functions…';
    box.setAttribute('aria-label', 'Filter functions');
    box.addEventListener('input', () => {
      this.filter = box.value.trim().toLowerCase();
      this.rebuild();
    });
    box.addEventListener('keydown', (ev) => {
      // Enter opens the first match; Down goes to the rows.
      if (ev.key === 'Enter' && this.rows.length) {
        this.openRow(0);
        ev.preventDefault();
      } else if (ev.key === 'ArrowDown' && this.rows.length) {
        this.roving.focus(0);
        ev.preventDefault();
      }
    });
    head.append(box);
    this.root.append(head);
    const cols = el('div', 'cols fn-cols');
    const mk = (key: FnSort, label: string, cls: string) => {
      const b = el('button', 'sort ' + cls, label);
      b.type = 'button';
      b.title = `Sort by ${label.toLowerCase()}`;
      b.addEventListener('click', () => {
        if (this.sort === key) this.desc = !this.desc;
        else { this.sort = key; this.desc = key !== 'name'; }
        this.rebuild();
      });
      this.sortButtons.set(key, b);
      cols.append(b);
    };
    mk('name', 'Function', 'c-name');
    mk('coverage', 'Coverage', 'c-cov');
    mk('missed', 'Missed', 'c-missed');
    mk('size', 'PCs', 'c-size');
    this.root.append(cols);
    this.list = new VList({ count: () => this.rows.length, render: (r, i) => this.renderRow(r, i) }, ROW_H, 'fns');
    this.list.root.setAttribute('aria-label', 'Functions');
    this.list.root.setAttribute('role', 'treegrid');
    this.roving = new Roving(this.list, { count: () => this.rows.length, open: (i) => this.openRow(i), expand: (i, open) => this.expandRow(i, open) });
    this.list.root.addEventListener('click', (ev) => {
      const t = ev.target as HTMLElement;
      const r = t.closest('.vrow') as HTMLElement | null;
      if (!r) return;
      if (t.closest('.fn-toggle')) this.toggle(Number(r.dataset.i));
      else this.openRow(Number(r.dataset.i));
    });
    this.root.append(this.list.root);
    this.rebuild();
    // Inlined code arrives from the daemon after the index (a weak reference: the model outlives this view).
    const self = new WeakRef(this);
    const onExtras = () => { const t = self.deref(); if (t) t.rebuild(); else model.onExtras.delete(onExtras); };
    model.onExtras.add(onExtras);
  }

  update(): void {
    // Inlined rows carry their counts: rebuild while any is shown.
    if (this.sort === 'name' && this.open.size === 0) this.list.refresh();
    else this.rebuild();
  }

  rebuild(): void {
    const m = this.model;
    const idx = m.index;
    for (const [k, b] of this.sortButtons) {
      b.classList.toggle('active', k === this.sort);
      b.dataset.dir = k === this.sort ? (this.desc ? '▼' : '▲') : '';
      b.setAttribute('aria-pressed', String(k === this.sort));
      b.setAttribute('aria-label', `${b.textContent}${k === this.sort ? (this.desc ? ', sorted descending' : ', sorted ascending') : ''}`);
    }
    if (!idx) {
      this.rows = [];
      this.list.draw();
      return;
    }
    const names = idx.functions.names;
    const q = this.filter;
    const rows: number[] = [];
    let cov = 0;
    for (let i = 0; i < names.length; i++) {
      if (m.fnTotal[i] === 0) continue;
      if (m.fnCovered[i]! > 0) cov++;
      if (!q || names[i]!.toLowerCase().includes(q)) rows.push(i);
    }
    const s = this.desc ? -1 : 1;
    const t = m.fnTotal, c = m.fnCovered;
    const byName = (a: number, b: number) => collator.compare(names[a]!, names[b]!) || a - b;
    const cmp: Record<FnSort, (a: number, b: number) => number> = {
      name: (a, b) => s * byName(a, b),
      coverage: (a, b) => s * (c[a]! / t[a]! - c[b]! / t[b]!) || byName(a, b),
      missed: (a, b) => s * (t[a]! - c[a]! - (t[b]! - c[b]!)) || byName(a, b),
      size: (a, b) => s * (t[a]! - t[b]!) || byName(a, b),
    };
    rows.sort(cmp[this.sort]);
    const out: FnRow[] = [];
    for (const fn of rows) {
      out.push({ fn });
      if (this.open.has(fn)) for (const x of m.inlinedInto(fn)) out.push({ fn, inl: x.fn, covered: x.covered, total: x.total });
    }
    this.rows = out;
    setText(this.summary, `${cov} of ${countWithPcs(t)} entered`);
    this.list.root.setAttribute('aria-rowcount', String(rows.length));
    this.list.draw();
    this.list.refresh();
    this.roving.sync();
  }

  /** Shows or hides row i's inlined code. */
  private toggle(i: number): void {
    const row = this.rows[i];
    if (!row || row.inl !== undefined || !this.model.hasInlined(row.fn)) return;
    if (this.open.has(row.fn)) this.open.delete(row.fn);
    else this.open.add(row.fn);
    this.rebuild();
  }

  /** Right (open) / Left: shows or hides a function's inlined code, or moves to its first inlined row / its function. */
  private expandRow(i: number, open: boolean): number | null {
    const row = this.rows[i];
    if (!row) return null;
    if (row.inl !== undefined) {
      if (open) return null;
      for (let k = i - 1; k >= 0; k--) if (this.rows[k]!.inl === undefined) return k;
      return null;
    }
    if (!this.model.hasInlined(row.fn)) return null;
    const isOpen = this.open.has(row.fn);
    if (open && isOpen) return i + 1 < this.rows.length && this.rows[i + 1]!.inl !== undefined ? i + 1 : null;
    if (!open && !isOpen) return null;
    this.toggle(i);
    return i;
  }

  /** Opens row i's source at its function's declaration (an inlined row: the inlined function's). */
  private openRow(i: number): void {
    const row = this.rows[i];
    const idx = this.model.index;
    if (row === undefined || !idx) return;
    const fn = row.inl ?? row.fn;
    const file = idx.functions.file[fn]!;
    const path = this.model.paths[file];
    if (path !== undefined) location.hash = fileHref(this.model.info.id, path, idx.functions.line[fn] || null);
  }

  private renderRow(r: HTMLElement, i: number): void {
    const row = this.rows[i];
    const idx = this.model.index;
    if (row === undefined || !idx) return;
    const fn = row.fn, inl = row.inl;
    const total = inl === undefined ? this.model.fnTotal[fn]! : row.total!;
    const covered = inl === undefined ? this.model.fnCovered[fn]! : row.covered!;
    if (r.childElementCount !== 5) {
      // The ▸ / ▾ of a function with inlined code sits in the row's left margin, outside the cells.
      const toggle = el('span', 'fn-toggle');
      toggle.setAttribute('aria-hidden', 'true');
      r.replaceChildren(toggle, el('span', 'c-name mono'), el('span', 'c-cov'), el('span', 'c-missed num'), el('span', 'c-size num'));
      for (const c of Array.from(r.children).slice(1)) c.setAttribute('role', 'gridcell');
      const bar = el('span', 'bar');
      bar.append(el('span', 'bar-fill'));
      r.children[2]!.append(bar, el('span', 'num pct'));
    }
    const cls = 'vrow' + (covered === 0 ? ' zero' : '') + (inl !== undefined ? ' fn-inl' : '');
    if (r.className !== cls) r.className = cls;
    r.setAttribute('role', 'row');
    r.setAttribute('aria-rowindex', String(i + 1));
    r.setAttribute('aria-level', inl === undefined ? '1' : '2');
    const has = inl === undefined && this.model.hasInlined(fn);
    if (has) r.setAttribute('aria-expanded', String(this.open.has(fn)));
    else r.removeAttribute('aria-expanded');
    this.roving.decorate(r, i);
    const [toggle, cName, cCov, cMissed, cSize] = Array.from(r.children) as HTMLElement[];
    const shown = inl ?? fn;
    setText(toggle!, has ? (this.open.has(fn) ? '▾' : '▸') : '');
    cName!.replaceChildren();
    if (inl !== undefined) cName!.append(el('span', 'fn-inl-mark muted', 'inlined '));
    cName!.append(el('span', 'fn-name', idx.functions.names[shown]!));
    const file = this.model.paths[idx.functions.file[shown]!];
    r.title = inl === undefined
      ? `${idx.functions.names[fn]} — ${file ?? '??'}:${idx.functions.line[fn]}` + (has ? ` (holds inlined code: Right or ▸ shows it)` : '')
      : `${idx.functions.names[inl]} inlined into ${idx.functions.names[fn]}: ${covered} of ${total} of its PCs there seen`;
    const fill = cCov!.querySelector('.bar-fill') as HTMLElement;
    fill.style.width = `${(100 * covered) / total}%`;
    setText(cCov!.querySelector('.pct')!, pct(covered, total));
    setText(cMissed!, String(total - covered));
    setText(cSize!, String(total));
  }
}

function countWithPcs(t: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < t.length; i++) if (t[i]) n++;
  return n;
}
