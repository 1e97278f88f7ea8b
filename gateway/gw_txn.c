/* gw_txn.c — sign-in transactions (gw_txn.h). */
#include "gw_txn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "gw_async.h"
#include "gw_audit.h"
#include "gw_buf.h"
#include "gw_config.h"
#include "gw_err.h"
#include "gw_limits.h"
#include "gw_log.h"
#include "gw_store.h"
#include "gw_verify.h"
#include "mss.h"
#include "op_adapter.h"
#include "p11.h"

#define BUCKETS 4096
#define MAX_TXNS 200000     /* in memory at once, waiting or kept */
#define KEEP_AFTER_MS 60000 /* kept after expiry: late polls get expired */
#define BINDING_MAX 64      /* characters of a binding_message */
#define TEXT_MAX 600        /* bytes of the text for the phone */
#define DTBS_LABEL "mpkigw sign-in v1"

/* ---- names ------------------------------------------------------------ */

static const char *const state_names[] = {
    "created", "sent", "signed", "verified", "done", "failed", "expired"};

const char *gw_txn_state_name(gw_txn_state s) {
  return (unsigned)s < sizeof(state_names) / sizeof(state_names[0])
             ? state_names[s]
             : "unknown";
}

static const struct {
  const char *name, *text, *pub;
} failures[GW_TXN_FAIL_COUNT_] = {
    [GW_TXN_FAIL_NONE] = {"none", "", "none"},
    [GW_TXN_FAIL_USER_CANCELLED] = {"user_cancelled",
                                    "the user refused on the phone",
                                    "user_cancelled"},
    [GW_TXN_FAIL_TIMED_OUT] = {"timed_out", "the phone did not answer in time",
                               "not_completed"},
    [GW_TXN_FAIL_PIN_BLOCKED] = {"pin_blocked", "the SIM's PIN is blocked",
                                 "pin_blocked"},
    [GW_TXN_FAIL_NOT_SUBSCRIBER] = {"not_subscriber",
                                    "the SIM has no mobile-PKI service",
                                    "not_completed"},
    [GW_TXN_FAIL_PHONE_ABSENT] = {"phone_absent",
                                  "the phone could not be reached",
                                  "not_completed"},
    [GW_TXN_FAIL_SIM_ERROR] = {"sim_error", "the SIM application failed",
                               "sim_error"},
    [GW_TXN_FAIL_INVALID_SIGNATURE] = {"invalid_signature",
                                       "the signature did not verify",
                                       "invalid_signature"},
    [GW_TXN_FAIL_REVOKED_CERTIFICATE] = {"revoked_certificate",
                                         "the SIM's certificate is revoked",
                                         "revoked_certificate"},
    [GW_TXN_FAIL_CERTIFICATE] = {"certificate_invalid",
                                 "the SIM's certificate is not acceptable",
                                 "certificate_invalid"},
    [GW_TXN_FAIL_IDENTITY_MISMATCH] = {"identity_mismatch",
                                       "the certificate names someone else",
                                       "identity_mismatch"},
    [GW_TXN_FAIL_OPERATOR_UNAVAILABLE] = {"operator_unavailable",
                                          "the mobile operator is unavailable",
                                          "operator_unavailable"},
    [GW_TXN_FAIL_OPERATOR_ERROR] = {"operator_error",
                                    "the mobile operator refused the request",
                                    "operator_error"},
    [GW_TXN_FAIL_CANCELLED] = {"cancelled", "the sign-in was cancelled",
                               "cancelled"},
    [GW_TXN_FAIL_INTERNAL] = {"internal_error", "an internal error",
                              "internal_error"},
};

const char *gw_txn_failure_name(gw_txn_failure f) {
  return (unsigned)f < GW_TXN_FAIL_COUNT_ ? failures[f].name : "unknown";
}

const char *gw_txn_failure_text(gw_txn_failure f) {
  return (unsigned)f < GW_TXN_FAIL_COUNT_ ? failures[f].text : "unknown";
}

const char *gw_txn_failure_public(gw_txn_failure f) {
  return (unsigned)f < GW_TXN_FAIL_COUNT_ ? failures[f].pub : "unknown";
}

int gw_txn_code(const uint8_t *h, size_t n) {
  if (!h || n == 0) {
    return -1;
  }
  return ((h[0] & 0xFC) << 5) | (h[n - 1] & 0x7F);
}

/* ---- the engine ----------------------------------------------------------
 */

typedef struct tl_ctx tl_ctx;

typedef struct txn {
  gw_txn_info info; /* guarded by the engine's mutex */
  uint8_t dtbs[32];
  long long last_poll_ms;
  char mssp_trans_id[65]; /* the operator's, once known (loop only) */
  /* Owned by the loop the transaction began on. */
  gw_txn_engine *e;
  tl_ctx *tl;
  op_txn *op;
  struct event *timer;      /* expiry, then removal */
  int removing;             /* the timer now means "forget it" */
  int verifying;            /* a verification job is on the pool */
  struct event *cancel_ev;  /* activated by gw_txn_cancel (any thread) */
  char *ping_endpoint;      /* CIBA ping mode, NULL = poll */
  char *ping_token;         /* the client's bearer token: wiped */
  op_http_req *ping_req;    /* the notification in flight */
  struct event *ping_timer; /* the next attempt */
  int ping_attempts;
  int pinged;                     /* the notification was started */
  uint64_t limit_ticket;          /* gw_limits: released at the end */
  int cancel_requested;           /* guarded by the engine's mutex */
  struct gw_txn_watcher *watches; /* guarded by the engine's mutex */
  int nwatches;
  struct txn *next_id, *next_req; /* hash chains */
  struct txn *tl_prev, *tl_next;  /* the loop's list */
} txn;

/* Per-thread state: the store handle of the thread and, on workers that
 * began transactions, their loop, its op_http and its transactions. */
/* A stand-in for a sign-in that an unknown number never started: it holds
 * the limits' pending mark of that number until a real sign-in would have
 * expired, so that nobody can tell registered numbers by the limits. */
typedef struct decoy {
  gw_txn_engine *e;
  uint64_t ticket;
  struct event *ev;
  struct decoy *prev, *next;
} decoy;

struct tl_ctx {
  gw_txn_engine *e;
  gw_store *st;
  struct event_base *base;
  op_http *http;
  txn *head;
  decoy *decoys;
};

struct gw_txn_engine {
  const gw_config *cfg;
  op_registry *ops;
  p11_pool *pool;
  gw_verify *verifier;
  gw_limits *limits; /* NULL: no abuse limits */
  gw_audit *audit;   /* NULL: no audit log */
  pthread_mutex_t mu;
  pthread_key_t tl_key;
  txn *by_id[BUCKETS];
  txn *by_req[BUCKETS];
  size_t count;
  _Atomic uint64_t begun;
  _Atomic uint64_t ended[GW_TXN_EXPIRED + 1];
  _Atomic uint64_t failed[GW_TXN_FAIL_COUNT_];
  _Atomic uint64_t verify_us, verify_n;
};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t bucket(const char *s) {
  uint64_t h = 1469598103934665603ull;

  for (; *s; s++) {
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  }
  return (size_t)(h % BUCKETS);
}

