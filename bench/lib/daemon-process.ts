/**
 * A real daemon in a child process, for the benchmarks and the soak: `bin/covd serve` (or the
 * soak host, bench/soak-daemon.ts, which is the same daemon plus a fault hook) on a free port,
 * with its own control socket and state directory. Collects its JSON log lines, reads its
 * resident memory from /proc, and talks to it over the control socket like `covd add` does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from '../../src/daemon/client.js';
import type { BusMessage } from '../../src/bus/messages.js';
import type { ControlReply } from '../../src/daemon/control.js';
import { repoRoot } from './results.js';

export interface LogLine {
  /** pino's number (50 error, 60 fatal), or 'raw' / 'stderr' for lines this wrapper made. */
  level: number | string;
  time: number | string;
  msg: string;
  [k: string]: unknown;
}

export interface DaemonProcessOptions {
  /** Control socket (default: <work>/covd.sock). */
  socket?: string;
  /** State directory (default: <work>/state); reuse one to restart a daemon over the same state. */
  stateDir?: string;
  /** The program: 'covd' = bin/covd serve (default), 'soak-host' = dist/bench/soak-daemon.js. */
  program?: 'covd' | 'soak-host';
  /** Must be info or lower: readiness is the 'covd ready' info line. */
  logLevel?: string;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Called with every log line (parsed, or { level: 'raw', msg } for non-JSON output). */
  onLog?: (l: LogLine) => void;
}

export function tempDir(prefix = 'covd-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export class DaemonProcess {
  readonly child: ChildProcess;
  url = '';
  port = 0;
  readonly logs: LogLine[] = [];
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly socket: string, readonly stateDir: string, child: ChildProcess, private readonly work: string, onLog?: (l: LogLine) => void) {
    this.child = child;
    let readyResolve!: () => void, readyReject!: (e: Error) => void;
    this.ready = new Promise((res, rej) => { readyResolve = res; readyReject = rej; });
    const take = (line: string) => {
      let l: LogLine;
      try {
        l = JSON.parse(line) as LogLine;
        if (typeof l !== 'object' || l === null || typeof l.msg !== 'string') throw new Error('not a log line');
      } catch {
        l = { level: 'raw', time: new Date().toISOString(), msg: line };
      }
      this.logs.push(l);
      if (this.logs.length > 50_000) this.logs.splice(0, 10_000);
      if (l.msg === 'covd ready' && typeof l.url === 'string') {
        this.url = l.url.endsWith('/') ? l.url : l.url + '/';
        this.port = Number(new URL(this.url).port);
        readyResolve();
      }
      onLog?.(l);
    };
    createInterface({ input: child.stdout! }).on('line', take);
    createInterface({ input: child.stderr! }).on('line', (s) => take(JSON.stringify({ level: 'stderr', time: new Date().toISOString(), msg: s })));
    this.exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
    // Its own temp directory (config home, and socket/state unless the caller chose them) goes with it.
    void this.exited.then(() => rmSync(this.work, { recursive: true, force: true }));
    void this.exited.then(({ code, signal }) => readyReject(new Error(`daemon exited before it was ready (code ${code}, signal ${signal}): ${this.tail()}`)));
  }

  static async start(opts: DaemonProcessOptions = {}): Promise<DaemonProcess> {
    const work = tempDir('covd-daemon-');
    const socket = opts.socket ?? join(work, 'covd.sock');
    const stateDir = opts.stateDir ?? join(work, 'state');
    const program = opts.program === 'soak-host'
      ? [join(repoRoot, 'dist', 'bench', 'soak-daemon.js')]
      : [join(repoRoot, 'bin', 'covd'), 'serve'];
    const args = [...program, '--port', '0', '--host', '127.0.0.1', '--socket', socket, '--state-dir', stateDir, '--log-level', opts.logLevel ?? 'info', ...(opts.extraArgs ?? [])];
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: work, COVD_LOG_FORMAT: 'json', ...opts.env };
    for (const k of ['COVD_CONFIG', 'COVD_WATCH', 'COVD_PORT', 'COVD_HOST', 'COVD_TOKEN', 'COVD_SOCKET', 'COVD_STATE_DIR']) if (!opts.env?.[k]) delete env[k];
    const child = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const d = new DaemonProcess(socket, stateDir, child, work, opts.onLog);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    try {
      await d.ready;
    } finally {
      clearTimeout(timer);
    }
    return d;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resident set size in bytes (VmRSS), or NaN once the process is gone. */
  rss(): number {
    return procStatusBytes(this.pid, 'VmRSS');
  }

  /** Peak resident set size in bytes (VmHWM). */
  peakRss(): number {
    return procStatusBytes(this.pid, 'VmHWM');
  }

  /** CPU time (user + system) consumed so far, in ms. */
  cpuMs(): number {
    return procCpuMs(this.pid);
  }

  control(msg: BusMessage, timeoutMs = 30_000): Promise<ControlReply> {
    return request(this.socket, msg, timeoutMs);
  }

  /** Log lines at level error or fatal (and anything the process wrote to stderr). */
  errors(): LogLine[] {
    return this.logs.filter((l) => (typeof l.level === 'number' && l.level >= 50) || l.level === 'stderr');
  }

  tail(n = 10): string {
    return this.logs.slice(-n).map((l) => JSON.stringify(l)).join('\n');
  }

  /** SIGTERM and wait (SIGKILL after graceMs). */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  async kill9(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export function procStatusBytes(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

const CLK_TCK = 100;

export function procCpuMs(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

export const MiB = 1024 * 1024;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000, stepMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}
