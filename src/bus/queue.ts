/**
 * A message queue shared between threads, mirroring the seed's `msg_queue` + `mutex` +
 * `condition`: a SharedArrayBuffer holding a futex-style mutex, two condition sequence words and
 * a byte ring of msgpack-encoded messages. Any thread that holds the buffer (pass `bus.buffer`
 * in workerData, then `SharedQueue.attach`) can post and take.
 *
 * Memory layout (all little-endian, Int32 words at the start of the buffer):
 *
 *   word 0  LOCK      0 = free, 1 = held, 2 = held and someone may be waiting (Drepper's mutex)
 *   word 1  NONEMPTY  condition "something was posted (or notify() was called)": a sequence
 *                     number bumped and Atomics.notify'd; waiters Atomics.wait on its old value
 *   word 2  NONFULL   condition "space was freed": same scheme, for blocked producers
 *   word 3  HEAD      byte offset of the oldest record in the ring     (guarded by LOCK)
 *   word 4  USED      bytes of the ring in use                         (guarded by LOCK)
 *   word 5  COUNT     records in the ring                              (guarded by LOCK)
 *   word 6  CLOSED    1 once close() was called: posts fail, takers return at once
 *   word 7  CAPACITY  bytes of the ring (fixed at creation)
 *   word 8  POSTED    total records ever posted (statistics)
 *   word 9  REJECTED  posts refused because the ring stayed full (statistics)
 *   words 10-15       reserved
 *   byte 64 ...       the ring: records of [u32 LE length][length bytes of msgpack], wrapping
 *                     around the end of the ring byte by byte (a record may be split in two).
 *
 * Protocol: a producer locks, checks there is room for 4 + length bytes, copies the record in
 * at (HEAD + USED) mod CAPACITY, bumps USED/COUNT, unlocks, then signals NONEMPTY. A consumer
 * locks, copies out every record (like the seed, which drains the whole queue per wake-up),
 * resets USED/COUNT, unlocks, signals NONFULL, then decodes outside the lock. Waiting on a
 * condition = read its sequence word while holding the lock, unlock, Atomics.wait(word, seen,
 * timeout), lock again and re-check (so a signal between unlock and wait is never lost).
 *
 * Memory is bounded by CAPACITY: when a consumer is slow, producers block (post with a timeout)
 * or are refused (tryPost / timeout 0), never grow the queue. The main thread must not block
 * for long: it uses tryPost and takeAsync (Atomics.waitAsync); the lock itself is only ever
 * held for a memcpy, so taking it with Atomics.wait on the main thread is harmless.
 */
import { Packr } from 'msgpackr';
import { packrOptions } from '../contracts/msgpack.js';

const LOCK = 0, NONEMPTY = 1, NONFULL = 2, HEAD = 3, USED = 4, COUNT = 5, CLOSED = 6, CAPACITY = 7, POSTED = 8, REJECTED = 9;
const HEADER_BYTES = 64;
const LEN_BYTES = 4;

const packr = new Packr(packrOptions);

