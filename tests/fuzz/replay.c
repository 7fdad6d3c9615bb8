/* replay.c — a main() for the harnesses when they are built without
 * libFuzzer (FLEETMOCK_FUZZ off, gcc or clang): runs the harness once on
 * every file it is given, a directory meaning each file in it. ctest runs
 * each harness over its committed corpus this way (fuzz.replay.*), so every
 * build, and the sanitizer build, replays the seeds and every crash input
 * kept as a regression. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  uint8_t *data = NULL;
  size_t n = 0, cap = 0, got;
  do {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *d = realloc(data, cap);
      if (!d) {
        free(data);
        fclose(f);
        return 1;
      }
      data = d;
    }
    got = fread(data + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  fclose(f);
  /* An exact-size copy, as libFuzzer gives, so a read past the end is seen. */
  uint8_t *exact = malloc(n ? n : 1);
  if (exact) memcpy(exact, data, n);
  free(data);
  if (!exact) return 1;
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

int main(int argc, char **argv) {
  int files = 0, bad = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      bad += run_file(argv[i]);
      files++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    if (!d) {
      perror(argv[i]);
      return 1;
    }
    for (struct dirent *e; (e = readdir(d));) {
      if (e->d_name[0] == '.') continue;
      char path[4096];
      snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
      bad += run_file(path);
      files++;
    }
    closedir(d);
  }
  printf("replayed %d inputs\n", files);
  return bad || files == 0;
}
