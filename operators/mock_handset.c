/* mock_handset.c — the virtual handsets of the mock MSSPs. See
 * mock_handset.h.
 *
 * The engine is the only truth about requests: this file keeps no copy of
 * them. What it keeps per phone is a version, handed out from one counter
 * each time the engine says something changed for that phone
 * (mock_handset_changed), and the long polls parked on that phone. A poll
 * is always answered with what mock_mssp_pending says at that moment.
 *
 * The counter starts at the wall clock in microseconds, so that versions
 * keep growing across restarts of the mock and a page that survived a
 * restart sees a different version and reloads at once instead of waiting
 * on a number that means something else now (2^53 is far: JavaScript reads
 * the numbers exactly).
 *
 * Everything runs on the engine's loop (the mock's single worker). A
 * change does not answer polls from inside the engine's hook: it activates
 * their timers, so the answers go out on the next loop iteration, after
 * the engine finished what it was doing, and several changes in a row are
 * answered once. */
#include "mock_handset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "gw_buf.h"
#include "gw_err.h"
#include "gw_form.h"
#include "gw_http.h"
#include "gw_log.h"
#include "mock_front.h"
#include "mock_mssp.h"
#include "mock_sim.h"
#include "mss.h"

#define HS_WAIT_MAX_MS 30000     /* longest long poll */
#define HS_WAITERS_MAX 1024      /* parked long polls, all phones */
#define HS_PHONE_WAITERS_MAX 64  /* parked long polls on one phone */
#define HS_PHONES_MAX (1 << 20)  /* phones with a version of their own */
#define HS_BUCKETS 4096          /* of the phone table (a power of two) */
#define HS_PENDING_MAX 4         /* requests listed per phone */
#define HS_PAGE_MAX (256 * 1024) /* the HTML page */
#define HS_BODY_MAX 1024         /* POST bodies */
#define HS_PIN_MIN 4             /* a SIM PIN is 4 to 8 digits (3GPP) */
#define HS_PIN_MAX 8

/* ---- state -------------------------------------------------------------- */

typedef struct hs_waiter hs_waiter;

typedef struct hs_phone {
  struct hs_phone *next; /* bucket chain */
  char msisdn[MSS_MSISDN_MAX + 1];
  unsigned long long version;
  hs_waiter *waiters; /* parked long polls, doubly linked */
  size_t nwaiters;
} hs_phone;

/* A parked long poll. The timer is embedded (event_assign) so that
 * freeing a waiter never touches the event_base, which may be gone when
 * mock_handset_del runs. */
struct hs_waiter {
  hs_waiter *prev, *next;
  mock_handset *h;
  hs_phone *phone;
  gw_exch *x;
  struct event ev;
};

struct mock_handset {
  hs_phone *buckets[HS_BUCKETS];
  size_t nphones;
  size_t nwaiters;
  unsigned long long start; /* the version of a phone never changed */
  unsigned long long clock; /* the last version handed out */
  int full_logged;
};

static long long wall_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a: the keys are normalised MSISDNs, short and not chosen by an
 * attacker (only subscribers get an entry). */
static size_t phone_hash(const char *s) {
  unsigned h = 2166136261u;

  for (; *s; s++) {
    h = (h ^ (unsigned char)*s) * 16777619u;
  }
  return h & (HS_BUCKETS - 1);
}

static hs_phone *phone_find(const mock_handset *h, const char *msisdn) {
  hs_phone *p = h->buckets[phone_hash(msisdn)];

  while (p && strcmp(p->msisdn, msisdn) != 0) {
    p = p->next;
  }
  return p;
}

/* The entry of |msisdn|, made when missing; NULL when out of memory or
 * when the table is full (logged once). */
static hs_phone *phone_get(mock_handset *h, const char *msisdn) {
  hs_phone *p = phone_find(h, msisdn);
  size_t b;

  if (p) {
    return p;
  }
  if (h->nphones >= HS_PHONES_MAX || strlen(msisdn) > MSS_MSISDN_MAX) {
    if (!h->full_logged) {
      GW_LOG(GW_LOG_WARN, "handset table full", "max=%d", HS_PHONES_MAX);
      h->full_logged = 1;
    }
    return NULL;
  }
  p = calloc(1, sizeof(*p));
  if (!p) {
    return NULL;
  }
  memcpy(p->msisdn, msisdn, strlen(msisdn) + 1);
  p->version = h->start;
  b = phone_hash(msisdn);
  p->next = h->buckets[b];
  h->buckets[b] = p;
  h->nphones++;
  return p;
}

static unsigned long long phone_version(const mock_handset *h,
                                        const char *msisdn) {
  const hs_phone *p = phone_find(h, msisdn);

  return p ? p->version : h->start;
}

int mock_handset_new(mock_handset **out) {
  mock_handset *h = calloc(1, sizeof(*h));

  if (!h) {
    return GW_ERR_NOMEM;
  }
  h->start = (unsigned long long)wall_ms() * 1000;
  h->clock = h->start;
  *out = h;
  return GW_OK;
}

void mock_handset_del(mock_handset *h) {
  if (!h) {
    return;
  }
  for (size_t b = 0; b < HS_BUCKETS; b++) {
    hs_phone *p = h->buckets[b], *pn;
    for (; p; p = pn) {
      hs_waiter *w = p->waiters, *wn;
      pn = p->next;
      /* Only after the server stopped (its loop may be freed already):
       * the waiters' events are not deleted, just their memory freed. */
      for (; w; w = wn) {
        wn = w->next;
        free(w);
      }
      free(p);
    }
  }
  free(h);
}

/* ---- small helpers ------------------------------------------------------- */

static mock_app *app_of(gw_exch *x) {
  return gw_exch_app(x);
}

static void reply_json(gw_exch *x, int status, json_t *j) {
  if (!j) {
    gw_resp_error(x, 500, "internal_error", "out of memory");
    return;
  }
  gw_resp_json(x, status, j);
}

/* Binds the engine to this worker's loop, normalises the path's {msisdn}
 * into |norm| and checks that it is a subscriber of this MSSP. Returns 0,
 * or -1 after answering (500, 400 invalid_msisdn, 404
 * unknown_subscriber). */
