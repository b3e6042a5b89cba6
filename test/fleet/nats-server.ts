/** A real nats-server for the fleet's tests and benchmarks: loopback, a free port, JetStream in a temp directory. */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface NatsServer {
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  /** The server's pid while it runs (NaN otherwise). */
  readonly pid: number;
  /** Starts it (again, with the same store and port). */
  start(): Promise<void>;
  /** Stops it (SIGKILL: a crash, unless `graceful`). */
  stop(graceful?: boolean): Promise<void>;
  log(): string;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); r(true); });
      c.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `nats-server -js -sd DIR -a 127.0.0.1 -p PORT [extra]`, started. */
export async function startNats(storeDir: string, extra: string[] = []): Promise<NatsServer> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  let out = '';
  const srv: NatsServer = {
    port,
    url: `nats://127.0.0.1:${port}`,
    get running() { return child !== null; },
    get pid() { return child?.pid ?? NaN; },
    async start() {
      if (child) return;
      const c = spawn('nats-server', ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
      c.stdout!.on('data', (b: Buffer) => { out = (out + b.toString()).slice(-20000); });
      c.stderr!.on('data', (b: Buffer) => { out = (out + b.toString()).slice(-20000); });
      child = c;
      c.once('exit', () => { if (child === c) child = null; });
      await waitForPort(port, 15_000);
    },
    async stop(graceful = false) {
      const c = child;
      if (!c) return;
      child = null;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill(graceful ? 'SIGTERM' : 'SIGKILL');
      await gone;
    },
    log: () => out,
  };
  await srv.start();
  return srv;
}
