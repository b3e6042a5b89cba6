/**
 * Inlined-call chains for llvm-symbolizer's --inlines (its default): for an address, the
 * innermost subroutine DIE (DWARFUnit::getSubroutineForAddress, the same AddrDieMap as
 * functions.ts's SubroutineMap) and its enclosing DW_TAG_inlined_subroutine DIEs up to the first
 * DW_TAG_subprogram (DWARFUnit::getInlinedChainForAddress), each with its DW_AT_call_file,
 * DW_AT_call_line and DW_AT_call_column. Built per unit, only when asked for, by a walk of the
 * unit's whole DIE tree in TypeScript: parents must be exact, so no DIE is skipped unseen (the
 * WebAssembly DIE walk, which stops at every DIE with children here, was slower).
 */
import * as C from './constants.js';
import { dieRanges, type PcAttrs } from './ranges.js';
import { Reader } from './reader.js';
import { SkipPlans, skipDie } from './plans.js';
import { upperBound } from './order.js';
import { readForm, type Sections, type Unit } from './units.js';

const DW_AT_call_column = 0x57, DW_AT_call_file = 0x58, DW_AT_call_line = 0x59;

export class InlineTree {
  /** Per subroutine DIE in tree order: absolute offset, nearest subroutine ancestor (-1 none), whether a subprogram. */
  readonly die: number[] = [];
  readonly parent: number[] = [];
  readonly isSubprogram: boolean[] = [];
  /** DW_AT_call_* of each DIE (0 when absent, as DWARFDie::getCallerFrame reads them). */
  readonly callFile: number[] = [];
  readonly callLine: number[] = [];
  readonly callColumn: number[] = [];
  /**
   * The AddrDieMap: keys (range starts) in ascending order, each with its range's end and node,
   * kept in blocks of at most BLOCK entries (DIEs do not come in address order, so one flat
   * array would move most of its entries on every insertion). first[b] is block b's first key.
   */
  private bk: number[][] = [[]];
  private bh: number[][] = [[]];
  private bn: number[][] = [[]];
  private first: number[] = [-Infinity];

  constructor(private readonly sec: Sections, u: Unit) {
    const r = new Reader(sec.info, '.debug_info', u.dieOffset, u.end);
    const plans = new SkipPlans(u);
    // scope[d]: the nearest subroutine at or above the DIE at depth d whose children follow.
    const scope: number[] = [];
    let depth = 0;
    while (r.pos < r.end) {
      const at = r.pos;
      const code = r.uleb();
      if (code === 0) {
        if (--depth <= 0) break;
        continue;
      }
      const a = u.abbrevs.get(code);
      if (!a) throw r.err(`unknown abbreviation code ${code}`);
      const up = depth > 0 ? scope[depth - 1]! : -1;
      let mine = up;
      if (a.tag === C.DW_TAG_subprogram || a.tag === C.DW_TAG_inlined_subroutine) {
        sec.budget.chargeAttrs(a.attrs.length);
        const pc: PcAttrs = { lowForm: 0, low: 0, highForm: 0, high: 0, rangesForm: 0, ranges: 0 };
        let file = 0, line = 0, column = 0;
        for (let i = 0; i < a.attrs.length; i++) {
          const form = a.forms[i]!;
          const v = readForm(r, form, u, a.implicit[i]!);
          switch (a.attrs[i]) {
            case C.DW_AT_low_pc: pc.lowForm = form; pc.low = v; break;
            case C.DW_AT_high_pc: pc.highForm = form; pc.high = v; break;
            case C.DW_AT_ranges: pc.rangesForm = form; pc.ranges = v; break;
            case DW_AT_call_file: file = v; break;
            case DW_AT_call_line: line = v; break;
            case DW_AT_call_column: column = v; break;
          }
        }
        mine = this.die.length;
        this.die.push(at);
        this.parent.push(up);
        this.isSubprogram.push(a.tag === C.DW_TAG_subprogram);
        this.callFile.push(file); this.callLine.push(line); this.callColumn.push(column);
        if (pc.lowForm || pc.rangesForm) {
          const ranges: number[] = [];
          dieRanges(sec, u, pc, ranges);
          for (let k = 0; k < ranges.length; k += 2) if (ranges[k] !== ranges[k + 1]) this.insert(ranges[k]!, ranges[k + 1]!, mine);
        }
      } else {
        skipDie(r, plans.get(code, a), u);
      }
      if (a.hasChildren) scope[depth++] = mine;
      else if (depth === 0) break;
    }
  }

  /** The chain at addr, innermost first (node indices), or [] when no subroutine covers it. */
  chain(addr: number): number[] {
    const [b, i] = this.locate(addr);
    if (i === 0 || addr >= this.bh[b]![i - 1]!) return [];
    const out: number[] = [];
    for (let n = this.bn[b]![i - 1]!, hops = 0; n >= 0 && hops < 4096; n = this.parent[n]!, hops++) {
      out.push(n);
      if (this.isSubprogram[n]) break;
    }
    return out;
  }

  /** The innermost subroutine node at addr (chain(addr)[0]), or -1; no array built. */
  leaf(addr: number): number {
    const [b, i] = this.locate(addr);
    if (i === 0 || addr >= this.bh[b]![i - 1]!) return -1;
    return this.bn[b]![i - 1]!;
  }

  /** The outermost inlined node of node n's chain (the last before the subprogram; n itself when its parent is one). */
  outermostInlined(n: number): number {
    for (let hops = 0; hops < 4096; hops++) {
      const p = this.parent[n]!;
      if (p < 0 || this.isSubprogram[p]) return n;
      n = p;
    }
    return n;
  }

  /** The block of the last key at or below x, and the upper bound of x in it (0: no such key). */
  private locate(x: number): [number, number] {
    const first = this.first;
    const b = Math.max(0, upperBound(first, x) - 1);
    return [b, upperBound(this.bk[b]!, x)];
  }

  private set(key: number, high: number, node: number): void {
    const [b, i] = this.locate(key);
    const keys = this.bk[b]!, highs = this.bh[b]!, nodes = this.bn[b]!;
    if (i > 0 && keys[i - 1] === key) { highs[i - 1] = high; nodes[i - 1] = node; return; }
    this.sec.budget.chargeAttrs((keys.length - i) >> 4);
    keys.splice(i, 0, key); highs.splice(i, 0, high); nodes.splice(i, 0, node);
    if (b > 0) this.first[b] = keys[0]!;
    if (keys.length > BLOCK) {
      const half = keys.length >> 1;
      this.bk.splice(b + 1, 0, keys.splice(half));
      this.bh.splice(b + 1, 0, highs.splice(half));
      this.bn.splice(b + 1, 0, nodes.splice(half));
      this.first.splice(b + 1, 0, this.bk[b + 1]![0]!);
    }
  }

  /** DWARFUnit::updateAddressDieMap's insertion: a range laid over the ones before it. */
  private insert(low: number, high: number, node: number): void {
    const [b, i] = this.locate(low);
    if (i > 0 && low < this.bh[b]![i - 1]!) {
      const pKey = this.bk[b]![i - 1]!, pHigh = this.bh[b]![i - 1]!, pNode = this.bn[b]![i - 1]!;
      if (high < pHigh) this.set(high, pHigh, pNode);
      if (low > pKey) { const [b2, i2] = this.locate(pKey); this.bh[b2]![i2 - 1] = low; }
    }
    this.set(low, high, node);
  }
}

const BLOCK = 512;
