/* gw_jose_test.c — unit tests for gateway/gw_jose.c.
 *
 * base64url against the RFC 4648 vectors; the RFC 7515 A.3 ES256 key and
 * token; tokens made here with OpenSSL directly (another code path than
 * gw_jwt_sign) checked by gw_jwt_verify, and tokens made by gw_jwt_sign
 * checked here with OpenSSL and with the `openssl` command; every refusal
 * of the verifier on correctly signed tokens, so that each is refused for
 * the reason under test; and the real thing: the gateway keys made by
 * build/mpkictl on a private SoftHSM token, with the files they must
 * match. */
#include "gw_jose.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_pki.h"
#include "harness.h"
#include "p11.h"
#include "support/t_demo.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define JWT_MAX 16384

static char tmpdir[PATH_MAX];
static char build[PATH_MAX];

/* Software keys shared by the tests, and a signer made of them. */
static EVP_PKEY *g_ec, *g_rsa;
static gw_signer *g_soft;

/* ---- helpers ------------------------------------------------------------ */

static const char *tpath(const char *name) {
  static char p[4][PATH_MAX + 64];
  static int i;

  i = (i + 1) % 4;
  snprintf(p[i], sizeof(p[i]), "%s/%s", tmpdir, name);
  return p[i];
}

/* base64url through OpenSSL's base64, not through gw_b64url_encode. */
static void ref_b64(const void *p, size_t n, char *out) {
  int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);

  while (len > 0 && out[len - 1] == '=') {
    len--;
  }
  out[len] = '\0';
  for (int i = 0; i < len; i++) {
    out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
  }
}

static char *pem_of(EVP_PKEY *k, int private) {
  BIO *b = BIO_new(BIO_s_mem());
  char *data = NULL, *s = NULL;
  long len;

  if (b && (private ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
                    : PEM_write_bio_PUBKEY(b, k))) {
    len = BIO_get_mem_data(b, &data);
    s = strndup(data, (size_t)len);
  }
  BIO_free(b);
  return s;
}

static int write_file(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "w");
  size_t w;

  if (!f) {
    return -1;
  }
  w = fwrite(p, 1, n, f);
  return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static char *read_file(const char *path) {
  static char buf[65536];
  FILE *f = fopen(path, "r");
  size_t n = 0;

  if (f) {
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
  }
  buf[n] = '\0';
  return buf;
}

/* An EC P-256 private key from a JWK's x, y, d. */
static EVP_PKEY *ec_from_jwk(const char *x, const char *y, const char *d) {
  unsigned char pub[65], db[32];
  size_t len;
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  EVP_PKEY *k = NULL;
  BIGNUM *dbn = NULL;

  pub[0] = 0x04; /* uncompressed point */
  if (gw_b64url_decode(x, strlen(x), pub + 1, 32, &len) != GW_OK || len != 32 ||
      gw_b64url_decode(y, strlen(y), pub + 33, 32, &len) != GW_OK ||
      len != 32 || gw_b64url_decode(d, strlen(d), db, 32, &len) != GW_OK ||
      len != 32) {
    goto done;
  }
  dbn = BN_bin2bn(db, 32, NULL);
  if (!bld || !ctx || !dbn ||
      !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                       "prime256v1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                        sizeof(pub)) ||
      !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, dbn)) {
    goto done;
  }
  params = OSSL_PARAM_BLD_to_param(bld);
  if (!params || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, params) != 1) {
    k = NULL;
  }

done:
  BN_free(dbn);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  EVP_PKEY_CTX_free(ctx);
  return k;
}

/* JWS r||s <-> DER, written here independently of gw_jose.c. */
static int raw_to_der(const unsigned char *raw, unsigned char *der,
                      size_t *derlen) {
  ECDSA_SIG *sig = ECDSA_SIG_new();
  unsigned char *p = der;
  int len;

  ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
  len = i2d_ECDSA_SIG(sig, &p);
  ECDSA_SIG_free(sig);
  *derlen = len > 0 ? (size_t)len : 0;
  return len > 0 ? 0 : -1;
}

/* Signs |in| as JWS does: EC signatures come back as raw r||s. */
static int ref_sign(EVP_PKEY *k, const char *in, unsigned char *sig,
                    size_t *siglen) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char der[512];
  size_t len = sizeof(der);
  int ok, ec = EVP_PKEY_get_base_id(k) == EVP_PKEY_EC;

  ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
       EVP_DigestSign(ctx, der, &len, (const unsigned char *)in, strlen(in)) ==
           1;
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    return -1;
  }
  if (ec) {
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
    const BIGNUM *r, *sv;
    ECDSA_SIG_get0(s, &r, &sv);
    BN_bn2binpad(r, sig, 32);
    BN_bn2binpad(sv, sig + 32, 32);
    ECDSA_SIG_free(s);
    *siglen = 64;
  } else {
    memcpy(sig, der, len);
    *siglen = len;
  }
  return 0;
}

static int ref_verify(EVP_PKEY *k, const char *in, size_t inlen,
                      const unsigned char *sig, size_t siglen) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char der[128];
  int ok;

  if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
    if (siglen != 64 || raw_to_der(sig, der, &siglen) != 0) {
      EVP_MD_CTX_free(ctx);
      return 0;
    }
    sig = der;
  }
  ok =
      EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
      EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)in, inlen) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

/* A compact JWS of the encoded parts given, signed here with |k|. */
static char *make_jws_parts(EVP_PKEY *k, const char *h64, const char *p64) {
  static char out[4][JWT_MAX * 2];
  static int i;
  unsigned char sig[512];
  size_t siglen = 0;
  char *o;

  i = (i + 1) % 4;
  o = out[i];
  snprintf(o, sizeof(out[i]), "%s.%s", h64, p64);
  if (ref_sign(k, o, sig, &siglen) != 0) {
    return NULL;
  }
  strcat(o, ".");
  ref_b64(sig, siglen, o + strlen(o));
  return o;
}

/* A compact JWS of the exact header and payload texts given. */
static char *make_jws(EVP_PKEY *k, const char *hdr, const char *payload) {
  char h64[1024], p64[JWT_MAX];

  ref_b64(hdr, strlen(hdr), h64);
  ref_b64(payload, strlen(payload), p64);
  return make_jws_parts(k, h64, p64);
}

/* Splits a compact JWS: the length of the signing input and the decoded
 * signature. */
static int split_jws(const char *jwt, size_t *inlen, unsigned char *sig,
                     size_t *siglen) {
  const char *d = strrchr(jwt, '.');

  if (!d) {
    return -1;
  }
  *inlen = (size_t)(d - jwt);
  return gw_b64url_decode(d + 1, strlen(d + 1), sig, 512, siglen) == GW_OK ? 0
                                                                           : -1;
}

/* The decoded text of part |n| (0 header, 1 payload) of |jwt|. */
static const char *part_text(const char *jwt, int n) {
  static char buf[JWT_MAX];
  const char *p = jwt, *e;
  size_t len = 0;

  for (int i = 0; i < n; i++) {
    p = strchr(p, '.') + 1;
  }
  e = strchr(p, '.');
  if (gw_b64url_decode(p, (size_t)(e - p), (unsigned char *)buf,
                       sizeof(buf) - 1, &len) != GW_OK) {
    len = 0;
  }
  buf[len] = '\0';
  return buf;
}

static int verify(const gw_signer *s, const char *jwt, const char *typ) {
  json_t *claims = NULL;
  int rv;

  if (!jwt) {
    return 99;
  }
  rv = gw_jwt_verify(s, jwt, strlen(jwt), typ, &claims, NULL);
  json_decref(claims);
  return rv;
}

static json_t *sample_claims(void) {
  return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss",
                   "https://127.0.0.1:8443", "sub", "PNOOM-10000001", "aud",
                   "licensing", "exp", (json_int_t)1900000000, "iat",
                   (json_int_t)1899999700, "jti", "a1b2c3");
}

static const char SAMPLE_TEXT[] =
    "{\"iss\":\"https://127.0.0.1:8443\",\"sub\":\"PNOOM-10000001\",\"aud\":"
    "\"licensing\",\"exp\":1900000000,\"iat\":1899999700,\"jti\":\"a1b2c3\"}";

/* ---- base64url ---------------------------------------------------------- */

static void test_b64url_vectors(void) {
  /* RFC 4648 §10, without padding; then the two characters that differ
   * from base64. */
  static const struct {
    const char *in, *out;
  } v[] = {{"", ""},
           {"f", "Zg"},
           {"fo", "Zm8"},
           {"foo", "Zm9v"},
           {"foob", "Zm9vYg"},
           {"fooba", "Zm9vYmE"},
           {"foobar", "Zm9vYmFy"},
           {"\xfb\xff\xbf", "-_-_"},
           {"\xff\xee", "_-4"}};
  unsigned char out[64];
  size_t len;
  gw_buf b;

  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    gw_buf_init(&b, 64);
    T_EQ_INT(gw_b64url_encode(v[i].in, strlen(v[i].in), &b), GW_OK);
    T_EQ_STR(gw_buf_cstr(&b), v[i].out);
    gw_buf_free(&b);
    len = 99;
    T_EQ_INT(
        gw_b64url_decode(v[i].out, strlen(v[i].out), out, sizeof(out), &len),
        GW_OK);
    T_EQ_INT(len, strlen(v[i].in));
    T_ASSERT(memcmp(out, v[i].in, len) == 0);
  }
  /* Every byte value, every length up to 3 blocks. */
  {
    unsigned char all[256], back[256];
    char ref[400];
    for (int i = 0; i < 256; i++) {
      all[i] = (unsigned char)(255 - i);
    }
    for (size_t n = 0; n <= sizeof(all); n += n < 12 ? 1 : 61) {
      gw_buf_init(&b, 1024);
      T_EQ_INT(gw_b64url_encode(all, n, &b), GW_OK);
      ref_b64(all, n, ref);
      T_EQ_STR(gw_buf_cstr(&b), ref);
      T_EQ_INT(gw_b64url_decode(b.data, b.len, back, sizeof(back), &len),
               GW_OK);
      T_ASSERT(len == n && memcmp(back, all, n) == 0);
      gw_buf_free(&b);
    }
  }
  /* Appends; a cap that cannot take it leaves the buffer unchanged. */
  gw_buf_init(&b, 6);
  T_EQ_INT(gw_buf_puts(&b, "x."), GW_OK);
  T_EQ_INT(gw_b64url_encode("foo", 3, &b), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "x.Zm9v");
  T_EQ_INT(gw_b64url_encode("f", 1, &b), GW_ERR_TOO_LARGE);
  T_EQ_STR(gw_buf_cstr(&b), "x.Zm9v");
  gw_buf_free(&b);
  /* A decode buffer too small. */
  T_EQ_INT(gw_b64url_decode("Zm9vYmFy", 8, out, 5, &len), GW_ERR_TOO_LARGE);
  T_EQ_INT(gw_b64url_decode("Zm9vYmFy", 8, out, 6, &len), GW_OK);
}

