/**
 * The bulk resolver: loads an executable's DWARF once and resolves many PCs at a time.
 * PCs are sorted once and grouped by unit; a unit's line table and functions are parsed only
 * when some PC falls in it, then each PC takes the line-table row llvm-symbolizer would pick.
 * A resolve can be restricted to one part (lines or functions) and a share of the units, so
 * the pool can split one binary across threads; merge.ts puts the parts back together.
 */
import { ElfFile } from './elf.js';
import { DebugInfoError } from './errors.js';
import { openDebugInfo } from './debugfile.js';
import { buildUnitMap, type UnitMap } from './aranges.js';
import { lineFile, parseLineTable, rowInSeq, upperBoundSeq, type LineTable } from './line.js';
import { SubroutineMap, unitFunctions, type FunctionInfo } from './functions.js';
import { readSymbols, symbolFile, symbolFor, symbolName, type SymbolTable } from './symtab.js';
import { Budget, parseUnitHeaders, type Sections, type Unit } from './units.js';
import { NONE, type SourceIndex } from '../workers/types.js';

export interface ResolveOptions {
  /** Compute file/line/column (default true). */
  lines?: boolean;
  /** Compute functions (default true). */
  functions?: boolean;
  /** Only PCs of units u with u.index % share[1] === share[0] (PCs outside every unit belong to share 0). */
  share?: [number, number];
}

/** Interns directories and files the way SourceIndex stores them. */
export class Interner {
  directories: string[] = [];
  files: string[] = [];
  fileDirs: number[] = [];
  private dirIds = new Map<string, number>();
  private fileIds = new Map<string, number>();

  file(path: string): number {
    let id = this.fileIds.get(path);
    if (id !== undefined) return id;
    const slash = path.lastIndexOf('/');
    const dir = slash < 0 ? '' : slash === 0 ? '/' : path.slice(0, slash);
    const base = path.slice(slash + 1);
    let d = this.dirIds.get(dir);
    if (d === undefined) { d = this.directories.length; this.directories.push(dir); this.dirIds.set(dir, d); }
    id = this.files.length;
    this.files.push(base);
    this.fileDirs.push(d);
    this.fileIds.set(path, id);
    return id;
  }
}

/** Rebuilds a file's full path from a SourceIndex. */
export function filePath(ix: Pick<SourceIndex, 'directories' | 'files' | 'fileDirs'>, file: number): string {
  if (file === NONE || file >= ix.files.length) return '';
  const dir = ix.directories[ix.fileDirs[file]!] ?? '';
  if (dir === '') return ix.files[file]!;
  return dir.endsWith('/') ? dir + ix.files[file]! : `${dir}/${ix.files[file]!}`;
}

export class DebugInfo {
  readonly sec: Sections;
  readonly units: Unit[];
  readonly unitMap: UnitMap;
  readonly symbols: SymbolTable;
  readonly buildId: string | null;
  private lineTables = new Map<number, LineTable | null>();
  private lineHeaders = new Map<number, LineTable | null>();
  private subroutineMaps = new Map<number, SubroutineMap>();
  private funcs = new Map<number, { low: Float64Array; high: Float64Array; fn: Uint32Array; infos: FunctionInfo[]; base: number }>();
  private funcCount = 0;

  private constructor(readonly exe: ElfFile, readonly dbg: ElfFile) {
    const d = (n: string) => dbg.data(n);
    this.sec = {
      info: d('.debug_info'), abbrev: d('.debug_abbrev'), str: d('.debug_str'), lineStr: d('.debug_line_str'),
      line: d('.debug_line'), ranges: d('.debug_ranges'), rnglists: d('.debug_rnglists'),
      strOffsets: d('.debug_str_offsets'), addr: d('.debug_addr'), aranges: d('.debug_aranges'),
      budget: new Budget(0, 0),
    };
    this.sec.budget = Budget.forSections(this.sec);
    this.units = parseUnitHeaders(this.sec);
    this.unitMap = buildUnitMap(this.sec, this.units);
    const exeSyms = readSymbols(exe);
    this.symbols = exeSyms.addr.length === 0 && dbg !== exe ? readSymbols(dbg) : exeSyms;
    this.buildId = exe.buildId();
  }

