/**
 * .debug_info units: headers, attribute forms, and the few DIE attributes we act on.
 * Values are read as plain numbers (offsets, indices, constants, addresses); strings are
 * resolved afterwards because DW_AT_str_offsets_base may follow a strx attribute.
 */
import * as C from './constants.js';
import { AbbrevTable, type Abbrev } from './abbrev.js';
import { corrupt } from './errors.js';
import { Reader, strAt } from './reader.js';

export interface Sections {
  info: Uint8Array;
  abbrev: Uint8Array;
  str: Uint8Array;
  lineStr: Uint8Array;
  line: Uint8Array;
  ranges: Uint8Array;
  rnglists: Uint8Array;
  strOffsets: Uint8Array;
  addr: Uint8Array;
  aranges: Uint8Array;
  /** Work left before input counts as hostile: lists and programs that many units point at. */
  budget: Budget;
}

/**
 * Units may share range lists and line programs, so a forged file could make every unit re-read
 * the same huge one. Reads are charged here; the allowance is a few times what the sections hold.
 */
export class Budget {
  constructor(public rangeEntries: number, public lineBytes: number, public attrs = Infinity) {}
  static forSections(s: { ranges: Uint8Array; rnglists: Uint8Array; line: Uint8Array; info: Uint8Array }): Budget {
    // Each range list entry is read about twice (unit map and functions); 2x the section bytes
    // (at least 2 bytes an entry) leaves room for that and for honest sharing.
    return new Budget(2 * (s.ranges.length + s.rnglists.length) + (1 << 16), 4 * s.line.length + (1 << 20), 16 * s.info.length + (1 << 20));
  }
  /** Attributes read one by one (zero-size forms cost no bytes, so bytes alone do not bound them). */
  chargeAttrs(n: number): void {
    this.attrs -= n;
    if (this.attrs < 0) throw corrupt('.debug_abbrev', 'abbreviations with far more attributes than the DIEs could justify');
  }
  chargeRanges(n: number): void {
    this.rangeEntries -= n;
    if (this.rangeEntries < 0) throw corrupt('.debug_ranges/.debug_rnglists', 'range lists re-read far more often than the sections could justify');
  }
  chargeLines(n: number): void {
    this.lineBytes -= n;
    if (this.lineBytes < 0) throw corrupt('.debug_line', 'line programs re-read far more often than the section could justify');
  }
}

export interface Unit {
  /** Index in DebugInfo.units. */
  index: number;
  offset: number;
  /** Exclusive end of the unit in .debug_info. */
  end: number;
  version: number;
  unitType: number;
  addrSize: number;
  offSize: number;
  abbrevs: AbbrevTable;
  /** Offset of the first (unit) DIE. */
  dieOffset: number;
  // From the unit DIE:
  tag: number;
  name: string;
  compDir: string;
  stmtList: number; // -1 = none
  lowPc: number;
  strOffsetsBase: number;
  addrBase: number;
  rnglistsBase: number;
  rangesBase: number;
}

