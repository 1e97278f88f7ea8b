/* gw_h2_test.c — HTTP/2 (gateway/gw_h2.c) through the in-process server:
 * libcurl's multi interface for multiplexing and h2c, and a small nghttp2
 * client of our own over OpenSSL for what curl cannot do on purpose (a
 * body that never comes) or does unreliably (curl 7.88 loses a response
 * followed at once by RST_STREAM, see gw_server_test).
 *
 * Each test runs in a child process (tests/support/t_child.h) with its
 * own server (tests/support/t_server.h: self-signed P-256 certificate made
 * with the OpenSSL API, listen ports 0), so that a server crash fails that
 * test alone and LeakSanitizer checks each test's process. Every wait has
 * a deadline, every child a time limit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>

#include "gw_config.h"
#include "gw_log.h"
#include "harness.h"
#include "support/t_child.h"
#include "support/t_client.h"
#include "support/t_curl.h"
#include "support/t_json.h"
#include "support/t_server.h"
#include "support/t_time.h"

/* ---- a small nghttp2 client ------------------------------------------- */

typedef struct h2stream {
  int32_t id;
  int status;
  char body[16384];
  size_t blen;
  int end_stream;      /* the response is complete */
  int closed;          /* the stream closed */
  uint32_t close_code; /* error code given on close */
  int got_rst;         /* the server sent RST_STREAM */
  uint32_t rst_code;
  const char *up; /* request body still to send */
  size_t up_left;
  int up_eof; /* end the body once up_left is sent */
} h2stream;

typedef struct h2cli {
  t_cli t;
  nghttp2_session *s;
  int goaway;
  uint32_t goaway_code;
  int settings_seen;
} h2cli;

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f,
                        const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen, uint8_t flags, void *ud) {
  h2stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

  (void)flags;
  (void)ud;
  if (st && f->hd.type == NGHTTP2_HEADERS && nlen == 7 &&
      memcmp(name, ":status", 7) == 0 && vlen == 3) {
    st->status = atoi((const char *)value);
  }
  return 0;
}

static int h2_on_data(nghttp2_session *s, uint8_t flags, int32_t id,
                      const uint8_t *data, size_t len, void *ud) {
  h2stream *st = nghttp2_session_get_stream_user_data(s, id);

  (void)flags;
  (void)ud;
  if (st && st->blen + len < sizeof(st->body)) {
    memcpy(st->body + st->blen, data, len);
    st->blen += len;
    st->body[st->blen] = '\0';
  }
  return 0;
}

static int h2_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  h2cli *h = ud;
  h2stream *st = f->hd.stream_id
                     ? nghttp2_session_get_stream_user_data(s, f->hd.stream_id)
                     : NULL;

  switch (f->hd.type) {
  case NGHTTP2_GOAWAY:
    h->goaway = 1;
    h->goaway_code = f->goaway.error_code;
    break;
  case NGHTTP2_SETTINGS:
    h->settings_seen = 1;
    break;
  case NGHTTP2_RST_STREAM:
    if (st) {
      st->got_rst = 1;
      st->rst_code = f->rst_stream.error_code;
    }
    break;
  case NGHTTP2_HEADERS:
  case NGHTTP2_DATA:
    if (st && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      st->end_stream = 1;
    }
    break;
  default:
    break;
  }
  return 0;
}

static int h2_on_close(nghttp2_session *s, int32_t id, uint32_t code,
                       void *ud) {
  h2stream *st = nghttp2_session_get_stream_user_data(s, id);

  (void)ud;
  if (st) {
    st->closed = 1;
    st->close_code = code;
  }
  return 0;
}

