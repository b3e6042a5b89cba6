/**
 * Application state: the link to the daemon, the target list, the followed target's model, and
 * the current view. Messages are applied to the state first, then the view is told what changed,
 * so every view updates in place.
 */
import type { TargetInfo } from '../../src/contracts/hub.js';
import { PROTOCOL_VERSION, deltaPcs, expandFirstSeen, type ClientMessage, type ServerMessage } from '../../src/web/protocol.js';
import { Link, type LinkState } from './conn.js';
import { TargetModel } from './model.js';
import { fetchHistory } from './api.js';

export interface View {
  readonly root: HTMLElement;
  onTargets?(): void;
  onIndex?(id: string): void;
  /** changed = files whose coverage changed, null = everything may have changed (snapshot). */
  onCoverage?(id: string, changed: Set<number> | null): void;
  onSourceChanged?(id: string, file: number): void;
  /** Once a second: relative times, "new" highlights. */
  tick?(): void;
  destroy(): void;
}

export interface TrendPoint {
  t: number;
  covered: number;
}

const TREND_POINTS = 120;

export class App {
  readonly link: Link;
  readonly targets = new Map<string, TargetInfo>();
  /** Small coverage-over-time series per target for the dashboard's trend lines. */
  readonly trends = new Map<string, TrendPoint[]>();
  private readonly models = new Map<string, TargetModel>();
  private followed: string | null = null;
  view: View | null = null;
  targetsLoaded = false;
  serverName = '';
  linkState: LinkState = 'connecting';
  linkDetail = '';
  onLinkState: () => void = () => {};
  /** The target list changed (names for the breadcrumb). */
  onTargetList: () => void = () => {};
  onError: (msg: string) => void = () => {};

  constructor(url = Link.defaultUrl()) {
    this.link = new Link(url, {
      state: (s, detail) => {
        this.linkState = s;
        this.linkDetail = detail;
        this.onLinkState();
      },
      open: () => this.resubscribe(),
      message: (m) => this.handle(m),
    });
  }

  start(): void {
    this.link.start();
  }

  /** The model of a target, created on first use; the view calls follow() to subscribe. */
  model(id: string): TargetModel | undefined {
    return this.models.get(id);
  }

  /** Subscribes to one target's coverage (and drops the previous subscription). */
  follow(id: string | null): TargetModel | null {
    if (this.followed && this.followed !== id) this.link.send({ t: 'unsub', id: this.followed });
    if (id === null) {
      this.followed = null;
      return null;
    }
    let m = this.models.get(id);
    if (!m) {
      const info = this.targets.get(id) ?? placeholderInfo(id);
      m = new TargetModel(info);
      this.models.set(id, m);
      // Keep the index of at most a few targets around.
      if (this.models.size > 3) for (const k of this.models.keys()) if (k !== id) { this.models.delete(k); break; }
    }
    if (this.followed !== id) {
      this.followed = id;
      m.synced = false;
      this.link.send(subMessage(m, false));
    }
    return m;
  }

  private resubscribe(): void {
    this.link.send({ t: 'sub-targets' });
    if (this.followed) {
      const m = this.models.get(this.followed);
      // After a reconnect, resume from the last applied delta: the server replays what was
      // missed when it still has it, and sends a snapshot otherwise.
      if (m) this.link.send(subMessage(m, true));
    }
  }

  /** Error messages about one target (e.g. no such target) go to the views via onTargets. */
  readonly targetErrors = new Map<string, string>();

