/**
 * What one node publishes (docs/architecture.md, "Fleet"): for each of its targets the PCs its
 * own fuzzers found with their first-seen seconds, as deltas batched every BATCH_MS and as
 * snapshots of its whole state; each build's PC table and source index once; and a status with
 * its targets' counters every HEARTBEAT_MS (STATUS_MS after its coverage grew).
 *
 * Nothing queues while NATS is away: what has not been acknowledged is kept as state (the PCs
 * not yet published, at most one entry per PC), and the next publish after a reconnect sends
 * that state, as one delta or, when it is larger than a snapshot would be, as a snapshot. A
 * snapshot goes at least every LIMITS.snapshotEvery messages of a (target, node), when the
 * deltas since the last one outweigh it, daily, and at each start, so the stream's per-subject
 * limit never drops anything a joiner needs.
 *
 * Used by the daemon (src/fleet/fleet.ts) and, with synthetic targets, by bench/fleet.ts.
 */
import type { Logger } from '../util/log.js';
import type { FleetLink } from './nats.js';
import { chunkKey, claimKey, encodeBuild, encodeCoverage, encodeStatus, LIMITS, manifestKey, type BuildRecord, type FleetNames, type NodeTargetStatus } from './protocol.js';

export const BATCH_MS = 250;
/** A status goes this soon after a target's coverage grew... */
export const STATUS_MS = 2000;
/** ...and otherwise this often (runs move all the time): well under the offline time of view.ts (three of these, at least 10 s). */
export const HEARTBEAT_MS = 5000;
/** How often a published build is checked to still be there (its bucket ages records out). */
const BUILD_RECHECK_MS = 6 * 3_600_000;
/**
 * A build is looked for (and published when missing) after a random wait of up to this long,
 * one build at a time per node: when a whole fleet starts at once (or the stream was wiped),
 * the first node's record is usually there before the others look, rather than every node
 * uploading every build.
 */
export const BUILD_JITTER_MS = 2000;

export interface OwnCounters {
  nRuns: number;
  uniqueRuns: number;
  runsPerSec: number;
  lastNewAt: number | null;
}

/** Where the publisher gets what is not coverage. */
export interface OwnSource {
  counters(id: string): OwnCounters | undefined;
  /** The build to publish for a target, once it has one (undefined: not yet, or never). */
  build(id: string): Promise<BuildRecord | undefined>;
}

/** This node's state for one of its targets. */
export class OwnTarget {
  /** Own first-seen second per PC (0: not seen by this node). */
  readonly secs: Uint32Array;
  covered = 0;
  /** PCs seen and not yet acknowledged by JetStream, each once. */
  pending: number[] = [];
  needSnapshot = true;
  msgsSinceSnapshot = 0;
  bytesSinceSnapshot = 0;
  lastSnapshotAt = 0;
  lastSnapshotBytes = 0;
  inFlight = false;
  /** 'unknown': to be looked for from `at` on. */
  build: { state: 'unknown' | 'checking' | 'published' | 'waiting' | 'claimed'; at: number } = { state: 'unknown', at: Date.now() + Math.random() * BUILD_JITTER_MS };

  constructor(readonly id: string, readonly pcsLen: number) {
    this.secs = new Uint32Array(pcsLen);
  }
}

export interface PublisherStats {
  messages: number;
  bytes: number;
  snapshots: number;
  builds: number;
  statuses: number;
  /** Of `bytes`, what the statuses took. */
  statusBytes: number;
  errors: number;
}

export interface PublisherOptions {
  node: string;
  names: FleetNames;
  link: FleetLink;
  log: Logger;
  source: OwnSource;
  /** This incarnation (ms); raised above any earlier one found in the stream (raiseInc). */
  inc?: number;
  batchMs?: number;
  statusMs?: number;
  heartbeatMs?: number;
  now?: () => number;
}

export class NodePublisher {
  readonly own = new Map<string, OwnTarget>();
  readonly stats: PublisherStats = { messages: 0, bytes: 0, snapshots: 0, builds: 0, statuses: 0, statusBytes: 0, errors: 0 };
  inc: number;
  private seq = 0;
  private caughtUp = false;
  private timer: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private statusSeq = 0;
  private lastStatusAt = 0;
  private lastStatusKey = '';
  private statusInFlight = false;
  private closed = false;
  private lastErrorLog = 0;
  private readonly now: () => number;
  private readonly batchMs: number;
  private readonly statusMs: number;
  private readonly heartbeatMs: number;

  constructor(private readonly o: PublisherOptions) {
    this.now = o.now ?? Date.now;
    this.inc = o.inc ?? this.now();
    this.batchMs = o.batchMs ?? BATCH_MS;
    this.statusMs = o.statusMs ?? STATUS_MS;
    this.heartbeatMs = o.heartbeatMs ?? HEARTBEAT_MS;
    o.link.on('ready', (reset: boolean) => {
      if (reset) for (const t of this.own.values()) { t.needSnapshot = true; t.build = { state: 'unknown', at: this.now() + Math.random() * BUILD_JITTER_MS }; }
      else for (const t of this.own.values()) if (t.pending.length * 4 > Math.max(4096, t.lastSnapshotBytes / 2)) t.needSnapshot = true;
      this.schedule(0);
    });
  }

