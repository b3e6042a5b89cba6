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
import { Packr, Unpackr } from 'msgpackr';
import type { CoverageDelta, Hub, TargetInfo } from '../daemon/hub.js';
import type { SourceIndex } from '../workers/types.js';
import type { Logger } from '../util/log.js';
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import { PROTOCOL_VERSION, packrOptions, type ClientMessage, type ServerMessage, type WireSourceIndex } from './protocol.js';
import type { WebLimits } from './limits.js';
import type { WebStats } from './types.js';
import { infoOf } from './summary.js';
import { RateLimiter } from './security.js';

export interface Sub {
  /** Receives word-encoded deltas (topic w/<id>) rather than index lists (topic d/<id>). */
  words: boolean;
  sparse: boolean;
  /** Unsubscribed because it fell behind; gets a snapshot once its buffer drains. */
  stale: boolean;
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

export class Live {
  private readonly packr = new Packr(packrOptions);
  private readonly unpackr = new Unpackr(packrOptions);
  private readonly targets = new Map<string, TargetLive>();
  private readonly stale = new Set<WS>();
  private readonly conns = new Set<WS>();
  private readonly timer: NodeJS.Timeout;
  private readonly listeners: { [K in 'target' | 'removed' | 'delta' | 'sourceChanged']?: (...a: never[]) => void } = {};

  constructor(
    private readonly app: TemplatedApp,
    private readonly hub: Hub,
    private readonly limits: WebLimits,
    private readonly stats: WebStats,
    private readonly log: Logger,
  ) {
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
    this.timer = setInterval(() => this.sweep(), CHECK_MS);
    this.timer.unref();
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
    return { addr, subs: new Map(), targets: false, closed: false, rate: new RateLimiter(this.limits.clientMessageRate, this.limits.clientMessageRate * 2) };
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
    for (const id of c.subs.keys()) this.targets.get(id)?.subscribers.delete(ws);
    this.stats.clients = this.conns.size;
  }

