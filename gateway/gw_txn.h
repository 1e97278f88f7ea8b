/* gw_txn.h — sign-in transactions: the challenge-response with a SIM.
 *
 * A transaction binds a relying party's request to one signature of one
 * SIM. gw_txn_begin resolves the person (an MSISDN, or a civil number to
 * its SIM: with SIMs at both operators, the one that last signed
 * successfully), makes a challenge of 256 random bits and the data to be
 * signed — SHA-256 over the length-prefixed challenge, client_id,
 * transaction id and creation time (ms) — the 4-digit verification code
 * from that hash (Mobile-ID: ((h[0] & 0xFC) << 5 | (h[31] & 0x7F)) %04d;
 * REFERENCE §2), and the text for the phone (Arabic or English, naming the
 * relying party and the code, plus a CIBA binding_message; refused when it
 * does not fit the SIM's dialogue, never cut). It sends the request
 * through the operator adapter of the SIM (op_adapter.h) on the calling
 * worker's loop, follows it, verifies the signature with the gateway's
 * verifier on a pool thread (the exact digest, the chain to the national
 * root, CRL, key usage, and that the certificate names the civil number
 * and MSISDN asked for), and records every step in the store:
 *
 *   created -> sent -> signed -> verified -> done (tokens issued)
 *          \-> failed (a named gw_txn_failure) / expired
 *
 * A transaction is single use (gw_txn_consume); a signature completes only
 * the transaction whose digest it signs. The failure keeps the real reason
 * (gw_txn_info.detail, the server's log); what a caller may be told is
 * the caller's business: gw_txn_failure_public() merges the failures an
 * unauthenticated caller must not tell apart.
 *
 * Threads: the engine is shared by every worker. gw_txn_begin runs on a
 * worker's loop (the transaction then lives on that loop); lookups, polls
 * and consume run on any thread (one mutex over the table). Store writes
 * use a per-thread handle. Nothing blocks a loop for long: verification
 * runs on the pool. */
#ifndef GW_TXN_H
#define GW_TXN_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct gw_config;
struct op_registry;
struct p11_pool;

typedef struct gw_txn_engine gw_txn_engine;

typedef enum gw_txn_state {
  GW_TXN_CREATED = 0,
  GW_TXN_SENT,     /* the operator accepted the request */
  GW_TXN_SIGNED,   /* a signature arrived, being verified */
  GW_TXN_VERIFIED, /* verified: tokens may be issued once */
  GW_TXN_DONE,     /* tokens issued */
  GW_TXN_FAILED,   /* see gw_txn_info.failure */
  GW_TXN_EXPIRED   /* nobody finished it in time */
} gw_txn_state;

/* "created", "sent", ... */
const char *gw_txn_state_name(gw_txn_state s);

typedef enum gw_txn_failure {
  GW_TXN_FAIL_NONE = 0,
  GW_TXN_FAIL_USER_CANCELLED,
  GW_TXN_FAIL_TIMED_OUT,
  GW_TXN_FAIL_PIN_BLOCKED,
  GW_TXN_FAIL_NOT_SUBSCRIBER, /* the operator: no PKI on that SIM */
  GW_TXN_FAIL_PHONE_ABSENT,
  GW_TXN_FAIL_SIM_ERROR,
  GW_TXN_FAIL_INVALID_SIGNATURE,
  GW_TXN_FAIL_REVOKED_CERTIFICATE,
  GW_TXN_FAIL_CERTIFICATE, /* expired, not yet valid, untrusted, usage */
  GW_TXN_FAIL_IDENTITY_MISMATCH,
  GW_TXN_FAIL_OPERATOR_UNAVAILABLE,
  GW_TXN_FAIL_OPERATOR_ERROR,
  GW_TXN_FAIL_CANCELLED, /* by the caller */
  GW_TXN_FAIL_INTERNAL,
  GW_TXN_FAIL_COUNT_
} gw_txn_failure;

/* The stable name ("user_cancelled", "revoked_certificate", ...). */
const char *gw_txn_failure_name(gw_txn_failure f);

/* A human description for relying parties ("the user refused on the
 * phone", "the SIM's certificate is revoked", ...). */
