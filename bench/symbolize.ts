/**
 * Symbolizer benchmark: covd (the pool, and the whole `covd symbolize` process) against
 * `addr2line -e` and `llvm-symbolizer-14 --no-inlines` on the same address lists, in the same run.
 *  1. all pc-table PCs of the sqlite3 libFuzzer target (plus an agreement check with llvm-symbolizer
 *     on those PCs and on 10,000 random .text addresses);
 *  2. growth: generated programs of about 100k, 300k and 1M PCs (time and peak RSS).
 *   node dist/bench/symbolize.js [--rounds N] [--sizes 100000,300000,1000000] [--skip-growth]
 * Prints tables and writes bench/results/symbolize.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, repoRoot, table, writeResults } from './lib/results.js';
import { generateProgram } from './gen-program.js';
import { SymbolizerPool } from '../src/workers/pool.js';
import { setSymbolizerV8Flags } from '../src/cli/v8-flags.js';

const covd = join(repoRoot, 'bin', 'covd');

interface Tool { name: string; cmd: string; args: (exe: string) => string[] }
const TOOLS: Tool[] = [
  { name: 'covd symbolize (2 threads)', cmd: process.execPath, args: (exe) => [covd, 'symbolize', `--exe=${exe}`, '--output-style=JSON', '--threads=2'] },
  { name: 'covd symbolize (in-process)', cmd: process.execPath, args: (exe) => [covd, 'symbolize', `--exe=${exe}`, '--output-style=JSON', '--threads=0'] },
  { name: 'llvm-symbolizer-14 --no-inlines', cmd: 'llvm-symbolizer-14', args: (exe) => ['--no-inlines', '--output-style=JSON', `--obj=${exe}`] },
  { name: 'addr2line -e', cmd: 'addr2line', args: (exe) => ['-e', exe] },
  { name: 'addr2line -f -e', cmd: 'addr2line', args: (exe) => ['-f', '-e', exe] },
];

/** Wall time, CPU time (user + sys, ms) and peak RSS (MiB) of one run, from GNU time; stdin from a file, stdout discarded. */
function runOnce(cmd: string, args: string[], input: string): { ms: number; cpuMs: number; rssMiB: number } {
  const inFd = openSync(input, 'r');
  const outFd = openSync('/dev/null', 'w');
  try {
    const t0 = performance.now();
    const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', cmd, ...args], { stdio: [inFd, outFd, 'pipe'], encoding: 'utf8' });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    const [kib, user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number) as [number, number, number];
    return { ms, cpuMs: (user + sys) * 1000, rssMiB: kib / 1024 };
  } finally {
    closeSync(inFd);
    closeSync(outFd);
  }
}

function pcTable(exe: string, dir: string): bigint[] {
  const out = join(dir, 'pcs.bin');
  execFileSync('objcopy', ['-O', 'binary', '--only-section=__sancov_pcs', exe, out]);
  const b = readFileSync(out);
  const v = new BigUint64Array(b.buffer, b.byteOffset, Math.floor(b.length / 8));
  const pcs: bigint[] = [];
  for (let i = 0; i < v.length; i += 2) pcs.push(v[i]!);
  return pcs;
}

function writeAddrs(file: string, addrs: bigint[]): void {
  writeFileSync(file, addrs.map((a) => '0x' + a.toString(16)).join('\n') + '\n');
}

/** The sqlite target: the shared build script if present, else a plain build of our own. */
async function sqliteTarget(): Promise<string> {
  try {
    const { buildSqliteTarget } = await import('../src/build/targets.js');
    return await buildSqliteTarget({ agent: false });
  } catch (err) {
    console.error(`shared sqlite build unavailable (${(err as Error).message.split('\n')[0]}); building our own`);
  }
  const dir = join(repoRoot, 'build', 'symbolize-bench');
  const exe = join(dir, 'fuzz_sqlite');
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  execFileSync('npm', ['pack', 'better-sqlite3@12.11.1', '--silent'], { cwd: dir });
  execFileSync('tar', ['xzf', 'better-sqlite3-12.11.1.tgz', 'package/deps/sqlite3'], { cwd: dir });
  writeFileSync(join(dir, 'fuzz_sql.c'), `#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "sqlite3.h"
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sqlite3 *db; char *sql = malloc(size + 1);
  memcpy(sql, data, size); sql[size] = 0;
  if (sqlite3_open(":memory:", &db) == SQLITE_OK) sqlite3_exec(db, sql, 0, 0, 0);
  sqlite3_close(db); free(sql); return 0;
}
`);
  execFileSync('nice', ['clang-14', '-O1', '-g', '-fsanitize=fuzzer', '-fsanitize-coverage=inline-8bit-counters,pc-table',
    '-DSQLITE_THREADSAFE=0', '-DSQLITE_OMIT_LOAD_EXTENSION', '-Ipackage/deps/sqlite3', 'package/deps/sqlite3/sqlite3.c', 'fuzz_sql.c', '-o', exe], { cwd: dir });
  return exe;
}

