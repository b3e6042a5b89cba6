/**
 * The live side of the web server: WebSocket sessions, per-target topics, snapshots, deltas,
 * resume, and backpressure. One publish per delta reaches every tab of a target from C++
 * (uWebSockets.js topics). Finding tabs that fall behind is kept off that path: a sweep every
 * `CHECK_MS` (and uWS's drain events) walks the subscribers' send buffers, so the work per delta is
 * two msgpack encodings and two publishes whatever the number of tabs.
 *
 * Consistency: the hub applies a delta to `seen` and bumps `seq` before emitting it, and all of this
 * runs on the main thread, so a snapshot built synchronously has exactly the state of its `seq`
 * and every later publish on the topic carries seq + 1, seq + 2, ...
 */
import { randomBytes } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';
import type { CoverageDelta, Hub, TargetInfo } from '../contracts/hub.js';
import type { SourceIndex } from '../contracts/source-index.js';
import type { Logger } from '../util/log.js';
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import { packrOptions } from '../contracts/msgpack.js';
import { PROTOCOL_VERSION, type ClientMessage, type ServerMessage, type WireSourceIndex } from './protocol.js';
import type { WebLimits } from './limits.js';
import type { WebStats } from './types.js';
import { infoOf } from './summary.js';
import { RateLimiter } from './security.js';
import { CoverageFile } from '../coverage/reader.js';
import { pcTableHash } from '../contracts/ids.js';

export interface Sub {
  /** Receives word-encoded deltas (topic w/<id>) rather than index lists (topic d/<id>). */
  words: boolean;
  sparse: boolean;
  /** Unsubscribed because it fell behind; gets a snapshot once its buffer drains. */
  stale: boolean;
  /** Waiting for a big send (index and/or snapshot too large to send whole); off its topic meanwhile. */
  queued: boolean;
  /** Buffered bytes tolerated before it counts as behind: the bound plus the last snapshot's size. */
  allowance: number;
  /** The index this client holds (sent, published, or named by `have`); null: none yet. */
  index: SourceIndex | null;
}

export interface Conn {
  addr: string;
  subs: Map<string, Sub>;
  targets: boolean;
  closed: boolean;
  /** Client message rate limiter, keyed by nothing (one bucket per connection). */
  rate: RateLimiter;
  /** The large messages being streamed to this socket, in fragments; null when none. */
  big: BigJob | null;
  /** Messages for this socket held back while a large one is streamed (null when none is). */
  out: Uint8Array[] | null;
}

interface BigJob {
  parts: Uint8Array[];
  /** The message being written and the offset of its next fragment. */
  part: number;
  off: number;
  /** Per target: the seq of the snapshot in `parts`, to replay from once done. */
  seqs: Map<string, number>;
  /** Also subscribed to the target list (left for the duration). */
  targets: boolean;
  /** When a fragment was last written. */
  last: number;
}

type WS = WebSocket<Conn>;

interface Ring {
  seq: number;
  /** Encoded delta for index-list clients and for word-capable clients. */
  pcs: Buffer;
  words: Buffer;
}

interface TargetLive {
  subscribers: Set<WS>;
  ring: Ring[];
  ringBytes: number;
  /** The index last published to subscribers (to notice when symbolization finishes). */
  index: SourceIndex | null;
  indexBytes?: { index: SourceIndex; bytes: Buffer };
  /** Encoded snapshots shared by tabs subscribing at the same seq: [dense, sparse]. */
  snapshots: ({ seq: number; at: number; bytes: Buffer } | undefined)[];
}

const topicOf = (id: string, words: boolean) => (words ? 'w/' : 'd/') + id;
/** How often send buffers are checked. Until then a tab behind just queues (bounded by maxBackpressure). */
const CHECK_MS = 200;
/** Most bytes of encoded deltas kept per target for resuming clients. */
const RING_BYTES = 8 * 1024 * 1024;
const TARGETS_TOPIC = 'targets';
/** Messages larger than this are streamed in fragments through the bounded queue of big sends. */
const BIG_MESSAGE = 256 * 1024;
const FRAGMENT = 64 * 1024;
/** Sockets streaming a big message at once; together they buffer at most about BIG_SLOTS x FRAGMENT. */
const BIG_SLOTS = 4;
/** A socket that takes no fragment for this long is closed (it would hold a slot forever). */
const BIG_STALL_MS = 30_000;

