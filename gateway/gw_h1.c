/* gw_h1.c — HTTP/1.1 with the Node.js http_parser (Debian libhttp-parser):
 * keep-alive, chunked request bodies, pipelining (one request answered at a
 * time: the parser is paused at each message end until its response is
 * queued), Expect: 100-continue, and timers for slow headers, slow bodies
 * and idle keep-alive connections. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "gw_err.h"
#include "gw_log.h"
#include "gw_server_int.h"

/* Input buffered beyond what the parser has taken (pipelined requests
 * waiting for an answer); libevent stops reading above it. */
#define H1_INPUT_MAX (64 * 1024)

static uint64_t ms_ns(int ms) {
  return (uint64_t)ms * 1000000u;
}

/* Reading stays on while the parser is paused, so that a client that goes
 * away while its handler works is noticed (and the handler cancelled); the
 * read high-watermark set in gw_h1_start caps what piles up meanwhile. */
static void h1_update_read(gw_conn *c) {
  if (c->read_blocked || c->close_after_flush) {
    bufferevent_disable(c->bev, EV_READ);
  } else {
    bufferevent_enable(c->bev, EV_READ);
  }
}

static gw_conn *parser_conn(http_parser *p) {
  return p->data;
}

/* Commits the header whose name and value have been gathered. */
static int h1_commit_header(gw_conn *c) {
  int rv = GW_OK;

  if (c->h1_in_value) {
    rv = gw_exch_add_header(c->h1x, gw_buf_cstr(&c->h1_name), c->h1_name.len,
                            gw_buf_cstr(&c->h1_value), c->h1_value.len);
    gw_buf_reset(&c->h1_name);
    gw_buf_reset(&c->h1_value);
    c->h1_in_value = 0;
  }
  return rv;
}

static int on_message_begin(http_parser *p) {
  gw_conn *c = parser_conn(p);
  gw_exch *x = gw_exch_new(c, 0);

  if (!x) {
    return -1;
  }
  c->h1x = x;
  c->h1_req_start_ns = x->req.start_ns;
  gw_buf_reset(&c->h1_name);
  gw_buf_reset(&c->h1_value);
  c->h1_in_value = 0;
  gw_metrics_gauge(c->w->m, GW_G_STREAMS, 1);
  gw_conn_arm(c, x->req.start_ns + ms_ns(c->w->srv->cfg->header_timeout_ms));
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  gw_conn *c = parser_conn(p);

  /* The target is gathered in h1_value until the first header name. */
  if (gw_buf_append(&c->h1_value, at, n) != GW_OK) {
    gw_exch_reject(c->h1x, 414, "uri_too_long", "request target over %d bytes",
                   GW_MAX_TARGET);
  }
  return 0;
}

static void h1_finish_target(gw_conn *c) {
  gw_exch *x = c->h1x;

  if (!x->req.target && !x->reject_status) {
    gw_exch_set_target(x, gw_buf_cstr(&c->h1_value), c->h1_value.len);
    gw_buf_reset(&c->h1_value);
  }
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  gw_conn *c = parser_conn(p);

  h1_finish_target(c);
  if (h1_commit_header(c) == GW_ERR_NOMEM) {
    return -1;
  }
  if (gw_buf_append(&c->h1_name, at, n) != GW_OK) {
    gw_exch_reject(c->h1x, 431, "headers_too_large",
                   "a header name is too long");
  }
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  gw_conn *c = parser_conn(p);

  c->h1_in_value = 1;
  if (gw_buf_append(&c->h1_value, at, n) != GW_OK) {
    gw_exch_reject(c->h1x, 431, "headers_too_large",
                   "a header value is too long");
  }
  return 0;
}

static int on_headers_complete(http_parser *p) {
  gw_conn *c = parser_conn(p);
  gw_exch *x = c->h1x;
  const char *m = http_method_str((enum http_method)p->method);
  const char *expect;

  h1_finish_target(c);
  if (h1_commit_header(c) == GW_ERR_NOMEM) {
    return -1;
  }
  snprintf(x->req.method, sizeof(x->req.method), "%s", m);
  c->h1_keepalive = http_should_keep_alive(p) && !c->draining && !p->upgrade;
  if (p->http_major != 1) {
    gw_exch_reject(x, 505, "http_version_not_supported",
                   "only HTTP/1.0 and HTTP/1.1 are spoken here");
  }
  if (!x->req.authority && p->http_minor >= 1) {
    gw_exch_reject(x, 400, "missing_host", "HTTP/1.1 requests need a Host");
  }
  gw_exch_headers_done(x);
  if (x->responded) {
    /* Answered from the headers alone (404, 413, ...): a body that was
     * announced is not read, so the connection cannot be reused. */
    if ((p->flags & F_CHUNKED) ||
        (p->content_length > 0 && p->content_length != ULLONG_MAX)) {
      c->h1_keepalive = 0;
      c->linger = 1;
      http_parser_pause(p, 1);
    }
    return 0;
  }
  expect = gw_req_header(&x->req, "expect");
  if (expect && strcasecmp(expect, "100-continue") == 0 && p->http_minor >= 1) {
    evbuffer_add(bufferevent_get_output(c->bev),
                 "HTTP/1.1 100 Continue\r\n\r\n", 25);
  }
  gw_conn_arm(c, x->req.start_ns + ms_ns(c->w->srv->cfg->request_timeout_ms));
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  gw_conn *c = parser_conn(p);
  gw_exch *x = c->h1x;

  gw_exch_body(x, (const uint8_t *)at, n);
  if (x->responded && !x->request_done) {
    c->h1_keepalive = 0;
    c->linger = 1;
    http_parser_pause(p, 1);
  }
  return 0;
}

