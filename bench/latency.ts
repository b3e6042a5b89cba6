/**
 * Latency: from a producer marking a new PC in a live coverage file to every one of 100 tabs
 * having it, through a real daemon (`covd serve` in a child process) and real WebSockets.
 *
 *   notified: after the bit, the producer sends a `coverage` frame on the control socket
 *             (goal: p99 < 50 ms)
 *   poll:     the bit only; the coverage thread finds it at its next 500 ms tick
 *             (goal: p99 < 600 ms)
 *
 * The producer writes the file as the agent does (seen bit, then n_runs + 1). Trials are spaced
 * by random gaps so the poll trials land at random phases of the tick. The tabs live in this
 * process, so their decoding is part of the figure (a conservative measure).
 *
 *   node dist/bench/latency.js [--quick]
 */
import { rmSync } from 'node:fs';
import { DaemonProcess, sleep, tempDir, until } from './lib/daemon-process.js';
import { cyclePcs, exampleTarget, writeSynthetic } from './lib/fixtures.js';
import { Producer } from './lib/producer.js';
import { openTabs, type BenchTab } from './lib/tab.js';
import { median, percentile, table, writeResults } from './lib/results.js';
import { benchFlags, isMain } from './lib/cli.js';

export interface LatencyModeResult {
  mode: 'notified' | 'poll';
  trials: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
  goalMs: number;
  pass: boolean;
  /** Per-round p50/p99 (rounds of equal size), to show the spread. */
  rounds: { p50: number; p99: number }[];
  /** Time to the first tab, p50, to separate the daemon's share from the fan-out. */
  firstTabP50: number;
}

export interface LatencyResult {
  tabs: number;
  pcsLen: number;
  modes: LatencyModeResult[];
  daemonCpuMs: number;
}

const TABS = 100;
const PCS = 50_000;

export async function runLatency(opts: { quick?: boolean } = {}): Promise<LatencyResult> {
  const quick = opts.quick ?? false;
  const target = await exampleTarget();
  const daemon = await DaemonProcess.start();
  const work = tempDir('covd-latency-');
  const tabs: BenchTab[] = [];
  try {
    const pcs = cyclePcs(target.pcs, PCS);
    const { file, id } = writeSynthetic(work, { exe: target.exe, pcs, buildId: target.buildId });
    const msg = { type: 'coverage' as const, id, exe: target.exe, file };
    const r = await daemon.control(msg);
    if (!r.ok) throw new Error(`daemon refused the target: ${r.error}`);
    await until(async () => {
      const l = await daemon.control({ type: 'list' });
      const t = l.ok ? (l.targets as { id: string; state: string; error?: string }[]).find((x) => x.id === id) : undefined;
      if (t?.state === 'failed') throw new Error(`target failed: ${t.error}`);
      return t?.state === 'ready';
    }, 'the target to be ready', 120_000);

    tabs.push(...(await openTabs(daemon.url, id, TABS)));
    await until(() => tabs.every((t) => t.seen !== null), 'every tab to get its snapshot', 60_000);

    // Which PC each tab is waiting for, and when each got it.
    let want = -1;
    let arrived = 0;
    let firstAt = 0;
    let allAt = 0;
    for (const t of tabs) {
      t.onApplied = (_tab, fresh) => {
        if (want < 0 || !fresh || !fresh.includes(want)) return;
        const now = performance.now();
        if (arrived === 0) firstAt = now;
        if (++arrived === TABS) allAt = now;
      };
    }

    let next = 0;
    const cpu0 = daemon.cpuMs();
    const modes: LatencyModeResult[] = [];
    for (const mode of ['notified', 'poll'] as const) {
      const trials = mode === 'notified' ? (quick ? 60 : 300) : (quick ? 20 : 80);
      const producer = new Producer(file, PCS, mode === 'notified' ? { socket: daemon.socket, msg } : undefined);
      await producer.connect();
      const lat: number[] = [];
      const first: number[] = [];
      for (let i = 0; i < trials; i++) {
        // A random gap: random phase against the tick, and a quiet daemon between trials.
        await sleep(mode === 'notified' ? 20 + Math.random() * 60 : Math.random() * 500);
        want = next++;
        arrived = 0;
        const t0 = performance.now();
        producer.mark(want);
        await until(() => arrived === TABS, `all tabs to get PC ${want} (${mode})`, 10_000, 1);
        lat.push(allAt - t0);
        first.push(firstAt - t0);
        want = -1;
      }
      producer.close();
      const goalMs = mode === 'notified' ? 50 : 600;
      const per = Math.max(1, Math.floor(lat.length / 3));
      const rounds = [0, 1, 2].map((k) => lat.slice(k * per, (k + 1) * per)).filter((x) => x.length).map((x) => ({ p50: percentile(x, 50), p99: percentile(x, 99) }));
      const p99 = percentile(lat, 99);
      modes.push({
        mode, trials, p50: median(lat), p99, max: Math.max(...lat), mean: lat.reduce((a, b) => a + b, 0) / lat.length,
        goalMs, pass: p99 < goalMs, rounds, firstTabP50: median(first),
      });
    }
    const errs = daemon.errors();
    if (errs.length) throw new Error(`the daemon logged errors: ${JSON.stringify(errs.slice(0, 3))}`);
    return { tabs: TABS, pcsLen: PCS, modes, daemonCpuMs: daemon.cpuMs() - cpu0 };
  } finally {
    for (const t of tabs) t.close();
    await daemon.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

export function latencyTable(r: LatencyResult): string {
  const n = r.modes.find((m) => m.mode === 'notified');
  const p = r.modes.find((m) => m.mode === 'poll');
  const rows: (string | number)[][] = [['mode', 'trials', 'first tab p50 (ms)', 'all tabs p50 (ms)', 'p99 (ms)', 'max (ms)', 'goal p99', 'verdict']];
  for (const m of r.modes) rows.push([m.mode, m.trials, m.firstTabP50, m.p50, m.p99, m.max, `< ${m.goalMs} ms`, m.pass ? 'pass' : 'FAIL']);
  let s = `Latency: a new PC in the coverage file -> all ${r.tabs} tabs have it (target of ${r.pcsLen} PCs, real daemon, WebSocket tabs)\n\n` + table(rows);
  if (n && p) s += `\n\npoll / notified: p50 ${(p.p50 / n.p50).toFixed(1)}x, p99 ${(p.p99 / n.p99).toFixed(1)}x`;
  return s;
}

if (isMain(import.meta.url)) {
  const flags = benchFlags();
  const r = await runLatency({ quick: flags.quick });
  console.log(latencyTable(r));
  console.log(`\nresults: ${writeResults('latency', r)}`);
  process.exit(0);
}
