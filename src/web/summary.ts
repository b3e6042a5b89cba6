/**
 * Per-file and per-function coverage of a target, derived from its source index and seen bits.
 * The API (GET /api/targets/:id), the lcov and JSON exports all use this one computation, so
 * their totals agree by construction.
 */
import type { TargetDetail, TargetInfo } from '../contracts/hub.js';
import type { SourceIndex } from '../contracts/source-index.js';
import { isSeen } from '../contracts/seen.js';
import { commonRoot, isLibraryPath, sourcePathOf } from '../contracts/paths.js';

const NONE = 0xffffffff;

export interface Count {
  covered: number;
  total: number;
}

export interface FileSummary {
  /** Index into the source index's files (the `file` of /source?file=N). */
  file: number;
  /** Directory joined with the file name, normalised (src/contracts/paths.ts). */
  path: string;
  /** Under the system's include directories or matching --exclude: shown apart, left out of lcov by default. */
  library: boolean;
  /** A project file's path relative to the project's common root (the path itself for library files). */
  relPath: string;
  pcs: Count;
  /** Distinct source lines with at least one PC; covered = with at least one seen PC. */
  lines: Count;
  /** Functions declared in this file; covered = with at least one seen PC. */
  functions: Count;
  /** PCs on lines with two or more PCs (lcov's branches: one BRDA record per such PC); covered = seen. */
  branches: Count;
}

export interface FunctionSummary {
  function: number;
  name: string;
  /** As the binary names it (mangled), when it differs from `name`. */
  linkageName?: string;
  /** File index of its declaration (null when unknown) and declaration line. */
  file: number | null;
  line: number;
  pcs: Count;
  /**
   * Code of other functions inlined into this one (its PCs with pcInlined set), per inlined
   * function, most PCs first; absent when none (or the index has no pcInlined). These PCs also
   * count in `pcs`: a PC counts under the function it physically belongs to.
   */
  inlined?: InlinedSummary[];
}

export interface InlinedSummary {
  function: number;
  name: string;
  linkageName?: string;
  pcs: Count;
}

export interface Totals {
  pcs: Count;
  lines: Count;
  functions: Count;
  /** As FileSummary.branches, summed. */
  branches: Count;
  files: number;
}

export interface TargetSummary {
  seq: number;
  /** Over every file (and every PC, those of unknown files too). */
  totals: Totals & {
    /** The project's own files, and the library's beside them (PCs of unknown files in neither). */
    project: Totals;
    library: Totals;
    /** The directory project paths are relative to ('' when they share none). */
    root: string;
  };
  files: FileSummary[];
  functions: FunctionSummary[];
  /** Per file: its lines ascending and, in step, 1 if covered else 0 (for the exports). */
  lineHits: { lines: Uint32Array; hits: Uint8Array }[];
}

/** The normalised path of a file of the index: the spelling of the API, lcov SF: and /source. */
export const filePath = (index: SourceIndex, file: number): string => sourcePathOf(index, file);

/**
 * What never changes for an index: each PC's source line as a dense id, lines sorted by file then
 * number, and per-file / per-function PC totals. Built once per index (a sort of 64-bit keys, no
 * hash maps), so a summary afterwards costs one pass over the seen PCs plus one over the lines.
 */
interface Layout {
  pcsLen: number;
  /** Per PC: its line id, NONE when the file or line is unknown. */
  lineOf: Uint32Array;
  /** Line ids are assigned in (file, line) order: per file, [fileStart[f], fileStart[f + 1]). */
  fileStart: Uint32Array;
  lineNo: Uint32Array;
  /** Per line id: its PCs. */
  linePcs: Uint32Array;
  filePcs: Uint32Array;
  fnPcs: Uint32Array;
  /** Inlined code: (physical function, inlined function) pairs, grouped by physical function, and each pair's PCs. */
  inl: InlinedLayout | null;
}

interface InlinedLayout {
  /** Pairs of physical function fnStart[f] .. fnStart[f + 1]. */
  fnStart: Uint32Array;
  /** Per pair: the inlined function and the number of PCs. */
  callee: Uint32Array;
  pcs: Uint32Array;
  /** Per PC: its pair, NONE when not in inlined code. */
  pairOf: Uint32Array;
}

