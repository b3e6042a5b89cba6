/**
 * A fleet target compares its nodes (GET /api/targets/:id/compare/node:NAME): two daemons fuzz
 * one build from different inputs and share it through a real nats-server; a third shows the
 * union. Each node's own coverage is read independently, by two daemons without a fleet that
 * watch the same coverage directories (their JSON exports are exactly that node's lines), and
 * every comparison must be the union against that node's lines, file by file and line by line.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildExampleTarget, exampleDir, runFuzzer, findCoverageFile, type FuzzerRun } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { startServe, pollUntil, countBits, type ServeProcess } from '../daemon/helpers.js';
import { startNats, type NatsServer } from './nats-server.js';

interface Export { files: { path: string; coveredLines: number[] }[]; seenPcs: number[] }
interface Cmp { a: Record<string, unknown>; b: Record<string, unknown>; files: { path: string; onlyA: number[]; onlyB: number[]; both: number }[]; totals: { onlyA: number; onlyB: number; both: number } }
type Lines = Map<string, Set<number>>;

function linesOf(e: Export): Lines {
  const m: Lines = new Map();
  for (const f of e.files) {
    if (!f.coveredLines.length) continue;
    let s = m.get(f.path);
    if (!s) m.set(f.path, (s = new Set()));
    for (const l of f.coveredLines) s.add(l);
  }
  return m;
}

function unionOf(a: Lines, b: Lines): Lines {
  const m: Lines = new Map();
  for (const x of [a, b]) for (const [p, s] of x) {
    let t = m.get(p);
    if (!t) m.set(p, (t = new Set()));
    for (const l of s) t.add(l);
  }
  return m;
}

/** A against B per path, as the endpoint should give it (files with nothing on either side left out). */
function expected(a: Lines, b: Lines): Cmp['files'] {
  const out: Cmp['files'] = [];
  for (const path of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const la = a.get(path) ?? new Set<number>(), lb = b.get(path) ?? new Set<number>();
    const onlyA = [...la].filter((l) => !lb.has(l)).sort((x, y) => x - y);
    const onlyB = [...lb].filter((l) => !la.has(l)).sort((x, y) => x - y);
    const both = [...la].filter((l) => lb.has(l)).length;
    if (onlyA.length + onlyB.length + both) out.push({ path, onlyA, onlyB, both });
  }
  return out;
}

const count = (l: Lines) => [...l.values()].reduce((n, s) => n + s.size, 0);

