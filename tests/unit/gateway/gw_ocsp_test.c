/* gw_ocsp_test.c — the OCSP client (gw_ocsp.h): every check on a response,
 * with responses crafted in-process (stale, unsigned, badly signed,
 * unauthorised signer, wrong nonce, another certificate...), and the
 * transport against a small in-test HTTP server (status, size cap,
 * timeout) and a port where nothing listens. The verifier against a real
 * `openssl ocsp` responder is in gw_verify_test.c. */
#include "gw_ocsp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_err.h"
#include "harness.h"

/* ---- a small PKI -------------------------------------------------------- */

static EVP_PKEY *k_ca, *k_resp, *k_other;
static X509 *c_ca, *c_other_ca, *c_resp, *c_resp_noeku, *c_resp_foreign,
    *c_resp_expired, *c_resp_twin, *c_resp_client, *l_a, *l_b;

static X509 *mk_cert(X509 *issuer, EVP_PKEY *ikey, EVP_PKEY *key, long serial,
                     const char *cn, int ca, const char *eku, long na) {
  X509 *x = X509_new();
  X509_NAME *nm = X509_NAME_new();
  X509V3_CTX ctx;
  X509_EXTENSION *e;

  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn,
                             -1, -1, 0);
  X509_set_subject_name(x, nm);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm);
  X509_NAME_free(nm);
  X509_gmtime_adj(X509_getm_notBefore(x), -86400);
  X509_gmtime_adj(X509_getm_notAfter(x), na);
  X509_set_pubkey(x, key);
  X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
  if (ca) {
    e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                            "critical,CA:TRUE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  if (eku) {
    e = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, eku);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  X509_sign(x, ikey ? ikey : key, EVP_sha256());
  return x;
}

static void build_pki(void) {
  k_ca = EVP_EC_gen("P-256");
  k_resp = EVP_EC_gen("P-256");
  k_other = EVP_EC_gen("P-256");
  c_ca = mk_cert(NULL, NULL, k_ca, 1, "OCSP Test CA", 1, NULL, 86400);
  c_other_ca = mk_cert(NULL, NULL, k_other, 2, "Other CA", 1, NULL, 86400);
  c_resp = mk_cert(c_ca, k_ca, k_resp, 3, "Responder", 0, "OCSPSigning", 86400);
  c_resp_noeku = mk_cert(c_ca, k_ca, k_resp, 4, "Responder", 0, NULL, 86400);
  c_resp_foreign = mk_cert(c_other_ca, k_other, k_resp, 5, "Responder", 0,
                           "OCSPSigning", 86400);
  c_resp_expired =
      mk_cert(c_ca, k_ca, k_resp, 6, "Responder", 0, "OCSPSigning", -3600);
  c_resp_client =
      mk_cert(c_ca, k_ca, k_resp, 8, "Responder", 0, "clientAuth", 86400);
  /* same name as c_resp, another key */
  c_resp_twin =
      mk_cert(c_ca, k_ca, k_other, 7, "Responder", 0, "OCSPSigning", 86400);
  l_a = mk_cert(c_ca, k_ca, k_other, 0x3001, "leaf a", 0, NULL, 86400);
  l_b = mk_cert(c_ca, k_ca, k_other, 0x3002, "leaf b", 0, NULL, 86400);
}

static void free_pki(void) {
  X509 *c[] = {
      c_ca,           c_other_ca,  c_resp, c_resp_noeku, c_resp_foreign,
      c_resp_expired, c_resp_twin, l_a,    l_b};
  size_t i;

  for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
    X509_free(c[i]);
  }
  EVP_PKEY_free(k_ca);
  EVP_PKEY_free(k_resp);
  EVP_PKEY_free(k_other);
}

/* ---- crafted responses -------------------------------------------------- */

typedef struct rspec {
  int resp_status; /* OCSP_RESPONSE_STATUS_* */
  int status;      /* V_OCSP_CERTSTATUS_* */
  long tu, nu;     /* thisUpdate / nextUpdate relative to now */
  int no_next;
  X509 *signer;
  EVP_PKEY *skey;
  int no_certs; /* do not include the signer's certificate */
  X509 *extra;  /* a certificate to include, or NULL */
  int nonce;    /* 1: echo the request's, 0: none, 2: another one */
  X509 *about;  /* the certificate answered for */
} rspec;

