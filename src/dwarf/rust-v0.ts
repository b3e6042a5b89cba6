/**
 * Rust v0 symbol names (`_R...`, RFC 2603, "v0 Symbol Format" in the rustc book) printed as
 * llvm-symbolizer-14 prints them: paths without crate disambiguators or hashes, generic
 * arguments as `::<...>` outside types and `<...>` inside them, `{closure#N}` and `{shim:...#N}`
 * for special namespaces, impls as `<T>` and `<T as Trait>`, and a `.suffix` as ` (.suffix)`.
 * Anything that does not parse gives null, and the name stays mangled, as llvm-symbolizer
 * leaves it. Written from the grammar; checked against llvm-cxxfilt-14 and llvm-symbolizer-14
 * (test/dwarf/rust-v0.test.ts).
 *
 * Back-references are followed only while printing (an impl path, which is not printed, never
 * follows them), nesting is bounded as in LLVM (500), and so is the output (1 MiB, where LLVM
 * has no bound), so a hostile name cannot make a thread spin or run out of memory.
 */

const MAX_DEPTH = 500;
/**
 * Longest output: back-references can double it at every level (llvm-symbolizer would print
 * gigabytes); beyond this the name is left mangled.
 */
const MAX_OUTPUT = 1 << 20;

class Invalid extends Error {}

const BASIC: Record<string, string> = {
  a: 'i8', b: 'bool', c: 'char', d: 'f64', e: 'str', f: 'f32', h: 'u8', i: 'isize', j: 'usize', l: 'i32', m: 'u32',
  n: 'i128', o: 'u128', s: 'i16', t: 'u16', u: '()', v: '...', x: 'i64', y: 'u64', z: '!', p: '_',
};
/** Basic types a constant may have, by how its value prints. */
const INT_CONST = new Set(['a', 'h', 'i', 'j', 'l', 'm', 'n', 'o', 's', 't', 'x', 'y']);

const isDigit = (c: string) => c >= '0' && c <= '9';
const isLower = (c: string) => c >= 'a' && c <= 'z';
const isUpper = (c: string) => c >= 'A' && c <= 'Z';
const isIdentChar = (c: string) => isDigit(c) || isLower(c) || isUpper(c) || c === '_';
const U64_MAX = (1n << 64n) - 1n;

interface Ident { name: string; punycode: boolean }

class Demangler {
  private pos = 0;
  private out = '';
  private print = true;
  private depth = 0;
  private bound = 0; // lifetimes bound by enclosing binders

  constructor(private readonly s: string) {}

  run(suffix: string): string {
    this.path(false);
    // The instantiating crate, if any, is parsed but not printed.
    if (this.pos !== this.s.length) { const p = this.print; this.print = false; this.path(false); this.print = p; }
    if (this.pos !== this.s.length) throw new Invalid();
    if (suffix) this.emit(` (${suffix})`);
    return this.out;
  }

  private emit(t: string): void {
    if (!this.print) return;
    this.out += t;
    if (this.out.length > MAX_OUTPUT) throw new Invalid();
  }
  private look(): string { return this.pos < this.s.length ? this.s[this.pos]! : ''; }
  private next(): string {
    if (this.pos >= this.s.length) throw new Invalid();
    return this.s[this.pos++]!;
  }
  private eat(c: string): boolean {
    if (this.s[this.pos] !== c) return false;
    this.pos++;
    return true;
  }
  private enter(): void { if (++this.depth > MAX_DEPTH) throw new Invalid(); }

  /** <base-62-number>: digits 0-9a-zA-Z ended by '_', '_' alone being 0; the value is the number plus one. */
  private base62(): bigint {
    if (this.eat('_')) return 0n;
    let v = 0n;
    for (;;) {
      const c = this.next();
      if (c === '_') break;
      const d = isDigit(c) ? c.charCodeAt(0) - 48 : isLower(c) ? c.charCodeAt(0) - 87 : isUpper(c) ? c.charCodeAt(0) - 29 : -1;
      if (d < 0) throw new Invalid();
      v = v * 62n + BigInt(d);
      if (v > U64_MAX) throw new Invalid();
    }
    if (v + 1n > U64_MAX) throw new Invalid();
    return v + 1n;
  }

