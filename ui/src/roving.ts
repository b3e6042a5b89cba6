/**
 * Keyboard access to a virtual list (vlist.ts) with a roving tabindex: exactly one row is in the
 * tab order (tabindex 0, the others -1), so Tab enters the list once and leaves it with the next
 * Tab. Arrows, Home / End and Page Up / Down move between rows (scrolling them in), Enter (or
 * Space) opens the row, Right / Left open and close a tree's directories. When the active row is
 * scrolled out of the DOM, the list itself takes its place in the tab order and hands focus on.
 */
import type { VList } from './vlist.js';

export interface RovingOptions {
  count(): number;
  /** Enter / Space / click on row i. */
  open(i: number): void;
  /** Right (open = true) / Left on row i; returns the row to move to, or null when nothing to do. */
  expand?(i: number, open: boolean): number | null;
}

export class Roving {
  /** The row in the tab order. */
  active = 0;

  constructor(private readonly list: VList, private readonly o: RovingOptions) {
    const root = list.root;
    root.addEventListener('keydown', (ev) => this.onKey(ev));
    root.addEventListener('focus', () => this.focus(this.active));
    // Scrolling can take the active row out of the DOM: re-check after the list repaints.
    root.addEventListener('scroll', () => requestAnimationFrame(() => this.sync()), { passive: true });
    root.addEventListener('focusin', (ev) => {
      const row = (ev.target as HTMLElement).closest<HTMLElement>('.vrow');
      if (row) this.setActive(Number(row.dataset.i));
    });
    this.sync();
  }

  /** Call from the list's render for every row it fills. */
  decorate(row: HTMLElement, i: number): void {
    const t = i === this.clamped() ? 0 : -1;
    if (row.tabIndex !== t) row.tabIndex = t;
  }

  /** After a draw: when the active row is not in the DOM, the list takes its place in the tab order. */
  sync(): void {
    const has = this.list.root.querySelector(`.vrow[data-i="${this.clamped()}"]`) !== null;
    const t = has || this.o.count() === 0 ? -1 : 0;
    if (this.list.root.tabIndex !== t) this.list.root.tabIndex = t;
  }

  /** Moves focus to row i, scrolling it in. */
  focus(i: number): void {
    const n = this.o.count();
    if (n === 0) return;
    this.setActive(Math.max(0, Math.min(n - 1, i)));
    this.list.scrollToRow(this.active);
    this.list.draw();
    const row = this.list.root.querySelector<HTMLElement>(`.vrow[data-i="${this.active}"]`);
    row?.focus({ preventScroll: true });
    this.sync();
  }

  private clamped(): number {
    return Math.max(0, Math.min(this.o.count() - 1, this.active));
  }

  private setActive(i: number): void {
    this.active = i;
    for (const r of this.list.root.querySelectorAll<HTMLElement>('.vrow')) this.decorate(r, Number(r.dataset.i));
  }

  private onKey(ev: KeyboardEvent): void {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const page = Math.max(1, Math.floor(this.list.root.clientHeight / this.list.rowHeight) - 1);
    const i = this.clamped();
    let to: number | null = null;
    switch (ev.key) {
      case 'ArrowDown': to = i + 1; break;
      case 'ArrowUp': to = i - 1; break;
      case 'PageDown': to = i + page; break;
      case 'PageUp': to = i - page; break;
      case 'Home': to = 0; break;
      case 'End': to = this.o.count() - 1; break;
      case 'ArrowRight':
      case 'ArrowLeft':
        if (!this.o.expand) return;
        to = this.o.expand(i, ev.key === 'ArrowRight');
        if (to === null) { ev.preventDefault(); return; }
        break;
      case 'Enter':
      case ' ':
        ev.preventDefault();
        this.o.open(i);
        return;
      default:
        return;
    }
    ev.preventDefault();
    this.focus(to);
  }
}
