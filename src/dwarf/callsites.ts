/**
 * The static call graph from the debug info: every DW_TAG_call_site (DWARF 5) and
 * DW_TAG_GNU_call_site (the GNU extension before it) with its callee (DW_AT_call_origin /
 * DW_AT_abstract_origin; an indirect call, DW_AT_call_target, has none) and where it returns
 * (DW_AT_call_return_pc / the GNU entry's DW_AT_low_pc) or, for a tail call, where it jumps
 * (DW_AT_call_pc). clang emits them at -O1 and above; at -O0 there are none.
 *
 * callSitesFor maps them onto a resolved PC list: caller and callee as function indices of the
 * source index, and the call site's own PC (the nearest PC below the return address, in the
 * caller's symbol). Reads only: sections and units of a loaded DebugInfo, bounds-checked as
 * everything over reader.ts.
 */
import * as C from './constants.js';
import { Reader } from './reader.js';
import { unitAt, subroutineInfo } from './functions.js';
import { SkipPlans, skipDie } from './plans.js';
import { upperBound } from './order.js';
import { formAddress, isAddrx, isUnitRef, readForm, type Sections, type Unit } from './units.js';
import { symbolFor, symbolName, type SymbolTable } from './symtab.js';
import { NONE, type SourceIndex } from '../contracts/source-index.js';
import type { CallSites } from '../contracts/callgraph.js';

export const DW_TAG_call_site = 0x48;
export const DW_TAG_GNU_call_site = 0x4109;
export const DW_AT_call_return_pc = 0x7d;
export const DW_AT_call_origin = 0x7f;
export const DW_AT_call_pc = 0x81;
export const DW_AT_call_tail_call = 0x82;
export const DW_AT_call_target = 0x83;
export const DW_AT_GNU_call_site_target = 0x2113;
export const DW_AT_GNU_tail_call = 0x2115;

/** One call site as the debug info states it. */
export interface RawCallSite {
  /** The return address (after the call), or the address of the call itself (DW_AT_call_pc); -1 when neither is given. */
  pc: number;
  /** pc is the address after the call instruction (DW_AT_call_return_pc, or a GNU entry's DW_AT_low_pc, tail calls' too). */
  after: boolean;
  tail: boolean;
  /** Absolute .debug_info offset of the callee's DIE; -1 for an indirect call or none named. */
  callee: number;
}

/** A unit's call sites, in DIE order. */
export function unitCallSites(sec: Sections, u: Unit): RawCallSite[] {
  const out: RawCallSite[] = [];
  const r = new Reader(sec.info, '.debug_info', u.dieOffset, u.end);
  const plans = new SkipPlans(u);
  while (r.pos < r.end) {
    const code = r.uleb();
    if (code === 0) continue;
    const a = u.abbrevs.get(code);
    if (!a) throw r.err(`unknown abbreviation code ${code}`);
    if (a.tag !== DW_TAG_call_site && a.tag !== DW_TAG_GNU_call_site) {
      skipDie(r, plans.get(code, a), u);
      continue;
    }
    sec.budget.chargeAttrs(a.attrs.length);
    let ret = -1, callPc = -1, tail = false, callee = -1, indirect = false;
    for (let i = 0; i < a.attrs.length; i++) {
      const at = a.attrs[i]!, form = a.forms[i]!;
      const v = readForm(r, form, u, a.implicit[i]!);
      const addr = () => (form === C.DW_FORM_addr || isAddrx(form) ? formAddress(sec, u, form, v) : -1);
      switch (at) {
        case DW_AT_call_return_pc: ret = addr(); break;
        case C.DW_AT_low_pc: if (a.tag === DW_TAG_GNU_call_site) ret = addr(); break;
        case DW_AT_call_pc: callPc = addr(); break;
        case DW_AT_call_tail_call: case DW_AT_GNU_tail_call: tail = v !== 0; break;
        case DW_AT_call_target: case DW_AT_GNU_call_site_target: indirect = true; break;
        case DW_AT_call_origin: case C.DW_AT_abstract_origin:
          if (isUnitRef(form)) callee = u.offset + v;
          else if (form === C.DW_FORM_ref_addr) callee = v;
          break;
      }
    }
    const useCall = callPc >= 0 && (tail || ret < 0);
    out.push({ pc: useCall ? callPc : ret, after: !useCall, tail, callee: indirect && callee < 0 ? -1 : callee });
  }
  return out;
}


