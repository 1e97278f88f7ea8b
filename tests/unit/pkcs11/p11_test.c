/* p11_test.c — pkcs11/p11.c against a real SoftHSM 2 in a private token
 * directory made for this run (and removed at the end).
 *
 * Signatures are verified with OpenSSL from the public key read off the
 * token; key attributes are read with raw PKCS#11 calls on a session of the
 * test's own, so that the module's answers are checked by something other
 * than the module. */
#include "harness.h"
#include "p11.h"

#include <dlfcn.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/* Last: its compatibility mode #defines short names (value, count...). */
#include <p11-kit/pkcs11.h>

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define SO_PIN "87654321"
#define PIN "1234"
#define WRONG_PIN "9999"

static char dir[64];
static p11_module *mod;
static CK_FUNCTION_LIST_PTR raw; /* the test's own view of the module */

/* ---- set-up ---------------------------------------------------------------
 */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int make_softhsm_dir(void) {
  char path[128];
  FILE *f;

  snprintf(dir, sizeof dir, "/tmp/p11test.XXXXXX");
  if (mkdtemp(dir) == NULL) {
    return -1;
  }
  snprintf(path, sizeof path, "%s/tokens", dir);
  if (mkdir(path, 0700) != 0) {
    return -1;
  }
  snprintf(path, sizeof path, "%s/softhsm2.conf", dir);
  f = fopen(path, "w");
  if (f == NULL) {
    return -1;
  }
  fprintf(f,
          "directories.tokendir = %s/tokens\n"
          "objectstore.backend = file\n"
          "log.level = ERROR\n"
          "slots.removable = false\n",
          dir);
  fclose(f);
  return setenv("SOFTHSM2_CONF", path, 1);
}

static int raw_functions(void) {
  void *h = dlopen(MODULE, RTLD_NOW | RTLD_NOLOAD);
  CK_C_GetFunctionList gfl;
  if (h == NULL) {
    return -1;
  }
  *(void **)&gfl = dlsym(h, "C_GetFunctionList");
  dlclose(h); /* the module keeps it loaded */
  return gfl != NULL && gfl(&raw) == CKR_OK ? 0 : -1;
}

/* The slot of the token labelled |label|, found with raw calls. */
static CK_SLOT_ID raw_slot(const char *label) {
  CK_SLOT_ID ids[256];
  CK_ULONG n = 0;
  CK_TOKEN_INFO ti;
  char padded[32];
  size_t len = strlen(label);

  memset(padded, ' ', sizeof padded);
  memcpy(padded, label, len);
  raw->C_GetSlotList(CK_FALSE, NULL, &n);
  n = 256;
  if (raw->C_GetSlotList(CK_FALSE, ids, &n) != CKR_OK) {
    return (CK_SLOT_ID)-1;
  }
  for (CK_ULONG i = 0; i < n; i++) {
    if (raw->C_GetTokenInfo(ids[i], &ti) == CKR_OK &&
        memcmp(ti.label, padded, 32) == 0) {
      return ids[i];
    }
  }
  return (CK_SLOT_ID)-1;
}

static p11_token *new_token(const char *label) {
  p11_token *t = NULL;
  int rc = p11_token_init(mod, label, SO_PIN, PIN, &t);
  T_EQ_INT(rc, P11_OK);
  return t;
}

static void digest_of(const char *text, uint8_t dg[32]) {
  unsigned int n = 32;
  EVP_Digest(text, strlen(text), dg, &n, EVP_sha256(), NULL);
}

/* ---- OpenSSL verification -------------------------------------------------
 */

static int verify_der(EVP_PKEY *pub, const uint8_t dg[32], const uint8_t *sig,
                      size_t len) {
  EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);
  int ok = c != NULL && EVP_PKEY_verify_init(c) == 1 &&
           EVP_PKEY_verify(c, sig, len, dg, 32) == 1;
  EVP_PKEY_CTX_free(c);
  ERR_clear_error();
  return ok;
}

/* r||s (64 bytes) to DER, then verify: the converter is OpenSSL's. */
static int verify_raw_ecdsa(EVP_PKEY *pub, const uint8_t dg[32],
                            const uint8_t sig[64]) {
  ECDSA_SIG *es = ECDSA_SIG_new();
  unsigned char *der = NULL;
  int len, ok = 0;
  ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
  len = i2d_ECDSA_SIG(es, &der);
  if (len > 0) {
    ok = verify_der(pub, dg, der, (size_t)len);
  }
  OPENSSL_free(der);
  ECDSA_SIG_free(es);
  return ok;
}

static int verify_rsa(EVP_PKEY *pub, const uint8_t dg[32], const uint8_t *sig,
                      size_t len, int pss) {
  EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);
  int ok = c != NULL && EVP_PKEY_verify_init(c) == 1 &&
           EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1;
  if (ok && pss) {
    ok = EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(c, 32) == 1;
  } else if (ok) {
    ok = EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1;
  }
  ok = ok && EVP_PKEY_verify(c, sig, len, dg, 32) == 1;
  EVP_PKEY_CTX_free(c);
  ERR_clear_error();
  return ok;
}

/* ---- tests ----------------------------------------------------------------
 */

