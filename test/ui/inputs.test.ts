/**
 * The page's inputs and crashes (ui/src/inputs.ts) in chromium against a real `covd serve` and
 * real libFuzzer targets: clicking a covered line shows the input that first reached it (with a
 * preview of its bytes, a download link and the replay command); the target view shows the
 * timeline of inputs that found new coverage and the crash groups, whose stack links to the line.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildExampleTarget, findCoverageFile, runFuzzer } from '../helpers/fuzz-targets.js';
import { buildMagicbugTarget, magicbugCrashLine, magicbugDir } from '../helpers/crash-target.js';
import type { CrashGroup, InputSummary, PcDetail } from '../../src/contracts/inputs.js';
import { ConsoleWatch, launchChromium, screenshot, startDaemon, until, type Daemon } from './browser.js';

describe('browser UI: inputs and crashes', function () {
  this.timeout(300_000);
  let tmp: string;
  let daemon: Daemon;
  let browser: Browser;
  let page: Page;
  let tiny: string, bug: string;
  const consoleErrors = new ConsoleWatch();
  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(new URL(path, daemon.url));
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return (await r.json()) as T;
  };

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'covd-ui-inputs-'));
    const cd = join(tmp, 'cd');
    daemon = await startDaemon({ stateDir: join(tmp, 'state'), socket: join(tmp, 'covd.sock'), watch: [cd] });
    const exe = await buildExampleTarget();
    await runFuzzer(exe, { covdDir: cd, socket: join(tmp, 'covd.sock'), runs: 40_000, extraArgs: ['-seed=9'] }).done;
    tiny = (await findCoverageFile(cd)).split('/').pop()!;
    const bugExe = await buildMagicbugTarget();
    cpSync(join(magicbugDir(), 'corpus'), join(tmp, 'corpus'), { recursive: true });
    await runFuzzer(bugExe, { covdDir: cd, socket: join(tmp, 'covd.sock'), seconds: 120, corpus: join(tmp, 'corpus') }).done;
    bug = await until('the crash target', async () => (await api<{ targets: { id: string; name: string; state: string }[] }>('/api/targets')).targets.find((t) => t.name === 'fuzz_magicbug' && t.state === 'ready')?.id);
    await until('the crash group', async () => (await api<{ crashes: CrashGroup[] }>(`/api/targets/${bug}/crashes`)).crashes.length > 0);
    await until('the inputs', async () => (await api<{ inputs: InputSummary[] }>(`/api/targets/${tiny}/inputs`)).inputs.length > 5);
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    consoleErrors.watch(page);
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
  afterEach(() => consoleErrors.check());

  it('clicking a covered line shows the input that first reached it: preview, download, replay command', async () => {
    // A covered line in decode.c, from the API.
    let pc: PcDetail | undefined;
    for (let i = 0; i < 300 && !pc; i++) {
      const p = await api<PcDetail>(`/api/targets/${tiny}/pcs/${i}`).catch(() => undefined);
      if (p?.input && p.line && p.file?.endsWith('decode.c')) pc = p;
    }
    expect(pc, 'a covered PC in decode.c').to.not.equal(undefined);
    const path = pc!.file!.replace(/^\//, '');
    await page.goto(`${daemon.url}#/target/${tiny}/file/${path}:${pc!.line}`);
    // Click only once the view is ready (laid out and scrolled to the line): earlier, the gutter may
    // still be redrawn under the click.
    await until('source view ready', () => page.locator('.file-page[data-ready="1"]').count());
    const num = page.locator('.cm-lineNumbers .cm-gutterElement', { hasText: new RegExp(`^${pc!.line}$`) });
    await num.first().click();
    // The line's first input: the earliest of its PCs' first inputs.
    const card = page.locator('.line-inputs .input-card').first();
    await card.waitFor({ timeout: 20_000 });
    const hash = await card.getAttribute('data-hash');
    expect(hash).to.match(/^[0-9a-f]{40}$/);
    await until('the preview', async () => !/loading/.test(await card.locator('.hexdump').innerText()));
    const bytes = Buffer.from(await (await fetch(new URL(`/api/targets/${tiny}/inputs/${hash}`, daemon.url))).arrayBuffer());
    const preview = await card.locator('.hexdump').innerText();
    if (bytes.length) expect(preview).to.include(bytes.subarray(0, 8).toString('hex').replace(/(..)(?=.)/g, '$1 '));
    else expect(preview).to.include('empty input');
    expect(await card.locator('code.replay').innerText()).to.equal(`./fuzz_tinyimg path/to/${hash}`);
    const href = await card.locator('a[download]').getAttribute('href');
    expect(href).to.equal(`/api/targets/${tiny}/inputs/${hash}`);
    expect(await card.innerText()).to.match(new RegExp(`${bytes.length} bytes`));
    await screenshot(page, 'inputs-line');
  });

  it('the target view has the timeline of inputs that found new coverage', async () => {
    await page.goto(`${daemon.url}#/target/${tiny}`);
    const { inputs } = await api<{ inputs: InputSummary[] }>(`/api/targets/${tiny}/inputs`);
    await page.locator('.inputs-timeline svg circle').first().waitFor();
    expect(await page.locator('.inputs-timeline svg circle').count()).to.equal(inputs.length);
    expect(await page.locator('.inputs-timeline tr').first().getAttribute('data-hash')).to.equal(inputs[0]!.hash);
    await page.locator('.inputs-timeline').scrollIntoViewIfNeeded();
    await screenshot(page, 'inputs-timeline');
  });

  it('the crashes panel shows the group, its input and a stack linked to the crashing line', async () => {
    await page.goto(`${daemon.url}#/target/${bug}`);
    const group = page.locator('.crashes details.crash').first();
    await group.waitFor({ timeout: 20_000 });
    expect(await group.getAttribute('data-signature')).to.equal('signal:SIGSEGV | store | magicbug_parse | LLVMFuzzerTestOneInput');
    await group.locator('summary').click();
    const { crashes } = await api<{ crashes: CrashGroup[] }>(`/api/targets/${bug}/crashes`);
    expect(await group.locator('code.replay').innerText()).to.equal(`./fuzz_magicbug path/to/${crashes[0]!.input!.hash}`);
    const crash = magicbugCrashLine();
    const link = group.locator('.frames li.project a').first();
    expect(await link.innerText()).to.match(new RegExp(`magicbug\\.c:${crash.line}:`));
    await screenshot(page, 'inputs-crashes');
    await link.click();
    await page.locator('.file-page[data-ready="1"]').waitFor();
    expect(decodeURIComponent(new URL(page.url()).hash)).to.match(new RegExp(`magicbug\\.c:${crash.line}$`));
  });
});
