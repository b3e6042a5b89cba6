/* tinyimg decoder: header, QOI-style pixel ops, version-2 chunks. */
#include <stdlib.h>
#include <string.h>

#include "tinyimg.h"

#define OP_INDEX 0x00 /* 00xxxxxx: pixel from the 64-entry index */
#define OP_DIFF 0x40  /* 01drdgdb: small difference to the previous pixel */
#define OP_LUMA 0x80  /* 10dgdgdg drdrdbdb: luma-weighted difference */
#define OP_RUN 0xc0   /* 11rrrrrr: repeat the previous pixel 1..62 times */
#define OP_RGB 0xfe
#define OP_RGBA 0xff
#define MAX_PIXELS (1u << 20)

static const uint8_t end_marker[8] = {0, 0, 0, 0, 0, 0, 0, 1};

struct reader {
  const uint8_t *p, *end;
};

static int need(struct reader *r, size_t n) { return (size_t)(r->end - r->p) >= n; }

static uint16_t u16le(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static unsigned hash_pixel(struct tinyimg_rgba px) { return (px.r * 3u + px.g * 5u + px.b * 7u + px.a * 11u) % 64u; }

static enum tinyimg_error decode_header(struct reader *r, struct tinyimg *img) {
  if (!need(r, 11)) return TINYIMG_TRUNCATED;
  if (memcmp(r->p, "TIMG", 4) != 0) return TINYIMG_BAD_MAGIC;
  img->version = r->p[4];
  if (img->version < 1 || img->version > 2) return TINYIMG_BAD_VERSION;
  img->width = u16le(r->p + 5);
  img->height = u16le(r->p + 7);
  img->channels = r->p[9];
  img->colorspace = r->p[10];
  r->p += 11;
  if (img->width == 0 || img->height == 0) return TINYIMG_BAD_HEADER;
  if (img->channels != 3 && img->channels != 4) return TINYIMG_BAD_HEADER;
  if (img->colorspace > 1) return TINYIMG_BAD_HEADER;
  if ((unsigned long)img->width * img->height > MAX_PIXELS) return TINYIMG_TOO_BIG;
  return TINYIMG_OK;
}

static enum tinyimg_error decode_pixels(struct reader *r, struct tinyimg *img) {
  size_t n = (size_t)img->width * img->height;
  struct tinyimg_rgba index[64];
  memset(index, 0, sizeof index);
  struct tinyimg_rgba px = {0, 0, 0, 255};
  img->pixels = malloc(n * sizeof *img->pixels);
  if (!img->pixels) return TINYIMG_NO_MEMORY;
  int run = 0;
  for (size_t i = 0; i < n; i++) {
    if (run > 0) {
      run--;
    } else {
      if (!need(r, 1)) return TINYIMG_TRUNCATED;
      uint8_t b1 = *r->p++;
      if (b1 == OP_RGB) {
        if (!need(r, 3)) return TINYIMG_TRUNCATED;
        px.r = r->p[0];
        px.g = r->p[1];
        px.b = r->p[2];
        r->p += 3;
      } else if (b1 == OP_RGBA) {
        if (!need(r, 4)) return TINYIMG_TRUNCATED;
        if (img->channels != 4) return TINYIMG_BAD_STREAM; /* alpha in an RGB image */
        px.r = r->p[0];
        px.g = r->p[1];
        px.b = r->p[2];
        px.a = r->p[3];
        r->p += 4;
      } else if ((b1 & 0xc0) == OP_INDEX) {
        px = index[b1];
      } else if ((b1 & 0xc0) == OP_DIFF) {
        px.r += ((b1 >> 4) & 3) - 2;
        px.g += ((b1 >> 2) & 3) - 2;
        px.b += (b1 & 3) - 2;
      } else if ((b1 & 0xc0) == OP_LUMA) {
        if (!need(r, 1)) return TINYIMG_TRUNCATED;
        uint8_t b2 = *r->p++;
        int vg = (b1 & 0x3f) - 32;
        px.r += vg - 8 + ((b2 >> 4) & 0x0f);
        px.g += vg;
        px.b += vg - 8 + (b2 & 0x0f);
      } else {
        run = b1 & 0x3f;
        if (run == 0x3f) return TINYIMG_BAD_STREAM; /* reserved: clashes with OP_RGBA */
      }
      index[hash_pixel(px)] = px;
    }
    img->pixels[i] = px;
  }
  if (run > 0) return TINYIMG_BAD_STREAM; /* a run past the last pixel */
  if (!need(r, sizeof end_marker)) return TINYIMG_TRUNCATED;
  if (memcmp(r->p, end_marker, sizeof end_marker) != 0) return TINYIMG_BAD_STREAM;
  r->p += sizeof end_marker;
  return TINYIMG_OK;
}

static enum tinyimg_error decode_palette(const uint8_t *data, size_t len, struct tinyimg *img) {
  if (len == 0 || len % 3 != 0) return TINYIMG_BAD_CHUNK;
  size_t n = len / 3;
  if (n > 16) return TINYIMG_BAD_CHUNK;
  for (size_t i = 0; i < n; i++) {
    img->palette[i].r = data[3 * i];
    img->palette[i].g = data[3 * i + 1];
    img->palette[i].b = data[3 * i + 2];
    img->palette[i].a = 255;
  }
  img->palette_len = (int)n;
  /* A palette must not repeat a colour: images that do are rejected, as the format says. */
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (memcmp(&img->palette[i], &img->palette[j], sizeof img->palette[i]) == 0) return TINYIMG_BAD_CHUNK;
  return TINYIMG_OK;
}

static enum tinyimg_error decode_chunks(struct reader *r, struct tinyimg *img) {
  int seen_text = 0, seen_palette = 0;
  for (;;) {
    if (!need(r, 4)) return TINYIMG_TRUNCATED;
    if (memcmp(r->p, "IEND", 4) == 0) {
      r->p += 4;
      return TINYIMG_OK;
    }
    if (!need(r, 6)) return TINYIMG_TRUNCATED;
    const uint8_t *tag = r->p;
    size_t len = u16le(r->p + 4);
    r->p += 6;
    if (!need(r, len + 1)) return TINYIMG_TRUNCATED;
    const uint8_t *data = r->p;
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++) sum += data[i];
    if (sum != data[len]) return TINYIMG_BAD_CHECKSUM;
    r->p += len + 1;
    enum tinyimg_error e = TINYIMG_OK;
    if (memcmp(tag, "tEXt", 4) == 0) {
      if (seen_text++) return TINYIMG_BAD_CHUNK;
      e = tinyimg_parse_meta((const char *)data, len, &img->meta);
      img->has_meta = e == TINYIMG_OK;
    } else if (memcmp(tag, "pLTE", 4) == 0) {
      if (seen_palette++) return TINYIMG_BAD_CHUNK;
      e = decode_palette(data, len, img);
    } else if (tag[0] >= 'A' && tag[0] <= 'Z') {
      return TINYIMG_BAD_CHUNK; /* an unknown critical chunk */
    }
    /* unknown ancillary chunks (lower-case first letter) are skipped */
    if (e != TINYIMG_OK) return e;
  }
}

