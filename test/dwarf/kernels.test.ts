/**
 * The WebAssembly kernels (src/dwarf/kernels.c) change speed, never answers: with them and
 * without them the reader gives the same index, the same line tables, the same functions and
 * the same errors, on real binaries of every variant and on thousands of mutated ones.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DebugInfo } from '../../src/dwarf/resolve.js';
import { kernels, kernelsActive, setKernelsEnabled } from '../../src/dwarf/kernels.js';
import { parseLineTable } from '../../src/dwarf/line.js';
import { unitFunctions } from '../../src/dwarf/functions.js';
import { DebugInfoError } from '../../src/workers/types.js';
import { VARIANTS, build, functionStarts, pcTable, randomTextAddresses } from './programs.js';
import { Rng, mutate, sections } from './mutations.js';

/** Resolves with the kernels on or off; an error becomes its code and message. */
function outcome(exe: string, pcs: BigUint64Array, on: boolean): unknown {
  setKernelsEnabled(on);
  try {
    return DebugInfo.open(exe).resolve(pcs);
  } catch (err) {
    if (err instanceof DebugInfoError) return `${err.code}: ${err.message}`;
    throw err;
  } finally {
    setKernelsEnabled(true);
  }
}

/** Addresses in no particular order, with repeats: the kernels' sort and gather are exercised. */
function shuffled(addrs: bigint[], seed: number): BigUint64Array {
  const rng = new Rng(seed);
  const out = [...addrs, ...addrs.slice(0, Math.floor(addrs.length / 5))];
  for (let i = out.length - 1; i > 0; i--) { const j = rng.below(i + 1); [out[i], out[j]] = [out[j]!, out[i]!]; }
  return BigUint64Array.from(out);
}

describe('DWARF kernels (WebAssembly)', function () {
  this.timeout(600_000);
  let tmp: string;
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'covd-')); });
  after(() => { setKernelsEnabled(true); rmSync(tmp, { recursive: true, force: true }); });

  it('are built with covd and load (the suite exercises them, not just the fallback)', () => {
    expect(kernelsActive(), 'kernels.wasm built by npm run build (clang-14 and lld-14)').to.equal(true);
  });

  for (const v of VARIANTS) {
    it(`${v.name}: the same index with and without them, and the kernels did the work`, () => {
      const exe = build(v);
      const addrs = [...randomTextAddresses(exe, 3000, 5), ...functionStarts(exe)];
      if (v.name.includes('fuzzer')) addrs.push(...pcTable(exe, tmp));
      const k = kernels()!;
      const before = { ...k.stats };
      const sorted = BigUint64Array.from([...new Set(addrs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      for (const pcs of [shuffled(addrs, 3), sorted]) {
        const fast = outcome(exe, pcs, true);
        expect(fast, 'a result').to.not.be.a('string');
        expect(fast).to.deep.equal(outcome(exe, pcs, false));
      }
      // Every line program of a real compiler's output runs to its end in the kernel, and the
      // DIE walk went through it.
      expect(k.stats.linePrograms - before.linePrograms).to.be.greaterThan(0);
      expect(k.stats.lineStops - before.lineStops, 'line programs handed back to the reader').to.equal(0);
      expect(k.stats.dieSkips - before.dieSkips).to.be.greaterThan(0);
    });
  }

  it('line tables and function lists are identical unit by unit (names on and off)', () => {
    for (const v of VARIANTS) {
      const exe = build(v);
      const on = DebugInfo.open(exe);
      setKernelsEnabled(false);
      try {
        const off = DebugInfo.open(exe);
        expect(on.units.length).to.be.greaterThan(0);
        for (let i = 0; i < on.units.length; i++) {
          const uOn = on.units[i]!, uOff = off.units[i]!;
          setKernelsEnabled(true);
          const lines = uOn.stmtList >= 0 ? parseLineTable(on.sec, uOn, uOn.stmtList) : null;
          const named = unitFunctions(on.sec, on.units, uOn, true), plain = unitFunctions(on.sec, on.units, uOn, false);
          setKernelsEnabled(false);
          if (lines) expect(lines, `${v.name} unit ${i} line table`).to.deep.equal(parseLineTable(off.sec, uOff, uOff.stmtList));
          expect(named, `${v.name} unit ${i} functions`).to.deep.equal(unitFunctions(off.sec, off.units, uOff, true));
          expect(plain, `${v.name} unit ${i} functions without names`).to.deep.equal(unitFunctions(off.sec, off.units, uOff, false));
        }
      } finally {
        setKernelsEnabled(true);
      }
    }
  });

  const cases: [string, number][] = [['gcc12-O2-dwarf5', 1500], ['clang14-O2-dwarf5', 1500], ['gcc12-O2-dwarf4', 800], ['gcc12-O1-dwarf2', 800]];
  for (const [name, count] of cases) {
    it(`${name}: ${count} mutated binaries give the same result or the same error with and without them`, () => {
      const exe = build(VARIANTS.find((v) => v.name === name)!);
      const orig = readFileSync(exe);
      const { secs, shoff } = sections(exe);
      const dbg = secs.filter((s) => s.name.startsWith('.debug_') || s.name === '.symtab' || s.name === '.strtab');
      const pcs = shuffled(randomTextAddresses(exe, 400, 21), 9);
      const path = join(tmp, `k-${name}`);
      const rng = new Rng(0xbeef ^ name.length);
      let results = 0, errors = 0;
      for (let i = 0; i < count; i++) {
        const { buf, what } = mutate(orig, dbg, shoff, rng);
        writeFileSync(path, buf);
        const fast = outcome(path, pcs, true);
        expect(fast, `case ${i} (${what})`).to.deep.equal(outcome(path, pcs, false));
        if (typeof fast === 'string') errors++; else results++;
      }
      expect(results, 'cases with a result').to.be.greaterThan(count / 20);
      expect(errors, 'cases with an error').to.be.greaterThan(count / 20);
    });
  }

  it('sorting PCs: order, repeats and the cases left to the reader', () => {
    const k = kernels()!;
    const check = (pcs: bigint[]) => {
      const got = k.sortPcs(BigUint64Array.from(pcs))!;
      const uniq = [...new Set(pcs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect([...got.uniq]).to.deep.equal(uniq.map(Number));
      const increasing = pcs.every((p, i) => i === 0 || p > pcs[i - 1]!);
      if (increasing) expect(got.at).to.equal(null);
      else expect([...got.at!].map((i) => got.uniq[i])).to.deep.equal(pcs.map(Number));
    };
    check([]);
    check([5n]);
    check([1n, 2n, 3n, 0x7fff_ffffn]);
    check([9n, 3n, 3n, 0n, 0xffff_ffffn, 9n]);
    const rng = new Rng(4);
    check(Array.from({ length: 5000 }, () => 0x40_0000n + BigInt(rng.below(1 << 20))));
    // Spread over more than 4 GiB, or at 2^53 and above: the reader's sort takes these.
    expect(k.sortPcs(BigUint64Array.from([0x1_0000_0000n, 0n]))).to.equal(null);
    expect(k.sortPcs(BigUint64Array.from([2n ** 53n, 1n]))).to.equal(null);
    // Either way the resolver gives the same answer.
    const exe = build(VARIANTS[0]!);
    const far = BigUint64Array.from([0x1_0000_0000n, ...randomTextAddresses(exe, 50, 3), 2n ** 60n]);
    expect(outcome(exe, far, true)).to.deep.equal(outcome(exe, far, false));
  });
});
