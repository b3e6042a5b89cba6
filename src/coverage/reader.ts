/**
 * Reads a live coverage file written by fuzzers (the covd agent, Zig's fuzzer).
 *
 * Synchronous on purpose: the coverage thread polls a handful of files every 500 ms and each
 * read is two small preads. Everything goes through pread into buffers allocated once; never
 * mmap, because a file truncated under a mapping kills the reader with SIGBUS. Every way the
 * file can misbehave (not there yet, empty, short, truncated, grown, deleted, replaced) ends in
 * a CoverageFileError whose `retryable` says whether opening again later may succeed.
 */
import { closeSync, fstatSync, lstatSync, readSync, type BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { openRegular, openRegularSync, UntrustedFileError } from '../util/untrusted.js';
import { bitsWords } from '../contracts/seen.js';
import {
  MAX_PCS_LEN,
  MIN_HEADER_BYTES,
  PCS_LEN_OFFSET,
  chooseFourFieldLayout,
  classifySize,
  layoutInfo,
  type LayoutInfo,
} from './layout.js';
import { CoverageFileError, type CoverageHeader, type CoverageLayout } from './types.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;

export interface OpenCoverageOptions {
  /** Force a layout instead of detecting it. */
  layout?: CoverageLayout;
  /** Refuse a pcs_len above this (checked before allocating); at most MAX_PCS_LEN. */
  maxPcs?: number;
}

export interface CoverageSnapshot {
  header: CoverageHeader;
  /**
   * Seen bits, ceil(pcsLen / 64) * 8 bytes (PC i is bit i % 8 of byte i / 8; bits past pcsLen are
   * cleared). A view of the reader's reused buffer: valid until the next read; copy to keep it.
   */
  seen: Uint8Array;
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function ioError(path: string, what: string, err: unknown): CoverageFileError {
  if (errnoCode(err) === 'ENOENT') return new CoverageFileError('ENOENT', `${path}: does not exist`, true);
  return new CoverageFileError('IO', `${path}: ${what}: ${(err as Error).message}`, false);
}

/** The agent only writes real files into v/; a symlink there could point anywhere. */
const COVERAGE_RULES = { noFollow: true } as const;

/** A refusal from the untrusted-file rules as a CoverageFileError (FIFOs and devices are never retryable). */
function untrustedError(path: string, err: unknown): CoverageFileError {
  if (err instanceof UntrustedFileError) {
    if (err.kind === 'ENOENT') return new CoverageFileError('ENOENT', `${path}: does not exist`, true);
    return new CoverageFileError('IO', err.message, false);
  }
  return ioError(path, 'cannot open', err);
}

interface BodyPlan {
  path: string;
  pcsLen: number;
  fourField: boolean;
  headerSize: number;
  /** u64 words after the header: PCs and seen bits. */
  words: number;
}

/**
 * Judges a file from its size and first 24 bytes, before anything large is allocated.
 * Messages never quote values read from the file: the path may not be a coverage file at all.
 */
function planBody(path: string, size: number, head: Uint8Array, got: number, opts: OpenCoverageOptions): BodyPlan {
  if (size === 0) throw new CoverageFileError('EMPTY', `${path}: empty (still being created?)`, true);
  if (size < MIN_HEADER_BYTES) throw new CoverageFileError('SHORT', `${path}: ${size} bytes, shorter than a header`, true);
  if (got < MIN_HEADER_BYTES) throw new CoverageFileError('SHORT', `${path}: shrank while reading its header`, true);
  const rawLen = new DataView(head.buffer, head.byteOffset, head.byteLength).getBigUint64(PCS_LEN_OFFSET, true);
  if (rawLen === 0n) {
    throw new CoverageFileError('BAD_PCS_LEN', `${path}: pcs_len is 0 (header not written yet, or no instrumented code)`, true);
  }
  const limit = Math.min(MAX_PCS_LEN, opts.maxPcs ?? MAX_PCS_LEN);
  if (rawLen > BigInt(limit)) {
    const why = limit < MAX_PCS_LEN ? 'the limit for this daemon\'s memory budget (--memory-mb)' : 'what any executable has';
    throw new CoverageFileError('BAD_PCS_LEN', `${path}: pcs_len is over ${limit} PCs, ${why}`, false);
  }
  const pcsLen = Number(rawLen);
  const verdict = classifySize(size, pcsLen);
  if (verdict.kind === 'short') {
    throw new CoverageFileError('SHORT', `${path}: ${size} bytes, fewer than the PC count in its header needs (${layoutInfo('seed', pcsLen).size})`, true);
  }
  if (verdict.kind === 'bad') {
    throw new CoverageFileError('BAD_SIZE', `${path}: ${size} bytes matches no layout for the PC count in its header`, false);
  }
  const fourField = verdict.kind === 'four';
  if (opts.layout && (opts.layout === 'no-lowest-stack') === fourField) {
    throw new CoverageFileError('BAD_SIZE', `${path}: ${size} bytes does not fit layout ${opts.layout}`, false);
  }
  return { path, pcsLen, fourField, headerSize: fourField ? 32 : 24, words: pcsLen + bitsWords(pcsLen) };
}

/** Picks the layout from the body's content and takes the PC list out of it. */
function finishBody(plan: BodyPlan, body: BigUint64Array, opts: OpenCoverageOptions): { info: LayoutInfo; pcs: BigUint64Array } {
  if (!littleEndianHost) for (let i = 0; i < body.length; i++) body[i] = swap64(body[i]!);
  const layout: CoverageLayout = opts.layout ?? (plan.fourField ? chooseFourFieldLayout(body, plan.pcsLen) : 'no-lowest-stack');
  const info = layoutInfo(layout, plan.pcsLen);
  const pcsStart = (info.pcsOffset - plan.headerSize) / 8;
  return { info, pcs: body.slice(pcsStart, pcsStart + plan.pcsLen) };
}

/**
 * Reads a coverage file's PC list without blocking the calling thread (the daemon's main thread
 * uses this for every announcement). Same checks and errors as CoverageFile.open.
 */
export async function readPcListAsync(path: string, opts: OpenCoverageOptions = {}): Promise<{ pcsLen: number; pcs: BigUint64Array; layout: CoverageLayout }> {
  let fh: FileHandle;
  let size: number;
  try {
    const o = await openRegular(path, COVERAGE_RULES);
    fh = o.fh;
    size = o.st.size;
  } catch (err) {
    throw untrustedError(path, err);
  }
  try {
    const readAt = async (buf: Uint8Array, pos: number): Promise<number> => {
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, pos + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got;
    };
    const head = new Uint8Array(MIN_HEADER_BYTES);
    let got: number;
    try {
      got = size >= MIN_HEADER_BYTES ? await readAt(head, 0) : 0;
    } catch (err) {
      throw ioError(path, 'cannot read', err);
    }
    const plan = planBody(path, size, head, got, opts);
    const body = new BigUint64Array(plan.words);
    if (await readAt(new Uint8Array(body.buffer), plan.headerSize) < body.byteLength) {
      throw new CoverageFileError('SHORT', `${path}: shrank while reading its PC list`, false);
    }
    const { info, pcs } = finishBody(plan, body, opts);
    return { pcsLen: info.pcsLen, pcs, layout: info.layout };
  } finally {
    await fh.close().catch(() => {});
  }
}

/** Reads exactly buf.length bytes at pos, or returns how many it got (EOF). */
function preadFull(fd: number, buf: Uint8Array, pos: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** An open coverage file. Create with CoverageFile.open(); close() when done. */
export class CoverageFile {
  /** 16 hex digits when the file name is a coverage id, else the base name. */
  readonly id: string;
  readonly layout: CoverageLayout;
  readonly pcsLen: number;
  /** The PC list (link-time addresses), read once at open. */
  readonly pcs: BigUint64Array;
  readonly info: LayoutInfo;

  #fd: number;
  readonly #dev: bigint;
  readonly #ino: bigint;
  readonly #headerBuf: Uint8Array;
  readonly #headerBuf2: Uint8Array;
  readonly #headerView: DataView;
  readonly #bits: Uint8Array;
  #lastNRuns = 0n;
  #lastUniqueRuns = 0n;

  private constructor(readonly path: string, fd: number, st: BigIntStats, info: LayoutInfo, pcs: BigUint64Array) {
    this.#fd = fd;
    this.#dev = st.dev;
    this.#ino = st.ino;
    this.info = info;
    this.layout = info.layout;
    this.pcsLen = info.pcsLen;
    this.pcs = pcs;
    this.id = basename(path);
    this.#headerBuf = new Uint8Array(info.headerBytes);
    this.#headerBuf2 = new Uint8Array(info.headerBytes);
    this.#headerView = new DataView(this.#headerBuf.buffer);
    this.#bits = new Uint8Array(info.bitsBytes);
  }

  /** Opens and validates a coverage file; throws CoverageFileError. */
  static open(path: string, opts: OpenCoverageOptions = {}): CoverageFile {
    let fd: number;
    let st: BigIntStats;
    try {
      fd = openRegularSync(path, COVERAGE_RULES).fd;
    } catch (err) {
      throw untrustedError(path, err);
    }
    try {
      try {
        st = fstatSync(fd, { bigint: true });
      } catch (err) {
        throw ioError(path, 'cannot stat', err);
      }
      const head = new Uint8Array(MIN_HEADER_BYTES);
      const got = Number(st.size) >= MIN_HEADER_BYTES ? preadFull(fd, head, 0) : 0;
      const plan = planBody(path, Number(st.size), head, got, opts);
      const body = new BigUint64Array(plan.words);
      const bodyBytes = new Uint8Array(body.buffer);
      if (preadFull(fd, bodyBytes, plan.headerSize) < bodyBytes.length) {
        throw new CoverageFileError('SHORT', `${path}: shrank while reading its PC list`, false);
      }
      const { info, pcs } = finishBody(plan, body, opts);
      return new CoverageFile(path, fd, st, info, pcs);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Whether the file is still the one we opened, at the size we expect; throws when not. */
  check(): void {
    this.#assertOpen();
    let st: BigIntStats;
    try {
      st = fstatSync(this.#fd, { bigint: true });
    } catch (err) {
      throw ioError(this.path, 'cannot stat', err);
    }
    let onDisk: BigIntStats;
    try {
      onDisk = lstatSync(this.path, { bigint: true });
    } catch (err) {
      throw errnoCode(err) === 'ENOENT'
        ? new CoverageFileError('ENOENT', `${this.path}: deleted`, true)
        : ioError(this.path, 'cannot stat', err);
    }
    if (onDisk.ino !== this.#ino || onDisk.dev !== this.#dev) {
      throw new CoverageFileError('REPLACED', `${this.path}: replaced by another file`, true);
    }
    const size = Number(st.size);
    if (size < this.info.size) {
      throw new CoverageFileError('SHORT', `${this.path}: truncated to ${size} bytes (expected ${this.info.size})`, false);
    }
    if (size > this.info.size) {
      throw new CoverageFileError('BAD_SIZE', `${this.path}: grew to ${size} bytes (expected ${this.info.size})`, false);
    }
  }

  /**
   * A consistent header: two back-to-back reads that agree (up to 8 tries), so no field is a torn
   * mix of two writes. n_runs and unique_runs never go backwards between calls.
   */
  readHeader(): CoverageHeader {
    this.#assertOpen();
    const a = this.#headerBuf;
    const b = this.#headerBuf2;
    this.#preadHeader(a);
    for (let tries = 0; tries < 8; tries++) {
      this.#preadHeader(b);
      if (Buffer.compare(a, b) === 0) break;
      a.set(b);
    }
    const v = this.#headerView;
    const pcsLen = v.getBigUint64(PCS_LEN_OFFSET, true);
    if (pcsLen !== BigInt(this.pcsLen)) {
      throw new CoverageFileError('REPLACED', `${this.path}: pcs_len changed`, true);
    }
    let nRuns = v.getBigUint64(0, true);
    let uniqueRuns = v.getBigUint64(8, true);
    if (nRuns < this.#lastNRuns) nRuns = this.#lastNRuns;
    if (uniqueRuns < this.#lastUniqueRuns) uniqueRuns = this.#lastUniqueRuns;
    this.#lastNRuns = nRuns;
    this.#lastUniqueRuns = uniqueRuns;
    let lowestStack: bigint | null = null;
    if (this.info.headerBytes === 32) {
      const ls = v.getBigUint64(24, true);
      if (ls !== 0n && ls !== U64_MAX) lowestStack = ls;
    }
    return { nRuns, uniqueRuns, pcsLen: this.pcsLen, lowestStack };
  }

  /**
   * The seen bits, into the reused buffer. Writers only ever set bits (atomic ORs of whole words),
   * so even a read that races a write is a valid, slightly older subset.
   */
  readSeen(): Uint8Array {
    this.#assertOpen();
    const got = preadFull(this.#fd, this.#bits, this.info.bitsOffset);
    if (got < this.#bits.length) {
      throw new CoverageFileError('SHORT', `${this.path}: truncated while reading the seen bits`, false);
    }
    // Bits past pcs_len mean nothing; clear them so no consumer indexes past the PC list.
    const lastByte = (this.pcsLen - 1) >> 3;
    const keep = this.pcsLen - lastByte * 8; // 1..8 valid bits in the last byte
    if (keep < 8) this.#bits[lastByte] = this.#bits[lastByte]! & ((1 << keep) - 1);
    this.#bits.fill(0, lastByte + 1);
    return this.#bits;
  }

  /** check(), then header and seen bits. Throws CoverageFileError. */
  read(): CoverageSnapshot {
    this.check();
    const header = this.readHeader();
    const seen = this.readSeen();
    return { header, seen };
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  close(): void {
    if (this.#fd >= 0) {
      closeSync(this.#fd);
      this.#fd = -1;
    }
  }

  #preadHeader(buf: Uint8Array): void {
    let got: number;
    try {
      got = preadFull(this.#fd, buf, 0);
    } catch (err) {
      throw ioError(this.path, 'cannot read', err);
    }
    if (got < buf.length) throw new CoverageFileError('SHORT', `${this.path}: truncated below its header`, false);
  }

  #assertOpen(): void {
    if (this.#fd < 0) throw new CoverageFileError('IO', `${this.path}: reader is closed`, false);
  }
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swap64(x: bigint): bigint {
  let r = 0n;
  for (let i = 0; i < 8; i++) {
    r = (r << 8n) | (x & 0xffn);
    x >>= 8n;
  }
  return r;
}

/** Opens a coverage file, retrying retryable errors (still being created) until timeoutMs. */
export async function openCoverageFileWhenReady(
  path: string,
  opts: OpenCoverageOptions & { timeoutMs?: number; intervalMs?: number } = {},
): Promise<CoverageFile> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    try {
      return CoverageFile.open(path, opts);
    } catch (err) {
      if (!(err instanceof CoverageFileError) || !err.retryable || Date.now() >= deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/** One-shot: open, read, close. */
export function readCoverageFile(path: string, opts: OpenCoverageOptions = {}): CoverageSnapshot & { pcs: BigUint64Array; layout: CoverageLayout } {
  const f = CoverageFile.open(path, opts);
  try {
    const snap = f.read();
    return { header: snap.header, seen: snap.seen.slice(), pcs: f.pcs, layout: f.layout };
  } finally {
    f.close();
  }
}

export { CoverageFileError };