describe('fleet: a fleet target compares its nodes', function () {
  this.timeout(300_000);
  let dir: string;
  let nats: NatsServer;
  const daemons: ServeProcess[] = [];
  const fuzzers: FuzzerRun[] = [];

  before(async () => {
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-fleet-cmp-'));
    nats = await startNats(join(dir, 'jetstream'));
  });
  after(async () => {
    for (const f of fuzzers) await f.stop('SIGKILL');
    for (const d of daemons) { d.child.kill('SIGKILL'); await d.exited; }
    await nats?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the union against each node: onlyA is what the other node alone covered, both is the node\'s own lines', async () => {
    const exe = await buildExampleTarget();
    const cd = (n: string) => join(dir, `cd-${n}`);
    const serve = async (n: string, fleet: boolean, watch: string) => {
      const d = await startServe({ socket: join(dir, `${n}.sock`), stateDir: join(dir, `state-${n}`), watch: [watch], extra: fleet ? ['--nats', nats.url, '--node-name', n] : [] });
      daemons.push(d);
      return d;
    };
    const [A, B, C] = [await serve('A', true, cd('A')), await serve('B', true, cd('B')), await serve('C', true, cd('C'))];
    // Each node runs one of the example's two seed inputs once (-runs=0): two different,
    // overlapping shares of one build, the same every time.
    const fuzz = (n: string, d: ServeProcess, seed: string) => {
      const corpus = join(dir, `corpus-${n}`);
      fs.mkdirSync(corpus);
      fs.copyFileSync(join(exampleDir(), 'corpus', seed), join(corpus, seed));
      const f = runFuzzer(exe, { covdDir: cd(n), socket: d.socket, runs: 0, corpus });
      fuzzers.push(f);
      return f.done;
    };
    for (const r of await Promise.all([fuzz('A', A, 'meta-v2.timg'), fuzz('B', B, 'small-v1.timg')])) expect(r.code, r.stderr.slice(-400)).to.equal(0);
    const files = { A: await findCoverageFile(cd('A')), B: await findCoverageFile(cd('B')) };
    const id = files.A.split('/').pop()!;
    expect(files.B.split('/').pop(), 'one build, one id').to.equal(id);

    // Each node's own coverage, from a daemon outside the fleet that reads the same file.
    const json = async <T>(url: string): Promise<T> => {
      const r = await fetch(url);
      expect(r.status, `${url}: ${await r.clone().text()}`).to.equal(200);
      return (await r.json()) as T;
    };
    const own: Record<'A' | 'B', Lines> = { A: new Map(), B: new Map() };
    for (const n of ['A', 'B'] as const) {
      const solo = await serve(`solo-${n}`, false, cd(n));
      const bits = countBits(readCoverageFile(files[n]).seen);
      await pollUntil(`solo ${n} to read node ${n}'s file`, async () => {
        const t = ((await json<{ targets: { id: string; state: string; stats: { covered: number } }[] }>(`${solo.url}api/targets`)).targets).find((x) => x.id === id);
        return t?.state === 'ready' && t.stats.covered === bits;
      }, 60_000);
      own[n] = linesOf(await json<Export>(`${solo.url}api/targets/${id}/coverage?format=json`));
    }
    const union = unionOf(own.A, own.B);
    expect(count(union), 'each node covered a line the other did not (precondition)').to.be.greaterThan(Math.max(count(own.A), count(own.B)));

    // C fuzzes nothing: it shows the union; A shows it too, with its own share among the nodes.
    const unionPcs = (() => {
      const a = readCoverageFile(files.A), b = readCoverageFile(files.B);
      let n = 0;
      for (let i = 0; i < a.seen.length; i++) n += countBits(Uint8Array.of(a.seen[i]! | b.seen[i]!));
      return n;
    })();
    for (const d of [C, A]) {
      await pollUntil('the union everywhere', async () => {
        const t = await json<{ stats: { covered: number }; nodes?: { name: string }[] }>(`${d.url}api/targets/${id}`);
        return t.stats.covered === unionPcs && t.nodes?.length === 2;
      }, 60_000);
      expect(linesOf(await json<Export>(`${d.url}api/targets/${id}/coverage?format=json`)), 'the union\'s lines are both nodes\' lines').to.deep.equal(union);
      for (const n of ['A', 'B'] as const) {
        const c = await json<Cmp>(`${d.url}api/targets/${id}/compare/node:${n}`);
        expect(c.b).to.deep.equal({ node: n });
        expect(c.a).to.include({ id });
        const want = expected(union, own[n]);
        expect(c.files, `${d === C ? 'C' : 'A'}: union against node ${n}`).to.deep.equal(want);
        const other = own[n === 'A' ? 'B' : 'A'];
        // What the other node alone covered, and nothing the node has that the union lacks.
        expect(c.totals).to.deep.equal({ onlyA: count(union) - count(own[n]), onlyB: 0, both: count(own[n]) });
        for (const f of c.files) for (const l of f.onlyA) expect(other.get(f.path)?.has(l), `${f.path}:${l} only in the other node`).to.equal(true);
        expect(c.totals.onlyA).to.be.greaterThan(0);
      }
    }
    expect((await fetch(`${C.url}api/targets/${id}/compare/node:nobody`)).status).to.equal(404);
    expect((await fetch(`${C.url}api/targets/${id}/compare/node:bad%20name`)).status).to.equal(400);
  });
});
