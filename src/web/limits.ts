/** Tunable limits of the web server; every one has a safe default. */
export interface WebLimits {
  /** Largest WebSocket message a client may send (bytes); bigger frames close the connection. */
  maxClientMessage: number;
  /** Client messages per second per connection (burst twice that) before it is closed. */
  clientMessageRate: number;
  /** Open WebSocket connections per remote address, and in all. */
  maxConnectionsPerAddress: number;
  maxConnections: number;
  /** HTTP requests per second per remote address (burst twice that); over it: 429. */
  httpRate: number;
  /**
   * With a token: requests per second per remote address that present no valid token (burst
   * twice that), counted apart from httpRate; over it: 429 instead of 401.
   */
  unauthenticatedHttpRate: number;
  /** Largest source file served (bytes); bigger: 413. */
  maxSourceBytes: number;
  /**
   * Backpressure: a subscriber whose send buffer exceeds this many bytes (beyond the last snapshot
   * it was sent) is unsubscribed and later sent one fresh snapshot instead of the backlog.
   */
  resyncAfterBytes: number;
  /** A stale subscriber is resynchronised once its send buffer drains below this. */
  resyncLowWater: number;
  /** Hard cap on a socket's send buffer; a client this far behind is disconnected. */
  maxBackpressure: number;
  /** Deltas kept per target so a reconnecting client can resume without a snapshot. */
  resumeDeltas: number;
  /** Seconds without traffic before a WebSocket is closed (pings are sent automatically). */
  idleTimeout: number;
}

export const defaultLimits: WebLimits = {
  maxClientMessage: 4096,
  clientMessageRate: 50,
  maxConnectionsPerAddress: 1024,
  maxConnections: 16384,
  httpRate: 200,
  unauthenticatedHttpRate: 50,
  // The sqlite3.c amalgamation alone is ~9.5 MB; the page renders only what is visible.
  maxSourceBytes: 32 * 1024 * 1024,
  resyncAfterBytes: 1024 * 1024,
  resyncLowWater: 64 * 1024,
  maxBackpressure: 256 * 1024 * 1024,
  resumeDeltas: 256,
  idleTimeout: 120,
};
