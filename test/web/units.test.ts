/** The web server's pure pieces: admission rules, delta and snapshot encodings, lcov of a known index. */
import { expect } from 'chai';
import { HostPolicy, isLoopback, originAllowed, parseHost, presentedToken, RateLimiter, tokenMatches } from '../../src/web/security.js';
import { applyDelta, deltaPcs, expandFirstSeen } from '../../src/web/protocol.js';
import { encodeWords, sparseFirstSeen, validate } from '../../src/web/wire.js';
import { LARGE_PACK_BYTES, ownBytes, packedBound, packLarge } from '../../src/util/packed.js';
import { Packr } from 'msgpackr';
import { packrOptions } from '../../src/contracts/msgpack.js';
import { pickEncoding } from '../../src/web/assets.js';
import { summarize, toLcov } from '../../src/web/summary.js';
import { NONE, type SourceIndex } from '../../src/workers/types.js';

describe('web: admission rules', () => {
  it('tells loopback addresses apart', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(h), h).to.equal(true);
    for (const h of ['0.0.0.0', '10.0.0.1', '::', 'example.com', '128.0.0.1', '::ffff:10.0.0.1']) expect(isLoopback(h), h).to.equal(false);
  });

  it('parses Host values and allows only listed names on our port', () => {
    expect(parseHost('LocalHost:8080')).to.deep.equal({ hostname: 'localhost', port: 8080 });
    expect(parseHost('[::1]:80')).to.deep.equal({ hostname: '::1', port: 80 });
    for (const bad of ['', 'a b', 'x:y', 'host:123456', '[zz]:1', 'a/b']) expect(parseHost(bad), bad).to.equal(null);
    const p = new HostPolicy('127.0.0.1', 7000, ['covd.lan', 'proxy.lan:443']);
    for (const ok of ['127.0.0.1:7000', 'localhost:7000', 'localhost', '[::1]:7000', 'covd.lan:7000', 'proxy.lan:443']) expect(p.allows(ok), ok).to.equal(true);
    for (const no of ['127.0.0.1:7001', 'evil.example:7000', 'covd.lan:443', 'proxy.lan:7001x', '0.0.0.0:7000']) expect(p.allows(no), no).to.equal(false);
    expect(new HostPolicy('0.0.0.0', 1, []).allows('0.0.0.0:1')).to.equal(false);
    expect(new HostPolicy('::1', 5, []).allows('[::1]:5')).to.equal(true);
  });

  it('accepts only same-origin Origin headers', () => {
    expect(originAllowed('', 'localhost:1')).to.equal(true);
    expect(originAllowed('http://localhost:1', 'localhost:1')).to.equal(true);
    expect(originAllowed('https://localhost:1', 'LOCALHOST:1')).to.equal(true);
    for (const o of ['http://localhost:2', 'http://evil.example', 'null', 'file:///x', 'chrome-extension://abc', 'garbage']) expect(originAllowed(o, 'localhost:1'), o).to.equal(false);
  });

  it('finds the token in the header, the cookie or the query, and compares exactly', () => {
    expect(presentedToken('Bearer abc', '', '')).to.equal('abc');
    expect(presentedToken('', 'a=1; covd_token=x%20y; b=2', '')).to.equal('x y');
    expect(presentedToken('', 'covd_token=%E0%A4%A', 'q')).to.equal('');
    expect(presentedToken('', '', 'q')).to.equal('q');
    expect(tokenMatches('abc', 'abc')).to.equal(true);
    expect(tokenMatches('abd', 'abc')).to.equal(false);
    expect(tokenMatches('ab', 'abc')).to.equal(false);
  });

  it('rate-limits with token buckets per address', () => {
    let now = 0;
    const r = new RateLimiter(10, 20, () => now);
    let ok = 0;
    for (let i = 0; i < 50; i++) if (r.take('a')) ok++;
    expect(ok).to.equal(20);
    expect(r.take('b')).to.equal(true);
    now += 1000;
    ok = 0;
    for (let i = 0; i < 50; i++) if (r.take('a')) ok++;
    expect(ok).to.equal(10);
  });

  it('picks the best encoding the client accepts', () => {
    const both = { br: Buffer.alloc(1), gzip: Buffer.alloc(1) };
    expect(pickEncoding('gzip, deflate, br', both)).to.equal('br');
    expect(pickEncoding('gzip', both)).to.equal('gzip');
    expect(pickEncoding('br;q=0, gzip', both)).to.equal('gzip');
    expect(pickEncoding('', both)).to.equal('identity');
    expect(pickEncoding('br', {})).to.equal('identity');
  });
});

