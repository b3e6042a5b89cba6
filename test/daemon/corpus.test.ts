/**
 * libFuzzer's corpus size in the API (GET /api/targets/:id/corpus): examples/tinyimg built with
 * the agent, run by libFuzzer with a relative corpus directory (resolved against the cwd the
 * agent writes into the metadata) and an absolute one, against a real `covd serve`. The daemon's
 * count must be the directories' own: top-level regular files and their bytes, after libFuzzer
 * added its new inputs to the first one. And the inputs service itself (every `corpusMs`, here
 * 200 ms): a new file is counted, a directory whose ino and mtime did not move keeps its count,
 * a fleet target fuzzed elsewhere (no coverage file here) is not counted from the daemon's cwd.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildExampleTarget, findCoverageFile, exampleDir } from '../../src/build/targets.js';
import type { CorpusInfo } from '../../src/contracts/inputs.js';
import { pollUntil, startServe, type ServeProcess } from './helpers.js';
import { scratchDirs, until } from '../helpers/scratch.js';
import { InputsService } from '../../src/daemon/inputs.js';
import { TargetRegistry } from '../../src/daemon/registry.js';
import { createSymbolizerPool } from '../../src/workers/pool.js';
import { createLogger } from '../../src/util/log.js';

function count(dir: string): { files: number; bytes: number } {
  let files = 0, bytes = 0;
  for (const n of readdirSync(dir)) {
    const st = statSync(join(dir, n));
    if (!st.isFile()) continue;
    files++;
    bytes += st.size;
  }
  return { files, bytes };
}

describe('daemon: libFuzzer corpus size', function () {
  this.timeout(300_000);
  const scratch = scratchDirs();
  let d: ServeProcess | undefined;
  after(async () => { if (d) { d.child.kill('SIGKILL'); await d.exited; } });

  it('counts the corpus directories of the fuzzer\'s argv, relative ones against its cwd', async () => {
    const exe = await buildExampleTarget();
    const dir = scratch();
    const socket = join(dir, 'covd.sock');
    d = await startServe({ socket, stateDir: join(dir, 'state') });
    const work = join(dir, 'work');
    mkdirSync(work);
    cpSync(join(exampleDir(), 'corpus'), join(work, 'corpus'), { recursive: true });
    const extra = join(dir, 'extra');
    mkdirSync(join(extra, 'sub'), { recursive: true });
    writeFileSync(join(extra, 'a'), 'TIMG');
    writeFileSync(join(extra, 'b'), 'TIMG0123456789');
    writeFileSync(join(extra, 'sub', 'c'), 'not at the top level');
    const covDir = join(dir, 'cov');
    const child = spawn(exe, ['-max_total_time=6', 'corpus', extra], { cwd: work, env: { ...process.env, COVD_DIR: covDir, COVD_SOCKET: socket }, stdio: 'ignore' });
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).to.equal(0);
    const exitedAt = Date.now();
    const file = await findCoverageFile(covDir);
    const id = file.split('/').pop()!;
    const meta = JSON.parse(readFileSync(`${file}.meta.json`, 'utf8')) as { cwd: string; argv: string[] };
    expect(meta.cwd).to.equal(work);

    const want = { corpus: count(join(work, 'corpus')), extra: count(extra) };
    expect(want.corpus.files, 'libFuzzer added inputs to the first corpus directory').to.be.greaterThan(readdirSync(join(exampleDir(), 'corpus')).length);
    expect(want.extra).to.deep.equal({ files: 2, bytes: 18 });
    // Counted every 30 s: wait for a count made after the fuzzer stopped.
    const c = await pollUntil('a corpus count after the run', async () => {
      const r = await fetch(`${d!.url}api/targets/${id}/corpus`);
      if (r.status !== 200) return undefined;
      const x = (await r.json()) as CorpusInfo;
      return x.updatedAt > exitedAt ? x : undefined;
    }, 60_000, 500);
    expect(c.dirs).to.deep.equal([
      { path: join(work, 'corpus'), ...want.corpus },
      { path: extra, ...want.extra },
    ]);
    expect(c.files).to.equal(want.corpus.files + want.extra.files);
    expect(c.bytes).to.equal(want.corpus.bytes + want.extra.bytes);
    // An unknown target is a 404.
    expect((await fetch(`${d.url}api/targets/nope/corpus`)).status).to.equal(404);
  });

  it('the inputs service: counts every corpusMs, keeps an unchanged directory\'s count, skips fleet targets', async () => {
    const dir = scratch();
    const corpus = join(dir, 'corpus');
    mkdirSync(corpus);
    for (const [n, b] of [['a', 'xx'], ['b', 'yyyy'], ['c', 'z']]) writeFileSync(join(corpus, n!), b!);
    mkdirSync(join(corpus, 'sub'));
    const v = join(dir, 'cov', 'v');
    mkdirSync(v, { recursive: true });
    const ID = '00112233445566c1', REMOTE = '00112233445566c2';
    const file = join(v, ID);
    writeFileSync(file, Buffer.alloc(64));
    writeFileSync(`${file}.meta.json`, JSON.stringify({ exe: '/bin/true', buildId: null, pid: process.pid, startTime: Date.now(), argv: ['./fuzz', '-runs=1', 'corpus'], cwd: dir }));
    // What a fleet target (coverageFile '') would read if it were counted: ./.meta.json of the daemon's cwd.
    const cwd = join(dir, 'cwd');
    mkdirSync(cwd);
    writeFileSync(join(cwd, '.meta.json'), JSON.stringify({ exe: '/bin/true', buildId: null, pid: process.pid, startTime: Date.now(), argv: ['./fuzz', corpus] }));
    const registry = new TargetRegistry();
    registry.add({ id: ID, exe: '/bin/true', coverageFile: file, pcsLen: 1 });
    registry.addRemote({ id: REMOTE, name: 'fuzz', exe: '/bin/true', buildId: null, pcsLen: 1, pcsHash: '0'.repeat(16) });
    const pool = createSymbolizerPool({ threads: 1 });
    const was = process.cwd();
    process.chdir(cwd);
    const svc = InputsService.start({ stateDir: join(dir, 'state'), registry, symbolizer: pool, log: createLogger({ level: 'silent' }), pollMs: 50, corpusMs: 200 });
    try {
      const first = await until(() => svc.corpus(ID), 'the first count', 20_000);
      expect(first.dirs).to.deep.equal([{ path: corpus, files: 3, bytes: 7 }]);
      // A file grown in place leaves the directory's mtime: the count is kept (confirmed, not redone).
      appendFileSync(join(corpus, 'a'), '123');
      const grownAt = Date.now();
      const kept = await until(() => { const c = svc.corpus(ID); return c && c.updatedAt > grownAt + 50 ? c : undefined; }, 'a later count', 20_000);
      expect(kept.dirs).to.deep.equal([{ path: corpus, files: 3, bytes: 7 }]);
      // A new file moves the mtime: counted again, every size read anew.
      writeFileSync(join(corpus, 'd'), '12345');
      const again = await until(() => { const c = svc.corpus(ID); return c && c.files === 4 ? c : undefined; }, 'the new file counted', 20_000);
      expect(again.dirs).to.deep.equal([{ path: corpus, files: 4, bytes: 15 }]);
      expect(again.bytes).to.equal(15);
      // The fleet target had as many chances, and got no count.
      expect(svc.corpus(REMOTE)).to.equal(undefined);
    } finally {
      process.chdir(was);
      await svc.close();
      await pool.destroy();
    }
  });
});
