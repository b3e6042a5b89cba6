/**
 * Messages that travel on the daemon's bus (between threads) and, for the control socket,
 * between processes. On the control socket each frame is a u32 little-endian byte length
 * followed by one msgpack-encoded message; the daemon answers each request frame with one
 * reply frame ({ ok: true, ... } or { ok: false, error }). The agent sends `coverage` and
 * may close without reading the reply.
 */

/** The seed's message: a process started fuzzing with this coverage file. */
export interface CoverageMessage {
  type: 'coverage';
  /** 16 hex digits, the coverage file's name. */
  id: string;
  /** Absolute path of the executable. */
  exe: string;
  /** Absolute path of the coverage file. */
  file: string;
  pid?: number;
  /** Daemon to coverage thread only: the hash of the PC table the target was resolved for (pcTableHash). */
  pcsHash?: string;
  /** `covd add --afl-out`: the target's AFL++ output directory (afl-fuzz -o, or one instance in it), absolute. */
  aflOut?: string;
}

export interface RemoveMessage { type: 'remove'; id: string }
export interface ExeChangedMessage { type: 'exe-changed'; exe: string }
export interface SourceChangedMessage { type: 'source-changed'; path: string }
export interface ShutdownMessage { type: 'shutdown' }
/** Control-socket queries, answered by the daemon. */
export interface ListMessage { type: 'list' }
export interface StatusMessage { type: 'status' }
/** Control-socket queries about inputs and crashes, answered by src/daemon/inputs.ts. */
export interface InputsMessage { type: 'inputs'; id: string; file?: string; line?: number }
export interface CrashesMessage { type: 'crashes'; id: string }
export interface InputMessage { type: 'input'; id: string; hash: string }

/** `covd fleet`: the fleet as this daemon sees it (src/fleet). */
export interface FleetMessage { type: 'fleet' }

export type BusMessage =
  | CoverageMessage
  | RemoveMessage
  | ExeChangedMessage
  | SourceChangedMessage
  | ShutdownMessage
  | ListMessage
  | StatusMessage
  | InputsMessage
  | CrashesMessage
  | InputMessage
  | FleetMessage;
