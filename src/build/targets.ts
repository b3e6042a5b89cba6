/**
 * The bundled fuzz targets (examples/tinyimg, the sqlite amalgamation) built with the agent and
 * cached under build/targets/ by a hash of their sources and flags, plus running them under
 * libFuzzer with COVD_DIR set and finding the coverage file they write. Used by `covd demo`,
 * the benchmarks and the tests of every part (through test/helpers/fuzz-targets.ts).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { agentObject, agentSourcesKey, buildAtomically, buildDir, buildOnce, clangPath, packageRoot, planCc, sha256 } from './toolchain.js';
import { COVERAGE_ID } from '../contracts/ids.js';

const execFileP = promisify(execFile);

export interface TargetSpec {
  /** Executable name, e.g. fuzz_tinyimg. */
  name: string;
  /** C sources, absolute. Every .c/.h file in their directories is part of the cache key. */
  sources: string[];
  /** Extra clang arguments (before the sources). */
  cflags?: string[];
  /** Link the covd agent (default true). */
  agent?: boolean;
}

function dirFilesKey(dirs: Iterable<string>): string[] {
  const parts: string[] = [];
  for (const d of [...new Set(dirs)].sort()) {
    for (const f of readdirSync(d).filter((n) => /\.[ch]$/.test(n)).sort()) parts.push(f, readFileSync(join(d, f)).toString('latin1'));
  }
  return parts;
}

/** Builds a target with `covd cc` flags, once per content hash; resolves to the executable path. */
export function buildFuzzTarget(spec: TargetSpec): Promise<string> {
  const cc = clangPath();
  const withAgent = spec.agent ?? true;
  const key = sha256(
    cc,
    String(withAgent),
    (spec.cflags ?? []).join('\0'),
    spec.sources.map((s) => basename(s)).join('\0'),
    ...dirFilesKey(spec.sources.map(dirname)),
    withAgent ? agentSourcesKey() : '',
  ).slice(0, 16);
  const id = `${spec.name}-${key}`;
  return buildOnce(id, async () => {
    const agent = withAgent ? await agentObject(cc) : null;
    return buildAtomically(join(buildDir('targets', id), spec.name), async (tmp) => {
      const plan = planCc([...(spec.cflags ?? []), ...spec.sources, '-o', tmp], { cc, agent });
      await execFileP(plan.argv[0]!, plan.argv.slice(1), { maxBuffer: 16 << 20 });
    });
  });
}

export function exampleDir(): string {
  return join(packageRoot(), 'examples', 'tinyimg');
}

/** The example target (examples/tinyimg) with the agent. */
export function buildExampleTarget(opts: { agent?: boolean; cflags?: string[] } = {}): Promise<string> {
  const d = exampleDir();
  const exe = buildFuzzTarget({
    name: 'fuzz_tinyimg',
    sources: ['fuzz_tinyimg.c', 'decode.c', 'meta.c'].map((f) => join(d, f)),
    ...opts,
  });
  return exe.then((e) => (seedCorpora.set(e, join(d, 'corpus')), e));
}

/**
 * The sqlite3 amalgamation as a libFuzzer target (scripts/build-sqlite-target.sh): slow the first
 * time (npm pack + compiling sqlite3.c, a few minutes), cached afterwards.
 */
export function buildSqliteTarget(opts: { agent?: boolean } = {}): Promise<string> {
  const root = packageRoot();
  const withAgent = opts.agent ?? true;
  const script = join(root, 'scripts', 'build-sqlite-target.sh');
  const harness = join(root, 'examples', 'sqlite');
  const key = sha256(
    clangPath(),
    String(withAgent),
    readFileSync(script),
    ...dirFilesKey([harness]),
    withAgent ? agentSourcesKey() : '',
  ).slice(0, 16);
  const id = `fuzz_sqlite-${key}`;
  return buildOnce(id, async () => {
    const out = join(buildDir('targets', id), 'fuzz_sqlite');
    await buildAtomically(out, async (tmp) => {
      await execFileP('bash', [script, ...(withAgent ? [] : ['--no-agent']), tmp], {
        cwd: root,
        maxBuffer: 64 << 20,
        env: { ...process.env, npm_config_loglevel: 'error' },
      });
    });
    seedCorpora.set(out, join(harness, 'corpus'));
    return out;
  });
}

/** Seed corpus directory for executables built by the functions above. */
const seedCorpora = new Map<string, string>();

export function seedCorpusFor(exe: string): string | undefined {
  const known = seedCorpora.get(exe);
  if (known) return known;
  const name = basename(exe);
  if (name === 'fuzz_tinyimg') return join(exampleDir(), 'corpus');
  if (name === 'fuzz_sqlite') return join(packageRoot(), 'examples', 'sqlite', 'corpus');
  return undefined;
}

export interface RunFuzzerOptions {
  /** Coverage directory (COVD_DIR); the coverage file appears under <covdDir>/v/. */
  covdDir: string;
  /** -max_total_time; with neither seconds nor runs the fuzzer runs until killed. */
  seconds?: number;
  /** -runs */
  runs?: number;
  /** COVD_SOCKET; default: the agent's rule (<covdDir>/covd.sock). */
  socket?: string;
  /** More libFuzzer flags, e.g. ['-jobs=2'] or ['-print_pcs=1']. */
  extraArgs?: string[];
  /** Extra environment (merged over process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Corpus directory passed to libFuzzer. Default: a fresh temp copy of the target's seed corpus
   * (known for targets built by buildExampleTarget/buildSqliteTarget), removed at exit; null: none.
   */
  corpus?: string | null;
}