static int phone_of(gw_exch *x, char *norm, size_t cap) {
  const char *m = gw_route_param(&gw_exch_req(x)->match, "msisdn");
  mock_app *app = app_of(x);
  mock_sub_info si;
  char qm[48];

  if (!app->handset || mock_mssp_bind_exch(app->engine, x) != GW_OK) {
    gw_resp_error(x, 500, "internal_error",
                  "the engine runs on another event loop (server.workers "
                  "must be 1)");
    return -1;
  }
  if (!m || mock_mssp_msisdn_norm(m, norm, cap) != GW_OK) {
    gw_resp_error(x, 400, "invalid_msisdn",
                  "not a phone number: +968XXXXXXXX, 00968XXXXXXXX or "
                  "8 digits");
    return -1;
  }
  if (mock_mssp_subscriber(app->engine, norm, &si) != GW_OK) {
    gw_log_quote(qm, sizeof(qm), norm, strlen(norm));
    gw_resp_error(x, 404, "unknown_subscriber",
                  "%s is not a subscriber of this MSSP", qm);
    return -1;
  }
  return 0;
}

/* "2026-01-31T12:00:00.123Z" for Unix ms |ms|. */
static void iso_ms(long long ms, char *out, size_t cap) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  char day[24];

  gmtime_r(&s, &tm);
  strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, cap, "%s.%03dZ", day, (int)(ms % 1000));
}

/* Seconds left until |t| expires, rounded up, never negative. */
static long long expires_in_s(const mock_tx_info *t, long long now) {
  long long left = t->deadline_at - now;

  return left > 0 ? (left + 999) / 1000 : 0;
}

static void code_str(const mock_tx_info *t, char *out, size_t cap) {
  snprintf(out, cap, "%04d", mock_handset_code(t->digest, sizeof(t->digest)));
}

static const char *state_name(mock_tx_state s) {
  return s == MOCK_TX_WAITING ? "waiting" : "signing";
}

/* The requests waiting on |msisdn| (at most HS_PENDING_MAX), in |*out|
 * (the caller frees) and |*n|. Returns GW_OK or the engine's error. */
static int pending_get(mock_mssp *e, const char *msisdn, mock_tx_info **out,
                       size_t *n) {
  mock_tx_info *t = calloc(HS_PENDING_MAX, sizeof(*t));
  int rv;

  *n = 0;
  if (!t) {
    return GW_ERR_NOMEM;
  }
  rv = mock_mssp_pending(e, msisdn, t, HS_PENDING_MAX, n);
  if (rv != GW_OK) {
    free(t);
    return rv;
  }
  if (*n > HS_PENDING_MAX) {
    *n = HS_PENDING_MAX;
  }
  *out = t;
  return GW_OK;
}

/* ---- GET /handset/{msisdn}/requests -------------------------------------- */

static json_t *request_json(const mock_tx_info *t, long long now) {
  char code[16], created[40], expires[40];

  code_str(t, code, sizeof(code));
  iso_ms(t->created_at, created, sizeof(created));
  iso_ms(t->deadline_at, expires, sizeof(expires));
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:s}", "mssp_trans_id",
                   t->mssp_trans_id, "display", t->display, "verification_code",
                   code, "created_at", created, "expires_at", expires,
                   "expires_in_s", (json_int_t)expires_in_s(t, now),
                   "pin_attempts", t->pin_attempts, "state",
                   state_name(t->state));
}

/* Answers with the phone's current requests and version. */
static void answer_requests(gw_exch *x, const char *msisdn) {
  mock_app *app = app_of(x);
  mock_tx_info *t = NULL;
  json_t *list = NULL, *item;
  long long now = wall_ms();
  size_t n = 0;
  int rv = pending_get(app->engine, msisdn, &t, &n);

  if (rv != GW_OK) {
    gw_resp_error(x, rv == GW_ERR_NOMEM ? 500 : 404,
                  rv == GW_ERR_NOMEM ? "internal_error" : "unknown_subscriber",
                  "the phone's requests cannot be read: %s", gw_strerror(rv));
    return;
  }
  list = json_array();
  for (size_t i = 0; list && i < n; i++) {
    item = request_json(&t[i], now);
    if (!item || json_array_append_new(list, item) != 0) {
      json_decref(list);
      list = NULL;
    }
  }
  free(t);
  if (!list) {
    reply_json(x, 500, NULL);
    return;
  }
  reply_json(x, 200,
             json_pack("{s:s, s:I, s:o}", "msisdn", msisdn, "version",
                       (json_int_t)phone_version(app->handset, msisdn),
                       "requests", list));
}

static void waiter_unlink(hs_waiter *w) {
  event_del(&w->ev);
  if (w->prev) {
    w->prev->next = w->next;
  } else {
    w->phone->waiters = w->next;
  }
  if (w->next) {
    w->next->prev = w->prev;
  }
  w->phone->nwaiters--;
  w->h->nwaiters--;
}

/* The wait ended or the phone changed: answer with what is there now. */
static void waiter_fire(evutil_socket_t fd, short what, void *arg) {
  hs_waiter *w = arg;

  (void)fd;
  (void)what;
  waiter_unlink(w);
  answer_requests(w->x, w->phone->msisdn);
  free(w);
}

/* The client went away. */
static void waiter_cancel(void *arg) {
  hs_waiter *w = arg;

  waiter_unlink(w);
  free(w);
}

/* Parks |x| on the phone |msisdn| for at most |wait_ms|. */
static void park(gw_exch *x, const char *msisdn, long wait_ms) {
  mock_handset *h = app_of(x)->handset;
  struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
  hs_phone *p = NULL;
  hs_waiter *w;

  if (h->nwaiters < HS_WAITERS_MAX) {
    p = phone_get(h, msisdn);
  }
  if (!p || p->nwaiters >= HS_PHONE_WAITERS_MAX) {
    gw_resp_error(x, 503, "busy",
                  "too many pages wait on the handsets; try again later");
    return;
  }
  w = calloc(1, sizeof(*w));
  if (!w || event_assign(&w->ev, gw_exch_base(x), -1, 0, waiter_fire, w) != 0 ||
      evtimer_add(&w->ev, &tv) != 0) {
    free(w);
    gw_resp_error(x, 500, "internal_error", "cannot wait");
    return;
  }
  w->h = h;
  w->phone = p;
  w->x = x;
  w->next = p->waiters;
  if (p->waiters) {
    p->waiters->prev = w;
  }
  p->waiters = w;
  p->nwaiters++;
  h->nwaiters++;
  gw_exch_on_cancel(x, waiter_cancel, w);
}

