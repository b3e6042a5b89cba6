/**
 * covd symbolize --inlines against llvm-symbolizer-14's default (inlined frames expanded):
 * every frame of every address (function, file, line, column), in JSON and LLVM text styles,
 * on the C++ example (clang-14 -O1 / -O2 libFuzzer targets with their pc-tables, g++-12 -O2)
 * the C programs of programs.ts (gcc-12 and clang-14, DWARF 2 to 5) and the sqlite target; without a symbol
 * table; --no-inlines unchanged; and the source index's pcInlined.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCppExampleTarget, buildSqliteTarget } from '../../src/build/targets.js';
import { DebugInfo } from '../../src/dwarf/resolve.js';
import { InlineTree } from '../../src/dwarf/inlined.js';
import { NODE_F64S } from '../../src/dwarf/kernels.js';
import { NONE } from '../../src/workers/types.js';
import { mergeIndexes } from '../../src/workers/merge.js';
import { SymbolizerPool } from '../../src/workers/pool.js';
import { VARIANTS, build, buildWithGcc, covdBin, covdSymbolize, functionStarts, llvmSymbolize, pcTable, randomTextAddresses, repoRoot } from './programs.js';

const example = join(repoRoot, 'examples', 'iniparse');

interface Frame { FunctionName: string; FileName: string; Line: number; Column: number }
interface Chain { Address: string; Symbol: Frame[] }

/** JSON lines to chains of the four compared fields (llvm-symbolizer's other keys dropped). */
function parseChains(text: string): Chain[] {
  return text.trim().split('\n').map((l) => {
    const o = JSON.parse(l) as Chain;
    return { Address: o.Address, Symbol: o.Symbol.map((s) => ({ FunctionName: s.FunctionName, FileName: s.FileName, Line: s.Line, Column: s.Column })) };
  });
}

const input = (addrs: bigint[]): string => addrs.map((a) => '0x' + a.toString(16)).join('\n') + '\n';

function llvmChains(exe: string, addrs: bigint[]): Chain[] {
  return parseChains(execFileSync('llvm-symbolizer-14', ['--output-style=JSON', `--obj=${exe}`], { input: input(addrs), maxBuffer: 1 << 28, encoding: 'utf8' }));
}

function covdChains(exe: string, addrs: bigint[], extra: string[] = []): Chain[] {
  return parseChains(execFileSync(process.execPath, [covdBin, 'symbolize', `--exe=${exe}`, '--output-style=JSON', '--inlines', ...extra], { input: input(addrs), maxBuffer: 1 << 28, encoding: 'utf8' }));
}

/** Every address whose chain differs in any frame's field or in the number of frames. */
function chainDifferences(ours: Chain[], theirs: Chain[]): string[] {
  if (ours.length !== theirs.length) return [`${ours.length} results vs ${theirs.length}`];
  const out: string[] = [];
  for (let i = 0; i < ours.length; i++) {
    const a = JSON.stringify(ours[i]), b = JSON.stringify(theirs[i]);
    if (a !== b) out.push(`covd ${a}\nllvm ${b}`);
  }
  return out.slice(0, 20);
}

const inlinedCount = (c: Chain[]): number => c.filter((x) => x.Symbol.length > 1).length;

