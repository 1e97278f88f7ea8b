/* gw_verify.c — the verifier: inputs, signatures (CMS and raw), the
 * certificate chain, identity, and the cache of validated certificates.
 * Revocation lives in gw_crl.c and gw_ocsp.c.
 *
 * Order of the checks, cheapest first, so that junk costs little and never
 * triggers an OCSP query: parse; identity against the expectations; the
 * signature over the expected data (one public-key operation); then the
 * certificate (cache, or chain + key usage + CRL + OCSP).
 *
 * The chain is built by X509_verify_cert() against a store that holds only
 * the trust anchors; intermediates (configured, plus any in the CMS) are
 * untrusted helpers. CMS signatures are checked with
 * CMS_NO_SIGNER_CERT_VERIFY: OpenSSL would otherwise verify the chain at
 * the wall-clock time with no skew and no revocation of ours. */
#include "gw_verify.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_crl.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_ocsp.h"
#include "gw_verify_int.h"

#define TRUST_FILE_MAX (1024 * 1024)
#define CHAIN_DEPTH_MAX 8
#define DN_MAX 120

/* ---- shared helpers (gw_verify_int.h) ----------------------------------- */

int gw_verify_asn1_time(const ASN1_TIME *t, time_t *out) {
  struct tm tm;

  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
    return GW_ERR_INVALID;
  }
  *out = timegm(&tm);
  return GW_OK;
}

void gw_verify_fmt_time(time_t t, char *buf) {
  struct tm tm;

  if (!gmtime_r(&t, &tm) ||
      strftime(buf, GW_VERIFY_TIME_STR, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    snprintf(buf, GW_VERIFY_TIME_STR, "@%lld", (long long)t);
  }
}

void gw_verify_fmt_name(const X509_NAME *nm, char *buf, size_t n) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p = NULL;
  long len = 0;

  if (n == 0) {
    return;
  }
  buf[0] = '\0';
  if (b && X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253) >= 0) {
    len = BIO_get_mem_data(b, &p);
  }
  if (p && len > 0) {
    if ((size_t)len >= n) {
      len = (long)n - 1;
    }
    memcpy(buf, p, (size_t)len);
    buf[len] = '\0';
  } else {
    snprintf(buf, n, "(empty name)");
  }
  BIO_free(b);
}

void gw_verify_setf(char *detail, size_t n, const char *fmt, ...) {
  va_list ap;

  if (!detail || n == 0) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(detail, n, fmt, ap);
  va_end(ap);
}

void gw_verify_ossl_err(char *detail, size_t n) {
  unsigned long e = ERR_peek_last_error();
  const char *why = e ? ERR_reason_error_string(e) : NULL;
  size_t used;

  if (detail && n && why) {
    used = strlen(detail);
    if (used < n) {
      snprintf(detail + used, n - used, ": %s", why);
    }
  }
  ERR_clear_error();
}

/* ---- results ------------------------------------------------------------ */

static const struct {
  const char *name;
  int etsi;
} result_info[GW_VERIFY_RESULT_COUNT_] = {
    [GW_VERIFY_OK] = {"ok", 502},
    [GW_VERIFY_BAD_FORMAT] = {"bad_format", 503},
    [GW_VERIFY_BAD_SIGNATURE] = {"bad_signature", 503},
    [GW_VERIFY_UNSUPPORTED] = {"unsupported", 503},
    [GW_VERIFY_NO_CERT] = {"no_cert", 422},
    [GW_VERIFY_BAD_CERT] = {"bad_cert", 425},
    [GW_VERIFY_UNTRUSTED_CHAIN] = {"untrusted_chain", 425},
    [GW_VERIFY_EXPIRED] = {"expired", 425},
    [GW_VERIFY_NOT_YET_VALID] = {"not_yet_valid", 425},
    [GW_VERIFY_KEY_USAGE] = {"key_usage", 425},
    [GW_VERIFY_REVOKED] = {"revoked", 501},
    [GW_VERIFY_IDENTITY_MISMATCH] = {"identity_mismatch", 425},
    [GW_VERIFY_CRL_UNAVAILABLE] = {"crl_unavailable", 423},
    [GW_VERIFY_CRL_EXPIRED] = {"crl_expired", 424},
    [GW_VERIFY_OCSP_UNAVAILABLE] = {"ocsp_unavailable", 423},
    [GW_VERIFY_OCSP_BAD_RESPONSE] = {"ocsp_bad_response", 423},
    [GW_VERIFY_INTERNAL] = {"internal", 900},
};

const char *gw_verify_result_str(gw_verify_result r) {
  if ((int)r < 0 || r >= GW_VERIFY_RESULT_COUNT_) {
    return "unknown";
  }
  return result_info[r].name;
}

int gw_verify_result_etsi(gw_verify_result r) {
  if ((int)r < 0 || r >= GW_VERIFY_RESULT_COUNT_) {
    return 900;
  }
  return result_info[r].etsi;
}

/* ---- input decoding ----------------------------------------------------- */

static int is_b64_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=' ||
         c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Turns |in| (|len| bytes: DER, PEM with one of the |labels|, or base64 of
 * DER) into DER. |*der| points into |in| or into |*owned|, which the caller
 * frees with OPENSSL_free(). Returns GW_OK or GW_ERR_INVALID (reason in
 * |why|) or GW_ERR_NOMEM. */
static int decode_der(const void *in, size_t len, const char *const *labels,
                      const unsigned char **der, size_t *der_len,
                      unsigned char **owned, char *why, size_t whylen) {
  const unsigned char *p = in;
  EVP_ENCODE_CTX *ctx;
  unsigned char *out;
  int outl = 0, fl = 0, i;

  *owned = NULL;
  if (p[0] == 0x30) { /* a DER SEQUENCE */
    *der = p;
    *der_len = len;
    return GW_OK;
  }
  while (len > 0 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\r' ||
                     p[0] == '\n')) { /* as text in JSON or XML often is */
    p++;
    len--;
  }
  if (len > 11 && memcmp(p, "-----BEGIN ", 11) == 0) {
    BIO *b = BIO_new_mem_buf(p, (int)len);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen = 0;
    int ok = 0;

    if (!b) {
      return GW_ERR_NOMEM;
    }
    if (PEM_read_bio(b, &name, &header, &data, &dlen) == 1) {
      for (i = 0; labels[i] && !ok; i++) {
        ok = strcmp(name, labels[i]) == 0;
      }
    }
    BIO_free(b);
    OPENSSL_free(name);
    OPENSSL_free(header);
    if (!ok || dlen <= 0) {
      OPENSSL_free(data);
      gw_verify_setf(why, whylen, "not a PEM %s", labels[0]);
      ERR_clear_error();
      return GW_ERR_INVALID;
    }
    *der = *owned = data;
    *der_len = (size_t)dlen;
    return GW_OK;
  }
  for (i = 0; (size_t)i < len; i++) {
    if (!is_b64_char(p[i])) {
      gw_verify_setf(why, whylen, "neither DER, PEM nor base64");
      return GW_ERR_INVALID;
    }
  }
  ctx = EVP_ENCODE_CTX_new();
  out = OPENSSL_malloc(len / 4 * 3 + 4);
  if (!ctx || !out) {
    EVP_ENCODE_CTX_free(ctx);
    OPENSSL_free(out);
    return GW_ERR_NOMEM;
  }
  EVP_DecodeInit(ctx);
  if (EVP_DecodeUpdate(ctx, out, &outl, p, (int)len) < 0 ||
      EVP_DecodeFinal(ctx, out + outl, &fl) < 0 || outl + fl <= 0 ||
      out[0] != 0x30) {
    EVP_ENCODE_CTX_free(ctx);
    OPENSSL_free(out);
    gw_verify_setf(why, whylen, "bad base64, or not base64 of DER");
    ERR_clear_error();
    return GW_ERR_INVALID;
  }
  EVP_ENCODE_CTX_free(ctx);
  *der = *owned = out;
  *der_len = (size_t)(outl + fl);
  return GW_OK;
}

static const char *const cert_labels[] = {"CERTIFICATE", NULL};
static const char *const cms_labels[] = {"CMS", "PKCS7", NULL};

