/**
 * The WebAssembly kernels (kernels.c), for the loops that are most of a cold request's time
 * when V8 interprets them: sorting a request's PCs and ordering addresses, the line-number state
 * machine and its look-ups, the DIE walk (skipping DIEs, reading subprograms into rows, and for
 * inlined chains subroutines into node records with their parents and ranges), the address map
 * of those ranges (inlined.ts), and the walks of sorted addresses over units, spans and symbols
 * (resolve.ts, order.ts).
 *
 * Each kernel takes only the easy path and stops where input is odd; the TypeScript reader
 * (line.ts, functions.ts, resolve.ts) goes on from exactly that point with the same state. So
 * the kernels change speed, never results, budget charges or errors. Without kernels.wasm (built by scripts/build-kernels.ts
 * with clang-14 and wasm-ld-14), or with `COVD_DWARF_KERNELS=js`, the reader runs alone.
 *
 * The reader calls them through kernelsOrTwins(): one KernelOps object, these kernels (each
 * operation falling back to its TypeScript twin where the kernel declines) or the twins alone
 * (twins.ts). The DIE walk's plans come from plans.ts, which builds the reader's too.
 *
 * One module instance per thread; calls are synchronous and each lays its buffers out from the
 * heap base again, so a buffer is valid only until the next call (DieWalker re-copies its unit
 * when another call came between).
 */
import { readFileSync } from 'node:fs';
import type { Unit } from './units.js';
import { plansFor, STEP_END, type DieWalk } from './plans.js';
import { twins, type DieMap, type KernelOps } from './twins.js';

/** The parts of the WebAssembly API used here (the project's lib settings do not declare it). */
interface WasmMemory { readonly buffer: ArrayBuffer; grow(pages: number): number }
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Exports {
  memory: WasmMemory;
  __heap_base: { value: number };
  line_params(): number;
  line_state(): number;
  line_program(): void;
  die_params(): number;
  skip_dies(): void;
  sort_params(): number;
  sort_pcs(): void;
  lookup_params(): number;
  line_lookup(): void;
  units_for(uniq: number, m: number, low: number, high: number, unit: number, n: number, out: number): void;
  symbols_for(uniq: number, m: number, addr: number, size: number, n: number, out: number): void;
  spans_for(low: number, high: number, fn: number, n: number, base: number, uniq: number, m: number, out: number): void;
  name_runs(unitOf: number, symOf: number, fnOf: number, m: number, shareK: number, shareN: number, out: number): number;
  gather(at: number, n: number, from: number, to: number): void;
  order_values(v: number, n: number, a: number, b: number, out: number): number;
  map_params(): number;
  die_map(): void;
}

type Typed = Float64Array | Int32Array | Uint32Array;

/** Field offsets of kernels.c's LineParams (after three 256-entry tables). */
const LP = (() => {
  const u32 = (i: number) => 256 * 8 + 256 * 4 + 256 + 8 + i * 4;
  return {
    addrStep: 0, lineStep: 256 * 8, stdLens: 256 * 12, constAddPc: 256 * 13,
    opcodeBase: u32(0), lineRange: u32(1), minInst: u32(2), prog: u32(3), progLen: u32(4),
    rowAddr: u32(5), rowFile: u32(6), rowLine: u32(7), rowCol: u32(8), rowCap: u32(9),
    seqLow: u32(10), seqHigh: u32(11), seqFirst: u32(12), seqLast: u32(13), seqCap: u32(14),
    countOnly: u32(15), rows: u32(16), seqs: u32(17), stop: u32(18),
  };
})();
/** kernels.c's LineState: address f64, file, line, column u32, seq_empty i32, seq_low f64, seq_first u32. */
const LS = { address: 0, file: 8, line: 12, column: 16, seqEmpty: 20, seqLow: 24, seqFirst: 32 };
/** kernels.c's DieParams, all 32-bit. */
const DP = {
  plans: 0, nCodes: 4, steps: 8, base: 12, pos: 16, end: 20, depth: 24, done: 28, rows: 32, rowCap: 36, nRows: 40, addr: 44, addrLen: 48, addrSize: 52, addrBase: 56,
  scope: 64, scopeCap: 68, nextNode: 72, lowWater: 76,
  rng: 80, rngLen: 84, version: 88, offSize: 92, rnglistsBase: 96, rangesBase: 104, lowPc: 112, rangeBudget: 120, tri: 128, triCap: 132, nTri: 136, unitOffset: 144,
};
/**
 * Captured DIEs per kernel call, and the row layout (f64s): offset, attribute count, (form,
 * value) per slot, then at ROW_RANGE the low_pc/high_pc range when the kernel could read it:
 * 0 = left to the reader, 1 = [low, high) follows, 2 = empty. With scopes tracked (the
 * 'inlines' walk) the kernel compacts them into node records (NODE_F64S).
 */
const ROW_CAP = 4096;
export const ROW_RANGE = 22;
export const ROW_F64S = 25;
/** With scopes tracked, rows become node records of this many f64s (inlined.ts reads them). */
export const NODE_F64S = 12;
/** Tree depth the kernel keeps scopes for; deeper DIEs are walked by the reader. */
const SCOPE_CAP = 1024;
/** (low, high, node) triples of the 'inlines' walk per kernel call. */
const TRI_CAP = 16384;

