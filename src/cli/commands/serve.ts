import type { Command } from '../command.js';
import { loadConfig, parseServeFlags, serveUsage } from '../../daemon/config.js';
import { createLogger } from '../../util/log.js';

const command: Command = {
  summary: 'run the daemon (HTTP/WebSocket UI, control socket, coverage thread)',
  usage: serveUsage,
  async run(argv) {
    const flags = parseServeFlags(argv);
    const config = loadConfig(flags);
    const log = createLogger({ level: config.logLevel }, { name: 'covd' });
    // A long-running service: a stray rejected promise is a bug to log, not a reason to drop every target.
    process.on('unhandledRejection', (err) => log.error('unhandled rejection', { err }));
    const { startDaemon } = await import('../../daemon/daemon.js');
    const { runAsService, holdSignals } = await import('../../daemon/service.js');
    const held = holdSignals();
    let daemon;
    try {
      daemon = await startDaemon(config, { log });
    } catch (err) {
      held.release();
      log.fatal('could not start', { err: (err as Error).message });
      return 1;
    }
    const code = await runAsService(daemon, log, () => loadConfig(flags), held);
    // Everything is closed; if some library still holds the event loop, do not hang a service manager.
    setTimeout(() => process.exit(code), 1000).unref();
    return code;
  },
};

export default command;