static void test_strerror(void) {
  for (int e = P11_OK; e > P11_ERR_LAST_; e--) {
    T_ASSERT(p11_strerror(e) != NULL);
    if (e < P11_OK) {
      T_ASSERT(strcmp(p11_strerror(e), p11_strerror(e + 1)) != 0);
    }
  }
  T_EQ_STR(p11_strerror(P11_ERR_LAST_), "unknown error");
  T_EQ_STR(p11_strerror(1), "unknown error");
  T_ASSERT(p11_err_is_fatal(P11_ERR_NOMEM));
  T_ASSERT(!p11_err_is_fatal(P11_ERR_PIN_INCORRECT));
  p11_module_del(NULL);
  p11_key_del(NULL);
}

static void test_module_missing(void) {
  p11_module *m = NULL;
  char conf[96];

  T_EQ_INT(p11_module_new(&m, "/nonexistent/libnosuchpkcs11.so"),
           P11_ERR_MODULE);
  T_ASSERT(m == NULL);
  /* A file that exists but is no shared object. */
  snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);
  T_EQ_INT(p11_module_new(&m, conf), P11_ERR_MODULE);
  T_ASSERT(m == NULL);
  /* A shared object that is no PKCS#11 module. */
  T_EQ_INT(p11_module_new(&m, "/lib/x86_64-linux-gnu/libz.so.1"),
           P11_ERR_MODULE);
  T_ASSERT(m == NULL);
  T_EQ_INT(p11_module_new(&m, ""), P11_ERR_INVALID);
  /* One instance per process: a second load of the same module is refused
   * (a symlinked path too: paths are compared after realpath). */
  T_EQ_INT(p11_module_new(&m, MODULE), P11_ERR_MODULE);
  T_ASSERT(m == NULL);
}

static void test_token_lifecycle(void) {
  p11_token *t = NULL, *t2 = NULL, *found = NULL;
  size_t n0 = p11_token_count(mod);

  T_EQ_INT(p11_token_find(mod, "life", &found), P11_ERR_NO_TOKEN);
  t = new_token("life");
  T_ASSERT(t != NULL);
  if (t == NULL) {
    return;
  }
  T_EQ_STR(p11_token_label(t), "life");
  T_EQ_INT(p11_token_count(mod), n0 + 1);
  T_ASSERT(p11_token_at(mod, n0) == t);
  T_ASSERT(p11_token_at(mod, n0 + 1) == NULL);
  T_EQ_INT(p11_token_find(mod, "life", &found), P11_OK);
  T_ASSERT(found == t);
  /* The label really is padded on the token. */
  T_ASSERT(raw_slot("life") != (CK_SLOT_ID)-1);

  /* A refresh keeps the token. */
  T_EQ_INT(p11_module_refresh(mod), P11_OK);
  T_EQ_INT(p11_token_count(mod), n0 + 1);
  found = NULL;
  T_EQ_INT(p11_token_find(mod, "life", &found), P11_OK);
  T_ASSERT(found == t);

  T_EQ_INT(p11_token_init(mod, "life", SO_PIN, PIN, &t2), P11_ERR_TOKEN_EXISTS);
  T_ASSERT(t2 == NULL);
  T_EQ_INT(p11_token_find(mod, "no such label", &found), P11_ERR_NO_TOKEN);
  T_EQ_INT(p11_token_init(mod, "123456789012345678901234567890123", SO_PIN, PIN,
                          &t2),
           P11_ERR_INVALID);
  T_EQ_INT(p11_token_init(mod, "trailing ", SO_PIN, PIN, &t2), P11_ERR_INVALID);
  T_EQ_INT(p11_token_init(mod, "", SO_PIN, PIN, &t2), P11_ERR_INVALID);
  T_EQ_INT(p11_token_init(mod, "shortpin", SO_PIN, "12", &t2),
           P11_ERR_PIN_INVALID);
  T_EQ_INT(p11_token_init(mod, "shortso", "12", PIN, &t2), P11_ERR_PIN_INVALID);
  T_EQ_INT(p11_token_init(mod, "nopin", SO_PIN, "", &t2), P11_ERR_INVALID);
  T_ASSERT(t2 == NULL);
  /* Exactly 32 bytes is allowed. */
  t2 = new_token("12345678901234567890123456789012");
  T_ASSERT(t2 != NULL);
  T_EQ_INT(p11_check_pin(t, PIN), P11_OK);
}

/* Tokens persist, and tokens made by another process appear only when the
 * module is loaded again (SoftHSM scans its directory at C_Initialize). */
static void test_reload_and_other_process(void) {
  p11_token *t = NULL;
  pid_t pid;
  int status = -1;

  pid = fork();
  if (pid == 0) {
    execl("/usr/bin/softhsm2-util", "softhsm2-util", "--init-token", "--free",
          "--label", "other-process", "--so-pin", SO_PIN, "--pin", PIN,
          (char *)NULL);
    _exit(127);
  }
  T_ASSERT(pid > 0);
  waitpid(pid, &status, 0);
  T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  T_EQ_INT(p11_module_refresh(mod), P11_OK);
  T_EQ_INT(p11_token_find(mod, "other-process", &t), P11_ERR_NO_TOKEN);

  p11_module_del(mod);
  mod = NULL;
  T_EQ_INT(p11_module_new(&mod, MODULE), P11_OK);
  if (mod == NULL) {
    return;
  }
  T_ASSERT(raw_functions() == 0);
  T_EQ_INT(p11_token_find(mod, "other-process", &t), P11_OK);
  T_EQ_INT(p11_token_find(mod, "life", &t), P11_OK);
  T_EQ_INT(p11_check_pin(t, PIN), P11_OK);
}

