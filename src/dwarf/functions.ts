/**
 * Functions of a unit: every DW_TAG_subprogram with code (low/high or ranges), named the way
 * llvm-symbolizer names them (linkage name, else name, following DW_AT_specification and
 * DW_AT_abstract_origin, also across units), with the declaration's file and line.
 */
import * as C from './constants.js';
import { Reader } from './reader.js';
import { dieRanges, type PcAttrs } from './ranges.js';
import { DieWalker, ROW_F64S, ROW_RANGE } from './kernels.js';
import { SkipPlans, skipDie, SLOT, walkWants, type DieWalk } from './plans.js';
import { upperBound } from './order.js';
import { formString, isUnitRef, readForm, type Abbrev, type Sections, type Unit } from './units.js';

export interface FunctionInfo {
  name: string;
  /** Unit whose line table declFile indexes (the unit of the DIE that had decl_file). */
  declUnit: number;
  declFile: number; // -1 = none
  declLine: number;
  ranges: number[];
}

interface DieNames {
  linkage: string | null;
  name: string | null;
  declFile: number;
  declLine: number;
  ref: number; // absolute offset of specification/abstract_origin, -1 = none
}

/** Finds the unit containing an absolute .debug_info offset. */
export function unitAt(units: Unit[], off: number): Unit | undefined {
  const u = units[upperBound(endsOf(units), off)];
  return u && u.offset <= off ? u : undefined;
}

/** Each unit's end offset, by unit list (built once per list, which parseUnitHeaders never changes). */
const unitEnds = new WeakMap<Unit[], Float64Array>();
function endsOf(units: Unit[]): Float64Array {
  let ends = unitEnds.get(units);
  if (!ends || ends.length !== units.length) { ends = Float64Array.from(units, (u) => u.end); unitEnds.set(units, ends); }
  return ends;
}

function readNames(sec: Sections, u: Unit, r: Reader, code: number, names = true): DieNames {
  const a = u.abbrevs.get(code);
  if (!a) throw r.err(`unknown abbreviation code ${code}`);
  sec.budget.chargeAttrs(a.attrs.length);
  const out: DieNames = { linkage: null, name: null, declFile: -1, declLine: 0, ref: -1 };
  for (let i = 0; i < a.attrs.length; i++) {
    const at = a.attrs[i]!, form = a.forms[i]!;
    const v = readForm(r, form, u, a.implicit[i]!);
    switch (at) {
      case C.DW_AT_linkage_name: case C.DW_AT_MIPS_linkage_name: if (names) out.linkage = formString(sec, u, form, v); break;
      case C.DW_AT_name: if (names) out.name = formString(sec, u, form, v); break;
      case C.DW_AT_decl_file: out.declFile = v; break;
      case C.DW_AT_decl_line: out.declLine = v; break;
      case C.DW_AT_specification: case C.DW_AT_abstract_origin:
        if (isUnitRef(form)) out.ref = u.offset + v;
        else if (form === C.DW_FORM_ref_addr) out.ref = v;
        break;
    }
  }
  return out;
}

/**
 * Follows specification/abstract_origin (at most 16 hops, so cycles end) to fill in what is
 * missing. Without names, only the declaration is looked for (f.name stays '').
 */
function completeNames(sec: Sections, units: Unit[], u: Unit, n: DieNames, f: FunctionInfo, names = true): void {
  let linkage = n.linkage, name = n.name;
  if (n.declFile >= 0) { f.declFile = n.declFile; f.declLine = n.declLine; f.declUnit = u.index; }
  let ref = n.ref;
  for (let hops = 0; ref >= 0 && hops < 16 && ((names && linkage === null) || f.declFile < 0); hops++) {
    const ru = unitAt(units, ref);
    if (!ru) break;
    const r = new Reader(sec.info, '.debug_info', ref, ru.end);
    const m = readNames(sec, ru, r, r.uleb(), names);
    linkage ??= m.linkage;
    name ??= m.name;
    if (f.declFile < 0 && m.declFile >= 0) { f.declFile = m.declFile; f.declLine = m.declLine; f.declUnit = ru.index; }
    ref = m.ref;
  }
  f.name = linkage ?? name ?? '';
}