  /** Opens exe (and its separate debug file); throws DebugInfoError. */
  static open(exe: string, debugFile?: string): DebugInfo {
    const e = ElfFile.open(exe);
    let dbg: ElfFile | undefined;
    try {
      dbg = openDebugInfo(e, debugFile);
      return new DebugInfo(e, dbg);
    } catch (err) {
      if (dbg && dbg !== e) dbg.close();
      e.close();
      if (err instanceof DebugInfoError) throw err;
      if (err instanceof RangeError) throw new DebugInfoError('CORRUPT', `${exe}: ${err.message}`);
      throw err;
    } finally {
      // Section contents are cached; the descriptors are not needed after loading.
      if (dbg && dbg !== e) dbg.close();
      e.close();
    }
  }

  private lineTable(u: Unit): LineTable | null {
    let t = this.lineTables.get(u.index);
    if (t === undefined) {
      t = u.stmtList >= 0 && this.sec.line.length > 0 ? parseLineTable(this.sec, u, u.stmtList) : null;
      this.lineTables.set(u.index, t);
    }
    return t;
  }

  /** Rough memory held: section bytes and parsed line tables (for the workers' cache limit). */
  approxBytes(): number {
    let n = 0;
    for (const v of Object.values(this.sec)) if (v instanceof Uint8Array) n += v.length;
    for (const t of this.lineTables.values()) if (t) n += t.rowAddr.buffer.byteLength * 2.5;
    return n;
  }

  /** Just the file names of a unit's line table (what decl_file indexes). */
  private lineHeader(u: Unit): LineTable | null {
    const full = this.lineTables.get(u.index);
    if (full !== undefined) return full;
    let t = this.lineHeaders.get(u.index);
    if (t === undefined) {
      t = u.stmtList >= 0 && this.sec.line.length > 0 ? parseLineTable(this.sec, u, u.stmtList, true) : null;
      this.lineHeaders.set(u.index, t);
    }
    return t;
  }

  private functionsOf(u: Unit) {
    let f = this.funcs.get(u.index);
    if (!f) {
      const infos = unitFunctions(this.sec, this.units, u);
      const spans: { low: number; high: number; fn: number }[] = [];
      infos.forEach((fi, i) => {
        for (let k = 0; k < fi.ranges.length; k += 2) if (fi.ranges[k]! < fi.ranges[k + 1]!) spans.push({ low: fi.ranges[k]!, high: fi.ranges[k + 1]!, fn: i });
      });
      spans.sort((a, b) => a.low - b.low);
      const k = spans.length;
      f = { low: new Float64Array(k), high: new Float64Array(k), fn: new Uint32Array(k), infos, base: this.funcCount };
      for (let i = 0; i < k; i++) { f.low[i] = spans[i]!.low; f.high[i] = spans[i]!.high; f.fn[i] = spans[i]!.fn; }
      this.funcCount += infos.length;
      this.funcs.set(u.index, f);
    }
    return f;
  }

