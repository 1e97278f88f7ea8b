/* gw_jose.c — base64url, compact JWS signed on the gateway's token, the
 * JWKS, and strict verification of the gateway's own tokens.
 *
 * Signing goes through the token (p11_sign: ECDSA returns raw r||s, which
 * is what JWS wants; RSA PKCS#1 v1.5 over a SHA-256 DigestInfo) or, for the
 * tests' gw_signer_new_pem, through OpenSSL with a software key (ECDSA
 * comes back as DER there and is converted). Verification always uses
 * OpenSSL with the public keys only, so it never touches the token and
 * runs on any thread.
 *
 * The verifier accepts only what the signer makes: the header picks the key
 * by kid, the alg must be that key's alg, and nothing else in the header
 * (jku, jwk, x5u, x5c) is ever used to find a key. */
#include "gw_jose.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_pki.h"
#include "p11.h"

/* A compact JWT, either way. Our tokens are a few hundred bytes; the cap
 * bounds what a client can make the verifier decode and parse. */
#define JOSE_MAX 16384
#define JOSE_ES256_SIGLEN 64 /* r||s, 32 bytes each (RFC 7518 §3.4) */
#define JOSE_EC_COORD 32     /* a P-256 coordinate or scalar */
#define JOSE_RSA_MIN_BITS 2048
#define JOSE_RSA_MAX_BYTES 512 /* 4096 bits: the largest modulus taken */
#define JOSE_DIGEST 32         /* SHA-256 */
#define JOSE_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)

/* One signing key, shared (refcounted) by the key sets that list it, so
 * that a reload keeps the token handles of the keys it had already. */
typedef struct jose_key {
  int refs; /* __atomic */
  gw_jws_alg alg;
  EVP_PKEY *pub;  /* verification and the JWKS: public half only */
  EVP_PKEY *priv; /* gw_signer_new_pem: the software key; else NULL */
  p11_key *tok;   /* gw_signer_new: the key on the token; else NULL */
  size_t siglen;  /* 64 for ES256, the modulus size for RS256 */
  char kid[GW_PKI_KID_LEN + 1];
  char label[GW_PKI_GWKEY_NAME_MAX + 1];
} jose_key;

/* The keys of one reading of gateway_keys.dir/kids, immutable once
 * installed. Readers take a reference (jose_set_get) for the length of one
 * call; a reload swaps in a new set and the old one goes with its last
 * reader. */
typedef struct jose_set {
  int refs;                          /* __atomic */
  gw_pki_gwkeys list;                /* names and times */
  jose_key *keys[GW_PKI_GWKEYS_MAX]; /* list.k[i]'s key; NULL: retired */
} jose_set;

/* Every kid the signer has loaded, kept until gw_signer_del, so that the
 * string gw_signer_kid returns outlives reloads. */
typedef struct jose_name {
  struct jose_name *next;
  char kid[GW_PKI_KID_LEN + 1];
} jose_name;

struct gw_signer {
  pthread_mutex_t mu; /* guards set and names */
  jose_set *set;
  jose_name *names;
  /* Fetched once: OpenSSL 3 would otherwise look SHA-256 up in its
   * provider tables on every EVP_sha256() use. */
  EVP_MD *sha256;
  /* gw_signer_new only (NULL for gw_signer_new_pem): what reloads need. */
  const gw_config *cfg;
  p11_module *m;
  pthread_mutex_t reload_mu; /* one reload at a time; guards the stamp */
  int have_stamp;
  struct stat stamp; /* gateway_keys.dir/kids when last read */
};

/* ---- base64url ---------------------------------------------------------- */

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Characters needed for |n| bytes without padding. */
static size_t b64url_len(size_t n) {
  return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

static int b64url_val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '-') {
    return 62;
  }
  return c == '_' ? 63 : -1;
}

int gw_b64url_encode(const void *p, size_t n, gw_buf *out) {
  const unsigned char *in = p;
  size_t old, i;
  char chunk[256];
  size_t used = 0;
  int rv = GW_OK;

  if (!out || (!p && n)) {
    return GW_ERR_INVALID;
  }
  /* Checked up front so that a too-long input leaves |out| as it was. */
  if (n > SIZE_MAX / 4 * 3 || b64url_len(n) > out->cap - out->len) {
    return GW_ERR_TOO_LARGE;
  }
  old = out->len;
  for (i = 0; i < n && rv == GW_OK; i += 3) {
    unsigned long v = (unsigned long)in[i] << 16;
    size_t left = n - i;

    if (left > 1) {
      v |= (unsigned long)in[i + 1] << 8;
    }
    if (left > 2) {
      v |= in[i + 2];
    }
    chunk[used++] = b64url_chars[(v >> 18) & 63];
    chunk[used++] = b64url_chars[(v >> 12) & 63];
    if (left > 1) {
      chunk[used++] = b64url_chars[(v >> 6) & 63];
    }
    if (left > 2) {
      chunk[used++] = b64url_chars[v & 63];
    }
    if (used > sizeof(chunk) - 4 || i + 3 >= n) {
      rv = gw_buf_append(out, chunk, used);
      used = 0;
    }
  }
  if (rv == GW_OK && n == 0) {
    rv = gw_buf_append(out, "", 0); /* an empty input still terminates */
  }
  if (rv != GW_OK && out->data) {
    out->len = old;
    out->data[old] = '\0';
  }
  return rv;
}

int gw_b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap,
                     size_t *outlen) {
  unsigned long acc = 0;
  unsigned bits = 0;
  size_t o = 0;

  if ((!s && n) || (!out && cap) || !outlen) {
    return GW_ERR_INVALID;
  }
  /* One leftover character carries 6 bits: not even a byte. */
  if (n % 4 == 1) {
    return GW_ERR_INVALID;
  }
  if (n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > cap) {
    return GW_ERR_TOO_LARGE;
  }
  for (size_t i = 0; i < n; i++) {
    int v = b64url_val((unsigned char)s[i]);

    if (v < 0) {
      return GW_ERR_INVALID; /* '=', whitespace, '+', '/', anything else */
    }
    acc = (acc << 6) | (unsigned long)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1ul << bits) - 1;
    }
  }
  /* The unused low bits of the last character must be zero (RFC 4648
   * §3.5 lets decoders insist): otherwise several strings decode to the
   * same bytes, and a revoked token could come back under a new string. */
  if (acc != 0) {
    return GW_ERR_INVALID;
  }
  *outlen = o;
  return GW_OK;
}

