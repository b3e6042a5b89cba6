/**
 * Inputs behind coverage against the real daemon (`covd serve` as a child process) and a real
 * agent-instrumented libFuzzer target: the input /pcs/:index names for a covered PC, replayed
 * alone through the same binary, reaches that PC; inputs survive the fuzzer's directory being
 * cleaned and a SIGKILL of the daemon; bad log records and input files are skipped with a reason;
 * the download obeys the same admission rules as every other endpoint; the CLI.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { buildExampleTarget, findCoverageFile, runFuzzer } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { isSeen } from '../../src/contracts/seen.js';
import type { InputSummary, PcDetail } from '../../src/contracts/inputs.js';
import { covdBin, pollUntil, startServe, type ServeProcess } from './helpers.js';

const json = async <T>(url: string, init?: RequestInit): Promise<T> => {
  const r = await fetch(url, init);
  expect(r.status, `${url}: ${r.status}`).to.equal(200);
  return (await r.json()) as T;
};

/** A valid input record (the agent's format) with a chosen hash, PCs and flags. */
function inputRecord(hash: string, pcs: number[], opts: { flags?: number; size?: number; time?: number } = {}): Buffer {
  const len = 64 + 4 * pcs.length + 4;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(0x49445643, 0);
  b.writeUInt16LE(len, 4);
  b[6] = 1;
  b[7] = opts.flags ?? 1;
  Buffer.from(hash, 'hex').copy(b, 8);
  b.writeUInt32LE(4242, 28);
  b.writeBigUInt64LE(BigInt(opts.time ?? Date.now()), 32);
  b.writeBigUInt64LE(7n, 40);
  b.writeBigUInt64LE(BigInt(opts.size ?? 3), 48);
  b.writeUInt16LE(0, 56);
  b.writeUInt16LE(1, 58);
  b.writeUInt32LE(pcs.length, 60);
  pcs.forEach((pc, i) => b.writeUInt32LE(pc, 64 + 4 * i));
  b.writeUInt32LE(crc32(b.subarray(0, len - 4)), len - 4);
  return b;
}

