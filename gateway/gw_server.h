/* gw_server.h — the HTTP server: listeners, worker threads, connections.
 *
 * N worker threads (server.workers), each with its own libevent loop and
 * its own listening socket on the same port (SO_REUSEPORT). TLS 1.2+ with
 * ALPN h2 (preferred) and http/1.1; an optional cleartext h2c listener.
 * Requests from both protocols reach the route table as gw_exch. */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stddef.h>

#include "gw_buf.h"
#include "gw_config.h"
#include "gw_http.h"
#include "gw_router.h"

typedef struct gw_server gw_server;

/* Creates the server: TLS context (certificate and key from |cfg|), the
 * listening sockets (bound now, so that a busy port fails start-up), the
 * metrics registry. |router| and |app| are borrowed and must outlive the
 * server. Returns GW_OK, GW_ERR_TLS, GW_ERR_IO or GW_ERR_NOMEM with a reason
 * in |err|; |*out| untouched on failure. */
int gw_server_new(gw_server **out, const gw_config *cfg, gw_router *router,
                  void *app, char *err, size_t errlen);

/* Starts the worker threads. Returns GW_OK or GW_ERR_IO. */
int gw_server_start(gw_server *s);

/* Asks every worker to stop accepting, finish in-flight requests within
 * server.shutdown_grace_ms, and exit. Safe from any thread; returns at once. */
void gw_server_shutdown(gw_server *s);

/* Waits for the worker threads to exit. */
void gw_server_join(gw_server *s);

/* Frees the server; NULL is a no-op. Call after gw_server_join. */
void gw_server_del(gw_server *s);

/* The port the TLS (|h2c| = 0) or h2c (|h2c| = 1) listener is bound to, or
 * 0 when that listener is off. Useful with port 0 in the config. */
int gw_server_port(const gw_server *s, int h2c);

/* Health as last set by the housekeeping timer (1 = healthy). */
void gw_server_set_healthy(gw_server *s, int ok);
int gw_server_healthy(const gw_server *s);

/* Appends the Prometheus exposition of the server's metrics to |out|. */
int gw_server_metrics(gw_server *s, gw_buf *out);

/* Registers |fn(arg, out)| to append more metrics (e.g. the operator
 * adapters') after the server's own; called on a worker thread per scrape,
 * so |fn| must be thread-safe. Set before gw_server_start. */
void gw_server_set_metrics_hook(gw_server *s, int (*fn)(void *arg, gw_buf *out),
                                void *arg);

/* The server an exchange belongs to (borrowed). */
gw_server *gw_exch_server(gw_exch *x);

#endif
