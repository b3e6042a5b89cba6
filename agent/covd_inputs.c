/*
 * covd agent, part 2: the inputs behind new coverage, and crashes.
 *
 * #included at the end of covd_agent.c (one translation unit, so it shares the agent's state
 * and helpers and costs no extra call on the hot path); it is not compiled on its own. The
 * formats are in docs/coverage-file.md ("Inputs and crashes"); src/daemon/inputs-log.ts reads
 * them.
 *
 * Inputs. When an input reaches PCs no process sharing the coverage file had seen, the agent
 * knows exactly which: the atomic OR of new seen bits returns the word as it was, so the bits
 * this process turned on are the PCs it was first to reach (another process racing on the same
 * word gets the others). Such an input is saved, content-addressed by SHA-1 as libFuzzer names
 * its corpus files, in v/<id>.inputs/<40 hex>, written to a temp name and linked into place
 * (complete or absent, and two processes saving the same bytes keep one file); then records
 * (hash, size, time, pid, this process's run number, the PC indices) are appended to
 * v/<id>.inputs.log. Nothing of this runs unless an input found new PCs.
 *
 * Several processes (-jobs, -fork) append to one log without a lock: the log is opened
 * O_APPEND and every record is one write() of at most 4096 bytes (PIPE_BUF), so the kernel
 * places each record at the end atomically and concurrent appends never interleave (Linux holds
 * the inode lock for a regular file's whole write on local file systems). A lock would have to
 * be taken in crash handlers too, where waiting on another process could hang a dying one. An
 * input that was first to reach more PCs than one record holds takes several records ("parts").
 * Every record ends with a CRC-32, so a reader skips a torn one (a write cut short by a full
 * disk) and finds the next by its magic.
 *
 * Limits: COVD_AGENT_INPUT_MAX (default 1M) is the largest input kept; a larger one is
 * recorded with its hash and size but not its bytes. COVD_AGENT_INPUTS_TOTAL (default 256M)
 * bounds the bytes in v/<id>.inputs/: past it, one process at a time (flock on the directory)
 * deletes files, those that are no PC's first (crash inputs, inputs of a recreated coverage
 * file) first, oldest first, until it is under 7/8 of the limit. Each process counts its own
 * saves and re-reads the directory's total after every 1/8 of the limit, so with N processes
 * the directory can exceed the limit by at most N/8 of it. COVD_AGENT_INPUTS=0 saves nothing.
 *
 * Crashes. The agent records the first fatal event of a process, at the moment it happens:
 *   - fatal signals (SEGV, BUS, ILL, FPE, ABRT, TRAP): its own handler, installed over the one
 *     libFuzzer or a sanitizer set (at the first input, after libFuzzer installed its own),
 *     records, then calls that handler (or the default action), so their behaviour is unchanged;
 *   - sanitizer reports (ASan, UBSan, LSan leaks, allocator OOM): the sanitizers' documented
 *     weak hook __sanitizer_report_error_summary, which the agent defines: it records, then
 *     prints the summary line as the default does;
 *   - libFuzzer's own deaths, which end in _Exit (timeout: -timeout_exitcode, default 70;
 *     out-of-memory: 71; a target that called exit() and other errors: -error_exitcode, 77):
 *     `covd cc` links with -Wl,--wrap=_Exit, and the wrapper records before exiting.
 * The record holds the kind, the input (libFuzzer's current unit: the wrapper of
 * LLVMFuzzerTestOneInput keeps a pointer to it while the target runs; saved like the inputs
 * above) and the crashing thread's stack as raw return addresses (_Unwind_Backtrace, through
 * the signal frame), and goes to v/<id>.crashes.log in one write(). Crash-path code is
 * async-signal-safe: no malloc, no stdio, only system calls on descriptors opened at start-up
 * and buffers that exist already. COVD_AGENT_CRASHES=0 records none.
 */
#include <dirent.h>
#include <signal.h>
#include <sys/file.h>
#include <unwind.h>

