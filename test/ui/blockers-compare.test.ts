/**
 * Blockers and comparisons in the page (ui/src/blockers.ts, ui/src/compare.ts), in chromium
 * against a real `covd serve` and examples/gated fuzzed briefly: the target page lists the
 * blockers as the API ranks them, the gate's call site first, its link opens that line, and the
 * source view marks it in its gutter; an -O0 build says it has no call graph; the list follows
 * coverage as an input opens the gate. The compare view, opened for a time between two fuzzing
 * runs of examples/tinyimg (and by clicking the chart), lists the files as the API's comparison
 * has them, most different first, and marks exactly the lines the API says; picked for the -O0
 * build, it compares the two builds by line; "1 minute ago" means a minute before it is picked,
 * and screen readers hear the summary of the comparison asked for. A failing blockers request is
 * not asked again every few seconds by an open source view. A page left before its chart's frame
 * or its comparison's answer leaves no chart or editor (and no window listener) behind.
 * axe-core finds no serious violation on either view.
 */
import { expect } from 'chai';
import { mkdtempSync, mkdirSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildExampleTarget, buildFuzzTarget, runFuzzer, findCoverageFile } from '../helpers/fuzz-targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { packageRoot } from '../../src/build/toolchain.js';
import { ConsoleWatch, launchChromium, screenshot, startDaemon, until, type Daemon } from './browser.js';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface Blocker { caller: string; file: string; line: number; column: number; callee: string; uncoveredBehind: number; functionsBehind: number }
interface FileCmp { path: string; onlyA: number[]; onlyB: number[]; both: number }
interface Cmp { files: FileCmp[]; totals: { onlyA: number; onlyB: number; both: number } }

/** The 4 bytes that open examples/gated's gate: its hash inverted (xorshifts undone, multiplications by their inverses mod 2^32). */
function gateKey(): Buffer {
  const inv = (a: number) => { let x = a; for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(a, x)); return x; };
  const unshift = (y: number, s: number) => { let x = y; for (let i = 0; i < 32 / s + 1; i++) x = y ^ (x >>> s); return x; };
  const forward = (x: number) => {
    let h = Math.imul(x, 2654435761);
    h ^= h >>> 15;
    h = Math.imul(h, 2246822519);
    h ^= h >>> 13;
    return h >>> 0;
  };
  let h = unshift(0x9e3779b9 | 0, 13);
  h = Math.imul(h, inv(2246822519));
  h = unshift(h, 15);
  h = Math.imul(h, inv(2654435761)) >>> 0;
  expect(forward(h)).to.equal(0x9e3779b9);
  const b = Buffer.alloc(4);
  b.writeUInt32LE(h);
  return b;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bits = (file: string) => {
  const s = readCoverageFile(file);
  let n = 0;
  for (let i = 0; i < s.header.pcsLen; i++) n += (s.seen[i >> 3]! >> (i & 7)) & 1;
  return n;
};

