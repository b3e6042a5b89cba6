/*
 * covd agent: makes a libFuzzer target write a live covd coverage file.
 *
 * Linked into a target built with -fsanitize=fuzzer and -Wl,--wrap=LLVMFuzzerTestOneInput
 * (`covd cc` does both). This file itself must be compiled WITHOUT sanitizer coverage, or
 * its own code would show up among the target's PCs and skew every count.
 *
 * After every input it ORs libFuzzer's 8-bit counters into the shared seen bits, counts
 * n_runs, bumps unique_runs when the input reached a PC no process had seen before, and
 * keeps lowest_stack (only meaningful with -fsanitize-coverage=stack-depth).
 *
 * File format (docs/coverage-file.md, the seed's layout), all little-endian u64:
 *   n_runs, unique_runs, pcs_len, lowest_stack, pcs[pcs_len], seen[ceil(pcs_len/64)]
 * at $COVD_DIR/v/<16 hex digits of a hash of the unslid PC list>, shared by every process
 * that fuzzes the same executable (-jobs, -fork) through atomic read-modify-writes.
 *
 * It announces the file on the daemon's control socket at start-up and again, rate-limited,
 * whenever an input finds new PCs (see "The control-socket announcement" below).
 *
 * Environment: COVD_DIR (default ${XDG_RUNTIME_DIR:-/tmp}/covd), COVD_SOCKET (default
 * $COVD_DIR/covd.sock), COVD_AGENT_QUIET=1 silences the one-line notices, COVD_AGENT_NOTIFY_MS
 * (default 25; 0 = announce at start-up only), COVD_AGENT_STATS=1 prints notification counts
 * at exit.
 * Any failure prints one warning and leaves the target running as plain libFuzzer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <link.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(coverage_sanitizer)
#error "covd_agent.c must be compiled without -fsanitize=fuzzer / -fsanitize-coverage"
#endif
#endif

/* Section bounds the linker defines for the target's instrumentation. */
extern uint8_t __start___sancov_cntrs[] __attribute__((weak, visibility("hidden")));
extern uint8_t __stop___sancov_cntrs[] __attribute__((weak, visibility("hidden")));
extern const uintptr_t __start___sancov_pcs[] __attribute__((weak, visibility("hidden")));
extern const uintptr_t __stop___sancov_pcs[] __attribute__((weak, visibility("hidden")));
/* Defined by libFuzzer; updated by code built with -fsanitize-coverage=stack-depth. */
extern __thread uintptr_t __sancov_lowest_stack;

int __real_LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER_WORDS 4
#define STATE_UNINIT 0
#define STATE_ON 1
#define STATE_OFF 2
/* Recording, and a notification is due once notify_ms has passed since the last one. */
#define STATE_PENDING 3

struct covd_header {
  uint64_t n_runs;
  uint64_t unique_runs;
  uint64_t pcs_len;
  uint64_t lowest_stack;
};

static int state = STATE_UNINIT;
static struct covd_header *header; /* start of the shared mapping */
static uint64_t *seen;             /* seen bits in the mapping, one per PC */
static const uint8_t *counters;
static size_t n_counters;
static size_t map_size;

/* ---- hooks of agent/covd_inputs.c (inputs behind new coverage, crashes), included at the end ---- */
static const uint8_t *cur_input; /* libFuzzer's current unit while the target runs, else NULL */
static size_t cur_input_size;
static uint64_t proc_runs; /* inputs this process has run */
static void inputs_init(const char *vdir, const char *id, uintptr_t bias);
static void inputs_new_coverage(const uint8_t *data, size_t size) __attribute__((noinline, cold));
static void merge_new(size_t k, uint64_t nb) __attribute__((noinline, cold));

static void notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void choose_scan(void);
static void notice(const char *fmt, ...) {
  const char *quiet = getenv("COVD_AGENT_QUIET");
  if (quiet && *quiet && strcmp(quiet, "0") != 0) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t w = write(2, buf, (size_t)n);
  (void)w;
}

/* ---- finding the module: load bias and build-id ---- */

struct module_info {
  uintptr_t probe;
  int found;
  uintptr_t bias;
  char build_id[2 * 64 + 1];
};

