/**
 * A C++ target end to end (examples/iniparse through `covd serve`): demangled function names
 * with their linkage names kept, normalised paths, the standard library's headers kept apart as
 * library code, and an lcov export that keeps the mangled names and leaves the library out.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildCppExampleTarget, findCoverageFile, runFuzzer } from '../../src/build/targets.js';
import { startServe, pollUntil, type ServeProcess } from './helpers.js';

interface Fn { name: string; linkageName?: string; pcs: { covered: number } }
interface File { path: string; library: boolean; relPath: string }

describe('a C++ target through the daemon', function () {
  this.timeout(240_000);
  let dir: string;
  let d: ServeProcess | undefined;
  before(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-cpp-')); });
  after(async () => {
    if (d) { d.child.kill('SIGKILL'); await d.exited; }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows demangled names, keeps linkage names, and keeps libstdc++ apart', async () => {
    const exe = await buildCppExampleTarget();
    const socket = join(dir, 'covd.sock');
    d = await startServe({ socket, stateDir: join(dir, 'state') });
    const cd = join(dir, 'cd');
    const r = await runFuzzer(exe, { covdDir: cd, socket, runs: 5000 }).done;
    expect(r.code, r.stderr.slice(-500)).to.equal(0);
    const id = (await findCoverageFile(cd)).split('/').pop()!;
    await pollUntil('ready', async () => (await d!.list()).find((t) => t.id === id && t.state === 'ready'));
    const t = (await (await fetch(`${d.url}api/targets/${id}`)).json()) as { functions: Fn[]; files: File[]; totals: { project: { pcs: { total: number } }; library: { pcs: { total: number } } } };

    const feed = t.functions.find((f) => f.name.startsWith('bool ini::Parser<') && f.name.includes('::feed<'));
    expect(feed, t.functions.map((f) => f.name).slice(0, 20).join('\n')).to.not.equal(undefined);
    expect(feed!.name).to.match(/\)$/);
    expect(feed!.linkageName).to.match(/^_ZN3ini6Parser/);
    expect(t.functions.some((f) => f.name.startsWith('_Z')), 'no name left mangled').to.equal(false);

    expect(t.files.some((f) => f.path.includes('/../')), 'paths normalised').to.equal(false);
    const lib = t.files.filter((f) => f.library);
    expect(lib.length, 'libstdc++ headers').to.be.greaterThan(0);
    expect(lib.every((f) => f.path.startsWith('/usr/'))).to.equal(true);
    const own = t.files.filter((f) => !f.library);
    expect(own.map((f) => f.relPath).sort()).to.include.members(['document.cpp', 'lexer.cpp']);
    expect(t.totals.library.pcs.total).to.be.greaterThan(0);
    expect(t.totals.project.pcs.total).to.be.greaterThan(0);

    const lcov = await (await fetch(`${d.url}api/targets/${id}/coverage?format=lcov`)).text();
    const fn = lcov.split('\n').filter((l) => l.startsWith('FN:'));
    expect(fn.some((l) => l.includes(',_ZN3ini'))).to.equal(true);
    expect(lcov.split('\n').filter((l) => l.startsWith('SF:')).some((l) => l.startsWith('SF:/usr/'))).to.equal(false);
    const all = await (await fetch(`${d.url}api/targets/${id}/coverage?format=lcov&library=1`)).text();
    expect(all.split('\n').filter((l) => l.startsWith('SF:')).some((l) => l.startsWith('SF:/usr/'))).to.equal(true);
  });
});
