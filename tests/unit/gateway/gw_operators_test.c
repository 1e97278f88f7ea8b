/* gw_operators_test.c — POST /operators/{name}/notify (gateway/
 * gw_operators.c) on an in-process gateway server, with the real Ooredoo
 * adapter behind it talking to a scripted JSON MSSP: a notification signed
 * right ends the transaction waiting on another loop (this thread's), its
 * repeat is acknowledged again, and everything else gets a JSON 4xx —
 * unknown operator, an operator without notifications, no or a wrong
 * signature, the wrong content type, an oversized body, GET. The log line
 * names the result and never holds the signature.
 *
 * Run from the repository root. Each test runs in a child process. */
#include "gw_operators.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw_app.h"
#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "harness.h"
#include "mss_json.h"
#include "op_adapter.h"
#include "op_etsi.h"
#include "../operators/op_fakesrv.h"
#include "support/t_child.h"
#include "support/t_curl.h"
#include "support/t_server.h"

#define SECRET "the-notification-secret-of-the-test-gateway"

/* The scripted MSSP: 100 REQUEST_OK "M<n>" to every signature request,
 * 504 to status queries; records the last AP_TransID. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char last_tid[64];
static int nsig;

static void h_mssp(void *arg, const fs_request *q, fs_response *r) {
  mss_signature_req *rq = calloc(1, sizeof(*rq));
  mss_signature_resp *resp = calloc(1, sizeof(*resp));
  mss_fault f;
  gw_buf b;

  (void)arg;
  gw_buf_init(&b, 1 << 16);
  pthread_mutex_lock(&mu);
  if (mss_json_parse_signature_req(q->body, q->body_len, rq, &f) == GW_OK) {
    snprintf(last_tid, sizeof(last_tid), "%s", rq->ap_info.ap_trans_id);
    resp->major_version = 1;
    resp->minor_version = 1;
    resp->ap_info = rq->ap_info;
    resp->ap_info.ap_pwd[0] = '\0';
    snprintf(resp->mssp_trans_id, sizeof(resp->mssp_trans_id), "M%d", ++nsig);
    resp->status.code = 100;
    mss_json_build_signature_resp(resp, &b);
    r->status = 200;
  } else {
    mss_fault_set(&f, 504, NULL); /* a status query: never over */
    mss_json_build_fault(&f, &b);
    r->status = 500;
  }
  pthread_mutex_unlock(&mu);
  r->content_type = MSS_JSON_CONTENT_TYPE;
  r->owned = b.data;
  r->body = b.data;
  r->body_len = b.len;
  free(rq);
  free(resp);
}

typedef struct env {
  fs_server mssp;
  gw_config *cfg;
  gw_app app;
  ts_server srv;
  struct event_base *base;
  op_http *http;
  char logpath[64];
} env;

static void set_str(char **p, const char *v) {
  free(*p);
  *p = strdup(v);
}

static int env_up(env *e) {
  char err[512], url[128];

  memset(e, 0, sizeof(*e));
  snprintf(e->logpath, sizeof(e->logpath), "/tmp/gw-op-test.XXXXXX");
  close(mkstemp(e->logpath));
  gw_log_open(e->logpath, GW_LOG_INFO);
  if (fs_start(&e->mssp, h_mssp, NULL) != 0 ||
      gw_config_new_defaults(&e->cfg) != GW_OK) {
    return -1;
  }
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/rest/service", e->mssp.port);
  set_str(&e->cfg->op_numbering_plan, "configs/numbering-plan.conf");
  set_str(&e->cfg->op_portability, "configs/portability.csv");
  set_str(&e->cfg->op_ooredoo.url, url);
  set_str(&e->cfg->op_ooredoo.ap_id, "http://gw.test/ap");
  set_str(&e->cfg->op_ooredoo.ap_pwd, "ap-password");
  set_str(&e->cfg->op_ooredoo.notify_url, "https://gw.test/notify");
  set_str(&e->cfg->op_ooredoo.notify_secret, SECRET);
  e->cfg->op_ooredoo.notify_overdue_ms = 60000;
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
  return ts_start_app(&e->srv, 2, NULL, gw_operators_register, &e->app);
}

static void env_down(env *e) {
  ts_stop(&e->srv);
  op_http_del(e->http);
  op_registry_del(e->app.operators);
  gw_config_del(e->cfg);
  if (e->base) {
    event_base_free(e->base);
  }
  fs_stop(&e->mssp);
  gw_log_close();
  unlink(e->logpath);
}

