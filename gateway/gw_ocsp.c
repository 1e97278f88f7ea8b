/* gw_ocsp.c — OCSP queries over HTTP with libcurl, and the checks on the
 * answer. Everything that is not a fresh, authentic answer about this very
 * certificate fails. */
#include "gw_ocsp.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "gw_err.h"
#include "gw_verify_int.h"

#define OCSP_DN_MAX 120

struct gw_ocsp {
  char *url;
  int timeout_ms;
  int require_nonce;
  int max_age_s;
  atomic_uint_fast64_t queries;
  atomic_uint_fast64_t failures;
};

int gw_ocsp_new(gw_ocsp **out, const char *url, int timeout_ms,
                int require_nonce, int max_age_s, char *err, size_t errlen) {
  CURLU *u;
  char *scheme = NULL, *host = NULL;
  gw_ocsp *o;
  int ok;

  if (!out || !url) {
    gw_verify_setf(err, errlen, "no OCSP URL");
    return GW_ERR_INVALID;
  }
  if (timeout_ms < 100 || timeout_ms > 30000 || max_age_s < 10 ||
      max_age_s > 86400) {
    gw_verify_setf(err, errlen,
                   "OCSP timeout must be 100..30000 ms and max age "
                   "10..86400 s");
    return GW_ERR_INVALID;
  }
  if (strlen(url) > GW_OCSP_URL_MAX) {
    gw_verify_setf(err, errlen, "OCSP URL longer than %d", GW_OCSP_URL_MAX);
    return GW_ERR_INVALID;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    gw_verify_setf(err, errlen, "libcurl initialisation failed");
    return GW_ERR_NOMEM;
  }
  u = curl_url();
  ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
       curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
       curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
       strcmp(scheme, "http") == 0 && host[0] != '\0';
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  if (!ok) {
    gw_verify_setf(err, errlen, "OCSP URL \"%.100s\" is not http://host/...",
                   url);
    curl_global_cleanup();
    return GW_ERR_INVALID;
  }
  o = calloc(1, sizeof(*o));
  if (!o || !(o->url = strdup(url))) {
    free(o);
    curl_global_cleanup();
    return GW_ERR_NOMEM;
  }
  o->timeout_ms = timeout_ms;
  o->require_nonce = require_nonce;
  o->max_age_s = max_age_s;
  atomic_init(&o->queries, 0);
  atomic_init(&o->failures, 0);
  *out = o;
  return GW_OK;
}

void gw_ocsp_del(gw_ocsp *o) {
  if (!o) {
    return;
  }
  free(o->url);
  free(o);
  curl_global_cleanup();
}

void gw_ocsp_counts(gw_ocsp *o, uint64_t *queries, uint64_t *failures) {
  *queries = atomic_load(&o->queries);
  *failures = atomic_load(&o->failures);
}

int gw_ocsp_request_new(X509 *cert, X509 *issuer, int nonce, OCSP_REQUEST **req,
                        OCSP_CERTID **id) {
  OCSP_REQUEST *r;
  OCSP_CERTID *i, *dup;

  r = OCSP_REQUEST_new();
  i = OCSP_cert_to_id(NULL, cert, issuer); /* SHA-1: universally served */
  dup = i ? OCSP_CERTID_dup(i) : NULL;
  if (!r || !dup || !OCSP_request_add0_id(r, dup)) {
    OCSP_CERTID_free(dup);
    goto fail;
  }
  if (nonce && !OCSP_request_add1_nonce(r, NULL, -1)) {
    goto fail;
  }
  *req = r;
  *id = i;
  return GW_OK;

fail:
  OCSP_REQUEST_free(r);
  OCSP_CERTID_free(i);
  ERR_clear_error();
  return GW_ERR_NOMEM;
}

/* ---- transport ---------------------------------------------------------- */

typedef struct body {
  unsigned char *p;
  size_t len;
  int over;
} body;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  body *b = ud;
  size_t n = size * nmemb;

  if (n > GW_OCSP_RESP_MAX - b->len) {
    b->over = 1;
    return 0; /* makes libcurl abort the transfer */
  }
  memcpy(b->p + b->len, ptr, n);
  b->len += n;
  return n;
}

/* POSTs |der| to the responder; the answer goes to |b|. */
static gw_verify_result http_post(gw_ocsp *o, const unsigned char *der,
                                  size_t len, body *b, char *detail, size_t n) {
  char cerr[CURL_ERROR_SIZE];
  struct curl_slist *hdrs = NULL, *h2;
  gw_verify_result r = GW_VERIFY_INTERNAL;
  long code = 0;
  CURLcode rc;
  CURL *c;

  c = curl_easy_init();
  hdrs = curl_slist_append(NULL, "Content-Type: application/ocsp-request");
  h2 = hdrs ? curl_slist_append(hdrs, "Accept: application/ocsp-response")
            : NULL;
  if (!c || !h2) {
    gw_verify_setf(detail, n, "out of memory");
    goto out;
  }
  hdrs = h2;
  cerr[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, o->url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(c, CURLOPT_PROXY, "");    /* no proxy from the environment */
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* we run on worker threads */
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)o->timeout_ms);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)der);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE, (long)GW_OCSP_RESP_MAX);
  rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    if (b->over) {
      gw_verify_setf(detail, n, "OCSP response larger than %d bytes",
                     GW_OCSP_RESP_MAX);
    } else {
      gw_verify_setf(detail, n, "OCSP responder %.100s: %s", o->url,
                     cerr[0] ? cerr : curl_easy_strerror(rc));
    }
    r = GW_VERIFY_OCSP_UNAVAILABLE;
    goto out;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    gw_verify_setf(detail, n, "OCSP responder %.100s: HTTP status %ld", o->url,
                   code);
    r = GW_VERIFY_OCSP_UNAVAILABLE;
    goto out;
  }
  r = GW_VERIFY_OK;