/** kernels.c's LookupParams, all 32-bit. */
const LK = { addrs: 0, count: 4, outFile: 8, outLine: 12, outCol: 16, scratch: 20, resets: 24, nResets: 28 };
/** kernels.c's MapParams: 32-bit fields, then the charge (f64); and the size of one MapBlock. */
const MP = { tri: 0, n: 4, blocks: 8, blockCap: 12, order: 16, first: 20, outKeys: 24, outHighs: 28, outNodes: 32, outCap: 36, outN: 40, ok: 44, charge: 48 };
const MAP_BLOCK_BYTES = 65 * 20 + 4;
/** kernels.c's SortParams, all 32-bit. */
const SP = { pcs: 0, n: 4, uniq: 8, at: 12, tmp: 16, m: 20, increasing: 24, ok: 28 };


/** .debug_addr and the unit's base and address size, so the DIE walk can read addrx forms. */
interface DebugAddr { bytes: Uint8Array; addrBase: number; addrSize: number }
/** The range-list section for the unit's version, and the unit's fields ranges.ts reads lists with. */
interface UnitRanges { bytes: Uint8Array; version: number; offSize: number; rnglistsBase: number; rangesBase: number; lowPc: number; unitOffset: number }

/** lineLookup's file index for an address that no row covers. */
export const NO_ROW = 0xffffffff;

export interface LineProgramInput {
  buf: Uint8Array;
  /** The program's bytes: buf[start, end). */
  start: number;
  end: number;
  addrStep: Float64Array;
  lineStep: Int32Array;
  stdLens: number[];
  constAddPc: number;
  opcodeBase: number;
  lineRange: number;
  minInst: number;
}

/** What the state machine produced, and where (and in what state) the reader takes over. */
export interface LineProgramOutput {
  rowAddr: Float64Array; rowFile: Uint32Array; rowLine: Uint32Array; rowCol: Uint32Array;
  seqLow: Float64Array; seqHigh: Float64Array; seqFirst: Uint32Array; seqLast: Uint32Array;
  /** Position in buf to go on from (end when the kernel ran to the end). */
  pos: number;
  address: number; file: number; line: number; column: number;
  seqEmpty: boolean; seqLow0: number; seqFirst0: number;
}

class Kernels {
  private readonly x: Exports;
  private readonly heap: number;
  /** Bumped by every call that lays out the heap, so a DieWalker knows its copy was overwritten. */
  epoch = 0;
  /** A section kept in the heap across calls (a unit walk's .debug_addr); layouts start after it. */
  private pinned: { bytes: Uint8Array; more: Uint8Array | null; at: number; moreAt: number; len: number } | null = null;
  /** How often each kernel ran, and stopped early (tests check the kernels do the work). */
  readonly stats = { linePrograms: 0, lineStops: 0, dieSkips: 0 };
  /** These kernels as the reader calls them (kernelsOrTwins): each operation falls back to its twin. */
  readonly ops: KernelOps = new WasmOps(this);

  constructor(module: object) {
    this.x = new wasm.Instance(module, {}).exports as unknown as Exports;
    this.heap = (Number(this.x.__heap_base.value) + 15) & ~15;
    // Each export's first call from JavaScript sets up its entry; do that now, on no data,
    // rather than in a request.
    this.sortPcs(new BigUint64Array(0));
    this.orderValues(new Float64Array(0));
    const none = new Float64Array(0), nothing = new Int32Array(0);
    this.unitsFor(none, none, none, nothing);
    this.symbolsFor(none, none, none);
    this.spansFor(none, none, new Uint32Array(0), 0, none, 0, 0, nothing);
    this.nameRuns(nothing, nothing, nothing, 0, 1);
    this.gather(new Uint32Array(0), new Uint32Array(0), new Uint32Array(0), new Uint32Array(0), new Uint32Array(0));
    const empty = new Uint8Array(0);
    this.lineLookup({ buf: empty, start: 0, end: 0, addrStep: new Float64Array(256), lineStep: new Int32Array(256), stdLens: [], constAddPc: 0, opcodeBase: 13, lineRange: 14, minInst: 1 }, none, new Uint32Array(0));
    this.layoutDies(empty, 0, 0, new Int32Array(1), Int32Array.of(STEP_END), null, 0);
    this.skipDies(0, 0);
    this.stats.linePrograms = 0; this.stats.lineStops = 0; this.stats.dieSkips = 0;
  }

  /** Where a call's buffers start: after the pinned section. */
  private base(): number { return align(this.heap + (this.pinned?.len ?? 0), 16); }

  /**
   * Keeps bytes (and more, a second section, when given) in the heap, copied once while the same
   * sections stay pinned; their addresses, or -1.
   */
  private pin(bytes: Uint8Array, more: Uint8Array | null = null): [number, number] {
    const p = this.pinned;
    if (p?.bytes === bytes && (more === null || p.more === more)) return [p.at, more ? p.moreAt : -1];
    this.pinned = null;
    const moreAt = align(this.heap + bytes.length, 8), len = moreAt - this.heap + (more?.length ?? 0);
    if (!this.reserve(this.heap + len)) return [-1, -1];
    new Uint8Array(this.x.memory.buffer, this.heap, bytes.length).set(bytes);
    if (more) new Uint8Array(this.x.memory.buffer, moreAt, more.length).set(more);
    this.pinned = { bytes, more, at: this.heap, moreAt, len };
    this.epoch++;
    return [this.heap, more ? moreAt : -1];
  }

