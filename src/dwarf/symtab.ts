/**
 * ELF symbol table as llvm-symbolizer uses it to name functions: defined FUNC/OBJECT/IFUNC/NOTYPE
 * symbols, stably sorted by address and size; one per address: the largest, and among equals the
 * last in table order (what llvm-symbolizer 14 picks between aliases).
 */
import { corrupt } from './errors.js';
import { ElfFile, SHT_DYNSYM, SHT_SYMTAB } from './elf.js';
import { Reader, strAt } from './reader.js';

export interface SymbolTable {
  addr: Float64Array;
  size: Float64Array;
  names: string[];
  /** For local symbols, the preceding STT_FILE name (llvm-symbolizer reports it when DWARF has no file). */
  fileNames: (string | null)[];
}

const STT_NOTYPE = 0, STT_OBJECT = 1, STT_FUNC = 2, STT_FILE = 4, STT_GNU_IFUNC = 10;
const STB_LOCAL = 0;
const SHN_UNDEF = 0, SHN_ABS = 0xfff1;

export function readSymbols(elf: ElfFile): SymbolTable {
  const sec = elf.sections.find((s) => s.type === SHT_SYMTAB) ?? elf.sections.find((s) => s.type === SHT_DYNSYM);
  const syms: { addr: number; size: number; name: string; file: string | null }[] = [];
  if (sec && sec.link < elf.sections.length) {
    const data = elf.sectionBytes(sec);
    const strs = elf.sectionBytes(elf.sections[sec.link]!);
    const r = new Reader(data, sec.name);
    const n = Math.floor(data.length / 24);
    let lastFile: string | null = null;
    for (let i = 1; i < n; i++) {
      r.seek(i * 24);
      const nameOff = r.u32();
      const info = r.u8();
      r.u8();
      const shndx = r.u16();
      const value = r.u64n();
      const size = r.u64n();
      const type = info & 0xf;
      if (type === STT_FILE) {
        lastFile = nameOff < strs.length ? strAt(strs, nameOff, `${sec.name} strings`) : null;
        continue;
      }
      if (shndx === SHN_UNDEF || shndx === SHN_ABS) continue;
      if (type !== STT_FUNC && type !== STT_OBJECT && type !== STT_GNU_IFUNC && type !== STT_NOTYPE) continue;
      if (nameOff >= strs.length) throw corrupt(sec.name, `symbol ${i} name offset outside the string table`);
      const name = strAt(strs, nameOff, `${sec.name} strings`);
      if (type === STT_NOTYPE && (name === '' || name.startsWith('$') || name.startsWith('.L'))) continue;
      syms.push({ addr: value, size, name, file: info >> 4 === STB_LOCAL ? lastFile : null });
    }
  }
  syms.sort((a, b) => a.addr - b.addr || a.size - b.size);
  const kept: typeof syms = [];
  for (const s of syms) {
    const last = kept[kept.length - 1];
    if (last && last.addr === s.addr) { if (last.size <= s.size) kept[kept.length - 1] = s; }
    else kept.push(s);
  }
  const t: SymbolTable = { addr: new Float64Array(kept.length), size: new Float64Array(kept.length), names: kept.map((s) => s.name), fileNames: kept.map((s) => s.file) };
  kept.forEach((s, i) => { t.addr[i] = s.addr; t.size[i] = s.size; });
  return t;
}

/** llvm-symbolizer's getNameFromSymbolTable: the last symbol at or below addr, if addr is inside it (size 0 = unbounded). */
export function symbolFor(t: SymbolTable, addr: number): number {
  let lo = 0, hi = t.addr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (t.addr[mid]! <= addr) lo = mid + 1; else hi = mid;
  }
  if (lo === 0) return -1;
  const i = lo - 1;
  if (t.size[i] !== 0 && t.addr[i]! + t.size[i]! <= addr) return -1;
  return i;
}
