/**
 * The soak (bench/soak.ts) at CI length: three real fuzzers, 100 tabs connecting and dropping,
 * `covd add` / `covd remove`, and the five faults, against a real daemon. Every check of its
 * verdict must pass. COVD_SOAK_SECONDS lengthens it (default 150 s).
 */
import { expect } from 'chai';
import { runSoak, soakTable, type SoakResult } from '../../bench/soak.js';

const seconds = Number(process.env.COVD_SOAK_SECONDS ?? 150);

describe('soak and faults', function () {
  // The run itself, plus building the targets, starting and stopping everything.
  this.timeout((seconds + 300) * 1000);
  let result: SoakResult;

  before(async () => {
    result = await runSoak({ seconds, progress: process.env.COVD_TEST_LOG ? (s) => console.error(`[soak] ${s}`) : undefined });
    if (!result.pass) console.error(soakTable(result));
  });

  it('ran every fault, and each left the rest serving', () => {
    expect(result.faults.map((f) => f.name)).to.have.members([
      'fuzzer killed and restarted', 'coverage file truncated', 'symbolizer worker thread killed', 'executable rebuilt', 'daemon SIGKILLed and restarted',
    ]);
    for (const f of result.faults) expect(f.pass, `${f.name}: ${f.detail}`).to.equal(true);
  });

  it('tabs churned and were resumed', () => {
    expect(result.tabs.connects).to.be.greaterThan(100);
    expect(result.tabs.resumes).to.be.greaterThan(0);
    expect(result.tabs.deltas).to.be.greaterThan(0);
    expect(result.cli.removes).to.be.greaterThan(0);
  });

  for (const name of ['tabs never ahead of the file', 'tabs equal the file after settling', 'memory settles', 'no error in the log', 'history intact across SIGKILL', 'covd add / remove work throughout']) {
    it(name, () => {
      const c = result.checks.find((x) => x.name === name);
      expect(c, `check '${name}' missing`).to.not.equal(undefined);
      expect(c!.pass, c!.detail).to.equal(true);
    });
  }
});
