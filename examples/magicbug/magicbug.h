/* magicbug: a tiny record parser with a deliberate bug behind a 4-byte magic (covd's crash example). */
#ifndef MAGICBUG_H
#define MAGICBUG_H
#include <stddef.h>
#include <stdint.h>

/* Parses one record: "FUZZ", a kind byte, a payload. Returns the kind, or -1. */
int magicbug_parse(const uint8_t *data, size_t size);

#endif