/* Random ids: base64url of 32 bytes (256 bits). */
static int random_id(char out[GW_TXN_ID_LEN + 1]) {
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  unsigned char r[33];
  size_t o = 0;

  if (RAND_bytes(r, 32) != 1) {
    return GW_ERR_INTERNAL;
  }
  r[32] = 0;
  for (size_t i = 0; i < 33 && o < GW_TXN_ID_LEN; i += 3) {
    unsigned v = (unsigned)r[i] << 16 |
                 (i + 1 < 33 ? (unsigned)r[i + 1] << 8 : 0u) |
                 (i + 2 < 33 ? r[i + 2] : 0u);
    for (int k = 3; k >= 0 && o < GW_TXN_ID_LEN; k--) {
      out[o++] = b64[(v >> (6 * k)) & 63];
    }
  }
  out[GW_TXN_ID_LEN] = '\0';
  OPENSSL_cleanse(r, sizeof(r));
  return GW_OK;
}

static void tl_free(void *p);

static tl_ctx *tl_get(gw_txn_engine *e) {
  tl_ctx *tl = pthread_getspecific(e->tl_key);
  char err[256];

  if (tl) {
    return tl;
  }
  tl = calloc(1, sizeof(*tl));
  if (!tl) {
    return NULL;
  }
  tl->e = e;
  if (gw_store_open(&tl->st, e->cfg->store_backend, e->cfg->store_path,
                    e->cfg->store_busy_timeout_ms, err, sizeof(err)) != GW_OK) {
    GW_LOG(GW_LOG_ERROR, "sign-in: cannot open the store", "error=\"%s\"", err);
    free(tl);
    return NULL;
  }
  pthread_setspecific(e->tl_key, tl);
  return tl;
}

/* Writes the transaction's record (the caller holds nothing). A failed
 * write is logged; the sign-in goes on (the memory copy answers). */
static void persist(txn *t) {
  gw_store_txn row;
  gw_txn_info i;
  int rv;

  if (!t->tl || !t->tl->st) {
    return;
  }
  pthread_mutex_lock(&t->e->mu);
  i = t->info;
  pthread_mutex_unlock(&t->e->mu);
  memset(&row, 0, sizeof(row));
  snprintf(row.id, sizeof(row.id), "%s", i.id);
  snprintf(row.auth_req_id, sizeof(row.auth_req_id), "%s", i.auth_req_id);
  snprintf(row.client_id, sizeof(row.client_id), "%s", i.client_id);
  snprintf(row.msisdn, sizeof(row.msisdn), "%s", i.msisdn);
  snprintf(row.civil_id, sizeof(row.civil_id), "%s", i.civil_id);
  snprintf(row.operator_name, sizeof(row.operator_name), "%s", i.operator_name);
  snprintf(row.state, sizeof(row.state), "%s", gw_txn_state_name(i.state));
  snprintf(row.outcome, sizeof(row.outcome), "%s",
           i.failure ? gw_txn_failure_name(i.failure) : "");
  snprintf(row.detail, sizeof(row.detail), "%s", i.detail);
  snprintf(row.scope, sizeof(row.scope), "%s", i.scope);
  snprintf(row.resource, sizeof(row.resource), "%s", i.resource);
  snprintf(row.acr, sizeof(row.acr), "%s", i.acr);
  memcpy(row.dtbs, t->dtbs, sizeof(row.dtbs));
  snprintf(row.verification_code, sizeof(row.verification_code), "%s",
           i.verification_code);
  snprintf(row.mssp_trans_id, sizeof(row.mssp_trans_id), "%s",
           t->mssp_trans_id);
  row.created_at = i.created_ms;
  row.expires_at = i.expires_ms;
  row.updated_at = now_ms();
  row.auth_time = i.auth_time;
  row.consumed = i.state == GW_TXN_DONE;
  rv = gw_store_txn_put(t->tl->st, &row);
  if (rv != GW_OK) {
    GW_LOG(GW_LOG_ERROR, "sign-in: cannot record the transaction",
           "id=%.8s error=\"%s\"", i.id, gw_strerror(rv));
  }
}

/* Logs a change of state with the real reason. */
static void log_state(const txn *t) {
  gw_txn_info i;
  char q[300];

  pthread_mutex_lock(&t->e->mu);
  i = t->info;
  pthread_mutex_unlock(&t->e->mu);
  GW_LOG(i.state == GW_TXN_FAILED ? GW_LOG_WARN : GW_LOG_INFO, "sign-in",
         "id=%.12s client=%s msisdn=%s operator=%s state=%s failure=%s "
         "detail=%s",
         i.id, i.client_id, i.msisdn, i.operator_name,
         gw_txn_state_name(i.state),
         i.failure ? gw_txn_failure_name(i.failure) : "-",
         gw_log_quote(q, sizeof(q), i.detail, strlen(i.detail)));
}

#define MAX_WATCHES 64 /* per transaction */

struct gw_txn_watcher {
  gw_txn_engine *e;
  char id[GW_TXN_ID_LEN + 1];
  struct event *ev; /* on the watcher's loop: fired or timed out */
  gw_txn_watch_fn fn;
  void *arg;
  int linked; /* in its transaction's list (engine mutex) */
  struct gw_txn_watcher *next;
};

/* Wakes every watcher of |t|: the caller holds the engine's mutex. */
static void wake_watches_locked(txn *t) {
  gw_txn_watcher *w = t->watches;

  t->watches = NULL;
  t->nwatches = 0;
  while (w) {
    gw_txn_watcher *next = w->next;
    w->linked = 0;
    w->next = NULL;
    event_active(w->ev, EV_READ, 0); /* thread-safe: evthread is on */
    w = next;
  }
}

static void ping_start(txn *t);

/* Moves |t| to |state| (and |f| with |detail|): memory, counters, log,
 * store. */
static void set_state(txn *t, gw_txn_state state, gw_txn_failure f,
                      const char *detail) {
  gw_txn_engine *e = t->e;

  pthread_mutex_lock(&e->mu);
  t->info.state = state;
  t->info.failure = f;
  if (detail) {
    snprintf(t->info.detail, sizeof(t->info.detail), "%s", detail);
  }
  wake_watches_locked(t);
  pthread_mutex_unlock(&e->mu);
  if (state >= GW_TXN_DONE && state <= GW_TXN_EXPIRED) {
    atomic_fetch_add(&e->ended[state], 1);
  }
  if (state == GW_TXN_FAILED && (unsigned)f < GW_TXN_FAIL_COUNT_) {
    atomic_fetch_add(&e->failed[f], 1);
  }
  log_state(t);
  persist(t);
  if (e->audit && (state == GW_TXN_VERIFIED || state == GW_TXN_FAILED ||
                   state == GW_TXN_EXPIRED)) {
    pthread_mutex_lock(&e->mu);
    gw_audit_event(e->audit, "signin.end", t->info.civil_id,
                   json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "txn",
                             t->info.id, "client", t->info.client_id, "msisdn",
                             t->info.msisdn, "state", gw_txn_state_name(state),
                             "failure", f ? gw_txn_failure_name(f) : "",
                             "detail", t->info.detail));
    pthread_mutex_unlock(&e->mu);
  }
  if (t->limit_ticket && state >= GW_TXN_VERIFIED) {
    /* The pending mark goes; refusals count toward the cool-down of the
     * (phone, source) and (phone, client) pairs, a success resets them. */
    gw_limits_end(
        e->limits, t->limit_ticket,
        state == GW_TXN_VERIFIED                                          ? 0
        : f == GW_TXN_FAIL_USER_CANCELLED || f == GW_TXN_FAIL_PIN_BLOCKED ? 1
                                                                          : -1,
        now_ms());
    t->limit_ticket = 0;
  }
  if (t->ping_endpoint && !t->pinged &&
      (state == GW_TXN_VERIFIED || state == GW_TXN_FAILED ||
       state == GW_TXN_EXPIRED)) {
    ping_start(t);
  }
}

