/**
 * Agent overhead: libFuzzer executions per second on the sqlite target with the covd agent
 * against the same target without it (plain libFuzzer), measured in one run, interleaved, so
 * machine load hits both alike.
 *
 * Every run does the same work: the same corpus (a fresh copy), the same libFuzzer -seed and the
 * same -runs, so plain and agent runs execute the same inputs (their final cov/ft/corpus match,
 * which the table shows). Reported: exec/s over the process's CPU time (user + sys, from the
 * shell's `times`; robust on a shared machine) and over wall time. Two corpora: empty (tiny
 * inputs, the highest exec/s, the agent's worst case) and examples/sqlite/corpus (the seeds).
 *
 *   node dist/bench/agent-overhead.js [--rounds 2] [--runs-empty 600000] [--runs-seeds 20000]
 *       [--target sqlite|tinyimg] [--variants] [--disabled] [--listening]
 *
 * --variants adds the agent's other counter scans (COVD_AGENT_SCAN=sse2, portable); --disabled the
 * agent with an unusable coverage directory (it must then cost nothing); --listening the agent
 * with a control socket that reads and answers its frames like the daemon, so every new-coverage
 * notification is really sent (the default configs have no daemon: connects fail and back off).
 * Writes bench/results/agent-overhead.json (agent-overhead-<target>.json for other targets). Goal: agent >= 90% of plain libFuzzer.
 */
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, table, writeResults } from './lib/results.js';
import { encodeFrame, FrameDecoder } from '../src/bus/framing.js';
import { buildExampleTarget, buildSqliteTarget, seedCorpusFor } from '../src/build/targets.js';

interface RunResult {
  config: string;
  corpus: string;
  round: number;
  runs: number;
  cpuSeconds: number;
  wallSeconds: number;
  cpuExecPerSec: number;
  wallExecPerSec: number;
  /** The final status line's "cov: C ft: F corp: N/S", equal across configs when the work was the same. */
  final: string;
  /** Frames the agent sent (COVD_AGENT_STATS), when it printed them. */
  notifications?: number;
  /** Inputs the agent saved (they found new coverage) and the time it spent saving them, ms (COVD_AGENT_STATS). */
  inputsSaved?: number;
  saveMs?: number;
}

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    'runs-empty': { type: 'string', default: '600000' },
    'runs-seeds': { type: 'string', default: '20000' },
    target: { type: 'string', default: 'sqlite' },
    variants: { type: 'boolean', default: false },
    disabled: { type: 'boolean', default: false },
    listening: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('usage: node dist/bench/agent-overhead.js [--rounds 2] [--runs-empty 600000] [--runs-seeds 20000] [--target sqlite|tinyimg] [--variants] [--disabled] [--listening]');
  process.exit(0);
}
const rounds = Number(values.rounds);
const runsFor: Record<string, number> = { empty: Number(values['runs-empty']), seeds: Number(values['runs-seeds']) };
if (!(rounds > 0) || !(runsFor.empty! > 0) || !(runsFor.seeds! > 0)) throw new Error('--rounds and --runs-* must be positive numbers');