/**
 * Walks u's DIEs in tree order. DIEs of the tags the walk wants go to visit, with the reader
 * just past the abbreviation code and the DIE's offset; the others are skipped, in WebAssembly
 * when the kernels are on. A capturing walk's kernel reads subprograms itself and hands them to
 * onRows (rows of ROW_F64S, in tree order) before any DIE after them is visited.
 */
function walkDies(sec: Sections, u: Unit, walk: DieWalk, visit: (r: Reader, a: Abbrev, at: number) => void,
  onRows?: (rows: Float64Array, n: number) => void): void {
  const r = new Reader(sec.info, '.debug_info', u.dieOffset, u.end);
  const plans = new SkipPlans(u);
  // Only a capturing walk reads addresses (addrx through .debug_addr).
  const fast = DieWalker.forUnit(sec.info, u, walk, walk === 'functions-capture' ? sec.addr : undefined);
  let depth = 0;
  while (r.pos < r.end) {
    if (fast) {
      const ended = fast.skip(r.pos, depth);
      if (fast.captured > 0) onRows!(fast.rows, fast.captured);
      if (ended) break;
      r.pos = fast.pos; depth = fast.depth;
      if (r.pos >= r.end) break;
    }
    const at = r.pos;
    const code = r.uleb();
    if (code === 0) {
      if (--depth <= 0) break;
      continue;
    }
    const a = u.abbrevs.get(code);
    if (!a) throw r.err(`unknown abbreviation code ${code}`);
    if (walkWants(walk, a.tag)) visit(r, a, at);
    else skipDie(r, plans.get(code, a), u);
    if (a.hasChildren) depth++;
    else if (depth === 0) break; // a unit DIE without children
  }
}

/**
 * Walks the unit's DIEs and returns its functions with code. Without names, only ranges and
 * declarations are found (the resolver names functions from the symbol table): no string is
 * decoded, and the kernel reads the subprograms' attributes.
 */