static rspec good_spec(void) {
  rspec s = {OCSP_RESPONSE_STATUS_SUCCESSFUL,
             V_OCSP_CERTSTATUS_GOOD,
             -60,
             3600,
             0,
             c_resp,
             k_resp,
             0,
             NULL,
             1,
             l_a};
  return s;
}

static unsigned char *mk_resp(const rspec *s, OCSP_REQUEST *req, size_t *len) {
  OCSP_BASICRESP *bs = NULL;
  OCSP_RESPONSE *resp;
  OCSP_CERTID *id;
  ASN1_TIME *tu, *nu, *rt;
  unsigned char *der = NULL;
  int l;

  if (s->resp_status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    bs = OCSP_BASICRESP_new();
    id = OCSP_cert_to_id(NULL, s->about, c_ca);
    tu = X509_gmtime_adj(NULL, s->tu);
    nu = s->no_next ? NULL : X509_gmtime_adj(NULL, s->nu);
    rt = X509_gmtime_adj(NULL, -600);
    OCSP_basic_add1_status(bs, id, s->status, OCSP_REVOKED_STATUS_KEYCOMPROMISE,
                           rt, tu, nu);
    if (s->nonce == 1) {
      OCSP_copy_nonce(bs, req);
    } else if (s->nonce == 2) {
      OCSP_basic_add1_nonce(bs, (unsigned char *)"0123456789abcdef", 16);
    }
    if (!OCSP_basic_sign(bs, s->signer, s->skey, EVP_sha256(), NULL,
                         s->no_certs ? OCSP_NOCERTS : 0)) {
      fprintf(stderr, "OCSP_basic_sign failed\n");
      exit(2);
    }
    if (s->extra) {
      OCSP_basic_add1_cert(bs, s->extra);
    }
    OCSP_CERTID_free(id);
    ASN1_TIME_free(tu);
    ASN1_TIME_free(nu);
    ASN1_TIME_free(rt);
  }
  resp = OCSP_response_create(s->resp_status, bs);
  l = i2d_OCSP_RESPONSE(resp, &der);
  OCSP_RESPONSE_free(resp);
  OCSP_BASICRESP_free(bs);
  *len = l > 0 ? (size_t)l : 0;
  return der;
}

static gw_ocsp *mk_client(const char *url, int timeout_ms, int nonce) {
  gw_ocsp *o = NULL;
  char err[256];

  T_EQ_INT(gw_ocsp_new(&o, url, timeout_ms, nonce, 300, err, sizeof(err)),
           GW_OK);
  return o;
}

/* Checks a response crafted from |s| to a fresh request about l_a. */
static gw_verify_result check_spec(gw_ocsp *o, const rspec *s, int skew,
                                   time_t *until, char *detail) {
  OCSP_REQUEST *req = NULL;
  OCSP_CERTID *id = NULL;
  unsigned char *der;
  size_t len;
  gw_verify_result r;

  T_EQ_INT(gw_ocsp_request_new(l_a, c_ca, 1, &req, &id), GW_OK);
  der = mk_resp(s, req, &len);
  r = gw_ocsp_check_response(o, der, len, req, id, c_ca, time(NULL), skew,
                             until, detail, GW_VERIFY_DETAIL_MAX);
  OPENSSL_free(der);
  OCSP_CERTID_free(id);
  OCSP_REQUEST_free(req);
  return r;
}

/* Expects |want| and a detail containing |why|. */
static void expect(gw_ocsp *o, const rspec *s, int skew, gw_verify_result want,
                   const char *why) {
  char detail[GW_VERIFY_DETAIL_MAX] = "";
  time_t until = 0;
  gw_verify_result r = check_spec(o, s, skew, &until, detail);

  T_EQ_INT(r, want);
  if (why && !strstr(detail, why)) {
    printf("#   \"%s\" lacks \"%s\"\n", detail, why);
    T_ASSERT(0);
  }
}

/* ---- tests: construction ------------------------------------------------ */

