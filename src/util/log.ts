/**
 * Structured logging: one JSON object per line on stdout (journald keeps it as the message),
 * in the spirit of pino. `COVD_LOG_FORMAT=pretty` prints `level msg key=value` instead.
 */
export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

const levelValue: Record<Level, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

export function isLevel(s: string): s is Level {
  return Object.hasOwn(levelValue, s);
}

export interface Logger {
  level: Level;
  child(bindings: Record<string, unknown>): Logger;
  trace(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  fatal(msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  level?: Level;
  pretty?: boolean;
  /** Where lines go; defaults to process.stdout. Tests pass a collector. */
  write?: (line: string) => void;
}

function serialise(v: unknown): unknown {
  if (v instanceof Error) return { type: v.name, message: v.message, code: (v as NodeJS.ErrnoException).code, stack: v.stack };
  if (typeof v === 'bigint') return v.toString();
  return v;
}

export function createLogger(opts: LoggerOptions = {}, bindings: Record<string, unknown> = {}): Logger {
  const pretty = opts.pretty ?? process.env.COVD_LOG_FORMAT === 'pretty';
  const write = opts.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const state = { level: opts.level ?? 'info' as Level };

  const emit = (level: Exclude<Level, 'silent'>, msg: string, fields?: Record<string, unknown>) => {
    if (levelValue[level] < levelValue[state.level]) return;
    const rec: Record<string, unknown> = { level, time: new Date().toISOString(), msg, ...bindings };
    if (fields) for (const [k, v] of Object.entries(fields)) rec[k] = serialise(v);
    if (pretty) {
      const extra = Object.entries(rec)
        .filter(([k]) => k !== 'level' && k !== 'time' && k !== 'msg')
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      write(`${level.padEnd(5)} ${msg}${extra ? ' ' + extra : ''}`);
    } else {
      write(JSON.stringify(rec));
    }
  };

  const logger: Logger = {
    get level() { return state.level; },
    set level(l: Level) { state.level = l; },
    child: (b) => createLogger({ level: state.level, pretty, write }, { ...bindings, ...b }),
    trace: (m, f) => emit('trace', m, f),
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    fatal: (m, f) => emit('fatal', m, f),
  };
  return logger;
}
