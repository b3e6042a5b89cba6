/**
 * The page's msgpack codec for the WebSocket frames (docs/protocol.md), written for the browser so
 * the bundle needs no `eval`: msgpackr, which the daemon uses, probes `new Function` when it loads,
 * and the page's Content-Security-Policy (no 'unsafe-eval') reports that on every load.
 *
 * It reads what the daemon's Packr writes with `packrOptions` (src/contracts/msgpack.ts:
 * `useRecords: false, moreTypes: true`): the msgpack spec's types, maps as plain objects, typed
 * arrays as extension 0x74 (first data byte = index into TYPED below; 16 = ArrayBuffer,
 * 17 = DataView), undefined as fixext1 type 0, Set / Error / RegExp as a fixext1 marker (0x73 /
 * 0x65 / 0x78) followed by an array, and timestamps (type -1). int64 values come back as BigInt,
 * like msgpackr's default. encode() writes what the page sends (ClientMessage): objects, arrays,
 * strings, numbers, booleans, null and undefined (fixext1 type 0, so an absent field stays absent
 * for the daemon's Unpackr). test/ui/msgpack.test.ts checks both against msgpackr.
 */

const TYPED = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array] as const;

const utf8 = new TextDecoder();
const utf8Out = new TextEncoder();

export class MsgpackError extends Error {
  override name = 'MsgpackError';
}

export function decode(bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  const v = r.value();
  if (r.pos !== bytes.length) throw new MsgpackError(`msgpack: ${bytes.length - r.pos} bytes after the value`);
  return v;
}

class Reader {
  pos = 0;
  private readonly view: DataView;
  constructor(private readonly b: Uint8Array) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  private need(n: number): number {
    const p = this.pos;
    if (p + n > this.b.length) throw new MsgpackError('msgpack: unexpected end of data');
    this.pos = p + n;
    return p;
  }
  private u8(): number {
    return this.b[this.need(1)]!;
  }
  private u16(): number {
    return this.view.getUint16(this.need(2));
  }
  private u32(): number {
    return this.view.getUint32(this.need(4));
  }

  value(): unknown {
    const c = this.u8();
    if (c <= 0x7f) return c;
    if (c >= 0xe0) return c - 0x100;
    if (c <= 0x8f) return this.map(c & 0x0f);
    if (c <= 0x9f) return this.array(c & 0x0f);
    if (c <= 0xbf) return this.str(c & 0x1f);
    const v = this.view;
    switch (c) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(this.u8());
      case 0xc5: return this.bin(this.u16());
      case 0xc6: return this.bin(this.u32());
      case 0xc7: return this.ext(this.u8());
      case 0xc8: return this.ext(this.u16());
      case 0xc9: return this.ext(this.u32());
      case 0xca: return v.getFloat32(this.need(4));
      case 0xcb: return v.getFloat64(this.need(8));
      case 0xcc: return this.u8();
      case 0xcd: return this.u16();
      case 0xce: return this.u32();
      case 0xcf: return v.getBigUint64(this.need(8));
      case 0xd0: return v.getInt8(this.need(1));
      case 0xd1: return v.getInt16(this.need(2));
      case 0xd2: return v.getInt32(this.need(4));
      case 0xd3: return v.getBigInt64(this.need(8));
      case 0xd4: return this.ext(1);
      case 0xd5: return this.ext(2);
      case 0xd6: return this.ext(4);
      case 0xd7: return this.ext(8);
      case 0xd8: return this.ext(16);
      case 0xd9: return this.str(this.u8());
      case 0xda: return this.str(this.u16());
      case 0xdb: return this.str(this.u32());
      case 0xdc: return this.array(this.u16());
      case 0xdd: return this.array(this.u32());
      case 0xde: return this.map(this.u16());
      case 0xdf: return this.map(this.u32());
    }
    throw new MsgpackError(`msgpack: unknown token 0x${c.toString(16)}`);
  }

  private str(n: number): string {
    const p = this.need(n);
    return utf8.decode(this.b.subarray(p, p + n));
  }
  private bin(n: number): Uint8Array {
    const p = this.need(n);
    return this.b.slice(p, p + n);
  }
  private array(n: number): unknown[] {
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value();
    return out;
  }
  private map(n: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      let k = this.value();
      if (typeof k !== 'string') k = String(k);
      // Never let data set an object's prototype (msgpackr renames the key the same way).
      if (k === '__proto__') k = '__proto_';
      out[k as string] = this.value();
    }
    return out;
  }
  private ext(n: number): unknown {
    const type = this.view.getInt8(this.need(1));
    const p = this.need(n);
    const data = this.b.subarray(p, p + n);
    switch (type) {
      case 0: return undefined;
      case 0x74: {
        // Copy: a typed array needs its own aligned buffer.
        const buf = data.slice(1).buffer;
        const code = data[0]!;
        if (code === 16) return buf;
        if (code === 17) return new DataView(buf);
        const T = TYPED[code];
        if (!T) throw new MsgpackError(`msgpack: unknown typed array code ${code}`);
        return new T(buf);
      }
      case 0x73: return new Set(this.value() as unknown[]);
      case 0x65: {
        const [name, message, cause] = this.value() as [string, string, unknown];
        const e = new Error(message, { cause });
        e.name = name;
        return e;
      }
      case 0x78: {
        const [source, flags] = this.value() as [string, string];
        return new RegExp(source, flags);
      }
      case -1: return timestamp(data);
    }
    throw new MsgpackError(`msgpack: unknown extension type ${type}`);
  }
}