export function unitFunctions(sec: Sections, units: Unit[], u: Unit, names = true): FunctionInfo[] {
  const out: FunctionInfo[] = [];
  /** known: the range the kernel read from low_pc/high_pc ([] when empty), or null to read it here. */
  const add = (pc: PcAttrs, n: DieNames, declaration: boolean, known: number[] | null = null): void => {
    if (declaration || !(pc.lowForm || pc.rangesForm)) return;
    const ranges: number[] = known ?? [];
    if (!known) dieRanges(sec, u, pc, ranges);
    if (ranges.length > 0) {
      const f: FunctionInfo = { name: '', declUnit: u.index, declFile: -1, declLine: 0, ranges };
      completeNames(sec, units, u, n, f, names);
      out.push(f);
    }
  };
  // Slot k of a captured row is at o + 2 + 2k (form) and o + 3 + 2k (value).
  const LOW = 2 + 2 * SLOT.low, HIGH = 2 + 2 * SLOT.high, RANGES = 2 + 2 * SLOT.ranges, FILE = 2 + 2 * SLOT.declFile;
  const LINE = 2 + 2 * SLOT.declLine, DECL = 2 + 2 * SLOT.declaration, REF = 2 + 2 * SLOT.ref;
  const onRows = (rows: Float64Array, count: number): void => {
    for (let i = 0, o = 0; i < count; i++, o += ROW_F64S) {
      sec.budget.chargeAttrs(rows[o + 1]!);
      const pc: PcAttrs = {
        lowForm: rows[o + LOW]!, low: rows[o + LOW + 1]!, highForm: rows[o + HIGH]!, high: rows[o + HIGH + 1]!,
        rangesForm: rows[o + RANGES]!, ranges: rows[o + RANGES + 1]!,
      };
      const n: DieNames = {
        linkage: null, name: null, ref: -1,
        declFile: rows[o + FILE] ? rows[o + FILE + 1]! : -1, declLine: rows[o + LINE] ? rows[o + LINE + 1]! : 0,
      };
      const refForm = rows[o + REF]!;
      if (refForm) n.ref = isUnitRef(refForm) ? u.offset + rows[o + REF + 1]! : rows[o + REF + 1]!;
      const range = rows[o + ROW_RANGE];
      const known = range === 1 ? [rows[o + ROW_RANGE + 1]!, rows[o + ROW_RANGE + 2]!] : range === 2 ? [] : null;
      add(pc, n, rows[o + DECL] ? rows[o + DECL + 1]! !== 0 : false, known);
    }
  };
  walkDies(sec, u, names ? 'functions' : 'functions-capture', (r, a) => {
    sec.budget.chargeAttrs(a.attrs.length);
    const pc: PcAttrs = { lowForm: 0, low: 0, highForm: 0, high: 0, rangesForm: 0, ranges: 0 };
    const n: DieNames = { linkage: null, name: null, declFile: -1, declLine: 0, ref: -1 };
    let declaration = false;
    for (let i = 0; i < a.attrs.length; i++) {
      const at = a.attrs[i]!, form = a.forms[i]!;
      const v = readForm(r, form, u, a.implicit[i]!);
      switch (at) {
        case C.DW_AT_low_pc: pc.lowForm = form; pc.low = v; break;
        case C.DW_AT_high_pc: pc.highForm = form; pc.high = v; break;
        case C.DW_AT_ranges: pc.rangesForm = form; pc.ranges = v; break;
        case C.DW_AT_linkage_name: case C.DW_AT_MIPS_linkage_name: if (names) n.linkage = formString(sec, u, form, v); break;
        case C.DW_AT_name: if (names) n.name = formString(sec, u, form, v); break;
        case C.DW_AT_decl_file: n.declFile = v; break;
        case C.DW_AT_decl_line: n.declLine = v; break;
        case C.DW_AT_declaration: declaration = v !== 0; break;
        case C.DW_AT_specification: case C.DW_AT_abstract_origin:
          if (isUnitRef(form)) n.ref = u.offset + v;
          else if (form === C.DW_FORM_ref_addr) n.ref = v;
          break;
      }
    }
    add(pc, n, declaration);
  }, onRows);
  return out;
}

/**
 * A subroutine DIE (at absolute offset die of unit u) named as llvm-symbolizer names it
 * (DWARFDie::getName with linkage names, through specification and abstract_origin), with its
 * declaration; no ranges.
 */
export function subroutineInfo(sec: Sections, units: Unit[], u: Unit, die: number): FunctionInfo {
  const r = new Reader(sec.info, '.debug_info', die, u.end);
  const n = readNames(sec, u, r, r.uleb());
  const f: FunctionInfo = { name: '', declUnit: u.index, declFile: -1, declLine: 0, ranges: [] };
  completeNames(sec, units, u, n, f);
  return f;
}

/**
 * subroutineInfo of a DIE of unit u that names nothing itself (no name, linkage name or
 * declaration file: plans.ts's namesItself), whose specification or abstract_origin is ref:
 * what it finds depends on ref alone, so the DIE itself is not read again.
 */
export function namedThrough(sec: Sections, units: Unit[], u: Unit, ref: number): FunctionInfo {
  const f: FunctionInfo = { name: '', declUnit: u.index, declFile: -1, declLine: 0, ranges: [] };
  completeNames(sec, units, u, { linkage: null, name: null, declFile: -1, declLine: 0, ref }, f);
  return f;
}

/**
 * Completes a subprogram's declaration (f, unit u's, with none of its own) through its
 * specification or abstract_origin ref, as unitFunctions does without names.
 */