/* Parses a certificate in any accepted encoding; NULL with a reason. */
static X509 *parse_cert(const void *in, size_t len, int *err, char *why,
                        size_t whylen) {
  const unsigned char *der, *p;
  unsigned char *owned;
  size_t der_len;
  X509 *x;

  *err = GW_ERR_INVALID;
  if (!in || len == 0) {
    gw_verify_setf(why, whylen, "no certificate");
    return NULL;
  }
  if (len > GW_VERIFY_CERT_MAX) {
    gw_verify_setf(why, whylen, "certificate larger than %d bytes",
                   GW_VERIFY_CERT_MAX);
    *err = GW_ERR_TOO_LARGE;
    return NULL;
  }
  *err = decode_der(in, len, cert_labels, &der, &der_len, &owned, why, whylen);
  if (*err != GW_OK) {
    return NULL;
  }
  p = der;
  x = d2i_X509(NULL, &p, (long)der_len);
  if (!x || p != der + der_len) {
    X509_free(x);
    x = NULL;
    gw_verify_setf(why, whylen,
                   "certificate is not DER X.509 (truncated, "
                   "trailing bytes or garbage)");
    *err = GW_ERR_INVALID;
  }
  OPENSSL_free(owned);
  ERR_clear_error();
  return x;
}

/* ---- identity ----------------------------------------------------------- */

/* Copies at most |cap| bytes of UTF-8 |s| into |dst| (cap + 1 bytes), cut
 * at a character boundary and at any NUL. */
static void copy_utf8(char *dst, size_t cap, const unsigned char *s,
                      size_t len) {
  size_t n = 0;

  while (n < len && n < cap && s[n] != '\0') {
    n++;
  }
  if (n < len && n == cap) {
    while (n > 0 && (s[n] & 0xC0) == 0x80) { /* inside a character */
      n--;
    }
  }
  memcpy(dst, s, n);
  dst[n] = '\0';
}

static int all_digits(const char *s, size_t n) {
  size_t i;

  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return 0;
    }
  }
  return n > 0;
}

/* The UTF-8 text of the only entry |nid| in |nm|; NULL when absent or
 * repeated. Caller frees with OPENSSL_free(). */
static unsigned char *name_entry(const X509_NAME *nm, int nid, int *len) {
  unsigned char *u = NULL;
  int i = X509_NAME_get_index_by_NID(nm, nid, -1);

  if (i < 0 || X509_NAME_get_index_by_NID(nm, nid, i) >= 0) {
    return NULL;
  }
  *len = ASN1_STRING_to_UTF8(
      &u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i)));
  if (*len < 0) {
    return NULL;
  }
  return u;
}

static void identity_from_x509(X509 *x, gw_verify_identity *id) {
  const X509_NAME *nm = X509_get_subject_name(x);
  GENERAL_NAMES *gens;
  unsigned char *u;
  int len, i;

  memset(id, 0, sizeof(*id));
  u = name_entry(nm, NID_serialNumber, &len);
  if (u && len > 6 && len - 6 <= GW_VERIFY_CIVIL_MAX &&
      memcmp(u, "PNOOM-", 6) == 0 && all_digits((char *)u + 6, len - 6)) {
    memcpy(id->civil_id, u + 6, (size_t)len - 6);
  }
  OPENSSL_free(u);
  u = name_entry(nm, NID_commonName, &len);
  if (u) {
    copy_utf8(id->name, GW_VERIFY_NAME_MAX, u, (size_t)len);
  }
  OPENSSL_free(u);
  gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  for (i = 0; i < sk_GENERAL_NAME_num(gens) && !id->msisdn[0]; i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    const char *s;

    if (g->type != GEN_URI) {
      continue;
    }
    s = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
    len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
    /* "tel:+" then 1..15 digits, nothing else (no parameters) */
    if (len > 5 && len - 4 <= GW_VERIFY_MSISDN_MAX &&
        strncasecmp(s, "tel:+", 5) == 0 && all_digits(s + 5, len - 5)) {
      memcpy(id->msisdn, s + 4, (size_t)len - 4);
    }
  }
  GENERAL_NAMES_free(gens);
  ERR_clear_error();
}

int gw_verify_identity_parse(const void *cert, size_t len,
                             gw_verify_identity *out) {
  char why[128];
  X509 *x;
  int err;

  if (!out) {
    return GW_ERR_INVALID;
  }
  memset(out, 0, sizeof(*out));
  x = parse_cert(cert, len, &err, why, sizeof(why));
  if (!x) {
    return err;
  }
  identity_from_x509(x, out);
  X509_free(x);
  return GW_OK;
}

gw_verify_result gw_verify_identity_check(const gw_verify_identity *id,
                                          const char *civil_id,
                                          const char *msisdn, char *detail,
                                          size_t n) {
  if (!id) {
    gw_verify_setf(detail, n, "no identity to check");
    return GW_VERIFY_IDENTITY_MISMATCH;
  }
  if (civil_id && (!*civil_id || strcmp(id->civil_id, civil_id) != 0)) {
    if (id->civil_id[0]) {
      gw_verify_setf(detail, n,
                     "certificate is for civil number %s, expected %.24s",
                     id->civil_id, civil_id);
    } else {
      gw_verify_setf(detail, n,
                     "certificate carries no civil number, expected %.24s",
                     civil_id);
    }
    return GW_VERIFY_IDENTITY_MISMATCH;
  }
  if (msisdn && (!*msisdn || strcmp(id->msisdn, msisdn) != 0)) {
    if (id->msisdn[0]) {
      gw_verify_setf(detail, n, "certificate is for MSISDN %s, expected %.24s",
                     id->msisdn, msisdn);
    } else {
      gw_verify_setf(detail, n, "certificate carries no MSISDN, expected %.24s",
                     msisdn);
    }
    return GW_VERIFY_IDENTITY_MISMATCH;
  }
  return GW_VERIFY_OK;
}

/* ---- cache of validated certificates ------------------------------------ */

/* A hash table (chained through indexes) over a fixed array, with an LRU
 * list; one mutex. An entry keeps the parsed certificate and its identity,
 * so that a hit costs no parsing: with OpenSSL 3.0, d2i_X509() alone costs
 * more than two ECDSA P-256 verifications (it decodes the public key
 * through the provider decoders). A hit requires an unexpired entry made
 * under the current CRL generation. */
typedef struct vc_ent {
  unsigned char key[32]; /* SHA-256 of the certificate's DER */
  time_t expires;
  uint64_t gen;
  X509 *cert; /* a reference held by the cache */
  gw_verify_identity id;
  int32_t hnext;      /* next in the bucket */
  int32_t prev, next; /* LRU neighbours; next links the free list */
} vc_ent;

typedef struct vcache {
  pthread_mutex_t lock;
  vc_ent *e;
  int32_t *bucket;
  uint32_t mask;
  int32_t cap, count;
  int32_t head, tail; /* most and least recently used */
  int32_t free;
  uint64_t hits, misses, inserts, evictions;
} vcache;

static void vc_reset(vcache *c) {
  int32_t i;

  for (i = 0; i <= (int32_t)c->mask && c->bucket; i++) {
    c->bucket[i] = -1;
  }
  for (i = 0; i < c->cap; i++) {
    X509_free(c->e[i].cert);
    c->e[i].cert = NULL;
    c->e[i].next = i + 1 < c->cap ? i + 1 : -1;
  }
  c->free = c->cap > 0 ? 0 : -1;
  c->head = c->tail = -1;
  c->count = 0;
}

static int vc_init(vcache *c, int cap) {
  uint32_t nb = 1;

  memset(c, 0, sizeof(*c));
  if (pthread_mutex_init(&c->lock, NULL) != 0) {
    return GW_ERR_NOMEM;
  }
  c->cap = cap;
  if (cap > 0) {
    while (nb < (uint32_t)cap * 2) {
      nb <<= 1;
    }
    c->mask = nb - 1;
    c->e = calloc((size_t)cap, sizeof(*c->e));
    c->bucket = calloc(nb, sizeof(*c->bucket));
    if (!c->e || !c->bucket) {
      free(c->e);
      free(c->bucket);
      pthread_mutex_destroy(&c->lock);
      return GW_ERR_NOMEM;
    }
  }
  vc_reset(c);
  return GW_OK;
}

static void vc_free(vcache *c) {
  vc_reset(c);
  free(c->e);
  free(c->bucket);
  pthread_mutex_destroy(&c->lock);
}

static uint32_t vc_hash(const vcache *c, const unsigned char *key) {
  return ((uint32_t)key[0] | (uint32_t)key[1] << 8 | (uint32_t)key[2] << 16 |
          (uint32_t)key[3] << 24) &
         c->mask;
}

static void lru_unlink(vcache *c, int32_t i) {
  vc_ent *x = &c->e[i];

  if (x->prev >= 0) {
    c->e[x->prev].next = x->next;
  } else {
    c->head = x->next;
  }
  if (x->next >= 0) {
    c->e[x->next].prev = x->prev;
  } else {
    c->tail = x->prev;
  }
}

static void lru_push_front(vcache *c, int32_t i) {
  c->e[i].prev = -1;
  c->e[i].next = c->head;
  if (c->head >= 0) {
    c->e[c->head].prev = i;
  }
  c->head = i;
  if (c->tail < 0) {
    c->tail = i;
  }
}

