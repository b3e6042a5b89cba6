/**
 * Call graph jobs (src/workers/callgraph.ts) through the blockers route's source (DwarfCallGraph):
 * on the sqlite3 target, the call sites a worker thread maps equal those mapped in-process, the
 * job runs on another thread, and the event loop keeps turning while it runs (in-process the
 * same work holds it for hundreds of milliseconds). A rebuilt executable or another PC table is
 * refused with its code. A job's deadline counts from its start, not from when it was queued;
 * destroy() ends a running job and refuses later ones.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { buildSqliteTarget, findCoverageFile, runFuzzer } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { pcTableHash } from '../../src/contracts/ids.js';
import { DebugInfo } from '../../src/dwarf/resolve.js';
import { callSitesFor } from '../../src/dwarf/callsites.js';
import type { CallSites } from '../../src/contracts/callgraph.js';
import { SymbolizerPool } from '../../src/workers/pool.js';
import { CallGraphPool, DwarfCallGraph } from '../../src/workers/callgraph.js';
import type { SourceIndex } from '../../src/contracts/source-index.js';
import type { TargetDetail } from '../../src/contracts/hub.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const plain = (cs: CallSites | null) => cs && { caller: Array.from(cs.caller), callee: Array.from(cs.callee), pcIndex: Array.from(cs.pcIndex), tail: Array.from(cs.tail) };

/** The longest time between two turns of the event loop while `p` runs, ms. */
async function longestStall<T>(p: () => Promise<T>): Promise<{ value: T; stallMs: number }> {
  let last = performance.now(), worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 2);
  try {
    const value = await p();
    worst = Math.max(worst, performance.now() - last);
    return { value, stallMs: worst };
  } finally {
    clearInterval(timer);
  }
}

