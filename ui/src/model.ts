/**
 * Client-side state of one followed target: the source index, the seen bits and first-seen
 * times, and the per-file / per-function / per-line coverage derived from them.
 *
 * Line semantics: a line is covered when all its PCs are seen, partly covered when some are,
 * uncovered when none are, and not instrumented when no PC maps to it.
 */
import type { HistorySample, TargetInfo, TargetStats } from '../../src/contracts/hub.js';
import type { WireSourceIndex } from '../../src/web/protocol.js';
import { isSeen, setSeen } from '../../src/contracts/seen.js';
import { commonRoot, isLibraryPath, joinSourcePath } from '../../src/contracts/paths.js';
import { authQuery } from './api.js';

const NONE = 0xffffffff;

export const enum LineState {
  None = 0,
  Uncovered = 1,
  Partly = 2,
  Covered = 3,
}

export interface FileLines {
  /** Per line (index = line number, 0 unused): LineState. */
  state: Uint8Array;
  /** Per line: PCs seen / PCs in all. */
  seen: Uint32Array;
  total: Uint32Array;
  /** Per line: newest first-seen time of its PCs (s since epoch), 0 if none seen. */
  newest: Uint32Array;
  /** Lines that start a run of missed (uncovered or partly covered) lines, ascending. */
  missStarts: Uint32Array;
}

export class TargetModel {
  info: TargetInfo;
  index: WireSourceIndex | null = null;
  seen: Uint8Array = new Uint8Array(0);
  firstSeen: Uint32Array = new Uint32Array(0);
  seq = -1;
  /** The server said the target was removed; if it comes back, subscribe afresh. */
  removed = false;
  /** The daemon run the seq belongs to (from the snapshot); a resume names it. */
  epoch: string | undefined = undefined;
  history: HistorySample[] = [];
  /** True once a snapshot arrived after the last (re)subscription. */
  synced = false;

  // Derived from the index (rebuilt when it changes).
  /** Full path per file ("dir/file"), as shown and as used in deep links. */
  paths: string[] = [];
  private byPath = new Map<string, number>();
  /** PCs grouped by file, each group sorted by line: filePcs[fileStart[f] .. fileStart[f+1]). */
  fileStart = new Uint32Array(1);
  filePcs = new Uint32Array(0);
  fileTotal = new Uint32Array(0);
  fileCovered = new Uint32Array(0);
  fnTotal = new Uint32Array(0);
  fnCovered = new Uint32Array(0);
  /** Per file: its instrumented lines (distinct lines with a PC), and those with at least one seen PC (the API's and lcov's line counts). */
  fileLineTotal = new Uint32Array(0);
  fileLineHit = new Uint32Array(0);
  /** Per PC: the id of its (file, line), NONE without a line; per line id: its seen PCs. */
  private pcLineId = new Uint32Array(0);
  private lineSeen = new Uint32Array(0);
  /** Bumped whenever coverage changes, so views can tell whether to redraw. */
  version = 0;

  // What the daemon adds to the index over HTTP (library files, inlined code); filled in after setIndex.
  /**
   * Per file: 1 when it is library code (system headers, --exclude). Guessed from the system's
   * include directories until the daemon's word (GET /api/targets/:id) arrives.
   */
  library = new Uint8Array(0);
  /** Per file: a project file's path relative to projectRoot (library files: their full path). */
  relPaths: string[] = [];
  /** The directory project paths are relative to ('' when they share none). */
  projectRoot = '';
  /**
   * Inlined code, per PC (SourceIndex.pcInlined and its call site, from the index or from GET
   * /api/targets/:id/pcs): the innermost inlined function (NONE: not inlined), the call site's
   * file (NONE: unknown) and line. Null until known, or when the daemon has none.
   */
  inlined: { fn: Uint32Array; callFile: Uint32Array; callLine: Uint32Array } | null = null;
  /** Per physical function: its PCs in inlined code (ascending). */
  private inlinedPcs = new Map<number, number[]>();
  /** Called when library flags or inlined code arrive, so views can redraw. */
  readonly onExtras = new Set<() => void>();

  constructor(info: TargetInfo) {
    this.info = info;
  }

  isSeen(pc: number): boolean {
    return isSeen(this.seen, pc);
  }

