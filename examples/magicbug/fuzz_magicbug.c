/* libFuzzer harness for magicbug: crashes (SIGSEGV in store()) on "FUZZ" followed by a byte with both low bits set. */
#include "magicbug.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  magicbug_parse(data, size);
  return 0;
}
