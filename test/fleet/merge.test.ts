/**
 * The fleet's merge rules and wire codecs, without NATS: merges are order-independent and
 * idempotent (checked over permutations with duplicates, against a brute-force answer), and
 * every decoder refuses what does not fit (garbage, a subject that is not the message's, a PC
 * table that does not hash to the id, a deflate bomb, an index out of its tables).
 */
import { expect } from 'chai';
import { FleetTarget } from '../../src/fleet/merge.js';
import {
  decodeBuild, decodeCoverage, decodeManifest, decodeStatus, encodeBuild, encodeCoverage, encodeStatus, fleetNames, chunkKey, manifestKey,
  type BuildRecord, type CoverageMsg,
} from '../../src/fleet/protocol.js';
import { connectOptions } from '../../src/fleet/nats.js';
import { redactUrl, defaultNodeName } from '../../src/fleet/config.js';
import { loadConfig, parseServeFlags } from '../../src/daemon/config.js';
import { pcTableHash } from '../../src/contracts/ids.js';
import { ProtocolError, ConfigError } from '../../src/contracts/errors.js';
import { NONE, type SourceIndex } from '../../src/contracts/source-index.js';
import { Packr } from 'msgpackr';
import { packrOptions } from '../../src/contracts/msgpack.js';
import { deflateRawSync } from 'node:zlib';

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(a: T[], r: () => number): T[] {
  const b = a.slice();
  for (let i = b.length - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [b[i], b[j]] = [b[j]!, b[i]!]; }
  return b;
}

type Msg = { node: string; pcs: number[]; secs: number[] };

function stateOf(ft: FleetTarget) {
  const nodes = [...ft.nodes.values()].map((n) => ({ name: n.name, covered: n.covered, first: n.first, bits: Buffer.from(n.bits).toString('hex') })).sort((a, b) => a.name.localeCompare(b.name));
  const firstNames: (string | null)[] = [];
  for (let pc = 0; pc < ft.pcsLen; pc++) firstNames.push(ft.firstNode[pc] === 0xffff ? null : ft.nameOf(ft.firstNode[pc]!)!);
  return { covered: ft.covered, firstSec: Array.from(ft.firstSec), firstNames, nodes };
}

describe('fleet merge rules', () => {
  const pcsLen = 300;
  const r = rng(7);
  const names = ['alpha', 'bravo', 'charlie', 'delta'];
  const msgs: Msg[] = [];
  for (let i = 0; i < 40; i++) {
    const node = names[Math.floor(r() * names.length)]!;
    const set = new Set<number>();
    const n = 1 + Math.floor(r() * 30);
    while (set.size < n) set.add(Math.floor(r() * pcsLen));
    const pcs = [...set].sort((a, b) => a - b);
    // Few distinct seconds, so equal times (the name decides) happen often.
    msgs.push({ node, pcs, secs: pcs.map(() => 1_700_000_000 + Math.floor(r() * 5)) });
  }

  /** The answer from the definition: per PC, the smallest (second, name) over every message. */
  function bruteForce() {
    const best: ({ sec: number; name: string } | null)[] = new Array(pcsLen).fill(null);
    const bits = new Map<string, Set<number>>();
    for (const m of msgs) {
      const b = bits.get(m.node) ?? new Set<number>();
      bits.set(m.node, b);
      m.pcs.forEach((pc, i) => {
        b.add(pc);
        const s = m.secs[i]!, cur = best[pc];
        if (!cur || s < cur.sec || (s === cur.sec && m.node < cur.name)) best[pc] = { sec: s, name: m.node };
      });
    }
    return { best, bits };
  }

  it('gives the same state in any order, with duplicates, and it is the definition\'s', () => {
    const reference = (() => { const ft = new FleetTarget('x', pcsLen); for (const m of msgs) ft.apply(m.node, m.pcs, m.secs); return stateOf(ft); })();
    for (let k = 0; k < 25; k++) {
      const ft = new FleetTarget('x', pcsLen);
      // Every message at least once, some twice or three times, in a random order.
      const stream = shuffle(msgs.flatMap((m) => (r() < 0.3 ? [m, m] : r() < 0.1 ? [m, m, m] : [m])), r);
      for (const m of stream) ft.apply(m.node, m.pcs, m.secs);
      expect(stateOf(ft)).to.deep.equal(reference);
    }
    const { best, bits } = bruteForce();
    expect(reference.firstSec).to.deep.equal(best.map((b) => b?.sec ?? 0));
    expect(reference.firstNames).to.deep.equal(best.map((b) => b?.name ?? null));
    expect(reference.covered).to.equal(best.filter(Boolean).length);
    for (const n of reference.nodes) {
      expect(n.covered).to.equal(bits.get(n.name)!.size);
      expect(n.first).to.equal(best.filter((b) => b?.name === n.name).length);
    }
    // The first counts partition the union.
    expect(reference.nodes.reduce((a, n) => a + n.first, 0)).to.equal(reference.covered);
  });

  it('reports what a message changed in the union: new PCs and earlier times only', () => {
    const ft = new FleetTarget('x', 10);
    expect(ft.apply('b', [1, 2], [100, 100])).to.deep.include({ pcs: [1, 2], secs: [100, 100], fresh: 2 });
    // A later time changes nothing; the same time from a smaller name takes "first" but not the time.
    const later = ft.apply('c', [1], [200]);
    expect(later.pcs).to.deep.equal([]);
    expect(ft.nodes.get('c')!.covered).to.equal(1);
    expect(ft.apply('a', [2], [100])).to.deep.include({ pcs: [2], secs: [100], fresh: 0 });
    expect(ft.nameOf(ft.firstNode[2]!)).to.equal('a');
    expect(ft.nodes.get('b')!.first).to.equal(1);
    // An earlier time moves both.
    expect(ft.apply('c', [1], [50]).secs).to.deep.equal([50]);
    expect(ft.nameOf(ft.firstNode[1]!)).to.equal('c');
    // Out of range and zero times are ignored.
    expect(ft.apply('c', [10, 3], [5, 0]).pcs).to.deep.equal([]);
  });

  it('keeps a node\'s latest counters whatever order they come in', () => {
    const versions = [{ inc: 1, seq: 5 }, { inc: 2, seq: 1 }, { inc: 1, seq: 9 }, { inc: 2, seq: 3 }, { inc: 2, seq: 2 }];
    for (let k = 0; k < 10; k++) {
      const ft = new FleetTarget('x', 4);
      for (const v of shuffle(versions, r)) ft.setCounters('n', { ...v, nRuns: v.inc * 100 + v.seq, uniqueRuns: 0, runsPerSec: 0, lastNewAt: null });
      expect(ft.nodes.get('n')!.counters!.nRuns).to.equal(203);
    }
  });
});