/* Parses a decimal number of at most 19 digits (no sign, no spaces).
 * Returns 0 or -1. */
static int parse_num(const char *s, unsigned long long *out) {
  unsigned long long v = 0;
  size_t n = strlen(s);

  if (n == 0 || n > 19 || strspn(s, "0123456789") != n) {
    return -1;
  }
  for (; *s; s++) {
    v = v * 10 + (unsigned long long)(*s - '0');
  }
  *out = v;
  return 0;
}

/* since (optional) and wait_ms (optional, cut to HS_WAIT_MAX_MS). Returns
 * 0 or -1 (malformed or repeated). */
static int poll_args(const gw_form *q, int *has_since,
                     unsigned long long *since, long *wait_ms) {
  const char *s = gw_form_get(q, "since"), *w = gw_form_get(q, "wait_ms");
  unsigned long long v = 0;

  if (gw_form_count(q, "since") > 1 || gw_form_count(q, "wait_ms") > 1) {
    return -1;
  }
  *has_since = s != NULL;
  if (s && parse_num(s, since) != 0) {
    return -1;
  }
  if (w && parse_num(w, &v) != 0) {
    return -1;
  }
  *wait_ms = v > HS_WAIT_MAX_MS ? HS_WAIT_MAX_MS : (long)v;
  return 0;
}

static void h_requests(gw_exch *x) {
  char norm[MSS_MSISDN_MAX + 1];
  unsigned long long since = 0;
  int has_since = 0;
  long wait_ms = 0;
  gw_form q;

  memset(&q, 0, sizeof(q));
  if (phone_of(x, norm, sizeof(norm)) != 0) {
    return;
  }
  if (gw_req_query(gw_exch_req(x), &q) != GW_OK ||
      poll_args(&q, &has_since, &since, &wait_ms) != 0) {
    gw_resp_error(x, 400, "invalid_request",
                  "the query is ?since=<version>&wait_ms=<0..%d>",
                  HS_WAIT_MAX_MS);
  } else if (has_since && wait_ms > 0 &&
             since == phone_version(app_of(x)->handset, norm)) {
    park(x, norm, wait_ms);
  } else {
    answer_requests(x, norm);
  }
  gw_form_free(&q);
}

void mock_handset_changed(mock_handset *h, const char *msisdn) {
  char norm[MSS_MSISDN_MAX + 1];
  hs_phone *p;

  if (!h || !msisdn ||
      mock_mssp_msisdn_norm(msisdn, norm, sizeof(norm)) != GW_OK) {
    return;
  }
  p = phone_get(h, norm);
  if (!p) {
    return; /* no poll can be parked on a phone without an entry */
  }
  p->version = ++h->clock;
  for (hs_waiter *w = p->waiters; w; w = w->next) {
    event_active(&w->ev, EV_TIMEOUT, 0);
  }
}

/* ---- POST .../requests/{id}/approve and /refuse ------------------------- */

/* The request named by the path's {id}, if it waits on |msisdn| (copied
 * into |*out|). Returns 0, or -1 after answering 404 (or 500). */
static int request_of(gw_exch *x, const char *msisdn, mock_tx_info **out) {
  const char *id = gw_route_param(&gw_exch_req(x)->match, "id");
  mock_tx_info *t = malloc(sizeof(*t));
  char qid[80];

  if (!t) {
    gw_resp_error(x, 500, "internal_error", "out of memory");
    return -1;
  }
  /* Another phone's transaction is as unknown as a made-up one: a page
   * learns nothing about other subscribers. */
  if (!id || mock_mssp_tx(app_of(x)->engine, id, t) != GW_OK ||
      strcmp(t->msisdn, msisdn) != 0 || t->state == MOCK_TX_DONE) {
    free(t);
    gw_log_quote(qid, sizeof(qid), id ? id : "", id ? strlen(id) : 0);
    gw_resp_error(x, 404, "unknown_request",
                  "no request %s waits on this phone", qid);
    return -1;
  }
  *out = t;
  return 0;
}

/* Answers an error of mock_mssp_handset. */
static void handset_error(gw_exch *x, int rv) {
  if (rv == GW_ERR_NOT_FOUND) {
    gw_resp_error(x, 404, "unknown_request", "the request ended meanwhile");
  } else if (rv == GW_ERR_BUSY) {
    gw_resp_error(x, 409, "not_waiting",
                  "the request does not wait for the handset now (the SIM "
                  "is busy with it, or the subscriber's behaviour is not "
                  "\"handset\")");
  } else if (rv == GW_ERR_INVALID) {
    gw_resp_error(x, 400, "invalid_pin", "the PIN is missing");
  } else {
    gw_resp_error(x, 500, "internal_error", "%s", gw_strerror(rv));
  }
}

/* application/json (parameters allowed), as gw_req_json wants it, for a
 * body that may be empty. */
static int is_json_type(const gw_req *r) {
  const char *ct = gw_req_header(r, "content-type");
  size_t n;

  if (!ct) {
    return 0;
  }
  ct += strspn(ct, " \t");
  n = strcspn(ct, "; \t");
  return n == 16 && strncasecmp(ct, "application/json", n) == 0;
}

/* Copies the body's "pin" (4 to 8 digits) into |pin| and wipes the
 * copies the JSON parser and the request hold. Returns 0 or -1. */
static int pin_take(gw_exch *x, json_t *body, char *pin, size_t cap) {
  json_t *v = json_object_get(body, "pin");
  gw_req *r = gw_exch_req(x);
  const char *s = json_is_string(v) ? json_string_value(v) : NULL;
  size_t n = s ? strlen(s) : 0;
  int ok = s && n >= HS_PIN_MIN && n <= HS_PIN_MAX && n < cap &&
           strspn(s, "0123456789") == n;

  if (ok) {
    memcpy(pin, s, n + 1);
  }
  /* jansson frees without wiping: clear its copy before the decref. */
  if (s) {
    OPENSSL_cleanse((char *)s, n);
  }
  if (r->body.data) {
    OPENSSL_cleanse(r->body.data, r->body.len);
  }
  return ok ? 0 : -1;
}

