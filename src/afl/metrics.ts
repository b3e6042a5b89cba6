/**
 * AFL++ figures on /metrics (src/web/metrics.ts appends these): one series per target and afl-fuzz
 * instance, labelled {target, name, instance}, straight from the instance's AflInstance. Sum them
 * for a campaign (`sum by (target) (covd_afl_execs_per_second)`). Prometheus renames a scraped
 * `instance` label to `exported_instance` unless the scrape job sets honor_labels: true.
 */
import type { AflInstance, TargetInfo } from '../contracts/hub.js';

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

const FAMILIES: [name: string, type: 'gauge' | 'counter', help: string, value: (i: AflInstance) => number][] = [
  ['covd_afl_execs_per_second', 'gauge', 'afl-fuzz executions per second of the instance (fuzzer_stats execs_per_sec, or plot_data when newer).', (i) => i.execs_per_sec],
  ['covd_afl_execs_total', 'counter', 'afl-fuzz executions of the instance (execs_done).', (i) => i.execs_done],
  ['covd_afl_corpus_count', 'gauge', 'Entries in the instance\'s queue (corpus_count).', (i) => i.corpus_count],
  ['covd_afl_corpus_found', 'gauge', 'Queue entries the instance found itself (corpus_found).', (i) => i.corpus_found],
  ['covd_afl_saved_crashes', 'gauge', 'Crashes the instance saved (saved_crashes).', (i) => i.saved_crashes],
  ['covd_afl_saved_hangs', 'gauge', 'Hangs the instance saved (saved_hangs).', (i) => i.saved_hangs],
  ['covd_afl_stability_percent', 'gauge', 'Stability of the instance, percent (stability).', (i) => i.stability],
  ['covd_afl_bitmap_coverage_percent', 'gauge', 'Edge map coverage of the instance, percent (bitmap_cvg).', (i) => i.bitmap_cvg],
  ['covd_afl_cycles_done', 'gauge', 'Queue cycles the instance completed (cycles_done).', (i) => i.cycles_done],
  ['covd_afl_last_find_timestamp_seconds', 'gauge', 'When the instance last found a new queue entry, seconds since the epoch; 0: never (last_find).', (i) => i.last_find],
  ['covd_afl_edges_found', 'gauge', 'Edges the instance found (edges_found).', (i) => i.edges_found],
  ['covd_afl_instance_alive', 'gauge', 'Whether the instance\'s afl-fuzz process runs (1) or not (0).', (i) => (i.alive ? 1 : 0)],
];

/** The exposition lines of the AFL++ families (none when no target has AFL++ statistics). */
export function renderAflMetrics(targets: TargetInfo[]): string[] {
  const rows = targets.flatMap((t) => (t.afl?.instances ?? []).map((i) => ({ t, i })));
  if (rows.length === 0) return [];
  const out: string[] = [];
  for (const [name, type, help, value] of FAMILIES) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const { t, i } of rows) {
      const v = value(i);
      out.push(`${name}{target="${esc(t.id)}",name="${esc(t.name)}",instance="${esc(i.name)}"} ${Number.isFinite(v) ? v : 'NaN'}`);
    }
  }
  return out;
}