  /** An optional tag and base-62 number: 0 without the tag, else the number plus one. */
  private optBase62(tag: string): bigint {
    if (!this.eat(tag)) return 0n;
    const v = this.base62() + 1n;
    if (v > U64_MAX) throw new Invalid();
    return v;
  }

  private decimal(): number {
    const c = this.look();
    if (!isDigit(c)) throw new Invalid();
    if (c === '0') { this.pos++; return 0; }
    let v = 0;
    while (isDigit(this.look())) {
      v = v * 10 + (this.s.charCodeAt(this.pos++) - 48);
      if (v > Number.MAX_SAFE_INTEGER) throw new Invalid();
    }
    return v;
  }

  private ident(): Ident {
    const punycode = this.eat('u');
    const n = this.decimal();
    this.eat('_');
    if (n > this.s.length - this.pos) throw new Invalid();
    const name = this.s.slice(this.pos, this.pos + n);
    this.pos += n;
    for (const c of name) if (!isIdentChar(c)) throw new Invalid();
    return { name, punycode };
  }

  private emitIdent(id: Ident): void {
    if (!this.print) return;
    if (!id.punycode) { this.emit(id.name); return; }
    const decoded = decodePunycode(id.name);
    if (decoded === null) throw new Invalid();
    this.emit(decoded);
  }

  /** Follows a back-reference (positions count from after `_R`), only when printing. */
  private backref(then: () => void): void {
    const at = this.base62();
    if (at >= BigInt(this.pos)) throw new Invalid();
    if (!this.print) return;
    const saved = this.pos;
    this.pos = Number(at);
    then();
    this.pos = saved;
  }

  /** A path; with leaveOpen, generic arguments at its end are left unclosed (returns whether they were). */
  private path(inType: boolean, leaveOpen = false): boolean {
    this.enter();
    let open = false;
    const c = this.next();
    switch (c) {
      case 'C': {
        this.optBase62('s');
        this.emitIdent(this.ident());
        break;
      }
      case 'M': {
        this.implPath();
        this.emit('<');
        this.type();
        this.emit('>');
        break;
      }
      case 'X': {
        this.implPath();
        this.emit('<');
        this.type();
        this.emit(' as ');
        this.path(true);
        this.emit('>');
        break;
      }
      case 'Y': {
        this.emit('<');
        this.type();
        this.emit(' as ');
        this.path(true);
        this.emit('>');
        break;
      }
      case 'N': {
        const ns = this.next();
        if (!isLower(ns) && !isUpper(ns)) throw new Invalid();
        this.path(inType);
        const dis = this.optBase62('s');
        const id = this.ident();
        if (isUpper(ns)) {
          this.emit('::{');
          this.emit(ns === 'C' ? 'closure' : ns === 'S' ? 'shim' : ns);
          if (id.name !== '') { this.emit(':'); this.emitIdent(id); }
          this.emit(`#${dis}}`);
        } else if (id.name !== '') {
          this.emit('::');
          this.emitIdent(id);
        }
        break;
      }
      case 'I': {
        this.path(inType);
        if (!inType) this.emit('::');
        this.emit('<');
        for (let i = 0; !this.eat('E'); i++) {
          if (i > 0) this.emit(', ');
          this.genericArg();
        }
        if (leaveOpen) open = true;
        else this.emit('>');
        break;
      }
      case 'B':
        this.backref(() => { open = this.path(inType, leaveOpen); });
        break;
      default:
        throw new Invalid();
    }
    this.depth--;
    return open;
  }

  /** <impl-path>: a disambiguator and a path, neither printed. */
  private implPath(): void {
    const p = this.print;
    this.print = false;
    this.optBase62('s');
    this.path(false);
    this.print = p;
  }

  private genericArg(): void {
    if (this.eat('L')) this.lifetime(this.base62());
    else if (this.eat('K')) this.constant();
    else this.type();
  }