static void test_new_arguments(void) {
  static char dummy;
  gw_ocsp *sentinel = (gw_ocsp *)(void *)&dummy, *o = sentinel;
  char err[256], longurl[GW_OCSP_URL_MAX + 20];

  T_EQ_INT(gw_ocsp_new(&o, NULL, 1000, 1, 300, err, 256), GW_ERR_INVALID);
  T_EQ_INT(gw_ocsp_new(&o, "", 1000, 1, 300, err, 256), GW_ERR_INVALID);
  T_EQ_INT(gw_ocsp_new(&o, "https://ocsp.example/", 1000, 1, 300, err, 256),
           GW_ERR_INVALID);
  T_EQ_INT(gw_ocsp_new(&o, "ftp://ocsp.example/", 1000, 1, 300, err, 256),
           GW_ERR_INVALID);
  T_EQ_INT(gw_ocsp_new(&o, "http://", 1000, 1, 300, err, 256), GW_ERR_INVALID);
  T_EQ_INT(gw_ocsp_new(&o, "not a url", 1000, 1, 300, err, 256),
           GW_ERR_INVALID);
  T_EQ_INT(gw_ocsp_new(&o, "http://h/", 99, 1, 300, err, 256), GW_ERR_INVALID);
  T_EQ_INT(gw_ocsp_new(&o, "http://h/", 30001, 1, 300, err, 256),
           GW_ERR_INVALID);
  T_EQ_INT(gw_ocsp_new(&o, "http://h/", 1000, 1, 5, err, 256), GW_ERR_INVALID);
  memset(longurl, 'a', sizeof(longurl) - 1);
  memcpy(longurl, "http://", 7);
  longurl[sizeof(longurl) - 1] = '\0';
  T_EQ_INT(gw_ocsp_new(&o, longurl, 1000, 1, 300, err, 256), GW_ERR_INVALID);
  T_ASSERT(o == sentinel);
  T_EQ_INT(
      gw_ocsp_new(&o, "http://127.0.0.1:8080/ocsp", 1000, 1, 300, err, 256),
      GW_OK);
  T_ASSERT(o != sentinel);
  gw_ocsp_del(o);
  gw_ocsp_del(NULL);
}

/* ---- tests: the response ------------------------------------------------ */

static void test_good_answers(void) {
  gw_ocsp *o = mk_client("http://127.0.0.1/", 1000, 1);
  char detail[GW_VERIFY_DETAIL_MAX];
  rspec s = good_spec();
  time_t until = 0, now = time(NULL);

  if (!o) {
    return;
  }
  /* a delegated responder */
  T_EQ_INT(check_spec(o, &s, 60, &until, detail), GW_VERIFY_OK);
  T_ASSERT(until >= now + 3600 - 5 && until <= now + 3600 + 5);
  /* the issuer itself, its certificate not included */
  s.signer = c_ca;
  s.skey = k_ca;
  s.no_certs = 1;
  T_EQ_INT(check_spec(o, &s, 60, &until, detail), GW_VERIFY_OK);
  /* no nextUpdate: good for max_age (300 s) after thisUpdate */
  s = good_spec();
  s.no_next = 1;
  s.tu = -100;
  T_EQ_INT(check_spec(o, &s, 0, &until, detail), GW_VERIFY_OK);
  T_ASSERT(until >= now - 100 + 300 - 5 && until <= now - 100 + 300 + 5);
  gw_ocsp_del(o);
}

static void test_revoked_and_unknown(void) {
  gw_ocsp *o = mk_client("http://127.0.0.1/", 1000, 1);
  rspec s = good_spec();

  if (!o) {
    return;
  }
  s.status = V_OCSP_CERTSTATUS_REVOKED;
  expect(o, &s, 60, GW_VERIFY_REVOKED, "keyCompromise");
  s.tu = -86400; /* a revoked answer stays revoked however old */
  s.nu = -3600;
  expect(o, &s, 60, GW_VERIFY_REVOKED, "per OCSP");
  s = good_spec();
  s.status = V_OCSP_CERTSTATUS_UNKNOWN;
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "unknown");
  gw_ocsp_del(o);
}

static void test_stale_answers(void) {
  gw_ocsp *o = mk_client("http://127.0.0.1/", 1000, 1);
  rspec s = good_spec();

  if (!o) {
    return;
  }
  s.tu = -7200;
  s.nu = -120; /* past nextUpdate by more than the skew */
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "stale");
  s.nu = -30; /* within the skew */
  expect(o, &s, 60, GW_VERIFY_OK, NULL);
  expect(o, &s, 0, GW_VERIFY_OCSP_BAD_RESPONSE, "stale");
  s = good_spec();
  s.tu = 300; /* thisUpdate in the future */
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "future");
  s = good_spec();
  s.no_next = 1;
  s.tu = -1000; /* no nextUpdate and older than max_age */
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "stale");
  gw_ocsp_del(o);
}

