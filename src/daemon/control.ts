/**
 * The control socket: a Unix domain socket (mode 0600, so only this user can talk to it)
 * speaking the frames of src/bus/framing.ts. Each request frame gets one reply frame,
 * { ok: true, ... } or { ok: false, error }. The agent sends `coverage` and may hang up
 * without reading; clients (`covd add/list/status/remove`) read the reply.
 *
 * A stale socket file left by a killed daemon is removed at start; a live one (something
 * answers a connect) is an error, so two daemons never fight over one socket.
 *
 * Limits (ControlServerOptions), so no peer can make the daemon buffer without bound:
 * - a request frame over 64 KiB is refused as soon as its length prefix arrives (the largest
 *   valid request, a `coverage` with two 4095-character paths, is under 25 KiB of UTF-8);
 * - requests on one connection are handled one at a time; past 64 waiting requests or 1 MiB
 *   of replies the peer has not read, the connection is no longer read (nor handled) until
 *   its replies drain, so a client that pipelines without reading holds the daemon's memory flat;
 * - a request frame must arrive whole within 10 s of its first byte, and a peer that takes
 *   none of its unread replies for 10 s is cut off; a connection with nothing pending is
 *   closed after 10 min without traffic (the agent keeps one open for its whole life, mostly
 *   idle, and reconnects by itself when it finds it closed);
 * - at most 1024 connections at once; more are closed at once, with a warning at most every 5 s.
 */
import net from 'node:net';
import { chmodSync, mkdirSync, unlinkSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { encodeFrame, FrameDecoder, FrameError } from '../bus/framing.js';
import type { BusMessage } from '../bus/messages.js';
import type { Logger } from '../util/log.js';
import { isCoverageId } from '../contracts/ids.js';
import { codeOf, StartupError } from '../contracts/errors.js';

/** A reply; a refusal carries the failure's stable code (contracts/errors.ts, docs/protocol.md). */
export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: string; code?: string };
export type ControlHandler = (msg: BusMessage) => Promise<ControlReply>;

const KNOWN = new Set(['coverage', 'remove', 'exe-changed', 'source-changed', 'shutdown', 'list', 'status', 'inputs', 'crashes', 'input', 'fleet']);

/** Checks a decoded frame is a well-formed BusMessage; returns a reason when it is not. */
export function validateMessage(m: unknown): string | undefined {
  if (typeof m !== 'object' || m === null) return 'message is not a map';
  const o = m as Record<string, unknown>;
  if (typeof o.type !== 'string' || !KNOWN.has(o.type)) return `unknown message type ${JSON.stringify(o.type)}`;
  const str = (k: string) => typeof o[k] === 'string' && (o[k] as string).length > 0 && (o[k] as string).length < 4096;
  switch (o.type) {
    case 'coverage':
      if (!str('id') || !isCoverageId(o.id)) return 'coverage: id must be 16 lower-case hex digits';
      if (!str('exe') || !(o.exe as string).startsWith('/')) return 'coverage: exe must be an absolute path';
      if (!str('file') || !(o.file as string).startsWith('/')) return 'coverage: file must be an absolute path';
      if (o.aflOut !== undefined && (!str('aflOut') || !(o.aflOut as string).startsWith('/'))) return 'coverage: aflOut must be an absolute path';
      return undefined;
    case 'remove':
      return str('id') ? undefined : 'remove: id required';
    case 'exe-changed':
      return str('exe') ? undefined : 'exe-changed: exe required';
    case 'source-changed':
      return str('path') ? undefined : 'source-changed: path required';
    case 'inputs':
      if (!str('id')) return 'inputs: id required';
      if (o.file !== undefined && !str('file')) return 'inputs: file must be a path';
      if (o.line !== undefined && !(Number.isInteger(o.line) && (o.line as number) > 0)) return 'inputs: line must be a positive integer';
      return undefined;
    case 'crashes':
      return str('id') ? undefined : 'crashes: id required';
    case 'input':
      return str('id') && typeof o.hash === 'string' && /^[0-9a-f]{40}$/.test(o.hash) ? undefined : 'input: id and hash (40 hex digits) required';
    default:
      return undefined;
  }
}

async function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

export interface ControlServerOptions {
  /** Largest request frame body, in bytes. */
  maxFrame?: number;
  /** Requests waiting on one connection before it is no longer read. */
  maxQueued?: number;
  /** Reply bytes the peer has not taken before its connection is no longer read nor handled. */
  maxUnwritten?: number;
  /** How long a partial request frame, or unread replies without progress, may be held (0: forever). */
  partialTimeoutMs?: number;
  /** How long a connection with nothing pending may go without traffic (0: forever). */
  idleTimeoutMs?: number;
  /** Connections at once; more are closed at once. */
  maxConnections?: number;
}

export const CONTROL_DEFAULTS: Required<ControlServerOptions> = {
  maxFrame: 64 << 10,
  maxQueued: 64,
  maxUnwritten: 1 << 20,
  partialTimeoutMs: 10_000,
  idleTimeoutMs: 10 * 60_000,
  maxConnections: 1024,
};

const DROP_WARN_MS = 5000;

