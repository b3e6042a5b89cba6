/**
 * The WebSocket link to the daemon: msgpack frames (protocol.ts), reconnect with exponential
 * backoff and jitter, and a heartbeat so a silently dead link is noticed. Subscriptions are
 * replayed by the owner on every (re)open via `onOpen`.
 */
import { decode, encode } from './msgpack.js';
import type { ClientMessage, ServerMessage } from '../../src/web/protocol.js';
import { authQuery } from './api.js';

export type LinkState = 'connecting' | 'open' | 'reconnecting';

export interface LinkEvents {
  state(state: LinkState, detail: string): void;
  open(): void;
  message(msg: ServerMessage): void;
}

const MIN_DELAY = 250;
const MAX_DELAY = 10_000;
const PING_EVERY = 10_000;
/** No frame at all for this long (pings included) means the link is dead. */
const DEAD_AFTER = 30_000;

export class Link {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private lastFrame = 0;
  /** When the next attempt starts (ms since epoch), for the countdown in the header. */
  retryAt = 0;
  state: LinkState = 'connecting';
  /** Frames received, for the status tooltip and tests. */
  frames = 0;
  /** How many times the link came up; > 1 means it reconnected. */
  opens = 0;

  constructor(private readonly url: string, private readonly on: LinkEvents) {}

  static defaultUrl(): string {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/ws${authQuery()}`;
  }

  start(): void {
    this.connect();
    // A tab that comes back from sleep should not wait for the backoff timer.
    window.addEventListener('online', () => this.retryNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.state === 'reconnecting') this.retryNow();
    });
  }

  send(msg: ClientMessage): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(encode(msg));
  }

  retryNow(): void {
    if (this.state !== 'reconnecting') return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  }

  private setState(s: LinkState, detail: string): void {
    this.state = s;
    this.on.state(s, detail);
  }

  private connect(): void {
    this.setState(this.opens === 0 ? 'connecting' : 'reconnecting', 'connecting…');
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.scheduleRetry(String(e));
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.opens++;
      this.lastFrame = Date.now();
      this.setState('open', 'connected');
      this.on.open();
      this.pingTimer = setInterval(() => this.heartbeat(), PING_EVERY);
    };
    ws.onmessage = (ev) => {
      this.lastFrame = Date.now();
      this.frames++;
      if (!(ev.data instanceof ArrayBuffer)) return;
      let msg: ServerMessage;
      try {
        msg = decode(new Uint8Array(ev.data)) as ServerMessage;
      } catch (e) {
        console.error('covd: undecodable frame', e);
        return;
      }
      this.on.message(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.pingTimer = null;
      this.scheduleRetry(ev.reason || (ev.code === 1006 ? 'connection lost' : `closed (${ev.code})`));
    };
    ws.onerror = () => {
      // onclose follows and schedules the retry.
    };
  }

  private heartbeat(): void {
    if (Date.now() - this.lastFrame > DEAD_AFTER) {
      this.ws?.close();
      return;
    }
    this.send({ t: 'ping' });
  }

  private scheduleRetry(reason: string): void {
    const base = Math.min(MAX_DELAY, MIN_DELAY * 2 ** this.attempt++);
    const delay = base / 2 + Math.random() * (base / 2);
    this.retryAt = Date.now() + delay;
    this.setState('reconnecting', reason);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }
}
