/* op_ooredoo_mock_test.c — the Ooredoo adapter against the real mock MSSP,
 * with notifications.
 *
 * Makes a private PKI with the real $BUILD/mpkictl (nothing of var/ is
 * touched), starts the real `$BUILD/mssp-mock --operator ooredoo` on a free
 * loopback port as a child, and in each test an in-process gateway server
 * (TLS, a certificate made once for the test, the mock trusting it) with
 * POST /operators/{name}/notify (gw_operators.c) in front of the registry.
 * The adapter (operators/op_ooredoo.c) submits in asynchServerServer mode
 * on this thread's loop; the mock POSTs the final MSS_StatusResp over
 * HTTPS with its HMAC; the gateway's worker hands it to this loop. Every
 * Ooredoo behaviour end to end — approve (the PKCS1 r||s and certificate
 * verified with the gateway's verifier, gw_verify_raw), refuse, PIN
 * blocked, wrong PIN until blocked, phone absent, SIM error, not a
 * subscriber, no answer (208 by notification), the ported +96899000009 —
 * with no status polling; then the mock hung (SIGSTOP) and killed while
 * the gateway waits for a notification: polling takes over and ends with
 * operator_unavailable, and the hung mock's late notification is refused.
 *
 * Prints "# skip" and passes when $BUILD/mssp-mock or $BUILD/mpkictl are
 * not built. Run from the repository root; every wait is bounded, and the
 * mock is killed at exit. */
#include "op_adapter.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw_app.h"
#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_operators.h"
#include "gw_verify.h"
#include "harness.h"
#include "mss_soap.h"
#include "op_fakesrv.h" /* fs_now_ms */
#include "support/t_child.h"
#include "support/t_demo.h"
#include "support/t_server.h"

#define AP_ID "http://mpkigw.test/ap"
#define AP_PWD "gw-test-secret-4711"
#define SECRET "ooredoo-notify-secret-of-this-test-0123456789"

static char dir[PATH_MAX], build[PATH_MAX];
static char gwconf[PATH_MAX + 32], cert[PATH_MAX + 32], key[PATH_MAX + 32];
static int mock_port, gw_port;
static pid_t mock_pid, parent;

static const char SIMS[] =
    "msisdn,civil_id,name,operator,pin,puk,behaviour\n"
    "+96895000001,10000011,Fatma Al-Hinai,ooredoo,,,approve:200\n"
    "+96895000002,10000012,Hamad Al-Kindi,ooredoo,,,pin_blocked\n"
    "+96895000003,10000013,Zainab Al-Mamari,ooredoo,,,absent:30\n"
    "+96895000004,10000014,Refusing User,ooredoo,,,refuse:100\n"
    "+96895000005,10000015,Sim Error,ooredoo,,,sim_error:30\n"
    "+96895000006,10000016,No Pki,ooredoo,,,not_subscriber\n"
    "+96895000007,10000017,Nobody Answers,ooredoo,,,no_answer\n"
    "+96895000008,10000018,Wrong Pin,ooredoo,,,wrong_pin:20\n"
    "+96895000009,10000019,Slow Approver,ooredoo,,,approve:1500\n"
    "+96899000009,10000029,Noura Al-Saadi,ooredoo,,,approve:100\n";

static void cleanup(void) {
  if (getpid() != parent) {
    return;
  }
  t_mock_stop(&mock_pid);
  if (dir[0]) {
    t_sh("rm -rf '%s'", dir);
  }
}

static int make_pki(void) {
  char ops[1024];

  snprintf(gwconf, sizeof(gwconf), "%s/mpkigw.conf", dir);
  snprintf(cert, sizeof(cert), "%s/gw-cert.pem", dir);
  snprintf(key, sizeof(key), "%s/gw-key.pem", dir);
  gw_port = t_free_port();
  snprintf(ops, sizeof(ops),
           "ooredoo: { ap_id = \"%s\"; ap_pwd = \"%s\";\n"
           "  notify_url = \"https://127.0.0.1:%d/operators/ooredoo/notify\";\n"
           "  notify_secret = \"%s\"; };\n",
           AP_ID, AP_PWD, gw_port, SECRET);
  if (gw_port == 0 || t_demo_pki_ops(dir, build, SIMS, ops) != 0) {
    t_sh("tail -n 5 '%s/ctl.log' | sed 's/^/# /'", dir);
    return -1;
  }
  return t_sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
              "-nodes -keyout '%s' -out '%s' -days 2 -subj /CN=gw-test "
              "-addext subjectAltName=IP:127.0.0.1 2>/dev/null",
              key, cert);
}

