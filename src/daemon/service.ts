/**
 * Running the daemon as a service: signals and exit codes.
 *   SIGTERM, SIGINT  stop intake, flush, close sockets; exit 0 (exit 1 if that took over 5 s)
 *   SIGHUP           re-read configuration (environment and config file; flags still win)
 * A second SIGINT/SIGTERM while stopping exits at once (status 130).
 */
import type { Logger } from '../util/log.js';
import type { Daemon } from './daemon.js';
import type { DaemonConfig } from './config.js';

export const SHUTDOWN_DEADLINE_MS = 5000;

/**
 * Catches SIGTERM/SIGINT/SIGHUP while the daemon starts (its readiness line is logged inside
 * startDaemon, and a supervisor may signal right after it). Call before startDaemon; pass the
 * result to runAsService, which takes over.
 */
export function holdSignals(): { signals: string[]; release(): void } {
  const signals: string[] = [];
  const handlers = (['SIGTERM', 'SIGINT', 'SIGHUP'] as const).map((s) => [s, () => signals.push(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return { signals, release: () => { for (const [s, h] of handlers) process.off(s, h); } };
}

/** Installs the handlers; resolves with the exit code once the daemon stopped. */
export function runAsService(daemon: Daemon, log: Logger, reloadConfig: () => DaemonConfig, held?: ReturnType<typeof holdSignals>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn('second signal while stopping; exiting now', { signal });
        process.exit(130);
      }
      stopping = true;
      log.info('signal received; stopping', { signal });
      const timer = setTimeout(() => {
        log.error('shutdown took too long; exiting', { ms: SHUTDOWN_DEADLINE_MS });
        process.exit(1);
      }, SHUTDOWN_DEADLINE_MS);
      timer.unref();
      void daemon.close();
    };
    const hup = () => {
      try {
        daemon.reload(reloadConfig());
      } catch (err) {
        log.error('configuration reload failed; keeping the old one', { err: (err as Error).message });
      }
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    process.on('SIGHUP', hup);
    if (held) {
      held.release();
      for (const s of held.signals) s === 'SIGHUP' ? hup() : stop(s);
    }
    void daemon.closed.then(() => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      process.off('SIGHUP', hup);
      resolve(0);
    });
  });
}