  resolve(pcs: BigUint64Array, opts: ResolveOptions = {}): SourceIndex {
    const doLines = opts.lines ?? true, doFuncs = opts.functions ?? true;
    const [shareK, shareN] = opts.share ?? [0, 1];
    const n = pcs.length;
    // Read the u64s as two u32 halves: no BigInt per PC (exact below 2^53, all user-space addresses).
    const addr = new Float64Array(n);
    const halves = new Uint32Array(pcs.buffer, pcs.byteOffset, n * 2);
    for (let i = 0; i < n; i++) addr[i] = halves[2 * i + 1]! * 0x1_0000_0000 + halves[2 * i]!;
    // Sort once and drop duplicates; the sweep below then visits units, sequences and
    // functions in address order, and each distinct address is resolved once.
    const sorted = addr.slice().sort();
    let m = 0;
    for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[m++] = sorted[i]!;
    const uniq = sorted.subarray(0, m);

    const files = new Interner();
    const uFile = new Uint32Array(m).fill(NONE);
    const uLine = new Uint32Array(m);
    const uCol = new Uint32Array(m);
    const uFn = new Uint32Array(m).fill(NONE);
    const fnNames: string[] = [], fnFile: number[] = [], fnLine: number[] = [];
    const fnIds = new Map<string, number>();
    const fnCache = new Map<number, number>(); // (symbol, function) pair -> interned id
    const fileCache = new Map<number, Uint32Array>(); // unit -> file index -> interned id (NONE-1 = not yet)
    const UNSET = NONE - 1;

    const internFile = (u: Unit, t: LineTable, index: number): number => {
      let c = fileCache.get(u.index);
      if (!c) { c = new Uint32Array(t.filePaths.length + 1).fill(UNSET); fileCache.set(u.index, c); }
      const slot = index - t.fileBase;
      if (slot < 0 || slot >= t.filePaths.length) return NONE;
      let id = c[slot]!;
      if (id === UNSET) {
        const p = lineFile(t, index);
        id = p === '' ? NONE : files.file(p);
        c[slot] = id;
      }
      return id;
    };
    const internFn = (name: string, declFile: number, declLine: number): number => {
      const key = `${name}\0${declFile}\0${declLine}`;
      let id = fnIds.get(key);
      if (id === undefined) { id = fnNames.length; fnNames.push(name); fnFile.push(declFile); fnLine.push(declLine); fnIds.set(key, id); }
      return id;
    };

    let ui = -1, uLo = 0, uHi = -1; // current unit and the unit-map range it covers
    let u: Unit | undefined;
    let table: LineTable | null = null;
    let funcs: ReturnType<DebugInfo['functionsOf']> | undefined;
    let seq = -1; // current sequence of table
    let sym = -1, symLo = 0, symHi = -1; // current symbol and the addresses it answers for
    let lastS = -2, lastFi = -2, lastFnId = NONE;
    let lastRawFile = -1, lastFileId = NONE, lastFileTable: LineTable | null = null;
    let fnLo = 0, fnHi = -1, fnAt = -1; // the function span of the last PC, reused while PCs stay in it
    for (let k = 0; k < m; k++) {
      const a = uniq[k]!;
      if (!(a >= uLo && a < uHi)) {
        const r = rangeOf(this.unitMap, a);
        ui = r[2]; uLo = r[0]; uHi = r[1];
        u = ui >= 0 ? this.units[ui]! : undefined;
        table = null; funcs = undefined; seq = -1; fnAt = -1;
        if (u && (ui % shareN) === shareK) {
          if (doLines) table = this.lineTable(u);
          if (doFuncs) funcs = this.functionsOf(u);
        }
      }
      if ((ui < 0 ? 0 : ui % shareN) !== shareK) continue;
      if (!(a >= symLo && a < symHi)) {
        sym = symbolFor(this.symbols, a);
        if (sym >= 0) {
          symLo = this.symbols.addr[sym]!;
          const size = this.symbols.size[sym]!;
          const next = sym + 1 < this.symbols.addr.length ? this.symbols.addr[sym + 1]! : Infinity;
          symHi = size === 0 ? next : Math.min(symLo + size, next);
        } else {
          symLo = 0; symHi = -1;
        }
      }
      if (doLines) {
        if (table) {
          const t = table;
          // The sequence llvm-symbolizer picks (upper bound by high address), reusing the last one.
          if (!(seq >= 0 && a < t.seqHigh[seq]! && (seq === 0 || t.seqHigh[seq - 1]! <= a))) seq = upperBoundSeq(t, a);
          if (seq < t.seqHigh.length && t.seqLow[seq]! <= a && a < t.seqHigh[seq]!) {
            const row = rowInSeq(t, seq, a);
            const raw = t.rowFile[row]!;
            if (raw !== lastRawFile || t !== lastFileTable) { lastFileId = internFile(u!, t, raw); lastRawFile = raw; lastFileTable = t; }
            uFile[k] = lastFileId;
            uLine[k] = t.rowLine[row]!;
            uCol[k] = t.rowCol[row]!;
          }
        }
        if (uFile[k] === NONE && sym >= 0) {
          // Like llvm-symbolizer: no file from DWARF, so the STT_FILE before a local symbol names it.
          const f = symbolFile(this.symbols, sym);
          if (f) uFile[k] = files.file(f);
        }
      }
      if (doFuncs) {
        let fiIndex = -1;
        if (funcs) {
          const f = funcs;
          if (a >= fnLo && a < fnHi && fnAt >= 0) {
            fiIndex = fnAt;
          } else {
            let lo = 0, hi = f.low.length;
            while (lo < hi) { const mid = (lo + hi) >>> 1; if (f.low[mid]! <= a) lo = mid + 1; else hi = mid; }
            if (lo > 0 && a < f.high[lo - 1]!) {
              fiIndex = f.base + f.fn[lo - 1]!;
              // Reuse while below both this span's end and the next span's start (spans may nest).
              fnLo = a; fnHi = Math.min(f.high[lo - 1]!, lo < f.low.length ? f.low[lo]! : Infinity); fnAt = fiIndex;
            } else {
              fnAt = -1;
            }
          }
        }
        if (sym < 0 && u) {
          // No symbol: llvm-symbolizer names the innermost subroutine DIE (maybe an inlined one).
          let map = this.subroutineMaps.get(u.index);
          if (!map) { map = new SubroutineMap(this.sec, this.units, u); this.subroutineMaps.set(u.index, map); }
          const leaf = map.lookup(a);
          if (leaf && leaf.name !== '') {
            let declFile = NONE;
            if (leaf.declFile >= 0) {
              const du = this.units[leaf.declUnit]!;
              const t = this.lineHeader(du);
              if (t) declFile = internFile(du, t, leaf.declFile);
            }
            uFn[k] = internFn(leaf.name, declFile, declFile === NONE ? 0 : leaf.declLine);
          }
          lastS = -2;
          continue;
        }
        if (sym < 0 && fiIndex < 0) continue;
        if (sym === lastS && fiIndex === lastFi) { uFn[k] = lastFnId; continue; }
        const key = (sym + 1) * 2 ** 26 + (fiIndex + 1);
        let id = fnCache.get(key);
        if (id === undefined) {
          // The name as llvm-symbolizer prints it: the symbol table first, then DWARF.
          let name = sym >= 0 ? symbolName(this.symbols, sym) : '';
          let declFile = NONE, declLine = 0;
          if (fiIndex >= 0) {
            const fi = funcs!.infos[fiIndex - funcs!.base]!;
            if (name === '') name = fi.name;
            if (fi.declFile >= 0) {
              const du = this.units[fi.declUnit]!;
              const t = this.lineHeader(du);
              if (t) { declFile = internFile(du, t, fi.declFile); declLine = fi.declLine; }
            }
          }
          id = name === '' ? NONE : internFn(name, declFile, declLine);
          fnCache.set(key, id);
        }
        uFn[k] = id;
        lastS = sym; lastFi = fiIndex; lastFnId = id;
      }
    }
    // Back to the caller's order.
    const pcFile = new Uint32Array(n), pcLine = new Uint32Array(n), pcColumn = new Uint32Array(n), pcFunction = new Uint32Array(n);
    let last = -1, lastK = 0;
    for (let i = 0; i < n; i++) {
      const a = addr[i]!;
      let k: number;
      if (a === last) k = lastK;
      else if (lastK + 1 < m && uniq[lastK + 1] === a) k = lastK + 1; // already-sorted input
      else {
        let lo = 0, hi = m;
        while (lo < hi) { const mid = (lo + hi) >>> 1; if (uniq[mid]! < a) lo = mid + 1; else hi = mid; }
        k = lo;
      }
      last = a; lastK = k;
      pcFile[i] = uFile[k]!; pcLine[i] = uLine[k]!; pcColumn[i] = uCol[k]!; pcFunction[i] = uFn[k]!;
    }
    return {
      buildId: this.buildId,
      directories: files.directories,
      files: files.files,
      fileDirs: Uint32Array.from(files.fileDirs),
      functions: { names: fnNames, file: Uint32Array.from(fnFile), line: Uint32Array.from(fnLine) },
      pcFile, pcLine, pcColumn, pcFunction,
    };
  }
}

/** [low, high, unit] of the unit-map range holding a; outside every unit: the gap around a, unit -1. */
function rangeOf(m: UnitMap, a: number): [number, number, number] {
  let lo = 0, hi = m.low.length;
  while (lo < hi) { const mid = (lo + hi) >>> 1; if (m.low[mid]! <= a) lo = mid + 1; else hi = mid; }
  if (lo > 0 && a < m.high[lo - 1]!) return [m.low[lo - 1]!, m.high[lo - 1]!, m.unit[lo - 1]!];
  return [lo > 0 ? m.high[lo - 1]! : 0, lo < m.low.length ? m.low[lo]! : Infinity, -1];
}
