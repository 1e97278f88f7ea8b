/* op_http.c — libcurl multi + libevent, after libcurl's multi-event.c.
 *
 * libcurl asks, through sock_cb(), for a socket to be watched for reading
 * and/or writing, or forgotten; each watched socket gets a persistent
 * libevent event (struct sock_ctx, attached to the socket with
 * curl_multi_assign). libcurl asks, through timer_cb(), to be called after
 * some milliseconds: one evtimer. When either fires we call
 * curl_multi_socket_action() and then collect finished transfers
 * (finish_done()).
 *
 * Callbacks into the adapters never run inside a libcurl callback: finished
 * transfers are first all taken off the multi handle, then their callbacks
 * run one by one. A callback may cancel another request of the same batch:
 * it is then marked and skipped. */
#include "op_http.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "gw_buf.h"
#include "gw_err.h"
#include "gw_log.h"

#define DEF_CONNECT_MS 2000
#define DEF_TIMEOUT_MS 10000
#define DEF_MAX_RESPONSE (1024 * 1024)
#define EASY_POOL_MAX 32 /* idle easy handles kept for reuse */

struct op_http_req {
  op_http *h;
  CURL *easy;
  struct curl_slist *hdrs;
  gw_buf body;
  op_http_done_fn done;
  void (*on_drop)(void *arg);
  void *arg;
  uint64_t start_ns;
  int too_large; /* the write callback refused more bytes */
  int finished;  /* taken off the multi handle, callback pending */
  int cancelled; /* cancelled while in the finished batch */
  /* Result kept between finishing and the callback. */
  CURLcode code;
  char errbuf[CURL_ERROR_SIZE];
  op_http_req *prev, *next; /* h->reqs */
  op_http_req *done_next;   /* the finished batch */
};

typedef struct sock_ctx {
  struct event *ev;
  op_http *h;
  curl_socket_t fd;
} sock_ctx;

struct op_http {
  struct event_base *base;
  CURLM *multi;
  struct event *timer;
  op_http_req *reqs; /* in flight */
  size_t nreqs;
  CURL *pool[EASY_POOL_MAX];
  int npool;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rv = GW_ERR_INTERNAL;

static void global_init_once(void) {
  global_rv = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK
                  ? GW_OK
                  : GW_ERR_INTERNAL;
}

int op_http_global_init(void) {
  pthread_once(&global_once, global_init_once);
  return global_rv;
}

const char *op_http_status_str(op_http_status s) {
  switch (s) {
  case OP_HTTP_DONE:
    return "done";
  case OP_HTTP_CONNECT:
    return "connect";
  case OP_HTTP_TIMEOUT:
    return "timeout";
  case OP_HTTP_TOO_LARGE:
    return "too_large";
  case OP_HTTP_NETWORK:
    return "network";
  case OP_HTTP_PROTO:
    return "proto";
  case OP_HTTP_INTERNAL:
    return "internal";
  }
  return "unknown";
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- finishing ------------------------------------------------------------
 */

static void req_unlink(op_http_req *r) {
  op_http *h = r->h;

  if (r->prev) {
    r->prev->next = r->next;
  } else {
    h->reqs = r->next;
  }
  if (r->next) {
    r->next->prev = r->prev;
  }
  r->prev = r->next = NULL;
  h->nreqs--;
}

/* Returns the easy handle to the pool (or frees it) and frees |r|. The
 * handle must be off the multi handle already. */
static void req_free(op_http_req *r) {
  op_http *h = r->h;

  if (r->easy) {
    if (h->npool < EASY_POOL_MAX) {
      curl_easy_reset(r->easy);
      h->pool[h->npool++] = r->easy;
    } else {
      curl_easy_cleanup(r->easy);
    }
  }
  curl_slist_free_all(r->hdrs);
  gw_buf_free(&r->body);
  free(r);
}

/* Sorts a libcurl result into an op_http_status; sets |*sent|. */
static op_http_status classify(op_http_req *r, int *sent) {
  curl_off_t pre = 0, conn = 0;

  curl_easy_getinfo(r->easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
  curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &conn);
  /* PRETRANSFER is stamped just before the request is written: while it is
   * 0 nothing was sent. */
  *sent = pre > 0 || r->code == CURLE_OK;
  switch (r->code) {
  case CURLE_OK:
    return OP_HTTP_DONE;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
    *sent = 0;
    return OP_HTTP_CONNECT;
  case CURLE_OPERATION_TIMEDOUT:
    return conn == 0 && pre == 0 ? OP_HTTP_CONNECT : OP_HTTP_TIMEOUT;
  case CURLE_FILESIZE_EXCEEDED:
    return OP_HTTP_TOO_LARGE;
  case CURLE_WRITE_ERROR:
    return r->too_large ? OP_HTTP_TOO_LARGE : OP_HTTP_INTERNAL;
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_TOO_MANY_REDIRECTS:
    return OP_HTTP_PROTO;
  case CURLE_OUT_OF_MEMORY:
  case CURLE_FAILED_INIT:
    return OP_HTTP_INTERNAL;
  default:
    return OP_HTTP_NETWORK;
  }
}

static void run_callback(op_http_req *r) {
  op_http_result res = {0};
  long code = 0;
  char *ct = NULL;

  res.status = classify(r, &res.sent);
  if (res.status == OP_HTTP_DONE) {
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
  }
  res.http_status = code;
  res.content_type = ct;
  res.body = r->body.data ? r->body.data : "";
  res.body_len = r->body.len;
  res.elapsed_ns = now_ns() - r->start_ns;
  res.error = r->code == CURLE_OK
                  ? ""
                  : (r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->code));
  r->done(r->arg, &res);
}

/* Takes every finished transfer off the multi handle, then runs the
 * callbacks (a callback's submit or cancel never re-enters libcurl's
 * socket handling, so this does not recurse). */
static void finish_done(op_http *h) {
  op_http_req *batch = NULL, **tail = &batch;
  CURLMsg *msg;
  int left;

  while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
    op_http_req *r = NULL;

    if (msg->msg != CURLMSG_DONE) {
      continue;
    }
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (!r) {
      continue;
    }
    r->code = msg->data.result;
    curl_multi_remove_handle(h->multi, r->easy);
    req_unlink(r);
    r->finished = 1;
    *tail = r;
    tail = &r->done_next;
  }
  if (!batch) {
    return;
  }
  while (batch) {
    op_http_req *r = batch;

    batch = r->done_next;
    if (!r->cancelled) {
      run_callback(r);
    }
    req_free(r);
  }
}