static gw_txn_state get_state(txn *t) {
  gw_txn_state s;

  pthread_mutex_lock(&t->e->mu);
  s = t->info.state;
  pthread_mutex_unlock(&t->e->mu);
  return s;
}

/* ---- table ------------------------------------------------------------ */

static void table_insert(gw_txn_engine *e, txn *t) {
  size_t b = bucket(t->info.id);

  t->next_id = e->by_id[b];
  e->by_id[b] = t;
  if (t->info.auth_req_id[0]) {
    b = bucket(t->info.auth_req_id);
    t->next_req = e->by_req[b];
    e->by_req[b] = t;
  }
  e->count++;
}

static void table_remove(gw_txn_engine *e, txn *t) {
  txn **pp = &e->by_id[bucket(t->info.id)];

  while (*pp && *pp != t) {
    pp = &(*pp)->next_id;
  }
  if (*pp) {
    *pp = t->next_id;
  }
  if (t->info.auth_req_id[0]) {
    pp = &e->by_req[bucket(t->info.auth_req_id)];
    while (*pp && *pp != t) {
      pp = &(*pp)->next_req;
    }
    if (*pp) {
      *pp = t->next_req;
    }
  }
  e->count--;
}

static txn *find_req(gw_txn_engine *e, const char *id) {
  txn *t = e->by_req[bucket(id)];

  while (t && strcmp(t->info.auth_req_id, id) != 0) {
    t = t->next_req;
  }
  return t;
}

static txn *find_id(gw_txn_engine *e, const char *id) {
  txn *t = e->by_id[bucket(id)];

  while (t && strcmp(t->info.id, id) != 0) {
    t = t->next_id;
  }
  return t;
}

/* Frees |t| (its loop's thread): out of the table and the loop's list. */
static void txn_free(txn *t) {
  gw_txn_engine *e = t->e;

  pthread_mutex_lock(&e->mu);
  table_remove(e, t);
  wake_watches_locked(t); /* they will find it gone */
  pthread_mutex_unlock(&e->mu);
  if (t->cancel_ev) {
    event_free(t->cancel_ev);
  }
  if (t->limit_ticket) {
    gw_limits_end(e->limits, t->limit_ticket, -1, now_ms());
  }
  if (t->ping_req) {
    op_http_cancel(t->ping_req);
  }
  if (t->ping_timer) {
    event_free(t->ping_timer);
  }
  if (t->ping_token) {
    OPENSSL_cleanse(t->ping_token, strlen(t->ping_token));
    free(t->ping_token);
  }
  free(t->ping_endpoint);
  if (t->tl) {
    if (t->tl_prev) {
      t->tl_prev->tl_next = t->tl_next;
    } else {
      t->tl->head = t->tl_next;
    }
    if (t->tl_next) {
      t->tl_next->tl_prev = t->tl_prev;
    }
  }
  if (t->op) {
    op_cancel(t->op);
  }
  if (t->timer) {
    event_free(t->timer);
  }
  free(t);
}

static void tl_free(void *p) {
  tl_ctx *tl = p;

  /* The worker is ending: its loop runs no more. Drop what lives there
   * (the store has every record). */
  while (tl->head) {
    tl->head->verifying = 0;
    txn_free(tl->head);
  }
  while (tl->decoys) {
    decoy *d = tl->decoys;
    tl->decoys = d->next;
    gw_limits_end(d->e->limits, d->ticket, -1, now_ms());
    event_free(d->ev);
    free(d);
  }
  op_http_del(tl->http);
  gw_store_close(tl->st);
  free(tl);
}

/* ---- timers ----------------------------------------------------------- */

