/**
 * A coverage producer that marks PCs the way the agent does (set the seen bit in the shared file,
 * then count a run), with an optional notification to the daemon after each new PC: a `coverage`
 * frame on one persistent control-socket connection, which wakes the daemon's coverage thread
 * at once instead of at its next 500 ms tick.
 */
import net from 'node:net';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { encodeFrame } from '../../src/bus/framing.js';
import type { CoverageMessage } from '../../src/bus/messages.js';

export class Producer {
  private readonly fd: number;
  private readonly bitsOffset: number;
  private runs = 1n;
  private sock: net.Socket | null = null;
  private readonly one = Buffer.alloc(1);
  private readonly header = Buffer.alloc(8);

  constructor(readonly file: string, readonly pcsLen: number, private readonly announce?: { socket: string; msg: CoverageMessage }) {
    this.fd = openSync(file, 'r+');
    this.bitsOffset = 32 + 8 * pcsLen;
    const h = Buffer.alloc(8);
    readSync(this.fd, h, 0, 8, 0);
    this.runs = h.readBigUInt64LE(0);
  }

  async connect(): Promise<void> {
    if (!this.announce) return;
    const s = net.connect(this.announce.socket);
    await new Promise<void>((res, rej) => { s.once('connect', () => res()); s.once('error', rej); });
    s.on('data', () => {}); // replies are not needed
    s.on('error', () => {});
    this.sock = s;
  }

  /** Sets PC i's seen bit and counts one run (and notifies, when configured). */
  mark(i: number): void {
    const pos = this.bitsOffset + (i >>> 3);
    readSync(this.fd, this.one, 0, 1, pos);
    this.one[0]! |= 1 << (i & 7);
    writeSync(this.fd, this.one, 0, 1, pos);
    this.countRun();
    if (this.sock) this.sock.write(encodeFrame(this.announce!.msg));
  }

  countRun(): void {
    this.runs++;
    this.header.writeBigUInt64LE(this.runs, 0);
    writeSync(this.fd, this.header, 0, 8, 0);
  }

  close(): void {
    this.sock?.destroy();
    closeSync(this.fd);
  }
}
