/**
 * The agent's repeated announcements: while a real libFuzzer run finds new PCs the agent re-sends
 * its `coverage` frame on one kept-open connection, rate-limited; a missing daemon costs nothing
 * and a restarted one is found again.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { unpack } from 'msgpackr';
import { buildExampleTarget, buildSqliteTarget, findCoverageFile, runFuzzer } from '../helpers/fuzz-targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { CoverageFileError } from '../../src/coverage/types.js';
import { Dispatcher } from '../../src/daemon/dispatch.js';
import { TargetRegistry } from '../../src/daemon/registry.js';
import { createSymbolizerPool } from '../../src/workers/pool.js';
import { createLogger } from '../../src/util/log.js';
import { scratchDirs, until } from '../helpers/scratch.js';

/** A control-socket stand-in: splits frames, answers each like the daemon, counts connections. */
class FrameServer {
  readonly frames: Buffer[] = [];
  connections = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  constructor() {
    this.server = createServer((c) => {
      this.connections++;
      this.sockets.add(c);
      c.on('close', () => this.sockets.delete(c));
      c.on('error', () => {});
      let buf = Buffer.alloc(0);
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
          const n = buf.readUInt32LE(0);
          this.frames.push(Buffer.from(buf.subarray(4, 4 + n)));
          buf = buf.subarray(4 + n);
          // The daemon's reply ({ ok, id, state }); the agent must read and discard these.
          const reply = Buffer.from(JSON.stringify({ ok: true, state: 'ready' }));
          const len = Buffer.alloc(4);
          len.writeUInt32LE(reply.length);
          c.write(Buffer.concat([len, reply]));
        }
      });
    });
  }
  listen(path: string): Promise<void> {
    return new Promise((r) => this.server.listen(path, r));
  }
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

function agentStats(stderr: string): { sent: number; dropped: number; connects: number } {
  const m = /covd-agent: notifications sent=(\d+) dropped=(\d+) connects=(\d+)/.exec(stderr);
  if (!m) throw new Error(`no agent statistics in the fuzzer's output:\n${stderr.slice(-2000)}`);
  return { sent: Number(m[1]), dropped: Number(m[2]), connects: Number(m[3]) };
}

describe('agent notifications on new coverage', function () {
  this.timeout(600_000);
  const tmp = scratchDirs();

  it('re-sends the same coverage frame on one connection while new PCs are found, at most once per interval', async () => {
    const exe = await buildExampleTarget();
    const covdDir = tmp();
    const sock = join(tmp(), 'covd.sock');
    const server = new FrameServer();
    await server.listen(sock);
    const intervalMs = 50;
    try {
      const t0 = Date.now();
      const run = runFuzzer(exe, {
        covdDir, socket: sock, seconds: 3, extraArgs: ['-seed=7'],
        env: { COVD_AGENT_NOTIFY_MS: String(intervalMs), COVD_AGENT_STATS: '1' },
      });
      const { code, stderr } = await run.done;
      const elapsed = Date.now() - t0;
      expect(code, stderr.slice(-2000)).to.equal(0);
      const stats = agentStats(stderr);
      await until(() => server.frames.length >= stats.sent, 'every sent frame');
      // Start-up plus at least one notification for the new PCs found while fuzzing.
      expect(stats.sent).to.be.at.least(2);
      expect(server.frames.length).to.equal(stats.sent);
      expect(server.connections).to.equal(1);
      expect(stats.connects).to.equal(1);
      const file = await findCoverageFile(covdDir);
      const first = unpack(server.frames[0]!) as Record<string, unknown>;
      expect(first).to.include({ type: 'coverage', id: file.split('/').pop(), file, pid: run.child.pid });
      for (const f of server.frames) expect(f.equals(server.frames[0]!)).to.equal(true);
      // Bounded rate: one frame at start, then at most one per interval (the coarse clock may
      // run a few ms short), and never more than one per input that found new PCs.
      expect(server.frames.length).to.be.at.most(1 + Math.ceil(elapsed / (intervalMs - 5)));
      const unique = Number(readCoverageFile(file).header.uniqueRuns);
      expect(server.frames.length).to.be.at.most(1 + unique);
    } finally {
      await server.close();
    }
  });

  it('fuzzes on when no daemon listens, never connecting', async () => {
    const exe = await buildExampleTarget();
    const covdDir = tmp();
    const run = runFuzzer(exe, { covdDir, socket: join(tmp(), 'absent.sock'), runs: 200_000, env: { COVD_AGENT_STATS: '1' } });
    const { code, stderr } = await run.done;
    expect(code, stderr.slice(-2000)).to.equal(0);
    expect(agentStats(stderr)).to.include({ sent: 0, connects: 0 });
    expect(readCoverageFile(await findCoverageFile(covdDir)).header.nRuns).to.equal(200_000n);
  });

  it('finds a restarted daemon again on a later notification (sqlite target)', async () => {
    const exe = await buildSqliteTarget();
    const covdDir = tmp();
    const sock = join(tmp(), 'covd.sock');
    const a = new FrameServer();
    await a.listen(sock);
    const run = runFuzzer(exe, { covdDir, socket: sock, extraArgs: ['-seed=5'] });
    try {
      await until(() => a.frames.length >= 2, 'a start-up frame and a notification');
      await a.close(); // the daemon goes away (its socket file too)
      // Notifications meanwhile find no socket: the agent backs off between connect attempts.
      await new Promise((r) => setTimeout(r, 1000));
      const b = new FrameServer();
      await b.listen(sock);
      try {
        // sqlite keeps finding new PCs for minutes; the agent reconnects (after its backoff).
        await until(() => b.frames.length >= 2, 'frames to the restarted daemon');
        expect(b.connections).to.equal(1);
        expect((unpack(b.frames[0]!) as { type: string }).type).to.equal('coverage');
        expect(b.frames[1]!.equals(a.frames[0]!)).to.equal(true);
      } finally {
        await b.close();
      }
    } finally {
      await run.stop(); // libFuzzer exits with _Exit on a signal: no statistics line here
    }
  });

  it('a failed target is not retried on every repeat from the same process, but is for a new one', async () => {
    const dir = tmp();
    const file = join(dir, '0123456789abcdef');
    writeFileSync(file, Buffer.alloc(100));
    let reads = 0;
    const pool = createSymbolizerPool({ threads: 1 });
    const reg = new TargetRegistry();
    const disp = new Dispatcher({
      registry: reg, symbolizer: pool, toThread: () => {}, log: createLogger({ level: 'silent' }),
      readPcs: async () => { reads++; throw new CoverageFileError('BAD_SIZE', 'not a coverage file', false); },
    });
    try {
      const m = { type: 'coverage' as const, id: '0123456789abcdef', exe: '/bin/true', file, pid: 4242 };
      expect((await disp.announce(m)).state).to.equal('failed');
      expect(reads).to.equal(1);
      for (let i = 0; i < 20; i++) expect((await disp.announce(m)).state).to.equal('failed');
      expect(reads).to.equal(1);
      await disp.announce({ ...m, pid: 4243 }); // a new process: worth another try
      expect(reads).to.equal(2);
      writeFileSync(file, Buffer.alloc(200)); // the file changed under the same process
      await disp.announce({ ...m, pid: 4243 });
      expect(reads).to.equal(3);
      const { pid: _pid, ...noPid } = m; // `covd add` (no pid) always retries
      await disp.announce(noPid);
      expect(reads).to.equal(4);
    } finally {
      await disp.idle();
      await pool.destroy();
    }
  });
});
