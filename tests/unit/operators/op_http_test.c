/* op_http_test.c — unit tests for operators/op_http.c: libcurl's multi
 * interface on a libevent loop, against a scripted local server
 * (op_fakesrv.h) and against the gateway's own server library (HTTP/1.1 on
 * its cleartext port). Every wait is bounded by a loop deadline. */
#include "op_http.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_err.h"
#include "harness.h"
#include "op_fakesrv.h"
#include "support/t_child.h"
#include "support/t_server.h"

/* ---- loop helpers ----------------------------------------------------------
 */

typedef struct got {
  int n; /* callbacks seen */
  op_http_result res;
  char body[4096];
  char ct[128];
  char error[256];
  size_t body_len;
} got;

static void on_done(void *arg, const op_http_result *res) {
  got *g = arg;

  g->n++;
  g->res = *res;
  g->body_len = res->body_len;
  snprintf(g->body, sizeof(g->body), "%.*s", (int)res->body_len, res->body);
  snprintf(g->ct, sizeof(g->ct), "%s",
           res->content_type ? res->content_type : "");
  snprintf(g->error, sizeof(g->error), "%s", res->error);
  g->res.body = NULL;
  g->res.content_type = NULL;
  g->res.error = NULL;
}

/* The deadline of run_until: a flag, since libevent's clock and ours may
 * disagree by a millisecond. */
static void on_deadline(evutil_socket_t fd, short w, void *arg) {
  (void)fd;
  (void)w;
  *(int *)arg = 1;
}

/* Runs |base| until |*count| reaches |want| or |ms| pass. Returns 1 when
 * reached. */
static int run_until(struct event_base *base, const int *count, int want,
                     int ms) {
  int expired = 0;
  struct event *dl = evtimer_new(base, on_deadline, &expired);
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

  evtimer_add(dl, &tv);
  while (*count < want && !expired) {
    event_base_loop(base, EVLOOP_ONCE);
  }
  event_free(dl);
  return *count >= want;
}

static void url(char *buf, size_t cap, int port, const char *path) {
  snprintf(buf, cap, "http://127.0.0.1:%d%s", port, path);
}

/* ---- handlers of the fake server
 * ---------------------------------------------- */

/* Echoes the method, path, content type and body as text. */
static void h_echo(void *arg, const fs_request *q, fs_response *r) {
  char *b = malloc(q->body_len + 600);

  (void)arg;
  if (!b) {
    r->action = FS_CLOSE;
    return;
  }
  snprintf(b, q->body_len + 600, "%s %s ct=%s len=%zu body=%s", q->method,
           q->path, q->content_type, q->body_len, q->body);
  r->content_type = "text/plain; charset=utf-8";
  r->body = b;
  r->owned = b;
  if (strcmp(q->path, "/chunked") == 0) {
    r->chunked = 1;
  } else if (strcmp(q->path, "/slow") == 0) {
    r->delay_ms = 500;
  } else if (strcmp(q->path, "/status500") == 0) {
    r->status = 500;
  }
}

static void h_hang(void *arg, const fs_request *q, fs_response *r) {
  (void)arg;
  (void)q;
  r->action = FS_HANG;
}

static void h_close(void *arg, const fs_request *q, fs_response *r) {
  (void)arg;
  (void)q;
  r->action = FS_CLOSE;
}

static void h_garbage(void *arg, const fs_request *q, fs_response *r) {
  (void)arg;
  (void)q;
  r->action = FS_RAW;
  r->body = "SSH-2.0-OpenSSH_9.2\r\nnot http at all\r\n\r\n";
  r->close_after = 1;
}

static char big[300000];

static void h_big(void *arg, const fs_request *q, fs_response *r) {
  (void)arg;
  r->content_type = "application/octet-stream";
  r->body = big;
  r->body_len = sizeof(big);
  r->chunked = strcmp(q->path, "/bigchunked") == 0;
}

static void h_truncated(void *arg, const fs_request *q, fs_response *r) {
  (void)arg;
  (void)q;
  r->content_type = "text/plain";
  r->body = "only part";
  r->lie_length = 1000;
}

/* ---- tests
 * ---------------------------------------------------------------------- */

