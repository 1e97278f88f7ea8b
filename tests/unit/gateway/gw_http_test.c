/* gw_http_test.c — unit tests for gateway/gw_http.c without a network.
 *
 * A fake server/worker/connection (gw_server_int.h) carries what gw_http.c
 * reads: the config limits, the router, a metrics shard and the exchange
 * pool. Parsing (target, headers, pseudo-headers, Content-Length) is tested
 * on its own; responses go through gw_h1_submit into a bufferevent on a
 * socketpair whose output buffer is read back without running a loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "gw_err.h"
#include "gw_form.h"
#include "gw_http.h"
#include "gw_log.h"
#include "gw_metrics.h"
#include "gw_router.h"
#include "gw_server_int.h"
#include "harness.h"
#include "support/t_http.h"
#include "support/t_json.h"

static gw_config cfg;
static gw_server srv;
static gw_worker wk;
static gw_conn conn;
static gw_metrics *met;
static gw_router *router;
static struct event_base *base;
static int handler_calls;

static void h_thing(gw_exch *x) {
  handler_calls++;
  gw_resp_send(x, 200, "text/plain", "hello", 5);
}

static void h_page(gw_exch *x) {
  handler_calls++;
  gw_resp_send(x, 200, "text/html; charset=utf-8", "<p>", 3);
}

static void h_body(gw_exch *x) {
  char n[32];

  handler_calls++;
  snprintf(n, sizeof(n), "%zu", gw_exch_req(x)->body.len);
  gw_resp_send(x, 200, "text/plain", n, strlen(n));
}

static void h_cached(gw_exch *x) {
  handler_calls++;
  gw_resp_header(x, "cache-control", "max-age=60");
  gw_resp_header(x, "content-security-policy", "default-src 'self'");
  gw_resp_send(x, 200, "text/plain", "c", 1);
}

static void h_silent(gw_exch *x) {
  handler_calls++;
  (void)x; /* answers later (never, here) */
}

static void setup(void) {
  if (gw_router_new(&router) != GW_OK ||
      gw_router_add(router, "GET", "/thing", h_thing, 0, "thing") != GW_OK ||
      gw_router_add(router, "GET", "/page", h_page, 0, "page") != GW_OK ||
      gw_router_add(router, "POST", "/body", h_body, 100, "body") != GW_OK ||
      gw_router_add(router, "POST", "/big", h_body, 1 << 30, "big") != GW_OK ||
      gw_router_add(router, "GET", "/cached", h_cached, 0, "cached") != GW_OK ||
      gw_router_add(router, "GET", "/silent", h_silent, 0, "silent") != GW_OK ||
      gw_metrics_new(&met, 1) != GW_OK) {
    printf("# setup failed\n");
    exit(1);
  }
  cfg.max_header_list_size = 1024;
  cfg.max_header_count = 10;
  cfg.max_body_size = 1000;
  cfg.access_log = 0;
  srv.cfg = &cfg;
  srv.router = router;
  srv.metrics = met;
  srv.nworkers = 1;
  srv.workers = &wk;
  wk.srv = &srv;
  wk.m = gw_metrics_shard_get(met, 0);
  gw_buf_init(&wk.access_log, 1024 * 1024);
  conn.w = &wk;
  conn.fd = -1;
  conn.state = GW_CONN_OPEN;
  conn.proto = GW_PROTO_HTTP11;
  conn.h1_keepalive = 1;
  snprintf(conn.client_ip, sizeof(conn.client_ip), "192.0.2.7");
  gw_log_open(NULL, GW_LOG_ERROR);
}

static void teardown(void) {
  gw_worker_exch_pool_free(&wk);
  gw_buf_free(&wk.access_log);
  gw_router_del(router);
  gw_metrics_del(met);
}

static void on_conn_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg; /* never runs: the loop never runs */
}

/* A connection with a real output buffer: a bufferevent on one end of a
 * socketpair. The loop never runs, so output stays in the buffer.
 * in_callback keeps gw_h1_submit from driving the (unused) parser. Like a
 * real connection it has a timer, which gw_h1_submit arms. */
static int out_open(void) {
  int sv[2];

  if (!base) {
    base = event_base_new();
  }
  if (base && !conn.timer) {
    conn.timer = evtimer_new(base, on_conn_timer, NULL);
  }
  if (!base || !conn.timer || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    printf("#   event base, timer or socketpair: %s\n", strerror(errno));
    return -1;
  }
  close(sv[1]);
  conn.bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
  conn.in_callback = 1;
  conn.h1_keepalive = 1;
  conn.h1_paused = 0;
  memset(&conn.parser, 0, sizeof(conn.parser));
  return conn.bev ? 0 : -1;
}

