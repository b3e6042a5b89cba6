import { expect } from 'chai';
import { appendFileSync, closeSync, mkdtempSync, openSync, writeSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoverageFile, openCoverageFileWhenReady, readCoverageFile } from '../../src/coverage/reader.js';
import { CoverageFileError, type CoverageErrorCode, type CoverageLayout } from '../../src/coverage/types.js';
import { classifySize, layoutInfo, MAX_PCS_LEN } from '../../src/coverage/layout.js';
import { countSeen, isSeen } from '../../src/contracts/seen.js';
import { encodeCoverageFile, writeCoverageFile } from '../../src/coverage/writer.js';

/** PCs that look like a real text section: ascending, non-zero. */
function fakePcs(n: number, base = 0x1000n): bigint[] {
  return Array.from({ length: n }, (_, i) => base + BigInt(i) * 7n + BigInt(i % 3));
}

function expectCoverageError(fn: () => unknown, code: CoverageErrorCode, retryable?: boolean): CoverageFileError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a CoverageFileError ${code}`).to.be.instanceOf(CoverageFileError);
  const e = caught as CoverageFileError;
  expect(e.kind).to.equal(code);
  if (retryable !== undefined) expect(e.retryable, `retryable of ${e.message}`).to.equal(retryable);
  return e;
}

describe('coverage reader', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'covd-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('layouts', () => {
    for (const layout of ['seed', 'bits-first', 'no-lowest-stack'] as CoverageLayout[]) {
      for (const n of [1, 63, 64, 65, 200]) {
        it(`reads a ${layout} file with ${n} PCs, detecting the layout`, () => {
          const pcs = fakePcs(n);
          const seen = [0, n - 1, Math.floor(n / 2)];
          const path = writeCoverageFile(join(dir, '0123456789abcdef'), {
            layout, pcs, nRuns: 1234n, uniqueRuns: 56n, lowestStack: 0x7ffd0000n, seen,
          });
          const f = CoverageFile.open(path);
          try {
            expect(f.layout).to.equal(layout);
            expect(f.pcsLen).to.equal(n);
            expect(Array.from(f.pcs)).to.deep.equal(pcs);
            expect(f.id).to.equal('0123456789abcdef');
            const { header, seen: bits } = f.read();
            expect(header.nRuns).to.equal(1234n);
            expect(header.uniqueRuns).to.equal(56n);
            expect(header.pcsLen).to.equal(n);
            expect(header.lowestStack).to.equal(layout === 'no-lowest-stack' ? null : 0x7ffd0000n);
            expect(bits.length).to.equal(Math.ceil(n / 64) * 8);
            const got = Array.from({ length: n }, (_, i) => i).filter((i) => isSeen(bits, i));
            expect(got).to.deep.equal([...new Set(seen)].sort((a, b) => a - b));
            expect(countSeen(bits, n)).to.equal(new Set(seen).size);
          } finally {
            f.close();
          }
        });
      }
    }

    it('tells bits-first from seed when every seen word is non-zero (by PC order)', () => {
      const n = 100;
      const all = Array.from({ length: n }, (_, i) => i);
      const path = writeCoverageFile(join(dir, 'f'), { layout: 'bits-first', pcs: fakePcs(n), seen: all });
      expect(CoverageFile.open(path).layout).to.equal('bits-first');
      const path2 = writeCoverageFile(join(dir, 'g'), { layout: 'seed', pcs: fakePcs(n), seen: all });
      expect(CoverageFile.open(path2).layout).to.equal('seed');
    });

    it('honours a forced layout and rejects one that does not fit the size', () => {
      const path = writeCoverageFile(join(dir, 'f'), { layout: 'seed', pcs: fakePcs(10) });
      expect(CoverageFile.open(path, { layout: 'bits-first' }).layout).to.equal('bits-first');
      expectCoverageError(() => CoverageFile.open(path, { layout: 'no-lowest-stack' }), 'BAD_SIZE', false);
    });

    it('reports lowest_stack as null when untracked (u64 max or 0)', () => {
      for (const ls of [0xffff_ffff_ffff_ffffn, 0n]) {
        const path = writeCoverageFile(join(dir, 'f'), { pcs: fakePcs(5), lowestStack: ls });
        expect(readCoverageFile(path).header.lowestStack).to.equal(null);
      }
    });

    it('clears seen bits past pcs_len so nobody indexes beyond the PC list', () => {
      const n = 70;
      const buf = encodeCoverageFile({ pcs: fakePcs(n), seen: [69] });
      const bitsOff = layoutInfo('seed', n).bitsOffset;
      buf[bitsOff + 15] = 0xff; // bits 120..127: beyond 70
      buf[bitsOff + 8] |= 0xc0; // bits 70, 71
      writeFileSync(join(dir, 'f'), buf);
      const { seen } = readCoverageFile(join(dir, 'f'));
      expect(countSeen(seen, 128)).to.equal(1);
      expect(isSeen(seen, 69)).to.equal(true);
    });

    it('classifies sizes', () => {
      const { size } = layoutInfo('seed', 10);
      expect(classifySize(size, 10).kind).to.equal('four');
      expect(classifySize(size - 8, 10).kind).to.equal('three');
      expect(classifySize(size - 9, 10).kind).to.equal('short');
      expect(classifySize(size + 1, 10).kind).to.equal('bad');
    });
  });

  describe('files that are not (yet) valid', () => {
    it('ENOENT for a missing file, retryable', () => {
      expectCoverageError(() => CoverageFile.open(join(dir, 'nope')), 'ENOENT', true);
    });

    it('EMPTY for a zero-byte file, retryable', () => {
      writeFileSync(join(dir, 'f'), '');
      expectCoverageError(() => CoverageFile.open(join(dir, 'f')), 'EMPTY', true);
    });

    it('SHORT for less than a header, retryable', () => {
      writeFileSync(join(dir, 'f'), Buffer.alloc(20, 1));
      expectCoverageError(() => CoverageFile.open(join(dir, 'f')), 'SHORT', true);
    });

    it('SHORT when the body is shorter than pcs_len says (still being written), retryable', () => {
      const buf = encodeCoverageFile({ pcs: fakePcs(100) });
      writeFileSync(join(dir, 'f'), buf.subarray(0, buf.length - 100));
      expectCoverageError(() => CoverageFile.open(join(dir, 'f')), 'SHORT', true);
    });

    it('BAD_PCS_LEN for pcs_len 0 (retryable: header not yet written) and for an absurd one (not)', () => {
      writeFileSync(join(dir, 'zero'), Buffer.alloc(4096));
      expectCoverageError(() => CoverageFile.open(join(dir, 'zero')), 'BAD_PCS_LEN', true);
      const buf = Buffer.alloc(64);
      buf.writeBigUInt64LE(BigInt(MAX_PCS_LEN) + 1n, 16);
      writeFileSync(join(dir, 'huge'), buf);
      expectCoverageError(() => CoverageFile.open(join(dir, 'huge')), 'BAD_PCS_LEN', false);
      buf.writeBigUInt64LE(0xffff_ffff_ffff_ffffn, 16);
      writeFileSync(join(dir, 'max'), buf);
      expectCoverageError(() => CoverageFile.open(join(dir, 'max')), 'BAD_PCS_LEN', false);
    });

    it('BAD_SIZE for a file larger than any layout', () => {
      const buf = encodeCoverageFile({ pcs: fakePcs(10) });
      writeFileSync(join(dir, 'f'), Buffer.concat([buf, Buffer.alloc(3)]));
      expectCoverageError(() => CoverageFile.open(join(dir, 'f')), 'BAD_SIZE', false);
    });

    it('IO for a directory', () => {
      expectCoverageError(() => CoverageFile.open(dir), 'IO', false);
    });
  });

  describe('files that change under an open reader', () => {
    function openFresh(n = 100): { path: string; f: CoverageFile } {
      const path = writeCoverageFile(join(dir, 'aaaaaaaaaaaaaaaa'), { pcs: fakePcs(n), nRuns: 10n, seen: [1] });
      return { path, f: CoverageFile.open(path) };
    }

    it('sees new runs and bits written in place', () => {
      const { path, f } = openFresh();
      expect(countSeen(f.read().seen, 100)).to.equal(1);
      const buf = encodeCoverageFile({ pcs: fakePcs(100), nRuns: 20n, uniqueRuns: 2n, seen: [1, 2, 99] });
      const fd = openSync(path, 'r+');
      writeSync(fd, buf, 0, buf.length, 0);
      closeSync(fd);
      const snap = f.read();
      expect(snap.header.nRuns).to.equal(20n);
      expect(snap.header.uniqueRuns).to.equal(2n);
      expect(countSeen(snap.seen, 100)).to.equal(3);
      f.close();
    });

    it('SHORT (not retryable) when truncated', () => {
      const { path, f } = openFresh();
      truncateSync(path, 100);
      expectCoverageError(() => f.read(), 'SHORT', false);
      // and reading the bits directly does not crash either
      expectCoverageError(() => f.readSeen(), 'SHORT', false);
      f.close();
    });

    it('BAD_SIZE when grown', () => {
      const { path, f } = openFresh();
      appendFileSync(path, Buffer.alloc(8));
      expectCoverageError(() => f.read(), 'BAD_SIZE', false);
      f.close();
    });

    it('ENOENT (retryable) when deleted', () => {
      const { path, f } = openFresh();
      unlinkSync(path);
      expectCoverageError(() => f.read(), 'ENOENT', true);
      f.close();
    });

    it('REPLACED when another file is renamed over it', () => {
      const { path, f } = openFresh();
      writeCoverageFile(join(dir, 'other'), { pcs: fakePcs(100) });
      renameSync(join(dir, 'other'), path);
      expectCoverageError(() => f.read(), 'REPLACED', true);
      f.close();
      // reopening gets the new file
      const g = CoverageFile.open(path);
      expect(g.read().header.nRuns).to.equal(0n);
      g.close();
    });

    it('REPLACED when pcs_len changes in place', () => {
      const { path, f } = openFresh(64);
      const fd = openSync(path, 'r+');
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(63n);
      writeSync(fd, b, 0, 8, 16);
      closeSync(fd);
      expectCoverageError(() => f.read(), 'REPLACED', true);
      f.close();
    });

    it('never reports n_runs going backwards', () => {
      const { path, f } = openFresh();
      expect(f.readHeader().nRuns).to.equal(10n);
      const fd = openSync(path, 'r+');
      writeSync(fd, Buffer.alloc(8), 0, 8, 0);
      closeSync(fd);
      expect(f.readHeader().nRuns).to.equal(10n);
      f.close();
    });

    it('a closed reader throws IO instead of reading a reused descriptor', () => {
      const { f } = openFresh();
      f.close();
      expect(f.closed).to.equal(true);
      expectCoverageError(() => f.read(), 'IO', false);
    });
  });

  describe('openCoverageFileWhenReady', () => {
    it('waits for a file that appears empty, then short, then complete', async () => {
      const path = join(dir, 'bbbbbbbbbbbbbbbb');
      const full = encodeCoverageFile({ pcs: fakePcs(500), nRuns: 7n });
      writeFileSync(path, '');
      setTimeout(() => writeFileSync(path, full.subarray(0, 40)), 100);
      setTimeout(() => writeFileSync(path, full), 300);
      const f = await openCoverageFileWhenReady(path, { timeoutMs: 30_000, intervalMs: 20 });
      expect(f.pcsLen).to.equal(500);
      expect(f.readHeader().nRuns).to.equal(7n);
      f.close();
    });

    it('gives up with the last error after the timeout', async () => {
      let err: unknown;
      try {
        await openCoverageFileWhenReady(join(dir, 'never'), { timeoutMs: 200, intervalMs: 20 });
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(CoverageFileError);
      expect((err as CoverageFileError).kind).to.equal('ENOENT');
    });

    it('does not wait on errors that cannot clear', async () => {
      const path = join(dir, 'c');
      writeFileSync(path, Buffer.concat([encodeCoverageFile({ pcs: fakePcs(3) }), Buffer.alloc(1)]));
      const t0 = Date.now();
      let err: unknown;
      try {
        await openCoverageFileWhenReady(path, { timeoutMs: 60_000 });
      } catch (e) {
        err = e;
      }
      expect((err as CoverageFileError).kind).to.equal('BAD_SIZE');
      expect(Date.now() - t0).to.be.below(30_000);
    });
  });
});
