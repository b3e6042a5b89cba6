import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { isCoverageId } from '../../contracts/ids.js';
import { ask, parseClientArgs, socketHelp } from '../../daemon/cli-common.js';

const command: Command = {
  summary: 'tell a running daemon about a coverage file',
  usage: `usage: covd add [options] COVERAGE_FILE [EXECUTABLE]

Announces a coverage file (<dir>/v/<16 hex digits>) to a running daemon, as the agent does
when a fuzzer starts. The executable defaults to the one named in COVERAGE_FILE.meta.json.

options:
  --afl-out DIR   the target's AFL++ output directory (afl-fuzz -o, or one instance in it),
                  whose fuzzer_stats the daemon shows (the agent names it by itself under afl-fuzz)
${socketHelp}`,
  async run(argv) {
    // --afl-out is ours; the rest are the client options every command shares.
    let aflOut: string | undefined;
    const rest: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === '--afl-out') {
        aflOut = argv[++i];
        if (!aflOut) throw new UsageError('--afl-out needs a directory');
      } else if (a.startsWith('--afl-out=')) aflOut = a.slice('--afl-out='.length);
      else rest.push(a);
    }
    if (aflOut !== undefined) aflOut = resolve(aflOut);
    const { socket, json, args } = parseClientArgs(rest, { min: 1, max: 2 });
    const file = resolve(args[0]!);
    const id = file.split('/').pop()!;
    if (!isCoverageId(id)) throw new UsageError(`'${args[0]}' is not a coverage file: its name must be 16 hex digits`);
    let exe = args[1] ? resolve(args[1]) : undefined;
    if (!exe) {
      const { readCoverageMeta } = await import('../../coverage/meta.js');
      try {
        exe = readCoverageMeta(file)?.exe;
      } catch (err) {
        console.error(`covd add: ${(err as Error).message}`);
        return 1;
      }
      if (!exe) throw new UsageError(`no ${file}.meta.json to name the executable; pass EXECUTABLE`);
    }
    const reply = await ask(socket, { type: 'coverage', id, exe, file, ...(aflOut ? { aflOut } : {}) });
    if (!reply) return 1;
    console.log(json ? JSON.stringify(reply) : `${id}: ${String(reply.state)}`);
    return 0;
  },
};

export default command;
