import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { ask, parseClientArgs, socketHelp } from '../../daemon/cli-common.js';
import { isCoverageId } from '../../contracts/ids.js';

const command: Command = {
  summary: 'remove a target from a running daemon',
  usage: `usage: covd remove [options] ID

Forgets a target and deletes its stored coverage and history. The coverage file itself is
left alone; if a fuzzer announces it again, it comes back as a new target.

options:
${socketHelp}`,
  async run(argv) {
    const { socket, json, args } = parseClientArgs(argv, { min: 1, max: 1 });
    const id = args[0]!;
    if (!isCoverageId(id)) throw new UsageError(`'${id}' is not a target id (16 hex digits; see \`covd list\`)`);
    const reply = await ask(socket, { type: 'remove', id });
    if (!reply) return 1;
    console.log(json ? JSON.stringify(reply) : `removed ${id}`);
    return 0;
  },
};

export default command;
