import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseServeFlags } from '../../src/daemon/config.js';
import { ConfigError, UsageError } from '../../src/contracts/errors.js';
import { covdBin } from './helpers.js';
import { startControlServer, validateMessage } from '../../src/daemon/control.js';
import { request } from '../../src/daemon/client.js';
import { createLogger } from '../../src/util/log.js';
import net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';

describe('daemon configuration', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('takes flags over environment over config file over defaults', () => {
    const file = join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify({ port: 1111, host: '127.0.0.2', logLevel: 'debug', watch: ['/from/file'], retireDays: 7 }));
    const env = { HOME: dir, XDG_STATE_HOME: join(dir, 'state'), COVD_PORT: '2222', COVD_WATCH: '/env/a:/env/b' };
    const c = loadConfig(parseServeFlags(['--config', file, '--port', '3333']), env);
    expect(c.port).to.equal(3333);
    expect(c.host).to.equal('127.0.0.2');
    expect(c.logLevel).to.equal('debug');
    expect(c.watch).to.deep.equal(['/env/a', '/env/b']);
    expect(c.retireDays).to.equal(7);
    expect(c.keepRetired).to.equal(5);
    expect(c.stateDir).to.equal(join(dir, 'state', 'covd'));
    expect(c.configFile).to.equal(file);
    const d = loadConfig(parseServeFlags([]), { HOME: dir, XDG_CONFIG_HOME: join(dir, 'none') });
    expect(d.port).to.equal(8317);
    expect(d.host).to.equal('127.0.0.1');
    expect(d.configFile).to.equal(undefined);
  });

  it('names the bad setting', () => {
    const file = join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify({ prot: 1 }));
    expect(() => loadConfig(parseServeFlags(['--config', file]), {})).to.throw(UsageError, /unknown key 'prot'/);
    expect(() => loadConfig(parseServeFlags(['--port', '99999']), {})).to.throw(UsageError, /port must be/);
    expect(() => loadConfig(parseServeFlags(['--log-level', 'loud']), {})).to.throw(UsageError, /log level/);
    expect(() => parseServeFlags(['--bogus'])).to.throw(UsageError);
    expect(() => loadConfig(parseServeFlags(['--config', join(dir, 'missing.json')]), {})).to.throw(UsageError, /cannot read/);
    // Values are type-checked by name, and the error has the config family's code.
    for (const [bad, re] of [[{ host: 1 }, /'host' must be a string, got 1/], [{ port: '80' }, /'port' must be an integer/], [{ watch: '/a' }, /'watch' must be a list of strings/], [{ memoryMb: 1.5 }, /'memoryMb' must be an integer/], [{ exclude: ['(unclosed'] }, /exclude: '\(unclosed' is not a regular expression/]] as const) {
      fs.writeFileSync(file, JSON.stringify(bad));
      let err: unknown;
      try { loadConfig(parseServeFlags(['--config', file]), {}); } catch (e) { err = e; }
      expect(err, JSON.stringify(bad)).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.match(re);
      expect((err as ConfigError).code).to.equal('COVD_ERR_CONFIG');
    }
  });

  it('every setting comes from its flag, its variable and its config key alike, and --help names all three', async () => {
    const { SETTINGS, serveUsage } = await import('../../src/daemon/config.js');
    const file = join(dir, 'c.json');
    const sample = (k: string, kind: string): [string, unknown] => {
      if (kind === 'int') return ['17', 17];
      if (kind === 'level') return ['warn', 'warn'];
      if (kind === 'path') return [join(dir, k), join(dir, k)];
      if (kind === 'paths') return [join(dir, k), [join(dir, k)]];
      if (kind === 'strings') return [`${k}.example`, [`${k}.example`]];
      if (kind === 'regexes') return ['^/opt/vendor/', ['^/opt/vendor/']];
      if (kind === 'urls') return ['nats://a.example:4222', ['nats://a.example:4222']];
      return [`${k}-value`, `${k}-value`];
    };
    for (const s of SETTINGS) {
      const [text, want] = sample(s.key, s.kind);
      const asFlag = loadConfig(parseServeFlags([`--${s.flag}`, text]), { XDG_CONFIG_HOME: join(dir, 'none') });
      const asEnv = loadConfig(parseServeFlags([]), { XDG_CONFIG_HOME: join(dir, 'none'), [s.env]: text });
      fs.writeFileSync(file, JSON.stringify({ [s.key]: s.kind === 'int' ? 17 : want }));
      const asFile = loadConfig(parseServeFlags(['--config', file]), {});
      for (const [how, c] of [['flag', asFlag], ['env', asEnv], ['file', asFile]] as const) expect((c as unknown as Record<string, unknown>)[s.key], `${s.key} by ${how}`).to.deep.equal(want);
      expect(serveUsage).to.include(`--${s.flag}`).and.include(s.env);
    }
  });

  it('a bad config value makes covd serve exit 2 naming it', () => {
    const file = join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify({ host: 1 }));
    const r = spawnSync(process.execPath, [covdBin, 'serve', '--config', file, '--state-dir', join(dir, 's'), '--socket', join(dir, 's.sock')], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/'host' must be a string, got 1/);
  });
});