/* Everything written to the connection so far, as a string (static). */
static const char *out_text(void) {
  static char text[65536];
  struct evbuffer *b = bufferevent_get_output(conn.bev);
  size_t n = evbuffer_get_length(b);

  if (n >= sizeof(text)) {
    n = sizeof(text) - 1;
  }
  /* The output is frozen at its start until the socket is "connected", so
   * evbuffer_copyout() refuses; pullup does not look at the freeze. */
  if (n) {
    memcpy(text, evbuffer_pullup(b, -1), n);
  }
  text[n] = '\0';
  return text;
}

static void out_close(void) {
  if (conn.bev) {
    bufferevent_free(conn.bev);
    conn.bev = NULL;
  }
  conn.in_callback = 0;
}

static gw_exch *new_x(void) {
  gw_exch *x = gw_exch_new(&conn, 0);

  if (!x) {
    printf("#   gw_exch_new failed\n");
    exit(1);
  }
  return x;
}

static int add_h(gw_exch *x, const char *name, const char *value) {
  return gw_exch_add_header(x, name, strlen(name), value, strlen(value));
}

static int add_p(gw_exch *x, const char *name, const char *value) {
  return gw_exch_add_pseudo(x, name, strlen(name), value, strlen(value));
}

static int set_t(gw_exch *x, const char *t) {
  return gw_exch_set_target(x, t, strlen(t));
}

/* ---- tests ------------------------------------------------------------ */

static void test_reason(void) {
  T_EQ_STR(gw_http_reason(200), "OK");
  T_EQ_STR(gw_http_reason(100), "Continue");
  T_EQ_STR(gw_http_reason(404), "Not Found");
  T_EQ_STR(gw_http_reason(405), "Method Not Allowed");
  T_EQ_STR(gw_http_reason(408), "Request Timeout");
  T_EQ_STR(gw_http_reason(413), "Content Too Large");
  T_EQ_STR(gw_http_reason(414), "URI Too Long");
  T_EQ_STR(gw_http_reason(431), "Request Header Fields Too Large");
  T_EQ_STR(gw_http_reason(503), "Service Unavailable");
  T_EQ_STR(gw_http_reason(505), "HTTP Version Not Supported");
  T_EQ_STR(gw_http_reason(418), "");
  T_EQ_STR(gw_http_reason(0), "");
  T_EQ_STR(gw_http_reason(-1), "");
}

static void test_now_monotonic(void) {
  uint64_t a = gw_now_ns(), b, c;
  struct timespec ts = {0, 20 * 1000 * 1000};

  for (int i = 0; i < 100000; i++) {
    b = gw_now_ns();
    if (b < a) {
      T_ASSERT(b >= a);
      break;
    }
    a = b;
  }
  b = gw_now_ns();
  nanosleep(&ts, NULL);
  c = gw_now_ns();
  T_ASSERT(c - b >= 20 * 1000 * 1000ull);
  T_ASSERT(c - b < 2000 * 1000 * 1000ull);
}

static void test_target_split(void) {
  gw_exch *x = new_x();

  T_EQ_INT(set_t(x, "/a/b?x=1&y=%20"), GW_OK);
  T_EQ_STR(x->req.target, "/a/b?x=1&y=%20");
  T_EQ_STR(x->req.path, "/a/b");
  T_EQ_STR(x->req.query, "x=1&y=%20");
  T_EQ_INT(x->reject_status, 0);
  gw_exch_free(x);

  x = new_x();
  T_EQ_INT(set_t(x, "/only"), GW_OK);
  T_EQ_STR(x->req.path, "/only");
  T_ASSERT(x->req.query == NULL);
  gw_exch_free(x);

  x = new_x();
  T_EQ_INT(set_t(x, "/?"), GW_OK);
  T_EQ_STR(x->req.path, "/");
  T_EQ_STR(x->req.query, "");
  gw_exch_free(x);

  x = new_x();
  T_EQ_INT(set_t(x, "/p?q?r=/s"), GW_OK);
  T_EQ_STR(x->req.path, "/p");
  T_EQ_STR(x->req.query, "q?r=/s");
  gw_exch_free(x);

  /* Not NUL-terminated input: only |n| bytes are read. */
  x = new_x();
  T_EQ_INT(gw_exch_set_target(x, "/abc?d=1XXXX", 8), GW_OK);
  T_EQ_STR(x->req.path, "/abc");
  T_EQ_STR(x->req.query, "d=1");
  gw_exch_free(x);
}

