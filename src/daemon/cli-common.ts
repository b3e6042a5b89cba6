/** Shared by the control-socket client commands (add, list, status, remove). */
import { parseArgs } from 'node:util';
import { UsageError } from '../cli/command.js';
import { defaultSocketPath } from '../util/paths.js';
import { DaemonUnreachableError, request } from './client.js';
import type { BusMessage } from '../bus/messages.js';
import type { ControlReply } from './control.js';

export const socketHelp = '  --socket PATH   the daemon\'s control socket (COVD_SOCKET; default $COVD_DIR/covd.sock)\n  --json          print the reply as JSON';

export function parseClientArgs(argv: string[], positionals: { min: number; max: number }) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { socket: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const n = parsed.positionals.length;
  if (n < positionals.min) throw new UsageError('missing argument');
  if (n > positionals.max) throw new UsageError(`unexpected argument '${parsed.positionals[positionals.max]}'`);
  return { socket: parsed.values.socket ?? defaultSocketPath(), json: parsed.values.json ?? false, args: parsed.positionals };
}

/** Sends one request; prints a clear error and returns undefined when it fails. */
export async function ask(socket: string, msg: BusMessage): Promise<(ControlReply & { ok: true }) | undefined> {
  let reply: ControlReply;
  try {
    reply = await request(socket, msg);
  } catch (err) {
    console.error(`covd: ${err instanceof DaemonUnreachableError ? err.message : `talking to the daemon failed: ${(err as Error).message}`}`);
    return undefined;
  }
  if (!reply.ok) {
    console.error(`covd: the daemon says: ${reply.error}`);
    return undefined;
  }
  return reply;
}