static void sign_all_ec(p11_key *k, EVP_PKEY *pub) {
  uint8_t dg[32], sig[80];
  size_t len;

  digest_of("approve login to example bank, code 4711", dg);
  len = 64;
  T_EQ_INT(p11_sign(k, P11_MECH_ECDSA, dg, 32, 0, sig, &len), P11_OK);
  T_EQ_INT(len, 64);
  T_ASSERT(verify_raw_ecdsa(pub, dg, sig));
  dg[0] ^= 1; /* the check can fail */
  T_ASSERT(!verify_raw_ecdsa(pub, dg, sig));
  dg[0] ^= 1;

  len = sizeof sig;
  T_EQ_INT(p11_sign(k, P11_MECH_ECDSA, dg, 32, 1, sig, &len), P11_OK);
  T_ASSERT(len >= 8 && len <= 72 && sig[0] == 0x30);
  T_ASSERT(verify_der(pub, dg, sig, len));
  sig[len - 1] ^= 1;
  T_ASSERT(!verify_der(pub, dg, sig, len));

  /* Wrong mechanism, digest size, small buffers. */
  len = sizeof sig;
  T_EQ_INT(p11_sign(k, P11_MECH_RSA_PKCS1_SHA256, dg, 32, 0, sig, &len),
           P11_ERR_INVALID);
  T_EQ_INT(p11_sign(k, P11_MECH_RSA_PSS_SHA256, dg, 32, 0, sig, &len),
           P11_ERR_INVALID);
  T_EQ_INT(p11_sign(k, P11_MECH_ECDSA, dg, 31, 0, sig, &len), P11_ERR_INVALID);
  T_EQ_INT(p11_sign(k, (p11_mech)99, dg, 32, 0, sig, &len), P11_ERR_INVALID);
  len = 63;
  T_EQ_INT(p11_sign(k, P11_MECH_ECDSA, dg, 32, 0, sig, &len), P11_ERR_INVALID);
  len = 6;
  T_EQ_INT(p11_sign(k, P11_MECH_ECDSA, dg, 32, 1, sig, &len), P11_ERR_INVALID);
  /* The key still signs after the refusals. */
  len = 64;
  T_EQ_INT(p11_sign(k, P11_MECH_ECDSA, dg, 32, 0, sig, &len), P11_OK);
  T_ASSERT(verify_raw_ecdsa(pub, dg, sig));
}

static void test_ec_keygen_sign(void) {
  p11_token *t = new_token("ec");
  p11_key *k = NULL;
  EVP_PKEY *pub = NULL;
  const uint8_t id[] = {0x01};

  if (t == NULL) {
    return;
  }
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_EC_P256, "sim", id, sizeof id), P11_OK);
  /* Same label again: refused, not a second key. */
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_EC_P256, "sim", id, sizeof id),
           P11_ERR_KEYGEN);
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_EC_P256, "noid", NULL, 0),
           P11_ERR_INVALID);
  T_EQ_INT(p11_keygen(t, PIN, (p11_keytype)7, "bad", id, sizeof id),
           P11_ERR_INVALID);
  T_EQ_INT(p11_key_find(t, PIN, "sim", &k), P11_OK);
  if (k == NULL) {
    return;
  }
  T_EQ_INT(p11_key_type(k), P11_KEY_EC_P256);
  T_EQ_INT(p11_key_public(k, &pub), P11_OK);
  T_ASSERT(pub != NULL && EVP_PKEY_is_a(pub, "EC"));
  T_EQ_INT(EVP_PKEY_get_bits(pub), 256);
  if (pub != NULL) {
    sign_all_ec(k, pub);
  }
  EVP_PKEY_free(pub);
  p11_key_del(k);
}

static void test_rsa_keygen_sign(void) {
  p11_token *t = new_token("rsa");
  p11_key *k = NULL;
  EVP_PKEY *pub = NULL;
  const uint8_t id[] = {0x02, 0x03};
  uint8_t dg[32], sig[300];
  size_t len;

  if (t == NULL) {
    return;
  }
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_RSA_2048, "rs256", id, sizeof id),
           P11_OK);
  T_EQ_INT(p11_key_find(t, PIN, "rs256", &k), P11_OK);
  if (k == NULL) {
    return;
  }
  T_EQ_INT(p11_key_type(k), P11_KEY_RSA_2048);
  T_EQ_INT(p11_key_public(k, &pub), P11_OK);
  if (pub == NULL) {
    p11_key_del(k);
    return;
  }
  T_EQ_INT(EVP_PKEY_get_bits(pub), 2048);
  digest_of("access token header.payload", dg);

  len = sizeof sig;
  T_EQ_INT(p11_sign(k, P11_MECH_RSA_PKCS1_SHA256, dg, 32, 0, sig, &len),
           P11_OK);
  T_EQ_INT(len, 256);
  T_ASSERT(verify_rsa(pub, dg, sig, len, 0));
  T_ASSERT(!verify_rsa(pub, dg, sig, len, 1));
  dg[5] ^= 0x80;
  T_ASSERT(!verify_rsa(pub, dg, sig, len, 0));
  dg[5] ^= 0x80;

  len = sizeof sig;
  T_EQ_INT(p11_sign(k, P11_MECH_RSA_PSS_SHA256, dg, 32, 0, sig, &len), P11_OK);
  T_EQ_INT(len, 256);
  T_ASSERT(verify_rsa(pub, dg, sig, len, 1));
  T_ASSERT(!verify_rsa(pub, dg, sig, len, 0));

  len = sizeof sig;
  T_EQ_INT(p11_sign(k, P11_MECH_ECDSA, dg, 32, 0, sig, &len), P11_ERR_INVALID);
  len = 255;
  T_EQ_INT(p11_sign(k, P11_MECH_RSA_PSS_SHA256, dg, 32, 0, sig, &len),
           P11_ERR_INVALID);

  /* The same through p11_sign_with_pin. */
  len = sizeof sig;
  T_EQ_INT(p11_sign_with_pin(t, PIN, "rs256", P11_MECH_RSA_PSS_SHA256, dg, 32,
                             0, sig, &len),
           P11_OK);
  T_ASSERT(verify_rsa(pub, dg, sig, len, 1));
  EVP_PKEY_free(pub);
  p11_key_del(k);

  len = sizeof sig;
  T_EQ_INT(p11_sign_with_pin(t, PIN, "rs256", P11_MECH_RSA_PKCS1_SHA256, dg, 32,
                             0, sig, &len),
           P11_OK);
  T_EQ_INT(len, 256);
}

