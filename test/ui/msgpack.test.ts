/**
 * The page's own msgpack codec (ui/src/msgpack.ts, used instead of msgpackr so the bundle needs no
 * eval) against msgpackr with the options the daemon packs with: every kind of value the server
 * sends decodes to what msgpackr's Unpackr gives, and what the page sends decodes in msgpackr to
 * the same message (absent fields stay absent). No browser: the module is bundled with esbuild.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { Packr, Unpackr } from 'msgpackr';
import { packrOptions } from '../../src/contracts/msgpack.js';
import { repoRoot } from './browser.js';

type Codec = { decode(b: Uint8Array): unknown; encode(v: unknown): Uint8Array };

describe('ui msgpack codec (no eval) = msgpackr with packrOptions', function () {
  this.timeout(60_000);
  let codec: Codec;
  const packr = new Packr(packrOptions);
  const unpackr = new Unpackr(packrOptions);

  before(async () => {
    const esbuild = await import('esbuild');
    const out = await esbuild.build({ entryPoints: [join(repoRoot, 'ui', 'src', 'msgpack.ts')], bundle: true, format: 'esm', write: false, target: 'es2022' });
    const code = out.outputFiles[0]!.text;
    expect(code).to.not.match(/new Function|\beval\(/);
    codec = (await import('data:text/javascript;base64,' + Buffer.from(code).toString('base64'))) as Codec;
  });

  const server = (v: unknown) => {
    const bytes = packr.pack(v);
    expect(codec.decode(new Uint8Array(bytes)), JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x))?.slice(0, 80)).to.deep.equal(unpackr.unpack(bytes));
  };

  it('decodes scalars of every width, strings and nested maps/arrays like msgpackr', () => {
    for (const n of [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 0.5, -1.25, 1e300, NaN, Infinity]) server(n);
    for (const s of ['', 'a', 'x'.repeat(31), 'x'.repeat(32), 'é€😀', 'y'.repeat(300), 'z'.repeat(70_000)]) server(s);
    server([true, false, null, [], {}, [1, [2, [3]]]]);
    server({ t: 'targets', targets: [{ id: 'a', name: 'n', stats: { nRuns: 123456789012, lowestStack: null, runsPerSec: 1.5 }, afl: { instances: [{ name: 'main', alive: true }] } }] });
    server({ many: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i])) });
    server(Array.from({ length: 70_000 }, (_, i) => i % 7));
    server({ big: 2n ** 63n - 1n, neg: -(2n ** 63n), undef: undefined });
    server(new Set([1, 'two']));
    server(new Date(1_700_000_000_123));
    server(new Date(1_700_000_000_000));
  });

  it('decodes typed arrays (the index, seen bits, first-seen times, deltas) like msgpackr', () => {
    const idx = { t: 'index', id: 'x', index: { buildId: null, directories: ['/src'], files: ['a.c'], fileDirs: new Uint32Array([0]), functions: { names: ['main'], file: new Uint32Array([0]), line: new Uint32Array([3]) }, pcFile: new Uint32Array(1000).fill(0xffffffff), pcLine: new Uint32Array(1000), pcColumn: new Uint32Array(1000), pcFunction: new Uint32Array(1000), pcAddresses: new BigUint64Array([0x401000n, 0xffff_ffff_ffff_fff0n]) } };
    server(idx);
    server({ t: 'snapshot', seen: new Uint8Array([1, 2, 255]), firstSeen: new Uint32Array([5, 6]), f64: new Float64Array([1.5]), i16: new Int16Array([-3]), empty: new Uint32Array(0), big: new Uint8Array(100_000).fill(7) });
    server({ t: 'delta', pcs: new Uint32Array(0), words: new Uint32Array([3, 0x80000001]) });
    const dec = codec.decode(new Uint8Array(packr.pack({ a: new Uint32Array([1, 2, 3]) }))) as { a: Uint32Array };
    expect(dec.a).to.be.instanceOf(Uint32Array);
    expect(Array.from(dec.a)).to.deep.equal([1, 2, 3]);
  });

  it('rejects truncated and trailing data instead of guessing', () => {
    const bytes = new Uint8Array(packr.pack({ t: 'hello', version: 1, server: 'covd' }));
    expect(() => codec.decode(bytes.subarray(0, bytes.length - 2))).to.throw(/end of data/);
    expect(() => codec.decode(new Uint8Array([...bytes, 0]))).to.throw(/after the value/);
  });

  it('encodes what the page sends so that msgpackr reads the same message', () => {
    const msgs: Record<string, unknown>[] = [
      { t: 'sub-targets' },
      { t: 'sub', id: '0123456789abcdef', have: null, words: true, sparse: true },
      { t: 'sub', id: 'x', have: 'b'.repeat(40), words: true, sparse: true, since: 4_000_000_000, epoch: 'e' },
      { t: 'unsub', id: 'ü' },
      { t: 'ping', n: -5, f: 0.25, list: [1, 'a', null, false], deep: { a: { b: [] } }, long: 'q'.repeat(70_000) },
    ];
    for (const m of msgs) expect(unpackr.unpack(codec.encode(m))).to.deep.equal(m);
    // An undefined field is absent for the daemon (it checks `since !== undefined`).
    const back = unpackr.unpack(codec.encode({ t: 'sub', id: 'x', since: undefined })) as Record<string, unknown>;
    expect(back.since).to.equal(undefined);
    expect(() => codec.encode({ f: () => 1 })).to.throw(/cannot encode/);
  });
});
