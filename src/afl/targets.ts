/**
 * AFL++ builds of the bundled examples (with or without the agent, as `covd cc --engine=afl`
 * makes them; cached under build/targets/ by a hash of sources, flags and the agent) and running
 * afl-fuzz on them briefly, for the tests and bench/afl-overhead.ts.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findAflRuntime, planAflCc } from '../build/afl-build.js';
import { agentObject, agentSourcesKey, buildAtomically, buildDir, buildOnce, clangPath, packageRoot, sha256 } from '../build/toolchain.js';
import { descendantPids, exampleDir, type FuzzerRun } from '../build/targets.js';

const execFileP = promisify(execFile);

/** Builds a target with `covd cc --engine=afl` flags, once per content hash; resolves to the executable. */
export function buildAflTarget(spec: { name: string; sources: string[]; cflags?: string[]; agent?: boolean }): Promise<string> {
  const cc = clangPath();
  const withAgent = spec.agent ?? true;
  const runtime = findAflRuntime();
  const key = sha256(
    'afl', cc, String(withAgent), (spec.cflags ?? []).join('\0'), runtime.dir,
    ...spec.sources.flatMap((s) => [s, readFileSync(s, 'latin1')]),
    withAgent ? agentSourcesKey() : '',
  ).slice(0, 16);
  const id = `${spec.name}-afl-${key}`;
  return buildOnce(id, async () => {
    const agent = withAgent ? await agentObject(cc) : null;
    return buildAtomically(join(buildDir('targets', id), spec.name), async (tmp) => {
      const plan = planAflCc([...(spec.cflags ?? []), ...spec.sources, '-o', tmp], { cc, agent, runtime });
      await execFileP(plan.argv[0]!, plan.argv.slice(1), { maxBuffer: 16 << 20 });
    });
  });
}


/** examples/tinyimg as an AFL++ target (seeds: exampleDir()/corpus). */
export function buildAflExampleTarget(opts: { agent?: boolean } = {}): Promise<string> {
  const d = exampleDir();
  return buildAflTarget({ name: 'fuzz_tinyimg', sources: ['fuzz_tinyimg.c', 'decode.c', 'meta.c'].map((f) => join(d, f)), ...opts });
}

/** The sqlite3 amalgamation as an AFL++ target (scripts/build-sqlite-target.sh --engine=afl; slow the first time). */
export function buildAflSqliteTarget(opts: { agent?: boolean } = {}): Promise<string> {
  const root = packageRoot();
  const withAgent = opts.agent ?? true;
  const script = join(root, 'scripts', 'build-sqlite-target.sh');
  const harness = join(root, 'examples', 'sqlite', 'fuzz_sqlite.c');
  const key = sha256('afl', clangPath(), String(withAgent), readFileSync(script, 'latin1'), readFileSync(harness, 'latin1'), findAflRuntime().dir, withAgent ? agentSourcesKey() : '').slice(0, 16);
  const id = `fuzz_sqlite-afl-${key}`;
  return buildOnce(id, () => buildAtomically(join(buildDir('targets', id), 'fuzz_sqlite'), async (tmp) => {
    await execFileP('bash', [script, '--engine=afl', ...(withAgent ? [] : ['--no-agent']), tmp], {
      cwd: root, maxBuffer: 64 << 20, env: { ...process.env, npm_config_loglevel: 'error' },
    });
  }));
}

/**
 * What afl-fuzz needs on a CI machine or a shared box run as root without a tuned kernel: no UI,
 * no CPU-frequency or core_pattern checks, no core binding (the cores are shared).
 */
export const AFL_TEST_ENV: Record<string, string> = {
  AFL_NO_UI: '1',
  AFL_SKIP_CPUFREQ: '1',
  AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES: '1',
  AFL_NO_AFFINITY: '1',
  AFL_TRY_AFFINITY: '0',
  AFL_IGNORE_UNKNOWN_ENVS: '1',
};

