/* op_omantel_test.c — the operator adapters (operators/op_adapter.c,
 * operators/op_omantel.c) end to end over HTTP.
 *
 * Part 1 talks to a scripted MSSP (op_fakesrv.h answering with the SOAP
 * codec): what the adapter sends, the pacing of status queries, every
 * outcome mapping, and everything an operator can do wrong — garbage,
 * invalid XML, the wrong content type, oversized bodies, slowness, being
 * down (the circuit breaker) — plus cancellation, receipts and metrics.
 *
 * Part 2 (op_omantel_mock_test.c's job when the real mock exists) is in
 * t_real_mock below: it runs only when $BUILD/mssp-mock is built, against a
 * private PKI made with $BUILD/mpkictl.
 *
 * Run from the repository root. Each test runs in a child process. */
#include "op_adapter.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "harness.h"
#include "mss.h"
#include "mss_soap.h"
#include "op_adapter_int.h"
#include "op_breaker.h"
#include "op_fakesrv.h"
#include "support/t_child.h"

#define AP_ID "http://gw.test/ap"
#define AP_PWD "p4ss-w0rd-not-for-logs"

/* ---- the scripted MSSP
 * ---------------------------------------------------------- */

typedef enum bad_kind {
  BAD_NONE = 0,
  BAD_HTML,      /* 200 text/html */
  BAD_XML,       /* 200 application/soap+xml, not well-formed */
  BAD_WRONG_MSG, /* 200, a valid SOAP document of another message */
  BAD_BIG,       /* 200, 300 KB */
  BAD_503,       /* 503 text/html */
  BAD_CLOSE,     /* closes without answering */
  BAD_HANG,      /* never answers */
  BAD_GARBAGE,   /* not HTTP */
  BAD_TEXT_XML   /* fine, but as text/xml (older SOAP): accepted */
} bad_kind;

typedef struct script {
  /* MSS_Signature */
  int sig_fault;    /* 0: 100 REQUEST_OK; else this fault code */
  bad_kind sig_bad; /* an unusable answer instead */
  int sig_no_id;    /* 100 without MSSP_TransID */
  /* MSS_StatusQuery */
  int n504;       /* 504 answers before the end (-1: forever) */
  int final_code; /* 500 (signature), 501/503 (status) or a fault */
  const char *final_detail;
  int final_no_sig; /* 500 without a signature */
  int status_bad_n; /* the first N status queries get |status_bad| */
  bad_kind status_bad;
  int delay_ms; /* before every answer */
  /* MSS_Receipt */
  int receipt_fault;
  /* recorded */
  int nsig, nstatus, nreceipt, nother;
  double t_sig, t_status[256];
  char tids[512][MSS_TRANSID_MAX + 1];
  int ntids;
  mss_signature_req sig;
  mss_status_req status;
  mss_receipt_req receipt;
  char sig_ct[128];
  char sig_path[128];
  /* the last raw body of each kind, for schema validation */
  char *raw_sig, *raw_status, *raw_receipt;
} script;

static script S;
static const unsigned char SIGBYTES[] = {0x30, 0x82, 0x01, 0x02,
                                         0xde, 0xad, 0xbe, 0xef};

static void answer_buf(fs_response *r, int status, gw_buf *b) {
  r->status = status;
  r->content_type = MSS_SOAP_CONTENT_TYPE;
  r->body = b->data;
  r->body_len = b->len;
  r->owned = b->data; /* taken over */
}

static void answer_fault(fs_response *r, int code, const char *detail) {
  mss_fault f;
  gw_buf b;

  memset(&f, 0, sizeof(f));
  mss_fault_set(&f, code, detail);
  gw_buf_init(&b, 1 << 20);
  mss_soap_build_fault(&f, &b);
  answer_buf(r, f.code == MSS_FAULT_SENDER ? 400 : 500, &b);
}

static char bigbody[300000];

/* Fills |r| with the unusable answer |k|. Returns 1 when it did. */
static int answer_bad(fs_response *r, bad_kind k) {
  switch (k) {
  case BAD_NONE:
  case BAD_TEXT_XML:
    return 0;
  case BAD_HTML:
    r->content_type = "text/html";
    r->body = "<html><body>It works!</body></html>";
    return 1;
  case BAD_XML:
    r->content_type = "application/soap+xml";
    r->body = "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-"
              "envelope\"><env:Body><unclosed>";
    return 1;
  case BAD_WRONG_MSG: {
    mss_receipt_resp rr;
    gw_buf b;
    memset(&rr, 0, sizeof(rr));
    rr.major_version = 1;
    rr.minor_version = 1;
    snprintf(rr.ap_info.ap_id, sizeof(rr.ap_info.ap_id), "%s", AP_ID);
    snprintf(rr.ap_info.ap_trans_id, sizeof(rr.ap_info.ap_trans_id), "X1");
    mss_instant_format(time(NULL), rr.ap_info.instant,
                       sizeof(rr.ap_info.instant));
    rr.status.code = 100;
    gw_buf_init(&b, 1 << 20);
    mss_soap_build_receipt_resp(&rr, &b);
    answer_buf(r, 200, &b);
    return 1;
  }
  case BAD_BIG:
    memset(bigbody, ' ', sizeof(bigbody));
    r->content_type = "application/soap+xml";
    r->body = bigbody;
    r->body_len = sizeof(bigbody);
    return 1;
  case BAD_503:
    r->status = 503;
    r->content_type = "text/html";
    r->body = "<h1>Service Unavailable</h1>";
    return 1;
  case BAD_CLOSE:
    r->action = FS_CLOSE;
    return 1;
  case BAD_HANG:
    r->action = FS_HANG;
    return 1;
  case BAD_GARBAGE:
    r->action = FS_RAW;
    r->body = "\x16\x03\x01 definitely not HTTP\r\n\r\n";
    r->close_after = 1;
    return 1;
  }
  return 0;
}

static void record_tid(const char *tid) {
  if (S.ntids < 512) {
    snprintf(S.tids[S.ntids++], MSS_TRANSID_MAX + 1, "%s", tid);
  }
}

static void fill_resp_infos(mss_ap_info *ai, mss_mssp_info *mi,
                            const mss_ap_info *req) {
  *ai = *req;
  ai->ap_pwd[0] = '\0';
  snprintf(mi->id, sizeof(mi->id), "http://mssp.fake/omantel");
}

