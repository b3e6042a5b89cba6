/**
 * The browser client with an AFL++ target: a real `covd serve`, examples/tinyimg built with
 * `covd cc --engine=afl`, one afl-fuzz instance for a few seconds, Debian's chromium. The
 * dashboard row and the target page show afl-fuzz's figures as the API has them; the coverage
 * chart overlays plot_data series (a run of a little over a minute: afl-fuzz 4.04c starts adding
 * plot_data rows after its first minute), checked against the plot_data file itself; the page
 * fetches the series once to fill the overlay selector and polls them only while an overlay is
 * selected.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { buildAflExampleTarget, copySeeds, runAfl, type AflRun } from '../../src/afl/targets.js';
import type { TargetInfo } from '../../src/contracts/hub.js';
import type { AflPlot } from '../../src/contracts/inputs.js';
import { ints, launchChromium, screenshot, startDaemon, until, type Daemon } from './browser.js';
import { exampleDir } from '../../src/build/targets.js';

describe('browser UI with an AFL++ target', function () {
  this.timeout(300_000);
  let tmp: string;
  let daemon: Daemon | undefined;
  let browser: Browser | undefined;
  let run: AflRun | undefined;
  let longRun: AflRun | undefined;

  after(async () => {
    await run?.stop('SIGKILL');
    await longRun?.stop('SIGKILL');
    await browser?.close();
    await daemon?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('shows the campaign on the dashboard and its instances on the target page', async () => {
    const exe = await buildAflExampleTarget();
    tmp = mkdtempSync(join(tmpdir(), 'covd-ui-afl-'));
    const socket = join(tmp, 'covd.sock');
    daemon = await startDaemon({ stateDir: join(tmp, 'state'), socket });
    run = runAfl(exe, { input: copySeeds(join(exampleDir(), 'corpus'), join(tmp, 'in')), output: join(tmp, 'out'), seconds: 4, covdDir: join(tmp, 'cov'), socket });
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
  it('overlays plot_data series on the coverage chart, with the values of the plot_data file', async () => {
    const exe = await buildAflExampleTarget();
    const dir = mkdtempSync(join(tmpdir(), 'covd-ui-aflplot-'));
    try {
      const socket = join(dir, 'covd.sock');
      const d = await startDaemon({ stateDir: join(dir, 'state'), socket });
      try {
        const out = join(dir, 'out');
        const r = longRun = runAfl(exe, { input: copySeeds(join(exampleDir(), 'corpus'), join(dir, 'in')), output: out, seconds: 75, covdDir: join(dir, 'cov'), socket });
        const res = await r.done;
        expect(res.code, res.stderr.slice(-1000)).to.equal(0);
        // The file, read here independently of the daemon.
        const text = readFileSync(join(out, 'default', 'plot_data'), 'utf8');
        const header = text.split('\n')[0]!.replace(/^#\s*/, '').split(',').map((c) => c.trim());
        const rows = text.trim().split('\n').filter((l) => !l.startsWith('#')).map((l) => l.split(',').map((c) => Number(c.trim().replace(/%$/, ''))));
        expect(rows.length, 'plot_data rows').to.be.at.least(2);
        const startTime = Number(/^start_time\s*: (\d+)/m.exec(readFileSync(join(out, 'default', 'fuzzer_stats'), 'utf8'))![1]);
        const col = (name: string) => rows.map((row) => row[header.indexOf(name)]!);
        const times = col('relative_time').map((t) => startTime + t);

        const t = await until('the AFL++ target, finished', async () => ((await (await fetch(new URL('/api/targets', d.url))).json()) as { targets: TargetInfo[] }).targets
          .find((x) => x.afl?.instances.length === 1 && !x.afl.instances[0]!.alive && x.state === 'ready'));
        // The API carries the series as the file has them.
        const plot = (await (await fetch(new URL(`/api/targets/${t.id}/afl/plot`, d.url))).json()) as AflPlot;
        expect(plot.dir).to.equal(out);
        const inst = plot.instances[0]!;
        expect(inst.name).to.equal('default');
        expect(inst.rows).to.equal(rows.length);
        expect(inst.t).to.deep.equal(times);
        for (const c of ['corpus_count', 'saved_crashes', 'edges_found', 'map_size', 'execs_per_sec', 'total_execs']) expect(inst.series[c], c).to.deep.equal(col(c));

        browser ??= await launchChromium();
        const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
        const plotRequests: number[] = [];
        page.on('request', (q) => { if (new URL(q.url()).pathname.endsWith('/afl/plot')) plotRequests.push(Date.now()); });
        await page.goto(`${d.url}#/target/${t.id}`);
        const select = page.locator('select.chart-overlay');
        await until('the overlay selector', async () => select.isVisible());
        // One fetch filled the selector; with the overlay "none" the page does not poll (it would every 10 s).
        await new Promise((r) => setTimeout(r, 12_000));
        expect(plotRequests, 'plot requests with no overlay selected').to.have.length(1);
        /** What the chart's uPlot holds: the series' labels and scales, and the (x, y) points of series i. */
        const chart = async (i: number) => (await page.evaluate(`(() => {
          const u = document.querySelector('.chart-panel .chart').covdPlot;
          const xs = u.data[0], ys = u.data[${i}] || [];
          const pts = [];
          for (let k = 0; k < xs.length; k++) if (ys[k] !== undefined && ys[k] !== null) pts.push([xs[k], ys[k]]);
          return { labels: u.series.map((s) => s.label), scales: u.series.map((s) => s.scale), shown: u.series.map((s) => s.show), overlay: u.root.parentElement.dataset.overlay, pts };
        })()`)) as { labels: string[]; scales: string[]; shown: boolean[]; overlay: string; pts: [number, number][] };

        await select.selectOption('corpus_count');
        const selectedAt = Date.now();
        const c = await until('the corpus overlay', async () => { const x = await chart(4); return x.overlay === 'corpus_count' ? x : undefined; });
        // Selected: fetched at once, then every 10 s.
        await until('a fetch when the overlay was selected', () => plotRequests.length >= 2, 5_000, 100);
        expect(plotRequests[1]! - selectedAt, 'ms from selecting to the fetch').to.be.below(3_000);
        await until('the next poll', () => plotRequests.length >= 3, 15_000, 250);
        expect(c.labels).to.deep.equal(['Time', 'Covered PCs', 'Exec/s', 'Runs', 'AFL++ corpus']);
        expect(c.scales[4]).to.equal('afl');
        expect(c.shown[4]).to.equal(true);
        expect(c.pts).to.deep.equal(times.map((x, k) => [x, col('corpus_count')[k]]));
        // The coverage line keeps its own points beside the overlay's.
        const cov = await chart(1);
        expect(cov.pts.length).to.be.at.least(2);
        await screenshot(page, 'afl-chart-overlay');

        // exec/s shares the exec/s axis.
        await select.selectOption('execs_per_sec');
        const e = await until('the exec/s overlay', async () => { const x = await chart(4); return x.overlay === 'execs_per_sec' ? x : undefined; });
        expect(e.labels[4]).to.equal('AFL++ exec/s');
        expect(e.scales[4]).to.equal('rate');
        expect(e.pts).to.deep.equal(times.map((x, k) => [x, col('execs_per_sec')[k]]));

        // None: the chart is back to its own series.
        await select.selectOption('');
        const n = await until('no overlay', async () => { const x = await chart(4); return x.overlay === '' ? x : undefined; });
        expect(n.labels).to.deep.equal(['Time', 'Covered PCs', 'Exec/s', 'Runs']);
      } finally {
        await d.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
