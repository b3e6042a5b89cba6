/**
 * The TypeScript twins of the WebAssembly kernels (kernels.ts): the same operations with the same
 * results, used where the kernels are off or missing (`COVD_DWARF_KERNELS=js`, no kernels.wasm)
 * and wherever a kernel declines its input. Callers take one object, `kernelsOrTwins()`, and
 * call it; which implementation runs is chosen there, once.
 */
import type { LineProgramInput, LineProgramOutput } from './kernels.js';
import { stableOrder, upperBound } from './order.js';

/** The reader's loops that have a WebAssembly kernel: one interface, two implementations. */
export interface KernelOps {
  /** Whether the WebAssembly kernels run (line look-ups without a row table need them). */
  readonly wasm: boolean;
  /** The sorted distinct addresses of pcs and each PC's index among them (at is null when pcs is strictly increasing). */
  sortPcs(pcs: BigUint64Array): { uniq: Float64Array; at: Uint32Array | null };
  /** The unit of every sorted address, from the unit map's low, high and unit arrays (-1 = none). */
  unitsFor(uniq: Float64Array, low: Float64Array, high: Float64Array, unit: Int32Array): Int32Array;
  /** The symbol naming every sorted address (symtab.ts's symbolFor rule; -1 = none). */
  symbolsFor(uniq: Float64Array, addr: Float64Array, size: Float64Array): Int32Array;
  /** For uniq[s..e): the innermost-starting span containing each address, as base + fn, into out. */
  spansFor(low: Float64Array, high: Float64Array, fn: Uint32Array, base: number, uniq: Float64Array, s: number, e: number, out: Int32Array): void;
  /** Runs [start, end) of this share's sorted addresses that are named alike. */
  nameRuns(unitOf: Int32Array, symOf: Int32Array, fnOf: Int32Array, shareK: number, shareN: number): Int32Array;
  /** The four per-address fields back in the caller's order. */
  gather(at: Uint32Array, f: Uint32Array, l: Uint32Array, c: Uint32Array, fn: Uint32Array): [Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>];
  /** Indices 0..count-1 of values ordered by value, equal values by index (order.ts's stableOrder). */
  orderValues(values: Float64Array, count?: number): Uint32Array;
  /**
   * inlined.ts's address map (LLVM's AddrDieMap) from the first n (low, high, node) triples of
   * tri, in tree order: each range laid over the ones before it. Sorted by key, with what the
   * insertions charge to the attribute budget (the caller charges it).
   */
  dieMap(tri: Float64Array, n: number): DieMap;
  /**
   * Runs a line-number program as far as it can; the reader (line.ts) goes on from where it
   * stopped, in the state it stopped in. Null: the reader runs all of it (always, for the twins).
   */
  lineProgram(p: LineProgramInput): LineProgramOutput | null;
  /** Line look-ups without a row table (kernels.ts lineLookup); null: the caller parses the table. */
  lineLookup(p: LineProgramInput, addrs: Float64Array, runStarts: Uint32Array): { file: Uint32Array; line: Uint32Array; col: Uint32Array } | null;
}

/** An address map: keys (range starts) ascending, each with its range's end and node. */
export interface DieMap { keys: Float64Array; highs: Float64Array; nodes: Int32Array; charge: number }

/** The twins: the reader alone. */
export const twins: KernelOps = {
  wasm: false,
  dieMap,
  sortPcs,
  unitsFor,
  symbolsFor,
  spansFor,
  nameRuns,
  gather,
  orderValues: stableOrder,
  lineProgram: () => null,
  lineLookup: () => null,
};

/** The sorted distinct addresses of pcs and each one's index among them (null: pcs is increasing). */
function sortPcs(pcs: BigUint64Array): { uniq: Float64Array; at: Uint32Array | null } {
  const addr = new Float64Array(pcs.length);
  const range = toNumbers(pcs, addr);
  return range.increasing ? { uniq: addr, at: null } : sortedUnique(addr, range.min, range.max);
}

/**
 * PCs as numbers into addr, read as two u32 halves: no BigInt per PC (exact below 2^53, all
 * user-space addresses). Returns whether they are strictly increasing, and their range.
 */