  setIndex(index: WireSourceIndex): void {
    this.index = index;
    const { files, directories, fileDirs, pcFile, pcLine, pcFunction } = index;
    this.paths = files.map((f, i) => joinSourcePath(directories[fileDirs[i]!] ?? '', f));
    this.byPath = new Map(this.paths.map((p, i) => [trimSlash(p), i]));
    const nFiles = files.length;
    const nPcs = pcFile.length;
    // Counting sort of PCs by file, then sort each file's group by line.
    const start = new Uint32Array(nFiles + 1);
    for (let i = 0; i < nPcs; i++) {
      const f = pcFile[i]!;
      if (f !== NONE && f < nFiles) start[f + 1]!++;
    }
    for (let f = 0; f < nFiles; f++) start[f + 1]! += start[f]!;
    const pcs = new Uint32Array(start[nFiles]!);
    const fill = start.slice(0, nFiles);
    for (let i = 0; i < nPcs; i++) {
      const f = pcFile[i]!;
      if (f !== NONE && f < nFiles) pcs[fill[f]!++] = i;
    }
    for (let f = 0; f < nFiles; f++) {
      const group = pcs.subarray(start[f]!, start[f + 1]!);
      let sorted = true;
      for (let k = 1; k < group.length; k++) if (pcLine[group[k]!]! < pcLine[group[k - 1]!]!) { sorted = false; break; }
      if (!sorted) {
        const tmp = Array.from(group).sort((a, b) => pcLine[a]! - pcLine[b]! || a - b);
        group.set(tmp);
      }
    }
    this.fileStart = start;
    this.filePcs = pcs;
    // Line ids in (file, line) order: the groups are sorted by line.
    this.pcLineId = new Uint32Array(nPcs).fill(NONE);
    this.fileLineTotal = new Uint32Array(nFiles);
    let nLines = 0;
    for (let f = 0; f < nFiles; f++) {
      let prev = 0;
      for (let k = start[f]!; k < start[f + 1]!; k++) {
        const pc = pcs[k]!, line = pcLine[pc]!;
        if (line === 0) continue;
        if (line !== prev) {
          nLines++;
          this.fileLineTotal[f]!++;
          prev = line;
        }
        this.pcLineId[pc] = nLines - 1;
      }
    }
    this.lineSeen = new Uint32Array(nLines);
    this.fileTotal = new Uint32Array(nFiles);
    for (let f = 0; f < nFiles; f++) this.fileTotal[f] = start[f + 1]! - start[f]!;
    const nFns = index.functions.names.length;
    this.fnTotal = new Uint32Array(nFns);
    for (let i = 0; i < nPcs; i++) {
      const fn = pcFunction[i]!;
      if (fn !== NONE && fn < nFns) this.fnTotal[fn]!++;
    }
    this.recount();
    this.setLibrary(this.paths.map((p) => (isLibraryPath(p) ? 1 : 0)), null, null);
    this.setInlined(index.pcInlined && index.pcCallFile && index.pcCallLine ? { fn: index.pcInlined, callFile: index.pcCallFile, callLine: index.pcCallLine } : null);
    if (typeof fetch === 'function') void this.fetchExtras(index);
  }

  /** Library flags and project-relative paths (relPaths and root null: computed from the flags). */
  private setLibrary(flags: ArrayLike<number>, relPaths: string[] | null, root: string | null): void {
    this.library = Uint8Array.from(flags);
    this.projectRoot = root ?? commonRoot(this.paths.filter((p, f) => !this.library[f] && p.startsWith('/')));
    this.relPaths = relPaths ?? this.paths.map((p, f) => (!this.library[f] && this.projectRoot && p.startsWith(this.projectRoot) ? p.slice(this.projectRoot.length) : p));
  }

  private setInlined(x: { fn: Uint32Array; callFile: Uint32Array; callLine: Uint32Array } | null): void {
    this.inlined = x;
    this.inlinedPcs = new Map();
    const idx = this.index;
    if (!x || !idx) return;
    for (let pc = 0; pc < x.fn.length; pc++) {
      if (x.fn[pc] === NONE) continue;
      const f = idx.pcFunction[pc]!;
      if (f === NONE) continue;
      let a = this.inlinedPcs.get(f);
      if (!a) this.inlinedPcs.set(f, (a = []));
      a.push(pc);
    }
  }

