/**
 * The source view's PC tooltip: one line's PCs, grouped by function, each with its link-time
 * address in hex (what llvm-symbolizer --obj=EXE and gdb take; from the index's `pcAddresses`
 * when the daemon could read them, see docs/protocol.md) beside its index in the PC table, its
 * column and whether / when it was first seen. A line with hundreds of PCs gets a box that stays
 * inside the window (its height is capped, it scrolls), whose background spans every row.
 * PCs in inlined code are grouped apart, headed "`inner` inlined into `outer` at file:line":
 * the innermost inlined function, the function the PC physically belongs to, and where that
 * function calls it (llvm-symbolizer --inlines' first and last frames).
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
  // Group by function and inlined code (with its call site), in the order they first appear on the line.
  const inl = m.inlined;
  const groups = new Map<string, number[]>();
  for (const pc of pcs) {
    const fn = idx.pcFunction[pc] ?? NONE;
    const g = inl?.fn[pc] ?? NONE;
    const key = g === NONE ? String(fn) : `${fn}:${g}:${inl!.callFile[pc]}:${inl!.callLine[pc]}`;
    let a = groups.get(key);
    if (!a) groups.set(key, (a = []));
    a.push(pc);
  }
  const scroll = el('div', 'pc-tip-body');
  // Focusable, so the keyboard can scroll a long list (the source view's `i` puts focus here).
  scroll.tabIndex = 0;
  scroll.setAttribute('aria-label', `PCs of line ${line}`);
  const table = el('table');
  let rows = 0;
  const fnName = (f: number) => (f === NONE ? '??' : idx.functions.names[f] ?? '??');
  for (const group of groups.values()) {
    group.sort((a, b) => (idx.pcColumn[a]! - idx.pcColumn[b]!) || a - b);
    const first = group[0]!;
    const fn = idx.pcFunction[first] ?? NONE;
    const g = inl?.fn[first] ?? NONE;
    const gSeen = group.filter((p) => m.isSeen(p)).length;
    const head = el('tr', 'pc-fn');
    const th = el('th', 'mono');
    th.colSpan = 4;
    if (g === NONE) th.append(el('span', 'fn', fnName(fn)));
    else {
      const cf = inl!.callFile[first]!, cl = inl!.callLine[first]!;
      const path = cf === NONE ? '' : m.paths[cf] ?? '';
      const at = path ? `${path.slice(path.lastIndexOf('/') + 1)}${cl ? ':' + cl : ''}` : '';
      head.classList.add('pc-inl');
      th.append(el('span', 'fn', fnName(g)), el('span', 'inl', ' inlined into '), el('span', 'fn into', fnName(fn)));
      if (at) {
        const site = el('span', 'inl site', ` at ${at}`);
        site.title = path + (cl ? ':' + cl : '');
        th.append(site);
      }
    }
    th.append(el('span', 'muted', `  ${gSeen} of ${group.length} seen`));
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