static ssize_t h2_up_read(nghttp2_session *s, int32_t id, uint8_t *buf,
                          size_t len, uint32_t *flags, nghttp2_data_source *src,
                          void *ud) {
  h2stream *st = src->ptr;
  size_t n = len < st->up_left ? len : st->up_left;

  (void)s;
  (void)id;
  (void)ud;
  if (n == 0 && !st->up_eof) {
    return NGHTTP2_ERR_DEFERRED; /* a body that does not come */
  }
  memcpy(buf, st->up, n);
  st->up += n;
  st->up_left -= n;
  if (st->up_left == 0 && st->up_eof) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return (ssize_t)n;
}

/* Connects with TLS and ALPN h2, or in cleartext with prior knowledge when
 * |h2c|, and queues our SETTINGS. Returns 0 or -1. */
static int h2_open_ex(h2cli *h, int port, int h2c) {
  nghttp2_session_callbacks *cb;
  int rv;

  memset(h, 0, sizeof(*h));
  if ((h2c ? t_cli_open_plain(&h->t, port) : t_cli_open(&h->t, port, "h2")) !=
      0) {
    return -1;
  }
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_close);
  rv = nghttp2_session_client_new(&h->s, cb, h);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) {
    return -1;
  }
  nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, NULL, 0);
  return 0;
}

static int h2_open(h2cli *h, int port) {
  return h2_open_ex(h, port, 0);
}

static void h2_close(h2cli *h) {
  if (h->s) {
    nghttp2_session_del(h->s);
  }
  t_cli_close(&h->t);
  h->s = NULL;
}

/* Sends what nghttp2 has queued and feeds what arrives until |done(arg)|
 * is true (1), the server closes the connection (0) or |ms| pass (-1). */
static int h2_run(h2cli *h, int (*done)(void *), void *arg, int ms) {
  double deadline = t_now_ms() + ms;

  for (;;) {
    const uint8_t *data;
    ssize_t n;
    int rv;

    while ((n = nghttp2_session_mem_send(h->s, &data)) > 0) {
      if (t_cli_send(&h->t, data, (size_t)n) != 0) {
        return h->t.closed ? 0 : -1;
      }
    }
    if (n < 0) {
      return -1;
    }
    if (done && done(arg)) {
      return 1;
    }
    if (h->t.closed) {
      return 0;
    }
    rv = t_cli_fill(&h->t, deadline);
    if (h->t.len) {
      n = nghttp2_session_mem_recv(h->s, (const uint8_t *)h->t.buf, h->t.len);
      h->t.len = 0;
      if (n < 0) {
        printf("#   nghttp2_session_mem_recv: %s\n", nghttp2_strerror((int)n));
        return -1;
      }
    }
    if (rv < 0) {
      return -1;
    }
  }
}

static int stream_done(void *arg) {
  h2stream *st = arg;

  return st->closed || st->end_stream;
}

static int stream_closed(void *arg) {
  return ((h2stream *)arg)->closed;
}

