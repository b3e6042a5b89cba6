/**
 * Admission with a token: the token is checked before the rate, and requests without it draw on
 * buckets of their own, so a local flood of them (every local user shares 127.0.0.1) cannot make
 * the clients that have the token fail with 429.
 */
import { expect } from 'chai';
import { TargetRegistry } from '../../src/daemon/registry.js';
import { startWebServer } from '../../src/web/server.js';
import type { WebServer } from '../../src/web/types.js';
import { quietLog, request, Tab, until } from './harness.js';

const TOKEN = 'admission-test-token';
const bearer = { authorization: `Bearer ${TOKEN}` };

describe('web: a flood without the token does not starve clients with it', function () {
  this.timeout(60_000);
  let srv: WebServer;

  before(async () => {
    // Default limits: the ones a daemon runs with.
    srv = await startWebServer({ hub: new TargetRegistry(), host: '127.0.0.1', port: 0, log: quietLog, token: TOKEN });
  });

  after(async () => {
    await srv?.close();
  });

  it('answers every authenticated request while unauthenticated ones get 401, then 429', async () => {
    const unauth: { status: number; at: number }[] = [];
    let stop = false;
    // Bounded: at most 3000 requests in at most 15 s, 16 at a time.
    const deadline = Date.now() + 15_000;
    const flood = (async () => {
      while (!stop && unauth.length < 3000 && Date.now() < deadline) {
        const batch = await Promise.all(Array.from({ length: 16 }, (_, i) => request(srv.port, i % 2 ? '/api/targets' : '/healthz', i % 4 === 3 ? { authorization: 'Bearer wrong' } : {})));
        for (const r of batch) unauth.push({ status: r.status, at: Date.now() });
      }
    })();
    await until(() => unauth.some((r) => r.status === 429), 'the flood to be rate-limited', 15_000, 10);

    const authStart = Date.now();
    const auth: number[] = [];
    for (let i = 0; i < 49; i++) {
      auth.push((await request(srv.port, i % 2 ? '/api/targets' : '/metrics', bearer)).status);
      await new Promise((r) => setTimeout(r, 10));
    }
    // A WebSocket upgrade with the token gets through too.
    const tab = new Tab(srv.url, 'none', {}, { headers: bearer });
    const upgraded = await tab.opened.then(() => 'open', (e: Error) => e.message);
    tab.close();
    const authEnd = Date.now();
    stop = true;
    await flood;

    expect(auth, 'authenticated statuses').to.deep.equal(Array(49).fill(200));
    expect(upgraded).to.equal('open');
    // The flood was being refused all the while.
    expect(unauth.filter((r) => r.status === 429 && r.at >= authStart && r.at <= authEnd).length).to.be.greaterThan(0);
    const statuses = new Set(unauth.map((r) => r.status));
    expect([...statuses].sort()).to.deep.equal([401, 429]);
    expect(srv.stats.refused['rate-unauthenticated']).to.be.greaterThan(0);
    expect(srv.stats.refused.rate).to.equal(undefined);
    // Without the token an upgrade is still refused (rate-limited or not).
    const bad = new Tab(srv.url, 'none');
    expect(await bad.opened.then(() => 'open', (e: Error) => e.message)).to.match(/401|429/);
  });

  it('still limits clients with the token, apart from those without it', async () => {
    const s = await startWebServer({ hub: new TargetRegistry(), host: '127.0.0.1', port: 0, log: quietLog, token: TOKEN, limits: { httpRate: 5 } });
    try {
      const statuses = await Promise.all(Array.from({ length: 40 }, () => request(s.port, '/healthz', bearer).then((r) => r.status)));
      expect(statuses).to.include(200).and.include(429);
      expect(new Set(statuses).size).to.equal(2);
      // Their bucket is empty; one without the token is told what it lacks, not to slow down.
      expect((await request(s.port, '/healthz')).status).to.equal(401);
      expect(s.stats.refused.rate).to.be.greaterThan(0);
    } finally {
      await s.close();
    }
  });
});