static void t_get_and_post(void) {
  struct event_base *base = event_base_new();
  op_http *h = NULL;
  fs_server s;
  got g = {0};
  char u[128];
  const char *hdrs[] = {"X-Test: yes", NULL};
  op_http_opts o = {0};

  T_EQ_INT(op_http_new(&h, base, NULL), GW_OK);
  T_EQ_INT(fs_start(&s, h_echo, NULL), 0);
  url(u, sizeof(u), s.port, "/a/b?c=d");
  o.url = u;
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_EQ_INT(g.n, 0); /* never from inside submit */
  T_EQ_INT(op_http_pending(h), 1);
  T_ASSERT(run_until(base, &g.n, 1, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_DONE);
  T_EQ_INT(g.res.http_status, 200);
  T_EQ_STR(g.body, "GET /a/b?c=d ct= len=0 body=");
  T_EQ_STR(g.ct, "text/plain; charset=utf-8");
  T_EQ_INT(g.res.sent, 1);
  T_EQ_STR(g.error, "");
  T_ASSERT(g.res.elapsed_ns > 0);
  T_EQ_INT(op_http_pending(h), 0);

  url(u, sizeof(u), s.port, "/post");
  o.content_type = "application/soap+xml; charset=utf-8";
  o.headers = hdrs;
  o.body = "<x>hello</x>";
  o.body_len = 12;
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 2, 5000));
  T_EQ_STR(g.body, "POST /post ct=application/soap+xml; charset=utf-8 len=12 "
                   "body=<x>hello</x>");

  /* a body larger than 1024 bytes goes at once (no Expect: 100-continue
   * wait) */
  {
    static char large[20000];
    memset(large, 'x', sizeof(large));
    o.body = large;
    o.body_len = sizeof(large);
    double t0 = fs_now_ms();
    T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
    T_ASSERT(run_until(base, &g.n, 3, 5000));
    T_ASSERT(strstr(g.body, "len=20000") != NULL);
    T_ASSERT(fs_now_ms() - t0 < 900);
  }
  /* chunked answer, and a 500 is still a complete answer */
  o.body = NULL;
  o.content_type = NULL;
  url(u, sizeof(u), s.port, "/chunked");
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 4, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_DONE);
  T_EQ_STR(g.body, "GET /chunked ct= len=0 body=");
  url(u, sizeof(u), s.port, "/status500");
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 5, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_DONE);
  T_EQ_INT(g.res.http_status, 500);
  /* every request above went over one kept-alive connection */
  T_EQ_INT(atomic_load(&s.nconns), 1);

  op_http_del(h);
  fs_stop(&s);
  event_base_free(base);
}

static void t_bad_args(void) {
  struct event_base *base = event_base_new();
  op_http *h = NULL;
  got g = {0};
  op_http_opts o = {0};

  T_EQ_INT(op_http_new(&h, NULL, NULL), GW_ERR_INVALID);
  T_ASSERT(h == NULL);
  T_EQ_INT(op_http_new(&h, base, NULL), GW_OK);
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_ERR_INVALID);
  o.url = "ftp://127.0.0.1/x";
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_ERR_INVALID);
  o.url = "file:///etc/passwd";
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_ERR_INVALID);
  o.url = "http://127.0.0.1:1/";
  T_EQ_INT(op_http_submit(h, &o, NULL, &g, NULL), GW_ERR_INVALID);
  T_EQ_INT(op_http_pending(h), 0);
  T_EQ_STR(op_http_status_str(OP_HTTP_CONNECT), "connect");
  T_EQ_STR(op_http_status_str(OP_HTTP_TOO_LARGE), "too_large");
  op_http_del(h);
  op_http_del(NULL);
  event_base_free(base);
}

static void t_connect_refused(void) {
  struct event_base *base = event_base_new();
  op_http *h = NULL;
  got g = {0};
  char u[128];
  op_http_opts o = {0};

  T_EQ_INT(op_http_new(&h, base, NULL), GW_OK);
  url(u, sizeof(u), fs_dead_port(), "/");
  o.url = u;
  o.body = "x";
  o.body_len = 1;
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 1, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_CONNECT);
  T_EQ_INT(g.res.sent, 0);
  T_EQ_INT(g.res.http_status, 0);
  T_ASSERT(g.error[0] != '\0');
  op_http_del(h);
  event_base_free(base);
}

/* A listening socket whose accept queue is full: the kernel drops further
 * SYNs, so a connect to it never completes. Returns the listening socket
 * (and the fillers in |fill|) or -1. Loopback only: tests never depend on
 * the outside network. */
