/**
 * Inlined-call chains for llvm-symbolizer's --inlines (its default): for an address, the
 * innermost subroutine DIE (DWARFUnit::getSubroutineForAddress, the same AddrDieMap as
 * functions.ts's SubroutineMap) and its enclosing DW_TAG_inlined_subroutine DIEs up to the first
 * DW_TAG_subprogram (DWARFUnit::getInlinedChainForAddress), each with its DW_AT_call_file,
 * DW_AT_call_line and DW_AT_call_column. Built per unit, only when asked for, by a walk of the
 * unit's whole DIE tree: the kernels' DIE walk ('inlines', kernels.c's skip_dies with scopes)
 * skips the other DIEs by their plans and reads the subroutines, with their parents and ranges,
 * into node records; the reader walks the DIEs it leaves (and all of them without the kernels)
 * the same way. The address map is then built in one go (kernelsOrTwins().dieMap). The node
 * records also hold the subprograms' declarations, so a resolve with inlines takes its functions
 * from this walk (subprograms) instead of walking the unit a second time.
 */
import * as C from './constants.js';
import { dieRanges, type PcAttrs } from './ranges.js';
import { Reader } from './reader.js';
import { OWN_NAMES, SkipPlans, skipDie } from './plans.js';
import { DieWalker, kernelsOrTwins, NODE_F64S } from './kernels.js';
import { upperBound } from './order.js';
import { isUnitRef, readForm, type Sections, type Unit } from './units.js';

const DW_AT_call_column = 0x57, DW_AT_call_file = 0x58, DW_AT_call_line = 0x59;
/** Fields of a node record (kernels.c's NODE_F64S layout). */
const N_DIE = 0, N_ATTRS = 1, N_CHARGED = 2, N_PARENT = 3, N_TAG = 4, N_FILE = 5, N_LINE = 6, N_COLUMN = 7, N_ORIGIN = 8;
const N_DECL_FILE = 9, N_DECL_LINE = 10, N_DECLARATION = 11;
/** Hops up a chain before giving up (a forged tree can nest without end). */
const MAX_HOPS = 4096;
/** In outermostAll: a node too deep for its one pass (outermostOf walks up for it). */
const DEEP = -2;

export class InlineTree {
  /**
   * Per subroutine DIE in tree order, NODE_F64S numbers: absolute offset, attribute count, range
   * entries charged, nearest subroutine ancestor (-1 none), tag (plus OWN_NAMES when its
   * abbreviation has a name, linkage name or declaration file of its own), DW_AT_call_file,
   * _line and _column (0 when absent, as DWARFDie::getCallerFrame reads them), and its
   * DW_AT_abstract_origin / DW_AT_specification as functions.ts's readNames takes it (absolute
   * offset, -1 none), then DW_AT_decl_file (-1 none), DW_AT_decl_line and DW_AT_declaration (0 or
   * 1) as functions.ts's walk reads them.
   */
  private t = new Float64Array(NODE_F64S * 256);
  /** Number of nodes. */
  count = 0;
  /** The AddrDieMap: keys (range starts) ascending, each with its range's end and node. */
  readonly keys: Float64Array;
  readonly highs: Float64Array;
  readonly nodes: Int32Array;
  /** nodes as the span look-up takes them (kernelsOrTwins().spansFor): the same memory. */
  readonly nodeIds: Uint32Array;
  /** The ranges in tree order, (low, high, node) each, until the map is built from them. */
  private tri = new Float64Array(3 * 1024);
  private nTri = 0;

  /**
   * With subprograms asked for: every non-empty range of a DW_TAG_subprogram node, in tree order
   * (then range order), as resolve.ts's functions list takes them; the walk of functions.ts's
   * unitFunctions is then not needed.
   */
  readonly subprograms: { low: Float64Array; high: Float64Array; node: Int32Array } | null = null;

