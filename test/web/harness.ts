/**
 * Test fixtures for the web server: a real fuzz target under libFuzzer, its coverage file read
 * and fed into the real TargetRegistry (a small stand-in for the daemon's coverage thread), and a
 * protocol client that keeps a tab's state the way the browser does.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { buildExampleTarget, findCoverageFile, runFuzzer, type FuzzerRun } from '../helpers/fuzz-targets.js';
import { TargetRegistry } from '../../src/daemon/registry.js';
import { seenBytes } from '../../src/contracts/seen.js';
import { createSymbolizerPool } from '../../src/workers/pool.js';
import type { SourceIndex } from '../../src/workers/types.js';
import { createLogger } from '../../src/util/log.js';
import { packrOptions } from '../../src/contracts/msgpack.js';
import { applyDelta, expandFirstSeen, type ClientMessage, type ServerMessage } from '../../src/web/protocol.js';

export const quietLog = createLogger({ level: (process.env.COVD_TEST_LOG as 'debug') ?? 'silent' });

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'covd-'));
}

export { until } from '../helpers/scratch.js';

/** The coverage file as the fuzzer's agent writes it (the seed layout): header, PCs, seen bits. */
export interface CoverageFile {
  nRuns: number;
  uniqueRuns: number;
  pcsLen: number;
  lowestStack: number | null;
  pcs: BigUint64Array;
  seen: Uint8Array;
}

export function readCoverageFile(path: string): CoverageFile {
  const buf = readFileSync(path);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const pcsLen = Number(dv.getBigUint64(16, true));
  const need = 32 + pcsLen * 8 + seenBytes(pcsLen);
  if (buf.length < need) throw new Error(`coverage file ${path} is ${buf.length} bytes, expected ${need}`);
  const ls = dv.getBigUint64(24, true);
  const pcs = new BigUint64Array(pcsLen);
  for (let i = 0; i < pcsLen; i++) pcs[i] = dv.getBigUint64(32 + i * 8, true);
  return {
    nRuns: Number(dv.getBigUint64(0, true)),
    uniqueRuns: Number(dv.getBigUint64(8, true)),
    pcsLen,
    lowestStack: ls === 0n || ls === 0xffffffffffffffffn ? null : Number(ls),
    pcs,
    seen: Uint8Array.from(buf.subarray(32 + pcsLen * 8, need)),
  };
}

/** Resolves PCs with the daemon's symbolizer pool (one worker thread, then destroyed). */
export async function symbolize(exe: string, pcs: BigUint64Array): Promise<SourceIndex> {
  const pool = createSymbolizerPool({ threads: 1 });
  try {
    return await pool.resolve({ exe, pcs });
  } finally {
    await pool.destroy();
  }
}

/** A live target: the example fuzzed by libFuzzer, its coverage fed into a real registry every `tickMs`. */
export class LiveTarget {
  readonly registry = new TargetRegistry({ historyIntervalMs: 1000 });
  id = '';
  exe = '';
  coverageFile = '';
  private fuzz?: FuzzerRun;
  private timer?: NodeJS.Timeout;
  private readonly dir = tempDir();

  static async start(opts: { tickMs?: number; seconds?: number } = {}): Promise<LiveTarget> {
    const t = new LiveTarget();
    t.exe = await buildExampleTarget();
    t.fuzz = runFuzzer(t.exe, { covdDir: t.dir, ...(opts.seconds ? { seconds: opts.seconds } : {}) });
    t.coverageFile = await findCoverageFile(t.dir);
    t.id = basename(t.coverageFile);
    const first = readCoverageFile(t.coverageFile);
    const index = await symbolize(t.exe, first.pcs);
    t.registry.add({ id: t.id, exe: t.exe, coverageFile: t.coverageFile, pcsLen: first.pcsLen, buildId: index.buildId });
    t.registry.setIndex(t.id, index);
    t.tick();
    t.timer = setInterval(() => t.tick(), opts.tickMs ?? 100);
    return t;
  }

  /** Reads the file and applies what changed, as the daemon's coverage thread would. */
  tick() {
    let f: CoverageFile;
    try {
      f = readCoverageFile(this.coverageFile);
    } catch {
      return;
    }
    const have = this.registry.target(this.id)!.seen;
    const fresh: number[] = [];
    for (let byte = 0; byte < f.seen.length; byte++) {
      let d = f.seen[byte]! & ~have[byte]!;
      while (d) {
        const bit = 31 - Math.clz32(d & -d);
        fresh.push(byte * 8 + bit);
        d &= d - 1;
      }
    }
    this.registry.applyTick(this.id, { newPcs: Uint32Array.from(fresh), nRuns: f.nRuns, uniqueRuns: f.uniqueRuns, lowestStack: f.lowestStack, time: Date.now() });
  }

