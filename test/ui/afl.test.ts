/**
 * The browser client with an AFL++ target: a real `covd serve`, examples/tinyimg built with
 * `covd cc --engine=afl`, one afl-fuzz instance for a few seconds, Debian's chromium. The
 * dashboard row and the target page show afl-fuzz's figures as the API has them.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { buildAflExampleTarget, copySeeds, runAfl, tinyimgDir, type AflRun } from '../../src/afl/targets.js';
import type { TargetInfo } from '../../src/contracts/hub.js';
import { ints, launchChromium, screenshot, startDaemon, until, type Daemon } from './browser.js';

describe('browser UI with an AFL++ target', function () {
  this.timeout(300_000);
  let tmp: string;
  let daemon: Daemon | undefined;
  let browser: Browser | undefined;
  let run: AflRun | undefined;

  after(async () => {
    await run?.stop('SIGKILL');
    await browser?.close();
    await daemon?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('shows the campaign on the dashboard and its instances on the target page', async () => {
    const exe = await buildAflExampleTarget();
    tmp = mkdtempSync(join(tmpdir(), 'covd-ui-afl-'));
    const socket = join(tmp, 'covd.sock');
    daemon = await startDaemon({ stateDir: join(tmp, 'state'), socket });
    run = runAfl(exe, { input: copySeeds(join(tinyimgDir(), 'corpus'), join(tmp, 'in')), output: join(tmp, 'out'), seconds: 4, covdDir: join(tmp, 'cov'), socket });
    const res = await run.done;
    expect(res.code, res.stderr.slice(-1000)).to.equal(0);
    const api = async () => ((await (await fetch(new URL('/api/targets', daemon!.url))).json()) as { targets: TargetInfo[] }).targets;
    const t = await until('the final AFL++ figures', async () => (await api()).find((x) => x.afl?.instances.length === 1 && !x.afl.instances[0]!.alive && x.state === 'ready'));
    const a = t.afl!;

    browser = await launchChromium();
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    await page.goto(daemon.url);
    const line = page.locator(`tr[data-id="${t.id}"] .afl-line`);
    await until('the dashboard AFL++ line', async () => /instance/.test(await line.innerText()));
    const text = await line.innerText();
    expect(text).to.match(/^AFL\+\+ · 1 instance, 0 running · 0 exec\/s · corpus /);
    expect(ints(text.split('corpus')[1]!)[0]).to.equal(a.corpus_count);
    await screenshot(page, 'afl-dashboard');

    await page.goto(`${daemon.url}#/target/${t.id}`);
    const panel = page.locator('section.afl');
    await until('the AFL++ panel', async () => panel.isVisible());
    expect(ints(await panel.locator('.card[data-afl=execs] .card-value').innerText())).to.deep.equal([a.execs_done]);
    expect(ints(await panel.locator('.card[data-afl=corpus] .card-value').innerText())).to.deep.equal([a.corpus_count]);
    const row = panel.locator('tr[data-instance="default"]');
    const cells = await row.locator('td').allInnerTexts();
    expect(cells[0]).to.equal('default');
    expect(cells[1]).to.equal('stopped');
    expect(ints(cells[3]!)).to.deep.equal([a.instances[0]!.execs_done]);
    expect(await panel.locator('.afl-head .mono').innerText()).to.equal(join(tmp, 'out'));
    await screenshot(page, 'afl-target');
  });
});
