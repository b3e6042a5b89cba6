/** Hash routes: #/ (dashboard), #/target/ID, #/target/ID/compare/B (./compare.ts), #/target/ID/file/PATH[:LINE]. Deep links survive reloads. */
export type Route =
  | { view: 'dashboard' }
  | { view: 'target'; id: string; compare?: string }
  | { view: 'file'; id: string; path: string; line: number | null };

export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#/, '');
  const cm = /^\/target\/([^/]+)\/compare\/([^/]+)\/?$/.exec(h);
  if (cm) return { view: 'target', id: safeDecode(cm[1]!), compare: safeDecode(cm[2]!) };
  const m = /^\/target\/([^/]+)(?:\/file\/(.+))?\/?$/.exec(h);
  if (!m) return { view: 'dashboard' };
  const id = decodeURIComponent(m[1]!);
  if (m[2] === undefined) return { view: 'target', id };
  let rest = m[2];
  let line: number | null = null;
  const lm = /:(\d+)$/.exec(rest);
  if (lm) {
    line = Number(lm[1]);
    rest = rest.slice(0, lm.index);
  }
  const path = rest.split('/').map((s) => safeDecode(s)).join('/');
  return { view: 'file', id, path, line };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function targetHref(id: string): string {
  return `#/target/${encodeURIComponent(id)}`;
}

export function fileHref(id: string, path: string, line?: number | null): string {
  const p = path.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
  return `${targetHref(id)}/file/${p}${line ? ':' + line : ''}`;
}

/** The target page with its comparison against `b` open (a target id, `@<ms>`, `node:NAME`). */
export function compareHref(id: string, b: string): string {
  return `${targetHref(id)}/compare/${encodeURIComponent(b)}`;
}
