/* p11.c — PKCS#11 through libp11 0.4.12 and raw calls; see p11.h and
 * docs/pkcs11.md.
 *
 * Who owns what:
 * - p11_module: the libp11 context (it loads the module and calls
 *   C_Initialize with CKF_OS_LOCKING_OK), the module's function list for
 *   raw calls, our own registry of tokens (built from raw slot scans), and
 *   the libp11 slot lists ("views") used only to make EVP_PKEYs.
 * - p11_token: one per initialised token, owned by the module, never freed
 *   before it. Holds the login state of the token for this process.
 * - p11_key: a private key found with a PIN; owns a few sessions.
 *
 * Why libp11's slot list is not the registry: PKCS11_update_slots crashes
 * in 0.4.12, and PKCS11_release_all_slots ends in C_CloseAllSessions for
 * every slot nobody else references, which closes our sessions and logs the
 * token out (verified: CKR_SESSION_HANDLE_INVALID afterwards). So libp11
 * slot lists are enumerated only when p11_key_evp needs a slot that no list
 * has yet, and released only by p11_module_del.
 *
 * Locks, in the only orders they nest: m->init_lock (serialises
 * p11_token_init) before t->lock (login state, the anchor session) or
 * m->lock (the registry and the libp11 views); t->lock before m->lock. k->lock
 * guards only the key's idle sessions and its cached public key and nests with
 * nothing. */
#include "p11.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libp11.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "gw_log.h"

/* Last: in its default (compatibility) mode this header #defines short
 * names such as value, count and params to the standard field names. */
#include <p11-kit/pkcs11.h>

#define P11_PIN_MIN 4    /* SoftHSM's MIN_PIN_LEN, also a SIM's */
#define P11_PIN_MAX 255  /* SoftHSM's MAX_PIN_LEN */
#define P11_LABEL_MAX 32 /* CK_TOKEN_INFO.label */
#define P11_KLABEL_MAX 128
#define P11_ID_MAX 64
#define P11_KEY_IDLE 4 /* idle sessions kept per key */
#define P11_MAC_LEN 32
#define P11_ECDSA_DER_MAX 72

/* DER of the OID prime256v1 (1.2.840.10045.3.1.7), CKA_EC_PARAMS. */
static const unsigned char p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};

/* DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1). */
static const unsigned char sha256_prefix[] = {
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

typedef struct p11_view {
  PKCS11_SLOT *slots;
  unsigned int nslots;
} p11_view;

struct p11_module {
  PKCS11_CTX *ctx;
  CK_FUNCTION_LIST_PTR f;
  void *dl; /* our reference to the module libp11 loaded */
  char *path;
  pthread_mutex_t init_lock;
  pthread_mutex_t lock; /* everything below */
  p11_token **tokens;
  size_t ntokens, captokens;
  CK_SLOT_ID *free_slots;
  size_t nfree;
  p11_view *views;
  size_t nviews;
  unsigned char mac_key[32];
  struct p11_module *next_loaded;
};

struct p11_token {
  p11_module *m;
  CK_SLOT_ID slot;
  char label[P11_LABEL_MAX + 1];
  pthread_mutex_t lock;     /* everything below */
  unsigned nlogin;          /* live p11_keys holding the user login */
  CK_SESSION_HANDLE anchor; /* logged-in session while nlogin > 0 */
  unsigned char pin_mac[P11_MAC_LEN];
};

struct p11_key {
  p11_token *t;
  p11_keytype type;
  CK_OBJECT_HANDLE priv, pub;
  size_t modlen; /* RSA signature length */
  char label[P11_KLABEL_MAX + 1];
  unsigned char id[P11_ID_MAX];
  size_t idlen;
  pthread_mutex_t lock;
  CK_SESSION_HANDLE idle[P11_KEY_IDLE];
  size_t nidle;
  EVP_PKEY *pubkey;
};

typedef struct p11_pin {
  CK_UTF8CHAR b[P11_PIN_MAX];
  CK_ULONG n;
} p11_pin;

/* Process-wide list of loaded module paths: PKCS#11 has one instance per
 * process, so two p11_modules on one path would share (and break) each
 * other's login states and C_Finalize each other. */
static pthread_mutex_t loaded_lock = PTHREAD_MUTEX_INITIALIZER;
static p11_module *loaded;

/* ---- errors and logging ---- */

static const char *const err_text[] = {
    "ok",
    "out of memory",
    "invalid argument",
    "PKCS#11 module missing or failed to load",
    "no such token",
    "no such key",
    "PIN incorrect",
    "PIN locked",
    "PIN invalid (length or characters)",
    "a token with that label exists",
    "no free slot",
    "key generation failed",
    "signing failed",
    "busy: queue full",
    "PKCS#11 device error",
};

const char *p11_strerror(int err) {
  if (err > 0 || err <= P11_ERR_LAST_) {
    return "unknown error";
  }
  return err_text[-err];
}

int p11_err_is_fatal(int err) {
  return err == P11_ERR_NOMEM;
}

static const struct {
  CK_RV rv;
  const char *name;
} ckr_names[] = {
    {CKR_OK, "CKR_OK"},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
    {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
    {CKR_PIN_INVALID, "CKR_PIN_INVALID"},
    {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
    {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
    {CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
    {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
    {CKR_SESSION_EXISTS, "CKR_SESSION_EXISTS"},
    {CKR_SESSION_READ_ONLY_EXISTS, "CKR_SESSION_READ_ONLY_EXISTS"},
    {CKR_SESSION_READ_WRITE_SO_EXISTS, "CKR_SESSION_READ_WRITE_SO_EXISTS"},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
    {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
    {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
    {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
    {CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "CKR_USER_ANOTHER_ALREADY_LOGGED_IN"},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
    {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
};

static const char *ckr_name(CK_RV rv) {
  for (size_t i = 0; i < sizeof ckr_names / sizeof ckr_names[0]; i++) {
    if (ckr_names[i].rv == rv) {
      return ckr_names[i].name;
    }
  }
  return "CKR_?";
}

/* Logs an unexpected PKCS#11 result. |label| is a token label (no secret). */
static void log_ckr(const char *fn, CK_RV rv, const char *label) {
  char q[2 * P11_LABEL_MAX + 8];
  if (GW_LOG_WARN < gw_log_min_level) {
    return;
  }
  gw_log_quote(q, sizeof q, label ? label : "", label ? strlen(label) : 0);
  gw_log_write(GW_LOG_WARN, "pkcs11 call failed",
               "fn=%s ckr=%s rv=0x%lx token=%s", fn, ckr_name(rv),
               (unsigned long)rv, q);
}

/* Logs a failure that has no CKR_* code of its own. */
static void log_note(const char *msg, const char *label) {
  char q[2 * P11_LABEL_MAX + 8];
  if (GW_LOG_WARN < gw_log_min_level) {
    return;
  }
  gw_log_quote(q, sizeof q, label ? label : "", label ? strlen(label) : 0);
  gw_log_write(GW_LOG_WARN, msg, "token=%s", q);
}

/* Translates a CKR_* code; |other| is the answer for codes without a P11_
 * counterpart, which are logged. */
static int map_ckr(const char *fn, CK_RV rv, const char *label, int other) {
  switch (rv) {
  case CKR_OK:
    return P11_OK;
  case CKR_HOST_MEMORY:
    return P11_ERR_NOMEM;
  case CKR_PIN_INCORRECT:
    return P11_ERR_PIN_INCORRECT;
  case CKR_PIN_LOCKED:
    return P11_ERR_PIN_LOCKED;
  case CKR_PIN_INVALID:
  case CKR_PIN_LEN_RANGE:
    return P11_ERR_PIN_INVALID;
  default:
    log_ckr(fn, rv, label);
    return other;
  }
}

/* ---- PINs ---- */

/* Copies |pin| into |p| (PKCS#11 wants a non-const buffer); the caller
 * wipes it with pin_wipe on every path. */
static int pin_copy(p11_pin *p, const char *pin) {
  size_t n;
  p->n = 0;
  if (pin == NULL || pin[0] == '\0') {
    return P11_ERR_INVALID;
  }
  n = strnlen(pin, P11_PIN_MAX + 1);
  if (n > P11_PIN_MAX) {
    return P11_ERR_PIN_INVALID;
  }
  memcpy(p->b, pin, n);
  p->n = n;
  return P11_OK;
}

static void pin_wipe(p11_pin *p) {
  OPENSSL_cleanse(p, sizeof *p);
}

/* A PIN that a token will be set to must fit SoftHSM's range: its
 * C_InitToken answers CKR_PIN_INCORRECT, not CKR_PIN_LEN_RANGE, otherwise. */
static int pin_check_new(const char *pin) {
  size_t n;
  if (pin == NULL || pin[0] == '\0') {
    return P11_ERR_INVALID;
  }
  n = strnlen(pin, P11_PIN_MAX + 1);
  if (n < P11_PIN_MIN || n > P11_PIN_MAX) {
    return P11_ERR_PIN_INVALID;
  }
  return P11_OK;
}

static int pin_mac(const p11_module *m, const p11_pin *p,
                   unsigned char out[P11_MAC_LEN]) {
  size_t outlen = 0;
  if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, m->mac_key,
                sizeof m->mac_key, p->b, p->n, out, P11_MAC_LEN,
                &outlen) == NULL ||
      outlen != P11_MAC_LEN) {
    ERR_clear_error();
    return P11_ERR_NOMEM;
  }
  return P11_OK;
}

/* ---- small raw helpers ---- */

static int open_session(p11_token *t, CK_SESSION_HANDLE *s) {
  CK_RV rv = t->m->f->C_OpenSession(
      t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
  return map_ckr("C_OpenSession", rv, t->label, P11_ERR_DEVICE);
}

static void close_session(p11_token *t, CK_SESSION_HANDLE s) {
  (void)t->m->f->C_CloseSession(s);
}

/* Finds objects of |cls| with CKA_LABEL |label| and/or CKA_ID |id| (either
 * may be absent). Stores the first in |*h| and the number found (capped at
 * 2) in |*count|. */
static int find_objects(p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                        const char *label, const unsigned char *id,
                        size_t idlen, CK_OBJECT_HANDLE *h, CK_ULONG *count) {
  CK_FUNCTION_LIST_PTR f = t->m->f;
  CK_ATTRIBUTE tmpl[3];
  CK_ULONG n = 0;
  CK_OBJECT_HANDLE found[2];
  CK_RV rv;

  tmpl[n].type = CKA_CLASS;
  tmpl[n].pValue = &cls;
  tmpl[n++].ulValueLen = sizeof cls;
  if (label != NULL) {
    tmpl[n].type = CKA_LABEL;
    tmpl[n].pValue = (void *)label;
    tmpl[n++].ulValueLen = strlen(label);
  }
  if (id != NULL) {
    tmpl[n].type = CKA_ID;
    tmpl[n].pValue = (void *)id;
    tmpl[n++].ulValueLen = idlen;
  }
  *count = 0;
  rv = f->C_FindObjectsInit(s, tmpl, n);
  if (rv != CKR_OK) {
    return map_ckr("C_FindObjectsInit", rv, t->label, P11_ERR_DEVICE);
  }
  rv = f->C_FindObjects(s, found, 2, count);
  (void)f->C_FindObjectsFinal(s);
  if (rv != CKR_OK) {
    return map_ckr("C_FindObjects", rv, t->label, P11_ERR_DEVICE);
  }
  if (*count > 0) {
    *h = found[0];
  }
  return P11_OK;
}

/* Reads a variable-length attribute into a new buffer (caller frees). */
static int get_attr(p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                    CK_ATTRIBUTE_TYPE type, unsigned char **out,
                    size_t *outlen) {
  CK_ATTRIBUTE a = {type, NULL, 0};
  CK_RV rv = t->m->f->C_GetAttributeValue(s, h, &a, 1);
  if (rv != CKR_OK) {
    return map_ckr("C_GetAttributeValue", rv, t->label, P11_ERR_DEVICE);
  }
  if (a.ulValueLen == 0 || a.ulValueLen == (CK_ULONG)-1 ||
      a.ulValueLen > 4096) {
    return P11_ERR_DEVICE;
  }
  a.pValue = OPENSSL_malloc(a.ulValueLen);
  if (a.pValue == NULL) {
    return P11_ERR_NOMEM;
  }
  rv = t->m->f->C_GetAttributeValue(s, h, &a, 1);
  if (rv != CKR_OK) {
    OPENSSL_free(a.pValue);
    return map_ckr("C_GetAttributeValue", rv, t->label, P11_ERR_DEVICE);
  }
  *out = a.pValue;
  *outlen = a.ulValueLen;
  return P11_OK;
}

/* Reads what signing needs from a private key object: its type and, for
 * RSA, the signature length. */
static int key_shape(p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                     p11_keytype *type, size_t *modlen) {
  CK_KEY_TYPE kt = 0;
  CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof kt};
  unsigned char *buf = NULL;
  size_t len = 0;
  int rc;
  CK_RV rv = t->m->f->C_GetAttributeValue(s, h, &a, 1);
  if (rv != CKR_OK) {
    return map_ckr("C_GetAttributeValue", rv, t->label, P11_ERR_DEVICE);
  }
  if (kt == CKK_EC) {
    rc = get_attr(t, s, h, CKA_EC_PARAMS, &buf, &len);
    if (rc != P11_OK) {
      return rc;
    }
    rc = (len == sizeof p256_oid && memcmp(buf, p256_oid, len) == 0)
             ? P11_OK
             : P11_ERR_NO_KEY; /* an EC key on another curve: not ours */
    OPENSSL_free(buf);
    *type = P11_KEY_EC_P256;
    *modlen = 64;
    return rc;
  }
  if (kt == CKK_RSA) {
    rc = get_attr(t, s, h, CKA_MODULUS, &buf, &len);
    if (rc != P11_OK) {
      return rc;
    }
    OPENSSL_free(buf);
    if (len < 128 || len > 1024) {
      return P11_ERR_NO_KEY;
    }
    *type = P11_KEY_RSA_2048;
    *modlen = len;
    return P11_OK;
  }
  return P11_ERR_NO_KEY;
}

/* ---- signing ---- */

static int ecdsa_raw_to_der(const uint8_t *raw, uint8_t *out, size_t *outlen) {
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(raw, 32, NULL);
  BIGNUM *s = BN_bin2bn(raw + 32, 32, NULL);
  unsigned char der[P11_ECDSA_DER_MAX + 8], *p = der;
  int n, rc = P11_ERR_NOMEM;

  if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    goto fail;
  }
  /* |es| owns r and s now. */
  n = i2d_ECDSA_SIG(es, NULL);
  if (n <= 0 || (size_t)n > sizeof der) {
    rc = P11_ERR_SIGN;
    goto fail;
  }
  n = i2d_ECDSA_SIG(es, &p);
  if (n <= 0) {
    rc = P11_ERR_SIGN;
    goto fail;
  }
  if ((size_t)n > *outlen) {
    rc = P11_ERR_INVALID;
    goto fail;
  }
  memcpy(out, der, (size_t)n);
  *outlen = (size_t)n;
  rc = P11_OK;
fail:
  ECDSA_SIG_free(es);
  ERR_clear_error();
  return rc;
}

/* Checks the arguments of a signature before any PKCS#11 call. */
static int sign_args(p11_keytype type, size_t modlen, p11_mech mech,
                     const uint8_t *digest, size_t dlen, int der,
                     const uint8_t *sig, const size_t *siglen) {
  if (digest == NULL || dlen != 32 || sig == NULL || siglen == NULL) {
    return P11_ERR_INVALID;
  }
  switch (mech) {
  case P11_MECH_ECDSA:
    if (type != P11_KEY_EC_P256) {
      return P11_ERR_INVALID;
    }
    /* DER is checked against the capacity once its length is known. */
    return (!der && *siglen < 64) ? P11_ERR_INVALID : P11_OK;
  case P11_MECH_RSA_PKCS1_SHA256:
  case P11_MECH_RSA_PSS_SHA256:
    if (type != P11_KEY_RSA_2048) {
      return P11_ERR_INVALID;
    }
    return *siglen < modlen ? P11_ERR_INVALID : P11_OK;
  }
  return P11_ERR_INVALID;
}

/* C_SignInit + C_Sign on |s| with the key |h|. Arguments checked. */
static int sign_raw(p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                    size_t modlen, p11_mech mech, const uint8_t *digest,
                    int der, uint8_t *sig, size_t *siglen) {
  CK_FUNCTION_LIST_PTR f = t->m->f;
  CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
  CK_MECHANISM mechanism = {0, NULL, 0};
  unsigned char in[sizeof sha256_prefix + 32];
  CK_ULONG inlen = 32;
  unsigned char out[1024];
  CK_ULONG outlen = sizeof out;
  CK_RV rv;

  switch (mech) {
  case P11_MECH_ECDSA:
    mechanism.mechanism = CKM_ECDSA;
    memcpy(in, digest, 32);
    break;
  case P11_MECH_RSA_PKCS1_SHA256:
    /* CKM_RSA_PKCS pads what it is given: the DigestInfo is ours to add. */
    mechanism.mechanism = CKM_RSA_PKCS;
    memcpy(in, sha256_prefix, sizeof sha256_prefix);
    memcpy(in + sizeof sha256_prefix, digest, 32);
    inlen = sizeof in;
    break;
  case P11_MECH_RSA_PSS_SHA256:
    mechanism.mechanism = CKM_RSA_PKCS_PSS;
    mechanism.pParameter = &pss;
    mechanism.ulParameterLen = sizeof pss;
    memcpy(in, digest, 32);
    break;
  }
  rv = f->C_SignInit(s, &mechanism, h);
  if (rv != CKR_OK) {
    return map_ckr("C_SignInit", rv, t->label, P11_ERR_SIGN);
  }
  rv = f->C_Sign(s, in, inlen, out, &outlen);
  if (rv != CKR_OK) {
    return map_ckr("C_Sign", rv, t->label, P11_ERR_SIGN);
  }
  if (mech == P11_MECH_ECDSA) {
    if (outlen != 64) {
      return P11_ERR_SIGN;
    }
    if (der) {
      return ecdsa_raw_to_der(out, sig, siglen);
    }
  } else if (outlen != modlen) {
    return P11_ERR_SIGN;
  }
  if (outlen > *siglen) {
    return P11_ERR_INVALID;
  }
  memcpy(sig, out, outlen);
  *siglen = outlen;
  return P11_OK;
}

/* ---- module and registry ---- */

static void token_free(p11_token *t) {
  if (t == NULL) {
    return;
  }
  OPENSSL_cleanse(t->pin_mac, sizeof t->pin_mac);
  pthread_mutex_destroy(&t->lock);
  free(t);
}

/* Copies a blank-padded CK_UTF8CHAR[32] label into a C string. */
static void label_from_ck(char out[P11_LABEL_MAX + 1], const CK_UTF8CHAR *in) {
  size_t n = P11_LABEL_MAX;
  while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\0')) {
    n--;
  }
  memcpy(out, in, n);
  out[n] = '\0';
}

static int cmp_slot(const void *a, const void *b) {
  CK_SLOT_ID x = *(const CK_SLOT_ID *)a, y = *(const CK_SLOT_ID *)b;
  return x < y ? -1 : x > y;
}

static int registry_add(p11_module *m, CK_SLOT_ID slot,
                        const CK_UTF8CHAR *label) {
  p11_token *t;
  if (m->ntokens == m->captokens) {
    size_t cap = m->captokens ? 2 * m->captokens : 16;
    p11_token **nt = realloc(m->tokens, cap * sizeof *nt);
    if (nt == NULL) {
      return P11_ERR_NOMEM;
    }
    m->tokens = nt;
    m->captokens = cap;
  }
  t = calloc(1, sizeof *t);
  if (t == NULL) {
    return P11_ERR_NOMEM;
  }
  if (pthread_mutex_init(&t->lock, NULL) != 0) {
    free(t);
    return P11_ERR_NOMEM;
  }
  t->m = m;
  t->slot = slot;
  t->anchor = CK_INVALID_HANDLE;
  label_from_ck(t->label, label);
  m->tokens[m->ntokens++] = t;
  return P11_OK;
}

/* Re-scans the slot list; m->lock held. Slots already known keep their
 * p11_token; new initialised slots are added; the free slots are replaced.
 * The first C_GetSlotList is the size query on purpose: SoftHSM adds the
 * new free slot after a C_InitToken only there. */
static int registry_scan(p11_module *m) {
  CK_FUNCTION_LIST_PTR f = m->f;
  CK_SLOT_ID *ids = NULL, *known = NULL, *nfree = NULL;
  CK_ULONG n = 0, i;
  size_t nknown = 0, nnfree = 0;
  CK_TOKEN_INFO ti;
  CK_RV rv;
  int rc = P11_ERR_NOMEM;

  for (;;) {
    rv = f->C_GetSlotList(CK_FALSE, NULL, &n);
    if (rv != CKR_OK) {
      rc = map_ckr("C_GetSlotList", rv, NULL, P11_ERR_DEVICE);
      goto fail;
    }
    free(ids);
    ids = malloc((n ? n : 1) * sizeof *ids);
    if (ids == NULL) {
      goto fail;
    }
    rv = f->C_GetSlotList(CK_FALSE, ids, &n);
    if (rv == CKR_OK) {
      break;
    }
    if (rv != CKR_BUFFER_TOO_SMALL) {
      rc = map_ckr("C_GetSlotList", rv, NULL, P11_ERR_DEVICE);
      goto fail;
    }
  }
  known = malloc((m->ntokens ? m->ntokens : 1) * sizeof *known);
  nfree = malloc((n ? n : 1) * sizeof *nfree);
  if (known == NULL || nfree == NULL) {
    goto fail;
  }
  for (size_t k = 0; k < m->ntokens; k++) {
    known[nknown++] = m->tokens[k]->slot;
  }
  qsort(known, nknown, sizeof *known, cmp_slot);
  for (i = 0; i < n; i++) {
    if (bsearch(&ids[i], known, nknown, sizeof *known, cmp_slot) != NULL) {
      continue;
    }
    rv = f->C_GetTokenInfo(ids[i], &ti);
    if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED) {
      continue;
    }
    if (rv != CKR_OK) {
      rc = map_ckr("C_GetTokenInfo", rv, NULL, P11_ERR_DEVICE);
      goto fail;
    }
    if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
      nfree[nnfree++] = ids[i];
      continue;
    }
    rc = registry_add(m, ids[i], ti.label);
    if (rc != P11_OK) {
      goto fail;
    }
  }
  free(m->free_slots);
  m->free_slots = nfree;
  m->nfree = nnfree;
  nfree = NULL;
  rc = P11_OK;
fail:
  free(ids);
  free(known);
  free(nfree);
  return rc;
}

static p11_token *registry_find(p11_module *m, const char *label) {
  for (size_t i = 0; i < m->ntokens; i++) {
    if (strcmp(m->tokens[i]->label, label) == 0) {
      return m->tokens[i];
    }
  }
  return NULL;
}

/* Gets the function list of the module libp11 has loaded and initialised.
 * libp11 0.4.12 does not export it, so we take our own reference to the
 * same shared object (RTLD_NOLOAD: same handle, no second copy) and ask it;
 * C_Initialize is not called again. */
static int module_functions(p11_module *m, const char *path) {
  CK_C_GetFunctionList gfl;
  CK_RV rv;

  m->dl = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  if (m->dl == NULL) {
    m->dl = dlopen(path, RTLD_NOW);
  }
  if (m->dl == NULL) {
    return P11_ERR_MODULE;
  }
  *(void **)&gfl = dlsym(m->dl, "C_GetFunctionList");
  if (gfl == NULL) {
    return P11_ERR_MODULE;
  }
  rv = gfl(&m->f);
  if (rv != CKR_OK || m->f == NULL) {
    log_ckr("C_GetFunctionList", rv, NULL);
    return P11_ERR_MODULE;
  }
  return P11_OK;
}

static void log_module_error(const char *what, const char *path) {
  char q[512];
  if (GW_LOG_ERROR < gw_log_min_level) {
    return;
  }
  gw_log_quote(q, sizeof q, path, strlen(path));
  gw_log_write(GW_LOG_ERROR, "pkcs11 module not loaded",
               "reason=\"%s\" path=%s", what, q);
}

int p11_module_new(p11_module **out, const char *path) {
  p11_module *m, *it;
  char *real = NULL;
  int rc = P11_ERR_NOMEM;

  if (out == NULL || path == NULL || path[0] == '\0') {
    return P11_ERR_INVALID;
  }
  /* libp11 prints dlopen errors on stderr; a missing file is ours to say. */
  real = realpath(path, NULL);
  if (real == NULL) {
    int e = errno;
    log_module_error(e == ENOENT ? "no such file" : "unreadable", path);
    return e == ENOMEM ? P11_ERR_NOMEM : P11_ERR_MODULE;
  }
  m = calloc(1, sizeof *m);
  if (m == NULL) {
    free(real);
    return P11_ERR_NOMEM;
  }
  m->path = real;
  if (pthread_mutex_init(&m->lock, NULL) != 0) {
    goto fail_free;
  }
  if (pthread_mutex_init(&m->init_lock, NULL) != 0) {
    goto fail_lock;
  }
  if (RAND_bytes(m->mac_key, sizeof m->mac_key) != 1) {
    ERR_clear_error();
    rc = P11_ERR_DEVICE;
    goto fail_init_lock;
  }

  pthread_mutex_lock(&loaded_lock);
  for (it = loaded; it != NULL; it = it->next_loaded) {
    if (strcmp(it->path, real) == 0) {
      break;
    }
  }
  if (it != NULL) {
    pthread_mutex_unlock(&loaded_lock);
    log_module_error("already loaded by this process", path);
    rc = P11_ERR_MODULE;
    goto fail_init_lock;
  }
  m->next_loaded = loaded;
  loaded = m;
  pthread_mutex_unlock(&loaded_lock);

  m->ctx = PKCS11_CTX_new();
  if (m->ctx == NULL) {
    goto fail_listed;
  }
  if (PKCS11_CTX_load(m->ctx, real) != 0) {
    ERR_clear_error();
    log_module_error("not a PKCS#11 module or C_Initialize failed", path);
    rc = P11_ERR_MODULE;
    goto fail_ctx;
  }
  rc = module_functions(m, real);
  if (rc != P11_OK) {
    log_module_error("no C_GetFunctionList", path);
    goto fail_loaded;
  }
  pthread_mutex_lock(&m->lock);
  rc = registry_scan(m);
  pthread_mutex_unlock(&m->lock);
  if (rc != P11_OK) {
    goto fail_scan;
  }
  *out = m;
  return P11_OK;

fail_scan:
  for (size_t i = 0; i < m->ntokens; i++) {
    token_free(m->tokens[i]);
  }
  free(m->tokens);
  free(m->free_slots);
fail_loaded:
  PKCS11_CTX_unload(m->ctx);
  if (m->dl != NULL) {
    dlclose(m->dl);
  }
fail_ctx:
  PKCS11_CTX_free(m->ctx);
fail_listed:
  pthread_mutex_lock(&loaded_lock);
  for (p11_module **pp = &loaded; *pp != NULL; pp = &(*pp)->next_loaded) {
    if (*pp == m) {
      *pp = m->next_loaded;
      break;
    }
  }
  pthread_mutex_unlock(&loaded_lock);
fail_init_lock:
  pthread_mutex_destroy(&m->init_lock);
fail_lock:
  pthread_mutex_destroy(&m->lock);
fail_free:
  OPENSSL_cleanse(m->mac_key, sizeof m->mac_key);
  free(m->path);
  free(m);
  return rc;
}

void p11_module_del(p11_module *m) {
  if (m == NULL) {
    return;
  }
  for (size_t i = 0; i < m->nviews; i++) {
    PKCS11_release_all_slots(m->ctx, m->views[i].slots, m->views[i].nslots);
  }
  free(m->views);
  /* Anchors of keys the caller forgot: C_Finalize closes them anyway. */
  PKCS11_CTX_unload(m->ctx);
  PKCS11_CTX_free(m->ctx);
  if (m->dl != NULL) {
    dlclose(m->dl);
  }
  ERR_clear_error();
  for (size_t i = 0; i < m->ntokens; i++) {
    token_free(m->tokens[i]);
  }
  free(m->tokens);
  free(m->free_slots);
  pthread_mutex_lock(&loaded_lock);
  for (p11_module **pp = &loaded; *pp != NULL; pp = &(*pp)->next_loaded) {
    if (*pp == m) {
      *pp = m->next_loaded;
      break;
    }
  }
  pthread_mutex_unlock(&loaded_lock);
  pthread_mutex_destroy(&m->init_lock);
  pthread_mutex_destroy(&m->lock);
  OPENSSL_cleanse(m->mac_key, sizeof m->mac_key);
  free(m->path);
  free(m);
}

int p11_module_refresh(p11_module *m) {
  int rc;
  if (m == NULL) {
    return P11_ERR_INVALID;
  }
  pthread_mutex_lock(&m->lock);
  rc = registry_scan(m);
  pthread_mutex_unlock(&m->lock);
  return rc;
}

int p11_token_find(p11_module *m, const char *label, p11_token **out) {
  p11_token *t;
  if (m == NULL || label == NULL || out == NULL) {
    return P11_ERR_INVALID;
  }
  pthread_mutex_lock(&m->lock);
  t = registry_find(m, label);
  pthread_mutex_unlock(&m->lock);
  if (t == NULL) {
    return P11_ERR_NO_TOKEN;
  }
  *out = t;
  return P11_OK;
}

size_t p11_token_count(p11_module *m) {
  size_t n;
  if (m == NULL) {
    return 0;
  }
  pthread_mutex_lock(&m->lock);
  n = m->ntokens;
  pthread_mutex_unlock(&m->lock);
  return n;
}

p11_token *p11_token_at(p11_module *m, size_t i) {
  p11_token *t = NULL;
  if (m == NULL) {
    return NULL;
  }
  pthread_mutex_lock(&m->lock);
  if (i < m->ntokens) {
    t = m->tokens[i];
  }
  pthread_mutex_unlock(&m->lock);
  return t;
}

const char *p11_token_label(p11_token *t) {
  return t != NULL ? t->label : NULL;
}

static int label_ok(const char *label) {
  size_t n;
  if (label == NULL || label[0] == '\0') {
    return 0;
  }
  n = strnlen(label, P11_LABEL_MAX + 1);
  /* Trailing blanks could not be told from PKCS#11's padding. */
  return n <= P11_LABEL_MAX && label[n - 1] != ' ';
}

/* Sets the first user PIN of a token just initialised: SO login, C_InitPIN. */
static int token_first_pin(p11_token *t, const char *so_pin, const char *pin) {
  CK_FUNCTION_LIST_PTR f = t->m->f;
  CK_SESSION_HANDLE s;
  p11_pin so, user;
  CK_RV rv;
  int rc;

  rc = pin_copy(&so, so_pin);
  if (rc == P11_OK) {
    rc = pin_copy(&user, pin);
  }
  if (rc != P11_OK) {
    goto out;
  }
  /* The token is in the registry already: keep PIN calls out until it has
   * a user PIN. */
  pthread_mutex_lock(&t->lock);
  rc = open_session(t, &s);
  if (rc != P11_OK) {
    goto unlock;
  }
  rv = f->C_Login(s, CKU_SO, so.b, so.n);
  if (rv != CKR_OK) {
    rc = map_ckr("C_Login_SO", rv, t->label, P11_ERR_DEVICE);
    close_session(t, s);
    goto unlock;
  }
  rv = f->C_InitPIN(s, user.b, user.n);
  rc = map_ckr("C_InitPIN", rv, t->label, P11_ERR_DEVICE);
  (void)f->C_Logout(s);
  close_session(t, s);
unlock:
  pthread_mutex_unlock(&t->lock);
out:
  pin_wipe(&so);
  pin_wipe(&user);
  return rc;
}

int p11_token_init(p11_module *m, const char *label, const char *so_pin,
                   const char *pin, p11_token **out) {
  CK_UTF8CHAR cklabel[P11_LABEL_MAX];
  CK_SLOT_ID slot = 0;
  p11_pin so;
  p11_token *t = NULL;
  CK_RV rv;
  int rc;

  if (m == NULL || out == NULL || !label_ok(label)) {
    return P11_ERR_INVALID;
  }
  rc = pin_check_new(so_pin);
  if (rc == P11_OK) {
    rc = pin_check_new(pin);
  }
  if (rc != P11_OK) {
    return rc;
  }
  /* PKCS#11 labels are exactly 32 bytes, blank-padded, not NUL-ended. */
  memset(cklabel, ' ', sizeof cklabel);
  memcpy(cklabel, label, strlen(label));

  pthread_mutex_lock(&m->init_lock);
  pthread_mutex_lock(&m->lock);
  if (registry_find(m, label) != NULL) {
    rc = P11_ERR_TOKEN_EXISTS;
  } else if (m->nfree == 0) {
    rc = P11_ERR_NO_FREE_SLOT;
  } else {
    slot = m->free_slots[0];
  }
  pthread_mutex_unlock(&m->lock);
  if (rc != P11_OK) {
    goto out;
  }

  rc = pin_copy(&so, so_pin);
  if (rc != P11_OK) {
    pin_wipe(&so);
    goto out;
  }
  rv = m->f->C_InitToken(slot, so.b, so.n, cklabel);
  pin_wipe(&so);
  if (rv != CKR_OK) {
    rc = map_ckr("C_InitToken", rv, label, P11_ERR_DEVICE);
    goto out;
  }

  pthread_mutex_lock(&m->lock);
  rc = registry_scan(m);
  if (rc == P11_OK) {
    for (size_t i = 0; i < m->ntokens; i++) {
      if (m->tokens[i]->slot == slot) {
        t = m->tokens[i];
        break;
      }
    }
  }
  pthread_mutex_unlock(&m->lock);
  if (rc != P11_OK) {
    goto out;
  }
  if (t == NULL || strcmp(t->label, label) != 0) {
    log_note("pkcs11 token not found after C_InitToken", label);
    rc = P11_ERR_DEVICE;
    goto out;
  }
  /* If this fails the token exists without a user PIN; it is reported and
   * left for the operator (softhsm2-util --delete-token). */
  rc = token_first_pin(t, so_pin, pin);
  if (rc == P11_OK) {
    *out = t;
  }
out:
  pthread_mutex_unlock(&m->init_lock);
  return rc;
}

/* ---- logins ---- */

/* Starts an operation that needs the user logged in, checking |pin|;
 * t->lock held. With no held login: C_Login on a new session (|*own| = 1,
 * end with auth_end). With a held login, C_Login would answer
 * CKR_USER_ALREADY_LOGGED_IN without looking at the PIN (and libp11's
 * PKCS11_login would not even call it): the PIN is compared with the held
 * login's and the anchor session is used (|*own| = 0). */
static int auth_begin(p11_token *t, const p11_pin *pin, CK_SESSION_HANDLE *s,
                      int *own) {
  CK_FUNCTION_LIST_PTR f = t->m->f;
  unsigned char mac[P11_MAC_LEN];
  CK_TOKEN_INFO ti;
  CK_RV rv;
  int rc;

  if (t->nlogin > 0) {
    rc = pin_mac(t->m, pin, mac);
    if (rc != P11_OK) {
      return rc;
    }
    rc = CRYPTO_memcmp(mac, t->pin_mac, sizeof mac) == 0
             ? P11_OK
             : P11_ERR_PIN_INCORRECT;
    OPENSSL_cleanse(mac, sizeof mac);
    if (rc == P11_OK) {
      *s = t->anchor;
      *own = 0;
    }
    return rc;
  }
  rv = f->C_GetTokenInfo(t->slot, &ti);
  if (rv != CKR_OK) {
    return map_ckr("C_GetTokenInfo", rv, t->label, P11_ERR_DEVICE);
  }
  if (ti.flags & CKF_USER_PIN_LOCKED) {
    return P11_ERR_PIN_LOCKED;
  }
  rc = open_session(t, s);
  if (rc != P11_OK) {
    return rc;
  }
  rv = f->C_Login(*s, CKU_USER, (CK_UTF8CHAR *)pin->b, pin->n);
  if (rv != CKR_OK) {
    /* CKR_USER_ALREADY_LOGGED_IN here means someone outside this module
     * logged the token in: the PIN was not checked, so it is no success. */
    rc = map_ckr("C_Login", rv, t->label, P11_ERR_DEVICE);
    close_session(t, *s);
    return rc;
  }
  *own = 1;
  return P11_OK;
}

static void auth_end(p11_token *t, CK_SESSION_HANDLE s, int own) {
  if (own) {
    (void)t->m->f->C_Logout(s);
    close_session(t, s);
  }
}

int p11_check_pin(p11_token *t, const char *pin) {
  CK_SESSION_HANDLE s;
  p11_pin p;
  int own = 0, rc;

  if (t == NULL) {
    return P11_ERR_INVALID;
  }
  rc = pin_copy(&p, pin);
  if (rc == P11_OK) {
    pthread_mutex_lock(&t->lock);
    rc = auth_begin(t, &p, &s, &own);
    if (rc == P11_OK) {
      auth_end(t, s, own);
    }
    pthread_mutex_unlock(&t->lock);
  }
  pin_wipe(&p);
  return rc;
}

int p11_init_pin(p11_token *t, const char *so_pin, const char *new_pin) {
  CK_FUNCTION_LIST_PTR f;
  CK_SESSION_HANDLE s;
  p11_pin so, user;
  CK_RV rv;
  int rc;

  if (t == NULL) {
    return P11_ERR_INVALID;
  }
  f = t->m->f;
  rc = pin_check_new(new_pin);
  if (rc != P11_OK) {
    return rc;
  }
  rc = pin_copy(&so, so_pin);
  if (rc == P11_OK) {
    rc = pin_copy(&user, new_pin);
  }
  if (rc != P11_OK) {
    goto out;
  }
  pthread_mutex_lock(&t->lock);
  if (t->nlogin > 0) {
    /* PKCS#11 allows one user type per token: an SO login would fail with
     * CKR_USER_ANOTHER_ALREADY_LOGGED_IN. */
    log_note("pkcs11 SO login refused: a key of this token is in use",
             t->label);
    rc = P11_ERR_DEVICE;
    goto unlock;
  }
  rc = open_session(t, &s);
  if (rc != P11_OK) {
    goto unlock;
  }
  rv = f->C_Login(s, CKU_SO, so.b, so.n);
  if (rv != CKR_OK) {
    rc = map_ckr("C_Login_SO", rv, t->label, P11_ERR_DEVICE);
    close_session(t, s);
    goto unlock;
  }
  rv = f->C_InitPIN(s, user.b, user.n);
  rc = map_ckr("C_InitPIN", rv, t->label, P11_ERR_DEVICE);
  (void)f->C_Logout(s);
  close_session(t, s);
unlock:
  pthread_mutex_unlock(&t->lock);
out:
  pin_wipe(&so);
  pin_wipe(&user);
  return rc;
}

/* ---- key generation ---- */

static int keygen_on(p11_token *t, CK_SESSION_HANDLE s, p11_keytype type,
                     const char *label, const uint8_t *id, size_t idlen) {
  CK_FUNCTION_LIST_PTR f = t->m->f;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ULONG bits = 2048;
  unsigned char e[] = {0x01, 0x00, 0x01};
  CK_ULONG lablen = strlen(label);
  CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
  CK_ATTRIBUTE pub[8], priv[10];
  CK_ULONG npub = 0, npriv = 0, count = 0;
  CK_OBJECT_HANDLE hpub, hpriv, existing;
  CK_RV rv;
  int rc;

  rc = find_objects(t, s, CKO_PRIVATE_KEY, label, NULL, 0, &existing, &count);
  if (rc != P11_OK) {
    return rc;
  }
  if (count > 0) {
    log_note("pkcs11 keygen refused: a private key with this label exists",
             t->label);
    return P11_ERR_KEYGEN;
  }

#define ATTR(arr, n, t_, v, l)                                                 \
  do {                                                                         \
    (arr)[n].type = (t_);                                                      \
    (arr)[n].pValue = (void *)(v);                                             \
    (arr)[n].ulValueLen = (l);                                                 \
    (n)++;                                                                     \
  } while (0)
  ATTR(pub, npub, CKA_TOKEN, &yes, sizeof yes);
  ATTR(pub, npub, CKA_PRIVATE, &no, sizeof no);
  ATTR(pub, npub, CKA_VERIFY, &yes, sizeof yes);
  ATTR(pub, npub, CKA_LABEL, label, lablen);
  ATTR(pub, npub, CKA_ID, id, idlen);
  ATTR(priv, npriv, CKA_TOKEN, &yes, sizeof yes);
  ATTR(priv, npriv, CKA_PRIVATE, &yes, sizeof yes);
  ATTR(priv, npriv, CKA_SENSITIVE, &yes, sizeof yes);
  ATTR(priv, npriv, CKA_EXTRACTABLE, &no, sizeof no);
  ATTR(priv, npriv, CKA_SIGN, &yes, sizeof yes);
  ATTR(priv, npriv, CKA_DECRYPT, &no, sizeof no);
  ATTR(priv, npriv, CKA_DERIVE, &no, sizeof no);
  ATTR(priv, npriv, CKA_LABEL, label, lablen);
  ATTR(priv, npriv, CKA_ID, id, idlen);
  if (type == P11_KEY_EC_P256) {
    ATTR(pub, npub, CKA_EC_PARAMS, p256_oid, sizeof p256_oid);
  } else {
    mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
    ATTR(pub, npub, CKA_MODULUS_BITS, &bits, sizeof bits);
    ATTR(pub, npub, CKA_PUBLIC_EXPONENT, e, sizeof e);
  }
#undef ATTR
  rv = f->C_GenerateKeyPair(s, &mech, pub, npub, priv, npriv, &hpub, &hpriv);
  return map_ckr("C_GenerateKeyPair", rv, t->label, P11_ERR_KEYGEN);
}

int p11_keygen(p11_token *t, const char *pin, p11_keytype type,
               const char *label, const uint8_t *id, size_t idlen) {
  CK_SESSION_HANDLE s;
  p11_pin p;
  int own = 0, rc;

  if (t == NULL || label == NULL || label[0] == '\0' ||
      strnlen(label, P11_KLABEL_MAX + 1) > P11_KLABEL_MAX || id == NULL ||
      idlen == 0 || idlen > P11_ID_MAX ||
      (type != P11_KEY_EC_P256 && type != P11_KEY_RSA_2048)) {
    return P11_ERR_INVALID;
  }
  rc = pin_copy(&p, pin);
  if (rc == P11_OK) {
    pthread_mutex_lock(&t->lock);
    rc = auth_begin(t, &p, &s, &own);
    if (rc == P11_OK) {
      rc = keygen_on(t, s, type, label, id, idlen);
      auth_end(t, s, own);
    }
    pthread_mutex_unlock(&t->lock);
  }
  pin_wipe(&p);
  return rc;
}

/* ---- keys ---- */

int p11_key_find(p11_token *t, const char *pin, const char *label,
                 p11_key **out) {
  CK_SESSION_HANDLE s;
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, hpub = CK_INVALID_HANDLE;
  CK_ULONG count = 0;
  unsigned char *id = NULL;
  size_t idlen = 0;
  p11_key *k = NULL;
  p11_pin p;
  int own = 0, rc;

  if (t == NULL || out == NULL || label == NULL || label[0] == '\0' ||
      strnlen(label, P11_KLABEL_MAX + 1) > P11_KLABEL_MAX) {
    return P11_ERR_INVALID;
  }
  rc = pin_copy(&p, pin);
  if (rc != P11_OK) {
    pin_wipe(&p);
    return rc;
  }
  k = calloc(1, sizeof *k);
  if (k == NULL || pthread_mutex_init(&k->lock, NULL) != 0) {
    free(k);
    pin_wipe(&p);
    return P11_ERR_NOMEM;
  }
  k->t = t;
  strcpy(k->label, label);

  pthread_mutex_lock(&t->lock);
  rc = auth_begin(t, &p, &s, &own);
  if (rc != P11_OK) {
    goto fail_locked;
  }
  rc = find_objects(t, s, CKO_PRIVATE_KEY, label, NULL, 0, &h, &count);
  if (rc == P11_OK && count == 0) {
    rc = P11_ERR_NO_KEY;
  }
  if (rc == P11_OK) {
    rc = key_shape(t, s, h, &k->type, &k->modlen);
  }
  if (rc == P11_OK) {
    rc = get_attr(t, s, h, CKA_ID, &id, &idlen);
    if (rc == P11_OK && idlen > P11_ID_MAX) {
      rc = P11_ERR_NO_KEY;
    }
  }
  if (rc == P11_OK) {
    memcpy(k->id, id, idlen);
    k->idlen = idlen;
    rc = find_objects(t, s, CKO_PUBLIC_KEY, NULL, k->id, k->idlen, &hpub,
                      &count);
    if (rc == P11_OK && count == 0) {
      hpub = CK_INVALID_HANDLE; /* RSA can do without; EC cannot */
    }
  }
  OPENSSL_free(id);
  if (rc != P11_OK) {
    auth_end(t, s, own);
    goto fail_locked;
  }
  k->priv = h;
  k->pub = hpub;
  if (own) {
    /* This session keeps the login: the anchor until the last key goes. */
    t->anchor = s;
    rc = pin_mac(t->m, &p, t->pin_mac);
    if (rc != P11_OK) {
      t->anchor = CK_INVALID_HANDLE;
      auth_end(t, s, own);
      goto fail_locked;
    }
  }
  t->nlogin++;
  pthread_mutex_unlock(&t->lock);
  pin_wipe(&p);
  *out = k;
  return P11_OK;

fail_locked:
  pthread_mutex_unlock(&t->lock);
  pin_wipe(&p);
  pthread_mutex_destroy(&k->lock);
  free(k);
  return rc;
}

/* The token is about to be logged out: private-key handles die with the
 * login, but libp11 keeps the keys it listed, handles and all, and would
 * hand the stale one to the next p11_key_evp (CKR_OBJECT_HANDLE_INVALID).
 * PKCS11_logout empties libp11's key list of the slot (and its C_Logout is
 * the one we were about to make). t->lock held; takes m->lock (the only
 * place that nests them, always in this order). */
static void views_forget(p11_token *t) {
  p11_module *m = t->m;
  pthread_mutex_lock(&m->lock);
  for (size_t v = 0; v < m->nviews; v++) {
    for (unsigned int i = 0; i < m->views[v].nslots; i++) {
      PKCS11_SLOT *s = &m->views[v].slots[i];
      if (s->token != NULL && PKCS11_get_slotid_from_slot(s) == t->slot) {
        (void)PKCS11_logout(s);
      }
    }
  }
  ERR_clear_error();
  pthread_mutex_unlock(&m->lock);
}

void p11_key_del(p11_key *k) {
  p11_token *t;
  if (k == NULL) {
    return;
  }
  t = k->t;
  for (size_t i = 0; i < k->nidle; i++) {
    close_session(t, k->idle[i]);
  }
  EVP_PKEY_free(k->pubkey);
  pthread_mutex_lock(&t->lock);
  if (t->nlogin > 0 && --t->nlogin == 0) {
    /* Log out explicitly: libp11's sessions from p11_key_evp may still be
     * open, and they would keep the login alive otherwise. */
    views_forget(t);
    (void)t->m->f->C_Logout(t->anchor);
    close_session(t, t->anchor);
    t->anchor = CK_INVALID_HANDLE;
    OPENSSL_cleanse(t->pin_mac, sizeof t->pin_mac);
  }
  pthread_mutex_unlock(&t->lock);
  pthread_mutex_destroy(&k->lock);
  OPENSSL_cleanse(k, sizeof *k);
  free(k);
}

p11_keytype p11_key_type(const p11_key *k) {
  return k->type;
}

/* A session for one operation on |k|: an idle one or a new one. */
static int key_session_get(p11_key *k, CK_SESSION_HANDLE *s) {
  pthread_mutex_lock(&k->lock);
  if (k->nidle > 0) {
    *s = k->idle[--k->nidle];
    pthread_mutex_unlock(&k->lock);
    return P11_OK;
  }
  pthread_mutex_unlock(&k->lock);
  return open_session(k->t, s);
}

/* Returns a session after use; one that saw an error is closed (the
 * anchor keeps the login whatever happens to this one). */
static void key_session_put(p11_key *k, CK_SESSION_HANDLE s, int ok) {
  pthread_mutex_lock(&k->lock);
  if (ok && k->nidle < P11_KEY_IDLE) {
    k->idle[k->nidle++] = s;
    s = CK_INVALID_HANDLE;
  }
  pthread_mutex_unlock(&k->lock);
  if (s != CK_INVALID_HANDLE) {
    close_session(k->t, s);
  }
}

int p11_sign(p11_key *k, p11_mech mech, const uint8_t *digest, size_t dlen,
             int der, uint8_t *sig, size_t *siglen) {
  CK_SESSION_HANDLE s;
  int rc;

  if (k == NULL) {
    return P11_ERR_INVALID;
  }
  rc = sign_args(k->type, k->modlen, mech, digest, dlen, der, sig, siglen);
  if (rc != P11_OK) {
    return rc;
  }
  rc = key_session_get(k, &s);
  if (rc != P11_OK) {
    return rc == P11_ERR_NOMEM ? rc : P11_ERR_SIGN;
  }
  rc = sign_raw(k->t, s, k->priv, k->modlen, mech, digest, der, sig, siglen);
  key_session_put(k, s, rc == P11_OK || rc == P11_ERR_INVALID);
  return rc;
}

int p11_sign_with_pin(p11_token *t, const char *pin, const char *label,
                      p11_mech mech, const uint8_t *digest, size_t dlen,
                      int der, uint8_t *sig, size_t *siglen) {
  CK_SESSION_HANDLE s;
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  CK_ULONG count = 0;
  p11_keytype type = 0;
  size_t modlen = 0;
  p11_pin p;
  int own = 0, rc;

  if (t == NULL || label == NULL || label[0] == '\0' || digest == NULL ||
      dlen != 32 || sig == NULL || siglen == NULL) {
    return P11_ERR_INVALID;
  }
  rc = pin_copy(&p, pin);
  if (rc != P11_OK) {
    pin_wipe(&p);
    return rc;
  }
  /* The whole login-sign-logout runs under the token's lock, so nobody
   * can find the token logged in (or log it out) half-way. */
  pthread_mutex_lock(&t->lock);
  rc = auth_begin(t, &p, &s, &own);
  if (rc == P11_OK) {
    rc = find_objects(t, s, CKO_PRIVATE_KEY, label, NULL, 0, &h, &count);
    if (rc == P11_OK && count == 0) {
      rc = P11_ERR_NO_KEY;
    }
    if (rc == P11_OK) {
      rc = key_shape(t, s, h, &type, &modlen);
    }
    if (rc == P11_OK) {
      rc = sign_args(type, modlen, mech, digest, dlen, der, sig, siglen);
    }
    if (rc == P11_OK) {
      rc = sign_raw(t, s, h, modlen, mech, digest, der, sig, siglen);
    }
    auth_end(t, s, own);
  }
  pthread_mutex_unlock(&t->lock);
  pin_wipe(&p);
  return rc;
}

/* ---- public keys ---- */

static int evp_from_ec_point(const unsigned char *attr, size_t len,
                             EVP_PKEY **out) {
  const unsigned char *p = attr;
  ASN1_OCTET_STRING *os = NULL;
  const unsigned char *pt = attr;
  size_t ptlen = len;
  OSSL_PARAM params[3];
  EVP_PKEY_CTX *ctx = NULL;
  int rc = P11_ERR_DEVICE;

  /* CKA_EC_POINT is a DER OCTET STRING around the point (PKCS#11 2.40);
   * some modules give the bare point. */
  os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len);
  if (os != NULL && p == attr + len) {
    pt = ASN1_STRING_get0_data(os);
    ptlen = (size_t)ASN1_STRING_length(os);
  }
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                               (char *)"prime256v1", 0);
  params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                (void *)pt, ptlen);
  params[2] = OSSL_PARAM_construct_end();
  ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  if (ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
      EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1) {
    rc = P11_OK;
  }
  EVP_PKEY_CTX_free(ctx);
  ASN1_OCTET_STRING_free(os);
  ERR_clear_error();
  return rc;
}

static int evp_from_rsa(const unsigned char *n, size_t nlen,
                        const unsigned char *e, size_t elen, EVP_PKEY **out) {
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL);
  BIGNUM *be = BN_bin2bn(e, (int)elen, NULL);
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  int rc = P11_ERR_NOMEM;

  if (bld == NULL || bn == NULL || be == NULL ||
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1) {
    goto out;
  }
  params = OSSL_PARAM_BLD_to_param(bld);
  ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
  if (params == NULL || ctx == NULL) {
    goto out;
  }
  rc = (EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1)
           ? P11_OK
           : P11_ERR_DEVICE;
out:
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  BN_free(be);
  ERR_clear_error();
  return rc;
}

