/* gw_server_test.c — the in-process server (gateway/gw_server.c with
 * gw_http.c, gw_h1.c, gw_h2.c and gw_handlers.c) driven by libcurl.
 *
 * Each server (tests/support/t_server.h) gets a fresh mkdtemp() directory
 * with a self-signed P-256 certificate made with the OpenSSL API
 * (subjectAltName 127.0.0.1, so that curl verifies it with CURLOPT_CAINFO)
 * and a config file; the listen ports are 0, read back with
 * gw_server_port(). Test routes live in this file; the curl client is
 * tests/support/t_curl.h.
 *
 * Each test runs in a child process (T_RUN_CHILD, tests/support/t_child.h)
 * with its own server, so that a server crash fails that test alone and
 * LeakSanitizer checks each test's process at exit. Every wait is bounded
 * (curl timeouts, polling with deadlines, a per-child time limit). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_form.h"
#include "gw_http.h"
#include "gw_log.h"
#include "gw_router.h"
#include "gw_server.h"
#include "harness.h"
#include "support/t_child.h"
#include "support/t_client.h"
#include "support/t_curl.h"
#include "support/t_http.h"
#include "support/t_json.h"
#include "support/t_server.h"
#include "support/t_time.h"

/* Polls |flag| until it is non-zero or |ms| pass. Returns the flag. */
static int wait_flag(atomic_int *flag, int ms) {
  double end = t_now_ms() + ms;

  while (!atomic_load(flag) && t_now_ms() < end) {
    t_sleep_ms(5);
  }
  return atomic_load(flag);
}

#define H1 CURL_HTTP_VERSION_1_1
#define H2 CURL_HTTP_VERSION_2TLS

/* ---- routes ----------------------------------------------------------- */

static atomic_int cancel_ran;    /* /cancel-probe's cancel callback */
static atomic_int probe_started; /* /cancel-probe's handler ran */
static atomic_int async_cancelled;
static gw_exch *async_x; /* touched on the (single) worker only */
static atomic_int async_waiting;

static void on_probe_cancel(void *arg) {
  (void)arg;
  atomic_store(&cancel_ran, 1);
}

static void h_echo(gw_exch *x) {
  gw_req *r = gw_exch_req(x);
  gw_form f;
  json_t *q = json_object(), *o;

  memset(&f, 0, sizeof(f));
  if (gw_req_query(r, &f) != GW_OK) {
    gw_form_free(&f);
    json_decref(q);
    gw_resp_error(x, 400, "invalid_query", "the query string is malformed");
    return;
  }
  for (size_t i = 0; i < f.npairs; i++) {
    json_object_set_new(q, f.pairs[i].name, json_string(f.pairs[i].value));
  }
  gw_form_free(&f);
  o = json_pack("{s:s, s:o, s:s, s:s, s:s?, s:s}", "id",
                gw_route_param(&r->match, "id"), "query", q, "method",
                r->method, "proto", r->proto == GW_PROTO_H2 ? "h2" : "http/1.1",
                "authority", r->authority, "path", r->path);
  gw_resp_header(x, "x-echo", "1");
  gw_resp_json(x, 200, o);
}

static void h_body(gw_exch *x) {
  gw_req *r = gw_exch_req(x);
  const char *ct = gw_req_header(r, "content-type");
  json_t *o = json_pack("{s:I, s:s?}", "length", (json_int_t)r->body.len,
                        "content_type", ct);

  if (ct && strncmp(ct, "application/x-www-form-urlencoded", 33) == 0) {
    gw_form f;
    json_t *fo = json_object();
    memset(&f, 0, sizeof(f));
    if (gw_form_parse(&f, r->body.data ? r->body.data : "", r->body.len) !=
        GW_OK) {
      gw_form_free(&f);
      json_decref(fo);
      json_decref(o);
      gw_resp_error(x, 400, "invalid_form", "the form body is malformed");
      return;
    }
    for (size_t i = 0; i < f.npairs; i++) {
      json_object_set_new(fo, f.pairs[i].name, json_string(f.pairs[i].value));
    }
    gw_form_free(&f);
    json_object_set_new(o, "form", fo);
  }
  gw_resp_json(x, 200, o);
}

static void on_async_cancel(void *arg) {
  (void)arg;
  async_x = NULL;
  atomic_store(&async_waiting, 0);
  atomic_store(&async_cancelled, 1);
}

static void h_async(gw_exch *x) {
  if (async_x) {
    gw_resp_error(x, 409, "busy", "one /async at a time");
    return;
  }
  async_x = x;
  gw_exch_on_cancel(x, on_async_cancel, NULL);
  atomic_store(&async_waiting, 1);
}