function seconds(t: string): number {
  const m = /^(\d+)m([\d.]+)s$/.exec(t);
  if (!m) throw new Error(`cannot parse time ${t}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

async function fuzzOnce(exe: string, seeds: string | null, runs: number, env: NodeJS.ProcessEnv): Promise<Omit<RunResult, 'config' | 'corpus' | 'round'>> {
  const work = mkdtempSync(join(tmpdir(), 'covd-bench-'));
  const corpus = join(work, 'corpus');
  if (seeds) cpSync(seeds, corpus, { recursive: true }); // a fresh copy: every run starts from the same corpus
  else mkdirSync(corpus);
  const t0 = process.hrtime.bigint();
  // `times` reports the CPU time of the shell's finished children: the fuzzer alone.
  const child = spawn('bash', ['-c', '"$0" "$@"; rc=$?; times >&2; exit $rc', exe, `-runs=${runs}`, '-seed=12345', '-timeout=10', corpus], {
    cwd: work,
    env: { ...process.env, COVD_SOCKET: join(work, 'no-daemon.sock'), ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-200_000);
  });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  rmSync(work, { recursive: true, force: true });
  const lines = stderr.trimEnd().split('\n');
  const [user, sys] = lines[lines.length - 1]!.trim().split(/\s+/).map(seconds) as [number, number];
  const done = lines.filter((l) => /^#\d+\s+DONE/.test(l)).pop();
  if (code !== 0 || !done) throw new Error(`fuzzer failed (exit ${code}):\n${stderr.slice(-3000)}`);
  const final = /cov: \d+ ft: \d+ corp: \S+/.exec(done)?.[0] ?? '?';
  const cpuSeconds = user + sys;
  const sent = /covd-agent: notifications sent=(\d+)/.exec(stderr)?.[1];
  const saved = /covd-agent: inputs saved=(\d+) .* save_us=(\d+)/.exec(stderr);
  return {
    runs, cpuSeconds, wallSeconds, cpuExecPerSec: runs / cpuSeconds, wallExecPerSec: runs / wallSeconds, final,
    ...(sent ? { notifications: Number(sent) } : {}), ...(saved ? { inputsSaved: Number(saved[1]), saveMs: Number(saved[2]) / 1000 } : {}),
  };
}

async function main(): Promise<void> {
  const sqlite = values.target === 'sqlite';
  console.error(`building ${values.target} with and without the agent (cached after the first time)...`);
  const withAgent = sqlite ? await buildSqliteTarget() : await buildExampleTarget();
  const plain = sqlite ? await buildSqliteTarget({ agent: false }) : await buildExampleTarget({ agent: false });
  const seeds = seedCorpusFor(withAgent)!;
  const covdRoot = mkdtempSync(join(tmpdir(), 'covd-bench-dir-'));
  const fresh = () => mkdtempSync(join(covdRoot, 'c-'));
  const configs: { name: string; exe: string; env: () => NodeJS.ProcessEnv }[] = [
    { name: 'plain libFuzzer', exe: plain, env: () => ({ COVD_DIR: fresh() }) },
    // COVD_AGENT_STATS: how many inputs the agent saved (only those that found new coverage) and how long that took.
    { name: 'covd agent', exe: withAgent, env: () => ({ COVD_DIR: fresh(), COVD_AGENT_STATS: '1' }) },
  ];
  if (values.variants) {
    configs.push({ name: 'agent, sse2 scan', exe: withAgent, env: () => ({ COVD_DIR: fresh(), COVD_AGENT_SCAN: 'sse2' }) });
    configs.push({ name: 'agent, portable scan', exe: withAgent, env: () => ({ COVD_DIR: fresh(), COVD_AGENT_SCAN: 'portable' }) });
  }
  // A stand-in daemon for --listening: reads frames and answers each one, as the daemon does.
  const sockets = new Set<Socket>();
  const server = createServer((c) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c)).on('error', () => {});
    const dec = new FrameDecoder();
    c.on('data', (d) => {
      for (const m of dec.push(d)) c.write(encodeFrame({ ok: true, id: (m as { id?: string }).id, state: 'ready' }));
    });
  });
  const listenSock = join(covdRoot, 'covd.sock');
  if (values.listening) {
    await new Promise<void>((r) => server.listen(listenSock, r));
    configs.push({ name: 'agent, daemon listening', exe: withAgent, env: () => ({ COVD_DIR: fresh(), COVD_SOCKET: listenSock, COVD_AGENT_STATS: '1' }) });
  }
  if (values.disabled) {
    configs.push({ name: 'agent, unusable dir', exe: withAgent, env: () => ({ COVD_DIR: '/proc/covd-bench-unwritable', COVD_AGENT_QUIET: '1' }) });
  }
  const results: RunResult[] = [];
  try {
    for (const corpus of ['empty', 'seeds']) {
      for (let round = 1; round <= rounds; round++) {
        // Alternate the order each round so drift in machine load does not favour one side.
        const order = round % 2 ? configs : [...configs].reverse();
        for (const c of order) {
          const r = await fuzzOnce(c.exe, corpus === 'seeds' ? seeds : null, runsFor[corpus]!, c.env());
          results.push({ config: c.name, corpus, round, ...r });
          console.error(`${corpus} round ${round} ${c.name}: ${r.cpuExecPerSec.toFixed(0)} exec/s (CPU), ${r.wallExecPerSec.toFixed(0)} (wall), ${r.final}`);
        }
      }
    }
  } finally {
    for (const c of sockets) c.destroy();
    server.close();
    rmSync(covdRoot, { recursive: true, force: true });
  }
  const rows: (string | number)[][] = [['corpus', 'config', 'round', 'runs', 'CPU s', 'exec/s (CPU)', 'exec/s (wall)', 'final', 'notifications', 'inputs saved', 'saving ms']];
  for (const r of results) rows.push([r.corpus, r.config, r.round, r.runs, r.cpuSeconds, Math.round(r.cpuExecPerSec), Math.round(r.wallExecPerSec), r.final, r.notifications ?? '-', r.inputsSaved ?? '-', r.saveMs ?? '-']);
  console.log(table(rows));
  const summary: { corpus: string; config: string; cpuExecPerSec: number; wallExecPerSec: number; cpuRatio: number; wallRatio: number }[] = [];
  for (const corpus of ['empty', 'seeds']) {
    const of = (name: string, k: 'cpuExecPerSec' | 'wallExecPerSec') => median(results.filter((r) => r.corpus === corpus && r.config === name).map((r) => r[k]));
    for (const c of configs) {
      summary.push({
        corpus,
        config: c.name,
        cpuExecPerSec: Math.round(of(c.name, 'cpuExecPerSec')),
        wallExecPerSec: Math.round(of(c.name, 'wallExecPerSec')),
        cpuRatio: of(c.name, 'cpuExecPerSec') / of('plain libFuzzer', 'cpuExecPerSec'),
        wallRatio: of(c.name, 'wallExecPerSec') / of('plain libFuzzer', 'wallExecPerSec'),
      });
    }
  }
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log('\n' + table([
    ['corpus', 'config', 'median exec/s (CPU)', 'vs plain', 'median exec/s (wall)', 'vs plain'],
    ...summary.map((s) => [s.corpus, s.config, s.cpuExecPerSec, pct(s.cpuRatio), s.wallExecPerSec, pct(s.wallRatio)]),
  ]));
  const file = writeResults(values.target === 'sqlite' ? 'agent-overhead' : `agent-overhead-${values.target}`, { target: values.target, rounds, runs: runsFor, results, summary, goal: 'agent >= 90% of plain libFuzzer exec/s' });
  console.error(`wrote ${file}`);
}

await main();