static void arm(txn *t, long long at_ms) {
  long long d = at_ms - now_ms();
  struct timeval tv;

  if (d < 0) {
    d = 0;
  }
  tv.tv_sec = (time_t)(d / 1000);
  tv.tv_usec = (suseconds_t)((d % 1000) * 1000);
  evtimer_add(t->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  txn *t = arg;
  gw_txn_state s = get_state(t);

  (void)fd;
  (void)what;
  if (t->removing) {
    if (t->verifying) { /* the pool still holds it: later */
      arm(t, now_ms() + 1000);
      return;
    }
    txn_free(t);
    return;
  }
  if (s == GW_TXN_CREATED || s == GW_TXN_SENT || s == GW_TXN_SIGNED) {
    if (t->op) {
      op_cancel(t->op);
      t->op = NULL;
    }
    set_state(t, GW_TXN_EXPIRED, GW_TXN_FAIL_NONE,
              "no verified signature before the request expired");
  }
  t->removing = 1;
  arm(t, t->info.expires_ms + KEEP_AFTER_MS);
}

/* ---- verification (on the pool) ----------------------------------------
 */

typedef struct vjob {
  txn *t;
  gw_verify *v;
  op_sig_format fmt;
  unsigned char *sig, *cert;
  size_t sig_len, cert_len;
  uint8_t dtbs[32];
  char msisdn[17], civil_id[17];
  gw_verify_status st;
  gw_verify_result res;
  uint64_t us;
} vjob;

static void vjob_work(void *arg) {
  vjob *j = arg;
  gw_verify_req rq;
  struct timespec a, b;

  clock_gettime(CLOCK_MONOTONIC, &a);
  memset(&rq, 0, sizeof(rq));
  rq.sig = j->sig;
  rq.sig_len = j->sig_len;
  rq.cert = j->cert;
  rq.cert_len = j->cert_len;
  rq.alg = GW_VERIFY_ECDSA_RAW;
  rq.data = j->dtbs;
  rq.data_len = sizeof(j->dtbs);
  rq.data_kind = GW_VERIFY_DIGEST;
  rq.expect_msisdn = j->msisdn;
  rq.expect_civil_id = j->civil_id;
  j->res = j->fmt == OP_SIG_PKCS7 ? gw_verify_cms(j->v, &rq, &j->st)
                                  : gw_verify_raw(j->v, &rq, &j->st);
  clock_gettime(CLOCK_MONOTONIC, &b);
  j->us = (uint64_t)((b.tv_sec - a.tv_sec) * 1000000 +
                     (b.tv_nsec - a.tv_nsec) / 1000);
}

static gw_txn_failure verify_failure(gw_verify_result r) {
  switch (r) {
  case GW_VERIFY_OK:
    return GW_TXN_FAIL_NONE;
  case GW_VERIFY_BAD_FORMAT:
  case GW_VERIFY_BAD_SIGNATURE:
  case GW_VERIFY_UNSUPPORTED:
    return GW_TXN_FAIL_INVALID_SIGNATURE;
  case GW_VERIFY_REVOKED:
    return GW_TXN_FAIL_REVOKED_CERTIFICATE;
  case GW_VERIFY_IDENTITY_MISMATCH:
    return GW_TXN_FAIL_IDENTITY_MISMATCH;
  case GW_VERIFY_INTERNAL:
    return GW_TXN_FAIL_INTERNAL;
  default: /* certificate, chain, validity, usage, CRL/OCSP: fail closed */
    return GW_TXN_FAIL_CERTIFICATE;
  }
}

static void vjob_done(void *arg) {
  vjob *j = arg;
  txn *t = j->t;
  gw_txn_failure f = verify_failure(j->res);
  char detail[256];

  t->verifying = 0;
  atomic_fetch_add(&t->e->verify_us, j->us);
  atomic_fetch_add(&t->e->verify_n, 1);
  if (get_state(t) == GW_TXN_SIGNED) {
    if (f == GW_TXN_FAIL_NONE) {
      pthread_mutex_lock(&t->e->mu);
      t->info.auth_time = (long long)time(NULL);
      pthread_mutex_unlock(&t->e->mu);
      set_state(t, GW_TXN_VERIFIED, GW_TXN_FAIL_NONE, "");
      gw_store_sub_mark_signed(t->tl->st, j->msisdn, (long long)time(NULL));
    } else {
      snprintf(detail, sizeof(detail), "verifier: %s%s%.200s",
               gw_verify_result_str(j->res), j->st.detail[0] ? ": " : "",
               j->st.detail);
      set_state(t, GW_TXN_FAILED, f, detail);
    }
  }
  free(j->sig);
  free(j->cert);
  free(j);
}

static void start_verify(txn *t, const op_result *r) {
  vjob *j = calloc(1, sizeof(*j));
  int rv = GW_ERR_NOMEM;

  if (j) {
    j->t = t;
    j->v = t->e->verifier;
    j->fmt = r->sig_format;
    j->sig = malloc(r->signature_len ? r->signature_len : 1);
    j->cert = malloc(r->certificate_len ? r->certificate_len : 1);
    if (j->sig && j->cert) {
      memcpy(j->sig, r->signature, r->signature_len);
      j->sig_len = r->signature_len;
      if (r->certificate_len) {
        memcpy(j->cert, r->certificate, r->certificate_len);
      }
      j->cert_len = r->certificate_len;
      memcpy(j->dtbs, t->dtbs, sizeof(j->dtbs));
      pthread_mutex_lock(&t->e->mu);
      snprintf(j->msisdn, sizeof(j->msisdn), "%s", t->info.msisdn);
      snprintf(j->civil_id, sizeof(j->civil_id), "%s", t->info.civil_id);
      pthread_mutex_unlock(&t->e->mu);
      rv = gw_async_run(t->e->pool, t->tl->base, vjob_work, vjob_done, j);
    }
  }
  if (rv != GW_OK) {
    if (j) {
      free(j->sig);
      free(j->cert);
      free(j);
    }
    set_state(t, GW_TXN_FAILED, GW_TXN_FAIL_INTERNAL,
              "cannot queue the verification");
    return;
  }
  t->verifying = 1;
}

/* ---- the operator's answers ------------------------------------------ */

static gw_txn_failure op_failure(op_outcome o) {
  switch (o) {
  case OP_USER_CANCELLED:
    return GW_TXN_FAIL_USER_CANCELLED;
  case OP_TIMED_OUT:
    return GW_TXN_FAIL_TIMED_OUT;
  case OP_PIN_BLOCKED:
    return GW_TXN_FAIL_PIN_BLOCKED;
  case OP_NOT_SUBSCRIBER:
    return GW_TXN_FAIL_NOT_SUBSCRIBER;
  case OP_PHONE_ABSENT:
    return GW_TXN_FAIL_PHONE_ABSENT;
  case OP_SIM_ERROR:
    return GW_TXN_FAIL_SIM_ERROR;
  case OP_OPERATOR_UNAVAILABLE:
    return GW_TXN_FAIL_OPERATOR_UNAVAILABLE;
  default:
    return GW_TXN_FAIL_OPERATOR_ERROR;
  }
}

static void on_op(void *arg, op_txn *ot, const op_result *r) {
  txn *t = arg;
  char detail[300];

  if (r->phase == OP_PHASE_ACCEPTED) {
    snprintf(t->mssp_trans_id, sizeof(t->mssp_trans_id), "%s",
             r->mssp_trans_id);
    set_state(t, GW_TXN_SENT, GW_TXN_FAIL_NONE, "");
    if (op_follow(ot, on_op, t) != GW_OK) {
      op_cancel(ot);
      t->op = NULL;
      set_state(t, GW_TXN_FAILED, GW_TXN_FAIL_INTERNAL,
                "cannot follow the operator's transaction");
    }
    return;
  }
  t->op = NULL; /* freed when we return */
  if (r->outcome == OP_SIGNED) {
    set_state(t, GW_TXN_SIGNED, GW_TXN_FAIL_NONE, "");
    start_verify(t, r);
    return;
  }
  snprintf(detail, sizeof(detail), "%s: %s (ETSI %d)",
           op_outcome_name(r->outcome), r->detail, r->etsi_status);
  set_state(t, GW_TXN_FAILED, op_failure(r->outcome), detail);
}

/* ---- CIBA ping notifications ------------------------------------------- */

#define PING_ATTEMPTS 3
#define PING_TIMEOUT_MS 5000

static void ping_send(txn *t);

static void on_ping_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  ping_send(arg);
}

static void on_ping_done(void *arg, const op_http_result *res) {
  txn *t = arg;
  int ok = res->status == OP_HTTP_DONE && res->http_status >= 200 &&
           res->http_status < 300;
  int retry = !ok && (res->status != OP_HTTP_DONE || res->http_status >= 500);

  t->ping_req = NULL;
  GW_LOG(ok ? GW_LOG_INFO : GW_LOG_WARN, "ciba ping",
         "id=%.12s client=%s attempt=%d result=%s http_status=%ld", t->info.id,
         t->info.client_id, t->ping_attempts,
         ok ? "delivered" : op_http_status_str(res->status), res->http_status);
  if (ok || !retry || t->ping_attempts >= PING_ATTEMPTS) {
    return;
  }
  {
    struct timeval tv = {t->ping_attempts == 1 ? 1 : 4, 0};
    evtimer_add(t->ping_timer, &tv);
  }
}

static void ping_send(txn *t) {
  char body[128], authz[1100];
  const char *hdrs[2] = {authz, NULL};
  op_http_opts o;

  memset(&o, 0, sizeof(o));
  snprintf(body, sizeof(body), "{\"auth_req_id\":\"%s\"}", t->info.auth_req_id);
  snprintf(authz, sizeof(authz), "Authorization: Bearer %s", t->ping_token);
  o.url = t->ping_endpoint;
  o.content_type = "application/json";
  o.headers = hdrs;
  o.body = body;
  o.body_len = strlen(body);
  o.connect_timeout_ms = 2000;
  o.timeout_ms = PING_TIMEOUT_MS;
  o.max_response = 4096;
  t->ping_attempts++;
  if (op_http_submit(t->tl->http, &o, on_ping_done, t, &t->ping_req) != GW_OK) {
    t->ping_req = NULL;
    GW_LOG(GW_LOG_WARN, "ciba ping", "id=%.12s result=not_sent", t->info.id);
  }
  OPENSSL_cleanse(authz, sizeof(authz));
}

static void ping_start(txn *t) {
  t->pinged = 1;
  if (!t->ping_timer) {
    t->ping_timer = evtimer_new(t->tl->base, on_ping_timer, t);
  }
  if (t->ping_timer) {
    ping_send(t);
  }
}

/* gw_txn_cancel's request, on the transaction's loop. */
static void on_cancel(evutil_socket_t fd, short what, void *arg) {
  txn *t = arg;
  gw_txn_state s = get_state(t);

  (void)fd;
  (void)what;
  if (s != GW_TXN_CREATED && s != GW_TXN_SENT && s != GW_TXN_SIGNED) {
    return;
  }
  if (t->op) {
    op_cancel(t->op); /* the operator's side expires by itself */
    t->op = NULL;
  }
  set_state(t, GW_TXN_FAILED, GW_TXN_FAIL_CANCELLED, "cancelled by the caller");
}

/* ---- begin -------------------------------------------------------------
 */

/* The SIM a civil number signs with: the registry's subscribers with that
 * civil number; the one that last signed successfully. */
typedef struct pick {
  gw_store_sub best;
  int n;
} pick;

