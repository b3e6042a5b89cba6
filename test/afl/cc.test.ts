/**
 * `covd cc --engine=afl`: the printed command lines, what it says when AFL++ is missing, and C++
 * and --no-agent builds that really link and run (a C++ harness fuzzed briefly by afl-fuzz).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copySeeds, runAfl } from '../../src/afl/targets.js';
import { listCoverageFiles, exampleDir } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { readCoverageMeta } from '../../src/coverage/meta.js';
import { covdBin, countBits } from '../daemon/helpers.js';
import { scratchDirs } from '../helpers/scratch.js';

const covd = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [covdBin, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
const tinyimg = ['fuzz_tinyimg.c', 'decode.c', 'meta.c'].map((f) => join(exampleDir(), f));

const CXX_HARNESS = `#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
namespace {
struct Counter {
  std::map<std::string, int> words;
  void add(const std::string &w) { if (!w.empty()) ++words[w]; }
};
}
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Counter c;
  std::string cur;
  for (size_t i = 0; i < size; i++) {
    char ch = static_cast<char>(data[i]);
    if (ch == ' ' || ch == '\\n') { c.add(cur); cur.clear(); } else cur += ch;
  }
  c.add(cur);
  if (c.words.size() > 3 && c.words.count("covd")) return 1;
  return 0;
}
`;

describe('covd cc --engine=afl', function () {
  this.timeout(300_000);
  const scratch = scratchDirs();

  it('says what to install when AFL++ is missing (AFL_PATH at an empty directory)', () => {
    const empty = scratch();
    for (const extra of [[], ['--cmplog']]) {
      const r = covd(['cc', '--engine=afl', ...extra, '-o', join(empty, 'x'), ...tinyimg], { AFL_PATH: empty });
      expect(r.status, r.stderr).to.equal(1);
      expect(r.stderr).to.contain(`AFL++ is not installed in AFL_PATH=${empty}`);
      expect(r.stderr).to.contain('afl-compiler-rt.o, libAFLDriver.a are missing');
      expect(r.stderr).to.contain('apt-get install afl++');
    }
    // Compile-only needs no runtime.
    const c = covd(['cc', '--engine=afl', '--dry-run', '-c', tinyimg[1]!], { AFL_PATH: empty });
    expect(c.status, c.stderr).to.equal(0);
  });

  it('prints the exact clang command: AFL++ and agent instrumentation, runtime, driver, wraps', () => {
    const r = covd(['cc', '--engine=afl', '--dry-run', '-fsanitize=fuzzer,address', '-o', '/tmp/never', ...tinyimg]);
    expect(r.status, r.stderr).to.equal(0);
    const argv = r.stderr.trim().split('\n').pop()!.split(' ');
    expect(argv[0]).to.match(/clang/);
    expect(argv.slice(1, 4)).to.deep.equal(['-g', '-O1', '-fsanitize-coverage=trace-pc-guard,inline-8bit-counters,pc-table']);
    expect(argv).to.include('-fsanitize=address');
    expect(argv.some((a) => /fuzzer/.test(a) && a.startsWith('-fsanitize='))).to.equal(false);
    expect(argv.some((a) => /\/covd_agent-[0-9a-f]+\.o$/.test(a))).to.equal(true);
    expect(argv).to.include('/usr/lib/afl/afl-compiler-rt.o').and.include('/usr/lib/afl/libAFLDriver.a');
    expect(argv).to.include('-Wl,--wrap=LLVMFuzzerTestOneInput').and.include('-Wl,--wrap=__afl_manual_init').and.include('-Wl,--build-id');
    expect(argv).to.not.include('-lstdc++');
    const plain = covd(['cc', '--engine=afl', '--no-agent', '--dry-run', '-O2', '-o', '/tmp/never', ...tinyimg]);
    expect(plain.stderr).to.not.match(/covd_agent|--wrap/);
    expect(plain.stderr).to.contain(' -O2 ').and.not.contain('-O1');
    const cmplog = covd(['cc', '--engine=afl', '--cmplog', '--dry-run', '-o', '/tmp/never', ...tinyimg]);
    expect(cmplog.stderr.trim()).to.match(/^AFL_LLVM_CMPLOG=1 \S*\/afl-clang-fast -g -O1 -fsanitize=fuzzer -o \/tmp\/never /);
    expect(covd(['cc', '--engine=honggfuzz', 'x.c']).status).to.equal(2);
    const lone = covd(['cc', '--cmplog', 'x.c']);
    expect(lone.status).to.equal(2);
    expect(lone.stderr).to.contain('--engine=afl');
  });

  it('builds C++ (with -lstdc++) that runs files once and fuzzes under afl-fuzz; --no-agent writes nothing', async () => {
    const dir = scratch();
    const src = join(dir, 'words.cpp');
    writeFileSync(src, CXX_HARNESS);
    const exe = join(dir, 'fuzz_words');
    const b = covd(['cc', '--engine=afl', '-std=c++17', '-o', exe, src]);
    expect(b.status, b.stderr).to.equal(0);
    expect(b.stderr).to.match(/ -lstdc\+\+\n?$/);
    const seeds = join(dir, 'in');
    mkdirSync(seeds);
    writeFileSync(join(seeds, 'a'), 'hello covd world\n');
    writeFileSync(join(seeds, 'b'), 'one two three four');

    // Run once on a file, without afl-fuzz.
    const once = spawnSync(exe, [join(seeds, 'a')], { encoding: 'utf8', env: { ...process.env, COVD_DIR: join(dir, 'once'), COVD_SOCKET: join(dir, 'x.sock') } });
    expect(once.status, once.stderr).to.equal(0);
    const onceFile = listCoverageFiles(join(dir, 'once'));
    expect(onceFile).to.have.length(1);
    expect(readCoverageMeta(onceFile[0]!)).to.include({ engine: 'afl', exe });
    expect(readCoverageMeta(onceFile[0]!)!.aflOutDir).to.equal(undefined);
    expect(Number(readCoverageFile(onceFile[0]!).header.nRuns)).to.equal(1);

    // Fuzz it briefly.
    const covDir = join(dir, 'cov');
    const run = runAfl(exe, { input: seeds, output: join(dir, 'out'), seconds: 3, covdDir: covDir });
    const res = await run.done;
    expect(res.code, res.stderr.slice(-1500)).to.equal(0);
    const files = listCoverageFiles(covDir);
    expect(files).to.have.length(1);
    expect(readCoverageMeta(files[0]!)!.aflOutDir).to.equal(join(dir, 'out', 'default'));
    const cov = readCoverageFile(files[0]!);
    expect(Number(cov.header.nRuns)).to.be.greaterThan(1000);
    expect(countBits(cov.seen)).to.be.greaterThan(countBits(readCoverageFile(onceFile[0]!).seen));

    // The benchmark's baseline: the same instrumentation, no agent.
    const plainExe = join(dir, 'fuzz_plain');
    const p = covd(['cc', '--engine=afl', '--no-agent', '-o', plainExe, ...tinyimg]);
    expect(p.status, p.stderr).to.equal(0);
    const syms = spawnSync('nm', [plainExe], { encoding: 'utf8' }).stdout;
    expect(syms).to.contain('__start___sancov_cntrs').and.contain('__start___sancov_pcs').and.not.contain('__wrap_LLVMFuzzerTestOneInput');
    const plainRun = runAfl(plainExe, { input: copySeeds(join(exampleDir(), 'corpus'), join(dir, 'in2')), output: join(dir, 'out2'), seconds: 2, covdDir: join(dir, 'cov2') });
    expect((await plainRun.done).code).to.equal(0);
    expect(listCoverageFiles(join(dir, 'cov2'))).to.deep.equal([]);
  });
});
