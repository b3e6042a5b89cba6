/**
 * The WebSocket protocol between the daemon and browser tabs (documented in docs/protocol.md).
 * Pure types and codec options: imported by the server (src/web) and by the browser client (ui/),
 * so both sides always agree. Every frame is one binary msgpack message (msgpackr, options below).
 */
import type { HistorySample, TargetInfo, TargetStats } from '../daemon/hub.js';

/** msgpackr options both sides use; typed arrays travel as msgpackr typed-array extensions. */
export const packrOptions = { useRecords: false, moreTypes: true } as const;

export const PROTOCOL_VERSION = 1;

// ---- client -> server ----
export type ClientMessage =
  /** Receive the target list, then `target` / `removed` events. */
  | { t: 'sub-targets' }
  /** Follow one target: `index` (once), `snapshot`, then `delta`s. `have` = the client already holds this index (buildId), skip `index`. */
  | { t: 'sub'; id: string; have?: string | null }
  | { t: 'unsub'; id: string }
  /** Ask for a fresh snapshot (after a gap in seq). */
  | { t: 'resync'; id: string }
  | { t: 'ping' };

// ---- server -> client ----
export interface WireSourceIndex {
  buildId: string | null;
  directories: string[];
  files: string[];
  fileDirs: Uint32Array;
  functions: { names: string[]; file: Uint32Array; line: Uint32Array };
  pcFile: Uint32Array;
  pcLine: Uint32Array;
  pcColumn: Uint32Array;
  pcFunction: Uint32Array;
}

export type ServerMessage =
  | { t: 'hello'; version: number; server: string }
  | { t: 'targets'; targets: TargetInfo[] }
  | { t: 'target'; target: TargetInfo }
  | { t: 'removed'; id: string }
  | { t: 'index'; id: string; index: WireSourceIndex }
  /** Full state; replaces whatever the client had. `history` = stored samples for the chart. */
  | { t: 'snapshot'; id: string; seq: number; info: TargetInfo; seen: Uint8Array; firstSeen: Uint32Array; history: HistorySample[] }
  /** Newly seen PCs since seq - 1. Apply only if seq === last + 1, else send `resync`. */
  | { t: 'delta'; id: string; seq: number; time: number; pcs: Uint32Array; stats: TargetStats }
  | { t: 'source-changed'; id: string; file: number }
  | { t: 'error'; error: string }
  | { t: 'pong' };
