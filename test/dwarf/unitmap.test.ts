/**
 * The unit map's fast path for disjoint ranges gives exactly what the general sweep gives, and
 * steps aside when ranges overlap.
 */
import { expect } from 'chai';
import { disjointMap, sweepMap, unitRanges } from '../../src/dwarf/aranges.js';
import { DebugInfo } from '../../src/dwarf/resolve.js';
import { VARIANTS, build } from './programs.js';

describe('unit map', () => {
  it('disjoint ranges, in any order, touching or not, same unit or not: the sweep\'s answer', () => {
    let x = 7;
    const rnd = (n: number) => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x % n; };
    for (let round = 0; round < 300; round++) {
      const lows: number[] = [], highs: number[] = [], us: number[] = [];
      let at = rnd(100);
      const n = 1 + rnd(40);
      for (let i = 0; i < n; i++) {
        at += rnd(3) === 0 ? 0 : rnd(50); // often touching the previous range
        const len = 1 + rnd(30);
        lows.push(at); highs.push(at + len); us.push(rnd(3));
        at += len;
      }
      // Shuffle: the map must not depend on the order ranges were found in.
      for (let i = n - 1; i > 0; i--) {
        const j = rnd(i + 1);
        [lows[i], lows[j]] = [lows[j]!, lows[i]!]; [highs[i], highs[j]] = [highs[j]!, highs[i]!]; [us[i], us[j]] = [us[j]!, us[i]!];
      }
      const fast = disjointMap(lows, highs, us);
      expect(fast, `round ${round}`).to.not.equal(null);
      expect(fast).to.deep.equal(sweepMap(lows, highs, us));
    }
  });

  it('overlapping ranges are left to the sweep; touching ones are not', () => {
    expect(disjointMap([0, 5], [10, 20], [1, 0])).to.equal(null);
    expect(disjointMap([0, 0], [10, 20], [1, 1])).to.equal(null);
    expect(disjointMap([10, 0], [20, 10], [0, 1])).to.deep.equal({ low: Float64Array.from([0, 10]), high: Float64Array.from([10, 20]), unit: Int32Array.from([1, 0]) });
  });

  it('real binaries: every variant\'s map is the sweep\'s', () => {
    for (const v of VARIANTS) {
      const info = DebugInfo.open(build(v));
      const { lows, highs, us } = unitRanges(info.sec, info.units);
      expect(info.unitMap.low.length, v.name).to.be.greaterThan(0);
      expect(info.unitMap, v.name).to.deep.equal(sweepMap(lows, highs, us));
    }
  });
});
