/** `covd cc --engine=afl [--cmplog]`: the AFL++ half of `covd cc` (src/build/afl-build.ts has the command lines). */
import { spawn } from 'node:child_process';
import { agentObject, clangPath, shellQuote } from '../build/toolchain.js';
import { AflMissingError, findAflClangFast, findAflRuntime, isCxx, planAflCc, planAflCmplog, type AflRuntime } from '../build/afl-build.js';

export const aflUsage = `AFL++ (--engine=afl): builds a persistent-mode AFL++ target from the same harness, as
  clang-14 -g -O1 -fsanitize-coverage=trace-pc-guard,inline-8bit-counters,pc-table <your arguments>
    <agent object> $AFL_PATH/afl-compiler-rt.o $AFL_PATH/libAFLDriver.a
    <the agent's link flags, as above> -Wl,--wrap=__afl_manual_init [-lstdc++ for C++]
AFL_PATH defaults to /usr/lib/afl (Debian's afl++ package). A -fsanitize=fuzzer among your
arguments is dropped (other sanitizers stay). Fuzz it with afl-fuzz (-M/-S instances share one
coverage file); \`./target FILE...\` runs files once each. With --cmplog it builds the CmpLog
companion for afl-fuzz -c instead: AFL_LLVM_CMPLOG=1 afl-clang-fast -fsanitize=fuzzer ..., no agent.`;

export const aflExample = `  covd cc --engine=afl -o fuzz_tinyimg examples/tinyimg/*.c
  covd cc --engine=afl --cmplog -o fuzz_tinyimg.cmplog examples/tinyimg/*.c
  COVD_DIR=/tmp/covd afl-fuzz -i examples/tinyimg/corpus -o out -c ./fuzz_tinyimg.cmplog -- ./fuzz_tinyimg`;

function run(argv: string[], env: Record<string, string>): Promise<number> {
  return new Promise<number>((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env: { ...process.env, ...env } });
    child.on('error', (err) => {
      console.error(`covd cc: cannot run ${argv[0]}: ${err.message}`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Prints the command (environment first, as a shell would take it) and runs it unless dryRun. */
export async function runAflCc(clangArgs: string[], opts: { noAgent: boolean; dryRun: boolean; cmplog: boolean }): Promise<number> {
  const compileOnly = clangArgs.some((a) => a === '-c' || a === '-S' || a === '-E');
  let runtime: AflRuntime | null = null;
  try {
    if (!compileOnly || opts.cmplog) runtime = findAflRuntime();
  } catch (err) {
    if (err instanceof AflMissingError) {
      console.error(`covd cc: ${err.message}`);
      return 1;
    }
    throw err;
  }
  if (opts.cmplog) {
    let aflCc: string;
    try {
      aflCc = findAflClangFast(runtime!, isCxx(clangArgs));
    } catch (err) {
      console.error(`covd cc: ${(err as Error).message}`);
      return 1;
    }
    const plan = planAflCmplog(clangArgs, { aflCc });
    console.error(shellQuote([...Object.entries(plan.env).map(([k, v]) => `${k}=${v}`), ...plan.argv]));
    return opts.dryRun ? 0 : run(plan.argv, plan.env);
  }
  const compiler = clangPath();
  let agent: string | null = null;
  if (!opts.noAgent && !compileOnly) {
    try {
      agent = await agentObject(compiler);
    } catch (err) {
      const e = err as Error & { stderr?: string };
      console.error(`covd cc: cannot compile the agent with ${compiler}: ${e.stderr?.trim() || e.message}`);
      return 1;
    }
  }
  const plan = planAflCc(clangArgs, { cc: compiler, agent, runtime });
  console.error(shellQuote(plan.argv));
  return opts.dryRun ? 0 : run(plan.argv, {});
}
