/**
 * The agent's logs beside a coverage file (agent/covd_inputs.c; format in docs/coverage-file.md,
 * "Inputs and crashes"): v/<id>.inputs.log (inputs that reached PCs first) and
 * v/<id>.crashes.log (one record per crashed process), both a sequence of self-delimiting
 * little-endian records ending in a CRC-32, appended by several processes at once.
 *
 * parseRecords() takes the bytes read from some offset and returns the records that are
 * complete and intact, the offset to continue from, and what it skipped and why (a torn or
 * garbled record, a length that is impossible, a record naming PCs past the target's): the
 * caller logs those. A record that is only partly there at the end (being written) is left
 * for the next read. Nothing here touches the file system.
 */
import { crc32 } from 'node:zlib';

export const MAGIC_INPUT = 0x49445643; // "CVDI"
export const MAGIC_CRASH = 0x43445643; // "CVDC"
/** Every record is one write() of at most PIPE_BUF bytes. */
export const RECORD_MAX = 4096;
const INPUT_HEAD = 64;
const CRASH_HEAD = 96;
const FRAMES_MAX = 64;

/** Input record flags. */
export const IN_KEPT = 1;
export const IN_TOO_LARGE = 2;
export const IN_NOT_SAVED = 4;
/** Crash record flag: no input (the process was not inside the target). */
export const CR_NO_INPUT = 8;

export const CRASH_KINDS = ['signal', 'sanitizer', 'timeout', 'oom', 'leak', 'exit'] as const;
export type CrashKind = (typeof CRASH_KINDS)[number];

export interface InputRecord {
  /** SHA-1 of the input, 40 lower-case hex digits (libFuzzer's corpus file name). */
  hash: string;
  flags: number;
  pid: number;
  /** ms since the epoch. */
  time: number;
  /** The process's run number: inputs it had run, this one included. */
  run: number;
  size: number;
  part: number;
  parts: number;
  /** Indices of the PCs this input was first to reach (this part's share). */
  pcs: Uint32Array;
}

export interface CrashRecord {
  kind: CrashKind;
  /** null when the process was not running an input. */
  hash: string | null;
  size: number | null;
  flags: number;
  signo: number;
  status: number;
  pid: number;
  time: number;
  run: number;
  /** Load bias and [lo, hi) of the executable's mapping, when the process crashed. */
  bias: bigint;
  lo: bigint;
  hi: bigint;
  /** Raw frames, innermost first: runtime addresses (return addresses, except where `exact`). */
  frames: bigint[];
  /** Bit i: frame i is the interrupted instruction itself, not a return address. */
  exact: bigint;
  /** The sanitizer's summary, the signal's name, or libFuzzer's reason. */
  detail: string;
  /** Where libFuzzer writes its artifact: { prefix } (name = prefix + kind + '-' + sha1) or { exact } path; null when unknown. */
  artifact: { prefix: string } | { exact: string } | null;
}

export interface Skipped {
  offset: number;
  bytes: number;
  reason: string;
}

