/**
 * The page's wait after failed answers (ui/src/backoff.ts, used by the blockers and the fleet
 * nodes' polls): the first wait, doubling, its cap, and a success starting over. No browser: the
 * module is bundled with esbuild as the page's bundle takes it.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { repoRoot } from './browser.js';

interface BackoffLike { ready(now?: number): boolean; failed(now?: number): void; succeeded(): void }

describe('ui Backoff: waits after failures', function () {
  this.timeout(60_000);
  let Backoff: new (first: number, max: number) => BackoffLike;
  before(async () => {
    const esbuild = await import('esbuild');
    const out = await esbuild.build({ entryPoints: [join(repoRoot, 'ui', 'src', 'backoff.ts')], bundle: true, format: 'esm', write: false, target: 'es2022' });
    ({ Backoff } = (await import('data:text/javascript;base64,' + Buffer.from(out.outputFiles[0]!.text).toString('base64'))) as { Backoff: typeof Backoff });
  });

  it('waits first, then twice as long after each further failure up to the cap, and starts over after a success', () => {
    const b = new Backoff(10_000, 35_000);
    expect(b.ready(0), 'before any failure').to.equal(true);
    let now = 1_000;
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      b.failed(now);
      let t = now;
      while (!b.ready(t)) t += 1_000;
      waits.push(t - now);
      now = t;
    }
    expect(waits).to.deep.equal([10_000, 20_000, 35_000, 35_000, 35_000]);
    b.succeeded();
    expect(b.ready(now), 'after a success').to.equal(true);
    b.failed(now);
    expect(b.ready(now + 9_999)).to.equal(false);
    expect(b.ready(now + 10_000)).to.equal(true);
  });
});