export class Live {
  private readonly packr = new Packr(packrOptions);
  private readonly unpackr = new Unpackr(packrOptions);
  private readonly targets = new Map<string, TargetLive>();
  private readonly stale = new Set<WS>();
  private readonly conns = new Set<WS>();
  private readonly timer: NodeJS.Timeout;
  /** Sockets waiting for a big send (FIFO) and those streaming one now. */
  private readonly bigWaiting = new Set<WS>();
  private readonly bigActive = new Set<WS>();
  private pumpScheduled = false;
  /** This run's epoch: seq numbers of a restarted server are not comparable with this one's. */
  readonly epoch = randomBytes(8).toString('hex');
  private readonly listeners: { [K in 'target' | 'removed' | 'delta' | 'sourceChanged']?: (...a: never[]) => void } = {};

  constructor(
    private readonly app: TemplatedApp,
    private readonly hub: Hub,
    private readonly limits: WebLimits,
    private readonly stats: WebStats,
    private readonly log: Logger,
  ) {
    this.stats.bigSends = { waiting: 0, active: 0, peakActive: 0, peakBuffered: 0, sent: 0 };
    // Failures here are logged, never thrown into the registry that emitted the event.
    const guard = <A extends unknown[]>(what: string, fn: (...a: A) => void) => (...a: A) => {
      try {
        fn(...a);
      } catch (err) {
        this.log.error(`publishing ${what} failed`, { err });
      }
    };
    const onTarget = guard('target', (t: TargetInfo) => this.onTarget(t));
    const onRemoved = guard('removed', (id: string) => this.onRemoved(id));
    const onDelta = guard('delta', (d: CoverageDelta) => this.onDelta(d));
    const onSource = guard('source-changed', (id: string, file: number) => this.publishTarget(id, { t: 'source-changed', id, file }));
    hub.on('target', onTarget).on('removed', onRemoved).on('delta', onDelta).on('sourceChanged', onSource);
    Object.assign(this.listeners, { target: onTarget, removed: onRemoved, delta: onDelta, sourceChanged: onSource });
    this.timer = setInterval(() => this.safely('sweep', () => this.sweep()), CHECK_MS);
    this.timer.unref();
  }

  /** Work started from a timer runs outside uWS's handlers and our guards: a bug there is logged, never fatal. */
  private safely(what: string, fn: () => void) {
    try {
      fn();
    } catch (err) {
      this.log.error(`${what} failed`, { err });
    }
  }

  shutdown() {
    clearInterval(this.timer);
    this.hub.off('target', this.listeners.target as never);
    this.hub.off('removed', this.listeners.removed as never);
    this.hub.off('delta', this.listeners.delta as never);
    this.hub.off('sourceChanged', this.listeners.sourceChanged as never);
    for (const ws of [...this.conns]) {
      try {
        ws.end(1001, 'server shutting down');
      } catch {
        /* already closed */
      }
    }
  }

  newConn(addr: string): Conn {
    return { addr, subs: new Map(), targets: false, closed: false, big: null, out: null, rate: new RateLimiter(this.limits.clientMessageRate, this.limits.clientMessageRate * 2) };
  }

  // ---- socket events ----

  open(ws: WS) {
    this.conns.add(ws);
    this.stats.clients = this.conns.size;
    this.send(ws, { t: 'hello', version: PROTOCOL_VERSION, server: 'covd' });
  }

  closed(ws: WS) {
    const c = ws.getUserData();
    c.closed = true;
    this.conns.delete(ws);
    this.stale.delete(ws);
    this.bigWaiting.delete(ws);
    if (this.bigActive.delete(ws)) this.schedulePump();
    this.bigStats();
    for (const id of c.subs.keys()) this.targets.get(id)?.subscribers.delete(ws);
    this.stats.clients = this.conns.size;
  }

