/**
 * GET /api/targets/:id/source?file=N: one source file of a target, by its index in the target's
 * source index. The path comes only from hub.sourcePath(), never from the request, and is opened
 * under the rules of ./source.ts; refusals and I/O errors answer with a status and a reason.
 */
import { gzip } from 'node:zlib';
import type { HttpResponse } from 'uWebSockets.js';
import type { Hub } from '../contracts/hub.js';
import type { Logger } from '../util/log.js';
import { pickEncoding } from './assets.js';
import { GzipCache } from './gzip-cache.js';
import type { WebLimits } from './limits.js';
import { ensureAbortHandler, error, GZIP_FROM_BYTES, sendCompressible, write, type Ctx } from './respond.js';
import { openSource, readAtMost, SourceRefused } from './source.js';

export class SourceRoute {
  private readonly gzCache = new GzipCache();

  constructor(private readonly hub: Hub, private readonly limits: WebLimits, private readonly log: Logger) {}

  serve(res: HttpResponse, ctx: Ctx, id: string) {
    const { hub, limits } = this;
    const fileParam = ctx.query('file');
    if (!/^\d{1,9}$/.test(fileParam)) return error(res, ctx, 400, 'file must be a file index (a non-negative integer) from the target\'s source index');
    const file = Number(fileParam);
    if (!hub.target(id)) return error(res, ctx, 404, `no target ${id}`);
    const path = hub.sourcePath(id, file);
    // Fleet: a build no fuzzer here runs has its paths from another node, never served from this disk.
    if (path === undefined && hub.target(id)?.fleet?.remote) return error(res, ctx, 404, `target ${id} is fuzzed on other nodes only: its source files are not served by this daemon`);
    if (path === undefined) return error(res, ctx, 404, `file ${file} is not a source file named by the debug info of target ${id}`);
    ensureAbortHandler(res, ctx);
    void (async () => {
      let opened: Awaited<ReturnType<typeof openSource>> | undefined;
      try {
        opened = await openSource(path);
        const st = opened.st;
        if (st.size > limits.maxSourceBytes) return error(res, ctx, 413, `source file ${file} is ${st.size} bytes, over the ${limits.maxSourceBytes}-byte limit`);
        const etag = `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
        const headers: [string, string][] = [['ETag', etag], ['Cache-Control', 'no-cache'], ['X-Content-Type-Options', 'nosniff']];
        if (ctx.ifNoneMatch === etag) return write(res, ctx, 304, headers, '');
        const type = 'text/plain; charset=utf-8';
        const key = `${path}\0${st.size}\0${st.mtimeMs}`;
        const wantsGzip = st.size >= GZIP_FROM_BYTES && pickEncoding(ctx.acceptEncoding, { gzip: Buffer.alloc(0) }) === 'gzip';
        const cached = wantsGzip ? this.gzCache.get(key) : undefined;
        if (cached) return write(res, ctx, 200, [['Content-Type', type], ['Vary', 'Accept-Encoding'], ...headers, ['Content-Encoding', 'gzip']], cached);
        const body = await readAtMost(opened.fh, st.size, limits.maxSourceBytes);
        if (!body) return error(res, ctx, 413, `source file ${file} grew over the ${limits.maxSourceBytes}-byte limit`);
        if (!wantsGzip) return sendCompressible(res, ctx, 200, type, body, headers);
        ensureAbortHandler(res, ctx);
        gzip(body, (err, gz) => {
          const hs: [string, string][] = [['Content-Type', type], ['Vary', 'Accept-Encoding'], ...headers];
          if (err) return write(res, ctx, 200, hs, body);
          this.gzCache.set(key, gz);
          write(res, ctx, 200, [...hs, ['Content-Encoding', 'gzip']], gz);
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (err instanceof SourceRefused) error(res, ctx, err.status, `source file ${file} of target ${id} ${err.message}`);
        else if (code === 'ENOENT' || code === 'ENOTDIR') error(res, ctx, 404, `source file ${file} of target ${id} is gone from disk`);
        else if (code === 'ELOOP') error(res, ctx, 404, `source file ${file} of target ${id} cannot be resolved (a loop of symbolic links)`);
        else if (code === 'EACCES' || code === 'EPERM') error(res, ctx, 403, `source file ${file} of target ${id} is not readable by the daemon`);
        else {
          this.log.warn('reading source failed', { id, file, err });
          error(res, ctx, 500, `cannot read source file ${file}: ${code ?? 'error'}`);
        }
      } finally {
        await opened?.fh.close().catch(() => {});
      }
    })();
  }
}
