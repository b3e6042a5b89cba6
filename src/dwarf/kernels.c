/*
 * Hot loops of the DWARF reader, compiled to WebAssembly (scripts/build-kernels.ts).
 *
 * Why: a symbolizer thread's first request spends most of its time in two loops, the line-number
 * state machine and the walk over uninteresting DIEs, and V8 runs them in its interpreter until
 * it has optimized them. WebAssembly is compiled before it runs, so the first request runs at
 * the speed of the later ones.
 *
 * Contract with src/dwarf/kernels.ts: these functions only ever take the easy path. Whenever
 * input is odd (an error, an opcode or form handled elsewhere, a LEB128 longer than 7 bytes) they
 * stop and report where, and the TypeScript reader takes over from that point, so errors and
 * edge cases keep exactly one implementation. Arithmetic mirrors the TypeScript reader's:
 * addresses are doubles and go through the same IEEE operations.
 *
 * No libc: freestanding, wasm32, memory owned by the module and grown by the caller. Built with
 * -fno-strict-aliasing: sort_pcs reuses the PCs' own bytes for its first pair buffer.
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef long long i64;
typedef unsigned long long u64;

#define EXPORT(name) __attribute__((export_name(name)))

/* Longest LEB128 decoded here: 7 bytes (49 bits) are exact as doubles and as i64. */
#define LEB_MAX 7

/* Decodes a ULEB128 at *pos as the TypeScript reader does; 0 when it is unterminated or too long. */
static int uleb(const u8 *buf, u32 *pos, u32 end, double *value, double *mulOut, u8 *last) {
  double v = 0, mul = 1;
  u32 p = *pos;
  u8 b = 0x80;
  int n = 0;
  while (b & 0x80) {
    if (p >= end || n == LEB_MAX) return 0;
    b = buf[p++];
    v += (double)(b & 0x7f) * mul;
    mul *= 128;
    n++;
  }
  *pos = p;
  *value = v;
  if (mulOut) *mulOut = mul;
  if (last) *last = b;
  return 1;
}

/* Wraps an integral double (|x| < 2^50) to 32 bits, as JavaScript's `>>> 0` and `& mask` see it. */
static u32 wrap32(double x) { return (u32)(u64)(i64)x; }

/* ------------------------------------------------------------------ line programs */

/*
 * Parameters and results of line_program(), at a fixed place in memory (kernels.ts writes and
 * reads them with the same layout).
 */
struct LineParams {
  double addr_step[256];   /* special opcodes' address advance */
  i32 line_step[256];      /* special opcodes' line advance */
  u8 std_lens[256];        /* standard opcodes' declared operand counts */
  double const_add_pc;     /* DW_LNS_const_add_pc's advance */
  u32 opcode_base;
  u32 line_range;
  u32 min_inst;
  u32 prog;                /* where the program's bytes are */
  u32 prog_len;
  u32 row_addr, row_file, row_line, row_col, row_cap;  /* row arrays */
  u32 seq_low, seq_high, seq_first, seq_last, seq_cap; /* sequence arrays */
  u32 count_only;          /* 1: count rows and sequences, store nothing (to size the arrays) */
  /* results */
  u32 rows;
  u32 seqs;
  u32 stop;                /* 0: ran to the end; else 1 + the offset (in the program) where it stopped */
};

static struct LineParams line_params;

EXPORT("line_params") struct LineParams *line_params_ptr(void) { return &line_params; }

/*
 * Runs the state machine over the program, emitting rows and sequences exactly as line.ts does.
 * Stops at the first opcode it leaves to the TypeScript reader (define_file, odd set_address
 * sizes, any error) and reports the state there through the same parameter block.
 */
struct LineState { double address; u32 file, line, column; int seq_empty; double seq_low; u32 seq_first; };
static struct LineState line_state;

EXPORT("line_state") struct LineState *line_state_ptr(void) { return &line_state; }

EXPORT("line_program") void line_program(void) {
  struct LineParams *P = &line_params;
  struct LineState *S = &line_state;
  const u8 *buf = (const u8 *)P->prog;
  double *raddr = (double *)P->row_addr;
  u32 *rfile = (u32 *)P->row_file, *rline = (u32 *)P->row_line, *rcol = (u32 *)P->row_col;
  double *slow = (double *)P->seq_low, *shigh = (double *)P->seq_high;
  u32 *sfirst = (u32 *)P->seq_first, *slast = (u32 *)P->seq_last;
  u32 n = P->rows, ns = P->seqs;
  double address = S->address, seq_low = S->seq_low;
  u32 file = S->file, line = S->line, column = S->column, seq_first = S->seq_first;
  int seq_empty = S->seq_empty;
  const u32 base = P->opcode_base, end = P->prog_len, count_only = P->count_only;
  const u32 row_cap = count_only ? 0xffffffffu : P->row_cap, seq_cap = count_only ? 0xffffffffu : P->seq_cap;
  u32 pos = 0, op_at = 0;
  P->stop = 0;

  /* Capacity is checked before each opcode, so a stop never leaves an opcode half done. */
#define ROW()                                                         \
  do {                                                                \
    if (seq_empty) { seq_empty = 0; seq_low = address; seq_first = n; } \
    if (!count_only) { raddr[n] = address; rfile[n] = file; rline[n] = line; rcol[n] = column; } \
    n++;                                                              \
  } while (0)

  while (pos < end) {
    op_at = pos;
    if (n == row_cap || ns == seq_cap) goto stop;
    u32 op = buf[pos++];
    if (op >= base) {
      if (P->line_range == 0) goto stop;
      address += P->addr_step[op];
      line = (u32)((i64)line + (i64)P->line_step[op]);
      ROW();
      continue;
    }
    if (op == 2 || op == 3 || op == 4 || op == 5) { /* advance_pc, advance_line, set_file, set_column */
      double v, mul; u8 last;
      if (!uleb(buf, &pos, end, &v, &mul, &last)) goto stop;
      if (op == 3) { if (last & 0x40) v -= mul; line = (u32)((i64)line + (i64)v); }
      else if (op == 5) column = wrap32(v) & 0xffff;
      else if (op == 2) address += v * (double)P->min_inst;
      else file = wrap32(v) & 0xffff;
      continue;
    }
    if (op == 0) {
      double elen_d;
      if (!uleb(buf, &pos, end, &elen_d, 0, 0)) goto stop;
      if (elen_d > (double)(end - pos)) goto stop;
      u32 elen = (u32)elen_d, next = pos + elen;
      if (elen == 0) continue;
      u32 sub = buf[pos];
      if (sub == 1) { /* end_sequence */
        ROW();
        if (seq_low < address && seq_first < n) {
          if (!count_only) { slow[ns] = seq_low; shigh[ns] = address; sfirst[ns] = seq_first; slast[ns] = n; }
          ns++;
        }
        seq_empty = 1; address = 0; file = 1; line = 1; column = 0;
      } else if (sub == 2) { /* set_address: 4 or 8 bytes; other sizes are left to the reader */
        const u8 *p = buf + pos + 1;
        if (elen - 1 == 8) {
          u32 lo = p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
          u32 hi = p[4] | (u32)p[5] << 8 | (u32)p[6] << 16 | (u32)p[7] << 24;
          address = (double)hi * 4294967296.0 + (double)lo;
        } else if (elen - 1 == 4) {
          address = (double)(p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24);
        } else {
          goto stop;
        }
      } else if (sub == 3) { /* define_file: strings, left to the reader */
        goto stop;
      }
      pos = next;
      continue;
    }
    switch (op) {
      case 1: ROW(); break;                                   /* copy */
      case 8:                                                 /* const_add_pc */
        if (P->line_range == 0) goto stop;
        address += P->const_add_pc;
        break;
      case 9:                                                 /* fixed_advance_pc */
        if (end - pos < 2) goto stop;
        address += (double)(buf[pos] | (u32)buf[pos + 1] << 8);
        pos += 2;
        break;
      case 6: case 7: case 10: case 11: break;                /* flags we do not keep */
      default:
        for (u32 i = 0; i < P->std_lens[op]; i++) {
          double v;
          if (!uleb(buf, &pos, end, &v, 0, 0)) goto stop;
        }
    }
  }
  op_at = 0;
  goto done;
stop:
  P->stop = 1 + op_at;
done:
  P->rows = n; P->seqs = ns;
  S->address = address; S->file = file; S->line = line; S->column = column;
  S->seq_empty = seq_empty; S->seq_low = seq_low; S->seq_first = seq_first;
#undef ROW
}