  private handle(msg: ServerMessage): void {
    const v = this.view;
    switch (msg.t) {
      case 'hello':
        this.serverName = msg.server;
        if (msg.version !== PROTOCOL_VERSION) this.onError(`The daemon speaks protocol ${msg.version}, this page ${PROTOCOL_VERSION}: reload the page.`);
        break;
      case 'targets': {
        const ids = new Set(msg.targets.map((t) => t.id));
        for (const id of this.targets.keys()) if (!ids.has(id)) this.targets.delete(id);
        for (const t of msg.targets) this.setTarget(t);
        this.targetsLoaded = true;
        this.onTargetList();
        v?.onTargets?.();
        break;
      }
      case 'target':
        this.setTarget(msg.target);
        v?.onTargets?.();
        break;
      case 'removed': {
        this.targets.delete(msg.id);
        // The server dropped our subscription with the target. If the id comes back (the fuzzer
        // announces it again), it is a new incarnation: start from a fresh snapshot, not a resume.
        const m = this.models.get(msg.id);
        if (m) {
          m.synced = false;
          m.seq = -1;
          m.removed = true;
        }
        v?.onTargets?.();
        break;
      }
      case 'index': {
        const m = this.models.get(msg.id);
        if (!m) break;
        m.setIndex(msg.index);
        performance.mark('covd:index');
        v?.onIndex?.(msg.id);
        break;
      }
      case 'snapshot': {
        const m = this.models.get(msg.id);
        if (!m) break;
        m.applySnapshot(msg.seq, msg.info, msg.seen, expandFirstSeen(msg, msg.info.stats.pcsLen), msg.history, msg.epoch);
        this.targetErrors.delete(msg.id);
        performance.mark('covd:snapshot');
        this.setTarget(msg.info);
        v?.onTargets?.();
        v?.onCoverage?.(msg.id, null);
        break;
      }
      case 'delta': {
        const m = this.models.get(msg.id);
        const info = this.targets.get(msg.id);
        if (info) this.setTarget({ ...info, stats: msg.stats });
        if (!m || this.followed !== msg.id) {
          v?.onTargets?.();
          break;
        }
        const changed = m.applyDelta(msg.seq, msg.time, deltaPcs(msg), msg.stats);
        if (changed === null) {
          // Missed a delta (or it arrived before the snapshot): ask for the full state again.
          if (m.synced) {
            m.synced = false;
            this.link.send({ t: 'resync', id: msg.id });
          }
          break;
        }
        v?.onTargets?.();
        v?.onCoverage?.(msg.id, changed);
        break;
      }
      case 'source-changed':
        v?.onSourceChanged?.(msg.id, msg.file);
        break;
      case 'error':
        if (msg.id) {
          this.targetErrors.set(msg.id, msg.error);
          v?.onTargets?.();
        } else this.onError(msg.error);
        break;
      case 'pong':
        break;
    }
  }

  private setTarget(t: TargetInfo): void {
    const known = this.targets.has(t.id);
    // A deep link opened before its target existed, or a followed target that was removed and
    // came back: subscribe now that it exists.
    if (this.followed === t.id && (this.targetErrors.has(t.id) || this.models.get(t.id)?.removed)) {
      this.targetErrors.delete(t.id);
      const m = this.models.get(t.id);
      if (m) {
        m.removed = false;
        this.link.send(subMessage(m, false));
      }
    }
    this.targets.set(t.id, t);
    const m = this.models.get(t.id);
    if (m) m.info = { ...t, stats: t.stats };
    let trend = this.trends.get(t.id);
    if (!trend) {
      trend = [];
      this.trends.set(t.id, trend);
    }
    const last = trend[trend.length - 1];
    if (!last || t.stats.updatedAt > last.t) {
      trend.push({ t: t.stats.updatedAt, covered: t.stats.covered });
      if (trend.length > TREND_POINTS * 2) trend.splice(0, trend.length - TREND_POINTS);
    }
    if (!known) this.loadTrend(t.id);
  }

  /** Seeds a trend line from the stored history (best effort: the live points work without it). */
  private loadTrend(id: string): void {
    fetchHistory(id)
      .then((h) => {
        const trend = this.trends.get(id);
        if (!trend || h.length === 0) return;
        const first = trend[0]?.t ?? Infinity;
        const older = h.filter((s) => s.t < first).map((s) => ({ t: s.t, covered: s.covered }));
        const step = Math.max(1, Math.floor(older.length / TREND_POINTS));
        trend.unshift(...older.filter((_, i) => i % step === 0));
        this.view?.onTargets?.();
      })
      .catch(() => {});
  }
}

function subMessage(m: TargetModel, resume: boolean): ClientMessage {
  const msg: ClientMessage = { t: 'sub', id: m.info.id, have: m.index?.buildId ?? null, words: true, sparse: true };
  // seq numbers only mean something within one run of the daemon: resume names the epoch.
  if (resume && m.synced && m.seq >= 0 && m.epoch) {
    msg.since = m.seq;
    msg.epoch = m.epoch;
  } else m.synced = false;
  return msg;
}

function placeholderInfo(id: string): TargetInfo {
  return {
    id,
    name: id,
    exe: '',
    buildId: null,
    coverageFile: '',
    state: 'loading',
    activity: 'stopped',
    stoppedAt: null,
    createdAt: Date.now(),
    stats: { nRuns: 0, uniqueRuns: 0, lowestStack: null, covered: 0, pcsLen: 0, runsPerSec: 0, lastNewAt: null, updatedAt: 0 },
  };
}
