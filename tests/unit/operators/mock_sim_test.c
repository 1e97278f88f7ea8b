/* mock_sim_test.c — operators/mock_sim.c against a real SoftHSM 2 in a
 * private token directory: SIM tokens made as mpkictl makes them (label =
 * MSISDN, SO PIN = PUK, EC P-256 key "mpki-auth"), certificates from a test
 * CA made in memory. Every signature is checked by the gateway's own
 * verifier (gw_verify) and, for CMS, by OpenSSL's CMS_verify against the
 * test root: what the mock sends is what the gateway accepts. The retry
 * counters are checked through the token (wrong PINs really are refused by
 * it), across a new SIM bank on the same state directory (a restart), and
 * under concurrent wrong PINs. */
#include "harness.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "gw_err.h"
#include "gw_pki.h"
#include "gw_verify.h"
#include "mock_sim.h"
#include "p11.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define PIN "1234"
#define PUK "12345678"
#define SIM1 "+96899000001"
#define SIM2 "+96899000002"
#define SIM3 "+96899000003"
#define NOSIM "+96899000077"

static char dir[64];
static char state_dir[128];
static p11_module *mod;
static EVP_PKEY *ca_key;
static X509 *ca_cert;
static char roots_path[128];
static gw_verify *verifier;
/* DER certificates of the three SIMs. */
static unsigned char *cert_der[3];
static int cert_len[3];

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int make_sim(int i, const char *msisdn) {
  static const uint8_t id[] = {0x01};
  p11_token *t;
  p11_key *k;
  EVP_PKEY *pub = NULL;
  X509 *cert = NULL;
  gw_pki_holder h = {
      .msisdn = msisdn, .civil_id = "10000001", .name = "Test Subscriber"};

  if (p11_token_init(mod, msisdn, PUK, PIN, &t) != P11_OK ||
      p11_keygen(t, PIN, P11_KEY_EC_P256, MOCK_SIM_KEY_LABEL, id, sizeof(id)) !=
          P11_OK ||
      p11_key_find(t, PIN, MOCK_SIM_KEY_LABEL, &k) != P11_OK) {
    return -1;
  }
  if (p11_key_public(k, &pub) != P11_OK) {
    p11_key_del(k);
    return -1;
  }
  p11_key_del(k);
  if (gw_pki_make_sim_cert(ca_cert, ca_key, pub, &h, NULL, 30, &cert) !=
      GW_OK) {
    EVP_PKEY_free(pub);
    return -1;
  }
  EVP_PKEY_free(pub);
  cert_der[i] = NULL;
  cert_len[i] = i2d_X509(cert, &cert_der[i]);
  X509_free(cert);
  return cert_len[i] > 0 ? 0 : -1;
}

static int setup(void) {
  char path[160];
  FILE *f;
  gw_verify_config vc;
  char err[256];

  snprintf(dir, sizeof(dir), "/tmp/mocksimtest.XXXXXX");
  if (!mkdtemp(dir)) {
    return -1;
  }
  snprintf(path, sizeof(path), "%s/tokens", dir);
  if (mkdir(path, 0700) != 0) {
    return -1;
  }
  snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
  f = fopen(path, "w");
  if (!f) {
    return -1;
  }
  fprintf(f,
          "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
          "log.level = ERROR\nslots.removable = false\n",
          dir);
  fclose(f);
  setenv("SOFTHSM2_CONF", path, 1);
  if (p11_module_new(&mod, MODULE) != P11_OK) {
    return -1;
  }
  ca_key = EVP_EC_gen("P-256");
  if (!ca_key || gw_pki_make_root(ca_key, 30, &ca_cert) != GW_OK) {
    return -1;
  }
  snprintf(roots_path, sizeof(roots_path), "%s/root.pem", dir);
  f = fopen(roots_path, "w");
  if (!f || PEM_write_X509(f, ca_cert) != 1) {
    return -1;
  }
  fclose(f);
  if (make_sim(0, SIM1) != 0 || make_sim(1, SIM2) != 0 ||
      make_sim(2, SIM3) != 0) {
    return -1;
  }
  gw_verify_config_init(&vc);
  vc.roots_file = roots_path;
  vc.cache_size = 0;
  if (gw_verify_new(&verifier, &vc, err, sizeof(err)) != GW_OK) {
    printf("# gw_verify_new: %s\n", err);
    return -1;
  }
  snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
  return 0;
}