export interface FuzzerRun {
  child: ChildProcess;
  /** Resolves when the fuzzer exits; stderr is the last 4 MiB of its output. */
  done: Promise<{ code: number | null; stderr: string }>;
  /**
   * Signals the fuzzer and every process it started (-jobs/-fork workers, which a signal to the
   * parent alone would leave running), then waits for it to exit.
   */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; stderr: string }>;
}

/** Pids of all descendants of pid, from /proc/<pid>/stat (children before grandchildren). */
export function descendantPids(pid: number): number[] {
  const parentOf = new Map<number, number>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(e), ppid);
    } catch { /* exited meanwhile */ }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const [c, pp] of parentOf) if (pp === p) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Starts `exe` under libFuzzer with COVD_DIR set; runs in a temp working directory (crash files go there). */
export function runFuzzer(exe: string, opts: RunFuzzerOptions): FuzzerRun {
  const work = mkdtempSync(join(tmpdir(), 'covd-fuzz-'));
  const args: string[] = [];
  if (opts.seconds !== undefined) args.push(`-max_total_time=${Math.max(1, Math.round(opts.seconds))}`);
  if (opts.runs !== undefined) args.push(`-runs=${opts.runs}`);
  args.push(...(opts.extraArgs ?? []));
  let corpus = opts.corpus;
  if (corpus === undefined) {
    const seeds = seedCorpusFor(exe);
    if (seeds) {
      corpus = join(work, 'corpus');
      cpSync(seeds, corpus, { recursive: true });
      for (const f of readdirSync(corpus)) chmodSync(join(corpus, f), 0o644);
    } else {
      corpus = null;
    }
  }
  if (corpus) args.push(corpus);
  const env: NodeJS.ProcessEnv = { ...process.env, COVD_DIR: opts.covdDir, ...opts.env };
  if (opts.socket) env.COVD_SOCKET = opts.socket;
  else if (!opts.env?.COVD_SOCKET) delete env.COVD_SOCKET;
  const child = spawn(exe, args, { cwd: work, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const limit = 4 << 20;
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    stderr += s;
    if (stderr.length > limit) stderr = stderr.slice(stderr.length - limit);
  });
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    let settled = false;
    const finish = (code: number | null) => {
      if (settled) return;
      settled = true;
      rmSync(work, { recursive: true, force: true });
      resolve({ code, stderr });
    };
    child.on('error', (err) => {
      stderr += `\n${err.message}`;
      finish(null);
    });
    child.on('close', (code) => finish(code));
  });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const pids = [child.pid, ...descendantPids(child.pid)];
      for (const p of pids) {
        try {
          process.kill(p, signal);
        } catch { /* already gone */ }
      }
    }
    return done;
  };
  return { child, done, stop };
}

const COVERAGE_NAME = COVERAGE_ID;

/** Coverage files (full paths) currently under <covdDir>/v with at least a header. */
export function listCoverageFiles(covdDir: string): string[] {
  const v = join(covdDir, 'v');
  let names: string[];
  try {
    names = readdirSync(v);
  } catch {
    return [];
  }
  return names
    .filter((n) => COVERAGE_NAME.test(n))
    .map((n) => join(v, n))
    .filter((p) => {
      try {
        return statSync(p).size >= 32;
      } catch {
        return false;
      }
    });
}

/** Waits (polling, up to timeoutMs, default 60 s) for a coverage file under <covdDir>/v and returns its path. */
export async function findCoverageFile(covdDir: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const files = listCoverageFiles(covdDir);
    if (files.length > 0) return files[0]!;
    if (Date.now() > deadline) throw new Error(`no coverage file appeared under ${join(covdDir, 'v')} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The C++ example target (examples/iniparse: classes, templates, lambdas, the standard library)
 * with the agent, built like the others with `covd cc` flags (clang-14 compiles .cpp as C++, and
 * -fsanitize=fuzzer links the C++ runtime). Its .cpp/.hpp files are hashed into a -D flag, since
 * the cache key of buildFuzzTarget reads only .c/.h files.
 */
export function buildCppExampleTarget(opts: { agent?: boolean; cflags?: string[] } = {}): Promise<string> {
  const d = join(packageRoot(), 'examples', 'iniparse');
  const sources = ['fuzz_iniparse.cpp', 'lexer.cpp', 'document.cpp'].map((f) => join(d, f));
  const cxx = readdirSync(d).filter((n) => /\.(cpp|hpp)$/.test(n)).sort().map((f) => [f, readFileSync(join(d, f), 'latin1')]).flat();
  const exe = buildFuzzTarget({
    name: 'fuzz_iniparse',
    sources,
    ...opts,
    cflags: ['-std=c++17', `-DCOVD_EXAMPLE_SOURCES=${sha256(...cxx).slice(0, 16)}`, ...(opts.cflags ?? [])],
  });
  return exe.then((e) => (seedCorpora.set(e, join(d, 'corpus')), e));
}
