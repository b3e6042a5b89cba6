/**
 * The lcov export's branch records (src/web/summary.ts toLcov) against genhtml: a line with
 * several PCs exports one BRDA record per PC, so genhtml shows a partly covered line as k/n rather
 * than as a plain hit, and genhtml's branch totals are the API's `totals.branches`.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startWebServer } from '../../src/web/server.js';
import type { WebServer } from '../../src/web/types.js';
import { getJson, LiveTarget, quietLog, request, tempDir, until } from './harness.js';

const execFileP = promisify(execFile);

describe('web: lcov export with branch records, read by genhtml', function () {
  this.timeout(180_000);
  let target: LiveTarget;
  let srv: WebServer;

  before(async () => {
    target = await LiveTarget.start({ tickMs: 100 });
    await until(() => target.registry.target(target.id)!.stats.covered > 0, 'some coverage');
    await new Promise((r) => setTimeout(r, 1500));
    await target.stopFuzzing();
    srv = await startWebServer({ hub: target.registry, host: '127.0.0.1', port: 0, log: quietLog, limits: { httpRate: 100_000 } });
  });

  after(async () => {
    await srv?.close();
    await target?.close();
  });

  it('exports one BRDA per PC of a multi-PC line, and genhtml counts the same branches as the API', async () => {
    const { body } = await getJson(srv.port, `/api/targets/${target.id}`);
    const branches = body.totals.branches as { covered: number; total: number };
    // tinyimg has partly covered lines after a short run: some branches taken, some not.
    expect(branches.total).to.be.greaterThan(0);
    expect(branches.covered).to.be.greaterThan(0).and.lessThan(branches.total);
    const lcov = (await request(srv.port, `/api/targets/${target.id}/coverage?format=lcov&library=1`)).body.toString();

    // Per record: BRF = its BRDA records, BRH = those taken; a line's records are k = 0..n-1.
    let partly = 0;
    for (const rec of lcov.split('end_of_record').filter((r) => r.includes('SF:'))) {
      const brda = [...rec.matchAll(/^BRDA:(\d+),0,(\d+),([-\d]+)$/gm)];
      const brf = /^BRF:(\d+)$/m.exec(rec), brh = /^BRH:(\d+)$/m.exec(rec);
      if (brda.length === 0) {
        expect(brf, 'no BRF without branches').to.equal(null);
        continue;
      }
      expect(Number(brf![1])).to.equal(brda.length);
      expect(Number(brh![1])).to.equal(brda.filter((m) => m[3] === '1').length);
      const byLine = new Map<string, string[]>();
      for (const m of brda) byLine.set(m[1]!, [...(byLine.get(m[1]!) ?? []), m[3]!]);
      for (const [line, taken] of byLine) {
        expect(taken.length, `line ${line}`).to.be.greaterThanOrEqual(2);
        // A line either has a seen PC (then its unseen ones are 0) or none (then all are '-').
        if (taken.includes('1')) expect(taken.every((x) => x === '1' || x === '0'), `line ${line}`).to.equal(true);
        else expect(taken.every((x) => x === '-'), `line ${line}`).to.equal(true);
        if (taken.includes('1') && taken.includes('0')) {
          partly++;
          expect(rec).to.match(new RegExp(`^DA:${line},1$`, 'm'));
        }
      }
    }
    expect(partly, 'partly covered lines exported as branches').to.be.greaterThan(0);

    const dir = tempDir();
    try {
      writeFileSync(join(dir, 'cov.info'), lcov);
      const { stdout } = await execFileP('genhtml', ['--branch-coverage', '--output-directory', join(dir, 'html'), join(dir, 'cov.info')]);
      const br = /branches\.*: [\d.]+% \((\d+) of (\d+) branches\)/.exec(stdout);
      expect(br, stdout).to.not.equal(null);
      expect([Number(br![1]), Number(br![2])]).to.deep.equal([branches.covered, branches.total]);
      const lines = /lines\.*: [\d.]+% \((\d+) of (\d+) lines\)/.exec(stdout);
      expect([Number(lines![1]), Number(lines![2])]).to.deep.equal([body.totals.lines.covered, body.totals.lines.total]);
      // The per-file pages mark taken and not-taken branches on the partly covered lines.
      const pages = readdirSync(join(dir, 'html'), { recursive: true }).map(String).filter((f) => f.endsWith('.c.gcov.html'));
      expect(pages.length).to.be.greaterThan(0);
      const html = pages.map((p) => readFileSync(join(dir, 'html', p), 'utf8')).join('\n');
      expect(html).to.match(/branchCov/).and.to.match(/branchNoCov/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
