/**
 * The live protocol against a real fuzzer: many tabs on one target, a slow tab, a reconnecting tab.
 * The registry is the daemon's real TargetRegistry, fed from the coverage file libFuzzer's agent
 * writes (examples/tinyimg), with the source index from covd's DWARF reader.
 */
import { expect } from 'chai';
import { startWebServer } from '../../src/web/server.js';
import type { WebServer } from '../../src/web/types.js';
import { adopt, LiveTarget, quietLog, readCoverageFile, request, sameBits, symbolize, Tab, until } from './harness.js';

describe('web: live protocol with a real fuzzer', function () {
  this.timeout(300_000);
  let target: LiveTarget;
  let srv: WebServer;
  const tabs: Tab[] = [];

  before(async () => {
    target = await LiveTarget.start({ tickMs: 100 });
    srv = await startWebServer({
      hub: target.registry,
      host: '127.0.0.1',
      port: 0,
      log: quietLog,
      // A small bound so one tab can fall behind quickly; a high message rate for the flooding tab.
      limits: { resyncAfterBytes: 64 * 1024, resyncLowWater: 16 * 1024, clientMessageRate: 100_000, httpRate: 10_000 },
    });
  });

  after(async () => {
    for (const t of tabs) t.close();
    await srv?.close();
    await target?.close();
  });

  it('keeps 200 tabs, a slow one and a reconnecting one exactly in step with the coverage file', async () => {
    const N = 200;
    // Half the tabs take index-list deltas, half word-encoded ones; some want dense snapshots.
    for (let i = 0; i < N; i++) tabs.push(new Tab(srv.url, target.id, { words: i % 2 === 0, sparse: i % 3 === 0 }));
    await Promise.all(tabs.map((t) => t.opened));
    for (const t of tabs) t.subscribe();
    await until(() => tabs.every((t) => t.snapshots === 1 && t.indexes === 1), 'every tab to get its index and snapshot');
    expect(target.fuzzing, 'the fuzzer is still running').to.equal(true);

    // ---- a slow tab: stops reading and floods the server with requests that each queue an index and a snapshot
    const slow = new Tab(srv.url, target.id);
    await slow.opened;
    slow.subscribe();
    await until(() => slow.snapshots === 1, 'slow tab snapshot');
    const behindBefore = srv.stats.behind;
    slow.ws.pause();
    const flood = async () => {
      while (srv.stats.behind === behindBefore) {
        for (let i = 0; i < 50; i++) slow.subscribe();
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await Promise.race([flood(), until(() => false, 'never', 120_000).catch(() => {})]);
    expect(srv.stats.behind, 'the server noticed the slow tab falling behind').to.be.greaterThan(behindBefore);
    // While it is stuck, everyone else keeps getting every delta in order.
    const seqAtStuck = Math.min(...tabs.map((t) => t.seq));
    await until(() => tabs.every((t) => t.seq >= seqAtStuck + 5), 'the other tabs to advance 5 deltas while the slow tab is stuck');
    const resyncsBefore = srv.stats.resyncs;
    const slowSnapshots = slow.snapshots;
    slow.ws.resume();
    await until(() => srv.stats.resyncs > resyncsBefore && slow.snapshots > slowSnapshots, 'the slow tab to be resynchronised once it drains');

    // ---- a reconnecting tab: drops, misses some deltas, comes back with `since` and resumes without a snapshot
    const leaver = tabs[7]!;
    leaver.close();
    const missedFrom = target.registry.target(target.id)!.seq;
    await until(() => target.registry.target(target.id)!.seq >= missedFrom + 3, 'a few deltas while it is away');
    const back = new Tab(srv.url, target.id, { words: true, sparse: true });
    adopt(back, leaver);
    await back.opened;
    expect(leaver.epoch, 'snapshots name the server epoch').to.be.a('string');
    back.subscribe({ since: leaver.seq, epoch: leaver.epoch, have: target.registry.target(target.id)!.index!.buildId });
    tabs[7] = back;
    // The same resume naming another epoch (a restarted server that reused seq numbers): a snapshot, not a replay.
    const other = new Tab(srv.url, target.id, { words: true, sparse: true });
    adopt(other, leaver);
    await other.opened;
    other.subscribe({ since: leaver.seq, epoch: 'another-run', have: target.registry.target(target.id)!.index!.buildId });
    await until(() => other.snapshots === 1, 'a resume from another epoch to get a snapshot');
    expect(other.epoch).to.equal(leaver.epoch);
    other.close();

    await new Promise((r) => setTimeout(r, 1000));
    await target.stopFuzzing();
    const file = readCoverageFile(target.coverageFile);
    const finalSeq = target.registry.target(target.id)!.seq;
    const everyone = [...tabs, slow];
    await until(() => everyone.every((t) => t.seq === finalSeq), 'every tab to reach the final seq');

    expect(file.seen.some((b) => b !== 0), 'the fuzzer covered something').to.equal(true);
    for (const [i, t] of everyone.entries()) {
      expect(sameBits(t.seen, file.seen, file.pcsLen), `tab ${i} has exactly the file's bits`).to.equal(true);
      expect(t.errors, `tab ${i} errors`).to.deep.equal([]);
    }
    // Nobody but the slow tab needed a second snapshot; the reconnect replayed deltas instead.
    for (const [i, t] of tabs.entries()) if (t !== back) expect(t.snapshots, `tab ${i} snapshots`).to.equal(1);
    expect(tabs.filter((t) => t !== back).every((t) => t.gaps === 0)).to.equal(true);
    expect(back.snapshots, 'resumed without a snapshot').to.equal(0);
    expect(back.indexes, 'resumed without re-sending the index').to.equal(0);
    expect(back.deltas, 'resumed by replaying the missed deltas').to.be.greaterThanOrEqual(3);
    // The server's own account of it, as Prometheus sees it.
    const metrics = (await request(srv.port, '/metrics')).body.toString();
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
    expect(metric('covd_web_clients')).to.equal(everyone.length);
    expect(metric('covd_web_behind_total')).to.be.at.least(1);
    expect(metric('covd_web_resyncs_total')).to.be.at.least(1);
    // hello, index, snapshot and at least the 5 deltas waited for above, per tab.
    expect(metric('covd_web_messages_sent_total')).to.be.at.least(everyone.length * 8);
    expect(metric('covd_web_bytes_sent_total')).to.be.greaterThan(metric('covd_web_messages_sent_total'));
    // First-seen times agree with the registry's for every covered PC.
    const fs = target.registry.target(target.id)!.firstSeen;
    for (const t of [tabs[0]!, tabs[1]!, back, slow]) {
      for (let pc = 0; pc < file.pcsLen; pc++) if (fs[pc]) expect(t.firstSeen![pc], `firstSeen of pc ${pc}`).to.equal(fs[pc]);
    }
  });
});

describe('web: target lifecycle over the socket', function () {
  this.timeout(180_000);

  it('sends the index when symbolization finishes, and target events to the dashboard', async () => {
    const { TargetRegistry } = await import('../../src/daemon/registry.js');
    const { buildExampleTarget } = await import('../helpers/fuzz-targets.js');
    const exe = await buildExampleTarget();
    const registry = new TargetRegistry();
    const srv = await startWebServer({ hub: registry, host: '127.0.0.1', port: 0, log: quietLog });
    const dash = new Tab(srv.url, 'none');
    const tab = new Tab(srv.url, '00000000000000aa');
    const events: string[] = [];
    dash.onMessage = (m) => {
      if (m.t === 'targets') events.push(`targets:${m.targets.length}`);
      if (m.t === 'target') events.push(`target:${m.target.id}:${m.target.state}`);
      if (m.t === 'removed') events.push(`removed:${m.id}`);
    };
    try {
      await Promise.all([dash.opened, tab.opened]);
      dash.send({ t: 'sub-targets' });
      await until(() => events.length === 1, 'the target list');
      const pcs = BigUint64Array.from([0n, 1n, 2n]);
      registry.add({ id: '00000000000000aa', exe, coverageFile: '/nonexistent', pcsLen: 3 });
      tab.subscribe();
      await until(() => tab.snapshots === 1, 'a snapshot while loading');
      expect(tab.indexes).to.equal(0);
      registry.applyTick('00000000000000aa', { newPcs: Uint32Array.of(1), nRuns: 5, uniqueRuns: 1, lowestStack: null, time: Date.now() });
      await until(() => tab.seq === 1, 'a delta while loading');
      const index = await symbolize(exe, pcs);
      let got: unknown;
      tab.onMessage = (m) => { if (m.t === 'index') got = m.index; };
      registry.setIndex('00000000000000aa', index);
      await until(() => tab.indexes === 1, 'the index once ready');
      expect((got as { pcFile: Uint32Array }).pcFile).to.deep.equal(index.pcFile);
      expect([...tab.seen!.subarray(0, 1)]).to.deep.equal([0b10]);
      registry.fail('00000000000000aa', 'executable vanished');
      registry.remove('00000000000000aa');
      await until(() => events.includes('removed:00000000000000aa'), 'removal on the dashboard');
      expect(events).to.include.members(['targets:0', 'target:00000000000000aa:loading', 'target:00000000000000aa:ready', 'target:00000000000000aa:failed']);
      tab.send({ t: 'resync', id: '00000000000000aa' });
      await until(() => tab.errors.length > 0, 'an error for a removed target');
      expect(tab.errors).to.deep.equal(['not-subscribed']);
    } finally {
      dash.close();
      tab.close();
      await srv.close();
    }
  });
});