/* POSTs |body| to |path| with |ctype| and, when |key| is set, an
 * X-MSS-Signature made with it. */
static void post(t_resp *r, env *e, const char *path, const char *ctype,
                 const char *body, size_t n, const char *key) {
  char sig[200], h1[240], h2[240];
  t_reqopt o;

  memset(&o, 0, sizeof(o));
  o.method = "POST";
  o.body = body;
  o.blen = (long)n;
  snprintf(h1, sizeof(h1), "Content-Type: %s", ctype);
  o.headers[0] = h1;
  if (key) {
    op_etsi_sign_notification(body, n, (const unsigned char *)key, strlen(key),
                              (long long)time(NULL), sig, sizeof(sig));
    snprintf(h2, sizeof(h2), "X-MSS-Signature: %s", sig);
    o.headers[1] = h2;
  }
  t_do_req(r, &e->srv, CURL_HTTP_VERSION_2TLS, path, &o);
}

static void note(gw_buf *b, const char *tid, const char *mid) {
  mss_status_resp *m = calloc(1, sizeof(*m));
  static const unsigned char sig[64] = {7}, cert[] = {0x30, 0x03, 2, 1, 0};

  m->major_version = 1;
  m->minor_version = 2;
  snprintf(m->ap_info.ap_id, sizeof(m->ap_info.ap_id), "http://gw.test/ap");
  snprintf(m->ap_info.ap_trans_id, sizeof(m->ap_info.ap_trans_id), "%s", tid);
  mss_instant_format(time(NULL), m->ap_info.instant,
                     sizeof(m->ap_info.instant));
  snprintf(m->mssp_trans_id, sizeof(m->mssp_trans_id), "%s", mid);
  snprintf(m->msisdn, sizeof(m->msisdn), "+96895000001");
  m->status.code = 500;
  m->signature.kind = MSS_SIG_PKCS1;
  memcpy(m->signature.sig, sig, sizeof(sig));
  m->signature.len = sizeof(sig);
  memcpy(m->signature.cert, cert, sizeof(cert));
  m->signature.cert_len = sizeof(cert);
  gw_buf_init(b, 1 << 20);
  mss_json_build_status_resp(m, b);
  free(m);
}

/* ---- refusals
 * ---------------------------------------------------------------- */

static void t_refusals(void) {
  static char big[300 * 1024];
  env e;
  t_resp r;
  gw_buf b;

  T_ASSERT(env_up(&e) == 0);
  note(&b, "Tnone", "M1");
  post(&r, &e, "/operators/vodafone/notify", "application/json", b.data, b.len,
       SECRET);
  T_ASSERT(t_resp_is_error(&r, 404, "unknown_operator"));
  t_resp_free(&r);
  post(&r, &e, "/operators/omantel/notify", "application/json", b.data, b.len,
       SECRET);
  T_ASSERT(t_resp_is_error(&r, 404, "not_enabled"));
  t_resp_free(&r);
  post(&r, &e, "/operators/ooredoo/notify", "application/json", b.data, b.len,
       NULL);
  T_ASSERT(t_resp_is_error(&r, 401, "bad_signature"));
  t_resp_free(&r);
  post(&r, &e, "/operators/ooredoo/notify", "application/json", b.data, b.len,
       "not-the-secret-not-the-secret-not-the-secret");
  T_ASSERT(t_resp_is_error(&r, 401, "bad_signature"));
  T_ASSERT(strstr(r.body, "bad signature") != NULL);
  t_resp_free(&r);
  post(&r, &e, "/operators/ooredoo/notify", "text/plain", b.data, b.len,
       SECRET);
  T_ASSERT(t_resp_is_error(&r, 415, "unsupported_media_type"));
  t_resp_free(&r);
  post(&r, &e, "/operators/ooredoo/notify", "application/json", b.data, b.len,
       SECRET);
  T_ASSERT(t_resp_is_error(&r, 404, "unknown_transaction"));
  t_resp_free(&r);
  memset(big, ' ', sizeof(big));
  post(&r, &e, "/operators/ooredoo/notify", "application/json", big,
       sizeof(big), SECRET);
  T_EQ_INT((int)r.status, 413);
  t_resp_free(&r);
  t_do_req(&r, &e.srv, CURL_HTTP_VERSION_2TLS, "/operators/ooredoo/notify",
           NULL);
  T_EQ_INT((int)r.status, 405);
  t_resp_free(&r);
  gw_buf_free(&b);
  env_down(&e);
}

