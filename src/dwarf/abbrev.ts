/** .debug_abbrev: abbreviation tables, parsed once per offset and shared by the units that use it. */
import { DW_FORM_implicit_const } from './constants.js';
import { Reader } from './reader.js';

export interface Abbrev {
  code: number;
  tag: number;
  hasChildren: boolean;
  /** attrs[i], forms[i], implicitConst[i] (only for DW_FORM_implicit_const). */
  attrs: number[];
  forms: number[];
  implicit: number[];
}

export class AbbrevTable {
  /** Dense codes (the usual 1..n) go in an array; anything else in a map. */
  private dense: (Abbrev | undefined)[] = [];
  private sparse = new Map<number, Abbrev>();

  get(code: number): Abbrev | undefined {
    return code < this.dense.length ? this.dense[code] : this.sparse.get(code);
  }

  /** The abbreviations with dense codes, indexed by code (holes are undefined). */
  denseCodes(): readonly (Abbrev | undefined)[] {
    return this.dense;
  }

  static parse(section: Uint8Array, offset: number): AbbrevTable {
    const r = new Reader(section, '.debug_abbrev');
    r.seek(offset);
    const t = new AbbrevTable();
    for (;;) {
      const code = r.uleb();
      if (code === 0) break;
      const tag = r.uleb();
      const hasChildren = r.u8() !== 0;
      const a: Abbrev = { code, tag, hasChildren, attrs: [], forms: [], implicit: [] };
      for (;;) {
        const at = r.uleb();
        const form = r.uleb();
        if (at === 0 && form === 0) break;
        a.attrs.push(at);
        a.forms.push(form);
        a.implicit.push(form === DW_FORM_implicit_const ? r.sleb() : 0);
      }
      if (code < 1 << 16 && code <= t.dense.length + 1024) t.dense[code] = a;
      else t.sparse.set(code, a);
      // Every entry consumes at least 4 bytes, so the loop is bounded by the section size.
    }
    return t;
  }
}
