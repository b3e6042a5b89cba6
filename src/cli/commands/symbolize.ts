/**
 * `covd symbolize`: addresses to file:line:column, output-compatible with
 * `llvm-symbolizer --obj=EXE --no-inlines` (LLVM text style, or JSON one object per line).
 * Large address lists go through the worker pool on two threads; small ones resolve in-process.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../command.js';
import { DebugInfo, filePath } from '../../dwarf/resolve.js';
import { DebugInfoError, NONE, type SourceIndex } from '../../workers/types.js';

const usage = `usage: covd symbolize --exe PATH [--debug-file PATH] [--output-style=LLVM|JSON] [ADDR ...]

Resolves link-time addresses of an executable to source locations, reading its DWARF
(2 to 5, compressed sections too) the way llvm-symbolizer --no-inlines does.
With no ADDR arguments, reads addresses from standard input, one per line.
Addresses are hexadecimal, with or without 0x.

options:
  -e, --exe PATH         the executable (also accepted as --obj, like llvm-symbolizer)
      --debug-file PATH  separate debug info (otherwise the executable's own DWARF, or the
                         file found by build-id / .gnu_debuglink)
      --output-style S   LLVM (default): function, then file:line:column, then a blank line;
                         JSON: one object per line shaped like llvm-symbolizer's JSON
      --threads N        worker threads for large inputs (default 2; 0 = resolve in-process)
      --no-inlines       accepted for compatibility; inlined frames are never expanded
  -h, --help             this text

exit status: 0 on success, 1 when the debug info cannot be read, 2 on bad usage.
examples:
  covd symbolize --exe ./fuzz_target 0x4f2a10
  llvm-objdump -d ./fuzz_target | ... | covd symbolize --exe ./fuzz_target --output-style=JSON`;

/** Parses one address; null when it is not hexadecimal. */
export function parseAddress(s: string): bigint | null {
  const hex = normalizeHex(s);
  return hex === null ? null : BigInt('0x' + hex);
}

/** The address as lowercase hex without 0x or leading zeros ('0' for zero); null if not hex. */
function normalizeHex(s: string): string | null {
  let t = s.trim();
  if (t.startsWith('0x') || t.startsWith('0X')) t = t.slice(2);
  if (t.length === 0 || t.length > 16 || !/^[0-9a-fA-F]+$/.test(t)) return null;
  let z = 0;
  while (z < t.length - 1 && t.charCodeAt(z) === 48) z++;
  return t.slice(z).toLowerCase();
}

/** Formats results; file and function strings are JSON-escaped once per index, not per line. */
class Formatter {
  private fileJson: string[];
  private fnJson: string[];
  private startJson: string[];
  private moduleJson: string;
  constructor(private ix: SourceIndex, module: string) {
    this.fileJson = ix.files.map((_, f) => JSON.stringify(filePath(ix, f)));
    this.fnJson = ix.functions.names.map((n) => JSON.stringify(n));
    this.startJson = ix.functions.names.map((_, f) => JSON.stringify(filePath(ix, ix.functions.file[f]!)));
    this.moduleJson = JSON.stringify(module);
  }
  json(hex: string, i: number): string {
    const ix = this.ix;
    const f = ix.pcFile[i]!, fn = ix.pcFunction[i]!;
    const file = f === NONE ? '""' : this.fileJson[f]!;
    const name = fn === NONE ? '""' : this.fnJson[fn]!;
    const start = fn === NONE ? '""' : this.startJson[fn]!;
    const startLine = fn === NONE ? 0 : ix.functions.line[fn]!;
    return `{"Address":"0x${hex}","ModuleName":${this.moduleJson},"Symbol":[{"Column":${ix.pcColumn[i]!},"Discriminator":0,"FileName":${file},"FunctionName":${name},"Line":${ix.pcLine[i]!},"StartAddress":"","StartFileName":${start},"StartLine":${startLine}}]}\n`;
  }
  llvm(i: number): string {
    const ix = this.ix;
    const f = ix.pcFile[i]!, fn = ix.pcFunction[i]!;
    const file = f === NONE ? '??' : filePath(ix, f) || '??';
    return `${fn === NONE ? '??' : ix.functions.names[fn]!}\n${file}:${ix.pcLine[i]!}:${ix.pcColumn[i]!}\n\n`;
  }
}