/* ------------------------------------------------------------------ DIE walking */

/*
 * Plans (kernels.ts builds them from the unit's abbreviations): for each code, an offset into
 * the steps, 0 when the walk must stop there and leave the DIE to the reader. A plan is
 * [has_children, capture, tag, step..., STEP_END]: capture 0 skips the DIE; otherwise the DIE's
 * wanted attributes are written to a row (capture - 1 is its attribute count, which the reader
 * charges to its budget); tag goes into node records. A step >= 0 skips that many bytes.
 */
enum {
  STEP_END = -1, STEP_LEB = -2, STEP_ULEB_BLOCK = -3, STEP_BLOCK1 = -4, STEP_BLOCK2 = -5, STEP_BLOCK4 = -6,
  STEP_CSTR = -7,
  STEP_CAPTURE = -8, /* followed by slot, DWARF form, value kind, implicit value */
};

static u32 le(const u8 *p, u32 n) {
  u32 v = 0;
  for (u32 i = 0; i < n; i++) v |= (u32)p[i] << (8 * i);
  return v;
}

/* How a captured value is read, as units.ts's readForm reads it. */
enum { VK_U8 = 1, VK_U16 = 2, VK_U24 = 3, VK_U32 = 4, VK_U64 = 8, VK_ULEB = 9, VK_SLEB = 10, VK_CONST = 11 };

/*
 * A captured DIE's row: offset, attribute count, (form, value) per slot, then its address range
 * when it has low_pc and high_pc the kernel could read: [ROW_RANGE] 0 = left to the reader,
 * 1 = [low, high) follows, 2 = empty (high below low). With scopes tracked, rows become node
 * records (NODE_F64S below).
 */
#define ROW_SLOTS 10
#define ROW_RANGE (2 + 2 * ROW_SLOTS)
#define ROW_F64S (ROW_RANGE + 3)
enum { SLOT_LOW = 0, SLOT_HIGH = 1, SLOT_RANGES = 2 };

struct DieParams {
  u32 plans;      /* i32 plan offsets by abbreviation code */
  u32 n_codes;
  u32 steps;      /* i32 steps */
  u32 base;       /* where the unit's bytes are */
  u32 pos, end;   /* offsets from base; pos advances */
  i32 depth;
  u32 done;       /* 1: the unit's tree ended (the reader's loop would break) */
  u32 rows;       /* f64 rows of captured DIEs */
  u32 row_cap;
  u32 n_rows;     /* out */
  u32 addr;       /* .debug_addr, for addrx forms */
  u32 addr_len;
  u32 addr_size;  /* the unit's address size */
  double addr_base; /* the unit's DW_AT_addr_base */
  /*
   * Scopes, as inlined.ts's walk keeps them (0: not tracked): scope[d] is the node of the
   * nearest captured DIE at or above the open DIE at depth d; captured DIEs are numbered from
   * next_node on. low_water (out) is the lowest depth written.
   */
  u32 scope;
  u32 scope_cap;
  i32 next_node;
  i32 low_water;
  /*
   * With scopes tracked, each captured DIE's ranges are read here, as ranges.ts's dieRanges
   * reads them (range lists too), and written as (low, high, node) triples for inlined.ts's map;
   * the row then says ROW_RANGE = 3, its triple count and the range entries charged.
   */
  u32 rng;        /* .debug_rnglists (DWARF 5) or .debug_ranges */
  u32 rng_len;
  u32 version;
  u32 off_size;
  double rnglists_base, ranges_base, low_pc;
  double range_budget; /* range entries the reader's budget has left */
  u32 tri;        /* f64 triples */
  u32 tri_cap;    /* in triples */
  u32 n_tri;      /* out */
  double unit_offset; /* the unit's offset, for origins in unit-relative forms */
};

/*
 * With scopes tracked, each row is then compacted to a node record of NODE_F64S (record i at
 * rows + i * NODE_F64S, which never reaches row i + 1): offset, attribute count, range entries
 * charged, parent, tag (+ OWN_NAMES from the plan), call file, line and column, origin (absolute
 * offset, -1 none), declaration file (-1 none) and line, and DW_AT_declaration (0 or 1).
 */