function toNumbers(pcs: BigUint64Array, addr: Float64Array): { increasing: boolean; min: number; max: number } {
  const n = pcs.length;
  const halves = new Uint32Array(pcs.buffer, pcs.byteOffset, n * 2);
  let increasing = true, prev = -1, min = Infinity, max = -Infinity;
  for (let i = 0; i < n; i++) {
    const a = halves[2 * i + 1]! * 0x1_0000_0000 + halves[2 * i]!;
    addr[i] = a;
    if (a <= prev) increasing = false;
    if (a < min) min = a;
    if (a > max) max = a;
    prev = a;
  }
  return { increasing, min, max };
}

/**
 * Sorted distinct addresses (each is resolved once, in address order) and, for every input
 * address, its index among them. When address offsets and input indices fit in 53 bits
 * together, one numeric sort of packed keys gives both (no comparator, no binary searches).
 */
function sortedUnique(addr: Float64Array, min: number, max: number): { uniq: Float64Array; at: Uint32Array } {
  const n = addr.length;
  const idxBits = Math.max(1, Math.ceil(Math.log2(n + 1)));
  if (n === 0 || idxBits > 26 || !(max - min < 2 ** (53 - idxBits))) {
    const uniq = sortedUniqueSlow(addr);
    return { uniq, at: positions(addr, uniq) };
  }
  const scale = 2 ** idxBits;
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = (addr[i]! - min) * scale + i;
  keys.sort();
  const uniq = new Float64Array(n), at = new Uint32Array(n);
  let m = 0, prev = -1;
  for (let j = 0; j < n; j++) {
    const i = keys[j]! % scale;
    const a = addr[i]!;
    if (a !== prev) { uniq[m++] = a; prev = a; }
    at[i] = m - 1;
  }
  return { uniq: uniq.subarray(0, m), at };
}

function sortedUniqueSlow(addr: Float64Array): Float64Array {
  let inOrder = true;
  for (let i = 1; i < addr.length && inOrder; i++) inOrder = addr[i - 1]! <= addr[i]!;
  // Input already in order: skip the sort.
  const sorted = inOrder ? addr.slice() : addr.slice().sort();
  let m = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[m++] = sorted[i]!;
  return sorted.subarray(0, m);
}

/** Index into uniq (the distinct values of addr) of every address (a merge when the input is sorted, else a binary search). */
function positions(addr: Float64Array, uniq: Float64Array): Uint32Array {
  const n = addr.length, m = uniq.length;
  const at = new Uint32Array(n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const a = addr[i]!;
    if (uniq[k] !== a) {
      if (k + 1 < m && uniq[k + 1] === a) k++;
      else k = upperBound(uniq, a, 0, m) - 1; // a is in uniq, once
    }
    at[i] = k;
  }
  return at;
}

/** The unit of every sorted address, walking the unit map alongside (-1 = none). */
function unitsFor(uniq: Float64Array, low: Float64Array, high: Float64Array, unit: Int32Array): Int32Array {
  const out = new Int32Array(uniq.length).fill(-1);
  const n = low.length;
  let j = 0;
  for (let k = 0; k < uniq.length; k++) {
    const a = uniq[k]!;
    while (j < n && high[j]! <= a) j++;
    if (j < n && low[j]! <= a) out[k] = unit[j]!;
  }
  return out;
}

/** The symbol naming every sorted address (symbolFor's rule), walking the symbols alongside. */
function symbolsFor(uniq: Float64Array, addr: Float64Array, size: Float64Array): Int32Array {
  const out = new Int32Array(uniq.length).fill(-1);
  const n = addr.length;
  let j = 0; // first symbol above the current address
  for (let k = 0; k < uniq.length; k++) {
    const a = uniq[k]!;
    while (j < n && addr[j]! <= a) j++;
    const i = j - 1;
    if (i >= 0 && (size[i] === 0 || a < addr[i]! + size[i]!)) out[k] = i;
  }
  return out;
}

/** For uniq[s..e): the innermost-starting span containing each address (global function index), spans sorted by low. */
function spansFor(low: Float64Array, high: Float64Array, fn: Uint32Array, base: number, uniq: Float64Array, s: number, e: number, out: Int32Array): void {
  const n = low.length;
  for (let k = s; k < e; k++) {
    const a = uniq[k]!;
    const lo = upperBound(low, a, 0, n);
    if (lo > 0 && a < high[lo - 1]!) out[k] = base + fn[lo - 1]!;
  }
}

