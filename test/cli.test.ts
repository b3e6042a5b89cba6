import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const covd = fileURLToPath(new URL('../../bin/covd', import.meta.url));

describe('covd CLI', () => {
  it('lists its commands with --help and exits 0', () => {
    const r = spawnSync(covd, ['--help'], { encoding: 'utf8' });
    expect(r.status).to.equal(0);
    for (const cmd of ['serve', 'symbolize', 'cc', 'demo']) expect(r.stdout).to.contain(cmd);
  });

  it('rejects an unknown command with exit 2 and says which', () => {
    const r = spawnSync(covd, ['frobnicate'], { encoding: 'utf8' });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain("unknown command 'frobnicate'");
  });
});
