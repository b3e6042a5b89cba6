import type { Command } from '../command.js';
import type { FleetStatus } from '../../fleet/fleet.js';
import { ask, parseClientArgs, socketHelp } from '../../daemon/cli-common.js';

const ago = (ms: number | null, now: number) => {
  if (ms === null) return 'never';
  const s = Math.max(0, (now - ms) / 1000);
  return s < 60 ? `${s.toFixed(1)} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
};

const command: Command = {
  summary: 'list the nodes of the daemon\'s fleet (covd serve --nats) with their state and lag',
  usage: `usage: covd fleet [options]

Prints this daemon's link to NATS (state, server, PCs found here and not yet published,
messages refused), then one line per node of the fleet: name, state (self, online or
offline), targets, PCs covered, runs and runs per second, when it was last heard from, and
its lag (when this daemon received the node's latest message minus when the node sent it, by
its clock: propagation delay plus clock skew). Exits 1 when the daemon is in no fleet.

options:
${socketHelp}`,
  async run(argv) {
    const { socket, json } = parseClientArgs(argv, { min: 0, max: 0 });
    const reply = await ask(socket, { type: 'fleet' });
    if (!reply) return 1;
    const f = reply.fleet as FleetStatus;
    if (json) {
      console.log(JSON.stringify(f));
      return 0;
    }
    const now = Date.now();
    console.log(`node ${f.node}, prefix ${f.prefix}: ${f.state}${f.server ? ` to ${f.server}` : ''} since ${ago(f.since, now)}${f.state === 'connected' && !f.loaded ? ', reading the fleet back' : ''}`);
    console.log(`servers: ${f.servers.join(', ')}; unpublished PCs: ${f.pending}; published ${f.published.messages} messages (${f.published.bytes} B), received ${f.received.messages}; refused ${f.rejected.total}${f.rejected.last ? ` (last: ${f.rejected.last.code}: ${f.rejected.last.reason})` : ''}`);
    const w = Math.max(4, ...f.nodes.map((n) => n.name.length));
    console.log(`${'node'.padEnd(w)}  state    targets      covered          runs      runs/s  last seen      lag`);
    for (const n of f.nodes) {
      const state = n.self ? 'self' : n.online ? 'online' : 'offline';
      console.log(`${n.name.padEnd(w)}  ${state.padEnd(7)}  ${String(n.targets).padStart(7)}  ${String(n.covered).padStart(11)}  ${String(n.nRuns).padStart(12)}  ${String(n.runsPerSec).padStart(10)}  ${(n.self ? '-' : ago(n.lastSeenAt, now)).padEnd(13)}  ${n.lagMs === null ? '-' : `${n.lagMs} ms`}`);
    }
    return 0;
  },
};

export default command;
