/* gw_crl_test.c — the CRL source (gw_crl.h): what a CRL file must be to be
 * used, lookups, freshness with the skew, and reloading when the file
 * changes, concurrently with checks. End-to-end CRL behaviour through the
 * verifier (cache dropped on reload) is in gw_verify_test.c. */
#include "gw_crl.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_err.h"
#include "harness.h"

static char tdir[64];

static const char *tpath(const char *name) {
  static char buf[4][256];
  static int k;

  k = (k + 1) % 4;
  snprintf(buf[k], sizeof(buf[k]), "%s/%s", tdir, name);
  return buf[k];
}

static void tdir_remove(void) {
  char p[512];
  struct dirent *de;
  DIR *d = opendir(tdir);

  if (d) {
    while ((de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
        snprintf(p, sizeof(p), "%s/%s", tdir, de->d_name);
        if (unlink(p) != 0) {
          rmdir(p);
        }
      }
    }
    closedir(d);
  }
  rmdir(tdir);
}

static void write_file(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");

  if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
    perror(path);
    exit(2);
  }
}

/* ---- a small PKI -------------------------------------------------------- */

static EVP_PKEY *k_root, *k_ca, *k_stranger, *k_nocrl;
static X509 *c_root, *c_ca, *c_stranger, *c_nocrl, *l_good, *l_bad, *l_root;
static STACK_OF(X509) * issuers;

static X509 *mk_cert(X509 *issuer, EVP_PKEY *ikey, EVP_PKEY *key, long serial,
                     const char *cn, const char *ku) {
  X509 *x = X509_new();
  X509_NAME *nm = X509_NAME_new();
  X509V3_CTX ctx;
  X509_EXTENSION *e;

  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn,
                             -1, -1, 0);
  X509_set_subject_name(x, nm);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm);
  X509_NAME_free(nm);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
  if (ku) {
    e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                            "critical,CA:TRUE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, ku);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  X509_sign(x, ikey ? ikey : key, EVP_sha256());
  return x;
}

static void build_pki(void) {
  k_root = EVP_EC_gen("P-256");
  k_ca = EVP_EC_gen("P-256");
  k_stranger = EVP_EC_gen("P-256");
  k_nocrl = EVP_EC_gen("P-256");
  c_root = mk_cert(NULL, NULL, k_root, 1, "CRL Test Root",
                   "critical,keyCertSign,cRLSign");
  c_ca = mk_cert(c_root, k_root, k_ca, 2, "CRL Test CA",
                 "critical,keyCertSign,cRLSign");
  c_stranger = mk_cert(NULL, NULL, k_stranger, 3, "Stranger CA",
                       "critical,keyCertSign,cRLSign");
  c_nocrl = mk_cert(c_root, k_root, k_nocrl, 4, "CA Without cRLSign",
                    "critical,keyCertSign");
  l_good = mk_cert(c_ca, k_ca, k_stranger, 0x2001, "good", NULL);
  l_bad = mk_cert(c_ca, k_ca, k_stranger, 0x2002, "revoked", NULL);
  l_root = mk_cert(c_root, k_root, k_stranger, 0x2003, "root leaf", NULL);
  issuers = sk_X509_new_null();
  sk_X509_push(issuers, c_root);
  sk_X509_push(issuers, c_ca);
  sk_X509_push(issuers, c_nocrl);
}

static void free_pki(void) {
  X509 *c[] = {c_root, c_ca, c_stranger, c_nocrl, l_good, l_bad, l_root};
  EVP_PKEY *k[] = {k_root, k_ca, k_stranger, k_nocrl};
  size_t i;

  sk_X509_free(issuers);
  for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
    X509_free(c[i]);
  }
  for (i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
    EVP_PKEY_free(k[i]);
  }
}

typedef struct crlspec {
  X509 *issuer;
  EVP_PKEY *key;
  long lu, nu;      /* lastUpdate / nextUpdate relative to now */
  int no_next;      /* omit nextUpdate */
  X509 *rev;        /* one revoked certificate, or NULL */
  int critical_idp; /* add a critical issuingDistributionPoint */
  int delta;        /* add deltaCRLIndicator */
  int der;          /* write DER instead of PEM */
  int append;       /* append to the file */
} crlspec;

