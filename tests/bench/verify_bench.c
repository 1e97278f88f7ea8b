/* verify_bench.c — verifications per second of a raw ECDSA P-256 signature
 * through gw_verify, chain included (root -> issuing CA -> leaf, a CRL of
 * 1000 entries, no OCSP), with the cache off (every verification builds and
 * checks the chain) and on (the hot path: one signature verification).
 * Also the bare EVP_PKEY_verify rate in the same run, as the yardstick,
 * and the same two measurements for a CMS SignedData (attached text,
 * signed attributes, the signer's certificate inside).
 *
 *   verify_bench [SECONDS]     (per measurement; default 1)
 *
 * Output, one line each:
 *   verify ecdsa-p256 bare ops_per_s=X
 *   verify ecdsa-p256 cold ops_per_s=X
 *   verify ecdsa-p256 cached ops_per_s=X
 *   verify cms-ecdsa-p256 cold ops_per_s=X
 *   verify cms-ecdsa-p256 cached ops_per_s=X */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_err.h"
#include "gw_verify.h"

static char tdir[64];

static const char *tpath(const char *name) {
  static char buf[4][256];
  static int k;

  k = (k + 1) % 4;
  snprintf(buf[k], sizeof(buf[k]), "%s/%s", tdir, name);
  return buf[k];
}

static void cleanup(void) {
  if (tdir[0]) {
    unlink(tpath("root.pem"));
    unlink(tpath("ca.pem"));
    unlink(tpath("crl.pem"));
    rmdir(tdir);
  }
}

static void die(const char *what) {
  fprintf(stderr, "verify_bench: %s failed\n", what);
  cleanup();
  exit(1);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *val) {
  X509V3_CTX ctx;
  X509_EXTENSION *e;

  X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
  e = X509V3_EXT_conf_nid(NULL, &ctx, nid, val);
  if (!e || !X509_add_ext(x, e, -1)) {
    die("extension");
  }
  X509_EXTENSION_free(e);
}

static X509 *mk_cert(X509 *issuer, EVP_PKEY *ikey, EVP_PKEY *key, long serial,
                     const char *cn, int ca) {
  X509 *x = X509_new();
  X509_NAME *nm = X509_NAME_new();

  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_NAME_add_entry_by_txt(nm, "C", MBSTRING_ASC, (const unsigned char *)"OM",
                             -1, -1, 0);
  if (!ca) {
    X509_NAME_add_entry_by_txt(nm, "serialNumber", MBSTRING_ASC,
                               (const unsigned char *)"PNOOM-10000001", -1, -1,
                               0);
  }
  X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn,
                             -1, -1, 0);
  X509_set_subject_name(x, nm);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm);
  X509_NAME_free(nm);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  issuer = issuer ? issuer : x;
  if (ca) {
    add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
    add_ext(x, issuer, NID_subject_alt_name, "URI:tel:+96899000001");
  }
  if (!X509_sign(x, ikey ? ikey : key, EVP_sha256())) {
    die("X509_sign");
  }
  return x;
}

static void write_pem(const char *path, X509 *x) {
  FILE *f = fopen(path, "w");

  if (!f || !PEM_write_X509(f, x)) {
    die(path);
  }
  fclose(f);
}

static void write_crl(const char *path, X509 *issuer, EVP_PKEY *key, int n) {
  X509_CRL *crl = X509_CRL_new();
  ASN1_TIME *t = ASN1_TIME_new();
  FILE *f;
  int i;

  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
  X509_gmtime_adj(t, -60);
  X509_CRL_set1_lastUpdate(crl, t);
  X509_gmtime_adj(t, 86400);
  X509_CRL_set1_nextUpdate(crl, t);
  X509_gmtime_adj(t, -120);
  for (i = 0; i < n; i++) {
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_INTEGER *s = ASN1_INTEGER_new();

    ASN1_INTEGER_set(s, 0x100000 + i);
    X509_REVOKED_set_serialNumber(r, s);
    X509_REVOKED_set_revocationDate(r, t);
    X509_CRL_add0_revoked(crl, r);
    ASN1_INTEGER_free(s);
  }
  X509_CRL_sort(crl);
  X509_CRL_sign(crl, key, EVP_sha256());
  f = fopen(path, "w");
  if (!f || !PEM_write_X509_CRL(f, crl)) {
    die(path);
  }
  fclose(f);
  ASN1_TIME_free(t);
  X509_CRL_free(crl);
}

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static gw_verify *mk_verifier(int cache) {
  gw_verify_config cfg;
  gw_verify *v = NULL;
  char err[256];

  gw_verify_config_init(&cfg);
  cfg.roots_file = tpath("root.pem");
  cfg.intermediates_file = tpath("ca.pem");
  cfg.crl_file = tpath("crl.pem");
  cfg.cache_size = cache;
  if (gw_verify_new(&v, &cfg, err, sizeof(err)) != GW_OK) {
    fprintf(stderr, "verify_bench: %s\n", err);
    cleanup();
    exit(1);
  }
  return v;
}

/* Runs |fn| for |secs| seconds; returns verifications/s. */
static double run(gw_verify_result (*fn)(gw_verify *, const gw_verify_req *,
                                         gw_verify_status *),
                  gw_verify *v, const gw_verify_req *rq, double secs) {
  gw_verify_status st;
  double t0 = now_s(), t;
  long n = 0;
  int i;

  do {
    for (i = 0; i < 64; i++) {
      if (fn(v, rq, &st) != GW_VERIFY_OK) {
        fprintf(stderr, "verify_bench: %s: %s\n",
                gw_verify_result_str(st.result), st.detail);
        cleanup();
        exit(1);
      }
    }
    n += 64;
    t = now_s() - t0;
  } while (t < secs);
  return (double)n / t;
}

