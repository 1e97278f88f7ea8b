/* gw_txn_test.c — sign-in transactions (gateway/gw_txn.c): the published
 * verification-code vector, the names, every refusal of gw_txn_begin (and
 * that none of them reaches an operator), then real sign-ins end to end
 * through both real mock operators (private PKI made with the real
 * mpkictl): approve -> verified -> consumed exactly once; refusal; a
 * revoked certificate caught by the verifier; a civil number resolved to
 * its SIM; the ported number at Ooredoo; expiry; the polling interval.
 *
 * Prints "# skip" for the end-to-end part when $BUILD/mssp-mock or
 * $BUILD/mpkictl are not built. Run from the repository root. */
#include "gw_txn.h"

#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_limits.h"
#include "gw_log.h"
#include "harness.h"
#include "mss_soap.h"
#include "op_adapter.h"
#include "p11.h"
#include "support/t_child.h"
#include "unit/operators/op_fakesrv.h"
#include "support/t_demo.h"

#define AP_ID "http://mpkigw.test/ap"
#define AP_PWD "gw-test-secret-4711"

static char dir[PATH_MAX], build[PATH_MAX], gwconf[PATH_MAX + 32];
static int om_port, oo_port;
static pid_t om_pid, oo_pid, parent;
static int have_stack;

static const char SIMS[] =
    "msisdn,civil_id,name,operator,pin,puk,behaviour\n"
    "+96899000001,10000001,Salim Al-Harthy,omantel,,,approve:100\n"
    "+96899000002,10000002,Aisha Al-Balushi,omantel,,,refuse:100\n"
    "+96899000003,10000003,Khalid Al-Rawahi,omantel,,,no_answer\n"
    "+96899000004,10000004,Maryam Al-Lawati,omantel,,,approve:100\n"
    "+96895000001,10000011,Fatma Al-Hinai,ooredoo,,,approve:100\n"
    "+96899000009,10000019,Noura Al-Saadi,ooredoo,,,approve:100\n"
    "+96895000007,10000031,Both Operators,ooredoo,,,approve:100\n"
    "+96899000007,10000031,Both Operators,omantel,,,approve:100\n";

static void cleanup(void) {
  if (getpid() != parent) {
    return;
  }
  t_mock_stop(&om_pid);
  t_mock_stop(&oo_pid);
  if (dir[0]) {
    t_sh("rm -rf '%s'", dir);
  }
}

static int make_stack(void) {
  const char *mock = "transactions: { default_timeout_s = 60; };\n"
                     "control: { enabled = true; };\n";
  char ops[512];

  snprintf(gwconf, sizeof(gwconf), "%s/mpkigw.conf", dir);
  snprintf(ops, sizeof(ops),
           "omantel: { ap_id = \"%s\"; ap_pwd = \"%s\"; };\n"
           "ooredoo: { ap_id = \"%s\"; ap_pwd = \"%s\"; };\n"
           "portability = \"%s/configs/portability.csv\";\n",
           AP_ID, AP_PWD, AP_ID, AP_PWD, getenv("PWD") ? getenv("PWD") : ".");
  if (t_demo_pki_ops(dir, build, SIMS, ops) != 0 ||
      t_mpkictl(dir, build, 60,
                "cert revoke --msisdn +96899000004 --reason keyCompromise") !=
          0 ||
      t_mpkictl(dir, build, 60, "crl publish") != 0) {
    t_sh("tail -n 5 '%s/ctl.log' | sed 's/^/# /'", dir);
    return -1;
  }
  if (t_mock_start_op(dir, build, "omantel", mock, &om_port, &om_pid) != 0 ||
      t_mock_start_op(dir, build, "ooredoo", mock, &oo_port, &oo_pid) != 0) {
    return -1;
  }
  return 0;
}

/* ---- an engine on this thread's loop ---------------------------------- */

typedef struct env {
  gw_config *cfg;
  op_registry *ops;
  p11_pool *pool;
  gw_txn_engine *e;
  struct event_base *base;
} env;

