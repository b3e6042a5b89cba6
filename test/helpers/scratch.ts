/** Small helpers shared by test files: polling with a deadline, and temp dirs removed after a suite. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Polls `fn` until it returns something truthy (and returns that), or fails naming `what`. */
export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 60_000, stepMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * Call inside a `describe`: returns a maker of fresh temp dirs, all removed by an `after` hook
 * of that suite.
 */
export function scratchDirs(): () => string {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  return () => {
    const d = mkdtempSync(join(tmpdir(), 'covd-'));
    dirs.push(d);
    return d;
  };
}
