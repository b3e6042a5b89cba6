/**
 * Binding the port: a second server on a port in use must fail (never share it), and a server
 * that closes with live connections must leave the port free for an immediate restart.
 */
import { expect } from 'chai';
import WebSocket from 'ws';
import { startWebServer } from '../../src/web/server.js';
import type { WebServer } from '../../src/web/types.js';
import { TargetRegistry } from '../../src/daemon/registry.js';
import { quietLog } from './harness.js';

describe('web: listening', () => {
  const servers: WebServer[] = [];
  const start = async (port: number) => {
    const s = await startWebServer({ hub: new TargetRegistry(), host: '127.0.0.1', port, log: quietLog });
    servers.push(s);
    return s;
  };
  after(async () => { for (const s of servers) await s.close().catch(() => {}); });

  it('refuses a port another server holds instead of sharing it', async () => {
    const first = await start(0);
    let err: Error | undefined;
    await start(first.port).catch((e: Error) => { err = e; });
    expect(err, 'second listen on the same port').to.be.instanceOf(Error);
    expect(err!.message).to.contain(`127.0.0.1:${first.port}`);
  });

  it('frees the port on close even with tabs connected, so a restart binds at once', async () => {
    // A fixed port like the daemon's default: Linux refuses to rebind a port from the ephemeral
    // range (what port 0 hands out) while it has TIME-WAIT connections, whatever the options.
    let first: WebServer | undefined;
    for (let tries = 0; !first; tries++) {
      first = await start(20_000 + Math.floor(Math.random() * 10_000)).catch((e: Error) => { if (tries > 20) throw e; return undefined; });
    }
    const port = first.port;
    const tabs = await Promise.all(
      Array.from({ length: 5 }, () => new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { Origin: `http://127.0.0.1:${port}` } });
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      })),
    );
    await first.close();
    const again = await start(port);
    expect(again.port).to.equal(port);
    for (const t of tabs) t.terminate();
  });
});
