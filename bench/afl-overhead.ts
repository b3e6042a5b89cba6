/**
 * AFL++ overhead of the agent: afl-fuzz executions per second on an AFL++ build with the covd
 * agent (`covd cc --engine=afl`) against the same build without it (`--engine=afl --no-agent`:
 * the same trace-pc-guard, 8-bit-counter and PC-table instrumentation, the agent left out),
 * measured in one run, interleaved, so machine load hits both alike. The follow-up of
 * bench/agent-overhead.ts for the second engine.
 *
 * Every run is one afl-fuzz instance with the same seeds (a fresh copy), the same RNG seed (-s)
 * and the same execution budget (-E), in persistent mode (the driver's default). AFL++'s
 * scheduling also follows measured execution times, so the two sides do not execute exactly the
 * same inputs; the table shows their final corpus and edges to compare. Reported: afl-fuzz's own
 * execs_per_sec (executions over its run time: what AFL++ users see), executions over wall
 * time, and executions over CPU time (robust on a shared machine): afl-fuzz's user + sys from the
 * shell's `times`, plus the target's runner processes sampled from /proc every 100 ms (afl-fuzz
 * kills the fork server and its runner at the end, so nobody reaps the runner and `times` never
 * sees its CPU; a sample misses at most its last 100 ms). Ratios against the build without the
 * agent: of the medians, and paired (each round's ratio, both sides run back to back under the
 * same load, then the median over rounds; the better guide on a busy machine), and paired over
 * the "same work" rounds only (both ended with the same corpus and edges: same decisions). The agent side has no daemon listening unless --listening (then a stand-in
 * daemon answers every frame, so each new-coverage notification is really sent).
 *
 *   node dist/bench/afl-overhead.js [--rounds 3] [--execs 300000] [--target sqlite|tinyimg] [--listening]
 *
 * Writes bench/results/afl-overhead.json (afl-overhead-<target>.json for tinyimg). Goal: the
 * agent build keeps >= 90% of the exec/s of the build without it.
 */
import { createServer, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, table, writeResults } from './lib/results.js';
import { encodeFrame, FrameDecoder } from '../src/bus/framing.js';
import { buildAflExampleTarget, buildAflSqliteTarget, copySeeds, runAfl } from '../src/afl/targets.js';
import { packageRoot } from '../src/build/toolchain.js';
import { exampleDir } from '../src/build/targets.js';

interface RunResult {
  config: string;
  round: number;
  execs: number;
  cpuSeconds: number;
  wallSeconds: number;
  cpuExecPerSec: number;
  wallExecPerSec: number;
  /** fuzzer_stats execs_per_sec: execs_done over afl-fuzz's run time. */
  aflExecPerSec: number;
  corpus: number;
  edges: number;
}

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    execs: { type: 'string', default: '300000' },
    target: { type: 'string', default: 'sqlite' },
    listening: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('usage: node dist/bench/afl-overhead.js [--rounds 3] [--execs 300000] [--target sqlite|tinyimg] [--listening]');
  process.exit(0);
}
const rounds = Number(values.rounds);
const execs = Number(values.execs);
if (!(rounds > 0) || !(execs > 0)) throw new Error('--rounds and --execs must be positive numbers');
if (values.target !== 'sqlite' && values.target !== 'tinyimg') throw new Error('--target must be sqlite or tinyimg');

