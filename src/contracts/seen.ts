/**
 * The seen bitmap, as every layer holds it: PC i is bit i % 8 of byte i / 8, in whole u64 words
 * (ceil(pcsLen / 64) * 8 bytes), exactly as in the coverage file. The one definition: the reader,
 * the registry, the store, the coverage thread, the web server and the browser all use these.
 */

/** u64 words of seen bits for pcsLen PCs. */
export function bitsWords(pcsLen: number): number {
  return Math.ceil(pcsLen / 64);
}

/** Bytes of the seen bitmap for pcsLen PCs: whole u64 words, as in the coverage file. */
export function seenBytes(pcsLen: number): number {
  return bitsWords(pcsLen) * 8;
}

/** Whether PC index i is marked seen. */
export function isSeen(seen: Uint8Array, i: number): boolean {
  return ((seen[i >>> 3]! >>> (i & 7)) & 1) === 1;
}

/** Marks PC index i seen; true when it was not before. */
export function setSeen(seen: Uint8Array, i: number): boolean {
  const byte = i >>> 3, bit = 1 << (i & 7);
  if (seen[byte]! & bit) return false;
  seen[byte] = seen[byte]! | bit;
  return true;
}

const POPCOUNT8 = (() => {
  const t = new Uint8Array(256);
  for (let i = 1; i < 256; i++) t[i] = (i & 1) + t[i >> 1]!;
  return t;
})();

/** Number of set bits among the first pcsLen (all of them when pcsLen is omitted). */
export function countSeen(seen: Uint8Array, pcsLen = seen.length * 8): number {
  let n = 0;
  const full = Math.min(seen.length, pcsLen >> 3);
  for (let i = 0; i < full; i++) n += POPCOUNT8[seen[i]!]!;
  for (let i = full * 8; i < pcsLen && i >> 3 < seen.length; i++) n += (seen[i >> 3]! >> (i & 7)) & 1;
  return n;
}

/** Set bits of a 32-bit word (the word-at-a-time diffs of the coverage thread and the wire). */
export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
