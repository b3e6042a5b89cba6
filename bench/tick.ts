/**
 * Coverage-thread tick cost, and what fan-out costs per tick compared with the seed's approach.
 *
 *   node dist/bench/tick.js [--pcs 1000000] [--iters 200] [--subscribers 10]
 *
 * - tick/1M-PC: one CoverageTicker.tick() on a 1,000,000-PC coverage file while a writer keeps
 *   adding runs and ~100 new PCs per tick (header pread, 125 KB bits pread, word diff, update).
 * - tick/50 idle: 50 tracked 10,000-PC files where nothing happens (one header pread each).
 * - tick/first read: the first tick of a 1M-PC file with half its PCs seen (500,000 new PCs).
 * - main thread: TargetRegistry.applyTick of that update (bits + first-seen + stats + event).
 * - fan-out, covd: the delta encoded once (msgpack) and shared by every subscriber.
 * - fan-out, seed-style (the peer): each subscriber's loop copies and sends the whole seen
 *   bitmap when unique_runs changed (WebServer.zig's coverage_update), i.e. one 125 KB copy +
 *   encode per subscriber per tick.
 */
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Packr } from 'msgpackr';
import { CoverageTicker, type ThreadEvent } from '../src/daemon/coverage-thread.js';
import { TargetRegistry } from '../src/daemon/registry.js';
import { encodeCoverageFile } from '../src/coverage/writer.js';
import { layoutInfo } from '../src/coverage/layout.js';
import { median, percentile, table, writeResults } from './lib/results.js';

const { values } = parseArgs({ options: { pcs: { type: 'string' }, iters: { type: 'string' }, subscribers: { type: 'string' } } });
const PCS = Number(values.pcs ?? 1_000_000);
const ITERS = Number(values.iters ?? 200);
const SUBS = Number(values.subscribers ?? 10);
const NEW_PER_TICK = 100;

const dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-bench-'));
const packr = new Packr({ useRecords: false, moreTypes: true });
const pcs = new BigUint64Array(PCS).map((_, i) => 0x400000n + BigInt(i) * 5n);

