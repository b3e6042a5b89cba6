/**
 * Fleet: one viewing daemon (`covd serve --nats`, a real child process) holding simulated fleets
 * of 10, 50 and 200 nodes, each node with the same 10 builds of 50,000 PCs, through a real
 * nats-server on loopback. The nodes are in this process: each is a NodePublisher (src/fleet,
 * the code a daemon publishes with) speaking the real protocol; 20 nodes share one connection.
 *
 * Each node starts mid-campaign (about 27 % of each target covered, mostly the same PCs as the
 * others), then finds new PCs at a steady rate, each one new to the whole fleet, while its runs
 * counters move. Measured, per fleet size, over the steady phase:
 *   - the viewer's CPU (share of one core) and resident memory, and the initial load;
 *   - latency from a node's new PC (the moment its fuzzer would report it) to a WebSocket client
 *     of the viewer having it in a delta: p50 / p99 / max;
 *   - bytes each node publishes per minute (coverage and status), payload plus subject.
 * Then, on 10 nodes, how those bytes scale with the rate of new coverage and with the number of
 * PCs. nats-server and the simulated nodes run on the same two cores as the viewer.
 *
 *   node dist/bench/fleet.js [--nodes 10,50,200] [--seconds 60] [--rate 6] [--quick]
 *   (--rate: new PCs per node per minute; --quick: 10 and 50 nodes, 20 s)
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DaemonProcess, MiB, procCpuMs, procStatusBytes, sleep, tempDir, until } from './lib/daemon-process.js';
import { openTabs, type BenchTab } from './lib/tab.js';
import { percentile, table, writeResults } from './lib/results.js';
import { fmtMs, isMain } from './lib/cli.js';
import { startNats } from '../test/fleet/nats-server.js';
import { pcTableHash } from '../src/contracts/ids.js';
import { NONE, type SourceIndex } from '../src/contracts/source-index.js';
import { createLogger } from '../src/util/log.js';
import { FleetLink } from '../src/fleet/nats.js';
import { NodePublisher, type OwnCounters } from '../src/fleet/publisher.js';
import { fleetNames, type BuildRecord } from '../src/fleet/protocol.js';

interface Build { id: string; pcs: BigUint64Array; index: SourceIndex; pcsLen: number }

/** A synthetic build: distinct PCs per target, 250 files of 200 PCs, 2,500 functions of 20. */
function makeBuild(t: number, pcsLen: number): Build {
  const pcs = new BigUint64Array(pcsLen);
  for (let i = 0; i < pcsLen; i++) pcs[i] = BigInt(0x400000 + t * 0x1000000 + i * 4);
  const nFiles = Math.max(1, Math.ceil(pcsLen / 200)), nFns = Math.max(1, Math.ceil(pcsLen / 20));
  const index: SourceIndex = {
    buildId: `${(0xb0 + t).toString(16)}${'0'.repeat(38)}`,
    directories: [`/src/target${t}`],
    files: Array.from({ length: nFiles }, (_, f) => `file${f}.c`),
    fileDirs: new Uint32Array(nFiles),
    functions: { names: Array.from({ length: nFns }, (_, f) => `fn_${t}_${f}`), file: Uint32Array.from({ length: nFns }, (_, f) => Math.floor((f * 20) / 200)), line: Uint32Array.from({ length: nFns }, (_, f) => 1 + (f % 10) * 30) },
    pcFile: Uint32Array.from({ length: pcsLen }, (_, i) => Math.floor(i / 200)),
    pcLine: Uint32Array.from({ length: pcsLen }, (_, i) => 1 + (i % 200) * 2),
    pcColumn: new Uint32Array(pcsLen).fill(3),
    pcFunction: Uint32Array.from({ length: pcsLen }, (_, i) => (Math.floor(i / 20) < nFns ? Math.floor(i / 20) : NONE)),
  };
  return { id: pcTableHash(pcs), pcs, index, pcsLen };
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FleetRun {
  nodes: number;
  targets: number;
  pcs: number;
  ratePerMin: number;
  seconds: number;
  loadSeconds: number;
  /** The viewer's CPU time for the initial load, seconds. */
  loadCpuS: number;
  viewerCpuPct: number;
  viewerRssMiB: number;
  viewerPeakMiB: number;
  natsCpuPct: number;
  natsRssMiB: number;
  newPcs: number;
  seenPcs: number;
  p50: number;
  p99: number;
  max: number;
  coverageBytesPerNodeMin: number;
  statusBytesPerNodeMin: number;
  bytesPerNewPc: number;
}

interface Opts { nodes: number; targets: number; pcs: number; seconds: number; ratePerMin: number; initial: number }

async function runFleet(o: Opts): Promise<FleetRun> {
  const work = tempDir('covd-bench-fleet-');
  const nats = await startNats(join(work, 'jetstream'));
  const natsPid = () => nats.pid;
  // The simulated nodes' warnings go to stderr (stdout is the report).
  const log = createLogger({ level: 'warn', write: (l) => process.stderr.write(l + '\n') }, { name: 'bench' });
  const builds = Array.from({ length: o.targets }, (_, t) => makeBuild(t, o.pcs));
  const names = fleetNames('covd');
  const r = rng(o.nodes * 7919 + o.pcs);
  const now0 = Math.floor(Date.now() / 1000);

  // The fleet's coverage: a base set per target (~30 %); each node has 90 % of it.
  const base = builds.map((b) => {
    const s = new Uint8Array(b.pcsLen);
    for (let i = 0; i < b.pcsLen; i++) if (r() < o.initial) s[i] = 1;
    return s;
  });
  const union = base.map((s) => new Uint8Array(s.length));
  const links: FleetLink[] = [];
  const nodes: { pub: NodePublisher; runs: number[] }[] = [];
  const counters = (n: number, t: number): OwnCounters => ({ nRuns: nodes[n]!.runs[t]!, uniqueRuns: Math.floor(nodes[n]!.runs[t]! / 5000), runsPerSec: 2000, lastNewAt: null });
  for (let n = 0; n < o.nodes; n++) {
    if (n % 20 === 0) {
      const link = new FleetLink({ nats: [nats.url] }, names, log, `bench ${n / 20}`);
      link.setMaxListeners(0);
      links.push(link);
    }
    const link = links[links.length - 1]!;
    const node = `node-${String(n).padStart(3, '0')}`;
    const pub = new NodePublisher({
      node, names, link, log,
      source: {
        counters: (id) => { const t = builds.findIndex((b) => b.id === id); return t < 0 ? undefined : counters(n, t); },
        build: async (id): Promise<BuildRecord | undefined> => {
          const b = builds.find((x) => x.id === id);
          return b && { id, buildId: b.index.buildId, name: `target${builds.indexOf(b)}`, exe: `/fleet/bin/target${builds.indexOf(b)}`, node, sent: Date.now(), pcs: b.pcs, index: b.index };
        },
      },
    });
    nodes.push({ pub, runs: builds.map(() => Math.floor(r() * 1e7)) });
    builds.forEach((b, t) => {
      const pcs: number[] = [], secs: number[] = [];
      for (let i = 0; i < b.pcsLen; i++) if (base[t]![i] && r() < 0.9) { pcs.push(i); secs.push(now0 - 86_400 + Math.floor(r() * 80_000)); union[t]![i] = 1; }
      pub.noteOwn(b.id, b.pcsLen, pcs, secs);
    });
  }
  let expectCovered = union.map((u) => u.reduce((a, x) => a + x, 0));

  // COVD_BENCH_PROF=DIR: a CPU profile of the viewer, written when it stops.
  const prof = process.env.COVD_BENCH_PROF;
  const viewer = await DaemonProcess.start({ extraArgs: ['--nats', nats.url, '--node-name', 'viewer'], logLevel: 'info', ...(prof ? { env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${prof}` } } : {}) });
  const cpu0 = viewer.cpuMs();
  const t0 = Date.now();
  for (const l of links) l.start();
  for (const n of nodes) { n.pub.start(); n.pub.setCaughtUp(); }
  // Initial load: every target on the viewer with the whole union.
  try {
    await until(async () => {
      const r2 = (await viewer.control({ type: 'list' }, 120_000)) as { ok: boolean; targets?: { id: string; stats: { covered: number } }[] };
      return !!r2.targets && builds.every((b, t) => r2.targets!.find((x) => x.id === b.id)?.stats.covered === expectCovered[t]);
    }, 'the viewer to load the fleet', 300_000, 250);
  } catch (err) {
    await viewer.stop();
    await nats.stop(true);
    throw err;
  }
  const loadSeconds = (Date.now() - t0) / 1000;
  const loadCpuS = (viewer.cpuMs() - cpu0) / 1000;

  // Tabs: one per target, recording when each new PC reaches the viewer's WebSocket.
  const found = new Map<string, number>();
  const latencies: number[] = [];
  const tabs: BenchTab[] = await openTabs(viewer.url, (i) => builds[i]!.id, builds.length, 20);
  await until(() => tabs.every((t) => t.seen !== null), 'the tabs\' snapshots', 60_000);
  for (const tab of tabs) tab.onApplied = (_t, fresh) => {
    if (!fresh) return;
    const at = Date.now();
    for (const pc of fresh) {
      const k = `${tab.id}:${pc}`;
      const t1 = found.get(k);
      if (t1 !== undefined) { latencies.push(at - t1); found.delete(k); }
    }
  };

  // Steady phase.
  await sleep(3000); // let the first statuses settle
  const bytes0 = nodes.map((n) => n.pub.stats.bytes);
  const st0 = nodes.map((n) => n.pub.stats.statusBytes);
  const vcpu0 = viewer.cpuMs(), ncpu0 = procCpuMs(natsPid()), s0 = Date.now();
  let newPcs = 0;
  const everyMs = o.ratePerMin > 0 ? 60_000 / (o.ratePerMin * o.nodes) : 1000;
  let rss = 0;
  let natsRss = 0;
  const sampler = setInterval(() => { rss = Math.max(rss, viewer.rss()); natsRss = Math.max(natsRss, procStatusBytes(natsPid(), 'VmRSS')); }, 1000);
  const runsTimer = setInterval(() => { for (const n of nodes) for (let t = 0; t < builds.length; t++) n.runs[t]! += 2000; }, 1000);
  let next = Date.now();
  while (Date.now() - s0 < o.seconds * 1000) {
    next += everyMs * (0.5 + r()); // jittered, mean everyMs
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
    if (o.ratePerMin === 0) continue;
    const n = Math.floor(r() * o.nodes), t = Math.floor(r() * builds.length);
    const b = builds[t]!;
    let pc = Math.floor(r() * b.pcsLen);
    for (let k = 0; k < b.pcsLen && union[t]![pc]; k++) pc = (pc + 1) % b.pcsLen;
    if (union[t]![pc]) continue;
    union[t]![pc] = 1;
    found.set(`${b.id}:${pc}`, Date.now());
    nodes[n]!.pub.noteOwn(b.id, b.pcsLen, [pc], Math.floor(Date.now() / 1000));
    newPcs++;
  }
  const wall = Date.now() - s0;
  const viewerCpuPct = ((viewer.cpuMs() - vcpu0) / wall) * 100;
  const natsCpuPct = ((procCpuMs(natsPid()) - ncpu0) / wall) * 100;
  await sleep(2000); // the last ones in flight
  clearInterval(sampler);
  clearInterval(runsTimer);
  expectCovered = union.map((u) => u.reduce((a, x) => a + x, 0));
  const seenPcs = latencies.length;
  const minutes = wall / 60_000;
  const totalBytes = nodes.reduce((a, n, i) => a + n.pub.stats.bytes - bytes0[i]!, 0);
  const statusTotal = nodes.reduce((a, n, i) => a + n.pub.stats.statusBytes - st0[i]!, 0);
  const coverageTotal = totalBytes - statusTotal;

  for (const t of tabs) t.close();
  for (const n of nodes) await n.pub.close(100);
  for (const l of links) await l.close();
  const peak = viewer.peakRss();
  await viewer.stop();
  await nats.stop(true);
  rmSync(work, { recursive: true, force: true });
  return {
    nodes: o.nodes, targets: o.targets, pcs: o.pcs, ratePerMin: o.ratePerMin, seconds: wall / 1000, loadSeconds, loadCpuS,
    viewerCpuPct, viewerRssMiB: rss / MiB, viewerPeakMiB: peak / MiB, natsCpuPct, natsRssMiB: natsRss / MiB,
    newPcs, seenPcs, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.length ? Math.max(...latencies) : NaN,
    coverageBytesPerNodeMin: coverageTotal / o.nodes / minutes, statusBytesPerNodeMin: statusTotal / o.nodes / minutes,
    bytesPerNewPc: newPcs ? coverageTotal / newPcs : NaN,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { nodes: { type: 'string' }, seconds: { type: 'string' }, rate: { type: 'string' }, quick: { type: 'boolean' }, 'no-scaling': { type: 'boolean' } }, strict: true });
  const quick = values.quick === true;
  const sizes = (values.nodes ?? (quick ? '10,50' : '10,50,200')).split(',').map(Number);
  const seconds = Number(values.seconds ?? (quick ? 20 : 60));
  const rate = Number(values.rate ?? 6);
  const runs: FleetRun[] = [];
  for (const n of sizes) {
    const run = await runFleet({ nodes: n, targets: 10, pcs: 50_000, seconds, ratePerMin: rate, initial: 0.3 });
    runs.push(run);
    console.error(`fleet: ${n} nodes done: p99 ${fmtMs(run.p99)} ms, viewer CPU ${run.viewerCpuPct.toFixed(1)} %`);
  }
  console.log(`Fleets of ${sizes.join(', ')} nodes, each with 10 targets of 50,000 PCs (~27 % covered per node, ~30 % in the union), ${rate} new PCs per node per minute, ${seconds} s steady phase; one viewing daemon.`);
  console.log('');
  console.log(table([
    ['nodes', 'initial load s', 'viewer CPU s for it', 'viewer CPU %', 'viewer RSS MiB', 'viewer peak MiB', 'nats-server CPU %', 'new PCs', 'seen', 'latency p50 ms', 'p99 ms', 'max ms', 'coverage B/node/min', 'status B/node/min', 'B per new PC'],
    ...runs.map((x) => [x.nodes, x.loadSeconds.toFixed(1), x.loadCpuS.toFixed(1), x.viewerCpuPct.toFixed(1), x.viewerRssMiB.toFixed(0), x.viewerPeakMiB.toFixed(0), x.natsCpuPct.toFixed(1), x.newPcs, x.seenPcs, fmtMs(x.p50), fmtMs(x.p99), fmtMs(x.max), x.coverageBytesPerNodeMin.toFixed(0), x.statusBytesPerNodeMin.toFixed(0), x.bytesPerNewPc.toFixed(0)]),
  ]));
  const scaling: FleetRun[] = [];
  if (!values['no-scaling']) {
    for (const [pcs, r] of [[50_000, 0], [50_000, 6], [50_000, 60], [500_000, 6]] as const) {
      scaling.push(await runFleet({ nodes: 10, targets: 10, pcs, seconds: quick ? 20 : 40, ratePerMin: r, initial: 0.3 }));
    }
    console.log('');
    console.log('What a node publishes, by new coverage and by size (10 nodes, 10 targets each; steady phase, after the initial snapshots):');
    console.log('');
    console.log(table([
      ['PCs per target', 'new PCs/node/min', 'coverage B/node/min', 'status B/node/min', 'B per new PC', 'latency p99 ms'],
      ...scaling.map((x) => [x.pcs.toLocaleString('en-US'), x.ratePerMin, x.coverageBytesPerNodeMin.toFixed(0), x.statusBytesPerNodeMin.toFixed(0), Number.isFinite(x.bytesPerNewPc) ? x.bytesPerNewPc.toFixed(0) : '-', fmtMs(x.p99)]),
    ]));
  }
  const goal = runs.find((x) => x.nodes === Math.max(...sizes))!;
  const pass = goal.p99 < 1000 && goal.seenPcs === goal.newPcs;
  console.log('');
  console.log(`Goal: ${goal.nodes} nodes held by one viewing daemon, new coverage visible in < 1 s: p99 ${fmtMs(goal.p99)} ms, ${goal.seenPcs} of ${goal.newPcs} new PCs seen: ${pass ? 'met' : 'not met'}.`);
  writeResults('fleet', { runs, scaling, goal: { nodes: goal.nodes, p99: goal.p99, pass } });
}

if (isMain(import.meta.url)) {
  main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
}