static void h_mssp(void *arg, const fs_request *q, fs_response *r) {
  mss_fault f;

  (void)arg;
  r->delay_ms = S.delay_ms;
  if (strstr(q->path, "/MSS_SignaturePort")) {
    mss_signature_resp resp;
    S.nsig++;
    S.t_sig = fs_now_ms();
    free(S.raw_sig);
    S.raw_sig = strdup(q->body);
    snprintf(S.sig_ct, sizeof(S.sig_ct), "%s", q->content_type);
    snprintf(S.sig_path, sizeof(S.sig_path), "%.100s", q->path);
    if (mss_soap_parse_signature_req(q->body, q->body_len, &S.sig, &f) !=
        GW_OK) {
      answer_fault(r, f.subcode ? f.subcode : 101, "unparsable");
      return;
    }
    record_tid(S.sig.ap_info.ap_trans_id);
    if (answer_bad(r, S.sig_bad)) {
      return;
    }
    if (S.sig_fault) {
      answer_fault(r, S.sig_fault, S.final_detail);
      return;
    }
    memset(&resp, 0, sizeof(resp));
    resp.major_version = 1;
    resp.minor_version = 1;
    fill_resp_infos(&resp.ap_info, &resp.mssp_info, &S.sig.ap_info);
    if (!S.sig_no_id) {
      snprintf(resp.mssp_trans_id, sizeof(resp.mssp_trans_id), "M%d", S.nsig);
    } else {
      /* the builder refuses an empty MSSP_TransID: write one and cut it */
      snprintf(resp.mssp_trans_id, sizeof(resp.mssp_trans_id), "CUTME");
    }
    snprintf(resp.msisdn, sizeof(resp.msisdn), "%s", S.sig.msisdn);
    resp.status.code = 100;
    snprintf(resp.status.message, sizeof(resp.status.message), "REQUEST_OK");
    {
      gw_buf b;
      gw_buf_init(&b, 1 << 20);
      mss_soap_build_signature_resp(&resp, &b);
      if (S.sig_no_id) {
        char *p = strstr(b.data, " MSSP_TransID=\"CUTME\"");
        if (p) {
          memmove(p, p + 21, strlen(p + 21) + 1);
          b.len = strlen(b.data);
        }
      }
      answer_buf(r, 200, &b);
      if (S.sig_bad == BAD_TEXT_XML) {
        r->content_type = "text/xml; charset=utf-8";
      }
    }
    return;
  }
  if (strstr(q->path, "/MSS_StatusQueryPort")) {
    mss_status_resp resp;
    gw_buf b;
    if (S.nstatus < 256) {
      S.t_status[S.nstatus] = fs_now_ms();
    }
    S.nstatus++;
    free(S.raw_status);
    S.raw_status = strdup(q->body);
    if (mss_soap_parse_status_req(q->body, q->body_len, &S.status, &f) !=
        GW_OK) {
      answer_fault(r, f.subcode ? f.subcode : 101, "unparsable");
      return;
    }
    record_tid(S.status.ap_info.ap_trans_id);
    if (S.nstatus <= S.status_bad_n && answer_bad(r, S.status_bad)) {
      return;
    }
    memset(&resp, 0, sizeof(resp));
    resp.major_version = 1;
    resp.minor_version = 1;
    fill_resp_infos(&resp.ap_info, &resp.mssp_info, &S.status.ap_info);
    snprintf(resp.mssp_trans_id, sizeof(resp.mssp_trans_id), "%s",
             S.status.mssp_trans_id);
    snprintf(resp.msisdn, sizeof(resp.msisdn), "%s", S.status.msisdn);
    if (S.n504 < 0 || S.nstatus - S.status_bad_n <= S.n504) {
      resp.status.code = 504;
    } else if (S.final_code == 500 || S.final_code == 501 ||
               S.final_code == 502 || S.final_code == 503) {
      resp.status.code = S.final_code;
      if (!S.final_no_sig) {
        resp.signature.kind = MSS_SIG_PKCS7;
        memcpy(resp.signature.sig, SIGBYTES, sizeof(SIGBYTES));
        resp.signature.len = sizeof(SIGBYTES);
      }
    } else {
      answer_fault(r, S.final_code, S.final_detail);
      return;
    }
    gw_buf_init(&b, 1 << 20);
    mss_soap_build_status_resp(&resp, &b);
    answer_buf(r, 200, &b);
    return;
  }
  if (strstr(q->path, "/MSS_ReceiptPort")) {
    mss_receipt_resp resp;
    gw_buf b;
    S.nreceipt++;
    free(S.raw_receipt);
    S.raw_receipt = strdup(q->body);
    if (mss_soap_parse_receipt_req(q->body, q->body_len, &S.receipt, &f) !=
        GW_OK) {
      answer_fault(r, f.subcode ? f.subcode : 101, "unparsable");
      return;
    }
    record_tid(S.receipt.ap_info.ap_trans_id);
    if (S.receipt_fault) {
      answer_fault(r, S.receipt_fault, NULL);
      return;
    }
    memset(&resp, 0, sizeof(resp));
    resp.major_version = 1;
    resp.minor_version = 1;
    fill_resp_infos(&resp.ap_info, &resp.mssp_info, &S.receipt.ap_info);
    resp.status.code = 100;
    gw_buf_init(&b, 1 << 20);
    mss_soap_build_receipt_resp(&resp, &b);
    answer_buf(r, 200, &b);
    return;
  }
  S.nother++;
  r->status = 404;
  r->content_type = "text/plain";
  r->body = "no such port";
}

/* ---- the gateway side
 * ------------------------------------------------------------- */

typedef struct env {
  struct event_base *base;
  gw_config *cfg;
  op_registry *reg;
  op_http *http;
  op_adapter *om;
  fs_server srv;
  int srv_up;
} env;

/* What the callbacks saw. */
typedef struct seen {
  int accepted, final;
  int follow_rv;
  int autofollow; /* call op_follow from the ACCEPTED callback */
  int cancel_on_accept;
  op_result acc, fin;
  unsigned char sig[64];
  size_t sig_len;
  double t_acc, t_fin;
  op_txn *t;
} seen;

static void on_result(void *arg, op_txn *t, const op_result *r) {
  seen *s = arg;

  if (r->phase == OP_PHASE_ACCEPTED) {
    s->accepted++;
    s->acc = *r;
    s->t_acc = fs_now_ms();
    if (s->cancel_on_accept) {
      op_cancel(t);
    } else if (s->autofollow) {
      s->follow_rv = op_follow(t, on_result, s);
    }
    return;
  }
  s->final++;
  s->fin = *r;
  s->t_fin = fs_now_ms();
  s->sig_len = r->signature_len < sizeof(s->sig) ? r->signature_len : 0;
  if (s->sig_len) {
    memcpy(s->sig, r->signature, s->sig_len);
  }
  s->fin.signature = NULL;
  s->fin.certificate = NULL;
  s->fin.msisdn = NULL;
  s->fin.operator_name = NULL;
}

/* The deadline of run_until: a flag, since libevent's clock and ours may
 * disagree by a millisecond. */
static void on_deadline(evutil_socket_t fd, short w, void *arg) {
  (void)fd;
  (void)w;
  *(int *)arg = 1;
}

/* Runs |base| until |*count| reaches |want| or |ms| pass. Returns 1 when
 * reached. */
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

/* Default test settings: fast polling, short timeouts. */
static void tune(gw_config *c, int port) {
  char url[128];

  snprintf(url, sizeof(url), "http://127.0.0.1:%d/soap/services/", port);
  set_str(&c->op_numbering_plan, "configs/numbering-plan.conf");
  set_str(&c->op_portability, "configs/portability.csv");
  set_str(&c->op_omantel.url, url);
  set_str(&c->op_omantel.ap_id, AP_ID);
  set_str(&c->op_omantel.ap_pwd, AP_PWD);
  c->op_omantel.poll_first_ms = 50;
  c->op_omantel.poll_interval_ms = 30;
  c->op_omantel.timeout_s = 10;
  c->op_omantel.connect_timeout_ms = 500;
  c->op_omantel.http_timeout_ms = 1000;
  c->op_omantel.max_response = 64 * 1024;
  c->op_omantel.status_retries = 2;
  c->op_omantel.breaker_failures = 0;
}