/* An approve waiting for the SIM. */
typedef struct hs_answer {
  gw_exch *x;
  mock_mssp *e;
  mock_op *op;
  char msisdn[MSS_MSISDN_MAX + 1];
  char id[MSS_MSSP_TRANSID_MAX + 1];
} hs_answer;

static void answer_cancel(void *arg) {
  hs_answer *a = arg;

  mock_mssp_op_forget(a->e, a->op);
  free(a);
}

/* The page's word for the SIM's outcome |r|. */
static const char *result_name(const mock_op_result *r) {
  switch (r->outcome) {
  case MOCK_SIM_OK:
    return r->status == MSS_SIGNATURE ? "signed" : "ended";
  case MOCK_SIM_WRONG_PIN:
    return "wrong_pin";
  case MOCK_SIM_PIN_BLOCKED:
    return "pin_blocked";
  default:
    return mock_sim_outcome_str(r->outcome);
  }
}

static void approve_done(void *arg, const mock_op_result *r) {
  hs_answer *a = arg;
  const char *res = result_name(r);
  json_t *j;

  if (r->rv != GW_OK) {
    gw_resp_error(a->x, 500, "sim_failure", "the SIM simulation failed: %s",
                  gw_strerror(r->rv));
    free(a);
    return;
  }
  j = json_pack("{s:s, s:s, s:i, s:s}", "result", res, "mssp_trans_id", a->id,
                "status", r->status, "status_name", mss_status_name(r->status));
  if (j && r->outcome == MOCK_SIM_WRONG_PIN &&
      json_object_set_new(j, "tries_left", json_integer(r->pin_tries_left))) {
    json_decref(j);
    j = NULL;
  }
  GW_LOG(GW_LOG_INFO, "handset answered",
         "msisdn=%s mssp_trans_id=%s action=approve result=%s status=%d",
         a->msisdn, a->id, res, r->status);
  reply_json(a->x, 200, j);
  free(a);
}

/* The request ended inside mock_mssp_handset (a SIM without certificate):
 * say how. */
static void answer_ended(gw_exch *x, const char *id) {
  mock_tx_info *t = malloc(sizeof(*t));
  int status = t && mock_mssp_tx(app_of(x)->engine, id, t) == GW_OK
                   ? t->status
                   : MSS_EXPIRED_TRANSACTION;

  free(t);
  reply_json(x, 200,
             json_pack("{s:s, s:s, s:i, s:s}", "result", "ended",
                       "mssp_trans_id", id, "status", status, "status_name",
                       mss_status_name(status)));
}

static void h_approve(gw_exch *x) {
  char norm[MSS_MSISDN_MAX + 1], pin[HS_PIN_MAX + 1];
  mock_tx_info *t = NULL;
  hs_answer *a = NULL;
  json_t *body = NULL;
  mock_op *op = NULL;
  int rv;

  memset(pin, 0, sizeof(pin));
  if (phone_of(x, norm, sizeof(norm)) != 0 || gw_req_json(x, &body) != GW_OK) {
    return;
  }
  if (pin_take(x, body, pin, sizeof(pin)) != 0) {
    gw_resp_error(x, 400, "invalid_pin",
                  "the body is {\"pin\": \"<4 to 8 digits>\"}");
    goto cleanup;
  }
  if (request_of(x, norm, &t) != 0) {
    goto cleanup;
  }
  a = calloc(1, sizeof(*a));
  if (!a) {
    gw_resp_error(x, 500, "internal_error", "out of memory");
    goto cleanup;
  }
  a->x = x;
  a->e = app_of(x)->engine;
  memcpy(a->msisdn, norm, sizeof(a->msisdn));
  memcpy(a->id, t->mssp_trans_id, sizeof(a->id));
  rv = mock_mssp_handset(a->e, a->id, 1, pin, approve_done, a, &op);
  if (rv == GW_OK && op) {
    /* The SIM works on the pool; approve_done answers (and frees |a|). */
    a->op = op;
    gw_exch_on_cancel(x, answer_cancel, a);
    a = NULL;
  } else if (rv == GW_OK) {
    answer_ended(x, a->id);
  } else {
    handset_error(x, rv);
  }

cleanup:
  OPENSSL_cleanse(pin, sizeof(pin));
  json_decref(body);
  free(t);
  free(a);
}

static void h_refuse(gw_exch *x) {
  char norm[MSS_MSISDN_MAX + 1];
  mock_tx_info *t = NULL;
  json_t *body = NULL;
  mock_op *op = NULL;
  int rv;

  if (phone_of(x, norm, sizeof(norm)) != 0) {
    return;
  }
  /* The body carries nothing, but its type keeps cross-site forms out:
   * an empty application/json body is accepted, like "{}". */
  if (gw_exch_req(x)->body.len == 0 && !is_json_type(gw_exch_req(x))) {
    gw_resp_error(x, 415, "unsupported_media_type",
                  "the body must be application/json");
    return;
  }
  if (gw_exch_req(x)->body.len > 0 && gw_req_json(x, &body) != GW_OK) {
    return;
  }
  if (request_of(x, norm, &t) == 0) {
    rv = mock_mssp_handset(app_of(x)->engine, t->mssp_trans_id, 0, NULL, NULL,
                           NULL, &op);
    if (rv == GW_OK) {
      GW_LOG(GW_LOG_INFO, "handset answered",
             "msisdn=%s mssp_trans_id=%s action=refuse", norm,
             t->mssp_trans_id);
      reply_json(x, 200,
                 json_pack("{s:s, s:s, s:i, s:s}", "result", "refused",
                           "mssp_trans_id", t->mssp_trans_id, "status",
                           MSS_USER_CANCEL, "status_name",
                           mss_status_name(MSS_USER_CANCEL)));
    } else {
      handset_error(x, rv);
    }
  }
  json_decref(body);
  free(t);
}

/* ---- GET /handset/{msisdn}: the page ------------------------------------- */