  private lifetime(index: bigint): void {
    if (index === 0n) { this.emit("'_"); return; }
    if (index - 1n >= BigInt(this.bound)) throw new Invalid();
    const depth = BigInt(this.bound) - index;
    this.emit(depth < 26n ? `'${String.fromCharCode(97 + Number(depth))}` : `'z${depth - 26n + 1n}`);
  }

  private binder(): void {
    const n = this.optBase62('G');
    if (n === 0n) return;
    // Every bound lifetime takes at least a byte to refer to: more than the rest of the name could use is invalid.
    if (n >= BigInt(this.s.length - this.bound)) throw new Invalid();
    this.emit('for<');
    for (let i = 0n; i < n; i++) {
      this.bound++;
      if (i > 0n) this.emit(', ');
      this.lifetime(1n);
    }
    this.emit('> ');
  }

  private type(): void {
    this.enter();
    const start = this.pos;
    const c = this.next();
    const basic = BASIC[c];
    if (basic !== undefined) {
      this.emit(basic);
    } else {
      switch (c) {
        case 'A': this.emit('['); this.type(); this.emit('; '); this.constant(); this.emit(']'); break;
        case 'S': this.emit('['); this.type(); this.emit(']'); break;
        case 'T': {
          this.emit('(');
          let i = 0;
          for (; !this.eat('E'); i++) {
            if (i > 0) this.emit(', ');
            this.type();
          }
          if (i === 1) this.emit(',');
          this.emit(')');
          break;
        }
        case 'R': case 'Q': {
          this.emit('&');
          if (this.eat('L')) {
            const lt = this.base62();
            if (lt !== 0n) { this.lifetime(lt); this.emit(' '); }
          }
          if (c === 'Q') this.emit('mut ');
          this.type();
          break;
        }
        case 'P': this.emit('*const '); this.type(); break;
        case 'O': this.emit('*mut '); this.type(); break;
        case 'F': this.fnSig(); break;
        case 'D': {
          this.dynBounds();
          if (!this.eat('L')) throw new Invalid();
          const lt = this.base62();
          if (lt !== 0n) { this.emit(' + '); this.lifetime(lt); }
          break;
        }
        case 'B': this.backref(() => this.type()); break;
        default:
          this.pos = start;
          this.path(true);
      }
    }
    this.depth--;
  }

  private fnSig(): void {
    const bound = this.bound;
    this.binder();
    if (this.eat('U')) this.emit('unsafe ');
    if (this.eat('K')) {
      this.emit('extern "');
      if (this.eat('C')) this.emit('C');
      else {
        const abi = this.ident();
        if (abi.punycode) throw new Invalid();
        // The ABI's '-' is mangled as '_'.
        this.emit(abi.name.replace(/_/g, '-'));
      }
      this.emit('" ');
    }
    this.emit('fn(');
    for (let i = 0; !this.eat('E'); i++) {
      if (i > 0) this.emit(', ');
      this.type();
    }
    this.emit(')');
    if (!this.eat('u')) { this.emit(' -> '); this.type(); }
    this.bound = bound;
  }

  private dynBounds(): void {
    const bound = this.bound;
    this.emit('dyn ');
    this.binder();
    for (let i = 0; !this.eat('E'); i++) {
      if (i > 0) this.emit(' + ');
      this.dynTrait();
    }
    this.bound = bound;
  }

  private dynTrait(): void {
    let open = this.path(true, true);
    while (this.eat('p')) {
      this.emit(open ? ', ' : '<');
      open = true;
      this.emitIdent(this.ident());
      this.emit(' = ');
      this.type();
    }
    if (open) this.emit('>');
  }

  private constant(): void {
    this.enter();
    const c = this.next();
    if (INT_CONST.has(c)) {
      if (this.eat('n')) this.emit('-');
      const [v, digits] = this.hex();
      this.emit(digits.length <= 16 ? v.toString() : `0x${digits}`);
    } else if (c === 'b') {
      const [, digits] = this.hex();
      if (digits === '0') this.emit('false');
      else if (digits === '1') this.emit('true');
      else throw new Invalid();
    } else if (c === 'c') {
      const [v, digits] = this.hex();
      if (digits.length > 6) throw new Invalid();
      this.emit(`'${charLiteral(Number(v), digits)}'`);
    } else if (c === 'p') {
      this.emit('_');
    } else if (c === 'B') {
      this.backref(() => this.constant());
    } else {
      throw new Invalid();
    }
    this.depth--;
  }

