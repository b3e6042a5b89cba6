/**
 * covd's web server: one uWebSockets.js app on the main thread serving the browser client, the
 * HTTP API, Prometheus metrics and the live WebSocket protocol (docs/protocol.md) for every target.
 *
 * Every HTTP request and WebSocket upgrade passes the same admission checks first (Host
 * allow-list, Origin, token, rate). Nothing taken from a request is ever joined onto a file
 * system path: assets come from an in-memory table, source files only via hub.sourcePath(), and
 * those only under the rules of ./source.ts (regular files, no symlink out of their directory).
 */
import { fileURLToPath } from 'node:url';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, us_socket_context_t } from 'uWebSockets.js';
import { loadAssets, makeAsset } from './assets.js';
import { defaultLimits, type WebLimits } from './limits.js';
import { Live, type Conn } from './live.js';
import { renderMetrics } from './metrics.js';
import { InputsRoutes } from './inputs-routes.js';
import { CompareRoutes } from './compare-routes.js';
import { BlockersRoutes } from './blockers-routes.js';
import { ConnectionCounter, HostPolicy, isLoopback, originAllowed, presentedToken, RateLimiter, TOKEN_COOKIE, tokenMatches } from './security.js';
import { ensureAbortHandler, error, json, sendCompressible, serveAsset, statusText, write, type Ctx } from './respond.js';
import { SourceRoute } from './source-route.js';
import { StartupError } from '../contracts/errors.js';
import { infoOf, SummaryCache, toJsonExport, toLcov } from './summary.js';
import type { StartWebServer, WebServer, WebServerOptions, WebStats } from './types.js';
import { loadUws } from './uws.js';
import { TARGET_ID } from '../contracts/ids.js';

export { UwsUnavailableError } from './uws.js';

/** The bundled client next to this build: dist/src/web/server.js -> dist/ui. */
export const defaultUiDir = fileURLToPath(new URL('../../ui/', import.meta.url));

/** The WebSocket endpoint of the live protocol. */
export const WS_PATH = '/ws';

const FALLBACK_INDEX = `<!doctype html><meta charset="utf-8"><title>covd</title>
<p>covd is running, but the browser client has not been built (run <code>npm run build</code>).
<p>API: <a href="/api/targets">/api/targets</a> · <a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a>
`;

