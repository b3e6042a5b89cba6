/** The pino-backed logger: record shape, level propagation to children, reserved keys, errors, pretty output. */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLogger, isLevel, levelName, levelValues, plainPretty, type Level, type Logger } from '../../src/util/log.js';

const execFileP = promisify(execFile);
const logModule = fileURLToPath(new URL('../../src/util/log.js', import.meta.url));

function collector(level: Level = 'info', bindings?: Record<string, unknown>) {
  const lines: string[] = [];
  const log = createLogger({ level, pretty: false, write: (l) => lines.push(l) }, bindings);
  const recs = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, recs };
}

describe('util/log (pino)', () => {
  it('writes pino records: numeric level, epoch-ms time, pid, hostname, bindings, fields, msg', () => {
    const { log, lines, recs } = collector('info', { name: 'covd' });
    const before = Date.now();
    log.child({ part: 'web' }).info('web server listening', { url: 'http://127.0.0.1:1/', ui: true });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.not.include('\n');
    const r = recs()[0];
    expect(r).to.include({ level: 30, pid: process.pid, hostname: os.hostname(), name: 'covd', part: 'web', url: 'http://127.0.0.1:1/', ui: true, msg: 'web server listening' });
    expect(r.time).to.be.a('number').within(before, Date.now());
    expect(Object.keys(r).slice(0, 4)).to.deep.equal(['level', 'time', 'pid', 'hostname']);
  });

  it('maps every level to pino\'s number and filters below the threshold; silent drops all', () => {
    const { log, recs } = collector('debug');
    for (const l of ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const) log[l](l);
    expect(recs().map((r) => [r.level, r.msg])).to.deep.equal([[20, 'debug'], [30, 'info'], [40, 'warn'], [50, 'error'], [60, 'fatal']]);
    const quiet = collector('silent');
    quiet.log.fatal('no');
    quiet.log.child({ a: 1 }).fatal('no');
    expect(quiet.lines).to.deep.equal([]);
    expect(levelValues.warn).to.equal(40);
    expect(levelName(50)).to.equal('error');
    expect(levelName(35)).to.equal(undefined);
    expect(isLevel('silent')).to.equal(true);
    expect(isLevel('loud')).to.equal(false);
    expect(() => createLogger({ level: 'loud' as Level })).to.throw(/log level/);
  });

  it('a level set on the root reaches children and grandchildren created before it', () => {
    const { log, recs } = collector('info');
    const web = log.child({ part: 'web' });
    const control = log.child({ part: 'control' });
    const target = web.child({ id: 't1' });
    web.debug('hidden');
    log.level = 'debug';
    expect(web.level).to.equal('debug');
    web.debug('web debug');
    control.debug('control debug');
    target.debug('target debug');
    log.level = 'warn';
    web.info('hidden');
    target.info('hidden');
    control.warn('control warn');
    log.level = 'silent';
    target.fatal('hidden');
    log.level = 'trace';
    target.trace('target trace');
    expect(recs().map((r) => `${String(r.part)}/${String(r.id)} ${String(r.level)} ${String(r.msg)}`)).to.deep.equal([
      'web/undefined 20 web debug',
      'control/undefined 20 control debug',
      'web/t1 20 target debug',
      'control/undefined 40 control warn',
      'web/t1 10 target trace',
    ]);
  });

  it('a child whose own level was set keeps it, and passes it to its own children', () => {
    const { log, recs } = collector('info');
    const web = log.child({ part: 'web' });
    const other = log.child({ part: 'other' });
    web.level = 'debug';
    const ws = web.child({ ws: 1 });
    log.level = 'error';
    web.debug('web debug');
    ws.debug('ws debug');
    other.warn('hidden');
    expect(log.level).to.equal('error');
    expect(ws.level).to.equal('debug');
    expect(recs().map((r) => r.msg)).to.deep.equal(['web debug', 'ws debug']);
  });

  it('a binding or field named msg (or level, time, pid, hostname) never replaces the record\'s own', () => {
    const { log, lines, recs } = collector('info');
    const c = log.child({ msg: 'from binding', level: 'x', serializers: 's' });
    c.info('the message', { msg: 'from field', time: 1, pid: 42, hostname: 'elsewhere', msg_: 'taken' });
    const r = recs()[0];
    expect(r.msg).to.equal('the message');
    expect(r.level).to.equal(30);
    expect(r.pid).to.equal(process.pid);
    expect(r.hostname).to.equal(os.hostname());
    expect(r.time).to.not.equal(1);
    expect(r).to.include({ msg_: 'taken', msg__: 'from field', level_: 'x', serializers_: 's', time_: 1, pid_: 42, hostname_: 'elsewhere' });
    // Exactly one "msg" key in the line, whatever JSON.parse would keep.
    expect(lines[0].match(/"msg":/g)).to.have.length(1);
    expect(lines[0].match(/"level":/g)).to.have.length(1);
  });

  it('a key bound twice appears once, the innermost value winning', () => {
    const { log, lines, recs } = collector('info');
    log.child({ part: 'web' }).child({ part: 'web' }).child({ part: 'ws', id: 1 }).info('x');
    expect(lines[0].match(/"part":/g)).to.have.length(1);
    expect(recs()[0]).to.include({ part: 'ws', id: 1 });
  });

  it('serializes Errors with pino\'s err serializer, code included, under err and any other key', () => {
    const { log, recs } = collector('info');
    const enoent = Object.assign(new Error('no such file'), { code: 'ENOENT', path: '/x' });
    class CodedError extends Error {
      get code() { return 'E_GETTER'; }
    }
    log.warn('a', { err: enoent, other: new CodedError('getter code'), n: 5n, nested: { ok: 1 } });
    log.error('b', { err: 'just a string' });
    const [a, b] = recs();
    expect(a.err).to.include({ type: 'Error', message: 'no such file', code: 'ENOENT', path: '/x' });
    expect((a.err as { stack: string }).stack).to.match(/^Error: no such file\n/);
    expect(a.other).to.include({ type: 'CodedError', message: 'getter code', code: 'E_GETTER' });
    expect(a.n).to.equal('5');
    expect(a.nested).to.deep.equal({ ok: 1 });
    expect(b.err).to.equal('just a string');
  });

  it('keeps the caller\'s fields object untouched and works with unbound methods', () => {
    const { log, recs } = collector('info');
    const fields = { msg: 'f', err: new Error('e'), other: new Error('o') };
    const warn = log.child({ part: 'p' }).warn;
    warn('unbound', fields);
    expect(Object.keys(fields)).to.deep.equal(['msg', 'err', 'other']);
    expect(fields.other).to.be.instanceOf(Error);
    expect(recs()[0]).to.include({ msg: 'unbound', part: 'p', msg_: 'f' });
  });

  it('does not format the message: % sequences stay as written', () => {
    const { log, recs } = collector('info');
    log.info('100%s done %d', { a: 1 });
    expect(recs()[0].msg).to.equal('100%s done %d');
  });

  it('pretty: pino-pretty lines (no colour into a collector), one per record', () => {
    const lines: string[] = [];
    const log: Logger = createLogger({ level: 'info', pretty: true, write: (l) => lines.push(l) }, { name: 'covd' });
    log.child({ part: 'web' }).warn('port busy', { port: 8317 });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^\[\d\d:\d\d:\d\d\.\d\d\d\] WARN \(covd\): port busy \{"part":"web","port":8317\}$/);
    expect(lines[0]).to.not.include('\x1b[');
  });

  it('plainPretty: the built-in line when pino-pretty is not installed', () => {
    const t = new Date(2024, 0, 2, 3, 4, 5, 6).getTime();
    const line = plainPretty(JSON.stringify({ level: 40, time: t, pid: 1, hostname: 'h', part: 'web', port: 8317, err: { message: 'x' }, msg: 'port busy' }) + '\n');
    expect(line).to.equal('03:04:05.006 warn  port busy part=web port=8317 err={"message":"x"}');
    expect(plainPretty('not json\n')).to.equal('not json');
  });

  describe('in a fresh process', function () {
    this.timeout(60_000);
    let dir: string;
    beforeEach(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-log-')); });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('loads pino only when a logger is created', async () => {
      const script = `
        import { createRequire } from 'node:module';
        const cache = createRequire(import.meta.url).cache;
        const loaded = () => Object.keys(cache).some((k) => k.includes('/node_modules/pino/'));
        const { createLogger, isLevel } = await import(${JSON.stringify(logModule)});
        isLevel('info');
        const before = loaded();
        createLogger({ level: 'silent' });
        console.log(JSON.stringify({ before, after: loaded() }));`;
      const r = await execFileP(process.execPath, ['--input-type=module', '-e', script]);
      expect(JSON.parse(r.stdout)).to.deep.equal({ before: false, after: true });
    });

    it('COVD_LOG_FORMAT=pretty falls back to the built-in line when pino-pretty cannot be loaded; JSON lines on stdout otherwise', async () => {
      // Hide pino-pretty from require, as a production install without dev dependencies would.
      const hide = join(dir, 'hide-pino-pretty.cjs');
      fs.writeFileSync(hide, `
        const Module = require('node:module');
        const resolve = Module._resolveFilename;
        Module._resolveFilename = function (request, ...rest) {
          if (request === 'pino-pretty') { const e = new Error("Cannot find module 'pino-pretty'"); e.code = 'MODULE_NOT_FOUND'; throw e; }
          return resolve.call(this, request, ...rest);
        };`);
      const script = `
        const { createLogger } = await import(${JSON.stringify(logModule)});
        const log = createLogger({ level: 'info' }, { name: 'covd' });
        log.child({ part: 'web' }).info('hello', { n: 1 });
        log.debug('hidden');`;
      const pretty = await execFileP(process.execPath, ['--require', hide, '--input-type=module', '-e', script], { env: { ...process.env, COVD_LOG_FORMAT: 'pretty' } });
      expect(pretty.stdout).to.match(/^\d\d:\d\d:\d\d\.\d\d\d info  hello name=covd part=web n=1\n$/);
      const json = await execFileP(process.execPath, ['--require', hide, '--input-type=module', '-e', script], { env: { ...process.env, COVD_LOG_FORMAT: '' } });
      const lines = json.stdout.split('\n');
      expect(lines).to.have.length(2);
      expect(lines[1]).to.equal('');
      expect(JSON.parse(lines[0])).to.include({ level: 30, name: 'covd', part: 'web', n: 1, msg: 'hello' });
    });
  });
});
