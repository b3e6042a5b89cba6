/**
 * Large messages (an index or snapshot over BIG_MESSAGE) streamed to sockets in fragments,
 * through a bounded queue.
 *
 * uWebSockets.js copies whatever a socket cannot write at once into that socket's buffer, and a
 * buffer keeps its size once drained: a 16 MB index sent whole to 200 tabs stays resident as
 * 200 x 16 MB. So such a message is streamed as WebSocket fragments of FRAGMENT bytes, the next
 * one written only once the socket's buffer is empty, to at most BIG_SLOTS sockets at a time (the
 * others wait in FIFO order). Between the fragments of a message nothing else may reach the
 * socket: its owner (./live.ts) takes it off every topic when the stream starts, holds its other
 * messages in `out` meanwhile, and rejoins its topics when it is done.
 */
import type { WebSocket } from 'uWebSockets.js';
import type { WebStats } from './types.js';

/** Messages larger than this are streamed in fragments through the bounded queue of big sends. */
export const BIG_MESSAGE = 256 * 1024;
const FRAGMENT = 64 * 1024;
/** Sockets streaming a big message at once; together they buffer at most about BIG_SLOTS x FRAGMENT. */
const BIG_SLOTS = 4;
/** A socket that takes no fragment for this long is closed (it would hold a slot forever). */
const BIG_STALL_MS = 30_000;

/** One socket's stream. */
export interface BigJob<R> {
  parts: Uint8Array[];
  /** The message being written and the offset of its next fragment. */
  part: number;
  off: number;
  /** When a fragment was last written. */
  last: number;
  /** What the owner needs once the stream is done (handed back to `finish`). */
  rejoin: R;
}

/** The part of a socket's user data the sender reads and writes. */
export interface Streaming<R> {
  closed: boolean;
  /** The large messages being streamed to this socket; null when none. */
  big: BigJob<R> | null;
  /** Messages for this socket held back while a large one is streamed (null when none is). */
  out: Uint8Array[] | null;
}

export interface BigSendHooks<U extends Streaming<R>, R> {
  /** A slot is free for `ws`: the messages to stream, taken now, and what `finish` will need. */
  start(ws: WebSocket<U>): { parts: Uint8Array[]; rejoin: R };
  /** The stream is done and `big`/`out` are cleared: send `out`, rejoin, enqueue again if more is due. */
  finish(ws: WebSocket<U>, rejoin: R, out: Uint8Array[]): void;
  /** Took no fragment for BIG_STALL_MS: close it. */
  stalled(ws: WebSocket<U>): void;
  /** Runs work started from a timer, logging a failure instead of throwing it. */
  safely(what: string, fn: () => void): void;
}

export class BigSender<U extends Streaming<R>, R> {
  /** Sockets waiting for a slot (FIFO) and those streaming now. */
  private readonly waiting = new Set<WebSocket<U>>();
  private readonly active = new Set<WebSocket<U>>();
  private pumpScheduled = false;
  private readonly counts: NonNullable<WebStats['bigSends']>;

  constructor(private readonly stats: WebStats, private readonly hooks: BigSendHooks<U, R>) {
    this.counts = stats.bigSends = { waiting: 0, active: 0, peakActive: 0, peakBuffered: 0, sent: 0 };
  }

  /** Queues `ws` for a slot, unless it is streaming already (its `finish` enqueues it again). */
  enqueue(ws: WebSocket<U>) {
    if (!ws.getUserData().big && !this.waiting.has(ws)) this.waiting.add(ws);
    this.count();
    this.schedulePump();
  }

  closed(ws: WebSocket<U>) {
    this.waiting.delete(ws);
    if (this.active.delete(ws)) this.schedulePump();
    this.count();
  }

  /** Resumes the streams (the drain event may not come) and closes those stuck on a client that stopped reading. */
  sweep() {
    const now = Date.now();
    for (const ws of [...this.active]) {
      const job = ws.getUserData().big;
      if (job && now - job.last > BIG_STALL_MS) this.hooks.stalled(ws);
      else this.step(ws);
    }
  }

  /** Writes fragments while the socket's buffer is under one fragment; the drain event or the sweep resumes it. */
  step(ws: WebSocket<U>) {
    const c = ws.getUserData();
    const job = c.big;
    if (!job || c.closed) return;
    let burst = 0;
    while (job.part < job.parts.length) {
      // Below one fragment: writing the next also flushes what is buffered (uWS does not always
      // poll an almost drained socket for writability again).
      if (ws.getBufferedAmount() >= FRAGMENT) return;
      if (burst++ >= 64) return void setImmediate(() => this.hooks.safely('big send', () => this.step(ws)));
      const msg = job.parts[job.part]!;
      const end = Math.min(msg.length, job.off + FRAGMENT);
      const chunk = msg.subarray(job.off, end);
      if (job.off === 0 && end === msg.length) ws.send(chunk, true, false);
      else if (job.off === 0) ws.sendFirstFragment(chunk, true, false);
      else if (end === msg.length) ws.sendLastFragment(chunk, false);
      else ws.sendFragment(chunk, false);
      this.stats.bytesSent += chunk.length;
      job.off = end;
      job.last = Date.now();
      if (end === msg.length) {
        job.part++;
        job.off = 0;
        this.stats.messagesSent++;
      }
      let buffered = 0;
      for (const w of this.active) buffered += w.getBufferedAmount();
      if (buffered > this.counts.peakBuffered) this.counts.peakBuffered = buffered;
    }
    this.finish(ws);
  }

  private schedulePump() {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.hooks.safely('pump', () => this.pump());
    });
  }

  private pump() {
    for (const ws of this.waiting) {
      if (this.active.size >= BIG_SLOTS) break;
      this.waiting.delete(ws);
      if (!ws.getUserData().closed) this.start(ws);
    }
    this.count();
  }

  private start(ws: WebSocket<U>) {
    const c = ws.getUserData();
    const { parts, rejoin } = this.hooks.start(ws);
    c.big = { parts, part: 0, off: 0, last: Date.now(), rejoin };
    c.out = [];
    this.active.add(ws);
    this.count();
    // A turn of the loop first, so messages published to its topics before it left them are out.
    setImmediate(() => this.hooks.safely('big send', () => this.step(ws)));
  }

  private finish(ws: WebSocket<U>) {
    const c = ws.getUserData();
    const job = c.big!;
    const out = c.out ?? [];
    c.big = null;
    c.out = null;
    this.active.delete(ws);
    this.counts.sent++;
    this.hooks.finish(ws, job.rejoin, out);
    this.count();
    this.schedulePump();
  }

  private count() {
    const b = this.counts;
    b.waiting = this.waiting.size;
    b.active = this.active.size;
    if (b.active > b.peakActive) b.peakActive = b.active;
  }
}
