/**
 * Compiles src/dwarf/demangle.cpp (a small driver around LLVM's own Itanium demangler,
 * llvm/Demangle/ItaniumDemangle.h) to dist/src/dwarf/demangle.wasm. Run by `npm run build`.
 *
 * Needs clang++-14 and wasm-ld-14 (Debian: clang-14, lld-14), the demangler's header from
 * llvm-14-dev, and a wasm32 C library and C++ headers: wasi-libc, libc++-14-dev-wasm32 and
 * libclang-rt-14-dev-wasm32 (scripts/install-deps.sh installs them all). Without them it says
 * so and builds nothing: `covd symbolize` and the daemon then show C++ names mangled. A compile
 * error fails the build.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(root, 'src', 'dwarf', 'demangle.cpp');
const out = join(root, 'dist', 'src', 'dwarf', 'demangle.wasm');

const clang = process.env.COVD_CLANGXX ?? 'clang++-14';
const llvmInclude = process.env.COVD_LLVM_INCLUDE ?? '/usr/lib/llvm-14/include';
/** Debian's wasi-libc layout: headers in /usr/include/wasm32-wasi, libraries in /usr/lib/wasm32-wasi. */
const sysroot = process.env.COVD_WASI_SYSROOT ?? '/usr';

function have(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
}

const needs: [boolean, string][] = [
  [have(clang), `${clang} (Debian package clang-14)`],
  [have('wasm-ld-14') || !!process.env.COVD_WASM_LD, 'wasm-ld-14 (lld-14)'],
  [existsSync(join(llvmInclude, 'llvm', 'Demangle', 'ItaniumDemangle.h')), `${llvmInclude}/llvm/Demangle/ItaniumDemangle.h (llvm-14-dev)`],
  [existsSync(join(sysroot, 'lib', 'wasm32-wasi', 'libc.a')), `${sysroot}/lib/wasm32-wasi/libc.a (wasi-libc)`],
  [existsSync(join(sysroot, 'include', 'wasm32-wasi', 'c++', 'v1', 'utility')), `${sysroot}/include/wasm32-wasi/c++/v1 (libc++-14-dev-wasm32)`],
];
const missing = needs.filter(([ok]) => !ok).map(([, what]) => what);
if (missing.length > 0) {
  // A stale module must not outlive its source.
  rmSync(out, { force: true });
  console.warn(`build-demangler: missing ${missing.join(', ')}; building without the C++ demangler ` +
    '(function names stay mangled; scripts/install-deps.sh installs what it needs)');
} else {
  mkdirSync(dirname(out), { recursive: true });
  execFileSync(clang, [
    '--target=wasm32-wasi', `--sysroot=${sysroot}`, '-Os', '-std=c++17', '-DNDEBUG',
    // Features every Node 20 has: memcpy and friends become single instructions.
    '-mbulk-memory', '-msign-ext', '-mnontrapping-fptoint',
    '-fno-exceptions', '-fno-rtti', '-Wall', '-Wextra', '-Werror', '-isystem', llvmInclude,
    // A reactor (no main): JavaScript calls _initialize, then the dm_* exports. No libc++ is
    // linked (the demangler needs only its headers); wasi-libc gives malloc and snprintf.
    '-mexec-model=reactor', '-nostdlib++',
    // The stack below the data, so an overflow traps instead of overwriting it; memory capped,
    // so a name whose demangling blows up fails (and stays mangled) instead of taking gigabytes.
    '-Wl,--stack-first', '-Wl,-z,stack-size=1048576', '-Wl,--max-memory=134217728', '-Wl,--strip-all',
    '-o', out, src,
  ], { stdio: 'inherit' });
  if (!existsSync(out)) throw new Error(`build-demangler: ${clang} produced no ${out}`);
}