/* ---- algorithms --------------------------------------------------------- */

const char *gw_jws_alg_name(gw_jws_alg a) {
  switch (a) {
  case GW_JWS_ES256:
    return "ES256";
  case GW_JWS_RS256:
    return "RS256";
  default:
    return NULL;
  }
}

gw_jws_alg gw_jws_alg_parse(const char *s) {
  if (!s) {
    return GW_JWS_NONE;
  }
  if (strcmp(s, "ES256") == 0) {
    return GW_JWS_ES256;
  }
  if (strcmp(s, "RS256") == 0) {
    return GW_JWS_RS256;
  }
  return GW_JWS_NONE;
}

/* ---- key sets ------------------------------------------------------------ */

static void jose_key_unref(jose_key *k) {
  if (!k || __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) != 0) {
    return;
  }
  EVP_PKEY_free(k->pub);
  EVP_PKEY_free(k->priv);
  p11_key_del(k->tok); /* the last key logs the token out */
  free(k);
}

static void jose_set_unref(jose_set *set) {
  if (!set || __atomic_sub_fetch(&set->refs, 1, __ATOMIC_ACQ_REL) != 0) {
    return;
  }
  for (size_t i = 0; i < set->list.n; i++) {
    jose_key_unref(set->keys[i]);
  }
  free(set);
}

/* The current set with a reference the caller drops (jose_set_unref). */
static jose_set *jose_set_get(const gw_signer *s) {
  pthread_mutex_t *mu = (pthread_mutex_t *)&s->mu;
  jose_set *set;

  pthread_mutex_lock(mu);
  set = s->set;
  if (set) {
    __atomic_add_fetch(&set->refs, 1, __ATOMIC_RELAXED);
  }
  pthread_mutex_unlock(mu);
  return set;
}

static long long jose_now(void) {
  return (long long)time(NULL);
}

/* The key that signs for |alg| at |now| (gw_pki_gwkey_current), or NULL. */
static const jose_key *jose_signing_key(const jose_set *set, gw_jws_alg alg,
                                        long long now) {
  const char *name = gw_jws_alg_name(alg);
  long i = name && set ? gw_pki_gwkey_current(&set->list, name, now) : -1;

  return i >= 0 ? set->keys[i] : NULL;
}

/* Whether key |i| is in the JWKS and verifies tokens at |now|: published
 * and not retired. */
static int jose_published(const jose_set *set, size_t i, long long now) {
  gw_pki_gwkey_state st = gw_pki_gwkey_state_at(&set->list, i, now);

  return set->keys[i] && st != GW_PKI_GWKEY_PENDING &&
         st != GW_PKI_GWKEY_RETIRED;
}

const char *gw_signer_kid(const gw_signer *s, gw_jws_alg alg) {
  pthread_mutex_t *mu;
  const jose_key *k;
  const char *kid = NULL;

  if (!s) {
    return NULL;
  }
  mu = (pthread_mutex_t *)&s->mu;
  pthread_mutex_lock(mu);
  k = jose_signing_key(s->set, alg, jose_now());
  for (const jose_name *n = s->names; k && n; n = n->next) {
    if (strcmp(n->kid, k->kid) == 0) {
      kid = n->kid;
      break;
    }
  }
  pthread_mutex_unlock(mu);
  return kid;
}

/* Makes |set| the signer's (the signer takes the caller's reference),
 * after adding its kids to the names. Returns GW_OK or GW_ERR_NOMEM (the
 * set is then not installed and still the caller's). */
static int jose_install(gw_signer *s, jose_set *set) {
  jose_set *old;
  int rv = GW_OK;

  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; rv == GW_OK && i < set->list.n; i++) {
    const jose_name *n = s->names;
    jose_name *nn;

    if (!set->keys[i]) {
      continue;
    }
    while (n && strcmp(n->kid, set->keys[i]->kid) != 0) {
      n = n->next;
    }
    if (n) {
      continue;
    }
    nn = malloc(sizeof(*nn));
    if (!nn) {
      rv = GW_ERR_NOMEM;
      break;
    }
    memcpy(nn->kid, set->keys[i]->kid, sizeof(nn->kid));
    nn->next = s->names;
    s->names = nn;
  }
  old = rv == GW_OK ? s->set : NULL;
  if (rv == GW_OK) {
    s->set = set;
  }
  pthread_mutex_unlock(&s->mu);
  jose_set_unref(old);
  return rv;
}

/* ---- keys --------------------------------------------------------------- */

static int jose_is_p256(EVP_PKEY *k) {
  char name[64];
  size_t len = 0;
  int nid;

  if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
      !EVP_PKEY_get_group_name(k, name, sizeof(name), &len)) {
    return 0;
  }
  nid = OBJ_txt2nid(name);
  if (nid == NID_undef) {
    nid = EC_curve_nist2nid(name);
  }
  return nid == NID_X9_62_prime256v1;
}

/* Checks that |pub| fits |alg| (P-256; RSA of 2048..4096 bits, plain RSA
 * and not RSA-PSS, whose keys would default to PSS padding), takes a
 * reference to it and computes the kid. */