static void test_target_absolute_form(void) {
  static const struct {
    const char *in, *path, *query;
  } cases[] = {
      {"http://example.com/x?y=1", "/x", "y=1"},
      {"HTTPS://example.com:8443/a/b", "/a/b", NULL},
      {"https://example.com", "/", NULL},
      {"http://host", "/", NULL},
      {"http://h/", "/", NULL},
      {"https://[::1]:8443/v?", "/v", ""},
  };

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    gw_exch *x = new_x();
    int rv = set_t(x, cases[i].in);
    if (rv != GW_OK || !x->req.path || strcmp(x->req.path, cases[i].path) ||
        (cases[i].query == NULL) != (x->req.query == NULL) ||
        (cases[i].query && strcmp(cases[i].query, x->req.query))) {
      printf("#   %s: rv %d path %s query %s\n", cases[i].in, rv,
             x->req.path ? x->req.path : "(null)",
             x->req.query ? x->req.query : "(null)");
      t_case_failed = 1;
    }
    /* The raw target is kept as sent. */
    T_EQ_STR(x->req.target, cases[i].in);
    gw_exch_free(x);
  }
}

/* RFC 9112 §3.2.2: "http://a" (authority, empty path) is a valid
 * absolute-form target meaning "/". gw_exch_set_target only strips the
 * scheme when n > 8, so an 8-byte "http://a" is refused with 400
 * invalid_request_target. */
static void test_regress_absolute_form_short_authority(void) {
  gw_exch *x = new_x();

  T_EQ_INT(set_t(x, "http://a"), GW_OK);
  T_EQ_INT(x->reject_status, 0);
  T_EQ_STR(x->req.path, "/");
  gw_exch_free(x);
}

static void test_target_rejects(void) {
  static char big[GW_MAX_TARGET + 2];
  gw_exch *x;

  x = new_x();
  T_EQ_INT(set_t(x, ""), GW_ERR_INVALID);
  T_EQ_INT(x->reject_status, 400);
  T_EQ_STR(x->reject_code, "invalid_request_target");
  gw_exch_free(x);

  x = new_x();
  T_EQ_INT(set_t(x, "*"), GW_ERR_INVALID);
  T_EQ_INT(x->reject_status, 400);
  gw_exch_free(x);

  x = new_x();
  T_EQ_INT(set_t(x, "a/b"), GW_ERR_INVALID);
  T_EQ_INT(x->reject_status, 400);
  gw_exch_free(x);

  x = new_x();
  T_EQ_INT(set_t(x, "ftp://h/x"), GW_ERR_INVALID);
  gw_exch_free(x);

  x = new_x();
  T_EQ_INT(set_t(x, "/one"), GW_OK);
  T_EQ_INT(set_t(x, "/two"), GW_ERR_INVALID);
  T_EQ_INT(x->reject_status, 400);
  T_EQ_STR(x->reject_code, "invalid_request");
  T_EQ_STR(x->req.path, "/one");
  gw_exch_free(x);

  /* 8192 bytes is the limit; one more is 414. */
  memset(big, 'a', sizeof(big) - 1);
  big[0] = '/';
  x = new_x();
  T_EQ_INT(gw_exch_set_target(x, big, GW_MAX_TARGET), GW_OK);
  T_EQ_INT(strlen(x->req.path), GW_MAX_TARGET);
  gw_exch_free(x);
  x = new_x();
  T_EQ_INT(gw_exch_set_target(x, big, GW_MAX_TARGET + 1), GW_ERR_TOO_LARGE);
  T_EQ_INT(x->reject_status, 414);
  T_EQ_STR(x->reject_code, "uri_too_long");
  T_ASSERT(x->req.target == NULL);
  /* The first problem is the one reported. */
  gw_exch_reject(x, 400, "other", "later");
  T_EQ_INT(x->reject_status, 414);
  T_EQ_STR(x->reject_code, "uri_too_long");
  T_ASSERT(strstr(x->reject_msg, "8192") != NULL);
  gw_exch_free(x);
}

static void test_header_list_size(void) {
  char v[1100];
  gw_exch *x = new_x();

  /* 1 + 991 + 32 = 1024: exactly the limit. */
  memset(v, 'v', sizeof(v));
  T_EQ_INT(gw_exch_add_header(x, "a", 1, v, 991), GW_OK);
  T_EQ_INT(x->header_bytes, 1024);
  T_EQ_INT(x->reject_status, 0);
  /* An empty field still costs 32 + its name. */
  T_EQ_INT(gw_exch_add_header(x, "b", 1, "", 0), GW_ERR_TOO_LARGE);
  T_EQ_INT(x->reject_status, 431);
  T_EQ_STR(x->reject_code, "headers_too_large");
  T_EQ_INT(x->header_bytes, 1024 + 33);
  gw_exch_free(x);

  /* Pseudo-headers count too (RFC 9113 §6.5.2 counts every field). */
  x = new_x();
  T_EQ_INT(gw_exch_add_pseudo(x, ":path", 5, v, 900), GW_ERR_INVALID);
  gw_exch_free(x);
  x = new_x();
  v[0] = '/';
  T_EQ_INT(gw_exch_add_pseudo(x, ":path", 5, v, 900), GW_OK);
  T_EQ_INT(x->header_bytes, 5 + 900 + 32);
  T_EQ_INT(add_p(x, ":method", "GET"), GW_OK);
  T_EQ_INT(gw_exch_add_header(x, "x-long", 6, v, 60), GW_ERR_TOO_LARGE);
  T_EQ_INT(x->reject_status, 431);
  gw_exch_free(x);

  /* After a rejection, further headers are counted but not stored. */
  x = new_x();
  T_EQ_INT(gw_exch_add_header(x, "a", 1, v, 1000), GW_ERR_TOO_LARGE);
  T_EQ_INT(x->req.nheaders, 0);
  gw_exch_free(x);
}

