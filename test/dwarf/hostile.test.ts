/**
 * Hand-made hostile DWARF that mutation rarely finds: many units sharing one huge range list,
 * and abbreviations with huge numbers of zero-size attributes. Both must end quickly in a
 * DebugInfoError instead of quadratic work.
 */
import { expect } from 'chai';
import { buildUnitMap } from '../../src/dwarf/aranges.js';
import { unitFunctions } from '../../src/dwarf/functions.js';
import { InlineTree } from '../../src/dwarf/inlined.js';
import { setKernelsEnabled } from '../../src/dwarf/kernels.js';
import { Budget, parseUnitHeaders, type Sections } from '../../src/dwarf/units.js';
import { DebugInfoError } from '../../src/workers/types.js';

function uleb(n: number): number[] {
  const out: number[] = [];
  do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n);
  return out;
}

function sections(info: Uint8Array, abbrev: Uint8Array, ranges = new Uint8Array(0)): Sections {
  const e = new Uint8Array(0);
  const s: Sections = { info, abbrev, str: e, lineStr: e, line: e, ranges, rnglists: e, strOffsets: e, addr: e, aranges: e, budget: new Budget(0, 0) };
  s.budget = Budget.forSections(s);
  return s;
}

/** DWARF 4 units of 16 bytes: header, then one DIE (abbrev 1) with a 4-byte attribute value. */
function units(count: number, value: number, dieBytes: number[] = []): Uint8Array {
  const one = [12, 0, 0, 0, 4, 0, 0, 0, 0, 0, 8, 1, value & 0xff, (value >> 8) & 0xff, 0, 0];
  const len = 7 + dieBytes.length;
  const unitBytes = dieBytes.length ? [len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, 0, 4, 0, 0, 0, 0, 0, 8, ...dieBytes] : one;
  const out = new Uint8Array(unitBytes.length * count);
  for (let i = 0; i < count; i++) out.set(unitBytes, i * unitBytes.length);
  return out;
}

function expectCorrupt(f: () => unknown): DebugInfoError {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(DebugInfoError);
    expect((err as DebugInfoError).kind).to.equal('CORRUPT');
    return err as DebugInfoError;
  }
  throw new Error('expected a CORRUPT DebugInfoError');
}