static int start_mock(void) {
  char extra[PATH_MAX + 512];

  snprintf(extra, sizeof(extra),
           "transactions: { default_timeout_s = 60; keep_done_s = 60; };\n"
           "notifications: { ca_file = \"%s\"; first_retry_ms = 200; "
           "timeout_ms = 2000; };\n"
           "control: { enabled = true; };\n"
           "server: { shutdown_grace_ms = 500; };",
           cert);
  return t_mock_start_op(dir, build, "ooredoo", extra, &mock_port, &mock_pid);
}

/* ---- the gateway side
 * ------------------------------------------------------------- */

typedef struct env {
  struct event_base *base;
  gw_config *cfg;
  gw_app app;
  ts_server srv;
  int srv_up;
  op_http *http;
} env;

typedef struct seen {
  int accepted, final;
  op_result fin;
  unsigned char *sig, *cert;
  size_t sig_len, cert_len;
  op_txn *t;
} seen;

static void on_result(void *arg, op_txn *t, const op_result *r) {
  seen *s = arg;

  if (r->phase == OP_PHASE_ACCEPTED) {
    s->accepted++;
    op_follow(t, on_result, s);
    return;
  }
  s->final++;
  s->fin = *r;
  s->fin.signature = NULL;
  s->fin.certificate = NULL;
  s->fin.msisdn = NULL;
  s->fin.operator_name = NULL;
  if (r->signature_len && r->certificate_len) {
    s->sig = malloc(r->signature_len);
    s->cert = malloc(r->certificate_len);
    if (s->sig && s->cert) {
      memcpy(s->sig, r->signature, r->signature_len);
      memcpy(s->cert, r->certificate, r->certificate_len);
      s->sig_len = r->signature_len;
      s->cert_len = r->certificate_len;
    }
  }
}

static void free_seen(seen *s) {
  free(s->sig);
  free(s->cert);
  s->sig = s->cert = NULL;
}

static void on_deadline(evutil_socket_t fd, short w, void *arg) {
  (void)fd;
  (void)w;
  *(int *)arg = 1;
}

static int run_until(struct event_base *base, const int *count, int want,
                     int ms) {
  int expired = 0;
  struct event *dl = evtimer_new(base, on_deadline, &expired);
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

  evtimer_add(dl, &tv);
  while (*count < want && !expired) {
    event_base_loop(base, EVLOOP_ONCE);
  }
  event_free(dl);
  return *count >= want;
}

static void set_str(char **p, const char *v) {
  free(*p);
  *p = strdup(v);
}

/* The in-process gateway: the port the mock notifies, the certificate it
 * trusts. */
static void gw_tweak(gw_config *c) {
  c->listen_port = gw_port;
  set_str(&c->tls_cert, cert);
  set_str(&c->tls_key, key);
}

static int env_up(env *e) {
  char err[512], url[128];

  memset(e, 0, sizeof(*e));
  if (gw_config_load(&e->cfg, gwconf, err, sizeof(err)) != GW_OK) {
    printf("# %s\n", err);
    return -1;
  }
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/rest/service", mock_port);
  set_str(&e->cfg->op_ooredoo.url, url);
  /* the repository's table: +96899000009 moved to Ooredoo */
  set_str(&e->cfg->op_portability, "configs/portability.csv");
  e->cfg->op_ooredoo.notify_overdue_ms = 4000;
  e->cfg->op_ooredoo.poll_interval_ms = 200;
  e->cfg->op_ooredoo.timeout_s = 3;
  e->cfg->op_ooredoo.http_timeout_ms = 1000;
  e->cfg->op_ooredoo.connect_timeout_ms = 500;
  e->cfg->op_ooredoo.status_retries = 1;
  e->cfg->op_ooredoo.breaker_failures = 0;
  if (op_registry_new(&e->app.operators, e->cfg, err, sizeof(err)) != GW_OK) {
    printf("# registry: %s\n", err);
    return -1;
  }
  e->app.cfg = e->cfg;
  e->base = event_base_new();
  if (!e->base ||
      op_registry_http_new(e->app.operators, e->base, &e->http) != GW_OK) {
    return -1;
  }
  if (ts_start_app(&e->srv, 2, gw_tweak, gw_operators_register, &e->app) != 0) {
    return -1;
  }
  e->srv_up = 1;
  return 0;
}

static void env_down(env *e) {
  if (e->srv_up) {
    ts_stop(&e->srv);
  }
  op_http_del(e->http);
  op_registry_del(e->app.operators);
  gw_config_del(e->cfg);
  if (e->base) {
    event_base_free(e->base);
  }
}

static unsigned char digest[32];