static void test_header_count(void) {
  gw_exch *x = new_x();
  char name[16];

  for (int i = 0; i < 10; i++) {
    snprintf(name, sizeof(name), "h%d", i);
    T_EQ_INT(add_h(x, name, "1"), GW_OK);
  }
  T_EQ_INT(x->reject_status, 0);
  T_EQ_INT(x->req.nheaders, 10);
  T_EQ_INT(add_h(x, "h10", "1"), GW_ERR_TOO_LARGE);
  T_EQ_INT(x->reject_status, 431);
  T_EQ_STR(x->reject_code, "too_many_headers");
  T_EQ_INT(x->req.nheaders, 10);
  gw_exch_free(x);

  /* Pseudo-headers are fields as well. */
  x = new_x();
  for (int i = 0; i < 10; i++) {
    T_EQ_INT(add_p(x, ":scheme", "https"), GW_OK);
  }
  T_EQ_INT(add_h(x, "a", "b"), GW_ERR_TOO_LARGE);
  T_EQ_STR(x->reject_code, "too_many_headers");
  gw_exch_free(x);
}

static void test_headers_stored(void) {
  int saved_size = cfg.max_header_list_size, saved_count = cfg.max_header_count;
  char name[32], value[128];
  gw_exch *x;

  cfg.max_header_list_size = 64 * 1024;
  cfg.max_header_count = 100;
  x = new_x();
  T_EQ_INT(add_h(x, "X-Mixed-Case", "Value Kept"), GW_OK);
  T_EQ_INT(add_h(x, "Host", "example.org:8443"), GW_OK);
  T_EQ_INT(add_h(x, "host", "second.example"), GW_OK);
  T_EQ_STR(x->req.headers[0].name, "x-mixed-case");
  T_EQ_STR(x->req.headers[0].value, "Value Kept");
  T_EQ_STR(gw_req_header(&x->req, "X-MIXED-case"), "Value Kept");
  T_EQ_STR(gw_req_header(&x->req, "host"), "example.org:8443");
  T_EQ_STR(x->req.authority, "example.org:8443");
  T_ASSERT(gw_req_header(&x->req, "absent") == NULL);
  /* 60 more: the array grows past 16 and 32, and the strings spill out of
   * the 2 KiB inline arena into heap blocks (freed by gw_exch_free, which
   * LeakSanitizer checks in the sanitizer build). */
  for (int i = 0; i < 60; i++) {
    snprintf(name, sizeof(name), "h-%d", i);
    memset(value, 'a' + i % 26, 100);
    value[100] = '\0';
    T_EQ_INT(add_h(x, name, value), GW_OK);
  }
  T_EQ_INT(x->req.nheaders, 63);
  T_ASSERT(x->arena_blocks != NULL);
  for (int i = 0; i < 60; i++) {
    const char *v;
    snprintf(name, sizeof(name), "H-%d", i);
    v = gw_req_header(&x->req, name);
    if (!v || strlen(v) != 100 || v[0] != 'a' + i % 26 ||
        v[99] != 'a' + i % 26) {
      printf("#   header %s: %s\n", name, v ? v : "(null)");
      t_case_failed = 1;
      break;
    }
  }
  T_EQ_STR(x->req.headers[0].name, "x-mixed-case");
  gw_exch_free(x);
  /* A header value with a NUL-free binary byte is kept as is. */
  x = new_x();
  T_EQ_INT(gw_exch_add_header(x, "a", 1, "x\xffy", 3), GW_OK);
  T_EQ_STR(gw_req_header(&x->req, "a"), "x\xffy");
  gw_exch_free(x);
  cfg.max_header_list_size = saved_size;
  cfg.max_header_count = saved_count;
}

