/**
 * The source view's file tree on narrow screens (layout.css, below 1100 px): hidden behind a
 * "Files" toggle, shown as a drawer over the code. On wide screens the toggle is not displayed and
 * the tree is a side column. Escape or a click outside closes the drawer; focus goes into the tree
 * when it opens and back to the toggle when it closes.
 */
import { el } from './format.js';

export function treeDrawer(page: HTMLElement, side: HTMLElement): HTMLButtonElement {
  if (!side.id) side.id = 'file-tree-' + Math.random().toString(36).slice(2, 8);
  const toggle = el('button', 'btn tree-toggle');
  toggle.type = 'button';
  toggle.append('☰ Files');
  toggle.setAttribute('aria-controls', side.id);
  toggle.setAttribute('aria-expanded', 'false');
  toggle.title = 'Show the file tree';
  const set = (open: boolean, focus = true) => {
    page.classList.toggle('tree-open', open);
    toggle.setAttribute('aria-expanded', String(open));
    toggle.title = open ? 'Hide the file tree' : 'Show the file tree';
    if (!focus) return;
    if (open) (side.querySelector<HTMLElement>('.vrow[tabindex="0"]') ?? side.querySelector<HTMLElement>('input'))?.focus();
    else toggle.focus();
  };
  toggle.addEventListener('click', () => set(!page.classList.contains('tree-open')));
  side.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && page.classList.contains('tree-open')) {
      ev.stopPropagation();
      set(false);
    }
  });
  page.addEventListener('mousedown', (ev) => {
    const t = ev.target as Node;
    if (page.classList.contains('tree-open') && !side.contains(t) && !toggle.contains(t)) set(false, false);
  });
  return toggle;
}