/** Where the reader may be asked to go: units are at most this many (bounded by section size / 11 anyway). */
export function parseUnitHeaders(sec: Sections): Unit[] {
  const r = new Reader(sec.info, '.debug_info');
  const units: Unit[] = [];
  const abbrevCache = new Map<number, AbbrevTable>();
  while (r.remaining > 0) {
    const offset = r.pos;
    let len = r.u32();
    let offSize = 4;
    if (len === 0xffffffff) {
      len = r.u64n();
      offSize = 8;
    } else if (len >= 0xfffffff0) {
      r.fail(`reserved unit length 0x${len.toString(16)}`);
    }
    r.need(len);
    const end = r.pos + len;
    const version = r.u16();
    if (version < 2 || version > 5) r.fail(`unsupported DWARF version ${version}`);
    let unitType = C.DW_UT_compile;
    let addrSize: number;
    let abbrevOffset: number;
    if (version >= 5) {
      unitType = r.u8();
      addrSize = r.u8();
      abbrevOffset = r.uN(offSize);
      if (unitType === C.DW_UT_skeleton || unitType === C.DW_UT_split_compile) r.skip(8);
      else if (unitType === C.DW_UT_type || unitType === C.DW_UT_split_type) r.skip(8 + offSize);
    } else {
      abbrevOffset = r.uN(offSize);
      addrSize = r.u8();
    }
    if (addrSize !== 4 && addrSize !== 8) r.fail(`unsupported address size ${addrSize}`);
    if (r.pos > end) r.fail('unit header longer than the unit');
    let abbrevs = abbrevCache.get(abbrevOffset);
    if (!abbrevs) {
      abbrevs = AbbrevTable.parse(sec.abbrev, abbrevOffset);
      abbrevCache.set(abbrevOffset, abbrevs);
    }
    units.push({
      index: units.length, offset, end, version, unitType, addrSize, offSize, abbrevs, dieOffset: r.pos,
      tag: 0, name: '', compDir: '', stmtList: -1, lowPc: 0, strOffsetsBase: 0, addrBase: 0, rnglistsBase: 0, rangesBase: 0,
    });
    r.pos = end;
  }
  return units;
}

/** Byte size of a form in this unit, or -1 when it varies (strings, blocks, LEB128). */
export function fixedFormSize(form: number, u: Unit): number {
  switch (form) {
    case C.DW_FORM_flag_present: case C.DW_FORM_implicit_const: return 0;
    case C.DW_FORM_data1: case C.DW_FORM_ref1: case C.DW_FORM_flag: case C.DW_FORM_strx1: case C.DW_FORM_addrx1: return 1;
    case C.DW_FORM_data2: case C.DW_FORM_ref2: case C.DW_FORM_strx2: case C.DW_FORM_addrx2: return 2;
    case C.DW_FORM_strx3: case C.DW_FORM_addrx3: return 3;
    case C.DW_FORM_data4: case C.DW_FORM_ref4: case C.DW_FORM_ref_sup4: case C.DW_FORM_strx4: case C.DW_FORM_addrx4: return 4;
    case C.DW_FORM_data8: case C.DW_FORM_ref8: case C.DW_FORM_ref_sig8: case C.DW_FORM_ref_sup8: return 8;
    case C.DW_FORM_data16: return 16;
    case C.DW_FORM_addr: return u.addrSize;
    case C.DW_FORM_strp: case C.DW_FORM_line_strp: case C.DW_FORM_sec_offset: case C.DW_FORM_strp_sup:
    case C.DW_FORM_GNU_ref_alt: case C.DW_FORM_GNU_strp_alt: return u.offSize;
    case C.DW_FORM_ref_addr: return u.version <= 2 ? u.addrSize : u.offSize;
    default: return -1;
  }
}

