/**
 * The file tree of a target with per-directory and per-file coverage: sortable, filterable,
 * virtualised (a 5,000-file target renders a screenful of rows, not 5,000). The project's files
 * come first, by their paths relative to the project's root; library files (system headers,
 * --exclude) follow in a group of their own, closed until opened.
 */
import type { TargetModel } from './model.js';
import { VList } from './vlist.js';
import { Roving } from './roving.js';
import { el, pct, setText } from './format.js';
import { fileHref } from './router.js';

interface Dir {
  name: string;
  /** Path relative to the tree root, for keys of the expanded set. */
  key: string;
  dirs: Dir[];
  files: number[];
  total: number;
  covered: number;
  /** Instrumented lines, and those with a seen PC (TargetModel.fileLineTotal / fileLineHit). */
  lines: number;
  linesHit: number;
  /** Shown as the row's title: the directory's full path, or what the group holds. */
  title: string;
  /** The library group (always last, not sorted with the project's directories). */
  group?: boolean;
}

/** Key of the library group in the expanded set (no directory key starts with NUL). */
const LIB_KEY = '\u0000library';

type Row = { dir: Dir; depth: number } | { file: number; depth: number };

export type TreeSort = 'name' | 'coverage' | 'lines' | 'missed' | 'size';

const ROW_H = 24;

export class FileTree {
  readonly root: HTMLElement;
  private readonly list: VList;
  private readonly filterBox: HTMLInputElement;
  private tree: Dir | null = null;
  /** The library group, null when the target has no library files. */
  private lib: Dir | null = null;
  private prefix = '';
  private rows: Row[] = [];
  private expanded = new Set<string>();
  private sort: TreeSort = 'name';
  private desc = false;
  private filter = '';
  private selected = -1;
  private readonly sortButtons = new Map<TreeSort, HTMLButtonElement>();
  private readonly summary: HTMLElement;
  /** Keyboard: one row in the tab order, arrows move, Enter opens, Right / Left open and close directories. */
  private readonly roving: Roving;

  constructor(private readonly model: TargetModel) {
    this.root = el('section', 'panel tree-panel');
    const head = el('div', 'panel-head');
    head.append(el('h2', '', 'Files'));
    this.summary = el('span', 'muted');
    head.append(this.summary);
    this.filterBox = el('input', 'filter');
    this.filterBox.type = 'search';
    this.filterBox.placeholder = 'Filter files…';
    this.filterBox.setAttribute('aria-label', 'Filter files');
    this.filterBox.addEventListener('input', () => {
      this.filter = this.filterBox.value.trim().toLowerCase();
      this.rebuildRows();
    });
    this.filterBox.addEventListener('keydown', (ev) => {
      // Enter opens the first file that matches; Down goes to the rows.
      if (ev.key === 'Enter') {
        const i = this.rows.findIndex((r) => 'file' in r);
        if (i >= 0) this.openRow(i);
        ev.preventDefault();
      } else if (ev.key === 'ArrowDown' && this.rows.length) {
        this.roving.focus(0);
        ev.preventDefault();
      }
    });
    head.append(this.filterBox);
    this.root.append(head);

    const cols = el('div', 'cols tree-cols');
    const mk = (key: TreeSort, label: string, cls: string) => {
      const b = el('button', 'sort ' + cls, label);
      b.type = 'button';
      b.title = `Sort by ${label.toLowerCase()}`;
      b.addEventListener('click', () => this.setSort(key));
      this.sortButtons.set(key, b);
      cols.append(b);
    };
    mk('name', 'Name', 'c-name');
    mk('coverage', 'Coverage', 'c-cov');
    mk('lines', 'Lines', 'c-lines');
    mk('missed', 'Missed', 'c-missed');
    mk('size', 'PCs', 'c-size');
    this.root.append(cols);

    this.list = new VList({ count: () => this.rows.length, render: (r, i) => this.renderRow(r, i) }, ROW_H, 'tree');
    this.list.root.setAttribute('role', 'tree');
    this.list.root.setAttribute('aria-label', 'Files');
    this.roving = new Roving(this.list, { count: () => this.rows.length, open: (i) => this.openRow(i), expand: (i, open) => this.expandRow(i, open) });
    this.list.root.addEventListener('click', (ev) => this.onClick(ev));
    this.root.append(this.list.root);
    this.build();
    this.updateSortButtons();
    // Library flags and project paths arrive from the daemon after the index (a weak reference:
    // the model outlives this view).
    const self = new WeakRef(this);
    const onExtras = () => { const t = self.deref(); if (t) t.build(); else model.onExtras.delete(onExtras); };
    model.onExtras.add(onExtras);
  }

