/**
 * Demangling function names the way llvm-symbolizer-14 prints them by default.
 *
 * llvm-symbolizer takes a name from the symbol table (or from DWARF's DW_AT_linkage_name /
 * DW_AT_name where no symbol covers the address) and demangles it when it begins with `_Z` or
 * `___Z` (Itanium C++, which also covers Rust's legacy `_ZN...17h<hash>E` names; `__Z` is left
 * alone), or `_R` (Rust v0). A name that does not parse is printed as it is.
 *
 * Itanium names go through LLVM's own demangler (llvm/Demangle/ItaniumDemangle.h from
 * llvm-14-dev, the code llvm-symbolizer-14 runs) compiled to WebAssembly as demangle.wasm by
 * scripts/build-demangler.ts (driver: demangle.cpp). Rust v0 names go to rust-v0.ts. Without
 * demangle.wasm (the build's tools were missing: it warns) Itanium names stay mangled;
 * `COVD_DEMANGLE=0` turns demangling off altogether (`covd symbolize --no-demangle` sets it,
 * so pool threads see it too).
 *
 * One module instance per thread. Names are passed in batches: one call demangles thousands.
 * A name that traps the module (out of memory: a demangling that blows up is cut off at the
 * module's 128 MiB, or a stack overflow) stays mangled, and the instance is replaced.
 */
import { readFileSync } from 'node:fs';
import { demangleRustV0 } from './rust-v0.js';

/** The parts of the WebAssembly API used here (the project's lib settings do not declare it). */
interface WasmApi {
  Module: { new (bytes: Uint8Array): object; imports(module: object): { module: string; name: string; kind: string }[] };
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Exports {
  memory: { readonly buffer: ArrayBuffer };
  _initialize?: () => void;
  dm_input(bytes: number): number;
  dm_output(): number;
  dm_run(count: number, bytes: number): number;
}

/** Longest name handed to the demangler, in UTF-16 units (llvm-symbolizer has no limit; names this long are hostile). */
const MAX_NAME_LENGTH = 1 << 16;
/** Input bytes per call. */
const CHUNK_BYTES = 1 << 20;

let disabled = process.env.COVD_DEMANGLE === '0';
let compiled: object | null | undefined;
let instance: Exports | null = null;

function load(): object | null {
  if (compiled !== undefined) return compiled;
  try {
    const bytes = readFileSync(new URL('./demangle.wasm', import.meta.url));
    // Compiled as the process's flags say: a symbolizing covd sets them at its entry point
    // (src/cli/v8-flags.ts) so that each function is compiled by Liftoff as a name first needs
    // it (about 2 ms, then 1 to 5 ms as names come) and never tiers up: TurboFan would take
    // about 200 ms over the module, and tiering up cost more than it saved up to 10,000 names
    // (bench/NOTES-symbolize.md).
    compiled = new wasm.Module(bytes);
  } catch {
    compiled = null;
  }
  return compiled;
}

function instantiate(): Exports | null {
  const mod = load();
  if (!mod) return null;
  // wasi-libc's stdio names a few WASI calls the demangler never makes: each fails with ENOSYS.
  const imports: Record<string, Record<string, () => number>> = {};
  for (const imp of wasm.Module.imports(mod)) {
    if (imp.kind !== 'function') continue;
    (imports[imp.module] ??= {})[imp.name] = imp.name === 'proc_exit' ? () => { throw new Error('demangler exited'); } : () => 52;
  }
  const x = new wasm.Instance(mod, imports).exports as Exports;
  x._initialize?.();
  return x;
}

/** Whether Itanium names can be demangled on this thread (demangle.wasm built and loadable, not turned off). */
export function demanglerActive(): boolean {
  if (disabled) return false;
  instance ??= instantiate();
  return instance !== null;
}

/**
 * Compiles and instantiates the module and demangles a few typical names (so the JavaScript
 * around it has run once too): a symbolizer thread calls it when it starts, as it compiles the
 * kernels then, so a request does not pay it. About 12 ms of CPU; nothing when demangling is
 * off or the module is missing.
 */
export function prepareDemangler(): void {
  if (!demanglerActive()) return;
  demangleNames([
    '_ZN3ini6ParserINS_7CounterELm4EE4feedIPKhEEbT_S6_',
    '_ZNKSt6vectorINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEESaIS5_EE4sizeEv',
    '_ZZN6fuzzer6Fuzzer7RunOneEPKhmbPNS_9InputInfoEbPbENK3$_0clEmm',
    '_ZN12_GLOBAL__N_18CaselessclERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEES8_',
  ]);
}

/** Turns demangling off (false) or back on, on this thread (what COVD_DEMANGLE=0 does at start). */
export function setDemanglingEnabled(on: boolean): void { disabled = !on; }

/** Whether demangling is on for this thread (it may still be unavailable: see demanglerActive). */
export function demanglingEnabled(): boolean { return !disabled; }

/** Names llvm-symbolizer-14 hands to its Itanium demangler: `_Z...` and `___Z...` (blocks). */
export function isItaniumName(name: string): boolean {
  return name.charCodeAt(0) === 95 && (name.charCodeAt(1) === 90 || (name.charCodeAt(1) === 95 && name.charCodeAt(2) === 95 && name.charCodeAt(3) === 90));
}

/** Names llvm-symbolizer-14 hands to its Rust demangler: `_R...`. */
export function isRustV0Name(name: string): boolean {
  return name.charCodeAt(0) === 95 && name.charCodeAt(1) === 82;
}

/** Whether llvm-symbolizer-14 would try to demangle the name. */
export function wantsDemangling(name: string): boolean {
  return isItaniumName(name) || isRustV0Name(name);
}

/**
 * Each name as llvm-symbolizer-14 prints it by default: demangled when it would demangle it,
 * else as it is. The result is a new array (the input is not changed). With demangling off,
 * or without the module for Itanium names, names come back as they are.
 */
export function demangleNames(names: readonly string[]): string[] {
  const out = names.slice();
  if (disabled) return out;
  const itanium: number[] = [];
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    if (isItaniumName(n)) { if (n.length <= MAX_NAME_LENGTH) itanium.push(i); }
    else if (isRustV0Name(n)) out[i] = demangleRustV0(n) ?? n;
  }
  if (itanium.length > 0 && demanglerActive()) demangleItanium(names, itanium, out);
  return out;
}