static void write_crl(const char *path, const crlspec *s) {
  X509_CRL *crl = X509_CRL_new();
  ASN1_TIME *t = ASN1_TIME_new();
  FILE *f;

  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(s->issuer));
  X509_gmtime_adj(t, s->lu);
  X509_CRL_set1_lastUpdate(crl, t);
  if (!s->no_next) {
    X509_gmtime_adj(t, s->nu);
    X509_CRL_set1_nextUpdate(crl, t);
  }
  if (s->rev) {
    X509_REVOKED *r = X509_REVOKED_new();

    X509_gmtime_adj(t, -600);
    X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(s->rev));
    X509_REVOKED_set_revocationDate(r, t);
    X509_CRL_add0_revoked(crl, r);
  }
  if (s->critical_idp) {
    ISSUING_DIST_POINT *idp = ISSUING_DIST_POINT_new();

    idp->onlyuser = 1;
    X509_CRL_add1_ext_i2d(crl, NID_issuing_distribution_point, idp, 1, 0);
    ISSUING_DIST_POINT_free(idp);
  }
  if (s->delta) {
    ASN1_INTEGER *n = ASN1_INTEGER_new();

    ASN1_INTEGER_set(n, 1);
    X509_CRL_add1_ext_i2d(crl, NID_delta_crl, n, 1, 0);
    ASN1_INTEGER_free(n);
  }
  X509_CRL_sort(crl);
  X509_CRL_sign(crl, s->key, EVP_sha256());
  f = fopen(path, s->append ? "ab" : "wb");
  if (!f || !(s->der ? i2d_X509_CRL_fp(f, crl) : PEM_write_X509_CRL(f, crl))) {
    perror(path);
    exit(2);
  }
  fclose(f);
  ASN1_TIME_free(t);
  X509_CRL_free(crl);
}

/* A fresh CRL of c_ca revoking l_bad. */
static crlspec good_spec(void) {
  crlspec s = {c_ca, k_ca, -3600, 86400, 0, l_bad, 0, 0, 0, 0};
  return s;
}

static gw_crl *open_crl(const char *name) {
  gw_crl *c = NULL;

  T_EQ_INT(gw_crl_new(&c, tpath(name), issuers), GW_OK);
  return c;
}

static gw_verify_result check(gw_crl *c, X509 *cert, X509 *issuer, int skew,
                              char *detail) {
  time_t nu = 0;

  return gw_crl_check(c, cert, issuer, time(NULL), skew, &nu, NULL, detail,
                      GW_VERIFY_DETAIL_MAX);
}

/* ---- tests -------------------------------------------------------------- */