  drain(ws: WS) {
    if (this.stale.has(ws)) this.resyncIfDrained(ws);
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
          ws.subscribe(TARGETS_TOPIC);
        }
        return void this.send(ws, { t: 'targets', targets: this.hub.targets().map(infoOf) });
      case 'sub':
        return this.subscribe(ws, m);
      case 'unsub': {
        const sub = c.subs.get(m.id);
        if (sub) {
          ws.unsubscribe(topicOf(m.id, sub.words));
          c.subs.delete(m.id);
          this.targets.get(m.id)?.subscribers.delete(ws);
        }
        return;
      }
      case 'resync': {
        const sub = c.subs.get(m.id);
        if (!sub) return void this.send(ws, { t: 'error', code: 'not-subscribed', id: m.id, error: `not subscribed to target ${m.id}` });
        if (sub.stale) return; // a snapshot is already due
        // Behind already: coalesce into the snapshot sent when the buffer drains.
        if (ws.getBufferedAmount() > this.limits.resyncLowWater) return this.markStale(ws, m.id, sub);
        this.stats.resyncs++;
        return void this.sendSnapshot(ws, m.id, sub);
      }
    }
  }

  // ---- subscriptions ----

  private subscribe(ws: WS, m: Extract<ClientMessage, { t: 'sub' }>) {
    const c = ws.getUserData();
    const t = this.hub.target(m.id);
    if (!t) return void this.send(ws, { t: 'error', code: 'no-such-target', id: m.id, error: `no target ${m.id}` });
    const old = c.subs.get(m.id);
    if (old) ws.unsubscribe(topicOf(m.id, old.words));
    const has = t.index && m.have != null && m.have === t.index.buildId ? t.index : null;
    const sub: Sub = { words: m.words === true, sparse: m.sparse === true, stale: false, allowance: this.limits.resyncAfterBytes, index: has };
    c.subs.set(m.id, sub);
    const live = this.live(m.id);
    live.subscribers.add(ws);
    if (live.index === null && t.index) live.index = t.index;
    ws.subscribe(topicOf(m.id, sub.words));
    if (ws.getBufferedAmount() > this.limits.resyncAfterBytes) return this.markStale(ws, m.id, sub);
    ws.cork(() => {
      let extra = 0;
      if (t.index && sub.index !== t.index) extra += this.sendIndex(ws, m.id, sub, t.index);
      // Resume: replay the deltas the client missed when we still have all of them.
      if (m.since !== undefined && m.since <= t.seq && this.replay(ws, live, sub, m.since, t.seq)) {
        this.send(ws, { t: 'target', target: infoOf(t) });
        sub.allowance = this.limits.resyncAfterBytes + extra;
        return;
      }
      this.sendSnapshot(ws, m.id, sub, extra);
    });
  }

  private replay(ws: WS, live: TargetLive, sub: Sub, since: number, seq: number): boolean {
    if (since === seq) return true;
    const first = live.ring.findIndex((r) => r.seq === since + 1);
    if (first < 0 || live.ring[live.ring.length - 1]!.seq !== seq) return false;
    for (let i = first; i < live.ring.length; i++) this.sendRaw(ws, sub.words ? live.ring[i]!.words : live.ring[i]!.pcs);
    return true;
  }

  private sendIndex(ws: WS, id: string, sub: Sub, index: SourceIndex): number {
    const live = this.live(id);
    if (live.indexBytes?.index !== index) live.indexBytes = { index, bytes: this.packr.pack({ t: 'index', id, index: wireIndex(index) } satisfies ServerMessage) };
    this.sendRaw(ws, live.indexBytes.bytes);
    sub.index = index;
    return live.indexBytes.bytes.length;
  }

  /** Sends a fresh snapshot; `extra` = bytes just queued before it (the index), allowed in the buffer. */
  private sendSnapshot(ws: WS, id: string, sub: Sub, extra = 0): boolean {
    const t = this.hub.target(id);
    if (!t) {
      this.send(ws, { t: 'error', code: 'no-such-target', id, error: `no target ${id}` });
      return false;
    }
    const live = this.live(id);
    const now = Date.now();
    // Many tabs subscribing at once share one encoding while seq is unchanged (history: within 1 s).
    let snap = live.snapshots[sub.sparse ? 1 : 0];
    if (!snap || snap.seq !== t.seq || now - snap.at > 1000) {
      const pcsLen = t.stats.pcsLen;
      const seen = t.seen.subarray(0, Math.ceil(pcsLen / 64) * 8);
      const firstSeen = sub.sparse ? sparseFirstSeen(t.seen, t.firstSeen, pcsLen) : t.firstSeen;
      const msg: ServerMessage = { t: 'snapshot', id, seq: t.seq, info: infoOf(t), seen, firstSeen, history: this.hub.history(id) };
      if (sub.sparse) msg.sparse = true;
      snap = { seq: t.seq, at: now, bytes: this.packr.pack(msg) };
      live.snapshots[sub.sparse ? 1 : 0] = snap;
    }
    this.sendRaw(ws, snap.bytes);
    sub.allowance = this.limits.resyncAfterBytes + snap.bytes.length + extra;
    return true;
  }

  private markStale(ws: WS, id: string, sub: Sub) {
    if (sub.stale) return;
    sub.stale = true;
    ws.unsubscribe(topicOf(id, sub.words));
    this.stale.add(ws);
    this.stats.behind++;
  }

  private resyncIfDrained(ws: WS) {
    const c = ws.getUserData();
    if (c.closed || ws.getBufferedAmount() > this.limits.resyncLowWater) return;
    this.stale.delete(ws);
    ws.cork(() => {
      for (const [id, sub] of c.subs) {
        if (!sub.stale) continue;
        sub.stale = false;
        ws.subscribe(topicOf(id, sub.words));
        this.stats.resyncs++;
        // It may have missed the index too (subscribed while behind, or published meanwhile).
        const index = this.hub.target(id)?.index;
        const extra = index && sub.index !== index ? this.sendIndex(ws, id, sub, index) : 0;
        this.sendSnapshot(ws, id, sub, extra);
      }
    });
  }

  /**
   * Subscribers more than the bound behind are unsubscribed (they miss deltas on purpose from now
   * on) and get one snapshot once drained; the stale ones that have drained are resynchronised.
   */
  private sweep() {
    for (const [id, live] of this.targets) {
      for (const ws of live.subscribers) {
        const sub = ws.getUserData().subs.get(id);
        if (!sub || sub.stale) continue;
        const buffered = ws.getBufferedAmount();
        if (buffered > sub.allowance) this.markStale(ws, id, sub);
        else if (buffered < this.limits.resyncAfterBytes) sub.allowance = this.limits.resyncAfterBytes;
      }
    }
    for (const ws of [...this.stale]) this.resyncIfDrained(ws);
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
      live.indexBytes = { index: t.index, bytes: this.packr.pack({ t: 'index', id: info.id, index: wireIndex(t.index) } satisfies ServerMessage) };
      this.publish(topicOf(info.id, false), live.indexBytes.bytes);
      this.publish(topicOf(info.id, true), live.indexBytes.bytes);
      for (const ws of live.subscribers) {
        const sub = ws.getUserData().subs.get(info.id);
        if (sub && !sub.stale) sub.index = t.index;
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

function wireIndex(i: SourceIndex): WireSourceIndex {
  return {
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
