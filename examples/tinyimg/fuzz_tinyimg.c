/* libFuzzer entry point for the tinyimg decoder. Build: covd cc -o fuzz_tinyimg fuzz_tinyimg.c decode.c meta.c */
#include <stdint.h>
#include <stdlib.h>

#include "tinyimg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct tinyimg img;
  if (tinyimg_decode(data, size, &img) != TINYIMG_OK) return 0;
  /* Touch the result so the decoder's work cannot be optimised away. */
  unsigned long sum = 0;
  for (size_t i = 0; i < (size_t)img.width * img.height; i++) sum += img.pixels[i].r ^ img.pixels[i].a;
  static volatile unsigned long sink;
  sink = sum + (img.has_meta ? (unsigned long)img.meta.scale : 0);
  tinyimg_free(&img);
  return 0;
}