/** Groups inlined PCs by (physical function, innermost inlined function). */
function inlinedLayout(index: SourceIndex, n: number, pcsLen: number): InlinedLayout | null {
  const inl = index.pcInlined;
  if (!inl) return null;
  const nFuncs = index.functions.names.length;
  const pairs = new Map<number, number>();
  const keys: number[] = [];
  for (let pc = 0; pc < n; pc++) {
    const g = inl[pc]!, f = index.pcFunction[pc]!;
    if (g === NONE || g >= nFuncs || f === NONE || f >= nFuncs) continue;
    const key = f * nFuncs + g;
    if (!pairs.has(key)) { pairs.set(key, 0); keys.push(key); }
  }
  keys.sort((a, b) => a - b);
  keys.forEach((k, i) => pairs.set(k, i));
  const fnStart = new Uint32Array(nFuncs + 1), callee = new Uint32Array(keys.length), pcs = new Uint32Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const f = Math.floor(keys[i]! / nFuncs);
    callee[i] = keys[i]! - f * nFuncs;
    fnStart[f + 1]!++;
  }
  for (let f = 0; f < nFuncs; f++) fnStart[f + 1]! += fnStart[f]!;
  const pairOf = new Uint32Array(pcsLen).fill(NONE);
  for (let pc = 0; pc < n; pc++) {
    const g = inl[pc]!, f = index.pcFunction[pc]!;
    if (g === NONE || g >= nFuncs || f === NONE || f >= nFuncs) continue;
    const p = pairs.get(f * nFuncs + g)!;
    pairOf[pc] = p;
    pcs[p]!++;
  }
  return { fnStart, callee, pcs, pairOf };
}

const layouts = new WeakMap<SourceIndex, Layout>();

function layoutOf(index: SourceIndex, pcsLen: number): Layout {
  const cached = layouts.get(index);
  if (cached && cached.pcsLen === pcsLen) return cached;
  const nFiles = index.files.length, nFuncs = index.functions.names.length;
  const n = Math.min(pcsLen, index.pcFile.length);
  const filePcs = new Uint32Array(nFiles), fnPcs = new Uint32Array(nFuncs);
  // key = file * 2^32 + line (exact in a double while file < 2^21), PCs without a line get +Infinity.
  const keys = new Float64Array(n);
  for (let pc = 0; pc < n; pc++) {
    const f = index.pcFile[pc]!, line = index.pcLine[pc]!;
    const known = f !== NONE && f < nFiles;
    if (known) filePcs[f]!++;
    keys[pc] = known && line !== 0 ? f * 4294967296 + line : Infinity;
    const fn = index.pcFunction[pc]!;
    if (fn !== NONE && fn < nFuncs) fnPcs[fn]!++;
  }
  const sorted = keys.slice().sort();
  const distinct: number[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const k = sorted[i]!;
    if (k === Infinity) break;
    if (i === 0 || k !== sorted[i - 1]) distinct.push(k);
  }
  const lineNo = new Uint32Array(distinct.length);
  const fileStart = new Uint32Array(nFiles + 1);
  for (let id = 0; id < distinct.length; id++) {
    const f = Math.floor(distinct[id]! / 4294967296);
    lineNo[id] = distinct[id]! - f * 4294967296;
    fileStart[f + 1]!++;
  }
  for (let f = 0; f < nFiles; f++) fileStart[f + 1]! += fileStart[f]!;
  const lineOf = new Uint32Array(pcsLen).fill(NONE);
  const dk = Float64Array.from(distinct);
  const linePcs = new Uint32Array(distinct.length);
  for (let pc = 0; pc < n; pc++) {
    const k = keys[pc]!;
    if (k === Infinity) continue;
    let lo = 0, hi = dk.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (dk[mid]! < k) lo = mid + 1;
      else hi = mid;
    }
    lineOf[pc] = lo;
    linePcs[lo]!++;
  }
  const layout: Layout = { pcsLen, lineOf, fileStart, lineNo, linePcs, filePcs, fnPcs, inl: inlinedLayout(index, n, pcsLen) };
  layouts.set(index, layout);
  return layout;
}

