/**
 * Comparisons end to end (GET /api/targets/:a/compare/:b, `covd diff`): real agent-instrumented
 * builds of examples/tinyimg fuzzed under `covd serve`, each answer checked against what the
 * target's own JSON exports (GET /api/targets/:id/coverage?format=json) say.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildExampleTarget, runFuzzer } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { request } from '../web/harness.js';
import { startServe, pollUntil, countBits, covdBin, type ServeProcess } from './helpers.js';

interface Export { seq: number; files: { path: string; coveredLines: number[] }[] }
interface Cmp { a: { id: string; at?: number }; b: { id: string }; files: { path: string; onlyA: number[]; onlyB: number[]; both: number }[]; totals: { onlyA: number; onlyB: number; both: number } }

/** Covered lines by path from a JSON export (two file indices may share a normalised path). */
function linesOf(e: Export): Map<string, Set<number>> {
  const m = new Map<string, Set<number>>();
  for (const f of e.files) {
    if (!f.coveredLines.length) continue;
    let s = m.get(f.path);
    if (!s) m.set(f.path, (s = new Set()));
    for (const l of f.coveredLines) s.add(l);
  }
  return m;
}

/** The comparison computed independently from two exports' line sets. */
function expected(a: Map<string, Set<number>>, b: Map<string, Set<number>>) {
  const out = new Map<string, { onlyA: number[]; onlyB: number[]; both: number }>();
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const la = a.get(path) ?? new Set<number>(), lb = b.get(path) ?? new Set<number>();
    const onlyA = [...la].filter((l) => !lb.has(l)).sort((x, y) => x - y);
    const onlyB = [...lb].filter((l) => !la.has(l)).sort((x, y) => x - y);
    const both = [...la].filter((l) => lb.has(l)).length;
    out.set(path, { onlyA, onlyB, both });
  }
  return out;
}

function expectMatches(c: Cmp, want: ReturnType<typeof expected>) {
  const got = new Map(c.files.map((f) => [f.path, { onlyA: f.onlyA, onlyB: f.onlyB, both: f.both }]));
  expect([...got.keys()].sort()).to.deep.equal([...want.keys()].sort());
  for (const [p, w] of want) expect(got.get(p), p).to.deep.equal(w);
  const sum = (k: 'onlyA' | 'onlyB') => [...want.values()].reduce((n, w) => n + w[k].length, 0);
  expect(c.totals).to.deep.equal({ onlyA: sum('onlyA'), onlyB: sum('onlyB'), both: [...want.values()].reduce((n, w) => n + w.both, 0) });
}

