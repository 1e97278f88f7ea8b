/* mock_handset_test.c — the virtual handset pages of the mock MSSPs.
 *
 * First the verification code on its own (REFERENCE §2's published vector
 * and 32-byte digests). Then, against the real $BUILD/mssp-mock started on
 * a private demo PKI made by the real $BUILD/mpkictl (nothing of var/ is
 * touched), with "handset" subscribers: signature requests sent as SOAP
 * MSS_SignatureReq (asynchClientServer, a digest chosen here, display text
 * in Arabic with an injected <script>) appear on the phone's JSON with the
 * verification code computed here from the digest; a parked long poll wakes
 * when a request arrives, long before its wait ends; approving with the
 * PIN ends the transaction with 500 (read with MSS_StatusQuery), refusing
 * with 401, three wrong PINs count down and block (402); the caps on
 * parked polls; every error answer; the HTML page (right to left Arabic by
 * default, English, viewport, CSP nonce, the display text escaped).
 *
 * Prints "# skip" and passes when $BUILD/mssp-mock or $BUILD/mpkictl are
 * not built. Run from the repository root; every wait is bounded, and the
 * mock is stopped at exit. */
#include "mock_handset.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "gw_buf.h"
#include "gw_err.h"
#include "gw_log.h"
#include "harness.h"
#include "mss.h"
#include "mss_soap.h"
#include "support/t_child.h"
#include "support/t_curl.h"
#include "support/t_demo.h"
#include "support/t_json.h"
#include "support/t_time.h"

#define PHONE "+96899000010"   /* handset: most tests */
#define OTHER "+96899000011"   /* handset: another phone */
#define BLOCKME "+96899000012" /* handset: the PIN gets blocked */
#define AP_ID "http://mpkigw.test/ap"
#define AP_PWD "gw-test-secret-4711"
#define DISPLAY "تسجيل الدخول <script>alert(1)</script>"

static char dir[PATH_MAX];
static char build[PATH_MAX];
static int mock_port;
static pid_t mock_pid;
static ts_server srv; /* only h2c_port: the mock's plain HTTP listener */

static const char SIMS[] =
    "msisdn,civil_id,name,operator,pin,puk,behaviour\n"
    "+96899000001,10000001,Salim Al-Harthy,omantel,,,approve:200\n"
    "+96899000010,10000010,Said Al-Busaidi,omantel,,,handset\n"
    "+96899000011,10000011,Other Phone,omantel,,,handset\n"
    "+96899000012,10000012,Blocked Later,omantel,,,handset\n";

/* ---- HTTP and SOAP ------------------------------------------------------ */

/* One request to the mock; |ctype| NULL sends none of our own. */
static void req(t_resp *r, const char *method, const char *path,
                const char *ctype, const char *body, long timeout_ms) {
  char h[160];
  t_reqopt o;

  memset(&o, 0, sizeof(o));
  o.h2c = 1;
  o.method = method;
  o.body = body;
  o.blen = body ? (long)strlen(body) : 0;
  o.timeout_ms = timeout_ms;
  if (ctype) {
    snprintf(h, sizeof(h), "Content-Type: %s", ctype);
    o.headers[0] = h;
  }
  t_do_req(r, &srv, CURL_HTTP_VERSION_1_1, path, &o);
}

static t_resp *resp_new(void) {
  return calloc(1, sizeof(t_resp));
}

static void resp_del(t_resp *r) {
  if (r) {
    t_resp_free(r);
    free(r);
  }
}

static void digest_of(const char *text, unsigned char d[32]) {
  EVP_Digest(text, strlen(text), d, NULL, EVP_sha256(), NULL);
}

/* The Mobile-ID code, written out here rather than taken from the mock. */
static void expected_code(const unsigned char d[32], char out[8]) {
  snprintf(out, 8, "%04d", ((d[0] & 0xFC) << 5) | (d[31] & 0x7F));
}