static int key_load_public(p11_key *k, CK_SESSION_HANDLE s, EVP_PKEY **out) {
  unsigned char *a = NULL, *b = NULL;
  size_t alen = 0, blen = 0;
  int rc;

  if (k->type == P11_KEY_EC_P256) {
    if (k->pub == CK_INVALID_HANDLE) {
      return P11_ERR_NO_KEY;
    }
    rc = get_attr(k->t, s, k->pub, CKA_EC_POINT, &a, &alen);
    if (rc == P11_OK) {
      rc = evp_from_ec_point(a, alen, out);
    }
  } else {
    /* An RSA private key carries its public half. */
    CK_OBJECT_HANDLE h = k->pub != CK_INVALID_HANDLE ? k->pub : k->priv;
    rc = get_attr(k->t, s, h, CKA_MODULUS, &a, &alen);
    if (rc == P11_OK) {
      rc = get_attr(k->t, s, h, CKA_PUBLIC_EXPONENT, &b, &blen);
    }
    if (rc == P11_OK) {
      rc = evp_from_rsa(a, alen, b, blen, out);
    }
  }
  OPENSSL_free(a);
  OPENSSL_free(b);
  return rc;
}

int p11_key_public(p11_key *k, EVP_PKEY **out) {
  CK_SESSION_HANDLE s;
  EVP_PKEY *pk = NULL;
  int rc;

  if (k == NULL || out == NULL) {
    return P11_ERR_INVALID;
  }
  pthread_mutex_lock(&k->lock);
  pk = k->pubkey;
  if (pk != NULL) {
    EVP_PKEY_up_ref(pk);
  }
  pthread_mutex_unlock(&k->lock);
  if (pk != NULL) {
    *out = pk;
    return P11_OK;
  }
  rc = key_session_get(k, &s);
  if (rc != P11_OK) {
    return rc;
  }
  rc = key_load_public(k, s, &pk);
  key_session_put(k, s, rc == P11_OK);
  if (rc != P11_OK) {
    return rc;
  }
  pthread_mutex_lock(&k->lock);
  if (k->pubkey == NULL) {
    EVP_PKEY_up_ref(pk);
    k->pubkey = pk;
  }
  pthread_mutex_unlock(&k->lock);
  *out = pk;
  return P11_OK;
}

