/* gw_metrics.h — counters for /metrics (Prometheus text format).
 *
 * Each worker thread owns one gw_metrics_shard and is its only writer, so a
 * count is a relaxed load and store, no lock and no shared cache line; a
 * scrape sums the shards (as h2o's status handler does). Gauges (open
 * connections and streams) are per-shard up/down counts, summed likewise. */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gw_buf.h"

#define GW_METRICS_MAX_ROUTES                                                  \
  64 /* route index >= this: label "other";                                    \
      * no route matched: label "unmatched" */
#define GW_METRICS_NSTATUS 24
#define GW_METRICS_NBUCKETS 14

typedef enum {
  GW_M_CONN_ACCEPTED = 0, /* connections accepted */
  GW_M_CONN_REJECTED,     /* refused by a connection limit */
  GW_M_TLS_FAILED,        /* TLS handshakes that failed or timed out */
  GW_M_PLAIN_ON_TLS,      /* plain HTTP sent to the TLS port */
  GW_M_TIMEOUTS,          /* connections or streams ended by a timer */
  GW_M_STREAM_ERRORS,     /* HTTP/2 stream errors and resets */
  GW_M_GOAWAY_CALM,       /* connections closed with ENHANCE_YOUR_CALM */
  GW_M_NCOUNTERS
} gw_metric_counter;

typedef enum {
  GW_G_CONNS_H1 = 0,    /* open connections speaking HTTP/1.1 */
  GW_G_CONNS_H2,        /* open connections speaking HTTP/2 */
  GW_G_CONNS_HANDSHAKE, /* connections still in the TLS handshake */
  GW_G_STREAMS,         /* open HTTP/2 streams + HTTP/1.1 requests in flight */
  GW_M_NGAUGES
} gw_metric_gauge;

typedef struct gw_metrics_shard gw_metrics_shard;
typedef struct gw_metrics gw_metrics;

/* Creates the registry with |nshards| shards (one per worker thread). */
int gw_metrics_new(gw_metrics **out, size_t nshards);
void gw_metrics_del(gw_metrics *m);

/* The shard of worker |i| (borrowed). */
gw_metrics_shard *gw_metrics_shard_get(gw_metrics *m, size_t i);

/* Records one finished request. |route| is the route index or -1 for
 * requests that matched no route; |h2| is 1 for HTTP/2. */
void gw_metrics_request(gw_metrics_shard *s, int route, int status, int h2,
                        uint64_t duration_ns);
void gw_metrics_count(gw_metrics_shard *s, gw_metric_counter c);
void gw_metrics_gauge(gw_metrics_shard *s, gw_metric_gauge g, int delta);

/* Sum of gauge |g| over all shards. */
int64_t gw_metrics_gauge_sum(gw_metrics *m, gw_metric_gauge g);

/* Appends the Prometheus text exposition to |out|. |route_name(i, arg)|
 * names route index i. Returns GW_OK or a gw_buf error. */
int gw_metrics_render(gw_metrics *m, gw_buf *out,
                      const char *(*route_name)(int i, void *arg), void *arg,
                      int nroutes);

#endif
