/** Blockers on a hand-made call graph (src/web/blockers.ts): weights, sharing, cycles. No fuzzer. */
import { expect } from 'chai';
import { findBlockers } from '../../src/web/blockers.js';
import { NONE, type SourceIndex } from '../../src/contracts/source-index.js';
import { seenBytes, setSeen } from '../../src/contracts/seen.js';

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
});
