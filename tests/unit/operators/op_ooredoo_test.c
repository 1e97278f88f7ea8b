/* op_ooredoo_test.c — the Ooredoo adapter (operators/op_ooredoo.c on the
 * shared ETSI client operators/op_etsi.c) against a scripted JSON MSSP
 * (op_fakesrv.h answering with the mss_json.h codec), and its
 * server-to-server notifications handed to op_notify() as the gateway's
 * POST /operators/ooredoo/notify would: applied once, repeats acknowledged
 * without effect, refused when the HMAC or the timestamp is wrong, when the
 * transaction is unknown or ended, when the body is not a final
 * MSS_StatusResp; a notification that overtakes the answer to the request;
 * one sent from another thread; polling when none comes.
 *
 * Run from the repository root. Each test runs in a child process. */
#include "op_adapter.h"

#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "harness.h"
#include "mss.h"
#include "mss_json.h"
#include "op_adapter_int.h"
#include "op_etsi.h"
#include "op_fakesrv.h"
#include "support/t_child.h"

#define AP_ID "http://gw.test/ap"
#define AP_PWD "p4ss-w0rd-not-for-logs"
#define SECRET "0123456789abcdef0123456789abcdef-notify"
#define NOTIFY_URL "https://gw.test/operators/ooredoo/notify"

/* ---- the scripted MSSP
 * ---------------------------------------------------------- */

typedef struct script {
  int sig_fault;    /* 0: 100 REQUEST_OK; else this fault */
  int sig_delay_ms; /* the answer to MSS_SignatureReq comes this late */
  int n504;         /* status answers 504 this often, then final */
  int final_code;   /* 500 or a fault */
  int nsig, nstatus, nreceipt;
  double t_status0;      /* when the first status query came */
  mss_signature_req sig; /* the last signature request */
  char content_type[128];
} script;

static script S;
static pthread_mutex_t S_mu = PTHREAD_MUTEX_INITIALIZER;

static const unsigned char RAWSIG[64] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const unsigned char CERT[] = {0x30, 0x82, 0x01, 0x0a, 0x02, 0x01};

static void answer(fs_response *r, int status, gw_buf *b) {
  r->status = status;
  r->content_type = MSS_JSON_CONTENT_TYPE;
  r->owned = b->data;
  r->body = b->data;
  r->body_len = b->len;
}

static void answer_fault(fs_response *r, int code) {
  mss_fault f;
  gw_buf b;

  memset(&f, 0, sizeof(f));
  mss_fault_set(&f, code, "scripted");
  gw_buf_init(&b, 1 << 16);
  mss_json_build_fault(&f, &b);
  answer(r, 500, &b);
}

static void fill_infos(mss_ap_info *ai, mss_mssp_info *mi,
                       const mss_ap_info *req) {
  *ai = *req;
  ai->ap_pwd[0] = '\0';
  snprintf(mi->id, sizeof(mi->id), "http://mssp.fake/ooredoo");
}

