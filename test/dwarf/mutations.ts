/**
 * Mutations of a real binary's debug sections and section headers, for the reader's mutation
 * tests: truncations, bit flips, and bogus lengths and offsets.
 */
import { execFileSync } from 'node:child_process';

export interface Sec { name: string; offset: number; size: number; headerAt: number }

/** Section file ranges and where each section header sits, from readelf (not from covd's reader). */
export function sections(exe: string): { secs: Sec[]; shoff: number } {
  const h = execFileSync('readelf', ['-hW', exe], { encoding: 'utf8' });
  const shoff = parseInt(h.match(/Start of section headers:\s+(\d+)/)![1]!, 10);
  const out = execFileSync('readelf', ['-SW', exe], { encoding: 'utf8' });
  const secs: Sec[] = [];
  for (const line of out.split('\n')) {
    const m = line.match(/\[\s*(\d+)\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)/);
    if (m) secs.push({ name: m[2]!, offset: parseInt(m[3]!, 16), size: parseInt(m[4]!, 16), headerAt: shoff + 64 * parseInt(m[1]!, 10) });
  }
  return { secs, shoff };
}

export class Rng {
  constructor(private x: number) {}
  next(): number { this.x = (Math.imul(this.x, 1664525) + 1013904223) >>> 0; return this.x; }
  below(n: number): number { return n <= 0 ? 0 : this.next() % n; }
  pick<T>(xs: T[]): T { return xs[this.below(xs.length)]!; }
}

const INTERESTING = [0, 1, 2, 4, 7, 8, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff];

export function mutate(orig: Buffer, dbg: Sec[], shoff: number, rng: Rng): { buf: Buffer; what: string } {
  const buf = Buffer.from(orig);
  const s = rng.pick(dbg);
  const at = s.offset + rng.below(s.size);
  switch (rng.below(6)) {
    case 0: { // bit flips
      const k = 1 + rng.below(8);
      for (let i = 0; i < k; i++) { const p = s.offset + rng.below(s.size); buf[p]! ^= 1 << rng.below(8); }
      return { buf, what: `${k} bit flips in ${s.name}` };
    }
    case 1: { // a bogus 32-bit length or offset
      const v = rng.below(3) === 0 ? rng.next() : rng.below(2) ? rng.pick(INTERESTING) : s.size + rng.below(64) - 32;
      if (at + 4 <= buf.length) buf.writeUInt32LE(v >>> 0, at);
      return { buf, what: `u32 ${v >>> 0} at ${s.name}+${at - s.offset}` };
    }
    case 2: { // a bogus 64-bit value
      const v = BigInt.asUintN(64, BigInt(rng.next()) << BigInt(rng.below(40)));
      if (at + 8 <= buf.length) buf.writeBigUInt64LE(v, at);
      return { buf, what: `u64 ${v} at ${s.name}+${at - s.offset}` };
    }
    case 3: { // the unit length / header fields at the start of the section
      const p = s.offset + rng.below(Math.min(s.size, 24));
      buf.writeUInt32LE(rng.pick(INTERESTING) >>> 0, Math.min(p, buf.length - 4));
      return { buf, what: `header field at ${s.name}+${p - s.offset}` };
    }
    case 4: { // section header: truncated size, or offset/size pointing anywhere
      const field = rng.below(2) === 0 ? 0x20 /* sh_size */ : 0x18 /* sh_offset */;
      const v = field === 0x20 && rng.below(2) ? BigInt(rng.below(s.size)) : BigInt.asUintN(64, BigInt(rng.next()) << BigInt(rng.below(36)));
      buf.writeBigUInt64LE(v, s.headerAt + field);
      return { buf, what: `${field === 0x20 ? 'sh_size' : 'sh_offset'} of ${s.name} = ${v}` };
    }
    default: { // the file itself truncated
      const len = rng.below(orig.length);
      void shoff;
      return { buf: buf.subarray(0, len), what: `file truncated to ${len}` };
    }
  }
}