const char *gw_txn_failure_text(gw_txn_failure f);

/* What an unauthenticated caller may learn: "not_completed" for not
 * subscriber, phone absent, timed out (and an unknown number, which never
 * starts a transaction); the name for the rest. */
const char *gw_txn_failure_public(gw_txn_failure f);

#define GW_TXN_ID_LEN 43 /* base64url of 32 random bytes */

/* A copy of a transaction. */
typedef struct gw_txn_info {
  char id[GW_TXN_ID_LEN + 1];
  char auth_req_id[GW_TXN_ID_LEN + 1]; /* "" when not CIBA */
  char client_id[65];
  char msisdn[17];
  char civil_id[17];
  char subscriber_name[257]; /* from the registry, for "profile" */
  char operator_name[17];
  char scope[513];
  char resource[513];
  char acr[64];
  char verification_code[5];
  gw_txn_state state;
  gw_txn_failure failure;
  char detail[256];     /* the real reason, for the server's log */
  long long created_ms; /* Unix ms */
  long long expires_ms;
  long long auth_time; /* Unix s of the verified signature, 0 */
  int interval_s;      /* CIBA polling interval */
  int limit;           /* GW_TXN_BEGIN_LIMITED: the gw_limit_result */
  int retry_after_s;   /* GW_TXN_BEGIN_LIMITED: seconds */
} gw_txn_info;

/* What gw_txn_begin needs. Strings are copied. */
typedef struct gw_txn_start {
  const char *client_id;
  const char *client_name;     /* shown on the phone */
  const char *login_hint;      /* "tel:+968XXXXXXXX", "+968...", a civil
                                  number (digits) */
  const char *binding_message; /* NULL = none */
  const char *scope;
  const char *resource; /* "" = none */
  const char *acr;
  const char *lang; /* "ar" | "en"; NULL = oidc.display_lang */
  int expiry_s;     /* 0 = oidc.ciba_expiry_s; capped at it */
  int ciba;         /* 1: make an auth_req_id */
  /* CIBA ping mode: when the sign-in is over (verified, failed or
   * expired) the engine POSTs {"auth_req_id": ...} to |ping_endpoint|
   * with "Authorization: Bearer <ping_token>" (the client's
   * client_notification_token), retried on network errors and 5xx, at
   * most 3 attempts (1 s, then 4 s apart). NULL = poll mode. */
  const char *ping_endpoint;
  const char *ping_token;
  /* Abuse limits (gw_limits.h): the caller's address for the browser and
   * native flows (NULL for CIBA: the relying party's server is not the
   * person), and 1 when gw_limits_source_check already counted it. */
  const char *source_ip;
  int source_counted;
} gw_txn_start;

typedef enum gw_txn_begin_result {
  GW_TXN_BEGIN_OK = 0,
  GW_TXN_BEGIN_BAD_HINT,     /* malformed, outside Oman, not a number */
  GW_TXN_BEGIN_UNKNOWN_USER, /* no active mobile-PKI subscriber */
  GW_TXN_BEGIN_BAD_MESSAGE,  /* binding_message bad or too long for the
                                SIM with the rest of the text */
  GW_TXN_BEGIN_UNAVAILABLE,  /* the operator cannot be reached at all
                                (adapter not configured) */
  GW_TXN_BEGIN_LIMITED,      /* an abuse limit (gw_txn_info.limit,
                                .retry_after_s): nothing was sent */
  GW_TXN_BEGIN_INTERNAL      /* store, memory, limits */
} gw_txn_begin_result;

/* Creates the engine: the verifier from pki.* (root, issuing CA, CRL),
 * the store path from store.*. |ops| and |pool| are borrowed. Returns
 * GW_OK or a GW_ERR_* with the reason in |err|. Call from the main thread
 * before the workers start. */
int gw_txn_engine_new(gw_txn_engine **out, const struct gw_config *cfg,
                      struct op_registry *ops, struct p11_pool *pool, char *err,
                      size_t errlen);

/* Sends the engine's events to the audit log (gw_audit.h):
 * signin.begin and signin.end (state, failure, detail). NULL: none. Call
 * before the workers start. */
