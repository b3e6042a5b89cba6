/**
 * Rust names: v0 (`_R...`) names demangled as llvm-symbolizer-14 prints them (src/dwarf/rust-v0.ts)
 * and legacy ones (`_ZN...17h<hash>E`, Itanium), against llvm-cxxfilt-14 (the same LLVM 14
 * demanglers) on hand-made names for every construct of the grammar and on mutations of a real
 * program's names, and against llvm-symbolizer-14 on that program built by rustc (when rustc is
 * installed: $RUSTC, rustc on PATH or ~/.cargo/bin/rustc).
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { demangleNames } from '../../src/dwarf/demangle.js';
import { decodePunycode, demangleRustV0 } from '../../src/dwarf/rust-v0.js';
import { covdSymbolize, functionStarts, llvmSymbolize, randomTextAddresses, repoRoot } from './programs.js';

/** Names for each construct: paths, impls, closures and shims, generic arguments, every type and constant form, binders, ABIs, punycode, suffixes, and broken ones. */
const CRAFTED = [
  '_RNvC7mycrate3foo', '_RNvCs1234_7mycrate3foo', '_RNCNvC1a1f0B3_', '_RINvC1a1fKb1_E', '_RINvC1a1fKb0_E', '_RINvC1a1fKb2_E',
  '_RINvC1a1fKc61_E', '_RINvC1a1fKc27_E', '_RINvC1a1fKc22_E', '_RINvC1a1fKc5c_E', '_RINvC1a1fKca_E', '_RINvC1a1fKc9_E',
  '_RINvC1a1fKcd_E', '_RINvC1a1fKc7f_E', '_RINvC1a1fKc1f600_E', '_RINvC1a1fKc1000000_E', '_RINvC1a1fKl0_E', '_RINvC1a1fKln1_E',
  '_RINvC1a1fKlnff_E', '_RINvC1a1fKy123456789abcdef0_E', '_RINvC1a1fKy123456789abcdef01_E', '_RINvC1a1fKo00_E', '_RINvC1a1fKpE', '_RINvC1a1fKeE',
  '_RINvC1a1fKhA_E', '_RINvC1a1fFKCEuE', '_RINvC1a1fFUKCEuE', '_RINvC1a1fFK5cdeclhEtE', '_RINvC1a1fFK9sysv64_abiEuE', '_RINvC1a1fFKu5cdeclEuE',
  '_RINvC1a1fFG_RL0_hEuE', '_RINvC1a1fFG0_RL1_hRL0_hEuE', '_RINvC1a1fFRL1_hEuE', '_RINvC1a1fFRL_hEuE', '_RINvC1a1fDNtC1a5TraitEL_E', '_RINvC1a1fDNtC1a5TraitEL0_E',
  '_RINvC1a1fDG_NtC1a5TraitEL0_E', '_RINvC1a1fDINtC1a5TraitmEp4Item1hEL_E', '_RINvC1a1fDNtC1a5Traitp4Item1hp1B1tEL_E', '_RINvC1a1fDNtC1a5TraitNtC1a4SendEL_E', '_RINvC1a1fThEE', '_RINvC1a1fThtEE',
  '_RINvC1a1fTEE', '_RINvC1a1fAhKj4_E', '_RINvC1a1fShE', '_RINvC1a1fPhOhQhRhE', '_RINvC1a1fQL_hE', '_RINvC1a1fvzuE',
  '_RNvC1a1f.llvm.1234', '_RNvC1a1f.cold.0', '_RNvC1a1fC1b', '_RNvC1a1fC1bC1c', '_RNvYNtC1a1TNtC1b5Trait1f', '_RNvMNtC1a1TNtB2_1U1f',
  '_RNvXNtC1a1TNtC1a1UNtC1b5Trait1f', '_RNvXs_NtC1a1TNtC1a1UNtC1b5Trait1f', '_RNSNvC1a1f6vtable', '_RNSs_NvC1a1f6vtable', '_RNXNvC1a1f1x', '_RNXNvC1a1f0',
  '_RNaNvC1a1f0', '_RNaNvC1a1f1x', '_RNvC1a0', '_RNvNtC1a1b1c', '_RNvC1a2_x', '_RNvC1a3_xy',
  '_RNvC1au7gr_e_2a', '_RNvC1au3bcd', '_RNvC1au8_mnchen_3ya', '_RNvC1au4zzzz', '_RNvC1au2__', '_RNvCu6_mnchen3foo',
  '_RNvC1a01f', '_RNvC1a1f1', '_RNvC1a1fE', '_R', '_RC', '_RC1a',
  '_RC0', '_R0NvC1a1f', '_RNvB_1f', '_RNvC1aB2_', '_RINvC1a1fBa_E', '_RINvC1a1fhB8_E',
  '_RINvC1a1fKB8_E', '_RNvC1a1f$x',
];

