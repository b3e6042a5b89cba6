/**
 * The coverage thread (a worker_threads Worker), the seed's per-socket update loop done once
 * for everybody. It waits on the bus's condition for at most TICK_MS (500 ms), woken at once
 * when the main thread posts something, then:
 *   - handles messages: `coverage` = start tracking that file, `remove` = stop, `shutdown` = exit;
 *   - for each tracked target reads the header (32 bytes). When runs changed (or on the first
 *     tick, or every FULL_CHECK_TICKS ticks) it reads the seen bits and diffs them against the
 *     last tick (SeenDiff). Idle targets cost one pread each per tick.
 *   - posts one `tick` message with every target's changes to the main thread; each `newPcs`
 *     buffer is transferred, not copied, and the main thread applies it once to the registry
 *     whatever the number of subscribers.
 *
 * Messages to the main thread (ThreadEvent): tick, error (per target), stopped.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { attachBus, type Bus } from '../bus/index.js';
import type { BusMessage } from '../bus/messages.js';
import { CoverageFileError } from '../coverage/types.js';
import { pcTableHash } from '../contracts/ids.js';
import { openLive, type CoverageFile } from './coverage-io.js';
import { SeenDiff } from './tick.js';

export const TICK_MS = 500;
/** Read the bits even when no run happened, every this many ticks, in case a producer sets bits without counting runs. */
const FULL_CHECK_TICKS = 20;
/** A file that is not there (or not complete) yet is retried this many ticks before failing. */
const OPEN_RETRIES = 20;

export interface ThreadUpdate {
  id: string;
  newPcs: Uint32Array;
  nRuns: number;
  uniqueRuns: number;
  lowestStack: number | null;
  time: number;
}

export type ThreadEvent =
  | { kind: 'tick'; time: number; updates: ThreadUpdate[]; micros: number; tracked: number }
  | { kind: 'error'; id: string; code: string; message: string }
  | { kind: 'stopped' };

export interface ThreadData {
  bus: SharedArrayBuffer;
  tickMs?: number;
  /** Largest pcs_len opened (the daemon's memory budget). */
  maxPcs?: number;
}

interface Tracked {
  id: string;
  file: string;
  live?: CoverageFile;
  diff?: SeenDiff;
  lastRuns: number;
  lastUnique: number;
  lastLowest: number | null;
  ticks: number;
  openAttempts: number;
  /** The PC table the target's index was made for; a file holding another is refused. */
  pcsHash?: string;
}

const num = (b: bigint) => Number(b);

export class CoverageTicker {
  readonly tracked = new Map<string, Tracked>();

  constructor(private readonly post: (e: ThreadEvent, transfer?: ArrayBuffer[]) => void, private readonly maxPcs?: number) {}

  handle(m: BusMessage): boolean {
    switch (m.type) {
      case 'coverage': {
        const t = this.tracked.get(m.id);
        if (t && t.file === m.file && t.live && t.pcsHash === m.pcsHash) return true;
        t?.live?.close();
        this.tracked.set(m.id, { id: m.id, file: m.file, lastRuns: -1, lastUnique: -1, lastLowest: null, ticks: 0, openAttempts: 0, pcsHash: m.pcsHash });
        return true;
      }
      case 'remove': {
        this.tracked.get(m.id)?.live?.close();
        this.tracked.delete(m.id);
        return true;
      }
      case 'shutdown':
        return false;
      default:
        return true;
    }
  }

  private fail(t: Tracked, err: unknown): void {
    t.live?.close();
    this.tracked.delete(t.id);
    const code = err instanceof CoverageFileError ? err.kind : 'IO';
    this.post({ kind: 'error', id: t.id, code, message: (err as Error).message });
  }

  /** One pass over every tracked target. */
  tick(): void {
    const start = performance.now();
    const time = Date.now();
    const updates: ThreadUpdate[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const t of this.tracked.values()) {
      try {
        if (!t.live) {
          try {
            t.live = openLive(t.file, this.maxPcs);
          } catch (err) {
            if (err instanceof CoverageFileError && err.retryable && ++t.openAttempts < OPEN_RETRIES) continue;
            throw err;
          }
          // A file replaced by one of other PCs must never have its bits applied to this index.
          if (t.pcsHash !== undefined && pcTableHash(t.live.pcs) !== t.pcsHash) {
            throw new CoverageFileError('PCS_CHANGED', `${t.file}: now holds a different PC table (${t.live.pcsLen} PCs) than the one this target was resolved for`, false);
          }
          t.diff = new SeenDiff(t.live.pcsLen);
        }
        // Deleted, replaced, truncated or grown files: two stats, so only now and then or when runs moved.
        if (t.ticks % FULL_CHECK_TICKS === 0) t.live.check();
        const h = t.live.readHeader();
        const runs = num(h.nRuns), unique = num(h.uniqueRuns);
        const lowest = h.lowestStack === null ? null : num(h.lowestStack);
        t.ticks++;
        const moved = runs !== t.lastRuns || unique !== t.lastUnique;
        let newPcs: Uint32Array | undefined;
        let reset = false;
        if (moved || t.ticks % FULL_CHECK_TICKS === 1) {
          const bits = t.live.readSeen();
          const r = t.diff!.apply(bits);
          if (r.cleared > 0) {
            // Bits vanished: the file was recreated. Start over from what it holds now; the
            // registry keeps what was seen before (coverage only grows), so nothing else to tell.
            t.diff!.reset();
            newPcs = t.diff!.apply(bits).newPcs;
            reset = true;
          } else newPcs = r.newPcs;
        }
        if ((newPcs && newPcs.length > 0) || moved || lowest !== t.lastLowest || reset) {
          const pcs = newPcs ?? new Uint32Array(0);
          updates.push({ id: t.id, newPcs: pcs, nRuns: runs, uniqueRuns: unique, lowestStack: lowest, time });
          if (pcs.byteLength) transfer.push(pcs.buffer as ArrayBuffer);
        }
        t.lastRuns = runs;
        t.lastUnique = unique;
        t.lastLowest = lowest;
      } catch (err) {
        this.fail(t, err);
      }
    }
    if (updates.length) this.post({ kind: 'tick', time, updates, micros: Math.round((performance.now() - start) * 1000), tracked: this.tracked.size }, transfer);
  }

  close(): void {
    for (const t of this.tracked.values()) t.live?.close();
    this.tracked.clear();
  }
}

/** The thread's main loop. */
function run(bus: Bus, tickMs: number, maxPcs?: number): void {
  const ticker = new CoverageTicker((e, transfer) => parentPort!.postMessage(e, transfer ?? []), maxPcs);
  let running = true;
  while (running) {
    const msgs = bus.take(tickMs);
    for (const m of msgs) if (!ticker.handle(m)) running = false;
    if (!running) break;
    if (bus.closed && msgs.length === 0) break;
    ticker.tick();
  }
  ticker.close();
  parentPort!.postMessage({ kind: 'stopped' } satisfies ThreadEvent);
}

if (parentPort && workerData && (workerData as ThreadData).bus instanceof SharedArrayBuffer) {
  const d = workerData as ThreadData;
  run(attachBus(d.bus), d.tickMs ?? TICK_MS, d.maxPcs);
}