static void set_str(char **p, const char *v) {
  free(*p);
  *p = strdup(v);
}

static int env_up(env *v) {
  char err[512], url[128];

  memset(v, 0, sizeof(*v));
  if (gw_config_load(&v->cfg, gwconf, err, sizeof(err)) != GW_OK) {
    printf("# %s\n", err);
    return -1;
  }
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/soap/services", om_port);
  set_str(&v->cfg->op_omantel.url, url);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/rest/service", oo_port);
  set_str(&v->cfg->op_ooredoo.url, url);
  v->cfg->op_omantel.poll_first_ms = 50;
  v->cfg->op_omantel.poll_interval_ms = 50;
  v->cfg->op_ooredoo.poll_first_ms = 50;
  v->cfg->op_ooredoo.poll_interval_ms = 50;
  v->cfg->oidc_ciba_interval_s = 2;
  if (op_registry_new(&v->ops, v->cfg, err, sizeof(err)) != GW_OK ||
      p11_pool_new(&v->pool, 2, 1000) != P11_OK ||
      gw_txn_engine_new(&v->e, v->cfg, v->ops, v->pool, err, sizeof(err)) !=
          GW_OK) {
    printf("# env: %s\n", err);
    return -1;
  }
  v->base = event_base_new();
  return v->base ? 0 : -1;
}

static void env_down(env *v) {
  p11_pool_del(v->pool);
  gw_txn_engine_del(v->e); /* frees this thread's sign-ins and op_http */
  if (v->base) {
    event_base_free(v->base);
  }
  op_registry_del(v->ops);
  gw_config_del(v->cfg);
}

static gw_txn_begin_result begin(env *v, const char *hint, const char *bm,
                                 int expiry, gw_txn_info *info) {
  gw_txn_start s;
  const char *why;

  memset(&s, 0, sizeof(s));
  s.client_id = "demo-rp";
  s.client_name = "Demo RP";
  s.login_hint = hint;
  s.binding_message = bm;
  s.scope = "openid";
  s.resource = "";
  s.acr = "mpki";
  s.lang = "en";
  s.expiry_s = expiry;
  s.ciba = 1;
  return gw_txn_begin(v->e, v->base, &s, info, &why);
}

/* Runs the loop until |auth_req_id| leaves the running states. */
static gw_txn_state wait_end(env *v, const char *auth_req_id, int ms,
                             gw_txn_info *out) {
  for (int i = 0; i < ms / 10; i++) {
    struct timeval tv = {0, 10000};
    event_base_loopexit(v->base, &tv);
    event_base_dispatch(v->base);
    if (gw_txn_get_by_req(v->e, auth_req_id, out) == GW_OK &&
        out->state != GW_TXN_CREATED && out->state != GW_TXN_SENT &&
        out->state != GW_TXN_SIGNED) {
      return out->state;
    }
  }
  return out->state;
}

/* ---- tests ------------------------------------------------------------ */

static void t_code_vector(void) {
  static const uint8_t sha1[20] = {0x2f, 0x66, 0x5f, 0x6a, 0x69, 0x99, 0xe0,
                                   0xef, 0x07, 0x52, 0xe0, 0x0e, 0xc9, 0xf4,
                                   0x53, 0xad, 0xf5, 0x9d, 0x8c, 0xb6};
  T_EQ_INT(gw_txn_code(sha1, sizeof(sha1)), 1462);
  T_EQ_INT(gw_txn_code(sha1, 0), -1);
}