  /** Rebuilds after the index changed. */
  build(): void {
    const m = this.model;
    if (!m.index) {
      this.tree = null;
      this.rows = [];
      this.list.draw();
      return;
    }
    const project: number[] = [], library: number[] = [];
    m.paths.forEach((_, f) => (m.library[f] ? library : project).push(f));
    // Project files by their path relative to the project's root; library files by their own.
    const relOf = (f: number) => m.relPaths[f] ?? m.paths[f]!;
    this.prefix = m.projectRoot ? m.projectRoot.replace(/\/+$/, '') : commonDir(project.map(relOf));
    const strip = m.projectRoot ? '' : this.prefix;
    const root = this.grow(project, (f) => relOf(f).slice(strip.length).replace(/^\/+/, ''), '', this.prefix);
    compress(root);
    this.tree = root;
    if (library.length) {
      const libPrefix = commonDir(library.map((f) => m.paths[f]!));
      const lib = this.grow(library, (f) => m.paths[f]!.slice(libPrefix.length).replace(/^\/+/, ''), LIB_KEY, libPrefix);
      compress(lib);
      lib.group = true;
      lib.name = `Library (${library.length} file${library.length === 1 ? '' : 's'})`;
      lib.title = `Library code: system headers${libPrefix ? ' under ' + libPrefix : ''} and files the daemon's --exclude names; counted apart from the project`;
      this.lib = lib;
    } else this.lib = null;
    // Open the first levels so the tree is not a single closed row (in the library group too,
    // which itself stays closed until opened).
    if (this.expanded.size === 0) {
      const open = (d: Dir, depth: number) => {
        if (depth > 1) return;
        this.expanded.add(d.key);
        d.dirs.forEach((c) => open(c, depth + 1));
      };
      open(root, 0);
      this.lib?.dirs.forEach((c) => open(c, 1));
    }
    this.recount();
    this.rebuildRows();
  }

  /** A directory tree of `files` named by `rel` (keys under `base`, titles under `prefix`). */
  private grow(files: number[], rel: (f: number) => string, base: string, prefix: string): Dir {
    const mk = (name: string, key: string, title: string): Dir => ({ name, key, dirs: [], files: [], total: 0, covered: 0, lines: 0, linesHit: 0, title });
    const root = mk(prefix || '/', base, prefix || '/');
    const byKey = new Map<string, Dir>([[base, root]]);
    for (const f of files) {
      const parts = rel(f).split('/');
      let d = root;
      let key = '';
      for (let k = 0; k < parts.length - 1; k++) {
        key = key ? key + '/' + parts[k] : parts[k]!;
        const full = base ? base + '/' + key : key;
        let c = byKey.get(full);
        if (!c) {
          c = mk(parts[k]!, full, (prefix ? prefix + '/' : '') + key);
          byKey.set(full, c);
          d.dirs.push(c);
        }
        d = c;
      }
      d.files.push(f);
    }
    return root;
  }

  /** Coverage changed: re-aggregate and redraw visible rows in place. */
  update(): void {
    if (!this.tree) {
      if (this.model.index) this.build();
      return;
    }
    this.recount();
    if (this.sort === 'name') this.list.refresh();
    else this.rebuildRows();
  }

  setSelected(file: number): void {
    this.selected = file;
    const i = this.rows.findIndex((r) => 'file' in r && r.file === file);
    if (i < 0 && this.tree && file >= 0) {
      // Open the file's ancestors so it can be shown.
      const path = this.model.paths[file]!.slice(this.prefix.length).replace(/^\/+/, '');
      const walk = (d: Dir): boolean => {
        if (d.files.includes(file)) return true;
        for (const c of d.dirs) if (walk(c)) { this.expanded.add(c.key); return true; }
        return false;
      };
      if (path && walk(this.tree)) this.rebuildRows();
      else if (path && this.lib && walk(this.lib)) { this.expanded.add(LIB_KEY); this.rebuildRows(); }
    }
    const j = this.rows.findIndex((r) => 'file' in r && r.file === file);
    if (j >= 0) this.list.scrollToRow(j);
    this.list.refresh();
  }

  private recount(): void {
    const m = this.model;
    const walk = (d: Dir): void => {
      let t = 0, c = 0, l = 0, h = 0;
      for (const f of d.files) { t += m.fileTotal[f]!; c += m.fileCovered[f]!; l += m.fileLineTotal[f] ?? 0; h += m.fileLineHit[f] ?? 0; }
      for (const s of d.dirs) { walk(s); t += s.total; c += s.covered; l += s.lines; h += s.linesHit; }
      d.total = t;
      d.covered = c;
      d.lines = l;
      d.linesHit = h;
    };
    if (this.tree) walk(this.tree);
    if (this.lib) walk(this.lib);
    if (this.tree) {
      // The project's totals, the library's beside them.
      const t = this.tree, l = this.lib;
      const nProject = this.model.paths.length - (l ? countFiles(l) : 0);
      setText(this.summary, `${nProject} files · ${pct(t.covered, t.total)} of PCs · ${pct(t.linesHit, t.lines)} of lines` + (l ? ` · library ${pct(l.covered, l.total)} of PCs` : ''));
      this.summary.title = `Project: PCs ${t.covered} of ${t.total} seen; lines ${t.linesHit} of ${t.lines} with a seen PC` + (l ? `\nLibrary (${countFiles(l)} files): PCs ${l.covered} of ${l.total} seen; lines ${l.linesHit} of ${l.lines}` : '');
    }
  }

