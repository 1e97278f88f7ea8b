/* mock_front.c — /healthz and the control endpoint of mssp-mock. See
 * mock_front.h. Operations that need the SIM (counters, PUK, a handset's
 * PIN) run on the engine's pool; the exchange waits for them and is
 * answered from the engine's callback, or the operation is forgotten when
 * the client goes away first. */
#include "mock_front.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "gw_err.h"
#include "gw_http.h"
#include "gw_log.h"
#include "mock_notify.h"

#define CONTROL_BODY_MAX 4096

static mock_app *app_of(gw_exch *x) {
  return gw_exch_app(x);
}

/* Binds the engine to this worker's loop; answers 500 when it cannot. */
static int bind_or_fail(gw_exch *x) {
  if (mock_mssp_bind_exch(app_of(x)->engine, x) != GW_OK) {
    gw_resp_error(x, 500, "internal_error",
                  "the engine runs on another event loop (server.workers "
                  "must be 1)");
    return -1;
  }
  return 0;
}

static void h_healthz(gw_exch *x) {
  json_t *j = json_pack("{s:s, s:s}", "status", "ok", "operator",
                        app_of(x)->operator_name);

  gw_resp_json(x, 200, j);
}

static const char *state_name(mock_tx_state s) {
  return s == MOCK_TX_WAITING   ? "waiting"
         : s == MOCK_TX_SIGNING ? "signing"
                                : "done";
}

static json_t *tx_json(const mock_tx_info *t) {
  static const char *const kinds[] = {"text/plain", "application/octet-stream",
                                      "application/x-sha256"};
  char hex[65];

  for (int i = 0; i < 32; i++) {
    snprintf(hex + 2 * i, 3, "%02x", t->digest[i]);
  }
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, "
      "s:i, s:I, s:I, s:I, s:b, s:i}",
      "mssp_trans_id", t->mssp_trans_id, "ap_id", t->ap_id, "ap_trans_id",
      t->ap_trans_id, "msisdn", t->msisdn, "behaviour", t->behaviour, "mode",
      mss_mode_name(t->mode) ? mss_mode_name(t->mode) : "", "state",
      state_name(t->state), "status", t->status, "status_name",
      mss_status_name(t->status), "detail", t->detail, "display", t->display,
      "data_kind", kinds[t->data_kind], "digest_hex", hex, "timeout_s",
      t->timeout_s, "created_at_ms", (json_int_t)t->created_at,
      "deadline_at_ms", (json_int_t)t->deadline_at, "ended_at_ms",
      (json_int_t)t->ended_at, "receipt", t->receipt, "pin_attempts",
      t->pin_attempts);
}

static void answer_json(gw_exch *x, int status, json_t *j) {
  if (!j) {
    gw_resp_error(x, 500, "internal_error", "out of memory");
    return;
  }
  gw_resp_json(x, status, j);
}

static void h_stats(gw_exch *x) {
  mock_mssp_stats st;
  mock_notify_stats ns;
  json_t *j;

  if (bind_or_fail(x)) {
    return;
  }
  mock_mssp_get_stats(app_of(x)->engine, &st);
  j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "requests",
                (json_int_t)st.requests, "refused", (json_int_t)st.refused,
                "started", (json_int_t)st.started, "signed",
                (json_int_t)st.signed_ok, "failed", (json_int_t)st.failed,
                "running", (json_int_t)st.running, "kept", (json_int_t)st.kept);
  if (j && app_of(x)->notify) {
    mock_notify_get_stats(app_of(x)->notify, &ns);
    json_object_set_new(
        j, "notifications",
        json_pack("{s:I, s:I, s:I, s:I, s:I}", "queued", (json_int_t)ns.queued,
                  "attempts", (json_int_t)ns.attempts, "delivered",
                  (json_int_t)ns.delivered, "failed", (json_int_t)ns.failed,
                  "pending", (json_int_t)ns.pending));
  }
  answer_json(x, 200, j);
}