static void h_mssp(void *arg, const fs_request *q, fs_response *r) {
  mss_msg type = MSS_MSG_NONE;
  mss_fault f;
  gw_buf b;

  (void)arg;
  pthread_mutex_lock(&S_mu);
  mss_json_peek(q->body, q->body_len, &type);
  snprintf(S.content_type, sizeof(S.content_type), "%s", q->content_type);
  if (type == MSS_MSG_SIGNATURE_REQ) {
    mss_signature_resp resp;
    S.nsig++;
    if (mss_json_parse_signature_req(q->body, q->body_len, &S.sig, &f) !=
        GW_OK) {
      answer_fault(r, 101);
      goto done;
    }
    r->delay_ms = S.sig_delay_ms;
    if (S.sig_fault) {
      answer_fault(r, S.sig_fault);
      goto done;
    }
    memset(&resp, 0, sizeof(resp));
    resp.major_version = 1;
    resp.minor_version = 1;
    fill_infos(&resp.ap_info, &resp.mssp_info, &S.sig.ap_info);
    snprintf(resp.mssp_trans_id, sizeof(resp.mssp_trans_id), "M%d", S.nsig);
    snprintf(resp.msisdn, sizeof(resp.msisdn), "%s", S.sig.msisdn);
    resp.status.code = 100;
    gw_buf_init(&b, 1 << 20);
    mss_json_build_signature_resp(&resp, &b);
    answer(r, 200, &b);
  } else if (type == MSS_MSG_STATUS_REQ) {
    mss_status_req sq;
    mss_status_resp resp;
    if (S.nstatus++ == 0) {
      S.t_status0 = fs_now_ms();
    }
    if (mss_json_parse_status_req(q->body, q->body_len, &sq, &f) != GW_OK) {
      answer_fault(r, 101);
      goto done;
    }
    if (S.nstatus > S.n504 && S.final_code != 500) {
      answer_fault(r, S.final_code);
      goto done;
    }
    memset(&resp, 0, sizeof(resp));
    resp.major_version = 1;
    resp.minor_version = 1;
    fill_infos(&resp.ap_info, &resp.mssp_info, &sq.ap_info);
    snprintf(resp.mssp_trans_id, sizeof(resp.mssp_trans_id), "%s",
             sq.mssp_trans_id);
    snprintf(resp.msisdn, sizeof(resp.msisdn), "%s", sq.msisdn);
    resp.status.code = S.nstatus > S.n504 ? 500 : 504;
    if (resp.status.code == 500) {
      resp.signature.kind = MSS_SIG_PKCS1;
      memcpy(resp.signature.sig, RAWSIG, sizeof(RAWSIG));
      resp.signature.len = sizeof(RAWSIG);
      memcpy(resp.signature.cert, CERT, sizeof(CERT));
      resp.signature.cert_len = sizeof(CERT);
    }
    gw_buf_init(&b, 1 << 20);
    mss_json_build_status_resp(&resp, &b);
    answer(r, 200, &b);
  } else if (type == MSS_MSG_RECEIPT_REQ) {
    mss_receipt_req rq;
    mss_receipt_resp resp;
    S.nreceipt++;
    if (mss_json_parse_receipt_req(q->body, q->body_len, &rq, &f) != GW_OK) {
      answer_fault(r, 101);
      goto done;
    }
    memset(&resp, 0, sizeof(resp));
    resp.major_version = 1;
    resp.minor_version = 1;
    fill_infos(&resp.ap_info, &resp.mssp_info, &rq.ap_info);
    resp.status.code = 100;
    gw_buf_init(&b, 1 << 16);
    mss_json_build_receipt_resp(&resp, &b);
    answer(r, 200, &b);
  } else {
    answer_fault(r, 108);
  }
done:
  pthread_mutex_unlock(&S_mu);
}

/* ---- the gateway side
 * ------------------------------------------------------------- */

typedef struct env {
  struct event_base *base;
  gw_config *cfg;
  op_registry *reg;
  op_http *http;
  op_adapter *oo;
  fs_server srv;
  int srv_up;
} env;

typedef struct seen {
  int accepted, final;
  int autofollow;
  op_result acc, fin;
  size_t sig_len, cert_len;
  op_txn *t;
} seen;