static int soap_post(const char *port, const gw_buf *doc, t_resp *r) {
  char path[96];

  snprintf(path, sizeof(path), "/soap/services/%s", port);
  memset(r, 0, sizeof(*r));
  req(r, NULL, path, MSS_SOAP_CONTENT_TYPE, doc->data, 5000);
  return r->rc == CURLE_OK ? 0 : -1;
}

static void fill_ap(mss_ap_info *ai) {
  static int n;

  snprintf(ai->ap_id, sizeof(ai->ap_id), "%s", "http://demo_ap");
  snprintf(ai->ap_pwd, sizeof(ai->ap_pwd), "%s", "demo");
  snprintf(ai->ap_trans_id, sizeof(ai->ap_trans_id), "H%ld%d%d",
           (long)time(NULL), (int)getpid(), n++);
  mss_instant_format(time(NULL), ai->instant, sizeof(ai->instant));
}

/* Sends MSS_SignatureReq for |d| with |display| to |msisdn|: returns 100
 * with the MSSP_TransID in |id|, a fault code, or -1. */
static int sign_start(const char *msisdn, const unsigned char d[32],
                      const char *display, char *id, size_t cap) {
  mss_signature_req *m = calloc(1, sizeof(*m));
  mss_signature_resp *sr = calloc(1, sizeof(*sr));
  t_resp *r = resp_new();
  mss_fault f;
  gw_buf b64, doc;
  int rv = -1, prv;

  gw_buf_init(&b64, 256);
  gw_buf_init(&doc, 64 * 1024);
  if (!m || !sr || !r || mss_base64_encode(d, 32, &b64) != GW_OK) {
    goto done;
  }
  m->major_version = MSS_MAJOR_VERSION;
  m->minor_version = MSS_MINOR_VERSION;
  fill_ap(&m->ap_info);
  snprintf(m->msisdn, sizeof(m->msisdn), "%s", msisdn);
  mss_data_set(&m->data_to_be_signed, "application/x-sha256", "base64",
               b64.data, b64.len);
  m->has_data_to_be_displayed = 1;
  mss_data_set(&m->data_to_be_displayed, "text/plain", "UTF-8", display,
               strlen(display));
  m->messaging_mode = MSS_MODE_ASYNCH_CLIENT_SERVER;
  m->timeout = 60;
  if (mss_soap_build_signature_req(m, &doc) != GW_OK ||
      soap_post("MSS_SignaturePort", &doc, r) != 0) {
    goto done;
  }
  prv = mss_soap_parse_signature_resp(r->body, r->blen, sr, &f);
  if (prv == GW_OK) {
    snprintf(id, cap, "%s", sr->mssp_trans_id);
    rv = sr->status.code;
  } else if (prv == GW_ERR_PROTO) {
    rv = f.subcode;
  }
done:
  if (rv != 100) {
    printf("# signature request to %s: %d (HTTP %ld) %.200s\n", msisdn, rv,
           r ? r->status : 0L, r ? r->body : "");
  }
  gw_buf_free(&b64);
  gw_buf_free(&doc);
  resp_del(r);
  free(sr);
  free(m);
  return rv;
}

/* MSS_StatusQuery for |id|: the status code (504, 500) or the fault's. */
static int status_once(const char *id) {
  mss_status_req *m = calloc(1, sizeof(*m));
  mss_status_resp *sr = calloc(1, sizeof(*sr));
  t_resp *r = resp_new();
  mss_fault f;
  gw_buf doc;
  int rv = -1, prv;

  gw_buf_init(&doc, 64 * 1024);
  if (!m || !sr || !r) {
    goto done;
  }
  m->major_version = MSS_MAJOR_VERSION;
  m->minor_version = MSS_MINOR_VERSION;
  fill_ap(&m->ap_info);
  snprintf(m->mssp_trans_id, sizeof(m->mssp_trans_id), "%s", id);
  if (mss_soap_build_status_req(m, &doc) != GW_OK ||
      soap_post("MSS_StatusQueryPort", &doc, r) != 0) {
    goto done;
  }
  prv = mss_soap_parse_status_resp(r->body, r->blen, sr, &f);
  rv = prv == GW_OK ? sr->status.code : prv == GW_ERR_PROTO ? f.subcode : -1;
done:
  gw_buf_free(&doc);
  resp_del(r);
  free(sr);
  free(m);
  return rv;
}