  drain(ws: WS) {
    if (ws.getUserData().big) this.stepBig(ws);
    else if (this.stale.has(ws)) this.resyncIfDrained(ws);
  }

  message(ws: WS, data: ArrayBuffer, isBinary: boolean) {
    const c = ws.getUserData();
    if (!c.rate.take('')) return this.drop(ws, 1008, 'rate', 'too many messages');
    if (!isBinary) return this.drop(ws, 1007, 'bad-message', 'text frames are not part of the protocol; send binary msgpack');
    let msg: unknown;
    try {
      msg = this.unpackr.unpack(new Uint8Array(data));
    } catch {
      msg = undefined;
    }
    const m = validate(msg);
    if (!m) return this.drop(ws, 1007, 'bad-message', 'not a covd protocol message (msgpack map with a known "t")');
    switch (m.t) {
      case 'ping':
        return void this.send(ws, { t: 'pong' });
      case 'sub-targets':
        if (!c.targets) {
          c.targets = true;
          // While a big message streams, the list is sent (and the topic joined) once it is done.
          if (c.big) c.big.targets = true;
          else ws.subscribe(TARGETS_TOPIC);
        }
        if (c.big) return;
        return void this.send(ws, { t: 'targets', targets: this.hub.targets().map(infoOf) });
      case 'sub':
        return this.subscribe(ws, m);
      case 'unsub': {
        const sub = c.subs.get(m.id);
        if (sub) {
          if (!sub.stale && !sub.queued && !c.big) ws.unsubscribe(topicOf(m.id, sub.words));
          c.subs.delete(m.id);
          this.targets.get(m.id)?.subscribers.delete(ws);
        }
        return;
      }
      case 'resync': {
        const sub = c.subs.get(m.id);
        if (!sub) return void this.send(ws, { t: 'error', code: 'not-subscribed', id: m.id, error: `not subscribed to target ${m.id}` });
        if (sub.stale || sub.queued || c.big) return; // a snapshot is already due
        // Behind already: coalesce into the snapshot sent when the buffer drains.
        if (ws.getBufferedAmount() > this.limits.resyncLowWater) return this.markStale(ws, m.id, sub);
        this.stats.resyncs++;
        return void this.sendFresh(ws, m.id, sub);
      }
    }
  }

  // ---- subscriptions ----

  private subscribe(ws: WS, m: Extract<ClientMessage, { t: 'sub' }>) {
    const c = ws.getUserData();
    const t = this.hub.target(m.id);
    if (!t) return void this.send(ws, { t: 'error', code: 'no-such-target', id: m.id, error: `no target ${m.id}` });
    const old = c.subs.get(m.id);
    if (old && !old.stale && !old.queued && !c.big) ws.unsubscribe(topicOf(m.id, old.words));
    const has = t.index && m.have != null && m.have === t.index.buildId ? t.index : null;
    const sub: Sub = { words: m.words === true, sparse: m.sparse === true, stale: false, queued: false, allowance: this.limits.resyncAfterBytes, index: has };
    c.subs.set(m.id, sub);
    const live = this.live(m.id);
    live.subscribers.add(ws);
    if (live.index === null && t.index) live.index = t.index;
    // A large message is being streamed to this socket: nothing else may go in between.
    if (c.big) return this.queueBig(ws, m.id, sub);
    ws.subscribe(topicOf(m.id, sub.words));
    if (ws.getBufferedAmount() > this.limits.resyncAfterBytes) return this.markStale(ws, m.id, sub);
    ws.cork(() => {
      // Resume: replay the deltas the client missed when we still have all of them. Only within
      // one epoch: a restarted server can reuse seq numbers for other deltas.
      const index = t.index && sub.index !== t.index ? this.indexBytes(m.id, t.index) : null;
      if (m.since !== undefined && m.epoch === this.epoch && m.since <= t.seq && (!index || index.length <= BIG_MESSAGE) && this.canReplay(live, m.since, t.seq)) {
        if (index) {
          this.sendRaw(ws, index);
          sub.index = t.index;
        }
        this.replay(ws, live, sub, m.since, t.seq);
        this.send(ws, { t: 'target', target: infoOf(t) });
        sub.allowance = this.limits.resyncAfterBytes + (index?.length ?? 0);
        return;
      }
      this.sendFresh(ws, m.id, sub);
    });
  }