static int sign(env *e, const char *msisdn, seen *s, int ms) {
  op_route_result res;
  op_adapter *a;
  op_sign_req rq;

  memset(s, 0, sizeof(*s));
  for (int i = 0; i < 32; i++) {
    digest[i] = (unsigned char)(rand() & 0xff);
  }
  if (op_registry_route(e->app.operators, msisdn, &res, &a) != OP_ROUTE_OK) {
    printf("#   %s does not route\n", msisdn);
    return 0;
  }
  if (strcmp(op_adapter_name(a), "ooredoo") != 0) {
    printf("#   %s routes to %s\n", msisdn, op_adapter_name(a));
    return 0;
  }
  rq.msisdn = res.msisdn;
  rq.digest = digest;
  rq.display_text = "Sign in to Demo RP: code 1462";
  rq.timeout_s = 0;
  if (op_submit(a, e->http, &rq, on_result, s, &s->t) != GW_OK) {
    return 0;
  }
  return run_until(e->base, &s->final, 1, ms);
}

/* A counter of the adapter's /metrics text, or -1. */
static long metric(env *e, const char *line) {
  gw_buf m;
  const char *p;
  long v = -1;

  gw_buf_init(&m, 1 << 20);
  if (op_registry_metrics(e->app.operators, &m) == GW_OK &&
      (p = strstr(m.data, line)) != NULL) {
    v = strtol(p + strlen(line), NULL, 10);
  }
  gw_buf_free(&m);
  return v;
}

#define STATUS_REQS                                                            \
  "mpkigw_operator_requests_total{operator=\"ooredoo\",kind=\"status\"} "
#define APPLIED                                                                \
  "mpkigw_operator_notifications_total{operator=\"ooredoo\",result="           \
  "\"applied\"} "

/* ---- tests
 * ------------------------------------------------------------------ */

static void t_approve_verified(void) {
  char roots[PATH_MAX + 32], inter[PATH_MAX + 32], crl[PATH_MAX + 32], err[256];
  gw_verify_config vc;
  gw_verify *v = NULL;
  gw_verify_status st;
  gw_verify_req rq;
  env e;
  seen s;
  double t0;

  snprintf(roots, sizeof(roots), "%s/pki/root-ca.pem", dir);
  snprintf(inter, sizeof(inter), "%s/pki/issuing-ca.pem", dir);
  snprintf(crl, sizeof(crl), "%s/pki/crl.pem", dir);
  gw_verify_config_init(&vc);
  vc.roots_file = roots;
  vc.intermediates_file = inter;
  vc.crl_file = crl;
  vc.cache_size = 0;
  T_ASSERT(gw_verify_new(&v, &vc, err, sizeof(err)) == GW_OK);
  T_ASSERT(env_up(&e) == 0);
  t0 = fs_now_ms();
  T_ASSERT(sign(&e, "+96895000001", &s, 8000));
  T_EQ_STR(op_outcome_name(s.fin.outcome), "signed");
  T_EQ_INT(s.fin.etsi_status, 500);
  T_EQ_INT(s.fin.sig_format, OP_SIG_PKCS1);
  T_ASSERT(fs_now_ms() - t0 >= 200);
  T_ASSERT(fs_now_ms() - t0 < 3000); /* the notification, not polling */
  T_EQ_INT((int)metric(&e, STATUS_REQS), 0);
  T_EQ_INT((int)metric(&e, APPLIED), 1);
  memset(&rq, 0, sizeof(rq));
  rq.sig = s.sig;
  rq.sig_len = s.sig_len;
  rq.alg = GW_VERIFY_ECDSA_RAW;
  rq.cert = s.cert;
  rq.cert_len = s.cert_len;
  rq.data = digest;
  rq.data_len = 32;
  rq.data_kind = GW_VERIFY_DIGEST;
  rq.expect_msisdn = "+96895000001";
  T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_OK);
  T_EQ_STR(st.identity.civil_id, "10000011");
  digest[5] ^= 1;
  T_EQ_INT(gw_verify_raw(v, &rq, &st), GW_VERIFY_BAD_SIGNATURE);
  free_seen(&s);
  /* the ported number: in Omantel's range, an Ooredoo SIM */
  T_ASSERT(sign(&e, "+96899000009", &s, 8000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  T_EQ_INT((int)metric(&e, STATUS_REQS), 0);
  free_seen(&s);
  env_down(&e);
  gw_verify_del(v);
}

static void t_behaviours(void) {
  static const struct {
    const char *msisdn;
    const char *outcome;
    int etsi;
  } cases[] = {
      {"+96895000002", "pin_blocked", 402},
      {"+96895000003", "phone_absent", 209},
      {"+96895000004", "user_cancelled", 401},
      {"+96895000005", "sim_error", 900},
      {"+96895000006", "not_subscriber", 404},
      {"+96895000008", "pin_blocked", 402},
      {"+96895000007", "timed_out", 208},
  };
  env e;
  seen s;

  T_ASSERT(env_up(&e) == 0);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    T_ASSERT(sign(&e, cases[i].msisdn, &s, 10000));
    if (strcmp(op_outcome_name(s.fin.outcome), cases[i].outcome) != 0) {
      printf("#   %s: %s (%d, %s), expected %s\n", cases[i].msisdn,
             op_outcome_name(s.fin.outcome), s.fin.etsi_status, s.fin.detail,
             cases[i].outcome);
      T_ASSERT(0);
    }
    T_EQ_INT(s.fin.etsi_status, cases[i].etsi);
    free_seen(&s);
  }
  /* every final answer came by notification (not_subscriber is refused at
   * once, without one) */
  T_EQ_INT((int)metric(&e, STATUS_REQS), 0);
  T_EQ_INT((int)metric(&e, APPLIED), 6);
  /* the PIN of +96895000008 is blocked now: reset it for later runs */
  t_sh("curl -s -o /dev/null -X POST "
       "http://127.0.0.1:%d/control/subscribers/+96895000008/pin/reset",
       mock_port);
  env_down(&e);
}

