/**
 * A bounds-checked little-endian byte reader over one section, like gimli's EndianSlice.
 * Every read checks the remaining length and throws DebugInfoError('CORRUPT') naming the
 * section and offset, so no length or offset from the file is ever trusted.
 */
import { corrupt } from './errors.js';


export class Reader {
  readonly dv: DataView;
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    /** Section name for error messages. */
    readonly name: string,
    start = 0,
    /** Exclusive end of the readable window. */
    readonly end = buf.length,
  ) {
    if (start < 0 || end > buf.length || start > end) throw corrupt(name, `window ${start}..${end} outside section of ${buf.length} bytes`);
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  where(): string {
    return `${this.name}+0x${this.pos.toString(16)}`;
  }

  fail(what: string): never {
    throw corrupt(this.where(), what);
  }

  /** The error fail() throws, for `throw r.err(...)` where control flow must see the throw. */
  err(what: string): Error {
    return corrupt(this.where(), what);
  }

  need(n: number): void {
    if (!(n >= 0) || n > this.end - this.pos) this.fail(`need ${n} bytes, ${this.end - this.pos} left`);
  }

  /** A sub-reader over the next n bytes; advances past them. */
  sub(n: number, name = this.name): Reader {
    this.need(n);
    const r = new Reader(this.buf, name, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  seek(off: number): void {
    if (!(off >= 0) || off > this.end) this.fail(`offset 0x${off.toString(16)} outside section`);
    this.pos = off;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  u8(): number {
    if (this.pos >= this.end) this.fail('unexpected end of data');
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u24(): number {
    this.need(3);
    const v = this.buf[this.pos]! | (this.buf[this.pos + 1]! << 8) | (this.buf[this.pos + 2]! << 16);
    this.pos += 3;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** A u64 as a JS number; exact below 2^53, which covers every offset and length we act on. */
  u64n(): number {
    this.need(8);
    const lo = this.dv.getUint32(this.pos, true);
    const hi = this.dv.getUint32(this.pos + 4, true);
    this.pos += 8;
    return hi * 0x1_0000_0000 + lo;
  }
  u64(): bigint {
    this.need(8);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** Unsigned by size (1, 2, 4 or 8) as a number (u64 saturates precision above 2^53). */
  uN(size: number): number {
    switch (size) {
      case 1: return this.u8();
      case 2: return this.u16();
      case 4: return this.u32();
      case 8: return this.u64n();
      default: return this.fail(`unsupported size ${size}`);
    }
  }

  /** ULEB128 as a number; values above 2^53 lose precision but never loop or throw. */
  uleb(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.end) this.fail('unterminated LEB128');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
  }
  sleb(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.end) this.fail('unterminated LEB128');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) {
        if (b & 0x40) result -= mul;
        return result;
      }
    }
  }

  /** NUL-terminated string at the cursor. */
  cstr(): string {
    const start = this.pos;
    const nul = this.buf.indexOf(0, start);
    if (nul < 0 || nul >= this.end) this.fail('unterminated string');
    this.pos = nul + 1;
    return decode(this.buf, start, nul);
  }
}

/** A Buffer over each section's bytes (no copy), for Node's native UTF-8 decoding. */
const buffers = new WeakMap<Uint8Array, Buffer>();

/**
 * UTF-8 bytes as a string (invalid sequences become U+FFFD, as TextDecoder does). Node's
 * decoder is called directly: a JavaScript loop or a TextDecoder call per name costs several
 * times more while a symbolizer thread's code is still cold.
 */
export function decode(buf: Uint8Array, start: number, end: number): string {
  let b = buffers.get(buf);
  if (!b) { b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength); buffers.set(buf, b); }
  return b.toString('utf8', start, end);
}

/** NUL-terminated string at an offset of a string section (.debug_str, .debug_line_str, .strtab). */
export function strAt(buf: Uint8Array, off: number, section: string): string {
  if (!(off >= 0) || off >= buf.length) throw corrupt(section, `string offset 0x${off.toString(16)} outside section of ${buf.length} bytes`);
  const nul = buf.indexOf(0, off);
  if (nul < 0) throw corrupt(section, `unterminated string at 0x${off.toString(16)}`);
  return decode(buf, off, nul);
}
