/**
 * The control socket's limits (src/daemon/control.ts): backpressure for clients that do not
 * read their replies, the request frame limit and linear frame accumulation, timeouts for
 * half-written and idle connections, and the connection cap. Each runs the real server on a
 * socket in a temp dir, with short timeouts where it waits for one.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { CONTROL_DEFAULTS, startControlServer, validateMessage, type ControlServerOptions } from '../../src/daemon/control.js';
import { request } from '../../src/daemon/client.js';
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME } from '../../src/bus/framing.js';
import { createLogger, type Logger } from '../../src/util/log.js';

const PAD = 'x'.repeat(2048); // a `list` reply of about 2 KB

/** Polls cond every 10 ms; true once it holds, false after ms. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until get() has not changed for quietMs (or maxMs passed); returns its last value. */
async function settled(get: () => number, quietMs: number, maxMs: number): Promise<number> {
  const end = Date.now() + maxMs;
  let last = get();
  let since = Date.now();
  while (Date.now() < end && Date.now() - since < quietMs) {
    await new Promise((r) => setTimeout(r, 50));
    const v = get();
    if (v !== last) { last = v; since = Date.now(); }
  }
  return last;
}

/** A raw client connection: replies decoded as they come, and when it closed. */
async function connect(path: string, read = true) {
  const sock = net.connect(path);
  const dec = new FrameDecoder();
  const replies: unknown[] = [];
  let closedAt = 0;
  sock.on('error', () => undefined);
  sock.on('close', () => { closedAt = Date.now(); });
  const startReading = () => { sock.on('data', (b: Buffer) => { replies.push(...dec.push(b)); }); sock.resume(); };
  if (read) startReading();
  else sock.pause(); // and so it sees no EOF either, until it reads
  await new Promise<void>((resolve) => { sock.once('connect', () => resolve()); sock.once('close', () => resolve()); });
  return {
    sock,
    replies,
    get closedAt() { return closedAt; },
    startReading,
    /** Sends msg and waits up to ms for its reply; undefined when none came. */
    async ask(msg: unknown, ms = 1000): Promise<unknown> {
      const n = replies.length;
      if (!sock.destroyed) sock.write(encodeFrame(msg));
      return (await until(() => replies.length > n, ms)) ? replies[n] : undefined;
    },
  };
}

