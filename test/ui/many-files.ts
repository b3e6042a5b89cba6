/**
 * A real fuzz target whose debug info names 5,000 source files in 250 directories, for the tree's
 * big-input test and benchmark. One generated C file uses `#line` to attribute each function to its
 * own file, so clang emits genuine DWARF for 5,000 files with a single fast compile. The named
 * files do not exist on disk (the source view says so); the tree, totals and functions are real.
 */
import { mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFuzzTarget } from '../helpers/fuzz-targets.js';
import { repoRoot } from './browser.js';

export const MANY_FILES = 5000;

export function manyFilesPath(i: number): string {
  return `/covd-many/lib${String(i % 250).padStart(3, '0')}/mod${i % 7}/file_${i}.c`;
}

function source(): string {
  const out: string[] = ['#include <stdint.h>', '#include <stddef.h>', 'typedef int (*fn_t)(const uint8_t *, size_t);'];
  for (let i = 0; i < MANY_FILES; i++) {
    out.push(`#line 1 "${manyFilesPath(i)}"`);
    out.push(`int f_${i}(const uint8_t *d, size_t n) {`);
    out.push(`  if (n > 0 && d[0] == ${i % 251}) return ${i % 5} + 1;`);
    out.push(`  if (n > 1 && d[1] == ${(i * 7) % 253}) return 7;`);
    out.push('  return 0;');
    out.push('}');
  }
  out.push('#line 1 "/covd-many/main/fuzz_many.c"');
  out.push(`static const fn_t table[${MANY_FILES}] = {${Array.from({ length: MANY_FILES }, (_, i) => `f_${i}`).join(',')}};`);
  out.push('int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {');
  out.push('  if (size < 2) return 0;');
  out.push(`  return table[((unsigned)data[0] << 8 | data[1]) % ${MANY_FILES}](data + 2, size - 2) > 100;`);
  out.push('}');
  return out.join('\n') + '\n';
}

/** Builds (once, cached by content) the 5,000-file target; resolves to the executable. */
export function buildManyFilesTarget(): Promise<string> {
  const dir = join(repoRoot, 'build', 'ui-many-files');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'fuzz_many.c');
  const text = source();
  if (!existsSync(file) || readFileSync(file, 'utf8') !== text) writeFileSync(file, text);
  return buildFuzzTarget({ name: 'fuzz_many', sources: [file], cflags: ['-O0'] });
}
