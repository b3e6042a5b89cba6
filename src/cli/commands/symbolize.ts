/**
 * `covd symbolize`: addresses to file:line:column, output-compatible with
 * `llvm-symbolizer --obj=EXE --no-inlines` (LLVM text style, or JSON one object per line), and
 * with --inlines with llvm-symbolizer's default (every inlined frame, innermost first),
 * function names demangled as llvm-symbolizer-14 does by default (--no-demangle: as found).
 * Large address lists go through the worker pool on two threads; small ones resolve in-process.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../command.js';
import { DebugInfo, demanglerActive, filePath, isItaniumName, setDemanglingEnabled, type InlineFrames, type ResolvedIndex } from '../../dwarf/index.js';
import { DebugInfoError, NONE, type SourceIndex } from '../../workers/types.js';

const usage = `usage: covd symbolize --exe PATH [--debug-file PATH] [--output-style=LLVM|JSON] [--inlines] [--no-demangle] [ADDR ...]

Resolves link-time addresses of an executable to source locations, reading its DWARF
(2 to 5, compressed sections too) the way llvm-symbolizer --no-inlines does (with --inlines,
the way llvm-symbolizer does by default).
With no ADDR arguments, reads addresses from standard input, one per line.
Addresses are hexadecimal, with or without 0x.

options:
  -e, --exe PATH         the executable (also accepted as --obj, like llvm-symbolizer)
      --debug-file PATH  separate debug info (otherwise the executable's own DWARF, or the
                         file found by build-id / .gnu_debuglink)
      --output-style S   LLVM (default): function, then file:line:column, then a blank line;
                         JSON: one object per line shaped like llvm-symbolizer's JSON
      --threads N        resolve on N worker threads (default 0: in the process itself; on
                         the 2-core benchmark machine starting threads cost more than
                         they saved, see bench/NOTES-symbolize.md)
      --inlines          print the whole chain of inlined frames of each address, innermost
                         first, as llvm-symbolizer does by default: the innermost frame at
                         its line-table row, each outer one at the call site of the frame
                         inside it (JSON: one Symbol entry per frame); resolves in-process
      --no-inlines       one frame per address, the physical function (covd's default);
                         of --inlines and --no-inlines the last one given counts
  -C, --demangle         demangle C++ and Rust function names as llvm-symbolizer-14 prints
                         them (the default), e.g. parse::Lexer::next()
      --no-demangle      print function names as the binary has them (_ZN5parse5Lexer4nextEv);
                         of --demangle and --no-demangle the last one given counts
  -h, --help             this text

JSON objects have Address, ModuleName and Symbol[0] (with --inlines, one entry per frame)
with Column, FileName, FunctionName and Line, as llvm-symbolizer gives them; its other keys
(Discriminator, Start*) are left out.

environment:
  COVD_DWARF_KERNELS=js  run the reader without its WebAssembly kernels (same output, slower;
                         for comparing the two)
  COVD_DEMANGLE=0        the same as --no-demangle

exit status: 0 on success, 1 when the debug info cannot be read, 2 on bad usage.
examples:
  covd symbolize --exe ./fuzz_target 0x4f2a10
  printf '0x4f2a10\\n0x4f2a24\\n' | covd symbolize --exe ./fuzz_target --output-style=JSON`;

/** Parses one address; null when it is not hexadecimal (with or without 0x, at most 16 digits). */
export function parseAddress(s: string): bigint | null {
  const r = parseAddressList(Buffer.from(s + '\n'));
  return r.count === 1 ? BigInt.asUintN(64, (BigInt(r.halves[1]!) << 32n) | BigInt(r.halves[0]!)) : null;
}

