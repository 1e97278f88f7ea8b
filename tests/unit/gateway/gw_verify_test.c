/* gw_verify_test.c — the verifier through its public API, against a whole
 * test PKI built in-process (root, issuing CA, an unrelated CA, leaves of
 * every kind, CRLs) and a real OCSP responder (`openssl ocsp` as a child
 * process). Shows every success form and every rejection of issue 3 item 5.
 * CRL and OCSP details are in gw_crl_test.c and gw_ocsp_test.c. */
#include "gw_verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_err.h"
#include "harness.h"

/* ---- temporary directory ------------------------------------------------ */

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
        unlink(p);
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

/* ---- the test PKI ------------------------------------------------------- */

/* The verifiers' clock is real time + t_offset. */
static time_t t_offset;

static time_t test_clock(void *arg) {
  (void)arg;
  return time(NULL) + t_offset;
}

typedef struct spec {
  X509 *issuer;         /* NULL: self-signed */
  EVP_PKEY *issuer_key; /* NULL: self-signed */
  EVP_PKEY *key;
  long serial;
  const char *cn;
  const char *civil;  /* serialNumber PNOOM-<civil>, NULL: none */
  const char *msisdn; /* SAN URI tel:<msisdn>, NULL: none */
  long nb, na;        /* validity relative to now, seconds */
  const char *bc;     /* basicConstraints or NULL */
  const char *ku;     /* keyUsage or NULL */
  const char *eku;    /* extendedKeyUsage or NULL */
} spec;

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *val) {
  X509_EXTENSION *e;

  if (!val) {
    return;
  }
  e = X509V3_EXT_conf_nid(NULL, ctx, nid, val);
  if (!e || !X509_add_ext(x, e, -1)) {
    fprintf(stderr, "extension %d=%s failed\n", nid, val);
    exit(2);
  }
  X509_EXTENSION_free(e);
}

static X509 *mk_cert(const spec *s) {
  X509 *x = X509_new();
  X509_NAME *nm = X509_NAME_new();
  X509V3_CTX ctx;
  char san[64], sn[64];

  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), s->serial);
  X509_NAME_add_entry_by_txt(nm, "C", MBSTRING_ASC, (const unsigned char *)"OM",
                             -1, -1, 0);
  if (s->civil) {
    snprintf(sn, sizeof(sn), "PNOOM-%s", s->civil);
    X509_NAME_add_entry_by_NID(nm, NID_serialNumber, MBSTRING_ASC,
                               (const unsigned char *)sn, -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
                             (const unsigned char *)s->cn, -1, -1, 0);
  X509_set_subject_name(x, nm);
  X509_set_issuer_name(x, s->issuer ? X509_get_subject_name(s->issuer) : nm);
  X509_NAME_free(nm);
  X509_gmtime_adj(X509_getm_notBefore(x), s->nb + t_offset);
  X509_gmtime_adj(X509_getm_notAfter(x), s->na + t_offset);
  X509_set_pubkey(x, s->key);
  X509V3_set_ctx(&ctx, s->issuer ? s->issuer : x, x, NULL, NULL, 0);
  add_ext(x, &ctx, NID_basic_constraints, s->bc);
  add_ext(x, &ctx, NID_key_usage, s->ku);
  add_ext(x, &ctx, NID_ext_key_usage, s->eku);
  add_ext(x, &ctx, NID_subject_key_identifier, "hash");
  if (s->issuer) {
    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
  }
  if (s->msisdn) {
    snprintf(san, sizeof(san), "URI:tel:%s", s->msisdn);
    add_ext(x, &ctx, NID_subject_alt_name, san);
  }
  if (!X509_sign(x, s->issuer_key ? s->issuer_key : s->key, EVP_sha256())) {
    fprintf(stderr, "X509_sign failed\n");
    exit(2);
  }
  return x;
}

static EVP_PKEY *k_root, *k_ca, *k_other_ca, *k_ocsp, *k_other, *k_ec, *k_rsa,
    *k_weak;
static X509 *c_root, *c_ca, *c_other_ca, *c_ocsp, *c_ocsp_noeku;
/* leaves */
static X509 *l_ec, *l_rsa, *l_expired, *l_future, *l_ku, *l_revoked,
    *l_ocsp_revoked, *l_unknown, *l_skew_nb, *l_skew_na, *l_weak, *l_noid,
    *l_other;

#define CIVIL "10000001"
#define MSISDN "+96899000001"
#define LEAF_KU "critical,digitalSignature"

static X509 *leaf(EVP_PKEY *key, long serial, const char *civil,
                  const char *msisdn, long nb, long na, const char *ku) {
  spec s = {c_ca,  k_ca,   key, serial, "Test Citizen",
            civil, msisdn, nb,  na,     "critical,CA:FALSE",
            ku,    NULL};
  return mk_cert(&s);
}

static unsigned char *der_of(X509 *x, size_t *n) {
  unsigned char *p = NULL;
  int len = i2d_X509(x, &p);

  *n = len > 0 ? (size_t)len : 0;
  return p;
}

static void write_pem_certs(const char *path, X509 *a, X509 *b) {
  FILE *f = fopen(path, "w");

  if (!f || !PEM_write_X509(f, a) || (b && !PEM_write_X509(f, b))) {
    perror(path);
    exit(2);
  }
  fclose(f);
}

/* A CRL of |issuer| signed with |key|, valid from now+|lu| to now+|nu|,
 * revoking |rev| (NULL-terminated). */
static void write_crl(const char *path, X509 *issuer, EVP_PKEY *key, long lu,
                      long nu, X509 **rev) {
  X509_CRL *crl = X509_CRL_new();
  ASN1_TIME *t = ASN1_TIME_new();
  FILE *f;

  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
  X509_gmtime_adj(t, lu + t_offset);
  X509_CRL_set1_lastUpdate(crl, t);
  X509_gmtime_adj(t, nu + t_offset);
  X509_CRL_set1_nextUpdate(crl, t);
  X509_gmtime_adj(t, -3600 + t_offset);
  for (; rev && *rev; rev++) {
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();

    X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(*rev));
    X509_REVOKED_set_revocationDate(r, t);
    ASN1_ENUMERATED_set(reason, 1); /* keyCompromise */
    X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0);
    ASN1_ENUMERATED_free(reason);
    X509_CRL_add0_revoked(crl, r);
  }
  X509_CRL_sort(crl);
  X509_CRL_sign(crl, key, EVP_sha256());
  f = fopen(path, "w");
  if (!f || !PEM_write_X509_CRL(f, crl)) {
    perror(path);
    exit(2);
  }
  fclose(f);
  ASN1_TIME_free(t);
  X509_CRL_free(crl);
}

