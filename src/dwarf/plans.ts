/**
 * Skip plans: how to step over a DIE of one abbreviation without decoding it, planned once per
 * abbreviation and unit shape. One builder (planOf) makes them for both walkers: the reader's
 * plans (SkipPlans, run by skipDie) and the WebAssembly DIE walk's (plansFor, run by kernels.c's
 * skip_dies, which can also capture the attributes of the DIEs a walk wants into rows).
 *
 * A plan is a list of steps in attribute order: attributes of fixed size (for the unit's address
 * and offset sizes and version) merge into one run of bytes (a step n >= 0), every other
 * attribute has a step of its own, whose encoding is the walker's.
 */
import * as C from './constants.js';
import type { Abbrev } from './abbrev.js';
import type { Reader } from './reader.js';
import { fixedFormSize, isUnitRef, readForm, type Unit } from './units.js';

/**
 * The one plan builder. own(i) gives attribute i's steps when the walker treats it specially
 * (undefined: it does not; null: no plan); variable(form) a variable-size form's step (null:
 * no plan). Returns the steps, or null.
 */
function planOf(a: Abbrev, u: Unit, own: ((i: number) => number[] | null | undefined) | null, variable: (form: number) => number | null): number[] | null {
  const plan: number[] = [];
  let run = 0;
  for (let i = 0; i < a.forms.length; i++) {
    const form = a.forms[i]!;
    const steps = own ? own(i) : undefined;
    if (steps !== undefined) {
      if (steps === null) return null;
      if (run > 0) plan.push(run);
      run = 0;
      for (const s of steps) plan.push(s);
      continue;
    }
    const n = fixedFormSize(form, u);
    if (n >= 0) { run += n; continue; }
    const step = variable(form);
    if (step === null) return null;
    if (run > 0) plan.push(run);
    run = 0;
    plan.push(step);
  }
  if (run > 0) plan.push(run);
  return plan;
}

// ---- The reader's plans

/** The reader's plan for skipping a DIE of this abbreviation: runs of fixed bytes (n >= 0) and variable forms (-form). */
function skipPlan(a: Abbrev, u: Unit): number[] {
  return planOf(a, u, null, (form) => -form)!;
}

/** A unit's skip plans by abbreviation code (one abbreviation per code in a unit): an array index, not a map lookup, per DIE. */
export class SkipPlans {
  private dense: (number[] | undefined)[] = [];
  private sparse = new Map<number, number[]>();
  constructor(private readonly u: Unit) {}
  get(code: number, a: Abbrev): number[] {
    let plan = code < 1 << 16 ? this.dense[code] : this.sparse.get(code);
    if (!plan) {
      plan = skipPlan(a, this.u);
      if (code < 1 << 16) this.dense[code] = plan; else this.sparse.set(code, plan);
    }
    return plan;
  }
}

const EXPRLOC = -C.DW_FORM_exprloc, UDATA = -C.DW_FORM_udata, SDATA = -C.DW_FORM_sdata;
const LOCLISTX = -C.DW_FORM_loclistx, RNGLISTX = -C.DW_FORM_rnglistx, STRX = -C.DW_FORM_strx, ADDRX = -C.DW_FORM_addrx;

/** Skips one DIE's attributes by its plan; the common variable-size forms are decoded in place. */
export function skipDie(r: Reader, plan: number[], u: Unit): void {
  for (let i = 0; i < plan.length; i++) {
    const p = plan[i]!;
    if (p >= 0) {
      if (p > r.end - r.pos) r.fail(`need ${p} bytes, ${r.end - r.pos} left`);
      r.pos += p;
    } else if (p === EXPRLOC) {
      r.skip(r.uleb());
    } else if (p === UDATA || p === SDATA || p === LOCLISTX || p === RNGLISTX || p === STRX || p === ADDRX) {
      // Any LEB128: skip to the byte without the continuation bit.
      const buf = r.buf;
      let pos = r.pos;
      while (pos < r.end && buf[pos]! & 0x80) pos++;
      if (pos >= r.end) r.fail('unterminated LEB128');
      r.pos = pos + 1;
    } else {
      readForm(r, -p, u, 0);
    }
  }
}

// ---- The kernel's plans (kernels.c numbers its steps so)

/** Slots of captured rows for the attributes a function walk wants (kernels.c writes form and value for each). */
export const SLOT = { low: 0, high: 1, ranges: 2, declFile: 3, declLine: 4, declaration: 5, ref: 6 } as const;
/** The 'inlines' walk's slots: a subroutine's ranges, call site and declaration (inlined.ts; resolve.ts takes subprograms from it). */
export const INLINE_SLOT = { low: 0, high: 1, ranges: 2, callFile: 3, callLine: 4, callColumn: 5, origin: 6, declFile: 7, declLine: 8, declaration: 9 } as const;
/** Added to a captured row's tag when its abbreviation names the DIE itself (functions.ts's readNames finds a name or declaration there). */
export const OWN_NAMES = 0x10000;
const DW_AT_call_column = 0x57, DW_AT_call_file = 0x58, DW_AT_call_line = 0x59;