static int module_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct module_info *m = arg;
  int contains = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (m->probe >= lo && m->probe < lo + ph->p_memsz) contains = 1;
  }
  if (!contains) return 0;
  m->found = 1;
  m->bias = info->dlpi_addr;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE) continue;
    const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
    const uint8_t *end = p + ph->p_memsz;
    while (p + 12 <= end) {
      uint32_t namesz, descsz, type;
      memcpy(&namesz, p, 4);
      memcpy(&descsz, p + 4, 4);
      memcpy(&type, p + 8, 4);
      const uint8_t *name = p + 12;
      const uint8_t *desc = name + ((namesz + 3) & ~3u);
      const uint8_t *next = desc + ((descsz + 3) & ~3u);
      if (next > end || next <= p) break;
      if (type == 3 /* NT_GNU_BUILD_ID */ && namesz == 4 && memcmp(name, "GNU", 4) == 0 && descsz > 0 && descsz <= 64) {
        static const char hex[] = "0123456789abcdef";
        for (uint32_t k = 0; k < descsz; k++) {
          m->build_id[2 * k] = hex[desc[k] >> 4];
          m->build_id[2 * k + 1] = hex[desc[k] & 15];
        }
        m->build_id[2 * descsz] = 0;
        return 1;
      }
      p = next;
    }
  }
  return 1;
}

/* ---- small I/O helpers ---- */

static int write_all(int fd, const void *buf, size_t len, off_t off) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t w = pwrite(fd, p, len, off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    off += w;
    len -= (size_t)w;
  }
  return 0;
}

/* mkdir -p with mode 0700 for directories we create; refuses a directory owned by someone else. */
static int ensure_dir(const char *path) {
  char tmp[PATH_MAX];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(tmp, path, len + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
  struct stat st;
  if (stat(tmp, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  if (st.st_uid != geteuid()) {
    errno = EPERM;
    return -1;
  }
  return 0;
}

/* ---- JSON and msgpack encoding (just what the metadata and the message need) ---- */

struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
};

static void sb_put(struct sbuf *b, const void *s, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + n) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}
static void sb_str(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_byte(struct sbuf *b, uint8_t c) { sb_put(b, &c, 1); }

static void json_string(struct sbuf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  sb_byte(b, '"');
  for (size_t i = 0; i < n; i++) {
    uint8_t c = (uint8_t)s[i];
    if (c == '"' || c == '\\') {
      sb_byte(b, '\\');
      sb_byte(b, c);
    } else if (c < 0x20 || c == 0x7f) {
      char e[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
      sb_str(b, e);
    } else {
      sb_byte(b, c); /* UTF-8 passes through; invalid bytes are the reader's to judge */
    }
  }
  sb_byte(b, '"');
}

static void mp_str(struct sbuf *b, const char *s) {
  size_t n = strlen(s);
  if (n < 32) {
    sb_byte(b, (uint8_t)(0xa0 | n));
  } else if (n < 256) {
    sb_byte(b, 0xd9);
    sb_byte(b, (uint8_t)n);
  } else {
    uint8_t h[3] = {0xda, (uint8_t)(n >> 8), (uint8_t)n};
    sb_put(b, h, 3);
  }
  sb_put(b, s, n);
}

/* ---- announcing: metadata file and control-socket message ---- */

/* Process start in ms since the epoch: /proc/self/stat's starttime (ticks since boot) plus
 * /proc/stat's btime; the current time when either is unreadable. */
static long long process_start_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  long long now = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
  char buf[4096];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return now;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return now;
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name may contain spaces and parentheses */
  if (!p) return now;
  unsigned long long start_ticks = 0;
  /* after ") " come fields 3..: state is field 3, starttime field 22 */
  int field = 2;
  for (char *q = p + 1; *q; q++) {
    if (*q == ' ') {
      field++;
      if (field == 22) {
        start_ticks = strtoull(q + 1, NULL, 10);
        break;
      }
    }
  }
  FILE *f = fopen("/proc/stat", "re");
  if (!f) return now;
  long long btime = 0;
  char line[256];
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "btime %lld", &btime) == 1) break;
  fclose(f);
  long hz = sysconf(_SC_CLK_TCK);
  if (btime <= 0 || hz <= 0 || start_ticks == 0) return now;
  long long ms = btime * 1000 + (long long)(start_ticks * 1000 / (unsigned long long)hz);
  return ms > now ? now : ms;
}

static void meta_afl(struct sbuf *b); /* the AFL++ section, at the end of this file */

