/** The agent's log formats as src/daemon/inputs-log.ts reads them: whole records, torn and garbled ones, resynchronising. */
import { expect } from 'chai';
import { crc32 } from 'node:zlib';
import { MAGIC_CRASH, MAGIC_INPUT, parseRecords, type CrashRecord, type InputRecord } from '../../src/daemon/inputs-log.js';

function input(pcs: number[], opts: { hash?: string; part?: number; parts?: number; size?: bigint } = {}): Buffer {
  const len = 64 + 4 * pcs.length + 4;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(MAGIC_INPUT, 0);
  b.writeUInt16LE(len, 4);
  b[6] = 1;
  b[7] = 1;
  Buffer.from(opts.hash ?? 'ab'.repeat(20), 'hex').copy(b, 8);
  b.writeUInt32LE(77, 28);
  b.writeBigUInt64LE(1_700_000_000_000n, 32);
  b.writeBigUInt64LE(12n, 40);
  b.writeBigUInt64LE(opts.size ?? 9n, 48);
  b.writeUInt16LE(opts.part ?? 0, 56);
  b.writeUInt16LE(opts.parts ?? 1, 58);
  b.writeUInt32LE(pcs.length, 60);
  pcs.forEach((pc, i) => b.writeUInt32LE(pc, 64 + 4 * i));
  b.writeUInt32LE(crc32(b.subarray(0, len - 4)), len - 4);
  return b;
}

function crash(frames: bigint[], detail: string, artifact: string): Buffer {
  let len = 96 + 8 * frames.length + 4 + detail.length + artifact.length;
  len += (4 - (len % 4)) % 4;
  len += 4;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(MAGIC_CRASH, 0);
  b.writeUInt16LE(len, 4);
  b[6] = 1;
  b[7] = 3; // timeout
  Buffer.from('cd'.repeat(20), 'hex').copy(b, 8);
  b.writeBigUInt64LE(4n, 48);
  b.writeUInt16LE(frames.length, 58);
  b.writeUInt32LE(70, 60);
  b.writeBigUInt64LE(0x1000n, 64);
  b.writeBigUInt64LE(0x1000n, 72);
  b.writeBigUInt64LE(0x9000n, 80);
  b.writeBigUInt64LE(1n, 88);
  frames.forEach((f, i) => b.writeBigUInt64LE(f, 96 + 8 * i));
  let p = 96 + 8 * frames.length;
  b.writeUInt16LE(detail.length, p);
  b.writeUInt16LE(artifact.length, p + 2);
  p += 4;
  b.write(detail, p, 'latin1');
  b.write(artifact, p + detail.length, 'latin1');
  b.writeUInt32LE(crc32(b.subarray(0, len - 4)), len - 4);
  return b;
}

describe('agent logs: parsing', () => {
  it('reads whole records and leaves a partial one for the next read', () => {
    const a = input([1, 2, 3]), b = input([4], { hash: 'ef'.repeat(20) });
    const buf = Buffer.concat([a, b, input([5]).subarray(0, 30)]);
    const r = parseRecords<InputRecord>('input', buf, 1000, 10);
    expect(r.records.map((x) => x.offset)).to.deep.equal([1000, 1000 + a.length]);
    expect(Array.from(r.records[0]!.record.pcs)).to.deep.equal([1, 2, 3]);
    expect(r.records[1]!.record).to.include({ hash: 'ef'.repeat(20), pid: 77, run: 12, size: 9, part: 0, parts: 1, time: 1_700_000_000_000 });
    expect(r.consumed).to.equal(a.length + b.length);
    expect(r.skipped).to.deep.equal([]);
  });

  it('skips garbage, torn and garbled records with a reason and finds the next record', () => {
    const torn = input([1, 2]).subarray(0, 20);
    const garbled = input([3]);
    garbled[65] ^= 1;
    const good = input([6]);
    const buf = Buffer.concat([Buffer.from('zzzz'), torn, garbled, input([99]), good]);
    const r = parseRecords<InputRecord>('input', buf, 0, 10);
    expect(r.records.map((x) => Array.from(x.record.pcs))).to.deep.equal([[6]]);
    expect(r.consumed).to.equal(buf.length);
    const reasons = r.skipped.map((s) => s.reason).join(' / ');
    expect(reasons).to.match(/bad magic/);
    expect(reasons).to.match(/CRC mismatch/);
    expect(reasons).to.match(/names PC 99, past the target's 10 PCs/);
    expect(r.skipped.reduce((n, s) => n + s.bytes, 0)).to.equal(buf.length - good.length);
  });

  it('refuses impossible lengths, parts and sizes', () => {
    const long = input([1]);
    long.writeUInt16LE(8192, 4);
    const parts = input([1], { part: 2, parts: 2 });
    const size = input([1], { size: 2n ** 60n });
    const r = parseRecords<InputRecord>('input', Buffer.concat([long, parts, size]), 0, 10);
    expect(r.records).to.have.length(0);
    expect(r.skipped.map((s) => s.reason).join(' / ')).to.match(/impossible record length 8192.*part 2 of 2.*impossible size/);
  });

  it('reads a crash record: kind, input, frames, detail and artifact location', () => {
    const rec = crash([0x1234n, 0x7fff0000n], 'libFuzzer: timeout', 'P/work/run/');
    const r = parseRecords<CrashRecord>('crash', rec, 0, 10);
    expect(r.skipped).to.deep.equal([]);
    const c = r.records[0]!.record;
    expect(c).to.include({ kind: 'timeout', hash: 'cd'.repeat(20), size: 4, status: 70, detail: 'libFuzzer: timeout' });
    expect(c.frames).to.deep.equal([0x1234n, 0x7fff0000n]);
    expect(c.exact).to.equal(1n);
    expect(c.artifact).to.deep.equal({ prefix: '/work/run/' });
    // Input records in a crash log are not crash records.
    expect(parseRecords<CrashRecord>('crash', input([1]), 0, 10).records).to.have.length(0);
  });
});
