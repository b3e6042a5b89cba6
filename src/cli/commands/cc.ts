/** `covd cc`: compile and link a libFuzzer target with the covd agent, printing the clang command. */
import { spawn } from 'node:child_process';
import { UsageError, type Command } from '../command.js';
import { agentObject, clangPath, planCc, shellQuote } from '../../build/toolchain.js';
import { aflExample, aflUsage, runAflCc } from '../afl-cc.js';

const usage = `usage: covd cc [covd options] [clang arguments...]

Builds a libFuzzer target whose coverage covd can show live. Runs clang-14 (or $COVD_CC) as
  clang-14 -g -O1 -fsanitize=fuzzer <your arguments> <agent object> -Wl,--wrap=LLVMFuzzerTestOneInput
    -Wl,--wrap=LLVMFuzzerInitialize -Wl,--wrap=_Exit -Wl,--build-id
and prints that command on stderr first. -g, -O1 and -fsanitize=fuzzer are left out when you
give your own -g*, -O* or a -fsanitize=... naming fuzzer (e.g. -fsanitize=fuzzer,address).
With -c, -S or -E it only compiles (with -fsanitize=fuzzer-no-link); link the objects with
another \`covd cc\`. The agent (agent/covd_agent.c) is compiled once, without coverage
instrumentation, and cached under build/agent/.

Run the result as any libFuzzer target; it writes its coverage to $COVD_DIR/v/<id>
(default \${XDG_RUNTIME_DIR:-/tmp}/covd) and tells a running \`covd serve\` about it.

covd options (everything else goes to clang unchanged):
  --no-agent     build a plain libFuzzer target (for comparisons)
  --dry-run      print the command without running it
  --engine=E     libfuzzer (default) or afl (AFL++, below)
  --cmplog       with --engine=afl: build the CmpLog companion binary (afl-fuzz -c)
  -h, --help     this text

${aflUsage}

example:
  covd cc -o fuzz_tinyimg examples/tinyimg/fuzz_tinyimg.c examples/tinyimg/decode.c examples/tinyimg/meta.c
  COVD_DIR=/tmp/covd ./fuzz_tinyimg -max_total_time=60 corpus/
${aflExample}`;

const cc: Command = {
  summary: 'compile and link a libFuzzer target with the covd agent (wraps clang-14)',
  usage,
  async run(argv) {
    let noAgent = false;
    let dryRun = false;
    let engine = 'libfuzzer';
    let cmplog = false;
    const clangArgs: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === '--no-agent') noAgent = true;
      else if (a === '--dry-run') dryRun = true;
      else if (a.startsWith('--engine=')) engine = a.slice('--engine='.length);
      else if (a === '--engine') engine = argv[++i] ?? '';
      else if (a === '--cmplog') cmplog = true;
      else clangArgs.push(a);
    }
    if (engine !== 'libfuzzer' && engine !== 'afl') throw new UsageError(`--engine must be libfuzzer or afl, not '${engine}'`);
    if (cmplog && engine !== 'afl') throw new UsageError('--cmplog builds an AFL++ CmpLog binary: give --engine=afl too');
    if (clangArgs.length === 0) throw new UsageError('no source files or clang arguments given');
    if (engine === 'afl') return runAflCc(clangArgs, { noAgent, dryRun, cmplog });
    const compiler = clangPath();
    let agent: string | null = null;
    if (!noAgent && !clangArgs.some((a) => a === '-c' || a === '-S' || a === '-E')) {
      try {
        agent = await agentObject(compiler);
      } catch (err) {
        const e = err as Error & { stderr?: string };
        console.error(`covd cc: cannot compile the agent with ${compiler}: ${e.stderr?.trim() || e.message}`);
        return 1;
      }
    }
    const plan = planCc(clangArgs, { cc: compiler, agent });
    console.error(shellQuote(plan.argv));
    if (dryRun) return 0;
    return await new Promise<number>((resolve) => {
      const child = spawn(plan.argv[0]!, plan.argv.slice(1), { stdio: 'inherit' });
      child.on('error', (err) => {
        console.error(`covd cc: cannot run ${plan.argv[0]}: ${err.message}`);
        resolve(127);
      });
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  },
};

export default cc;