/* The page's words. |expires|, |wrong_pin|, |other| and |failed| hold
 * "{n}", which the script (and the server, for the first view) replaces. */
typedef struct hs_lang {
  const char *code, *dir;
  const char *other_code, *other_name; /* the switch */
  const char *title, *phone, *request, *code_label, *code_hint, *pin;
  const char *approve, *refuse, *none, *live, *offline, *waiting, *signing;
  const char *expires, *no_text, *signed_ok, *wrong_pin, *pin_blocked;
  const char *refused, *other, *pin_format, *sending, *failed, *noscript;
} hs_lang;

static const hs_lang lang_ar = {
    .code = "ar",
    .dir = "rtl",
    .other_code = "en",
    .other_name = "English",
    .title = "الهاتف الافتراضي",
    .phone = "رقم الهاتف",
    .request = "طلب توقيع",
    .code_label = "رمز التحقق",
    .code_hint = "وافق فقط إذا طابق هذا الرمز الرمز الظاهر على شاشة الخدمة.",
    .pin = "رمز PIN",
    .approve = "موافقة",
    .refuse = "رفض",
    .none = "لا توجد طلبات بانتظار الرد على هذا الهاتف.",
    .live = "تتحدث الصفحة تلقائيًا.",
    .offline = "انقطع الاتصال بالمشغّل، جارٍ إعادة المحاولة…",
    .waiting = "بانتظار ردك",
    .signing = "جارٍ التوقيع على الشريحة…",
    .expires = "ينتهي خلال {n} ث",
    .no_text = "(لا يوجد نص للعرض)",
    .signed_ok = "تم التوقيع بنجاح.",
    .wrong_pin = "رمز PIN غير صحيح. المحاولات المتبقية: {n}",
    .pin_blocked = "تم حظر رمز PIN. يلزم رمز PUK لإلغاء الحظر.",
    .refused = "تم رفض الطلب.",
    .other = "انتهى الطلب: {n}",
    .pin_format = "أدخل رمز PIN من 4 إلى 8 أرقام.",
    .sending = "جارٍ الإرسال…",
    .failed = "تعذّر الإرسال: {n}",
    .noscript = "فعّل JavaScript ليتحدث الهاتف تلقائيًا، أو أعد تحميل الصفحة.",
};

static const hs_lang lang_en = {
    .code = "en",
    .dir = "ltr",
    .other_code = "ar",
    .other_name = "العربية",
    .title = "Virtual handset",
    .phone = "Phone number",
    .request = "Signature request",
    .code_label = "Verification code",
    .code_hint =
        "Approve only if this code matches the one shown by the service.",
    .pin = "PIN",
    .approve = "Approve",
    .refuse = "Refuse",
    .none = "No request is waiting on this phone.",
    .live = "The page updates by itself.",
    .offline = "Connection to the operator lost, retrying…",
    .waiting = "Waiting for you",
    .signing = "The SIM is signing…",
    .expires = "Expires in {n} s",
    .no_text = "(no text to display)",
    .signed_ok = "Signed.",
    .wrong_pin = "Wrong PIN: {n} tries left.",
    .pin_blocked = "PIN blocked: the PUK is needed to unblock it.",
    .refused = "Refused.",
    .other = "The request ended: {n}",
    .pin_format = "Type a PIN of 4 to 8 digits.",
    .sending = "Sending…",
    .failed = "Could not send: {n}",
    .noscript =
        "Turn JavaScript on for the phone to update by itself, or reload the "
        "page.",
};

static const hs_lang *lang_of(const char *code) {
  return code && strcmp(code, "en") == 0 ? &lang_en : &lang_ar;
}

/* The operator's name as its customers write it. */
static const char *operator_label(const char *name, const hs_lang *L) {
  int ar = L == &lang_ar;

  if (name && strcmp(name, "omantel") == 0) {
    return ar ? "عمانتل" : "Omantel";
  }
  if (name && strcmp(name, "ooredoo") == 0) {
    return ar ? "أريد" : "Ooredoo";
  }
  return name ? name : "";
}

/* HTML output with a sticky error: the page is checked once at the end. */
typedef struct hs_out {
  gw_buf b;
  int err;
} hs_out;

static void out_s(hs_out *o, const char *s) {
  if (!o->err) {
    o->err = gw_buf_puts(&o->b, s);
  }
}

static void out_n(hs_out *o, const char *s, size_t n) {
  if (!o->err && n) {
    o->err = gw_buf_append(&o->b, s, n);
  }
}

/* |s| escaped for HTML text and double- or single-quoted attributes. */
static void out_esc(hs_out *o, const char *s) {
  size_t run;

  while (*s) {
    run = strcspn(s, "&<>\"'");
    out_n(o, s, run);
    s += run;
    switch (*s) {
    case '&':
      out_s(o, "&amp;");
      break;
    case '<':
      out_s(o, "&lt;");
      break;
    case '>':
      out_s(o, "&gt;");
      break;
    case '"':
      out_s(o, "&quot;");
      break;
    case '\'':
      out_s(o, "&#39;");
      break;
    default:
      return; /* the end */
    }
    s++;
  }
}

/* |tpl| with "{n}" replaced by |n|, escaped. */
static void out_tpl(hs_out *o, const char *tpl, const char *n) {
  const char *at = strstr(tpl, "{n}");
  char head[256];

  if (!at || (size_t)(at - tpl) >= sizeof(head)) {
    out_esc(o, tpl);
    return;
  }
  memcpy(head, tpl, (size_t)(at - tpl));
  head[at - tpl] = '\0';
  out_esc(o, head);
  out_esc(o, n);
  out_esc(o, at + 3);
}

/* JSON inside <script type="application/json">: '<', '>' and '&' become
 * \u escapes so that no text can end the element or open a comment. */
static void out_json(hs_out *o, json_t *j) {
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  const char *p;
  size_t run;

  if (!s) {
    o->err = o->err ? o->err : GW_ERR_NOMEM;
    return;
  }
  for (p = s; *p; p++) {
    run = strcspn(p, "<>&");
    out_n(o, p, run);
    p += run;
    if (!*p) {
      break;
    }
    out_s(o, *p == '<' ? "\\u003c" : *p == '>' ? "\\u003e" : "\\u0026");
  }
  free(s);
}