static void test_content_length(void) {
  static const char *bad[] = {
      "",   "12a",  "-1",  "+5",  " 5",
      "5 ", "0x10", "1,2", "1.0", "000000000000000000000000"};
  gw_exch *x = new_x();

  T_EQ_INT(add_h(x, "Content-Length", "123"), GW_OK);
  T_EQ_INT(x->req.has_content_length, 1);
  T_EQ_INT(x->req.content_length, 123);
  /* A second Content-Length is refused. */
  T_EQ_INT(add_h(x, "content-length", "123"), GW_ERR_INVALID);
  T_EQ_INT(x->reject_status, 400);
  T_EQ_STR(x->reject_code, "invalid_content_length");
  gw_exch_free(x);

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    x = new_x();
    if (add_h(x, "content-length", bad[i]) != GW_ERR_INVALID ||
        x->reject_status != 400 || x->req.has_content_length) {
      printf("#   Content-Length \"%s\" accepted (%zu)\n", bad[i],
             x->req.content_length);
      t_case_failed = 1;
    }
    gw_exch_free(x);
  }

  x = new_x();
  T_EQ_INT(add_h(x, "content-length", "0"), GW_OK);
  T_EQ_INT(x->req.has_content_length, 1);
  T_EQ_INT(x->req.content_length, 0);
  gw_exch_free(x);

  /* Too large for size_t: must not wrap to a small number. */
  x = new_x();
  T_EQ_INT(add_h(x, "content-length", "99999999999999999999999"), GW_OK);
  T_ASSERT(x->req.content_length > ((size_t)1 << 40));
  gw_exch_free(x);
  x = new_x();
  T_EQ_INT(add_h(x, "content-length", "18446744073709551616"), GW_OK);
  T_ASSERT(x->req.content_length > ((size_t)1 << 40));
  gw_exch_free(x);
}

static void test_pseudo(void) {
  gw_exch *x = new_x();

  T_EQ_INT(add_p(x, ":method", "POST"), GW_OK);
  T_EQ_STR(x->req.method, "POST");
  T_EQ_INT(add_p(x, ":scheme", "https"), GW_OK);
  T_EQ_INT(add_p(x, ":authority", "gw.example:443"), GW_OK);
  T_EQ_STR(x->req.authority, "gw.example:443");
  T_EQ_INT(add_p(x, ":path", "/x?y=z"), GW_OK);
  T_EQ_STR(x->req.path, "/x");
  T_EQ_STR(x->req.query, "y=z");
  T_EQ_INT(x->header_count, 4);
  T_EQ_INT(x->req.nheaders, 0); /* pseudo-headers are not regular headers */
  T_EQ_INT(add_p(x, ":path", "/other"), GW_ERR_INVALID);
  T_EQ_INT(x->reject_status, 400);
  gw_exch_free(x);

  x = new_x();
  T_EQ_INT(add_p(x, ":method", ""), GW_ERR_INVALID);
  T_EQ_STR(x->reject_code, "invalid_method");
  gw_exch_free(x);
  x = new_x();
  T_EQ_INT(add_p(x, ":method", "0123456789ABCDEF"), GW_ERR_INVALID);
  T_EQ_INT(x->reject_status, 400);
  gw_exch_free(x);
  x = new_x();
  T_EQ_INT(add_p(x, ":method", "0123456789ABCDE"), GW_OK);
  T_EQ_STR(x->req.method, "0123456789ABCDE");
  gw_exch_free(x);
}

static void test_query(void) {
  gw_exch *x = new_x();
  gw_form f;

  T_EQ_INT(set_t(x, "/q?a=1&b=x%20y+z&&c"), GW_OK);
  memset(&f, 0, sizeof(f));
  T_EQ_INT(gw_req_query(&x->req, &f), GW_OK);
  T_EQ_INT(f.npairs, 3);
  T_EQ_STR(gw_form_get(&f, "a"), "1");
  T_EQ_STR(gw_form_get(&f, "b"), "x y z");
  T_EQ_STR(gw_form_get(&f, "c"), "");
  gw_form_free(&f);
  gw_exch_free(x);

  x = new_x();
  T_EQ_INT(set_t(x, "/q"), GW_OK);
  memset(&f, 0xff, sizeof(f)); /* zeroed by gw_req_query */
  T_EQ_INT(gw_req_query(&x->req, &f), GW_OK);
  T_EQ_INT(f.npairs, 0);
  gw_form_free(&f);
  gw_exch_free(x);

  x = new_x();
  T_EQ_INT(set_t(x, "/q?a=%zz"), GW_OK);
  memset(&f, 0, sizeof(f));
  T_EQ_INT(gw_req_query(&x->req, &f), GW_ERR_INVALID);
  gw_form_free(&f);
  gw_exch_free(x);
}

static int cancels;
static void on_cancel(void *arg) {
  cancels += *(int *)arg;
}