  private canReplay(live: TargetLive, since: number, seq: number): boolean {
    if (since === seq) return true;
    return live.ring.length > 0 && live.ring[0]!.seq <= since + 1 && live.ring[live.ring.length - 1]!.seq === seq && live.ring.some((r) => r.seq === since + 1);
  }

  private replay(ws: WS, live: TargetLive, sub: Sub, since: number, seq: number): boolean {
    if (since === seq) return true;
    const first = live.ring.findIndex((r) => r.seq === since + 1);
    if (first < 0 || live.ring[live.ring.length - 1]!.seq !== seq) return false;
    for (let i = first; i < live.ring.length; i++) this.sendRaw(ws, sub.words ? live.ring[i]!.words : live.ring[i]!.pcs);
    return true;
  }

  /** The target's index message, encoded once per index and shared by every socket. */
  private indexBytes(id: string, index: SourceIndex): Buffer {
    const live = this.live(id);
    if (live.indexBytes?.index !== index) live.indexBytes = { index, bytes: this.packr.pack({ t: 'index', id, index: wireIndex(index, pcAddressesOf(index, this.hub.target(id)?.coverageFile)) } satisfies ServerMessage) };
    return live.indexBytes.bytes;
  }

  /** The current snapshot, encoded once while seq is unchanged (history: within 1 s) and shared. */
  private snapshotBytes(id: string, t: NonNullable<ReturnType<Hub['target']>>, sparse: boolean): Buffer {
    const live = this.live(id);
    const now = Date.now();
    let snap = live.snapshots[sparse ? 1 : 0];
    if (!snap || snap.seq !== t.seq || now - snap.at > 1000) {
      const pcsLen = t.stats.pcsLen;
      const seen = t.seen.subarray(0, Math.ceil(pcsLen / 64) * 8);
      const firstSeen = sparse ? sparseFirstSeen(t.seen, t.firstSeen, pcsLen) : t.firstSeen;
      const msg: ServerMessage = { t: 'snapshot', id, seq: t.seq, epoch: this.epoch, info: infoOf(t), seen, firstSeen, history: this.hub.history(id) };
      if (sparse) msg.sparse = true;
      snap = { seq: t.seq, at: now, bytes: this.packr.pack(msg) };
      live.snapshots[sparse ? 1 : 0] = snap;
    }
    return snap.bytes;
  }

  /**
   * Sends a subscriber (already on its topic) the index if it lacks it, and a fresh snapshot.
   * Large ones go through the bounded queue of big sends instead (which takes it off the topic).
   */
  private sendFresh(ws: WS, id: string, sub: Sub): void {
    const t = this.hub.target(id);
    if (!t) return void this.send(ws, { t: 'error', code: 'no-such-target', id, error: `no target ${id}` });
    const index = t.index && sub.index !== t.index ? this.indexBytes(id, t.index) : null;
    const snap = this.snapshotBytes(id, t, sub.sparse);
    if ((index?.length ?? 0) > BIG_MESSAGE || snap.length > BIG_MESSAGE) return this.queueBig(ws, id, sub);
    if (index) {
      this.sendRaw(ws, index);
      sub.index = t.index;
    }
    this.sendRaw(ws, snap);
    sub.allowance = this.limits.resyncAfterBytes + snap.length + (index?.length ?? 0);
  }

