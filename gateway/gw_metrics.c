#include "gw_metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "gw_err.h"

/* The statuses the gateway answers with; anything else counts under its
 * class slot (e.g. 418 -> "4xx"). */
static const int known_status[GW_METRICS_NSTATUS - 5] = {
    200, 201, 202, 204, 301, 302, 303, 304, 400, 401,
    403, 404, 405, 408, 409, 413, 429, 431, 503};
#define NKNOWN (GW_METRICS_NSTATUS - 5)

/* Upper bounds of the latency buckets, in microseconds. */
static const uint64_t bucket_us[GW_METRICS_NBUCKETS] = {
    100,   250,   500,    1000,   2500,   5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 5000000};

struct gw_metrics_shard {
  /* [route][status][protocol]; slot MAX_ROUTES = "unmatched",
   * MAX_ROUTES + 1 = "other" (routes past the table's capacity) */
  _Atomic uint64_t req[GW_METRICS_MAX_ROUTES + 2][GW_METRICS_NSTATUS][2];
  _Atomic uint64_t lat[GW_METRICS_NBUCKETS + 1];
  _Atomic uint64_t lat_sum_us;
  _Atomic uint64_t counters[GW_M_NCOUNTERS];
  _Atomic int64_t gauges[GW_M_NGAUGES];
  char pad[64]; /* keep neighbouring shards off each other's cache lines */
};

struct gw_metrics {
  size_t nshards;
  gw_metrics_shard *shards;
};

int gw_metrics_new(gw_metrics **out, size_t nshards) {
  gw_metrics *m;

  m = calloc(1, sizeof(*m));
  if (!m) {
    return GW_ERR_NOMEM;
  }
  m->shards = calloc(nshards ? nshards : 1, sizeof(*m->shards));
  if (!m->shards) {
    free(m);
    return GW_ERR_NOMEM;
  }
  m->nshards = nshards ? nshards : 1;
  *out = m;
  return GW_OK;
}

void gw_metrics_del(gw_metrics *m) {
  if (!m) {
    return;
  }
  free(m->shards);
  free(m);
}

gw_metrics_shard *gw_metrics_shard_get(gw_metrics *m, size_t i) {
  return &m->shards[i < m->nshards ? i : 0];
}

/* Single writer per shard: a relaxed load + store is enough and avoids a
 * locked instruction on the hot path. */
static inline void bump(_Atomic uint64_t *p, uint64_t n) {
  atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
                        memory_order_relaxed);
}

static int status_slot(int status) {
  for (int i = 0; i < NKNOWN; i++) {
    if (known_status[i] == status) {
      return i;
    }
  }
  if (status >= 100 && status < 600) {
    return NKNOWN + status / 100 - 1; /* 1xx..5xx */
  }
  return NKNOWN + 4;
}

static void status_label(int slot, char *buf, size_t n) {
  if (slot < NKNOWN) {
    snprintf(buf, n, "%d", known_status[slot]);
  } else {
    snprintf(buf, n, "%dxx", slot - NKNOWN + 1);
  }
}

void gw_metrics_request(gw_metrics_shard *s, int route, int status, int h2,
                        uint64_t duration_ns) {
  uint64_t us = duration_ns / 1000;
  int r = route < 0                        ? GW_METRICS_MAX_ROUTES
          : route >= GW_METRICS_MAX_ROUTES ? GW_METRICS_MAX_ROUTES + 1
                                           : route;
  int b = 0;

  bump(&s->req[r][status_slot(status)][h2 ? 1 : 0], 1);
  while (b < GW_METRICS_NBUCKETS && us > bucket_us[b]) {
    b++;
  }
  bump(&s->lat[b], 1);
  bump(&s->lat_sum_us, us);
}

void gw_metrics_count(gw_metrics_shard *s, gw_metric_counter c) {
  bump(&s->counters[c], 1);
}

void gw_metrics_gauge(gw_metrics_shard *s, gw_metric_gauge g, int delta) {
  atomic_store_explicit(
      &s->gauges[g],
      atomic_load_explicit(&s->gauges[g], memory_order_relaxed) + delta,
      memory_order_relaxed);
}

int64_t gw_metrics_gauge_sum(gw_metrics *m, gw_metric_gauge g) {
  int64_t sum = 0;

  for (size_t i = 0; i < m->nshards; i++) {
    sum += atomic_load_explicit(&m->shards[i].gauges[g], memory_order_relaxed);
  }
  return sum;
}

static uint64_t sum_u64(gw_metrics *m, size_t off) {
  uint64_t sum = 0;

  for (size_t i = 0; i < m->nshards; i++) {
    sum +=
        atomic_load_explicit((_Atomic uint64_t *)((char *)&m->shards[i] + off),
                             memory_order_relaxed);
  }
  return sum;
}