static void on_result(void *arg, op_txn *t, const op_result *r) {
  seen *s = arg;

  if (r->phase == OP_PHASE_ACCEPTED) {
    s->accepted++;
    s->acc = *r;
    if (s->autofollow) {
      op_follow(t, on_result, s);
    }
    return;
  }
  s->final++;
  s->fin = *r;
  s->sig_len = r->signature_len;
  s->cert_len = r->certificate_len;
  s->fin.signature = NULL;
  s->fin.certificate = NULL;
  s->fin.msisdn = NULL;
  s->fin.operator_name = NULL;
  s->t = NULL;
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

static void run_for(struct event_base *base, int ms) {
  int never = 0;
  run_until(base, &never, 1, ms);
}

static void set_str(char **p, const char *v) {
  free(*p);
  *p = strdup(v);
}

static void tune(gw_config *c, int port) {
  char url[128];

  snprintf(url, sizeof(url), "http://127.0.0.1:%d/rest/service", port);
  set_str(&c->op_numbering_plan, "configs/numbering-plan.conf");
  set_str(&c->op_portability, "configs/portability.csv");
  set_str(&c->op_ooredoo.url, url);
  set_str(&c->op_ooredoo.ap_id, AP_ID);
  set_str(&c->op_ooredoo.ap_pwd, AP_PWD);
  set_str(&c->op_ooredoo.notify_url, NOTIFY_URL);
  set_str(&c->op_ooredoo.notify_secret, SECRET);
  c->op_ooredoo.notify_overdue_ms = 3000;
  c->op_ooredoo.poll_first_ms = 50;
  c->op_ooredoo.poll_interval_ms = 30;
  c->op_ooredoo.timeout_s = 10;
  c->op_ooredoo.connect_timeout_ms = 500;
  c->op_ooredoo.http_timeout_ms = 2000;
  c->op_ooredoo.status_retries = 2;
  c->op_ooredoo.breaker_failures = 0;
}

static int env_up(env *e, void (*adjust)(gw_config *)) {
  char err[512];

  memset(e, 0, sizeof(*e));
  memset(&S, 0, sizeof(S));
  S.final_code = 500;
  S.n504 = 1000000;
  if (fs_start(&e->srv, h_mssp, NULL) != 0) {
    printf("# fake MSSP did not start\n");
    return -1;
  }
  e->srv_up = 1;
  if (gw_config_new_defaults(&e->cfg) != GW_OK) {
    return -1;
  }
  tune(e->cfg, e->srv.port);
  if (adjust) {
    adjust(e->cfg);
  }
  if (op_registry_new(&e->reg, e->cfg, err, sizeof(err)) != GW_OK) {
    printf("# registry: %s\n", err);
    return -1;
  }
  /* After op_registry_new, which turns libevent's thread support on: a
   * notification activates an event of this base from another thread. */
  e->base = event_base_new();
  if (op_registry_http_new(e->reg, e->base, &e->http) != GW_OK) {
    return -1;
  }
  e->oo = op_registry_get(e->reg, "ooredoo");
  return e->oo ? 0 : -1;
}

static void env_down(env *e) {
  op_http_del(e->http);
  op_registry_del(e->reg);
  gw_config_del(e->cfg);
  if (e->base) {
    event_base_free(e->base);
  }
  if (e->srv_up) {
    fs_stop(&e->srv);
  }
}

static const unsigned char DIGEST[32] = {0x2f, 0x66, 0x5f, 0x6a, 0x69, 0x99,
                                         0xe0, 0xef, 0x07, 0x52, 0xe0, 0x0e};

/* Submits for |msisdn| (following from the ACCEPTED callback) and runs
 * until ACCEPTED. Returns 1 then. */
static int start(env *e, const char *msisdn, seen *s) {
  op_sign_req rq = {msisdn, DIGEST, "Sign in to Demo RP: code 1462", 0};

  memset(s, 0, sizeof(*s));
  s->autofollow = 1;
  if (op_submit(e->oo, e->http, &rq, on_result, s, &s->t) != GW_OK) {
    return 0;
  }
  return run_until(e->base, &s->accepted, 1, 3000);
}

/* A notification body: the final MSS_StatusResp for |ap_tid|/|mssp_tid|
 * with |code| (500: a PKCS1 signature) and |message|. */
static void note_body(gw_buf *b, const char *ap_tid, const char *mssp_tid,
                      int code, const char *message) {
  mss_status_resp *m = calloc(1, sizeof(*m));

  m->major_version = 1;
  m->minor_version = 2;
  snprintf(m->ap_info.ap_id, sizeof(m->ap_info.ap_id), "%s", AP_ID);
  snprintf(m->ap_info.ap_trans_id, sizeof(m->ap_info.ap_trans_id), "%s",
           ap_tid);
  mss_instant_format(time(NULL), m->ap_info.instant,
                     sizeof(m->ap_info.instant));
  snprintf(m->mssp_info.id, sizeof(m->mssp_info.id), "http://mssp.fake/o");
  snprintf(m->mssp_trans_id, sizeof(m->mssp_trans_id), "%s", mssp_tid);
  snprintf(m->msisdn, sizeof(m->msisdn), "+96895000001");
  m->status.code = code;
  snprintf(m->status.message, sizeof(m->status.message), "%s",
           message ? message : mss_status_name(code));
  if (code == 500) {
    m->signature.kind = MSS_SIG_PKCS1;
    memcpy(m->signature.sig, RAWSIG, sizeof(RAWSIG));
    m->signature.len = sizeof(RAWSIG);
    memcpy(m->signature.cert, CERT, sizeof(CERT));
    m->signature.cert_len = sizeof(CERT);
  }
  gw_buf_init(b, 1 << 20);
  if (mss_json_build_status_resp(m, b) != GW_OK) {
    printf("#   cannot build the notification\n");
  }
  free(m);
}

/* Hands |body| to op_notify signed with |key| at now + |skew| s. Returns
 * the HTTP status; |ans| and |ack| (may be NULL) get the answer. */
static int notify(env *e, const gw_buf *body, const char *key, long skew,
                  op_notify_answer *ans, gw_buf *ack) {
  char hdr[160];
  op_notify_in in = {hdr, MSS_JSON_CONTENT_TYPE, body->data, body->len};
  op_notify_answer a;
  gw_buf own;
  int st;

  op_etsi_sign_notification(body->data, body->len, (const unsigned char *)key,
                            strlen(key), (long long)time(NULL) + skew, hdr,
                            sizeof(hdr));
  gw_buf_init(&own, 1 << 16);
  st = op_notify(e->oo, &in, ack ? ack : &own, ans ? ans : &a);
  gw_buf_free(&own);
  return st;
}

/* ---- tests
 * ------------------------------------------------------------------ */

static void t_signature_header(void) {
  const unsigned char *k = (const unsigned char *)SECRET;
  size_t kl = strlen(SECRET);
  const char *body = "{\"MSS_StatusResp\":{}}", *why = NULL;
  long long now = 1800000000;
  char h[200], bad[300];

  T_ASSERT(op_etsi_sign_notification(body, strlen(body), k, kl, now, h,
                                     sizeof(h)) == GW_OK);
  T_ASSERT(strncmp(h, "t=1800000000,v1=", 16) == 0 && strlen(h) == 16 + 64);
  T_ASSERT(op_etsi_check_signature(h, body, strlen(body), k, kl, now, 300,
                                   &why) == 0);
  /* the clock: 300 s either way is fine, 301 is not */
  T_ASSERT(op_etsi_check_signature(h, body, strlen(body), k, kl, now + 300, 300,
                                   &why) == 0);
  T_ASSERT(op_etsi_check_signature(h, body, strlen(body), k, kl, now + 301, 300,
                                   &why) == -1);
  T_EQ_STR(why, "timestamp out of range");
  T_ASSERT(op_etsi_check_signature(h, body, strlen(body), k, kl, now - 301, 300,
                                   &why) == -1);
  /* another key, another body, a changed t */
  T_ASSERT(op_etsi_check_signature(h, body, strlen(body), k, kl - 1, now, 300,
                                   &why) == -1);
  T_EQ_STR(why, "bad signature");
  T_ASSERT(op_etsi_check_signature(h, "{}", 2, k, kl, now, 300, &why) == -1);
  memcpy(bad, h, strlen(h) + 1);
  bad[11] = '1';
  T_ASSERT(op_etsi_check_signature(bad, body, strlen(body), k, kl, now + 1, 300,
                                   &why) == -1);
  T_EQ_STR(why, "bad signature");
  /* several v1 (key rotation): one good is enough; spaces allowed */
  snprintf(bad, sizeof(bad), "t=1800000000, v1=%064d, %s", 0, h + 13);
  T_ASSERT(op_etsi_check_signature(bad, body, strlen(body), k, kl, now, 300,
                                   &why) == 0);
  /* malformed */
  T_ASSERT(op_etsi_check_signature(NULL, body, 1, k, kl, now, 300, &why) == -1);
  T_EQ_STR(why, "missing");
  T_ASSERT(op_etsi_check_signature("v1=00", body, 1, k, kl, now, 300, &why) ==
           -1);
  T_EQ_STR(why, "malformed");
  T_ASSERT(op_etsi_check_signature("t=12x,v1=00", body, 1, k, kl, now, 300,
                                   &why) == -1);
  snprintf(bad, sizeof(bad), "t=1800000000,v1=%064d", 0);
  bad[20] = 'g';
  T_ASSERT(op_etsi_check_signature(bad, body, 1, k, kl, now, 300, &why) == -1);
  T_EQ_STR(why, "malformed");
  T_ASSERT(op_etsi_check_signature("t=1800000000", body, 1, k, kl, now, 300,
                                   &why) == -1);
}

static void no_secret(gw_config *c) {
  set_str(&c->op_ooredoo.notify_secret, "short");
}

static void t_config(void) {
  env e;
  char err[512];
  op_registry *r = NULL;

  T_ASSERT(env_up(&e, NULL) == 0);
  no_secret(e.cfg);
  T_ASSERT(op_registry_new(&r, e.cfg, err, sizeof(err)) == GW_ERR_CONFIG);
  T_ASSERT(strstr(err, "notify_secret") != NULL);
  T_ASSERT(strstr(err, "short") == NULL); /* never the secret itself */
  env_down(&e);
}

static void t_notified(void) {
  env e;
  seen s;
  gw_buf body, ack;
  op_notify_answer ans;
  mss_receipt_req *rq = calloc(1, sizeof(*rq));
  mss_fault f;

  T_ASSERT(env_up(&e, NULL) == 0);
  T_ASSERT(start(&e, "+96895000001", &s));
  T_EQ_INT(S.sig.messaging_mode, MSS_MODE_ASYNCH_SERVER_SERVER);
  T_EQ_STR(S.sig.mss_format, MSS_FORMAT_PKCS1);
  T_EQ_INT(S.sig.minor_version, 2);
  T_EQ_STR(S.sig.data_to_be_signed.mime_type, "application/x-sha256");
  T_ASSERT(strncmp(S.content_type, "application/json", 16) == 0);
  T_EQ_STR(s.acc.mssp_trans_id, "M1");
  run_for(e.base, 200);
  T_EQ_INT(S.nstatus, 0); /* waits for the notification, no polling */
  T_EQ_INT(s.final, 0);

  note_body(&body, S.sig.ap_info.ap_trans_id, "M1", 500, NULL);
  gw_buf_init(&ack, 1 << 16);
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, &ack), 200);
  T_EQ_INT(ans.repeat, 0);
  T_ASSERT(strncmp(ans.ack_type, "application/json", 16) == 0);
  /* the acknowledgement is an MSS_ReceiptReq for M1 without our password */
  T_EQ_INT(mss_json_parse_receipt_req(ack.data, ack.len, rq, &f), GW_OK);
  T_EQ_STR(rq->mssp_trans_id, "M1");
  T_EQ_STR(rq->ap_info.ap_id, AP_ID);
  T_EQ_STR(rq->ap_info.ap_pwd, "");
  T_ASSERT(strstr(ack.data, AP_PWD) == NULL);
  T_EQ_INT(rq->status.code, 100);
  /* applied on the loop, after the answer */
  T_EQ_INT(s.final, 0);
  T_ASSERT(run_until(e.base, &s.final, 1, 2000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  T_EQ_INT(s.fin.sig_format, OP_SIG_PKCS1);
  T_EQ_INT((int)s.sig_len, 64);
  T_EQ_INT((int)s.cert_len, (int)sizeof(CERT));
  T_EQ_INT(S.nstatus, 0);

  /* duplicated: the same bytes again are acknowledged and change nothing */
  gw_buf_reset(&ack);
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, &ack), 200);
  T_EQ_INT(ans.repeat, 1);
  T_ASSERT(ack.len > 0);
  run_for(e.base, 100);
  T_EQ_INT(s.final, 1);
  gw_buf_free(&body);
  /* another body for the ended transaction: refused */
  note_body(&body, S.sig.ap_info.ap_trans_id, "M1", 401, NULL);
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, NULL), 409);
  T_EQ_STR(ans.error, "already_finished");
  gw_buf_free(&body);
  gw_buf_free(&ack);
  free(rq);
  env_down(&e);
}