static void test_sign_with_pin_ec(void) {
  p11_token *t = new_token("sim-ec");
  p11_key *k = NULL;
  EVP_PKEY *pub = NULL;
  const uint8_t id[] = {0x10};
  uint8_t dg[32], sig[80];
  size_t len;

  if (t == NULL) {
    return;
  }
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_EC_P256, "sim", id, sizeof id), P11_OK);
  /* Public key first (the key is freed again before signing). */
  T_EQ_INT(p11_key_find(t, PIN, "sim", &k), P11_OK);
  T_EQ_INT(p11_key_public(k, &pub), P11_OK);
  p11_key_del(k);
  if (pub == NULL) {
    return;
  }
  digest_of("sign in to ministry portal", dg);
  len = 64;
  T_EQ_INT(
      p11_sign_with_pin(t, PIN, "sim", P11_MECH_ECDSA, dg, 32, 0, sig, &len),
      P11_OK);
  T_EQ_INT(len, 64);
  T_ASSERT(verify_raw_ecdsa(pub, dg, sig));
  len = sizeof sig;
  T_EQ_INT(
      p11_sign_with_pin(t, PIN, "sim", P11_MECH_ECDSA, dg, 32, 1, sig, &len),
      P11_OK);
  T_ASSERT(verify_der(pub, dg, sig, len));
  len = sizeof sig;
  T_EQ_INT(
      p11_sign_with_pin(t, PIN, "nokey", P11_MECH_ECDSA, dg, 32, 0, sig, &len),
      P11_ERR_NO_KEY);
  T_EQ_INT(p11_sign_with_pin(t, PIN, "sim", P11_MECH_RSA_PSS_SHA256, dg, 32, 0,
                             sig, &len),
           P11_ERR_INVALID);
  EVP_PKEY_free(pub);
}

static void test_wrong_pin(void) {
  p11_token *t = new_token("wrongpin");
  p11_key *k = NULL;
  const uint8_t id[] = {0x20};
  uint8_t dg[32] = {0}, sig[80];
  size_t len = sizeof sig;

  if (t == NULL) {
    return;
  }
  T_EQ_INT(p11_keygen(t, WRONG_PIN, P11_KEY_EC_P256, "sim", id, sizeof id),
           P11_ERR_PIN_INCORRECT);
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_EC_P256, "sim", id, sizeof id), P11_OK);
  T_EQ_INT(p11_check_pin(t, WRONG_PIN), P11_ERR_PIN_INCORRECT);
  T_EQ_INT(p11_check_pin(t, PIN), P11_OK);
  T_EQ_INT(p11_check_pin(t, ""), P11_ERR_INVALID);
  T_EQ_INT(p11_check_pin(t, NULL), P11_ERR_INVALID);
  T_EQ_INT(p11_key_find(t, WRONG_PIN, "sim", &k), P11_ERR_PIN_INCORRECT);
  T_ASSERT(k == NULL);
  T_EQ_INT(p11_sign_with_pin(t, WRONG_PIN, "sim", P11_MECH_ECDSA, dg, 32, 0,
                             sig, &len),
           P11_ERR_PIN_INCORRECT);
  /* A PIN error comes before "no such key": the SIM asks for the PIN
   * first. */
  T_EQ_INT(p11_sign_with_pin(t, WRONG_PIN, "nokey", P11_MECH_ECDSA, dg, 32, 0,
                             sig, &len),
           P11_ERR_PIN_INCORRECT);
  /* SoftHSM never locks: the retry counter is the SIM simulation's. */
  for (int i = 0; i < 5; i++) {
    T_EQ_INT(p11_check_pin(t, WRONG_PIN), P11_ERR_PIN_INCORRECT);
  }
  T_EQ_INT(p11_check_pin(t, PIN), P11_OK);
  T_EQ_INT(p11_key_find(t, PIN, "nokey", &k), P11_ERR_NO_KEY);
  T_ASSERT(k == NULL);
}

/* Regression for REFERENCE §5 "PKCS11_login is a no-op while any login is
 * active": with a key found (token logged in), a wrong PIN must still be
 * reported as wrong, and the key must stay usable. */
