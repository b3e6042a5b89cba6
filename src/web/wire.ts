/**
 * The server's side of the wire (docs/protocol.md): the encodings it writes into server messages
 * and the strict check of what clients send. Their decoders (deltaPcs, expandFirstSeen) live in
 * ./protocol.ts, which the browser bundles; these stay here because the index encoding reads the
 * target's coverage file, which only the daemon can.
 */
import type { SourceIndex } from '../contracts/source-index.js';
import { pcTableHash } from '../contracts/ids.js';
import { CoverageFile } from '../coverage/reader.js';
import type { ClientMessage, WireSourceIndex } from './protocol.js';

/** Strictly checks a decoded client message; anything else is refused. */
export function validate(m: unknown): ClientMessage | null {
  if (typeof m !== 'object' || m === null || Array.isArray(m) || ArrayBuffer.isView(m)) return null;
  const o = m as Record<string, unknown>;
  const id = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 64;
  switch (o.t) {
    case 'ping':
    case 'sub-targets':
      return { t: o.t };
    case 'unsub':
    case 'resync':
      return id(o.id) ? { t: o.t, id: o.id } : null;
    case 'sub': {
      if (!id(o.id)) return null;
      if (o.have !== undefined && o.have !== null && typeof o.have !== 'string') return null;
      if (o.since !== undefined && !(Number.isSafeInteger(o.since) && (o.since as number) >= 0)) return null;
      const out: ClientMessage = { t: 'sub', id: o.id };
      if (typeof o.have === 'string' || o.have === null) out.have = o.have;
      if (o.words === true) out.words = true;
      if (o.sparse === true) out.sparse = true;
      if (typeof o.since === 'number') out.since = o.since;
      if (typeof o.epoch === 'string' && o.epoch.length <= 64) out.epoch = o.epoch;
      return out;
    }
    default:
      return null;
  }
}

/** Pairs (word index, mask) of the 32-bit words that gained bits; null when there is nothing to group. Decoded by deltaPcs. */
export function encodeWords(pcs: Uint32Array): Uint32Array | null {
  if (pcs.length < 3) return null;
  const sorted = Uint32Array.from(pcs).sort();
  const out: number[] = [];
  let word = -1, mask = 0;
  for (const pc of sorted) {
    const w = pc >>> 5;
    if (w !== word) {
      if (word >= 0) out.push(word, mask >>> 0);
      word = w;
      mask = 0;
    }
    mask |= 1 << (pc & 31);
  }
  out.push(word, mask >>> 0);
  return Uint32Array.from(out);
}

/** The first-seen times of the seen PCs only, in PC order (a sparse snapshot). Decoded by expandFirstSeen. */
export function sparseFirstSeen(seen: Uint8Array, firstSeen: Uint32Array, pcsLen: number): Uint32Array {
  const out: number[] = [];
  for (let byte = 0; byte * 8 < pcsLen; byte++) {
    let b = seen[byte]!;
    while (b !== 0) {
      const bit = 31 - Math.clz32(b & -b);
      const pc = byte * 8 + bit;
      if (pc < pcsLen) out.push(firstSeen[pc]!);
      b &= b - 1;
    }
  }
  return Uint32Array.from(out);
}

/** Per index: the PCs it answers (link-time addresses), or null when they could not be read. */
const pcTables = new WeakMap<SourceIndex, BigUint64Array | null>();

/**
 * The PC addresses for the index message (`pcAddresses`, shown in the page's PC tooltip), read
 * from the target's coverage file once per index. Left out when the file is gone or unreadable,
 * or holds another PC table than the one the index was resolved for (pcsHash).
 */
export function pcAddressesOf(index: SourceIndex, coverageFile: string | undefined): BigUint64Array | undefined {
  let pcs = pcTables.get(index);
  if (pcs === undefined) {
    pcs = null;
    if (coverageFile) {
      try {
        const f = CoverageFile.open(coverageFile);
        try {
          if (f.pcs.length === index.pcFile.length && (!index.pcsHash || pcTableHash(f.pcs) === index.pcsHash)) pcs = f.pcs;
        } finally {
          f.close();
        }
      } catch {
        // No addresses then: the page shows PC indices.
      }
    }
    pcTables.set(index, pcs);
  }
  return pcs ?? undefined;
}

/** Only the index's own fields travel (plus the PC addresses when known). */
export function wireIndex(i: SourceIndex, pcAddresses?: BigUint64Array): WireSourceIndex {
  return {
    ...(pcAddresses ? { pcAddresses } : {}),
    buildId: i.buildId,
    directories: i.directories,
    files: i.files,
    fileDirs: i.fileDirs,
    functions: { names: i.functions.names, file: i.functions.file, line: i.functions.line },
    pcFile: i.pcFile,
    pcLine: i.pcLine,
    pcColumn: i.pcColumn,
    pcFunction: i.pcFunction,
  };
}