static int pick_cb(const gw_store_sub *sub, void *arg) {
  pick *p = arg;

  if (p->n == 0 || sub->last_signed_at > p->best.last_signed_at) {
    p->best = *sub;
  }
  p->n++;
  return 0;
}

static int all_digits(const char *s, size_t lo, size_t hi) {
  size_t n = strlen(s);

  if (n < lo || n > hi) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return 0;
    }
  }
  return 1;
}

/* Resolves the login hint into |sub| and the operator adapter. */
static gw_txn_begin_result resolve(gw_txn_engine *e, tl_ctx *tl,
                                   const char *hint, gw_store_sub *sub,
                                   op_adapter **a, const char **why) {
  op_route_result res;
  op_route_status rs;
  pick *p;
  int rv;

  if (!hint || !hint[0] || strlen(hint) > 64) {
    *why = "login_hint is missing or too long";
    return GW_TXN_BEGIN_BAD_HINT;
  }
  if (strncmp(hint, "tel:", 4) == 0 || hint[0] == '+' ||
      strncmp(hint, "00", 2) == 0) {
    rs = op_registry_route(e->ops, hint[0] == 't' ? hint + 4 : hint, &res, a);
    if (rs == OP_ROUTE_INVALID) {
      *why = "login_hint is not a telephone number";
      return GW_TXN_BEGIN_BAD_HINT;
    }
    if (rs == OP_ROUTE_NOT_OMAN) {
      *why = "login_hint is not an Omani mobile number";
      return GW_TXN_BEGIN_BAD_HINT;
    }
    if (rs != OP_ROUTE_OK) {
      *why = "no mobile-PKI subscriber has this number";
      return GW_TXN_BEGIN_UNKNOWN_USER;
    }
    rv = gw_store_sub_get(tl->st, res.msisdn, sub);
    if (rv == GW_ERR_NOT_FOUND) {
      /* The number, for the limits' stand-in (gw_txn_begin). */
      snprintf(sub->msisdn, sizeof(sub->msisdn), "%s", res.msisdn);
      *why = "no mobile-PKI subscriber has this number";
      return GW_TXN_BEGIN_UNKNOWN_USER;
    }
    if (rv != GW_OK) {
      *why = "the subscriber registry is unavailable";
      return GW_TXN_BEGIN_INTERNAL;
    }
    return GW_TXN_BEGIN_OK;
  }
  if (!all_digits(hint, 6, 16)) {
    *why = "login_hint must be tel:+968XXXXXXXX or a civil number";
    return GW_TXN_BEGIN_BAD_HINT;
  }
  p = calloc(1, sizeof(*p));
  if (!p) {
    *why = "out of memory";
    return GW_TXN_BEGIN_INTERNAL;
  }
  rv = gw_store_sub_list(tl->st, hint, pick_cb, p);
  if (rv != GW_OK || p->n == 0) {
    free(p);
    *why = rv != GW_OK ? "the subscriber registry is unavailable"
                       : "no mobile-PKI subscriber has this civil number";
    return rv != GW_OK ? GW_TXN_BEGIN_INTERNAL : GW_TXN_BEGIN_UNKNOWN_USER;
  }
  *sub = p->best;
  free(p);
  rs = op_registry_route(e->ops, sub->msisdn, &res, a);
  if (rs != OP_ROUTE_OK) {
    *why = "the subscriber's number has no operator";
    return GW_TXN_BEGIN_UNKNOWN_USER;
  }
  return GW_TXN_BEGIN_OK;
}

static void on_decoy(evutil_socket_t fd, short what, void *arg) {
  decoy *d = arg;
  tl_ctx *tl = pthread_getspecific(d->e->tl_key);

  (void)fd;
  (void)what;
  gw_limits_end(d->e->limits, d->ticket, -1, now_ms());
  if (d->prev) {
    d->prev->next = d->next;
  } else if (tl) {
    tl->decoys = d->next;
  }
  if (d->next) {
    d->next->prev = d->prev;
  }
  event_free(d->ev);
  free(d);
}

/* An unknown number asked for by an unauthenticated caller (|source_ip|
 * set): the same limits as a real sign-in, and the pending mark held
 * until it would have expired. Returns GW_TXN_BEGIN_UNKNOWN_USER, or
 * GW_TXN_BEGIN_LIMITED exactly when a registered number would have been
 * limited. */
static gw_txn_begin_result unknown_limits(gw_txn_engine *e, tl_ctx *tl,
                                          const gw_txn_start *req,
                                          const char *key, int counted,
                                          gw_txn_info *info, const char **why) {
  int expiry = req->expiry_s > 0 && req->expiry_s < e->cfg->oidc_ciba_expiry_s
                   ? req->expiry_s
                   : e->cfg->oidc_ciba_expiry_s;
  struct timeval tv = {expiry, 0};
  int retry = 0;
  gw_limit_result lr;
  decoy *d = calloc(1, sizeof(*d));

  if (!d || !(d->ev = evtimer_new(tl->base, on_decoy, d))) {
    free(d);
    return GW_TXN_BEGIN_UNKNOWN_USER;
  }
  d->e = e;
  lr = gw_limits_begin_ex(e->limits, key, req->source_ip, req->client_id,
                          counted ? GW_LIMITS_SOURCE_COUNTED : 0u, now_ms(),
                          &retry, &d->ticket);
  if (lr != GW_LIMIT_OK) {
    event_free(d->ev);
    free(d);
    info->limit = (int)lr;
    info->retry_after_s = retry;
    *why = gw_limit_result_message(lr);
    return GW_TXN_BEGIN_LIMITED;
  }
  d->next = tl->decoys;
  if (tl->decoys) {
    tl->decoys->prev = d;
  }
  tl->decoys = d;
  evtimer_add(d->ev, &tv);
  return GW_TXN_BEGIN_UNKNOWN_USER;
}

/* Printable text without control characters, at most BINDING_MAX
 * characters of valid UTF-8. */
static int binding_ok(const char *m) {
  size_t chars = 0;

  if (!mss_display_fits(m, strlen(m), NULL, NULL) &&
      strlen(m) > 4 * BINDING_MAX) {
    return 0;
  }
  for (const unsigned char *p = (const unsigned char *)m; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) {
      return 0;
    }
    chars += (*p & 0xC0) != 0x80;
  }
  return chars <= BINDING_MAX;
}

/* The text for the phone. Returns 0 when it fits the SIM's dialogue. */
static int display_text(char *out, size_t cap, const char *lang, const char *rp,
                        const char *code, const char *binding) {
  int n;

  if (strcmp(lang, "en") == 0) {
    n = snprintf(out, cap, "Sign in to %s? Code %s%s%s", rp, code,
                 binding ? ". " : "", binding ? binding : "");
  } else {
    /* "تسجيل الدخول إلى <rp>؟ الرمز <code>" */
    n = snprintf(out, cap,
                 "\xd8\xaa\xd8\xb3\xd8\xac\xd9\x8a\xd9\x84 "
                 "\xd8\xa7\xd9\x84\xd8\xaf\xd8\xae\xd9\x88\xd9\x84 "
                 "\xd8\xa5\xd9\x84\xd9\x89 %s\xd8\x9f "
                 "\xd8\xa7\xd9\x84\xd8\xb1\xd9\x85\xd8\xb2 %s%s%s",
                 rp, code, binding ? ". " : "", binding ? binding : "");
  }
  if (n < 0 || (size_t)n >= cap) {
    return -1;
  }
  return mss_display_fits(out, (size_t)n, NULL, NULL) ? 0 : -1;
}

/* SHA-256 over the label, then each field with a 2-byte length, then the
 * creation time: the data the SIM signs binds all of them. */
