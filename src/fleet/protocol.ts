/**
 * The fleet's wire protocol over NATS JetStream (docs/protocol.md, "Fleet"): names of subjects,
 * the stream and the buckets, their retention limits, and the three messages with their codecs.
 * Everything a node receives is untrusted: every decoder here checks shape, sizes and ranges
 * before anything is allocated from it, and throws a ProtocolError whose code says why.
 *
 *   stream  <P>_coverage   subjects <P>.cov.<id>.<node>   coverage deltas and snapshots (CoverageMsg)
 *   bucket  <P>_nodes      key <node>                    the node's status: its targets' counters (NodeStatus)
 *   bucket  <P>_builds     keys <id>.<build>.m, .<n>     one build's PC table and source index, chunked (BuildManifest)
 *
 * Messages are msgpack with the options of src/contracts/msgpack.ts. A coverage message carries
 * (PC index, first-seen second) pairs, PCs ascending, as varints: the gap from the previous PC,
 * and the second minus the message's earliest (`base`); snapshots are deflated too.
 */
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Packr } from 'msgpackr';
import { packrOptions } from '../contracts/msgpack.js';
import { packLarge } from '../util/packed.js';
import { isCoverageId, pcTableHash } from '../contracts/ids.js';
import { NONE, type SourceIndex } from '../contracts/source-index.js';
import { ProtocolError } from '../contracts/errors.js';
import { NAME_RE } from './config.js';

export const FLEET_PROTOCOL = 1;

const packr = new Packr(packrOptions);

/** Subjects, stream and bucket names under one prefix. */
export interface FleetNames {
  prefix: string;
  covStream: string;
  covFilter: string;
  covSubject(id: string, node: string): string;
  nodesBucket: string;
  buildsBucket: string;
  /** The streams behind the buckets, and the subject of a key in them. */
  nodesStream: string;
  buildsStream: string;
  nodesSubject(key: string): string;
  buildsSubject(key: string): string;
}

export function fleetNames(prefix: string): FleetNames {
  const nodesBucket = `${prefix}_nodes`, buildsBucket = `${prefix}_builds`;
  return {
    prefix,
    covStream: `${prefix}_coverage`,
    covFilter: `${prefix}.cov.>`,
    covSubject: (id, node) => `${prefix}.cov.${id}.${node}`,
    nodesBucket, buildsBucket,
    nodesStream: `KV_${nodesBucket}`,
    buildsStream: `KV_${buildsBucket}`,
    nodesSubject: (key) => `$KV.${nodesBucket}.${key}`,
    buildsSubject: (key) => `$KV.${buildsBucket}.${key}`,
  };
}

const DAY_MS = 86_400_000;

/**
 * Retention (docs/architecture.md, "Fleet"). The coverage stream keeps the last
 * COV_PER_SUBJECT messages of each (target, node); a node writes a snapshot of its whole state
 * at least every SNAPSHOT_EVERY messages, so the last snapshot and everything after it are always
 * kept, and a joiner replays at most COV_PER_SUBJECT messages per (target, node).
 */
export const LIMITS = {
  covPerSubject: 128,
  snapshotEvery: 48,
  covMaxBytes: 2 * 2 ** 30,
  /** Data of a node that stopped publishing a month ago goes; live nodes re-snapshot daily. */
  maxAgeMs: 30 * DAY_MS,
  resnapshotMs: DAY_MS,
  nodesMaxBytes: 64 * 2 ** 20,
  buildsMaxBytes: 4 * 2 ** 30,
  /** A build record is published in chunks of this size (NATS' default max_payload is 1 MiB). */
  chunkBytes: 256 * 1024,
  maxTargetsPerStatus: 4096,
  /** Largest part of a snapshot, in pairs; bigger states go as several messages. */
  maxPairsPerMessage: 200_000,
} as const;

// ---------------------------------------------------------------- varint pairs

function putVarint(out: number[], v: number): void {
  while (v >= 0x80) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
}

/** (pc, sec) pairs, pcs strictly ascending, as varint gaps and sec - base. */
export function encodePairs(pcs: ArrayLike<number>, secs: ArrayLike<number>): { base: number; bytes: Uint8Array } {
  let base = 0;
  for (let i = 0; i < pcs.length; i++) if (base === 0 || secs[i]! < base) base = secs[i]!;
  const out: number[] = [];
  let prev = -1;
  for (let i = 0; i < pcs.length; i++) {
    putVarint(out, pcs[i]! - prev - 1);
    putVarint(out, secs[i]! - base);
    prev = pcs[i]!;
  }
  return { base, bytes: Uint8Array.from(out) };
}

