/** Running `covd serve` as a real child process for the daemon's end-to-end tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from '../../src/daemon/client.js';
import type { TargetInfo } from '../../src/contracts/hub.js';

export const covdBin = fileURLToPath(new URL('../../../bin/covd', import.meta.url));

export async function pollUntil<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 90_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  socket: string;
  /** Parsed JSON log lines so far. */
  lines: Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLine(pred: (l: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  list(): Promise<TargetInfo[]>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startServe(opts: { socket: string; stateDir: string; watch?: string[]; extra?: string[]; env?: NodeJS.ProcessEnv }): Promise<ServeProcess> {
  const args = [covdBin, 'serve', '--port', '0', '--socket', opts.socket, '--state-dir', opts.stateDir, '--log-level', 'debug', ...(opts.watch ?? []).flatMap((w) => ['--watch', w]), ...(opts.extra ?? [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, COVD_LOG_FORMAT: '', XDG_CONFIG_HOME: opts.stateDir, ...opts.env } });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try { lines.push(JSON.parse(line)); } catch { lines.push({ msg: line, raw: true }); }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let done = false;
  void exited.then(() => { done = true; });
  const waitForLine = (pred: (l: Record<string, unknown>) => boolean, what: string, timeoutMs = 90_000) =>
    pollUntil(what, () => {
      const l = lines.find(pred);
      if (!l && done) throw new Error(`daemon exited; stderr: ${stderr.slice(-2000)}; log: ${JSON.stringify(lines.slice(-5))}`);
      return l;
    }, timeoutMs, 50);
  const ready = await waitForLine((l) => l.msg === 'covd ready', 'the readiness line');
  return {
    child, url: String(ready.url), socket: opts.socket, lines, exited, waitForLine,
    async list() {
      const r = await request(opts.socket, { type: 'list' });
      if (!r.ok) throw new Error(r.error);
      return r.targets as TargetInfo[];
    },
    async stop() {
      if (!done) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Number of set bits in a seen bitmap. */
export function countBits(b: Uint8Array): number {
  let n = 0;
  for (const x of b) { let v = x; while (v) { v &= v - 1; n++; } }
  return n;
}
