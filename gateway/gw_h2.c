/* gw_h2.c — HTTP/2 with nghttp2 (memory-buffer API, as in nghttp2's
 * libevent server tutorial for 1.52). Each stream's gw_exch is attached as
 * stream user data and freed in the stream-close callback. Hardening per
 * REFERENCE §4: SETTINGS below, nghttp2 options in gw_server.c, header-list
 * size enforced in gw_http.c, a stream-error budget, and timers for the
 * SETTINGS ACK, slow headers, slow request bodies and idle connections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gw_err.h"
#include "gw_log.h"
#include "gw_server_int.h"

#define WRITE_CHUNK 16384

static uint64_t ms_ns(int ms) {
  return (uint64_t)ms * 1000000u;
}

static gw_exch *stream_exch(gw_conn *c, int32_t stream_id) {
  return nghttp2_session_get_stream_user_data(c->h2, stream_id);
}

static void count_stream_error(gw_conn *c) {
  gw_metrics_count(c->w->m, GW_M_STREAM_ERRORS);
  if (++c->stream_errors == c->w->srv->cfg->stream_error_budget) {
    /* MadeYouReset and friends: a peer that keeps provoking stream errors
     * loses the connection (nghttp2 1.52 has no budget of its own). */
    GW_LOG(GW_LOG_WARN, "stream error budget exceeded", "client=%s errors=%d",
           c->client_ip, c->stream_errors);
    gw_metrics_count(c->w->m, GW_M_GOAWAY_CALM);
    nghttp2_session_terminate_session(c->h2, NGHTTP2_ENHANCE_YOUR_CALM);
  }
}

static int on_begin_headers(nghttp2_session *session,
                            const nghttp2_frame *frame, void *user_data) {
  gw_conn *c = user_data;
  gw_exch *x;

  if (frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    return 0;
  }
  x = gw_exch_new(c, frame->hd.stream_id);
  if (!x) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, x);
  x->next = c->streams;
  if (c->streams) {
    c->streams->prev = x;
  }
  c->streams = x;
  c->nstreams++;
  c->last_stream_ns = x->req.start_ns;
  gw_metrics_gauge(c->w->m, GW_G_STREAMS, 1);
  gw_conn_arm(c, x->req.start_ns + ms_ns(c->w->srv->cfg->header_timeout_ms));
  return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *user_data) {
  gw_conn *c = user_data;
  gw_exch *x;
  int rv;

  (void)session;
  (void)flags;
  if (frame->hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  x = stream_exch(c, frame->hd.stream_id);
  if (!x || x->headers_done) {
    return 0; /* trailers are not used by any route */
  }
  if (namelen > 0 && name[0] == ':') {
    rv = gw_exch_add_pseudo(x, (const char *)name, namelen, (const char *)value,
                            valuelen);
  } else {
    rv = gw_exch_add_header(x, (const char *)name, namelen, (const char *)value,
                            valuelen);
  }
  return rv == GW_ERR_NOMEM ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                         void *user_data) {
  gw_conn *c = user_data;
  gw_exch *x;

  (void)session;
  switch (frame->hd.type) {
  case NGHTTP2_SETTINGS:
    if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
      c->settings_acked = 1;
    }
    return 0;
  case NGHTTP2_HEADERS:
  case NGHTTP2_DATA:
    x = stream_exch(c, frame->hd.stream_id);
    if (!x) {
      return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && !x->headers_done) {
      gw_exch_headers_done(x);
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
      gw_exch_request_done(x);
    }
    return 0;
  default:
    return 0;
  }
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags,
                         int32_t stream_id, const uint8_t *data, size_t len,
                         void *user_data) {
  gw_conn *c = user_data;
  gw_exch *x = stream_exch(c, stream_id);

  (void)flags;
  if (!x) {
    return 0;
  }
  if (x->resp_ended && !x->request_done && !x->rst_sent &&
      (x->status == 413 || x->status == 408)) {
    /* Answered for its size or slowness while the client still sends: ask
     * it to stop (RFC 9113 §8.1, RST_STREAM NO_ERROR). Not at once after
     * the answer: curl 7.88 drops a response that arrives together with
     * the reset. Other early answers (404, 405) let the body finish,
     * discarded; the request timeout bounds one that never ends. */
    x->rst_sent = 1;
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id,
                              NGHTTP2_NO_ERROR);
    return 0;
  }
  gw_exch_body(x, data, len);
  return 0;
}

