/**
 * Is anyone fuzzing this target? Every CHECK_MS the monitor asks, for each target, whether a
 * process that writes its coverage file is alive (liveness.ts: pid plus start time, so a reused
 * pid is not mistaken for the fuzzer), and whether runs moved within the idle time, and tells
 * the registry (`running`, `idle`, `stopped`; runs/s decays to 0 there).
 *
 * Writers come from two places: the pid of every announcement on the control socket (one per
 * process, so all of a `-jobs=N` run's workers are known), and the metadata beside the file (the
 * last process to start, with its start time). A producer that names no process (a file added
 * by hand, Zig's fuzzer) counts as running while its runs move and stopped when they do not.
 */
import type { TargetRegistry } from './registry.js';
import { readMeta } from '../coverage/meta.js';
import { processStartMs, writerAlive } from './liveness.js';

export const CHECK_MS = 1000;
export const DEFAULT_IDLE_S = 10;
/** Two coverage-thread ticks and a check: runs this recent mean somebody is still writing. */
const RECENT_MS = 2500;
/** Metadata is re-read at most this often per target (a restarted fuzzer writes a new one). */
const META_EVERY_MS = 5000;

interface Writers {
  /** pid -> start time (ms since epoch; null when /proc could not say). */
  pids: Map<number, number | null>;
  /** Some process was ever named as a writer (then its death is what stops the target). */
  named: boolean;
  metaReadAt: number;
}

export class ActivityMonitor {
  private readonly writers = new Map<string, Writers>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    private readonly registry: TargetRegistry,
    private idleMs = DEFAULT_IDLE_S * 1000,
    private readonly now: () => number = Date.now,
  ) {}

  start(everyMs = CHECK_MS): void {
    this.timer ??= setInterval(() => void this.check(), everyMs);
    this.timer.unref();
  }

  setIdleSeconds(s: number): void {
    this.idleMs = s * 1000;
  }

  /** A process announced itself as a writer of this target (its start time read now, once). */
  noteWriter(id: string, pid: number | undefined, startTime?: number): void {
    if (pid === undefined || !Number.isSafeInteger(pid) || pid <= 0) return;
    const w = this.entry(id);
    w.named = true;
    if (!w.pids.has(pid) || (startTime !== undefined && w.pids.get(pid) === null)) w.pids.set(pid, startTime ?? processStartMs(pid));
  }

  forget(id: string): void {
    this.writers.delete(id);
  }

  private entry(id: string): Writers {
    let w = this.writers.get(id);
    if (!w) this.writers.set(id, (w = { pids: new Map(), named: false, metaReadAt: 0 }));
    return w;
  }

  /** One pass over every target; exported for tests. */
  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const now = this.now();
      for (const t of this.registry.targets()) {
        if (t.state === 'retired') { this.writers.delete(t.id); continue; }
        if (this.registry.isRemote(t.id)) continue; // a fleet target no fuzzer here runs: its nodes say how it goes
        const w = this.entry(t.id);
        if (now - w.metaReadAt >= META_EVERY_MS) {
          w.metaReadAt = now;
          const meta = await readMeta(t.coverageFile);
          if (meta) this.noteWriter(t.id, meta.pid, meta.startTime);
        }
        let alive = false;
        for (const [pid, start] of w.pids) {
          if (writerAlive(pid, start ?? undefined)) alive = true;
          else w.pids.delete(pid);
        }
        const last = this.registry.lastRunsAt(t.id);
        const moving = last > 0 && now - last < this.idleMs;
        // Runs that moved after every named writer died come from a process nobody named.
        const justNow = last > 0 && now - last < RECENT_MS;
        const activity = alive ? (moving ? 'running' : 'idle') : (w.named ? justNow : moving) ? 'running' : 'stopped';
        this.registry.setActivity(t.id, activity, now);
      }
      for (const id of this.writers.keys()) if (!this.registry.has(id)) this.writers.delete(id);
    } finally {
      this.checking = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