#define CVD_MAGIC_INPUT 0x49445643u /* "CVDI" little-endian */
#define CVD_MAGIC_CRASH 0x43445643u /* "CVDC" */
#define CVD_REC_MAX 4096            /* PIPE_BUF: one write() each */
#define CVD_INPUT_HEAD 64
#define CVD_INPUT_PCS_MAX ((CVD_REC_MAX - CVD_INPUT_HEAD - 4) / 4)
#define CVD_FRAMES_MAX 64
#define CVD_DETAIL_MAX 256
#define CVD_ARTIFACT_MAX 1024

/* Input record flags. */
#define IN_KEPT 1      /* the bytes are in v/<id>.inputs/<hash> (written now or already there) */
#define IN_TOO_LARGE 2 /* over COVD_AGENT_INPUT_MAX: hash and size only */
#define IN_NOT_SAVED 4 /* could not be written (disk full, ...) */

enum crash_kind { CK_SIGNAL = 1, CK_SANITIZER = 2, CK_TIMEOUT = 3, CK_OOM = 4, CK_LEAK = 5, CK_EXIT = 6 };

static int in_on;                       /* inputs are saved */
static int crash_on;                    /* crashes are recorded */
static int in_dirfd = -1, in_logfd = -1, crash_logfd = -1;
static char in_log_path[PATH_MAX];
static uint64_t in_max = 1u << 20, in_total = 256ull << 20;
static uint64_t in_usage, in_since_scan;
static uintptr_t mod_bias, mod_lo, mod_hi;
/* Blocks of the seen words this process was first to set during the current input. */
static size_t *first_k;
static uint64_t *first_m;
static size_t first_n, first_cap;
static uint32_t crc_table[256];
static uint8_t rec_buf[CVD_REC_MAX] __attribute__((aligned(8)));
/* libFuzzer's exit codes, from the command line (docs: -timeout_exitcode, -error_exitcode). */
static int timeout_exitcode = 70, error_exitcode = 77;
#define LIBFUZZER_OOM_EXITCODE 71
static char artifact_prefix[CVD_ARTIFACT_MAX];
static size_t artifact_len;
static int crashed; /* set once the process recorded its crash */
/* Figures for COVD_AGENT_STATS. */
static uint64_t st_saves, st_records, st_bytes, st_too_large, st_failed, st_evicted, st_ns, st_ns_max;

/* ---- SHA-1 (FIPS 180-4) and CRC-32 (IEEE 802.3, as zlib), both usable in a signal handler ---- */

struct sha1 {
  uint32_t h[5];
  uint64_t len;
  uint8_t buf[64];
  size_t n;
};

static inline uint32_t rol32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static void sha1_block(uint32_t h[5], const uint8_t *p) {
  uint32_t w[80];
  for (int t = 0; t < 16; t++) w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
  for (int t = 16; t < 80; t++) w[t] = rol32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int t = 0; t < 80; t++) {
    uint32_t f, k;
    if (t < 20) f = (b & c) | (~b & d), k = 0x5a827999;
    else if (t < 40) f = b ^ c ^ d, k = 0x6ed9eba1;
    else if (t < 60) f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
    else f = b ^ c ^ d, k = 0xca62c1d6;
    uint32_t tmp = rol32(a, 5) + f + e + k + w[t];
    e = d, d = c, c = rol32(b, 30), b = a, a = tmp;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

static void sha1_init(struct sha1 *s) {
  static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
  memcpy(s->h, iv, sizeof iv);
  s->len = 0;
  s->n = 0;
}

static void sha1_update(struct sha1 *s, const uint8_t *p, size_t n) {
  s->len += n;
  if (s->n) {
    size_t take = 64 - s->n < n ? 64 - s->n : n;
    memcpy(s->buf + s->n, p, take);
    s->n += take, p += take, n -= take;
    if (s->n < 64) return;
    sha1_block(s->h, s->buf);
    s->n = 0;
  }
  for (; n >= 64; p += 64, n -= 64) sha1_block(s->h, p);
  memcpy(s->buf, p, n);
  s->n = n;
}

static void sha1_final(struct sha1 *s, uint8_t out[20]) {
  uint64_t bits = s->len * 8;
  uint8_t pad = 0x80;
  sha1_update(s, &pad, 1);
  uint8_t zero = 0;
  while (s->n != 56) sha1_update(s, &zero, 1);
  uint8_t lenb[8];
  for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
  sha1_update(s, lenb, 8);
  for (int i = 0; i < 5; i++) {
    out[4 * i] = (uint8_t)(s->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)s->h[i];
  }
}

static void sha1_of(const uint8_t *p, size_t n, uint8_t out[20]) {
  struct sha1 s;
  sha1_init(&s);
  sha1_update(&s, p, n);
  sha1_final(&s, out);
}

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static void hex40(const uint8_t d[20], char out[41]) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 20; i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[40] = 0;
}