static void build_pki(void) {
  spec root = {NULL,
               NULL,
               NULL,
               1,
               "Test Root CA",
               NULL,
               NULL,
               -86400,
               86400 * 365,
               "critical,CA:TRUE",
               "critical,keyCertSign,cRLSign",
               NULL};
  spec ca = root, other = root, ocsp = root;

  k_root = EVP_EC_gen("P-256");
  k_ca = EVP_EC_gen("P-256");
  k_other_ca = EVP_EC_gen("P-256");
  k_ocsp = EVP_EC_gen("P-256");
  k_other = EVP_EC_gen("P-256");
  k_ec = EVP_EC_gen("P-256");
  k_rsa = EVP_RSA_gen(2048);
  k_weak = EVP_RSA_gen(1024);
  if (!k_root || !k_ca || !k_other_ca || !k_ocsp || !k_other || !k_ec ||
      !k_rsa || !k_weak) {
    fprintf(stderr, "key generation failed\n");
    exit(2);
  }
  root.key = k_root;
  c_root = mk_cert(&root);
  ca.issuer = c_root;
  ca.issuer_key = k_root;
  ca.key = k_ca;
  ca.serial = 2;
  ca.cn = "Test Issuing CA";
  c_ca = mk_cert(&ca);
  other.key = k_other_ca;
  other.serial = 3;
  other.cn = "Unrelated CA";
  c_other_ca = mk_cert(&other);
  ocsp.issuer = c_ca;
  ocsp.issuer_key = k_ca;
  ocsp.key = k_ocsp;
  ocsp.serial = 4;
  ocsp.cn = "Test OCSP Responder";
  ocsp.bc = "critical,CA:FALSE";
  ocsp.ku = "critical,digitalSignature";
  ocsp.eku = "OCSPSigning";
  c_ocsp = mk_cert(&ocsp);
  ocsp.serial = 5;
  ocsp.eku = NULL;
  c_ocsp_noeku = mk_cert(&ocsp);

  l_ec = leaf(k_ec, 0x1001, CIVIL, MSISDN, -3600, 86400, LEAF_KU);
  l_rsa = leaf(k_rsa, 0x1002, "10000002", "+96899000002", -3600, 86400,
               "critical,digitalSignature,nonRepudiation");
  l_expired = leaf(k_ec, 0x1003, CIVIL, MSISDN, -2 * 86400, -86400, LEAF_KU);
  l_future = leaf(k_ec, 0x1004, CIVIL, MSISDN, 86400, 2 * 86400, LEAF_KU);
  l_ku = leaf(k_ec, 0x1005, CIVIL, MSISDN, -3600, 86400, "keyCertSign");
  l_revoked = leaf(k_ec, 0x1006, CIVIL, MSISDN, -3600, 86400, LEAF_KU);
  l_ocsp_revoked = leaf(k_ec, 0x1007, CIVIL, MSISDN, -3600, 86400, LEAF_KU);
  l_unknown = leaf(k_ec, 0x1008, CIVIL, MSISDN, -3600, 86400, LEAF_KU);
  l_skew_nb = leaf(k_ec, 0x1009, CIVIL, MSISDN, 30, 86400, LEAF_KU);
  l_skew_na = leaf(k_ec, 0x100A, CIVIL, MSISDN, -86400, -30, LEAF_KU);
  l_weak = leaf(k_weak, 0x100B, CIVIL, MSISDN, -3600, 86400, LEAF_KU);
  l_noid = leaf(k_ec, 0x100C, NULL, NULL, -3600, 86400, LEAF_KU);
  {
    spec o = {c_other_ca, k_other_ca, k_ec,  0x1001, "Test Citizen",
              CIVIL,      MSISDN,     -3600, 86400,  "critical,CA:FALSE",
              LEAF_KU,    NULL};
    l_other = mk_cert(&o);
  }

  write_pem_certs(tpath("root.pem"), c_root, NULL);
  write_pem_certs(tpath("ca.pem"), c_ca, NULL);
  write_pem_certs(tpath("ocsp.pem"), c_ocsp, NULL);
  write_pem_certs(tpath("ocsp-noeku.pem"), c_ocsp_noeku, NULL);
  {
    X509 *rev[] = {l_revoked, NULL};

    write_crl(tpath("crl.pem"), c_ca, k_ca, -3600, 86400, rev);
    write_crl(tpath("crl-stale.pem"), c_ca, k_ca, -2 * 86400, -86400, rev);
    write_crl(tpath("crl-badsig.pem"), c_ca, k_other, -3600, 86400, rev);
  }
  write_file(tpath("crl-garbage.pem"), "\x30\x82garbage, not a CRL", 21);
  {
    FILE *f = fopen(tpath("ocsp.key"), "w");
    FILE *g = fopen(tpath("ca.key"), "w");

    if (!f || !g || !PEM_write_PrivateKey(f, k_ocsp, NULL, NULL, 0, 0, NULL) ||
        !PEM_write_PrivateKey(g, k_ca, NULL, NULL, 0, 0, NULL)) {
      perror("key file");
      exit(2);
    }
    fclose(f);
    fclose(g);
  }
}

static void free_pki(void) {
  EVP_PKEY *keys[] = {k_root,  k_ca, k_other_ca, k_ocsp,
                      k_other, k_ec, k_rsa,      k_weak};
  X509 *certs[] = {
      c_root,    c_ca,      c_other_ca, c_ocsp, c_ocsp_noeku, l_ec,
      l_rsa,     l_expired, l_future,   l_ku,   l_revoked,    l_ocsp_revoked,
      l_unknown, l_skew_nb, l_skew_na,  l_weak, l_noid,       l_other};
  size_t i;

  for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    EVP_PKEY_free(keys[i]);
  }
  for (i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
    X509_free(certs[i]);
  }
}

/* ---- verifiers ---------------------------------------------------------- */

typedef struct vopts {
  const char *crl; /* file name in tdir, or NULL */
  int ocsp_port;   /* 0: no OCSP */
  int skew;
  int cache;
} vopts;

static gw_verify *mk_verifier(const vopts *o) {
  gw_verify_config cfg;
  gw_verify *v = NULL;
  char url[64], err[256];
  int rv;

  gw_verify_config_init(&cfg);
  cfg.roots_file = tpath("root.pem");
  cfg.intermediates_file = tpath("ca.pem");
  cfg.crl_file = o->crl ? tpath(o->crl) : NULL;
  if (o->ocsp_port) {
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", o->ocsp_port);
    cfg.ocsp_url = url;
    cfg.ocsp_timeout_ms = 2000;
  }
  cfg.clock_skew_s = o->skew;
  cfg.cache_size = o->cache;
  cfg.clock = test_clock;
  rv = gw_verify_new(&v, &cfg, err, sizeof(err));
  if (rv != GW_OK) {
    printf("#   gw_verify_new: %s\n", err);
  }
  T_EQ_INT(rv, GW_OK);
  return v;
}

/* ---- signing helpers ---------------------------------------------------- */

static void sha256(const void *p, size_t n, unsigned char *md) {
  EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL);
}

/* Signs the 32-byte digest |md| with |k| in form |alg|; returns the length. */
static size_t sign_digest(EVP_PKEY *k, gw_verify_alg alg,
                          const unsigned char *md, unsigned char *out,
                          size_t cap) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
  unsigned char der[600];
  size_t len = sizeof(der);
  const unsigned char *p = der;
  ECDSA_SIG *es;

  EVP_PKEY_sign_init(ctx);
  EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256());
  if (alg == GW_VERIFY_RSA_PSS) {
    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32);
  }
  if (EVP_PKEY_sign(ctx, der, &len, md, 32) != 1) {
    fprintf(stderr, "sign failed\n");
    exit(2);
  }
  EVP_PKEY_CTX_free(ctx);
  if (alg != GW_VERIFY_ECDSA_RAW) {
    memcpy(out, der, len);
    return len;
  }
  es = d2i_ECDSA_SIG(NULL, &p, (long)len);
  BN_bn2binpad(ECDSA_SIG_get0_r(es), out, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), out + 32, 32);
  ECDSA_SIG_free(es);
  (void)cap;
  return 64;
}

/* CMS SignedData by |cert| over |data|, attached unless CMS_DETACHED is in
 * |flags|. Returns DER (OPENSSL_free). */
static unsigned char *cms_sign(X509 *cert, EVP_PKEY *k, const void *data,
                               size_t n, unsigned flags, size_t *len) {
  BIO *in = BIO_new_mem_buf(data, (int)n);
  CMS_ContentInfo *cms = CMS_sign(cert, k, NULL, in, CMS_BINARY | flags);
  unsigned char *der = NULL;
  int l = cms ? i2d_CMS_ContentInfo(cms, &der) : -1;

  if (l <= 0) {
    fprintf(stderr, "CMS_sign failed\n");
    exit(2);
  }
  *len = (size_t)l;
  CMS_ContentInfo_free(cms);
  BIO_free(in);
  return der;
}

/* CMS SignedData over a given SHA-256 digest, as a SIM signs
 * application/x-sha256: detached, messageDigest = |md| (or, with |noattr|,
 * no signed attributes and the signature over |md|). */
static unsigned char *cms_sign_digest(X509 *cert, EVP_PKEY *k,
                                      const unsigned char *md, int noattr,
                                      size_t *len) {
  CMS_ContentInfo *cms = CMS_sign(cert, k, NULL, NULL,
                                  CMS_BINARY | CMS_PARTIAL | CMS_DETACHED |
                                      (noattr ? CMS_NOATTR : 0));
  CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
  unsigned char *der = NULL, sig[600];
  size_t sl;
  int l;

  if (noattr) {
    sl = sign_digest(k, GW_VERIFY_ECDSA_DER, md, sig, sizeof(sig));
    ASN1_STRING_set(CMS_SignerInfo_get0_signature(si), sig, (int)sl);
  } else {
    CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
                                OBJ_nid2obj(NID_pkcs7_data), -1);
    CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest,
                                V_ASN1_OCTET_STRING, md, 32);
    if (CMS_SignerInfo_sign(si) != 1) {
      fprintf(stderr, "CMS_SignerInfo_sign failed\n");
      exit(2);
    }
  }
  l = i2d_CMS_ContentInfo(cms, &der);
  if (l <= 0) {
    fprintf(stderr, "i2d CMS failed\n");
    exit(2);
  }
  *len = (size_t)l;
  CMS_ContentInfo_free(cms);
  return der;
}

/* Flips one bit of the signature value inside a DER CMS. */
static void cms_tamper_sig(unsigned char **der, size_t *len) {
  const unsigned char *p = *der;
  CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)*len);
  CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
  ASN1_OCTET_STRING *sig = CMS_SignerInfo_get0_signature(si);
  unsigned char buf[600];
  int n = ASN1_STRING_length(sig);

  memcpy(buf, ASN1_STRING_get0_data(sig), (size_t)n);
  buf[n / 2] ^= 0x01;
  ASN1_STRING_set(sig, buf, n);
  OPENSSL_free(*der);
  *der = NULL;
  *len = (size_t)i2d_CMS_ContentInfo(cms, der);
  CMS_ContentInfo_free(cms);
}

