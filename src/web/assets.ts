/**
 * The bundled browser client (dist/ui), read once at start into an in-memory table keyed by URL
 * path. Requests are looked up in the table by exact name, so no request path ever reaches the file
 * system. Each entry is precompressed (brotli, gzip) and carries a strong ETag of its content.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { brotliCompressSync, constants as zc, gzipSync } from 'node:zlib';

export interface Asset {
  /** URL path, e.g. '/main.js'. */
  path: string;
  type: string;
  etag: string;
  identity: Buffer;
  gzip?: Buffer;
  br?: Buffer;
}

const types: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  map: 'application/json; charset=utf-8',
  json: 'application/json; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  woff2: 'font/woff2',
  txt: 'text/plain; charset=utf-8',
};

export function contentType(name: string): string {
  const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
  return types[ext] ?? 'application/octet-stream';
}

/** Files above this size are not loaded (the bundle is a few hundred KiB; this guards against surprises). */
const MAX_ASSET = 32 * 1024 * 1024;

/** Reads every regular file under dir (recursively). A missing dir gives an empty table. */
export function loadAssets(dir: string): Map<string, Asset> {
  const table = new Map<string, Asset>();
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      if (name.startsWith('.')) continue;
      const full = join(d, name);
      const st = statSync(full, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(full);
      else if (st.isFile() && st.size <= MAX_ASSET) {
        const path = '/' + relative(dir, full).split(sep).join('/');
        table.set(path, makeAsset(path, readFileSync(full)));
      }
    }
  };
  walk(dir);
  const index = table.get('/index.html');
  if (index) table.set('/', { ...index, path: '/' });
  return table;
}

export function makeAsset(path: string, body: Buffer): Asset {
  const type = contentType(path === '/' ? 'index.html' : path);
  const etag = '"' + createHash('sha256').update(body).digest('base64url').slice(0, 22) + '"';
  const asset: Asset = { path, type, etag, identity: body };
  const compressible = /^(text\/|application\/json|image\/svg)/.test(type);
  if (compressible && body.length > 256) {
    const gz = gzipSync(body, { level: 9 });
    if (gz.length < body.length) asset.gzip = gz;
    // Quality 11 takes seconds on a 1 MiB bundle plus map at start-up; 6 is within a few percent.
    const br = brotliCompressSync(body, { params: { [zc.BROTLI_PARAM_QUALITY]: body.length <= 64 * 1024 ? 11 : 6, [zc.BROTLI_PARAM_SIZE_HINT]: body.length } });
    if (br.length < body.length) asset.br = br;
  }
  return asset;
}

/** Picks the smallest encoding the client accepts (q=0 excludes). */
export function pickEncoding(acceptEncoding: string, asset: Pick<Asset, 'gzip' | 'br'>): 'br' | 'gzip' | 'identity' {
  const accepted = new Set<string>();
  for (const part of acceptEncoding.toLowerCase().split(',')) {
    const [name, ...params] = part.trim().split(';');
    if (!name) continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q && Number(q.slice(2)) === 0) continue;
    accepted.add(name.trim());
  }
  if (asset.br && (accepted.has('br') || accepted.has('*'))) return 'br';
  if (asset.gzip && (accepted.has('gzip') || accepted.has('*'))) return 'gzip';
  return 'identity';
}
