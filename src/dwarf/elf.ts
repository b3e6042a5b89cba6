/**
 * ELF64 little-endian reader: section headers, symbol table, build-id note, .gnu_debuglink,
 * and section contents (decompressed once, on first use). Reads only the parts it needs
 * from the file descriptor, so a large executable is never loaded whole.
 */
import { closeSync, fstatSync, readSync } from 'node:fs';
import { openRegularSync, UntrustedFileError } from '../util/untrusted.js';
import { DebugInfoError, corrupt } from './errors.js';
import { Reader, strAt } from './reader.js';
import { decompressSection } from './compressed.js';

export interface Section {
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

export const SHT_NOBITS = 8;
export const SHT_SYMTAB = 2;
export const SHT_DYNSYM = 11;
export const SHT_NOTE = 7;
export const SHF_COMPRESSED = 0x800n;
export const SHF_EXECINSTR = 0x4n;

/** Caps against hostile headers: counts can never exceed what the file could hold. */
const MAX_SECTIONS = 1 << 20;

export class ElfFile {
  readonly sections: Section[] = [];
  private readonly cache = new Map<string, Uint8Array>();
  private fd: number | null;
  readonly fileSize: number;

  private constructor(readonly path: string, fd: number) {
    this.fd = fd;
    this.fileSize = fstatSync(fd).size;
  }

  static open(path: string): ElfFile {
    let fd: number;
    try {
      // Non-blocking and regular files only: an executable path that names a FIFO would
      // otherwise hold a symbolizer thread until someone writes to it.
      fd = openRegularSync(path).fd;
    } catch (err) {
      const e = err as UntrustedFileError;
      if (e.kind === 'ENOENT') throw new DebugInfoError('ENOENT', `${path}: no such file`);
      if (e.kind === 'NOT_REGULAR') throw new DebugInfoError('NOT_REGULAR', e.message);
      throw new DebugInfoError('ENOENT', e.message);
    }
    const elf = new ElfFile(path, fd);
    try {
      elf.parseHeaders();
    } catch (err) {
      elf.close();
      throw err;
    }
    return elf;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private readAt(off: number, len: number, what: string): Uint8Array {
    if (!(off >= 0) || !(len >= 0) || off + len > this.fileSize) {
      throw corrupt(`${this.path}`, `${what} at 0x${off.toString(16)}+0x${len.toString(16)} lies outside the file of ${this.fileSize} bytes`);
    }
    if (this.fd === null) throw new DebugInfoError('CORRUPT', `${this.path}: file already closed`);
    const buf = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const n = readSync(this.fd, buf, done, len - done, off + done);
      if (n <= 0) throw corrupt(this.path, `short read of ${what}`);
      done += n;
    }
    return buf;
  }

  private parseHeaders(): void {
    if (this.fileSize < 64) throw new DebugInfoError('NOT_ELF', `${this.path}: not an ELF file (only ${this.fileSize} bytes)`);
    const eh = new Reader(this.readAt(0, 64, 'ELF header'), 'ELF header');
    const magic = eh.u32();
    if (magic !== 0x464c457f) throw new DebugInfoError('NOT_ELF', `${this.path}: not an ELF file`);
    const cls = eh.u8();
    const data = eh.u8();
    if (cls !== 2 || data !== 1) throw new DebugInfoError('NOT_ELF', `${this.path}: not an ELF64 little-endian file (class ${cls}, data ${data})`);
    eh.seek(0x28);
    const shoff = eh.u64n();
    eh.seek(0x3a);
    const shentsize = eh.u16();
    let shnum = eh.u16();
    let shstrndx = eh.u16();
    if (shoff === 0) throw new DebugInfoError('NO_DEBUG_INFO', `${this.path}: ELF file has no section headers`);
    if (shentsize < 64) throw corrupt(`${this.path} ELF header`, `section header size ${shentsize} < 64`);
    if (shnum === 0 || shstrndx === 0xffff) {
      // Extended numbering: the real values live in section header 0.
      const s0 = new Reader(this.readAt(shoff, 64, 'section header 0'), 'section header 0');
      s0.seek(0x20);
      const size0 = s0.u64n();
      s0.seek(0x28);
      const link0 = s0.u32();
      if (shnum === 0) shnum = size0;
      if (shstrndx === 0xffff) shstrndx = link0;
    }
    if (shnum > MAX_SECTIONS || shoff + shnum * shentsize > this.fileSize) {
      throw corrupt(`${this.path} ELF header`, `${shnum} section headers at 0x${shoff.toString(16)} do not fit in the file`);
    }
    const sh = new Reader(this.readAt(shoff, shnum * shentsize, 'section headers'), 'section headers');
    const raw: (Section & { nameOff: number })[] = [];
    for (let i = 0; i < shnum; i++) {
      sh.seek(i * shentsize);
      const nameOff = sh.u32();
      const type = sh.u32();
      const flags = sh.u64();
      const addr = sh.u64();
      const offset = sh.u64n();
      const size = sh.u64n();
      const link = sh.u32();
      sh.u32();
      sh.u64();
      const entsize = sh.u64n();
      raw.push({ name: '', nameOff, type, flags, addr, offset, size, link, entsize });
    }
    if (shstrndx >= raw.length) throw corrupt(`${this.path} ELF header`, `section name table index ${shstrndx} out of range`);
    const strs = raw[shstrndx]!;
    const names = this.readAt(strs.offset, strs.size, 'section name table');
    for (const s of raw) {
      const { nameOff, ...sec } = s;
      sec.name = nameOff < names.length ? strAt(names, nameOff, 'section name table') : '';
      this.sections.push(sec);
    }
  }