static const char page_css[] =
    "*{box-sizing:border-box}[hidden]{display:none!important}"
    "html{background:#1d232a}"
    "body{margin:0;display:flex;justify-content:center;color:#14181c;"
    "font-family:system-ui,-apple-system,'Segoe UI','Noto Sans Arabic',"
    "'Noto Naskh Arabic',Tahoma,Arial,sans-serif}"
    ".phone{width:100%;max-width:400px;min-height:100vh;background:#f4f6f8;"
    "padding-bottom:24px}"
    "@media (min-width:440px){body{padding:24px 0}.phone{min-height:640px;"
    "border:10px solid #0b0e11;border-radius:28px;overflow:hidden}}"
    ".bar{display:flex;justify-content:space-between;align-items:center;"
    "background:#0b5f8a;color:#fff;padding:10px 16px;font-size:.9rem}"
    ".bar a{color:#fff}"
    "h1{font-size:1.15rem;margin:16px 16px 4px}"
    ".num{margin:0 16px;color:#3b4650}.num bdi{font-weight:600}"
    ".live{margin:6px 16px 12px;font-size:.8rem;color:#2d6a3e}"
    ".live.off{color:#a1260d}"
    ".none{margin:24px 12px;padding:24px 16px;text-align:center;"
    "background:#fff;border-radius:12px;color:#55616b}"
    ".card{margin:12px;padding:16px;background:#fff;border-radius:14px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.15)}"
    ".card h2{font-size:1rem;margin:0 0 8px;color:#0b5f8a}"
    ".disp{margin:0 0 12px;font-size:1.05rem;line-height:1.5;"
    "white-space:pre-wrap;overflow-wrap:anywhere;unicode-bidi:isolate}"
    ".lbl{margin:0;font-size:.85rem;color:#55616b}"
    ".code{margin:2px 0 4px;text-align:center;letter-spacing:.15em;"
    "font:700 3rem/1.1 ui-monospace,'DejaVu Sans Mono',monospace;"
    "font-variant-numeric:tabular-nums}"
    ".hint,.meta{margin:0 0 10px;font-size:.8rem;color:#55616b}"
    ".pinl{display:block;font-size:.9rem;margin-bottom:10px}"
    ".pin{display:block;width:100%;margin-top:4px;padding:10px;"
    "font-size:1.4rem;letter-spacing:.4em;text-align:center;direction:ltr;"
    "border:1px solid #9aa5ae;border-radius:8px}"
    ".btns{display:flex;gap:10px}"
    ".btns button{flex:1;min-height:48px;font-size:1.05rem;font-weight:600;"
    "border:0;border-radius:10px;color:#fff;cursor:pointer}"
    ".ok{background:#1d7a3c}.no{background:#b3261e}"
    "button:disabled,input:disabled{opacity:.5;cursor:default}"
    ".result{margin:12px 16px;min-height:1.5em;font-weight:600}"
    ".result.good{color:#1d7a3c}.result.bad{color:#b3261e}";

/* Every dynamic value is set with textContent: the display text is the
 * application provider's, i.e. anybody's. */
