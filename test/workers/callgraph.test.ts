/**
 * Call graph jobs (src/workers/callgraph.ts) through the blockers route's source (DwarfCallGraph):
 * on the sqlite3 target, the call sites a worker thread maps equal those mapped in-process, the
 * job runs on another thread, and the event loop keeps turning while it runs (in-process the
 * same work holds it for hundreds of milliseconds). A rebuilt executable or another PC table is
 * refused with its code.
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
import { callSitesFor, type CallSites } from '../../src/dwarf/callsites.js';
import { SymbolizerPool } from '../../src/workers/pool.js';
import { DwarfCallGraph } from '../../src/web/blockers-routes.js';
import type { SourceIndex } from '../../src/contracts/source-index.js';
import type { TargetDetail } from '../../src/contracts/hub.js';

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
    const { value, stallMs } = await longestStall(() => g.callSites(target()));
    expect(plain(value)).to.deep.equal(plain(inProcess));
    const timing = g.jobs.lastTiming!;
    expect(timing.threadId, 'the job ran on a worker thread').to.not.equal(threadId);
    expect(timing.threadId).to.be.greaterThan(0);
    // The work the job did would have held the event loop this long; it never stalled for half of it.
    expect(inProcessMs, 'in-process the call graph takes long enough to see a stall (precondition)').to.be.greaterThan(100);
    expect(stallMs, `longest stall ${stallMs.toFixed(0)} ms while the worker spent ${(timing.loadMs + timing.mapMs).toFixed(0)} ms (in-process ${inProcessMs.toFixed(0)} ms)`).to.be.lessThan(inProcessMs / 2);
  });

  it('refuses another PC table, and an executable rebuilt since the index, with their codes', async () => {
    const g = new DwarfCallGraph();
    graphs.push(g);
    const code = (p: Promise<unknown>) => p.then(() => 'resolved', (e: { code?: string }) => e.code);
    expect(await code(g.callSites(target({ pcsHash: '0123456789abcdef' })))).to.equal('COVD_ERR_COVERAGE_PCS_CHANGED');
    expect(await code(g.callSites(target({}, { ...index, buildId: 'deadbeef' })))).to.equal('COVD_ERR_DEBUG_INFO_BUILD_ID');
    expect(await code(g.callSites(target({ exe: join(tmp, 'missing') })))).to.equal('COVD_ERR_DEBUG_INFO_ENOENT');
  });
});
