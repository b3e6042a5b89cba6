/**
 * Figures for bench/NOTES-symbolize.md's demangling section (run after `npm run build`):
 *
 *   node dist/bench/measure-demangle.js names [--rounds N] [--gecko DIR]
 *     100,000 Itanium names from the dynamic symbols of this machine's C++ libraries (LLVM,
 *     clang, ICU, libstdc++...): agreement with llvm-cxxfilt-14 (which runs the same LLVM 14
 *     demangler as llvm-symbolizer-14) and wall time in a fresh process (loading, compiling,
 *     demangling), for covd's demangler and, with --gecko DIR (a directory where
 *     `npm install gecko-profiler-demangle@0.4.0` was run), for that package.
 *
 *   node dist/bench/measure-demangle.js cold [--rounds N]
 *     The cold symbolizer with demangling on and off (COVD_DEMANGLE=1 / 0), alternating, in
 *     fresh processes: `covd symbolize` as a whole process (in-process resolving, the default)
 *     and a 2-thread pool's first request (threads started, cache off, as bench/symbolize.ts
 *     measures it), on the sqlite target and on the C++ example (examples/iniparse).
 *
 *   node dist/bench/measure-demangle.js daemon [--rounds N] [--before DIR]
 *     The daemon's own requests, on a pool made as `covd serve` makes it (2 threads started,
 *     cache off, its V8 flags), in fresh processes, rotated each round, on the sqlite target and
 *     on the C++ example (-O1, -O2): the first request with demangling off and on (COVD_DEMANGLE);
 *     as covd serve does it, that request (the target is ready after it) and then its second pass,
 *     the inlined code (pcInlined and call sites) alone, added to the index (merge.ts's
 *     addInlined); and one request with inlines, for comparison. With --before DIR (another
 *     build's checkout, its dist/ built), the first and covd serve's two steps also run on that
 *     build's pool, in the same rotation (a build without addInlined makes its second pass a
 *     request with inlines, as its daemon did).
 *
 *   node dist/bench/measure-demangle.js tiers
 *     How V8 should compile demangle.wasm: 50 to 100,000 of those names demangled in a fresh
 *     process set up as a symbolizer (V8 tuned as src/cli/v8-flags.ts does, kernels compiled),
 *     with Liftoff alone (what covd does), Liftoff with V8's default tier-up to TurboFan, and
 *     TurboFan for everything up front; wall time and CPU time of the process's threads, 300 ms
 *     after the last name (background compiles included).
 *
 *   node dist/bench/measure-demangle.js phases [--rounds N]
 *     The same targets, the work demangling adds measured inside fresh processes (steadier than
 *     whole-process times on a busy machine): resolving as `covd symbolize` does without
 *     demangling, then loading and compiling the demangler, then demangling the names found.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const self = fileURLToPath(import.meta.url);
const root = join(self, '..', '..', '..');
const covd = join(root, 'bin', 'covd');
const ITANIUM = /^(_Z|___Z)/;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[(s.length - 1) >> 1]!;
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

/** Itanium names of the defined dynamic symbols of the system's shared libraries, deterministic order. */
function systemNames(count: number): string[] {
  const dirs = ['/usr/lib/x86_64-linux-gnu', ...readdirSync('/usr/lib').filter((d) => /^llvm-\d+$/.test(d)).map((d) => `/usr/lib/${d}/lib`)];
  const names = new Set<string>();
  for (const d of dirs) {
    for (const f of readdirSync(d)) {
      if (!/\.so(\.|$)/.test(f)) continue;
      const r = spawnSync('nm', ['-D', '--defined-only', join(d, f)], { encoding: 'utf8', maxBuffer: 1 << 28 });
      for (const line of (r.stdout ?? '').split('\n')) {
        const n = line.split(' ')[2]?.replace(/@.*/, '');
        if (n && ITANIUM.test(n)) names.add(n);
      }
    }
  }
  const list = [...names].sort();
  // A fixed shuffle (LCG), so the same machine gives the same list.
  let x = 12345;
  for (let i = list.length - 1; i > 0; i--) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const j = x % (i + 1);
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list.slice(0, count);
}

