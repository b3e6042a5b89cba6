/**
 * .debug_line programs, versions 2 to 5: header (DWARF 5 entry formats with MD5 included), then
 * the state machine, producing rows and sequences exactly as LLVM's DWARFDebugLine records them
 * (a sequence is valid when low < high; sequences sorted by low address).
 */
import * as C from './constants.js';
import { corrupt } from './errors.js';
import { kernelsOrTwins, type LineProgramInput } from './kernels.js';
import { upperBound } from './order.js';
import { Reader } from './reader.js';
import { formString, readForm, type Sections, type Unit } from './units.js';

export interface LineTable {
  version: number;
  /** Full path of each file index as llvm-symbolizer prints it ('' = no such index). */
  filePaths: string[];
  /** Index of the first file (1 before DWARF 5, 0 from DWARF 5). */
  fileBase: number;
  rowAddr: Float64Array;
  rowFile: Uint32Array;
  rowLine: Uint32Array;
  rowCol: Uint32Array;
  /** Sorted by low: seqLow[i], seqHigh[i], rows [seqFirst[i], seqLast[i]) (last = end_sequence row + 1). */
  seqLow: Float64Array;
  seqHigh: Float64Array;
  seqFirst: Uint32Array;
  seqLast: Uint32Array;
  /** Header-only tables: the program, for the kernel to run (kernels.ts lineLookup). */
  program?: LineProgramInput;
}

class Growable {
  addr: Float64Array;
  file: Uint32Array;
  line: Uint32Array;
  col: Uint32Array;
  n = 0;
  /** Sized from the program length (compilers emit about one row per 4-6 bytes), so it rarely grows. */
  constructor(capacity: number) {
    const c = Math.max(64, Math.min(capacity, 1 << 24));
    this.addr = new Float64Array(c); this.file = new Uint32Array(c); this.line = new Uint32Array(c); this.col = new Uint32Array(c);
  }
  /** Starts with the rows the kernel produced (adopting its arrays when they are at least as large). */
  take(a: Float64Array, f: Uint32Array, l: Uint32Array, c: Uint32Array): void {
    if (a.length >= this.addr.length) { this.addr = a; this.file = f; this.line = l; this.col = c; this.n = a.length; return; }
    this.addr.set(a); this.file.set(f); this.line.set(l); this.col.set(c);
    this.n = a.length;
  }
  push(a: number, f: number, l: number, c: number): void {
    if (this.n === this.addr.length) {
      const m = this.n * 2;
      const g = <T extends Float64Array | Uint32Array>(x: T): T => { const y = new (x.constructor as new (n: number) => T)(m); y.set(x); return y; };
      this.addr = g(this.addr); this.file = g(this.file); this.line = g(this.line); this.col = g(this.col);
    }
    const i = this.n++;
    this.addr[i] = a; this.file[i] = f; this.line[i] = l; this.col[i] = c;
  }
}

function isAbsolute(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\');
}

/** llvm::sys::path::append semantics: one separator between non-empty parts, none doubled. */
function append(path: string, comp: string): string {
  if (path.length > 0 && path.endsWith('/')) return path + comp.replace(/^\/+/, '');
  if (comp.startsWith('/') || path.length === 0) return path + comp;
  return path + '/' + comp;
}

/**
 * With headerOnly, only the file names are filled in (rows and sequences empty). Without charge,
 * the bytes read are not charged to the budget (the caller charges them itself).
 */
