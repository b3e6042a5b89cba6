/**
 * Coverage blockers end to end (GET /api/targets/:id/blockers): examples/gated, whose deep
 * functions sit behind a hashed 4-byte magic, built with `covd cc` flags at -O1 (call site
 * entries in its DWARF) and -O0 (none), fuzzed briefly under `covd serve`.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildFuzzTarget, runFuzzer } from '../../src/build/targets.js';
import { packageRoot } from '../../src/build/toolchain.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { startServe, pollUntil, countBits, type ServeProcess } from './helpers.js';

interface Blockers { id: string; seq: number; callGraph: 'dwarf' | 'none'; blockers: { caller: string; file: string; line: number; column: number; callee: string; pc: number; pcSeen: boolean; uncoveredBehind: number; functionsBehind: number }[] }
interface Export { functions: { name: string; pcs: { covered: number; total: number } }[]; seenPcs: number[] }

const DEEP = ['deep_walk', 'deep_parse', 'deep_leaf'];

describe('blockers (call graph from DWARF call sites)', function () {
  this.timeout(300_000);
  let dir: string;
  let d: ServeProcess;
  const fuzzers: ReturnType<typeof runFuzzer>[] = [];
  const source = join(packageRoot(), 'examples', 'gated', 'fuzz_gated.c');

  before(async () => {
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-blk-'));
    d = await startServe({ socket: join(dir, 'covd.sock'), stateDir: join(dir, 'state') });
  });
  after(async () => {
    for (const f of fuzzers.splice(0)) { f.child.kill('SIGKILL'); await f.done; }
    d?.child.kill('SIGKILL');
    await d?.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const get = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${d.url}${path}`);
    expect(r.status, `${path}: ${await r.clone().text()}`).to.equal(200);
    return (await r.json()) as T;
  };
  /** Builds, fuzzes for a few seconds from an empty corpus, waits for the daemon to catch up. */
  const fuzzed = async (cflags: string[]) => {
    const exe = await buildFuzzTarget({ name: 'fuzz_gated', sources: [source], cflags });
    const covDir = join(dir, `cov${cflags.join('')}`);
    const f = runFuzzer(exe, { covdDir: covDir, socket: join(dir, 'covd.sock'), seconds: 3, corpus: null });
    fuzzers.push(f);
    const r = await f.done;
    expect(r.code, r.stderr.slice(-500)).to.equal(0);
    const id = fs.readdirSync(join(covDir, 'v')).find((n) => /^[0-9a-f]{16}$/.test(n))!;
    await pollUntil('the target ready and caught up', async () => {
      const t = (await d.list()).find((x) => x.id === id);
      return t?.state === 'ready' && t.stats.covered === countBits(readCoverageFile(join(covDir, 'v', id)).seen);
    });
    return id;
  };

  it('at -O1, the call into the gated code ranks first, with everything behind it', async () => {
    const id = await fuzzed(['-O1']);
    const e = await get<Export>(`api/targets/${id}/coverage?format=json`);
    const fn = (name: string) => e.functions.find((f) => f.name === name);
    // The run did not get past the magic, and did reach the gate.
    for (const name of DEEP) expect(fn(name), name).to.not.equal(undefined);
    for (const name of DEEP) expect(fn(name)!.pcs.covered, `${name} covered`).to.equal(0);
    expect(fn('gated')!.pcs.covered).to.be.greaterThan(0);
    expect(fn('shallow')!.pcs.covered).to.be.greaterThan(0);

    const b = await get<Blockers>(`api/targets/${id}/blockers`);
    expect(b.callGraph).to.equal('dwarf');
    expect(b.blockers.length).to.be.greaterThan(0);
    const top = b.blockers[0]!;
    expect(top.caller).to.equal('gated');
    expect(top.callee).to.equal('deep_walk');
    expect(top.file.endsWith('/examples/gated/fuzz_gated.c')).to.equal(true);
    expect(top.line).to.be.greaterThan(0);
    const behind = DEEP.reduce((n, name) => n + fn(name)!.pcs.total, 0);
    expect(top.uncoveredBehind).to.be.at.least(behind);
    expect(top.functionsBehind).to.be.at.least(DEEP.length);
    // The call's own block was never reached (the magic check before it fails); weights are in order.
    expect(top.pcSeen).to.equal(e.seenPcs.includes(top.pc));
    expect(top.pcSeen).to.equal(false);
    // Nothing ranks a covered callee, or a call from an uncovered caller.
    for (const x of b.blockers) expect(fn(x.callee)!.pcs.covered, x.callee).to.equal(0);
    for (const x of b.blockers) expect(fn(x.caller)!.pcs.covered, x.caller).to.be.greaterThan(0);
    for (let i = 1; i < b.blockers.length; i++) expect(b.blockers[i - 1]!.uncoveredBehind).to.be.at.least(b.blockers[i]!.uncoveredBehind);
    // Asked again at the same seq: the same answer (cached).
    expect(await get<Blockers>(`api/targets/${id}/blockers`)).to.deep.equal(b);
  });

  it('at -O0 there are no call site entries: callGraph "none"', async () => {
    const id = await fuzzed(['-O0']);
    const b = await get<Blockers>(`api/targets/${id}/blockers`);
    expect(b).to.deep.include({ callGraph: 'none', blockers: [] });
  });

  it('unknown targets are a 404', async () => {
    expect((await fetch(`${d.url}api/targets/ffffffffffffffff/blockers`)).status).to.equal(404);
  });
});