static const char text[] = "Sign in to the Ministry of Manpower e-licensing "
                           "service: code 4721 "
                           "\xd8\xa7\xd9\x84\xd9\x85\xd8\xa3\xd8\xb0\xd9\x88"
                           "\xd9\x86\xd9\x8a\xd8\xa9";

/* Raw verification of |cert| with signature |sig| over |text|. */
static gw_verify_result raw(gw_verify *v, X509 *cert, gw_verify_alg alg,
                            const unsigned char *sig, size_t sl,
                            gw_verify_status *st) {
  size_t cl;
  unsigned char *c = der_of(cert, &cl);
  gw_verify_req rq = {.sig = sig,
                      .sig_len = sl,
                      .alg = alg,
                      .cert = c,
                      .cert_len = cl,
                      .data = text,
                      .data_len = strlen(text),
                      .data_kind = GW_VERIFY_DATA,
                      .expect_civil_id = CIVIL};
  gw_verify_result r = gw_verify_raw(v, &rq, st);

  if (r != GW_VERIFY_OK) {
    printf("#   (raw: %s: %s)\n", gw_verify_result_str(r), st->detail);
  }
  OPENSSL_free(c);
  return r;
}

/* Signs |text| with |k| (ECDSA r||s) and verifies it with |cert|. */
static gw_verify_result sign_and_raw(gw_verify *v, X509 *cert, EVP_PKEY *k,
                                     gw_verify_status *st) {
  unsigned char md[32], sig[64];

  sha256(text, strlen(text), md);
  sign_digest(k, GW_VERIFY_ECDSA_RAW, md, sig, sizeof(sig));
  return raw(v, cert, GW_VERIFY_ECDSA_RAW, sig, 64, st);
}

static gw_verify_result cert_only(gw_verify *v, X509 *cert,
                                  gw_verify_status *st) {
  size_t cl;
  unsigned char *c = der_of(cert, &cl);
  gw_verify_req rq = {.cert = c, .cert_len = cl};
  gw_verify_result r = gw_verify_cert(v, &rq, st);

  OPENSSL_free(c);
  return r;
}

/* ---- results and construction ------------------------------------------- */

static void test_result_table(void) {
  int r;

  for (r = 0; r < GW_VERIFY_RESULT_COUNT_; r++) {
    T_ASSERT(strcmp(gw_verify_result_str((gw_verify_result)r), "unknown"));
  }
  T_EQ_STR(gw_verify_result_str(GW_VERIFY_OK), "ok");
  T_EQ_STR(gw_verify_result_str(GW_VERIFY_REVOKED), "revoked");
  T_EQ_STR(gw_verify_result_str((gw_verify_result)99), "unknown");
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_OK), 502);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_BAD_SIGNATURE), 503);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_BAD_FORMAT), 503);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_REVOKED), 501);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_NO_CERT), 422);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_CRL_UNAVAILABLE), 423);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_OCSP_UNAVAILABLE), 423);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_OCSP_BAD_RESPONSE), 423);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_CRL_EXPIRED), 424);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_EXPIRED), 425);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_UNTRUSTED_CHAIN), 425);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_IDENTITY_MISMATCH), 425);
  T_EQ_INT(gw_verify_result_etsi(GW_VERIFY_INTERNAL), 900);
  T_EQ_INT(gw_verify_result_etsi((gw_verify_result)-1), 900);
}

static void test_new_rejects_bad_config(void) {
  static char dummy;
  gw_verify *sentinel = (gw_verify *)(void *)&dummy;
  gw_verify *v = sentinel;
  gw_verify_config cfg;
  char err[256];

  gw_verify_config_init(&cfg);
  T_EQ_INT(gw_verify_new(&v, &cfg, err, sizeof(err)), GW_ERR_INVALID);
  cfg.roots_file = tpath("nonexistent.pem");
  T_EQ_INT(gw_verify_new(&v, &cfg, err, sizeof(err)), GW_ERR_CONFIG);
  T_ASSERT(strstr(err, "nonexistent.pem") != NULL);
  cfg.roots_file = tpath("crl-garbage.pem");
  T_EQ_INT(gw_verify_new(&v, &cfg, err, sizeof(err)), GW_ERR_CONFIG);
  cfg.roots_file = tpath("ca.pem"); /* not self-signed */
  T_EQ_INT(gw_verify_new(&v, &cfg, err, sizeof(err)), GW_ERR_CONFIG);
  T_ASSERT(strstr(err, "self-signed") != NULL);
  cfg.roots_file = tpath("root.pem");
  cfg.intermediates_file = tpath("ocsp.pem"); /* not a CA */
  T_EQ_INT(gw_verify_new(&v, &cfg, err, sizeof(err)), GW_ERR_CONFIG);
  cfg.intermediates_file = tpath("ca.pem");
  cfg.clock_skew_s = -1;
  T_EQ_INT(gw_verify_new(&v, &cfg, err, sizeof(err)), GW_ERR_INVALID);
  cfg.clock_skew_s = 60;
  cfg.cache_size = 2000000;
  T_EQ_INT(gw_verify_new(&v, &cfg, err, sizeof(err)), GW_ERR_INVALID);
  cfg.cache_size = 10;
  cfg.ocsp_url = "ftp://127.0.0.1/";
  T_EQ_INT(gw_verify_new(&v, &cfg, err, sizeof(err)), GW_ERR_INVALID);
  cfg.ocsp_url = "http://127.0.0.1/";
  cfg.ocsp_timeout_ms = 10;
  T_EQ_INT(gw_verify_new(&v, &cfg, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(v == sentinel);
  /* an unreadable CRL does not fail creation; verifications fail closed */
  cfg.ocsp_url = NULL;
  cfg.crl_file = tpath("nonexistent-crl.pem");
  T_EQ_INT(gw_verify_new(&v, &cfg, err, sizeof(err)), GW_OK);
  T_ASSERT(v != sentinel);
  gw_verify_del(v);
  gw_verify_del(NULL);
}

/* ---- identity ----------------------------------------------------------- */

static void test_identity(void) {
  gw_verify_identity id;
  char detail[128], *pem = NULL;
  unsigned char *der;
  size_t n;
  BIO *b;
  long pl;

  der = der_of(l_ec, &n);
  T_EQ_INT(gw_verify_identity_parse(der, n, &id), GW_OK);
  T_EQ_STR(id.civil_id, CIVIL);
  T_EQ_STR(id.msisdn, MSISDN);
  T_EQ_STR(id.name, "Test Citizen");
  T_EQ_INT(gw_verify_identity_check(&id, CIVIL, MSISDN, detail, 128),
           GW_VERIFY_OK);
  T_EQ_INT(gw_verify_identity_check(&id, NULL, NULL, detail, 128),
           GW_VERIFY_OK);
  T_EQ_INT(gw_verify_identity_check(&id, "10000002", NULL, detail, 128),
           GW_VERIFY_IDENTITY_MISMATCH);
  T_ASSERT(strstr(detail, "10000002") != NULL);
  T_EQ_INT(gw_verify_identity_check(&id, NULL, "+96899000002", detail, 128),
           GW_VERIFY_IDENTITY_MISMATCH);
  T_EQ_INT(gw_verify_identity_check(&id, "", NULL, detail, 128),
           GW_VERIFY_IDENTITY_MISMATCH);
  T_EQ_INT(gw_verify_identity_check(&id, "PNOOM-" CIVIL, NULL, detail, 128),
           GW_VERIFY_IDENTITY_MISMATCH);
  /* truncated and garbage DER */
  T_EQ_INT(gw_verify_identity_parse(der, n / 2, &id), GW_ERR_INVALID);
  T_EQ_STR(id.civil_id, "");
  T_EQ_INT(gw_verify_identity_parse("\x30\x03\x01\x02\x03", 5, &id),
           GW_ERR_INVALID);
  T_EQ_INT(gw_verify_identity_parse("", 0, &id), GW_ERR_INVALID);
  OPENSSL_free(der);
  /* PEM */
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, l_rsa);
  pl = BIO_get_mem_data(b, &pem);
  T_EQ_INT(gw_verify_identity_parse(pem, (size_t)pl, &id), GW_OK);
  T_EQ_STR(id.civil_id, "10000002");
  T_EQ_STR(id.msisdn, "+96899000002");
  BIO_free(b);
  /* no identity in the certificate */
  der = der_of(l_noid, &n);
  T_EQ_INT(gw_verify_identity_parse(der, n, &id), GW_OK);
  T_EQ_STR(id.civil_id, "");
  T_EQ_STR(id.msisdn, "");
  T_EQ_INT(gw_verify_identity_check(&id, CIVIL, NULL, detail, 128),
           GW_VERIFY_IDENTITY_MISMATCH);
  T_ASSERT(strstr(detail, "no civil number") != NULL);
  T_EQ_INT(gw_verify_identity_check(&id, NULL, MSISDN, detail, 128),
           GW_VERIFY_IDENTITY_MISMATCH);
  OPENSSL_free(der);
}

/* ---- successes ---------------------------------------------------------- */

static void test_raw_ecdsa_ok(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char md[32], sig[128], *c;
  size_t sl, cl;

  if (!v) {
    return;
  }
  /* r || s over the text (hashed by the verifier) */
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(st.result, GW_VERIFY_OK);
  T_EQ_STR(st.detail, "");
  T_EQ_INT(st.have_cert, 1);
  T_EQ_STR(st.identity.civil_id, CIVIL);
  T_EQ_STR(st.identity.msisdn, MSISDN);
  /* DER over a given digest (application/x-sha256) */
  RAND_bytes(md, 32);
  sl = sign_digest(k_ec, GW_VERIFY_ECDSA_DER, md, sig, sizeof(sig));
  c = der_of(l_ec, &cl);
  {
    gw_verify_req rq = {.sig = sig,
                        .sig_len = sl,
                        .alg = GW_VERIFY_ECDSA_DER,
                        .cert = c,
                        .cert_len = cl,
                        .data = md,
                        .data_len = 32,
                        .data_kind = GW_VERIFY_DIGEST,
                        .expect_civil_id = CIVIL,
                        .expect_msisdn = MSISDN};

    T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_OK);
    /* the same signature read as over data (hashed again) fails */
    rq.data_kind = GW_VERIFY_DATA;
    T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
    /* a DER signature given as raw r||s */
    rq.data_kind = GW_VERIFY_DIGEST;
    rq.alg = GW_VERIFY_ECDSA_RAW;
    T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_BAD_FORMAT);
    /* an ECDSA signature presented as RSA */
    rq.alg = GW_VERIFY_RSA_PKCS1;
    T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_UNSUPPORTED);
    /* a digest that is not 32 bytes is a caller bug */
    rq.alg = GW_VERIFY_ECDSA_DER;
    rq.data_len = 31;
    T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_INTERNAL);
    T_EQ_INT(st.err, GW_ERR_INVALID);
  }
  OPENSSL_free(c);
  gw_verify_del(v);
}

