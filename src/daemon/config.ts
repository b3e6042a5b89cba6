/**
 * Daemon configuration, from one declarative table (SETTINGS): each setting's name, type,
 * default, flag, environment variable, config-file key and help text. Flags, environment,
 * config file, `covd serve --help` and validation all come from it. The first source that sets
 * a value wins: command-line flag, then environment, then the JSON config file, then the
 * default. SIGHUP re-reads environment and file; flags given at start keep winning.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, UsageError } from '../contracts/errors.js';
import { isLevel, type Level } from '../util/log.js';
import { defaultSocketPath, defaultStateDir } from '../util/paths.js';
import { FLEET_SETTINGS, checkFleetConfig, type FleetConfig } from '../fleet/config.js';

/** The fleet's settings (FleetConfig: --nats, --node-name, ...) are in src/fleet/config.ts. */
export interface DaemonConfig extends FleetConfig {
  host: string;
  port: number;
  socket: string;
  stateDir: string;
  watch: string[];
  logLevel: Level;
  token?: string;
  allowedHosts: string[];
  /** Retired targets are deleted this many days after retirement. */
  retireDays: number;
  /** At most this many retired targets are kept per executable (oldest deleted first). */
  keepRetired: number;
  /** Memory the daemon may use for targets, MiB; the largest pcs_len accepted follows from it (maxPcsFor). */
  memoryMb?: number;
  /** Symbolizing one executable is abandoned after this many seconds (its target fails; others go on). */
  symbolizeTimeout?: number;
  /** A target whose writer is alive but made no runs for this many seconds is 'idle'. */
  idleSeconds?: number;
  /** Regular expressions: source paths matching one are library code (besides system headers). */
  exclude?: string[];
  /** The config file actually read, if any. */
  configFile?: string;
}

/**
 * What one PC costs the daemon at its peak, in bytes: the PC list read twice (dispatch and the
 * coverage thread), the source index (four u32 per PC, once in a symbolizer thread and once
 * merged), first-seen times, the store's snapshot copies, and the symbolizer's sort space.
 * Measured near 64 B/PC when a 2^27-PC file was accepted; twice that leaves room for the rest.
 */
export const BYTES_PER_PC = 128;
export const DEFAULT_MEMORY_MB = 2048;
export const DEFAULT_SYMBOLIZE_TIMEOUT_S = 600;

/** The largest pcs_len a daemon with this memory budget accepts. */
export function maxPcsFor(memoryMb: number): number {
  return Math.max(1, Math.floor((memoryMb * 2 ** 20) / BYTES_PER_PC));
}

export const DEFAULT_PORT = 8317;

/** `urls`: a list whose flag also takes a,b and whose variable is split at commas (URLs hold colons). */
type Kind = 'string' | 'int' | 'path' | 'paths' | 'strings' | 'regexes' | 'level' | 'urls';

export interface Setting {
  /** The DaemonConfig field, and the config file's key. */
  key: Exclude<keyof DaemonConfig, 'configFile'>;
  flag: string;
  short?: string;
  env: string;
  kind: Kind;
  /** Inclusive bounds of an int. */
  range?: [number, number];
  /** The default, computed from the environment when it depends on it; undefined: unset. */
  def: (env: NodeJS.ProcessEnv) => unknown;
  /** For --help: the argument's name and what the setting does (the default is added). */
  arg: string;
  help: string;
  /** How --help states the default, when not the value itself. */
  defText?: string;
  /** Checks (and may normalise) the value, throwing ConfigError. */
  check?: (value: unknown) => unknown;
}