function ms(f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

try {
  // ---- the 1M-PC file and a writer that behaves like a fuzzer between ticks
  const file = join(dir, 'aaaaaaaaaaaaaaaa');
  fs.writeFileSync(file, encodeCoverageFile({ pcs, nRuns: 1n, uniqueRuns: 1n }));
  const info = layoutInfo('seed', PCS);
  const fd = fs.openSync(file, 'r+');
  let runs = 1n, unique = 1n, next = 0;
  const order = new Uint32Array(PCS).map((_, i) => i);
  for (let i = PCS - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); const t = order[i]!; order[i] = order[j]!; order[j] = t; }
  const hdr = Buffer.alloc(16);
  const byte = Buffer.alloc(1);
  const bits = Buffer.alloc(info.bitsBytes);
  const fuzz = () => {
    runs += 1000n; unique += 1n;
    for (let k = 0; k < NEW_PER_TICK; k++) { const pc = order[next++ % PCS]!; bits[pc >> 3]! |= 1 << (pc & 7); byte[0] = bits[pc >> 3]!; fs.writeSync(fd, byte, 0, 1, info.bitsOffset + (pc >> 3)); }
    hdr.writeBigUInt64LE(runs, 0); hdr.writeBigUInt64LE(unique, 8);
    fs.writeSync(fd, hdr, 0, 16, 0);
  };

  let last: ThreadEvent | undefined;
  const ticker = new CoverageTicker((e) => { last = e; });
  ticker.handle({ type: 'coverage', id: 'aaaaaaaaaaaaaaaa', exe: '/x', file });
  ticker.tick(); // opens, reads the (empty) bits

  const reg = new TargetRegistry();
  reg.add({ id: 'aaaaaaaaaaaaaaaa', exe: '/x', coverageFile: file, pcsLen: PCS });

  const tickMs: number[] = [], applyMs: number[] = [], oursFan: number[] = [], seedFan: number[] = [];
  let newSeen = 0;
  for (let i = 0; i < ITERS; i++) {
    fuzz();
    last = undefined;
    tickMs.push(ms(() => ticker.tick()));
    const ev = last as ThreadEvent | undefined;
    if (!ev || ev.kind !== 'tick') throw new Error('tick produced no update');
    const u = ev.updates[0]!;
    newSeen += u.newPcs.length;
    let delta: ReturnType<TargetRegistry['applyTick']>;
    applyMs.push(ms(() => { delta = reg.applyTick(u.id, u); }));
    // covd: one encoding of the delta, the same bytes go to every subscriber.
    oursFan.push(ms(() => { const b = packr.pack({ t: 'delta', id: u.id, seq: delta!.seq, time: u.time, pcs: delta!.newPcs, stats: delta!.stats }); for (let s = 0; s < SUBS; s++) void b.length; }));
    // seed-style: each subscriber copies the whole bitmap and encodes its own update.
    const seen = reg.target(u.id)!.seen;
    seedFan.push(ms(() => { for (let s = 0; s < SUBS; s++) { const copy = seen.slice(); void packr.pack({ nRuns: u.nRuns, uniqueRuns: u.uniqueRuns, seen: copy }); } }));
  }
  if (newSeen !== ITERS * NEW_PER_TICK) throw new Error(`expected ${ITERS * NEW_PER_TICK} new PCs, saw ${newSeen}`);

  // ---- 50 idle targets
  const idle = new CoverageTicker(() => {});
  const small = Array.from({ length: 10_000 }, (_, i) => BigInt(0x1000 + i));
  for (let k = 0; k < 50; k++) {
    const id = k.toString(16).padStart(16, '0');
    const f = join(dir, `idle${k}`);
    fs.writeFileSync(f, encodeCoverageFile({ pcs: small, nRuns: 10n, uniqueRuns: 2n, seen: [1, 2, 3] }));
    idle.handle({ type: 'coverage', id, exe: '/x', file: f });
  }
  idle.tick();
  idle.tick();
  if (idle.tracked.size !== 50) throw new Error(`expected 50 idle targets, tracking ${idle.tracked.size}`);
  const idleMs: number[] = [];
  for (let i = 0; i < ITERS; i++) idleMs.push(ms(() => idle.tick()));

  // ---- first read of a half-covered 1M-PC file
  const half = join(dir, 'bbbbbbbbbbbbbbbb');
  fs.writeFileSync(half, encodeCoverageFile({ pcs, nRuns: 1n, uniqueRuns: 1n, seen: Array.from({ length: PCS / 2 }, (_, i) => i * 2) }));
  const firstMs: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t = new CoverageTicker(() => {});
    t.handle({ type: 'coverage', id: 'bbbbbbbbbbbbbbbb', exe: '/x', file: half });
    firstMs.push(ms(() => t.tick()));
    t.close();
  }
  ticker.close();
  idle.close();
  fs.closeSync(fd);

  const row = (name: string, xs: number[]) => [name, median(xs), percentile(xs, 95)];
  const ratio = median(seedFan) / median(oursFan);
  console.log(`${PCS} PCs, ${NEW_PER_TICK} new PCs per tick, ${SUBS} subscribers, ${ITERS} iterations\n`);
  console.log(table([
    ['step', 'median ms', 'p95 ms'],
    row('tick, 1M-PC target (coverage thread)', tickMs),
    row('tick, 50 idle 10k-PC targets', idleMs),
    row('first tick, 1M PCs, 500k seen', firstMs),
    row('applyTick on the main thread', applyMs),
    row(`fan-out covd: 1 delta encode for ${SUBS} tabs`, oursFan),
    row(`fan-out seed-style: ${SUBS} bitmap copies + encodes`, seedFan),
  ]));
  console.log(`\nfan-out: seed-style / covd = ${ratio.toFixed(1)}x`);
  const out = writeResults('tick', {
    pcs: PCS, newPerTick: NEW_PER_TICK, subscribers: SUBS, iterations: ITERS,
    tickMs: { median: median(tickMs), p95: percentile(tickMs, 95) },
    idle50Ms: { median: median(idleMs), p95: percentile(idleMs, 95) },
    firstTickMs: { median: median(firstMs) },
    applyMs: { median: median(applyMs), p95: percentile(applyMs, 95) },
    fanoutCovdMs: { median: median(oursFan) },
    fanoutSeedMs: { median: median(seedFan) },
    fanoutRatio: ratio,
  });
  console.log(`results: ${out}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
