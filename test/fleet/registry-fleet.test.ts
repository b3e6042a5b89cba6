/**
 * The registry's fleet section (src/daemon/registry.ts): remote targets, the union of other
 * nodes' coverage, the nodes' share in the stats, adoption by a local fuzzer, and a stored
 * record's union counters going back to this daemon's own at restore.
 */
import { expect } from 'chai';
import { TargetRegistry, type FleetShare } from '../../src/daemon/registry.js';
import type { CoverageDelta, TargetInfo } from '../../src/contracts/hub.js';
import { isSeen } from '../../src/contracts/seen.js';

const id = '00000000000000aa';
const share = (over: Partial<FleetShare['others']> = {}): FleetShare => ({
  nodes: [
    { name: 'me', self: true, covered: 2, first: 1, nRuns: 0, uniqueRuns: 0, runsPerSec: 0, online: true, lastSeenAt: 0 },
    { name: 'other', self: false, covered: 3, first: 2, nRuns: 500, uniqueRuns: 5, runsPerSec: 70, online: true, lastSeenAt: 1 },
  ],
  others: { nRuns: 500, uniqueRuns: 5, runsPerSec: 70, lastNewAt: 2000, updatedAt: 2000, ...over },
  activity: 'running', ownCovered: 2,
});

describe('registry: fleet targets', () => {
  it('a remote target is never served from disk, never an executable\'s, and shows the union', () => {
    const r = new TargetRegistry({ now: () => 1000 });
    const targets: TargetInfo[] = [];
    const deltas: CoverageDelta[] = [];
    r.on('target', (t) => targets.push(t));
    r.on('delta', (d) => deltas.push(d));
    r.addRemote({ id, name: 'fuzz_x', exe: '/farm/bin/fuzz_x', buildId: 'ab', pcsLen: 100, pcsHash: id });
    expect(r.isRemote(id)).to.equal(true);
    r.setIndex(id, { buildId: 'ab', directories: ['/etc'], files: ['passwd'], fileDirs: Uint32Array.from([0]), functions: { names: [], file: new Uint32Array(0), line: new Uint32Array(0) }, pcFile: new Uint32Array(100), pcLine: new Uint32Array(100), pcColumn: new Uint32Array(100), pcFunction: new Uint32Array(100).fill(0xffffffff) });
    expect(r.sourcePath(id, 0)).to.equal(undefined);
    expect(r.idsForExe('/farm/bin/fuzz_x')).to.deep.equal([]);
    expect(r.info(id)!.state).to.equal('ready');

    // Other nodes' PCs: new ones make a delta; an earlier second only lowers firstSeen.
    const d = r.applyFleet(id, [3, 7], [50, 60], 2000)!;
    expect(Array.from(d.newPcs)).to.deep.equal([3, 7]);
    expect(r.applyFleet(id, [3], [40], 2001)).to.equal(undefined);
    expect(r.applyFleet(id, [3], [45], 2002)).to.equal(undefined);
    const t = r.target(id)!;
    expect(t.firstSeen[3]).to.equal(40);
    expect(isSeen(t.seen, 7)).to.equal(true);
    expect(t.stats.covered).to.equal(2);

    r.setFleet(id, share(), 'target');
    const last = targets[targets.length - 1]!;
    expect(last.stats).to.deep.include({ nRuns: 500, uniqueRuns: 5, runsPerSec: 70, covered: 2 });
    expect(last.fleet).to.deep.equal({ nodes: 2, online: 2, remote: true, own: { covered: 2, nRuns: 0, uniqueRuns: 0 } });
    expect(last.activity).to.equal('running');
    expect(r.target(id)!.nodes!.map((n) => n.name)).to.deep.equal(['me', 'other']);
    // Counters alone: a delta without PCs carrying the union stats.
    const before = deltas.length;
    r.setFleet(id, share({ nRuns: 900 }), 'delta');
    expect(deltas.length).to.equal(before + 1);
    expect(deltas[deltas.length - 1]!.newPcs.length).to.equal(0);
    expect(deltas[deltas.length - 1]!.stats.nRuns).to.equal(900);
  });

  it('a local fuzzer adopts a remote target in place: coverage and seq kept, index dropped, own counters added to the union', () => {
    const r = new TargetRegistry({ now: () => 1000 });
    r.addRemote({ id, name: 'fuzz_x', exe: '/farm/bin/fuzz_x', buildId: 'ab', pcsLen: 100, pcsHash: id });
    r.applyFleet(id, [1, 2, 3], [10, 10, 10], 1500);
    r.setFleet(id, share(), 'target');
    const seq = r.target(id)!.seq;
    r.add({ id, exe: '/here/fuzz_x', coverageFile: '/run/covd/v/' + id, pcsLen: 100, pcsHash: id, buildId: 'ab' });
    const t = r.target(id)!;
    expect(r.isRemote(id)).to.equal(false);
    expect(t).to.deep.include({ exe: '/here/fuzz_x', state: 'loading', seq, index: null });
    expect(t.stats.covered).to.equal(3);
    expect(r.idsForExe('/here/fuzz_x')).to.deep.equal([id]);
    // Its own ticks: PCs others already had are no news; the stats add up both.
    const d = r.applyTick(id, { newPcs: Uint32Array.from([2, 9]), nRuns: 100, uniqueRuns: 1, lowestStack: null, time: 2000 })!;
    expect(Array.from(d.newPcs)).to.deep.equal([9]);
    expect(d.stats.nRuns).to.equal(600);
    expect(r.info(id)!.stats.nRuns).to.equal(100); // the raw record stays this daemon's own
    // Stored with the union counters, restored with its own.
    const stored = r.targets().find((x) => x.id === id)!;
    expect(stored.stats.nRuns).to.equal(600);
    const again = new TargetRegistry();
    const t2 = r.target(id)!;
    again.restore({ info: stored, index: null, seen: t2.seen, firstSeen: t2.firstSeen, seq: t2.seq, history: [] });
    expect(again.info(id)!.stats.nRuns).to.equal(100);
    expect(again.info(id)!.fleet).to.equal(undefined);
  });

  it('another PC table under the same id does not adopt: the remote entry is replaced', () => {
    const r = new TargetRegistry();
    r.addRemote({ id, name: 'x', exe: '/x', buildId: null, pcsLen: 100, pcsHash: id });
    r.applyFleet(id, [1], [10], 1);
    r.add({ id, exe: '/y', coverageFile: '/v/' + id, pcsLen: 64, pcsHash: 'ffffffffffffffff' });
    expect(r.isRemote(id)).to.equal(false);
    expect(r.target(id)!.stats).to.deep.include({ pcsLen: 64, covered: 0 });
  });
});