static void write_meta(const char *vdir, const char *id, const char *exe, const char *build_id) {
  struct sbuf b = {0};
  char num[64];
  sb_str(&b, "{\"exe\":");
  json_string(&b, exe, strlen(exe));
  sb_str(&b, ",\"buildId\":");
  if (build_id[0]) json_string(&b, build_id, strlen(build_id));
  else sb_str(&b, "null");
  snprintf(num, sizeof num, ",\"pid\":%d,\"startTime\":%lld,\"argv\":[", (int)getpid(), process_start_ms());
  sb_str(&b, num);
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    static char cmd[65536];
    size_t total = 0;
    ssize_t r;
    while (total < sizeof cmd && (r = read(fd, cmd + total, sizeof cmd - total)) > 0) total += (size_t)r;
    close(fd);
    size_t start = 0;
    int first = 1;
    for (size_t i = 0; i < total; i++) {
      if (cmd[i] != 0) continue;
      if (!first) sb_byte(&b, ',');
      json_string(&b, cmd + start, i - start);
      first = 0;
      start = i + 1;
    }
  }
  sb_str(&b, "]");
  /* The working directory, against which relative paths in argv (libFuzzer's corpus directories) resolve. */
  char wd[PATH_MAX];
  if (getcwd(wd, sizeof wd)) {
    sb_str(&b, ",\"cwd\":");
    json_string(&b, wd, strlen(wd));
  }
  meta_afl(&b);
  sb_str(&b, "}\n");
  if (b.oom) {
    free(b.p);
    return;
  }
  char tmp[PATH_MAX], final[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s/.%s.meta.%d.tmp", vdir, id, (int)getpid());
  snprintf(final, sizeof final, "%s/%s.meta.json", vdir, id);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    int ok = write_all(fd, b.p, b.len, 0) == 0;
    close(fd);
    if (!ok || rename(tmp, final) != 0) {
      notice("covd-agent: cannot write %s: %s", final, strerror(errno));
      unlink(tmp);
    }
  } else {
    notice("covd-agent: cannot write %s: %s", final, strerror(errno));
  }
  free(b.p);
}

/*
 * The control-socket announcement. The `coverage` frame is built once at start-up and sent on
 * a connection kept open for the life of the process: once at start, then again (the same
 * frame) whenever an input reaches PCs nobody had seen, at most once per notify_ms, so the
 * daemon's coverage thread wakes at once instead of at its next 500 ms poll. A repeat for a
 * known id is a cheap wake-up on the daemon's side.
 *
 * It never blocks the fuzzer: the socket is non-blocking and a frame that does not fit is
 * dropped (the daemon polls anyway). Replies are read and discarded before each send so they
 * never pile up. When the daemon is gone (EOF, EPIPE) the connection is dropped and re-made
 * lazily on a later notification; failed connects back off (100 ms doubling to 5 s), so a
 * missing daemon costs one failed connect() every few seconds at most.
 */
#define NOTIFY_MS_DEFAULT 25
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static int sock_fd = -1;
static uint8_t *frame;        /* u32 LE length + msgpack map, built once */
static size_t frame_len;
static uint64_t notify_ms = NOTIFY_MS_DEFAULT; /* 0: announce at start-up only */
static uint64_t last_send_ms; /* monotonic ms of the last send attempt */
static uint64_t next_connect_ms;
static uint64_t backoff_ms = BACKOFF_MIN_MS;
/* Counters for tests and benchmarks, printed at exit with COVD_AGENT_STATS=1. */
static uint64_t n_sent, n_dropped, n_connects;

static uint64_t mono_ms(void) {
  struct timespec ts;
  /* The coarse clock is a vDSO read of a kernel variable: no syscall, a few ns. */
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sock_close(void) {
  if (sock_fd >= 0) close(sock_fd);
  sock_fd = -1;
}

static int sock_connect(uint64_t now) {
  if (now < next_connect_ms) return -1;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path, sock_path, sizeof sock_path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
    sock_fd = fd;
    backoff_ms = BACKOFF_MIN_MS;
    next_connect_ms = 0;
    n_connects++;
    return 0;
  }
  if (fd >= 0) close(fd); /* no daemon: not an error, try again later */
  next_connect_ms = now + backoff_ms;
  backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
  return -1;
}

/* Reads and discards the daemon's replies; returns -1 when the daemon hung up. */
static int sock_drain(void) {
  char buf[512];
  for (;;) {
    ssize_t r = recv(sock_fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) continue;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return -1; /* EOF or a dead connection */
  }
}

/* One attempt to send the frame; never blocks. Returns 1 when the frame went out whole. */
static int send_frame(uint64_t now) {
  if (!frame) return 0;
  last_send_ms = now;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (sock_fd < 0 && sock_connect(now) != 0) break;
    if (sock_drain() != 0) {
      /* The daemon restarted or went away: one immediate reconnect, then back off. */
      sock_close();
      continue;
    }
    ssize_t w = send(sock_fd, frame, frame_len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w == (ssize_t)frame_len) {
      n_sent++;
      return 1;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break; /* daemon busy: drop this one */
    /* A partial frame would desynchronise the stream, and any other error means the
     * connection is unusable: start a fresh one. */
    sock_close();
    if (w >= 0) break;
  }
  n_dropped++;
  return 0;
}

