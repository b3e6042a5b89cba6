/**
 * Memory per tab is bounded: many fresh tabs subscribing to a large target (index of several MB,
 * snapshot over half a MB) while it keeps gaining PCs. The large messages must go out through the
 * bounded queue of big sends (a few sockets at a time, in fragments written to empty buffers), so
 * the bytes of them buffered in the server at any moment stay a small fraction of what was sent,
 * and every tab still ends with exactly the target's bits.
 *
 * The large target's index is the example fuzz target's real index (from its DWARF) repeated to
 * 400,000 PCs, in the daemon's real TargetRegistry.
 */
import { expect } from 'chai';
import { startWebServer } from '../../src/web/server.js';
import type { WebServer } from '../../src/web/types.js';
import type { SourceIndex } from '../../src/workers/types.js';
import { LiveTarget, quietLog, sameBits, Tab, until } from './harness.js';

const BIG = 400_000;

function tile(a: Uint32Array, n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = a[i % a.length]!;
  return out;
}

describe('web: large messages to many fresh tabs', function () {
  this.timeout(600_000);
  let example: LiveTarget;
  let srv: WebServer;
  const tabs: Tab[] = [];

  before(async () => {
    example = await LiveTarget.start({ tickMs: 100, seconds: 2 });
    await example.stopFuzzing();
  });

  after(async () => {
    for (const t of tabs) t.close();
    await srv?.close();
    await example?.close();
  });

  it('streams index and snapshot through a bounded queue while deltas keep coming', async () => {
    const reg = example.registry;
    const real = reg.target(example.id)!.index!;
    const index: SourceIndex = {
      ...real,
      pcFile: tile(real.pcFile, BIG),
      pcLine: tile(real.pcLine, BIG),
      pcColumn: tile(real.pcColumn, BIG),
      pcFunction: tile(real.pcFunction, BIG),
    };
    const id = 'big-target';
    reg.add({ id, exe: example.exe, coverageFile: example.coverageFile + '.big', pcsLen: BIG, buildId: real.buildId });
    reg.setIndex(id, index);
    const third: number[] = [];
    for (let pc = 0; pc < BIG; pc += 3) third.push(pc);
    reg.applyTick(id, { newPcs: Uint32Array.from(third), nRuns: 1, uniqueRuns: 1, lowestStack: null, time: Date.now() });

    srv = await startWebServer({ hub: reg, host: '127.0.0.1', port: 0, log: quietLog, limits: { clientMessageRate: 10_000, httpRate: 10_000 } });
    const N = 40;
    for (let i = 0; i < N; i++) tabs.push(new Tab(srv.url, id, { words: i % 2 === 0, sparse: i % 4 !== 3 }));
    await Promise.all(tabs.map((t) => t.opened));
    // Half of them also follow the target list (a topic a streaming socket must leave too).
    for (const [i, t] of tabs.entries()) if (i % 2) t.send({ t: 'sub-targets' });
    for (const t of tabs) t.subscribe();

    // Coverage keeps arriving while they are being served.
    let next = 1, maxWaiting = 0;
    const grow = setInterval(() => {
      const fresh = [next, next + 3, next + 6].filter((pc) => pc < BIG);
      next += 9;
      reg.applyTick(id, { newPcs: Uint32Array.from(fresh), nRuns: next, uniqueRuns: next, lowestStack: null, time: Date.now() });
      maxWaiting = Math.max(maxWaiting, srv.stats.bigSends!.waiting);
    }, 20);
    try {
      await until(() => tabs.every((t) => t.snapshots >= 1 && t.indexes >= 1), 'every tab to get the index and a snapshot', 300_000, 50);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      clearInterval(grow);
    }
    const t = reg.target(id)!;
    await until(() => tabs.every((tab) => tab.seq === t.seq), 'every tab to reach the final seq', 120_000, 50);

    for (const [i, tab] of tabs.entries()) {
      expect(sameBits(tab.seen, t.seen, BIG), `tab ${i} has exactly the target's bits`).to.equal(true);
      expect(tab.indexes, `tab ${i} got the index once`).to.equal(1);
      expect(tab.errors, `tab ${i} errors`).to.deep.equal([]);
      expect(tab.closed, `tab ${i} still connected`).to.equal(null);
    }
    const b = srv.stats.bigSends!;
    expect(b.sent, 'every tab was served through the queue of big sends').to.be.at.least(N);
    expect(maxWaiting, 'tabs queued for a slot').to.be.greaterThan(0);
    expect(b.peakActive, 'sockets streaming at once').to.be.at.most(4);
    expect(b.waiting).to.equal(0);
    expect(b.active).to.equal(0);
    // The big messages amount to N x (index + snapshot): several hundred MB; the server never held
    // more than a few fragments of them in its send buffers at once.
    expect(srv.stats.bytesSent, 'bytes sent').to.be.greaterThan(N * 4 * 1024 * 1024);
    expect(b.peakBuffered, 'most bytes of big messages buffered at once').to.be.at.most(512 * 1024);
  });
});
