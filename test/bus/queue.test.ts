import { expect } from 'chai';
import { Worker } from 'node:worker_threads';
import { SharedQueue, QueueClosedError } from '../../src/bus/queue.js';
import { createBus } from '../../src/bus/index.js';

const workerUrl = new URL('./hammer-worker.js', import.meta.url);

function run(data: object): { worker: Worker; result: Promise<any> } {
  const worker = new Worker(workerUrl, { workerData: data });
  const result = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => { if (code !== 0) reject(new Error(`worker exited ${code}`)); });
  });
  return { worker, result };
}

describe('SharedQueue (bus)', function () {
  this.timeout(120_000);

  it('loses and duplicates nothing with 3 producers and 3 consumers on a small ring', async () => {
    const q = SharedQueue.create(2048);
    const producers = 3, count = 4000;
    const prods = Array.from({ length: producers }, (_, p) => run({ role: 'produce', buffer: q.buffer, producer: p, count }));
    const cons = [0, 1].map((k) => run({ role: 'consume', buffer: q.buffer, slowMs: k }));
    // The main thread consumes too, asynchronously.
    const mainGot: number[] = [];
    let producing = true;
    const mainLoop = (async () => {
      for (;;) {
        const msgs = await q.takeAsync(100);
        for (const m of msgs as { p: number; i: number }[]) mainGot.push(m.p * 1_000_000 + m.i);
        if (!producing && msgs.length === 0 && q.closed) break;
      }
    })();
    await Promise.all(prods.map((p) => p.result));
    producing = false;
    q.close();
    const results = await Promise.all(cons.map((c) => c.result));
    await mainLoop;
    const all = [...mainGot, ...results.flatMap((r: { got: number[] }) => r.got)];
    expect(all.length).to.equal(producers * count);
    expect(new Set(all).size).to.equal(producers * count);
    for (let p = 0; p < producers; p++) for (const i of [0, count - 1]) expect(all).to.include(p * 1_000_000 + i);
    const s = q.stats();
    expect(s.posted).to.equal(producers * count);
    expect(s.used).to.equal(0);
    // Every consumer's own view of one producer is in order (records are FIFO).
    for (const r of results as { got: number[] }[]) {
      for (let p = 0; p < producers; p++) {
        const mine = r.got.filter((x) => Math.floor(x / 1_000_000) === p);
        for (let i = 1; i < mine.length; i++) expect(mine[i]!).to.be.greaterThan(mine[i - 1]!);
      }
    }
  });

  it('keeps memory bounded when nobody consumes: posts are refused, not queued', () => {
    const q = SharedQueue.create(1024);
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) if (q.tryPost({ i, pad: 'abcdefgh' })) accepted++;
    const s = q.stats();
    expect(accepted).to.be.greaterThan(10).and.lessThan(1024);
    expect(s.used).to.be.at.most(1024);
    expect(s.rejected).to.equal(10_000 - accepted);
    expect(q.post({ late: true }, 20)).to.equal(false); // waits 20 ms for room, gets none
    const got = q.tryTake() as { i: number }[];
    expect(got.map((m) => m.i)).to.deep.equal([...Array(accepted).keys()]);
    expect(q.tryPost({ again: true })).to.equal(true);
  });

  it('a blocked producer resumes when a consumer frees space', async () => {
    const q = SharedQueue.create(256);
    const prod = run({ role: 'produce', buffer: q.buffer, producer: 7, count: 200 });
    const got: number[] = [];
    while (got.length < 200) {
      for (const m of (await q.takeAsync(200)) as { i: number }[]) got.push(m.i);
    }
    await prod.result;
    expect(got).to.deep.equal([...Array(200).keys()]);
  });

  it('wakes a waiting taker on notify and on close; times out otherwise', async () => {
    const bus = createBus(4096);
    expect(await bus.takeAsync(50)).to.deep.equal([]);
    const waiting = bus.takeAsync(60_000);
    bus.notify();
    expect(await waiting).to.deep.equal([]);
    const waiting2 = bus.takeAsync(60_000);
    bus.tryPost({ type: 'shutdown' });
    expect(await waiting2).to.deep.equal([{ type: 'shutdown' }]);
    bus.close();
    expect(bus.take(60_000)).to.deep.equal([]);
    expect(() => bus.post({ type: 'shutdown' })).to.throw(QueueClosedError);
  });

  it('rejects a message larger than the ring with a RangeError', () => {
    const q = SharedQueue.create(128);
    expect(() => q.post({ big: 'y'.repeat(500) })).to.throw(RangeError);
  });
});