describe('browser UI: blockers and comparisons', function () {
  this.timeout(300_000);
  let tmp: string;
  let daemon: Daemon;
  let browser: Browser;
  let page: Page;
  let id: string, o0: string, exe: string, tiny: string;
  let T: number;
  const consoleErrors = new ConsoleWatch();
  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(new URL(path, daemon.url));
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
  const runAxe = async (what: string) => {
    await page.evaluate(axeSource + '\n;0');
    const violations = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '').replace(/\\s+/g, ' ').slice(0, 200)).join(' | ')))`)) as string[];
    expect(violations, `axe on ${what}`).to.deep.equal([]);
  };

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'covd-ui-blk-'));
    const socket = join(tmp, 'covd.sock');
    daemon = await startDaemon({ stateDir: join(tmp, 'state'), socket });
    const source = join(packageRoot(), 'examples', 'gated', 'fuzz_gated.c');
    let exe0: string, tinyExe: string;
    [exe, exe0, tinyExe] = await Promise.all([
      buildFuzzTarget({ name: 'fuzz_gated', sources: [source], cflags: ['-O1'] }),
      buildFuzzTarget({ name: 'fuzz_gated', sources: [source], cflags: ['-O0'] }),
      buildExampleTarget(),
    ]);
    const settled = async (cd: string) => {
      const file = await findCoverageFile(cd);
      const tid = file.split('/').pop()!;
      await until('the target caught up with its file', async () => {
        const t = (await api<{ targets: { id: string; state: string; stats: { covered: number } }[] }>('/api/targets')).targets.find((x) => x.id === tid);
        return t?.state === 'ready' && t.stats.covered === bits(file);
      });
      return tid;
    };
    const cd = join(tmp, 'cd');
    expect((await runFuzzer(exe, { covdDir: cd, socket, seconds: 3, corpus: null }).done).code).to.equal(0);
    id = await settled(cd);
    // examples/tinyimg (three source files) for the time comparison: a little coverage from an
    // empty corpus, then T, then more from its seeds (the second run starts in the second after T).
    const cdT = join(tmp, 'cdT');
    expect((await runFuzzer(tinyExe, { covdDir: cdT, socket, runs: 20, corpus: null }).done).code).to.equal(0);
    tiny = await settled(cdT);
    T = (Math.floor(Date.now() / 1000) + 1) * 1000 + 500;
    await sleep((Math.floor(T / 1000) + 1) * 1000 + 50 - Date.now());
    expect((await runFuzzer(tinyExe, { covdDir: cdT, socket, runs: 3000 }).done).code).to.equal(0);
    await settled(cdT);
    const cd0 = join(tmp, 'cd0');
    expect((await runFuzzer(exe0, { covdDir: cd0, socket, runs: 200, corpus: null }).done).code).to.equal(0);
    o0 = await settled(cd0);
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
    consoleErrors.watch(page);
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
  afterEach(() => consoleErrors.check());

  it('lists the blockers as the API ranks them: the gate\'s call site first, a link to its line, marked in the gutter', async () => {
    const b = await api<{ callGraph: string; blockers: Blocker[] }>(`/api/targets/${id}/blockers`);
    expect(b.callGraph).to.equal('dwarf');
    expect(b.blockers[0]).to.include({ caller: 'gated', callee: 'deep_walk' });
    await page.goto(`${daemon.url}#/target/${id}`);
    const rows = page.locator('.blockers tr.blocker');
    await rows.first().waitFor({ timeout: 30_000 });
    expect(await rows.count()).to.equal(Math.min(10, b.blockers.length));
    const cells = async (i: number) => (await rows.nth(i).locator('td').allInnerTexts()).map((s) => s.trim());
    const top = b.blockers[0]!;
    expect(await cells(0)).to.deep.equal(['gated', `fuzz_gated.c:${top.line}`, 'deep_walk', top.uncoveredBehind.toLocaleString('en-US'), String(top.functionsBehind)]);
    for (let i = 1; i < Math.min(10, b.blockers.length); i++) expect((await cells(i))[2]).to.equal(b.blockers[i]!.callee);
    await page.locator('.blockers-panel').scrollIntoViewIfNeeded();
    await screenshot(page, 'blockers-list');
    await runAxe('the target page with blockers and the compare panel');

    // The link opens the call site's line, marked, with the blocker's mark in the gutter beside it.
    await rows.first().locator('a.blocker-site').click();
    await page.locator('.file-page[data-ready="1"]').waitFor({ timeout: 30_000 });
    expect(decodeURIComponent(new URL(page.url()).hash)).to.match(new RegExp(`fuzz_gated\\.c:${top.line}$`));
    const probe = (await page.evaluate('window.covd.source()')) as { marked: number };
    expect(probe.marked).to.equal(top.line);
    const mark = page.locator('.cm-blocker-gutter .blocker-mark[data-callee~="deep_walk"]');
    await mark.first().waitFor({ timeout: 20_000 });
    expect(await mark.first().getAttribute('title')).to.match(/^Blocker: gated calls deep_walk, never reached; [\d,]+ uncovered PCs in \d+ functions behind it/);
    // On the call site's line: level with its line number.
    const numBox = await page.locator('.cm-lineNumbers .cm-gutterElement', { hasText: new RegExp(`^${top.line}$`) }).first().boundingBox();
    const markBox = await mark.first().boundingBox();
    expect(Math.abs(markBox!.y + markBox!.height / 2 - (numBox!.y + numBox!.height / 2))).to.be.lessThan(numBox!.height / 2);
    // Every mark in the gutter is a blocker of this file, on its line.
    const marked = await page.locator('.cm-blocker-gutter .blocker-mark:not(.blocker-spacer)').count();
    expect(marked).to.be.at.least(1);
    const inFile = new Set(b.blockers.filter((x) => x.file.endsWith('/fuzz_gated.c')).map((x) => x.line));
    expect(marked).to.be.at.most(inFile.size);
    expect(await page.locator('.legend .legend-item', { hasText: 'blocker' }).count()).to.equal(1);
    await screenshot(page, 'blockers-gutter');
    await runAxe('the source view with blocker marks');
  });

  it('an -O0 build says it has no call graph', async () => {
    expect((await api<{ callGraph: string }>(`/api/targets/${o0}/blockers`)).callGraph).to.equal('none');
    await page.goto(`${daemon.url}#/target/${o0}`);
    const panel = page.locator('.blockers-panel[data-call-graph="none"]');
    await panel.waitFor({ timeout: 30_000 });
    expect(await panel.locator('.blockers-note').innerText()).to.match(/^No call graph in this build \(-O0\)/);
    expect(await panel.locator('tr.blocker').count()).to.equal(0);
  });

  it('a time comparison shows the files most different first and marks exactly the lines the API lists', async () => {
    const c = await api<Cmp>(`/api/targets/${tiny}/compare/@${T}`);
    expect(c.totals.onlyB, 'the second run covered new lines (precondition)').to.be.greaterThan(0);
    expect(c.totals.onlyA).to.equal(0);
    await page.goto(`${daemon.url}#/target/${tiny}/compare/${encodeURIComponent('@' + T)}`);
    const panel = page.locator('.compare-panel[data-state="ready"]');
    await panel.waitFor({ timeout: 30_000 });
    expect(await panel.getAttribute('data-totals')).to.equal(`${c.totals.onlyA},${c.totals.onlyB},${c.totals.both}`);
    // The order: by lines that differ, then by path; computed here from the API's answer.
    const want = c.files.slice().sort((x, y) => y.onlyA.length + y.onlyB.length - (x.onlyA.length + x.onlyB.length) || (x.path < y.path ? -1 : 1));
    expect(want.length, 'several files differ (precondition)').to.be.at.least(2);
    expect(new Set(want.map((f) => f.onlyB.length)).size, 'by different amounts (precondition)').to.be.at.least(2);
    const order = await page.evaluate(`[...document.querySelectorAll('button.compare-file')].map((b) => b.dataset.path)`);
    expect(order).to.deep.equal(want.map((f) => f.path));
    for (const f of want) {
      await page.locator(`button.compare-file[data-path="${f.path}"]`).click();
      await until(`${f.path} shown`, async () => (await panel.getAttribute('data-file')) === f.path && (await page.locator('.compare-editor .cm-line').count()) > 0);
      expect(await panel.getAttribute('data-only-b')).to.equal(f.onlyB.join(','));
      expect(await panel.getAttribute('data-only-a')).to.equal('');
      // What is drawn: walk the editor from top to bottom and read each line's mark and class.
      const drawn = (await page.evaluate(`(async () => {
        const sc = document.querySelector('.compare-editor .cm-scroller');
        const out = {};
        sc.scrollTop = 0;
        for (let guard = 0; guard < 500; guard++) {
          await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
          const nums = [...document.querySelectorAll('.compare-editor .cm-lineNumbers .cm-gutterElement')].filter((e) => e.style.visibility !== 'hidden');
          const lines = [...document.querySelectorAll('.compare-editor .cm-content .cm-line')];
          const marks = [...document.querySelectorAll('.compare-editor .cm-cmp-gutter .cm-gutterElement')];
          for (const ln of lines) {
            const top = Math.round(ln.getBoundingClientRect().top);
            const num = nums.find((n) => Math.abs(Math.round(n.getBoundingClientRect().top) - top) <= 1);
            if (!num) continue;
            const mark = marks.find((m) => Math.abs(Math.round(m.getBoundingClientRect().top) - top) <= 1);
            const cls = ['cmp-only-a', 'cmp-only-b', 'cmp-both'].find((k) => ln.classList.contains(k)) ?? '';
            out[num.textContent.trim()] = cls + '|' + (mark ? mark.textContent.trim() : '');
          }
          if (sc.scrollTop + sc.clientHeight >= sc.scrollHeight - 1) break;
          sc.scrollTop += sc.clientHeight * 0.8;
        }
        return out;
      })()`)) as Record<string, string>;
      const onlyB = Object.keys(drawn).filter((n) => drawn[n]!.startsWith('cmp-only-b|')).map(Number).sort((x, y) => x - y);
      expect(onlyB, `${f.path}: lines drawn as only now`).to.deep.equal(f.onlyB);
      for (const n of onlyB) expect(drawn[n], `line ${n}'s gutter`).to.equal('cmp-only-b|+');
      expect(Object.values(drawn).filter((v) => v.startsWith('cmp-only-a|'))).to.deep.equal([]);
      const both = Object.keys(drawn).filter((n) => drawn[n]!.startsWith('cmp-both|')).length;
      expect(both, `${f.path}: lines drawn as in both`).to.equal(f.both);
    }
    expect(await page.locator('.compare-legend .legend-item').allInnerTexts()).to.have.length(3);
    await page.locator('.compare-panel').scrollIntoViewIfNeeded();
    await screenshot(page, 'compare-time');
    await runAxe('the compare view');
  });

  it('clicking the coverage chart compares with the moment clicked', async () => {
    await page.goto(`${daemon.url}#/target/${tiny}`);
    const over = page.locator('.chart .u-over');
    await over.waitFor({ timeout: 30_000 });
    const box = (await over.boundingBox())!;
    const before = Date.now();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    const panel = page.locator('.compare-panel[data-state="ready"]');
    await panel.waitFor({ timeout: 30_000 });
    const spec = (await panel.getAttribute('data-spec'))!;
    expect(spec).to.match(/^@\d+$/);
    const at = Number(spec.slice(1));
    // A time within the chart's span (the history of this test's runs).
    expect(at).to.be.lessThan(before);
    expect(at).to.be.greaterThan(before - 300_000);
    expect(decodeURIComponent(new URL(page.url()).hash)).to.equal(`#/target/${tiny}/compare/${spec}`);
    const c = await api<Cmp>(`/api/targets/${tiny}/compare/${encodeURIComponent(spec)}`);
    expect(await panel.getAttribute('data-totals')).to.equal(`${c.totals.onlyA},${c.totals.onlyB},${c.totals.both}`);
  });

  it('compares with another build of the program picked from the list: the -O0 build, by line', async () => {
    await page.goto(`${daemon.url}#/target/${id}`);
    const select = page.locator('select.compare-with');
    await until('the -O0 build among the choices', async () => (await select.locator(`option[value="${o0}"]`).count()) === 1);
    // Only builds of the same program are offered, never this target itself.
    expect(await select.locator(`option[value="${id}"]`).count()).to.equal(0);
    await select.selectOption(o0);
    const panel = page.locator(`.compare-panel[data-state="ready"][data-spec="${o0}"]`);
    await panel.waitFor({ timeout: 30_000 });
    const c = await api<Cmp>(`/api/targets/${id}/compare/${o0}`);
    expect(await panel.getAttribute('data-totals')).to.equal(`${c.totals.onlyA},${c.totals.onlyB},${c.totals.both}`);
    expect(c.totals.onlyA + c.totals.onlyB, 'the two builds differ (precondition)').to.be.greaterThan(0);
    const f = c.files.slice().sort((x, y) => y.onlyA.length + y.onlyB.length - (x.onlyA.length + x.onlyB.length) || (x.path < y.path ? -1 : 1))[0]!;
    await until('the most different file shown', async () => (await panel.getAttribute('data-file')) === f.path);
    expect(await panel.getAttribute('data-only-a')).to.equal(f.onlyA.join(','));
    expect(await panel.getAttribute('data-only-b')).to.equal(f.onlyB.join(','));
    expect(((await panel.getAttribute('data-both')) ?? '').split(',').filter(Boolean).length).to.equal(f.both);
    expect(decodeURIComponent(new URL(page.url()).hash)).to.equal(`#/target/${id}/compare/${o0}`);
    expect(await page.locator('.compare-legend').innerText()).to.include(`build ${o0}`);
  });

  it('the list follows coverage: once an input opens the gate, its call site is no blocker any more', async () => {
    await page.goto(`${daemon.url}#/target/${id}`);
    const rows = page.locator('.blockers tr.blocker');
    await rows.first().waitFor({ timeout: 30_000 });
    expect(await rows.first().getAttribute('data-callee')).to.equal('deep_walk');
    // An input past the gate into every deep function, run once, while the page stays open.
    const corpus = join(tmp, 'gate');
    mkdirSync(corpus);
    writeFileSync(join(corpus, 'open'), Buffer.concat([gateKey(), Buffer.from('[{abcabcx')]));
    expect((await runFuzzer(exe, { covdDir: join(tmp, 'cd'), socket: join(tmp, 'covd.sock'), runs: 0, corpus }).done).code).to.equal(0);
    const after = await until('the API to rank the gate no more', async () => {
      const b = await api<{ blockers: Blocker[] }>(`/api/targets/${id}/blockers`);
      return b.blockers.some((x) => x.callee === 'deep_walk' || x.callee === 'deep_parse' || x.callee === 'deep_leaf') ? undefined : b;
    });
    const want = after.blockers.slice(0, 10).map((x) => x.callee);
    await until('the page to follow without a reload', async () => {
      const got = await page.locator('.blockers tr.blocker').evaluateAll((trs) => trs.map((t) => t.getAttribute('data-callee')));
      if (want.length === 0) return (await page.locator('.blockers-note').innerText()).startsWith('No blockers') && got.length === 0;
      return JSON.stringify(got) === JSON.stringify(want);
    }, 30_000);
  });

  it('"1 minute ago" is a minute before it is picked, and the summary of what was asked for is read out', async () => {
    await page.goto(`${daemon.url}#/target/${tiny}`);
    const select = page.locator('select.compare-with');
    const minute = select.locator('option', { hasText: /^1 minute ago$/ });
    await minute.waitFor({ state: 'attached', timeout: 30_000 });
    expect(await minute.getAttribute('value')).to.equal('@-60000');
    // The page stays open a while before the pick: the time is the pick's, not the page's.
    await sleep(3000);
    const before = Date.now();
    await select.selectOption('@-60000');
    const panel = page.locator('.compare-panel[data-state="ready"][data-spec^="@"]');
    await panel.waitFor({ timeout: 30_000 });
    const after = Date.now();
    const at = Number((await panel.getAttribute('data-spec'))!.slice(1));
    expect(at).to.be.at.least(Math.floor((before - 60_000) / 1000) * 1000);
    expect(at).to.be.at.most(after - 60_000);
    expect(decodeURIComponent(new URL(page.url()).hash)).to.equal(`#/target/${tiny}/compare/@${at}`);
    // The summary is shown; the live region says it once, for the comparison asked for.
    const summary = (await page.locator('.compare-summary').innerText()).trim();
    expect(summary).to.match(/^[\d,]+ lines? covered only now, [\d,]+ only as at .+, [\d,]+ in both\.$/);
    expect(await page.locator('.compare-summary').getAttribute('aria-live')).to.equal(null);
    const live = page.locator('.compare-announce[aria-live="polite"]');
    expect((await live.textContent())?.trim()).to.equal(summary);
    await runAxe('the compare view with its live region');
  });

  it('a source view does not ask again every few seconds for blockers that fail', async () => {
    const file = join(packageRoot(), 'examples', 'gated', 'fuzz_gated.c'); // as its debug info names it
    const p2 = await page.context().newPage();
    const watch = new ConsoleWatch().watch(p2);
    watch.allow(/Failed to load resource|409/);
    let asked = 0;
    await p2.route(/\/api\/targets\/[^/]+\/blockers/, (route) => {
      asked++;
      return route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify({ error: 'cannot read the call graph (test)' }) });
    });
    try {
      const t0 = Date.now();
      await p2.goto(`${daemon.url}#/target/${id}/file/${file.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/')}`);
      await p2.locator('.file-page[data-ready="1"]').waitFor({ timeout: 30_000 });
      await until('the first request', async () => asked > 0);
      // The view asks every second when due; a failure waits 10 s before the next request.
      await sleep(8000 - (Date.now() - t0));
      expect(asked, 'requests in the first 8 s after a failure').to.equal(1);
      watch.check();
    } finally {
      await p2.close();
    }
  });

  it('a target page left before its chart is drawn and its comparison answered leaves nothing behind', async () => {
    await page.goto(`${daemon.url}#/target/${tiny}`);
    await page.locator('.chart .u-over').waitFor({ timeout: 30_000 });
    const cdp = await page.context().newCDPSession(page);
    const windowListeners = async () => {
      const { result } = await cdp.send('Runtime.evaluate', { expression: 'window' });
      const { listeners } = await cdp.send('DOMDebugger.getEventListeners', { objectId: result.objectId! });
      await cdp.send('Runtime.releaseObject', { objectId: result.objectId! });
      return listeners.map((l) => l.type).sort().join(',');
    };
    // The compare answers are held back until the pages asking for them are gone.
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    let compareAsked = 0;
    await page.route(/\/api\/targets\/[^/]+\/compare\//, async (route) => {
      compareAsked++;
      await held;
      await route.continue();
    });
    try {
      const baseline = await windowListeners();
      // Open the comparison (a chart frame and a comparison request pending) and leave it in the
      // same task, three times; then the answers come.
      for (let i = 0; i < 3; i++) {
        await page.evaluate(`(() => {
          history.replaceState(null, '', '#/target/${tiny}/compare/' + encodeURIComponent('@${T}'));
          window.dispatchEvent(new HashChangeEvent('hashchange'));
          history.replaceState(null, '', '#/target/${tiny}');
          window.dispatchEvent(new HashChangeEvent('hashchange'));
        })()`);
        await sleep(200);
      }
      expect(compareAsked, 'each page left asked for its comparison (precondition)').to.equal(3);
      release();
      await sleep(3000);
      expect(await page.locator('.chart').count(), 'one chart on the page').to.equal(1);
      expect(await windowListeners(), 'window listeners: as before, none left by the pages gone').to.equal(baseline);
    } finally {
      release();
      await page.unroute(/\/api\/targets\/[^/]+\/compare\//);
      await cdp.detach();
    }
  });
});