static void test_b64url_refusals(void) {
  static const char *bad[] = {
      "Zg==",   /* padding */
      "Zm8=",   /* padding */
      "Zm9v=",  /* padding */
      "Zm9v\n", /* whitespace */
      " Zm9v",  /* whitespace */
      "Zm 9v",  /* whitespace */
      "+/+/",   /* base64, not base64url */
      "Zm9+",   /* '+' */
      "Zm9/",   /* '/' */
      "Z",      /* 6 bits: no byte */
      "Zm9vY",  /* same */
      "Zh",     /* unused bits set: "Zg" is the one encoding of "f" */
      "Zm9",    /* same: "Zm8" */
      "Zm9v\x80",
  };
  unsigned char out[16];
  size_t len;

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (gw_b64url_decode(bad[i], strlen(bad[i]), out, sizeof(out), &len) !=
        GW_ERR_INVALID) {
      printf("#   accepted \"%s\"\n", bad[i]);
      T_ASSERT(0);
    }
  }
  /* A NUL inside the counted length. */
  T_EQ_INT(gw_b64url_decode("Zm\0v", 4, out, sizeof(out), &len),
           GW_ERR_INVALID);
  T_EQ_INT(gw_b64url_decode(NULL, 1, out, sizeof(out), &len), GW_ERR_INVALID);
  T_EQ_INT(gw_b64url_decode("", 0, out, sizeof(out), &len), GW_OK);
  T_EQ_INT(len, 0);
}

static void test_alg_names(void) {
  T_EQ_STR(gw_jws_alg_name(GW_JWS_ES256), "ES256");
  T_EQ_STR(gw_jws_alg_name(GW_JWS_RS256), "RS256");
  T_ASSERT(gw_jws_alg_name(GW_JWS_NONE) == NULL);
  T_ASSERT(gw_jws_alg_name((gw_jws_alg)7) == NULL);
  T_EQ_INT(gw_jws_alg_parse("ES256"), GW_JWS_ES256);
  T_EQ_INT(gw_jws_alg_parse("RS256"), GW_JWS_RS256);
  T_EQ_INT(gw_jws_alg_parse("es256"), GW_JWS_NONE);
  T_EQ_INT(gw_jws_alg_parse("none"), GW_JWS_NONE);
  T_EQ_INT(gw_jws_alg_parse("HS256"), GW_JWS_NONE);
  T_EQ_INT(gw_jws_alg_parse("ES256 "), GW_JWS_NONE);
  T_EQ_INT(gw_jws_alg_parse(""), GW_JWS_NONE);
  T_EQ_INT(gw_jws_alg_parse(NULL), GW_JWS_NONE);
}

/* ---- RFC 7515 A.3 ------------------------------------------------------- */

#define A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A3_D "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
#define A3_INPUT                                                               \
  "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0"  \
  "dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
#define A3_SIG                                                                 \
  "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJ" \
  "qPP3-Kg6NU1Q"

static void test_rfc7515_a3(void) {
  EVP_PKEY *k = ec_from_jwk(A3_X, A3_Y, A3_D);
  char *pem = k ? pem_of(k, 1) : NULL;
  gw_signer *s = NULL;
  gw_buf b;
  json_t *jwks = NULL, *claims = NULL, *key;
  char err[256], kid[GW_PKI_KID_LEN + 1], hdr[256];
  unsigned char sig[64];
  size_t siglen = 0;
  const char *rfc = A3_INPUT "." A3_SIG, *mine;
  gw_jws_alg alg = GW_JWS_NONE;

  T_ASSERT(pem != NULL);
  if (!pem) {
    goto done;
  }
  /* The key and the RFC's signature agree (checks this file's helpers). */
  T_EQ_INT(gw_b64url_decode(A3_SIG, strlen(A3_SIG), sig, sizeof(sig), &siglen),
           GW_OK);
  T_ASSERT(ref_verify(k, A3_INPUT, strlen(A3_INPUT), sig, siglen));

  T_EQ_INT(gw_signer_new_pem(&s, pem, NULL, err, sizeof(err)), GW_OK);
  if (!s) {
    printf("#   %s\n", err);
    goto done;
  }
  T_ASSERT(gw_signer_kid(s, GW_JWS_RS256) == NULL);
  gw_pki_kid(k, kid, sizeof(kid));
  T_EQ_STR(gw_signer_kid(s, GW_JWS_ES256), kid);

  /* The JWKS gives back the RFC's x and y. */
  gw_buf_init(&b, 4096);
  T_EQ_INT(gw_signer_jwks(s, &b), GW_OK);
  jwks = json_loads(gw_buf_cstr(&b), 0, NULL);
  key = json_array_get(json_object_get(jwks, "keys"), 0);
  T_EQ_INT(json_array_size(json_object_get(jwks, "keys")), 1);
  T_EQ_STR(json_string_value(json_object_get(key, "x")), A3_X);
  T_EQ_STR(json_string_value(json_object_get(key, "y")), A3_Y);
  T_EQ_STR(json_string_value(json_object_get(key, "kid")), kid);
  T_ASSERT(json_object_get(key, "d") == NULL);
  gw_buf_free(&b);

  /* The RFC's token has no kid: ours must name the key. */
  T_EQ_INT(verify(s, rfc, NULL), GW_ERR_INVALID);
  /* The RFC's payload under a header with the kid, signed here. */
  snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kid);
  mine = make_jws(k, hdr,
                  "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
                  "\"http://example.com/is_root\":true}");
  T_EQ_INT(gw_jwt_verify(s, mine, strlen(mine), NULL, &claims, &alg), GW_OK);
  T_EQ_INT(alg, GW_JWS_ES256);
  T_EQ_STR(json_string_value(json_object_get(claims, "iss")), "joe");
  T_EQ_INT(json_integer_value(json_object_get(claims, "exp")), 1300819380);
  T_ASSERT(json_is_true(json_object_get(claims, "http://example.com/is_root")));

done:
  json_decref(claims);
  json_decref(jwks);
  gw_signer_del(s);
  free(pem);
  EVP_PKEY_free(k);
}

/* ---- software keys ------------------------------------------------------- */

/* A token of |s| for |alg|, or NULL. */
static char *sign_sample(gw_signer *s, gw_jws_alg alg, const char *typ) {
  static char out[4][JWT_MAX + 1];
  static int i;
  json_t *claims = sample_claims();
  gw_buf b;
  int rv;

  gw_buf_init(&b, JWT_MAX);
  rv = gw_jwt_sign(s, alg, typ, claims, &b);
  json_decref(claims);
  if (rv != GW_OK) {
    printf("#   gw_jwt_sign: %s\n", gw_strerror(rv));
    gw_buf_free(&b);
    return NULL;
  }
  i = (i + 1) % 4;
  snprintf(out[i], sizeof(out[i]), "%s", gw_buf_cstr(&b));
  gw_buf_free(&b);
  return out[i];
}