static void test_new_arguments(void) {
  static char dummy;
  gw_crl *sentinel = (gw_crl *)(void *)&dummy, *c = sentinel;

  T_EQ_INT(gw_crl_new(&c, NULL, issuers), GW_ERR_INVALID);
  T_EQ_INT(gw_crl_new(&c, "", issuers), GW_ERR_INVALID);
  T_EQ_INT(gw_crl_new(&c, "/x", NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_crl_new(NULL, "/x", issuers), GW_ERR_INVALID);
  T_ASSERT(c == sentinel);
  gw_crl_del(NULL);
}

static void test_good_crl(void) {
  crlspec s = good_spec();
  char detail[GW_VERIFY_DETAIL_MAX];
  uint64_t gen = 0;
  time_t nu = 0, now = time(NULL);
  gw_crl *c;

  write_crl(tpath("good.pem"), &s);
  c = open_crl("good.pem");
  if (!c) {
    return;
  }
  T_EQ_INT(gw_crl_state(c, detail, sizeof(detail)), GW_VERIFY_OK);
  T_EQ_INT(
      gw_crl_check(c, l_good, c_ca, now, 0, &nu, &gen, detail, sizeof(detail)),
      GW_VERIFY_OK);
  T_ASSERT(nu >= now + 86400 - 5 && nu <= now + 86400 + 5);
  T_EQ_INT(gen, 1);
  T_EQ_INT(gw_crl_generation(c), 1);
  T_EQ_INT(gw_crl_loads(c), 1);
  T_EQ_INT(check(c, l_bad, c_ca, 0, detail), GW_VERIFY_REVOKED);
  T_ASSERT(strstr(detail, "2002") != NULL);
  T_ASSERT(strstr(detail, "no reason given") != NULL);
  /* the issuer's CRL does not cover certificates of another CA */
  T_EQ_INT(check(c, l_root, c_root, 0, detail), GW_VERIFY_CRL_UNAVAILABLE);
  T_ASSERT(strstr(detail, "no CRL from CN=CRL Test Root") != NULL);
  /* nothing changed: no reload */
  T_EQ_INT(gw_crl_refresh(c, now), 0);
  T_EQ_INT(gw_crl_loads(c), 1);
  gw_crl_del(c);
}

static void test_freshness_and_skew(void) {
  crlspec s = good_spec();
  char detail[GW_VERIFY_DETAIL_MAX];
  gw_crl *c;

  s.lu = -86400;
  s.nu = -30; /* expired 30 s ago */
  write_crl(tpath("late.pem"), &s);
  c = open_crl("late.pem");
  if (!c) {
    return;
  }
  T_EQ_INT(check(c, l_good, c_ca, 60, detail), GW_VERIFY_OK);
  T_EQ_INT(check(c, l_good, c_ca, 0, detail), GW_VERIFY_CRL_EXPIRED);
  T_ASSERT(strstr(detail, "nextUpdate") != NULL);
  /* a listed certificate is revoked however old the CRL */
  T_EQ_INT(check(c, l_bad, c_ca, 0, detail), GW_VERIFY_REVOKED);
  gw_crl_del(c);
  s.lu = 120; /* issued in the future */
  s.nu = 86400;
  write_crl(tpath("early.pem"), &s);
  c = open_crl("early.pem");
  if (!c) {
    return;
  }
  T_EQ_INT(check(c, l_good, c_ca, 60, detail), GW_VERIFY_CRL_UNAVAILABLE);
  T_ASSERT(strstr(detail, "not valid before") != NULL);
  T_EQ_INT(check(c, l_good, c_ca, 180, detail), GW_VERIFY_OK);
  gw_crl_del(c);
}

/* Every way a file can be unusable, each failing closed. */
static void test_bad_files(void) {
  static const struct {
    const char *name;
    const char *why;
  } cases[] = {
      {"badsig.pem", "not signed by its issuer"},
      {"stranger.pem", "not a configured CA"},
      {"nonext.pem", "no nextUpdate"},
      {"idp.pem", "not supported"},
      {"delta.pem", "not supported"},
      {"nocrlsign.pem", "may not sign CRLs"},
      {"garbage.pem", "not a DER or PEM CRL"},
      {"garbage-pem.pem", "damaged PEM CRL"},
      {"empty.pem", "empty file"},
      {"missing.pem", "No such file"},
      {"dir.pem", "not a regular file"},
      {"mixed.pem", "not signed by its issuer"},
  };
  crlspec s = good_spec();
  char detail[GW_VERIFY_DETAIL_MAX];
  size_t i;

  s.key = k_stranger;
  write_crl(tpath("badsig.pem"), &s);
  s = good_spec();
  s.issuer = c_stranger;
  s.key = k_stranger;
  write_crl(tpath("stranger.pem"), &s);
  s = good_spec();
  s.no_next = 1;
  write_crl(tpath("nonext.pem"), &s);
  s = good_spec();
  s.critical_idp = 1;
  write_crl(tpath("idp.pem"), &s);
  s = good_spec();
  s.delta = 1;
  write_crl(tpath("delta.pem"), &s);
  s = good_spec();
  s.issuer = c_nocrl;
  s.key = k_nocrl;
  write_crl(tpath("nocrlsign.pem"), &s);
  write_file(tpath("garbage.pem"), "\x30\x82\x01\x00garbage", 11);
  write_file(tpath("garbage-pem.pem"),
             "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", 53);
  write_file(tpath("empty.pem"), "", 0);
  mkdir(tpath("dir.pem"), 0700);
  /* one good and one bad CRL in the same file: the file is bad */
  s = good_spec();
  write_crl(tpath("mixed.pem"), &s);
  s.issuer = c_root;
  s.key = k_ca;
  s.append = 1;
  write_crl(tpath("mixed.pem"), &s);

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    gw_crl *c = open_crl(cases[i].name);

    if (!c) {
      continue;
    }
    T_EQ_INT(gw_crl_state(c, detail, sizeof(detail)),
             GW_VERIFY_CRL_UNAVAILABLE);
    if (!strstr(detail, cases[i].why)) {
      printf("#   %s: \"%s\" lacks \"%s\"\n", cases[i].name, detail,
             cases[i].why);
      T_ASSERT(0);
    }
    T_EQ_INT(check(c, l_good, c_ca, 60, detail), GW_VERIFY_CRL_UNAVAILABLE);
    T_EQ_INT(check(c, l_bad, c_ca, 60, detail), GW_VERIFY_CRL_UNAVAILABLE);
    gw_crl_del(c);
  }
}

