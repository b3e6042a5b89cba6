/**
 * Browser benchmark: sqlite3.c (~270,000 lines) with live coverage in covd's source view, against
 * the same coverage rendered by genhtml (lcov's HTML report, the usual static peer), both in
 * Debian's chromium (headless) in the same run.
 *
 *   node dist/bench/browser.js [--reps N] [--fuzz-seconds S]
 *
 * Measures, per viewer:
 *   - load: navigation start -> the file painted with coverage marks (two animation frames after
 *     the first coverage mark is in the DOM; for genhtml, after the load event and a coverage line),
 *   - scroll: frame intervals while scrolling 120 px per frame for 300 frames, plus 20 far jumps,
 *   - DOM elements and JS heap once loaded.
 * and, for a real target whose debug info names 5,000 files (test/ui/many-files.ts), the target
 * view's file tree: load to painted tree, filter and sort latency, scroll frames (peer: genhtml's
 * directory index of the same coverage, load only: it has no filter).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { buildSqliteTarget, runFuzzer } from '../src/build/targets.js';
import { launchChromium, screenshot, startDaemon, until } from '../test/ui/browser.js';
import { buildManyFilesTarget } from '../test/ui/many-files.js';
import { median, percentile, table, writeResults } from './lib/results.js';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' }, 'fuzz-seconds': { type: 'string', default: '15' } } });
const reps = Number(values.reps);
const fuzzSeconds = Number(values['fuzz-seconds']);

interface Detail {
  id: string;
  files: { file: number; path: string; pcs: { covered: number; total: number }; lines: { covered: number; total: number } }[];
  functions: { name: string; file: number | null; line: number; pcs: { covered: number; total: number } }[];
}

interface ScrollStats {
  frames: number;
  medianMs: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  over50: number;
  jumpMedianMs: number;
  jumpMaxMs: number;
}

/** In the page: scroll `selector` (or the window) 120 px per frame, then jump far 20 times; frame intervals. */
async function scrollFrames(page: Page, selector: string | null): Promise<ScrollStats> {
  const r = (await page.evaluate(`(async () => {
    const el = ${selector ? `document.querySelector(${JSON.stringify(selector)})` : 'document.scrollingElement'};
    const frame = () => new Promise((res) => requestAnimationFrame(res));
    await frame(); await frame();
    const steps = [];
    let last = performance.now();
    for (let i = 0; i < 300; i++) {
      el.scrollTop += 120;
      await frame();
      const now = performance.now();
      steps.push(now - last);
      last = now;
    }
    const jumps = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      el.scrollTop = ((i * 7919) % 20) / 20 * (el.scrollHeight - el.clientHeight);
      await frame();
      await frame();
      jumps.push(performance.now() - t);
    }
    return { steps, jumps };
  })()`)) as { steps: number[]; jumps: number[] };
  return {
    frames: r.steps.length,
    medianMs: median(r.steps),
    p95Ms: percentile(r.steps, 95),
    p99Ms: percentile(r.steps, 99),
    maxMs: Math.max(...r.steps),
    over50: r.steps.filter((s) => s > 50).length,
    jumpMedianMs: median(r.jumps),
    jumpMaxMs: Math.max(...r.jumps),
  };
}

const twoFrames = `new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(() => res(performance.now()))))`;

/** In the page: time from an input event on the tree filter (or a click) to the next painted frame. */
async function treeAction(page: Page, action: string): Promise<number> {
  return (await page.evaluate(`(async () => {
    const t = performance.now();
    ${action};
    await new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res)));
    return performance.now() - t;
  })()`)) as number;
}

async function pageFacts(page: Page): Promise<{ domElements: number; heapMiB: number }> {
  return (await page.evaluate(`({
    domElements: document.getElementsByTagName('*').length,
    heapMiB: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : NaN,
  })`)) as { domElements: number; heapMiB: number };
}