export async function startControlServer(path: string, handler: ControlHandler, log: Logger, opts: ControlServerOptions = {}): Promise<ControlServer> {
  const o = { ...CONTROL_DEFAULTS, ...opts };
  checkSocketDir(dirname(path));
  let exists = false;
  try { exists = lstatSync(path).isSocket(); } catch { /* absent */ }
  if (exists) {
    if (await socketInUse(path)) throw new StartupError(`another daemon is listening on ${path}`, 'COVD_ERR_SOCKET_IN_USE');
    unlinkSync(path);
  }
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => { /* peers (the agent) may hang up at any time */ });
    const dec = new FrameDecoder({ maxFrame: o.maxFrame });
    // Decoded requests not yet handled, from `head` on. Handled one at a time, so replies go
    // out in request order.
    let backlog: unknown[] = [];
    let head = 0;
    let handling = false;
    let paused = false;
    let partialTimer: NodeJS.Timeout | undefined;
    let shortTimeout = false;
    // needDrain too, so a bound below the socket's high-water mark still gets its 'drain'.
    const full = () => sock.writableNeedDrain && sock.writableLength >= o.maxUnwritten;

    const update = () => {
      if (sock.destroyed) return;
      const waiting = backlog.length - head;
      if (!paused && (waiting >= o.maxQueued || full())) { paused = true; sock.pause(); }
      else if (paused && waiting === 0 && !full()) { paused = false; sock.resume(); }
      // The partial-frame clock runs only while we read: when paused, the wait is ours or the
      // unread-replies timeout's business.
      if (dec.pending > 0 && !paused && o.partialTimeoutMs > 0) {
        partialTimer ??= setTimeout(() => {
          log.debug('control socket: request not finished in time, closing connection', { pending: dec.pending });
          sock.destroy();
        }, o.partialTimeoutMs);
      } else if (partialTimer) { clearTimeout(partialTimer); partialTimer = undefined; }
      // Inactivity (no read or write progress): short while the peer has replies to take.
      const owed = sock.writableLength > 0;
      if (owed !== shortTimeout) { shortTimeout = owed; sock.setTimeout(owed ? o.partialTimeoutMs : o.idleTimeoutMs); }
    };

    const pump = async () => {
      if (handling) return;
      handling = true;
      try {
        // Once the peer hangs up, requests already received are still handled (the agent sends
        // `coverage` and closes), only the replies are dropped.
        while (head < backlog.length && !(sock.writable && full())) {
          const m = backlog[head];
          backlog[head++] = undefined;
          if (head === backlog.length) { backlog = []; head = 0; }
          const bad = validateMessage(m);
          let reply: ControlReply;
          if (bad) reply = { ok: false, error: bad, code: 'COVD_ERR_PROTOCOL_BAD_MESSAGE' };
          else {
            try { reply = await handler(m as BusMessage); } catch (err) { reply = { ok: false, error: (err as Error).message, code: codeOf(err) }; }
          }
          try {
            if (!sock.destroyed && sock.writable) sock.write(encodeFrame(reply));
          } catch (err) {
            log.warn('control socket: could not answer a request', { err });
          }
          update();
        }
      } finally {
        handling = false;
      }
      update();
    };

    sock.setTimeout(o.idleTimeoutMs);
    sock.on('timeout', () => {
      // Replies taken since without a 'drain' (below the high-water mark): only idle after all.
      if (shortTimeout && sock.writableLength === 0) { update(); return; }
      log.debug('control socket: connection timed out', { unread: sock.writableLength });
      sock.destroy();
    });
    sock.on('drain', () => { update(); void pump(); });
    sock.on('close', () => {
      sockets.delete(sock);
      if (partialTimer) clearTimeout(partialTimer);
      // A pump waiting for 'drain' will not run again: drop what it would have answered.
      if (!handling) { backlog = []; head = 0; }
    });
    sock.on('data', (chunk: Buffer) => {
      let msgs: unknown[];
      try {
        msgs = dec.push(chunk);
      } catch (err) {
        log.warn('control socket: bad frame, closing connection', { err: (err as FrameError).message });
        sock.end(encodeFrame({ ok: false, error: (err as Error).message, code: codeOf(err) }));
        sock.destroy();
        return;
      }
      for (const m of msgs) backlog.push(m);
      update();
      void pump();
    });
  });
  // Past the cap, net closes new connections before they are read; say so now and then.
  server.maxConnections = o.maxConnections;
  let dropped = 0;
  let lastDropWarn = -Infinity;
  server.on('drop', () => {
    dropped++;
    const now = Date.now();
    if (now - lastDropWarn < DROP_WARN_MS) return;
    log.warn('control socket: too many connections, closing new ones', { maxConnections: o.maxConnections, dropped });
    lastDropWarn = now;
    dropped = 0;
  });
  // Create the socket already private: umask for the bind (which listen() does synchronously, so
  // the umask is restored before anything else runs), chmod as a second guard.
  const listening = new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => { server.off('error', reject); resolve(); });
  });
  const old = process.umask(0o177);
  try {
    server.listen(path);
  } finally {
    process.umask(old);
  }
  await listening;
  chmodSync(path, 0o600);
  return {
    path,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      try { unlinkSync(path); } catch { /* already gone */ }
    },
  };
}

/**
 * The socket's directory must be ours (or root's) and not open to others, or another local user
 * could replace the socket and receive what agents and `covd` clients send. A world-writable
 * directory is accepted only with the sticky bit (like /tmp), where others cannot unlink our socket.
 */
function checkSocketDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.geteuid?.() ?? st.uid;
  const openToOthers = (st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0;
  if (!st.isDirectory() || (st.uid !== uid && st.uid !== 0) || openToOthers) {
    throw new StartupError(
      `refusing to put the control socket in ${dir}: it must be a directory owned by this user and not writable by others ` +
        `(it is owned by uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}); pick another with --socket or COVD_SOCKET`,
      'COVD_ERR_SOCKET_DIR',
    );
  }
}
