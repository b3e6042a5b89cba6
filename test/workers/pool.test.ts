/**
 * The symbolizer pool: results equal the in-process resolver whether or not a request is split
 * across threads, come back in the caller's order, and errors keep their class and code.
 */
import { expect } from 'chai';
import { copyFileSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DebugInfo, filePath } from '../../src/dwarf/resolve.js';
import { SymbolizerPool } from '../../src/workers/pool.js';
import { addInlined } from '../../src/workers/merge.js';
import { DebugInfoError, NONE, type SourceIndex } from '../../src/workers/types.js';
import { VARIANTS, build, pcTable, randomTextAddresses } from '../dwarf/programs.js';

/** Per PC: "file:line:col fn@declfile:declline", independent of how a result interned things. */
function materialize(ix: SourceIndex): string[] {
  return Array.from(ix.pcFile, (f, i) => {
    const fn = ix.pcFunction[i]!;
    const fnText = fn === NONE ? '-' : `${ix.functions.names[fn]}@${filePath(ix, ix.functions.file[fn]!)}:${ix.functions.line[fn]}`;
    return `${f === NONE ? '??' : filePath(ix, f)}:${ix.pcLine[i]}:${ix.pcColumn[i]} ${fnText}`;
  });
}

describe('symbolizer pool', function () {
  this.timeout(180_000);
  let tmp: string;
  let pool: SymbolizerPool;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'covd-'));
    pool = new SymbolizerPool({ threads: 2, splitMinPcs: 1000 });
  });
  after(async () => {
    await pool.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('split across two threads or not, gives what the in-process resolver gives, in the caller\'s order', async () => {
    const exe = build(VARIANTS[0]!);
    // Unsorted, with duplicates and an address outside everything.
    const addrs = randomTextAddresses(exe, 5000, 21);
    addrs.push(addrs[10]!, addrs[3]!, 0n, 0xffff_ffff_ffffn);
    const pcs = BigUint64Array.from(addrs);
    const want = materialize(DebugInfo.open(exe).resolve(pcs));
    const split = await pool.resolve({ exe, pcs });
    expect(pool.lastTiming!.jobs.length).to.equal(2);
    expect(materialize(split)).to.deep.equal(want);
    const small = await pool.resolve({ exe, pcs: pcs.slice(0, 500) });
    expect(pool.lastTiming!.jobs.length).to.equal(1);
    expect(materialize(small)).to.deep.equal(want.slice(0, 500));
    expect(want[5000]).to.equal(want[10]);
    expect(want[5002]).to.match(/^\?\?:0:0 -$/);
    expect(split.pcFile).to.be.instanceOf(Uint32Array);
  });

  it('names functions with their declaration file and line', async () => {
    const exe = build(VARIANTS[3]!);
    const nm = execFileSync('nm', [exe], { encoding: 'utf8' });
    const main = BigInt('0x' + nm.split('\n').find((l) => / T main$/.test(l))!.split(' ')[0]);
    const ix = await pool.resolve({ exe, pcs: BigUint64Array.of(main) });
    const fn = ix.pcFunction[0]!;
    expect(ix.functions.names[fn]).to.equal('main');
    expect(filePath(ix, ix.functions.file[fn]!)).to.match(/src\/main\.c$/);
    expect(ix.functions.line[fn]).to.equal(14);
    expect(ix.buildId).to.match(/^[0-9a-f]{16,}$/);
  });

  it('notices a rebuilt executable at the same path (cache keyed by size and mtime)', async () => {
    const a = build(VARIANTS[0]!), b = build(VARIANTS[3]!);
    const exe = join(tmp, 'rebuilt');
    copyFileSync(a, exe);
    const pcs = BigUint64Array.from(randomTextAddresses(a, 2000, 5));
    const first = materialize(await pool.resolve({ exe, pcs }));
    copyFileSync(b, exe);
    utimesSync(exe, new Date(), new Date(Date.now() + 5000));
    const second = materialize(await pool.resolve({ exe, pcs }));
    expect(second).to.deep.equal(materialize(DebugInfo.open(b).resolve(pcs)));
    expect(second).to.not.deep.equal(first);
  });

  it('rejects with DebugInfoError and its code across the thread boundary', async () => {
    const pcs = BigUint64Array.of(0x1000n);
    const codeOf = async (exe: string): Promise<string> => {
      try {
        await pool.resolve({ exe, pcs });
        return 'resolved';
      } catch (err) {
        expect(err).to.be.instanceOf(DebugInfoError);
        expect((err as Error).message).to.include(exe);
        return (err as DebugInfoError).kind;
      }
    };
    expect(await codeOf(join(tmp, 'missing'))).to.equal('ENOENT');
    writeFileSync(join(tmp, 'text'), 'not an executable at all, just some text\n'.repeat(4));
    expect(await codeOf(join(tmp, 'text'))).to.equal('NOT_ELF');
    const stripped = join(tmp, 'stripped');
    execFileSync('objcopy', ['--strip-debug', build(VARIANTS[0]!), stripped]);
    expect(await codeOf(stripped)).to.equal('NO_DEBUG_INFO');
    // The pool still works afterwards.
    const exe = build(VARIANTS[0]!);
    expect((await pool.resolve({ exe, pcs })).pcLine.length).to.equal(1);
  });

  it('abandons a request past its deadline with a TIMEOUT error, and serves the next one', async () => {
    const exe = build(VARIANTS[0]!);
    const pcs = new BigUint64Array(randomTextAddresses(exe, 20_000, 5));
    let err: unknown;
    await pool.resolve({ exe, pcs, timeoutMs: 1 }).catch((e: unknown) => { err = e; });
    expect(err).to.be.instanceOf(DebugInfoError);
    expect((err as DebugInfoError).kind).to.equal('TIMEOUT');
    expect((err as Error).message).to.match(/1 ms.*--symbolize-timeout/);
    const ix = await pool.resolve({ exe, pcs });
    expect(materialize(ix)).to.deep.equal(materialize(DebugInfo.open(exe).resolve(pcs)));
  });

  it('refuses a FIFO as executable at once instead of waiting for a writer', async () => {
    const fifo = join(tmp, 'fifo-exe');
    execFileSync('mkfifo', [fifo]);
    const t0 = performance.now();
    let err: unknown;
    await pool.resolve({ exe: fifo, pcs: new BigUint64Array([0x1000n]) }).catch((e: unknown) => { err = e; });
    expect(performance.now() - t0).to.be.below(2000);
    expect((err as DebugInfoError).kind).to.equal('NOT_REGULAR');
    expect((err as Error).message).to.match(/FIFO/);
  });

  it('a split C++ request keeps linkage names, and a constructor\'s copies apart', async () => {
    const { buildCppExampleTarget } = await import('../../src/build/targets.js');
    const exe = await buildCppExampleTarget();
    const addrs = new BigUint64Array(randomTextAddresses(exe, 6000, 9));
    const whole = DebugInfo.open(exe).resolve(addrs);
    const split = await pool.resolve({ exe, pcs: addrs });
    expect(materialize(split)).to.deep.equal(materialize(whole));
    const linked = (ix: SourceIndex) => Array.from(ix.pcFunction, (f) => (f === NONE ? '-' : ix.functions.linkageNames?.[f] || ix.functions.names[f]!));
    expect(linked(split)).to.deep.equal(linked(whole));
    expect(split.functions.linkageNames?.some((n) => n.startsWith('_Z'))).to.equal(true);
  });

  it('the inlined code alone, added to an index resolved without it, is the index a request with inlines gives', async () => {
    const { buildCppExampleTarget, buildSqliteTarget } = await import('../../src/build/targets.js');
    const inlined = (ix: SourceIndex) => Array.from(ix.pcInlined!, (f, i) => (f === NONE ? '-'
      : `${ix.functions.names[f]} (${ix.functions.linkageNames?.[f] ?? ''}) at ${ix.pcCallFile![i] === NONE ? '??' : filePath(ix, ix.pcCallFile![i]!)}:${ix.pcCallLine![i]}`));
    for (const [exe, addrs] of [
      [await buildSqliteTarget(), null],
      [await buildCppExampleTarget({ cflags: ['-O2'] }), null],
      // Unsorted, with duplicates, the libFuzzer runtime's C++ among them.
      [await buildCppExampleTarget({ cflags: ['-O2'] }), randomTextAddresses(await buildCppExampleTarget({ cflags: ['-O2'] }), 3000, 5)],
    ] as const) {
      const pcs = new BigUint64Array(addrs ?? pcTable(exe, tmp));
      const full = await pool.resolve({ exe, pcs, inlines: true });
      const plain = await pool.resolve({ exe, pcs });
      const part = await pool.resolve({ exe, pcs, inlinedOnly: true });
      expect([part.pcFile.length, part.pcLine.length, part.pcColumn.length, part.pcFunction.length], 'the inlined code alone: no lines, no physical functions').to.deep.equal([0, 0, 0, 0]);
      expect(part.pcInlined!.length).to.equal(pcs.length);
      const merged = addInlined(plain, part);
      expect(inlined(merged)).to.deep.equal(inlined(full));
      expect(materialize(merged)).to.deep.equal(materialize(full));
      // Interned in the same order, too: the same index, field by field.
      expect(merged).to.deep.equal(full);
      expect(full.pcInlined!.filter((f) => f !== NONE).length, 'inlined PCs').to.be.greaterThan(addrs ? 100 : 700);
    }
    const exe = build(VARIANTS[0]!);
    const plain = await pool.resolve({ exe, pcs: new BigUint64Array([0x1000n, 0x2000n]) });
    const part = await pool.resolve({ exe, pcs: new BigUint64Array([0x1000n]), inlinedOnly: true });
    expect(() => addInlined(plain, part)).to.throw(/1 PCs cannot be added to an index of 2/);
  });
});
