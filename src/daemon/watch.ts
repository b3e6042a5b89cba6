/**
 * Intake by discovery: `covd serve --watch DIR` watches DIR/v/ (where agents write) with
 * chokidar and announces every coverage file `v/<16 hex>` once its metadata
 * `v/<16 hex>.meta.json` is there too (the agent renames both into place complete; a file
 * from another producer that is still half-written is retried by dispatch, which gets a
 * retryable reader error). A DIR that does not exist yet is polled for every second until it
 * appears, and again if it disappears. inotify drops events when its queue overflows (10,000
 * files in a few seconds do it), so `v/` is also re-read every RESCAN_MS and after any watcher
 * error: a readdir and two lstats per file, and files already announced unchanged are skipped.
 * Symlinks in `v/` are ignored: the agent writes real files, and a link could point anywhere.
 *
 * Also here: FileChangeWatcher, which tells the daemon when a target's executable or a source
 * file named by its debug info changes on disk (debounced, since builds write in steps).
 */
import { EventEmitter } from 'node:events';
import { existsSync, lstatSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { COVERAGE_ID } from '../contracts/ids.js';
import { basename, dirname, join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { CoverageMessage } from '../bus/messages.js';
import type { Logger } from '../util/log.js';
import { trustedOwner } from '../util/untrusted.js';
import { readMeta } from '../coverage/meta.js';

/** How often watched `v/` directories are re-read in case the kernel dropped events. */
export const RESCAN_MS = 10_000;

export class CoverageDirWatcher {
  private watcher: FSWatcher | undefined;
  private readonly dirs = new Set<string>();
  private readonly waiting = new Set<string>();
  private poll: NodeJS.Timeout | undefined;
  /** id -> (meta mtime, file size) last announced: a restarted fuzzer (new meta) or a file that was
   * still growing when first seen is announced again; dispatch makes repeats of a healthy one no-ops. */
  private readonly announced = new Map<string, string>();
  private readonly untrusted = new Set<string>();
  private closed = false;
  private rescanTimer: NodeJS.Timeout | undefined;
  private rescanning = false;
  /** Files seen by a rescan that the watcher had not reported (dropped events), for tests and logs. */
  rescued = 0;

  constructor(private readonly log: Logger, private readonly onFound: (m: CoverageMessage) => void, private readonly rescanMs = RESCAN_MS) {}

  /** Sets the watched directories (SIGHUP may change them). */
  setDirs(dirs: string[]): void {
    const want = new Set(dirs);
    for (const d of [...this.dirs]) if (!want.has(d)) { this.dirs.delete(d); this.waiting.delete(d); this.watcher?.unwatch(join(d, 'v')); }
    for (const d of want) if (!this.dirs.has(d)) { this.dirs.add(d); this.start(d); }
  }

  private ensureWatcher(): FSWatcher {
    if (this.watcher) return this.watcher;
    this.watcher = watch([], {
      depth: 0,
      ignoreInitial: false,
      // Agents write temp files as .<name>.tmp and rename: never look at those.
      ignored: (p: string) => basename(p).startsWith('.'),
    });
    const onFile = (p: string) => void this.consider(p);
    this.watcher.on('add', onFile).on('change', onFile);
    this.watcher.on('unlinkDir', (p: string) => {
      const d = dirname(p);
      if (this.dirs.has(d) && basename(p) === 'v') { this.log.info('watched directory went away; waiting for it', { dir: d }); this.start(d); }
    });
    this.watcher.on('error', (err) => {
      this.log.warn('watcher error; re-reading the watched directories', { err });
      void this.rescan();
    });
    this.rescanTimer = setInterval(() => void this.rescan(), this.rescanMs);
    this.rescanTimer.unref();
    return this.watcher;
  }

  /** Re-reads every watched `v/` and considers each file in it (what inotify may have dropped). */
  async rescan(): Promise<void> {
    if (this.rescanning || this.closed) return;
    this.rescanning = true;
    try {
      for (const d of this.dirs) {
        if (this.waiting.has(d)) continue;
        const v = join(d, 'v');
        let names: string[];
        try {
          names = await readdir(v);
        } catch {
          continue; // gone: the unlinkDir handler waits for it
        }
        for (const n of names) {
          if (this.closed) return;
          if (COVERAGE_ID.test(n) && !this.announced.has(n) && !this.untrusted.has(n)) {
            if (await this.consider(join(v, n))) this.rescued++;
          }
        }
      }
    } finally {
      this.rescanning = false;
    }
  }

  private start(dir: string): void {
    if (this.closed) return;
    const v = join(dir, 'v');
    if (existsSync(v)) {
      this.waiting.delete(dir);
      this.ensureWatcher().add(v);
      this.log.info('watching coverage directory', { dir });
      return;
    }
    if (!this.waiting.has(dir)) this.log.info('coverage directory does not exist yet; waiting for it', { dir: v });
    this.waiting.add(dir);
    this.poll ??= setInterval(() => {
      for (const d of [...this.waiting]) if (existsSync(join(d, 'v'))) this.start(d);
      if (this.waiting.size === 0) { clearInterval(this.poll); this.poll = undefined; }
    }, 1000);
    this.poll.unref();
  }

  /** Announces the coverage file behind path p when both halves are there and new; true if it did. */
  private async consider(p: string): Promise<boolean> {
    const name = basename(p);
    const id = name.endsWith('.meta.json') ? name.slice(0, -'.meta.json'.length) : name;
    if (!COVERAGE_ID.test(id)) return false;
    const vdir = dirname(p);
    const file = join(vdir, id);
    const metaPath = join(vdir, `${id}.meta.json`);
    let key: string;
    try {
      const m = lstatSync(metaPath), f = lstatSync(file);
      // The metadata names an executable whose debug info decides which source files the web
      // server may show: only trust files written by this user (or root), and real files.
      const bad = !trustedOwner(m.uid) || !trustedOwner(f.uid) ? 'owned by another user' : !m.isFile() || !f.isFile() ? 'that is not a regular file (a symlink, FIFO or device)' : undefined;
      if (bad) {
        if (!this.untrusted.has(id)) this.log.warn(`ignoring a coverage file ${bad}`, { file, uid: f.uid, metaUid: m.uid });
        this.untrusted.add(id);
        return false;
      }
      this.untrusted.delete(id);
      key = `${m.mtimeMs}:${f.size}`;
    } catch {
      return false; // the other half is not there yet; its own event will bring us back
    }
    if (this.announced.get(id) === key) return false;
    const meta = await readMeta(file);
    if (!meta || this.closed || this.announced.get(id) === key) return false; // unreadable for now: a later change event retries
    this.announced.set(id, key);
    this.onFound({ type: 'coverage', id, exe: meta.exe, file, pid: meta.pid });
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.poll) clearInterval(this.poll);
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    await this.watcher?.close();
  }
}

/** Watches individual files (executables, sources) and reports settled changes and deletions. */
export class FileChangeWatcher extends EventEmitter {
  private readonly watcher: FSWatcher;
  private readonly paths = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly log: Logger, private readonly debounceMs = 500) {
    super();
    this.watcher = watch([], { ignoreInitial: true, depth: 0 });
    const later = (kind: 'change' | 'unlink') => (p: string) => {
      if (!this.paths.has(p)) return;
      clearTimeout(this.timers.get(p));
      this.timers.set(p, setTimeout(() => {
        this.timers.delete(p);
        const gone = !existsSync(p);
        this.emit(gone ? 'unlink' : kind === 'unlink' ? 'change' : kind, p);
      }, this.debounceMs));
    };
    this.watcher.on('change', later('change')).on('add', later('change')).on('unlink', later('unlink'));
    this.watcher.on('error', (err) => this.log.warn('file watcher error', { err }));
  }

  add(paths: string[]): void {
    const fresh = paths.filter((p) => !this.paths.has(p));
    for (const p of fresh) this.paths.add(p);
    if (fresh.length) this.watcher.add(fresh);
  }

  remove(paths: string[]): void {
    const gone = paths.filter((p) => this.paths.delete(p));
    if (gone.length) this.watcher.unwatch(gone);
  }

  get size(): number {
    return this.paths.size;
  }

  async close(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t);
    await this.watcher.close();
  }
}