static void test_cancel(void) {
  gw_exch *x = new_x();
  int one = 1;

  gw_exch_cancel(x); /* nothing registered: no-op */
  gw_exch_on_cancel(x, on_cancel, &one);
  T_EQ_INT(cancels, 0);
  gw_exch_cancel(x);
  T_EQ_INT(cancels, 1);
  gw_exch_cancel(x); /* runs once */
  T_EQ_INT(cancels, 1);
  gw_exch_free(x);

  /* Not after a response. */
  x = new_x();
  gw_exch_on_cancel(x, on_cancel, &one);
  x->responded = 1;
  gw_exch_cancel(x);
  T_EQ_INT(cancels, 1);
  gw_exch_free(x);
}

static void test_pool_reuse(void) {
  gw_exch *x = new_x(), *y;
  int one = 1;

  set_t(x, "/a?b");
  add_h(x, "content-length", "5");
  add_h(x, "x", "y");
  gw_exch_on_cancel(x, on_cancel, &one);
  gw_exch_reject(x, 400, "c", "m");
  x->responded = 1;
  gw_buf_append(&x->resp_body, "abc", 3);
  gw_exch_free(x);
  y = new_x();
  T_ASSERT(y == x); /* recycled */
  T_ASSERT(y->conn == &conn);
  T_ASSERT(y->req.target == NULL && y->req.path == NULL &&
           y->req.query == NULL && y->req.authority == NULL);
  T_EQ_INT(y->req.nheaders, 0);
  T_EQ_INT(y->req.has_content_length, 0);
  T_EQ_INT(y->header_bytes, 0);
  T_EQ_INT(y->header_count, 0);
  T_EQ_INT(y->reject_status, 0);
  T_EQ_INT(y->responded, 0);
  T_EQ_INT(y->nresp_headers, 0);
  T_EQ_INT(y->resp_body.len, 0);
  T_EQ_INT(y->req.body.len, 0);
  T_EQ_INT(y->req.body.cap, 0); /* no body until a route allows one */
  T_ASSERT(y->cancel_fn == NULL);
  T_ASSERT(y->req.match.route == NULL);
  T_EQ_STR(y->req.client_ip, "192.0.2.7");
  T_EQ_INT(y->req.proto, GW_PROTO_HTTP11);
  T_EQ_STR(y->req.method, "");
  gw_exch_free(y);
}

static void test_resp_header_limits(void) {
  gw_exch *x = new_x();
  char name[16];

  for (int i = 0; i < GW_RESP_MAX_APP_HEADERS; i++) {
    snprintf(name, sizeof(name), "x-h%d", i);
    T_EQ_INT(gw_resp_header(x, name, "v"), GW_OK);
  }
  T_EQ_INT(gw_resp_header(x, "x-more", "v"), GW_ERR_LIMIT);
  gw_exch_free(x);

  x = new_x();
  T_EQ_INT(gw_resp_header(x, "x-a", "a\r\nset-cookie: evil"), GW_ERR_INVALID);
  T_EQ_INT(gw_resp_header(x, "x-a", "a\nb"), GW_ERR_INVALID);
  T_EQ_INT(gw_resp_header(x, "x-a: b", "c"), GW_ERR_INVALID);
  T_EQ_INT(gw_resp_header(x, "x a", "c"), GW_ERR_INVALID);
  T_EQ_INT(x->nresp_headers, 0);
  x->responded = 1;
  T_EQ_INT(gw_resp_header(x, "x-late", "v"), GW_ERR_INVALID);
  gw_exch_free(x);
}

/* Runs one request through headers_done/body/request_done the way the
 * transports do and returns the written response (static). */
static const char *run_req(const char *method, const char *target,
                           const char *clen, const char *body, int secure) {
  static char copy[65536];
  gw_exch *x;

  if (out_open() != 0) {
    return "";
  }
  conn.secure = secure;
  x = new_x();
  snprintf(x->req.method, sizeof(x->req.method), "%s", method);
  if (target) {
    set_t(x, target);
  }
  add_h(x, "host", "h");
  if (clen) {
    add_h(x, "content-length", clen);
  }
  gw_exch_headers_done(x);
  if (body) {
    gw_exch_body(x, (const uint8_t *)body, strlen(body));
  }
  if (!x->responded) {
    gw_exch_request_done(x);
  }
  snprintf(copy, sizeof(copy), "%s", out_text());
  gw_exch_free(x);
  out_close();
  conn.secure = 0;
  return copy;
}

/* Checks the JSON error body {"error": code, "message": ...}. */
static int json_error_is(const char *text, const char *code) {
  json_error_t je;
  json_t *j = json_loads(t_http_body(text), 0, &je);
  int ok = t_json_is_error(j, code) && json_object_size(j) == 2;

  if (!ok) {
    printf("#   body %s, expected error %s\n", t_http_body(text), code);
  }
  json_decref(j);
  return ok;
}

/* |method| /thing in cleartext: 200 from its handler, called once, with
 * the length of its 5-byte body. Returns the response (static). */
