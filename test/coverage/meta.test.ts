import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoverageMetaError, coverageFilePath, coverageIdOf, metaPathFor, readCoverageMeta, writeCoverageMeta } from '../../src/coverage/meta.js';
import type { CoverageMeta } from '../../src/coverage/types.js';

describe('coverage metadata', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'covd-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const good: CoverageMeta = { exe: '/opt/fuzz/fuzz_x', buildId: 'a1b2c3d4', pid: 42, startTime: 1_700_000_000_000, argv: ['./fuzz_x', '-jobs=2', 'with space'] };

  it('round-trips through an atomic write and leaves no temp file', () => {
    const file = join(dir, '0123456789abcdef');
    writeCoverageMeta(file, good);
    expect(readCoverageMeta(file)).to.deep.equal(good);
    expect(readdirSync(dir)).to.deep.equal(['0123456789abcdef.meta.json']);
    writeCoverageMeta(file, { ...good, buildId: null });
    expect(readCoverageMeta(file)?.buildId).to.equal(null);
  });

  it('returns null when there is no metadata yet', () => {
    expect(readCoverageMeta(join(dir, 'ffffffffffffffff'))).to.equal(null);
  });

  it('rejects invalid JSON and each bad field with a CoverageMetaError naming it', () => {
    const file = join(dir, 'x');
    writeFileSync(metaPathFor(file), '{"exe": "/a", ');
    expect(() => readCoverageMeta(file)).to.throw(CoverageMetaError, /invalid JSON/);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good, exe: 'relative/path' }, /"exe"/],
      [{ ...good, buildId: 'XYZ' }, /"buildId"/],
      [{ ...good, pid: -1 }, /"pid"/],
      [{ ...good, startTime: 'yesterday' }, /"startTime"/],
      [{ ...good, argv: ['ok', 3] }, /"argv"/],
    ];
    for (const [meta, re] of cases) {
      writeFileSync(metaPathFor(file), JSON.stringify(meta));
      expect(() => readCoverageMeta(file)).to.throw(CoverageMetaError, re);
    }
    writeFileSync(metaPathFor(file), '[1,2]');
    expect(() => readCoverageMeta(file)).to.throw(CoverageMetaError, /not a JSON object/);
  });

  it('names coverage files by 16 lower-case hex digits', () => {
    expect(coverageIdOf('/x/v/0123456789abcdef')).to.equal('0123456789abcdef');
    expect(coverageIdOf('/x/v/0123456789ABCDEF')).to.equal(null);
    expect(coverageIdOf('/x/v/0123456789abcdef.meta.json')).to.equal(null);
    expect(coverageFilePath('/d', '0123456789abcdef')).to.equal('/d/v/0123456789abcdef');
  });
});