static void test_sign_verify_soft(void) {
  static const gw_jws_alg algs[] = {GW_JWS_ES256, GW_JWS_RS256};

  for (int i = 0; i < 2; i++) {
    EVP_PKEY *k = i == 0 ? g_ec : g_rsa;
    char *jwt = sign_sample(g_soft, algs[i], "at+jwt");
    char want[256], *again;
    unsigned char sig[512], ref[512];
    size_t inlen = 0, siglen = 0, reflen = 0;
    json_t *claims = NULL;
    gw_jws_alg alg = GW_JWS_NONE;

    T_ASSERT(jwt != NULL);
    if (!jwt) {
      continue;
    }
    /* The header and the claims as documented: compact, in order. */
    snprintf(want, sizeof(want),
             "{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
             gw_jws_alg_name(algs[i]), gw_signer_kid(g_soft, algs[i]));
    T_EQ_STR(part_text(jwt, 0), want);
    T_EQ_STR(part_text(jwt, 1), SAMPLE_TEXT);
    T_ASSERT(strchr(jwt, '=') == NULL);
    /* OpenSSL agrees, on the raw r||s for ES256. */
    T_EQ_INT(split_jws(jwt, &inlen, sig, &siglen), 0);
    T_EQ_INT(siglen, i == 0 ? 64 : 256);
    T_ASSERT(ref_verify(k, jwt, inlen, sig, siglen));
    if (i == 1) {
      /* RS256 is deterministic: the very signature OpenSSL makes. */
      char in[JWT_MAX];
      memcpy(in, jwt, inlen);
      in[inlen] = '\0';
      T_EQ_INT(ref_sign(k, in, ref, &reflen), 0);
      T_ASSERT(reflen == siglen && memcmp(ref, sig, siglen) == 0);
    }
    /* And gw_jwt_verify, with and without typ, whatever its spelling. */
    T_EQ_INT(gw_jwt_verify(g_soft, jwt, strlen(jwt), "at+jwt", &claims, &alg),
             GW_OK);
    T_EQ_INT(alg, algs[i]);
    {
      char *text = json_dumps(claims, JSON_COMPACT);
      T_EQ_STR(text, SAMPLE_TEXT);
      free(text);
    }
    json_decref(claims);
    T_EQ_INT(verify(g_soft, jwt, NULL), GW_OK);
    T_EQ_INT(verify(g_soft, jwt, "AT+JWT"), GW_OK);
    T_EQ_INT(verify(g_soft, jwt, "application/at+jwt"), GW_OK);
    again = sign_sample(g_soft, algs[i], "application/AT+JWT");
    T_EQ_INT(verify(g_soft, again, "at+jwt"), GW_OK);
    T_EQ_INT(gw_jwt_verify(g_soft, jwt, strlen(jwt), NULL, &claims, NULL),
             GW_OK);
    json_decref(claims);
  }
  /* Appended, not replaced; claims left as they were. */
  {
    json_t *c = sample_claims();
    gw_buf b;
    gw_buf_init(&b, JWT_MAX);
    gw_buf_puts(&b, "Bearer ");
    T_EQ_INT(gw_jwt_sign(g_soft, GW_JWS_ES256, "JWT", c, &b), GW_OK);
    T_ASSERT(strncmp(gw_buf_cstr(&b), "Bearer eyJ", 10) == 0);
    T_EQ_INT(verify(g_soft, gw_buf_cstr(&b) + 7, "JWT"), GW_OK);
    T_EQ_INT(json_object_size(c), 6);
    T_ASSERT(json_object_get(c, "kid") == NULL);
    gw_buf_free(&b);
    json_decref(c);
  }
}

static void test_sign_errors(void) {
  json_t *c = sample_claims(), *arr = json_array(), *big = json_object();
  gw_signer *es_only = NULL;
  char *pem = pem_of(g_ec, 1), err[256], fill[2048];
  gw_buf b;

  gw_buf_init(&b, JWT_MAX);
  T_EQ_INT(gw_jwt_sign(g_soft, GW_JWS_NONE, "JWT", c, &b), GW_ERR_INVALID);
  T_EQ_INT(gw_jwt_sign(g_soft, GW_JWS_ES256, NULL, c, &b), GW_ERR_INVALID);
  T_EQ_INT(gw_jwt_sign(g_soft, GW_JWS_ES256, "JWT", arr, &b), GW_ERR_INVALID);
  T_EQ_INT(gw_jwt_sign(g_soft, GW_JWS_ES256, "JWT", NULL, &b), GW_ERR_INVALID);
  T_EQ_INT(gw_jwt_sign(NULL, GW_JWS_ES256, "JWT", c, &b), GW_ERR_INVALID);
  T_EQ_INT(gw_jwt_sign(g_soft, GW_JWS_ES256, "\xff", c, &b), GW_ERR_INVALID);
  T_EQ_INT(gw_signer_new_pem(&es_only, pem, NULL, err, sizeof(err)), GW_OK);
  T_EQ_INT(gw_jwt_sign(es_only, GW_JWS_RS256, "JWT", c, &b), GW_ERR_INVALID);
  T_EQ_INT(b.len, 0);
  /* Claims that would make a token over 16 KiB. */
  memset(fill, 'a', sizeof(fill) - 1);
  fill[sizeof(fill) - 1] = '\0';
  for (int i = 0; i < 6; i++) {
    char name[8];
    snprintf(name, sizeof(name), "f%d", i);
    json_object_set_new(big, name, json_string(fill));
  }
  T_EQ_INT(gw_jwt_sign(g_soft, GW_JWS_ES256, "JWT", big, &b), GW_ERR_TOO_LARGE);
  json_object_del(big, "f5");
  T_EQ_INT(gw_jwt_sign(g_soft, GW_JWS_RS256, "JWT", big, &b), GW_OK);
  T_ASSERT(b.len <= JWT_MAX);
  T_EQ_INT(verify(g_soft, gw_buf_cstr(&b), NULL), GW_OK);
  gw_buf_free(&b);
  /* An output buffer too small is left as it was. */
  gw_buf_init(&b, 100);
  gw_buf_puts(&b, "keep");
  T_EQ_INT(gw_jwt_sign(g_soft, GW_JWS_ES256, "JWT", c, &b), GW_ERR_TOO_LARGE);
  T_EQ_STR(gw_buf_cstr(&b), "keep");
  gw_buf_free(&b);
  gw_signer_del(es_only);
  free(pem);
  json_decref(big);
  json_decref(arr);
  json_decref(c);
}

static void test_signer_new_pem_errors(void) {
  char err[256], *ec = pem_of(g_ec, 1), *rsa = pem_of(g_rsa, 1);
  char *pub = pem_of(g_ec, 0), *small_pem = NULL, *p384_pem = NULL;
  EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
  EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
  gw_signer *s = NULL;

  small_pem = small ? pem_of(small, 1) : NULL;
  p384_pem = p384 ? pem_of(p384, 1) : NULL;
  T_EQ_INT(gw_signer_new_pem(&s, NULL, NULL, err, sizeof(err)), GW_ERR_INVALID);
  T_EQ_INT(gw_signer_new_pem(&s, "garbage", NULL, err, sizeof(err)),
           GW_ERR_CONFIG);
  T_ASSERT(strstr(err, "ES256") != NULL);
  T_EQ_INT(gw_signer_new_pem(&s, pub, NULL, err, sizeof(err)), GW_ERR_CONFIG);
  T_EQ_INT(gw_signer_new_pem(&s, rsa, NULL, err, sizeof(err)), GW_ERR_CONFIG);
  T_ASSERT(strstr(err, "P-256") != NULL);
  T_EQ_INT(gw_signer_new_pem(&s, NULL, ec, err, sizeof(err)), GW_ERR_CONFIG);
  T_ASSERT(strstr(err, "RSA") != NULL);
  T_EQ_INT(gw_signer_new_pem(&s, p384_pem, NULL, err, sizeof(err)),
           GW_ERR_CONFIG);
  T_EQ_INT(gw_signer_new_pem(&s, NULL, small_pem, err, sizeof(err)),
           GW_ERR_CONFIG);
  T_ASSERT(strstr(err, "2048") != NULL);
  T_ASSERT(s == NULL);
  gw_signer_del(NULL);
  free(ec);
  free(rsa);
  free(pub);
  free(small_pem);
  free(p384_pem);
  EVP_PKEY_free(small);
  EVP_PKEY_free(p384);
  ERR_clear_error();
}

/* ---- refusals ------------------------------------------------------------ */

