import type { Command } from '../command.js';
import type { DaemonStatus } from '../../daemon/daemon.js';
import { ask, parseClientArgs, socketHelp } from '../../daemon/cli-common.js';

const command: Command = {
  summary: 'show a running daemon\'s status',
  usage: `usage: covd status [options]

Prints the daemon's URL, pid, uptime, targets by state and coverage-thread figures.
Exits 1 when no daemon answers (usable as a health check).

options:
${socketHelp}`,
  async run(argv) {
    const { socket, json } = parseClientArgs(argv, { min: 0, max: 0 });
    const reply = await ask(socket, { type: 'status' });
    if (!reply) return 1;
    const s = reply.status as DaemonStatus;
    if (json) {
      console.log(JSON.stringify(s));
      return 0;
    }
    const up = Math.round((Date.now() - s.startedAt) / 1000);
    const t = s.targets;
    console.log(`covd ${s.version} pid ${s.pid}, up ${up} s, ${s.url ?? '(no web server)'}`);
    console.log(`targets: ${t.total} (${t.ready} ready, ${t.loading} loading, ${t.failed} failed, ${t.retired} retired)`);
    console.log(`coverage thread: ${s.coverageThread.tracked} files, last tick ${s.coverageThread.lastTickMicros} us`);
    console.log(`state: ${s.stateDir}  socket: ${s.socket}${s.watch.length ? `  watching: ${s.watch.join(', ')}` : ''}`);
    return 0;
  },
};

export default command;
