/**
 * AFL++ findings as crash records, end to end: a small AFL++ target (built like `covd cc
 * --engine=afl`) that crashes (SIGSEGV in crash_here), hangs (spin) or exits with 42 depending on
 * its first byte, real afl-fuzz runs (AFL_CRASH_EXITCODE=42) against a real `covd serve`.
 *
 * Checks, against the files afl-fuzz saved in <out>/default/crashes and hangs:
 *   - the agent's crash handler runs in the forked child under the fork server and persistent
 *     mode: the SIGSEGV group carries its resolved stack (top frame crash_here at the crashing
 *     line), AFL++'s saved file as its artifact, and every sig:11 file's bytes are kept as inputs
 *     with the file's SHA-1, with no second, stack-less group for the same crashes;
 *   - a hang (afl-fuzz SIGKILLs it, so no agent record) is a `timeout` group derived from the file:
 *     one per hangs/ file, its bytes, the time from its name, no stack;
 *   - an AFL_CRASH_EXITCODE crash (sig:00) is an `exit` group derived from the file;
 *   - with the agent's crash records off (COVD_AGENT_CRASHES=0), a SIGSEGV file is a `signal`
 *     group of its own, "signal:SIGSEGV | (no project frames)", with the file's bytes;
 *   - entries added by hand to that instance's crashes/ after the run: a symlink to a file, a FIFO
 *     and a directory named like afl-fuzz's files, and regular files whose names are not `id:`
 *     shaped, crash nothing, hold nothing up and become no record; a regular file with an mtime an
 *     hour in the future becomes one (it is not waited for until its mtime passes).
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildAflTarget, runAfl, type AflRun } from '../../src/afl/targets.js';
import { aflInstalled } from '../../src/build/afl-build.js';
import { buildDir } from '../../src/build/toolchain.js';
import type { CrashGroup } from '../../src/contracts/inputs.js';
import { pollUntil, startServe, type ServeProcess } from '../daemon/helpers.js';
import { scratchDirs } from '../helpers/scratch.js';

const SOURCE = `#include <stdint.h>
#include <stdlib.h>
int *volatile nowhere;
__attribute__((noinline)) static void crash_here(int v) {
  *nowhere = v; /* the crash */
}
__attribute__((noinline)) static void spin(void) {
  for (volatile unsigned i = 0;; i++) { } /* the hang */
}
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n < 1) return 0;
  if (d[0] == 'C') crash_here((int)n);
  if (d[0] == 'H') spin();
  if (d[0] == 'E') exit(42);
  return 0;
}
`;
const lineOf = (marker: string) => SOURCE.split('\n').findIndex((l) => l.includes(marker)) + 1;
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
const crashesOf = async (d: ServeProcess, id: string) => ((await (await fetch(`${d.url}api/targets/${id}/crashes`)).json()) as { crashes: CrashGroup[] }).crashes;
async function bytesOf(d: ServeProcess, id: string, hash: string): Promise<Buffer> {
  const r = await fetch(`${d.url}api/targets/${id}/inputs/${hash}`);
  expect(r.status, `input ${hash}`).to.equal(200);
  return Buffer.from(await r.arrayBuffer());
}
/** afl-fuzz's saved files in one directory: name, path, bytes. */
function saved(dir: string): { name: string; path: string; bytes: Buffer }[] {
  return readdirSync(dir).filter((n) => n.startsWith('id:')).sort().map((name) => ({ name, path: join(dir, name), bytes: readFileSync(join(dir, name)) }));
}
/** start_time of an instance, from its fuzzer_stats. */
const startTimeOf = (inst: string) => Number(/^start_time\s*: (\d+)/m.exec(readFileSync(join(inst, 'fuzzer_stats'), 'utf8'))![1]);

describe('AFL++ crashes and hangs as crash records', function () {
  this.timeout(300_000);
  const scratch = scratchDirs();
  const daemons: ServeProcess[] = [];
  const fuzzers: AflRun[] = [];
  let exe: string;
  let src: string;

  before(async function () {
    if (!aflInstalled()) throw new Error('AFL++ is not installed: run scripts/install-deps.sh (Debian package afl++)');
    src = join(buildDir('test-src', 'afl-findings'), 'fuzz_findings.c');
    writeFileSync(src, SOURCE);
    exe = await buildAflTarget({ name: 'fuzz_findings', sources: [src] });
  });
  afterEach(async () => {
    for (const f of fuzzers.splice(0)) await f.stop('SIGKILL');
    for (const d of daemons.splice(0)) { d.child.kill('SIGKILL'); await d.exited; }
  });

  /** Runs afl-fuzz until it saved a crash of each wanted kind (or 40 s), then stops it. */
  async function campaign(dir: string, env: NodeJS.ProcessEnv, want: { sig11: boolean; exit: boolean; hang: boolean }) {
    const socket = join(dir, 'covd.sock');
    const d = await startServe({ socket, stateDir: join(dir, 'state') });
    daemons.push(d);
    const seeds = join(dir, 'in');
    mkdirSync(seeds, { recursive: true });
    for (const [n, s] of [['b', 'B'], ['d', 'D'], ['i', 'I']]) writeFileSync(join(seeds, n), s!);
    const out = join(dir, 'out');
    const run = runAfl(exe, { input: seeds, output: out, seconds: 60, covdDir: join(dir, 'cov'), socket, extraArgs: ['-t', '50'], env: { AFL_CRASH_EXITCODE: '42', ...env } });
    fuzzers.push(run);
    const inst = join(out, 'default');
    const found = () => {
      const c = (() => { try { return readdirSync(join(inst, 'crashes')); } catch { return []; } })();
      const h = (() => { try { return readdirSync(join(inst, 'hangs')); } catch { return []; } })();
      return (!want.sig11 || c.some((n) => n.includes(',sig:11,'))) && (!want.exit || c.some((n) => n.includes(',sig:00,'))) && (!want.hang || h.some((n) => n.startsWith('id:')));
    };
    await pollUntil('afl-fuzz saved the crashes and hangs wanted', () => found(), 120_000, 250);
    const res = await run.stop('SIGINT');
    expect(res.code === 0 || res.code === null || res.code === 130, res.stderr.slice(-1500)).to.equal(true);
    const id = await pollUntil('the AFL++ target', async () => (await d.list()).find((t) => t.engine === 'afl' && t.state === 'ready')?.id, 60_000);
    return { d, id, inst };
  }

  it('a SIGSEGV keeps the agent\'s stack with AFL++\'s file as artifact; a hang and an AFL_CRASH_EXITCODE crash come from their files', async () => {
    const dir = scratch();
    const { d, id, inst } = await campaign(dir, {}, { sig11: true, exit: true, hang: true });
    const crashFiles = saved(join(inst, 'crashes'));
    const sig11 = crashFiles.filter((f) => f.name.includes(',sig:11,'));
    const exits = crashFiles.filter((f) => f.name.includes(',sig:00,'));
    const hangs = saved(join(inst, 'hangs'));
    expect(sig11.length + exits.length, 'only SIGSEGV and exit crashes').to.equal(crashFiles.length);

    const groups = await pollUntil('signal, exit and timeout groups with every file', async () => {
      const g = await crashesOf(d, id);
      const by = (k: string) => g.filter((x) => x.kind === k);
      const timeouts = by('timeout').reduce((n, x) => n + x.count, 0);
      const exitsN = by('exit').reduce((n, x) => n + x.count, 0);
      return by('signal').length && timeouts === hangs.length && exitsN === exits.length ? g : undefined;
    }, 60_000, 250);

    // SIGSEGV: the agent's record, resolved, grouped by the crashing function.
    const signal = groups.filter((g) => g.kind === 'signal');
    expect(signal.map((g) => g.signature), 'one SIGSEGV group, not a second one without a stack').to.have.length(1);
    const s = signal[0]!;
    expect(s.detail).to.equal('SIGSEGV');
    expect(s.resolved).to.equal(true);
    const top = s.frames.find((f) => f.project)!;
    expect(top.function).to.equal('crash_here');
    expect(top.file).to.equal(src);
    expect(top.line).to.equal(lineOf('the crash'));
    expect(s.signature).to.match(/^signal:SIGSEGV \| crash_here \| LLVMFuzzerTestOneInput/);
    // The agent records every crashing run; afl-fuzz saves only the ones with a new path.
    expect(s.count).to.be.at.least(sig11.length);
    expect(sig11.map((f) => f.path), 'the group\'s artifact is a file afl-fuzz saved').to.include(s.artifact);
    const art = sig11.find((f) => f.path === s.artifact)!;
    expect(s.firstInput!.hash).to.equal(sha1(art.bytes));
    expect((await bytesOf(d, id, s.firstInput!.hash)).equals(art.bytes)).to.equal(true);
    for (const f of sig11) {
      const b = await bytesOf(d, id, sha1(f.bytes));
      expect(b.equals(f.bytes), f.name).to.equal(true);
      expect(b[0]).to.equal('C'.charCodeAt(0));
    }

    // Hangs: derived from hangs/, one record per file, with its bytes and its time.
    const startTime = startTimeOf(inst);
    const timeout = groups.filter((g) => g.kind === 'timeout');
    expect(timeout).to.have.length(1);
    const h = timeout[0]!;
    expect(h.detail).to.equal('afl-fuzz: hang');
    expect(h.signature).to.equal('timeout | (no project frames)');
    expect(h.frames).to.deep.equal([]);
    expect(h.resolved).to.equal(false);
    expect(h.count).to.equal(hangs.length);
    const first = hangs[0]!;
    expect(h.artifact).to.equal(first.path);
    expect(h.firstInput!.hash).to.equal(sha1(first.bytes));
    expect((await bytesOf(d, id, h.firstInput!.hash)).equals(first.bytes)).to.equal(true);
    expect(first.bytes[0]).to.equal('H'.charCodeAt(0));
    const t = Number(/,time:(\d+),/.exec(first.name)![1]);
    expect(h.firstAt).to.equal(startTime * 1000 + t);
    expect(h.firstAt).to.be.at.most(statSync(first.path).mtimeMs + 1000);

    // AFL_CRASH_EXITCODE: an exit, from the file.
    const exit = groups.filter((g) => g.kind === 'exit');
    expect(exit).to.have.length(1);
    const e = exit[0]!;
    expect(e.detail).to.include('AFL_CRASH_EXITCODE');
    expect(e.frames).to.deep.equal([]);
    expect(e.count).to.equal(exits.length);
    expect(e.artifact).to.equal(exits[0]!.path);
    expect((await bytesOf(d, id, e.firstInput!.hash)).equals(exits[0]!.bytes)).to.equal(true);

    // /metrics counts them by kind.
    const metrics = await (await fetch(`${d.url}metrics`)).text();
    expect(metrics).to.match(new RegExp(`covd_target_crashes_total\\{target="${id}",name="fuzz_findings",kind="timeout"\\} ${hangs.length}\\n`));
  });

  it('without the agent\'s crash records (COVD_AGENT_CRASHES=0) a SIGSEGV file is a signal record without a stack', async () => {
    const dir = scratch();
    const { d, id, inst } = await campaign(dir, { COVD_AGENT_CRASHES: '0' }, { sig11: true, exit: false, hang: false });
    const sig11 = saved(join(inst, 'crashes')).filter((f) => f.name.includes(',sig:11,'));
    const g = await pollUntil('a SIGSEGV group per file', async () => {
      const x = (await crashesOf(d, id)).find((c) => c.kind === 'signal');
      return x && x.count === sig11.length ? x : undefined;
    }, 60_000, 250);
    expect(g.detail).to.equal('SIGSEGV');
    expect(g.signature).to.equal('signal:SIGSEGV | (no project frames)');
    expect(g.frames).to.deep.equal([]);
    expect(g.artifact).to.equal(sig11[0]!.path);
    for (const f of sig11) expect((await bytesOf(d, id, sha1(f.bytes))).equals(f.bytes), f.name).to.equal(true);
    // No agent record existed: the coverage file has no crash log entries.
    const cov = join(dir, 'cov', 'v');
    const log = readdirSync(cov).find((n) => n.endsWith('.crashes.log'));
    expect(log === undefined || statSync(join(cov, log)).size === 0).to.equal(true);

    // Hostile entries in crashes/, afl-fuzz stopped: every record from now on is one of these.
    const crashes = join(inst, 'crashes');
    const regularFiles = () => ['crashes', 'hangs'].flatMap((sub) => { try { return readdirSync(join(inst, sub)).map((n) => join(inst, sub, n)); } catch { return []; } })
      .filter((p) => /^id:\d+(,|$)/.test(p.split('/').pop()!) && lstatSync(p, { throwIfNoEntry: false })?.isFile());
    const total = async () => (await crashesOf(d, id)).reduce((n, x) => n + x.count, 0);
    const before = await pollUntil('every file recorded', async () => { const n = await total(); return n === regularFiles().length ? n : undefined; }, 60_000, 250);
    const secret = join(dir, 'secret');
    writeFileSync(secret, 'Csecret behind a symlink');
    const notId = [['README.txt', 'Cnot afl-fuzz 1'], ['id:notanumber,sig:11', 'Cnot afl-fuzz 2'], ['xid:000950,sig:11,src:000000', 'Cnot afl-fuzz 3']] as const;
    symlinkSync(secret, join(crashes, 'id:000900,sig:11,src:000000,time:1,execs:1,op:symlink'));
    execFileSync('mkfifo', [join(crashes, 'id:000901,sig:11,src:000000,time:1,execs:1,op:fifo')]);
    mkdirSync(join(crashes, 'id:000902,sig:11,src:000000,time:1,execs:1,op:dir'));
    for (const [n, b] of notId) writeFileSync(join(crashes, n), b);
    const future = join(crashes, 'id:000903,sig:06,src:000000,time:2,execs:2,op:future');
    writeFileSync(future, 'Cfrom the future');
    const hour = Date.now() / 1000 + 3600;
    utimesSync(future, hour, hour);
    expect(statSync(future).mtimeMs).to.be.greaterThan(Date.now() + 3_000_000);

    const abrt = await pollUntil('the future-mtime file as a record', async () => (await crashesOf(d, id)).find((c) => c.detail === 'SIGABRT'), 30_000, 250);
    expect(abrt.count).to.equal(1);
    expect(abrt.artifact).to.equal(future);
    expect(abrt.firstAt, 'its time is not in the future').to.be.at.most(Date.now());
    expect(abrt.firstInput!.hash).to.equal(sha1(readFileSync(future)));
    expect((await bytesOf(d, id, abrt.firstInput!.hash)).toString()).to.equal('Cfrom the future');
    // Give the others time to do harm, then: one record more (the future file's), the daemon alive and answering.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await total()).to.equal(before + 1);
    expect(regularFiles().length).to.equal(before + 1);
    const groups = await crashesOf(d, id);
    for (const g of groups) expect(g.artifact ?? '', g.signature).to.not.match(/op:(symlink|fifo|dir)|README|notanumber|xid:/);
    for (const b of ['Csecret behind a symlink', ...notId.map(([, x]) => x)]) {
      expect((await fetch(`${d.url}api/targets/${id}/inputs/${sha1(Buffer.from(b))}`)).status, b).to.equal(404);
    }
    expect(d.child.exitCode).to.equal(null);
    expect(d.lines.filter((l) => l.msg === 'reading inputs failed')).to.deep.equal([]);
    expect(d.lines.some((l) => l.msg === 'skipping an AFL++ file that is not a regular file' && /op:(symlink|fifo|dir)$/.test(String(l.file)))).to.equal(true);
  });
});