async function namesChild(kind: string, file: string, refFile: string, geckoDir: string): Promise<void> {
  const names = readFileSync(file, 'utf8').trim().split('\n');
  const ref = readFileSync(refFile, 'utf8').trim().split('\n');
  const t0 = performance.now();
  let got: string[];
  if (kind === 'covd') {
    const { demangleNames } = await import('../src/dwarf/demangle.js');
    got = demangleNames(names);
  } else {
    const dir = join(geckoDir, 'node_modules', 'gecko-profiler-demangle');
    const glue = (await import(join(dir, 'index_bg.js'))) as Record<string, unknown> & { __wbg_set_wasm(x: unknown): void; demangle_any(n: string): string };
    const W = (globalThis as unknown as { WebAssembly: { Module: { new (b: Uint8Array): object; imports(m: object): { module: string; name: string }[] }; Instance: new (m: object, i: object) => { exports: Record<string, () => void> } } }).WebAssembly;
    const mod = new W.Module(readFileSync(join(dir, 'index_bg.wasm')));
    const imports: Record<string, Record<string, unknown>> = {};
    for (const imp of W.Module.imports(mod)) (imports[imp.module] ??= {})[imp.name] = glue[imp.name];
    const inst = new W.Instance(mod, imports);
    glue.__wbg_set_wasm(inst.exports);
    inst.exports.__wbindgen_start?.();
    got = names.map((n) => glue.demangle_any(n));
  }
  const ms = performance.now() - t0;
  const data = (n: string) => /^_Z(TV|TS|TI|TT|GV)/.test(n);
  let agree = 0, fnTotal = 0, fnAgree = 0;
  for (let i = 0; i < names.length; i++) {
    const ok = got[i] === ref[i];
    if (ok) agree++;
    if (!data(names[i]!)) { fnTotal++; if (ok) fnAgree++; }
  }
  console.log(JSON.stringify({ ms, agree, total: names.length, fnAgree, fnTotal }));
}

