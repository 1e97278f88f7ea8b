/* op_adapter.c — outcomes, the code every adapter shares (transaction
 * bookkeeping, metrics, breaker), the registry with its table of adapters,
 * and the dispatch of notifications. */
#include "op_adapter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/rand.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "mss_soap.h"
#include "op_adapter_int.h"

/* The adapters, one per operator. */
static const op_adapter_ops *const adapter_table[] = {
    &op_omantel_ops,
    &op_ooredoo_ops,
};
#define N_ADAPTERS (sizeof(adapter_table) / sizeof(adapter_table[0]))

/* ---- outcomes
 * ------------------------------------------------------------------ */

static const char *const outcome_names[OP_OUTCOME_COUNT_] = {
    "signed",      "user_cancelled", "timed_out",
    "pin_blocked", "not_subscriber", "phone_absent",
    "sim_error",   "operator_error", "operator_unavailable",
};

const char *op_outcome_name(op_outcome o) {
  if ((int)o < 0 || o >= OP_OUTCOME_COUNT_) {
    return "unknown";
  }
  return outcome_names[o];
}

int op_outcome_from_name(const char *name) {
  for (int i = 0; name && i < OP_OUTCOME_COUNT_; i++) {
    if (strcmp(outcome_names[i], name) == 0) {
      return i;
    }
  }
  return -1;
}

op_outcome op_outcome_from_etsi(int status, int detail_code) {
  switch (status) {
  case 500: /* SIGNATURE */
  case 502: /* VALID_SIGNATURE */
    return OP_SIGNED;
  case 401: /* USER_CANCEL */
    return OP_USER_CANCELLED;
  case 208: /* EXPIRED_TRANSACTION */
    return OP_TIMED_OUT;
  case 402: /* PIN_NR_BLOCKED */
  case 403: /* CARD_BLOCKED: FiCom 4031 PUK blocked, 4032 PIN blocked */
    return OP_PIN_BLOCKED;
  case 105: /* UNKNOWN_CLIENT; FiCom 1054 "Incompatible SIM card" */
    return detail_code == 1054 ? OP_SIM_ERROR : OP_NOT_SUBSCRIBER;
  case 404: /* NO_KEY_FOUND */
  case 422: /* NO_CERT_FOUND */
  case 501: /* REVOKED_CERTIFICATE: the MSSP says the certificate is gone */
    return OP_NOT_SUBSCRIBER;
  case 209: /* OTA_ERROR; FiCom 2094 "Invalid capabilities" of the SIM */
    return detail_code == 2094 ? OP_SIM_ERROR : OP_PHONE_ABSENT;
  case 900: /* INTERNAL_ERROR; FiCom 9003/9004 "SIM application error" */
    return detail_code == 9003 || detail_code == 9004 ? OP_SIM_ERROR
                                                      : OP_OPERATOR_ERROR;
  default:
    /* 101..109 our request was refused; 405 no route; 406 another request
     * is running for the phone; 407; 423..425 the MSSP's own certificate
     * checks; 503 INVALID_SIGNATURE; 505; codes we do not know. */
    return OP_OPERATOR_ERROR;
  }
}

int op_etsi_is_pending(int status) {
  return status == 100 || status == 504;
}

/* ---- base
 * ------------------------------------------------------------------------ */

uint64_t op_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int op_adapter_base_init(op_adapter *a, const op_adapter_ops *ops,
                         const op_breaker_config *bcfg) {
  memset(a, 0, sizeof(*a));
  a->ops = ops;
  a->name = ops->name;
  if (bcfg && bcfg->failure_threshold > 0) {
    return op_breaker_new(&a->breaker, bcfg);
  }
  return GW_OK;
}

void op_adapter_base_free(op_adapter *a) {
  if (a) {
    op_breaker_del(a->breaker);
    a->breaker = NULL;
  }
}

