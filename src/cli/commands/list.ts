import type { Command } from '../command.js';
import type { TargetInfo } from '../../contracts/hub.js';
import { ask, parseClientArgs, socketHelp } from '../../daemon/cli-common.js';

const command: Command = {
  summary: 'list the targets of a running daemon',
  usage: `usage: covd list [options]

Prints one line per target: id, state, activity (running, idle or stopped), covered/total
PCs, runs and runs per second, name (and why it failed).

options:
${socketHelp}`,
  async run(argv) {
    const { socket, json } = parseClientArgs(argv, { min: 0, max: 0 });
    const reply = await ask(socket, { type: 'list' });
    if (!reply) return 1;
    const targets = reply.targets as TargetInfo[];
    if (json) {
      console.log(JSON.stringify(targets));
      return 0;
    }
    if (targets.length === 0) console.log('no targets');
    for (const t of targets) {
      const s = t.stats;
      const pct = s.pcsLen ? ((100 * s.covered) / s.pcsLen).toFixed(1) : '0.0';
      const act = t.state === 'retired' ? '' : t.activity ?? '';
      console.log(`${t.id}  ${t.state.padEnd(7)}  ${act.padEnd(7)}  ${`${s.covered}/${s.pcsLen}`.padStart(13)} (${pct.padStart(5)}%)  ${String(s.nRuns).padStart(12)} runs ${String(s.runsPerSec).padStart(8)}/s  ${t.name}${t.error ? `  -- ${t.error}` : ''}`);
    }
    return 0;
  },
};

export default command;
