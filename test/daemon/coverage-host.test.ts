/**
 * The coverage thread's host: a real worker thread on a real bus. It follows a coverage file,
 * is restarted after it dies (and given its targets again), and stops within its grace time.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { createBus } from '../../src/bus/index.js';
import { writeCoverageFile } from '../../src/coverage/writer.js';
import { CoverageThreadHost } from '../../src/daemon/coverage-host.js';
import type { ThreadEvent } from '../../src/daemon/coverage-thread.js';
import { createLogger } from '../../src/util/log.js';
import { pollUntil } from './helpers.js';

describe('coverage thread host', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-host-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('restarts a thread that died and hands it its targets again', async () => {
    const file = writeCoverageFile(join(dir, 'aaaaaaaaaaaaaaaa'), { pcs: [0x10n, 0x20n, 0x30n], nRuns: 5n, seen: [1] });
    const events: ThreadEvent[] = [];
    let restarts = 0;
    const bus = createBus(1 << 16);
    const follow = () => host.post({ type: 'coverage', id: 'aaaaaaaaaaaaaaaa', exe: '/bin/true', file });
    const host: CoverageThreadHost = new CoverageThreadHost({
      bus, log: createLogger({ level: 'silent' }), tickMs: 50,
      onEvent: (e) => events.push(e),
      onRestart: () => { restarts++; follow(); },
    });
    try {
      follow();
      await pollUntil('a first tick', () => events.some((e) => e.kind === 'tick' && e.updates.some((u) => u.nRuns === 5)), 10_000, 20);
      expect(host.stats.ticks).to.be.greaterThan(0);
      expect(host.stats.tracked).to.equal(1);
      // Kill the thread from outside, as a crash would.
      await (host as unknown as { thread: Worker }).thread.terminate();
      await pollUntil('the restart', () => restarts === 1, 10_000, 20);
      expect(host.stats.restarts).to.equal(1);
      // The new thread reads the file afresh: the same stats come again.
      const before = events.length;
      await pollUntil('a tick from the new thread', () => events.slice(before).some((e) => e.kind === 'tick' && e.updates.some((u) => u.nRuns === 5)), 10_000, 20);
    } finally {
      const t0 = Date.now();
      await host.stop();
      expect(Date.now() - t0).to.be.below(3000);
    }
  });
});
