/**
 * The HTTP side against a real target: API shapes and totals, source serving, exports (lcov fed
 * to genhtml), metrics, and the bundled client from the in-memory asset table.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { startWebServer, defaultUiDir } from '../../src/web/server.js';
import type { WebServer } from '../../src/web/types.js';
import { getJson, LiveTarget, quietLog, readCoverageFile, request, tempDir, until } from './harness.js';

const execFileP = promisify(execFile);

describe('web: HTTP API, exports and assets', function () {
  this.timeout(180_000);
  let target: LiveTarget;
  let srv: WebServer;
  let port: number;
  let uiDir: string;

  before(async () => {
    target = await LiveTarget.start({ tickMs: 100 });
    await until(() => target.registry.target(target.id)!.stats.covered > 0, 'some coverage');
    await new Promise((r) => setTimeout(r, 1500));
    await target.stopFuzzing();
    uiDir = tempDir();
    writeFileSync(join(uiDir, 'index.html'), '<!doctype html><title>covd test page</title>' + '<p>padding '.repeat(100));
    writeFileSync(join(uiDir, 'main.js'), 'console.log("hello from the bundle");\n'.repeat(50));
    mkdirSync(join(uiDir, 'fonts'));
    writeFileSync(join(uiDir, 'fonts', 'x.woff2'), Buffer.from([1, 2, 3, 4]));
    srv = await startWebServer({ hub: target.registry, host: '127.0.0.1', port: 0, log: quietLog, uiDir, limits: { httpRate: 100_000 } });
    port = srv.port;
  });

  after(async () => {
    await srv?.close();
    await target?.close();
    if (uiDir) rmSync(uiDir, { recursive: true, force: true });
  });

  it('serves every file of the client bundle by name, compressed, with an ETag', async () => {
    const page = await request(port, '/', { 'accept-encoding': 'gzip, br' });
    expect(page.status).to.equal(200);
    expect(page.headers['content-type']).to.match(/^text\/html/);
    expect(page.headers['content-encoding']).to.equal('br');
    expect(page.headers['content-security-policy']).to.include("default-src 'self'");
    expect(brotliDecompressSync(page.body).toString()).to.equal(readFileSync(join(uiDir, 'index.html'), 'utf8'));
    const etag = page.headers.etag!;
    expect(etag).to.match(/^"[A-Za-z0-9_-]+"$/);
    expect((await request(port, '/', { 'if-none-match': etag })).status).to.equal(304);

    const js = await request(port, '/main.js', { 'accept-encoding': 'gzip' });
    expect(js.headers['content-encoding']).to.equal('gzip');
    expect(js.headers['content-type']).to.match(/^text\/javascript/);
    expect(gunzipSync(js.body).toString()).to.equal(readFileSync(join(uiDir, 'main.js'), 'utf8'));
    const plain = await request(port, '/main.js');
    expect(plain.headers['content-encoding']).to.equal(undefined);
    expect(plain.body.toString()).to.equal(readFileSync(join(uiDir, 'main.js'), 'utf8'));
    expect((await request(port, '/fonts/x.woff2')).body).to.deep.equal(Buffer.from([1, 2, 3, 4]));
    // Built once at start: a file added later is not served, and nothing outside the table ever is.
    writeFileSync(join(uiDir, 'late.js'), 'x');
    for (const p of ['/late.js', '/../package.json', '/%2e%2e/package.json', '//etc/passwd', '/fonts/../main.js', '/main.js/', '/nope']) {
      expect((await request(port, p)).status, p).to.equal(404);
    }
    const head = await request(port, '/main.js', {}, 'HEAD');
    expect(head.status).to.equal(200);
    expect(head.body.length).to.equal(0);
    expect((await request(port, '/main.js', {}, 'POST')).status).to.equal(405);
  });

  it('serves the real bundle from dist/ui when it has been built', async function () {
    if (!existsSync(join(defaultUiDir, 'index.html'))) this.skip();
    const s = await startWebServer({ hub: target.registry, host: '127.0.0.1', port: 0, log: quietLog });
    try {
      for (const name of ['index.html', 'main.js', 'main.css']) {
        if (!existsSync(join(defaultUiDir, name))) continue;
        const r = await request(s.port, '/' + name);
        expect(r.status, name).to.equal(200);
        expect(r.body.equals(readFileSync(join(defaultUiDir, name))), name).to.equal(true);
      }
    } finally {
      await s.close();
    }
  });

  it('lists targets and describes one with per-file and per-function totals', async () => {
    const list = await getJson(port, '/api/targets');
    expect(list.status).to.equal(200);
    expect(list.body.targets.map((t: { id: string }) => t.id)).to.deep.equal([target.id]);
    const { status, body } = await getJson(port, `/api/targets/${target.id}`);
    expect(status).to.equal(200);
    const reg = target.registry.target(target.id)!;
    expect(body.id).to.equal(target.id);
    expect(body.state).to.equal('ready');
    expect(body.seq).to.equal(reg.seq);
    expect(body.stats.covered).to.equal(reg.stats.covered);
    expect(body.totals.pcs).to.deep.equal({ covered: reg.stats.covered, total: reg.stats.pcsLen });
    const sum = (k: 'pcs' | 'lines' | 'functions', f: 'covered' | 'total') => body.files.reduce((a: number, x: any) => a + x[k][f], 0);
    expect(body.files.length).to.be.greaterThan(0);
    expect(sum('lines', 'total')).to.equal(body.totals.lines.total);
    expect(sum('lines', 'covered')).to.equal(body.totals.lines.covered);
    expect(body.totals.lines.covered).to.be.greaterThan(0);
    expect(body.functions.length).to.equal(body.totals.functions.total);
    expect(body.functions.filter((f: any) => f.pcs.covered > 0).length).to.equal(body.totals.functions.covered);
    const names = body.functions.map((f: any) => f.name);
    expect(names).to.include('LLVMFuzzerTestOneInput');
    for (const f of body.files) {
      expect(f.path.startsWith('/')).to.equal(true);
      expect(f.lines.covered).to.be.at.most(f.lines.total);
    }
    expect((await getJson(port, '/api/targets/0123456789abcdef')).status).to.equal(404);
    const hist = await getJson(port, `/api/targets/${target.id}/history`);
    expect(hist.body.samples.length).to.be.greaterThan(0);
    expect(hist.body.samples.at(-1).covered).to.be.at.most(reg.stats.covered);
  });

  it('serves only source files the debug info names, by index', async () => {
    const { body } = await getJson(port, `/api/targets/${target.id}`);
    for (const f of body.files) {
      const r = await request(port, `/api/targets/${target.id}/source?file=${f.file}`);
      expect(r.status, f.path).to.equal(200);
      expect(r.body.equals(readFileSync(f.path)), f.path).to.equal(true);
      expect(r.headers.etag).to.match(/^W\//);
      expect((await request(port, `/api/targets/${target.id}/source?file=${f.file}`, { 'if-none-match': r.headers.etag! })).status).to.equal(304);
    }
    const bad = ['', 'file=', 'file=-1', 'file=1.5', 'file=../../etc/passwd', 'file=%2Fetc%2Fpasswd', 'file=/etc/passwd', 'file=0x1'];
    for (const q of bad) expect((await request(port, `/api/targets/${target.id}/source?${q}`)).status, q).to.equal(400);
    const r = await getJson(port, `/api/targets/${target.id}/source?file=99999`);
    expect(r.status).to.equal(404);
    expect(r.body.error).to.match(/not a source file/);
    expect((await request(port, `/api/targets/${target.id}/../../etc/passwd`)).status).to.equal(404);

    const small = await startWebServer({ hub: target.registry, host: '127.0.0.1', port: 0, log: quietLog, limits: { maxSourceBytes: 64 } });
    try {
      const big = await getJson(small.port, `/api/targets/${target.id}/source?file=${body.files[0].file}`);
      expect(big.status).to.equal(413);
      expect(big.body.error).to.match(/limit/);
    } finally {
      await small.close();
    }
  });

  it('exports lcov that genhtml reads with the same line and function totals as the API', async () => {
    const { body } = await getJson(port, `/api/targets/${target.id}`);
    const lcov = await request(port, `/api/targets/${target.id}/coverage?format=lcov`);
    expect(lcov.status).to.equal(200);
    const dir = tempDir();
    try {
      writeFileSync(join(dir, 'cov.info'), lcov.body);
      const { stdout } = await execFileP('genhtml', ['--output-directory', join(dir, 'html'), '--function-coverage', join(dir, 'cov.info')]);
      const lines = /lines\.*: [\d.]+% \((\d+) of (\d+) lines\)/.exec(stdout);
      const fns = /functions\.*: [\d.]+% \((\d+) of (\d+) functions\)/.exec(stdout);
      expect(lines, stdout).to.not.equal(null);
      expect([Number(lines![1]), Number(lines![2])]).to.deep.equal([body.totals.lines.covered, body.totals.lines.total]);
      expect([Number(fns![1]), Number(fns![2])]).to.deep.equal([body.totals.functions.covered, body.totals.functions.total]);
      expect(existsSync(join(dir, 'html', 'index.html'))).to.equal(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const json = await getJson(port, `/api/targets/${target.id}/coverage?format=json`);
    expect(json.body.totals).to.deep.equal(body.totals);
    const file = readCoverageFile(target.coverageFile);
    const seen: number[] = [];
    for (let pc = 0; pc < file.pcsLen; pc++) if (file.seen[pc >> 3]! & (1 << (pc & 7))) seen.push(pc);
    expect(json.body.seenPcs).to.deep.equal(seen);
    expect((await request(port, `/api/targets/${target.id}/coverage?format=xml`)).status).to.equal(400);
  });

  it('rebinds a fixed port still held by a closing connection when told to retry', async () => {
    const a = await startWebServer({ hub: target.registry, host: '127.0.0.1', port: 0, log: quietLog, uiDir });
    const fixed = a.port;
    // A client that keeps its end open: after close() the server's side waits in FIN-WAIT-2.
    const c = connect({ port: fixed, host: '127.0.0.1', allowHalfOpen: true });
    c.on('error', () => {});
    await new Promise((r) => c.once('connect', r));
    c.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${fixed}\r\n\r\n`);
    await new Promise((r) => c.once('data', r));
    await a.close();
    let err: Error | undefined;
    await startWebServer({ hub: target.registry, host: '127.0.0.1', port: fixed, log: quietLog, uiDir }).then((s) => s.close(), (e: Error) => (err = e));
    expect(err?.message).to.match(/cannot listen .*in use/);
    // A reset (not a FIN) frees the port at once: no TIME-WAIT on the server side.
    setTimeout(() => c.resetAndDestroy(), 300);
    const b = await startWebServer({ hub: target.registry, host: '127.0.0.1', port: fixed, log: quietLog, uiDir, listenRetryMs: 60_000 });
    try {
      expect(b.port).to.equal(fixed);
      expect((await request(fixed, '/healthz')).status).to.equal(200);
    } finally {
      await b.close();
    }
  });

  it('exposes Prometheus metrics per target and for the server', async () => {
    const t0 = Date.now();
    const r = await request(port, '/metrics');
    const t1 = Date.now();
    expect(r.status).to.equal(200);
    expect(r.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
    const text = r.body.toString();
    const value = (name: string) => {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
      expect(m, name).to.not.equal(null);
      return Number(m![1]);
    };
    const reg = target.registry.target(target.id)!;
    expect(value('covd_target_pcs_covered')).to.equal(reg.stats.covered);
    expect(value('covd_target_pcs_total')).to.equal(reg.stats.pcsLen);
    expect(value('covd_target_runs_total')).to.equal(reg.stats.nRuns);
    // Rendered between t0 and t1: the age of the newest coverage at that moment.
    const last = reg.stats.lastNewAt ?? reg.createdAt;
    const age = value('covd_target_seconds_since_new_coverage');
    expect(age).to.be.within(Math.max(0, (t0 - last) / 1000) - 0.001, (t1 - last) / 1000 + 0.001);
    expect(value('covd_web_clients')).to.equal(0);
    expect(value('covd_web_http_requests_total')).to.be.greaterThan(0);
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) expect(line).to.match(/^[a-z_]+(\{[^}]*\})? -?[\d.e+]+$/);
    const h = await getJson(port, '/healthz');
    expect(h.body).to.include({ ok: true, targets: 1 });
  });
});