static void t_refused(void) {
  env e;
  seen s;
  gw_buf body;
  op_notify_answer ans;
  op_notify_in in;
  gw_buf ack;
  char hdr[160];

  T_ASSERT(env_up(&e, NULL) == 0);
  T_ASSERT(start(&e, "+96895000001", &s));
  note_body(&body, S.sig.ap_info.ap_trans_id, "M1", 500, NULL);
  /* a wrong key, an old and a future timestamp: 401, nothing changes */
  T_EQ_INT(
      notify(&e, &body, "another-secret-another-secret-123", 0, &ans, NULL),
      401);
  T_EQ_STR(ans.error, "bad_signature");
  T_EQ_INT(notify(&e, &body, SECRET, -301, &ans, NULL), 401);
  T_EQ_STR(ans.error, "stale_timestamp");
  T_EQ_INT(notify(&e, &body, SECRET, 301, &ans, NULL), 401);
  T_EQ_STR(ans.error, "stale_timestamp");
  /* no header at all; the wrong content type */
  gw_buf_init(&ack, 1 << 16);
  memset(&in, 0, sizeof(in));
  in.content_type = MSS_JSON_CONTENT_TYPE;
  in.body = body.data;
  in.body_len = body.len;
  T_EQ_INT(op_notify(e.oo, &in, &ack, &ans), 401);
  op_etsi_sign_notification(body.data, body.len, (const unsigned char *)SECRET,
                            strlen(SECRET), (long long)time(NULL), hdr,
                            sizeof(hdr));
  in.signature = hdr;
  in.content_type = "text/plain";
  T_EQ_INT(op_notify(e.oo, &in, &ack, &ans), 415);
  /* a tampered body under a good header */
  in.content_type = MSS_JSON_CONTENT_TYPE;
  body.data[body.len - 3] ^= 1;
  T_EQ_INT(op_notify(e.oo, &in, &ack, &ans), 401);
  body.data[body.len - 3] ^= 1;
  run_for(e.base, 100);
  T_EQ_INT(s.final, 0);
  gw_buf_free(&body);

  /* signed, but not what a notification is */
  gw_buf_init(&body, 1024);
  gw_buf_puts(&body, "{\"MSS_StatusResp\": [1, 2]}");
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, NULL), 400);
  T_EQ_STR(ans.error, "invalid_notification");
  gw_buf_reset(&body);
  gw_buf_puts(&body, "not json at all");
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, NULL), 400);
  gw_buf_free(&body);
  note_body(&body, S.sig.ap_info.ap_trans_id, "M1", 504, NULL);
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, NULL), 400); /* not final */
  gw_buf_free(&body);
  {
    mss_fault f;
    memset(&f, 0, sizeof(f));
    mss_fault_set(&f, 401, NULL);
    gw_buf_init(&body, 4096);
    mss_json_build_fault(&f, &body);
    T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, NULL), 400);
    gw_buf_free(&body);
  }
  /* unknown transactions: 404; the right AP_TransID with another
   * MSSP_TransID: 409 */
  note_body(&body, "Tunknown", "M99", 500, NULL);
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, NULL), 404);
  T_EQ_STR(ans.error, "unknown_transaction");
  gw_buf_free(&body);
  note_body(&body, S.sig.ap_info.ap_trans_id, "M2", 500, NULL);
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, NULL), 409);
  gw_buf_free(&body);
  run_for(e.base, 100);
  T_EQ_INT(s.final, 0);

  /* after all that, the right one still ends it */
  note_body(&body, S.sig.ap_info.ap_trans_id, "M1", 401, NULL);
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, NULL), 200);
  T_ASSERT(run_until(e.base, &s.final, 1, 2000));
  T_EQ_INT(s.fin.outcome, OP_USER_CANCELLED);
  T_EQ_INT(s.fin.etsi_status, 401);
  gw_buf_free(&body);
  gw_buf_free(&ack);
  env_down(&e);
}