out:
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  return r;
}

/* ---- checks on the answer ----------------------------------------------- */

/* Whether |signer| may answer for certificates of |issuer| (RFC 6960
 * 4.2.2.2): the issuer itself, or a certificate it issued for
 * id-kp-OCSPSigning, valid now. */
static int signer_authorized(X509 *signer, X509 *issuer, time_t now, int skew_s,
                             char *detail, size_t n) {
  char dn[OCSP_DN_MAX];
  time_t nb, na;

  if (X509_cmp(signer, issuer) == 0 ||
      (X509_NAME_cmp(X509_get_subject_name(signer),
                     X509_get_subject_name(issuer)) == 0 &&
       EVP_PKEY_eq(X509_get0_pubkey(signer), X509_get0_pubkey(issuer)) == 1)) {
    return 1;
  }
  gw_verify_fmt_name(X509_get_subject_name(signer), dn, sizeof(dn));
  if (X509_NAME_cmp(X509_get_issuer_name(signer),
                    X509_get_subject_name(issuer)) != 0 ||
      X509_verify(signer, X509_get0_pubkey(issuer)) != 1) {
    gw_verify_setf(detail, n,
                   "OCSP responder %s is neither the issuer nor certified "
                   "by it",
                   dn);
    return 0;
  }
  if (!(X509_get_extension_flags(signer) & EXFLAG_XKUSAGE) ||
      !(X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN)) {
    gw_verify_setf(detail, n, "OCSP responder %s lacks id-kp-OCSPSigning", dn);
    return 0;
  }
  if (gw_verify_asn1_time(X509_get0_notBefore(signer), &nb) ||
      gw_verify_asn1_time(X509_get0_notAfter(signer), &na) ||
      now + skew_s < nb || now - skew_s > na) {
    gw_verify_setf(detail, n, "OCSP responder certificate %s is not valid now",
                   dn);
    return 0;
  }
  return 1;
}

static void serial_hex(X509 *cert, char *buf, size_t n) {
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;

  gw_verify_setf(buf, n, "%s", hex ? hex : "?");
  OPENSSL_free(hex);
  BN_free(bn);
}

/* Checks the single answer for |id| in an authentic |bs|. */
static gw_verify_result check_single(gw_ocsp *o, OCSP_BASICRESP *bs,
                                     OCSP_CERTID *id, time_t now, int skew_s,
                                     time_t *valid_until, char *detail,
                                     size_t n) {
  ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
  char t1[GW_VERIFY_TIME_STR], t2[GW_VERIFY_TIME_STR];
  int status, reason = -1;
  time_t tu, nu, rt;

  if (OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd,
                            &nextupd) != 1) {
    gw_verify_setf(detail, n, "OCSP response is not about this certificate");
    return GW_VERIFY_OCSP_BAD_RESPONSE;
  }
  if (status == V_OCSP_CERTSTATUS_REVOKED) {
    /* Revocation is final: reported whatever the answer's age. */
    if (!rev || gw_verify_asn1_time(rev, &rt)) {
      rt = 0;
    }
    gw_verify_fmt_time(rt, t1);
    gw_verify_setf(detail, n, "revoked at %s (%s) per OCSP", t1,
                   reason >= 0 ? OCSP_crl_reason_str(reason)
                               : "no reason given");
    return GW_VERIFY_REVOKED;
  }
  if (!thisupd || gw_verify_asn1_time(thisupd, &tu) ||
      (nextupd && gw_verify_asn1_time(nextupd, &nu))) {
    gw_verify_setf(detail, n, "OCSP response has malformed times");
    return GW_VERIFY_OCSP_BAD_RESPONSE;
  }
  gw_verify_fmt_time(tu, t1);
  if (tu > now + skew_s) {
    gw_verify_setf(detail, n, "OCSP response thisUpdate %s is in the future",
                   t1);
    return GW_VERIFY_OCSP_BAD_RESPONSE;
  }
  if (!nextupd) {
    nu = tu + o->max_age_s;
  }
  if (now > nu + skew_s) {
    gw_verify_fmt_time(nu, t2);
    gw_verify_setf(detail, n,
                   "OCSP response is stale (thisUpdate %s, good until %s)", t1,
                   t2);
    return GW_VERIFY_OCSP_BAD_RESPONSE;
  }
  if (status != V_OCSP_CERTSTATUS_GOOD) {
    gw_verify_setf(detail, n,
                   "OCSP responder does not know the certificate "
                   "(status unknown)");
    return GW_VERIFY_OCSP_BAD_RESPONSE;
  }
  *valid_until = nu;
  return GW_VERIFY_OK;
}