static void h_tx(gw_exch *x) {
  const char *id = gw_route_param(&gw_exch_req(x)->match, "id");
  mock_tx_info *t;

  if (bind_or_fail(x)) {
    return;
  }
  t = malloc(sizeof(*t));
  if (!t) {
    gw_resp_error(x, 500, "internal_error", "out of memory");
    return;
  }
  if (mock_mssp_tx(app_of(x)->engine, id, t) != GW_OK) {
    gw_resp_error(x, 404, "unknown_transaction", "no transaction %s is kept",
                  id);
  } else {
    answer_json(x, 200, tx_json(t));
  }
  free(t);
}

/* Answers the not-found / invalid MSISDN cases of |rv|. */
static void sub_error(gw_exch *x, int rv, const char *msisdn) {
  char qm[64];

  gw_log_quote(qm, sizeof(qm), msisdn, strlen(msisdn));
  if (rv == GW_ERR_NOT_FOUND) {
    gw_resp_error(x, 404, "unknown_subscriber",
                  "%s is not a subscriber of this MSSP", qm);
  } else if (rv == GW_ERR_BUSY) {
    gw_resp_error(x, 503, "busy", "the SIM pool is busy; try again");
  } else if (rv == GW_ERR_NOMEM) {
    gw_resp_error(x, 500, "internal_error", "out of memory");
  } else {
    gw_resp_error(x, 400, "invalid_request", "bad MSISDN or arguments");
  }
}

/* ---- operations that wait for the SIM ----------------------------------- */

typedef enum { W_SUBSCRIBER, W_COUNTERS, W_HANDSET } wait_kind;

typedef struct ctl_wait {
  gw_exch *x;
  mock_mssp *e;
  mock_op *op;
  wait_kind kind;
  char msisdn[MSS_MSISDN_MAX + 1];
} ctl_wait;

static void ctl_cancel(void *arg) {
  ctl_wait *w = arg;

  mock_mssp_op_forget(w->e, w->op);
  free(w);
}

static void ctl_done(void *arg, const mock_op_result *r) {
  ctl_wait *w = arg;
  json_t *j = NULL;
  mock_sub_info si;

  if (r->rv != GW_OK) {
    gw_resp_error(w->x, 500, "sim_failure", "the SIM simulation failed: %s",
                  gw_strerror(r->rv));
    free(w);
    return;
  }
  switch (w->kind) {
  case W_SUBSCRIBER:
    if (mock_mssp_subscriber(w->e, w->msisdn, &si) != GW_OK) {
      gw_resp_error(w->x, 404, "unknown_subscriber", "gone");
      break;
    }
    j = json_pack("{s:s, s:s, s:s, s:b, s:b, s:s?, s:i, s:i, s:b}", "msisdn",
                  si.msisdn, "behaviour", si.behaviour, "registry_behaviour",
                  si.registry_behaviour, "overridden", si.overridden,
                  "has_certificate", si.has_cert, "running",
                  si.running[0] ? si.running : NULL, "pin_tries_left",
                  r->pin_tries_left, "puk_tries_left", r->puk_tries_left,
                  "pin_blocked", r->pin_tries_left == 0);
    answer_json(w->x, 200, j);
    break;
  case W_COUNTERS:
    j = json_pack("{s:s, s:s, s:i, s:i}", "msisdn", w->msisdn, "outcome",
                  mock_sim_outcome_str(r->outcome), "pin_tries_left",
                  r->pin_tries_left, "puk_tries_left", r->puk_tries_left);
    answer_json(w->x, 200, j);
    break;
  case W_HANDSET:
    j = json_pack("{s:s, s:s, s:i, s:i, s:s}", "msisdn", w->msisdn, "outcome",
                  mock_sim_outcome_str(r->outcome), "pin_tries_left",
                  r->pin_tries_left, "status", r->status, "status_name",
                  mss_status_name(r->status));
    answer_json(w->x, 200, j);
    break;
  }
  free(w);
}