/** Reads one attribute value as a number; the cursor ends after it. DW_FORM_string yields its offset. */
export function readForm(r: Reader, form: number, u: Unit, implicit: number): number {
  switch (form) {
    case C.DW_FORM_addr: return r.uN(u.addrSize);
    case C.DW_FORM_data1: case C.DW_FORM_ref1: case C.DW_FORM_flag: case C.DW_FORM_strx1: case C.DW_FORM_addrx1: return r.u8();
    case C.DW_FORM_data2: case C.DW_FORM_ref2: case C.DW_FORM_strx2: case C.DW_FORM_addrx2: return r.u16();
    case C.DW_FORM_strx3: case C.DW_FORM_addrx3: return r.u24();
    case C.DW_FORM_data4: case C.DW_FORM_ref4: case C.DW_FORM_ref_sup4: case C.DW_FORM_strx4: case C.DW_FORM_addrx4: return r.u32();
    case C.DW_FORM_data8: case C.DW_FORM_ref8: case C.DW_FORM_ref_sig8: case C.DW_FORM_ref_sup8: return r.u64n();
    case C.DW_FORM_data16: r.skip(16); return 0;
    case C.DW_FORM_sdata: return r.sleb();
    case C.DW_FORM_udata: case C.DW_FORM_ref_udata: case C.DW_FORM_strx: case C.DW_FORM_addrx:
    case C.DW_FORM_loclistx: case C.DW_FORM_rnglistx: case C.DW_FORM_GNU_addr_index: case C.DW_FORM_GNU_str_index:
      return r.uleb();
    case C.DW_FORM_strp: case C.DW_FORM_line_strp: case C.DW_FORM_sec_offset: case C.DW_FORM_strp_sup:
    case C.DW_FORM_GNU_ref_alt: case C.DW_FORM_GNU_strp_alt:
      return r.uN(u.offSize);
    case C.DW_FORM_ref_addr: return r.uN(u.version <= 2 ? u.addrSize : u.offSize);
    case C.DW_FORM_string: {
      const start = r.pos;
      const nul = r.buf.indexOf(0, start);
      if (nul < 0 || nul >= r.end) r.fail('unterminated DW_FORM_string');
      r.pos = nul + 1;
      return start;
    }
    case C.DW_FORM_block1: r.skip(r.u8()); return 0;
    case C.DW_FORM_block2: r.skip(r.u16()); return 0;
    case C.DW_FORM_block4: r.skip(r.u32()); return 0;
    case C.DW_FORM_block: case C.DW_FORM_exprloc: r.skip(r.uleb()); return 0;
    case C.DW_FORM_flag_present: return 1;
    case C.DW_FORM_implicit_const: return implicit;
    case C.DW_FORM_indirect: {
      const f = r.uleb();
      if (f === C.DW_FORM_indirect || f === C.DW_FORM_implicit_const) r.fail('DW_FORM_indirect to itself or implicit_const');
      return readForm(r, f, u, 0);
    }
    default: return r.fail(`unknown attribute form 0x${form.toString(16)}`);
  }
}

/** Resolves a string-class attribute read by readForm. */
export function formString(sec: Sections, u: Unit, form: number, v: number): string {
  switch (form) {
    case C.DW_FORM_string: return strAt(sec.info, v, '.debug_info');
    case C.DW_FORM_strp: return strAt(sec.str, v, '.debug_str');
    case C.DW_FORM_line_strp: return strAt(sec.lineStr, v, '.debug_line_str');
    case C.DW_FORM_strx: case C.DW_FORM_strx1: case C.DW_FORM_strx2: case C.DW_FORM_strx3: case C.DW_FORM_strx4:
    case C.DW_FORM_GNU_str_index: {
      const off = readSized(sec.strOffsets, u.strOffsetsBase + v * u.offSize, u.offSize, '.debug_str_offsets');
      return strAt(sec.str, off, '.debug_str');
    }
    case C.DW_FORM_GNU_strp_alt: case C.DW_FORM_strp_sup: return '';
    default: throw corrupt(`.debug_info unit 0x${u.offset.toString(16)}`, `form 0x${form.toString(16)} is not a string`);
  }
}

/** Resolves an address-class attribute (addr or addrx*) read by readForm. */
export function formAddress(sec: Sections, u: Unit, form: number, v: number): number {
  if (form === C.DW_FORM_addr) return v;
  if (isAddrx(form)) return addrIndex(sec, u, v);
  throw corrupt(`.debug_info unit 0x${u.offset.toString(16)}`, `form 0x${form.toString(16)} is not an address`);
}

export function isAddrx(form: number): boolean {
  return form === C.DW_FORM_addrx || form === C.DW_FORM_GNU_addr_index || (form >= C.DW_FORM_addrx1 && form <= C.DW_FORM_addrx4);
}