/* ---- EVP_PKEY through libp11 ---- */

/* Whether libp11's |s| describes the initialised token |t|. A view taken
 * before |t| was initialised lists its slot as empty: not used, although
 * libp11 would not look, so as not to depend on that. */
static int view_has(const PKCS11_SLOT *s, const p11_token *t) {
  return s->token != NULL && s->token->initialized && s->token->label != NULL &&
         strcmp(s->token->label, t->label) == 0 &&
         PKCS11_get_slotid_from_slot((PKCS11_SLOT *)s) == t->slot;
}

/* The libp11 slot for |t|, enumerating a new view when no view has it yet;
 * m->lock held. Views are not released before p11_module_del (see the top
 * of the file): one is added per p11_key_evp on a token initialised after
 * the newest view, which only CA and gateway-key set-up do. */
static PKCS11_SLOT *view_slot(p11_module *m, const p11_token *t) {
  PKCS11_SLOT *slots = NULL;
  unsigned int n = 0;
  p11_view *nv;

  for (size_t v = m->nviews; v-- > 0;) {
    for (unsigned int i = 0; i < m->views[v].nslots; i++) {
      if (view_has(&m->views[v].slots[i], t)) {
        return &m->views[v].slots[i];
      }
    }
  }
  nv = realloc(m->views, (m->nviews + 1) * sizeof *nv);
  if (nv == NULL) {
    return NULL;
  }
  m->views = nv;
  if (PKCS11_enumerate_slots(m->ctx, &slots, &n) != 0) {
    ERR_clear_error();
    return NULL;
  }
  m->views[m->nviews].slots = slots;
  m->views[m->nviews].nslots = n;
  m->nviews++;
  for (unsigned int i = 0; i < n; i++) {
    if (view_has(&slots[i], t)) {
      return &slots[i];
    }
  }
  return NULL;
}