describe('fleet wire codecs', () => {
  const names = fleetNames('covd');
  const id = '0123456789abcdef';
  const base: CoverageMsg = { kind: 'delta', node: 'n1', id, pcsHash: id, pcsLen: 1000, inc: 1, seq: 1, sent: 1, pcs: Uint32Array.from([0, 5, 6, 999]), secs: Uint32Array.from([1_700_000_000, 1_700_000_100, 1_700_000_000, 1_800_000_000]) };
  const packr = new Packr(packrOptions);
  const expectRefused = (f: () => unknown, code: string) => {
    let err: unknown;
    try { f(); } catch (e) { err = e; }
    expect(err, code).to.be.instanceOf(ProtocolError);
    expect((err as ProtocolError).code).to.equal(code);
  };

  it('round-trips deltas and compressed snapshots', () => {
    const d = decodeCoverage(names, names.covSubject(id, 'n1'), encodeCoverage(base), 1 << 20);
    expect(Array.from(d.pcs)).to.deep.equal([0, 5, 6, 999]);
    expect(Array.from(d.secs)).to.deep.equal(Array.from(base.secs));
    const many = Uint32Array.from({ length: 900 }, (_, i) => i);
    const snap = { ...base, kind: 'snapshot' as const, pcs: many, secs: Uint32Array.from(many, (i) => 1_700_000_000 + (i % 7)) };
    const bytes = encodeCoverage(snap);
    expect(bytes.length).to.be.below(900); // deflated: well under a byte per pair here
    const s = decodeCoverage(names, names.covSubject(id, 'n1'), bytes, 1 << 20);
    expect(s.kind).to.equal('snapshot');
    expect(Array.from(s.secs)).to.deep.equal(Array.from(snap.secs));
  });

  it('refuses garbage, other subjects, other PC tables, out-of-range PCs and deflate bombs', () => {
    const subj = names.covSubject(id, 'n1');
    expectRefused(() => decodeCoverage(names, subj, Uint8Array.from([0xc1, 0xff, 0x00, 0x13]), 1 << 20), 'COVD_ERR_FLEET_UNDECODABLE');
    expectRefused(() => decodeCoverage(names, subj, packr.pack([1, 2, 3]), 1 << 20), 'COVD_ERR_FLEET_BAD_MESSAGE');
    expectRefused(() => decodeCoverage(names, names.covSubject(id, 'n2'), encodeCoverage(base), 1 << 20), 'COVD_ERR_FLEET_SUBJECT');
    expectRefused(() => decodeCoverage(names, subj, encodeCoverage({ ...base, pcsHash: 'fedcba9876543210' }), 1 << 20), 'COVD_ERR_FLEET_PCS_MISMATCH');
    expectRefused(() => decodeCoverage(names, subj, encodeCoverage({ ...base, pcsLen: 999 }), 1 << 20), 'COVD_ERR_FLEET_BAD_MESSAGE');
    expectRefused(() => decodeCoverage(names, subj, encodeCoverage(base), 500), 'COVD_ERR_FLEET_BAD_MESSAGE');
    const wire = packr.unpack(encodeCoverage(base)) as Record<string, unknown>;
    expectRefused(() => decodeCoverage(names, subj, packr.pack({ ...wire, v: 2 }), 1 << 20), 'COVD_ERR_FLEET_VERSION');
    expectRefused(() => decodeCoverage(names, subj, packr.pack({ ...wire, c: 5 }), 1 << 20), 'COVD_ERR_FLEET_TRUNCATED');
    // Claims 4 pairs, inflates to 10 MB of zeros: stopped at 4 * 10 + 16 bytes.
    expectRefused(() => decodeCoverage(names, subj, packr.pack({ ...wire, z: 1, b: deflateRawSync(Buffer.alloc(10 << 20)) }), 1 << 20), 'COVD_ERR_FLEET_BAD_MESSAGE');
  });

  it('round-trips node statuses and refuses one under another node\'s key', () => {
    const st = { node: 'n1', inc: 5, seq: 2, sent: 3, every: 2000, targets: [{ id, pcsHash: id, pcsLen: 10, nRuns: 99, uniqueRuns: 3, runsPerSec: 7, covered: 4, lastNewAt: null }] };
    expect(decodeStatus('n1', encodeStatus(st), 1 << 20)).to.deep.equal(st);
    expectRefused(() => decodeStatus('n2', encodeStatus(st), 1 << 20), 'COVD_ERR_FLEET_SUBJECT');
    expectRefused(() => decodeStatus('n1', encodeStatus({ ...st, targets: [{ ...st.targets[0]!, covered: 11 }] }), 1 << 20), 'COVD_ERR_FLEET_BAD_MESSAGE');
  });

  const index = (n: number): SourceIndex => ({
    buildId: 'abcd', directories: ['/src'], files: ['a.c'], fileDirs: Uint32Array.from([0]),
    functions: { names: ['f'], file: Uint32Array.from([0]), line: Uint32Array.from([3]) },
    pcFile: new Uint32Array(n), pcLine: new Uint32Array(n).fill(4), pcColumn: new Uint32Array(n), pcFunction: new Uint32Array(n),
  });
  const build = (pcs: BigUint64Array, ix = index(pcs.length)): BuildRecord => ({ id: pcTableHash(pcs), buildId: 'abcd', name: 't', exe: '/x/t', node: 'n1', sent: 1, pcs, index: ix });

  it('verifies a build record: digest, PC table hash, index shape', () => {
    const pcs = BigUint64Array.from({ length: 5000 }, (_, i) => 0x400000n + BigInt(i * 4));
    const rec = build(pcs);
    const { manifest, chunks } = encodeBuild(rec, 4096);
    expect(chunks.length).to.be.greaterThan(1);
    const m = decodeManifest(manifestKey(rec.id, 'abcd'), manifest, 1 << 20);
    expect(chunkKey(rec.id, 'abcd', 0)).to.equal(`${rec.id}.abcd.0`);
    const back = decodeBuild(m, chunks);
    expect(back.pcs).to.deep.equal(pcs);
    expect(back.index.pcsHash).to.equal(rec.id);
    // A chunk changed in transit.
    const bad = chunks.map((c) => Uint8Array.from(c));
    bad[0]![10]! ^= 1;
    expectRefused(() => decodeBuild(m, bad), 'COVD_ERR_FLEET_BAD_BUILD');
    // A record claiming an id its PC table does not hash to (digest consistent: a forgery, not noise).
    const forged = encodeBuild({ ...rec, id: 'ffffffffffffffff' });
    const fm = decodeManifest(manifestKey('ffffffffffffffff', 'abcd'), forged.manifest, 1 << 20);
    expectRefused(() => decodeBuild(fm, forged.chunks), 'COVD_ERR_FLEET_PCS_MISMATCH');
    // An index pointing out of its own tables.
    const ix = index(pcs.length);
    ix.pcFile[7] = 3;
    const oob = encodeBuild(build(pcs, ix));
    expectRefused(() => decodeBuild(decodeManifest(manifestKey(rec.id, 'abcd'), oob.manifest, 1 << 20), oob.chunks), 'COVD_ERR_FLEET_BAD_BUILD');
    ix.pcFile[7] = NONE;
    expect(() => decodeBuild(decodeManifest(manifestKey(rec.id, 'abcd'), encodeBuild(build(pcs, ix)).manifest, 1 << 20), encodeBuild(build(pcs, ix)).chunks)).to.not.throw();
    // A manifest under another id's key.
    expectRefused(() => decodeManifest(manifestKey('0000000000000000', 'abcd'), manifest, 1 << 20), 'COVD_ERR_FLEET_SUBJECT');
  });

  it('carries the inlined code of a build record, checked like the rest of the index', () => {
    const pcs = BigUint64Array.from({ length: 3000 }, (_, i) => 0x400000n + BigInt(i * 4));
    const decode = (ix: SourceIndex) => {
      const { manifest, chunks } = encodeBuild(build(pcs, ix));
      return decodeBuild(decodeManifest(manifestKey(pcTableHash(pcs), 'abcd'), manifest, 1 << 20), chunks).index;
    };
    const ix = index(pcs.length);
    const withInlined = (): SourceIndex => ({
      ...ix,
      pcInlined: Uint32Array.from({ length: pcs.length }, (_, i) => (i % 3 === 0 ? 0 : NONE)),
      pcCallFile: Uint32Array.from({ length: pcs.length }, (_, i) => (i % 3 === 0 ? 0 : NONE)),
      pcCallLine: Uint32Array.from({ length: pcs.length }, (_, i) => (i % 3 === 0 ? 10 + i : 0)),
    });
    const back = decode(withInlined());
    expect(back.pcInlined).to.deep.equal(withInlined().pcInlined);
    expect(back.pcCallFile).to.deep.equal(withInlined().pcCallFile);
    expect(back.pcCallLine).to.deep.equal(withInlined().pcCallLine);
    expect(decode(ix).pcInlined, 'an index without it stays without').to.equal(undefined);
    // Out of its tables, of the wrong length, or only part of it: refused.
    const oob = withInlined(); oob.pcInlined![5] = ix.functions.names.length;
    const oobFile = withInlined(); oobFile.pcCallFile![6] = ix.files.length;
    const short = withInlined(); short.pcCallLine = short.pcCallLine!.subarray(1);
    const part = withInlined(); delete part.pcCallFile;
    for (const bad of [oob, oobFile, short, part]) expectRefused(() => decode(bad), 'COVD_ERR_FLEET_BAD_BUILD');
  });
});

