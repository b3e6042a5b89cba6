/**
 * Which unit covers an address, the way LLVM's DWARFDebugAranges decides: .debug_aranges sets
 * first, then the unit DIE's ranges for units not described there; overlaps go to the unit
 * with the lowest offset among those covering the address.
 */
import { Reader } from './reader.js';
import { dieRanges } from './ranges.js';
import { readUnitDie, type Sections, type Unit } from './units.js';
import { unitAt } from './functions.js';
import { kernelsOrTwins } from './kernels.js';
import { upperBound } from './order.js';

export interface UnitMap {
  low: Float64Array;
  high: Float64Array;
  unit: Int32Array;
}

export function buildUnitMap(sec: Sections, units: Unit[]): UnitMap {
  const { lows, highs, us } = unitRanges(sec, units);
  return disjointMap(lows, highs, us) ?? sweepMap(lows, highs, us);
}

/** Every unit's ranges, as found: .debug_aranges sets, then unit DIEs of units not described there. */
export function unitRanges(sec: Sections, units: Unit[]): { lows: number[]; highs: number[]; us: number[] } {
  const lows: number[] = [], highs: number[] = [], us: number[] = [];
  const add = (u: number, lo: number, hi: number): void => { if (lo < hi) { lows.push(lo); highs.push(hi); us.push(u); } };
  const described = new Set<number>();
  if (sec.aranges.length > 0) {
    const r = new Reader(sec.aranges, '.debug_aranges');
    while (r.remaining > 0) {
      let len = r.u32();
      let offSize = 4;
      if (len === 0xffffffff) { len = r.u64n(); offSize = 8; }
      const set = r.sub(len);
      set.u16(); // version
      const cuOff = set.uN(offSize);
      const addrSize = set.u8();
      const segSize = set.u8();
      if (addrSize !== 4 && addrSize !== 8) set.fail(`address size ${addrSize}`);
      // Tuples start at a multiple of their size from the set's start.
      const tuple = addrSize * 2 + segSize;
      const start = r.pos - len - (offSize === 8 ? 12 : 4);
      const rel = set.pos - start;
      set.skip((tuple - (rel % tuple)) % tuple);
      const u = unitAt(units, cuOff);
      if (u && u.offset === cuOff) described.add(u.index);
      while (set.remaining >= tuple) {
        set.skip(segSize);
        const a = set.uN(addrSize);
        const l = set.uN(addrSize);
        if (a === 0 && l === 0) break;
        if (u && u.offset === cuOff) add(u.index, a, a + l);
      }
    }
  }
  for (const u of units) {
    const pc = readUnitDie(sec, u);
    if (described.has(u.index)) continue;
    const ranges: number[] = [];
    dieRanges(sec, u, pc, ranges);
    for (let i = 0; i < ranges.length; i += 2) add(u.index, ranges[i]!, ranges[i + 1]!);
  }
  return { lows, highs, us };
}

/**
 * The usual case, no two ranges overlapping: the ranges in address order, a range joined to
 * the one before when it continues it in the same unit. This is what the sweep gives then,
 * without its per-endpoint objects (the sweep is a cold request's cost). Null on overlap.
 */
export function disjointMap(lows: number[], highs: number[], us: number[]): UnitMap | null {
  const n = lows.length;
  const order = kernelsOrTwins().orderValues(Float64Array.from(lows));
  const low = new Float64Array(n), high = new Float64Array(n), unit = new Int32Array(n);
  let k = 0;
  for (let j = 0; j < n; j++) {
    const i = order[j]!;
    if (k > 0 && lows[i]! < high[k - 1]!) return null;
    if (k > 0 && lows[i] === high[k - 1] && us[i] === unit[k - 1]) { high[k - 1] = highs[i]!; continue; }
    low[k] = lows[i]!; high[k] = highs[i]!; unit[k] = us[i]!;
    k++;
  }
  return { low: low.slice(0, k), high: high.slice(0, k), unit: unit.slice(0, k) };
}

/**
 * Any ranges: sweep over endpoints; between two endpoints the lowest-offset active unit owns
 * the range. Active units sit in a min-heap with lazy deletion, so hostile overlaps stay
 * O(n log n).
 */
export function sweepMap(lows: number[], highs: number[], us: number[]): UnitMap {
  const ends: { a: number; start: boolean; u: number }[] = [];
  for (let i = 0; i < lows.length; i++) { ends.push({ a: lows[i]!, start: true, u: us[i]! }); ends.push({ a: highs[i]!, start: false, u: us[i]! }); }
  ends.sort((x, y) => x.a - y.a);
  const active = new Map<number, number>();
  const heap = new MinHeap();
  const minActive = (): number => {
    while (heap.size > 0 && !active.has(heap.peek())) heap.pop();
    return heap.size > 0 ? heap.peek() : -1;
  };
  const outL: number[] = [], outH: number[] = [], outU: number[] = [];
  let prev = -1;
  for (const e of ends) {
    if (prev >= 0 && prev < e.a && active.size > 0) {
      const n = outL.length;
      if (n > 0 && outH[n - 1] === prev && active.has(outU[n - 1]!)) outH[n - 1] = e.a;
      else { outL.push(prev); outH.push(e.a); outU.push(minActive()); }
    }
    const c = active.get(e.u) ?? 0;
    if (e.start) {
      active.set(e.u, c + 1);
      if (c === 0) heap.push(e.u);
    } else if (c <= 1) active.delete(e.u);
    else active.set(e.u, c - 1);
    prev = e.a;
  }
  return { low: Float64Array.from(outL), high: Float64Array.from(outH), unit: Int32Array.from(outU) };
}

/** The unit index covering addr, or -1. */
export function unitFor(m: UnitMap, addr: number): number {
  const lo = upperBound(m.low, addr);
  if (lo === 0) return -1;
  return addr < m.high[lo - 1]! ? m.unit[lo - 1]! : -1;
}

class MinHeap {
  private a: number[] = [];
  get size(): number { return this.a.length; }
  peek(): number { return this.a[0]!; }
  push(v: number): void {
    const a = this.a;
    a.push(v);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): void {
    const a = this.a;
    const last = a.pop()!;
    if (a.length === 0) return;
    a[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < a.length && a[l]! < a[m]!) m = l;
      if (r < a.length && a[r]! < a[m]!) m = r;
      if (m === i) break;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}