static void h_release(gw_exch *x) {
  gw_exch *a = async_x;

  if (!a) {
    gw_resp_error(x, 404, "nothing_waiting", "no /async request is waiting");
    return;
  }
  async_x = NULL;
  atomic_store(&async_waiting, 0);
  gw_resp_json(a, 200, json_pack("{s:b}", "released", 1));
  gw_resp_json(x, 200, json_pack("{s:b}", "release", 1));
}

static void h_probe(gw_exch *x) {
  gw_exch_on_cancel(x, on_probe_cancel, NULL);
  atomic_store(&probe_started, 1);
}

static int add_routes(gw_router *r) {
  int rv = gw_router_add(r, "GET", "/echo/{id}", h_echo, 0, "echo");

  rv = rv ? rv : gw_router_add(r, "POST", "/body", h_body, 1024, "body");
  rv = rv ? rv : gw_router_add(r, "GET", "/async", h_async, 0, "async");
  rv = rv ? rv : gw_router_add(r, "GET", "/release", h_release, 0, "release");
  rv = rv ? rv : gw_router_add(r, "GET", "/cancel-probe", h_probe, 0, "probe");
  return rv;
}

/* Starts the usual server (2 workers) into |t|; fails the test if not. */
static int up(ts_server *t) {
  if (ts_start(t, 2, NULL, add_routes) != 0) {
    t_case_failed = 1;
    return 0;
  }
  return 1;
}

static void check_security_headers(const t_resp *r, int tls) {
  const char *v;

  T_EQ_STR(t_resp_hdr(r, "x-content-type-options"), "nosniff");
  T_EQ_STR(t_resp_hdr(r, "referrer-policy"), "no-referrer");
  T_EQ_STR(t_resp_hdr(r, "cache-control"), "no-store");
  T_EQ_STR(t_resp_hdr(r, "content-security-policy"),
           "default-src 'none'; frame-ancestors 'none'");
  v = t_resp_hdr(r, "strict-transport-security");
  if (tls) {
    T_EQ_STR(v, "max-age=63072000; includeSubDomains");
  } else {
    T_ASSERT(v == NULL);
  }
  T_EQ_STR(t_resp_hdr(r, "server"), "mpkigw");
  T_ASSERT(t_resp_hdr(r, "date") != NULL);
}

static const long both[] = {H1, H2};

/* ---- tests ------------------------------------------------------------ */

static void test_start_stop(void) {
  ts_server t;

  if (!up(&t)) {
    return;
  }
  T_ASSERT(t.port > 0);
  T_ASSERT(t.h2c_port > 0 && t.h2c_port != t.port);
  T_EQ_INT(gw_server_healthy(t.srv), 0); /* until housekeeping says so */
  ts_stop(&t);
  /* Shutdown, join and del without any traffic, and del of NULL. */
  gw_server_del(NULL);
}

static void test_echo(void) {
  ts_server t;
  t_resp r;

  if (!up(&t)) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    t_do_req(&r, &t, both[i], "/echo/caf%C3%A9%20x?a=1&b=x%20y+z&c", NULL);
    T_EQ_INT(r.rc, CURLE_OK);
    T_EQ_INT(r.status, 200);
    T_EQ_INT(r.version,
             both[i] == H1 ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2_0);
    T_EQ_STR(t_jstr(r.json, "id"), "caf\xc3\xa9 x");
    T_EQ_STR(t_jstr(r.json, "path"), "/echo/caf%C3%A9%20x");
    T_EQ_STR(t_jstr(r.json, "method"), "GET");
    T_EQ_STR(t_jstr(r.json, "proto"), both[i] == H1 ? "http/1.1" : "h2");
    T_ASSERT(t_starts_with(t_jstr(r.json, "authority"), "127.0.0.1:"));
    T_EQ_STR(t_jpath(r.json, "query", "a"), "1");
    T_EQ_STR(t_jpath(r.json, "query", "b"), "x y z");
    T_EQ_STR(t_jpath(r.json, "query", "c"), "");
    T_EQ_STR(t_resp_hdr(&r, "content-type"), "application/json");
    T_EQ_STR(t_resp_hdr(&r, "x-echo"), "1");
    {
      char n[16];
      snprintf(n, sizeof(n), "%zu", r.blen);
      T_EQ_STR(t_resp_hdr(&r, "content-length"), n);
    }
    check_security_headers(&r, 1);
    t_resp_free(&r);

    /* No query at all. */
    t_do_req(&r, &t, both[i], "/echo/plain", NULL);
    T_EQ_INT(r.status, 200);
    T_EQ_STR(t_jstr(r.json, "id"), "plain");
    T_EQ_INT(json_object_size(json_object_get(r.json, "query")), 0);
    t_resp_free(&r);

    /* A bad escape in the query: the handler's 400. */
    t_do_req(&r, &t, both[i], "/echo/1?a=%zz", NULL);
    T_ASSERT(t_resp_is_error(&r, 400, "invalid_query"));
    t_resp_free(&r);
  }
  ts_stop(&t);
}