static void t_names(void) {
  T_EQ_STR(gw_txn_failure_name(GW_TXN_FAIL_REVOKED_CERTIFICATE),
           "revoked_certificate");
  /* what an unauthenticated caller may not tell apart */
  T_EQ_STR(gw_txn_failure_public(GW_TXN_FAIL_NOT_SUBSCRIBER), "not_completed");
  T_EQ_STR(gw_txn_failure_public(GW_TXN_FAIL_PHONE_ABSENT), "not_completed");
  T_EQ_STR(gw_txn_failure_public(GW_TXN_FAIL_TIMED_OUT), "not_completed");
  T_EQ_STR(gw_txn_failure_public(GW_TXN_FAIL_USER_CANCELLED), "user_cancelled");
  T_EQ_STR(gw_txn_state_name(GW_TXN_VERIFIED), "verified");
}

static void t_refusals(void) {
  char many[200];
  gw_txn_info i;
  env v;

  T_ASSERT(env_up(&v) == 0);
  memset(many, 'x', sizeof(many) - 1);
  many[sizeof(many) - 1] = '\0';
  T_EQ_INT(begin(&v, "tel:+4915112345678", NULL, 0, &i), GW_TXN_BEGIN_BAD_HINT);
  T_EQ_INT(begin(&v, "tel:not-a-number", NULL, 0, &i), GW_TXN_BEGIN_BAD_HINT);
  T_EQ_INT(begin(&v, "mail@example.om", NULL, 0, &i), GW_TXN_BEGIN_BAD_HINT);
  T_EQ_INT(begin(&v, "tel:+96899123456", NULL, 0, &i),
           GW_TXN_BEGIN_UNKNOWN_USER);
  T_EQ_INT(begin(&v, "99999999", NULL, 0, &i), GW_TXN_BEGIN_UNKNOWN_USER);
  T_EQ_INT(begin(&v, "tel:+96899000001", many, 0, &i),
           GW_TXN_BEGIN_BAD_MESSAGE);
  T_EQ_INT(begin(&v, "tel:+96899000001", "bad\ncontrol", 0, &i),
           GW_TXN_BEGIN_BAD_MESSAGE);
  T_EQ_INT((int)gw_txn_count(v.e), 0);
  env_down(&v);
  /* none of them reached an operator */
  T_EQ_INT(t_sh("curl -s http://127.0.0.1:%d/control/stats | "
                "grep -Eq '\"requests\": ?0[,}]'",
                om_port),
           0);
}

static void t_signed_once(void) {
  static const char *const hints[] = {"tel:+96899000001", "tel:+96895000001",
                                      "+96899000009", "10000001"};
  gw_txn_info i, o;
  env v;

  T_ASSERT(env_up(&v) == 0);
  for (size_t k = 0; k < sizeof(hints) / sizeof(hints[0]); k++) {
    T_EQ_INT(begin(&v, hints[k], "Order 42", 0, &i), GW_TXN_BEGIN_OK);
    T_EQ_INT((int)strlen(i.auth_req_id), GW_TXN_ID_LEN);
    T_EQ_INT((int)strlen(i.verification_code), 4);
    T_EQ_INT(wait_end(&v, i.auth_req_id, 10000, &o), GW_TXN_VERIFIED);
    if (o.state != GW_TXN_VERIFIED) {
      printf("#   %s: %s %s (%s)\n", hints[k], gw_txn_state_name(o.state),
             gw_txn_failure_name(o.failure), o.detail);
    }
    T_ASSERT(o.auth_time > 0);
    T_EQ_INT(gw_txn_consume(v.e, o.id), GW_OK);
    T_EQ_INT(gw_txn_consume(v.e, o.id), GW_ERR_EXISTS); /* single use */
  }
  T_EQ_STR(o.civil_id, "10000001");
  T_EQ_STR(o.msisdn, "+96899000001");
  env_down(&v);
}