export interface ParseResult<R> {
  records: { offset: number; record: R }[];
  /** Bytes consumed from the start of `buf` (records and skipped bytes). */
  consumed: number;
  skipped: Skipped[];
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/**
 * Parses the records of one log from `buf` (read starting at file offset `base`). A record
 * whose PCs are not all below `pcsLen` is skipped whole.
 */
export function parseRecords<R>(kind: 'input' | 'crash', buf: Buffer, base: number, pcsLen: number): ParseResult<R> {
  const magic = kind === 'input' ? MAGIC_INPUT : MAGIC_CRASH;
  const out: ParseResult<R> = { records: [], consumed: 0, skipped: [] };
  let p = 0;
  let junkFrom = -1;
  let junkReason = '';
  const junkEnd = (at: number, reason: string) => {
    if (junkFrom >= 0) out.skipped.push({ offset: base + junkFrom, bytes: at - junkFrom, reason });
    junkFrom = -1;
  };
  /** Skips 4 bytes; runs of skipped bytes with one reason are reported as one. */
  const skip = (reason: string) => {
    if (junkFrom >= 0 && junkReason !== reason) junkEnd(p, junkReason);
    if (junkFrom < 0) { junkFrom = p; junkReason = reason; }
    p += 4;
  };
  while (buf.length - p >= 8) {
    if (buf.readUInt32LE(p) !== magic) { skip('not a record (bad magic): garbage or a torn record'); continue; }
    const len = buf.readUInt16LE(p + 4);
    const head = kind === 'input' ? INPUT_HEAD : CRASH_HEAD;
    if (len < head + 4 || len > RECORD_MAX || len % 4 !== 0) { skip(`impossible record length ${len}`); continue; }
    if (buf.length - p < len) break; // being written (or torn at the very end): wait for more
    const rec = buf.subarray(p, p + len);
    if (crc32(rec.subarray(0, len - 4)) !== rec.readUInt32LE(len - 4)) { skip('CRC mismatch: a torn or garbled record'); continue; }
    if (rec[6] !== 1) { skip(`record version ${rec[6]} is not known`); continue; }
    const parsed = kind === 'input' ? parseInput(rec, pcsLen) : parseCrash(rec, pcsLen);
    if (typeof parsed === 'string') {
      junkEnd(p, junkReason);
      out.skipped.push({ offset: base + p, bytes: len, reason: parsed });
      p += len;
      continue;
    }
    junkEnd(p, junkReason);
    out.records.push({ offset: base + p, record: parsed as R });
    p += len;
  }
  if (junkFrom >= 0) junkEnd(p, junkReason);
  out.consumed = p;
  return out;
}

function parseInput(rec: Buffer, pcsLen: number): InputRecord | string {
  const n = rec.readUInt32LE(60);
  if (INPUT_HEAD + 4 * n + 4 !== rec.length) return `input record holds ${n} PCs but is ${rec.length} bytes`;
  const pcs = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const pc = rec.readUInt32LE(INPUT_HEAD + 4 * i);
    if (pc >= pcsLen) return `input record names PC ${pc}, past the target's ${pcsLen} PCs`;
    pcs[i] = pc;
  }
  const size = Number(rec.readBigUInt64LE(48));
  if (!Number.isSafeInteger(size)) return 'input record has an impossible size';
  const part = rec.readUInt16LE(56), parts = rec.readUInt16LE(58);
  if (parts === 0 || part >= parts) return `input record part ${part} of ${parts}`;
  return {
    hash: hex(rec.subarray(8, 28)), flags: rec[7]!, pid: rec.readUInt32LE(28), time: Number(rec.readBigUInt64LE(32)),
    run: Number(rec.readBigUInt64LE(40)), size, part, parts, pcs,
  };
}

function parseCrash(rec: Buffer, _pcsLen: number): CrashRecord | string {
  const kindNo = rec[7]!;
  const kind = CRASH_KINDS[kindNo - 1];
  if (!kind) return `crash record of unknown kind ${kindNo}`;
  const flags = rec[56]!;
  const n = rec.readUInt16LE(58);
  if (n > FRAMES_MAX) return `crash record with ${n} frames (at most ${FRAMES_MAX})`;
  let p = CRASH_HEAD + 8 * n;
  if (p + 8 > rec.length) return 'crash record shorter than its frames';
  const frames: bigint[] = [];
  for (let i = 0; i < n; i++) frames.push(rec.readBigUInt64LE(CRASH_HEAD + 8 * i));
  const dlen = rec.readUInt16LE(p), alen = rec.readUInt16LE(p + 2);
  p += 4;
  if (p + dlen + alen + 4 > rec.length) return 'crash record shorter than its strings';
  const detail = rec.subarray(p, p + dlen).toString('utf8').replace(/[\u0000-\u001f\u007f]/g, ' ');
  const art = rec.subarray(p + dlen, p + dlen + alen).toString('utf8');
  let artifact: CrashRecord['artifact'] = null;
  if (art.length > 1 && art.includes('/') && !art.includes('\0')) artifact = art[0] === 'E' ? { exact: art.slice(1) } : art[0] === 'P' ? { prefix: art.slice(1) } : null;
  const noInput = (flags & CR_NO_INPUT) !== 0;
  const size = Number(rec.readBigUInt64LE(48));
  if (!noInput && !Number.isSafeInteger(size)) return 'crash record has an impossible input size';
  return {
    kind, hash: noInput ? null : hex(rec.subarray(8, 28)), size: noInput ? null : size, flags, signo: rec[57]!,
    status: rec.readUInt32LE(60), pid: rec.readUInt32LE(28), time: Number(rec.readBigUInt64LE(32)), run: Number(rec.readBigUInt64LE(40)),
    bias: rec.readBigUInt64LE(64), lo: rec.readBigUInt64LE(72), hi: rec.readBigUInt64LE(80), frames, exact: rec.readBigUInt64LE(88),
    detail, artifact,
  };
}