static int on_message_complete(http_parser *p) {
  gw_conn *c = parser_conn(p);

  gw_exch_request_done(c->h1x);
  /* Stop at the message boundary: the next pipelined request waits until
   * this one is answered. */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings h1_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int gw_h1_start(gw_conn *c) {
  const gw_config *cfg = c->w->srv->cfg;

  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  gw_buf_init(&c->h1_name, (size_t)cfg->max_header_list_size);
  gw_buf_init(&c->h1_value, (size_t)cfg->max_header_list_size > GW_MAX_TARGET
                                ? (size_t)cfg->max_header_list_size
                                : GW_MAX_TARGET);
  c->h1_keepalive = 1;
  bufferevent_setwatermark(c->bev, EV_READ, 0, H1_INPUT_MAX);
  gw_conn_arm(c, gw_now_ns() + ms_ns(cfg->idle_timeout_ms));
  return GW_OK;
}

/* Ends the answered request: either ready for the next one or closing. */
static void h1_request_finished(gw_conn *c) {
  gw_exch *x = c->h1x;

  c->h1x = NULL;
  c->h1_req_start_ns = 0;
  gw_exch_free(x);
  gw_metrics_gauge(c->w->m, GW_G_STREAMS, -1);
  if (!c->h1_keepalive) {
    c->close_after_flush = 1;
    bufferevent_disable(c->bev, EV_READ);
    return;
  }
  c->h1_paused = 0;
  http_parser_pause(&c->parser, 0);
  gw_conn_arm(c, gw_now_ns() + ms_ns(c->w->srv->cfg->idle_timeout_ms));
}

/* Answers a request the parser could not read, then closes. */
static void h1_parse_error(gw_conn *c, enum http_errno e) {
  gw_exch *x = c->h1x;

  if (x && x->dispatched && !x->responded) {
    gw_conn_close(c); /* the handler is still working; nothing to say */
    return;
  }
  if (!x) {
    x = gw_exch_new(c, 0);
    if (!x) {
      gw_conn_close(c);
      return;
    }
    c->h1x = x;
    gw_metrics_gauge(c->w->m, GW_G_STREAMS, 1);
  }
  c->h1_keepalive = 0;
  /* The parser is stopped for good: h1_process finishes this exchange and
   * closes once the answer is written. */
  c->h1_paused = 1;
  x->is_head = c->parser.method == HTTP_HEAD;
  if (!x->responded) {
    if (!x->req.method[0]) {
      snprintf(x->req.method, sizeof(x->req.method), "-");
    }
    gw_resp_error(x, 400, "bad_request", "malformed HTTP/1.1 request: %s",
                  http_errno_description(e));
  }
}

/* Feeds buffered input to the parser until it pauses or runs dry. */
static int h1_process(gw_conn *c) {
  struct evbuffer *in = bufferevent_get_input(c->bev);
  enum http_errno e;
  size_t len, n;
  char *data;

  for (;;) {
    if (c->h1x && c->h1x->responded && c->h1_paused) {
      h1_request_finished(c);
      if (c->close_after_flush) {
        break;
      }
    }
    if (c->h1_paused || c->dead || c->close_after_flush) {
      break;
    }
    len = evbuffer_get_length(in);
    if (len == 0) {
      break;
    }
    data = (char *)evbuffer_pullup(in, -1);
    c->in_callback = 1;
    n = http_parser_execute(&c->parser, &h1_settings, data, len);
    c->in_callback = 0;
    evbuffer_drain(in, n);
    e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
      c->h1_paused = 1;
      continue;
    }
    if (e != HPE_OK) {
      GW_LOG(GW_LOG_DEBUG, "http/1.1 parse error", "client=%s error=%s",
             c->client_ip, http_errno_name(e));
      c->in_callback = 1; /* no re-entry from gw_h1_submit */
      h1_parse_error(c, e);
      c->in_callback = 0;
      evbuffer_drain(in, evbuffer_get_length(in));
      continue; /* the top of the loop finishes the exchange and closes */
    }
    if (c->parser.upgrade) {
      /* Upgrade (h2c, websocket) is not offered: answer the request as
       * plain HTTP/1.1 and close. */
      c->h1_keepalive = 0;
      c->h1_paused = 1;
      evbuffer_drain(in, evbuffer_get_length(in));
      continue;
    }
    /* n < len without an error cannot happen; the loop re-reads anyway. */
  }
  h1_update_read(c);
  return GW_OK;
}