/* Starts the scripted MSSP (|port| 0: any) and the registry; |adjust|
 * changes the config after tune(). */
static int env_up(env *e, void (*adjust)(gw_config *)) {
  char err[512];

  memset(e, 0, sizeof(*e));
  memset(&S, 0, sizeof(S));
  S.final_code = 500;
  if (fs_start(&e->srv, h_mssp, NULL) != 0) {
    printf("# fake MSSP did not start\n");
    return -1;
  }
  e->srv_up = 1;
  e->base = event_base_new();
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
  if (op_registry_http_new(e->reg, e->base, &e->http) != GW_OK) {
    return -1;
  }
  e->om = op_registry_get(e->reg, "omantel");
  return e->om ? 0 : -1;
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

static const unsigned char DIGEST[32] = {
    0x2f, 0x66, 0x5f, 0x6a, 0x69, 0x99, 0xe0, 0xef, 0x07, 0x52, 0xe0,
    0x0e, 0xc9, 0xf4, 0x53, 0xad, 0xf5, 0x9d, 0x8c, 0xb6, 0x01, 0x02,
    0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c};

/* Submits for |msisdn| with follow from the ACCEPTED callback; runs until
 * FINAL or |ms|. Returns 1 when FINAL came. */
static int sign(env *e, const char *msisdn, seen *s, int ms) {
  op_sign_req rq = {msisdn, DIGEST, "Sign in to Demo RP: code 1462", 0};
  int rv;

  memset(s, 0, sizeof(*s));
  s->autofollow = 1;
  rv = op_submit(e->om, e->http, &rq, on_result, s, &s->t);
  if (rv != GW_OK) {
    printf("#   op_submit: %s\n", gw_strerror(rv));
    return 0;
  }
  if (s->final || s->accepted) {
    printf("#   a callback ran inside op_submit\n");
    return 0;
  }
  return run_until(e->base, &s->final, 1, ms);
}

/* ---- tests: outcomes and the registry
 * ------------------------------------------------- */

static void t_outcome_names(void) {
  static const char *const names[] = {
      "signed",      "user_cancelled", "timed_out",
      "pin_blocked", "not_subscriber", "phone_absent",
      "sim_error",   "operator_error", "operator_unavailable"};

  for (int i = 0; i < OP_OUTCOME_COUNT_; i++) {
    T_EQ_STR(op_outcome_name((op_outcome)i), names[i]);
    T_EQ_INT(op_outcome_from_name(names[i]), i);
  }
  T_EQ_STR(op_outcome_name(OP_OUTCOME_COUNT_), "unknown");
  T_EQ_STR(op_outcome_name((op_outcome)-1), "unknown");
  T_EQ_INT(op_outcome_from_name("nope"), -1);
  T_EQ_INT(op_outcome_from_name(NULL), -1);
}

static void t_etsi_mapping(void) {
  static const struct {
    int code, detail;
    op_outcome want;
  } m[] = {
      {500, 0, OP_SIGNED},
      {502, 0, OP_SIGNED},
      {401, 0, OP_USER_CANCELLED},
      {401, 4012, OP_USER_CANCELLED},
      {208, 0, OP_TIMED_OUT},
      {208, 2082, OP_TIMED_OUT},
      {402, 0, OP_PIN_BLOCKED},
      {403, 4031, OP_PIN_BLOCKED},
      {105, 0, OP_NOT_SUBSCRIBER},
      {105, 1052, OP_NOT_SUBSCRIBER},
      {105, 1054, OP_SIM_ERROR},
      {404, 0, OP_NOT_SUBSCRIBER},
      {422, 0, OP_NOT_SUBSCRIBER},
      {501, 0, OP_NOT_SUBSCRIBER},
      {209, 0, OP_PHONE_ABSENT},
      {209, 2093, OP_PHONE_ABSENT},
      {209, 2094, OP_SIM_ERROR},
      {900, 9003, OP_SIM_ERROR},
      {900, 9004, OP_SIM_ERROR},
      {900, 0, OP_OPERATOR_ERROR},
      {900, 9002, OP_OPERATOR_ERROR},
      {101, 0, OP_OPERATOR_ERROR},
      {102, 0, OP_OPERATOR_ERROR},
      {103, 0, OP_OPERATOR_ERROR},
      {104, 0, OP_OPERATOR_ERROR},
      {107, 0, OP_OPERATOR_ERROR},
      {108, 0, OP_OPERATOR_ERROR},
      {109, 0, OP_OPERATOR_ERROR},
      {405, 0, OP_OPERATOR_ERROR},
      {406, 0, OP_OPERATOR_ERROR},
      {407, 0, OP_OPERATOR_ERROR},
      {423, 0, OP_OPERATOR_ERROR},
      {424, 0, OP_OPERATOR_ERROR},
      {425, 0, OP_OPERATOR_ERROR},
      {503, 0, OP_OPERATOR_ERROR},
      {505, 0, OP_OPERATOR_ERROR},
      {777, 0, OP_OPERATOR_ERROR},
      {0, 0, OP_OPERATOR_ERROR},
  };

  for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
    op_outcome got = op_outcome_from_etsi(m[i].code, m[i].detail);
    if (got != m[i].want) {
      printf("#   %d/%d -> %s, want %s\n", m[i].code, m[i].detail,
             op_outcome_name(got), op_outcome_name(m[i].want));
      t_case_failed = 1;
    }
  }
  T_ASSERT(op_etsi_is_pending(100));
  T_ASSERT(op_etsi_is_pending(504));
  T_ASSERT(!op_etsi_is_pending(500));
  T_ASSERT(!op_etsi_is_pending(208));
}

static void t_registry_routes(void) {
  env e;
  op_route_result res;
  op_adapter *a;
  op_health h;

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  T_EQ_INT(op_registry_count(e.reg), 2);
  T_EQ_STR(op_adapter_name(op_registry_at(e.reg, 0)), "omantel");
  T_EQ_STR(op_adapter_name(op_registry_at(e.reg, 1)), "ooredoo");
  T_ASSERT(op_registry_at(e.reg, 2) == NULL);
  T_ASSERT(op_registry_get(e.reg, "vodafone") == NULL);

  T_EQ_INT(op_registry_route(e.reg, "99000001", &res, &a), OP_ROUTE_OK);
  T_ASSERT(a == e.om);
  T_EQ_STR(res.msisdn, "+96899000001");
  T_EQ_INT(op_registry_route(e.reg, "+96895000001", &res, &a), OP_ROUTE_OK);
  T_EQ_STR(op_adapter_name(a), "ooredoo");
  T_EQ_INT(op_registry_route(e.reg, "+96899000009", &res, &a), OP_ROUTE_OK);
  T_EQ_STR(op_adapter_name(a), "ooredoo");
  T_EQ_INT(res.ported, 1);
  T_EQ_INT(op_registry_route(e.reg, "+447700900123", &res, &a),
           OP_ROUTE_NOT_OMAN);
  T_ASSERT(a == NULL);
  T_EQ_INT(op_registry_route(e.reg, "+96824000000", &res, &a),
           OP_ROUTE_NO_OPERATOR);
  T_EQ_INT(op_registry_route(e.reg, "nonsense", &res, &a), OP_ROUTE_INVALID);

  op_health_get(e.om, &h);
  T_EQ_STR(h.operator_name, "omantel");
  T_EQ_INT(h.configured, 1);
  T_EQ_INT(h.available, 1);
  op_health_get(op_registry_get(e.reg, "ooredoo"), &h);
  T_EQ_INT(h.configured, 0);
  T_EQ_INT(h.available, 0);
  T_ASSERT(strstr(h.detail, "operators.ooredoo.ap_id is empty") != NULL);
  env_down(&e);
}

