/**
 * Retention: retired targets (old builds, kept read-only as history) are deleted `retireDays`
 * after retirement, and beyond the newest `keepRetired` per executable. Checked at start, hourly,
 * and whenever a target is retired. Retirement times are the registry's (stored with the target).
 */
import type { Logger } from '../util/log.js';
import type { TargetRegistry } from './registry.js';

export interface RetentionSettings {
  retireDays: number;
  keepRetired: number;
}

export class Retention {
  constructor(
    private readonly registry: TargetRegistry,
    private settings: RetentionSettings,
    /** Forgets a target everywhere (the coverage thread, the registry, the store). */
    private readonly remove: (id: string) => void,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** New settings (SIGHUP). */
  set(settings: RetentionSettings): void {
    this.settings = settings;
  }

  /** Deletes retired targets past retireDays, and beyond keepRetired per executable. */
  enforce(): void {
    const now = this.now();
    const byExe = new Map<string, { id: string; at: number }[]>();
    for (const t of this.registry.targets()) {
      if (t.state !== 'retired') continue;
      const at = this.registry.retiredAt(t.id) ?? now;
      if (now - at > this.settings.retireDays * 86_400_000) { this.drop(t.id, 'retired too long ago'); continue; }
      const list = byExe.get(t.exe) ?? [];
      list.push({ id: t.id, at });
      byExe.set(t.exe, list);
    }
    for (const list of byExe.values()) {
      list.sort((a, b) => b.at - a.at);
      for (const extra of list.slice(this.settings.keepRetired)) this.drop(extra.id, 'too many retired targets for this executable');
    }
  }

  private drop(id: string, why: string): void {
    this.log.info('deleting retired target', { id, why });
    this.remove(id);
  }
}