/** Every setting of `covd serve`, in --help order. */
export const SETTINGS: readonly Setting[] = [
  { key: 'host', flag: 'host', env: 'COVD_HOST', kind: 'string', def: () => '127.0.0.1', arg: 'ADDR', help: 'listen address (off loopback needs --token)' },
  { key: 'port', flag: 'port', short: 'p', env: 'COVD_PORT', kind: 'int', range: [0, 65535], def: () => DEFAULT_PORT, arg: 'N', help: 'HTTP port, 0 = any free port' },
  { key: 'socket', flag: 'socket', env: 'COVD_SOCKET', kind: 'path', def: (env) => defaultSocketPath(env), arg: 'PATH', help: 'control socket', defText: '$COVD_DIR/covd.sock' },
  { key: 'stateDir', flag: 'state-dir', env: 'COVD_STATE_DIR', kind: 'path', def: (env) => defaultStateDir(env), arg: 'DIR', help: 'persistent state', defText: '$XDG_STATE_HOME/covd' },
  { key: 'watch', flag: 'watch', short: 'w', env: 'COVD_WATCH', kind: 'paths', def: () => [], arg: 'DIR', help: 'discover coverage files under DIR/v/ (repeatable; the variable takes a:b)', defText: 'none' },
  { key: 'logLevel', flag: 'log-level', env: 'COVD_LOG_LEVEL', kind: 'level', def: () => 'info', arg: 'LEVEL', help: 'trace|debug|info|warn|error|fatal|silent' },
  { key: 'token', flag: 'token', env: 'COVD_TOKEN', kind: 'string', def: () => undefined, arg: 'TOKEN', help: 'require this token on every HTTP request', defText: 'none' },
  { key: 'allowedHosts', flag: 'allow-host', env: 'COVD_ALLOWED_HOSTS', kind: 'strings', def: () => [], arg: 'NAME', help: 'extra accepted Host header value (repeatable; the variable takes a:b)', defText: 'none' },
  { key: 'retireDays', flag: 'retire-days', env: 'COVD_RETIRE_DAYS', kind: 'int', range: [0, 36500], def: () => 30, arg: 'N', help: 'delete retired targets N days after retirement' },
  { key: 'keepRetired', flag: 'keep-retired', env: 'COVD_KEEP_RETIRED', kind: 'int', range: [0, 100000], def: () => 5, arg: 'N', help: 'keep at most N retired targets per executable' },
  { key: 'memoryMb', flag: 'memory-mb', env: 'COVD_MEMORY_MB', kind: 'int', range: [16, 1 << 24], def: () => DEFAULT_MEMORY_MB, arg: 'N', help: 'memory budget for targets, MiB: a coverage file with more than N*8192 PCs is refused before anything is allocated' },
  { key: 'symbolizeTimeout', flag: 'symbolize-timeout', env: 'COVD_SYMBOLIZE_TIMEOUT', kind: 'int', range: [1, 86400], def: () => DEFAULT_SYMBOLIZE_TIMEOUT_S, arg: 'S', help: 'give up symbolizing one executable after S seconds; its target fails and the others go on' },
  { key: 'exclude', flag: 'exclude', env: 'COVD_EXCLUDE', kind: 'regexes', def: () => [], arg: 'REGEX', help: 'source paths matching REGEX are library code, shown apart and left out of lcov (repeatable, like llvm-cov -ignore-filename-regex; the variable takes a:b)', defText: 'none' },
  { key: 'idleSeconds', flag: 'idle-seconds', env: 'COVD_IDLE_SECONDS', kind: 'int', range: [1, 86400], def: () => 10, arg: 'S', help: 'a target whose fuzzer is alive but made no runs for S seconds is idle; one with no live fuzzer, stopped' },
  ...FLEET_SETTINGS,
];

const CONFIG_FLAG = { flag: 'config', short: 'c', env: 'COVD_CONFIG' } as const;

type FlagSpec = { type: 'string'; short?: string; multiple?: boolean };
export const serveOptions: Record<string, FlagSpec> = Object.fromEntries([
  ...SETTINGS.map((s) => [s.flag, { type: 'string', ...(s.short ? { short: s.short } : {}), ...(s.kind === 'paths' || s.kind === 'strings' || s.kind === 'regexes' || s.kind === 'urls' ? { multiple: true } : {}) }] as const),
  [CONFIG_FLAG.flag, { type: 'string', short: CONFIG_FLAG.short }],
]);

export type ServeFlags = Record<string, string | string[] | undefined>;

export function parseServeFlags(argv: string[]): ServeFlags {
  try {
    return parseArgs({ args: argv, options: serveOptions, allowPositionals: false, strict: true }).values as ServeFlags;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The JSON type each kind must have in the config file. */
const FILE_TYPE: Record<Kind, 'string' | 'integer' | 'strings'> = { string: 'string', int: 'integer', path: 'string', paths: 'strings', strings: 'strings', regexes: 'strings', level: 'string', urls: 'strings' };

function readConfigFile(path: string, required: boolean): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`config file ${path} must hold a JSON object`);
  for (const [k, val] of Object.entries(v)) {
    const setting = SETTINGS.find((s) => s.key === k);
    if (!setting) throw new ConfigError(`config file ${path}: unknown key '${k}'`);
    const want = FILE_TYPE[setting.kind];
    const ok = want === 'strings' ? Array.isArray(val) && val.every((x) => typeof x === 'string') : want === 'integer' ? Number.isInteger(val) : typeof val === 'string';
    if (!ok) throw new ConfigError(`config file ${path}: '${k}' must be ${want === 'strings' ? 'a list of strings' : `a${want === 'integer' ? 'n integer' : ' string'}`}, got ${JSON.stringify(val)}`);
  }
  return v as Record<string, unknown>;
}

