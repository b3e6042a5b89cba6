/**
 * Source serving against paths a hostile target's debug info can name: only regular files, never
 * through a symlink out of the file's directory, never blocking on a FIFO. The index is made by
 * hand (in the daemon's real TargetRegistry) so it can name every kind of file.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { constants, mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TargetRegistry } from '../../src/daemon/registry.js';
import { startWebServer } from '../../src/web/server.js';
import { openRegularNonBlocking, readAtMost, SourceRefused } from '../../src/web/source.js';
import type { WebServer } from '../../src/web/types.js';
import { NONE, type SourceIndex } from '../../src/workers/types.js';
import { getJson, quietLog, request, tempDir } from './harness.js';

const ID = 'hostile-index';
const SECRET = 'covd-test-secret-' + process.pid;

/** Races a promise against a deadline; 'timeout' when it is not settled in time. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]).finally(() => clearTimeout(timer));
}

describe('web: source files the debug info names are served only when safe', function () {
  this.timeout(60_000);
  let root: string;
  let src: string;
  let srv: WebServer;
  const files: string[] = [];
  const dirs: string[] = [];
  const fileDirs: number[] = [];
  /** The /source index of a file named `name` in directory `dir`. */
  const name = (dir: string, file: string) => {
    let d = dirs.indexOf(dir);
    if (d < 0) d = dirs.push(dir) - 1;
    files.push(file);
    fileDirs.push(d);
    return files.length - 1;
  };
  const idx: Record<string, number> = {};
  const big = 'int big(void) { return 1; }\n'.repeat(2000);

  before(async () => {
    root = tempDir();
    src = join(root, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'ok.c'), 'int main(void) { return 0; }\n');
    writeFileSync(join(src, 'big.c'), big);
    writeFileSync(join(src, 'sub', 'inner.c'), 'int inner;\n');
    writeFileSync(join(root, 'secret.txt'), SECRET + '\n');
    symlinkSync('sub/inner.c', join(src, 'link-in.c'));
    symlinkSync('../secret.txt', join(src, 'link-out.c'));
    symlinkSync('/etc/passwd', join(src, 'link-etc.c'));
    symlinkSync(join(src, 'sub'), join(src, 'sublink'));
    symlinkSync(src, join(root, 'srclink'));
    execFileSync('mkfifo', [join(src, 'fifo.c')]);
    mkdirSync(join(src, 'dir.c'));

    idx.ok = name(src, 'ok.c');
    idx.big = name(src, 'big.c');
    idx.inner = name(src, 'sub/inner.c');
    idx.linkIn = name(src, 'link-in.c');
    idx.linkOut = name(src, 'link-out.c');
    idx.linkEtc = name(src, 'link-etc.c');
    idx.viaDirLink = name(join(root, 'srclink'), 'ok.c');
    idx.viaSubLink = name(src, 'sublink/inner.c');
    idx.fifo = name(src, 'fifo.c');
    idx.dir = name(src, 'dir.c');
    idx.devZero = name('/dev', 'zero');
    idx.absZero = name(src, '/dev/zero');
    idx.missing = name(src, 'missing.c');

    const reg = new TargetRegistry();
    reg.add({ id: ID, exe: join(root, 'fuzz'), coverageFile: join(root, 'cov'), pcsLen: files.length });
    const n = files.length;
    const index: SourceIndex = {
      buildId: 'feedface', directories: dirs, files, fileDirs: Uint32Array.from(fileDirs),
      functions: { names: ['f'], file: new Uint32Array([0]), line: new Uint32Array([1]) },
      pcFile: Uint32Array.from({ length: n }, (_, i) => i), pcLine: new Uint32Array(n).fill(1), pcColumn: new Uint32Array(n), pcFunction: new Uint32Array(n).fill(NONE),
    };
    reg.setIndex(ID, index);
    srv = await startWebServer({ hub: reg, host: '127.0.0.1', port: 0, log: quietLog });
  });

  after(async () => {
    await srv?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const source = (file: number, headers: Record<string, string> = {}) => request(srv.port, `/api/targets/${ID}/source?file=${file}`, headers);

  it('serves regular files, also through symlinks that stay in the directory', async () => {
    for (const [k, path] of [['ok', 'ok.c'], ['inner', 'sub/inner.c'], ['linkIn', 'sub/inner.c'], ['viaDirLink', 'ok.c'], ['viaSubLink', 'sub/inner.c']] as const) {
      const r = await source(idx[k]!);
      expect(r.status, k).to.equal(200);
      expect(r.headers['content-type'], k).to.equal('text/plain; charset=utf-8');
      expect(r.body.equals(readFileSync(join(src, path))), k).to.equal(true);
      expect((await source(idx[k]!, { 'if-none-match': r.headers.etag! })).status, k).to.equal(304);
    }
    // Large files go out gzipped, the second time from the cache.
    for (let i = 0; i < 2; i++) {
      const r = await source(idx.big!, { 'accept-encoding': 'gzip' });
      expect(r.status).to.equal(200);
      expect(r.headers['content-encoding']).to.equal('gzip');
      expect(gunzipSync(r.body).toString()).to.equal(big);
    }
  });

  it('refuses a symlink that leaves the directory the debug info names, naming no contents', async () => {
    for (const k of ['linkOut', 'linkEtc'] as const) {
      const r = await getJson(srv.port, `/api/targets/${ID}/source?file=${idx[k]}`);
      expect(r.status, k).to.equal(403);
      expect(r.body.error, k).to.match(/symbolic link that leaves the directory/);
      expect(JSON.stringify(r.body), k).to.not.include(SECRET).and.not.include('root:');
    }
  });

  it('refuses a FIFO at once and keeps answering meanwhile', async () => {
    const t0 = Date.now();
    const [fifo, health] = await Promise.all([within(getJson(srv.port, `/api/targets/${ID}/source?file=${idx.fifo}`), 1000), within(request(srv.port, '/healthz'), 1000)]);
    expect(fifo, 'the FIFO request').to.not.equal('timeout');
    expect(health, '/healthz').to.not.equal('timeout');
    expect(Date.now() - t0).to.be.below(1000);
    const f = fifo as { status: number; body: { error: string } };
    expect(f.status).to.equal(404);
    expect(f.body.error).to.match(/is a FIFO, not a regular file/);
    expect((health as { status: number }).status).to.equal(200);
    // And again while the event loop is busy with other requests: nothing waits for a writer.
    const many = await within(Promise.all([...Array.from({ length: 8 }, () => source(idx.fifo!)), request(srv.port, '/healthz')]), 1000);
    expect(many).to.not.equal('timeout');
    expect((many as { status: number }[]).map((r) => r.status)).to.deep.equal([...Array(8).fill(404), 200]);
  });

  it('judges the open descriptor, opening a FIFO without waiting for a writer', async () => {
    // The server stats first; this is the check that still holds if a file becomes a FIFO in between.
    const fifo = join(src, 'fifo.c');
    const r = await within(openRegularNonBlocking(fifo).then(({ fh }) => fh.close().then(() => 'opened'), (e: Error) => e), 1000);
    if (r === 'timeout') {
      // Release the blocked open so the test run can end, then fail.
      await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).then((fh) => fh.close());
    }
    expect(r).to.be.instanceOf(SourceRefused);
    expect((r as SourceRefused).message).to.match(/FIFO/);
    const dir = await openRegularNonBlocking(join(src, 'dir.c')).catch((e: Error) => e);
    expect((dir as Error).message).to.match(/directory/);
  });

  it('refuses devices and directories', async () => {
    for (const [k, what] of [['devZero', /a device/], ['absZero', /a device/], ['dir', /a directory/]] as const) {
      const t0 = Date.now();
      const r = await getJson(srv.port, `/api/targets/${ID}/source?file=${idx[k]}`);
      expect(r.status, k).to.equal(404);
      expect(r.body.error, k).to.match(what);
      expect(Date.now() - t0, k).to.be.below(1000);
    }
    const gone = await getJson(srv.port, `/api/targets/${ID}/source?file=${idx.missing}`);
    expect(gone.status).to.equal(404);
    expect(gone.body.error).to.match(/gone from disk/);
  });

  it('checks a file again on every request, cached or not', async () => {
    const path = join(src, 'big.c');
    expect((await source(idx.big!, { 'accept-encoding': 'gzip' })).status).to.equal(200);
    writeFileSync(join(root, 'big-secret.txt'), big);
    unlinkSync(path);
    symlinkSync('../big-secret.txt', path);
    try {
      expect((await source(idx.big!, { 'accept-encoding': 'gzip' })).status).to.equal(403);
    } finally {
      unlinkSync(path);
      writeFileSync(path, big);
    }
  });

  it('reads no more than the limit, even when a file grows after fstat', async () => {
    const path = join(root, 'grow.txt');
    writeFileSync(path, 'x'.repeat(50));
    const fh = await open(path, 'r');
    try {
      expect((await readAtMost(fh, 10, 100))!.toString()).to.equal('x'.repeat(50));
      expect((await readAtMost(fh, 50, 50))!.length).to.equal(50);
      expect(await readAtMost(fh, 10, 49)).to.equal(null);
      expect((await readAtMost(fh, 0, 100))!.length).to.equal(50);
    } finally {
      await fh.close();
    }
  });
});
