/**
 * The last encoded deltas of one target, kept so a tab that reconnects (or finishes a large
 * send) is replayed what it missed instead of sent a whole snapshot. Entries are the very bytes
 * that were published, in both encodings, so a replay costs no encoding.
 */

/** Most bytes of encoded deltas kept per target for resuming clients. */
const RING_BYTES = 8 * 1024 * 1024;

interface Entry {
  seq: number;
  /** Encoded delta for index-list clients and for word-capable clients (the same Buffer when equal). */
  pcs: Buffer;
  words: Buffer;
}

const sizeOf = (e: Entry) => e.pcs.length + (e.words === e.pcs ? 0 : e.words.length);

export class ResumeRing {
  private readonly deltas: Entry[] = [];
  private bytes = 0;

  /** At most `maxDeltas` deltas and RING_BYTES bytes (a first tick can carry a large share of a big target). */
  constructor(private readonly maxDeltas: number) {}

  push(seq: number, pcs: Buffer, words: Buffer) {
    const e: Entry = { seq, pcs, words };
    this.deltas.push(e);
    this.bytes += sizeOf(e);
    while (this.deltas.length > this.maxDeltas || (this.deltas.length > 1 && this.bytes > RING_BYTES)) this.bytes -= sizeOf(this.deltas.shift()!);
  }

  /** Whether every delta after `since` up to `seq` (the target's current one) is still kept. */
  canReplay(since: number, seq: number): boolean {
    if (since === seq) return true;
    const d = this.deltas;
    return d.length > 0 && d[0]!.seq <= since + 1 && d[d.length - 1]!.seq === seq && d.some((r) => r.seq === since + 1);
  }

  /** Hands `send` the deltas after `since` up to `seq` in order; false (nothing sent) when some are gone. */
  replay(since: number, seq: number, words: boolean, send: (bytes: Buffer) => void): boolean {
    if (since === seq) return true;
    const d = this.deltas;
    const first = d.findIndex((r) => r.seq === since + 1);
    if (first < 0 || d[d.length - 1]!.seq !== seq) return false;
    for (let i = first; i < d.length; i++) send(words ? d[i]!.words : d[i]!.pcs);
    return true;
  }
}