static void plan_unknown_op(gw_config *c) {
  FILE *f = fopen("/tmp/op_omantel_test.plan", "w");
  if (f) {
    fputs("99 omantel\n95 vodafone\n", f);
    fclose(f);
  }
  set_str(&c->op_numbering_plan, "/tmp/op_omantel_test.plan");
  set_str(&c->op_portability, "");
}

static void t_registry_errors(void) {
  gw_config *c = NULL;
  op_registry *r = (op_registry *)0x1;
  char err[512];

  T_EQ_INT(gw_config_new_defaults(&c), GW_OK);
  if (!c) {
    return;
  }
  tune(c, 1);
  plan_unknown_op(c);
  T_EQ_INT(op_registry_new(&r, c, err, sizeof(err)), GW_ERR_CONFIG);
  T_ASSERT(strstr(err, "names operator \"vodafone\", which has no adapter") !=
           NULL);
  T_ASSERT(r == (op_registry *)0x1);
  set_str(&c->op_numbering_plan, "/nonexistent/plan.conf");
  T_EQ_INT(op_registry_new(&r, c, err, sizeof(err)), GW_ERR_IO);
  T_ASSERT(strstr(err, "/nonexistent/plan.conf: No such file") != NULL);
  remove("/tmp/op_omantel_test.plan");
  gw_config_del(c);
}

/* ---- tests: the happy path and what travels
 * ------------------------------------------ */

static void t_signed_after_polling(void) {
  env e;
  seen s;
  char b64[64];

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  S.n504 = 3;
  T_ASSERT(sign(&e, "+96899000001", &s, 5000));
  T_EQ_INT(s.accepted, 1);
  T_EQ_INT(s.follow_rv, GW_OK);
  T_EQ_INT(s.acc.phase, OP_PHASE_ACCEPTED);
  T_EQ_INT(s.acc.etsi_status, 100);
  T_EQ_STR(s.acc.mssp_trans_id, "M1");
  T_EQ_INT(s.final, 1);
  T_EQ_INT(s.fin.phase, OP_PHASE_FINAL);
  T_EQ_STR(op_outcome_name(s.fin.outcome), "signed");
  T_EQ_INT(s.fin.etsi_status, 500);
  T_EQ_INT(s.fin.sig_format, OP_SIG_PKCS7);
  T_EQ_INT(s.sig_len, sizeof(SIGBYTES));
  T_ASSERT(memcmp(s.sig, SIGBYTES, sizeof(SIGBYTES)) == 0);
  T_EQ_STR(s.fin.mssp_trans_id, "M1");
  T_EQ_STR(s.fin.ap_trans_id, s.acc.ap_trans_id);
  T_ASSERT(s.fin.elapsed_ns > 0);

  /* What went to the MSSP. */
  T_EQ_INT(S.nsig, 1);
  T_EQ_INT(S.nstatus, 4);
  T_EQ_STR(S.sig_path, "/soap/services/MSS_SignaturePort");
  T_ASSERT(strncmp(S.sig_ct, "application/soap+xml", 20) == 0);
  T_EQ_STR(S.sig.ap_info.ap_id, AP_ID);
  T_EQ_STR(S.sig.ap_info.ap_pwd, AP_PWD);
  T_EQ_STR(S.sig.ap_info.ap_trans_id, s.fin.ap_trans_id);
  T_ASSERT(mss_instant_valid(S.sig.ap_info.instant));
  T_EQ_STR(S.sig.msisdn, "+96899000001");
  T_EQ_INT(S.sig.messaging_mode, MSS_MODE_ASYNCH_CLIENT_SERVER);
  T_EQ_INT(S.sig.timeout, 10);
  T_EQ_STR(S.sig.mss_format, MSS_FORMAT_PKCS7);
  T_EQ_STR(S.sig.data_to_be_signed.mime_type, "application/x-sha256");
  T_EQ_STR(S.sig.data_to_be_signed.encoding, "base64");
  {
    gw_buf b;
    gw_buf_init(&b, 64);
    mss_base64_encode(DIGEST, 32, &b);
    snprintf(b64, sizeof(b64), "%s", b.data);
    gw_buf_free(&b);
  }
  T_EQ_STR(S.sig.data_to_be_signed.data, b64);
  T_EQ_INT(S.sig.has_data_to_be_displayed, 1);
  T_EQ_STR(S.sig.data_to_be_displayed.mime_type, "text/plain");
  T_EQ_STR(S.sig.data_to_be_displayed.data, "Sign in to Demo RP: code 1462");
  T_EQ_STR(S.status.mssp_trans_id, "M1");
  T_EQ_STR(S.status.msisdn, "+96899000001");
  T_EQ_STR(S.status.mssp_info.id, "http://mssp.fake/omantel");
  T_EQ_STR(S.status.ap_info.ap_pwd, AP_PWD);
  /* every message had its own AP_TransID, each an NCName of <= 32 */
  T_EQ_INT(S.ntids, 5);
  for (int i = 0; i < S.ntids; i++) {
    T_ASSERT(mss_ncname_valid(S.tids[i], 32));
    for (int j = 0; j < i; j++) {
      T_ASSERT(strcmp(S.tids[i], S.tids[j]) != 0);
    }
  }
  /* pacing: first query >= poll_first_ms after accept, then >= interval */
  T_ASSERT(S.t_status[0] - S.t_sig >= 45);
  for (int i = 1; i < 4; i++) {
    T_ASSERT(S.t_status[i] - S.t_status[i - 1] >= 25);
  }
  T_EQ_INT(op_http_pending(e.http), 0);
  env_down(&e);
}

/* op_follow called later (not from the callback); text/xml accepted; a
 * per-request TimeOut; no display text. */
