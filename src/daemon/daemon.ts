/**
 * The daemon, composed: store -> registry (restored) -> bus + coverage thread -> symbolizer
 * pool -> dispatcher -> control socket + directory watchers + file-change watcher -> web
 * server. docs/architecture.md follows one coverage message through these parts.
 *
 * startDaemon() resolves once everything listens (the "covd ready" log line); close() stops
 * intake first, then the coverage thread, the web server, flushes and closes the store.
 */
import { readFileSync } from 'node:fs';
import type { BusMessage, CoverageMessage } from '../bus/messages.js';
import { createBus, type Bus } from '../bus/index.js';
import type { Symbolizer } from '../workers/types.js';
import type { WebServer } from '../web/types.js';
import type { Logger } from '../util/log.js';
import { DEFAULT_MEMORY_MB, DEFAULT_SYMBOLIZE_TIMEOUT_S, maxPcsFor, type DaemonConfig } from './config.js';
import { TargetRegistry } from './registry.js';
import { Store, persistRegistry } from './store.js';
import { Dispatcher } from './dispatch.js';
import { startControlServer, type ControlReply, type ControlServer } from './control.js';
import { CoverageDirWatcher, FileChangeWatcher } from './watch.js';
import type { ThreadEvent } from './coverage-thread.js';
import { readPcList } from './coverage-io.js';
import { ActivityMonitor, DEFAULT_IDLE_S } from './activity.js';
import { InputsService } from './inputs.js';
import { AflStatsWatcher } from '../afl/watcher.js';
import { CoverageThreadHost } from './coverage-host.js';
import type { Fleet } from '../fleet/fleet.js';
import { FLEET_RESTART_KEYS } from '../fleet/config.js';
import { Retention } from './retention.js';

export interface DaemonOptions {
  log: Logger;
  /** Defaults to the piscina pool of src/workers/pool.ts. */
  symbolizer?: Symbolizer;
  /** Start the HTTP/WebSocket server (default true). */
  web?: boolean;
  /** Coverage thread tick (default 500 ms). */
  tickMs?: number;
  /** History sampling interval (default 5000 ms). */
  historyIntervalMs?: number;
}

export interface DaemonStatus {
  pid: number;
  version: string;
  startedAt: number;
  url: string | null;
  socket: string;
  stateDir: string;
  watch: string[];
  targets: { total: number; loading: number; ready: number; failed: number; retired: number };
  coverageThread: { lastTickMicros: number; tracked: number; ticks: number; restarts: number };
  bus: { posted: number; rejected: number };
}

export interface Daemon {
  readonly registry: TargetRegistry;
  readonly dispatcher: Dispatcher;
  readonly config: DaemonConfig;
  readonly web: WebServer | null;
  /** AFL++ statistics; its 'findings' event feeds the inputs service's crash and hang records (src/afl/watcher.ts). */
  readonly afl: AflStatsWatcher;
  /** Inputs behind coverage and crashes (src/daemon/inputs.ts). */
  readonly inputs: InputsService;
  /** The fleet (covd serve --nats; src/fleet), null without one. */
  readonly fleet: Fleet | null;
  status(): DaemonStatus;
  /** Applies a new configuration (SIGHUP): log level, watched directories, retention. */
  reload(cfg: DaemonConfig): void;
  /** Resolves when close() finished (e.g. after a `shutdown` control message). */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

/** How long the symbolizer's threads outlive their last job (their heaps and kernels' memory go with them). */
export const SYMBOLIZER_IDLE_EXIT_MS = 5_000;

async function defaultSymbolizer(timeoutS: number): Promise<Symbolizer> {
  const { createSymbolizerPool } = await import('../workers/pool.js');
  // The daemon resolves each build once and then serves the result from its store: no DWARF
  // cache in the threads, and threads that exit when idle, so neither holds memory between uses.
  return createSymbolizerPool({ cache: false, idleExitMs: SYMBOLIZER_IDLE_EXIT_MS, timeoutMs: timeoutS * 1000 });
}

/** How often superseded targets are checked for retirement (their fuzzers may exit any time). */
const SWEEP_MS = 30_000;

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0';
  }
}

