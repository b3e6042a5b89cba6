/**
 * The source view's PC tooltip: one line's PCs, grouped by function, each with its link-time
 * address in hex (what llvm-symbolizer --obj=EXE and gdb take; from the index's `pcAddresses`
 * when the daemon could read them, see docs/protocol.md) beside its index in the PC table, its
 * column and whether / when it was first seen. A line with hundreds of PCs gets a box that stays
 * inside the window (its height is capped, it scrolls), whose background spans every row.
 */
import type { TargetModel } from './model.js';
import { ago, el } from './format.js';

const NONE = 0xffffffff;
/** Rows shown at most (a line can have thousands of PCs after macro expansion). */
const MAX_ROWS = 2000;

export function pcTooltip(m: TargetModel, line: number, pcs: number[]): HTMLElement {
  const idx = m.index!;
  const addrs = idx.pcAddresses;
  const box = el('div', 'pc-tip');
  box.setAttribute('role', 'tooltip');
  const seen = pcs.filter((p) => m.isSeen(p)).length;
  box.append(el('div', 'pc-tip-head', `Line ${line}: ${seen} of ${pcs.length} PC${pcs.length === 1 ? '' : 's'} seen`));
  // Group by function, in the order the functions first appear on the line.
  const groups = new Map<number, number[]>();
  for (const pc of pcs) {
    const fn = idx.pcFunction[pc] ?? NONE;
    let g = groups.get(fn);
    if (!g) groups.set(fn, (g = []));
    g.push(pc);
  }
  const scroll = el('div', 'pc-tip-body');
  // Focusable, so the keyboard can scroll a long list (the source view's `i` puts focus here).
  scroll.tabIndex = 0;
  scroll.setAttribute('aria-label', `PCs of line ${line}`);
  const table = el('table');
  let rows = 0;
  for (const [fn, group] of groups) {
    group.sort((a, b) => (idx.pcColumn[a]! - idx.pcColumn[b]!) || a - b);
    const name = fn === NONE ? '??' : idx.functions.names[fn] ?? '??';
    const gSeen = group.filter((p) => m.isSeen(p)).length;
    const head = el('tr', 'pc-fn');
    const th = el('th', 'mono');
    th.colSpan = 4;
    th.append(el('span', 'fn', name), el('span', 'muted', `  ${gSeen} of ${group.length} seen`));
    head.append(th);
    table.append(head);
    for (const pc of group) {
      if (rows++ >= MAX_ROWS) break;
      const s = m.isSeen(pc);
      const tr = el('tr', s ? 'seen' : 'unseen');
      const a = addrs?.[pc];
      const addr = el('td', 'mono addr', a !== undefined ? '0x' + a.toString(16) : '–');
      if (a === undefined) addr.title = 'the daemon could not read this target\'s PC table';
      const when = s ? (m.firstSeen[pc] ? `seen ${ago(m.firstSeen[pc]! * 1000)}` : 'seen') : 'not seen';
      tr.append(addr, el('td', 'mono muted', `#${pc}`), el('td', 'mono', `col ${idx.pcColumn[pc]}`), el('td', 'when', (s ? '● ' : '○ ') + when));
      table.append(tr);
    }
  }
  scroll.append(table);
  box.append(scroll);
  if (pcs.length > MAX_ROWS) box.append(el('div', 'muted pc-tip-more', `… and ${pcs.length - MAX_ROWS} more`));
  if (addrs) box.append(el('div', 'muted pc-tip-foot', 'addresses are link-time: llvm-symbolizer --obj=EXE ADDR'));
  return box;
}
