/**
 * Hostile input: refused with a clear status, and the server keeps serving a live target to the
 * tabs that behave. The fuzzer runs throughout so deltas keep flowing.
 */
import { expect } from 'chai';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Packr } from 'msgpackr';
import { startWebServer } from '../../src/web/server.js';
import type { WebServer } from '../../src/web/types.js';
import { packrOptions } from '../../src/contracts/msgpack.js';
import { LiveTarget, quietLog, request, Tab, until } from './harness.js';

const packr = new Packr(packrOptions);

/** Waits for a tab's connection to end (opened or refused). */
async function outcome(tab: Tab): Promise<string> {
  try {
    await tab.opened;
    return 'open';
  } catch (e) {
    return (e as Error).message;
  }
}

function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

const upgradeRequest = (port: number, extra = '') =>
  `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

describe('web: hostile input is refused and serving continues', function () {
  this.timeout(240_000);
  let target: LiveTarget;
  let srv: WebServer;
  let watcher: Tab;

  before(async () => {
    target = await LiveTarget.start({ tickMs: 100 });
    srv = await startWebServer({ hub: target.registry, host: '127.0.0.1', port: 0, log: quietLog, limits: { httpRate: 1_000_000 } });
    watcher = new Tab(srv.url, target.id);
    await watcher.opened;
    watcher.subscribe();
    await until(() => watcher.snapshots === 1, 'watcher snapshot');
  });

  after(async () => {
    watcher?.close();
    await srv?.close();
    await target?.close();
  });

  /** The watcher still gets deltas in order, and a new tab can subscribe. */
  async function stillServing() {
    const seq = watcher.seq;
    await until(() => watcher.seq >= seq + 2, 'the watcher to keep receiving deltas');
    expect(watcher.gaps).to.equal(0);
    expect(watcher.closed).to.equal(null);
    const fresh = new Tab(srv.url, target.id);
    await fresh.opened;
    fresh.subscribe();
    await until(() => fresh.snapshots === 1, 'a new tab to get a snapshot');
    fresh.close();
    expect((await request(srv.port, '/healthz')).status).to.equal(200);
  }

  it('refuses a foreign Host header (DNS rebinding) on requests and upgrades', async () => {
    for (const host of ['evil.example', `evil.example:${srv.port}`, `127.0.0.1:${srv.port + 1}`, 'a b', `localhost.evil.example:${srv.port}`]) {
      const r = await request(srv.port, '/api/targets', { host });
      expect(r.status, `Host: ${host}`).to.be.oneOf([400, 421]);
    }
    for (const host of [`localhost:${srv.port}`, `127.0.0.1:${srv.port}`, 'localhost', `[::1]:${srv.port}`]) {
      expect((await request(srv.port, '/healthz', { host })).status, `Host: ${host}`).to.equal(200);
    }
    // No Host at all (HTTP/1.0 style).
    const s = await rawSocket(srv.port);
    s.write('GET /api/targets HTTP/1.0\r\n\r\n');
    const reply = await new Promise<string>((r) => {
      let d = '';
      s.on('data', (b) => {
        d += b;
        if (d.includes('\r\n\r\n')) s.destroy();
      });
      s.on('close', () => r(d));
      s.on('error', () => r(d));
      // uWS does not answer a request without Host at all; give it a moment to (not) answer.
      setTimeout(() => s.destroy(), 1500);
    });
    expect(reply).to.not.match(/^HTTP\/1\.[01] 200/);
    expect(reply).to.not.include('"targets"');
    const tab = new Tab(srv.url, target.id, {}, { headers: { host: `evil.example:${srv.port}` } });
    expect(await outcome(tab)).to.match(/421/);
    await stillServing();
  });

  it('refuses WebSocket upgrades and requests from another origin', async () => {
    for (const origin of ['http://evil.example', `http://evil.example:${srv.port}`, 'null', `https://127.0.0.1:${srv.port + 1}`, `file://${srv.port}`]) {
      expect(await outcome(new Tab(srv.url, target.id, {}, { origin })), origin).to.match(/403/);
    }
    expect((await request(srv.port, '/api/targets', { origin: 'http://evil.example' })).status).to.equal(403);
    const same = new Tab(srv.url, target.id, {}, { origin: `http://127.0.0.1:${srv.port}` });
    expect(await outcome(same)).to.equal('open');
    same.close();
    expect(srv.stats.refused.origin).to.be.greaterThan(0);
    await stillServing();
  });

  it('refuses oversize frames and garbage or malformed messages by closing that connection only', async () => {
    const big = new Tab(srv.url, target.id);
    await big.opened;
    big.ws.send(Buffer.alloc(64 * 1024, 0x41));
    await until(() => big.closed !== null, 'the oversize sender to be closed');

    const garbage: Buffer[] = [
      Buffer.from([0xc1]),
      randomBytes(300),
      Buffer.from('GET / HTTP/1.1'),
      packr.pack([1, 2, 3]),
      packr.pack('sub'),
      packr.pack({ t: 'sub', id: 5 }),
      packr.pack({ t: 'sub', id: 'x'.repeat(1000) }),
      packr.pack({ t: 'sub', id: 'ok', since: -1 }),
      packr.pack({ t: 'rm -rf' }),
      packr.pack(new Uint8Array(10)),
    ];
    for (const [i, g] of [...garbage, Buffer.from('{"t":"ping"}')].entries()) {
      const tab = new Tab(srv.url, target.id);
      await tab.opened;
      // The last one, JSON in a text frame, is not the protocol either.
      tab.ws.send(g, { binary: i < garbage.length });
      await until(() => tab.closed !== null, 'the garbage sender to be closed');
      expect(tab.errors, g.toString('hex').slice(0, 20)).to.deep.equal(['bad-message']);
      expect(tab.closed!.code).to.equal(1007);
    }
    // A frame header claiming an absurd length, on a raw socket.
    const s = await rawSocket(srv.port);
    s.write(upgradeRequest(srv.port));
    await new Promise((r) => s.once('data', r));
    const hdr = Buffer.from([0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4]);
    s.write(hdr);
    await new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));
    const unknown = new Tab(srv.url, target.id);
    await unknown.opened;
    unknown.send({ t: 'sub', id: 'ffffffffffffffff' });
    await until(() => unknown.errors.length > 0, 'an error for an unknown target');
    expect(unknown.errors).to.deep.equal(['no-such-target']);
    expect(unknown.closed).to.equal(null);
    unknown.close();
    await stillServing();
  });

  it('survives thousands of connections opened and dropped at every stage', async () => {
    const before = srv.stats.clients;
    const N = 3000;
    const stages = [
      (s: Socket) => s.destroy(),
      (s: Socket) => { s.write('GET /api/tar'); s.destroy(); },
      (s: Socket) => { s.write(upgradeRequest(srv.port)); s.destroy(); },
      (s: Socket) => { s.write(randomBytes(512)); s.end(); },
      (s: Socket) => { s.write(upgradeRequest(srv.port)); s.once('data', () => { s.write(packr.pack({ t: 'sub', id: target.id })); s.destroy(); }); },
      (s: Socket) => { s.write(upgradeRequest(srv.port)); s.once('data', () => s.destroy()); },
      (s: Socket) => { s.write(`GET /api/targets/${target.id} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\n\r\n`); s.once('data', () => s.destroy()); },
    ];
    for (let i = 0; i < N; i += 200) {
      await Promise.all(
        Array.from({ length: Math.min(200, N - i) }, async (_, k) => {
          const s = await rawSocket(srv.port);
          s.on('error', () => {});
          const done = new Promise<void>((r) => s.once('close', () => r()));
          stages[(i + k) % stages.length]!(s);
          const t = setTimeout(() => s.destroy(), 5000);
          await done;
          clearTimeout(t);
        }),
      );
    }
    await until(() => srv.stats.clients === before, 'every dropped WebSocket to be accounted for');
    await stillServing();
  });

  it('limits connections per address and the request rate', async () => {
    const small = await startWebServer({ hub: target.registry, host: '127.0.0.1', port: 0, log: quietLog, limits: { maxConnectionsPerAddress: 3, httpRate: 20 } });
    try {
      const tabs = [0, 1, 2].map(() => new Tab(small.url, target.id));
      for (const t of tabs) expect(await outcome(t)).to.equal('open');
      expect(await outcome(new Tab(small.url, target.id))).to.match(/429/);
      tabs[0]!.close();
      await until(() => small.stats.clients === 2, 'a slot to free up');
      const again = new Tab(small.url, target.id);
      expect(await outcome(again)).to.equal('open');
      const statuses = await Promise.all(Array.from({ length: 100 }, () => request(small.port, '/healthz').then((r) => r.status)));
      expect(statuses).to.include(429);
      expect(statuses).to.include(200);
      expect(small.stats.refused.rate).to.be.greaterThan(0);
      for (const t of [...tabs, again]) t.close();
    } finally {
      await small.close();
    }
  });

  it('requires the token on every request and upgrade when one is set', async () => {
    const token = 'correct-horse-' + randomBytes(8).toString('hex');
    const s = await startWebServer({ hub: target.registry, host: '127.0.0.1', port: 0, log: quietLog, token });
    try {
      expect((await request(s.port, '/healthz')).status).to.equal(401);
      expect((await request(s.port, '/')).status).to.equal(401);
      expect((await request(s.port, `/api/targets/${target.id}/source?file=0`)).status).to.equal(401);
      expect((await request(s.port, '/metrics', { authorization: 'Bearer wrong' })).status).to.equal(401);
      expect((await request(s.port, '/metrics', { authorization: `Bearer ${token}` })).status).to.equal(200);
      const viaQuery = await request(s.port, `/?token=${token}`);
      expect(viaQuery.status).to.equal(200);
      const cookie = String(viaQuery.headers['set-cookie']).split(';')[0]!;
      expect(cookie).to.equal(`covd_token=${token}`);
      expect((await request(s.port, '/api/targets', { cookie })).status).to.equal(200);
      expect((await request(s.port, '/api/targets', { cookie: 'covd_token=nope' })).status).to.equal(401);
      expect(await outcome(new Tab(s.url, target.id))).to.match(/401/);
      const ok = new Tab(s.url, target.id, {}, { headers: { cookie } });
      expect(await outcome(ok)).to.equal('open');
      ok.subscribe();
      await until(() => ok.snapshots === 1, 'snapshot with a token');
      ok.close();
      expect(s.stats.refused.token).to.be.greaterThan(0);
    } finally {
      await s.close();
    }
    let err: Error | undefined;
    await startWebServer({ hub: target.registry, host: '0.0.0.0', port: 0, log: quietLog }).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/without a token/);
    await stillServing();
  });
});