  constructor(private readonly sec: Sections, u: Unit, subprograms = false) {
    const r = new Reader(sec.info, '.debug_info', u.dieOffset, u.end);
    const plans = new SkipPlans(u);
    // Null without the kernels (COVD_DWARF_KERNELS=js): the reader walks every DIE.
    const fast = DieWalker.forUnit(sec.info, u, 'inlines', sec.addr, sec);
    // scope[d]: the nearest subroutine at or above the DIE at depth d whose children follow.
    const scope: number[] = [];
    let depth = 0, dirty = 0; // dirty: the lowest scope entry written since the kernel last saw them
    const ranges: number[] = [];
    while (r.pos < r.end) {
      if (fast) {
        const ended = fast.skipScoped(r.pos, depth, scope, dirty, this.count, sec.budget.rangeEntries);
        dirty = Infinity;
        if (fast.captured > 0) this.takeNodes(fast.rows, fast.captured, fast.tri, fast.nTri);
        if (ended) break;
        r.pos = fast.pos; depth = fast.depth;
        if (r.pos >= r.end) break;
      }
      const at = r.pos;
      const code = r.uleb();
      if (code === 0) {
        if (--depth <= 0) break;
        continue;
      }
      const a = u.abbrevs.get(code);
      if (!a) throw r.err(`unknown abbreviation code ${code}`);
      const up = depth > 0 ? scope[depth - 1]! : -1;
      let mine = up;
      if (a.tag === C.DW_TAG_subprogram || a.tag === C.DW_TAG_inlined_subroutine) {
        sec.budget.chargeAttrs(a.attrs.length);
        const pc: PcAttrs = { lowForm: 0, low: 0, highForm: 0, high: 0, rangesForm: 0, ranges: 0 };
        let file = 0, line = 0, column = 0, origin = -1, own = false, declFile = -1, declLine = 0, declaration = 0;
        for (let i = 0; i < a.attrs.length; i++) {
          const form = a.forms[i]!;
          const v = readForm(r, form, u, a.implicit[i]!);
          switch (a.attrs[i]) {
            case C.DW_AT_low_pc: pc.lowForm = form; pc.low = v; break;
            case C.DW_AT_high_pc: pc.highForm = form; pc.high = v; break;
            case C.DW_AT_ranges: pc.rangesForm = form; pc.ranges = v; break;
            case DW_AT_call_file: file = v; break;
            case DW_AT_call_line: line = v; break;
            case DW_AT_call_column: column = v; break;
            case C.DW_AT_specification: case C.DW_AT_abstract_origin:
              if (isUnitRef(form)) origin = u.offset + v;
              else if (form === C.DW_FORM_ref_addr) origin = v;
              break;
            case C.DW_AT_decl_file: own = true; declFile = v; break;
            case C.DW_AT_decl_line: declLine = v; break;
            case C.DW_AT_declaration: declaration = v !== 0 ? 1 : 0; break;
            case C.DW_AT_name: case C.DW_AT_linkage_name: case C.DW_AT_MIPS_linkage_name: own = true; break;
          }
        }
        mine = this.count;
        this.room(1);
        const o = NODE_F64S * this.count++, t = this.t;
        t[o + N_DIE] = at; t[o + N_ATTRS] = a.attrs.length; t[o + N_CHARGED] = 0; t[o + N_PARENT] = up;
        t[o + N_TAG] = a.tag + (own ? OWN_NAMES : 0); t[o + N_FILE] = file; t[o + N_LINE] = line; t[o + N_COLUMN] = column; t[o + N_ORIGIN] = origin;
        t[o + N_DECL_FILE] = declFile; t[o + N_DECL_LINE] = declLine; t[o + N_DECLARATION] = declaration;
        if (pc.lowForm || pc.rangesForm) {
          ranges.length = 0;
          dieRanges(sec, u, pc, ranges);
          for (let k = 0; k < ranges.length; k += 2) if (ranges[k] !== ranges[k + 1]) this.insert(ranges[k]!, ranges[k + 1]!, mine);
        }
      } else {
        skipDie(r, plans.get(code, a), u);
      }
      if (a.hasChildren) { scope[depth] = mine; if (depth < dirty) dirty = depth; depth++; }
      else if (depth === 0) break;
    }
    // The map in one go; its insertions charge what they would one by one.
    const map = kernelsOrTwins().dieMap(this.tri, this.nTri);
    sec.budget.chargeAttrs(map.charge);
    this.keys = map.keys; this.highs = map.highs; this.nodes = map.nodes;
    this.nodeIds = new Uint32Array(map.nodes.buffer, map.nodes.byteOffset, map.nodes.length);
    if (subprograms) this.subprograms = this.subprogramRanges();
    this.tri = new Float64Array(0);
  }