  /** Makes the memory at least `bytes` long; false when it cannot grow. */
  private reserve(bytes: number): boolean {
    const mem = this.x.memory;
    const have = mem.buffer.byteLength;
    if (bytes <= have) return true;
    if (bytes > 2 ** 31) return false;
    try {
      mem.grow(Math.ceil((bytes - have) / 65536));
      return true;
    } catch {
      return false;
    }
  }

  private dv(): DataView { return new DataView(this.x.memory.buffer); }

  memoryBytes(): number { return this.x.memory.buffer.byteLength; }

  /** Runs the line-number program into the heap; null when the kernel cannot start it. */
  private runLineProgram(p: LineProgramInput): { rowAddr: number; rowFile: number; rowLine: number; rowCol: number; seqLow: number; seqHigh: number; seqFirst: number; seqLast: number; rows: number; seqs: number; stop: number; end: number } | null {
    const len = p.end - p.start;
    if (p.opcodeBase > 256 || p.minInst > 255) return null;
    const prog = this.base();
    if (!this.reserve(prog + len)) return null;
    this.epoch++;
    new Uint8Array(this.x.memory.buffer, prog, len).set(p.buf.subarray(p.start, p.end));
    const base = this.x.line_params();
    let dv = this.dv();
    const mem0 = this.x.memory.buffer;
    new Float64Array(mem0, base + LP.addrStep, 256).set(p.addrStep);
    new Int32Array(mem0, base + LP.lineStep, 256).set(p.lineStep);
    const lens = new Uint8Array(mem0, base + LP.stdLens, 256);
    lens.fill(0);
    for (let i = 0; i < p.stdLens.length && i < 256; i++) lens[i] = Math.min(255, p.stdLens[i]!);
    dv.setFloat64(base + LP.constAddPc, p.constAddPc, true);
    const set = (off: number, v: number) => dv.setUint32(base + off, v, true);
    const get = (off: number) => dv.getUint32(base + off, true);
    set(LP.opcodeBase, p.opcodeBase); set(LP.lineRange, p.lineRange); set(LP.minInst, p.minInst);
    set(LP.prog, prog); set(LP.progLen, len);
    const st = this.x.line_state();
    const run = (countOnly: boolean) => {
      set(LP.countOnly, countOnly ? 1 : 0); set(LP.rows, 0); set(LP.seqs, 0);
      dv.setFloat64(st + LS.address, 0, true);
      dv.setUint32(st + LS.file, 1, true); dv.setUint32(st + LS.line, 1, true); dv.setUint32(st + LS.column, 0, true);
      dv.setInt32(st + LS.seqEmpty, 1, true); dv.setFloat64(st + LS.seqLow, 0, true); dv.setUint32(st + LS.seqFirst, 0, true);
      this.x.line_program();
    };
    let rowCap = 0, seqCap = 0, rowAddr = 0, rowFile = 0, rowLine = 0, rowCol = 0, seqLow = 0, seqHigh = 0, seqFirst = 0, seqLast = 0, end = 0;
    const layout = (rows: number, seqs: number): boolean => {
      rowCap = rows; seqCap = seqs;
      rowAddr = align(prog + len, 8); rowFile = rowAddr + rowCap * 8; rowLine = rowFile + rowCap * 4; rowCol = rowLine + rowCap * 4;
      seqLow = align(rowCol + rowCap * 4, 8); seqHigh = seqLow + seqCap * 8; seqFirst = seqHigh + seqCap * 8; seqLast = seqFirst + seqCap * 4;
      end = seqLast + seqCap * 4;
      if (!this.reserve(end)) return false;
      dv = this.dv();
      set(LP.rowAddr, rowAddr); set(LP.rowFile, rowFile); set(LP.rowLine, rowLine); set(LP.rowCol, rowCol); set(LP.rowCap, rowCap);
      set(LP.seqLow, seqLow); set(LP.seqHigh, seqHigh); set(LP.seqFirst, seqFirst); set(LP.seqLast, seqLast); set(LP.seqCap, seqCap);
      return true;
    };
    // Compilers emit 4 to 6 bytes a row: arrays for one row per 3 bytes almost always suffice.
    // When they do not, a counting pass sizes them exactly and the program runs again.
    if (!layout(Math.ceil(len / 3) + 16, Math.ceil(len / 8) + 16)) return null;
    run(false);
    if (get(LP.stop) !== 0 && (get(LP.rows) === rowCap || get(LP.seqs) === seqCap)) {
      run(true);
      if (!layout(get(LP.rows) + 1, get(LP.seqs) + 1)) return null;
      run(false);
    }
    this.stats.linePrograms++;
    const stop = get(LP.stop);
    if (stop !== 0) this.stats.lineStops++;
    return { rowAddr, rowFile, rowLine, rowCol, seqLow, seqHigh, seqFirst, seqLast, rows: get(LP.rows), seqs: get(LP.seqs), stop, end };
  }