static ctl_wait *ctl_wait_new(gw_exch *x, wait_kind kind, const char *msisdn) {
  ctl_wait *w = calloc(1, sizeof(*w));

  if (!w) {
    gw_resp_error(x, 500, "internal_error", "out of memory");
    return NULL;
  }
  w->x = x;
  w->e = app_of(x)->engine;
  w->kind = kind;
  mock_mssp_msisdn_norm(msisdn, w->msisdn, sizeof(w->msisdn));
  return w;
}

/* After an operation was submitted (|rv|): wait for it, or answer now. */
static void ctl_wait_start(ctl_wait *w, int rv, mock_op *op) {
  if (rv != GW_OK) {
    sub_error(w->x, rv, w->msisdn);
    free(w);
    return;
  }
  w->op = op;
  gw_exch_on_cancel(w->x, ctl_cancel, w);
}

static const char *msisdn_param(gw_exch *x) {
  return gw_route_param(&gw_exch_req(x)->match, "msisdn");
}

static void h_subscriber(gw_exch *x) {
  const char *m = msisdn_param(x);
  ctl_wait *w;
  mock_op *op = NULL;
  int rv;

  if (bind_or_fail(x)) {
    return;
  }
  w = ctl_wait_new(x, W_SUBSCRIBER, m);
  if (!w) {
    return;
  }
  rv = mock_mssp_sim_state(w->e, m, ctl_done, w, &op);
  ctl_wait_start(w, rv, op);
}

static void h_pin_reset(gw_exch *x) {
  const char *m = msisdn_param(x);
  ctl_wait *w;
  mock_op *op = NULL;
  int rv;

  if (bind_or_fail(x)) {
    return;
  }
  w = ctl_wait_new(x, W_COUNTERS, m);
  if (!w) {
    return;
  }
  rv = mock_mssp_sim_reset(w->e, m, ctl_done, w, &op);
  ctl_wait_start(w, rv, op);
}

/* A string member of a JSON body, or NULL. */
static const char *jstr(json_t *j, const char *name) {
  json_t *v = json_object_get(j, name);

  return json_is_string(v) ? json_string_value(v) : NULL;
}

static void h_pin_unblock(gw_exch *x) {
  const char *m = msisdn_param(x);
  json_t *body = NULL;
  ctl_wait *w;
  mock_op *op = NULL;
  int rv;

  if (bind_or_fail(x) || gw_req_json(x, &body) != GW_OK) {
    return;
  }
  if (!jstr(body, "puk") || !jstr(body, "new_pin")) {
    json_decref(body);
    gw_resp_error(x, 400, "invalid_request",
                  "the body is {\"puk\": \"...\", \"new_pin\": \"...\"}");
    return;
  }
  w = ctl_wait_new(x, W_COUNTERS, m);
  if (w) {
    rv = mock_mssp_sim_unblock(w->e, m, jstr(body, "puk"),
                               jstr(body, "new_pin"), ctl_done, w, &op);
    ctl_wait_start(w, rv, op);
  }
  json_decref(body);
}