static int full_listener(int *port, int fill[4]) {
  struct sockaddr_in a;
  socklen_t al = sizeof(a);
  int lfd = socket(AF_INET, SOCK_STREAM, 0);

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(lfd, 0) != 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
    return -1;
  }
  *port = ntohs(a.sin_port);
  for (int i = 0; i < 4; i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fill[i], (struct sockaddr *)&a, sizeof(a));
  }
  usleep(100000);
  return lfd;
}

/* A connect that never completes times out as a connect failure: nothing
 * was sent. */
static void t_connect_timeout(void) {
  struct event_base *base = event_base_new();
  op_http *h = NULL;
  got g = {0};
  op_http_opts o = {0};
  char u[128];
  int port = 0, fill[4], lfd;
  double t0;

  lfd = full_listener(&port, fill);
  T_ASSERT(lfd >= 0);
  T_EQ_INT(op_http_new(&h, base, NULL), GW_OK);
  url(u, sizeof(u), port, "/");
  o.url = u;
  o.connect_timeout_ms = 300;
  o.timeout_ms = 5000;
  t0 = fs_now_ms();
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 1, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_CONNECT);
  T_EQ_INT(g.res.sent, 0);
  T_ASSERT(fs_now_ms() - t0 >= 290 && fs_now_ms() - t0 < 2000);
  op_http_del(h);
  event_base_free(base);
  for (int i = 0; i < 4; i++) {
    close(fill[i]);
  }
  close(lfd);
}

static void t_timeout_after_sending(void) {
  struct event_base *base = event_base_new();
  op_http *h = NULL;
  fs_server s;
  got g = {0};
  char u[128];
  op_http_opts o = {0};
  double t0, dt;

  T_EQ_INT(op_http_new(&h, base, NULL), GW_OK);
  T_EQ_INT(fs_start(&s, h_hang, NULL), 0);
  url(u, sizeof(u), s.port, "/");
  o.url = u;
  o.body = "<req/>";
  o.body_len = 6;
  o.timeout_ms = 300;
  t0 = fs_now_ms();
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 1, 5000));
  dt = fs_now_ms() - t0;
  T_EQ_INT(g.res.status, OP_HTTP_TIMEOUT);
  T_EQ_INT(g.res.sent, 1);
  T_ASSERT(dt >= 290 && dt < 1500);
  T_EQ_INT(atomic_load(&s.nrequests), 1);
  op_http_del(h);
  fs_stop(&s);
  event_base_free(base);
}

static void t_body_caps(void) {
  struct event_base *base = event_base_new();
  op_http *h = NULL;
  fs_server s;
  got g = {0};
  char u[128];
  op_http_opts o = {0};

  memset(big, 'b', sizeof(big));
  T_EQ_INT(op_http_new(&h, base, NULL), GW_OK);
  T_EQ_INT(fs_start(&s, h_big, NULL), 0);
  o.url = u;
  o.max_response = 65536;
  /* Content-Length over the cap */
  url(u, sizeof(u), s.port, "/big");
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 1, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_TOO_LARGE);
  /* chunked: counted as it comes */
  url(u, sizeof(u), s.port, "/bigchunked");
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 2, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_TOO_LARGE);
  T_ASSERT(g.body_len <= 65536);
  /* exactly at the cap is fine */
  o.max_response = sizeof(big);
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 3, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_DONE);
  T_EQ_INT(g.body_len, sizeof(big));
  op_http_del(h);
  fs_stop(&s);
  event_base_free(base);
}

static void t_broken_answers(void) {
  struct event_base *base = event_base_new();
  op_http *h = NULL;
  fs_server s;
  got g = {0};
  char u[128];
  op_http_opts o = {0};

  T_EQ_INT(op_http_new(&h, base, NULL), GW_OK);
  o.url = u;

  T_EQ_INT(fs_start(&s, h_truncated, NULL), 0);
  url(u, sizeof(u), s.port, "/");
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 1, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_NETWORK);
  T_EQ_INT(g.res.sent, 1);
  fs_stop(&s);

  T_EQ_INT(fs_start(&s, h_close, NULL), 0);
  url(u, sizeof(u), s.port, "/");
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 2, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_NETWORK);
  T_EQ_INT(g.res.sent, 1);
  fs_stop(&s);

  T_EQ_INT(fs_start(&s, h_garbage, NULL), 0);
  url(u, sizeof(u), s.port, "/");
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 3, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_PROTO);
  fs_stop(&s);

  op_http_del(h);
  event_base_free(base);
}