  private markStale(ws: WS, id: string, sub: Sub) {
    if (sub.stale || sub.queued || ws.getUserData().big) return;
    sub.stale = true;
    ws.unsubscribe(topicOf(id, sub.words));
    this.stale.add(ws);
    this.stats.behind++;
  }

  private resyncIfDrained(ws: WS) {
    const c = ws.getUserData();
    if (c.closed || c.big || ws.getBufferedAmount() > this.limits.resyncLowWater) return;
    this.stale.delete(ws);
    ws.cork(() => {
      for (const [id, sub] of c.subs) {
        if (!sub.stale) continue;
        sub.stale = false;
        ws.subscribe(topicOf(id, sub.words));
        this.stats.resyncs++;
        // It may have missed the index too (subscribed while behind, or published meanwhile).
        this.sendFresh(ws, id, sub);
      }
    });
  }

  // ---- big sends ----
  //
  // uWebSockets.js copies whatever a socket cannot write at once into that socket's buffer, and a
  // buffer keeps its size once drained: a 16 MB index sent whole to 200 tabs stays resident as
  // 200 x 16 MB. So a message over BIG_MESSAGE is streamed as WebSocket fragments of FRAGMENT
  // bytes, the next one written only once the socket's buffer is empty, to at most BIG_SLOTS
  // sockets at a time (the others wait in FIFO order). Between the fragments of a message nothing
  // else may reach the socket, so a streaming socket is off every topic and its other messages
  // wait in `out`; once done it rejoins its topics and gets the deltas it missed from the ring.

  private queueBig(ws: WS, id: string, sub: Sub) {
    const c = ws.getUserData();
    if (!sub.queued) {
      sub.queued = true;
      if (!sub.stale && !c.big) ws.unsubscribe(topicOf(id, sub.words));
    }
    sub.stale = false;
    if (!c.big && !this.bigWaiting.has(ws)) this.bigWaiting.add(ws);
    this.bigStats();
    this.schedulePump();
  }