export function parseLineTable(sec: Sections, u: Unit, offset: number, headerOnly = false, charge = true): LineTable {
  const r = new Reader(sec.line, '.debug_line');
  r.seek(offset);
  let len = r.u32();
  let offSize = 4;
  if (len === 0xffffffff) { len = r.u64n(); offSize = 8; }
  else if (len >= 0xfffffff0) r.fail(`reserved unit length 0x${len.toString(16)}`);
  const prog = r.sub(len);
  const version = prog.u16();
  if (version < 2 || version > 5) prog.fail(`unsupported line table version ${version}`);
  let addrSize = u.addrSize;
  if (version >= 5) {
    addrSize = prog.u8();
    prog.u8(); // segment selector size
  }
  const headerLen = prog.uN(offSize);
  prog.need(headerLen);
  const programStart = prog.pos + headerLen;
  const minInst = prog.u8();
  const maxOps = version >= 4 ? prog.u8() : 1;
  const defaultIsStmt = prog.u8();
  void defaultIsStmt; void maxOps;
  const lineBase = (prog.u8() << 24) >> 24;
  const lineRange = prog.u8();
  const opcodeBase = prog.u8();
  const stdLens: number[] = [0];
  for (let i = 1; i < opcodeBase; i++) stdLens.push(prog.u8());

  const dirs: string[] = [];
  const files: { name: string; dir: number }[] = [];
  const fu: Unit = { ...u, offSize, addrSize };
  if (version >= 5) {
    const readEntries = (what: string, cb: (path: string, dir: number) => void): void => {
      const nFormats = prog.u8();
      const types: number[] = [], forms: number[] = [];
      for (let i = 0; i < nFormats; i++) { types.push(prog.uleb()); forms.push(prog.uleb()); }
      const count = prog.uleb();
      // Each entry takes at least one byte unless it has no fields at all.
      if (count > prog.remaining && (nFormats > 0 || count > 1 << 16)) prog.fail(`${count} ${what} entries cannot fit`);
      for (let e = 0; e < count; e++) {
        let path = '', dir = 0;
        for (let i = 0; i < nFormats; i++) {
          const form = forms[i]!;
          const v = readForm(prog, form, fu, 0);
          if (types[i] === C.DW_LNCT_path) path = formString(sec, fu, form, v);
          else if (types[i] === C.DW_LNCT_directory_index) dir = v;
        }
        cb(path, dir);
      }
    };
    readEntries('directory', (p) => dirs.push(p));
    readEntries('file name', (p, d) => files.push({ name: p, dir: d }));
  } else {
    for (;;) { const d = prog.cstr(); if (d === '') break; dirs.push(d); }
    for (;;) {
      const name = prog.cstr();
      if (name === '') break;
      const dir = prog.uleb(); prog.uleb(); prog.uleb();
      files.push({ name, dir });
    }
  }
  prog.seek(programStart);
  if (headerOnly) prog.pos = prog.end;
  if (charge) sec.budget.chargeLines((headerOnly ? programStart : prog.end) - offset);

  const needRange = (): void => { if (lineRange === 0) prog.fail('line_range is 0'); };
  // The hot loop reads bytes directly (pos < end is checked before each read); the rarer
  // opcodes go through the checked reader.
  const buf = prog.buf, end = prog.end;
  // Special opcodes' address and line advances, computed once instead of per row.
  const addrStep = new Float64Array(256), lineStep = new Int32Array(256);
  if (lineRange !== 0) {
    for (let op = opcodeBase; op < 256; op++) {
      const adj = op - opcodeBase;
      addrStep[op] = Math.floor(adj / lineRange) * minInst;
      lineStep[op] = lineBase + (adj % lineRange);
    }
  }
  const program: LineProgramInput = {
    buf, start: programStart, end, addrStep, lineStep, stdLens, opcodeBase, lineRange, minInst,
    constAddPc: lineRange === 0 ? 0 : Math.floor((255 - opcodeBase) / lineRange) * minInst,
  };
  let pos = prog.pos;
  let address = 0, file = 1, line = 1, column = 0;
  let seqEmpty = true, seqLow = 0, seqFirst = 0;
  const seqs: { low: number; high: number; first: number; last: number }[] = [];
  // The WebAssembly kernel runs the machine as far as it can; the loop below goes on from there
  // (to the end when the kernel stopped at define_file, an odd operand or an error).
  const out = headerOnly ? null : kernelsOrTwins().lineProgram(program);
  // When the kernel ran to the end its arrays are taken as they are.
  const rows = new Growable(headerOnly || out?.pos === end ? 0 : (out ? out.rowAddr.length : 0) + Math.ceil((end - (out ? out.pos : pos)) / 4));
  if (out) {
    rows.take(out.rowAddr, out.rowFile, out.rowLine, out.rowCol);
    for (let i = 0; i < out.seqLow.length; i++) seqs.push({ low: out.seqLow[i]!, high: out.seqHigh[i]!, first: out.seqFirst[i]!, last: out.seqLast[i]! });
    pos = out.pos;
    address = out.address; file = out.file; line = out.line; column = out.column;
    seqEmpty = out.seqEmpty; seqLow = out.seqLow0; seqFirst = out.seqFirst0;
  }
  const emit = (end: boolean): void => {
    if (seqEmpty) { seqEmpty = false; seqLow = address; seqFirst = rows.n; }
    rows.push(address, file, line, column);
    if (end) {
      if (seqLow < address && seqFirst < rows.n) seqs.push({ low: seqLow, high: address, first: seqFirst, last: rows.n });
      seqEmpty = true;
      address = 0; file = 1; line = 1; column = 0;
    }
  };
  while (pos < end) {
    const op = buf[pos++]!;
    if (op >= opcodeBase) {
      if (lineRange === 0) { prog.pos = pos; needRange(); }
      address += addrStep[op]!;
      line = (line + lineStep[op]!) >>> 0;
      if (seqEmpty) { seqEmpty = false; seqLow = address; seqFirst = rows.n; }
      rows.push(address, file, line, column);
      continue;
    }
    if (op === C.DW_LNS_set_column || op === C.DW_LNS_advance_line || op === C.DW_LNS_advance_pc || op === C.DW_LNS_set_file) {
      // One LEB128 operand, decoded in place.
      let v = 0, mul = 1, b = 0x80;
      while (b & 0x80) {
        if (pos >= end) { prog.pos = pos; prog.fail('unterminated LEB128'); }
        b = buf[pos++]!;
        v += (b & 0x7f) * mul;
        mul *= 128;
      }
      if (op === C.DW_LNS_advance_line) { if (b & 0x40) v -= mul; line = (line + v) >>> 0; }
      else if (op === C.DW_LNS_set_column) column = v & 0xffff;
      else if (op === C.DW_LNS_advance_pc) address += v * minInst;
      else file = v & 0xffff;
      continue;
    }
    prog.pos = pos;
    if (op === 0) {
      const elen = prog.uleb();
      prog.need(elen);
      const next = prog.pos + elen;
      if (elen > 0) {
        const sub = prog.u8();
        switch (sub) {
          case C.DW_LNE_end_sequence: emit(true); break;
          case C.DW_LNE_set_address: address = elen - 1 === 8 || elen - 1 === 4 ? prog.uN(elen - 1) : prog.uN(addrSize); break;
          case C.DW_LNE_define_file: {
            const name = prog.cstr(); const dir = prog.uleb(); prog.uleb(); prog.uleb();
            files.push({ name, dir });
            break;
          }
          default: break; // set_discriminator and vendor opcodes: nothing we keep
        }
        prog.seek(next);
      }
    } else {
      switch (op) {
        case C.DW_LNS_copy: emit(false); break;
        case C.DW_LNS_const_add_pc: needRange(); address += Math.floor((255 - opcodeBase) / lineRange) * minInst; break;
        case C.DW_LNS_fixed_advance_pc: address += prog.u16(); break;
        case C.DW_LNS_negate_stmt: case C.DW_LNS_set_basic_block: case C.DW_LNS_set_prologue_end: case C.DW_LNS_set_epilogue_begin:
          break;
        default:
          // Unknown standard opcode (or isa): skip its declared ULEB operands.
          for (let i = 0; i < (stdLens[op] ?? 0); i++) prog.uleb();
      }
    }
    pos = prog.pos;
  }
  seqs.sort((a, b) => a.low - b.low);

  const filePaths = files.map((f) => {
    if (isAbsolute(f.name)) return f.name;
    let incl = '';
    if (version >= 5) { if (f.dir < dirs.length) incl = dirs[f.dir]!; }
    else if (f.dir > 0 && f.dir <= dirs.length) incl = dirs[f.dir - 1]!;
    let p = '';
    if ((version < 5 || f.dir !== 0) && u.compDir !== '' && !isAbsolute(incl)) p = append(p, u.compDir);
    if (incl !== '') p = append(p, incl);
    return append(p, f.name);
  });
  const n = seqs.length;
  const t: LineTable = {
    ...(headerOnly ? { program } : {}),
    version, filePaths, fileBase: version >= 5 ? 0 : 1,
    rowAddr: rows.addr.subarray(0, rows.n), rowFile: rows.file.subarray(0, rows.n),
    rowLine: rows.line.subarray(0, rows.n), rowCol: rows.col.subarray(0, rows.n),
    seqLow: new Float64Array(n), seqHigh: new Float64Array(n), seqFirst: new Uint32Array(n), seqLast: new Uint32Array(n),
  };
  seqs.forEach((s, i) => { t.seqLow[i] = s.low; t.seqHigh[i] = s.high; t.seqFirst[i] = s.first; t.seqLast[i] = s.last; });
  return t;
}

/** The file path for a row's file index, or '' when the index names no file. */
export function lineFile(t: LineTable, index: number): string {
  const i = index - t.fileBase;
  return i >= 0 && i < t.filePaths.length ? t.filePaths[i]! : '';
}

/** First sequence whose high address is above addr (std::upper_bound by HighPC, as LLVM does). */
export function upperBoundSeq(t: LineTable, addr: number): number {
  return upperBound(t.seqHigh, addr);
}

/** The last row of sequence s at or below addr: upper_bound over rows (first + 1 .. last - 1) minus one. */
export function rowInSeq(t: LineTable, s: number, addr: number): number {
  return upperBound(t.rowAddr, addr, t.seqFirst[s]! + 1, t.seqLast[s]! - 1) - 1;
}

/** LLVM's lookupAddress: the row index for addr, or -1. */
export function lookupRow(t: LineTable, addr: number): number {
  const s = upperBoundSeq(t, addr);
  if (s === t.seqHigh.length || !(t.seqLow[s]! <= addr && addr < t.seqHigh[s]!)) return -1;
  return rowInSeq(t, s, addr);
}