static void h_handset(gw_exch *x) {
  const char *m = msisdn_param(x), *action, *pin;
  mock_mssp *e = app_of(x)->engine;
  mock_tx_info *pend = NULL;
  json_t *body = NULL;
  ctl_wait *w;
  mock_op *op = NULL;
  size_t n = 0;
  int rv;

  if (bind_or_fail(x) || gw_req_json(x, &body) != GW_OK) {
    return;
  }
  action = jstr(body, "action");
  pin = jstr(body, "pin");
  if (!action ||
      (strcmp(action, "approve") != 0 && strcmp(action, "refuse") != 0) ||
      (strcmp(action, "approve") == 0 && !pin)) {
    gw_resp_error(x, 400, "invalid_request",
                  "the body is {\"action\": \"approve\", \"pin\": \"...\"} or "
                  "{\"action\": \"refuse\"}");
    goto done;
  }
  pend = malloc(sizeof(*pend));
  if (!pend) {
    gw_resp_error(x, 500, "internal_error", "out of memory");
    goto done;
  }
  rv = mock_mssp_pending(e, m, pend, 1, &n);
  if (rv != GW_OK) {
    sub_error(x, rv, m);
    goto done;
  }
  if (n == 0) {
    gw_resp_error(x, 409, "nothing_pending",
                  "no transaction waits on this phone");
    goto done;
  }
  if (strcmp(action, "refuse") == 0) {
    rv = mock_mssp_handset(e, pend->mssp_trans_id, 0, NULL, NULL, NULL, &op);
    if (rv == GW_OK) {
      answer_json(x, 200,
                  json_pack("{s:s, s:s, s:i, s:s}", "msisdn", pend->msisdn,
                            "mssp_trans_id", pend->mssp_trans_id, "status",
                            MSS_USER_CANCEL, "status_name",
                            mss_status_name(MSS_USER_CANCEL)));
    }
  } else {
    w = ctl_wait_new(x, W_HANDSET, m);
    if (!w) {
      goto done;
    }
    rv = mock_mssp_handset(e, pend->mssp_trans_id, 1, pin, ctl_done, w, &op);
    if (rv == GW_OK && !op) {
      /* Ended at once (no certificate): nothing to wait for. */
      free(w);
      answer_json(x, 200, json_pack("{s:s}", "status_name", "ended"));
    } else if (rv == GW_OK) {
      ctl_wait_start(w, rv, op);
    } else {
      free(w);
    }
  }
  if (rv == GW_ERR_BUSY) {
    gw_resp_error(x, 409, "not_waiting",
                  "the transaction does not wait for the handset now (the "
                  "SIM is busy, or the behaviour is not \"handset\")");
  } else if (rv != GW_OK) {
    sub_error(x, rv, m);
  }
done:
  free(pend);
  json_decref(body);
}

static void h_behaviour(gw_exch *x) {
  const char *m = msisdn_param(x), *beh = NULL;
  gw_req *r = gw_exch_req(x);
  json_t *body = NULL, *v;
  mock_sub_info si;
  int rv;

  if (bind_or_fail(x)) {
    return;
  }
  if (strcmp(r->method, "DELETE") != 0) {
    if (gw_req_json(x, &body) != GW_OK) {
      return;
    }
    v = json_object_get(body, "behaviour");
    if (!v || (!json_is_string(v) && !json_is_null(v))) {
      json_decref(body);
      gw_resp_error(x, 400, "invalid_request",
                    "the body is {\"behaviour\": \"refuse\"} (or null for the "
                    "registry's)");
      return;
    }
    beh = json_is_string(v) ? json_string_value(v) : NULL;
  }
  rv = mock_mssp_set_behaviour(app_of(x)->engine, m, beh);
  json_decref(body);
  if (rv == GW_ERR_INVALID) {
    gw_resp_error(x, 400, "invalid_behaviour",
                  "not a behaviour (approve[:ms], refuse[:ms], no_answer, "
                  "handset, pin_blocked, wrong_pin[:ms], absent[:ms], "
                  "sim_error[:ms], not_subscriber[:404|422]) or a bad MSISDN");
    return;
  }
  if (rv != GW_OK || mock_mssp_subscriber(app_of(x)->engine, m, &si) != GW_OK) {
    sub_error(x, rv == GW_OK ? GW_ERR_NOT_FOUND : rv, m);
    return;
  }
  answer_json(x, 200,
              json_pack("{s:s, s:s, s:s, s:b}", "msisdn", si.msisdn,
                        "behaviour", si.behaviour, "registry_behaviour",
                        si.registry_behaviour, "overridden", si.overridden));
}

static const char *const inject_names[MOCK_INJECT_COUNT_] = {
    "none",         "slow",      "garbage",   "invalid_xml",
    "content_type", "oversized", "http_error"};

const char *mock_inject_name(mock_inject m) {
  return (int)m >= 0 && m < MOCK_INJECT_COUNT_ ? inject_names[m] : NULL;
}

/* The integer member |name| of |j| within [lo, hi], or |def| when absent;
 * -1 when present but not such an integer. */
