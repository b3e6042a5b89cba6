/**
 * Mutation test of the reader: thousands of truncations, bit flips, and bogus lengths and
 * offsets written into a real binary's debug sections and section headers. Every case must
 * end in a result or a DebugInfoError: never another exception, a hang or a huge allocation.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resourceUsage } from 'node:process';
import { DebugInfo } from '../../src/dwarf/resolve.js';
import { DebugInfoError } from '../../src/workers/types.js';
import { SymbolizerPool } from '../../src/workers/pool.js';
import { VARIANTS, build, randomTextAddresses } from './programs.js';

interface Sec { name: string; offset: number; size: number; headerAt: number }

/** Section file ranges and where each section header sits, from readelf (not from covd's reader). */
function sections(exe: string): { secs: Sec[]; shoff: number } {
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

class Rng {
  constructor(private x: number) {}
  next(): number { this.x = (Math.imul(this.x, 1664525) + 1013904223) >>> 0; return this.x; }
  below(n: number): number { return n <= 0 ? 0 : this.next() % n; }
  pick<T>(xs: T[]): T { return xs[this.below(xs.length)]!; }
}

const INTERESTING = [0, 1, 2, 4, 7, 8, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff];

function mutate(orig: Buffer, dbg: Sec[], shoff: number, rng: Rng): { buf: Buffer; what: string } {
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

describe('DWARF reader under mutation', function () {
  this.timeout(600_000);
  let tmp: string;
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'covd-')); });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  const cases: [string, number][] = [['gcc12-O2-dwarf5', 1500], ['clang14-O2-dwarf5', 1500], ['gcc12-O2-gz', 700], ['gcc12-O2-dwarf4', 700]];
  for (const [name, count] of cases) {
    it(`${name}: ${count} mutated binaries each end in a result or a DebugInfoError`, () => {
      const exe = build(VARIANTS.find((v) => v.name === name)!);
      const orig = readFileSync(exe);
      const { secs, shoff } = sections(exe);
      const dbg = secs.filter((s) => s.name.startsWith('.debug_') || s.name === '.symtab' || s.name === '.strtab');
      expect(dbg.length).to.be.greaterThan(4);
      const pcs = BigUint64Array.from(randomTextAddresses(exe, 300, 11));
      const path = join(tmp, `m-${name}`);
      const rng = new Rng(0xc0ffee ^ name.length);
      const codes = new Map<string, number>();
      let results = 0, slowest = 0, slowestWhat = '';
      for (let i = 0; i < count; i++) {
        const { buf, what } = mutate(orig, dbg, shoff, rng);
        writeFileSync(path, buf);
        const t0 = performance.now();
        try {
          const ix = DebugInfo.open(path).resolve(pcs);
          expect(ix.pcLine.length).to.equal(pcs.length);
          results++;
        } catch (err) {
          if (!(err instanceof DebugInfoError)) throw new Error(`case ${i} (${what}): ${(err as Error)?.stack ?? String(err)}`);
          codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
        }
        const ms = performance.now() - t0;
        if (ms > slowest) { slowest = ms; slowestWhat = what; }
      }
      // Both outcomes occur, so the mutations reach the parsers rather than all failing up front.
      expect(results, 'cases with a result').to.be.greaterThan(count / 20);
      expect(codes.get('CORRUPT') ?? 0, 'cases with a CORRUPT error').to.be.greaterThan(count / 20);
      // maxRSS is in KiB: a forged length must not make the reader allocate gigabytes.
      expect(resourceUsage().maxRSS / 1024, 'peak RSS in MiB').to.be.lessThan(1024);
      console.log(`      ${results} results, errors ${JSON.stringify(Object.fromEntries(codes))}; slowest case ${slowest.toFixed(1)} ms (${slowestWhat})`);
    });
  }

  it('errors from mutated binaries cross the worker thread as DebugInfoError with their code', async () => {
    const exe = build(VARIANTS[0]!);
    const orig = readFileSync(exe);
    const { secs, shoff } = sections(exe);
    const dbg = secs.filter((s) => s.name.startsWith('.debug_'));
    const pcs = BigUint64Array.from(randomTextAddresses(exe, 5000, 13)); // large enough to split across threads
    const pool = new SymbolizerPool({ threads: 2, cache: false, splitMinPcs: 1000 });
    const rng = new Rng(77);
    let errors = 0, results = 0;
    try {
      for (let i = 0; i < 60; i++) {
        const path = join(tmp, `pool-${i}`);
        writeFileSync(path, mutate(orig, dbg, shoff, rng).buf);
        try {
          const ix = await pool.resolve({ exe: path, pcs });
          expect(ix.pcFile.length).to.equal(pcs.length);
          results++;
        } catch (err) {
          expect(err, String(err)).to.be.instanceOf(DebugInfoError);
          expect((err as DebugInfoError).code).to.be.oneOf(['CORRUPT', 'NOT_ELF', 'NO_DEBUG_INFO', 'UNSUPPORTED', 'ENOENT']);
          errors++;
        }
      }
    } finally {
      await pool.destroy();
    }
    expect(errors).to.be.greaterThan(0);
    expect(results).to.be.greaterThan(0);
  });
});