#define NODE_F64S 12
enum { SLOT_CALL_FILE = 3, SLOT_CALL_LINE = 4, SLOT_CALL_COLUMN = 5, SLOT_ORIGIN = 6, SLOT_DECL_FILE = 7, SLOT_DECL_LINE = 8, SLOT_DECLARATION = 9 };
/* units.ts's isUnitRef. */
static int is_unit_ref(u32 form) { return form >= 0x11 && form <= 0x15; }

/* units.ts's formAddress: an address form's value; 0 when the reader must decide (other forms, out of bounds). */
static int form_address(const struct DieParams *P, u32 form, double v, double *out) {
  if (form == 0x01) { *out = v; return 1; } /* DW_FORM_addr */
  if (!(form == 0x1b || form == 0x1f01 || (form >= 0x29 && form <= 0x2c))) return 0; /* addrx, GNU_addr_index, addrx1-4 */
  double off = P->addr_base + v * (double)P->addr_size;
  if (!(off >= 0) || off + (double)P->addr_size > (double)P->addr_len) return 0;
  const u8 *p = (const u8 *)P->addr + (u32)off;
  if (P->addr_size == 4) { *out = (double)le(p, 4); return 1; }
  if (P->addr_size == 8) { *out = (double)le(p + 4, 4) * 4294967296.0 + (double)le(p, 4); return 1; }
  return 0;
}

/* units.ts's isConstant. */
static int is_constant(u32 form) {
  return form == 0x0b || form == 0x05 || form == 0x06 || form == 0x07 || form == 0x0f || form == 0x0d || form == 0x21;
}

/* ranges.ts's dieRanges for a low_pc/high_pc pair, into the row (left to the reader when it cannot). */
static void row_range(const struct DieParams *P, double *row) {
  u32 low_form = (u32)row[2 + 2 * SLOT_LOW], high_form = (u32)row[2 + 2 * SLOT_HIGH];
  double low, high;
  if (!low_form || !high_form || !form_address(P, low_form, row[3 + 2 * SLOT_LOW], &low)) return;
  if (is_constant(high_form)) high = low + row[3 + 2 * SLOT_HIGH];
  else if (!form_address(P, high_form, row[3 + 2 * SLOT_HIGH], &high)) return;
  row[ROW_RANGE] = high >= low ? 1 : 2;
  row[ROW_RANGE + 1] = low;
  row[ROW_RANGE + 2] = high;
}

/* units.ts's addrIndex; 0 when the reader must (out of bounds). */
static int addr_index(const struct DieParams *P, double index, double *out) {
  return form_address(P, 0x1b, index, out);
}

/* Reader.uN for 4 or 8 bytes at *pos of [0, end). */
static int read_un(const u8 *buf, u32 *pos, u32 end, u32 size, double *out) {
  if (end - *pos < size || *pos > end) return 0;
  const u8 *p = buf + *pos;
  if (size == 4) *out = (double)le(p, 4);
  else if (size == 8) *out = (double)le(p + 4, 4) * 4294967296.0 + (double)le(p, 4);
  else return 0;
  *pos += size;
  return 1;
}

/*
 * ranges.ts's rnglist / rangeList for a DIE's DW_AT_ranges, into triples from tri[*n] (at most
 * cap), node as given; *charged counts the entries the reader charges. 0 when the reader must
 * read it (anything it would report, a LEB128 too long, no room, the budget spent).
 */
static int range_list(const struct DieParams *P, u32 form, double v, double *tri, u32 *n, u32 cap, double node, double budget, double *charged) {
  const u8 *buf = (const u8 *)P->rng;
  const u32 end = P->rng_len;
  const u32 as = P->addr_size, os = P->off_size;
  double base = P->low_pc, off;
  u32 pos;
#define PUSH(lo, hi) do { double l_ = (lo), h_ = (hi); if (l_ != h_) { if (*n == cap) return 0; tri[3 * *n] = l_; tri[3 * *n + 1] = h_; tri[3 * *n + 2] = node; (*n)++; } } while (0)
#define SEEK(o) do { double o_ = (o); if (!(o_ >= 0) || o_ > (double)end) return 0; pos = (u32)o_; } while (0)
  if (P->version >= 5) {
    if (form == 0x23) { /* rnglistx */
      SEEK(P->rnglists_base + v * (double)os);
      if (!read_un(buf, &pos, end, os, &off)) return 0;
      SEEK(P->rnglists_base + off);
    } else {
      SEEK(v);
    }
    for (;;) {
      if (pos >= end) return 0;
      u32 kind = buf[pos++];
      if (++*charged > budget) return 0;
      double a, b;
      switch (kind) {
        case 0: return 1;
        case 1: if (!uleb(buf, &pos, end, &a, 0, 0) || !addr_index(P, a, &base)) return 0; break;
        case 2: {
          double s_, e_;
          if (!uleb(buf, &pos, end, &a, 0, 0) || !addr_index(P, a, &s_) || !uleb(buf, &pos, end, &b, 0, 0) || !addr_index(P, b, &e_)) return 0;
          PUSH(s_, e_);
          break;
        }
        case 3: {
          double s_;
          if (!uleb(buf, &pos, end, &a, 0, 0) || !addr_index(P, a, &s_) || !uleb(buf, &pos, end, &b, 0, 0)) return 0;
          PUSH(s_, s_ + b);
          break;
        }
        case 4:
          if (!uleb(buf, &pos, end, &a, 0, 0) || !uleb(buf, &pos, end, &b, 0, 0)) return 0;
          PUSH(base + a, base + b);
          break;
        case 5: if (!read_un(buf, &pos, end, as, &base)) return 0; break;
        case 6:
          if (!read_un(buf, &pos, end, as, &a) || !read_un(buf, &pos, end, as, &b)) return 0;
          PUSH(a, b);
          break;
        case 7:
          if (!read_un(buf, &pos, end, as, &a) || !uleb(buf, &pos, end, &b, 0, 0)) return 0;
          PUSH(a, a + b);
          break;
        default: return 0;
      }
    }
  }
  /* DWARF 2 to 4: pairs of addresses; the largest address selects a new base. */
  const double max = as == 8 ? 18446744073709551616.0 : 4294967295.0;
  SEEK(v + P->ranges_base);
  for (;;) {
    double a, b;
    if (!read_un(buf, &pos, end, as, &a) || !read_un(buf, &pos, end, as, &b)) return 0;
    if (a == 0 && b == 0) return 1;
    if (++*charged > budget) return 0;
    if (a == max) { base = b; continue; }
    PUSH(base + a, base + b);
  }
#undef PUSH
#undef SEEK
}

