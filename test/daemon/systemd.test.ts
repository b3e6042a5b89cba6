import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ALLOCATOR_ENV, systemdUnit } from '../../src/daemon/systemd.js';

describe('daemon: the systemd unit', () => {
  it('runs the daemon with the allocator settings, and contrib/covd.service is the unit covd writes', () => {
    const unit = systemdUnit({ covd: '/opt/covd/bin/covd', node: '/usr/bin/node', args: [] });
    for (const [k, v] of Object.entries(ALLOCATOR_ENV)) expect(unit.split('\n')).to.include(`Environment=${k}=${v}`);
    expect(unit).to.match(/^ExecStart=\/usr\/bin\/node \/opt\/covd\/bin\/covd serve$/m);
    const shipped = readFileSync(new URL('../../../contrib/covd.service', import.meta.url), 'utf8');
    expect(shipped.trimEnd()).to.equal(unit.trimEnd());
  });
});