static void test_nonce(void) {
  gw_ocsp *o = mk_client("http://127.0.0.1/", 1000, 1);
  gw_ocsp *lax = mk_client("http://127.0.0.1/", 1000, 0);
  rspec s = good_spec();

  if (!o || !lax) {
    gw_ocsp_del(o);
    gw_ocsp_del(lax);
    return;
  }
  s.nonce = 2;
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "nonce does not match");
  expect(lax, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "nonce does not match");
  s.nonce = 0;
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "does not echo the nonce");
  expect(lax, &s, 60, GW_VERIFY_OK, NULL);
  gw_ocsp_del(o);
  gw_ocsp_del(lax);
}

static void test_who_may_sign(void) {
  gw_ocsp *o = mk_client("http://127.0.0.1/", 1000, 1);
  rspec s = good_spec();

  if (!o) {
    return;
  }
  /* signed by another key under the responder's name: the responder ID
   * leads to c_resp, whose key does not verify the signature */
  s.signer = c_resp_twin;
  s.skey = k_other;
  s.no_certs = 1;
  s.extra = c_resp;
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "signature does not verify");
  /* a responder certified by another CA */
  s = good_spec();
  s.signer = c_resp_foreign;
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "neither the issuer");
  /* certified by the issuer, but not for OCSP signing */
  s.signer = c_resp_noeku;
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "OCSPSigning");
  s.signer = c_resp_client; /* an extendedKeyUsage, not the right one */
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "OCSPSigning");
  /* an expired responder certificate */
  s.signer = c_resp_expired;
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "not valid now");
  /* the responder's certificate left out: nobody to check it with */
  s.signer = c_resp;
  s.no_certs = 1;
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "signer certificate");
  gw_ocsp_del(o);
}

static void test_not_about_this_certificate(void) {
  gw_ocsp *o = mk_client("http://127.0.0.1/", 1000, 1);
  rspec s = good_spec();

  if (!o) {
    return;
  }
  s.about = l_b;
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "not about this");
  gw_ocsp_del(o);
}

/* Flips a bit of the signature of a DER response. */
static void tamper_signature(unsigned char **der, size_t *len) {
  const unsigned char *p = *der;
  OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)*len);
  OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
  ASN1_BIT_STRING *sig = (ASN1_BIT_STRING *)OCSP_resp_get0_signature(bs);
  unsigned char buf[256];
  int n = ASN1_STRING_length(sig);

  memcpy(buf, ASN1_STRING_get0_data(sig), (size_t)n);
  buf[n / 2] ^= 1;
  ASN1_BIT_STRING_set(sig, buf, n);
  OCSP_RESPONSE_free(resp);
  resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
  OPENSSL_free(*der);
  *der = NULL;
  *len = (size_t)i2d_OCSP_RESPONSE(resp, der);
  OCSP_RESPONSE_free(resp);
  OCSP_BASICRESP_free(bs);
}

static void test_unsuccessful_and_malformed(void) {
  gw_ocsp *o = mk_client("http://127.0.0.1/", 1000, 1);
  char detail[GW_VERIFY_DETAIL_MAX];
  OCSP_REQUEST *req = NULL;
  OCSP_CERTID *id = NULL;
  unsigned char *der, *longer;
  rspec s = good_spec();
  time_t until;
  size_t len;

  if (!o) {
    return;
  }
  s.resp_status = OCSP_RESPONSE_STATUS_UNAUTHORIZED;
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "unauthorized");
  s.resp_status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
  expect(o, &s, 60, GW_VERIFY_OCSP_BAD_RESPONSE, "malformed");
  s.resp_status = OCSP_RESPONSE_STATUS_TRYLATER;
  expect(o, &s, 60, GW_VERIFY_OCSP_UNAVAILABLE, "trylater");
  s.resp_status = OCSP_RESPONSE_STATUS_INTERNALERROR;
  expect(o, &s, 60, GW_VERIFY_OCSP_UNAVAILABLE, "internalerror");

  gw_ocsp_request_new(l_a, c_ca, 1, &req, &id);
  s = good_spec();
  der = mk_resp(&s, req, &len);
