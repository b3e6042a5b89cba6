/**
 * Address ranges of a DIE: low_pc/high_pc (high as address or as length) or DW_AT_ranges through
 * .debug_ranges (DWARF 2-4) or .debug_rnglists (DWARF 5, sec_offset or rnglistx).
 */
import * as C from './constants.js';
import { Reader } from './reader.js';
import { addrIndex, formAddress, isConstant, type Sections, type Unit } from './units.js';

/** Flat [low0, high0, low1, high1, ...]. */
export type Ranges = number[];

export interface PcAttrs {
  lowForm: number; low: number;
  highForm: number; high: number;
  rangesForm: number; ranges: number;
}

/** LLVM's DWARFDie::getAddressRanges: a low/high pair wins over DW_AT_ranges. */
export function dieRanges(sec: Sections, u: Unit, a: PcAttrs, out: Ranges): void {
  if (a.lowForm && a.highForm) {
    const low = formAddress(sec, u, a.lowForm, a.low);
    const high = isConstant(a.highForm) ? low + a.high : formAddress(sec, u, a.highForm, a.high);
    if (high >= low) out.push(low, high);
    return;
  }
  if (a.rangesForm) {
    if (u.version >= 5) rnglist(sec, u, a.rangesForm, a.ranges, out);
    else rangeList(sec, u, a.ranges + u.rangesBase, out);
  }
}

function rangeList(sec: Sections, u: Unit, offset: number, out: Ranges): void {
  const r = new Reader(sec.ranges, '.debug_ranges');
  r.seek(offset);
  const max = u.addrSize === 8 ? 2 ** 64 - 1 : 0xffffffff;
  let base = u.lowPc;
  for (;;) {
    const start = r.uN(u.addrSize);
    const end = r.uN(u.addrSize);
    if (start === 0 && end === 0) return;
    sec.budget.chargeRanges(1);
    if (start === max) {
      base = end;
      continue;
    }
    out.push(base + start, base + end);
  }
}

function rnglist(sec: Sections, u: Unit, form: number, v: number, out: Ranges): void {
  const r = new Reader(sec.rnglists, '.debug_rnglists');
  if (form === C.DW_FORM_rnglistx) {
    r.seek(u.rnglistsBase + v * u.offSize);
    r.seek(u.rnglistsBase + r.uN(u.offSize));
  } else {
    r.seek(v);
  }
  let base = u.lowPc;
  for (;;) {
    const kind = r.u8();
    sec.budget.chargeRanges(1);
    switch (kind) {
      case C.DW_RLE_end_of_list: return;
      case C.DW_RLE_base_addressx: base = addrIndex(sec, u, r.uleb()); break;
      case C.DW_RLE_startx_endx: { const s = addrIndex(sec, u, r.uleb()); const e = addrIndex(sec, u, r.uleb()); out.push(s, e); break; }
      case C.DW_RLE_startx_length: { const s = addrIndex(sec, u, r.uleb()); out.push(s, s + r.uleb()); break; }
      case C.DW_RLE_offset_pair: { const s = r.uleb(); const e = r.uleb(); out.push(base + s, base + e); break; }
      case C.DW_RLE_base_address: base = r.uN(u.addrSize); break;
      case C.DW_RLE_start_end: { const s = r.uN(u.addrSize); out.push(s, r.uN(u.addrSize)); break; }
      case C.DW_RLE_start_length: { const s = r.uN(u.addrSize); out.push(s, s + r.uleb()); break; }
      default: r.fail(`unknown range list entry kind ${kind}`);
    }
  }
}
