/**
 * ELF symbol table as llvm-symbolizer uses it to name functions: defined FUNC/OBJECT/IFUNC/NOTYPE
 * symbols, stably sorted by address and size; one per address: the largest, and among equals the
 * last in table order (what llvm-symbolizer 14 picks between aliases). Names are decoded only
 * when a PC needs them.
 */
import { corrupt } from './errors.js';
import { ElfFile, SHT_DYNSYM, SHT_SYMTAB } from './elf.js';
import { kernelsOrTwins } from './kernels.js';
import { upperBound } from './order.js';
import { strAt } from './reader.js';

export interface SymbolTable {
  addr: Float64Array;
  size: Float64Array;
  /** Offsets into strs of each symbol's name, and of the preceding STT_FILE name for local symbols (-1 = none). */
  nameOff: Uint32Array;
  fileOff: Int32Array;
  strs: Uint8Array;
  section: string;
  names: Map<number, string>;
}

const STT_NOTYPE = 0, STT_OBJECT = 1, STT_FUNC = 2, STT_FILE = 4, STT_GNU_IFUNC = 10;
const STB_LOCAL = 0;
const SHN_UNDEF = 0, SHN_ABS = 0xfff1;

/** The raw bytes a symbol table is parsed from (read while the file is open; parsed when needed). */
export interface SymbolSource { data: Uint8Array; strs: Uint8Array; section: string }

export function symbolSource(elf: ElfFile): SymbolSource | null {
  const sec = elf.sections.find((s) => s.type === SHT_SYMTAB) ?? elf.sections.find((s) => s.type === SHT_DYNSYM);
  if (!sec || sec.link >= elf.sections.length) return null;
  return { data: elf.sectionBytes(sec), strs: elf.sectionBytes(elf.sections[sec.link]!), section: sec.name };
}

export function readSymbols(elf: ElfFile): SymbolTable {
  return parseSymbols(symbolSource(elf));
}

export function parseSymbols(src: SymbolSource | null): SymbolTable {
  const empty: SymbolTable = { addr: new Float64Array(0), size: new Float64Array(0), nameOff: new Uint32Array(0), fileOff: new Int32Array(0), strs: new Uint8Array(0), section: '', names: new Map() };
  if (!src) return empty;
  const { data, strs } = src;
  const sec = { name: src.section };
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = Math.floor(data.length / 24);
  // Kept symbols in table order, in typed arrays sized for the whole table (no growth, no boxing).
  const addr = new Float64Array(n), size = new Float64Array(n), nameOff = new Uint32Array(n), fileOff = new Int32Array(n);
  let count = 0, lastFile = -1;
  for (let i = 1; i < n; i++) {
    const o = i * 24;
    const name = dv.getUint32(o, true);
    const info = data[o + 4]!;
    const shndx = dv.getUint16(o + 6, true);
    const type = info & 0xf;
    if (name >= strs.length && name !== 0) throw corrupt(sec.name, `symbol ${i} name offset 0x${name.toString(16)} outside the string table`);
    if (type === STT_FILE) { lastFile = name; continue; }
    if (shndx === SHN_UNDEF || shndx === SHN_ABS) continue;
    if (type !== STT_FUNC && type !== STT_OBJECT && type !== STT_GNU_IFUNC && type !== STT_NOTYPE) continue;
    if (type === STT_NOTYPE) {
      // Unnamed and assembler-local labels are not functions.
      const c = strs[name];
      if (c === 0 || c === undefined || c === 0x24 /* $ */ || (c === 0x2e /* . */ && strs[name + 1] === 0x4c /* L */)) continue;
    }
    const a = dv.getUint32(o + 8, true) + dv.getUint32(o + 12, true) * 0x1_0000_0000;
    addr[count] = a;
    size[count] = dv.getUint32(o + 16, true) + dv.getUint32(o + 20, true) * 0x1_0000_0000;
    nameOff[count] = name;
    fileOff[count] = info >> 4 === STB_LOCAL ? lastFile : -1;
    count++;
  }
  const order = kernelsOrTwins().orderValues(addr, count);
  // One symbol per address: the largest, and among equal sizes the last in table order
  // (order lists equal addresses by table index, so a later one of equal size replaces).
  const kept = new Uint32Array(count);
  let k = 0;
  for (let j = 0; j < count; j++) {
    const i = order[j]!;
    if (k > 0 && addr[kept[k - 1]!] === addr[i]) { if (size[kept[k - 1]!]! <= size[i]!) kept[k - 1] = i; }
    else kept[k++] = i;
  }
  const t: SymbolTable = {
    addr: new Float64Array(k), size: new Float64Array(k), nameOff: new Uint32Array(k), fileOff: new Int32Array(k),
    strs, section: sec.name, names: new Map(),
  };
  for (let j = 0; j < k; j++) {
    const i = kept[j]!;
    t.addr[j] = addr[i]!; t.size[j] = size[i]!; t.nameOff[j] = nameOff[i]!; t.fileOff[j] = fileOff[i]!;
  }
  return t;
}

export function symbolName(t: SymbolTable, i: number): string {
  let s = t.names.get(i);
  if (s === undefined) {
    s = strAt(t.strs, t.nameOff[i]!, `${t.section} strings`);
    t.names.set(i, s);
  }
  return s;
}

/** The STT_FILE name before a local symbol, or null. */
export function symbolFile(t: SymbolTable, i: number): string | null {
  const off = t.fileOff[i]!;
  if (off < 0) return null;
  const s = strAt(t.strs, off, `${t.section} strings`);
  return s === '' ? null : s;
}

/** llvm-symbolizer's getNameFromSymbolTable: the last symbol at or below addr, if addr is inside it (size 0 = unbounded). */
export function symbolFor(t: SymbolTable, addr: number): number {
  const lo = upperBound(t.addr, addr);
  if (lo === 0) return -1;
  const i = lo - 1;
  if (t.size[i] !== 0 && t.addr[i]! + t.size[i]! <= addr) return -1;
  return i;
}