#define CHK(p, n)                                                              \
  gw_ocsp_check_response(o, (p), (n), req, id, c_ca, time(NULL), 60, &until,   \
                         detail, sizeof(detail))
  T_EQ_INT(CHK(der, len), GW_VERIFY_OK);
  T_EQ_INT(CHK(der, len - 1), GW_VERIFY_OCSP_BAD_RESPONSE); /* truncated */
  T_EQ_INT(CHK(der, 0), GW_VERIFY_OCSP_BAD_RESPONSE);       /* empty */
  T_EQ_INT(CHK((const unsigned char *)"\x30\x03garbage", 10),
           GW_VERIFY_OCSP_BAD_RESPONSE);
  longer = malloc(len + 2);
  memcpy(longer, der, len);
  memcpy(longer + len, "\x00\x00", 2);
  T_EQ_INT(CHK(longer, len + 2), GW_VERIFY_OCSP_BAD_RESPONSE); /* trailing */
  T_EQ_INT(CHK(der, GW_OCSP_RESP_MAX + 1), GW_VERIFY_OCSP_BAD_RESPONSE);
  tamper_signature(&der, &len);
  T_EQ_INT(CHK(der, len), GW_VERIFY_OCSP_BAD_RESPONSE);
  T_ASSERT(strstr(detail, "signature does not verify") != NULL);
#undef CHK
  free(longer);
  OPENSSL_free(der);
  OCSP_CERTID_free(id);
  OCSP_REQUEST_free(req);
  gw_ocsp_del(o);
}

/* ---- tests: transport --------------------------------------------------- */

/* A one-shot HTTP server on 127.0.0.1: accepts one connection, reads the
 * request, answers according to |mode|. Every wait is bounded. */
enum { SRV_GOOD, SRV_STALE, SRV_500, SRV_HUGE, SRV_SILENT };

typedef struct srv {
  int lfd;
  int port;
  int mode;
  pthread_t th;
} srv;

static int read_request(int fd, unsigned char *buf, size_t cap, size_t *body,
                        size_t *blen) {
  struct pollfd p = {fd, POLLIN, 0};
  size_t got = 0, clen = 0;
  char *hend, *cl;
  ssize_t n;

  for (;;) {
    if (poll(&p, 1, 2000) <= 0) {
      return -1;
    }
    n = read(fd, buf + got, cap - 1 - got);
    if (n <= 0) {
      return -1;
    }
    got += (size_t)n;
    buf[got] = '\0';
    hend = strstr((char *)buf, "\r\n\r\n");
    if (!hend) {
      continue;
    }
    cl = strcasestr((char *)buf, "Content-Length:");
    clen = cl ? (size_t)atol(cl + 15) : 0;
    *body = (size_t)(hend + 4 - (char *)buf);
    if (got >= *body + clen) {
      *blen = clen;
      return 0;
    }
  }
}

static void *srv_run(void *arg) {
  srv *s = arg;
  struct pollfd p = {s->lfd, POLLIN, 0};
  unsigned char buf[8192], *der = NULL, *big = NULL;
  char head[256];
  const unsigned char *bp;
  size_t body = 0, blen = 0, len = 0;
  OCSP_REQUEST *req;
  int fd, hl;

  if (poll(&p, 1, 3000) <= 0) {
    return NULL;
  }
  fd = accept(s->lfd, NULL, NULL);
  if (fd < 0) {
    return NULL;
  }
  if (read_request(fd, buf, sizeof(buf), &body, &blen) == 0) {
    if (s->mode == SRV_SILENT) {
      struct pollfd q = {fd, POLLIN, 0};

      poll(&q, 1, 3000); /* until the client gives up */
    } else if (s->mode == SRV_500) {
      hl = snprintf(head, sizeof(head),
                    "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n"
                    "Connection: close\r\n\r\n");
      (void)!write(fd, head, (size_t)hl);
    } else {
      if (s->mode == SRV_HUGE) {
        len = GW_OCSP_RESP_MAX + 1000;
        big = calloc(1, len);
        der = big;
      } else {
        rspec r = good_spec();

        bp = buf + body;
        req = d2i_OCSP_REQUEST(NULL, &bp, (long)blen);
        if (s->mode == SRV_STALE) {
          r.tu = -7200;
          r.nu = -3600;
        }
        der = req ? mk_resp(&r, req, &len) : NULL;
        OCSP_REQUEST_free(req);
      }
      hl = snprintf(head, sizeof(head),
                    "HTTP/1.1 200 OK\r\nContent-Type: "
                    "application/ocsp-response\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n",
                    len);
      (void)!write(fd, head, (size_t)hl);
      if (der) {
        (void)!write(fd, der, len);
      }
      if (der != big) {
        OPENSSL_free(der);
      }
      free(big);
    }
  }
  close(fd);
  return NULL;
}

