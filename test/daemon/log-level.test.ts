/**
 * SIGHUP's new log level reaches every part of the real daemon: the web, control and watch
 * loggers are children created at start-up (`part` bindings), and must follow the root's level
 * from then on, both ways.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { encodeFrame } from '../../src/bus/framing.js';
import { covdBin, pollUntil } from './helpers.js';

type Rec = Record<string, unknown>;

/** `covd serve` with its level from the config file only (startServe passes --log-level, which would win over it). */
async function serveWithConfig(dir: string, config: string) {
  const socket = join(dir, 'covd.sock');
  const args = [covdBin, 'serve', '--port', '0', '--socket', socket, '--state-dir', join(dir, 'state'), '--config', config];
  const child: ChildProcess = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, COVD_LOG_FORMAT: '', COVD_LOG_LEVEL: '', COVD_WATCH: '', COVD_TOKEN: '', XDG_CONFIG_HOME: dir },
  });
  const lines: Rec[] = [];
  let buf = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try { lines.push(JSON.parse(line) as Rec); } catch { lines.push({ msg: line, raw: true }); }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const exited = new Promise<{ code: number | null }>((r) => child.once('exit', (code) => r({ code })));
  let done = false;
  void exited.then(() => { done = true; });
  const waitFor = (pred: (l: Rec) => boolean, what: string, timeoutMs = 60_000) =>
    pollUntil(what, () => {
      const l = lines.find(pred);
      if (!l && done) throw new Error(`daemon exited; stderr: ${stderr.slice(-2000)}; log: ${JSON.stringify(lines.slice(-5))}`);
      return l;
    }, timeoutMs, 25);
  const ready = await waitFor((l) => l.msg === 'covd ready', 'the readiness line');
  return { child, lines, exited, waitFor, socket, url: String(ready.url) };
}

describe('daemon: SIGHUP log level reaches every part', function () {
  this.timeout(300_000);
  let dir: string;
  let child: ChildProcess | undefined;
  beforeEach(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-loglevel-')); });
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    child = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('web, control and watch debug/info lines stop and start with the level in the reloaded config file', async () => {
    const dirs = ['a', 'b', 'c'].map((n) => { const d = join(dir, `cov-${n}`); fs.mkdirSync(join(d, 'v'), { recursive: true }); return d; });
    const config = join(dir, 'covd.json');
    const setConfig = (c: Rec) => fs.writeFileSync(config, JSON.stringify(c));
    setConfig({ logLevel: 'info', watch: [dirs[0]] });
    const d = await serveWithConfig(dir, config);
    child = d.child;

    let sentinels = 0;
    /** A `warn` line from the control part (a bad frame), so every line logged before it has been read. */
    const sentinel = async () => {
      const before = d.lines.filter((l) => l.msg === 'control socket: bad frame, closing connection').length;
      await new Promise<void>((resolve, reject) => {
        const c = net.connect(d.socket, () => c.write(Buffer.from([0xff, 0xff, 0xff, 0xff])));
        c.on('error', reject).on('close', () => resolve());
        c.resume();
      });
      sentinels++;
      await pollUntil('the sentinel line', () => d.lines.filter((l) => l.msg === 'control socket: bad frame, closing connection').length > before, 30_000, 25);
    };
    /** A text frame on /ws: the web part logs 'closing websocket' at debug and closes it. */
    const webDebug = () => new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(d.url.replace(/^http/, 'ws') + 'ws');
      ws.once('open', () => ws.send('not msgpack'));
      ws.once('error', reject);
      ws.once('close', (code) => (code === 1007 ? resolve() : reject(new Error(`closed with ${code}`))));
    });
    /** Half a frame on the control socket: after its 10 s deadline the control part logs at debug and closes it. */
    const controlDebug = () => new Promise<void>((resolve, reject) => {
      const c = net.connect(d.socket, () => c.write(encodeFrame({ type: 'list' }).subarray(0, 5)));
      c.on('error', reject).on('close', () => resolve());
      c.resume();
    });
    const count = (pred: (l: Rec) => boolean) => d.lines.filter(pred).length;
    const webLines = (l: Rec) => l.msg === 'closing websocket' && l.part === 'web';
    const controlLines = (l: Rec) => l.msg === 'control socket: request not finished in time, closing connection' && l.part === 'control';
    const watching = (dirName: string) => (l: Rec) => l.msg === 'watching coverage directory' && l.part === 'watch' && l.dir === dirName;
    const reload = async (c: Rec, confirm: (l: Rec) => boolean) => {
      const before = count(confirm);
      setConfig(c);
      d.child.kill('SIGHUP');
      await pollUntil('the reload to be logged', () => count(confirm) > before, 30_000, 25);
    };

    // info, from start-up: the children exist, watch and web say so at info; no debug from either part.
    expect(count(watching(dirs[0]))).to.equal(1);
    expect(d.lines.find(watching(dirs[0]))!.level).to.equal(30);
    expect(d.lines.some((l) => l.msg === 'web server listening' && l.part === 'web' && l.level === 30)).to.equal(true);
    await Promise.all([webDebug(), controlDebug()]);
    await sentinel();
    expect(count(webLines), 'web debug at info').to.equal(0);
    expect(count(controlLines), 'control debug at info').to.equal(0);
    expect(d.lines.every((l) => typeof l.level === 'number' && l.level >= 30)).to.equal(true);

    // debug: the same requests are now logged by the web and control children.
    await reload({ logLevel: 'debug', watch: [dirs[0]] }, (l) => l.msg === 'configuration reloaded' && l.logLevel === 'debug');
    await Promise.all([webDebug(), controlDebug()]);
    await sentinel();
    expect(count(webLines), 'web debug at debug').to.equal(1);
    expect(count(controlLines), 'control debug at debug').to.equal(1);
    expect(d.lines.find(webLines)!.level).to.equal(20);
    expect(d.lines.find(controlLines)!.level).to.equal(20);

    // warn: 'configuration reloaded' (info) is not logged; a setting that needs a restart is
    // (warn), after the watch part started on the new directory, whose info line must be absent.
    await reload({ logLevel: 'warn', watch: [dirs[0], dirs[1]], token: 'a-token-for-the-restart-warning' },
      (l) => l.msg === 'these settings take effect only after a restart' && l.level === 40);
    await Promise.all([webDebug(), controlDebug()]);
    await sentinel();
    expect(count(watching(dirs[1])), 'watch info at warn').to.equal(0);
    expect(count((l) => l.msg === 'configuration reloaded' && l.logLevel === 'warn'), 'root info at warn').to.equal(0);
    expect(count(webLines), 'web debug at warn').to.equal(1);
    expect(count(controlLines), 'control debug at warn').to.equal(1);

    // info again: the watch part logs the next directory it starts on.
    await reload({ logLevel: 'info', watch: [dirs[0], dirs[1], dirs[2]] }, (l) => l.msg === 'configuration reloaded' && l.logLevel === 'info');
    expect(count(watching(dirs[2])), 'watch info at info').to.equal(1);
    await webDebug();
    await sentinel();
    expect(count(webLines), 'web debug at info again').to.equal(1);
    expect(sentinels).to.equal(4);

    d.child.kill('SIGTERM');
    expect((await d.exited).code).to.equal(0);
  });
});
