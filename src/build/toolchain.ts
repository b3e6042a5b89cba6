/**
 * Building libFuzzer targets with the covd agent: where the agent source lives, compiling it
 * once (without sanitizer coverage) into a cached object, and the clang command line that
 * links a target with it. Used by `covd cc`, the example/sqlite target builders and tests.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** The repository (package) root: the nearest ancestor of this module with covd's package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'covd') return dir;
      } catch { /* not ours; keep looking */ }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('covd: cannot find the package root (package.json named "covd")');
    dir = up;
  }
}

export function agentSourcePath(): string {
  return join(packageRoot(), 'agent', 'covd_agent.c');
}

/**
 * Every source of the agent object (covd_agent.c #includes covd_inputs.c), names and contents in
 * order: what its cache key, and the keys of targets linked with it, must change with.
 */
export function agentSourcesKey(): Buffer {
  const dir = join(packageRoot(), 'agent');
  const parts: Buffer[] = [];
  for (const f of readdirSync(dir).filter((n) => /\.[ch]$/.test(n)).sort()) parts.push(Buffer.from(`${f}\0`), readFileSync(join(dir, f)));
  return Buffer.concat(parts);
}

/** Where build artefacts are cached: <root>/build, or a temp dir when the package is read-only. */
export function buildDir(...sub: string[]): string {
  for (const base of [join(packageRoot(), 'build'), join(tmpdir(), 'covd-build')]) {
    const dir = join(base, ...sub);
    try {
      mkdirSync(dir, { recursive: true });
      return dir;
    } catch { /* try the next */ }
  }
  throw new Error(`covd: cannot create a build directory for ${sub.join('/')}`);
}

/** The compiler: $COVD_CC, else clang-14 (the version whose libFuzzer runtime Debian ships here), else clang. */
export function clangPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.COVD_CC) return env.COVD_CC;
  for (const dir of (env.PATH ?? '/usr/bin').split(':')) {
    if (dir && existsSync(join(dir, 'clang-14'))) return 'clang-14';
  }
  return 'clang';
}

/** Flags the agent is compiled with: optimised, no instrumentation of any kind. */
export const AGENT_CFLAGS = ['-c', '-O2', '-g', '-fPIC', '-Wall', '-Wextra', '-fno-sanitize=all'];

/**
 * Link flags that hook the agent in after every input and give the executable a build-id;
 * --wrap=LLVMFuzzerInitialize lets it record what initialization reached, --wrap=_Exit libFuzzer's
 * timeouts and out-of-memory exits (agent/covd_inputs.c).
 */
export const AGENT_LINK_FLAGS = ['-Wl,--wrap=LLVMFuzzerTestOneInput', '-Wl,--wrap=LLVMFuzzerInitialize', '-Wl,--wrap=_Exit', '-Wl,--build-id'];

export function sha256(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/** Runs fn with a temp path beside `final`, then renames it into place (safe against concurrent builders). */
/**
 * One build per id in this process: the promise of the first call, shared by later ones, and
 * forgotten when it fails so the next call tries again. Every cached build (targets, the agent)
 * goes through it, with an id that hashes its inputs.
 */
export function buildOnce(id: string, make: () => Promise<string>): Promise<string> {
  let p = builds.get(id);
  if (!p) {
    p = make();
    p.catch(() => builds.delete(id));
    builds.set(id, p);
  }
  return p;
}
const builds = new Map<string, Promise<string>>();

export async function buildAtomically(final: string, fn: (tmp: string) => Promise<void>): Promise<string> {
  if (existsSync(final)) return final;
  const tmp = `${final}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    await fn(tmp);
    renameSync(tmp, final);
  } finally {
    rmSync(tmp, { force: true, recursive: true });
  }
  return final;
}


/** Compiles agent/covd_agent.c once per (source, compiler) into build/agent/ and returns the object path. */
export function agentObject(cc: string = clangPath()): Promise<string> {
  const src = agentSourcePath();
  const key = sha256(agentSourcesKey(), cc, AGENT_CFLAGS.join(' ')).slice(0, 16);
  return buildOnce(`agent-${key}`, () => buildAtomically(join(buildDir('agent'), `covd_agent-${key}.o`), async (tmp) => {
    await execFileP(cc, [...AGENT_CFLAGS, src, '-o', tmp]);
  }));
}

export interface CcPlan {
  /** The full argv, compiler first. */
  argv: string[];
  /** True when the command links (the agent object is on the command line). */
  links: boolean;
}

/**
 * The clang command for `covd cc <userArgs>`: -g, -O1 unless an -O is given, -fsanitize=fuzzer
 * unless the user names the fuzzer sanitizer, and when linking the agent object plus the wrap flag.
 * With -c/-S/-E (compile only) neither the agent nor link flags are added.
 */
export function planCc(userArgs: string[], opts: { cc: string; agent: string | null }): CcPlan {
  const compileOnly = userArgs.some((a) => a === '-c' || a === '-S' || a === '-E');
  const hasOpt = userArgs.some((a) => /^-O/.test(a));
  const hasFuzzer = userArgs.some((a) => /^-fsanitize=.*\bfuzzer\b/.test(a));
  const hasG = userArgs.some((a) => /^-g/.test(a));
  const argv = [opts.cc];
  if (!hasG) argv.push('-g');
  if (!hasOpt) argv.push('-O1');
  if (!hasFuzzer) argv.push(compileOnly ? '-fsanitize=fuzzer-no-link' : '-fsanitize=fuzzer');
  argv.push(...userArgs);
  const links = !compileOnly && opts.agent !== null;
  if (links) argv.push(opts.agent!, ...AGENT_LINK_FLAGS);
  return { argv, links };
}

/** Quotes an argv for display as a shell command. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
