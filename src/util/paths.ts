/** Default locations shared by the agent, the daemon and the CLI clients. */
import { join } from 'node:path';
import { homedir } from 'node:os';

/** Where agents write coverage files: $COVD_DIR, else ${XDG_RUNTIME_DIR:-/tmp}/covd (the agent uses the same rule). */
export function defaultCoverageDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.COVD_DIR || join(env.XDG_RUNTIME_DIR || '/tmp', 'covd');
}

/** The daemon's control socket: $COVD_SOCKET, else <default coverage dir>/covd.sock. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.COVD_SOCKET || join(defaultCoverageDir(env), 'covd.sock');
}

/** Persistent state: $XDG_STATE_HOME/covd, else ~/.local/state/covd. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'covd');
}
