/**
 * Puts partial source indexes (one per worker job) back together. Jobs split the work by kind
 * (lines / functions) and by unit share, so each PC's fields come from exactly one part; files
 * are re-interned by full path, functions by (name, file, line).
 */
import { Interner, filePath } from '../dwarf/resolve.js';
import { NONE, type SourceIndex } from './types.js';

export function mergeIndexes(parts: SourceIndex[], n: number): SourceIndex {
  if (parts.length === 1) return parts[0]!;
  const files = new Interner();
  const pcFile = new Uint32Array(n).fill(NONE);
  const pcLine = new Uint32Array(n);
  const pcColumn = new Uint32Array(n);
  const pcFunction = new Uint32Array(n).fill(NONE);
  const fnNames: string[] = [], fnFile: number[] = [], fnLine: number[] = [];
  const fnIds = new Map<string, number>();
  for (const p of parts) {
    const fileMap = new Uint32Array(p.files.length);
    for (let f = 0; f < p.files.length; f++) fileMap[f] = files.file(filePath(p, f));
    const mapFile = (f: number): number => (f === NONE || f >= fileMap.length ? NONE : fileMap[f]!);
    const fnMap = new Uint32Array(p.functions.names.length);
    for (let f = 0; f < fnMap.length; f++) {
      const name = p.functions.names[f]!, file = mapFile(p.functions.file[f]!), line = p.functions.line[f]!;
      const key = `${name}\0${file}\0${line}`;
      let id = fnIds.get(key);
      if (id === undefined) { id = fnNames.length; fnNames.push(name); fnFile.push(file); fnLine.push(line); fnIds.set(key, id); }
      fnMap[f] = id;
    }
    for (let i = 0; i < n; i++) {
      const f = p.pcFile[i]!;
      if (f !== NONE || p.pcLine[i] !== 0) {
        pcFile[i] = mapFile(f);
        pcLine[i] = p.pcLine[i]!;
        pcColumn[i] = p.pcColumn[i]!;
      }
      const fn = p.pcFunction[i]!;
      if (fn !== NONE && fn < fnMap.length) pcFunction[i] = fnMap[fn]!;
    }
  }
  return {
    buildId: parts[0]?.buildId ?? null,
    directories: files.directories,
    files: files.files,
    fileDirs: Uint32Array.from(files.fileDirs),
    functions: { names: fnNames, file: Uint32Array.from(fnFile), line: Uint32Array.from(fnLine) },
    pcFile, pcLine, pcColumn, pcFunction,
  };
}