/* Answers given from the headers alone, before any handler: 404, 405 with
 * Allow, 400 for a bad path, HEAD of a missing resource, a body sent to a
 * 405. Over HTTP/2 here, over HTTP/1.1 in the regression test below. */
static void early_answers(ts_server *t, long ver) {
  t_reqopt o;
  t_resp r;

  t_do_req(&r, t, ver, "/nope", NULL);
  T_ASSERT(t_resp_is_error(&r, 404, "not_found"));
  check_security_headers(&r, 1);
  t_resp_free(&r);

  t_do_req(&r, t, ver, "/echo", NULL); /* a parameter is non-empty */
  T_ASSERT(t_resp_is_error(&r, 404, "not_found"));
  t_resp_free(&r);

  memset(&o, 0, sizeof(o));
  o.method = "DELETE";
  t_do_req(&r, t, ver, "/echo/1", &o);
  T_ASSERT(t_resp_is_error(&r, 405, "method_not_allowed"));
  T_EQ_STR(t_resp_hdr(&r, "allow"), "GET, HEAD");
  t_resp_free(&r);

  memset(&o, 0, sizeof(o));
  t_do_req(&r, t, ver, "/body", &o);
  T_ASSERT(t_resp_is_error(&r, 405, "method_not_allowed"));
  T_EQ_STR(t_resp_hdr(&r, "allow"), "POST");
  t_resp_free(&r);

  /* A parameter decoding to '/' or "..", a bad escape in the path. */
  t_do_req(&r, t, ver, "/echo/a%2Fb", NULL);
  T_ASSERT(t_resp_is_error(&r, 400, "invalid_path"));
  check_security_headers(&r, 1);
  t_resp_free(&r);
  t_do_req(&r, t, ver, "/echo/%2e%2e", NULL);
  T_ASSERT(t_resp_is_error(&r, 400, "invalid_path"));
  t_resp_free(&r);
  t_do_req(&r, t, ver, "/echo/%zz", NULL);
  T_ASSERT(t_resp_is_error(&r, 400, "invalid_path"));
  t_resp_free(&r);

  /* HEAD of an unknown path: 404 without a body. */
  memset(&o, 0, sizeof(o));
  o.head = 1;
  t_do_req(&r, t, ver, "/nope", &o);
  T_EQ_INT(r.rc, CURLE_OK);
  T_EQ_INT(r.status, 404);
  T_EQ_INT(r.blen, 0);
  t_resp_free(&r);

  /* A body sent to a 405: answered, body discarded. */
  memset(&o, 0, sizeof(o));
  o.body = "x";
  o.blen = 1;
  t_do_req(&r, t, ver, "/echo/1", &o);
  T_ASSERT(t_resp_is_error(&r, 405, "method_not_allowed"));
  t_resp_free(&r);
}

static void test_early_answers_h2(void) {
  ts_server t;

  if (!up(&t)) {
    return;
  }
  early_answers(&t, H2);
  ts_stop(&t);
}

/* Regression (fixed in 3a19fad): over HTTP/1.1 a request without a body
 * answered from its headers (404, 405, 400 invalid_path, 400/414/431
 * rejections) made gw_h1_submit() pause the parser inside
 * on_headers_complete; h1_process() then finished the exchange (h1x =
 * NULL) and resumed the parser, whose on_message_complete() called
 * gw_exch_request_done(NULL): SIGSEGV. Any "GET /nope" killed the server. */
static void test_regress_h1_early_answer_without_body(void) {
  ts_server t;
  t_resp r;

  if (!up(&t)) {
    return;
  }
  early_answers(&t, H1);
  /* The server is still there afterwards. */
  t_do_req(&r, &t, H1, "/echo/after", NULL);
  T_EQ_INT(r.status, 200);
  t_resp_free(&r);
  ts_stop(&t);
}

static void test_head(void) {
  ts_server t;
  t_reqopt o;
  t_resp r, g;

  if (!up(&t)) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    t_do_req(&g, &t, both[i], "/echo/h", NULL);
    memset(&o, 0, sizeof(o));
    o.head = 1;
    t_do_req(&r, &t, both[i], "/echo/h", &o);
    T_EQ_INT(r.rc, CURLE_OK);
    T_EQ_INT(r.status, 200);
    T_EQ_INT(r.blen, 0);
    /* The GET handler answers HEAD (it sees method HEAD, so its body and
     * length differ by that word): a length, a type, no body. */
    T_ASSERT(t_resp_hdr(&r, "content-length") != NULL &&
             atoi(t_resp_hdr(&r, "content-length")) == (int)g.blen + 1);
    T_EQ_STR(t_resp_hdr(&r, "content-type"), "application/json");
    check_security_headers(&r, 1);
    t_resp_free(&r);
    t_resp_free(&g);
  }
  ts_stop(&t);
}