  /** Runs the line-number program; null when the kernel cannot run it (the reader then does it all). */
  lineProgram(p: LineProgramInput): LineProgramOutput | null {
    const r = this.runLineProgram(p);
    if (!r) return null;
    const mem = this.x.memory.buffer, dv = this.dv(), st = this.x.line_state();
    const { rows, seqs } = r;
    // Copies: the heap is reused by the next call.
    return {
      rowAddr: new Float64Array(mem, r.rowAddr, rows).slice(), rowFile: new Uint32Array(mem, r.rowFile, rows).slice(),
      rowLine: new Uint32Array(mem, r.rowLine, rows).slice(), rowCol: new Uint32Array(mem, r.rowCol, rows).slice(),
      seqLow: new Float64Array(mem, r.seqLow, seqs).slice(), seqHigh: new Float64Array(mem, r.seqHigh, seqs).slice(),
      seqFirst: new Uint32Array(mem, r.seqFirst, seqs).slice(), seqLast: new Uint32Array(mem, r.seqLast, seqs).slice(),
      pos: r.stop === 0 ? p.end : p.start + r.stop - 1,
      address: dv.getFloat64(st + LS.address, true), file: dv.getUint32(st + LS.file, true),
      line: dv.getUint32(st + LS.line, true), column: dv.getUint32(st + LS.column, true),
      seqEmpty: dv.getInt32(st + LS.seqEmpty, true) !== 0, seqLow0: dv.getFloat64(st + LS.seqLow, true),
      seqFirst0: dv.getUint32(st + LS.seqFirst, true),
    };
  }

  /**
   * Runs the program and looks up addrs (ascending; runs of addresses start at the indices in
   * runStarts, where the look-up forgets its last sequence as lookupRows does) without building
   * rows in JavaScript: each address's row file index (NO_ROW when it has no row), line and
   * column. Null when the kernel did not run the whole program (the caller parses the table
   * with the reader).
   */
  lineLookup(p: LineProgramInput, addrs: Float64Array, runStarts: Uint32Array): { file: Uint32Array; line: Uint32Array; col: Uint32Array } | null {
    const r = this.runLineProgram(p);
    if (!r || r.stop !== 0) return null;
    const count = addrs.length;
    const addrsAt = align(r.end, 8), outFile = addrsAt + count * 8, outLine = outFile + count * 4, outCol = outLine + count * 4;
    const resets = align(outCol + count * 4, 8), scratch = align(resets + runStarts.length * 4, 8);
    if (!this.reserve(scratch + r.seqs * 40)) return null;
    const mem = this.x.memory.buffer;
    new Float64Array(mem, addrsAt, count).set(addrs);
    new Uint32Array(mem, resets, runStarts.length).set(runStarts);
    const lp = this.x.lookup_params(), dv = this.dv();
    dv.setUint32(lp + LK.addrs, addrsAt, true); dv.setUint32(lp + LK.count, count, true);
    dv.setUint32(lp + LK.outFile, outFile, true); dv.setUint32(lp + LK.outLine, outLine, true); dv.setUint32(lp + LK.outCol, outCol, true);
    dv.setUint32(lp + LK.scratch, scratch, true);
    dv.setUint32(lp + LK.resets, resets, true); dv.setUint32(lp + LK.nResets, runStarts.length, true);
    this.x.line_lookup();
    return {
      file: new Uint32Array(mem, outFile, count).slice(), line: new Uint32Array(mem, outLine, count).slice(), col: new Uint32Array(mem, outCol, count).slice(),
    };
  }

  /**
   * The sorted distinct addresses of pcs and each PC's index among them (at is null when pcs
   * is strictly increasing: uniq is then pcs itself). Null when left to the caller: addresses
   * at or above 2^53 or spread over more than 4 GiB.
   */
  sortPcs(pcs: BigUint64Array): { uniq: Float64Array; at: Uint32Array | null } | null {
    const n = pcs.length;
    // The PCs' own 8 bytes each become the first (key, index) pair buffer; tmp is the second.
    const pcsAt = align(this.base(), 8), uniqAt = pcsAt + n * 8, atAt = uniqAt + n * 8, tmpAt = align(atAt + n * 4, 8);
    if (!this.reserve(tmpAt + n * 8)) return null;
    this.epoch++;
    const mem = this.x.memory.buffer;
    new BigUint64Array(mem, pcsAt, n).set(pcs);
    const sp = this.x.sort_params(), dv = this.dv();
    dv.setUint32(sp + SP.pcs, pcsAt, true); dv.setUint32(sp + SP.n, n, true);
    dv.setUint32(sp + SP.uniq, uniqAt, true); dv.setUint32(sp + SP.at, atAt, true); dv.setUint32(sp + SP.tmp, tmpAt, true);
    this.x.sort_pcs();
    if (dv.getUint32(sp + SP.ok, true) === 0) return null;
    const m = dv.getUint32(sp + SP.m, true);
    const increasing = dv.getUint32(sp + SP.increasing, true) !== 0;
    return { uniq: new Float64Array(mem, uniqAt, m).slice(), at: increasing ? null : new Uint32Array(mem, atAt, n).slice() };
  }