const PROGRAM = `use std::collections::HashMap;
use std::fmt::Debug;
pub trait Shape { fn area(&self) -> f64; fn name(&self) -> &'static str { "shape" } }
pub struct Circle<T> { r: T }
impl Shape for Circle<f64> { fn area(&self) -> f64 { 3.14 * self.r * self.r } }
impl<T: Debug> Circle<T> { #[inline(never)] pub fn show(&self) -> String { format!("{:?}", self.r) } }
#[inline(never)] pub fn generic<T: Clone + Debug, const N: usize>(x: [T; N]) -> Vec<T> { x.to_vec() }
#[inline(never)] pub fn with_closure(v: &[i32]) -> i32 { let f = |a: &i32| a * 2; v.iter().map(f).sum() }
#[inline(never)] pub fn dynf(s: &dyn Shape) -> f64 { s.area() }
#[inline(never)] pub fn tuple(x: (u8, i64, char), y: &mut [u16]) -> (bool, ()) { y[0] = x.0 as u16; (x.1 > 0, ()) }
#[inline(never)] pub fn fnptr(f: fn(u32) -> u32, g: unsafe extern "C" fn(*const u8) -> i32) -> u32 { f(1) + unsafe { g(std::ptr::null()) } as u32 }
extern "C" fn cfun(_p: *const u8) -> i32 { 0 }
fn ff(x: u32) -> u32 { x + 1 }
pub mod ñandú { #[inline(never)] pub fn größe() -> u32 { 7 } }
#[inline(never)] pub fn boolconst<const B: bool, const C: char, const I: i8>() -> i32 { if B { C as i32 + I as i32 } else { 0 } }
fn main() {
    let c = Circle { r: 2.0f64 };
    println!("{} {} {}", c.area(), c.show(), Circle { r: "x" }.show());
    println!("{:?}", generic([1u8, 2, 3]));
    println!("{:?}", generic::<String, 2>(["a".into(), "b".into()]));
    println!("{}", with_closure(&[1, 2, 3]) + dynf(&c) as i32);
    let mut v = [0u16; 3]; println!("{:?}", tuple((1, 2, 'x'), &mut v));
    println!("{}", fnptr(ff, cfun));
    let mut m: HashMap<String, Vec<(i32, f32)>> = HashMap::new(); m.insert("k".into(), vec![(1, 2.0)]);
    println!("{:?} {}", m, ñandú::größe());
    println!("{}", boolconst::<true, 'a', -3>());
    let b: Box<dyn Fn(&str) -> usize + Send> = Box::new(|s| s.len()); println!("{}", b("abc"));
}
`;

/** A <base-62-number> as the grammar writes it. */
function base62(v: number): string {
  if (v === 0) return '_';
  const digits = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  let n = v - 1, out = '';
  do { out = digits[n % 62] + out; n = Math.floor(n / 62); } while (n > 0);
  return out + '_';
}

function cxxfilt(names: string[]): string[] {
  return execFileSync('llvm-cxxfilt-14', [], { input: names.join('\n') + '\n', maxBuffer: 1 << 28, encoding: 'utf8' }).split('\n').slice(0, names.length);
}

function findRustc(): string | null {
  for (const c of [process.env.RUSTC, 'rustc', join(homedir(), '.cargo', 'bin', 'rustc')]) {
    if (c && spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0) return c;
  }
  return null;
}

/** The program built by rustc, v0 or (rustc's default for a crate's own code) legacy mangling, cached by source and compiler version. */
function buildRust(rustc: string, mangling: 'v0' | 'legacy'): string {
  const flags = ['-g', '-O', ...(mangling === 'v0' ? ['-Csymbol-mangling-version=v0'] : [])];
  const version = execFileSync(rustc, ['--version'], { encoding: 'utf8' });
  const dir = join(repoRoot, 'build', 'test-dwarf', `rust-${mangling}-${createHash('sha256').update(PROGRAM).update(version).update(flags.join(' ')).digest('hex').slice(0, 12)}`);
  const exe = join(dir, 'prog');
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'prog.rs'), PROGRAM);
  const tmp = `${exe}.tmp${process.pid}`;
  execFileSync(rustc, [...flags, join(dir, 'prog.rs'), '-o', tmp], { stdio: 'pipe', cwd: dir });
  renameSync(tmp, exe);
  return exe;
}

