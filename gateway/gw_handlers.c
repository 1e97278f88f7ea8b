#include "gw_handlers.h"

#include "gw_err.h"
#include "gw_http.h"
#include "gw_server.h"

#define METRICS_CAP (4 * 1024 * 1024)

/* The answer comes from the status the housekeeping timer keeps, so that a
 * load balancer probing hard never turns into store queries. */
static void healthz(gw_exch *x) {
  static const char ok[] = "{\"status\":\"ok\"}";
  static const char bad[] =
      "{\"status\":\"unavailable\",\"error\":\"store_unavailable\","
      "\"message\":\"the store did not answer the last health check\"}";

  if (gw_server_healthy(gw_exch_server(x))) {
    gw_resp_send(x, 200, "application/json", ok, sizeof(ok) - 1);
  } else {
    gw_resp_send(x, 503, "application/json", bad, sizeof(bad) - 1);
  }
}

static void metrics(gw_exch *x) {
  gw_buf out;

  gw_buf_init(&out, METRICS_CAP);
  if (gw_server_metrics(gw_exch_server(x), &out) != GW_OK) {
    gw_buf_free(&out);
    gw_resp_error(x, 500, "internal_error", "could not render the metrics");
    return;
  }
  gw_resp_send(x, 200, "text/plain; version=0.0.4; charset=utf-8", out.data,
               out.len);
  gw_buf_free(&out);
}

int gw_handlers_register(gw_router *r) {
  int rv = gw_router_add(r, "GET", "/healthz", healthz, 0, "healthz");

  if (rv == GW_OK) {
    rv = gw_router_add(r, "GET", "/metrics", metrics, 0, "metrics");
  }
  return rv;
}