gw_verify_result gw_ocsp_check_response(gw_ocsp *o, const unsigned char *der,
                                        size_t len, OCSP_REQUEST *req,
                                        OCSP_CERTID *id, X509 *issuer,
                                        time_t now, int skew_s,
                                        time_t *valid_until, char *detail,
                                        size_t n) {
  const unsigned char *p = der;
  OCSP_RESPONSE *resp = NULL;
  OCSP_BASICRESP *bs = NULL;
  STACK_OF(X509) *extra = NULL;
  gw_verify_result r = GW_VERIFY_OCSP_BAD_RESPONSE;
  X509 *signer = NULL;
  int st;

  if (len == 0 || len > GW_OCSP_RESP_MAX) {
    gw_verify_setf(detail, n, "OCSP response empty or too large");
    goto out;
  }
  resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
  if (!resp || p != der + len) {
    gw_verify_setf(detail, n, "not an OCSP response");
    goto out;
  }
  st = OCSP_response_status(resp);
  if (st != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    gw_verify_setf(detail, n, "OCSP responder answered %s (unsigned)",
                   OCSP_response_status_str(st));
    if (st == OCSP_RESPONSE_STATUS_TRYLATER ||
        st == OCSP_RESPONSE_STATUS_INTERNALERROR) {
      r = GW_VERIFY_OCSP_UNAVAILABLE;
    }
    goto out;
  }
  bs = OCSP_response_get1_basic(resp);
  if (!bs) {
    gw_verify_setf(detail, n, "OCSP response is not a basic response");
    goto out;
  }
  extra = sk_X509_new_null();
  if (!extra || !sk_X509_push(extra, issuer)) {
    gw_verify_setf(detail, n, "out of memory");
    r = GW_VERIFY_INTERNAL;
    goto out;
  }
  if (OCSP_resp_get0_signer(bs, &signer, extra) != 1) {
    gw_verify_setf(detail, n, "OCSP response signer certificate not found");
    goto out;
  }
  /* OCSP_NOVERIFY: check the signature only; who may sign is decided by
   * signer_authorized() with the gateway's clock. */
  if (OCSP_basic_verify(bs, extra, NULL, OCSP_NOVERIFY) != 1) {
    gw_verify_setf(detail, n, "OCSP response signature does not verify");
    goto out;
  }
  if (!signer_authorized(signer, issuer, now, skew_s, detail, n)) {
    goto out;
  }
  switch (OCSP_check_nonce(req, bs)) {
  case 1: /* echoed */
  case 2: /* none sent, none received */
  case 3: /* none sent */
    break;
  case -1:
    if (o->require_nonce) {
      gw_verify_setf(detail, n, "OCSP response does not echo the nonce");
      goto out;
    }
    break;
  default:
    gw_verify_setf(detail, n, "OCSP response nonce does not match");
    goto out;
  }
  r = check_single(o, bs, id, now, skew_s, valid_until, detail, n);

out:
  sk_X509_free(extra);
  OCSP_BASICRESP_free(bs);
  OCSP_RESPONSE_free(resp);
  ERR_clear_error();
  return r;
}

gw_verify_result gw_ocsp_check(gw_ocsp *o, X509 *cert, X509 *issuer, time_t now,
                               int skew_s, time_t *valid_until, char *detail,
                               size_t n) {
  OCSP_REQUEST *req = NULL;
  OCSP_CERTID *id = NULL;
  unsigned char *der = NULL;
  gw_verify_result r = GW_VERIFY_INTERNAL;
  body b = {NULL, 0, 0};
  char serial[80];
  size_t used;
  int len;

  if (gw_ocsp_request_new(cert, issuer, 1, &req, &id) != GW_OK) {
    gw_verify_setf(detail, n, "out of memory");
    return GW_VERIFY_INTERNAL;
  }
  len = i2d_OCSP_REQUEST(req, &der);
  b.p = malloc(GW_OCSP_RESP_MAX);
  if (len <= 0 || !b.p) {
    gw_verify_setf(detail, n, "out of memory");
    goto out;
  }
  atomic_fetch_add(&o->queries, 1);
  r = http_post(o, der, (size_t)len, &b, detail, n);
  if (r == GW_VERIFY_OK) {
    r = gw_ocsp_check_response(o, b.p, b.len, req, id, issuer, now, skew_s,
                               valid_until, detail, n);
  }
  if (r != GW_VERIFY_OK && r != GW_VERIFY_REVOKED) {
    atomic_fetch_add(&o->failures, 1);
  }
  if (r != GW_VERIFY_OK && detail && n) {
    used = strlen(detail);
    serial_hex(cert, serial, sizeof(serial));
    gw_verify_setf(detail + used, n - used, " [serial %s]", serial);
  }

out:
  free(b.p);
  OPENSSL_free(der);
  OCSP_CERTID_free(id);
  OCSP_REQUEST_free(req);
  ERR_clear_error();
  return r;
}