/** Plan steps, as kernels.c numbers them. */
export const STEP_END = -1;
const STEP_LEB = -2, STEP_ULEB_BLOCK = -3, STEP_BLOCK1 = -4, STEP_BLOCK2 = -5, STEP_BLOCK4 = -6, STEP_CSTR = -7, STEP_CAPTURE = -8;
/** How kernels.c reads a captured value. */
const VK_U8 = 1, VK_U16 = 2, VK_U24 = 3, VK_U32 = 4, VK_U64 = 8, VK_ULEB = 9, VK_SLEB = 10, VK_CONST = 11;

/** The kernel step skipping one variable-size form, or 0 when the reader must read it. */
function variableStep(form: number): number {
  switch (form) {
    case C.DW_FORM_udata: case C.DW_FORM_sdata: case C.DW_FORM_ref_udata: case C.DW_FORM_strx: case C.DW_FORM_addrx:
    case C.DW_FORM_loclistx: case C.DW_FORM_rnglistx: case C.DW_FORM_GNU_addr_index: case C.DW_FORM_GNU_str_index:
      return STEP_LEB;
    case C.DW_FORM_exprloc: case C.DW_FORM_block: return STEP_ULEB_BLOCK;
    case C.DW_FORM_block1: return STEP_BLOCK1;
    case C.DW_FORM_block2: return STEP_BLOCK2;
    case C.DW_FORM_block4: return STEP_BLOCK4;
    case C.DW_FORM_string: return STEP_CSTR;
    default: return 0; // indirect, unknown: the reader decides
  }
}

/** The slot an attribute is captured into, or -1. */
function slotOf(at: number, walk: DieWalk): number {
  if (walk === 'inlines') {
    switch (at) {
      case C.DW_AT_low_pc: return INLINE_SLOT.low;
      case C.DW_AT_high_pc: return INLINE_SLOT.high;
      case C.DW_AT_ranges: return INLINE_SLOT.ranges;
      case DW_AT_call_file: return INLINE_SLOT.callFile;
      case DW_AT_call_line: return INLINE_SLOT.callLine;
      case DW_AT_call_column: return INLINE_SLOT.callColumn;
      case C.DW_AT_specification: case C.DW_AT_abstract_origin: return INLINE_SLOT.origin;
      case C.DW_AT_decl_file: return INLINE_SLOT.declFile;
      case C.DW_AT_decl_line: return INLINE_SLOT.declLine;
      case C.DW_AT_declaration: return INLINE_SLOT.declaration;
      default: return -1;
    }
  }
  switch (at) {
    case C.DW_AT_low_pc: return SLOT.low;
    case C.DW_AT_high_pc: return SLOT.high;
    case C.DW_AT_ranges: return SLOT.ranges;
    case C.DW_AT_decl_file: return SLOT.declFile;
    case C.DW_AT_decl_line: return SLOT.declLine;
    case C.DW_AT_declaration: return SLOT.declaration;
    case C.DW_AT_specification: case C.DW_AT_abstract_origin: return SLOT.ref;
    default: return -1;
  }
}

/** How kernels.c reads a form's value the way readForm does, or 0 when the reader must. */
function valueKind(form: number, u: Unit): number {
  const sized = (n: number) => (n === 1 ? VK_U8 : n === 2 ? VK_U16 : n === 4 ? VK_U32 : n === 8 ? VK_U64 : 0);
  switch (form) {
    case C.DW_FORM_addr: return sized(u.addrSize);
    case C.DW_FORM_data1: case C.DW_FORM_ref1: case C.DW_FORM_flag: case C.DW_FORM_strx1: case C.DW_FORM_addrx1: return VK_U8;
    case C.DW_FORM_data2: case C.DW_FORM_ref2: case C.DW_FORM_strx2: case C.DW_FORM_addrx2: return VK_U16;
    case C.DW_FORM_strx3: case C.DW_FORM_addrx3: return VK_U24;
    case C.DW_FORM_data4: case C.DW_FORM_ref4: case C.DW_FORM_ref_sup4: case C.DW_FORM_strx4: case C.DW_FORM_addrx4: return VK_U32;
    case C.DW_FORM_data8: case C.DW_FORM_ref8: case C.DW_FORM_ref_sig8: case C.DW_FORM_ref_sup8: return VK_U64;
    case C.DW_FORM_sdata: return VK_SLEB;
    case C.DW_FORM_udata: case C.DW_FORM_ref_udata: case C.DW_FORM_strx: case C.DW_FORM_addrx:
    case C.DW_FORM_loclistx: case C.DW_FORM_rnglistx: case C.DW_FORM_GNU_addr_index: case C.DW_FORM_GNU_str_index:
      return VK_ULEB;
    case C.DW_FORM_strp: case C.DW_FORM_line_strp: case C.DW_FORM_sec_offset: case C.DW_FORM_strp_sup:
    case C.DW_FORM_GNU_ref_alt: case C.DW_FORM_GNU_strp_alt:
      return sized(u.offSize);
    case C.DW_FORM_ref_addr: return sized(u.version <= 2 ? u.addrSize : u.offSize);
    case C.DW_FORM_flag_present: case C.DW_FORM_implicit_const: return VK_CONST;
    default: return 0;
  }
}

