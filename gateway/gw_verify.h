/* gw_verify.h — verification of SIM signatures and their certificates.
 *
 * A gw_verify verifier checks that a signature returned by an operator is
 * over exactly the data the gateway asked to be signed, that the signer's
 * certificate chains to the configured trust anchors, carries key usage
 * digitalSignature (or nonRepudiation), is valid now (the gateway's clock,
 * widened by a configured skew; never a time the signer chose) and is not
 * revoked (CRL and/or OCSP, both failing closed), and that the certificate's
 * identity (civil number, MSISDN) is the one the transaction was for.
 * Certificates that passed are cached, so that the hot path costs one
 * signature verification. See docs/verification.md.
 *
 * Outcomes: the verification functions return a gw_verify_result (0 is
 * GW_VERIFY_OK) and fill a gw_verify_status with the same result, a human
 * detail and the signer's identity. gw_verify_result_etsi() maps results
 * onto ETSI TS 102 204 status codes. Construction errors are GW_ERR_*
 * (gw_err.h).
 *
 * Threading: one verifier is shared by all worker threads.
 * gw_verify_cms(), gw_verify_raw(), gw_verify_cert(), gw_verify_get_stats()
 * and gw_verify_cache_clear() may be called concurrently from any number of
 * threads. gw_verify_new() and gw_verify_del() must not overlap any other
 * call on the same verifier. The identity and result functions are pure.
 *
 * Blocking: a verification that misses the cache reads the CRL file when it
 * changed and, when OCSP is configured, makes one HTTP request to the
 * responder that blocks for at most ocsp_timeout_ms. Call the verification
 * functions from a worker/pool thread, never from an event-loop thread. */
#ifndef GW_VERIFY_H
#define GW_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct gw_verify gw_verify;

/* ---- outcomes ----------------------------------------------------------- */

typedef enum gw_verify_result {
  GW_VERIFY_OK = 0,            /* everything checked and good (ETSI 502) */
  GW_VERIFY_BAD_FORMAT,        /* signature/CMS empty, too large, not DER,
                                  truncated, trailing bytes (503) */
  GW_VERIFY_BAD_SIGNATURE,     /* does not verify, or is over other data
                                  than asked for (503) */
  GW_VERIFY_UNSUPPORTED,       /* algorithm, digest, curve or key size not
                                  accepted (503) */
  GW_VERIFY_NO_CERT,           /* no signer certificate in the CMS (422) */
  GW_VERIFY_BAD_CERT,          /* the certificate does not parse (425) */
  GW_VERIFY_UNTRUSTED_CHAIN,   /* does not chain to a trust anchor (425) */
  GW_VERIFY_EXPIRED,           /* past notAfter + skew, in the chain (425) */
  GW_VERIFY_NOT_YET_VALID,     /* before notBefore - skew (425) */
  GW_VERIFY_KEY_USAGE,         /* no digitalSignature/nonRepudiation, or a
                                  CA certificate (425) */
  GW_VERIFY_REVOKED,           /* revoked by CRL or OCSP (501) */
  GW_VERIFY_IDENTITY_MISMATCH, /* civil number or MSISDN differ from the
                                  expected ones (425) */
  GW_VERIFY_CRL_UNAVAILABLE,   /* CRL missing, unreadable, malformed, not
                                  signed by its issuer, none for the issuer
                                  (423) */
  GW_VERIFY_CRL_EXPIRED,       /* CRL past nextUpdate + skew (424) */
  GW_VERIFY_OCSP_UNAVAILABLE,  /* responder down, timed out, HTTP error,
                                  tryLater/internalError (423) */
  GW_VERIFY_OCSP_BAD_RESPONSE, /* unparsable, unsigned, badly signed,
                                  unauthorised signer, stale, nonce
                                  mismatch, not for this certificate, status
                                  unknown (423) */
  GW_VERIFY_INTERNAL,          /* out of memory, bad argument (900) */
  GW_VERIFY_RESULT_COUNT_
} gw_verify_result;

/* Returns a static lower-case name ("ok", "bad_signature", ...) for logs and
 * metrics; "unknown" for a value out of range. Never NULL. */
const char *gw_verify_result_str(gw_verify_result r);

/* Returns the ETSI TS 102 204 status code for |r|: 502 VALID_SIGNATURE for
 * OK, 503 INVALID_SIGNATURE, 501 REVOKED_CERTIFICATE, 422 NO_CERT_FOUND,
 * 423 CRL_PB, 424 CRL_EXPIRED, 425 ERROR_CERTIFICATE, 900 INTERNAL_ERROR
 * (also for a value out of range). */
int gw_verify_result_etsi(gw_verify_result r);

/* ---- identity ----------------------------------------------------------- */

#define GW_VERIFY_CIVIL_MAX 20  /* digits of a civil number */
#define GW_VERIFY_MSISDN_MAX 16 /* "+" and up to 15 digits (E.164) */
#define GW_VERIFY_NAME_MAX 128  /* bytes of UTF-8 */

/* Who a certificate says its holder is. Each field is "" when the
 * certificate does not carry it (or carries it malformed). */
