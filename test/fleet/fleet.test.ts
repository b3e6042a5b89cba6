/**
 * Many hosts, one view: real daemons (covd serve --nats) sharing coverage through a real
 * nats-server started here (loopback, a free port, JetStream in a temp directory).
 *
 * Three daemons on one machine: A and B fuzz the same build with different seeds, C fuzzes
 * nothing and shows exactly the OR of both coverage files, with each node's share. Then NATS
 * is killed, A fuzzes on, NATS comes back on the same store and every daemon converges on the
 * new union; a restarted daemon and a new one rebuild the same view from JetStream; forged and
 * garbage messages are refused, logged, and change nothing; a token reaches NATS and no log.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { buildExampleTarget, runFuzzer, findCoverageFile, type FuzzerRun } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { pcTableHash } from '../../src/contracts/ids.js';
import { encodeBuild, encodeCoverage, encodeStatus, fleetNames, manifestKey, chunkKey } from '../../src/fleet/protocol.js';

const names = fleetNames('covd');
import type { FleetStatus } from '../../src/fleet/fleet.js';
import type { TargetNode } from '../../src/contracts/hub.js';
import { startServe, pollUntil, covdBin, type ServeProcess } from '../daemon/helpers.js';
import { startNats, type NatsServer } from './nats-server.js';

interface Detail {
  id: string;
  state: string;
  stats: { covered: number; nRuns: number; uniqueRuns: number; pcsLen: number };
  fleet?: { nodes: number; online: number; remote: boolean; own: { covered: number } };
  nodes?: TargetNode[];
  indexed: boolean;
}

/** PC indices whose bit is set in a coverage file, and its run counters. */
function fileCoverage(file: string): { pcs: Set<number>; nRuns: number; uniqueRuns: number } {
  const snap = readCoverageFile(file);
  const pcs = new Set<number>();
  for (let i = 0; i < snap.header.pcsLen; i++) if ((snap.seen[i >> 3]! >> (i & 7)) & 1) pcs.add(i);
  return { pcs, nRuns: Number(snap.header.nRuns), uniqueRuns: Number(snap.header.uniqueRuns) };
}

const union = (...sets: Set<number>[]) => [...new Set(sets.flatMap((s) => [...s]))].sort((a, b) => a - b);

