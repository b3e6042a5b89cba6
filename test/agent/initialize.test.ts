/**
 * What initialization reaches: a target's LLVMFuzzerInitialize runs before libFuzzer first
 * clears the counters, so libFuzzer itself reports it uncovered; the agent records it.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { findCoverageFile } from '../../src/build/targets.js';
import { isSeen } from '../../src/contracts/seen.js';
import { covdBin } from '../daemon/helpers.js';
import { scratchDirs } from '../helpers/scratch.js';

const SOURCE = `#include <stdint.h>
#include <stddef.h>
static volatile int table[64];
__attribute__((noinline)) void setup_tables(void) { for (int i = 0; i < 64; i++) table[i] = i * 3; }
__attribute__((noinline)) void never_called(void) { table[1] = 7; }
int LLVMFuzzerInitialize(int *argc, char ***argv) { (void)argc; (void)argv; setup_tables(); return 0; }
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { if (n > 1000) never_called(); return 0; }
`;

/** PC-table indices of a function, by its symbol's address range. */
function pcsOf(exe: string, fn: string, pcs: BigUint64Array): number[] {
  const line = execFileSync('nm', ['-S', exe], { encoding: 'utf8' }).split('\n').find((l) => l.endsWith(` ${fn}`))!;
  const [addr, size] = line.split(' ');
  const lo = BigInt(`0x${addr}`), hi = lo + BigInt(`0x${size}`);
  return [...pcs.keys()].filter((i) => pcs[i]! >= lo && pcs[i]! < hi);
}

describe('agent: initialization coverage', function () {
  this.timeout(120_000);
  const tmp = scratchDirs();

  it('records what LLVMFuzzerInitialize reached, which libFuzzer itself reports uncovered', () => {
    const dir = tmp();
    fs.writeFileSync(join(dir, 'init.c'), SOURCE);
    const exe = join(dir, 'fuzz_init');
    const cc = spawnSync(process.execPath, [covdBin, 'cc', '-o', exe, join(dir, 'init.c')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).to.equal(0);
    const covdDir = join(dir, 'cd');
    const run = spawnSync(exe, ['-runs=20', '-print_coverage=1'], { encoding: 'utf8', env: { ...process.env, COVD_DIR: covdDir, COVD_SOCKET: join(dir, 'none.sock') } });
    expect(run.status, run.stderr.slice(-1000)).to.equal(0);
    expect(run.stderr).to.match(/UNCOVERED_FUNC: .* setup_tables /);
    return findCoverageFile(covdDir).then((file) => {
      const snap = readCoverageFile(file);
      const setup = pcsOf(exe, 'setup_tables', snap.pcs);
      const never = pcsOf(exe, 'never_called', snap.pcs);
      expect(setup.length).to.be.greaterThan(0);
      expect(setup.every((i) => isSeen(snap.seen, i)), 'every PC of setup_tables seen').to.equal(true);
      expect(never.some((i) => isSeen(snap.seen, i)), 'nothing of never_called').to.equal(false);
      // Recorded as coverage, not as a run.
      expect(snap.header.nRuns).to.equal(20n);
    });
  });
});