describe('covd symbolize --inlines agrees with llvm-symbolizer-14 (inlined frames expanded)', function () {
  this.timeout(300_000);
  let tmp: string;
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'covd-inlines-')); });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  const cpp: { name: string; build: () => Promise<string>; pcTable: boolean }[] = [
    { name: 'clang-14 -O1 libFuzzer target', build: () => buildCppExampleTarget({ cflags: ['-O1'] }), pcTable: true },
    { name: 'clang-14 -O2 libFuzzer target', build: () => buildCppExampleTarget({ cflags: ['-O2'] }), pcTable: true },
    { name: 'g++-12 -O2', build: async () => buildWithGcc(['-O2']), pcTable: false },
  ];
  for (const v of cpp) {
    it(`C++ example, ${v.name}: ${v.pcTable ? 'every pc-table PC, ' : ''}4000 random .text addresses and every function start`, async () => {
      const exe = await v.build();
      const addrs = [...randomTextAddresses(exe, 4000, 4243), ...functionStarts(exe)];
      let pcs: bigint[] = [];
      if (v.pcTable) {
        pcs = pcTable(exe, tmp);
        expect(pcs.length, 'pc-table entries').to.be.greaterThan(300);
        addrs.push(...pcs);
      }
      const theirs = llvmChains(exe, addrs);
      // Meaningful: many addresses are in inlined code, some chains are deep, and the
      // example's inlined members are among the frames.
      const depth = Math.max(...theirs.map((c) => c.Symbol.length));
      expect(inlinedCount(theirs), 'addresses with inlined frames').to.be.greaterThan(300);
      expect(depth, 'deepest chain').to.be.at.least(3);
      if (v.pcTable) expect(inlinedCount(theirs.slice(addrs.length - pcs.length))).to.be.greaterThan(pcs.length * 0.3);
      expect(theirs.some((c) => c.Symbol.slice(0, -1).some((f) => f.FunctionName.startsWith('ini::')))).to.equal(true);
      expect(chainDifferences(covdChains(exe, addrs), theirs)).to.deep.equal([]);
    });
  }

  for (const v of VARIANTS.filter((x) => /O[12]/.test(x.name) || x.name.includes('fuzzer'))) {
    it(`C program, ${v.name}: 4000 random .text addresses and every function start${v.name.includes('fuzzer') ? ' and pc-table PC' : ''}`, () => {
      const exe = build(v);
      const addrs = [...randomTextAddresses(exe, 4000), ...functionStarts(exe)];
      if (v.name.includes('fuzzer')) addrs.push(...pcTable(exe, tmp));
      const theirs = llvmChains(exe, addrs);
      expect(inlinedCount(theirs), 'addresses with inlined frames').to.be.greaterThan(v.name.includes('fuzzer') ? 0 : 100);
      expect(chainDifferences(covdChains(exe, addrs), theirs)).to.deep.equal([]);
    });
  }

  it('the sqlite target (clang-14 -O1, one big unit): every pc-table PC and 3000 random .text addresses', async () => {
    const exe = await buildSqliteTarget();
    const pcs = pcTable(exe, tmp);
    expect(pcs.length).to.be.greaterThan(40_000);
    const addrs = [...pcs, ...randomTextAddresses(exe, 3000, 5150)];
    const theirs = llvmChains(exe, addrs);
    expect(inlinedCount(theirs.slice(0, pcs.length))).to.be.greaterThan(pcs.length * 0.4);
    expect(chainDifferences(covdChains(exe, addrs), theirs)).to.deep.equal([]);
  });

  it('without a symbol table: every frame named from DWARF, the outermost too', async () => {
    for (const exe of [await buildCppExampleTarget({ cflags: ['-O2'] }), buildWithGcc(['-O2']), build(VARIANTS[0]!)]) {
      const stripped = join(tmp, 'nosym');
      execFileSync('objcopy', ['--remove-section=.symtab', '--remove-section=.strtab', exe, stripped]);
      const addrs = randomTextAddresses(exe, 3000, 21);
      if (exe.includes('fuzz_iniparse')) addrs.push(...pcTable(exe, tmp));
      const theirs = llvmChains(stripped, addrs);
      expect(inlinedCount(theirs)).to.be.greaterThan(100);
      expect(chainDifferences(covdChains(stripped, addrs), theirs)).to.deep.equal([]);
    }
  });

  it('LLVM text output equals llvm-symbolizer-14 text output, demangled and not', async () => {
    for (const exe of [await buildCppExampleTarget({ cflags: ['-O2'] }), buildWithGcc(['-O2'])]) {
      const addrs = randomTextAddresses(exe, 600, 8).map((a) => '0x' + a.toString(16));
      if (exe.includes('fuzz_iniparse')) addrs.push(...pcTable(exe, tmp).map((a) => '0x' + a.toString(16)));
      for (const flags of [[], ['--no-demangle']]) {
        const ours = execFileSync(process.execPath, [covdBin, 'symbolize', '--exe', exe, '--inlines', ...flags, ...addrs], { encoding: 'utf8', maxBuffer: 1 << 26 });
        const theirs = execFileSync('llvm-symbolizer-14', [...flags, `--obj=${exe}`, ...addrs], { encoding: 'utf8', maxBuffer: 1 << 26 });
        // Meaningful: more frames than addresses.
        expect(theirs.split('\n\n').length).to.be.lessThan(theirs.split('\n').length / 3 - 50);
        expect(ours, flags.join(' ')).to.equal(theirs);
      }
    }
  });

  it('--no-inlines (and covd\'s default, and --inlines --no-inlines) is unchanged: one frame, as llvm-symbolizer --no-inlines', async () => {
    const exe = await buildCppExampleTarget({ cflags: ['-O2'] });
    const addrs = [...pcTable(exe, tmp), ...randomTextAddresses(exe, 1500, 3)];
    const theirs = llvmSymbolize(exe, addrs);
    const plain = covdSymbolize(exe, addrs);
    expect(plain).to.deep.equal(theirs);
    expect(covdSymbolize(exe, addrs, ['--no-inlines'])).to.deep.equal(theirs);
    expect(covdSymbolize(exe, addrs, ['--inlines', '--no-inlines'])).to.deep.equal(theirs);
    // And --inlines really is different: the outermost frame is the --no-inlines answer's function.
    const chains = covdChains(exe, addrs);
    expect(chains.filter((c, i) => c.Symbol.length > 1 && c.Symbol[0]!.FunctionName !== plain[i]!.FunctionName).length).to.be.greaterThan(100);
    expect(chains.map((c) => c.Symbol.at(-1)!.FunctionName)).to.deep.equal(plain.map((l) => l.FunctionName));
    // --threads does not apply to --inlines (it resolves in-process): the same frames.
    expect(covdChains(exe, addrs, ['--threads=2'])).to.deep.equal(chains);
  });

  it('the source index: pcInlined only when asked for, the innermost inlined function; pcFunction unchanged; merged and pooled alike', async () => {
    const exe = await buildCppExampleTarget({ cflags: ['-O2'] });
    const pcs = BigUint64Array.from([...pcTable(exe, tmp), ...randomTextAddresses(exe, 3000, 31)]);
    const plain = DebugInfo.open(exe).resolve(pcs);
    expect(plain.pcInlined).to.equal(undefined);
    const ix = DebugInfo.open(exe).resolve(pcs, { inlines: true });
    expect(ix.pcFunction).to.deep.equal(plain.pcFunction);
    const theirs = llvmChains(exe, [...pcs]);
    let inlined = 0;
    for (let i = 0; i < pcs.length; i++) {
      const chain = theirs[i]!.Symbol;
      const g = ix.pcInlined![i]!;
      if (chain.length > 1) {
        inlined++;
        expect(g, theirs[i]!.Address).to.not.equal(NONE);
        expect(ix.functions.names[g], theirs[i]!.Address).to.equal(chain[0]!.FunctionName);
      } else {
        expect(g, theirs[i]!.Address).to.equal(NONE);
      }
      // pcFunction is the physical function: llvm-symbolizer's outermost frame.
      expect(ix.functions.names[ix.pcFunction[i]!] ?? '', theirs[i]!.Address).to.equal(chain.at(-1)!.FunctionName);
    }
    expect(inlined).to.be.greaterThan(1000);
    // Parts merged as the pool merges them: lines and functions apart, functions split by unit share.
    const info = DebugInfo.open(exe);
    const parts = [info.resolve(pcs, { functions: false }), info.resolve(pcs, { lines: false, share: [0, 2], inlines: true }), info.resolve(pcs, { lines: false, share: [1, 2], inlines: true })];
    const merged = mergeIndexes(parts, pcs.length, [{ lines: true, functions: false }, { lines: false, functions: true }, { lines: false, functions: true }]);
    const names = (x: typeof ix) => Array.from(x.pcInlined!, (g) => (g === NONE ? null : x.functions.names[g]));
    expect(names(merged)).to.deep.equal(names(ix));
    const pool = new SymbolizerPool({ threads: 2, cache: false, splitMinPcs: 1, inlines: true });
    try {
      const pooled = await pool.resolve({ exe, pcs });
      expect(names(pooled)).to.deep.equal(names(ix));
    } finally {
      await pool.destroy();
    }
  });

  it('the outermost inlined frame of every node in one pass, chains deeper than the hop limit included', () => {
    // A forged tree's shape (node records as the walk writes them: DIE offset, parent, tag): a
    // subprogram with a chain of 10,000 nested inlined subroutines; halfway down, a subprogram
    // nested in the inlined code with a chain of its own (its depth starts again), then the
    // outer chain goes on.
    const SUB = 0x2e, INL = 0x1d, N_DIE = 0, N_PARENT = 3, N_TAG = 4;
    const recs: [number, number][] = [[-1, SUB]]; // [parent, tag]
    let last = 0;
    for (let d = 0; d < 10_000; d++) {
      recs.push([last, INL]);
      last = recs.length - 1;
      if (d === 5000) {
        let inner = recs.push([last, SUB]) - 1;
        for (let e = 0; e < 4500; e++) inner = recs.push([inner, INL]) - 1;
      }
    }
    const t = new Float64Array(NODE_F64S * recs.length);
    recs.forEach(([parent, tag], n) => { t[n * NODE_F64S + N_DIE] = n; t[n * NODE_F64S + N_PARENT] = parent; t[n * NODE_F64S + N_TAG] = tag; });
    // The tree's methods over these records alone (no section behind them).
    const tree = Object.create(InlineTree.prototype) as InlineTree;
    Object.assign(tree as unknown as Record<string, unknown>, { t, count: recs.length, outer: null });
    const walked = tree.outermostInlined.bind(tree);
    let walks = 0;
    tree.outermostInlined = (n: number) => { walks++; return walked(n); };
    tree.outermostAll();
    expect(walks, 'the pass walks up no chain').to.equal(0);
    for (let n = 0; n < recs.length; n++) expect(tree.outermostOf(n), `node ${n}`).to.equal(recs[n]![1] === SUB ? -1 : walked(n));
    // Below the limit the outermost inlined node is the chain's first; beyond it, 4,096 hops up.
    expect(tree.outermostOf(4096)).to.equal(1);
    expect(tree.outermostOf(4097)).to.equal(1);
    expect(tree.outermostOf(4098)).to.equal(2);
  });
});
