/**
 * The bulk resolver: loads an executable's DWARF once and resolves many PCs at a time.
 * PCs are sorted once and grouped by unit; a unit's line table and functions are parsed only
 * when some PC falls in it, then each PC takes the line-table row llvm-symbolizer would pick.
 * A resolve can be restricted to one part (lines or functions) and a share of the units, so
 * the pool can split one binary across threads; src/workers/merge.ts puts the parts back together.
 */
import { ElfFile } from './elf.js';
import { kernelsOrTwins, NO_ROW } from './kernels.js';
import { DebugInfoError } from './errors.js';
import { openDebugInfo } from './debugfile.js';
import { buildUnitMap, type UnitMap } from './aranges.js';
import { lineFile, parseLineTable, rowInSeq, upperBoundSeq, type LineTable } from './line.js';
import { declThrough, namedThrough, SubroutineMap, subroutineInfo, unitFunctions, type FunctionInfo } from './functions.js';
import { InlineTree } from './inlined.js';
import { parseSymbols, symbolFile, symbolName, symbolSource, type SymbolSource, type SymbolTable } from './symtab.js';
import { Budget, parseUnitHeaders, type Sections, type Unit } from './units.js';
import { demangleNames, demanglingEnabled } from './demangle.js';
import { NONE, type SourceIndex } from '../contracts/source-index.js';

export interface ResolveOptions {
  /** Compute file/line/column (default true). */
  lines?: boolean;
  /** Compute functions (default true). */
  functions?: boolean;
  /**
   * With functions: also find each PC's subprogram for the declaration file and line (default
   * true). Without, names still come from the symbol table (and from DWARF where no symbol
   * covers a PC), but the DIE tree is only walked for such PCs.
   */
  declarations?: boolean;
  /** Only PCs of units u with u.index % share[1] === share[0] (PCs outside every unit belong to share 0). */
  share?: [number, number];
  /**
   * Demangle function names as llvm-symbolizer-14 does by default, keeping the mangled ones in
   * functions.linkageNames (default: on unless COVD_DEMANGLE=0; demangle.ts).
   */
  demangle?: boolean;
  /**
   * With functions: also find each PC's innermost inlined function (SourceIndex.pcInlined),
   * from the chain of DW_TAG_inlined_subroutine DIEs llvm-symbolizer --inlines prints. Default
   * false: the units' DIE trees are then walked only as before.
   */
  inlines?: boolean;
  /** With lines and functions: inlines, and every frame of each PC's chain (inlineFrames). Default false. */
  inlineFrames?: boolean;
  /**
   * Only the inlined code: pcInlined, pcCallFile and pcCallLine (implies inlines, and no lines or
   * frames); pcFile, pcLine, pcColumn and pcFunction come back empty (a big target's second pass
   * would allocate, fill and hand over four arrays of nothing), and functions holds the inlined
   * ones. What adds the inlined code to an index resolved without it (merge.ts's addInlined)
   * without resolving everything else again. Default false.
   */
  inlinedOnly?: boolean;
}

/**
 * Inlined frames per distinct PC (resolve with inlineFrames, lines and functions): the frames of
 * the chain of caller PC i are start[c]..start[c+1] for c = of ? of[i] : i, innermost first,
 * each with its function index (NONE: '??'), file (NONE: '??'), line and column. The innermost
 * frame's location is the line-table row's; an outer one's is the call site (DW_AT_call_*) of
 * the frame inside it; the outermost one is named from the symbol table where a symbol covers
 * the PC. A PC without a subroutine DIE has one frame: its --no-inlines result.
 */
export interface InlineFrames {
  start: Uint32Array;
  of: Uint32Array | null;
  fn: Uint32Array;
  file: Uint32Array;
  line: Uint32Array;
  column: Uint32Array;
}