static void t_follow_later(void) {
  env e;
  seen s;
  op_sign_req rq = {"+96892000001", DIGEST, NULL, 33};

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  S.sig_bad = BAD_TEXT_XML;
  memset(&s, 0, sizeof(s));
  T_EQ_INT(op_submit(e.om, e.http, &rq, on_result, &s, &s.t), GW_OK);
  T_ASSERT(run_until(e.base, &s.accepted, 1, 3000));
  run_for(e.base, 100);
  T_EQ_INT(S.nstatus, 0); /* not following yet: no polling */
  T_EQ_INT(s.final, 0);
  T_EQ_INT(op_follow(s.t, on_result, &s), GW_OK);
  T_EQ_INT(op_follow(s.t, on_result, &s), GW_ERR_INVALID); /* twice */
  T_ASSERT(run_until(e.base, &s.final, 1, 3000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  T_EQ_INT(S.sig.timeout, 33);
  T_EQ_INT(S.sig.has_data_to_be_displayed, 0);
  env_down(&e);
}

static void t_submit_checks(void) {
  env e;
  seen s;
  op_txn *t = NULL;
  op_sign_req rq = {"+96899000001", DIGEST, "x", 0};
  char big[5000];

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  memset(&s, 0, sizeof(s));
  rq.msisdn = "99000001"; /* must be normalised by the caller */
  T_EQ_INT(op_submit(e.om, e.http, &rq, on_result, &s, &t), GW_ERR_INVALID);
  rq.msisdn = "+96899000001";
  rq.digest = NULL;
  T_EQ_INT(op_submit(e.om, e.http, &rq, on_result, &s, &t), GW_ERR_INVALID);
  rq.digest = DIGEST;
  T_EQ_INT(op_submit(e.om, e.http, &rq, NULL, &s, &t), GW_ERR_INVALID);
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  rq.display_text = big; /* over the data element's cap */
  T_EQ_INT(op_submit(e.om, e.http, &rq, on_result, &s, &t), GW_ERR_INVALID);
  T_ASSERT(t == NULL);
  run_for(e.base, 50);
  T_EQ_INT(S.nsig, 0);
  T_EQ_INT(s.final + s.accepted, 0);
  env_down(&e);
}

/* ---- tests: outcomes from faults
 * ---------------------------------------------------------- */

typedef struct fault_case {
  int at_submit; /* the fault answers MSS_Signature, else a status query */
  int code;
  const char *detail;
  op_outcome want;
} fault_case;

static void t_fault_outcomes(void) {
  static const fault_case cases[] = {
      {0, 401, NULL, OP_USER_CANCELLED},
      {0, 208, NULL, OP_TIMED_OUT},
      {0, 402, NULL, OP_PIN_BLOCKED},
      {0, 403, "4031 PUK blocked", OP_PIN_BLOCKED},
      {0, 209, NULL, OP_PHONE_ABSENT},
      {0, 900, "9003 SIM application error", OP_SIM_ERROR},
      {0, 900, NULL, OP_OPERATOR_ERROR},
      {0, 422, NULL, OP_NOT_SUBSCRIBER},
      {0, 101, "unknown MSSP_TransID", OP_OPERATOR_ERROR},
      {1, 105, NULL, OP_NOT_SUBSCRIBER},
      {1, 404, NULL, OP_NOT_SUBSCRIBER},
      {1, 104, NULL, OP_OPERATOR_ERROR},
      {1, 101, "replay", OP_OPERATOR_ERROR},
      {1, 107, NULL, OP_OPERATOR_ERROR},
      {1, 406, NULL, OP_OPERATOR_ERROR},
      {1, 900, NULL, OP_OPERATOR_ERROR},
  };
  env e;
  seen s;

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const fault_case *c = &cases[i];
    int nsig = S.nsig, nstatus = S.nstatus;

    S.sig_fault = c->at_submit ? c->code : 0;
    S.final_code = c->code;
    S.final_detail = c->detail;
    S.n504 = 1;
    S.nstatus = 0;
    if (!sign(&e, "+96899000001", &s, 3000)) {
      printf("#   case %zu: no final answer\n", i);
      t_case_failed = 1;
      continue;
    }
    if (s.fin.outcome != c->want || s.fin.etsi_status != c->code ||
        s.accepted != !c->at_submit) {
      printf("#   case %zu (%s %d %s): %s etsi %d accepted %d; %s\n", i,
             c->at_submit ? "submit" : "status", c->code,
             c->detail ? c->detail : "", op_outcome_name(s.fin.outcome),
             s.fin.etsi_status, s.accepted, s.fin.detail);
      t_case_failed = 1;
    }
    if (!strstr(s.fin.detail, mss_status_name(c->code))) {
      printf("#   case %zu: detail \"%s\" lacks the ETSI name\n", i,
             s.fin.detail);
      t_case_failed = 1;
    }
    (void)nsig;
    (void)nstatus;
  }
  /* final statuses that are not faults */
  S.sig_fault = 0;
  S.final_detail = NULL;
  S.final_code = 501;
  S.nstatus = 0;
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  T_EQ_INT(s.fin.outcome, OP_NOT_SUBSCRIBER);
  T_EQ_INT(s.fin.etsi_status, 501);
  S.final_code = 503;
  S.nstatus = 0;
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_ERROR);
  S.final_code = 502;
  S.nstatus = 0;
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  /* 500 without a signature is nonsense */
  S.final_code = 500;
  S.final_no_sig = 1;
  S.nstatus = 0;
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_ERROR);
  T_ASSERT(strstr(s.fin.detail, "without a usable signature") != NULL);
  env_down(&e);
}

/* ---- tests: unusable answers
 * ----------------------------------------------------------------- */

static void t_bad_answers_to_submit(void) {
  static const struct {
    bad_kind k;
    op_outcome want;
  } cases[] = {
      {BAD_HTML, OP_OPERATOR_ERROR},        {BAD_XML, OP_OPERATOR_ERROR},
      {BAD_WRONG_MSG, OP_OPERATOR_ERROR},   {BAD_BIG, OP_OPERATOR_ERROR},
      {BAD_GARBAGE, OP_OPERATOR_ERROR},     {BAD_503, OP_OPERATOR_UNAVAILABLE},
      {BAD_CLOSE, OP_OPERATOR_UNAVAILABLE},
  };
  env e;
  seen s;

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int nsig = S.nsig;
    S.sig_bad = cases[i].k;
    if (!sign(&e, "+96899000001", &s, 3000)) {
      printf("#   case %zu: no final answer\n", i);
      t_case_failed = 1;
      continue;
    }
    if (s.fin.outcome != cases[i].want || s.accepted) {
      printf("#   case %zu: %s (%s)\n", i, op_outcome_name(s.fin.outcome),
             s.fin.detail);
      t_case_failed = 1;
    }
    /* The request reached the MSSP: never sent twice (a second request
     * would ring the phone twice). */
    if (S.nsig != nsig + 1) {
      printf("#   case %zu: %d signature requests\n", i, S.nsig - nsig);
      t_case_failed = 1;
    }
  }
  /* REQUEST_OK without an MSSP_TransID */
  S.sig_bad = BAD_NONE;
  S.sig_no_id = 1;
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_ERROR);
  T_ASSERT(strstr(s.fin.detail, "MSSP_TransID") != NULL ||
           strstr(s.fin.detail, "not a valid") != NULL);
  env_down(&e);
}

/* Status queries are retried: two bad answers in a row are tolerated
 * (status_retries = 2); bad answers for ever end the transaction after the
 * third. (A connection closed without an answer may also be retried by
 * libcurl itself, on a fresh connection: status queries are idempotent.) */
