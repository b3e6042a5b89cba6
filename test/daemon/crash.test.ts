/**
 * Crash safety: SIGKILL the daemon at random moments while a fuzzer runs, then open its lmdb
 * store directly and check it is whole, consistent, and missing nothing older than a few seconds.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildExampleTarget, runFuzzer, findCoverageFile } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { Store } from '../../src/daemon/store.js';
import { startServe, pollUntil, countBits, type ServeProcess } from './helpers.js';

/** How far behind the daemon's own report the store may be after a crash. */
const LOSS_WINDOW_MS = 2000;
const ROUNDS = 4;

describe('daemon crash safety', function () {
  this.timeout(600_000);
  let dir: string;
  let d: ServeProcess | undefined;

  beforeEach(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-')); });
  afterEach(async () => {
    if (d) { d.child.kill('SIGKILL'); await d.exited; d = undefined; }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`survives ${ROUNDS} SIGKILLs at random moments while a fuzzer runs`, async () => {
    const exe = await buildExampleTarget();
    const covDir = join(dir, 'cov');
    const stateDir = join(dir, 'state');
    const socket = join(dir, 'covd.sock');
    // A seedless corpus so coverage keeps growing for a while.
    const fuzzer = runFuzzer(exe, { covdDir: covDir, socket: join(dir, 'nobody.sock'), seconds: 120, corpus: null });
    try {
      const file = await findCoverageFile(covDir);
      const id = file.split('/').pop()!;
      let lastRestoredCovered = 0;
      for (let round = 0; round < ROUNDS; round++) {
        d = await startServe({ socket, stateDir, watch: [covDir] });
        const seen: { t: number; covered: number; nRuns: number }[] = [];
        await pollUntil('the target to be ready', async () => (await d!.list()).find((t) => t.id === id && t.state === 'ready'));
        const killAt = Date.now() + LOSS_WINDOW_MS + 500 + Math.random() * 2500;
        while (Date.now() < killAt) {
          const t = (await d.list()).find((x) => x.id === id)!;
          seen.push({ t: Date.now(), covered: t.stats.covered, nRuns: t.stats.nRuns });
          await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
        }
        d.child.kill('SIGKILL');
        const ex = await d.exited;
        d = undefined;
        expect(ex.signal).to.equal('SIGKILL');
        const killedAt = Date.now();

        const store = Store.open(stateDir);
        try {
          const all = store.loadAll();
          expect(all.map((r) => r.info.id)).to.deep.equal([id]);
          const r = all[0]!;
          expect(r.index, 'symbolization persisted').to.not.equal(null);
          expect(r.index!.pcFile.length).to.equal(r.info.stats.pcsLen);
          // Consistent: a PC is seen exactly when it has a first-seen time; and only PCs the file has seen.
          const file1 = readCoverageFile(file).seen;
          for (let pc = 0; pc < r.info.stats.pcsLen; pc++) {
            const bit = (r.seen[pc >> 3]! >> (pc & 7)) & 1;
            expect(bit === 1, `pc ${pc}: seen bit vs first-seen`).to.equal(r.firstSeen[pc]! > 0);
            if (bit) expect((file1[pc >> 3]! >> (pc & 7)) & 1, `pc ${pc} seen in the store but not in the file`).to.equal(1);
          }
          const covered = countBits(r.seen);
          // Nothing older than the loss window is lost.
          const old = seen.filter((s) => s.t <= killedAt - LOSS_WINDOW_MS - 500).pop() ?? seen[0]!;
          expect(covered, `round ${round}: stored coverage behind what the daemon reported ${killedAt - old.t} ms before the kill`).to.be.at.least(old.covered);
          expect(r.info.stats.nRuns).to.be.at.least(old.nRuns);
          expect(covered).to.be.at.least(lastRestoredCovered);
          lastRestoredCovered = covered;
          // History: ordered, present, recent (sampled every 5 s).
          expect(r.history.length).to.be.greaterThan(0);
          for (let i = 1; i < r.history.length; i++) expect(r.history[i]!.t).to.be.greaterThan(r.history[i - 1]!.t);
          expect(r.history[r.history.length - 1]!.t).to.be.at.least(old.t - 6000);
        } finally {
          await store.close();
        }
      }
    } finally {
      fuzzer.child.kill('SIGKILL');
      await fuzzer.done;
    }
  });
});