static char big_body[4096];

static void test_body(void) {
  ts_server t;
  t_reqopt o;
  t_resp r;

  if (!up(&t)) {
    return;
  }
  memset(big_body, 'b', sizeof(big_body));
  for (int i = 0; i < 2; i++) {
    for (int chunked = 0; chunked < 2; chunked++) {
      memset(&o, 0, sizeof(o));
      o.body = "a=1&b=x%20y+z&c=%C3%A9";
      o.blen = (long)strlen(o.body);
      o.chunked = chunked;
      o.headers[0] = "Content-Type: application/x-www-form-urlencoded";
      t_do_req(&r, &t, both[i], "/body", &o);
      T_EQ_INT(r.rc, CURLE_OK);
      T_EQ_INT(r.status, 200);
      T_EQ_INT(json_integer_value(json_object_get(r.json, "length")), o.blen);
      T_EQ_STR(t_jstr(r.json, "content_type"),
               "application/x-www-form-urlencoded");
      T_EQ_STR(t_jpath(r.json, "form", "a"), "1");
      T_EQ_STR(t_jpath(r.json, "form", "b"), "x y z");
      T_EQ_STR(t_jpath(r.json, "form", "c"), "\xc3\xa9");
      t_resp_free(&r);

      /* Exactly the limit. */
      o.body = big_body;
      o.blen = 1024;
      o.headers[0] = "Content-Type: application/octet-stream";
      t_do_req(&r, &t, both[i], "/body", &o);
      T_EQ_INT(r.status, 200);
      T_EQ_INT(json_integer_value(json_object_get(r.json, "length")), 1024);
      T_EQ_STR(t_jstr(r.json, "content_type"), "application/octet-stream");
      t_resp_free(&r);

      /* Malformed form. */
      o.body = "a=%zz";
      o.blen = 5;
      o.headers[0] = "Content-Type: application/x-www-form-urlencoded";
      t_do_req(&r, &t, both[i], "/body", &o);
      T_ASSERT(t_resp_is_error(&r, 400, "invalid_form"));
      t_resp_free(&r);
    }
    /* Empty body, no Content-Type (curl's default one removed). */
    memset(&o, 0, sizeof(o));
    o.body = "";
    o.blen = 0;
    o.headers[0] = "Content-Type:";
    t_do_req(&r, &t, both[i], "/body", &o);
    T_EQ_INT(r.status, 200);
    T_EQ_INT(json_integer_value(json_object_get(r.json, "length")), 0);
    T_ASSERT(json_is_null(json_object_get(r.json, "content_type")));
    t_resp_free(&r);
  }
  ts_stop(&t);
}

/* POSTs |n| bytes to /body (cap 1024), with Content-Length or without
 * (chunked over HTTP/1.1; DATA without content-length over HTTP/2), with
 * or without "Expect: 100-continue" (curl adds it by itself to HTTP/1.1
 * bodies over 1 KiB; without it the body is on its way when the 413
 * comes). Checks the 413 JSON answer. */
static int post_too_large(const ts_server *t, long ver, int chunked, int expect,
                          long n) {
  t_reqopt o;
  t_resp r;
  int ok;

  memset(big_body, 'b', sizeof(big_body));
  memset(&o, 0, sizeof(o));
  o.body = big_body;
  o.blen = n;
  o.chunked = chunked;
  o.headers[0] = expect ? "Expect: 100-continue" : "Expect:";
  t_do_req(&r, t, ver, "/body", &o);
  ok = r.status == 413 && t_jstr(r.json, "error") &&
       strcmp(t_jstr(r.json, "error"), "body_too_large") == 0 &&
       t_resp_hdr(&r, "x-content-type-options") != NULL;
  if (!ok && ver == H1) {
    t_resp_is_error(&r, 413, "body_too_large"); /* prints what came */
    printf("#   ^ %s, %s, %ld bytes\n",
           chunked ? "no length" : "content-length",
           expect ? "expect 100-continue" : "no expect", n);
  } else if (!ok && getenv("GW_TEST_VERBOSE")) {
    printf("#   h2 %s %s: curl rc %d (%s), status %ld\n",
           chunked ? "no length" : "content-length",
           expect ? "expect 100-continue" : "no expect", r.rc,
           curl_easy_strerror(r.rc), r.status);
  }
  t_resp_free(&r);
  return ok;
}

/* HTTP/1.1 with Content-Length: refused from the headers, with and without
 * "Expect: 100-continue". (A streamed body refused at the cap is in
 * gw_h1_test: curl loses that 413 now and then, see
 * test_regress_h1_413_lost_to_reset there.) */