static int jose_key_set(jose_key *k, gw_jws_alg alg, EVP_PKEY *pub,
                        const char *what, char *err, size_t errlen) {
  int bits;

  if (alg == GW_JWS_ES256 && !jose_is_p256(pub)) {
    gw_errf(err, errlen, "%s: not an EC P-256 key (ES256)", what);
    return GW_ERR_CONFIG;
  }
  if (alg == GW_JWS_RS256) {
    bits = EVP_PKEY_get_bits(pub);
    if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA || bits < JOSE_RSA_MIN_BITS ||
        bits > JOSE_RSA_MAX_BYTES * 8) {
      gw_errf(err, errlen, "%s: not an RSA key of 2048 to 4096 bits (RS256)",
              what);
      return GW_ERR_CONFIG;
    }
  }
  if (gw_pki_kid(pub, k->kid, sizeof(k->kid)) != GW_OK ||
      !EVP_PKEY_up_ref(pub)) {
    gw_errf(err, errlen, "%s: cannot compute the kid", what);
    return GW_ERR_NOMEM;
  }
  k->pub = pub;
  k->alg = alg;
  k->siglen =
      alg == GW_JWS_ES256 ? JOSE_ES256_SIGLEN : (size_t)EVP_PKEY_get_size(pub);
  return GW_OK;
}

/* The public half of |priv| as a key of its own, so that verification
 * and the JWKS never hold the private key. */
static EVP_PKEY *jose_public_of(EVP_PKEY *priv) {
  unsigned char *der = NULL;
  const unsigned char *p;
  EVP_PKEY *pub;
  int len = i2d_PUBKEY(priv, &der);

  if (len <= 0) {
    return NULL;
  }
  p = der;
  pub = d2i_PUBKEY(NULL, &p, len);
  OPENSSL_free(der);
  return pub;
}

static gw_signer *jose_signer_alloc(void) {
  gw_signer *s = calloc(1, sizeof(*s));

  if (!s) {
    return NULL;
  }
  s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  if (!s->sha256) {
    free(s);
    return NULL;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->reload_mu, NULL);
  return s;
}

static jose_set *jose_set_alloc(void) {
  jose_set *set = calloc(1, sizeof(*set));

  if (set) {
    set->refs = 1;
  }
  return set;
}

static jose_key *jose_key_alloc(void) {
  jose_key *k = calloc(1, sizeof(*k));

  if (k) {
    k->refs = 1;
  }
  return k;
}

void gw_signer_del(gw_signer *s) {
  if (!s) {
    return;
  }
  jose_set_unref(s->set);
  while (s->names) {
    jose_name *n = s->names;
    s->names = n->next;
    free(n);
  }
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->reload_mu);
  EVP_MD_free(s->sha256);
  free(s);
}

/* A private key in PEM from memory. Encrypted PEMs are refused rather
 * than prompting on the terminal. */
static int jose_no_password(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

static int jose_load_pem(jose_key *k, gw_jws_alg alg, const char *pem,
                         char *err, size_t errlen) {
  const char *name = gw_jws_alg_name(alg);
  BIO *b = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *priv = NULL, *pub = NULL;
  int rv;

  if (!b) {
    return GW_ERR_NOMEM;
  }
  priv = PEM_read_bio_PrivateKey(b, NULL, jose_no_password, NULL);
  BIO_free(b);
  if (!priv) {
    gw_errf(err, errlen, "%s: not a PEM private key", name);
    rv = GW_ERR_CONFIG;
    goto fail;
  }
  pub = jose_public_of(priv);
  if (!pub) {
    gw_errf(err, errlen, "%s: cannot extract the public key", name);
    rv = GW_ERR_NOMEM;
    goto fail;
  }
  rv = jose_key_set(k, alg, pub, name, err, errlen);
  if (rv != GW_OK) {
    goto fail;
  }
  EVP_PKEY_free(pub); /* jose_key_set took its own reference */
  k->priv = priv;
  return GW_OK;

fail:
  ERR_clear_error();
  EVP_PKEY_free(pub);
  EVP_PKEY_free(priv);
  return rv;
}

int gw_signer_new_pem(gw_signer **out, const char *es256_pem,
                      const char *rs256_pem, char *err, size_t errlen) {
  const char *pems[2] = {es256_pem, rs256_pem};
  gw_signer *s;
  jose_set *set;
  int rv = GW_OK;

  if (!out || (!es256_pem && !rs256_pem)) {
    gw_errf(err, errlen, "no key given");
    return GW_ERR_INVALID;
  }
  s = jose_signer_alloc();
  set = jose_set_alloc();
  if (!s || !set) {
    gw_signer_del(s);
    free(set);
    gw_errf(err, errlen, "out of memory");
    return GW_ERR_NOMEM;
  }
  /* Two current keys, as the two-line kids file describes them. */
  for (int i = 0; rv == GW_OK && i < 2; i++) {
    gw_jws_alg alg = i == 0 ? GW_JWS_ES256 : GW_JWS_RS256;
    gw_pki_gwkey *e = &set->list.k[set->list.n];
    jose_key *k;

    if (!pems[i]) {
      continue;
    }
    k = jose_key_alloc();
    if (!k) {
      rv = GW_ERR_NOMEM;
      break;
    }
    set->keys[set->list.n++] = k;
    rv = jose_load_pem(k, alg, pems[i], err, errlen);
    if (rv == GW_OK) {
      snprintf(e->alg, sizeof(e->alg), "%s", gw_jws_alg_name(alg));
      memcpy(e->kid, k->kid, sizeof(e->kid));
      snprintf(e->label, sizeof(e->label), "%s",
               i == 0 ? GW_PKI_ES256_LABEL : GW_PKI_RS256_LABEL);
    }
  }
  if (rv == GW_OK) {
    rv = jose_install(s, set);
  }
  if (rv != GW_OK) {
    jose_set_unref(set);
    gw_signer_del(s);
    return rv;
  }
  *out = s;
  return GW_OK;
}

/* ---- gw_signer_new: the token and gateway_keys.dir ----------------------- */

static int jose_read_pubkey(const char *dir, const char *file, EVP_PKEY **out,
                            char *err, size_t errlen) {
  char path[PATH_MAX];
  BIO *b;

  if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path)) {
    gw_errf(err, errlen, "gateway_keys.dir: path too long: %s", dir);
    return GW_ERR_CONFIG;
  }
  b = BIO_new_file(path, "r");
  if (!b) {
    ERR_clear_error();
    gw_errf(err, errlen, "cannot read %s: %s (run `mpkictl gateway-key init`)",
            path, strerror(errno));
    return GW_ERR_IO;
  }
  *out = PEM_read_bio_PUBKEY(b, NULL, jose_no_password, NULL);
  BIO_free(b);
  if (!*out) {
    ERR_clear_error();
    gw_errf(err, errlen, "%s: not a PEM public key", path);
    return GW_ERR_CONFIG;
  }
  return GW_OK;
}