  private subprogramRanges(): { low: Float64Array; high: Float64Array; node: Int32Array } {
    const tri = this.tri, t = this.t;
    let k = 0;
    const low = new Float64Array(this.nTri), high = new Float64Array(this.nTri), node = new Int32Array(this.nTri);
    for (let i = 0, o = 0; i < this.nTri; i++, o += 3) {
      const n = tri[o + 2]!, tag = t[NODE_F64S * n + N_TAG]!;
      if ((tag >= OWN_NAMES ? tag - OWN_NAMES : tag) !== C.DW_TAG_subprogram || !(tri[o]! < tri[o + 1]!)) continue;
      low[k] = tri[o]!; high[k] = tri[o + 1]!; node[k] = n; k++;
    }
    return { low: low.slice(0, k), high: high.slice(0, k), node: node.slice(0, k) };
  }

  /** Room for n more node records. */
  private room(n: number): void {
    if (NODE_F64S * (this.count + n) <= this.t.length) return;
    const t = new Float64Array(Math.max(2 * this.t.length, NODE_F64S * (this.count + n)));
    t.set(this.t.subarray(0, NODE_F64S * this.count));
    this.t = t;
  }

  private insert(low: number, high: number, node: number): void {
    if (3 * this.nTri + 3 > this.tri.length) { const t = new Float64Array(this.tri.length * 2); t.set(this.tri); this.tri = t; }
    const o = 3 * this.nTri++;
    this.tri[o] = low; this.tri[o + 1] = high; this.tri[o + 2] = node;
  }

  /** Node records and range triples the kernel read, in tree order: charged as the walk above charges them. */
  private takeNodes(recs: Float64Array, count: number, tri: Float64Array, nTri: number): void {
    const budget = this.sec.budget;
    let attrs = 0, charged = 0;
    for (let i = 0, o = 0; i < count; i++, o += NODE_F64S) { attrs += recs[o + N_ATTRS]!; charged += recs[o + N_CHARGED]!; }
    if (attrs <= budget.attrs && charged <= budget.rangeEntries) {
      budget.chargeAttrs(attrs);
      budget.chargeRanges(charged);
    } else {
      // One of them runs out here: charged DIE by DIE, so the same one fails first.
      for (let i = 0, o = 0; i < count; i++, o += NODE_F64S) {
        budget.chargeAttrs(recs[o + N_ATTRS]!);
        if (recs[o + N_CHARGED]! > 0) budget.chargeRanges(recs[o + N_CHARGED]!);
      }
    }
    this.room(count);
    this.t.set(recs.subarray(0, count * NODE_F64S), NODE_F64S * this.count);
    this.count += count;
    if (3 * (this.nTri + nTri) > this.tri.length) {
      const t = new Float64Array(Math.max(this.tri.length * 2, 3 * (this.nTri + nTri)));
      t.set(this.tri.subarray(0, 3 * this.nTri));
      this.tri = t;
    }
    this.tri.set(tri.subarray(0, 3 * nTri), 3 * this.nTri);
    this.nTri += nTri;
  }

