/**
 * C++ function names: covd symbolize against llvm-symbolizer-14 (default options, so demangled;
 * --no-inlines, which covd emulates) on the C++ example (examples/iniparse) built by clang-14 at
 * -O0 and -O2 as a libFuzzer target (whose runtime is C++ too) and by g++-12 -O2; --no-demangle;
 * the source index's names and linkage names; and the demangler itself against llvm-cxxfilt-14.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCppExampleTarget } from '../../src/build/targets.js';
import { DebugInfo } from '../../src/dwarf/resolve.js';
import { demangle, demangleNames, demanglerActive, isItaniumName } from '../../src/dwarf/demangle.js';
import { buildWithGcc, covdBin, covdSymbolize, functionStarts, pcTable, randomTextAddresses, repoRoot, type Loc } from './programs.js';

const example = join(repoRoot, 'examples', 'iniparse');

function parseJson(text: string): Loc[] {
  return text.trim().split('\n').map((l) => {
    const o = JSON.parse(l) as { Address: string; Symbol: Loc[] };
    const s = o.Symbol[0]!;
    return { Address: o.Address, FileName: s.FileName, Line: s.Line, Column: s.Column, FunctionName: s.FunctionName };
  });
}

function llvm(exe: string, addrs: bigint[], extra: string[] = []): Loc[] {
  const input = addrs.map((a) => '0x' + a.toString(16)).join('\n') + '\n';
  return parseJson(execFileSync('llvm-symbolizer-14', ['--no-inlines', '--output-style=JSON', ...extra, `--obj=${exe}`], { input, maxBuffer: 1 << 28, encoding: 'utf8' }));
}

/** Every disagreement on any of the four fields, function names compared exactly. */
function strictDifferences(ours: Loc[], theirs: Loc[]): string[] {
  if (ours.length !== theirs.length) return [`${ours.length} results vs ${theirs.length}`];
  const out: string[] = [];
  for (let i = 0; i < ours.length; i++) {
    const a = ours[i]!, b = theirs[i]!;
    if (a.Address !== b.Address || a.FileName !== b.FileName || a.Line !== b.Line || a.Column !== b.Column || a.FunctionName !== b.FunctionName) {
      out.push(`${b.Address}: covd ${a.FileName}:${a.Line}:${a.Column} ${a.FunctionName} / llvm ${b.FileName}:${b.Line}:${b.Column} ${b.FunctionName}`);
    }
  }
  return out;
}

function cxxfilt(names: string[]): string[] {
  const out = execFileSync('llvm-cxxfilt-14', [], { input: names.join('\n') + '\n', maxBuffer: 1 << 28, encoding: 'utf8' });
  return out.split('\n').slice(0, names.length);
}

/** Names of defined function symbols, from nm (independent of covd's ELF reader). */
function functionSymbols(exe: string): string[] {
  return execFileSync('nm', ['--defined-only', exe], { encoding: 'utf8', maxBuffer: 1 << 26 }).split('\n')
    .map((l) => l.split(' '))
    .filter((p) => p.length === 3 && /^[tTwW]$/.test(p[1]!))
    .map((p) => p[2]!);
}