  /** <const-data>'s digits: lowercase hex ended by '_' ("0_" for zero); the value (64 bits wrap) and the digits. */
  private hex(): [bigint, string] {
    const start = this.pos;
    const first = this.look();
    if (!(isDigit(first) || (first >= 'a' && first <= 'f'))) throw new Invalid();
    let v = 0n;
    if (this.eat('0')) {
      if (!this.eat('_')) throw new Invalid();
    } else {
      for (;;) {
        const c = this.next();
        if (c === '_') break;
        const d = isDigit(c) ? c.charCodeAt(0) - 48 : c >= 'a' && c <= 'f' ? c.charCodeAt(0) - 87 : -1;
        if (d < 0) throw new Invalid();
        v = (v * 16n + BigInt(d)) & U64_MAX;
      }
    }
    return [v, this.s.slice(start, this.pos - 1)];
  }
}

function charLiteral(cp: number, digits: string): string {
  switch (cp) {
    case 9: return '\\t';
    case 13: return '\\r';
    case 10: return '\\n';
    case 92: return '\\\\';
    case 34: return '"';
    case 39: return "\\'";
    default: return cp >= 0x20 && cp <= 0x7e ? String.fromCharCode(cp) : `\\u{${digits}}`;
  }
}

/**
 * RFC 3492 Punycode with '_' as the delimiter (the last '_' ends the basic code points, which
 * must be identifier characters); digits are a-z (0-25) and 0-9 (26-35). Null when invalid.
 */
export function decodePunycode(input: string): string | null {
  const BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38;
  const out: number[] = [];
  let i = 0, at = 0;
  const delim = input.lastIndexOf('_');
  if (delim >= 0) {
    for (; at < delim; at++) {
      const c = input[at]!;
      if (!isIdentChar(c)) return null;
      out.push(c.charCodeAt(0));
    }
    at++;
  }
  let n = 0x80, bias = 72, first = true;
  const adapt = (delta: number, points: number): number => {
    delta = first ? Math.floor(delta / 700) : Math.floor(delta / 2);
    first = false;
    delta += Math.floor(delta / points);
    let k = 0;
    while (delta > ((BASE - TMIN) * TMAX) >> 1) { delta = Math.floor(delta / (BASE - TMIN)); k += BASE; }
    return k + Math.floor(((BASE - TMIN + 1) * delta) / (delta + SKEW));
  };
  const LIMIT = 2 ** 53;
  while (at < input.length) {
    const old = i;
    let w = 1;
    for (let k = BASE; ; k += BASE) {
      if (at >= input.length) return null;
      const c = input[at++]!;
      const digit = isLower(c) ? c.charCodeAt(0) - 97 : isDigit(c) ? c.charCodeAt(0) - 22 : -1;
      if (digit < 0) return null;
      i += digit * w;
      if (i >= LIMIT) return null;
      const t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
      if (digit < t) break;
      w *= BASE - t;
      if (w >= LIMIT) return null;
    }
    const points = out.length + 1;
    bias = adapt(i - old, points);
    n += Math.floor(i / points);
    i %= points;
    if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return null;
    out.splice(i, 0, n);
    i++;
  }
  return String.fromCodePoint(...out);
}

/** The name as llvm-symbolizer-14 prints a Rust v0 symbol, or null when it is not one it can demangle. */
export function demangleRustV0(name: string): string | null {
  if (!name.startsWith('_R')) return null;
  const rest = name.slice(2);
  const dot = rest.indexOf('.');
  try {
    return new Demangler(dot < 0 ? rest : rest.slice(0, dot)).run(dot < 0 ? '' : rest.slice(dot));
  } catch (err) {
    if (err instanceof Invalid || err instanceof RangeError) return null;
    throw err;
  }
}