export function summarize(index: SourceIndex, seen: Uint8Array, pcsLen: number, seq: number, exclude: readonly RegExp[] = []): TargetSummary {
  const L = layoutOf(index, pcsLen);
  const nFiles = index.files.length;
  const nFuncs = index.functions.names.length;
  const fileCovPcs = new Uint32Array(nFiles), fnCov = new Uint32Array(nFuncs);
  const lineHit = new Uint8Array(L.lineNo.length);
  const lineSeen = new Uint32Array(L.lineNo.length);
  const pairSeen = new Uint32Array(L.inl?.callee.length ?? 0);
  let coveredPcs = 0;
  const n = Math.min(pcsLen, index.pcFile.length);
  // Only seen PCs matter here: walk the set bits.
  const bytes = Math.min(seen.length, Math.ceil(pcsLen / 8));
  for (let byte = 0; byte < bytes; byte++) {
    let b = seen[byte]!;
    while (b !== 0) {
      const pc = byte * 8 + (31 - Math.clz32(b & -b));
      b &= b - 1;
      if (pc >= pcsLen) break;
      coveredPcs++;
      if (pc >= n) continue;
      const f = index.pcFile[pc]!;
      if (f !== NONE && f < nFiles) fileCovPcs[f]!++;
      const id = L.lineOf[pc]!;
      if (id !== NONE) {
        lineHit[id] = 1;
        lineSeen[id]!++;
      }
      const fn = index.pcFunction[pc]!;
      if (fn !== NONE && fn < nFuncs) fnCov[fn]!++;
      const pair = L.inl ? L.inl.pairOf[pc]! : NONE;
      if (pair !== NONE) pairSeen[pair]!++;
    }
  }
  const fileFns: Count[] = Array.from({ length: nFiles }, () => ({ covered: 0, total: 0 }));
  const functions: FunctionSummary[] = [];
  let fnTotal = 0, fnCovered = 0;
  for (let i = 0; i < nFuncs; i++) {
    if (L.fnPcs[i] === 0) continue; // declared but no instrumented PC: nothing to report
    const file = index.functions.file[i]!;
    const known = file !== NONE && file < nFiles;
    const link = index.functions.linkageNames?.[i];
    const inlined: InlinedSummary[] = [];
    if (L.inl) {
      for (let p = L.inl.fnStart[i]!; p < L.inl.fnStart[i + 1]!; p++) {
        const g = L.inl.callee[p]!, gl = index.functions.linkageNames?.[g];
        inlined.push({ function: g, name: index.functions.names[g]!, ...(gl ? { linkageName: gl } : {}), pcs: { covered: pairSeen[p]!, total: L.inl.pcs[p]! } });
      }
      inlined.sort((a, b) => b.pcs.total - a.pcs.total || a.function - b.function);
    }
    functions.push({ function: i, name: index.functions.names[i]!, ...(link ? { linkageName: link } : {}), file: known ? file : null, line: index.functions.line[i]!, pcs: { covered: fnCov[i]!, total: L.fnPcs[i]! }, ...(inlined.length ? { inlined } : {}) });
    fnTotal++;
    if (fnCov[i]! > 0) fnCovered++;
    if (known) {
      fileFns[file]!.total++;
      if (fnCov[i]! > 0) fileFns[file]!.covered++;
    }
  }
  const files: FileSummary[] = [];
  const lineHits: TargetSummary['lineHits'] = [];
  let linesTotal = 0, linesCovered = 0;
  const zero = (): Totals => ({ pcs: { covered: 0, total: 0 }, lines: { covered: 0, total: 0 }, functions: { covered: 0, total: 0 }, branches: { covered: 0, total: 0 }, files: 0 });
  const allBranches: Count = { covered: 0, total: 0 };
  const project = zero(), library = zero();
  for (let f = 0; f < nFiles; f++) {
    const a = L.fileStart[f]!, z = L.fileStart[f + 1]!;
    const hits = lineHit.subarray(a, z);
    let cov = 0;
    for (let i = 0; i < hits.length; i++) cov += hits[i]!;
    const branches: Count = { covered: 0, total: 0 };
    for (let id = a; id < z; id++) {
      if (L.linePcs[id]! < 2) continue;
      branches.total += L.linePcs[id]!;
      branches.covered += lineSeen[id]!;
    }
    lineHits.push({ lines: L.lineNo.subarray(a, z), hits });
    if (L.filePcs[f] === 0 && fileFns[f]!.total === 0) continue;
    linesTotal += z - a;
    linesCovered += cov;
    const path = filePath(index, f);
    const lib = isLibraryPath(path, exclude);
    files.push({ file: f, path, library: lib, relPath: path, pcs: { covered: fileCovPcs[f]!, total: L.filePcs[f]! }, lines: { covered: cov, total: z - a }, functions: fileFns[f]!, branches });
    const t = lib ? library : project;
    t.files++;
    t.pcs.covered += fileCovPcs[f]!; t.pcs.total += L.filePcs[f]!;
    t.lines.covered += cov; t.lines.total += z - a;
    t.functions.covered += fileFns[f]!.covered; t.functions.total += fileFns[f]!.total;
    t.branches.covered += branches.covered; t.branches.total += branches.total;
    allBranches.covered += branches.covered; allBranches.total += branches.total;
  }
  // Project paths read relative to their common root (the way a repository names them).
  const root = commonRoot(files.filter((f) => !f.library && f.path.startsWith('/')).map((f) => f.path));
  if (root) for (const f of files) if (!f.library && f.path.startsWith(root)) f.relPath = f.path.slice(root.length);
  return {
    seq,
    totals: { pcs: { covered: coveredPcs, total: pcsLen }, lines: { covered: linesCovered, total: linesTotal }, functions: { covered: fnCovered, total: fnTotal }, branches: allBranches, files: files.length, project, library, root },
    files,
    functions,
    lineHits,
  };
}

