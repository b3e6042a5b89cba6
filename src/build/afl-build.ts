/**
 * Building AFL++ targets with the covd agent (`covd cc --engine=afl`): where AFL++'s runtime
 * files are, and the clang command lines.
 *
 * A persistent-mode AFL++ target from a libFuzzer-style harness, linked with clang-14 itself:
 *
 *   clang-14 -g -O1 -fsanitize-coverage=trace-pc-guard,inline-8bit-counters,pc-table <args>
 *            <agent object> <AFL>/afl-compiler-rt.o <AFL>/libAFLDriver.a
 *            <the agent's link flags of a libFuzzer build> -Wl,--wrap=__afl_manual_init
 *
 * trace-pc-guard feeds afl-fuzz's edge map through afl-compiler-rt.o; the 8-bit counters and the
 * PC table are what the agent reads. afl-clang-fast is not used for this binary: it drops the
 * extra -fsanitize-coverage flags. libAFLDriver.a holds main(), the fork-server hand-off and the
 * persistent loop (and runs files given as arguments once each, without afl-fuzz). C++ sources
 * add -lstdc++ (libFuzzer's -fsanitize=fuzzer pulls in the C++ library by itself; this link does
 * not). The CmpLog companion (`--cmplog`, afl-fuzz -c) is AFL++'s own build:
 * `AFL_LLVM_CMPLOG=1 afl-clang-fast -fsanitize=fuzzer ...`, without the agent.
 */
import { statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { AGENT_LINK_FLAGS, type CcPlan } from './toolchain.js';

/** AFL++'s files a build needs. */
export interface AflRuntime {
  /** The directory they were found in ($AFL_PATH, else /usr/lib/afl). */
  dir: string;
  /** afl-compiler-rt.o: the fork server, the persistent loop, the trace-pc-guard callbacks. */
  compilerRt: string;
  /** libAFLDriver.a: main() for LLVMFuzzerTestOneInput harnesses. */
  driver: string;
}

/** Where Debian's afl++ package puts the runtime. */
export const DEFAULT_AFL_DIR = '/usr/lib/afl';

/** The instrumentation of an AFL++ build with the agent: AFL++'s guards plus the agent's counters and PC table. */
export const AFL_COVERAGE_FLAGS = ['-fsanitize-coverage=trace-pc-guard,inline-8bit-counters,pc-table'];

/**
 * Link flags of an AFL++ build with the agent: the libFuzzer build's (the agent runs after every
 * input, ...) plus the wrap that opens its file in the fork server before the first fork
 * (agent/covd_agent.c, "AFL++" section).
 */
export const AFL_AGENT_LINK_FLAGS = [...AGENT_LINK_FLAGS, '-Wl,--wrap=__afl_manual_init'];

const INSTALL_HINT =
  'install AFL++ (Debian/Ubuntu: `apt-get install afl++`, which puts it in /usr/lib/afl), or set AFL_PATH to the directory that holds afl-compiler-rt.o and libAFLDriver.a (the top of an AFL++ source build)';

/** AFL++ is not installed where we looked; the message says what to install. */
export class AflMissingError extends Error {
  override name = 'AflMissingError';
  constructor(readonly dir: string, readonly missing: string[], fromEnv: boolean) {
    super(
      `AFL++ is not installed${fromEnv ? ` in AFL_PATH=${dir}` : ` (looked in ${dir})`}: ` +
        `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing; ${INSTALL_HINT}`,
    );
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Finds AFL++'s runtime in $AFL_PATH (only there, when set) or /usr/lib/afl; throws AflMissingError. */
export function findAflRuntime(env: NodeJS.ProcessEnv = process.env): AflRuntime {
  const fromEnv = !!env.AFL_PATH;
  const dir = env.AFL_PATH || DEFAULT_AFL_DIR;
  const compilerRt = join(dir, 'afl-compiler-rt.o');
  const driver = join(dir, 'libAFLDriver.a');
  const missing = [compilerRt, driver].filter((p) => !isFile(p)).map((p) => p.slice(dir.length + 1));
  if (missing.length) throw new AflMissingError(dir, missing, fromEnv);
  return { dir, compilerRt, driver };
}

/**
 * afl-clang-fast (or afl-clang-fast++ for C++), for the CmpLog build: next to the runtime when
 * AFL_PATH names a source build, else on PATH. Throws AflMissingError when there is none.
 */
export function findAflClangFast(runtime: AflRuntime, cxx: boolean, env: NodeJS.ProcessEnv = process.env): string {
  const name = cxx ? 'afl-clang-fast++' : 'afl-clang-fast';
  const dirs = [...(env.AFL_PATH ? [env.AFL_PATH] : []), ...(env.PATH ?? '/usr/bin').split(delimiter).filter(Boolean)];
  for (const d of dirs) if (isFile(join(d, name))) return join(d, name);
  throw new AflMissingError(runtime.dir, [name], !!env.AFL_PATH);
}

/** True when the arguments compile or link C++ (by source suffix, -x c++ or a C++ -std). */
export function isCxx(userArgs: string[]): boolean {
  return userArgs.some((a, i) =>
    /\.(cc|cp|cpp|cxx|c\+\+|C|CPP|ii)$/.test(a) || /^-std=(c|gnu)\+\+/.test(a) || a === '-x' && /^c\+\+/.test(userArgs[i + 1] ?? '') || /^-xc\+\+/.test(a));
}

/** Removes `fuzzer` / `fuzzer-no-link` from -fsanitize= lists (AFL++ is the engine here); keeps the other sanitizers. */
function withoutLibFuzzer(args: string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    const m = /^-fsanitize=(.*)$/.exec(a);
    if (!m) { out.push(a); continue; }
    const rest = m[1]!.split(',').filter((s) => s !== 'fuzzer' && s !== 'fuzzer-no-link');
    if (rest.length) out.push(`-fsanitize=${rest.join(',')}`);
  }
  return out;
}

const compileOnlyOf = (args: string[]) => args.some((a) => a === '-c' || a === '-S' || a === '-E');

/**
 * The clang command for `covd cc --engine=afl <userArgs>`: -g and -O1 unless given, the AFL++
 * + agent instrumentation, and when linking AFL++'s runtime and driver, the agent object and
 * its wrap flags (agent null: no agent, no wraps; runtime null only for compile-only commands).
 * A libFuzzer `-fsanitize=fuzzer` among the arguments is dropped (other sanitizers stay).
 */
export function planAflCc(userArgs: string[], opts: { cc: string; agent: string | null; runtime: AflRuntime | null }): CcPlan {
  const args = withoutLibFuzzer(userArgs);
  const compileOnly = compileOnlyOf(args);
  const argv = [opts.cc];
  if (!args.some((a) => /^-g/.test(a))) argv.push('-g');
  if (!args.some((a) => /^-O/.test(a))) argv.push('-O1');
  argv.push(...AFL_COVERAGE_FLAGS, ...args);
  if (compileOnly) return { argv, links: false };
  if (!opts.runtime) throw new Error('planAflCc: linking needs the AFL++ runtime');
  if (opts.agent) argv.push(opts.agent);
  argv.push(opts.runtime.compilerRt, opts.runtime.driver);
  argv.push(...(opts.agent ? AFL_AGENT_LINK_FLAGS : ['-Wl,--build-id']));
  if (isCxx(userArgs)) argv.push('-lstdc++');
  return { argv, links: opts.agent !== null };
}

/**
 * The CmpLog companion (afl-fuzz -c): AFL++'s own instrumentation with its comparison logging,
 * built by afl-clang-fast from the same harness, without the agent (its runs are afl-fuzz's
 * comparison probes, not coverage). Returns the command and the environment it needs.
 */
export function planAflCmplog(userArgs: string[], opts: { aflCc: string }): { argv: string[]; env: Record<string, string> } {
  const args = withoutLibFuzzer(userArgs);
  const argv = [opts.aflCc];
  if (!args.some((a) => /^-g/.test(a))) argv.push('-g');
  if (!args.some((a) => /^-O/.test(a))) argv.push('-O1');
  argv.push(compileOnlyOf(args) ? '-fsanitize=fuzzer-no-link' : '-fsanitize=fuzzer', ...args);
  return { argv, env: { AFL_LLVM_CMPLOG: '1' } };
}

/** True when AFL++ is installed where findAflRuntime looks (for tests and the demo). */
export function aflInstalled(env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    findAflRuntime(env);
    return true;
  } catch {
    return false;
  }
}
