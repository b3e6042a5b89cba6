import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { ask, socketHelp } from '../../daemon/cli-common.js';
import { defaultSocketPath } from '../../util/paths.js';

const command: Command = {
  summary: 'write the bytes of one input of a target (to replay it: ./target FILE)',
  usage: `usage: covd input ID HASH [-o FILE] [options] > FILE

Writes the input named HASH (its SHA-1, as \`covd inputs\` and \`covd crashes\` list it) to
standard output, or to FILE with -o. Replay it with the same executable: \`./target FILE\`.
Refuses to write binary to a terminal.

options:
  -o, --output FILE  write here instead of standard output
${socketHelp.split('\n')[0]}`,
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: { socket: { type: 'string' }, output: { type: 'string', short: 'o' } }, allowPositionals: true, strict: true });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const [id, hash, extra] = parsed.positionals;
    if (!id || !hash) throw new UsageError('usage: covd input ID HASH');
    if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
    if (!/^[0-9a-f]{40}$/.test(hash)) throw new UsageError('HASH is an input\'s SHA-1: 40 lower-case hex digits');
    if (!parsed.values.output && process.stdout.isTTY) {
      console.error(`covd: not writing binary input to a terminal; redirect it (covd input ${id} ${hash} > file) or use -o FILE`);
      return 2;
    }
    const reply = await ask(parsed.values.socket ?? defaultSocketPath(), { type: 'input', id, hash });
    if (!reply) return 1;
    const bytes = Buffer.from(reply.bytes as Uint8Array);
    if (parsed.values.output) writeFileSync(parsed.values.output, bytes);
    else await new Promise<void>((resolve, reject) => process.stdout.write(bytes, (err) => (err ? reject(err) : resolve())));
    return 0;
  },
};

export default command;