/* The final status of |id| (polls while 504, up to 5 s). */
static int status_final(const char *id) {
  int st = -1;

  for (int i = 0; i < 100; i++) {
    st = status_once(id);
    if (st != 504) {
      break;
    }
    usleep(50000);
  }
  return st;
}

/* ---- the handset's JSON --------------------------------------------------
 */

/* GET /handset/{m}/requests[?query]: the parsed answer (caller decrefs),
 * NULL unless 200. */
static json_t *requests_of(const char *msisdn, const char *query,
                           long timeout_ms, double *ms) {
  char path[256];
  t_resp *r = resp_new();
  json_t *j = NULL;

  snprintf(path, sizeof(path), "/handset/%s/requests%s", msisdn,
           query ? query : "");
  req(r, NULL, path, NULL, NULL, timeout_ms);
  if (ms) {
    *ms = r->ms;
  }
  if (r->status == 200 && r->json) {
    j = json_incref(r->json);
  } else {
    printf("# GET %s: rc=%d HTTP %ld %.200s\n", path, r->rc, r->status,
           r->body);
  }
  resp_del(r);
  return j;
}

static long long version_of(const json_t *j) {
  return json_integer_value(json_object_get(j, "version"));
}

static json_t *first_request(const json_t *j) {
  return json_array_get(json_object_get(j, "requests"), 0);
}

/* POST .../requests/{id}/{action} with |body| as application/json. */
static void answer(t_resp *r, const char *msisdn, const char *id,
                   const char *action, const char *body) {
  char path[256];

  snprintf(path, sizeof(path), "/handset/%s/requests/%s/%s", msisdn, id,
           action);
  req(r, "POST", path, "application/json", body, 5000);
}

/* Refuses whatever waits on |msisdn|, so that a failed test leaves no
 * transaction that makes the next one's request a 406. */
static void clear_phone(const char *msisdn) {
  json_t *j = requests_of(msisdn, "", 2000, NULL);
  json_t *t = j ? first_request(j) : NULL;
  t_resp *r = resp_new();

  if (t && r) {
    answer(r, msisdn, t_jstr(t, "mssp_trans_id"), "refuse", "{}");
  }
  resp_del(r);
  json_decref(j);
}

/* ---- the verification code ---------------------------------------------- */

static void t_code_vectors(void) {
  static const unsigned char sha1[20] = {
      0x2f, 0x66, 0x5f, 0x6a, 0x69, 0x99, 0xe0, 0xef, 0x07, 0x52,
      0xe0, 0x0e, 0xc9, 0xf4, 0x53, 0xad, 0xf5, 0x9d, 0x8c, 0xb6};
  unsigned char d[32], ones[32];

  /* REFERENCE §2, the published Mobile-ID vector. */
  T_EQ_INT(mock_handset_code(sha1, sizeof(sha1)), 1462);
  /* SHA-256("abc") = ba7816bf...f20015ad: (0xb8 << 5) | 0x2d. */
  digest_of("abc", d);
  T_EQ_INT(d[0], 0xba);
  T_EQ_INT(d[31], 0xad);
  T_EQ_INT(mock_handset_code(d, 32), 5933);
  memset(ones, 0xff, sizeof(ones));
  T_EQ_INT(mock_handset_code(ones, 32), 8191); /* the largest */
  memset(ones, 0, sizeof(ones));
  T_EQ_INT(mock_handset_code(ones, 32), 0);
  T_EQ_INT(mock_handset_code(d, 0), -1);
}

/* ---- against the mock --------------------------------------------------- */

/* A request appears with its display text and the code of its digest;
 * the local number form is the same phone; refusing ends it with 401. */