/*
 * dieRanges for a captured DIE (scopes tracked) into triples from tri[*n]; row[ROW_RANGE] = 3,
 * the triple count and the entries charged. 0 when the reader must read them.
 */
static int row_triples(const struct DieParams *P, double *row, double *tri, u32 *n, u32 cap, double node, double budget) {
  u32 low_form = (u32)row[2 + 2 * SLOT_LOW], high_form = (u32)row[2 + 2 * SLOT_HIGH], rng_form = (u32)row[2 + 2 * SLOT_RANGES];
  u32 n0 = *n;
  double charged = 0;
  if (low_form && high_form) {
    double low, high;
    if (!form_address(P, low_form, row[3 + 2 * SLOT_LOW], &low)) return 0;
    if (is_constant(high_form)) high = low + row[3 + 2 * SLOT_HIGH];
    else if (!form_address(P, high_form, row[3 + 2 * SLOT_HIGH], &high)) return 0;
    if (high > low) {
      if (*n == cap) return 0;
      tri[3 * *n] = low; tri[3 * *n + 1] = high; tri[3 * *n + 2] = node; (*n)++;
    }
  } else if (rng_form) {
    if (!P->rng || !range_list(P, rng_form, row[3 + 2 * SLOT_RANGES], tri, n, cap, node, budget, &charged)) { *n = n0; return 0; }
  }
  row[ROW_RANGE] = 3;
  row[ROW_RANGE + 1] = (double)(*n - n0);
  row[ROW_RANGE + 2] = charged;
  return 1;
}

static struct DieParams die_params;

EXPORT("die_params") struct DieParams *die_params_ptr(void) { return &die_params; }


/* Reads one captured value; 0 when the reader must (too short, LEB128 too long). */
static int read_value(const u8 *buf, u32 *pos, u32 end, i32 kind, i32 implicit, double *out) {
  u32 p = *pos;
  switch (kind) {
    case VK_U8: case VK_U16: case VK_U24: case VK_U32:
      if (end - p < (u32)kind) return 0;
      *out = (double)le(buf + p, (u32)kind);
      *pos = p + (u32)kind;
      return 1;
    case VK_U64:
      if (end - p < 8) return 0;
      *out = (double)le(buf + p + 4, 4) * 4294967296.0 + (double)le(buf + p, 4);
      *pos = p + 8;
      return 1;
    case VK_ULEB:
      return uleb(buf, pos, end, out, 0, 0);
    case VK_SLEB: {
      double v, mul; u8 last;
      if (!uleb(buf, pos, end, &v, &mul, &last)) return 0;
      if (last & 0x40) v -= mul;
      *out = v;
      return 1;
    }
    case VK_CONST:
      *out = (double)implicit;
      return 1;
    default:
      return 0;
  }
}

/*
 * Walks DIEs that have a plan, tracking depth like functions.ts's walk: skips them, or for a
 * capture plan writes a row. Stops at the first DIE without a plan (a tag the reader reads
 * itself, an unusual form, an unknown code), one it cannot take cleanly (the reader then
 * reports the error), or when the rows are full; pos is left at that DIE's code.
 */