static int ticks;
static void on_tick(evutil_socket_t fd, short w, void *arg) {
  (void)fd;
  (void)w;
  (void)arg;
  ticks++;
}

/* Many requests at once, each answered after 500 ms: they overlap, and the
 * loop keeps running other events meanwhile (nothing blocks). */
static void t_concurrent_nonblocking(void) {
  struct event_base *base = event_base_new();
  struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
  struct timeval tv = {0, 10000};
  op_http *h = NULL;
  op_http_config cfg = {.max_host_connections = 64};
  fs_server s;
  got g[40];
  int done = 0;
  char u[128];
  op_http_opts o = {0};
  double t0, dt;

  memset(g, 0, sizeof(g));
  T_EQ_INT(op_http_new(&h, base, &cfg), GW_OK);
  T_EQ_INT(fs_start(&s, h_echo, NULL), 0);
  url(u, sizeof(u), s.port, "/slow");
  o.url = u;
  ticks = 0;
  event_add(tick, &tv);
  t0 = fs_now_ms();
  for (int i = 0; i < 40; i++) {
    T_EQ_INT(op_http_submit(h, &o, on_done, &g[i], NULL), GW_OK);
  }
  T_EQ_INT(op_http_pending(h), 40);
  while (fs_now_ms() - t0 < 10000) {
    done = 0;
    for (int i = 0; i < 40; i++) {
      done += g[i].n;
    }
    if (done == 40) {
      break;
    }
    event_base_loop(base, EVLOOP_ONCE);
  }
  dt = fs_now_ms() - t0;
  T_EQ_INT(done, 40);
  for (int i = 0; i < 40; i++) {
    T_EQ_INT(g[i].res.status, OP_HTTP_DONE);
  }
  /* 40 x 500 ms sequentially would be 20 s */
  T_ASSERT(dt < 3000);
  /* the 10 ms timer ran all along */
  T_ASSERT(ticks >= 30);
  event_free(tick);
  op_http_del(h);
  fs_stop(&s);
  event_base_free(base);
}

/* ---- cancellation -----------------------------------------------------------
 */

typedef struct cancel_ctx {
  op_http_req *other;
  got g;
} cancel_ctx;

static void on_done_cancel_other(void *arg, const op_http_result *res) {
  cancel_ctx *c = arg;

  on_done(&c->g, res);
  if (c->other) {
    op_http_cancel(c->other);
    c->other = NULL;
  }
}

static void t_cancel(void) {
  struct event_base *base = event_base_new();
  op_http *h = NULL;
  fs_server s, e;
  got g = {0}, never = {0};
  cancel_ctx cc = {0};
  op_http_req *r = NULL;
  char u[128], ue[128];
  op_http_opts o = {0}, oe = {0};
  int zero = 0;

  T_EQ_INT(op_http_new(&h, base, NULL), GW_OK);
  T_EQ_INT(fs_start(&s, h_hang, NULL), 0);
  T_EQ_INT(fs_start(&e, h_echo, NULL), 0);
  url(u, sizeof(u), s.port, "/");
  o.url = u;
  o.timeout_ms = 5000;

  /* cancel a request in flight: no callback, the connection is dropped */
  T_EQ_INT(op_http_submit(h, &o, on_done, &never, &r), GW_OK);
  run_until(base, &zero, 1, 200); /* let it connect and send */
  T_EQ_INT(atomic_load(&s.nrequests), 1);
  op_http_cancel(r);
  T_EQ_INT(op_http_pending(h), 0);
  run_until(base, &zero, 1, 300);
  T_EQ_INT(never.n, 0);

  /* cancel right after submit, before anything happened */
  T_EQ_INT(op_http_submit(h, &o, on_done, &never, &r), GW_OK);
  op_http_cancel(r);
  run_until(base, &zero, 1, 200);
  T_EQ_INT(never.n, 0);

  /* a callback cancels another request */
  T_EQ_INT(op_http_submit(h, &o, on_done, &never, &cc.other), GW_OK);
  url(ue, sizeof(ue), e.port, "/x");
  oe.url = ue;
  T_EQ_INT(op_http_submit(h, &oe, on_done_cancel_other, &cc, NULL), GW_OK);
  T_ASSERT(run_until(base, &cc.g.n, 1, 5000));
  T_ASSERT(cc.other == NULL);
  T_EQ_INT(op_http_pending(h), 0);
  run_until(base, &zero, 1, 200);
  T_EQ_INT(never.n, 0);

  /* a callback submits a new request */
  (void)g;

  /* op_http_del with requests in flight: no callbacks */
  for (int i = 0; i < 5; i++) {
    T_EQ_INT(op_http_submit(h, &o, on_done, &never, NULL), GW_OK);
  }
  run_until(base, &zero, 1, 100);
  op_http_del(h);
  T_EQ_INT(never.n, 0);
  fs_stop(&s);
  fs_stop(&e);
  event_base_free(base);
}