  private schedulePump() {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.safely('pump', () => this.pump());
    });
  }

  private pump() {
    for (const ws of this.bigWaiting) {
      if (this.bigActive.size >= BIG_SLOTS) break;
      this.bigWaiting.delete(ws);
      if (!ws.getUserData().closed) this.startBig(ws);
    }
    this.bigStats();
  }

  private startBig(ws: WS) {
    const c = ws.getUserData();
    const parts: Uint8Array[] = [];
    const seqs = new Map<string, number>();
    // Every subscription of the socket leaves its topic and gets a fresh snapshot in this go.
    for (const [id, sub] of c.subs) {
      const t = this.hub.target(id);
      if (!t) continue;
      if (!sub.queued && !sub.stale) ws.unsubscribe(topicOf(id, sub.words));
      sub.queued = false;
      sub.stale = false;
      if (t.index && sub.index !== t.index) {
        parts.push(this.indexBytes(id, t.index));
        sub.index = t.index;
      }
      parts.push(this.snapshotBytes(id, t, sub.sparse));
      seqs.set(id, t.seq);
    }
    if (c.targets) ws.unsubscribe(TARGETS_TOPIC);
    c.big = { parts, part: 0, off: 0, seqs, targets: c.targets, last: Date.now() };
    c.out = [];
    this.bigActive.add(ws);
    this.bigStats();
    // A turn of the loop first, so messages published to its topics before it left them are out.
    setImmediate(() => this.safely('big send', () => this.stepBig(ws)));
  }

  /** Writes fragments while the socket's buffer is under one fragment; the drain event or the sweep resumes it. */
  private stepBig(ws: WS) {
    const c = ws.getUserData();
    const job = c.big;
    if (!job || c.closed) return;
    let burst = 0;
    while (job.part < job.parts.length) {
      // Below one fragment: writing the next also flushes what is buffered (uWS does not always
      // poll an almost drained socket for writability again).
      if (ws.getBufferedAmount() >= FRAGMENT) return;
      if (burst++ >= 64) return void setImmediate(() => this.safely('big send', () => this.stepBig(ws)));
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
      for (const w of this.bigActive) buffered += w.getBufferedAmount();
      const b = this.stats.bigSends!;
      if (buffered > b.peakBuffered) b.peakBuffered = buffered;
    }
    this.finishBig(ws);
  }

  private finishBig(ws: WS) {
    const c = ws.getUserData();
    const job = c.big!;
    const out = c.out ?? [];
    c.big = null;
    c.out = null;
    this.bigActive.delete(ws);
    this.stats.bigSends!.sent++;
    ws.cork(() => {
      for (const bytes of out) this.sendRaw(ws, bytes);
      for (const [id, seq] of job.seqs) {
        const sub = c.subs.get(id);
        const t = this.hub.target(id);
        if (!sub || sub.queued || !t) continue;
        ws.subscribe(topicOf(id, sub.words));
        // The deltas published while it streamed; a new index meanwhile means another go.
        if ((t.index && sub.index !== t.index) || !this.replay(ws, this.live(id), sub, seq, t.seq)) this.queueBig(ws, id, sub);
        else sub.allowance = this.limits.resyncAfterBytes;
      }
      if (c.targets) {
        ws.subscribe(TARGETS_TOPIC);
        this.send(ws, { t: 'targets', targets: this.hub.targets().map(infoOf) });
      }
    });
    if ([...c.subs.values()].some((s) => s.queued) && !this.bigWaiting.has(ws)) this.bigWaiting.add(ws);
    this.bigStats();
    this.schedulePump();
  }

  private bigStats() {
    const b = this.stats.bigSends!;
    b.waiting = this.bigWaiting.size;
    b.active = this.bigActive.size;
    if (b.active > b.peakActive) b.peakActive = b.active;
  }

  /**
   * Subscribers more than the bound behind are unsubscribed (they miss deltas on purpose from now
   * on) and get one snapshot once drained; the stale ones that have drained are resynchronised.
   */
  private sweep() {
    for (const [id, live] of this.targets) {
      for (const ws of live.subscribers) {
        const c = ws.getUserData();
        const sub = c.subs.get(id);
        if (!sub || sub.stale || sub.queued || c.big) continue;
        const buffered = ws.getBufferedAmount();
        if (buffered > sub.allowance) this.markStale(ws, id, sub);
        else if (buffered < this.limits.resyncAfterBytes) sub.allowance = this.limits.resyncAfterBytes;
      }
    }
    for (const ws of [...this.stale]) this.resyncIfDrained(ws);
    // Streams stuck on a client that stopped reading hold a slot: give up on them after a while.
    const now = Date.now();
    for (const ws of [...this.bigActive]) {
      const job = ws.getUserData().big;
      if (job && now - job.last > BIG_STALL_MS) this.drop(ws, 1008, 'slow', 'stopped reading in the middle of a large message');
      else this.stepBig(ws);
    }
  }

  // ---- hub events ----

  private onDelta(d: CoverageDelta) {
    const live = this.live(d.id);
    const pcsMsg: ServerMessage = { t: 'delta', id: d.id, seq: d.seq, time: d.time, pcs: d.newPcs, stats: d.stats };
    const pcs = this.packr.pack(pcsMsg);
    const words = encodeWords(d.newPcs);
    const wordsBytes = words && words.length < d.newPcs.length ? this.packr.pack({ ...pcsMsg, pcs: new Uint32Array(0), words } satisfies ServerMessage) : pcs;
    this.publish(topicOf(d.id, false), pcs);
    this.publish(topicOf(d.id, true), wordsBytes);

    live.ring.push({ seq: d.seq, pcs, words: wordsBytes });
    live.ringBytes += pcs.length + (wordsBytes === pcs ? 0 : wordsBytes.length);
    // Bounded by count and by bytes (a first tick can carry a large share of a big target).
    while (live.ring.length > this.limits.resumeDeltas || (live.ring.length > 1 && live.ringBytes > RING_BYTES)) {
      const old = live.ring.shift()!;
      live.ringBytes -= old.pcs.length + (old.words === old.pcs ? 0 : old.words.length);
    }
    if (this.app.numSubscribers(TARGETS_TOPIC) > 0) {
      const t = this.hub.target(d.id);
      if (t) this.publish(TARGETS_TOPIC, this.packr.pack({ t: 'target', target: infoOf(t) } satisfies ServerMessage));
    }
  }

  private onTarget(info: TargetInfo) {
    this.publish(TARGETS_TOPIC, this.packr.pack({ t: 'target', target: infoOf(info) } satisfies ServerMessage));
    const live = this.targets.get(info.id);
    if (!live) return;
    live.snapshots = []; // they carry the old info
    if (live.subscribers.size === 0) return;
    this.publishTarget(info.id, { t: 'target', target: infoOf(info) });
    // Symbolization finished (or the index changed): subscribers get the index now; stale ones
    // (not on the topic) get it with their snapshot.
    const t = this.hub.target(info.id);
    if (t?.index && t.index !== live.index) {
      live.index = t.index;
      const bytes = this.indexBytes(info.id, t.index);
      if (bytes.length > BIG_MESSAGE) {
        // Too big to publish (each socket's buffer would keep a copy): the bounded queue instead.
        for (const ws of live.subscribers) {
          const sub = ws.getUserData().subs.get(info.id);
          if (sub && !sub.stale && !sub.queued) this.queueBig(ws, info.id, sub);
        }
        return;
      }
      this.publish(topicOf(info.id, false), bytes);
      this.publish(topicOf(info.id, true), bytes);
      for (const ws of live.subscribers) {
        const sub = ws.getUserData().subs.get(info.id);
        if (sub && !sub.stale && !sub.queued && !ws.getUserData().big) sub.index = t.index;
      }
    }
  }

  private onRemoved(id: string) {
    this.publish(TARGETS_TOPIC, this.packr.pack({ t: 'removed', id } satisfies ServerMessage));
    this.publishTarget(id, { t: 'removed', id });
    const live = this.targets.get(id);
    if (live) for (const ws of live.subscribers) {
      const c = ws.getUserData();
      const sub = c.subs.get(id);
      if (sub) ws.unsubscribe(topicOf(id, sub.words));
      c.subs.delete(id);
    }
    this.targets.delete(id);
  }

  // ---- sending ----

  private live(id: string): TargetLive {
    let l = this.targets.get(id);
    if (!l) this.targets.set(id, (l = { subscribers: new Set(), ring: [], ringBytes: 0, index: null, snapshots: [] }));
    return l;
  }

  private publishTarget(id: string, msg: ServerMessage) {
    const bytes = this.packr.pack(msg);
    this.publish(topicOf(id, false), bytes);
    this.publish(topicOf(id, true), bytes);
  }

  private publish(topic: string, bytes: Buffer) {
    const n = this.app.numSubscribers(topic);
    if (n === 0) return;
    this.app.publish(topic, bytes, true, false);
    this.stats.messagesSent += n;
    this.stats.bytesSent += n * bytes.length;
  }

  private send(ws: WS, msg: ServerMessage): boolean {
    return this.sendRaw(ws, this.packr.pack(msg));
  }

  private sendRaw(ws: WS, bytes: Uint8Array): boolean {
    const c = ws.getUserData();
    if (c.out) {
      c.out.push(bytes);
      return true;
    }
    const r = ws.send(bytes, true, false);
    if (r === 2) return false; // over the hard cap: uWS closes the socket
    this.stats.messagesSent++;
    this.stats.bytesSent += bytes.length;
    return true;
  }

  private drop(ws: WS, code: number, kind: string, why: string) {
    this.stats.dropped++;
    this.stats.refused[kind] = (this.stats.refused[kind] ?? 0) + 1;
    this.log.debug('closing websocket', { addr: ws.getUserData().addr, kind, why });
    this.send(ws, { t: 'error', code: kind, error: why });
    ws.end(code, why);
  }
}