static void t_request_listed_and_refused(void) {
  unsigned char d[32];
  char id[80] = "", code[8];
  json_t *j, *t;
  t_resp *r = resp_new();

  clear_phone(PHONE);
  digest_of("listed and refused", d);
  expected_code(d, code);
  T_EQ_INT(sign_start(PHONE, d, DISPLAY, id, sizeof(id)), 100);
  j = requests_of("99000010", "", 2000, NULL);
  T_ASSERT(j != NULL);
  T_EQ_STR(t_jstr(j, "msisdn"), PHONE);
  T_ASSERT(version_of(j) > 0);
  T_EQ_INT(json_array_size(json_object_get(j, "requests")), 1);
  t = first_request(j);
  T_EQ_STR(t_jstr(t, "mssp_trans_id"), id);
  T_EQ_STR(t_jstr(t, "display"), DISPLAY);
  T_EQ_STR(t_jstr(t, "verification_code"), code);
  T_EQ_STR(t_jstr(t, "state"), "waiting");
  T_EQ_INT(json_integer_value(json_object_get(t, "pin_attempts")), 0);
  T_ASSERT(t_jstr(t, "created_at") && t_jstr(t, "expires_at"));
  T_ASSERT(json_integer_value(json_object_get(t, "expires_in_s")) > 50);
  json_decref(j);

  answer(r, PHONE, id, "refuse", "{}");
  T_EQ_INT(r->status, 200);
  T_EQ_STR(t_jstr(r->json, "result"), "refused");
  T_EQ_INT(status_final(id), 401);
  j = requests_of(PHONE, "", 2000, NULL);
  T_EQ_INT(json_array_size(json_object_get(j, "requests")), 0);
  json_decref(j);
  resp_del(r);
}

typedef struct poll_job {
  char path[160];
  long timeout_ms;
  t_resp *r;
} poll_job;

static void *poll_thread(void *arg) {
  poll_job *p = arg;

  req(p->r, NULL, p->path, NULL, NULL, p->timeout_ms);
  return NULL;
}

/* A poll parked with the current version wakes when a request arrives;
 * a poll on an unchanged phone ends with its wait; approving with the
 * right PIN signs (500). */
static void t_long_poll_then_approve(void) {
  unsigned char d[32];
  char id[80] = "", code[8];
  poll_job pj;
  pthread_t th;
  json_t *j, *t;
  t_resp *r = resp_new();
  long long v0;
  double ms = 0;

  clear_phone(PHONE);
  j = requests_of(PHONE, "", 2000, NULL);
  v0 = version_of(j);
  json_decref(j);

  /* Nothing happens: the wait ends after wait_ms with the same version. */
  snprintf(pj.path, sizeof(pj.path), "?since=%lld&wait_ms=300", v0);
  j = requests_of(PHONE, pj.path, 3000, &ms);
  T_EQ_INT(version_of(j), v0);
  T_ASSERT(ms >= 280 && ms < 2000);
  json_decref(j);
  /* Another version than the current one: answered at once. */
  snprintf(pj.path, sizeof(pj.path), "?since=%lld&wait_ms=5000", v0 - 1);
  j = requests_of(PHONE, pj.path, 3000, &ms);
  T_EQ_INT(version_of(j), v0);
  T_ASSERT(ms < 1000);
  json_decref(j);

  snprintf(pj.path, sizeof(pj.path),
           "/handset/" PHONE "/requests?since=%lld&wait_ms=20000", v0);
  pj.timeout_ms = 25000;
  pj.r = resp_new();
  T_ASSERT(pthread_create(&th, NULL, poll_thread, &pj) == 0);
  usleep(400000); /* parked by now */
  digest_of("long poll", d);
  expected_code(d, code);
  T_EQ_INT(sign_start(PHONE, d, "Sign in to Demo RP", id, sizeof(id)), 100);
  pthread_join(th, NULL);
  T_EQ_INT(pj.r->status, 200);
  T_ASSERT(pj.r->ms >= 350);
  T_ASSERT(pj.r->ms < 3000); /* woken, far from the 20 s wait */
  T_ASSERT(version_of(pj.r->json) > v0);
  t = first_request(pj.r->json);
  T_EQ_STR(t_jstr(t, "mssp_trans_id"), id);
  T_EQ_STR(t_jstr(t, "verification_code"), code);
  resp_del(pj.r);

  answer(r, PHONE, id, "approve", "{\"pin\": \"1234\"}");
  T_EQ_INT(r->status, 200);
  T_EQ_STR(t_jstr(r->json, "result"), "signed");
  T_EQ_INT(status_final(id), 500);
  resp_del(r);
}