int gw_h1_on_read(gw_conn *c) {
  return h1_process(c);
}

void gw_h1_submit(gw_exch *x) {
  gw_conn *c = x->conn;
  struct evbuffer *out = bufferevent_get_output(c->bev);
  char line[64];
  int n;

  if (x->request_done == 0 && x->headers_done) {
    /* Answered before the body was read: the connection cannot be reused
     * unless there was no body at all. */
    if ((c->parser.flags & F_CHUNKED) ||
        (c->parser.content_length > 0 &&
         c->parser.content_length != ULLONG_MAX)) {
      c->h1_keepalive = 0;
    }
  }
  if (c->draining) {
    c->h1_keepalive = 0;
  }
  n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", x->status,
               gw_http_reason(x->status));
  evbuffer_add(out, line, (size_t)n);
  for (size_t i = 0; i < x->nresp_headers; i++) {
    evbuffer_add(out, x->resp_headers[i].name, strlen(x->resp_headers[i].name));
    evbuffer_add(out, ": ", 2);
    evbuffer_add(out, x->resp_headers[i].value,
                 strlen(x->resp_headers[i].value));
    evbuffer_add(out, "\r\n", 2);
  }
  if (!c->h1_keepalive) {
    evbuffer_add(out, "connection: close\r\n", 19);
  } else if (c->parser.http_major == 1 && c->parser.http_minor == 0) {
    evbuffer_add(out, "connection: keep-alive\r\n", 24);
  }
  evbuffer_add(out, "\r\n", 2);
  if (!x->is_head && x->resp_body.len) {
    evbuffer_add(out, x->resp_body.data, x->resp_body.len);
  }
  /* An early answer needs no pause here: without a body the parser reaches
   * the message end (and pauses there) in the same pass; with a body,
   * on_headers_complete or on_body paused it and cleared keep-alive; a
   * parse error or timeout ends the connection. */
  /* The answer must leave within the request timeout even if the client
   * stops reading (gw_h1_timer checks it). */
  gw_conn_arm(c, x->responded_ns + ms_ns(c->w->srv->cfg->request_timeout_ms));
  if (!c->in_callback) {
    /* An asynchronous handler answered: move on to the next request. */
    h1_process(c);
    gw_conn_pump(c);
    gw_conn_after_callback(c);
  }
}

void gw_h1_timer(gw_conn *c, uint64_t now) {
  const gw_config *cfg = c->w->srv->cfg;
  gw_exch *x = c->h1x;
  uint64_t d;

  if (x && !x->responded) {
    if (!x->headers_done) {
      d = x->req.start_ns + ms_ns(cfg->header_timeout_ms);
    } else if (!x->request_done) {
      d = x->req.start_ns + ms_ns(cfg->request_timeout_ms);
    } else {
      return; /* the handler is working: its own deadline applies */
    }
    if (now >= d) {
      gw_metrics_count(c->w->m, GW_M_TIMEOUTS);
      GW_LOG(GW_LOG_INFO, "request too slow", "client=%s phase=%s",
             c->client_ip, x->headers_done ? "body" : "headers");
      c->h1_keepalive = 0;
      if (!x->req.method[0]) {
        snprintf(x->req.method, sizeof(x->req.method), "-");
      }
      gw_resp_error(x, 408, "request_timeout",
                    "the request %s did not arrive within %d ms",
                    x->headers_done ? "body" : "headers",
                    x->headers_done ? cfg->request_timeout_ms
                                    : cfg->header_timeout_ms);
      c->close_after_flush = 1;
      return;
    }
    gw_conn_arm(c, d);
    return;
  }
  /* Between requests, or a response the client is slow to take. */
  d = c->last_active_ns + ms_ns(cfg->idle_timeout_ms);
  if (now >= d) {
    GW_LOG(GW_LOG_DEBUG, "idle connection closed", "client=%s proto=http/1.1",
           c->client_ip);
    gw_conn_close(c);
    return;
  }
  gw_conn_arm(c, d);
}

void gw_h1_shutdown(gw_conn *c) {
  c->h1_keepalive = 0;
  if (!c->h1x) {
    c->close_after_flush = 1;
  }
}

void gw_h1_free(gw_conn *c) {
  if (c->h1x) {
    if (!c->h1x->responded) {
      gw_exch_cancel(c->h1x);
    }
    gw_exch_free(c->h1x);
    c->h1x = NULL;
    gw_metrics_gauge(c->w->m, GW_G_STREAMS, -1);
  }
  gw_buf_free(&c->h1_name);
  gw_buf_free(&c->h1_value);
}
