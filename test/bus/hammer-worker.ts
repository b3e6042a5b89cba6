/** Worker for queue.test.ts: produces or consumes on a SharedQueue passed in workerData. */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedQueue } from '../../src/bus/queue.js';

interface Job { role: 'produce' | 'consume'; buffer: SharedArrayBuffer; producer?: number; count?: number; slowMs?: number }
const job = workerData as Job;
const q = SharedQueue.attach<{ p: number; i: number; pad: string }>(job.buffer);

if (job.role === 'produce') {
  for (let i = 0; i < job.count!; i++) {
    // Blocks while the ring is full; a big-ish variable pad makes records wrap and vary.
    q.post({ p: job.producer!, i, pad: 'x'.repeat(i % 97) });
  }
  parentPort!.postMessage({ done: true });
} else {
  const got: number[] = [];
  for (;;) {
    const msgs = q.take(200);
    for (const m of msgs) got.push(m.p * 1_000_000 + m.i);
    if (msgs.length === 0 && q.closed) break;
    if (job.slowMs) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, job.slowMs);
  }
  parentPort!.postMessage({ got });
}