/* ---- a notification ends a transaction on another thread's loop
 * ------------------------------------------------------------- */

typedef struct poster {
  env *e;
  gw_buf body;
  t_resp r1, r2;
} poster;

static void *post_twice(void *p) {
  poster *ps = p;

  post(&ps->r1, ps->e, "/operators/ooredoo/notify",
       "application/json; charset=utf-8", ps->body.data, ps->body.len, SECRET);
  post(&ps->r2, ps->e, "/operators/ooredoo/notify", "application/json",
       ps->body.data, ps->body.len, SECRET);
  return NULL;
}

typedef struct seen {
  int accepted, final;
  op_outcome outcome;
  int sig_format;
} seen;

static void on_result(void *arg, op_txn *t, const op_result *r) {
  seen *s = arg;

  if (r->phase == OP_PHASE_ACCEPTED) {
    s->accepted++;
    op_follow(t, on_result, s);
    return;
  }
  s->final++;
  s->outcome = r->outcome;
  s->sig_format = r->sig_format;
}

static void on_tick(evutil_socket_t fd, short w, void *arg) {
  (void)fd;
  (void)w;
  (void)arg;
}

static void t_applied_once(void) {
  static const unsigned char digest[32] = {1, 2, 3};
  op_sign_req rq = {"+96895000001", digest, "Sign in", 0};
  op_adapter *oo;
  struct event *tick;
  struct timeval tv = {0, 20000};
  env e;
  seen s;
  op_txn *t = NULL;
  poster ps;
  pthread_t th;
  mss_receipt_req *ack = calloc(1, sizeof(*ack));
  mss_fault f;
  char *log;
  FILE *fp;
  long n;

  T_ASSERT(env_up(&e) == 0);
  oo = op_registry_get(e.app.operators, "ooredoo");
  memset(&s, 0, sizeof(s));
  T_EQ_INT(op_submit(oo, e.http, &rq, on_result, &s, &t), GW_OK);
  tick = event_new(e.base, -1, EV_PERSIST, on_tick, NULL);
  event_add(tick, &tv);
  for (int i = 0; i < 200 && !s.accepted; i++) {
    event_base_loop(e.base, EVLOOP_ONCE);
  }
  T_EQ_INT(s.accepted, 1);
  memset(&ps, 0, sizeof(ps));
  ps.e = &e;
  pthread_mutex_lock(&mu);
  note(&ps.body, last_tid, "M1");
  pthread_mutex_unlock(&mu);
  T_ASSERT(pthread_create(&th, NULL, post_twice, &ps) == 0);
  for (int i = 0; i < 250 && !s.final; i++) {
    event_base_loop(e.base, EVLOOP_ONCE);
  }
  pthread_join(th, NULL);
  event_free(tick);
  T_EQ_INT(s.final, 1);
  T_EQ_INT(s.outcome, OP_SIGNED);
  T_EQ_INT(s.sig_format, OP_SIG_PKCS1);
  T_EQ_INT((int)ps.r1.status, 200);
  T_EQ_INT((int)ps.r2.status, 200); /* the repeat: acknowledged again */
  T_ASSERT(
      strncmp(t_resp_hdr(&ps.r1, "content-type"), "application/json", 16) == 0);
  T_EQ_INT(mss_json_parse_receipt_req(ps.r1.body, ps.r1.blen, ack, &f), GW_OK);
  T_EQ_STR(ack->mssp_trans_id, "M1");
  T_ASSERT(strstr(ps.r1.body, "ap-password") == NULL);
  t_resp_free(&ps.r1);
  t_resp_free(&ps.r2);
  gw_buf_free(&ps.body);

  /* the log: one line per notification with its result, no signature */

  fp = fopen(e.logpath, "r");
  T_ASSERT(fp != NULL);
  log = calloc(1, 1 << 20);
  n = (long)fread(log, 1, (1 << 20) - 1, fp);
  fclose(fp);
  T_ASSERT(n > 0);
  T_ASSERT(strstr(log, "result=applied") != NULL);
  T_ASSERT(strstr(log, "result=repeated") != NULL);
  T_ASSERT(strstr(log, "v1=") == NULL);
  T_ASSERT(strstr(log, SECRET) == NULL);
  free(log);
  free(ack);
  env_down(&e);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* a peer that closes early */
  curl_global_init(CURL_GLOBAL_DEFAULT);
  T_RUN_CHILD(t_refusals);
  T_RUN_CHILD(t_applied_once);
  curl_global_cleanup();
  return T_DONE();
}
