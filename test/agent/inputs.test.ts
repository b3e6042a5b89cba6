/**
 * The agent's inputs behind new coverage (agent/covd_inputs.c) in real libFuzzer runs: every PC
 * the coverage file has seen is named by exactly one record, whose input is kept under its SHA-1;
 * -jobs processes share one log without losing or tearing records; the size and total limits.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildExampleTarget, findCoverageFile, runFuzzer } from '../helpers/fuzz-targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { isSeen } from '../../src/contracts/seen.js';
import { IN_KEPT, IN_TOO_LARGE, parseRecords, type InputRecord } from '../../src/daemon/inputs-log.js';
import { scratchDirs } from '../helpers/scratch.js';

interface Logged { records: InputRecord[]; skipped: number; consumed: number; length: number }

function readLog(file: string, pcsLen: number): Logged {
  const buf = readFileSync(`${file}.inputs.log`);
  const res = parseRecords<InputRecord>('input', buf, 0, pcsLen);
  return { records: res.records.map((r) => r.record), skipped: res.skipped.length, consumed: res.consumed, length: buf.length };
}

/** Every seen PC is claimed by exactly one record, and no record claims an unseen PC. */
function expectClaimsMatchSeen(file: string, log: Logged): Map<number, InputRecord> {
  const cov = readCoverageFile(file);
  const claimed = new Map<number, InputRecord>();
  for (const r of log.records) {
    for (const pc of r.pcs) {
      expect(claimed.has(pc), `PC ${pc} claimed twice`).to.equal(false);
      claimed.set(pc, r);
    }
  }
  let seen = 0;
  for (let i = 0; i < cov.pcs.length; i++) {
    if (!isSeen(cov.seen, i)) {
      expect(claimed.has(i), `unseen PC ${i} claimed`).to.equal(false);
      continue;
    }
    seen++;
    expect(claimed.has(i), `seen PC ${i} is named by a record`).to.equal(true);
  }
  expect(claimed.size).to.equal(seen);
  return claimed;
}