export interface AflRunOptions {
  /** Seed directory (-i). */
  input: string;
  /** Output (sync) directory (-o). */
  output: string;
  /** -M NAME / -S NAME; none: afl-fuzz's own 'default' instance. */
  main?: string;
  secondary?: string;
  /** -V seconds and/or -E executions. */
  seconds?: number;
  execs?: number;
  /** -s: a fixed RNG seed. */
  seed?: number;
  /** COVD_DIR for the agent; COVD_SOCKET when given (else a socket path nobody listens on). */
  covdDir: string;
  socket?: string;
  /** -c: the CmpLog companion binary. */
  cmplog?: string;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Run under `bash -c ...; times` so done() reports the CPU time of afl-fuzz and everything it ran. */
  times?: boolean;
}

export interface AflRun extends FuzzerRun {
  /** The instance directory (<output>/<name>). */
  instanceDir: string;
}

/** A process's start time (field 22 of /proc/PID/stat), or undefined when it is gone. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Starts afl-fuzz on `exe` with AFL_TEST_ENV; stop() signals it and its children. */
export function runAfl(exe: string, o: AflRunOptions): AflRun {
  mkdirSync(o.output, { recursive: true });
  const args: string[] = ['-i', o.input, '-o', o.output];
  if (o.main) args.push('-M', o.main);
  if (o.secondary) args.push('-S', o.secondary);
  if (o.seconds !== undefined) args.push('-V', String(Math.max(1, Math.round(o.seconds))));
  if (o.execs !== undefined) args.push('-E', String(o.execs));
  if (o.seed !== undefined) args.push('-s', String(o.seed));
  if (o.cmplog) args.push('-c', o.cmplog);
  args.push(...(o.extraArgs ?? []), '--', exe);
  const env: NodeJS.ProcessEnv = {
    ...process.env, ...AFL_TEST_ENV, COVD_DIR: o.covdDir, COVD_SOCKET: o.socket ?? join(o.covdDir, 'nobody-listens.sock'), ...o.env,
  };
  const child = o.times
    ? spawn('bash', ['-c', '"$0" "$@"; rc=$?; times >&2; exit $rc', 'afl-fuzz', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('afl-fuzz', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const keep = (s: string) => { stderr = (stderr + s).slice(-1 << 20); };
  child.stdout!.setEncoding('utf8').on('data', keep);
  child.stderr!.setEncoding('utf8').on('data', keep);
  // afl-fuzz's fork servers call setsid(), and one that outlives afl-fuzz (the CmpLog binary's,
  // say) is re-parented away from it: remember every descendant seen while it ran, and kill
  // those still there once afl-fuzz is gone.
  // Start times guard against a pid reused meanwhile.
  const seen = new Map<number, string>();
  const sample = () => {
    if (child.pid !== undefined) for (const p of descendantPids(child.pid)) if (!seen.has(p)) seen.set(p, startTimeOf(p) ?? '');
  };
  const sampler = setInterval(sample, 500).unref();
  const reap = () => {
    clearInterval(sampler);
    for (const [p, start] of seen) {
      if (startTimeOf(p) !== start) continue;
      try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    }
  };
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.on('error', (err) => { reap(); resolve({ code: null, stderr: `${stderr}\n${err.message}` }); });
    child.on('close', (code) => { reap(); resolve({ code, stderr }); });
  });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      sample();
      try { process.kill(child.pid, signal); } catch { /* gone */ }
      for (const [p, start] of seen) {
        if (startTimeOf(p) !== start) continue;
        try { process.kill(p, signal); } catch { /* gone */ }
      }
    }
    return done;
  };
  return { child, done, stop, instanceDir: join(o.output, o.main ?? o.secondary ?? 'default') };
}

/** A fresh copy of a seed directory (afl-fuzz reads -i; tests must not share one). */
export function copySeeds(from: string, to: string): string {
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true });
  return to;
}