static void test_formats_and_several_crls(void) {
  crlspec s = good_spec();
  char detail[GW_VERIFY_DETAIL_MAX];
  gw_crl *c;

  s.der = 1;
  write_crl(tpath("crl.der"), &s);
  c = open_crl("crl.der");
  if (c) {
    T_EQ_INT(check(c, l_good, c_ca, 0, detail), GW_VERIFY_OK);
    T_EQ_INT(check(c, l_bad, c_ca, 0, detail), GW_VERIFY_REVOKED);
    gw_crl_del(c);
  }
  /* the root's CRL and the issuing CA's in one PEM file */
  s = good_spec();
  write_crl(tpath("both.pem"), &s);
  s.issuer = c_root;
  s.key = k_root;
  s.rev = l_root;
  s.append = 1;
  write_crl(tpath("both.pem"), &s);
  c = open_crl("both.pem");
  if (c) {
    T_EQ_INT(check(c, l_good, c_ca, 0, detail), GW_VERIFY_OK);
    T_EQ_INT(check(c, l_bad, c_ca, 0, detail), GW_VERIFY_REVOKED);
    T_EQ_INT(check(c, l_root, c_root, 0, detail), GW_VERIFY_REVOKED);
    gw_crl_del(c);
  }
  /* two CRLs of one CA: the newer (by thisUpdate) is used */
  s = good_spec();
  s.lu = -7200;
  s.rev = NULL;
  write_crl(tpath("two.pem"), &s);
  s.lu = -60;
  s.rev = l_bad;
  s.append = 1;
  write_crl(tpath("two.pem"), &s);
  c = open_crl("two.pem");
  if (c) {
    T_EQ_INT(check(c, l_bad, c_ca, 0, detail), GW_VERIFY_REVOKED);
    gw_crl_del(c);
  }
}

