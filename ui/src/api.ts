/**
 * The daemon's HTTP API as the page uses it (docs/protocol.md is the reference).
 * A token given to the page as ?token= is passed on to every request and to the WebSocket.
 */
import type { TargetInfo, HistorySample } from '../../src/contracts/hub.js';

function token(): string | null {
  return new URLSearchParams(location.search).get('token');
}

export function authQuery(extra = ''): string {
  const t = token();
  const parts = [t ? `token=${encodeURIComponent(t)}` : '', extra].filter(Boolean);
  return parts.length ? '?' + parts.join('&') : '';
}

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function get(path: string, query = ''): Promise<Response> {
  const r = await fetch(path + authQuery(query), { credentials: 'same-origin' });
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      const body = (await r.json()) as { error?: string };
      if (body.error) msg = body.error;
    } catch {
      /* not JSON */
    }
    throw new HttpError(r.status, msg);
  }
  return r;
}

/** The text of one source file of a target, by file index. */
export async function fetchSource(id: string, file: number): Promise<string> {
  return (await get(`/api/targets/${encodeURIComponent(id)}/source`, `file=${file}`)).text();
}

export async function fetchTargets(): Promise<TargetInfo[]> {
  return ((await (await get('/api/targets')).json()) as { targets: TargetInfo[] }).targets;
}

export async function fetchHistory(id: string): Promise<HistorySample[]> {
  return ((await (await get(`/api/targets/${encodeURIComponent(id)}/history`)).json()) as { samples: HistorySample[] }).samples;
}