#define NV(n, v)                                                               \
  {                                                                            \
    (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                  \
        NGHTTP2_NV_FLAG_NONE                                                   \
  }

/* Submits |method| |path| with |extra| headers; a body when |body| is not
 * NULL (|eof| 0: the body never ends). Returns the stream id. */
static int32_t h2_request(h2cli *h, h2stream *st, const char *method,
                          const char *path, const nghttp2_nv *extra,
                          size_t nextra, const char *body, size_t blen,
                          int eof) {
  nghttp2_nv nva[128] = {NV(":method", method), NV(":scheme", "https"),
                         NV(":authority", "gw.test"), NV(":path", path)};
  nghttp2_data_provider prd;
  size_t n = 4;

  memset(st, 0, sizeof(*st));
  for (size_t i = 0; i < nextra && n < 128; i++) {
    nva[n++] = extra[i];
  }
  st->up = body;
  st->up_left = blen;
  st->up_eof = eof;
  prd.source.ptr = st;
  prd.read_callback = h2_up_read;
  st->id = nghttp2_submit_request(h->s, NULL, nva, n, body ? &prd : NULL, st);
  return st->id;
}

static const char *sjstr(const h2stream *st, const char *k) {
  static char v[256];
  json_t *j = json_loadb(st->body, st->blen, 0, NULL);
  const char *s = json_string_value(json_object_get(j, k));

  snprintf(v, sizeof(v), "%s", s ? s : "(none)");
  json_decref(j);
  return v;
}

/* Runs the connection until stream |st| is answered (3 s at most): the
 * response status, or -1 when none came. */
static int h2_wait(h2cli *h, h2stream *st) {
  return h2_run(h, stream_done, st, 3000) == 1 ? st->status : -1;
}

/* GET |path| on a new stream |st|: the status as for h2_wait(). */
static int h2_get(h2cli *h, h2stream *st, const char *path) {
  h2_request(h, st, "GET", path, NULL, 0, NULL, 0, 1);
  return h2_wait(h, st);
}

/* ---- servers ---------------------------------------------------------- */

static int up(ts_server *t, void (*tweak)(gw_config *)) {
  if (ts_start(t, 2, tweak, ts_echo_routes) != 0) {
    t_case_failed = 1;
    return 0;
  }
  return 1;
}

/* up(), and our HTTP/2 client connected to it over TLS. */
static int up_h2(ts_server *t, void (*tweak)(gw_config *), h2cli *h) {
  if (!up(t, tweak)) {
    return 0;
  }
  if (h2_open(h, t->port) != 0) {
    t_case_failed = 1;
    ts_stop(t);
    return 0;
  }
  return 1;
}

static void down_h2(ts_server *t, h2cli *h) {
  h2_close(h);
  ts_stop(t);
}

#define H2 CURL_HTTP_VERSION_2TLS

/* ---- tests ------------------------------------------------------------ */

/* 50 requests at once over one connection (curl multi, CURLPIPE_MULTIPLEX
 * and PIPEWAIT): all answered, one connection opened. */
static void test_multiplex_50(void) {
  enum { N = 50 };
  static t_resp r[N];
  static char paths[N][32];
  CURL *e[N];
  CURLM *m = curl_multi_init();
  t_upload u;
  long conns = 0;
  int running = 1;
  double deadline;
  ts_server t;

  if (!up(&t, NULL)) {
    curl_multi_cleanup(m);
    return;
  }
  curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  for (int i = 0; i < N; i++) {
    memset(&r[i], 0, sizeof(r[i]));
    snprintf(paths[i], sizeof(paths[i]), "/echo/%d?n=%d", i, i);
    e[i] = curl_easy_init();
    t_setup_easy(e[i], &t, H2, paths[i], NULL, &r[i], &u);
    curl_easy_setopt(e[i], CURLOPT_PIPEWAIT, 1L);
    curl_multi_add_handle(m, e[i]);
  }
  deadline = t_now_ms() + 10000;
  while (running && t_now_ms() < deadline) {
    curl_multi_perform(m, &running);
    if (running) {
      curl_multi_poll(m, NULL, 0, 100, NULL);
    }
  }
  T_EQ_INT(running, 0);
  for (int i = 0; i < N; i++) {
    CURLMsg *msg;
    int left;
    char id[8];
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK) {
        printf("#   a transfer failed: %s\n",
               curl_easy_strerror(msg->data.result));
        t_case_failed = 1;
      }
    }
    t_finish_resp(e[i], &r[i]);
    snprintf(id, sizeof(id), "%d", i);
    if (r[i].status != 200 || r[i].version != CURL_HTTP_VERSION_2_0 ||
        !t_jstr(r[i].json, "id") || strcmp(t_jstr(r[i].json, "id"), id) != 0) {
      printf("#   request %d: status %ld version %ld body %.100s\n", i,
             r[i].status, r[i].version, r[i].body);
      t_case_failed = 1;
    }
    conns += r[i].nconnects;
    curl_multi_remove_handle(m, e[i]);
    curl_easy_cleanup(e[i]);
    t_resp_free(&r[i]);
  }
  curl_multi_cleanup(m);
  T_EQ_INT(conns, 1);
  T_EQ_INT(ts_metric(&t, "mpkigw_connections_accepted_total"), 1);
  ts_stop(&t);
}