  section(name: string): Section | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** Has a section with this name (also its old-style .zdebug_ form). */
  has(name: string): boolean {
    const s = this.section(name) ?? (name.startsWith('.debug_') ? this.section('.z' + name.slice(1)) : undefined);
    return s !== undefined && s.type !== SHT_NOBITS && s.size > 0;
  }

  /** Section bytes, decompressed, cached; an empty array when the section is absent. */
  data(name: string): Uint8Array {
    const hit = this.cache.get(name);
    if (hit) return hit;
    let out: Uint8Array = new Uint8Array(0);
    let s = this.section(name);
    let zdebug = false;
    if (!s && name.startsWith('.debug_')) {
      s = this.section('.z' + name.slice(1));
      zdebug = s !== undefined;
    }
    if (s && s.type !== SHT_NOBITS && s.size > 0) {
      const bytes = this.readAt(s.offset, s.size, `section ${s.name}`);
      out = (s.flags & SHF_COMPRESSED) !== 0n || zdebug ? decompressSection(bytes, `${this.path} ${s.name}`, zdebug) : bytes;
    }
    this.cache.set(name, out);
    return out;
  }

  /** Index of the section whose [addr, addr+size) contains a, for executable sections only. */
  buildId(): string | null {
    for (const s of this.sections) {
      if (s.type !== SHT_NOTE || s.size === 0 || s.size > 1 << 20) continue;
      const r = new Reader(this.readAt(s.offset, s.size, `note ${s.name}`), s.name);
      while (r.remaining >= 12) {
        const namesz = r.u32();
        const descsz = r.u32();
        const type = r.u32();
        const nameStart = r.pos;
        r.skip((namesz + 3) & ~3 & 0x7fffffff);
        const descStart = r.pos;
        r.skip((descsz + 3) & ~3 & 0x7fffffff);
        if (type === 3 && namesz === 4 && r.buf[nameStart] === 0x47 /* G */ && descsz <= 64) {
          return Buffer.from(r.buf.subarray(descStart, descStart + descsz)).toString('hex');
        }
      }
    }
    return null;
  }

  /** The file name and CRC of .gnu_debuglink, if present. */
  debugLink(): { file: string; crc: number } | null {
    const s = this.section('.gnu_debuglink');
    if (!s || s.size === 0 || s.size > 4096) return null;
    const r = new Reader(this.readAt(s.offset, s.size, '.gnu_debuglink'), '.gnu_debuglink');
    const file = r.cstr();
    r.pos = (r.pos + 3) & ~3;
    const crc = r.remaining >= 4 ? r.u32() : 0;
    return file ? { file, crc } : null;
  }

  /** Raw bytes of a non-debug section by header (symbol and string tables). */
  sectionBytes(s: Section): Uint8Array {
    if (s.type === SHT_NOBITS || s.size === 0) return new Uint8Array(0);
    return this.readAt(s.offset, s.size, `section ${s.name}`);
  }
}