static void expect_wrong_pin(const char *id, int left) {
  t_resp *r = resp_new();

  answer(r, BLOCKME, id, "approve", "{\"pin\": \"9999\"}");
  T_EQ_INT(r->status, 200);
  T_EQ_STR(t_jstr(r->json, "result"), "wrong_pin");
  T_EQ_INT(json_integer_value(json_object_get(r->json, "tries_left")), left);
  resp_del(r);
}

/* Three wrong PINs: 2 and 1 tries left, then the PIN blocks and the
 * transaction ends with 402. The PIN is reset afterwards. */
static void t_wrong_pins_block(void) {
  unsigned char d[32];
  char id[80] = "";
  json_t *j;
  t_resp *r = resp_new();

  clear_phone(BLOCKME);
  digest_of("wrong pins", d);
  T_EQ_INT(sign_start(BLOCKME, d, "Block me", id, sizeof(id)), 100);
  expect_wrong_pin(id, 2);
  expect_wrong_pin(id, 1);
  j = requests_of(BLOCKME, "", 2000, NULL);
  T_EQ_INT(
      json_integer_value(json_object_get(first_request(j), "pin_attempts")), 2);
  json_decref(j);
  answer(r, BLOCKME, id, "approve", "{\"pin\": \"9999\"}");
  T_EQ_INT(r->status, 200);
  T_EQ_STR(t_jstr(r->json, "result"), "pin_blocked");
  T_EQ_INT(status_final(id), 402);
  t_resp_free(r);

  req(r, "POST", "/control/subscribers/" BLOCKME "/pin/reset", NULL, "", 5000);
  T_EQ_INT(r->status, 200);
  T_EQ_INT(json_integer_value(json_object_get(r->json, "pin_tries_left")), 3);
  resp_del(r);
}

/* Error answers: media type, MSISDNs, another phone's transaction, PIN
 * format, query. */