static void exch_unlink_free(gw_conn *c, gw_exch *x) {
  if (!x->responded) {
    gw_exch_cancel(x);
  }
  if (x->prev) {
    x->prev->next = x->next;
  } else {
    c->streams = x->next;
  }
  if (x->next) {
    x->next->prev = x->prev;
  }
  c->nstreams--;
  gw_metrics_gauge(c->w->m, GW_G_STREAMS, -1);
  gw_exch_free(x);
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id,
                           uint32_t error_code, void *user_data) {
  gw_conn *c = user_data;
  gw_exch *x = stream_exch(c, stream_id);

  (void)session;
  if (x) {
    nghttp2_session_set_stream_user_data(c->h2, stream_id, NULL);
    exch_unlink_free(c, x);
  }
  /* A client cancelling its own request is normal (browsers do it on every
   * navigation) and rapid cancelling is nghttp2's reset-rate limiter's
   * job; every other error code, ours or the peer's, spends budget. */
  if (error_code != NGHTTP2_NO_ERROR && error_code != NGHTTP2_CANCEL) {
    count_stream_error(c);
  }
  c->last_stream_ns = gw_now_ns();
  if (c->nstreams == 0) {
    if (c->draining) {
      c->close_after_flush = 1;
    }
    gw_conn_arm(c, gw_now_ns() + ms_ns(c->w->srv->cfg->idle_timeout_ms));
  }
  return 0;
}

static int on_invalid_frame(nghttp2_session *session,
                            const nghttp2_frame *frame, int lib_error_code,
                            void *user_data) {
  gw_conn *c = user_data;

  (void)session;
  GW_LOG(GW_LOG_DEBUG, "invalid http/2 frame",
         "client=%s type=%u stream=%d error=\"%s\"", c->client_ip,
         frame->hd.type, frame->hd.stream_id, nghttp2_strerror(lib_error_code));
  count_stream_error(c);
  return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame,
                         void *user_data) {
  gw_conn *c = user_data;
  gw_exch *x;

  (void)session;
  if (frame->hd.type == NGHTTP2_SETTINGS &&
      !(frame->hd.flags & NGHTTP2_FLAG_ACK) && !c->settings_sent_ns) {
    c->settings_sent_ns = gw_now_ns();
    return 0;
  }
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    x = stream_exch(c, frame->hd.stream_id);
    if (x) {
      x->resp_ended = 1;
    }
  }
  return 0;
}

static int on_error(nghttp2_session *session, int lib_error_code,
                    const char *msg, size_t len, void *user_data) {
  gw_conn *c = user_data;

  (void)session;
  (void)lib_error_code;
  GW_LOG(GW_LOG_DEBUG, "http/2 error", "client=%s error=\"%.*s\"", c->client_ip,
         (int)(len > 200 ? 200 : len), msg);
  return 0;
}

int gw_h2_callbacks_new(nghttp2_session_callbacks **out) {
  nghttp2_session_callbacks *cb;

  if (nghttp2_session_callbacks_new(&cb) != 0) {
    return GW_ERR_NOMEM;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
      cb, on_invalid_frame);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
  nghttp2_session_callbacks_set_error_callback2(cb, on_error);
  *out = cb;
  return GW_OK;
}

int gw_h2_start(gw_conn *c) {
  const gw_config *cfg = c->w->srv->cfg;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
       (uint32_t)cfg->max_concurrent_streams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       (uint32_t)cfg->max_header_list_size},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };

  if (nghttp2_session_server_new2(&c->h2, c->w->srv->h2_callbacks, c,
                                  c->w->srv->h2_option) != 0) {
    return GW_ERR_NOMEM;
  }
  if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv,
                              sizeof(iv) / sizeof(iv[0])) != 0) {
    return GW_ERR_NOMEM;
  }
  c->last_stream_ns = gw_now_ns();
  gw_conn_arm(c, gw_now_ns() + ms_ns(cfg->settings_ack_timeout_ms));
  gw_conn_arm(c, gw_now_ns() + ms_ns(cfg->idle_timeout_ms));
  return GW_OK;
}