  /** Asks the daemon for what the wire index leaves out: library files (its --exclude), and inlined code when the index lacks it. */
  private async fetchExtras(index: WireSourceIndex): Promise<void> {
    const id = encodeURIComponent(this.info.id);
    const get = async <T>(path: string): Promise<T | null> => {
      try {
        const r = await fetch(path + authQuery(), { credentials: 'same-origin' });
        return r.ok ? ((await r.json()) as T) : null;
      } catch {
        return null;
      }
    };
    const detail = get<{ buildId: string | null; totals: { root: string } | null; files: { file: number; library: boolean; relPath: string }[] }>(`/api/targets/${id}`);
    const pcs = this.inlined ? null : get<{ buildId: string | null; pcsLen: number; nFunctions: number; nFiles: number; resolved: boolean; pcs: number[]; function: number[]; callFile: number[]; callLine: number[] }>(`/api/targets/${id}/pcs`);
    const d = await detail;
    if (d && this.index === index && d.buildId === index.buildId && d.totals) {
      const flags = new Uint8Array(this.paths.length), rel = this.paths.slice();
      for (const f of d.files) if (f.file < flags.length) { flags[f.file] = f.library ? 1 : 0; rel[f.file] = f.relPath; }
      this.setLibrary(flags, rel, d.totals.root);
    }
    const p = pcs ? await pcs : null;
    // Only for this very index: one resolved since (the daemon's second pass) arrives as a new index, and is asked for then.
    if (p && p.resolved && this.index === index && p.buildId === index.buildId && p.pcsLen === index.pcFile.length && p.nFunctions === index.functions.names.length && p.nFiles === index.files.length) {
      const n = p.pcsLen, fn = new Uint32Array(n).fill(NONE), callFile = new Uint32Array(n).fill(NONE), callLine = new Uint32Array(n);
      p.pcs.forEach((pc, k) => { if (pc < n) { fn[pc] = p.function[k]!; callFile[pc] = p.callFile[k]!; callLine[pc] = p.callLine[k]!; } });
      this.setInlined({ fn, callFile, callLine });
    }
    if (this.index === index) for (const cb of this.onExtras) cb();
  }

  /** The code inlined into physical function `fn`: per inlined function, its PCs seen and in all, most PCs first. */
  inlinedInto(fn: number): { fn: number; covered: number; total: number }[] {
    const pcs = this.inlinedPcs.get(fn);
    const x = this.inlined;
    if (!pcs || !x) return [];
    const by = new Map<number, { fn: number; covered: number; total: number }>();
    for (const pc of pcs) {
      const g = x.fn[pc]!;
      let e = by.get(g);
      if (!e) by.set(g, (e = { fn: g, covered: 0, total: 0 }));
      e.total++;
      if (this.isSeen(pc)) e.covered++;
    }
    return [...by.values()].sort((a, b) => b.total - a.total || a.fn - b.fn);
  }

  /** Whether physical function `fn` holds inlined code. */
  hasInlined(fn: number): boolean {
    return this.inlinedPcs.has(fn);
  }

  /** Replaces all coverage state (snapshot). */
  applySnapshot(seq: number, info: TargetInfo, seen: Uint8Array, firstSeen: Uint32Array, history: HistorySample[], epoch?: string): void {
    this.info = info;
    this.seq = seq;
    this.epoch = epoch;
    this.seen = seen;
    this.firstSeen = firstSeen;
    this.history = history.slice();
    this.synced = true;
    this.recount();
  }

  /**
   * Applies one delta; returns the files whose coverage changed (none for a delta already
   * applied, which the protocol says to ignore), or null when the sequence has a gap and the
   * caller must ask for a resync.
   */
  applyDelta(seq: number, time: number, pcs: Uint32Array, stats: TargetStats): Set<number> | null {
    if (this.synced && seq <= this.seq) return new Set();
    if (!this.synced || seq !== this.seq + 1) return null;
    this.seq = seq;
    this.info = { ...this.info, stats };
    const changed = new Set<number>();
    const nowS = Math.floor(time / 1000);
    const idx = this.index;
    for (let k = 0; k < pcs.length; k++) {
      const pc = pcs[k]!;
      if (pc >> 3 >= this.seen.length) continue;
      if (!setSeen(this.seen, pc)) continue;
      if (pc < this.firstSeen.length && this.firstSeen[pc] === 0) this.firstSeen[pc] = nowS;
      if (idx) {
        const f = idx.pcFile[pc]!;
        if (f !== NONE && f < this.fileCovered.length) {
          this.fileCovered[f]!++;
          changed.add(f);
          const id = this.pcLineId[pc] ?? NONE;
          if (id !== NONE && this.lineSeen[id]!++ === 0) this.fileLineHit[f]!++;
        }
        const fn = idx.pcFunction[pc]!;
        if (fn !== NONE && fn < this.fnCovered.length) this.fnCovered[fn]!++;
      }
    }
    const last = this.history[this.history.length - 1];
    // One chart point per delta is plenty; skip exact repeats so the series stays small.
    if (!last || last.t < time) {
      if (last && last.nRuns === stats.nRuns && last.covered === stats.covered && this.history.length > 1 && this.history[this.history.length - 2]!.covered === stats.covered && this.history[this.history.length - 2]!.nRuns === stats.nRuns) {
        last.t = time;
      } else {
        this.history.push({ t: time, nRuns: stats.nRuns, uniqueRuns: stats.uniqueRuns, covered: stats.covered });
      }
    }
    if (pcs.length) this.version++;
    return changed;
  }

