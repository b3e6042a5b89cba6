/**
 * Small real C programs for the DWARF tests, compiled with the installed clang-14 and gcc-12
 * into build/test-dwarf/<hash>/ (cached by source and flags), plus the helpers that compare
 * covd with llvm-symbolizer-14 on them.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const covdBin = join(repoRoot, 'bin', 'covd');

/** Sources: two files in different directories, a header with an inline function, static functions
 *  of the same name in two units, a switch, recursion and loops, so line tables have many files. */
const SOURCES: Record<string, string> = {
  'src/main.c': `#include <stdio.h>
#include <stdlib.h>
#include "inc/util.h"
static int helper(int x) { return x * 3 + 1; }
int classify(int v) {
  switch (v % 7) {
    case 0: return helper(v);
    case 1: return clamp(v, 0, 100);
    case 2: return v / 2;
    case 3: return fib(v % 20);
    default: return -v;
  }
}
int main(int argc, char **argv) {
  long sum = 0;
  for (int i = 0; i < argc * 1000; i++) sum += classify(i) + other_helper(i);
  if (argc > 1) sum += atoi(argv[1]);
  printf("%ld\\n", sum);
  return 0;
}
`,
  'src/lib/util.c': `#include "../inc/util.h"
static int helper(int x) { return x ^ 0x55; }
int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
/* Never called: dropped by --gc-sections, leaving its DWARF at address 0. */
int unused_function(int x) { return x * x - fib(x); }
/* Aliases at one address: llvm-symbolizer names the last of the largest in the symbol table. */
int util_real(int x) { return x * 7 + 1; }
int util_alias(int x) __attribute__((alias("util_real")));
int util_weak(int x) __attribute__((weak, alias("util_real")));
int other_helper(int x) {
  int acc = util_alias(x) & 1;
  for (int i = 0; i < (x & 15); i++)
    acc += clamp(helper(i), 1, 9);
  return acc;
}
`,
  'src/inc/util.h': `#pragma once
static inline int clamp(int v, int lo, int hi) {
  if (v < lo) return lo;
  if (v > hi) return hi;
  return v;
}
int fib(int n);
int other_helper(int x);
`,
  'fuzz/target.c': `#include <stdint.h>
#include <stddef.h>
#include <string.h>
static int check(const uint8_t *d, size_t n) {
  if (n > 3 && d[0] == 'F' && d[1] == 'U' && d[2] == 'Z') return d[3] == 'Z' ? 2 : 1;
  return 0;
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int r = check(data, size);
  for (size_t i = 0; i < size && i < 16; i++) if (data[i] == 0xff) r++;
  if (r > 5) { char buf[8]; memset(buf, r, sizeof buf); return buf[3] == 7; }
  return 0;
}
`,
};

export interface Variant {
  name: string;
  cc: string;
  flags: string[];
  sources: string[];
  /** Post-processing with objcopy (e.g. zstd compression, which gcc-12 cannot emit). */
  objcopy?: string[];
}

export const PROGRAM = ['src/main.c', 'src/lib/util.c'];
export const VARIANTS: Variant[] = [
  { name: 'gcc12-O2-dwarf5', cc: 'gcc-12', flags: ['-O2', '-g', '-gdwarf-5'], sources: PROGRAM },
  { name: 'gcc12-O2-dwarf4', cc: 'gcc-12', flags: ['-O2', '-gdwarf-4'], sources: PROGRAM },
  { name: 'gcc12-O2-gz', cc: 'gcc-12', flags: ['-O2', '-g', '-gz'], sources: PROGRAM },
  { name: 'clang14-O2-dwarf5', cc: 'clang-14', flags: ['-O2', '-g'], sources: PROGRAM },
  { name: 'clang14-O0-dwarf4', cc: 'clang-14', flags: ['-O0', '-gdwarf-4'], sources: PROGRAM },
  { name: 'gcc12-O1-dwarf2', cc: 'gcc-12', flags: ['-O1', '-gdwarf-2'], sources: PROGRAM },
  { name: 'gcc12-O0-dwarf3', cc: 'gcc-12', flags: ['-O0', '-gdwarf-3'], sources: PROGRAM },
  // Function sections: unit ranges through rnglists, one line sequence per function, and with
  // --gc-sections, debug info of dropped functions at address 0.
  { name: 'clang14-O2-function-sections-gc', cc: 'clang-14', flags: ['-O2', '-g', '-ffunction-sections', '-Wl,--gc-sections'], sources: PROGRAM },
  { name: 'gcc12-O2-function-sections-gc', cc: 'gcc-12', flags: ['-O2', '-g', '-ffunction-sections', '-Wl,--gc-sections'], sources: PROGRAM },
  { name: 'gcc12-O2-dwarf4-function-sections', cc: 'gcc-12', flags: ['-O2', '-gdwarf-4', '-ffunction-sections'], sources: PROGRAM },
  {
    name: 'clang14-fuzzer-pctable', cc: 'clang-14',
    flags: ['-O1', '-g', '-fsanitize=fuzzer', '-fsanitize-coverage=inline-8bit-counters,pc-table'],
    sources: ['fuzz/target.c'],
  },
];