/** In-pool time: a fresh pool with its threads up, then the first request (cold JIT) and later ones. */
async function inPool(exe: string, pcs: BigUint64Array, threads: number, rounds: number): Promise<{ coldMs: number; warmMs: number; jobs: unknown }> {
  const pool = new SymbolizerPool({ threads, cache: false, splitMinPcs: 4096 });
  try {
    // Start the threads and load the worker module (what a running daemon has already done).
    await Promise.all(Array.from({ length: threads }, () => pool.resolve({ exe: '/nonexistent', pcs: new BigUint64Array(0) }).catch(() => undefined)));
    let t0 = performance.now();
    await pool.resolve({ exe, pcs });
    const coldMs = performance.now() - t0;
    const jobs = pool.lastTiming?.jobs;
    const warm: number[] = [];
    for (let r = 0; r < rounds; r++) {
      t0 = performance.now();
      await pool.resolve({ exe, pcs });
      warm.push(performance.now() - t0);
    }
    return { coldMs, warmMs: median(warm), jobs };
  } finally {
    await pool.destroy();
  }
}

/** Agreement of covd with llvm-symbolizer on FileName, Line, Column, FunctionName. */
function agreement(exe: string, input: string): { total: number; differ: number } {
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { input: readFileSync(input), maxBuffer: 1 << 30, encoding: 'utf8' }).trim().split('\n');
  const ours = run(process.execPath, TOOLS[0]!.args(exe).slice(0));
  const theirs = run('llvm-symbolizer-14', TOOLS[2]!.args(exe));
  let differ = 0;
  for (let i = 0; i < theirs.length; i++) {
    const a = (JSON.parse(ours[i] ?? '{}') as { Symbol?: Record<string, unknown>[] }).Symbol?.[0] ?? {};
    const b = (JSON.parse(theirs[i]!) as { Symbol: Record<string, unknown>[] }).Symbol[0]!;
    const fn = String(b['FunctionName']).startsWith('_Z') || String(a['FunctionName']).startsWith('_Z') ? true : a['FunctionName'] === b['FunctionName'];
    if (a['FileName'] !== b['FileName'] || a['Line'] !== b['Line'] || a['Column'] !== b['Column'] || !fn) differ++;
  }
  return { total: theirs.length, differ: differ + Math.abs(theirs.length - ours.length) };
}

