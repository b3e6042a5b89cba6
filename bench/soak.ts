/**
 * Soak and faults: a real daemon (bench/soak-daemon.ts = `covd serve` + a fault hook) serving
 * three real libFuzzer processes (the example target built three ways), 100 WebSocket tabs that
 * connect and drop at random (some resuming with `since`), and periodic `covd remove` / `covd add`
 * of a fourth, synthetic target, for a configurable length. Along the way, at fixed fractions of
 * the run, the faults:
 *
 *   fuzzer killed      SIGKILL one fuzzer, start it again on the same coverage file
 *   file truncated     truncate a coverage file to 100 bytes; later restore it and `covd add` it
 *   worker killed      SIGUSR2 to the daemon terminates a symbolizer thread; then a new target
 *                      must still get symbolized
 *   executable rebuilt replace a fuzzer's executable with a different build while it runs, then
 *                      restart the fuzzer on it (new PC list: a new target, the old one retired)
 *   daemon SIGKILLed   kill -9 the daemon, start it again on the same state directory
 *
 * Verdict (each a pass/fail check):
 *   - no tab ever holds a bit its target's coverage file lacks (checked every 2 s), and after
 *     the fuzzers stop, every tab holds exactly the file's bits;
 *   - memory settles: over the last daemon lifetime after warm-up, the median RSS of the second
 *     half is within max(16 MiB, 8 %) of the first half's;
 *   - no error or fatal line in the daemon's log (nor anything on its stderr);
 *   - history intact: every history sample stored before the SIGKILL is served after it;
 *   - every fault left the other targets serving (checked per fault).
 *
 *   node dist/bench/soak.js [--seconds N]        (default 600; COVD_SOAK_SECONDS also works)
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync, rmSync, truncateSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildFuzzTarget, exampleDir, runFuzzer, type FuzzerRun } from '../src/build/targets.js';
import { readCoverageFile } from '../src/coverage/reader.js';
import type { HistorySample, TargetInfo } from '../src/contracts/hub.js';
import { DaemonProcess, MiB, sleep, tempDir, until, type LogLine } from './lib/daemon-process.js';
import { copyExe, exampleTarget, writeSynthetic } from './lib/fixtures.js';
import { BenchTab, extraBits } from './lib/tab.js';
import { median, repoRoot, table, writeResults } from './lib/results.js';
import { benchFlags, isMain } from './lib/cli.js';

const execFileP = promisify(execFile);

export interface SoakCheck {
  name: string;
  pass: boolean;
  detail: string;
}

export interface SoakResult {
  seconds: number;
  pass: boolean;
  checks: SoakCheck[];
  faults: { name: string; at: number; pass: boolean; detail: string }[];
  tabs: { connects: number; resumes: number; snapshots: number; deltas: number; gaps: number; subsetChecks: number };
  cli: { adds: number; removes: number };
  rss: { t: number; gen: number; mib: number }[];
  errors: LogLine[];
}

export interface SoakOptions {
  seconds?: number;
  tabs?: number;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
}

const TABS = 100;

/** The example target's sources, built with different flags: different code, different PC lists. */
async function buildVariant(cflags: string[]): Promise<string> {
  const d = exampleDir();
  return buildFuzzTarget({ name: 'fuzz_tinyimg', sources: ['fuzz_tinyimg.c', 'decode.c', 'meta.c'].map((f) => join(d, f)), cflags });
}

class Fuzzer {
  run: FuzzerRun | null = null;
  constructor(readonly name: string, public exe: string, private readonly covdDir: string, private readonly socket: string) {}
  start(): void {
    this.run = runFuzzer(this.exe, { covdDir: this.covdDir, socket: this.socket, env: { COVD_AGENT_QUIET: '1' }, extraArgs: ['-print_final_stats=0'] });
    // Fuzzers get what CPU is left: the daemon is what is being measured.
    try { setPriority(this.run.child.pid!, 15); } catch { /* not permitted: fine */ }
  }
  get child(): ChildProcess | undefined {
    return this.run?.child;
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const r = this.run;
    if (!r) return;
    this.run = null;
    if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill(signal);
    const t = setTimeout(() => r.child.kill('SIGKILL'), 5000);
    await r.done;
    clearTimeout(t);
  }
}