/** One setting's value from its first source, checked and normalised. */
function valueOf(s: Setting, flags: ServeFlags, env: NodeJS.ProcessEnv, file: Record<string, unknown>): unknown {
  const fromFlag = flags[s.flag];
  const fromEnv = env[s.env] || undefined;
  const list = s.kind === 'paths' || s.kind === 'strings' || s.kind === 'regexes' || s.kind === 'urls';
  let raw: unknown;
  if (s.kind === 'urls') raw = (Array.isArray(fromFlag) && fromFlag.length ? fromFlag.flatMap((f) => f.split(',')).filter(Boolean) : undefined) ?? fromEnv?.split(',').filter(Boolean) ?? file[s.key];
  else if (list) raw = (Array.isArray(fromFlag) && fromFlag.length ? fromFlag : undefined) ?? fromEnv?.split(':').filter(Boolean) ?? file[s.key];
  else raw = fromFlag ?? fromEnv ?? file[s.key];
  if (raw === undefined) raw = s.def(env);
  if (raw === undefined) return undefined;
  switch (s.kind) {
    case 'int': {
      const n = typeof raw === 'number' ? raw : Number(raw);
      const [min, max] = s.range!;
      if (raw === '' || !Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${s.flag} must be an integer from ${min} to ${max}, got '${String(raw)}'`);
      return n;
    }
    case 'level':
      if (!isLevel(String(raw))) throw new ConfigError(`log level must be one of trace, debug, info, warn, error, fatal, silent; got '${String(raw)}'`);
      return raw;
    case 'path':
      return resolve(String(raw));
    case 'paths':
      return (raw as string[]).map((p) => resolve(p));
    case 'regexes':
      for (const r of raw as string[]) {
        try { new RegExp(r); } catch (err) { throw new ConfigError(`${s.flag}: '${r}' is not a regular expression (${(err as Error).message})`); }
      }
      return raw;
    default:
      return raw;
  }
}

/** Resolves the configuration. Throws ConfigError (a UsageError: exit 2) naming the bad setting. */
export function loadConfig(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const explicit = (flags[CONFIG_FLAG.flag] as string | undefined) ?? env[CONFIG_FLAG.env];
  const defaultFile = join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'covd', 'config.json');
  const filePath = explicit ? resolve(explicit) : defaultFile;
  const read = readConfigFile(filePath, explicit !== undefined);
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const v = valueOf(s, flags, env, read ?? {});
    if (v !== undefined) out[s.key] = s.check ? s.check(v) : v;
  }
  checkFleetConfig(out as FleetConfig);
  if (read) out.configFile = filePath;
  return out as unknown as DaemonConfig;
}

function usageLines(): string {
  const rows = SETTINGS.map((s) => {
    const name = `${s.short ? `-${s.short}, ` : ''}--${s.flag} ${s.arg}`;
    const d = s.defText ?? String(s.def({}));
    return { name, text: `${s.help} (${s.env}; default ${d})` };
  });
  rows.push({ name: `-${CONFIG_FLAG.short}, --${CONFIG_FLAG.flag} FILE`, text: `JSON config file with keys ${SETTINGS.map((s) => s.key).join(', ')} (${CONFIG_FLAG.env}; default $XDG_CONFIG_HOME/covd/config.json)` });
  const width = Math.max(...rows.map((r) => r.name.length)) + 2;
  const wrap = (t: string) => {
    const out: string[] = [];
    let line = '';
    for (const w of t.split(' ')) {
      if (line && line.length + 1 + w.length > 96 - width) { out.push(line); line = w; } else line = line ? `${line} ${w}` : w;
    }
    if (line) out.push(line);
    return out;
  };
  return rows.map((r) => wrap(r.text).map((l, i) => `  ${(i === 0 ? r.name : '').padEnd(width)}${l}`).join('\n')).join('\n');
}

export const serveUsage = `usage: covd serve [options]

Runs the daemon: the browser UI over HTTP/WebSocket, the control socket agents and
\`covd add/list/status/remove\` talk to, and the coverage thread. Stop it with SIGTERM or
Ctrl-C; SIGHUP re-reads the configuration (log level, watched directories, retirement).

options (each also settable by environment variable or config file key; flags win):
${usageLines()}

Logs are pino JSON lines on stdout (COVD_LOG_FORMAT=pretty, or pipe through pino-pretty, for
humans). The line {"msg":"covd ready",...} says the daemon is serving.`;