static void test_wrong_pin_while_logged_in(void) {
  p11_token *t = new_token("held");
  p11_key *k = NULL;
  EVP_PKEY *pub = NULL;
  const uint8_t id[] = {0x30};
  uint8_t dg[32], sig[80];
  size_t len;
  CK_SESSION_HANDLE s;
  CK_SESSION_INFO si;
  CK_SLOT_ID slot;

  if (t == NULL) {
    return;
  }
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_EC_P256, "sim", id, sizeof id), P11_OK);
  T_EQ_INT(p11_key_find(t, PIN, "sim", &k), P11_OK);
  T_EQ_INT(p11_key_public(k, &pub), P11_OK);
  if (k == NULL || pub == NULL) {
    return;
  }
  digest_of("held login", dg);

  /* The trap itself, one level down: PKCS#11 does not look at the PIN. */
  slot = raw_slot("held");
  T_EQ_INT(raw->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s),
           CKR_OK);
  T_EQ_INT(raw->C_Login(s, CKU_USER, (CK_UTF8CHAR *)WRONG_PIN, 4),
           CKR_USER_ALREADY_LOGGED_IN);
  raw->C_CloseSession(s);

  len = sizeof sig;
  T_EQ_INT(p11_sign_with_pin(t, WRONG_PIN, "sim", P11_MECH_ECDSA, dg, 32, 0,
                             sig, &len),
           P11_ERR_PIN_INCORRECT);
  T_EQ_INT(p11_check_pin(t, WRONG_PIN), P11_ERR_PIN_INCORRECT);
  T_EQ_INT(p11_check_pin(t, "12345"), P11_ERR_PIN_INCORRECT);
  T_EQ_INT(p11_keygen(t, WRONG_PIN, P11_KEY_EC_P256, "x", id, 1),
           P11_ERR_PIN_INCORRECT);
  {
    p11_key *k2 = NULL;
    T_EQ_INT(p11_key_find(t, WRONG_PIN, "sim", &k2), P11_ERR_PIN_INCORRECT);
    T_ASSERT(k2 == NULL);
    /* A second key with the right PIN shares the login. */
    T_EQ_INT(p11_key_find(t, PIN, "sim", &k2), P11_OK);
    p11_key_del(k2);
  }

  /* The held key still signs. */
  len = 64;
  T_EQ_INT(p11_sign(k, P11_MECH_ECDSA, dg, 32, 0, sig, &len), P11_OK);
  T_ASSERT(verify_raw_ecdsa(pub, dg, sig));
  /* The right PIN signs and leaves the held login in place. */
  len = 64;
  T_EQ_INT(
      p11_sign_with_pin(t, PIN, "sim", P11_MECH_ECDSA, dg, 32, 0, sig, &len),
      P11_OK);
  T_ASSERT(verify_raw_ecdsa(pub, dg, sig));
  len = 64;
  T_EQ_INT(p11_sign(k, P11_MECH_ECDSA, dg, 32, 0, sig, &len), P11_OK);
  T_ASSERT(verify_raw_ecdsa(pub, dg, sig));
  /* p11_init_pin needs an SO login, which PKCS#11 refuses now. */
  T_EQ_INT(p11_init_pin(t, SO_PIN, "5678"), P11_ERR_DEVICE);

  /* The last key logs the token out. */
  p11_key_del(k);
  T_EQ_INT(raw->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s),
           CKR_OK);
  T_EQ_INT(raw->C_GetSessionInfo(s, &si), CKR_OK);
  T_EQ_INT(si.state, CKS_RO_PUBLIC_SESSION);
  raw->C_CloseSession(s);
  len = 64;
  T_EQ_INT(p11_sign_with_pin(t, WRONG_PIN, "sim", P11_MECH_ECDSA, dg, 32, 0,
                             sig, &len),
           P11_ERR_PIN_INCORRECT);
  T_EQ_INT(
      p11_sign_with_pin(t, PIN, "sim", P11_MECH_ECDSA, dg, 32, 0, sig, &len),
      P11_OK);
  T_ASSERT(verify_raw_ecdsa(pub, dg, sig));
  EVP_PKEY_free(pub);
}

static int attr_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                     CK_ATTRIBUTE_TYPE type) {
  CK_BBOOL v = 2;
  CK_ATTRIBUTE a = {type, &v, sizeof v};
  if (raw->C_GetAttributeValue(s, h, &a, 1) != CKR_OK) {
    return -1;
  }
  return v;
}

