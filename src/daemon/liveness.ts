/**
 * Is the process that wrote a coverage file still running? The agent's metadata names its pid
 * and start time (ms since the epoch, from /proc/self/stat's starttime and /proc/stat's btime);
 * a pid alone can be reused by an unrelated process, so the start time must match too.
 */
import { readFileSync } from 'node:fs';

/** The agent and we round the same clock ticks; allow for a different rounding and a clock step. */
const START_SLACK_MS = 1000;

let bootMs: number | null | undefined;

function bootTimeMs(): number | null {
  if (bootMs !== undefined) return bootMs;
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    bootMs = m ? Number(m[1]) * 1000 : null;
  } catch {
    bootMs = null;
  }
  return bootMs;
}

/** CLK_TCK: 100 on every Linux architecture Node runs on. */
const TICKS_PER_SEC = 100;

/** /proc/<pid>/stat's fields from field 3 (state) on, or null. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** A process's start time in ms since the epoch, or null when /proc does not say. */
export function processStartMs(pid: number): number | null {
  const boot = bootTimeMs();
  const fields = boot === null ? null : statFields(pid);
  if (!fields) return null;
  const ticks = Number(fields[19]); // field 22
  return Number.isFinite(ticks) ? boot! + Math.floor((ticks * 1000) / TICKS_PER_SEC) : null;
}

/** True when `pid` runs and started at `startTime` (when /proc can tell); false when it is gone or reused. */
export function writerAlive(pid: number, startTime?: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false; // EPERM: alive, someone else's
  }
  // A zombie (killed, not yet reaped by its parent) answers kill(0) but fuzzes nothing.
  const state = statFields(pid)?.[0];
  if (state === 'Z' || state === 'X') return false;
  if (startTime === undefined) return true;
  const started = processStartMs(pid);
  return started === null || Math.abs(started - startTime) <= START_SLACK_MS;
}
