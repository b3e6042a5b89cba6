/**
 * The daemon in-process (no web server): watcher at scale, half-written files, a rebuilt
 * executable retiring its old target, source and executable changes on disk.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildExampleTarget, runFuzzer, findCoverageFile, exampleDir } from '../../src/build/targets.js';
import { writeCoverageFile } from '../../src/coverage/writer.js';
import { buildDir } from '../../src/build/toolchain.js';
import { writeCoverageMeta } from '../../src/coverage/meta.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { CoverageDirWatcher } from '../../src/daemon/watch.js';
import type { CoverageMessage } from '../../src/bus/messages.js';
import type { DaemonConfig } from '../../src/daemon/config.js';
import { createLogger } from '../../src/util/log.js';
import { pollUntil } from './helpers.js';

const log = createLogger({ level: process.env.COVD_TEST_LOG ? 'debug' : 'silent' });

function config(dir: string, watch: string[] = []): DaemonConfig {
  return { host: '127.0.0.1', port: 0, socket: join(dir, 'covd.sock'), stateDir: join(dir, 'state'), watch, logLevel: 'info', allowedHosts: [], retireDays: 30, keepRetired: 5 };
}

describe('retirement policy', () => {
  it('deletes retired targets past retireDays and beyond keepRetired per executable', async () => {
    const { TargetRegistry } = await import('../../src/daemon/registry.js');
    const { Retention } = await import('../../src/daemon/retention.js');
    let now = 1_800_000_000_000;
    const reg = new TargetRegistry({ now: () => now });
    const removed: string[] = [];
    const retention = new Retention(reg, { retireDays: 30, keepRetired: 2 }, (id) => { removed.push(id); reg.remove(id); }, log, () => now);
    const day = 86_400_000;
    for (let i = 0; i < 5; i++) {
      const id = String(i).repeat(16);
      reg.add({ id, exe: '/bin/fuzz', coverageFile: `/c/${id}`, pcsLen: 8 });
      reg.retire(id, 'rebuilt', now - (10 - i) * day);
    }
    reg.add({ id: 'a'.repeat(16), exe: '/bin/other', coverageFile: '/c/a', pcsLen: 8 });
    reg.retire('a'.repeat(16), undefined, now - 31 * day);
    reg.add({ id: 'b'.repeat(16), exe: '/bin/fuzz', coverageFile: '/c/b', pcsLen: 8 });
    retention.enforce();
    // The two newest retired of /bin/fuzz stay, the live one stays, /bin/other's is too old.
    expect(reg.targets().map((t) => t.id).sort()).to.deep.equal(['3'.repeat(16), '4'.repeat(16), 'b'.repeat(16)]);
    now += 23.5 * day; // the older of the two is now past 30 days, the newer not
    retention.enforce();
    expect(reg.targets().map((t) => t.id).sort()).to.deep.equal(['4'.repeat(16), 'b'.repeat(16)]);
    expect(removed.length).to.equal(5);
    // New settings (SIGHUP) apply at the next check.
    retention.set({ retireDays: 30, keepRetired: 0 });
    retention.enforce();
    expect(reg.targets().map((t) => t.id)).to.deep.equal(['b'.repeat(16)]);
  });
});

describe('daemon in-process', function () {
  this.timeout(300_000);
  let dir: string;
  let daemon: Daemon | undefined;
  beforeEach(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-')); });
  afterEach(async () => {
    await daemon?.close();
    daemon = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the directory watcher announces each of 2000 coverage files once, and only once both halves exist', async () => {
    const v = join(dir, 'cov', 'v');
    fs.mkdirSync(v, { recursive: true });
    const found: CoverageMessage[] = [];
    const w = new CoverageDirWatcher(log, (m) => found.push(m));
    w.setDirs([join(dir, 'cov')]);
    const N = 2000;
    const ids = Array.from({ length: N }, (_, i) => (0x100000 + i).toString(16).padStart(16, '0'));
    const meta = { exe: '/bin/true', buildId: null, pid: 1, startTime: Date.now(), argv: [] };
    for (const id of ids) {
      const f = join(v, id);
      writeCoverageFile(f, { pcs: [1n, 2n, 3n] });
      writeCoverageMeta(f, meta);
    }
    // One more whose metadata comes late: nothing until it does.
    const late = join(v, 'ffffffffffffffff');
    writeCoverageFile(late, { pcs: [1n] });
    await pollUntil(`${N} announcements`, () => found.length >= N, 120_000);
    expect(found.some((m) => m.id === 'ffffffffffffffff')).to.equal(false);
    writeCoverageMeta(late, meta);
    await pollUntil('the late one', () => found.some((m) => m.id === 'ffffffffffffffff'));
    await new Promise((r) => setTimeout(r, 500));
    expect(new Set(found.map((m) => m.id)).size).to.equal(found.length);
    expect(found.length).to.equal(N + 1);
    expect(found[0]).to.include({ type: 'coverage', exe: '/bin/true' });
    await w.close();
  });

  it('ignores coverage files another user wrote into a watched directory', async function () {
    if (process.getuid?.() !== 0) this.skip(); // needs chown
    const v = join(dir, 'cov', 'v');
    fs.mkdirSync(v, { recursive: true });
    const lines: string[] = [];
    const found: CoverageMessage[] = [];
    const w = new CoverageDirWatcher(createLogger({ level: 'warn', write: (l) => lines.push(l) }), (m) => found.push(m));
    const meta = { exe: '/bin/true', buildId: null, pid: 1, startTime: Date.now(), argv: [] };
    for (const [id, uid] of [['1111111111111111', 65534], ['2222222222222222', 0]] as const) {
      const f = join(v, id);
      writeCoverageFile(f, { pcs: [1n, 2n] });
      writeCoverageMeta(f, meta);
      fs.chownSync(f, uid, uid);
      fs.chownSync(`${f}.meta.json`, uid, uid);
    }
    w.setDirs([join(dir, 'cov')]);
    await pollUntil('the trusted file', () => found.some((m) => m.id === '2222222222222222'));
    await pollUntil('the warning', () => lines.some((l) => l.includes('owned by another user')));
    expect(found.map((m) => m.id)).to.deep.equal(['2222222222222222']);
    await w.close();
  });

  it('waits for a half-written coverage file instead of failing it', async () => {
    const exe = await buildExampleTarget();
    const stage = join(dir, 'stage');
    const f = runFuzzer(exe, { covdDir: stage, socket: join(dir, 'nobody.sock'), runs: 5000 });
    expect((await f.done).code).to.equal(0);
    const real = await findCoverageFile(stage);
    const bytes = fs.readFileSync(real);
    daemon = await startDaemon(config(dir), { log, web: false });
    // Another producer writing the file slowly, in place, under its final name.
    const file = join(dir, 'v', real.split('/').pop()!);
    fs.mkdirSync(join(dir, 'v'));
    fs.writeFileSync(file, bytes.subarray(0, 40));
    const p = daemon.dispatcher.announce({ type: 'coverage', id: real.split('/').pop()!, exe, file });
    await new Promise((r) => setTimeout(r, 700));
    fs.appendFileSync(file, bytes.subarray(40));
    const info = await p;
    expect(info.state, info.error).to.equal('ready');
    expect(info.stats.pcsLen).to.be.greaterThan(100);
  });

  it('retires the old target when the executable is rebuilt, and tells tabs when a source file changes', async () => {
    // A copy of the example at a stable place under build/ (so the cached builds' debug info names
    // this copy, which the test edits), marked so its content differs from examples/ itself.
    const src = buildDir('test-src', 'daemon-rebuild');
    fs.rmSync(src, { recursive: true, force: true });
    fs.cpSync(exampleDir(), src, { recursive: true });
    fs.appendFileSync(join(src, 'meta.c'), '\n/* copy for the daemon rebuild test */\n');
    const { buildFuzzTarget } = await import('../../src/build/targets.js');
    const sources = ['fuzz_tinyimg.c', 'decode.c', 'meta.c'].map((f) => join(src, f));
    const v1 = await buildFuzzTarget({ name: 'fuzz_tinyimg', sources });
    const v2 = await buildFuzzTarget({ name: 'fuzz_tinyimg', sources, cflags: ['-O2'] });
    const exe = join(dir, 'bin', 'fuzz_tinyimg');
    fs.mkdirSync(join(dir, 'bin'));
    fs.copyFileSync(v1, exe);
    fs.chmodSync(exe, 0o755);
    const covDir = join(dir, 'cov');
    daemon = await startDaemon(config(dir, [covDir]), { log, web: false });
    const reg = daemon.registry;

    const r1 = runFuzzer(exe, { covdDir: covDir, socket: join(dir, 'nobody.sock'), runs: 20000, corpus: join(src, 'corpus') });
    expect((await r1.done).code).to.equal(0);
    const first = await pollUntil('the first build ready', () => reg.targets().find((t) => t.state === 'ready'));
    expect(reg.sourcePath(first.id, reg.target(first.id)!.index!.files.indexOf('decode.c'))).to.equal(join(src, 'decode.c'));

    // A source file named by the debug info changes on disk: tabs hear about it.
    const changed: { id: string; file: number }[] = [];
    reg.on('sourceChanged', (id, file) => changed.push({ id, file }));
    await new Promise((r) => setTimeout(r, 300));
    fs.appendFileSync(join(src, 'decode.c'), '\n/* edited */\n');
    const hit = await pollUntil('a sourceChanged event', () => changed.find((c) => c.id === first.id));
    expect(reg.target(first.id)!.index!.files[hit.file]).to.equal('decode.c');

    // Rebuilt with different code generation: a new PC list, a new target; the old one is retired.
    fs.copyFileSync(v2, exe + '.new');
    fs.renameSync(exe + '.new', exe);
    const r2 = runFuzzer(exe, { covdDir: covDir, socket: join(dir, 'nobody.sock'), runs: 20000, corpus: join(src, 'corpus') });
    expect((await r2.done).code).to.equal(0);
    const second = await pollUntil('the rebuilt target ready', () => reg.targets().find((t) => t.state === 'ready' && t.id !== first.id));
    const old = await pollUntil('the old target retired', () => { const t = reg.info(first.id); return t?.state === 'retired' ? t : undefined; });
    expect(old.error).to.contain(second.id);
    expect(old.stats.covered).to.be.greaterThan(0);
    expect(reg.history(first.id).length).to.be.greaterThan(0);
  });

  it('re-resolves a target when its executable is rebuilt with the same PCs but new debug info', async () => {
    const v1 = await buildExampleTarget();
    // Same code, different DWARF paths: same PC list (same id), a different build-id.
    const v2 = await buildExampleTarget({ cflags: ['-fdebug-prefix-map=/=/relocated/'] });
    const exe = join(dir, 'fuzz_tinyimg');
    fs.copyFileSync(v1, exe);
    fs.chmodSync(exe, 0o755);
    const covDir = join(dir, 'cov');
    daemon = await startDaemon(config(dir, [covDir]), { log, web: false });
    const reg = daemon.registry;
    const r1 = runFuzzer(exe, { covdDir: covDir, socket: join(dir, 'nobody.sock'), runs: 5000 });
    expect((await r1.done).code).to.equal(0);
    const t1 = await pollUntil('ready', () => reg.targets().find((t) => t.state === 'ready'));
    expect(t1.buildId).to.match(/^[0-9a-f]{16,}$/);
    const dirs1 = reg.target(t1.id)!.index!.directories;
    expect(dirs1.some((d) => d.startsWith('/relocated'))).to.equal(false);

    fs.copyFileSync(v2, exe + '.new');
    fs.renameSync(exe + '.new', exe);
    const r2 = runFuzzer(exe, { covdDir: covDir, socket: join(dir, 'nobody.sock'), runs: 5000 });
    expect((await r2.done).code).to.equal(0);
    const t2 = await pollUntil('re-resolved', () => {
      const t = reg.info(t1.id);
      return t && t.state === 'ready' && t.buildId !== t1.buildId ? t : undefined;
    });
    expect(reg.targets()).to.have.length(1);
    expect(reg.target(t2.id)!.index!.directories.some((d) => d.startsWith('/relocated'))).to.equal(true);
    expect(reg.info(t1.id)!.stats.covered).to.be.at.least(t1.stats.covered);
  });
});