static void test_verify_refusals(void) {
  const char *es = gw_signer_kid(g_soft, GW_JWS_ES256);
  const char *rs = gw_signer_kid(g_soft, GW_JWS_RS256);
  char h[512], *good = sign_sample(g_soft, GW_JWS_ES256, "at+jwt"), *t;
  char buf[JWT_MAX * 2];
  json_t *claims = NULL;

#define HDR(...) (snprintf(h, sizeof(h), __VA_ARGS__), h)
  T_ASSERT(good != NULL);
  if (!good) {
    return;
  }
  /* The control: a token made here the same way is accepted. */
  T_EQ_INT(verify(g_soft,
                  make_jws(g_ec,
                           HDR("{\"alg\":\"ES256\",\"typ\":\"at+jwt\","
                               "\"kid\":\"%s\"}",
                               es),
                           SAMPLE_TEXT),
                  "at+jwt"),
           GW_OK);
  T_EQ_INT(verify(g_soft,
                  make_jws(g_rsa, HDR("{\"kid\":\"%s\",\"alg\":\"RS256\"}", rs),
                           SAMPLE_TEXT),
                  NULL),
           GW_OK);

  /* alg none, with and without a signature. */
  HDR("{\"alg\":\"none\",\"kid\":\"%s\"}", es);
  {
    char n[1024];
    ref_b64(h, strlen(h), n);
    strcat(n, ".");
    ref_b64(SAMPLE_TEXT, strlen(SAMPLE_TEXT), n + strlen(n));
    strcat(n, ".");
    T_EQ_INT(verify(g_soft, n, NULL), GW_ERR_INVALID);
    strcat(n, "AAAA");
    T_EQ_INT(verify(g_soft, n, NULL), GW_ERR_INVALID);
  }
  /* HS256 keyed with the RSA public key: the confusion attack. */
  {
    char *pub = pem_of(g_rsa, 0), in[2048], tok[4096];
    unsigned char mac[32];
    unsigned int maclen = 0;
    HDR("{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", rs);
    ref_b64(h, strlen(h), in);
    strcat(in, ".");
    ref_b64(SAMPLE_TEXT, strlen(SAMPLE_TEXT), in + strlen(in));
    HMAC(EVP_sha256(), pub, (int)strlen(pub), (unsigned char *)in, strlen(in),
         mac, &maclen);
    snprintf(tok, sizeof(tok), "%s.", in);
    ref_b64(mac, maclen, tok + strlen(tok));
    T_EQ_INT(verify(g_soft, tok, NULL), GW_ERR_INVALID);
    free(pub);
  }
  /* Other algs and alg spellings, correctly signed with a real key. */
  T_EQ_INT(verify(g_soft,
                  make_jws(g_ec, HDR("{\"alg\":\"es256\",\"kid\":\"%s\"}", es),
                           SAMPLE_TEXT),
                  NULL),
           GW_ERR_INVALID);
  T_EQ_INT(verify(g_soft,
                  make_jws(g_rsa, HDR("{\"alg\":\"PS256\",\"kid\":\"%s\"}", rs),
                           SAMPLE_TEXT),
                  NULL),
           GW_ERR_INVALID);
  T_EQ_INT(
      verify(g_soft,
             make_jws(g_ec, HDR("{\"alg\":[\"ES256\"],\"kid\":\"%s\"}", es),
                      SAMPLE_TEXT),
             NULL),
      GW_ERR_INVALID);
  /* alg and kid that do not go together, whichever key signed. */
  T_EQ_INT(verify(g_soft,
                  make_jws(g_ec, HDR("{\"alg\":\"ES256\",\"kid\":\"%s\"}", rs),
                           SAMPLE_TEXT),
                  NULL),
           GW_ERR_INVALID);
  T_EQ_INT(verify(g_soft,
                  make_jws(g_rsa, HDR("{\"alg\":\"ES256\",\"kid\":\"%s\"}", rs),
                           SAMPLE_TEXT),
                  NULL),
           GW_ERR_INVALID);
  T_EQ_INT(verify(g_soft,
                  make_jws(g_rsa, HDR("{\"alg\":\"RS256\",\"kid\":\"%s\"}", es),
                           SAMPLE_TEXT),
                  NULL),
           GW_ERR_INVALID);
  /* No kid, an unknown kid, a kid that is not a string. */
  T_EQ_INT(
      verify(g_soft, make_jws(g_ec, "{\"alg\":\"ES256\"}", SAMPLE_TEXT), NULL),
      GW_ERR_INVALID);
  T_EQ_INT(verify(g_soft,
                  make_jws(g_ec, "{\"alg\":\"ES256\",\"kid\":\"nope\"}",
                           SAMPLE_TEXT),
                  NULL),
           GW_ERR_INVALID);
  T_EQ_INT(verify(g_soft,
                  make_jws(g_ec, "{\"alg\":\"ES256\",\"kid\":7}", SAMPLE_TEXT),
                  NULL),
           GW_ERR_INVALID);
  /* typ: wrong, missing when wanted, not a string. */
  T_EQ_INT(verify(g_soft, good, "JWT"), GW_ERR_INVALID);
  T_EQ_INT(verify(g_soft, good, "at+jwt+x"), GW_ERR_INVALID);
  T_EQ_INT(verify(g_soft, good, "application/"), GW_ERR_INVALID);
  T_EQ_INT(verify(g_soft,
                  make_jws(g_ec, HDR("{\"alg\":\"ES256\",\"kid\":\"%s\"}", es),
                           SAMPLE_TEXT),
                  "at+jwt"),
           GW_ERR_INVALID);
  T_EQ_INT(
      verify(g_soft,
             make_jws(g_ec,
                      HDR("{\"alg\":\"ES256\",\"typ\":1,\"kid\":\"%s\"}", es),
                      SAMPLE_TEXT),
             NULL),
      GW_ERR_INVALID);
  /* crit, even empty. */
  T_EQ_INT(verify(g_soft,
                  make_jws(g_ec,
                           HDR("{\"alg\":\"ES256\",\"kid\":\"%s\",\"crit\":["
                               "\"exp\"],\"exp\":1}",
                               es),
                           SAMPLE_TEXT),
                  NULL),
           GW_ERR_INVALID);
  T_EQ_INT(
      verify(g_soft,
             make_jws(g_ec,
                      HDR("{\"alg\":\"ES256\",\"kid\":\"%s\",\"crit\":[]}", es),
                      SAMPLE_TEXT),
             NULL),
      GW_ERR_INVALID);
  /* Duplicate names, in the header and in the payload. */
  T_EQ_INT(verify(g_soft,
                  make_jws(g_ec,
                           HDR("{\"alg\":\"ES256\",\"alg\":\"ES256\",\"kid\":"
                               "\"%s\"}",
                               es),
                           SAMPLE_TEXT),
                  NULL),
           GW_ERR_INVALID);
  T_EQ_INT(verify(g_soft,
                  make_jws(g_ec,
                           HDR("{\"alg\":\"ES256\",\"kid\":\"%s\",\"kid\":"
                               "\"%s\"}",
                               rs, es),
                           SAMPLE_TEXT),
                  NULL),
           GW_ERR_INVALID);
  T_EQ_INT(verify(g_soft,
                  make_jws(g_ec, HDR("{\"alg\":\"ES256\",\"kid\":\"%s\"}", es),
                           "{\"sub\":\"a\",\"sub\":\"b\"}"),
                  NULL),
           GW_ERR_INVALID);
  /* A header or payload that is not an object, or not JSON. */
  T_EQ_INT(verify(g_soft, make_jws(g_ec, "[\"ES256\"]", SAMPLE_TEXT), NULL),
           GW_ERR_INVALID);
  {
    static const char *payloads[] = {
        "[1,2]", "\"x\"",       "42", "null",
        "{",     "{\"a\":1} x", "",   "{\"a\":\"\\u0000\"}"};
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
      t = make_jws(g_ec, HDR("{\"alg\":\"ES256\",\"kid\":\"%s\"}", es),
                   payloads[i]);
      if (verify(g_soft, t, NULL) != GW_ERR_INVALID) {
        printf("#   payload %s accepted\n", payloads[i]);
        T_ASSERT(0);
      }
    }
  }
  /* Tampering: a payload, a header, a signature. */
  {
    char *d1 = NULL, *d2 = NULL;
    snprintf(buf, sizeof(buf), "%s", good);
    d1 = strchr(buf, '.');
    d2 = strrchr(buf, '.');
    d1[3] = d1[3] == 'A' ? 'B' : 'A';
    T_EQ_INT(verify(g_soft, buf, NULL), GW_ERR_INVALID);
    snprintf(buf, sizeof(buf), "%s", good);
    buf[5] = buf[5] == 'A' ? 'B' : 'A';
    T_EQ_INT(verify(g_soft, buf, NULL), GW_ERR_INVALID);
    snprintf(buf, sizeof(buf), "%s", good);
    d2 = strrchr(buf, '.');
    d2[10] = d2[10] == 'A' ? 'B' : 'A';
    T_EQ_INT(verify(g_soft, buf, NULL), GW_ERR_INVALID);
    /* Another token's signature. */
    snprintf(buf, sizeof(buf), "%s", good);
    t = sign_sample(g_soft, GW_JWS_ES256, "JWT");
    strcpy(strrchr(buf, '.'), strrchr(t, '.'));
    T_EQ_INT(verify(g_soft, buf, NULL), GW_ERR_INVALID);
  }
  /* Shape: dots, parts, padding, size. */
  {
    const char *d2 = strrchr(good, '.');
    size_t in = (size_t)(d2 - good);
    /* Around the token: a prefix and a suffix. */
    static const char *shapes[][2] = {
        {"", "."}, {".", ""},  {"", ".."}, {"", ".x"}, {"x.", ""},
        {"", "="}, {"", "=="}, {" ", ""},  {"", " "},  {"", "\n"}};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
      snprintf(buf, sizeof(buf), "%s%s%s", shapes[i][0], good, shapes[i][1]);
      if (verify(g_soft, buf, NULL) != GW_ERR_INVALID) {
        printf("#   \"%s\" + token + \"%s\" accepted\n", shapes[i][0],
               shapes[i][1]);
        T_ASSERT(0);
      }
    }
    snprintf(buf, sizeof(buf), "%.*s.", (int)in, good); /* empty signature */
    T_EQ_INT(verify(g_soft, buf, NULL), GW_ERR_INVALID);
    snprintf(buf, sizeof(buf), "%.*s", (int)in, good); /* two parts */
    T_EQ_INT(verify(g_soft, buf, NULL), GW_ERR_INVALID);
    snprintf(buf, sizeof(buf), "%s", good); /* an empty payload */
    {
      char *d1 = strchr(buf, '.');
      memmove(d1 + 1, d2 - good + buf, strlen(d2) + 1);
      T_EQ_INT(verify(g_soft, buf, NULL), GW_ERR_INVALID);
    }
    snprintf(buf, sizeof(buf), ".%s", strchr(good, '.')); /* empty header */
    T_EQ_INT(verify(g_soft, buf, NULL), GW_ERR_INVALID);
    snprintf(buf, sizeof(buf), "%.*s.%s%s", (int)in, good, d2 + 1, "=");
    T_EQ_INT(verify(g_soft, buf, NULL), GW_ERR_INVALID);
    T_EQ_INT(verify(g_soft, "", NULL), GW_ERR_INVALID);
    T_EQ_INT(verify(g_soft, "..", NULL), GW_ERR_INVALID);
    T_EQ_INT(verify(g_soft, "a.b.c.d", NULL), GW_ERR_INVALID);
    /* Padding and base64 (not base64url) inside the first two parts,
     * signed over exactly those bytes so that only the encoding is
     * wrong. */
    {
      char hdr[256], h64[512], p64[512], ok64[512];
      /* 48 bytes of header: no '=' needed; 49 and 50 need "==" and "=". */
      for (int pad = 0; pad < 3; pad++) {
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}%.*s", es,
                 pad, "  ");
        EVP_EncodeBlock((unsigned char *)h64, (unsigned char *)hdr,
                        (int)strlen(hdr));
        ref_b64(hdr, strlen(hdr), ok64);
        ref_b64(SAMPLE_TEXT, strlen(SAMPLE_TEXT), p64);
        T_EQ_INT(verify(g_soft, make_jws_parts(g_ec, ok64, p64), NULL), GW_OK);
        if (strchr(h64, '=')) {
          T_EQ_INT(verify(g_soft, make_jws_parts(g_ec, h64, p64), NULL),
                   GW_ERR_INVALID);
        }
      }
      EVP_EncodeBlock((unsigned char *)p64, (const unsigned char *)"{\"a\":1}",
                      7);
      T_ASSERT(strchr(p64, '=') != NULL);
      T_EQ_INT(verify(g_soft, make_jws_parts(g_ec, ok64, p64), NULL),
               GW_ERR_INVALID);
      /* '?>' encodes with '+' or '/' in base64: "Pz4" vs base64url. */
      snprintf(hdr, sizeof(hdr),
               "{\"alg\":\"ES256\",\"kid\":\"%s\",\"x\":\"?>?\"}", es);
      EVP_EncodeBlock((unsigned char *)h64, (unsigned char *)hdr,
                      (int)strlen(hdr));
      ref_b64(hdr, strlen(hdr), ok64);
      ref_b64(SAMPLE_TEXT, strlen(SAMPLE_TEXT), p64);
      T_EQ_INT(verify(g_soft, make_jws_parts(g_ec, ok64, p64), NULL), GW_OK);
      if (strpbrk(h64, "+/")) {
        h64[strcspn(h64, "=")] = '\0';
        T_EQ_INT(verify(g_soft, make_jws_parts(g_ec, h64, p64), NULL),
                 GW_ERR_INVALID);
      } else {
        T_ASSERT(0);
      }
    }
    /* The signing input length must be taken from the whole: a NUL inside
     * is refused, not read as the end. */
    snprintf(buf, sizeof(buf), "%s", good);
    buf[3] = '\0';
    T_EQ_INT(gw_jwt_verify(g_soft, buf, strlen(good), NULL, &claims, NULL),
             GW_ERR_INVALID);
  }
  /* Over 16 KiB, even when otherwise well formed. */
  {
    char *big = malloc(JWT_MAX + 2);
    memset(big, 'A', JWT_MAX + 1);
    big[10] = '.';
    big[20] = '.';
    big[JWT_MAX + 1] = '\0';
    T_EQ_INT(gw_jwt_verify(g_soft, big, JWT_MAX + 1, NULL, &claims, NULL),
             GW_ERR_TOO_LARGE);
    free(big);
  }
  T_EQ_INT(gw_jwt_verify(NULL, good, strlen(good), NULL, &claims, NULL),
           GW_ERR_INVALID);
  T_EQ_INT(gw_jwt_verify(g_soft, good, strlen(good), NULL, NULL, NULL),
           GW_ERR_INVALID);
  T_ASSERT(claims == NULL);