/** Writes the sources into the cache dir (relative paths, so DWARF names subdirectories) and compiles. */
export function build(v: Variant): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(v));
  for (const f of Object.keys(SOURCES).sort()) h.update(f).update(SOURCES[f]!);
  const dir = join(repoRoot, 'build', 'test-dwarf', `${v.name}-${h.digest('hex').slice(0, 12)}`);
  const exe = join(dir, v.name);
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(SOURCES)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  const tmp = `${exe}.tmp${process.pid}`;
  execFileSync(v.cc, [...v.flags, ...v.sources, '-o', tmp], { cwd: dir, stdio: 'pipe' });
  if (v.objcopy) execFileSync('objcopy', [...v.objcopy, tmp], { stdio: 'pipe' });
  renameSync(tmp, exe);
  return exe;
}

/** [start, size] of a section, from readelf (independent of covd's ELF reader). */
export function sectionBounds(exe: string, name: string): [number, number] {
  const out = execFileSync('readelf', ['-SW', exe], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const m = line.match(/\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)/);
    if (m && m[1] === name) return [parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
  }
  throw new Error(`${exe}: no section ${name}`);
}

/** The PCs of the __sancov_pcs table (pairs of PC and flags), extracted with objcopy. */
export function pcTable(exe: string, tmpDir: string): bigint[] {
  const out = join(tmpDir, 'pcs.bin');
  execFileSync('objcopy', ['-O', 'binary', '--only-section=__sancov_pcs', exe, out], { stdio: 'pipe' });
  const b = readFileSync(out);
  const v = new BigUint64Array(b.buffer, b.byteOffset, Math.floor(b.length / 8));
  const pcs: bigint[] = [];
  for (let i = 0; i < v.length; i += 2) pcs.push(v[i]!);
  return pcs;
}

/** Start addresses of every defined function symbol (nm), where naming rules matter most. */
export function functionStarts(exe: string): bigint[] {
  return execFileSync('nm', ['--defined-only', exe], { encoding: 'utf8' }).split('\n')
    .map((l) => l.split(' '))
    .filter((p) => p.length === 3 && /^[tTwW]$/.test(p[1]!))
    .map((p) => BigInt('0x' + p[0]!));
}

/** Deterministic addresses spread over .text (a small LCG, so failures reproduce). */
export function randomTextAddresses(exe: string, count: number, seed = 12345): bigint[] {
  const [start, size] = sectionBounds(exe, '.text');
  let x = seed >>> 0;
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out.push(BigInt(start + (x % size)));
  }
  return out;
}

export interface Loc { Address: string; FileName: string; Line: number; Column: number; FunctionName: string }

function parseJsonLines(text: string): Loc[] {
  return text.trim().split('\n').map((l) => {
    const o = JSON.parse(l) as { Address: string; Symbol: Loc[] };
    const s = o.Symbol[0]!;
    return { Address: o.Address, FileName: s.FileName, Line: s.Line, Column: s.Column, FunctionName: s.FunctionName };
  });
}

export function llvmSymbolize(exe: string, addrs: bigint[]): Loc[] {
  const input = addrs.map((a) => '0x' + a.toString(16)).join('\n') + '\n';
  return parseJsonLines(execFileSync('llvm-symbolizer-14', ['--no-inlines', '--output-style=JSON', `--obj=${exe}`], { input, maxBuffer: 1 << 28, encoding: 'utf8' }));
}

export function covdSymbolize(exe: string, addrs: bigint[], extra: string[] = []): Loc[] {
  const input = addrs.map((a) => '0x' + a.toString(16)).join('\n') + '\n';
  return parseJsonLines(execFileSync(process.execPath, [covdBin, 'symbolize', `--exe=${exe}`, '--output-style=JSON', ...extra], { input, maxBuffer: 1 << 28, encoding: 'utf8' }));
}

/** Addresses where the two disagree on FileName, Line, Column or (for unmangled names) FunctionName. */
export function differences(ours: Loc[], theirs: Loc[]): string[] {
  const out: string[] = [];
  if (ours.length !== theirs.length) return [`${ours.length} results vs ${theirs.length}`];
  for (let i = 0; i < ours.length; i++) {
    const a = ours[i]!, b = theirs[i]!;
    const fnDiffers = !b.FunctionName.startsWith('_Z') && !a.FunctionName.startsWith('_Z') && a.FunctionName !== b.FunctionName;
    if (a.Address !== b.Address || a.FileName !== b.FileName || a.Line !== b.Line || a.Column !== b.Column || fnDiffers) {
      out.push(`${b.Address}: covd ${a.FileName}:${a.Line}:${a.Column} ${a.FunctionName} / llvm ${b.FileName}:${b.Line}:${b.Column} ${b.FunctionName}`);
    }
  }
  return out;
}

/** examples/iniparse built by g++-12 with a plain main (gcc has no libFuzzer), cached by source. */
export function buildWithGcc(flags: string[]): string {
  const example = join(repoRoot, 'examples', 'iniparse');
  const files = readdirSync(example).filter((f) => /\.(cpp|hpp)$/.test(f)).sort();
  const h = createHash('sha256').update(JSON.stringify(flags));
  for (const f of files) h.update(f).update(readFileSync(join(example, f)));
  const dir = join(repoRoot, 'build', 'test-dwarf', `iniparse-gcc12-${h.digest('hex').slice(0, 12)}`);
  const exe = join(dir, 'iniparse');
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  const tmp = `${exe}.tmp${process.pid}`;
  const sources = ['fuzz_iniparse.cpp', 'lexer.cpp', 'document.cpp', 'run_inputs.cpp'].map((f) => join(example, f));
  execFileSync('g++-12', ['-std=c++17', '-g', ...flags, ...sources, '-o', tmp], { stdio: 'pipe' });
  renameSync(tmp, exe);
  return exe;
}
