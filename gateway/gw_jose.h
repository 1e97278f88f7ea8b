/* gw_jose.h — JSON Web Signatures for the gateway's tokens: base64url,
 * compact JWS/JWT signed with the gateway's keys on its PKCS#11 token
 * (ES256 as raw r||s — the JWS form, not OpenSSL's DER — and RS256), the
 * JWKS that publishes their public halves with their kids, and verification
 * of the gateway's own tokens (introspection, revocation, the licensing
 * backend).
 *
 * Keys: every key listed in gateway_keys.dir/kids (gw_pki_gwkeys_parse,
 * docs/tokens.md "Rotation"): its private key on gateway_keys.token under
 * its label (logged in with gateway.pin from pki.pin_file) and its public
 * key in its PEM file; the kid is gw_pki_kid() of the public key, and the
 * token's key must match the file. Each key has times: it is in the JWKS
 * and verifies tokens from PUBLISH_AT until RETIRE_AT, and per algorithm
 * the newest key whose SIGN_FROM has come signs. `mpkictl gateway-key
 * rotate` adds keys; the two-line file of `gateway-key init` means two
 * current keys. The times are compared with the clock at every call.
 *
 * Threads: gw_signer_new/del at start-up/shut-down. gw_jwt_sign blocks (a
 * PKCS#11 signature): call it from a p11_pool thread, never from an event
 * loop; it may run on several threads at once. gw_jwt_verify,
 * gw_signer_jwks and gw_signer_kid are pure CPU (OpenSSL with the public
 * keys) and thread-safe. gw_signer_reload may run on any one thread at a
 * time while the others sign and verify: the keys are an immutable,
 * refcounted set that a reload swaps whole, so a call sees the set of
 * before or of after, never half of one. Errors are GW_ERR_* (gw_err.h). */
#ifndef GW_JOSE_H
#define GW_JOSE_H

#include <stddef.h>

#include <jansson.h>

#include "gw_buf.h"

struct gw_config;
struct p11_module;

/* base64url without padding (RFC 7515 §2). Encoding appends to |out|
 * (GW_ERR_TOO_LARGE over its cap, |out| then unchanged). Decoding refuses
 * padding, whitespace, characters outside the alphabet and a last
 * character with unused bits set (each byte string has one encoding):
 * GW_ERR_INVALID; GW_ERR_TOO_LARGE when |cap| is too small. */
int gw_b64url_encode(const void *p, size_t n, gw_buf *out);
int gw_b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap,
                     size_t *outlen);

typedef enum gw_jws_alg {
  GW_JWS_NONE = 0, /* never accepted */
  GW_JWS_ES256 = 1,
  GW_JWS_RS256 = 2
} gw_jws_alg;

/* "ES256" / "RS256"; NULL for anything else. */
const char *gw_jws_alg_name(gw_jws_alg a);
/* Parses "ES256" / "RS256" (exact). Returns GW_JWS_NONE otherwise. */
gw_jws_alg gw_jws_alg_parse(const char *s);

typedef struct gw_signer gw_signer;

/* Opens the gateway's signing keys: reads gateway_keys.dir/kids, finds
 * the token, logs in, and for every key not retired yet finds its private
 * key and checks it against its PEM file and kid. Blocking: call at
 * start-up. Returns GW_OK or GW_ERR_CONFIG / GW_ERR_NOT_FOUND / GW_ERR_IO /
 * GW_ERR_NOMEM (GW_ERR_INVALID for a NULL argument) with a reason (file,
 * label; never a PIN) in |err|. |cfg| and |m| are borrowed and must
 * outlive the signer. */
int gw_signer_new(gw_signer **out, const struct gw_config *cfg,
                  struct p11_module *m, char *err, size_t errlen);

/* Reads gateway_keys.dir/kids again when it changed (stat: device, inode,
 * size, mtime; an unchanged file costs one stat) and swaps in the new key
 * set; keys it had already keep their token handles, new keys are opened
 * and checked as in gw_signer_new (the PIN file is read only then). For
 * the running gateway's housekeeping timer, every tick. Blocking when the
 * file changed (PKCS#11): not on a busy event loop. A list that fails to
 * load is logged, the previous set stays, and it is tried again only when
 * the file changes again. Sets |*changed| (may be NULL) to 1 when a new
 * set was installed. A gw_signer_new_pem signer has nothing to reload
 * (GW_OK). Returns GW_OK or the errors of gw_signer_new, GW_ERR_IO (the
 * list cannot be stat'ed). */
int gw_signer_reload(gw_signer *s, int *changed, char *err, size_t errlen);

/* For tests: a signer from PEM private keys in memory (no PKCS#11). Either
 * may be NULL (that algorithm is then unavailable). Returns GW_OK,
 * GW_ERR_INVALID (both NULL), GW_ERR_CONFIG (not an unencrypted PEM private
 * key of the right kind: EC P-256, RSA of 2048..4096 bits), GW_ERR_NOMEM. */
int gw_signer_new_pem(gw_signer **out, const char *es256_pem,
                      const char *rs256_pem, char *err, size_t errlen);

void gw_signer_del(gw_signer *s);

/* The kid of the key that signs for |alg| now, or NULL when there is
 * none. The string lives as long as the signer (reloads included). */
const char *gw_signer_kid(const gw_signer *s, gw_jws_alg alg);

/* Appends the JWKS document {"keys": [...]} to |out|: for each key
 * published now (PUBLISH_AT <= now < RETIRE_AT), in list order, kty,
 * use "sig", alg, kid and the public parameters (EC: crv "P-256", x, y,
 * each 32 bytes base64url; RSA: n, e, unpadded big-endian base64url). */
int gw_signer_jwks(const gw_signer *s, gw_buf *out);

/* Signs |claims| (not modified; serialised compact, keys in insertion
 * order) with the key that signs for |alg| now (gw_signer_kid) as a
 * compact JWS with the header {"alg", "typ": |typ|, "kid"} and
 * appends it to |out|. Blocking (PKCS#11). Returns GW_OK, GW_ERR_INVALID
 * (no key for |alg|, typ NULL), GW_ERR_TOO_LARGE, GW_ERR_NOMEM,
 * GW_ERR_INTERNAL (the token failed: logged). */
int gw_jwt_sign(gw_signer *s, gw_jws_alg alg, const char *typ,
                const json_t *claims, gw_buf *out);

/* Verifies a compact JWS made by |s|: three base64url parts, a header
 * with alg ES256 or RS256 (never "none", nothing else) whose kid is one of
 * the signer's keys for that alg published now (not before PUBLISH_AT, not
 * from RETIRE_AT on), typ equal to |want_typ| when it is not
 * NULL (compared case-insensitively, "application/" prefix allowed), and
 * the signature. On GW_OK stores the payload object in |*claims| (a new
 * reference) and, when |alg| is not NULL, the alg. Does not look at any
 * claim (exp, iss, aud are the caller's business). Returns GW_OK,
 * GW_ERR_INVALID (malformed, wrong alg/kid/typ, bad signature),
 * GW_ERR_TOO_LARGE (over 16 KiB), GW_ERR_NOMEM. */
int gw_jwt_verify(const gw_signer *s, const char *jwt, size_t n,
                  const char *want_typ, json_t **claims, gw_jws_alg *alg);

#endif
