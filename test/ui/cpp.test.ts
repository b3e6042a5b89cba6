/**
 * A C++ target in the browser (chromium, a real `covd serve`, a real libFuzzer run of
 * examples/iniparse built by `covd cc`): demangled names in the function list, the library's
 * files in a closed group of their own below the project's, the "inlined into" hover, and the
 * inlined code of a function. What the page shows is checked against llvm-symbolizer-14
 * (`--inlines`, its default) on the same addresses and against the daemon's API.
 * Screenshots go to test-artifacts/ui/ (cpp-*).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join, normalize } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { findCoverageFile, runFuzzer, type FuzzerRun } from '../../src/build/targets.js';
import { ConsoleWatch, launchChromium, repoRoot, screenshot, startDaemon, until, type Daemon } from './browser.js';

/** The seeds copied out, so libFuzzer's new inputs go to the test's directory, not the source tree. */
function copySeeds(from: string, to: string): string {
  cpSync(from, to, { recursive: true });
  return to;
}

const execFileP = promisify(execFile);
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface Count { covered: number; total: number }
interface Detail {
  id: string;
  state: string;
  totals: { project: { pcs: Count; files: number }; library: { pcs: Count; files: number }; root: string };
  files: { file: number; path: string; relPath: string; library: boolean; pcs: Count }[];
  functions: { function: number; name: string; linkageName?: string; pcs: Count; inlined?: { function: number; name: string; pcs: Count }[] }[];
}
interface InlinedPcs { pcsLen: number; resolved: boolean; pcs: number[]; function: number[]; callFile: number[]; callLine: number[] }
interface PcDetail {
  index: number; pc: string | null; file: string | null; line: number | null; function: string | null;
  inlined: { function: string; into: string | null; file: string | null; line: number | null } | null;
}
interface Frame { FunctionName: string; FileName: string; Line: number }

/** The executable's pc-table (__sancov_pcs: PC, flags pairs): the PCs in the coverage file's order, as 0x... */
async function pcTable(exe: string, dir: string): Promise<string[]> {
  const out = join(dir, 'pcs.bin');
  await execFileP('objcopy', ['-O', 'binary', '--only-section=__sancov_pcs', exe, out]);
  const b = readFileSync(out);
  const v = new BigUint64Array(b.buffer, b.byteOffset, Math.floor(b.length / 8));
  return Array.from({ length: v.length / 2 }, (_, i) => '0x' + v[2 * i]!.toString(16));
}

/** llvm-symbolizer-14 with its defaults (--inlines, demangled), JSON: the frames of each address, innermost first. */
async function symbolize(exe: string, addrs: string[], extra: string[] = []): Promise<Frame[][]> {
  // Addresses on the command line give one JSON array of every answer.
  const { stdout } = await execFileP('llvm-symbolizer-14', [`--obj=${exe}`, '--output-style=JSON', ...extra, ...addrs], { maxBuffer: 64 << 20 });
  const all = JSON.parse(stdout) as { Address: string; Symbol: Frame[] }[];
  expect(all.map((a) => a.Address)).to.deep.equal(addrs);
  return all.map((a) => a.Symbol);
}

