/* p11_bench.c — ECDSA P-256 signatures per second through p11_sign (a key
 * held on a SoftHSM token), with 1 and 2 threads on the same key. Makes a
 * private SoftHSM directory and removes it afterwards. Prints one line per
 * thread count:
 *
 *   p11 ecdsa-p256 sign threads=N ops_per_s=X
 *
 * Environment: P11_BENCH_SECONDS (default 2) per measurement.
 * Build (by hand for now), from the repository root:
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -pthread -Ipkcs11 -Igateway \
 *     $(pkg-config --cflags libp11 p11-kit-1 openssl) tests/bench/p11_bench.c \
 *     pkcs11/p11.c gateway/gw_log.c -o build/p11_bench \
 *     $(pkg-config --libs libp11 p11-kit-1 openssl) */
#include "p11.h"

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"

typedef struct run {
  p11_key *k;
  double seconds;
  long ops;
  int failed;
} run;

static atomic_int go;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *signer(void *arg) {
  run *r = arg;
  uint8_t dg[32], sig[64];
  double end;

  memset(dg, 0x5a, sizeof dg);
  while (!atomic_load(&go)) {
  }
  end = now_s() + r->seconds;
  while (now_s() < end) {
    size_t len = sizeof sig;
    if (p11_sign(r->k, P11_MECH_ECDSA, dg, sizeof dg, 0, sig, &len) != P11_OK) {
      r->failed = 1;
      break;
    }
    r->ops++;
    dg[0]++;
  }
  return NULL;
}

static double measure(p11_key *k, int nthreads, double seconds) {
  pthread_t th[2];
  run r[2];
  long ops = 0;
  double t0;

  atomic_store(&go, 0);
  for (int i = 0; i < nthreads; i++) {
    r[i] = (run){k, seconds, 0, 0};
    pthread_create(&th[i], NULL, signer, &r[i]);
  }
  t0 = now_s();
  atomic_store(&go, 1);
  for (int i = 0; i < nthreads; i++) {
    pthread_join(th[i], NULL);
    if (r[i].failed) {
      return -1;
    }
    ops += r[i].ops;
  }
  return (double)ops / (now_s() - t0);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

int main(void) {
  char dir[] = "/tmp/p11bench.XXXXXX", path[128];
  const char *env = getenv("P11_BENCH_SECONDS");
  double seconds = env != NULL ? atof(env) : 2.0;
  const uint8_t id[] = {1};
  p11_module *m = NULL;
  p11_token *t = NULL;
  p11_key *k = NULL;
  FILE *f;
  int rc = 1;

  if (seconds <= 0) {
    seconds = 2.0;
  }
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(path, sizeof path, "%s/tokens", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/softhsm2.conf", dir);
  f = fopen(path, "w");
  if (f == NULL) {
    goto out;
  }
  fprintf(f,
          "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
          "log.level = ERROR\nslots.removable = false\n",
          dir);
  fclose(f);
  setenv("SOFTHSM2_CONF", path, 1);

  if (p11_module_new(&m, MODULE) != P11_OK ||
      p11_token_init(m, "bench", "87654321", "1234", &t) != P11_OK ||
      p11_keygen(t, "1234", P11_KEY_EC_P256, "es256", id, sizeof id) !=
          P11_OK ||
      p11_key_find(t, "1234", "es256", &k) != P11_OK) {
    fprintf(stderr, "p11_bench: set-up failed\n");
    goto out;
  }
  rc = 0;
  for (int n = 1; n <= 2; n++) {
    double ops = measure(k, n, seconds);
    if (ops < 0) {
      fprintf(stderr, "p11_bench: p11_sign failed\n");
      rc = 1;
      break;
    }
    printf("p11 ecdsa-p256 sign threads=%d ops_per_s=%.0f\n", n, ops);
    fflush(stdout);
  }
out:
  p11_key_del(k);
  p11_module_del(m);
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return rc;
}