static const char *thing(const char *method) {
  const char *t;

  handler_calls = 0;
  t = run_req(method, "/thing", NULL, NULL, 0);
  T_EQ_INT(handler_calls, 1);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 200 OK\r\n"));
  T_EQ_STR(t_hdr_get(t, "content-length"), "5");
  return t;
}

static void test_response_security_headers(void) {
  const char *t = thing("GET");

  T_EQ_STR(t_hdr_get(t, "content-type"), "text/plain");
  T_EQ_STR(t_hdr_get(t, "x-content-type-options"), "nosniff");
  T_EQ_STR(t_hdr_get(t, "referrer-policy"), "no-referrer");
  T_EQ_STR(t_hdr_get(t, "cache-control"), "no-store");
  T_EQ_STR(t_hdr_get(t, "content-security-policy"),
           "default-src 'none'; frame-ancestors 'none'");
  T_EQ_STR(t_hdr_get(t, "server"), "mpkigw");
  T_ASSERT(t_hdr_get(t, "date") != NULL);
  T_ASSERT(t_hdr_get(t, "strict-transport-security") == NULL); /* cleartext */
  T_ASSERT(t_hdr_get(t, "x-frame-options") == NULL);
  T_ASSERT(t_hdr_get(t, "connection") == NULL); /* keep-alive */
  T_EQ_STR(t_http_body(t), "hello");

  t = run_req("GET", "/thing", NULL, NULL, 1);
  T_EQ_STR(t_hdr_get(t, "strict-transport-security"),
           "max-age=63072000; includeSubDomains");

  t = run_req("GET", "/page", NULL, NULL, 1);
  T_EQ_STR(t_hdr_get(t, "x-frame-options"), "DENY");
  T_ASSERT(t_hdr_get(t, "content-security-policy") != NULL &&
           strstr(t_hdr_get(t, "content-security-policy"),
                  "frame-ancestors 'none'") != NULL);

  /* Handler-set Cache-Control and CSP replace the defaults, once. */
  t = run_req("GET", "/cached", NULL, NULL, 0);
  T_EQ_INT(t_hdr_count(t, "cache-control"), 1);
  T_EQ_STR(t_hdr_get(t, "cache-control"), "max-age=60");
  T_EQ_INT(t_hdr_count(t, "content-security-policy"), 1);
  T_EQ_STR(t_hdr_get(t, "content-security-policy"), "default-src 'self'");
}

static void test_response_head(void) {
  T_EQ_STR(t_http_body(thing("HEAD")), "");
}

static void test_response_errors(void) {
  const char *t;

  handler_calls = 0;
  t = run_req("GET", "/nope", NULL, NULL, 0);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 404 Not Found\r\n"));
  T_EQ_STR(t_hdr_get(t, "content-type"), "application/json");
  T_ASSERT(json_error_is(t, "not_found"));
  T_EQ_STR(t_hdr_get(t, "x-content-type-options"), "nosniff");

  t = run_req("DELETE", "/thing", NULL, NULL, 0);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 405 Method Not Allowed\r\n"));
  T_EQ_STR(t_hdr_get(t, "allow"), "GET, HEAD");
  T_ASSERT(json_error_is(t, "method_not_allowed"));

  t = run_req("GET", "/a/../thing", NULL, NULL, 0);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 400 "));
  T_ASSERT(json_error_is(t, "invalid_path"));

  t = run_req("GET", NULL, NULL, NULL, 0);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 400 "));
  T_ASSERT(json_error_is(t, "invalid_request"));

  t = run_req("GET", "http://x/thing?x", NULL, NULL, 0); /* absolute-form */
  T_ASSERT(t_starts_with(t, "HTTP/1.1 200 "));

  /* Declared body over the route's cap: refused before any body. */
  t = run_req("POST", "/body", "101", NULL, 0);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 413 Content Too Large\r\n"));
  T_ASSERT(json_error_is(t, "body_too_large"));
  t = run_req("POST", "/body", "100", "0123456789", 0);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 200 "));
  T_EQ_STR(t_http_body(t), "10");
  /* A streamed body over the cap (no Content-Length): 413 at the cap. */
  t = run_req("POST", "/body", NULL,
              "0123456789012345678901234567890123456789012345678901234567890"
              "1234567890123456789012345678901234567890",
              0);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 413 "));
  /* limits.max_body_size (1000 here) is the ceiling of a route's cap. */
  t = run_req("POST", "/big", "1001", NULL, 0);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 413 "));
  t = run_req("POST", "/big", "1000", NULL, 0);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 200 "));
  /* A route without max_body takes no body. */
  t = run_req("GET", "/thing", "1", NULL, 0);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 413 "));
  T_EQ_INT(handler_calls, 3);
}