function names(): void {
  const rounds = Number(arg('--rounds', '3'));
  const gecko = arg('--gecko', '');
  const dir = mkdtempSync(join(tmpdir(), 'covd-demangle-'));
  try {
    const list = systemNames(100_000);
    const file = join(dir, 'names.txt'), refFile = join(dir, 'ref.txt');
    writeFileSync(file, list.join('\n') + '\n');
    const t0 = performance.now();
    writeFileSync(refFile, execFileSync('llvm-cxxfilt-14', [], { input: list.join('\n') + '\n', maxBuffer: 1 << 28 }));
    const nativeMs = performance.now() - t0;
    console.log(`${list.length} names; llvm-cxxfilt-14 (native, whole process): ${nativeMs.toFixed(0)} ms; load average ${loadavg()[0]!.toFixed(2)}`);
    const kinds = gecko ? ['covd', 'gecko'] : ['covd'];
    const runs: Record<string, { ms: number; agree: number; total: number; fnAgree: number; fnTotal: number }[]> = {};
    for (let r = 0; r < rounds; r++) {
      for (const k of kinds) {
        const out = execFileSync(process.execPath, [self, 'names-child', k, file, refFile, gecko], { encoding: 'utf8', maxBuffer: 1 << 26 });
        (runs[k] ??= []).push(JSON.parse(out.trim().split('\n').pop()!));
      }
    }
    for (const k of kinds) {
      const r = runs[k]!, x = r[0]!;
      console.log(`${k === 'covd' ? 'covd (LLVM 14 ItaniumDemangle.h, WebAssembly)' : 'gecko-profiler-demangle 0.4.0'}: ${x.agree} / ${x.total} agree with llvm-cxxfilt-14 ` +
        `(functions, without vtables, typeinfo and guard variables: ${x.fnAgree} / ${x.fnTotal}); ${median(r.map((y) => y.ms)).toFixed(0)} ms median of ${rounds} ` +
        `(${r.map((y) => y.ms.toFixed(0)).join(', ')})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * One pool's first request, as the daemon makes it; with 'second' in flags, then the daemon's
 * second pass on the same pool (the inlined code alone added to the index, or, in a build from
 * before that existed, a second request with inlines), timed apart. root: the checkout whose
 * pool runs (--before's), the same V8 flags either way.
 */
async function poolChild(exe: string, addrFile: string, flags = '', root = ''): Promise<void> {
  if (flags.includes('v8')) (await import('../src/cli/v8-flags.js')).setSymbolizerV8Flags();
  const mod = (rel: string) => (root ? import(pathToFileURL(join(root, 'dist', 'src', rel)).href) : import(`../src/${rel}`));
  const { SymbolizerPool } = (await mod('workers/pool.js')) as typeof import('../src/workers/pool.js');
  const { addInlined } = (await mod('workers/merge.js')) as Partial<typeof import('../src/workers/merge.js')>;
  const pcs = BigUint64Array.from(readFileSync(addrFile, 'utf8').trim().split('\n').map((s) => BigInt(s)));
  // As src/daemon/daemon.ts makes it.
  const pool = new SymbolizerPool({ threads: 2, cache: false, idleExitMs: 5_000 });
  // Threads started and their modules loaded, as in the daemon (bench/symbolize.ts does the same).
  await Promise.all([0, 1].map(() => pool.resolve({ exe: '/nonexistent', pcs: new BigUint64Array(0) }).catch(() => undefined)));
  const c0 = process.cpuUsage(), t0 = performance.now();
  const index = await pool.resolve({ exe, pcs, ...(flags.includes('inlines') ? { inlines: true } : {}) });
  const ms = performance.now() - t0, c = process.cpuUsage(c0);
  let second = { ms: 0, cpuMs: 0 };
  if (flags.includes('second')) {
    const c1 = process.cpuUsage(), t1 = performance.now();
    if (addInlined) addInlined(index, await pool.resolve({ exe, pcs, inlinedOnly: true }));
    else await pool.resolve({ exe, pcs, inlines: true });
    const c2 = process.cpuUsage(c1);
    second = { ms: performance.now() - t1, cpuMs: (c2.user + c2.system) / 1000 };
  }
  await pool.destroy();
  console.log(JSON.stringify({ ms, cpuMs: (c.user + c.system) / 1000, second }));
}

function timeProcess(args: string[], input: string, env: NodeJS.ProcessEnv): { ms: number; cpuMs: number } {
  const inFd = openSync(input, 'r'), outFd = openSync('/dev/null', 'w');
  try {
    const t0 = performance.now();
    const r = spawnSync('/usr/bin/time', ['-f', '%U %S', process.execPath, ...args], { stdio: [inFd, outFd, 'pipe'], encoding: 'utf8', env });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    const [u, s] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number) as [number, number];
    return { ms, cpuMs: (u + s) * 1000 };
  } finally {
    closeSync(inFd);
    closeSync(outFd);
  }
}

/** The daemon's first pool request in four variants (demangling, inlined code), rotated, in fresh processes. */
async function daemonCost(): Promise<void> {
  const rounds = Number(arg('--rounds', '9'));
  const { buildSqliteTarget, buildCppExampleTarget } = await import('../src/build/targets.js');
  const { pcTable } = await import('../test/dwarf/programs.js');
  const dir = mkdtempSync(join(tmpdir(), 'covd-daemon-cost-'));
  try {
    const sqlite = await buildSqliteTarget();
    const ini1 = await buildCppExampleTarget();
    const ini2 = await buildCppExampleTarget({ cflags: ['-O2'] });
    const cases: [string, string][] = [['sqlite, pc-table', sqlite], ['iniparse -O1, pc-table', ini1], ['iniparse -O2, pc-table', ini2]];
    const beforeDir = arg('--before', '');
    // [label, COVD_DEMANGLE, child flags, root of the pool that runs]
    const here = [['neither', '0', ''], ['demangling', '1', ''], ['covd serve', '1', 'second'], ['one request with inlines', '1', 'inlines']] as const;
    const variants: (readonly [string, string, string, string])[] = here.map(([v, dm, fl]) => [v, dm, fl, ''] as const);
    if (beforeDir) for (const [v, dm, fl] of [here[0], here[2]]) variants.push([`${v} (before)`, dm, fl, beforeDir] as const);
    console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${rounds} rounds, variants rotated; medians (wall / CPU ms of the process while the request runs)`);
    console.log('covd serve: the first request (the target is ready after it), then its second pass, the inlined code, on the same pool' +
      (beforeDir ? '; before: the build in --before, whose second pass was a request with inlines' : ''));
    const cols = ['neither', 'demangling', 'covd serve: ready', 'covd serve: inlined code', 'one request with inlines', 'demangling / neither', '(ready + inlined code) / ready',
      ...(beforeDir ? ['before: neither', 'before: ready', 'before: inlined code', 'before: (ready + inlined code) / ready'] : [])];
    console.log(`| target | PCs | ${cols.join(' | ')} |`);
    console.log(`| --- | --- |${cols.map(() => ' --- |').join('')}`);
    type Run = { ms: number; cpuMs: number; second: { ms: number; cpuMs: number } };
    const results: { target: string; pcs: number; demanglingCpu: number; inlinedCpu: number; inlinedWall: number; readyCpuMs: number; secondCpuMs: number }[] = [];
    for (const [label, exe] of cases) {
      const addrs = pcTable(exe, dir);
      const file = join(dir, 'addrs.txt');
      writeFileSync(file, addrs.map((a) => '0x' + a.toString(16)).join('\n') + '\n');
      const got = new Map<string, Run[]>(variants.map(([v]) => [v, []]));
      for (let r = 0; r < rounds; r++) {
        for (let j = 0; j < variants.length; j++) {
          const [v, dm, fl, root] = variants[(j + r) % variants.length]!;
          const out = execFileSync(process.execPath, [self, 'pool-child', exe, file, `v8 ${fl}`, root], { encoding: 'utf8', env: { ...process.env, COVD_DEMANGLE: dm } });
          got.get(v)!.push(JSON.parse(out.trim().split('\n').pop()!) as Run);
        }
      }
      const med = (v: string, f: (x: Run) => number) => median(got.get(v)!.map(f));
      const pair = (v: string, f: (x: Run) => { ms: number; cpuMs: number }) => `${med(v, (x) => f(x).ms).toFixed(0)} / ${med(v, (x) => f(x).cpuMs).toFixed(0)}`;
      const first = (x: Run) => x, second = (x: Run) => x.second;
      // Demangling against none: two processes per round, so the ratio is taken round by round
      // (paired), then its median; the second pass against the first request, within each run.
      const paired = (k: 'ms' | 'cpuMs') => median(got.get('demangling')!.map((x, r) => x[k] / got.get('neither')![r]![k]));
      const within = (v: string, k: 'ms' | 'cpuMs') => median(got.get(v)!.map((x) => (x[k] + x.second[k]) / x[k]));
      const cells = [pair('neither', first), pair('demangling', first), pair('covd serve', first), pair('covd serve', second), pair('one request with inlines', first),
        `${paired('ms').toFixed(2)} / ${paired('cpuMs').toFixed(2)}`, `${within('covd serve', 'ms').toFixed(2)} / ${within('covd serve', 'cpuMs').toFixed(2)}`];
      results.push({ target: label, pcs: addrs.length, demanglingCpu: paired('cpuMs'), inlinedCpu: within('covd serve', 'cpuMs'), inlinedWall: within('covd serve', 'ms'),
        readyCpuMs: med('covd serve', (x) => x.cpuMs), secondCpuMs: med('covd serve', (x) => x.second.cpuMs) });
      if (beforeDir) cells.push(pair('neither (before)', first), pair('covd serve (before)', first), pair('covd serve (before)', second), `${within('covd serve (before)', 'ms').toFixed(2)} / ${within('covd serve (before)', 'cpuMs').toFixed(2)}`);
      console.log(`| ${label} | ${addrs.length} | ${cells.join(' | ')} |`);
    }
    console.log(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log('ratios: demangling / neither paired round by round; (ready + inlined code) / ready within each run; medians (wall / CPU)');
    if (process.argv.includes('--results')) {
      const { writeResults } = await import('./lib/results.js');
      const goal = 1.15;
      writeResults('cpp', { rounds, goal, targets: results, demanglingPass: results.every((x) => x.demanglingCpu <= goal), inlinedPass: results.every((x) => x.inlinedCpu <= goal) });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function cold(): Promise<void> {
  const rounds = Number(arg('--rounds', '9'));
  const { buildSqliteTarget, buildCppExampleTarget } = await import('../src/build/targets.js');
  const { pcTable, randomTextAddresses } = await import('../test/dwarf/programs.js');
  const dir = mkdtempSync(join(tmpdir(), 'covd-demangle-'));
  try {
    const ini = await buildCppExampleTarget({ agent: false });
    const ini0 = await buildCppExampleTarget({ agent: false, cflags: ['-O0'] });
    const sqlite = await buildSqliteTarget({ agent: false });
    const cases: [string, string, bigint[]][] = [
      ['iniparse -O1, pc-table', ini, pcTable(ini, dir)],
      ['iniparse -O0, pc-table', ini0, pcTable(ini0, dir)],
      ['iniparse -O1, pc-table + 20,000 random .text (libFuzzer runtime)', ini, [...pcTable(ini, dir), ...randomTextAddresses(ini, 20_000, 1)]],
      ['sqlite, pc-table', sqlite, pcTable(sqlite, dir)],
    ];
    console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${rounds} rounds, on and off alternating; medians (wall / CPU ms)`);
    const rows: string[] = [];
    for (const [label, exe, addrs] of cases) {
      const file = join(dir, 'addrs.txt');
      writeFileSync(file, addrs.map((a) => '0x' + a.toString(16)).join('\n') + '\n');
      const fnCount = new Set(execFileSync(process.execPath, [covd, 'symbolize', `--exe=${exe}`], { input: readFileSync(file), maxBuffer: 1 << 28, encoding: 'utf8' })
        .split('\n\n').map((b) => b.split('\n')[0])).size;
      const proc: Record<string, { ms: number; cpuMs: number }[]> = { on: [], off: [] };
      const pool: Record<string, { ms: number; cpuMs: number }[]> = { on: [], off: [] };
      for (let r = 0; r < rounds; r++) {
        for (const mode of ['on', 'off']) {
          const env = { ...process.env, COVD_DEMANGLE: mode === 'on' ? '1' : '0' };
          proc[mode]!.push(timeProcess([covd, 'symbolize', `--exe=${exe}`, '--output-style=JSON'], file, env));
          const out = execFileSync(process.execPath, [self, 'pool-child', exe, file], { encoding: 'utf8', env });
          pool[mode]!.push(JSON.parse(out.trim().split('\n').pop()!));
        }
      }
      const f = (xs: { ms: number; cpuMs: number }[]) => `${median(xs.map((x) => x.ms)).toFixed(0)} / ${median(xs.map((x) => x.cpuMs)).toFixed(0)}`;
      const ratio = (a: { ms: number; cpuMs: number }[], b: { ms: number; cpuMs: number }[]) =>
        `${(median(a.map((x) => x.ms)) / median(b.map((x) => x.ms))).toFixed(2)} / ${(median(a.map((x) => x.cpuMs)) / median(b.map((x) => x.cpuMs))).toFixed(2)}`;
      rows.push(`| ${label} | ${addrs.length} | ${fnCount} | ${f(proc.on!)} | ${f(proc.off!)} | ${ratio(proc.on!, proc.off!)} | ${f(pool.on!)} | ${f(pool.off!)} | ${ratio(pool.on!, pool.off!)} |`);
    }
    console.log('| target, addresses | addresses | functions | covd symbolize, on | off | on / off | pool first request, on | off | on / off |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rows) console.log(r);
    console.log(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function phasesChild(exe: string, addrFile: string): Promise<void> {
  const { setSymbolizerV8Flags } = await import('../src/cli/v8-flags.js');
  const { DebugInfo } = await import('../src/dwarf/resolve.js');
  const dm = await import('../src/dwarf/demangle.js');
  setSymbolizerV8Flags();
  const pcs = BigUint64Array.from(readFileSync(addrFile, 'utf8').trim().split('\n').map((s) => BigInt(s)));
  const cpu = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; };
  let t = performance.now(), c = cpu();
  const ix = DebugInfo.open(exe).resolve(pcs, { declarations: false, demangle: false });
  const resolve = [performance.now() - t, cpu() - c];
  // Loaded only when some name needs it, as resolve() does.
  t = performance.now(); c = cpu();
  if (ix.functions.names.some(dm.wantsDemangling)) dm.demanglerActive();
  const load = [performance.now() - t, cpu() - c];
  t = performance.now(); c = cpu();
  const shown = dm.demangleNames(ix.functions.names);
  const demangle = [performance.now() - t, cpu() - c];
  const changed = shown.filter((n, i) => n !== ix.functions.names[i]).length;
  console.log(JSON.stringify({ resolve, load, demangle, names: shown.length, changed }));
}

async function phases(): Promise<void> {
  const rounds = Number(arg('--rounds', '7'));
  const { buildSqliteTarget, buildCppExampleTarget } = await import('../src/build/targets.js');
  const { pcTable, randomTextAddresses } = await import('../test/dwarf/programs.js');
  const dir = mkdtempSync(join(tmpdir(), 'covd-demangle-'));
  try {
    const ini = await buildCppExampleTarget({ agent: false });
    const ini0 = await buildCppExampleTarget({ agent: false, cflags: ['-O0'] });
    const sqlite = await buildSqliteTarget({ agent: false });
    const cases: [string, string, bigint[]][] = [
      ['iniparse -O1, pc-table', ini, pcTable(ini, dir)],
      ['iniparse -O0, pc-table', ini0, pcTable(ini0, dir)],
      ['iniparse -O1, pc-table + 20,000 random .text', ini, [...pcTable(ini, dir), ...randomTextAddresses(ini, 20_000, 1)]],
      ['sqlite, pc-table', sqlite, pcTable(sqlite, dir)],
      ['sqlite, pc-table + 20,000 random .text', sqlite, [...pcTable(sqlite, dir), ...randomTextAddresses(sqlite, 20_000, 1)]],
    ];
    console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; medians of ${rounds} fresh processes (wall / CPU ms)`);
    console.log('| target, addresses | functions | demangled | resolve without demangling | compile the demangler | demangle | added / resolve (wall, CPU) |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const [label, exe, addrs] of cases) {
      const file = join(dir, 'addrs.txt');
      writeFileSync(file, addrs.map((a) => '0x' + a.toString(16)).join('\n') + '\n');
      const runs: { resolve: number[]; load: number[]; demangle: number[]; names: number; changed: number }[] = [];
      for (let r = 0; r < rounds; r++) runs.push(JSON.parse(execFileSync(process.execPath, [self, 'phases-child', exe, file], { encoding: 'utf8' }).trim().split('\n').pop()!));
      const m = (k: 'resolve' | 'load' | 'demangle', i: number) => median(runs.map((x) => x[k][i]!));
      const pair = (k: 'resolve' | 'load' | 'demangle') => `${m(k, 0).toFixed(1)} / ${m(k, 1).toFixed(1)}`;
      const added = (i: number) => ((median(runs.map((x) => x.load[i]! + x.demangle[i]!)) / m('resolve', i)) * 100).toFixed(0) + ' %';
      console.log(`| ${label} | ${runs[0]!.names} | ${runs[0]!.changed} | ${pair('resolve')} | ${pair('load')} | ${pair('demangle')} | ${added(0)}, ${added(1)} |`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * demangle.wasm driven directly (demangle.ts would set its own flags) in a symbolizer's setting:
 * V8 tuned as for symbolizing (src/cli/v8-flags.ts) and the kernels compiled, then the flags given.
 */
async function tiersChild(file: string, n: number, flags: string[]): Promise<void> {
  const { setSymbolizerV8Flags } = await import('../src/cli/v8-flags.js');
  const { kernels } = await import('../src/dwarf/kernels.js');
  const { setFlagsFromString } = await import('node:v8');
  setSymbolizerV8Flags();
  kernels();
  for (const f of flags) setFlagsFromString(f);
  const names = readFileSync(file, 'utf8').trim().split('\n').slice(0, n);
  type X = { memory: { buffer: ArrayBuffer }; _initialize(): void; dm_input(n: number): number; dm_output(): number; dm_run(c: number, b: number): number };
  const W = (globalThis as unknown as { WebAssembly: { Module: { new (b: Uint8Array): object; imports(m: object): { module: string; name: string }[] }; Instance: new (m: object, i: object) => { exports: X } } }).WebAssembly;
  const c0 = process.cpuUsage(), t0 = performance.now();
  const mod = new W.Module(readFileSync(join(root, 'dist', 'src', 'dwarf', 'demangle.wasm')));
  const imports: Record<string, Record<string, () => number>> = {};
  for (const imp of W.Module.imports(mod)) (imports[imp.module] ??= {})[imp.name] = () => 52;
  const x = new W.Instance(mod, imports).exports;
  x._initialize();
  for (let i = 0; i < names.length; i += 5000) {
    const input = Buffer.from(names.slice(i, i + 5000).join('\0') + '\0');
    const at = x.dm_input(input.length); // may grow the memory: its buffer is read after
    new Uint8Array(x.memory.buffer, at, input.length).set(input);
    const len = x.dm_run(Math.min(5000, names.length - i), input.length);
    Buffer.from(x.memory.buffer, x.dm_output(), len).toString('latin1').split('\0');
  }
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 300));
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ ms, cpuMs: (c.user + c.system) / 1000 }));
}

function tiers(): void {
  const dir = mkdtempSync(join(tmpdir(), 'covd-demangle-'));
  try {
    const file = join(dir, 'names.txt');
    writeFileSync(file, systemNames(100_000).join('\n') + '\n');
    const variants: [string, string[]][] = [
      ['Liftoff, no tier-up (covd)', ['--liftoff', '--wasm-lazy-compilation', '--no-wasm-tier-up']],
      ['Liftoff, tier-up to TurboFan (V8 default)', ['--liftoff', '--wasm-lazy-compilation', '--wasm-tier-up']],
      ['TurboFan up front', ['--no-liftoff', '--no-wasm-lazy-compilation']],
    ];
    console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; median of 3 fresh processes, wall / CPU ms (CPU of all threads, 300 ms after the last name)`);
    console.log('| names | ' + variants.map(([v]) => v).join(' | ') + ' |');
    console.log('| --- |' + variants.map(() => ' --- |').join(''));
    for (const n of [50, 1000, 10_000, 100_000]) {
      const cells = variants.map(([, flags]) => {
        const runs = [0, 1, 2].map(() => JSON.parse(execFileSync(process.execPath, [self, 'tiers-child', file, String(n), ...flags], { encoding: 'utf8' }).trim()) as { ms: number; cpuMs: number });
        return `${median(runs.map((r) => r.ms)).toFixed(0)} / ${median(runs.map((r) => r.cpuMs)).toFixed(0)}`;
      });
      console.log(`| ${n} | ${cells.join(' | ')} |`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'names') names();
else if (cmd === 'names-child') await namesChild(rest[0]!, rest[1]!, rest[2]!, rest[3] ?? '');
else if (cmd === 'cold') await cold();
else if (cmd === 'pool-child') await poolChild(rest[0]!, rest[1]!, rest[2] ?? '', rest[3] ?? '');
else if (cmd === 'daemon') await daemonCost();
else if (cmd === 'phases') await phases();
else if (cmd === 'tiers') tiers();
else if (cmd === 'tiers-child') await tiersChild(rest[0]!, Number(rest[1]), rest.slice(2));
else if (cmd === 'phases-child') await phasesChild(rest[0]!, rest[1]!);
else {
  console.error('usage: node dist/bench/measure-demangle.js names [--rounds N] [--gecko DIR] | cold [--rounds N] | daemon [--rounds N] | phases [--rounds N] | tiers');
  process.exitCode = 2;
}

