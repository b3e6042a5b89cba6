/**
 * The fleet's settings (`covd serve --nats ...`), resolved like every other setting of
 * src/daemon/config.ts: flag, then environment, then config file key, then default.
 *
 *   flag               env                 file key     default
 *   --nats URL[,URL]   COVD_NATS (a,b)     nats (list)  none: no fleet (the flag repeats, or takes a,b)
 *   --node-name NAME   COVD_NODE_NAME      nodeName     the host name (characters outside [A-Za-z0-9_-] become '-')
 *   --nats-creds FILE  COVD_NATS_CREDS     natsCreds    none (a NATS .creds file: user JWT and NKey seed)
 *   --nats-token T     COVD_NATS_TOKEN     natsToken    none
 *   --nats-tls-ca FILE COVD_NATS_TLS_CA    natsTlsCa    none (the system's CAs when a tls:// URL is given)
 *   --nats-prefix P    COVD_NATS_PREFIX    natsPrefix   covd (subjects P.*, stream P_coverage, buckets P_nodes, P_builds)
 *
 * Credentials never reach a log line: URLs are shown with any user:password removed (redactUrl).
 */
import { hostname } from 'node:os';
import { ConfigError } from '../contracts/errors.js';
import type { Setting } from '../daemon/config.js';

export interface FleetConfig {
  /** NATS servers; absent or empty: this daemon is not in a fleet. */
  nats?: string[];
  nodeName?: string;
  natsCreds?: string;
  natsToken?: string;
  natsTlsCa?: string;
  natsPrefix?: string;
}

/** Node names and prefixes are subject tokens and bucket names: this alphabet only. */
export const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const PREFIX_RE = /^[A-Za-z0-9_-]{1,32}$/;
export const DEFAULT_PREFIX = 'covd';

/** The host name as a node name: characters outside the alphabet replaced by '-'. */
export function defaultNodeName(host = hostname()): string {
  const n = host.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64);
  return NAME_RE.test(n) ? n : 'covd';
}

/** A server URL as the client takes it: nats://, tls://, ws(s):// or host[:port]; no spaces, no commas. */
function checkServers(v: unknown): string[] {
  return (v as string[]).map((u) => {
    const s = u.trim();
    if (!s || /[\s,]/.test(s) || !/^((nats|tls|ws|wss):\/\/)?[^/?#\s]+\/?$/.test(s)) {
      throw new ConfigError(`nats: '${redactUrl(s)}' is not a NATS server URL (nats://host:4222, tls://host:4222 or host:port)`);
    }
    return s;
  });
}

const checkName = (what: string, re: RegExp, max: number) => (v: unknown) => {
  if (typeof v !== 'string' || !re.test(v)) throw new ConfigError(`${what} must be 1 to ${max} characters of A-Z a-z 0-9 _ -, got '${String(v)}'`);
  return v;
};

/** The fleet's rows of the settings table (src/daemon/config.ts SETTINGS). */
export const FLEET_SETTINGS = [
  { key: 'nats', flag: 'nats', env: 'COVD_NATS', kind: 'urls', def: () => undefined, arg: 'URL[,URL]', help: 'NATS servers to share coverage with other daemons through JetStream (docs/deployment.md); without it the daemon is on its own', defText: 'none', check: checkServers },
  { key: 'nodeName', flag: 'node-name', env: 'COVD_NODE_NAME', kind: 'string', def: () => defaultNodeName(), arg: 'NAME', help: "this daemon's name in the fleet, unique per daemon: A-Z a-z 0-9 _ -", defText: 'the host name', check: checkName('node name', NAME_RE, 64) },
  { key: 'natsCreds', flag: 'nats-creds', env: 'COVD_NATS_CREDS', kind: 'path', def: () => undefined, arg: 'FILE', help: 'NATS credentials file (user JWT and NKey seed)', defText: 'none' },
  { key: 'natsToken', flag: 'nats-token', env: 'COVD_NATS_TOKEN', kind: 'string', def: () => undefined, arg: 'T', help: 'NATS token (not with --nats-creds)', defText: 'none' },
  { key: 'natsTlsCa', flag: 'nats-tls-ca', env: 'COVD_NATS_TLS_CA', kind: 'path', def: () => undefined, arg: 'FILE', help: 'CA certificates that sign the NATS servers\' certificates', defText: 'the system\'s' },
  { key: 'natsPrefix', flag: 'nats-prefix', env: 'COVD_NATS_PREFIX', kind: 'string', def: () => DEFAULT_PREFIX, arg: 'P', help: 'prefix of the fleet\'s subjects, stream and buckets', check: checkName('nats prefix', PREFIX_RE, 32) },
] as const satisfies readonly Setting[];

/** Settings that take effect only after a restart (SIGHUP says so). */
export const FLEET_RESTART_KEYS = ['nats', 'nodeName', 'natsCreds', 'natsToken', 'natsTlsCa', 'natsPrefix'] as const;

/** Rules across settings, once all are read. */
export function checkFleetConfig(c: FleetConfig): void {
  if (c.natsCreds !== undefined && c.natsToken !== undefined) throw new ConfigError('give either a NATS credentials file or a NATS token, not both');
}

/** A server URL without user and password, for logs and `covd fleet`. */
export function redactUrl(u: string): string {
  return u.replace(/^([a-z]+:\/\/)?[^@/]*@/i, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

