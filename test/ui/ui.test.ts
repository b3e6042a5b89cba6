/**
 * End-to-end tests of the browser client: a real `covd serve`, a real libFuzzer target
 * (examples/tinyimg built with the covd agent), Debian's chromium through playwright-core.
 * Screenshots go to test-artifacts/ui/ for a person to check.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildExampleTarget, runFuzzer, type FuzzerRun } from '../helpers/fuzz-targets.js';
import { ConsoleWatch, ints, launchChromium, screenshot, startDaemon, until, type Daemon } from './browser.js';
import { buildManyFilesTarget, MANY_FILES } from './many-files.js';

interface ApiTarget {
  id: string;
  name: string;
  state: string;
  stats: { covered: number; pcsLen: number; nRuns: number };
}
interface ApiDetail extends ApiTarget {
  files: { file: number; path: string; pcs: { covered: number; total: number } }[];
}

describe('browser UI (chromium, covd serve, real fuzzer)', function () {
  this.timeout(600_000);
  let exe: string;
  let tmp: string;
  let daemon: Daemon;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let targetId: string;
  const fuzzers: FuzzerRun[] = [];
  const pageErrors: string[] = [];
  /** Any console error (a CSP refusal included) fails the test it happened in. */
  const consoleErrors = new ConsoleWatch();

  const covdDir = () => join(tmp, 'covd');
  const start = (port = 0) =>
    startDaemon({ stateDir: join(tmp, 'state'), socket: join(tmp, 'covd.sock'), watch: [covdDir()], port });
  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(new URL(path, daemon.url));
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
  const apiTarget = async () => (await api<{ targets: ApiTarget[] }>('/api/targets')).targets.find((t) => t.id === targetId)!;
  const fuzz = (opts: Parameters<typeof runFuzzer>[1], executable = exe) => {
    const run = runFuzzer(executable, { socket: join(tmp, 'covd.sock'), ...opts });
    fuzzers.push(run);
    return run;
  };
  /** "covered of total" on the target view's coverage card. */
  const cardCoverage = async (p: Page) => ints(await p.locator('.card[data-stat=coverage] .card-sub').innerText());

  before(async function () {
    exe = await buildExampleTarget();
    tmp = mkdtempSync(join(tmpdir(), 'covd-ui-'));
    // A port outside Linux's ephemeral range (where port 0 picks from): there a restarted daemon
    // could not rebind while the old connections sit in TIME-WAIT, and the restart test needs to.
    daemon = await until('daemon started', () => start(20_000 + Math.floor(Math.random() * 10_000)).catch((e: Error) => {
      if (/cannot listen/.test(e.message)) return null;
      throw e;
    }), 120_000, 100);
    browser = await launchChromium();
    ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    ctx.on('page', (p) => consoleErrors.watch(p));
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async function () {
    for (const f of fuzzers) if (f.child.exitCode === null) f.child.kill('SIGKILL');
    await Promise.all(fuzzers.map((f) => f.done));
    await browser?.close();
    await daemon?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'passed') consoleErrors.check();
    else consoleErrors.reset();
    if (this.currentTest?.state === 'failed' && daemon) console.error(daemon.log.slice(-40).join('\n'));
  });

  it('shows the dashboard, and a new fuzzer appears on it live', async () => {
    await page.goto(daemon.url + '#/');
    await until('connection badge live', () => page.locator('.conn[data-state=open]').count());
    await until('empty dashboard message', async () => (await page.locator('.dashboard .empty').innerText()).includes('No targets'));
    // A short run without corpus: little coverage now, so there is room to grow later.
    const first = fuzz({ covdDir: covdDir(), runs: 200, corpus: null, extraArgs: ['-seed=1'] });
    await first.done;
    const row = page.locator('table.targets tbody tr');
    await until('target row on the dashboard (no reload)', async () => (await row.count()) === 1);
    targetId = (await row.first().getAttribute('data-id'))!;
    expect(targetId).to.match(/^[0-9a-f]{16}$/);
    await until('target ready', async () => (await apiTarget())?.state === 'ready', 120_000);
    const t = await apiTarget();
    await until('dashboard numbers = API', async () => {
      const [covered, total] = ints(await row.first().locator('.count').innerText());
      const a = await apiTarget();
      return covered === a.stats.covered && total === a.stats.pcsLen && covered > 0;
    });
    expect(await row.first().locator('.target-name').innerText()).to.equal(t.name);
    expect(await row.first().locator('.state').innerText()).to.match(/ready/i);
    await screenshot(page, 'dashboard');
  });

  it('opens a target: stats, chart, file tree and function list agree with the API', async () => {
    await page.locator('table.targets .target-name').first().click();
    await until('target view', () => page.locator('.target-page').count());
    const detail = await api<ApiDetail>(`/api/targets/${targetId}`);
    await until('coverage card = API', async () => {
      const [c, n] = await cardCoverage(page);
      return c === detail.stats.covered && n === detail.stats.pcsLen;
    });
    // One stored sample so far (the short run): the chart says it waits for the next one.
    await until('chart drawn, or waiting for a second sample', async () =>
      (await page.locator('.chart canvas').count()) > 0 || (await page.locator('.chart-empty').innerText()).includes('Collecting history'));
    // Every file the API reports appears in the tree with the same PC totals.
    await until('tree rows', () => page.locator('.tree .t-file').count());
    for (const f of detail.files.filter((f) => f.pcs.total > 0)) {
      const row = page.locator(`.tree .t-file[data-file="${f.file}"]`);
      await until(`tree row for ${f.path}`, () => row.count());
      expect(Number(await row.locator('.c-size').innerText()), f.path).to.equal(f.pcs.total);
      expect(await row.locator('.pct').innerText()).to.equal(((100 * f.pcs.covered) / f.pcs.total).toFixed(1) + '%');
    }
    // Functions: names from the debug info, with covered/total.
    await until('function rows', () => page.locator('.fns .vrow').count());
    const fnNames = await page.locator('.fns .vrow .c-name').allInnerTexts();
    expect(fnNames).to.include('tinyimg_decode');
    // Filter the tree.
    await page.locator('.tree-panel input.filter').fill('meta');
    await until('filtered tree', async () => (await page.locator('.tree .t-file').allInnerTexts()).every((t) => t.includes('meta')));
    await page.locator('.tree-panel input.filter').fill('');
    // Sort by missed PCs: descending order of the Missed column.
    await page.locator('.tree-cols .c-missed').click();
    await screenshot(page, 'target');
  });

  it('opens a file: line coverage by colour and marker, legend, PCs on hover, next-uncovered key, deep link', async () => {
    const detail = await api<ApiDetail>(`/api/targets/${targetId}`);
    const decode = detail.files.find((f) => f.path.endsWith('decode.c'))!;
    await page.locator(`.tree .t-file[data-file="${decode.file}"]`).click();
    await until('source view ready', () => page.locator('.file-page[data-ready="1"]').count());
    expect(page.url()).to.contain('/file/').and.to.contain('decode.c');
    await until('covered lines', () => page.locator('.cm-line.cm-cov-hit').count());
    expect(await page.locator('.cm-cov-gutter .cov-mark.cm-cov-hit').count()).to.be.greaterThan(0);
    expect(await page.locator('.legend').innerText()).to.match(/covered[\s\S]*partly covered[\s\S]*uncovered[\s\S]*not instrumented/);
    // Syntax highlighting: keywords get their own spans.
    expect(await page.locator('.cm-content span').count()).to.be.greaterThan(10);
    // The header's line counts match what the page shows for the API's PC numbers.
    const stats = /\(([\d,]+) \/ ([\d,]+)\)/.exec(await page.locator('.source-stats').innerText())!;
    expect(ints(stats[0])).to.deep.equal([decode.pcs.covered, decode.pcs.total]);

    // Line by line, the page's states agree with the server's own export: covered or partly
    // covered = a line with a seen PC, uncovered = a line whose PCs are all unseen, else no PC.
    const exp = await api<{ files: { file: number; coveredLines: number[]; uncoveredLines: number[] }[] }>(`/api/targets/${targetId}/coverage?format=json`);
    const ef = exp.files.find((f) => f.file === decode.file)!;
    const { states } = (await page.evaluate('window.covd.source(true)')) as { states: number[] };
    const hit = new Set(ef.coveredLines), miss = new Set(ef.uncoveredLines);
    let partly = 0;
    for (let l = 1; l < states.length; l++) {
      const want = hit.has(l) ? 'seen' : miss.has(l) ? 'unseen' : 'none';
      const got = states[l] === 3 || states[l] === 2 ? 'seen' : states[l] === 1 ? 'unseen' : 'none';
      expect(got, `decode.c:${l}`).to.equal(want);
      if (states[l] === 2) partly++;
    }
    expect(hit.size + miss.size).to.be.greaterThan(10);
    expect(await page.locator('.source-stats').innerText()).to.contain(`${partly} partly`);

    // Hover a covered line: a tooltip lists its PCs.
    const line = page.locator('.cm-line.cm-cov-hit').first();
    // Past the end of the text counts too: the whole line is the hover target.
    await line.hover({ position: { x: 700, y: 5 } });
    const tip = page.locator('.pc-tip');
    await until('PC tooltip', () => tip.count());
    expect(await tip.locator('.pc-tip-head').innerText()).to.match(/Line \d+: \d+ of \d+ PCs? seen/);
    expect(await tip.locator('tr').count()).to.be.greaterThan(0);
    await page.mouse.move(5, 5);

    // 'n' jumps to the next uncovered block and puts the line in the URL.
    // "N uncovered blocks", or "uncovered block 1 of N" when the file opened at its first one.
    const hasMiss = (await page.locator('.miss-pos').innerText()).match(/^(\d+) uncovered|of (\d+)$/);
    if (hasMiss && Number(hasMiss[1] ?? hasMiss[2]) > 0) {
      await page.locator('.source-panel h1').click();
      await page.keyboard.press('n');
      await until('line in URL', () => /decode\.c:\d+$/.test(page.url()));
      const jumped = Number(/:(\d+)$/.exec(page.url())![1]);
      await until('target line marked', () => page.locator('.cm-line.cm-target-line').count());
      const cls = await page.locator('.cm-line.cm-target-line').getAttribute('class');
      expect(cls).to.match(/cm-cov-(miss|part)/);
      // The deep link survives a reload.
      await page.reload();
      await until('source view after reload', () => page.locator('.file-page[data-ready="1"]').count());
      await until('same line marked after reload', async () => {
        const text = await page.locator('.cm-line.cm-target-line').count();
        return text === 1;
      });
      const probe = (await page.evaluate('window.covd.source()')) as { marked: number };
      expect(probe.marked).to.equal(jumped);
    }
    await screenshot(page, 'source');
  });

  it('watches coverage grow while a real fuzzer runs, without reloading', async () => {
    await page.goto(daemon.url + `#/target/${targetId}`);
    await until('target view', () => page.locator('.target-page').count());
    await page.evaluate('window.marker = 42');
    const [before] = await cardCoverage(page);
    // A second tab on the source of meta.c, scrolled down: it must update in place, keeping its scroll position.
    const detail = await api<ApiDetail>(`/api/targets/${targetId}`);
    const meta = detail.files.find((f) => f.path.endsWith('meta.c'))!;
    const src = await ctx.newPage();
    await src.goto(daemon.url + `#/target/${targetId}/file/${meta.path.replace(/^\/+/, '')}`);
    await until('meta.c open', () => src.locator('.file-page[data-ready="1"]').count());
    await src.evaluate(`document.querySelector('.cm-scroller').scrollTop = 600`);
    const scrollBefore = await src.evaluate(`document.querySelector('.cm-scroller').scrollTop`);
    const linesBefore = ((await src.evaluate('window.covd.source()')) as { lines: number[] }).lines;
    await src.evaluate('window.marker = 7');

    const run = fuzz({ covdDir: covdDir(), seconds: 60 });
    const grown = await until('covered PCs to grow on the page', async () => {
      const [c] = await cardCoverage(page);
      return c! > before! ? c : 0;
    }, 120_000);
    expect(grown).to.be.greaterThan(before!);
    expect(await page.evaluate('window.marker')).to.equal(42);
    // Live samples extend the history: the chart is drawn.
    await until('chart drawn from live samples', () => page.locator('.chart canvas').count());
    await screenshot(page, 'target-growing');
    // meta.c gains covered lines (its parser is what the seed corpus exercises) without a reload or a jump.
    await until('meta.c lines covered grow in place', async () => {
      const p = (await src.evaluate('window.covd.source()')) as { lines: number[] };
      return p.lines[3]! + p.lines[2]! > linesBefore[3]! + linesBefore[2]!;
    }, 120_000);
    expect(await src.evaluate('window.marker')).to.equal(7);
    expect(await src.evaluate(`document.querySelector('.cm-scroller').scrollTop`)).to.equal(scrollBefore);
    await screenshot(src, 'source-growing');
    await src.close();
    run.child.kill('SIGINT');
    await run.done;
    // Settled: the page agrees with the API.
    await until('page = API after the run', async () => {
      const [c, n] = await cardCoverage(page);
      const a = await apiTarget();
      return c === a.stats.covered && n === a.stats.pcsLen;
    });
  });

  it('two tabs at once show the same numbers as the API', async () => {
    const second = await ctx.newPage();
    try {
      await second.goto(daemon.url + `#/target/${targetId}`);
      const run = fuzz({ covdDir: covdDir(), seconds: 8 });
      await run.done;
      await until('both tabs = API', async () => {
        const a = await apiTarget();
        const [c1, n1] = await cardCoverage(page);
        const [c2, n2] = await cardCoverage(second);
        const runs1 = ints(await page.locator('.card[data-stat=runs] .card-value').innerText())[0];
        const runs2 = ints(await second.locator('.card[data-stat=runs] .card-value').innerText())[0];
        return c1 === a.stats.covered && c2 === a.stats.covered && n1 === a.stats.pcsLen && n2 === a.stats.pcsLen && runs1 === a.stats.nRuns && runs2 === a.stats.nRuns;
      });
    } finally {
      await second.close();
    }
  });

  it('survives a daemon restart: shows offline, reconnects and catches up', async () => {
    await page.goto(daemon.url + `#/target/${targetId}`);
    await until('live', () => page.locator('.conn[data-state=open]').count());
    const link = async () => (await page.evaluate('window.covd.link()')) as { state: string; opens: number };
    const opensBefore = (await link()).opens;
    const port = daemon.port;
    // The page's reconnect attempts fail while the daemon is down, and Chromium logs each one.
    consoleErrors.allow(/WebSocket connection to .* failed/);
    consoleErrors.allow(/Failed to load resource: net::ERR_CONNECTION_REFUSED/);
    await daemon.stop();
    await until('offline badge', () => page.locator('.conn[data-state=reconnecting]').count(), 30_000);
    expect(await page.locator('.conn').innerText()).to.match(/offline|reconnecting/);
    await screenshot(page, 'offline');
    // Coverage moves on while the daemon is down (the agent keeps writing its file).
    const run = fuzz({ covdDir: covdDir(), seconds: 5, extraArgs: ['-seed=7'] });
    await run.done;
    // Same port, so the page can find it again.
    daemon = await until('daemon restarted on the same port', () => start(port).catch((e: Error) => {
      if (/cannot listen/.test(e.message)) return null;
      throw e;
    }), 120_000, 1000);
    await until('reconnected', async () => {
      const s = await link();
      return s.state === 'open' && s.opens > opensBefore;
    }, 60_000);
    await until('caught up with the API', async () => {
      const a = await apiTarget();
      if (!a || a.state !== 'ready') return false;
      const [c, n] = await cardCoverage(page);
      return c === a.stats.covered && n === a.stats.pcsLen;
    }, 120_000);
    expect(pageErrors).to.deep.equal([]);
  });

  it('keeps a 5,000-file tree responsive: only visible rows exist, filter and sort work', async () => {
    const many = await buildManyFilesTarget();
    const known = new Set((await api<{ targets: ApiTarget[] }>('/api/targets')).targets.map((t) => t.id));
    await fuzz({ covdDir: covdDir(), runs: 20_000, corpus: null }, many).done;
    const t = await until('5,000-file target ready', async () => (await api<{ targets: ApiTarget[] }>('/api/targets')).targets.find((x) => !known.has(x.id) && x.state === 'ready'), 120_000);
    const detail = await api<ApiDetail>(`/api/targets/${t.id}`);
    expect(detail.files.length).to.be.greaterThanOrEqual(MANY_FILES);
    await page.goto(daemon.url + `#/target/${t.id}`);
    await until('tree drawn', () => page.locator('.tree .vrow').count());
    const summary = await page.locator('.tree-panel .panel-head .muted').innerText();
    expect(ints(summary)[0]).to.equal(detail.files.length);
    // Only a screenful of rows is in the DOM, however many files there are.
    expect(await page.locator('.tree .vrow').count()).to.be.lessThan(120);
    // Filter down to one file: its numbers match the API's.
    const want = detail.files.find((f) => f.path.endsWith('/file_4321.c'))!;
    await page.locator('.tree-panel input.filter').fill('file_4321.c');
    await until('one file row', async () => (await page.locator('.tree .t-file').count()) === 1);
    const row = page.locator('.tree .t-file').first();
    expect(await row.getAttribute('title')).to.equal(want.path);
    expect(Number(await row.locator('.c-size').innerText())).to.equal(want.pcs.total);
    // Clear, sort by missed PCs, scroll to the end: still only visible rows.
    await page.locator('.tree-panel input.filter').fill('');
    await page.locator('.tree-cols .c-missed').click();
    await page.locator('.tree .t-dir').first().click();
    await page.evaluate(`document.querySelector('.tree').scrollTop = 1e9`);
    await until('rows after scrolling', () => page.locator('.tree .vrow').count());
    expect(await page.locator('.tree .vrow').count()).to.be.lessThan(120);
    await page.evaluate(`document.querySelector('.tree').scrollTop = 0`);
    await screenshot(page, 'tree-5000');
    await page.goto(daemon.url + '#/');
    await until('both targets on the dashboard', async () => (await page.locator('table.targets tbody tr').count()) === 2);
    await screenshot(page, 'dashboard-two-targets');
  });
});
