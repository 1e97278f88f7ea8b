/* jose_bench.c — JWTs signed per second with the gateway's keys on a
 * SoftHSM token (gw_jwt_sign: SHA-256, p11_sign, base64url, JSON) and
 * verified per second (gw_jwt_verify), one thread, for an access token of
 * the usual size. Makes the keys as `mpkictl gateway-key init` does, in a
 * private SoftHSM directory that it removes afterwards. Prints:
 *
 *   jwt sign ES256 ops_per_s=X
 *   jwt verify ES256 ops_per_s=X
 *   jwt sign RS256 ops_per_s=X
 *   jwt verify RS256 ops_per_s=X
 *
 * Environment: JOSE_BENCH_SECONDS (default 1) per measurement. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_jose.h"
#include "gw_log.h"
#include "gw_pki.h"
#include "p11.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");

  if (!f) {
    return -1;
  }
  fputs(text, f);
  return fclose(f);
}

/* The claims of an access token (RFC 9068) as the gateway will issue. */
static json_t *claims(void) {
  return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s}", "iss",
                   "https://127.0.0.1:8443", "sub", "PNOOM-10000001", "aud",
                   "https://licensing.example.om", "client_id", "licensing",
                   "exp", (json_int_t)1900000300, "iat", (json_int_t)1900000000,
                   "auth_time", (json_int_t)1899999990, "jti",
                   "9f86d081884c7d659a2feaa0c55ad015", "scope",
                   "openid profile", "acr", "urn:mpki:sim");
}

/* Signs, then verifies, as many tokens as fit in |seconds| each. */
static int measure(gw_signer *s, gw_jws_alg alg, double seconds) {
  json_t *c = claims();
  gw_buf b;
  double t0, end;
  long ops = 0;
  int rc = 0;

  gw_buf_init(&b, 16384);
  t0 = now_s();
  end = t0 + seconds;
  while (now_s() < end) {
    gw_buf_reset(&b);
    if (gw_jwt_sign(s, alg, "at+jwt", c, &b) != GW_OK) {
      rc = -1;
      goto done;
    }
    ops++;
  }
  printf("jwt sign %s ops_per_s=%.0f\n", gw_jws_alg_name(alg),
         (double)ops / (now_s() - t0));
  ops = 0;
  t0 = now_s();
  end = t0 + seconds;
  while (now_s() < end) {
    json_t *got = NULL;
    if (gw_jwt_verify(s, b.data, b.len, "at+jwt", &got, NULL) != GW_OK) {
      rc = -1;
      goto done;
    }
    json_decref(got);
    ops++;
  }
  printf("jwt verify %s ops_per_s=%.0f\n", gw_jws_alg_name(alg),
         (double)ops / (now_s() - t0));
  fflush(stdout);

done:
  gw_buf_free(&b);
  json_decref(c);
  return rc;
}

int main(void) {
  char dir[] = "/tmp/josebench.XXXXXX", path[256], text[512], err[512];
  const char *env = getenv("JOSE_BENCH_SECONDS");
  double seconds = env != NULL ? atof(env) : 1.0;
  gw_config *cfg = NULL;
  p11_module *m = NULL;
  gw_signer *s = NULL;
  gw_pki_pins pins;
  gw_pki_gateway_kids kids;
  int rc = 1;

  memset(&pins, 0, sizeof(pins));
  gw_log_min_level = GW_LOG_ERROR;
  if (seconds <= 0) {
    seconds = 1.0;
  }
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(path, sizeof(path), "%s/tokens", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
  snprintf(text, sizeof(text),
           "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
           "log.level = ERROR\nslots.removable = false\n",
           dir);
  if (write_text(path, text) != 0) {
    goto out;
  }
  snprintf(path, sizeof(path), "%s/mpkigw.conf", dir);
  if (write_text(path, "tls: { certificate = \"none.pem\"; private_key = "
                       "\"none.key\"; };\n"
                       "store: { path = \"mpkigw.db\"; };\n"
                       "pkcs11: { module = \"" MODULE "\"; softhsm_conf = "
                       "\"softhsm2.conf\"; };\n") != 0 ||
      gw_config_load(&cfg, path, err, sizeof(err)) != GW_OK ||
      gw_pki_pins_create(cfg->pki_pin_file, &pins, err, sizeof(err)) != GW_OK ||
      gw_pki_module_open(cfg, &m, err, sizeof(err)) != GW_OK ||
      gw_pki_gateway_keys_init(cfg, m, &pins, &kids, err, sizeof(err)) !=
          GW_OK ||
      gw_signer_new(&s, cfg, m, err, sizeof(err)) != GW_OK) {
    fprintf(stderr, "jose_bench: set-up failed: %s\n", err);
    goto out;
  }
  if (measure(s, GW_JWS_ES256, seconds) != 0 ||
      measure(s, GW_JWS_RS256, seconds) != 0) {
    fprintf(stderr, "jose_bench: signing or verification failed\n");
    goto out;
  }
  rc = 0;
out:
  gw_pki_pins_wipe(&pins);
  gw_signer_del(s);
  p11_module_del(m);
  gw_config_del(cfg);
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return rc;
}
