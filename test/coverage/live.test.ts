/** The reader against files that real fuzzers are writing at the same time. */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildExampleTarget, findCoverageFile, runFuzzer } from '../helpers/fuzz-targets.js';
import { openCoverageFileWhenReady } from '../../src/coverage/reader.js';
import { countSeen } from '../../src/contracts/seen.js';
import { readCoverageMeta } from '../../src/coverage/meta.js';

describe('coverage reader on a live fuzzer', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'covd-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('sees counts and bits only grow while two processes write, and ends on their exact total', async () => {
    const exe = await buildExampleTarget();
    const runs = 300_000;
    const run = runFuzzer(exe, { covdDir: dir, runs, extraArgs: ['-jobs=2', '-workers=2'] });
    const f = await openCoverageFileWhenReady(await findCoverageFile(dir), { timeoutMs: 60_000 });
    let prevRuns = 0n;
    let prevUnique = 0n;
    let prevBits = new Uint8Array(f.info.bitsBytes);
    let reads = 0;
    let changes = 0;
    let exited = false;
    void run.done.then(() => (exited = true));
    while (!exited) {
      const { header, seen } = f.read();
      reads++;
      expect(header.pcsLen).to.equal(f.pcsLen);
      expect(header.nRuns >= prevRuns, 'n_runs never goes backwards').to.equal(true);
      expect(header.uniqueRuns >= prevUnique, 'unique_runs never goes backwards').to.equal(true);
      for (let i = 0; i < seen.length; i++) {
        // Every bit seen before is still seen: the new snapshot is a superset.
        if ((prevBits[i]! & ~seen[i]!) !== 0) expect.fail(`seen byte ${i} lost bits`);
      }
      if (header.nRuns !== prevRuns) changes++;
      prevRuns = header.nRuns;
      prevUnique = header.uniqueRuns;
      prevBits = seen.slice();
      await new Promise((r) => setTimeout(r, 2));
    }
    const { code } = await run.done;
    expect(code).to.equal(0);
    expect(reads).to.be.greaterThan(5);
    expect(changes, 'the counts moved between reads').to.be.greaterThan(1);
    const last = f.read();
    expect(last.header.nRuns).to.equal(BigInt(2 * runs));
    expect(last.header.uniqueRuns > 0n).to.equal(true);
    expect(countSeen(last.seen, f.pcsLen)).to.be.at.least(countSeen(prevBits, f.pcsLen));
    expect(readCoverageMeta(f.path)?.exe).to.be.a('string');
    f.close();
  });
});