export async function runSoak(opts: SoakOptions = {}): Promise<SoakResult> {
  const seconds = opts.seconds ?? 600;
  const nTabs = opts.tabs ?? TABS;
  const say = opts.progress ?? (() => {});
  const duration = seconds * 1000;
  const work = tempDir('covd-soak-');
  const covdDir = join(work, 'covd');
  const socket = join(work, 'covd.sock');
  const stateDir = join(work, 'state');
  mkdirSync(covdDir, { recursive: true });

  const checks: SoakCheck[] = [];
  const faults: SoakResult['faults'] = [];
  const rss: SoakResult['rss'] = [];
  const errors: LogLine[] = [];
  const tabStats = { connects: 0, resumes: 0, snapshots: 0, deltas: 0, gaps: 0, subsetChecks: 0 };
  const cli = { adds: 0, removes: 0 };
  const violations: string[] = [];
  const cliErrors: string[] = [];

  // ---- executables: three builds of the example, and a fourth for the rebuild fault
  say('building fuzz targets');
  const base = await exampleTarget();
  const [exeA0, exeB0, exeC0, exeC1] = await Promise.all([buildVariant([]), buildVariant(['-O2']), buildVariant(['-O1', '-fno-inline-functions']), buildVariant(['-O0'])]);
  const exeA = copyExe(exeA0!, work, 'a');
  const exeB = copyExe(exeB0!, work, 'b');
  const exeC = copyExe(exeC0!, work, 'c');
  const exeS = copyExe(base.exe, work, 's');
  const exeT = copyExe(base.exe, work, 't');

  let gen = 0;
  let daemon: DaemonProcess;
  const startDaemon = async () => {
    gen++;
    const d = await DaemonProcess.start({ program: 'soak-host', socket, stateDir });
    say(`daemon generation ${gen} at ${d.url} (pid ${d.pid})`);
    return d;
  };
  daemon = await startDaemon();
  const collectErrors = (d: DaemonProcess) => errors.push(...d.errors().filter((l) => !/ExperimentalWarning|--trace-warnings/.test(l.msg)));

  const list = async (): Promise<TargetInfo[]> => {
    const r = await daemon.control({ type: 'list' });
    return r.ok ? (r.targets as TargetInfo[]) : [];
  };
  const targetOfExe = async (exe: string, state = 'ready') => (await list()).find((t) => t.exe === exe && t.state === state);
  const stateOf = async (id: string) => (await list()).find((t) => t.id === id)?.state;
  const waitReady = (id: string, what: string, ms = 90_000) => until(async () => {
    const s = await stateOf(id);
    return s === 'ready';
  }, what, ms, 200);

  // ---- fuzzers and synthetic targets
  const fuzzers = [new Fuzzer('A', exeA, covdDir, socket), new Fuzzer('B', exeB, covdDir, socket), new Fuzzer('C', exeC, covdDir, socket)];
  for (const f of fuzzers) f.start();
  const S = writeSynthetic(join(work, 'synth'), { exe: exeS, pcs: base.pcs, buildId: base.buildId, seen: [0, 3, 5, 8, 13, 21].filter((i) => i < base.pcs.length) });
  const tSeen = Array.from({ length: Math.floor(base.pcs.length / 4) }, (_, i) => i * 4);
  const T = writeSynthetic(join(work, 'synth'), { exe: exeT, pcs: base.pcs, buildId: base.buildId, seen: tSeen });
  const covd = (...args: string[]) => execFileP(process.execPath, [join(repoRoot, 'bin', 'covd'), ...args, '--socket', socket], { timeout: 60_000 });
  await covd('add', S.file, exeS);
  await covd('add', T.file, exeT);
  cli.adds += 2;

  say('waiting for the three fuzzers\' targets');
  const ids = new Map<string, string>(); // fuzzer name -> target id
  await until(async () => {
    for (const f of fuzzers) {
      const t = await targetOfExe(f.exe);
      if (t) ids.set(f.name, t.id);
    }
    return ids.size === 3;
  }, 'the fuzzers\' targets to be ready', 120_000, 250);
  await waitReady(S.id, 'the synthetic target S');
  await waitReady(T.id, 'the synthetic target T');

  // Which targets tabs may follow, and which are exempt from checks for now.
  const live = new Set<string>([...ids.values(), S.id, T.id]);
  const exempt = new Set<string>();
  const files = new Map<string, string>();
  const fileOf = async (id: string) => {
    let f = files.get(id);
    if (!f) {
      f = (await list()).find((t) => t.id === id)?.coverageFile;
      if (f) files.set(id, f);
    }
    return f;
  };

  // ---- tabs that come and go
  const tabs: BenchTab[] = [];
  const pickTarget = () => { const a = [...live]; return a[Math.floor(Math.random() * a.length)]!; };
  const openTab = (id: string, from?: BenchTab) => {
    const resume = from && from.id === id && from.seen && from.seq >= 0;
    const t = new BenchTab(daemon.url, id, resume ? { since: from.seq, seen: Uint8Array.from(from.seen!), epoch: from.epoch } : {});
    tabStats.connects++;
    if (resume) tabStats.resumes++;
    t.opened.catch(() => {});
    tabs.push(t);
    return t;
  };
  const dropTab = (t: BenchTab) => {
    tabStats.snapshots += t.snapshots;
    tabStats.deltas += t.deltas;
    tabStats.gaps += t.gaps;
    t.close();
    tabs.splice(tabs.indexOf(t), 1);
  };
  for (let i = 0; i < nTabs; i++) {
    openTab(pickTarget());
    if (i % 20 === 19) await sleep(200);
  }

  let churning = true;
  const churn = (async () => {
    while (churning) {
      await sleep(100 + Math.random() * 200);
      if (!churning || !daemon.alive || !daemon.url) continue;
      // Replace closed tabs (a daemon restart closes them all); drop one at random now and then.
      for (const t of tabs.filter((x) => x.closed)) { dropTab(t); openTab(live.has(t.id) ? t.id : pickTarget(), t); }
      if (Math.random() < 0.5 && tabs.length) {
        const victim = tabs[Math.floor(Math.random() * tabs.length)]!;
        dropTab(victim);
        openTab(Math.random() < 0.5 && live.has(victim.id) ? victim.id : pickTarget(), victim);
      }
      while (tabs.length < nTabs) openTab(pickTarget());
    }
  })();

  // ---- the invariant, continuously: a tab never holds a bit the file lacks
  const subsetCheck = async () => {
    const byId = new Map<string, BenchTab[]>();
    for (const t of tabs) if (t.seen && !exempt.has(t.id)) (byId.get(t.id) ?? byId.set(t.id, []).get(t.id)!).push(t);
    for (const [id, ts] of byId) {
      const file = await fileOf(id);
      if (!file) continue;
      let seen: Uint8Array;
      try { seen = readCoverageFile(file).seen; } catch { continue; }
      // Synchronously after the read: the file only gains bits, so tab ⊆ file must hold now.
      for (const t of ts) {
        if (!t.seen || exempt.has(t.id)) continue;
        const extra = extraBits(t.seen, seen, t.pcsLen || base.pcs.length);
        tabStats.subsetChecks++;
        if (extra > 0) violations.push(`${new Date().toISOString()} tab on ${id} holds ${extra} bits the file lacks`);
      }
    }
  };

  // ---- memory samples and periodic add/remove
  const t0 = Date.now();
  const sampler = setInterval(() => { if (daemon.alive) rss.push({ t: Date.now() - t0, gen, mib: daemon.rss() / MiB }); }, 1000);
  let sPresent = true;
  const cliEvery = Math.max(8000, duration / 12);
  let nextCli = Date.now() + cliEvery;
  let nextSubset = Date.now() + 2000;

  const at = (frac: number) => t0 + frac * duration;
  const fault = async (name: string, fn: () => Promise<string>) => {
    say(`fault: ${name}`);
    const start = Date.now() - t0;
    try {
      const detail = await fn();
      // The rest keeps serving: every fuzzer's target is ready and the web server answers.
      const stillOk = await Promise.all([...ids.values()].map(async (id) => (await stateOf(id)) === 'ready'));
      const health = await fetch(daemon.url + 'healthz').then((r) => r.ok, () => false);
      const ok = stillOk.every(Boolean) && health;
      faults.push({ name, at: start / 1000, pass: ok, detail: ok ? detail : `${detail}; afterwards: fuzzer targets ready ${JSON.stringify(stillOk)}, healthz ${health}` });
    } catch (err) {
      faults.push({ name, at: start / 1000, pass: false, detail: (err as Error).message });
    }
  };

  const schedule: { frac: number; name: string; fn: () => Promise<string> }[] = [
    {
      frac: 0.12, name: 'fuzzer killed and restarted', fn: async () => {
        const f = fuzzers[0]!;
        await f.stop('SIGKILL');
        await sleep(1000);
        f.start();
        const id = ids.get('A')!;
        const file = (await fileOf(id))!;
        const before = readCoverageFile(file).header.nRuns;
        await until(() => readCoverageFile(file).header.nRuns > before, 'the restarted fuzzer to count runs', 60_000, 200);
        return `fuzzer A restarted and writes the same coverage file (${id})`;
      },
    },
    {
      frac: 0.22, name: 'coverage file truncated', fn: async () => {
        exempt.add(T.id);
        truncateSync(T.file, 100);
        await until(async () => (await stateOf(T.id)) !== 'ready', 'the daemon to notice the truncation', 30_000, 200).catch(() => {});
        const noticed = await stateOf(T.id);
        for (const t of tabs.filter((x) => x.id === T.id)) dropTab(t);
        // Restore the file as the fuzzer would recreate it, and announce it again.
        writeSynthetic(join(work, 'synth'), { exe: exeT, pcs: base.pcs, buildId: base.buildId, seen: tSeen, id: T.id });
        await covd('add', T.file, exeT);
        cli.adds++;
        await waitReady(T.id, 'the restored target T');
        exempt.delete(T.id);
        return `state after truncation: ${noticed}; restored and re-added: ready`;
      },
    },
    {
      frac: 0.32, name: 'symbolizer worker thread killed', fn: async () => {
        const before = daemon.logs.length;
        daemon.child.kill('SIGUSR2');
        await until(() => daemon.logs.slice(before).some((l) => /fault hook/.test(l.msg)), 'the fault hook to act', 10_000);
        const hook = daemon.logs.slice(before).find((l) => /fault hook/.test(l.msg))!;
        await sleep(500);
        // A new executable must still be symbolized.
        const exeU = copyExe(base.exe, work, 'u');
        const U = writeSynthetic(join(work, 'synth'), { exe: exeU, pcs: base.pcs, buildId: base.buildId, seen: [1, 2, 3] });
        await covd('add', U.file, exeU);
        cli.adds++;
        await waitReady(U.id, 'a target symbolized after the thread was killed');
        live.add(U.id);
        return `${hook.msg} (thread ${String(hook.threadId)}); a new target was symbolized afterwards`;
      },
    },
    {
      frac: 0.42, name: 'executable rebuilt', fn: async () => {
        const f = fuzzers[2]!;
        const oldId = ids.get('C')!;
        // Replace the executable under the running fuzzer, as a build does (write beside, rename over).
        const tmp = `${exeC}.new`;
        copyFileSync(exeC1!, tmp);
        renameSync(tmp, exeC);
        await sleep(2000);
        await f.stop();
        f.start();
        let newId = '';
        await until(async () => {
          const t = (await list()).find((x) => x.exe === exeC && x.state === 'ready' && x.id !== oldId);
          if (t) newId = t.id;
          return !!t;
        }, 'the rebuilt executable\'s target', 90_000, 250);
        ids.set('C', newId);
        live.add(newId);
        live.delete(oldId);
        const oldState = await stateOf(oldId);
        return `new target ${newId} ready; the old one (${oldId}) is ${oldState}`;
      },
    },
    {
      frac: 0.52, name: 'daemon SIGKILLed and restarted', fn: async () => {
        // History as served before the kill.
        const hist = new Map<string, HistorySample[]>();
        for (const id of ids.values()) {
          const r = await fetch(`${daemon.url}api/targets/${id}/history`);
          hist.set(id, ((await r.json()) as { samples: HistorySample[] }).samples);
        }
        const killedAt = Date.now();
        collectErrors(daemon);
        await daemon.kill9();
        await sleep(500);
        daemon = await startDaemon();
        files.clear();
        // Every fuzzer target comes back ready, with its stored history.
        for (const id of ids.values()) await waitReady(id, `target ${id} after the restart`, 60_000);
        const missing: string[] = [];
        let kept = 0;
        for (const [id, before] of hist) {
          const r = await fetch(`${daemon.url}api/targets/${id}/history`);
          const after = ((await r.json()) as { samples: HistorySample[] }).samples;
          const have = new Set(after.map((s) => `${s.t}/${s.nRuns}/${s.covered}`));
          // Samples from the last moments before the kill may not have been committed.
          for (const s of before) {
            if (s.t > killedAt - 2000) continue;
            if (have.has(`${s.t}/${s.nRuns}/${s.covered}`)) kept++;
            else missing.push(`${id}@${s.t}`);
          }
        }
        historyCheck = { pass: missing.length === 0 && kept > 0, detail: `${kept} samples stored before the kill served after it; missing ${missing.length}${missing.length ? ': ' + missing.slice(0, 5).join(', ') : ''}` };
        return `restarted as generation ${gen}; ${historyCheck.detail}`;
      },
    },
  ];
  let historyCheck: { pass: boolean; detail: string } = { pass: false, detail: 'the daemon-kill fault did not run' };

  say(`soaking for ${seconds} s`);
  for (const step of schedule) {
    while (Date.now() < at(step.frac)) {
      await sleep(200);
      if (Date.now() >= nextSubset) { await subsetCheck(); nextSubset = Date.now() + 2000; }
      if (Date.now() >= nextCli) { nextCli = Date.now() + cliEvery; await cliToggle(); }
    }
    await fault(step.name, step.fn);
  }
  return finish();

  async function cliToggle() {
    try {
      await toggleS();
    } catch (err) {
      cliErrors.push((err as Error).message);
    }
  }
  async function toggleS() {
    if (sPresent) {
      live.delete(S.id);
      exempt.add(S.id);
      for (const t of tabs.filter((x) => x.id === S.id)) dropTab(t);
      await covd('remove', S.id);
      cli.removes++;
    } else {
      await covd('add', S.file, exeS);
      cli.adds++;
      await waitReady(S.id, 'S after covd add');
      exempt.delete(S.id);
      live.add(S.id);
    }
    sPresent = !sPresent;
  }

  async function finish(): Promise<SoakResult> {
    while (Date.now() < t0 + duration) {
      await sleep(200);
      if (Date.now() >= nextSubset) { await subsetCheck(); nextSubset = Date.now() + 2000; }
      if (Date.now() >= nextCli && Date.now() < t0 + duration - 15_000) { nextCli = Date.now() + cliEvery; await cliToggle(); }
    }
    clearInterval(sampler);
    say('stopping the fuzzers and letting the tabs settle');
    churning = false;
    await churn;
    for (const f of fuzzers) await f.stop();
    await subsetCheck();
    // After the fuzzers stop, every tab must end with exactly the file's bits.
    let mismatched: string[] = [];
    const settle = async () => {
      mismatched = [];
      for (const t of tabs) {
        if (exempt.has(t.id) || !live.has(t.id) || t.closed) continue;
        const file = await fileOf(t.id);
        if (!file) continue;
        const seen = readCoverageFile(file).seen;
        if (!t.seen || extraBits(t.seen, seen, t.pcsLen) || extraBits(seen, t.seen, t.pcsLen)) mismatched.push(t.id);
      }
      return mismatched.length === 0;
    };
    await until(settle, 'every tab to hold its file\'s bits', 20_000, 250).catch(() => {});
    const compared = tabs.filter((t) => !exempt.has(t.id) && live.has(t.id) && !t.closed).length;
    for (const t of [...tabs]) dropTab(t);

    collectErrors(daemon);
    await daemon.stop();
    collectErrors(daemon);
    rmSync(work, { recursive: true, force: true });

    // Memory: the last daemon lifetime, after its first 40 %.
    const last = rss.filter((r) => r.gen === gen && Number.isFinite(r.mib));
    const warm = last.slice(Math.floor(last.length * 0.4));
    const half = Math.floor(warm.length / 2);
    const m1 = median(warm.slice(0, half).map((r) => r.mib)), m2 = median(warm.slice(half).map((r) => r.mib));
    const allowed = Math.max(16, 0.08 * m1);
    const memPass = warm.length >= 6 && m2 - m1 <= allowed;

    checks.push({ name: 'tabs never ahead of the file', pass: violations.length === 0 && tabStats.subsetChecks > 0, detail: `${tabStats.subsetChecks} tab checks; ${violations.length} violations${violations.length ? ': ' + violations.slice(0, 3).join('; ') : ''}` });
    checks.push({ name: 'tabs equal the file after settling', pass: mismatched.length === 0 && compared > 0, detail: `${compared} tabs compared; ${mismatched.length} differ${mismatched.length ? ' (targets ' + [...new Set(mismatched)].join(', ') + ')' : ''}` });
    checks.push({ name: 'memory settles', pass: memPass, detail: `last daemon lifetime after warm-up: median ${m1.toFixed(1)} MiB then ${m2.toFixed(1)} MiB (allowed growth ${allowed.toFixed(1)} MiB, ${warm.length} samples)` });
    checks.push({ name: 'no error in the log', pass: errors.length === 0, detail: errors.length ? errors.slice(0, 3).map((e) => `${e.level}: ${e.msg}`).join('; ') : 'none' });
    checks.push({ name: 'history intact across SIGKILL', ...historyCheck });
    checks.push({ name: 'covd add / remove work throughout', pass: cliErrors.length === 0 && cli.removes > 0, detail: `${cli.adds} adds, ${cli.removes} removes; ${cliErrors.length} failed${cliErrors.length ? ': ' + cliErrors.slice(0, 2).join('; ') : ''}` });
    checks.push({ name: 'every fault left the rest serving', pass: faults.length === schedule.length && faults.every((f) => f.pass), detail: `${faults.filter((f) => f.pass).length}/${schedule.length} faults passed` });
    return {
      seconds, pass: checks.every((c) => c.pass), checks, faults, tabs: tabStats, cli, rss, errors: errors.slice(0, 50),
    };
  }
}