static int jint(json_t *j, const char *name, int lo, int hi, int def) {
  json_t *v = json_object_get(j, name);

  if (!v) {
    return def;
  }
  if (!json_is_integer(v) || json_integer_value(v) < lo ||
      json_integer_value(v) > hi) {
    return -1;
  }
  return (int)json_integer_value(v);
}

static void h_inject(gw_exch *x) {
  mock_app *app = app_of(x);
  json_t *body = NULL;
  const char *mode = "none";
  int m = -1, arg = 0;

  if (strcmp(gw_exch_req(x)->method, "DELETE") != 0) {
    if (gw_req_json(x, &body) != GW_OK) {
      return;
    }
    mode = jstr(body, "mode");
  }
  for (int i = 0; mode && i < MOCK_INJECT_COUNT_; i++) {
    if (strcmp(mode, inject_names[i]) == 0) {
      m = i;
    }
  }
  if (m == MOCK_INJECT_SLOW) {
    arg = jint(body, "ms", 1, 3600000, 5000);
  } else if (m == MOCK_INJECT_OVERSIZED) {
    arg = jint(body, "bytes", 1, 15 * 1024 * 1024, 2 * 1024 * 1024);
  } else if (m == MOCK_INJECT_HTTP_ERROR) {
    arg = jint(body, "status", 400, 599, 503);
  }
  json_decref(body);
  if (m < 0 || arg < 0) {
    gw_resp_error(x, 400, "invalid_request",
                  "the body is {\"mode\": \"none\" | \"slow\" (\"ms\") | "
                  "\"garbage\" | \"invalid_xml\" | \"content_type\" | "
                  "\"oversized\" (\"bytes\") | \"http_error\" "
                  "(\"status\")}");
    return;
  }
  app->inject = (mock_inject)m;
  app->inject_arg = arg;
  GW_LOG(GW_LOG_INFO, "front misbehaviour set", "operator=%s mode=%s arg=%d",
         app->operator_name, inject_names[m], arg);
  answer_json(x, 200,
              json_pack("{s:s, s:i}", "mode", inject_names[m], "arg", arg));
}

int mock_front_routes(gw_router *r, int control) {
  int rv = gw_router_add(r, "GET", "/healthz", h_healthz, 0, "healthz");

  if (rv != GW_OK || !control) {
    return rv;
  }
  rv = rv ? rv
          : gw_router_add(r, "GET", "/control/stats", h_stats, 0,
                          "control_stats");
  rv = rv ? rv
          : gw_router_add(r, "GET", "/control/subscribers/{msisdn}",
                          h_subscriber, 0, "control_subscriber");
  rv = rv ? rv
          : gw_router_add(r, "PUT", "/control/subscribers/{msisdn}/behaviour",
                          h_behaviour, CONTROL_BODY_MAX, "control_behaviour");
  rv = rv ? rv
          : gw_router_add(r, "POST", "/control/subscribers/{msisdn}/behaviour",
                          h_behaviour, CONTROL_BODY_MAX, "control_behaviour");
  rv =
      rv ? rv
         : gw_router_add(r, "DELETE", "/control/subscribers/{msisdn}/behaviour",
                         h_behaviour, 0, "control_behaviour");
  rv = rv ? rv
          : gw_router_add(r, "POST", "/control/subscribers/{msisdn}/pin/reset",
                          h_pin_reset, CONTROL_BODY_MAX, "control_pin_reset");
  rv = rv ? rv
          : gw_router_add(
                r, "POST", "/control/subscribers/{msisdn}/pin/unblock",
                h_pin_unblock, CONTROL_BODY_MAX, "control_pin_unblock");
  rv = rv ? rv
          : gw_router_add(r, "POST", "/control/subscribers/{msisdn}/handset",
                          h_handset, CONTROL_BODY_MAX, "control_handset");
  rv = rv ? rv
          : gw_router_add(r, "GET", "/control/transactions/{id}", h_tx, 0,
                          "control_transaction");
  rv = rv ? rv
          : gw_router_add(r, "PUT", "/control/inject", h_inject,
                          CONTROL_BODY_MAX, "control_inject");
  rv = rv ? rv
          : gw_router_add(r, "DELETE", "/control/inject", h_inject, 0,
                          "control_inject");
  return rv;
}

