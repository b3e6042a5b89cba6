/**
 * Coverage-file layouts and how to tell them apart (docs/coverage-file.md).
 *
 * All fields are little-endian u64. With n = pcs_len and B = ceil(n / 64) words of seen bits:
 *   seed             header(4) pcs(n) bits(B)   size 32 + 8n + 8B
 *   bits-first       header(4) bits(B) pcs(n)   size 32 + 8n + 8B
 *   no-lowest-stack  header(3) bits(B) pcs(n)   size 24 + 8n + 8B
 * pcs_len is the third header word in every layout, so it can be read before the layout is known;
 * the size then separates three-field from four-field headers. The two four-field layouts have the
 * same size and are told apart by content: a PC is never 0, so a zero word where one layout puts
 * its PCs rules that layout out (a fresh file's bits are all zero), and so do bits set past
 * pcs_len where a layout puts its bits.
 */
import type { CoverageLayout } from './types.js';
import { bitsWords } from '../contracts/seen.js';

/** Largest pcs_len accepted: 2^27 PCs is a 1 GiB PC list, far beyond any real executable. */
export const MAX_PCS_LEN = 1 << 27;

/** Offset of pcs_len in every layout. */
export const PCS_LEN_OFFSET = 16;

/** The smallest header: three fields. */
export const MIN_HEADER_BYTES = 24;

export interface LayoutInfo {
  layout: CoverageLayout;
  pcsLen: number;
  headerBytes: number;
  /** Byte offset of the PC list. */
  pcsOffset: number;
  /** Byte offset of the seen bits. */
  bitsOffset: number;
  /** ceil(pcsLen / 64) * 8 */
  bitsBytes: number;
  /** Total file size. */
  size: number;
}

export function headerBytes(layout: CoverageLayout): number {
  return layout === 'no-lowest-stack' ? 24 : 32;
}

export function layoutInfo(layout: CoverageLayout, pcsLen: number): LayoutInfo {
  const h = headerBytes(layout);
  const bitsBytes = bitsWords(pcsLen) * 8;
  const pcsBytes = pcsLen * 8;
  const bitsFirst = layout !== 'seed';
  return {
    layout,
    pcsLen,
    headerBytes: h,
    pcsOffset: bitsFirst ? h + bitsBytes : h,
    bitsOffset: bitsFirst ? h : h + pcsBytes,
    bitsBytes,
    size: h + pcsBytes + bitsBytes,
  };
}

/** Size of a file with a four-field header (seed, bits-first) and of one with three fields. */
export function expectedSizes(pcsLen: number): { four: number; three: number } {
  return { four: layoutInfo('seed', pcsLen).size, three: layoutInfo('no-lowest-stack', pcsLen).size };
}

export type SizeVerdict =
  | { kind: 'four' }   // seed or bits-first: decide by content
  | { kind: 'three' }  // no-lowest-stack
  | { kind: 'short' }  // smaller than the smallest layout for this pcs_len
  | { kind: 'bad' };   // matches no layout

/** Classifies a file size against the layouts for this pcs_len. */
export function classifySize(size: number, pcsLen: number): SizeVerdict {
  const { four, three } = expectedSizes(pcsLen);
  if (size === four) return { kind: 'four' };
  if (size === three) return { kind: 'three' };
  if (size < four) return { kind: 'short' };
  return { kind: 'bad' };
}

/**
 * Chooses between the two four-field layouts from the words after the header
 * (`body`, pcsLen + B words). Prefers the layout whose PC list has no zero word; when both
 * qualify (every bits word non-zero), the one whose PCs ascend more often; ties go to 'seed'.
 */
export function chooseFourFieldLayout(body: BigUint64Array, pcsLen: number): 'seed' | 'bits-first' {
  const b = bitsWords(pcsLen);
  const seedPcs = body.subarray(0, pcsLen);
  const bfPcs = body.subarray(b, b + pcsLen);
  const seedOk = !seedPcs.includes(0n) && cleanTail(body.subarray(pcsLen, pcsLen + b), pcsLen);
  const bfOk = !bfPcs.includes(0n) && cleanTail(body.subarray(0, b), pcsLen);
  if (seedOk !== bfOk) return seedOk ? 'seed' : 'bits-first';
  return ascending(bfPcs) > ascending(seedPcs) ? 'bits-first' : 'seed';
}

/** A writer never sets bits past pcs_len: a bits region that has some cannot be the bits. */
function cleanTail(bits: BigUint64Array, pcsLen: number): boolean {
  const used = pcsLen % 64;
  return used === 0 || (bits[bits.length - 1]! >> BigInt(used)) === 0n;
}

function ascending(xs: BigUint64Array): number {
  let n = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[i - 1]!) n++;
  return n;
}