static void test_response_reject(void) {
  gw_exch *x;
  char v[1100];

  T_EQ_INT(out_open(), 0);
  x = new_x();
  memset(v, 'v', sizeof(v));
  snprintf(x->req.method, sizeof(x->req.method), "GET");
  set_t(x, "/thing");
  gw_exch_add_header(x, "big", 3, v, sizeof(v));
  gw_exch_headers_done(x);
  T_ASSERT(x->responded);
  T_ASSERT(t_starts_with(out_text(),
                         "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  T_ASSERT(json_error_is(out_text(), "headers_too_large"));
  gw_exch_free(x);
  out_close();
}

/* Quotes in the path and the query never reach the access log raw. */
static void test_access_log(void) {
  const char *t;
  const char *log;

  cfg.access_log = 1;
  gw_log_min_level = GW_LOG_INFO;
  gw_buf_reset(&wk.access_log);
  t = run_req("GET", "/thing?code=s3cret", NULL, NULL, 0);
  T_ASSERT(t_starts_with(t, "HTTP/1.1 200 "));
  run_req("GET", "/x\"y\nz", NULL, NULL, 0);
  run_req("GET", "/nope", NULL, NULL, 0);
  log = gw_buf_cstr(&wk.access_log);
  T_ASSERT(strstr(log, "msg=\"access\"") != NULL);
  T_ASSERT(strstr(log, "path=\"/thing\"") != NULL);
  T_ASSERT(strstr(log, "route=thing status=200") != NULL);
  T_ASSERT(strstr(log, "s3cret") == NULL);
  T_ASSERT(strstr(log, "path=\"/x\\\"y\\x0az\"") != NULL);
  T_ASSERT(strstr(log, "\nz") == NULL);
  T_ASSERT(strstr(log, "status=404") != NULL);
  T_ASSERT(strstr(log, "client=192.0.2.7") != NULL);
  cfg.access_log = 0;
  gw_log_min_level = GW_LOG_ERROR;
  gw_buf_reset(&wk.access_log);
}

/* A second response, or a response after headers_done answered, is
 * ignored; the handler is not called for an answered request. */
static void test_single_response(void) {
  gw_exch *x;
  size_t n;

  T_EQ_INT(out_open(), 0);
  x = new_x();
  snprintf(x->req.method, sizeof(x->req.method), "GET");
  set_t(x, "/silent");
  handler_calls = 0;
  gw_exch_headers_done(x);
  gw_exch_request_done(x);
  T_EQ_INT(handler_calls, 1);
  T_EQ_INT(gw_exch_responded(x), 0);
  T_EQ_INT(evbuffer_get_length(bufferevent_get_output(conn.bev)), 0);
  gw_resp_json(x, 201, json_pack("{s:i}", "n", 1));
  T_EQ_INT(gw_exch_responded(x), 1);
  n = evbuffer_get_length(bufferevent_get_output(conn.bev));
  T_ASSERT(t_starts_with(out_text(), "HTTP/1.1 201 Created\r\n"));
  T_EQ_STR(t_http_body(out_text()), "{\"n\":1}");
  gw_resp_send(x, 500, NULL, NULL, 0);
  gw_resp_error(x, 400, "x", "y");
  T_EQ_INT(evbuffer_get_length(bufferevent_get_output(conn.bev)), n);
  gw_exch_request_done(x); /* no second dispatch */
  T_EQ_INT(handler_calls, 1);
  gw_exch_free(x);
  out_close();

  /* NULL JSON (jansson out of memory) becomes a 500 JSON error. */
  T_EQ_INT(out_open(), 0);
  x = new_x();
  gw_resp_json(x, 200, NULL);
  T_ASSERT(t_starts_with(out_text(), "HTTP/1.1 500 "));
  T_ASSERT(json_error_is(out_text(), "internal_error"));
  gw_exch_free(x);
  out_close();
}

int main(void) {
  setup();
  T_RUN(test_reason);
  T_RUN(test_now_monotonic);
  T_RUN(test_target_split);
  T_RUN(test_target_absolute_form);
  T_RUN(test_regress_absolute_form_short_authority);
  T_RUN(test_target_rejects);
  T_RUN(test_header_list_size);
  T_RUN(test_header_count);
  T_RUN(test_headers_stored);
  T_RUN(test_content_length);
  T_RUN(test_pseudo);
  T_RUN(test_query);
  T_RUN(test_cancel);
  T_RUN(test_pool_reuse);
  T_RUN(test_resp_header_limits);
  T_RUN(test_response_security_headers);
  T_RUN(test_response_head);
  T_RUN(test_response_errors);
  T_RUN(test_response_reject);
  T_RUN(test_access_log);
  T_RUN(test_single_response);
  teardown();
  if (conn.timer) {
    event_free(conn.timer);
  }
  if (base) {
    event_base_free(base);
  }
  return T_DONE();
}