  /** Node n's DIE (absolute offset). */
  die(n: number): number { return this.t[NODE_F64S * n + N_DIE]!; }
  /** Node n's nearest subroutine ancestor, -1 none. */
  parent(n: number): number { return this.t[NODE_F64S * n + N_PARENT]!; }
  isSubprogram(n: number): boolean {
    const tag = this.t[NODE_F64S * n + N_TAG]!;
    return (tag >= OWN_NAMES ? tag - OWN_NAMES : tag) === C.DW_TAG_subprogram;
  }
  callFile(n: number): number { return this.t[NODE_F64S * n + N_FILE]!; }
  callLine(n: number): number { return this.t[NODE_F64S * n + N_LINE]!; }
  callColumn(n: number): number { return this.t[NODE_F64S * n + N_COLUMN]!; }
  /** Node n's DW_AT_decl_file (-1 none) and _line, DW_AT_declaration, and its origin (-1 none), as functions.ts's walk reads them. */
  declFile(n: number): number { return this.t[NODE_F64S * n + N_DECL_FILE]!; }
  declLine(n: number): number { return this.t[NODE_F64S * n + N_DECL_LINE]!; }
  isDeclaration(n: number): boolean { return this.t[NODE_F64S * n + N_DECLARATION]! !== 0; }
  origin(n: number): number { return this.t[NODE_F64S * n + N_ORIGIN]!; }
  /**
   * Node n's origin when the DIE names nothing itself, else -1: such DIEs are named by their
   * origin alone (resolve.ts names each origin once).
   */
  namedByOrigin(n: number): number {
    const o = NODE_F64S * n;
    return this.t[o + N_TAG]! >= OWN_NAMES ? -1 : this.t[o + N_ORIGIN]!;
  }

  /** The chain at addr, innermost first (node indices), or [] when no subroutine covers it. */
  chain(addr: number): number[] {
    return this.chainFrom(this.leaf(addr));
  }

  /** The chain from node n (leaf()'s answer, -1: none) outwards. */
  chainFrom(n: number): number[] {
    const out: number[] = [];
    for (let hops = 0; n >= 0 && hops < MAX_HOPS; n = this.parent(n), hops++) {
      out.push(n);
      if (this.isSubprogram(n)) break;
    }
    return out;
  }

  /** The innermost subroutine node at addr (chain(addr)[0]), or -1; no array built. */
  leaf(addr: number): number {
    const i = upperBound(this.keys, addr);
    if (i === 0 || addr >= this.highs[i - 1]!) return -1;
    return this.nodes[i - 1]!;
  }

  /**
   * outermostInlined of every node in one pass in tree order (a parent comes before its
   * children): -1 for subprograms, DEEP for a node 4,096 or more inlined levels down (only a
   * forged tree has them; outermostOf walks up for those, as outermostInlined's hop limit says).
   */
  outermostAll(): Int32Array {
    if (this.outer) return this.outer;
    const out = new Int32Array(this.count), depth = new Uint16Array(this.count), t = this.t;
    for (let n = 0, o = 0; n < this.count; n++, o += NODE_F64S) {
      const tag = t[o + N_TAG]!;
      if ((tag >= OWN_NAMES ? tag - OWN_NAMES : tag) === C.DW_TAG_subprogram) { out[n] = -1; continue; }
      const p = t[o + N_PARENT]!;
      if (p < 0 || out[p] === -1) { out[n] = n; continue; }
      if (out[p] === DEEP || depth[p]! + 1 >= MAX_HOPS) { out[n] = DEEP; continue; }
      out[n] = out[p]!; depth[n] = depth[p]! + 1;
    }
    return (this.outer = out);
  }
  private outer: Int32Array | null = null;

  /** outermostInlined(n) through outermostAll's answers: what resolve.ts's run-by-run chains take per distinct innermost node. */
  outermostOf(n: number): number {
    const o = this.outermostAll()[n]!;
    return o === DEEP ? this.outermostInlined(n) : o;
  }

  /** The outermost inlined node of node n's chain (the last before the subprogram; n itself when its parent is one). */
  outermostInlined(n: number): number {
    for (let hops = 0; hops < MAX_HOPS; hops++) {
      const p = this.parent(n);
      if (p < 0 || this.isSubprogram(p)) return n;
      n = p;
    }
    return n;
  }
}
