import { fileURLToPath } from 'node:url';
import type { Command } from '../command.js';
import { systemdUnit } from '../../daemon/systemd.js';

const command: Command = {
  summary: 'print a systemd user unit for `covd serve`',
  usage: `usage: covd systemd-unit [-- SERVE_ARGS...]

Prints a systemd user unit that runs \`covd serve\` from this installation, restarts it on
failure, reloads it with SIGHUP and sandboxes it. Arguments after -- are passed to serve.

  covd systemd-unit -- --watch /srv/fuzz/covd > ~/.config/systemd/user/covd.service
  systemctl --user daemon-reload && systemctl --user enable --now covd`,
  async run(argv) {
    const dash = argv.indexOf('--');
    const args = dash >= 0 ? argv.slice(dash + 1) : argv;
    const covd = fileURLToPath(new URL('../../../../bin/covd', import.meta.url));
    process.stdout.write(systemdUnit({ covd, node: process.execPath, args }));
    return 0;
  },
};

export default command;