describe('web: protocol encodings', () => {
  it('keeps encoded messages in Buffers of their own, not views of the packer\'s buffer', () => {
    // After a big message (an index) msgpackr packs the next ones into the same large buffer.
    const packr = new Packr(packrOptions);
    packr.pack({ t: 'index', pcFile: new Uint32Array(4 << 20) });
    const small = packr.pack({ t: 'delta', pcs: Uint32Array.of(1, 2, 3) });
    expect(small.buffer.byteLength, 'what pack() returns pins').to.be.greaterThan(1 << 20);
    const kept = ownBytes(small);
    expect(kept.equals(small)).to.equal(true);
    expect(kept.buffer.byteLength, 'what is kept pins').to.be.at.most(64 << 10);
    const big = Buffer.alloc(1 << 20, 7);
    expect(ownBytes(big), 'a buffer it fills is kept as it is').to.equal(big);
  });

  it('leaves msgpackr\'s grown buffer behind a large message (packLarge)', () => {
    const packr = new Packr(packrOptions);
    const index = { t: 'index', pcFile: Uint32Array.from({ length: 4 << 20 }, (_, i) => i) };
    const kept = packLarge(packr, index, true);
    expect(kept.length).to.be.greaterThan(LARGE_PACK_BYTES);
    expect(kept.buffer.byteLength, 'a kept large message holds at most twice its bytes').to.be.at.most(2 * kept.length);
    expect((packr.unpack(kept) as typeof index).pcFile[12345]).to.equal(12345);
    // What plain pack() does after it: the next message lands in the grown buffer.
    packr.pack(index);
    expect(packr.pack({ t: 'delta' }).buffer.byteLength, 'pack() after a large message').to.be.greaterThan(16 << 20);
    const written = packLarge(packr, index, false);
    const next = packr.pack({ t: 'delta', pcs: Uint32Array.of(1, 2, 3) });
    expect(next.buffer.byteLength, 'the next message after packLarge').to.be.at.most(64 << 10);
    expect((packr.unpack(next) as { pcs: Uint32Array }).pcs[2]).to.equal(3);
    // The bytes handed out before are not written over by later messages.
    for (let i = 0; i < 50; i++) packr.pack({ t: 'delta', pcs: Uint32Array.of(i, i, i), pad: 'x'.repeat(1000) });
    expect((packr.unpack(written) as typeof index).pcFile[4 << 19]).to.equal(4 << 19);
    expect(packLarge(packr, { t: 'small' }, true).buffer.byteLength, 'a small kept message').to.be.at.most(64 << 10);
  });

  it('packs a large message into a buffer of its own size when asked (packedBound)', () => {
    const packr = new Packr(packrOptions);
    const names = Array.from({ length: 20_000 }, (_, i) => `ns::fn_${i}(\u00e9\u4e2d, int)`);
    const index = { t: 'index', id: 'x', index: { buildId: null, files: ['/a.c', '/b.c'], functions: { names, line: new Uint32Array(20_000) }, pcFile: new Uint32Array(1 << 20), big: 2n ** 60n, ok: true, none: undefined } };
    const plain = packr.pack(index);
    expect(packedBound(index), 'an upper bound').to.be.at.least(plain.length);
    expect(packedBound(index), 'and not far above').to.be.below(plain.length * 1.5);
    packLarge(packr, { t: 'reset' }, false);
    const sized = packLarge(packr, index, true, true);
    expect(Buffer.compare(sized, plain)).to.equal(0);
    expect(sized.buffer.byteLength, 'its buffer: the bound, not a doubling').to.be.at.most(packedBound(index) + 64);
    expect(packr.pack({ t: 'delta' }).buffer.byteLength, 'msgpackr left with a small buffer').to.be.at.most(64 << 10);
    expect(packedBound(new Map()), 'what it cannot bound').to.equal(Infinity);
    expect(packedBound(2n ** 63n), 'a 64-bit bigint').to.equal(9);
    expect(packedBound(2n ** 64n), 'a longer bigint').to.equal(Infinity);
    // A message that fails to pack leaves no buffer made for it behind.
    const wide = Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, new Uint8Array(16)]));
    expect(() => packLarge(packr, wide, true, true)).to.throw();
    expect(packr.pack({ t: 'delta' }).buffer.byteLength, 'after a failed large message').to.be.at.most(64 << 10);
    // A value it cannot bound is packed as pack() does.
    expect(Buffer.compare(packLarge(packr, { m: new Map([[1, 2]]) }, true, true), packr.pack({ m: new Map([[1, 2]]) }))).to.equal(0);
  });

  it('word-encodes deltas losslessly and only when it saves space', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % 100_000;
    for (const n of [0, 1, 2, 3, 50, 5000]) {
      const pcs = Uint32Array.from({ length: n }, rnd);
      const words = encodeWords(pcs);
      if (n < 3) expect(words).to.equal(null);
      if (!words) continue;
      const back = [...deltaPcs({ pcs: new Uint32Array(0), words })].sort((a, b) => a - b);
      expect(back).to.deep.equal([...new Set(pcs)].sort((a, b) => a - b));
    }
    const dense = Uint32Array.from({ length: 320 }, (_, i) => 1000 + i);
    expect(encodeWords(dense)!.length).to.be.lessThan(dense.length);
  });

  it('applies deltas: bits, first-seen times, and only PCs new to the client', () => {
    const seen = new Uint8Array(8), first = new Uint32Array(64);
    expect(applyDelta(seen, first, { pcs: Uint32Array.of(1, 9, 63), time: 5_000_400 })).to.deep.equal([1, 9, 63]);
    expect(applyDelta(seen, first, { pcs: Uint32Array.of(9, 10, 500), time: 9_000_000 })).to.deep.equal([10]);
    expect([...seen]).to.deep.equal([2, 6, 0, 0, 0, 0, 0, 128]);
    expect(first[1]).to.equal(5000);
    expect(first[10]).to.equal(9000);
    expect(first[2]).to.equal(0);
  });

  it('round-trips sparse first-seen times', () => {
    const pcsLen = 77;
    const seen = new Uint8Array(16), first = new Uint32Array(pcsLen);
    for (const pc of [0, 5, 8, 40, 76]) {
      seen[pc >> 3]! |= 1 << (pc & 7);
      first[pc] = 1000 + pc;
    }
    const sparse = sparseFirstSeen(seen, first, pcsLen);
    expect([...sparse]).to.deep.equal([1000, 1005, 1008, 1040, 1076]);
    expect([...expandFirstSeen({ seen, firstSeen: sparse, sparse: true }, pcsLen)]).to.deep.equal([...first]);
    expect(expandFirstSeen({ seen, firstSeen: first }, pcsLen)).to.equal(first);
  });

  it('validates client messages strictly', () => {
    expect(validate({ t: 'sub', id: 'a', have: null, words: true, since: 3, extra: 1 })).to.deep.equal({ t: 'sub', id: 'a', have: null, words: true, since: 3 });
    for (const bad of [null, 1, 'sub', [], new Uint8Array(2), { t: 'sub' }, { t: 'sub', id: '' }, { t: 'sub', id: 'a', since: 1.5 }, { t: 'sub', id: 'a', have: 3 }, { t: 'resync' }, { t: 'nope' }, { id: 'a' }]) {
      expect(validate(bad), JSON.stringify(bad)).to.equal(null);
    }
  });
});

