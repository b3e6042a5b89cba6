/**
 * The keyboard shortcuts, shown by `?` (anywhere but in a text field) or the header's "?" button,
 * in a modal <dialog> (Escape or the Close button closes it, focus returns where it was).
 */
import { el } from './format.js';

const KEYS: [keys: string[], what: string][] = [
  [['?'], 'show this list'],
  [['Tab', 'Shift+Tab'], 'move between the parts of a page (one stop per list)'],
  [['↑', '↓', 'Home', 'End', 'PgUp', 'PgDn'], 'move in the file tree or the function list'],
  [['→', '←'], 'open / close a directory in the file tree (or go to its parent)'],
  [['Enter'], 'open the file or function; in a filter box: open the first match'],
  [['↓'], 'in a filter box: go to the list'],
  [['n', ']'], 'source view: next uncovered block below the top of the view'],
  [['p', '['], 'source view: previous uncovered block'],
  [['i'], 'source view: list the PCs of the marked line (arrows scroll, Esc closes)'],
  [['Esc'], 'close this list, or the file tree drawer on narrow screens'],
];

export class Shortcuts {
  readonly button: HTMLButtonElement;
  private readonly dialog: HTMLDialogElement;

  constructor() {
    this.dialog = el('dialog', 'shortcuts');
    this.dialog.setAttribute('aria-labelledby', 'shortcuts-title');
    const title = el('h2', '', 'Keyboard shortcuts');
    title.id = 'shortcuts-title';
    const table = el('table');
    for (const [keys, what] of KEYS) {
      const tr = el('tr');
      const k = el('td', 'keys');
      keys.forEach((key, i) => {
        if (i) k.append(' ');
        k.append(el('kbd', '', key));
      });
      tr.append(k, el('td', '', what));
      table.append(tr);
    }
    const close = el('button', 'btn', 'Close');
    close.type = 'button';
    close.addEventListener('click', () => this.dialog.close());
    this.dialog.append(title, table, close);
    document.body.append(this.dialog);

    this.button = el('button', 'help', '?');
    this.button.type = 'button';
    this.button.title = 'Keyboard shortcuts (?)';
    this.button.setAttribute('aria-label', 'Keyboard shortcuts');
    this.button.setAttribute('aria-haspopup', 'dialog');
    this.button.addEventListener('click', () => this.show());
    document.addEventListener('keydown', (ev) => {
      if (ev.key !== '?' || ev.ctrlKey || ev.metaKey || ev.altKey || this.dialog.open) return;
      const t = ev.target as HTMLElement | null;
      if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) return;
      ev.preventDefault();
      this.show();
    });
  }

  show(): void {
    if (!this.dialog.open) this.dialog.showModal();
  }
}
