/**
 * A browser tab as the benchmarks see it: a WebSocket client of the live protocol
 * (src/web/protocol.ts) that keeps one target's seen bits the way the UI does (snapshot, then
 * deltas in seq order, resync on a gap). It keeps no firstSeen array, so a thousand of them fit
 * in one process; and it can resume with `since` after a reconnect.
 */
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { packrOptions } from '../../src/contracts/msgpack.js';
import { applyDelta, type ClientMessage, type ServerMessage } from '../../src/web/protocol.js';

const packr = new Packr(packrOptions);
const unpackr = new Unpackr(packrOptions);

export class BenchTab {
  ws: WebSocket;
  seen: Uint8Array | null = null;
  seq = -1;
  pcsLen = 0;
  snapshots = 0;
  deltas = 0;
  gaps = 0;
  bytes = 0;
  errors: string[] = [];
  closed = false;
  readonly opened: Promise<void>;
  /** Called after a delta or snapshot was applied (with the PCs that were new to this tab, for deltas). */
  onApplied?: (tab: BenchTab, fresh: number[] | null) => void;

  /** Server run the state descends from: a resume is replayed only within the same epoch. */
  epoch: string | undefined;

  constructor(url: string, readonly id: string, opts: { since?: number; seen?: Uint8Array; epoch?: string; have?: string | null } = {}) {
    const wsUrl = url.replace(/^http/, 'ws').replace(/\/?$/, '/') + 'ws';
    this.ws = new WebSocket(wsUrl, { perMessageDeflate: false });
    if (opts.seen && opts.since !== undefined) {
      this.seen = opts.seen;
      this.seq = opts.since;
      this.epoch = opts.epoch;
    }
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    this.ws.on('message', (data: Buffer) => {
      this.bytes += data.length;
      this.handle(unpackr.unpack(data) as ServerMessage);
    });
    this.ws.on('close', () => { this.closed = true; });
    this.ws.on('error', () => {});
    void this.opened.then(() => {
      const sub: ClientMessage = { t: 'sub', id, words: true, sparse: true };
      if (this.seen && this.seq >= 0) {
        sub.since = this.seq;
        sub.epoch = this.epoch;
      }
      // A tab that cached the source index (a reload): the server skips sending it.
      if (opts.have) sub.have = opts.have;
      this.send(sub);
    }, () => {});
  }

  send(m: ClientMessage): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(packr.pack(m));
  }

  private handle(m: ServerMessage): void {
    switch (m.t) {
      case 'snapshot':
        if (m.id !== this.id) return;
        this.snapshots++;
        this.pcsLen = m.info.stats.pcsLen;
        this.seen = Uint8Array.from(m.seen);
        this.seq = m.seq;
        this.epoch = m.epoch;
        this.onApplied?.(this, null);
        return;
      case 'delta': {
        if (m.id !== this.id || !this.seen || m.seq <= this.seq) return;
        if (m.seq !== this.seq + 1) {
          this.gaps++;
          this.send({ t: 'resync', id: this.id });
          return;
        }
        const fresh = applyDelta(this.seen, null, m);
        this.seq = m.seq;
        this.deltas++;
        this.onApplied?.(this, fresh);
        return;
      }
      case 'error':
        this.errors.push(m.code ?? m.error);
        return;
      default:
        return;
    }
  }

  has(pc: number): boolean {
    return !!this.seen && ((this.seen[pc >>> 3]! >> (pc & 7)) & 1) === 1;
  }

  close(): void {
    this.closed = true;
    this.ws.terminate();
  }
}

/**
 * Opens n tabs on target `id`, at most `perSecond` new connections a second; a tab refused
 * with 429 (the server rate-limits upgrades per address) is retried after a pause.
 */
export async function openTabs(url: string, id: string | ((i: number) => string), n: number, perSecond = 100, have?: string | null): Promise<BenchTab[]> {
  const open = async (i: number): Promise<BenchTab> => {
    for (let attempt = 0; ; attempt++) {
      const t = new BenchTab(url, typeof id === 'string' ? id : id(i), { have });
      try {
        await t.opened;
        return t;
      } catch (err) {
        t.close();
        if (attempt >= 20 || !/429/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 250 + Math.random() * 500));
      }
    }
  };
  const pending: Promise<BenchTab>[] = [];
  const gap = 1000 / perSecond;
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    const wait = t0 + i * gap - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(open(i));
  }
  return Promise.all(pending);
}

/** Bits set in `a` but not in `b` (over pcsLen PCs). */
export function extraBits(a: Uint8Array, b: Uint8Array, pcsLen: number): number {
  let n = 0;
  const bytes = Math.ceil(pcsLen / 8);
  for (let i = 0; i < bytes; i++) {
    let x = a[i]! & ~(b[i] ?? 0);
    if (i === bytes - 1 && pcsLen % 8) x &= (1 << (pcsLen % 8)) - 1;
    while (x) { n++; x &= x - 1; }
  }
  return n;
}
