/**
 * Puts partial source indexes (one per worker job) back together. Jobs split the work by kind
 * (lines / functions) and by unit share, so each PC's fields come from exactly one part; files
 * are re-interned by full path, functions by (name, linkage name, file, line): a C++ constructor's
 * complete and base copies share a demangled name, but not a linkage name.
 */
import { Interner, filePath } from '../dwarf/resolve.js';
import { NONE, type SourceIndex } from './types.js';

/**
 * What a part holds (a job of lines only leaves pcFunction empty, one of functions pcFile/pcLine);
 * inlined: whether its pcInlined counts (default: with functions).
 */
export interface PartKinds { lines: boolean; functions: boolean; inlined?: boolean }

/**
 * An index resolved without the inlined code, with it added from a request for the inlined code
 * alone (ResolveRequest.inlinedOnly) over the same PCs: the index a request with inlines gives,
 * without resolving lines and functions a second time.
 */
export function addInlined(index: SourceIndex, inlined: SourceIndex): SourceIndex {
  const n = index.pcFile.length;
  const m = inlined.pcInlined?.length ?? 0;
  if (m !== n) throw new Error(`inlined code for ${m} PCs cannot be added to an index of ${n}`);
  // The index's own per-PC arrays are taken as they are (nothing writes an index's arrays), so a
  // big target's second pass allocates only the inlined code's.
  return mergeIndexes([index, inlined], n, [{ lines: true, functions: true, inlined: false }, { lines: false, functions: false, inlined: true }], true);
}

/**
 * reuseFirst: when the first part's files and functions intern to themselves, its per-PC arrays
 * become the result's instead of copies (only for a first part no later part shares a kind with).
 */
export function mergeIndexes(parts: SourceIndex[], n: number, kinds?: PartKinds[], reuseFirst = false): SourceIndex {
  if (parts.length === 1) return parts[0]!;
  const files = new Interner();
  // Made when a part first writes them (or taken from the first part, reuseFirst).
  let lines: { file: Uint32Array; line: Uint32Array; column: Uint32Array } | undefined, pcFunction: Uint32Array | undefined;
  const newLines = () => ({ file: new Uint32Array(n).fill(NONE), line: new Uint32Array(n), column: new Uint32Array(n) });
  // Only when some functions part was resolved with inlines.
  let pcInlined: Uint32Array | undefined, pcCallFile: Uint32Array | undefined, pcCallLine: Uint32Array | undefined;
  const fnNames: string[] = [], fnLinkage: string[] = [], fnFile: number[] = [], fnLine: number[] = [];
  const fnIds = new Map<string, number>();
  let linesWritten = false, functionsWritten = false;
  parts.forEach((p, k) => {
    const fileMap = new Uint32Array(p.files.length);
    for (let f = 0; f < p.files.length; f++) fileMap[f] = files.file(filePath(p, f));
    const mapFile = (f: number): number => (f === NONE || f >= fileMap.length ? NONE : fileMap[f]!);
    const fnMap = new Uint32Array(p.functions.names.length);
    for (let f = 0; f < fnMap.length; f++) {
      const name = p.functions.names[f]!, link = p.functions.linkageNames?.[f] ?? '', file = mapFile(p.functions.file[f]!), line = p.functions.line[f]!;
      const key = `${name}\0${link}\0${file}\0${line}`;
      let id = fnIds.get(key);
      if (id === undefined) { id = fnNames.length; fnNames.push(name); fnLinkage.push(link); fnFile.push(file); fnLine.push(line); fnIds.set(key, id); }
      fnMap[f] = id;
    }
    const hasLines = kinds?.[k]?.lines ?? true, hasFunctions = kinds?.[k]?.functions ?? true;
    // The first part of a kind, with ids that map to themselves, is copied whole: a part leaves
    // PCs it does not own at NONE / 0, which is what the merged arrays hold before any part.
    if (hasLines && k === 0 && reuseFirst && isIdentity(fileMap)) {
      lines = { file: p.pcFile, line: p.pcLine, column: p.pcColumn };
    } else if (hasLines && !linesWritten && isIdentity(fileMap)) {
      lines ??= newLines();
      lines.file.set(p.pcFile); lines.line.set(p.pcLine); lines.column.set(p.pcColumn);
    } else if (hasLines) {
      const { file: pcFile, line: pcLine, column: pcColumn } = (lines ??= newLines());
      for (let i = 0; i < n; i++) {
        const f = p.pcFile[i]!;
        if (f !== NONE || p.pcLine[i] !== 0) {
          pcFile[i] = mapFile(f);
          pcLine[i] = p.pcLine[i]!;
          pcColumn[i] = p.pcColumn[i]!;
        }
      }
    }
    if (hasFunctions && k === 0 && reuseFirst && isIdentity(fnMap)) {
      pcFunction = p.pcFunction;
    } else if (hasFunctions && !functionsWritten && isIdentity(fnMap)) {
      (pcFunction ??= new Uint32Array(n).fill(NONE)).set(p.pcFunction);
    } else if (hasFunctions) {
      const to = (pcFunction ??= new Uint32Array(n).fill(NONE));
      for (let i = 0; i < n; i++) {
        const fn = p.pcFunction[i]!;
        if (fn !== NONE && fn < fnMap.length) to[i] = fnMap[fn]!;
      }
    }
    if ((kinds?.[k]?.inlined ?? hasFunctions) && p.pcInlined) {
      pcInlined ??= new Uint32Array(n).fill(NONE);
      pcCallFile ??= new Uint32Array(n).fill(NONE);
      pcCallLine ??= new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        const fn = p.pcInlined[i]!;
        if (fn === NONE || fn >= fnMap.length) continue;
        pcInlined[i] = fnMap[fn]!;
        if (p.pcCallFile) pcCallFile[i] = mapFile(p.pcCallFile[i]!);
        if (p.pcCallLine) pcCallLine[i] = p.pcCallLine[i]!;
      }
    }
    linesWritten ||= hasLines;
    functionsWritten ||= hasFunctions;
  });
  lines ??= newLines();
  return {
    buildId: parts[0]?.buildId ?? null,
    directories: files.directories,
    files: files.files,
    fileDirs: Uint32Array.from(files.fileDirs),
    functions: { names: fnNames, file: Uint32Array.from(fnFile), line: Uint32Array.from(fnLine), ...(fnLinkage.some(Boolean) ? { linkageNames: fnLinkage } : {}) },
    pcFile: lines.file, pcLine: lines.line, pcColumn: lines.column, pcFunction: pcFunction ?? new Uint32Array(n).fill(NONE),
    ...(pcInlined ? { pcInlined, pcCallFile: pcCallFile!, pcCallLine: pcCallLine! } : {}),
  };
}

function isIdentity(map: Uint32Array): boolean {
  for (let i = 0; i < map.length; i++) if (map[i] !== i) return false;
  return true;
}
