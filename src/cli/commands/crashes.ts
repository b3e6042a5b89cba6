import type { Command } from '../command.js';
import type { CrashGroup } from '../../contracts/inputs.js';
import { ask, parseClientArgs, socketHelp } from '../../daemon/cli-common.js';

const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');

const command: Command = {
  summary: 'list the crashes of a target, grouped by signature',
  usage: `usage: covd crashes ID [options]

Prints each group of crashes (same kind and top three frames in the project's sources): how
many, first and last time, the smallest input (\`covd input ID HASH > file\`, then
\`./target file\` reproduces it), and the first crash's stack.

options:
${socketHelp}`,
  async run(argv) {
    const { socket, json, args } = parseClientArgs(argv, { min: 1, max: 1 });
    const id = args[0]!;
    const reply = await ask(socket, { type: 'crashes', id });
    if (!reply) return 1;
    const groups = reply.crashes as CrashGroup[];
    if (json) {
      console.log(JSON.stringify(groups));
      return 0;
    }
    if (groups.length === 0) console.log('no crashes recorded');
    for (const g of groups) {
      console.log(`${g.count}x ${g.signature}`);
      console.log(`   ${g.detail}; first ${iso(g.firstAt)}, last ${iso(g.lastAt)}`);
      if (g.input) console.log(`   input ${g.input.hash} (${g.input.size} B${g.input.kept ? '' : ', bytes not kept'})${g.artifact ? `  artifact ${g.artifact}` : ''}`);
      else console.log('   no input recorded');
      let n = 0;
      for (const f of g.frames) {
        if (!f.project && n === 0 && !f.function) continue; // runtime frames above the first named one
        const where = f.file ? `${f.file}:${f.line ?? 0}${f.column ? `:${f.column}` : ''}` : '??';
        console.log(`   #${n++} ${f.pc} ${f.function ?? '??'} ${where}${f.project ? '' : ' (not project)'}`);
        if (n >= 12) break;
      }
      console.log('');
    }
    return 0;
  },
};

export default command;
