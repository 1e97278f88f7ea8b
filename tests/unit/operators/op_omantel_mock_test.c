/* op_omantel_mock_test.c — the Omantel adapter against the real mock MSSP.
 *
 * Makes a private PKI with the real $BUILD/mpkictl (its own SoftHSM token
 * directory, CA, registry: nothing of var/ is touched), starts the real
 * $BUILD/mssp-mock on a free loopback port as a child, and drives the
 * adapter (operators/op_omantel.c through op_adapter.h) on a libevent loop
 * in this process: each subscriber behaviour end to end — approve (the
 * PKCS#7 verified with the gateway's verifier, gw_verify.h), refuse, never
 * answers, a revoked certificate (the adapter says signed; the verifier
 * says revoked), the handset-wait subscriber timing out, PIN blocked, phone
 * absent, SIM error, not a subscriber, unknown number, a busy phone (406),
 * display text that does not fit (107), a wrong AP password; cancel while
 * polling; a receipt; the mock stopped (SIGSTOP: slow, then recovering) and
 * killed (operator_unavailable, the breaker opens).
 *
 * Prints "# skip" and passes when $BUILD/mssp-mock or $BUILD/mpkictl are
 * not built. Run from the repository root; every wait is bounded, and the
 * mock is killed at exit. */
#include "op_adapter.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_verify.h"
#include "harness.h"
#include "mss_soap.h"
#include "op_adapter_int.h"
#include "op_breaker.h"
#include "op_fakesrv.h" /* fs_now_ms */
#include "support/t_child.h"
#include "support/t_demo.h"

#define AP_ID "http://mpkigw.test/ap"
#define AP_PWD "gw-test-secret-4711"

static char dir[PATH_MAX];   /* the private var/ */
static char build[PATH_MAX]; /* $BUILD, absolute */
static char gwconf[PATH_MAX + 32];
static int mock_port;
static pid_t mock_pid;

/* ---- set-up
 * ------------------------------------------------------------------------- */

static const char SIMS[] =
    "msisdn,civil_id,name,operator,pin,puk,behaviour\n"
    "+96899000001,10000001,Salim Al-Harthy,omantel,,,approve:200\n"
    "+96899000002,10000002,Aisha Al-Balushi,omantel,,,refuse:100\n"
    "+96899000003,10000003,Khalid Al-Rawahi,omantel,,,no_answer\n"
    "+96899000004,10000004,Maryam Al-Lawati,omantel,,,approve:100\n"
    "+96899000006,10000006,Blocked Pin,omantel,,,pin_blocked\n"
    "+96899000008,10000008,Absent Phone,omantel,,,absent:30\n"
    "+96899000010,10000010,Said Al-Busaidi,omantel,,,handset\n"
    "+96899000011,10000011,Sim Error,omantel,,,sim_error:30\n"
    "+96899000012,10000012,No Pki,omantel,,,not_subscriber\n"
    "+96899000013,10000013,Slow Approver,omantel,,,approve:1500\n"
    "+96899000014,10000014,Wrong Pin,omantel,,,wrong_pin:20\n";

/* The private PKI: the SIMs above, +96899000004 revoked, the CRL out. */
static int make_pki(void) {
  snprintf(gwconf, sizeof(gwconf), "%s/mpkigw.conf", dir);
  if (t_demo_pki(dir, build, SIMS, AP_ID, AP_PWD) != 0 ||
      t_mpkictl(dir, build, 60,
                "cert revoke --msisdn +96899000004 --reason keyCompromise") !=
          0 ||
      t_mpkictl(dir, build, 60, "crl publish") != 0) {
    t_sh("tail -n 5 '%s/ctl.log' | sed 's/^/# /'", dir);
    return -1;
  }
  return 0;
}

/* Starts the mock (control endpoint on) and waits for /healthz. */
static int start_mock(void) {
  return t_mock_start(dir, build,
                      "transactions: { default_timeout_s = 60; "
                      "keep_done_s = 60; };\n"
                      "control: { enabled = true; };\n"
                      "server: { shutdown_grace_ms = 500; };",
                      &mock_port, &mock_pid);
}

static void stop_mock(void) {
  t_mock_stop(&mock_pid);
}

/* ---- the gateway side
 * ------------------------------------------------------------- */

