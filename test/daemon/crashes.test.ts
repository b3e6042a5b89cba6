/**
 * Crashes against the real daemon and real libFuzzer targets: the agent records each crash as it
 * happens (kind, input, raw stack), the daemon resolves the stack with its own DWARF reader and
 * groups crashes by their top project frames, keeping a count and the first and smallest inputs.
 * examples/magicbug (a NULL store behind a 4-byte magic) gives SIGSEGV; a small ASan target here
 * gives a timeout, a sanitizer report and a leak.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildFuzzTarget, findCoverageFile, runFuzzer } from '../../src/build/targets.js';
import { buildDir } from '../../src/build/toolchain.js';
import type { CrashGroup } from '../../src/contracts/inputs.js';
import { buildMagicbugTarget, magicbugCrashLine, magicbugDir } from '../helpers/crash-target.js';
import { covdBin, pollUntil, startServe, type ServeProcess } from './helpers.js';

const crashesOf = async (d: ServeProcess, id: string) => ((await (await fetch(`${d.url}api/targets/${id}/crashes`)).json()) as { crashes: CrashGroup[] }).crashes;
const topProject = (g: CrashGroup) => g.frames.find((f) => f.project);

/** Replays one input through the binary alone, in a fresh coverage directory. */
function replay(exe: string, bytes: Buffer, dir: string, args: string[] = []) {
  const w = fs.mkdtempSync(join(dir, 'replay-'));
  fs.writeFileSync(join(w, 'input'), bytes);
  return spawnSync(exe, [...args, join(w, 'input')], { cwd: w, env: { ...process.env, COVD_DIR: join(w, 'cd'), COVD_SOCKET: join(w, 'none.sock'), COVD_AGENT_QUIET: '1' }, encoding: 'utf8', timeout: 60_000 });
}

async function bytesOf(d: ServeProcess, id: string, hash: string): Promise<Buffer> {
  const r = await fetch(`${d.url}api/targets/${id}/inputs/${hash}`);
  expect(r.status, `input ${hash}`).to.equal(200);
  return Buffer.from(await r.arrayBuffer());
}