/** Atomics.waitAsync (Node >= 16; typed in lib es2024, which this project does not target yet). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, i: number, v: number, t?: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

export class QueueClosedError extends Error {
  override name = 'QueueClosedError';
}

export interface QueueStats {
  capacity: number;
  used: number;
  count: number;
  posted: number;
  rejected: number;
  closed: boolean;
}

export class SharedQueue<T = unknown> {
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly ring: Uint8Array;
  private readonly capacity: number;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.words = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.capacity = Atomics.load(this.words, CAPACITY);
    this.ring = new Uint8Array(buffer, HEADER_BYTES, this.capacity);
  }

  /** A new queue whose ring holds `capacityBytes` of encoded messages (default 1 MiB). */
  static create<T = unknown>(capacityBytes = 1 << 20): SharedQueue<T> {
    if (!Number.isInteger(capacityBytes) || capacityBytes < 64) throw new RangeError('queue capacity must be an integer >= 64');
    const sab = new SharedArrayBuffer(HEADER_BYTES + capacityBytes);
    new Int32Array(sab, 0, HEADER_BYTES / 4)[CAPACITY] = capacityBytes;
    return new SharedQueue<T>(sab);
  }

  /** The same queue, seen from another thread. */
  static attach<T = unknown>(buffer: SharedArrayBuffer): SharedQueue<T> {
    return new SharedQueue<T>(buffer);
  }

  // ---------------------------------------------------------------- mutex

  private lock(): void {
    const w = this.words;
    let c = Atomics.compareExchange(w, LOCK, 0, 1);
    if (c === 0) return;
    do {
      if (c === 2 || Atomics.compareExchange(w, LOCK, 1, 2) !== 0) Atomics.wait(w, LOCK, 2);
    } while ((c = Atomics.compareExchange(w, LOCK, 0, 2)) !== 0);
  }

  private unlock(): void {
    if (Atomics.sub(this.words, LOCK, 1) !== 1) {
      Atomics.store(this.words, LOCK, 0);
      Atomics.notify(this.words, LOCK, 1);
    }
  }

  private signal(cond: number): void {
    Atomics.add(this.words, cond, 1);
    Atomics.notify(this.words, cond);
  }

  // ---------------------------------------------------------------- producers

  /**
   * Posts a message; when the ring is full, waits up to `timeoutMs` (Infinity = until there is
   * room) for a consumer to make space. Returns false when it timed out (the message was not
   * posted). Throws QueueClosedError after close(), RangeError for a message larger than the ring.
   * Do not call with a long timeout on the main thread: use tryPost there.
   */
  post(msg: T, timeoutMs = Infinity): boolean {
    const bytes = packr.pack(msg);
    const need = LEN_BYTES + bytes.length;
    if (need > this.capacity) throw new RangeError(`message of ${bytes.length} bytes does not fit a ${this.capacity}-byte queue`);
    const w = this.words;
    const deadline = timeoutMs === Infinity ? Infinity : performance.now() + timeoutMs;
    this.lock();
    try {
      for (;;) {
        if (Atomics.load(w, CLOSED)) throw new QueueClosedError('queue closed');
        if (this.capacity - w[USED]! >= need) break;
        const left = deadline - performance.now();
        if (left <= 0) { Atomics.add(w, REJECTED, 1); return false; }
        const seen = Atomics.load(w, NONFULL);
        this.unlock();
        try { Atomics.wait(w, NONFULL, seen, left === Infinity ? undefined : left); } finally { this.lock(); }
      }
      const head = w[HEAD]!;
      let at = (head + w[USED]!) % this.capacity;
      const len = new Uint8Array(LEN_BYTES);
      new DataView(len.buffer).setUint32(0, bytes.length, true);
      at = this.copyIn(len, at);
      this.copyIn(bytes, at);
      w[USED] = w[USED]! + need;
      w[COUNT] = w[COUNT]! + 1;
      w[POSTED] = w[POSTED]! + 1;
    } finally {
      this.unlock();
    }
    this.signal(NONEMPTY);
    return true;
  }

  /** Posts without waiting; false when the ring is full. */
  tryPost(msg: T): boolean {
    return this.post(msg, 0);
  }

  /** Wakes every waiting consumer without posting (the seed's `coverage_condition.broadcast()`). */
  notify(): void {
    this.signal(NONEMPTY);
  }

  /** Refuses further posts and wakes everyone. Messages already posted can still be taken. */
  close(): void {
    Atomics.store(this.words, CLOSED, 1);
    this.signal(NONEMPTY);
    this.signal(NONFULL);
  }

  get closed(): boolean {
    return Atomics.load(this.words, CLOSED) === 1;
  }

  // ---------------------------------------------------------------- consumers

  /**
   * Takes every message posted so far. When there are none, waits up to `timeoutMs` for a post,
   * a notify() or close(), then takes what is there (possibly nothing). Blocks the thread:
   * for workers. Returns [] at once when closed and empty.
   */
  take(timeoutMs: number): T[] {
    const w = this.words;
    this.lock();
    let raw: Uint8Array[];
    try {
      if (w[COUNT] === 0 && !Atomics.load(w, CLOSED) && timeoutMs > 0) {
        const seen = Atomics.load(w, NONEMPTY);
        this.unlock();
        try { Atomics.wait(w, NONEMPTY, seen, timeoutMs); } finally { this.lock(); }
      }
      raw = this.drainLocked();
    } finally {
      this.unlock();
    }
    return this.decode(raw);
  }

  /** Takes whatever is there without waiting. */
  tryTake(): T[] {
    return this.take(0);
  }

  /** Like take(), without blocking the thread: waits with Atomics.waitAsync. For the main thread. */
  async takeAsync(timeoutMs: number): Promise<T[]> {
    const w = this.words;
    this.lock();
    let seen: number;
    let raw: Uint8Array[] = [];
    try {
      if (w[COUNT]! > 0 || Atomics.load(w, CLOSED) || timeoutMs <= 0) raw = this.drainLocked();
      seen = Atomics.load(w, NONEMPTY);
    } finally {
      this.unlock();
    }
    if (raw.length > 0 || this.closed || timeoutMs <= 0) return this.decode(raw);
    const r = waitAsync(w, NONEMPTY, seen, timeoutMs);
    if (r.async) await r.value;
    this.lock();
    try { raw = this.drainLocked(); } finally { this.unlock(); }
    return this.decode(raw);
  }

  stats(): QueueStats {
    const w = this.words;
    this.lock();
    try {
      return { capacity: this.capacity, used: w[USED]!, count: w[COUNT]!, posted: w[POSTED]!, rejected: w[REJECTED]!, closed: w[CLOSED] === 1 };
    } finally {
      this.unlock();
    }
  }

  // ---------------------------------------------------------------- internals

  /** Copies every record out of the ring (lock held); signals NONFULL after the caller unlocks. */
  private drainLocked(): Uint8Array[] {
    const w = this.words;
    const out: Uint8Array[] = [];
    let at = w[HEAD]!;
    const count = w[COUNT]!;
    const lenBuf = new Uint8Array(LEN_BYTES);
    for (let i = 0; i < count; i++) {
      at = this.copyOut(lenBuf, at);
      const len = new DataView(lenBuf.buffer).getUint32(0, true);
      const rec = new Uint8Array(len);
      at = this.copyOut(rec, at);
      out.push(rec);
    }
    if (count > 0) {
      w[HEAD] = 0;
      w[USED] = 0;
      w[COUNT] = 0;
      // Wake producers once we are out of the lock; signalling here is also fine (they re-lock).
      Atomics.add(w, NONFULL, 1);
      Atomics.notify(w, NONFULL);
    }
    return out;
  }

  private decode(raw: Uint8Array[]): T[] {
    return raw.map((b) => packr.unpack(b) as T);
  }

  private copyIn(src: Uint8Array, at: number): number {
    const first = Math.min(src.length, this.capacity - at);
    this.ring.set(src.subarray(0, first), at);
    if (first < src.length) this.ring.set(src.subarray(first), 0);
    return (at + src.length) % this.capacity;
  }

  private copyOut(dst: Uint8Array, at: number): number {
    const first = Math.min(dst.length, this.capacity - at);
    dst.set(this.ring.subarray(at, at + first));
    if (first < dst.length) dst.set(this.ring.subarray(0, dst.length - first), first);
    return (at + dst.length) % this.capacity;
  }
}