typedef struct env {
  struct event_base *base;
  gw_config *cfg;
  op_registry *reg;
  op_http *http;
  op_adapter *om;
} env;

typedef struct seen {
  int accepted, final;
  op_result fin;
  unsigned char *sig;
  size_t sig_len;
  op_sig_format fmt;
  op_txn *t;
  double t0, t_fin;
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
  s->t_fin = fs_now_ms();
  s->fin.signature = NULL;
  s->fin.certificate = NULL;
  s->fin.msisdn = NULL;
  s->fin.operator_name = NULL;
  s->fmt = r->sig_format;
  if (r->signature_len) {
    s->sig = malloc(r->signature_len);
    if (s->sig) {
      memcpy(s->sig, r->signature, r->signature_len);
      s->sig_len = r->signature_len;
    }
  }
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

static int env_up(env *e, void (*adjust)(gw_config *)) {
  char err[512], url[128];

  memset(e, 0, sizeof(*e));
  e->base = event_base_new();
  if (gw_config_load(&e->cfg, gwconf, err, sizeof(err)) != GW_OK) {
    printf("# %s\n", err);
    return -1;
  }
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/soap/services", mock_port);
  set_str(&e->cfg->op_omantel.url, url);
  e->cfg->op_omantel.poll_first_ms = 100;
  e->cfg->op_omantel.poll_interval_ms = 100;
  e->cfg->op_omantel.timeout_s = 2;
  e->cfg->op_omantel.http_timeout_ms = 1000;
  e->cfg->op_omantel.connect_timeout_ms = 500;
  e->cfg->op_omantel.status_retries = 2;
  e->cfg->op_omantel.breaker_failures = 3;
  e->cfg->op_omantel.breaker_cooldown_ms = 1000;
  if (adjust) {
    adjust(e->cfg);
  }
  if (op_registry_new(&e->reg, e->cfg, err, sizeof(err)) != GW_OK) {
    printf("# registry: %s\n", err);
    return -1;
  }
  if (op_registry_http_new(e->reg, e->base, &e->http) != GW_OK) {
    return -1;
  }
  e->om = op_registry_get(e->reg, "omantel");
  return 0;
}

static void env_down(env *e) {
  op_http_del(e->http);
  op_registry_del(e->reg);
  gw_config_del(e->cfg);
  if (e->base) {
    event_base_free(e->base);
  }
}

static unsigned char digest[32];

/* Routes |msisdn| (any form) and signs through its adapter; runs to FINAL
 * or |ms|. */
static int sign_text(env *e, const char *msisdn, const char *text, seen *s,
                     int ms) {
  op_route_result res;
  op_adapter *a;
  op_sign_req rq;

  memset(s, 0, sizeof(*s));
  for (int i = 0; i < 32; i++) {
    digest[i] = (unsigned char)(rand() & 0xff);
  }
  if (op_registry_route(e->reg, msisdn, &res, &a) != OP_ROUTE_OK) {
    printf("#   %s does not route\n", msisdn);
    return 0;
  }
  rq.msisdn = res.msisdn;
  rq.digest = digest;
  rq.display_text = text;
  rq.timeout_s = 0;
  s->t0 = fs_now_ms();
  if (op_submit(a, e->http, &rq, on_result, s, &s->t) != GW_OK) {
    return 0;
  }
  return run_until(e->base, &s->final, 1, ms);
}

static int sign(env *e, const char *msisdn, seen *s, int ms) {
  return sign_text(e, msisdn, "Sign in to Demo RP \xe2\x80\x94 code 1462", s,
                   ms);
}

static gw_verify *verifier(void) {
  char roots[PATH_MAX + 32], inter[PATH_MAX + 32], crl[PATH_MAX + 32], err[256];
  gw_verify_config vc;
  gw_verify *v = NULL;

  snprintf(roots, sizeof(roots), "%s/pki/root-ca.pem", dir);
  snprintf(inter, sizeof(inter), "%s/pki/issuing-ca.pem", dir);
  snprintf(crl, sizeof(crl), "%s/pki/crl.pem", dir);
  gw_verify_config_init(&vc);
  vc.roots_file = roots;
  vc.intermediates_file = inter;
  vc.crl_file = crl;
  vc.cache_size = 0;
  if (gw_verify_new(&v, &vc, err, sizeof(err)) != GW_OK) {
    printf("# verifier: %s\n", err);
    return NULL;
  }
  return v;
}

static gw_verify_result verify(gw_verify *v, const seen *s, const char *msisdn,
                               gw_verify_status *st) {
  gw_verify_req rq;

  memset(&rq, 0, sizeof(rq));
  rq.sig = s->sig;
  rq.sig_len = s->sig_len;
  rq.data = digest;
  rq.data_len = 32;
  rq.data_kind = GW_VERIFY_DIGEST;
  rq.expect_msisdn = msisdn;
  return gw_verify_cms(v, &rq, st);
}

static void free_seen(seen *s) {
  free(s->sig);
  s->sig = NULL;
}

/* ---- tests
 * ------------------------------------------------------------------------- */

static void t_approve_verified(void) {
  env e;
  seen s;
  gw_verify *v = verifier();
  gw_verify_status st;

  if (!v || env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    gw_verify_del(v);
    return;
  }
  /* any accepted form of the number routes to Omantel */
  T_ASSERT(sign(&e, "9900-0001", &s, 8000));
  T_EQ_STR(op_outcome_name(s.fin.outcome), "signed");
  T_EQ_INT(s.fin.etsi_status, 500);
  T_EQ_INT(s.fmt, OP_SIG_PKCS7);
  T_ASSERT(s.fin.mssp_trans_id[0] != '\0');
  T_ASSERT(s.t_fin - s.t0 >= 200);
  T_EQ_INT(verify(v, &s, "+96899000001", &st), GW_VERIFY_OK);
  T_EQ_STR(st.identity.msisdn, "+96899000001");
  T_EQ_STR(st.identity.civil_id, "10000001");
  /* a signature over other data does not verify */
  digest[0] ^= 1;
  T_EQ_INT(verify(v, &s, "+96899000001", &st), GW_VERIFY_BAD_SIGNATURE);
  digest[0] ^= 1;
  /* it is not someone else's */
  T_EQ_INT(verify(v, &s, "+96899000002", &st), GW_VERIFY_IDENTITY_MISMATCH);
  free_seen(&s);
  /* Arabic display text that fits (UCS-2, <= 70) */
  T_ASSERT(sign_text(&e, "+96899000001",
                     "\xd8\xaa\xd8\xb3\xd8\xac\xd9\x8a\xd9\x84 "
                     "\xd8\xa7\xd9\x84\xd8\xaf\xd8\xae\xd9\x88\xd9\x84: 1462",
                     &s, 8000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  T_EQ_INT(verify(v, &s, "+96899000001", &st), GW_VERIFY_OK);
  free_seen(&s);
  env_down(&e);
  gw_verify_del(v);
}

static void t_revoked_still_signs(void) {
  env e;
  seen s;
  gw_verify *v = verifier();
  gw_verify_status st;

  if (!v || env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    gw_verify_del(v);
    return;
  }
  T_ASSERT(sign(&e, "+96899000004", &s, 8000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED); /* the operator does not know */
  T_EQ_INT(verify(v, &s, "+96899000004", &st), GW_VERIFY_REVOKED);
  free_seen(&s);
  env_down(&e);
  gw_verify_del(v);
}

typedef struct behaviour_case {
  const char *msisdn;
  op_outcome want;
  int etsi;
  int max_ms;
} behaviour_case;

static void t_behaviours(void) {
  static const behaviour_case cases[] = {
      {"+96899000002", OP_USER_CANCELLED, 401, 5000},
      {"+96899000003", OP_TIMED_OUT, 208, 8000}, /* no_answer: TimeOut 2 s */
      {"+96899000010", OP_TIMED_OUT, 208, 8000}, /* handset nobody answers */
      {"+96899000006", OP_PIN_BLOCKED, 402, 5000},
      {"+96899000014", OP_PIN_BLOCKED, 402,
       8000}, /* wrong PINs until blocked */
      {"+96899000008", OP_PHONE_ABSENT, 209, 5000},
      {"+96899000011", OP_SIM_ERROR, 900, 5000},
      {"+96899000012", OP_NOT_SUBSCRIBER, 404, 5000},
      {"+96899000077", OP_NOT_SUBSCRIBER, 105, 5000}, /* not provisioned */
  };
  env e;
  seen s;

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    return;
  }
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const behaviour_case *c = &cases[i];
    if (!sign(&e, c->msisdn, &s, c->max_ms)) {
      printf("#   %s: no final answer\n", c->msisdn);
      t_case_failed = 1;
      if (s.t) {
        op_cancel(s.t);
      }
      continue;
    }
    if (s.fin.outcome != c->want || s.fin.etsi_status != c->etsi) {
      printf("#   %s: %s etsi %d (%s); want %s %d\n", c->msisdn,
             op_outcome_name(s.fin.outcome), s.fin.etsi_status, s.fin.detail,
             op_outcome_name(c->want), c->etsi);
      t_case_failed = 1;
    }
    free_seen(&s);
  }
  env_down(&e);
}

/* What the MSSP refuses: a phone already busy (406), display text that
 * does not fit the SIM (107), a wrong AP password (104). */
static void wrong_pwd(gw_config *c) {
  set_str(&c->op_omantel.ap_pwd, "nope");
}

static void t_refusals(void) {
  env e;
  seen s, busy;
  op_sign_req rq;
  char arabic[400] = "";

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    return;
  }
  /* the slow approver is busy with a first request */
  memset(&busy, 0, sizeof(busy));
  rq = (op_sign_req){"+96899000013", digest, "first", 0};
  T_EQ_INT(op_submit(e.om, e.http, &rq, on_result, &busy, &busy.t), GW_OK);
  T_ASSERT(run_until(e.base, &busy.accepted, 1, 3000));
  T_ASSERT(sign(&e, "+96899000013", &s, 5000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_ERROR);
  T_EQ_INT(s.fin.etsi_status, 406);
  T_ASSERT(run_until(e.base, &busy.final, 1, 5000));
  T_EQ_INT(busy.fin.outcome, OP_SIGNED);
  free_seen(&busy);
  /* 71 Arabic letters: over the 70 UCS-2 units of one SIM dialogue */
  for (int i = 0; i < 71; i++) {
    strcat(arabic, "\xd8\xb3");
  }
  T_ASSERT(sign_text(&e, "+96899000001", arabic, &s, 5000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_ERROR);
  T_EQ_INT(s.fin.etsi_status, 107);
  env_down(&e);

  if (env_up(&e, wrong_pwd) != 0) {
    T_ASSERT(0);
    return;
  }
  T_ASSERT(sign(&e, "+96899000001", &s, 5000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_ERROR);
  T_EQ_INT(s.fin.etsi_status, 104);
  env_down(&e);
}

typedef struct rseen {
  int n, ok, code;
} rseen;

static void on_receipt(void *arg, int ok, int code, const char *detail) {
  rseen *r = arg;
  (void)detail;
  r->n++;
  r->ok = ok;
  r->code = code;
}

static void t_receipt(void) {
  env e;
  seen s;
  rseen r = {0};
  op_receipt_req rq;

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    return;
  }
  T_ASSERT(sign(&e, "+96899000001", &s, 8000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  rq = (op_receipt_req){"+96899000001", s.fin.mssp_trans_id,
                        "Signed in to Demo RP"};
  T_EQ_INT(op_receipt(e.om, e.http, &rq, on_receipt, &r), GW_OK);
  T_ASSERT(run_until(e.base, &r.n, 1, 3000));
  T_EQ_INT(r.ok, 1);
  T_EQ_INT(r.code, 100);
  /* a second receipt for the same transaction is refused */
  T_EQ_INT(op_receipt(e.om, e.http, &rq, on_receipt, &r), GW_OK);
  T_ASSERT(run_until(e.base, &r.n, 2, 3000));
  T_EQ_INT(r.ok, 0);
  T_EQ_INT(r.code, 101);
  free_seen(&s);
  env_down(&e);
}

static void t_cancel_while_polling(void) {
  env e;
  seen s;
  op_sign_req rq = {"+96899000013", digest, "cancel me", 0};
  uint64_t polls;
  int never = 0;

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    return;
  }
  memset(&s, 0, sizeof(s));
  T_EQ_INT(op_submit(e.om, e.http, &rq, on_result, &s, &s.t), GW_OK);
  T_ASSERT(run_until(e.base, &s.accepted, 1, 3000));
  run_until(e.base, &never, 1, 450);
  polls = atomic_load(&e.om->m.requests[OP_REQ_STATUS]);
  T_ASSERT(polls >= 2);
  op_cancel(s.t);
  run_until(e.base, &never, 1, 2000);
  T_EQ_INT(s.final, 0);
  T_EQ_INT(atomic_load(&e.om->m.requests[OP_REQ_STATUS]), polls);
  T_EQ_INT(atomic_load(&e.om->m.inflight), 0);
  env_down(&e);
}

/* The mock stopped for a while (SIGSTOP): the status queries time out and
 * are asked again; it comes back and the transaction still ends signed. */
static void slow_tune(gw_config *c) {
  c->op_omantel.http_timeout_ms = 400;
  c->op_omantel.poll_interval_ms = 200;
  c->op_omantel.status_retries = 5;
  c->op_omantel.breaker_failures = 0;
  c->op_omantel.timeout_s = 10;
}

static void t_mock_slow(void) {
  env e;
  seen s;
  op_sign_req rq = {"+96899000001", digest, "slow", 0};

  if (env_up(&e, slow_tune) != 0) {
    T_ASSERT(0);
    return;
  }
  memset(&s, 0, sizeof(s));
  T_EQ_INT(op_submit(e.om, e.http, &rq, on_result, &s, &s.t), GW_OK);
  T_ASSERT(run_until(e.base, &s.accepted, 1, 3000));
  kill(mock_pid, SIGSTOP);
  {
    int never = 0;
    run_until(e.base, &never, 1, 900); /* two queries time out */
  }
  kill(mock_pid, SIGCONT);
  T_ASSERT(run_until(e.base, &s.final, 1, 8000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  T_ASSERT(atomic_load(&e.om->m.http_failures[OP_HTTP_TIMEOUT]) >= 1);
  free_seen(&s);
  env_down(&e);
}

/* Last: the mock killed. Every request is operator_unavailable, the
 * breaker opens and then answers at once. */
static void t_mock_killed(void) {
  env e;
  seen s;
  op_health h;
  double t0;

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    return;
  }
  /* killed, not stopped: from this child process (the parent reaps it) */
  kill(mock_pid, SIGKILL);
  usleep(200000);
  T_ASSERT(sign(&e, "+96899000001", &s, 5000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_UNAVAILABLE);
  T_ASSERT(sign(&e, "+96899000001", &s, 5000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_UNAVAILABLE);
  op_health_get(e.om, &h);
  T_EQ_INT(h.breaker_state, OP_BREAKER_OPEN);
  T_EQ_INT(h.available, 0);
  t0 = fs_now_ms();
  T_ASSERT(sign(&e, "+96899000001", &s, 5000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_UNAVAILABLE);
  T_ASSERT(strstr(s.fin.detail, "circuit breaker open") != NULL);
  T_ASSERT(fs_now_ms() - t0 < 100);
  env_down(&e);
}

static pid_t parent;

/* At exit of the test program, not of the test children (t_child.h forks
 * one per test). */
static void cleanup(void) {
  if (getpid() != parent) {
    return;
  }
  stop_mock();
  if (dir[0] && !getenv("KEEP_TMP")) {
    t_sh("rm -rf '%s'", dir);
  }
}

int main(void) {
  const char *b = getenv("BUILD");
  char tmpl[] = "/tmp/op_omantel_mock.XXXXXX", p1[PATH_MAX + 32],
       p2[PATH_MAX + 32];
  int rc;

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
  gw_log_open(NULL, GW_LOG_ERROR);
  srand((unsigned)getpid());
  if (make_pki() != 0) {
    printf("not ok - private PKI made with mpkictl\n");
    return 1;
  }
  printf("ok - private PKI made with mpkictl\n");
  if (start_mock() != 0) {
    printf("not ok - mssp-mock starts\n");
    return 1;
  }
  printf("ok - mssp-mock starts on port %d\n", mock_port);
  T_RUN_CHILD(t_approve_verified);
  T_RUN_CHILD(t_revoked_still_signs);
  T_RUN_CHILD(t_behaviours);
  T_RUN_CHILD(t_refusals);
  T_RUN_CHILD(t_receipt);
  T_RUN_CHILD(t_cancel_while_polling);
  T_RUN_CHILD(t_mock_slow);
  T_RUN_CHILD(t_mock_killed); /* last: it stops the mock */
  rc = T_DONE();
  return rc;
}
