/**
 * Comparing two coverage states by source line (GET /api/targets/:a/compare/:b, `covd diff`).
 *
 * A side is the set of covered lines of one source index, keyed by the normalised source path
 * (src/contracts/paths.ts sourcePathOf) and line number, so two builds of one program (another
 * -O level, another compiler, another commit with the same files) match line by line though
 * their PC tables have nothing in common. A line is covered when any of its PCs is.
 *
 * Pure functions over a TargetDetail: no I/O, no hub.
 */
import type { TargetDetail } from '../contracts/hub.js';
import { NONE, type SourceIndex } from '../contracts/source-index.js';
import { isSeen } from '../contracts/seen.js';
import { sourcePathOf } from '../contracts/paths.js';

/** Covered lines per normalised source path. */
export type CoveredLines = Map<string, Set<number>>;

export interface FileComparison {
  path: string;
  /** Lines covered on the A side only, ascending. */
  onlyA: number[];
  /** Lines covered on the B side only, ascending. */
  onlyB: number[];
  /** Lines covered on both sides. */
  both: number;
}

export interface Comparison {
  files: FileComparison[];
  totals: { onlyA: number; onlyB: number; both: number };
}

/** What a comparison side is, in an answer: a target at a seq (and a time), a fleet node, .... */
export interface CompareSideLabel {
  id?: string;
  seq?: number;
  at?: number;
  node?: string;
  firstSeenBy?: string;
}

/** GET /api/targets/:a/compare/:b (JSON): the sides, then the comparison. The page reads it as is. */
export interface CompareAnswer extends Comparison {
  a: CompareSideLabel;
  b: CompareSideLabel;
}

/** Which PCs count as covered: the seen bits now, or those first seen at or before a time. */
export type CoveredPredicate = (pc: number) => boolean;

/** A target's PCs seen now. */
export function seenNow(t: TargetDetail): CoveredPredicate {
  const seen = t.seen;
  return (pc) => isSeen(seen, pc);
}

/**
 * A target's PCs as covered at `atMs` (ms since the epoch): seen, with a first-seen time
 * (seconds since the epoch) at or before it. A seen PC without a first-seen time (0) is unknown
 * and not counted as covered then, so the past never holds a line the present lacks.
 */
export function seenAt(t: TargetDetail, atMs: number): CoveredPredicate {
  const seen = t.seen, first = t.firstSeen;
  return (pc) => {
    if (!isSeen(seen, pc)) return false;
    const s = first[pc] ?? 0;
    return s !== 0 && s * 1000 <= atMs;
  };
}

/** The covered lines of an index under a predicate, over its first pcsLen PCs. */
export function coveredLines(index: SourceIndex, pcsLen: number, covered: CoveredPredicate): CoveredLines {
  const out: CoveredLines = new Map();
  const paths = new Map<number, string>();
  const n = Math.min(pcsLen, index.pcFile.length, index.pcLine.length);
  const nFiles = index.files.length;
  for (let pc = 0; pc < n; pc++) {
    const f = index.pcFile[pc]!, line = index.pcLine[pc]!;
    if (f === NONE || f >= nFiles || line === 0) continue;
    if (!covered(pc)) continue;
    let path = paths.get(f);
    if (path === undefined) paths.set(f, (path = sourcePathOf(index, f)));
    if (path === '') continue;
    let set = out.get(path);
    if (!set) out.set(path, (set = new Set()));
    set.add(line);
  }
  return out;
}

/** The covered lines of a target: now, or as of `atMs` when given. Null while it has no index. */
export function targetLines(t: TargetDetail, atMs?: number): CoveredLines | null {
  if (!t.index) return null;
  return coveredLines(t.index, t.stats.pcsLen, atMs === undefined ? seenNow(t) : seenAt(t, atMs));
}

/** A against B, line by line; files sorted by path, files with no covered line on either side left out. */
export function compareLines(a: CoveredLines, b: CoveredLines): Comparison {
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  const files: FileComparison[] = [];
  const totals = { onlyA: 0, onlyB: 0, both: 0 };
  const empty = new Set<number>();
  for (const path of paths) {
    const la = a.get(path) ?? empty, lb = b.get(path) ?? empty;
    const onlyA: number[] = [], onlyB: number[] = [];
    let both = 0;
    for (const l of la) if (lb.has(l)) both++; else onlyA.push(l);
    for (const l of lb) if (!la.has(l)) onlyB.push(l);
    if (onlyA.length + onlyB.length + both === 0) continue;
    onlyA.sort((x, y) => x - y);
    onlyB.sort((x, y) => x - y);
    files.push({ path, onlyA, onlyB, both });
    totals.onlyA += onlyA.length;
    totals.onlyB += onlyB.length;
    totals.both += both;
  }
  return { files, totals };
}

/**
 * The difference as an lcov tracefile: every line covered only on the B side, as hit (DA:line,1),
 * one record per file that has such lines. What CI feeds a coverage tool to show "new coverage".
 */
export function comparisonLcov(c: Comparison, testName: string): string {
  const out: string[] = [`TN:${testName.replace(/[^A-Za-z0-9_]/g, '_')}`];
  for (const f of c.files) {
    if (f.onlyB.length === 0) continue;
    out.push(`SF:${f.path}`);
    for (const l of f.onlyB) out.push(`DA:${l},1`);
    out.push(`LF:${f.onlyB.length}`, `LH:${f.onlyB.length}`, 'end_of_record');
  }
  return out.join('\n') + '\n';
}
