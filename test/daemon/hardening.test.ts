/**
 * The attack run's defects, each reproduced against the real daemon (`covd serve` as a child
 * process, a real agent-instrumented libFuzzer target, real FIFOs, symlinks and sockets).
 * Throughout every case /healthz must answer within 1 s, and the healthy target's coverage,
 * history and line totals must not change because of what the case did to other files.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildExampleTarget, runFuzzer, findCoverageFile } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { writeCoverageFile } from '../../src/coverage/writer.js';
import { writeCoverageMeta } from '../../src/coverage/meta.js';
import { pcTableHash } from '../../src/contracts/ids.js';
import { request } from '../../src/daemon/client.js';
import type { TargetInfo } from '../../src/contracts/hub.js';
import { startServe, pollUntil, type ServeProcess } from './helpers.js';

const isRoot = process.getuid?.() === 0;

/** Probes /healthz every 100 ms; `worst` is the slowest answer (a timeout counts as 5000 ms). */
function watchHealth(url: string) {
  let worst = 0, probes = 0, stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        const r = await fetch(`${url}healthz`, { signal: AbortSignal.timeout(5000) });
        await r.text();
        if (r.status !== 200) worst = Math.max(worst, 5000);
      } catch {
        worst = Math.max(worst, 5000);
      }
      worst = Math.max(worst, performance.now() - t0);
      probes++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() { stopped = true; await loop; return { worst, probes }; },
  };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

interface Snapshot { covered: number; pcsLen: number; history: number; lines: { covered: number; total: number }; createdAt: number; state: string }

async function snapshot(d: ServeProcess, id: string): Promise<Snapshot> {
  const j = (await (await fetch(`${d.url}api/targets/${id}`)).json()) as TargetInfo & { totals: { lines: { covered: number; total: number } } | null };
  const h = (await (await fetch(`${d.url}api/targets/${id}/history`)).json()) as { samples: unknown[] };
  return { covered: j.stats.covered, pcsLen: j.stats.pcsLen, history: h.samples.length, lines: j.totals?.lines ?? { covered: 0, total: 0 }, createdAt: j.createdAt, state: j.state };
}

/** The healthy target is as it was: nothing lost, nothing foreign applied. */
function expectIntact(now: Snapshot, before: Snapshot): void {
  expect(now.state, 'state').to.equal('ready');
  expect(now.pcsLen, 'pcsLen').to.equal(before.pcsLen);
  expect(now.covered, 'covered').to.be.at.least(before.covered);
  expect(now.covered, 'covered').to.be.at.most(before.pcsLen);
  expect(now.lines.total, 'line total').to.equal(before.lines.total);
  expect(now.lines.covered, 'covered lines').to.be.at.least(before.lines.covered);
  expect(now.history, 'history').to.be.at.least(before.history);
  expect(now.createdAt, 'createdAt').to.equal(before.createdAt);
}

function meta(coverageFile: string, exe: string, extra: Partial<{ buildId: string | null; pid: number; startTime: number; argv: string[] }> = {}): void {
  writeCoverageMeta(coverageFile, { exe, buildId: null, pid: 999_999, startTime: Date.now(), argv: [exe], ...extra });
}

