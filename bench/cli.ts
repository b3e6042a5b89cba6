/**
 * Command-line start-up: what a short `covd` command costs as a whole process, against Node's
 * own floor and against llvm-symbolizer-14, interleaved in one run (the order rotates every
 * round), on a small clang-14 -g binary:
 *
 *   - `node -e 0`: the floor of any Node program on this machine;
 *   - `node empty.mjs`: the floor of an ES-module program (covd is one: the ESM loader starts);
 *   - `covd --help`;
 *   - `covd symbolize --exe=EXE ADDR`, one address (main), in-process;
 *   - `llvm-symbolizer-14 --obj=EXE ADDR`, the same address.
 *
 * Goals (issue 16): `covd --help` under 100 ms; `covd symbolize` of one address within 3x
 * llvm-symbolizer-14's whole-process time. On a loaded machine absolute times move from run to
 * run: ratios are the median of the per-round ratios. It also checks which modules `covd --help`,
 * `covd list` and `covd symbolize` load (an ESM loader hook): none may be uWebSockets.js, lmdb
 * or piscina.
 *
 *   node dist/bench/cli.js [--rounds N] [--quick]
 *
 * Prints Markdown tables and writes bench/results/cli.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { median, percentile, repoRoot, table, writeResults } from './lib/results.js';

const covd = join(repoRoot, 'bin', 'covd');

const SOURCE = `#include <stdio.h>
#include <stdlib.h>
static int square(int x) { return x * x; }
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : argc;
  printf("%d\\n", square(n));
  return 0;
}
`;

/** The small binary (cached under build/cli-bench/ by a hash of its source) and the address of main. */
function smallBinary(): { exe: string; addr: string } {
  const hash = createHash('sha256').update(SOURCE).digest('hex').slice(0, 12);
  const dir = join(repoRoot, 'build', 'cli-bench');
  const exe = join(dir, `small-${hash}`);
  if (!existsSync(exe)) {
    mkdirSync(dir, { recursive: true });
    const src = join(dir, `small-${hash}.c`);
    writeFileSync(src, SOURCE);
    execFileSync('clang-14', ['-g', '-O1', '-o', `${exe}.tmp`, src]);
    execFileSync('mv', [`${exe}.tmp`, exe]);
  }
  const sym = execFileSync('nm', [exe], { encoding: 'utf8' }).split('\n').find((l) => / T main$/.test(l));
  if (!sym) throw new Error(`no main in ${exe}`);
  return { exe, addr: '0x' + sym.split(' ')[0]!.replace(/^0+/, '') };
}

interface Cmd { name: string; cmd: string; args: string[] }

/** Wall time (ms, this process's clock) and CPU time (user + sys from GNU time, 10 ms resolution) of one run. */
function runOnce(c: Cmd): { ms: number; cpuMs: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', c.cmd, ...c.args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${c.cmd} ${c.args.join(' ')} failed (${r.status}): ${r.stderr}`);
  const [user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number) as [number, number];
  return { ms, cpuMs: (user + sys) * 1000 };
}

/** The files (outside Node's own) a command loads, from an ESM loader hook. */
function modulesLoaded(dir: string, args: string[]): string[] {
  const hooks = join(dir, 'hooks.mjs'), register = join(dir, 'register.mjs'), log = join(dir, 'loaded.txt');
  writeFileSync(hooks, `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (!url.startsWith('node:')) appendFileSync(process.env.COVD_BENCH_LOADED, url + '\\n');
  return next(url, context);
}
`);
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  rmSync(log, { force: true });
  // Exit status ignored: `covd list` without a daemon says so and exits 1, after loading what it needs.
  spawnSync(process.execPath, ['--import', pathToFileURL(register).href, covd, ...args], {
    stdio: 'ignore', env: { ...process.env, COVD_BENCH_LOADED: log, COVD_SOCKET: join(dir, 'no-daemon.sock') },
  });
  const root = pathToFileURL(repoRoot).href;
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((u) => u.replace(root, '')) : [];
}