export async function startDaemon(config: DaemonConfig, opts: DaemonOptions): Promise<Daemon> {
  let cfg = config;
  const log = opts.log;
  const startedAt = Date.now();
  const cleanup: (() => Promise<void> | void)[] = [];
  const undo = async () => { for (const f of cleanup.reverse()) await f(); };

  try {
    // ---- persistence and the registry
    const store = Store.open(cfg.stateDir);
    cleanup.push(() => store.close());
    let lastWriteError = 0;
    store.onWriteError = (err, key) => {
      if (Date.now() - lastWriteError < 10_000) return; // a full disk fails every write: say it once in a while
      lastWriteError = Date.now();
      log.error('state store write failed; serving from memory, recent coverage may not survive a restart', { key, err });
    };
    store.onLoadError = (err, key) => log.warn('skipping a stored target that does not load', { key, err });
    const registry = new TargetRegistry({ historyIntervalMs: opts.historyIntervalMs });
    let restored = 0;
    for (const r of store.loadAll()) {
      try {
        registry.restore(r);
        restored++;
      } catch (err) {
        log.warn('skipping a stored target that does not load', { id: r.info.id, err });
      }
    }
    // A stored index answers for one PC table: one that does not match its target (an older
    // record, or a poisoned one) is dropped and the target resolved again.
    for (const t of registry.targets()) {
      const idx = registry.target(t.id)?.index;
      if (!idx || t.state === 'failed') continue;
      if (idx.pcFile.length !== t.stats.pcsLen || (t.pcsHash !== undefined && idx.pcsHash !== t.pcsHash)) {
        log.warn('stored symbolization does not match its target; resolving again', { id: t.id });
        registry.dropIndex(t.id);
      }
    }
    const persist = persistRegistry(registry, store, log);
    const activity = new ActivityMonitor(registry, (cfg.idleSeconds ?? DEFAULT_IDLE_S) * 1000);
    activity.start();
    cleanup.push(() => activity.close());
    const maxPcs = maxPcsFor(cfg.memoryMb ?? DEFAULT_MEMORY_MB);
    log.info('state loaded', { stateDir: cfg.stateDir, targets: restored });

    // ---- the bus and the coverage thread
    const bus: Bus = createBus(1 << 20);
    // Bound below, once the registry side is wired; events only arrive after the first await.
    let onThreadEvent: (e: ThreadEvent) => void = () => {};
    const host = new CoverageThreadHost({
      bus, log, tickMs: opts.tickMs, maxPcs,
      onEvent: (e) => onThreadEvent(e),
      onRestart: () => { for (const t of registry.targets()) if ((t.state === 'ready' || t.state === 'loading') && !registry.isRemote(t.id)) follow(t); },
    });
    cleanup.push(() => host.stop());
    const toThread = (m: BusMessage) => host.post(m);
    /** Has the coverage thread follow a target's file, which must hold the target's PC table. */
    const follow = (t: { id: string; exe: string; coverageFile: string; pcsHash?: string }) =>
      toThread({ type: 'coverage', id: t.id, exe: t.exe, file: t.coverageFile, ...(t.pcsHash ? { pcsHash: t.pcsHash } : {}) });

    // ---- symbolizer and dispatch
    const symbolizer = opts.symbolizer ?? await defaultSymbolizer(cfg.symbolizeTimeout ?? DEFAULT_SYMBOLIZE_TIMEOUT_S);
    if (!opts.symbolizer) cleanup.push(() => symbolizer.destroy());
    const files = new FileChangeWatcher(log);
    cleanup.push(() => files.close());
    const watchTargetFiles = (id: string) => {
      const info = registry.info(id);
      if (!info) return;
      const paths = new Set<string>([info.exe]);
      const idx = registry.target(id)?.index;
      // Sources named by the debug info; capped so a huge program cannot exhaust inotify watches.
      if (idx) for (let f = 0; f < idx.files.length && paths.size < 2000; f++) { const p = registry.sourcePath(id, f); if (p) paths.add(p); }
      files.add([...paths]);
    };
    const dispatcher = new Dispatcher({
      registry, symbolizer, store, toThread, readPcs: (f) => readPcList(f, maxPcs), log,
      onReady: watchTargetFiles, onRetired: () => retention.enforce(),
    });
    const retention = new Retention(registry, { retireDays: cfg.retireDays, keepRetired: cfg.keepRetired }, (id) => dispatcher.remove(id), log);
    cleanup.push(() => dispatcher.close());
    files.on('change', (p: string) => {
      if (registry.idsForExe(p).length) void dispatcher.exeChanged(p);
      dispatcher.sourceChanged(p);
    });
    files.on('unlink', (p: string) => { if (registry.idsForExe(p).length) void dispatcher.exeChanged(p); });

    onThreadEvent = (e: ThreadEvent) => {
      if (e.kind === 'tick') {
        for (const u of e.updates) registry.applyTick(u.id, u);
      } else if (e.kind === 'error') {
        const info = registry.info(e.id);
        if (!info || info.state === 'retired') return;
        if (e.code === 'ENOENT') {
          log.info('coverage file is gone; the target keeps its coverage', { id: e.id, file: info.coverageFile });
        } else if (e.code === 'REPLACED') {
          log.info('coverage file was recreated; following the new one if it holds the same PCs', { id: e.id });
          follow(info);
        } else {
          registry.fail(e.id, `coverage file ${info.coverageFile} is unusable (${e.code}): ${e.message}`, `COVD_ERR_COVERAGE_${e.code}`);
        }
      }
    };

    // Restored targets: follow their files again; finish symbolizing those that never got there.
    for (const t of registry.targets()) {
      if (t.state === 'ready') follow(t);
      else if (t.state === 'loading') void dispatcher.resume(t.id);
      if (t.state === 'ready') watchTargetFiles(t.id);
    }
    retention.enforce();
    const retentionTimer = setInterval(() => retention.enforce(), 3_600_000);
    retentionTimer.unref();
    const sweep = setInterval(() => dispatcher.sweep().catch((err) => log.warn('retirement sweep failed', { err })), SWEEP_MS);
    sweep.unref();
    cleanup.push(() => { clearInterval(retentionTimer); clearInterval(sweep); });

    const announce = (m: CoverageMessage) => {
      activity.noteWriter(m.id, m.pid);
      dispatcher.announce(m).catch((err) => log.error('announcement failed', { id: m.id, err }));
    };

    // ---- AFL++ statistics: afl-fuzz's fuzzer_stats and plot_data for AFL++ targets (src/afl/watcher.ts)
    const afl = new AflStatsWatcher({ registry, log: log.child({ part: 'afl' }) });
    cleanup.push(() => afl.close());

    // ---- inputs behind coverage, and crashes: the agent's logs beside each coverage file (src/daemon/inputs.ts)
    const inputs = InputsService.start({ stateDir: cfg.stateDir, registry, symbolizer, log: log.child({ part: 'inputs' }) });
    cleanup.push(() => inputs.close());
    // AFL++'s crashes/ and hangs/ become crash records; its plot_data series reach the API through it.
    inputs.attachAfl(afl);

    // ---- fleet: share coverage with other daemons through NATS JetStream (src/fleet); never waits for NATS
    let fleet: Fleet | null = null;
    if (cfg.nats?.length) {
      const { startFleet } = await import('../fleet/fleet.js');
      const f = startFleet({ registry, config: { ...cfg, nats: cfg.nats }, log: log.child({ part: 'fleet' }), maxPcs, indexSettling: (id) => dispatcher.settling(id) });
      fleet = f;
      cleanup.push(() => f.close());
    }

    // ---- web server (before intake, so the URL is known when the first target arrives)
    let web: WebServer | null = null;
    if (opts.web !== false) {
      const { startWebServer } = await import('../web/server.js');
      // Call graphs for the blockers route, in a pool job (its thread starts on the first request);
      // destroyed after the web server closes, ending a job still running.
      const { DwarfCallGraph } = await import('../workers/callgraph.js');
      const callGraph = new DwarfCallGraph();
      cleanup.push(() => callGraph.destroy());
      // A supervisor may start us while the previous daemon is still closing: wait for the port a
      // little rather than fail the restart.
      web = await startWebServer({
        hub: registry, inputs, host: cfg.host, port: cfg.port, token: cfg.token, allowedHosts: cfg.allowedHosts,
        listenRetryMs: cfg.port === 0 ? 0 : 10_000, log: log.child({ part: 'web' }),
        exclude: (cfg.exclude ?? []).map((r) => new RegExp(r)),
        ...(fleet ? { compareSides: (await import('../fleet/compare.js')).fleetCompareSides(fleet.view) } : {}),
        callGraph,
      });
      const w = web;
      cleanup.push(() => w.close());
    }

    // ---- intake: control socket and watched directories
    let closing: Promise<void> | undefined;
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => { resolveClosed = r; });

    const status = (): DaemonStatus => {
      const ts = registry.targets();
      const count = (s: string) => ts.filter((t) => t.state === s).length;
      const bs = bus.stats();
      return {
        pid: process.pid, version: packageVersion(), startedAt, url: web?.url ?? null, socket: cfg.socket, stateDir: cfg.stateDir, watch: cfg.watch,
        targets: { total: ts.length, loading: count('loading'), ready: count('ready'), failed: count('failed'), retired: count('retired') },
        coverageThread: { ...host.stats }, bus: { posted: bs.posted, rejected: bs.rejected },
      };
    };

    const handle = async (m: BusMessage): Promise<ControlReply> => {
      switch (m.type) {
        case 'coverage': {
          // Reply as soon as the target is known; symbolizing continues in the background.
          activity.noteWriter(m.id, m.pid);
          const p = dispatcher.announce(m);
          if (m.aflOut) void afl.follow(m.id, m.aflOut); // covd add --afl-out
          const info = await Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
          return { ok: true, id: m.id, state: (info ?? registry.info(m.id))?.state ?? 'loading' };
        }
        case 'remove':
          activity.forget(m.id);
          return dispatcher.remove(m.id) ? { ok: true } : { ok: false, error: `no target with id ${m.id}`, code: 'COVD_ERR_NO_TARGET' };
        case 'list':
          return { ok: true, targets: registry.targets() };
        case 'status':
          return { ok: true, status: status() };
        case 'exe-changed':
          void dispatcher.exeChanged(m.exe);
          return { ok: true };
        case 'source-changed':
          dispatcher.sourceChanged(m.path);
          return { ok: true };
        case 'fleet':
          return fleet ? { ok: true, fleet: fleet.status() } : { ok: false, error: 'this daemon is in no fleet (start it with --nats URL)', code: 'COVD_ERR_NO_FLEET' };
        case 'shutdown':
          setImmediate(() => void daemon.close());
          return { ok: true };
        case 'inputs':
        case 'crashes':
        case 'input':
          return inputs.control(m);
      }
    };
    const control: ControlServer = await startControlServer(cfg.socket, handle, log.child({ part: 'control' }));
    cleanup.push(() => control.close());
    const dirs = new CoverageDirWatcher(log.child({ part: 'watch' }), announce);
    cleanup.push(() => dirs.close());
    dirs.setDirs(cfg.watch);

    const daemon: Daemon = {
      registry, dispatcher, web, afl, inputs, fleet,
      get config() { return cfg; },
      status,
      reload(next: DaemonConfig) {
        log.level = next.logLevel;
        dirs.setDirs(next.watch);
        const restartNeeded = (['host', 'port', 'socket', 'stateDir', 'token', 'exclude', ...FLEET_RESTART_KEYS] as const).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(cfg[k]));
        if (restartNeeded.length) log.warn('these settings take effect only after a restart', { settings: restartNeeded });
        retention.set({ retireDays: next.retireDays, keepRetired: next.keepRetired });
        activity.setIdleSeconds(next.idleSeconds ?? DEFAULT_IDLE_S);
        cfg = { ...next, host: cfg.host, port: cfg.port, socket: cfg.socket, stateDir: cfg.stateDir, token: cfg.token };
        retention.enforce();
        log.info('configuration reloaded', { configFile: next.configFile ?? null, watch: next.watch, logLevel: next.logLevel });
      },
      closed,
      close() {
        closing ??= (async () => {
          log.info('shutting down');
          // Intake first (the control socket and watchers are the last cleanups pushed, so they run first).
          for (const t of registry.targets()) if (t.state !== 'retired') registry.sampleNow(t.id);
          const steps = cleanup.splice(0).reverse();
          for (const f of steps) {
            // Compact the store after the coverage thread stopped and before the store closes.
            if (f === storeClose) {
              await persist.compactAll().catch((err) => log.error('final compaction failed', { err }));
              persist.detach();
            }
            try { await f(); } catch (err) { log.warn('shutdown step failed', { err }); }
          }
          persist.detach();
          log.info('stopped');
          resolveClosed();
        })();
        return closing;
      },
    };
    const storeClose = cleanup[0]!;

    log.info('covd ready', { url: web?.url ?? null, socket: cfg.socket, stateDir: cfg.stateDir, watch: cfg.watch, targets: registry.targets().length });
    return daemon;
  } catch (err) {
    await undo();
    throw err;
  }
}