async function measure(label: string, exe: string, addrs: bigint[], rounds: number, dir: string) {
  const input = join(dir, `${label}.txt`);
  writeAddrs(input, addrs);
  const samples = new Map<string, { ms: number[]; cpu: number[]; rss: number[] }>(TOOLS.map((t) => [t.name, { ms: [], cpu: [], rss: [] }]));
  for (let r = 0; r < rounds; r++) {
    for (const t of TOOLS) { // interleaved, so background load hits every tool alike
      const s = runOnce(t.cmd, t.args(exe), input);
      samples.get(t.name)!.ms.push(s.ms);
      samples.get(t.name)!.cpu.push(s.cpuMs);
      samples.get(t.name)!.rss.push(s.rssMiB);
    }
  }
  const pool2 = await inPool(exe, BigUint64Array.from(addrs), 2, rounds);
  const pool1 = await inPool(exe, BigUint64Array.from(addrs), 1, rounds);
  const proc = Object.fromEntries([...samples].map(([k, v]) => [k, { ms: median(v.ms), cpuMs: median(v.cpu), rssMiB: Math.max(...v.rss), samples: v.ms }]));
  return { label, exe, pcs: addrs.length, proc, pool2, pool1 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, sizes: { type: 'string' }, 'skip-growth': { type: 'boolean' } } });
  const rounds = Number(values.rounds ?? 5);
  const sizes = (values.sizes ?? '100000,300000,1000000').split(',').map(Number);
  const dir = mkdtempSync(join(tmpdir(), 'covd-bench-'));
  // The machine may be shared: say how busy it was, since every figure depends on it.
  const loadBefore = loadavg()[0]!;
  try {
    const sqlite = await sqliteTarget();
    const pcs = pcTable(sqlite, dir);
    const s = await measure('sqlite', sqlite, pcs, rounds, dir);
    // Agreement on the benchmark target too: every pc-table PC and 10,000 random .text addresses.
    const textLine = execFileSync('readelf', ['-SW', sqlite], { encoding: 'utf8' }).split('\n').find((l) => / \.text /.test(l))!;
    const m = textLine.match(/\.text\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)/)!;
    const start = parseInt(m[1]!, 16), size = parseInt(m[2]!, 16);
    let x = 4242;
    const rnd: bigint[] = [];
    for (let i = 0; i < 10000; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; rnd.push(BigInt(start + (x % size))); }
    writeAddrs(join(dir, 'random.txt'), rnd);
    const agreePcs = agreement(sqlite, join(dir, 'sqlite.txt'));
    const agreeRandom = agreement(sqlite, join(dir, 'random.txt'));

    const llvm = s.proc['llvm-symbolizer-14 --no-inlines']!, a2l = s.proc['addr2line -e']!;
    console.log(`\nsqlite3 libFuzzer target: ${s.pcs} pc-table PCs, median of ${rounds} interleaved runs (wall and CPU = user + sys)\n`);
    console.log(table([
      ['what', 'wall ms', 'CPU ms', 'peak RSS MiB', 'wall vs llvm-symbolizer', 'CPU vs llvm-symbolizer', 'wall vs addr2line -e'],
      ...Object.entries(s.proc).map(([k, v]) => [k, v.ms, v.cpuMs, v.rssMiB, v.ms / llvm.ms, v.cpuMs / llvm.cpuMs, v.ms / a2l.ms]),
      ['covd pool, 2 threads, first request (in-pool)', s.pool2.coldMs, '', '', s.pool2.coldMs / llvm.ms, '', s.pool2.coldMs / a2l.ms],
      ['covd pool, 2 threads, later requests, no cache (in-pool)', s.pool2.warmMs, '', '', s.pool2.warmMs / llvm.ms, '', s.pool2.warmMs / a2l.ms],
      ['covd pool, 1 thread, first request (in-pool)', s.pool1.coldMs, '', '', s.pool1.coldMs / llvm.ms, '', s.pool1.coldMs / a2l.ms],
      ['covd pool, 1 thread, later requests, no cache (in-pool)', s.pool1.warmMs, '', '', s.pool1.warmMs / llvm.ms, '', s.pool1.warmMs / a2l.ms],
    ]));
    console.log(`\nagreement with llvm-symbolizer-14: pc-table ${agreePcs.total - agreePcs.differ}/${agreePcs.total}, random .text ${agreeRandom.total - agreeRandom.differ}/${agreeRandom.total}`);

    const growth = [];
    if (!values['skip-growth']) {
      for (const n of sizes) {
        const exe = await generateProgram(n);
        const g = await measure(`gen-${n}`, exe, pcTable(exe, dir), Math.max(1, Math.min(rounds, 3)), dir);
        growth.push(g);
      }
      console.log('\ngrowth on generated programs (median wall ms / CPU ms / peak RSS MiB; pool columns: wall ms in-pool)\n');
      console.log(table([
        ['PCs', 'covd 2 threads', 'covd in-process', 'pool 2 thr first', 'pool 2 thr later', 'pool 1 thr first', 'llvm-symbolizer', 'addr2line -e'],
        ...growth.map((g) => {
          const p = (k: string) => `${g.proc[k]!.ms.toFixed(0)} / ${g.proc[k]!.cpuMs.toFixed(0)} / ${g.proc[k]!.rssMiB.toFixed(0)}`;
          return [g.pcs, p(TOOLS[0]!.name), p(TOOLS[1]!.name), g.pool2.coldMs, g.pool2.warmMs, g.pool1.coldMs, p(TOOLS[2]!.name), p(TOOLS[3]!.name)];
        }),
      ]));
    }
    const loadAfter = loadavg()[0]!;
    console.log(`\n1-minute load average: ${loadBefore.toFixed(1)} at start, ${loadAfter.toFixed(1)} at end (2 cores)`);
    const file = writeResults('symbolize', { rounds, loadAverage: { start: loadBefore, end: loadAfter }, sqlite: s, agreement: { pcTable: agreePcs, randomText: agreeRandom }, growth });
    console.log(`\nwrote ${file}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The in-pool figures are the daemon's: V8 set up as `covd serve` sets it (main.ts).
setSymbolizerV8Flags();
main().catch((err) => { console.error(err); process.exitCode = 1; });
