/* op_omantel.c — the Omantel adapter: ETSI TS 102 204 over SOAP 1.2,
 * asynchronous client-server mode.
 *
 *   submit   MSS_Signature (DataToBeSigned application/x-sha256, base64 of
 *            the caller's digest; DataToBeDisplayed text/plain; MSS_Format
 *            PKCS7; TimeOut) to <url>/MSS_SignaturePort. 100 REQUEST_OK with
 *            an MSSP_TransID = ACCEPTED; a fault = FINAL.
 *   follow   MSS_StatusQuery to <url>/MSS_StatusQueryPort poll_first_ms
 *            after, then every poll_interval_ms: 504 goes on; 500 SIGNATURE
 *            ends with the PKCS#7; a fault ends with its outcome. The
 *            adapter's own deadline is TimeOut + two intervals + 1 s.
 *   receipt  MSS_Receipt to <url>/MSS_ReceiptPort.
 *
 * Retries only where safe: a status query that got no usable answer is
 * asked again at the next interval, up to status_retries times in a row; a
 * signature request is sent again (once) only when the connection failed
 * before any byte went out, since a second MSS_Signature would push a
 * second request to the user's phone. Every message carries a fresh
 * AP_TransID (the MSSP refuses a repeated one as a replay).
 *
 * Every exchange asks the breaker first and tells it the verdict: a SOAP
 * message or SOAP fault is a success (the MSSP is up, even when the user
 * refused); no answer, a 5xx without a fault, or an answer that is not SOAP
 * is a failure. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "mss.h"
#include "mss_soap.h"
#include "op_adapter_int.h"

#define PATH_SIG "/MSS_SignaturePort"
#define PATH_STATUS "/MSS_StatusQueryPort"
#define PATH_RECEIPT "/MSS_ReceiptPort"
#define SUBMIT_RESENDS 1    /* re-sends of a signature request never sent */
#define MSG_CAP (64 * 1024) /* a request we build (display text <= 4 KiB) */

typedef struct om_adapter {
  op_adapter base;
  char *url_sig, *url_status, *url_receipt;
  char ap_id[MSS_URI_MAX + 1];
  char ap_pwd[MSS_PWD_MAX + 1]; /* wiped on destroy */
  int poll_first_ms;
  int poll_interval_ms;
  int timeout_s;
  int connect_timeout_ms;
  int http_timeout_ms;
  int status_retries;
  size_t max_response;
  _Atomic uint64_t last_warn_ns; /* rate limit of "bad answer" lines */
} om_adapter;

typedef enum om_phase {
  OM_SUBMIT = 0, /* MSS_Signature in flight */
  OM_ACCEPTED,   /* waiting for op_follow */
  OM_POLL_WAIT,  /* timer armed for the next status query */
  OM_POLLING     /* MSS_StatusQuery in flight */
} om_phase;

typedef struct om_txn {
  op_txn base;
  om_adapter *om;
  om_phase phase;
  op_http_req *req; /* the exchange in flight */
  int permit;       /* |req| holds a breaker permit */
  struct event *timer;
  gw_buf sig_body; /* the MSS_Signature, kept for a re-send */
  int resends;
  int poll_failures;
  int timeout_s;
  uint64_t deadline_ns;
  char mssp_id[MSS_URI_MAX + 1]; /* MSSP_ID of the answer, echoed */
} om_txn;

/* Which answer an exchange wants. */
typedef enum ans_kind {
  ANS_MSG = 0,    /* the message, parsed */
  ANS_FAULT,      /* a SOAP fault, parsed */
  ANS_BAD,        /* an answer, but not one we can use: operator_error */
  ANS_UNAVAILABLE /* no answer at all, or a 5xx without a fault */
} ans_kind;

static const char *const ans_names[] = {"message", "fault", "bad answer",
                                        "no answer"};

/* ---- helpers
 * --------------------------------------------------------------------- */

static char *join(const char *base, const char *path) {
  size_t bl = strlen(base), pl = strlen(path);
  char *s;

  while (bl > 0 && base[bl - 1] == '/') {
    bl--;
  }
  s = malloc(bl + pl + 1);
  if (s) {
    memcpy(s, base, bl);
    memcpy(s + bl, path, pl + 1);
  }
  return s;
}