EXPORT("skip_dies") void skip_dies(void) {
  struct DieParams *P = &die_params;
  const u8 *buf = (const u8 *)P->base;
  const i32 *plans = (const i32 *)P->plans, *steps = (const i32 *)P->steps;
  double *rows = (double *)P->rows;
  u32 pos = P->pos, n_rows = 0;
  const u32 end = P->end;
  i32 depth = P->depth;
  i32 *scope = (i32 *)P->scope;
  const i32 scope_cap = (i32)P->scope_cap;
  i32 next_node = P->next_node, low_water = depth;
  double *tri = (double *)P->tri;
  u32 n_tri = 0;
  double budget = P->range_budget;
  P->done = 0;
  P->n_tri = 0;
  /* A tree deeper than the scopes kept here is the reader's. */
  if (scope && (depth < 0 || depth > scope_cap)) { P->n_rows = 0; P->low_water = depth; return; }
  while (pos < end) {
    u32 at = pos;
    double code_d;
    if (!uleb(buf, &pos, end, &code_d, 0, 0)) { pos = at; break; }
    if (code_d == 0) {
      if (--depth <= 0) { P->done = 1; break; }
      continue;
    }
    if (code_d >= (double)P->n_codes) { pos = at; break; }
    i32 plan = plans[(u32)code_d];
    if (plan == 0) { pos = at; break; }
    const i32 *s = steps + plan;
    i32 has_children = *s++;
    i32 capture = *s++;
    i32 tag = *s++;
    double *row = 0;
    if (scope && has_children && depth >= scope_cap) { pos = at; break; }
    if (capture) {
      if (n_rows == P->row_cap) { pos = at; break; }
      row = rows + (u64)n_rows * ROW_F64S;
      row[0] = (double)at;
      row[1] = (double)(capture - 1);
      for (u32 i = 2; i < ROW_F64S; i++) row[i] = 0;
    }
    int ok = 1;
    for (; ok && *s != STEP_END; s++) {
      i32 st = *s;
      if (st >= 0) {
        if ((u32)st > end - pos) ok = 0; else pos += (u32)st;
      } else if (st == STEP_LEB) {
        while (pos < end && (buf[pos] & 0x80)) pos++;
        if (pos >= end) ok = 0; else pos++;
      } else if (st == STEP_ULEB_BLOCK) {
        double len;
        if (!uleb(buf, &pos, end, &len, 0, 0) || len > (double)(end - pos)) ok = 0; else pos += (u32)len;
      } else if (st == STEP_BLOCK1 || st == STEP_BLOCK2 || st == STEP_BLOCK4) {
        u32 w = st == STEP_BLOCK1 ? 1 : st == STEP_BLOCK2 ? 2 : 4;
        if (end - pos < w) { ok = 0; break; }
        u32 len = le(buf + pos, w);
        pos += w;
        if (len > end - pos) ok = 0; else pos += len;
      } else if (st == STEP_CSTR) {
        while (pos < end && buf[pos] != 0) pos++;
        if (pos >= end) ok = 0; else pos++;
      } else if (st == STEP_CAPTURE) {
        i32 slot = s[1], form = s[2], kind = s[3], implicit = s[4];
        s += 4;
        double v;
        if (!row || slot < 0 || slot >= ROW_SLOTS || !read_value(buf, &pos, end, kind, implicit, &v)) { ok = 0; break; }
        row[2 + 2 * slot] = (double)form;
        row[3 + 2 * slot] = v;
      } else {
        ok = 0;
      }
    }
    if (!ok) { pos = at; break; }
    if (scope) {
      i32 up = depth > 0 ? scope[depth - 1] : -1, mine = up;
      if (capture) {
        /* The DIE's ranges now, so they keep tree order; one the kernel cannot read is the reader's. */
        if (!row_triples(P, row, tri, &n_tri, P->tri_cap, (double)next_node, budget)) { pos = at; break; }
        budget -= row[ROW_RANGE + 2];
        u32 origin_form = (u32)row[2 + 2 * SLOT_ORIGIN];
        double rec[NODE_F64S] = {
          row[0], row[1], row[ROW_RANGE + 2], (double)up, (double)tag,
          row[3 + 2 * SLOT_CALL_FILE], row[3 + 2 * SLOT_CALL_LINE], row[3 + 2 * SLOT_CALL_COLUMN],
          origin_form ? (is_unit_ref(origin_form) ? P->unit_offset : 0) + row[3 + 2 * SLOT_ORIGIN] : -1,
          row[2 + 2 * SLOT_DECL_FILE] ? row[3 + 2 * SLOT_DECL_FILE] : -1, row[3 + 2 * SLOT_DECL_LINE],
          row[2 + 2 * SLOT_DECLARATION] && row[3 + 2 * SLOT_DECLARATION] != 0 ? 1 : 0,
        };
        double *node_rec = rows + (u64)n_rows * NODE_F64S;
        for (u32 j = 0; j < NODE_F64S; j++) node_rec[j] = rec[j];
        mine = next_node++;
      }
      if (has_children) { scope[depth] = mine; if (depth < low_water) low_water = depth; }
    } else if (capture) {
      row_range(P, row);
    }
    if (capture) n_rows++;
    if (has_children) depth++;
    else if (depth == 0) { P->done = 1; break; }
  }
  P->pos = pos;
  P->depth = depth;
  P->n_rows = n_rows;
  P->next_node = next_node;
  P->low_water = low_water;
  P->n_tri = n_tri;
}

/* ------------------------------------------------------------------ the address -> DIE map */

/*
 * inlined.ts's AddrDieMap (LLVM's DWARFUnit::updateAddressDieMap): ranges (low, high, node) in
 * tree order, each laid over the ones before it, kept sorted by low in blocks of at most
 * MAP_BLOCK entries; the same blocks, splits and charges as twins.ts's dieMap, step for step.
 */
#define MAP_BLOCK 64
struct MapBlock { double keys[MAP_BLOCK + 1]; double highs[MAP_BLOCK + 1]; i32 nodes[MAP_BLOCK + 1]; u32 len; };

struct MapParams {
  u32 tri;        /* f64[3 n]: low, high, node */
  u32 n;
  u32 blocks;     /* room for block_cap MapBlocks */
  u32 block_cap;
  u32 order;      /* u32[block_cap]: blocks in key order */
  u32 first;      /* f64[block_cap]: each position's first key (-inf for the first block) */
  u32 out_keys;   /* out: f64[cap], f64[cap], i32[cap] */
  u32 out_highs;
  u32 out_nodes;
  u32 out_cap;
  u32 out_n;      /* out */
  u32 ok;         /* out: 0 when the blocks ran out (left to the twin) */
  double charge;  /* out: what the insertions charge to the reader's attribute budget */
};

static struct MapParams map_params;

EXPORT("map_params") struct MapParams *map_params_ptr(void) { return &map_params; }

static struct MapBlock *map_blocks;
static u32 *map_order, map_nb, map_full, map_finger;
static double *map_first, map_charge;

static u32 upper_f64(const double *a, u32 n, double x) {
  u32 lo = 0, hi = n;
  while (lo < hi) { u32 mid = (lo + hi) >> 1; if (x < a[mid]) hi = mid; else lo = mid + 1; }
  return lo;
}

/*
 * The position of the block holding the last key at or below x, and x's upper bound in it.
 * Ranges come in tree order, mostly ascending and near each other: the block of the last look-up
 * (map_finger) and the end of a block are tried first, each check exact, so only the time changes.
 */
static void map_locate(double x, u32 *b, u32 *i) {
  u32 f = map_finger;
  if (f < map_nb && map_first[f] <= x && (f + 1 == map_nb || x < map_first[f + 1])) *b = f;
  else { u32 ub = upper_f64(map_first, map_nb, x); *b = ub > 0 ? ub - 1 : 0; }
  map_finger = *b;
  struct MapBlock *blk = &map_blocks[map_order[*b]];
  *i = blk->len > 0 && x >= blk->keys[blk->len - 1] ? blk->len : upper_f64(blk->keys, blk->len, x);
}

static void map_set(double key, double high, i32 node) {
  u32 b, i;
  map_locate(key, &b, &i);
  struct MapBlock *blk = &map_blocks[map_order[b]];
  if (i > 0 && blk->keys[i - 1] == key) { blk->highs[i - 1] = high; blk->nodes[i - 1] = node; return; }
  map_charge += (double)((blk->len - i) >> 4);
  for (u32 j = blk->len; j > i; j--) { blk->keys[j] = blk->keys[j - 1]; blk->highs[j] = blk->highs[j - 1]; blk->nodes[j] = blk->nodes[j - 1]; }
  blk->keys[i] = key; blk->highs[i] = high; blk->nodes[i] = node;
  blk->len++;
  if (b > 0) map_first[b] = blk->keys[0];
  if (blk->len > MAP_BLOCK) {
    if (map_nb == map_params.block_cap) { map_full = 1; return; }
    u32 half = blk->len >> 1, id = map_nb;
    struct MapBlock *nb = &map_blocks[id];
    nb->len = blk->len - half;
    for (u32 j = 0; j < nb->len; j++) { nb->keys[j] = blk->keys[half + j]; nb->highs[j] = blk->highs[half + j]; nb->nodes[j] = blk->nodes[half + j]; }
    blk->len = half;
    for (u32 j = map_nb; j > b + 1; j--) { map_order[j] = map_order[j - 1]; map_first[j] = map_first[j - 1]; }
    map_order[b + 1] = id;
    map_first[b + 1] = nb->keys[0];
    map_nb++;
  }
}

