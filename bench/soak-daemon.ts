/**
 * The soak's daemon: exactly `covd serve` (same flags, same startDaemon, same signal handling),
 * plus one fault hook a running process offers no other way to reach from outside:
 *
 *   SIGUSR2   terminate one thread of the symbolizer pool (piscina replaces it)
 *
 * Used by bench/soak.ts; not installed, not part of the CLI.
 *
 *   node dist/bench/soak-daemon.js [covd serve flags]
 */
import type { Worker } from 'node:worker_threads';
import { loadConfig, parseServeFlags } from '../src/daemon/config.js';
import { startDaemon } from '../src/daemon/daemon.js';
import { runAsService } from '../src/daemon/service.js';
import { createSymbolizerPool } from '../src/workers/pool.js';
import { createLogger } from '../src/util/log.js';

const flags = parseServeFlags(process.argv.slice(2));
const config = loadConfig(flags);
const log = createLogger({ level: config.logLevel }, { name: 'covd' });
const pool = createSymbolizerPool();

// The pool keeps its piscina instance private; its worker list is piscina's public `threads`.
const poolThreads = (): Worker[] => ((pool as unknown as { piscina?: { threads?: Worker[] } }).piscina?.threads ?? []);

process.on('SIGUSR2', () => {
  const threads = poolThreads();
  const victim = threads[Math.floor(Math.random() * threads.length)];
  if (!victim) {
    log.warn('fault hook: no symbolizer thread to terminate');
    return;
  }
  log.info('fault hook: terminating a symbolizer thread', { threadId: victim.threadId, threads: threads.length });
  void victim.terminate();
});

let daemon;
try {
  daemon = await startDaemon(config, { log, symbolizer: pool });
} catch (err) {
  log.fatal('could not start', { err: (err as Error).message });
  process.exit(1);
}
const code = await runAsService(daemon, log, () => loadConfig(flags));
await pool.destroy();
process.exit(code);