static void print_stats(void) {
  const char *s = getenv("COVD_AGENT_STATS");
  if (!s || strcmp(s, "1") != 0) return;
  char buf[160];
  int n = snprintf(buf, sizeof buf, "covd-agent: notifications sent=%llu dropped=%llu connects=%llu\n",
                   (unsigned long long)n_sent, (unsigned long long)n_dropped, (unsigned long long)n_connects);
  if (n > 0) {
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
  }
}

/* Builds {type:'coverage', id, exe, file, pid} framed as u32 LE length + msgpack, connects,
 * and sends it once. */
static void announce(const char *dir, const char *id, const char *exe, const char *file) {
  const char *sock = getenv("COVD_SOCKET");
  char def[PATH_MAX];
  if (!sock || !*sock) {
    snprintf(def, sizeof def, "%s/covd.sock", dir);
    sock = def;
  }
  if (strlen(sock) >= sizeof sock_path) return;
  strcpy(sock_path, sock);
  const char *ms = getenv("COVD_AGENT_NOTIFY_MS");
  if (ms && *ms) notify_ms = strtoull(ms, NULL, 10);
  struct sbuf b = {0};
  uint8_t len[4] = {0};
  sb_put(&b, len, 4);
  sb_byte(&b, 0x85); /* fixmap, 5 entries */
  mp_str(&b, "type");
  mp_str(&b, "coverage");
  mp_str(&b, "id");
  mp_str(&b, id);
  mp_str(&b, "exe");
  mp_str(&b, exe);
  mp_str(&b, "file");
  mp_str(&b, file);
  mp_str(&b, "pid");
  uint32_t pid = (uint32_t)getpid();
  uint8_t pidb[5] = {0xce, (uint8_t)(pid >> 24), (uint8_t)(pid >> 16), (uint8_t)(pid >> 8), (uint8_t)pid};
  sb_put(&b, pidb, 5);
  if (b.oom) {
    free(b.p);
    return;
  }
  uint32_t n = (uint32_t)(b.len - 4);
  b.p[0] = (char)n;
  b.p[1] = (char)(n >> 8);
  b.p[2] = (char)(n >> 16);
  b.p[3] = (char)(n >> 24);
  frame = (uint8_t *)b.p;
  frame_len = b.len;
  atexit(print_stats);
  uint64_t now = mono_ms();
  if (sock_connect(now) == 0 && !send_frame(now)) notice("covd-agent: could not notify the daemon at %s", sock);
  if (notify_ms == 0) sock_close();
}

/* ---- creating or opening the shared file ---- */

static uint64_t hash_pcs(const uint64_t *pcs, size_t n) {
  /* FNV-1a over the little-endian bytes, then a final avalanche (splitmix64). */
  uint64_t h = 0xcbf29ce484222325ull;
  const uint8_t *p = (const uint8_t *)pcs;
  for (size_t i = 0; i < n * 8; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

/* True when fd holds exactly our header (pcs_len) and PC list. */
static int file_matches(int fd, const uint64_t *pcs, size_t n, size_t want) {
  struct stat st;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size != want) return 0;
  uint64_t len;
  if (pread(fd, &len, 8, 16) != 8 || len != n) return 0;
  size_t bytes = n * 8;
  uint8_t *buf = malloc(bytes);
  if (!buf) return 0;
  size_t got = 0;
  while (got < bytes) {
    ssize_t r = pread(fd, buf + got, bytes - got, (off_t)(HEADER_WORDS * 8 + got));
    if (r <= 0) break;
    got += (size_t)r;
  }
  int ok = got == bytes && memcmp(buf, pcs, bytes) == 0;
  free(buf);
  return ok;
}

/* Writes a complete new file beside `path` and links it into place, so readers never see a
 * half-written file. replace=1 renames over an existing (mismatching) file instead. */
static int create_file(const char *vdir, const char *id, const char *path, const uint64_t *pcs, size_t n, size_t size,
                       int replace) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s/.%s.%d.tmp", vdir, id, (int)getpid());
  int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  struct covd_header h = {0, 0, n, UINT64_MAX};
  /* Allocate every block now: a store into a hole of the mapping on a full file system would
   * kill the target with SIGBUS later. */
  int ok = ftruncate(fd, (off_t)size) == 0 && posix_fallocate(fd, 0, (off_t)size) == 0 &&
           write_all(fd, &h, sizeof h, 0) == 0 && write_all(fd, pcs, n * 8, sizeof h) == 0;
  int saved = errno;
  close(fd);
  if (!ok) {
    unlink(tmp);
    errno = saved;
    return -1;
  }
  int r = replace ? rename(tmp, path) : link(tmp, path);
  saved = errno;
  unlink(tmp);
  if (r != 0 && !(saved == EEXIST && !replace)) {
    errno = saved;
    return -1;
  }
  return 0; /* EEXIST: another process won the race; its file is as good as ours */
}

