/** The C agent in real libFuzzer targets: sharing, metadata, the control socket, failure modes, `covd cc`. */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unpack } from 'msgpackr';
import { buildExampleTarget, buildFuzzTarget, findCoverageFile, runFuzzer } from '../helpers/fuzz-targets.js';
import { CoverageFile, openCoverageFileWhenReady, readCoverageFile } from '../../src/coverage/reader.js';
import { countSeen } from '../../src/contracts/seen.js';
import { readCoverageMeta } from '../../src/coverage/meta.js';
import { agentObject } from '../../src/build/toolchain.js';
import { descendantPids, exampleDir } from '../../src/build/targets.js';
import { scratchDirs, until } from '../helpers/scratch.js';

const covd = fileURLToPath(new URL('../../../bin/covd', import.meta.url));

/** The GNU build-id as readelf prints it. */
function readelfBuildId(exe: string): string | null {
  const out = execFileSync('readelf', ['-n', exe], { encoding: 'utf8' });
  return /Build ID: ([0-9a-f]+)/.exec(out)?.[1] ?? null;
}

describe('agent in a libFuzzer target', function () {
  this.timeout(600_000);
  let exe: string;
  const tmp = scratchDirs();
  before(async () => {
    exe = await buildExampleTarget();
  });

  it('writes a valid coverage file and metadata naming the executable, its build-id, pid and argv', async () => {
    const covdDir = tmp();
    const t0 = Date.now();
    const run = runFuzzer(exe, { covdDir, runs: 5000, extraArgs: ['-seed=3'] });
    const file = await findCoverageFile(covdDir);
    const pid = run.child.pid;
    const { code } = await run.done;
    expect(code).to.equal(0);
    expect(file).to.match(/\/v\/[0-9a-f]{16}$/);
    const snap = readCoverageFile(file);
    expect(snap.layout).to.equal('seed');
    expect(snap.header.nRuns).to.equal(5000n);
    expect(snap.header.uniqueRuns > 0n && snap.header.uniqueRuns <= snap.header.nRuns).to.equal(true);
    expect(countSeen(snap.seen, snap.pcs.length)).to.be.greaterThan(10);
    // -fsanitize=fuzzer on Linux includes stack-depth, so lowest_stack is tracked.
    expect(snap.header.lowestStack).to.not.equal(null);
    // PCs are link-time addresses: inside the executable's text as nm sees it, not slid.
    const nm = execFileSync('nm', ['-n', '--defined-only', exe], { encoding: 'utf8' });
    const text = nm.split('\n').filter((l) => / [tT] /.test(l)).map((l) => BigInt('0x' + l.split(' ')[0]));
    const lo = text[0]!;
    const hi = text[text.length - 1]! + 0x10000n;
    for (const pc of snap.pcs) expect(pc >= lo && pc < hi, `pc ${pc.toString(16)} in text`).to.equal(true);

    const meta = await until(() => readCoverageMeta(file), 'metadata');
    expect(meta.exe).to.equal(realpathSync(exe));
    expect(meta.pid).to.equal(pid);
    expect(meta.argv).to.include('-seed=3');
    expect(meta.buildId).to.equal(readelfBuildId(exe));
    expect(meta.buildId).to.match(/^[0-9a-f]{40}$/);
    // The process's start (from /proc, whole-second boot time: allow its rounding).
    expect(meta.startTime).to.be.within(t0 - 2000, Date.now());
    // Nothing but the file, its metadata and the inputs beside it (test/agent/inputs.test.ts) is left behind (no temp files).
    const id = file.split('/').pop()!;
    expect(readdirSync(join(covdDir, 'v')).sort()).to.deep.equal([id, `${id}.crashes.log`, `${id}.inputs`, `${id}.inputs.log`, `${id}.meta.json`]);
    expect(readdirSync(join(covdDir, 'v', `${id}.inputs`)).every((n) => /^[0-9a-f]{40}$/.test(n)), 'no temp files among the inputs').to.equal(true);
  });

  it('shares one file between -jobs processes: n_runs is exactly the sum of their runs', async () => {
    const covdDir = tmp();
    const runs = 20_000;
    const run = runFuzzer(exe, { covdDir, runs, extraArgs: ['-jobs=2', '-workers=2', '-print_final_stats=1'] });
    const { code } = await run.done;
    expect(code).to.equal(0);
    const files = readdirSync(join(covdDir, 'v')).filter((n) => /^[0-9a-f]{16}$/.test(n));
    expect(files).to.have.length(1);
    const snap = readCoverageFile(join(covdDir, 'v', files[0]!));
    expect(snap.header.nRuns).to.equal(BigInt(2 * runs));
  });

  it('stop() ends an unbounded -jobs run together with its worker processes', async () => {
    const covdDir = tmp();
    const run = runFuzzer(exe, { covdDir, extraArgs: ['-jobs=2', '-workers=2'] });
    const f = await openCoverageFileWhenReady(await findCoverageFile(covdDir), { timeoutMs: 60_000 });
    await until(() => f.readHeader().nRuns > 10_000n, 'the workers to run');
    f.close();
    const workers = descendantPids(run.child.pid!);
    expect(workers.length, 'shells and fuzzers started by -jobs').to.be.at.least(2);
    await run.stop();
    const alive = (p: number) => {
      try {
        process.kill(p, 0);
        return !readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z'); // zombies are dead enough
      } catch {
        return false;
      }
    };
    await until(() => workers.every((p) => !alive(p)), 'every worker to exit');
  });

  it('shares one file between -fork children, updated while they run', async () => {
    const covdDir = tmp();
    // A time limit rather than a signal: libFuzzer's fork-mode parent then stops its children itself.
    const run = runFuzzer(exe, { covdDir, seconds: 8, extraArgs: ['-fork=2', '-ignore_crashes=1'] });
    const file = await findCoverageFile(covdDir);
    const f = await openCoverageFileWhenReady(file, { timeoutMs: 30_000 });
    const first = f.readHeader().nRuns;
    await until(() => f.readHeader().nRuns > first + 1000n || run.child.exitCode !== null, 'runs to grow while fuzzing');
    expect(f.readHeader().nRuns > first + 1000n, 'runs grew while the children fuzzed').to.equal(true);
    f.close();
    expect((await run.done).code).to.equal(0);
    expect(readdirSync(join(covdDir, 'v')).filter((n) => /^[0-9a-f]{16}$/.test(n))).to.have.length(1);
  });

  it('sends a coverage message on the control socket (u32 LE length + msgpack)', async () => {
    const covdDir = tmp();
    const sock = join(tmp(), 'covd.sock');
    const frames: Buffer[] = [];
    const server: Server = createServer((c) => {
      let buf = Buffer.alloc(0);
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
          const n = buf.readUInt32LE(0);
          frames.push(buf.subarray(4, 4 + n));
          buf = buf.subarray(4 + n);
        }
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const run = runFuzzer(exe, { covdDir, runs: 2000, socket: sock });
      const { code } = await run.done;
      expect(code).to.equal(0);
      await until(() => frames.length > 0, 'a frame');
      const msg = unpack(frames[0]!) as Record<string, unknown>;
      const file = await findCoverageFile(covdDir);
      expect(msg).to.deep.equal({ type: 'coverage', id: file.split('/').pop(), exe: realpathSync(exe), file, pid: run.child.pid });
    } finally {
      server.close();
    }
  });

  it('finds the default socket <COVD_DIR>/covd.sock when COVD_SOCKET is unset', async () => {
    const covdDir = tmp();
    const got: Buffer[] = [];
    const server = createServer((c) => c.on('data', (d) => got.push(d)));
    await new Promise<void>((r) => server.listen(join(covdDir, 'covd.sock'), r));
    try {
      const run = runFuzzer(exe, { covdDir, runs: 100 });
      expect((await run.done).code).to.equal(0);
      await until(() => got.length > 0, 'a message');
      // The first frame (a run that finds new PCs after 25 ms sends the same frame again).
      const all = Buffer.concat(got);
      expect((unpack(all.subarray(4, 4 + all.readUInt32LE(0))) as { type: string }).type).to.equal('coverage');
    } finally {
      server.close();
    }
  });

  it('fuzzes on with one warning when the directory cannot be used', async () => {
    const parent = tmp();
    const notADir = join(parent, 'file');
    writeFileSync(notADir, 'x');
    for (const covdDir of [join(notADir, 'covd'), '/proc/covd-cannot-exist']) {
      const run = runFuzzer(exe, { covdDir, runs: 3000 });
      const { code, stderr } = await run.done;
      expect(code, stderr).to.equal(0);
      expect(stderr.match(/covd-agent:/g), stderr).to.have.length(1);
      expect(stderr).to.match(/covd-agent: cannot use .*fuzzing without covd coverage/);
      expect(stderr).to.contain('Done 3000 runs');
    }
  });

  it('refuses a coverage directory owned by someone else', async function () {
    if (process.getuid?.() !== 0) this.skip(); // needs root to chown
    const covdDir = tmp();
    mkdirSync(join(covdDir, 'v'));
    execFileSync('chown', ['65534:65534', join(covdDir, 'v')]);
    chmodSync(join(covdDir, 'v'), 0o777);
    const { code, stderr } = await runFuzzer(exe, { covdDir, runs: 100 }).done;
    expect(code).to.equal(0);
    expect(stderr).to.match(/covd-agent: cannot use .*Operation not permitted/);
    expect(readdirSync(join(covdDir, 'v'))).to.deep.equal([]);
  });

  it('replaces a stale or foreign file under its name instead of trusting it', async () => {
    const covdDir = tmp();
    expect((await runFuzzer(exe, { covdDir, runs: 100 }).done).code).to.equal(0);
    const file = await findCoverageFile(covdDir);
    writeFileSync(file, Buffer.alloc(100, 0xaa));
    const r = await runFuzzer(exe, { covdDir, runs: 1000 }).done;
    expect(r.code).to.equal(0);
    const snap = readCoverageFile(file);
    expect(snap.header.nRuns).to.equal(1000n);
  });

  it('is not instrumented itself: the target has as many PCs with the agent as without', async () => {
    const d = exampleDir();
    const plain = await buildFuzzTarget({ name: 'fuzz_tinyimg', agent: false, sources: ['fuzz_tinyimg.c', 'decode.c', 'meta.c'].map((f) => join(d, f)) });
    const pcsOf = (e: string) => {
      const out = spawnSync(e, ['-runs=0'], { encoding: 'utf8', env: { ...process.env, COVD_DIR: tmp() } }).stderr;
      return Number(/Loaded 1 PC tables \((\d+) PCs\)/.exec(out)?.[1]);
    };
    const withAgent = pcsOf(exe);
    expect(withAgent).to.be.greaterThan(100);
    expect(withAgent).to.equal(pcsOf(plain));
    const sections = execFileSync('readelf', ['-S', await agentObject()], { encoding: 'utf8' });
    expect(sections).to.not.contain('sancov');
  });

  it('tracks a file that is recreated while the reader has it open (REPLACED), then reopens', async () => {
    const covdDir = tmp();
    expect((await runFuzzer(exe, { covdDir, runs: 100 }).done).code).to.equal(0);
    const file = await findCoverageFile(covdDir);
    const f = CoverageFile.open(file);
    rmSync(file);
    expect((await runFuzzer(exe, { covdDir, runs: 100 }).done).code).to.equal(0);
    expect(() => f.read()).to.throw().with.property('kind', 'REPLACED');
    f.close();
    expect(readCoverageFile(file).header.nRuns).to.equal(100n);
  });
});