/* POST over the 1024-byte cap: 413, and the connection carries on. With
 * content-length (refused from the headers) and without (refused at the
 * cap). While the body is still coming the server may reset the stream,
 * with NO_ERROR only (RFC 9113 §8.1: the client may stop sending; today it
 * does, see test_regress_h2_413_reset_hides_response in gw_server_test for
 * what that costs); if it does not, the client ends the stream itself. */
static void test_413_keeps_connection(void) {
  static char body[4000];
  nghttp2_nv cl_big[] = {NV("content-length", "100000")};
  nghttp2_nv cl[] = {NV("content-length", "4000")};
  ts_server t;
  h2cli h;
  h2stream a, b;

  if (!up_h2(&t, NULL, &h)) {
    return;
  }
  memset(body, 'x', sizeof(body));
  for (int i = 0; i < 3; i++) {
    if (i == 0) { /* declared too large, more to come */
      h2_request(&h, &a, "POST", "/body", cl_big, 1, body, sizeof(body), 0);
    } else if (i == 1) { /* no length, more to come */
      h2_request(&h, &a, "POST", "/body", NULL, 0, body, sizeof(body), 0);
    } else { /* declared too large, all of it sent at once */
      h2_request(&h, &a, "POST", "/body", cl, 1, body, sizeof(body), 1);
    }
    T_EQ_INT(h2_wait(&h, &a), 413);
    T_EQ_STR(sjstr(&a, "error"), "body_too_large");
    T_EQ_INT(a.end_stream, 1);
    h2_run(&h, stream_closed, &a, 200); /* a reset, if any, comes now */
    if (a.got_rst) {
      T_EQ_INT(a.rst_code, NGHTTP2_NO_ERROR);
    } else if (!a.closed) {
      nghttp2_submit_rst_stream(h.s, NGHTTP2_FLAG_NONE, a.id, NGHTTP2_CANCEL);
    }
    /* Same connection, next stream. */
    T_EQ_INT(h2_get(&h, &b, "/echo/next"), 200);
    T_EQ_STR(sjstr(&b, "id"), "next");
    T_ASSERT(b.id > a.id);
    T_EQ_INT(h.goaway, 0);
  }
  /* Exactly the cap is fine. */
  h2_request(&h, &a, "POST", "/body", NULL, 0, body, 1024, 1);
  T_EQ_INT(h2_wait(&h, &a), 200);
  T_EQ_INT(ts_metric(&t, "mpkigw_connections_accepted_total"), 1);
  down_h2(&t, &h);
}

/* The same with libcurl on one easy handle (curl reuses the connection):
 * see gw_server_test's test_regress_h2_413_reset_hides_response for curl
 * losing the 413 itself, so only the reuse is asserted here. */
static void test_413_curl_reuse(void) {
  static char body[2000];
  ts_server t;
  CURL *e;
  t_resp r;
  t_upload u;
  struct curl_slist *hl;
  t_reqopt o = {0};

  if (!up(&t, NULL)) {
    return;
  }
  memset(body, 'y', sizeof(body));
  e = curl_easy_init();
  o.body = body;
  o.blen = sizeof(body);
  memset(&r, 0, sizeof(r));
  hl = t_setup_easy(e, &t, H2, "/body", &o, &r, &u);
  curl_easy_perform(e);
  t_finish_resp(e, &r);
  if (r.status != 413) {
    printf("# note: curl did not see the 413 (status %ld): the known curl "
           "7.88 issue\n",
           r.status);
  }
  t_resp_free(&r);
  curl_slist_free_all(hl);
  curl_easy_reset(e);
  memset(&r, 0, sizeof(r));
  t_setup_easy(e, &t, H2, "/echo/again", NULL, &r, &u);
  T_EQ_INT(curl_easy_perform(e), CURLE_OK);
  t_finish_resp(e, &r);
  T_EQ_INT(r.status, 200);
  T_EQ_INT(r.nconnects, 0); /* the connection of the 413 */
  T_EQ_STR(t_jstr(r.json, "id"), "again");
  t_resp_free(&r);
  curl_easy_cleanup(e);
  T_EQ_INT(ts_metric(&t, "mpkigw_connections_accepted_total"), 1);
  ts_stop(&t);
}