static void test_body_too_large_h1(void) {
  ts_server t;

  if (!up(&t)) {
    return;
  }
  for (int expect = 0; expect < 2; expect++) {
    T_ASSERT(post_too_large(&t, H1, 0, expect, 1025));
    T_ASSERT(post_too_large(&t, H1, 0, expect, 4000));
  }
  ts_stop(&t);
}

/* HTTP/2: a 413 answered before the whole body arrived is followed by
 * RST_STREAM(NO_ERROR) (gw_h2.c on_frame_send). When HEADERS, DATA and
 * that RST_STREAM reach curl 7.88 (Debian 12's libcurl) in one read, curl
 * drops the response: CURLE_HTTP2_STREAM (92) or CURLE_GOT_NOTHING (52),
 * status 0. Always with "Expect: 100-continue", about one time in three
 * without. RFC 9113 §8.1 allows the reset; the client is at fault, but the
 * 413 never reaches Debian's own curl. */
static void test_regress_h2_413_reset_hides_response(void) {
  ts_server t;
  int fails[3] = {0, 0, 0};

  if (!up(&t)) {
    return;
  }
  for (int i = 0; i < 5; i++) {
    fails[0] += !post_too_large(&t, H2, 0, 0, 1025);
    fails[1] += !post_too_large(&t, H2, 1, 0, 3000);
    fails[2] += !post_too_large(&t, H2, 0, 1, 1025);
  }
  if (fails[0] + fails[1] + fails[2]) {
    printf("#   413s lost by curl, of 5 each: content-length %d, no length "
           "%d, content-length + expect %d (curl said CURLE_HTTP2_STREAM or "
           "CURLE_GOT_NOTHING; GW_TEST_VERBOSE=1 for each)\n",
           fails[0], fails[1], fails[2]);
    t_case_failed = 1;
  }
  ts_stop(&t);
}

static void test_healthz(void) {
  ts_server t;
  t_resp r;

  if (!up(&t)) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    gw_server_set_healthy(t.srv, 0);
    T_EQ_INT(gw_server_healthy(t.srv), 0);
    t_do_req(&r, &t, both[i], "/healthz", NULL);
    T_EQ_INT(r.status, 503);
    T_EQ_STR(t_jstr(r.json, "status"), "unavailable");
    T_EQ_STR(t_jstr(r.json, "error"), "store_unavailable");
    check_security_headers(&r, 1);
    t_resp_free(&r);

    gw_server_set_healthy(t.srv, 7); /* any non-zero is healthy */
    T_EQ_INT(gw_server_healthy(t.srv), 1);
    t_do_req(&r, &t, both[i], "/healthz", NULL);
    T_EQ_INT(r.status, 200);
    T_EQ_STR(t_jstr(r.json, "status"), "ok");
    t_resp_free(&r);
  }
  ts_stop(&t);
}

static void test_metrics(void) {
  ts_server t;
  t_reqopt o;
  t_resp r;

  if (!up(&t)) {
    return;
  }
  t_do_req(&r, &t, H2, "/echo/1", NULL);
  t_resp_free(&r);
  t_do_req(&r, &t, H1, "/echo/1", NULL);
  t_resp_free(&r);
  t_do_req(&r, &t, H2, "/nope", NULL);
  t_resp_free(&r);
  t_do_req(&r, &t, H1, "/healthz", NULL);
  t_resp_free(&r);
  memset(&o, 0, sizeof(o));
  o.body = big_body;
  o.blen = 2000;
  t_do_req(&r, &t, H2, "/body", &o);
  t_resp_free(&r);

  t_do_req(&r, &t, H2, "/metrics", NULL);
  T_EQ_INT(r.status, 200);
  T_EQ_STR(t_resp_hdr(&r, "content-type"),
           "text/plain; version=0.0.4; charset=utf-8");
#define HAS(s) T_ASSERT(strstr(r.body, s) != NULL)
  HAS("mpkigw_http_requests_total{route=\"echo\",status=\"200\","
      "protocol=\"h2\"} 1\n");
  HAS("mpkigw_http_requests_total{route=\"echo\",status=\"200\","
      "protocol=\"http/1.1\"} 1\n");
  HAS("mpkigw_http_requests_total{route=\"unmatched\",status=\"404\","
      "protocol=\"h2\"} 1\n");
  HAS("mpkigw_http_requests_total{route=\"body\",status=\"413\","
      "protocol=\"h2\"} 1\n");
  HAS("mpkigw_http_requests_total{route=\"healthz\",status=\"503\","
      "protocol=\"http/1.1\"} 1\n");
  HAS("mpkigw_http_request_duration_seconds_count 5\n");
  HAS("mpkigw_connections_accepted_total 6\n");
#undef HAS
  /* This request's own connection and stream are open while the page is
   * rendered (earlier connections may still be closing). */
  {
    const char *p = strstr(r.body, "mpkigw_open_connections{protocol=\"h2\"} ");
    const char *q = strstr(r.body, "\nmpkigw_open_streams ");
    T_ASSERT(p && atoi(p + 39) >= 1);
    T_ASSERT(q && atoi(q + 21) >= 1);
  }
  t_resp_free(&r);
  ts_stop(&t);
}