describe('daemon: inputs behind coverage', function () {
  this.timeout(300_000);
  let exe: string;
  let dir: string, cd: string, socket: string, stateDir: string;
  let d: ServeProcess;
  let id: string;
  let file: string;

  before(async () => {
    exe = await buildExampleTarget();
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-inputs-'));
    cd = join(dir, 'cd');
    socket = join(dir, 'covd.sock');
    stateDir = join(dir, 'state');
    d = await startServe({ socket, stateDir, watch: [cd] });
    const r = await runFuzzer(exe, { covdDir: cd, socket, runs: 60_000, extraArgs: ['-seed=5'] }).done;
    expect(r.code, r.stderr.slice(-1000)).to.equal(0);
    file = await findCoverageFile(cd);
    id = file.split('/').pop()!;
    const logged = fs.readFileSync(`${file}.inputs.log`).length;
    await pollUntil('the target to be ready with its inputs read', async () => {
      const t = (await d.list()).find((x) => x.id === id);
      if (t?.state !== 'ready') return false;
      const { inputs } = await json<{ inputs: InputSummary[] }>(`${d.url}api/targets/${id}/inputs`);
      return inputs.length > 5 && inputs.reduce((n, x) => n + x.firstPcs, 0) === t.stats.covered && logged > 0;
    });
  });
  after(async () => {
    if (d) { d.child.kill('SIGKILL'); await d.exited; }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names, for sampled covered PCs, an input that reaches the PC when replayed alone with a fresh COVD_DIR', async () => {
    const cov = readCoverageFile(file);
    const covered = [...Array(cov.pcs.length).keys()].filter((i) => isSeen(cov.seen, i));
    expect(covered.length).to.be.greaterThan(20);
    // Spread over the covered PCs, including the last ones found.
    const sample = [...new Set(Array.from({ length: 12 }, (_, k) => covered[Math.floor((k * (covered.length - 1)) / 11)]!))];
    let withLine = 0;
    for (const pc of sample) {
      const p = await json<PcDetail>(`${d.url}api/targets/${id}/pcs/${pc}`);
      expect(p.index).to.equal(pc);
      expect(p.seen).to.equal(true);
      expect(p.pc).to.equal('0x' + cov.pcs[pc]!.toString(16));
      expect(p.file).to.match(/^\/.*examples\/tinyimg\/[a-z_]+\.c$/);
      if (p.line !== null) withLine++; // line 0 (compiler-made code) is null
      expect(p.firstSeenAt).to.be.a('number');
      expect(p.input, `PC ${pc} has a first input`).to.not.equal(null);
      const res = await fetch(`${d.url}api/targets/${id}/inputs/${p.input!.hash}`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('application/octet-stream');
      expect(res.headers.get('content-disposition')).to.equal(`attachment; filename="${p.input!.hash}"`);
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(bytes.length).to.equal(p.input!.size);
      expect(createHash('sha1').update(bytes).digest('hex')).to.equal(p.input!.hash);
      // Replay: the same binary, this input alone, a fresh coverage directory.
      const replay = fs.mkdtempSync(join(dir, 'replay-'));
      fs.writeFileSync(join(replay, 'input'), bytes);
      const r = spawnSync(exe, [join(replay, 'input')], { cwd: replay, env: { ...process.env, COVD_DIR: join(replay, 'cd'), COVD_SOCKET: join(replay, 'none.sock'), COVD_AGENT_QUIET: '1' }, encoding: 'utf8' });
      expect(r.status, r.stderr.slice(-1000)).to.equal(0);
      const fresh = readCoverageFile(await findCoverageFile(join(replay, 'cd'), 5000));
      expect(isSeen(fresh.seen, pc), `replaying ${p.input!.hash} reaches PC ${pc} (${p.file}:${p.line})`).to.equal(true);
    }
    expect(withLine, 'sampled PCs with a line').to.be.at.least(sample.length / 2);
  });

  it('lists inputs newest first with how many PCs each was first to reach; covd inputs and covd input agree', async () => {
    const { inputs } = await json<{ inputs: InputSummary[] }>(`${d.url}api/targets/${id}/inputs`);
    for (let i = 1; i < inputs.length; i++) expect(inputs[i - 1]!.foundAt).to.be.at.least(inputs[i]!.foundAt);
    const covered = (await d.list()).find((t) => t.id === id)!.stats.covered;
    expect(inputs.reduce((n, x) => n + x.firstPcs, 0)).to.equal(covered);
    expect(inputs.every((x) => x.kept && x.firstPcs > 0 && /^[0-9a-f]{40}$/.test(x.hash))).to.equal(true);

    const env = { ...process.env, COVD_SOCKET: socket };
    const list = spawnSync(process.execPath, [covdBin, 'inputs', id, '--json'], { env, encoding: 'utf8' });
    expect(list.status, list.stderr).to.equal(0);
    expect((JSON.parse(list.stdout) as InputSummary[]).map((x) => x.hash)).to.deep.equal(inputs.map((x) => x.hash));
    const text = spawnSync(process.execPath, [covdBin, 'inputs', id], { env, encoding: 'utf8' });
    expect(text.stdout.trim().split('\n')).to.have.length(inputs.length);
    const one = inputs[inputs.length - 1]!;
    const got = spawnSync(process.execPath, [covdBin, 'input', id, one.hash], { env });
    expect(got.status, String(got.stderr)).to.equal(0);
    expect(createHash('sha1').update(got.stdout).digest('hex')).to.equal(one.hash);

    // --line: the inputs that first reached a PC of that line.
    const p = await json<PcDetail>(`${d.url}api/targets/${id}/pcs/${(await firstCoveredPc())}`);
    const byLine = spawnSync(process.execPath, [covdBin, 'inputs', id, '--line', `${p.file!.split('/').slice(-2).join('/')}:${p.line}`, '--json'], { env, encoding: 'utf8' });
    expect(byLine.status, byLine.stderr).to.equal(0);
    const r = JSON.parse(byLine.stdout) as { pcs: number[]; inputs: InputSummary[] };
    expect(r.pcs).to.include(p.index);
    expect(r.inputs.map((x) => x.hash)).to.include(p.input!.hash);
    const none = spawnSync(process.execPath, [covdBin, 'inputs', id, '--line', 'nowhere.c:1'], { env, encoding: 'utf8' });
    expect(none.status).to.equal(1);
  });

  async function firstCoveredPc(): Promise<number> {
    const cov = readCoverageFile(file);
    return [...Array(cov.pcs.length).keys()].find((i) => isSeen(cov.seen, i))!;
  }

  it('answers 404 naming no path for unknown inputs, 400 for malformed ones, and admits downloads like every endpoint', async () => {
    const unknown = await fetch(`${d.url}api/targets/${id}/inputs/${'0'.repeat(40)}`);
    expect(unknown.status).to.equal(404);
    const body = await unknown.text();
    expect(body).to.not.include(stateDir);
    expect(body).to.not.include(cd);
    expect((await fetch(`${d.url}api/targets/${id}/inputs/..%2F..%2Fetc%2Fpasswd`)).status).to.equal(400);
    expect((await fetch(`${d.url}api/targets/${id}/pcs/abc`)).status).to.equal(400);
    expect((await fetch(`${d.url}api/targets/${id}/pcs/99999999`)).status).to.equal(404);
    expect((await fetch(`${d.url}api/targets/0000000000000000/inputs`)).status).to.equal(404);
    // Host is checked here as everywhere (DNS rebinding).
    const { inputs } = await json<{ inputs: InputSummary[] }>(`${d.url}api/targets/${id}/inputs`);
    const u = new URL(`${d.url}api/targets/${id}/inputs/${inputs[0]!.hash}`);
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      request({ host: u.hostname, port: u.port, path: u.pathname, headers: { Host: 'evil.example' } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject).end();
    });
    expect(status).to.equal(421);
  });

  it('skips truncated, garbled, out-of-range and escaping records and files with a logged reason, and reads on past them', async () => {
    const cov = readCoverageFile(file);
    const log = `${file}.inputs.log`;
    // Reach a PC nobody has reached in this test, so we know which record must be applied.
    const unseen = [...Array(cov.pcs.length).keys()].filter((i) => !isSeen(cov.seen, i));
    expect(unseen.length).to.be.greaterThan(3);
    const linkHash = createHash('sha1').update('not this').digest('hex');
    fs.symlinkSync('/etc/hostname', join(`${file}.inputs`, linkHash)); // a file that names a path outside its directory
    const goodBytes = Buffer.from('good!');
    const goodHash = createHash('sha1').update(goodBytes).digest('hex');
    fs.writeFileSync(join(`${file}.inputs`, goodHash), goodBytes);
    const wrongHash = createHash('sha1').update('something else').digest('hex');
    fs.writeFileSync(join(`${file}.inputs`, wrongHash), 'bytes that do not hash to the name');
    const torn = inputRecord(goodHash, [unseen[0]!]).subarray(0, 40);
    const garbled = inputRecord(goodHash, [unseen[0]!]);
    garbled[70] ^= 0xff;
    fs.appendFileSync(log, Buffer.concat([
      Buffer.from('garbage!'), torn,
      garbled,
      inputRecord(goodHash, [cov.pcs.length + 10]), // PC out of range
      inputRecord(linkHash, [unseen[1]!]),
      inputRecord(wrongHash, [unseen[2]!]),
      inputRecord(goodHash, [unseen[3]!], { size: goodBytes.length }),
    ]));
    await pollUntil('the good record after the bad ones', async () => (await json<PcDetail>(`${d.url}api/targets/${id}/pcs/${unseen[3]}`)).input?.hash === goodHash, 20_000);
    const reasons = d.lines.filter((l) => l.msg === 'skipping a log record').map((l) => String(l.reason));
    expect(reasons.some((r) => /bad magic|CRC/.test(r)), reasons.join('; ')).to.equal(true);
    expect(reasons.some((r) => /past the target's/.test(r)), reasons.join('; ')).to.equal(true);
    const fileReasons = d.lines.filter((l) => l.msg === 'skipping an input file').map((l) => `${l.file}: ${l.reason}`);
    expect(fileReasons.some((r) => r.includes(linkHash) && /symbolic link/.test(r)), fileReasons.join('; ')).to.equal(true);
    expect(fileReasons.some((r) => r.includes(wrongHash) && /SHA-1/.test(r)), fileReasons.join('; ')).to.equal(true);
    // The escaping and the mislabelled files are never served.
    expect((await fetch(`${d.url}api/targets/${id}/inputs/${linkHash}`)).status).to.equal(404);
    expect((await fetch(`${d.url}api/targets/${id}/inputs/${wrongHash}`)).status).to.equal(404);
    expect(Buffer.from(await (await fetch(`${d.url}api/targets/${id}/inputs/${goodHash}`)).arrayBuffer()).toString()).to.equal('good!');
    expect((await json<PcDetail>(`${d.url}api/targets/${id}/pcs/${unseen[0]}`)).input, 'the torn and garbled records were not applied').to.equal(null);
  });

  it('still serves every input after the fuzzer\'s directory is cleaned and the daemon is killed with SIGKILL', async () => {
    const { inputs: before } = await json<{ inputs: InputSummary[] }>(`${d.url}api/targets/${id}/inputs`);
    const pc = await firstCoveredPc();
    const detail = await json<PcDetail>(`${d.url}api/targets/${id}/pcs/${pc}`);
    // Let the last pass commit (LMDB: what is committed survives a SIGKILL).
    await new Promise((r) => setTimeout(r, 1500));
    d.child.kill('SIGKILL');
    await d.exited;
    fs.rmSync(`${file}.inputs`, { recursive: true, force: true });
    fs.rmSync(`${file}.inputs.log`, { force: true });
    d = await startServe({ socket, stateDir, watch: [cd] });
    const { inputs: after } = await json<{ inputs: InputSummary[] }>(`${d.url}api/targets/${id}/inputs`);
    expect(after.map((x) => x.hash)).to.deep.equal(before.map((x) => x.hash));
    expect(after.map((x) => x.kept)).to.deep.equal(before.map((x) => x.kept));
    const kept = after.filter((x) => x.kept);
    expect(kept.length).to.be.greaterThan(5);
    for (const x of kept) {
      const b = Buffer.from(await (await fetch(`${d.url}api/targets/${id}/inputs/${x.hash}`)).arrayBuffer());
      expect(createHash('sha1').update(b).digest('hex'), x.hash).to.equal(x.hash);
    }
    expect((await json<PcDetail>(`${d.url}api/targets/${id}/pcs/${pc}`)).input).to.deep.equal(detail.input);
  });
});