export function decodePairs(bytes: Uint8Array, count: number, base: number, pcsLen: number): { pcs: Uint32Array; secs: Uint32Array } {
  const pcs = new Uint32Array(count), secs = new Uint32Array(count);
  let at = 0;
  const varint = (): number => {
    let v = 0, mul = 1;
    for (let k = 0; k < 5; k++) {
      if (at >= bytes.length) throw bad('COVD_ERR_FLEET_TRUNCATED', 'coverage pairs end early');
      const b = bytes[at++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
    throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'a varint longer than 5 bytes');
  };
  let prev = -1;
  for (let i = 0; i < count; i++) {
    const pc = prev + 1 + varint();
    if (pc >= pcsLen) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', `PC index ${pc} beyond the ${pcsLen} PCs of the target`);
    const sec = base + varint();
    if (sec > 0xffffffff) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'a first-seen time out of range');
    pcs[i] = pc; secs[i] = sec;
    prev = pc;
  }
  if (at !== bytes.length) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'bytes after the last coverage pair');
  return { pcs, secs };
}

function bad(code: string, message: string): ProtocolError {
  return new ProtocolError(message, code);
}

// ---------------------------------------------------------------- coverage messages

/** One node's coverage of one target: new PCs (a delta) or every PC it has seen (a snapshot, possibly in parts). */
export interface CoverageMsg {
  kind: 'delta' | 'snapshot';
  node: string;
  id: string;
  /** pcTableHash of the target's PC table: must be the id (a node never merges another table). */
  pcsHash: string;
  pcsLen: number;
  /** The publishing daemon's incarnation (its start, ms) and its message counter in it. */
  inc: number;
  seq: number;
  /** When the node sent it, by its clock (ms). */
  sent: number;
  /** PC indices ascending, and when the node first saw each (seconds since the epoch, > 0). */
  pcs: Uint32Array;
  secs: Uint32Array;
}

interface CoverageWire {
  v: number; k: 'd' | 's'; node: string; id: string; h: string; n: number; inc: number; seq: number; t: number;
  c: number; base: number; z: 0 | 1; b: Uint8Array;
}

export function encodeCoverage(m: CoverageMsg): Uint8Array {
  const { base, bytes } = encodePairs(m.pcs, m.secs);
  const z = m.kind === 'snapshot' && bytes.length > 512;
  const wire: CoverageWire = {
    v: FLEET_PROTOCOL, k: m.kind === 'delta' ? 'd' : 's', node: m.node, id: m.id, h: m.pcsHash, n: m.pcsLen, inc: m.inc, seq: m.seq, t: m.sent,
    c: m.pcs.length, base, z: z ? 1 : 0, b: z ? deflateRawSync(bytes) : bytes,
  };
  return packLarge(packr, wire, false); // a snapshot of a big target's PCs can be large
}

const isUint = (x: unknown, max = Number.MAX_SAFE_INTEGER): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= max;

