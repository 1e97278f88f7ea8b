/* gw_server_int.h — private structures shared by gw_server.c, gw_http.c,
 * gw_h1.c and gw_h2.c. Not for other modules. */
#ifndef GW_SERVER_INT_H
#define GW_SERVER_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <pthread.h>

#include "gw_metrics.h"
#include "gw_server.h"

#define GW_RESP_MAX_HEADERS 32 /* 16 from handlers + standard ones */
#define GW_RESP_MAX_APP_HEADERS 16
#define GW_MAX_TARGET 8192

typedef struct gw_worker gw_worker;
typedef struct gw_conn gw_conn;

#define GW_EXCH_ARENA 2048    /* inline bytes for the request's strings */
#define GW_EXCH_POOL_MAX 1024 /* recycled exchanges kept per worker */

struct gw_exch {
  gw_conn *conn;
  int32_t stream_id;   /* HTTP/2 stream, 0 for HTTP/1.1 */
  size_t header_bytes; /* name + value + 32 per field, as RFC 9113 counts */
  size_t header_count;
  int headers_done;
  int request_done;
  int dispatched;
  int responded;
  int is_head;
  int resp_ended; /* HTTP/2: END_STREAM of the response sent */
  uint64_t responded_ns;
  int rst_sent;
  /* A problem found while parsing, answered once the headers are in. */
  int reject_status;
  const char *reject_code;
  char reject_msg[160];
  /* Response. */
  int status;
  struct {
    const char *name, *value;
  } resp_headers[GW_RESP_MAX_HEADERS];
  size_t nresp_headers;
  size_t nresp_app; /* headers set by the handler */
  char clen[24];
  gw_buf resp_body;
  size_t resp_off; /* HTTP/2: bytes of resp_body already framed */
  char status_str[8];
  void (*cancel_fn)(void *arg);
  void *cancel_arg;
  gw_exch *prev, *next; /* the connection's open HTTP/2 streams */
  /* Strings of the request and of handler-set response headers come from
   * this arena (inline first, then malloc'd blocks), so that a request
   * costs no allocation per header. Everything from |req| on is not zeroed
   * on reuse: |req| is set field by field, the arena needs no zeroing. */
  struct gw_arena_block *arena_blocks;
  size_t arena_used;
  gw_req req;
  char arena[GW_EXCH_ARENA];
};

typedef enum {
  GW_CONN_PEEK = 0,  /* accepted, waiting for the first byte */
  GW_CONN_HANDSHAKE, /* TLS handshake in progress */
  GW_CONN_OPEN,      /* speaking HTTP */
} gw_conn_state;

struct gw_conn {
  gw_worker *w;
  int fd;
  gw_conn_state state;
  gw_proto proto;
  int secure;
  struct event *peek_ev;
  struct bufferevent *bev;
  struct event *timer;
  uint64_t timer_at_ns; /* when |timer| fires, 0 when not armed */
  uint64_t accepted_ns;
  uint64_t last_active_ns;
  char client_ip[64];
  int in_callback; /* inside a parser callback: defer output and frees */
  int want_pump;
  int read_blocked; /* reading stopped while output drains */
  int draining;     /* server shutdown: finish what is in flight */
  int close_after_flush;
  uint64_t flush_deadline_ns; /* closing: the output must be gone by then */
  uint64_t last_stream_ns;    /* HTTP/2: last stream opened or closed */
  int freeing;                /* inside conn_free: no re-entry */
  /* HTTP/1.1 answered with request-body bytes unread: closing at once would
   * make the kernel reset the connection and the client lose the answer,
   * so the server keeps reading and discarding for a bounded time. */
  int linger;
  int lingering;
  uint64_t linger_until_ns;
  size_t linger_bytes;
  int dead; /* free at the end of the current callback */
  gw_conn *prev, *next;

  /* HTTP/2 */
  nghttp2_session *h2;
  int settings_acked;
  uint64_t settings_sent_ns;
  int stream_errors;
  gw_exch *streams;
  int nstreams;

