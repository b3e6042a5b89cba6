/**
 * Fan-out benchmark: one coverage update published to many tabs of one big target.
 *
 * Two servers do the same work on the same daemon registry (src/daemon/registry.ts) with a
 * synthetic 1,000,000-PC target: covd's web server on uWebSockets.js (topics: one publish per
 * update, from C++), and a comparable server on the `ws` package (the same msgpack encoding once
 * per update, the same backpressure check, then ws.send per tab). Each runs in its own process;
 * the tabs (raw WebSocket clients that parse frame headers and count delta frames) in another.
 *
 * A round: the server applies B updates (one per event-loop turn), each with K newly seen PCs; the
 * round ends when every tab has received all B frames. We report updates/s end to end and the
 * server process's CPU time per update.
 *
 * In paced mode a third server gives the floor: bench/fanout-floor.c, built here with the system's C
 * compiler, sends the same frames (the exact bytes the other two send for the same updates, encoded
 * beforehand) to the same tab process, one send(2) per tab per update and nothing else. ws CPU over
 * floor CPU bounds the ratio any server can reach against ws on this machine.
 *
 *   node dist/bench/fanout.js [--tabs 1000] [--pcs 1000000] [--rounds 10] [--burst 20] [--sizes 16,1000] [--no-floor]
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Packr, Unpackr } from 'msgpackr';
import { WebSocketServer, type WebSocket } from 'ws';
import { TargetRegistry } from '../src/daemon/registry.js';
import type { CoverageDelta } from '../src/contracts/hub.js';
import { startWebServer } from '../src/web/server.js';
import { packrOptions } from '../src/contracts/msgpack.js';
import type { ServerMessage } from '../src/web/protocol.js';
import { encodeWords, sparseFirstSeen } from '../src/web/wire.js';
import { infoOf } from '../src/web/summary.js';
import { createLogger } from '../src/util/log.js';
import { median, repoRoot, table, writeResults } from './lib/results.js';

const ID = '00000000000b3e4c';
const BUILD_ID = 'bench-build-id';

// ---------------------------------------------------------------- the target (both servers)

function makeRegistry(pcsLen: number): { registry: TargetRegistry; publish: (k: number) => void } {
  const registry = new TargetRegistry();
  registry.add({ id: ID, exe: '/bench/fuzz_big', coverageFile: '/bench/v/' + ID, pcsLen, buildId: BUILD_ID });
  const files = 2000, fns = 50_000;
  const pcFile = new Uint32Array(pcsLen), pcLine = new Uint32Array(pcsLen), pcColumn = new Uint32Array(pcsLen), pcFunction = new Uint32Array(pcsLen);
  for (let i = 0; i < pcsLen; i++) {
    pcFunction[i] = Math.floor((i / pcsLen) * fns);
    pcFile[i] = Math.floor((pcFunction[i]! / fns) * files);
    pcLine[i] = 1 + (i % 5000);
    pcColumn[i] = 1 + (i % 40);
  }
  registry.setIndex(ID, {
    buildId: BUILD_ID,
    directories: ['/src'],
    files: Array.from({ length: files }, (_, i) => `f${i}.c`),
    fileDirs: new Uint32Array(files),
    functions: { names: Array.from({ length: fns }, (_, i) => `fn${i}`), file: Uint32Array.from({ length: fns }, (_, i) => Math.floor((i / fns) * files)), line: new Uint32Array(fns).fill(1) },
    pcFile, pcLine, pcColumn, pcFunction,
  });
  // A stride walk through the PCs gives every update PCs never seen before, spread over the target.
  let cursor = 0, runs = 0;
  const stride = 7919;
  const next = () => (cursor++ * stride) % pcsLen;
  const initial = new Uint32Array(Math.floor(pcsLen / 100)).map(next);
  registry.applyTick(ID, { newPcs: initial, nRuns: 1, uniqueRuns: 1, lowestStack: null, time: Date.now() });
  const publish = (k: number) => {
    runs += 12345;
    registry.applyTick(ID, { newPcs: new Uint32Array(k).map(next), nRuns: runs, uniqueRuns: cursor, lowestStack: null, time: Date.now() });
  };
  return { registry, publish };
}

// ---------------------------------------------------------------- the ws-based peer server

/** The same protocol and work on `ws`: encode once per update, check backpressure, send to each tab. */
async function startWsServer(registry: TargetRegistry): Promise<number> {
  const packr = new Packr(packrOptions);
  const unpackr = new Unpackr(packrOptions);
  const bound = 1024 * 1024;
  const subs = new Map<WebSocket, { words: boolean; stale: boolean }>();
  let snap: { seq: number; bytes: Buffer } | undefined;
  const snapshot = () => {
    const t = registry.target(ID)!;
    if (snap?.seq !== t.seq) {
      const msg: ServerMessage = { t: 'snapshot', id: ID, seq: t.seq, info: infoOf(t), seen: t.seen, firstSeen: sparseFirstSeen(t.seen, t.firstSeen, t.stats.pcsLen), history: registry.history(ID), sparse: true };
      snap = { seq: t.seq, bytes: packr.pack(msg) };
    }
    return snap.bytes;
  };
  registry.on('delta', (d: CoverageDelta) => {
    const base: ServerMessage = { t: 'delta', id: d.id, seq: d.seq, time: d.time, pcs: d.newPcs, stats: d.stats };
    const pcs = packr.pack(base);
    const words = encodeWords(d.newPcs);
    const wordsBytes = words && words.length < d.newPcs.length ? packr.pack({ ...base, pcs: new Uint32Array(0), words }) : pcs;
    for (const [ws, s] of subs) {
      if (s.stale) continue;
      if (ws.bufferedAmount > bound) { s.stale = true; continue; }
      ws.send(s.words ? wordsBytes : pcs, { binary: true, compress: false });
    }
  });
  const http = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 4096, perMessageDeflate: false });
  wss.on('connection', (ws: WebSocket, _req: IncomingMessage) => {
    ws.send(packr.pack({ t: 'hello', version: 1, server: 'ws-peer' } satisfies ServerMessage));
    ws.on('message', (data: Buffer) => {
      const m = unpackr.unpack(data) as { t: string; words?: boolean };
      if (m.t !== 'sub') return;
      subs.set(ws, { words: m.words === true, stale: false });
      ws.send(snapshot());
    });
    ws.on('close', () => subs.delete(ws));
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  return (http.address() as { port: number }).port;
}

// ---------------------------------------------------------------- the floor (C, one send per tab)

/** A complete unmasked binary WebSocket frame around `payload`. */
function wsFrame(payload: Uint8Array): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x82, n]) : n < 65536 ? Buffer.from([0x82, 126, n >> 8, n & 0xff]) : Buffer.concat([Buffer.from([0x82, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
  return Buffer.concat([head, payload]);
}

/**
 * The frames the other servers send to these tabs (`sub` with `words`), for the first `count`
 * updates of a fresh target: the same registry, the same updates, the same encoding as the ws
 * peer's `wordsBytes`, written one after the other as WebSocket frames for the floor to send.
 */
async function framesRole(pcs: number, k: number, count: number, out: string) {
  const { registry, publish } = makeRegistry(pcs);
  const packr = new Packr(packrOptions);
  const frames: Buffer[] = [];
  registry.on('delta', (d: CoverageDelta) => {
    const base: ServerMessage = { t: 'delta', id: d.id, seq: d.seq, time: d.time, pcs: d.newPcs, stats: d.stats };
    const pcsBytes = packr.pack(base);
    const words = encodeWords(d.newPcs);
    frames.push(wsFrame(words && words.length < d.newPcs.length ? packr.pack({ ...base, pcs: new Uint32Array(0), words }) : pcsBytes));
  });
  for (let i = 0; i < count; i++) publish(k);
  writeFileSync(out, Buffer.concat(frames));
  process.send!({ frames: { count: frames.length, bytes: frames.reduce((a, f) => a + f.length, 0) } });
}

/** Compiles bench/fanout-floor.c into build/fanout-bench/ (once per source version). Throws with the reason. */
function buildFloor(): string {
  const src = join(repoRoot, 'bench', 'fanout-floor.c');
  if (!existsSync(src)) throw new Error(`${src.slice(repoRoot.length)} is missing`);
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  const dir = join(repoRoot, 'build', 'fanout-bench');
  const bin = join(dir, `fanout-floor-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const compilers = [...(process.env['CC'] ? [process.env['CC']] : []), 'gcc', 'clang-14', 'clang', 'cc'];
  const tried: string[] = [];
  for (const cc of compilers) {
    const tmp = `${bin}.${process.pid}.tmp`;
    try {
      execFileSync(cc, ['-O2', '-std=c11', '-Wall', '-o', tmp, src], { stdio: ['ignore', 'ignore', 'pipe'] });
      renameSync(tmp, bin);
      return bin;
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code === 'ENOENT') { tried.push(`${cc} (not found)`); continue; }
      tried.push(`${cc} (failed: ${e.stderr?.toString().trim().split('\n').slice(0, 3).join(' / ') ?? e.message})`);
      rmSync(tmp, { force: true });
    }
  }
  throw new Error(`no C compiler could build bench/fanout-floor.c; tried ${tried.join(', ')}. Install gcc (or set CC), or pass --no-floor`);
}

// ---------------------------------------------------------------- roles

type Msg = { cmd: 'burst'; n: number; k: number; sameTurn: boolean } | { cmd: 'cpu' } | { cmd: 'connect'; port: number; tabs: number } | { cmd: 'expect'; n: number } | { cmd: 'exit' };

async function serverRole(kind: 'uws' | 'ws', pcs: number) {
  const { registry, publish } = makeRegistry(pcs);
  let port: number;
  if (kind === 'uws') {
    const srv = await startWebServer({
      hub: registry, host: '127.0.0.1', port: 0, log: createLogger({ level: 'warn' }),
      limits: { maxConnectionsPerAddress: 100_000, maxConnections: 100_000, httpRate: 1e9 },
    });
    port = srv.port;
  } else {
    port = await startWsServer(registry);
  }
  process.on('message', (m: Msg) => {
    if (m.cmd === 'burst' && m.sameTurn) {
      for (let i = 0; i < m.n; i++) publish(m.k);
      process.send!({ burstDone: true });
    } else if (m.cmd === 'burst') {
      let left = m.n;
      const step = () => {
        publish(m.k);
        if (--left > 0) setImmediate(step);
        else process.send!({ burstDone: true });
      };
      step();
    } else if (m.cmd === 'cpu') {
      const u = process.cpuUsage();
      process.send!({ cpu: { user: u.user / 1000, sys: u.system / 1000 } });
    } else if (m.cmd === 'exit') process.exit(0);
  });
  process.send!({ port });
}

/** Tabs as raw sockets: the handshake, a masked `sub` frame, then frame headers counted (payloads skipped). */
async function clientRole() {
  const packr = new Packr(packrOptions);
  let socks: { s: Socket; frames: number }[] = [];
  let target = 0;
  let waiting = false;
  let done = 0;
  let rx = 0; // bytes received after the handshakes, every tab
  const check = () => {
    if (waiting && done === socks.length) {
      waiting = false;
      process.send!({ reached: { target, rx } });
    }
  };
  const open = (port: number): Promise<{ s: Socket; frames: number }> =>
    new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      const st = { s, frames: 0 };
      let head = true;
      let buf: Buffer = Buffer.alloc(0);
      let skip = 0; // payload bytes still to skip
      const h = Buffer.alloc(10);
      let hl = 0, need = 2;
      s.on('error', reject);
      s.on('connect', () => s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
      s.on('data', (chunk: Buffer) => {
        let c = chunk;
        if (head) {
          buf = Buffer.concat([buf, c]);
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          if (!buf.subarray(0, 12).toString().includes('101')) return reject(new Error(buf.subarray(0, end).toString()));
          head = false;
          c = buf.subarray(end + 4);
          buf = Buffer.alloc(0);
          const payload = packr.pack({ t: 'sub', id: ID, have: BUILD_ID, words: true, sparse: true });
          const mask = randomBytes(4);
          const frame = Buffer.concat([Buffer.from([0x82, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i & 3]!)]);
          s.write(frame);
          resolve(st);
        }
        // Frame parsing: header bytes are collected one by one (at most 10), payloads skipped.
        rx += c.length;
        let off = 0;
        while (off < c.length) {
          if (skip > 0) {
            const n = Math.min(skip, c.length - off);
            skip -= n;
            off += n;
            continue;
          }
          h[hl++] = c[off++]!;
          if (hl === 2) need = (h[1]! & 0x7f) < 126 ? 2 : (h[1]! & 0x7f) === 126 ? 4 : 10;
          if (hl < 2 || hl < need) continue;
          const l7 = h[1]! & 0x7f;
          skip = l7 < 126 ? l7 : l7 === 126 ? h.readUInt16BE(2) : Number(h.readBigUInt64BE(2));
          hl = 0;
          if ((h[0]! & 0x0f) === 2) {
            st.frames++;
            if (st.frames === target) { done++; check(); }
          }
        }
      });
    });
  process.on('message', async (m: Msg) => {
    if (m.cmd === 'connect') {
      for (let i = 0; i < m.tabs; i += 50) socks.push(...(await Promise.all(Array.from({ length: Math.min(50, m.tabs - i) }, () => open(m.port)))));
      // hello + snapshot
      target = 2;
      done = socks.filter((x) => x.frames >= target).length;
      waiting = true;
      check();
    } else if (m.cmd === 'expect') {
      target += m.n;
      done = socks.filter((x) => x.frames >= target).length;
      waiting = true;
      check();
    } else if (m.cmd === 'exit') {
      for (const x of socks) x.s.destroy();
      socks = [];
      process.exit(0);
    }
  });
  process.send!({ ready: true });
}

// ---------------------------------------------------------------- driver

function child(args: string[]): ChildProcess {
  return fork(fileURLToPath(import.meta.url), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function next<T>(c: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`child exited (${code}) while waiting for ${key}`));
    const on = (m: Record<string, unknown>) => {
      if (key in m) {
        c.off('message', on);
        c.off('exit', onExit);
        resolve(m[key] as T);
      }
    };
    c.on('message', on);
    c.once('exit', onExit);
  });
}

type Mode = 'paced' | 'batched';
type Kind = 'uws' | 'ws' | 'floor';
type Opts = { tabs: number; pcs: number; rounds: number; burst: number; k: number; mode: Mode };

/** What the driver needs of a server process, whichever kind it is. */
interface ServerHandle {
  port: number;
  burst(n: number, k: number, sameTurn: boolean): void;
  cpu(): Promise<{ user: number; sys: number }>;
  exit(): Promise<void>;
  /** The floor only: bare syscall cost (ns) and sends that did not go out whole. */
  extra?(): Promise<Record<string, number>>;
}

async function nodeServer(kind: 'uws' | 'ws', pcs: number): Promise<ServerHandle> {
  const server = child(['--role', `server-${kind}`, '--pcs', String(pcs)]);
  const port = await next<number>(server, 'port');
  return {
    port,
    burst: (n, k, sameTurn) => server.send({ cmd: 'burst', n, k, sameTurn } satisfies Msg),
    cpu: () => { const p = next<{ user: number; sys: number }>(server, 'cpu'); server.send({ cmd: 'cpu' } satisfies Msg); return p; },
    exit: () => { const p = new Promise<void>((r) => server.once('exit', () => r())); server.send({ cmd: 'exit' } satisfies Msg); return p; },
  };
}

/** The C floor on the frames of `opts` (encoded beforehand by a child process, the same bytes as the other servers'). */
async function floorServer(bin: string, opts: Opts): Promise<ServerHandle & { frameBytes: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'covd-fanout-'));
  const file = join(dir, 'frames');
  const gen = child(['--role', 'frames', '--pcs', String(opts.pcs), '--k', String(opts.k), '--count', String((opts.rounds + 1) * opts.burst), '--out', file]);
  const info = await next<{ count: number; bytes: number }>(gen, 'frames');
  await new Promise((r) => (gen.exitCode !== null ? r(null) : gen.once('exit', r)));
  const p = spawn(bin, [file], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiters: { prefix: string; resolve: (words: string[]) => void }[] = [];
  let stalls = 0;
  createInterface({ input: p.stdout! }).on('line', (line) => {
    const words = line.trim().split(/\s+/);
    if (words[0] === 'done') { stalls += Number(words[2]); return; }
    const i = waiters.findIndex((w) => w.prefix === words[0]);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(words.slice(1));
    else console.error(`fanout-floor: ${line}`);
  });
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  const ask = (prefix: string, cmd?: string) => new Promise<string[]>((resolve, reject) => {
    waiters.push({ prefix, resolve });
    exited.then(() => reject(new Error(`fanout-floor exited while waiting for '${prefix}'`)), () => {});
    if (cmd) p.stdin!.write(cmd + '\n');
  });
  const port = Number((await ask('port'))[0]);
  return {
    port,
    frameBytes: info.bytes / info.count,
    burst: (n, _k, sameTurn) => {
      if (sameTurn) throw new Error('the floor measures paced updates only');
      p.stdin!.write(`burst ${n}\n`);
    },
    cpu: async () => { const [u, s] = await ask('cpu', 'cpu'); return { user: Number(u) / 1000, sys: Number(s) / 1000 }; },
    extra: async () => ({ nullSyscallNs: Number((await ask('null', 'null 200000'))[0]), stalls }),
    exit: async () => { p.stdin!.write('exit\n'); await exited; rmSync(dir, { recursive: true, force: true }); },
  };
}

async function measure(kind: Kind, opts: Opts, floorBin?: string) {
  const server = kind === 'floor' ? await floorServer(floorBin!, opts) : await nodeServer(kind, opts.pcs);
  const client = child(['--role', 'client']);
  await next(client, 'ready');
  const reached = () => next<{ target: number; rx: number }>(client, 'reached');
  let r = reached();
  client.send({ cmd: 'connect', port: server.port, tabs: opts.tabs } satisfies Msg);
  let rx0 = (await r).rx;
  // CPU accounting is coarse (scheduler ticks), so totals over all measured rounds are divided out.
  const rates: number[] = [];
  let totalMs = 0, totalCpu = 0, totalUser = 0, totalRx = 0, updates = 0;
  for (let round = 0; round <= opts.rounds; round++) {
    r = reached();
    client.send({ cmd: 'expect', n: opts.burst } satisfies Msg);
    const c0 = await server.cpu();
    const t0 = process.hrtime.bigint();
    server.burst(opts.burst, opts.k, opts.mode === 'batched');
    const got = await r;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const c1 = await server.cpu();
    const rx = got.rx - rx0;
    rx0 = got.rx;
    if (round === 0) continue; // warm-up
    rates.push((opts.burst * 1000) / ms);
    totalMs += ms;
    totalCpu += c1.user + c1.sys - c0.user - c0.sys;
    totalUser += c1.user - c0.user;
    totalRx += rx;
    updates += opts.burst;
  }
  const extra = server.extra ? await server.extra() : undefined;
  client.send({ cmd: 'exit' } satisfies Msg);
  await Promise.all([server.exit(), new Promise((r2) => client.once('exit', r2))]);
  return {
    updatesPerSec: (updates * 1000) / totalMs, medianRoundUpdatesPerSec: median(rates),
    cpuUsPerUpdate: (totalCpu * 1000) / updates, userCpuUsPerUpdate: (totalUser * 1000) / updates, sysCpuUsPerUpdate: ((totalCpu - totalUser) * 1000) / updates,
    bytesPerTabPerUpdate: totalRx / updates / opts.tabs, rates, ...(extra ? { floor: extra } : {}),
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      tabs: { type: 'string', default: '1000' },
      pcs: { type: 'string', default: '1000000' },
      rounds: { type: 'string', default: '10' },
      burst: { type: 'string', default: '20' },
      sizes: { type: 'string', default: '16,1000' },
      modes: { type: 'string', default: 'paced,batched' },
      'no-floor': { type: 'boolean' },
      k: { type: 'string' }, count: { type: 'string' }, out: { type: 'string' }, // the frames role
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(`usage: node dist/bench/fanout.js [--tabs N] [--pcs N] [--rounds N] [--burst N] [--sizes K1,K2] [--modes paced,batched] [--no-floor]

  paced:   one update per event-loop turn (one target ticking): every update is its own write per tab
  batched: a round's updates arrive in one turn (many targets ticking at once, or a backlog)
  floor:   in paced mode, a C server (bench/fanout-floor.c, built with gcc, clang-14, clang or cc; $CC
           first if set) sending the same frames to the same tabs, one send(2) per tab per update and
           nothing else; --no-floor skips it`);
    return;
  }
  const pcs = Number(values.pcs);
  if (values.role === 'server-uws') return serverRole('uws', pcs);
  if (values.role === 'server-ws') return serverRole('ws', pcs);
  if (values.role === 'client') return clientRole();
  if (values.role === 'frames') return framesRole(pcs, Number(values.k), Number(values.count), values.out!);

  const tabs = Number(values.tabs), rounds = Number(values.rounds), burst = Number(values.burst);
  const modes = values.modes!.split(',') as Mode[];
  let floorBin: string | undefined;
  let floorNote = values['no-floor'] ? 'floor: not measured (--no-floor)' : modes.includes('paced') ? '' : 'floor: not measured (paced mode only)';
  if (!floorNote) {
    try {
      floorBin = buildFloor();
    } catch (err) {
      floorNote = `floor: not measured: ${(err as Error).message}`;
      console.error(`fanout: ${floorNote}`);
    }
  }
  const rows: (string | number)[][] = [['mode', 'new PCs per update', 'server', 'bytes per tab per update', 'updates/s', 'server CPU µs/update', 'user', 'sys', 'uWS/ws throughput', 'ws/uWS CPU', 'ws/uWS user CPU', 'ws/floor CPU (ceiling)']];
  const results: Record<string, unknown>[] = [];
  const verdicts: string[] = [];
  type M = Awaited<ReturnType<typeof measure>>;
  const row = (mode: Mode, k: number, name: string, m: M, rest: (string | number)[]) => [mode, k, name, m.bytesPerTabPerUpdate, m.updatesPerSec, m.cpuUsPerUpdate, m.userCpuUsPerUpdate, m.sysCpuUsPerUpdate, ...rest];
  for (const mode of modes) {
    for (const k of values.sizes!.split(',').map(Number)) {
      const opts = { tabs, pcs, rounds, burst, k, mode };
      const u = await measure('uws', opts);
      const w = await measure('ws', opts);
      const f = floorBin && mode === 'paced' ? await measure('floor', opts, floorBin) : undefined;
      const ceiling = f ? w.cpuUsPerUpdate / f.cpuUsPerUpdate : undefined;
      rows.push(row(mode, k, 'uWebSockets.js (covd)', u, [u.updatesPerSec / w.updatesPerSec, w.cpuUsPerUpdate / u.cpuUsPerUpdate, w.userCpuUsPerUpdate / u.userCpuUsPerUpdate, '']));
      rows.push(row(mode, k, 'ws', w, ['', '', '', '']));
      if (f) rows.push(row(mode, k, 'floor (C, one send per tab)', f, ['', '', '', ceiling!]));
      results.push({
        mode, newPcsPerUpdate: k, uws: u, ws: w, throughputRatio: u.updatesPerSec / w.updatesPerSec, cpuRatio: w.cpuUsPerUpdate / u.cpuUsPerUpdate, userCpuRatio: w.userCpuUsPerUpdate / u.userCpuUsPerUpdate,
        ...(f ? { floor: f, ceiling, uwsShareOfCeiling: w.cpuUsPerUpdate / u.cpuUsPerUpdate / ceiling! } : {}),
      });
      if (f && ceiling !== undefined) {
        const fl = f.floor as { nullSyscallNs: number; stalls: number };
        const diff = u.cpuUsPerUpdate - f.cpuUsPerUpdate;
        verdicts.push(`${mode}, ${k} new PCs: floor ${f.cpuUsPerUpdate.toFixed(0)} µs/update (${f.sysCpuUsPerUpdate.toFixed(0)} sys; ${(f.cpuUsPerUpdate / tabs).toFixed(1)} µs per send), ws ${w.cpuUsPerUpdate.toFixed(0)}: ` +
          `no server can use more than ${ceiling.toFixed(2)}x less CPU than ws here (goal 5x: ${ceiling >= 5 ? 'within reach' : '**out of reach**'}); ` +
          `uWS ${(w.cpuUsPerUpdate / u.cpuUsPerUpdate).toFixed(2)}x, ${diff >= 0 ? '+' : '−'}${Math.abs(diff).toFixed(0)} µs/update against the floor. ` +
          `A bare syscall ${fl.nullSyscallNs.toFixed(0)} ns (x ${tabs} tabs: ${((fl.nullSyscallNs * tabs) / 1000).toFixed(0)} µs/update of syscall entry and exit); ${fl.stalls} short sends.`);
      }
    }
  }
  console.log(`\nfan-out: ${tabs} tabs, ${pcs} PCs, ${rounds} rounds of ${burst} updates (after one warm-up round)\n`);
  console.log(table(rows));
  if (verdicts.length) console.log('\n' + verdicts.map((v) => `- ${v}`).join('\n'));
  if (floorNote) console.log(`\n${floorNote}`);
  const file = writeResults('fanout', { tabs, pcs, rounds, burst, results, ...(floorNote ? { floorNote } : {}) });
  console.log(`\nwrote ${file}`);
}

await main();
