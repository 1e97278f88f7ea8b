/* op_etsi.c — the ETSI TS 102 204 client the operator adapters share
 * (op_etsi.h): requests, polling, notifications, receipts. */
#include "op_etsi.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"

#define SUBMIT_RESENDS 1    /* re-sends of a signature request never sent */
#define MSG_CAP (64 * 1024) /* a request we build (display text <= 4 KiB) */
#define ACK_CAP (16 * 1024) /* the acknowledgement of a notification */
#define NT_BUCKETS 4096
#define NT_DONE_MAX 100000 /* ended MSSP_TransIDs remembered */
/* How long an ended MSSP_TransID is remembered: longer than an MSSP's
 * retry window for notifications (10 min) plus the clock skew allowed. */
#define NT_DONE_KEEP_NS (20ull * 60u * 1000000000u)
#define SECRET_MIN 32

/* ---- the notification table
 * --------------------------------------------------------------- */

/* A transaction waiting for its notification (embedded in et_txn). Every
 * field but |t| and |ev| is guarded by the table's mutex. */
typedef struct nt_wait {
  char ap_trans_id[OP_TRANSID_MAX + 1];
  char mssp_trans_id[OP_MSSP_TRANSID_MAX + 1]; /* "" until accepted */
  struct et_txn *t;
  struct event *ev;      /* on the transaction's loop; activated by notify */
  mss_status_resp *note; /* handed over, not yet taken by the loop */
  int noted;             /* a notification was accepted for it */
  unsigned char hash[32];
  int in_table;
  struct nt_wait *next;
} nt_wait;

/* An MSSP_TransID that ended, and the body that ended it (when one did). */
typedef struct nt_done {
  char mssp_trans_id[OP_MSSP_TRANSID_MAX + 1];
  unsigned char hash[32];
  int has_hash;
  uint64_t at_ns;
  struct nt_done *next;  /* bucket chain */
  struct nt_done *newer; /* FIFO, oldest first */
} nt_done;

struct op_etsi_notify_table {
  pthread_mutex_t mu;
  nt_wait *wait[NT_BUCKETS];
  nt_done *done[NT_BUCKETS];
  nt_done *oldest, *newest;
  size_t ndone;
};

static size_t nt_bucket(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */

  for (; *s; s++) {
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  }
  return (size_t)(h % NT_BUCKETS);
}

static nt_wait *nt_find_wait(op_etsi_notify_table *nt, const char *id) {
  nt_wait *w = nt->wait[nt_bucket(id)];

  while (w && strcmp(w->ap_trans_id, id) != 0) {
    w = w->next;
  }
  return w;
}

static void nt_insert_wait(op_etsi_notify_table *nt, nt_wait *w) {
  size_t b = nt_bucket(w->ap_trans_id);

  w->next = nt->wait[b];
  nt->wait[b] = w;
  w->in_table = 1;
}

static void nt_remove_wait(op_etsi_notify_table *nt, nt_wait *w) {
  nt_wait **pp = &nt->wait[nt_bucket(w->ap_trans_id)];

  while (*pp && *pp != w) {
    pp = &(*pp)->next;
  }
  if (*pp) {
    *pp = w->next;
  }
  w->next = NULL;
  w->in_table = 0;
}

static nt_done *nt_find_done(op_etsi_notify_table *nt, const char *id) {
  nt_done *d = nt->done[nt_bucket(id)];

  while (d && strcmp(d->mssp_trans_id, id) != 0) {
    d = d->next;
  }
  return d;
}

static void nt_drop_oldest(op_etsi_notify_table *nt) {
  nt_done *d = nt->oldest, **pp;

  pp = &nt->done[nt_bucket(d->mssp_trans_id)];
  while (*pp && *pp != d) {
    pp = &(*pp)->next;
  }
  if (*pp) {
    *pp = d->next;
  }
  nt->oldest = d->newer;
  if (!nt->oldest) {
    nt->newest = NULL;
  }
  nt->ndone--;
  free(d);
}

/* Records that |id| ended (by the body hashed |hash|, or NULL). Keeps the
 * first record of an id. Out of memory only costs a 404 for a repeat. */
static void nt_add_done(op_etsi_notify_table *nt, const char *id,
                        const unsigned char *hash) {
  uint64_t now = op_now_ns();
  nt_done *d;
  size_t b;

  if (!id[0] || nt_find_done(nt, id)) {
    return;
  }
  while (nt->oldest && (nt->ndone >= NT_DONE_MAX ||
                        now - nt->oldest->at_ns > NT_DONE_KEEP_NS)) {
    nt_drop_oldest(nt);
  }
  d = calloc(1, sizeof(*d));
  if (!d) {
    return;
  }
  snprintf(d->mssp_trans_id, sizeof(d->mssp_trans_id), "%s", id);
  if (hash) {
    memcpy(d->hash, hash, sizeof(d->hash));
    d->has_hash = 1;
  }
  d->at_ns = now;
  b = nt_bucket(id);
  d->next = nt->done[b];
  nt->done[b] = d;
  if (nt->newest) {
    nt->newest->newer = d;
  } else {
    nt->oldest = d;
  }
  nt->newest = d;
  nt->ndone++;
}

static int nt_new(op_etsi_notify_table **out) {
  op_etsi_notify_table *nt = calloc(1, sizeof(*nt));

  if (!nt) {
    return GW_ERR_NOMEM;
  }
  if (pthread_mutex_init(&nt->mu, NULL) != 0) {
    free(nt);
    return GW_ERR_NOMEM;
  }
  *out = nt;
  return GW_OK;
}