static void init(void) {
  state = STATE_OFF;
  size_t nc = (size_t)(__stop___sancov_cntrs - __start___sancov_cntrs);
  size_t np = (size_t)(__stop___sancov_pcs - __start___sancov_pcs) / 2;
  if (!__start___sancov_cntrs || !__start___sancov_pcs || nc == 0) {
    notice("covd-agent: no inline 8-bit counters / pc-table in this executable "
           "(build with -fsanitize=fuzzer); coverage not recorded");
    return;
  }
  if (nc != np) {
    notice("covd-agent: %zu counters but %zu PCs; coverage not recorded", nc, np);
    return;
  }

  struct module_info mod = {.probe = __start___sancov_pcs[0]};
  dl_iterate_phdr(module_cb, &mod);
  if (!mod.found) mod.bias = 0;

  uint64_t *pcs = malloc(np * 8);
  if (!pcs) return;
  for (size_t i = 0; i < np; i++) pcs[i] = (uint64_t)(__start___sancov_pcs[2 * i] - mod.bias);
  char id[17];
  snprintf(id, sizeof id, "%016llx", (unsigned long long)hash_pcs(pcs, np));

  const char *dir = getenv("COVD_DIR");
  char dirbuf[PATH_MAX];
  if (!dir || !*dir) {
    const char *rt = getenv("XDG_RUNTIME_DIR");
    snprintf(dirbuf, sizeof dirbuf, "%s/covd", rt && *rt ? rt : "/tmp");
    dir = dirbuf;
  }
  char vdir[PATH_MAX], path[PATH_MAX];
  snprintf(vdir, sizeof vdir, "%s/v", dir);
  snprintf(path, sizeof path, "%s/%s", vdir, id);
  if (ensure_dir(dir) != 0 || ensure_dir(vdir) != 0) {
    notice("covd-agent: cannot use %s: %s; fuzzing without covd coverage", vdir, strerror(errno));
    free(pcs);
    return;
  }

  size_t words = (np + 63) / 64;
  size_t size = (HEADER_WORDS + np + words) * 8;
  int fd = -1;
  for (int attempt = 0; attempt < 3 && fd < 0; attempt++) {
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0 && !file_matches(fd, pcs, np, size)) {
      /* A stale or foreign file under our name: replace it (whoever maps it keeps the old inode). */
      close(fd);
      fd = -1;
      if (create_file(vdir, id, path, pcs, np, size, 1) != 0) break;
      continue;
    }
    if (fd < 0 && errno == ENOENT && create_file(vdir, id, path, pcs, np, size, 0) != 0) break;
  }
  if (fd < 0) {
    notice("covd-agent: cannot create %s: %s; fuzzing without covd coverage", path, strerror(errno));
    free(pcs);
    return;
  }
  void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    notice("covd-agent: cannot map %s: %s; fuzzing without covd coverage", path, strerror(errno));
    free(pcs);
    return;
  }
  free(pcs);
  header = map;
  seen = (uint64_t *)map + HEADER_WORDS + np;
  counters = __start___sancov_cntrs;
  n_counters = nc;
  map_size = size;
  choose_scan();
  state = STATE_ON;

  char exe[PATH_MAX];
  ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (el < 0) el = 0;
  exe[el] = 0;
  write_meta(vdir, id, exe, mod.build_id);
  announce(dir, id, exe, path);
  notice("covd-agent: %zu PCs, coverage file %s", np, path);
  inputs_init(vdir, id, mod.bias);
}

/* ---- the hot path ---- */

/* One bit per byte of w: bit j set when byte j is non-zero. Branch-free. */
static inline uint64_t nonzero_bytes(uint64_t w) {
  w |= w >> 4;
  w |= w >> 2;
  w |= w >> 1;
  w &= 0x0101010101010101ull;
  return (w * 0x0102040810204080ull) >> 56;
}

/* Merges the 64-bit mask of non-zero counters of block k into the seen bits. */
static inline uint64_t merge(size_t k, uint64_t m) {
  uint64_t nb = m & ~__atomic_load_n(&seen[k], __ATOMIC_RELAXED);
  if (__builtin_expect(nb != 0, 0)) merge_new(k, nb); /* the atomic OR, noting the PCs this process was first to */
  return nb;
}

/* The last, partial block (fewer than 64 counters). */
static inline uint64_t record_tail(size_t full) {
  const uint8_t *c = counters + full * 64;
  uint64_t m = 0;
  for (size_t i = 0; full * 64 + i < n_counters; i++) m |= (uint64_t)(c[i] != 0) << i;
  return m ? merge(full, m) : 0;
}