#undef HDR
}

/* r||s range: a high s is valid ECDSA (JWS does not forbid it); zero and
 * values >= n are refused by OpenSSL. */
static void test_es256_signature_range(void) {
  static const char N_HEX[] =
      "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
  char *good = sign_sample(g_soft, GW_JWS_ES256, "JWT");
  unsigned char sig[512], n[32], alt[64];
  size_t inlen = 0, siglen = 0;
  BIGNUM *order = NULL, *s = NULL, *hs = NULL;
  char tok[JWT_MAX];

  if (!good || split_jws(good, &inlen, sig, &siglen) != 0) {
    T_ASSERT(0);
    return;
  }
  BN_hex2bn(&order, N_HEX);
  BN_bn2binpad(order, n, 32);
  s = BN_bin2bn(sig + 32, 32, NULL);
  hs = BN_new();
  BN_sub(hs, order, s); /* the other s that verifies: n - s */
#define WITH_SIG(r_, s_)                                                       \
  (memcpy(alt, (r_), 32), memcpy(alt + 32, (s_), 32),                          \
   snprintf(tok, sizeof(tok), "%.*s.", (int)inlen, good),                      \
   ref_b64(alt, 64, tok + strlen(tok)), tok)
  {
    unsigned char hsb[32], zero[32] = {0};
    BN_bn2binpad(hs, hsb, 32);
    T_EQ_INT(verify(g_soft, WITH_SIG(sig, hsb), NULL), GW_OK);
    T_EQ_INT(verify(g_soft, WITH_SIG(sig, sig + 32), NULL), GW_OK);
    T_EQ_INT(verify(g_soft, WITH_SIG(zero, sig + 32), NULL), GW_ERR_INVALID);
    T_EQ_INT(verify(g_soft, WITH_SIG(sig, zero), NULL), GW_ERR_INVALID);
    T_EQ_INT(verify(g_soft, WITH_SIG(n, sig + 32), NULL), GW_ERR_INVALID);
    T_EQ_INT(verify(g_soft, WITH_SIG(sig, n), NULL), GW_ERR_INVALID);
    /* s + n does not fit 32 bytes; r + n might: refused either way. */
    {
      unsigned char ff[32];
      memset(ff, 0xff, sizeof(ff));
      T_EQ_INT(verify(g_soft, WITH_SIG(ff, sig + 32), NULL), GW_ERR_INVALID);
    }
  }
#undef WITH_SIG
  /* Lengths: 63 and 65 bytes, and the DER form OpenSSL would give. */
  {
    unsigned char der[80];
    size_t derlen = 0;
    snprintf(tok, sizeof(tok), "%.*s.", (int)inlen, good);
    ref_b64(sig, 63, tok + strlen(tok));
    T_EQ_INT(verify(g_soft, tok, NULL), GW_ERR_INVALID);
    memcpy(alt, sig, 64);
    snprintf(tok, sizeof(tok), "%.*s.", (int)inlen, good);
    {
      unsigned char longer[65];
      memcpy(longer, sig, 64);
      longer[64] = 0;
      ref_b64(longer, 65, tok + strlen(tok));
    }
    T_EQ_INT(verify(g_soft, tok, NULL), GW_ERR_INVALID);
    raw_to_der(sig, der, &derlen);
    snprintf(tok, sizeof(tok), "%.*s.", (int)inlen, good);
    ref_b64(der, derlen, tok + strlen(tok));
    T_EQ_INT(verify(g_soft, tok, NULL), GW_ERR_INVALID);
  }
  /* RS256: one byte short or long. */
  {
    char *rs = sign_sample(g_soft, GW_JWS_RS256, "JWT");
    unsigned char big[300];
    split_jws(rs, &inlen, sig, &siglen);
    snprintf(tok, sizeof(tok), "%.*s.", (int)inlen, rs);
    ref_b64(sig, siglen - 1, tok + strlen(tok));
    T_EQ_INT(verify(g_soft, tok, NULL), GW_ERR_INVALID);
    big[0] = 0;
    memcpy(big + 1, sig, siglen);
    snprintf(tok, sizeof(tok), "%.*s.", (int)inlen, rs);
    ref_b64(big, siglen + 1, tok + strlen(tok));
    T_EQ_INT(verify(g_soft, tok, NULL), GW_ERR_INVALID);
  }
  BN_free(order);
  BN_free(s);
  BN_free(hs);
}

/* ---- JWKS ---------------------------------------------------------------- */

/* Checks the JWKS of |s| against the public keys |ec| and |rsa|. */
static void check_jwks(const gw_signer *s, EVP_PKEY *ec, EVP_PKEY *rsa) {
  gw_buf b;
  json_t *doc, *keys;
  int seen = 0;

  gw_buf_init(&b, 8192);
  T_EQ_INT(gw_signer_jwks(s, &b), GW_OK);
  doc = json_loads(gw_buf_cstr(&b), JSON_REJECT_DUPLICATES, NULL);
  keys = json_object_get(doc, "keys");
  T_EQ_INT(json_object_size(doc), 1);
  T_EQ_INT(json_array_size(keys), 2);
  for (size_t i = 0; i < json_array_size(keys); i++) {
    json_t *k = json_array_get(keys, i);
    const char *kty = json_string_value(json_object_get(k, "kty"));
    int es = kty && strcmp(kty, "EC") == 0;
    EVP_PKEY *pub = es ? ec : rsa;
    char kid[GW_PKI_KID_LEN + 1];
    static const char *fields[2][2] = {{"n", "e"}, {"x", "y"}};
    static const char *params[2][2] = {
        {OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E},
        {OSSL_PKEY_PARAM_EC_PUB_X, OSSL_PKEY_PARAM_EC_PUB_Y}};

    seen |= es ? 1 : 2;
    T_EQ_STR(json_string_value(json_object_get(k, "use")), "sig");
    T_EQ_STR(json_string_value(json_object_get(k, "alg")),
             es ? "ES256" : "RS256");
    gw_pki_kid(pub, kid, sizeof(kid));
    T_EQ_STR(json_string_value(json_object_get(k, "kid")), kid);
    T_EQ_STR(json_string_value(json_object_get(k, "kid")),
             gw_signer_kid(s, es ? GW_JWS_ES256 : GW_JWS_RS256));
    T_EQ_INT(json_object_size(k), es ? 7 : 6);
    if (es) {
      T_EQ_STR(json_string_value(json_object_get(k, "crv")), "P-256");
    } else {
      T_EQ_STR(json_string_value(json_object_get(k, "e")), "AQAB");
    }
    for (int f = 0; f < 2; f++) {
      const char *v = json_string_value(json_object_get(k, fields[es][f]));
      unsigned char got[512], want[512];
      size_t glen = 0;
      BIGNUM *bn = NULL;
      int wlen;

      T_ASSERT(v != NULL);
      if (!v) {
        continue;
      }
      T_EQ_INT(gw_b64url_decode(v, strlen(v), got, sizeof(got), &glen), GW_OK);
      EVP_PKEY_get_bn_param(pub, params[es][f], &bn);
      wlen = es ? BN_bn2binpad(bn, want, 32) : BN_bn2bin(bn, want);
      T_EQ_INT(glen, wlen);
      T_ASSERT(memcmp(got, want, glen) == 0);
      if (es) {
        T_EQ_INT(glen, 32);
      } else if (f == 0) {
        T_EQ_INT(glen, EVP_PKEY_get_size(rsa));
        T_ASSERT(got[0] != 0);
      }
      BN_free(bn);
    }
  }
  T_EQ_INT(seen, 3);
  json_decref(doc);
  gw_buf_free(&b);
}

