/**
 * HTTP routes for inputs and crashes (docs/protocol.md, "Inputs and crashes"), registered from
 * server.ts, which has already admitted the request (Host, Origin, token, rate) exactly as for
 * every other endpoint:
 *
 *   GET /api/targets/:id/pcs/:index      PcDetail: where the PC is, when first seen, its first input
 *   GET /api/targets/:id/inputs          InputSummary[] newest first: inputs that found new coverage
 *   GET /api/targets/:id/inputs/:hash    the bytes, application/octet-stream, as an attachment
 *   GET /api/targets/:id/crashes         { crashes: CrashGroup[] }
 *
 * A hash is only ever looked up among the inputs the target's own records name: nothing from
 * the URL reaches a file-system path, and an unknown or unkept input is a 404 that names no path.
 */
import type { Hub } from '../contracts/hub.js';
import { INPUT_HASH, type InputsProvider } from '../contracts/inputs.js';

/** What a route needs from server.ts's response helpers (bound to one request). */
export interface RouteIo {
  json(status: number, value: unknown): void;
  error(status: number, message: string): void;
  send(status: number, headers: [string, string][], body: Buffer): void;
  /** Must be called before answering asynchronously (uWS needs an abort handler). */
  later(): void;
}

const ROUTE = /^\/api\/targets\/([^/]+)\/(pcs|inputs|crashes)(?:\/([^/]+))?$/;

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

export class InputsRoutes {
  constructor(private readonly hub: Hub, private readonly provider: InputsProvider | undefined) {}

  /** Answers the request when the URL is one of these routes; false otherwise. */
  handle(url: string, io: RouteIo): boolean {
    const m = ROUTE.exec(url);
    if (!m) return false;
    const [, id, what, arg] = m as unknown as [string, string, 'pcs' | 'inputs' | 'crashes', string | undefined];
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id) || !this.hub.target(id)) {
      io.error(404, `no target ${id.slice(0, 64)}`);
      return true;
    }
    const p = this.provider;
    if (!p) {
      io.error(404, 'this daemon does not keep inputs or crashes');
      return true;
    }
    switch (what) {
      case 'pcs': {
        if (arg === undefined || !/^\d{1,10}$/.test(arg)) { io.error(400, 'the PC index must be a non-negative integer'); return true; }
        const d = p.pcDetail(id, Number(arg));
        if (!d) io.error(404, `target ${id} has no PC ${arg}`);
        else io.json(200, d);
        return true;
      }
      case 'inputs': {
        if (arg === undefined) {
          io.json(200, { id, inputs: p.inputs(id) ?? [] });
          return true;
        }
        if (!INPUT_HASH.test(arg)) { io.error(400, 'an input is named by its SHA-1: 40 lower-case hex digits'); return true; }
        io.later();
        void p.inputBytes(id, arg).then(
          (bytes) => {
            if (!bytes) return io.error(404, `target ${id} keeps no input ${arg}`);
            io.send(200, [
              ['Content-Type', 'application/octet-stream'],
              ['Content-Disposition', `attachment; filename="${arg}"`],
              ['Cache-Control', 'no-store'],
            ], Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
          },
          () => io.error(500, 'reading the input failed'),
        );
        return true;
      }
      case 'crashes': {
        if (arg !== undefined) { io.error(404, 'unknown API path'); return true; }
        io.json(200, { id, crashes: p.crashes(id) ?? [] });
        return true;
      }
    }
  }

  /** Prometheus families for /metrics: crashes by kind per target. */
  metrics(): string {
    if (!this.provider) return '';
    const names = new Map(this.hub.targets().map((t) => [t.id, t.name]));
    const lines = ['# HELP covd_target_crashes_total Crashes the agent recorded, by kind (signal, sanitizer, timeout, oom, leak, exit).', '# TYPE covd_target_crashes_total counter'];
    for (const c of this.provider.crashCounts()) {
      const name = names.get(c.id);
      if (name === undefined) continue;
      lines.push(`covd_target_crashes_total{target="${esc(c.id)}",name="${esc(name)}",kind="${c.kind}"} ${c.count}`);
    }
    return lines.join('\n') + '\n';
  }
}
