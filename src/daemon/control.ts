/**
 * The control socket: a Unix domain socket (mode 0600, so only this user can talk to it)
 * speaking the frames of src/bus/framing.ts. Each request frame gets one reply frame,
 * { ok: true, ... } or { ok: false, error }. The agent sends `coverage` and may hang up
 * without reading; clients (`covd add/list/status/remove`) read the reply.
 *
 * A stale socket file left by a killed daemon is removed at start; a live one (something
 * answers a connect) is an error, so two daemons never fight over one socket.
 */
import net from 'node:net';
import { chmodSync, mkdirSync, unlinkSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { encodeFrame, FrameDecoder, FrameError } from '../bus/framing.js';
import type { BusMessage } from '../bus/messages.js';
import type { Logger } from '../util/log.js';

export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: string };
export type ControlHandler = (msg: BusMessage) => Promise<ControlReply>;

const KNOWN = new Set(['coverage', 'remove', 'exe-changed', 'source-changed', 'shutdown', 'list', 'status']);

/** Checks a decoded frame is a well-formed BusMessage; returns a reason when it is not. */
export function validateMessage(m: unknown): string | undefined {
  if (typeof m !== 'object' || m === null) return 'message is not a map';
  const o = m as Record<string, unknown>;
  if (typeof o.type !== 'string' || !KNOWN.has(o.type)) return `unknown message type ${JSON.stringify(o.type)}`;
  const str = (k: string) => typeof o[k] === 'string' && (o[k] as string).length > 0 && (o[k] as string).length < 4096;
  switch (o.type) {
    case 'coverage':
      if (!str('id') || !/^[0-9a-f]{16}$/.test(o.id as string)) return 'coverage: id must be 16 lower-case hex digits';
      if (!str('exe') || !(o.exe as string).startsWith('/')) return 'coverage: exe must be an absolute path';
      if (!str('file') || !(o.file as string).startsWith('/')) return 'coverage: file must be an absolute path';
      return undefined;
    case 'remove':
      return str('id') ? undefined : 'remove: id required';
    case 'exe-changed':
      return str('exe') ? undefined : 'exe-changed: exe required';
    case 'source-changed':
      return str('path') ? undefined : 'source-changed: path required';
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

export async function startControlServer(path: string, handler: ControlHandler, log: Logger): Promise<ControlServer> {
  checkSocketDir(dirname(path));
  let exists = false;
  try { exists = lstatSync(path).isSocket(); } catch { /* absent */ }
  if (exists) {
    if (await socketInUse(path)) throw new Error(`another daemon is listening on ${path}`);
    unlinkSync(path);
  }
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => { /* peers (the agent) may hang up at any time */ });
    const dec = new FrameDecoder();
    // Replies go out in request order even when handlers finish out of order.
    let chain = Promise.resolve();
    sock.on('data', (chunk) => {
      let msgs: unknown[];
      try {
        msgs = dec.push(chunk);
      } catch (err) {
        log.warn('control socket: bad frame, closing connection', { err: (err as FrameError).message });
        sock.end(encodeFrame({ ok: false, error: (err as Error).message }));
        sock.destroy();
        return;
      }
      for (const m of msgs) {
        chain = chain.then(async () => {
          const bad = validateMessage(m);
          let reply: ControlReply;
          if (bad) reply = { ok: false, error: bad };
          else {
            try { reply = await handler(m as BusMessage); } catch (err) { reply = { ok: false, error: (err as Error).message }; }
          }
          if (!sock.destroyed && sock.writable) sock.write(encodeFrame(reply));
        }).catch((err: unknown) => {
          // Keep the chain alive for the next request, and never leave a rejection unhandled.
          log.warn('control socket: could not answer a request', { err });
        });
      }
    });
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
    throw new Error(
      `refusing to put the control socket in ${dir}: it must be a directory owned by this user and not writable by others ` +
        `(it is owned by uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}); pick another with --socket or COVD_SOCKET`,
    );
  }
}
