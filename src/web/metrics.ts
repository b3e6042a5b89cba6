/** GET /metrics in the Prometheus text exposition format (version 0.0.4). */
import type { Hub } from '../contracts/hub.js';
import type { WebStats } from './types.js';
import { renderAflMetrics } from '../afl/metrics.js';

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

export function renderMetrics(hub: Hub, web: WebStats, now = Date.now()): string {
  const out: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter', help: string, samples: [labels: string, value: number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) out.push(`${name}${labels} ${Number.isFinite(v) ? v : 'NaN'}`);
  };
  const targets = hub.targets();
  const lbl = (t: { id: string; name: string }) => `{target="${esc(t.id)}",name="${esc(t.name)}"}`;
  family('covd_target_runs_total', 'counter', 'Fuzzer runs (inputs executed).', targets.map((t) => [lbl(t), t.stats.nRuns]));
  family('covd_target_unique_runs_total', 'counter', 'Runs that found new coverage.', targets.map((t) => [lbl(t), t.stats.uniqueRuns]));
  family('covd_target_pcs_covered', 'gauge', 'Instrumented PCs seen so far.', targets.map((t) => [lbl(t), t.stats.covered]));
  family('covd_target_pcs_total', 'gauge', 'Instrumented PCs in the target.', targets.map((t) => [lbl(t), t.stats.pcsLen]));
  family('covd_target_runs_per_second', 'gauge', 'Runs per second over the last few seconds (0 once runs stop).', targets.map((t) => [lbl(t), t.stats.runsPerSec]));
  // One series per target and activity, 1 for the current one (the state-set idiom), so an alert
  // can say `covd_target_activity{activity="stopped"} == 1`.
  const acts = ['running', 'idle', 'stopped'] as const;
  const live = targets.filter((t) => t.state !== 'retired');
  family('covd_target_activity', 'gauge', 'Whether a fuzzer is running, idle (alive, no runs) or stopped (no live fuzzer).',
    live.flatMap((t) => acts.map((a) => [`{target="${esc(t.id)}",name="${esc(t.name)}",activity="${a}"}`, t.activity === a ? 1 : 0] as [string, number])));
  family('covd_target_seconds_since_new_coverage', 'gauge', 'Seconds since a PC was first seen (since the target appeared when none yet).',
    targets.map((t) => [lbl(t), Math.max(0, (now - (t.stats.lastNewAt ?? t.createdAt)) / 1000)]));
  const states = ['loading', 'ready', 'failed', 'retired'] as const;
  family('covd_targets', 'gauge', 'Targets by state.', states.map((s) => [`{state="${s}"}`, targets.filter((t) => t.state === s).length]));
  family('covd_web_clients', 'gauge', 'Connected WebSocket clients.', [['', web.clients]]);
  family('covd_web_messages_sent_total', 'counter', 'WebSocket messages sent (a publish counts once per subscriber).', [['', web.messagesSent]]);
  family('covd_web_bytes_sent_total', 'counter', 'WebSocket payload bytes sent.', [['', web.bytesSent]]);
  family('covd_web_resyncs_total', 'counter', 'Fresh snapshots sent to clients that fell behind or asked.', [['', web.resyncs]]);
  family('covd_web_behind_total', 'counter', 'Times a subscriber fell behind (send buffer over the bound) and was switched to a fresh snapshot.', [['', web.behind]]);
  family('covd_web_dropped_clients_total', 'counter', 'Clients disconnected by the server.', [['', web.dropped]]);
  family('covd_web_http_requests_total', 'counter', 'HTTP requests handled.', [['', web.httpRequests]]);
  family('covd_web_refused_total', 'counter', 'Requests, upgrades and messages refused, by reason.', Object.entries(web.refused).map(([r, n]) => [`{reason="${esc(r)}"}`, n]));
  out.push(...renderAflMetrics(targets)); // AFL++ instances (src/afl/metrics.ts)
  return out.join('\n') + '\n';
}