/** Memoizes summaries per target until its seq or index changes (1M-PC targets take tens of ms). */
export class SummaryCache {
  private readonly cache = new Map<string, { seq: number; index: SourceIndex; summary: TargetSummary }>();
  /** `exclude`: --exclude patterns; paths matching one are library files. */
  constructor(private readonly exclude: readonly RegExp[] = []) {}
  get(t: TargetDetail): TargetSummary | null {
    if (!t.index) return null;
    const c = this.cache.get(t.id);
    if (c && c.seq === t.seq && c.index === t.index) return c.summary;
    const summary = summarize(t.index, t.seen, t.stats.pcsLen, t.seq, this.exclude);
    this.cache.set(t.id, { seq: t.seq, index: t.index, summary });
    return summary;
  }
  delete(id: string) {
    this.cache.delete(id);
  }
}

/** The TargetInfo part of a detail (without the big arrays), for JSON and the wire. */
export function infoOf(t: TargetInfo | TargetDetail): TargetInfo {
  // Everything but the detail's large parts, so a field added to TargetInfo is never left out.
  // (The fleet's per-node breakdown, `nodes`, is for the detail only: GET /api/targets/:id.)
  const { index: _i, seen: _s, firstSeen: _f, seq: _q, nodes: _n, ...info } = t as TargetDetail;
  return info;
}

/**
 * An lcov tracefile (geninfo format) genhtml accepts: one record per source file. Hits are 0/1:
 * covd knows seen, not counts. A line with two or more PCs also gets one branch record per PC
 * (`BRDA:line,0,k,taken`, k in PC order; taken 1 = seen, 0 = not seen while another PC of the line
 * was, '-' = no PC of the line seen), so genhtml shows a partly covered line as 2/16 rather than as
 * a plain hit; BRF / BRH per file are the summary's `branches`.
 */