export function soakTable(r: SoakResult): string {
  const rows: (string | number)[][] = [['check', 'verdict', 'detail']];
  for (const c of r.checks) rows.push([c.name, c.pass ? 'pass' : 'FAIL', c.detail]);
  const frows: (string | number)[][] = [['fault', 'at (s)', 'verdict', 'detail']];
  for (const f of r.faults) frows.push([f.name, Math.round(f.at), f.pass ? 'pass' : 'FAIL', f.detail]);
  const rssAll = r.rss.map((x) => x.mib).filter(Number.isFinite);
  return `Soak: ${r.seconds} s, 3 libFuzzer processes, ${TABS} tabs churning (${r.tabs.connects} connections, ${r.tabs.resumes} resumed), ` +
    `${r.cli.adds} covd add / ${r.cli.removes} covd remove; verdict: ${r.pass ? 'PASS' : 'FAIL'}\n\n` + table(rows) + '\n\n' + table(frows) +
    `\n\ndaemon RSS over the run: min ${Math.min(...rssAll).toFixed(0)} MiB, max ${Math.max(...rssAll).toFixed(0)} MiB; tabs got ${r.tabs.snapshots} snapshots and ${r.tabs.deltas} deltas (${r.tabs.gaps} seq gaps resynced)`;
}

if (isMain(import.meta.url)) {
  const flags = benchFlags();
  const seconds = flags.seconds ?? (process.env.COVD_SOAK_SECONDS ? Number(process.env.COVD_SOAK_SECONDS) : flags.quick ? 150 : 600);
  const r = await runSoak({ seconds, progress: (s) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}] ${s}`) });
  console.log(soakTable(r));
  console.log(`\nresults: ${writeResults('soak', r)}`);
  process.exit(r.pass ? 0 : 1);
}
