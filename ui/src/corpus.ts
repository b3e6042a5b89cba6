/**
 * A libFuzzer target's corpus, as the daemon last counted it (GET /api/targets/:id/corpus, every
 * 30 s from the directories in the fuzzer's argv; src/daemon/inputs.ts countCorpus). AFL++
 * targets have their corpus count from fuzzer_stats (./afl.ts) instead.
 */
import type { TargetInfo } from '../../src/contracts/hub.js';
import type { CorpusInfo } from '../../src/contracts/inputs.js';
import { authQuery } from './api.js';

export class CorpusFeed {
  private last = 0;
  private busy = false;

  constructor(private readonly id: string, private readonly onCorpus: (c: CorpusInfo | null) => void, private readonly everyMs = 15_000) {}

  /** Called with the target's info (every second by the page's tick): fetches when due. */
  update(t: TargetInfo): void {
    if (t.engine === 'afl' || t.fleet?.remote || this.busy || Date.now() - this.last < this.everyMs) return;
    this.busy = true;
    this.last = Date.now();
    void fetch(`/api/targets/${encodeURIComponent(this.id)}/corpus${authQuery()}`, { credentials: 'same-origin' })
      .then(async (r) => (r.ok ? ((await r.json()) as CorpusInfo) : null))
      .then((c) => this.onCorpus(c), () => {})
      .finally(() => { this.busy = false; });
  }
}

/** 1234567 -> "1.2 MB" (decimal units, as `du --si` and the file managers print sizes). */
export function bytesText(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000, u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}
