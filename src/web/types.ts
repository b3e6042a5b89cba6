/** Contract between the daemon (src/daemon) and the web server (src/web/server.ts). */
import type { Hub } from '../contracts/hub.js';
import type { InputsProvider } from '../contracts/inputs.js';
import type { CallGraphSource } from '../contracts/callgraph.js';
import type { Logger } from '../util/log.js';
import type { WebLimits } from './limits.js';

export interface WebServerOptions {
  hub: Hub;
  /** Default 127.0.0.1. Any non-loopback address requires `token`. */
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Required on every HTTP request and WebSocket upgrade when set (header, cookie or ?token=). */
  token?: string;
  /** Extra Host header values accepted besides the listen address, localhost and 127.0.0.1. */
  allowedHosts?: string[];
  /** Directory of the bundled browser client (dist/ui); defaults to the one next to the build. */
  uiDir?: string;
  log: Logger;
  /**
   * Keep retrying a fixed port this long (ms) when it is busy. uWebSockets.js binds without
   * SO_REUSEADDR, so after a restart the previous daemon's closing connections can hold the port
   * for up to about a minute. Default 0: fail at once.
   */
  listenRetryMs?: number;
  /** Paths matching one of these are library files, like those under the system's include directories. */
  exclude?: RegExp[];
  /** Overrides of the server's limits (src/web/limits.ts); defaults are safe for a loopback daemon. */
  limits?: Partial<WebLimits>;
  /** Inputs behind coverage and crashes (src/daemon/inputs.ts); without it those routes answer 404. */
  inputs?: InputsProvider;
  /**
   * More kinds of `b` for GET /api/targets/:a/compare/:b, by prefix: `b = <prefix>:<rest>` goes to
   * the resolver (src/web/compare-routes.ts SideResolver), e.g. the fleet's `node: (name, a) => ...`.
   */
  compareSides?: Record<string, import('./compare-routes.js').SideResolver>;
  /**
   * Where GET /api/targets/:id/blockers gets call graphs (the daemon's DwarfCallGraph, src/workers/callgraph.ts);
   * its owner destroys it, after close(). Without it, blockers answer `callGraph: "none"` with a `reason`.
   */
  callGraph?: CallGraphSource;
}

export interface WebServer {
  /** The port actually bound. */
  readonly port: number;
  readonly url: string;
  /** Counters behind /metrics (connected clients, messages and bytes sent, resyncs, refusals). */
  readonly stats: Readonly<WebStats>;
  close(): Promise<void>;
}

/** Implemented in src/web/server.ts. */
export type StartWebServer = (opts: WebServerOptions) => Promise<WebServer>;

export interface WebStats {
  clients: number;
  messagesSent: number;
  bytesSent: number;
  /** Fresh snapshots sent because a subscriber fell behind (backpressure) or asked (seq gap). */
  resyncs: number;
  /** Times a subscriber was unsubscribed for falling behind (send buffer over the bound). */
  behind: number;
  /** Clients disconnected by the server (protocol errors, rate limits, send buffer over the hard cap). */
  dropped: number;
  /** Requests and upgrades refused, by reason (host, origin, token, rate, connections, ...). */
  refused: Record<string, number>;
  httpRequests: number;
  /**
   * Large messages (source index, snapshot) are streamed to one socket at a time per slot, in
   * fragments written only when the socket's buffer is empty, so their memory is bounded whatever
   * the number of tabs: sockets waiting for a slot, sockets streaming now, the most ever streaming
   * at once, and the most bytes of large messages ever buffered in all sockets together.
   */
  bigSends?: { waiting: number; active: number; peakActive: number; peakBuffered: number; sent: number };
}