/* A warning at most once a second per adapter: a broken MSSP answers every
 * poll of every transaction the same way. */
static int warn_ok(om_adapter *om) {
  uint64_t now = op_now_ns(), last = atomic_load(&om->last_warn_ns);

  if (now - last < 1000000000u) {
    return 0;
  }
  return atomic_compare_exchange_strong(&om->last_warn_ns, &last, now);
}

/* 1 when |ct| is a SOAP 1.2 (application/soap+xml) or SOAP 1.1-era
 * (text/xml) content type, parameters allowed. */
static int soap_type(const char *ct) {
  static const char *const ok[] = {"application/soap+xml", "text/xml"};

  if (!ct) {
    return 0;
  }
  while (*ct == ' ') {
    ct++;
  }
  for (size_t i = 0; i < 2; i++) {
    size_t n = strlen(ok[i]);
    if (strncasecmp(ct, ok[i], n) == 0 &&
        (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ')) {
      return 1;
    }
  }
  return 0;
}

/* The FiCom 4-digit specifier in a fault's Detail (e.g. "9003 SIM
 * Application error" under 900), or 0. */
static int fault_detail_code(const mss_fault *f) {
  const char *p = f->detail;

  for (; *p; p++) {
    if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
        isdigit((unsigned char)p[2]) && isdigit((unsigned char)p[3]) &&
        !isdigit((unsigned char)p[4]) &&
        (p == f->detail || !isdigit((unsigned char)p[-1]))) {
      int d = atoi(p);
      return d / 10 == f->subcode ? d : 0;
    }
  }
  return 0;
}

static void fill_ap_info(om_adapter *om, mss_ap_info *ai,
                         const char *trans_id) {
  snprintf(ai->ap_id, sizeof(ai->ap_id), "%s", om->ap_id);
  snprintf(ai->ap_pwd, sizeof(ai->ap_pwd), "%s", om->ap_pwd);
  snprintf(ai->ap_trans_id, sizeof(ai->ap_trans_id), "%s", trans_id);
  mss_instant_format(time(NULL), ai->instant, sizeof(ai->instant));
}

/* Reads an HTTP answer as the SOAP message |want| (|msg| of that type) or
 * a fault. Writes a reason to |detail| unless ANS_MSG. */
static ans_kind read_answer(const op_http_result *res, mss_msg want, void *msg,
                            mss_fault *fault, char *detail, size_t dn) {
  int rv, server_err = res->http_status >= 500;

  if (res->status != OP_HTTP_DONE) {
    snprintf(detail, dn, "no answer from the MSSP (%s: %s)",
             op_http_status_str(res->status), res->error);
    return res->status == OP_HTTP_TOO_LARGE || res->status == OP_HTTP_PROTO
               ? ANS_BAD
               : ANS_UNAVAILABLE;
  }
  if (res->body_len == 0) {
    snprintf(detail, dn, "HTTP %ld without a body", res->http_status);
    return server_err ? ANS_UNAVAILABLE : ANS_BAD;
  }
  if (!soap_type(res->content_type)) {
    snprintf(detail, dn, "HTTP %ld with content type %.80s, not SOAP",
             res->http_status,
             res->content_type ? res->content_type : "(none)");
    return server_err ? ANS_UNAVAILABLE : ANS_BAD;
  }
  switch (want) {
  case MSS_MSG_SIGNATURE_RESP:
    rv = mss_soap_parse_signature_resp(res->body, res->body_len, msg, fault);
    break;
  case MSS_MSG_STATUS_RESP:
    rv = mss_soap_parse_status_resp(res->body, res->body_len, msg, fault);
    break;
  case MSS_MSG_RECEIPT_RESP:
    rv = mss_soap_parse_receipt_resp(res->body, res->body_len, msg, fault);
    break;
  default:
    rv = GW_ERR_INTERNAL;
    break;
  }
  if (rv == GW_OK) {
    return ANS_MSG;
  }
  if (rv == GW_ERR_PROTO) {
    return ANS_FAULT;
  }
  snprintf(detail, dn, "HTTP %ld: not a valid %s (%s%s%.160s)",
           res->http_status, mss_msg_name(want), gw_strerror(rv),
           rv == GW_ERR_INVALID && fault->detail[0] ? ": " : "",
           rv == GW_ERR_INVALID ? fault->detail : "");
  return server_err ? ANS_UNAVAILABLE : ANS_BAD;
}

