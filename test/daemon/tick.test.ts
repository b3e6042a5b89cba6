import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { SeenDiff } from '../../src/daemon/tick.js';
import { CoverageTicker, type ThreadEvent } from '../../src/daemon/coverage-thread.js';
import { writeCoverageFile } from '../../src/coverage/writer.js';
import { layoutInfo } from '../../src/coverage/layout.js';

function bitsOf(pcsLen: number, set: number[]): Uint8Array {
  const b = new Uint8Array(Math.ceil(pcsLen / 64) * 8);
  for (const i of set) b[i >> 3] |= 1 << (i & 7);
  return b;
}

describe('SeenDiff', () => {
  it('reports exactly the bits that turned on, across word boundaries, once', () => {
    const n = 1000;
    const d = new SeenDiff(n);
    const rnd = (k: number) => Array.from({ length: k }, (_, i) => (i * 7919 + k * 31) % n);
    const a = [...new Set([0, 31, 32, 63, 64, 999, ...rnd(50)])].sort((x, y) => x - y);
    expect([...d.apply(bitsOf(n, a)).newPcs]).to.deep.equal(a);
    expect(d.apply(bitsOf(n, a)).newPcs.length).to.equal(0);
    const b = [...new Set([...a, 1, 500, 998])].sort((x, y) => x - y);
    expect([...d.apply(bitsOf(n, b)).newPcs]).to.deep.equal([1, 500, 998]);
    const r = d.apply(bitsOf(n, [5]));
    expect(r.cleared).to.equal(b.length);
    expect([...r.newPcs]).to.deep.equal([5]);
  });
});

describe('CoverageTicker (coverage thread body) on real files', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(os.tmpdir() + '/covd-'); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reports new PCs and stats, nothing for idle files, and errors per target', () => {
    const pcs = Array.from({ length: 300 }, (_, i) => 0x1000n + BigInt(i) * 4n);
    const f1 = writeCoverageFile(join(dir, '1111111111111111'), { pcs, nRuns: 5n, uniqueRuns: 1n, seen: [3, 200] });
    const f2 = join(dir, '2222222222222222');
    fs.writeFileSync(f2, Buffer.alloc(100, 7)); // garbage: no layout fits
    const events: ThreadEvent[] = [];
    const t = new CoverageTicker((e) => events.push(e));
    t.handle({ type: 'coverage', id: '1111111111111111', exe: '/x', file: f1 });
    t.handle({ type: 'coverage', id: '2222222222222222', exe: '/x', file: f2 });
    t.tick();
    const errs = events.filter((e) => e.kind === 'error');
    expect(errs).to.have.length(1);
    expect(errs[0]).to.include({ id: '2222222222222222' });
    const ticks = events.filter((e) => e.kind === 'tick');
    expect(ticks).to.have.length(1);
    const u = (ticks[0] as Extract<ThreadEvent, { kind: 'tick' }>).updates;
    expect(u).to.have.length(1);
    expect([...u[0]!.newPcs]).to.deep.equal([3, 200]);
    expect(u[0]!.nRuns).to.equal(5);

    events.length = 0;
    t.tick();
    expect(events).to.have.length(0); // idle: nothing to say

    // The fuzzer runs on: the writer changes runs and bits in place.
    const info = layoutInfo('seed', pcs.length);
    const fd = fs.openSync(f1, 'r+');
    const h = Buffer.alloc(16);
    h.writeBigUInt64LE(9n, 0);
    h.writeBigUInt64LE(2n, 8);
    fs.writeSync(fd, h, 0, 16, 0);
    fs.writeSync(fd, Buffer.from([1 << (299 & 7)]), 0, 1, info.bitsOffset + (299 >> 3));
    fs.closeSync(fd);
    t.tick();
    const u2 = (events[0] as Extract<ThreadEvent, { kind: 'tick' }>).updates[0]!;
    expect([...u2.newPcs]).to.deep.equal([299]);
    expect(u2.uniqueRuns).to.equal(2);

    // Truncated under us: that target errors (on its next full check), the ticker keeps going.
    events.length = 0;
    fs.truncateSync(f1, 50);
    for (let i = 0; i < 25 && !events.some((e) => e.kind === 'error'); i++) t.tick();
    expect(events.find((e) => e.kind === 'error')).to.include({ id: '1111111111111111', code: 'SHORT' });
    expect(t.tracked.size).to.equal(0);
    t.close();
  });
});
