/*
 * The floor of a WebSocket fan-out on this machine: the cheapest server that sends one already
 * encoded frame to every tab, one send(2) per tab per update, and nothing else.
 *
 * It speaks just enough WebSocket for bench/fanout.ts's tab process: the HTTP upgrade
 * (Sec-WebSocket-Accept = base64(SHA-1(key + GUID))), the client's masked `sub` frame read and
 * ignored, then two small binary frames (standing in for `hello` and the snapshot) and, per update,
 * the next of the frames read from FRAMES: complete unmasked WebSocket frames, the exact bytes the
 * other servers of the benchmark send for the same updates.
 *
 * Single-threaded, non-blocking sockets with TCP_NODELAY (as uWebSockets.js and `ws` set them),
 * epoll. Commands on stdin, one per line, answers on stdout:
 *
 *   burst N   N updates, each its own turn of the loop: one send per tab, then epoll_wait(0)
 *             -> "done <sends> <stalls>"   (stalls: sends that did not take the whole frame)
 *   cpu       -> "cpu <user µs> <sys µs>"  (getrusage of the process)
 *   null N    N bare syscalls (getppid), the entry/exit cost alone -> "null <ns per call>"
 *   exit
 *
 *   cc -O2 -o fanout-floor fanout-floor.c && ./fanout-floor FRAMES     (prints "port <n>" first)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ SHA-1 (FIPS 180-4) */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const unsigned char *p) {
  uint32_t w[80];
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; i++) {
    uint32_t f, k;
    if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
    else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
    else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
    else f = b ^ c ^ d, k = 0xCA62C1D6;
    uint32_t t = rol(a, 5) + f + e + k + w[i];
    e = d, d = c, c = rol(b, 30), b = a, a = t;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  size_t i = 0;
  for (; i + 64 <= len; i += 64) sha1_block(h, msg + i);
  unsigned char last[128] = {0};
  size_t rest = len - i;
  memcpy(last, msg + i, rest);
  last[rest] = 0x80;
  size_t n = rest + 1 + 8 <= 64 ? 64 : 128;
  uint64_t bits = (uint64_t)len * 8;
  for (int j = 0; j < 8; j++) last[n - 1 - j] = (unsigned char)(bits >> (8 * j));
  sha1_block(h, last);
  if (n == 128) sha1_block(h, last + 64);
  for (int j = 0; j < 20; j++) out[j] = (unsigned char)(h[j / 4] >> (24 - 8 * (j % 4)));
}

static void base64(const unsigned char *in, size_t len, char *out) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
    out[o++] = tab[v >> 18 & 63];
    out[o++] = tab[v >> 12 & 63];
    out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
    out[o++] = i + 2 < len ? tab[v & 63] : '=';
  }
  out[o] = 0;
}

/* ------------------------------------------------------------------ connections */

enum { HTTP, WAIT_SUB, LIVE };

typedef struct {
  int fd, state;
  unsigned char in[4096];
  size_t inLen;
  unsigned char *out; /* bytes the kernel did not take yet, sent on EPOLLOUT */
  size_t outLen, outCap;
} Conn;