/*
 * ORs this input's counters into the seen bits; returns non-zero when it reached a PC never
 * seen. Counters are scanned 64 at a time, one block per seen word: an all-zero block (most of
 * them) costs one test; a non-zero block becomes its 64-bit mask branch-free, and only new bits
 * cost an atomic.
 */
static uint64_t record_portable(void) {
  const uint8_t *c = counters;
  size_t full = n_counters / 64;
  uint64_t fresh = 0;
  for (size_t k = 0; k < full; k++, c += 64) {
    uint64_t w[8];
    memcpy(w, c, 64);
    if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) == 0) continue;
    uint64_t m = 0;
    for (int j = 0; j < 8; j++) m |= nonzero_bytes(w[j]) << (8 * j);
    fresh |= merge(k, m);
  }
  return fresh | record_tail(full);
}

#if defined(__x86_64__)
#include <immintrin.h>

/* SSE2 (every x86-64): four 16-byte loads per block, masks from pcmpeqb + pmovmskb. */
static uint64_t record_sse2(void) {
  const uint8_t *c = counters;
  size_t full = n_counters / 64;
  uint64_t fresh = 0;
  const __m128i zero = _mm_setzero_si128();
  for (size_t k = 0; k < full; k++, c += 64) {
    __m128i a = _mm_loadu_si128((const __m128i *)c);
    __m128i b = _mm_loadu_si128((const __m128i *)(c + 16));
    __m128i d = _mm_loadu_si128((const __m128i *)(c + 32));
    __m128i e = _mm_loadu_si128((const __m128i *)(c + 48));
    __m128i o = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(d, e));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(o, zero)) == 0xffff) continue;
    uint64_t z = (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a, zero)) |
                 (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(b, zero)) << 16 |
                 (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(d, zero)) << 32 |
                 (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(e, zero)) << 48;
    fresh |= merge(k, ~z);
  }
  return fresh | record_tail(full);
}

/* AVX2: two 32-byte loads per block, vptest to skip, vpmovmskb for the mask. */
__attribute__((target("avx2"))) static uint64_t record_avx2(void) {
  const uint8_t *c = counters;
  size_t full = n_counters / 64;
  uint64_t fresh = 0;
  const __m256i zero = _mm256_setzero_si256();
  for (size_t k = 0; k < full; k++, c += 64) {
    __m256i a = _mm256_loadu_si256((const __m256i *)c);
    __m256i b = _mm256_loadu_si256((const __m256i *)(c + 32));
    __m256i o = _mm256_or_si256(a, b);
    if (_mm256_testz_si256(o, o)) continue;
    uint64_t z = (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, zero)) |
                 (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, zero)) << 32;
    fresh |= merge(k, ~z);
  }
  return fresh | record_tail(full);
}
#endif

static uint64_t (*record)(void) = record_portable;

/* COVD_AGENT_SCAN=portable|sse2|avx2 overrides the choice (for benchmarks and tests). */
static void choose_scan(void) {
  const char *want = getenv("COVD_AGENT_SCAN");
  if (want && strcmp(want, "portable") == 0) return;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && !(want && strcmp(want, "sse2") == 0)) record = record_avx2;
  else record = record_sse2;
#endif
}

/*
 * An input reached PCs nobody had seen: tell the daemon now, or, within notify_ms of the last
 * notification, mark one as pending (later ones coalesce into it). Out of line: the common
 * path never comes here.
 */
__attribute__((noinline, cold)) static void on_new_pcs(void) {
  if (notify_ms == 0 || !frame) return;
  uint64_t now = mono_ms();
  if (now - last_send_ms >= notify_ms) {
    send_frame(now);
    state = STATE_ON;
  } else {
    state = STATE_PENDING;
  }
}

/* While a notification is pending, each input checks whether its time has come. */
__attribute__((noinline, cold)) static void flush_pending(void) {
  uint64_t now = mono_ms();
  if (now - last_send_ms < notify_ms) return;
  state = STATE_ON;
  send_frame(now);
}

static inline __attribute__((always_inline)) void after_input(uintptr_t stack_before, const uint8_t *data, size_t size) {
  uint64_t fresh = record();
  __atomic_fetch_add(&header->n_runs, 1, __ATOMIC_RELAXED);
  if (fresh) {
    __atomic_fetch_add(&header->unique_runs, 1, __ATOMIC_RELAXED);
    inputs_new_coverage(data, size);
    on_new_pcs();
  }
  uintptr_t low = __sancov_lowest_stack;
  if (low != 0 && low < stack_before) {
    uint64_t cur = __atomic_load_n(&header->lowest_stack, __ATOMIC_RELAXED);
    while (low < cur && !__atomic_compare_exchange_n(&header->lowest_stack, &cur, low, 1, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED)) {
    }
  }
}

