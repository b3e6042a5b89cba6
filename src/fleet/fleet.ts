/**
 * A daemon in a fleet (`covd serve --nats`): its link to NATS (nats.ts), what it publishes of its
 * own targets (publisher.ts) and what it shows of the others (view.ts), wired to the registry.
 * docs/architecture.md ("Fleet") has the design, docs/protocol.md the subjects and messages,
 * docs/deployment.md how to run it.
 *
 * The daemon never waits for NATS: startFleet returns at once, connects in the background and
 * keeps reconnecting; meanwhile fuzzing, the registry and the web UI go on as without a fleet.
 * On every connect it reads the whole fleet state back from JetStream (node statuses, build
 * manifests, every retained coverage message), so a restarted or new daemon rebuilds the same
 * view; only then does it publish, starting with a snapshot of each of its targets.
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { TargetRegistry, TickUpdate } from '../daemon/registry.js';
import type { TargetInfo } from '../contracts/hub.js';
import type { Logger } from '../util/log.js';
import { readPcList } from '../daemon/coverage-io.js';
import { redactUrl, type FleetConfig } from './config.js';
import { FleetLink } from './nats.js';
import { NodePublisher } from './publisher.js';
import { fleetNames, type BuildRecord, type FleetNames } from './protocol.js';
import { FleetView } from './view.js';

export interface FleetNodeStatus {
  name: string;
  self: boolean;
  online: boolean;
  lastSeenAt: number | null;
  /** Receive time minus send time of its latest live message (ms); includes clock skew. */
  lagMs: number | null;
  targets: number;
  covered: number;
  nRuns: number;
  runsPerSec: number;
}

export interface FleetStatus {
  node: string;
  prefix: string;
  servers: string[];
  state: FleetLink['state'];
  /** Since when in that state (ms since epoch). */
  since: number;
  server: string | null;
  /** The stream has been read back since the last connect. */
  loaded: boolean;
  /** PCs this node found that JetStream has not acknowledged yet. */
  pending: number;
  published: { messages: number; bytes: number; snapshots: number; builds: number; errors: number };
  received: { messages: number; bytes: number };
  rejected: { total: number; byCode: Record<string, number>; last: { code: string; reason: string; at: number } | null };
  nodes: FleetNodeStatus[];
}

export interface Fleet {
  readonly names: FleetNames;
  readonly view: FleetView;
  readonly publisher: NodePublisher;
  readonly link: FleetLink;
  status(): FleetStatus;
  close(): Promise<void>;
}

export interface FleetOptions {
  registry: TargetRegistry;
  config: FleetConfig & { nats: string[] };
  log: Logger;
  /** The largest pcs_len accepted (the daemon's memory budget). */
  maxPcs: number;
  /**
   * Whether a target's index is still to change soon (the daemon's second pass adds the inlined
   * code): a build is published once, so it waits for that.
   */
  indexSettling?: (id: string) => boolean;
}

const tsMs = (m: JsMsg) => Math.floor(m.info.timestampNanos / 1e6);

