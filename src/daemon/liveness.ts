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

/** A process's start time in ms since the epoch, or null when /proc does not say. */
export function processStartMs(pid: number): number | null {
  const boot = bootTimeMs();
  if (boot === null) return null;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[19]); // field 22
  return Number.isFinite(ticks) ? boot + Math.floor((ticks * 1000) / TICKS_PER_SEC) : null;
}

/** True when `pid` runs and started at `startTime` (when /proc can tell); false when it is gone or reused. */
export function writerAlive(pid: number, startTime?: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false; // EPERM: alive, someone else's
  }
  if (startTime === undefined) return true;
  const started = processStartMs(pid);
  return started === null || Math.abs(started - startTime) <= START_SLACK_MS;
}