static void make_dtbs(const uint8_t challenge[32], const char *client_id,
                      const char *id, long long created_ms, uint8_t out[32]) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  unsigned char len[2], tbuf[8];
  const struct {
    const void *p;
    size_t n;
  } f[] = {{challenge, 32}, {client_id, strlen(client_id)}, {id, strlen(id)}};
  unsigned int olen = 0;

  for (int i = 0; i < 8; i++) {
    tbuf[i] = (unsigned char)((unsigned long long)created_ms >> (56 - 8 * i));
  }
  if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
    memset(out, 0, 32);
    EVP_MD_CTX_free(c);
    return;
  }
  EVP_DigestUpdate(c, DTBS_LABEL, sizeof(DTBS_LABEL) - 1);
  for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
    len[0] = (unsigned char)(f[i].n >> 8);
    len[1] = (unsigned char)f[i].n;
    EVP_DigestUpdate(c, len, 2);
    EVP_DigestUpdate(c, f[i].p, f[i].n);
  }
  EVP_DigestUpdate(c, tbuf, sizeof(tbuf));
  EVP_DigestFinal_ex(c, out, &olen);
  EVP_MD_CTX_free(c);
}

static tl_ctx *tl_for_loop(gw_txn_engine *e, struct event_base *base) {
  tl_ctx *tl = tl_get(e);

  if (!tl) {
    return NULL;
  }
  if (!tl->base) {
    if (op_registry_http_new(e->ops, base, &tl->http) != GW_OK) {
      return NULL;
    }
    tl->base = base;
  }
  return tl->base == base ? tl : NULL;
}

gw_txn_begin_result gw_txn_begin(gw_txn_engine *e, struct event_base *base,
                                 const gw_txn_start *req, gw_txn_info *info,
                                 const char **why) {
  tl_ctx *tl = tl_for_loop(e, base);
  uint8_t challenge[32];
  char text[TEXT_MAX];
  gw_store_sub *sub = NULL;
  op_adapter *a = NULL;
  op_health h;
  op_sign_req sr;
  gw_txn_begin_result br;
  txn *t = NULL;
  int expiry, rv, source_counted = 0;
  const char *lang = req->lang ? req->lang : e->cfg->oidc_display_lang;

  *why = "";
  if (!tl) {
    *why = "no store or HTTP client on this thread";
    return GW_TXN_BEGIN_INTERNAL;
  }
  if (req->binding_message && !binding_ok(req->binding_message)) {
    *why = "binding_message must be at most 64 printable characters";
    return GW_TXN_BEGIN_BAD_MESSAGE;
  }
  sub = calloc(1, sizeof(*sub));
  t = calloc(1, sizeof(*t));
  if (!sub || !t) {
    *why = "out of memory";
    br = GW_TXN_BEGIN_INTERNAL;
    goto fail;
  }
  /* The caller's address counts before the number is looked at, so that
   * unknown and registered numbers cost the same start. */
  if (e->limits && req->source_ip && req->source_ip[0] &&
      !req->source_counted) {
    int retry = 0;
    gw_limit_result lr =
        gw_limits_source_check(e->limits, req->source_ip, now_ms(), &retry);
    if (lr != GW_LIMIT_OK) {
      info->limit = (int)lr;
      info->retry_after_s = retry;
      *why = gw_limit_result_message(lr);
      br = GW_TXN_BEGIN_LIMITED;
      goto fail;
    }
    source_counted = 1;
  }
  br = resolve(e, tl, req->login_hint, sub, &a, why);
  if (br == GW_TXN_BEGIN_UNKNOWN_USER && e->limits && req->source_ip &&
      req->source_ip[0]) {
    br = unknown_limits(e, tl, req,
                        sub->msisdn[0] ? sub->msisdn : req->login_hint,
                        req->source_counted || source_counted, info, why);
  }
  if (br != GW_TXN_BEGIN_OK) {
    goto fail;
  }
  op_health_get(a, &h);
  if (!h.configured) {
    *why = "the subscriber's operator is not configured";
    br = GW_TXN_BEGIN_UNAVAILABLE;
    goto fail;
  }
  if (e->limits) {
    int retry = 0;
    gw_limit_result lr = gw_limits_begin_ex(
        e->limits, sub->msisdn, req->source_ip, req->client_id,
        req->source_counted || source_counted ? GW_LIMITS_SOURCE_COUNTED : 0u,
        now_ms(), &retry, &t->limit_ticket);
    if (lr != GW_LIMIT_OK) {
      info->limit = (int)lr;
      info->retry_after_s = retry;
      *why = gw_limit_result_message(lr);
      br = GW_TXN_BEGIN_LIMITED;
      goto fail;
    }
  }
  t->e = e;
  t->tl = tl;
  if (random_id(t->info.id) != GW_OK ||
      (req->ciba && random_id(t->info.auth_req_id) != GW_OK) ||
      RAND_bytes(challenge, sizeof(challenge)) != 1) {
    *why = "no randomness";
    br = GW_TXN_BEGIN_INTERNAL;
    goto fail;
  }
  expiry = req->expiry_s > 0 && req->expiry_s < e->cfg->oidc_ciba_expiry_s
               ? req->expiry_s
               : e->cfg->oidc_ciba_expiry_s;
  t->info.created_ms = now_ms();
  t->info.expires_ms = t->info.created_ms + (long long)expiry * 1000;
  t->info.interval_s = e->cfg->oidc_ciba_interval_s;
  t->last_poll_ms = 0; /* the first poll is never too early */
  snprintf(t->info.client_id, sizeof(t->info.client_id), "%s", req->client_id);
  snprintf(t->info.msisdn, sizeof(t->info.msisdn), "%s", sub->msisdn);
  snprintf(t->info.civil_id, sizeof(t->info.civil_id), "%s", sub->civil_id);
  snprintf(t->info.subscriber_name, sizeof(t->info.subscriber_name), "%s",
           sub->name);
  snprintf(t->info.operator_name, sizeof(t->info.operator_name), "%s",
           op_adapter_name(a));
  snprintf(t->info.scope, sizeof(t->info.scope), "%s",
           req->scope ? req->scope : "");
  snprintf(t->info.resource, sizeof(t->info.resource), "%s",
           req->resource ? req->resource : "");
  snprintf(t->info.acr, sizeof(t->info.acr), "%s", req->acr ? req->acr : "");
  if (req->ping_endpoint && req->ping_endpoint[0] && req->ping_token) {
    t->ping_endpoint = strdup(req->ping_endpoint);
    t->ping_token = strdup(req->ping_token);
    if (!t->ping_endpoint || !t->ping_token) {
      *why = "out of memory";
      br = GW_TXN_BEGIN_INTERNAL;
      goto fail;
    }
  }
  make_dtbs(challenge, t->info.client_id, t->info.id, t->info.created_ms,
            t->dtbs);
  OPENSSL_cleanse(challenge, sizeof(challenge));
  snprintf(t->info.verification_code, sizeof(t->info.verification_code), "%04d",
           gw_txn_code(t->dtbs, sizeof(t->dtbs)));
  if (display_text(text, sizeof(text), lang,
                   req->client_name && req->client_name[0] ? req->client_name
                                                           : req->client_id,
                   t->info.verification_code, req->binding_message) != 0) {
    *why = "the text for the phone (with binding_message) does not fit "
           "the SIM's screen";
    br = GW_TXN_BEGIN_BAD_MESSAGE;
    goto fail;
  }
  t->timer = evtimer_new(base, on_timer, t);
  t->cancel_ev = event_new(base, -1, 0, on_cancel, t);
  if (!t->timer || !t->cancel_ev) {
    *why = "out of memory";
    br = GW_TXN_BEGIN_INTERNAL;
    goto fail;
  }
  pthread_mutex_lock(&e->mu);
  if (e->count >= MAX_TXNS) {
    pthread_mutex_unlock(&e->mu);
    *why = "too many sign-ins in progress";
    br = GW_TXN_BEGIN_INTERNAL;
    goto fail;
  }
  table_insert(e, t);
  pthread_mutex_unlock(&e->mu);
  t->tl_next = tl->head;
  if (tl->head) {
    tl->head->tl_prev = t;
  }
  tl->head = t;
  atomic_fetch_add(&e->begun, 1);
  gw_audit_event(e->audit, "signin.begin", t->info.civil_id,
                 json_pack("{s:s, s:s, s:s, s:s, s:s}", "txn", t->info.id,
                           "client", t->info.client_id, "msisdn",
                           t->info.msisdn, "operator", t->info.operator_name,
                           "scope", t->info.scope));
  persist(t);
  log_state(t);
  arm(t, t->info.expires_ms);

  memset(&sr, 0, sizeof(sr));
  sr.msisdn = t->info.msisdn;
  sr.digest = t->dtbs;
  sr.display_text = text;
  sr.timeout_s = expiry;
  rv = op_submit(a, tl->http, &sr, on_op, t, &t->op);
  if (rv != GW_OK) {
    t->op = NULL;
    set_state(t, GW_TXN_FAILED, GW_TXN_FAIL_INTERNAL,
              "the operator adapter refused the request");
  }
  pthread_mutex_lock(&e->mu);
  *info = t->info;
  pthread_mutex_unlock(&e->mu);
  free(sub);
  return GW_TXN_BEGIN_OK;

fail:
  if (t && t->timer) {
    event_free(t->timer);
  }
  if (t && t->cancel_ev) {
    event_free(t->cancel_ev);
  }
  if (t && t->limit_ticket) {
    gw_limits_end(e->limits, t->limit_ticket, -1, now_ms());
  }
  if (t && t->ping_token) {
    OPENSSL_cleanse(t->ping_token, strlen(t->ping_token));
    free(t->ping_token);
  }
  if (t) {
    free(t->ping_endpoint);
  }
  free(t);
  free(sub);
  {
    char q[200];
    GW_LOG(GW_LOG_INFO, "sign-in refused", "client=%s result=%d reason=%s",
           req->client_id ? req->client_id : "-", (int)br,
           gw_log_quote(q, sizeof(q), *why, strlen(*why)));
  }
  return br;
}

