/* gated: deep functions behind a hashed 4-byte magic no short fuzzing run finds (covd's blockers example, test/daemon/blockers.test.ts). */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

static volatile int sink;

__attribute__((noinline)) static int deep_leaf(const uint8_t *d, size_t n) {
  int acc = 0;
  for (size_t i = 0; i < n; i++) {
    if (d[i] == 'a') acc += 1;
    else if (d[i] == 'b') acc -= 2;
    else if (d[i] == 'c') acc ^= 5;
    else acc += d[i] & 7;
  }
  return acc;
}

__attribute__((noinline)) static int deep_walk(const uint8_t *d, size_t n, int depth);

__attribute__((noinline)) static int deep_parse(const uint8_t *d, size_t n, int depth) {
  if (n < 2) return 0;
  if (d[0] == '[') return deep_walk(d + 1, n - 1, depth + 1);
  if (d[0] == '{') return deep_leaf(d + 1, n - 1) * 3;
  return deep_leaf(d, n);
}

__attribute__((noinline)) static int deep_walk(const uint8_t *d, size_t n, int depth) {
  if (depth > 8) return -1;
  int r = deep_parse(d, n, depth);
  if (r > 10) sink = r;
  else if (r < -10) sink = -r;
  return r;
}

/* The gate: a hash of the first four bytes must match, which no short run finds. */
__attribute__((noinline)) static int gated(const uint8_t *d, size_t n) {
  uint32_t h = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
  h *= 2654435761u;
  h ^= h >> 15;
  h *= 2246822519u;
  h ^= h >> 13;
  if (h != 0x9e3779b9u) return 0;
  return deep_walk(d + 4, n - 4, 0);
}

__attribute__((noinline)) static int shallow(const uint8_t *d, size_t n) {
  int v = 0;
  for (size_t i = 0; i < n && i < 8; i++) v += d[i] == 'x' ? 2 : 1;
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  sink = shallow(data, size);
  if (size >= 8) sink = gated(data, size);
  return 0;
}
