/**
 * The fleet in the page: a daemon that fuzzes nothing shows a target fuzzed by another node, marked
 * on the dashboard, with the node breakdown (covered, found first, runs, state) on the target page.
 * A real nats-server, two real daemons, a real fuzzer, Debian's chromium.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { buildExampleTarget, runFuzzer, findCoverageFile } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { countSeen } from '../../src/contracts/seen.js';
import { startServe, pollUntil, type ServeProcess } from '../daemon/helpers.js';
import { startNats, type NatsServer } from '../fleet/nats-server.js';
import { launchChromium, screenshot, until } from './browser.js';

describe('ui: fleet targets', function () {
  this.timeout(240_000);
  let dir: string;
  let nats: NatsServer;
  let browser: Browser | undefined;
  const daemons: ServeProcess[] = [];

  before(async () => {
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-ui-fleet-'));
    nats = await startNats(join(dir, 'js'));
  });
  after(async () => {
    await browser?.close();
    for (const d of daemons) { d.child.kill('SIGKILL'); await d.exited; }
    await nats.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('marks the fleet target on the dashboard and shows which node found what on its page', async () => {
    const exe = await buildExampleTarget();
    const serve = async (n: string) => {
      const d = await startServe({ socket: join(dir, `${n}.sock`), stateDir: join(dir, `s-${n}`), watch: [join(dir, `cd-${n}`)], extra: ['--nats', nats.url, '--node-name', n] });
      daemons.push(d);
      return d;
    };
    const A = await serve('lab-a');
    const C = await serve('viewer');
    await runFuzzer(exe, { covdDir: join(dir, 'cd-lab-a'), socket: A.socket, runs: 20000, extraArgs: ['-seed=5'] }).done;
    const file = await findCoverageFile(join(dir, 'cd-lab-a'));
    const id = file.split('/').pop()!;
    const covered = countSeen(readCoverageFile(file).seen);
    await pollUntil('the viewer to show lab-a\'s coverage', async () => {
      const t = (await (await fetch(`${C.url}api/targets/${id}`)).json()) as { stats?: { covered: number }; indexed?: boolean };
      return t.indexed && t.stats?.covered === covered;
    }, 60_000);

    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(C.url);
    const line = page.locator(`tr[data-id="${id}"] .fleet-line`);
    await until('the dashboard\'s fleet line', async () => /fleet · fuzzed on 1 other node, 1 online/.test((await line.textContent()) ?? ''), 30_000);
    expect(await page.locator(`tr[data-id="${id}"]`).getAttribute('class')).to.include('fleet-target');
    await screenshot(page, 'fleet-dashboard');

    await page.locator(`tr[data-id="${id}"] a.target-name`).click();
    const rows = page.locator('.fleet-nodes tbody tr');
    await until('the node table', async () => (await rows.count()) === 1, 30_000);
    const cells = await rows.first().locator('td').allTextContents();
    expect(cells[0]).to.equal('lab-a');
    expect(cells[1]).to.equal('online');
    expect(cells[2]).to.match(new RegExp(`^${covered} \\(`));
    expect(cells[3]).to.equal(String(covered)); // it found every PC first: the only node
    expect(await page.locator('.fleet .panel-head').textContent()).to.match(/No fuzzer of this daemon runs this build/);
    await screenshot(page, 'fleet-target');
  });
});
