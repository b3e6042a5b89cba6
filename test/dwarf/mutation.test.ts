/**
 * Mutation test of the reader: thousands of truncations, bit flips, and bogus lengths and
 * offsets written into a real binary's debug sections and section headers. Every case must
 * end in a result or a DebugInfoError: never another exception, a hang or a huge allocation.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resourceUsage } from 'node:process';
import { DebugInfo } from '../../src/dwarf/resolve.js';
import { DebugInfoError } from '../../src/workers/types.js';
import { SymbolizerPool } from '../../src/workers/pool.js';
import { VARIANTS, build, randomTextAddresses } from './programs.js';
import { Rng, mutate, sections } from './mutations.js';

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
          codes.set(err.kind, (codes.get(err.kind) ?? 0) + 1);
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
          expect((err as DebugInfoError).kind).to.be.oneOf(['CORRUPT', 'NOT_ELF', 'NO_DEBUG_INFO', 'UNSUPPORTED', 'ENOENT']);
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