/** Deterministic mutations of names: cut short, a character replaced, inserted, or a run repeated. */
function mutations(names: string[], per: number): string[] {
  const alphabet = '_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.';
  let x = 12345;
  const rnd = (n: number) => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return x % n; };
  const out = new Set<string>();
  for (const n of names) {
    for (let k = 0; k < per; k++) {
      const p = 2 + rnd(n.length - 2);
      switch (rnd(4)) {
        case 0: out.add(n.slice(0, p)); break;
        case 1: out.add(n.slice(0, p) + alphabet[rnd(alphabet.length)] + n.slice(p + 1)); break;
        case 2: out.add(n.slice(0, p) + alphabet[rnd(alphabet.length)] + n.slice(p)); break;
        default: { const q = p + rnd(Math.min(8, n.length - p)); out.add(n.slice(0, q) + n.slice(p, q) + n.slice(q)); }
      }
    }
  }
  return [...out];
}

describe('Rust names: demangled as llvm-symbolizer-14 prints them', function () {
  this.timeout(300_000);
  const rustc = findRustc();

  it('hand-made v0 names for every construct give what llvm-cxxfilt-14 gives', () => {
    expect(CRAFTED.map((n) => demangleRustV0(n) ?? n)).to.deep.equal(cxxfilt(CRAFTED));
    expect(demangleNames(CRAFTED)).to.deep.equal(cxxfilt(CRAFTED));
    expect(demangleRustV0('_RINvC1a1fFG_RL0_hEuE')).to.equal("a::f::<for<'a> fn(&'a u8)>");
    expect(demangleRustV0('_RNvC1a1f.llvm.1234')).to.equal('a::f (.llvm.1234)');
    expect(demangleRustV0('_RNvC1a1fE')).to.equal(null);
  });

  it('punycode identifiers (RFC 3492 with _ as the delimiter)', () => {
    expect(decodePunycode('mnchen_3ya')).to.equal('m\u00fcnchen');
    expect(decodePunycode('gre_0ra')).to.not.equal(null);
    expect(decodePunycode('a-b')).to.equal(null);
  });

  it('nesting and back-references are bounded: a hostile name stays mangled, and fast', () => {
    const deep = '_R' + 'Nv'.repeat(5000) + 'C1a' + '1b'.repeat(5000);
    expect(demangleRustV0(deep)).to.equal(null);
    expect(cxxfilt([deep])[0]).to.equal(deep);
    // Each level a pair of back-references to the one before: the output doubles per level.
    const pairs = (levels: number): string => {
      let s = 'INvC1a1f';
      let prev = s.length;
      s += 'ThhE';
      for (let i = 1; i < levels; i++) {
        const at = s.length;
        s += `TB${base62(prev)}B${base62(prev)}E`;
        prev = at;
      }
      return '_R' + s + 'E';
    };
    const small = pairs(6);
    expect(demangleRustV0(small)).to.equal(cxxfilt([small])[0]).and.to.include('((((');
    const t0 = performance.now();
    expect(demangleRustV0(pairs(40))).to.equal(null);
    expect(performance.now() - t0).to.be.lessThan(2000);
  });

  it('a real program built by rustc: its names and thousands of mutations of them agree with llvm-cxxfilt-14; covd symbolize with llvm-symbolizer-14', function () {
    if (!rustc) this.skip();
    for (const mangling of ['v0', 'legacy'] as const) {
      const exe = buildRust(rustc!, mangling);
      const names = execFileSync('nm', ['--defined-only', exe], { encoding: 'utf8', maxBuffer: 1 << 26 }).split('\n')
        .map((l) => l.split(' ')[2] ?? '').filter((n) => n.startsWith('_R') || n.startsWith('_ZN'));
      expect(names.length).to.be.greaterThan(300);
      if (mangling === 'v0') {
        expect(names.filter((n) => n.startsWith('_R')).length).to.be.greaterThan(300);
        const list = [...names, ...mutations(names.filter((n) => n.startsWith('_R')), 8)];
        expect(demangleNames(list)).to.deep.equal(cxxfilt(list));
      } else {
        expect(demangleNames(names)).to.deep.equal(cxxfilt(names));
      }
      const addrs = [...randomTextAddresses(exe, 3000, 31), ...functionStarts(exe)];
      const theirs = llvmSymbolize(exe, addrs);
      expect(theirs.filter((l) => l.FunctionName.includes('::')).length).to.be.greaterThan(addrs.length / 2);
      const ours = covdSymbolize(exe, addrs);
      const diffs = ours.map((o, i) => (JSON.stringify(o) === JSON.stringify(theirs[i]) ? '' : `${JSON.stringify(o)} / ${JSON.stringify(theirs[i])}`)).filter(Boolean);
      expect(diffs).to.deep.equal([]);
    }
  });
});
