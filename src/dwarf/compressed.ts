/**
 * Compressed debug sections: ELF SHF_COMPRESSED (zlib via node:zlib, zstd via fzstd) and the
 * old GNU .zdebug_ form ("ZLIB" + big-endian size). The declared size is capped against the
 * compressed size, so a forged header cannot make us allocate without bound.
 */
import { inflateSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { DebugInfoError, corrupt } from './errors.js';
import { Reader } from './reader.js';

const ELFCOMPRESS_ZLIB = 1;
const ELFCOMPRESS_ZSTD = 2;
/** No debug section we read is bigger than this decompressed. */
const MAX_DECOMPRESSED = 1 << 30;
/** zlib cannot expand more than ~1032:1; zstd's RLE blocks can, but not in any real DWARF. */
const MAX_RATIO = 2048;

export function decompressSection(bytes: Uint8Array, where: string, zdebug: boolean): Uint8Array {
  const r = new Reader(bytes, where);
  let type: number;
  let size: number;
  if (zdebug) {
    if (r.remaining < 12 || r.u32() !== 0x42494c5a /* "ZLIB" LE */) throw corrupt(where, 'bad .zdebug header');
    size = r.buf[4]! * 2 ** 56 + r.buf[5]! * 2 ** 48 + r.buf[6]! * 2 ** 40 + r.buf[7]! * 2 ** 32 + ((r.buf[8]! << 24) >>> 0) + (r.buf[9]! << 16) + (r.buf[10]! << 8) + r.buf[11]!;
    r.pos = 12;
    type = ELFCOMPRESS_ZLIB;
  } else {
    type = r.u32();
    r.u32(); // ch_reserved
    size = r.u64n();
    r.u64n(); // ch_addralign
  }
  const payload = bytes.subarray(r.pos);
  if (size > MAX_DECOMPRESSED || size > Math.max(4096, payload.length * MAX_RATIO)) {
    throw corrupt(where, `declared decompressed size ${size} is implausible for ${payload.length} compressed bytes`);
  }
  let out: Uint8Array;
  if (type === ELFCOMPRESS_ZLIB) {
    try {
      out = inflateSync(payload, { maxOutputLength: Math.max(size, 1) });
    } catch (err) {
      throw corrupt(where, `zlib: ${(err as Error).message}`);
    }
  } else if (type === ELFCOMPRESS_ZSTD) {
    try {
      out = zstdDecompress(payload, new Uint8Array(size));
    } catch (err) {
      throw corrupt(where, `zstd: ${(err as Error).message}`);
    }
  } else {
    throw new DebugInfoError('UNSUPPORTED', `${where}: unknown compression type ${type}`);
  }
  if (out.length !== size) throw corrupt(where, `decompressed to ${out.length} bytes, header says ${size}`);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}