enum tinyimg_error tinyimg_decode(const uint8_t *buf, size_t len, struct tinyimg *img) {
  memset(img, 0, sizeof *img);
  struct reader r = {buf, buf + len};
  enum tinyimg_error e = decode_header(&r, img);
  if (e == TINYIMG_OK) e = decode_pixels(&r, img);
  if (e == TINYIMG_OK && img->version >= 2) e = decode_chunks(&r, img);
  if (e == TINYIMG_OK && r.p != r.end) e = TINYIMG_BAD_STREAM; /* trailing bytes */
  if (e != TINYIMG_OK) tinyimg_free(img);
  return e;
}

void tinyimg_free(struct tinyimg *img) {
  free(img->pixels);
  img->pixels = NULL;
}

const char *tinyimg_strerror(enum tinyimg_error e) {
  switch (e) {
  case TINYIMG_OK: return "ok";
  case TINYIMG_TRUNCATED: return "truncated";
  case TINYIMG_BAD_MAGIC: return "bad magic";
  case TINYIMG_BAD_VERSION: return "unsupported version";
  case TINYIMG_BAD_HEADER: return "bad header";
  case TINYIMG_TOO_BIG: return "image too big";
  case TINYIMG_BAD_STREAM: return "bad pixel stream";
  case TINYIMG_BAD_CHUNK: return "bad chunk";
  case TINYIMG_BAD_CHECKSUM: return "bad chunk checksum";
  case TINYIMG_BAD_META: return "bad metadata";
  case TINYIMG_NO_MEMORY: return "out of memory";
  }
  return "unknown error";
}
