/* gw_ocsp.h — an OCSP client (RFC 6960) that fails closed. Used by
 * gw_verify.c; see docs/verification.md.
 *
 * One query: a request for (certificate, issuer) with a SHA-1 CertID (what
 * every responder understands) and a 16-byte nonce, POSTed with libcurl's
 * easy interface to an http:// URL, bounded by a timeout and a response
 * size cap. The response must be successful, a basic response signed by
 * the issuer itself or by a responder certificate that the issuer signed
 * and that carries id-kp-OCSPSigning and is valid now (+- skew), echo the
 * nonce (when required), answer for this very certificate, and be fresh:
 * thisUpdate <= now + skew and now <= nextUpdate + skew, or, without
 * nextUpdate, now <= thisUpdate + max_age + skew.
 *
 * Threading: gw_ocsp_check() and gw_ocsp_check_response() may be called
 * concurrently; each query uses its own curl handle. gw_ocsp_check() blocks
 * the calling thread for at most the configured timeout: never call it on
 * an event-loop thread. */
#ifndef GW_OCSP_H
#define GW_OCSP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "gw_verify.h"

typedef struct gw_ocsp gw_ocsp;

#define GW_OCSP_URL_MAX 2048
#define GW_OCSP_RESP_MAX 65536 /* bytes of one response */

/* Creates a client for |url| ("http://host[:port][/path]"). |timeout_ms|
 * (100..30000) bounds a whole exchange, connection included;
 * |require_nonce| makes a response without our nonce fail; |max_age_s|
 * (10..86400) is how long a response without nextUpdate is good for.
 * Initialises libcurl (curl_global_init). Returns GW_OK, GW_ERR_INVALID
 * (reason in |err|) or GW_ERR_NOMEM; |*out| is untouched on failure. */
int gw_ocsp_new(gw_ocsp **out, const char *url, int timeout_ms,
                int require_nonce, int max_age_s, char *err, size_t errlen);

/* Frees |o|. NULL is a no-op. */
void gw_ocsp_del(gw_ocsp *o);

/* Asks the responder about |cert|, issued by |issuer|, and checks the
 * answer. Returns GW_VERIFY_OK (|*valid_until| = until when the answer may
 * be relied on), GW_VERIFY_REVOKED, GW_VERIFY_OCSP_UNAVAILABLE (no answer:
 * connection refused, timeout, HTTP status not 200, too large, tryLater or
 * internalError), GW_VERIFY_OCSP_BAD_RESPONSE, or GW_VERIFY_INTERNAL (out of
 * memory); a reason in |detail| (|n| bytes) on failure. */
gw_verify_result gw_ocsp_check(gw_ocsp *o, X509 *cert, X509 *issuer, time_t now,
                               int skew_s, time_t *valid_until, char *detail,
                               size_t n);

/* The parts of gw_ocsp_check(), for tests. */

/* Builds a request for |cert| (issued by |issuer|), with a nonce when
 * |nonce|; |*id| is the CertID to look the answer up with. Caller frees
 * both (OCSP_REQUEST_free, OCSP_CERTID_free). Returns GW_OK or
 * GW_ERR_NOMEM. */
int gw_ocsp_request_new(X509 *cert, X509 *issuer, int nonce, OCSP_REQUEST **req,
                        OCSP_CERTID **id);

/* Checks the DER response |der| (|len| bytes) to |req| for |id| (issued by
 * |issuer|) as described above. Same results as gw_ocsp_check() except
 * OCSP_UNAVAILABLE only for tryLater / internalError. */
gw_verify_result gw_ocsp_check_response(gw_ocsp *o, const unsigned char *der,
                                        size_t len, OCSP_REQUEST *req,
                                        OCSP_CERTID *id, X509 *issuer,
                                        time_t now, int skew_s,
                                        time_t *valid_until, char *detail,
                                        size_t n);

/* Requests sent, and how many of them gave no usable answer. */
void gw_ocsp_counts(gw_ocsp *o, uint64_t *queries, uint64_t *failures);

#endif