EXPORT("die_map") void die_map(void) {
  struct MapParams *P = &map_params;
  const double *tri = (const double *)P->tri;
  map_blocks = (struct MapBlock *)P->blocks;
  map_order = (u32 *)P->order;
  map_first = (double *)P->first;
  map_nb = 1; map_full = 0; map_charge = 0; map_finger = 0;
  map_blocks[0].len = 0;
  map_order[0] = 0;
  map_first[0] = -__builtin_inf();
  P->ok = 0;
  for (u32 t = 0; t < P->n && !map_full; t++) {
    double low = tri[3 * t], high = tri[3 * t + 1];
    i32 node = (i32)tri[3 * t + 2];
    u32 b, i;
    map_locate(low, &b, &i);
    struct MapBlock *blk = &map_blocks[map_order[b]];
    if (i > 0 && low < blk->highs[i - 1]) {
      double p_key = blk->keys[i - 1], p_high = blk->highs[i - 1];
      i32 p_node = blk->nodes[i - 1];
      if (high < p_high) map_set(high, p_high, p_node);
      if (map_full) break;
      if (low > p_key) {
        u32 b2, i2;
        map_locate(p_key, &b2, &i2);
        map_blocks[map_order[b2]].highs[i2 - 1] = low;
      }
    }
    map_set(low, high, node);
  }
  if (map_full) return;
  u32 n = 0;
  double *keys = (double *)P->out_keys, *highs = (double *)P->out_highs;
  i32 *nodes = (i32 *)P->out_nodes;
  for (u32 b = 0; b < map_nb; b++) {
    const struct MapBlock *blk = &map_blocks[map_order[b]];
    if (n + blk->len > P->out_cap) return;
    for (u32 j = 0; j < blk->len; j++, n++) { keys[n] = blk->keys[j]; highs[n] = blk->highs[j]; nodes[n] = blk->nodes[j]; }
  }
  P->out_n = n;
  P->charge = map_charge;
  P->ok = 1;
}

/* ------------------------------------------------------------------ sorting PCs */

/*
 * LSD radix sort of n (32-bit key, index) pairs by key, stable: a holds them, b is scratch.
 * Returns the buffer holding the sorted pairs (a or b).
 */
static u32 *radix_pairs(u32 *a, u32 *b, u32 n) {
  static u32 count[256];
  for (u32 shift = 0; shift < 32; shift += 8) {
    for (u32 d = 0; d < 256; d++) count[d] = 0;
    for (u32 i = 0; i < n; i++) count[(a[2 * i] >> shift) & 0xff]++;
    if (n == 0 || count[(a[0] >> shift) & 0xff] == n) continue; /* every key has this digit */
    u32 sum = 0;
    for (u32 d = 0; d < 256; d++) { u32 c = count[d]; count[d] = sum; sum += c; }
    for (u32 i = 0; i < n; i++) {
      u32 j = count[(a[2 * i] >> shift) & 0xff]++;
      b[2 * j] = a[2 * i];
      b[2 * j + 1] = a[2 * i + 1];
    }
    u32 *t = a; a = b; b = t;
  }
  return a;
}

struct SortParams {
  u32 pcs;        /* u64[n], the caller's order */
  u32 n;
  u32 uniq;       /* out: f64[m], distinct addresses ascending */
  u32 at;         /* out: u32[n], index in uniq of each input PC (not written when increasing) */
  u32 tmp;        /* scratch: n (key, index) pairs; the PCs' own space holds the other n */
  u32 m;
  u32 increasing; /* out: input strictly increasing (uniq is the input, at is the identity) */
  u32 ok;         /* out: 0 when left to the caller (addresses at or above 2^53, or spread over 4 GiB) */
};

static struct SortParams sort_params;

EXPORT("sort_params") struct SortParams *sort_params_ptr(void) { return &sort_params; }

/*
 * Sorted distinct addresses and every input's place among them: an LSD radix sort of 32-bit
 * offsets from the lowest address, stable, so equal addresses keep input order.
 */
EXPORT("sort_pcs") void sort_pcs(void) {
  struct SortParams *P = &sort_params;
  const u64 *pcs = (const u64 *)P->pcs;
  double *uniq = (double *)P->uniq;
  u32 *at = (u32 *)P->at;
  const u32 n = P->n;
  u64 min = ~(u64)0, max = 0, prev = 0;
  int increasing = 1;
  P->ok = 0;
  for (u32 i = 0; i < n; i++) {
    u64 a = pcs[i];
    if (i > 0 && a <= prev) increasing = 0;
    if (a < min) min = a;
    if (a > max) max = a;
    prev = a;
  }
  if (n > 0 && max >= ((u64)1 << 53)) return;
  P->increasing = (u32)increasing;
  if (increasing) {
    for (u32 i = 0; i < n; i++) uniq[i] = (double)pcs[i];
    P->m = n;
    P->ok = 1;
    return;
  }
  if (max - min > 0xffffffffull) return;
  /* Each PC's 8 bytes become its (key, index) pair, read before written. */
  u32 *a = (u32 *)P->pcs, *b = (u32 *)P->tmp;
  for (u32 i = 0; i < n; i++) { u32 key = (u32)(pcs[i] - min); a[2 * i] = key; a[2 * i + 1] = i; }
  a = radix_pairs(a, b, n);
  u32 m = 0;
  for (u32 j = 0; j < n; j++) {
    u32 key = a[2 * j];
    if (m == 0 || key != a[2 * (j - 1)]) uniq[m++] = (double)(min + key);
    at[a[2 * j + 1]] = m - 1;
  }
  P->m = m;
  P->ok = 1;
}

