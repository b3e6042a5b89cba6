/**
 * The fleet's connection to NATS: connect (and keep reconnecting, forever, without ever holding
 * up the daemon), make sure the coverage stream and the two buckets exist (created with the
 * limits of protocol.ts when missing; an operator's own configuration, say three replicas on a
 * cluster, is kept as it is), publish with acknowledgement, and read streams with ordered
 * consumers, which resume where they were after a reconnect.
 *
 * Credentials (a token, a .creds file) and TLS settings go to the client as they are; no log
 * line ever carries them (servers are logged through redactUrl).
 */
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { DeliverPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager, type JsMsg, type StreamConfig } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { Logger } from '../util/log.js';
import { redactUrl, type FleetConfig } from './config.js';
import { LIMITS, type FleetNames } from './protocol.js';

const nanos = (ms: number) => ms * 1_000_000;

/**
 * `nats://user:pass@host:4222` (or `nats://token@host`) as the client takes it: the servers without
 * credentials, and the credentials as options (the first URL that has any gives them).
 */
function splitCredentials(urls: string[]): { servers: string[]; user?: string; pass?: string; token?: string } {
  let cred: { user?: string; pass?: string; token?: string } = {};
  const servers = urls.map((u) => {
    const m = /^([a-z]+:\/\/)?([^@/]*)@(.*)$/i.exec(u);
    if (!m) return u;
    if (!cred.user && !cred.token) {
      const [a, b] = m[2]!.split(':', 2).map((x) => decodeURIComponent(x));
      cred = b === undefined ? { token: a } : { user: a, pass: b };
    }
    return `${m[1] ?? ''}${m[3]}`;
  });
  return { servers, ...cred };
}

/** The client options for a fleet configuration (exported so tests can check what reaches the client). */
export function connectOptions(cfg: FleetConfig & { nats: string[] }, name: string): NodeConnectionOptions {
  const { servers, user, pass, token } = splitCredentials(cfg.nats);
  const o: NodeConnectionOptions = {
    // The first connection is retried here (FleetLink.run), so its failures are logged; after it the client reconnects forever.
    servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 1000, waitOnFirstConnect: false,
    pingInterval: 10_000, maxPingOut: 3, timeout: 5000,
  };
  if (user !== undefined) { o.user = user; o.pass = pass; }
  if (token !== undefined) o.token = token;
  if (cfg.natsToken !== undefined) o.token = cfg.natsToken;
  if (cfg.natsCreds !== undefined) {
    const path = cfg.natsCreds;
    // Read at every (re)connect: a rotated credentials file is picked up without a restart.
    o.authenticator = credsAuthenticator(() => readFileSync(path));
  }
  if (cfg.natsTlsCa !== undefined) o.tls = { caFile: cfg.natsTlsCa };
  return o;
}

export type LinkState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface LinkEvents {
  /** Connected and the stream and buckets are there: (re)start publishing. `reset`: the coverage stream is new (created, or recreated since last time). */
  ready: (reset: boolean) => void;
  down: () => void;
}

export class FleetLink extends EventEmitter {
  nc: NatsConnection | null = null;
  js: JetStreamClient | null = null;
  jsm: JetStreamManager | null = null;
  state: LinkState = 'connecting';
  /** Since when in this state (ms). */
  since = Date.now();
  server: string | null = null;
  /** The server's largest message, bytes. */
  maxPayload = 1 << 20;
  private closed = false;
  private covCreated: string | null = null;