int __wrap_LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (__builtin_expect(state == STATE_UNINIT, 0)) init();
  /* libFuzzer parks __sancov_lowest_stack at its own frame; only code built with
   * -fsanitize-coverage=stack-depth moves it lower, so an unchanged value means "not tracked". */
  uintptr_t stack_before = __sancov_lowest_stack;
  proc_runs++;
  __atomic_store_n(&cur_input_size, size, __ATOMIC_RELAXED);
  __atomic_store_n(&cur_input, data, __ATOMIC_RELAXED);
  int r = __real_LLVMFuzzerTestOneInput(data, size);
  __atomic_store_n(&cur_input, NULL, __ATOMIC_RELAXED);
  /* The pending state shares the state test the hot path always made: no extra work per
   * input unless a notification is waiting. */
  if (__builtin_expect(state == STATE_ON, 1)) {
    after_input(stack_before, data, size);
  } else if (state == STATE_PENDING) {
    after_input(stack_before, data, size);
    if (state == STATE_PENDING) flush_pending();
  }
  return r;
}

/*
 * ---- AFL++ (`covd cc --engine=afl`) ----
 *
 * The target is then linked with AFL++'s afl-compiler-rt.o (which feeds afl-fuzz's edge map from
 * the trace-pc-guard callbacks) and libAFLDriver.a (main(), the fork server hand-off and the
 * persistent loop that calls LLVMFuzzerTestOneInput, hence our wrapper, once per input), plus
 * -Wl,--wrap=__afl_manual_init. The agent touches nothing AFL++ uses: not the edge map
 * (__afl_area_ptr), not the guards, not the shared test-case buffer. It reads only clang's 8-bit
 * counters and PC table, which AFL++ ignores.
 *
 * The driver calls __afl_manual_init() (which starts the fork server) right before the first
 * input. The wrapper below opens the coverage file there, in the fork server itself: every child
 * it forks inherits the MAP_SHARED mapping and the "on" state, so no child repeats the set-up
 * (hashing the PCs, checking the file, writing metadata), the metadata names the long-lived fork
 * server's pid, and the -M/-S instances of one executable share one file like libFuzzer's -jobs.
 * The fork server's own control-socket connection is closed after the start-up announcement: a
 * child opens its own when it first finds new PCs, so children never write into one stream.
 *
 * Under libFuzzer the counters are cleared before every input by libFuzzer itself, which reads
 * them after our wrapper returns. The AFL++ driver clears nothing, and a counter left non-zero
 * would make every later input's scan build the mask of every block ever reached (on sqlite,
 * about 12,000 instructions per input instead of a few hundred). So once set up in the fork
 * server the agent switches to scans that also zero each non-zero block after reading it
 * (record_clear_*: AFL++ never reads these counters; its edge map is separate). Each input's
 * scan then sees exactly that input's coverage, as under libFuzzer. Each child also runs the
 * driver's 4-byte warm-up input once, which counts as a run. Where the agent sets up lazily
 * instead (AFL_DRIVER_DONT_DEFER=1, or running several files given as arguments), the counters
 * are not cleared: the seen bits and unique_runs stay exact (a bit is set by the first input that
 * runs its PC), only the scans cost more.
 *
 * The metadata gains "engine":"afl" and, when afl-fuzz runs the target, "aflOutDir": its
 * __AFL_OUT_DIR (the instance's directory, <-o>/<-M or -S name>), made absolute, from which the
 * daemon reads fuzzer_stats and plot_data (docs/coverage-file.md).
 */
extern uint8_t *__afl_area_ptr __attribute__((weak));
extern void __real___afl_manual_init(void) __attribute__((weak));
void __wrap___afl_manual_init(void);

static int linked_with_afl(void) { return &__afl_area_ptr != NULL; }

static void meta_afl(struct sbuf *b) {
  if (!linked_with_afl()) return;
  sb_str(b, ",\"engine\":\"afl\"");
  const char *out = getenv("__AFL_OUT_DIR");
  if (!out || !*out) return;
  char real[PATH_MAX], joined[PATH_MAX], cwd[PATH_MAX];
  const char *p = realpath(out, real);
  if (!p && out[0] != '/' && getcwd(cwd, sizeof cwd) && (size_t)snprintf(joined, sizeof joined, "%s/%s", cwd, out) < sizeof joined)
    p = joined;
  if (!p && out[0] == '/') p = out;
  if (!p) return;
  sb_str(b, ",\"aflOutDir\":");
  json_string(b, p, strlen(p));
}

/* The last, partial block, read and zeroed. */
static inline uint64_t record_tail_clear(size_t full) {
  uint8_t *c = (uint8_t *)counters + full * 64;
  uint64_t m = 0;
  for (size_t i = 0; full * 64 + i < n_counters; i++) {
    m |= (uint64_t)(c[i] != 0) << i;
    c[i] = 0;
  }
  return m ? merge(full, m) : 0;
}