/** One name, as demangleNames would give it. */
export function demangle(name: string): string {
  return demangleNames([name])[0]!;
}

/** Demangles names[idx[k]] into out[idx[k]], in batches of about CHUNK_BYTES. */
function demangleItanium(names: readonly string[], idx: number[], out: string[]): void {
  let start = 0;
  while (start < idx.length) {
    let end = start, bytes = 0;
    while (end < idx.length && (end === start || bytes < CHUNK_BYTES)) bytes += Buffer.byteLength(names[idx[end++]!]!) + 1;
    try {
      runBatch(names, idx, start, end, out);
    } catch {
      // Some name trapped the module (its state is then unknown): a fresh instance, one name at a time.
      instance = instantiate();
      for (let k = start; k < end && instance; k++) {
        try {
          runBatch(names, idx, k, k + 1, out);
        } catch {
          instance = instantiate();
        }
      }
      if (!instance) return;
    }
    start = end;
  }
}

function runBatch(names: readonly string[], idx: number[], start: number, end: number, out: string[]): void {
  const x = instance!;
  const input = Buffer.from(idx.slice(start, end).map((i) => names[i]!).join('\0') + '\0', 'utf8');
  const at = x.dm_input(input.length);
  new Uint8Array(x.memory.buffer, at, input.length).set(input);
  const len = x.dm_run(end - start, input.length);
  const res = Buffer.from(x.memory.buffer, x.dm_output(), len);
  let pos = 0;
  for (let k = start; k < end; k++) {
    const stop = res.indexOf(0, pos);
    if (stop < 0) throw new Error('demangler output ended early');
    if (res[pos] === 49 /* '1' */) out[idx[k]!] = res.toString('utf8', pos + 1, stop);
    pos = stop + 1;
  }
}