  get fuzzing(): boolean {
    return !!this.fuzz && this.fuzz.child.exitCode === null && this.fuzz.child.signalCode === null;
  }

  /** Stops the fuzzer, applies the file's final state, stops ticking. */
  async stopFuzzing() {
    if (this.fuzz && this.fuzzing) {
      this.fuzz.child.kill('SIGTERM');
      await this.fuzz.done;
    }
    this.tick();
    clearInterval(this.timer);
  }

  async close() {
    await this.stopFuzzing();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const packr = new Packr(packrOptions);
const unpackr = new Unpackr(packrOptions);

/** One browser tab's view of one target, kept the way the client is meant to keep it. */
export class Tab {
  readonly ws: WebSocket;
  seen: Uint8Array | null = null;
  firstSeen: Uint32Array | null = null;
  seq = -1;
  /** The server epoch of the last snapshot (resumes name it along with `since`). */
  epoch: string | undefined;
  pcsLen = 0;
  snapshots = 0;
  deltas = 0;
  gaps = 0;
  indexes = 0;
  hello = false;
  errors: string[] = [];
  closed: { code: number; reason: string } | null = null;
  readonly opened: Promise<void>;
  /** Called on every decoded message, after it was applied. */
  onMessage?: (m: ServerMessage) => void;

  constructor(url: string, readonly id: string, readonly sub: Omit<Extract<ClientMessage, { t: 'sub' }>, 't' | 'id'> = { words: true, sparse: true }, wsOpts: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url.replace(/^http/, 'ws') + 'ws', wsOpts);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    this.ws.on('message', (data: Buffer) => this.handle(unpackr.unpack(data) as ServerMessage));
    this.ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString() }));
    this.ws.on('error', () => {});
  }

  send(m: ClientMessage) {
    this.ws.send(packr.pack(m));
  }

  subscribe(extra: Partial<Extract<ClientMessage, { t: 'sub' }>> = {}) {
    this.send({ t: 'sub', id: this.id, ...this.sub, ...extra });
  }

  private handle(m: ServerMessage) {
    switch (m.t) {
      case 'hello':
        this.hello = true;
        break;
      case 'index':
        this.indexes++;
        break;
      case 'snapshot':
        this.snapshots++;
        this.pcsLen = m.info.stats.pcsLen;
        this.seen = Uint8Array.from(m.seen);
        this.firstSeen = expandFirstSeen(m, this.pcsLen).slice();
        this.seq = m.seq;
        this.epoch = m.epoch;
        break;
      case 'delta':
        if (!this.seen || m.seq <= this.seq) break;
        if (m.seq !== this.seq + 1) {
          this.gaps++;
          this.send({ t: 'resync', id: this.id });
          break;
        }
        applyDelta(this.seen, this.firstSeen, m);
        this.seq = m.seq;
        this.deltas++;
        break;
      case 'error':
        this.errors.push(m.code ?? m.error);
        break;
    }
    this.onMessage?.(m);
  }

  close() {
    this.ws.terminate();
  }
}

/** True when the tab's bits equal `expected` over the first pcsLen bits. */
export function sameBits(tab: Uint8Array | null, expected: Uint8Array, pcsLen: number): boolean {
  if (!tab) return false;
  for (let pc = 0; pc < pcsLen; pc++) {
    const a = (tab[pc >>> 3]! >> (pc & 7)) & 1, b = (expected[pc >>> 3]! >> (pc & 7)) & 1;
    if (a !== b) return false;
  }
  return true;
}

/** Gives a new tab (a reconnect) the state an earlier tab ended with. */
export function adopt(to: Tab, from: Tab) {
  to.seen = from.seen && Uint8Array.from(from.seen);
  to.firstSeen = from.firstSeen && Uint32Array.from(from.firstSeen);
  to.seq = from.seq;
  to.epoch = from.epoch;
  to.pcsLen = from.pcsLen;
}

export interface RawResponse {
  status: number;
  headers: import('node:http').IncomingHttpHeaders;
  body: Buffer;
}

/** A GET (or other method) with exactly the path and headers given (Host included), via node:http. */
export function request(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers: { host: `127.0.0.1:${port}`, ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function getJson<T = any>(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const r = await request(port, path, headers);
  return { status: r.status, body: JSON.parse(r.body.toString()) as T };
}