static void t_fault_statuses(void) {
  static const struct {
    int code;
    const char *msg;
    op_outcome want;
  } cases[] = {
      {402, NULL, OP_PIN_BLOCKED},
      {209, NULL, OP_PHONE_ABSENT},
      {208, NULL, OP_TIMED_OUT},
      {900, "INTERNAL_ERROR: 9003 SIM application error", OP_SIM_ERROR},
      {900, NULL, OP_OPERATOR_ERROR},
      {404, NULL, OP_NOT_SUBSCRIBER},
  };
  env e;

  T_ASSERT(env_up(&e, NULL) == 0);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    seen s;
    gw_buf body;
    char mid[16];
    T_ASSERT(start(&e, "+96895000001", &s));
    snprintf(mid, sizeof(mid), "M%d", S.nsig);
    note_body(&body, S.sig.ap_info.ap_trans_id, mid, cases[i].code,
              cases[i].msg);
    T_EQ_INT(notify(&e, &body, SECRET, 0, NULL, NULL), 200);
    T_ASSERT(run_until(e.base, &s.final, 1, 2000));
    T_EQ_INT(s.fin.outcome, cases[i].want);
    gw_buf_free(&body);
  }
  env_down(&e);
}

/* The notification overtakes the answer to the request: the MSSP answers
 * 100 late, the notification is applied when op_follow comes. */
