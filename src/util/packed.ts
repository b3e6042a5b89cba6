/**
 * What msgpackr's buffers cost a long-running process, in one place. msgpackr packs every
 * message into one buffer that all its Packr instances share, and pack() returns a view into it.
 * That buffer grows past the largest message packed (4x up to 16 MiB, 2x up to 64 MiB: a 1M-PC
 * source index of 16 to 28 MB leaves 32 to 56 MB) and is never shrunk; every message after it
 * is packed into it too. So a daemon that once stored or sent a big index kept that much for
 * good, and anything kept as a view of a later message kept the whole buffer alive.
 */
import type { Packr } from 'msgpackr';

/** From this size on, a packed message leaves msgpackr's shared buffer behind it (packLarge). */
export const LARGE_PACK_BYTES = 1 << 20;

/**
 * Encoded bytes to keep (resume ring, index and snapshot caches) as a Buffer that holds only
 * them: a view into msgpackr's buffer is copied unless it fills at least half of it.
 */
export function ownBytes(bytes: Buffer): Buffer {
  return bytes.length * 2 >= bytes.buffer.byteLength ? bytes : Buffer.from(bytes);
}

/**
 * An upper bound of value's msgpack size (plain data: objects, arrays, strings, numbers, typed
 * arrays; Infinity for anything else), so a large message is packed into a buffer of its size
 * instead of one grown by doubling. Walks the value: for the few large messages only.
 */
export function packedBound(value: unknown): number {
  switch (typeof value) {
    case 'string': return 5 + 3 * value.length; // UTF-8 takes at most 3 bytes per UTF-16 unit
    case 'number': case 'boolean': case 'undefined': return 9;
    // 9 bytes within 64 bits; msgpackr writes larger ones as an extension of any length.
    case 'bigint': return value >= -(2n ** 63n) && value < 2n ** 64n ? 9 : Infinity;
    case 'object': {
      if (value === null) return 1;
      if (ArrayBuffer.isView(value)) return 16 + value.byteLength;
      let n = 5;
      if (Array.isArray(value)) {
        for (const v of value) n += packedBound(v);
        return n;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype) return Infinity;
      for (const [k, v] of Object.entries(value)) n += 5 + 3 * k.length + packedBound(v);
      return n;
    }
    default: return Infinity;
  }
}

/**
 * packr.pack(value) for a message that may be large (a source index, a snapshot, a PC list).
 * When msgpackr's buffer has grown to LARGE_PACK_BYTES or more (by this message or an earlier
 * one), it is handed a small new buffer afterwards, so the one it packed into lives only as long
 * as the caller holds the returned bytes. sized: the value is large plain data, packed into a
 * buffer of its packedBound (no growth, no copy). keep: the bytes are kept (cached), so a view
 * of a much larger buffer is copied into one of its own; otherwise (written out and dropped, as
 * the store does) the view is returned as it is.
 */
export function packLarge(packr: Packr, value: unknown, keep: boolean, sized = false): Buffer {
  let presized = false;
  if (sized) {
    const bound = packedBound(value);
    if (bound >= LARGE_PACK_BYTES && bound < 2 ** 31) { packr.useBuffer(Buffer.allocUnsafeSlow(bound + 64)); presized = true; }
  }
  let bytes: Buffer | undefined;
  try {
    bytes = packr.pack(value);
  } finally {
    // Also when pack() throws, so a failed message does not leave the buffer made for it.
    // msgpackr never writes into a buffer again once given another one: the bytes stay valid.
    if (presized || !bytes || bytes.buffer.byteLength >= LARGE_PACK_BYTES) packr.useBuffer(Buffer.allocUnsafeSlow(8192));
  }
  return keep ? ownBytes(bytes) : bytes;
}