  private recount(): void {
    const idx = this.index;
    if (!idx) return;
    const nFiles = idx.files.length;
    this.fileCovered = new Uint32Array(nFiles);
    this.fnCovered = new Uint32Array(idx.functions.names.length);
    this.fileLineHit = new Uint32Array(nFiles);
    this.lineSeen.fill(0);
    const n = Math.min(idx.pcFile.length, this.seen.length * 8);
    for (let pc = 0; pc < n; pc++) {
      if (!this.isSeen(pc)) continue;
      const f = idx.pcFile[pc]!;
      if (f !== NONE && f < nFiles) {
        this.fileCovered[f]!++;
        const id = this.pcLineId[pc] ?? NONE;
        if (id !== NONE && this.lineSeen[id]!++ === 0) this.fileLineHit[f]!++;
      }
      const fn = idx.pcFunction[pc]!;
      if (fn !== NONE && fn < this.fnCovered.length) this.fnCovered[fn]!++;
    }
    this.version++;
  }

  /** Finds a file by the path in a deep link: exact, else the unique file whose path ends with it. */
  fileByPath(path: string): number | undefined {
    const p = trimSlash(path);
    const exact = this.byPath.get(p);
    if (exact !== undefined) return exact;
    let found: number | undefined;
    for (let i = 0; i < this.paths.length; i++) {
      const q = this.paths[i]!;
      if (q.endsWith('/' + p)) {
        if (found !== undefined) return undefined;
        found = i;
      }
    }
    return found;
  }

  /** PCs of a file on one line. */
  pcsOnLine(file: number, line: number): number[] {
    const idx = this.index!;
    const s = this.fileStart[file]!, e = this.fileStart[file + 1]!;
    // Binary search the first PC with this line (groups are sorted by line).
    let lo = s, hi = e;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (idx.pcLine[this.filePcs[m]!]! < line) lo = m + 1;
      else hi = m;
    }
    const out: number[] = [];
    for (let k = lo; k < e && idx.pcLine[this.filePcs[k]!] === line; k++) out.push(this.filePcs[k]!);
    return out;
  }

  /** Per-line coverage of one file; `nLines` = lines in the source text. */
  fileLines(file: number, nLines: number): FileLines {
    const idx = this.index!;
    const size = nLines + 1;
    const seen = new Uint32Array(size), total = new Uint32Array(size), newest = new Uint32Array(size);
    const state = new Uint8Array(size);
    for (let k = this.fileStart[file]!; k < this.fileStart[file + 1]!; k++) {
      const pc = this.filePcs[k]!;
      const line = idx.pcLine[pc]!;
      if (line === 0 || line >= size) continue;
      total[line]!++;
      if (this.isSeen(pc)) {
        seen[line]!++;
        const t = this.firstSeen[pc] ?? 0;
        if (t > newest[line]!) newest[line] = t;
      }
    }
    const starts: number[] = [];
    let prevMiss = false;
    for (let l = 1; l < size; l++) {
      const t = total[l]!;
      if (t === 0) continue;
      const s = seen[l]!;
      const st = s === 0 ? LineState.Uncovered : s === t ? LineState.Covered : LineState.Partly;
      state[l] = st;
      const miss = st !== LineState.Covered;
      if (miss && !prevMiss) starts.push(l);
      prevMiss = miss;
    }
    return { state, seen, total, newest, missStarts: Uint32Array.from(starts) };
  }
}

function trimSlash(p: string): string {
  return p.replace(/^\/+/, '');
}