  /**
   * Copies arrays in (8-aligned, from the heap base) and makes room for outputs of the given
   * byte sizes after them; returns their addresses, or null when memory is short.
   */
  private stage(inputs: Typed[], outputs: number[]): number[] | null {
    let at = align(this.base(), 8);
    const places: number[] = [];
    for (const a of inputs) { places.push(at); at = align(at + a.byteLength, 8); }
    for (const bytes of outputs) { places.push(at); at = align(at + bytes, 8); }
    if (!this.reserve(at)) return null;
    this.epoch++;
    const mem = this.x.memory.buffer;
    inputs.forEach((a, i) => new Uint8Array(mem, places[i]!, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)));
    return places;
  }

  /** order.ts's stableOrder for address-like values (null: left to the caller). */
  orderValues(values: Float64Array): Uint32Array | null {
    const n = values.length, p = this.stage([values], [n * 8, n * 8, n * 4]);
    if (!p) return null;
    if (this.x.order_values(p[0]!, n, p[1]!, p[2]!, p[3]!) === 0) return null;
    return new Uint32Array(this.x.memory.buffer, p[3]!, n).slice();
  }

  /** resolve.ts's unitsFor. */
  unitsFor(uniq: Float64Array, low: Float64Array, high: Float64Array, unit: Int32Array): Int32Array | null {
    const m = uniq.length, p = this.stage([uniq, low, high, unit], [m * 4]);
    if (!p) return null;
    this.x.units_for(p[0]!, m, p[1]!, p[2]!, p[3]!, low.length, p[4]!);
    return new Int32Array(this.x.memory.buffer, p[4]!, m).slice();
  }

  /** resolve.ts's symbolsFor. */
  symbolsFor(uniq: Float64Array, addr: Float64Array, size: Float64Array): Int32Array | null {
    const m = uniq.length, p = this.stage([uniq, addr, size], [m * 4]);
    if (!p) return null;
    this.x.symbols_for(p[0]!, m, p[1]!, p[2]!, addr.length, p[3]!);
    return new Int32Array(this.x.memory.buffer, p[3]!, m).slice();
  }

  /** resolve.ts's spansFor over uniq[s, e), writing into out[s, e). */
  spansFor(low: Float64Array, high: Float64Array, fn: Uint32Array, base: number, uniq: Float64Array, s: number, e: number, out: Int32Array): boolean {
    const m = e - s, p = this.stage([low, high, fn, uniq.subarray(s, e), out.subarray(s, e)], []);
    if (!p) return false;
    this.x.spans_for(p[0]!, p[1]!, p[2]!, low.length, base, p[3]!, m, p[4]!);
    out.set(new Int32Array(this.x.memory.buffer, p[4]!, m), s);
    return true;
  }

  /** resolve.ts's nameRuns. */
  nameRuns(unitOf: Int32Array, symOf: Int32Array, fnOf: Int32Array, shareK: number, shareN: number): Int32Array | null {
    if (!(shareN >= 1)) return null;
    const m = unitOf.length, p = this.stage([unitOf, symOf, fnOf], [m * 8]);
    if (!p) return null;
    const n = this.x.name_runs(p[0]!, p[1]!, p[2]!, m, shareK, shareN, p[3]!);
    return new Int32Array(this.x.memory.buffer, p[3]!, n).slice();
  }

  /** resolve.ts's gather: the four fields in the caller's order, one field at a time (less memory). */
  gather(at: Uint32Array, f: Uint32Array, l: Uint32Array, c: Uint32Array, fn: Uint32Array): [Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>] | null {
    const n = at.length, out: Uint32Array<ArrayBuffer>[] = [];
    for (const field of [f, l, c, fn]) {
      const p = this.stage([at, field], [n * 4]);
      if (!p) return null;
      this.x.gather(p[0]!, n, p[1]!, p[2]!);
      out.push(new Uint32Array(this.x.memory.buffer, p[2]!, n).slice());
    }
    return [out[0]!, out[1]!, out[2]!, out[3]!];
  }

  /** twins.ts's dieMap over the first n (low, high, node) triples of tri; null: left to the twin. */
  dieMap(tri: Float64Array, n: number): DieMap | null {
    // Blocks split at 65 entries into halves of 32 or more; a triple adds at most two entries.
    const blockCap = Math.ceil((2 * n) / 32) + 2, outCap = 2 * n + 1;
    const triAt = align(this.base(), 8), blocks = align(triAt + n * 24, 8), order = blocks + blockCap * MAP_BLOCK_BYTES;
    const first = align(order + blockCap * 4, 8), outKeys = first + blockCap * 8, outHighs = outKeys + outCap * 8, outNodes = outHighs + outCap * 8;
    if (!this.reserve(outNodes + outCap * 4)) return null;
    this.epoch++;
    const mem = this.x.memory.buffer;
    new Float64Array(mem, triAt, 3 * n).set(tri.subarray(0, 3 * n));
    const mp = this.x.map_params(), dv = this.dv();
    dv.setUint32(mp + MP.tri, triAt, true); dv.setUint32(mp + MP.n, n, true);
    dv.setUint32(mp + MP.blocks, blocks, true); dv.setUint32(mp + MP.blockCap, blockCap, true);
    dv.setUint32(mp + MP.order, order, true); dv.setUint32(mp + MP.first, first, true);
    dv.setUint32(mp + MP.outKeys, outKeys, true); dv.setUint32(mp + MP.outHighs, outHighs, true);
    dv.setUint32(mp + MP.outNodes, outNodes, true); dv.setUint32(mp + MP.outCap, outCap, true);
    this.x.die_map();
    if (dv.getUint32(mp + MP.ok, true) === 0) return null;
    const m = dv.getUint32(mp + MP.outN, true);
    return {
      keys: new Float64Array(mem, outKeys, m).slice(), highs: new Float64Array(mem, outHighs, m).slice(),
      nodes: new Int32Array(mem, outNodes, m).slice(), charge: dv.getFloat64(mp + MP.charge, true),
    };
  }

  /** Copies a unit's DIEs and plans in (and room for scopeCap scopes); returns the layout, or null when memory is short. */
  layoutDies(buf: Uint8Array, start: number, end: number, plans: Int32Array, steps: Int32Array, addr: DebugAddr | null, scopeCap: number, rng: UnitRanges | null = null): { base: number; rows: number; scope: number } | null {
    const len = end - start;
    const rngBytes = rng && rng.bytes.length > 0 ? rng.bytes : null;
    const [addrAt, rngAt] = addr ? this.pin(addr.bytes, rngBytes) : rngBytes ? this.pin(rngBytes) : [-1, -1];
    const rngPlace = addr ? rngAt : addrAt;
    const base = this.base(), plansAt = align(base + len, 4), stepsAt = plansAt + plans.length * 4, rowsAt = align(stepsAt + steps.length * 4, 8);
    const scopeAt = rowsAt + ROW_CAP * ROW_F64S * 8, triAt = align(scopeAt + scopeCap * 4, 8);
    const triCap = scopeCap > 0 ? TRI_CAP : 0;
    if (!this.reserve(triAt + triCap * 24)) return null;
    this.epoch++;
    const mem = this.x.memory.buffer;
    new Uint8Array(mem, base, len).set(buf.subarray(start, end));
    new Int32Array(mem, plansAt, plans.length).set(plans);
    new Int32Array(mem, stepsAt, steps.length).set(steps);
    const dp = this.x.die_params(), dv = this.dv();
    dv.setUint32(dp + DP.plans, plansAt, true); dv.setUint32(dp + DP.nCodes, plans.length, true);
    dv.setUint32(dp + DP.steps, stepsAt, true); dv.setUint32(dp + DP.base, base, true);
    dv.setUint32(dp + DP.end, len, true);
    dv.setUint32(dp + DP.rows, rowsAt, true); dv.setUint32(dp + DP.rowCap, ROW_CAP, true);
    // Without .debug_addr in the heap the kernel reads no addrx (the reader does).
    const realAddr = addr ? addrAt : -1;
    dv.setUint32(dp + DP.addr, Math.max(realAddr, 0), true); dv.setUint32(dp + DP.addrLen, realAddr < 0 ? 0 : addr!.bytes.length, true);
    // Range lists are read only with .debug_addr (or without a need for it) and the unit's fields.
    dv.setUint32(dp + DP.rng, rngPlace > 0 && rngBytes ? rngPlace : 0, true); dv.setUint32(dp + DP.rngLen, rngPlace > 0 && rngBytes ? rngBytes.length : 0, true);
    dv.setUint32(dp + DP.version, rng?.version ?? 0, true); dv.setUint32(dp + DP.offSize, rng?.offSize ?? 0, true);
    dv.setFloat64(dp + DP.rnglistsBase, rng?.rnglistsBase ?? 0, true); dv.setFloat64(dp + DP.rangesBase, rng?.rangesBase ?? 0, true);
    dv.setFloat64(dp + DP.lowPc, rng?.lowPc ?? 0, true); dv.setFloat64(dp + DP.unitOffset, rng?.unitOffset ?? 0, true);
    dv.setUint32(dp + DP.tri, triAt, true); dv.setUint32(dp + DP.triCap, triCap, true);
    dv.setUint32(dp + DP.addrSize, addr?.addrSize ?? 0, true); dv.setFloat64(dp + DP.addrBase, addr?.addrBase ?? 0, true);
    dv.setUint32(dp + DP.scope, scopeCap > 0 ? scopeAt : 0, true); dv.setUint32(dp + DP.scopeCap, scopeCap, true);
    return { base, rows: rowsAt, scope: scopeAt };
  }

  /** Sets the scopes' node counter and the range budget before a walk; after one, the counter, the lowest depth written and the triples. */
  setNextNode(n: number, rangeBudget: number): void {
    const dp = this.x.die_params(), dv = this.dv();
    dv.setInt32(dp + DP.nextNode, n, true); dv.setFloat64(dp + DP.rangeBudget, rangeBudget, true);
  }
  scopeResult(): [number, number, number, number] {
    const dp = this.x.die_params(), dv = this.dv();
    return [dv.getInt32(dp + DP.nextNode, true), dv.getInt32(dp + DP.lowWater, true), dv.getUint32(dp + DP.tri, true), dv.getUint32(dp + DP.nTri, true)];
  }
  /** A view of n triples at at (valid until the next kernel call). */
  triView(at: number, n: number): Float64Array { return new Float64Array(this.x.memory.buffer, at, 3 * n); }
  /** A view of n scopes at at (valid until the next kernel call). */
  scopeView(at: number, n: number): Int32Array { return new Int32Array(this.x.memory.buffer, at, n); }

  /** Walks from pos (relative to the unit's start); returns [pos, depth, done, captured rows]. */
  skipDies(pos: number, depth: number): [number, number, boolean, number] {
    const dp = this.x.die_params(), dv = this.dv();
    dv.setUint32(dp + DP.pos, pos, true);
    dv.setInt32(dp + DP.depth, depth, true);
    this.x.skip_dies();
    this.stats.dieSkips++;
    return [dv.getUint32(dp + DP.pos, true), dv.getInt32(dp + DP.depth, true), dv.getUint32(dp + DP.done, true) !== 0, dv.getUint32(dp + DP.nRows, true)];
  }

  /** A view of captured rows (valid until the next kernel call). */
  rowView(at: number, f64s: number): Float64Array { return new Float64Array(this.x.memory.buffer, at, f64s); }
}