describe('daemon: crashes', function () {
  this.timeout(300_000);
  let dir: string, cd: string, socket: string;
  let d: ServeProcess;
  before(async () => {
    dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-crashes-'));
    cd = join(dir, 'cd');
    socket = join(dir, 'covd.sock');
    d = await startServe({ socket, stateDir: join(dir, 'state'), watch: [cd] });
  });
  after(async () => {
    if (d) { d.child.kill('SIGKILL'); await d.exited; }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('examples/magicbug: two crashing runs make one group whose input reproduces the crash and whose top frame is the crashing line; a third is counted without its bytes', async () => {
    const exe = await buildMagicbugTarget();
    const artifacts = join(dir, 'artifacts');
    fs.mkdirSync(artifacts);
    for (let i = 0; i < 2; i++) {
      const corpus = join(dir, `corpus-${i}`);
      fs.cpSync(join(magicbugDir(), 'corpus'), corpus, { recursive: true });
      const r = await runFuzzer(exe, { covdDir: cd, socket, seconds: 120, corpus, extraArgs: [`-seed=${i + 1}`, `-artifact_prefix=${artifacts}/`] }).done;
      expect(r.code, 'the fuzzer found the bug').to.not.equal(0);
      expect(r.stderr).to.match(/SEGV/);
    }
    const id = (await findCoverageFile(cd)).split('/').pop()!;
    const groups = await pollUntil('both crashes grouped', async () => {
      const g = await crashesOf(d, id);
      return g.length && g.reduce((n, x) => n + x.count, 0) === 2 ? g : undefined;
    }, 60_000);
    expect(groups, JSON.stringify(groups.map((g) => g.signature))).to.have.length(1);
    const g = groups[0]!;
    expect(g.kind).to.equal('signal');
    expect(g.detail).to.equal('SIGSEGV');
    expect(g.count).to.equal(2);
    expect(g.resolved).to.equal(true);
    expect(g.lastAt).to.be.at.least(g.firstAt);
    const bug = magicbugCrashLine();
    const top = topProject(g)!;
    expect(top.function).to.equal('store');
    expect(top.file).to.equal(bug.file);
    expect(top.line).to.equal(bug.line);
    expect(g.frames.every((f) => f.inlined === false)).to.equal(true);
    expect(g.signature).to.equal('signal:SIGSEGV | store | magicbug_parse | LLVMFuzzerTestOneInput');
    // The smallest input and the first one are kept, and each reproduces the crash on its own.
    expect(g.input && g.firstInput).to.not.equal(null);
    expect(g.input!.size).to.be.at.most(g.firstInput!.size);
    for (const ref of [g.input!, g.firstInput!]) {
      const bytes = await bytesOf(d, id, ref.hash);
      expect(createHash('sha1').update(bytes).digest('hex')).to.equal(ref.hash);
      expect(bytes.subarray(0, 4).toString()).to.equal('FUZZ');
      const r = replay(exe, bytes, dir);
      expect(r.status, 'replay crashes').to.not.equal(0);
      expect(r.stderr).to.match(/SEGV on unknown address/);
      expect(r.stderr).to.include(`magicbug.c:${bug.line}`);
    }
    // libFuzzer's artifact for the first crash is linked.
    expect(g.artifact).to.equal(join(artifacts, `crash-${g.firstInput!.hash}`));
    expect(fs.existsSync(g.artifact!)).to.equal(true);

    // Prometheus: crashes by kind per target.
    const metrics = await (await fetch(`${d.url}metrics`)).text();
    expect(metrics).to.match(new RegExp(`covd_target_crashes_total\\{target="${id}",name="fuzz_magicbug",kind="signal"\\} 2`));
    // The CLI says the same.
    const cli = spawnSync(process.execPath, [covdBin, 'crashes', id], { env: { ...process.env, COVD_SOCKET: socket }, encoding: 'utf8' });
    expect(cli.status, cli.stderr).to.equal(0);
    expect(cli.stdout).to.include('2x signal:SIGSEGV | store | magicbug_parse | LLVMFuzzerTestOneInput');
    expect(cli.stdout).to.include(`${bug.file}:${bug.line}`);
    expect(cli.stdout).to.include(g.input!.hash);

    // A third crash of the same group, later than the first and larger than the smallest: counted,
    // its input known by hash and size, but its bytes not kept (only the first and the smallest are shown).
    const big = Buffer.concat([Buffer.from('FUZZ\x03'), Buffer.alloc(300, 0x78)]);
    const bigHash = createHash('sha1').update(big).digest('hex');
    const w = fs.mkdtempSync(join(dir, 'third-'));
    fs.writeFileSync(join(w, 'input'), big);
    const third = spawnSync(exe, [join(w, 'input')], { cwd: w, env: { ...process.env, COVD_DIR: cd, COVD_SOCKET: socket, COVD_AGENT_QUIET: '1' }, encoding: 'utf8', timeout: 60_000 });
    expect(third.stderr).to.match(/SEGV/);
    const after3 = await pollUntil('the third crash grouped', async () => {
      const gs = await crashesOf(d, id);
      return gs.length === 1 && gs[0]!.count === 3 ? gs[0] : undefined;
    }, 60_000);
    expect(after3.input, 'the smallest input stays').to.deep.equal(g.input);
    expect(after3.firstInput, 'the first input stays').to.deep.equal(g.firstInput);
    expect(big.length).to.be.greaterThan(g.input!.size);
    expect((await fetch(`${d.url}api/targets/${id}/inputs/${bigHash}`)).status, 'the third input\'s bytes').to.equal(404);
    for (const ref of [g.input!, g.firstInput!]) expect((await bytesOf(d, id, ref.hash)).length).to.equal(ref.size);
  });

  it('an ASan target: a timeout, a heap-buffer-overflow, a leak, an out-of-memory and an exit, each with its kind, input and top frame', async () => {
    const src = join(buildDir('test-src', 'crash-kinds'), 'fuzz_kinds.c');
    fs.writeFileSync(src, `#include <stdint.h>
#include <stdlib.h>
#include <string.h>
void *volatile sink;
__attribute__((noinline)) static void spin(void) {
  for (volatile unsigned i = 0;; i++) { } /* the hang */
}
__attribute__((noinline)) static int over(const uint8_t *d, size_t n) {
  char *b = malloc(4);
  memcpy(b, d, 4);
  int v = b[n]; /* the overflow */
  free(b);
  return v;
}
__attribute__((noinline)) static void leak(void) {
  sink = malloc(64); /* the leak */
  sink = 0;
}
__attribute__((noinline)) static void hog(void) {
  sink = malloc((size_t)2 << 30); /* the hog */
}
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n >= 4 && memcmp(d, "HANG", 4) == 0) spin();
  if (n >= 8 && memcmp(d, "OVER", 4) == 0) return over(d, n);
  if (n >= 4 && memcmp(d, "LEAK", 4) == 0) leak();
  if (n >= 4 && memcmp(d, "HOGS", 4) == 0) hog();
  if (n >= 4 && memcmp(d, "EXIT", 4) == 0) exit(3);
  return 0;
}
`);
    const lineOf = (mark: string) => fs.readFileSync(src, 'utf8').split('\n').findIndex((l) => l.includes(mark)) + 1;
    const exe = await buildFuzzTarget({ name: 'fuzz_kinds', sources: [src], cflags: ['-fsanitize=fuzzer,address'] });
    const artifacts = join(dir, 'kinds-artifacts');
    fs.mkdirSync(artifacts);
    const env = { ...process.env, COVD_DIR: cd, COVD_SOCKET: socket, COVD_AGENT_QUIET: '1' };
    const run = (name: string, content: string, args: string[]) => {
      const corpus = join(dir, `kinds-${name}`);
      fs.mkdirSync(corpus);
      fs.writeFileSync(join(corpus, name), content);
      return spawnSync(exe, [...args, `-artifact_prefix=${artifacts}/`, corpus], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
    };
    const hang = run('hang', 'HANG', ['-timeout=1', '-runs=10']);
    expect(hang.status, hang.stderr.slice(-1500)).to.equal(70);
    const overflow = run('over', 'OVER1234', ['-runs=10']);
    expect(overflow.stderr).to.match(/heap-buffer-overflow/);
    const leaking = run('leak', 'LEAK', ['-runs=10']);
    expect(leaking.stderr).to.match(/LeakSanitizer: detected memory leaks/);
    const hogging = run('hogs', 'HOGS', ['-runs=10', '-rss_limit_mb=512', '-malloc_limit_mb=512']);
    expect(hogging.status, hogging.stderr.slice(-1500)).to.equal(71);
    const exiting = run('exit', 'EXIT', ['-runs=10']);
    expect(exiting.stderr).to.match(/fuzz target exited/);

    const id = (await pollUntil('the kinds target', async () => (await d.list()).find((t) => t.name === 'fuzz_kinds' && t.state === 'ready'))).id;
    const groups = await pollUntil('five crash groups', async () => { const g = await crashesOf(d, id); return g.length >= 5 ? g : undefined; }, 60_000);
    const byKind = new Map(groups.map((g) => [g.kind, g]));
    expect([...byKind.keys()].sort()).to.deep.equal(['exit', 'leak', 'oom', 'sanitizer', 'timeout']);
    const o = byKind.get('oom')!;
    expect(topProject(o)?.function).to.equal('hog');
    expect(topProject(o)?.line).to.equal(lineOf('the hog'));
    expect((await bytesOf(d, id, o.input!.hash)).toString()).to.equal('HOGS');
    expect(topProject(byKind.get('exit')!)?.function).to.equal('LLVMFuzzerTestOneInput');
    expect((await bytesOf(d, id, byKind.get('exit')!.input!.hash)).toString()).to.equal('EXIT');

    const t = byKind.get('timeout')!;
    expect(topProject(t)?.function).to.equal('spin');
    expect(topProject(t)?.line).to.equal(lineOf('the hang'));
    expect((await bytesOf(d, id, t.input!.hash)).toString()).to.equal('HANG');
    const rt = replay(exe, Buffer.from('HANG'), dir, ['-timeout=1']);
    expect(rt.status, 'replay times out').to.equal(70);

    const s = byKind.get('sanitizer')!;
    expect(s.detail).to.match(/^AddressSanitizer: heap-buffer-overflow/);
    expect(s.signature.startsWith('sanitizer:heap-buffer-overflow | over | LLVMFuzzerTestOneInput')).to.equal(true);
    expect(topProject(s)?.line).to.equal(lineOf('the overflow'));
    const rs = replay(exe, await bytesOf(d, id, s.input!.hash), dir);
    expect(rs.stderr).to.match(/heap-buffer-overflow/);

    // A leak is found after the target returned: no current input; libFuzzer's leak- artifact is linked instead.
    const l = byKind.get('leak')!;
    expect(l.detail).to.match(/leaked in/);
    expect(l.input?.hash).to.equal(createHash('sha1').update('LEAK').digest('hex'));
    expect(l.artifact).to.equal(join(artifacts, `leak-${l.input!.hash}`));
    expect((await bytesOf(d, id, l.input!.hash)).toString()).to.equal('LEAK');
  });

  it('a crash inside inlined code shows the inlined frame first, then the function it was inlined into, at the call', async () => {
    const src = join(dir, 'inl');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'inl.c'), [
      '#include <stdint.h>',
      '#include <stddef.h>',
      'static int *volatile nowhere;',
      'static inline __attribute__((always_inline)) void poke(int v) {',
      '  *nowhere = v;',
      '}',
      '__attribute__((noinline)) void handle(const uint8_t *d, size_t n) {',
      '  if (n >= 3 && d[0] == \'B\' && d[1] == \'O\' && d[2] == \'O\') poke((int)n);',
      '}',
      'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { handle(d, n); return 0; }',
      '',
    ].join('\n'));
    const exe = join(src, 'fuzz_inl');
    const cc = spawnSync(process.execPath, [covdBin, 'cc', '-O1', '-o', exe, join(src, 'inl.c')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).to.equal(0);
    const input = join(src, 'boom');
    fs.writeFileSync(input, 'BOOM');
    const icd = join(dir, 'cd');
    const r = spawnSync(exe, [input], { env: { ...process.env, COVD_DIR: icd, COVD_SOCKET: socket, COVD_AGENT_QUIET: '1' }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).to.not.equal(0);
    const files = fs.readdirSync(join(icd, 'v')).filter((n) => /^[0-9a-f]{16}$/.test(n));
    const ids = await pollUntil('the inl target', async () => {
      const ts = (await d.list()).filter((t) => t.name === 'fuzz_inl' && t.state === 'ready');
      return ts.length ? ts : undefined;
    }, 60_000);
    expect(files).to.include(ids[0]!.id);
    const g = await pollUntil('the inlined crash grouped', async () => (await crashesOf(d, ids[0]!.id))[0], 60_000);
    const project = g.frames.filter((f) => f.project);
    expect(project[0], JSON.stringify(g.frames)).to.include({ function: 'poke', line: 5, inlined: true });
    expect(project[1]).to.include({ function: 'handle', line: 8, inlined: false });
    expect(g.signature).to.match(/ \| poke \| handle /);
  });

});