describe('control socket', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const log = createLogger({ level: 'silent' });

  it('validates messages', () => {
    expect(validateMessage({ type: 'coverage', id: '0123456789abcdef', exe: '/a', file: '/b' })).to.equal(undefined);
    expect(validateMessage({ type: 'coverage', id: 'XYZ', exe: '/a', file: '/b' })).to.match(/id/);
    expect(validateMessage({ type: 'coverage', id: '0123456789abcdef', exe: 'rel', file: '/b' })).to.match(/exe/);
    expect(validateMessage({ type: 'nope' })).to.match(/unknown/);
    expect(validateMessage(42)).to.match(/not a map/);
  });

  it('is private, answers requests, and survives garbage', async () => {
    const path = join(dir, 'c.sock');
    const srv = await startControlServer(path, async (m) => ({ ok: true, echo: m.type }), log);
    expect(fs.statSync(path).mode & 0o777).to.equal(0o600);
    expect(await request(path, { type: 'status' })).to.deep.equal({ ok: true, echo: 'status' });
    // Raw bytes in, the first reply (or the close) out.
    const raw = (bytes: Buffer) => new Promise<Buffer>((resolve) => {
      const c = net.connect(path, () => c.write(bytes));
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => { c.destroy(); resolve(Buffer.concat(chunks)); }, 20_000);
      c.on('data', (b) => { chunks.push(b); clearTimeout(timer); c.destroy(); resolve(Buffer.concat(chunks)); });
      c.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)); });
      c.on('error', () => undefined);
    });
    // A frame claiming 1 GiB is refused with an error reply.
    const huge = Buffer.alloc(8);
    huge.writeUInt32LE(1 << 30, 0);
    expect((await raw(huge)).length).to.be.greaterThan(4);
    // Bytes that are not a message get an error reply too.
    expect((await raw(Buffer.from([1, 0, 0, 0, 0xc1]))).length).to.be.greaterThan(4);
    expect((await raw(Buffer.from([1, 0, 0, 0, 0x07]))).length).to.be.greaterThan(4);
    expect((await request(path, { type: 'list' })).ok).to.equal(true);
    await srv.close();
  });

  it('refuses a socket directory others can write to, but accepts a sticky one like /tmp', async () => {
    const open = join(dir, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    let err: Error | undefined;
    try { await startControlServer(join(open, 'c.sock'), async () => ({ ok: true }), log); } catch (e) { err = e as Error; }
    expect(err?.message).to.match(/refusing to put the control socket in .*open.*mode 777/);
    expect(fs.existsSync(join(open, 'c.sock'))).to.equal(false);
    fs.chmodSync(open, 0o1777);
    const srv = await startControlServer(join(open, 'c.sock'), async () => ({ ok: true }), log);
    expect(fs.statSync(join(open, 'c.sock')).mode & 0o777).to.equal(0o600);
    await srv.close();
  });

  it('refuses a second server on a live socket and takes over a stale one', async () => {
    const path = join(dir, 'c.sock');
    const srv = await startControlServer(path, async () => ({ ok: true }), log);
    let err: Error | undefined;
    try { await startControlServer(path, async () => ({ ok: true }), log); } catch (e) { err = e as Error; }
    expect(err?.message).to.match(/another daemon/);
    await srv.close();
    // A killed daemon leaves its socket file behind: make one with a process we SIGKILL.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up')); setInterval(() => {}, 1000)`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((r) => child.stdout!.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(fs.statSync(path).isSocket()).to.equal(true);
    const srv2 = await startControlServer(path, async () => ({ ok: true, second: true }), log);
    expect(await request(path, { type: 'list' })).to.deep.equal({ ok: true, second: true });
    await srv2.close();
    expect(fs.existsSync(path)).to.equal(false);
  });
});
