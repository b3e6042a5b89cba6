/**
 * Writes coverage files in any layout. The agent writes real ones; this is for tests, fixtures
 * and tools that convert or synthesize coverage (e.g. a daemon test without a fuzzer).
 */
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { layoutInfo } from './layout.js';
import type { CoverageLayout } from './types.js';

export interface CoverageContents {
  layout?: CoverageLayout;
  pcs: ArrayLike<bigint>;
  nRuns?: bigint;
  uniqueRuns?: bigint;
  /** Written as u64 max (not tracked) when omitted; ignored by the three-field layout. */
  lowestStack?: bigint;
  /** Indices of seen PCs. */
  seen?: Iterable<number>;
}

/** The file's bytes for these contents. */
export function encodeCoverageFile(c: CoverageContents): Buffer {
  const info = layoutInfo(c.layout ?? 'seed', c.pcs.length);
  const buf = Buffer.alloc(info.size);
  buf.writeBigUInt64LE(c.nRuns ?? 0n, 0);
  buf.writeBigUInt64LE(c.uniqueRuns ?? 0n, 8);
  buf.writeBigUInt64LE(BigInt(c.pcs.length), 16);
  if (info.headerBytes === 32) buf.writeBigUInt64LE(c.lowestStack ?? 0xffff_ffff_ffff_ffffn, 24);
  for (let i = 0; i < c.pcs.length; i++) buf.writeBigUInt64LE(c.pcs[i]!, info.pcsOffset + 8 * i);
  for (const i of c.seen ?? []) {
    if (i < 0 || i >= c.pcs.length) throw new RangeError(`seen index ${i} out of range`);
    buf[info.bitsOffset + (i >> 3)]! |= 1 << (i & 7);
  }
  return buf;
}

/** Writes a complete coverage file atomically (temp + rename); returns its path. */
export function writeCoverageFile(path: string, c: CoverageContents): string {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, encodeCoverageFile(c));
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return path;
}