static void check_key_attributes(const char *token, const char *label,
                                 CK_ATTRIBUTE_TYPE secret) {
  CK_SLOT_ID slot = raw_slot(token);
  CK_SESSION_HANDLE s;
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof cls},
                          {CKA_LABEL, (void *)label, strlen(label)}};
  CK_OBJECT_HANDLE h = 0, hpub = 0;
  CK_ULONG n = 0;
  unsigned char buf[512];
  CK_ATTRIBUTE a = {secret, buf, sizeof buf};

  T_EQ_INT(raw->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s),
           CKR_OK);
  T_EQ_INT(raw->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
  T_EQ_INT(raw->C_FindObjects(s, &h, 1, &n), CKR_OK);
  raw->C_FindObjectsFinal(s);
  T_EQ_INT(n, 1);
  T_EQ_INT(attr_bool(s, h, CKA_TOKEN), CK_TRUE);
  T_EQ_INT(attr_bool(s, h, CKA_PRIVATE), CK_TRUE);
  T_EQ_INT(attr_bool(s, h, CKA_SENSITIVE), CK_TRUE);
  T_EQ_INT(attr_bool(s, h, CKA_EXTRACTABLE), CK_FALSE);
  T_EQ_INT(attr_bool(s, h, CKA_LOCAL), CK_TRUE); /* generated on the token */
  T_EQ_INT(attr_bool(s, h, CKA_ALWAYS_SENSITIVE), CK_TRUE);
  T_EQ_INT(attr_bool(s, h, CKA_NEVER_EXTRACTABLE), CK_TRUE);
  T_EQ_INT(attr_bool(s, h, CKA_SIGN), CK_TRUE);
  T_EQ_INT(raw->C_GetAttributeValue(s, h, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
  T_EQ_INT(a.ulValueLen, (CK_ULONG)-1);
  /* Nor can it be wrapped out (and exported that way). */
  cls = CKO_PUBLIC_KEY;
  T_EQ_INT(raw->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
  T_EQ_INT(raw->C_FindObjects(s, &hpub, 1, &n), CKR_OK);
  raw->C_FindObjectsFinal(s);
  T_EQ_INT(n, 1);
  T_EQ_INT(attr_bool(s, hpub, CKA_VERIFY), CK_TRUE);
  T_EQ_INT(attr_bool(s, hpub, CKA_TOKEN), CK_TRUE);
  raw->C_CloseSession(s);
}

static void test_key_attributes(void) {
  p11_token *t = new_token("attrs");
  p11_key *ke = NULL, *kr = NULL;
  const uint8_t id1[] = {0x41}, id2[] = {0x42};

  if (t == NULL) {
    return;
  }
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_EC_P256, "ec", id1, 1), P11_OK);
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_RSA_2048, "rsa", id2, 1), P11_OK);
  /* Hold a key so that the token is logged in for the raw session. */
  T_EQ_INT(p11_key_find(t, PIN, "ec", &ke), P11_OK);
  T_EQ_INT(p11_key_find(t, PIN, "rsa", &kr), P11_OK);
  check_key_attributes("attrs", "ec", CKA_VALUE);
  check_key_attributes("attrs", "rsa", CKA_PRIVATE_EXPONENT);
  p11_key_del(ke);
  p11_key_del(kr);
}

static X509 *make_cert(EVP_PKEY *pub, const char *cn) {
  X509 *x = X509_new();
  X509_NAME *name = X509_NAME_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)cn, -1, -1, 0);
  X509_set_subject_name(x, name);
  X509_set_issuer_name(x, name);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, pub);
  X509_NAME_free(name);
  return x;
}

/* What the CA does with a token key: certificates, CRLs, OCSP answers and
 * CMS, each checked against the public key read off the token. */
static void evp_sign_cert(p11_key *k, const char *cn) {
  EVP_PKEY *evp = NULL, *pub = NULL, *other = NULL;
  X509 *x;
  X509_CRL *crl;
  OCSP_BASICRESP *bs;
  STACK_OF(X509) * certs;
  CMS_ContentInfo *cms;
  BIO *data, *out;
  const char msg[] = "signed data";

  T_EQ_INT(p11_key_evp(k, &evp), P11_OK);
  T_EQ_INT(p11_key_public(k, &pub), P11_OK);
  if (evp == NULL || pub == NULL) {
    EVP_PKEY_free(evp);
    EVP_PKEY_free(pub);
    return;
  }
  x = make_cert(pub, cn);
  T_ASSERT(X509_sign(x, evp, EVP_sha256()) > 0);
  T_EQ_INT(X509_verify(x, pub), 1);
  /* ... and not with another key. */
  other = EVP_EC_gen("P-256");
  T_ASSERT(X509_verify(x, other) != 1);
  ERR_clear_error();

  crl = X509_CRL_new();
  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(x));
  X509_CRL_set1_lastUpdate(crl, X509_get0_notBefore(x));
  X509_CRL_set1_nextUpdate(crl, X509_get0_notAfter(x));
  T_ASSERT(X509_CRL_sign(crl, evp, EVP_sha256()) > 0);
  T_EQ_INT(X509_CRL_verify(crl, pub), 1);
  T_ASSERT(X509_CRL_verify(crl, other) != 1);
  ERR_clear_error();
  X509_CRL_free(crl);

  bs = OCSP_BASICRESP_new();
  certs = sk_X509_new_null();
  sk_X509_push(certs, x);
  T_EQ_INT(OCSP_basic_sign(bs, x, evp, EVP_sha256(), NULL, 0), 1);
  T_EQ_INT(OCSP_basic_verify(bs, certs, NULL, OCSP_TRUSTOTHER | OCSP_NOVERIFY),
           1);
  ERR_clear_error();
  OCSP_BASICRESP_free(bs);

  data = BIO_new_mem_buf(msg, sizeof msg - 1);
  cms = CMS_sign(x, evp, NULL, data, CMS_BINARY);
  T_ASSERT(cms != NULL);
  if (cms != NULL) {
    BIO_free(data);
    data = BIO_new_mem_buf(msg, sizeof msg - 1);
    out = BIO_new(BIO_s_mem());
    T_EQ_INT(CMS_verify(cms, certs, NULL, data, out,
                        CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY),
             1);
    BIO_free(out);
    CMS_ContentInfo_free(cms);
  }
  ERR_clear_error();
  BIO_free(data);
  sk_X509_free(certs);
  EVP_PKEY_free(other);
  X509_free(x);
  EVP_PKEY_free(evp);
  EVP_PKEY_free(pub);
}