static void test_raw_rsa_ok(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char md[32], sig[600], *c;
  size_t sl, cl;
  gw_verify_req rq;

  if (!v) {
    return;
  }
  sha256(text, strlen(text), md);
  c = der_of(l_rsa, &cl);
  memset(&rq, 0, sizeof(rq));
  rq.cert = c;
  rq.cert_len = cl;
  rq.data = text;
  rq.data_len = strlen(text);
  rq.data_kind = GW_VERIFY_DATA;
  rq.expect_msisdn = "+96899000002";
  /* PKCS#1 v1.5 over data */
  sl = sign_digest(k_rsa, GW_VERIFY_RSA_PKCS1, md, sig, sizeof(sig));
  rq.sig = sig;
  rq.sig_len = sl;
  rq.alg = GW_VERIFY_RSA_PKCS1;
  T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_OK);
  rq.alg = GW_VERIFY_RSA_PSS; /* PKCS#1 signature read as PSS */
  T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  /* PSS over data, and over the digest as is */
  sl = sign_digest(k_rsa, GW_VERIFY_RSA_PSS, md, sig, sizeof(sig));
  rq.sig_len = sl;
  T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_OK);
  rq.data = md;
  rq.data_len = 32;
  rq.data_kind = GW_VERIFY_DIGEST;
  T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_OK);
  rq.alg = GW_VERIFY_RSA_PKCS1;
  T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  OPENSSL_free(c);
  gw_verify_del(v);
}