describe('C++ names: covd symbolize demangles as llvm-symbolizer-14 does', function () {
  this.timeout(300_000);
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'covd-demangle-'));
    expect(demanglerActive(), 'demangle.wasm built (npm run build with scripts/install-deps.sh packages)').to.equal(true);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  const variants: { name: string; build: () => Promise<string>; pcTable: boolean }[] = [
    { name: 'clang-14 -O0 libFuzzer target', build: () => buildCppExampleTarget({ cflags: ['-O0'] }), pcTable: true },
    { name: 'clang-14 -O2 libFuzzer target', build: () => buildCppExampleTarget({ cflags: ['-O2'] }), pcTable: true },
    { name: 'g++-12 -O2', build: async () => buildWithGcc(['-O2']), pcTable: false },
  ];
  for (const v of variants) {
    it(`${v.name}: ${v.pcTable ? 'every pc-table PC, ' : ''}4000 random .text addresses and every function start`, async () => {
      const exe = await v.build();
      const addrs = [...randomTextAddresses(exe, 4000, 4242), ...functionStarts(exe)];
      let pcs: bigint[] = [];
      if (v.pcTable) {
        pcs = pcTable(exe, tmp);
        expect(pcs.length, 'pc-table entries').to.be.greaterThan(300);
        addrs.push(...pcs);
      }
      const theirs = llvm(exe, addrs);
      // Meaningful: most names are C++ ones, and the example's own functions are among them.
      const cxx = theirs.filter((l) => l.FunctionName.includes('::')).length;
      expect(cxx).to.be.greaterThan(addrs.length * 0.5);
      expect(theirs.some((l) => l.FunctionName.startsWith('ini::Lexer::next()'))).to.equal(true);
      expect(theirs.some((l) => l.FunctionName.includes('lambda'))).to.equal(true);
      if (v.pcTable) {
        // (C++ has more compiler-made code at line 0 than C: 80 to 90 % of PCs have a line here.)
        expect(theirs.slice(addrs.length - pcs.length).filter((l) => l.Line > 0).length).to.be.greaterThan(pcs.length * 0.75);
        expect(theirs.map((l) => l.FunctionName)).to.include('bool ini::Parser<ini::Counter, 4ul>::feed<unsigned char const*>(unsigned char const*, unsigned char const*)');
      }
      expect(theirs.filter((l) => isItaniumName(l.FunctionName)).length, 'names llvm-symbolizer left mangled').to.be.lessThan(5);
      expect(strictDifferences(covdSymbolize(exe, addrs), theirs)).to.deep.equal([]);
    });
  }

  it('without a symbol table the names come from DWARF (DW_AT_linkage_name, else DW_AT_name) and are demangled alike', async () => {
    for (const exe of [await buildCppExampleTarget({ cflags: ['-O2'] }), buildWithGcc(['-O2'])]) {
      const stripped = join(tmp, 'nosym');
      execFileSync('objcopy', ['--remove-section=.symtab', '--remove-section=.strtab', exe, stripped]);
      const addrs = randomTextAddresses(exe, 3000, 19);
      if (exe.includes('fuzz_iniparse')) addrs.push(...pcTable(exe, tmp));
      const theirs = llvm(stripped, addrs);
      expect(theirs.filter((l) => l.FunctionName.startsWith('ini::')).length).to.be.greaterThan(20);
      expect(strictDifferences(covdSymbolize(stripped, addrs), theirs)).to.deep.equal([]);
      expect(strictDifferences(covdSymbolize(stripped, addrs, ['--no-demangle']), llvm(stripped, addrs, ['--no-demangle']))).to.deep.equal([]);
    }
  });

  it('--no-demangle gives the names llvm-symbolizer-14 --no-demangle gives; -C / --demangle (the last flag wins)', async () => {
    const exe = await buildCppExampleTarget({ cflags: ['-O2'] });
    const addrs = [...pcTable(exe, tmp), ...randomTextAddresses(exe, 1500, 77)];
    const mangled = llvm(exe, addrs, ['--no-demangle']);
    expect(mangled.filter((l) => l.FunctionName.startsWith('_Z')).length).to.be.greaterThan(addrs.length / 2);
    expect(strictDifferences(covdSymbolize(exe, addrs, ['--no-demangle']), mangled)).to.deep.equal([]);
    expect(strictDifferences(covdSymbolize(exe, addrs, ['--demangle', '--no-demangle']), mangled)).to.deep.equal([]);
    const demangled = llvm(exe, addrs);
    expect(strictDifferences(covdSymbolize(exe, addrs, ['--no-demangle', '-C']), demangled)).to.deep.equal([]);
    expect(strictDifferences(covdSymbolize(exe, addrs, ['--no-demangle', '--demangle']), demangled)).to.deep.equal([]);
  });

  it('the worker pool path (--threads 2) names alike, demangled and with --no-demangle', async () => {
    const exe = await buildCppExampleTarget({ cflags: ['-O0'] });
    const addrs = [...pcTable(exe, tmp), ...randomTextAddresses(exe, 6000, 5)];
    expect(strictDifferences(covdSymbolize(exe, addrs, ['--threads=2']), llvm(exe, addrs))).to.deep.equal([]);
    expect(strictDifferences(covdSymbolize(exe, addrs, ['--threads=2', '--no-demangle']), llvm(exe, addrs, ['--no-demangle']))).to.deep.equal([]);
  });

  it('LLVM text output equals llvm-symbolizer-14 text output, demangled and not', async () => {
    const exe = await buildCppExampleTarget({ cflags: ['-O0'] });
    const addrs = [...pcTable(exe, tmp).slice(0, 400), ...randomTextAddresses(exe, 300, 6)].map((a) => '0x' + a.toString(16));
    for (const flags of [[], ['--no-demangle'], ['-C']]) {
      const ours = execFileSync(process.execPath, [covdBin, 'symbolize', '--exe', exe, ...flags, ...addrs], { encoding: 'utf8', maxBuffer: 1 << 26 });
      const theirs = execFileSync('llvm-symbolizer-14', ['--no-inlines', ...flags, `--obj=${exe}`, ...addrs], { encoding: 'utf8', maxBuffer: 1 << 26 });
      expect(ours, flags.join(' ')).to.equal(theirs);
    }
  });

  it('the source index carries demangled names and, beside them, the linkage names', async () => {
    const exe = await buildCppExampleTarget({ cflags: ['-O2'] });
    const pcs = BigUint64Array.from(pcTable(exe, tmp));
    const ix = DebugInfo.open(exe).resolve(pcs);
    const { names, linkageNames } = ix.functions;
    expect(linkageNames, 'linkageNames').to.be.an('array').with.length(names.length);
    const feed = names.indexOf('bool ini::Parser<ini::Counter, 4ul>::feed<unsigned char const*>(unsigned char const*, unsigned char const*)');
    expect(feed).to.be.at.least(0);
    expect(linkageNames![feed]).to.equal('_ZN3ini6ParserINS_7CounterELm4EE4feedIPKhEEbT_S6_');
    // A C name is its own linkage name: ''.
    const entry = names.indexOf('LLVMFuzzerTestOneInput');
    expect(entry).to.be.at.least(0);
    expect(linkageNames![entry]).to.equal('');
    // Every linkage name is mangled, and demangles (by llvm-cxxfilt-14) to the name shown.
    const withLinkage = names.map((_, i) => i).filter((i) => linkageNames![i] !== '');
    expect(withLinkage.length).to.be.greaterThan(names.length * 0.8);
    const theirs = cxxfilt(withLinkage.map((i) => linkageNames![i]!));
    expect(withLinkage.map((i) => names[i])).to.deep.equal(theirs);
    for (const i of withLinkage) expect(isItaniumName(linkageNames![i]!)).to.equal(true);
    // Without demangling: the linkage names as names, and no parallel array.
    const raw = DebugInfo.open(exe).resolve(pcs, { demangle: false });
    expect(raw.functions.linkageNames).to.equal(undefined);
    expect(raw.functions.names).to.deep.equal(names.map((n, i) => linkageNames![i] || n));
    // The pool's functions-only job (as the daemon runs it) carries them too.
    const fnOnly = DebugInfo.open(exe).resolve(pcs, { lines: false, declarations: true });
    expect(fnOnly.functions.linkageNames).to.deep.equal(linkageNames);
  });

  it('the demangler gives what llvm-cxxfilt-14 gives (same LLVM 14 code) on every symbol of the targets', async () => {
    const names = new Set<string>();
    for (const exe of [await buildCppExampleTarget({ cflags: ['-O0'] }), await buildCppExampleTarget({ cflags: ['-O2'] }), buildWithGcc(['-O2'])]) {
      for (const n of functionSymbols(exe)) if (isItaniumName(n)) names.add(n);
    }
    const list = [...names];
    expect(list.length).to.be.greaterThan(1000);
    expect(demangleNames(list)).to.deep.equal(cxxfilt(list));
  });

  it('edge cases: suffixes, blocks, legacy Rust, names llvm-symbolizer leaves alone, hostile names', () => {
    const cases = [
      '_ZN3foo3barEv.cold', '_ZN3foo3barEv.part.0', '_ZN3foo3barEv.llvm.123456', '___Z3foov_block_invoke', '___Z3foov_block_invoke_2',
      '_ZN7mycrate3foo17h0123456789abcdefE', '_ZZ4mainE1x', '_ZZ4mainE1x_0', '_ZZ4mainE1x__12_', '_ZZ4mainENKUlvE_clEv',
      '_ZN12_GLOBAL__N_14implEv', '_ZNSt6vectorIiSaIiEE9push_backERKi', '_ZThn8_N3ini8Document7sectionESt17basic_string_viewIcSt11char_traitsIcEE',
      '_ZTv0_n24_N1A1fEv', '_ZGVZ4mainE1x', '_ZL3bazv', '_Z1fIiEvT_', '_Z1fDpT_', '_ZN1AC1Ev', '_ZN1AC2Ev', '_ZN1AD0Ev',
      '_Zfoo_bad', '_Z', '_Z3foov_extra', '_ZN3fooE1x',
    ];
    expect(demangleNames(cases)).to.deep.equal(cxxfilt(cases));
    // Not Itanium by llvm-symbolizer's rule (one or three underscores before the Z): untouched.
    for (const n of ['__Z3foov', 'main', 'Z3foov', '', '_', '_D3foo3barFZv']) expect(demangle(n)).to.equal(n);
    // A name too deep for the demangler's stack, and a huge one, stay mangled; later names are unharmed.
    const deep = '_Z1fP' + 'P'.repeat(60_000) + 'i';
    const huge = '_Z' + '3abc'.repeat(40_000) + 'v';
    expect(demangleNames([deep, huge, '_ZN5parse5Lexer4nextEv'])).to.deep.equal([deep, huge, 'parse::Lexer::next()']);
  });
});