static void t_failures(void) {
  gw_txn_info i, o;
  env v;

  T_ASSERT(env_up(&v) == 0);
  T_EQ_INT(begin(&v, "tel:+96899000002", NULL, 0, &i), GW_TXN_BEGIN_OK);
  T_EQ_INT(wait_end(&v, i.auth_req_id, 10000, &o), GW_TXN_FAILED);
  T_EQ_INT(o.failure, GW_TXN_FAIL_USER_CANCELLED);
  T_EQ_INT(gw_txn_consume(v.e, o.id), GW_ERR_INVALID);
  /* signed by the SIM, refused by the verifier */
  T_EQ_INT(begin(&v, "tel:+96899000004", NULL, 0, &i), GW_TXN_BEGIN_OK);
  T_EQ_INT(wait_end(&v, i.auth_req_id, 10000, &o), GW_TXN_FAILED);
  T_EQ_INT(o.failure, GW_TXN_FAIL_REVOKED_CERTIFICATE);
  T_ASSERT(strstr(o.detail, "revoked") != NULL);
  /* nobody answers: expired at the request's expiry */
  T_EQ_INT(begin(&v, "tel:+96899000003", NULL, 2, &i), GW_TXN_BEGIN_OK);
  T_EQ_INT(wait_end(&v, i.auth_req_id, 6000, &o), GW_TXN_EXPIRED);
  env_down(&v);
}

static void t_poll_interval(void) {
  gw_txn_info i;
  env v;

  T_ASSERT(env_up(&v) == 0);
  T_EQ_INT(begin(&v, "tel:+96899000003", NULL, 0, &i), GW_TXN_BEGIN_OK);
  T_EQ_INT(i.interval_s, 2);
  T_EQ_INT(gw_txn_poll(v.e, i.auth_req_id), 0); /* the first: welcome */
  T_EQ_INT(gw_txn_poll(v.e, i.auth_req_id), 1); /* at once: too early */
  sleep(1);
  T_EQ_INT(gw_txn_poll(v.e, i.auth_req_id), 1); /* not restarted */
  sleep(1);
  T_EQ_INT(gw_txn_poll(v.e, i.auth_req_id), 0); /* 2 s after the first */
  T_EQ_INT(gw_txn_poll(v.e, i.auth_req_id), 1);
  T_EQ_INT(gw_txn_poll(v.e, "nope"), -1);
  env_down(&v);
}

static void t_civil_last_signed(void) {
  gw_txn_info i, o;
  env v;

  T_ASSERT(env_up(&v) == 0);
  /* two SIMs: the Omantel one signs first; then the civil number picks
   * the one that last signed */
  T_EQ_INT(begin(&v, "tel:+96899000007", NULL, 0, &i), GW_TXN_BEGIN_OK);
  T_EQ_INT(wait_end(&v, i.auth_req_id, 10000, &o), GW_TXN_VERIFIED);
  sleep(1); /* last_signed_at has a resolution of one second */
  T_EQ_INT(begin(&v, "tel:+96895000007", NULL, 0, &i), GW_TXN_BEGIN_OK);
  T_EQ_INT(wait_end(&v, i.auth_req_id, 10000, &o), GW_TXN_VERIFIED);
  T_EQ_INT(begin(&v, "10000031", NULL, 0, &i), GW_TXN_BEGIN_OK);
  T_EQ_STR(i.msisdn, "+96895000007");
  T_EQ_STR(i.operator_name, "ooredoo");
  T_EQ_INT(wait_end(&v, i.auth_req_id, 10000, &o), GW_TXN_VERIFIED);
  env_down(&v);
}

typedef struct wseen {
  int n;
  gw_txn_info info;
} wseen;

static void on_watch(void *arg, const gw_txn_info *info) {
  wseen *w = arg;
  w->n++;
  w->info = *info;
}

static void run_until_n(env *v, const int *n, int ms) {
  for (int i = 0; i < ms / 10 && *n == 0; i++) {
    struct timeval tv = {0, 10000};
    event_base_loopexit(v->base, &tv);
    event_base_dispatch(v->base);
  }
}