static void t_errors(void) {
  unsigned char d[32];
  char id[80] = "", path[256];
  t_resp *r = resp_new();

  clear_phone(OTHER);
  digest_of("errors", d);
  T_EQ_INT(sign_start(OTHER, d, "Other phone", id, sizeof(id)), 100);

  snprintf(path, sizeof(path), "/handset/" OTHER "/requests/%s/approve", id);
  req(r, "POST", path, "text/plain", "{\"pin\": \"1234\"}", 5000);
  T_ASSERT(t_resp_is_error(r, 415, "unsupported_media_type"));
  t_resp_free(r);
  req(r, "POST", path, "application/x-www-form-urlencoded", "pin=1234", 5000);
  T_ASSERT(t_resp_is_error(r, 415, "unsupported_media_type"));
  t_resp_free(r);
  snprintf(path, sizeof(path), "/handset/" OTHER "/requests/%s/refuse", id);
  req(r, "POST", path, "text/plain", "", 5000);
  T_ASSERT(t_resp_is_error(r, 415, "unsupported_media_type"));
  t_resp_free(r);

  /* Another phone's transaction is unknown on this one. */
  answer(r, PHONE, id, "approve", "{\"pin\": \"1234\"}");
  T_ASSERT(t_resp_is_error(r, 404, "unknown_request"));
  t_resp_free(r);
  answer(r, PHONE, id, "refuse", "{}");
  T_ASSERT(t_resp_is_error(r, 404, "unknown_request"));
  t_resp_free(r);
  answer(r, OTHER, "T0000000000000000000000", "refuse", "{}");
  T_ASSERT(t_resp_is_error(r, 404, "unknown_request"));
  t_resp_free(r);

  /* A PIN is 4 to 8 digits; the body is JSON. */
  answer(r, OTHER, id, "approve", "{\"pin\": \"12\"}");
  T_ASSERT(t_resp_is_error(r, 400, "invalid_pin"));
  t_resp_free(r);
  answer(r, OTHER, id, "approve", "{\"pin\": 1234}");
  T_ASSERT(t_resp_is_error(r, 400, "invalid_pin"));
  t_resp_free(r);
  answer(r, OTHER, id, "approve", "{\"pin\": ");
  T_ASSERT(t_resp_is_error(r, 400, "invalid_json"));
  t_resp_free(r);

  /* Not a subscriber, not a number. */
  req(r, NULL, "/handset/+96899999999/requests", NULL, NULL, 5000);
  T_ASSERT(t_resp_is_error(r, 404, "unknown_subscriber"));
  t_resp_free(r);
  req(r, NULL, "/handset/+96899999999", NULL, NULL, 5000);
  T_ASSERT(t_resp_is_error(r, 404, "unknown_subscriber"));
  t_resp_free(r);
  answer(r, "+96899999999", id, "approve", "{\"pin\": \"1234\"}");
  T_ASSERT(t_resp_is_error(r, 404, "unknown_subscriber"));
  t_resp_free(r);
  req(r, NULL, "/handset/not-a-number/requests", NULL, NULL, 5000);
  T_ASSERT(t_resp_is_error(r, 400, "invalid_msisdn"));
  t_resp_free(r);

  /* The query. */
  req(r, NULL, "/handset/" OTHER "/requests?since=abc", NULL, NULL, 5000);
  T_ASSERT(t_resp_is_error(r, 400, "invalid_request"));
  t_resp_free(r);
  req(r, NULL, "/handset/" OTHER "/requests?since=1&since=2", NULL, NULL, 5000);
  T_ASSERT(t_resp_is_error(r, 400, "invalid_request"));
  t_resp_free(r);
  req(r, NULL, "/handset/" OTHER "/requests?wait_ms=-5", NULL, NULL, 5000);
  T_ASSERT(t_resp_is_error(r, 400, "invalid_request"));
  t_resp_free(r);

  /* The approve/refuse routes take POST only. */
  snprintf(path, sizeof(path), "/handset/" OTHER "/requests/%s/refuse", id);
  req(r, NULL, path, NULL, NULL, 5000);
  T_EQ_INT(r->status, 405);
  t_resp_free(r);

  /* Nothing of that changed the request; an empty JSON body refuses. */
  req(r, "POST", path, "application/json", "", 5000);
  T_EQ_INT(r->status, 200);
  T_EQ_STR(t_jstr(r->json, "result"), "refused");
  T_EQ_INT(status_final(id), 401);
  t_resp_free(r);
  /* Ended: no longer waiting. */
  answer(r, OTHER, id, "approve", "{\"pin\": \"1234\"}");
  T_ASSERT(t_resp_is_error(r, 404, "unknown_request"));
  resp_del(r);
}

/* How many times |needle| occurs in |hay|. */
static int count_of(const char *hay, const char *needle) {
  int n = 0;

  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) {
    n++;
  }
  return n;
}

/* The CSP nonce of the page, checked against the header. */
static void check_csp(const t_resp *r) {
  const char *csp = t_resp_hdr(r, "content-security-policy");
  const char *at = csp ? strstr(csp, "script-src 'nonce-") : NULL;
  char nonce[64] = "", tag[96];
  size_t n;

  T_ASSERT(at != NULL);
  if (!at) {
    return;
  }
  at += strlen("script-src 'nonce-");
  n = strcspn(at, "'");
  T_ASSERT(n >= 22 && n < sizeof(nonce));
  memcpy(nonce, at, n < sizeof(nonce) ? n : 0);
  snprintf(tag, sizeof(tag), "<script nonce=\"%s\">", nonce);
  T_ASSERT(strstr(r->body, tag) != NULL);
  snprintf(tag, sizeof(tag), "<style nonce=\"%s\">", nonce);
  T_ASSERT(strstr(r->body, tag) != NULL);
  T_ASSERT(strstr(csp, "default-src 'none'") != NULL);
  T_ASSERT(strstr(csp, "connect-src 'self'") != NULL);
  T_ASSERT(strstr(csp, "frame-ancestors 'none'") != NULL);
  T_EQ_INT(count_of(r->hdr, "content-security-policy:"), 1);
}