static void t_before_accept(void) {
  env e;
  seen s;
  gw_buf body;
  op_sign_req rq = {"+96895000001", DIGEST, NULL, 0};
  char tid[64];

  T_ASSERT(env_up(&e, NULL) == 0);
  S.sig_delay_ms = 400;
  memset(&s, 0, sizeof(s));
  s.autofollow = 1;
  T_ASSERT(op_submit(e.oo, e.http, &rq, on_result, &s, &s.t) == GW_OK);
  run_for(e.base, 150); /* the request is at the MSSP, the answer waits */
  pthread_mutex_lock(&S_mu);
  snprintf(tid, sizeof(tid), "%s", S.sig.ap_info.ap_trans_id);
  pthread_mutex_unlock(&S_mu);
  T_ASSERT(tid[0] != '\0');
  note_body(&body, tid, "M1", 500, NULL);
  T_EQ_INT(notify(&e, &body, SECRET, 0, NULL, NULL), 200);
  T_ASSERT(run_until(e.base, &s.final, 1, 3000));
  T_EQ_INT(s.accepted, 1);
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  T_EQ_STR(s.fin.mssp_trans_id, "M1");
  T_EQ_INT(S.nstatus, 0);
  gw_buf_free(&body);
  env_down(&e);
}

static void overdue_fast(gw_config *c) {
  c->op_ooredoo.notify_overdue_ms = 300;
}