/* ---- libcurl <-> libevent -------------------------------------------------
 */

static void on_sock_event(evutil_socket_t fd, short what, void *arg) {
  sock_ctx *sc = arg;
  op_http *h = sc->h;
  int flags = 0, running = 0;

  if (what & EV_READ) {
    flags |= CURL_CSELECT_IN;
  }
  if (what & EV_WRITE) {
    flags |= CURL_CSELECT_OUT;
  }
  /* |sc| may be freed inside (CURL_POLL_REMOVE): not touched afterwards. */
  curl_multi_socket_action(h->multi, fd, flags, &running);
  finish_done(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  op_http *h = arg;
  int running = 0;

  (void)fd;
  (void)what;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  finish_done(h);
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp,
                   void *socketp) {
  op_http *h = userp;
  sock_ctx *sc = socketp;
  short kind;

  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (sc) {
      event_free(sc->ev);
      free(sc);
    }
    return 0;
  }
  kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
         ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
  if (!sc) {
    sc = calloc(1, sizeof(*sc));
    if (!sc) {
      return -1;
    }
    sc->h = h;
    sc->fd = s;
    sc->ev = event_new(h->base, s, kind, on_sock_event, sc);
    if (!sc->ev) {
      free(sc);
      return -1;
    }
    curl_multi_assign(h->multi, s, sc);
  } else {
    event_del(sc->ev);
    event_assign(sc->ev, h->base, s, kind, on_sock_event, sc);
  }
  if (event_add(sc->ev, NULL) != 0) {
    return -1;
  }
  return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  op_http *h = userp;
  struct timeval tv;

  (void)multi;
  if (timeout_ms < 0) {
    evtimer_del(h->timer);
    return 0;
  }
  /* 0 means "as soon as possible": the next loop iteration, never from
   * inside this callback (libcurl forbids re-entry). */
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

static size_t write_cb(char *p, size_t size, size_t n, void *arg) {
  op_http_req *r = arg;
  size_t len = size * n;

  if (gw_buf_append(&r->body, p, len) != GW_OK) {
    r->too_large = 1;
    return 0; /* CURLE_WRITE_ERROR ends the transfer */
  }
  return len;
}

/* ---- public ---------------------------------------------------------------
 */

int op_http_new(op_http **out, struct event_base *base,
                const op_http_config *cfg) {
  op_http_config def = {0};
  op_http *h;

  if (!out || !base) {
    return GW_ERR_INVALID;
  }
  if (op_http_global_init() != GW_OK) {
    return GW_ERR_INTERNAL;
  }
  if (!cfg) {
    cfg = &def;
  }
  h = calloc(1, sizeof(*h));
  if (!h) {
    return GW_ERR_NOMEM;
  }
  h->base = base;
  h->multi = curl_multi_init();
  if (!h->multi) {
    goto fail_h;
  }
  h->timer = evtimer_new(base, on_timer, h);
  if (!h->timer) {
    goto fail_multi;
  }
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  if (cfg->max_host_connections > 0) {
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)cfg->max_host_connections);
  }
  if (cfg->max_total_connections > 0) {
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      (long)cfg->max_total_connections);
  }
  if (cfg->max_idle_connections > 0) {
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS,
                      (long)cfg->max_idle_connections);
  }
  *out = h;
  return GW_OK;