  start(): void {
    this.ticker ??= setInterval(() => this.tick(), Math.min(1000, this.statusMs));
    this.ticker.unref();
  }

  /** The replay of the stream is done: own state merged, snapshots may go. */
  setCaughtUp(): void {
    if (this.caughtUp) return;
    this.caughtUp = true;
    this.schedule(0);
  }

  /** A previous incarnation of this node published with `inc`: ours must be later, or our counters would lose. */
  raiseInc(inc: number): void {
    if (inc >= this.inc) this.inc = inc + 1;
  }

  target(id: string, pcsLen: number): OwnTarget {
    let t = this.own.get(id);
    if (!t || t.pcsLen !== pcsLen) {
      t = new OwnTarget(id, pcsLen);
      this.own.set(id, t);
      this.schedule();
    }
    return t;
  }

  remove(id: string): void {
    this.own.delete(id);
  }

  /**
   * PCs this node's fuzzers saw (`fromStream`: read back from JetStream, so already published).
   * Returns how many were new to this node.
   */
  noteOwn(id: string, pcsLen: number, pcs: ArrayLike<number>, secs: number | ArrayLike<number>, fromStream = false): number {
    const t = this.target(id, pcsLen);
    let fresh = 0;
    for (let i = 0; i < pcs.length; i++) {
      const pc = pcs[i]!;
      const sec = typeof secs === 'number' ? secs : secs[i]!;
      if (pc >= pcsLen || !(sec > 0)) continue;
      const cur = t.secs[pc]!;
      if (cur === 0) {
        t.secs[pc] = sec;
        t.covered++;
        fresh++;
        if (!fromStream) t.pending.push(pc);
      } else if (sec < cur) t.secs[pc] = sec;
    }
    if (fresh && !fromStream) this.schedule();
    return fresh;
  }

  /** PCs seen and not yet published, over all targets. */
  pendingPcs(): number {
    let n = 0;
    for (const t of this.own.values()) n += t.pending.length;
    return n;
  }