static void test_key_evp_x509_sign(void) {
  p11_token *t = new_token("ca");
  p11_token *t2;
  p11_key *ke = NULL, *kr = NULL, *k2 = NULL, *k3 = NULL;
  const uint8_t id1[] = {0x51}, id2[] = {0x52}, id3[] = {0x53};

  if (t == NULL) {
    return;
  }
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_EC_P256, "root", id1, 1), P11_OK);
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_RSA_2048, "rsa", id2, 1), P11_OK);
  T_EQ_INT(p11_key_find(t, PIN, "root", &ke), P11_OK);
  T_EQ_INT(p11_key_find(t, PIN, "rsa", &kr), P11_OK);
  if (ke == NULL || kr == NULL) {
    return;
  }
  evp_sign_cert(ke, "Oman National PKI Root - test");
  evp_sign_cert(kr, "RSA issuer - test");
  /* A key generated after libp11 listed this token's keys. */
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_EC_P256, "later", id3, 1), P11_OK);
  T_EQ_INT(p11_key_find(t, PIN, "later", &k2), P11_OK);
  if (k2 != NULL) {
    evp_sign_cert(k2, "later");
  }
  /* A token initialised after libp11 enumerated its slots; keys held on
   * other tokens meanwhile keep working. */
  t2 = new_token("ca2");
  if (t2 != NULL) {
    T_EQ_INT(p11_keygen(t2, PIN, P11_KEY_EC_P256, "k", id1, 1), P11_OK);
    T_EQ_INT(p11_key_find(t2, PIN, "k", &k3), P11_OK);
    if (k3 != NULL) {
      evp_sign_cert(k3, "new token");
    }
  }
  /* A token whose slot did not even exist when libp11 enumerated. */
  t2 = new_token("ca3");
  if (t2 != NULL) {
    p11_key *k4 = NULL;
    T_EQ_INT(p11_keygen(t2, PIN, P11_KEY_RSA_2048, "k", id2, 1), P11_OK);
    T_EQ_INT(p11_key_find(t2, PIN, "k", &k4), P11_OK);
    if (k4 != NULL) {
      evp_sign_cert(k4, "newer token");
    }
    p11_key_del(k4);
  }
  evp_sign_cert(ke, "again");
  p11_key_del(k3);
  p11_key_del(k2);
  p11_key_del(kr);
  p11_key_del(ke);
}

/* Regression: libp11 keeps the keys it listed with their object handles;
 * private-key handles die when the token logs out (last p11_key freed), and
 * the next p11_key_evp got the stale one (CKR_OBJECT_HANDLE_INVALID). */
static void test_evp_after_relogin(void) {
  p11_token *t = new_token("relogin");
  p11_key *k = NULL;
  const uint8_t id[] = {0x54};

  if (t == NULL) {
    return;
  }
  T_EQ_INT(p11_keygen(t, PIN, P11_KEY_EC_P256, "k", id, 1), P11_OK);
  for (int round = 0; round < 3; round++) {
    k = NULL;
    T_EQ_INT(p11_key_find(t, PIN, "k", &k), P11_OK);
    if (k == NULL) {
      return;
    }
    evp_sign_cert(k, "relogin");
    p11_key_del(k);
  }
  /* Documented limit: libp11 keeps read-only sessions open on a token it
   * signed with, and PKCS#11 then refuses the SO login that p11_init_pin
   * needs. */
  T_EQ_INT(p11_init_pin(t, SO_PIN, "5678"), P11_ERR_DEVICE);
  T_EQ_INT(p11_check_pin(t, PIN), P11_OK);
}

