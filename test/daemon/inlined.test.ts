/**
 * The inlined code of a C++ target through the daemon (examples/iniparse, clang-14 -O2): the
 * target is ready after the plain resolve, the inlined code (pcInlined, call sites) follows in
 * a second pass, and the stored index keeps it, so a restarted daemon serves it without
 * resolving again.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { basename, join } from 'node:path';
import { buildCppExampleTarget, findCoverageFile, runFuzzer } from '../../src/build/targets.js';
import { startServe, pollUntil, type ServeProcess } from './helpers.js';
import { INLINED_ADDED } from '../../src/daemon/dispatch.js';

interface InlinedPcs { resolved: boolean; pcsLen: number; pcs: number[]; function: number[]; callFile: number[]; callLine: number[] }

describe('inlined code through the daemon: a second pass, stored', function () {
  this.timeout(240_000);
  let dir: string;
  let d: ServeProcess | undefined;
  before(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-inl-')); });
  after(async () => {
    if (d) { d.child.kill('SIGKILL'); await d.exited; }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('resolves the inlined code after the target is ready and serves it from the store after a restart', async () => {
    const exe = await buildCppExampleTarget({ cflags: ['-O2'] });
    const socket = join(dir, 'covd.sock'), stateDir = join(dir, 'state');
    d = await startServe({ socket, stateDir });
    const cd = join(dir, 'cd');
    const r = await runFuzzer(exe, { covdDir: cd, socket, runs: 2000 }).done;
    expect(r.code, r.stderr.slice(-500)).to.equal(0);
    const id = basename(await findCoverageFile(cd));
    await pollUntil('ready', async () => (await d!.list()).find((t) => t.id === id && t.state === 'ready'));
    const pass = await d.waitForLine((l) => l.msg === INLINED_ADDED && l.id === id, 'the second pass');
    const first = await d.waitForLine((l) => l.msg === 'symbolized' && l.id === id, 'the first pass');
    expect(d.lines.indexOf(first)).to.be.lessThan(d.lines.indexOf(pass));
    const got = (await (await fetch(`${d.url}api/targets/${id}/pcs`)).json()) as InlinedPcs;
    expect(got.resolved).to.equal(true);
    expect(got.pcs.length, 'a -O2 C++ build has inlined code').to.be.greaterThan(100);
    expect(got.callLine.every((l) => l > 0), 'every call site has a line').to.equal(true);

    // Restarted on the same state: the stored index has the inlined code, so nothing is resolved.
    await d.stop();
    d = await startServe({ socket, stateDir });
    const again = await runFuzzer(exe, { covdDir: cd, socket, runs: 200 }).done;
    expect(again.code).to.equal(0);
    await pollUntil('ready after the restart', async () => (await d!.list()).find((t) => t.id === id && t.state === 'ready'));
    const restored = (await (await fetch(`${d.url}api/targets/${id}/pcs`)).json()) as InlinedPcs;
    expect(restored).to.deep.equal(got);
    await new Promise((res) => setTimeout(res, 1000));
    expect(d.lines.filter((l) => l.id === id && (l.msg === 'symbolized' || l.msg === INLINED_ADDED)), 'resolved again after the restart').to.deep.equal([]);
  });
});