describe('control socket limits', () => {
  let dir: string;
  let path: string;
  let closeAll: (() => Promise<void>)[];
  beforeEach(() => {
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-'));
    path = join(dir, 'c.sock');
    closeAll = [];
  });
  afterEach(async () => {
    for (const c of closeAll.reverse()) await c();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const quiet = createLogger({ level: 'silent' });

  async function serve(opts: ControlServerOptions = {}, log: Logger = quiet) {
    let handled = 0;
    const srv = await startControlServer(path, async (m) => ({ ok: true, type: m.type, n: handled++, pad: PAD }), log, opts);
    closeAll.push(() => srv.close());
    return { srv, handled: () => handled };
  }

  it('stops reading a client that pipelines requests without reading replies, and keeps answering others', async function () {
    this.timeout(30_000);
    const { handled } = await serve();
    const N = 200_000;
    const flood = Buffer.concat(new Array<Buffer>(N).fill(encodeFrame({ type: 'list' })));
    const rss0 = process.memoryUsage().rss;
    const hog = await connect(path, false);
    closeAll.push(async () => { hog.sock.destroy(); });
    hog.sock.write(flood);
    // Let the server go as far as it will: without backpressure it answers all N, 400 MB of replies.
    const done = await settled(handled, 500, 15_000);
    const t0 = Date.now();
    const reply = await request(path, { type: 'status' }, 1000);
    const took = Date.now() - t0;
    const grown = process.memoryUsage().rss - rss0;
    console.log(`      ${done} of ${N} requests handled, RSS grew ${(grown / 2 ** 20).toFixed(1)} MiB, the other client answered in ${took} ms`);
    expect(reply).to.include({ ok: true, type: 'status' });
    expect(took, 'a well-behaved client is answered meanwhile').to.be.below(1000);
    // About 1 MiB of unread replies plus the kernel's buffers, at 2 KB a reply.
    expect(done, 'requests handled for the client that reads nothing').to.be.below(5000);
    expect(grown, `RSS grew by ${(grown / 2 ** 20).toFixed(1)} MiB`).to.be.below(100 * 2 ** 20);
  });

  it('answers a late reader of pipelined requests in full and in order, then keeps the connection', async function () {
    this.timeout(20_000);
    const { handled } = await serve();
    const N = 3000;
    const c = await connect(path, false);
    closeAll.push(async () => { c.sock.destroy(); });
    c.sock.write(Buffer.concat(new Array<Buffer>(N).fill(encodeFrame({ type: 'list' }))));
    const before = await settled(handled, 300, 10_000);
    expect(before, 'the server waited for the client to read').to.be.below(N);
    const dec = new FrameDecoder();
    const got: { n: number }[] = [];
    c.sock.on('data', (b: Buffer) => { got.push(...(dec.push(b) as { n: number }[])); });
    c.sock.resume();
    expect(await until(() => got.length === N, 10_000), `${got.length} of ${N} replies`).to.equal(true);
    expect(got.every((r, i) => r.n === i), 'replies in request order').to.equal(true);
    // The same connection still works.
    c.sock.write(encodeFrame({ type: 'status' }));
    expect(await until(() => got.length === N + 1, 1000)).to.equal(true);
    expect(got[N]).to.include({ ok: true, type: 'status', n: N });
  });

  describe('frames', () => {
    it('decodes a frame split into 1-byte chunks, and frames across chunk boundaries', () => {
      const msgs = [{ type: 'list' }, { type: 'coverage', id: '0123456789abcdef', exe: '/a', file: '/b', pid: 7 }, { ok: true, n: [1, 2, 3] }];
      const bytes = Buffer.concat(msgs.map((m) => encodeFrame(m)));
      const dec = new FrameDecoder();
      const out: unknown[] = [];
      for (let i = 0; i < bytes.length; i++) {
        const got = dec.push(bytes.subarray(i, i + 1));
        out.push(...got);
        expect(dec.pending, `after byte ${i}`).to.equal(got.length ? 0 : (i + 1) - Buffer.concat(msgs.slice(0, out.length).map((m) => encodeFrame(m))).length);
      }
      expect(out).to.deep.equal(msgs);
      expect(dec.pending).to.equal(0);
      // Uneven chunks that each end mid-frame.
      const dec2 = new FrameDecoder();
      const out2: unknown[] = [];
      for (let i = 0; i < bytes.length; i += 7) out2.push(...dec2.push(bytes.subarray(i, i + 7)));
      expect(out2).to.deep.equal(msgs);
    });

    it('accumulates a large frame in many chunks in linear time', function () {
      this.timeout(60_000);
      const body = new Uint8Array(8 << 20).map((_, i) => i * 31);
      const frame = encodeFrame(body);
      const dec = new FrameDecoder();
      const t0 = process.hrtime.bigint();
      let out: unknown[] = [];
      // 8192 chunks: re-joining the partial frame on each one copies 32 GiB, joining once copies 8 MiB.
      for (let i = 0; i < frame.length; i += 1024) out = out.concat(dec.push(frame.subarray(i, i + 1024)));
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      expect(out).to.have.length(1);
      expect(Buffer.from(out[0] as Uint8Array).equals(Buffer.from(body))).to.equal(true);
      expect(ms, `${ms.toFixed(0)} ms`).to.be.below(1000);
    });

    it('refuses an oversized length prefix as soon as it arrives', () => {
      const dec = new FrameDecoder({ maxFrame: 64 << 10 });
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32LE((64 << 10) + 1, 0);
      expect(dec.push(prefix.subarray(0, 2))).to.deep.equal([]);
      expect(() => dec.push(prefix.subarray(2))).to.throw(FrameError, /65537 bytes exceeds the 65536-byte limit/);
      // At the limit is fine; the default limit is still MAX_FRAME (the client reads large `list` replies).
      const atLimit = encodeFrame('y'.repeat((64 << 10) - 3)); // str 16: 3 bytes of header
      expect(atLimit.length - 4).to.equal(64 << 10);
      expect(new FrameDecoder({ maxFrame: 64 << 10 }).push(atLimit)).to.have.length(1);
      expect(new FrameDecoder().maxFrame).to.equal(MAX_FRAME);
    });

    it('fits the largest valid request in the server frame limit, and refuses a larger frame at its prefix', async () => {
      const long = '/' + '€'.repeat(4094); // 4095 UTF-16 units, 12,283 bytes of UTF-8
      const biggest = { type: 'coverage', id: '0123456789abcdef', exe: long, file: long, pid: 0xffffffff };
      expect(validateMessage(biggest)).to.equal(undefined);
      expect(encodeFrame(biggest).length - 4).to.be.below(64 << 10);
      await serve();
      // Only the prefix of a 1 MiB frame: refused at once, not after waiting for the body.
      const c = await connect(path);
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32LE(1 << 20, 0);
      const t0 = Date.now();
      c.sock.write(prefix);
      expect(await until(() => c.closedAt > 0, 2000), 'closed').to.equal(true);
      expect(c.closedAt - t0).to.be.below(1000);
      expect(c.replies[0]).to.deep.include({ ok: false });
      expect((c.replies[0] as { error: string }).error).to.match(/exceeds the 65536-byte limit/);
      expect((await request(path, { type: 'list' })).ok).to.equal(true);
      // The defaults the header comment of control.ts (and the docs) state.
      expect(CONTROL_DEFAULTS).to.deep.equal({ maxFrame: 64 << 10, maxQueued: 64, maxUnwritten: 1 << 20, partialTimeoutMs: 10_000, idleTimeoutMs: 600_000, maxConnections: 1024 });
    });
  });

  it('closes half-written, slow-written and non-reading connections after the partial timeout, idle ones later', async function () {
    this.timeout(20_000);
    await serve({ partialTimeoutMs: 300, idleTimeoutMs: 2000 });
    const t0 = Date.now();
    const frame = encodeFrame({ type: 'coverage', id: '0123456789abcdef', exe: '/' + 'a'.repeat(200), file: '/b' });
    // Half a frame, then nothing.
    const half = await connect(path);
    half.sock.write(frame.subarray(0, frame.length >> 1));
    // One byte every 50 ms: always active, never finishing a frame in time.
    const slow = await connect(path);
    let i = 0;
    const drip = setInterval(() => { if (!slow.sock.destroyed && i < frame.length) slow.sock.write(frame.subarray(i, ++i)); }, 50);
    // Pipelines requests and reads none of the replies.
    const deaf = await connect(path, false);
    deaf.sock.write(Buffer.concat(new Array<Buffer>(5000).fill(encodeFrame({ type: 'list' }))));
    // A finished request, then silence: the agent's connection between notifications.
    const idle = await connect(path);
    expect(await idle.ask({ type: 'status' })).to.include({ ok: true });
    closeAll.push(async () => { clearInterval(drip); for (const c of [half, slow, deaf, idle]) c.sock.destroy(); });

    const cut = await until(() => half.closedAt > 0 && slow.closedAt > 0, 5000);
    expect(cut, `partial connections closed (half ${half.closedAt - t0}, slow ${slow.closedAt - t0})`).to.equal(true);
    for (const [name, c] of Object.entries({ half, slow })) expect(c.closedAt - t0, name).to.be.within(250, 2500);
    // The deaf client sees its EOF only once it reads: it finds the replies sent before the
    // server cut it off (about 1 MiB), then the end, not 5000 replies.
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 1000 - Date.now())));
    deaf.startReading();
    expect(await until(() => deaf.closedAt > 0, 2000), `non-reading connection closed (${deaf.replies.length} replies)`).to.equal(true);
    expect(deaf.replies.length).to.be.within(1, 2000);
    expect(i, 'the slow writer never finished its frame').to.be.below(frame.length);
    expect(idle.closedAt, 'an idle connection outlives the partial timeout').to.equal(0);
    expect(await idle.ask({ type: 'status' })).to.include({ ok: true });
    const asked = Date.now();
    expect(await until(() => idle.closedAt > 0, 5000), 'idle connection closed after the idle timeout').to.equal(true);
    expect(idle.closedAt - asked).to.be.within(1800, 4000);
  });

  it('closes connections beyond the cap at once, warns once, and keeps the others working', async function () {
    this.timeout(20_000);
    const lines: string[] = [];
    await serve({ maxConnections: 4 }, createLogger({ level: 'warn', write: (l) => lines.push(l) }));
    const kept: Awaited<ReturnType<typeof connect>>[] = [];
    for (let k = 0; k < 4; k++) kept.push(await connect(path));
    closeAll.push(async () => { for (const c of kept) c.sock.destroy(); });
    for (const c of kept) expect(await c.ask({ type: 'status' })).to.include({ ok: true });
    const extra: Awaited<ReturnType<typeof connect>>[] = [];
    for (let k = 0; k < 10; k++) extra.push(await connect(path));
    closeAll.push(async () => { for (const c of extra) c.sock.destroy(); });
    const t0 = Date.now();
    expect(await until(() => extra.every((c) => c.closedAt > 0), 2000), 'connections over the cap closed').to.equal(true);
    expect(Date.now() - t0).to.be.below(1000);
    for (const c of extra) expect(c.replies).to.deep.equal([]);
    for (const c of kept) expect(await c.ask({ type: 'list' })).to.include({ ok: true, type: 'list' });
    const warnings = lines.filter((l) => l.includes('too many connections'));
    expect(warnings, 'one warning for the burst').to.have.length(1);
    expect(JSON.parse(warnings[0]!)).to.include({ maxConnections: 4 });
    // A freed slot is taken again.
    kept.pop()!.sock.destroy();
    let again: Awaited<ReturnType<typeof connect>> | undefined;
    for (let tries = 0; tries < 50 && !again; tries++) {
      const c = await connect(path);
      closeAll.push(async () => { c.sock.destroy(); });
      if (await c.ask({ type: 'status' }, 200)) again = c;
    }
    expect(again, 'a new connection once one closed').to.not.equal(undefined);
  });
});