static void test_reload_on_change(void) {
  crlspec s = good_spec();
  char detail[GW_VERIFY_DETAIL_MAX];
  struct timespec ts[2];
  time_t now = time(NULL);
  uint64_t gen;
  gw_crl *c;

  s.rev = NULL;
  write_crl(tpath("live.pem"), &s);
  c = open_crl("live.pem");
  if (!c) {
    return;
  }
  T_EQ_INT(check(c, l_bad, c_ca, 0, detail), GW_VERIFY_OK);
  T_EQ_INT(gw_crl_refresh(c, now), 0);
  /* rewritten in place */
  s.rev = l_bad;
  write_crl(tpath("live.pem"), &s);
  T_EQ_INT(gw_crl_refresh(c, now), 1);
  T_EQ_INT(gw_crl_refresh(c, now), 0);
  T_EQ_INT(gw_crl_generation(c), 2);
  T_EQ_INT(check(c, l_bad, c_ca, 0, detail), GW_VERIFY_REVOKED);
  /* replaced by rename (a new inode) */
  s.rev = NULL;
  write_crl(tpath("next.pem"), &s);
  T_EQ_INT(rename(tpath("next.pem"), tpath("live.pem")), 0);
  T_EQ_INT(gw_crl_refresh(c, now), 1);
  T_EQ_INT(check(c, l_bad, c_ca, 0, detail), GW_VERIFY_OK);
  /* only the modification time changes */
  ts[0].tv_sec = ts[1].tv_sec = now - 1000;
  ts[0].tv_nsec = ts[1].tv_nsec = 0;
  T_EQ_INT(utimensat(AT_FDCWD, tpath("live.pem"), ts, 0), 0);
  T_EQ_INT(gw_crl_refresh(c, now), 1);
  T_EQ_INT(gw_crl_loads(c), 4);
  /* removed: fails closed; retried at most once a second; comes back */
  unlink(tpath("live.pem"));
  T_EQ_INT(gw_crl_refresh(c, now), 1);
  T_EQ_INT(check(c, l_good, c_ca, 0, detail), GW_VERIFY_CRL_UNAVAILABLE);
  gen = gw_crl_generation(c);
  T_EQ_INT(gw_crl_refresh(c, now), 0);
  T_EQ_INT(gw_crl_refresh(c, now + 1), 1);
  T_EQ_INT(gw_crl_generation(c), gen + 1);
  write_crl(tpath("live.pem"), &s);
  T_EQ_INT(gw_crl_refresh(c, now + 1), 1);
  T_EQ_INT(check(c, l_good, c_ca, 0, detail), GW_VERIFY_OK);
  gw_crl_del(c);
}

/* Checks on several threads while the file is replaced again and again:
 * every answer is one of the two files' answers (ASan/TSan food). */
typedef struct checker {
  gw_crl *c;
  atomic_int *stop;
  int bad;
  int n;
} checker;

static void *checker_run(void *arg) {
  checker *k = arg;
  char detail[GW_VERIFY_DETAIL_MAX];
  gw_verify_result r;

  while (!atomic_load(k->stop)) {
    gw_crl_refresh(k->c, time(NULL));
    r = gw_crl_check(k->c, l_bad, c_ca, time(NULL), 0, NULL, NULL, detail,
                     sizeof(detail));
    if (r != GW_VERIFY_OK && r != GW_VERIFY_REVOKED) {
      k->bad++;
    }
    k->n++;
  }
  return NULL;
}

static void test_concurrent_reload(void) {
  crlspec a = good_spec(), b = good_spec();
  atomic_int stop = 0;
  checker k[3];
  pthread_t th[3];
  gw_crl *c;
  int i;

  b.rev = NULL;
  write_crl(tpath("race.pem"), &a);
  write_crl(tpath("race-a.pem"), &a);
  write_crl(tpath("race-b.pem"), &b);
  c = open_crl("race.pem");
  if (!c) {
    return;
  }
  for (i = 0; i < 3; i++) {
    k[i].c = c;
    k[i].stop = &stop;
    k[i].bad = k[i].n = 0;
    pthread_create(&th[i], NULL, checker_run, &k[i]);
  }
  for (i = 0; i < 60; i++) {
    /* a hard link then rename: the file is always complete */
    unlink(tpath("race-tmp.pem"));
    link(tpath(i % 2 ? "race-a.pem" : "race-b.pem"), tpath("race-tmp.pem"));
    rename(tpath("race-tmp.pem"), tpath("race.pem"));
    usleep(1000);
  }
  atomic_store(&stop, 1);
  for (i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    T_EQ_INT(k[i].bad, 0);
    T_ASSERT(k[i].n > 0);
  }
  T_ASSERT(gw_crl_loads(c) > 1);
  gw_crl_del(c);
}

int main(void) {
  snprintf(tdir, sizeof(tdir), "/tmp/gw_crl_test.XXXXXX");
  if (!mkdtemp(tdir)) {
    perror("mkdtemp");
    return 2;
  }
  build_pki();
  T_RUN(test_new_arguments);
  T_RUN(test_good_crl);
  T_RUN(test_freshness_and_skew);
  T_RUN(test_bad_files);
  T_RUN(test_formats_and_several_crls);
  T_RUN(test_reload_on_change);
  T_RUN(test_concurrent_reload);
  free_pki();
  tdir_remove();
  return T_DONE();
}
