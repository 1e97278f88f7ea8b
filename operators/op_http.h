/* op_http.h — outbound HTTP for the operator adapters: libcurl's multi
 * interface driven by a libevent event_base.
 *
 * One op_http per event loop (per worker thread): libcurl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it up
 * (CURLMOPT_TIMERFUNCTION); libevent watches them and we hand readiness back
 * with curl_multi_socket_action(), as in libcurl's multi-event.c and
 * hiperfifo.c examples. Nothing here blocks the loop: connects, TLS, name
 * resolution (libcurl's threaded resolver) and transfers all progress from
 * socket events. Connections are kept alive and reused between requests to
 * the same host (the multi handle's connection cache).
 *
 * Every request has a connect timeout, a timeout for the whole exchange and
 * a cap on the response body; a body over the cap ends the request at once
 * (Content-Length checked before reading, chunked bodies counted as they
 * come). Redirects are not followed; only http:// and https:// are allowed.
 *
 * Threading: an op_http and its requests belong to the thread running its
 * event_base. Call everything here from that thread (or before the loop
 * runs); completion callbacks run on it. op_http_global_init() once per
 * process first (op_http_new calls it; it is idempotent and thread-safe). */
#ifndef OP_HTTP_H
#define OP_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct op_http op_http;
typedef struct op_http_req op_http_req;

/* How a request ended. Only OP_HTTP_DONE means an HTTP response arrived
 * (of any status: 200, 400, 500 are all "done"). */
typedef enum op_http_status {
  OP_HTTP_DONE = 0,      /* a complete response */
  OP_HTTP_CONNECT = 1,   /* no connection: refused, unreachable, name not
                            resolved, or the connect timeout passed */
  OP_HTTP_TIMEOUT = 2,   /* connected, but the exchange timed out */
  OP_HTTP_TOO_LARGE = 3, /* the response body passed the cap */
  OP_HTTP_NETWORK = 4,   /* the connection broke during the exchange (reset,
                            closed before a full answer, TLS failure) */
  OP_HTTP_PROTO = 5,     /* the answer was not HTTP */
  OP_HTTP_INTERNAL = 6   /* out of memory or a libcurl failure */
} op_http_status;

/* A static lower-case name ("done", "connect", "timeout", ...). */
const char *op_http_status_str(op_http_status s);

/* Settings of one op_http (per event loop). */
typedef struct op_http_config {
  int max_host_connections;  /* open connections per host; 0 = unlimited.
                                Requests beyond wait in libcurl's queue (the
                                wait counts toward their timeout). */
  int max_total_connections; /* in all; 0 = unlimited */
  int max_idle_connections;  /* kept alive in the cache (CURLMOPT_MAXCONNECTS),
                                0 = libcurl's default */
} op_http_config;

/* One request. Strings and the body are copied by op_http_submit(). */
typedef struct op_http_opts {
  const char *url;            /* http:// or https:// */
  const char *content_type;   /* of the body; NULL: none */
  const char *const *headers; /* extra "Name: value" lines, NULL-ended;
                                 NULL: none */
  const void *body;           /* POST body; NULL: a GET */
  size_t body_len;
  int connect_timeout_ms; /* 1..; 0 = 2000 */
  int timeout_ms;         /* the whole exchange, connect included; 0 = 10000 */
  size_t max_response;    /* response body cap in bytes; 0 = 1 MiB */
  /* 1: send on a new connection (it may be kept for later requests).
   * libcurl silently sends a request again, on a fresh connection, when a
   * kept-alive connection it reused dies before any byte of the answer
   * (the server may have closed it while idle): right for idempotent
   * requests, wrong for one that must not be repeated (a signature
   * request would reach the phone twice). Set it for those. */
  int fresh_connect;
  /* PEM file of the CA certificates that verify an https:// server
   * (CURLOPT_CAINFO); NULL or "": libcurl's default trust store. */
  const char *ca_file;
  /* Called instead of the callback when op_http_del drops the request
   * (so that a fire-and-forget sender can free its context); NULL: none.
   * It must not submit. */
  void (*on_drop)(void *arg);
} op_http_opts;

/* What a finished request gives its callback. Everything is borrowed and
 * valid only during the callback. */
typedef struct op_http_result {
  op_http_status status;
  long http_status;         /* the response's status code (0 when none) */
  const char *content_type; /* the response's Content-Type, or NULL */
  const char *body;         /* the response body ("" when empty; always
                               NUL-terminated, may hold NULs) */
  size_t body_len;
  /* 0 when certainly no byte of the request reached the network (the
   * connection was never made): the request is then safe to send again
   * even when it is not idempotent. 1 otherwise. */
  int sent;
  uint64_t elapsed_ns; /* submit to completion */
  const char *error;   /* libcurl's text on failure, "" on success */
} op_http_result;

/* Called once per request that was neither cancelled nor dropped by
 * op_http_del. May submit and cancel other requests; must not call
 * op_http_del. The request is freed when the callback returns. */
typedef void (*op_http_done_fn)(void *arg, const op_http_result *res);

/* Initialises libcurl once per process (curl_global_init). Returns GW_OK or
 * GW_ERR_INTERNAL. */
int op_http_global_init(void);

/* Creates a client on |base| (borrowed; must outlive it). |cfg| may be NULL
 * for the defaults (all 0). Returns GW_OK, GW_ERR_NOMEM or GW_ERR_INTERNAL;
 * |*out| untouched on failure. */
int op_http_new(op_http **out, struct event_base *base,
                const op_http_config *cfg);

/* Drops every request in flight without calling their callbacks (only
 * their on_drop), closes the connections, frees the client. NULL is a
 * no-op. Not from a callback. */
void op_http_del(op_http *h);

/* Starts a request; |done(arg, res)| runs later on the loop, never before
 * op_http_submit returns. Stores a handle in |*out| (may be NULL when the
 * caller will never cancel). Returns GW_OK, GW_ERR_INVALID (no URL, not
 * http(s)://), GW_ERR_NOMEM, GW_ERR_INTERNAL. */
int op_http_submit(op_http *h, const op_http_opts *o, op_http_done_fn done,
                   void *arg, op_http_req **out);

/* Stops a request that has not completed yet: its callback will not run,
 * its connection is closed if a transfer was under way, the handle is
 * freed. Must not be called after the request's callback started. */
void op_http_cancel(op_http_req *r);

/* Requests in flight (submitted, not completed nor cancelled). */
size_t op_http_pending(const op_http *h);

/* The event base the client runs on (borrowed). */
struct event_base *op_http_base(const op_http *h);

#endif
