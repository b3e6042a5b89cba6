/*
 * A stand-in for libAFLDriver.a that runs every file of a directory through
 * LLVMFuzzerTestOneInput, REPS times, in one process: the agent's per-input cost under AFL++
 * without afl-fuzz, its fork server or the machine's load in the way. Calls __afl_manual_init()
 * first, as the driver does, so an agent build sets up there and uses its AFL++ scans.
 * Used with valgrind --tool=callgrind (instructions are exact where CPU times are noisy);
 * bench/NOTES-afl.md has the commands.
 *
 *   ./loop DIR REPS
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void __afl_manual_init(void);

#define MAX_INPUTS 65536
#define MAX_SIZE (1 << 20)

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s DIR REPS\n", argv[0]);
    return 2;
  }
  int reps = atoi(argv[2]);
  DIR *dir = opendir(argv[1]);
  if (!dir) {
    perror(argv[1]);
    return 1;
  }
  static uint8_t *bufs[MAX_INPUTS];
  static size_t lens[MAX_INPUTS];
  int n = 0;
  struct dirent *e;
  char path[4096];
  while ((e = readdir(dir)) && n < MAX_INPUTS) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f) continue;
    bufs[n] = malloc(MAX_SIZE);
    lens[n] = fread(bufs[n], 1, MAX_SIZE, f);
    fclose(f);
    n++;
  }
  closedir(dir);
  __afl_manual_init();
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  clock_t c0 = clock();
  for (int r = 0; r < reps; r++)
    for (int i = 0; i < n; i++) LLVMFuzzerTestOneInput(bufs[i], lens[i]);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
  double wall = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  printf("%d inputs x %d: %.3f s wall, %.3f s CPU, %.2f us/input (CPU)\n", n, reps, wall, cpu, cpu * 1e6 / ((double)n * reps));
  return 0;
}