/** Strictly checks a decoded client message; anything else is refused. */
export function validate(m: unknown): ClientMessage | null {
  if (typeof m !== 'object' || m === null || Array.isArray(m) || ArrayBuffer.isView(m)) return null;
  const o = m as Record<string, unknown>;
  const id = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 64;
  switch (o.t) {
    case 'ping':
    case 'sub-targets':
      return { t: o.t };
    case 'unsub':
    case 'resync':
      return id(o.id) ? { t: o.t, id: o.id } : null;
    case 'sub': {
      if (!id(o.id)) return null;
      if (o.have !== undefined && o.have !== null && typeof o.have !== 'string') return null;
      if (o.since !== undefined && !(Number.isSafeInteger(o.since) && (o.since as number) >= 0)) return null;
      const out: ClientMessage = { t: 'sub', id: o.id };
      if (typeof o.have === 'string' || o.have === null) out.have = o.have;
      if (o.words === true) out.words = true;
      if (o.sparse === true) out.sparse = true;
      if (typeof o.since === 'number') out.since = o.since;
      if (typeof o.epoch === 'string' && o.epoch.length <= 64) out.epoch = o.epoch;
      return out;
    }
    default:
      return null;
  }
}

/** Pairs (word index, mask) of the 32-bit words that gained bits; null when there is nothing to group. */
export function encodeWords(pcs: Uint32Array): Uint32Array | null {
  if (pcs.length < 3) return null;
  const sorted = Uint32Array.from(pcs).sort();
  const out: number[] = [];
  let word = -1, mask = 0;
  for (const pc of sorted) {
    const w = pc >>> 5;
    if (w !== word) {
      if (word >= 0) out.push(word, mask >>> 0);
      word = w;
      mask = 0;
    }
    mask |= 1 << (pc & 31);
  }
  out.push(word, mask >>> 0);
  return Uint32Array.from(out);
}