describe('hostile DWARF made by hand', function () {
  this.timeout(60_000);

  it('50,000 units sharing one 100,000-entry range list: refused, not 5e9 reads', () => {
    // abbrev 1: compile_unit, no children, DW_AT_ranges as DW_FORM_sec_offset.
    const abbrev = Uint8Array.from([1, 0x11, 0, 0x55, 0x17, 0, 0, 0]);
    const entries = 100_000;
    const ranges = new Uint8Array((entries + 1) * 16);
    const dv = new DataView(ranges.buffer);
    for (let i = 0; i < entries; i++) { dv.setUint32(i * 16, 0x1000 + i * 16, true); dv.setUint32(i * 16 + 8, 0x1008 + i * 16, true); }
    const sec = sections(units(50_000, 0), abbrev, ranges);
    const us = parseUnitHeaders(sec);
    expect(us).to.have.length(50_000);
    const t0 = performance.now();
    const err = expectCorrupt(() => buildUnitMap(sec, us));
    expect(err.message).to.match(/range lists/);
    console.log(`      refused after ${(performance.now() - t0).toFixed(0)} ms`);
  });

  it('a subprogram abbreviation with 200,000 zero-size attributes used by every DIE: refused', () => {
    // abbrev 1: compile_unit with children and no attributes; abbrev 2: subprogram with
    // 200,000 DW_AT_external/flag_present attributes (zero bytes each in the DIE).
    const attrs: number[] = [];
    for (let i = 0; i < 200_000; i++) attrs.push(0x3f, 0x19);
    const abbrev = Uint8Array.from([1, 0x11, 1, 0, 0, 2, 0x2e, 0, ...attrs, 0, 0, 0]);
    // One unit: the CU DIE, then 100,000 one-byte subprogram DIEs, then the end of children.
    const dies = [1, ...new Array<number>(100_000).fill(2), 0];
    const info = units(1, 0, dies);
    const sec = sections(info, abbrev);
    const us = parseUnitHeaders(sec);
    expectCorrupt(() => unitFunctions(sec, us, us[0]!));
  });

  /** Builds an InlineTree of the first unit with the kernels on and off: what each gave (or the error), and the budget left. */
  function treeBothWays(info: Uint8Array, abbrev: Uint8Array, ranges: Uint8Array<ArrayBuffer>, probe: (t: InlineTree) => unknown): unknown[] {
    return [true, false].map((on) => {
      setKernelsEnabled(on);
      try {
        const sec = sections(info, abbrev, ranges);
        const u = parseUnitHeaders(sec)[0]!;
        try {
          return { got: probe(new InlineTree(sec, u)), attrs: sec.budget.attrs, rangeEntries: sec.budget.rangeEntries };
        } catch (err) {
          expect(err).to.be.instanceOf(DebugInfoError);
          return `${(err as DebugInfoError).kind}: ${(err as Error).message}`;
        }
      } finally {
        setKernelsEnabled(true);
      }
    });
  }

  it('50,000 inlined subroutines sharing one 100,000-entry range list: refused, kernels on and off alike', () => {
    // abbrev 1: compile_unit with children; abbrev 2: inlined_subroutine, no children, DW_AT_ranges as sec_offset.
    const abbrev = Uint8Array.from([1, 0x11, 1, 0, 0, 2, 0x1d, 0, 0x55, 0x17, 0, 0, 0]);
    const entries = 100_000;
    const ranges = new Uint8Array((entries + 1) * 16);
    const dv = new DataView(ranges.buffer);
    for (let i = 0; i < entries; i++) { dv.setUint32(i * 16, 0x1000 + i * 16, true); dv.setUint32(i * 16 + 8, 0x1008 + i * 16, true); }
    const die = [2, 0, 0, 0, 0];
    const info = units(1, 0, [1, ...Array.from({ length: 50_000 }, () => die).flat(), 0]);
    const t0 = performance.now();
    const [on, off] = treeBothWays(info, abbrev, ranges, (t) => t.count);
    expect(on).to.be.a('string').and.match(/CORRUPT: .*range lists/);
    expect(on).to.equal(off);
    console.log(`      refused after ${(performance.now() - t0).toFixed(0)} ms (both ways)`);
  });

  it('inlined subroutines nested 3,000 deep: the kernel hands the deep part to the reader, the chains are the same', () => {
    // abbrev 1: compile_unit with children; 2: subprogram with children, low_pc addr, high_pc data4;
    // 3: inlined_subroutine with children, low_pc addr, high_pc data4, call_line data2, abstract_origin ref4.
    const abbrev = Uint8Array.from([1, 0x11, 1, 0, 0, 2, 0x2e, 1, 0x11, 0x01, 0x12, 0x06, 0, 0, 3, 0x1d, 1, 0x11, 0x01, 0x12, 0x06, 0x59, 0x05, 0x31, 0x13, 0, 0, 0]);
    const depth = 3000;
    const le = (v: number, n: number) => Array.from({ length: n }, (_, i) => Math.floor(v / 2 ** (8 * i)) & 0xff);
    const dies: number[] = [1, 2, ...le(0x10000, 8), ...le(4 * depth + 64, 4)];
    for (let k = 1; k <= depth; k++) dies.push(3, ...le(0x10000 + 2 * k, 8), ...le(4 * depth + 64 - 4 * k, 4), ...le(k, 2), ...le(11, 4));
    for (let k = 0; k <= depth + 1; k++) dies.push(0);
    const info = units(1, 0, dies);
    const probes = [0x10000, 0x10001, 0x10002 + 2 * 1000, 0x10000 + 2 * depth, 0x10000 + 4 * depth + 10, 0x10000 + 4 * depth + 63, 0x10000 + 4 * depth + 64];
    const [on, off] = treeBothWays(info, abbrev, new Uint8Array(0), (t) => ({
      count: t.count, chains: probes.map((a) => t.chain(a).map((n) => [t.die(n), t.callLine(n), t.namedByOrigin(n)])),
    }));
    expect(on).to.not.be.a('string');
    expect((on as { got: { count: number } }).got.count).to.equal(depth + 1);
    expect(on).to.deep.equal(off);
  });

  it('legitimate sharing within the allowance still works', () => {
    const abbrev = Uint8Array.from([1, 0x11, 0, 0x55, 0x17, 0, 0, 0]);
    const ranges = new Uint8Array(3 * 16);
    const dv = new DataView(ranges.buffer);
    dv.setUint32(0, 0x1000, true); dv.setUint32(8, 0x1100, true);
    dv.setUint32(16, 0x2000, true); dv.setUint32(24, 0x2100, true);
    const sec = sections(units(100, 0), abbrev, ranges);
    const map = buildUnitMap(sec, parseUnitHeaders(sec));
    // Every unit claims the same two ranges; the lowest-offset unit owns them.
    expect(Array.from(map.low)).to.deep.equal([0x1000, 0x2000]);
    expect(Array.from(map.unit)).to.deep.equal([0, 0]);
  });
});