static void t_status_retries(void) {
  static const struct {
    bad_kind k;
    op_outcome last;
  } cases[] = {
      {BAD_CLOSE, OP_OPERATOR_UNAVAILABLE}, {BAD_503, OP_OPERATOR_UNAVAILABLE},
      {BAD_XML, OP_OPERATOR_ERROR},         {BAD_HTML, OP_OPERATOR_ERROR},
      {BAD_BIG, OP_OPERATOR_ERROR},         {BAD_GARBAGE, OP_OPERATOR_ERROR},
      {BAD_WRONG_MSG, OP_OPERATOR_ERROR},
  };
  env e;
  seen s;

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    S.status_bad = cases[i].k;
    S.status_bad_n = 2;
    S.n504 = 1;
    S.nstatus = 0;
    T_ASSERT(sign(&e, "+96899000001", &s, 5000));
    if (s.fin.outcome != OP_SIGNED ||
        (cases[i].k != BAD_CLOSE && S.nstatus != 4)) {
      printf("#   case %zu: recovered? %s after %d queries (%s)\n", i,
             op_outcome_name(s.fin.outcome), S.nstatus, s.fin.detail);
      t_case_failed = 1;
    }
    S.status_bad_n = 1000;
    S.nstatus = 0;
    T_ASSERT(sign(&e, "+96899000001", &s, 5000));
    if (s.fin.outcome != cases[i].last ||
        (cases[i].k != BAD_CLOSE && S.nstatus != 3)) {
      printf("#   case %zu: gave up? %s after %d queries (%s)\n", i,
             op_outcome_name(s.fin.outcome), S.nstatus, s.fin.detail);
      t_case_failed = 1;
    }
    T_ASSERT(strstr(s.fin.detail, "3 status queries failed") != NULL);
  }
  env_down(&e);
}

/* ---- tests: slow, down, deadline
 * ------------------------------------------------------------ */