static void t_watch_cancel(void) {
  gw_txn_watcher *w1, *w2, *w3;
  wseen a = {0}, b = {0}, c = {0};
  gw_txn_info i, j, o;
  env v;

  T_ASSERT(env_up(&v) == 0);
  /* a long poll wakes when the sign-in ends (here: verified) */
  T_EQ_INT(begin(&v, "tel:+96899000001", NULL, 0, &i), GW_TXN_BEGIN_OK);
  T_EQ_INT(gw_txn_watch(v.e, i.id, v.base, 20000, on_watch, &a, &w1), GW_OK);
  run_until_n(&v, &a.n, 10000);
  T_EQ_INT(a.n, 1);
  T_ASSERT(a.info.state == GW_TXN_SENT || a.info.state == GW_TXN_VERIFIED ||
           a.info.state == GW_TXN_SIGNED);
  T_EQ_INT(wait_end(&v, i.auth_req_id, 10000, &o), GW_TXN_VERIFIED);
  /* a watch on an ended one answers at once */
  a.n = 0;
  T_EQ_INT(gw_txn_watch(v.e, i.id, v.base, 20000, on_watch, &a, &w1), GW_OK);
  run_until_n(&v, &a.n, 1000);
  T_EQ_INT(a.n, 1);
  T_EQ_INT(a.info.state, GW_TXN_VERIFIED);
  /* nobody answers: the watch times out with the state unchanged; a
   * dropped watch never fires; cancel ends it and wakes the others */
  T_EQ_INT(begin(&v, "tel:+96899000003", NULL, 0, &j), GW_TXN_BEGIN_OK);
  run_until_n(&v, &c.n, 500); /* let it reach "sent" */
  T_EQ_INT(gw_txn_watch(v.e, j.id, v.base, 300, on_watch, &b, &w2), GW_OK);
  run_until_n(&v, &b.n, 3000);
  T_EQ_INT(b.n, 1);
  T_ASSERT(b.info.state == GW_TXN_SENT || b.info.state == GW_TXN_CREATED);
  T_EQ_INT(gw_txn_watch(v.e, j.id, v.base, 20000, on_watch, &c, &w3), GW_OK);
  b.n = 0;
  T_EQ_INT(gw_txn_watch(v.e, j.id, v.base, 20000, on_watch, &b, &w2), GW_OK);
  gw_txn_unwatch(w2);
  T_EQ_INT(gw_txn_cancel(v.e, j.id), GW_OK);
  run_until_n(&v, &c.n, 3000);
  T_EQ_INT(c.n, 1);
  T_EQ_INT(c.info.state, GW_TXN_FAILED);
  T_EQ_INT(c.info.failure, GW_TXN_FAIL_CANCELLED);
  T_EQ_INT(b.n, 0);
  T_EQ_INT(gw_txn_cancel(v.e, j.id), GW_ERR_INVALID);
  T_EQ_INT(gw_txn_cancel(v.e, "nope"), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_txn_get(v.e, j.id, &o), GW_OK);
  T_EQ_INT(o.failure, GW_TXN_FAIL_CANCELLED);
  env_down(&v);
}

/* Abuse limits: one pending sign-in per phone; a refusal releases it. */
static void t_limits(void) {
  gw_txn_info i, j, o;
  env v;

  T_ASSERT(env_up(&v) == 0);
  T_EQ_INT(begin(&v, "tel:+96899000003", NULL, 0, &i), GW_TXN_BEGIN_OK);
  memset(&j, 0, sizeof(j));
  T_EQ_INT(begin(&v, "tel:+96899000003", NULL, 0, &j), GW_TXN_BEGIN_LIMITED);
  T_EQ_INT(j.limit, GW_LIMIT_PENDING);
  /* the same person by civil number is the same phone */
  T_EQ_INT(begin(&v, "10000003", NULL, 0, &j), GW_TXN_BEGIN_LIMITED);
  T_EQ_INT(gw_txn_cancel(v.e, i.id), GW_OK);
  T_EQ_INT(wait_end(&v, i.auth_req_id, 3000, &o), GW_TXN_FAILED);
  T_EQ_INT(begin(&v, "tel:+96899000003", NULL, 0, &j), GW_TXN_BEGIN_OK);
  /* another phone is not affected */
  T_EQ_INT(begin(&v, "tel:+96899000001", NULL, 0, &i), GW_TXN_BEGIN_OK);
  env_down(&v);
}

