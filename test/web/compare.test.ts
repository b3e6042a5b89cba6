/** The line comparison itself (src/web/compare.ts) on hand-made indexes: no fuzzer, no daemon. */
import { expect } from 'chai';
import { compareLines, comparisonLcov, coveredLines, seenAt, seenNow } from '../../src/web/compare.js';
import { NONE, type SourceIndex } from '../../src/contracts/source-index.js';
import { seenBytes, setSeen } from '../../src/contracts/seen.js';
import type { Hub, TargetDetail } from '../../src/contracts/hub.js';
import { CompareRoutes } from '../../src/web/compare-routes.js';

/** An index whose PC i sits at locs[i] = [file, line]; files are [dir, name]. */
function index(files: [string, string][], locs: [number, number][]): SourceIndex {
  const dirs = [...new Set(files.map(([d]) => d))];
  return {
    buildId: null,
    directories: dirs,
    files: files.map(([, n]) => n),
    fileDirs: Uint32Array.from(files.map(([d]) => dirs.indexOf(d))),
    functions: { names: [], file: new Uint32Array(), line: new Uint32Array() },
    pcFile: Uint32Array.from(locs.map(([f]) => f)),
    pcLine: Uint32Array.from(locs.map(([, l]) => l)),
    pcColumn: new Uint32Array(locs.length),
    pcFunction: new Uint32Array(locs.length).fill(NONE),
  };
}

function target(ix: SourceIndex, seenAtSec: number[]): TargetDetail {
  const n = ix.pcFile.length;
  const seen = new Uint8Array(seenBytes(n));
  const firstSeen = new Uint32Array(n);
  seenAtSec.forEach((s, pc) => { if (s >= 0) { setSeen(seen, pc); firstSeen[pc] = s; } });
  return { index: ix, seen, firstSeen, seq: 1, stats: { pcsLen: n } } as unknown as TargetDetail;
}

describe('web: line comparisons', () => {
  // Two spellings of /p/a.c (one out of tree), and /p/b.c; a PC of no file and one of line 0.
  const ixA = index([['/p', 'a.c'], ['/p/build', '../a.c'], ['/p', 'b.c']], [[0, 1], [1, 2], [0, 2], [2, 5], [NONE, 7], [0, 0]]);

  it('a line is covered when any of its PCs is, across spellings of one path', () => {
    const t = target(ixA, [-1, 100, -1, 100, 100, 100]);
    const lines = coveredLines(ixA, 6, seenNow(t));
    expect([...lines.keys()].sort()).to.deep.equal(['/p/a.c', '/p/b.c']);
    expect([...lines.get('/p/a.c')!]).to.deep.equal([2]);
  });

  it('as of a time: PCs first seen at or before it, and never one without a first-seen time', () => {
    const t = target(ixA, [10, 11, 0, 12, -1, -1]);
    const at = (ms: number) => Object.fromEntries([...coveredLines(ixA, 6, seenAt(t, ms))].map(([p, s]) => [p, [...s].sort()]));
    expect(at(9_999)).to.deep.equal({});
    expect(at(10_000)).to.deep.equal({ '/p/a.c': [1] });
    expect(at(11_999)).to.deep.equal({ '/p/a.c': [1, 2] });
    expect(at(12_000)).to.deep.equal({ '/p/a.c': [1, 2], '/p/b.c': [5] });
    // PC 2 (line 2 too) is seen with no time: covered now, not then; line 2 still counts via PC 1.
    const c = compareLines(coveredLines(ixA, 6, seenAt(t, 10_500)), coveredLines(ixA, 6, seenNow(t)));
    expect(c).to.deep.equal({ files: [{ path: '/p/a.c', onlyA: [], onlyB: [2], both: 1 }, { path: '/p/b.c', onlyA: [], onlyB: [5], both: 0 }], totals: { onlyA: 0, onlyB: 2, both: 1 } });
  });

  it('two builds match by path and line; the lcov holds the lines only in B', () => {
    const ixB = index([['/p', 'b.c'], ['/p', 'a.c']], [[1, 1], [1, 3], [0, 5], [0, 6]]);
    const a = coveredLines(ixA, 6, seenNow(target(ixA, [1, 1, 1, 1, 1, 1])));
    const b = coveredLines(ixB, 4, seenNow(target(ixB, [1, 1, -1, 1])));
    const c = compareLines(a, b);
    expect(c.files).to.deep.equal([{ path: '/p/a.c', onlyA: [2], onlyB: [3], both: 1 }, { path: '/p/b.c', onlyA: [5], onlyB: [6], both: 0 }]);
    expect(c.totals).to.deep.equal({ onlyA: 2, onlyB: 2, both: 1 });
    expect(comparisonLcov(c, 'x y')).to.equal('TN:x_y\nSF:/p/a.c\nDA:3,1\nLF:1\nLH:1\nend_of_record\nSF:/p/b.c\nDA:6,1\nLF:1\nLH:1\nend_of_record\n');
    expect(compareLines(b, b).totals).to.deep.equal({ onlyA: 0, onlyB: 0, both: 3 });
  });

  it('the route: @TIME, another id, and a registered prefix (the fleet hook)', () => {
    const t = { ...target(ixA, [10, 11, 0, 12, -1, -1]), id: 'aaaa', name: 'x', state: 'ready' } as TargetDetail;
    const hub = { target: (id: string) => (id === 'aaaa' ? t : undefined) } as unknown as Hub;
    const routes = new CompareRoutes(hub);
    const ask = (url: string, query: Record<string, string> = {}) => {
      let got: { status: number; value?: unknown; body?: string } | undefined;
      const handled = routes.handle(url, (k) => query[k] ?? '', {
        json: (status, value) => (got = { status, value }),
        error: (status, message) => (got = { status, value: { error: message } }),
        send: (status, _h, body) => (got = { status, body: body.toString() }),
        later: () => {},
      });
      return handled ? got : 'unhandled';
    };
    expect(ask('/api/targets/aaaa/coverage')).to.equal('unhandled');
    expect(ask('/api/targets/aaaa/compare/@11000')).to.deep.include({ status: 200 });
    expect((ask('/api/targets/aaaa/compare/@11000') as { value: { totals: unknown } }).value.totals).to.deep.equal({ onlyA: 0, onlyB: 1, both: 2 });
    expect(ask('/api/targets/aaaa/compare/aaaa', { format: 'lcov' })).to.deep.equal({ status: 200, body: 'TN:x_diff\n' });
    expect(ask('/api/targets/aaaa/compare/node:n2')).to.deep.include({ status: 400 });
    expect(ask('/api/targets/bbbb/compare/aaaa')).to.deep.include({ status: 404 });
    routes.registerSide('node', (name) => (name === 'n2' ? { lines: new Map([['/p/z.c', new Set([1])]]), label: { node: name } } : { status: 404, error: 'no node' }));
    const r = ask('/api/targets/aaaa/compare/node:n2') as { status: number; value: { b: unknown; totals: unknown } };
    expect(r.status).to.equal(200);
    expect(r.value.b).to.deep.equal({ node: 'n2' });
    expect(r.value.totals).to.deep.equal({ onlyA: 3, onlyB: 1, both: 0 });
    expect(ask('/api/targets/aaaa/compare/node:n3')).to.deep.include({ status: 404 });
  });
});