static void teardown(void) {
  gw_verify_del(verifier);
  for (int i = 0; i < 3; i++) {
    OPENSSL_free(cert_der[i]);
  }
  X509_free(ca_cert);
  EVP_PKEY_free(ca_key);
  p11_module_del(mod);
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static mock_sims *bank(void) {
  mock_sims *s = NULL;
  char err[256];

  if (mock_sims_new(&s, mod, state_dir, err, sizeof(err)) != GW_OK) {
    printf("#   mock_sims_new: %s\n", err);
  }
  return s;
}

/* Signs with SIM |i|; returns the outcome or -1 on an error return. */
static int sign(mock_sims *s, int i, const char *msisdn, const char *pin,
                mock_sim_data_kind kind, const void *data, size_t n,
                mock_sim_format fmt, uint8_t *sig, size_t *siglen, int *left) {
  mock_sim_outcome o = MOCK_SIM_FAILED;
  int rv;

  *siglen = MOCK_SIM_SIG_MAX;
  rv = mock_sim_sign(s, msisdn, pin, kind, data, n, fmt, cert_der[i],
                     (size_t)cert_len[i], NULL, 0, sig, siglen, &o, left);
  if (rv != GW_OK) {
    printf("#   mock_sim_sign: %s\n", gw_strerror(rv));
    return -1;
  }
  return (int)o;
}

/* CMS_verify against the test root, with the content given when detached;
 * returns 1 when it verifies and (attached) the content is |data|. */
static int openssl_cms_ok(const uint8_t *sig, size_t len, const void *data,
                          size_t n, int detached) {
  const unsigned char *p = sig;
  CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
  X509_STORE *st = X509_STORE_new();
  BIO *in = detached ? BIO_new_mem_buf(data, (int)n) : NULL;
  BIO *out = BIO_new(BIO_s_mem());
  char *got = NULL;
  long gotlen;
  int ok = 0;

  if (cms && st && X509_STORE_add_cert(st, ca_cert) == 1 &&
      CMS_verify(cms, NULL, st, in, out, CMS_BINARY) == 1) {
    gotlen = BIO_get_mem_data(out, &got);
    ok = (size_t)gotlen == n && memcmp(got, data, n) == 0;
  }
  if (!ok) {
    ERR_print_errors_fp(stdout);
  }
  BIO_free(out);
  BIO_free(in);
  X509_STORE_free(st);
  CMS_ContentInfo_free(cms);
  return ok;
}

static void test_digest(void) {
  uint8_t d[32], in[32], want[32];
  const char *text = "Sign in to bank: 42";

  memset(in, 0xab, sizeof(in));
  T_EQ_INT(mock_sim_digest(MOCK_SIM_DATA_DIGEST, in, 32, d), GW_OK);
  T_ASSERT(memcmp(d, in, 32) == 0);
  T_EQ_INT(mock_sim_digest(MOCK_SIM_DATA_DIGEST, in, 31, d), GW_ERR_INVALID);
  T_EQ_INT(mock_sim_digest(MOCK_SIM_DATA_TEXT, (const uint8_t *)text,
                           strlen(text), d),
           GW_OK);
  EVP_Digest(text, strlen(text), want, NULL, EVP_sha256(), NULL);
  T_ASSERT(memcmp(d, want, 32) == 0);
  T_EQ_INT(mock_sim_digest(MOCK_SIM_DATA_BYTES, NULL, 0, d), GW_OK);
  EVP_Digest("", 0, want, NULL, EVP_sha256(), NULL);
  T_ASSERT(memcmp(d, want, 32) == 0);
  T_EQ_INT(mock_sim_digest(MOCK_SIM_DATA_BYTES, NULL, 3, d), GW_ERR_INVALID);
}

/* text/plain, PKCS7: attached, accepted by the gateway's verifier and by
 * OpenSSL; Arabic text signed byte for byte. */
static void test_pkcs7_text(void) {
  mock_sims *s = bank();
  uint8_t sig[MOCK_SIM_SIG_MAX];
  size_t len;
  int left = -1;
  const char *text = "تسجيل الدخول إلى البنك: 42";
  gw_verify_req rq;
  gw_verify_status st;

  T_ASSERT(s != NULL);
  if (!s) {
    return;
  }
  T_EQ_INT(sign(s, 0, SIM1, PIN, MOCK_SIM_DATA_TEXT, text, strlen(text),
                MOCK_SIM_FORMAT_PKCS7, sig, &len, &left),
           MOCK_SIM_OK);
  T_EQ_INT(left, 3);
  memset(&rq, 0, sizeof(rq));
  rq.sig = sig;
  rq.sig_len = len;
  rq.data = text;
  rq.data_len = strlen(text);
  rq.data_kind = GW_VERIFY_DATA;
  rq.expect_msisdn = SIM1;
  T_EQ_INT(gw_verify_cms(verifier, &rq, &st), GW_VERIFY_OK);
  if (st.result != GW_VERIFY_OK) {
    printf("#   %s\n", st.detail);
  }
  T_ASSERT(openssl_cms_ok(sig, len, text, strlen(text), 0));
  /* Other text: refused. */
  rq.data = "something else";
  rq.data_len = 14;
  T_EQ_INT(gw_verify_cms(verifier, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  /* With a chain: the extra certificate travels in the CMS. */
  {
    unsigned char *ca_der = NULL;
    int ca_len = i2d_X509(ca_cert, &ca_der);
    mock_sim_outcome o;
    const unsigned char *p;
    CMS_ContentInfo *cms;
    STACK_OF(X509) * certs;

    len = sizeof(sig);
    T_EQ_INT(mock_sim_sign(s, SIM1, PIN, MOCK_SIM_DATA_TEXT,
                           (const uint8_t *)text, strlen(text),
                           MOCK_SIM_FORMAT_PKCS7, cert_der[0],
                           (size_t)cert_len[0], ca_der, (size_t)ca_len, sig,
                           &len, &o, NULL),
             GW_OK);
    p = sig;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    certs = cms ? CMS_get1_certs(cms) : NULL;
    T_EQ_INT(certs ? sk_X509_num(certs) : -1, 2);
    sk_X509_pop_free(certs, X509_free);
    CMS_ContentInfo_free(cms);
    T_ASSERT(openssl_cms_ok(sig, len, text, strlen(text), 0));
    len = sizeof(sig);
    T_EQ_INT(
        mock_sim_sign(s, SIM1, PIN, MOCK_SIM_DATA_TEXT, (const uint8_t *)text,
                      strlen(text), MOCK_SIM_FORMAT_PKCS7, cert_der[0],
                      (size_t)cert_len[0], ca_der, 10, sig, &len, &o, NULL),
        GW_ERR_INVALID);
    OPENSSL_free(ca_der);
  }
  mock_sims_del(s);
}

/* x-sha256 (detached, signature over the digest) and octet-stream. */
static void test_pkcs7_digest_and_bytes(void) {
  mock_sims *s = bank();
  uint8_t sig[MOCK_SIM_SIG_MAX], digest[32];
  const uint8_t bytes[] = {0, 1, 2, 3, 0xff, 0xfe};
  const char *pre = "the data the relying party hashed";
  size_t len;
  gw_verify_req rq;
  gw_verify_status st;

  if (!s) {
    T_ASSERT(s != NULL);
    return;
  }
  EVP_Digest(pre, strlen(pre), digest, NULL, EVP_sha256(), NULL);
  T_EQ_INT(sign(s, 0, SIM1, PIN, MOCK_SIM_DATA_DIGEST, digest, 32,
                MOCK_SIM_FORMAT_PKCS7, sig, &len, NULL),
           MOCK_SIM_OK);
  memset(&rq, 0, sizeof(rq));
  rq.sig = sig;
  rq.sig_len = len;
  rq.data = digest;
  rq.data_len = 32;
  rq.data_kind = GW_VERIFY_DIGEST;
  T_EQ_INT(gw_verify_cms(verifier, &rq, &st), GW_VERIFY_OK);
  if (st.result != GW_VERIFY_OK) {
    printf("#   %s\n", st.detail);
  }
  /* Detached: OpenSSL checks it against the preimage of the digest. */
  T_ASSERT(openssl_cms_ok(sig, len, pre, strlen(pre), 1));

  T_EQ_INT(sign(s, 0, SIM1, PIN, MOCK_SIM_DATA_BYTES, bytes, sizeof(bytes),
                MOCK_SIM_FORMAT_PKCS7, sig, &len, NULL),
           MOCK_SIM_OK);
  rq.sig_len = len;
  rq.data = bytes;
  rq.data_len = sizeof(bytes);
  rq.data_kind = GW_VERIFY_DATA;
  T_EQ_INT(gw_verify_cms(verifier, &rq, &st), GW_VERIFY_OK);
  T_ASSERT(openssl_cms_ok(sig, len, bytes, sizeof(bytes), 0));
  mock_sims_del(s);
}

/* PKCS1: raw r||s, verified with the certificate beside it. */
static void test_pkcs1(void) {
  mock_sims *s = bank();
  uint8_t sig[MOCK_SIM_SIG_MAX], digest[32];
  const char *text = "hello";
  size_t len;
  gw_verify_req rq;
  gw_verify_status st;

  if (!s) {
    T_ASSERT(s != NULL);
    return;
  }
  T_EQ_INT(sign(s, 1, SIM2, PIN, MOCK_SIM_DATA_TEXT, text, 5,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, NULL),
           MOCK_SIM_OK);
  T_EQ_INT(len, 64);
  memset(&rq, 0, sizeof(rq));
  rq.sig = sig;
  rq.sig_len = len;
  rq.alg = GW_VERIFY_ECDSA_RAW;
  rq.cert = cert_der[1];
  rq.cert_len = (size_t)cert_len[1];
  rq.data = text;
  rq.data_len = 5;
  rq.data_kind = GW_VERIFY_DATA;
  rq.expect_msisdn = SIM2;
  T_EQ_INT(gw_verify_raw(verifier, &rq, &st), GW_VERIFY_OK);

  memset(digest, 0x5a, sizeof(digest));
  T_EQ_INT(sign(s, 1, SIM2, PIN, MOCK_SIM_DATA_DIGEST, digest, 32,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, NULL),
           MOCK_SIM_OK);
  rq.sig_len = len;
  rq.data = digest;
  rq.data_len = 32;
  rq.data_kind = GW_VERIFY_DIGEST;
  T_EQ_INT(gw_verify_raw(verifier, &rq, &st), GW_VERIFY_OK);
  /* A buffer too small for the result. */
  {
    mock_sim_outcome o;
    len = 10;
    T_EQ_INT(mock_sim_sign(s, SIM2, PIN, MOCK_SIM_DATA_TEXT,
                           (const uint8_t *)text, 5, MOCK_SIM_FORMAT_PKCS1,
                           NULL, 0, NULL, 0, sig, &len, &o, NULL),
             GW_ERR_TOO_LARGE);
  }
  mock_sims_del(s);
}

/* Wrong PINs count down, a right one resets; three block; a blocked SIM
 * does not ask the token; the counter survives a new bank (a restart);
 * the PUK sets a new PIN and unblocks. */
static void test_pin_counter(void) {
  mock_sims *s = bank();
  uint8_t sig[MOCK_SIM_SIG_MAX];
  size_t len;
  int left = -1, puk_left = -1;
  mock_sim_outcome o;

  if (!s) {
    T_ASSERT(s != NULL);
    return;
  }
  T_EQ_INT(sign(s, 2, SIM3, "0000", MOCK_SIM_DATA_TEXT, "x", 1,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, &left),
           MOCK_SIM_WRONG_PIN);
  T_EQ_INT(left, 2);
  T_EQ_INT(sign(s, 2, SIM3, "12", MOCK_SIM_DATA_TEXT, "x", 1,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, &left),
           MOCK_SIM_WRONG_PIN);
  T_EQ_INT(left, 1);
  T_EQ_INT(sign(s, 2, SIM3, PIN, MOCK_SIM_DATA_TEXT, "x", 1,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, &left),
           MOCK_SIM_OK);
  T_EQ_INT(left, 3);
  for (int i = 0; i < 2; i++) {
    T_EQ_INT(sign(s, 2, SIM3, "0000", MOCK_SIM_DATA_TEXT, "x", 1,
                  MOCK_SIM_FORMAT_PKCS1, sig, &len, &left),
             MOCK_SIM_WRONG_PIN);
  }
  T_EQ_INT(sign(s, 2, SIM3, "0000", MOCK_SIM_DATA_TEXT, "x", 1,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, &left),
           MOCK_SIM_PIN_BLOCKED);
  T_EQ_INT(left, 0);
  /* The right PIN no longer helps. */
  T_EQ_INT(sign(s, 2, SIM3, PIN, MOCK_SIM_DATA_TEXT, "x", 1,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, &left),
           MOCK_SIM_PIN_BLOCKED);
  mock_sims_del(s);

  /* A restart: the state file says blocked. */
  s = bank();
  if (!s) {
    T_ASSERT(s != NULL);
    return;
  }
  T_EQ_INT(mock_sim_state(s, SIM3, &left, &puk_left), GW_OK);
  T_EQ_INT(left, 0);
  T_EQ_INT(puk_left, MOCK_SIM_PUK_TRIES);
  T_EQ_INT(sign(s, 2, SIM3, PIN, MOCK_SIM_DATA_TEXT, "x", 1,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, &left),
           MOCK_SIM_PIN_BLOCKED);
  /* A wrong PUK costs a PUK try; a new PIN that is too short changes
   * nothing. */
  T_EQ_INT(mock_sim_unblock(s, SIM3, "87654321", "4321", &o, &puk_left), GW_OK);
  T_EQ_INT(o, MOCK_SIM_WRONG_PUK);
  T_EQ_INT(puk_left, MOCK_SIM_PUK_TRIES - 1);
  T_EQ_INT(mock_sim_unblock(s, SIM3, PUK, "12", &o, NULL), GW_OK);
  T_EQ_INT(o, MOCK_SIM_BAD_NEW_PIN);
  /* The PUK: a new PIN, the counters back to full. */
  T_EQ_INT(mock_sim_unblock(s, SIM3, PUK, "4321", &o, &puk_left), GW_OK);
  T_EQ_INT(o, MOCK_SIM_OK);
  T_EQ_INT(puk_left, MOCK_SIM_PUK_TRIES);
  T_EQ_INT(mock_sim_state(s, SIM3, &left, NULL), GW_OK);
  T_EQ_INT(left, 3);
  T_EQ_INT(sign(s, 2, SIM3, "4321", MOCK_SIM_DATA_TEXT, "x", 1,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, &left),
           MOCK_SIM_OK);
  T_EQ_INT(sign(s, 2, SIM3, PIN, MOCK_SIM_DATA_TEXT, "x", 1,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, &left),
           MOCK_SIM_WRONG_PIN);
  /* Back to the demo PIN for the other tests. */
  T_EQ_INT(mock_sim_unblock(s, SIM3, PUK, PIN, &o, NULL), GW_OK);
  T_EQ_INT(o, MOCK_SIM_OK);
  mock_sims_del(s);
}

/* Ten wrong PUKs block the card: 403 territory; nothing is signed. */
static void test_card_blocked(void) {
  mock_sims *s = bank();
  uint8_t sig[MOCK_SIM_SIG_MAX];
  size_t len;
  int puk_left = -1;
  mock_sim_outcome o = MOCK_SIM_OK;

  if (!s) {
    T_ASSERT(s != NULL);
    return;
  }
  T_EQ_INT(mock_sim_set_state(s, SIM2, -1, 2), GW_OK);
  T_EQ_INT(mock_sim_unblock(s, SIM2, "00000000", PIN, &o, &puk_left), GW_OK);
  T_EQ_INT(o, MOCK_SIM_WRONG_PUK);
  T_EQ_INT(puk_left, 1);
  T_EQ_INT(mock_sim_unblock(s, SIM2, "00000000", PIN, &o, &puk_left), GW_OK);
  T_EQ_INT(o, MOCK_SIM_CARD_BLOCKED);
  T_EQ_INT(puk_left, 0);
  T_EQ_INT(mock_sim_unblock(s, SIM2, PUK, PIN, &o, &puk_left), GW_OK);
  T_EQ_INT(o, MOCK_SIM_CARD_BLOCKED);
  T_EQ_INT(sign(s, 1, SIM2, PIN, MOCK_SIM_DATA_TEXT, "x", 1,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, NULL),
           MOCK_SIM_CARD_BLOCKED);
  T_EQ_INT(mock_sim_set_state(s, SIM2, MOCK_SIM_PIN_TRIES, MOCK_SIM_PUK_TRIES),
           GW_OK);
  T_EQ_INT(sign(s, 1, SIM2, PIN, MOCK_SIM_DATA_TEXT, "x", 1,
                MOCK_SIM_FORMAT_PKCS1, sig, &len, NULL),
           MOCK_SIM_OK);
  mock_sims_del(s);
}

static void test_errors(void) {
  mock_sims *s = bank(), *s2 = NULL;
  uint8_t sig[MOCK_SIM_SIG_MAX];
  size_t len = sizeof(sig);
  mock_sim_outcome o;
  char err[256], path[256];
  FILE *f;
  int left;

  if (!s) {
    T_ASSERT(s != NULL);
    return;
  }
  /* No token with that label. */
  T_EQ_INT(sign(s, 0, NOSIM, PIN, MOCK_SIM_DATA_TEXT, "x", 1,
                MOCK_SIM_FORMAT_PKCS7, sig, &len, NULL),
           MOCK_SIM_NO_TOKEN);
  /* Bad arguments. */
  T_EQ_INT(mock_sim_sign(s, "96899000001", PIN, MOCK_SIM_DATA_TEXT,
                         (const uint8_t *)"x", 1, MOCK_SIM_FORMAT_PKCS1, NULL,
                         0, NULL, 0, sig, &len, &o, NULL),
           GW_ERR_INVALID);
  T_EQ_INT(mock_sim_sign(s, "+../../etc", PIN, MOCK_SIM_DATA_TEXT,
                         (const uint8_t *)"x", 1, MOCK_SIM_FORMAT_PKCS1, NULL,
                         0, NULL, 0, sig, &len, &o, NULL),
           GW_ERR_INVALID);
  T_EQ_INT(mock_sim_sign(s, SIM1, "", MOCK_SIM_DATA_TEXT, (const uint8_t *)"x",
                         1, MOCK_SIM_FORMAT_PKCS1, NULL, 0, NULL, 0, sig, &len,
                         &o, NULL),
           GW_ERR_INVALID);
  T_EQ_INT(mock_sim_sign(s, SIM1, PIN, MOCK_SIM_DATA_DIGEST,
                         (const uint8_t *)"x", 1, MOCK_SIM_FORMAT_PKCS1, NULL,
                         0, NULL, 0, sig, &len, &o, NULL),
           GW_ERR_INVALID);
  T_EQ_INT(mock_sim_sign(s, SIM1, PIN, MOCK_SIM_DATA_TEXT, (const uint8_t *)"x",
                         1, MOCK_SIM_FORMAT_PKCS7, NULL, 0, NULL, 0, sig, &len,
                         &o, NULL),
           GW_ERR_INVALID);
  len = sizeof(sig);
  T_EQ_INT(mock_sim_sign(s, SIM1, PIN, MOCK_SIM_DATA_TEXT, (const uint8_t *)"x",
                         1, MOCK_SIM_FORMAT_PKCS7, (const uint8_t *)"junk", 4,
                         NULL, 0, sig, &len, &o, NULL),
           GW_ERR_INVALID);
  T_EQ_INT(mock_sim_set_state(s, SIM1, 4, -1), GW_ERR_INVALID);
  T_EQ_INT(mock_sim_set_state(s, SIM1, -1, 11), GW_ERR_INVALID);
  mock_sims_del(s);

  /* A malformed state file is an error, and set_state repairs it. */
  snprintf(path, sizeof(path), "%s/%s.sim", state_dir, SIM1);
  f = fopen(path, "w");
  T_ASSERT(f != NULL);
  if (f) {
    fputs("pin_tries_left=banana\n", f);
    fclose(f);
  }
  s = bank();
  if (!s) {
    T_ASSERT(s != NULL);
    return;
  }
  T_EQ_INT(mock_sim_state(s, SIM1, &left, NULL), GW_ERR_IO);
  len = sizeof(sig);
  T_EQ_INT(mock_sim_sign(s, SIM1, PIN, MOCK_SIM_DATA_TEXT, (const uint8_t *)"x",
                         1, MOCK_SIM_FORMAT_PKCS1, NULL, 0, NULL, 0, sig, &len,
                         &o, NULL),
           GW_ERR_IO);
  T_EQ_INT(mock_sim_set_state(s, SIM1, 3, 10), GW_OK);
  T_EQ_INT(mock_sim_state(s, SIM1, &left, NULL), GW_OK);
  T_EQ_INT(left, 3);
  mock_sims_del(s);

  /* A state directory that cannot be made. */
  T_EQ_INT(mock_sims_new(&s2, mod, "/nonexistent/dir/state", err, sizeof(err)),
           GW_ERR_IO);
  T_ASSERT(s2 == NULL);
  T_ASSERT(strstr(err, "/nonexistent/dir/state") != NULL);
  T_EQ_INT(mock_sims_new(&s2, mod, "", err, sizeof(err)), GW_ERR_INVALID);
  mock_sims_del(NULL);
}

/* Eight threads type wrong PINs on one SIM at once: exactly three are
 * counted before it blocks, whatever the interleaving. */
typedef struct race_arg {
  mock_sims *s;
  int wrong, blocked, other;
} race_arg;

static pthread_mutex_t race_lock = PTHREAD_MUTEX_INITIALIZER;

static void *race_main(void *p) {
  race_arg *a = p;
  uint8_t sig[MOCK_SIM_SIG_MAX];
  size_t len;
  int o = sign(a->s, 0, SIM1, "0000", MOCK_SIM_DATA_TEXT, "x", 1,
               MOCK_SIM_FORMAT_PKCS1, sig, &len, NULL);

  pthread_mutex_lock(&race_lock);
  if (o == MOCK_SIM_WRONG_PIN) {
    a->wrong++;
  } else if (o == MOCK_SIM_PIN_BLOCKED) {
    a->blocked++;
  } else {
    a->other++;
  }
  pthread_mutex_unlock(&race_lock);
  return NULL;
}

static void test_concurrent_wrong_pins(void) {
  race_arg a = {.s = bank()};
  pthread_t th[8];
  int left = -1;

  if (!a.s) {
    T_ASSERT(a.s != NULL);
    return;
  }
  T_EQ_INT(mock_sim_set_state(a.s, SIM1, 3, 10), GW_OK);
  for (int i = 0; i < 8; i++) {
    pthread_create(&th[i], NULL, race_main, &a);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
  }
  T_EQ_INT(a.wrong, 2);
  T_EQ_INT(a.blocked, 6);
  T_EQ_INT(a.other, 0);
  T_EQ_INT(mock_sim_state(a.s, SIM1, &left, NULL), GW_OK);
  T_EQ_INT(left, 0);
  T_EQ_INT(mock_sim_set_state(a.s, SIM1, 3, -1), GW_OK);
  mock_sims_del(a.s);
}

static void test_outcome_names(void) {
  T_EQ_STR(mock_sim_outcome_str(MOCK_SIM_OK), "ok");
  T_EQ_STR(mock_sim_outcome_str(MOCK_SIM_PIN_BLOCKED), "pin_blocked");
  T_EQ_STR(mock_sim_outcome_str(MOCK_SIM_CARD_BLOCKED), "card_blocked");
  T_EQ_STR(mock_sim_outcome_str((mock_sim_outcome)99), "unknown");
}

int main(void) {
  if (setup() != 0) {
    printf("not ok - setup: SoftHSM, test CA or SIM tokens\n");
    ERR_print_errors_fp(stdout);
    teardown();
    return 1;
  }
  T_RUN(test_digest);
  T_RUN(test_pkcs7_text);
  T_RUN(test_pkcs7_digest_and_bytes);
  T_RUN(test_pkcs1);
  T_RUN(test_pin_counter);
  T_RUN(test_card_blocked);
  T_RUN(test_errors);
  T_RUN(test_concurrent_wrong_pins);
  T_RUN(test_outcome_names);
  teardown();
  return T_DONE();
}