void op_new_trans_id(char out[OP_TRANSID_MAX + 1]) {
  static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
  static _Atomic uint64_t fallback;
  unsigned char rnd[17];
  unsigned acc = 0, bits = 0;
  size_t o = 0;

  if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
    /* Not expected; still unique within the process. */
    uint64_t n = atomic_fetch_add(&fallback, 1) ^ op_now_ns();
    memset(rnd, 0, sizeof(rnd));
    memcpy(rnd, &n, sizeof(n));
  }
  out[o++] = 'T';
  for (size_t i = 0; i < sizeof(rnd) && o < 27; i++) {
    acc = (acc << 8) | rnd[i];
    bits += 8;
    while (bits >= 5 && o < 27) {
      out[o++] = b32[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  out[o] = '\0';
}

void op_txn_init(op_txn *t, op_adapter *a, op_http *http,
                 const op_sign_req *req) {
  t->a = a;
  t->http = http;
  t->start_ns = op_now_ns();
  t->state = OP_TXN_SUBMITTING;
  snprintf(t->msisdn, sizeof(t->msisdn), "%s", req->msisdn);
  op_new_trans_id(t->ap_trans_id);
  atomic_fetch_add_explicit(&a->m.transactions, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&a->m.inflight, 1, memory_order_relaxed);
}

static void txn_destroy(op_txn *t) {
  if (t->soon) {
    event_free(t->soon);
    t->soon = NULL;
  }
  t->a->ops->txn_free(t);
}

static void fill_common(op_txn *t, op_result *r, op_phase phase) {
  r->phase = phase;
  r->operator_name = t->a->name;
  r->msisdn = t->msisdn;
  memcpy(r->ap_trans_id, t->ap_trans_id, sizeof(r->ap_trans_id));
  if (r->mssp_trans_id[0] == '\0') {
    memcpy(r->mssp_trans_id, t->mssp_trans_id, sizeof(r->mssp_trans_id));
  }
  r->elapsed_ns = op_now_ns() - t->start_ns;
}

int op_txn_accepted(op_txn *t, op_result *r) {
  fill_common(t, r, OP_PHASE_ACCEPTED);
  t->state = OP_TXN_ACCEPTED;
  t->in_cb = 1;
  t->cb(t->arg, t, r);
  t->in_cb = 0;
  if (t->cancelled) {
    atomic_fetch_add_explicit(&t->a->m.cancelled, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&t->a->m.inflight, 1, memory_order_relaxed);
    txn_destroy(t);
    return 0;
  }
  return 1;
}

static const double lat_bounds_s[OP_LAT_BUCKETS] = {
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

void op_txn_final(op_txn *t, op_result *r) {
  op_adapter *a = t->a;
  uint64_t us;
  int b = 0;

  fill_common(t, r, OP_PHASE_FINAL);
  if ((int)r->outcome < 0 || r->outcome >= OP_OUTCOME_COUNT_) {
    r->outcome = OP_OPERATOR_ERROR;
  }
  t->state = OP_TXN_FINAL;
  us = r->elapsed_ns / 1000;
  while (b < OP_LAT_BUCKETS && (double)us / 1e6 > lat_bounds_s[b]) {
    b++;
  }
  atomic_fetch_add_explicit(&a->m.lat[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&a->m.lat_sum_us, us, memory_order_relaxed);
  atomic_fetch_add_explicit(&a->m.outcomes[r->outcome], 1,
                            memory_order_relaxed);
  atomic_fetch_sub_explicit(&a->m.inflight, 1, memory_order_relaxed);
  a->ops->stop(t);
  t->in_cb = 1;
  t->cb(t->arg, t, r);
  t->in_cb = 0;
  txn_destroy(t);
}

static void on_soon(evutil_socket_t fd, short what, void *arg) {
  op_txn *t = arg;
  op_result r = t->pending;

  (void)fd;
  (void)what;
  op_txn_final(t, &r);
}

int op_txn_final_soon(op_txn *t, op_outcome outcome, int etsi,
                      const char *detail) {
  struct timeval zero = {0, 0};

  if (!t->soon) {
    t->soon = evtimer_new(op_http_base(t->http), on_soon, t);
    if (!t->soon) {
      return GW_ERR_NOMEM;
    }
  }
  memset(&t->pending, 0, sizeof(t->pending));
  t->pending.outcome = outcome;
  t->pending.etsi_status = etsi;
  snprintf(t->pending.detail, sizeof(t->pending.detail), "%s",
           detail ? detail : "");
  evtimer_add(t->soon, &zero);
  return GW_OK;
}

int op_adapter_allow(op_adapter *a) {
  return op_breaker_allow(a->breaker, op_now_ns());
}

void op_adapter_report(op_adapter *a, op_breaker_verdict v) {
  op_breaker_state before, after;
  uint64_t now;

  if (!a->breaker) {
    return;
  }
  now = op_now_ns();
  before = op_breaker_state_at(a->breaker, now);
  op_breaker_report(a->breaker, v, now);
  after = op_breaker_state_at(a->breaker, now);
  if (before != after) {
    /* A change of state is rare by construction: one line each. */
    GW_LOG(after == OP_BREAKER_OPEN ? GW_LOG_WARN : GW_LOG_INFO,
           "operator circuit breaker", "operator=%s from=%s to=%s", a->name,
           op_breaker_state_str(before), op_breaker_state_str(after));
  }
}

void op_adapter_count_request(op_adapter *a, op_req_kind k) {
  atomic_fetch_add_explicit(&a->m.requests[k], 1, memory_order_relaxed);
}

void op_adapter_count_failure(op_adapter *a, op_http_status s) {
  if ((int)s >= 0 && s <= OP_HTTP_INTERNAL) {
    atomic_fetch_add_explicit(&a->m.http_failures[s], 1, memory_order_relaxed);
  }
}

/* ---- dispatch
 * ------------------------------------------------------------------- */

int op_submit(op_adapter *a, op_http *http, const op_sign_req *req,
              op_result_fn cb, void *arg, op_txn **out) {
  char norm[OP_MSISDN_MAX];
  op_txn *t = NULL;
  int rv;

  if (!a || !http || !req || !cb || !out || !req->digest ||
      op_msisdn_normalize(req->msisdn, norm) != OP_ROUTE_OK ||
      strcmp(norm, req->msisdn) != 0 || req->timeout_s < 0) {
    return GW_ERR_INVALID;
  }
  rv = a->ops->submit(a, http, req, &t);
  if (rv != GW_OK) {
    return rv;
  }
  /* No callback can have run yet: they all come from the loop. */
  t->cb = cb;
  t->arg = arg;
  *out = t;
  return GW_OK;
}

int op_follow(op_txn *t, op_result_fn cb, void *arg) {
  int rv;

  if (!t || !cb || t->state != OP_TXN_ACCEPTED || t->cancelled) {
    return GW_ERR_INVALID;
  }
  t->state = OP_TXN_FOLLOWING;
  t->cb = cb;
  t->arg = arg;
  rv = t->a->ops->follow(t);
  if (rv != GW_OK) {
    t->state = OP_TXN_ACCEPTED;
  }
  return rv;
}

void op_cancel(op_txn *t) {
  if (!t || t->cancelled) {
    return;
  }
  if (t->state == OP_TXN_FINAL) {
    return; /* inside the FINAL callback: it is freed right after */
  }
  t->a->ops->stop(t);
  if (t->in_cb) {
    t->cancelled = 1; /* freed when the callback returns */
    return;
  }
  atomic_fetch_add_explicit(&t->a->m.cancelled, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&t->a->m.inflight, 1, memory_order_relaxed);
  txn_destroy(t);
}

int op_receipt(op_adapter *a, op_http *http, const op_receipt_req *req,
               op_receipt_fn cb, void *arg) {
  if (!a || !http || !req || !req->mssp_trans_id || !req->msisdn) {
    return GW_ERR_INVALID;
  }
  return a->ops->receipt(a, http, req, cb, arg);
}

void op_health_get(op_adapter *a, op_health *out) {
  op_breaker_stats st;

  memset(out, 0, sizeof(*out));
  if (!a) {
    return;
  }
  op_breaker_get_stats(a->breaker, op_now_ns(), &st);
  out->operator_name = a->name;
  out->configured = a->configured;
  out->breaker_state = (int)st.state;
  out->consecutive_failures = st.consecutive_failures;
  out->available = a->configured && st.state != OP_BREAKER_OPEN;
  out->inflight =
      (uint64_t)atomic_load_explicit(&a->m.inflight, memory_order_relaxed);
  if (!a->configured) {
    snprintf(out->detail, sizeof(out->detail), "%s", a->why_unconfigured);
  } else if (st.state == OP_BREAKER_OPEN) {
    snprintf(out->detail, sizeof(out->detail),
             "circuit breaker open: the operator failed repeatedly");
  }
  if (a->ops->health) {
    a->ops->health(a, out);
  }
}

int op_notify(op_adapter *a, const op_notify_in *in, gw_buf *ack,
              op_notify_answer *ans) {
  memset(ans, 0, sizeof(*ans));
  if (!a || !in || !ack || !a->ops->notify) {
    ans->status = 404;
    ans->error = "not_enabled";
    snprintf(ans->message, sizeof(ans->message),
             "this operator sends no notifications");
    return 404;
  }
  if (!in->body) {
    ans->status = 400;
    ans->error = "invalid_notification";
    snprintf(ans->message, sizeof(ans->message), "no body");
    return 400;
  }
  return a->ops->notify(a, in, ack, ans);
}

const char *op_adapter_name(const op_adapter *a) {
  return a ? a->name : NULL;
}

op_adapter *op_txn_adapter(const op_txn *t) {
  return t ? t->a : NULL;
}

/* ---- registry
 * -------------------------------------------------------------------- */

struct op_registry {
  op_adapter *adapters[N_ADAPTERS];
  size_t n;
  op_route *route;
  op_http_config http_cfg;
};

int op_registry_new(op_registry **out, const gw_config *cfg, char *err,
                    size_t errlen) {
  char sub[256];
  op_registry *r;
  int rv;

  if (err && errlen) {
    err[0] = '\0';
  }
  if (!out || !cfg) {
    return GW_ERR_INVALID;
  }
  if (op_http_global_init() != GW_OK) {
    snprintf(err, errlen, "libcurl initialisation failed");
    return GW_ERR_INTERNAL;
  }
  mss_soap_init();
  /* Notifications arrive on any worker thread and wake the loop of the
   * transaction they end (event_active): libevent's locking must be on
   * before those loops are created. */
  if (evthread_use_pthreads() != 0) {
    snprintf(err, errlen, "libevent thread support failed");
    return GW_ERR_INTERNAL;
  }
  r = calloc(1, sizeof(*r));
  if (!r) {
    return GW_ERR_NOMEM;
  }
  r->http_cfg.max_host_connections = cfg->op_max_conns_per_host;
  rv = op_route_load(&r->route, cfg->op_numbering_plan, cfg->op_portability,
                     err, errlen);
  if (rv != GW_OK) {
    goto fail;
  }
  for (size_t i = 0; i < N_ADAPTERS; i++) {
    sub[0] = '\0';
    rv = adapter_table[i]->create(&r->adapters[i], cfg, sub, sizeof(sub));
    if (rv != GW_OK) {
      snprintf(err, errlen, "operator %s: %s", adapter_table[i]->name, sub);
      goto fail;
    }
    r->n++;
  }
  for (size_t i = 0; i < op_route_operator_count(r->route); i++) {
    const char *name = op_route_operator_name(r->route, i);
    if (!op_registry_get(r, name)) {
      snprintf(err, errlen,
               "%s names operator \"%s\", which has no adapter (known: "
               "omantel, ooredoo)",
               cfg->op_numbering_plan, name);
      rv = GW_ERR_CONFIG;
      goto fail;
    }
  }
  for (size_t i = 0; i < r->n; i++) {
    if (!r->adapters[i]->configured) {
      GW_LOG(GW_LOG_WARN, "operator not configured",
             "operator=%s reason=\"%s\"", r->adapters[i]->name,
             r->adapters[i]->why_unconfigured);
    }
  }
  *out = r;
  return GW_OK;

fail:
  op_registry_del(r);
  return rv;
}

void op_registry_del(op_registry *r) {
  if (!r) {
    return;
  }
  for (size_t i = 0; i < r->n; i++) {
    r->adapters[i]->ops->destroy(r->adapters[i]);
  }
  op_route_del(r->route);
  free(r);
}

op_adapter *op_registry_get(op_registry *r, const char *name) {
  for (size_t i = 0; r && name && i < r->n; i++) {
    if (strcmp(r->adapters[i]->name, name) == 0) {
      return r->adapters[i];
    }
  }
  return NULL;
}

op_route_status op_registry_route(op_registry *r, const char *msisdn,
                                  op_route_result *res, op_adapter **a) {
  op_route_status st = op_route_lookup(r ? r->route : NULL, msisdn, res);

  *a = NULL;
  if (st == OP_ROUTE_OK) {
    *a = op_registry_get(r, res->op);
    if (!*a) {
      return OP_ROUTE_NO_OPERATOR; /* not reached: checked at load */
    }
  }
  return st;
}

int op_registry_http_new(op_registry *r, struct event_base *base,
                         op_http **out) {
  return op_http_new(out, base, r ? &r->http_cfg : NULL);
}

size_t op_registry_count(const op_registry *r) {
  return r ? r->n : 0;
}

op_adapter *op_registry_at(op_registry *r, size_t i) {
  return r && i < r->n ? r->adapters[i] : NULL;
}

/* ---- metrics
 * --------------------------------------------------------------------- */

static uint64_t ld(_Atomic uint64_t *p) {
  return atomic_load_explicit(p, memory_order_relaxed);
}

int op_registry_metrics(op_registry *r, gw_buf *out) {
  static const char *const kinds[OP_REQ_KIND_COUNT_] = {"signature", "status",
                                                        "receipt", "notify"};
  int rv = GW_OK;

#define P(...)                                                                 \
  do {                                                                         \
    if (rv == GW_OK) {                                                         \
      rv = gw_buf_printf(out, __VA_ARGS__);                                    \
    }                                                                          \
  } while (0)

  if (!r) {
    return GW_OK;
  }
  P("# HELP mpkigw_operator_transactions_total Signature requests submitted "
    "to an operator.\n# TYPE mpkigw_operator_transactions_total counter\n");
  for (size_t i = 0; i < r->n; i++) {
    P("mpkigw_operator_transactions_total{operator=\"%s\"} %llu\n",
      r->adapters[i]->name,
      (unsigned long long)ld(&r->adapters[i]->m.transactions));
  }
  P("# HELP mpkigw_operator_cancelled_total Transactions given up by the "
    "gateway before their end.\n"
    "# TYPE mpkigw_operator_cancelled_total counter\n");
  for (size_t i = 0; i < r->n; i++) {
    P("mpkigw_operator_cancelled_total{operator=\"%s\"} %llu\n",
      r->adapters[i]->name,
      (unsigned long long)ld(&r->adapters[i]->m.cancelled));
  }
  P("# HELP mpkigw_operator_outcomes_total How transactions ended.\n"
    "# TYPE mpkigw_operator_outcomes_total counter\n");
  for (size_t i = 0; i < r->n; i++) {
    for (int o = 0; o < OP_OUTCOME_COUNT_; o++) {
      P("mpkigw_operator_outcomes_total{operator=\"%s\",outcome=\"%s\"} "
        "%llu\n",
        r->adapters[i]->name, outcome_names[o],
        (unsigned long long)ld(&r->adapters[i]->m.outcomes[o]));
    }
  }
  P("# HELP mpkigw_operator_requests_total HTTP exchanges with an operator.\n"
    "# TYPE mpkigw_operator_requests_total counter\n");
  for (size_t i = 0; i < r->n; i++) {
    for (int k = 0; k < OP_REQ_KIND_COUNT_; k++) {
      P("mpkigw_operator_requests_total{operator=\"%s\",kind=\"%s\"} %llu\n",
        r->adapters[i]->name, kinds[k],
        (unsigned long long)ld(&r->adapters[i]->m.requests[k]));
    }
  }
  P("# HELP mpkigw_operator_http_failures_total Exchanges without a usable "
    "answer, by cause (bad_answer: garbage, wrong type, not the expected "
    "message).\n# TYPE mpkigw_operator_http_failures_total counter\n");
  for (size_t i = 0; i < r->n; i++) {
    for (int s = 0; s <= OP_HTTP_INTERNAL; s++) {
      P("mpkigw_operator_http_failures_total{operator=\"%s\",kind=\"%s\"} "
        "%llu\n",
        r->adapters[i]->name,
        s == 0 ? "bad_answer" : op_http_status_str((op_http_status)s),
        (unsigned long long)ld(&r->adapters[i]->m.http_failures[s]));
    }
  }
  P("# HELP mpkigw_operator_latency_seconds Submit to final answer.\n"
    "# TYPE mpkigw_operator_latency_seconds histogram\n");
  for (size_t i = 0; i < r->n; i++) {
    op_metrics *m = &r->adapters[i]->m;
    uint64_t cum = 0;

    for (int b = 0; b <= OP_LAT_BUCKETS; b++) {
      cum += ld(&m->lat[b]);
      if (b < OP_LAT_BUCKETS) {
        P("mpkigw_operator_latency_seconds_bucket{operator=\"%s\",le=\"%g\"} "
          "%llu\n",
          r->adapters[i]->name, lat_bounds_s[b], (unsigned long long)cum);
      } else {
        P("mpkigw_operator_latency_seconds_bucket{operator=\"%s\",le="
          "\"+Inf\"} %llu\n",
          r->adapters[i]->name, (unsigned long long)cum);
      }
    }
    P("mpkigw_operator_latency_seconds_sum{operator=\"%s\"} %.6f\n",
      r->adapters[i]->name, (double)ld(&m->lat_sum_us) / 1e6);
    P("mpkigw_operator_latency_seconds_count{operator=\"%s\"} %llu\n",
      r->adapters[i]->name, (unsigned long long)cum);
  }
  P("# HELP mpkigw_operator_notifications_total Notifications received, by "
    "what became of them.\n"
    "# TYPE mpkigw_operator_notifications_total counter\n");
  for (size_t i = 0; i < r->n; i++) {
    static const char *const res[OP_NOTIFY_COUNT_] = {"applied", "repeated",
                                                      "refused", "unmatched"};
    if (!r->adapters[i]->ops->notify) {
      continue;
    }
    for (int k = 0; k < OP_NOTIFY_COUNT_; k++) {
      P("mpkigw_operator_notifications_total{operator=\"%s\",result=\"%s\"} "
        "%llu\n",
        r->adapters[i]->name, res[k],
        (unsigned long long)ld(&r->adapters[i]->m.notify[k]));
    }
  }
  P("# HELP mpkigw_operator_inflight Transactions not yet final.\n"
    "# TYPE mpkigw_operator_inflight gauge\n");
  for (size_t i = 0; i < r->n; i++) {
    P("mpkigw_operator_inflight{operator=\"%s\"} %lld\n", r->adapters[i]->name,
      (long long)atomic_load_explicit(&r->adapters[i]->m.inflight,
                                      memory_order_relaxed));
  }
  P("# HELP mpkigw_operator_breaker_state Circuit breaker: 0 closed, 1 open, "
    "2 half open.\n# TYPE mpkigw_operator_breaker_state gauge\n");
  for (size_t i = 0; i < r->n; i++) {
    op_breaker_stats st;
    op_breaker_get_stats(r->adapters[i]->breaker, op_now_ns(), &st);
    P("mpkigw_operator_breaker_state{operator=\"%s\"} %d\n",
      r->adapters[i]->name, (int)st.state);
  }
  P("# HELP mpkigw_operator_breaker_opened_total Times the breaker opened.\n"
    "# TYPE mpkigw_operator_breaker_opened_total counter\n");
  for (size_t i = 0; i < r->n; i++) {
    op_breaker_stats st;
    op_breaker_get_stats(r->adapters[i]->breaker, op_now_ns(), &st);
    P("mpkigw_operator_breaker_opened_total{operator=\"%s\"} %llu\n",
      r->adapters[i]->name, (unsigned long long)st.opened);
  }
  P("# HELP mpkigw_operator_breaker_rejected_total Requests refused at once "
    "by an open breaker.\n"
    "# TYPE mpkigw_operator_breaker_rejected_total counter\n");
  for (size_t i = 0; i < r->n; i++) {
    op_breaker_stats st;
    op_breaker_get_stats(r->adapters[i]->breaker, op_now_ns(), &st);
    P("mpkigw_operator_breaker_rejected_total{operator=\"%s\"} %llu\n",
      r->adapters[i]->name, (unsigned long long)st.rejected);
  }
#undef P
  return rv;
}