/** What resolve returns: a SourceIndex, with inlineFrames when asked for. */
export type ResolvedIndex = SourceIndex & { inlineFrames?: InlineFrames };

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
  private symbolSources: (SymbolSource | null)[];
  private symbolTable: SymbolTable | null = null;
  readonly buildId: string | null;
  private lineTables = new Map<number, LineTable | null>();
  private lineHeaders = new Map<number, LineTable | null>();
  /** Units whose lines the kernel resolved and charged to the budget. */
  private kernelCharged = new Set<number>();
  private subroutineMaps = new Map<number, SubroutineMap>();
  private inlineTrees = new Map<number, InlineTree>();
  private funcs = new Map<number, { low: Float64Array; high: Float64Array; fn: Uint32Array; infos: FunctionInfo[]; base: number }>();
  private funcCount = 0;
  /** Every unit's subprograms in parse order; f.base indexes into it. */
  private allFuncs: FunctionInfo[] = [];
  /** Subprograms from an inlines walk without a declaration of their own, by global index: unit and ref, followed when first needed. */
  private lazyFuncs = new Map<number, { u: Unit; ref: number }>();

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
    // Read now (the files close after loading), parsed on first use: a line-table job never needs it.
    this.symbolSources = dbg !== exe ? [symbolSource(exe), symbolSource(dbg)] : [symbolSource(exe)];
    this.buildId = exe.buildId();
  }

  /** The executable's symbol table (the debug file's when the executable has none). */
  get symbols(): SymbolTable {
    if (!this.symbolTable) {
      let t = parseSymbols(this.symbolSources[0]!);
      if (t.addr.length === 0 && this.symbolSources.length > 1) t = parseSymbols(this.symbolSources[1]!);
      this.symbolTable = t;
    }
    return this.symbolTable;
  }

  /** Opens exe (and its separate debug file; debugRoot stands in for /usr/lib/debug); throws DebugInfoError. */
  static open(exe: string, debugFile?: string, debugRoot?: string): DebugInfo {
    const e = ElfFile.open(exe);
    let dbg: ElfFile | undefined;
    try {
      dbg = openDebugInfo(e, debugFile, debugRoot);
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

  /**
   * Just the file names of a unit's line table (what decl_file indexes). Without charge the
   * header is not charged to the budget when parsed here (the kernel path charges it with the
   * program, as a whole parse would).
   */
  private lineHeader(u: Unit, charge = true): LineTable | null {
    const full = this.lineTables.get(u.index);
    if (full !== undefined) return full;
    let t = this.lineHeaders.get(u.index);
    if (t === undefined) {
      t = u.stmtList >= 0 && this.sec.line.length > 0 ? parseLineTable(this.sec, u, u.stmtList, true, charge) : null;
      this.lineHeaders.set(u.index, t);
    }
    return t;
  }

  /**
   * A unit's subprograms with code, as spans ordered by low address. With inlines they come from
   * the unit's inlined-code walk (InlineTree), which reads every subprogram anyway, so the unit's
   * DIEs are walked once; their declarations are then read when a PC first needs them.
   */
  private functionsOf(u: Unit, inlines = false) {
    let f = this.funcs.get(u.index);
    if (!f && inlines) {
      let tree = this.inlineTrees.get(u.index);
      if (!tree) { tree = new InlineTree(this.sec, u, true); this.inlineTrees.set(u.index, tree); }
      const sp = tree.subprograms;
      if (sp) {
        // Spans of one node are consecutive (tree order); a declaration's are left out.
        const n = sp.low.length;
        const lows = new Float64Array(n), highs = new Float64Array(n), fns = new Uint32Array(n);
        const infos: FunctionInfo[] = [];
        let k = 0, last = -1, keep = false;
        for (let i = 0; i < n; i++) {
          const node = sp.node[i]!;
          if (node !== last) {
            last = node;
            keep = !tree.isDeclaration(node);
            if (keep) {
              const declFile = tree.declFile(node), ref = tree.origin(node);
              if (declFile < 0 && ref >= 0) this.lazyFuncs.set(this.funcCount + infos.length, { u, ref });
              infos.push({ name: '', declUnit: u.index, declFile, declLine: declFile >= 0 ? tree.declLine(node) : 0, ranges: [] });
            }
          }
          if (keep) { lows[k] = sp.low[i]!; highs[k] = sp.high[i]!; fns[k] = infos.length - 1; k++; }
        }
        f = this.orderedFunctions(lows, highs, fns, k, infos);
      }
    }
    if (!f) {
      // Names come from the symbol table (or the subroutine map); only ranges and declarations are needed here.
      const infos = unitFunctions(this.sec, this.units, u, false);
      // Spans (non-empty ranges) in typed arrays, stably ordered by low address.
      let k = 0;
      for (const fi of infos) for (let r = 0; r < fi.ranges.length; r += 2) if (fi.ranges[r]! < fi.ranges[r + 1]!) k++;
      const lows = new Float64Array(k), highs = new Float64Array(k), fns = new Uint32Array(k);
      k = 0;
      infos.forEach((fi, i) => {
        for (let r = 0; r < fi.ranges.length; r += 2) {
          if (fi.ranges[r]! < fi.ranges[r + 1]!) { lows[k] = fi.ranges[r]!; highs[k] = fi.ranges[r + 1]!; fns[k] = i; k++; }
        }
      });
      f = this.orderedFunctions(lows, highs, fns, k, infos);
    }
    this.funcs.set(u.index, f);
    return f;
  }

  /** A unit's functions from their first k spans, stably ordered by low address, appended to the global list. */
  private orderedFunctions(lows: Float64Array, highs: Float64Array, fns: Uint32Array, k: number, infos: FunctionInfo[]) {
    const order = kernelsOrTwins().orderValues(lows, k);
    const f = { low: new Float64Array(k), high: new Float64Array(k), fn: new Uint32Array(k), infos, base: this.funcCount };
    for (let i = 0; i < k; i++) { const j = order[i]!; f.low[i] = lows[j]!; f.high[i] = highs[j]!; f.fn[i] = fns[j]!; }
    this.funcCount += infos.length;
    for (const fi of infos) this.allFuncs.push(fi);
    return f;
  }

  resolve(pcs: BigUint64Array, opts: ResolveOptions = {}): ResolvedIndex {
    if (opts.inlinedOnly) opts = { ...opts, lines: false, functions: true, inlines: true, inlineFrames: false };
    const doLines = opts.lines ?? true, doFuncs = opts.functions ?? true, doDecls = opts.declarations ?? true;
    const [shareK, shareN] = opts.share ?? [0, 1];
    // The work is done in phases of small loops over typed arrays, which V8 optimizes early.
    // Strictly increasing input (a pc-table's order) is its own sorted distinct list: no
    // dedupe, and no gather back to the caller's order at the end.
    const k = kernelsOrTwins();
    const { uniq, at } = k.sortPcs(pcs);
    const m = uniq.length;
    const unitOf = k.unitsFor(uniq, this.unitMap.low, this.unitMap.high, this.unitMap.unit);
    let symOf: Int32Array | null = null;

    const files = new Interner();
    const uFile = new Uint32Array(m).fill(NONE);
    const uLine = new Uint32Array(m);
    const uCol = new Uint32Array(m);
    const uFn = new Uint32Array(m).fill(NONE);
    const fnNames: string[] = [], fnFile: number[] = [], fnLine: number[] = [];
    const fnIds = new Map<string, number>();
    const fnCache = new Map<number, number>(); // (symbol, function) pair -> interned id
    const fileCache = new Map<number, Uint32Array>(); // unit -> file index -> interned id (UNSET = not yet)
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
    // A function's declaration file (interned) and line: NONE and 0 when unknown.
    let declFile = NONE, declLine = 0;
    const declOf = (fi: FunctionInfo): void => {
      declFile = NONE; declLine = 0;
      if (fi.declFile < 0) return;
      const du = this.units[fi.declUnit]!;
      const t = this.lineHeader(du);
      const f = t ? internFile(du, t, fi.declFile) : NONE;
      if (f !== NONE) { declFile = f; declLine = fi.declLine; }
    };

    const doInlines = (opts.inlines || opts.inlineFrames || false) && doFuncs;
    // Only the inlined code: no physical functions named, no symbols looked up.
    const onlyInlined = opts.inlinedOnly ?? false;
    const rows = new Int32Array(m).fill(-1);
    const fnOf = new Int32Array(m).fill(-1); // global index of the outermost subprogram, -1 = none
    // Runs of consecutive addresses in one unit (sorted addresses keep a unit's PCs together).
    const runs: number[] = [];
    for (let s = 0; s < m;) {
      const ui = unitOf[s]!;
      let e = s + 1;
      while (e < m && unitOf[e] === ui) e++;
      if (ui >= 0 && ui % shareN === shareK) runs.push(s, e, ui);
      s = e;
    }
    // With the kernels, a unit's lines are resolved at its first run, where the reader would
    // parse its table: budget charges and errors come in the same order either way.
    const unitRuns = doLines && k.wasm ? runsByUnit(runs) : null;
    const kernelRows = new Map<number, KernelRows | null>();
    for (let r = 0; r < runs.length; r += 3) {
      const s = runs[r]!, e = runs[r + 1]!, u = this.units[runs[r + 2]!]!;
      let got: KernelRows | null | undefined;
      if (unitRuns) {
        got = kernelRows.get(u.index);
        if (got === undefined) { got = this.kernelLines(u, unitRuns.get(u.index)!, uniq); kernelRows.set(u.index, got); }
      }
      if (got) {
        copyKernelRows(got, s, e, uFile, uLine, uCol, (raw) => internFile(u, got.header, raw));
      } else if (doLines) {
        const t = this.lineTable(u);
        if (t) {
          lookupRows(t, uniq, s, e, rows);
          copyRows(t, rows, s, e, uFile, uLine, uCol, (raw) => internFile(u, t, raw));
        }
      }
      if (doFuncs && doDecls && !onlyInlined) {
        const f = this.functionsOf(u, doInlines);
        k.spansFor(f.low, f.high, f.fn, f.base, uniq, s, e, fnOf);
      }
    }

    // Symbols name functions, and files where DWARF has none: a line-table job whose every
    // address got a file never parses the symbol table.
    if ((doFuncs && !onlyInlined) || (doLines && anyMissing(uFile, unitOf, shareK, shareN))) symOf = k.symbolsFor(uniq, this.symbols.addr, this.symbols.size);
    const rowFile = doInlines && doLines && opts.inlineFrames ? uFile.slice() : null; // before the symbols fill it in
    if (symOf && doLines) {
      for (let k = 0; k < m; k++) {
        const ui = unitOf[k]!, sym = symOf[k]!;
        if ((ui < 0 ? 0 : ui % shareN) !== shareK || uFile[k] !== NONE || sym < 0) continue;
        // Like llvm-symbolizer: no file from DWARF, so the STT_FILE before a local symbol names it.
        const f = symbolFile(this.symbols, sym);
        if (f) uFile[k] = files.file(f);
      }
    }
    if (symOf && doFuncs) {
      // Sorted addresses come in runs named alike; each run is named once.
      const runs = k.nameRuns(unitOf, symOf, fnOf, shareK, shareN);
      for (let r = 0; r < runs.length; r += 2) {
        const k = runs[r]!, sym = symOf[k]!;
        if (sym < 0) {
          const ui = unitOf[k]!;
          if (ui < 0) continue;
          // No symbol: llvm-symbolizer names the innermost subroutine DIE (maybe an inlined one).
          let map = this.subroutineMaps.get(ui);
          if (!map) { map = new SubroutineMap(this.sec, this.units, this.units[ui]!); this.subroutineMaps.set(ui, map); }
          const leaf = map.lookup(uniq[k]!);
          if (leaf && leaf.name !== '') {
            declOf(leaf);
            uFn[k] = internFn(leaf.name, declFile, declLine);
          }
          continue;
        }
        const fiIndex = fnOf[k]!;
        const key = (sym + 1) * 2 ** 26 + (fiIndex + 1);
        let id = fnCache.get(key);
        if (id === undefined) {
          // The name as llvm-symbolizer prints it (the symbol table's), declared where DWARF says.
          declFile = NONE; declLine = 0;
          if (fiIndex >= 0) declOf(this.functionInfo(fiIndex));
          id = internFn(symbolName(this.symbols, sym), declFile, declLine);
          fnCache.set(key, id);
        }
        uFn.fill(id, k, runs[r + 1]!);
      }
    }

    let inlined: { pcInlined: Uint32Array; callFile: Uint32Array; callLine: Uint32Array; frames: InlineFrames | null } | null = null;
    if (doInlines) {
      inlined = this.inlineChains(uniq, unitOf, symOf, shareK, shareN, uFn, runs, rowFile ? { file: rowFile, filled: uFile, line: uLine, col: uCol } : null,
        (u, t, raw) => internFile(u, t, raw), (fi) => { if (doDecls) declOf(fi); else { declFile = NONE; declLine = 0; } return internFn(fi.name, declFile, declLine); },
        (sym) => { const f = symbolFile(this.symbols, sym); return f ? files.file(f) : NONE; });
    }

    // Back to the caller's order.
    let pcFile = uFile, pcLine = uLine, pcColumn = uCol, pcFunction = uFn;
    if (onlyInlined) [pcFile, pcLine, pcColumn, pcFunction] = [new Uint32Array(0), new Uint32Array(0), new Uint32Array(0), new Uint32Array(0)];
    else if (at) [pcFile, pcLine, pcColumn, pcFunction] = k.gather(at, uFile, uLine, uCol, uFn);
    if (inlined && at) {
      const [i, f, l] = k.gather(at, inlined.pcInlined, inlined.callFile, inlined.callLine, inlined.callLine);
      inlined = { ...inlined, pcInlined: i, callFile: f, callLine: l };
    }
    return {
      buildId: this.buildId,
      directories: files.directories,
      files: files.files,
      fileDirs: Uint32Array.from(files.fileDirs),
      functions: { ...shownNames(fnNames, opts.demangle ?? demanglingEnabled()), file: Uint32Array.from(fnFile), line: Uint32Array.from(fnLine) },
      pcFile, pcLine, pcColumn, pcFunction,
      ...(inlined ? { pcInlined: inlined.pcInlined, pcCallFile: inlined.callFile, pcCallLine: inlined.callLine } : {}),
      ...(inlined?.frames ? { inlineFrames: { ...inlined.frames, of: at } } : {}),
    };
  }

  /**
   * Inlined chains of the sorted addresses of this share (resolve's inlines option): per address
   * the innermost inlined function (pcInlined, NONE when not inlined) and, given the line
   * results, every frame. uFn holds the --no-inlines names; naming: a DIE's function index.
   */
  private inlineChains(uniq: Float64Array, unitOf: Int32Array, symOf: Int32Array | null, shareK: number, shareN: number, uFn: Uint32Array,
    runs: number[], lines: { file: Uint32Array; filled: Uint32Array; line: Uint32Array; col: Uint32Array } | null,
    internFile: (u: Unit, t: LineTable, raw: number) => number, nameDie: (fi: FunctionInfo) => number,
    symFile: (sym: number) => number): { pcInlined: Uint32Array; callFile: Uint32Array; callLine: Uint32Array; frames: InlineFrames | null } {
    const m = uniq.length;
    const pcInlined = new Uint32Array(m).fill(NONE);
    const pcCallFile = new Uint32Array(m).fill(NONE), pcCallLine = new Uint32Array(m);
    const start = new Uint32Array(lines ? m + 1 : 0);
    const fn: number[] = [], file: number[] = [], line: number[] = [], column: number[] = [];
    const named = new Map<number, number>(); // DIE offset -> function index
    // The unit of the last address, its tree and its line table's header.
    let lastUi = -1, tree: InlineTree | null = null, u: Unit | null = null, t: LineTable | null = null;
    // Inlined copies of a function have no name of their own, only its origin: each origin is
    // named once (what subroutineInfo finds for such a DIE depends on its origin alone).
    const byOrigin = new Map<number, number>();
    const nameOf = (node: number): number => {
      const die = tree!.die(node), origin = tree!.namedByOrigin(node);
      let id = origin >= 0 ? byOrigin.get(origin) : named.get(die);
      if (id === undefined) {
        const fi = origin >= 0 ? namedThrough(this.sec, this.units, u!, origin) : subroutineInfo(this.sec, this.units, u!, die);
        id = fi.name === '' ? NONE : nameDie(fi);
        if (origin >= 0) byOrigin.set(origin, id); else named.set(die, id);
      }
      return id;
    };
    const none: number[] = [];
    // Each address's innermost subroutine node, found run by run of a unit's sorted addresses.
    const ops = kernelsOrTwins();
    if (!lines) {
      // pcInlined only, with no JavaScript per address: per run of a unit's addresses, each
      // distinct innermost node is looked at once (in address order, so names and files are
      // interned in the same order as address by address), its answer kept per node, and the
      // addresses take their node's answer with the gather kernel. count stands for no node.
      const leafOf = new Int32Array(m);
      type PerNode = { fn: Uint32Array; file: Uint32Array; line: Uint32Array; seen: Uint8Array };
      let node: PerNode | null = null;
      const perNode = new Map<number, PerNode>();
      for (let r = 0; r < runs.length; r += 3) {
        const s = runs[r]!, e = runs[r + 1]!, ui = runs[r + 2]!;
        if (ui !== lastUi) {
          lastUi = ui;
          u = this.units[ui]!;
          tree = this.inlineTrees.get(ui) ?? null;
          if (!tree) { tree = new InlineTree(this.sec, u); this.inlineTrees.set(ui, tree); }
          t = this.lineHeader(u);
          node = perNode.get(ui) ?? null;
          if (!node) {
            const n = tree.count + 1;
            node = { fn: new Uint32Array(n).fill(NONE), file: new Uint32Array(n).fill(NONE), line: new Uint32Array(n), seen: new Uint8Array(n) };
            perNode.set(ui, node);
          }
        }
        const none = tree!.count;
        leafOf.fill(none, s, e);
        ops.spansFor(tree!.keys, tree!.highs, tree!.nodeIds, 0, uniq, s, e, leafOf);
        const leaves = leafOf.subarray(s, e);
        const same = ops.nameRuns(unitOf.subarray(s, e), leaves, leaves, shareK, shareN);
        const seen = node!.seen;
        for (let j = 0; j < same.length; j += 2) {
          const leaf = leaves[same[j]!]!;
          if (seen[leaf]) continue;
          seen[leaf] = 1;
          const o = leaf === none ? -1 : tree!.outermostOf(leaf);
          if (o < 0) continue; // no node, or a subprogram
          const id = nameOf(leaf);
          if (id === NONE) continue; // an inlined function without a name: no call site either
          node!.fn[leaf] = id;
          node!.file[leaf] = t ? internFile(u!, t, tree!.callFile(o)) : NONE;
          node!.line[leaf] = tree!.callLine(o);
        }
        const [fi, ff, fl] = ops.gather(new Uint32Array(leafOf.buffer, leaves.byteOffset, e - s), node!.fn, node!.file, node!.line, node!.line);
        pcInlined.set(fi, s); pcCallFile.set(ff, s); pcCallLine.set(fl, s);
      }
      return { pcInlined, callFile: pcCallFile, callLine: pcCallLine, frames: null };
    }
    const leafOf = new Int32Array(m).fill(-1);
    let leafEnd = 0;
    for (let k = 0; k < m; k++) {
      start[k] = fn.length;
      const ui = unitOf[k]!;
      if ((ui < 0 ? 0 : ui % shareN) !== shareK) continue;
      const sym = symOf ? symOf[k]! : -1;
      if (ui >= 0 && ui !== lastUi) {
        lastUi = ui;
        u = this.units[ui]!;
        tree = this.inlineTrees.get(ui) ?? null;
        if (!tree) { tree = new InlineTree(this.sec, u); this.inlineTrees.set(ui, tree); }
        t = this.lineHeader(u);
      }
      if (ui >= 0 && k >= leafEnd) {
        let e = k + 1;
        while (e < m && unitOf[e] === ui) e++;
        ops.spansFor(tree!.keys, tree!.highs, tree!.nodeIds, 0, uniq, k, e, leafOf);
        leafEnd = e;
      }
      const chain = ui >= 0 ? tree!.chainFrom(leafOf[k]!) : none;
      if (chain.length > 0 && !tree!.isSubprogram(chain[0]!)) {
        pcInlined[k] = nameOf(chain[0]!);
        // The call site in the physical function: that of the outermost inlined frame (none for
        // code whose inlined function has no name: pcInlined says NONE there).
        let outer = chain.length - 1;
        if (tree!.isSubprogram(chain[outer]!)) outer--;
        const o = chain[outer]!;
        if (pcInlined[k] !== NONE) {
          pcCallFile[k] = t ? internFile(u!, t, tree!.callFile(o)) : NONE;
          pcCallLine[k] = tree!.callLine(o);
        }
      }
      if (chain.length === 0) {
        fn.push(uFn[k]!); file.push(lines.filled[k]!); line.push(lines.line[k]!); column.push(lines.col[k]!);
        continue;
      }
      const last = chain.length - 1;
      for (let i = 0; i <= last; i++) {
        let f: number, l: number, c: number;
        if (i === 0) { f = lines.file[k]!; l = lines.line[k]!; c = lines.col[k]!; }
        else {
          const inner = chain[i - 1]!;
          f = t ? internFile(u!, t, tree!.callFile(inner)) : NONE;
          l = tree!.callLine(inner); c = tree!.callColumn(inner);
        }
        // The outermost frame is named by the symbol table, which also gives it a missing file.
        if (i === last && sym >= 0) {
          fn.push(uFn[k]!);
          if (f === NONE) f = symFile(sym);
        } else fn.push(nameOf(chain[i]!));
        file.push(f); line.push(l); column.push(c);
      }
    }
    start[m] = fn.length;
    return {
      pcInlined, callFile: pcCallFile, callLine: pcCallLine,
      frames: lines ? { start, of: null, fn: Uint32Array.from(fn), file: Uint32Array.from(file), line: Uint32Array.from(line), column: Uint32Array.from(column) } : null,
    };
  }

  /**
   * A unit's lines by the WebAssembly kernel, one program run for all its runs of addresses
   * (s, e pairs of uniq), with no row table built in JavaScript: per address (in the order of
   * the runs) the row's file index (NO_ROW: none), line and column. Null when the caller must
   * parse the table with the reader (kernels off, table already parsed, the header does not
   * parse, or the kernel did not run the whole program).
   */
  private kernelLines(u: Unit, list: number[], uniq: Float64Array): KernelRows | null {
    const k = kernelsOrTwins();
    if (!k.wasm || this.lineTables.has(u.index)) return null;
    let header: LineTable | null;
    try {
      header = this.lineHeader(u, false);
    } catch {
      return null; // the reader's parse reports it
    }
    if (!header?.program) return null;
    let total = 0;
    for (let i = 0; i < list.length; i += 2) total += list[i + 1]! - list[i]!;
    const addrs = list.length === 2 ? uniq.subarray(list[0]!, list[1]!) : new Float64Array(total);
    const runStarts = new Uint32Array(list.length / 2);
    for (let i = 0, at = 0; i < list.length; i += 2) {
      if (list.length > 2) addrs.set(uniq.subarray(list[i]!, list[i + 1]!), at);
      runStarts[i / 2] = at;
      at += list[i + 1]! - list[i]!;
    }
    const got = k.lineLookup(header.program, addrs, runStarts);
    if (!got) return null;
    // Charged once per unit, as the reader charges its (then cached) whole parse.
    if (!this.kernelCharged.has(u.index)) {
      this.sec.budget.chargeLines(header.program.end - u.stmtList);
      this.kernelCharged.add(u.index);
    }
    return { ...got, header, next: 0 };
  }

  /** A subprogram by its global index (units' function lists concatenated in parse order). */
  private functionInfo(global: number): FunctionInfo {
    let f = this.allFuncs[global];
    if (!f) throw new DebugInfoError('CORRUPT', `function index ${global} out of range`);
    const lazy = this.lazyFuncs.get(global);
    if (lazy) {
      this.lazyFuncs.delete(global);
      declThrough(this.sec, this.units, lazy.u, lazy.ref, f);
    }
    return f;
  }
}

/**
 * Function names as llvm-symbolizer prints them (demangled, when on) and, when any name was
 * demangled, the names as found (symbol table or DWARF linkage name) in a parallel array, ''
 * where the shown name is the found one. Interning is by the found name, so two linkage names
 * that demangle alike (a constructor's C1 and C2 copies) stay two functions.
 */
function shownNames(found: string[], demangle: boolean): { names: string[]; linkageNames?: string[] } {
  if (!demangle || found.length === 0) return { names: found };
  const names = demangleNames(found);
  let linkageNames: string[] | undefined;
  for (let i = 0; i < found.length; i++) {
    if (names[i] === found[i]) continue;
    linkageNames ??= new Array<string>(found.length).fill('');
    linkageNames[i] = found[i]!;
  }
  return linkageNames ? { names, linkageNames } : { names };
}

/** The (s, e) pairs of each unit's runs, in order. */
function runsByUnit(runs: number[]): Map<number, number[]> {
  const byUnit = new Map<number, number[]>();
  for (let r = 0; r < runs.length; r += 3) {
    const ui = runs[r + 2]!;
    let list = byUnit.get(ui);
    if (!list) { list = []; byUnit.set(ui, list); }
    list.push(runs[r]!, runs[r + 1]!);
  }
  return byUnit;
}

/** A unit's lines from the kernel, consumed run by run (next: where the next run's start). */
interface KernelRows { file: Uint32Array; line: Uint32Array; col: Uint32Array; header: LineTable; next: number }

/**
 * Kernel rows for uniq[s..e) (the unit's next run): files are interned run by run in address
 * order, as copyRows does, so ids come out the same either way.
 */
function copyKernelRows(got: KernelRows, s: number, e: number, file: Uint32Array, line: Uint32Array, col: Uint32Array, intern: (raw: number) => number): void {
  let lastRaw = -1, lastId = NONE;
  for (let x = s, i = got.next; x < e; x++, i++) {
    const raw = got.file[i]!;
    if (raw === NO_ROW) continue;
    if (raw !== lastRaw) { lastId = intern(raw); lastRaw = raw; }
    file[x] = lastId; line[x] = got.line[i]!; col[x] = got.col[i]!;
  }
  got.next += e - s;
}

/** Row fields for uniq[s..e) from their rows; file indices interned (the same one as the last is reused). */
function copyRows(t: LineTable, rows: Int32Array, s: number, e: number, file: Uint32Array, line: Uint32Array, col: Uint32Array, intern: (raw: number) => number): void {
  let lastRaw = -1, lastId = NONE;
  for (let k = s; k < e; k++) {
    const row = rows[k]!;
    if (row < 0) continue;
    const raw = t.rowFile[row]!;
    if (raw !== lastRaw) { lastId = intern(raw); lastRaw = raw; }
    file[k] = lastId; line[k] = t.rowLine[row]!; col[k] = t.rowCol[row]!;
  }
}

/** Whether some address of this share has no file yet. */
function anyMissing(file: Uint32Array, unitOf: Int32Array, shareK: number, shareN: number): boolean {
  for (let k = 0; k < file.length; k++) {
    const ui = unitOf[k]!;
    if (file[k] === NONE && (ui < 0 ? 0 : ui % shareN) === shareK) return true;
  }
  return false;
}

/**
 * Line-table rows for uniq[s..e) (all in one unit), as LLVM's lookupAddress picks them: the first
 * sequence whose end is above the address, if it starts at or below it; in it, the last row at or
 * below the address. The sequence is reused while it stays the answer.
 */
function lookupRows(t: LineTable, uniq: Float64Array, s: number, e: number, rows: Int32Array): void {
  const nSeq = t.seqHigh.length;
  let seq = -1;
  for (let k = s; k < e; k++) {
    const a = uniq[k]!;
    if (!(seq >= 0 && a < t.seqHigh[seq]! && (seq === 0 || t.seqHigh[seq - 1]! <= a))) seq = upperBoundSeq(t, a);
    if (seq < nSeq && t.seqLow[seq]! <= a && a < t.seqHigh[seq]!) rows[k] = rowInSeq(t, seq, a);
  }
}
