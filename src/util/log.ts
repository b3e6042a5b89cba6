/**
 * Structured logging with pino: one JSON object per line on stdout (journald keeps each as one
 * message). Records are pino's: numeric `level` (10 trace ... 60 fatal), epoch-ms `time`, `pid`,
 * `hostname`, the bindings, the fields, then `msg`; Errors anywhere in the fields go through
 * pino's `err` serializer (type, message, stack, code and the error's other own properties).
 * `COVD_LOG_FORMAT=pretty` prints readable lines instead: through pino-pretty when it is installed
 * (a dev dependency), else a plain built-in `time level msg key=value` line.
 *
 * The project's call shape stays `log.info(msg, fields)`; this module adapts it to pino's
 * `(obj, msg)`. pino itself is required lazily in createLogger, so commands that never log
 * (`covd --help`, `covd serve --help`, `covd list`) do not pay for loading it.
 *
 * Levels: a child follows its parent's level for as long as it lives, unless its own level is
 * set (then it and its own children follow that). pino children copy the level once, at
 * creation, so the adapter keeps them in step: every level set anywhere bumps a counter shared
 * by the whole tree, and a logger whose cached counter differs recomputes its effective level
 * (and sets it on its pino child) on its next call. A suppressed call costs two compares.
 */
import { createRequire } from 'node:module';
import type { Logger as PinoLogger, DestinationStream, LoggerOptions as PinoOptions } from 'pino';

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** pino's numeric levels, as they appear in the records. */
export const levelValues: Readonly<Record<Level, number>> = Object.freeze({ trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity });

export function isLevel(s: string): s is Level {
  return Object.hasOwn(levelValues, s);
}

/** The name of a record's numeric level (`levelName(40) === 'warn'`); undefined for other values. */
export function levelName(n: unknown): Exclude<Level, 'silent'> | undefined {
  switch (n) {
    case 10: return 'trace';
    case 20: return 'debug';
    case 30: return 'info';
    case 40: return 'warn';
    case 50: return 'error';
    case 60: return 'fatal';
    default: return undefined;
  }
}

export interface Logger {
  /** This logger's effective level; setting it reaches every child that has no level of its own. */
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
  /** Where lines go (without the newline), synchronously; defaults to process.stdout. Tests pass a collector. */
  write?: (line: string) => void;
}

type PinoModule = typeof import('pino');
type Method = Exclude<Level, 'silent'>;

const require = createRequire(import.meta.url);
let pinoModule: PinoModule | undefined;
function loadPino(): PinoModule {
  return (pinoModule ??= require('pino') as PinoModule);
}

/** Keys of every record: a binding or field of that name is renamed `<key>_` so it never replaces them. */
const RESERVED = new Set(['level', 'time', 'pid', 'hostname', 'msg']);
/** Also renamed in bindings: pino would drop these silently. */
const RESERVED_BINDINGS = new Set([...RESERVED, 'serializers', 'formatters', 'customLevels']);

/**
 * The `err` serializer: pino's standard one, plus `code` when the error has one that is not an
 * own enumerable property (the standard serializer copies only those).
 */
function serializeError(err: unknown): unknown {
  const out = loadPino().stdSerializers.err(err as Error) as unknown;
  if (out !== err && out !== null && typeof out === 'object') {
    const code = (err as { code?: unknown }).code;
    if (code !== undefined && (out as { code?: unknown }).code === undefined) (out as { code?: unknown }).code = code;
  }
  return out;
}

/**
 * Fields as pino should see them: reserved keys renamed, Errors under any key serialized like
 * `err`, bigints as decimal strings. Returns the same object when nothing needs changing.
 */
function clean(fields: Record<string, unknown>, reserved: ReadonlySet<string> = RESERVED): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k in fields) {
    if (!Object.hasOwn(fields, k)) continue;
    const v = fields[k];
    const rename = reserved.has(k);
    const conv = typeof v === 'bigint' || (v instanceof Error && k !== 'err');
    if (!rename && !conv) continue;
    out ??= { ...fields };
    const nv = typeof v === 'bigint' ? v.toString() : v instanceof Error && k !== 'err' ? serializeError(v) : v;
    if (rename) {
      delete out[k];
      let nk = `${k}_`;
      while (Object.hasOwn(fields, nk)) nk += '_';
      out[nk] = nv;
    } else {
      out[k] = nv;
    }
  }
  return out ?? fields;
}

/** Shared by a root and all its descendants. */
interface Tree {
  /** Bumped by every level set in the tree; a logger whose cached copy differs recomputes its level. */
  gen: number;
  /** The pino instance every adapter's pino logger is a child of. */
  base: PinoLogger;
}

class PinoAdapter implements Logger {
  /** Effective numeric level, valid while `gen === tree.gen`. */
  private value = 0;
  private gen = -1;

  constructor(
    private readonly tree: Tree,
    private readonly parent: PinoAdapter | undefined,
    /** Set on this logger; undefined: follow the parent. */
    private own: Level | undefined,
    /** Bindings of this logger and its ancestors (already cleaned). */
    private readonly bindings: Record<string, unknown>,
    /** A pino child of tree.base carrying `bindings`. */
    private readonly p: PinoLogger,
  ) {
    this.sync();
  }

