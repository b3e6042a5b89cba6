import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { TargetRegistry } from '../../src/daemon/registry.js';
import { countSeen as popcount } from '../../src/contracts/seen.js';
import { Store, persistRegistry } from '../../src/daemon/store.js';
import { createLogger } from '../../src/util/log.js';
import { NONE, type SourceIndex } from '../../src/workers/types.js';

const log = createLogger({ level: 'silent' });

function index(pcs: number): SourceIndex {
  return {
    buildId: 'feedface', directories: ['/src'], files: ['a.c'], fileDirs: new Uint32Array([0]),
    functions: { names: ['f'], file: new Uint32Array([0]), line: new Uint32Array([1]) },
    pcFile: new Uint32Array(pcs), pcLine: new Uint32Array(pcs).map((_, i) => i + 1), pcColumn: new Uint32Array(pcs), pcFunction: new Uint32Array(pcs).fill(NONE),
  };
}

describe('Store (lmdb)', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(os.tmpdir() + '/covd-'); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('restores targets, indexes, coverage (snapshot + log) and history after reopening', async () => {
    let now = 1_700_000_000_000;
    const reg = new TargetRegistry({ now: () => now, historyIntervalMs: 1000 });
    const store = Store.open(dir);
    const p = persistRegistry(reg, store, log);
    reg.add({ id: 'aaaaaaaaaaaaaaaa', exe: '/bin/x', coverageFile: '/c', pcsLen: 1000, buildId: 'feedface' });
    await store.putIndex(Store.indexKey('aaaaaaaaaaaaaaaa', 'feedface'), index(1000));
    reg.setIndex('aaaaaaaaaaaaaaaa', index(1000));
    // Enough ticks to trigger at least one compaction, then a few more left in the log.
    for (let i = 0; i < 300; i++) {
      now += 1000;
      reg.applyTick('aaaaaaaaaaaaaaaa', { newPcs: new Uint32Array([i * 3 % 1000]), nRuns: i * 10, uniqueRuns: i, lowestStack: null, time: now });
    }
    await store.flush();
    const before = reg.target('aaaaaaaaaaaaaaaa')!;
    const hist = reg.history('aaaaaaaaaaaaaaaa');
    p.detach();
    await store.close();

    const again = Store.open(dir);
    const all = again.loadAll();
    expect(all).to.have.length(1);
    const r = all[0]!;
    expect(r.info.state).to.equal('ready');
    expect(r.info.stats.nRuns).to.equal(2990);
    expect(r.seq).to.equal(before.seq);
    expect(Buffer.from(r.seen).equals(Buffer.from(before.seen))).to.equal(true);
    expect(Buffer.from(r.firstSeen.buffer, r.firstSeen.byteOffset, r.firstSeen.byteLength).equals(Buffer.from(before.firstSeen.buffer))).to.equal(true);
    expect(popcount(r.seen)).to.equal(300);
    expect(r.index!.pcLine).to.be.instanceOf(Uint32Array);
    expect(r.index!.pcLine[999]).to.equal(1000);
    expect(r.history.map((h) => h.t)).to.deep.equal(hist.map((h) => h.t));
    const reg2 = new TargetRegistry();
    reg2.restore(r);
    expect(reg2.target('aaaaaaaaaaaaaaaa')!.stats.covered).to.equal(300);
    // A retirement time is the registry's and is stored with the target.
    const p2 = persistRegistry(reg2, again, log);
    reg2.retire('aaaaaaaaaaaaaaaa', 'rebuilt', 1_700_000_123_000);
    await again.flush();
    p2.detach();
    const [r2] = again.loadAll();
    expect(r2!.retiredAt).to.equal(1_700_000_123_000);
    const reg3 = new TargetRegistry();
    reg3.restore(r2!);
    expect(reg3.retiredAt('aaaaaaaaaaaaaaaa')).to.equal(1_700_000_123_000);
    await again.removeTarget('aaaaaaaaaaaaaaaa');
    expect(again.loadAll()).to.have.length(0);
    expect(again.getIndex(Store.indexKey('aaaaaaaaaaaaaaaa', 'feedface'))).to.equal(undefined);
    await again.close();
  });
});
