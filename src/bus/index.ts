/**
 * The daemon's bus: a SharedQueue (src/bus/queue.ts, protocol and memory layout documented
 * there) carrying BusMessages (src/bus/messages.ts) from the main thread to the coverage thread.
 * Control-socket frames (u32 LE length + msgpack) are in src/bus/framing.ts.
 */
import { SharedQueue } from './queue.js';
import type { BusMessage } from './messages.js';

export { SharedQueue, QueueClosedError, type QueueStats } from './queue.js';
export type * from './messages.js';

export type Bus = SharedQueue<BusMessage>;

export function createBus(capacityBytes = 1 << 20): Bus {
  return SharedQueue.create<BusMessage>(capacityBytes);
}

export function attachBus(buffer: SharedArrayBuffer): Bus {
  return SharedQueue.attach<BusMessage>(buffer);
}
