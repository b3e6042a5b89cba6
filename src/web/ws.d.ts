/**
 * Minimal types for the `ws` package (no @types/ws installed): only what covd's web tests and the
 * fan-out benchmark's comparison server use. Extend as needed; keep it truthful to ws 8.
 */
declare module 'ws' {
  import { EventEmitter } from 'node:events';
  import type { IncomingMessage, Server as HttpServer } from 'node:http';
  import type { Duplex } from 'node:stream';

  namespace WebSocket {
    interface ClientOptions {
      headers?: Record<string, string>;
      origin?: string;
      maxPayload?: number;
      perMessageDeflate?: boolean;
      handshakeTimeout?: number;
    }
    interface ServerOptions {
      port?: number;
      host?: string;
      server?: HttpServer;
      noServer?: boolean;
      path?: string;
      maxPayload?: number;
      perMessageDeflate?: boolean;
      clientTracking?: boolean;
    }
  }

  class WebSocket extends EventEmitter {
    static readonly OPEN: 1;
    constructor(url: string, options?: WebSocket.ClientOptions);
    readonly readyState: 0 | 1 | 2 | 3;
    readonly bufferedAmount: number;
    send(data: Uint8Array | string, options?: { binary?: boolean; compress?: boolean; fin?: boolean }, cb?: (err?: Error) => void): void;
    send(data: Uint8Array | string, cb?: (err?: Error) => void): void;
    close(code?: number, reason?: string): void;
    terminate(): void;
    pause(): void;
    resume(): void;
    on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): this;
    on(event: 'close', fn: (code: number, reason: Buffer) => void): this;
    on(event: 'error', fn: (err: Error) => void): this;
    on(event: 'open', fn: () => void): this;
    on(event: 'unexpected-response', fn: (req: unknown, res: IncomingMessage) => void): this;
    on(event: string, fn: (...args: any[]) => void): this;
    once(event: 'open', fn: () => void): this;
    once(event: 'error', fn: (err: Error) => void): this;
    once(event: 'unexpected-response', fn: (req: unknown, res: IncomingMessage) => void): this;
    once(event: 'close', fn: (code: number, reason: Buffer) => void): this;
    once(event: string, fn: (...args: any[]) => void): this;
  }

  class WebSocketServer extends EventEmitter {
    constructor(options: WebSocket.ServerOptions, callback?: () => void);
    readonly clients: Set<WebSocket>;
    address(): { port: number; address: string } | string;
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket, req: IncomingMessage) => void): void;
    close(cb?: (err?: Error) => void): void;
    on(event: 'connection', fn: (ws: WebSocket, req: IncomingMessage) => void): this;
    on(event: 'listening', fn: () => void): this;
    on(event: string, fn: (...args: any[]) => void): this;
  }

  export { WebSocket, WebSocketServer };
  export default WebSocket;
}
