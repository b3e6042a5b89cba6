/**
 * Daemon configuration: command-line flags, then environment, then an optional JSON config
 * file, then defaults (first one that sets a value wins). SIGHUP re-reads environment and file;
 * flags given at start keep winning.
 *
 *   flag               env                 file key            default
 *   --host             COVD_HOST           host                127.0.0.1
 *   --port             COVD_PORT           port                8317
 *   --socket           COVD_SOCKET         socket              <coverage dir>/covd.sock
 *   --state-dir        COVD_STATE_DIR      stateDir            $XDG_STATE_HOME/covd
 *   --watch (repeat)   COVD_WATCH (a:b)    watch (array)       none
 *   --log-level        COVD_LOG_LEVEL      logLevel            info
 *   --token            COVD_TOKEN          token               none (required off loopback)
 *   --allow-host (rep) COVD_ALLOWED_HOSTS  allowedHosts        none
 *   --retire-days      COVD_RETIRE_DAYS    retireDays          30
 *   --keep-retired     COVD_KEEP_RETIRED   keepRetired         5
 *   --memory-mb        COVD_MEMORY_MB      memoryMb            2048 (sets the largest pcs_len accepted)
 *   --symbolize-timeout COVD_SYMBOLIZE_TIMEOUT symbolizeTimeout 600 (seconds per executable)
 *   --idle-seconds     COVD_IDLE_SECONDS   idleSeconds         10 (a live fuzzer without runs this long is idle)
 *   --config           COVD_CONFIG         -                   $XDG_CONFIG_HOME/covd/config.json (if present)
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, UsageError } from '../contracts/errors.js';
import { isLevel, type Level } from '../util/log.js';
import { defaultSocketPath, defaultStateDir } from '../util/paths.js';

export interface DaemonConfig {
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

export const serveOptions = {
  host: { type: 'string' },
  port: { type: 'string', short: 'p' },
  socket: { type: 'string' },
  'state-dir': { type: 'string' },
  watch: { type: 'string', short: 'w', multiple: true },
  'log-level': { type: 'string' },
  token: { type: 'string' },
  'allow-host': { type: 'string', multiple: true },
  'retire-days': { type: 'string' },
  'keep-retired': { type: 'string' },
  'memory-mb': { type: 'string' },
  'symbolize-timeout': { type: 'string' },
  'idle-seconds': { type: 'string' },
  config: { type: 'string', short: 'c' },
} as const;

export type ServeFlags = ReturnType<typeof parseServeFlags>;

export function parseServeFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: serveOptions, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

type FileConfig = Partial<Omit<DaemonConfig, 'configFile'>>;

/** The config file's keys and the JSON type each must have. */
const FILE_KEYS: Record<string, 'string' | 'integer' | 'strings'> = {
  host: 'string', port: 'integer', socket: 'string', stateDir: 'string', watch: 'strings', logLevel: 'string', token: 'string',
  allowedHosts: 'strings', retireDays: 'integer', keepRetired: 'integer', memoryMb: 'integer', symbolizeTimeout: 'integer', idleSeconds: 'integer',
};

function readConfigFile(path: string, required: boolean): FileConfig | undefined {
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
    const want = FILE_KEYS[k];
    if (!want) throw new ConfigError(`config file ${path}: unknown key '${k}'`);
    const ok = want === 'strings' ? Array.isArray(val) && val.every((x) => typeof x === 'string') : want === 'integer' ? Number.isInteger(val) : typeof val === 'string';
    if (!ok) throw new ConfigError(`config file ${path}: '${k}' must be ${want === 'strings' ? 'a list of strings' : `a${want === 'integer' ? 'n integer' : ' string'}`}, got ${JSON.stringify(val)}`);
  }
  return v as FileConfig;
}