/* ---- misbehaviour on demand, shared by the operator fronts --------------- */

typedef struct slow_wait {
  gw_exch *x;
  struct event *ev;
  void (*handle)(gw_exch *x, void *arg);
  void *arg;
} slow_wait;

static void slow_cancel(void *arg) {
  slow_wait *s = arg;

  event_free(s->ev);
  free(s);
}

static void slow_cb(evutil_socket_t fd, short what, void *arg) {
  slow_wait *s = arg;
  gw_exch *x = s->x;
  void (*handle)(gw_exch *, void *) = s->handle;
  void *harg = s->arg;

  (void)fd;
  (void)what;
  event_free(s->ev);
  free(s);
  gw_exch_on_cancel(x, NULL, NULL);
  handle(x, harg);
}

static int misbehave_slow(gw_exch *x, mock_app *app,
                          void (*handle)(gw_exch *x, void *arg), void *arg) {
  struct timeval tv;
  slow_wait *s;

  if (mock_mssp_bind_exch(app->engine, x) != GW_OK) {
    return 0;
  }
  s = calloc(1, sizeof(*s));
  if (!s) {
    return 0;
  }
  s->x = x;
  s->handle = handle;
  s->arg = arg;
  s->ev = event_new(mock_mssp_base(app->engine), -1, 0, slow_cb, s);
  if (!s->ev) {
    free(s);
    return 0;
  }
  tv.tv_sec = app->inject_arg / 1000;
  tv.tv_usec = (app->inject_arg % 1000) * 1000;
  event_add(s->ev, &tv);
  gw_exch_on_cancel(x, slow_cancel, s);
  return 1;
}

int mock_front_misbehave(gw_exch *x, const mock_wire *w,
                         void (*handle)(gw_exch *x, void *arg), void *arg) {
  static const char html[] =
      "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>";
  mock_app *app = gw_exch_app(x);
  unsigned char junk[512];
  gw_buf b;

  switch (app->inject) {
  case MOCK_INJECT_NONE:
  case MOCK_INJECT_COUNT_:
    return 0;
  case MOCK_INJECT_SLOW:
    return misbehave_slow(x, app, handle, arg);
  case MOCK_INJECT_GARBAGE:
    RAND_bytes(junk, sizeof(junk));
    if (w->garbage_first >= 0) {
      junk[0] = (unsigned char)w->garbage_first;
    }
    gw_resp_send(x, 200, w->content_type, junk, sizeof(junk));
    return 1;
  case MOCK_INJECT_INVALID_XML:
    gw_resp_send(x, 200, w->content_type, w->truncated, strlen(w->truncated));
    return 1;
  case MOCK_INJECT_CONTENT_TYPE:
    gw_resp_send(x, 200, "text/html; charset=utf-8", html, sizeof(html) - 1);
    return 1;
  case MOCK_INJECT_OVERSIZED:
    /* Well-formed, message-shaped, and at least |inject_arg| bytes. */
    gw_buf_init(&b, (size_t)app->inject_arg + 1024);
    gw_buf_puts(&b, w->pad_head);
    while (b.len + strlen(w->pad_tail) < (size_t)app->inject_arg &&
           gw_buf_puts(&b, w->pad_unit) == GW_OK) {
    }
    gw_buf_puts(&b, w->pad_tail);
    gw_resp_send(x, 200, w->content_type, b.data ? b.data : "", b.len);
    gw_buf_free(&b);
    return 1;
  case MOCK_INJECT_HTTP_ERROR:
    gw_resp_send(x, app->inject_arg, "text/plain; charset=utf-8",
                 "injected failure\n", 17);
    return 1;
  }
  return 0;
}