/* Index of |key| or -1; |*pprev| receives the link that points at it. */
static int32_t vc_find(vcache *c, const unsigned char *key, int32_t **pprev) {
  int32_t *link = &c->bucket[vc_hash(c, key)];

  while (*link >= 0) {
    if (memcmp(c->e[*link].key, key, 32) == 0) {
      *pprev = link;
      return *link;
    }
    link = &c->e[*link].hnext;
  }
  return -1;
}

static void vc_remove(vcache *c, int32_t i, int32_t *link) {
  *link = c->e[i].hnext;
  lru_unlink(c, i);
  X509_free(c->e[i].cert);
  c->e[i].cert = NULL;
  c->e[i].next = c->free;
  c->free = i;
  c->count--;
}

/* Looks |key| up. On a hit, |*x| (when not NULL) receives a new reference
 * to the certificate and |*id| (when not NULL) its identity. |count| says
 * whether this lookup counts as a hit or miss in the statistics. */
static int vc_lookup(vcache *c, const unsigned char *key, time_t now,
                     uint64_t gen, int count, X509 **x,
                     gw_verify_identity *id) {
  int32_t *link, i;
  int hit = 0;

  pthread_mutex_lock(&c->lock);
  if (c->cap > 0) {
    i = vc_find(c, key, &link);
    if (i >= 0 && (c->e[i].expires <= now || c->e[i].gen != gen)) {
      vc_remove(c, i, link);
    } else if (i >= 0) {
      lru_unlink(c, i);
      lru_push_front(c, i);
      if (x) {
        X509_up_ref(c->e[i].cert);
        *x = c->e[i].cert;
      }
      if (id) {
        *id = c->e[i].id;
      }
      hit = 1;
    }
  }
  if (count && hit) {
    c->hits++;
  } else if (count) {
    c->misses++;
  }
  pthread_mutex_unlock(&c->lock);
  return hit;
}

static void vc_count(vcache *c, int hit) {
  pthread_mutex_lock(&c->lock);
  if (hit) {
    c->hits++;
  } else {
    c->misses++;
  }
  pthread_mutex_unlock(&c->lock);
}

static void vc_insert(vcache *c, const unsigned char *key, time_t expires,
                      uint64_t gen, X509 *x, const gw_verify_identity *id) {
  int32_t *link, i;
  uint32_t h;

  if (c->cap == 0) {
    return;
  }
  X509_up_ref(x);
  pthread_mutex_lock(&c->lock);
  i = vc_find(c, key, &link);
  if (i >= 0) {
    lru_unlink(c, i);
    X509_free(c->e[i].cert);
  } else {
    if (c->count == c->cap) {
      int32_t t = c->tail;

      vc_find(c, c->e[t].key, &link);
      vc_remove(c, t, link);
      c->evictions++;
    }
    i = c->free;
    c->free = c->e[i].next;
    memcpy(c->e[i].key, key, 32);
    h = vc_hash(c, key);
    c->e[i].hnext = c->bucket[h];
    c->bucket[h] = i;
    c->count++;
    c->inserts++;
  }
  c->e[i].expires = expires;
  c->e[i].gen = gen;
  c->e[i].cert = x;
  c->e[i].id = *id;
  lru_push_front(c, i);
  pthread_mutex_unlock(&c->lock);
}

static void vc_clear(vcache *c) {
  pthread_mutex_lock(&c->lock);
  vc_reset(c);
  pthread_mutex_unlock(&c->lock);
}

/* ---- the verifier ------------------------------------------------------- */

struct gw_verify {
  int skew_s;
  int cache_ttl_s;
  time_t (*clock)(void *arg);
  void *clock_arg;
  X509_STORE *store; /* the trust anchors only */
  STACK_OF(X509) * roots;
  STACK_OF(X509) * inter; /* untrusted helpers for chain building */
  gw_crl *crl;            /* NULL: no CRL configured */
  gw_ocsp *ocsp;          /* NULL: no OCSP configured */
  atomic_uint_fast64_t crl_gen_seen;
  vcache cache;
};

void gw_verify_config_init(gw_verify_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->ocsp_timeout_ms = 3000;
  cfg->ocsp_require_nonce = 1;
  cfg->ocsp_max_age_s = 300;
  cfg->clock_skew_s = 60;
  cfg->cache_size = 10000;
  cfg->cache_ttl_s = 300;
}

/* Reads the PEM certificates of |path| into |*out|. */
static int load_certs(const char *path, const char *what, STACK_OF(X509) * *out,
                      char *err, size_t errlen) {
  STACK_OF(X509) * sk;
  struct stat st;
  unsigned long e;
  X509 *x;
  BIO *b;

  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size > TRUST_FILE_MAX) {
    gw_verify_setf(err, errlen,
                   "%s file %s: missing, not a file or over %d "
                   "bytes",
                   what, path, TRUST_FILE_MAX);
    return GW_ERR_CONFIG;
  }
  b = BIO_new_file(path, "r");
  if (!b) {
    gw_verify_setf(err, errlen, "%s file %s: cannot open", what, path);
    ERR_clear_error();
    return GW_ERR_CONFIG;
  }
  sk = sk_X509_new_null();
  if (!sk) {
    BIO_free(b);
    return GW_ERR_NOMEM;
  }
  while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    if (sk_X509_num(sk) >= GW_VERIFY_ANCHORS_MAX || !sk_X509_push(sk, x)) {
      X509_free(x);
      gw_verify_setf(err, errlen, "%s file %s: more than %d certificates", what,
                     path, GW_VERIFY_ANCHORS_MAX);
      goto fail;
    }
  }
  /* The loop ends on "no start line" once the file is exhausted. */
  e = ERR_peek_last_error();
  if (!(ERR_GET_LIB(e) == ERR_LIB_PEM &&
        ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
    gw_verify_setf(err, errlen, "%s file %s: damaged PEM certificate", what,
                   path);
    goto fail;
  }
  if (sk_X509_num(sk) == 0) {
    gw_verify_setf(err, errlen, "%s file %s: no PEM certificate", what, path);
    goto fail;
  }
  ERR_clear_error();
  BIO_free(b);
  *out = sk;
  return GW_OK;

fail:
  ERR_clear_error();
  BIO_free(b);
  sk_X509_pop_free(sk, X509_free);
  return GW_ERR_CONFIG;
}

static int check_anchor_files(STACK_OF(X509) * roots, STACK_OF(X509) * inter,
                              char *err, size_t errlen) {
  char dn[DN_MAX];
  int i;

  for (i = 0; i < sk_X509_num(roots); i++) {
    X509 *x = sk_X509_value(roots, i);

    if (!(X509_get_extension_flags(x) & EXFLAG_CA) ||
        X509_self_signed(x, 1) != 1) {
      gw_verify_fmt_name(X509_get_subject_name(x), dn, sizeof(dn));
      gw_verify_setf(err, errlen, "root %s is not a self-signed CA", dn);
      ERR_clear_error();
      return GW_ERR_CONFIG;
    }
  }
  for (i = 0; i < sk_X509_num(inter); i++) {
    X509 *x = sk_X509_value(inter, i);

    if (!(X509_get_extension_flags(x) & EXFLAG_CA)) {
      gw_verify_fmt_name(X509_get_subject_name(x), dn, sizeof(dn));
      gw_verify_setf(err, errlen, "intermediate %s is not a CA", dn);
      return GW_ERR_CONFIG;
    }
  }
  return GW_OK;
}

static int range_ok(int v, int lo, int hi) {
  return v >= lo && v <= hi;
}

