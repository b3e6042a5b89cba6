/**
 * Blockers on a hand-made call graph (src/web/blockers.ts): weights, sharing, cycles; and the
 * route (src/web/blockers-routes.ts) over a call graph source: none given, failures kept for a
 * while and per index, the source handed over by WebServerOptions. No fuzzer.
 */
import { expect } from 'chai';
import { findBlockers } from '../../src/web/blockers.js';
import { BlockersRoutes, NO_SOURCE_REASON } from '../../src/web/blockers-routes.js';
import type { RouteIo } from '../../src/web/inputs-routes.js';
import { startWebServer } from '../../src/web/server.js';
import { TargetRegistry } from '../../src/daemon/registry.js';
import type { CallGraphSource, CallGraphTarget, CallSites } from '../../src/contracts/callgraph.js';
import { NONE, type SourceIndex } from '../../src/contracts/source-index.js';
import { seenBytes, setSeen } from '../../src/contracts/seen.js';
import { quietLog } from './harness.js';

describe('web: blockers from a call graph', () => {
  // Functions and the function of every PC.
  const names = ['main', 'a', 'X', 'Y', 'Z', 'W', 'V'];
  const pcFn = [0, 0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 6];
  const index: SourceIndex = {
    buildId: null,
    directories: ['/p'],
    files: ['m.c'],
    fileDirs: Uint32Array.of(0),
    functions: { names, file: new Uint32Array(names.length), line: new Uint32Array(names.length) },
    pcFile: new Uint32Array(pcFn.length),
    pcLine: Uint32Array.from(pcFn.map((_, i) => 10 + i)),
    pcColumn: new Uint32Array(pcFn.length).fill(3),
    pcFunction: Uint32Array.from(pcFn),
  };
  const seen = new Uint8Array(seenBytes(pcFn.length));
  for (const pc of [0, 1, 2]) setSeen(seen, pc);
  // [caller, callee, pc]: main -> a, main -> X (twice from one block), main -> ? (indirect), a -> W,
  // X <-> Y (a cycle), Y -> Z, W -> Z (Z behind both: counted for neither), W -> V.
  const sites: [number, number, number][] = [[0, 1, 0], [0, 2, 1], [0, 2, 1], [0, NONE, 0], [1, 5, 3], [2, 3, 4], [3, 2, 6], [3, 4, 6], [5, 4, 8], [5, 6, 9]];
  const cs = {
    caller: Uint32Array.from(sites.map((s) => s[0])),
    callee: Uint32Array.from(sites.map((s) => s[1])),
    pcIndex: Uint32Array.from(sites.map((s) => s[2])),
    tail: new Uint8Array(sites.length),
  };

  it('ranks frontier calls by the uncovered code only they lead to', () => {
    const b = findBlockers(index, seen, pcFn.length, cs);
    expect(b.map((x) => [x.caller, x.callee, x.pc, x.pcSeen, x.uncoveredBehind, x.functionsBehind])).to.deep.equal([
      ['a', 'W', 3, false, 4, 2], // W (2 PCs) and V (2)
      ['main', 'X', 1, true, 3, 2], // X (2) and Y (1), through the cycle once
    ]);
    expect(b[0]).to.include({ file: '/p/m.c', line: 13, column: 3 });
  });

  it('a callee the frontier reaches two ways weighs nothing for either', () => {
    // W covered now: a -> W is no blocker; W -> V and W -> Z join the frontier, and Z, called
    // from W and reachable through X, is behind neither.
    const s2 = seen.slice();
    setSeen(s2, 8);
    const b = findBlockers(index, s2, pcFn.length, cs);
    expect(b.map((x) => [x.caller, x.callee, x.uncoveredBehind, x.functionsBehind])).to.deep.equal([
      ['main', 'X', 3, 2],
      ['W', 'V', 2, 1],
      ['W', 'Z', 0, 0],
    ]);
  });

  // ---- the route, over a registry holding one target with this index and these seen bits

  const ID = 'b10c4e5000000001';
  const hubWith = (ix: SourceIndex = index) => {
    const r = new TargetRegistry();
    r.add({ id: ID, exe: '/nonexistent/fuzz_x', coverageFile: '/nonexistent/v/' + ID, pcsLen: pcFn.length, pcsHash: '0011223344556677' });
    r.setIndex(ID, ix);
    r.applyTick(ID, { newPcs: Uint32Array.of(0, 1, 2), nRuns: 10, uniqueRuns: 3, lowestStack: null, time: Date.now() });
    return r;
  };
  /** One request: the status and body the route answered with. */
  const ask = (routes: BlockersRoutes, id = ID) => new Promise<{ status: number; body: any }>((resolve) => {
    const io: RouteIo = {
      json: (status, value) => resolve({ status, body: value }),
      error: (status, message) => resolve({ status, body: { error: message } }),
      send: () => { throw new Error('not sent as bytes'); },
      later: () => {},
    };
    expect(routes.handle(`/api/targets/${id}/blockers`, io)).to.equal(true);
  });
  /** A source answering from a queue of outcomes, recording what it was asked for. */
  class Scripted implements CallGraphSource {
    readonly asked: CallGraphTarget[] = [];
    readonly waiting: { resolve: (v: CallSites | null) => void; reject: (e: Error) => void }[] = [];
    constructor(private readonly auto?: () => Promise<CallSites | null>) {}
    callSites(t: CallGraphTarget): Promise<CallSites | null> {
      this.asked.push(t);
      if (this.auto) return this.auto();
      return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    }
  }
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('the route: the source\'s call graph ranked; without a source, callGraph "none" with the reason', async () => {
    const hub = hubWith();
    const src = new Scripted(async () => cs);
    const a = await ask(new BlockersRoutes(hub, src));
    expect(a.status).to.equal(200);
    expect(a.body).to.include({ id: ID, callGraph: 'dwarf' });
    expect(a.body.blockers.map((x: { callee: string }) => x.callee)).to.deep.equal(['W', 'X']);
    // What the source is given: the registry's executable, coverage file, PC table hash and index.
    expect(src.asked).to.have.length(1);
    expect(src.asked[0]).to.include({ id: ID, exe: '/nonexistent/fuzz_x', coverageFile: '/nonexistent/v/' + ID, pcsHash: '0011223344556677' });
    expect(src.asked[0]!.index.pcFunction).to.equal(index.pcFunction);
    const none = await ask(new BlockersRoutes(hub));
    expect(none).to.deep.equal({ status: 200, body: { id: ID, seq: hub.target(ID)!.seq, callGraph: 'none', reason: NO_SOURCE_REASON, blockers: [] } });
    expect((await ask(new BlockersRoutes(hub), 'ffffffffffffffff')).status).to.equal(404);
  });

  it('a failed read is answered from memory for a while, then tried again', async () => {
    const hub = hubWith();
    const src = new Scripted(() => Promise.reject(new Error('no such executable')));
    const routes = new BlockersRoutes(hub, src, { failureRetryMs: 300 });
    for (let i = 0; i < 3; i++) {
      const r = await ask(routes);
      expect(r.status).to.equal(409);
      expect(r.body.error).to.match(/no such executable/);
    }
    expect(src.asked, 'one read for three requests within the retry time').to.have.length(1);
    await sleep(350);
    expect((await ask(routes)).status).to.equal(409);
    expect(src.asked, 'read again once the retry time passed').to.have.length(2);
    // The default keeps a failure for a minute.
    const routes2 = new BlockersRoutes(hub, src);
    await ask(routes2);
    await sleep(350);
    await ask(routes2);
    expect(src.asked).to.have.length(3);
  });

  it('a read for an older index that fails later leaves the newer index\'s graph alone', async () => {
    const hub = hubWith();
    const src = new Scripted();
    const routes = new BlockersRoutes(hub, src, { failureRetryMs: 60_000 });
    const first = ask(routes); // index 1: its read hangs
    expect(src.asked).to.have.length(1);
    hub.setIndex(ID, { ...index }); // a new index (re-resolved): read again
    const second = ask(routes);
    expect(src.asked).to.have.length(2);
    src.waiting[0]!.reject(new Error('old read failed'));
    expect((await first).status, 'the old answer is for an index the target no longer has').to.equal(409);
    src.waiting[1]!.resolve(cs);
    expect((await second).body.callGraph).to.equal('dwarf');
    // The newer graph is still kept: no third read, the same blockers.
    const third = await ask(routes);
    expect(src.asked).to.have.length(2);
    expect(third.body.callGraph).to.equal('dwarf');
    expect(third.body.blockers.length).to.equal(2);
  });

  it('the web server uses the source given as WebServerOptions.callGraph, and none without it', async () => {
    const hub = hubWith();
    const src = new Scripted(async () => cs);
    for (const callGraph of [src, undefined]) {
      const srv = await startWebServer({ hub, host: '127.0.0.1', port: 0, log: quietLog, ...(callGraph ? { callGraph } : {}) });
      try {
        const r = await fetch(`${srv.url}api/targets/${ID}/blockers`);
        expect(r.status).to.equal(200);
        const body = (await r.json()) as { callGraph: string; reason?: string; blockers: unknown[] };
        if (callGraph) expect(body).to.deep.include({ callGraph: 'dwarf' }).and.not.have.property('reason');
        else expect(body).to.deep.include({ callGraph: 'none', reason: NO_SOURCE_REASON, blockers: [] });
      } finally {
        await srv.close();
      }
    }
    expect(src.asked).to.have.length(1);
  });
});