  constructor(private readonly cfg: FleetConfig & { nats: string[] }, private readonly names: FleetNames, private readonly log: Logger, private readonly clientName: string) {
    super();
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** Connects in the background; 'ready' follows each time the link is usable. */
  start(): void {
    void this.run();
  }

  private setState(s: LinkState): void {
    if (this.state === s) return;
    this.state = s;
    this.since = Date.now();
  }

  private async run(): Promise<void> {
    const servers = this.cfg.nats.map(redactUrl);
    this.log.info('connecting to NATS', { servers });
    let nc: NatsConnection;
    let lastWarn = 0, lastWhy = '';
    for (;;) {
      try {
        nc = await connect(connectOptions(this.cfg, this.clientName));
        break;
      } catch (err) {
        if (this.closed) return;
        // Said once, then again when the reason changes or a minute passed (a server down for hours is one line a minute).
        const why = (err as Error).message;
        if (why !== lastWhy || Date.now() - lastWarn > 60_000) {
          this.log.warn('cannot connect to NATS; retrying', { servers, err: why });
          lastWarn = Date.now();
          lastWhy = why;
        }
        await new Promise((r) => setTimeout(r, 2000));
        if (this.closed) return;
      }
    }
    if (this.closed) { await nc.close().catch(() => {}); return; }
    this.nc = nc;
    this.js = jetstream(nc, { timeout: 10_000 });
    this.jsm = await jetstreamManager(nc, { checkAPI: false });
    this.maxPayload = nc.info?.max_payload ?? this.maxPayload;
    this.server = redactUrl(nc.getServer());
    void this.watchStatus(nc);
    await this.becomeReady();
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.setState('disconnected');
        this.log.warn('lost NATS; fuzzing and serving go on, coverage is published when it is back', { server: redactUrl(s.server) });
        this.emit('down');
      } else if (s.type === 'reconnect') {
        this.server = redactUrl(s.server);
        this.log.info('NATS is back', { server: this.server });
        void this.becomeReady();
      } else if (s.type === 'error') {
        this.log.warn('NATS error', { err: s.error.message });
      }
    }
  }

  private async becomeReady(): Promise<void> {
    for (let attempt = 0; !this.closed && this.nc && !this.nc.isClosed(); attempt++) {
      try {
        const reset = await this.ensure();
        this.setState('connected');
        this.log.info('connected to NATS', { server: this.server, stream: this.names.covStream, reset });
        this.emit('ready', reset);
        return;
      } catch (err) {
        if (attempt % 10 === 0) this.log.warn('NATS JetStream is not usable yet; retrying', { err: (err as Error).message });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Creates what is missing; true when the coverage stream was created or is not the one seen before. */
  private async ensure(): Promise<boolean> {
    const jsm = this.jsm!;
    const cov: Partial<StreamConfig> & { name: string } = {
      name: this.names.covStream, subjects: [this.names.covFilter], retention: RetentionPolicy.Limits, storage: StorageType.File,
      max_msgs_per_subject: LIMITS.covPerSubject, max_bytes: LIMITS.covMaxBytes, max_age: nanos(LIMITS.maxAgeMs),
      discard: DiscardPolicy.Old, num_replicas: 1, duplicate_window: nanos(120_000),
      description: 'covd fleet: coverage deltas and snapshots per target and node',
    };
    let info = await jsm.streams.info(this.names.covStream).catch(() => null);
    if (!info) info = await jsm.streams.add(cov);
    const kvm = new Kvm(this.js!);
    for (const [bucket, stream, maxBytes, what] of [
      [this.names.nodesBucket, this.names.nodesStream, LIMITS.nodesMaxBytes, 'covd fleet: each node\'s status'],
      [this.names.buildsBucket, this.names.buildsStream, LIMITS.buildsMaxBytes, 'covd fleet: PC tables and source indexes by build'],
    ] as const) {
      const exists = await jsm.streams.info(stream).then(() => true, () => false);
      if (!exists) await kvm.create(bucket, { history: 1, max_bytes: maxBytes, ttl: LIMITS.maxAgeMs, storage: StorageType.File, description: what });
    }
    const created = info.created;
    const reset = this.covCreated === null || this.covCreated !== created;
    this.covCreated = created;
    return reset;
  }

  /** Publishes to a stream subject (a KV key is `$KV.<bucket>.<key>`), waiting for the acknowledgement. */
  async publish(subject: string, data: Uint8Array, timeoutMs = 10_000): Promise<void> {
    if (!this.js || !this.connected) throw new Error('not connected to NATS');
    await this.js.publish(subject, data, { timeout: timeoutMs });
  }

  /** Publishes only when the subject holds nothing yet; false when something else got there first. */
  async publishFirst(subject: string, data: Uint8Array, timeoutMs = 10_000): Promise<boolean> {
    if (!this.js || !this.connected) throw new Error('not connected to NATS');
    try {
      await this.js.publish(subject, data, { timeout: timeoutMs, expect: { lastSubjectSequence: 0 } });
      return true;
    } catch (err) {
      if ((err as { api_error?: { err_code?: number } }).api_error?.err_code === 10071 || /wrong last sequence/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  /** The last message on a subject of a stream, or null. */
  async last(stream: string, subject: string): Promise<Uint8Array | null> {
    if (!this.jsm || !this.connected) throw new Error('not connected to NATS');
    const m = await this.jsm.streams.getMessage(stream, { last_by_subj: subject }).catch((err: Error) => {
      if (/no message found|not found/i.test(err.message)) return null;
      throw err;
    });
    return m ? m.data : null;
  }

  /**
   * Reads a stream with an ordered consumer: every message (or the last per subject) and then
   * what arrives; `caughtUp` once the backlog it started with is read. Returns a stop function.
   */
  async follow(stream: string, filter: string, lastPerSubject: boolean, onMsg: (m: JsMsg) => void, caughtUp: () => void): Promise<() => void> {
    const js = this.js!;
    const c = await js.consumers.get(stream, { filter_subjects: filter, deliver_policy: lastPerSubject ? DeliverPolicy.LastPerSubject : DeliverPolicy.All });
    const pending = (await c.info(true).catch(() => null))?.num_pending ?? 0;
    let done = false;
    const finish = () => { if (!done) { done = true; caughtUp(); } };
    if (pending === 0) finish();
    const msgs = await c.consume({ max_messages: 512 });
    void (async () => {
      try {
        for await (const m of msgs) {
          try {
            onMsg(m);
          } catch (err) {
            this.log.error('fleet message handler failed', { subject: m.subject, err });
          }
          if (m.info.pending === 0) finish();
        }
      } catch (err) {
        if (!this.closed) this.log.warn('fleet consumer stopped', { stream, err: (err as Error).message });
      }
    })();
    return () => { void msgs.close().catch(() => {}); };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.setState('closed');
    const nc = this.nc;
    this.nc = null;
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close().catch(() => {}));
  }
}