/* record_portable, zeroing each non-zero block once its mask is built. */
static uint64_t record_clear_portable(void) {
  uint8_t *c = (uint8_t *)counters;
  size_t full = n_counters / 64;
  uint64_t fresh = 0;
  for (size_t k = 0; k < full; k++, c += 64) {
    uint64_t w[8];
    memcpy(w, c, 64);
    if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) == 0) continue;
    uint64_t m = 0;
    for (int j = 0; j < 8; j++) m |= nonzero_bytes(w[j]) << (8 * j);
    memset(c, 0, 64);
    fresh |= merge(k, m);
  }
  return fresh | record_tail_clear(full);
}

#if defined(__x86_64__)
/* record_sse2, zeroing each non-zero block. */
static uint64_t record_clear_sse2(void) {
  uint8_t *c = (uint8_t *)counters;
  size_t full = n_counters / 64;
  uint64_t fresh = 0;
  const __m128i zero = _mm_setzero_si128();
  for (size_t k = 0; k < full; k++, c += 64) {
    __m128i a = _mm_loadu_si128((const __m128i *)c);
    __m128i b = _mm_loadu_si128((const __m128i *)(c + 16));
    __m128i d = _mm_loadu_si128((const __m128i *)(c + 32));
    __m128i e = _mm_loadu_si128((const __m128i *)(c + 48));
    __m128i o = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(d, e));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(o, zero)) == 0xffff) continue;
    uint64_t z = (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a, zero)) |
                 (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(b, zero)) << 16 |
                 (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(d, zero)) << 32 |
                 (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(e, zero)) << 48;
    _mm_storeu_si128((__m128i *)c, zero);
    _mm_storeu_si128((__m128i *)(c + 16), zero);
    _mm_storeu_si128((__m128i *)(c + 32), zero);
    _mm_storeu_si128((__m128i *)(c + 48), zero);
    fresh |= merge(k, ~z);
  }
  return fresh | record_tail_clear(full);
}

/* record_avx2, zeroing each non-zero block. */
__attribute__((target("avx2"))) static uint64_t record_clear_avx2(void) {
  uint8_t *c = (uint8_t *)counters;
  size_t full = n_counters / 64;
  uint64_t fresh = 0;
  const __m256i zero = _mm256_setzero_si256();
  for (size_t k = 0; k < full; k++, c += 64) {
    __m256i a = _mm256_loadu_si256((const __m256i *)c);
    __m256i b = _mm256_loadu_si256((const __m256i *)(c + 32));
    __m256i o = _mm256_or_si256(a, b);
    if (_mm256_testz_si256(o, o)) continue;
    uint64_t z = (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, zero)) |
                 (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, zero)) << 32;
    _mm256_storeu_si256((__m256i *)c, zero);
    _mm256_storeu_si256((__m256i *)(c + 32), zero);
    fresh |= merge(k, ~z);
  }
  return fresh | record_tail_clear(full);
}
#endif

/* The clearing twin of the scan choose_scan() picked. */
static void choose_clearing_scan(void) {
#if defined(__x86_64__)
  if (record == record_avx2) record = record_clear_avx2;
  else if (record == record_sse2) record = record_clear_sse2;
  else
#endif
    record = record_clear_portable;
}

void __wrap___afl_manual_init(void) {
  if (state == STATE_UNINIT) {
    init();
    sock_close();
    if (state != STATE_OFF && linked_with_afl()) choose_clearing_scan();
  }
  if (__real___afl_manual_init) __real___afl_manual_init();
}

/*
 * What initialization reached: the target's constructors and LLVMFuzzerInitialize run before
 * libFuzzer first clears the counters, so without this their code would always show uncovered.
 * libFuzzer calls LLVMFuzzerInitialize through a weak reference; --wrap points it here (then
 * it is always called), and this calls the target's own when it has one. Recorded as seen
 * bits, not as a run.
 */
extern int __real_LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
int __wrap_LLVMFuzzerInitialize(int *argc, char ***argv) {
  int r = __real_LLVMFuzzerInitialize ? __real_LLVMFuzzerInitialize(argc, argv) : 0;
  /* Under AFL++ the counters are not cleared before the first input: its first run records them. */
  if (linked_with_afl()) return r;
  if (state == STATE_UNINIT) init();
  if ((state == STATE_ON || state == STATE_PENDING) && record()) on_new_pcs();
  return r;
}

/* ---- inputs behind new coverage, and crashes: agent/covd_inputs.c (one translation unit with this file) ---- */
#include "covd_inputs.c"