static const struct {
  const char *name, *help;
} counter_info[GW_M_NCOUNTERS] = {
    {"mpkigw_connections_accepted_total", "Connections accepted."},
    {"mpkigw_connections_rejected_total",
     "Connections refused by the total or per-address limit."},
    {"mpkigw_tls_handshake_failures_total",
     "TLS handshakes that failed or timed out."},
    {"mpkigw_plain_http_on_tls_port_total",
     "Plain HTTP requests sent to the TLS port (answered 400)."},
    {"mpkigw_timeouts_total",
     "Connections or requests ended by the idle, header, request or "
     "SETTINGS timers."},
    {"mpkigw_http2_stream_errors_total",
     "HTTP/2 stream errors, resets and invalid frames."},
    {"mpkigw_http2_goaway_enhance_your_calm_total",
     "HTTP/2 connections closed for exceeding the stream error budget."},
};

int gw_metrics_render(gw_metrics *m, gw_buf *out,
                      const char *(*route_name)(int i, void *arg), void *arg,
                      int nroutes) {
  static const char *const protos[2] = {"http/1.1", "h2"};
  uint64_t cum = 0, v;
  char st[8];
  int rv = GW_OK;

#define P(...)                                                                 \
  do {                                                                         \
    if (rv == GW_OK) {                                                         \
      rv = gw_buf_printf(out, __VA_ARGS__);                                    \
    }                                                                          \
  } while (0)

  P("# HELP mpkigw_http_requests_total HTTP requests answered, by route, "
    "status and protocol.\n# TYPE mpkigw_http_requests_total counter\n");
  for (int r = 0; r <= GW_METRICS_MAX_ROUTES + 1; r++) {
    const char *name;
    if (r < GW_METRICS_MAX_ROUTES && r >= nroutes) {
      continue;
    }
    name = r == GW_METRICS_MAX_ROUTES       ? "unmatched"
           : r == GW_METRICS_MAX_ROUTES + 1 ? "other"
                                            : route_name(r, arg);
    for (int s = 0; s < GW_METRICS_NSTATUS; s++) {
      for (int p = 0; p < 2; p++) {
        v = sum_u64(m, offsetof(gw_metrics_shard, req) +
                           ((size_t)r * GW_METRICS_NSTATUS * 2 + (size_t)s * 2 +
                            (size_t)p) *
                               sizeof(uint64_t));
        if (!v) {
          continue;
        }
        status_label(s, st, sizeof(st));
        P("mpkigw_http_requests_total{route=\"%s\",status=\"%s\","
          "protocol=\"%s\"} %llu\n",
          name, st, protos[p], (unsigned long long)v);
      }
    }
  }

  P("# HELP mpkigw_http_request_duration_seconds Time from the start of a "
    "request to its response being queued.\n"
    "# TYPE mpkigw_http_request_duration_seconds histogram\n");
  for (int b = 0; b <= GW_METRICS_NBUCKETS; b++) {
    cum += sum_u64(m, offsetof(gw_metrics_shard, lat) +
                          (size_t)b * sizeof(uint64_t));
    if (b < GW_METRICS_NBUCKETS) {
      P("mpkigw_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
        (double)bucket_us[b] / 1e6, (unsigned long long)cum);
    } else {
      P("mpkigw_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
        (unsigned long long)cum);
    }
  }
  P("mpkigw_http_request_duration_seconds_sum %.6f\n",
    (double)sum_u64(m, offsetof(gw_metrics_shard, lat_sum_us)) / 1e6);
  P("mpkigw_http_request_duration_seconds_count %llu\n",
    (unsigned long long)cum);

  P("# HELP mpkigw_open_connections Open client connections by state.\n"
    "# TYPE mpkigw_open_connections gauge\n");
  P("mpkigw_open_connections{protocol=\"http/1.1\"} %lld\n",
    (long long)gw_metrics_gauge_sum(m, GW_G_CONNS_H1));
  P("mpkigw_open_connections{protocol=\"h2\"} %lld\n",
    (long long)gw_metrics_gauge_sum(m, GW_G_CONNS_H2));
  P("mpkigw_open_connections{protocol=\"tls-handshake\"} %lld\n",
    (long long)gw_metrics_gauge_sum(m, GW_G_CONNS_HANDSHAKE));
  P("# HELP mpkigw_open_streams Requests in flight (HTTP/2 streams and "
    "HTTP/1.1 requests).\n# TYPE mpkigw_open_streams gauge\n");
  P("mpkigw_open_streams %lld\n",
    (long long)gw_metrics_gauge_sum(m, GW_G_STREAMS));

  for (int c = 0; c < GW_M_NCOUNTERS; c++) {
    P("# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_info[c].name,
      counter_info[c].help, counter_info[c].name, counter_info[c].name,
      (unsigned long long)sum_u64(m, offsetof(gw_metrics_shard, counters) +
                                         (size_t)c * sizeof(uint64_t)));
  }
#undef P
  return rv;
}