export interface AddressList {
  /** PCs as (lo, hi) u32 pairs, valid lines only. */
  halves: Uint32Array;
  count: number;
  /** Per input line: -1 when it is not an address (its text is in bad), else its index into halves. */
  lineKind: Int32Array;
  bad: Map<number, string>;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses addresses, one per line, straight from the bytes (no string per line). Blank lines are skipped. */
export function parseAddressList(buf: Uint8Array): AddressList {
  let lines = 0;
  for (let i = 0; i < buf.length; i++) if (buf[i] === 10) lines++;
  lines++;
  const halves = new Uint32Array(lines * 2);
  const lineKind = new Int32Array(lines);
  const bad = new Map<number, string>();
  let count = 0, line = 0, pos = 0;
  while (pos < buf.length) {
    let end = buf.indexOf(10, pos);
    if (end < 0) end = buf.length;
    let a = pos, b = end;
    while (a < b && (buf[a] === 32 || buf[a] === 9 || buf[a] === 13)) a++;
    while (b > a && (buf[b - 1] === 32 || buf[b - 1] === 9 || buf[b - 1] === 13)) b--;
    pos = end + 1;
    if (a === b) continue;
    let d = a;
    if (b - a > 2 && buf[a] === 48 && (buf[a + 1] === 120 || buf[a + 1] === 88)) d += 2;
    let hi = 0, lo = 0, ok = b - d <= 16 && b > d;
    for (let i = d; ok && i < b; i++) {
      const v = hexValue(buf[i]!);
      if (v < 0) { ok = false; break; }
      hi = ((hi << 4) | (lo >>> 28)) >>> 0;
      lo = ((lo << 4) | v) >>> 0;
    }
    if (ok) {
      halves[2 * count] = lo;
      halves[2 * count + 1] = hi;
      lineKind[line++] = count++;
    } else {
      bad.set(line, Buffer.from(buf.subarray(a, b)).toString('utf8'));
      lineKind[line++] = -1;
    }
  }
  return { halves, count, lineKind: lineKind.subarray(0, line), bad };
}

/** Output assembled in byte chunks: precomputed fragments, digits written in place. */
class Output {
  private buf = Buffer.allocUnsafe(1 << 20);
  private pos = 0;
  readonly chunks: Buffer[] = [];
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.chunks.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(Math.max(1 << 20, n));
    this.pos = 0;
  }
  bytes(b: Uint8Array): void {
    const n = b.length;
    this.room(n);
    // A loop beats TypedArray#set for the short fragments that make up most of a line.
    if (n < 64) {
      const buf = this.buf;
      let p = this.pos;
      for (let i = 0; i < n; i++) buf[p++] = b[i]!;
      this.pos = p;
    } else {
      this.buf.set(b, this.pos);
      this.pos += n;
    }
  }
  uint(n: number): void {
    this.room(10);
    if (n === 0) { this.buf[this.pos++] = 48; return; }
    let digits = 0;
    for (let x = n; x > 0; x = Math.floor(x / 10)) digits++;
    for (let i = digits - 1, x = n; i >= 0; i--, x = Math.floor(x / 10)) this.buf[this.pos + i] = 48 + (x % 10);
    this.pos += digits;
  }
  /** hi:lo as lowercase hex without leading zeros. */
  hex(lo: number, hi: number): void {
    this.room(16);
    const HEX = '0123456789abcdef';
    let started = false;
    for (let i = 15; i >= 0; i--) {
      const v = i >= 8 ? (hi >>> ((i - 8) * 4)) & 15 : (lo >>> (i * 4)) & 15;
      if (v === 0 && !started && i > 0) continue;
      started = true;
      this.buf[this.pos++] = HEX.charCodeAt(v);
    }
  }
  take(): Buffer[] {
    this.chunks.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(1 << 20);
    this.pos = 0;
    return this.chunks.splice(0);
  }
  get size(): number { return this.pos + this.chunks.length * (1 << 20); }
}

const enc = (s: string): Buffer => Buffer.from(s, 'utf8');

/**
 * Formats results like llvm-symbolizer; strings are encoded once per file or function, not per line.
 * JSON objects carry Address, ModuleName and Symbol[0].{Column, FileName, FunctionName, Line}:
 * llvm-symbolizer's other keys (Discriminator, Start*) are left out rather than guessed.
 */
