/**
 * The coverage thread's host on the main thread, one small object as piscina wraps each Worker:
 * it spawns the thread (src/daemon/coverage-thread.ts) on the bus, posts to it without ever
 * blocking the event loop, restarts it with backoff if it dies (then `onRestart` hands it every
 * live target again), keeps its tick statistics, and stops it at shutdown (terminated if it does
 * not exit within 2 s).
 */
import { Worker } from 'node:worker_threads';
import type { Bus } from '../bus/index.js';
import type { BusMessage } from '../bus/messages.js';
import type { Logger } from '../util/log.js';
import type { ThreadEvent } from './coverage-thread.js';

export interface CoverageThreadStats {
  lastTickMicros: number;
  tracked: number;
  ticks: number;
  restarts: number;
}

export interface CoverageHostOptions {
  bus: Bus;
  log: Logger;
  tickMs?: number;
  maxPcs?: number;
  /** Every event but the tick statistics, which the host keeps. */
  onEvent: (e: ThreadEvent) => void;
  /** A restarted thread knows nothing: give it every live target. */
  onRestart: () => void;
}

/** A full ring is retried this often rather than waited on. */
const RETRY_POST_MS = 50;
const STOP_GRACE_MS = 2000;

export class CoverageThreadHost {
  readonly stats: CoverageThreadStats = { lastTickMicros: 0, tracked: 0, ticks: 0, restarts: 0 };
  private thread!: Worker;
  private done!: Promise<void>;
  private stopping = false;

  constructor(private readonly o: CoverageHostOptions) {
    this.spawn();
  }

  private spawn(): void {
    const { bus, log } = this.o;
    const t = new Worker(new URL('./coverage-thread.js', import.meta.url), { workerData: { bus: bus.buffer, tickMs: this.o.tickMs, maxPcs: this.o.maxPcs } });
    this.thread = t;
    this.done = new Promise<void>((r) => t.once('exit', () => r()));
    t.on('error', (err) => log.error('coverage thread crashed', { err }));
    t.on('message', (e: ThreadEvent) => {
      if (e.kind === 'tick') {
        this.stats.lastTickMicros = e.micros;
        this.stats.tracked = e.tracked;
        this.stats.ticks++;
      }
      this.o.onEvent(e);
    });
    t.once('exit', (code) => {
      if (this.stopping) return;
      // It should never die; if it does, start another (backing off up to 30 s).
      this.stats.restarts++;
      log.error('coverage thread exited; restarting it', { code, restarts: this.stats.restarts });
      setTimeout(() => {
        if (this.stopping) return;
        this.spawn();
        this.o.onRestart();
      }, Math.min(30_000, 500 * 2 ** Math.min(6, this.stats.restarts - 1)));
    });
  }

  /** Posts without blocking: the ring holds ~1 MiB of small messages; when full, retry shortly. */
  post(m: BusMessage): void {
    if (!this.o.bus.tryPost(m) && !this.stopping) setTimeout(() => this.post(m), RETRY_POST_MS).unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    try { this.o.bus.post({ type: 'shutdown' }, 1000); } catch { /* closed */ }
    this.o.bus.notify();
    const timer = setTimeout(() => void this.thread.terminate(), STOP_GRACE_MS);
    await this.done;
    clearTimeout(timer);
  }
}
