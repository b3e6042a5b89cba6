/*
 * The text of a tinyimg "tEXt" chunk: lines of key=value.
 *   author=<up to 31 printable characters>
 *   date=YYYY-MM-DD          (a real calendar date, leap years included)
 *   gamma=<decimal, e.g. 2.2> (0 < gamma <= 10, at most 3 decimals)
 *   scale=<integer expression with + - * / and parentheses>
 *   tags=<comma-separated words, at most 4>
 * Lines starting with '#' are comments. Unknown keys are an error.
 */
#include <ctype.h>
#include <string.h>

#include "tinyimg.h"

struct cursor {
  const char *p, *end;
  int depth;
  int error;
};

static int at_end(const struct cursor *c) { return c->p >= c->end; }
static char peek(const struct cursor *c) { return at_end(c) ? 0 : *c->p; }

static int parse_int(const char *s, size_t len, int digits, int *out) {
  if ((int)len != digits) return -1;
  int v = 0;
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

static int days_in_month(int year, int month) {
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) return 29;
  return days[month - 1];
}

static enum tinyimg_error parse_date(const char *v, size_t len, struct tinyimg_meta *m) {
  if (len != 10 || v[4] != '-' || v[7] != '-') return TINYIMG_BAD_META;
  if (parse_int(v, 4, 4, &m->year) || parse_int(v + 5, 2, 2, &m->month) || parse_int(v + 8, 2, 2, &m->day))
    return TINYIMG_BAD_META;
  if (m->year < 1900 || m->month < 1 || m->month > 12) return TINYIMG_BAD_META;
  if (m->day < 1 || m->day > days_in_month(m->year, m->month)) return TINYIMG_BAD_META;
  return TINYIMG_OK;
}

static enum tinyimg_error parse_gamma(const char *v, size_t len, struct tinyimg_meta *m) {
  int whole = 0, frac = 0, frac_digits = 0, seen_dot = 0;
  if (len == 0) return TINYIMG_BAD_META;
  for (size_t i = 0; i < len; i++) {
    if (v[i] == '.') {
      if (seen_dot++) return TINYIMG_BAD_META;
    } else if (isdigit((unsigned char)v[i])) {
      if (seen_dot) {
        if (++frac_digits > 3) return TINYIMG_BAD_META;
        frac = frac * 10 + (v[i] - '0');
      } else {
        whole = whole * 10 + (v[i] - '0');
        if (whole > 10) return TINYIMG_BAD_META;
      }
    } else {
      return TINYIMG_BAD_META;
    }
  }
  while (frac_digits++ < 3) frac *= 10;
  m->gamma_milli = whole * 1000 + frac;
  if (m->gamma_milli == 0 || m->gamma_milli > 10000) return TINYIMG_BAD_META;
  return TINYIMG_OK;
}

/* expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ; factor := number | '(' expr ')' | '-' factor */
static long parse_expr(struct cursor *c);

static long parse_factor(struct cursor *c) {
  if (c->error) return 0;
  char ch = peek(c);
  if (ch == '(') {
    if (++c->depth > 8) {
      c->error = 1; /* nesting limit */
      return 0;
    }
    c->p++;
    long v = parse_expr(c);
    if (peek(c) != ')') {
      c->error = 1;
      return 0;
    }
    c->p++;
    c->depth--;
    return v;
  }
  if (ch == '-') {
    c->p++;
    return -parse_factor(c);
  }
  if (!isdigit((unsigned char)ch)) {
    c->error = 1;
    return 0;
  }
  long v = 0;
  while (isdigit((unsigned char)peek(c))) {
    v = v * 10 + (*c->p++ - '0');
    if (v > 1000000) {
      c->error = 1;
      return 0;
    }
  }
  return v;
}

static long parse_term(struct cursor *c) {
  long v = parse_factor(c);
  while (!c->error && (peek(c) == '*' || peek(c) == '/')) {
    char op = *c->p++;
    long rhs = parse_factor(c);
    if (op == '*') {
      v *= rhs;
      if (v > 1000000000L || v < -1000000000L) c->error = 1;
    } else if (rhs == 0) {
      c->error = 1; /* division by zero */
    } else {
      v /= rhs;
    }
  }
  return v;
}

static long parse_expr(struct cursor *c) {
  long v = parse_term(c);
  while (!c->error && (peek(c) == '+' || peek(c) == '-')) {
    char op = *c->p++;
    long rhs = parse_term(c);
    v = op == '+' ? v + rhs : v - rhs;
  }
  return v;
}

static enum tinyimg_error parse_scale(const char *v, size_t len, struct tinyimg_meta *m) {
  struct cursor c = {v, v + len, 0, 0};
  long r = parse_expr(&c);
  if (c.error || !at_end(&c)) return TINYIMG_BAD_META;
  if (r <= 0 || r > 64) return TINYIMG_BAD_META; /* a scale factor of 1..64 */
  m->scale = r;
  return TINYIMG_OK;
}

static enum tinyimg_error parse_tags(const char *v, size_t len, struct tinyimg_meta *m) {
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && v[i] != ',') {
      if (!isalnum((unsigned char)v[i]) && v[i] != '-') return TINYIMG_BAD_META;
      continue;
    }
    size_t n = i - start;
    if (n == 0 || n >= sizeof m->tags[0]) return TINYIMG_BAD_META;
    if (m->n_tags == 4) return TINYIMG_BAD_META;
    for (int k = 0; k < m->n_tags; k++)
      if (strlen(m->tags[k]) == n && memcmp(m->tags[k], v + start, n) == 0) return TINYIMG_BAD_META; /* duplicate */
    memcpy(m->tags[m->n_tags], v + start, n);
    m->tags[m->n_tags][n] = 0;
    m->n_tags++;
    start = i + 1;
  }
  return TINYIMG_OK;
}

enum tinyimg_error tinyimg_parse_meta(const char *text, size_t len, struct tinyimg_meta *meta) {
  memset(meta, 0, sizeof *meta);
  meta->scale = 1;
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = nl ? nl : end;
    size_t n = (size_t)(line_end - p);
    if (n > 0 && p[0] != '#') {
      const char *eq = memchr(p, '=', n);
      if (!eq) return TINYIMG_BAD_META;
      size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
      const char *v = eq + 1;
      enum tinyimg_error e;
      if (klen == 6 && memcmp(p, "author", 6) == 0) {
        if (vlen == 0 || vlen >= sizeof meta->author) return TINYIMG_BAD_META;
        for (size_t i = 0; i < vlen; i++)
          if (!isprint((unsigned char)v[i])) return TINYIMG_BAD_META;
        memcpy(meta->author, v, vlen);
        meta->author[vlen] = 0;
        e = TINYIMG_OK;
      } else if (klen == 4 && memcmp(p, "date", 4) == 0) {
        e = parse_date(v, vlen, meta);
      } else if (klen == 5 && memcmp(p, "gamma", 5) == 0) {
        e = parse_gamma(v, vlen, meta);
      } else if (klen == 5 && memcmp(p, "scale", 5) == 0) {
        e = parse_scale(v, vlen, meta);
      } else if (klen == 4 && memcmp(p, "tags", 4) == 0) {
        e = parse_tags(v, vlen, meta);
      } else {
        return TINYIMG_BAD_META;
      }
      if (e != TINYIMG_OK) return e;
    }
    p = nl ? nl + 1 : end;
  }
  return TINYIMG_OK;
}