/* A plain-HTTP request to the TLS port gets a readable 400. */
static void test_plain_http_on_tls_port(void) {
  char buf[2048];
  size_t got = 0;
  ssize_t n;
  ts_server t;
  int fd;

  if (!up(&t)) {
    return;
  }
  fd = t_tcp_connect(t.port, 2, 0);
  T_ASSERT(fd >= 0);
  T_ASSERT(send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, MSG_NOSIGNAL) ==
           27);
  while (got < sizeof(buf) - 1 &&
         (n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0) {
    got += (size_t)n;
  }
  buf[got] = '\0';
  T_ASSERT(t_starts_with(buf, "HTTP/1.1 400 Bad Request\r\n"));
  T_ASSERT(strstr(buf, "\"error\":\"tls_required\"") != NULL);
  T_ASSERT(strstr(buf, "Connection: close") != NULL);
  close(fd);
  ts_stop(&t);
}

/* The client gives up on a request the handler never answers: the cancel
 * callback runs. */
static void probe_cancel(long ver) {
  ts_server t;
  t_reqopt o;
  t_resp r;

  if (!up(&t)) {
    return;
  }
  atomic_store(&cancel_ran, 0);
  atomic_store(&probe_started, 0);
  memset(&o, 0, sizeof(o));
  o.timeout_ms = 300;
  t_do_req(&r, &t, ver, "/cancel-probe", &o);
  T_EQ_INT(r.rc, CURLE_OPERATION_TIMEDOUT);
  T_EQ_INT(atomic_load(&probe_started), 1);
  if (!wait_flag(&cancel_ran, 2000)) {
    printf("#   cancel callback did not run within 2 s of the client "
           "closing\n");
    t_case_failed = 1;
  }
  t_resp_free(&r);
  ts_stop(&t);
}

static void test_cancel_h2(void) {
  probe_cancel(H2);
}

/* HTTP/1.1: while a handler works on a request the parser is paused and
 * h1_update_read() disables reading, so a client that closes its
 * connection is not noticed: the cancel callback does not run and the
 * connection (and its exchange) stay until the server shuts down. */
static void test_regress_h1_cancel_on_client_close(void) {
  probe_cancel(H1);
}

/* h2c prior knowledge on the cleartext listener: no HSTS there. */
static void test_h2c(void) {
  ts_server t;
  t_reqopt o;
  t_resp r;

  if (!up(&t)) {
    return;
  }
  memset(&o, 0, sizeof(o));
  o.h2c = 1;
  t_do_req(&r, &t, CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, "/echo/c?x=1", &o);
  T_EQ_INT(r.rc, CURLE_OK);
  T_EQ_INT(r.status, 200);
  T_EQ_INT(r.version, CURL_HTTP_VERSION_2_0);
  T_EQ_STR(t_jstr(r.json, "proto"), "h2");
  T_EQ_STR(t_jpath(r.json, "query", "x"), "1");
  check_security_headers(&r, 0);
  t_resp_free(&r);
  ts_stop(&t);
}

typedef struct bg_req {
  pthread_t th;
  const ts_server *t;
  long ver;
  const char *path;
  long timeout_ms;
  t_resp r;
} bg_req;

static void *bg_main(void *arg) {
  bg_req *b = arg;
  t_reqopt o;

  memset(&o, 0, sizeof(o));
  o.timeout_ms = b->timeout_ms;
  t_do_req(&b->r, b->t, b->ver, b->path, &o);
  return NULL;
}

/* Shuts down with a /cancel-probe in flight: gw_server_join returns within
 * shutdown_grace_ms (500) plus a margin, the cancel callback has run, the
 * client's connection was closed (not left to its 5 s timeout), and the
 * port no longer accepts. */
