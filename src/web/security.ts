/**
 * Request admission: Host allow-list (against DNS rebinding), same-origin check, token, and
 * per-address limits. Pure functions and small classes, so they are tested without a server.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';

/** true for 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return isIP(h.slice(7)) === 4 && h.slice(7).startsWith('127.');
  return false;
}

/** Splits a Host header value into lower-case hostname (IPv6 without brackets) and port (or null). */
export function parseHost(value: string): { hostname: string; port: number | null } | null {
  const v = value.trim().toLowerCase();
  if (v === '' || v.length > 255) return null;
  let m = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/.exec(v);
  if (m) return { hostname: m[1]!, port: m[2] ? Number(m[2]) : null };
  m = /^([a-z0-9._-]+)(?::(\d{1,5}))?$/.exec(v);
  if (m) return { hostname: m[1]!, port: m[2] ? Number(m[2]) : null };
  return null;
}

export class HostPolicy {
  private readonly names = new Set<string>();
  private readonly withPort = new Set<string>();

  constructor(listenHost: string, private readonly port: number, extra: string[] = []) {
    for (const h of ['localhost', '127.0.0.1', '::1', listenHost]) this.add(h);
    for (const h of extra) this.add(h);
  }

  private add(entry: string) {
    // A bare IPv6 address (the listen address, --allow-host ::1) has no brackets to split on.
    const p = isIP(entry) === 6 ? { hostname: entry.toLowerCase(), port: null } : parseHost(entry);
    if (!p) return;
    // A wildcard listen address is never a valid Host: clients must name the machine.
    if (p.hostname === '0.0.0.0' || p.hostname === '::') return;
    if (p.port === null) this.names.add(p.hostname);
    else this.withPort.add(`${p.hostname}:${p.port}`);
  }

  /** The Host header must name an allowed host; a port, when given, must be ours (or listed with it). */
  allows(hostHeader: string): boolean {
    const p = parseHost(hostHeader);
    if (!p) return false;
    if (p.port !== null && this.withPort.has(`${p.hostname}:${p.port}`)) return true;
    if (!this.names.has(p.hostname)) return false;
    return p.port === null || p.port === this.port;
  }
}

/**
 * A browser sends Origin on WebSocket upgrades and cross-origin fetches. It must be the page we
 * served: http(s)://<the same Host>. Absent Origin means a non-browser client (curl, scripts).
 */
export function originAllowed(origin: string, hostHeader: string): boolean {
  if (origin === '') return true;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  return u.host.toLowerCase() === hostHeader.trim().toLowerCase();
}

export const TOKEN_COOKIE = 'covd_token';

/** Compares in constant time (hashing first so lengths do not leak either). */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

/** The token a request presents: Authorization: Bearer, the covd_token cookie, or ?token=. */
export function presentedToken(authorization: string, cookie: string, queryToken: string): string {
  const m = /^bearer\s+(\S+)$/i.exec(authorization.trim());
  if (m) return m[1]!;
  for (const part of cookie.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === TOKEN_COOKIE) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return '';
      }
    }
  }
  return queryToken;
}

/** Token buckets per address: `rate` requests per second, bursts up to `burst`. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly rate: number, private readonly burst: number, private readonly now = () => Date.now()) {}

  take(addr: string): boolean {
    if (!(this.rate > 0)) return true;
    const t = this.now();
    let b = this.buckets.get(addr);
    if (!b) {
      if (this.buckets.size > 10_000) this.sweep(t);
      b = { tokens: this.burst, at: t };
      this.buckets.set(addr, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
    b.at = t;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets addresses whose bucket has refilled (they would start full anyway). */
  private sweep(t: number) {
    for (const [k, b] of this.buckets) if (b.tokens + ((t - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(k);
  }
}

/** Open WebSocket connections per address. */
export class ConnectionCounter {
  private readonly counts = new Map<string, number>();
  constructor(readonly max: number) {}
  tryAdd(addr: string): boolean {
    const n = this.counts.get(addr) ?? 0;
    if (n >= this.max) return false;
    this.counts.set(addr, n + 1);
    return true;
  }
  remove(addr: string) {
    const n = (this.counts.get(addr) ?? 0) - 1;
    if (n <= 0) this.counts.delete(addr);
    else this.counts.set(addr, n);
  }
  get(addr: string): number {
    return this.counts.get(addr) ?? 0;
  }
}