/* Many custom headers via CURLOPT_HTTPHEADER totalling over 16 KiB (but
 * fewer than 100 fields): 431 JSON. */
static void test_431_header_list(void) {
  static char vals[40][600];
  ts_server t;
  t_reqopt o = {0};
  t_resp r;

  if (!up(&t, NULL)) {
    return;
  }
  for (int i = 0; i < 30; i++) {
    int n = snprintf(vals[i], sizeof(vals[i]), "X-Pad-%02d: ", i);
    memset(vals[i] + n, 'p', 550);
    vals[i][n + 550] = '\0';
    o.headers[i] = vals[i]; /* 30 * (9 + 550 + 32) > 16384 */
  }
  t_do_req(&r, &t, H2, "/echo/big", &o);
  T_EQ_INT(r.rc, CURLE_OK);
  T_EQ_INT(r.version, CURL_HTTP_VERSION_2_0);
  T_ASSERT(t_resp_is_error(&r, 431, "headers_too_large"));
  t_resp_free(&r);

  /* Under the limit: fine. */
  for (int i = 20; i < 30; i++) {
    o.headers[i] = NULL;
  }
  t_do_req(&r, &t, H2, "/echo/big", &o);
  T_EQ_INT(r.status, 200);
  t_resp_free(&r);
  ts_stop(&t);
}

/* Over the limit on our own client: 431 on that stream, the connection
 * goes on. Also over limits.max_header_count (100). */
static void test_431_keeps_connection(void) {
  static char vals[120][32], pad[20000];
  static nghttp2_nv nv[120];
  ts_server t;
  h2cli h;
  h2stream a;

  if (!up_h2(&t, NULL, &h)) {
    return;
  }
  memset(pad, 'p', sizeof(pad));
  nv[0] = (nghttp2_nv){(uint8_t *)"x-pad", (uint8_t *)pad, 5, 10000,
                       NGHTTP2_NV_FLAG_NONE};
  nv[1] = nv[0];
  h2_request(&h, &a, "GET", "/echo/1", nv, 2, NULL, 0, 1);
  T_EQ_INT(h2_wait(&h, &a), 431);
  T_EQ_STR(sjstr(&a, "error"), "headers_too_large");

  for (int i = 0; i < 100; i++) {
    snprintf(vals[i], sizeof(vals[i]), "x-h%d", i);
    nv[i] = (nghttp2_nv){(uint8_t *)vals[i], (uint8_t *)"v", strlen(vals[i]), 1,
                         NGHTTP2_NV_FLAG_NONE};
  }
  /* 4 pseudo-headers + 100 = 104 fields. */
  h2_request(&h, &a, "GET", "/echo/2", nv, 100, NULL, 0, 1);
  T_EQ_INT(h2_wait(&h, &a), 431);
  T_EQ_STR(sjstr(&a, "error"), "too_many_headers");

  T_EQ_INT(h2_get(&h, &a, "/echo/3"), 200);
  T_EQ_INT(h.goaway, 0);
  down_h2(&t, &h);
}

static void tweak_timers(gw_config *c) {
  c->request_timeout_ms = 400;
  c->idle_timeout_ms = 300; /* below the file's minimum of 1000 */
}

/* A request body that never comes: 408 after limits.request_timeout_ms,
 * and the connection still serves other streams. */