/** What callSitesFor needs of a loaded DebugInfo (src/dwarf/resolve.ts). */
export interface CallSiteSource {
  readonly sec: Sections;
  readonly units: Unit[];
  readonly symbols: SymbolTable;
}

/**
 * Maps every call site of the debug info onto `pcs` (the PC list `index` was resolved from).
 * Null when no call site entry falls in instrumented code (an -O0 build: the only entries are
 * then those of code compiled apart with optimisation, such as the covd agent): no call graph.
 */
export function callSitesFor(info: CallSiteSource, pcs: BigUint64Array, index: Pick<SourceIndex, 'pcFunction'>): CallSites | null {
  const { sec, units, symbols } = info;
  const raw: RawCallSite[] = [];
  for (const u of units) for (const s of unitCallSites(sec, u)) raw.push(s);
  if (raw.length === 0) return null;
  // PC addresses ascending, with their indices.
  const n = pcs.length;
  const order = Array.from({ length: n }, (_, i) => i);
  const addr = Float64Array.from(pcs, (p) => Number(p));
  order.sort((x, y) => addr[x]! - addr[y]!);
  const sorted = Float64Array.from(order, (i) => addr[i]!);
  /** First sorted position with an address above a. */
  const upper = (a: number) => upperBound(sorted, a);
  // Callees: their DIE's own code address, else their name in the symbol table.
  let byName: Map<string, number> | undefined;
  const symbolByName = (name: string): number => {
    if (!byName) {
      byName = new Map();
      for (let i = 0; i < symbols.addr.length; i++) {
        const s = symbolName(symbols, i);
        if (s && !byName.has(s)) byName.set(s, i);
      }
    }
    return byName.get(name) ?? -1;
  };
  const calleeFn = new Map<number, number>();
  const fnOfDie = (die: number): number => {
    let f = calleeFn.get(die);
    if (f !== undefined) return f;
    f = NONE;
    const u = unitAt(units, die);
    if (u) {
      let low = -1;
      const r = new Reader(sec.info, '.debug_info', die, u.end);
      const a = u.abbrevs.get(r.uleb());
      if (a) {
        sec.budget.chargeAttrs(a.attrs.length);
        for (let i = 0; i < a.attrs.length; i++) {
          const form = a.forms[i]!;
          const v = readForm(r, form, u, a.implicit[i]!);
          if (a.attrs[i] === C.DW_AT_low_pc && (form === C.DW_FORM_addr || isAddrx(form))) low = formAddress(sec, u, form, v);
        }
      }
      let sym = low >= 0 ? symbolFor(symbols, low) : -1;
      if (low < 0) {
        const name = subroutineInfo(sec, units, u, die).name;
        sym = name ? symbolByName(name) : -1;
        if (sym >= 0) low = symbols.addr[sym]!;
      }
      if (low >= 0) {
        // The callee's first PC, when it is in the same symbol.
        const k = upper(low - 1);
        if (k < n && (sym < 0 || symbolFor(symbols, sorted[k]!) === sym)) f = index.pcFunction[order[k]!] ?? NONE;
      }
    }
    calleeFn.set(die, f);
    return f;
  };
  const caller: number[] = [], callee: number[] = [], pcIndex: number[] = [], tail: number[] = [];
  for (const s of raw) {
    if (s.pc < 0) continue;
    // The call instruction ends at the return address, or starts at DW_AT_call_pc.
    const at = s.after ? s.pc - 1 : s.pc;
    const k = upper(at) - 1;
    if (k < 0) continue;
    const sym = symbolFor(symbols, at);
    if (sym >= 0 && symbolFor(symbols, sorted[k]!) !== sym) continue; // no PC in the calling function
    const pc = order[k]!;
    const fn = index.pcFunction[pc] ?? NONE;
    if (fn === NONE) continue;
    caller.push(fn);
    callee.push(s.callee >= 0 ? fnOfDie(s.callee) : NONE);
    pcIndex.push(pc);
    tail.push(s.tail ? 1 : 0);
  }
  // Call sites only in uninstrumented code (the agent's, a runtime's): no call graph of the target.
  if (caller.length === 0) return null;
  return { caller: Uint32Array.from(caller), callee: Uint32Array.from(callee), pcIndex: Uint32Array.from(pcIndex), tail: Uint8Array.from(tail) };
}