  private setSort(key: TreeSort): void {
    if (this.sort === key) this.desc = !this.desc;
    else {
      this.sort = key;
      this.desc = key === 'missed' || key === 'size';
    }
    this.updateSortButtons();
    this.rebuildRows();
  }

  private updateSortButtons(): void {
    for (const [k, b] of this.sortButtons) {
      b.classList.toggle('active', k === this.sort);
      b.dataset.dir = k === this.sort ? (this.desc ? '▼' : '▲') : '';
      // (aria-sort belongs to column headers; these are buttons: pressed = the sort in use.)
      b.setAttribute('aria-pressed', String(k === this.sort));
      b.setAttribute('aria-label', `${b.textContent}${k === this.sort ? (this.desc ? ', sorted descending' : ', sorted ascending') : ''}`);
    }
  }

  private compare(): (a: SortItem, b: SortItem) => number {
    const s = this.desc ? -1 : 1;
    const ratio = (x: { total: number; covered: number }) => (x.total ? x.covered / x.total : -1);
    const lineRatio = (x: SortItem) => (x.lines ? x.linesHit / x.lines : -1);
    switch (this.sort) {
      case 'name': return (a, b) => s * cmpName(a.name, b.name);
      case 'coverage': return (a, b) => s * (ratio(a) - ratio(b)) || cmpName(a.name, b.name);
      case 'lines': return (a, b) => s * (lineRatio(a) - lineRatio(b)) || cmpName(a.name, b.name);
      case 'missed': return (a, b) => s * ((a.total - a.covered) - (b.total - b.covered)) || cmpName(a.name, b.name);
      case 'size': return (a, b) => s * (a.total - b.total) || cmpName(a.name, b.name);
    }
  }

  private rebuildRows(): void {
    const rows: Row[] = [];
    const m = this.model;
    const cmp = this.compare();
    const q = this.filter;
    const fileItem = (f: number) => ({ f, name: m.index!.files[f]!, total: m.fileTotal[f]!, covered: m.fileCovered[f]!, lines: m.fileLineTotal[f] ?? 0, linesHit: m.fileLineHit[f] ?? 0 });
    // With a filter: every directory holding a match is shown open; without: the user's choice.
    const matches = (f: number) => !q || m.paths[f]!.toLowerCase().includes(q);
    const visit = (d: Dir, depth: number): boolean => {
      const start = rows.length;
      if (depth >= 0) rows.push({ dir: d, depth });
      const open = q !== '' || depth < 0 || this.expanded.has(d.key);
      if (!open) return true;
      let any = false;
      for (const c of [...d.dirs].sort(cmp)) any = visit(c, depth + 1) || any;
      const files = d.files.filter(matches).map(fileItem).sort(cmp);
      any ||= files.length > 0;
      for (const it of files) rows.push({ file: it.f, depth: depth + 1 });
      if (q && !any) {
        rows.length = start;
        return false;
      }
      return true;
    };
    if (this.tree) visit(this.tree, -1);
    // The library group last, at the top level, whatever the sort.
    if (this.lib) visit(this.lib, 0);
    this.rows = rows;
    this.list.draw();
    this.roving.sync();
  }