static int ep;
static size_t capConns;
static Conn **live; /* the tabs that sent `sub`, in order */
static size_t nLive;
static unsigned char *frames;
static size_t *frameOff, *frameLen, nFrames, nextFrame;
static unsigned long long sends, stalls;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void watch(Conn *c, int op, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void closeConn(Conn *c) {
  if (c->fd < 0) return;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  for (size_t i = 0; i < nLive; i++)
    if (live[i] == c) { memmove(&live[i], &live[i + 1], (nLive - i - 1) * sizeof *live); nLive--; break; }
  c->fd = -1; /* kept (not freed): later events of the same epoll_wait may still name it */
  c->outLen = 0;
}

static void queue(Conn *c, const unsigned char *p, size_t n) {
  if (c->outLen + n > c->outCap) {
    c->outCap = (c->outLen + n) * 2;
    c->out = realloc(c->out, c->outCap);
    if (!c->out) die("realloc");
  }
  memcpy(c->out + c->outLen, p, n);
  c->outLen += n;
}

/* One send: whatever the kernel does not take is kept and sent when the socket is writable. */
static void sendTo(Conn *c, const unsigned char *p, size_t n) {
  if (c->fd < 0) return;
  sends++;
  if (c->outLen) { queue(c, p, n); return; }
  ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w == (ssize_t)n) return;
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return; /* the tab went away; its read side notices */
  if (w < 0) w = 0;
  stalls++;
  queue(c, p + w, n - (size_t)w);
  watch(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
}

static void flush(Conn *c) {
  if (c->fd < 0) return;
  while (c->outLen) {
    ssize_t w = send(c->fd, c->out, c->outLen, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w <= 0) return;
    memmove(c->out, c->out + w, c->outLen - (size_t)w);
    c->outLen -= (size_t)w;
  }
  watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

static void sendFrame(Conn *c, const unsigned char *payload, size_t n) {
  unsigned char f[16 + 64];
  size_t h = 2;
  f[0] = 0x82;
  if (n < 126) f[1] = (unsigned char)n;
  else { f[1] = 126; f[2] = (unsigned char)(n >> 8); f[3] = (unsigned char)n; h = 4; }
  memcpy(f + h, payload, n);
  sendTo(c, f, h + n);
}

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static void onHttp(Conn *c) {
  c->in[c->inLen] = 0;
  char *end = strstr((char *)c->in, "\r\n\r\n");
  if (!end) {
    if (c->inLen >= sizeof c->in - 1) closeConn(c);
    return;
  }
  char *key = NULL;
  for (char *line = strstr((char *)c->in, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "Sec-WebSocket-Key:", 18) == 0) {
      key = line + 2 + 18;
      while (*key == ' ') key++;
      break;
    }
  }
  if (!key) { closeConn(c); return; }
  size_t keyLen = strcspn(key, " \r");
  unsigned char buf[128], digest[20];
  if (keyLen > 64) { closeConn(c); return; }
  memcpy(buf, key, keyLen);
  memcpy(buf + keyLen, GUID, sizeof GUID - 1);
  sha1(buf, keyLen + sizeof GUID - 1, digest);
  char accept[32], resp[256];
  base64(digest, 20, accept);
  int n = snprintf(resp, sizeof resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
  sendTo(c, (unsigned char *)resp, (size_t)n);
  size_t used = (size_t)(end + 4 - (char *)c->in);
  memmove(c->in, c->in + used, c->inLen - used);
  c->inLen -= used;
  c->state = WAIT_SUB;
}

/* The client's first frame (masked `sub`): its length is all we need; the payload is ignored. */
static void onSubFrame(Conn *c) {
  if (c->inLen < 2) return;
  size_t len = c->in[1] & 0x7f, h = 2;
  if (len == 126) {
    if (c->inLen < 4) return;
    len = (size_t)c->in[2] << 8 | c->in[3];
    h = 4;
  } else if (len == 127) { closeConn(c); return; }
  if (c->in[1] & 0x80) h += 4;
  if (c->inLen < h + len) return;
  c->inLen = 0;
  c->state = LIVE;
  if (nLive == capConns) die("too many tabs");
  live[nLive++] = c;
  static const unsigned char hello[] = "hello", snapshot[] = "snapshot";
  sendFrame(c, hello, sizeof hello - 1);
  sendFrame(c, snapshot, sizeof snapshot - 1);
}

static void onReadable(Conn *c) {
  while (c->fd >= 0) {
    unsigned char tmp[4096];
    ssize_t r = recv(c->fd, tmp, sizeof tmp, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) { closeConn(c); return; }
    if (r < 0) return;
    if (c->state == LIVE) continue; /* nothing more is expected from a tab; ignored */
    size_t n = (size_t)r < sizeof c->in - 1 - c->inLen ? (size_t)r : sizeof c->in - 1 - c->inLen;
    memcpy(c->in + c->inLen, tmp, n);
    c->inLen += n;
    if (c->state == HTTP) onHttp(c);
    if (c->state == WAIT_SUB) onSubFrame(c);
  }
}

static int listenFd;

static void onAccept(void) {
  for (;;) {
    int fd = accept4(listenFd, NULL, NULL, SOCK_NONBLOCK);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Conn *c = calloc(1, sizeof *c);
    if (!c) die("calloc");
    c->fd = fd;
    watch(c, EPOLL_CTL_ADD, EPOLLIN);
  }
}

/* One turn of the loop without waiting: socket events only (stdin waits for the main loop). */
static void turn(int timeout) {
  struct epoll_event evs[256];
  int n = epoll_wait(ep, evs, 256, timeout);
  for (int i = 0; i < n; i++) {
    if (evs[i].data.ptr == NULL) continue;
    if (evs[i].data.ptr == &listenFd) { onAccept(); continue; }
    Conn *c = evs[i].data.ptr;
    if (evs[i].events & EPOLLOUT) flush(c);
    if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) onReadable(c);
  }
}

static void update(void) {
  const unsigned char *f = frames + frameOff[nextFrame];
  size_t n = frameLen[nextFrame];
  nextFrame = (nextFrame + 1) % nFrames;
  for (size_t i = 0; i < nLive; i++) sendTo(live[i], f, n);
}

static double nullSyscallNs(long n) {
  double best = 1e18;
  for (int rep = 0; rep < 5; rep++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n;
    if (ns < best) best = ns;
  }
  return best;
}

static void command(char *line) {
  long n;
  if (sscanf(line, "burst %ld", &n) == 1) {
    unsigned long long s0 = sends, t0 = stalls;
    for (long i = 0; i < n; i++) {
      update();
      turn(0);
    }
    printf("done %llu %llu\n", sends - s0, stalls - t0);
  } else if (strncmp(line, "cpu", 3) == 0) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("cpu %lld %lld\n", (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec, (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
  } else if (sscanf(line, "null %ld", &n) == 1) {
    printf("null %.1f\n", nullSyscallNs(n));
  } else if (strncmp(line, "exit", 4) == 0) {
    exit(0);
  } else {
    printf("error unknown command\n");
  }
  fflush(stdout);
}

static void loadFrames(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) die(path);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  frames = malloc((size_t)size + 1);
  if (!frames || fread(frames, 1, (size_t)size, f) != (size_t)size) die("reading frames");
  fclose(f);
  size_t cap = 1024;
  frameOff = malloc(cap * sizeof *frameOff);
  frameLen = malloc(cap * sizeof *frameLen);
  for (size_t off = 0; off + 2 <= (size_t)size;) {
    size_t len = frames[off + 1] & 0x7f, h = 2;
    if (len == 126) len = (size_t)frames[off + 2] << 8 | frames[off + 3], h = 4;
    else if (len == 127) {
      len = 0;
      for (int i = 0; i < 8; i++) len = len << 8 | frames[off + 2 + i];
      h = 10;
    }
    if (nFrames == cap) {
      cap *= 2;
      frameOff = realloc(frameOff, cap * sizeof *frameOff);
      frameLen = realloc(frameLen, cap * sizeof *frameLen);
    }
    frameOff[nFrames] = off;
    frameLen[nFrames++] = h + len;
    off += h + len;
  }
  if (nFrames == 0) { fprintf(stderr, "fanout-floor: no frames in %s\n", path); exit(1); }
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: fanout-floor FRAMES\n"); return 2; }
  loadFrames(argv[1]);
  capConns = 1 << 16;
  live = calloc(capConns, sizeof *live);

  listenFd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (listenFd < 0) die("socket");
  int one = 1;
  setsockopt(listenFd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
  if (bind(listenFd, (struct sockaddr *)&a, sizeof a) < 0 || listen(listenFd, 4096) < 0) die("listen");
  socklen_t al = sizeof a;
  getsockname(listenFd, (struct sockaddr *)&a, &al);

  ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listenFd};
  epoll_ctl(ep, EPOLL_CTL_ADD, listenFd, &ev);
  ev.data.ptr = NULL; /* stdin */
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
  printf("port %d\n", ntohs(a.sin_port));
  fflush(stdout);

  char line[256];
  size_t lineLen = 0;
  for (;;) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) {
        char buf[256];
        ssize_t r = read(0, buf, sizeof buf);
        if (r <= 0) return 0; /* the driver went away */
        for (ssize_t j = 0; j < r; j++) {
          if (buf[j] == '\n') { line[lineLen] = 0; command(line); lineLen = 0; }
          else if (lineLen < sizeof line - 1) line[lineLen++] = buf[j];
        }
      } else if (evs[i].data.ptr == &listenFd) onAccept();
      else {
        Conn *c = evs[i].data.ptr;
        if (evs[i].events & EPOLLOUT) flush(c);
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) onReadable(c);
      }
    }
  }
}