describe('workers: call graph jobs off the event loop', function () {
  this.timeout(600_000);
  let tmp: string;
  let exe: string, coverageFile: string;
  let pcs: BigUint64Array;
  let index: SourceIndex;
  const graphs: DwarfCallGraph[] = [];

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'covd-cg-'));
    exe = await buildSqliteTarget();
    const r = await runFuzzer(exe, { covdDir: join(tmp, 'cd'), runs: 0, corpus: null }).done;
    expect(r.code, r.stderr.slice(-400)).to.equal(0);
    coverageFile = await findCoverageFile(join(tmp, 'cd'));
    pcs = readCoverageFile(coverageFile).pcs;
    const pool = new SymbolizerPool({ threads: 2 });
    try { index = await pool.resolve({ exe, pcs }); } finally { await pool.destroy(); }
  });
  after(async () => {
    for (const g of graphs) await g.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  const target = (over: Partial<TargetDetail> = {}, ix = index) =>
    ({ id: 'sqlite', exe, coverageFile, pcsHash: pcTableHash(pcs), ...over, index: ix }) as unknown as TargetDetail & { index: SourceIndex };

  it('maps the same call sites as in-process, on a worker thread, without stalling the event loop', async () => {
    const t0 = performance.now();
    const inProcess = callSitesFor(DebugInfo.open(exe), pcs, index);
    const inProcessMs = performance.now() - t0;
    expect(inProcess, 'sqlite3 at -O1 has call sites').to.not.equal(null);
    expect(inProcess!.caller.length).to.be.greaterThan(1000);

    const g = new DwarfCallGraph();
    graphs.push(g);
    const j0 = performance.now();
    const { value, stallMs } = await longestStall(() => g.callSites(target()));
    const jobMs = performance.now() - j0;
    // The same watch over an idle period as long, on this machine now: what load alone costs.
    const { stallMs: idleMs } = await longestStall(() => sleep(jobMs));
    expect(plain(value)).to.deep.equal(plain(inProcess));
    const timing = g.jobs.lastTiming!;
    expect(timing.threadId, 'the job ran on a worker thread').to.not.equal(threadId);
    expect(timing.threadId).to.be.greaterThan(0);
    // The work the job did would have held the event loop this long; beyond what an idle loop
    // stalls on this machine, it never stalled for half of it. (On a quiet machine sqlite's call
    // graph takes 80 to 90 ms in-process, on a loaded one several times that: half of it is
    // still well above what a job on another thread shows.)
    expect(inProcessMs, 'in-process the call graph takes long enough to see a stall (precondition)').to.be.greaterThan(40);
    expect(stallMs, `longest stall ${stallMs.toFixed(0)} ms (idle ${idleMs.toFixed(0)} ms) while the worker spent ${(timing.loadMs + timing.mapMs).toFixed(0)} ms (in-process ${inProcessMs.toFixed(0)} ms)`).to.be.lessThan(idleMs + inProcessMs / 2);
  });

  it('refuses another PC table, and an executable rebuilt since the index, with their codes', async () => {
    const g = new DwarfCallGraph();
    graphs.push(g);
    const code = (p: Promise<unknown>) => p.then(() => 'resolved', (e: { code?: string }) => e.code);
    expect(await code(g.callSites(target({ pcsHash: '0123456789abcdef' })))).to.equal('COVD_ERR_COVERAGE_PCS_CHANGED');
    expect(await code(g.callSites(target({}, { ...index, buildId: 'deadbeef' })))).to.equal('COVD_ERR_DEBUG_INFO_BUILD_ID');
    expect(await code(g.callSites(target({ exe: join(tmp, 'missing') })))).to.equal('COVD_ERR_DEBUG_INFO_ENOENT');
  });

  it('a job\'s deadline starts when it starts: jobs queued behind others are not timed out for the wait', async () => {
    // How long one job takes on a new pool (thread start included) and on a warm thread.
    const probe = new CallGraphPool();
    let coldMs: number, warmMs: number;
    try {
      let t = performance.now();
      await probe.callSites({ exe, buildId: index.buildId ?? null, pcs, pcFunction: index.pcFunction });
      coldMs = performance.now() - t;
      t = performance.now();
      await probe.callSites({ exe, buildId: index.buildId ?? null, pcs, pcFunction: index.pcFunction });
      warmMs = performance.now() - t;
    } finally {
      await probe.destroy();
    }
    // A deadline each job meets with room to spare, and enough jobs at once that the last one
    // waits longer than that deadline before it starts.
    const timeoutMs = Math.ceil(Math.max(2 * coldMs, 3 * warmMs));
    const n = Math.min(16, 2 + Math.ceil((1.5 * timeoutMs) / warmMs));
    const pool = new CallGraphPool({ timeoutMs });
    try {
      const t0 = performance.now();
      const jobs = Array.from({ length: n }, () => pool.callSites({ exe, buildId: index.buildId ?? null, pcs, pcFunction: index.pcFunction }).then((cs) => ({ cs, doneMs: performance.now() - t0 })));
      const done = await Promise.all(jobs);
      for (const d of done) expect(d.cs, 'every job answered').to.not.equal(null);
      const last = done[n - 1]!;
      expect(last.doneMs, `the last of ${n} jobs was answered after more than the deadline (${timeoutMs} ms) from its submission (precondition)`).to.be.greaterThan(timeoutMs);
      expect(pool.lastTiming!.waitMs, 'and spent most of that waiting for the others').to.be.greaterThan(last.doneMs - timeoutMs);
      // Each job ran within the deadline from its own start.
      expect(pool.lastTiming!.totalMs).to.be.lessThan(timeoutMs);
    } finally {
      await pool.destroy();
    }
  });

  it('a job longer than its deadline is abandoned with the timeout code', async () => {
    const pool = new CallGraphPool({ timeoutMs: 1 });
    try {
      const err = await pool.callSites({ exe, buildId: index.buildId ?? null, pcs, pcFunction: index.pcFunction }).then(() => null, (e: { code?: string }) => e);
      expect(err?.code).to.equal('COVD_ERR_DEBUG_INFO_TIMEOUT');
    } finally {
      await pool.destroy();
    }
  });

  it('destroy() ends a running job and the ones waiting, and refuses later requests', async () => {
    const g = new DwarfCallGraph();
    graphs.push(g);
    const running = g.callSites(target()).then(() => 'resolved', (e: Error) => e);
    const waiting = g.callSites(target()).then(() => 'resolved', (e: Error) => e);
    await sleep(100); // the first job is reading the PC list or on its thread by now
    const t0 = performance.now();
    await g.destroy();
    const [a, b] = await Promise.all([running, waiting]);
    expect(a, 'the running job rejects').to.be.instanceOf(Error);
    expect(b, 'the waiting one too').to.be.instanceOf(Error);
    expect(performance.now() - t0, 'without waiting for the job to finish').to.be.lessThan(5_000);
    expect(await g.callSites(target()).then(() => 'resolved', (e: { code?: string }) => e.code)).to.equal('COVD_ERR_INTERNAL');
  });
});