static void nt_del(op_etsi_notify_table *nt) {
  if (!nt) {
    return;
  }
  while (nt->oldest) {
    nt_drop_oldest(nt);
  }
  pthread_mutex_destroy(&nt->mu);
  free(nt);
}

/* ---- transactions
 * ----------------------------------------------------------------- */

typedef enum et_phase {
  ET_SUBMIT = 0, /* MSS_SignatureReq in flight */
  ET_ACCEPTED,   /* waiting for op_follow */
  ET_WAIT,       /* timer armed: next status query, or the notification */
  ET_POLLING     /* MSS_StatusReq in flight */
} et_phase;

typedef struct et_txn {
  op_txn base;
  op_etsi_adapter *ea;
  et_phase phase;
  op_http_req *req; /* the exchange in flight */
  int permit;       /* |req| holds a breaker permit */
  struct event *timer;
  gw_buf sig_body; /* the MSS_SignatureReq, kept for a re-send */
  int resends;
  int poll_failures;
  int timeout_s;
  uint64_t deadline_ns;
  char mssp_id[MSS_URI_MAX + 1]; /* MSSP_ID of the answer, echoed */
  nt_wait w;                     /* server-server mode: w.ev != NULL */
  mss_status_resp *note;         /* taken from w, applied at follow */
} et_txn;

/* Which answer an exchange got. */
typedef enum ans_kind {
  ANS_MSG = 0,    /* the message, parsed */
  ANS_FAULT,      /* a fault, parsed */
  ANS_BAD,        /* an answer, but not one we can use: operator_error */
  ANS_UNAVAILABLE /* no answer at all, or a 5xx without a fault */
} ans_kind;

static const char *const ans_names[] = {"message", "fault", "bad answer",
                                        "no answer"};

/* A warning at most once a second per adapter: a broken MSSP answers every
 * poll of every transaction the same way. */
static int warn_ok(op_etsi_adapter *ea) {
  uint64_t now = op_now_ns(), last = atomic_load(&ea->last_warn_ns);

  if (now - last < 1000000000u) {
    return 0;
  }
  return atomic_compare_exchange_strong(&ea->last_warn_ns, &last, now);
}

int op_etsi_detail_code(const char *text, int code) {
  const char *p = text;

  for (; p && *p; p++) {
    if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
        isdigit((unsigned char)p[2]) && isdigit((unsigned char)p[3]) &&
        !isdigit((unsigned char)p[4]) &&
        (p == text || !isdigit((unsigned char)p[-1]))) {
      int d = atoi(p);
      return d / 10 == code ? d : 0;
    }
  }
  return 0;
}

static void fill_ap_info(op_etsi_adapter *ea, mss_ap_info *ai,
                         const char *trans_id) {
  snprintf(ai->ap_id, sizeof(ai->ap_id), "%s", ea->ap_id);
  snprintf(ai->ap_pwd, sizeof(ai->ap_pwd), "%s", ea->ap_pwd);
  snprintf(ai->ap_trans_id, sizeof(ai->ap_trans_id), "%s", trans_id);
  mss_instant_format(time(NULL), ai->instant, sizeof(ai->instant));
}

/* Reads an HTTP answer as message |want| (|msg| of that type) or a fault.
 * Writes a reason to |detail| unless ANS_MSG. */