describe('covd cc', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'covd-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the clang command it runs and builds a working target with the agent', () => {
    const out = join(dir, 'fuzz_x');
    const d = exampleDir();
    const r = spawnSync(covd, ['cc', '-o', out, join(d, 'fuzz_tinyimg.c'), join(d, 'decode.c'), join(d, 'meta.c')], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const cmd = r.stderr.split('\n')[0]!;
    expect(cmd).to.match(/^clang(-14)? -g -O1 -fsanitize=fuzzer /);
    expect(cmd).to.contain('-Wl,--wrap=LLVMFuzzerTestOneInput');
    expect(cmd).to.match(/covd_agent-[0-9a-f]+\.o/);
    expect(existsSync(out)).to.equal(true);
    const covdDir = join(dir, 'cov');
    const run = spawnSync(out, ['-runs=50'], { encoding: 'utf8', env: { ...process.env, COVD_DIR: covdDir } });
    expect(run.status, run.stderr).to.equal(0);
    const files = readdirSync(join(covdDir, 'v')).filter((n) => /^[0-9a-f]{16}$/.test(n));
    expect(readCoverageFile(join(covdDir, 'v', files[0]!)).header.nRuns).to.equal(50n);
  });

  it('keeps the user\'s -O and sanitizers, and --dry-run runs nothing', () => {
    const out = join(dir, 'never');
    const r = spawnSync(covd, ['cc', '--dry-run', '-O2', '-fsanitize=fuzzer,address', '-o', out, 'x.c'], { encoding: 'utf8' });
    expect(r.status).to.equal(0);
    expect(r.stderr).to.contain('-O2 -fsanitize=fuzzer,address -o');
    expect(r.stderr).to.not.contain('-O1');
    expect(r.stderr).to.not.match(/-fsanitize=fuzzer /);
    expect(existsSync(out)).to.equal(false);
  });

  it('compile-only (-c) adds neither the agent nor link flags', () => {
    const r = spawnSync(covd, ['cc', '--dry-run', '-c', 'x.c'], { encoding: 'utf8' });
    expect(r.stderr).to.contain('-fsanitize=fuzzer-no-link');
    expect(r.stderr).to.not.contain('--wrap');
  });

  it('reports usage errors with exit 2 and passes clang failures through', () => {
    const r = spawnSync(covd, ['cc'], { encoding: 'utf8' });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain('usage: covd cc');
    const bad = join(dir, 'bad.c');
    writeFileSync(bad, 'int LLVMFuzzerTestOneInput(const char *d, long n) { return syntax error; }');
    const r2 = spawnSync(covd, ['cc', '-o', join(dir, 'bad'), bad], { encoding: 'utf8' });
    expect(r2.status).to.not.equal(0);
    expect(r2.stderr).to.contain('error');
    expect(readFileSync(bad, 'utf8')).to.contain('syntax');
  });
});
