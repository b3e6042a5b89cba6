/**
 * The source index's call sites of inlined code (pcCallFile / pcCallLine, with pcInlined)
 * against llvm-symbolizer-14's default output: for every address whose chain has more than one
 * frame, the outermost frame's file and line (where the physical function calls the inlined
 * code); none elsewhere. On the C++ example (clang-14 -O1 and -O2 pc-tables plus random `.text`
 * addresses) and the sqlite target; resolved whole, in merged parts and on the pool alike.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { buildCppExampleTarget, buildSqliteTarget } from '../../src/build/targets.js';
import { DebugInfo } from '../../src/dwarf/resolve.js';
import { sourcePathOf } from '../../src/contracts/paths.js';
import { NONE, type SourceIndex } from '../../src/workers/types.js';
import { mergeIndexes } from '../../src/workers/merge.js';
import { SymbolizerPool } from '../../src/workers/pool.js';
import { pcTable, randomTextAddresses } from './programs.js';

interface Frame { FunctionName: string; FileName: string; Line: number }

function llvmFrames(exe: string, addrs: bigint[]): Frame[][] {
  const out = execFileSync('llvm-symbolizer-14', ['--output-style=JSON', `--obj=${exe}`], { input: addrs.map((a) => '0x' + a.toString(16)).join('\n') + '\n', maxBuffer: 1 << 28, encoding: 'utf8' });
  return out.trim().split('\n').map((l) => (JSON.parse(l) as { Symbol: Frame[] }).Symbol);
}

/** Per address: null when not inlined, else "inner | outer | path:line" of the index. */
function sites(ix: SourceIndex): (string | null)[] {
  return Array.from(ix.pcInlined!, (g, i) => {
    if (g === NONE) return null;
    const f = ix.pcCallFile![i]!;
    return `${ix.functions.names[g]} | ${ix.functions.names[ix.pcFunction[i]!]} | ${f === NONE ? '??' : sourcePathOf(ix, f)}:${ix.pcCallLine![i]}`;
  });
}

describe('call sites of inlined code in the source index agree with llvm-symbolizer-14', function () {
  this.timeout(300_000);
  let tmp: string;
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'covd-callsite-')); });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  const check = (exe: string, pcs: BigUint64Array, minInlined: number) => {
    const ix = DebugInfo.open(exe).resolve(pcs, { inlines: true });
    expect(ix.pcCallFile?.length).to.equal(pcs.length);
    const theirs = llvmFrames(exe, [...pcs]);
    const want = theirs.map((f) => (f.length > 1 ? `${f[0]!.FunctionName} | ${f.at(-1)!.FunctionName} | ${normalize(f.at(-1)!.FileName)}:${f.at(-1)!.Line}` : null));
    const got = sites(ix);
    const diff = got.map((g, i) => (g === want[i] ? null : `0x${pcs[i]!.toString(16)}: covd ${g} / llvm ${want[i]}`)).filter(Boolean);
    expect(diff.slice(0, 10)).to.deep.equal([]);
    expect(want.filter(Boolean).length).to.be.greaterThan(minInlined);
    return { ix, got };
  };

  for (const opt of ['-O1', '-O2']) {
    it(`the C++ example at ${opt}: every pc-table PC and 3,000 random .text addresses; merged parts and the pool give the same`, async () => {
      const exe = await buildCppExampleTarget({ cflags: [opt] });
      const pcs = BigUint64Array.from([...pcTable(exe, tmp), ...randomTextAddresses(exe, 3000, 17)]);
      const { got } = check(exe, pcs, 500);
      const info = DebugInfo.open(exe);
      const parts = [info.resolve(pcs, { functions: false }), info.resolve(pcs, { lines: false, share: [0, 2], inlines: true }), info.resolve(pcs, { lines: false, share: [1, 2], inlines: true })];
      const merged = mergeIndexes(parts, pcs.length, [{ lines: true, functions: false }, { lines: false, functions: true }, { lines: false, functions: true }]);
      expect(sites(merged)).to.deep.equal(got);
      const pool = new SymbolizerPool({ threads: 2, cache: false, splitMinPcs: 1 });
      try {
        // Asked for per request, as the daemon's dispatch asks.
        const pooled = await pool.resolve({ exe, pcs, inlines: true });
        expect(sites(pooled)).to.deep.equal(got);
        expect((await pool.resolve({ exe, pcs })).pcInlined).to.equal(undefined);
      } finally {
        await pool.destroy();
      }
    });
  }

  it('the sqlite target: every pc-table PC', async () => {
    const exe = await buildSqliteTarget();
    check(exe, BigUint64Array.from(pcTable(exe, tmp)), 10_000);
  });
});