async function resolveAll(exe: string, debugFile: string | undefined, pcs: BigUint64Array, threads: number): Promise<SourceIndex> {
  if (threads === 0 || pcs.length < 4096) return DebugInfo.open(exe, debugFile).resolve(pcs);
  const { SymbolizerPool } = await import('../../workers/pool.js');
  const pool = new SymbolizerPool({ threads, cache: false });
  try {
    return await pool.resolve(debugFile === undefined ? { exe, pcs } : { exe, debugFile, pcs });
  } finally {
    await pool.destroy();
  }
}

function write(s: string): Promise<void> {
  return new Promise((res, rej) => process.stdout.write(s, (err) => (err ? rej(err) : res())));
}

const command: Command = {
  summary: 'resolve addresses to file:line:column like llvm-symbolizer',
  usage,
  async run(argv) {
    let values, positionals;
    try {
      ({ values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
          exe: { type: 'string', short: 'e' },
          obj: { type: 'string' },
          'debug-file': { type: 'string' },
          'output-style': { type: 'string' },
          threads: { type: 'string' },
          'no-inlines': { type: 'boolean' },
        },
      }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const exe = values.exe ?? values.obj;
    if (!exe) throw new UsageError('--exe PATH is required');
    const style = (values['output-style'] ?? 'LLVM').toUpperCase();
    if (style !== 'LLVM' && style !== 'JSON') throw new UsageError(`--output-style must be LLVM or JSON, not '${values['output-style']}'`);
    const threads = values.threads === undefined ? 2 : Number(values.threads);
    if (!Number.isInteger(threads) || threads < 0 || threads > 64) throw new UsageError('--threads must be a whole number from 0 to 64');

    const inputs = positionals.length > 0 ? positionals : readFileSync(0, 'utf8').split('\n').filter((l) => l.trim() !== '');
    // PCs as u32 halves in one buffer: no BigInt per address.
    const hexes = inputs.map(normalizeHex);
    const halves = new Uint32Array(hexes.length * 2);
    let n = 0;
    for (const h of hexes) {
      if (h === null) continue;
      halves[2 * n] = parseInt(h.slice(-8), 16);
      halves[2 * n + 1] = h.length > 8 ? parseInt(h.slice(0, -8), 16) : 0;
      n++;
    }
    let ix: SourceIndex;
    try {
      ix = await resolveAll(exe, values['debug-file'], new BigUint64Array(halves.buffer, 0, n), threads);
    } catch (err) {
      if (err instanceof DebugInfoError) {
        console.error(`covd symbolize: ${err.message}`);
        return 1;
      }
      throw err;
    }
    const fmt = new Formatter(ix, exe);
    const out: string[] = [];
    let k = 0;
    let bad = 0;
    for (let j = 0; j < inputs.length; j++) {
      const h = hexes[j];
      if (h === null || h === undefined) {
        bad++;
        out.push(style === 'JSON' ? JSON.stringify({ Error: { Message: `unable to parse address '${inputs[j]!.trim()}'` }, ModuleName: exe }) + '\n' : '??\n??:0:0\n\n');
        continue;
      }
      out.push(style === 'JSON' ? fmt.json(h, k) : fmt.llvm(k));
      k++;
      if (out.length >= 16384) await write(out.splice(0).join(''));
    }
    await write(out.join(''));
    if (bad > 0) console.error(`covd symbolize: ${bad} input line(s) were not hexadecimal addresses`);
    return 0;
  },
};

export default command;
