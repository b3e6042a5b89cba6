/* magicbug: a tiny record parser with a deliberate bug behind a 4-byte magic (covd's crash example). */
#include "magicbug.h"

struct record {
  int kind;
  int *slot; /* where the payload's length goes */
};

static int slots[3];

/* Stores v in the record's slot. */
__attribute__((noinline)) static void store(struct record *r, int v) {
  *r->slot = v; /* the bug: kind 3 has no slot (NULL) */
}

int magicbug_parse(const uint8_t *data, size_t size) {
  if (size < 5) return -1;
  if (data[0] != 'F') return -1;
  if (data[1] != 'U') return -1;
  if (data[2] != 'Z') return -1;
  if (data[3] != 'Z') return -1;
  struct record r = {data[4] & 3, 0};
  if (r.kind < 3) r.slot = &slots[r.kind];
  store(&r, (int)(size - 5));
  return r.kind;
}