static void test_jwks_soft(void) {
  gw_buf b;

  check_jwks(g_soft, g_ec, g_rsa);
  /* A cap too small. */
  gw_buf_init(&b, 64);
  T_EQ_INT(gw_signer_jwks(g_soft, &b), GW_ERR_TOO_LARGE);
  gw_buf_free(&b);
  T_EQ_INT(gw_signer_jwks(NULL, &b), GW_ERR_INVALID);
}

/* ---- the token made by mpkictl ------------------------------------------ */

static gw_config *g_cfg;
static p11_module *g_mod;

static int token_setup(void) {
  char text[PATH_MAX * 2], err[512];

  if (mkdir(tpath("tok"), 0700) != 0 || mkdir(tpath("tok/tokens"), 0700) != 0) {
    return -1;
  }
  snprintf(text, sizeof(text),
           "directories.tokendir = %s\nobjectstore.backend = file\n"
           "log.level = ERROR\nslots.removable = false\n",
           tpath("tok/tokens"));
  if (t_write_text(tpath("tok/softhsm2.conf"), text) != 0 ||
      t_write_text(
          tpath("tok/mpkigw.conf"),
          "tls: { certificate = \"none.pem\"; private_key = "
          "\"none.key\"; };\n"
          "log: { level = \"warn\"; };\n"
          "store: { path = \"mpkigw.db\"; };\n"
          "pkcs11: { module = \"" MODULE "\"; softhsm_conf = "
          "\"softhsm2.conf\"; };\n"
          "pki: { dir = \"pki\"; crl = \"pki/crl.pem\"; };\n"
          "gateway_keys: { token = \"jose-test\"; dir = \"keys\"; };\n") != 0) {
    return -1;
  }
  if (t_mpkictl(tpath("tok"), build, 120, "gateway-key init") != 0) {
    t_sh("tail -n 5 '%s' | sed 's/^/# /'", tpath("tok/ctl.log"));
    return -1;
  }
  if (gw_config_load(&g_cfg, tpath("tok/mpkigw.conf"), err, sizeof(err)) !=
          GW_OK ||
      gw_pki_module_open(g_cfg, &g_mod, err, sizeof(err)) != GW_OK) {
    printf("#   %s\n", err);
    return -1;
  }
  return 0;
}

static EVP_PKEY *read_pub(const char *path) {
  FILE *f = fopen(path, "r");
  EVP_PKEY *k = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;

  if (f) {
    fclose(f);
  }
  return k;
}

/* Checks |jwt| with the `openssl` command and the public key in the file
 * |pem_name| of the test directory. */
static int openssl_cli_verify(const char *jwt, const char *pem_name, int ec) {
  unsigned char sig[512], der[80];
  size_t inlen = 0, siglen = 0, derlen = 0;
  char pem[PATH_MAX + 64];

  snprintf(pem, sizeof(pem), "%s", tpath(pem_name));

  if (split_jws(jwt, &inlen, sig, &siglen) != 0 ||
      write_file(tpath("tok/input"), jwt, inlen) != 0) {
    return -1;
  }
  if (ec) {
    if (raw_to_der(sig, der, &derlen) != 0 ||
        write_file(tpath("tok/sig"), der, derlen) != 0) {
      return -1;
    }
  } else if (write_file(tpath("tok/sig"), sig, siglen) != 0) {
    return -1;
  }
  return t_sh("openssl dgst -sha256 -verify '%s' -signature '%s' '%s' "
              "| grep -qx 'Verified OK'",
              pem, tpath("tok/sig"), tpath("tok/input"));
}

static void test_token_signer(void) {
  gw_signer *s = NULL;
  EVP_PKEY *es = read_pub(tpath("tok/keys/es256.pem"));
  EVP_PKEY *rs = read_pub(tpath("tok/keys/rs256.pem"));
  char err[512], want[256];

  T_ASSERT(es && rs);
  T_EQ_INT(gw_signer_new(&s, g_cfg, g_mod, err, sizeof(err)), GW_OK);
  if (!s || !es || !rs) {
    printf("#   %s\n", err);
    goto done;
  }
  /* The kids are those of the files mpkictl wrote. */
  snprintf(want, sizeof(want), "ES256 %s\nRS256 %s\n",
           gw_signer_kid(s, GW_JWS_ES256), gw_signer_kid(s, GW_JWS_RS256));
  T_EQ_STR(read_file(tpath("tok/keys/kids")), want);
  check_jwks(s, es, rs);
  for (int i = 0; i < 2; i++) {
    gw_jws_alg alg = i == 0 ? GW_JWS_ES256 : GW_JWS_RS256;
    char *jwt = sign_sample(s, alg, "at+jwt");
    unsigned char sig[512];
    size_t inlen = 0, siglen = 0;

    T_ASSERT(jwt != NULL);
    if (!jwt) {
      continue;
    }
    T_EQ_INT(verify(s, jwt, "at+jwt"), GW_OK);
    T_EQ_INT(split_jws(jwt, &inlen, sig, &siglen), 0);
    T_EQ_INT(siglen, i == 0 ? 64 : 256);
    T_ASSERT(ref_verify(i == 0 ? es : rs, jwt, inlen, sig, siglen));
    T_EQ_INT(
        openssl_cli_verify(
            jwt, i == 0 ? "tok/keys/es256.pem" : "tok/keys/rs256.pem", i == 0),
        0);
    /* Not by another signer whose kids differ. */
    T_EQ_INT(verify(g_soft, jwt, NULL), GW_ERR_INVALID);
  }

done:
  gw_signer_del(s);
  EVP_PKEY_free(es);
  EVP_PKEY_free(rs);
}

/* Runs gw_signer_new, expecting |want| and |needle| in the message. */
static void expect_new_fails(int want, const char *needle) {
  gw_signer *s = NULL;
  gw_pki_pins pins;
  char err[512] = "";

  T_EQ_INT(gw_signer_new(&s, g_cfg, g_mod, err, sizeof(err)), want);
  T_ASSERT(s == NULL);
  if (!strstr(err, needle)) {
    printf("#   message \"%s\" lacks \"%s\"\n", err, needle);
    T_ASSERT(0);
  }
  if (gw_pki_pins_load(g_cfg->pki_pin_file, &pins, NULL, 0) == GW_OK) {
    T_ASSERT(strstr(err, pins.gw_pin) == NULL);
    T_ASSERT(strstr(err, pins.gw_so_pin) == NULL);
    gw_pki_pins_wipe(&pins);
  }
  gw_signer_del(s);
}

static void test_token_mismatch(void) {
  char es_pem[4096], rs_pem[4096], kids[256], pins_text[1024];
  EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  char *other_pem = other ? pem_of(other, 0) : NULL;
  gw_config *bad = NULL;
  char err[512];

  snprintf(es_pem, sizeof(es_pem), "%s",
           read_file(tpath("tok/keys/es256.pem")));
  snprintf(rs_pem, sizeof(rs_pem), "%s",
           read_file(tpath("tok/keys/rs256.pem")));
  snprintf(kids, sizeof(kids), "%s", read_file(tpath("tok/keys/kids")));
  snprintf(pins_text, sizeof(pins_text), "%s", read_file(g_cfg->pki_pin_file));

  /* es256.pem holds another key. */
  t_write_text(tpath("tok/keys/es256.pem"), other_pem ? other_pem : "");
  expect_new_fails(GW_ERR_CONFIG, "es256.pem is not the public key of key "
                                  "\"es256\" on token \"jose-test\"");
  /* The two files swapped. */
  t_write_text(tpath("tok/keys/es256.pem"), rs_pem);
  expect_new_fails(GW_ERR_CONFIG, "es256.pem is not the public key");
  t_write_text(tpath("tok/keys/es256.pem"), es_pem);
  t_write_text(tpath("tok/keys/rs256.pem"), es_pem);
  expect_new_fails(GW_ERR_CONFIG, "rs256.pem is not the public key");
  t_write_text(tpath("tok/keys/rs256.pem"), "not a key\n");
  expect_new_fails(GW_ERR_CONFIG, "rs256.pem: not a PEM public key");
  unlink(tpath("tok/keys/rs256.pem"));
  expect_new_fails(GW_ERR_IO, "rs256.pem");
  t_write_text(tpath("tok/keys/rs256.pem"), rs_pem);

  /* kids: swapped, missing a line, malformed, missing. */
  {
    char swapped[256], e[64], r[64];
    sscanf(kids, "ES256 %63s RS256 %63s", e, r);
    snprintf(swapped, sizeof(swapped), "ES256 %s\nRS256 %s\n", r, e);
    t_write_text(tpath("tok/keys/kids"), swapped);
    expect_new_fails(GW_ERR_CONFIG, "the ES256 kid is");
    snprintf(swapped, sizeof(swapped), "ES256 %s\n", e);
    t_write_text(tpath("tok/keys/kids"), swapped);
    expect_new_fails(GW_ERR_CONFIG, "the RS256 kid is missing");
    snprintf(swapped, sizeof(swapped), "ES256 %s\nES256 %s\n", e, e);
    t_write_text(tpath("tok/keys/kids"), swapped);
    expect_new_fails(GW_ERR_CONFIG, "kids:2: kid listed twice");
    snprintf(swapped, sizeof(swapped), "ES256 %s x\nRS256 %s\n", e, r);
    t_write_text(tpath("tok/keys/kids"), swapped);
    expect_new_fails(GW_ERR_CONFIG, "kids:1:");
    snprintf(swapped, sizeof(swapped), "HS256 %s\n", e);
    t_write_text(tpath("tok/keys/kids"), swapped);
    expect_new_fails(GW_ERR_CONFIG, "unknown algorithm");
    /* Comments, blank lines and a missing final newline are fine. */
    snprintf(swapped, sizeof(swapped), "# kids\n\nRS256 %s\nES256 %s", r, e);
    t_write_text(tpath("tok/keys/kids"), swapped);
    {
      gw_signer *s = NULL;
      T_EQ_INT(gw_signer_new(&s, g_cfg, g_mod, err, sizeof(err)), GW_OK);
      gw_signer_del(s);
    }
  }
  unlink(tpath("tok/keys/kids"));
  expect_new_fails(GW_ERR_IO, "gateway-key init");
  t_write_text(tpath("tok/keys/kids"), kids);

  /* A wrong gateway PIN: refused, and never shown. */
  {
    char wrong[1024], *p;
    snprintf(wrong, sizeof(wrong), "%s", pins_text);
    p = strstr(wrong, "gateway.pin");
    p = p ? strchr(p, '=') : NULL;
    while (p && *++p == ' ') {
    }
    if (p) {
      *p = *p == '0' ? '1' : '0';
    }
    t_write_text(g_cfg->pki_pin_file, wrong);
    chmod(g_cfg->pki_pin_file, 0600);
    expect_new_fails(GW_ERR_CONFIG, "gateway.pin in");
    t_write_text(g_cfg->pki_pin_file, pins_text);
  }
  /* The pin file must be private. */
  chmod(g_cfg->pki_pin_file, 0644);
  expect_new_fails(GW_ERR_CONFIG, g_cfg->pki_pin_file);
  chmod(g_cfg->pki_pin_file, 0600);

  /* No such token. */
  t_write_text(
      tpath("tok/other.conf"),
      "tls: { certificate = \"none.pem\"; private_key = "
      "\"none.key\"; };\n"
      "store: { path = \"mpkigw.db\"; };\n"
      "pkcs11: { module = \"" MODULE "\"; softhsm_conf = "
      "\"softhsm2.conf\"; };\n"
      "gateway_keys: { token = \"no-such-token\"; dir = \"keys\"; };\n");
  if (gw_config_load(&bad, tpath("tok/other.conf"), err, sizeof(err)) ==
      GW_OK) {
    gw_signer *s = NULL;
    T_EQ_INT(gw_signer_new(&s, bad, g_mod, err, sizeof(err)), GW_ERR_NOT_FOUND);
    T_ASSERT(strstr(err, "no-such-token") != NULL);
    gw_config_del(bad);
  } else {
    T_ASSERT(0);
  }
  /* Everything back: it opens again. */
  {
    gw_signer *s = NULL;
    T_EQ_INT(gw_signer_new(&s, g_cfg, g_mod, err, sizeof(err)), GW_OK);
    gw_signer_del(s);
  }
  free(other_pem);
  EVP_PKEY_free(other);
}