int gw_verify_new(gw_verify **out, const gw_verify_config *cfg, char *err,
                  size_t errlen) {
  STACK_OF(X509) *issuers = NULL;
  char why[GW_VERIFY_DETAIL_MAX], q[GW_VERIFY_DETAIL_MAX + 16];
  gw_verify *v;
  int rv, i;

  if (!out || !cfg || !cfg->roots_file || !*cfg->roots_file) {
    gw_verify_setf(err, errlen, "no trust anchor file");
    return GW_ERR_INVALID;
  }
  if (!range_ok(cfg->clock_skew_s, 0, 3600) ||
      !range_ok(cfg->cache_size, 0, 100000) ||
      !range_ok(cfg->cache_ttl_s, 1, 86400)) {
    gw_verify_setf(err, errlen,
                   "clock skew must be 0..3600 s, cache size "
                   "0..100000, cache ttl 1..86400 s");
    return GW_ERR_INVALID;
  }
  v = calloc(1, sizeof(*v));
  if (!v) {
    return GW_ERR_NOMEM;
  }
  v->skew_s = cfg->clock_skew_s;
  v->cache_ttl_s = cfg->cache_ttl_s;
  v->clock = cfg->clock;
  v->clock_arg = cfg->clock_arg;
  rv = vc_init(&v->cache, cfg->cache_size);
  if (rv != GW_OK) {
    free(v);
    return rv;
  }
  rv = load_certs(cfg->roots_file, "trust anchor", &v->roots, err, errlen);
  if (rv != GW_OK) {
    goto fail;
  }
  if (cfg->intermediates_file && *cfg->intermediates_file) {
    rv = load_certs(cfg->intermediates_file, "intermediate", &v->inter, err,
                    errlen);
  } else {
    v->inter = sk_X509_new_null();
    rv = v->inter ? GW_OK : GW_ERR_NOMEM;
  }
  if (rv != GW_OK) {
    goto fail;
  }
  rv = check_anchor_files(v->roots, v->inter, err, errlen);
  if (rv != GW_OK) {
    goto fail;
  }
  rv = GW_ERR_NOMEM;
  v->store = X509_STORE_new();
  if (!v->store) {
    goto fail;
  }
  for (i = 0; i < sk_X509_num(v->roots); i++) {
    if (!X509_STORE_add_cert(v->store, sk_X509_value(v->roots, i))) {
      goto fail;
    }
  }
  if (cfg->ocsp_url && *cfg->ocsp_url) {
    rv = gw_ocsp_new(&v->ocsp, cfg->ocsp_url, cfg->ocsp_timeout_ms,
                     cfg->ocsp_require_nonce, cfg->ocsp_max_age_s, err, errlen);
    if (rv != GW_OK) {
      goto fail;
    }
  }
  if (cfg->crl_file && *cfg->crl_file) {
    rv = GW_ERR_NOMEM;
    issuers = sk_X509_dup(v->roots);
    for (i = 0; issuers && i < sk_X509_num(v->inter); i++) {
      if (!sk_X509_push(issuers, sk_X509_value(v->inter, i))) {
        goto fail;
      }
    }
    if (!issuers) {
      goto fail;
    }
    rv = gw_crl_new(&v->crl, cfg->crl_file, issuers);
    sk_X509_free(issuers);
    issuers = NULL;
    if (rv != GW_OK) {
      goto fail;
    }
    if (gw_crl_state(v->crl, why, sizeof(why)) != GW_VERIFY_OK) {
      gw_log_quote(q, sizeof(q), why, strlen(why));
      GW_LOG(GW_LOG_WARN, "CRL unavailable: verifications fail until it is",
             "detail=%s", q);
    }
    atomic_init(&v->crl_gen_seen, gw_crl_generation(v->crl));
  }
  ERR_clear_error();
  *out = v;
  return GW_OK;

fail:
  if (rv == GW_ERR_NOMEM) {
    gw_verify_setf(err, errlen, "out of memory");
  }
  sk_X509_free(issuers);
  gw_verify_del(v);
  ERR_clear_error();
  return rv;
}

void gw_verify_del(gw_verify *v) {
  if (!v) {
    return;
  }
  gw_crl_del(v->crl);
  gw_ocsp_del(v->ocsp);
  X509_STORE_free(v->store);
  sk_X509_pop_free(v->roots, X509_free);
  sk_X509_pop_free(v->inter, X509_free);
  vc_free(&v->cache);
  free(v);
}

void gw_verify_get_stats(gw_verify *v, gw_verify_stats *out) {
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&v->cache.lock);
  out->cache_hits = v->cache.hits;
  out->cache_misses = v->cache.misses;
  out->cache_inserts = v->cache.inserts;
  out->cache_evictions = v->cache.evictions;
  out->cache_entries = (uint64_t)v->cache.count;
  pthread_mutex_unlock(&v->cache.lock);
  if (v->crl) {
    out->crl_reloads = gw_crl_loads(v->crl);
  }
  if (v->ocsp) {
    gw_ocsp_counts(v->ocsp, &out->ocsp_queries, &out->ocsp_failures);
  }
}

void gw_verify_cache_clear(gw_verify *v) {
  vc_clear(&v->cache);
}

static time_t now_of(const gw_verify *v) {
  return v->clock ? v->clock(v->clock_arg) : time(NULL);
}

/* ---- the certificate ---------------------------------------------------- */

static gw_verify_result key_policy(EVP_PKEY *pk, char *detail, size_t n) {
  char group[64];
  int id, bits, nid;

  if (!pk) {
    gw_verify_setf(detail, n, "certificate public key does not parse");
    return GW_VERIFY_BAD_CERT;
  }
  id = EVP_PKEY_get_base_id(pk);
  bits = EVP_PKEY_get_bits(pk);
  if (id == EVP_PKEY_EC) {
    nid = EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL) == 1
              ? OBJ_sn2nid(group)
              : NID_undef;
    if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 ||
        nid == NID_secp521r1) {
      return GW_VERIFY_OK;
    }
    gw_verify_setf(detail, n, "EC curve %s not accepted",
                   nid == NID_undef ? "(unknown)" : OBJ_nid2sn(nid));
    return GW_VERIFY_UNSUPPORTED;
  }
  if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) {
    if (bits >= 2048 && bits <= 16384) {
      return GW_VERIFY_OK;
    }
    gw_verify_setf(detail, n, "RSA key of %d bits not accepted", bits);
    return GW_VERIFY_UNSUPPORTED;
  }
  gw_verify_setf(detail, n, "key type %s not accepted",
                 id == NID_undef ? "(unknown)" : OBJ_nid2sn(id));
  return GW_VERIFY_UNSUPPORTED;
}

static gw_verify_result key_usage(X509 *x, char *detail, size_t n) {
  uint32_t flags = X509_get_extension_flags(x);

  if (flags & EXFLAG_INVALID) {
    gw_verify_setf(detail, n, "certificate has malformed extensions");
    return GW_VERIFY_BAD_CERT;
  }
  if (!(flags & EXFLAG_KUSAGE)) {
    gw_verify_setf(detail, n, "certificate has no keyUsage");
    return GW_VERIFY_KEY_USAGE;
  }
  if (!(X509_get_key_usage(x) & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION))) {
    gw_verify_setf(detail, n,
                   "keyUsage allows neither digitalSignature nor "
                   "nonRepudiation");
    return GW_VERIFY_KEY_USAGE;
  }
  if (flags & EXFLAG_CA) {
    gw_verify_setf(detail, n, "a CA certificate may not sign transactions");
    return GW_VERIFY_KEY_USAGE;
  }
  return GW_VERIFY_OK;
}

/* Runs X509_verify_cert() at time |t|. Returns the X509_V_* code; on
 * success |*chain| holds the chain (leaf first), on failure |detail| the
 * reason (only when |detail| is not NULL). */
static int run_chain(gw_verify *v, X509 *leaf, STACK_OF(X509) * untrusted,
                     time_t t, STACK_OF(X509) * *chain, char *detail,
                     size_t n) {
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  X509_VERIFY_PARAM *param;
  char dn[DN_MAX], when[GW_VERIFY_TIME_STR], now[GW_VERIFY_TIME_STR];
  const ASN1_TIME *at = NULL;
  X509 *cur;
  time_t tt;
  int e, depth;

  if (!ctx || !X509_STORE_CTX_init(ctx, v->store, leaf, untrusted)) {
    X509_STORE_CTX_free(ctx);
    return X509_V_ERR_OUT_OF_MEM;
  }
  param = X509_STORE_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_time(param, t);
  X509_VERIFY_PARAM_set_depth(param, CHAIN_DEPTH_MAX);
  if (X509_verify_cert(ctx) == 1) {
    *chain = X509_STORE_CTX_get1_chain(ctx);
    X509_STORE_CTX_free(ctx);
    return *chain ? X509_V_OK : X509_V_ERR_OUT_OF_MEM;
  }
  e = X509_STORE_CTX_get_error(ctx);
  if (e == X509_V_OK) {
    e = X509_V_ERR_UNSPECIFIED;
  }
  depth = X509_STORE_CTX_get_error_depth(ctx);
  cur = X509_STORE_CTX_get_current_cert(ctx);
  if (detail) {
    if (cur) {
      gw_verify_fmt_name(X509_get_subject_name(cur), dn, sizeof(dn));
    } else {
      snprintf(dn, sizeof(dn), "(unknown)");
    }
    if (e == X509_V_ERR_CERT_HAS_EXPIRED && cur) {
      at = X509_get0_notAfter(cur);
    } else if (e == X509_V_ERR_CERT_NOT_YET_VALID && cur) {
      at = X509_get0_notBefore(cur);
    }
    gw_verify_fmt_time(t, now);
    if (at && gw_verify_asn1_time(at, &tt) == GW_OK) {
      gw_verify_fmt_time(tt, when);
      gw_verify_setf(detail, n, "%s %s (now %s, skew %d s) at depth %d: %s",
                     e == X509_V_ERR_CERT_HAS_EXPIRED ? "expired at"
                                                      : "not valid before",
                     when, now, v->skew_s, depth, dn);
    } else {
      gw_verify_setf(detail, n, "%s at depth %d: %s",
                     X509_verify_cert_error_string(e), depth, dn);
    }
  }
  X509_STORE_CTX_free(ctx);
  ERR_clear_error();
  return e;
}