function timestamp(d: Uint8Array): Date {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  if (d.length === 4) return new Date(v.getUint32(0) * 1000);
  if (d.length === 8) {
    const hi = v.getUint32(0), lo = v.getUint32(4);
    const nanos = hi >>> 2;
    const secs = (hi & 3) * 0x100000000 + lo;
    return new Date(secs * 1000 + nanos / 1e6);
  }
  if (d.length === 12) return new Date(Number(v.getBigInt64(4)) * 1000 + v.getUint32(0) / 1e6);
  return new Date(NaN);
}

/** Encodes a message the page sends. Throws on types a ClientMessage never holds. */
export function encode(value: unknown): Uint8Array {
  const w = new Writer();
  w.value(value);
  return w.bytes();
}

class Writer {
  private b = new Uint8Array(256);
  private view = new DataView(this.b.buffer);
  private n = 0;

  bytes(): Uint8Array {
    return this.b.slice(0, this.n);
  }
  private room(k: number): void {
    if (this.n + k <= this.b.length) return;
    const next = new Uint8Array(Math.max(this.b.length * 2, this.n + k));
    next.set(this.b.subarray(0, this.n));
    this.b = next;
    this.view = new DataView(next.buffer);
  }
  private u8(x: number): void {
    this.room(1);
    this.b[this.n++] = x;
  }
  private head(small: number, c8: number | null, c16: number, c32: number, len: number, smallMax: number): void {
    if (len <= smallMax) this.u8(small | len);
    else if (c8 !== null && len < 0x100) { this.u8(c8); this.u8(len); }
    else if (len < 0x10000) { this.u8(c16); this.room(2); this.view.setUint16(this.n, len); this.n += 2; }
    else { this.u8(c32); this.room(4); this.view.setUint32(this.n, len); this.n += 4; }
  }

  value(v: unknown): void {
    if (v === null) return this.u8(0xc0);
    if (v === undefined) { this.u8(0xd4); this.u8(0); this.u8(0); return; }
    switch (typeof v) {
      case 'boolean': return this.u8(v ? 0xc3 : 0xc2);
      case 'number': return this.number(v);
      case 'string': {
        const s = utf8Out.encode(v);
        this.head(0xa0, 0xd9, 0xda, 0xdb, s.length, 31);
        this.room(s.length);
        this.b.set(s, this.n);
        this.n += s.length;
        return;
      }
      case 'object': {
        if (Array.isArray(v)) {
          this.head(0x90, null, 0xdc, 0xdd, v.length, 15);
          for (const x of v) this.value(x);
          return;
        }
        if (Object.getPrototypeOf(v) !== Object.prototype) break;
        const keys = Object.keys(v);
        this.head(0x80, null, 0xde, 0xdf, keys.length, 15);
        for (const k of keys) {
          this.value(k);
          this.value((v as Record<string, unknown>)[k]);
        }
        return;
      }
    }
    throw new MsgpackError(`msgpack: cannot encode a ${typeof v}`);
  }

  private number(x: number): void {
    this.room(9);
    const v = this.view;
    if (Number.isInteger(x) && x >= -0x80000000 && x <= 0xffffffff) {
      if (x >= 0) {
        if (x < 0x80) this.b[this.n++] = x;
        else if (x < 0x100) { this.b[this.n++] = 0xcc; this.b[this.n++] = x; }
        else if (x < 0x10000) { this.b[this.n++] = 0xcd; v.setUint16(this.n, x); this.n += 2; }
        else { this.b[this.n++] = 0xce; v.setUint32(this.n, x); this.n += 4; }
      } else if (x >= -32) this.b[this.n++] = x & 0xff;
      else if (x >= -0x80) { this.b[this.n++] = 0xd0; v.setInt8(this.n, x); this.n += 1; }
      else if (x >= -0x8000) { this.b[this.n++] = 0xd1; v.setInt16(this.n, x); this.n += 2; }
      else { this.b[this.n++] = 0xd2; v.setInt32(this.n, x); this.n += 4; }
      return;
    }
    this.b[this.n++] = 0xcb;
    v.setFloat64(this.n, x);
    this.n += 8;
  }
}