/* Maps a p11_key_find failure to an error and a message (never the PIN). */
static int jose_p11_fail(int p11rv, const gw_config *cfg, const char *label,
                         char *err, size_t errlen) {
  switch (p11rv) {
  case P11_ERR_NO_KEY:
    gw_errf(err, errlen,
            "token \"%s\" has no key \"%s\" (gateway_keys.token; run "
            "`mpkictl gateway-key init`)",
            cfg->gwkeys_token, label);
    return GW_ERR_NOT_FOUND;
  case P11_ERR_PIN_INCORRECT:
  case P11_ERR_PIN_INVALID:
  case P11_ERR_PIN_LOCKED:
    gw_errf(err, errlen, "token \"%s\": gateway.pin in %s refused: %s",
            cfg->gwkeys_token, cfg->pki_pin_file, p11_strerror(p11rv));
    return GW_ERR_CONFIG;
  case P11_ERR_NOMEM:
    gw_errf(err, errlen, "out of memory");
    return GW_ERR_NOMEM;
  default:
    gw_errf(err, errlen, "token \"%s\", key \"%s\": %s", cfg->gwkeys_token,
            label, p11_strerror(p11rv));
    return GW_ERR_IO;
  }
}

/* What loading a set needs from the token, found on first use: a reload
 * that only changes times needs neither the token nor the PIN. */
typedef struct jose_loader {
  const gw_config *cfg;
  p11_module *m;
  p11_token *tok;
  gw_pki_pins pins;
  int have_pins;
} jose_loader;

static int jose_loader_token(jose_loader *l, char *err, size_t errlen) {
  int rv;

  if (!l->tok &&
      p11_token_find(l->m, l->cfg->gwkeys_token, &l->tok) != P11_OK) {
    gw_errf(err, errlen,
            "no token labelled \"%s\" (gateway_keys.token; run `mpkictl "
            "gateway-key init`)",
            l->cfg->gwkeys_token);
    return GW_ERR_NOT_FOUND;
  }
  if (!l->have_pins) {
    rv = gw_pki_pins_load(l->cfg->pki_pin_file, &l->pins, err, errlen);
    if (rv != GW_OK) {
      return rv == GW_ERR_INVALID ? GW_ERR_CONFIG : rv;
    }
    l->have_pins = 1;
  }
  return GW_OK;
}

/* Opens key |e| of the list: its private key on the token, whose public
 * key must be the one in its PEM file, whose kid must be the list's. */