export const startWebServer: StartWebServer = async (opts: WebServerOptions): Promise<WebServer> => {
  const uws = loadUws();
  const limits: WebLimits = { ...defaultLimits, ...opts.limits };
  const host = opts.host || '127.0.0.1';
  const log = opts.log.child({ part: 'web' });
  if (!isLoopback(host) && !opts.token) {
    throw new StartupError(`refusing to listen on ${host} without a token: anyone who can reach it could read your source code; pass --token or a token file, or listen on 127.0.0.1`, 'COVD_ERR_NEEDS_TOKEN');
  }
  const hub = opts.hub;
  const stats: WebStats = { clients: 0, messagesSent: 0, bytesSent: 0, resyncs: 0, behind: 0, dropped: 0, refused: {}, httpRequests: 0 };
  const refuse = (reason: string) => (stats.refused[reason] = (stats.refused[reason] ?? 0) + 1);

  const assets = loadAssets(opts.uiDir ?? defaultUiDir);
  if (!assets.has('/')) {
    log.warn('browser client not built; serving a placeholder page', { uiDir: opts.uiDir ?? defaultUiDir });
    const a = makeAsset('/', Buffer.from(FALLBACK_INDEX));
    assets.set('/', a);
    assets.set('/index.html', { ...a, path: '/index.html' });
  }

  const app: TemplatedApp = uws.App();
  const live = new Live(app, hub, limits, stats, log);
  const summaries = new SummaryCache(opts.exclude ?? []);
  const inputsRoutes = new InputsRoutes(hub, opts.inputs);
  const compareRoutes = new CompareRoutes(hub); // GET /api/targets/:a/compare/:b (src/web/compare-routes.ts)
  for (const [prefix, fn] of Object.entries(opts.compareSides ?? {})) compareRoutes.registerSide(prefix, fn);
  const blockersRoutes = new BlockersRoutes(hub, opts.callGraph ?? null); // GET /api/targets/:id/blockers (src/web/blockers-routes.ts)
  const sourceRoute = new SourceRoute(hub, limits, log);
  const httpRate = new RateLimiter(limits.httpRate, limits.httpRate * 2);
  const unauthRate = new RateLimiter(limits.unauthenticatedHttpRate, limits.unauthenticatedHttpRate * 2);
  const conns = new ConnectionCounter(limits.maxConnectionsPerAddress);
  const forget = (id: string) => summaries.delete(id);
  hub.on('removed', forget);

  let port = 0;
  let hostPolicy: HostPolicy;

  /** The admission checks shared by HTTP and upgrades; returns [status, reason] of a refusal. */
  const admit = (req: HttpRequest, addr: string, ctxCookie: { set?: string }): [number, string, string] | null => {
    const hostHeader = req.getHeader('host');
    if (!hostPolicy.allows(hostHeader)) return [421, 'host', `Host "${hostHeader.slice(0, 100)}" is not one this server answers to (use --allow-host to add one)`];
    if (!originAllowed(req.getHeader('origin'), hostHeader)) return [403, 'origin', 'cross-origin request refused'];
    // The token before the rate: every local user shares 127.0.0.1, so requests without the token
    // draw on buckets of their own and a flood of them cannot starve the clients that have it.
    if (opts.token) {
      const query = req.getQuery('token') ?? '';
      const given = presentedToken(req.getHeader('authorization'), req.getHeader('cookie'), query);
      if (!given || !tokenMatches(given, opts.token)) {
        if (!unauthRate.take(addr)) return [429, 'rate-unauthenticated', 'too many requests without a valid token'];
        return [401, 'token', 'a valid token is required (Authorization: Bearer, the covd_token cookie, or ?token=)'];
      }
      if (query && query === given) ctxCookie.set = `${TOKEN_COOKIE}=${encodeURIComponent(given)}; Path=/; HttpOnly; SameSite=Strict`;
    }
    if (!httpRate.take(addr)) return [429, 'rate', 'too many requests'];
    return null;
  };

  const addrOf = (res: HttpResponse) => Buffer.from(res.getRemoteAddressAsText()).toString();

  const serveTargetRoute = (res: HttpResponse, ctx: Ctx, id: string, sub: string | undefined) => {
    if (!TARGET_ID.test(id)) return error(res, ctx, 404, 'no such target');
    if (sub === 'source') return sourceRoute.serve(res, ctx, id);
    const t = hub.target(id);
    if (!t) return error(res, ctx, 404, `no target ${id}`);
    switch (sub) {
      case undefined: {
        const s = summaries.get(t);
        return json(res, ctx, 200, {
          ...infoOf(t),
          seq: t.seq,
          indexed: t.index !== null,
          totals: s?.totals ?? null,
          directories: t.index?.directories ?? [],
          files: s?.files ?? [],
          functions: s?.functions ?? [],
          ...(t.nodes ? { nodes: t.nodes } : {}), // fleet: every node's share (src/fleet)
        });
      }
      case 'history': {
        const since = ctx.query('since');
        if (since !== '' && !/^\d{1,16}$/.test(since)) return error(res, ctx, 400, 'since must be milliseconds since the epoch');
        return json(res, ctx, 200, { id, samples: hub.history(id, since === '' ? undefined : Number(since)) });
      }
      case 'coverage': {
        const format = ctx.query('format') || 'json';
        if (format !== 'lcov' && format !== 'json') return error(res, ctx, 400, 'format must be lcov or json');
        const library = ctx.query('library');
        if (library !== '' && library !== '0' && library !== '1') return error(res, ctx, 400, 'library must be 0 or 1');
        const s = summaries.get(t);
        if (!s) return error(res, ctx, 409, `target ${id} has no source index yet (state ${t.state}${t.error ? ': ' + t.error : ''})`);
        if (format === 'json') return json(res, ctx, 200, toJsonExport(t, s));
        return sendCompressible(res, ctx, 200, 'text/plain; charset=utf-8', Buffer.from(toLcov(t, s, { library: library === '1' })), [
          ['Cache-Control', 'no-store'],
          ['Content-Disposition', `attachment; filename="${t.name.replace(/[^A-Za-z0-9._-]/g, '_')}.info"`],
        ]);
      }
      default:
        return error(res, ctx, 404, 'unknown API path');
    }
  };

  const route = (res: HttpResponse, ctx: Ctx) => {
    const url = ctx.url;
    if (url === '/healthz') return json(res, ctx, 200, { ok: true, targets: hub.targets().length, clients: stats.clients });
    if (url === '/metrics') return write(res, ctx, 200, [['Content-Type', 'text/plain; version=0.0.4; charset=utf-8'], ['Cache-Control', 'no-store']], renderMetrics(hub, stats) + inputsRoutes.metrics());
    if (url === '/api/targets') return json(res, ctx, 200, { targets: hub.targets().map(infoOf) });
    if (inputsRoutes.handle(url, {
      json: (status, value) => json(res, ctx, status, value),
      error: (status, message) => error(res, ctx, status, message),
      send: (status, headers, body) => write(res, ctx, status, headers, body),
      later: () => ensureAbortHandler(res, ctx),
    })) return;
    if (blockersRoutes.handle(url, {
      json: (status, value) => json(res, ctx, status, value),
      error: (status, message) => error(res, ctx, status, message),
      send: (status, headers, body) => write(res, ctx, status, headers, body),
      later: () => ensureAbortHandler(res, ctx),
    })) return;
    if (compareRoutes.handle(url, ctx.query, {
      json: (status, value) => json(res, ctx, status, value),
      error: (status, message) => error(res, ctx, status, message),
      send: (status, headers, body) => sendCompressible(res, ctx, status, headers.find(([k]) => k === 'Content-Type')?.[1] ?? 'text/plain', body, headers.filter(([k]) => k !== 'Content-Type')),
      later: () => ensureAbortHandler(res, ctx),
    })) return;
    const m = /^\/api\/targets\/([^/]+)(?:\/(source|history|coverage))?$/.exec(url);
    if (m) return serveTargetRoute(res, ctx, m[1]!, m[2]);
    if (url.startsWith('/api/')) return error(res, ctx, 404, 'unknown API path');
    const a = assets.get(url);
    if (a) return serveAsset(res, ctx, a);
    // The client routes with the URL hash, so any other path is a plain 404.
    return error(res, ctx, 404, 'not found');
  };

  app.any('/*', (res, req) => {
    try {
      handle(res, req);
    } catch (err) {
      log.error('request failed', { err });
      res.cork(() => res.writeStatus('500 Internal Server Error').end('internal error\n', true));
    }
  });

  const handle = (res: HttpResponse, req: HttpRequest) => {
    stats.httpRequests++;
    const addr = addrOf(res);
    const cookie: { set?: string } = {};
    const refusal = admit(req, addr, cookie);
    const ctx: Ctx = {
      method: req.getMethod(),
      url: req.getUrl(),
      acceptEncoding: req.getHeader('accept-encoding'),
      ifNoneMatch: req.getHeader('if-none-match'),
      query: (() => {
        const q = new URLSearchParams(req.getQuery() ?? '');
        return (k: string) => q.get(k) ?? '';
      })(),
      aborted: false,
    };
    if (cookie.set) ctx.setCookie = cookie.set;
    if (refusal) {
      refuse(refusal[1]);
      return error(res, ctx, refusal[0], refusal[2]);
    }
    if (ctx.method !== 'get' && ctx.method !== 'head') return write(res, ctx, 405, [['Allow', 'GET, HEAD'], ['Content-Type', 'text/plain']], 'method not allowed\n');
    try {
      route(res, ctx);
    } catch (err) {
      log.error('request failed', { url: ctx.url, err });
      if (!ctx.aborted) error(res, ctx, 500, 'internal error');
    }
  };

  const guard = <A extends unknown[]>(what: string, fn: (...a: A) => void) => (...a: A) => {
    try {
      fn(...a);
    } catch (err) {
      log.error(`websocket ${what} handler failed`, { err });
    }
  };

  const upgrade = (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
    stats.httpRequests++;
    const addr = addrOf(res);
    const key = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    let refusal = admit(req, addr, {});
    if (!refusal && conns.get(addr) >= limits.maxConnectionsPerAddress) refusal = [429, 'connections', 'too many connections from this address'];
    if (!refusal && stats.clients >= limits.maxConnections) refusal = [503, 'connections', 'too many connections'];
    if (refusal) {
      refuse(refusal[1]);
      res.cork(() => {
        res.writeStatus(`${refusal[0]} ${statusText[refusal[0]]}`).writeHeader('Content-Type', 'text/plain; charset=utf-8').end(refusal[2] + '\n', true);
      });
      return;
    }
    res.upgrade(live.newConn(addr), key, protocol, extensions, context);
  };

  app.ws<Conn>(WS_PATH, {
    maxPayloadLength: limits.maxClientMessage,
    maxBackpressure: limits.maxBackpressure,
    closeOnBackpressureLimit: 1,
    idleTimeout: limits.idleTimeout,
    sendPingsAutomatically: true,
    compression: uws.DISABLED,
    upgrade: (res, req, context) => {
      try {
        upgrade(res, req, context);
      } catch (err) {
        // uWS aborts the process when a handler returns without answering.
        log.error('upgrade failed', { err });
        res.cork(() => res.writeStatus('500 Internal Server Error').end('internal error\n', true));
      }
    },
    // A bug in a handler must not take the daemon down: log it and carry on.
    open: guard('open', (ws) => {
      conns.tryAdd(ws.getUserData().addr);
      live.open(ws);
    }),
    message: guard('message', (ws, message, isBinary) => live.message(ws, message, isBinary)),
    drain: guard('drain', (ws) => live.drain(ws)),
    close: guard('close', (ws) => {
      conns.remove(ws.getUserData().addr);
      live.closed(ws);
    }),
  });

  // Exclusive: without it uSockets sets SO_REUSEPORT and a second daemon on the same port would
  // silently share it with the first. Sockets a previous daemon left in TIME-WAIT do not block this
  // bind; a port really held by another process is retried for `listenRetryMs` when asked to.
  // (The typings lack the host + options overload the addon has.)
  const listen = app.listen.bind(app) as unknown as (h: string, p: number, o: number, cb: (ls: us_listen_socket | false) => void) => void;
  const exclusive = (uws as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT;
  const tryListen = () => new Promise<us_listen_socket | false>((resolve) => listen(host, opts.port, exclusive, resolve));
  const deadline = Date.now() + (opts.listenRetryMs ?? 0);
  let ls = await tryListen();
  if (!ls && opts.port !== 0 && Date.now() < deadline) log.warn('port busy, retrying (is a previous daemon still shutting down?)', { host, port: opts.port, retryMs: opts.listenRetryMs });
  while (!ls && opts.port !== 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    ls = await tryListen();
  }
  if (!ls) {
    live.shutdown();
    throw new StartupError(
      `cannot listen on ${host}:${opts.port}: the address is in use or not available` +
        (opts.port !== 0 ? ' (is another covd or another server already listening there?)' : ''),
      'COVD_ERR_LISTEN',
    );
  }
  const listenSocket: us_listen_socket = ls;
  port = uws.us_socket_local_port(listenSocket as never);
  hostPolicy = new HostPolicy(host, port, opts.allowedHosts);
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `http://${urlHost}:${port}/`;
  log.info('web server listening', { url, ui: assets.has('/main.js') });

  let closed = false;
  return {
    port,
    url,
    stats,
    close: async () => {
      if (closed) return;
      closed = true;
      uws.us_listen_socket_close(listenSocket);
      live.shutdown();
      hub.off('removed', forget);
      (app as { close?: () => void }).close?.();
      await new Promise((r) => setImmediate(r));
    },
  };
};