function align(n: number, a: number): number { return Math.ceil(n / a) * a; }

/**
 * KernelOps over the WebAssembly kernels: each operation runs its kernel, and its TypeScript
 * twin (twins.ts) where the kernel declines the input or the input is too small to be worth
 * copying into the module's memory.
 */
class WasmOps implements KernelOps {
  readonly wasm = true;
  constructor(private readonly k: Kernels) {}
  sortPcs(pcs: BigUint64Array) { return this.k.sortPcs(pcs) ?? twins.sortPcs(pcs); }
  unitsFor(uniq: Float64Array, low: Float64Array, high: Float64Array, unit: Int32Array) {
    return this.k.unitsFor(uniq, low, high, unit) ?? twins.unitsFor(uniq, low, high, unit);
  }
  symbolsFor(uniq: Float64Array, addr: Float64Array, size: Float64Array) {
    return this.k.symbolsFor(uniq, addr, size) ?? twins.symbolsFor(uniq, addr, size);
  }
  spansFor(low: Float64Array, high: Float64Array, fn: Uint32Array, base: number, uniq: Float64Array, s: number, e: number, out: Int32Array): void {
    // Short runs stay in JavaScript: the kernel copies the unit's spans in for each call.
    if (!(e - s >= 256 && this.k.spansFor(low, high, fn, base, uniq, s, e, out))) twins.spansFor(low, high, fn, base, uniq, s, e, out);
  }
  nameRuns(unitOf: Int32Array, symOf: Int32Array, fnOf: Int32Array, shareK: number, shareN: number) {
    return this.k.nameRuns(unitOf, symOf, fnOf, shareK, shareN) ?? twins.nameRuns(unitOf, symOf, fnOf, shareK, shareN);
  }
  gather(at: Uint32Array, f: Uint32Array, l: Uint32Array, c: Uint32Array, fn: Uint32Array) {
    return this.k.gather(at, f, l, c, fn) ?? twins.gather(at, f, l, c, fn);
  }
  orderValues(values: Float64Array, count = values.length) {
    // Addresses (the usual values) are radix-sorted by the kernel; a few are not worth the copy.
    return (count >= 64 ? this.k.orderValues(values.subarray(0, count)) : null) ?? twins.orderValues(values, count);
  }
  dieMap(tri: Float64Array, n: number) {
    // A few ranges are not worth the copy.
    return (n >= 64 ? this.k.dieMap(tri, n) : null) ?? twins.dieMap(tri, n);
  }
  lineProgram(p: LineProgramInput) { return this.k.lineProgram(p); }
  lineLookup(p: LineProgramInput, addrs: Float64Array, runStarts: Uint32Array) { return this.k.lineLookup(p, addrs, runStarts); }
}

