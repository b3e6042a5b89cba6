/**
 * The daemon end to end: real agent-instrumented libFuzzer targets, `covd serve` as a child
 * process, the control socket and --watch discovery, restart from the lmdb store.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildExampleTarget, runFuzzer, findCoverageFile } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { request } from '../../src/daemon/client.js';
import { spawnSync } from 'node:child_process';
import { startServe, pollUntil, countBits, covdBin, type ServeProcess } from './helpers.js';

describe('daemon end to end', function () {
  this.timeout(300_000);
  let dir: string;
  let exe: string;
  const running: ServeProcess[] = [];
  const fuzzers: ReturnType<typeof runFuzzer>[] = [];
  /** runFuzzer, remembered so a failing test still stops it. */
  const fuzz = (...a: Parameters<typeof runFuzzer>) => { const f = runFuzzer(...a); fuzzers.push(f); return f; };

  before(async () => { exe = await buildExampleTarget(); });
  beforeEach(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-')); });
  afterEach(async () => {
    for (const d of running.splice(0)) { d.child.kill('SIGKILL'); await d.exited; }
    for (const f of fuzzers.splice(0)) { f.child.kill('SIGKILL'); await f.done; }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('control socket: two fuzzers make one target whose count equals the file; a restart keeps it and its history', async () => {
    const socket = join(dir, 'covd.sock');
    const stateDir = join(dir, 'state');
    const covDir = join(dir, 'cov');
    let d = await startServe({ socket, stateDir });
    running.push(d);
    expect(fs.statSync(socket).mode & 0o777).to.equal(0o600);

    // Two fuzzer processes on one executable, both announcing over the socket.
    const a = fuzz(exe, { covdDir: covDir, socket, seconds: 4 });
    const b = fuzz(exe, { covdDir: covDir, socket, seconds: 4 });
    const ready = await pollUntil('a ready target', async () => (await d.list()).find((t) => t.state === 'ready'));
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code, ra.stderr.slice(-500)).to.equal(0);
    expect(rb.code, rb.stderr.slice(-500)).to.equal(0);
    const file = await findCoverageFile(covDir);
    const onDisk = readCoverageFile(file);
    const want = countBits(onDisk.seen);
    expect(want).to.be.greaterThan(10);

    const final = await pollUntil('the daemon to catch up with the file', async () => {
      const t = (await d.list()).find((x) => x.id === ready.id)!;
      return t.stats.covered === want && t.stats.nRuns === Number(onDisk.header.nRuns) ? t : undefined;
    });
    const targets = await d.list();
    expect(targets).to.have.length(1);
    expect(final.id).to.equal(file.split('/').pop());
    expect(final.stats.pcsLen).to.equal(onDisk.header.pcsLen);
    expect(final.stats.uniqueRuns).to.equal(Number(onDisk.header.uniqueRuns));
    // Both processes were announced; still one target.
    expect(d.lines.filter((l) => l.msg === 'new target')).to.have.length(1);

    const hist1 = (await (await fetch(`${d.url}api/targets/${final.id}/history`)).json()) as { samples: { t: number; covered: number }[] };
    expect(hist1.samples.length).to.be.greaterThan(0);

    // SIGTERM: clean exit 0 (the daemon itself exits 1 if stopping takes over 5 s).
    const ex = await d.stop();
    expect(ex.code).to.equal(0);
    expect(fs.existsSync(socket)).to.equal(false);

    // Restart on the same state: the target, its coverage and its history are back.
    d = await startServe({ socket, stateDir });
    running.push(d);
    const back = (await d.list()).find((t) => t.id === final.id);
    expect(back, 'target restored').to.not.equal(undefined);
    expect(back!.state).to.equal('ready');
    expect(back!.stats.covered).to.equal(want);
    expect(back!.stats.nRuns).to.equal(final.stats.nRuns);
    const hist2 = (await (await fetch(`${d.url}api/targets/${final.id}/history`)).json()) as { samples: { t: number; covered: number }[] };
    expect(hist2.samples.length).to.be.at.least(hist1.samples.length);
    expect(hist2.samples[0]!.t).to.equal(hist1.samples[0]!.t);
    expect(hist2.samples[hist2.samples.length - 1]!.covered).to.equal(want);
    // Symbolization came from the store, not from parsing DWARF again.
    expect(d.lines.some((l) => l.msg === 'symbolized')).to.equal(false);

    // The command-line clients against this daemon.
    const covd = (...args: string[]) => spawnSync(process.execPath, [covdBin, ...args, '--socket', socket], { encoding: 'utf8' });
    const listed = covd('list');
    expect(listed.status).to.equal(0);
    expect(listed.stdout).to.contain(final.id).and.contain(`${want}/${final.stats.pcsLen}`);
    const status = covd('status', '--json');
    expect(status.status).to.equal(0);
    expect(JSON.parse(status.stdout).targets.ready).to.equal(1);
    expect(covd('remove', final.id).status).to.equal(0);
    expect(await d.list()).to.have.length(0);
    const readd = covd('add', file);
    expect(readd.status, readd.stderr).to.equal(0);
    await pollUntil('the re-added target', async () => (await d.list()).find((t) => t.id === final.id && t.state === 'ready' && t.stats.covered === want));
    const none = spawnSync(process.execPath, [covdBin, 'list', '--socket', join(dir, 'absent.sock')], { encoding: 'utf8' });
    expect(none.status).to.equal(1);
    expect(none.stderr).to.match(/no daemon is listening/);
    expect((await d.stop()).code).to.equal(0);
  });

  it('--watch: discovers a coverage directory that appears after start, and SIGHUP adds watched directories', async () => {
    const socket = join(dir, 'covd.sock');
    const covDir = join(dir, 'later');
    const covDir2 = join(dir, 'second');
    const config = join(dir, 'covd.json');
    fs.writeFileSync(config, JSON.stringify({ watch: [covDir] }));
    const d = await startServe({ socket, stateDir: join(dir, 'state'), extra: ['--config', config] });
    running.push(d);
    // No socket for the agent: discovery must come from the watcher. The directory does not exist yet.
    const f = fuzz(exe, { covdDir: covDir, socket: join(dir, 'nobody.sock'), seconds: 2 });
    expect((await f.done).code).to.equal(0);
    const file = await findCoverageFile(covDir);
    const want = countBits(readCoverageFile(file).seen);
    await pollUntil('the watched target to match the file', async () => {
      const t = (await d.list()).find((x) => x.coverageFile === file);
      return t?.state === 'ready' && t.stats.covered === want;
    });

    // A second directory, added by editing the config file and sending SIGHUP.
    const exeO2 = await buildExampleTarget({ cflags: ['-O2'] });
    fs.writeFileSync(config, JSON.stringify({ watch: [covDir, covDir2], logLevel: 'info' }));
    d.child.kill('SIGHUP');
    await d.waitForLine((l) => l.msg === 'configuration reloaded', 'the reload line');
    const g = fuzz(exeO2, { covdDir: covDir2, socket: join(dir, 'nobody.sock'), runs: 20000 });
    expect((await g.done).code).to.equal(0);
    const file2 = await findCoverageFile(covDir2);
    await pollUntil('the second directory\'s target', async () => (await d.list()).find((x) => x.coverageFile === file2 && x.state === 'ready'));
    expect(await d.list()).to.have.length(2);
    // SIGINT stops it as cleanly as SIGTERM.
    d.child.kill('SIGINT');
    expect((await d.exited).code).to.equal(0);
    expect(d.lines.some((l) => l.msg === 'signal received; stopping' && l.signal === 'SIGINT')).to.equal(true);
  });

  it('bad inputs fail one target each with a clear reason; the daemon serves the rest', async () => {
    const socket = join(dir, 'covd.sock');
    const d = await startServe({ socket, stateDir: join(dir, 'state') });
    running.push(d);
    const covDir = join(dir, 'cov');
    const stage = join(dir, 'stage');

    // A healthy target.
    const good = fuzz(exe, { covdDir: covDir, socket, seconds: 60 });
    const healthy = await pollUntil('the healthy target', async () => (await d.list()).find((t) => t.state === 'ready'));
    const goodFile = healthy.coverageFile;

    // An executable without debug info (a stripped copy of a different build, so a different PC list).
    const o0 = await buildExampleTarget({ cflags: ['-O0'] });
    const stripped = join(dir, 'fuzz_stripped');
    fs.copyFileSync(o0, stripped);
    fs.chmodSync(stripped, 0o755);
    const { execFileSync } = await import('node:child_process');
    execFileSync('objcopy', ['--strip-debug', stripped]);
    const s = fuzz(stripped, { covdDir: join(stage, 's'), socket: join(dir, 'nobody.sock'), runs: 2000 });
    expect((await s.done).code).to.equal(0);
    const strippedFile = await findCoverageFile(join(stage, 's'));

    // A deleted executable: a copy of yet another build, run once, then removed.
    const o2 = await buildExampleTarget({ cflags: ['-O2'] });
    const doomed = join(dir, 'fuzz_doomed');
    fs.copyFileSync(o2, doomed);
    fs.chmodSync(doomed, 0o755);
    const g = fuzz(doomed, { covdDir: join(stage, 'g'), socket: join(dir, 'nobody.sock'), runs: 2000 });
    expect((await g.done).code).to.equal(0);
    const doomedFile = await findCoverageFile(join(stage, 'g'));
    fs.rmSync(doomed);

    // A corrupt coverage file (size fits no layout) and a truncated copy of the healthy one.
    const corrupt = join(stage, 'aaaaaaaaaaaaaaaa');
    const bytes = fs.readFileSync(goodFile);
    fs.writeFileSync(corrupt, Buffer.concat([bytes, Buffer.alloc(13, 0xff)]));
    const truncated = join(stage, 'bbbbbbbbbbbbbbbb');
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));

    const add = (id: string, file: string, e: string) => request(socket, { type: 'coverage', id, exe: e, file });
    const idOf = (f: string) => f.split('/').pop()!;
    for (const [file, e] of [[strippedFile, stripped], [doomedFile, doomed], [corrupt, exe], [truncated, exe]] as const) {
      const r = await add(idOf(file), file, e);
      expect(r.ok, JSON.stringify(r)).to.equal(true);
    }
    // Garbage on the socket gets an error reply, not a crash.
    const bad = await request(socket, { type: 'coverage', id: 'nothex', exe: 'rel', file: 'x' } as never);
    expect(bad.ok).to.equal(false);

    const failed = await pollUntil('four failed targets', async () => {
      const f = (await d.list()).filter((t) => t.state === 'failed');
      return f.length === 4 ? f : undefined;
    }, 120_000);
    const reason = (file: string) => failed.find((t) => t.id === idOf(file))!.error!;
    expect(reason(strippedFile)).to.match(/no debug info/);
    expect(reason(doomedFile)).to.match(/does not exist/);
    expect(reason(corrupt)).to.match(/coverage file .* unusable \(BAD_SIZE\)/);
    expect(reason(truncated)).to.match(/coverage file .* unusable \(SHORT\)/);

    // The healthy one is still served and still moving.
    const before = (await d.list()).find((t) => t.id === healthy.id)!;
    expect(before.state).to.equal('ready');
    await pollUntil('the healthy target to keep counting runs', async () => ((await d.list()).find((t) => t.id === healthy.id)!.stats.nRuns > before.stats.nRuns));
    const st = await request(socket, { type: 'status' });
    expect(st.ok).to.equal(true);
    good.child.kill('SIGINT');
    await good.done;
    expect((await d.stop()).code).to.equal(0);
  });
});
