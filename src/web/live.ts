/**
 * The live side of the web server: WebSocket sessions, per-target topics and subscriptions,
 * snapshots, deltas, resume and backpressure. Indexes and snapshots too large to send whole go
 * through ./big-send.ts, resumes replay from ./resume-ring.ts, and the encodings are ./wire.ts's.
 *
 * One publish per delta reaches every tab of a target from C++
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
import { PROTOCOL_VERSION, type ClientMessage, type ServerMessage } from './protocol.js';
import type { WebLimits } from './limits.js';
import type { WebStats } from './types.js';
import { infoOf } from './summary.js';
import { RateLimiter } from './security.js';
import { BIG_MESSAGE, BigSender, type Streaming } from './big-send.js';
import { ResumeRing } from './resume-ring.js';
import { encodeWords, pcAddressesOf, sparseFirstSeen, validate, wireIndex } from './wire.js';
import { ownBytes, packLarge } from '../util/packed.js';

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

/** What a socket rejoins once a big send is done (./big-send.ts). */
interface Rejoin {
  /** Per target: the seq of the snapshot in the stream, to replay from once done. */
  seqs: Map<string, number>;
  /** Also subscribed to the target list (left for the duration). */
  targets: boolean;
}

/** A socket's state; `big` and `out` (its big send) are kept by the BigSender. */
export interface Conn extends Streaming<Rejoin> {
  addr: string;
  subs: Map<string, Sub>;
  targets: boolean;
  /** Client message rate limiter, keyed by nothing (one bucket per connection). */
  rate: RateLimiter;
}

type WS = WebSocket<Conn>;

interface TargetLive {
  subscribers: Set<WS>;
  ring: ResumeRing;
  /** The index last published to subscribers (to notice when symbolization finishes). */
  index: SourceIndex | null;
  indexBytes?: { index: SourceIndex; bytes: Buffer };
  /** Encoded snapshots shared by tabs subscribing at the same seq: [dense, sparse]. */
  snapshots: ({ seq: number; at: number; bytes: Buffer } | undefined)[];
}

const topicOf = (id: string, words: boolean) => (words ? 'w/' : 'd/') + id;
/** How often send buffers are checked. Until then a tab behind just queues (bounded by maxBackpressure). */
const CHECK_MS = 200;
const TARGETS_TOPIC = 'targets';

export class Live {
  private readonly packr = new Packr(packrOptions);
  private readonly unpackr = new Unpackr(packrOptions);
  private readonly targets = new Map<string, TargetLive>();
  private readonly stale = new Set<WS>();
  private readonly conns = new Set<WS>();
  private readonly timer: NodeJS.Timeout;
  /** Indexes and snapshots too large to send whole, streamed through a bounded queue. */
  private readonly bigSender: BigSender<Conn, Rejoin>;
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
    this.bigSender = new BigSender<Conn, Rejoin>(stats, {
      start: (ws) => this.startBig(ws),
      finish: (ws, rejoin, out) => this.finishBig(ws, rejoin, out),
      stalled: (ws) => this.drop(ws, 1008, 'slow', 'stopped reading in the middle of a large message'),
      safely: (what, fn) => this.safely(what, fn),
    });
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
    this.bigSender.closed(ws);
    for (const id of c.subs.keys()) this.targets.get(id)?.subscribers.delete(ws);
    this.stats.clients = this.conns.size;
  }

  drain(ws: WS) {
    if (ws.getUserData().big) this.bigSender.step(ws);
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
          if (c.big) c.big.rejoin.targets = true;
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
      if (m.since !== undefined && m.epoch === this.epoch && m.since <= t.seq && (!index || index.length <= BIG_MESSAGE) && live.ring.canReplay(m.since, t.seq)) {
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

  /** Sends the deltas after `since` up to `seq` from the ring; false when some are gone. */
  private replay(ws: WS, live: TargetLive, sub: Sub, since: number, seq: number): boolean {
    return live.ring.replay(since, seq, sub.words, (bytes) => this.sendRaw(ws, bytes));
  }

  /** The target's index message, encoded once per index and shared by every socket. */
  private indexBytes(id: string, index: SourceIndex): Buffer {
    const live = this.live(id);
    if (live.indexBytes?.index !== index) live.indexBytes = { index, bytes: packLarge(this.packr, { t: 'index', id, index: wireIndex(index, pcAddressesOf(index, this.hub.target(id)?.coverageFile)) } satisfies ServerMessage, true, true) };
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
      snap = { seq: t.seq, at: now, bytes: packLarge(this.packr, msg, true, true) };
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
  // A socket streaming a big message (./big-send.ts) is off every topic and its other messages
  // wait in `out`; once done it rejoins its topics and gets the deltas it missed from the ring.

  private queueBig(ws: WS, id: string, sub: Sub) {
    const c = ws.getUserData();
    if (!sub.queued) {
      sub.queued = true;
      if (!sub.stale && !c.big) ws.unsubscribe(topicOf(id, sub.words));
    }
    sub.stale = false;
    this.bigSender.enqueue(ws);
  }

  /** A slot is free: every subscription of the socket leaves its topic and gets a fresh snapshot in this go. */
  private startBig(ws: WS): { parts: Uint8Array[]; rejoin: Rejoin } {
    const c = ws.getUserData();
    const parts: Uint8Array[] = [];
    const seqs = new Map<string, number>();
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
    return { parts, rejoin: { seqs, targets: c.targets } };
  }

  private finishBig(ws: WS, rejoin: Rejoin, out: Uint8Array[]) {
    const c = ws.getUserData();
    ws.cork(() => {
      for (const bytes of out) this.sendRaw(ws, bytes);
      for (const [id, seq] of rejoin.seqs) {
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
    if ([...c.subs.values()].some((s) => s.queued)) this.bigSender.enqueue(ws);
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
    // Streams stuck on a client that stopped reading hold a slot: given up on after a while.
    this.bigSender.sweep();
  }

  // ---- hub events ----

  private onDelta(d: CoverageDelta) {
    const live = this.live(d.id);
    const pcsMsg: ServerMessage = { t: 'delta', id: d.id, seq: d.seq, time: d.time, pcs: d.newPcs, stats: d.stats };
    // A first delta after a long pause can hold many PCs: packLarge, so it leaves no grown buffer behind.
    const pcs = packLarge(this.packr, pcsMsg, false);
    const words = encodeWords(d.newPcs);
    const wordsBytes = words && words.length < d.newPcs.length ? packLarge(this.packr, { ...pcsMsg, pcs: new Uint32Array(0), words } satisfies ServerMessage, false) : pcs;
    this.publish(topicOf(d.id, false), pcs);
    this.publish(topicOf(d.id, true), wordsBytes);

    // Kept as Buffers of their own (ownBytes): the ring outlives msgpackr's buffer they were packed in.
    const kept = ownBytes(pcs);
    live.ring.push(d.seq, kept, wordsBytes === pcs ? kept : ownBytes(wordsBytes));
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
    if (!l) this.targets.set(id, (l = { subscribers: new Set(), ring: new ResumeRing(this.limits.resumeDeltas), index: null, snapshots: [] }));
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