describe('fleet: daemons sharing coverage through NATS JetStream', function () {
  this.timeout(300_000);
  let dir: string;
  let nats: NatsServer;
  let exe: string;
  const daemons = new Map<string, ServeProcess>();
  const fuzzers: FuzzerRun[] = [];
  let id: string;
  let fileA: string, fileB: string;
  let expected: number[];

  const cd = (n: string) => join(dir, `cd-${n}`);
  const serve = async (n: string, extra: string[] = [], natsUrl = nats.url) => {
    const d = await startServe({ socket: join(dir, `${n}.sock`), stateDir: join(dir, `state-${n}`), watch: [cd(n)], extra: ['--nats', natsUrl, '--node-name', n, ...extra] });
    daemons.set(n, d);
    return d;
  };
  const json = async <T>(url: string): Promise<T> => (await fetch(url)).json() as Promise<T>;
  const detail = (d: ServeProcess) => json<Detail>(`${d.url}api/targets/${id}`);
  const seenPcs = async (d: ServeProcess): Promise<number[] | undefined> => {
    const r = await fetch(`${d.url}api/targets/${id}/coverage?format=json`);
    return r.ok ? ((await r.json()) as { seenPcs: number[] }).seenPcs : undefined;
  };
  const sameAs = (want: number[]) => async (d: ServeProcess) => {
    const got = await seenPcs(d);
    return got !== undefined && got.length === want.length && got.every((pc, i) => pc === want[i]);
  };
  const fleetOf = (d: ServeProcess): FleetStatus => {
    const r = spawnSync(process.execPath, [covdBin, 'fleet', '--socket', d.socket, '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    return JSON.parse(r.stdout) as FleetStatus;
  };
  const fuzz = (n: string, seed: number, opts: { runs?: number; seconds?: number }) => {
    const f = runFuzzer(exe, { covdDir: cd(n), socket: daemons.get(n)!.socket, ...opts, extraArgs: [`-seed=${seed}`] });
    fuzzers.push(f);
    return f.done;
  };

  before(async () => {
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-fleet-'));
    nats = await startNats(join(dir, 'jetstream'));
    exe = await buildExampleTarget();
  });

  after(async () => {
    for (const f of fuzzers) await f.stop('SIGKILL');
    for (const d of daemons.values()) { d.child.kill('SIGKILL'); await d.exited; }
    await nats?.stop();
    if (process.env.COVD_TEST_LOG === '1') for (const [n, d] of daemons) console.log(n, d.lines.map((l) => JSON.stringify(l)).join('\n'));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('three daemons: the one that fuzzes nothing shows exactly the OR of both coverage files, with each node\'s share', async () => {
    const [A, B, C] = [await serve('A'), await serve('B'), await serve('C')];
    // Short runs: far from the example's full coverage, so what comes later can still add some.
    await Promise.all([fuzz('A', 1, { runs: 10000 }), fuzz('B', 2, { runs: 10000 })]);
    fileA = await findCoverageFile(cd('A'));
    fileB = await findCoverageFile(cd('B'));
    id = fileA.split('/').pop()!;
    expect(fileB.split('/').pop(), 'one build, one PC table, one id').to.equal(id);
    expect(pcTableHash(readCoverageFile(fileA).pcs)).to.equal(id);
    const a = fileCoverage(fileA), b = fileCoverage(fileB);
    expected = union(a.pcs, b.pcs);
    expect(expected.length).to.be.greaterThan(Math.min(a.pcs.size, b.pcs.size));

    for (const d of [C, A, B]) await pollUntil(`${d === C ? 'C' : d === A ? 'A' : 'B'} to show the union`, () => sameAs(expected)(d), 60_000);
    const c = await pollUntil('C to count both nodes\' runs', async () => {
      const t = await detail(C);
      return t.stats.nRuns === a.nRuns + b.nRuns ? t : undefined;
    }, 30_000);
    expect(c.state).to.equal('ready');
    expect(c.fleet).to.deep.include({ remote: true, nodes: 2 });
    expect(c.stats.covered).to.equal(expected.length);
    expect(c.stats.uniqueRuns).to.equal(a.uniqueRuns + b.uniqueRuns);
    const byName = new Map(c.nodes!.map((n) => [n.name, n]));
    expect([...byName.keys()]).to.deep.equal(['A', 'B']);
    expect(byName.get('A')!.covered).to.equal(a.pcs.size);
    expect(byName.get('B')!.covered).to.equal(b.pcs.size);
    expect(byName.get('A')!.nRuns).to.equal(a.nRuns);
    expect(byName.get('A')!.online).to.equal(true);
    // Every PC of the union was first found by exactly one node; only A can have found A's own-only PCs.
    expect(byName.get('A')!.first + byName.get('B')!.first).to.equal(expected.length);
    const onlyA = [...a.pcs].filter((pc) => !b.pcs.has(pc)).length;
    expect(byName.get('A')!.first).to.be.at.least(onlyA);
    // A's view: its own share first, the union in its stats.
    const av = await detail(A);
    expect(av.nodes![0]).to.deep.include({ name: 'A', self: true, covered: a.pcs.size });
    expect(av.fleet).to.deep.include({ remote: false, nodes: 2 });
    expect(av.fleet!.own.covered).to.equal(a.pcs.size);
    // Which node found what: the union against one node's lines, and the lines each node found first.
    type Cmp = { b: Record<string, unknown>; totals: { onlyA: number; onlyB: number; both: number } };
    const lines = ((await json<{ totals: { lines: { covered: number } } }>(`${C.url}api/targets/${id}`)).totals.lines.covered);
    for (const n of ['A', 'B']) {
      const cmp = await json<Cmp>(`${C.url}api/targets/${id}/compare/node:${n}`);
      expect(cmp.b).to.deep.include({ node: n });
      expect(cmp.totals.onlyB, `${n}'s lines are all in the union`).to.equal(0);
      expect(cmp.totals.onlyA + cmp.totals.both).to.equal(lines);
    }
    const firstA = await json<Cmp>(`${C.url}api/targets/${id}/compare/first:A`), firstB = await json<Cmp>(`${C.url}api/targets/${id}/compare/first:B`);
    expect(firstA.totals.onlyB + firstB.totals.onlyB).to.equal(0);
    expect(firstA.totals.both + firstB.totals.both).to.be.at.least(lines); // a line can hold PCs found first by each
    expect((await fetch(`${C.url}api/targets/${id}/compare/node:nobody`)).status).to.equal(404);
    // The inlined code reaches the fleet too: the build is published after the daemon's second pass.
    const inlinedA = await pollUntil('A\'s inlined code', async () => {
      const x = await json<{ resolved: boolean }>(`${A.url}api/targets/${id}/pcs`);
      return x.resolved ? x : undefined;
    }, 30_000);
    expect(await json(`${C.url}api/targets/${id}/pcs`)).to.deep.equal(inlinedA);
    // Source files: A serves its own; C never serves a path another node's index names (the same file exists here).
    expect((await fetch(`${A.url}api/targets/${id}/source?file=0`)).status).to.equal(200);
    const refused = await fetch(`${C.url}api/targets/${id}/source?file=0`);
    expect(refused.status).to.equal(404);
    expect(((await refused.json()) as { error: string }).error).to.match(/other nodes only/);
    // The dashboard's list carries the summary, not the per-node table.
    const list = await json<{ targets: Detail[] }>(`${C.url}api/targets`);
    expect(list.targets.find((t) => t.id === id)!.fleet!.remote).to.equal(true);
    expect(list.targets.find((t) => t.id === id)!.nodes).to.equal(undefined);
    // covd fleet lists the nodes with their state.
    const f = fleetOf(C);
    expect(f.state).to.equal('connected');
    expect(f.loaded).to.equal(true);
    expect(f.nodes.map((n) => [n.name, n.self, n.online])).to.deep.equal([['C', true, true], ['A', false, true], ['B', false, true]]);
    expect(f.rejected.total).to.equal(0);
    const text = spawnSync(process.execPath, [covdBin, 'fleet', '--socket', C.socket], { encoding: 'utf8' }).stdout;
    expect(text).to.match(/^A\s+online\s+1\s+\d+/m);
  });

  it('without NATS a node fuzzes on and serves its own view; when NATS is back every daemon, one restarted meanwhile, converges on the new union', async () => {
    const [A, B] = ['A', 'B'].map((n) => daemons.get(n)!);
    let C = daemons.get('C')!;
    const before = await seenPcs(C);
    await nats.stop(); // SIGKILL: the server crashes
    await pollUntil('A to see NATS gone', () => fleetOf(A).state === 'disconnected', 30_000);
    await fuzz('A', 3, { seconds: 4 });
    const a2 = fileCoverage(fileA), b = fileCoverage(fileB);
    const next = union(a2.pcs, b.pcs);
    expect(next.length, 'the second run of A found new PCs (precondition)').to.be.greaterThan(expected.length);
    // A shows its new coverage at once; it keeps what it could not publish.
    await pollUntil('A to show its new coverage', () => sameAs(next)(A), 30_000);
    const fa = fleetOf(A);
    expect(fa.state).to.equal('disconnected');
    expect(fa.pending).to.be.at.least(next.length - expected.length);
    expect(await seenPcs(C)).to.deep.equal(before);
    await pollUntil('C to show A offline (12 s without news)', () => fleetOf(C).nodes.find((n) => n.name === 'A')!.online === false, 30_000);
    const offline = await pollUntil('the API to show A offline', async () => (await detail(C)).nodes!.find((n) => n.name === 'A' && !n.online), 5000);
    expect(offline.runsPerSec).to.equal(0);
    // C restarted while NATS is away: it starts (and keeps trying NATS); fleet targets are never stored, so it shows none yet.
    await C.stop();
    C = await serve('C');
    await C.waitForLine((l) => l.msg === 'cannot connect to NATS; retrying', 'C to find NATS away', 30_000);
    expect((await json<{ targets: unknown[] }>(`${C.url}api/targets`)).targets).to.deep.equal([]);

    await nats.start(); // same store, same port
    for (const [n, d] of [['C', C], ['B', B], ['A', A]] as const) await pollUntil(`${n} to converge`, () => sameAs(next)(d), 60_000);
    await pollUntil('A to publish everything', () => fleetOf(A).pending === 0, 30_000);
    const c = await pollUntil('C to have A\'s latest counters', async () => {
      const t = await detail(C);
      return t.nodes?.find((n) => n.name === 'A')?.nRuns === a2.nRuns ? t : undefined;
    }, 30_000);
    expect(c.nodes!.find((n) => n.name === 'A')!.covered).to.equal(a2.pcs.size);
    expect(c.nodes!.find((n) => n.name === 'A')!.online).to.equal(true);
    expected = next;
  });

  it('a restarted daemon and a new one rebuild the same view from JetStream', async () => {
    const C = daemons.get('C')!;
    const was = await detail(C);
    await C.stop();
    const C2 = await serve('C');
    await pollUntil('restarted C to rebuild the union', () => sameAs(expected)(C2), 60_000);
    const D = await serve('D');
    await pollUntil('new D to build the union', () => sameAs(expected)(D), 60_000);
    for (const d of [C2, D]) {
      const t = await pollUntil('both nodes\' counters', async () => { const t = await detail(d); return t.stats.nRuns === was.stats.nRuns ? t : undefined; }, 30_000);
      expect(t.nodes!.map((n) => [n.name, n.covered, n.first])).to.deep.equal(was.nodes!.map((n) => [n.name, n.covered, n.first]));
    }
  });

  it('refuses forged updates and garbage, logs each, and changes nothing', async () => {
    const C = daemons.get('C')!;
    const was = await detail(C);
    const rejectedBefore = fleetOf(C).rejected.total;
    const nc: NatsConnection = await connect({ servers: nats.url });
    const js = jetstream(nc);
    const pcsLen = was.stats.pcsLen;
    const msg = { kind: 'delta' as const, node: 'mallory', id, pcsHash: id, pcsLen, inc: 1, seq: 1, sent: Date.now(), pcs: Uint32Array.from([0, 1, 2, 3]), secs: Uint32Array.from([1, 1, 1, 1]) };
    try {
      // Garbage bytes, on the coverage stream and as a node status.
      await js.publish(names.covSubject(id, 'mallory'), Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 0xc1]));
      await js.publish(names.nodesSubject('mallory'), Uint8Array.from([0x93, 0x01]));
      // Another PC table under this id: more PCs than the build has.
      await js.publish(names.covSubject(id, 'mallory'), encodeCoverage({ ...msg, pcsLen: pcsLen + 1 }));
      // A PC table hash that is not the id.
      await js.publish(names.covSubject(id, 'mallory'), encodeCoverage({ ...msg, pcsHash: 'fedcba9876543210' }));
      // Speaking for node A on mallory's subject.
      await js.publish(names.covSubject(id, 'mallory'), encodeCoverage({ ...msg, node: 'A' }));
      // Counters for this target with another PC table.
      await js.publish(names.nodesSubject('mallory'), encodeStatus({ node: 'mallory', inc: 1, seq: 1, sent: Date.now(), every: 2000, targets: [{ id, pcsHash: id, pcsLen: pcsLen + 7, nRuns: 1e12, uniqueRuns: 1, runsPerSec: 1, covered: 1, lastNewAt: null }] }));
      // A build record whose PC table does not hash to the id it claims, and coverage for that id.
      const fake = 'fedcba9876543210';
      const pcs = BigUint64Array.from({ length: 64 }, (_, i) => BigInt(0x1000 + i));
      const ix = { buildId: null, directories: ['/etc'], files: ['passwd'], fileDirs: Uint32Array.from([0]), functions: { names: ['f'], file: Uint32Array.from([0]), line: Uint32Array.from([1]) }, pcFile: new Uint32Array(64), pcLine: new Uint32Array(64).fill(1), pcColumn: new Uint32Array(64), pcFunction: new Uint32Array(64) };
      const forged = encodeBuild({ id: fake, buildId: null, name: 'evil', exe: '/evil', node: 'mallory', sent: Date.now(), pcs, index: ix });
      for (let n = 0; n < forged.chunks.length; n++) await js.publish(names.buildsSubject(chunkKey(fake, null, n)), forged.chunks[n]!);
      await js.publish(names.buildsSubject(manifestKey(fake, null)), forged.manifest);
      await js.publish(names.covSubject(fake, 'mallory'), encodeCoverage({ ...msg, id: fake, pcsHash: fake, pcsLen: 64 }));
    } finally {
      await nc.close();
    }
    const codes = ['COVD_ERR_FLEET_UNDECODABLE', 'COVD_ERR_FLEET_PCS_MISMATCH', 'COVD_ERR_FLEET_SUBJECT'];
    const f = await pollUntil('C to refuse all seven', () => { const f = fleetOf(C); return f.rejected.total - rejectedBefore >= 7 ? f : undefined; }, 30_000);
    for (const code of codes) expect(f.rejected.byCode[code], code).to.be.greaterThan(0);
    // The daemon's log reaches us through its stdout, which may lag the API under load.
    const loggedCodes = () => C.lines.filter((l) => l.msg === 'fleet: rejected a message; nothing of it is merged').map((l) => l.code);
    const logged = await pollUntil('each refusal in the log', () => { const l = loggedCodes(); return codes.every((c) => l.includes(c)) ? l : undefined; }, 15_000).catch(() => loggedCodes());
    for (const code of codes) expect(logged, code).to.include(code);
    // Nothing changed: the same coverage, nodes and counters; no forged target; mallory is nobody.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await sameAs(expected)(C)).to.equal(true);
    const now = await detail(C);
    expect(now.nodes!.map((n) => n.name)).to.deep.equal(['A', 'B']);
    expect(now.stats.nRuns).to.equal(was.stats.nRuns);
    const list = await json<{ targets: Detail[] }>(`${C.url}api/targets`);
    expect(list.targets.map((t) => t.id)).to.deep.equal([id]);
    expect(fleetOf(C).nodes.map((n) => n.name)).to.not.include('mallory');
  });

  it('a daemon that showed the build as remote adopts it when its own fuzzer runs it, keeping the union', async () => {
    const [C, D] = [daemons.get('C')!, daemons.get('D')!];
    expect((await detail(D)).fleet!.remote).to.equal(true);
    await fuzz('D', 4, { runs: 3000 });
    const d = fileCoverage(await findCoverageFile(cd('D')));
    const next = union(new Set(expected), d.pcs);
    // Adopted first, then its own file's PCs counted as the coverage thread reads them.
    const t = await pollUntil('D to fuzz it as its own, with every PC of its file', async () => {
      const t = await detail(D);
      return t.fleet?.remote === false && t.state === 'ready' && t.nodes?.[0]?.name === 'D' && t.nodes[0].covered === d.pcs.size ? t : undefined;
    }, 60_000);
    expect(t.nodes![0]).to.deep.include({ self: true, covered: d.pcs.size });
    await pollUntil('D to show the new union', () => sameAs(next)(D), 30_000);
    await pollUntil('C to show it too', () => sameAs(next)(C), 30_000);
    // D's status (every 2 s) names it as a node; it may come after its coverage.
    const names3 = await pollUntil('C to list D as a node', async () => { const n = (await detail(C)).nodes!.map((x) => x.name); return n.length === 3 ? n : undefined; }, 30_000).catch(async () => (await detail(C)).nodes!.map((x) => x.name));
    expect(names3).to.deep.equal(['A', 'B', 'D']);
    // Now resolved here: D serves its source files.
    expect((await fetch(`${D.url}api/targets/${id}/source?file=0`)).status).to.equal(200);
    expected = next;
  });

  it('authenticates with a token and never logs it', async () => {
    const secret = 's3cr3t-t0ken-for-covd';
    const guarded = await startNats(join(dir, 'jetstream-auth'), ['--auth', secret]);
    try {
      const E = await serve('E', ['--nats-token', secret], guarded.url);
      await E.waitForLine((l) => l.msg === 'connected to NATS', 'E to connect with its token', 30_000);
      const F = await serve('F', [], guarded.url.replace('nats://', `nats://${secret}x@`));
      await F.waitForLine((l) => l.msg === 'cannot connect to NATS; retrying', 'F to be refused', 30_000);
      for (const d of [E, F]) expect(d.lines.map((l) => JSON.stringify(l)).join('\n')).to.not.include(secret);
      expect(fleetOf(F).servers[0]).to.equal(`nats://***@127.0.0.1:${guarded.port}`);
      expect(fleetOf(F).state).to.not.equal('connected');
    } finally {
      for (const n of ['E', 'F']) { const d = daemons.get(n); if (d) { d.child.kill('SIGKILL'); await d.exited; daemons.delete(n); } }
      await guarded.stop();
    }
  });

  it('with one user per node (docs/deployment.md\'s permissions) a node publishes as itself only, and a viewer needs no more than reading', async () => {
    const conf = join(dir, 'nats-users.conf');
    const node = (n: string) => `{ publish = { allow = ["covd.cov.*.${n}", "$KV.covd_nodes.${n}", "$KV.covd_builds.>", "$JS.API.INFO", "$JS.API.STREAM.INFO.>", "$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.MSG.GET.>", "$JS.API.CONSUMER.>"] }, subscribe = { allow = ["_INBOX.>"] } }`;
    const viewer = '{ publish = { allow = ["$KV.covd_nodes.viewer", "$JS.API.INFO", "$JS.API.STREAM.INFO.>", "$JS.API.STREAM.MSG.GET.>", "$JS.API.CONSUMER.>"] }, subscribe = { allow = ["_INBOX.>"] } }';
    fs.writeFileSync(conf, `authorization { users = [\n  { user: lab-a, password: pw-lab-a-7, permissions: ${node('lab-a')} }\n  { user: viewer, password: pw-viewer-7, permissions: ${viewer} }\n] }\n`);
    const users = await startNats(join(dir, 'jetstream-users'), ['-c', conf]);
    try {
      const P = await serve('lab-a', [], `nats://lab-a:pw-lab-a-7@127.0.0.1:${users.port}`);
      const Q = await serve('viewer', [], `nats://viewer:pw-viewer-7@127.0.0.1:${users.port}`);
      await fuzz('lab-a', 9, { runs: 3000 });
      const file = await findCoverageFile(cd('lab-a'));
      const tid = file.split('/').pop()!;
      const covered = fileCoverage(file).pcs.size;
      const t = await pollUntil('the viewer to show lab-a\'s coverage', async () => {
        const t = await json<Detail>(`${Q.url}api/targets/${tid}`);
        return t.stats?.covered === covered ? t : undefined;
      }, 60_000);
      expect(t.nodes!.map((n) => n.name)).to.deep.equal(['lab-a']);
      const nc = await connect({ servers: `127.0.0.1:${users.port}`, user: 'lab-a', pass: 'pw-lab-a-7' });
      let refused = '';
      try { await jetstream(nc).publish(names.covSubject(tid, 'lab-b'), Uint8Array.from([1]), { timeout: 5000 }); } catch (err) { refused = (err as Error).message; } finally { await nc.close(); }
      expect(refused).to.match(/Permissions Violation/);
      for (const d of [P, Q]) expect(d.lines.map((l) => JSON.stringify(l)).join('\n')).to.not.match(/pw-(lab-a|viewer)-7/);
      expect(P.lines.filter((l) => /Violation/.test(JSON.stringify(l)))).to.deep.equal([]);
    } finally {
      for (const n of ['lab-a', 'viewer']) { const d = daemons.get(n); if (d) { d.child.kill('SIGKILL'); await d.exited; daemons.delete(n); } }
      await users.stop();
    }
  });

  it('verifies the NATS server with the CA given by --nats-tls-ca', async () => {
    // A throwaway CA and a server certificate for 127.0.0.1, made here.
    const t = join(dir, 'tls');
    fs.mkdirSync(t);
    const ssl = (...args: string[]) => { const r = spawnSync('openssl', args, { cwd: t, encoding: 'utf8' }); expect(r.status, r.stderr).to.equal(0); };
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=covd test CA');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    fs.writeFileSync(join(t, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'ext.cnf');
    const secured = await startNats(join(dir, 'jetstream-tls'), ['--tls', '--tlscert', join(t, 'server.pem'), '--tlskey', join(t, 'server.key')]);
    try {
      const url = `tls://127.0.0.1:${secured.port}`;
      const G = await serve('G', ['--nats-tls-ca', join(t, 'ca.pem')], url);
      await G.waitForLine((l) => l.msg === 'connected to NATS', 'G to connect over TLS', 30_000);
      // Without the CA the server's certificate is not trusted: no connection.
      const H = await serve('H', [], url);
      await H.waitForLine((l) => l.msg === 'cannot connect to NATS; retrying', 'H to refuse the unknown certificate', 30_000);
      expect(fleetOf(H).state).to.not.equal('connected');
    } finally {
      for (const n of ['G', 'H']) { const d = daemons.get(n); if (d) { d.child.kill('SIGKILL'); await d.exited; daemons.delete(n); } }
      await secured.stop();
    }
  });
});
