/**
 * AFL++ end to end: an AFL++ build of examples/tinyimg with the agent (`covd cc --engine=afl`'s
 * command line), real afl-fuzz -M and -S instances for a few seconds against a real `covd
 * serve`. Checks that both share one coverage file whose runs are theirs, that the agent set up
 * in the fork server, that every PC AFL++'s saved queues reach (replayed through the same binary
 * into a fresh COVD_DIR) is covered in the daemon's view, that the API and /metrics carry the
 * fuzzer_stats values of the files, and that `covd add --afl-out` names an output directory.
 * Runs as root on an untuned kernel: AFL_TEST_ENV (src/afl/targets.ts) skips afl-fuzz's checks.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildAflExampleTarget, copySeeds, runAfl, type AflRun } from '../../src/afl/targets.js';
import { aflInstalled } from '../../src/build/afl-build.js';
import { buildExampleTarget, listCoverageFiles, runFuzzer, exampleDir } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { readCoverageMeta } from '../../src/coverage/meta.js';
import { isSeen } from '../../src/contracts/seen.js';
import type { AflInstance, TargetInfo } from '../../src/contracts/hub.js';
import { covdBin, countBits, pollUntil, startServe, type ServeProcess } from '../daemon/helpers.js';
import { scratchDirs } from '../helpers/scratch.js';

/** fuzzer_stats read independently of src/afl/stats.ts: every `key : value` as written. */
function statsFile(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(dir, 'fuzzer_stats'), 'utf8').split('\n')) {
    const m = /^(\w+)\s*: (.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim();
  }
  return out;
}
const num = (s: string | undefined) => Number(String(s).replace(/%$/, ''));

/** What the API must say for an instance: its fuzzer_stats, or plot_data's last row where that is strictly newer. */
function expected(dir: string): Partial<AflInstance> {
  const s = statsFile(dir);
  const want: Partial<AflInstance> = {
    execs_per_sec: num(s.execs_per_sec), execs_done: num(s.execs_done), corpus_count: num(s.corpus_count), corpus_found: num(s.corpus_found),
    saved_crashes: num(s.saved_crashes), saved_hangs: num(s.saved_hangs), stability: num(s.stability), bitmap_cvg: num(s.bitmap_cvg),
    cycles_done: num(s.cycles_done), last_find: num(s.last_find), edges_found: num(s.edges_found), fuzzer_pid: num(s.fuzzer_pid),
  };
  const rows = readFileSync(join(dir, 'plot_data'), 'utf8').trim().split('\n').filter((l) => !l.startsWith('#'));
  const last = rows[rows.length - 1]?.split(',').map((c) => num(c.trim()));
  if (last && num(s.start_time) + last[0]! > num(s.last_update)) {
    Object.assign(want, { cycles_done: last[1], corpus_count: last[3], bitmap_cvg: last[6], saved_crashes: last[7], saved_hangs: last[8], execs_per_sec: last[10], execs_done: last[11], edges_found: last[12] });
  }
  return want;
}

function ppidOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