class Formatter {
  private readonly fileJson: Buffer[];
  private readonly fnJson: Buffer[];
  private readonly fileText: Buffer[];
  private readonly fnText: Buffer[];
  private readonly p2: Buffer;
  private static readonly EMPTY = enc('""');
  private static readonly UNKNOWN = enc('??');
  private static readonly P1 = enc('{"Address":"0x');
  private static readonly P3 = enc(',"FileName":');
  private static readonly P4 = enc(',"FunctionName":');
  private static readonly P5 = enc(',"Line":');
  private static readonly P8 = enc('}]}\n');
  private static readonly COL = enc('{"Column":');
  private static readonly NEXT = enc('},');
  private readonly p2a: Buffer;
  private static readonly NL = enc('\n');
  private static readonly COLON = enc(':');
  constructor(private readonly ix: SourceIndex, module: string) {
    this.fileJson = ix.files.map((_, f) => enc(JSON.stringify(filePath(ix, f))));
    this.fileText = ix.files.map((_, f) => enc(filePath(ix, f) || '??'));
    this.fnJson = ix.functions.names.map((n) => enc(JSON.stringify(n)));
    this.fnText = ix.functions.names.map((n) => enc(n || '??'));
    this.p2 = enc(`","ModuleName":${JSON.stringify(module)},"Symbol":[{"Column":`);
    this.p2a = enc(`","ModuleName":${JSON.stringify(module)},"Symbol":[`);
  }
  /** `,"FileName":F,"FunctionName":N,"Line":` per (file, function) pair, built on first use. */
  private middle = new Map<number, Buffer>();
  private mid(f: number, fn: number): Buffer {
    const F = Formatter;
    const key = (f === NONE ? 0 : f + 1) * 0x1_0000_0000 + (fn === NONE ? 0 : fn + 1);
    let mid = this.middle.get(key);
    if (!mid) {
      mid = Buffer.concat([F.P3, f === NONE ? F.EMPTY : this.fileJson[f]!, F.P4, fn === NONE ? F.EMPTY : this.fnJson[fn]!, F.P5]);
      this.middle.set(key, mid);
    }
    return mid;
  }
  json(o: Output, lo: number, hi: number, i: number): void {
    const ix = this.ix, F = Formatter;
    const mid = this.mid(ix.pcFile[i]!, ix.pcFunction[i]!);
    o.bytes(F.P1); o.hex(lo, hi); o.bytes(this.p2); o.uint(ix.pcColumn[i]!);
    o.bytes(mid); o.uint(ix.pcLine[i]!); o.bytes(F.P8);
  }
  /** PC i's inlined frames (--inlines): one Symbol entry per frame. */
  jsonInlined(o: Output, lo: number, hi: number, fr: InlineFrames, i: number): void {
    const F = Formatter, c = fr.of ? fr.of[i]! : i;
    o.bytes(F.P1); o.hex(lo, hi); o.bytes(this.p2a);
    for (let j = fr.start[c]!, e = fr.start[c + 1]!; j < e; j++) {
      if (j > fr.start[c]!) o.bytes(F.NEXT);
      o.bytes(F.COL); o.uint(fr.column[j]!); o.bytes(this.mid(fr.file[j]!, fr.fn[j]!)); o.uint(fr.line[j]!);
    }
    o.bytes(F.P8);
  }
  llvmInlined(o: Output, fr: InlineFrames, i: number): void {
    const F = Formatter, c = fr.of ? fr.of[i]! : i;
    for (let j = fr.start[c]!, e = fr.start[c + 1]!; j < e; j++) {
      const f = fr.file[j]!, fn = fr.fn[j]!;
      o.bytes(fn === NONE ? F.UNKNOWN : this.fnText[fn]!); o.bytes(F.NL);
      o.bytes(f === NONE ? F.UNKNOWN : this.fileText[f]!); o.bytes(F.COLON);
      o.uint(fr.line[j]!); o.bytes(F.COLON); o.uint(fr.column[j]!); o.bytes(F.NL);
    }
    o.bytes(F.NL);
  }
  llvm(o: Output, i: number): void {
    const ix = this.ix, F = Formatter;
    const f = ix.pcFile[i]!, fn = ix.pcFunction[i]!;
    o.bytes(fn === NONE ? F.UNKNOWN : this.fnText[fn]!); o.bytes(F.NL);
    o.bytes(f === NONE ? F.UNKNOWN : this.fileText[f]!); o.bytes(F.COLON);
    o.uint(ix.pcLine[i]!); o.bytes(F.COLON); o.uint(ix.pcColumn[i]!); o.bytes(F.NL); o.bytes(F.NL);
  }
}

async function resolveAll(exe: string, debugFile: string | undefined, pcs: BigUint64Array, threads: number, inlines = false): Promise<ResolvedIndex> {
  // The output has no declaration lines, so the DIE tree is walked only where no symbol names a PC.
  // (V8's flags for symbolizing are set by main.ts, src/cli/v8-flags.ts.)
  // Inlined frames are not carried through the pool: --inlines resolves in-process.
  if (inlines || threads === 0 || pcs.length < 4096) return DebugInfo.open(exe, debugFile).resolve(pcs, { declarations: false, inlineFrames: inlines });
  const { SymbolizerPool } = await import('../../workers/pool.js');
  const pool = new SymbolizerPool({ threads, cache: false, declarations: false });
  try {
    return await pool.resolve(debugFile === undefined ? { exe, pcs } : { exe, debugFile, pcs });
  } finally {
    await pool.destroy();
  }
}