typedef struct chain_ctx {
  op_http *h;
  op_http_opts *o;
  int left;
  int n;
} chain_ctx;

static void on_done_chain(void *arg, const op_http_result *res) {
  chain_ctx *c = arg;

  c->n++;
  if (res->status == OP_HTTP_DONE && --c->left > 0) {
    if (op_http_submit(c->h, c->o, on_done_chain, c, NULL) != GW_OK) {
      c->left = -1000;
    }
  }
}

/* Submitting from a callback: a chain of 50 requests, one after the other,
 * over one connection. */
static void t_submit_from_callback(void) {
  struct event_base *base = event_base_new();
  op_http *h = NULL;
  fs_server s;
  char u[128];
  op_http_opts o = {0};
  chain_ctx c;

  T_EQ_INT(op_http_new(&h, base, NULL), GW_OK);
  T_EQ_INT(fs_start(&s, h_echo, NULL), 0);
  url(u, sizeof(u), s.port, "/c");
  o.url = u;
  c = (chain_ctx){h, &o, 50, 0};
  T_EQ_INT(op_http_submit(h, &o, on_done_chain, &c, NULL), GW_OK);
  T_ASSERT(run_until(base, &c.n, 50, 10000));
  T_EQ_INT(c.left, 0);
  T_EQ_INT(atomic_load(&s.nconns), 1);
  op_http_del(h);
  fs_stop(&s);
  event_base_free(base);
}

/* ---- against the gateway's own server (HTTP/1.1 on the cleartext port) ----
 */

static void tweak_h2c(gw_config *cfg) {
  free(cfg->h2c_host);
  cfg->h2c_host = strdup("127.0.0.1");
  cfg->h2c_port = 0;
}

static void t_gateway_server(void) {
  struct event_base *base = event_base_new();
  op_http *h = NULL;
  ts_server ts;
  got g = {0};
  char u[128];
  op_http_opts o = {0};

  if (ts_start(&ts, 1, tweak_h2c, ts_echo_routes) != 0) {
    T_ASSERT(0);
    event_base_free(base);
    return;
  }
  T_EQ_INT(op_http_new(&h, base, NULL), GW_OK);
  url(u, sizeof(u), ts.h2c_port, "/body");
  o.url = u;
  o.content_type = "text/plain";
  o.body = "hello gateway";
  o.body_len = 13;
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 1, 5000));
  T_EQ_INT(g.res.status, OP_HTTP_DONE);
  T_EQ_INT(g.res.http_status, 200);
  T_ASSERT(strstr(g.body, "\"length\"") != NULL);
  T_ASSERT(strstr(g.body, "hello gateway") != NULL);
  T_ASSERT(strncmp(g.ct, "application/json", 16) == 0);
  url(u, sizeof(u), ts.h2c_port, "/echo/42");
  o.body = NULL;
  T_EQ_INT(op_http_submit(h, &o, on_done, &g, NULL), GW_OK);
  T_ASSERT(run_until(base, &g.n, 2, 5000));
  T_EQ_INT(g.res.http_status, 200);
  T_ASSERT(strstr(g.body, "\"42\"") != NULL);
  op_http_del(h);
  ts_stop(&ts);
  event_base_free(base);
}

int main(void) {
  T_EQ_INT(op_http_global_init(), GW_OK);
  T_RUN_CHILD(t_get_and_post);
  T_RUN_CHILD(t_bad_args);
  T_RUN_CHILD(t_connect_refused);
  T_RUN_CHILD(t_connect_timeout);
  T_RUN_CHILD(t_timeout_after_sending);
  T_RUN_CHILD(t_body_caps);
  T_RUN_CHILD(t_broken_answers);
  T_RUN_CHILD(t_concurrent_nonblocking);
  T_RUN_CHILD(t_cancel);
  T_RUN_CHILD(t_submit_from_callback);
  T_RUN_CHILD(t_gateway_server);
  return T_DONE();
}
