/**
 * The coverage thread's per-target state and its tick: compare the seen bits just read with
 * the bits of the last tick and list the PCs that turned on. Word-at-a-time over Uint32 views
 * (a 1,000,000-PC bitmap is 31,250 words), bit extraction only for words that changed, output
 * in a reusable growable buffer and handed over as a fresh Uint32Array that is transferred
 * (not copied) to the main thread. Seen bits only ever turn on; a bit that turned off (the file
 * was recreated) is reported by `cleared` so the caller can reset.
 */
import { popcount32 } from '../contracts/seen.js';

export class SeenDiff {
  /** Bits as of the last tick. */
  readonly prev: Uint8Array;
  private readonly prev32: Uint32Array;
  private out = new Uint32Array(1024);

  constructor(readonly pcsLen: number) {
    const bytes = Math.ceil(pcsLen / 64) * 8;
    this.prev = new Uint8Array(bytes);
    this.prev32 = new Uint32Array(this.prev.buffer, 0, bytes / 4);
  }

  /**
   * Newly set PC indices in `cur` (same layout as prev; a Uint32Array view over it is taken,
   * so its byteOffset must be a multiple of 4) and folds them into prev. Returns the number of
   * bits that were set in prev but are clear in cur in `cleared`.
   */
  apply(cur: Uint8Array): { newPcs: Uint32Array; cleared: number } {
    const cur32 = new Uint32Array(cur.buffer, cur.byteOffset, this.prev32.length);
    const prev = this.prev32;
    let n = 0;
    let cleared = 0;
    const limit = this.pcsLen;
    for (let w = 0; w < cur32.length; w++) {
      const c = cur32[w]!, p = prev[w]!;
      if (c === p) continue;
      let fresh = (c & ~p) >>> 0;
      const lost = (p & ~c) >>> 0;
      if (lost) cleared += popcount32(lost);
      prev[w] = (p | c) >>> 0;
      while (fresh) {
        const low = fresh & -fresh;
        const pc = w * 32 + 31 - Math.clz32(low);
        fresh = (fresh ^ low) >>> 0;
        if (pc >= limit) continue;
        if (n === this.out.length) this.grow();
        this.out[n++] = pc;
      }
    }
    return { newPcs: this.out.slice(0, n), cleared };
  }

  /** Forgets what was seen (the file was recreated under the same name). */
  reset(): void {
    this.prev.fill(0);
  }

  private grow(): void {
    const bigger = new Uint32Array(this.out.length * 2);
    bigger.set(this.out);
    this.out = bigger;
  }
}