static gw_verify_result map_chain_error(int e) {
  switch (e) {
  case X509_V_OK:
    return GW_VERIFY_OK;
  case X509_V_ERR_CERT_HAS_EXPIRED:
    return GW_VERIFY_EXPIRED;
  case X509_V_ERR_CERT_NOT_YET_VALID:
    return GW_VERIFY_NOT_YET_VALID;
  case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
  case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
    return GW_VERIFY_BAD_CERT;
  case X509_V_ERR_OUT_OF_MEM:
    return GW_VERIFY_INTERNAL;
  default:
    return GW_VERIFY_UNTRUSTED_CHAIN;
  }
}

/* Builds and checks the chain at now; when that fails only on a validity
 * period, tries again at now + skew (not yet valid) or now - skew
 * (expired), which widens every validity period by the skew. */
static gw_verify_result check_chain(gw_verify *v, X509 *leaf,
                                    STACK_OF(X509) * extra, time_t now,
                                    STACK_OF(X509) * *chain, char *detail,
                                    size_t n) {
  STACK_OF(X509) *untrusted = v->inter, *own = NULL;
  gw_verify_result r;
  int e, i;

  if (sk_X509_num(extra) > 0) {
    own = sk_X509_dup(v->inter);
    for (i = 0; own && i < sk_X509_num(extra); i++) {
      if (!sk_X509_push(own, sk_X509_value(extra, i))) {
        sk_X509_free(own);
        own = NULL;
      }
    }
    if (!own) {
      gw_verify_setf(detail, n, "out of memory");
      return GW_VERIFY_INTERNAL;
    }
    untrusted = own;
  }
  e = run_chain(v, leaf, untrusted, now, chain, detail, n);
  if (v->skew_s > 0 && e == X509_V_ERR_CERT_NOT_YET_VALID &&
      run_chain(v, leaf, untrusted, now + v->skew_s, chain, NULL, 0) ==
          X509_V_OK) {
    e = X509_V_OK;
  } else if (v->skew_s > 0 && e == X509_V_ERR_CERT_HAS_EXPIRED &&
             run_chain(v, leaf, untrusted, now - v->skew_s, chain, NULL, 0) ==
                 X509_V_OK) {
    e = X509_V_OK;
  }
  sk_X509_free(own);
  r = map_chain_error(e);
  if (r == GW_VERIFY_OK && sk_X509_num(*chain) < 2) {
    sk_X509_pop_free(*chain, X509_free);
    *chain = NULL;
    gw_verify_setf(detail, n, "the signer certificate is a trust anchor");
    return GW_VERIFY_UNTRUSTED_CHAIN;
  }
  if (r == GW_VERIFY_INTERNAL) {
    gw_verify_setf(detail, n, "out of memory");
  }
  return r;
}

/* The full check of a certificate that is not in the cache. On success
 * |*until| is when the answer stops being good and |*gen| the CRL
 * generation it relied on. */
static gw_verify_result check_cert_full(gw_verify *v, X509 *leaf,
                                        STACK_OF(X509) * extra, time_t now,
                                        time_t *until, uint64_t *gen,
                                        char *detail, size_t n) {
  STACK_OF(X509) *chain = NULL;
  gw_verify_result r;
  time_t t;
  X509 *issuer;
  int i;

  r = key_usage(leaf, detail, n);
  if (r == GW_VERIFY_OK) {
    r = key_policy(X509_get0_pubkey(leaf), detail, n);
  }
  if (r == GW_VERIFY_OK) {
    r = check_chain(v, leaf, extra, now, &chain, detail, n);
  }
  if (r != GW_VERIFY_OK) {
    return r;
  }
  issuer = sk_X509_value(chain, 1);
  *until = now + v->cache_ttl_s;
  for (i = 0; i < sk_X509_num(chain); i++) {
    if (gw_verify_asn1_time(X509_get0_notAfter(sk_X509_value(chain, i)), &t) ==
            GW_OK &&
        t < *until) {
      *until = t;
    }
  }
  *gen = 0;
  if (v->crl) {
    r = gw_crl_check(v->crl, leaf, issuer, now, v->skew_s, &t, gen, detail, n);
    if (r == GW_VERIFY_OK && t < *until) {
      *until = t;
    }
  }
  if (r == GW_VERIFY_OK && v->ocsp) {
    r = gw_ocsp_check(v->ocsp, leaf, issuer, now, v->skew_s, &t, detail, n);
    if (r == GW_VERIFY_OK && t < *until) {
      *until = t;
    }
  }
  sk_X509_pop_free(chain, X509_free);
  return r;
}

/* Refreshes the CRL and returns the generation a cache entry must carry to
 * be used; a new generation empties the cache. */
static uint64_t cache_gen(gw_verify *v, time_t now) {
  uint64_t gen, seen;

  if (!v->crl) {
    return 0;
  }
  gw_crl_refresh(v->crl, now);
  gen = gw_crl_generation(v->crl);
  seen = atomic_load(&v->crl_gen_seen);
  if (gen != seen &&
      atomic_compare_exchange_strong(&v->crl_gen_seen, &seen, gen)) {
    vc_clear(&v->cache); /* a new CRL: everything is checked again */
  }
  return gen;
}

/* The full check of a certificate that missed the cache; when it passes it
 * is cached. |st| holds its digest and identity. */
static gw_verify_result admit_cert(gw_verify *v, X509 *leaf,
                                   STACK_OF(X509) * extra, time_t now,
                                   gw_verify_status *st) {
  gw_verify_result r;
  uint64_t used = 0;
  time_t until = 0;

  r = check_cert_full(v, leaf, extra, now, &until, &used, st->detail,
                      sizeof(st->detail));
  if (r == GW_VERIFY_OK && until > now) {
    vc_insert(&v->cache, st->cert_sha256, until, used, leaf, &st->identity);
  }
  return r;
}

/* ---- signatures --------------------------------------------------------- */

/* Verifies |sig| over the digest |md| (|mdlen| bytes, made with |mdalg|)
 * with |pk| in the form |alg|. */
static gw_verify_result verify_digest(EVP_PKEY *pk, gw_verify_alg alg,
                                      const EVP_MD *mdalg,
                                      const unsigned char *md, size_t mdlen,
                                      const unsigned char *sig, size_t siglen,
                                      char *detail, size_t n) {
  const unsigned char *p = sig;
  unsigned char *der = NULL;
  ECDSA_SIG *es = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  gw_verify_result r = GW_VERIFY_INTERNAL;
  BIGNUM *br, *bs;
  int id = EVP_PKEY_get_base_id(pk), len, half, ok;

  ok = (alg == GW_VERIFY_ECDSA_RAW || alg == GW_VERIFY_ECDSA_DER)
           ? id == EVP_PKEY_EC
           : (alg == GW_VERIFY_RSA_PSS && id == EVP_PKEY_RSA_PSS) ||
                 id == EVP_PKEY_RSA;
  if (!ok) {
    gw_verify_setf(detail, n, "signature form does not fit the %s key",
                   OBJ_nid2sn(id));
    return GW_VERIFY_UNSUPPORTED;
  }
  if (alg == GW_VERIFY_ECDSA_RAW) {
    half = (EVP_PKEY_get_bits(pk) + 7) / 8;
    if (siglen != (size_t)half * 2) {
      gw_verify_setf(detail, n, "raw ECDSA signature is %zu bytes, expected %d",
                     siglen, half * 2);
      return GW_VERIFY_BAD_FORMAT;
    }
    es = ECDSA_SIG_new();
    br = BN_bin2bn(sig, half, NULL);
    bs = BN_bin2bn(sig + half, half, NULL);
    if (!es || !br || !bs || !ECDSA_SIG_set0(es, br, bs)) {
      BN_free(br);
      BN_free(bs);
      gw_verify_setf(detail, n, "out of memory");
      goto out;
    }
    len = i2d_ECDSA_SIG(es, &der);
    if (len <= 0) {
      gw_verify_setf(detail, n, "out of memory");
      goto out;
    }
    sig = der;
    siglen = (size_t)len;
  } else if (alg == GW_VERIFY_ECDSA_DER) {
    es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
    if (!es || p != sig + siglen) {
      gw_verify_setf(detail, n, "not a DER ECDSA signature");
      r = GW_VERIFY_BAD_FORMAT;
      goto out;
    }
  }
  ctx = EVP_PKEY_CTX_new(pk, NULL);
  if (!ctx || EVP_PKEY_verify_init(ctx) != 1 ||
      EVP_PKEY_CTX_set_signature_md(ctx, mdalg) != 1) {
    gw_verify_setf(detail, n, "cannot set up verification");
    goto out;
  }
  if (alg == GW_VERIFY_RSA_PKCS1 &&
      EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
    goto out;
  }
  if (alg == GW_VERIFY_RSA_PSS &&
      (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mdalg) != 1 ||
       EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_AUTO) != 1)) {
    gw_verify_setf(detail, n, "cannot set up PSS verification");
    goto out;
  }
  if (EVP_PKEY_verify(ctx, sig, siglen, md, mdlen) == 1) {
    r = GW_VERIFY_OK;
  } else {
    gw_verify_setf(detail, n,
                   "signature does not verify with the "
                   "certificate's key over the data asked for");
    r = GW_VERIFY_BAD_SIGNATURE;
  }