  private schedule(ms = this.batchMs): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.flush(); }, ms);
    this.timer.unref();
  }

  private tick(): void {
    const now = this.now();
    for (const t of this.own.values()) if (t.covered > 0 && now - t.lastSnapshotAt >= LIMITS.resnapshotMs && t.lastSnapshotAt > 0) t.needSnapshot = true;
    this.schedule(0);
  }

  /** Publishes what is due. Never throws; failures leave the state to be sent next time. */
  async flush(): Promise<void> {
    const link = this.o.link;
    if (this.closed || !link.connected || !this.caughtUp) return;
    const jobs: Promise<void>[] = [];
    const now = this.now();
    let build: OwnTarget | undefined;
    for (const t of this.own.values()) {
      if (t.inFlight) continue;
      if (t.pending.length || t.needSnapshot) jobs.push(this.publishTarget(t));
      const b = t.build;
      if (!build && ((b.state === 'unknown' && now >= b.at) || (b.state === 'published' && now - b.at > BUILD_RECHECK_MS) || (b.state === 'waiting' && now - b.at > 5000) || (b.state === 'claimed' && now - b.at > 60_000))) build = t;
    }
    if (build && !this.buildBusy) jobs.push(this.publishBuild(build));
    jobs.push(this.publishStatus());
    await Promise.all(jobs);
    if (!this.closed && [...this.own.values()].some((t) => t.pending.length && !t.inFlight)) this.schedule();
  }

  private maxPairs(): number {
    return Math.max(1024, Math.min(LIMITS.maxPairsPerMessage, Math.floor((this.o.link.maxPayload - 4096) / 10)));
  }

  private async publishTarget(t: OwnTarget): Promise<void> {
    t.inFlight = true;
    const taken = t.pending;
    t.pending = [];
    try {
      const snapshot = t.needSnapshot || t.msgsSinceSnapshot >= LIMITS.snapshotEvery || t.bytesSinceSnapshot >= Math.max(4096, t.lastSnapshotBytes);
      if (snapshot) {
        const pcs: number[] = [];
        for (let pc = 0; pc < t.pcsLen; pc++) if (t.secs[pc] !== 0) pcs.push(pc);
        let bytes = 0;
        const max = this.maxPairs();
        for (let at = 0; at < pcs.length; at += max) bytes += await this.send(t, 'snapshot', pcs.slice(at, at + max));
        t.needSnapshot = false;
        t.msgsSinceSnapshot = 0;
        t.bytesSinceSnapshot = 0;
        t.lastSnapshotAt = this.now();
        t.lastSnapshotBytes = bytes;
        this.stats.snapshots++;
      } else {
        taken.sort((a, b) => a - b);
        const max = this.maxPairs();
        for (let at = 0; at < taken.length; at += max) {
          const bytes = await this.send(t, 'delta', taken.slice(at, at + max));
          t.msgsSinceSnapshot++;
          t.bytesSinceSnapshot += bytes;
        }
      }
    } catch (err) {
      // Not acknowledged (maybe stored anyway: a repeat changes nothing). Keep it as state.
      t.pending = taken.concat(t.pending);
      this.failed('publishing coverage failed; it is kept and sent when NATS answers again', err, t.id);
    } finally {
      t.inFlight = false;
    }
  }

  private async send(t: OwnTarget, kind: 'delta' | 'snapshot', pcs: number[]): Promise<number> {
    const secs = pcs.map((pc) => t.secs[pc]!);
    const data = encodeCoverage({
      kind, node: this.o.node, id: t.id, pcsHash: t.id, pcsLen: t.pcsLen, inc: this.inc, seq: ++this.seq, sent: this.now(),
      pcs: Uint32Array.from(pcs), secs: Uint32Array.from(secs),
    });
    const subject = this.o.names.covSubject(t.id, this.o.node);
    await this.o.link.publish(subject, data);
    this.stats.messages++;
    this.stats.bytes += data.length + subject.length;
    return data.length;
  }

  private buildBusy = false;

  private async publishBuild(t: OwnTarget): Promise<void> {
    const state = t.build.state;
    t.build = { state: 'checking', at: this.now() };
    this.buildBusy = true;
    try {
      const rec = await this.o.source.build(t.id);
      if (!rec) { t.build = { state: 'waiting', at: this.now() }; return; }
      const link = this.o.link;
      const mkey = manifestKey(rec.id, rec.buildId);
      const names = this.o.names;
      if (!(await link.last(names.buildsStream, names.buildsSubject(mkey)))) {
        // One uploader per build: the first to claim it. Another's claim with no manifest a minute
        // later (it died uploading) is ignored and this node uploads.
        const claimed = await link.publishFirst(names.buildsSubject(claimKey(rec.id, rec.buildId)), new TextEncoder().encode(this.o.node));
        if (!claimed && state !== 'claimed') {
          t.build = { state: 'claimed', at: this.now() };
          return;
        }
        const { manifest, chunks } = encodeBuild(rec, Math.min(LIMITS.chunkBytes, link.maxPayload - 4096));
        // Chunks first, the manifest last: whoever sees the manifest finds every chunk.
        for (let n = 0; n < chunks.length; n++) await link.publish(this.o.names.buildsSubject(chunkKey(rec.id, rec.buildId, n)), chunks[n]!);
        await link.publish(this.o.names.buildsSubject(mkey), manifest);
        this.stats.builds++;
        this.stats.bytes += manifest.length + chunks.reduce((a, c) => a + c.length, 0);
        this.o.log.info('published build', { id: rec.id, buildId: rec.buildId, bytes: chunks.reduce((a, c) => a + c.length, 0) });
      }
      t.build = { state: 'published', at: this.now() };
    } catch (err) {
      t.build = { state: state === 'published' || state === 'claimed' ? state : 'waiting', at: this.now() };
      this.failed('publishing a build failed; retrying', err, t.id);
    } finally {
      this.buildBusy = false;
    }
  }

  private async publishStatus(): Promise<void> {
    if (this.statusInFlight) return;
    const now = this.now();
    const targets: NodeTargetStatus[] = [];
    for (const t of this.own.values()) {
      const c = this.o.source.counters(t.id);
      if (!c) continue;
      targets.push({ id: t.id, pcsHash: t.id, pcsLen: t.pcsLen, nRuns: c.nRuns, uniqueRuns: c.uniqueRuns, runsPerSec: c.runsPerSec, covered: t.covered, lastNewAt: c.lastNewAt });
    }
    const key = targets.map((t) => t.covered).join(',');
    const due = now - this.lastStatusAt >= this.heartbeatMs || (key !== this.lastStatusKey && now - this.lastStatusAt >= this.statusMs);
    if (!due) return;
    this.statusInFlight = true;
    try {
      const data = encodeStatus({ node: this.o.node, inc: this.inc, seq: ++this.statusSeq, sent: now, every: this.heartbeatMs, targets });
      const subject = this.o.names.nodesSubject(this.o.node);
      await this.o.link.publish(subject, data);
      this.lastStatusAt = now;
      this.lastStatusKey = key;
      this.stats.statuses++;
      this.stats.messages++;
      this.stats.bytes += data.length + subject.length;
      this.stats.statusBytes += data.length + subject.length;
    } catch (err) {
      this.failed('publishing the node status failed; retrying', err);
    } finally {
      this.statusInFlight = false;
    }
  }

  private failed(msg: string, err: unknown, id?: string): void {
    this.stats.errors++;
    if (this.now() - this.lastErrorLog < 10_000) return;
    this.lastErrorLog = this.now();
    this.o.log.warn(msg, { ...(id ? { id } : {}), err: (err as Error).message });
  }

  /** Publishes what is pending (bounded by `ms`), then stops. */
  async close(ms = 2000): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.ticker) clearInterval(this.ticker);
    if (this.o.link.connected && this.caughtUp) await Promise.race([this.flush(), new Promise((r) => setTimeout(r, ms).unref())]);
    this.closed = true;
  }
}
