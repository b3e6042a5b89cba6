/**
 * The browser client as a daily tool (chromium, a real `covd serve`, real fuzzers): layouts from
 * 800 to 2560 px, no console errors (no eval under the page's CSP), the source view's first line,
 * n / p from the view, the PC tooltip on a line with hundreds of PCs, the chart's gaps and marks,
 * keyboard-only use, greyscale-safe states, one time format, and axe-core's accessibility rules.
 * Screenshots go to test-artifacts/ui/ (layout-*, daily-*).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildExampleTarget, runFuzzer, type FuzzerRun } from '../helpers/fuzz-targets.js';
import { ConsoleWatch, launchChromium, screenshot, startDaemon, until, type Daemon } from './browser.js';
import { buildManyPcsTarget, manyPcsLayout, MANY_PCS_FILE } from './many-pcs.js';

// The functions below that run in the page (evaluate) see the DOM; this project compiles tests
// without the DOM library, so its names are declared here, for this file only.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any, getComputedStyle: any, localStorage: any, innerWidth: number, innerHeight: number;
type Element = any;
type HTMLElement = any;

const execFileP = promisify(execFile);
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface ApiTarget {
  id: string;
  name: string;
  state: string;
  stats: { covered: number; pcsLen: number; nRuns: number; uniqueRuns: number; runsPerSec: number; lastNewAt: number | null };
}
interface Probe {
  file: number;
  marked: number;
  lines: number[];
  docLines: number;
  visible: [number, number];
  missStarts: number[];
  states?: number[];
}

const WIDTHS = [800, 1024, 1400, 2560];

describe('browser UI as a daily tool (chromium, covd serve, real fuzzers)', function () {
  this.timeout(600_000);
  let tmp: string;
  let daemon: Daemon;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let tinyExe: string;
  let wideExe: string;
  let tiny: ApiTarget;
  let wide: ApiTarget;
  let firstRunEnded = 0;
  const fuzzers: FuzzerRun[] = [];
  const consoleErrors = new ConsoleWatch();
  const layout = manyPcsLayout();

  const covdDir = () => join(tmp, 'covd');
  const fuzz = (exe: string, opts: Omit<Parameters<typeof runFuzzer>[1], 'covdDir'>) => {
    const run = runFuzzer(exe, { covdDir: covdDir(), socket: join(tmp, 'covd.sock'), ...opts });
    fuzzers.push(run);
    return run;
  };
  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(new URL(path, daemon.url));
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
  const targets = async () => (await api<{ targets: ApiTarget[] }>('/api/targets')).targets;
  const probe = async (p: Page = page) => (await p.evaluate('window.covd.source(true)')) as Probe | null;
  const sourceHash = (line?: number) => `#/target/${wide.id}/file/${MANY_PCS_FILE}${line ? ':' + line : ''}`;
  const openSource = async (hash: string, p: Page = page) => {
    await p.goto(daemon.url + hash);
    await until('source view ready', () => p.locator('.file-page[data-ready="1"]').count());
    // The editor has laid out and scrolled (two frames).
    await p.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))');
  };
  const runAxe = async (p: Page, what: string) => {
    await p.evaluate(axeSource + '\n;0');
    const violations = (await p.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '').replace(/\\s+/g, ' ').slice(0, 200)).join(' | ')))`)) as string[];
    expect(violations, `axe on ${what}`).to.deep.equal([]);
  };

  before(async function () {
    [tinyExe, wideExe] = await Promise.all([buildExampleTarget(), buildManyPcsTarget()]);
    tmp = mkdtempSync(join(tmpdir(), 'covd-ui-daily-'));
    daemon = await until('daemon started', () => startDaemon({ stateDir: join(tmp, 'state'), socket: join(tmp, 'covd.sock'), watch: [covdDir()], port: 20_000 + Math.floor(Math.random() * 10_000) }).catch((e: Error) => {
      if (/cannot listen/.test(e.message)) return null;
      throw e;
    }), 120_000, 100);
    // tinyimg for a few seconds: millions of runs, so the dashboard's numbers are long.
    await Promise.all([fuzz(tinyExe, { seconds: 5 }).done, fuzz(wideExe, { runs: 300, corpus: null }).done]);
    firstRunEnded = Date.now();
    const ready = await until('both targets ready', async () => {
      const ts = await targets();
      return ts.length === 2 && ts.every((t) => t.state === 'ready') ? ts : null;
    }, 120_000);
    tiny = ready.find((t) => t.name === 'fuzz_tinyimg')!;
    wide = ready.find((t) => t.name === 'fuzz_wide_lines')!;
    expect(tiny.stats.nRuns).to.be.greaterThan(100_000);
    browser = await launchChromium();
    ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    ctx.on('page', (p) => consoleErrors.watch(p));
    page = await ctx.newPage();
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
    if (this.currentTest?.state === 'failed' && daemon) console.error(daemon.log.slice(-30).join('\n'));
  });

  it('loads without console errors: the bundle needs no eval under the page CSP', async () => {
    const res = await fetch(daemon.url);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).to.include("default-src 'self'").and.not.include('unsafe-eval');
    const js = await (await fetch(new URL('/main.js', daemon.url))).text();
    expect(js).to.not.match(/\bnew Function\s*\(|(?<![\w$.])eval\s*\(/);
    for (const hash of ['#/', `#/target/${wide.id}`, sourceHash()]) {
      await page.goto(daemon.url + hash);
      await until('live', () => page.locator('.conn[data-state=open]').count());
      await page.waitForTimeout(500);
    }
    await until('source view', () => page.locator('.file-page[data-ready="1"]').count());
    // A CSP refusal is a console error: none may have been logged.
    expect(consoleErrors.errors).to.deep.equal([]);
  });

  it('lays out every page from 800 to 2560 px: no cut cells, no overlapping headers, the tree becomes a drawer', async () => {
    // Per page, in the browser: visible cells whose text is cut, and header boxes that overlap.
    const check = (sel: { cells: string; heads: string; mayCut?: string }) => page.evaluate((s) => {
      // Rendered at all (a column dropped with display: none is not; one squeezed to no width is, and is cut).
      const visible = (e: Element) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
      const cut: string[] = [];
      for (const e of document.querySelectorAll(s.cells)) {
        if (!visible(e) || (s.mayCut && e.matches(s.mayCut))) continue;
        if (e.scrollWidth > e.clientWidth + 1) cut.push(`${e.className}: "${e.textContent}" ${e.scrollWidth} > ${e.clientWidth}`);
      }
      const heads = [...document.querySelectorAll(s.heads)].filter(visible);
      for (const h of heads) if (h.scrollWidth > h.clientWidth + 1) cut.push(`header ${h.textContent} ${h.scrollWidth} > ${h.clientWidth}`);
      const overlaps: string[] = [];
      for (let i = 0; i < heads.length; i++) {
        for (let j = i + 1; j < heads.length; j++) {
          const a = heads[i]!.getBoundingClientRect(), b = heads[j]!.getBoundingClientRect();
          const x = Math.min(a.right, b.right) - Math.max(a.left, b.left), y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
          if (x > 0.5 && y > 0.5) overlaps.push(`${heads[i]!.textContent} / ${heads[j]!.textContent}`);
        }
      }
      return { cut, overlaps, headers: heads.map((h) => h.textContent), pageScroll: document.documentElement.scrollWidth - innerWidth };
    }, sel);
    const fmt = (n: number) => n.toLocaleString('en-US');
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: 900 });
      // Dashboard: the columns that fit keep their full values; the others are gone, header and cells.
      await page.goto(daemon.url + '#/');
      await until('dashboard rows', async () => (await page.locator('table.targets tbody tr').count()) === 2);
      const row = page.locator(`tr[data-id="${tiny.id}"]`);
      // The cells hold the API's full values (runs/s decays after the run: compare at one moment).
      await until(`dashboard numbers = API @${width}`, async () => {
        const s = (await targets()).find((t) => t.id === tiny.id)!.stats;
        return (await row.locator('td.runs').textContent()) === fmt(s.nRuns) && (await row.locator('td.unique').textContent()) === fmt(s.uniqueRuns) && (await row.locator('td.speed').textContent()) === fmt(s.runsPerSec);
      });
      const d = await check({ cells: 'table.targets th, table.targets td', heads: 'table.targets th', mayCut: 'td.c-target' });
      expect(d.cut, `dashboard @${width}`).to.deep.equal([]);
      expect(d.overlaps, `dashboard @${width}`).to.deep.equal([]);
      expect(d.pageScroll, `dashboard @${width} scrolls sideways`).to.be.at.most(0);
      const want = ['Target', 'State', 'Coverage', ...(width >= 900 ? ['Runs'] : []), ...(width >= 1100 ? ['Unique runs'] : []), 'Runs/s', 'Last new coverage', ...(width >= 1280 ? ['Trend'] : [])];
      expect(d.headers, `dashboard columns @${width}`).to.deep.equal(want);
      // What is shown is shown whole (the cut check above), and what does not fit is not shown at all.
      expect(await row.locator('td.runs').isVisible()).to.equal(width >= 900);
      expect(await row.locator('td.unique').isVisible()).to.equal(width >= 1100);
      expect(await row.locator('td.speed').isVisible()).to.equal(true);
      await screenshot(page, `layout-dashboard-${width}`);

      // Target page: cards whole; the name columns of both lists keep a usable width.
      await page.goto(daemon.url + `#/target/${wide.id}`);
      await until('function rows', () => page.locator('.fns .vrow').count());
      await until('tree rows', () => page.locator('.tree .vrow').count());
      const t = await check({ cells: '.card-value, .card-sub, .vrow .c-cov .pct, .vrow .c-lines, .vrow .c-missed, .vrow .c-size, .cols .sort', heads: '.fn-cols .sort, .tree-cols .sort' });
      expect(t.cut, `target page @${width}`).to.deep.equal([]);
      expect(t.overlaps, `target page @${width}`).to.deep.equal([]);
      for (const list of ['.fns', '.tree']) {
        const w = await page.locator(`${list} .vrow .c-name`).first().evaluate((e) => e.getBoundingClientRect().width);
        expect(w, `${list} name column @${width}`).to.be.greaterThan(150);
      }
      // Function names (wide_a...) are short: shown whole.
      const fnCut = await page.locator('.fns .vrow .c-name').evaluateAll((es) => es.filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent));
      expect(fnCut, `function names cut @${width}`).to.deep.equal([]);
      await screenshot(page, `layout-target-${width}`);

      // Source view: below 1100 px the tree is a drawer behind a toggle, and the code has the width.
      await openSource(sourceHash());
      const side = page.locator('.file-page .side');
      const toggle = page.locator('.tree-toggle');
      const editorW = await page.locator('.cm-editor').evaluate((e) => e.getBoundingClientRect().width);
      if (width < 1100) {
        expect(await side.isVisible(), `tree hidden @${width}`).to.equal(false);
        expect(await toggle.isVisible()).to.equal(true);
        expect(editorW, `code width @${width}`).to.be.greaterThan(width * 0.85);
        await toggle.click();
        await until('drawer open', () => side.isVisible());
        const box = (await side.boundingBox())!;
        expect(box.x).to.be.at.least(0);
        expect(box.x + box.width).to.be.at.most(width);
        expect(await toggle.getAttribute('aria-expanded')).to.equal('true');
        await screenshot(page, `layout-source-${width}-drawer`);
        await page.keyboard.press('Escape');
        await until('drawer closed', async () => !(await side.isVisible()));
      } else {
        expect(await side.isVisible(), `tree shown @${width}`).to.equal(true);
        expect(await toggle.isVisible()).to.equal(false);
        expect(editorW, `code width @${width}`).to.be.greaterThan(width - 520);
      }
      const s = await check({ cells: '.cm-lineNumbers .cm-gutterElement, .cov-mark .count, .source-stats, .controls .btn, .miss-pos, .legend-item', heads: '.controls > *, .legend-item' });
      expect(s.cut, `source view @${width}`).to.deep.equal([]);
      expect(s.overlaps, `source view @${width}`).to.deep.equal([]);
      await screenshot(page, `layout-source-${width}`);
    }
    await page.setViewportSize({ width: 1400, height: 900 });
  });

  it('opens a file at its first uncovered block, not at line 1; a deep link still wins', async () => {
    await page.setViewportSize({ width: 1024, height: 800 });
    await openSource(sourceHash());
    const p = (await probe())!;
    const first = p.missStarts[0]!;
    // The generated file's first uncovered lines are a never-entered function, far below line 1.
    expect(first).to.equal(layout.uncoveredFns[0]);
    expect(p.visible[0], 'not at line 1').to.be.greaterThan(1);
    expect(first).to.be.within(p.visible[0], p.visible[1]);
    expect(p.marked, 'opening marks nothing').to.equal(0);
    expect(await page.locator('.miss-pos').innerText()).to.equal(`uncovered block 1 of ${p.missStarts.length}`);
    await openSource(sourceHash(7));
    const q = (await probe())!;
    expect(q.marked).to.equal(7);
    expect(7).to.be.within(q.visible[0], q.visible[1]);
    await screenshot(page, 'daily-first-uncovered');
  });

  it('n / p go from the lines on screen; the block counter survives live updates', async () => {
    await page.setViewportSize({ width: 1024, height: 800 });
    await openSource(sourceHash());
    const { missStarts } = (await probe())!;
    expect(missStarts.length).to.be.greaterThan(5);
    // Scroll (as a user would, no click) to the middle of the file, then n.
    await page.locator('.cm-scroller').evaluate((e) => (e.scrollTop = e.scrollHeight / 2));
    await page.waitForTimeout(200);
    const top = (await probe())!.visible[0];
    const lineInUrl = () => Number(/:(\d+)$/.exec(page.url())?.[1] ?? 0);
    await page.keyboard.press('n');
    await until('a line in the URL', () => lineInUrl() > 0);
    const jumped = lineInUrl();
    expect(jumped, `n after scrolling to line ${top}`).to.be.greaterThan(top);
    expect(missStarts).to.include(jumped);
    // The first block below the top of the view: none skipped.
    const k = missStarts.indexOf(jumped);
    expect(missStarts[k - 1] ?? 0, 'the block before starts above the view').to.be.at.most(top);
    expect(await page.locator('.miss-pos').innerText()).to.equal(`uncovered block ${k + 1} of ${missStarts.length}`);
    await page.keyboard.press('n');
    await until('next block', () => lineInUrl() === missStarts[k + 1]);
    await page.keyboard.press('p');
    await until('back to the block', () => lineInUrl() === jumped);
    expect((await probe())!.marked).to.equal(jumped);
    // Scroll back to the top: n goes to the first block, not to the one after the last jump.
    await page.locator('.cm-scroller').evaluate((e) => (e.scrollTop = 0));
    await page.waitForTimeout(200);
    await page.keyboard.press('n');
    await until('first block', () => lineInUrl() === missStarts[0]);
    await page.keyboard.press('n');
    await until('second block', () => lineInUrl() === missStarts[1]);
    // Live updates: a fuzzer finds more of this file; the counter still names the block.
    const before = await page.locator('.source-stats').innerText();
    await fuzz(wideExe, { runs: 20_000, corpus: null, extraArgs: ['-seed=3'] }).done;
    await until('this file gains coverage in place', async () => (await page.locator('.source-stats').innerText()) !== before, 60_000);
    const p = (await probe())!;
    const kk = p.missStarts.filter((l) => l <= missStarts[1]!).length;
    expect(await page.locator('.miss-pos').innerText()).to.equal(`uncovered block ${kk} of ${p.missStarts.length}`);
  });

  it('shows a line with hundreds of PCs in a tooltip that stays in the window, scrolls, groups by function, with real addresses', async () => {
    await page.setViewportSize({ width: 1024, height: 800 });
    const wideLine = layout.wideLine;
    const lineApi = (await api<{ files: { file: number; path: string }[] }>(`/api/targets/${wide.id}`)).files.find((f) => f.path.endsWith(MANY_PCS_FILE))!;
    expect(lineApi).to.not.equal(undefined);
    for (const where of ['center', 'top', 'bottom'] as const) {
      await openSource(sourceHash(wideLine));
      // Put the line near the top or the bottom of the view: the tooltip must still fit.
      if (where !== 'center') {
        await page.locator('.cm-scroller').evaluate((e, w) => {
          const line = document.querySelector('.cm-line.cm-target-line')!.getBoundingClientRect();
          const sc = e.getBoundingClientRect();
          e.scrollTop += w === 'top' ? line.top - sc.top - 4 : line.bottom - sc.bottom + 4;
        }, where);
        await page.waitForTimeout(200);
      }
      const line = (await page.locator('.cm-line.cm-target-line').boundingBox())!;
      await page.mouse.move(line.x + 200, line.y + line.height / 2);
      const tip = page.locator('.pc-tip');
      await until('PC tooltip', () => tip.count());
      await page.waitForTimeout(150);
      const g = await tip.evaluate((t) => {
        const r = t.getBoundingClientRect();
        const body = t.querySelector('.pc-tip-body')!;
        const rows = [...t.querySelectorAll('tr:not(.pc-fn)')];
        const outside = rows.filter((row) => { const b = row.getBoundingClientRect(); return b.width > 0 && (b.right > r.right + 0.5 || b.left < r.left - 0.5); }).length;
        body.scrollTop = body.scrollHeight;
        return {
          box: [r.left, r.top, r.right, r.bottom], vw: innerWidth, vh: innerHeight, head: t.querySelector('.pc-tip-head')!.textContent!,
          scrolls: body.scrollHeight > body.clientHeight + 10, scrolledTo: body.scrollTop, rows: rows.length, outside,
          wider: t.scrollWidth > t.clientWidth + 1, groups: [...t.querySelectorAll('tr.pc-fn .fn')].map((e) => e.textContent),
          addrs: [...t.querySelectorAll('td.addr')].slice(0, 3).map((e) => e.textContent!), bg: getComputedStyle(t).backgroundColor,
        };
      });
      expect(g.box[0], `${where}: left`).to.be.at.least(0);
      expect(g.box[1], `${where}: top`).to.be.at.least(0);
      expect(g.box[2], `${where}: right`).to.be.at.most(g.vw);
      expect(g.box[3], `${where}: bottom`).to.be.at.most(g.vh);
      const [, , , total] = /Line (\d+): (\d+) of (\d+) PCs seen/.exec(g.head)!.map(Number);
      expect(total, 'hundreds of PCs').to.be.greaterThan(300);
      expect(g.rows).to.equal(total);
      expect(g.scrolls, 'the rows scroll inside the box').to.equal(true);
      expect(g.scrolledTo).to.be.greaterThan(0);
      expect(g.outside, 'rows outside the background').to.equal(0);
      expect(g.wider, 'content wider than the box').to.equal(false);
      expect(g.bg).to.not.match(/rgba\(0, 0, 0, 0\)|transparent/);
      expect(g.groups).to.deep.equal(['wide_a', 'wide_b', 'wide_c']);
      for (const a of g.addrs) expect(a).to.match(/^0x[0-9a-f]+$/);
      if (where === 'center') {
        await screenshot(page, 'daily-pc-tooltip');
        // Real addresses: llvm-symbolizer puts them on this line of this file.
        const { stdout } = await execFileP('llvm-symbolizer', [`--obj=${wideExe}`, ...g.addrs]);
        const locs = stdout.split('\n').filter((l) => l.includes(':'));
        expect(locs.length).to.equal(g.addrs.length);
        for (const l of locs) expect(l).to.contain(`${MANY_PCS_FILE}:${wideLine}:`);
      }
      await page.mouse.move(2, 2);
      await until('tooltip gone', async () => (await tip.count()) === 0);
    }
  });

  it('works from the keyboard alone: dashboard to a file, to a source line, and ? lists the keys', async () => {
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.goto(daemon.url + '#/');
    await until('dashboard rows', async () => (await page.locator('table.targets tbody tr').count()) === 2);
    const active = () => page.evaluate(() => {
      const e = document.activeElement as HTMLElement | null;
      return e ? { tag: e.tagName, cls: e.className, text: (e.textContent ?? '').trim().slice(0, 60), role: e.getAttribute('role') } : null;
    });
    const tabTo = async (what: string, match: (a: NonNullable<Awaited<ReturnType<typeof active>>>) => boolean, max = 40) => {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press('Tab');
        const a = await active();
        if (a && match(a)) return a;
      }
      throw new Error(`Tab never reached ${what} (last: ${JSON.stringify(await active())})`);
    };
    await tabTo('the wide target', (a) => a.tag === 'A' && a.text === 'fuzz_wide_lines');
    await page.keyboard.press('Enter');
    await until('target page', () => page.locator('.target-page').count());
    await until('tree rows', () => page.locator('.tree .vrow').count());
    // The file tree: one stop in the tab order, a treeitem.
    const row = await tabTo('a file tree row', (a) => a.role === 'treeitem');
    expect(row.cls).to.contain('vrow');
    expect(await page.locator('.tree .vrow[tabindex="0"]').count()).to.equal(1);
    for (let i = 0; i < 5 && !(await active())!.cls.includes('t-file'); i++) await page.keyboard.press('ArrowDown');
    expect((await active())!.cls).to.contain('t-file');
    await page.keyboard.press('Enter');
    await until('source view', () => page.locator('.file-page[data-ready="1"]').count());
    expect(page.url()).to.contain(MANY_PCS_FILE);
    // The code is in the tab order; n from there marks a line and puts it in the URL.
    await tabTo('the source code', (a) => a.cls.includes('cm-content'));
    await page.keyboard.press('n');
    await until('a line in the URL', () => /:\d+$/.test(page.url()));
    const line = Number(/:(\d+)$/.exec(page.url())![1]);
    expect((await probe())!.marked).to.equal(line);
    // i lists the marked line's PCs, with focus in the list (arrows scroll it); Escape closes it.
    await page.keyboard.press('i');
    await until('PC list of the marked line', () => page.locator('.pc-tip').count());
    expect(await page.locator('.pc-tip-head').innerText()).to.match(new RegExp(`^Line ${line}:`));
    // Focus moves into the list on the next frame (ui/src/source.ts).
    await until('focus in the PC list', async () => (await active())!.cls.includes('pc-tip-body'), 5_000);
    await page.keyboard.press('Escape');
    await until('PC list closed', async () => (await page.locator('.pc-tip').count()) === 0);
    expect((await active())!.cls).to.contain('cm-content');
    // ? shows the shortcuts in a modal dialog; Escape closes it.
    await page.keyboard.press('?');
    const dialog = page.locator('dialog.shortcuts');
    await until('shortcuts dialog', () => dialog.isVisible());
    expect(await dialog.innerText()).to.match(/next uncovered block/);
    await runAxe(page, 'the shortcuts dialog');
    await page.keyboard.press('Escape');
    await until('dialog closed', async () => !(await dialog.isVisible()));

    // The function list: rows are grid rows; arrows move, Enter opens the function's line.
    await page.goto(daemon.url + `#/target/${wide.id}`);
    await until('function rows', () => page.locator('.fns .vrow').count());
    await page.locator('.fn-panel input.filter').focus();
    await page.keyboard.press('ArrowDown');
    expect((await active())!.role).to.equal('row');
    await page.keyboard.press('ArrowDown');
    const second = (await active())!.text;
    expect(second).to.not.equal('');
    expect(await page.locator('.fns .vrow[tabindex="0"]').count()).to.equal(1);
    await page.keyboard.press('Enter');
    await until('source view at the function', () => page.locator('.file-page[data-ready="1"]').count());
    expect(page.url()).to.match(/:\d+$/);
    // Enter in a filter box opens the first match.
    await page.goto(daemon.url + `#/target/${wide.id}`);
    await until('function rows', () => page.locator('.fns .vrow').count());
    await page.locator('.fn-panel input.filter').fill('wide_c');
    await until('filtered', async () => (await page.locator('.fns .vrow').count()) === 1);
    await page.keyboard.press('Enter');
    await until('wide_c opened', () => page.locator('.file-page[data-ready="1"]').count());
    expect(Number(/:(\d+)$/.exec(page.url())![1])).to.equal(layout.wideLine);
  });

  it('tells line states apart without colour, and line numbers meet WCAG AA contrast', async () => {
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.evaluate(() => localStorage.setItem('covd.newMinutes', '1440'));
    const decode = (await api<{ files: { path: string }[] }>(`/api/targets/${tiny.id}`)).files.find((f) => f.path.endsWith('decode.c'))!;
    await page.goto(daemon.url + `#/target/${tiny.id}/file/${decode.path.replace(/^\/+/, '')}`);
    await until('source view', () => page.locator('.file-page[data-ready="1"]').count());
    const styles = (sel: string) => page.locator(sel).first().evaluate((e) => {
      const cs = getComputedStyle(e);
      return { bgImage: cs.backgroundImage, shadow: cs.boxShadow, bg: cs.backgroundColor };
    });
    await until('all three states on screen', async () => (await page.locator('.cm-line.cm-cov-miss').count()) > 0 && (await page.locator('.cm-line.cm-cov-part').count()) > 0 && (await page.locator('.cm-line.cm-cov-hit').count()) > 0);
    const plainHit = '.cm-line.cm-cov-hit:not(.cm-cov-new)';
    const miss = await styles('.cm-line.cm-cov-miss'), part = await styles('.cm-line.cm-cov-part'), hit = (await page.locator(plainHit).count()) ? await styles(plainHit) : null;
    expect(miss.bgImage).to.not.equal('none');
    expect(part.bgImage).to.not.equal('none');
    expect(miss.bgImage).to.not.equal(part.bgImage);
    if (hit) expect(hit.bgImage).to.not.equal(miss.bgImage).and.to.not.equal(part.bgImage);
    // Every line was first seen today: all covered lines are "new" within 24 h; turning the highlight off shows the difference.
    const newLine = page.locator('.cm-line.cm-cov-hit.cm-cov-new').first();
    await until('new lines', () => newLine.count());
    const n = await newLine.evaluate((e) => ({ shadow: getComputedStyle(e).boxShadow, idx: [...e.parentElement!.children].indexOf(e) }));
    const marker = page.locator('.cm-cov-gutter .cov-mark.fresh .glyph').first();
    const freshWeight = await marker.evaluate((e) => getComputedStyle(e).fontWeight);
    await page.locator('.new-select select').selectOption('0');
    await until('no new lines', async () => (await page.locator('.cm-line.cm-cov-new').count()) === 0);
    const plain = await page.locator('.cm-line').nth(n.idx).evaluate((e) => getComputedStyle(e).boxShadow);
    expect(plain, 'a covered line vs the same line marked new').to.not.equal(n.shadow);
    const plainWeight = await page.locator('.cm-cov-gutter .cov-mark.cm-cov-hit .glyph').first().evaluate((e) => getComputedStyle(e).fontWeight);
    expect(Number(freshWeight)).to.be.greaterThan(Number(plainWeight));
    await page.locator('.new-select select').selectOption('5');
    // Line numbers: contrast against the gutter (WCAG relative luminance).
    const ratio = await page.locator('.cm-lineNumbers .cm-gutterElement').nth(3).evaluate((e) => {
      const rgb = (s: string) => s.match(/\d+(\.\d+)?/g)!.slice(0, 3).map(Number);
      const lum = (c: number[]) => { const [r, g, b] = c.map((v) => { const x = v / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!; };
      let bgEl: Element | null = e;
      let bg = 'rgba(0, 0, 0, 0)';
      while (bgEl && /rgba\(0, 0, 0, 0\)|transparent/.test(bg)) { bg = getComputedStyle(bgEl).backgroundColor; bgEl = bgEl.parentElement; }
      const a = lum(rgb(getComputedStyle(e).color)), b = lum(rgb(bg));
      return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    });
    expect(ratio).to.be.at.least(4.5);
    await page.evaluate(() => (document.documentElement.style.filter = 'grayscale(1)'));
    await screenshot(page, 'daily-greyscale-source');
    await page.evaluate(() => (document.documentElement.style.filter = ''));
  });

  it('has no serious accessibility violations (axe-core) on any page, wide and narrow', async () => {
    for (const width of [1400, 800]) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(daemon.url + '#/');
      await until('dashboard rows', async () => (await page.locator('table.targets tbody tr').count()) === 2);
      await runAxe(page, `the dashboard @${width}`);
      await page.goto(daemon.url + `#/target/${tiny.id}`);
      await until('tree rows', () => page.locator('.tree .vrow').count());
      await until('function rows', () => page.locator('.fns .vrow').count());
      await runAxe(page, `the target page @${width}`);
      await openSource(sourceHash(layout.wideLine));
      if (width < 1100) await page.locator('.tree-toggle').click();
      const line = (await page.locator('.cm-line.cm-target-line').boundingBox())!;
      await page.mouse.move(line.x + (width < 1100 ? 500 : 200), line.y + line.height / 2);
      await until('PC tooltip', () => page.locator('.pc-tip').count());
      await runAxe(page, `the source view with its PC tooltip @${width}`);
      await page.mouse.move(2, 2);
    }
  });

  it('charts gaps where nothing ran, marks starts and stops, and shows exec/s; one time format', async () => {
    // The first runs ended a while ago: a stopped period, then fuzzing again.
    await new Promise((r) => setTimeout(r, Math.max(0, firstRunEnded + 20_000 - Date.now())));
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.goto(daemon.url + `#/target/${tiny.id}`);
    await until('chart drawn', () => page.locator('.chart canvas').count());
    const run = fuzz(tinyExe, { seconds: 6, extraArgs: ['-seed=11'] });
    await run.done;
    const chart = page.locator('.chart');
    await until('a second start', async () => Number(await chart.getAttribute('data-starts')) >= 2, 60_000);
    expect(Number(await chart.getAttribute('data-gaps')), 'gaps').to.be.at.least(1);
    expect(Number(await chart.getAttribute('data-stops')), 'stops').to.be.at.least(1);
    const legend = await page.locator('.u-legend').innerText();
    expect(legend).to.match(/Covered PCs/).and.to.match(/Exec\/s/);
    // Hovering the chart: the legend's time is the page's one (locale) format, as on the cards.
    const plot = (await page.locator('.u-over').boundingBox())!;
    await page.mouse.move(plot.x + plot.width * 0.95, plot.y + plot.height / 2);
    const time = await until('legend time', async () => {
      const v = (await page.locator('.u-legend .u-series').first().locator('.u-value').innerText()).trim();
      return v && v !== '–' ? v : null;
    });
    const info = (await targets()).find((t) => t.id === tiny.id)!;
    const formats = await page.evaluate((ms) => ({
      full: new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit' }).formatToParts(new Date(ms)).map((p) => p.type),
      time: new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' }).format(new Date(ms)),
    }), info.stats.lastNewAt!);
    expect(formats.full).to.include('year');
    expect(time, 'legend time has the year, like the full format').to.match(new RegExp(String(new Date().getFullYear())));
    expect(await page.locator('.card[data-stat=last] .card-sub').innerText()).to.equal(formats.time);
    expect(await page.locator('.card[data-stat=last] .card-value').innerText()).to.match(/^\d+ (s|min) ago$/);
    await screenshot(page, 'daily-chart-gap');
  });

  it('shows a libFuzzer target\'s corpus as the daemon counted it, and no corpus card where none was counted', async () => {
    // A running fuzzer: its corpus is a copy of the seeds in a work directory that goes when it ends.
    const run = fuzz(tinyExe, { seconds: 120, extraArgs: ['-seed=13'] });
    await page.goto(daemon.url + `#/target/${tiny.id}`);
    const card = page.locator('.card[data-stat=corpus]');
    // The daemon counts every 30 s and the page asks every 15 s.
    await until('the corpus card', () => card.isVisible(), 90_000);
    type Corpus = { files: number; bytes: number | null; dirs: { path: string }[] };
    // The daemon's count moves every 30 s and the page's every 15 s: they meet between moves.
    const c = await until('the card shows the daemon\'s count', async () => {
      const now = await api<Corpus>(`/api/targets/${tiny.id}/corpus`);
      const shown = Number((await card.locator('.card-value').innerText()).replace(/\D/g, ''));
      return shown === now.files ? now : null;
    }, 60_000);
    expect(c.files, 'the seeds at least').to.be.greaterThan(0);
    expect(c.dirs).to.have.length(1);
    expect(await card.locator('.card-sub').innerText()).to.match(/ in 1 directory$/);
    await run.stop('SIGKILL');
    // fuzz_wide_lines ran without a corpus directory: nothing counted, no card.
    await page.goto(daemon.url + `#/target/${wide.id}`);
    await until('the target page', () => page.locator('.card[data-stat=coverage]').count());
    await new Promise((r) => setTimeout(r, 1500));
    expect(await page.locator('.card[data-stat=corpus]').isVisible()).to.equal(false);
  });

  it('a fuzzer killed mid-run reads stopped, at 0 runs/s, on the dashboard and the target page within 15 s', async () => {
    const run = fuzz(tinyExe, {});
    await page.goto(daemon.url + '#/');
    const row = page.locator(`tr[data-id="${tiny.id}"]`);
    await until('running on the dashboard', async () => (await row.locator('.activity').innerText()).trim() === 'running' && (await row.locator('td.speed').innerText()).trim() !== '0', 30_000);
    const killedAt = Date.now();
    await run.stop('SIGKILL');
    await until('stopped on the dashboard', async () => (await row.locator('.activity').innerText()).trim() === 'stopped', 15_000);
    await until('0 runs/s on the dashboard', async () => (await row.locator('td.speed').innerText()).trim() === '0', 15_000);
    expect(Date.now() - killedAt).to.be.below(15_000);
    expect(await row.locator('.activity').getAttribute('title')).to.match(/^no fuzzer since /);
    await page.goto(daemon.url + `#/target/${tiny.id}`);
    await until('the target page says stopped', async () => /stopped/.test(await page.locator('body').innerText()), 10_000);
  });
});