/* Counts and reports an exchange's verdict to the breaker. */
static void judge(om_txn *t, ans_kind k, const op_http_result *res,
                  const char *detail) {
  om_adapter *om = t->om;

  if (t->permit) {
    op_adapter_report(&om->base, k == ANS_MSG || k == ANS_FAULT
                                     ? OP_BREAKER_SUCCESS
                                     : OP_BREAKER_FAILURE);
    t->permit = 0;
  }
  if (k == ANS_BAD || k == ANS_UNAVAILABLE) {
    op_adapter_count_failure(&om->base, res->status);
    if (warn_ok(om)) {
      char q[OP_DETAIL_MAX + 16];
      GW_LOG(GW_LOG_WARN, "operator answer unusable",
             "operator=%s ap_trans_id=%s kind=%s detail=%s", om->base.name,
             t->base.ap_trans_id, ans_names[k],
             gw_log_quote(q, sizeof(q), detail, strlen(detail)));
    }
  }
}

/* Ends |t| with |outcome|; |etsi| the operator's code or 0. */
static void finish(om_txn *t, op_outcome outcome, int etsi,
                   const char *detail) {
  op_result r;

  memset(&r, 0, sizeof(r));
  r.outcome = outcome;
  r.etsi_status = etsi;
  snprintf(r.detail, sizeof(r.detail), "%s", detail);
  op_txn_final(&t->base, &r);
}

static void finish_fault(om_txn *t, const mss_fault *f) {
  char detail[OP_DETAIL_MAX];
  int code = f->subcode;

  snprintf(detail, sizeof(detail), "fault %d %.64s%s%.160s", code,
           f->reason[0] ? f->reason : mss_status_name(code),
           f->detail[0] ? ": " : "", f->detail);
  finish(t,
         code > 0 ? op_outcome_from_etsi(code, fault_detail_code(f))
                  : OP_OPERATOR_ERROR,
         code, detail);
}

/* Ends |t| from a final status with its signature. */
static void finish_status(om_txn *t, const mss_status_info *st,
                          const mss_signature *sig) {
  char detail[OP_DETAIL_MAX];
  op_outcome o = op_outcome_from_etsi(st->code, 0);
  op_result r;

  snprintf(detail, sizeof(detail), "%d %.40s%s%.180s", st->code,
           mss_status_name(st->code), st->message[0] ? ": " : "", st->message);
  if (o != OP_SIGNED) {
    finish(t, o, st->code, detail);
    return;
  }
  if (!sig || (sig->kind != MSS_SIG_PKCS7 && sig->kind != MSS_SIG_PKCS1) ||
      sig->len == 0 || (sig->kind == MSS_SIG_PKCS1 && sig->cert_len == 0)) {
    snprintf(detail, sizeof(detail), "%d %s without a usable signature",
             st->code, mss_status_name(st->code));
    finish(t, OP_OPERATOR_ERROR, st->code, detail);
    return;
  }
  memset(&r, 0, sizeof(r));
  r.outcome = OP_SIGNED;
  r.etsi_status = st->code;
  r.sig_format = sig->kind == MSS_SIG_PKCS7 ? OP_SIG_PKCS7 : OP_SIG_PKCS1;
  r.signature = sig->sig;
  r.signature_len = sig->len;
  if (sig->kind == MSS_SIG_PKCS1) {
    r.certificate = sig->cert;
    r.certificate_len = sig->cert_len;
  }
  snprintf(r.detail, sizeof(r.detail), "%s", detail);
  op_txn_final(&t->base, &r);
}

static op_http_opts http_opts(om_adapter *om, const char *url,
                              const gw_buf *body) {
  op_http_opts o = {0};

  o.url = url;
  o.content_type = MSS_SOAP_CONTENT_TYPE;
  o.body = body->data;
  o.body_len = body->len;
  o.connect_timeout_ms = om->connect_timeout_ms;
  o.timeout_ms = om->http_timeout_ms;
  o.max_response = om->max_response;
  return o;
}

