/**
 * Control-socket framing (see src/bus/messages.ts): each frame is a u32 little-endian byte
 * length followed by one msgpack message. A length prefix over the decoder's limit (MAX_FRAME
 * unless told smaller) is a protocol error as soon as the prefix arrives, so a hostile or
 * confused peer cannot make the daemon buffer without bound. The daemon reads requests with a
 * much smaller limit (src/daemon/control.ts); clients reading replies keep MAX_FRAME.
 */
import { Packr } from 'msgpackr';
import { packrOptions } from '../contracts/msgpack.js';
import { ProtocolError } from '../contracts/errors.js';

export const MAX_FRAME = 16 << 20;

const packr = new Packr(packrOptions);

/** A frame over the limit, or one that does not decode. */
export class FrameError extends ProtocolError {
  override name = 'FrameError';
  constructor(message: string) {
    super(message, 'COVD_ERR_PROTOCOL_FRAME');
  }
}

export function encodeFrame(msg: unknown): Buffer {
  const body = packr.pack(msg);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 4);
  return out;
}

export interface FrameDecoderOptions {
  /** Largest body accepted, in bytes (default MAX_FRAME). */
  maxFrame?: number;
}

/**
 * Accumulates bytes from a stream and yields whole decoded frames. Chunks are kept as they
 * came and joined once per frame, when it is complete: a frame arriving in n chunks costs one
 * copy, not n (re-joining on every chunk made a large frame quadratic).
 */
export class FrameDecoder {
  readonly maxFrame: number;
  private chunks: Buffer[] = [];
  private total = 0;

  constructor(opts: FrameDecoderOptions = {}) {
    this.maxFrame = opts.maxFrame ?? MAX_FRAME;
  }

  push(chunk: Buffer): unknown[] {
    if (chunk.length) {
      this.chunks.push(chunk);
      this.total += chunk.length;
    }
    const out: unknown[] = [];
    while (this.total >= 4) {
      const len = this.peekLength();
      if (len > this.maxFrame) throw new FrameError(`frame of ${len} bytes exceeds the ${this.maxFrame}-byte limit`);
      if (this.total < 4 + len) break;
      this.take(4);
      const body = this.take(len);
      try {
        out.push(packr.unpack(body));
      } catch (err) {
        throw new FrameError(`undecodable msgpack frame: ${(err as Error).message}`);
      }
    }
    return out;
  }

  /** Bytes of an incomplete frame held (0 between frames). */
  get pending(): number {
    return this.total;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32LE(0);
    const b = Buffer.alloc(4);
    let o = 0;
    for (const c of this.chunks) {
      o += c.copy(b, o, 0, Math.min(c.length, 4 - o));
      if (o === 4) break;
    }
    return b.readUInt32LE(0);
  }

  /** Removes n bytes from the front: a view when one chunk holds them, else one copy. */
  private take(n: number): Buffer {
    this.total -= n;
    const first = this.chunks[0];
    if (first === undefined || n === 0) return Buffer.alloc(0);
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    let i = 0;
    while (o < n) {
      const c = this.chunks[i]!;
      const k = Math.min(c.length, n - o);
      c.copy(out, o, 0, k);
      o += k;
      if (k === c.length) i++;
      else this.chunks[i] = c.subarray(k);
    }
    // One splice per frame, so a frame in many small chunks stays linear.
    this.chunks.splice(0, i);
    return out;
  }
}