function int(name: string, s: string | number | undefined, min: number, max: number): number | undefined {
  if (s === undefined || s === '') return undefined;
  const n = typeof s === 'number' ? s : Number(s);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got '${s}'`);
  return n;
}

const first = <T>(...xs: (T | undefined)[]): T | undefined => xs.find((x) => x !== undefined);

/** Resolves the configuration. Throws UsageError with a message that names the bad setting. */
export function loadConfig(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const explicit = flags.config ?? env.COVD_CONFIG;
  const defaultFile = join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'covd', 'config.json');
  const filePath = explicit ? resolve(explicit) : defaultFile;
  const read = readConfigFile(filePath, explicit !== undefined);
  const file: FileConfig = read ?? {};
  const list = (s: string | undefined) => (s ? s.split(':').filter(Boolean) : undefined);

  const logLevel = first<string>(flags['log-level'], env.COVD_LOG_LEVEL || undefined, file.logLevel) ?? 'info';
  if (!isLevel(logLevel)) throw new ConfigError(`log level must be one of trace, debug, info, warn, error, fatal, silent; got '${logLevel}'`);
  const watch = first<string[]>(flags.watch?.length ? flags.watch : undefined, list(env.COVD_WATCH), file.watch) ?? [];
  if (!Array.isArray(watch) || watch.some((w) => typeof w !== 'string')) throw new ConfigError('watch must be a list of directories');

  return {
    host: first(flags.host, env.COVD_HOST || undefined, file.host) ?? '127.0.0.1',
    port: int('port', first<string | number>(flags.port, env.COVD_PORT || undefined, file.port), 0, 65535) ?? DEFAULT_PORT,
    socket: resolve(first(flags.socket, env.COVD_SOCKET || undefined, file.socket) ?? defaultSocketPath(env)),
    stateDir: resolve(first(flags['state-dir'], env.COVD_STATE_DIR || undefined, file.stateDir) ?? defaultStateDir(env)),
    watch: watch.map((w) => resolve(w)),
    logLevel,
    token: first(flags.token, env.COVD_TOKEN || undefined, file.token),
    allowedHosts: first<string[]>(flags['allow-host']?.length ? flags['allow-host'] : undefined, list(env.COVD_ALLOWED_HOSTS), file.allowedHosts) ?? [],
    retireDays: int('retire-days', first<string | number>(flags['retire-days'], env.COVD_RETIRE_DAYS || undefined, file.retireDays), 0, 36500) ?? 30,
    keepRetired: int('keep-retired', first<string | number>(flags['keep-retired'], env.COVD_KEEP_RETIRED || undefined, file.keepRetired), 0, 100000) ?? 5,
    memoryMb: int('memory-mb', first<string | number>(flags['memory-mb'], env.COVD_MEMORY_MB || undefined, file.memoryMb), 16, 1 << 24) ?? DEFAULT_MEMORY_MB,
    symbolizeTimeout: int('symbolize-timeout', first<string | number>(flags['symbolize-timeout'], env.COVD_SYMBOLIZE_TIMEOUT || undefined, file.symbolizeTimeout), 1, 86400) ?? DEFAULT_SYMBOLIZE_TIMEOUT_S,
    idleSeconds: int('idle-seconds', first<string | number>(flags['idle-seconds'], env.COVD_IDLE_SECONDS || undefined, file.idleSeconds), 1, 86400) ?? 10,
    configFile: read ? filePath : undefined,
  };
}

export const serveUsage = `usage: covd serve [options]

Runs the daemon: the browser UI over HTTP/WebSocket, the control socket agents and
\`covd add/list/status/remove\` talk to, and the coverage thread. Stop it with SIGTERM or
Ctrl-C; SIGHUP re-reads the configuration (log level, watched directories, retirement).

options (each also settable by environment variable or config file key; flags win):
  --host ADDR          listen address (COVD_HOST; default 127.0.0.1; off loopback needs --token)
  -p, --port N         HTTP port, 0 = any free port (COVD_PORT; default ${DEFAULT_PORT})
  --socket PATH        control socket (COVD_SOCKET; default $COVD_DIR/covd.sock)
  --state-dir DIR      persistent state (COVD_STATE_DIR; default $XDG_STATE_HOME/covd)
  -w, --watch DIR      discover coverage files under DIR/v/ (repeatable; COVD_WATCH=a:b)
  --log-level LEVEL    trace|debug|info|warn|error|fatal|silent (COVD_LOG_LEVEL; default info)
  --token TOKEN        require this token on every HTTP request (COVD_TOKEN)
  --allow-host NAME    extra accepted Host header value (repeatable; COVD_ALLOWED_HOSTS=a:b)
  --retire-days N      delete retired targets N days after retirement (default 30)
  --keep-retired N     keep at most N retired targets per executable (default 5)
  --memory-mb N        memory budget for targets, MiB (COVD_MEMORY_MB; default 2048): a coverage
                       file with more than N*8192 PCs is refused before anything is allocated
  --symbolize-timeout S  give up symbolizing one executable after S seconds; its target fails
                       and the others go on (COVD_SYMBOLIZE_TIMEOUT; default 600)
  --idle-seconds S     a target whose fuzzer is alive but made no runs for S seconds is shown
                       idle (COVD_IDLE_SECONDS; default 10); one with no live fuzzer, stopped
  -c, --config FILE    JSON config file (COVD_CONFIG; default $XDG_CONFIG_HOME/covd/config.json)

Logs are JSON lines on stdout (COVD_LOG_FORMAT=pretty for humans). The line
{"msg":"covd ready",...} says the daemon is serving.`;