function main(): number {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, quick: { type: 'boolean' } }, strict: true });
  const rounds = Number(values.rounds ?? (values.quick ? 7 : 21));
  const { exe, addr } = smallBinary();
  const dir = mkdtempSync(join(tmpdir(), 'covd-cli-bench-'));
  try {
    const empty = join(dir, 'empty.mjs');
    writeFileSync(empty, '');
    const cmds: Cmd[] = [
      { name: 'node -e 0', cmd: process.execPath, args: ['-e', '0'] },
      { name: 'node empty.mjs', cmd: process.execPath, args: [empty] },
      { name: 'covd --help', cmd: process.execPath, args: [covd, '--help'] },
      { name: 'covd symbolize (1 address)', cmd: process.execPath, args: [covd, 'symbolize', `--exe=${exe}`, addr] },
      { name: 'llvm-symbolizer-14 (1 address)', cmd: 'llvm-symbolizer-14', args: [`--obj=${exe}`, addr] },
    ];
    const load0 = loadavg();
    // One untimed run of each: page cache and the built binary in place.
    for (const c of cmds) runOnce(c);
    const wall = new Map<string, number[]>(cmds.map((c) => [c.name, []]));
    const cpu = new Map<string, number[]>(cmds.map((c) => [c.name, []]));
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < cmds.length; i++) {
        const c = cmds[(i + r) % cmds.length]!;
        const x = runOnce(c);
        wall.get(c.name)!.push(x.ms);
        cpu.get(c.name)!.push(x.cpuMs);
      }
    }
    const load1 = loadavg();
    /** Median over rounds of a per-round figure. */
    const perRound = (f: (w: (name: string) => number) => number) => median(Array.from({ length: rounds }, (_, r) => f((n) => wall.get(n)![r]!)));
    const floor = 'node -e 0', esm = 'node empty.mjs', help = 'covd --help', sym = 'covd symbolize (1 address)', llvm = 'llvm-symbolizer-14 (1 address)';

    console.log(`Small binary: clang-14 -g -O1, one C file (${SOURCE.split('\n').length - 1} lines); address: main. ${rounds} rounds, interleaved (order rotated each round); load average ${load0.map((l) => l.toFixed(1)).join(' ')} at start, ${load1.map((l) => l.toFixed(1)).join(' ')} at end.\n`);
    console.log(table([
      ['command', 'wall median (ms)', 'wall p25 to p75 (ms)', 'CPU median (ms)'],
      ...cmds.map((c) => {
        const w = wall.get(c.name)!;
        return [c.name, median(w), `${percentile(w, 25).toFixed(0)} to ${percentile(w, 75).toFixed(0)}`, median(cpu.get(c.name)!)];
      }),
    ]));
    const symRatio = perRound((w) => w(sym) / w(llvm));
    const helpMs = median(wall.get(help)!);
    const goals = {
      helpMs, helpPass: helpMs < 100,
      symbolizeOverLlvm: symRatio, symbolizePass: symRatio <= 3,
      floorMs: median(wall.get(floor)!),
      floorOverLlvm: perRound((w) => w(floor) / w(llvm)),
      helpAboveFloorMs: perRound((w) => w(help) - w(floor)),
      helpAboveEsmFloorMs: perRound((w) => w(help) - w(esm)),
      symbolizeAboveFloorMs: perRound((w) => w(sym) - w(floor)),
      helpOverFloor: perRound((w) => w(help) / w(floor)),
      symbolizeOverFloor: perRound((w) => w(sym) / w(floor)),
    };
    console.log('\nMedians of per-round figures (each round runs every command once):\n');
    console.log(table([
      ['figure', 'value', 'goal'],
      ['covd symbolize / llvm-symbolizer-14', `${symRatio.toFixed(2)}x`, '<= 3x'],
      ['node -e 0 / llvm-symbolizer-14', `${goals.floorOverLlvm.toFixed(2)}x`, '(the floor: no Node program does better)'],
      ['covd --help', `${helpMs.toFixed(0)} ms`, '< 100 ms'],
      ['covd --help / node -e 0', `${goals.helpOverFloor.toFixed(2)}x`, ''],
      ['covd --help - node -e 0', `${goals.helpAboveFloorMs.toFixed(1)} ms`, ''],
      ['covd --help - node empty.mjs', `${goals.helpAboveEsmFloorMs.toFixed(1)} ms`, ''],
      ['covd symbolize / node -e 0', `${goals.symbolizeOverFloor.toFixed(2)}x`, ''],
      ['covd symbolize - node -e 0', `${goals.symbolizeAboveFloorMs.toFixed(1)} ms`, ''],
    ]));

    const heavy = /uWebSockets|\/lmdb\/|\/piscina\//;
    const loads = [['--help'], ['list'], ['symbolize', `--exe=${exe}`, addr]].map((args) => {
      const mods = modulesLoaded(dir, args);
      return { command: `covd ${args[0]}`, modules: mods.length, ours: mods.filter((m) => m.startsWith('dist/')).length, heavy: mods.filter((m) => heavy.test(m)) };
    });
    console.log('\nModules loaded (ESM loader hook; besides Node\'s own):\n');
    console.log(table([
      ['command', 'modules', 'of them covd\'s', 'uWebSockets.js, lmdb or piscina'],
      ...loads.map((l) => [l.command, l.modules, l.ours, l.heavy.length ? l.heavy.join(', ') : 'none']),
    ]));
    writeResults('cli', { rounds, load: [load0, load1], exe: 'small (clang-14 -g -O1)', wall: Object.fromEntries(wall), cpu: Object.fromEntries(cpu), goals, loads });
    return loads.every((l) => l.heavy.length === 0) ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = main();
