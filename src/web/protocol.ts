/**
 * The WebSocket protocol between the daemon and browser tabs (documented in docs/protocol.md).
 * Types and the client's decoders, with no Node imports: the browser client (ui/) bundles this
 * file, so both sides always agree. Every frame is one binary msgpack message, packed with the
 * options of src/contracts/msgpack.ts; the server's encoders are in ./wire.ts.
 */
import type { HistorySample, TargetInfo, TargetStats } from '../contracts/hub.js';
import type { SourceIndex } from '../contracts/source-index.js';
import { isSeen, popcount32 } from '../contracts/seen.js';

export const PROTOCOL_VERSION = 1;

// ---- client -> server ----
export type ClientMessage =
  /** Receive the target list, then `target` / `removed` events. */
  | { t: 'sub-targets' }
  /** Follow one target: `index` (once), `snapshot`, then `delta`s. `have` = the client already holds this index (buildId), skip `index`. */
  | {
      t: 'sub';
      id: string;
      have?: string | null;
      /** The client understands `delta.words` (changed 32-bit words); the server then picks the smaller encoding. */
      words?: boolean;
      /** The client understands sparse snapshots: `firstSeen` holds only the seen PCs' times (`snapshot.sparse`). */
      sparse?: boolean;
      /** Resume: the client holds this target's state up to this seq; the server replays the missed deltas when it still has them, else sends a snapshot. */
      since?: number;
      /** With `since`: the server epoch of the snapshot the client's state descends from; another (or none) gets a snapshot. */
      epoch?: string;
    }
  | { t: 'unsub'; id: string }
  /** Ask for a fresh snapshot (after a gap in seq). */
  | { t: 'resync'; id: string }
  | { t: 'ping' };

// ---- server -> client ----
/**
 * The source index exactly as the symbolizer produces it (src/contracts/source-index.ts); only its
 * fields travel, plus `pcAddresses`: per PC its link-time address (what llvm-symbolizer and gdb
 * take), when the daemon could read the target's PC table (absent otherwise).
 */
export type WireSourceIndex = SourceIndex & { pcAddresses?: BigUint64Array };

export type ServerMessage =
  | { t: 'hello'; version: number; server: string }
  | { t: 'targets'; targets: TargetInfo[] }
  | { t: 'target'; target: TargetInfo }
  | { t: 'removed'; id: string }
  | { t: 'index'; id: string; index: WireSourceIndex }
  /** Full state; replaces whatever the client had. `history` = stored samples for the chart. */
  | {
      t: 'snapshot'; id: string; seq: number; info: TargetInfo; seen: Uint8Array; firstSeen: Uint32Array; history: HistorySample[];
      /** true (only for clients that sent `sparse`): firstSeen[k] is the time of the k-th seen PC in PC order. Use expandFirstSeen. */
      sparse?: boolean;
      /**
       * Random id of this run of the server. `seq` numbers are only comparable within one epoch (a
       * restarted daemon can reuse them for other deltas), so a resume names it along with `since`.
       */
      epoch?: string;
    }
  /**
   * Newly seen PCs since seq - 1. Apply only if seq === last + 1, else send `resync`.
   * For clients that sent `words`, the server may instead send `words` (pairs of 32-bit word index,
   * mask of newly seen bits) with an empty `pcs`, whichever is smaller. Use deltaPcs / applyDelta.
   */
  | { t: 'delta'; id: string; seq: number; time: number; pcs: Uint32Array; stats: TargetStats; words?: Uint32Array }
  | { t: 'source-changed'; id: string; file: number }
  /** `code` names the kind of error (see docs/protocol.md); `id` the target it concerns, if any. */
  | { t: 'error'; error: string; code?: string; id?: string }
  | { t: 'pong' };

export type SnapshotMessage = Extract<ServerMessage, { t: 'snapshot' }>;
export type DeltaMessage = Extract<ServerMessage, { t: 'delta' }>;


/** The PC indices a delta marks as newly seen, whichever encoding it uses. */
export function deltaPcs(d: Pick<DeltaMessage, 'pcs' | 'words'>): Uint32Array {
  if (!d.words || d.words.length === 0) return d.pcs;
  let n = 0;
  for (let i = 1; i < d.words.length; i += 2) n += popcount32(d.words[i]!);
  const out = new Uint32Array(n + d.pcs.length);
  let k = 0;
  for (let i = 0; i + 1 < d.words.length; i += 2) {
    const base = d.words[i]! * 32;
    let m = d.words[i + 1]! >>> 0;
    while (m !== 0) {
      const b = 31 - Math.clz32(m & -m);
      out[k++] = base + b;
      m &= m - 1;
    }
  }
  out.set(d.pcs, k);
  return out;
}

/**
 * Applies a delta to the client's state: sets the seen bits and, for PCs not seen before, the
 * first-seen time (seconds). Returns the PCs that were actually new to this client.
 */
export function applyDelta(seen: Uint8Array, firstSeen: Uint32Array | null, d: Pick<DeltaMessage, 'pcs' | 'words' | 'time'>): number[] {
  const fresh: number[] = [];
  const sec = Math.floor(d.time / 1000);
  for (const pc of deltaPcs(d)) {
    const byte = pc >>> 3, bit = 1 << (pc & 7);
    if (byte >= seen.length || seen[byte]! & bit) continue;
    seen[byte] |= bit;
    if (firstSeen && pc < firstSeen.length && firstSeen[pc] === 0) firstSeen[pc] = sec;
    fresh.push(pc);
  }
  return fresh;
}

/** Turns a snapshot's firstSeen into one entry per PC (a copy when it was sparse, else the same array). */
export function expandFirstSeen(s: Pick<SnapshotMessage, 'seen' | 'firstSeen' | 'sparse'>, pcsLen: number): Uint32Array {
  if (!s.sparse) return s.firstSeen;
  const out = new Uint32Array(pcsLen);
  let k = 0;
  for (let pc = 0; pc < pcsLen; pc++) {
    if (isSeen(s.seen, pc)) out[pc] = s.firstSeen[k++] ?? 0;
  }
  return out;
}