static void test_cms_attached_text_ok(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char *der;
  size_t dl;
  char *b64, *pem = NULL;
  BIO *b;
  long pl;
  gw_verify_req rq = {.data = text,
                      .data_len = strlen(text),
                      .data_kind = GW_VERIFY_DATA,
                      .expect_civil_id = CIVIL,
                      .expect_msisdn = MSISDN};

  if (!v) {
    return;
  }
  der = cms_sign(l_ec, k_ec, text, strlen(text), 0, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  T_EQ_STR(st.identity.name, "Test Citizen");
  /* base64, as MSS_Signature Base64Signature carries it (here after a
   * newline, as XML text may be) */
  b64 = malloc(dl * 2 + 4);
  b64[0] = '\n';
  EVP_EncodeBlock((unsigned char *)b64 + 1, der, (int)dl);
  rq.sig = b64;
  rq.sig_len = strlen(b64);
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  free(b64);
  /* PEM */
  b = BIO_new(BIO_s_mem());
  PEM_write_bio(b, "PKCS7", "", der, (long)dl);
  pl = BIO_get_mem_data(b, &pem);
  rq.sig = pem;
  rq.sig_len = (size_t)pl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  BIO_free(b);
  OPENSSL_free(der);
  /* RSA signer, detached over the text */
  der = cms_sign(l_rsa, k_rsa, text, strlen(text), CMS_DETACHED, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  rq.expect_civil_id = "10000002";
  rq.expect_msisdn = NULL;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  OPENSSL_free(der);
  gw_verify_del(v);
}

static void test_cms_sha256_digest_ok(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char md[32], other[32], *der;
  size_t dl;
  gw_verify_req rq = {.data = md,
                      .data_len = 32,
                      .data_kind = GW_VERIFY_DIGEST,
                      .expect_civil_id = CIVIL};

  if (!v) {
    return;
  }
  RAND_bytes(md, 32);
  memcpy(other, md, 32);
  other[0] ^= 1;
  /* messageDigest = the digest the gateway asked for */
  der = cms_sign_digest(l_ec, k_ec, md, 0, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  rq.data = other;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  rq.data = md;
  OPENSSL_free(der);
  /* no signed attributes: the signature is over the digest itself */
  der = cms_sign_digest(l_ec, k_ec, md, 1, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  rq.data = other;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  rq.data = md;
  OPENSSL_free(der);
  /* the 32 bytes carried as attached content */
  der = cms_sign(l_ec, k_ec, md, 32, 0, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  rq.data_kind = GW_VERIFY_DATA; /* and read as plain data */
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  rq.data = other;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  OPENSSL_free(der);
  gw_verify_del(v);
}

/* ---- rejections --------------------------------------------------------- */

static void test_tampered_data(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char md[32], sig[64], *der;
  size_t dl;
  char changed[sizeof(text)];
  gw_verify_req rq = {
      .data = changed, .data_len = strlen(text), .data_kind = GW_VERIFY_DATA};

  if (!v) {
    return;
  }
  memcpy(changed, text, sizeof(text));
  changed[40] ^= 0x20;
  /* CMS with attached text: the data asked for differs */
  der = cms_sign(l_ec, k_ec, text, strlen(text), 0, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  T_ASSERT(strstr(st.detail, "differs") != NULL);
  rq.data_len = strlen(text) - 1; /* a prefix is not the data either */
  rq.data = text;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  OPENSSL_free(der);
  /* detached CMS */
  der = cms_sign(l_ec, k_ec, text, strlen(text), CMS_DETACHED, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  rq.data = changed;
  rq.data_len = strlen(text);
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  OPENSSL_free(der);
  /* raw */
  sha256(text, strlen(text), md);
  sign_digest(k_ec, GW_VERIFY_ECDSA_RAW, md, sig, sizeof(sig));
  {
    size_t cl;
    unsigned char *c = der_of(l_ec, &cl);
    gw_verify_req r2 = {.sig = sig,
                        .sig_len = 64,
                        .alg = GW_VERIFY_ECDSA_RAW,
                        .cert = c,
                        .cert_len = cl,
                        .data = changed,
                        .data_len = strlen(text)};

    T_EQ_INT(gw_verify_raw(v, &r2, &st), GW_VERIFY_BAD_SIGNATURE);
    OPENSSL_free(c);
  }
  gw_verify_del(v);
}

static void test_tampered_signature(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char md[32], sig[64], *der;
  size_t dl;
  gw_verify_req rq = {
      .data = text, .data_len = strlen(text), .data_kind = GW_VERIFY_DATA};

  if (!v) {
    return;
  }
  der = cms_sign(l_ec, k_ec, text, strlen(text), 0, &dl);
  cms_tamper_sig(&der, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  OPENSSL_free(der);
  sha256(text, strlen(text), md);
  sign_digest(k_ec, GW_VERIFY_ECDSA_RAW, md, sig, sizeof(sig));
  sig[10] ^= 0x80;
  T_EQ_INT(raw(v, l_ec, GW_VERIFY_ECDSA_RAW, sig, 64, &st),
           GW_VERIFY_BAD_SIGNATURE);
  gw_verify_del(v);
}

/* Replaces the signature value of a DER CMS without signed attributes by
 * a signature of |k| over SHA-256(|text|). */
static void cms_resign(unsigned char **der, size_t *len, EVP_PKEY *k) {
  const unsigned char *p = *der;
  CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)*len);
  CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
  unsigned char md[32], sig[128];
  size_t sl;

  sha256(text, strlen(text), md);
  sl = sign_digest(k, GW_VERIFY_ECDSA_DER, md, sig, sizeof(sig));
  ASN1_STRING_set(CMS_SignerInfo_get0_signature(si), sig, (int)sl);
  OPENSSL_free(*der);
  *der = NULL;
  *len = (size_t)i2d_CMS_ContentInfo(cms, der);
  CMS_ContentInfo_free(cms);
}

static void test_wrong_key(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char *der;
  size_t dl;
  gw_verify_req rq = {
      .data = text, .data_len = strlen(text), .data_kind = GW_VERIFY_DATA};

  if (!v) {
    return;
  }
  /* a valid certificate, a signature by another key */
  T_EQ_INT(sign_and_raw(v, l_ec, k_other, &st), GW_VERIFY_BAD_SIGNATURE);
  T_EQ_STR(st.identity.civil_id, CIVIL); /* the certificate did parse */
  /* CMS naming l_ec as signer, the signature value made by another key */
  der = cms_sign(l_ec, k_ec, text, strlen(text), CMS_NOATTR, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  cms_resign(&der, &dl, k_other);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  cms_resign(&der, &dl, k_ec); /* control: the same surgery, right key */
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  OPENSSL_free(der);
  gw_verify_del(v);
}

static void test_certificate_from_another_ca(void) {
  vopts o = {NULL, 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char *der;
  size_t dl;
  gw_verify_req rq = {
      .data = text, .data_len = strlen(text), .data_kind = GW_VERIFY_DATA};

  if (!v) {
    return;
  }
  T_EQ_INT(sign_and_raw(v, l_other, k_ec, &st), GW_VERIFY_UNTRUSTED_CHAIN);
  printf("#   detail: %s\n", st.detail);
  /* the unrelated CA inside the CMS does not help */
  der = cms_sign(l_other, k_ec, text, strlen(text), 0, &dl);
  {
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)dl);
    unsigned char *d2 = NULL;
    int l2;

    CMS_add1_cert(cms, c_other_ca);
    l2 = i2d_CMS_ContentInfo(cms, &d2);
    rq.sig = d2;
    rq.sig_len = (size_t)l2;
    T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_UNTRUSTED_CHAIN);
    OPENSSL_free(d2);
    CMS_ContentInfo_free(cms);
  }
  OPENSSL_free(der);
  /* the trust anchor itself as signer certificate */
  T_EQ_INT(cert_only(v, c_root, &st), GW_VERIFY_KEY_USAGE);
  gw_verify_del(v);
}

static void test_validity_period(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;

  if (!v) {
    return;
  }
  T_EQ_INT(sign_and_raw(v, l_expired, k_ec, &st), GW_VERIFY_EXPIRED);
  T_ASSERT(strstr(st.detail, "expired at") != NULL);
  T_EQ_INT(sign_and_raw(v, l_future, k_ec, &st), GW_VERIFY_NOT_YET_VALID);
  /* within the skew: 30 s early / 30 s late with 60 s allowed */
  T_EQ_INT(sign_and_raw(v, l_skew_nb, k_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(sign_and_raw(v, l_skew_na, k_ec, &st), GW_VERIFY_OK);
  gw_verify_del(v);
  o.skew = 0;
  v = mk_verifier(&o);
  if (!v) {
    return;
  }
  T_EQ_INT(sign_and_raw(v, l_skew_nb, k_ec, &st), GW_VERIFY_NOT_YET_VALID);
  T_EQ_INT(sign_and_raw(v, l_skew_na, k_ec, &st), GW_VERIFY_EXPIRED);
  /* the gateway's clock decides, not the signer's: a day later the good
   * certificate has expired */
  t_offset = 2 * 86400;
  T_EQ_INT(cert_only(v, l_ec, &st), GW_VERIFY_EXPIRED);
  t_offset = 0;
  gw_verify_del(v);
}

static void test_key_usage_and_key_policy(void) {
  vopts o = {NULL, 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char md[32], sig[600];
  size_t sl;

  if (!v) {
    return;
  }
  T_EQ_INT(sign_and_raw(v, l_ku, k_ec, &st), GW_VERIFY_KEY_USAGE);
  T_ASSERT(strstr(st.detail, "digitalSignature") != NULL);
  T_EQ_INT(cert_only(v, c_ca, &st), GW_VERIFY_KEY_USAGE); /* a CA */
  sha256(text, strlen(text), md);
  sl = sign_digest(k_weak, GW_VERIFY_RSA_PKCS1, md, sig, sizeof(sig));
  T_EQ_INT(raw(v, l_weak, GW_VERIFY_RSA_PKCS1, sig, sl, &st),
           GW_VERIFY_UNSUPPORTED);
  T_ASSERT(strstr(st.detail, "1024") != NULL);
  gw_verify_del(v);
}

static void test_wrong_identity(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char *der;
  size_t dl;
  gw_verify_req rq = {.data = text,
                      .data_len = strlen(text),
                      .data_kind = GW_VERIFY_DATA,
                      .expect_civil_id = CIVIL,
                      .expect_msisdn = "+96899000002"};

  if (!v) {
    return;
  }
  der = cms_sign(l_ec, k_ec, text, strlen(text), 0, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_IDENTITY_MISMATCH);
  T_ASSERT(strstr(st.detail, MSISDN) != NULL);
  rq.expect_msisdn = MSISDN;
  rq.expect_civil_id = "10000004";
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_IDENTITY_MISMATCH);
  rq.expect_civil_id = CIVIL;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  OPENSSL_free(der);
  gw_verify_del(v);
}

static void test_malformed_input(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char *der, *c, garbage[300], md[32], sig[64];
  size_t dl, cl;
  gw_verify_req rq = {
      .data = text, .data_len = strlen(text), .data_kind = GW_VERIFY_DATA};

  if (!v) {
    return;
  }
  der = cms_sign(l_ec, k_ec, text, strlen(text), 0, &dl);
  /* empty */
  rq.sig = der;
  rq.sig_len = 0;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_FORMAT);
  T_EQ_STR(st.detail, "empty signature");
  /* truncated DER */
  rq.sig_len = dl - 1;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_FORMAT);
  rq.sig_len = dl / 2;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_FORMAT);
  /* trailing bytes */
  {
    unsigned char *longer = malloc(dl + 1);

    memcpy(longer, der, dl);
    longer[dl] = 0;
    rq.sig = longer;
    rq.sig_len = dl + 1;
    T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_FORMAT);
    free(longer);
  }
  /* garbage: random DER-looking bytes, and bytes that are no encoding */
  RAND_bytes(garbage, sizeof(garbage));
  garbage[0] = 0x30;
  rq.sig = garbage;
  rq.sig_len = sizeof(garbage);
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_FORMAT);
  garbage[0] = 0x01;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_FORMAT);
  rq.sig = "bm90IGEgQ01T"; /* base64 of "not a CMS" */
  rq.sig_len = 12;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_FORMAT);
  /* over the cap */
  rq.sig = der;
  rq.sig_len = GW_VERIFY_CMS_MAX + 1;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_FORMAT);
  OPENSSL_free(der);
  /* CMS without the signer certificate */
  der = cms_sign(l_ec, k_ec, text, strlen(text), CMS_NOCERTS, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_NO_CERT);
  OPENSSL_free(der);
  /* raw: empty signature, empty / truncated / garbage certificate */
  sha256(text, strlen(text), md);
  sign_digest(k_ec, GW_VERIFY_ECDSA_RAW, md, sig, sizeof(sig));
  T_EQ_INT(raw(v, l_ec, GW_VERIFY_ECDSA_RAW, sig, 0, &st),
           GW_VERIFY_BAD_FORMAT);
  T_EQ_INT(raw(v, l_ec, GW_VERIFY_ECDSA_RAW, sig, 63, &st),
           GW_VERIFY_BAD_FORMAT);
  T_EQ_INT(raw(v, l_ec, GW_VERIFY_ECDSA_DER, sig, 64, &st),
           GW_VERIFY_BAD_FORMAT);
  c = der_of(l_ec, &cl);
  {
    gw_verify_req r2 = {.sig = sig,
                        .sig_len = 64,
                        .alg = GW_VERIFY_ECDSA_RAW,
                        .cert = c,
                        .cert_len = 0,
                        .data = text,
                        .data_len = strlen(text)};

    T_EQ_INT(gw_verify_raw(v, &r2, &st), GW_VERIFY_NO_CERT);
    r2.cert_len = cl - 10;
    T_EQ_INT(gw_verify_raw(v, &r2, &st), GW_VERIFY_BAD_CERT);
    T_EQ_INT(st.have_cert, 0);
    r2.cert = garbage;
    r2.cert_len = sizeof(garbage);
    garbage[0] = 0x30;
    T_EQ_INT(gw_verify_raw(v, &r2, &st), GW_VERIFY_BAD_CERT);
    r2.cert_len = GW_VERIFY_CERT_MAX + 1;
    T_EQ_INT(gw_verify_raw(v, &r2, &st), GW_VERIFY_BAD_CERT);
  }
  OPENSSL_free(c);
  /* caller bugs: NULL arguments */
  T_EQ_INT(gw_verify_cms(NULL, &rq, &st), GW_VERIFY_INTERNAL);
  T_EQ_INT(gw_verify_cms(v, NULL, &st), GW_VERIFY_INTERNAL);
  T_EQ_INT(gw_verify_cms(v, &rq, NULL), GW_VERIFY_INTERNAL);
  gw_verify_del(v);
}