/* ------------------------------------------------------------------ line look-ups */

struct LookupParams {
  u32 addrs;      /* f64[count], ascending */
  u32 count;
  u32 out_file;   /* out: u32[count], the row's file index, or 0xffffffff when no row */
  u32 out_line;
  u32 out_col;
  u32 scratch;    /* room for 6 * seqs u32 + 2 * seqs f64 */
  u32 resets;     /* u32[n_resets], ascending: indices where a new run of addresses starts */
  u32 n_resets;
};

static struct LookupParams lookup_params;

EXPORT("lookup_params") struct LookupParams *lookup_params_ptr(void) { return &lookup_params; }

/*
 * After line_program() ran to the end: the row for each address, as line.ts's lookupRows picks
 * it (sequences sorted by low address, stable; the first one whose high is above the address,
 * if it starts at or below it; in it, the last row at or below the address).
 */
EXPORT("line_lookup") void line_lookup(void) {
  struct LineParams *L = &line_params;
  struct LookupParams *P = &lookup_params;
  const u32 ns = L->seqs;
  const double *raddr = (const double *)L->row_addr;
  const u32 *rfile = (const u32 *)L->row_file, *rline = (const u32 *)L->row_line, *rcol = (const u32 *)L->row_col;
  const double *low0 = (const double *)L->seq_low, *high0 = (const double *)L->seq_high;
  const u32 *first0 = (const u32 *)L->seq_first, *last0 = (const u32 *)L->seq_last;
  double *low = (double *)P->scratch, *high = low + ns;
  u32 *first = (u32 *)(high + ns), *last = first + ns, *order = last + ns, *tmp = order + ns;

  /* Bottom-up merge sort of sequence indices by low address: stable, like Array.prototype.sort. */
  for (u32 i = 0; i < ns; i++) order[i] = i;
  for (u32 width = 1; width < ns; width *= 2) {
    for (u32 lo = 0; lo < ns; lo += 2 * width) {
      u32 mid = lo + width < ns ? lo + width : ns, hi = lo + 2 * width < ns ? lo + 2 * width : ns;
      u32 i = lo, j = mid, k = lo;
      while (i < mid && j < hi) tmp[k++] = low0[order[j]] < low0[order[i]] ? order[j++] : order[i++];
      while (i < mid) tmp[k++] = order[i++];
      while (j < hi) tmp[k++] = order[j++];
    }
    u32 *t = order; order = tmp; tmp = t;
  }
  for (u32 i = 0; i < ns; i++) { u32 o = order[i]; low[i] = low0[o]; high[i] = high0[o]; first[i] = first0[o]; last[i] = last0[o]; }

  const double *addrs = (const double *)P->addrs;
  u32 *ofile = (u32 *)P->out_file, *oline = (u32 *)P->out_line, *ocol = (u32 *)P->out_col;
  /* The sequence found for the last address is reused while it stays the answer; lookupRows
     forgets it between runs, and so does this. */
  const u32 *resets = (const u32 *)P->resets;
  u32 next_reset = 0;
  i32 seq = -1;
  for (u32 k = 0; k < P->count; k++) {
    double a = addrs[k];
    while (next_reset < P->n_resets && resets[next_reset] <= k) { if (resets[next_reset] == k) seq = -1; next_reset++; }
    ofile[k] = 0xffffffffu; oline[k] = 0; ocol[k] = 0;
    if (!(seq >= 0 && a < high[seq] && (seq == 0 || high[seq - 1] <= a))) {
      u32 lo = 0, hi = ns; /* upper_bound by high */
      while (lo < hi) { u32 mid = (lo + hi) >> 1; if (a < high[mid]) hi = mid; else lo = mid + 1; }
      seq = (i32)lo;
    }
    if ((u32)seq < ns && low[seq] <= a && a < high[seq]) {
      u32 x = first[seq] + 1, y = last[seq] - 1;
      while (x < y) { u32 mid = (x + y) >> 1; if (a < raddr[mid]) y = mid; else x = mid + 1; }
      u32 row = x - 1;
      ofile[k] = rfile[row]; oline[k] = rline[row]; ocol[k] = rcol[row];
    }
  }
}

/* ------------------------------------------------------------------ walks over sorted addresses */
/* Each mirrors a loop of resolve.ts (named in its comment) step for step. */

/* unitsFor: the unit of every sorted address, walking the unit map alongside (-1 = none). */
EXPORT("units_for") void units_for(const double *uniq, u32 m, const double *low, const double *high, const i32 *unit, u32 n, i32 *out) {
  u32 j = 0;
  for (u32 k = 0; k < m; k++) {
    double a = uniq[k];
    out[k] = -1;
    while (j < n && high[j] <= a) j++;
    if (j < n && low[j] <= a) out[k] = unit[j];
  }
}

/* symbolsFor: the symbol naming every sorted address, walking the symbols alongside (-1 = none). */
EXPORT("symbols_for") void symbols_for(const double *uniq, u32 m, const double *addr, const double *size, u32 n, i32 *out) {
  u32 j = 0;
  for (u32 k = 0; k < m; k++) {
    double a = uniq[k];
    out[k] = -1;
    while (j < n && addr[j] <= a) j++;
    if (j > 0) {
      u32 i = j - 1;
      if (size[i] == 0 || a < addr[i] + size[i]) out[k] = (i32)i;
    }
  }
}

/* spansFor: for each address, the innermost-starting span containing it (base + fn), or out unchanged. */
EXPORT("spans_for") void spans_for(const double *low, const double *high, const u32 *fn, u32 n, u32 base, const double *uniq, u32 m, i32 *out) {
  for (u32 k = 0; k < m; k++) {
    double a = uniq[k];
    u32 lo = 0, hi = n;
    while (lo < hi) { u32 mid = (lo + hi) >> 1; if (low[mid] <= a) lo = mid + 1; else hi = mid; }
    if (lo > 0 && a < high[lo - 1]) out[k] = (i32)(base + fn[lo - 1]);
  }
}