static void shutdown_with_probe(long ver) {
  ts_server t;
  bg_req b;
  double t0, dt;
  t_resp r;

  if (!up(&t)) {
    return;
  }
  atomic_store(&cancel_ran, 0);
  atomic_store(&probe_started, 0);
  memset(&b, 0, sizeof(b));
  b.t = &t;
  b.ver = ver;
  b.path = "/cancel-probe";
  b.timeout_ms = 5000;
  if (pthread_create(&b.th, NULL, bg_main, &b) != 0) {
    T_ASSERT(0);
    ts_stop(&t);
    return;
  }
  T_ASSERT(wait_flag(&probe_started, 3000));
  t0 = t_now_ms();
  gw_server_shutdown(t.srv);
  gw_server_shutdown(t.srv); /* twice is harmless */
  gw_server_join(t.srv);
  dt = t_now_ms() - t0;
  if (dt > 500 + 700) {
    printf("#   gw_server_join took %.0f ms (grace 500)\n", dt);
    t_case_failed = 1;
  }
  T_EQ_INT(atomic_load(&cancel_ran), 1);
  /* Listeners are closed. */
  t_do_req(&r, &t, ver, "/healthz", NULL);
  T_EQ_INT(r.rc, CURLE_COULDNT_CONNECT);
  t_resp_free(&r);
  /* The connections cut off at the end of the grace period are closed by
   * gw_server_del (libevent finalizes the bufferevents when the base is
   * freed), not by gw_server_join. */
  t0 = t_now_ms();
  gw_server_del(t.srv);
  t.srv = NULL;
  pthread_join(b.th, NULL);
  dt = t_now_ms() - t0;
  T_ASSERT(b.r.rc != CURLE_OK || b.r.status != 200);
  T_ASSERT(b.r.rc != CURLE_OPERATION_TIMEDOUT);
  if (dt > 1000) {
    printf("#   client still connected %.0f ms after gw_server_del\n", dt);
    t_case_failed = 1;
  }
  t_resp_free(&b.r);
  ts_stop(&t);
}

static void test_shutdown_h2(void) {
  shutdown_with_probe(H2);
}

static void test_shutdown_h1(void) {
  shutdown_with_probe(H1);
}

/* Shutdown with idle keep-alive connections and nothing in flight returns
 * at once, not after the grace period. */
static void test_shutdown_idle(void) {
  ts_server t;
  CURL *e[2];
  t_resp r[2];
  t_upload u;
  double t0, dt;

  if (!up(&t)) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    e[i] = curl_easy_init();
    memset(&r[i], 0, sizeof(r[i]));
    t_setup_easy(e[i], &t, both[i], "/healthz", NULL, &r[i], &u);
    T_EQ_INT(curl_easy_perform(e[i]), CURLE_OK); /* connection kept */
  }
  t0 = t_now_ms();
  gw_server_shutdown(t.srv);
  gw_server_join(t.srv);
  dt = t_now_ms() - t0;
  if (dt > 300) {
    printf("#   idle shutdown took %.0f ms\n", dt);
    t_case_failed = 1;
  }
  for (int i = 0; i < 2; i++) {
    curl_easy_cleanup(e[i]);
  }
  ts_stop(&t);
}

/* One worker: /async is answered by /release on another connection, which
 * is then on the same worker thread. */
static void test_async(void) {
  ts_server t;

  if (ts_start(&t, 1, NULL, add_routes) != 0) {
    T_ASSERT(0);
    return;
  }
  for (int i = 0; i < 2; i++) {
    bg_req b;
    t_resp r;

    memset(&b, 0, sizeof(b));
    b.t = &t;
    b.ver = both[i];
    b.path = "/async";
    b.timeout_ms = 5000;
    atomic_store(&async_cancelled, 0);
    if (pthread_create(&b.th, NULL, bg_main, &b) != 0) {
      T_ASSERT(0);
      break;
    }
    T_ASSERT(wait_flag(&async_waiting, 3000));
    t_sleep_ms(50); /* still waiting, not answered */
    T_EQ_INT(atomic_load(&async_waiting), 1);
    t_do_req(&r, &t, both[i], "/release", NULL);
    T_EQ_INT(r.status, 200);
    T_ASSERT(json_is_true(json_object_get(r.json, "release")));
    t_resp_free(&r);
    pthread_join(b.th, NULL);
    T_EQ_INT(b.r.rc, CURLE_OK);
    T_EQ_INT(b.r.status, 200);
    T_ASSERT(json_is_true(json_object_get(b.r.json, "released")));
    check_security_headers(&b.r, 1);
    T_EQ_INT(atomic_load(&async_cancelled), 0);
    t_resp_free(&b.r);

    /* Nothing waiting now. */
    t_do_req(&r, &t, both[i], "/release", NULL);
    T_ASSERT(t_resp_is_error(&r, 404, "nothing_waiting"));
    t_resp_free(&r);
  }
  ts_stop(&t);
}

/* ---- connection limits and the handshake timer ------------------------ */

static void tweak_limits(gw_config *c) {
  c->max_connections_per_ip = 2;
  c->handshake_timeout_ms = 300;
}

/* Milliseconds until the server closes |fd| (reads return 0 or an error),
 * or -1 after the 3 s receive timeout. */