  private effective(): Level {
    let l: PinoAdapter | undefined = this;
    while (l.own === undefined) l = l.parent!;
    return l.own;
  }

  private sync(): void {
    const eff = this.effective();
    this.value = levelValues[eff];
    if (this.p.level !== eff) this.p.level = eff;
    this.gen = this.tree.gen;
  }

  get level(): Level {
    return this.effective();
  }

  set level(l: Level) {
    if (!isLevel(l)) throw new TypeError(`unknown log level '${String(l)}'`);
    this.own = l;
    this.tree.gen++;
    this.sync();
  }

  child(bindings: Record<string, unknown>): Logger {
    const merged = { ...this.bindings, ...clean(bindings, RESERVED_BINDINGS) };
    // A child of the tree's base with all bindings at once, so a key bound twice appears once.
    return new PinoAdapter(this.tree, this, undefined, merged, this.tree.base.child(merged));
  }

  private emit(m: Method, msg: string, fields: Record<string, unknown> | undefined): void {
    if (fields === undefined) this.p[m](msg);
    else this.p[m](clean(fields), msg);
  }

  // Own properties (not prototype methods), so `const warn = log.warn` keeps working as before.
  readonly trace = (msg: string, fields?: Record<string, unknown>): void => {
    if (this.gen !== this.tree.gen) this.sync();
    if (this.value <= 10) this.emit('trace', msg, fields);
  };
  readonly debug = (msg: string, fields?: Record<string, unknown>): void => {
    if (this.gen !== this.tree.gen) this.sync();
    if (this.value <= 20) this.emit('debug', msg, fields);
  };
  readonly info = (msg: string, fields?: Record<string, unknown>): void => {
    if (this.gen !== this.tree.gen) this.sync();
    if (this.value <= 30) this.emit('info', msg, fields);
  };
  readonly warn = (msg: string, fields?: Record<string, unknown>): void => {
    if (this.gen !== this.tree.gen) this.sync();
    if (this.value <= 40) this.emit('warn', msg, fields);
  };
  readonly error = (msg: string, fields?: Record<string, unknown>): void => {
    if (this.gen !== this.tree.gen) this.sync();
    if (this.value <= 50) this.emit('error', msg, fields);
  };
  readonly fatal = (msg: string, fields?: Record<string, unknown>): void => {
    if (this.gen !== this.tree.gen) this.sync();
    if (this.value <= 60) this.emit('fatal', msg, fields);
  };
}

/** `HH:MM:SS.mmm level msg key=value ...`: the pretty form when pino-pretty is not installed. */
export function plainPretty(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.replace(/\n$/, '');
  }
  const t = typeof rec.time === 'number' ? new Date(rec.time) : undefined;
  const time = t ? `${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}:${String(t.getSeconds()).padStart(2, '0')}.${String(t.getMilliseconds()).padStart(3, '0')} ` : '';
  const extra = Object.entries(rec)
    .filter(([k]) => k !== 'level' && k !== 'time' && k !== 'msg' && k !== 'pid' && k !== 'hostname')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const level = levelName(rec.level) ?? String(rec.level);
  return `${time}${level.padEnd(5)} ${String(rec.msg ?? '')}${extra ? ' ' + extra : ''}`;
}

/** A function from a JSON record line to a readable line (no newline): pino-pretty's, or plainPretty. */
function prettifier(colorize: boolean): (line: string) => string {
  let factory: ((opts: Record<string, unknown>) => (line: string) => string) | undefined;
  try {
    factory = (require('pino-pretty') as { prettyFactory: typeof factory }).prettyFactory;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
  }
  if (!factory) return plainPretty;
  const pretty = factory({ colorize, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l', singleLine: true });
  return (line) => pretty(line).replace(/\n$/, '');
}

export function createLogger(opts: LoggerOptions = {}, bindings: Record<string, unknown> = {}): Logger {
  const level = opts.level ?? 'info';
  if (!isLevel(level)) throw new TypeError(`unknown log level '${String(level)}'`);
  const pretty = opts.pretty ?? process.env.COVD_LOG_FORMAT === 'pretty';
  const write = opts.write;
  const out: (line: string) => void = write ?? ((line) => { process.stdout.write(line + '\n'); });
  // pino hands the destination each record as one string ending in '\n', synchronously.
  let dest: DestinationStream;
  if (pretty) {
    const fmt = prettifier(!write && process.stdout.isTTY === true && !process.env.NO_COLOR);
    dest = { write: (s: string) => out(fmt(s)) };
  } else if (write) {
    dest = { write: (s: string) => write(s.endsWith('\n') ? s.slice(0, -1) : s) };
  } else {
    dest = process.stdout;
  }
  const pino = loadPino();
  const options: PinoOptions = {
    level,
    serializers: { err: serializeError },
  };
  const base = pino(options, dest);
  const root = clean(bindings, RESERVED_BINDINGS);
  const tree: Tree = { gen: 0, base };
  return new PinoAdapter(tree, undefined, level, root, base.child(root));
}