/* CIBA ping: a scripted client endpoint answers 503 once, then 204. */
static int pings;
static char ping_auth[1100], ping_body[256];

static void h_ping(void *arg, const fs_request *q, fs_response *r) {
  (void)arg;
  pings++;
  snprintf(ping_auth, sizeof(ping_auth), "%s", q->authorization);
  snprintf(ping_body, sizeof(ping_body), "%s", q->body);
  r->status = pings == 1 ? 503 : 204;
  r->content_type = "text/plain";
  r->body = "";
}

static void t_ping(void) {
  char url[64], want[128];
  gw_txn_start s;
  gw_txn_info i, o;
  fs_server srv;
  const char *why;
  env v;

  T_ASSERT(fs_start(&srv, h_ping, NULL) == 0);
  T_ASSERT(env_up(&v) == 0);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/ciba/ping", srv.port);
  memset(&s, 0, sizeof(s));
  s.client_id = "ping-rp";
  s.client_name = "Ping RP";
  s.login_hint = "tel:+96899000001";
  s.scope = "openid";
  s.acr = "mpki";
  s.lang = "ar";
  s.ciba = 1;
  s.ping_endpoint = url;
  s.ping_token = "the-client-notification-token";
  T_EQ_INT(gw_txn_begin(v.e, v.base, &s, &i, &why), GW_TXN_BEGIN_OK);
  T_EQ_INT(wait_end(&v, i.auth_req_id, 10000, &o), GW_TXN_VERIFIED);
  /* the first attempt gets 503; the retry a second later is delivered */
  for (int k = 0; k < 400 && pings < 2; k++) {
    struct timeval tv = {0, 10000};
    event_base_loopexit(v.base, &tv);
    event_base_dispatch(v.base);
  }
  T_EQ_INT(pings, 2);
  T_EQ_STR(ping_auth, "Bearer the-client-notification-token");
  snprintf(want, sizeof(want), "{\"auth_req_id\":\"%s\"}", i.auth_req_id);
  T_EQ_STR(ping_body, want);
  env_down(&v);
  fs_stop(&srv);
}

int main(void) {
  const char *b = getenv("BUILD");
  char tmpl[] = "/tmp/gw_txn_test.XXXXXX", p1[PATH_MAX + 32], p2[PATH_MAX + 32];

  signal(SIGPIPE, SIG_IGN);
  gw_log_open(NULL, GW_LOG_ERROR);
  T_RUN(t_code_vector);
  T_RUN(t_names);
  if (!realpath(b && b[0] ? b : "build", build)) {
    printf("# skip: no build directory\n");
    return T_DONE();
  }
  snprintf(p1, sizeof(p1), "%s/mssp-mock", build);
  snprintf(p2, sizeof(p2), "%s/mpkictl", build);
  if (access(p1, X_OK) != 0 || access(p2, X_OK) != 0) {
    printf("# skip: the end-to-end part needs %s and %s\n", p1, p2);
    return T_DONE();
  }
  if (!mkdtemp(tmpl) || !realpath(tmpl, dir)) {
    return 1;
  }
  parent = getpid();
  atexit(cleanup);
  mss_soap_init();
  op_http_global_init();
  have_stack = make_stack() == 0;
  printf("%s - private PKI and both mock operators\n",
         have_stack ? "ok" : "not ok");
  if (!have_stack) {
    return 1;
  }
  T_RUN_CHILD(t_refusals);
  T_RUN_CHILD(t_signed_once);
  T_RUN_CHILD(t_failures);
  T_RUN_CHILD(t_poll_interval);
  T_RUN_CHILD(t_civil_last_signed);
  T_RUN_CHILD(t_watch_cancel);
  T_RUN_CHILD(t_ping);
  T_RUN_CHILD(t_limits);
  return T_DONE();
}