static int jose_open_token_key(jose_key *k, jose_loader *l,
                               const gw_pki_gwkey *e, char *err,
                               size_t errlen) {
  const gw_config *cfg = l->cfg;
  gw_jws_alg alg = gw_jws_alg_parse(e->alg);
  const int es = alg == GW_JWS_ES256;
  EVP_PKEY *tokpub = NULL, *filepub = NULL;
  int rv;

  rv = jose_loader_token(l, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  snprintf(k->label, sizeof(k->label), "%s", e->label);
  rv = p11_key_find(l->tok, l->pins.gw_pin, e->label, &k->tok);
  if (rv != P11_OK) {
    return jose_p11_fail(rv, cfg, e->label, err, errlen);
  }
  if (p11_key_type(k->tok) != (es ? P11_KEY_EC_P256 : P11_KEY_RSA_2048)) {
    gw_errf(err, errlen, "token \"%s\": key \"%s\" is not of the %s type",
            cfg->gwkeys_token, e->label, e->alg);
    return GW_ERR_CONFIG;
  }
  rv = p11_key_public(k->tok, &tokpub);
  if (rv != P11_OK) {
    return jose_p11_fail(rv, cfg, e->label, err, errlen);
  }
  rv = jose_read_pubkey(cfg->gwkeys_dir, e->file, &filepub, err, errlen);
  if (rv != GW_OK) {
    goto done;
  }
  /* The JWKS is published from the file: a file that does not hold the
   * token's key would make every token we sign unverifiable. */
  if (EVP_PKEY_eq(tokpub, filepub) != 1) {
    gw_errf(err, errlen,
            "%s/%s is not the public key of key \"%s\" on token \"%s\" "
            "(gateway_keys.dir and gateway_keys.token disagree)",
            cfg->gwkeys_dir, e->file, e->label, cfg->gwkeys_token);
    rv = GW_ERR_CONFIG;
    goto done;
  }
  rv = jose_key_set(k, alg, filepub, e->file, err, errlen);
  if (rv != GW_OK) {
    goto done;
  }
  if (strcmp(k->kid, e->kid) != 0) {
    gw_errf(err, errlen, "%s/kids: the %s kid is %s, but the key's is %s",
            cfg->gwkeys_dir, e->alg, e->kid, k->kid);
    rv = GW_ERR_CONFIG;
  }

done:
  ERR_clear_error();
  EVP_PKEY_free(tokpub);
  EVP_PKEY_free(filepub);
  return rv;
}

/* Reads gateway_keys.dir/kids and opens every key that is not retired at
 * |now|, reusing the keys of |old| (may be NULL) that it lists already.
 * Every algorithm must keep a key that is not retired. */
static int jose_load_set(gw_signer *s, const jose_set *old, long long now,
                         jose_set **out, char *err, size_t errlen) {
  jose_loader l;
  jose_set *set = jose_set_alloc();
  int rv, live[2] = {0, 0};

  memset(&l, 0, sizeof(l));
  l.cfg = s->cfg;
  l.m = s->m;
  if (!set) {
    gw_errf(err, errlen, "out of memory");
    return GW_ERR_NOMEM;
  }
  rv = gw_pki_gwkeys_read(s->cfg->gwkeys_dir, &set->list, err, errlen);
  for (size_t i = 0; rv == GW_OK && i < set->list.n; i++) {
    const gw_pki_gwkey *e = &set->list.k[i];
    jose_key *k = NULL;

    if (e->retire_at != 0 && now >= e->retire_at) {
      continue; /* gone from the JWKS: nothing to open */
    }
    for (size_t j = 0; old && j < old->list.n && !k; j++) {
      jose_key *ok = old->keys[j];

      if (ok && strcmp(ok->kid, e->kid) == 0 &&
          strcmp(ok->label, e->label) == 0 &&
          ok->alg == gw_jws_alg_parse(e->alg)) {
        __atomic_add_fetch(&ok->refs, 1, __ATOMIC_RELAXED);
        k = ok;
      }
    }
    if (!k) {
      k = jose_key_alloc();
      if (!k) {
        gw_errf(err, errlen, "out of memory");
        rv = GW_ERR_NOMEM;
        break;
      }
      set->keys[i] = k;
      rv = jose_open_token_key(k, &l, e, err, errlen);
    }
    set->keys[i] = k;
    live[e->alg[0] == 'E' ? 0 : 1] = 1;
  }
  if (rv == GW_OK && (!live[0] || !live[1])) {
    gw_errf(err, errlen, "%s/kids: every %s key is retired", s->cfg->gwkeys_dir,
            live[0] ? "RS256" : "ES256");
    rv = GW_ERR_CONFIG;
  }
  gw_pki_pins_wipe(&l.pins);
  if (rv != GW_OK) {
    jose_set_unref(set);
    return rv;
  }
  *out = set;
  return GW_OK;
}

/* Stats gateway_keys.dir/kids. Returns 0 or -1 (errno). */
static int jose_stat_kids(const gw_config *cfg, struct stat *st) {
  char path[PATH_MAX];

  if (snprintf(path, sizeof(path), "%s/kids", cfg->gwkeys_dir) >=
      (int)sizeof(path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  return stat(path, st);
}

static int jose_same_stat(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
         a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Logs the kids that sign now. */
static void jose_log_kids(gw_signer *s, const char *what) {
  char qlabel[80];
  const char *es = gw_signer_kid(s, GW_JWS_ES256);
  const char *rs = gw_signer_kid(s, GW_JWS_RS256);
  size_t n = 0;
  jose_set *set = jose_set_get(s);

  for (size_t i = 0; set && i < set->list.n; i++) {
    n += set->keys[i] != NULL;
  }
  jose_set_unref(set);
  GW_LOG(GW_LOG_INFO, what, "token=%s keys=%zu es256_kid=%s rs256_kid=%s",
         gw_log_quote(qlabel, sizeof(qlabel), s->cfg->gwkeys_token,
                      strlen(s->cfg->gwkeys_token)),
         n, es ? es : "-", rs ? rs : "-");
}

int gw_signer_new(gw_signer **out, const struct gw_config *cfg,
                  struct p11_module *m, char *err, size_t errlen) {
  gw_signer *s = NULL;
  jose_set *set = NULL;
  struct stat st;
  int rv, have_st;

  if (!out || !cfg || !m) {
    gw_errf(err, errlen, "no configuration or PKCS#11 module");
    return GW_ERR_INVALID;
  }
  s = jose_signer_alloc();
  if (!s) {
    gw_errf(err, errlen, "out of memory");
    return GW_ERR_NOMEM;
  }
  s->cfg = cfg;
  s->m = m;
  have_st = jose_stat_kids(cfg, &st) == 0;
  rv = jose_load_set(s, NULL, jose_now(), &set, err, errlen);
  if (rv == GW_OK) {
    rv = jose_install(s, set);
    if (rv != GW_OK) {
      jose_set_unref(set);
      gw_errf(err, errlen, "out of memory");
    }
  }
  if (rv != GW_OK) {
    gw_signer_del(s);
    return rv;
  }
  if (have_st) {
    s->stamp = st;
    s->have_stamp = 1;
  }
  jose_log_kids(s, "token-signing keys opened");
  *out = s;
  return GW_OK;
}

int gw_signer_reload(gw_signer *s, int *changed, char *err, size_t errlen) {
  jose_set *old = NULL, *set = NULL;
  struct stat st;
  char why[1024] = "", qwhy[1100];
  int rv = GW_OK;

  if (changed) {
    *changed = 0;
  }
  if (!s) {
    gw_errf(err, errlen, "no signer");
    return GW_ERR_INVALID;
  }
  if (!s->cfg) {
    return GW_OK; /* gw_signer_new_pem: nothing on disk */
  }
  pthread_mutex_lock(&s->reload_mu);
  if (jose_stat_kids(s->cfg, &st) != 0) {
    gw_errf(why, sizeof(why), "cannot stat %s/kids: %s", s->cfg->gwkeys_dir,
            strerror(errno));
    rv = GW_ERR_IO;
    goto done;
  }
  if (s->have_stamp && jose_same_stat(&st, &s->stamp)) {
    goto done;
  }
  /* Recorded before trying: a list that fails to load is tried again only
   * once it changes, never every tick (a wrong PIN retried every second
   * would lock a real HSM's PIN). */
  s->stamp = st;
  s->have_stamp = 1;
  old = jose_set_get(s);
  rv = jose_load_set(s, old, jose_now(), &set, why, sizeof(why));
  if (rv == GW_OK) {
    rv = jose_install(s, set);
    if (rv != GW_OK) {
      jose_set_unref(set);
      gw_errf(why, sizeof(why), "out of memory");
    }
  }
  if (rv == GW_OK) {
    if (changed) {
      *changed = 1;
    }
    jose_log_kids(s, "token-signing keys reloaded");
  } else {
    GW_LOG(GW_LOG_ERROR, "token-signing keys not reloaded",
           "error=%s keeping=previous",
           gw_log_quote(qwhy, sizeof(qwhy), why, strlen(why)));
  }

done:
  if (rv != GW_OK) {
    gw_errf(err, errlen, "%s", why);
  }
  jose_set_unref(old);
  pthread_mutex_unlock(&s->reload_mu);
  return rv;
}

/* ---- signing ------------------------------------------------------------ */

/* ECDSA in DER (OpenSSL's form) to the raw r||s of JWS. */
static int jose_der_to_raw(const unsigned char *der, size_t len,
                           unsigned char raw[JOSE_ES256_SIGLEN]) {
  const unsigned char *p = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
  const BIGNUM *r, *s;
  int ok;

  if (!sig) {
    return GW_ERR_INTERNAL;
  }
  ECDSA_SIG_get0(sig, &r, &s);
  ok = BN_bn2binpad(r, raw, JOSE_EC_COORD) == JOSE_EC_COORD &&
       BN_bn2binpad(s, raw + JOSE_EC_COORD, JOSE_EC_COORD) == JOSE_EC_COORD;
  ECDSA_SIG_free(sig);
  return ok ? GW_OK : GW_ERR_INTERNAL;
}

/* A software signature (gw_signer_new_pem). */
static int jose_sign_soft(const gw_signer *s, const jose_key *k,
                          const unsigned char *in, size_t inlen,
                          unsigned char *sig, size_t *siglen) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  unsigned char der[80];
  size_t len = k->alg == GW_JWS_ES256 ? sizeof(der) : *siglen;
  int rv = GW_ERR_INTERNAL;

  if (!ctx) {
    return GW_ERR_NOMEM;
  }
  if (EVP_DigestSignInit(ctx, &pctx, s->sha256, NULL, k->priv) != 1) {
    goto done;
  }
  if (k->alg == GW_JWS_RS256 &&
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    goto done;
  }
  if (EVP_DigestSign(ctx, k->alg == GW_JWS_ES256 ? der : sig, &len, in,
                     inlen) != 1) {
    goto done;
  }
  if (k->alg == GW_JWS_ES256) {
    rv = jose_der_to_raw(der, len, sig);
    len = JOSE_ES256_SIGLEN;
  } else {
    rv = GW_OK;
  }
  *siglen = len;

done:
  ERR_clear_error();
  EVP_MD_CTX_free(ctx);
  return rv;
}

/* A signature on the token: SHA-256 here, the private operation there.
 * ECDSA comes back as raw r||s (der = 0), as JWS wants it. */
static int jose_sign_token(const gw_signer *s, const jose_key *k,
                           const unsigned char *in, size_t inlen,
                           unsigned char *sig, size_t *siglen) {
  unsigned char dg[JOSE_DIGEST];
  unsigned int dlen = 0;
  int rv;

  if (!EVP_Digest(in, inlen, dg, &dlen, s->sha256, NULL) ||
      dlen != JOSE_DIGEST) {
    ERR_clear_error();
    return GW_ERR_INTERNAL;
  }
  rv = p11_sign(k->tok,
                k->alg == GW_JWS_ES256 ? P11_MECH_ECDSA
                                       : P11_MECH_RSA_PKCS1_SHA256,
                dg, sizeof(dg), 0, sig, siglen);
  if (rv != P11_OK) {
    static _Thread_local gw_log_rl rl;
    int dropped = 0;

    if (gw_log_rl_allow(&rl, 1, &dropped)) {
      GW_LOG(GW_LOG_ERROR, "jwt signing failed on the token",
             "alg=%s kid=%s error=\"%s\" suppressed=%d",
             gw_jws_alg_name(k->alg), k->kid, p11_strerror(rv), dropped);
    }
    return rv == P11_ERR_NOMEM ? GW_ERR_NOMEM : GW_ERR_INTERNAL;
  }
  return GW_OK;
}

static int jose_sign(const gw_signer *s, const jose_key *k,
                     const unsigned char *in, size_t inlen, unsigned char *sig,
                     size_t *siglen) {
  int rv = k->tok ? jose_sign_token(s, k, in, inlen, sig, siglen)
                  : jose_sign_soft(s, k, in, inlen, sig, siglen);

  if (rv == GW_OK && *siglen != k->siglen) {
    return GW_ERR_INTERNAL;
  }
  return rv;
}

/* Compact JSON of |v| (keys in insertion order: jansson 2.14 always keeps
 * it; JSON_PRESERVE_ORDER says so for older versions). */
static char *jose_dump(const json_t *v) {
  return json_dumps(v, JOSE_JSON_FLAGS);
}

int gw_jwt_sign(gw_signer *s, gw_jws_alg alg, const char *typ,
                const json_t *claims, gw_buf *out) {
  jose_set *set = s ? jose_set_get(s) : NULL;
  const jose_key *k = jose_signing_key(set, alg, jose_now());
  json_t *hdr = NULL;
  char *htxt = NULL, *ptxt = NULL;
  unsigned char sig[JOSE_RSA_MAX_BYTES];
  size_t hlen, plen, siglen = sizeof(sig);
  gw_buf jwt;
  int rv;

  gw_buf_init(&jwt, JOSE_MAX);
  if (!k || !typ || !json_is_object(claims) || !out) {
    jose_set_unref(set);
    return GW_ERR_INVALID;
  }
  hdr = json_object();
  if (!hdr ||
      json_object_set_new(hdr, "alg", json_string(gw_jws_alg_name(alg))) ||
      json_object_set_new(hdr, "typ", json_string(typ)) ||
      json_object_set_new(hdr, "kid", json_string(k->kid))) {
    /* json_string refuses a typ that is not UTF-8 */
    rv = hdr ? GW_ERR_INVALID : GW_ERR_NOMEM;
    goto done;
  }
  htxt = jose_dump(hdr);
  ptxt = jose_dump(claims);
  if (!htxt || !ptxt) {
    rv = GW_ERR_NOMEM;
    goto done;
  }
  hlen = strlen(htxt);
  plen = strlen(ptxt);
  /* The whole token must stay within the cap the verifier applies. */
  if (hlen > JOSE_MAX || plen > JOSE_MAX ||
      b64url_len(hlen) + b64url_len(plen) + b64url_len(k->siglen) + 2 >
          JOSE_MAX) {
    rv = GW_ERR_TOO_LARGE;
    goto done;
  }
  rv = gw_b64url_encode(htxt, hlen, &jwt);
  if (rv == GW_OK) {
    rv = gw_buf_append(&jwt, ".", 1);
  }
  if (rv == GW_OK) {
    rv = gw_b64url_encode(ptxt, plen, &jwt);
  }
  if (rv == GW_OK) {
    rv =
        jose_sign(s, k, (const unsigned char *)jwt.data, jwt.len, sig, &siglen);
  }
  if (rv == GW_OK) {
    rv = gw_buf_append(&jwt, ".", 1);
  }
  if (rv == GW_OK) {
    rv = gw_b64url_encode(sig, siglen, &jwt);
  }
  /* One append: on failure |out| is left as it was. */
  if (rv == GW_OK) {
    rv = gw_buf_append(out, jwt.data, jwt.len);
  }

done:
  free(htxt);
  free(ptxt);
  json_decref(hdr);
  gw_buf_free(&jwt);
  jose_set_unref(set);
  return rv;
}

/* ---- JWKS --------------------------------------------------------------- */

/* A base64url JSON string of |n| bytes (NULL when out of memory). */
static json_t *jose_b64_json(const unsigned char *p, size_t n) {
  gw_buf b;
  json_t *v = NULL;

  gw_buf_init(&b, JOSE_RSA_MAX_BYTES * 2);
  if (gw_b64url_encode(p, n, &b) == GW_OK) {
    v = json_stringn(b.data, b.len);
  }
  gw_buf_free(&b);
  return v;
}

/* Sets |name| in |jwk| to the base64url of the key parameter |param|:
 * |pad| bytes big-endian, or its minimal length when |pad| is 0 (RFC 7518
 * §6.2.1.2 fixes EC coordinates at the field size; §6.3.1.1 wants n and e
 * without leading zeros). */
static int jose_jwk_bn(json_t *jwk, const char *name, EVP_PKEY *pub,
                       const char *param, int pad) {
  BIGNUM *bn = NULL;
  unsigned char buf[JOSE_RSA_MAX_BYTES];
  int len, rv = GW_ERR_INTERNAL;

  if (!EVP_PKEY_get_bn_param(pub, param, &bn)) {
    ERR_clear_error();
    return GW_ERR_INTERNAL;
  }
  if (BN_num_bytes(bn) <= (int)sizeof(buf)) {
    len = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    if (len > 0) {
      rv = json_object_set_new(jwk, name, jose_b64_json(buf, (size_t)len))
               ? GW_ERR_NOMEM
               : GW_OK;
    }
  }
  BN_free(bn);
  return rv;
}

static json_t *jose_jwk(const jose_key *k) {
  const int es = k->alg == GW_JWS_ES256;
  json_t *jwk = json_object();
  int rv;

  if (!jwk || json_object_set_new(jwk, "kty", json_string(es ? "EC" : "RSA")) ||
      json_object_set_new(jwk, "use", json_string("sig")) ||
      json_object_set_new(jwk, "alg", json_string(gw_jws_alg_name(k->alg))) ||
      json_object_set_new(jwk, "kid", json_string(k->kid))) {
    json_decref(jwk);
    return NULL;
  }
  if (es) {
    rv = json_object_set_new(jwk, "crv", json_string("P-256")) ? GW_ERR_NOMEM
                                                               : GW_OK;
    if (rv == GW_OK) {
      rv = jose_jwk_bn(jwk, "x", k->pub, OSSL_PKEY_PARAM_EC_PUB_X,
                       JOSE_EC_COORD);
    }
    if (rv == GW_OK) {
      rv = jose_jwk_bn(jwk, "y", k->pub, OSSL_PKEY_PARAM_EC_PUB_Y,
                       JOSE_EC_COORD);
    }
  } else {
    rv = jose_jwk_bn(jwk, "n", k->pub, OSSL_PKEY_PARAM_RSA_N, 0);
    if (rv == GW_OK) {
      rv = jose_jwk_bn(jwk, "e", k->pub, OSSL_PKEY_PARAM_RSA_E, 0);
    }
  }
  if (rv != GW_OK) {
    json_decref(jwk);
    return NULL;
  }
  return jwk;
}

int gw_signer_jwks(const gw_signer *s, gw_buf *out) {
  json_t *doc = NULL, *keys = json_array();
  jose_set *set = NULL;
  char *text = NULL;
  long long now;
  int rv = GW_ERR_NOMEM;

  if (!s || !out) {
    json_decref(keys);
    return GW_ERR_INVALID;
  }
  if (!keys) {
    return GW_ERR_NOMEM;
  }
  set = jose_set_get(s);
  now = jose_now();
  for (size_t i = 0; set && i < set->list.n; i++) {
    if (jose_published(set, i, now) &&
        json_array_append_new(keys, jose_jwk(set->keys[i])) != 0) {
      goto done;
    }
  }
  doc = json_object();
  if (!doc || json_object_set(doc, "keys", keys) != 0) {
    goto done;
  }
  text = jose_dump(doc);
  if (text) {
    rv = gw_buf_puts(out, text);
  }

done:
  jose_set_unref(set);
  free(text);
  json_decref(doc);
  json_decref(keys);
  return rv;
}

/* ---- verification ------------------------------------------------------- */

/* Raw r||s to the DER that OpenSSL verifies. r and s are taken as they
 * are: OpenSSL refuses zero or >= n; a high s is valid ECDSA and JWS does
 * not forbid it. */
static int jose_raw_to_der(const unsigned char *raw, unsigned char **der,
                           int *derlen) {
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(raw, JOSE_EC_COORD, NULL);
  BIGNUM *s = BN_bin2bn(raw + JOSE_EC_COORD, JOSE_EC_COORD, NULL);
  int rv = GW_ERR_NOMEM;

  if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
    BN_free(r);
    BN_free(s);
    goto done;
  }
  *der = NULL;
  *derlen = i2d_ECDSA_SIG(sig, der);
  if (*derlen > 0) {
    rv = GW_OK;
  }

done:
  ECDSA_SIG_free(sig);
  return rv;
}

/* Checks |sig| over the signing input |in|. Returns GW_OK,
 * GW_ERR_INVALID (bad signature) or GW_ERR_NOMEM. */
static int jose_verify_sig(const gw_signer *s, const jose_key *k,
                           const char *in, size_t inlen,
                           const unsigned char *sig, size_t siglen) {
  EVP_MD_CTX *ctx = NULL;
  EVP_PKEY_CTX *pctx = NULL;
  unsigned char *der = NULL;
  int derlen = 0, rv, ok;

  if (siglen != k->siglen) {
    return GW_ERR_INVALID;
  }
  if (k->alg == GW_JWS_ES256) {
    rv = jose_raw_to_der(sig, &der, &derlen);
    if (rv != GW_OK) {
      return rv;
    }
    sig = der;
    siglen = (size_t)derlen;
  }
  rv = GW_ERR_NOMEM;
  ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestVerifyInit(ctx, &pctx, s->sha256, NULL, k->pub) != 1) {
    goto done;
  }
  if (k->alg == GW_JWS_RS256 &&
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    goto done;
  }
  ok = EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)in, inlen);
  rv = ok == 1 ? GW_OK : GW_ERR_INVALID;

