/**
 * The WebAssembly kernels (src/dwarf/kernels.c) change speed, never answers: with them and
 * without them the reader gives the same index, the same line tables, the same functions and
 * the same errors, on real binaries of every variant and on thousands of mutated ones.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DebugInfo, type ResolveOptions } from '../../src/dwarf/resolve.js';
import { DieWalker, NO_ROW, kernels, kernelsActive, setKernelsEnabled } from '../../src/dwarf/kernels.js';
import { twins } from '../../src/dwarf/twins.js';
import { AbbrevTable } from '../../src/dwarf/abbrev.js';
import type { Unit } from '../../src/dwarf/units.js';
import { parseLineTable } from '../../src/dwarf/line.js';
import { unitFunctions } from '../../src/dwarf/functions.js';
import { DebugInfoError } from '../../src/workers/types.js';
import { VARIANTS, build, functionStarts, pcTable, randomTextAddresses } from './programs.js';
import { Rng, mutate, sections } from './mutations.js';

/** Resolves with the kernels on or off; an error becomes its code and message. */
function outcome(exe: string, pcs: BigUint64Array, on: boolean, opts: ResolveOptions = {}): unknown {
  setKernelsEnabled(on);
  try {
    return DebugInfo.open(exe).resolve(pcs, opts);
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

/**
 * count mutations of a variant's debug sections (and symbols), each resolved with the kernels on
 * and off: the same result or the same error, and enough of each kind for the check to mean something.
 */
function mutantsAgree(tmp: string, name: string, count: number, o: { file: string; seed: number; pcsSeed: number; shuffleSeed: number; opts?: ResolveOptions }): void {
  const exe = build(VARIANTS.find((v) => v.name === name)!);
  const orig = readFileSync(exe);
  const { secs, shoff } = sections(exe);
  const dbg = secs.filter((s) => s.name.startsWith('.debug_') || s.name === '.symtab' || s.name === '.strtab');
  const pcs = shuffled(randomTextAddresses(exe, 400, o.pcsSeed), o.shuffleSeed);
  const path = join(tmp, `${o.file}-${name}`);
  const rng = new Rng(o.seed ^ name.length);
  let results = 0, errors = 0;
  for (let i = 0; i < count; i++) {
    const { buf, what } = mutate(orig, dbg, shoff, rng);
    writeFileSync(path, buf);
    const fast = outcome(path, pcs, true, o.opts);
    expect(fast, `case ${i} (${what})`).to.deep.equal(outcome(path, pcs, false, o.opts));
    if (typeof fast === 'string') errors++; else results++;
  }
  expect(results, 'cases with a result').to.be.greaterThan(count / 20);
  expect(errors, 'cases with an error').to.be.greaterThan(count / 20);
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

  it('inlined chains (pcInlined, every frame) are the same with and without them, on every variant', () => {
    for (const v of VARIANTS) {
      const exe = build(v);
      const addrs = [...randomTextAddresses(exe, 2000, 6), ...functionStarts(exe)];
      if (v.name.includes('fuzzer')) addrs.push(...pcTable(exe, tmp));
      const pcs = shuffled(addrs, 4);
      for (const opts of [{ inlines: true }, { inlineFrames: true }, { inlineFrames: true, declarations: false }]) {
        const fast = outcome(exe, pcs, true, opts);
        expect(fast, `${v.name} ${JSON.stringify(opts)}: a result`).to.not.be.a('string');
        expect(fast, `${v.name} ${JSON.stringify(opts)}`).to.deep.equal(outcome(exe, pcs, false, opts));
      }
    }
  });

  for (const [name, count] of [['gcc12-O2-dwarf5', 500], ['clang14-O2-dwarf5', 500], ['gcc12-O2-dwarf4', 300]] as [string, number][]) {
    it(`${name}: ${count} mutated binaries give the same inlined chains or the same error with and without them`, () => {
      mutantsAgree(tmp, name, count, { file: 'ki', seed: 0x1d, pcsSeed: 23, shuffleSeed: 5, opts: { inlineFrames: true } });
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
      mutantsAgree(tmp, name, count, { file: 'k', seed: 0xbeef, pcsSeed: 21, shuffleSeed: 9 });
    });
  }

  it('repeated requests on one loaded executable charge the budget as the reader does (once per table)', () => {
    for (const v of [VARIANTS[0]!, VARIANTS[3]!, VARIANTS.find((x) => x.name.includes('fuzzer'))!]) {
      const exe = build(v);
      const pcs = shuffled(randomTextAddresses(exe, 500, 8), 2);
      const left = (on: boolean) => {
        setKernelsEnabled(on);
        try {
          const info = DebugInfo.open(exe);
          const first = info.resolve(pcs);
          for (let i = 0; i < 20; i++) expect(info.resolve(pcs)).to.deep.equal(first);
          info.resolve(pcs, { lines: false });
          return { lineBytes: info.sec.budget.lineBytes, attrs: info.sec.budget.attrs, rangeEntries: info.sec.budget.rangeEntries };
        } finally {
          setKernelsEnabled(true);
        }
      };
      expect(left(true), v.name).to.deep.equal(left(false));
    }
  });

  it('a look-up forgets its sequence between runs of addresses, as the reader does (nested sequences)', () => {
    const k = kernels()!;
    // Two sequences, the second nested in the first: [0x1000, 0x1400) in file 1, [0x1100, 0x1200) in file 2.
    const setAddress = (a: number) => [0x00, 9, 0x02, a & 0xff, (a >> 8) & 0xff, 0, 0, 0, 0, 0, 0];
    const prog = Uint8Array.from([
      ...setAddress(0x1000), 0x01, 0x02, 0x80, 0x08, 0x00, 1, 0x01,
      ...setAddress(0x1100), 0x04, 2, 0x01, 0x02, 0x80, 0x02, 0x00, 1, 0x01,
    ]);
    const addrStep = new Float64Array(256), lineStep = new Int32Array(256);
    for (let op = 13; op < 256; op++) { addrStep[op] = Math.floor((op - 13) / 14); lineStep[op] = -5 + ((op - 13) % 14); }
    const input = { buf: prog, start: 0, end: prog.length, addrStep, lineStep, stdLens: [0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1], constAddPc: 17, opcodeBase: 13, lineRange: 14, minInst: 1 };
    const addrs = Float64Array.from([0x1050, 0x1300]);
    const one = (a: number) => k.lineLookup(input, Float64Array.from([a]), Uint32Array.from([0]))!.file[0];
    const apart = [one(0x1050), one(0x1300)];
    expect(apart).to.deep.equal([1, NO_ROW]);
    expect([...k.lineLookup(input, addrs, Uint32Array.from([0, 1]))!.file]).to.deep.equal(apart);
    // One run (the addresses consecutive in the unit) keeps its sequence: the reader does the same.
    expect([...k.lineLookup(input, addrs, Uint32Array.from([0]))!.file]).to.deep.equal([1, 1]);

    // A program denser than the first guess of its size (a row per byte): counted, then run again.
    const dense = Uint8Array.from([...setAddress(0x1000), ...new Array<number>(1000).fill(33), 0x02, 1, 0x00, 1, 0x01]);
    const denseInput = { ...input, buf: dense, end: dense.length };
    const probes = Float64Array.from({ length: 1000 }, (_, i) => 0x1001 + i);
    const got = k.lineLookup(denseInput, probes, Uint32Array.from([0]))!;
    // Special opcode 33: address +1, line +1, then a row.
    expect([...got.line]).to.deep.equal(Array.from({ length: 1000 }, (_, i) => 2 + i));
    expect(k.lineProgram(denseInput)!.rowAddr.length).to.equal(1001);
  });

  it('an abbreviation with 200,000 attributes does not overflow the stack building walk plans', () => {
    const bytes: number[] = [1, 0x34, 0];
    for (let i = 0; i < 200_000; i++) bytes.push(0x02, 0x0f);
    bytes.push(0, 0, 0);
    const abbrevs = AbbrevTable.parse(Uint8Array.from(bytes), 0);
    const unit = { abbrevs, addrSize: 8, offSize: 4, version: 5, dieOffset: 0, end: 16 } as unknown as Unit;
    expect(() => DieWalker.forUnit(new Uint8Array(16), unit, 'functions')).to.not.throw();
  });

  it('sorting PCs and ordering values: order, repeats and the cases left to the reader', () => {
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
    // Ordering address-like values (symbols, spans, unit ranges): stable, as the reader's sort.
    const values = Float64Array.from({ length: 3000 }, () => 0x40_0000 + rng.below(500));
    const order = k.orderValues(values)!;
    const expected = [...values.keys()].sort((a, b) => values[a]! - values[b]! || a - b);
    expect([...order]).to.deep.equal(expected);
    expect(k.orderValues(Float64Array.from([1.5, 0]))).to.equal(null);
    expect(k.orderValues(Float64Array.from([2 ** 33, 0]))).to.equal(null);
    // Either way the resolver gives the same answer.
    const exe = build(VARIANTS[0]!);
    const far = BigUint64Array.from([0x1_0000_0000n, ...randomTextAddresses(exe, 50, 3), 2n ** 60n]);
    expect(outcome(exe, far, true)).to.deep.equal(outcome(exe, far, false));
  });

  it('the address map of inlined code: the same map and the same charges as the twin, for ranges in any order', () => {
    const k = kernels()!;
    const rng = new Rng(77);
    let cases = 0;
    for (let round = 0; round < 400; round++) {
      const n = 1 + rng.below(round % 10 === 0 ? 4000 : 400);
      const tri = new Float64Array(3 * n);
      const shape = round % 5;
      // Nested ranges in tree order (a function and what was inlined into it), as compilers write them.
      const open: [number, number][] = [];
      let next = 0x1000;
      for (let i = 0; i < n; i++) {
        let low: number, high: number;
        if (shape === 0) { low = rng.below(50_000); high = low + 1 + rng.below(1000); } // anywhere
        else if (shape === 1) {
          const up = open[open.length - 1];
          if (up && rng.below(10) < 7 && up[1] - up[0] > 1) { low = up[0] + rng.below(up[1] - up[0]); high = low + 1 + rng.below(up[1] - low); }
          else { open.length = 0; low = next + rng.below(40); high = low + 16 + rng.below(400); next = high; }
          if (rng.below(3) === 0) open.push([low, high]); else if (rng.below(5) === 0) open.pop();
        } else if (shape === 2) { low = rng.below(40); high = low + rng.below(40); } // repeats and empty ranges
        else if (shape === 3) { low = 8 * (n - i); high = low + 12; } // descending, overlapping
        else { low = 4 * i - (rng.below(10) === 0 ? rng.below(300) : 0); high = low + rng.below(24); } // ascending, some back
        tri[3 * i] = low; tri[3 * i + 1] = high; tri[3 * i + 2] = i;
      }
      const a = k.dieMap(tri, n), b = twins.dieMap(tri, n);
      if (!a) throw new Error(`round ${round}: the kernel left the map to the twin`);
      expect(Array.from(a.keys), `round ${round}`).to.deep.equal(Array.from(b.keys));
      expect(Array.from(a.highs), `round ${round}`).to.deep.equal(Array.from(b.highs));
      expect(Array.from(a.nodes), `round ${round}`).to.deep.equal(Array.from(b.nodes));
      expect(a.charge, `round ${round}`).to.equal(b.charge);
      cases++;
    }
    expect(cases).to.equal(400);
  });
});
