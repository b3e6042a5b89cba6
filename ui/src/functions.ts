/** The function list of a target: covered / total PCs per function, sortable, filterable, virtualised. */
import type { TargetModel } from './model.js';
import { VList } from './vlist.js';
import { Roving } from './roving.js';
import { el, pct, setText } from './format.js';
import { fileHref } from './router.js';

type FnSort = 'name' | 'coverage' | 'missed' | 'size';
const ROW_H = 24;
const collator = new Intl.Collator('en', { numeric: true });

export class FunctionList {
  readonly root: HTMLElement;
  private readonly list: VList;
  private rows: number[] = [];
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
        this.open(0);
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
    this.list.root.setAttribute('role', 'grid');
    this.list.root.setAttribute('aria-label', 'Functions');
    this.roving = new Roving(this.list, { count: () => this.rows.length, open: (i) => this.open(i) });
    this.list.root.addEventListener('click', (ev) => {
      const r = (ev.target as HTMLElement).closest('.vrow') as HTMLElement | null;
      if (r) this.open(Number(r.dataset.i));
    });
    this.root.append(this.list.root);
    this.rebuild();
  }

  update(): void {
    if (this.sort === 'name') this.list.refresh();
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
    this.rows = rows;
    setText(this.summary, `${cov} of ${countWithPcs(t)} entered`);
    this.list.root.setAttribute('aria-rowcount', String(rows.length));
    this.list.draw();
    this.list.refresh();
    this.roving.sync();
  }

  /** Opens function row i's source at its declaration. */
  private open(i: number): void {
    const fn = this.rows[i];
    const idx = this.model.index;
    if (fn === undefined || !idx) return;
    const file = idx.functions.file[fn]!;
    const path = this.model.paths[file];
    if (path !== undefined) location.hash = fileHref(this.model.info.id, path, idx.functions.line[fn] || null);
  }

  private renderRow(r: HTMLElement, i: number): void {
    const fn = this.rows[i];
    const idx = this.model.index;
    if (fn === undefined || !idx) return;
    const total = this.model.fnTotal[fn]!, covered = this.model.fnCovered[fn]!;
    if (r.childElementCount !== 4) {
      r.replaceChildren(el('span', 'c-name mono'), el('span', 'c-cov'), el('span', 'c-missed num'), el('span', 'c-size num'));
      for (const c of Array.from(r.children)) c.setAttribute('role', 'gridcell');
      const bar = el('span', 'bar');
      bar.append(el('span', 'bar-fill'));
      r.children[1]!.append(bar, el('span', 'num pct'));
    }
    const cls = 'vrow' + (covered === 0 ? ' zero' : '');
    if (r.className !== cls) r.className = cls;
    r.setAttribute('role', 'row');
    r.setAttribute('aria-rowindex', String(i + 1));
    this.roving.decorate(r, i);
    const [cName, cCov, cMissed, cSize] = Array.from(r.children) as HTMLElement[];
    setText(cName!, idx.functions.names[fn]!);
    const file = this.model.paths[idx.functions.file[fn]!];
    r.title = `${idx.functions.names[fn]} — ${file ?? '??'}:${idx.functions.line[fn]}`;
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