describe('fleet settings', () => {
  it('passes token, credentials and TLS to the client, and shows URLs without passwords', () => {
    const c = loadConfig(parseServeFlags(['--nats', 'nats://u:secret@h1:4222,tls://h2:4222', '--nats-token', 'tok', '--nats-tls-ca', '/etc/ca.pem', '--node-name', 'n-1']), { XDG_CONFIG_HOME: '/nonexistent' });
    expect(c.nats).to.deep.equal(['nats://u:secret@h1:4222', 'tls://h2:4222']);
    const o = connectOptions({ ...c, nats: c.nats! }, 'covd n-1');
    // The URL's user and password become options; the servers go without them; --nats-token wins over a URL's.
    expect(o.servers).to.deep.equal(['nats://h1:4222', 'tls://h2:4222']);
    expect([o.user, o.pass]).to.deep.equal(['u', 'secret']);
    expect(o.token).to.equal('tok');
    expect(connectOptions({ nats: ['nats://t%40k@h:1'] }, 'x')).to.deep.include({ servers: ['nats://h:1'], token: 't@k' });
    expect(o.tls).to.deep.equal({ caFile: '/etc/ca.pem' });
    expect(o.maxReconnectAttempts).to.equal(-1);
    const withCreds = connectOptions({ nats: ['h:1'], natsCreds: '/some/user.creds' }, 'x');
    expect(withCreds.authenticator).to.be.a('function');
    expect(withCreds.token).to.equal(undefined);
    expect(redactUrl('nats://u:secret@h1:4222')).to.equal('nats://***@h1:4222');
    expect(redactUrl('tok@h1:4222')).to.equal('***@h1:4222');
    expect(redactUrl('tls://h2:4222')).to.equal('tls://h2:4222');
  });

  it('refuses bad names, bad URLs and two kinds of credentials', () => {
    const env = { XDG_CONFIG_HOME: '/nonexistent' };
    expect(() => loadConfig(parseServeFlags(['--node-name', 'a.b']), env)).to.throw(ConfigError, /node name/);
    expect(() => loadConfig(parseServeFlags(['--nats-prefix', 'a b']), env)).to.throw(ConfigError, /prefix/);
    expect(() => loadConfig(parseServeFlags(['--nats', 'nats://h:1/path?x']), env)).to.throw(ConfigError, /not a NATS server URL/);
    expect(() => loadConfig(parseServeFlags(['--nats', 'h:1', '--nats-token', 't', '--nats-creds', '/c']), env)).to.throw(ConfigError, /not both/);
    expect(defaultNodeName('build-7.lab.example.com')).to.equal('build-7-lab-example-com');
    expect(loadConfig(parseServeFlags([]), env).nats).to.equal(undefined);
  });
});