int gw_h2_on_read(gw_conn *c) {
  struct evbuffer *in = bufferevent_get_input(c->bev);
  size_t len = evbuffer_get_length(in);
  unsigned char *data;
  ssize_t n;

  if (len == 0) {
    return GW_OK;
  }
  /* The whole buffer at once (REFERENCE §4: CONTINUATION flood fix). */
  data = evbuffer_pullup(in, -1);
  c->in_callback = 1;
  n = nghttp2_session_mem_recv(c->h2, data, len);
  c->in_callback = 0;
  if (n < 0) {
    GW_LOG(GW_LOG_DEBUG, "http/2 session error", "client=%s error=\"%s\"",
           c->client_ip, nghttp2_strerror((int)n));
    evbuffer_drain(in, len);
    if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
      return GW_ERR_PROTO; /* not HTTP/2 at all: nothing to say */
    }
    /* Send the GOAWAY nghttp2 queued, then close. */
    nghttp2_session_terminate_session(c->h2, NGHTTP2_PROTOCOL_ERROR);
    c->close_after_flush = 1;
    return GW_OK;
  }
  evbuffer_drain(in, (size_t)n);
  return GW_OK;
}

int gw_h2_pump(gw_conn *c) {
  struct evbuffer *out = bufferevent_get_output(c->bev);
  size_t cap = c->w->srv->cfg->max_output_buffer;
  uint8_t chunk[WRITE_CHUNK];
  size_t used = 0;
  const uint8_t *data;
  ssize_t n;

  /* Frames are gathered into one buffer so that TLS writes full records
   * rather than one small record per frame. */
  while (evbuffer_get_length(out) + used < cap) {
    n = nghttp2_session_mem_send(c->h2, &data);
    if (n < 0) {
      return GW_ERR_PROTO;
    }
    if (n == 0) {
      break;
    }
    if (used + (size_t)n > sizeof(chunk)) {
      if (used) {
        evbuffer_add(out, chunk, used);
        used = 0;
      }
      if ((size_t)n > sizeof(chunk)) {
        evbuffer_add(out, data, (size_t)n);
        continue;
      }
    }
    memcpy(chunk + used, data, (size_t)n);
    used += (size_t)n;
  }
  if (used) {
    evbuffer_add(out, chunk, used);
  }
  if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)) {
    c->close_after_flush = 1;
  }
  return GW_OK;
}

static ssize_t body_read(nghttp2_session *session, int32_t stream_id,
                         uint8_t *buf, size_t length, uint32_t *flags,
                         nghttp2_data_source *source, void *user_data) {
  gw_exch *x = source->ptr;
  size_t left = x->resp_body.len - x->resp_off;
  size_t n = left < length ? left : length;

  (void)session;
  (void)stream_id;
  (void)user_data;
  if (n) {
    memcpy(buf, x->resp_body.data + x->resp_off, n);
  }
  x->resp_off += n;
  if (x->resp_off == x->resp_body.len) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return (ssize_t)n;
}

void gw_h2_submit(gw_exch *x) {
  gw_conn *c = x->conn;
  nghttp2_nv nva[GW_RESP_MAX_HEADERS + 1];
  nghttp2_data_provider prd;
  size_t n = 0;
  int rv;

  x->status_str[0] = (char)('0' + x->status / 100 % 10);
  x->status_str[1] = (char)('0' + x->status / 10 % 10);
  x->status_str[2] = (char)('0' + x->status % 10);
  x->status_str[3] = '\0';
  /* The strings live in the exchange until its stream closes. */
  nva[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)x->status_str, 7, 3,
                          NGHTTP2_NV_FLAG_NO_COPY_NAME |
                              NGHTTP2_NV_FLAG_NO_COPY_VALUE};
  for (size_t i = 0; i < x->nresp_headers; i++) {
    nva[n++] = (nghttp2_nv){
        (uint8_t *)x->resp_headers[i].name, (uint8_t *)x->resp_headers[i].value,
        strlen(x->resp_headers[i].name), strlen(x->resp_headers[i].value),
        NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
  }
  prd.source.ptr = x;
  prd.read_callback = body_read;
  /* The answer must leave within the request timeout even if the client
   * keeps its window shut (gw_h2_timer resets the stream then). */
  gw_conn_arm(c, x->responded_ns + ms_ns(c->w->srv->cfg->request_timeout_ms));
  rv = nghttp2_submit_response(c->h2, x->stream_id, nva, n,
                               (x->is_head || x->resp_body.len == 0) ? NULL
                                                                     : &prd);
  if (rv != 0) {
    GW_LOG(GW_LOG_WARN, "cannot submit response", "client=%s error=\"%s\"",
           c->client_ip, nghttp2_strerror(rv));
    nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, x->stream_id,
                              NGHTTP2_INTERNAL_ERROR);
  }
  gw_conn_pump(c);
  gw_conn_after_callback(c);
}