out:
  EVP_PKEY_CTX_free(ctx);
  ECDSA_SIG_free(es);
  OPENSSL_free(der);
  ERR_clear_error();
  return r;
}

static int algor_nid(const X509_ALGOR *a) {
  const ASN1_OBJECT *obj = NULL;

  if (!a) {
    return NID_undef;
  }
  X509_ALGOR_get0(&obj, NULL, NULL, a);
  return obj ? OBJ_obj2nid(obj) : NID_undef;
}

/* Verifies the CMS over content |data|: attached and equal, or detached
 * and supplied. */
static gw_verify_result cms_over_content(CMS_ContentInfo *cms,
                                         STACK_OF(X509) * certs,
                                         const void *data, size_t len,
                                         char *detail, size_t n) {
  ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
  const unsigned int flags = CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY;
  BIO *dcont = NULL;
  int ok;

  if (pos && *pos && !CMS_is_detached(cms)) {
    if ((size_t)ASN1_STRING_length(*pos) != len ||
        (len && memcmp(ASN1_STRING_get0_data(*pos), data, len) != 0)) {
      gw_verify_setf(detail, n,
                     "signed content (%d bytes) differs from the "
                     "data asked for (%zu bytes)",
                     ASN1_STRING_length(*pos), len);
      return GW_VERIFY_BAD_SIGNATURE;
    }
    ok = CMS_verify(cms, certs, NULL, NULL, NULL, flags);
  } else {
    dcont = BIO_new_mem_buf(len ? data : "", (int)len);
    if (!dcont) {
      gw_verify_setf(detail, n, "out of memory");
      return GW_VERIFY_INTERNAL;
    }
    ok = CMS_verify(cms, certs, NULL, dcont, NULL, flags);
    BIO_free(dcont);
  }
  if (ok != 1) {
    gw_verify_setf(detail, n,
                   "CMS signature does not verify over the data "
                   "asked for");
    gw_verify_ossl_err(detail, n);
    return GW_VERIFY_BAD_SIGNATURE;
  }
  return GW_VERIFY_OK;
}

/* Verifies a detached CMS over the SHA-256 digest |d| (32 bytes) that the
 * SIM signed as is; falls back to |d| as the content (see gw_verify.h). */
static gw_verify_result cms_over_digest(CMS_ContentInfo *cms,
                                        CMS_SignerInfo *si, X509 *signer,
                                        STACK_OF(X509) * certs, int dig_nid,
                                        const unsigned char *d, char *detail,
                                        size_t n) {
  ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
  const ASN1_OCTET_STRING *md, *sig;
  X509_ALGOR *sigalg = NULL;
  gw_verify_result r;
  EVP_PKEY *pk = X509_get0_pubkey(signer);
  int id;

  if ((pos && *pos && !CMS_is_detached(cms)) || dig_nid != NID_sha256) {
    return cms_over_content(cms, certs, d, 32, detail, n);
  }
  if (CMS_signed_get_attr_count(si) > 0) {
    md = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_messageDigest),
                                     -3, V_ASN1_OCTET_STRING);
    if (!md || ASN1_STRING_length(md) != 32 ||
        memcmp(ASN1_STRING_get0_data(md), d, 32) != 0) {
      return cms_over_content(cms, certs, d, 32, detail, n);
    }
    CMS_SignerInfo_set1_signer_cert(si, signer);
    if (CMS_SignerInfo_verify(si) != 1) {
      gw_verify_setf(detail, n, "CMS signature does not verify");
      gw_verify_ossl_err(detail, n);
      return GW_VERIFY_BAD_SIGNATURE;
    }
    return GW_VERIFY_OK;
  }
  /* No signed attributes: the signature is over the digest itself. */
  CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &sigalg);
  sig = CMS_SignerInfo_get0_signature(si);
  id = EVP_PKEY_get_base_id(pk);
  if (!sig || !sigalg || algor_nid(sigalg) == NID_rsassaPss ||
      (id != EVP_PKEY_EC && id != EVP_PKEY_RSA)) {
    return cms_over_content(cms, certs, d, 32, detail, n);
  }
  r = verify_digest(
      pk, id == EVP_PKEY_EC ? GW_VERIFY_ECDSA_DER : GW_VERIFY_RSA_PKCS1,
      EVP_sha256(), d, 32, ASN1_STRING_get0_data(sig),
      (size_t)ASN1_STRING_length(sig), detail, n);
  if (r == GW_VERIFY_OK) {
    return r;
  }
  return cms_over_content(cms, certs, d, 32, detail, n);
}

/* ---- the CMS fast path -------------------------------------------------- */

/* d2i_CMS_ContentInfo() parses every certificate in the CMS, which costs
 * more than the signature itself (see the cache). When the signer's
 * certificate is cached, the CMS is parsed without its certificates: a DER
 * walk cuts the SignedData's [0] certificates field out, and the cached
 * certificate stands in for the one cut out (same DER, same SHA-256). Any
 * surprise in the walk (BER, unusual shapes) falls back to the full
 * parse, which gives the definitive answer. */

typedef struct der_item {
  const unsigned char *whole; /* tag, length and content */
  size_t whole_len;
  const unsigned char *body; /* content */
  size_t body_len;
  unsigned char tag;
} der_item;

/* Reads one item with a low tag number and a definite length. */
static int der_read(const unsigned char **p, const unsigned char *end,
                    der_item *it) {
  const unsigned char *q = *p;
  size_t len = 0;
  int nb;

  if (end - q < 2 || (q[0] & 0x1f) == 0x1f) {
    return -1;
  }
  it->tag = *q++;
  if (*q < 0x80) {
    len = *q++;
  } else {
    nb = *q++ & 0x7f;
    if (nb == 0 || nb > 3 || end - q < nb) {
      return -1; /* indefinite, or over 16 MiB */
    }
    while (nb-- > 0) {
      len = len << 8 | *q++;
    }
  }
  if ((size_t)(end - q) < len) {
    return -1;
  }
  it->whole = *p;
  it->body = q;
  it->body_len = len;
  it->whole_len = (size_t)(q - *p) + len;
  *p = q + len;
  return 0;
}

static size_t der_hdr_len(size_t n) {
  return n < 0x80 ? 2 : n < 0x100 ? 3 : n < 0x10000 ? 4 : 5;
}

static unsigned char *der_put_hdr(unsigned char *o, unsigned char tag,
                                  size_t n) {
  size_t k = der_hdr_len(n) - 2;

  *o++ = tag;
  if (k == 0) {
    *o++ = (unsigned char)n;
    return o;
  }
  *o++ = (unsigned char)(0x80 | k);
  while (k-- > 0) {
    *o++ = (unsigned char)(n >> (8 * k));
  }
  return o;
}

/* Splits a DER ContentInfo holding a SignedData into its certificates
 * (|certs|, at most GW_VERIFY_CMS_CERTS_MAX, pointing into |p|) and a copy
 * without them (|*out|, freed by the caller). Returns 0, or -1 when the
 * input is not of the expected shape or memory ran out. */