static ans_kind read_answer(op_etsi_adapter *ea, const op_http_result *res,
                            mss_msg want, void *msg, mss_fault *fault,
                            char *detail, size_t dn) {
  const op_etsi_codec *c = ea->codec;
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
  if (!c->type_ok(res->content_type)) {
    snprintf(detail, dn, "HTTP %ld with content type %.80s, not %s",
             res->http_status, res->content_type ? res->content_type : "(none)",
             c->name);
    return server_err ? ANS_UNAVAILABLE : ANS_BAD;
  }
  switch (want) {
  case MSS_MSG_SIGNATURE_RESP:
    rv = c->parse_signature_resp(res->body, res->body_len, msg, fault);
    break;
  case MSS_MSG_STATUS_RESP:
    rv = c->parse_status_resp(res->body, res->body_len, msg, fault);
    break;
  case MSS_MSG_RECEIPT_RESP:
    rv = c->parse_receipt_resp(res->body, res->body_len, msg, fault);
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
static void judge(et_txn *t, ans_kind k, const op_http_result *res,
                  const char *detail) {
  op_etsi_adapter *ea = t->ea;

  if (t->permit) {
    op_adapter_report(&ea->base, k == ANS_MSG || k == ANS_FAULT
                                     ? OP_BREAKER_SUCCESS
                                     : OP_BREAKER_FAILURE);
    t->permit = 0;
  }
  if (k == ANS_BAD || k == ANS_UNAVAILABLE) {
    op_adapter_count_failure(&ea->base, res->status);
    if (warn_ok(ea)) {
      char q[OP_DETAIL_MAX + 16];
      GW_LOG(GW_LOG_WARN, "operator answer unusable",
             "operator=%s ap_trans_id=%s kind=%s detail=%s", ea->base.name,
             t->base.ap_trans_id, ans_names[k],
             gw_log_quote(q, sizeof(q), detail, strlen(detail)));
    }
  }
}

/* Ends |t| with |outcome|; |etsi| the operator's code or 0. */
static void finish(et_txn *t, op_outcome outcome, int etsi,
                   const char *detail) {
  op_result r;

  memset(&r, 0, sizeof(r));
  r.outcome = outcome;
  r.etsi_status = etsi;
  snprintf(r.detail, sizeof(r.detail), "%s", detail);
  op_txn_final(&t->base, &r);
}

static void finish_fault(et_txn *t, const mss_fault *f) {
  char detail[OP_DETAIL_MAX];
  int code = f->subcode;

  snprintf(detail, sizeof(detail), "fault %d %.64s%s%.160s", code,
           f->reason[0] ? f->reason : mss_status_name(code),
           f->detail[0] ? ": " : "", f->detail);
  finish(t,
         code > 0
             ? op_outcome_from_etsi(code, op_etsi_detail_code(f->detail, code))
             : OP_OPERATOR_ERROR,
         code, detail);
}

/* Ends |t| from a final status (a status answer or a notification) with
 * its signature. A fault code in a Status (notifications carry them so)
 * may have its FiCom detail in the StatusMessage. */
static void finish_status(et_txn *t, const mss_status_info *st,
                          const mss_signature *sig) {
  char detail[OP_DETAIL_MAX];
  op_outcome o = op_outcome_from_etsi(
      st->code, op_etsi_detail_code(st->message, st->code));
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

/* Ends |t| with a notification it took (|note| is freed here). */
static void apply_note(et_txn *t, mss_status_resp *note) {
  if (note->mssp_trans_id[0] && !t->base.mssp_trans_id[0]) {
    snprintf(t->base.mssp_trans_id, sizeof(t->base.mssp_trans_id), "%s",
             note->mssp_trans_id);
  }
  finish_status(t, &note->status, &note->signature);
  free(note);
}

static op_http_opts http_opts(op_etsi_adapter *ea, const char *url,
                              const gw_buf *body) {
  op_http_opts o = {0};

  o.url = url;
  o.content_type = ea->codec->content_type;
  o.body = body->data;
  o.body_len = body->len;
  o.connect_timeout_ms = ea->connect_timeout_ms;
  o.timeout_ms = ea->http_timeout_ms;
  o.max_response = ea->max_response;
  return o;
}

/* ---- the signature request
 * -------------------------------------------------------- */

static void on_sig_done(void *arg, const op_http_result *res);

/* Sends (or re-sends) the MSS_SignatureReq. On failure ends |t| soon. */
static void send_signature(et_txn *t) {
  op_etsi_adapter *ea = t->ea;
  op_http_opts o;
  int rv;

  if (!op_adapter_allow(&ea->base)) {
    op_txn_final_soon(&t->base, OP_OPERATOR_UNAVAILABLE, 0,
                      "circuit breaker open: the MSSP failed repeatedly");
    return;
  }
  t->permit = 1;
  o = http_opts(ea, ea->url_sig, &t->sig_body);
  /* Never on a reused connection: libcurl would silently send it again if
   * that connection turned out dead (op_http.h, fresh_connect). */
  o.fresh_connect = 1;
  rv = op_http_submit(t->base.http, &o, on_sig_done, t, &t->req);
  if (rv != GW_OK) {
    op_adapter_report(&ea->base, OP_BREAKER_NEUTRAL);
    t->permit = 0;
    op_txn_final_soon(&t->base, OP_OPERATOR_ERROR, 0,
                      "could not start the HTTP request");
    return;
  }
  op_adapter_count_request(&ea->base, OP_REQ_SIGNATURE);
}

/* The MSSP accepted |t| as |id|: note the id where notifications look. */
static void set_mssp_trans_id(et_txn *t, const char *id) {
  op_etsi_notify_table *nt = t->ea->nt;

  snprintf(t->base.mssp_trans_id, sizeof(t->base.mssp_trans_id), "%s", id);
  if (t->w.ev) {
    pthread_mutex_lock(&nt->mu);
    if (!t->w.mssp_trans_id[0]) {
      snprintf(t->w.mssp_trans_id, sizeof(t->w.mssp_trans_id), "%s", id);
    }
    pthread_mutex_unlock(&nt->mu);
  }
}

static void on_sig_done(void *arg, const op_http_result *res) {
  et_txn *t = arg;
  op_etsi_adapter *ea = t->ea;
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
  k = read_answer(ea, res, MSS_MSG_SIGNATURE_RESP, resp, &fault, detail,
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
      set_mssp_trans_id(t, resp->mssp_trans_id);
      snprintf(t->mssp_id, sizeof(t->mssp_id), "%s", resp->mssp_info.id);
      gw_buf_free(&t->sig_body);
      t->phase = ET_ACCEPTED;
      t->deadline_ns =
          op_now_ns() + ((uint64_t)t->timeout_s * 1000u +
                         2u * (uint64_t)ea->poll_interval_ms + 1000u) *
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

/* ---- status queries and the notification wait
 * ---------------------------------------- */

static void on_status_done(void *arg, const op_http_result *res);

static void arm(et_txn *t, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

  t->phase = ET_WAIT;
  evtimer_add(t->timer, &tv);
}

/* A status query without a usable answer: again at the next interval, or
 * the end once status_retries are used up. */
static void poll_failed(et_txn *t, op_outcome o, const char *detail) {
  char d[OP_DETAIL_MAX];

  t->poll_failures++;
  if (t->poll_failures > t->ea->status_retries) {
    snprintf(d, sizeof(d), "%d status queries failed in a row; last: %s",
             t->poll_failures, detail);
    finish(t, o, 0, d);
    return;
  }
  arm(t, t->ea->poll_interval_ms);
}

static void send_status(et_txn *t) {
  op_etsi_adapter *ea = t->ea;
  mss_status_req q;
  gw_buf body;
  op_http_opts o;
  char tid[OP_TRANSID_MAX + 1];
  char d[96];
  int rv;

  if (op_now_ns() >= t->deadline_ns) {
    snprintf(d, sizeof(d), "no final answer within TimeOut %d s%s",
             t->timeout_s, t->w.ev ? " (no notification either)" : "");
    finish(t, OP_TIMED_OUT, 0, d);
    return;
  }
  if (!op_adapter_allow(&ea->base)) {
    poll_failed(t, OP_OPERATOR_UNAVAILABLE,
                "circuit breaker open: the MSSP failed repeatedly");
    return;
  }
  memset(&q, 0, sizeof(q));
  q.major_version = MSS_MAJOR_VERSION;
  q.minor_version = ea->minor_version;
  op_new_trans_id(tid);
  fill_ap_info(ea, &q.ap_info, tid);
  snprintf(q.mssp_info.id, sizeof(q.mssp_info.id), "%s", t->mssp_id);
  snprintf(q.mssp_trans_id, sizeof(q.mssp_trans_id), "%s",
           t->base.mssp_trans_id);
  snprintf(q.msisdn, sizeof(q.msisdn), "%s", t->base.msisdn);
  gw_buf_init(&body, MSG_CAP);
  rv = ea->codec->build_status_req(&q, &body);
  OPENSSL_cleanse(q.ap_info.ap_pwd, sizeof(q.ap_info.ap_pwd));
  if (rv != GW_OK) {
    gw_buf_free(&body);
    finish(t, OP_OPERATOR_ERROR, 0, "could not build MSS_StatusReq");
    return;
  }
  t->permit = 1;
  o = http_opts(ea, ea->url_status, &body);
  rv = op_http_submit(t->base.http, &o, on_status_done, t, &t->req);
  gw_buf_free(&body); /* copied by op_http_submit */
  if (rv != GW_OK) {
    op_adapter_report(&ea->base, OP_BREAKER_NEUTRAL);
    t->permit = 0;
    finish(t, OP_OPERATOR_ERROR, 0, "could not start the HTTP request");
    return;
  }
  t->phase = ET_POLLING;
  op_adapter_count_request(&ea->base, OP_REQ_STATUS);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  et_txn *t = arg;
  mss_status_resp *note = t->note;

  (void)fd;
  (void)what;
  if (note) { /* a notification came before op_follow */
    t->note = NULL;
    apply_note(t, note);
    return;
  }
  send_status(t);
}

/* The notification handed over by op_etsi_notify (another thread). */
static void on_note(evutil_socket_t fd, short what, void *arg) {
  et_txn *t = arg;
  op_etsi_notify_table *nt = t->ea->nt;
  mss_status_resp *note;

  (void)fd;
  (void)what;
  pthread_mutex_lock(&nt->mu);
  note = t->w.note;
  t->w.note = NULL;
  pthread_mutex_unlock(&nt->mu);
  if (!note) {
    return;
  }
  if (t->phase == ET_SUBMIT || t->phase == ET_ACCEPTED || t->note) {
    /* Not followed yet (the notification overtook the answer to our
     * request, or op_follow is still to come): op_follow applies it. */
    if (!t->note) {
      t->note = note;
    } else {
      free(note);
    }
    return;
  }
  apply_note(t, note);
}

static void on_status_done(void *arg, const op_http_result *res) {
  et_txn *t = arg;
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
  k = read_answer(t->ea, res, MSS_MSG_STATUS_RESP, resp, &fault, detail,
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
      arm(t, t->ea->poll_interval_ms);
    } else {
      finish_status(t, &resp->status, &resp->signature);
    }
    break;
  }
  free(resp);
}

/* ---- the table's functions
 * ------------------------------------------------------------ */

static int build_request(et_txn *t, const op_sign_req *req) {
  op_etsi_adapter *ea = t->ea;
  mss_signature_req *m = calloc(1, sizeof(*m));
  gw_buf b64;
  int rv;

  if (!m) {
    return GW_ERR_NOMEM;
  }
  m->major_version = MSS_MAJOR_VERSION;
  m->minor_version = ea->minor_version;
  fill_ap_info(ea, &m->ap_info, t->base.ap_trans_id);
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
  snprintf(m->mss_format, sizeof(m->mss_format), "%s", ea->mss_format);
  m->messaging_mode =
      ea->nt ? MSS_MODE_ASYNCH_SERVER_SERVER : MSS_MODE_ASYNCH_CLIENT_SERVER;
  m->timeout = (unsigned)t->timeout_s;
  if (rv == GW_OK && ea->base.configured) {
    rv = ea->codec->build_signature_req(m, &t->sig_body);
  }
  OPENSSL_cleanse(m->ap_info.ap_pwd, sizeof(m->ap_info.ap_pwd));
  free(m);
  return rv;
}

int op_etsi_submit(op_adapter *a, op_http *http, const op_sign_req *req,
                   op_txn **out) {
  op_etsi_adapter *ea = (op_etsi_adapter *)a;
  et_txn *t;
  int rv;

  t = calloc(1, sizeof(*t));
  if (!t) {
    return GW_ERR_NOMEM;
  }
  t->ea = ea;
  t->timeout_s = req->timeout_s > 0 ? req->timeout_s : ea->timeout_s;
  gw_buf_init(&t->sig_body, MSG_CAP);
  t->timer = evtimer_new(op_http_base(http), on_timer, t);
  if (!t->timer) {
    rv = GW_ERR_NOMEM;
    goto fail;
  }
  if (ea->nt && a->configured) {
    t->w.ev = event_new(op_http_base(http), -1, 0, on_note, t);
    if (!t->w.ev) {
      rv = GW_ERR_NOMEM;
      goto fail;
    }
    t->w.t = t;
  }
  op_txn_init(&t->base, a, http, req);

  /* Built now, so that a bad display text is the caller's error at once
   * rather than an operator's refusal later. */
  rv = build_request(t, req);
  if (rv != GW_OK) {
    rv = rv == GW_ERR_NOMEM ? GW_ERR_NOMEM : GW_ERR_INVALID;
    goto fail_counted;
  }
  if (!a->configured) {
    rv = op_txn_final_soon(&t->base, OP_OPERATOR_UNAVAILABLE, 0,
                           a->why_unconfigured);
    if (rv != GW_OK) {
      goto fail_counted;
    }
  } else {
    if (t->w.ev) {
      /* Waiting for a notification from now on: it may overtake the
       * answer to the request. AP_TransIDs are fresh random ids. */
      snprintf(t->w.ap_trans_id, sizeof(t->w.ap_trans_id), "%s",
               t->base.ap_trans_id);
      pthread_mutex_lock(&ea->nt->mu);
      nt_insert_wait(ea->nt, &t->w);
      pthread_mutex_unlock(&ea->nt->mu);
    }
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
  if (t->w.ev) {
    event_free(t->w.ev);
  }
  if (t->timer) {
    event_free(t->timer);
  }
  gw_buf_free(&t->sig_body);
  free(t);
  return rv;
}

int op_etsi_follow(op_txn *bt) {
  et_txn *t = (et_txn *)bt;

  if (t->phase != ET_ACCEPTED) {
    return GW_ERR_INVALID;
  }
  if (t->note) {
    arm(t, 0); /* on_timer applies it: never from inside op_follow */
  } else if (t->w.ev) {
    arm(t, t->ea->notify_overdue_ms); /* then poll as well */
  } else {
    arm(t, t->ea->poll_first_ms);
  }
  return GW_OK;
}

void op_etsi_stop(op_txn *bt) {
  et_txn *t = (et_txn *)bt;
  mss_status_resp *note = NULL;

  if (t->req) {
    op_http_cancel(t->req);
    t->req = NULL;
  }
  if (t->permit) {
    op_adapter_report(&t->ea->base, OP_BREAKER_NEUTRAL);
    t->permit = 0;
  }
  if (t->timer) {
    evtimer_del(t->timer);
  }
  if (t->base.soon) {
    evtimer_del(t->base.soon);
  }
  if (t->w.ev) {
    /* Out of the table first: after this no thread activates w.ev. */
    pthread_mutex_lock(&t->ea->nt->mu);
    if (t->w.in_table) {
      nt_remove_wait(t->ea->nt, &t->w);
      nt_add_done(t->ea->nt, t->base.mssp_trans_id, NULL);
    }
    note = t->w.note;
    t->w.note = NULL;
    pthread_mutex_unlock(&t->ea->nt->mu);
    event_del(t->w.ev);
    free(note);
  }
}

void op_etsi_txn_free(op_txn *bt) {
  et_txn *t = (et_txn *)bt;

  if (t->timer) {
    event_free(t->timer);
  }
  if (t->w.ev) {
    event_free(t->w.ev);
  }
  free(t->note);
  gw_buf_free(&t->sig_body);
  free(t);
}

/* ---- receipts
 * --------------------------------------------------------------------- */

typedef struct et_receipt {
  op_etsi_adapter *ea;
  op_receipt_fn cb;
  void *arg;
} et_receipt;

static void on_receipt_drop(void *arg) {
  et_receipt *rc = arg;

  op_adapter_report(&rc->ea->base, OP_BREAKER_NEUTRAL);
  free(rc);
}

static void on_receipt_done(void *arg, const op_http_result *res) {
  et_receipt *rc = arg;
  op_etsi_adapter *ea = rc->ea;
  mss_receipt_resp resp;
  mss_fault fault;
  char detail[OP_DETAIL_MAX] = "";
  int ok = 0, code = 0;
  ans_kind k;

  memset(&resp, 0, sizeof(resp));
  memset(&fault, 0, sizeof(fault));
  k = read_answer(ea, res, MSS_MSG_RECEIPT_RESP, &resp, &fault, detail,
                  sizeof(detail));
  op_adapter_report(&ea->base, k == ANS_MSG || k == ANS_FAULT
                                   ? OP_BREAKER_SUCCESS
                                   : OP_BREAKER_FAILURE);
  if (k == ANS_BAD || k == ANS_UNAVAILABLE) {
    op_adapter_count_failure(&ea->base, res->status);
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

int op_etsi_receipt(op_adapter *a, op_http *http, const op_receipt_req *req,
                    op_receipt_fn cb, void *arg) {
  op_etsi_adapter *ea = (op_etsi_adapter *)a;
  mss_receipt_req *m;
  et_receipt *rc;
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
  rc->ea = ea;
  rc->cb = cb;
  rc->arg = arg;
  m->major_version = MSS_MAJOR_VERSION;
  m->minor_version = ea->minor_version;
  op_new_trans_id(tid);
  fill_ap_info(ea, &m->ap_info, tid);
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
    rv = ea->codec->build_receipt_req(m, &body);
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
  o = http_opts(ea, ea->url_receipt, &body);
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

void op_etsi_health(op_adapter *a, op_health *out) {
  op_etsi_adapter *ea = (op_etsi_adapter *)a;

  if (a->configured && !out->detail[0]) {
    snprintf(out->detail, sizeof(out->detail), "%s, %s", ea->codec->name,
             ea->nt ? "notifications (asynchServerServer)"
                    : "polling (asynchClientServer)");
  }
}

/* ---- notifications
 * ---------------------------------------------------------------- */

/* HMAC-SHA256 of "<t>.<body>" with |key|. Returns 0 or -1. */
static int notify_mac(const char *t, size_t tlen, const char *body, size_t n,
                      const unsigned char *key, size_t keylen,
                      unsigned char out[32]) {
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = NULL;
  OSSL_PARAM params[2];
  size_t outl = 0;
  int ok = 0;

  if (!mac) {
    return -1;
  }
  ctx = EVP_MAC_CTX_new(mac);
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                               (char *)"SHA256", 0);
  params[1] = OSSL_PARAM_construct_end();
  ok = ctx && EVP_MAC_init(ctx, key, keylen, params) == 1 &&
       EVP_MAC_update(ctx, (const unsigned char *)t, tlen) == 1 &&
       EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
       EVP_MAC_update(ctx, (const unsigned char *)body, n) == 1 &&
       EVP_MAC_final(ctx, out, &outl, 32) == 1 && outl == 32;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  return ok ? 0 : -1;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

#define SIG_HEADER_MAX 1024
#define SIG_V1_MAX 4 /* v1 values accepted in one header (key rotation) */

int op_etsi_check_signature(const char *header, const char *body, size_t n,
                            const unsigned char *key, size_t keylen,
                            long long now, int max_skew_s, const char **why) {
  unsigned char want[32], got[SIG_V1_MAX][32];
  char tbuf[24] = "";
  size_t hl, nv1 = 0;
  const char *p, *end;
  long long t;
  int match = 0;

  if (!header || !header[0]) {
    *why = "missing";
    return -1;
  }
  hl = strlen(header);
  if (hl > SIG_HEADER_MAX) {
    *why = "malformed";
    return -1;
  }
  /* "t=<digits>,v1=<64 hex>[,v1=...]"; unknown keys (v0, ...) skipped. */
  for (p = header, end = header + hl; p < end;) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *q = comma ? comma : end, *eq;
    while (p < q && (*p == ' ' || *p == '\t')) {
      p++;
    }
    eq = memchr(p, '=', (size_t)(q - p));
    if (!eq) {
      *why = "malformed";
      return -1;
    }
    if (eq - p == 1 && p[0] == 't') {
      size_t tl = (size_t)(q - eq - 1);
      if (tl == 0 || tl >= sizeof(tbuf) - 1 || tbuf[0]) {
        *why = "malformed";
        return -1;
      }
      memcpy(tbuf, eq + 1, tl);
      tbuf[tl] = '\0';
      for (size_t i = 0; i < tl; i++) {
        if (!isdigit((unsigned char)tbuf[i])) {
          *why = "malformed";
          return -1;
        }
      }
    } else if (eq - p == 2 && p[0] == 'v' && p[1] == '1') {
      const char *h = eq + 1;
      if (q - h != 64 || nv1 == SIG_V1_MAX) {
        *why = "malformed";
        return -1;
      }
      for (int i = 0; i < 32; i++) {
        int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
        if (hi < 0 || lo < 0) {
          *why = "malformed";
          return -1;
        }
        got[nv1][i] = (unsigned char)(hi << 4 | lo);
      }
      nv1++;
    }
    p = comma ? comma + 1 : end;
  }
  if (!tbuf[0] || nv1 == 0) {
    *why = "malformed";
    return -1;
  }
  if (notify_mac(tbuf, strlen(tbuf), body, n, key, keylen, want) != 0) {
    *why = "cannot compute the HMAC";
    return -1;
  }
  for (size_t i = 0; i < nv1; i++) {
    match |= CRYPTO_memcmp(want, got[i], 32) == 0;
  }
  OPENSSL_cleanse(want, sizeof(want));
  if (!match) {
    *why = "bad signature";
    return -1;
  }
  /* Only now is t believed (it is covered by the HMAC). */
  t = strtoll(tbuf, NULL, 10);
  if (t < now - max_skew_s || t > now + max_skew_s) {
    *why = "timestamp out of range";
    return -1;
  }
  return 0;
}

int op_etsi_sign_notification(const char *body, size_t n,
                              const unsigned char *key, size_t keylen,
                              long long t, char *out, size_t cap) {
  unsigned char mac[32];
  char ts[24];
  int tl = snprintf(ts, sizeof(ts), "%lld", t);
  size_t o;

  if (cap < 80 + (size_t)tl) {
    return GW_ERR_TOO_LARGE;
  }
  if (notify_mac(ts, (size_t)tl, body, n, key, keylen, mac) != 0) {
    return GW_ERR_INTERNAL;
  }
  o = (size_t)snprintf(out, cap, "t=%s,v1=", ts);
  for (int i = 0; i < 32; i++) {
    o += (size_t)snprintf(out + o, cap - o, "%02x", mac[i]);
  }
  return GW_OK;
}

/* Fills |ans| for a refusal. */
static int refuse(op_etsi_adapter *ea, op_notify_answer *ans, int status,
                  const char *error, op_notify_result kind, const char *msg,
                  const char *arg) {
  ans->status = status;
  ans->error = error;
  snprintf(ans->message, sizeof(ans->message), "%.100s%.150s", msg,
           arg ? arg : "");
  atomic_fetch_add_explicit(&ea->base.m.notify[kind], 1, memory_order_relaxed);
  return status;
}

/* The acknowledgement: an MSS_ReceiptReq for the notified transaction,
 * status 100, without our password. */
static int build_ack(op_etsi_adapter *ea, const mss_status_resp *note,
                     gw_buf *ack) {
  mss_receipt_req *m = calloc(1, sizeof(*m));
  char tid[OP_TRANSID_MAX + 1];
  int rv;

  if (!m) {
    return GW_ERR_NOMEM;
  }
  m->major_version = MSS_MAJOR_VERSION;
  m->minor_version = ea->minor_version;
  if (mss_ncname_valid(note->ap_info.ap_trans_id, MSS_TRANSID_MAX)) {
    snprintf(tid, sizeof(tid), "%s", note->ap_info.ap_trans_id);
  } else {
    op_new_trans_id(tid);
  }
  fill_ap_info(ea, &m->ap_info, tid);
  OPENSSL_cleanse(m->ap_info.ap_pwd, sizeof(m->ap_info.ap_pwd));
  m->mssp_info = note->mssp_info;
  snprintf(m->mssp_trans_id, sizeof(m->mssp_trans_id), "%s",
           note->mssp_trans_id);
  snprintf(m->msisdn, sizeof(m->msisdn), "%s", note->msisdn);
  m->status.code = MSS_REQUEST_OK;
  snprintf(m->status.message, sizeof(m->status.message), "%s",
           mss_status_name(MSS_REQUEST_OK));
  rv = ea->codec->build_receipt_req(m, ack);
  free(m);
  return rv;
}

int op_etsi_notify(op_adapter *a, const op_notify_in *in, gw_buf *ack,
                   op_notify_answer *ans) {
  op_etsi_adapter *ea = (op_etsi_adapter *)a;
  op_etsi_notify_table *nt = ea->nt;
  mss_status_resp *note = NULL;
  unsigned char hash[32];
  const char *why = NULL;
  char q[OP_DETAIL_MAX];
  mss_fault fault;
  nt_wait *w;
  nt_done *d;
  int rv, ack_rv, applied = 0, repeat = 0;

  memset(ans, 0, sizeof(*ans));
  op_adapter_count_request(a, OP_REQ_NOTIFY);
  if (!nt) {
    return refuse(ea, ans, 404, "not_enabled", OP_NOTIFY_REFUSED,
                  "notifications are not enabled for this operator", NULL);
  }
  if (!ea->codec->type_ok(in->content_type)) {
    return refuse(ea, ans, 415, "unsupported_media_type", OP_NOTIFY_REFUSED,
                  "the notification must be ", ea->codec->content_type);
  }
  if (op_etsi_check_signature(in->signature, in->body, in->body_len,
                              ea->notify_secret, ea->notify_secret_len,
                              (long long)time(NULL), ea->notify_max_skew_s,
                              &why) != 0) {
    return refuse(ea, ans, 401,
                  strcmp(why, "timestamp out of range") == 0 ? "stale_timestamp"
                                                             : "bad_signature",
                  OP_NOTIFY_REFUSED, "X-MSS-Signature: ", why);
  }
  note = calloc(1, sizeof(*note));
  if (!note) {
    return refuse(ea, ans, 503, "out_of_memory", OP_NOTIFY_REFUSED,
                  "out of memory", NULL);
  }
  memset(&fault, 0, sizeof(fault));
  rv = ea->codec->parse_status_resp(in->body, in->body_len, note, &fault);
  if (rv != GW_OK) {
    free(note);
    gw_log_quote(q, sizeof(q), fault.detail, strlen(fault.detail));
    return refuse(ea, ans, 400, "invalid_notification", OP_NOTIFY_REFUSED,
                  rv == GW_ERR_PROTO ? "a Fault is not a notification"
                                     : "not a valid MSS_StatusResp: ",
                  rv == GW_ERR_PROTO ? NULL : q);
  }
  snprintf(ans->mssp_trans_id, sizeof(ans->mssp_trans_id), "%s",
           note->mssp_trans_id);
  if (op_etsi_is_pending(note->status.code) || note->status.code <= 0 ||
      !note->mssp_trans_id[0]) {
    free(note);
    return refuse(ea, ans, 400, "invalid_notification", OP_NOTIFY_REFUSED,
                  "a notification carries the final status of an "
                  "MSSP_TransID",
                  NULL);
  }
  EVP_Digest(in->body, in->body_len, hash, NULL, EVP_sha256(), NULL);
  /* The acknowledgement now, while |note| is ours: once applied it belongs
   * to the transaction's loop. Discarded when the notification is refused. */
  ack_rv = build_ack(ea, note, ack);

  pthread_mutex_lock(&nt->mu);
  w = nt_find_wait(nt, note->ap_info.ap_trans_id);
  if (w && (!w->mssp_trans_id[0] ||
            strcmp(w->mssp_trans_id, note->mssp_trans_id) == 0)) {
    if (!w->noted) {
      w->noted = 1;
      memcpy(w->hash, hash, sizeof(hash));
      snprintf(w->mssp_trans_id, sizeof(w->mssp_trans_id), "%s",
               note->mssp_trans_id);
      nt_add_done(nt, note->mssp_trans_id, hash);
      w->note = note;
      note = NULL;
      /* Counted before the loop can see it, so that whoever sees the end
       * of the transaction also sees the count. */
      atomic_fetch_add_explicit(&a->m.notify[OP_NOTIFY_APPLIED], 1,
                                memory_order_relaxed);
      /* Thread-safe (evthread): the loop applies it after we answered. */
      event_active(w->ev, EV_READ, 0);
      applied = 1;
    } else {
      repeat = memcmp(w->hash, hash, sizeof(hash)) == 0;
    }
  } else if (!w) {
    d = nt_find_done(nt, note->mssp_trans_id);
    repeat = d && d->has_hash && memcmp(d->hash, hash, sizeof(hash)) == 0;
    if (!d && !repeat) {
      pthread_mutex_unlock(&nt->mu);
      free(note);
      gw_buf_reset(ack);
      return refuse(ea, ans, 404, "unknown_transaction", OP_NOTIFY_UNMATCHED,
                    "no transaction of ours has this MSSP_TransID", NULL);
    }
  }
  pthread_mutex_unlock(&nt->mu);
  if (!applied && !repeat) {
    free(note);
    gw_buf_reset(ack);
    return refuse(ea, ans, 409, "already_finished", OP_NOTIFY_UNMATCHED,
                  w ? "the transaction already has another notification, or "
                      "another MSSP_TransID"
                    : "the transaction has ended",
                  NULL);
  }
  rv = ack_rv;
  free(note); /* NULL when applied: handed over */
  if (!applied) {
    atomic_fetch_add_explicit(&a->m.notify[OP_NOTIFY_REPEATED], 1,
                              memory_order_relaxed);
  }
  ans->repeat = !applied;
  if (rv != GW_OK) {
    /* Applied all the same; the MSSP retries and gets the repeat path. */
    ans->status = 503;
    ans->error = "internal_error";
    snprintf(ans->message, sizeof(ans->message),
             "cannot build the acknowledgement: %s", gw_strerror(rv));
    return 503;
  }
  ans->status = 200;
  ans->ack_type = ea->codec->content_type;
  snprintf(ans->message, sizeof(ans->message), "%s",
           applied ? "applied" : "repeat: acknowledged again");
  return 200;
}

/* ---- life cycle
 * -------------------------------------------------------------------------- */

int op_etsi_init(op_etsi_adapter *ea, const op_adapter_ops *ops,
                 const op_etsi_codec *codec, const op_etsi_settings *s,
                 char *err, size_t errlen) {
  const gw_op_config *oc = s->oc;
  op_breaker_config bc = {oc->breaker_failures, oc->breaker_cooldown_ms, 1};
  int rv;

  rv = op_adapter_base_init(&ea->base, ops, &bc);
  if (rv != GW_OK) {
    snprintf(err, errlen, "breaker: %s", gw_strerror(rv));
    return rv;
  }
  ea->codec = codec;
  if (strlen(oc->ap_id) > MSS_URI_MAX || strlen(oc->ap_pwd) > MSS_PWD_MAX) {
    snprintf(err, errlen, "ap_id or ap_pwd too long");
    rv = GW_ERR_CONFIG;
    goto fail;
  }
  ea->url_sig = strdup(s->url_sig);
  ea->url_status = strdup(s->url_status);
  ea->url_receipt = strdup(s->url_receipt);
  if (!ea->url_sig || !ea->url_status || !ea->url_receipt) {
    snprintf(err, errlen, "out of memory");
    rv = GW_ERR_NOMEM;
    goto fail;
  }
  snprintf(ea->ap_id, sizeof(ea->ap_id), "%s", oc->ap_id);
  snprintf(ea->ap_pwd, sizeof(ea->ap_pwd), "%s", oc->ap_pwd);
  ea->mss_format = s->mss_format;
  ea->minor_version = s->minor_version;
  ea->poll_first_ms = oc->poll_first_ms;
  ea->poll_interval_ms = oc->poll_interval_ms;
  ea->timeout_s = oc->timeout_s;
  ea->connect_timeout_ms = oc->connect_timeout_ms;
  ea->http_timeout_ms = oc->http_timeout_ms;
  ea->status_retries = oc->status_retries;
  ea->max_response = oc->max_response;
  ea->base.configured = ea->ap_id[0] != '\0';
  if (!ea->base.configured) {
    snprintf(ea->base.why_unconfigured, sizeof(ea->base.why_unconfigured),
             "not configured: operators.%s.ap_id is empty", ops->name);
  }
  if (s->notifications && oc->notify_url && oc->notify_url[0]) {
    size_t sl = oc->notify_secret ? strlen(oc->notify_secret) : 0;
    if (sl < SECRET_MIN || sl > sizeof(ea->notify_secret)) {
      snprintf(err, errlen,
               "operators.%s.notify_secret must be %d..%zu bytes when "
               "notify_url is set",
               ops->name, SECRET_MIN, sizeof(ea->notify_secret));
      rv = GW_ERR_CONFIG;
      goto fail;
    }
    memcpy(ea->notify_secret, oc->notify_secret, sl);
    ea->notify_secret_len = sl;
    ea->notify_overdue_ms = oc->notify_overdue_ms;
    ea->notify_max_skew_s = oc->notify_max_skew_s;
    rv = nt_new(&ea->nt);
    if (rv != GW_OK) {
      snprintf(err, errlen, "out of memory");
      goto fail;
    }
  }
  return GW_OK;

fail:
  op_etsi_free(ea);
  return rv;
}

void op_etsi_free(op_etsi_adapter *ea) {
  OPENSSL_cleanse(ea->ap_pwd, sizeof(ea->ap_pwd));
  OPENSSL_cleanse(ea->notify_secret, sizeof(ea->notify_secret));
  free(ea->url_sig);
  free(ea->url_status);
  free(ea->url_receipt);
  ea->url_sig = ea->url_status = ea->url_receipt = NULL;
  nt_del(ea->nt);
  ea->nt = NULL;
  op_adapter_base_free(&ea->base);
}