/* ---- the signature request
 * -------------------------------------------------------- */

static void on_sig_done(void *arg, const op_http_result *res);

/* Sends (or re-sends) the MSS_Signature. On failure ends |t| soon. */
static void send_signature(om_txn *t) {
  om_adapter *om = t->om;
  op_http_opts o;
  int rv;

  if (!op_adapter_allow(&om->base)) {
    op_txn_final_soon(&t->base, OP_OPERATOR_UNAVAILABLE, 0,
                      "circuit breaker open: the MSSP failed repeatedly");
    return;
  }
  t->permit = 1;
  o = http_opts(om, om->url_sig, &t->sig_body);
  /* Never on a reused connection: libcurl would silently send it again if
   * that connection turned out dead (op_http.h, fresh_connect). */
  o.fresh_connect = 1;
  rv = op_http_submit(t->base.http, &o, on_sig_done, t, &t->req);
  if (rv != GW_OK) {
    op_adapter_report(&om->base, OP_BREAKER_NEUTRAL);
    t->permit = 0;
    op_txn_final_soon(&t->base, OP_OPERATOR_ERROR, 0,
                      "could not start the HTTP request");
    return;
  }
  op_adapter_count_request(&om->base, OP_REQ_SIGNATURE);
}

static void on_sig_done(void *arg, const op_http_result *res) {
  om_txn *t = arg;
  om_adapter *om = t->om;
  mss_signature_resp *resp;
  mss_fault fault;
  char detail[OP_DETAIL_MAX] = "";
  ans_kind k;
  op_result r;

  t->req = NULL;
  resp = calloc(1, sizeof(*resp));
  if (!resp) {
    judge(t, ANS_UNAVAILABLE, res, "out of memory");
    finish(t, OP_OPERATOR_ERROR, 0, "out of memory");
    return;
  }
  memset(&fault, 0, sizeof(fault));
  k = read_answer(res, MSS_MSG_SIGNATURE_RESP, resp, &fault, detail,
                  sizeof(detail));
  judge(t, k, res, detail);
  switch (k) {
  case ANS_UNAVAILABLE:
    if (!res->sent && res->status == OP_HTTP_CONNECT &&
        t->resends < SUBMIT_RESENDS) {
      /* Nothing reached the MSSP: sending again cannot make a second
       * request on the phone. */
      t->resends++;
      free(resp);
      send_signature(t);
      return;
    }
    finish(t, OP_OPERATOR_UNAVAILABLE, 0, detail);
    break;
  case ANS_BAD:
    finish(t, OP_OPERATOR_ERROR, 0, detail);
    break;
  case ANS_FAULT:
    finish_fault(t, &fault);
    break;
  case ANS_MSG:
    if (resp->status.code == MSS_REQUEST_OK ||
        resp->status.code == MSS_OUTSTANDING_TRANSACTION) {
      if (resp->mssp_trans_id[0] == '\0') {
        judge(t, ANS_BAD, res, "no MSSP_TransID");
        finish(t, OP_OPERATOR_ERROR, resp->status.code,
               "REQUEST_OK without an MSSP_TransID");
        break;
      }
      snprintf(t->base.mssp_trans_id, sizeof(t->base.mssp_trans_id), "%s",
               resp->mssp_trans_id);
      snprintf(t->mssp_id, sizeof(t->mssp_id), "%s", resp->mssp_info.id);
      gw_buf_free(&t->sig_body);
      t->phase = OM_ACCEPTED;
      t->deadline_ns =
          op_now_ns() + ((uint64_t)t->timeout_s * 1000u +
                         2u * (uint64_t)om->poll_interval_ms + 1000u) *
                            1000000u;
      memset(&r, 0, sizeof(r));
      r.etsi_status = resp->status.code;
      snprintf(r.detail, sizeof(r.detail), "%d %s", resp->status.code,
               mss_status_name(resp->status.code));
      free(resp);
      op_txn_accepted(&t->base, &r); /* may free |t| */
      return;
    }
    /* A final answer at once (an MSSP that answers synchronously). */
    finish_status(t, &resp->status, &resp->signature);
    break;
  }
  free(resp);
}