static int cms_split(const unsigned char *p, size_t n, der_item *certs,
                     int *ncerts, unsigned char **out, size_t *outlen) {
  static const unsigned char oid_signed_data[] = {
      0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};
  const unsigned char *q = p, *end = p + n, *r;
  der_item ci, oid, e0, sd, it, keep[5];
  size_t body = 0, e0_len, ci_len;
  unsigned char *o;
  int nk = 0, i, found = 0;

  *ncerts = 0;
  if (der_read(&q, end, &ci) || ci.tag != 0x30 || q != end) {
    return -1;
  }
  q = ci.body;
  end = ci.body + ci.body_len;
  if (der_read(&q, end, &oid) || oid.whole_len != sizeof(oid_signed_data) ||
      memcmp(oid.whole, oid_signed_data, sizeof(oid_signed_data)) != 0 ||
      der_read(&q, end, &e0) || e0.tag != 0xa0 || q != end) {
    return -1;
  }
  q = e0.body;
  end = e0.body + e0.body_len;
  if (der_read(&q, end, &sd) || sd.tag != 0x30 || q != end) {
    return -1;
  }
  q = sd.body;
  end = sd.body + sd.body_len;
  while (q < end) {
    if (der_read(&q, end, &it)) {
      return -1;
    }
    if (it.tag == 0xa0 && !found) { /* [0] IMPLICIT certificates */
      found = 1;
      r = it.body;
      while (r < it.body + it.body_len) {
        if (*ncerts == GW_VERIFY_CMS_CERTS_MAX ||
            der_read(&r, it.body + it.body_len, &certs[*ncerts]) ||
            certs[*ncerts].tag != 0x30) {
          return -1;
        }
        (*ncerts)++;
      }
    } else if (nk == 5) {
      return -1;
    } else {
      keep[nk++] = it;
      body += it.whole_len;
    }
  }
  if (*ncerts == 0) {
    return -1;
  }
  e0_len = der_hdr_len(body) + body;
  ci_len = oid.whole_len + der_hdr_len(e0_len) + e0_len;
  *outlen = der_hdr_len(ci_len) + ci_len;
  o = *out = OPENSSL_malloc(*outlen);
  if (!o) {
    return -1;
  }
  o = der_put_hdr(o, 0x30, ci_len);
  memcpy(o, oid.whole, oid.whole_len);
  o = der_put_hdr(o + oid.whole_len, 0xa0, e0_len);
  o = der_put_hdr(o, 0x30, body);
  for (i = 0; i < nk; i++) {
    memcpy(o, keep[i].whole, keep[i].whole_len);
    o += keep[i].whole_len;
  }
  return 0;
}

/* ---- the public verifications ------------------------------------------- */

static gw_verify_result finish(gw_verify_status *st, gw_verify_result r) {
  st->result = r;
  if (r == GW_VERIFY_OK) {
    st->detail[0] = '\0';
  } else if (r == GW_VERIFY_INTERNAL && st->err == GW_OK) {
    st->err = GW_ERR_INTERNAL;
  }
  ERR_clear_error();
  return r;
}

static gw_verify_result internal(gw_verify_status *st, int err,
                                 const char *why) {
  st->err = err;
  gw_verify_setf(st->detail, sizeof(st->detail), "%s", why);
  return finish(st, GW_VERIFY_INTERNAL);
}

/* Common argument checks. Returns GW_VERIFY_OK to go on. */
static gw_verify_result check_args(gw_verify *v, const gw_verify_req *req,
                                   gw_verify_status *st, int need_data) {
  if (!v || !req) {
    return internal(st, GW_ERR_INVALID, "no verifier or request");
  }
  if (!need_data) {
    return GW_VERIFY_OK;
  }
  if ((!req->data && req->data_len) || req->data_len > GW_VERIFY_DATA_MAX) {
    return internal(st, GW_ERR_TOO_LARGE,
                    "data to be signed missing or over its cap");
  }
  if (req->data_kind == GW_VERIFY_DIGEST && req->data_len != 32) {
    return internal(st, GW_ERR_INVALID, "a SHA-256 digest is 32 bytes");
  }
  if (req->data_kind != GW_VERIFY_DATA && req->data_kind != GW_VERIFY_DIGEST) {
    return internal(st, GW_ERR_INVALID, "unknown data kind");
  }
  return GW_VERIFY_OK;
}

/* Gets the certificate req->cert: from the cache (no parsing), else
 * parsed. On GW_VERIFY_OK |*x| holds a reference and |st| its digest,
 * identity and whether it came from the cache. */
static gw_verify_result get_cert(gw_verify *v, const gw_verify_req *req,
                                 time_t now, uint64_t gen, X509 **x,
                                 gw_verify_status *st) {
  const unsigned char *der, *p;
  unsigned char *owned = NULL;
  size_t der_len;
  int rv;

  *x = NULL;
  if (!req->cert || req->cert_len == 0) {
    gw_verify_setf(st->detail, sizeof(st->detail), "no certificate given");
    return GW_VERIFY_NO_CERT;
  }
  if (req->cert_len > GW_VERIFY_CERT_MAX) {
    gw_verify_setf(st->detail, sizeof(st->detail),
                   "certificate larger than %d bytes", GW_VERIFY_CERT_MAX);
    return GW_VERIFY_BAD_CERT;
  }
  rv = decode_der(req->cert, req->cert_len, cert_labels, &der, &der_len, &owned,
                  st->detail, sizeof(st->detail));
  if (rv == GW_ERR_NOMEM) {
    st->err = rv;
    return GW_VERIFY_INTERNAL;
  }
  if (rv != GW_OK) {
    return GW_VERIFY_BAD_CERT;
  }
  if (!EVP_Digest(der, der_len, st->cert_sha256, NULL, EVP_sha256(), NULL)) {
    OPENSSL_free(owned);
    return GW_VERIFY_INTERNAL;
  }
  if (vc_lookup(&v->cache, st->cert_sha256, now, gen, 1, x, &st->identity)) {
    st->cached = 1;
  } else {
    p = der;
    *x = d2i_X509(NULL, &p, (long)der_len);
    if (!*x || p != der + der_len) {
      X509_free(*x);
      *x = NULL;
      OPENSSL_free(owned);
      gw_verify_setf(st->detail, sizeof(st->detail),
                     "certificate is not DER X.509 (truncated, trailing "
                     "bytes or garbage)");
      return GW_VERIFY_BAD_CERT;
    }
    identity_from_x509(*x, &st->identity);
  }
  OPENSSL_free(owned);
  st->have_cert = 1;
  return GW_VERIFY_OK;
}

static gw_verify_result check_identity(const gw_verify_req *req,
                                       gw_verify_status *st) {
  return gw_verify_identity_check(&st->identity, req->expect_civil_id,
                                  req->expect_msisdn, st->detail,
                                  sizeof(st->detail));
}

/* Checks the structure of a parsed CMS; |*si| is its only signer. */
static gw_verify_result cms_shape(CMS_ContentInfo *cms, CMS_SignerInfo **si,
                                  char *detail, size_t n) {
  STACK_OF(CMS_SignerInfo) * sis;

  if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ||
      OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
    gw_verify_setf(detail, n, "not a SignedData over id-data");
    return GW_VERIFY_BAD_FORMAT;
  }
  sis = CMS_get0_SignerInfos(cms);
  if (sk_CMS_SignerInfo_num(sis) != 1) {
    gw_verify_setf(detail, n, "%d signers, expected 1",
                   sk_CMS_SignerInfo_num(sis));
    return GW_VERIFY_BAD_FORMAT;
  }
  *si = sk_CMS_SignerInfo_value(sis, 0);
  return GW_VERIFY_OK;
}

/* What is common to both CMS paths, once the signer is known: identity,
 * digest algorithm, signature, then the certificate unless cached. */
static gw_verify_result cms_check(gw_verify *v, const gw_verify_req *req,
                                  CMS_ContentInfo *cms, CMS_SignerInfo *si,
                                  X509 *signer, STACK_OF(X509) * certs,
                                  time_t now, gw_verify_status *st) {
  X509_ALGOR *dig = NULL;
  gw_verify_result r;
  int dig_nid;

  r = check_identity(req, st);
  if (r != GW_VERIFY_OK) {
    return r;
  }
  CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
  dig_nid = algor_nid(dig);
  if (dig_nid != NID_sha256 && dig_nid != NID_sha384 && dig_nid != NID_sha512) {
    gw_verify_setf(st->detail, sizeof(st->detail),
                   "digest algorithm %s not accepted",
                   dig_nid == NID_undef ? "(unknown)" : OBJ_nid2sn(dig_nid));
    return GW_VERIFY_UNSUPPORTED;
  }
  /* Bind the signer chosen here, so that CMS_verify() checks the signature
   * with the very certificate whose chain is checked (a CMS may carry
   * several certificates matching the signer identifier). */
  CMS_SignerInfo_set1_signer_cert(si, signer);
  if (req->data_kind == GW_VERIFY_DIGEST) {
    r = cms_over_digest(cms, si, signer, certs, dig_nid, req->data, st->detail,
                        sizeof(st->detail));
  } else {
    r = cms_over_content(cms, certs, req->data, req->data_len, st->detail,
                         sizeof(st->detail));
  }
  if (r == GW_VERIFY_OK && !st->cached) {
    r = admit_cert(v, signer, certs, now, st);
  }
  return r;
}

/* The fast path: returns 1 when it gave the answer (in |*r|), 0 when the
 * full parse must run. */