/** One DataView per section buffer, so indexed reads allocate nothing. */
const views = new WeakMap<Uint8Array, DataView>();
function viewOf(b: Uint8Array): DataView {
  let v = views.get(b);
  if (!v) { v = new DataView(b.buffer, b.byteOffset, b.byteLength); views.set(b, v); }
  return v;
}

/** Reads an unsigned value of size 4 or 8 at off, bounds-checked. */
function readSized(b: Uint8Array, off: number, size: number, section: string): number {
  if (!(off >= 0) || off + size > b.length) throw corrupt(section, `offset 0x${off.toString(16)} + ${size} outside section of ${b.length} bytes`);
  const v = viewOf(b);
  if (size === 4) return v.getUint32(off, true);
  if (size === 8) return v.getUint32(off, true) + v.getUint32(off + 4, true) * 0x1_0000_0000;
  throw corrupt(section, `unsupported size ${size}`);
}

export function addrIndex(sec: Sections, u: Unit, index: number): number {
  return readSized(sec.addr, u.addrBase + index * u.addrSize, u.addrSize, '.debug_addr');
}

/** True for forms whose value is an offset into .debug_info relative to the unit. */
export function isUnitRef(form: number): boolean {
  return (form >= C.DW_FORM_ref1 && form <= C.DW_FORM_ref_udata);
}

export function isConstant(form: number): boolean {
  return form === C.DW_FORM_data1 || form === C.DW_FORM_data2 || form === C.DW_FORM_data4 || form === C.DW_FORM_data8 ||
    form === C.DW_FORM_udata || form === C.DW_FORM_sdata || form === C.DW_FORM_implicit_const;
}

/** Fills the unit's fields from its first DIE (name, comp_dir, stmt_list, bases). */
export function readUnitDie(sec: Sections, u: Unit): { lowForm: number; low: number; highForm: number; high: number; rangesForm: number; ranges: number } {
  const r = new Reader(sec.info, '.debug_info', u.dieOffset, u.end);
  const code = r.uleb();
  const out = { lowForm: 0, low: 0, highForm: 0, high: 0, rangesForm: 0, ranges: 0 };
  if (code === 0) return out;
  const a = u.abbrevs.get(code);
  if (!a) throw r.err(`unknown abbreviation code ${code}`);
  u.tag = a.tag;
  sec.budget.chargeAttrs(a.attrs.length);
  let nameForm = 0, nameV = 0, dirForm = 0, dirV = 0;
  for (let i = 0; i < a.attrs.length; i++) {
    const at = a.attrs[i]!, form = a.forms[i]!;
    const v = readForm(r, form, u, a.implicit[i]!);
    switch (at) {
      case C.DW_AT_name: nameForm = form; nameV = v; break;
      case C.DW_AT_comp_dir: dirForm = form; dirV = v; break;
      case C.DW_AT_stmt_list: u.stmtList = v; break;
      case C.DW_AT_low_pc: out.lowForm = form; out.low = v; break;
      case C.DW_AT_high_pc: out.highForm = form; out.high = v; break;
      case C.DW_AT_ranges: out.rangesForm = form; out.ranges = v; break;
      case C.DW_AT_str_offsets_base: u.strOffsetsBase = v; break;
      case C.DW_AT_addr_base: case C.DW_AT_GNU_addr_base: u.addrBase = v; break;
      case C.DW_AT_rnglists_base: u.rnglistsBase = v; break;
      case C.DW_AT_GNU_ranges_base: u.rangesBase = v; break;
    }
  }
  // DWARF 5 without an explicit base: the first table after the section's header.
  if (u.version >= 5) {
    if (u.strOffsetsBase === 0 && sec.strOffsets.length >= 8) u.strOffsetsBase = u.offSize === 8 ? 16 : 8;
  }
  if (nameForm) u.name = formString(sec, u, nameForm, nameV);
  if (dirForm) u.compDir = formString(sec, u, dirForm, dirV);
  if (out.lowForm) u.lowPc = formAddress(sec, u, out.lowForm, out.low);
  return out;
}

export type { Abbrev };