/* ---- status queries
 * ----------------------------------------------------------------- */

static void on_status_done(void *arg, const op_http_result *res);

static void arm(om_txn *t, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

  t->phase = OM_POLL_WAIT;
  evtimer_add(t->timer, &tv);
}

/* A status query without a usable answer: again at the next interval, or
 * the end once status_retries are used up. */
static void poll_failed(om_txn *t, op_outcome o, const char *detail) {
  char d[OP_DETAIL_MAX];

  t->poll_failures++;
  if (t->poll_failures > t->om->status_retries) {
    snprintf(d, sizeof(d), "%d status queries failed in a row; last: %s",
             t->poll_failures, detail);
    finish(t, o, 0, d);
    return;
  }
  arm(t, t->om->poll_interval_ms);
}

static void send_status(om_txn *t) {
  om_adapter *om = t->om;
  mss_status_req q;
  gw_buf body;
  op_http_opts o;
  char tid[OP_TRANSID_MAX + 1];
  char d[96];
  int rv;

  if (op_now_ns() >= t->deadline_ns) {
    snprintf(d, sizeof(d), "no final answer within TimeOut %d s", t->timeout_s);
    finish(t, OP_TIMED_OUT, 0, d);
    return;
  }
  if (!op_adapter_allow(&om->base)) {
    poll_failed(t, OP_OPERATOR_UNAVAILABLE,
                "circuit breaker open: the MSSP failed repeatedly");
    return;
  }
  memset(&q, 0, sizeof(q));
  q.major_version = MSS_MAJOR_VERSION;
  q.minor_version = MSS_MINOR_VERSION;
  op_new_trans_id(tid);
  fill_ap_info(om, &q.ap_info, tid);
  snprintf(q.mssp_info.id, sizeof(q.mssp_info.id), "%s", t->mssp_id);
  snprintf(q.mssp_trans_id, sizeof(q.mssp_trans_id), "%s",
           t->base.mssp_trans_id);
  snprintf(q.msisdn, sizeof(q.msisdn), "%s", t->base.msisdn);
  gw_buf_init(&body, MSG_CAP);
  rv = mss_soap_build_status_req(&q, &body);
  OPENSSL_cleanse(q.ap_info.ap_pwd, sizeof(q.ap_info.ap_pwd));
  if (rv != GW_OK) {
    gw_buf_free(&body);
    op_adapter_report(&om->base, OP_BREAKER_NEUTRAL);
    finish(t, OP_OPERATOR_ERROR, 0, "could not build MSS_StatusReq");
    return;
  }
  t->permit = 1;
  o = http_opts(om, om->url_status, &body);
  rv = op_http_submit(t->base.http, &o, on_status_done, t, &t->req);
  gw_buf_free(&body); /* copied by op_http_submit */
  if (rv != GW_OK) {
    op_adapter_report(&om->base, OP_BREAKER_NEUTRAL);
    t->permit = 0;
    finish(t, OP_OPERATOR_ERROR, 0, "could not start the HTTP request");
    return;
  }
  t->phase = OM_POLLING;
  op_adapter_count_request(&om->base, OP_REQ_STATUS);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  send_status(arg);
}

static void on_status_done(void *arg, const op_http_result *res) {
  om_txn *t = arg;
  mss_status_resp *resp;
  mss_fault fault;
  char detail[OP_DETAIL_MAX] = "";
  ans_kind k;

  t->req = NULL;
  resp = calloc(1, sizeof(*resp));
  if (!resp) {
    judge(t, ANS_UNAVAILABLE, res, "out of memory");
    poll_failed(t, OP_OPERATOR_ERROR, "out of memory");
    return;
  }
  memset(&fault, 0, sizeof(fault));
  k = read_answer(res, MSS_MSG_STATUS_RESP, resp, &fault, detail,
                  sizeof(detail));
  judge(t, k, res, detail);
  switch (k) {
  case ANS_UNAVAILABLE:
    poll_failed(t, OP_OPERATOR_UNAVAILABLE, detail);
    break;
  case ANS_BAD:
    poll_failed(t, OP_OPERATOR_ERROR, detail);
    break;
  case ANS_FAULT:
    finish_fault(t, &fault);
    break;
  case ANS_MSG:
    t->poll_failures = 0;
    if (op_etsi_is_pending(resp->status.code)) {
      arm(t, t->om->poll_interval_ms);
    } else {
      finish_status(t, &resp->status, &resp->signature);
    }
    break;
  }
  free(resp);
}