export function sparseFirstSeen(seen: Uint8Array, firstSeen: Uint32Array, pcsLen: number): Uint32Array {
  const out: number[] = [];
  for (let byte = 0; byte * 8 < pcsLen; byte++) {
    let b = seen[byte]!;
    while (b !== 0) {
      const bit = 31 - Math.clz32(b & -b);
      const pc = byte * 8 + bit;
      if (pc < pcsLen) out.push(firstSeen[pc]!);
      b &= b - 1;
    }
  }
  return Uint32Array.from(out);
}

/** Per index: the PCs it answers (link-time addresses), or null when they could not be read. */
const pcTables = new WeakMap<SourceIndex, BigUint64Array | null>();

/**
 * The PC addresses for the index message (`pcAddresses`, shown in the page's PC tooltip), read
 * from the target's coverage file once per index. Left out when the file is gone or unreadable,
 * or holds another PC table than the one the index was resolved for (pcsHash).
 */
function pcAddressesOf(index: SourceIndex, coverageFile: string | undefined): BigUint64Array | undefined {
  let pcs = pcTables.get(index);
  if (pcs === undefined) {
    pcs = null;
    if (coverageFile) {
      try {
        const f = CoverageFile.open(coverageFile);
        try {
          if (f.pcs.length === index.pcFile.length && (!index.pcsHash || pcTableHash(f.pcs) === index.pcsHash)) pcs = f.pcs;
        } finally {
          f.close();
        }
      } catch {
        // No addresses then: the page shows PC indices.
      }
    }
    pcTables.set(index, pcs);
  }
  return pcs ?? undefined;
}

function wireIndex(i: SourceIndex, pcAddresses?: BigUint64Array): WireSourceIndex {
  return {
    ...(pcAddresses ? { pcAddresses } : {}),
    buildId: i.buildId,
    directories: i.directories,
    files: i.files,
    fileDirs: i.fileDirs,
    functions: { names: i.functions.names, file: i.functions.file, line: i.functions.line },
    pcFile: i.pcFile,
    pcLine: i.pcLine,
    pcColumn: i.pcColumn,
    pcFunction: i.pcFunction,
  };
}