done:
  ERR_clear_error();
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return rv;
}

/* "at+jwt" and "application/at+jwt" are the same media type (RFC 7515
 * §4.1.9); media types compare case-insensitively. */
static const char *jose_typ_core(const char *t) {
  static const char prefix[] = "application/";

  if (strncasecmp(t, prefix, sizeof(prefix) - 1) == 0) {
    return t + sizeof(prefix) - 1;
  }
  return t;
}

/* Picks the key named by the header and checks everything else in it.
 * Returns the key or NULL. */
static const jose_key *jose_check_header(const jose_set *set, json_t *hdr,
                                         const char *want_typ) {
  const char *alg = json_string_value(json_object_get(hdr, "alg"));
  const char *kid = json_string_value(json_object_get(hdr, "kid"));
  json_t *typ = json_object_get(hdr, "typ");
  gw_jws_alg a = gw_jws_alg_parse(alg);
  const jose_key *k = NULL;

  if (a == GW_JWS_NONE || !kid) {
    return NULL; /* "none", "HS256", anything else; no kid */
  }
  /* We set no critical extension, so any "crit" means a token we did not
   * make (RFC 7515 §4.1.11: refuse what is not understood). */
  if (json_object_get(hdr, "crit")) {
    return NULL;
  }
  if (typ && !json_is_string(typ)) {
    return NULL;
  }
  if (want_typ && (!typ || strcasecmp(jose_typ_core(json_string_value(typ)),
                                      jose_typ_core(want_typ)) != 0)) {
    return NULL;
  }
  /* Published keys only: one not yet in the JWKS signs nothing, and a
   * retired one has outlived every token it signed. */
  for (size_t i = 0; set && i < set->list.n && !k; i++) {
    if (set->keys[i] && strcmp(set->keys[i]->kid, kid) == 0 &&
        jose_published(set, i, jose_now())) {
      k = set->keys[i];
    }
  }
  /* The alg must be the key's own: never let the header choose how a key
   * is used (the classic RS256 -> HS256 confusion). */
  return k && k->alg == a ? k : NULL;
}