typedef struct gw_verify_identity {
  /* digits of the subject serialNumber "PNOOM-<digits>" */
  char civil_id[GW_VERIFY_CIVIL_MAX + 1];
  /* "+<digits>" from the first subjectAltName URI "tel:+<digits>" */
  char msisdn[GW_VERIFY_MSISDN_MAX + 1];
  /* subject commonName, UTF-8, cut at a character boundary when longer;
   * it comes from the certificate: quote it (gw_log_quote) before logging */
  char name[GW_VERIFY_NAME_MAX + 1];
} gw_verify_identity;

/* Extracts the identity of the certificate |cert| (|len| bytes: DER, PEM or
 * base64 of DER, at most GW_VERIFY_CERT_MAX). Checks nothing else.
 * Returns GW_OK, GW_ERR_INVALID (NULL argument, not a certificate),
 * GW_ERR_TOO_LARGE or GW_ERR_NOMEM. |*out| is zeroed on failure. */
int gw_verify_identity_parse(const void *cert, size_t len,
                             gw_verify_identity *out);

/* Compares |id| with the expected civil number (digits only, without the
 * "PNOOM-" prefix) and/or MSISDN ("+968..."); a NULL expectation is not
 * checked, an empty one never matches. Returns GW_VERIFY_OK or
 * GW_VERIFY_IDENTITY_MISMATCH, with a reason in |detail| (|n| bytes, may be
 * NULL) on mismatch. */
gw_verify_result gw_verify_identity_check(const gw_verify_identity *id,
                                          const char *civil_id,
                                          const char *msisdn, char *detail,
                                          size_t n);

/* ---- the verifier ------------------------------------------------------- */

/* Caps on inputs; larger inputs are rejected as GW_VERIFY_BAD_FORMAT (or
 * BAD_CERT for a certificate). */
#define GW_VERIFY_CMS_MAX 65536   /* a CMS SignedData, any encoding */
#define GW_VERIFY_CERT_MAX 16384  /* a certificate, any encoding */
#define GW_VERIFY_RAWSIG_MAX 1024 /* a raw signature (RSA-8192) */
#define GW_VERIFY_DATA_MAX 65536  /* the data that was to be signed */
#define GW_VERIFY_CMS_CERTS_MAX 8 /* certificates inside one CMS */
#define GW_VERIFY_ANCHORS_MAX 64  /* certificates in each trust file */
#define GW_VERIFY_CRL_FILE_MAX (32 * 1024 * 1024)

typedef struct gw_verify_config {
  const char *roots_file;         /* required: PEM trust anchor(s) */
  const char *intermediates_file; /* optional: PEM intermediate CAs; they
                                     must chain to a root to be used */
  const char *crl_file;           /* optional: CRL(s), PEM or DER; reloaded
                                     when the file changes */
  const char *ocsp_url;           /* optional: "http://host[:port][/path]" */
  int ocsp_timeout_ms;            /* whole OCSP exchange: 100..30000 (3000) */
  int ocsp_require_nonce;         /* response must echo the nonce (1) */
  int ocsp_max_age_s;             /* life of a response without nextUpdate:
                                     10..86400 (300) */
  int clock_skew_s;               /* 0..3600 (60) */
  int cache_size;                 /* entries, 0..100000; 0 = off (10000).
                                     An entry keeps the parsed certificate:
                                     about 6 KB each. */
  int cache_ttl_s;                /* entry lifetime, 1..86400 (300); never
                                     past the chain's notAfter, the CRL's
                                     nextUpdate or the OCSP answer's */
  /* The gateway's clock; NULL means time(NULL). Called once per
   * verification; must be thread-safe. */
  time_t (*clock)(void *arg);
  void *clock_arg;
} gw_verify_config;

/* Fills |cfg| with the defaults above and no files. */
void gw_verify_config_init(gw_verify_config *cfg);

/* Creates a verifier: loads the trust anchors and intermediates, the CRL
 * when configured, checks the OCSP URL. The strings in |cfg| are copied.
 * A CRL file that cannot be loaded does not fail creation (so that a CRL
 * published after start-up is picked up): every verification then fails
 * with GW_VERIFY_CRL_UNAVAILABLE until a good file appears, and a warning
 * is logged.
 * On failure |*out| is untouched and, when |err| is not NULL, a reason is
 * written there (NUL-terminated, cut to |errlen|). Returns GW_OK, or
 *   GW_ERR_INVALID  NULL argument, a value out of its range, an OCSP URL
 *                   that is not http://;
 *   GW_ERR_CONFIG   a trust file is unreadable, empty, not PEM
 *                   certificates, has more than GW_VERIFY_ANCHORS_MAX, a
 *                   root is not a self-signed CA, an intermediate is not a
 *                   CA;
 *   GW_ERR_NOMEM    out of memory. */
int gw_verify_new(gw_verify **out, const gw_verify_config *cfg, char *err,
                  size_t errlen);

/* Frees the verifier. NULL is a no-op. */
void gw_verify_del(gw_verify *v);