export function startFleet(o: FleetOptions): Fleet {
  const { registry, log } = o;
  const node = o.config.nodeName!;
  const names = fleetNames(o.config.natsPrefix ?? 'covd');
  const link = new FleetLink(o.config, names, log, `covd ${node}`);
  const startedAt = Date.now();

  /** A local target the fleet can carry: its id is its PC table's hash, so others can check it. */
  const publishable = (t: TargetInfo | undefined): t is TargetInfo =>
    t !== undefined && !registry.isRemote(t.id) && t.pcsHash === t.id && t.stats.pcsLen > 0 && t.state !== 'failed';

  const publisher = new NodePublisher({
    node, names, link, log,
    source: {
      counters(id) {
        const t = registry.info(id); // this daemon's own counters (not the union)
        return t && !registry.isRemote(id) ? { nRuns: t.stats.nRuns, uniqueRuns: t.stats.uniqueRuns, runsPerSec: t.stats.runsPerSec, lastNewAt: t.stats.lastNewAt } : undefined;
      },
      async build(id): Promise<BuildRecord | undefined> {
        const t = registry.target(id);
        if (!t || !t.index || registry.isRemote(id) || o.indexSettling?.(id)) return undefined;
        const list = await readPcList(t.coverageFile, o.maxPcs).catch(() => undefined);
        if (!list || list.pcsHash !== id) return undefined; // the file is gone, or holds another table now
        return { id, buildId: t.index.buildId ?? t.buildId, name: t.name, exe: t.exe, node, sent: Date.now(), pcs: list.pcs, index: t.index };
      },
    },
  });

  let warnedTwin = 0;
  const view = new FleetView({
    registry, self: node, names, maxPcs: o.maxPcs, log,
    replay: (id) => void replayTarget(id),
    fetchChunk: (key) => link.last(names.buildsStream, names.buildsSubject(key)),
    onOwn(m) {
      // What this node published before (an earlier run of this daemon): its own share again.
      if (publisher.own.has(m.id) || publishable(registry.info(m.id))) publisher.noteOwn(m.id, m.pcsLen, m.pcs, m.secs, true);
      if (m.inc !== publisher.inc && m.sent > startedAt && Date.now() - warnedTwin > 300_000) {
        warnedTwin = Date.now();
        log.warn('fleet: another daemon publishes under this node name; give each daemon its own --node-name', { node });
      }
    },
    onOwnStatus(s) {
      if (s.inc !== publisher.inc) publisher.raiseInc(s.inc);
    },
  });

  // ---- this daemon's own coverage, as its coverage thread reports it
  const onTick = (id: string, u: TickUpdate) => {
    const t = registry.info(id);
    if (!publishable(t) || u.newPcs.length === 0) {
      if (publishable(t)) publisher.target(id, t.stats.pcsLen);
      return;
    }
    const sec = Math.floor(u.time / 1000) || 1;
    publisher.noteOwn(id, t.stats.pcsLen, u.newPcs, sec);
    view.applyLocal(id, t.stats.pcsLen, u.newPcs, sec);
  };
  const onTarget = (t: TargetInfo) => {
    const info = registry.info(t.id);
    if (publishable(info)) {
      const own = publisher.target(t.id, info.stats.pcsLen);
      if (info.state === 'ready' && own.build.state === 'waiting') own.build.state = 'unknown';
    }
    view.localTarget(t.id);
  };
  const onRemoved = (id: string) => { publisher.remove(id); view.removed(id); };
  registry.on('tick', onTick);
  registry.on('target', onTarget);
  registry.on('removed', onRemoved);
  for (const t of registry.targets()) if (publishable(registry.info(t.id))) publisher.target(t.id, t.stats.pcsLen);

  // ---- reading the fleet back: on every connect, and whenever the stream is new
  let stops: (() => void)[] = [];
  let loaded = false;
  const replays = new Map<string, () => void>();
  const replayTarget = async (id: string) => {
    if (!link.connected || replays.has(id)) return;
    replays.set(id, () => {});
    try {
      const stop = await link.follow(names.covStream, names.covSubject(id, '*'), false, (m) => view.onCoverage(m.subject, m.data, tsMs(m), false), () => {
        replays.get(id)?.();
        replays.delete(id);
      });
      if (replays.has(id)) replays.set(id, stop);
      else stop();
    } catch (err) {
      replays.delete(id);
      log.warn('fleet: cannot read a target back from the stream', { id, err: (err as Error).message });
    }
  };
  link.on('ready', (reset: boolean) => {
    if (stops.length && !reset) return; // ordered consumers resume by themselves
    for (const s of stops) s();
    stops = [];
    loaded = false;
    void (async () => {
      try {
        let waiting = 3;
        const done = () => {
          if (--waiting > 0) return;
          loaded = true;
          view.flush();
          publisher.setCaughtUp();
          log.info('fleet state read back', { nodes: view.nodes.size, targets: view.targets.size, messages: view.received.messages });
        };
        const live = () => loaded;
        stops.push(await link.follow(names.nodesStream, names.nodesSubject('*'), true, (m) => view.onStatus(m.subject.slice(names.nodesSubject('').length), m.data, tsMs(m), live()), done));
        stops.push(await link.follow(names.buildsStream, names.buildsSubject('*.*.m'), true, (m) => view.onManifest(m.subject.slice(names.buildsSubject('').length), m.data), done));
        stops.push(await link.follow(names.covStream, names.covFilter, false, (m) => view.onCoverage(m.subject, m.data, tsMs(m), live()), done));
      } catch (err) {
        log.warn('fleet: cannot read the fleet state; retrying at the next connect', { err: (err as Error).message });
      }
    })();
  });

  publisher.start();
  link.start();

  return {
    names, view, publisher, link,
    status(): FleetStatus {
      const now = Date.now();
      const nodes: FleetNodeStatus[] = [];
      for (const rec of view.nodes.values()) {
        let targets = 0, covered = 0, nRuns = 0, runsPerSec = 0;
        if (rec.self) {
          for (const t of publisher.own.values()) {
            const c = registry.info(t.id)?.stats;
            targets++; covered += t.covered; nRuns += c?.nRuns ?? 0; runsPerSec += c?.runsPerSec ?? 0;
          }
        } else if (rec.status) {
          for (const t of rec.status.targets) { targets++; covered += t.covered; nRuns += t.nRuns; runsPerSec += t.runsPerSec; }
        }
        const online = view.isOnline(rec.name);
        nodes.push({ name: rec.name, self: rec.self, online, lastSeenAt: rec.self ? now : rec.lastSeenAt, lagMs: rec.self ? null : rec.lagMs, targets, covered, nRuns, runsPerSec: online ? runsPerSec : 0 });
      }
      nodes.sort((a, b) => (a.self === b.self ? a.name.localeCompare(b.name) : a.self ? -1 : 1));
      const p = publisher.stats;
      return {
        node, prefix: names.prefix, servers: o.config.nats.map(redactUrl), state: link.state, since: link.since, server: link.server, loaded,
        pending: publisher.pendingPcs(),
        published: { messages: p.messages, bytes: p.bytes, snapshots: p.snapshots, builds: p.builds, errors: p.errors },
        received: { ...view.received }, rejected: { ...view.rejected, byCode: { ...view.rejected.byCode } }, nodes,
      };
    },
    async close() {
      registry.off('tick', onTick);
      registry.off('target', onTarget);
      registry.off('removed', onRemoved);
      await publisher.close();
      for (const s of stops) s();
      for (const s of replays.values()) s();
      view.close();
      await link.close();
    },
  };
}