/* ---- revocation by CRL -------------------------------------------------- */

static void test_crl_revoked(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_status st;
  unsigned char *der;
  size_t dl;
  gw_verify_req rq = {
      .data = text, .data_len = strlen(text), .data_kind = GW_VERIFY_DATA};

  if (!v) {
    return;
  }
  T_EQ_INT(sign_and_raw(v, l_revoked, k_ec, &st), GW_VERIFY_REVOKED);
  T_ASSERT(strstr(st.detail, "1006") != NULL);
  T_ASSERT(strstr(st.detail, "keyCompromise") != NULL);
  der = cms_sign(l_revoked, k_ec, text, strlen(text), 0, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_REVOKED);
  T_EQ_INT(gw_verify_result_etsi(st.result), 501);
  OPENSSL_free(der);
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
  gw_verify_del(v);
}

static void test_crl_fails_closed(void) {
  static const char *const files[] = {"crl-stale.pem", "crl-badsig.pem",
                                      "crl-garbage.pem", "crl-missing.pem"};
  static const gw_verify_result want[] = {
      GW_VERIFY_CRL_EXPIRED, GW_VERIFY_CRL_UNAVAILABLE,
      GW_VERIFY_CRL_UNAVAILABLE, GW_VERIFY_CRL_UNAVAILABLE};
  gw_verify_status st;
  size_t i;

  for (i = 0; i < 4; i++) {
    vopts o = {files[i], 0, 60, 100};
    gw_verify *v = mk_verifier(&o);

    if (!v) {
      continue;
    }
    T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), want[i]);
    printf("#   %s: %s\n", files[i], st.detail);
    /* a second try is not served from any cache */
    T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), want[i]);
    T_EQ_INT(st.cached, 0);
    gw_verify_del(v);
  }
  {
    vopts o = {"crl-badsig.pem", 0, 60, 100};
    gw_verify *v = mk_verifier(&o);

    if (v) {
      T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_CRL_UNAVAILABLE);
      T_ASSERT(strstr(st.detail, "not signed by its issuer") != NULL);
      T_EQ_INT(gw_verify_result_etsi(st.result), 423);
      gw_verify_del(v);
    }
  }
}

/* ---- the cache ---------------------------------------------------------- */

static void test_cache_hits(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_stats s0, s1;
  gw_verify_status st;

  if (!v) {
    return;
  }
  gw_verify_get_stats(v, &s0);
  T_EQ_INT(s0.cache_hits, 0);
  T_EQ_INT(s0.crl_reloads, 1);
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 0);
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 1);
  gw_verify_get_stats(v, &s1);
  T_EQ_INT(s1.cache_misses, 1);
  T_EQ_INT(s1.cache_hits, 1);
  T_EQ_INT(s1.cache_entries, 1);
  /* a cache hit never skips the signature */
  T_EQ_INT(sign_and_raw(v, l_ec, k_other, &st), GW_VERIFY_BAD_SIGNATURE);
  /* nor the identity */
  {
    size_t cl;
    unsigned char *c = der_of(l_ec, &cl);
    gw_verify_req rq = {.cert = c, .cert_len = cl, .expect_civil_id = "1"};

    T_EQ_INT(gw_verify_cert(v, &rq, &st), GW_VERIFY_IDENTITY_MISMATCH);
    OPENSSL_free(c);
  }
  /* rejections are not cached */
  T_EQ_INT(sign_and_raw(v, l_revoked, k_ec, &st), GW_VERIFY_REVOKED);
  T_EQ_INT(sign_and_raw(v, l_revoked, k_ec, &st), GW_VERIFY_REVOKED);
  gw_verify_get_stats(v, &s1);
  T_EQ_INT(s1.cache_entries, 1);
  gw_verify_cache_clear(v);
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 0);
  gw_verify_del(v);
  /* cache off */
  o.cache = 0;
  v = mk_verifier(&o);
  if (!v) {
    return;
  }
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 0);
  gw_verify_get_stats(v, &s1);
  T_EQ_INT(s1.cache_hits, 0);
  T_EQ_INT(s1.cache_misses, 2);
  gw_verify_del(v);
}