/* The page: Arabic right to left, a phone's viewport, the request with
 * its code and the display text escaped; English with ?lang=en; nothing
 * pending said so. */
static void t_page(void) {
  unsigned char d[32];
  char id[80] = "", code[8], big[64];
  t_resp *r = resp_new();

  clear_phone(PHONE);
  digest_of("the page", d);
  expected_code(d, code);
  T_EQ_INT(sign_start(PHONE, d, DISPLAY, id, sizeof(id)), 100);

  req(r, NULL, "/handset/" PHONE, NULL, NULL, 5000);
  T_EQ_INT(r->status, 200);
  T_ASSERT(t_resp_hdr(r, "content-type") &&
           strncmp(t_resp_hdr(r, "content-type"), "text/html", 9) == 0);
  T_ASSERT(strstr(r->body, "<html lang=\"ar\" dir=\"rtl\">") != NULL);
  T_ASSERT(strstr(r->body, "<meta name=\"viewport\" content=\"width=device-"
                           "width, initial-scale=1\">") != NULL);
  T_ASSERT(strstr(r->body, "href=\"?lang=en\"") != NULL);
  T_ASSERT(strstr(r->body, "تسجيل الدخول &lt;script&gt;alert(1)&lt;/"
                           "script&gt;") != NULL);
  T_ASSERT(strstr(r->body, "<script>alert") == NULL);
  T_ASSERT(strstr(r->body, "alert(1)</script>") == NULL);
  snprintf(big, sizeof(big), "<p class=\"code\" dir=\"ltr\">%s</p>", code);
  T_ASSERT(strstr(r->body, big) != NULL);
  T_ASSERT(strstr(r->body, id) != NULL);
  T_ASSERT(strstr(r->body, "inputmode=\"numeric\"") != NULL);
  T_ASSERT(strstr(r->body, "autocomplete=\"off\"") != NULL);
  T_ASSERT(strstr(r->body, "/requests") != NULL); /* the long poll */
  T_ASSERT(strstr(r->body, "http://") == NULL &&
           strstr(r->body, "https://") == NULL); /* nothing external */
  check_csp(r);
  t_resp_free(r);

  req(r, NULL, "/handset/" PHONE "?lang=en", NULL, NULL, 5000);
  T_EQ_INT(r->status, 200);
  T_ASSERT(strstr(r->body, "<html lang=\"en\" dir=\"ltr\">") != NULL);
  T_ASSERT(strstr(r->body, "Approve") != NULL);
  T_ASSERT(strstr(r->body, "href=\"?lang=ar\"") != NULL);
  T_ASSERT(strstr(r->body, big) != NULL);
  T_ASSERT(strstr(r->body, "&lt;script&gt;alert(1)") != NULL);
  check_csp(r);
  t_resp_free(r);

  answer(r, PHONE, id, "refuse", "{}");
  T_EQ_INT(r->status, 200);
  t_resp_free(r);
  req(r, NULL, "/handset/" PHONE "?lang=en", NULL, NULL, 5000);
  T_ASSERT(strstr(r->body, "<p id=\"hs-none\" class=\"none\">No request") !=
           NULL);
  T_ASSERT(strstr(r->body, "class=\"card\" data-id=\"T") == NULL);
  resp_del(r);
}

/* At most 64 polls park on one phone (the 65th gets 503); a client that
 * goes away unparks its poll, so that others may park again. */