/* The mock stops (SIGSTOP) while the gateway waits for the notification:
 * after notify_overdue_ms the adapter polls, the polls time out, the
 * transaction ends operator_unavailable; resumed, the mock notifies the
 * ended transaction and is refused (409, logged by the mock). */
static void t_mock_hung(void) {
  env e;
  seen s;
  double t0;

  T_ASSERT(env_up(&e) == 0);
  memset(&s, 0, sizeof(s));
  t0 = fs_now_ms();
  {
    op_sign_req rq = {"+96895000009", digest, NULL, 20};
    op_adapter *a = op_registry_get(e.app.operators, "ooredoo");
    T_EQ_INT(op_submit(a, e.http, &rq, on_result, &s, &s.t), GW_OK);
  }
  T_ASSERT(run_until(e.base, &s.accepted, 1, 3000));
  kill(mock_pid, SIGSTOP);
  T_ASSERT(run_until(e.base, &s.final, 1, 12000));
  kill(mock_pid, SIGCONT);
  T_EQ_STR(op_outcome_name(s.fin.outcome), "operator_unavailable");
  T_ASSERT(fs_now_ms() - t0 >= 4000); /* waited for the notification first */
  T_ASSERT(metric(&e, STATUS_REQS) >= 1);
  free_seen(&s);
  env_down(&e);
}

static void t_mock_killed(void) {
  env e;
  seen s;

  T_ASSERT(env_up(&e) == 0);
  memset(&s, 0, sizeof(s));
  {
    op_sign_req rq = {"+96895000009", digest, NULL, 20};
    op_adapter *a = op_registry_get(e.app.operators, "ooredoo");
    T_EQ_INT(op_submit(a, e.http, &rq, on_result, &s, &s.t), GW_OK);
  }
  T_ASSERT(run_until(e.base, &s.accepted, 1, 3000));
  kill(mock_pid, SIGKILL);
  T_ASSERT(run_until(e.base, &s.final, 1, 12000));
  T_EQ_STR(op_outcome_name(s.fin.outcome), "operator_unavailable");
  free_seen(&s);
  env_down(&e);
}

int main(void) {
  const char *b = getenv("BUILD");
  char tmpl[] = "/tmp/op_ooredoo_mock.XXXXXX", p1[PATH_MAX + 32],
       p2[PATH_MAX + 32];

  if (!realpath(b && b[0] ? b : "build", build)) {
    printf("# skip: no build directory\nok - t_skipped\n");
    return 0;
  }
  snprintf(p1, sizeof(p1), "%s/mssp-mock", build);
  snprintf(p2, sizeof(p2), "%s/mpkictl", build);
  if (access(p1, X_OK) != 0 || access(p2, X_OK) != 0) {
    printf("# skip: %s or %s is not built\nok - t_skipped\n", p1, p2);
    return 0;
  }
  if (!mkdtemp(tmpl) || !realpath(tmpl, dir)) {
    perror("mkdtemp");
    return 1;
  }
  parent = getpid();
  atexit(cleanup);
  signal(SIGPIPE, SIG_IGN);
  mss_soap_init();
  op_http_global_init();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  gw_log_open(NULL, GW_LOG_ERROR);
  srand((unsigned)getpid());
  if (make_pki() != 0) {
    printf("not ok - private PKI made with mpkictl\n");
    return 1;
  }
  printf("ok - private PKI made with mpkictl\n");
  if (start_mock() != 0) {
    printf("not ok - mssp-mock --operator ooredoo starts\n");
    return 1;
  }
  printf("ok - mssp-mock --operator ooredoo starts on port %d\n", mock_port);
  T_RUN_CHILD(t_approve_verified);
  T_RUN_CHILD(t_behaviours);
  T_RUN_CHILD(t_mock_hung);
  T_RUN_CHILD(t_mock_killed); /* last: it kills the mock */
  return T_DONE();
}