/* nameRuns: runs [start, end) of this share's addresses with the same symbol and subprogram. */
EXPORT("name_runs") u32 name_runs(const i32 *unit_of, const i32 *sym_of, const i32 *fn_of, u32 m, i32 share_k, i32 share_n, i32 *out) {
  u32 n = 0;
#define MINE(ui) (((ui) < 0 ? 0 : (ui) % share_n) == share_k)
  for (u32 k = 0; k < m;) {
    if (!MINE(unit_of[k])) { k++; continue; }
    i32 sym = sym_of[k], fi = fn_of[k];
    u32 e = k + 1;
    if (sym >= 0) while (e < m && sym_of[e] == sym && fn_of[e] == fi && MINE(unit_of[e])) e++;
    out[n++] = (i32)k; out[n++] = (i32)e;
    k = e;
  }
#undef MINE
  return n;
}

/* gather: a per-address field back in the caller's order. */
EXPORT("gather") void gather(const u32 *at, u32 n, const u32 *from, u32 *to) {
  for (u32 i = 0; i < n; i++) to[i] = from[at[i]];
}

/* ------------------------------------------------------------------ ordering values */

/*
 * order.ts's stableOrder: the indices of n values ordered by value, equal values by index.
 * Values must be integers in [0, 2^53) spread over less than 2^32 (addresses); returns 0 and
 * leaves the order to the caller otherwise. a and b hold n (key, index) pairs each.
 */
EXPORT("order_values") u32 order_values(const double *v, u32 n, u32 *a, u32 *b, u32 *out) {
  double min = 0, max = 0;
  for (u32 i = 0; i < n; i++) {
    double x = v[i];
    if (!(x >= 0 && x < 9007199254740992.0) || x != (double)(u64)x) return 0;
    if (i == 0 || x < min) min = x;
    if (i == 0 || x > max) max = x;
  }
  if (max - min > 4294967295.0) return 0;
  u64 lo = (u64)min;
  for (u32 i = 0; i < n; i++) { a[2 * i] = (u32)((u64)v[i] - lo); a[2 * i + 1] = i; }
  a = radix_pairs(a, b, n);
  for (u32 j = 0; j < n; j++) out[j] = a[2 * j + 1];
  return 1;
}

/*
 * kernels.ts reads and writes these structs by byte offset (its LP, LS, DP, LK and SP tables,
 * ROW_RANGE and ROW_F64S): pin every offset here, so a change on one side fails the build
 * instead of corrupting results.
 */
#define AT(T, f, off) _Static_assert(__builtin_offsetof(struct T, f) == (off), #T "." #f " moved: update kernels.ts")
AT(LineParams, addr_step, 0); AT(LineParams, line_step, 2048); AT(LineParams, std_lens, 3072); AT(LineParams, const_add_pc, 3328);
AT(LineParams, opcode_base, 3336); AT(LineParams, line_range, 3340); AT(LineParams, min_inst, 3344); AT(LineParams, prog, 3348);
AT(LineParams, prog_len, 3352); AT(LineParams, row_addr, 3356); AT(LineParams, row_file, 3360); AT(LineParams, row_line, 3364);
AT(LineParams, row_col, 3368); AT(LineParams, row_cap, 3372); AT(LineParams, seq_low, 3376); AT(LineParams, seq_high, 3380);
AT(LineParams, seq_first, 3384); AT(LineParams, seq_last, 3388); AT(LineParams, seq_cap, 3392); AT(LineParams, count_only, 3396);
AT(LineParams, rows, 3400); AT(LineParams, seqs, 3404); AT(LineParams, stop, 3408);
AT(LineState, address, 0); AT(LineState, file, 8); AT(LineState, line, 12); AT(LineState, column, 16);
AT(LineState, seq_empty, 20); AT(LineState, seq_low, 24); AT(LineState, seq_first, 32);
AT(DieParams, plans, 0); AT(DieParams, n_codes, 4); AT(DieParams, steps, 8); AT(DieParams, base, 12); AT(DieParams, pos, 16);
AT(DieParams, end, 20); AT(DieParams, depth, 24); AT(DieParams, done, 28); AT(DieParams, rows, 32); AT(DieParams, row_cap, 36);
AT(DieParams, n_rows, 40); AT(DieParams, addr, 44); AT(DieParams, addr_len, 48); AT(DieParams, addr_size, 52); AT(DieParams, addr_base, 56);
AT(DieParams, scope, 64); AT(DieParams, scope_cap, 68); AT(DieParams, next_node, 72); AT(DieParams, low_water, 76);
AT(DieParams, rng, 80); AT(DieParams, rng_len, 84); AT(DieParams, version, 88); AT(DieParams, off_size, 92); AT(DieParams, rnglists_base, 96);
AT(DieParams, ranges_base, 104); AT(DieParams, low_pc, 112); AT(DieParams, range_budget, 120); AT(DieParams, tri, 128); AT(DieParams, tri_cap, 132);
AT(DieParams, n_tri, 136); AT(DieParams, unit_offset, 144);
AT(LookupParams, addrs, 0); AT(LookupParams, count, 4); AT(LookupParams, out_file, 8); AT(LookupParams, out_line, 12);
AT(LookupParams, out_col, 16); AT(LookupParams, scratch, 20); AT(LookupParams, resets, 24); AT(LookupParams, n_resets, 28);
AT(SortParams, pcs, 0); AT(SortParams, n, 4); AT(SortParams, uniq, 8); AT(SortParams, at, 12); AT(SortParams, tmp, 16);
AT(SortParams, m, 20); AT(SortParams, increasing, 24); AT(SortParams, ok, 28);
AT(MapParams, tri, 0); AT(MapParams, n, 4); AT(MapParams, blocks, 8); AT(MapParams, block_cap, 12); AT(MapParams, order, 16);
AT(MapParams, first, 20); AT(MapParams, out_keys, 24); AT(MapParams, out_highs, 28); AT(MapParams, out_nodes, 32); AT(MapParams, out_cap, 36);
AT(MapParams, out_n, 40); AT(MapParams, ok, 44); AT(MapParams, charge, 48);
_Static_assert(sizeof(struct MapBlock) == 65 * 20 + 4, "MapBlock moved: update MAP_BLOCK_BYTES in kernels.ts");
_Static_assert(ROW_RANGE == 22 && ROW_F64S == 25 && NODE_F64S == 12, "row layout moved: update ROW_RANGE / ROW_F64S / NODE_F64S in kernels.ts");
#undef AT