static const char page_js[] =
    "(() => {\n"
    "'use strict';\n"
    "const $ = (id) => document.getElementById(id);\n"
    "const root = $('hs'), list = $('hs-list'), none = $('hs-none');\n"
    "const live = $('hs-live'), out = $('hs-result'), tpl = $('hs-tpl');\n"
    "const T = JSON.parse($('hs-text').textContent);\n"
    "const base = '/handset/' + encodeURIComponent(root.dataset.msisdn);\n"
    "let version = root.dataset.version;\n"
    "const fmt = (s, v) => s.replace('{n}', String(v));\n"
    "const sleep = (ms) => new Promise((r) => setTimeout(r, ms));\n"
    "const cards = () => Array.from(list.querySelectorAll('.card'));\n"
    "function say(msg, kind) {\n"
    "  out.textContent = msg;\n"
    "  out.className = 'result ' + (kind || '');\n"
    "}\n"
    "function lock(card) {\n"
    "  const off = card.dataset.state !== 'waiting' ||\n"
    "      card.dataset.busy === '1';\n"
    "  card.querySelectorAll('button, input')\n"
    "      .forEach((el) => { el.disabled = off; });\n"
    "}\n"
    "function tick() {\n"
    "  const now = Date.now();\n"
    "  cards().forEach((c) => {\n"
    "    const end = Number(c.dataset.end);\n"
    "    if (!end) return;\n"
    "    const left = Math.max(0, Math.ceil((end - now) / 1000));\n"
    "    c.querySelector('.exp').textContent = fmt(T.expires, left);\n"
    "  });\n"
    "}\n"
    "function fill(c, r) {\n"
    "  c.dataset.id = r.mssp_trans_id;\n"
    "  c.dataset.state = r.state;\n"
    "  c.dataset.end = String(Date.now() + r.expires_in_s * 1000);\n"
    "  c.querySelector('.disp').textContent = r.display || T.no_text;\n"
    "  c.querySelector('.code').textContent = r.verification_code;\n"
    "  c.querySelector('.state').textContent =\n"
    "      r.state === 'waiting' ? T.waiting : T.signing;\n"
    "  lock(c);\n"
    "}\n"
    "function render(reqs) {\n"
    "  const old = new Map(cards().map((c) => [c.dataset.id, c]));\n"
    "  reqs.forEach((r) => {\n"
    "    let c = old.get(r.mssp_trans_id);\n"
    "    if (c) {\n"
    "      old.delete(r.mssp_trans_id);\n"
    "    } else {\n"
    "      c = tpl.content.firstElementChild.cloneNode(true);\n"
    "      list.appendChild(c);\n"
    "    }\n"
    "    fill(c, r);\n"
    "  });\n"
    "  old.forEach((c) => c.remove());\n"
    "  none.hidden = reqs.length > 0;\n"
    "  tick();\n"
    "}\n"
    "function outcome(d) {\n"
    "  switch (d.result) {\n"
    "    case 'signed': return [T.signed, 'good'];\n"
    "    case 'wrong_pin': return [fmt(T.wrong_pin, d.tries_left), 'bad'];\n"
    "    case 'pin_blocked': return [T.pin_blocked, 'bad'];\n"
    "    case 'refused': return [T.refused, ''];\n"
    "    default: return [fmt(T.other, d.status_name || d.result), 'bad'];\n"
    "  }\n"
    "}\n"
    "async function answer(c, approve) {\n"
    "  const pin = c.querySelector('.pin');\n"
    "  if (approve && !/^[0-9]{4,8}$/.test(pin.value)) {\n"
    "    say(T.pin_format, 'bad');\n"
    "    pin.focus();\n"
    "    return;\n"
    "  }\n"
    "  const body = JSON.stringify(approve ? {pin: pin.value} : {});\n"
    "  pin.value = '';\n"
    "  c.dataset.busy = '1';\n"
    "  lock(c);\n"
    "  say(T.sending, '');\n"
    "  try {\n"
    "    const url = base + '/requests/' + encodeURIComponent(c.dataset.id) +\n"
    "        (approve ? '/approve' : '/refuse');\n"
    "    const res = await fetch(url, {method: 'POST', cache: 'no-store',\n"
    "        headers: {'Content-Type': 'application/json'}, body});\n"
    "    const d = await res.json().catch(() => ({}));\n"
    "    if (res.ok) say(...outcome(d));\n"
    "    else say(fmt(T.failed, d.message || res.status), 'bad');\n"
    "  } catch (e) {\n"
    "    say(T.offline, 'bad');\n"
    "  }\n"
    "  delete c.dataset.busy;\n"
    "  lock(c);\n"
    "}\n"
    "list.addEventListener('click', (ev) => {\n"
    "  const b = ev.target.closest('button[data-act]');\n"
    "  if (b) answer(b.closest('.card'), b.dataset.act === 'approve');\n"
    "});\n"
    "list.addEventListener('keydown', (ev) => {\n"
    "  if (ev.key !== 'Enter' || !ev.target.classList.contains('pin')) "
    "return;\n"
    "  ev.preventDefault();\n"
    "  answer(ev.target.closest('.card'), true);\n"
    "});\n"
    "async function poll() {\n"
    "  let first = true, backoff = 1000;\n"
    "  for (;;) {\n"
    "    const t0 = Date.now();\n"
    "    const q = first ? '' : '?since=' + encodeURIComponent(version) +\n"
    "        '&wait_ms=25000';\n"
    "    try {\n"
    "      const res = await fetch(base + '/requests' + q, {cache: "
    "'no-store'});\n"
    "      if (!res.ok) throw new Error('HTTP ' + res.status);\n"
    "      const d = await res.json();\n"
    "      const moved = String(d.version) !== version;\n"
    "      version = String(d.version);\n"
    "      render(d.requests || []);\n"
    "      live.textContent = T.live;\n"
    "      live.classList.remove('off');\n"
    "      backoff = 1000;\n"
    "      /* A quick answer with nothing new: do not spin. */\n"
    "      if (!first && !moved && Date.now() - t0 < 1000) await sleep(1000);\n"
    "      first = false;\n"
    "    } catch (e) {\n"
    "      live.textContent = T.offline;\n"
    "      live.classList.add('off');\n"
    "      await sleep(backoff);\n"
    "      backoff = Math.min(backoff * 2, 30000);\n"
    "    }\n"
    "  }\n"
    "}\n"
    "setInterval(tick, 1000);\n"
    "poll();\n"
    "})();\n";

/* One request's card; |t| NULL gives the empty template the script
 * clones. */
static void put_card(hs_out *o, const hs_lang *L, const mock_tx_info *t,
                     long long now) {
  char code[16] = "", left[24] = "";

  if (t) {
    code_str(t, code, sizeof(code));
    snprintf(left, sizeof(left), "%lld", expires_in_s(t, now));
  }
  out_s(o, "<section class=\"card\" data-id=\"");
  out_esc(o, t ? t->mssp_trans_id : "");
  out_s(o, "\" data-state=\"");
  out_s(o, t ? state_name(t->state) : "waiting");
  out_s(o, "\"><h2>");
  out_esc(o, L->request);
  out_s(o, "</h2><p class=\"disp\" dir=\"auto\">");
  out_esc(o, t ? (t->display[0] ? t->display : L->no_text) : "");
  out_s(o, "</p><p class=\"lbl\">");
  out_esc(o, L->code_label);
  out_s(o, "</p><p class=\"code\" dir=\"ltr\">");
  out_esc(o, code);
  out_s(o, "</p><p class=\"hint\">");
  out_esc(o, L->code_hint);
  out_s(o, "</p><p class=\"meta\"><span class=\"state\">");
  out_esc(o, t && t->state != MOCK_TX_WAITING ? L->signing : L->waiting);
  out_s(o, "</span> · <span class=\"exp\">");
  if (t) {
    out_tpl(o, L->expires, left);
  }
  out_s(o, "</span></p><label class=\"pinl\">");
  out_esc(o, L->pin);
  out_s(o, "<input class=\"pin\" type=\"password\" inputmode=\"numeric\" "
           "pattern=\"[0-9]*\" minlength=\"4\" maxlength=\"8\" "
           "autocomplete=\"off\" enterkeyhint=\"done\"></label>"
           "<div class=\"btns\"><button type=\"button\" class=\"ok\" "
           "data-act=\"approve\">");
  out_esc(o, L->approve);
  out_s(o, "</button><button type=\"button\" class=\"no\" "
           "data-act=\"refuse\">");
  out_esc(o, L->refuse);
  out_s(o, "</button></div></section>");
}

/* The words the script needs, as JSON. */
static json_t *script_words(const hs_lang *L) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                   "s:s, s:s, s:s}",
                   "live", L->live, "offline", L->offline, "waiting",
                   L->waiting, "signing", L->signing, "expires", L->expires,
                   "no_text", L->no_text, "signed", L->signed_ok, "wrong_pin",
                   L->wrong_pin, "pin_blocked", L->pin_blocked, "refused",
                   L->refused, "other", L->other, "pin_format", L->pin_format,
                   "sending", L->sending, "failed", L->failed);
}

