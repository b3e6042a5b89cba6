/*
 * tinyimg: a small image format used as covd's example fuzz target.
 *
 *   magic "TIMG", version u8 (1 or 2), width u16 LE, height u16 LE, channels u8 (3 or 4),
 *   colorspace u8 (0 sRGB, 1 linear), then a QOI-style stream of pixel ops, then the end
 *   marker 00 00 00 00 00 00 00 01. Version 2 appends chunks: tag[4] len u16 LE data[len]
 *   sum u8 (the low byte of the sum of data), ending with the tag "IEND".
 *   Chunk "tEXt" holds key=value lines (see meta.c); "pLTE" a palette of RGB triples.
 */
#ifndef TINYIMG_H
#define TINYIMG_H
#include <stddef.h>
#include <stdint.h>

enum tinyimg_error {
  TINYIMG_OK = 0,
  TINYIMG_TRUNCATED,
  TINYIMG_BAD_MAGIC,
  TINYIMG_BAD_VERSION,
  TINYIMG_BAD_HEADER,
  TINYIMG_TOO_BIG,
  TINYIMG_BAD_STREAM,
  TINYIMG_BAD_CHUNK,
  TINYIMG_BAD_CHECKSUM,
  TINYIMG_BAD_META,
  TINYIMG_NO_MEMORY,
};

struct tinyimg_rgba {
  uint8_t r, g, b, a;
};

struct tinyimg_meta {
  char author[32];
  int year, month, day;
  int gamma_milli; /* gamma * 1000 */
  long scale;      /* result of the "scale" expression */
  int n_tags;
  char tags[4][16];
};

struct tinyimg {
  unsigned width, height, channels, colorspace, version;
  struct tinyimg_rgba *pixels;
  struct tinyimg_rgba palette[16];
  int palette_len;
  struct tinyimg_meta meta;
  int has_meta;
};

/* Decodes buf into img. On error img holds nothing to free. */
enum tinyimg_error tinyimg_decode(const uint8_t *buf, size_t len, struct tinyimg *img);
void tinyimg_free(struct tinyimg *img);
const char *tinyimg_strerror(enum tinyimg_error e);

/* meta.c: parses the text of a tEXt chunk. */
enum tinyimg_error tinyimg_parse_meta(const char *text, size_t len, struct tinyimg_meta *meta);

#endif