int p11_key_evp(p11_key *k, EVP_PKEY **out) {
  p11_module *m;
  PKCS11_SLOT *slot;
  PKCS11_KEY *keys = NULL;
  unsigned int nkeys = 0;
  EVP_PKEY *pk = NULL;
  int rc = P11_ERR_NO_KEY;

  if (k == NULL || out == NULL) {
    return P11_ERR_INVALID;
  }
  m = k->t->m;
  /* m->lock serialises every libp11 slot-list and key-list call: libp11
   * keeps one key list per slot and rebuilds it here. The EVP_PKEY holds
   * references to libp11's key and slot objects, not to the list. */
  pthread_mutex_lock(&m->lock);
  slot = view_slot(m, k->t);
  if (slot == NULL) {
    log_note("pkcs11 libp11 has no slot for this token", k->t->label);
    rc = P11_ERR_DEVICE;
    goto out;
  }
  if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0) {
    log_note("pkcs11 libp11 PKCS11_enumerate_keys failed", k->t->label);
    rc = P11_ERR_DEVICE;
    goto out;
  }
  for (unsigned int i = 0; i < nkeys; i++) {
    if (keys[i].id_len == k->idlen &&
        memcmp(keys[i].id, k->id, k->idlen) == 0 && keys[i].label != NULL &&
        strcmp(keys[i].label, k->label) == 0) {
      pk = PKCS11_get_private_key(&keys[i]);
      rc = pk != NULL ? P11_OK : P11_ERR_DEVICE;
      break;
    }
  }
out:
  ERR_clear_error();
  pthread_mutex_unlock(&m->lock);
  if (rc == P11_OK) {
    *out = pk;
  }
  return rc;
}
