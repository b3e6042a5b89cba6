/** Client side of the control socket, for `covd add/list/status/remove` and tests. */
import net from 'node:net';
import { encodeFrame, FrameDecoder } from '../bus/framing.js';
import type { BusMessage } from '../bus/messages.js';
import type { ControlReply } from './control.js';
import { DaemonUnreachableError } from '../contracts/errors.js';

export { DaemonUnreachableError };

/** Sends one request and resolves to the daemon's reply. */
export function request(socketPath: string, msg: BusMessage, timeoutMs = 30_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    const dec = new FrameDecoder();
    const timer = setTimeout(() => { sock.destroy(); reject(new DaemonUnreachableError(`no reply from the daemon at ${socketPath} within ${timeoutMs} ms`, 'COVD_ERR_DAEMON_TIMEOUT')); }, timeoutMs);
    sock.once('connect', () => sock.write(encodeFrame(msg)));
    sock.on('data', (chunk) => {
      try {
        const [reply] = dec.push(chunk);
        if (reply !== undefined) { clearTimeout(timer); sock.end(); resolve(reply as ControlReply); }
      } catch (err) { clearTimeout(timer); sock.destroy(); reject(err); }
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new DaemonUnreachableError(`no daemon is listening on ${socketPath} (start one with \`covd serve\`, or pass --socket)`));
      } else reject(err);
    });
    sock.once('close', () => { clearTimeout(timer); reject(new DaemonUnreachableError('the daemon closed the connection without replying', 'COVD_ERR_DAEMON_HUNG_UP')); });
  });
}
