/**
 * HTTP routes for inputs and crashes (docs/protocol.md, "Inputs and crashes"), registered from
 * server.ts, which has already admitted the request (Host, Origin, token, rate) exactly as for
 * every other endpoint:
 *
 *   GET /api/targets/:id/pcs/:index      PcDetail: where the PC is, when first seen, its first input, the code inlined there
 *   GET /api/targets/:id/pcs             InlinedPcs: every PC in inlined code, its inlined function and call site
 *   GET /api/targets/:id/inputs          InputSummary[] newest first: inputs that found new coverage
 *   GET /api/targets/:id/inputs/:hash    the bytes, application/octet-stream, as an attachment
 *   GET /api/targets/:id/crashes         { crashes: CrashGroup[] } (libFuzzer's and afl-fuzz's)
 *   GET /api/targets/:id/afl/plot, .../corpus   handed to src/web/engine-routes.ts
 *
 * A hash is only ever looked up among the inputs the target's own records name: nothing from
 * the URL reaches a file-system path, and an unknown or unkept input is a 404 that names no path.
 */
import type { Hub } from '../contracts/hub.js';
import { INPUT_HASH, type InputsProvider, type PcDetail } from '../contracts/inputs.js';
import { NONE, type SourceIndex } from '../contracts/source-index.js';
import { sourcePathOf } from '../contracts/paths.js';
import { EngineRoutes } from './engine-routes.js';

/** Where a PC's code was inlined from (GET .../pcs/:index, `inlined`). */
export interface PcInlined {
  /** The innermost inlined function (llvm-symbolizer --inlines' first frame), demangled. */
  function: string;
  linkageName?: string;
  /** The function the PC physically belongs to (the outermost frame; PcDetail.function). */
  into: string | null;
  /** The call site in `into` (the outermost frame's location): normalised path and line, null when unknown. */
  file: string | null;
  line: number | null;
}

/**
 * GET .../pcs: the PCs in inlined code, in PC order, with in step the innermost inlined
 * function's index in the source index's functions, and the call site's file index and line
 * (NONE / 0 when unknown). `resolved` false: the index has no inlined data (stored before it
 * was kept); the daemon resolves it again when the fuzzer next announces itself.
 */
export interface InlinedPcs {
  id: string;
  buildId: string | null;
  pcsLen: number;
  /** The index's numbers of functions and files: a client holding another index (the one before the second pass) sees them differ. */
  nFunctions: number;
  nFiles: number;
  resolved: boolean;
  pcs: number[];
  function: number[];
  callFile: number[];
  callLine: number[];
}

/** The code inlined at PC `pc` of an index, or null when it is none (or not known). */
export function pcInlined(ix: SourceIndex, pc: number): PcInlined | null {
  const g = ix.pcInlined?.[pc] ?? NONE;
  if (g === NONE || g >= ix.functions.names.length) return null;
  const f = ix.pcFunction[pc] ?? NONE, cf = ix.pcCallFile?.[pc] ?? NONE, cl = ix.pcCallLine?.[pc] ?? 0;
  const link = ix.functions.linkageNames?.[g];
  return {
    function: ix.functions.names[g]!,
    ...(link ? { linkageName: link } : {}),
    into: f === NONE ? null : ix.functions.names[f] ?? null,
    file: cf === NONE ? null : sourcePathOf(ix, cf) || null,
    line: cl || null,
  };
}

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
  /** GET .../afl/plot and .../corpus (src/web/engine-routes.ts), answered through these routes, which server.ts registers. */
  private readonly engine: EngineRoutes;

  constructor(private readonly hub: Hub, private readonly provider: InputsProvider | undefined) {
    this.engine = new EngineRoutes(hub, provider);
  }

  /** Answers the request when the URL is one of these routes; false otherwise. */
  handle(url: string, io: RouteIo): boolean {
    if (this.engine.handle(url, io)) return true;
    const m = ROUTE.exec(url);
    if (!m) return false;
    const [, id, what, arg] = m as unknown as [string, string, 'pcs' | 'inputs' | 'crashes', string | undefined];
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id) || !this.hub.target(id)) {
      io.error(404, `no target ${id.slice(0, 64)}`);
      return true;
    }
    if (what === 'pcs' && arg === undefined) {
      const t = this.hub.target(id)!;
      const ix = t.index;
      if (!ix) { io.error(409, `target ${id} has no source index yet (state ${t.state})`); return true; }
      const out: InlinedPcs = { id, buildId: ix.buildId, pcsLen: ix.pcFile.length, nFunctions: ix.functions.names.length, nFiles: ix.files.length, resolved: ix.pcInlined !== undefined, pcs: [], function: [], callFile: [], callLine: [] };
      const inl = ix.pcInlined;
      if (inl) {
        for (let pc = 0; pc < inl.length; pc++) {
          const g = inl[pc]!;
          if (g === NONE) continue;
          out.pcs.push(pc); out.function.push(g);
          out.callFile.push(ix.pcCallFile?.[pc] ?? NONE); out.callLine.push(ix.pcCallLine?.[pc] ?? 0);
        }
      }
      io.json(200, out);
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
        else {
          const ix = this.hub.target(id)?.index;
          const inlined = ix && d.index < ix.pcFile.length ? pcInlined(ix, d.index) : null;
          io.json(200, { ...d, inlined } satisfies PcDetail & { inlined: PcInlined | null });
        }
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
