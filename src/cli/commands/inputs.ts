import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import type { InputSummary } from '../../contracts/inputs.js';
import { ask, socketHelp } from '../../daemon/cli-common.js';
import { defaultSocketPath } from '../../util/paths.js';

export function formatInput(x: InputSummary): string {
  const when = new Date(x.foundAt).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  const kept = x.kept ? '' : `  (bytes not kept${x.reason ? `: ${x.reason}` : ''})`;
  return `${x.hash}  ${String(x.size).padStart(8)} B  ${when}  pid ${String(x.pid).padStart(7)} run ${String(x.run).padStart(10)}  first to ${x.firstPcs} PC${x.firstPcs === 1 ? '' : 's'}${kept}`;
}

const command: Command = {
  summary: 'list the inputs that found new coverage in a target',
  usage: `usage: covd inputs ID [--line FILE:LINE] [options]

Prints the inputs that reached PCs no process had reached before, newest first: SHA-1, size,
when, the fuzzer process and its run number, and how many PCs each was first to reach. With
--line, only the inputs that first reached a PC of that source line (FILE: the path the
target's debug info names, or a unique suffix of it, e.g. src/decode.c:42).
\`covd input ID HASH > file\` fetches one; \`./target file\` replays it.

options:
  --line FILE:LINE  only the inputs behind this line
${socketHelp}`,
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: { socket: { type: 'string' }, json: { type: 'boolean' }, line: { type: 'string' } }, allowPositionals: true, strict: true });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const [id, extra] = parsed.positionals;
    if (!id) throw new UsageError('missing target id');
    if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
    let file: string | undefined, line: number | undefined;
    if (parsed.values.line !== undefined) {
      const m = /^(.+):(\d+)$/.exec(parsed.values.line);
      if (!m || Number(m[2]) < 1) throw new UsageError('--line wants FILE:LINE, e.g. src/decode.c:42');
      file = m[1]!;
      line = Number(m[2]);
    }
    const socket = parsed.values.socket ?? defaultSocketPath();
    const reply = await ask(socket, { type: 'inputs', id, ...(file !== undefined ? { file, line } : {}) });
    if (!reply) return 1;
    const inputs = reply.inputs as InputSummary[];
    if (parsed.values.json) {
      console.log(JSON.stringify(file !== undefined ? { pcs: reply.pcs, inputs } : inputs));
      return 0;
    }
    if (file !== undefined) {
      const pcs = reply.pcs as number[];
      if (pcs.length === 0) {
        console.error(`covd: target ${id} has no instrumented PC on ${file}:${line}`);
        return 1;
      }
      console.log(`${file}:${line}: ${pcs.length} PC${pcs.length === 1 ? '' : 's'} (${pcs.join(', ')}), ${inputs.length} input${inputs.length === 1 ? '' : 's'} first reached ${pcs.length === 1 ? 'it' : 'them'}`);
    } else if (inputs.length === 0) {
      console.log('no inputs recorded');
    }
    for (const x of inputs) console.log(formatInput(x));
    return 0;
  },
};

export default command;