/* No notification: polling after notify_overdue_ms; the late notification
 * then finds the transaction ended. Cancelled ones likewise. */
static void t_overdue_and_late(void) {
  env e;
  seen s;
  gw_buf body;
  op_notify_answer ans;
  double t0;

  T_ASSERT(env_up(&e, overdue_fast) == 0);
  S.n504 = 2;
  t0 = fs_now_ms();
  T_ASSERT(start(&e, "+96895000001", &s));
  T_ASSERT(run_until(e.base, &s.final, 1, 3000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  T_EQ_INT(S.nstatus, 3);
  T_ASSERT(S.t_status0 - t0 >= 280);
  note_body(&body, S.sig.ap_info.ap_trans_id, "M1", 500, NULL);
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, NULL), 409);
  T_EQ_STR(ans.error, "already_finished");
  gw_buf_free(&body);

  /* cancelled while waiting: its notification is refused too */
  S.n504 = 1000000;
  T_ASSERT(start(&e, "+96895000001", &s));
  op_cancel(s.t);
  note_body(&body, S.sig.ap_info.ap_trans_id, "M2", 500, NULL);
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, NULL), 409);
  gw_buf_free(&body);
  env_down(&e);
}

/* The MSSP never notifies and every status query is 504: the deadline. */
static void short_deadline(gw_config *c) {
  c->op_ooredoo.notify_overdue_ms = 100;
  c->op_ooredoo.timeout_s = 1;
}

static void t_deadline(void) {
  env e;
  seen s;

  T_ASSERT(env_up(&e, short_deadline) == 0);
  T_ASSERT(start(&e, "+96895000001", &s));
  T_ASSERT(run_until(e.base, &s.final, 1, 4000));
  T_EQ_INT(s.fin.outcome, OP_TIMED_OUT);
  T_ASSERT(strstr(s.fin.detail, "notification") != NULL);
  env_down(&e);
}

/* A notification from another thread (the gateway's workers) while the
 * transaction's loop runs. */
typedef struct cross {
  env *e;
  gw_buf body;
  int status;
} cross;

static void *notifier(void *p) {
  cross *c = p;
  struct timespec ts = {0, 100 * 1000000};

  nanosleep(&ts, NULL);
  c->status = notify(c->e, &c->body, SECRET, 0, NULL, NULL);
  return NULL;
}

static void t_cross_thread(void) {
  env e;
  seen s;
  cross c;
  pthread_t th;

  T_ASSERT(env_up(&e, NULL) == 0);
  for (int i = 0; i < 20; i++) {
    char mid[16];
    T_ASSERT(start(&e, "+96895000001", &s));
    snprintf(mid, sizeof(mid), "M%d", S.nsig);
    memset(&c, 0, sizeof(c));
    c.e = &e;
    note_body(&c.body, S.sig.ap_info.ap_trans_id, mid, 500, NULL);
    T_ASSERT(pthread_create(&th, NULL, notifier, &c) == 0);
    T_ASSERT(run_until(e.base, &s.final, 1, 3000));
    pthread_join(th, NULL);
    T_EQ_INT(c.status, 200);
    T_EQ_INT(s.fin.outcome, OP_SIGNED);
    gw_buf_free(&c.body);
  }
  T_EQ_INT(S.nstatus, 0);
  env_down(&e);
}