static double ms_until_closed(int fd) {
  double t0 = t_now_ms();
  char b[256];
  ssize_t n;

  while ((n = recv(fd, b, sizeof(b), 0)) > 0) {
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return -1;
  }
  return t_now_ms() - t0;
}

static void test_limits(void) {
  ts_server t;
  int a, b, c;
  double d;
  t_resp r;

  if (ts_start(&t, 2, tweak_limits, add_routes) != 0) {
    T_ASSERT(0);
    return;
  }
  a = t_tcp_connect(t.port, 3, 0);
  b = t_tcp_connect(t.port, 3, 0);
  t_sleep_ms(100); /* accepted by now */
  c = t_tcp_connect(t.port, 3, 0);
  T_ASSERT(a >= 0 && b >= 0 && c >= 0);
  /* The third from the same address is closed at once. */
  d = ms_until_closed(c);
  T_ASSERT(d >= 0 && d < 250);
  close(c);
  /* The first two are closed by the handshake timer (300 ms). */
  d = ms_until_closed(a);
  T_ASSERT(d >= 0 && d < 1000);
  d = ms_until_closed(b);
  T_ASSERT(d >= 0 && d < 1000);
  close(a);
  close(b);
  t_sleep_ms(100);
  /* Their slots were given back. */
  t_do_req(&r, &t, H2, "/healthz", NULL);
  T_EQ_INT(r.rc, CURLE_OK);
  T_EQ_INT(r.status, 503);
  t_resp_free(&r);
  t_do_req(&r, &t, H1, "/healthz", NULL);
  T_EQ_INT(r.status, 503);
  t_resp_free(&r);
  T_EQ_INT(ts_metric(&t, "mpkigw_connections_rejected_total"), 1);
  T_EQ_INT(ts_metric(&t, "mpkigw_tls_handshake_failures_total"), 2);
  ts_stop(&t);
}

/* A certificate that does not exist fails gw_server_new with GW_ERR_TLS
 * and a reason; an address that cannot be bound, or a port another server
 * holds (despite SO_REUSEPORT), fails with GW_ERR_IO. */
static void test_new_errors(void) {
  ts_server t;
  gw_server *s = NULL;
  char err[512] = "";
  char *saved;

  if (ts_start(&t, 1, NULL, NULL) != 0) {
    T_ASSERT(0);
    return;
  }
  saved = t.cfg->tls_cert;
  t.cfg->tls_cert = (char *)"/nonexistent/cert.pem";
  T_EQ_INT(gw_server_new(&s, t.cfg, t.router, NULL, err, sizeof(err)),
           GW_ERR_TLS);
  T_ASSERT(s == NULL);
  T_ASSERT(strstr(err, "/nonexistent/cert.pem") != NULL);
  t.cfg->tls_cert = saved;
  saved = t.cfg->listen_host;
  t.cfg->listen_host = (char *)"192.0.2.1"; /* not a local address */
  err[0] = '\0';
  T_EQ_INT(gw_server_new(&s, t.cfg, t.router, NULL, err, sizeof(err)),
           GW_ERR_IO);
  T_ASSERT(s == NULL);
  T_ASSERT(strstr(err, "192.0.2.1") != NULL);
  t.cfg->listen_host = saved;
  t.cfg->listen_port = t.port; /* the running server's */
  err[0] = '\0';
  T_EQ_INT(gw_server_new(&s, t.cfg, t.router, NULL, err, sizeof(err)),
           GW_ERR_IO);
  T_ASSERT(s == NULL);
  T_ASSERT(err[0] != '\0');
  ts_stop(&t);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  gw_log_open(NULL, GW_LOG_ERROR);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  T_RUN_CHILD(test_start_stop);
  T_RUN_CHILD(test_echo);
  T_RUN_CHILD(test_early_answers_h2);
  T_RUN_CHILD(test_regress_h1_early_answer_without_body);
  T_RUN_CHILD(test_head);
  T_RUN_CHILD(test_body);
  T_RUN_CHILD(test_body_too_large_h1);
  T_RUN_CHILD(test_regress_h2_413_reset_hides_response);
  T_RUN_CHILD(test_healthz);
  T_RUN_CHILD(test_metrics);
  T_RUN_CHILD(test_plain_http_on_tls_port);
  T_RUN_CHILD(test_cancel_h2);
  T_RUN_CHILD(test_regress_h1_cancel_on_client_close);
  T_RUN_CHILD(test_h2c);
  T_RUN_CHILD(test_async);
  T_RUN_CHILD(test_shutdown_h2);
  T_RUN_CHILD(test_shutdown_h1);
  T_RUN_CHILD(test_shutdown_idle);
  T_RUN_CHILD(test_limits);
  T_RUN_CHILD(test_new_errors);
  curl_global_cleanup();
  gw_log_close();
  return T_DONE();
}