/**
 * Runs [start, end) of this share's sorted addresses that are named alike: the same symbol and
 * subprogram. An address without a symbol is a run of its own (it is named by its own DIE).
 */
function nameRuns(unitOf: Int32Array, symOf: Int32Array, fnOf: Int32Array, shareK: number, shareN: number): Int32Array {
  const m = unitOf.length;
  const out = new Int32Array(2 * m);
  let n = 0;
  for (let k = 0; k < m;) {
    const ui = unitOf[k]!;
    if ((ui < 0 ? 0 : ui % shareN) !== shareK) { k++; continue; }
    const sym = symOf[k]!, fi = fnOf[k]!;
    let e = k + 1;
    if (sym >= 0) {
      while (e < m && symOf[e] === sym && fnOf[e] === fi) {
        const ue = unitOf[e]!;
        if ((ue < 0 ? 0 : ue % shareN) !== shareK) break;
        e++;
      }
    }
    out[n++] = k; out[n++] = e;
    k = e;
  }
  return out.subarray(0, n);
}

/** The four per-address fields back in the caller's order, in one pass. */
function gather(at: Uint32Array, f: Uint32Array, l: Uint32Array, c: Uint32Array, fn: Uint32Array): [Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>] {
  const n = at.length;
  const toF = new Uint32Array(n), toL = new Uint32Array(n), toC = new Uint32Array(n), toFn = new Uint32Array(n);
  for (let i = 0; i < at.length; i++) {
    const k = at[i]!;
    toF[i] = f[k]!; toL[i] = l[k]!; toC[i] = c[k]!; toFn[i] = fn[k]!;
  }
  return [toF, toL, toC, toFn];
}

/** Entries per block of dieMap's working map; kernels.c's MAP_BLOCK. */
const BLOCK = 64;

/**
 * dieMap: DWARFUnit::updateAddressDieMap's insertions, in blocks of at most BLOCK entries kept
 * in key order (ranges do not come in address order, so one flat array would move most of its
 * entries on every insertion); first[b] is block b's first key. kernels.c's die_map does the
 * same steps.
 */
function dieMap(tri: Float64Array, n: number): DieMap {
  const bk: number[][] = [[]], bh: number[][] = [[]], bn: number[][] = [[]], first: number[] = [-Infinity];
  let charge = 0;
  const locate = (x: number): [number, number] => {
    const b = Math.max(0, upperBound(first, x) - 1);
    return [b, upperBound(bk[b]!, x)];
  };
  const set = (key: number, high: number, node: number): void => {
    const [b, i] = locate(key);
    const keys = bk[b]!, highs = bh[b]!, nodes = bn[b]!;
    if (i > 0 && keys[i - 1] === key) { highs[i - 1] = high; nodes[i - 1] = node; return; }
    charge += (keys.length - i) >> 4;
    keys.splice(i, 0, key); highs.splice(i, 0, high); nodes.splice(i, 0, node);
    if (b > 0) first[b] = keys[0]!;
    if (keys.length > BLOCK) {
      const half = keys.length >> 1;
      bk.splice(b + 1, 0, keys.splice(half));
      bh.splice(b + 1, 0, highs.splice(half));
      bn.splice(b + 1, 0, nodes.splice(half));
      first.splice(b + 1, 0, bk[b + 1]![0]!);
    }
  };
  for (let t = 0; t < n; t++) {
    const low = tri[3 * t]!, high = tri[3 * t + 1]!, node = tri[3 * t + 2]!;
    // A range laid over the ones before it.
    const [b, i] = locate(low);
    if (i > 0 && low < bh[b]![i - 1]!) {
      const pKey = bk[b]![i - 1]!, pHigh = bh[b]![i - 1]!, pNode = bn[b]![i - 1]!;
      if (high < pHigh) set(high, pHigh, pNode);
      if (low > pKey) { const [b2, i2] = locate(pKey); bh[b2]![i2 - 1] = low; }
    }
    set(low, high, node);
  }
  let m = 0;
  for (const k of bk) m += k.length;
  const keys = new Float64Array(m), highs = new Float64Array(m), nodes = new Int32Array(m);
  for (let b = 0, at = 0; b < bk.length; b++) {
    keys.set(bk[b]!, at); highs.set(bh[b]!, at); nodes.set(bn[b]!, at);
    at += bk[b]!.length;
  }
  return { keys, highs, nodes, charge };
}