static double run_bare(EVP_PKEY *k, const unsigned char *md,
                       const unsigned char *sig, size_t sl, double secs) {
  double t0 = now_s(), t;
  long n = 0;
  int i;

  do {
    for (i = 0; i < 64; i++) {
      EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);

      if (!ctx || EVP_PKEY_verify_init(ctx) != 1 ||
          EVP_PKEY_verify(ctx, sig, sl, md, 32) != 1) {
        die("bare verify");
      }
      EVP_PKEY_CTX_free(ctx);
    }
    n += 64;
    t = now_s() - t0;
  } while (t < secs);
  return (double)n / t;
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 1.0;
  EVP_PKEY *k_root, *k_ca, *k_leaf;
  X509 *root, *ca, *leaf;
  unsigned char md[32], der_sig[80], raw_sig[64], *cert = NULL;
  size_t dl = sizeof(der_sig);
  const unsigned char *p;
  EVP_PKEY_CTX *ctx;
  ECDSA_SIG *es;
  gw_verify *cold, *cached;
  int cl;

  if (secs <= 0) {
    secs = 1.0;
  }
  snprintf(tdir, sizeof(tdir), "/tmp/verify_bench.XXXXXX");
  if (!mkdtemp(tdir)) {
    die("mkdtemp");
  }
  k_root = EVP_EC_gen("P-256");
  k_ca = EVP_EC_gen("P-256");
  k_leaf = EVP_EC_gen("P-256");
  if (!k_root || !k_ca || !k_leaf) {
    die("keygen");
  }
  root = mk_cert(NULL, NULL, k_root, 1, "Bench Root", 1);
  ca = mk_cert(root, k_root, k_ca, 2, "Bench Issuing CA", 1);
  leaf = mk_cert(ca, k_ca, k_leaf, 3, "Bench Citizen", 0);
  write_pem(tpath("root.pem"), root);
  write_pem(tpath("ca.pem"), ca);
  write_crl(tpath("crl.pem"), ca, k_ca, 1000);
  cold = mk_verifier(0);
  cached = mk_verifier(1000);
  unlink(tpath("root.pem"));
  unlink(tpath("ca.pem"));
  /* the CRL stays while measuring: the verifier stats it on every call */

  RAND_bytes(md, sizeof(md));
  ctx = EVP_PKEY_CTX_new(k_leaf, NULL);
  if (!ctx || EVP_PKEY_sign_init(ctx) != 1 ||
      EVP_PKEY_sign(ctx, der_sig, &dl, md, 32) != 1) {
    die("sign");
  }
  EVP_PKEY_CTX_free(ctx);
  p = der_sig;
  es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
  BN_bn2binpad(ECDSA_SIG_get0_r(es), raw_sig, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), raw_sig + 32, 32);
  ECDSA_SIG_free(es);
  cl = i2d_X509(leaf, &cert);
  {
    gw_verify_req rq = {.sig = raw_sig,
                        .sig_len = 64,
                        .alg = GW_VERIFY_ECDSA_RAW,
                        .cert = cert,
                        .cert_len = (size_t)cl,
                        .data = md,
                        .data_len = 32,
                        .data_kind = GW_VERIFY_DIGEST,
                        .expect_civil_id = "10000001",
                        .expect_msisdn = "+96899000001"};

    printf("verify ecdsa-p256 bare ops_per_s=%.0f\n",
           run_bare(k_leaf, md, der_sig, dl, secs));
    printf("verify ecdsa-p256 cold ops_per_s=%.0f\n",
           run(gw_verify_raw, cold, &rq, secs));
    printf("verify ecdsa-p256 cached ops_per_s=%.0f\n",
           run(gw_verify_raw, cached, &rq, secs));
  }
  {
    static const char text[] = "Sign in to e-licensing: code 4721";
    BIO *in = BIO_new_mem_buf(text, (int)strlen(text));
    CMS_ContentInfo *cms = CMS_sign(leaf, k_leaf, NULL, in, CMS_BINARY);
    unsigned char *der = NULL;
    int dl2 = cms ? i2d_CMS_ContentInfo(cms, &der) : -1;
    gw_verify_req rq = {.sig = der,
                        .sig_len = (size_t)dl2,
                        .data = text,
                        .data_len = strlen(text),
                        .data_kind = GW_VERIFY_DATA,
                        .expect_civil_id = "10000001"};

    if (dl2 <= 0) {
      die("CMS_sign");
    }
    printf("verify cms-ecdsa-p256 cold ops_per_s=%.0f\n",
           run(gw_verify_cms, cold, &rq, secs));
    printf("verify cms-ecdsa-p256 cached ops_per_s=%.0f\n",
           run(gw_verify_cms, cached, &rq, secs));
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
  }
  gw_verify_del(cold);
  gw_verify_del(cached);
  cleanup();
  OPENSSL_free(cert);
  X509_free(root);
  X509_free(ca);
  X509_free(leaf);
  EVP_PKEY_free(k_root);
  EVP_PKEY_free(k_ca);
  EVP_PKEY_free(k_leaf);
  return 0;
}