/* How the data to be signed is given. */
typedef enum gw_verify_data_kind {
  /* The bytes that were to be signed (text/plain: the UTF-8 text; also
   * application/octet-stream: the decoded bytes). A raw signature is over
   * their SHA-256; a CMS carries them attached, or is detached over them. */
  GW_VERIFY_DATA = 0,
  /* A 32-byte SHA-256 digest that the SIM signed as is
   * (application/x-sha256). A raw signature is over it without hashing
   * again; a CMS has messageDigest = it (detached), or no signed attributes
   * and a signature over it. A CMS whose content is the 32 bytes
   * themselves (attached, or messageDigest = SHA-256 of them) is also
   * accepted, as some MSSPs wrap x-sha256 that way. */
  GW_VERIFY_DIGEST = 1
} gw_verify_data_kind;

/* The form of a raw signature. */
typedef enum gw_verify_alg {
  GW_VERIFY_ECDSA_RAW = 0, /* r || s, each the size of the curve order */
  GW_VERIFY_ECDSA_DER = 1, /* ECDSA-Sig-Value, strict DER */
  GW_VERIFY_RSA_PKCS1 = 2, /* RSASSA-PKCS1-v1_5 with SHA-256 */
  GW_VERIFY_RSA_PSS = 3    /* RSASSA-PSS, SHA-256, MGF1-SHA-256, any salt */
} gw_verify_alg;

/* One verification request. Fields a function does not use are ignored. */
typedef struct gw_verify_req {
  const void *sig; /* CMS (DER, PEM or base64) or raw signature bytes */
  size_t sig_len;
  gw_verify_alg alg; /* raw only */
  const void *cert;  /* raw and gw_verify_cert: DER, PEM or base64 */
  size_t cert_len;
  const void *data; /* exactly what the gateway asked to be signed */
  size_t data_len;
  gw_verify_data_kind data_kind;
  const char *expect_civil_id; /* NULL: not checked */
  const char *expect_msisdn;   /* NULL: not checked */
} gw_verify_req;

#define GW_VERIFY_DETAIL_MAX 256

/* What a verification found. */
typedef struct gw_verify_status {
  gw_verify_result result;
  int err;       /* for GW_VERIFY_INTERNAL, the GW_ERR_* cause; else GW_OK */
  int cached;    /* 1 when the certificate came from the cache: not
                    parsed, chain and revocation not checked again */
  int have_cert; /* 1 once the signer certificate parsed */
  unsigned char cert_sha256[32];     /* SHA-256 of its DER, when have_cert */
  gw_verify_identity identity;       /* of the signer, when have_cert */
  char detail[GW_VERIFY_DETAIL_MAX]; /* why, on failure; "" on success.
                                        Contains certificate text: quote it
                                        before logging. */
} gw_verify_status;

/* Verifies a CMS SignedData (req->sig: DER, PEM "PKCS7"/"CMS", or base64 of
 * DER) with exactly one signer whose certificate is inside, over req->data
 * as described by req->data_kind; then the certificate (chain, key usage,
 * validity, revocation; cached) and the identity expectations. Further
 * certificates in the CMS may serve as untrusted intermediates. Digests
 * accepted: SHA-256, SHA-384, SHA-512; signing time and other signed
 * attributes are ignored. Returns the result, also stored in |*st|; a NULL
 * |v|, |req| or |st| gives GW_VERIFY_INTERNAL. */
gw_verify_result gw_verify_cms(gw_verify *v, const gw_verify_req *req,
                               gw_verify_status *st);

/* Verifies a raw signature (req->sig, req->alg) made with the key of the
 * certificate req->cert over req->data (req->data_kind: hashed with
 * SHA-256, or a 32-byte digest used as is); then the certificate and the
 * identity as gw_verify_cms(). Keys accepted: EC P-256, P-384, P-521; RSA
 * 2048..16384 bits. */
gw_verify_result gw_verify_raw(gw_verify *v, const gw_verify_req *req,
                               gw_verify_status *st);

/* Checks the certificate req->cert alone (chain, key usage, validity,
 * revocation; cached) and the identity expectations; no signature. */
gw_verify_result gw_verify_cert(gw_verify *v, const gw_verify_req *req,
                                gw_verify_status *st);

/* Counters, since creation. */
typedef struct gw_verify_stats {
  uint64_t cache_hits;   /* certificate checks answered by the cache */
  uint64_t cache_misses; /* full checks (every check when the cache is
                            off) */
  uint64_t cache_inserts;
  uint64_t cache_evictions; /* entries pushed out by the size bound */
  uint64_t cache_entries;   /* now in the cache */
  uint64_t crl_reloads;     /* times the CRL file was (re)read */
  uint64_t ocsp_queries;    /* OCSP requests sent */
  uint64_t ocsp_failures;   /* of which gave no usable answer */
} gw_verify_stats;

/* Copies the counters into |*out|. */
void gw_verify_get_stats(gw_verify *v, gw_verify_stats *out);

/* Empties the cache of validated certificates (e.g. after an administrator
 * revoked a certificate and wants it to take effect before the next CRL). */
void gw_verify_cache_clear(gw_verify *v);

#endif