/* Several threads signing on the token at once (the p11_pool case). */
typedef struct sign_job {
  gw_signer *s;
  int failed;
} sign_job;

static void *sign_thread(void *arg) {
  sign_job *j = arg;
  json_t *c = sample_claims();

  for (int i = 0; i < 20 && !j->failed; i++) {
    gw_jws_alg alg = i % 4 == 0 ? GW_JWS_RS256 : GW_JWS_ES256;
    gw_buf b;
    json_t *got = NULL;

    gw_buf_init(&b, JWT_MAX);
    if (gw_jwt_sign(j->s, alg, "at+jwt", c, &b) != GW_OK ||
        gw_jwt_verify(j->s, b.data, b.len, "at+jwt", &got, NULL) != GW_OK) {
      j->failed = 1;
    }
    json_decref(got);
    gw_buf_free(&b);
  }
  json_decref(c);
  return NULL;
}

static void test_token_threads(void) {
  gw_signer *s = NULL;
  pthread_t th[4];
  sign_job jobs[4];
  char err[512];

  T_EQ_INT(gw_signer_new(&s, g_cfg, g_mod, err, sizeof(err)), GW_OK);
  if (!s) {
    return;
  }
  for (int i = 0; i < 4; i++) {
    jobs[i] = (sign_job){s, 0};
    pthread_create(&th[i], NULL, sign_thread, &jobs[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    T_EQ_INT(jobs[i].failed, 0);
  }
  gw_signer_del(s);
}

/* ---- rotation --------------------------------------------------------------
 */

/* The kid in the header of |jwt| ("" when there is none). */
static const char *jwt_kid(const char *jwt) {
  static char kid[64];
  json_t *h = jwt ? json_loads(part_text(jwt, 0), 0, NULL) : NULL;

  snprintf(kid, sizeof(kid), "%s",
           json_string_value(json_object_get(h, "kid"))
               ? json_string_value(json_object_get(h, "kid"))
               : "");
  json_decref(h);
  return kid;
}

/* How many keys of the JWKS of |s| have kid |kid| (with |kid| NULL: all). */
static int jwks_count(const gw_signer *s, const char *kid) {
  gw_buf b;
  json_t *doc, *k;
  size_t i;
  int n = 0;

  gw_buf_init(&b, 65536);
  if (gw_signer_jwks(s, &b) != GW_OK) {
    gw_buf_free(&b);
    return -1;
  }
  doc = json_loads(gw_buf_cstr(&b), 0, NULL);
  gw_buf_free(&b);
  json_array_foreach(json_object_get(doc, "keys"), i, k) {
    const char *v = json_string_value(json_object_get(k, "kid"));
    n += !kid || (v && strcmp(v, kid) == 0);
  }
  json_decref(doc);
  return n;
}

static void wait_until(long long t) {
  while ((long long)time(NULL) < t) {
    usleep(50 * 1000);
  }
}

/* Threads that sign and verify while the main thread rotates and reloads:
 * none may ever fail (a half-swapped set would show here). */
typedef struct churn_job {
  gw_signer *s;
  volatile int *stop;
  int failed, rounds;
} churn_job;

static void *churn_thread(void *arg) {
  churn_job *j = arg;
  json_t *c = sample_claims();

  while (!*j->stop && !j->failed) {
    gw_jws_alg alg = j->rounds % 8 == 0 ? GW_JWS_RS256 : GW_JWS_ES256;
    gw_buf b, w;
    json_t *got = NULL;

    gw_buf_init(&b, JWT_MAX);
    gw_buf_init(&w, 65536);
    if (gw_jwt_sign(j->s, alg, "at+jwt", c, &b) != GW_OK ||
        gw_jwt_verify(j->s, b.data, b.len, "at+jwt", &got, NULL) != GW_OK ||
        gw_signer_jwks(j->s, &w) != GW_OK || !gw_signer_kid(j->s, alg)) {
      j->failed = 1;
    }
    json_decref(got);
    gw_buf_free(&b);
    gw_buf_free(&w);
    j->rounds++;
  }
  json_decref(c);
  return NULL;
}

/* The whole life of a rotation on the token, with a lead of 3 s and a keep
 * of 2 s: the new kids are published at once but the old ones sign; after
 * the lead the new ones sign and the old tokens still verify; after the
 * keep the old kids leave the JWKS and their tokens are refused. */
static void test_token_rotate(void) {
  gw_signer *s = NULL, *s2 = NULL;
  gw_pki_pins pins;
  gw_pki_gwkeys *after = calloc(1, sizeof(*after));
  gw_pki_rotate_opts o = {1, 1, 3, 2, 0};
  char err[512], old_es[64], old_rs[64], new_es[64] = "", new_rs[64] = "";
  char old_tok_es[JWT_MAX + 1], old_tok_rs[JWT_MAX + 1];
  long long sign_from = 0, retire_at = 0;
  volatile int stop = 0;
  churn_job jobs[2];
  pthread_t th[2];
  int changed = -1, rv;

  T_ASSERT(after != NULL);
  T_EQ_INT(gw_signer_new(&s, g_cfg, g_mod, err, sizeof(err)), GW_OK);
  T_EQ_INT(gw_pki_pins_load(g_cfg->pki_pin_file, &pins, err, sizeof(err)),
           GW_OK);
  if (!s || !after) {
    goto done;
  }
  snprintf(old_es, sizeof(old_es), "%s", gw_signer_kid(s, GW_JWS_ES256));
  snprintf(old_rs, sizeof(old_rs), "%s", gw_signer_kid(s, GW_JWS_RS256));
  snprintf(old_tok_es, sizeof(old_tok_es), "%s",
           sign_sample(s, GW_JWS_ES256, "at+jwt"));
  snprintf(old_tok_rs, sizeof(old_tok_rs), "%s",
           sign_sample(s, GW_JWS_RS256, "at+jwt"));
  /* Unchanged file: nothing to do. */
  T_EQ_INT(gw_signer_reload(s, &changed, err, sizeof(err)), GW_OK);
  T_EQ_INT(changed, 0);

  for (int i = 0; i < 2; i++) {
    jobs[i] = (churn_job){s, &stop, 0, 0};
    pthread_create(&th[i], NULL, churn_thread, &jobs[i]);
  }
  rv = gw_pki_gateway_keys_rotate(g_cfg, g_mod, &pins, &o, after, err,
                                  sizeof(err));
  T_EQ_INT(rv, GW_OK);
  if (rv != GW_OK) {
    printf("#   %s\n", err);
  }
  for (size_t i = 0; rv == GW_OK && i < after->n; i++) {
    if (strcmp(after->k[i].label, "es256-1") == 0) {
      snprintf(new_es, sizeof(new_es), "%s", after->k[i].kid);
      sign_from = after->k[i].sign_from;
      T_EQ_STR(after->k[i].file, "es256-1.pem");
    } else if (strcmp(after->k[i].label, "rs256-1") == 0) {
      snprintf(new_rs, sizeof(new_rs), "%s", after->k[i].kid);
    } else if (strcmp(after->k[i].label, "es256") == 0) {
      retire_at = after->k[i].retire_at;
    }
  }
  T_EQ_INT(after->n, 4);
  T_ASSERT(new_es[0] && new_rs[0] && sign_from > 0);
  T_EQ_INT(retire_at, sign_from + 2);
  T_EQ_INT(gw_signer_reload(s, &changed, err, sizeof(err)), GW_OK);
  T_EQ_INT(changed, 1);
  stop = 1;
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    T_EQ_INT(jobs[i].failed, 0);
  }
  if (!new_es[0] || !sign_from) {
    goto done;
  }

  /* Published at once, not signing yet. */
  T_EQ_INT(jwks_count(s, NULL), 4);
  T_EQ_INT(jwks_count(s, new_es), 1);
  T_EQ_INT(jwks_count(s, new_rs), 1);
  if ((long long)time(NULL) < sign_from) {
    T_EQ_STR(gw_signer_kid(s, GW_JWS_ES256), old_es);
    T_EQ_STR(jwt_kid(sign_sample(s, GW_JWS_ES256, "at+jwt")), old_es);
    T_EQ_STR(jwt_kid(sign_sample(s, GW_JWS_RS256, "at+jwt")), old_rs);
  } else {
    printf("# the rotation took longer than its lead: not checked\n");
  }
  /* A token "signed" by the new key before its time would still verify:
   * it is published. */
  wait_until(sign_from);
  T_EQ_STR(gw_signer_kid(s, GW_JWS_ES256), new_es);
  T_EQ_STR(gw_signer_kid(s, GW_JWS_RS256), new_rs);
  T_EQ_STR(jwt_kid(sign_sample(s, GW_JWS_ES256, "at+jwt")), new_es);
  T_EQ_STR(jwt_kid(sign_sample(s, GW_JWS_RS256, "at+jwt")), new_rs);
  T_EQ_INT(verify(s, sign_sample(s, GW_JWS_ES256, "at+jwt"), "at+jwt"), GW_OK);
  /* The new key's token checks out with its PEM file and `openssl`. */
  T_EQ_INT(openssl_cli_verify(sign_sample(s, GW_JWS_ES256, "at+jwt"),
                              "tok/keys/es256-1.pem", 1),
           0);
  if ((long long)time(NULL) < retire_at) {
    T_EQ_INT(verify(s, old_tok_es, "at+jwt"), GW_OK);
    T_EQ_INT(verify(s, old_tok_rs, "at+jwt"), GW_OK);
    T_EQ_INT(jwks_count(s, old_es), 1);
  }
  /* A signer opened now (a restart) agrees. */
  T_EQ_INT(gw_signer_new(&s2, g_cfg, g_mod, err, sizeof(err)), GW_OK);
  T_EQ_STR(gw_signer_kid(s2, GW_JWS_ES256), new_es);

  wait_until(retire_at);
  T_EQ_INT(verify(s, old_tok_es, "at+jwt"), GW_ERR_INVALID);
  T_EQ_INT(verify(s, old_tok_rs, "at+jwt"), GW_ERR_INVALID);
  T_EQ_INT(jwks_count(s, old_es), 0);
  T_EQ_INT(jwks_count(s, old_rs), 0);
  T_EQ_INT(jwks_count(s, NULL), 2);
  T_EQ_INT(verify(s2, old_tok_es, "at+jwt"), GW_ERR_INVALID);
  /* Retired keys are not even opened by a new signer. */
  gw_signer_del(s2);
  s2 = NULL;
  T_EQ_INT(gw_signer_new(&s2, g_cfg, g_mod, err, sizeof(err)), GW_OK);
  T_EQ_INT(jwks_count(s2, NULL), 2);

done:
  gw_pki_pins_wipe(&pins);
  free(after);
  gw_signer_del(s);
  gw_signer_del(s2);
}

/* `mpkictl gateway-key rotate` in another process: the running signer
 * picks it up at its next reload, without a restart. */
static void test_token_reload_other_process(void) {
  gw_signer *s = NULL;
  char err[512], old_es[64], old_rs[64], new_es[64] = "";
  char *kids;
  int changed = -1;
  long long t0;

  T_EQ_INT(gw_signer_new(&s, g_cfg, g_mod, err, sizeof(err)), GW_OK);
  if (!s) {
    printf("#   %s\n", err);
    return;
  }
  snprintf(old_es, sizeof(old_es), "%s", gw_signer_kid(s, GW_JWS_ES256));
  snprintf(old_rs, sizeof(old_rs), "%s", gw_signer_kid(s, GW_JWS_RS256));
  t0 = (long long)time(NULL);
  T_EQ_INT(t_mpkictl(tpath("tok"), build, 120,
                     "gateway-key rotate --alg ES256 --publish-lead-s 2"),
           0);
  /* The retired es256 and rs256 left the list, es256-2 came in. */
  kids = read_file(tpath("tok/keys/kids"));
  T_ASSERT(strstr(kids, " es256-2 es256-2.pem ") != NULL);
  T_ASSERT(strstr(kids, " es256 ") == NULL && strstr(kids, " rs256 ") == NULL);
  T_ASSERT(access(tpath("tok/keys/es256.pem"), F_OK) != 0);
  {
    const char *p = strstr(kids, "ES256 ");
    while (p && strstr(p + 1, "ES256 ")) {
      p = strstr(p + 1, "ES256 ");
    }
    if (p) {
      sscanf(p, "ES256 %63s", new_es);
    }
  }
  T_EQ_INT(jwks_count(s, new_es), 0); /* not before the reload */
  T_EQ_INT(gw_signer_reload(s, &changed, err, sizeof(err)), GW_OK);
  T_EQ_INT(changed, 1);
  T_EQ_INT(jwks_count(s, new_es), 1);
  if ((long long)time(NULL) < t0 + 2) {
    T_EQ_STR(gw_signer_kid(s, GW_JWS_ES256), old_es);
  }
  wait_until(t0 + 3);
  T_EQ_STR(gw_signer_kid(s, GW_JWS_ES256), new_es);
  T_EQ_STR(jwt_kid(sign_sample(s, GW_JWS_ES256, "at+jwt")), new_es);
  T_EQ_INT(verify(s, sign_sample(s, GW_JWS_ES256, "at+jwt"), "at+jwt"), GW_OK);
  /* RS256 was not rotated. */
  T_EQ_STR(gw_signer_kid(s, GW_JWS_RS256), old_rs);
  /* A list that does not load keeps the keys, and is not retried until it
   * changes. */
  {
    char saved[8192];
    snprintf(saved, sizeof(saved), "%s", kids);
    t_write_text(tpath("tok/keys/kids"), "ES256 nonsense\n");
    gw_log_min_level = GW_LOG_ERROR + 1; /* the expected error line */
    T_EQ_INT(gw_signer_reload(s, &changed, err, sizeof(err)), GW_ERR_CONFIG);
    gw_log_min_level = GW_LOG_ERROR;
    T_EQ_INT(changed, 0);
    T_EQ_INT(gw_signer_reload(s, &changed, err, sizeof(err)), GW_OK);
    T_EQ_STR(gw_signer_kid(s, GW_JWS_ES256), new_es);
    t_write_text(tpath("tok/keys/kids"), saved);
    T_EQ_INT(gw_signer_reload(s, &changed, err, sizeof(err)), GW_OK);
    T_EQ_STR(gw_signer_kid(s, GW_JWS_ES256), new_es);
  }
  gw_signer_del(s);
}

/* ---- main ---------------------------------------------------------------- */

static int soft_setup(void) {
  char err[256], *ec, *rsa;
  int rv;

  g_ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  g_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  if (!g_ec || !g_rsa) {
    return -1;
  }
  ec = pem_of(g_ec, 1);
  rsa = pem_of(g_rsa, 1);
  rv = gw_signer_new_pem(&g_soft, ec, rsa, err, sizeof(err));
  free(ec);
  free(rsa);
  if (rv != GW_OK) {
    printf("#   %s\n", err);
    return -1;
  }
  return 0;
}

int main(void) {
  char tmpl[] = "/tmp/gw_jose_test.XXXXXX", exe[PATH_MAX + 16];
  const char *b = getenv("BUILD");

  gw_log_min_level = GW_LOG_ERROR;
  if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir)) {
    printf("not ok - mkdtemp: %s\n", strerror(errno));
    return 1;
  }
  if (soft_setup() != 0) {
    printf("not ok - software keys\n");
    return 1;
  }
  T_RUN(test_b64url_vectors);
  T_RUN(test_b64url_refusals);
  T_RUN(test_alg_names);
  T_RUN(test_rfc7515_a3);
  T_RUN(test_sign_verify_soft);
  T_RUN(test_sign_errors);
  T_RUN(test_signer_new_pem_errors);
  T_RUN(test_verify_refusals);
  T_RUN(test_es256_signature_range);
  T_RUN(test_jwks_soft);

  if (!realpath(b && b[0] ? b : "build", build) ||
      (snprintf(exe, sizeof(exe), "%s/mpkictl", build), access(exe, X_OK)) !=
          0) {
    printf("# skip: the token tests need build/mpkictl (set BUILD)\n");
  } else if (token_setup() != 0) {
    printf("not ok - gateway keys made with mpkictl gateway-key init\n");
    t_failed_total++;
  } else {
    printf("ok - gateway keys made with mpkictl gateway-key init\n");
    T_RUN(test_token_signer);
    T_RUN(test_token_mismatch);
    T_RUN(test_token_threads);
    /* Last: they rotate the keys away from the two-line kids file. */
    T_RUN(test_token_rotate);
    T_RUN(test_token_reload_other_process);
  }
  gw_signer_del(g_soft);
  p11_module_del(g_mod);
  gw_config_del(g_cfg);
  EVP_PKEY_free(g_ec);
  EVP_PKEY_free(g_rsa);
  if (!getenv("KEEP_TMP")) {
    t_sh("rm -rf '%s'", tmpdir);
  }
  return T_DONE();
}