static void test_cache_bound_and_lifetime(void) {
  vopts o = {NULL, 0, 60, 2};
  gw_verify *v = mk_verifier(&o);
  gw_verify_stats s;
  gw_verify_status st;

  if (!v) {
    return;
  }
  T_EQ_INT(cert_only(v, l_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(cert_only(v, l_rsa, &st), GW_VERIFY_OK);
  T_EQ_INT(cert_only(v, l_ec, &st), GW_VERIFY_OK); /* l_ec most recent */
  T_EQ_INT(st.cached, 1);
  T_EQ_INT(cert_only(v, l_unknown, &st), GW_VERIFY_OK); /* evicts l_rsa */
  gw_verify_get_stats(v, &s);
  T_EQ_INT(s.cache_entries, 2);
  T_EQ_INT(s.cache_evictions, 1);
  T_EQ_INT(cert_only(v, l_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 1);
  T_EQ_INT(cert_only(v, l_rsa, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 0);
  /* past the lifetime (default 300 s) the entry is checked again */
  t_offset = 301;
  T_EQ_INT(cert_only(v, l_rsa, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 0);
  T_EQ_INT(cert_only(v, l_rsa, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 1);
  t_offset = 0;
  gw_verify_del(v);
}

static void test_crl_reload_drops_cache(void) {
  vopts o = {"crl-live.pem", 0, 60, 100};
  X509 *rev1[] = {l_revoked, NULL}, *rev2[] = {l_revoked, l_ec, NULL};
  gw_verify_stats s;
  gw_verify_status st;
  gw_verify *v;

  write_crl(tpath("crl-live.pem"), c_ca, k_ca, -3600, 86400, rev1);
  v = mk_verifier(&o);
  if (!v) {
    return;
  }
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 1);
  /* the administrator publishes a CRL that revokes l_ec (new inode) */
  write_crl(tpath("crl-next.pem"), c_ca, k_ca, -1800, 86400, rev2);
  T_EQ_INT(rename(tpath("crl-next.pem"), tpath("crl-live.pem")), 0);
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_REVOKED);
  T_EQ_INT(st.cached, 0);
  gw_verify_get_stats(v, &s);
  T_EQ_INT(s.crl_reloads, 2);
  T_EQ_INT(s.cache_entries, 0);
  /* rewritten in place: the file's size and time change */
  write_crl(tpath("crl-live.pem"), c_ca, k_ca, -900, 86400, rev1);
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
  /* replaced by garbage: fails closed, cache or not */
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 1);
  write_file(tpath("crl-live.pem"), "garbage", 7);
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_CRL_UNAVAILABLE);
  gw_verify_get_stats(v, &s);
  T_EQ_INT(s.crl_reloads, 4);
  gw_verify_del(v);
}

/* The cache never outlives the CRL's nextUpdate. */
static void test_cache_bounded_by_crl(void) {
  vopts o = {"crl-short.pem", 0, 0, 100};
  X509 *rev[] = {l_revoked, NULL};
  gw_verify_status st;
  gw_verify *v;

  write_crl(tpath("crl-short.pem"), c_ca, k_ca, -3600, 100, rev);
  v = mk_verifier(&o);
  if (!v) {
    return;
  }
  T_EQ_INT(cert_only(v, l_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(cert_only(v, l_ec, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 1);
  t_offset = 150; /* past nextUpdate, within the cache lifetime */
  T_EQ_INT(cert_only(v, l_ec, &st), GW_VERIFY_CRL_EXPIRED);
  t_offset = 0;
  gw_verify_del(v);
}

/* The CMS hot path: a cached signer certificate is not parsed again; every
 * check on the signature still runs, and a certificate that merely shares
 * the cached one's issuer and serial gains nothing. */
static void test_cms_cached_path(void) {
  vopts o = {"crl-fast.pem", 0, 60, 100};
  X509 *rev0[] = {l_revoked, NULL}, *rev1[] = {l_revoked, l_ec, NULL};
  gw_verify_stats s;
  gw_verify_status st;
  unsigned char *der, *d2 = NULL, md[32];
  char changed[sizeof(text)];
  size_t dl;
  int l2;
  gw_verify *v;
  gw_verify_req rq = {.data = text,
                      .data_len = strlen(text),
                      .data_kind = GW_VERIFY_DATA,
                      .expect_civil_id = CIVIL};

  write_crl(tpath("crl-fast.pem"), c_ca, k_ca, -3600, 86400, rev0);
  v = mk_verifier(&o);
  if (!v) {
    return;
  }
  der = cms_sign(l_ec, k_ec, text, strlen(text), 0, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 0);
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 1);
  T_EQ_STR(st.identity.msisdn, MSISDN);
  gw_verify_get_stats(v, &s);
  T_EQ_INT(s.cache_hits, 1);
  T_EQ_INT(s.cache_misses, 1);
  /* rejections on the hot path */
  memcpy(changed, text, sizeof(text));
  changed[3] ^= 1;
  rq.data = changed;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  T_EQ_INT(st.cached, 1);
  rq.data = text;
  rq.expect_civil_id = "10000002";
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_IDENTITY_MISMATCH);
  rq.expect_civil_id = CIVIL;
  cms_tamper_sig(&der, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  T_EQ_INT(st.cached, 1);
  OPENSSL_free(der);
  der = cms_sign(l_ec, k_ec, text, strlen(text), CMS_NOATTR, &dl);
  cms_resign(&der, &dl, k_other);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  T_EQ_INT(st.cached, 1);
  OPENSSL_free(der);
  /* x-sha256 through the hot path */
  RAND_bytes(md, 32);
  der = cms_sign_digest(l_ec, k_ec, md, 0, &dl);
  {
    gw_verify_req rd = {.sig = der,
                        .sig_len = dl,
                        .data = md,
                        .data_len = 32,
                        .data_kind = GW_VERIFY_DIGEST};

    T_EQ_INT(gw_verify_cms(v, &rd, &st), GW_VERIFY_OK);
    T_EQ_INT(st.cached, 1);
  }
  OPENSSL_free(der);
  /* the issuing CA inside the CMS, before the signer's certificate */
  der = cms_sign(l_ec, k_ec, text, strlen(text), CMS_NOCERTS, &dl);
  {
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)dl);

    CMS_add1_cert(cms, c_ca);
    CMS_add1_cert(cms, l_ec);
    l2 = i2d_CMS_ContentInfo(cms, &d2);
    CMS_ContentInfo_free(cms);
  }
  rq.sig = d2;
  rq.sig_len = (size_t)l2;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 1);
  OPENSSL_free(d2);
  d2 = NULL;
  OPENSSL_free(der);
  /* a twin of l_ec (same issuer name and serial, the forger's key, not
   * signed by the CA), signing, with the genuine l_ec also in the CMS */
  {
    spec t = {c_ca,    k_other, k_other, 0x1001, "Test Citizen",
              CIVIL,   MSISDN,  -3600,   86400,  "critical,CA:FALSE",
              LEAF_KU, NULL};
    X509 *twin = mk_cert(&t);
    const unsigned char *p;
    CMS_ContentInfo *cms;

    der = cms_sign(twin, k_other, text, strlen(text), 0, &dl);
    p = der;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)dl);
    CMS_add1_cert(cms, l_ec);
    l2 = i2d_CMS_ContentInfo(cms, &d2);
    CMS_ContentInfo_free(cms);
    rq.sig = d2;
    rq.sig_len = (size_t)l2;
    /* l_ec is cached: it is taken as the signer, and the signature fails */
    T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
    gw_verify_cache_clear(v);
    /* not cached: whichever matching certificate comes first in the DER
     * SET OF (an order set by the bytes) is the signer: l_ec, whose key
     * does not verify, or the twin, whose chain fails */
    {
      gw_verify_result r = gw_verify_cms(v, &rq, &st);

      T_ASSERT(r == GW_VERIFY_BAD_SIGNATURE || r == GW_VERIFY_UNTRUSTED_CHAIN);
    }
    OPENSSL_free(d2);
    d2 = NULL;
    OPENSSL_free(der);
    X509_free(twin);
  }
  /* a new CRL revoking l_ec: the hot path no longer answers */
  der = cms_sign(l_ec, k_ec, text, strlen(text), 0, &dl);
  rq.sig = der;
  rq.sig_len = dl;
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_OK);
  T_EQ_INT(st.cached, 1);
  write_crl(tpath("crl-fast.pem"), c_ca, k_ca, -1800, 86400, rev1);
  T_EQ_INT(gw_verify_cms(v, &rq, &st), GW_VERIFY_REVOKED);
  T_EQ_INT(st.cached, 0);
  OPENSSL_free(der);
  gw_verify_del(v);
}

/* ---- OCSP against `openssl ocsp` ---------------------------------------- */

typedef struct responder {
  pid_t pid;
  int port;
  int out; /* its stdout: kept open, or its next write would kill it */
} responder;

static void write_index(void) {
  X509 *good[] = {l_ec, l_rsa, l_revoked, l_skew_nb, NULL};
  char line[512], subj[256], *hex;
  FILE *f = fopen(tpath("index.txt"), "w");
  BIGNUM *bn;
  size_t i;

  if (!f) {
    perror("index.txt");
    exit(2);
  }
  for (i = 0; good[i]; i++) {
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(good[i]), NULL);
    hex = BN_bn2hex(bn);
    X509_NAME_oneline(X509_get_subject_name(good[i]), subj, sizeof(subj));
    snprintf(line, sizeof(line), "V\t301231235959Z\t\t%s\tunknown\t%s\n", hex,
             subj);
    fputs(line, f);
    OPENSSL_free(hex);
    BN_free(bn);
  }
  bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(l_ocsp_revoked), NULL);
  hex = BN_bn2hex(bn);
  X509_NAME_oneline(X509_get_subject_name(l_ocsp_revoked), subj, sizeof(subj));
  snprintf(line, sizeof(line),
           "R\t301231235959Z\t240101000000Z,keyCompromise\t%s\tunknown\t%s\n",
           hex, subj);
  fputs(line, f);
  OPENSSL_free(hex);
  BN_free(bn);
  fclose(f);
  /* Several leaves share a subject (as a citizen's two SIMs do): without
   * this, `openssl ocsp` refuses the index ("Error creating name index"). */
  write_file(tpath("index.txt.attr"), "unique_subject = no\n", 20);
}

/* Starts `openssl ocsp` on a free port, signing with |rsigner|/|rkey|
 * (file names in tdir). Waits at most 5 s for it to listen. Its stderr
 * goes to /dev/null, or to the file named by $OCSP_LOG when debugging. */