/* Decodes a base64url part and parses it as a JSON object (duplicate
 * names refused: two parsers could read different values). */
static json_t *jose_part_json(const char *p, size_t n, unsigned char *buf,
                              size_t cap) {
  size_t len = 0;
  json_error_t e;
  json_t *v;

  if (gw_b64url_decode(p, n, buf, cap, &len) != GW_OK) {
    return NULL;
  }
  v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &e);
  if (v && !json_is_object(v)) {
    json_decref(v);
    return NULL;
  }
  return v;
}

int gw_jwt_verify(const gw_signer *s, const char *jwt, size_t n,
                  const char *want_typ, json_t **claims, gw_jws_alg *alg) {
  const char *d1, *d2;
  size_t hlen, plen, slen, siglen = 0;
  unsigned char sig[JOSE_RSA_MAX_BYTES];
  unsigned char *buf = NULL;
  json_t *hdr = NULL, *payload = NULL;
  jose_set *set = NULL;
  const jose_key *k;
  int rv = GW_ERR_INVALID;

  if (!s || !jwt || !claims) {
    return GW_ERR_INVALID;
  }
  if (n > JOSE_MAX) {
    return GW_ERR_TOO_LARGE;
  }
  /* Exactly three non-empty parts. */
  d1 = memchr(jwt, '.', n);
  d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - jwt)) : NULL;
  if (!d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - jwt))) {
    return GW_ERR_INVALID;
  }
  hlen = (size_t)(d1 - jwt);
  plen = (size_t)(d2 - d1 - 1);
  slen = n - (size_t)(d2 + 1 - jwt);
  if (hlen == 0 || plen == 0 || slen == 0) {
    return GW_ERR_INVALID;
  }
  buf = malloc(n); /* any decoded part is shorter than the whole */
  if (!buf) {
    return GW_ERR_NOMEM;
  }
  set = jose_set_get(s);
  hdr = jose_part_json(jwt, hlen, buf, n);
  k = hdr ? jose_check_header(set, hdr, want_typ) : NULL;
  if (!k ||
      gw_b64url_decode(d2 + 1, slen, sig, sizeof(sig), &siglen) != GW_OK) {
    goto done;
  }
  /* The payload is parsed only once the signature holds: a forger gets
   * no further than the header. */
  rv = jose_verify_sig(s, k, jwt, (size_t)(d2 - jwt), sig, siglen);
  if (rv != GW_OK) {
    goto done;
  }
  payload = jose_part_json(d1 + 1, plen, buf, n);
  if (!payload) {
    rv = GW_ERR_INVALID;
    goto done;
  }
  *claims = payload;
  if (alg) {
    *alg = k->alg;
  }

done:
  jose_set_unref(set);
  json_decref(hdr);
  free(buf);
  return rv;
}
