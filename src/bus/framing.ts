/**
 * Control-socket framing (see src/bus/messages.ts): each frame is a u32 little-endian byte
 * length followed by one msgpack message. Frames larger than MAX_FRAME are a protocol error,
 * so a hostile or confused peer cannot make the daemon buffer without bound.
 */
import { Packr } from 'msgpackr';

export const MAX_FRAME = 16 << 20;

const packr = new Packr({ useRecords: false, moreTypes: true });

export class FrameError extends Error {
  override name = 'FrameError';
}

export function encodeFrame(msg: unknown): Buffer {
  const body = packr.pack(msg);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Accumulates bytes from a stream and yields whole decoded frames. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): unknown[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: unknown[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32LE(0);
      if (len > MAX_FRAME) throw new FrameError(`frame of ${len} bytes exceeds the ${MAX_FRAME}-byte limit`);
      if (this.buf.length < 4 + len) break;
      const body = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      try {
        out.push(packr.unpack(body));
      } catch (err) {
        throw new FrameError(`undecodable msgpack frame: ${(err as Error).message}`);
      }
    }
    return out;
  }

  get pending(): number {
    return this.buf.length;
  }
}
