/* replay.c — runs LLVMFuzzerTestOneInput once on each file named on the
 * command line, or on each file in a named directory, so that a fuzz
 * target's seed corpus is replayed by `make check` with any compiler.
 * Each input is read into a buffer of exactly its size, so that a
 * sanitizer sees any read past the end. Exits non-zero if a file cannot
 * be read; a bug in the target aborts. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
  FILE *fp = fopen(path, "rb");
  uint8_t *buf = NULL;
  long size;

  if (!fp) {
    perror(path);
    return -1;
  }
  if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 ||
      fseek(fp, 0, SEEK_SET) != 0) {
    perror(path);
    fclose(fp);
    return -1;
  }
  /* malloc(0) may return NULL; ask for one byte but pass size 0. */
  buf = malloc(size ? (size_t)size : 1);
  if (!buf || fread(buf, 1, (size_t)size, fp) != (size_t)size) {
    fprintf(stderr, "%s: cannot read\n", path);
    free(buf);
    fclose(fp);
    return -1;
  }
  fclose(fp);
  LLVMFuzzerTestOneInput(buf, (size_t)size);
  free(buf);
  /* One line per input for tests/run.sh; a crash never gets here. */
  printf("ok - %s\n", path);
  fflush(stdout);
  return 0;
}

static int replay_dir(const char *dir, int *count) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int rv = 0;

  if (!d) {
    perror(dir);
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    char path[4096];
    struct stat st;

    if (e->d_name[0] == '.') {
      continue;
    }
    if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >=
        (int)sizeof(path)) {
      rv = -1;
      continue;
    }
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
      continue;
    }
    if (replay_file(path) != 0) {
      rv = -1;
    } else {
      (*count)++;
    }
  }
  closedir(d);
  return rv;
}

int main(int argc, char **argv) {
  int i, count = 0, failed = 0;

  for (i = 1; i < argc; i++) {
    struct stat st;

    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      failed |= replay_dir(argv[i], &count) != 0;
    } else if (replay_file(argv[i]) != 0) {
      failed = 1;
    } else {
      count++;
    }
  }
  printf("# replayed %d inputs\n", count);
  return failed || count == 0;
}