static void t_parked_cap_and_cancel(void) {
  enum { N = 64 };
  CURL *e[N];
  t_resp *rs = calloc(N, sizeof(t_resp));
  CURLM *m = curl_multi_init();
  struct curl_slist *hl[N];
  t_upload up[N];
  t_reqopt o;
  t_resp *r = resp_new();
  json_t *j;
  char path[160];
  double t0;
  int running = 0;
  long long v;

  clear_phone(OTHER);
  j = requests_of(OTHER, "", 2000, NULL);
  v = version_of(j);
  json_decref(j);
  snprintf(path, sizeof(path),
           "/handset/" OTHER "/requests?since=%lld&wait_ms=20000", v);
  memset(&o, 0, sizeof(o));
  o.h2c = 1;
  o.timeout_ms = 25000;
  for (int i = 0; i < N; i++) {
    e[i] = curl_easy_init();
    hl[i] = t_setup_easy(e[i], &srv, CURL_HTTP_VERSION_1_1, path, &o, &rs[i],
                         &up[i]);
    curl_multi_add_handle(m, e[i]);
  }
  t0 = t_now_ms();
  while (t_now_ms() - t0 < 800) {
    curl_multi_perform(m, &running);
    curl_multi_poll(m, NULL, 0, 50, NULL);
  }
  T_EQ_INT(running, N); /* all parked */
  req(r, NULL, path, NULL, NULL, 5000);
  T_ASSERT(t_resp_is_error(r, 503, "busy"));
  t_resp_free(r);

  for (int i = 0; i < N; i++) { /* the clients go away */
    curl_multi_remove_handle(m, e[i]);
    curl_easy_cleanup(e[i]);
    curl_slist_free_all(hl[i]);
  }
  curl_multi_cleanup(m);
  usleep(300000);
  snprintf(path, sizeof(path),
           "/handset/" OTHER "/requests?since=%lld&wait_ms=300", v);
  req(r, NULL, path, NULL, NULL, 5000);
  T_EQ_INT(r->status, 200);
  T_ASSERT(r->ms >= 280); /* parked again, then the wait ended */
  resp_del(r);
  free(rs);
}

static pid_t parent;

static void cleanup(void) {
  if (getpid() != parent) {
    return;
  }
  t_mock_stop(&mock_pid);
  if (dir[0] && !getenv("KEEP_TMP")) {
    t_sh("rm -rf '%s'", dir);
  }
}

int main(void) {
  const char *b = getenv("BUILD");
  char tmpl[] = "/tmp/mock_handset.XXXXXX", p1[PATH_MAX + 32],
       p2[PATH_MAX + 32];

  T_RUN(t_code_vectors);
  if (!realpath(b && b[0] ? b : "build", build)) {
    printf("# skip: no build directory\n");
    return T_DONE();
  }
  snprintf(p1, sizeof(p1), "%s/mssp-mock", build);
  snprintf(p2, sizeof(p2), "%s/mpkictl", build);
  if (access(p1, X_OK) != 0 || access(p2, X_OK) != 0) {
    printf("# skip: %s or %s is not built\n", p1, p2);
    return T_DONE();
  }
  if (!mkdtemp(tmpl) || !realpath(tmpl, dir)) {
    perror("mkdtemp");
    return 1;
  }
  parent = getpid();
  atexit(cleanup);
  signal(SIGPIPE, SIG_IGN);
  mss_soap_init();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  gw_log_open(NULL, GW_LOG_ERROR);
  if (t_demo_pki(dir, build, SIMS, AP_ID, AP_PWD) != 0) {
    printf("not ok - private PKI made with mpkictl\n");
    return 1;
  }
  printf("ok - private PKI made with mpkictl\n");
  if (t_mock_start(dir, build,
                   "control: { enabled = true; };\n"
                   "server: { shutdown_grace_ms = 500; };",
                   &mock_port, &mock_pid) != 0) {
    printf("not ok - mssp-mock starts\n");
    return 1;
  }
  printf("ok - mssp-mock starts on port %d\n", mock_port);
  snprintf(srv.cert, sizeof(srv.cert), "/dev/null");
  srv.h2c_port = mock_port;
  T_RUN_CHILD(t_request_listed_and_refused);
  T_RUN_CHILD(t_long_poll_then_approve);
  T_RUN_CHILD(t_wrong_pins_block);
  T_RUN_CHILD(t_errors);
  T_RUN_CHILD(t_page);
  T_RUN_CHILD(t_parked_cap_and_cancel);
  return T_DONE();
}