describe('a C++ target in the browser (chromium, covd serve, libFuzzer, llvm-symbolizer-14)', function () {
  this.timeout(600_000);
  let tmp: string;
  let exe: string;
  let daemon: Daemon;
  let browser: Browser;
  let page: Page;
  let id: string;
  let detail: Detail;
  let inl: InlinedPcs;
  /** Per PC: its address and llvm-symbolizer-14's frames for it. */
  let addrs: string[];
  let frames: Frame[][];
  /** One PC's detail; requests paced, under the daemon's per-address rate limit. */
  const pcDetail = async (pc: number) => {
    await new Promise((r) => setTimeout(r, 10));
    return api<PcDetail>(`/api/targets/${id}/pcs/${pc}`);
  };
  const fuzzers: FuzzerRun[] = [];
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

  before(async function () {
    tmp = mkdtempSync(join(tmpdir(), 'covd-ui-cpp-'));
    // Built the way a user builds it: `covd cc` (clang-14 -g -O1 -fsanitize=fuzzer, with the agent).
    const src = join(repoRoot, 'examples', 'iniparse');
    exe = join(tmp, 'fuzz_iniparse');
    await execFileP(process.execPath, [join(repoRoot, 'bin', 'covd'), 'cc', '-std=c++17', '-o', exe, ...['fuzz_iniparse.cpp', 'lexer.cpp', 'document.cpp'].map((f) => join(src, f))], { maxBuffer: 16 << 20 });
    daemon = await until('daemon started', () => startDaemon({ stateDir: join(tmp, 'state'), socket: join(tmp, 'covd.sock'), watch: [join(tmp, 'covd')], port: 20_000 + Math.floor(Math.random() * 10_000) }).catch((e: Error) => {
      if (/cannot listen/.test(e.message)) return null;
      throw e;
    }), 120_000, 100);
    const run = runFuzzer(exe, { covdDir: join(tmp, 'covd'), socket: join(tmp, 'covd.sock'), runs: 30_000, corpus: copySeeds(join(src, 'corpus'), join(tmp, 'corpus')) });
    fuzzers.push(run);
    const r = await run.done;
    expect(r.code, r.stderr.slice(-800)).to.equal(0);
    id = basename(await findCoverageFile(join(tmp, 'covd')));
    await until('target ready', async () => (await api<{ targets: { id: string; state: string }[] }>('/api/targets')).targets.find((t) => t.id === id && t.state === 'ready'), 120_000);
    // The fuzzer has exited: coverage no longer moves, so page and API can be compared exactly.
    detail = await until('the last coverage applied', async () => {
      await new Promise((res) => setTimeout(res, 1500));
      const a = await api<Detail>(`/api/targets/${id}`);
      const b = await api<Detail>(`/api/targets/${id}`);
      return a.totals.project.pcs.covered === b.totals.project.pcs.covered ? b : null;
    });
    // The inlined code comes in a second pass once the target is ready.
    inl = await until('inlined code resolved', async () => { const x = await api<InlinedPcs>(`/api/targets/${id}/pcs`); return x.resolved ? x : null; });
    addrs = await pcTable(exe, tmp);
    frames = await symbolize(exe, addrs);
    browser = await launchChromium();
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
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

  it('the API carries each inlined PC with the function, the outermost function and the call site llvm-symbolizer-14 prints', async () => {
    expect(inl.resolved, 'the daemon resolved inlined code').to.equal(true);
    expect(inl.pcsLen).to.equal(addrs.length);
    expect(inl.pcs.length, 'a -O1 C++ build has inlined code').to.be.greaterThan(20);
    // The PCs in inlined code are exactly those llvm-symbolizer-14 gives more than one frame.
    const multi = frames.map((f, pc) => (f.length > 1 ? pc : -1)).filter((pc) => pc >= 0);
    expect(inl.pcs).to.deep.equal(multi);
    // Spread over the list: inlined PCs and as many that are not, each PC's detail against the frames.
    const plain = frames.map((f, pc) => (f.length === 1 ? pc : -1)).filter((pc) => pc >= 0);
    const every = (xs: number[], n: number) => xs.filter((_, k) => k % Math.max(1, Math.floor(xs.length / n)) === 0);
    for (const pc of [...every(inl.pcs, 40), ...every(plain, 15)]) {
      const d = await pcDetail(pc);
      const f = frames[pc]!;
      const what = `PC #${pc} ${addrs[pc]}: ${JSON.stringify(f)}`;
      expect(d.pc, what).to.equal(addrs[pc]);
      expect(d.function, what).to.equal(f[f.length - 1]!.FunctionName);
      if (f.length === 1) {
        expect(d.inlined, what).to.equal(null);
        continue;
      }
      expect(d.inlined, what).to.not.equal(null);
      expect(d.inlined!.function, what).to.equal(f[0]!.FunctionName);
      expect(d.inlined!.into, what).to.equal(f[f.length - 1]!.FunctionName);
      expect(d.inlined!.file, what).to.equal(normalize(f[f.length - 1]!.FileName));
      expect(d.inlined!.line, what).to.equal(f[f.length - 1]!.Line);
    }
  });

  it('shows demangled names in the function list, as llvm-symbolizer-14 prints them', async () => {
    await page.goto(daemon.url + `#/target/${id}`);
    await until('function rows', () => page.locator('.fns .vrow').count());
    const rows = await page.locator('.fns .vrow .fn-name').allInnerTexts();
    expect(rows.length).to.be.greaterThan(5);
    expect(rows.filter((n) => n.startsWith('_Z')), 'no mangled name').to.deep.equal([]);
    // The physical functions of inlined PCs, named by llvm-symbolizer-14 --no-inlines: each one the page lists.
    const sample = inl.pcs.filter((_, k) => k % 7 === 0).map((pc) => addrs[pc]!);
    const names = [...new Set((await symbolize(exe, sample, ['--no-inlines'])).map((f) => f[0]!.FunctionName))];
    expect(names.some((n) => n.includes('::') && n.endsWith(')')), names.join('\n')).to.equal(true);
    const filter = page.locator('.fn-panel input.filter');
    for (const n of names.slice(0, 6)) {
      await filter.fill(n);
      await until(`function row ${n}`, async () => (await page.locator('.fns .vrow .fn-name').allInnerTexts()).includes(n));
    }
    await filter.fill('');
  });

  it('keeps library files in a closed group below the project files, with the project totals and the library beside them', async () => {
    await page.goto(daemon.url + `#/target/${id}`);
    await until('tree rows', () => page.locator('.tree .t-file').count());
    const lib = detail.files.filter((f) => f.library);
    const own = detail.files.filter((f) => !f.library);
    expect(lib.length, 'libstdc++ headers in the index').to.be.greaterThan(0);
    const group = page.locator('.tree .t-dir.t-lib');
    await until('library group', () => group.count());
    expect(await group.locator('.c-name').innerText()).to.equal(`▸ Library (${lib.length} file${lib.length === 1 ? '' : 's'})`);
    expect(await group.getAttribute('aria-expanded')).to.equal('false');
    expect(Number(await group.locator('.c-size').innerText())).to.equal(detail.totals.library.pcs.total);
    // Closed: no library file is shown; every project file is, by its path relative to the project.
    const shown = async () => (await page.locator('.tree .t-file').evaluateAll((els) => els.map((e) => Number((e as unknown as { dataset: { file: string } }).dataset.file))));
    const before = new Set(await shown());
    for (const f of lib) expect(before.has(f.file), f.path).to.equal(false);
    for (const f of own) expect(before.has(f.file), f.path).to.equal(true);
    // The group comes after every project row.
    const order = await page.locator('.tree .vrow').evaluateAll((els) => els.map((e) => (e as unknown as { className: string }).className));
    expect(order.findIndex((c) => c.includes('t-lib'))).to.equal(order.length - 1);
    for (const f of own) {
      const row = page.locator(`.tree .t-file[data-file="${f.file}"]`);
      expect(await row.locator('.c-name').innerText(), f.path).to.equal(f.relPath.slice(f.relPath.lastIndexOf('/') + 1));
      expect(Number(await row.locator('.c-size').innerText()), f.path).to.equal(f.pcs.total);
    }
    // The panel's totals: the project's, then the library's.
    const pct = (c: Count) => ((100 * c.covered) / c.total).toFixed(1) + '%';
    const summary = await page.locator('.tree-panel .panel-head .muted').innerText();
    expect(summary).to.equal(`${own.length} files · ${pct(detail.totals.project.pcs)} of PCs · ${summaryLines(detail, own)} of lines · library ${pct(detail.totals.library.pcs)} of PCs`);
    await page.locator('.split').scrollIntoViewIfNeeded();
    await screenshot(page, 'cpp-tree');
    // Opened by keyboard (Right), the group shows every library file with the API's numbers.
    // From the filter box: Down to the first row, End to the last (the group), Right opens it.
    await page.locator('.tree-panel input.filter').press('ArrowDown');
    await page.keyboard.press('End');
    await until('the group focused', () => group.evaluate((e) => e === (e as unknown as { ownerDocument: { activeElement: unknown } }).ownerDocument.activeElement));
    await page.keyboard.press('ArrowRight');
    await until('library group open', async () => (await group.getAttribute('aria-expanded')) === 'true');
    // Opened: its rows follow it, one level down.
    const gi0 = Number(await group.getAttribute('data-i'));
    const next = page.locator(`.tree .vrow[data-i="${gi0 + 1}"]`);
    await until('a row inside the group', () => next.count());
    expect(await next.getAttribute('aria-level')).to.equal('2');
    // Each library file is found inside the group (filtered by its path, the group shows it).
    for (const f of lib) {
      await page.locator('.tree-panel input.filter').fill(f.path);
      await until(`${f.path} inside the library group`, async () => {
        const rows = await page.locator('.tree .vrow').evaluateAll((els) => els.map((e) => { const x = e as unknown as { className: string; dataset: { i: string; file?: string } }; return { lib: x.className.includes('t-lib'), i: Number(x.dataset.i), file: x.dataset.file }; }).sort((p, q) => p.i - q.i));
        const g = rows.find((r) => r.lib);
        const r = rows.find((r) => r.file === String(f.file));
        return g && r && r.i > g.i;
      }, 10_000);
      const row = page.locator(`.tree .t-file[data-file="${f.file}"]`);
      expect(Number(await row.locator('.c-size').innerText()), f.path).to.equal(f.pcs.total);
      expect(await row.getAttribute('title')).to.equal(`${f.path} (library)`);
    }
    await page.locator('.tree-panel input.filter').fill('');
    await until('filter cleared', async () => (await group.getAttribute('aria-expanded')) === 'true');
    await runAxe('the target page with the library group open');
    await page.locator('.tree-panel input.filter').press('ArrowDown');
    await page.keyboard.press('End');
    // End lands on the group's last row; Left climbs to the group, Left again closes it.
    for (let k = 0; k < 6 && (await group.evaluate((e) => e !== (e as unknown as { ownerDocument: { activeElement: unknown } }).ownerDocument.activeElement)); k++) await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await until('library group closed again', async () => (await group.getAttribute('aria-expanded')) === 'false');
  });

  it('says on hover which function is inlined into which, at which line', async () => {
    // An inlined PC in a project file, at the line of its innermost frame.
    const own = new Map(detail.files.filter((f) => !f.library).map((f) => [f.path, f]));
    let pick: PcDetail | undefined;
    for (const pc of inl.pcs) {
      if (!own.has(normalize(frames[pc]![0]!.FileName))) continue;
      const d = await pcDetail(pc);
      if (d.file && own.has(d.file) && d.line && d.inlined?.file) { pick = d; break; }
    }
    expect(pick, 'an inlined PC in a project file').to.not.equal(undefined);
    const f = frames[pick!.index]!;
    const outer = f[f.length - 1]!;
    const want = `${f[0]!.FunctionName} inlined into ${outer.FunctionName} at ${basename(outer.FileName)}:${outer.Line}`;
    await page.goto(daemon.url + `#/target/${id}/file/${pick!.file!.replace(/^\/+/, '')}:${pick!.line}`);
    await until('source view ready', () => page.locator('.file-page[data-ready="1"]').count());
    await until('target line marked', () => page.locator('.cm-line.cm-target-line').count());
    // (The inlined code arrives after the index: the hover is retried until it shows.)
    const heads = async () => {
      await page.mouse.move(5, 5);
      await page.locator('.cm-line.cm-target-line').hover({ position: { x: 600, y: 5 } });
      await until('PC tooltip', () => page.locator('.pc-tip').count(), 10_000);
      return page.locator('.pc-tip tr.pc-inl th').allInnerTexts();
    };
    const got = await until(`"${want}" in the tooltip`, async () => {
      const hs = await heads();
      return hs.some((h) => h.startsWith(want)) ? hs : null;
    }, 30_000, 500);
    expect(got.find((h) => h.startsWith(want))).to.match(/\d+ of \d+ seen$/);
    await screenshot(page, 'cpp-inlined-hover');
    await page.mouse.move(5, 5);
  });

  it('offers the inlined code of a function: one row per inlined function, its PCs there covered / total', async () => {
    // The function with the most inlined PCs, and what the API says is inlined into it.
    const unique = (n: string) => detail.functions.filter((f) => f.name === n).length === 1;
    const host = [...detail.functions].filter((f) => f.inlined?.length && unique(f.name)).sort((a, b) => b.inlined!.length - a.inlined!.length)[0];
    expect(host, 'a function with inlined code').to.not.equal(undefined);
    // The API's per-function figures agree with llvm-symbolizer-14: PCs whose outermost frame is
    // the host and whose innermost is the inlined function (by name: copies of one function, such
    // as a constructor's, share a demangled name).
    const apiByName = new Map<string, number>();
    for (const g of host!.inlined!) apiByName.set(g.name, (apiByName.get(g.name) ?? 0) + g.pcs.total);
    const llvmByName = new Map<string, number>();
    for (const f of frames) {
      if (f.length < 2 || f[f.length - 1]!.FunctionName !== host!.name) continue;
      llvmByName.set(f[0]!.FunctionName, (llvmByName.get(f[0]!.FunctionName) ?? 0) + 1);
    }
    expect(Object.fromEntries(apiByName)).to.deep.equal(Object.fromEntries(llvmByName));
    await page.goto(daemon.url + `#/target/${id}`);
    await until('function rows', () => page.locator('.fns .vrow').count());
    await page.locator('.fn-panel input.filter').fill(host!.name);
    const exact = new RegExp('^' + host!.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$');
    const row = page.locator('.fns .vrow:not(.fn-inl)').filter({ has: page.locator('.fn-name', { hasText: exact }) });
    await until('the host function row', async () => (await row.count()) === 1);
    await until('it can be opened', async () => (await row.getAttribute('aria-expanded')) === 'false');
    // Keyboard: Down from the filter box to the first row, on to the host row, Right opens it.
    const at = Number(await row.getAttribute('data-i'));
    await page.locator('.fn-panel input.filter').press('ArrowDown');
    for (let k = 0; k < at; k++) await page.keyboard.press('ArrowDown');
    await until('the host row focused', () => row.evaluate((e) => e === (e as unknown as { ownerDocument: { activeElement: unknown } }).ownerDocument.activeElement));
    await page.keyboard.press('ArrowRight');
    await until('inlined rows', async () => (await page.locator('.fns .vrow.fn-inl').count()) === host!.inlined!.length);
    expect(await row.getAttribute('aria-expanded')).to.equal('true');
    const shown = await page.locator('.fns .vrow.fn-inl').evaluateAll((els) => els.map((e) => {
      const q = (s: string) => (e as unknown as { querySelector(s: string): { textContent: string } }).querySelector(s).textContent;
      return { name: q('.fn-name'), missed: Number(q('.c-missed')), total: Number(q('.c-size')) };
    }));
    const want = host!.inlined!.map((g) => ({ name: g.name, missed: g.pcs.total - g.pcs.covered, total: g.pcs.total }));
    expect([...shown].sort((a, b) => a.name.localeCompare(b.name))).to.deep.equal([...want].sort((a, b) => a.name.localeCompare(b.name)));
    // The host row still counts every PC it physically holds, the inlined ones too.
    expect(Number(await row.locator('.c-size').innerText())).to.equal(host!.pcs.total);
    expect(host!.pcs.total).to.be.at.least(host!.inlined!.reduce((s, g) => s + g.pcs.total, 0));
    await page.locator('.split').scrollIntoViewIfNeeded();
    await screenshot(page, 'cpp-inlined-code');
    await runAxe('the function list with inlined code open');
    await page.keyboard.press('ArrowLeft');
    await until('inlined rows hidden', async () => (await page.locator('.fns .vrow.fn-inl').count()) === 0);
  });
});

/** The lines figure of the tree's summary for these files: lines with a seen PC over instrumented lines, from the JSON export's view. */
function summaryLines(d: Detail, own: Detail['files']): string {
  const files = d.files as unknown as { file: number; lines: Count }[];
  const set = new Set(own.map((f) => f.file));
  let c = 0, t = 0;
  for (const f of files) if (set.has(f.file)) { c += f.lines.covered; t += f.lines.total; }
  return t ? ((100 * c) / t).toFixed(1) + '%' : '–';
}