static void test_body_timeout(void) {
  ts_server t;
  h2cli h;
  h2stream a, b;
  double t0, d;

  if (!up_h2(&t, tweak_timers, &h)) {
    return;
  }
  t0 = t_now_ms();
  h2_request(&h, &a, "POST", "/body", NULL, 0, "part", 4, 0);
  T_EQ_INT(h2_run(&h, stream_done, &a, 3000), 1);
  d = t_now_ms() - t0;
  T_EQ_INT(a.status, 408);
  T_EQ_STR(sjstr(&a, "error"), "request_timeout");
  T_ASSERT(d >= 350 && d < 2000);
  T_EQ_INT(h2_get(&h, &b, "/echo/b"), 200);
  T_EQ_INT(ts_metric(&t, "mpkigw_timeouts_total"), 1);
  down_h2(&t, &h);
}

/* After that 408 the stream stays half-open (the client never ends its
 * body) and gw_h2_timer() does not re-arm the connection timer for it
 * ("continue" right after the 408 skips "next = d"); with a stream open,
 * the idle timer does not apply either. So the stream is never reset and
 * the connection is never closed: a client can hold connections (and
 * max_connections slots) for ever at the cost of one HEADERS frame each.
 * Expected: RST_STREAM for the stream (gw_h2_timer's CANCEL branch) and
 * then, with no streams left, GOAWAY at the idle timeout. */
static void test_regress_h2_408_stream_never_reaped(void) {
  ts_server t;
  h2cli h;
  h2stream a;
  int rv;

  if (!up_h2(&t, tweak_timers, &h)) {
    return;
  }
  h2_request(&h, &a, "POST", "/body", NULL, 0, "part", 4, 0);
  T_EQ_INT(h2_wait(&h, &a), 408);
  /* 400 ms request timeout, 300 ms idle: 1.5 s is plenty for each. */
  rv = h2_run(&h, stream_closed, &a, 1500);
  if (rv != 1) {
    printf("#   stream %d still open 1.5 s after its 408\n", a.id);
    t_case_failed = 1;
  }
  rv = h2_run(&h, NULL, NULL, 1500);
  if (rv != 0 || !h.goaway) {
    printf("#   connection not closed (goaway %d, rv %d)\n", h.goaway, rv);
    t_case_failed = 1;
  }
  down_h2(&t, &h);
}

