/**
 * Source paths have one owner (src/contracts/paths.ts): lexical normalisation, and an
 * out-of-tree build (`cd build && covd cc ../src/*.c`) that the registry, the API, lcov and
 * /source all spell the same way, without `..`.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { exampleDir, findCoverageFile, runFuzzer } from '../../src/build/targets.js';
import { joinSourcePath, normalizePath, sourcePathOf } from '../../src/contracts/paths.js';
import { startServe, pollUntil, covdBin, type ServeProcess } from './helpers.js';

describe('source paths', function () {
  this.timeout(240_000);

  it('normalises lexically, as POSIX does', () => {
    const cases: [string, string][] = [
      ['/a/build/../src/a.c', '/a/src/a.c'],
      ['/a/./b//c.c', '/a/b/c.c'],
      ['/../x.c', '/x.c'],
      ['/a/b/../../../c', '/c'],
      ['a/../../b.c', '../b.c'],
      ['./a.c', 'a.c'],
      ['.', '.'],
      ['a/b/..', 'a'],
      ['/usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/basic_string.h', '/usr/include/c++/12/bits/basic_string.h'],
    ];
    for (const [p, want] of cases) expect(normalizePath(p), p).to.equal(want);
    expect(joinSourcePath('/p/build', '../src/a.c')).to.equal('/p/src/a.c');
    expect(joinSourcePath('/p/build', '/abs/../x.c')).to.equal('/x.c');
    expect(joinSourcePath('', 'rel.c')).to.equal('rel.c');
    const ix = { directories: ['/p/build', '/q'], files: ['../src/a.c', 'b.c'], fileDirs: Uint32Array.of(0, 1) };
    expect(sourcePathOf(ix, 0)).to.equal('/p/src/a.c');
    expect(sourcePathOf(ix, 1)).to.equal('/q/b.c');
    expect(sourcePathOf(ix, 2)).to.equal('');
    expect(sourcePathOf(ix, -1)).to.equal('');
  });

  describe('an out-of-tree build', () => {
    let dir: string;
    let d: ServeProcess | undefined;
    before(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-paths-')); });
    after(async () => {
      if (d) { d.child.kill('SIGKILL'); await d.exited; }
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('is served by /source, listed by the API and exported by lcov with the normalised path', async () => {
      const src = join(dir, 'proj', 'src');
      const build = join(dir, 'proj', 'build');
      fs.cpSync(exampleDir(), src, { recursive: true });
      fs.mkdirSync(build);
      const sources = ['fuzz_tinyimg.c', 'decode.c', 'meta.c'].map((f) => `../src/${f}`);
      const cc = spawnSync(process.execPath, [covdBin, 'cc', '-o', 'fuzz_tinyimg', ...sources], { cwd: build, encoding: 'utf8' });
      expect(cc.status, cc.stderr).to.equal(0);
      const exe = join(build, 'fuzz_tinyimg');
      // The debug info really spells the path with '..' (as llvm-symbolizer shows it).
      const dump = spawnSync('llvm-dwarfdump-14', ['--debug-line', exe], { encoding: 'utf8', maxBuffer: 64 << 20 });
      expect(dump.stdout).to.include('../src/decode.c');

      const cd = join(dir, 'cd');
      const socket = join(dir, 'covd.sock');
      d = await startServe({ socket, stateDir: join(dir, 'state') });
      const r = await runFuzzer(exe, { covdDir: cd, socket, runs: 3000, corpus: join(src, 'corpus') }).done;
      expect(r.code, r.stderr.slice(-400)).to.equal(0);
      const id = (await findCoverageFile(cd)).split('/').pop()!;
      await pollUntil('the target ready', async () => (await d!.list()).find((t) => t.id === id && t.state === 'ready'));

      const want = join(src, 'decode.c');
      const detail = (await (await fetch(`${d.url}api/targets/${id}`)).json()) as { files: { file: number; path: string }[] };
      const paths = detail.files.map((f) => f.path);
      expect(paths.some((p) => p.includes('/../') || p.includes('/./'))).to.equal(false);
      const decode = detail.files.find((f) => f.path === want);
      expect(decode, `API paths: ${paths.join(', ')}`).to.not.equal(undefined);

      const text = await (await fetch(`${d.url}api/targets/${id}/source?file=${decode!.file}`)).text();
      expect(text).to.equal(fs.readFileSync(want, 'utf8'));

      const lcov = await (await fetch(`${d.url}api/targets/${id}/coverage?format=lcov`)).text();
      const sf = lcov.split('\n').filter((l) => l.startsWith('SF:')).map((l) => l.slice(3));
      expect(sf).to.include(want);
      expect(sf.some((p) => p.includes('/../'))).to.equal(false);
    });
  });
});