let instance: Kernels | null | undefined;
let compiled: object | undefined;
let disabled = process.env.COVD_DWARF_KERNELS === 'js';

/** The thread's kernels, or null when kernels.wasm is missing, unloadable, or turned off. */
export function kernels(): Kernels | null {
  if (disabled) return null;
  if (instance === undefined) {
    try {
      if (compiled) { instance = new Kernels(compiled); return instance; }
      // Compiled as V8's flags say when this runs: the entry points choose the tier (main.ts
      // with v8-flags.ts: baseline code, compiled as first called; a pool thread's entry,
      // src/workers/worker.ts: TurboFan, all up front).
      compiled = new wasm.Module(readFileSync(new URL('./kernels.wasm', import.meta.url)));
      instance = new Kernels(compiled);
    } catch {
      instance = null;
    }
  }
  return instance;
}

/**
 * The reader's one switch between the WebAssembly kernels and their TypeScript twins: the
 * kernels when they are on and load on this thread, else the twins. Take it once per piece of
 * work and call it.
 */
export function kernelsOrTwins(): KernelOps {
  return kernels()?.ops ?? twins;
}

/** Memory a thread's kernels may keep between requests; beyond it, releaseKernelMemory() lets it go. */
const KEEP_BYTES = 16 << 20;

/**
 * Drops the kernels' memory when a request grew it past KEEP_BYTES (WebAssembly memory only
 * grows): the next call instantiates the compiled module afresh, and the old memory goes with
 * the next garbage collection. Called after each request by the symbolizer threads.
 */
export function releaseKernelMemory(): void {
  if (instance && instance.memoryBytes() > KEEP_BYTES) instance = undefined;
}

/** Whether the kernels are in use on this thread (for tests, benchmarks and `covd symbolize --verbose`). */
export function kernelsActive(): boolean { return kernels() !== null; }

/** Turns the kernels off (false) or back on, on this thread: tests compare both paths. */
export function setKernelsEnabled(on: boolean): void { disabled = !on; }

/**
 * Walks a unit's DIEs in WebAssembly for functions.ts and inlined.ts: skips DIEs whose tags the
 * walk does not want, and (with capture) reads the wanted attributes of DIEs of the captured
 * tags into rows.
 * The walk calls skip() before reading each DIE; the kernel stops at a DIE the walk must read
 * itself. Rows come back with their DIE's offset and are the DIEs before that stop, in order.
 */