/* The server's SETTINGS, and GOAWAY(NO_ERROR) + close when idle. */
static void test_settings_and_idle(void) {
  ts_server t;
  h2cli h;
  double t0, d;
  int rv;

  if (!up_h2(&t, tweak_timers, &h)) {
    return;
  }
  t0 = t_now_ms();
  rv = h2_run(&h, NULL, NULL, 3000);
  d = t_now_ms() - t0;
  T_EQ_INT(rv, 0); /* closed by the server */
  T_EQ_INT(h.settings_seen, 1);
  T_EQ_INT(h.goaway, 1);
  T_EQ_INT(h.goaway_code, NGHTTP2_NO_ERROR);
  T_ASSERT(d >= 200 && d < 1500);
  T_EQ_INT(nghttp2_session_get_remote_settings(
               h.s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
           100);
  T_EQ_INT(nghttp2_session_get_remote_settings(
               h.s, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE),
           16384);
  T_EQ_INT(
      nghttp2_session_get_remote_settings(h.s, NGHTTP2_SETTINGS_ENABLE_PUSH),
      1); /* a server does not send it; 1 is the protocol default */
  down_h2(&t, &h);
}

/* HEAD over HTTP/2: headers with END_STREAM, no DATA. */
static void test_head(void) {
  ts_server t;
  h2cli h;
  h2stream a;

  if (!up_h2(&t, NULL, &h)) {
    return;
  }
  h2_request(&h, &a, "HEAD", "/echo/h", NULL, 0, NULL, 0, 1);
  T_EQ_INT(h2_run(&h, stream_closed, &a, 3000), 1);
  T_EQ_INT(a.status, 200);
  T_EQ_INT(a.blen, 0);
  T_EQ_INT(a.end_stream, 1);
  T_EQ_INT(a.close_code, NGHTTP2_NO_ERROR);
  down_h2(&t, &h);
}

/* The cleartext h2c listener with prior knowledge: curl (one request per
 * connection: curl 7.88 fails a second request on a prior-knowledge
 * connection, reused or multiplexed, with "Error in the HTTP2 framing
 * layer" against nghttpd too), then 20 concurrent streams on one
 * connection from our own client. No HSTS on cleartext. */
static void test_h2c(void) {
  enum { N = 20 };
  static h2stream st[N];
  static char paths[N][32];
  ts_server t;
  t_reqopt o = {0};
  t_resp r;
  h2cli h;

  if (!up(&t, NULL)) {
    return;
  }
  T_ASSERT(t.h2c_port > 0);
  o.h2c = 1;
  for (int i = 0; i < 2; i++) {
    char path[32], id[8];
    snprintf(path, sizeof(path), "/echo/c%d", i);
    snprintf(id, sizeof(id), "c%d", i);
    t_do_req(&r, &t, CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, path, &o);
    T_EQ_INT(r.rc, CURLE_OK);
    T_EQ_INT(r.status, 200);
    T_EQ_INT(r.version, CURL_HTTP_VERSION_2_0);
    T_EQ_STR(t_jstr(r.json, "id"), id);
    T_EQ_STR(t_resp_hdr(&r, "x-content-type-options"), "nosniff");
    T_ASSERT(t_resp_hdr(&r, "strict-transport-security") == NULL);
    t_resp_free(&r);
  }

  if (h2_open_ex(&h, t.h2c_port, 1) != 0) {
    t_case_failed = 1;
    ts_stop(&t);
    return;
  }
  for (int i = 0; i < N; i++) {
    snprintf(paths[i], sizeof(paths[i]), "/echo/s%d", i);
    h2_request(&h, &st[i], "GET", paths[i], NULL, 0, NULL, 0, 1);
  }
  T_EQ_INT(h2_run(&h, stream_done, &st[N - 1], 3000), 1);
  for (int i = 0; i < N; i++) {
    char id[8];
    if (!stream_done(&st[i])) {
      T_EQ_INT(h2_run(&h, stream_done, &st[i], 3000), 1);
    }
    snprintf(id, sizeof(id), "s%d", i);
    T_EQ_INT(st[i].status, 200);
    T_EQ_STR(sjstr(&st[i], "id"), id);
  }
  down_h2(&t, &h);
}

/* The cleartext listener speaks HTTP/1.1 as well as h2c with prior
 * knowledge (the mock operators serve plain HTTP/1.1 clients on it). */
static void test_cleartext_port_serves_http1(void) {
  ts_server t;
  t_reqopt o = {0};
  t_resp r;

  if (!up(&t, NULL)) {
    return;
  }
  o.h2c = 1;
  o.timeout_ms = 2000;
  t_do_req(&r, &t, CURL_HTTP_VERSION_1_1, "/echo/x", &o);
  T_EQ_INT(r.rc, CURLE_OK);
  T_EQ_INT(r.status, 200);
  t_resp_free(&r);
  ts_stop(&t);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  gw_log_open(NULL, GW_LOG_ERROR);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  T_RUN_CHILD(test_multiplex_50);
  T_RUN_CHILD(test_413_keeps_connection);
  T_RUN_CHILD(test_413_curl_reuse);
  T_RUN_CHILD(test_431_header_list);
  T_RUN_CHILD(test_431_keeps_connection);
  T_RUN_CHILD(test_body_timeout);
  T_RUN_CHILD(test_regress_h2_408_stream_never_reaped);
  T_RUN_CHILD(test_settings_and_idle);
  T_RUN_CHILD(test_head);
  T_RUN_CHILD(test_h2c);
  T_RUN_CHILD(test_cleartext_port_serves_http1);
  curl_global_cleanup();
  gw_log_close();
  return T_DONE();
}
