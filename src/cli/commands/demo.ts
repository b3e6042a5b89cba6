import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { createLogger, isLevel } from '../../util/log.js';
import type { DaemonConfig } from '../../daemon/config.js';
import { DEFAULT_PORT } from '../../daemon/config.js';
import type { TargetInfo } from '../../contracts/hub.js';

const usage = `usage: covd demo [options]

Builds the bundled example target (examples/tinyimg) with the covd agent, fuzzes it with
libFuzzer in the background, serves it live on loopback and prints the URL and a one-line
status every few seconds. Ctrl-C stops everything it started. This is what \`npm start\` runs.

options:
  -p, --port N        HTTP port (default ${DEFAULT_PORT}; if taken, any free port)
  --host ADDR         listen address (default 127.0.0.1)
  --interval S        seconds between status lines (default 3)
  --seconds S         stop by itself after S seconds (default: run until Ctrl-C)
  --log-level LEVEL   daemon log level (default warn, to keep the terminal readable)
  --example NAME      tinyimg (C, the default) or iniparse (C++: templates, lambdas, the
                      standard library); \`npm start -- --example iniparse\``;

function fmt(n: number): string {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + 'G';
  if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (n >= 1e4) return (n / 1e3).toFixed(0) + 'k';
  return String(n);
}

export function statusLine(targets: TargetInfo[]): string {
  const live = targets.filter((t) => t.state !== 'retired');
  if (live.length === 0) return 'waiting for the fuzzer to announce its coverage file...';
  return live.map((t) => {
    const s = t.stats;
    const pct = s.pcsLen ? ((100 * s.covered) / s.pcsLen).toFixed(1) : '0.0';
    return `${t.name}: ${t.state}, runs ${fmt(s.nRuns)} (${fmt(s.runsPerSec)}/s), unique ${s.uniqueRuns}, coverage ${s.covered}/${s.pcsLen} PCs (${pct}%)${t.error ? ` -- ${t.error}` : ''}`;
  }).join(' | ');
}

const command: Command = {
  summary: 'build the example target, fuzz it, and serve it live (what `npm start` runs)',
  usage,
  async run(argv) {
    let values;
    try {
      values = parseArgs({
        args: argv, strict: true, allowPositionals: false,
        options: { port: { type: 'string', short: 'p' }, host: { type: 'string' }, interval: { type: 'string' }, seconds: { type: 'string' }, 'log-level': { type: 'string' }, example: { type: 'string' } },
      }).values;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got '${values.port}'`);
    const interval = Number(values.interval ?? 3);
    if (!(interval > 0)) throw new UsageError('--interval must be a positive number of seconds');
    const seconds = values.seconds === undefined ? undefined : Number(values.seconds);
    if (seconds !== undefined && !(seconds > 0)) throw new UsageError('--seconds must be positive');
    const example = values.example ?? 'tinyimg';
    if (example !== 'tinyimg' && example !== 'iniparse') throw new UsageError(`--example must be tinyimg or iniparse, got '${example}'`);
    const level = values['log-level'] ?? 'warn';
    if (!isLevel(level)) throw new UsageError(`unknown log level '${level}'`);
    const log = createLogger({ level }, { name: 'covd' });

    const { buildExampleTarget, buildCppExampleTarget, runFuzzer } = await import('../../build/targets.js');
    const { startDaemon } = await import('../../daemon/daemon.js');

    console.log('covd demo: building the example target with the covd agent (cached after the first time)...');
    let exe: string;
    try {
      exe = await (example === 'iniparse' ? buildCppExampleTarget() : buildExampleTarget());
    } catch (err) {
      console.error(`covd demo: building the example failed (are clang-14 and libclang-rt-14-dev installed? see scripts/install-deps.sh):\n${(err as Error).message}`);
      return 1;
    }

    const work = fs.mkdtempSync(join(os.tmpdir(), 'covd-demo-'));
    const cfg: DaemonConfig = {
      host: values.host ?? '127.0.0.1', port, socket: join(work, 'covd.sock'), stateDir: join(work, 'state'),
      watch: [join(work, 'cov')], logLevel: level, allowedHosts: [], retireDays: 30, keepRetired: 5,
    };
    let daemon;
    try {
      daemon = await startDaemon(cfg, { log, historyIntervalMs: 2000 });
    } catch (err) {
      if (port !== 0 && /EADDRINUSE|listen|port/i.test((err as Error).message)) {
        console.log(`covd demo: port ${port} is taken; using a free port instead`);
        daemon = await startDaemon({ ...cfg, port: 0 }, { log, historyIntervalMs: 2000 });
      } else {
        fs.rmSync(work, { recursive: true, force: true });
        console.error(`covd demo: could not start the daemon: ${(err as Error).message}`);
        return 1;
      }
    }

    let stopping = false;
    let fuzzer: ReturnType<typeof runFuzzer> | undefined;
    // Whatever ends this process (even an uncaught error, or a closed stdout pipe), the fuzzer
    // it started must not outlive it: libFuzzer without -max_total_time runs forever.
    process.on('exit', () => { if (fuzzer && fuzzer.child.exitCode === null) fuzzer.child.kill('SIGKILL'); });
    process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') void stopRef.stop?.('output closed'); });
    const stopRef: { stop?: (why: string) => Promise<void> } = {};
    const startFuzzer = () => {
      fuzzer = runFuzzer(exe, { covdDir: join(work, 'cov'), socket: cfg.socket, env: { COVD_AGENT_QUIET: '1' } });
      console.log(`covd demo: fuzzing ${exe} (pid ${fuzzer.child.pid})`);
      const mine = fuzzer;
      void mine.done.then(({ code, stderr }) => {
        if (stopping) return;
        // libFuzzer stops at the first crash; show why and fuzz on.
        const why = stderr.split('\n').filter((l) => /ERROR|SUMMARY|crash-/.test(l)).slice(0, 3).join('\n  ');
        console.log(`covd demo: the fuzzer exited (code ${code})${why ? `:\n  ${why}` : ''}; restarting it`);
        setTimeout(() => { if (!stopping) startFuzzer(); }, 1000);
      });
    };
    startFuzzer();

    console.log(`\n  covd is serving the live coverage at ${daemon.web?.url ?? '(no web server)'}\n  (Ctrl-C stops the fuzzer and the daemon)\n`);
    const ticker = setInterval(() => console.log(`[${new Date().toTimeString().slice(0, 8)}] ${statusLine(daemon.registry.targets())}`), interval * 1000);

    return new Promise<number>((resolve) => {
      const stop = async (why: string) => {
        if (stopping) return;
        stopping = true;
        clearInterval(ticker);
        console.log(`\ncovd demo: ${why}; stopping the fuzzer and the daemon...`);
        const f = fuzzer;
        if (f && f.child.exitCode === null && f.child.signalCode === null) {
          f.child.kill('SIGTERM');
          const hard = setTimeout(() => f.child.kill('SIGKILL'), 2000);
          await f.done;
          clearTimeout(hard);
        }
        await daemon.close();
        fs.rmSync(work, { recursive: true, force: true });
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        console.log('covd demo: stopped; nothing left running');
        setTimeout(() => process.exit(0), 1000).unref();
        resolve(0);
      };
      stopRef.stop = stop;
      const onInt = () => void stop('interrupted');
      const onTerm = () => void stop('terminated');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      if (seconds !== undefined) setTimeout(() => void stop(`${seconds} s are up`), seconds * 1000).unref();
    });
  },
};

export default command;