export class DieWalker {
  private epoch = -1;
  private layout: { base: number; rows: number; scope: number } | null = null;
  pos = 0;
  depth = 0;
  /** DIEs captured by the last skip(), in rows of ROW_F64S (valid until the next kernel call). */
  rows: Float64Array = new Float64Array(0);
  captured = 0;
  /** After skipScoped: the number of the next captured DIE, and the captured DIEs' ranges as (low, high, node) triples (valid until the next kernel call). */
  nextNode = 0;
  tri: Float64Array = new Float64Array(0);
  nTri = 0;

  private constructor(
    private readonly k: Kernels,
    private readonly buf: Uint8Array,
    private readonly start: number,
    private readonly end: number,
    private readonly plans: Int32Array,
    private readonly steps: Int32Array,
    private readonly addr: DebugAddr | null,
    private readonly scopeCap: number,
    private readonly rng: UnitRanges | null,
  ) {}

  /**
   * A walker for u's DIEs for one of the walks (plans.ts's DieWalk): it stops at the tags the
   * walk reads, except that with 'functions-capture' subprograms' attributes at SLOT (ranges,
   * declaration, origin) come back as rows, and with 'inlines' subroutines' attributes at
   * INLINE_SLOT with their parents (skipScoped). Null without kernels.
   */
  static forUnit(info: Uint8Array, u: Unit, walk: DieWalk, addr?: Uint8Array, ranges?: { rnglists: Uint8Array; ranges: Uint8Array }): DieWalker | null {
    const k = kernels();
    if (!k || u.end <= u.dieOffset) return null;
    const { plans, steps } = plansFor(u, walk);
    // Plans are copied in for each walk: a huge abbreviation table shared by tiny units is
    // left to the reader, which looks abbreviations up only as DIEs use them.
    if ((plans.length + steps.length) * 4 > (u.end - u.dieOffset) + 65536) return null;
    const debugAddr = addr && addr.length > 0 ? { bytes: addr, addrBase: u.addrBase, addrSize: u.addrSize } : null;
    const rng: UnitRanges | null = ranges && walk === 'inlines'
      ? { bytes: u.version >= 5 ? ranges.rnglists : ranges.ranges, version: u.version, offSize: u.offSize, rnglistsBase: u.rnglistsBase, rangesBase: u.rangesBase, lowPc: u.lowPc, unitOffset: u.offset }
      : null;
    return new DieWalker(k, info, u.dieOffset, u.end, plans, steps, debugAddr, walk === 'inlines' ? SCOPE_CAP : 0, rng);
  }

  /**
   * Walks from absolute position pos with the walk's depth. Afterwards this.pos and this.depth
   * hold where the walk goes on and this.rows the captured DIEs (offsets made absolute);
   * returns true when the unit's tree ended there.
   */
  skip(pos: number, depth: number): boolean {
    this.ensureLayout();
    if (!this.layout) { this.pos = pos; this.depth = depth; this.captured = 0; return false; }
    return this.run(pos, depth);
  }

  /**
   * skip() for the 'inlines' walk, with inlined.ts's scopes: scope[0, depth) in, scope[d] for
   * every open depth d after, captured DIEs numbered from nextNode (this.nextNode after). dirty:
   * the lowest entry the caller changed since the last call. Returns false without progress
   * when the tree is deeper than the scopes kept in the kernel.
   */
  skipScoped(pos: number, depth: number, scope: number[], dirty: number, nextNode: number, rangeBudget: number): boolean {
    const relaid = this.ensureLayout();
    this.nTri = 0;
    if (!this.layout || depth > this.scopeCap) { this.pos = pos; this.depth = depth; this.captured = 0; this.nextNode = nextNode; return false; }
    const from = relaid ? 0 : Math.min(dirty, depth);
    if (from < depth) {
      const view = this.k.scopeView(this.layout.scope, depth);
      for (let i = from; i < depth; i++) view[i] = scope[i]!;
    }
    this.k.setNextNode(nextNode, rangeBudget);
    const done = this.run(pos, depth);
    const [next, low, triAt, nTri] = this.k.scopeResult();
    this.nextNode = next;
    this.nTri = nTri;
    this.tri = this.k.triView(triAt, nTri);
    if (low < this.depth) {
      const view = this.k.scopeView(this.layout.scope, this.depth);
      for (let i = Math.max(0, low); i < this.depth; i++) scope[i] = view[i]!;
    }
    return done;
  }

  /** Lays the unit out again when another call overwrote it; true when it did. */
  private ensureLayout(): boolean {
    if (this.epoch === this.k.epoch && this.layout) return false;
    this.layout = this.k.layoutDies(this.buf, this.start, this.end, this.plans, this.steps, this.addr, this.scopeCap, this.rng);
    this.epoch = this.k.epoch;
    return true;
  }

  private run(pos: number, depth: number): boolean {
    const [p, d, done, n] = this.k.skipDies(pos - this.start, depth);
    this.pos = p + this.start;
    this.depth = d;
    this.captured = n;
    // Node records (scopes tracked) or rows, each starting with its DIE's offset in the unit.
    const stride = this.scopeCap > 0 ? NODE_F64S : ROW_F64S;
    this.rows = this.k.rowView(this.layout!.rows, n * stride);
    for (let i = 0; i < n; i++) this.rows[i * stride] += this.start;
    return done;
  }
}
