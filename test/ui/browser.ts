/**
 * Helpers for the browser tests and the browser benchmark: a real `covd serve` child process and
 * Debian's chromium through playwright-core.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium, type Browser, type Page } from 'playwright-core';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const covdBin = join(repoRoot, 'bin', 'covd');

export interface Daemon {
  child: ChildProcess;
  url: string;
  port: number;
  /** Everything it logged (JSON lines), for failure messages. */
  log: string[];
  stop(): Promise<void>;
}

export interface DaemonOptions {
  stateDir: string;
  socket: string;
  watch?: string[];
  /** 0 = any free port (the default); pass the old port to restart in place. */
  port?: number;
  timeoutMs?: number;
}

/** Starts `covd serve` and resolves when it logs "covd ready" (with the URL it serves). */
export function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const args = ['serve', '--port', String(opts.port ?? 0), '--state-dir', opts.stateDir, '--socket', opts.socket, '--log-level', 'info'];
  for (const w of opts.watch ?? []) args.push('--watch', w);
  const child = spawn(process.execPath, [covdBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, COVD_LOG_FORMAT: 'json' } });
  const log: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`covd serve not ready within ${opts.timeoutMs ?? 60_000} ms:\n${log.slice(-30).join('\n')}`));
    }, opts.timeoutMs ?? 60_000);
    child.stderr!.setEncoding('utf8').on('data', (s: string) => log.push(s.trimEnd()));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      log.push(line);
      if (log.length > 2000) log.splice(0, 1000);
      let rec: { msg?: string; url?: string };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        return;
      }
      if (rec.msg === 'covd ready' && rec.url) {
        clearTimeout(timer);
        const url = rec.url.endsWith('/') ? rec.url : rec.url + '/';
        resolve({ child, url, port: Number(new URL(url).port), log, stop });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`covd serve exited with ${code} before it was ready:\n${log.slice(-30).join('\n')}`));
    });
  });
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--no-first-run', '--disable-sync'],
  });
}

export const artifactsDir = join(repoRoot, 'test-artifacts', 'ui');

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(artifactsDir, { recursive: true });
  const path = join(artifactsDir, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Polls fn until it returns a truthy value; throws with the last value/error after the deadline. */
export async function until<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 60_000, everyMs = 250): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Parses "1,234" style integers out of a text ("84,753 of 228,375 PCs" -> [84753, 228375]). */
export function ints(text: string): number[] {
  return [...text.matchAll(/\d[\d,]*/g)].map((m) => Number(m[0].replace(/,/g, '')));
}

/**
 * Collects a page's console errors (a Content-Security-Policy refusal is one) and uncaught
 * exceptions, so a test fails on them: call check() after each test. allow(re) accepts errors a
 * test causes on purpose (e.g. failed WebSocket connects while the daemon is down) until check().
 */
export class ConsoleWatch {
  readonly errors: string[] = [];
  private allowed: RegExp[] = [];
  watch(page: Page): this {
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const loc = m.location();
      this.errors.push(`${m.text()}${loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
    });
    page.on('pageerror', (e) => this.errors.push(`uncaught: ${e.message}`));
    return this;
  }
  allow(re: RegExp): void {
    this.allowed.push(re);
  }
  reset(): void {
    this.errors.length = 0;
    this.allowed = [];
  }
  /** Throws when an error that was not allowed was logged since the last check. */
  check(): void {
    const bad = this.errors.filter((e) => !this.allowed.some((re) => re.test(e)));
    this.errors.length = 0;
    this.allowed = [];
    if (bad.length) throw new Error(`console errors in the page:\n${bad.join('\n')}`);
  }
}