describe('agent: inputs behind new coverage', function () {
  this.timeout(600_000);
  let exe: string;
  const tmp = scratchDirs();
  before(async () => {
    exe = await buildExampleTarget();
  });

  it('logs the PCs each input was first to reach and keeps it under its SHA-1, only when it found new coverage', async () => {
    const covdDir = tmp();
    const { code, stderr } = await runFuzzer(exe, { covdDir, runs: 20_000, extraArgs: ['-seed=7'], env: { COVD_AGENT_STATS: '1' } }).done;
    expect(code, stderr.slice(-2000)).to.equal(0);
    const file = await findCoverageFile(covdDir);
    const cov = readCoverageFile(file);
    const log = readLog(file, cov.pcs.length);
    expect(log.skipped, 'torn or garbled records').to.equal(0);
    expect(log.consumed).to.equal(log.length);
    expectClaimsMatchSeen(file, log);
    // One record per input here (tinyimg inputs reach far fewer than 1007 new PCs at once),
    // and only inputs that found new PCs are logged: as many as unique_runs at most.
    expect(log.records.length).to.be.within(2, Number(cov.header.uniqueRuns));
    const stats = /covd-agent: inputs saved=(\d+) records=(\d+) bytes=(\d+)/.exec(stderr);
    expect(stats, stderr.slice(-1000)).to.not.equal(null);
    expect(Number(stats![1])).to.equal(log.records.length);
    // The first input libFuzzer runs is the empty one.
    expect(log.records[0]!.hash).to.equal(createHash('sha1').digest('hex'));
    const dir = `${file}.inputs`;
    let runBefore = 0;
    for (const r of log.records) {
      expect(r.flags & IN_KEPT, `input ${r.hash} kept`).to.equal(IN_KEPT);
      const bytes = readFileSync(join(dir, r.hash));
      expect(bytes.length).to.equal(r.size);
      expect(createHash('sha1').update(bytes).digest('hex')).to.equal(r.hash);
      expect(r.run, 'run numbers grow').to.be.greaterThan(runBefore);
      runBefore = r.run;
      expect(r.pcs.length).to.be.greaterThan(0);
    }
    expect(readdirSync(dir).sort()).to.deep.equal([...new Set(log.records.map((r) => r.hash))].sort());
  });

  it('two -jobs processes share one log without losing or tearing records', async () => {
    const covdDir = tmp();
    const { code, stderr } = await runFuzzer(exe, { covdDir, runs: 30_000, extraArgs: ['-jobs=2', '-workers=2'] }).done;
    expect(code, stderr.slice(-2000)).to.equal(0);
    const files = readdirSync(join(covdDir, 'v')).filter((n) => /^[0-9a-f]{16}$/.test(n));
    expect(files).to.have.length(1);
    const file = join(covdDir, 'v', files[0]!);
    const cov = readCoverageFile(file);
    expect(cov.header.nRuns).to.equal(60_000n);
    const log = readLog(file, cov.pcs.length);
    expect(log.skipped, 'torn records').to.equal(0);
    expect(log.consumed, 'every byte belongs to a whole record').to.equal(log.length);
    const claimed = expectClaimsMatchSeen(file, log);
    // Both processes found coverage first (they start from the same corpus at the same time).
    const pids = new Set([...claimed.values()].map((r) => r.pid));
    expect(pids.size, 'processes that logged').to.equal(2);
    for (const r of log.records) expect(existsSync(join(`${file}.inputs`, r.hash)), r.hash).to.equal(true);
  });

  it('records an input over COVD_AGENT_INPUT_MAX by hash and size, without its bytes', async () => {
    const covdDir = tmp();
    const big = join(tmp(), 'big-input');
    // Run alone in a fresh directory, any input reaches PCs first (the harness's entry at least).
    const bytes = Buffer.alloc(5 << 20, 0x41);
    writeFileSync(big, bytes);
    const r = spawnSync(exe, [big], { env: { ...process.env, COVD_DIR: covdDir, COVD_AGENT_INPUT_MAX: '64K', COVD_SOCKET: join(covdDir, 'none.sock') }, encoding: 'utf8' });
    expect(r.status, r.stderr.slice(-2000)).to.equal(0);
    const file = await findCoverageFile(covdDir);
    const log = readLog(file, readCoverageFile(file).pcs.length);
    const hash = createHash('sha1').update(bytes).digest('hex');
    const rec = log.records.find((x) => x.hash === hash);
    expect(rec, 'the big input is recorded').to.not.equal(undefined);
    expect(rec!.size).to.equal(5 << 20);
    expect(rec!.flags & IN_TOO_LARGE).to.equal(IN_TOO_LARGE);
    expect(rec!.flags & IN_KEPT).to.equal(0);
    expect(rec!.pcs.length).to.be.greaterThan(0);
    expect(existsSync(join(`${file}.inputs`, hash)), 'its bytes are not kept').to.equal(false);
  });

  it('keeps the inputs directory under COVD_AGENT_INPUTS_TOTAL, dropping the oldest first, while the log keeps every record', async () => {
    const covdDir = tmp();
    const limit = 600;
    const { code, stderr } = await runFuzzer(exe, { covdDir, runs: 40_000, extraArgs: ['-seed=11'], env: { COVD_AGENT_INPUTS_TOTAL: String(limit), COVD_AGENT_STATS: '1' } }).done;
    expect(code, stderr.slice(-2000)).to.equal(0);
    const file = await findCoverageFile(covdDir);
    const log = readLog(file, readCoverageFile(file).pcs.length);
    const dir = `${file}.inputs`;
    const kept = readdirSync(dir);
    const total = kept.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    const logged = log.records.reduce((n, r) => n + r.size, 0);
    expect(logged, 'the run saved more than the limit').to.be.greaterThan(2 * limit);
    expect(total, 'bytes kept').to.be.at.most(limit);
    expect(Number(/evicted=(\d+)/.exec(stderr)?.[1])).to.be.greaterThan(0);
    expectClaimsMatchSeen(file, log);
    // The newest input survives eviction; the oldest ones went first.
    const newest = log.records[log.records.length - 1]!;
    if (newest.size <= limit / 8) expect(kept, 'the newest input is kept').to.include(newest.hash);
    expect(kept, 'the oldest (the empty input) was dropped').to.not.include(log.records[0]!.hash);
  });
});