/* ---- the table's functions
 * ------------------------------------------------------------ */

static int om_submit(op_adapter *a, op_http *http, const op_sign_req *req,
                     op_txn **out) {
  om_adapter *om = (om_adapter *)a;
  mss_signature_req *m;
  gw_buf b64;
  om_txn *t;
  int rv;

  t = calloc(1, sizeof(*t));
  m = calloc(1, sizeof(*m));
  if (!t || !m) {
    free(t);
    free(m);
    return GW_ERR_NOMEM;
  }
  t->om = om;
  t->timeout_s = req->timeout_s > 0 ? req->timeout_s : om->timeout_s;
  gw_buf_init(&t->sig_body, MSG_CAP);
  t->timer = evtimer_new(op_http_base(http), on_timer, t);
  if (!t->timer) {
    rv = GW_ERR_NOMEM;
    goto fail;
  }
  op_txn_init(&t->base, a, http, req);

  /* The request, built now so that a bad display text is the caller's
   * error at once rather than an operator's refusal later. */
  m->major_version = MSS_MAJOR_VERSION;
  m->minor_version = MSS_MINOR_VERSION;
  fill_ap_info(om, &m->ap_info, t->base.ap_trans_id);
  snprintf(m->msisdn, sizeof(m->msisdn), "%s", req->msisdn);
  gw_buf_init(&b64, 64);
  rv = mss_base64_encode(req->digest, 32, &b64);
  if (rv == GW_OK) {
    rv = mss_data_set(&m->data_to_be_signed, "application/x-sha256", "base64",
                      b64.data, b64.len);
  }
  gw_buf_free(&b64);
  if (rv == GW_OK && req->display_text) {
    m->has_data_to_be_displayed = 1;
    rv = mss_data_set(&m->data_to_be_displayed, "text/plain", "UTF-8",
                      req->display_text, strlen(req->display_text));
  }
  snprintf(m->mss_format, sizeof(m->mss_format), "%s", MSS_FORMAT_PKCS7);
  m->messaging_mode = MSS_MODE_ASYNCH_CLIENT_SERVER;
  m->timeout = (unsigned)t->timeout_s;
  if (rv == GW_OK && om->base.configured) {
    rv = mss_soap_build_signature_req(m, &t->sig_body);
  }
  OPENSSL_cleanse(m->ap_info.ap_pwd, sizeof(m->ap_info.ap_pwd));
  free(m);
  m = NULL;
  if (rv != GW_OK) {
    rv = rv == GW_ERR_NOMEM ? GW_ERR_NOMEM : GW_ERR_INVALID;
    goto fail_counted;
  }
  if (!om->base.configured) {
    rv = op_txn_final_soon(&t->base, OP_OPERATOR_UNAVAILABLE, 0,
                           om->base.why_unconfigured);
    if (rv != GW_OK) {
      goto fail_counted;
    }
  } else {
    send_signature(t);
  }
  *out = &t->base;
  return GW_OK;

fail_counted:
  atomic_fetch_sub_explicit(&a->m.inflight, 1, memory_order_relaxed);
  if (t->base.soon) {
    event_free(t->base.soon);
  }
fail:
  if (t->timer) {
    event_free(t->timer);
  }
  gw_buf_free(&t->sig_body);
  free(t);
  free(m);
  return rv;
}

static int om_follow(op_txn *bt) {
  om_txn *t = (om_txn *)bt;

  if (t->phase != OM_ACCEPTED) {
    return GW_ERR_INVALID;
  }
  arm(t, t->om->poll_first_ms);
  return GW_OK;
}