static void no_notify(gw_config *c) {
  set_str(&c->op_ooredoo.notify_url, "");
  set_str(&c->op_ooredoo.notify_secret, "");
}

/* Without notify_url: asynchClientServer and polling, like Omantel; a
 * notification is refused with 404. Receipts work either way. */
static void t_polling_mode(void) {
  env e;
  seen s;
  gw_buf body;
  op_notify_answer ans;

  T_ASSERT(env_up(&e, no_notify) == 0);
  S.n504 = 1;
  T_ASSERT(start(&e, "+96895000001", &s));
  T_EQ_INT(S.sig.messaging_mode, MSS_MODE_ASYNCH_CLIENT_SERVER);
  T_ASSERT(run_until(e.base, &s.final, 1, 3000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  T_EQ_INT(S.nstatus, 2);
  note_body(&body, S.sig.ap_info.ap_trans_id, "M1", 500, NULL);
  T_EQ_INT(notify(&e, &body, SECRET, 0, &ans, NULL), 404);
  T_EQ_STR(ans.error, "not_enabled");
  gw_buf_free(&body);
  env_down(&e);
}

static int receipts;
static void on_receipt(void *arg, int ok, int code, const char *detail) {
  (void)arg;
  (void)detail;
  receipts += ok && code == 100;
}

static void t_receipt_and_metrics(void) {
  env e;
  seen s;
  gw_buf body, m;
  op_receipt_req rr = {"+96895000001", "M1", "Signed in to Demo RP"};

  T_ASSERT(env_up(&e, NULL) == 0);
  T_ASSERT(start(&e, "+96895000001", &s));
  note_body(&body, S.sig.ap_info.ap_trans_id, "M1", 500, NULL);
  T_EQ_INT(notify(&e, &body, SECRET, 0, NULL, NULL), 200);
  T_EQ_INT(notify(&e, &body, SECRET, 0, NULL, NULL), 200);
  T_EQ_INT(
      notify(&e, &body, "wrong-secret-wrong-secret-wrong-s", 0, NULL, NULL),
      401);
  T_ASSERT(run_until(e.base, &s.final, 1, 2000));
  receipts = 0;
  T_EQ_INT(op_receipt(e.oo, e.http, &rr, on_receipt, NULL), GW_OK);
  T_ASSERT(run_until(e.base, &receipts, 1, 2000));
  T_EQ_INT(S.nreceipt, 1);
  gw_buf_init(&m, 1 << 20);
  T_EQ_INT(op_registry_metrics(e.reg, &m), GW_OK);
  T_ASSERT(strstr(m.data, "mpkigw_operator_notifications_total{operator="
                          "\"ooredoo\",result=\"applied\"} 1\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_notifications_total{operator="
                          "\"ooredoo\",result=\"repeated\"} 1\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_notifications_total{operator="
                          "\"ooredoo\",result=\"refused\"} 1\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_outcomes_total{operator="
                          "\"ooredoo\",outcome=\"signed\"} 1\n") != NULL);
  T_ASSERT(strstr(m.data, "notifications_total{operator=\"omantel\"") == NULL);
  gw_buf_free(&m);
  gw_buf_free(&body);
  env_down(&e);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* a peer that closes early */
  gw_log_open(NULL, GW_LOG_ERROR);
  T_RUN(t_signature_header);
  T_RUN_CHILD(t_config);
  T_RUN_CHILD(t_notified);
  T_RUN_CHILD(t_refused);
  T_RUN_CHILD(t_fault_statuses);
  T_RUN_CHILD(t_before_accept);
  T_RUN_CHILD(t_overdue_and_late);
  T_RUN_CHILD(t_deadline);
  T_RUN_CHILD(t_cross_thread);
  T_RUN_CHILD(t_polling_mode);
  T_RUN_CHILD(t_receipt_and_metrics);
  return T_DONE();
}