export function toLcov(t: TargetDetail, s: TargetSummary, opts: { library?: boolean } = {}): string {
  const index = t.index!;
  const out: string[] = [`TN:${t.name.replace(/[^A-Za-z0-9_]/g, '_')}`];
  // Each line id's PCs, in PC order (the layout maps PC -> line id; the summary's PC count is its pcsLen).
  const L = layoutOf(index, s.totals.pcs.total);
  const at = new Uint32Array(L.linePcs.length + 1);
  for (let id = 0; id < L.linePcs.length; id++) at[id + 1] = at[id]! + L.linePcs[id]!;
  const byLine = new Uint32Array(at[L.linePcs.length]!);
  const fill = at.slice(0, L.linePcs.length);
  for (let pc = 0; pc < L.lineOf.length; pc++) {
    const id = L.lineOf[pc]!;
    if (id !== NONE) byLine[fill[id]!++] = pc;
  }
  const fnsByFile = new Map<number, FunctionSummary[]>();
  for (const fn of s.functions) {
    if (fn.file === null) continue;
    let a = fnsByFile.get(fn.file);
    if (!a) fnsByFile.set(fn.file, (a = []));
    a.push(fn);
  }
  for (const f of s.files) {
    // Library code (system headers, --exclude) is left out, as llvm-cov's -ignore-filename-regex does.
    if (f.library && !opts.library) continue;
    const { lines, hits } = s.lineHits[f.file]!;
    out.push(`SF:${filePath(index, f.file)}`);
    const fns = fnsByFile.get(f.file) ?? [];
    const names = new Map<string, number>();
    const uniq = fns.map((fn) => {
      // lcov keys functions by name within a file; overloads and statics can repeat one.
      // Mangled names, as llvm-cov export and geninfo write them (genhtml --demangle-cpp shows them demangled).
      const base = (fn.linkageName ?? fn.name).replace(/[,\n\r]/g, '_');
      const k = names.get(base) ?? 0;
      names.set(base, k + 1);
      return k === 0 ? base : `${base}#${k + 1}`;
    });
    fns.forEach((fn, i) => out.push(`FN:${Math.max(1, fn.line)},${uniq[i]}`));
    fns.forEach((fn, i) => out.push(`FNDA:${fn.pcs.covered > 0 ? 1 : 0},${uniq[i]}`));
    out.push(`FNF:${fns.length}`, `FNH:${fns.filter((fn) => fn.pcs.covered > 0).length}`);
    const base = L.fileStart[f.file]!;
    for (let i = 0; i < lines.length; i++) {
      const id = base + i;
      if (L.linePcs[id]! < 2) continue;
      for (let k = 0, j = at[id]!; j < at[id + 1]!; j++, k++) out.push(`BRDA:${lines[i]},0,${k},${isSeen(t.seen, byLine[j]!) ? 1 : hits[i] ? 0 : '-'}`);
    }
    if (f.branches.total) out.push(`BRF:${f.branches.total}`, `BRH:${f.branches.covered}`);
    for (let i = 0; i < lines.length; i++) out.push(`DA:${lines[i]},${hits[i]}`);
    out.push(`LF:${f.lines.total}`, `LH:${f.lines.covered}`, 'end_of_record');
  }
  return out.join('\n') + '\n';
}

/** The JSON export: summary plus per-file covered/uncovered line lists and per-PC locations of seen PCs. */
export function toJsonExport(t: TargetDetail, s: TargetSummary): unknown {
  const index = t.index!;
  return {
    format: 'covd-coverage-1',
    target: infoOf(t),
    seq: s.seq,
    totals: s.totals,
    files: s.files.map((f) => {
      const { lines, hits } = s.lineHits[f.file]!;
      const covered: number[] = [], uncovered: number[] = [];
      lines.forEach((l, i) => (hits[i] ? covered : uncovered).push(l));
      return { ...f, coveredLines: covered, uncoveredLines: uncovered };
    }),
    functions: s.functions,
    seenPcs: (() => {
      const pcs: number[] = [];
      for (let pc = 0; pc < t.stats.pcsLen; pc++) if (isSeen(t.seen, pc)) pcs.push(pc);
      return pcs;
    })(),
    directories: index.directories,
  };
}
