/**
 * Compiles src/dwarf/kernels.c to dist/src/dwarf/kernels.wasm with clang-14 and wasm-ld-14
 * (Debian: clang-14, lld-14). Run by `npm run build`. Without the tools it says so and builds
 * nothing: the symbolizer then runs its TypeScript reader alone (same results, slower first
 * request). A compile error fails the build.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(root, 'src', 'dwarf', 'kernels.c');
const out = join(root, 'dist', 'src', 'dwarf', 'kernels.wasm');

function have(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
}


const clang = process.env.COVD_CLANG ?? 'clang-14';
const linker = process.env.COVD_WASM_LD ?? 'wasm-ld-14';
if (!have(clang) || !have(linker)) {
  // A stale module must not outlive its source.
  rmSync(out, { force: true });
  console.warn(`build-kernels: ${!have(clang) ? clang : linker} not found (Debian packages clang-14, lld-14); ` +
    'building without the WebAssembly DWARF kernels (the symbolizer works, its first request is slower)');
} else {
  mkdirSync(dirname(out), { recursive: true });
  execFileSync(clang, [
    '--target=wasm32', '-O2', '-fno-strict-aliasing', '-nostdlib', '-ffreestanding', '-fno-builtin', '-Wall', '-Wextra', '-Werror',
    // clang-14 finds wasm-ld next to itself (lld-14 installs it there).
    '-Wl,--no-entry', '-Wl,--export=__heap_base', '-Wl,--initial-memory=131072', '-Wl,--strip-all',
    '-o', out, src,
  ], { stdio: 'inherit' });
  if (!existsSync(out)) throw new Error(`build-kernels: ${clang} produced no ${out}`);
}