describe('AFL++ end to end', function () {
  this.timeout(300_000);
  const scratch = scratchDirs();
  const daemons: ServeProcess[] = [];
  const fuzzers: AflRun[] = [];
  let exe: string;

  before(async function () {
    if (!aflInstalled()) throw new Error('AFL++ is not installed: run scripts/install-deps.sh (Debian package afl++)');
    exe = await buildAflExampleTarget();
  });
  afterEach(async () => {
    for (const f of fuzzers.splice(0)) await f.stop('SIGKILL');
    for (const d of daemons.splice(0)) { d.child.kill('SIGKILL'); await d.exited; }
  });

  it('-M and -S share one coverage file; queue replays, fuzzer_stats and metrics agree with the daemon', async () => {
    const dir = scratch();
    const socket = join(dir, 'covd.sock');
    const covDir = join(dir, 'cov');
    const out = join(dir, 'out');
    const d = await startServe({ socket, stateDir: join(dir, 'state') });
    daemons.push(d);
    const seeds = copySeeds(join(exampleDir(), 'corpus'), join(dir, 'in'));
    const main = runAfl(exe, { input: seeds, output: out, main: 'main', seconds: 10, covdDir: covDir, socket });
    const sec = runAfl(exe, { input: seeds, output: out, secondary: 'sec', seconds: 10, covdDir: covDir, socket });
    fuzzers.push(main, sec);

    // While they run: one target, AFL++, both instances alive; the metadata names a fork server.
    const live = await pollUntil('both afl-fuzz instances alive in the API', async () => {
      const t = (await d.list()).find((x) => x.engine === 'afl');
      const names = t?.afl?.instances.filter((i) => i.alive).map((i) => i.name).sort();
      return names?.join() === 'main,sec' ? t : undefined;
    }, 60_000, 200);
    expect(live.afl!.dir).to.equal(out);
    const file = listCoverageFiles(covDir);
    expect(file, 'one coverage file for both instances').to.have.length(1);
    const meta = readCoverageMeta(file[0]!)!;
    expect(meta.engine).to.equal('afl');
    expect([join(out, 'main'), join(out, 'sec')]).to.include(meta.aflOutDir);
    // The agent set up in the fork server (afl-fuzz's child), not in a forked runner (its grandchild).
    expect([main.child.pid, sec.child.pid]).to.include(ppidOf(meta.pid));

    const [rm, rs] = await Promise.all([main.done, sec.done]);
    expect(rm.code, rm.stderr.slice(-1500)).to.equal(0);
    expect(rs.code, rs.stderr.slice(-1500)).to.equal(0);
    expect(listCoverageFiles(covDir)).to.have.length(1);
    expect((await d.list()).filter((t) => t.id === live.id)).to.have.length(1);

    // Runs: both instances' executions are in the one file (plus one warm-up input per runner
    // process; an input that timed out never returns, and its replacement runner's warm-up evens it).
    const onDisk = readCoverageFile(file[0]!);
    const execs = num(statsFile(join(out, 'main')).execs_done) + num(statsFile(join(out, 'sec')).execs_done);
    expect(num(statsFile(join(out, 'sec')).execs_done)).to.be.greaterThan(1000);
    expect(Number(onDisk.header.nRuns)).to.be.within(execs - 10, execs + 100);
    expect(Number(onDisk.header.uniqueRuns)).to.be.within(2, 1000);

    // The API: per instance the files' values, totals as afl-whatsup adds them.
    const want = { main: expected(join(out, 'main')), sec: expected(join(out, 'sec')) };
    const final = await pollUntil('the final fuzzer_stats in the API', async () => {
      const t = (await (await fetch(`${d.url}api/targets/${live.id}`)).json()) as TargetInfo;
      const byName = Object.fromEntries((t.afl?.instances ?? []).map((i) => [i.name, i]));
      const ok = (['main', 'sec'] as const).every((n) => byName[n] && !byName[n].alive && byName[n].execs_done === want[n].execs_done);
      return ok ? t : undefined;
    }, 30_000, 200);
    for (const inst of final.afl!.instances) expect(inst, inst.name).to.deep.include(want[inst.name as 'main' | 'sec']);
    const all = [want.main, want.sec];
    expect(final.engine).to.equal('afl');
    expect(final.afl).to.deep.include({
      dir: out,
      execs_done: all.reduce((a, w) => a + w.execs_done!, 0),
      corpus_count: all.reduce((a, w) => a + w.corpus_count!, 0),
      saved_crashes: all.reduce((a, w) => a + w.saved_crashes!, 0),
      saved_hangs: all.reduce((a, w) => a + w.saved_hangs!, 0),
      stability: Math.min(...all.map((w) => w.stability!)),
      last_find: Math.max(...all.map((w) => w.last_find!)),
      cycles_done: Math.min(...all.map((w) => w.cycles_done!)),
      execs_per_sec: 0, // both stopped
    });
    const metrics = await (await fetch(`${d.url}metrics`)).text();
    for (const n of ['main', 'sec'] as const) {
      const lbl = `{target="${live.id}",name="fuzz_tinyimg",instance="${n}"}`;
      expect(metrics).to.contain(`covd_afl_execs_total${lbl} ${want[n].execs_done}`);
      expect(metrics).to.contain(`covd_afl_corpus_count${lbl} ${want[n].corpus_count}`);
      expect(metrics).to.contain(`covd_afl_instance_alive${lbl} 0`);
    }

    // Replay every queue entry of both instances through the same binary, into a fresh COVD_DIR.
    const queue = ['main', 'sec'].flatMap((n) => readdirSync(join(out, n, 'queue')).map((f) => join(out, n, 'queue', f)))
      .filter((f) => statSync(f).isFile());
    expect(queue.length).to.be.greaterThan(10);
    const replayDir = join(dir, 'replay');
    const r = spawnSync(exe, queue, { env: { ...process.env, COVD_DIR: replayDir, COVD_SOCKET: join(dir, 'nobody.sock') }, encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(r.status, r.stderr).to.equal(0);
    const replayFiles = listCoverageFiles(replayDir);
    expect(replayFiles.map((f) => f.split('/').pop())).to.deep.equal([live.id]);
    const replay = readCoverageFile(replayFiles[0]!);
    expect(Number(replay.header.nRuns)).to.equal(queue.length);
    const daemonView = (await (await fetch(`${d.url}api/targets/${live.id}/coverage?format=json`)).json()) as { seenPcs: number[] };
    const seenByDaemon = new Set(daemonView.seenPcs);
    const replayed: number[] = [];
    for (let pc = 0; pc < replay.header.pcsLen; pc++) if (isSeen(replay.seen, pc)) replayed.push(pc);
    expect(replayed.length).to.be.greaterThan(20);
    expect(replayed.filter((pc) => !seenByDaemon.has(pc)), 'PCs the queue reaches that the daemon does not show').to.deep.equal([]);
    expect(seenByDaemon.size).to.equal(countBits(onDisk.seen));

    // `covd add --afl-out`: another target (a libFuzzer build's file) named to this output by hand.
    const lfCov = join(dir, 'lf');
    const lf = runFuzzer(await buildExampleTarget(), { covdDir: lfCov, runs: 50 });
    expect((await lf.done).code).to.equal(0);
    const lfFile = listCoverageFiles(lfCov)[0]!;
    const added = spawnSync(process.execPath, [covdBin, 'add', '--socket', socket, lfFile, '--afl-out', join(out, 'main')], { encoding: 'utf8' });
    expect(added.status, added.stderr).to.equal(0);
    const lfId = lfFile.split('/').pop()!;
    const named = await pollUntil('the hand-named AFL++ output', async () => (await d.list()).find((t) => t.id === lfId && t.afl?.instances.length === 2), 30_000, 200);
    expect(named.engine).to.equal('afl');
    expect(named.afl!.dir).to.equal(out);
    const bad = spawnSync(process.execPath, [covdBin, 'add', '--socket', socket, lfFile, '--afl-out'], { encoding: 'utf8' });
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.contain('--afl-out needs a directory');
  });

  it('CmpLog: a --cmplog companion runs with -c and the agent build still records coverage', async () => {
    const dir = scratch();
    const cmplog = join(dir, 'fuzz_tinyimg.cmplog');
    const src = exampleDir();
    const b = spawnSync(process.execPath, [covdBin, 'cc', '--engine=afl', '--cmplog', '-o', cmplog, ...['fuzz_tinyimg.c', 'decode.c', 'meta.c'].map((f) => join(src, f))], { encoding: 'utf8' });
    expect(b.status, b.stderr).to.equal(0);
    expect(b.stderr.split('\n')[0]).to.match(/^AFL_LLVM_CMPLOG=1 \S*afl-clang-fast -g -O1 -fsanitize=fuzzer -o /);
    // The companion carries AFL++'s comparison logging and no agent.
    const syms = spawnSync('nm', [cmplog], { encoding: 'utf8' }).stdout;
    expect(syms).to.match(/__cmplog_ins_hook/);
    expect(syms).to.not.match(/__wrap_LLVMFuzzerTestOneInput/);
    const covDir = join(dir, 'cov');
    const run = runAfl(exe, { input: copySeeds(join(src, 'corpus'), join(dir, 'in')), output: join(dir, 'out'), seconds: 4, covdDir: covDir, cmplog });
    fuzzers.push(run);
    const res = await run.done;
    expect(res.code, res.stderr.slice(-1500)).to.equal(0);
    expect(res.stderr).to.contain('Cmplog forkserver successfully started');
    const files = listCoverageFiles(covDir);
    expect(files).to.have.length(1);
    const cov = readCoverageFile(files[0]!);
    expect(countBits(cov.seen)).to.be.greaterThan(20);
    expect(Number(cov.header.nRuns)).to.be.at.least(num(statsFile(join(dir, 'out', 'default')).execs_done) - 10);
  });
});