function seconds(t: string): number {
  const m = /^(\d+)m([\d.]+)s$/.exec(t);
  if (!m) throw new Error(`cannot parse time ${t}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

function stats(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of readFileSync(join(dir, 'fuzzer_stats'), 'utf8').split('\n')) {
    const m = /^(\w+)\s*: (.*)$/.exec(l);
    if (m) out[m[1]!] = m[2]!.trim();
  }
  return out;
}

/** CPU time of the processes the fork servers forked (afl-fuzz's grandchildren), by sampling /proc. */
class RunnerCpu {
  private readonly ticks = new Map<number, number>();

  private static children(pid: number): number[] {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** shell -> afl-fuzz -> fork server -> runner */
  sample(shell: number): void {
    for (const afl of RunnerCpu.children(shell)) {
      for (const fsrv of RunnerCpu.children(afl)) {
        for (const runner of RunnerCpu.children(fsrv)) {
          try {
            const st = readFileSync(`/proc/${runner}/stat`, 'utf8');
            const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
            const t = Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
            this.ticks.set(runner, Math.max(this.ticks.get(runner) ?? 0, t));
          } catch { /* exited meanwhile */ }
        }
      }
    }
  }

  runnerSeconds(): number {
    let t = 0;
    for (const v of this.ticks.values()) t += v;
    return t / 100; // CLK_TCK
  }
}

async function fuzzOnce(exe: string, seeds: string, env: NodeJS.ProcessEnv): Promise<Omit<RunResult, 'config' | 'round'>> {
  const work = mkdtempSync(join(tmpdir(), 'covd-afl-bench-'));
  try {
    const t0 = process.hrtime.bigint();
    const cpu = new RunnerCpu();
    const run = runAfl(exe, {
      input: copySeeds(seeds, join(work, 'in')), output: join(work, 'out'), execs, seed: 12345, covdDir: join(work, 'cov'),
      times: true, env: { COVD_AGENT_QUIET: '1', ...env },
    });
    const timer = setInterval(() => cpu.sample(run.child.pid!), 100);
    const { code, stderr } = await run.done;
    clearInterval(timer);
    const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (code !== 0) throw new Error(`afl-fuzz failed (exit ${code}):\n${stderr.slice(-3000)}`);
    // `times` prints the shell's own times, then its children's: afl-fuzz and everything it ran.
    const lines = stderr.trimEnd().split('\n');
    const [user, sys] = lines[lines.length - 1]!.trim().split(/\s+/).map(seconds) as [number, number];
    const s = stats(run.instanceDir);
    const done = Number(s.execs_done);
    const cpuSeconds = user + sys + cpu.runnerSeconds();
    return {
      execs: done, cpuSeconds, wallSeconds, cpuExecPerSec: done / cpuSeconds, wallExecPerSec: done / wallSeconds,
      aflExecPerSec: Number(s.execs_per_sec), corpus: Number(s.corpus_count), edges: Number(s.edges_found),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const sqlite = values.target === 'sqlite';
  console.error(`building ${values.target} for AFL++ with and without the agent (cached after the first time)...`);
  const withAgent = sqlite ? await buildAflSqliteTarget() : await buildAflExampleTarget();
  const plain = sqlite ? await buildAflSqliteTarget({ agent: false }) : await buildAflExampleTarget({ agent: false });
  const seeds = sqlite ? join(packageRoot(), 'examples', 'sqlite', 'corpus') : join(exampleDir(), 'corpus');
  const root = mkdtempSync(join(tmpdir(), 'covd-afl-bench-dir-'));
  const configs: { name: string; exe: string; env: NodeJS.ProcessEnv }[] = [
    { name: 'AFL++, no agent', exe: plain, env: {} },
    { name: 'AFL++ + covd agent', exe: withAgent, env: {} },
  ];
  const sockets = new Set<Socket>();
  const server = createServer((c) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c)).on('error', () => {});
    const dec = new FrameDecoder();
    c.on('data', (d) => {
      for (const m of dec.push(d)) c.write(encodeFrame({ ok: true, id: (m as { id?: string }).id, state: 'ready' }));
    });
  });
  const listenSock = join(root, 'covd.sock');
  if (values.listening) {
    await new Promise<void>((r) => server.listen(listenSock, r));
    configs.push({ name: 'agent, daemon listening', exe: withAgent, env: { COVD_SOCKET: listenSock } });
  }
  const results: RunResult[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 ? configs : [...configs].reverse();
      for (const c of order) {
        const r = await fuzzOnce(c.exe, seeds, c.env);
        results.push({ config: c.name, round, ...r });
        console.error(`round ${round} ${c.name}: ${r.cpuExecPerSec.toFixed(0)} exec/s (CPU), ${r.wallExecPerSec.toFixed(0)} (wall), afl ${r.aflExecPerSec.toFixed(0)}, corpus ${r.corpus}, edges ${r.edges}`);
      }
    }
  } finally {
    for (const c of sockets) c.destroy();
    server.close();
    rmSync(root, { recursive: true, force: true });
  }
  const rows: (string | number)[][] = [['config', 'round', 'execs', 'CPU s', 'exec/s (CPU)', 'exec/s (wall)', 'afl exec/s', 'corpus', 'edges']];
  for (const r of results) rows.push([r.config, r.round, r.execs, r.cpuSeconds, Math.round(r.cpuExecPerSec), Math.round(r.wallExecPerSec), Math.round(r.aflExecPerSec), r.corpus, r.edges]);
  console.log(table(rows));
  const of = (name: string, k: 'cpuExecPerSec' | 'wallExecPerSec' | 'aflExecPerSec') => median(results.filter((r) => r.config === name).map((r) => r[k]));
  const base = configs[0]!.name;
  // Paired: each round's ratio against the baseline of the same round (both ran within a minute
  // of each other, under the same load), then the median over rounds. Robust on a shared machine.
  // "Same work": only the rounds where both ended with the same corpus and edges, i.e. AFL++ took
  // the same decisions (its scheduling follows measured times, so a run can wander off and then
  // executes other, often slower, inputs).
  const paired = (name: string, k: 'cpuExecPerSec' | 'aflExecPerSec', sameWork = false) => median([...Array(rounds).keys()].flatMap((i) => {
    const r = results.find((x) => x.config === name && x.round === i + 1)!;
    const b = results.find((x) => x.config === base && x.round === i + 1)!;
    return sameWork && (r.corpus !== b.corpus || r.edges !== b.edges) ? [] : [r[k] / b[k]];
  }));
  const sameWorkRounds = (name: string) => [...Array(rounds).keys()].filter((i) => {
    const r = results.find((x) => x.config === name && x.round === i + 1)!;
    const b = results.find((x) => x.config === base && x.round === i + 1)!;
    return r.corpus === b.corpus && r.edges === b.edges;
  }).length;
  const summary = configs.map((c) => ({
    config: c.name,
    cpuExecPerSec: Math.round(of(c.name, 'cpuExecPerSec')),
    wallExecPerSec: Math.round(of(c.name, 'wallExecPerSec')),
    aflExecPerSec: Math.round(of(c.name, 'aflExecPerSec')),
    cpuRatio: of(c.name, 'cpuExecPerSec') / of(base, 'cpuExecPerSec'),
    wallRatio: of(c.name, 'wallExecPerSec') / of(base, 'wallExecPerSec'),
    aflRatio: of(c.name, 'aflExecPerSec') / of(base, 'aflExecPerSec'),
    pairedCpuRatio: paired(c.name, 'cpuExecPerSec'),
    pairedAflRatio: paired(c.name, 'aflExecPerSec'),
    sameWorkRounds: sameWorkRounds(c.name),
    sameWorkCpuRatio: paired(c.name, 'cpuExecPerSec', true),
    sameWorkAflRatio: paired(c.name, 'aflExecPerSec', true),
  }));
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log('\n' + table([
    ['config', 'median exec/s (CPU)', 'vs no agent', 'median afl exec/s', 'vs no agent', 'paired: CPU', 'afl', 'same-work rounds', 'same work: CPU', 'afl'],
    ...summary.map((s) => [s.config, s.cpuExecPerSec, pct(s.cpuRatio), s.aflExecPerSec, pct(s.aflRatio), pct(s.pairedCpuRatio), pct(s.pairedAflRatio), `${s.sameWorkRounds}/${rounds}`, pct(s.sameWorkCpuRatio), pct(s.sameWorkAflRatio)]),
  ]));
  const file = writeResults(sqlite ? 'afl-overhead' : `afl-overhead-${values.target}`, { target: values.target, rounds, execs, results, summary, goal: 'AFL++ with the agent >= 90% of the exec/s of the same build without it' });
  console.error(`wrote ${file}`);
}

await main();