static inline void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static uint64_t real_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "1048576", "512K", "1M", "2G"; `def` when unset or unreadable. */
static uint64_t env_size(const char *name, uint64_t def) {
  const char *s = getenv(name);
  if (!s || !*s) return def;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s) return def;
  switch (*end) {
    case 'k': case 'K': v <<= 10; break;
    case 'm': case 'M': v <<= 20; break;
    case 'g': case 'G': v <<= 30; break;
    case 0: break;
    default: return def;
  }
  return v;
}

static int env_off(const char *name) {
  const char *s = getenv(name);
  return s && strcmp(s, "0") == 0;
}

/* ---- saving bytes, content-addressed ---- */

/* Writes `data` as <dir>/<hex> unless it is there already. Signal-safe. Returns 0 when the file exists afterwards. */
static int save_bytes(const char *hex, const uint8_t *data, size_t size, int *wrote) {
  struct stat st;
  *wrote = 0;
  if (fstatat(in_dirfd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0) return S_ISREG(st.st_mode) ? 0 : -1;
  char tmp[64];
  /* ".<hex>.<pid>.tmp" without snprintf */
  size_t n = 0;
  tmp[n++] = '.';
  memcpy(tmp + n, hex, 40);
  n += 40;
  tmp[n++] = '.';
  char digits[12];
  size_t nd = 0;
  uint32_t p = (uint32_t)getpid();
  do digits[nd++] = (char)('0' + p % 10), p /= 10; while (p && nd < sizeof digits);
  while (nd) tmp[n++] = digits[--nd];
  memcpy(tmp + n, ".tmp", 5);
  int fd = openat(in_dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return -1;
  int ok = write_all(fd, data, size, 0) == 0;
  close(fd);
  int linked = 0;
  if (ok) {
    if (linkat(in_dirfd, tmp, in_dirfd, hex, 0) == 0) linked = 1;
    else if (errno != EEXIST) ok = 0; /* EEXIST: another process saved the same bytes first */
  }
  unlinkat(in_dirfd, tmp, 0);
  if (!ok) return -1;
  *wrote = linked;
  return 0;
}

/* ---- the inputs log ---- */

static void append_record(int fd, uint8_t *rec, size_t len) {
  put16(rec + 4, (uint16_t)len);
  put32(rec + len - 4, crc32_of(rec, len - 4));
  for (;;) {
    ssize_t w = write(fd, rec, len);
    if (w < 0 && errno == EINTR) continue;
    break; /* a short write leaves a torn record, which readers skip by its CRC */
  }
}

static void usage_rescan(void);
static void evict(void);

/*
 * Called after an input that set seen bits: saves it and logs the PCs it was first to reach.
 * Out of line and cold: the hot path only gets here when an input found new coverage.
 */
__attribute__((noinline, cold)) static void inputs_new_coverage(const uint8_t *data, size_t size) {
  if (!in_on || first_n == 0) {
    first_n = 0;
    return;
  }
  uint64_t t0 = mono_ns();
  uint8_t digest[20];
  sha1_of(data, size, digest);
  char hex[41];
  hex40(digest, hex);
  uint8_t flags = 0;
  int wrote = 0;
  if (size > in_max) {
    flags |= IN_TOO_LARGE;
    st_too_large++;
  } else if (save_bytes(hex, data, size, &wrote) == 0) {
    flags |= IN_KEPT;
  } else {
    flags |= IN_NOT_SAVED;
    st_failed++;
  }
  size_t npcs = 0;
  for (size_t i = 0; i < first_n; i++) npcs += (size_t)__builtin_popcountll(first_m[i]);
  uint16_t parts = (uint16_t)((npcs + CVD_INPUT_PCS_MAX - 1) / CVD_INPUT_PCS_MAX);
  uint64_t now = real_ms();
  uint32_t pid = (uint32_t)getpid(); /* not cached: an AFL++ fork server's children are other processes */
  size_t blk = 0;
  uint64_t m = first_m[0];
  for (uint16_t part = 0; part < parts; part++) {
    uint8_t *r = rec_buf;
    memset(r, 0, CVD_INPUT_HEAD);
    put32(r, CVD_MAGIC_INPUT);
    r[6] = 1; /* version */
    r[7] = flags;
    memcpy(r + 8, digest, 20);
    put32(r + 28, pid);
    put64(r + 32, now);
    put64(r + 40, proc_runs);
    put64(r + 48, size);
    put16(r + 56, part);
    put16(r + 58, parts);
    uint32_t n = 0;
    while (n < CVD_INPUT_PCS_MAX && blk < first_n) {
      if (!m) {
        if (++blk < first_n) m = first_m[blk];
        continue;
      }
      uint32_t idx = (uint32_t)(first_k[blk] * 64 + (size_t)__builtin_ctzll(m));
      m &= m - 1;
      put32(r + CVD_INPUT_HEAD + 4 * n, idx);
      n++;
    }
    put32(r + 60, n);
    append_record(in_logfd, r, CVD_INPUT_HEAD + 4 * (size_t)n + 4);
    st_records++;
  }
  first_n = 0;
  st_saves++;
  if (wrote) {
    st_bytes += size;
    in_usage += size;
    in_since_scan += size;
    if (in_usage > in_total || in_since_scan > in_total / 8) {
      usage_rescan();
      if (in_usage > in_total) evict();
    }
  }
  uint64_t dt = mono_ns() - t0;
  st_ns += dt;
  if (dt > st_ns_max) st_ns_max = dt;
}

/* Bits this process turns on in seen word k: the PCs it was first to reach. Cold, out of line. */
__attribute__((noinline, cold)) static void merge_new(size_t k, uint64_t nb) {
  uint64_t old = __atomic_fetch_or(&seen[k], nb, __ATOMIC_RELAXED);
  uint64_t first = nb & ~old;
  if (first && first_n < first_cap) {
    first_k[first_n] = k;
    first_m[first_n] = first;
    first_n++;
  }
}

static int is_hex40(const char *s) {
  for (int i = 0; i < 40; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return s[40] == 0;
}

struct kept_file {
  uint8_t digest[20];
  uint64_t size;
  int64_t mtime;
  int first;
};

/* Calls fn for every kept input file (40 hex digits) in the directory. */
static void each_kept(void (*fn)(const char *, const struct stat *, void *), void *arg) {
  int fd = openat(in_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strlen(e->d_name) != 40 || !is_hex40(e->d_name)) continue;
    struct stat st;
    if (fstatat(in_dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    fn(e->d_name, &st, arg);
  }
  closedir(d);
}

static void add_size(const char *name, const struct stat *st, void *arg) {
  (void)name;
  *(uint64_t *)arg += (uint64_t)st->st_size;
}

/* The directory's true total (other processes save too). */
static void usage_rescan(void) {
  uint64_t total = 0;
  each_kept(add_size, &total);
  in_usage = total;
  in_since_scan = 0;
}

static int unhex(const char *s, uint8_t out[20]) {
  for (int i = 0; i < 20; i++) {
    int hi = s[2 * i] <= '9' ? s[2 * i] - '0' : s[2 * i] - 'a' + 10;
    int lo = s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0' : s[2 * i + 1] - 'a' + 10;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

struct file_list {
  struct kept_file *v;
  size_t n, cap;
};

static void collect(const char *name, const struct stat *st, void *arg) {
  struct file_list *l = arg;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 256;
    struct kept_file *nv = realloc(l->v, cap * sizeof *nv);
    if (!nv) return;
    l->v = nv;
    l->cap = cap;
  }
  struct kept_file *f = &l->v[l->n++];
  unhex(name, f->digest);
  f->size = (uint64_t)st->st_size;
  f->mtime = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
  f->first = 0;
}

static int digest_cmp(const void *a, const void *b) { return memcmp(a, b, 20); }

static int evict_order(const void *a, const void *b) {
  const struct kept_file *x = a, *y = b;
  if (x->first != y->first) return x->first - y->first; /* no PC's first go first */
  return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/*
 * Deletes kept inputs until the directory is under 7/8 of COVD_AGENT_INPUTS_TOTAL: those that
 * are no PC's first (per the log: the first record naming a PC is its first) oldest first, then
 * the oldest others. One process at a time; a process that finds another evicting skips.
 */
static void evict(void) {
  /* A descriptor of its own: processes forked from one fork server share in_dirfd's open file
   * description, and flock on a shared description would not keep them apart. */
  int lockfd = openat(in_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lockfd < 0) return;
  if (flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
    close(lockfd);
    return;
  }
  uint64_t *claimed = calloc((n_counters + 63) / 64, 8);
  uint8_t *firsts = NULL;
  size_t nfirst = 0, capfirst = 0;
  uint8_t *buf = malloc(1 << 16);
  struct file_list files = {0};
  int rfd = open(in_log_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (!claimed || !buf || rfd < 0) goto out;
  /* Which hashes are some PC's first. */
  off_t off = 0;
  size_t have = 0;
  for (;;) {
    ssize_t r = pread(rfd, buf + have, (1 << 16) - have, off + (off_t)have);
    if (r <= 0) break;
    have += (size_t)r;
    size_t p = 0;
    while (have - p >= 8) {
      uint32_t magic = get32(buf + p);
      uint16_t len = get16(buf + p + 4);
      if (magic != CVD_MAGIC_INPUT || len < CVD_INPUT_HEAD + 4 || len > CVD_REC_MAX || len % 4) {
        p += 4;
        continue;
      }
      if (have - p < len) break;
      const uint8_t *rec = buf + p;
      if (crc32_of(rec, len - 4u) != get32(rec + len - 4) || CVD_INPUT_HEAD + 4 * (size_t)get32(rec + 60) + 4 != len) {
        p += 4;
        continue;
      }
      uint32_t n = get32(rec + 60);
      int is_first = 0;
      for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = get32(rec + CVD_INPUT_HEAD + 4 * i);
        if (idx >= n_counters) continue;
        uint64_t bit = 1ull << (idx & 63);
        if (!(claimed[idx / 64] & bit)) {
          claimed[idx / 64] |= bit;
          is_first = 1;
        }
      }
      if (is_first) {
        if (nfirst == capfirst) {
          size_t cap = capfirst ? capfirst * 2 : 256;
          uint8_t *nf = realloc(firsts, cap * 20);
          if (!nf) goto out;
          firsts = nf;
          capfirst = cap;
        }
        memcpy(firsts + 20 * nfirst++, rec + 8, 20);
      }
      p += len;
    }
    memmove(buf, buf + p, have - p);
    off += (off_t)p;
    have -= p;
  }
  if (nfirst) qsort(firsts, nfirst, 20, digest_cmp);
  each_kept(collect, &files);
  uint64_t total = 0;
  for (size_t i = 0; i < files.n; i++) {
    total += files.v[i].size;
    files.v[i].first = nfirst && bsearch(files.v[i].digest, firsts, nfirst, 20, digest_cmp) != NULL;
  }
  qsort(files.v, files.n, sizeof *files.v, evict_order);
  uint64_t target = in_total - in_total / 8;
  for (size_t i = 0; i < files.n && total > target; i++) {
    char hex[41];
    hex40(files.v[i].digest, hex);
    if (unlinkat(in_dirfd, hex, 0) == 0) {
      total -= files.v[i].size;
      st_evicted++;
    }
  }
  in_usage = total;
  in_since_scan = 0;
out:
  if (rfd >= 0) close(rfd);
  free(files.v);
  free(firsts);
  free(buf);
  free(claimed);
  close(lockfd); /* releases the lock */
}

/* ---- crashes ---- */

struct unwind_state {
  uint64_t *frames;
  uint64_t exact;
  int n;
};

static _Unwind_Reason_Code unwind_cb(struct _Unwind_Context *ctx, void *arg) {
  struct unwind_state *s = arg;
  if (s->n >= CVD_FRAMES_MAX) return _URC_END_OF_STACK;
  int before = 0;
  uintptr_t ip = _Unwind_GetIPInfo(ctx, &before);
  if (ip == 0) return _URC_END_OF_STACK;
  /* ip_before_insn: the interrupted instruction of a signal frame, not a return address. */
  if (before) s->exact |= 1ull << s->n;
  s->frames[s->n++] = ip;
  return _URC_NO_REASON;
}

static uint8_t crash_buf[CVD_REC_MAX] __attribute__((aligned(8)));

/*
 * Writes the crash record: kind, the current input (saved like inputs), the raw stack. Only
 * the first event of a process is recorded (a SEGV under ASan is also a report, and libFuzzer
 * exits after either). Async-signal-safe.
 */
static void crash_record(int kind, int signo, int status, const char *detail, size_t detail_len) {
  if (!crash_on || crash_logfd < 0) return;
  if (__atomic_exchange_n(&crashed, 1, __ATOMIC_SEQ_CST)) return;
  int saved_errno = errno;
  uint8_t *r = crash_buf;
  memset(r, 0, 96);
  put32(r, CVD_MAGIC_CRASH);
  r[6] = 1;
  r[7] = (uint8_t)kind;
  const uint8_t *data = __atomic_load_n(&cur_input, __ATOMIC_RELAXED);
  size_t size = __atomic_load_n(&cur_input_size, __ATOMIC_RELAXED);
  uint8_t flags = 0;
  if (data) {
    uint8_t digest[20];
    sha1_of(data, size, digest);
    memcpy(r + 8, digest, 20);
    char hex[41];
    hex40(digest, hex);
    int wrote = 0;
    if (size > in_max) flags |= IN_TOO_LARGE;
    else if (in_dirfd >= 0 && save_bytes(hex, data, size, &wrote) == 0) flags |= IN_KEPT;
    else flags |= IN_NOT_SAVED;
    put64(r + 48, size);
  } else {
    flags |= 8; /* no input: the process was not inside the target */
  }
  put32(r + 28, (uint32_t)getpid());
  put64(r + 32, real_ms());
  put64(r + 40, proc_runs);
  r[56] = flags;
  r[57] = (uint8_t)signo;
  put32(r + 60, (uint32_t)status);
  put64(r + 64, mod_bias);
  put64(r + 72, mod_lo);
  put64(r + 80, mod_hi);
  struct unwind_state us = {(uint64_t *)(r + 96), 0, 0};
  _Unwind_Backtrace(unwind_cb, &us);
  put16(r + 58, (uint16_t)us.n);
  put64(r + 88, us.exact);
  size_t p = 96 + 8 * (size_t)us.n;
  if (detail_len > CVD_DETAIL_MAX) detail_len = CVD_DETAIL_MAX;
  put16(r + p, (uint16_t)detail_len);
  put16(r + p + 2, (uint16_t)artifact_len);
  p += 4;
  memcpy(r + p, detail, detail_len);
  p += detail_len;
  memcpy(r + p, artifact_prefix, artifact_len);
  p += artifact_len;
  while (p % 4) r[p++] = 0;
  append_record(crash_logfd, r, p + 4);
  errno = saved_errno;
}

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP};
static struct sigaction old_sa[65];

static const char *signal_name(int sig, size_t *len) {
  const char *s;
  switch (sig) {
    case SIGSEGV: s = "SIGSEGV"; break;
    case SIGBUS: s = "SIGBUS"; break;
    case SIGILL: s = "SIGILL"; break;
    case SIGFPE: s = "SIGFPE"; break;
    case SIGABRT: s = "SIGABRT"; break;
    case SIGTRAP: s = "SIGTRAP"; break;
    default: s = "signal"; break;
  }
  *len = strlen(s);
  return s;
}

static void crash_signal(int sig, siginfo_t *si, void *uc) {
  size_t len;
  const char *name = signal_name(sig, &len);
  crash_record(CK_SIGNAL, sig, 0, name, len);
  /* Then whoever was there before us: libFuzzer's handler, a sanitizer's, or the default. */
  struct sigaction *o = &old_sa[sig];
  if ((o->sa_flags & SA_SIGINFO) && o->sa_sigaction) {
    o->sa_sigaction(sig, si, uc);
    return;
  }
  if (!(o->sa_flags & SA_SIGINFO) && o->sa_handler != SIG_DFL && o->sa_handler != SIG_IGN) {
    o->sa_handler(sig);
    return;
  }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  raise(sig); /* blocked until we return; a fault would also just recur */
}

/*
 * The sanitizers' weak hook for the "SUMMARY: ..." line of every report (ASan, UBSan, LSan's
 * leaks, allocator out-of-memory). Defined here, it replaces their default, which prints the
 * line; so it records and then prints the line the same way.
 */
void __sanitizer_report_error_summary(const char *summary) {
  size_t n = summary ? strlen(summary) : 0;
  if (n && (state == STATE_ON || state == STATE_PENDING)) {
    int kind = CK_SANITIZER;
    if (strstr(summary, "leaked in")) kind = CK_LEAK;
    else if (strstr(summary, "out-of-memory") || strstr(summary, "rss-limit-exceeded")) kind = CK_OOM;
    const char *d = summary;
    size_t dn = n;
    if (strncmp(d, "SUMMARY: ", 9) == 0) d += 9, dn -= 9;
    crash_record(kind, 0, 0, d, dn);
  }
  if (n) {
    ssize_t w = write(2, summary, n);
    w = write(2, "\n", 1);
    (void)w;
  }
}

/*
 * libFuzzer ends timeouts, out-of-memory and its other errors with _Exit (-Wl,--wrap=_Exit).
 * Weak: a link without the wrap flag leaves __real__Exit undefined and nothing calls this.
 */
extern void __real__Exit(int status) __attribute__((weak, noreturn));
void __wrap__Exit(int status) __attribute__((noreturn));
void __wrap__Exit(int status) {
  if (status != 0 && (state == STATE_ON || state == STATE_PENDING)) {
    if (status == timeout_exitcode) crash_record(CK_TIMEOUT, 0, status, "libFuzzer: timeout", 18);
    else if (status == LIBFUZZER_OOM_EXITCODE) crash_record(CK_OOM, 0, status, "libFuzzer: out-of-memory", 24);
    else if (status == error_exitcode) crash_record(CK_EXIT, 0, status, "libFuzzer: error exit", 21);
  }
  if (__real__Exit) __real__Exit(status);
  _exit(status);
}

/* ---- start-up ---- */

struct module_range {
  uintptr_t probe, lo, hi;
};

static int range_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct module_range *m = arg;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  int contains = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t a = info->dlpi_addr + ph->p_vaddr, b = a + ph->p_memsz;
    if (a < lo) lo = a;
    if (b > hi) hi = b;
    if (m->probe >= a && m->probe < b) contains = 1;
  }
  if (!contains) return 0;
  m->lo = lo;
  m->hi = hi;
  return 1;
}

/* libFuzzer flags the crash path needs: exit codes and where it writes artifacts. */
static void read_flags(void) {
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  static char cmd[65536];
  size_t total = 0;
  ssize_t r;
  while (total < sizeof cmd - 1 && (r = read(fd, cmd + total, sizeof cmd - 1 - total)) > 0) total += (size_t)r;
  close(fd);
  cmd[total] = 0;
  const char *prefix = "./";
  int exact = 0;
  for (size_t i = 0; i < total; i += strlen(cmd + i) + 1) {
    const char *a = cmd + i;
    if (strncmp(a, "-timeout_exitcode=", 18) == 0) timeout_exitcode = atoi(a + 18);
    else if (strncmp(a, "-error_exitcode=", 16) == 0) error_exitcode = atoi(a + 16);
    else if (strncmp(a, "-artifact_prefix=", 17) == 0) prefix = a + 17, exact = 0;
    else if (strncmp(a, "-exact_artifact_path=", 21) == 0) prefix = a + 21, exact = 1;
  }
  /* Under AFL++ there is no libFuzzer to write artifacts: afl-fuzz saves the input in its crashes/
   * and hangs/ directories, where the daemon finds it by the input's SHA-1. */
  if (linked_with_afl()) {
    artifact_len = 0;
    return;
  }
  /* Absolute, so the daemon can find the artifact: "P" = prefix, "E" = exact path. */
  char cwd[PATH_MAX];
  size_t n = 0;
  artifact_prefix[n++] = exact ? 'E' : 'P';
  if (prefix[0] != '/' && getcwd(cwd, sizeof cwd)) {
    size_t cl = strlen(cwd);
    if (cl + 2 < sizeof artifact_prefix - n) {
      memcpy(artifact_prefix + n, cwd, cl);
      n += cl;
      artifact_prefix[n++] = '/';
    }
  }
  size_t pl = strlen(prefix);
  if (n + pl < sizeof artifact_prefix) {
    memcpy(artifact_prefix + n, prefix, pl);
    n += pl;
  } else {
    n = 0;
  }
  artifact_len = n;
}

static _Unwind_Reason_Code prime_cb(struct _Unwind_Context *ctx, void *arg) {
  (void)ctx;
  (void)arg;
  return _URC_NO_REASON;
}

static void print_inputs_stats(void) {
  const char *s = getenv("COVD_AGENT_STATS");
  if (!s || strcmp(s, "1") != 0) return;
  char buf[256];
  int n = snprintf(buf, sizeof buf,
                   "covd-agent: inputs saved=%llu records=%llu bytes=%llu too_large=%llu failed=%llu evicted=%llu "
                   "save_us=%llu save_us_max=%llu\n",
                   (unsigned long long)st_saves, (unsigned long long)st_records, (unsigned long long)st_bytes,
                   (unsigned long long)st_too_large, (unsigned long long)st_failed, (unsigned long long)st_evicted,
                   (unsigned long long)(st_ns / 1000), (unsigned long long)(st_ns_max / 1000));
  if (n > 0) {
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
  }
}

/* Opens (creating) a log beside the coverage file: a regular file of ours, appended to only. */
static int open_log(const char *path) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
    close(fd);
    errno = EPERM;
    return -1;
  }
  return fd;
}

/* Called once the coverage file is mapped. Any failure disables this part only, with one notice. */
static void inputs_init(const char *vdir, const char *id, uintptr_t bias) {
  mod_bias = bias;
  crc_init();
  in_max = env_size("COVD_AGENT_INPUT_MAX", in_max);
  in_total = env_size("COVD_AGENT_INPUTS_TOTAL", in_total);
  int want_inputs = !env_off("COVD_AGENT_INPUTS"), want_crashes = !env_off("COVD_AGENT_CRASHES");
  if (!want_inputs && !want_crashes) return;
  struct module_range mr = {.probe = __start___sancov_pcs[0]};
  dl_iterate_phdr(range_cb, &mr);
  mod_lo = mr.lo;
  mod_hi = mr.hi;
  read_flags();
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s.inputs", vdir, id);
  if (ensure_dir(path) != 0 || (in_dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
    notice("covd-agent: cannot use %s: %s; inputs and crashes not recorded", path, strerror(errno));
    return;
  }
  if (want_inputs) {
    snprintf(in_log_path, sizeof in_log_path, "%s/%s.inputs.log", vdir, id);
    memcpy(path, in_log_path, sizeof path);
    size_t words = (n_counters + 63) / 64;
    first_k = malloc(words * sizeof *first_k);
    first_m = malloc(words * sizeof *first_m);
    if ((in_logfd = open_log(path)) < 0 || !first_k || !first_m) {
      notice("covd-agent: cannot write %s: %s; inputs not recorded", path, strerror(errno));
    } else {
      first_cap = words;
      usage_rescan();
      in_on = 1;
    }
  }
  if (want_crashes) {
    snprintf(path, sizeof path, "%s/%s.crashes.log", vdir, id);
    if ((crash_logfd = open_log(path)) < 0) {
      notice("covd-agent: cannot write %s: %s; crashes not recorded", path, strerror(errno));
    } else {
      /* Unwinding the first time may load and lock things; do it now, not in a dying process. */
      _Unwind_Backtrace(prime_cb, NULL);
      for (size_t i = 0; i < sizeof crash_signals / sizeof *crash_signals; i++) {
        int sig = crash_signals[i];
        if (sigaction(sig, NULL, &old_sa[sig]) != 0) continue;
        if (!(old_sa[sig].sa_flags & SA_SIGINFO) && old_sa[sig].sa_handler == SIG_IGN) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = crash_signal;
        sa.sa_flags = SA_SIGINFO | (old_sa[sig].sa_flags & (SA_ONSTACK | SA_NODEFER));
        sa.sa_mask = old_sa[sig].sa_mask;
        sigaction(sig, &sa, NULL);
      }
      crash_on = 1;
    }
  }
  atexit(print_inputs_stats);
}