static int srv_start(srv *s, int mode) {
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->mode = mode;
  s->lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      listen(s->lfd, 4) != 0 ||
      getsockname(s->lfd, (struct sockaddr *)&sa, &sl) != 0) {
    return -1;
  }
  s->port = ntohs(sa.sin_port);
  return pthread_create(&s->th, NULL, srv_run, s);
}

static void srv_stop(srv *s) {
  pthread_join(s->th, NULL);
  close(s->lfd);
}

static gw_verify_result query(int port, int timeout_ms, char *detail) {
  char url[64];
  time_t until = 0;
  gw_ocsp *o;
  gw_verify_result r;

  snprintf(url, sizeof(url), "http://127.0.0.1:%d/ocsp", port);
  o = mk_client(url, timeout_ms, 1);
  if (!o) {
    return GW_VERIFY_INTERNAL;
  }
  r = gw_ocsp_check(o, l_a, c_ca, time(NULL), 60, &until, detail,
                    GW_VERIFY_DETAIL_MAX);
  gw_ocsp_del(o);
  return r;
}

static void test_transport(void) {
  char detail[GW_VERIFY_DETAIL_MAX];
  struct timespec t0, t1;
  double ms;
  srv s;

  T_EQ_INT(srv_start(&s, SRV_GOOD), 0);
  T_EQ_INT(query(s.port, 2000, detail), GW_VERIFY_OK);
  srv_stop(&s);
  T_EQ_INT(srv_start(&s, SRV_STALE), 0);
  T_EQ_INT(query(s.port, 2000, detail), GW_VERIFY_OCSP_BAD_RESPONSE);
  T_ASSERT(strstr(detail, "stale") != NULL);
  T_ASSERT(strstr(detail, "[serial 3001]") != NULL);
  srv_stop(&s);
  T_EQ_INT(srv_start(&s, SRV_500), 0);
  T_EQ_INT(query(s.port, 2000, detail), GW_VERIFY_OCSP_UNAVAILABLE);
  T_ASSERT(strstr(detail, "HTTP status 500") != NULL);
  srv_stop(&s);
  T_EQ_INT(srv_start(&s, SRV_HUGE), 0);
  T_EQ_INT(query(s.port, 2000, detail), GW_VERIFY_OCSP_UNAVAILABLE);
  printf("#   huge: %s\n", detail);
  srv_stop(&s);
  /* a responder that never answers: bounded by the timeout */
  T_EQ_INT(srv_start(&s, SRV_SILENT), 0);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  T_EQ_INT(query(s.port, 300, detail), GW_VERIFY_OCSP_UNAVAILABLE);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
       (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("#   silent: %s (%.0f ms)\n", detail, ms);
  T_ASSERT(ms >= 250 && ms < 1500);
  srv_stop(&s);
}

static void test_responder_down(void) {
  char detail[GW_VERIFY_DETAIL_MAX];
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  uint64_t q = 0, f = 0;
  time_t until;
  char url[64];
  gw_ocsp *o;
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  close(fd); /* nothing listens there now */
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
  o = mk_client(url, 1000, 1);
  if (!o) {
    return;
  }
  T_EQ_INT(gw_ocsp_check(o, l_a, c_ca, time(NULL), 60, &until, detail,
                         sizeof(detail)),
           GW_VERIFY_OCSP_UNAVAILABLE);
  gw_ocsp_counts(o, &q, &f);
  T_EQ_INT(q, 1);
  T_EQ_INT(f, 1);
  gw_ocsp_del(o);
}

int main(void) {
  build_pki();
  T_RUN(test_new_arguments);
  T_RUN(test_good_answers);
  T_RUN(test_revoked_and_unknown);
  T_RUN(test_stale_answers);
  T_RUN(test_nonce);
  T_RUN(test_who_may_sign);
  T_RUN(test_not_about_this_certificate);
  T_RUN(test_unsuccessful_and_malformed);
  T_RUN(test_transport);
  T_RUN(test_responder_down);
  free_pki();
  return T_DONE();
}