function runCovd(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [covdBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('comparisons (compare endpoint, covd diff)', function () {
  this.timeout(300_000);
  let dir: string;
  let d: ServeProcess;
  const fuzzers: ReturnType<typeof runFuzzer>[] = [];
  const fuzz = (...a: Parameters<typeof runFuzzer>) => { const f = runFuzzer(...a); fuzzers.push(f); return f; };
  let socket: string, covDir: string;

  const get = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${d.url}${path}`);
    expect(r.status, `${path}: ${await r.clone().text()}`).to.equal(200);
    return (await r.json()) as T;
  };
  /** Waits until the daemon's view of target `id` equals its coverage file, then exports it. */
  const settledExport = async (id: string): Promise<Export> => {
    const file = join(covDir, 'v', id);
    await pollUntil(`target ${id} ready and caught up with its file`, async () => {
      const t = (await d.list()).find((x) => x.id === id);
      return t?.state === 'ready' && t.stats.covered === countBits(readCoverageFile(file).seen);
    });
    return get<Export>(`api/targets/${id}/coverage?format=json`);
  };
  /** Fuzzes exe to the end and returns its target id (the coverage file's name). */
  const fuzzToEnd = async (exe: string, opts: { runs?: number; seconds?: number; corpus?: string | null }) => {
    const before = new Set(fs.existsSync(join(covDir, 'v')) ? fs.readdirSync(join(covDir, 'v')) : []);
    const r = await fuzz(exe, { covdDir: covDir, socket, ...opts }).done;
    expect(r.code, r.stderr.slice(-500)).to.equal(0);
    const t = await pollUntil('the target', async () => (await d.list()).find((x) => x.exe === exe || (!before.has(x.id) && fs.existsSync(join(covDir, 'v', x.id)))));
    return t.id;
  };

  before(async () => {
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-cmp-'));
    socket = join(dir, 'covd.sock');
    covDir = join(dir, 'cov');
    d = await startServe({ socket, stateDir: join(dir, 'state') });
  });
  after(async () => {
    for (const f of fuzzers.splice(0)) { f.child.kill('SIGKILL'); await f.done; }
    d?.child.kill('SIGKILL');
    await d?.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  let o1 = '', o2 = '';

  it('a time comparison lists exactly the lines covered after T, and loses none', async () => {
    const exe = await buildExampleTarget({ cflags: ['-O1'] });
    // A little coverage first (a few runs from an empty corpus), then more from the seeds.
    o1 = await fuzzToEnd(exe, { runs: 20, corpus: null });
    const before = await settledExport(o1);
    // T in the middle of the next second; the second run starts in the second after it, so every
    // PC it finds is first seen (whole seconds) after T and every PC before it at or before T.
    const now = Date.now();
    const T = (Math.floor(now / 1000) + 1) * 1000 + 500;
    await sleep((Math.floor(T / 1000) + 1) * 1000 + 50 - Date.now());
    const sameAsBefore = await get<Cmp>(`api/targets/${o1}/compare/@${T}`);
    expect(sameAsBefore.totals.onlyA).to.equal(0);
    expect(sameAsBefore.totals.onlyB, 'nothing covered after T yet').to.equal(0);
    await fuzzToEnd(exe, { seconds: 3 });
    const after = await settledExport(o1);
    const c = await get<Cmp>(`api/targets/${o1}/compare/@${T}`);
    expect(c.a).to.include({ id: o1, at: T });
    expect(c.totals.onlyB, 'the second run covered new lines').to.be.greaterThan(0);
    expect(c.totals.onlyA, 'a later state never loses a line').to.equal(0);
    expectMatches(c, expected(linesOf(before), linesOf(after)));
    // %40 spells the same @.
    expect((await get<Cmp>(`api/targets/${o1}/compare/%40${T}`)).totals).to.deep.equal(c.totals);
    // Before any coverage: everything is new. Against itself: nothing differs.
    const all = await get<Cmp>(`api/targets/${o1}/compare/@0`);
    expectMatches(all, expected(new Map(), linesOf(after)));
    const self = await get<Cmp>(`api/targets/${o1}/compare/${o1}`);
    expectMatches(self, expected(linesOf(after), linesOf(after)));
    expect(self.totals.both).to.be.greaterThan(0);

    // The lcov of the difference: exactly the lines only in B, as hit.
    const r = await fetch(`${d.url}api/targets/${o1}/compare/@${T}?format=lcov`);
    expect(r.status).to.equal(200);
    const lcov = await r.text();
    const fromLcov = new Map<string, number[]>();
    let sf = '';
    for (const line of lcov.split('\n')) {
      if (line.startsWith('SF:')) fromLcov.set((sf = line.slice(3)), []);
      const m = /^DA:(\d+),(\d+)$/.exec(line);
      if (m) { expect(m[2]).to.equal('1'); fromLcov.get(sf)!.push(Number(m[1])); }
    }
    expect(lcov.split('\n').filter((l) => l === 'end_of_record').length).to.equal(fromLcov.size);
    expect(Object.fromEntries(fromLcov)).to.deep.equal(Object.fromEntries(c.files.filter((f) => f.onlyB.length).map((f) => [f.path, f.onlyB])));
  });

  it('two builds of one source (-O1, -O2) compare by source path and line', async () => {
    const exe2 = await buildExampleTarget({ cflags: ['-O2'] });
    // Little coverage on the -O2 build: the -O1 one (fuzzed from the seeds) covers lines it lacks.
    o2 = await fuzzToEnd(exe2, { runs: 5, corpus: null });
    expect(o2).to.not.equal(o1);
    const e1 = await settledExport(o1), e2 = await settledExport(o2);
    const c = await get<Cmp>(`api/targets/${o1}/compare/${o2}`);
    expect(c.a.id).to.equal(o1);
    expect(c.b.id).to.equal(o2);
    expectMatches(c, expected(linesOf(e1), linesOf(e2)));
    expect(c.totals.both, 'the builds share covered lines').to.be.greaterThan(0);
    expect(c.totals.onlyA, 'the longer-fuzzed build covers lines the other lacks').to.be.greaterThan(0);
    const back = await get<Cmp>(`api/targets/${o2}/compare/${o1}`);
    expectMatches(back, expected(linesOf(e2), linesOf(e1)));
    // Both sides' paths are the example's sources, normalised.
    expect(c.files.map((f) => f.path).some((p) => p.endsWith('/examples/tinyimg/decode.c'))).to.equal(true);
  });

  it('refuses what it cannot compare', async () => {
    const status = async (p: string) => (await fetch(`${d.url}${p}`)).status;
    expect(await status(`api/targets/${o1}/compare/ffffffffffffffff`)).to.equal(404);
    expect(await status(`api/targets/ffffffffffffffff/compare/${o1}`)).to.equal(404);
    expect(await status(`api/targets/${o1}/compare/@soon`)).to.equal(400);
    expect(await status(`api/targets/${o1}/compare/node:n2`)).to.equal(400); // no fleet resolver here
    expect(await status(`api/targets/${o1}/compare/${o1}?format=xml`)).to.equal(400);
    // Admission as for every endpoint: a foreign Host is refused.
    const port = Number(new URL(d.url).port);
    expect((await request(port, `/api/targets/${o1}/compare/${o1}`, { host: 'evil.example:80' })).status).to.equal(421);
    expect((await request(port, `/api/targets/${o1}/compare/${o1}`)).status).to.equal(200);
  });

  it('covd diff: exit 1 when A has lines B lacks, 0 when not; json and lcov as the API', async () => {
    const lossy = await runCovd(['diff', o1, o2, '--socket', socket]);
    expect(lossy.code, lossy.stderr).to.equal(1);
    expect(lossy.stdout).to.match(/only in A/);
    const gain = await runCovd(['diff', o1, '@0', '--socket', socket]);
    expect(gain.code, gain.stderr).to.equal(0);
    const same = await runCovd(['diff', o1, o1, '--socket', socket, '--format=json']);
    expect(same.code, same.stderr).to.equal(0);
    expect(JSON.parse(same.stdout)).to.deep.equal(await get<Cmp>(`api/targets/${o1}/compare/${o1}`));
    // The reverse direction's exit code follows the API's onlyA.
    const rev = await get<Cmp>(`api/targets/${o2}/compare/${o1}`);
    const revRun = await runCovd(['diff', o2, o1, '--url', d.url]);
    expect(revRun.code, revRun.stderr).to.equal(rev.totals.onlyA > 0 ? 1 : 0);
    const lcov = await runCovd(['diff', o2, o1, '--url', d.url, '--format=lcov']);
    expect(lcov.stdout).to.equal(await (await fetch(`${d.url}api/targets/${o2}/compare/${o1}?format=lcov`)).text());
    expect(lcov.stdout).to.match(/^TN:/);
    // Trouble is 2: an unknown target, no daemon, bad usage.
    expect((await runCovd(['diff', 'ffffffffffffffff', o1, '--socket', socket])).code).to.equal(2);
    expect((await runCovd(['diff', o1, o2, '--socket', join(dir, 'nobody.sock')])).code).to.equal(2);
    expect((await runCovd(['diff', o1, '@yesterday', '--socket', socket])).code).to.equal(2);
  });

  it('a daemon with a token: the endpoint wants it, covd diff passes --token', async () => {
    // A second daemon on the same coverage files (--watch), started with a token.
    const tsock = join(dir, 'token.sock');
    const t = await startServe({ socket: tsock, stateDir: join(dir, 'state-token'), watch: [covDir], extra: ['--token', 'cmp-secret'] });
    try {
      await pollUntil('both targets ready', async () => {
        const ts = await t.list();
        return [o1, o2].every((id) => ts.find((x) => x.id === id)?.state === 'ready');
      });
      const port = Number(new URL(t.url).port);
      expect((await request(port, `/api/targets/${o1}/compare/${o2}`)).status).to.equal(401);
      const ok = await request(port, `/api/targets/${o1}/compare/${o2}`, { authorization: 'Bearer cmp-secret' });
      expect(ok.status).to.equal(200);
      const without = await runCovd(['diff', o1, o2, '--socket', tsock]);
      expect(without.code).to.equal(2);
      expect(without.stderr).to.match(/401/);
      const withToken = await runCovd(['diff', o1, o2, '--socket', tsock, '--token', 'cmp-secret', '--format', 'json']);
      const body = JSON.parse(ok.body.toString()) as Cmp;
      expect(withToken.code, withToken.stderr).to.equal(body.totals.onlyA > 0 ? 1 : 0);
      expect((JSON.parse(withToken.stdout) as Cmp).totals).to.deep.equal(body.totals);
    } finally {
      t.child.kill('SIGKILL');
      await t.exited;
    }
  });
});