/* ---- lookups ---------------------------------------------------------- */

static void expire_view(gw_txn_info *out) {
  if ((out->state == GW_TXN_CREATED || out->state == GW_TXN_SENT ||
       out->state == GW_TXN_SIGNED) &&
      now_ms() >= out->expires_ms) {
    out->state = GW_TXN_EXPIRED;
  }
}

int gw_txn_get_by_req(gw_txn_engine *e, const char *auth_req_id,
                      gw_txn_info *out) {
  txn *t;

  if (!auth_req_id || !auth_req_id[0]) {
    return GW_ERR_NOT_FOUND;
  }
  pthread_mutex_lock(&e->mu);
  t = find_req(e, auth_req_id);
  if (t) {
    *out = t->info;
  }
  pthread_mutex_unlock(&e->mu);
  if (!t) {
    return GW_ERR_NOT_FOUND;
  }
  expire_view(out);
  return GW_OK;
}

int gw_txn_poll(gw_txn_engine *e, const char *auth_req_id) {
  long long now = now_ms();
  int early;
  txn *t;

  pthread_mutex_lock(&e->mu);
  t = find_req(e, auth_req_id);
  if (!t) {
    pthread_mutex_unlock(&e->mu);
    return -1;
  }
  /* The first poll is welcome at any time (clients differ on whether to
   * wait an interval first); after it, one per interval, with a little
   * slack: clients' timers are not ours. */
  early = t->last_poll_ms != 0 &&
          now - t->last_poll_ms < (long long)t->info.interval_s * 1000 - 250;
  if (!early) {
    t->last_poll_ms = now;
  }
  pthread_mutex_unlock(&e->mu);
  return early;
}

int gw_txn_get(gw_txn_engine *e, const char *id, gw_txn_info *out) {
  txn *t;

  if (!id || !id[0]) {
    return GW_ERR_NOT_FOUND;
  }
  pthread_mutex_lock(&e->mu);
  t = find_id(e, id);
  if (t) {
    *out = t->info;
  }
  pthread_mutex_unlock(&e->mu);
  if (!t) {
    return GW_ERR_NOT_FOUND;
  }
  expire_view(out);
  return GW_OK;
}

static void on_watch(evutil_socket_t fd, short what, void *arg) {
  gw_txn_watcher *w = arg;
  gw_txn_engine *e = w->e;
  gw_txn_info info;
  txn *t;

  (void)fd;
  (void)what;
  pthread_mutex_lock(&e->mu);
  if (w->linked) { /* timed out: still in the list */
    gw_txn_watcher **pp;
    t = find_id(e, w->id);
    pp = t ? &t->watches : NULL;
    while (pp && *pp && *pp != w) {
      pp = &(*pp)->next;
    }
    if (pp && *pp) {
      *pp = w->next;
      t->nwatches--;
    }
    w->linked = 0;
  }
  pthread_mutex_unlock(&e->mu);
  if (gw_txn_get(e, w->id, &info) != GW_OK) {
    memset(&info, 0, sizeof(info));
    snprintf(info.id, sizeof(info.id), "%s", w->id);
    info.state = GW_TXN_EXPIRED;
  }
  event_free(w->ev);
  w->fn(w->arg, &info);
  free(w);
}

