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
import { buildUnitMap, unitFor, type UnitMap } from './aranges.js';
import { lineFile, lookupRow, parseLineTable, type LineTable } from './line.js';
import { unitFunctions, type FunctionInfo } from './functions.js';
import { readSymbols, symbolFor, type SymbolTable } from './symtab.js';
import { parseUnitHeaders, type Sections, type Unit } from './units.js';
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
  private funcs = new Map<number, { low: Float64Array; high: Float64Array; fn: Uint32Array; infos: FunctionInfo[] }>();

  private constructor(readonly exe: ElfFile, readonly dbg: ElfFile) {
    const d = (n: string) => dbg.data(n);
    this.sec = {
      info: d('.debug_info'), abbrev: d('.debug_abbrev'), str: d('.debug_str'), lineStr: d('.debug_line_str'),
      line: d('.debug_line'), ranges: d('.debug_ranges'), rnglists: d('.debug_rnglists'),
      strOffsets: d('.debug_str_offsets'), addr: d('.debug_addr'), aranges: d('.debug_aranges'),
    };
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

  private functionsOf(u: Unit) {
    let f = this.funcs.get(u.index);
    if (!f) {
      const infos = unitFunctions(this.sec, this.units, u);
      const spans: { low: number; high: number; fn: number }[] = [];
      infos.forEach((fi, i) => {
        for (let k = 0; k < fi.ranges.length; k += 2) if (fi.ranges[k]! < fi.ranges[k + 1]!) spans.push({ low: fi.ranges[k]!, high: fi.ranges[k + 1]!, fn: i });
      });
      spans.sort((a, b) => a.low - b.low);
      f = { low: Float64Array.from(spans, (s) => s.low), high: Float64Array.from(spans, (s) => s.high), fn: Uint32Array.from(spans, (s) => s.fn), infos };
      this.funcs.set(u.index, f);
    }
    return f;
  }

  resolve(pcs: BigUint64Array, opts: ResolveOptions = {}): SourceIndex {
    const doLines = opts.lines ?? true, doFuncs = opts.functions ?? true;
    const [shareK, shareN] = opts.share ?? [0, 1];
    const n = pcs.length;
    const addr = new Float64Array(n);
    for (let i = 0; i < n; i++) addr[i] = Number(pcs[i]!);
    // Sort once; consecutive PCs then hit the same unit, sequence and function.
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => addr[a]! - addr[b]!);

    const files = new Interner();
    const pcFile = new Uint32Array(n).fill(NONE);
    const pcLine = new Uint32Array(n);
    const pcColumn = new Uint32Array(n);
    const pcFunction = new Uint32Array(n).fill(NONE);
    const fnNames: string[] = [], fnFile: number[] = [], fnLine: number[] = [];
    const fnIds = new Map<string, number>();
    const fileIdCache = new Map<string, number>(); // `${unit}:${fileIndex}` -> interned id

    const internFile = (u: Unit, t: LineTable, index: number): number => {
      const key = `${u.index}:${index}`;
      let id = fileIdCache.get(key);
      if (id === undefined) {
        const p = lineFile(t, index);
        id = p === '' ? NONE : files.file(p);
        fileIdCache.set(key, id);
      }
      return id;
    };

    let lastUnit = -2, lastLo = 0, lastHi = -1;
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      const a = addr[i]!;
      let ui: number;
      if (a >= lastLo && a < lastHi) ui = lastUnit;
      else { ui = unitFor(this.unitMap, a); lastUnit = ui; lastLo = a; lastHi = a; }
      const owner = ui < 0 ? 0 : ui % shareN;
      if (owner !== shareK) continue;
      const u = ui >= 0 ? this.units[ui]! : undefined;
      if (doLines && u) {
        const t = this.lineTable(u);
        if (t) {
          const row = lookupRow(t, a);
          if (row >= 0) {
            pcFile[i] = internFile(u, t, t.rowFile[row]!);
            pcLine[i] = t.rowLine[row]!;
            pcColumn[i] = t.rowCol[row]!;
          }
        }
      }
      if (doLines && pcFile[i] === NONE) {
        // Like llvm-symbolizer: no file from DWARF, so the STT_FILE before a local symbol names it.
        const s = symbolFor(this.symbols, a);
        const f = s >= 0 ? this.symbols.fileNames[s] : null;
        if (f) pcFile[i] = files.file(f);
      }
      if (doFuncs) {
        let name: string | null = null, declFile = NONE, declLine = 0;
        const s = symbolFor(this.symbols, a);
        if (s >= 0) name = this.symbols.names[s]!;
        if (u) {
          const f = this.functionsOf(u);
          let lo = 0, hi = f.low.length;
          while (lo < hi) { const m = (lo + hi) >>> 1; if (f.low[m]! <= a) lo = m + 1; else hi = m; }
          if (lo > 0 && a < f.high[lo - 1]!) {
            const fi = f.infos[f.fn[lo - 1]!]!;
            name ??= fi.name;
            if (fi.declFile >= 0) {
              const du = this.units[fi.declUnit]!;
              const t = this.lineTable(du);
              if (t) { declFile = internFile(du, t, fi.declFile); declLine = fi.declLine; }
            }
          }
        }
        if (name !== null && name !== '') {
          const key = `${name}\0${declFile}\0${declLine}`;
          let id = fnIds.get(key);
          if (id === undefined) { id = fnNames.length; fnNames.push(name); fnFile.push(declFile); fnLine.push(declLine); fnIds.set(key, id); }
          pcFunction[i] = id;
        }
      }
      if (ui >= 0) { lastLo = Math.min(lastLo, a); }
      // Keep the unit cache valid only within the covering unit-map range.
      if (ui >= 0) { const r = rangeOf(this.unitMap, a); lastLo = r[0]; lastHi = r[1]; }
      else { lastHi = -1; }
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

function rangeOf(m: UnitMap, a: number): [number, number] {
  let lo = 0, hi = m.low.length;
  while (lo < hi) { const mid = (lo + hi) >>> 1; if (m.low[mid]! <= a) lo = mid + 1; else hi = mid; }
  return lo > 0 && a < m.high[lo - 1]! ? [m.low[lo - 1]!, m.high[lo - 1]!] : [0, -1];
}