fail_multi:
  curl_multi_cleanup(h->multi);
fail_h:
  free(h);
  return GW_ERR_INTERNAL;
}

void op_http_del(op_http *h) {
  if (!h) {
    return;
  }
  while (h->reqs) {
    op_http_req *r = h->reqs;

    curl_multi_remove_handle(h->multi, r->easy);
    req_unlink(r);
    if (r->on_drop) {
      r->on_drop(r->arg);
    }
    req_free(r);
  }
  /* Closes the cached connections; their sockets come back through
   * sock_cb(CURL_POLL_REMOVE), which frees the events. */
  curl_multi_cleanup(h->multi);
  for (int i = 0; i < h->npool; i++) {
    curl_easy_cleanup(h->pool[i]);
  }
  event_free(h->timer);
  free(h);
}

static int url_ok(const char *url) {
  return url &&
         (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0);
}

int op_http_submit(op_http *h, const op_http_opts *o, op_http_done_fn done,
                   void *arg, op_http_req **out) {
  op_http_req *r;
  CURL *e;
  char line[320];
  int rv = GW_ERR_NOMEM;

  if (!h || !o || !done || !url_ok(o->url)) {
    return GW_ERR_INVALID;
  }
  r = calloc(1, sizeof(*r));
  if (!r) {
    return GW_ERR_NOMEM;
  }
  r->h = h;
  r->done = done;
  r->on_drop = o->on_drop;
  r->arg = arg;
  gw_buf_init(&r->body, o->max_response ? o->max_response : DEF_MAX_RESPONSE);
  if (h->npool > 0) {
    e = h->pool[--h->npool];
  } else {
    e = curl_easy_init();
    if (!e) {
      rv = GW_ERR_INTERNAL;
      goto fail;
    }
  }
  r->easy = e;

  /* libcurl adds "Expect: 100-continue" to larger POSTs and then waits a
   * second for a 100 that few servers send: off. */
  r->hdrs = curl_slist_append(NULL, "Expect:");
  if (!r->hdrs) {
    goto fail;
  }
  if (o->content_type) {
    struct curl_slist *t;
    snprintf(line, sizeof(line), "Content-Type: %s", o->content_type);
    t = curl_slist_append(r->hdrs, line);
    if (!t) {
      goto fail;
    }
    r->hdrs = t;
  }
  for (const char *const *hp = o->headers; hp && *hp; hp++) {
    struct curl_slist *t = curl_slist_append(r->hdrs, *hp);
    if (!t) {
      goto fail;
    }
    r->hdrs = t;
  }

  if (curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK) {
    rv = GW_ERR_INVALID;
    goto fail;
  }
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(
      e, CURLOPT_MAXFILESIZE_LARGE,
      (curl_off_t)(o->max_response ? o->max_response : DEF_MAX_RESPONSE));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(o->connect_timeout_ms > 0 ? o->connect_timeout_ms
                                                    : DEF_CONNECT_MS));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                   (long)(o->timeout_ms > 0 ? o->timeout_ms : DEF_TIMEOUT_MS));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  if (o->ca_file && o->ca_file[0] &&
      curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file) != CURLE_OK) {
    goto fail;
  }
  if (o->fresh_connect) {
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  }
  if (o->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
    if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body) != CURLE_OK) {
      goto fail;
    }
  }
  r->start_ns = now_ns();
  if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
    rv = GW_ERR_INTERNAL;
    goto fail;
  }
  r->next = h->reqs;
  if (h->reqs) {
    h->reqs->prev = r;
  }
  h->reqs = r;
  h->nreqs++;
  if (out) {
    *out = r;
  }
  return GW_OK;

fail:
  r->h = h;
  req_free(r);
  return rv;
}

void op_http_cancel(op_http_req *r) {
  if (!r) {
    return;
  }
  if (r->finished) {
    /* In the batch being finished: skipped, freed by finish_done(). */
    r->cancelled = 1;
    return;
  }
  curl_multi_remove_handle(r->h->multi, r->easy);
  req_unlink(r);
  req_free(r);
}

size_t op_http_pending(const op_http *h) {
  return h ? h->nreqs : 0;
}

struct event_base *op_http_base(const op_http *h) {
  return h ? h->base : NULL;
}
