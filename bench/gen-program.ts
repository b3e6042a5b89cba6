/**
 * Generated C programs of a chosen size (about 100k, 300k, 1M coverage PCs) for the symbolizer's
 * growth curve: many units of branchy functions, built with clang-14 -O1 -g and a pc-table, cached
 * under build/symbolize-bench/gen-<pcs>/ so later runs reuse them.
 *   node dist/bench/gen-program.js 100000   # prints the executable's path
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { repoRoot } from './lib/results.js';

const execFileP = promisify(execFile);
const GENERATOR_VERSION = 2;
/** Measured: one generated function gets about 20 PCs from SanitizerCoverage at -O1. */
const PCS_PER_FUNCTION = 20;
const FUNCTIONS_PER_FILE = 400;

function functionSource(i: number): string {
  const k = (i * 2654435761) >>> 0;
  const callee = i > 0 ? `if (r > ${k % 1000} && y < ${k % 7}) { sink = ${i}; r += f${i - 1}(y, r & 15); }` : `if (r > 100 && y < 5) { sink = 9; }`;
  return `int f${i}(int x, int y) {
  int r = ${k % 97};
  if (x > ${k % 31}) { sink = 1; r += y * 3; } else { sink = 2; r -= y; }
  switch ((x ^ y) & 7) {
    case 0: sink = 3; break;
    case 1: sink = 4; r *= 3; break;
    case 2: sink = 5; r ^= x; break;
    case 3: sink = 6; break;
    default: sink = 7;
  }
  for (int i = 0; i < (y & 3); i++) { if (i == x) sink = 8; r += i * x; }
  ${callee}
  return r;
}
`;
}

/** Writes the sources and builds them; resolves to the executable. */
export async function generateProgram(targetPcs: number): Promise<string> {
  const final = join(repoRoot, 'build', 'symbolize-bench', `gen-${targetPcs}-v${GENERATOR_VERSION}`);
  if (existsSync(join(final, 'prog'))) return join(final, 'prog');
  // Built in a private directory and renamed into place, so concurrent runs cannot mix files.
  const dir = `${final}.tmp-${process.pid}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const nFunctions = Math.ceil(targetPcs / PCS_PER_FUNCTION);
  const files: string[] = [];
  const decls: string[] = [];
  for (let start = 0; start < nFunctions; start += FUNCTIONS_PER_FILE) {
    const end = Math.min(nFunctions, start + FUNCTIONS_PER_FILE);
    const name = `unit${files.length}.c`;
    let text = 'extern volatile int sink;\n';
    if (start > 0) text += `int f${start - 1}(int, int);\n`;
    for (let i = start; i < end; i++) text += functionSource(i);
    writeFileSync(join(dir, name), text);
    files.push(name);
    decls.push(`int f${end - 1}(int, int);`);
  }
  writeFileSync(join(dir, 'main.c'), `#include <stdint.h>
volatile int sink;
/* The pc-table and counters need these hooks; libFuzzer is not linked. */
void __sanitizer_cov_8bit_counters_init(char *a, char *b) { (void)a; (void)b; }
void __sanitizer_cov_pcs_init(const uintptr_t *a, const uintptr_t *b) { (void)a; (void)b; }
${decls.join('\n')}
int main(int argc, char **argv) { (void)argv; return f${nFunctions - 1}(argc, argc) & 1; }
`);
  files.push('main.c');
  const flags = ['-O1', '-g', '-fsanitize-coverage=inline-8bit-counters,pc-table', '-c'];
  // Two compiles at a time (the machine has two cores), niced.
  const queue = [...files];
  const worker = async (): Promise<void> => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      await execFileP('nice', ['clang-14', ...flags, f, '-o', f.replace(/\.c$/, '.o')], { cwd: dir });
    }
  };
  await Promise.all([worker(), worker()]);
  await execFileP('clang-14', [...files.map((f) => f.replace(/\.c$/, '.o')), '-o', 'prog'], { cwd: dir });
  if (existsSync(join(final, 'prog'))) rmSync(dir, { recursive: true, force: true });
  else { rmSync(final, { recursive: true, force: true }); renameSync(dir, final); }
  return join(final, 'prog');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const n = Number(process.argv[2] ?? 100000);
  generateProgram(n).then((exe) => console.log(exe), (err) => { console.error(err); process.exitCode = 1; });
}