struct gw_audit;
void gw_txn_set_audit(gw_txn_engine *e, struct gw_audit *a);

/* Frees the engine. Every loop that ran transactions must have stopped;
 * their transactions are dropped (already in the store). NULL: no-op. */
void gw_txn_engine_del(gw_txn_engine *e);

/* Starts a sign-in on |base| (the calling worker's loop; the operator
 * exchange and the timers live there). On GW_TXN_BEGIN_OK fills |info|
 * and returns before the operator answers; otherwise nothing was sent to
 * any phone and |why| (static) says what was wrong, for the caller's
 * error_description (it never tells an unknown number from a
 * non-subscriber in a way the public API would not allow: the caller
 * decides what to show). The real reason is logged. */
gw_txn_begin_result gw_txn_begin(gw_txn_engine *e, struct event_base *base,
                                 const gw_txn_start *req, gw_txn_info *info,
                                 const char **why);

/* Copies the transaction with CIBA handle |auth_req_id| (any thread).
 * Returns GW_OK or GW_ERR_NOT_FOUND (never existed, or forgotten after its
 * expiry). An expired transaction is reported in state GW_TXN_EXPIRED. */
int gw_txn_get_by_req(gw_txn_engine *e, const char *auth_req_id,
                      gw_txn_info *out);

/* A CIBA token poll for |auth_req_id| at the current time: returns 1 when
 * it comes earlier than interval_s after the previous poll — the caller
 * answers slow_down and the previous poll time is kept (the interval is
 * not restarted) — else records this poll and returns 0 (the first poll
 * is always on time); -1 when the transaction is unknown. */
int gw_txn_poll(gw_txn_engine *e, const char *auth_req_id);

/* Copies transaction |id| (any thread). Returns GW_OK or
 * GW_ERR_NOT_FOUND. */
int gw_txn_get(gw_txn_engine *e, const char *id, gw_txn_info *out);

/* Waiting for a change (long polls). */
typedef struct gw_txn_watcher gw_txn_watcher;
typedef void (*gw_txn_watch_fn)(void *arg, const gw_txn_info *info);

/* Calls |fn(arg, info)| once, on |base|'s thread (never inside this
 * call), when transaction |id| changes state, or after |timeout_ms| with
 * its state then; |info| is the transaction as it is when |fn| runs (state
 * GW_TXN_EXPIRED with only the id when it was forgotten meanwhile). Stores
 * a handle in |*out| for gw_txn_unwatch. Returns GW_OK, GW_ERR_NOT_FOUND,
 * GW_ERR_LIMIT (too many watches on it), GW_ERR_NOMEM. Any worker thread
 * (|base| is its loop). */
int gw_txn_watch(gw_txn_engine *e, const char *id, struct event_base *base,
                 int timeout_ms, gw_txn_watch_fn fn, void *arg,
                 gw_txn_watcher **out);

/* Drops a watch whose |fn| has not run (the client went away). From
 * |base|'s thread. NULL is a no-op. */
void gw_txn_unwatch(gw_txn_watcher *w);

/* Cancels a running transaction (any thread): it ends failed/cancelled
 * and its operator exchange is stopped, on its own loop, shortly after
 * this returns. Returns GW_OK, GW_ERR_NOT_FOUND, or GW_ERR_INVALID when it
 * has already ended. */
int gw_txn_cancel(gw_txn_engine *e, const char *id);

/* Single use: marks a verified transaction done. Returns GW_OK when this
 * call did it (issue the tokens), GW_ERR_EXISTS when it was done already,
 * GW_ERR_INVALID when it is not verified, GW_ERR_NOT_FOUND. Any thread. */
int gw_txn_consume(gw_txn_engine *e, const char *id);

/* Transactions in memory (waiting or kept until expiry), for /metrics. */
size_t gw_txn_count(gw_txn_engine *e);

/* The verification code of a hash (|n| >= 1 bytes): 0..8191. */
int gw_txn_code(const uint8_t *h, size_t n);

/* Appends the engine's Prometheus text (transactions by state, failures by
 * name, verification time). */
struct gw_buf;
int gw_txn_metrics(gw_txn_engine *e, struct gw_buf *out);

#endif
