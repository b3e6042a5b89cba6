import { expect } from 'chai';
import { TargetRegistry } from '../../src/daemon/registry.js';
import { seenBytes, countSeen as popcount } from '../../src/contracts/seen.js';
import type { CoverageDelta, TargetInfo } from '../../src/contracts/hub.js';
import { NONE, type SourceIndex } from '../../src/workers/types.js';

function index(pcs: number): SourceIndex {
  return {
    buildId: 'abcd', directories: ['/src', 'rel'], files: ['a.c', 'b.c', '/abs/c.c'], fileDirs: new Uint32Array([0, 1, 0]),
    functions: { names: ['f'], file: new Uint32Array([0]), line: new Uint32Array([1]) },
    pcFile: new Uint32Array(pcs).fill(0), pcLine: new Uint32Array(pcs).fill(1), pcColumn: new Uint32Array(pcs), pcFunction: new Uint32Array(pcs).fill(NONE),
  };
}

describe('TargetRegistry', () => {
  it('walks a target through loading, ready, ticks and removal with events', () => {
    let now = 1_700_000_000_000;
    const r = new TargetRegistry({ now: () => now, historyIntervalMs: 5000 });
    const events: string[] = [];
    const deltas: CoverageDelta[] = [];
    r.on('target', (t: TargetInfo) => events.push(`target:${t.state}`));
    r.on('removed', (id) => events.push(`removed:${id}`));
    r.on('delta', (d) => deltas.push(d));
    r.add({ id: '0123456789abcdef', exe: '/bin/fuzz', coverageFile: '/tmp/v/0123456789abcdef', pcsLen: 100 });
    expect(r.add({ id: '0123456789abcdef', exe: '/other', coverageFile: '/x', pcsLen: 5 }).exe).to.equal('/bin/fuzz');
    expect(r.target('0123456789abcdef')!.seen.length).to.equal(seenBytes(100)).and.equal(16);
    r.setIndex('0123456789abcdef', index(100));
    expect(r.targets()[0]!.state).to.equal('ready');
    expect(r.targets()[0]!.name).to.equal('fuzz');

    const d1 = r.applyTick('0123456789abcdef', { newPcs: new Uint32Array([3, 64, 99, 3, 500]), nRuns: 10, uniqueRuns: 2, lowestStack: null, time: now })!;
    expect(d1.seq).to.equal(1);
    expect([...d1.newPcs]).to.deep.equal([3, 64, 99]);
    expect(d1.stats.covered).to.equal(3);
    expect(r.applyTick('0123456789abcdef', { newPcs: new Uint32Array([3]), nRuns: 10, uniqueRuns: 2, lowestStack: null, time: now + 100 })).to.equal(undefined);
    now += 2000;
    const d2 = r.applyTick('0123456789abcdef', { newPcs: new Uint32Array([]), nRuns: 2010, uniqueRuns: 2, lowestStack: null, time: now })!;
    expect(d2.seq).to.equal(2);
    expect(d2.stats.runsPerSec).to.equal(1000);
    const det = r.target('0123456789abcdef')!;
    expect(popcount(det.seen)).to.equal(3);
    expect(det.firstSeen[64]).to.equal(Math.floor((now - 2000) / 1000));
    expect(det.firstSeen[4]).to.equal(0);
    expect(det.seq).to.equal(2);
    expect(deltas.map((d) => d.seq)).to.deep.equal([1, 2]);
    expect(r.history('0123456789abcdef').length).to.equal(1);

    r.fail('0123456789abcdef', 'the executable was deleted');
    expect(r.targets()[0]!.error).to.equal('the executable was deleted');
    expect(r.remove('0123456789abcdef')).to.equal(true);
    expect(r.remove('0123456789abcdef')).to.equal(false);
    expect(events).to.deep.equal(['target:loading', 'target:ready', 'target:failed', 'removed:0123456789abcdef']);
  });

  it('maps source files only to paths the debug info names', () => {
    const r = new TargetRegistry();
    r.add({ id: 'a', exe: '/e', coverageFile: '/c', pcsLen: 1 });
    expect(r.sourcePath('a', 0)).to.equal(undefined);
    r.setIndex('a', index(1));
    expect(r.sourcePath('a', 0)).to.equal('/src/a.c');
    expect(r.sourcePath('a', 1)).to.equal(undefined); // relative directory
    expect(r.sourcePath('a', 2)).to.equal('/abs/c.c');
    expect(r.sourcePath('a', 3)).to.equal(undefined);
    expect(r.sourcePath('a', -1)).to.equal(undefined);
    expect(r.sourcePath('a', 0.5)).to.equal(undefined);
    expect(r.filesNamed('/src/a.c')).to.deep.equal([{ id: 'a', file: 0 }]);
  });

  it('keeps history bounded, dense at the recent end', () => {
    let now = 0;
    const r = new TargetRegistry({ now: () => now, historyIntervalMs: 1000, maxHistory: 64 });
    r.add({ id: 'h', exe: '/e', coverageFile: '/c', pcsLen: 10 });
    for (let i = 1; i <= 1000; i++) {
      now = i * 1000;
      r.applyTick('h', { newPcs: new Uint32Array(), nRuns: i, uniqueRuns: 0, lowestStack: null, time: now });
    }
    const h = r.history('h');
    expect(h.length).to.be.at.most(64);
    expect(h[h.length - 1]!.nRuns).to.equal(1000);
    expect(h[0]!.nRuns).to.equal(1);
    for (let i = 1; i < h.length; i++) expect(h[i]!.t).to.be.greaterThan(h[i - 1]!.t);
    expect(h[h.length - 1]!.t - h[h.length - 2]!.t).to.equal(1000);
    expect(r.history('h', 990_000).length).to.equal(11);
  });

  it('ignores ticks for retired targets', () => {
    const r = new TargetRegistry();
    r.add({ id: 'r', exe: '/e', coverageFile: '/c', pcsLen: 10 });
    r.retire('r', 'rebuilt');
    expect(r.applyTick('r', { newPcs: new Uint32Array([1]), nRuns: 1, uniqueRuns: 1, lowestStack: null, time: 1 })).to.equal(undefined);
    expect(r.targets()[0]!.state).to.equal('retired');
  });
});