static void om_stop(op_txn *bt) {
  om_txn *t = (om_txn *)bt;

  if (t->req) {
    op_http_cancel(t->req);
    t->req = NULL;
  }
  if (t->permit) {
    op_adapter_report(&t->om->base, OP_BREAKER_NEUTRAL);
    t->permit = 0;
  }
  if (t->timer) {
    evtimer_del(t->timer);
  }
  if (t->base.soon) {
    evtimer_del(t->base.soon);
  }
}

static void om_txn_free(op_txn *bt) {
  om_txn *t = (om_txn *)bt;

  if (t->timer) {
    event_free(t->timer);
  }
  gw_buf_free(&t->sig_body);
  free(t);
}

/* ---- receipts
 * ---------------------------------------------------------------------------
 */

typedef struct om_receipt {
  om_adapter *om;
  op_receipt_fn cb;
  void *arg;
} om_receipt;

static void on_receipt_drop(void *arg) {
  om_receipt *rc = arg;

  op_adapter_report(&rc->om->base, OP_BREAKER_NEUTRAL);
  free(rc);
}

static void on_receipt_done(void *arg, const op_http_result *res) {
  om_receipt *rc = arg;
  om_adapter *om = rc->om;
  mss_receipt_resp resp;
  mss_fault fault;
  char detail[OP_DETAIL_MAX] = "";
  int ok = 0, code = 0;
  ans_kind k;

  memset(&resp, 0, sizeof(resp));
  memset(&fault, 0, sizeof(fault));
  k = read_answer(res, MSS_MSG_RECEIPT_RESP, &resp, &fault, detail,
                  sizeof(detail));
  op_adapter_report(&om->base, k == ANS_MSG || k == ANS_FAULT
                                   ? OP_BREAKER_SUCCESS
                                   : OP_BREAKER_FAILURE);
  if (k == ANS_BAD || k == ANS_UNAVAILABLE) {
    op_adapter_count_failure(&om->base, res->status);
  } else if (k == ANS_FAULT) {
    code = fault.subcode;
    snprintf(detail, sizeof(detail), "fault %d %.200s", code,
             fault.reason[0] ? fault.reason : mss_status_name(code));
  } else {
    code = resp.status.code;
    ok = code == MSS_REQUEST_OK;
    snprintf(detail, sizeof(detail), "%d %s", code, mss_status_name(code));
  }
  if (rc->cb) {
    rc->cb(rc->arg, ok, code, detail);
  }
  free(rc);
}

static int om_receipt_send(op_adapter *a, op_http *http,
                           const op_receipt_req *req, op_receipt_fn cb,
                           void *arg) {
  om_adapter *om = (om_adapter *)a;
  mss_receipt_req *m;
  om_receipt *rc;
  gw_buf body;
  op_http_opts o;
  char tid[OP_TRANSID_MAX + 1];
  int rv;

  if (!a->configured) {
    return GW_ERR_BUSY;
  }
  m = calloc(1, sizeof(*m));
  rc = calloc(1, sizeof(*rc));
  if (!m || !rc) {
    free(m);
    free(rc);
    return GW_ERR_NOMEM;
  }
  rc->om = om;
  rc->cb = cb;
  rc->arg = arg;
  m->major_version = MSS_MAJOR_VERSION;
  m->minor_version = MSS_MINOR_VERSION;
  op_new_trans_id(tid);
  fill_ap_info(om, &m->ap_info, tid);
  snprintf(m->mssp_trans_id, sizeof(m->mssp_trans_id), "%s",
           req->mssp_trans_id);
  snprintf(m->msisdn, sizeof(m->msisdn), "%s", req->msisdn);
  rv = GW_OK;
  if (req->message) {
    m->has_message = 1;
    rv = mss_data_set(&m->message, "text/plain", "UTF-8", req->message,
                      strlen(req->message));
  }
  gw_buf_init(&body, MSG_CAP);
  if (rv == GW_OK) {
    rv = mss_soap_build_receipt_req(m, &body);
  }
  OPENSSL_cleanse(m->ap_info.ap_pwd, sizeof(m->ap_info.ap_pwd));
  free(m);
  if (rv != GW_OK) {
    gw_buf_free(&body);
    free(rc);
    return rv == GW_ERR_NOMEM ? GW_ERR_NOMEM : GW_ERR_INVALID;
  }
  if (!op_adapter_allow(a)) {
    gw_buf_free(&body);
    free(rc);
    return GW_ERR_BUSY;
  }
  o = http_opts(om, om->url_receipt, &body);
  o.on_drop = on_receipt_drop;
  o.fresh_connect = 1; /* a receipt is not to be repeated either */
  rv = op_http_submit(http, &o, on_receipt_done, rc, NULL);
  gw_buf_free(&body);
  if (rv != GW_OK) {
    op_adapter_report(a, OP_BREAKER_NEUTRAL);
    free(rc);
    return rv;
  }
  op_adapter_count_request(a, OP_REQ_RECEIPT);
  return GW_OK;
}