  private renderRow(r: HTMLElement, i: number): void {
    const row = this.rows[i];
    if (!row) return;
    const m = this.model;
    let name: string, total: number, covered: number, lines: number, linesHit: number, cls: string, title: string;
    if ('dir' in row) {
      const open = this.filter ? true : this.expanded.has(row.dir.key);
      name = (open ? '▾ ' : '▸ ') + row.dir.name + (row.dir.group ? '' : '/');
      total = row.dir.total;
      covered = row.dir.covered;
      lines = row.dir.lines;
      linesHit = row.dir.linesHit;
      cls = 'vrow t-dir' + (row.dir.group ? ' t-lib' : '');
      title = row.dir.title;
      r.setAttribute('aria-expanded', String(open));
    } else {
      name = m.index!.files[row.file]!;
      const slash = name.lastIndexOf('/');
      if (slash >= 0) name = name.slice(slash + 1);
      total = m.fileTotal[row.file]!;
      covered = m.fileCovered[row.file]!;
      lines = m.fileLineTotal[row.file] ?? 0;
      linesHit = m.fileLineHit[row.file] ?? 0;
      cls = 'vrow t-file' + (row.file === this.selected ? ' selected' : '');
      title = m.paths[row.file]! + (m.library[row.file] ? ' (library)' : '');
      r.removeAttribute('aria-expanded');
    }
    if (r.className !== cls) r.className = cls;
    r.title = title;
    r.setAttribute('role', 'treeitem');
    r.setAttribute('aria-level', String(row.depth + 1));
    if ('file' in row) r.setAttribute('aria-selected', String(row.file === this.selected));
    else r.removeAttribute('aria-selected');
    this.roving.decorate(r, i);
    if (r.childElementCount !== 5) {
      r.replaceChildren(el('span', 'c-name'), el('span', 'c-cov'), el('span', 'c-lines num'), el('span', 'c-missed num'), el('span', 'c-size num'));
      const bar = el('span', 'bar');
      bar.append(el('span', 'bar-fill'));
      r.children[1]!.append(bar, el('span', 'num pct'));
    }
    const [cName, cCov, cLines, cMissed, cSize] = Array.from(r.children) as HTMLElement[];
    setText(cName!, name);
    setText(cLines!, lines ? pct(linesHit, lines) : '');
    cLines!.title = lines ? `${linesHit} of ${lines} lines with a seen PC` : '';
    cName!.style.paddingLeft = `${6 + row.depth * 14}px`;
    const fill = cCov!.querySelector('.bar-fill') as HTMLElement;
    const w = total ? `${(100 * covered) / total}%` : '0%';
    if (fill.style.width !== w) fill.style.width = w;
    setText(cCov!.querySelector('.pct')!, pct(covered, total));
    setText(cMissed!, total ? String(total - covered) : '');
    setText(cSize!, total ? String(total) : '');
    if ('file' in row) r.dataset.file = String(row.file);
    else delete r.dataset.file;
  }

  private onClick(ev: MouseEvent): void {
    const rowEl = (ev.target as HTMLElement).closest('.vrow') as HTMLElement | null;
    if (rowEl) this.openRow(Number(rowEl.dataset.i));
  }

  /** Right (open) / Left on row i: opens or closes a directory, or moves to its first child / its parent. */
  private expandRow(i: number, open: boolean): number | null {
    const row = this.rows[i];
    if (!row) return null;
    const isOpen = 'dir' in row && (this.filter !== '' || this.expanded.has(row.dir.key));
    if (open) {
      if (!('dir' in row)) return null;
      if (isOpen) return i + 1 < this.rows.length && this.rows[i + 1]!.depth > row.depth ? i + 1 : null;
      this.openRow(i);
      return i;
    }
    if ('dir' in row && isOpen && this.filter === '') {
      this.openRow(i);
      return i;
    }
    for (let k = i - 1; k >= 0; k--) if (this.rows[k]!.depth < row.depth) return k;
    return null;
  }

  /** Opens row i: a file in the source view, a directory open or closed. */
  private openRow(i: number): void {
    const row = this.rows[i];
    if (!row) return;
    if ('dir' in row) {
      if (this.filter) return;
      if (this.expanded.has(row.dir.key)) this.expanded.delete(row.dir.key);
      else this.expanded.add(row.dir.key);
      this.rebuildRows();
    } else {
      location.hash = fileHref(this.model.info.id, this.model.paths[row.file]!);
    }
  }
}

type SortItem = { name: string; total: number; covered: number; lines: number; linesHit: number };

function countFiles(d: Dir): number {
  let n = d.files.length;
  for (const c of d.dirs) n += countFiles(c);
  return n;
}

/** Longest directory prefix shared by all paths (so the tree does not start with /home/user/...). */
function commonDir(paths: string[]): string {
  if (paths.length === 0) return '';
  let pre = paths[0]!.slice(0, paths[0]!.lastIndexOf('/') + 1);
  for (const p of paths) {
    while (pre && !p.startsWith(pre)) pre = pre.slice(0, pre.lastIndexOf('/', pre.length - 2) + 1);
    if (!pre) break;
  }
  return pre.replace(/\/+$/, '');
}

/** Merges chains of single-child directories ("src/" -> "lib/" becomes "src/lib/"). */
function compress(d: Dir): void {
  for (let i = 0; i < d.dirs.length; i++) {
    let c = d.dirs[i]!;
    while (c.files.length === 0 && c.dirs.length === 1) {
      const g = c.dirs[0]!;
      c = { ...g, name: c.name + '/' + g.name };
    }
    d.dirs[i] = c;
    compress(c);
  }
}

const collator = new Intl.Collator('en', { numeric: true });
function cmpName(a: string, b: string): number {
  return collator.compare(a, b);
}