function unpackMap(data: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = packr.unpack(data);
  } catch (err) {
    throw bad('COVD_ERR_FLEET_UNDECODABLE', `${what} is not msgpack (${(err as Error).message.slice(0, 80)})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', `${what} is not a map`);
  const o = v as Record<string, unknown>;
  if (o.v !== FLEET_PROTOCOL) throw bad('COVD_ERR_FLEET_VERSION', `${what} has protocol version ${JSON.stringify(o.v)}, not ${FLEET_PROTOCOL}`);
  return o;
}

/**
 * Decodes a coverage message from `subject`, which must be the covSubject of its id and node:
 * the server's subject permissions then decide who may speak for a node. Throws ProtocolError.
 */
export function decodeCoverage(names: FleetNames, subject: string, data: Uint8Array, maxPcs: number): CoverageMsg {
  const o = unpackMap(data, 'coverage message');
  if (o.k !== 'd' && o.k !== 's') throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'coverage message of unknown kind');
  if (typeof o.node !== 'string' || !NAME_RE.test(o.node)) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'coverage message without a valid node name');
  if (!isCoverageId(o.id)) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'coverage message without a valid target id');
  if (subject !== names.covSubject(o.id, o.node)) throw bad('COVD_ERR_FLEET_SUBJECT', `coverage message for ${o.id} of node ${o.node} on subject ${subject.slice(0, 200)}`);
  if (o.h !== o.id) throw bad('COVD_ERR_FLEET_PCS_MISMATCH', `coverage message for ${o.id} claims PC table ${String(o.h).slice(0, 32)}`);
  if (!isUint(o.n, maxPcs) || o.n === 0) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', `coverage message with ${String(o.n)} PCs (1 to ${maxPcs} accepted)`);
  if (!isUint(o.inc) || !isUint(o.seq) || !isUint(o.t) || !isUint(o.base, 0xffffffff)) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'coverage message with bad counters');
  if (!isUint(o.c, Math.min(o.n, LIMITS.maxPairsPerMessage))) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', `coverage message with ${String(o.c)} pairs`);
  if (!(o.b instanceof Uint8Array)) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'coverage message without its pairs');
  if (o.c > 0 && o.base === 0) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'coverage message with first-seen time 0');
  let bytes = o.b;
  if (o.z === 1) {
    try {
      // At most 10 bytes per pair (two 5-byte varints): a deflate bomb stops there.
      bytes = inflateRawSync(o.b, { maxOutputLength: o.c * 10 + 16 });
    } catch (err) {
      throw bad('COVD_ERR_FLEET_BAD_MESSAGE', `coverage pairs do not inflate (${(err as Error).message.slice(0, 80)})`);
    }
  } else if (o.z !== 0) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'coverage message with unknown compression');
  const { pcs, secs } = decodePairs(bytes, o.c, o.base, o.n);
  return { kind: o.k === 'd' ? 'delta' : 'snapshot', node: o.node, id: o.id, pcsHash: o.h as string, pcsLen: o.n, inc: o.inc, seq: o.seq, sent: o.t, pcs, secs };
}

// ---------------------------------------------------------------- node status

export interface NodeTargetStatus {
  id: string;
  pcsHash: string;
  pcsLen: number;
  nRuns: number;
  uniqueRuns: number;
  runsPerSec: number;
  covered: number;
  lastNewAt: number | null;
}

/** A node's status: the latest counters of each of its targets. Later (inc, seq) wins. */
export interface NodeStatus {
  node: string;
  inc: number;
  seq: number;
  /** When sent, by the node's clock (ms), and how often it sends one (ms). */
  sent: number;
  every: number;
  targets: NodeTargetStatus[];
}

export function encodeStatus(s: NodeStatus): Uint8Array {
  return packr.pack({
    v: FLEET_PROTOCOL, node: s.node, inc: s.inc, seq: s.seq, t: s.sent, hb: s.every,
    // (A target's PC table hash is its id: not sent twice.)
    targets: s.targets.map((t) => [t.id, t.pcsLen, t.nRuns, t.uniqueRuns, t.runsPerSec, t.covered, t.lastNewAt ?? 0]),
  });
}

export function decodeStatus(key: string, data: Uint8Array, maxPcs: number): NodeStatus {
  const o = unpackMap(data, 'node status');
  if (typeof o.node !== 'string' || o.node !== key || !NAME_RE.test(o.node)) throw bad('COVD_ERR_FLEET_SUBJECT', `node status under key ${key.slice(0, 80)} names node ${String(o.node).slice(0, 80)}`);
  if (!isUint(o.inc) || !isUint(o.seq) || !isUint(o.t) || !isUint(o.hb, 3_600_000)) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'node status with bad counters');
  if (!Array.isArray(o.targets) || o.targets.length > LIMITS.maxTargetsPerStatus) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'node status without a valid target list');
  const targets: NodeTargetStatus[] = [];
  for (const t of o.targets as unknown[]) {
    if (!Array.isArray(t) || t.length !== 7) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'node status with a malformed target');
    const [id, n, runs, uniq, rps, cov, last] = t as unknown[];
    if (!isCoverageId(id)) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'node status with a bad target id');
    if (!isUint(n, maxPcs) || n === 0 || !isUint(runs) || !isUint(uniq) || !isUint(rps) || !isUint(cov, n) || !isUint(last)) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', `node status: bad counters for target ${id}`);
    targets.push({ id, pcsHash: id, pcsLen: n, nRuns: runs, uniqueRuns: uniq, runsPerSec: rps, covered: cov, lastNewAt: last === 0 ? null : last });
  }
  return { node: o.node, inc: o.inc, seq: o.seq, sent: o.t, every: o.hb, targets };
}

// ---------------------------------------------------------------- build records

/** What a node publishes once per build and PC table: enough for others to show the target. */
export interface BuildRecord {
  id: string;
  buildId: string | null;
  name: string;
  exe: string;
  /** The node that published it, and when (ms, its clock). */
  node: string;
  sent: number;
  pcs: BigUint64Array;
  index: SourceIndex;
}

export interface BuildManifest {
  id: string;
  pcsHash: string;
  pcsLen: number;
  buildId: string | null;
  name: string;
  exe: string;
  node: string;
  sent: number;
  chunks: number;
  bytes: number;
  sha256: string;
}

/** The build part of a key: the build-id when it is a plain hex string, else 'none'. */
export function buildKey(buildId: string | null): string {
  return buildId && /^[0-9a-f]{2,128}$/.test(buildId) ? buildId : 'none';
}

export const manifestKey = (id: string, buildId: string | null) => `${id}.${buildKey(buildId)}.m`;
export const chunkKey = (id: string, buildId: string | null, n: number) => `${id}.${buildKey(buildId)}.${n}`;
/** Who uploads a build: the first node to write this key (its name), so a fleet starting at once uploads each build once. */
export const claimKey = (id: string, buildId: string | null) => `${id}.${buildKey(buildId)}.claim`;

/** The index without what only this daemon means by it (pcsHash is the receiver's to set). */
function wireIndex(ix: SourceIndex): Record<string, unknown> {
  const { pcsHash: _h, ...rest } = ix;
  return rest as unknown as Record<string, unknown>;
}

/** A build record as a manifest and its chunks (deflated msgpack of the PC table and the index). */
export function encodeBuild(b: BuildRecord, chunkBytes: number = LIMITS.chunkBytes): { manifest: Uint8Array; chunks: Uint8Array[] } {
  const blob = deflateRawSync(packLarge(packr, { pcs: b.pcs, index: wireIndex(b.index) }, false, true));
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < blob.length; at += chunkBytes) chunks.push(blob.subarray(at, Math.min(blob.length, at + chunkBytes)));
  const manifest: BuildManifest = {
    id: b.id, pcsHash: b.id, pcsLen: b.pcs.length, buildId: b.buildId, name: b.name, exe: b.exe, node: b.node, sent: b.sent,
    chunks: chunks.length, bytes: blob.length, sha256: createHash('sha256').update(blob).digest('hex'),
  };
  return { manifest: packr.pack({ v: FLEET_PROTOCOL, ...manifest }), chunks };
}

export function decodeManifest(key: string, data: Uint8Array, maxPcs: number): BuildManifest {
  const o = unpackMap(data, 'build manifest');
  if (!isCoverageId(o.id) || o.pcsHash !== o.id) throw bad('COVD_ERR_FLEET_PCS_MISMATCH', `build manifest for ${String(o.id).slice(0, 32)} claims PC table ${String(o.pcsHash).slice(0, 32)}`);
  const buildId = o.buildId === null ? null : typeof o.buildId === 'string' && o.buildId.length <= 128 ? o.buildId : undefined;
  if (buildId === undefined) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'build manifest with a bad build-id');
  if (key !== manifestKey(o.id, buildId)) throw bad('COVD_ERR_FLEET_SUBJECT', `build manifest for ${o.id} under key ${key.slice(0, 200)}`);
  if (!isUint(o.pcsLen, maxPcs) || o.pcsLen === 0) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', `build manifest with ${String(o.pcsLen)} PCs (1 to ${maxPcs} accepted)`);
  const maxBlob = o.pcsLen * 64 + 64 * 2 ** 20;
  if (!isUint(o.bytes, maxBlob) || !isUint(o.chunks, Math.ceil(maxBlob / 1024)) || o.chunks === 0) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'build manifest with bad sizes');
  if (typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256)) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'build manifest without a sha256');
  const str = (x: unknown, max: number) => typeof x === 'string' && x.length <= max;
  if (!str(o.name, 4096) || !str(o.exe, 4096) || typeof o.node !== 'string' || !NAME_RE.test(o.node) || !isUint(o.sent)) throw bad('COVD_ERR_FLEET_BAD_MESSAGE', 'build manifest with bad names');
  return { id: o.id, pcsHash: o.pcsHash as string, pcsLen: o.pcsLen, buildId, name: o.name as string, exe: o.exe as string, node: o.node, sent: o.sent, chunks: o.chunks, bytes: o.bytes, sha256: o.sha256 };
}

/**
 * Assembles and verifies a build: the chunks' digest, the PC table's hash (it must be the
 * target id: the one check that ties coverage to a PC table), and an index that fits it.
 */
export function decodeBuild(m: BuildManifest, chunks: Uint8Array[]): BuildRecord {
  const blob = Buffer.concat(chunks);
  if (blob.length !== m.bytes || createHash('sha256').update(blob).digest('hex') !== m.sha256) throw bad('COVD_ERR_FLEET_BAD_BUILD', `build record of ${m.id}: its chunks do not match the manifest`);
  let v: unknown;
  try {
    v = packr.unpack(inflateRawSync(blob, { maxOutputLength: m.pcsLen * 64 + 256 * 2 ** 20 }));
  } catch (err) {
    throw bad('COVD_ERR_FLEET_BAD_BUILD', `build record of ${m.id} does not decode (${(err as Error).message.slice(0, 80)})`);
  }
  const o = v as { pcs?: unknown; index?: unknown } | null;
  if (!o || !(o.pcs instanceof BigUint64Array) || o.pcs.length !== m.pcsLen) throw bad('COVD_ERR_FLEET_BAD_BUILD', `build record of ${m.id} without its ${m.pcsLen}-PC table`);
  const hash = pcTableHash(o.pcs);
  if (hash !== m.id) throw bad('COVD_ERR_FLEET_PCS_MISMATCH', `build record of ${m.id} holds PC table ${hash}`);
  const index = checkIndex(o.index, m.pcsLen, m.id);
  index.pcsHash = m.id;
  return { id: m.id, buildId: m.buildId, name: m.name, exe: m.exe, node: m.node, sent: m.sent, pcs: o.pcs, index };
}

function checkIndex(x: unknown, pcsLen: number, id: string): SourceIndex {
  const fail = (why: string) => bad('COVD_ERR_FLEET_BAD_BUILD', `build record of ${id}: source index ${why}`);
  const ix = x as SourceIndex;
  const strings = (a: unknown, max: number) => Array.isArray(a) && a.length <= max && a.every((s) => typeof s === 'string' && s.length <= 4096);
  const u32 = (a: unknown, len: number): a is Uint32Array => a instanceof Uint32Array && a.length === len;
  if (!ix || typeof ix !== 'object') throw fail('missing');
  if (ix.buildId !== null && typeof ix.buildId !== 'string') throw fail('with a bad build-id');
  if (!strings(ix.directories, 1 << 22) || !strings(ix.files, 1 << 22) || !u32(ix.fileDirs, ix.files.length)) throw fail('with bad files');
  const fn = ix.functions;
  if (!fn || !strings(fn.names, 1 << 24) || !u32(fn.file, fn.names.length) || !u32(fn.line, fn.names.length)) throw fail('with bad functions');
  if (fn.linkageNames !== undefined && (!strings(fn.linkageNames, 1 << 24) || fn.linkageNames.length !== fn.names.length)) throw fail('with bad linkage names');
  if (!u32(ix.pcFile, pcsLen) || !u32(ix.pcLine, pcsLen) || !u32(ix.pcColumn, pcsLen) || !u32(ix.pcFunction, pcsLen)) throw fail(`not for ${pcsLen} PCs`);
  for (const d of ix.fileDirs) if (d >= ix.directories.length) throw fail('with a file in no directory');
  for (const f of fn.file) if (f !== NONE && f >= ix.files.length) throw fail('with a function in no file');
  for (let i = 0; i < pcsLen; i++) {
    const f = ix.pcFile[i]!, g = ix.pcFunction[i]!;
    if ((f !== NONE && f >= ix.files.length) || (g !== NONE && g >= fn.names.length)) throw fail('with a PC out of its tables');
  }
  const { buildId, directories, files, fileDirs, functions, pcFile, pcLine, pcColumn, pcFunction } = ix;
  const out: SourceIndex = { buildId, directories, files, fileDirs, functions, pcFile, pcLine, pcColumn, pcFunction };
  // The inlined code (the daemon's second pass), all three arrays or none.
  const { pcInlined, pcCallFile, pcCallLine } = ix;
  if (pcInlined !== undefined || pcCallFile !== undefined || pcCallLine !== undefined) {
    if (!u32(pcInlined, pcsLen) || !u32(pcCallFile, pcsLen) || !u32(pcCallLine, pcsLen)) throw fail(`with inlined code not for ${pcsLen} PCs`);
    for (let i = 0; i < pcsLen; i++) {
      const g = pcInlined[i]!, f = pcCallFile[i]!;
      if ((g !== NONE && g >= fn.names.length) || (f !== NONE && f >= ix.files.length)) throw fail('with inlined code out of its tables');
    }
    Object.assign(out, { pcInlined, pcCallFile, pcCallLine });
  }
  return out;
}
