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
 *   node dist/bench/fanout.js [--tabs 1000] [--pcs 1000000] [--rounds 10] [--burst 20] [--sizes 16,1000]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Packr, Unpackr } from 'msgpackr';
import { WebSocketServer, type WebSocket } from 'ws';
import { TargetRegistry } from '../src/daemon/registry.js';
import type { CoverageDelta } from '../src/daemon/hub.js';
import { startWebServer } from '../src/web/server.js';
import { packrOptions, type ServerMessage } from '../src/web/protocol.js';
import { encodeWords, sparseFirstSeen } from '../src/web/live.js';
import { infoOf } from '../src/web/summary.js';
import { createLogger } from '../src/util/log.js';
import { median, table, writeResults } from './lib/results.js';

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
  const check = () => {
    if (waiting && done === socks.length) {
      waiting = false;
      process.send!({ reached: target });
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

async function measure(kind: 'uws' | 'ws', opts: { tabs: number; pcs: number; rounds: number; burst: number; k: number; mode: Mode }) {
  const server = child(['--role', `server-${kind}`, '--pcs', String(opts.pcs)]);
  const port = await next<number>(server, 'port');
  const client = child(['--role', 'client']);
  await next(client, 'ready');
  const reached = () => next<number>(client, 'reached');
  let r = reached();
  client.send({ cmd: 'connect', port, tabs: opts.tabs } satisfies Msg);
  await r;
  const cpu = async () => { const p = next<{ user: number; sys: number }>(server, 'cpu'); server.send({ cmd: 'cpu' } satisfies Msg); return p; };
  // CPU accounting is coarse (scheduler ticks), so totals over all measured rounds are divided out.
  const rates: number[] = [];
  let totalMs = 0, totalCpu = 0, totalUser = 0, updates = 0;
  for (let round = 0; round <= opts.rounds; round++) {
    r = reached();
    client.send({ cmd: 'expect', n: opts.burst } satisfies Msg);
    const c0 = await cpu();
    const t0 = process.hrtime.bigint();
    server.send({ cmd: 'burst', n: opts.burst, k: opts.k, sameTurn: opts.mode === 'batched' } satisfies Msg);
    await r;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const c1 = await cpu();
    if (round === 0) continue; // warm-up
    rates.push((opts.burst * 1000) / ms);
    totalMs += ms;
    totalCpu += c1.user + c1.sys - c0.user - c0.sys;
    totalUser += c1.user - c0.user;
    updates += opts.burst;
  }
  server.send({ cmd: 'exit' } satisfies Msg);
  client.send({ cmd: 'exit' } satisfies Msg);
  await Promise.all([new Promise((r2) => server.once('exit', r2)), new Promise((r2) => client.once('exit', r2))]);
  return { updatesPerSec: (updates * 1000) / totalMs, medianRoundUpdatesPerSec: median(rates), cpuUsPerUpdate: (totalCpu * 1000) / updates, userCpuUsPerUpdate: (totalUser * 1000) / updates, rates };
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(`usage: node dist/bench/fanout.js [--tabs N] [--pcs N] [--rounds N] [--burst N] [--sizes K1,K2] [--modes paced,batched]

  paced:   one update per event-loop turn (one target ticking): every update is its own write per tab
  batched: a round's updates arrive in one turn (many targets ticking at once, or a backlog)`);
    return;
  }
  const pcs = Number(values.pcs);
  if (values.role === 'server-uws') return serverRole('uws', pcs);
  if (values.role === 'server-ws') return serverRole('ws', pcs);
  if (values.role === 'client') return clientRole();

  const tabs = Number(values.tabs), rounds = Number(values.rounds), burst = Number(values.burst);
  const rows: (string | number)[][] = [['mode', 'new PCs per update', 'server', 'updates/s', 'server CPU µs/update', 'of which user', 'uWS/ws throughput', 'ws/uWS CPU', 'ws/uWS user CPU']];
  const results: Record<string, unknown>[] = [];
  for (const mode of values.modes!.split(',') as Mode[]) {
    for (const k of values.sizes!.split(',').map(Number)) {
      const opts = { tabs, pcs, rounds, burst, k, mode };
      const u = await measure('uws', opts);
      const w = await measure('ws', opts);
      rows.push([mode, k, 'uWebSockets.js (covd)', u.updatesPerSec, u.cpuUsPerUpdate, u.userCpuUsPerUpdate, u.updatesPerSec / w.updatesPerSec, w.cpuUsPerUpdate / u.cpuUsPerUpdate, w.userCpuUsPerUpdate / u.userCpuUsPerUpdate]);
      rows.push([mode, k, 'ws', w.updatesPerSec, w.cpuUsPerUpdate, w.userCpuUsPerUpdate, '', '', '']);
      results.push({ mode, newPcsPerUpdate: k, uws: u, ws: w, throughputRatio: u.updatesPerSec / w.updatesPerSec, cpuRatio: w.cpuUsPerUpdate / u.cpuUsPerUpdate, userCpuRatio: w.userCpuUsPerUpdate / u.userCpuUsPerUpdate });
    }
  }
  console.log(`\nfan-out: ${tabs} tabs, ${pcs} PCs, ${rounds} rounds of ${burst} updates (after one warm-up round)\n`);
  console.log(table(rows));
  const file = writeResults('fanout', { tabs, pcs, rounds, burst, results });
  console.log(`\nwrote ${file}`);
}

await main();