static void test_init_pin(void) {
  p11_token *t = new_token("puk");
  if (t == NULL) {
    return;
  }
  T_EQ_INT(p11_init_pin(t, "00000000", "5678"), P11_ERR_PIN_INCORRECT);
  T_EQ_INT(p11_init_pin(t, SO_PIN, "12"), P11_ERR_PIN_INVALID);
  T_EQ_INT(p11_init_pin(t, SO_PIN, ""), P11_ERR_INVALID);
  T_EQ_INT(p11_check_pin(t, PIN), P11_OK);
  T_EQ_INT(p11_init_pin(t, SO_PIN, "5678"), P11_OK);
  T_EQ_INT(p11_check_pin(t, PIN), P11_ERR_PIN_INCORRECT);
  T_EQ_INT(p11_check_pin(t, "5678"), P11_OK);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Many tokens (one per SIM): creating them keeps earlier keys valid, and
 * finding them by label stays fast. */
static void test_many_tokens(void) {
  enum { N = 50 };
  p11_token *made[N];
  p11_token *t0 = new_token("many-anchor"), *t;
  p11_key *k = NULL;
  EVP_PKEY *pub = NULL;
  const uint8_t id[] = {0x60};
  char label[32];
  uint8_t dg[32] = {1}, sig[64];
  size_t len = sizeof sig;
  double t_start, t_find;
  int found = 0;

  if (t0 == NULL) {
    return;
  }
  T_EQ_INT(p11_keygen(t0, PIN, P11_KEY_EC_P256, "sim", id, 1), P11_OK);
  T_EQ_INT(p11_key_find(t0, PIN, "sim", &k), P11_OK);
  T_EQ_INT(p11_key_public(k, &pub), P11_OK);
  for (int i = 0; i < N; i++) {
    snprintf(label, sizeof label, "+9689910%04d", i);
    made[i] = NULL;
    T_EQ_INT(p11_token_init(mod, label, SO_PIN, PIN, &made[i]), P11_OK);
  }
  t_start = now_s();
  for (int round = 0; round < 10; round++) {
    for (int i = 0; i < N; i++) {
      snprintf(label, sizeof label, "+9689910%04d", i);
      t = NULL;
      if (p11_token_find(mod, label, &t) == P11_OK && t == made[i] &&
          strcmp(p11_token_label(t), label) == 0) {
        found++;
      }
    }
  }
  t_find = now_s() - t_start;
  T_EQ_INT(found, 10 * N);
  printf("# %d token look-ups in %.3f ms\n", 10 * N, t_find * 1e3);
  T_ASSERT(t_find < 0.5);
  /* The key found before the 50 initialisations still signs. */
  T_EQ_INT(p11_sign(k, P11_MECH_ECDSA, dg, 32, 0, sig, &len), P11_OK);
  T_ASSERT(pub != NULL && verify_raw_ecdsa(pub, dg, sig));
  /* A token found by label logs in. */
  T_EQ_INT(p11_check_pin(made[N - 1], PIN), P11_OK);
  EVP_PKEY_free(pub);
  p11_key_del(k);
}

/* ---- concurrency ----------------------------------------------------------
 */

typedef struct worker {
  p11_token *t;
  p11_key *k; /* shared key, or NULL for p11_sign_with_pin */
  EVP_PKEY *pub;
  int n, ok, seed;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  char text[64];
  uint8_t dg[32], sig[80];
  size_t len;
  int rc;

  for (int i = 0; i < w->n; i++) {
    snprintf(text, sizeof text, "worker %d message %d", w->seed, i);
    digest_of(text, dg);
    len = sizeof sig;
    if (w->k != NULL) {
      rc = p11_sign(w->k, P11_MECH_ECDSA, dg, 32, i & 1, sig, &len);
    } else {
      rc = p11_sign_with_pin(w->t, PIN, "sim", P11_MECH_ECDSA, dg, 32, i & 1,
                             sig, &len);
    }
    if (rc != P11_OK) {
      continue;
    }
    if ((i & 1) ? verify_der(w->pub, dg, sig, len)
                : (len == 64 && verify_raw_ecdsa(w->pub, dg, sig))) {
      w->ok++;
    }
  }
  return NULL;
}

static void test_concurrency(void) {
  enum { NT = 4, PER = 40 };
  p11_token *toks[NT];
  EVP_PKEY *pubs[NT] = {NULL};
  p11_key *shared = NULL;
  worker w[NT + 4];
  pthread_t th[NT + 4];
  const uint8_t id[] = {0x70};
  char label[16];
  int nw = 0;

  for (int i = 0; i < NT; i++) {
    p11_key *k = NULL;
    snprintf(label, sizeof label, "conc%d", i);
    toks[i] = new_token(label);
    if (toks[i] == NULL) {
      return;
    }
    T_EQ_INT(p11_keygen(toks[i], PIN, P11_KEY_EC_P256, "sim", id, 1), P11_OK);
    T_EQ_INT(p11_key_find(toks[i], PIN, "sim", &k), P11_OK);
    T_EQ_INT(p11_key_public(k, &pubs[i]), P11_OK);
    p11_key_del(k);
    if (pubs[i] == NULL) {
      return;
    }
  }
  /* 4 threads on 4 tokens, login-sign-logout each time. */
  for (int i = 0; i < NT; i++) {
    w[nw] = (worker){toks[i], NULL, pubs[i], PER, 0, nw};
    nw++;
  }
  /* 2 more threads on token 0 with the same PIN path (they serialise with
   * worker 0 on the token's lock)... */
  for (int i = 0; i < 2; i++) {
    w[nw] = (worker){toks[0], NULL, pubs[0], PER, 0, nw};
    nw++;
  }
  /* ... and 2 threads sharing one held key on token 1 (in parallel, a
   * session each), while worker 1 logs in and out of the same token. */
  T_EQ_INT(p11_key_find(toks[1], PIN, "sim", &shared), P11_OK);
  for (int i = 0; i < 2 && shared != NULL; i++) {
    w[nw] = (worker){toks[1], shared, pubs[1], 3 * PER, 0, nw};
    nw++;
  }
  for (int i = 0; i < nw; i++) {
    pthread_create(&th[i], NULL, worker_main, &w[i]);
  }
  for (int i = 0; i < nw; i++) {
    pthread_join(th[i], NULL);
  }
  for (int i = 0; i < nw; i++) {
    T_EQ_INT(w[i].ok, w[i].n);
  }
  p11_key_del(shared);
  for (int i = 0; i < NT; i++) {
    EVP_PKEY_free(pubs[i]);
  }
}

int main(void) {
  if (make_softhsm_dir() != 0) {
    printf("not ok - setup: cannot make a SoftHSM directory\n");
    return 1;
  }
  T_RUN(test_strerror);
  if (p11_module_new(&mod, MODULE) != P11_OK || raw_functions() != 0) {
    printf("not ok - setup: cannot load %s\n", MODULE);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 1;
  }
  T_RUN(test_module_missing);
  T_RUN(test_token_lifecycle);
  T_RUN(test_reload_and_other_process);
  if (mod != NULL) {
    T_RUN(test_ec_keygen_sign);
    T_RUN(test_rsa_keygen_sign);
    T_RUN(test_sign_with_pin_ec);
    T_RUN(test_wrong_pin);
    T_RUN(test_wrong_pin_while_logged_in);
    T_RUN(test_key_attributes);
    T_RUN(test_key_evp_x509_sign);
    T_RUN(test_evp_after_relogin);
    T_RUN(test_init_pin);
    T_RUN(test_many_tokens);
    T_RUN(test_concurrency);
  }
  p11_module_del(mod);
  if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
    printf("# could not remove %s\n", dir);
  }
  return T_DONE();
}