void gw_h2_timer(gw_conn *c, uint64_t now) {
  const gw_config *cfg = c->w->srv->cfg;
  uint64_t next = UINT64_MAX, d;
  gw_exch *x, *xn;

  if (!c->settings_acked && c->settings_sent_ns) {
    d = c->settings_sent_ns + ms_ns(cfg->settings_ack_timeout_ms);
    if (now >= d) {
      GW_LOG(GW_LOG_INFO, "http/2 settings not acknowledged in time",
             "client=%s", c->client_ip);
      gw_metrics_count(c->w->m, GW_M_TIMEOUTS);
      nghttp2_session_terminate_session(c->h2, NGHTTP2_SETTINGS_TIMEOUT);
      c->close_after_flush = 1;
      gw_conn_pump(c);
      return;
    }
    next = d;
  }
  for (x = c->streams; x; x = xn) {
    xn = x->next;
    if (!x->headers_done) {
      d = x->req.start_ns + ms_ns(cfg->header_timeout_ms);
      if (now >= d) {
        /* A header block split over slow CONTINUATION frames blocks the
         * whole connection: end it. */
        GW_LOG(GW_LOG_INFO, "http/2 headers too slow", "client=%s",
               c->client_ip);
        gw_metrics_count(c->w->m, GW_M_TIMEOUTS);
        nghttp2_session_terminate_session(c->h2, NGHTTP2_ENHANCE_YOUR_CALM);
        c->close_after_flush = 1;
        gw_conn_pump(c);
        return;
      }
    } else {
      if (x->request_done && !x->responded) {
        continue; /* the handler is working: its own deadline applies */
      }
      if (!x->responded) {
        d = x->req.start_ns + ms_ns(cfg->request_timeout_ms);
        if (now >= d) {
          gw_metrics_count(c->w->m, GW_M_TIMEOUTS);
          gw_resp_error(x, 408, "request_timeout",
                        "the request body did not arrive within %d ms",
                        cfg->request_timeout_ms);
          /* Come back to reap the stream if the client neither ends nor
           * resets it once the answer has had time to leave. */
          d = now + ms_ns(1000);
        }
      } else {
        /* An answer stuck behind a window the client never opens, or a
         * stream the client keeps open after an early answer. */
        d = x->responded_ns + ms_ns(cfg->request_timeout_ms);
        if (x->status == 408) {
          d = x->responded_ns + ms_ns(1000);
        }
        if (now >= d) {
          if (!x->rst_sent) {
            x->rst_sent = 1;
            nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, x->stream_id,
                                      NGHTTP2_CANCEL);
          }
          continue;
        }
      }
    }
    if (d < next) {
      next = d;
    }
  }
  if (c->nstreams == 0) {
    /* From the last stream, not the last frame: PINGs do not keep an
     * otherwise unused connection open. */
    d = c->last_stream_ns + ms_ns(cfg->idle_timeout_ms);
    if (now >= d) {
      GW_LOG(GW_LOG_DEBUG, "idle connection closed", "client=%s proto=h2",
             c->client_ip);
      nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
                            nghttp2_session_get_last_proc_stream_id(c->h2),
                            NGHTTP2_NO_ERROR, NULL, 0);
      c->close_after_flush = 1;
      gw_conn_pump(c);
      return;
    }
    if (d < next) {
      next = d;
    }
  }
  gw_conn_pump(c);
  if (next != UINT64_MAX) {
    gw_conn_arm(c, next);
  }
}

void gw_h2_shutdown(gw_conn *c) {
  nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(c->h2),
                        NGHTTP2_NO_ERROR, NULL, 0);
  if (c->nstreams == 0) {
    c->close_after_flush = 1;
  }
}

void gw_h2_free(gw_conn *c) {
  /* nghttp2_session_del does not run the stream-close callback. */
  while (c->streams) {
    exch_unlink_free(c, c->streams);
  }
  nghttp2_session_del(c->h2);
  c->h2 = NULL;
}