static void put_head(hs_out *o, const hs_lang *L, const char *msisdn,
                     const char *nonce) {
  out_s(o, "<!DOCTYPE html>\n<html lang=\"");
  out_s(o, L->code);
  out_s(o, "\" dir=\"");
  out_s(o, L->dir);
  out_s(o, "\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, "
           "initial-scale=1\">\n"
           "<meta name=\"referrer\" content=\"no-referrer\">\n"
           "<link rel=\"icon\" href=\"data:,\">\n<title>");
  out_esc(o, L->title);
  out_s(o, " — ");
  out_esc(o, msisdn);
  out_s(o, "</title>\n<style nonce=\"");
  out_s(o, nonce);
  out_s(o, "\">");
  out_s(o, page_css);
  out_s(o, "</style>\n</head>\n");
}

static void put_body(hs_out *o, const hs_lang *L, const char *operator_name,
                     const char *msisdn, unsigned long long version,
                     const mock_tx_info *t, size_t n) {
  char ver[24];
  long long now = wall_ms();

  snprintf(ver, sizeof(ver), "%llu", version);
  out_s(o, "<body>\n<main id=\"hs\" class=\"phone\" data-msisdn=\"");
  out_esc(o, msisdn);
  out_s(o, "\" data-version=\"");
  out_s(o, ver);
  out_s(o, "\">\n<header class=\"bar\"><span>");
  out_esc(o, operator_label(operator_name, L));
  out_s(o, "</span><a href=\"?lang=");
  out_s(o, L->other_code);
  out_s(o, "\" hreflang=\"");
  out_s(o, L->other_code);
  out_s(o, "\" lang=\"");
  out_s(o, L->other_code);
  out_s(o, "\">");
  out_esc(o, L->other_name);
  out_s(o, "</a></header>\n<h1>");
  out_esc(o, L->title);
  out_s(o, "</h1>\n<p class=\"num\">");
  out_esc(o, L->phone);
  out_s(o, ": <bdi dir=\"ltr\">");
  out_esc(o, msisdn);
  out_s(o, "</bdi></p>\n<p id=\"hs-live\" class=\"live\">");
  out_esc(o, L->live);
  out_s(o, "</p>\n<p id=\"hs-none\" class=\"none\"");
  out_s(o, n ? " hidden>" : ">");
  out_esc(o, L->none);
  out_s(o, "</p>\n<div id=\"hs-list\">");
  for (size_t i = 0; i < n; i++) {
    put_card(o, L, &t[i], now);
  }
  out_s(o, "</div>\n<p id=\"hs-result\" class=\"result\" role=\"status\" "
           "aria-live=\"polite\"></p>\n<noscript><p class=\"result\">");
  out_esc(o, L->noscript);
  out_s(o, "</p></noscript>\n</main>\n<template id=\"hs-tpl\">");
  put_card(o, L, NULL, now);
  out_s(o, "</template>\n");
}

static void put_script(hs_out *o, const hs_lang *L, const char *nonce) {
  json_t *words = script_words(L);

  out_s(o, "<script type=\"application/json\" id=\"hs-text\">");
  out_json(o, words);
  json_decref(words);
  out_s(o, "</script>\n<script nonce=\"");
  out_s(o, nonce);
  out_s(o, "\">\n");
  out_s(o, page_js);
  out_s(o, "</script>\n</body>\n</html>\n");
}

static void send_page(gw_exch *x, const char *msisdn, const hs_lang *L) {
  mock_app *app = app_of(x);
  mock_tx_info *t = NULL;
  char nonce[40];
  size_t n = 0;
  hs_out o;
  int rv;

  memset(&o, 0, sizeof(o));
  gw_buf_init(&o.b, HS_PAGE_MAX);
  if (gw_page_nonce(nonce, sizeof(nonce)) != GW_OK) {
    gw_resp_error(x, 500, "internal_error", "no random bytes");
    goto cleanup;
  }
  rv = pending_get(app->engine, msisdn, &t, &n);
  if (rv != GW_OK) {
    gw_resp_error(x, 500, "internal_error",
                  "the phone's requests cannot be "
                  "read");
    goto cleanup;
  }
  put_head(&o, L, msisdn, nonce);
  put_body(&o, L, app->operator_name, msisdn,
           phone_version(app->handset, msisdn), t, n);
  put_script(&o, L, nonce);
  if (o.err || gw_resp_page_csp(x, nonce, "'none'") != GW_OK) {
    gw_resp_error(x, 500, "internal_error", "the page could not be built");
    goto cleanup;
  }
  gw_resp_send(x, 200, "text/html; charset=utf-8", o.b.data, o.b.len);

cleanup:
  free(t);
  gw_buf_free(&o.b);
}

static void h_page(gw_exch *x) {
  char norm[MSS_MSISDN_MAX + 1];
  const hs_lang *L = &lang_ar;
  gw_form q;

  memset(&q, 0, sizeof(q));
  if (phone_of(x, norm, sizeof(norm)) != 0) {
    return;
  }
  if (gw_req_query(gw_exch_req(x), &q) != GW_OK) {
    gw_resp_error(x, 400, "invalid_request", "the query is ?lang=ar|en");
  } else {
    L = lang_of(gw_form_get(&q, "lang"));
    send_page(x, norm, L);
  }
  gw_form_free(&q);
}

/* ---- routes and the code ------------------------------------------------- */

int mock_handset_routes(gw_router *r) {
  int rv =
      gw_router_add(r, "GET", "/handset/{msisdn}", h_page, 0, "handset_page");

  rv = rv ? rv
          : gw_router_add(r, "GET", "/handset/{msisdn}/requests", h_requests, 0,
                          "handset_requests");
  rv = rv ? rv
          : gw_router_add(r, "POST", "/handset/{msisdn}/requests/{id}/approve",
                          h_approve, HS_BODY_MAX, "handset_approve");
  rv = rv ? rv
          : gw_router_add(r, "POST", "/handset/{msisdn}/requests/{id}/refuse",
                          h_refuse, HS_BODY_MAX, "handset_refuse");
  return rv;
}

int mock_handset_code(const uint8_t *h, size_t n) {
  if (!h || n == 0) {
    return -1;
  }
  return ((h[0] & 0xFC) << 5) | (h[n - 1] & 0x7F);
}