const exe = await buildSqliteTarget();
const tmp = mkdtempSync(join(tmpdir(), 'covd-bench-ui-'));
const covdDir = join(tmp, 'covd');
const daemon = await startDaemon({ stateDir: join(tmp, 'state'), socket: join(tmp, 'covd.sock'), watch: [covdDir] });
const browser = await launchChromium();
try {
  console.error(`fuzzing sqlite for ${fuzzSeconds} s…`);
  const run = runFuzzer(exe, { covdDir, socket: join(tmp, 'covd.sock'), seconds: fuzzSeconds });
  await run.done;
  const api = async <T>(p: string) => (await (await fetch(new URL(p, daemon.url))).json()) as T;
  const target = await until('sqlite target ready', async () => (await api<{ targets: { id: string; state: string; stats: { covered: number; pcsLen: number } }[] }>('/api/targets')).targets.find((t) => t.state === 'ready' && t.stats.covered > 0), 300_000);
  const detail = await api<Detail>(`/api/targets/${target.id}`);
  const file = detail.files.find((f) => f.path.endsWith('/sqlite3.c'));
  if (!file) throw new Error('sqlite3.c is not in the target\'s files');
  const lines = Number(execFileSync('wc', ['-l', file.path], { encoding: 'utf8' }).trim().split(/\s+/)[0]);
  // Open at a covered function deep in the file: the hot path of a real user.
  const fn = detail.functions.filter((f) => f.file === file.file && f.pcs.covered > 0).sort((a, b) => b.line - a.line)[0]!;
  const deepLine = detail.functions.find((f) => f.name === 'sqlite3VdbeExec' && f.pcs.covered > 0)?.line ?? fn.line;
  console.error(`target ${target.id}: ${target.stats.covered}/${target.stats.pcsLen} PCs, sqlite3.c ${lines} lines, opening at line ${deepLine}`);

  // ---- covd ----
  const covdLoads: number[] = [];
  let covdScroll: ScrollStats | null = null;
  let covdFacts = { domElements: 0, heapMiB: 0 };
  let covdMarks: Record<string, number> = {};
  const rel = file.path.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
  for (let i = 0; i < reps; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${daemon.url}#/target/${target.id}/file/${rel}:${deepLine}`);
    await page.waitForSelector('.file-page[data-ready="1"] .cm-line.cm-cov-hit', { timeout: 120_000 });
    const t = (await page.evaluate(`new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(() => res(performance.now()))))`)) as number;
    covdLoads.push(t);
    if (i === reps - 1) {
      // Where the time goes (marks set by the client as it loads).
      covdMarks = (await page.evaluate(`Object.fromEntries(performance.getEntriesByType('mark').filter((m) => m.name.startsWith('covd:')).map((m) => [m.name.slice(5), Math.round(m.startTime)]))`)) as Record<string, number>;
      covdMarks.painted = Math.round(t);
      await screenshot(page, 'sqlite3-source');
      covdFacts = await pageFacts(page);
      covdScroll = await scrollFrames(page, '.cm-scroller');
    }
    await ctx.close();
  }

  // ---- genhtml (peer) ----
  const lcov = await (await fetch(new URL(`/api/targets/${target.id}/coverage?format=lcov`, daemon.url))).text();
  const info = join(tmp, 'cov.info');
  writeFileSync(info, lcov);
  const out = join(tmp, 'html');
  const g0 = Date.now();
  execFileSync('genhtml', ['-q', '-o', out, info], { stdio: ['ignore', 'ignore', 'pipe'] });
  const genhtmlMs = Date.now() - g0;
  const findHtml = (dir: string): string | undefined => {
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      if (statSync(p).isDirectory()) {
        const r = findHtml(p);
        if (r) return r;
      } else if (n === 'sqlite3.c.gcov.html') return p;
    }
    return undefined;
  };
  const html = findHtml(out);
  if (!html || !existsSync(html)) throw new Error('genhtml produced no sqlite3.c.gcov.html');
  const peerLoads: number[] = [];
  let peerScroll: ScrollStats | null = null;
  let peerFacts = { domElements: 0, heapMiB: 0 };
  for (let i = 0; i < reps; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`file://${html}#${deepLine}`, { waitUntil: 'load', timeout: 300_000 });
    await page.waitForSelector('span.lineCov, span.lineNoCov', { timeout: 120_000 });
    const t = (await page.evaluate(`new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(() => res(performance.now()))))`)) as number;
    peerLoads.push(t);
    if (i === reps - 1) {
      peerFacts = await pageFacts(page);
      peerScroll = await scrollFrames(page, null);
    }
    await ctx.close();
  }

  // ---- 5,000-file tree ----
  const many = await buildManyFilesTarget();
  const known = new Set((await api<{ targets: { id: string }[] }>('/api/targets')).targets.map((t) => t.id));
  await runFuzzer(many, { covdDir, socket: join(tmp, 'covd.sock'), runs: 20_000, corpus: null }).done;
  const manyT = await until('5,000-file target ready', async () => (await api<{ targets: { id: string; state: string }[] }>('/api/targets')).targets.find((t) => !known.has(t.id) && t.state === 'ready'), 120_000);
  const manyDetail = await api<Detail>(`/api/targets/${manyT.id}`);
  const treeLoads: number[] = [], filterMs: number[] = [], unfilterMs: number[] = [], sortMs: number[] = [];
  let treeScroll: ScrollStats | null = null;
  let treeFacts = { domElements: 0, heapMiB: 0 };
  const setFilter = (q: string) => `{ const b = document.querySelector('.tree-panel input.filter'); b.value = ${JSON.stringify(q)}; b.dispatchEvent(new Event('input')); }`;
  for (let i = 0; i < reps; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${daemon.url}#/target/${manyT.id}`);
    await page.waitForSelector('.tree .t-dir', { timeout: 120_000 });
    treeLoads.push((await page.evaluate(twoFrames)) as number);
    filterMs.push(await treeAction(page, setFilter('file_4321')));
    unfilterMs.push(await treeAction(page, setFilter('')));
    sortMs.push(await treeAction(page, `document.querySelector('.tree-cols .c-missed').click()`));
    if (i === reps - 1) {
      treeFacts = await pageFacts(page);
      treeScroll = await scrollFrames(page, '.tree');
    }
    await ctx.close();
  }
  const manyInfo = join(tmp, 'many.info');
  writeFileSync(manyInfo, await (await fetch(new URL(`/api/targets/${manyT.id}/coverage?format=lcov`, daemon.url))).text());
  const manyOut = join(tmp, 'many-html');
  const m0 = Date.now();
  execFileSync('genhtml', ['-q', '--no-source', '-o', manyOut, manyInfo], { stdio: ['ignore', 'ignore', 'pipe'] });
  const manyGenMs = Date.now() - m0;
  const indexLoads: number[] = [];
  let indexFacts = { domElements: 0, heapMiB: 0 };
  for (let i = 0; i < reps; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`file://${join(manyOut, 'index.html')}`, { waitUntil: 'load', timeout: 300_000 });
    indexLoads.push((await page.evaluate(twoFrames)) as number);
    if (i === reps - 1) indexFacts = await pageFacts(page);
    await ctx.close();
  }
  const treeRows: (string | number)[][] = [
    ['metric', 'covd', 'genhtml', 'genhtml / covd'],
    ['load to painted tree / index, median ms', median(treeLoads), median(indexLoads), median(indexLoads) / median(treeLoads)],
    ['filter to one file, median ms', median(filterMs), '–', '–'],
    ['clear filter (full tree), median ms', median(unfilterMs), '–', '–'],
    ['sort by missed PCs, median ms', median(sortMs), '–', '–'],
    ['tree scroll frame median / p95 / max ms', `${treeScroll!.medianMs.toFixed(1)} / ${treeScroll!.p95Ms.toFixed(1)} / ${treeScroll!.maxMs.toFixed(1)}`, '–', '–'],
    ['DOM elements', treeFacts.domElements, indexFacts.domElements, indexFacts.domElements / treeFacts.domElements],
  ];

  const rows: (string | number)[][] = [
    ['metric', 'covd', 'genhtml', 'genhtml / covd'],
    ['load to painted coverage, median ms', median(covdLoads), median(peerLoads), median(peerLoads) / median(covdLoads)],
    ['scroll frame median ms', covdScroll!.medianMs, peerScroll!.medianMs, peerScroll!.medianMs / covdScroll!.medianMs],
    ['scroll frame p95 ms', covdScroll!.p95Ms, peerScroll!.p95Ms, peerScroll!.p95Ms / covdScroll!.p95Ms],
    ['scroll frame p99 ms', covdScroll!.p99Ms, peerScroll!.p99Ms, peerScroll!.p99Ms / covdScroll!.p99Ms],
    ['scroll frame max ms', covdScroll!.maxMs, peerScroll!.maxMs, peerScroll!.maxMs / covdScroll!.maxMs],
    ['frames > 50 ms (of 300)', covdScroll!.over50, peerScroll!.over50, '–'],
    ['far jump to painted, median ms', covdScroll!.jumpMedianMs, peerScroll!.jumpMedianMs, peerScroll!.jumpMedianMs / covdScroll!.jumpMedianMs],
    ['DOM elements', covdFacts.domElements, peerFacts.domElements, peerFacts.domElements / covdFacts.domElements],
    ['JS heap MiB', covdFacts.heapMiB, peerFacts.heapMiB, peerFacts.heapMiB / covdFacts.heapMiB],
  ];
  console.log(`sqlite3.c: ${lines} lines, ${file.pcs.total} PCs (${file.pcs.covered} covered); opened at line ${deepLine}; ${reps} loads each; genhtml itself took ${genhtmlMs} ms`);
  console.log(table(rows));
  console.log(`covd load timeline (ms since navigation, last load): ${Object.entries(covdMarks).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`\n5,000-file target: ${manyDetail.files.length} files; ${reps} loads each; genhtml itself took ${manyGenMs} ms`);
  console.log(table(treeRows));
  const path = writeResults('browser', {
    file: { lines, pcs: file.pcs, deepLine },
    target: target.stats,
    reps,
    covd: { loadsMs: covdLoads, scroll: covdScroll, ...covdFacts, marks: covdMarks },
    genhtml: { loadsMs: peerLoads, scroll: peerScroll, ...peerFacts, generateMs: genhtmlMs },
    tree: {
      files: manyDetail.files.length,
      covd: { loadsMs: treeLoads, filterMs, unfilterMs, sortMs, scroll: treeScroll, ...treeFacts },
      genhtml: { loadsMs: indexLoads, ...indexFacts, generateMs: manyGenMs },
    },
  });
  console.log(`results: ${path}`);
} finally {
  await browser.close();
  await daemon.stop();
  rmSync(tmp, { recursive: true, force: true });
}