int gw_txn_watch(gw_txn_engine *e, const char *id, struct event_base *base,
                 int timeout_ms, gw_txn_watch_fn fn, void *arg,
                 gw_txn_watcher **out) {
  gw_txn_watcher *w = calloc(1, sizeof(*w));
  struct timeval tv;
  txn *t;

  if (!w) {
    return GW_ERR_NOMEM;
  }
  w->e = e;
  w->fn = fn;
  w->arg = arg;
  snprintf(w->id, sizeof(w->id), "%s", id ? id : "");
  w->ev = event_new(base, -1, 0, on_watch, w);
  if (!w->ev) {
    free(w);
    return GW_ERR_NOMEM;
  }
  pthread_mutex_lock(&e->mu);
  t = find_id(e, w->id);
  if (!t || t->nwatches >= MAX_WATCHES) {
    pthread_mutex_unlock(&e->mu);
    event_free(w->ev);
    free(w);
    return t ? GW_ERR_LIMIT : GW_ERR_NOT_FOUND;
  }
  if (t->info.state == GW_TXN_CREATED || t->info.state == GW_TXN_SENT ||
      t->info.state == GW_TXN_SIGNED) {
    w->linked = 1;
    w->next = t->watches;
    t->watches = w;
    t->nwatches++;
    if (timeout_ms < 0) {
      timeout_ms = 0;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    event_add(w->ev, &tv);
  } else {
    event_active(w->ev, EV_READ, 0); /* already over: at once */
  }
  pthread_mutex_unlock(&e->mu);
  *out = w;
  return GW_OK;
}

void gw_txn_unwatch(gw_txn_watcher *w) {
  gw_txn_engine *e;
  txn *t;

  if (!w) {
    return;
  }
  e = w->e;
  pthread_mutex_lock(&e->mu);
  if (w->linked) {
    gw_txn_watcher **pp;
    t = find_id(e, w->id);
    pp = t ? &t->watches : NULL;
    while (pp && *pp && *pp != w) {
      pp = &(*pp)->next;
    }
    if (pp && *pp) {
      *pp = w->next;
      t->nwatches--;
    }
    w->linked = 0;
  }
  pthread_mutex_unlock(&e->mu);
  event_free(w->ev); /* also out of the active queue: our own thread */
  free(w);
}

int gw_txn_cancel(gw_txn_engine *e, const char *id) {
  txn *t;
  int rv = GW_OK;

  pthread_mutex_lock(&e->mu);
  t = id ? find_id(e, id) : NULL;
  if (!t) {
    rv = GW_ERR_NOT_FOUND;
  } else if (t->info.state != GW_TXN_CREATED && t->info.state != GW_TXN_SENT &&
             t->info.state != GW_TXN_SIGNED) {
    rv = GW_ERR_INVALID;
  } else if (!t->cancel_requested) {
    t->cancel_requested = 1;
    event_active(t->cancel_ev, EV_READ, 0);
  }
  pthread_mutex_unlock(&e->mu);
  return rv;
}

int gw_txn_consume(gw_txn_engine *e, const char *id) {
  tl_ctx *tl;
  txn *t;
  int rv;

  pthread_mutex_lock(&e->mu);
  t = find_id(e, id);
  if (!t) {
    pthread_mutex_unlock(&e->mu);
    return GW_ERR_NOT_FOUND;
  }
  if (t->info.state == GW_TXN_DONE) {
    pthread_mutex_unlock(&e->mu);
    return GW_ERR_EXISTS;
  }
  if (t->info.state != GW_TXN_VERIFIED || now_ms() >= t->info.expires_ms) {
    pthread_mutex_unlock(&e->mu);
    return GW_ERR_INVALID;
  }
  t->info.state = GW_TXN_DONE;
  wake_watches_locked(t);
  pthread_mutex_unlock(&e->mu);
  atomic_fetch_add(&e->ended[GW_TXN_DONE], 1);
  /* The store decides across processes: one UPDATE ... consumed = 0. */
  tl = tl_get(e);
  rv = tl ? gw_store_txn_consume(tl->st, id) : GW_ERR_STORE;
  if (rv == GW_ERR_EXISTS) {
    return GW_ERR_EXISTS;
  }
  if (rv != GW_OK) {
    GW_LOG(GW_LOG_ERROR, "sign-in: cannot record consumption",
           "id=%.12s error=\"%s\"", id, gw_strerror(rv));
  }
  GW_LOG(GW_LOG_INFO, "sign-in", "id=%.12s state=done", id);
  return GW_OK;
}

void gw_txn_set_audit(gw_txn_engine *e, gw_audit *a) {
  e->audit = a;
}

size_t gw_txn_count(gw_txn_engine *e) {
  size_t n;

  pthread_mutex_lock(&e->mu);
  n = e->count;
  pthread_mutex_unlock(&e->mu);
  return n;
}

int gw_txn_metrics(gw_txn_engine *e, gw_buf *out) {
  int rv = GW_OK;

#define P(...)                                                                 \
  do {                                                                         \
    if (rv == GW_OK) {                                                         \
      rv = gw_buf_printf(out, __VA_ARGS__);                                    \
    }                                                                          \
  } while (0)
  P("# HELP mpkigw_signins_started_total Sign-in transactions begun.\n"
    "# TYPE mpkigw_signins_started_total counter\n"
    "mpkigw_signins_started_total %llu\n",
    (unsigned long long)atomic_load(&e->begun));
  P("# HELP mpkigw_signins_ended_total Sign-ins by how they ended.\n"
    "# TYPE mpkigw_signins_ended_total counter\n");
  P("mpkigw_signins_ended_total{state=\"done\"} %llu\n",
    (unsigned long long)atomic_load(&e->ended[GW_TXN_DONE]));
  P("mpkigw_signins_ended_total{state=\"expired\"} %llu\n",
    (unsigned long long)atomic_load(&e->ended[GW_TXN_EXPIRED]));
  for (int f = 1; f < GW_TXN_FAIL_COUNT_; f++) {
    P("mpkigw_signins_ended_total{state=\"failed\",failure=\"%s\"} %llu\n",
      failures[f].name, (unsigned long long)atomic_load(&e->failed[f]));
  }
  P("# HELP mpkigw_signins_in_memory Sign-ins waiting or kept until expiry.\n"
    "# TYPE mpkigw_signins_in_memory gauge\n"
    "mpkigw_signins_in_memory %zu\n",
    gw_txn_count(e));
  P("# HELP mpkigw_signin_verify_seconds Signature and certificate "
    "verification.\n# TYPE mpkigw_signin_verify_seconds summary\n"
    "mpkigw_signin_verify_seconds_sum %.6f\n"
    "mpkigw_signin_verify_seconds_count %llu\n",
    (double)atomic_load(&e->verify_us) / 1e6,
    (unsigned long long)atomic_load(&e->verify_n));
#undef P
  return rv;
}

/* ---- life cycle ------------------------------------------------------- */

int gw_txn_engine_new(gw_txn_engine **out, const gw_config *cfg,
                      op_registry *ops, p11_pool *pool, char *err,
                      size_t errlen) {
  char roots[4096], inter[4096];
  gw_verify_config vc;
  gw_txn_engine *e = calloc(1, sizeof(*e));
  int rv;

  if (!e) {
    snprintf(err, errlen, "out of memory");
    return GW_ERR_NOMEM;
  }
  e->cfg = cfg;
  e->ops = ops;
  e->pool = pool;
  snprintf(roots, sizeof(roots), "%s/root-ca.pem", cfg->pki_dir);
  snprintf(inter, sizeof(inter), "%s/issuing-ca.pem", cfg->pki_dir);
  gw_verify_config_init(&vc);
  vc.roots_file = roots;
  vc.intermediates_file = inter;
  vc.crl_file = cfg->pki_crl && cfg->pki_crl[0] ? cfg->pki_crl : NULL;
  vc.ocsp_url =
      cfg->pki_ocsp_url && cfg->pki_ocsp_url[0] ? cfg->pki_ocsp_url : NULL;
  vc.clock_skew_s = cfg->pki_clock_skew_s;
  rv = gw_verify_new(&e->verifier, &vc, err, errlen);
  if (rv != GW_OK) {
    free(e);
    return rv;
  }
  if (gw_limits_new(&e->limits, &cfg->signin) != GW_OK) {
    gw_verify_del(e->verifier);
    free(e);
    snprintf(err, errlen, "cannot create the sign-in limits");
    return GW_ERR_CONFIG;
  }
  if (pthread_mutex_init(&e->mu, NULL) != 0 ||
      pthread_key_create(&e->tl_key, tl_free) != 0) {
    gw_limits_del(e->limits);
    gw_verify_del(e->verifier);
    free(e);
    snprintf(err, errlen, "cannot create a mutex");
    return GW_ERR_NOMEM;
  }
  *out = e;
  return GW_OK;
}

void gw_txn_engine_del(gw_txn_engine *e) {
  tl_ctx *tl;

  if (!e) {
    return;
  }
  /* The calling thread's own context (the main thread's, if it made
   * one); workers freed theirs when they ended. */
  tl = pthread_getspecific(e->tl_key);
  if (tl) {
    pthread_setspecific(e->tl_key, NULL);
    tl_free(tl);
  }
  pthread_key_delete(e->tl_key);
  pthread_mutex_destroy(&e->mu);
  gw_limits_del(e->limits);
  gw_verify_del(e->verifier);
  free(e);
}