/** The kernel's steps for one abbreviation (after its header), or null when the reader must read its DIEs. */
function kernelSteps(a: Abbrev, u: Unit, capture: boolean, walk: DieWalk): number[] | null {
  const plan = planOf(a, u, capture ? (i) => captureSteps(a, u, i, walk) : null, (form) => variableStep(form) || null);
  // kernels.c holds runs in 32-bit integers.
  return plan && plan.every((s) => s <= 0x7fffffff) ? plan : null;
}

/** A captured attribute's steps (slot, form, value kind, implicit value); undefined when not captured, null when the reader must read it. */
function captureSteps(a: Abbrev, u: Unit, i: number, walk: DieWalk): number[] | null | undefined {
  const slot = slotOf(a.attrs[i]!, walk);
  if (slot < 0) return undefined;
  const form = a.forms[i]!;
  const kind = valueKind(form, u);
  const implicit = form === C.DW_FORM_flag_present ? 1 : form === C.DW_FORM_implicit_const ? a.implicit[i]! : 0;
  // Origins only count in reference forms (functions.ts keeps the last such one).
  if (kind === 0 || implicit !== (implicit | 0) || (slot === SLOT.ref && !isUnitRef(form) && form !== C.DW_FORM_ref_addr)) return null;
  return [STEP_CAPTURE, slot, form, kind, implicit];
}

/**
 * The DIE walks: functions.ts's 'functions' stops at subprograms, 'functions-capture' reads
 * them into rows, 'subroutines' stops at subprograms and inlined subroutines; inlined.ts's
 * 'inlines' reads subprograms and inlined subroutines into rows, with their parents.
 */
export type DieWalk = 'functions' | 'functions-capture' | 'subroutines' | 'inlines';

const isSubprogram = (tag: number) => tag === C.DW_TAG_subprogram;
const isSubroutine = (tag: number) => tag === C.DW_TAG_subprogram || tag === C.DW_TAG_inlined_subroutine;
const WALKS: Record<DieWalk, { wanted: (tag: number) => boolean; capture: (tag: number) => boolean }> = {
  'functions': { wanted: isSubprogram, capture: () => false },
  'functions-capture': { wanted: isSubprogram, capture: isSubprogram },
  'subroutines': { wanted: isSubroutine, capture: () => false },
  'inlines': { wanted: isSubroutine, capture: isSubroutine },
};

/** Whether a walk reads DIEs of this tag itself (or, capturing, has the kernel read them). */
export function walkWants(walk: DieWalk, tag: number): boolean {
  return WALKS[walk].wanted(tag);
}

/** Whether DIEs of this abbreviation have a name, linkage name or declaration file of their own. */
export function namesItself(a: Abbrev): boolean {
  return a.attrs.some((at) => at === C.DW_AT_name || at === C.DW_AT_linkage_name || at === C.DW_AT_MIPS_linkage_name || at === C.DW_AT_decl_file);
}

/** Kernel plans by abbreviation table, unit shape and walk: units sharing a table build them once. */
const planCache = new WeakMap<object, Map<string, { plans: Int32Array; steps: Int32Array }>>();

export function plansFor(u: Unit, walk: DieWalk): { plans: Int32Array; steps: Int32Array } {
  let byKey = planCache.get(u.abbrevs);
  if (!byKey) { byKey = new Map(); planCache.set(u.abbrevs, byKey); }
  const key = `${walk} ${u.addrSize} ${u.offSize} ${u.version}`;
  let p = byKey.get(key);
  if (!p) { p = buildPlans(u, walk); byKey.set(key, p); }
  return p;
}

/** Plans for every dense abbreviation code of the unit whose tag is not wanted or is captured. */
function buildPlans(u: Unit, walk: DieWalk): { plans: Int32Array; steps: Int32Array } {
  const { wanted, capture } = WALKS[walk];
  const codes = u.abbrevs.denseCodes();
  const plans = new Int32Array(codes.length);
  const steps: number[] = [STEP_END]; // offset 0 means "no plan"
  for (let code = 1; code < codes.length; code++) {
    const a: Abbrev | undefined = codes[code];
    if (!a) continue;
    const take = capture(a.tag);
    if (wanted(a.tag) && !take) continue;
    const plan = kernelSteps(a, u, take, walk);
    if (!plan) continue;
    plans[code] = steps.length;
    // The tag goes into captured rows (inlined.ts tells subprograms from inlined subroutines by it).
    steps.push(a.hasChildren ? 1 : 0, take ? a.attrs.length + 1 : 0, take ? (a.tag | 0) + (walk === 'inlines' && namesItself(a) ? OWN_NAMES : 0) : 0);
    for (const step of plan) steps.push(step); // not a spread: a plan can be very long
    steps.push(STEP_END);
  }
  return { plans, steps: Int32Array.from(steps) };
}