function write(s: Uint8Array): Promise<void> {
  return new Promise((res, rej) => process.stdout.write(s, (err) => (err ? rej(err) : res())));
}

const command: Command = {
  summary: 'resolve addresses to file:line:column like llvm-symbolizer',
  usage,
  async run(argv) {
    let values, positionals, tokens;
    try {
      ({ values, positionals, tokens } = parseArgs({
        args: argv,
        allowPositionals: true,
        tokens: true,
        options: {
          exe: { type: 'string', short: 'e' },
          obj: { type: 'string' },
          'debug-file': { type: 'string' },
          'output-style': { type: 'string' },
          threads: { type: 'string' },
          'no-inlines': { type: 'boolean' },
          inlines: { type: 'boolean' },
          demangle: { type: 'boolean', short: 'C' },
          'no-demangle': { type: 'boolean' },
        },
      }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const exe = values.exe ?? values.obj;
    if (!exe) throw new UsageError('--exe PATH is required');
    const style = (values['output-style'] ?? 'LLVM').toUpperCase();
    if (style !== 'LLVM' && style !== 'JSON') throw new UsageError(`--output-style must be LLVM or JSON, not '${values['output-style']}'`);
    const threads = values.threads === undefined ? 0 : Number(values.threads);
    if (!Number.isInteger(threads) || threads < 0 || threads > 64) throw new UsageError('--threads must be a whole number from 0 to 64');

    // Like llvm-symbolizer: demangling is on unless turned off, and the last of the two flags wins.
    let demangle = process.env.COVD_DEMANGLE !== '0';
    let inlines = false;
    for (const t of tokens ?? []) {
      if (t.kind === 'option' && t.name === 'inlines') inlines = true;
      if (t.kind === 'option' && t.name === 'no-inlines') inlines = false;
      if (t.kind === 'option' && t.name === 'demangle') demangle = true;
      if (t.kind === 'option' && t.name === 'no-demangle') demangle = false;
    }
    // Pool threads read it from the environment they start with.
    process.env.COVD_DEMANGLE = demangle ? '1' : '0';
    setDemanglingEnabled(demangle);

    const input = positionals.length > 0 ? Buffer.from(positionals.join('\n') + '\n') : readFileSync(0);
    const list = parseAddressList(input);
    let ix: ResolvedIndex;
    try {
      ix = await resolveAll(exe, values['debug-file'], new BigUint64Array(list.halves.buffer, 0, list.count), threads, inlines);
    } catch (err) {
      if (err instanceof DebugInfoError) {
        console.error(`covd symbolize: ${err.message}`);
        return 1;
      }
      throw err;
    }
    if (demangle && ix.functions.names.some(isItaniumName) && !demanglerActive()) {
      console.error('covd symbolize: the C++ demangler (demangle.wasm) is not built; names are shown mangled ' +
        '(scripts/install-deps.sh installs what `npm run build` needs to build it)');
    }
    const fmt = new Formatter(ix, exe);
    const out = new Output();
    const bad = list.bad.size;
    for (let j = 0; j < list.lineKind.length; j++) {
      const k = list.lineKind[j]!;
      if (k < 0) {
        const text = list.bad.get(j)!;
        out.bytes(enc(style === 'JSON' ? JSON.stringify({ Error: { Message: `unable to parse arguments: ${text}` }, ModuleName: exe }) + '\n' : '??\n??:0:0\n\n'));
      } else if (ix.inlineFrames) {
        if (style === 'JSON') fmt.jsonInlined(out, list.halves[2 * k]!, list.halves[2 * k + 1]!, ix.inlineFrames, k);
        else fmt.llvmInlined(out, ix.inlineFrames, k);
      } else if (style === 'JSON') {
        fmt.json(out, list.halves[2 * k]!, list.halves[2 * k + 1]!, k);
      } else {
        fmt.llvm(out, k);
      }
      if (out.size >= 8 << 20) for (const c of out.take()) await write(c);
    }
    for (const c of out.take()) await write(c);
    if (bad > 0) console.error(`covd symbolize: ${bad} input line(s) were not hexadecimal addresses`);
    return 0;
  },
};

export default command;