static int cms_fast(gw_verify *v, const gw_verify_req *req,
                    const unsigned char *der, size_t der_len, time_t now,
                    uint64_t gen, gw_verify_status *st, gw_verify_result *r) {
  der_item certs[GW_VERIFY_CMS_CERTS_MAX];
  unsigned char *stripped = NULL, key[32];
  const unsigned char *p;
  STACK_OF(X509) *sk = NULL;
  CMS_ContentInfo *cms = NULL;
  CMS_SignerInfo *si = NULL;
  gw_verify_identity id;
  X509 *x, *signer = NULL;
  size_t slen = 0;
  char scratch[8];
  int ncerts, i;

  if (v->cache.cap == 0 ||
      cms_split(der, der_len, certs, &ncerts, &stripped, &slen) != 0) {
    return 0;
  }
  p = stripped;
  cms = d2i_CMS_ContentInfo(NULL, &p, (long)slen);
  if (!cms || p != stripped + slen ||
      cms_shape(cms, &si, scratch, sizeof(scratch)) != GW_VERIFY_OK) {
    goto miss;
  }
  for (i = 0; i < ncerts && !signer; i++) {
    x = NULL;
    if (!EVP_Digest(certs[i].whole, certs[i].whole_len, key, NULL, EVP_sha256(),
                    NULL) ||
        !vc_lookup(&v->cache, key, now, gen, 0, &x, &id)) {
      continue;
    }
    if (CMS_SignerInfo_cert_cmp(si, x) == 0) {
      signer = x;
    } else {
      X509_free(x);
    }
  }
  sk = signer ? sk_X509_new_null() : NULL;
  if (!sk || !sk_X509_push(sk, signer)) {
    goto miss;
  }
  vc_count(&v->cache, 1);
  memcpy(st->cert_sha256, key, 32);
  st->identity = id;
  st->have_cert = 1;
  st->cached = 1;
  *r = cms_check(v, req, cms, si, signer, sk, now, st);
  sk_X509_free(sk);
  X509_free(signer);
  CMS_ContentInfo_free(cms);
  OPENSSL_free(stripped);
  return 1;

miss:
  sk_X509_free(sk);
  X509_free(signer);
  CMS_ContentInfo_free(cms);
  OPENSSL_free(stripped);
  ERR_clear_error();
  return 0;
}

gw_verify_result gw_verify_cms(gw_verify *v, const gw_verify_req *req,
                               gw_verify_status *st) {
  const unsigned char *der = NULL, *p;
  unsigned char *owned = NULL;
  STACK_OF(X509) *certs = NULL;
  CMS_ContentInfo *cms = NULL;
  CMS_SignerInfo *si = NULL;
  X509 *signer = NULL;
  gw_verify_result r;
  size_t der_len = 0;
  unsigned int mdlen = 0;
  uint64_t gen;
  time_t now;
  int i, rv;

  if (!st) {
    return GW_VERIFY_INTERNAL;
  }
  memset(st, 0, sizeof(*st));
  r = check_args(v, req, st, 1);
  if (r != GW_VERIFY_OK) {
    return r;
  }
  if (!req->sig || req->sig_len == 0) {
    gw_verify_setf(st->detail, sizeof(st->detail), "empty signature");
    return finish(st, GW_VERIFY_BAD_FORMAT);
  }
  if (req->sig_len > GW_VERIFY_CMS_MAX) {
    gw_verify_setf(st->detail, sizeof(st->detail), "CMS larger than %d bytes",
                   GW_VERIFY_CMS_MAX);
    return finish(st, GW_VERIFY_BAD_FORMAT);
  }
  rv = decode_der(req->sig, req->sig_len, cms_labels, &der, &der_len, &owned,
                  st->detail, sizeof(st->detail));
  if (rv == GW_ERR_NOMEM) {
    return internal(st, rv, "out of memory");
  }
  if (rv != GW_OK) {
    return finish(st, GW_VERIFY_BAD_FORMAT);
  }
  now = now_of(v);
  gen = cache_gen(v, now);
  if (cms_fast(v, req, der, der_len, now, gen, st, &r)) {
    OPENSSL_free(owned);
    return finish(st, r);
  }
  r = GW_VERIFY_BAD_FORMAT;
  p = der;
  cms = d2i_CMS_ContentInfo(NULL, &p, (long)der_len);
  if (!cms || p != der + der_len) {
    gw_verify_setf(st->detail, sizeof(st->detail),
                   "not a DER CMS ContentInfo (truncated, trailing bytes or "
                   "garbage)");
    goto out;
  }
  r = cms_shape(cms, &si, st->detail, sizeof(st->detail));
  if (r != GW_VERIFY_OK) {
    goto out;
  }
  certs = CMS_get1_certs(cms);
  if (sk_X509_num(certs) > GW_VERIFY_CMS_CERTS_MAX) {
    gw_verify_setf(st->detail, sizeof(st->detail),
                   "more than %d certificates in the CMS",
                   GW_VERIFY_CMS_CERTS_MAX);
    r = GW_VERIFY_BAD_FORMAT;
    goto out;
  }
  for (i = 0; i < sk_X509_num(certs) && !signer; i++) {
    if (CMS_SignerInfo_cert_cmp(si, sk_X509_value(certs, i)) == 0) {
      signer = sk_X509_value(certs, i);
    }
  }
  if (!signer) {
    gw_verify_setf(st->detail, sizeof(st->detail),
                   "the signer's certificate is not in the CMS");
    r = GW_VERIFY_NO_CERT;
    goto out;
  }
  if (X509_digest(signer, EVP_sha256(), st->cert_sha256, &mdlen) != 1) {
    r = GW_VERIFY_INTERNAL;
    goto out;
  }
  st->have_cert = 1;
  if (vc_lookup(&v->cache, st->cert_sha256, now, gen, 1, NULL, &st->identity)) {
    st->cached = 1;
  } else {
    identity_from_x509(signer, &st->identity);
  }
  r = cms_check(v, req, cms, si, signer, certs, now, st);

out:
  sk_X509_pop_free(certs, X509_free);
  CMS_ContentInfo_free(cms);
  OPENSSL_free(owned);
  return finish(st, r);
}

gw_verify_result gw_verify_raw(gw_verify *v, const gw_verify_req *req,
                               gw_verify_status *st) {
  unsigned char md[32];
  const unsigned char *digest;
  gw_verify_result r;
  X509 *x = NULL;
  time_t now;

  if (!st) {
    return GW_VERIFY_INTERNAL;
  }
  memset(st, 0, sizeof(*st));
  r = check_args(v, req, st, 1);
  if (r != GW_VERIFY_OK) {
    return r;
  }
  if ((unsigned)req->alg > GW_VERIFY_RSA_PSS) {
    return internal(st, GW_ERR_INVALID, "unknown signature form");
  }
  if (!req->sig || req->sig_len == 0 || req->sig_len > GW_VERIFY_RAWSIG_MAX) {
    gw_verify_setf(st->detail, sizeof(st->detail),
                   "signature empty or larger than %d bytes",
                   GW_VERIFY_RAWSIG_MAX);
    return finish(st, GW_VERIFY_BAD_FORMAT);
  }
  now = now_of(v);
  r = get_cert(v, req, now, cache_gen(v, now), &x, st);
  if (r == GW_VERIFY_OK) {
    r = check_identity(req, st);
  }
  if (r == GW_VERIFY_OK) {
    digest = req->data;
    if (req->data_kind == GW_VERIFY_DATA) {
      if (!EVP_Digest(req->data_len ? req->data : "", req->data_len, md, NULL,
                      EVP_sha256(), NULL)) {
        X509_free(x);
        return internal(st, GW_ERR_TLS, "SHA-256 failed");
      }
      digest = md;
    }
    r = verify_digest(X509_get0_pubkey(x), req->alg, EVP_sha256(), digest, 32,
                      req->sig, req->sig_len, st->detail, sizeof(st->detail));
  }
  if (r == GW_VERIFY_OK && !st->cached) {
    r = admit_cert(v, x, NULL, now, st);
  }
  X509_free(x);
  return finish(st, r);
}

gw_verify_result gw_verify_cert(gw_verify *v, const gw_verify_req *req,
                                gw_verify_status *st) {
  gw_verify_result r;
  X509 *x = NULL;
  time_t now;

  if (!st) {
    return GW_VERIFY_INTERNAL;
  }
  memset(st, 0, sizeof(*st));
  r = check_args(v, req, st, 0);
  if (r != GW_VERIFY_OK) {
    return r;
  }
  now = now_of(v);
  r = get_cert(v, req, now, cache_gen(v, now), &x, st);
  if (r == GW_VERIFY_OK) {
    r = check_identity(req, st);
  }
  if (r == GW_VERIFY_OK && !st->cached) {
    r = admit_cert(v, x, NULL, now, st);
  }
  X509_free(x);
  return finish(st, r);
}