  /* HTTP/1.1 */
  http_parser parser;
  gw_exch *h1x;    /* the request being read or answered */
  gw_buf h1_name;  /* header name being read */
  gw_buf h1_value; /* header value being read */
  int h1_in_value;
  int h1_keepalive;
  int h1_paused;            /* parser paused until the response is written */
  uint64_t h1_req_start_ns; /* 0 when between requests */
};

struct gw_worker {
  gw_server *srv;
  int idx;
  pthread_t thread;
  struct event_base *base;
  struct evconnlistener *tls_listener;
  struct evconnlistener *h2c_listener;
  struct event *shutdown_ev;
  struct event *grace_ev;
  struct event *flush_ev;
  int shutting_down;
  gw_conn *conns;
  int nconns;
  gw_metrics_shard *m;
  gw_buf access_log;    /* buffered access-log lines, flushed by timer */
  gw_log_rl rl_refused; /* rate limits of lines any client can trigger */
  gw_log_rl rl_plain;
  gw_exch *exch_pool; /* recycled exchanges (h2o's mempool idea) */
  int exch_pool_len;
  time_t date_sec;
  time_t log_ts_sec;
  char log_ts[24]; /* cached "YYYY-MM-DDTHH:MM:SS" for the access log */
  char date[40];   /* cached IMF-fixdate */
};

struct gw_server {
  const gw_config *cfg;
  gw_router *router;
  void *app;
  SSL_CTX *ssl_ctx;
  gw_metrics *metrics;
  int nworkers;
  gw_worker *workers;
  int tls_fds[64];
  int h2c_fds[64];
  int tls_port;
  int h2c_port;
  atomic_int nconns;
  atomic_int healthy;
  pthread_mutex_t ip_lock;
  struct gw_ip_count **ip_table;
  size_t ip_table_size;
  nghttp2_option *h2_option;
  int (*metrics_hook)(void *arg, gw_buf *out);
  void *metrics_hook_arg;
  nghttp2_session_callbacks *h2_callbacks;
};

/* gw_http.c */
gw_exch *gw_exch_new(gw_conn *c, int32_t stream_id); /* NULL: no memory */
void gw_exch_free(gw_exch *x);                       /* back to the pool */
void gw_worker_exch_pool_free(gw_worker *w);
int gw_exch_add_header(gw_exch *x, const char *name, size_t nlen,
                       const char *value, size_t vlen);
int gw_exch_add_pseudo(gw_exch *x, const char *name, size_t nlen,
                       const char *value, size_t vlen);
int gw_exch_set_target(gw_exch *x, const char *target, size_t n);
void gw_exch_headers_done(gw_exch *x);
void gw_exch_body(gw_exch *x, const uint8_t *data, size_t n);
void gw_exch_request_done(gw_exch *x);
void gw_exch_cancel(gw_exch *x);
void gw_exch_reject(gw_exch *x, int status, const char *code, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
const char *gw_worker_date(gw_worker *w);

/* gw_server.c */
void gw_conn_pump(gw_conn *c);  /* write what is queued, maybe close */
void gw_conn_close(gw_conn *c); /* mark dead; freed after the callback */
void gw_conn_arm(gw_conn *c, uint64_t deadline_ns);
void gw_conn_after_callback(gw_conn *c);

/* gw_h2.c */
int gw_h2_callbacks_new(nghttp2_session_callbacks **out);
int gw_h2_start(gw_conn *c);
int gw_h2_on_read(gw_conn *c);
int gw_h2_pump(gw_conn *c);
void gw_h2_submit(gw_exch *x);
void gw_h2_timer(gw_conn *c, uint64_t now);
void gw_h2_shutdown(gw_conn *c);
void gw_h2_free(gw_conn *c);

/* gw_h1.c */
int gw_h1_start(gw_conn *c);
int gw_h1_on_read(gw_conn *c);
void gw_h1_submit(gw_exch *x);
void gw_h1_timer(gw_conn *c, uint64_t now);
void gw_h1_shutdown(gw_conn *c);
void gw_h1_free(gw_conn *c);

#endif