export function declThrough(sec: Sections, units: Unit[], u: Unit, ref: number, f: FunctionInfo): void {
  completeNames(sec, units, u, { linkage: null, name: null, declFile: -1, declLine: 0, ref }, f, false);
}

/**
 * LLVM's AddrDieMap for one unit: every subroutine DIE (subprogram or inlined_subroutine) in
 * tree order, each range laid over the ones before it, so a lookup finds the innermost frame.
 * llvm-symbolizer names an address from it when no symbol covers the address. Built lazily:
 * with a symbol table that covers the code it is never needed.
 */
export class SubroutineMap {
  private keys: number[] = [];
  private highs: number[] = [];
  private dies: number[] = [];
  private infos = new Map<number, FunctionInfo>();

  constructor(private readonly sec: Sections, private readonly units: Unit[], private readonly u: Unit) {
    walkDies(sec, u, 'subroutines', (r, a, at) => {
      sec.budget.chargeAttrs(a.attrs.length);
      const pc: PcAttrs = { lowForm: 0, low: 0, highForm: 0, high: 0, rangesForm: 0, ranges: 0 };
      for (let i = 0; i < a.attrs.length; i++) {
        const form = a.forms[i]!;
        const v = readForm(r, form, u, a.implicit[i]!);
        switch (a.attrs[i]) {
          case C.DW_AT_low_pc: pc.lowForm = form; pc.low = v; break;
          case C.DW_AT_high_pc: pc.highForm = form; pc.high = v; break;
          case C.DW_AT_ranges: pc.rangesForm = form; pc.ranges = v; break;
        }
      }
      if (pc.lowForm || pc.rangesForm) {
        const ranges: number[] = [];
        dieRanges(sec, u, pc, ranges);
        for (let k = 0; k < ranges.length; k += 2) if (ranges[k] !== ranges[k + 1]) this.insert(ranges[k]!, ranges[k + 1]!, at);
      }
    });
  }

  /** upper_bound: the first index whose key is above x. */
  private upper(x: number): number {
    return upperBound(this.keys, x);
  }

  private set(key: number, high: number, die: number): void {
    const i = this.upper(key);
    if (i > 0 && this.keys[i - 1] === key) { this.highs[i - 1] = high; this.dies[i - 1] = die; return; }
    // Splicing costs the entries it moves; charge them so a forged tree cannot go quadratic.
    this.sec.budget.chargeAttrs((this.keys.length - i) >> 4);
    this.keys.splice(i, 0, key);
    this.highs.splice(i, 0, high);
    this.dies.splice(i, 0, die);
  }

  /** DWARFUnit::updateAddressDieMap's insertion, step by step. */
  private insert(low: number, high: number, die: number): void {
    const b = this.upper(low);
    if (b > 0 && low < this.highs[b - 1]!) {
      const p = b - 1, pKey = this.keys[p]!, pHigh = this.highs[p]!, pDie = this.dies[p]!;
      if (high < pHigh) this.set(high, pHigh, pDie);
      if (low > pKey) this.highs[this.upper(pKey) - 1] = low;
    }
    this.set(low, high, die);
  }

  /** The innermost subroutine at addr, named and with its declaration, or null. */
  lookup(addr: number): FunctionInfo | null {
    const i = this.upper(addr);
    if (i === 0 || addr >= this.highs[i - 1]!) return null;
    const die = this.dies[i - 1]!;
    let f = this.infos.get(die);
    if (!f) {
      const r = new Reader(this.sec.info, '.debug_info', die, this.u.end);
      const n = readNames(this.sec, this.u, r, r.uleb());
      f = { name: '', declUnit: this.u.index, declFile: -1, declLine: 0, ranges: [] };
      completeNames(this.sec, this.units, this.u, n, f);
      this.infos.set(die, f);
    }
    return f;
  }
}