/* ---- life cycle
 * -------------------------------------------------------------------------- */

static int om_create(op_adapter **out, const gw_config *cfg, char *err,
                     size_t errlen) {
  op_breaker_config bc = {cfg->op_omantel.breaker_failures,
                          cfg->op_omantel.breaker_cooldown_ms, 1};
  om_adapter *om = calloc(1, sizeof(*om));
  int rv;

  if (!om) {
    snprintf(err, errlen, "out of memory");
    return GW_ERR_NOMEM;
  }
  rv = op_adapter_base_init(&om->base, &op_omantel_ops, &bc);
  if (rv != GW_OK) {
    snprintf(err, errlen, "breaker: %s", gw_strerror(rv));
    free(om);
    return rv;
  }
  if (strlen(cfg->op_omantel.ap_id) > MSS_URI_MAX ||
      strlen(cfg->op_omantel.ap_pwd) > MSS_PWD_MAX) {
    snprintf(err, errlen, "ap_id or ap_pwd too long");
    op_adapter_base_free(&om->base);
    free(om);
    return GW_ERR_CONFIG;
  }
  om->url_sig = join(cfg->op_omantel.url, PATH_SIG);
  om->url_status = join(cfg->op_omantel.url, PATH_STATUS);
  om->url_receipt = join(cfg->op_omantel.url, PATH_RECEIPT);
  if (!om->url_sig || !om->url_status || !om->url_receipt) {
    snprintf(err, errlen, "out of memory");
    om->base.ops = &op_omantel_ops;
    op_omantel_ops.destroy(&om->base);
    return GW_ERR_NOMEM;
  }
  snprintf(om->ap_id, sizeof(om->ap_id), "%s", cfg->op_omantel.ap_id);
  snprintf(om->ap_pwd, sizeof(om->ap_pwd), "%s", cfg->op_omantel.ap_pwd);
  om->poll_first_ms = cfg->op_omantel.poll_first_ms;
  om->poll_interval_ms = cfg->op_omantel.poll_interval_ms;
  om->timeout_s = cfg->op_omantel.timeout_s;
  om->connect_timeout_ms = cfg->op_omantel.connect_timeout_ms;
  om->http_timeout_ms = cfg->op_omantel.http_timeout_ms;
  om->status_retries = cfg->op_omantel.status_retries;
  om->max_response = cfg->op_omantel.max_response;
  om->base.configured = om->ap_id[0] != '\0';
  if (!om->base.configured) {
    snprintf(om->base.why_unconfigured, sizeof(om->base.why_unconfigured),
             "not configured: operators.omantel.ap_id is empty");
  }
  *out = &om->base;
  return GW_OK;
}

static void om_destroy(op_adapter *a) {
  om_adapter *om = (om_adapter *)a;

  if (!om) {
    return;
  }
  OPENSSL_cleanse(om->ap_pwd, sizeof(om->ap_pwd));
  free(om->url_sig);
  free(om->url_status);
  free(om->url_receipt);
  op_adapter_base_free(a);
  free(om);
}

const op_adapter_ops op_omantel_ops = {
    .name = "omantel",
    .create = om_create,
    .destroy = om_destroy,
    .submit = om_submit,
    .follow = om_follow,
    .stop = om_stop,
    .txn_free = om_txn_free,
    .receipt = om_receipt_send,
    .health = NULL,
};