static void t_slow_mssp(void) {
  env e;
  seen s;

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  /* slow but within http_timeout_ms (1000): fine */
  S.delay_ms = 300;
  S.n504 = 1;
  T_ASSERT(sign(&e, "+96899000001", &s, 5000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  T_ASSERT(s.t_fin - s.t_acc >= 550);
  /* slower than http_timeout_ms on the signature request: unavailable,
   * and not sent again (it was sent) */
  S.delay_ms = 1500;
  S.nsig = 0;
  T_ASSERT(sign(&e, "+96899000001", &s, 5000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_UNAVAILABLE);
  T_ASSERT(strstr(s.fin.detail, "timeout") != NULL);
  T_EQ_INT(S.nsig, 1);
  env_down(&e);
}

static void short_timeout(gw_config *c) {
  c->op_omantel.timeout_s = 1;
  c->op_omantel.poll_interval_ms = 100;
}

/* An MSSP that says 504 for ever: the adapter's own deadline (TimeOut + two
 * intervals + 1 s) ends it as timed_out. */
static void t_deadline(void) {
  env e;
  seen s;

  if (env_up(&e, short_timeout) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  S.n504 = -1;
  T_ASSERT(sign(&e, "+96899000001", &s, 6000));
  T_EQ_INT(s.fin.outcome, OP_TIMED_OUT);
  T_EQ_INT(s.fin.etsi_status, 0);
  T_ASSERT(strstr(s.fin.detail, "TimeOut 1 s") != NULL);
  T_ASSERT(s.t_fin - s.t_acc >= 2100 && s.t_fin - s.t_acc < 3500);
  env_down(&e);
}

static void with_breaker(gw_config *c) {
  c->op_omantel.breaker_failures = 3;
  c->op_omantel.breaker_cooldown_ms = 400;
}

/* The MSSP down: connection refused -> operator_unavailable; after 3
 * failures the breaker opens and answers at once, without the network;
 * after the cool-down one probe goes, and a live MSSP closes it again. */
static void t_down_and_breaker(void) {
  env e;
  seen s;
  op_health h;
  gw_buf m;
  int port;
  double t0;
  uint64_t reqs;

  if (env_up(&e, with_breaker) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  /* kill the MSSP: its port refuses connections now */
  port = e.srv.port;
  fs_stop(&e.srv);
  e.srv_up = 0;

  /* the first submit: refused, re-sent once (nothing was sent), refused:
   * two failures */
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_UNAVAILABLE);
  T_ASSERT(strstr(s.fin.detail, "connect") != NULL);
  T_EQ_INT(s.fin.etsi_status, 0);
  op_health_get(e.om, &h);
  T_EQ_INT(h.breaker_state, OP_BREAKER_CLOSED);
  T_EQ_INT(h.consecutive_failures, 2);
  /* the second: one more failure opens it */
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_UNAVAILABLE);
  op_health_get(e.om, &h);
  T_EQ_INT(h.breaker_state, OP_BREAKER_OPEN);
  T_EQ_INT(h.available, 0);
  T_ASSERT(strstr(h.detail, "circuit breaker open") != NULL);

  /* open: fail fast, no HTTP request */
  reqs = atomic_load(&e.om->m.requests[OP_REQ_SIGNATURE]);
  t0 = fs_now_ms();
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_UNAVAILABLE);
  T_ASSERT(strstr(s.fin.detail, "circuit breaker open") != NULL);
  T_ASSERT(fs_now_ms() - t0 < 100);
  T_EQ_INT(atomic_load(&e.om->m.requests[OP_REQ_SIGNATURE]), reqs);
  T_EQ_INT(op_receipt(e.om, e.http,
                      &(op_receipt_req){"+96899000001", "M1", "hi"}, NULL,
                      NULL),
           GW_ERR_BUSY);

  /* the MSSP comes back on the same port; after the cool-down a probe
   * goes through and closes the breaker */
  {
    struct sockaddr_in a;
    int one = 1;
    memset(&S, 0, sizeof(S));
    S.final_code = 500;
    S.n504 = 0;
    memset(&e.srv, 0, sizeof(e.srv));
    e.srv.handler = h_mssp;
    pthread_mutex_init(&e.srv.mu, NULL);
    e.srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(e.srv.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    T_EQ_INT(bind(e.srv.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    T_EQ_INT(listen(e.srv.lfd, 64), 0);
    e.srv.port = port;
    pthread_create(&e.srv.accept_thread, NULL, fs_accept_main, &e.srv);
    e.srv_up = 1;
  }
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_UNAVAILABLE); /* still cooling down */
  T_EQ_INT(S.nsig, 0);
  run_for(e.base, 450);
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  T_EQ_INT(s.fin.outcome, OP_SIGNED);
  op_health_get(e.om, &h);
  T_EQ_INT(h.breaker_state, OP_BREAKER_CLOSED);
  T_EQ_INT(h.available, 1);

  gw_buf_init(&m, 1 << 20);
  T_EQ_INT(op_registry_metrics(e.reg, &m), GW_OK);
  if (getenv("SHOW_METRICS")) {
    printf("%s", m.data);
  }
  T_ASSERT(strstr(m.data, "mpkigw_operator_breaker_opened_total{operator="
                          "\"omantel\"} 1\n") != NULL);
  /* the fail-fast submit, the re-send refused when it opened, the
   * receipt, the submit during the cool-down */
  T_ASSERT(strstr(m.data, "mpkigw_operator_breaker_rejected_total{operator="
                          "\"omantel\"} 4\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_breaker_state{operator="
                          "\"omantel\"} 0\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_http_failures_total{operator="
                          "\"omantel\",kind=\"connect\"} 3\n") != NULL);
  gw_buf_free(&m);
  env_down(&e);
}

/* A connect that cannot complete (a full accept queue) is "nothing sent":
 * the signature request is tried twice (two connect timeouts), then
 * operator_unavailable. */
static void t_resend_only_unsent(void) {
  env e;
  seen s;
  struct sockaddr_in a;
  socklen_t al = sizeof(a);
  int lfd, fill[4];
  char url[128];
  double t0;

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(lfd, (struct sockaddr *)&a, sizeof(a));
  listen(lfd, 0);
  getsockname(lfd, (struct sockaddr *)&a, &al);
  for (int i = 0; i < 4; i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fill[i], (struct sockaddr *)&a, sizeof(a));
  }
  usleep(100000);
  /* a second registry whose Omantel URL is that port */
  op_http_del(e.http);
  op_registry_del(e.reg);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/soap/services",
           ntohs(a.sin_port));
  set_str(&e.cfg->op_omantel.url, url);
  e.cfg->op_omantel.connect_timeout_ms = 300;
  e.cfg->op_omantel.http_timeout_ms = 5000;
  {
    char err[256];
    e.http = NULL;
    T_EQ_INT(op_registry_new(&e.reg, e.cfg, err, sizeof(err)), GW_OK);
    T_EQ_INT(op_registry_http_new(e.reg, e.base, &e.http), GW_OK);
    e.om = op_registry_get(e.reg, "omantel");
  }
  t0 = fs_now_ms();
  T_ASSERT(sign(&e, "+96899000001", &s, 5000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_UNAVAILABLE);
  T_ASSERT(fs_now_ms() - t0 >= 580 && fs_now_ms() - t0 < 2000);
  T_EQ_INT(atomic_load(&e.om->m.requests[OP_REQ_SIGNATURE]), 2);
  for (int i = 0; i < 4; i++) {
    close(fill[i]);
  }
  close(lfd);
  env_down(&e);
}

/* ---- tests: cancellation
 * -------------------------------------------------------------------- */

static void t_cancel(void) {
  env e;
  seen s;
  op_sign_req rq = {"+96899000001", DIGEST, "x", 0};
  gw_buf m;
  int n;

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  S.n504 = -1;
  /* while waiting between polls */
  T_ASSERT(!sign(&e, "+96899000001", &s, 200));
  T_EQ_INT(s.accepted, 1);
  T_ASSERT(S.nstatus >= 2);
  op_cancel(s.t);
  n = S.nstatus;
  run_for(e.base, 200);
  T_EQ_INT(S.nstatus, n); /* polling stopped */
  T_EQ_INT(s.final, 0);
  T_EQ_INT(atomic_load(&e.om->m.inflight), 0);

  /* while a status query is in flight (the MSSP is slow) */
  S.delay_ms = 300;
  memset(&s, 0, sizeof(s));
  s.autofollow = 1;
  T_EQ_INT(op_submit(e.om, e.http, &rq, on_result, &s, &s.t), GW_OK);
  T_ASSERT(run_until(e.base, &s.accepted, 1, 3000));
  n = S.nstatus;
  run_for(e.base, 150); /* poll_first 50 ms: a query is on its way */
  T_EQ_INT(op_http_pending(e.http), 1);
  op_cancel(s.t);
  T_EQ_INT(op_http_pending(e.http), 0);
  run_for(e.base, 600);
  T_EQ_INT(s.final, 0);
  T_ASSERT(S.nstatus <= n + 1);

  /* while the signature request is in flight */
  memset(&s, 0, sizeof(s));
  T_EQ_INT(op_submit(e.om, e.http, &rq, on_result, &s, &s.t), GW_OK);
  run_for(e.base, 50);
  op_cancel(s.t);
  run_for(e.base, 500);
  T_EQ_INT(s.accepted + s.final, 0);
  S.delay_ms = 0;

  /* from the ACCEPTED callback */
  memset(&s, 0, sizeof(s));
  s.cancel_on_accept = 1;
  T_EQ_INT(op_submit(e.om, e.http, &rq, on_result, &s, &s.t), GW_OK);
  T_ASSERT(run_until(e.base, &s.accepted, 1, 3000));
  run_for(e.base, 200);
  T_EQ_INT(s.final, 0);
  T_EQ_INT(op_follow(NULL, on_result, &s), GW_ERR_INVALID);

  /* right after submit, before the loop ran */
  memset(&s, 0, sizeof(s));
  T_EQ_INT(op_submit(e.om, e.http, &rq, on_result, &s, &s.t), GW_OK);
  op_cancel(s.t);
  run_for(e.base, 100);
  T_EQ_INT(s.accepted + s.final, 0);
  op_cancel(NULL);

  T_EQ_INT(atomic_load(&e.om->m.inflight), 0);
  gw_buf_init(&m, 1 << 20);
  op_registry_metrics(e.reg, &m);
  T_ASSERT(strstr(m.data, "mpkigw_operator_cancelled_total{operator="
                          "\"omantel\"} 5\n") != NULL);
  gw_buf_free(&m);
  env_down(&e);
}

/* ---- tests: Ooredoo stand-in, unconfigured Omantel
 * ------------------------------------------ */

static void no_ap(gw_config *c) {
  set_str(&c->op_omantel.ap_id, "");
}

static void t_unavailable_adapters(void) {
  env e;
  seen s;
  op_sign_req rq = {"+96895000001", DIGEST, "x", 0};
  op_adapter *oo;
  op_route_result res;

  if (env_up(&e, no_ap) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  T_EQ_INT(op_registry_route(e.reg, "95000001", &res, &oo), OP_ROUTE_OK);
  memset(&s, 0, sizeof(s));
  T_EQ_INT(op_submit(oo, e.http, &rq, on_result, &s, &s.t), GW_OK);
  T_EQ_INT(s.final, 0); /* never inside submit */
  T_ASSERT(run_until(e.base, &s.final, 1, 1000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_UNAVAILABLE);
  T_EQ_INT(s.accepted, 0);
  T_ASSERT(strstr(s.fin.detail, "operators.ooredoo.ap_id is empty") != NULL);
  T_EQ_INT(op_receipt(oo, e.http, &(op_receipt_req){"+96895000001", "X", NULL},
                      NULL, NULL),
           GW_ERR_BUSY);
  /* cancel before its answer */
  memset(&s, 0, sizeof(s));
  T_EQ_INT(op_submit(oo, e.http, &rq, on_result, &s, &s.t), GW_OK);
  op_cancel(s.t);
  run_for(e.base, 50);
  T_EQ_INT(s.final, 0);

  /* Omantel without an AP_ID */
  T_ASSERT(sign(&e, "+96899000001", &s, 1000));
  T_EQ_INT(s.fin.outcome, OP_OPERATOR_UNAVAILABLE);
  T_ASSERT(strstr(s.fin.detail, "ap_id is empty") != NULL);
  T_EQ_INT(S.nsig, 0);
  env_down(&e);
}

/* ---- tests: receipts, metrics, secrets
 * -------------------------------------------------------- */

typedef struct rseen {
  int n, ok, code;
  char detail[256];
} rseen;

static void on_receipt(void *arg, int ok, int code, const char *detail) {
  rseen *r = arg;
  r->n++;
  r->ok = ok;
  r->code = code;
  snprintf(r->detail, sizeof(r->detail), "%s", detail);
}

static void t_receipt(void) {
  env e;
  rseen r = {0};
  op_receipt_req rq = {"+96899000001", "M7", "Signed in to Demo RP"};

  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  T_EQ_INT(op_receipt(e.om, e.http, &rq, on_receipt, &r), GW_OK);
  T_ASSERT(run_until(e.base, &r.n, 1, 3000));
  T_EQ_INT(r.ok, 1);
  T_EQ_INT(r.code, 100);
  T_EQ_INT(S.nreceipt, 1);
  T_EQ_STR(S.receipt.mssp_trans_id, "M7");
  T_EQ_STR(S.receipt.msisdn, "+96899000001");
  T_EQ_INT(S.receipt.has_message, 1);
  T_EQ_STR(S.receipt.message.data, "Signed in to Demo RP");
  T_EQ_STR(S.receipt.ap_info.ap_pwd, AP_PWD);
  S.receipt_fault = 101;
  T_EQ_INT(op_receipt(e.om, e.http, &rq, on_receipt, &r), GW_OK);
  T_ASSERT(run_until(e.base, &r.n, 2, 3000));
  T_EQ_INT(r.ok, 0);
  T_EQ_INT(r.code, 101);
  /* fire and forget, and one left in flight when the loop's client is
   * freed (no leak: see the sanitizer build) */
  S.receipt_fault = 0;
  S.delay_ms = 2000;
  T_EQ_INT(op_receipt(e.om, e.http, &rq, NULL, NULL), GW_OK);
  run_for(e.base, 100);
  T_EQ_INT(
      op_receipt(e.om, e.http, &(op_receipt_req){NULL, "M7", NULL}, NULL, NULL),
      GW_ERR_INVALID);
  env_down(&e);
}

static void t_metrics_and_log(void) {
  env e;
  seen s;
  gw_buf m;
  char path[] = "/tmp/op_omantel_log.XXXXXX";
  int fd = mkstemp(path);
  FILE *f;
  char *log = NULL;
  size_t n = 0;

  if (fd >= 0) {
    close(fd);
  }
  gw_log_open(path, GW_LOG_DEBUG);
  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    return;
  }
  S.n504 = 1;
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  S.sig_fault = 401;
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  S.sig_fault = 0;
  S.sig_bad = BAD_HTML;
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  gw_buf_init(&m, 1 << 20);
  T_EQ_INT(op_registry_metrics(e.reg, &m), GW_OK);
  T_ASSERT(strstr(m.data, "mpkigw_operator_transactions_total{operator="
                          "\"omantel\"} 3\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_outcomes_total{operator="
                          "\"omantel\",outcome=\"signed\"} 1\n") != NULL);
  T_ASSERT(strstr(m.data,
                  "mpkigw_operator_outcomes_total{operator="
                  "\"omantel\",outcome=\"user_cancelled\"} 1\n") != NULL);
  T_ASSERT(strstr(m.data,
                  "mpkigw_operator_outcomes_total{operator="
                  "\"omantel\",outcome=\"operator_error\"} 1\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_requests_total{operator="
                          "\"omantel\",kind=\"signature\"} 3\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_requests_total{operator="
                          "\"omantel\",kind=\"status\"} 2\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_latency_seconds_count{operator="
                          "\"omantel\"} 3\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_latency_seconds_bucket{operator="
                          "\"omantel\",le=\"+Inf\"} 3\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_http_failures_total{operator="
                          "\"omantel\",kind=\"bad_answer\"} 1\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_inflight{operator=\"omantel\"} "
                          "0\n") != NULL);
  T_ASSERT(strstr(m.data, "mpkigw_operator_transactions_total{operator="
                          "\"ooredoo\"} 0\n") != NULL);
  T_ASSERT(strstr(m.data, "# TYPE mpkigw_operator_latency_seconds "
                          "histogram\n") != NULL);
  gw_buf_free(&m);
  env_down(&e);
  gw_log_close();
  /* the log says something about the bad answer, never the password */
  f = fopen(path, "r");
  if (f) {
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof(buf), f)) > 0) {
      char *p = realloc(log, n + k + 1);
      if (!p) {
        break;
      }
      log = p;
      memcpy(log + n, buf, k);
      n += k;
      log[n] = '\0';
    }
    fclose(f);
  }
  T_ASSERT(log && strstr(log, "operator answer unusable") != NULL);
  T_ASSERT(log && strstr(log, AP_PWD) == NULL);
  free(log);
  remove(path);
}

/* What the adapter sends validates against the ETSI schemas (envelope:
 * soap-envelope.xsd; the MSS_* element: MSS-plus.xsd). */
static void t_schema_valid(void) {
  const char *dir = "../shared/specs/etsi-ts-102-204";
  mss_soap_schema *sch = NULL;
  env e;
  seen s;
  rseen r = {0};
  char err[512];
  op_receipt_req rq = {"+96899000001", "M1",
                       "Signed in: \xd8\xb4\xd9\x83\xd8\xb1\xd8\xa7"};

  if (mss_soap_schema_new(&sch, dir) != GW_OK) {
    printf("# skip: schemas not found in %s\n", dir);
    return;
  }
  if (env_up(&e, NULL) != 0) {
    T_ASSERT(0);
    env_down(&e);
    mss_soap_schema_del(sch);
    return;
  }
  S.n504 = 1;
  T_ASSERT(sign(&e, "+96899000001", &s, 3000));
  T_EQ_INT(op_receipt(e.om, e.http, &rq, on_receipt, &r), GW_OK);
  T_ASSERT(run_until(e.base, &r.n, 1, 3000));
  T_ASSERT(S.raw_sig && S.raw_status && S.raw_receipt);
  if (S.raw_sig && S.raw_status && S.raw_receipt) {
    const char *docs[] = {S.raw_sig, S.raw_status, S.raw_receipt};
    for (int i = 0; i < 3; i++) {
      err[0] = '\0';
      if (mss_soap_schema_validate(sch, docs[i], strlen(docs[i]), err,
                                   sizeof(err)) != GW_OK) {
        printf("#   document %d invalid: %s\n", i, err);
        t_case_failed = 1;
      }
    }
  }
  env_down(&e);
  mss_soap_schema_del(sch);
}

int main(void) {
  mss_soap_init();
  op_http_global_init();
  gw_log_open(NULL, GW_LOG_ERROR);
  T_RUN(t_outcome_names);
  T_RUN(t_etsi_mapping);
  T_RUN_CHILD(t_registry_routes);
  T_RUN_CHILD(t_registry_errors);
  T_RUN_CHILD(t_signed_after_polling);
  T_RUN_CHILD(t_follow_later);
  T_RUN_CHILD(t_submit_checks);
  T_RUN_CHILD(t_fault_outcomes);
  T_RUN_CHILD(t_bad_answers_to_submit);
  T_RUN_CHILD(t_status_retries);
  T_RUN_CHILD(t_slow_mssp);
  T_RUN_CHILD(t_deadline);
  T_RUN_CHILD(t_down_and_breaker);
  T_RUN_CHILD(t_resend_only_unsent);
  T_RUN_CHILD(t_cancel);
  T_RUN_CHILD(t_unavailable_adapters);
  T_RUN_CHILD(t_receipt);
  T_RUN_CHILD(t_metrics_and_log);
  T_RUN_CHILD(t_schema_valid);
  return T_DONE();
}