describe('web: per-file summary', () => {
  it('counts PCs, lines and functions per file from a known index', () => {
    // Two files; file 1 has two functions. PC 5 has no file; PC 6 has line 0.
    const index: SourceIndex = {
      buildId: null,
      directories: ['/src'],
      files: ['a.c', 'b.c'],
      fileDirs: Uint32Array.of(0, 0),
      functions: { names: ['fa', 'fb1', 'fb2'], file: Uint32Array.of(0, 1, 1), line: Uint32Array.of(1, 10, 20) },
      pcFile: Uint32Array.of(0, 0, 1, 1, 1, NONE, 1),
      pcLine: Uint32Array.of(2, 2, 11, 12, 21, 0, 0),
      pcColumn: new Uint32Array(7),
      pcFunction: Uint32Array.of(0, 0, 1, 1, 2, NONE, 2),
    };
    const seen = Uint8Array.of(0b0000_1001, 0, 0, 0, 0, 0, 0, 0); // PCs 0 and 3
    const s = summarize(index, seen, 7, 4);
    const none = { pcs: { covered: 0, total: 0 }, lines: { covered: 0, total: 0 }, functions: { covered: 0, total: 0 }, branches: { covered: 0, total: 0 }, files: 0 };
    // Branches: the PCs of lines with two or more (a.c:2 has PCs 0 and 1, PC 0 seen).
    expect(s.totals).to.deep.equal({
      pcs: { covered: 2, total: 7 }, lines: { covered: 2, total: 4 }, functions: { covered: 2, total: 3 }, branches: { covered: 1, total: 2 }, files: 2,
      // PC 5 has no file: in the totals, in neither group.
      project: { pcs: { covered: 2, total: 6 }, lines: { covered: 2, total: 4 }, functions: { covered: 2, total: 3 }, branches: { covered: 1, total: 2 }, files: 2 }, library: none, root: '/src/',
    });
    expect(s.files.map((f) => f.relPath)).to.deep.equal(['a.c', 'b.c']);
    expect(s.files.map((f) => [f.path, f.pcs, f.lines, f.functions])).to.deep.equal([
      ['/src/a.c', { covered: 1, total: 2 }, { covered: 1, total: 1 }, { covered: 1, total: 1 }],
      ['/src/b.c', { covered: 1, total: 4 }, { covered: 1, total: 3 }, { covered: 1, total: 2 }],
    ]);
    expect([...s.lineHits[1]!.lines]).to.deep.equal([11, 12, 21]);
    expect([...s.lineHits[1]!.hits]).to.deep.equal([0, 1, 0]);
  });

  it('keeps library code apart: system headers and --exclude patterns, in totals and lcov', () => {
    const index: SourceIndex = {
      buildId: null,
      directories: ['/p/build', '/usr/lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits', '/p/third_party/zlib'],
      files: ['../src/main.cc', 'basic_string.h', 'inflate.c', '../src/util/str.cc'],
      fileDirs: Uint32Array.of(0, 1, 2, 0),
      functions: { names: ['main', 'std::string::size', 'inflate', 'util::trim'], file: Uint32Array.of(0, 1, 2, 3), line: Uint32Array.of(1, 5, 9, 3) },
      pcFile: Uint32Array.of(0, 0, 1, 1, 1, 2, 3),
      pcLine: Uint32Array.of(2, 3, 6, 7, 8, 10, 4),
      pcColumn: new Uint32Array(7),
      pcFunction: Uint32Array.of(0, 0, 1, 1, 1, 2, 3),
    };
    const seen = Uint8Array.of(0b0101_0101, 0, 0, 0, 0, 0, 0, 0); // PCs 0, 2, 4, 6
    const s = summarize(index, seen, 7, 1, [/\/third_party\//]);
    const byPath = Object.fromEntries(s.files.map((f) => [f.path, f]));
    expect(Object.keys(byPath).sort()).to.deep.equal(['/p/src/main.cc', '/p/src/util/str.cc', '/p/third_party/zlib/inflate.c', '/usr/include/c++/12/bits/basic_string.h']);
    expect(byPath['/usr/include/c++/12/bits/basic_string.h']!.library).to.equal(true);
    expect(byPath['/p/third_party/zlib/inflate.c']!.library).to.equal(true);
    expect(byPath['/p/src/main.cc']!.library).to.equal(false);
    expect(byPath['/p/src/util/str.cc']!.relPath).to.equal('util/str.cc');
    expect(s.totals.root).to.equal('/p/src/');
    expect(s.totals.project.pcs).to.deep.equal({ covered: 2, total: 3 });
    expect(s.totals.library.pcs).to.deep.equal({ covered: 2, total: 4 });
    expect(s.totals.project.files + s.totals.library.files).to.equal(s.totals.files);
    const t = { name: 't', index, seen, firstSeen: new Uint32Array(7), seq: 1 } as unknown as Parameters<typeof toLcov>[0];
    const sf = (lcov: string) => lcov.split('\n').filter((l) => l.startsWith('SF:')).map((l) => l.slice(3)).sort();
    expect(sf(toLcov(t, s))).to.deep.equal(['/p/src/main.cc', '/p/src/util/str.cc']);
    expect(sf(toLcov(t, s, { library: true }))).to.have.length(4);
  });
});