describe('hardening: the attack run, reproduced', function () {
  this.timeout(240_000);
  let exe: string;
  let other: string;
  let dir: string, cd: string, v: string;
  let d: ServeProcess;
  let id: string;
  let healthy: Snapshot;
  const extraServes: ServeProcess[] = [];

  before(async () => {
    exe = await buildExampleTarget();
    // A second real binary with debug info and its own build-id, to poison with.
    const src = join(os.tmpdir(), `covd-other-${process.pid}.c`);
    fs.writeFileSync(src, 'int helper(int x) { return x * 3; }\nint main(int argc, char **argv) { (void)argv; return helper(argc); }\n');
    other = join(os.tmpdir(), `covd-other-${process.pid}`);
    execFileSync('clang-14', ['-g', '-O0', '-Wl,--build-id', '-o', other, src]);
    fs.rmSync(src);
  });
  after(() => fs.rmSync(other, { force: true }));

  /** A fresh daemon watching a fresh directory, with one healthy target fuzzed for a few seconds. */
  async function setUp(extra: string[] = []): Promise<void> {
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-hard-'));
    cd = join(dir, 'cd');
    v = join(cd, 'v');
    fs.mkdirSync(v, { recursive: true });
    d = await startServe({ socket: join(dir, 'covd.sock'), stateDir: join(dir, 'state'), watch: [cd], extra });
    const r = await runFuzzer(exe, { covdDir: cd, socket: join(dir, 'covd.sock'), seconds: 2 }).done;
    expect(r.code, r.stderr.slice(-400)).to.equal(0);
    id = (await findCoverageFile(cd)).split('/').pop()!;
    const want = readCoverageFile(join(v, id));
    await pollUntil('the healthy target to be ready and caught up', async () => {
      const t = (await d.list()).find((x) => x.id === id);
      return t?.state === 'ready' && t.stats.nRuns === Number(want.header.nRuns);
    });
    healthy = await snapshot(d, id);
    expect(healthy.covered).to.be.greaterThan(10);
    expect(healthy.lines.total).to.be.greaterThan(10);
  }

  afterEach(async () => {
    for (const s of [d, ...extraServes.splice(0)]) if (s) { s.child.kill('SIGKILL'); await s.exited; }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('1. a FIFO as coverage file or metadata never hangs the daemon, at run time or at the next start', async () => {
    await setUp();
    const h = watchHealth(d.url);
    const fifo = join(v, '4000000000000001');
    execFileSync('mkfifo', [fifo]);
    meta(fifo, exe);
    const fifoMeta = join(v, '4000000000000002');
    writeCoverageFile(fifoMeta, { pcs: [0x1000n, 0x1010n] });
    execFileSync('mkfifo', [`${fifoMeta}.meta.json`]);
    // The control socket takes the same path: it answers at once, with the target failed.
    const t0 = performance.now();
    const r = await request(d.socket, { type: 'coverage', id: '4000000000000003', exe, file: fifo }, 5000);
    expect(performance.now() - t0).to.be.below(1000);
    expect(r.ok).to.equal(true);
    const failed = await pollUntil('the FIFO target to fail', async () => (await d.list()).find((t) => t.id === '4000000000000003' && t.state === 'failed'));
    expect(failed.error).to.match(/FIFO/);
    await pollUntil('the watcher to refuse the FIFOs', () => d.lines.filter((l) => String(l.msg).includes('not a regular file')).length >= 2);
    expect((await h.stop()).worst).to.be.below(1000);

    // A leftover FIFO must not hang the next start either.
    const stateDir = join(dir, 'state');
    await d.stop();
    d = await startServe({ socket: join(dir, 'covd.sock'), stateDir, watch: [cd] });
    const h2 = watchHealth(d.url);
    await new Promise((res) => setTimeout(res, 1500));
    const status = await request(d.socket, { type: 'status' }, 2000);
    expect(status.ok).to.equal(true);
    expect((await h2.stop()).worst).to.be.below(1000);
    expectIntact(await snapshot(d, id), healthy);
  });

  it('2. metadata symlinked to /dev/zero, or 100 MB of valid JSON, is refused without reading it', async () => {
    await setUp();
    // Written first and renamed in later: building 100 MB here would stall this process's probes.
    const bigJson = join(dir, 'big.json');
    const argv = Array.from({ length: 1_000_000 }, () => 'x'.repeat(100));
    fs.writeFileSync(bigJson, JSON.stringify({ exe, buildId: null, pid: 1, startTime: 1, argv }));
    const h = watchHealth(d.url);
    const rss0 = rssMb(d.child.pid!);
    const zero = join(v, '4000000000000004');
    writeCoverageFile(zero, { pcs: [0x1000n] });
    fs.symlinkSync('/dev/zero', `${zero}.meta.json`);
    const big = join(v, '4000000000000005');
    writeCoverageFile(big, { pcs: [0x1000n] });
    fs.renameSync(bigJson, `${big}.meta.json`);
    // Through the control socket too: the daemon reads the metadata beside a file it is told of.
    await request(d.socket, { type: 'coverage', id: '4000000000000004', exe, file: zero }, 5000);
    await request(d.socket, { type: 'coverage', id: '4000000000000005', exe, file: big }, 5000);
    await pollUntil('the symlinked metadata to be ignored', () => d.lines.some((l) => String(l.msg).includes('not a regular file')));
    await new Promise((res) => setTimeout(res, 2000));
    const grown = rssMb(d.child.pid!) - rss0;
    expect(grown, `RSS grew by ${grown.toFixed(0)} MB`).to.be.below(100);
    expect((await h.stop()).worst).to.be.below(1000);
    expectIntact(await snapshot(d, id), healthy);
  });

  it('3. a metadata file naming another binary cannot poison the stored index; every restore checks it', async () => {
    await setUp();
    const info = (await d.list()).find((t) => t.id === id)!;
    expect(info.buildId).to.match(/^[0-9a-f]+$/);
    expect(info.pcsHash).to.equal(pcTableHash(readCoverageFile(join(v, id)).pcs));
    // Same PCs under a new id, claiming the healthy build-id but naming another executable. This
    // daemon has the real index stored already; a fresh one must resolve, and must refuse it.
    const copy = join(v, '4000000000000006');
    fs.copyFileSync(join(v, id), copy);
    meta(copy, other, { buildId: info.buildId });
    const fresh = join(dir, 'fresh');
    fs.mkdirSync(fresh);
    const d2 = await startServe({ socket: join(fresh, 'covd.sock'), stateDir: join(fresh, 'state') });
    extraServes.push(d2);
    await request(d2.socket, { type: 'coverage', id: '4000000000000006', exe: other, file: copy }, 5000);
    const bad = await pollUntil('the impostor to fail', async () => (await d2.list()).find((t) => t.id === '4000000000000006' && t.state === 'failed'));
    expect(bad.error).to.match(/build-id/);
    // Nothing of the impostor was stored: the real target, announced next, gets its real lines.
    await request(d2.socket, { type: 'coverage', id, exe, file: join(v, id) }, 5000);
    await pollUntil('the real target on the fresh daemon', async () => (await d2.list()).find((t) => t.id === id && t.state === 'ready'));
    expect((await snapshot(d2, id)).lines.total).to.equal(healthy.lines.total);
    await d2.stop();
    await pollUntil('the first daemon to see the copy', async () => (await d.list()).find((t) => t.id === '4000000000000006' && t.state !== 'loading'));
    expectIntact(await snapshot(d, id), healthy);

    // Poison the store by hand while the daemon is down: the restore notices and resolves again.
    const stateDir = join(dir, 'state');
    await d.stop();
    const { Store } = await import('../../src/daemon/store.js');
    const store = Store.open(stateDir);
    const key = Store.indexKey(id, info.buildId, info.pcsHash);
    const real = store.getIndex(key)!;
    expect(real.pcsHash).to.equal(info.pcsHash);
    const n = real.pcFile.length;
    await store.putIndex(key, { ...real, pcsHash: '0123456789abcdef', pcFile: new Uint32Array(n).fill(0xffffffff), pcLine: new Uint32Array(n) });
    await store.close();
    d = await startServe({ socket: join(dir, 'covd.sock'), stateDir, watch: [cd] });
    await d.waitForLine((l) => l.msg === 'stored symbolization does not match its target; resolving again' && l.id === id, 'the restore check');
    await pollUntil('the restored target resolved again', async () => (await d.list()).find((t) => t.id === id && t.state === 'ready'));
    expectIntact(await snapshot(d, id), healthy);
  });

  it('4. a coverage file replaced by one of other PCs never has its bits applied to the old index', async () => {
    await setUp();
    const pcs = Array.from({ length: 250 }, (_, i) => 0x900000n + BigInt(i) * 16n);
    writeCoverageFile(join(v, id), { pcs, nRuns: 1000n, seen: pcs.map((_, i) => i) });
    const t = await pollUntil('the target to refuse the new file', async () => (await d.list()).find((x) => x.id === id && x.state === 'failed'));
    expect(t.error).to.match(/different PC table/);
    const now = await snapshot(d, id);
    expect(now.pcsLen).to.equal(healthy.pcsLen);
    expect(now.covered).to.equal(healthy.covered);
    expect(now.lines).to.deep.equal(healthy.lines);
    // A new fuzzer process recreates the real file: the retry brings the target back, coverage kept.
    const r = await runFuzzer(exe, { covdDir: cd, socket: join(dir, 'covd.sock'), seconds: 1 }).done;
    expect(r.code).to.equal(0);
    await pollUntil('the target to be ready again', async () => (await d.list()).find((x) => x.id === id && x.state === 'ready'));
    expectIntact(await snapshot(d, id), healthy);
  });

  it('6. an executable that is a FIFO fails its own target at once and starves nobody', async () => {
    await setUp();
    const fifoExe = join(dir, 'fifo-exe');
    execFileSync('mkfifo', [fifoExe]);
    for (const n of ['4000000000000007', '4000000000000008']) {
      const f = join(v, n);
      writeCoverageFile(f, { pcs: [0x1000n + BigInt(n.charCodeAt(15)), 0x2000n] });
      meta(f, fifoExe);
    }
    const failed = await pollUntil('both FIFO targets to fail', async () => {
      const ts = (await d.list()).filter((t) => t.exe === fifoExe && t.state === 'failed');
      return ts.length === 2 ? ts : undefined;
    }, 20_000);
    for (const t of failed) expect(t.error).to.match(/not a regular file/);
    // The pool still symbolizes: a target of another executable, not in the store, gets resolved.
    const c = join(v, '4000000000000009');
    writeCoverageFile(c, { pcs: [0x1130n, 0x1140n] });
    meta(c, other);
    await pollUntil('a later target to be ready', async () => (await d.list()).find((t) => t.id === '4000000000000009' && t.state === 'ready'), 20_000);
  });

  it('7. retrying a failed target keeps its history, coverage and creation time', async () => {
    await setUp();
    // Truncate the file: the coverage thread fails the target (coverage kept).
    fs.truncateSync(join(v, id), 100);
    await pollUntil('the target to fail', async () => (await d.list()).find((x) => x.id === id && x.state === 'failed'), 30_000);
    // A new process recreates the file and announces it: the retry must not start over.
    const r = await runFuzzer(exe, { covdDir: cd, socket: join(dir, 'covd.sock'), seconds: 1 }).done;
    expect(r.code).to.equal(0);
    await pollUntil('the target to be ready again', async () => (await d.list()).find((x) => x.id === id && x.state === 'ready'));
    expectIntact(await snapshot(d, id), healthy);
    expect(d.lines.some((l) => l.msg === 'retrying a failed target')).to.equal(true);
  });

  it('8. copies of a live coverage file under new ids never retire the live target', async () => {
    await setUp();
    const socket = join(dir, 'covd.sock');
    const live = runFuzzer(exe, { covdDir: cd, socket, seconds: 12 });
    try {
      const metaNow = JSON.parse(fs.readFileSync(join(v, `${id}.meta.json`), 'utf8')) as { pid: number; startTime: number; buildId: string };
      await pollUntil('the live fuzzer to write its metadata', () => {
        const m = JSON.parse(fs.readFileSync(join(v, `${id}.meta.json`), 'utf8')) as { pid: number };
        return m.pid === live.child.pid;
      }, 10_000);
      const liveMeta = JSON.parse(fs.readFileSync(join(v, `${id}.meta.json`), 'utf8')) as { pid: number; startTime: number; buildId: string };
      expect(liveMeta.buildId).to.equal(metaNow.buildId);
      for (let i = 0; i < 6; i++) {
        const c = join(v, `40000000000000a${i}`);
        fs.copyFileSync(join(v, id), c);
        fs.copyFileSync(join(v, `${id}.meta.json`), `${c}.meta.json`);
      }
      await pollUntil('the six copies to be ready', async () => (await d.list()).filter((t) => t.id.startsWith('40000000000000a') && t.state === 'ready').length === 6 || undefined, 30_000);
      const runs0 = (await d.list()).find((t) => t.id === id)!.stats.nRuns;
      await new Promise((res) => setTimeout(res, 3000));
      const t = (await d.list()).find((x) => x.id === id)!;
      expect(t.state).to.equal('ready');
      expect(t.stats.nRuns, 'runs keep moving').to.be.greaterThan(runs0);
      expect(d.lines.some((l) => l.msg === 'target retired' && l.id === id)).to.equal(false);
    } finally {
      await live.stop();
    }
  });

  it('9. a pcs_len beyond the memory budget is refused before anything is allocated', async () => {
    await setUp(['--memory-mb', '64']);
    const h = watchHealth(d.url);
    const rss0 = rssMb(d.child.pid!);
    // 2^27 PCs claimed by a sparse 1 GiB file: refused by the absolute cap.
    const huge = join(v, '400000000000000b');
    const n = 2 ** 27;
    const fd = fs.openSync(huge, 'w');
    const head = Buffer.alloc(32);
    head.writeBigUInt64LE(BigInt(n), 16);
    fs.writeSync(fd, head, 0, 32, 0);
    fs.ftruncateSync(fd, 32 + 8 * n + 8 * Math.ceil(n / 64));
    fs.closeSync(fd);
    meta(huge, exe);
    // 600,000 PCs (a real 5 MB file) are over this daemon's 64 MiB budget (524,288 PCs).
    const big = join(v, '400000000000000c');
    const pcs = new BigUint64Array(600_000).map((_, i) => 0x400000n + BigInt(i) * 4n);
    writeCoverageFile(big, { pcs });
    meta(big, exe);
    const failed = await pollUntil('both to fail', async () => {
      const ts = (await d.list()).filter((t) => (t.id === '400000000000000b' || t.id === '400000000000000c') && t.state === 'failed');
      return ts.length === 2 ? ts : undefined;
    }, 30_000);
    for (const t of failed) expect(t.error).to.match(/pcs_len is over \d+ PCs/);
    expect(failed.find((t) => t.id === '400000000000000c')!.error).to.match(/over 524288 PCs.*--max-pcs|memory budget/);
    const grown = rssMb(d.child.pid!) - rss0;
    expect(grown, `RSS grew by ${grown.toFixed(0)} MB`).to.be.below(60);
    expect((await h.stop()).worst).to.be.below(1000);
    expectIntact(await snapshot(d, id), healthy);
  });

  it('12. symlinks in v/ are not followed, errors quote no file contents, and a foreign executable is refused', async function () {
    await setUp();
    // A symlinked coverage file pointing at a file with a recognisable "pcs_len".
    const secret = join(dir, 'secret');
    const bytes = Buffer.alloc(64);
    bytes.writeBigUInt64LE(4195726726056720697n, 16);
    fs.writeFileSync(secret, bytes);
    const link = join(v, '400000000000000d');
    fs.symlinkSync(secret, link);
    meta(link, exe);
    await pollUntil('the watcher to ignore the symlink', () => d.lines.some((l) => String(l.msg).includes('not a regular file') && String(l.file).endsWith('400000000000000d')));
    // Named on the control socket it fails, and the reason quotes nothing of the file.
    await request(d.socket, { type: 'coverage', id: '400000000000000d', exe, file: link }, 5000);
    const t = await pollUntil('the symlink target to fail', async () => (await d.list()).find((x) => x.id === '400000000000000d' && x.state === 'failed'));
    expect(t.error).to.match(/symbolic link/);
    expect(t.error).to.not.include('4195726726056720697');
    // A file with an absurd pcs_len: the error says so without the number.
    const absurd = join(v, '400000000000000e');
    fs.writeFileSync(absurd, bytes);
    meta(absurd, exe);
    const a = await pollUntil('the absurd file to fail', async () => (await d.list()).find((x) => x.id === '400000000000000e' && x.state === 'failed'));
    expect(a.error).to.not.include('4195726726056720697');
    if (!isRoot) this.skip(); // chown needs root
    // An executable owned by another user: refused like a coverage file owned by another user.
    const foreign = join(dir, 'foreign-exe');
    fs.copyFileSync(exe, foreign);
    fs.chownSync(foreign, 65534, 65534);
    const f = join(v, '400000000000000f');
    fs.copyFileSync(join(v, id), f);
    meta(f, foreign);
    const ft = await pollUntil('the foreign executable to be refused', async () => (await d.list()).find((x) => x.id === '400000000000000f' && x.state === 'failed'));
    expect(ft.error).to.match(/owned by uid 65534/);
    expectIntact(await snapshot(d, id), healthy);
  });

  it('10. files created in a burst are all found even when the kernel drops watch events', async function () {
    if (!isRoot) this.skip(); // shrinking the inotify queue needs root
    const { CoverageDirWatcher } = await import('../../src/daemon/watch.js');
    const { createLogger } = await import('../../src/util/log.js');
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-hard-'));
    v = join(dir, 'cd', 'v');
    fs.mkdirSync(v, { recursive: true });
    const knob = '/proc/sys/fs/inotify/max_queued_events';
    const old = fs.readFileSync(knob, 'utf8').trim();
    const found = new Set<string>();
    fs.writeFileSync(knob, '32'); // read when the watcher's inotify instance is made
    const w = new CoverageDirWatcher(createLogger({ level: 'silent' }), (m) => found.add(m.id), 500);
    try {
      w.setDirs([join(dir, 'cd')]);
      await new Promise((res) => setTimeout(res, 300));
      const N = 3000;
      const m = { exe: '/bin/true', buildId: null, pid: 1, startTime: Date.now(), argv: [] };
      for (let i = 0; i < N; i++) {
        const f = join(v, (0x500000 + i).toString(16).padStart(16, '0'));
        writeCoverageFile(f, { pcs: [1n, 2n] });
        writeCoverageMeta(f, m);
      }
      await pollUntil(`${N} announcements`, () => found.size >= N, 60_000);
      expect(found.size).to.equal(N);
      // The kernel dropped events with a 32-event queue; the rescan found what they would have told.
      expect(w.rescued).to.be.greaterThan(0);
    } finally {
      fs.writeFileSync(knob, old);
      await w.close();
    }
    d = undefined as unknown as ServeProcess;
  });

  it('the reader refuses FIFOs, devices and symlinks at open, in both its sync and async forms', async () => {
    const { CoverageFile, readPcListAsync } = await import('../../src/coverage/reader.js');
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-hard-'));
    const fifo = join(dir, 'fifo');
    spawnSync('mkfifo', [fifo]);
    const real = writeCoverageFile(join(dir, 'real'), { pcs: [1n, 2n] });
    const link = join(dir, 'link');
    fs.symlinkSync(real, link);
    for (const [p, re] of [[fifo, /FIFO/], ['/dev/zero', /device/], [link, /symbolic link/]] as const) {
      expect(() => CoverageFile.open(p)).to.throw(re);
      let err: Error | undefined;
      await readPcListAsync(p).catch((e: Error) => { err = e; });
      expect(err?.message).to.match(re);
    }
    expect((await readPcListAsync(real)).pcsLen).to.equal(2);
    d = undefined as unknown as ServeProcess;
  });

  it('pcTableHash is the agent\'s id function: a real coverage file is named by the hash of its PCs', async () => {
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-hard-'));
    cd = join(dir, 'cd');
    const r = await runFuzzer(exe, { covdDir: cd, runs: 10 }).done;
    expect(r.code).to.equal(0);
    const file = await findCoverageFile(cd);
    expect(pcTableHash(readCoverageFile(file).pcs)).to.equal(file.split('/').pop());
    d = undefined as unknown as ServeProcess;
  });
});
