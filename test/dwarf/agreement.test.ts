/**
 * covd symbolize against llvm-symbolizer-14 --no-inlines on real binaries: gcc-12 and clang-14,
 * DWARF 4 and 5, zlib and zstd compressed sections, separate debug files, and a libFuzzer target
 * with a pc-table. Every address must agree on FileName, Line, Column and FunctionName.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DebugInfo, filePath } from '../../src/dwarf/resolve.js';
import { DebugInfoError } from '../../src/workers/types.js';
import { VARIANTS, build, covdBin, covdSymbolize, differences, functionStarts, llvmSymbolize, pcTable, randomTextAddresses } from './programs.js';

const RANDOM = 4000;

describe('covd symbolize agrees with llvm-symbolizer-14', function () {
  this.timeout(300_000);
  let tmp: string;
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'covd-')); });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  for (const v of VARIANTS) {
    it(`${v.name}: ${RANDOM} random .text addresses, every function start${v.name.includes('fuzzer') ? ' and every pc-table PC' : ''}`, () => {
      const exe = build(v);
      const addrs = randomTextAddresses(exe, RANDOM);
      addrs.push(...functionStarts(exe));
      // Low addresses: where --gc-sections leaves the DWARF of dropped functions.
      for (let a = 0n; a < 0x200n; a += 4n) addrs.push(a);
      let pcs: bigint[] = [];
      if (v.name.includes('fuzzer')) {
        pcs = pcTable(exe, tmp);
        expect(pcs.length, 'pc-table entries').to.be.greaterThan(10);
        addrs.push(...pcs);
      }
      const theirs = llvmSymbolize(exe, addrs);
      const ours = covdSymbolize(exe, addrs);
      // The comparison must be meaningful: addresses resolve to real lines (in a libFuzzer target
      // most of .text is the runtime without debug info, so there the pc-table PCs must).
      const sample = pcs.length ? theirs.slice(addrs.length - pcs.length) : theirs;
      expect(sample.filter((l) => l.Line > 0).length).to.be.greaterThan(sample.length * (pcs.length ? 0.9 : 0.1));
      expect(differences(ours, theirs)).to.deep.equal([]);
    });
  }

  it('the same through the worker pool path (--threads 2) as in-process (--threads 0)', () => {
    const exe = build(VARIANTS[0]!);
    const addrs = randomTextAddresses(exe, 6000, 99);
    const pooled = covdSymbolize(exe, addrs, ['--threads=2']);
    const inproc = covdSymbolize(exe, addrs, ['--threads=0']);
    expect(pooled).to.deep.equal(inproc);
    expect(differences(pooled, llvmSymbolize(exe, addrs))).to.deep.equal([]);
  });

  it('without a symbol table, names come from DWARF as llvm-symbolizer gives them (innermost inlined frame)', () => {
    for (const v of [VARIANTS[0]!, VARIANTS[3]!]) {
      const exe = join(tmp, `nosym-${v.name}`);
      execFileSync('objcopy', ['--remove-section=.symtab', '--remove-section=.strtab', build(v), exe]);
      const addrs = randomTextAddresses(exe, 3000, 17);
      const theirs = llvmSymbolize(exe, addrs);
      expect(theirs.filter((l) => l.FunctionName !== '').length).to.be.greaterThan(1000);
      expect(differences(covdSymbolize(exe, addrs), theirs)).to.deep.equal([]);
    }
  });

  it('zstd-compressed sections (objcopy) give the uncompressed answers (llvm-symbolizer-14 cannot read zstd)', () => {
    const plain = build(VARIANTS[0]!);
    const z = join(tmp, 'zstd');
    copyFileSync(plain, z);
    execFileSync('objcopy', ['--compress-debug-sections=zstd', z]);
    expect(execFileSync('readelf', ['-t', z], { encoding: 'utf8' })).to.match(/COMPRESSED/);
    const addrs = randomTextAddresses(plain, 2000, 7);
    expect(differences(covdSymbolize(z, addrs), llvmSymbolize(plain, addrs))).to.deep.equal([]);
  });

  it('old-style .zdebug sections (zlib-gnu)', () => {
    const plain = build(VARIANTS[0]!);
    const z = join(tmp, 'zgnu');
    execFileSync('objcopy', ['--compress-debug-sections=zlib-gnu', plain, z]);
    expect(execFileSync('readelf', ['-SW', z], { encoding: 'utf8' })).to.match(/\.zdebug_info/);
    const addrs = randomTextAddresses(plain, 1000, 8);
    expect(differences(covdSymbolize(z, addrs), llvmSymbolize(plain, addrs))).to.deep.equal([]);
  });

  it('separate debug file: --debug-file, and .gnu_debuglink next to the binary and in .debug/', () => {
    const full = build(VARIANTS[3]!);
    const dir = join(tmp, 'split');
    mkdirSync(join(dir, '.debug'), { recursive: true });
    const exe = join(dir, 'prog');
    const dbg = join(dir, 'prog.debug');
    execFileSync('objcopy', ['--only-keep-debug', full, dbg]);
    execFileSync('objcopy', ['--strip-debug', `--add-gnu-debuglink=${dbg}`, full, exe]);
    const addrs = randomTextAddresses(full, 1500, 3);
    // llvm-symbolizer finds the debug file through the same link; --strip-debug also dropped
    // the STT_FILE symbols, which changes what both say outside the DWARF.
    const want = llvmSymbolize(exe, addrs);
    expect(want.filter((l) => l.Line > 0).length).to.be.greaterThan(addrs.length / 10);
    expect(differences(covdSymbolize(exe, addrs, [`--debug-file=${dbg}`]), want)).to.deep.equal([]);
    expect(differences(covdSymbolize(exe, addrs), want), 'next to the binary').to.deep.equal([]);
    copyFileSync(dbg, join(dir, '.debug', 'prog.debug'));
    rmSync(dbg);
    expect(differences(covdSymbolize(exe, addrs), want), 'in .debug/').to.deep.equal([]);
  });

  it('separate debug file found by build-id under the debug root (.build-id/xx/rest.debug)', () => {
    const full = build(VARIANTS[0]!);
    const root = join(tmp, 'debugroot');
    const exe = join(tmp, 'by-build-id');
    execFileSync('objcopy', ['--strip-debug', full, exe]);
    const id = execFileSync('readelf', ['-n', full], { encoding: 'utf8' }).match(/Build ID: ([0-9a-f]+)/)![1]!;
    mkdirSync(join(root, '.build-id', id.slice(0, 2)), { recursive: true });
    execFileSync('objcopy', ['--only-keep-debug', full, join(root, '.build-id', id.slice(0, 2), `${id.slice(2)}.debug`)]);
    const pcs = BigUint64Array.from(randomTextAddresses(full, 500, 9));
    const want = DebugInfo.open(full).resolve(pcs);
    expect(() => DebugInfo.open(exe)).to.throw(DebugInfoError, /\.build-id/);
    const got = DebugInfo.open(exe, undefined, root).resolve(pcs);
    expect(Array.from(got.pcLine)).to.deep.equal(Array.from(want.pcLine));
    // Files of PCs with a line (--strip-debug also dropped the STT_FILE symbols used elsewhere).
    const paths = (ix: typeof want) => Array.from(ix.pcFile, (f, i) => (ix.pcLine[i] ? filePath(ix, f) : ''));
    expect(paths(got)).to.deep.equal(paths(want));
    expect(Array.from(got.pcLine).filter((l) => l > 0).length).to.be.greaterThan(50);
  });

  it('a binary without debug info: exit 1 and a message naming the binary and what is missing', () => {
    const exe = join(tmp, 'nodebug');
    execFileSync('objcopy', ['--strip-debug', build(VARIANTS[0]!), exe]);
    const r = spawnSync(process.execPath, [covdBin, 'symbolize', '--exe', exe, '0x1000'], { encoding: 'utf8' });
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include(exe);
    expect(r.stderr).to.match(/no debug info/);
    expect(r.stderr).to.match(/\.debug_info/);
  });

  it('usage errors exit 2; bad address lines are reported, the rest still resolved', () => {
    expect(spawnSync(process.execPath, [covdBin, 'symbolize', '0x10'], { encoding: 'utf8' }).status).to.equal(2);
    const exe = build(VARIANTS[0]!);
    const r = spawnSync(process.execPath, [covdBin, 'symbolize', '--exe', exe, '--output-style=JSON'], { input: 'zz\n0x0\n', encoding: 'utf8' });
    expect(r.status).to.equal(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).to.have.length(2);
    expect(lines[0]).to.have.property('Error');
    expect(lines[1]).to.include({ Address: '0x0' });
    expect(r.stderr).to.match(/1 input line/);
  });

  it('LLVM output style matches llvm-symbolizer text output', () => {
    const exe = build(VARIANTS[1]!);
    const addrs = randomTextAddresses(exe, 300, 5).map((a) => '0x' + a.toString(16));
    const ours = execFileSync(process.execPath, [covdBin, 'symbolize', '--exe', exe, ...addrs], { encoding: 'utf8' });
    const theirs = execFileSync('llvm-symbolizer-14', ['--no-inlines', `--obj=${exe}`, ...addrs], { encoding: 'utf8' });
    expect(ours).to.equal(theirs);
  });
});