static int responder_start(responder *r, const char *rsigner,
                           const char *rkey) {
  char buf[256] = "", *colon;
  struct pollfd pfd;
  size_t got = 0;
  int fds[2], i;
  ssize_t n;

  r->pid = -1;
  r->port = 0;
  r->out = -1;
  if (pipe(fds) != 0) {
    return -1;
  }
  fflush(stdout);
  r->pid = fork();
  if (r->pid == 0) {
    int devnull = open(getenv("OCSP_LOG") ? getenv("OCSP_LOG") : "/dev/null",
                       O_WRONLY | O_CREAT | O_APPEND, 0600);

    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    dup2(fds[1], 1);
    dup2(devnull, 2);
    close(fds[0]);
    close(fds[1]);
    execlp("openssl", "openssl", "ocsp", "-index", tpath("index.txt"), "-port",
           "0", "-rsigner", tpath(rsigner), "-rkey", tpath(rkey), "-CA",
           tpath("ca.pem"), "-nmin", "5", "-nrequest", "100", (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  if (r->pid < 0) {
    close(fds[0]);
    return -1;
  }
  /* "ACCEPT [::]:PORT PID=N" */
  pfd.fd = fds[0];
  pfd.events = POLLIN;
  for (i = 0; i < 50 && !strchr(buf, '\n'); i++) {
    buf[got] = '\0';
    if (poll(&pfd, 1, 100) <= 0) {
      continue;
    }
    n = read(fds[0], buf + got, sizeof(buf) - 1 - got);
    if (n <= 0) {
      break;
    }
    got += (size_t)n;
    buf[got] = '\0';
  }
  buf[got] = '\0';
  r->out = fds[0];
  colon = strstr(buf, "ACCEPT")
              ? strchr(strchr(buf, ']') ? strchr(buf, ']') : buf, ':')
              : NULL;
  if (colon) {
    r->port = atoi(colon + 1);
  }
  if (r->port <= 0) {
    printf("#   openssl ocsp did not start: \"%s\"\n", buf);
    return -1;
  }
  return 0;
}

static void responder_stop(responder *r) {
  int i, status;

  if (r->out >= 0) {
    close(r->out);
    r->out = -1;
  }
  if (r->pid <= 0) {
    return;
  }
  kill(r->pid, SIGTERM);
  for (i = 0; i < 100; i++) {
    if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
      r->pid = -1;
      return;
    }
    usleep(10000);
  }
  kill(r->pid, SIGKILL);
  waitpid(r->pid, &status, 0);
  r->pid = -1;
}

/* A loopback port where nothing listens. */
static int dead_port(void) {
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  int s = socket(AF_INET, SOCK_STREAM, 0), port;

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, (struct sockaddr *)&sa, sizeof(sa));
  getsockname(s, (struct sockaddr *)&sa, &sl);
  port = ntohs(sa.sin_port);
  close(s);
  return port;
}

static void test_ocsp_good_and_revoked(void) {
  responder r;
  gw_verify_stats s;
  gw_verify_status st;
  gw_verify *v;

  T_EQ_INT(responder_start(&r, "ocsp.pem", "ocsp.key"), 0);
  if (r.port > 0) {
    vopts o = {NULL, r.port, 60, 100};

    v = mk_verifier(&o);
    if (v) {
      T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
      T_EQ_INT(sign_and_raw(v, l_ocsp_revoked, k_ec, &st), GW_VERIFY_REVOKED);
      printf("#   %s\n", st.detail);
      T_ASSERT(strstr(st.detail, "OCSP") != NULL);
      T_EQ_INT(sign_and_raw(v, l_unknown, k_ec, &st),
               GW_VERIFY_OCSP_BAD_RESPONSE);
      /* the good answer is cached: no second query */
      T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OK);
      T_EQ_INT(st.cached, 1);
      gw_verify_get_stats(v, &s);
      T_EQ_INT(s.ocsp_queries, 3);
      T_EQ_INT(s.ocsp_failures, 1);
      gw_verify_del(v);
    }
    /* with the CRL as well: both must pass */
    {
      vopts o2 = {"crl.pem", r.port, 60, 100};

      v = mk_verifier(&o2);
      if (v) {
        T_EQ_INT(sign_and_raw(v, l_revoked, k_ec, &st), GW_VERIFY_REVOKED);
        T_EQ_INT(sign_and_raw(v, l_ocsp_revoked, k_ec, &st), GW_VERIFY_REVOKED);
        T_EQ_INT(cert_only(v, l_rsa, &st), GW_VERIFY_OK);
        gw_verify_del(v);
      }
    }
  }
  responder_stop(&r);
}

/* The issuer itself may sign responses; a certificate of the issuer's
 * without id-kp-OCSPSigning may not. */
static void test_ocsp_responder_authority(void) {
  responder r;
  gw_verify_status st;
  gw_verify *v;

  T_EQ_INT(responder_start(&r, "ca.pem", "ca.key"), 0);
  if (r.port > 0) {
    vopts o = {NULL, r.port, 60, 100};

    v = mk_verifier(&o);
    if (v) {
      T_EQ_INT(cert_only(v, l_ec, &st), GW_VERIFY_OK);
      T_EQ_INT(cert_only(v, l_ocsp_revoked, &st), GW_VERIFY_REVOKED);
      gw_verify_del(v);
    }
  }
  responder_stop(&r);
  T_EQ_INT(responder_start(&r, "ocsp-noeku.pem", "ocsp.key"), 0);
  if (r.port > 0) {
    vopts o = {NULL, r.port, 60, 100};

    v = mk_verifier(&o);
    if (v) {
      T_EQ_INT(cert_only(v, l_ec, &st), GW_VERIFY_OCSP_BAD_RESPONSE);
      printf("#   %s\n", st.detail);
      T_ASSERT(strstr(st.detail, "OCSPSigning") != NULL);
      gw_verify_del(v);
    }
  }
  responder_stop(&r);
}

static void test_ocsp_responder_down(void) {
  vopts o = {NULL, dead_port(), 60, 100};
  gw_verify *v = mk_verifier(&o);
  gw_verify_stats s;
  gw_verify_status st;
  time_t t0 = time(NULL);

  if (!v) {
    return;
  }
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OCSP_UNAVAILABLE);
  printf("#   %s\n", st.detail);
  T_EQ_INT(gw_verify_result_etsi(st.result), 423);
  T_EQ_INT(sign_and_raw(v, l_ec, k_ec, &st), GW_VERIFY_OCSP_UNAVAILABLE);
  T_ASSERT(time(NULL) - t0 < 5);
  gw_verify_get_stats(v, &s);
  T_EQ_INT(s.ocsp_queries, 2);
  T_EQ_INT(s.ocsp_failures, 2);
  T_EQ_INT(s.cache_entries, 0);
  gw_verify_del(v);
}

/* ---- threads ------------------------------------------------------------ */

typedef struct worker {
  gw_verify *v;
  unsigned char *sig;
  size_t sl;
  int fails;
} worker;

static void *worker_run(void *arg) {
  worker *w = arg;
  gw_verify_status st;
  size_t cl;
  unsigned char *c = der_of(l_ec, &cl);
  gw_verify_req rq = {.sig = w->sig,
                      .sig_len = w->sl,
                      .alg = GW_VERIFY_ECDSA_RAW,
                      .cert = c,
                      .cert_len = cl,
                      .data = text,
                      .data_len = strlen(text),
                      .expect_civil_id = CIVIL};
  int i;

  for (i = 0; i < 200; i++) {
    if (gw_verify_raw(w->v, &rq, &st) != GW_VERIFY_OK) {
      w->fails++;
    }
    if (i % 50 == 0) {
      gw_verify_cache_clear(w->v);
    }
  }
  OPENSSL_free(c);
  return NULL;
}

static void test_concurrent_verifications(void) {
  vopts o = {"crl.pem", 0, 60, 100};
  gw_verify *v = mk_verifier(&o);
  unsigned char md[32], sig[64];
  pthread_t th[4];
  worker w[4];
  gw_verify_stats s;
  int i;

  if (!v) {
    return;
  }
  sha256(text, strlen(text), md);
  sign_digest(k_ec, GW_VERIFY_ECDSA_RAW, md, sig, sizeof(sig));
  for (i = 0; i < 4; i++) {
    w[i].v = v;
    w[i].sig = sig;
    w[i].sl = 64;
    w[i].fails = 0;
    pthread_create(&th[i], NULL, worker_run, &w[i]);
  }
  for (i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    T_EQ_INT(w[i].fails, 0);
  }
  gw_verify_get_stats(v, &s);
  T_EQ_INT(s.cache_hits + s.cache_misses, 800);
  T_ASSERT(s.cache_hits > 700);
  gw_verify_del(v);
}

int main(void) {
  snprintf(tdir, sizeof(tdir), "/tmp/gw_verify_test.XXXXXX");
  if (!mkdtemp(tdir)) {
    perror("mkdtemp");
    return 2;
  }
  build_pki();
  write_index();

  T_RUN(test_result_table);
  T_RUN(test_new_rejects_bad_config);
  T_RUN(test_identity);
  T_RUN(test_raw_ecdsa_ok);
  T_RUN(test_raw_rsa_ok);
  T_RUN(test_cms_attached_text_ok);
  T_RUN(test_cms_sha256_digest_ok);
  T_RUN(test_tampered_data);
  T_RUN(test_tampered_signature);
  T_RUN(test_wrong_key);
  T_RUN(test_certificate_from_another_ca);
  T_RUN(test_validity_period);
  T_RUN(test_key_usage_and_key_policy);
  T_RUN(test_wrong_identity);
  T_RUN(test_malformed_input);
  T_RUN(test_crl_revoked);
  T_RUN(test_crl_fails_closed);
  T_RUN(test_cache_hits);
  T_RUN(test_cache_bound_and_lifetime);
  T_RUN(test_crl_reload_drops_cache);
  T_RUN(test_cache_bounded_by_crl);
  T_RUN(test_cms_cached_path);
  T_RUN(test_ocsp_good_and_revoked);
  T_RUN(test_ocsp_responder_authority);
  T_RUN(test_ocsp_responder_down);
  T_RUN(test_concurrent_verifications);

  free_pki();
  tdir_remove();
  return T_DONE();
}
