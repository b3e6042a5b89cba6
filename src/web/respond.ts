/**
 * Writing HTTP responses on uWebSockets.js: the status line, the security headers every response
 * carries, the token cookie, HEAD, JSON and errors, and gzip off the main thread. A response is
 * written at most once, and never after the client went away.
 */
import { gzip } from 'node:zlib';
import type { HttpResponse } from 'uWebSockets.js';
import { pickEncoding, type Asset } from './assets.js';

/** What a handler needs from the request, copied out (uWS requests die when the handler returns). */
export interface Ctx {
  method: string;
  url: string;
  acceptEncoding: string;
  ifNoneMatch: string;
  query: (key: string) => string;
  setCookie?: string;
  aborted: boolean;
  /** Set once a response went out: a second write (say, a 500 after a failure late in a handler) is dropped, not thrown. */
  responded?: boolean;
}

export const statusText: Record<number, string> = {
  200: 'OK', 204: 'No Content', 304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 409: 'Conflict', 413: 'Content Too Large', 421: 'Misdirected Request', 429: 'Too Many Requests',
  500: 'Internal Server Error', 503: 'Service Unavailable',
};

/** Bodies smaller than this go out as they are: gzip would save little and cost a thread hop. */
export const GZIP_FROM_BYTES = 16 * 1024;

const securityHeaders: [string, string][] = [
  ['X-Content-Type-Options', 'nosniff'],
  ['Referrer-Policy', 'no-referrer'],
  ['X-Frame-Options', 'DENY'],
  ['Cross-Origin-Resource-Policy', 'same-origin'],
];
const CSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

export function write(res: HttpResponse, ctx: Ctx, status: number, headers: [string, string][], body: Buffer | string) {
  if (ctx.aborted || ctx.responded) return;
  ctx.responded = true;
  res.cork(() => {
    res.writeStatus(`${status} ${statusText[status] ?? ''}`);
    for (const [k, v] of securityHeaders) res.writeHeader(k, v);
    for (const [k, v] of headers) res.writeHeader(k, v);
    if (ctx.setCookie) res.writeHeader('Set-Cookie', ctx.setCookie);
    // uWS 20.30 leaves a response open after endWithoutBody(length): write the length ourselves.
    if (ctx.method === 'head' && status !== 304) res.writeHeader('Content-Length', String(Buffer.byteLength(body)));
    if (ctx.method === 'head' || status === 304) res.endWithoutBody();
    else res.end(body);
  });
}

export const json = (res: HttpResponse, ctx: Ctx, status: number, value: unknown, extra: [string, string][] = []) =>
  sendCompressible(res, ctx, status, 'application/json; charset=utf-8', Buffer.from(JSON.stringify(value)), [['Cache-Control', 'no-store'], ...extra]);

export const error = (res: HttpResponse, ctx: Ctx, status: number, message: string) => json(res, ctx, status, { error: message, status });

/** Sends a body, gzipped off the main thread when it is large and the client accepts gzip. */
export function sendCompressible(res: HttpResponse, ctx: Ctx, status: number, type: string, body: Buffer, headers: [string, string][]) {
  const hs: [string, string][] = [['Content-Type', type], ['Vary', 'Accept-Encoding'], ...headers];
  if (body.length < GZIP_FROM_BYTES || pickEncoding(ctx.acceptEncoding, { gzip: body }) !== 'gzip') return write(res, ctx, status, hs, body);
  ensureAbortHandler(res, ctx);
  gzip(body, (err, gz) => {
    if (err) write(res, ctx, status, hs, body);
    else write(res, ctx, status, [...hs, ['Content-Encoding', 'gzip']], gz);
  });
}

/** Must run before a response is answered asynchronously: uWS requires an abort handler then, and only one. */
export function ensureAbortHandler(res: HttpResponse, ctx: Ctx) {
  if ((res as { covdAbort?: boolean }).covdAbort) return;
  (res as { covdAbort?: boolean }).covdAbort = true;
  res.onAborted(() => (ctx.aborted = true));
}

/** A file of the bundled client, precompressed, revalidated by its ETag; pages get the Content-Security-Policy. */
export function serveAsset(res: HttpResponse, ctx: Ctx, a: Asset) {
  const headers: [string, string][] = [['Content-Type', a.type], ['ETag', a.etag], ['Cache-Control', 'no-cache'], ['Vary', 'Accept-Encoding']];
  if (a.type.startsWith('text/html')) headers.push(['Content-Security-Policy', CSP]);
  if (ctx.ifNoneMatch && ctx.ifNoneMatch.split(',').some((t) => t.trim() === a.etag || t.trim() === '*')) return write(res, ctx, 304, headers, '');
  const enc = pickEncoding(ctx.acceptEncoding, a);
  if (enc !== 'identity') headers.push(['Content-Encoding', enc]);
  write(res, ctx, 200, headers, enc === 'br' ? a.br! : enc === 'gzip' ? a.gzip! : a.identity);
}
