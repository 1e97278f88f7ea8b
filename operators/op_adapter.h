/* op_adapter.h — the one interface through which the gateway asks a mobile
 * operator for a SIM signature, and the one set of outcomes it gets back.
 *
 * Each operator speaks its own protocol (Omantel: ETSI TS 102 204 over SOAP
 * 1.2 with status polling; Ooredoo: the JSON rendering with server-to-server
 * notifications); each has an adapter: a table of functions (op_adapter_ops,
 * in the manner of h2o's handlers) listed once in op_adapter.c. The
 * transaction engine never sees the protocol: it
 *
 *   1. routes the MSISDN to an adapter:   op_registry_route()
 *   2. submits the signature request:     op_submit()    -> ACCEPTED or FINAL
 *   3. follows it to its end:             op_follow()    -> FINAL
 *      (polling or a notification: the adapter's business)
 *   4. may give up at any time:           op_cancel()
 *   5. after verifying, sends a receipt:  op_receipt()   (optional)
 *   and reads op_health() / op_registry_metrics() for /healthz and /metrics.
 *
 * Outcomes. Whatever an operator answers becomes one of nine op_outcome
 * values; op_outcome_from_etsi() is the one mapping from ETSI status codes.
 * The operator's own code stays in op_result.etsi_status and the reason in
 * op_result.detail, for the server's log (which keeps the real reason even
 * where the relying party is told less).
 *
 * Threads and loops. The registry and the adapters are shared by every
 * worker thread (their state is a mutex-protected breaker and atomic
 * counters). A transaction (op_txn) belongs to the event loop it was
 * submitted on — the op_http of that loop — and all its callbacks run on
 * that loop's thread; op_follow and op_cancel are called from it too.
 * Callbacks never run inside the call that starts the work (op_submit,
 * op_follow): a fail-fast answer (breaker open, operator unavailable) comes
 * on the next loop iteration. Before a loop's op_http is freed, every
 * transaction of that loop must be finished or cancelled.
 *
 * Errors of the functions are GW_ERR_* (gw_err.h); how a transaction ended is
 * an op_outcome, never an error code. See docs/operators.md#adapters. */
#ifndef OP_ADAPTER_H
#define OP_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "gw_buf.h"
#include "op_http.h"
#include "op_route.h"

struct gw_config;
struct event_base;

/* ---- outcomes ---------------------------------------------------------------
 */

typedef enum op_outcome {
  OP_SIGNED = 0,           /* the SIM signed: signature in the result */
  OP_USER_CANCELLED,       /* the user refused on the phone (401) */
  OP_TIMED_OUT,            /* nobody answered in time (208; our deadline) */
  OP_PIN_BLOCKED,          /* PIN (or PUK) blocked (402, 403) */
  OP_NOT_SUBSCRIBER,       /* no mobile-PKI on this SIM / unknown to the
                              operator (105, 404, 422, 501) */
  OP_PHONE_ABSENT,         /* the phone could not be reached (209) */
  OP_SIM_ERROR,            /* the SIM application failed (900 with FiCom
                              detail 9003/9004, 105 with 1054, 209 with
                              2094) */
  OP_OPERATOR_ERROR,       /* the operator refused our request or answered
                              nonsense (101..109, 406, 407, 423..425, 503,
                              900, invalid XML, wrong content type, oversized
                              answer, an unknown code) */
  OP_OPERATOR_UNAVAILABLE, /* no answer: connection refused, timeouts,
                              resets, 5xx without a SOAP fault, the circuit
                              breaker open, no adapter configured */
  OP_OUTCOME_COUNT_
} op_outcome;

/* The outcome's stable name: "signed", "user_cancelled", "timed_out",
 * "pin_blocked", "not_subscriber", "phone_absent", "sim_error",
 * "operator_error", "operator_unavailable"; "unknown" out of range. */
const char *op_outcome_name(op_outcome o);

/* The outcome named |name|, or -1. */
int op_outcome_from_name(const char *name);

/* Maps a final ETSI TS 102 204 status or fault code onto an outcome.
 * |detail_code| is the FiCom 4-digit specifier of a fault (e.g. 9003 "SIM
 * Application error"), 0 when none; it refines 105, 209 and 900 into
 * OP_SIM_ERROR. Results: 500 SIGNATURE and 502 VALID_SIGNATURE -> signed;
 * 501 REVOKED_CERTIFICATE -> not_subscriber; 503 INVALID_SIGNATURE and 505
 * -> operator_error. 100 and 504 are not final: they map to operator_error
 * (use op_etsi_is_pending first). Unknown codes -> operator_error. */
op_outcome op_outcome_from_etsi(int status, int detail_code);

/* 1 for the codes that say "not finished yet": 100 REQUEST_OK, 504
 * OUTSTANDING_TRANSACTION. */
int op_etsi_is_pending(int status);

/* ---- requests and results
 * ------------------------------------------------------- */

typedef struct op_adapter op_adapter; /* one per operator, shared */
typedef struct op_txn op_txn;         /* one signature transaction */

/* A signature request. Everything is copied by op_submit(). */
typedef struct op_sign_req {
  const char *msisdn;          /* "+968XXXXXXXX" (op_msisdn_normalize) */
  const unsigned char *digest; /* the 32-byte SHA-256 the SIM signs as is
                                  (DataToBeSigned application/x-sha256) */
  const char *display_text;    /* UTF-8 for the phone's screen; NULL = none.
                                  The caller checks it fits (the operator
                                  refuses with 107, never cuts) */
  int timeout_s;               /* the operator's TimeOut; 0 = configured */
} op_sign_req;

typedef enum op_phase {
  OP_PHASE_ACCEPTED = 1, /* the operator took the request (ETSI 100): the
                            transaction lives on; op_follow() or op_cancel()
                            it */
  OP_PHASE_FINAL = 2     /* it ended: |outcome| says how; the op_txn is
                            freed when the callback returns */
} op_phase;

typedef enum op_sig_format {
  OP_SIG_NONE = 0,
  OP_SIG_PKCS7 = 1, /* CMS SignedData, DER, signer certificate inside */
  OP_SIG_PKCS1 = 2  /* a bare signature (ECDSA r||s, or RSA) beside the
                       signer certificate (DER) */
} op_sig_format;

#define OP_TRANSID_MAX 32      /* AP_TransID */
#define OP_MSSP_TRANSID_MAX 64 /* MSSP_TransID */
#define OP_DETAIL_MAX 256

/* What a callback is told. Pointers are borrowed for the callback only:
 * copy what you keep (the signature to verify it on a worker thread). */
typedef struct op_result {
  op_phase phase;
  op_outcome outcome;        /* FINAL only (ACCEPTED: OP_SIGNED, ignore) */
  int etsi_status;           /* the operator's last code: 100, 500, 401, ...;
                                0 when it gave none (no answer) */
  const char *operator_name; /* "omantel" */
  const char *msisdn;
  char ap_trans_id[OP_TRANSID_MAX + 1];        /* ours */
  char mssp_trans_id[OP_MSSP_TRANSID_MAX + 1]; /* theirs, once known */
  op_sig_format sig_format;                    /* OP_SIGNED only */
  const unsigned char *signature; /* OP_SIGNED: PKCS#7 DER or raw */
  size_t signature_len;
  const unsigned char *certificate; /* OP_SIG_PKCS1 only: X.509 DER */
  size_t certificate_len;
  uint64_t elapsed_ns; /* since op_submit */
  /* Why, in words, for the server's log: the ETSI name and the operator's
   * text, or the transport error. Never secrets. It may hold text from the
   * operator: quote it (gw_log_quote) before logging. */
  char detail[OP_DETAIL_MAX];
} op_result;

/* The callback of op_submit and op_follow. |t| is the transaction
 * (ACCEPTED: alive; FINAL: about to be freed). */
typedef void (*op_result_fn)(void *arg, op_txn *t, const op_result *r);

/* A receipt (ETSI MSS_Receipt: "signed in to X", shown on the phone). */
typedef struct op_receipt_req {
  const char *msisdn;
  const char *mssp_trans_id; /* of the signed transaction */
  const char *message;       /* UTF-8 text for the phone; NULL = none */
} op_receipt_req;

/* |ok| 1 when the operator accepted the receipt; |etsi_status| its code or
 * 0; |detail| as op_result.detail (borrowed). */
typedef void (*op_receipt_fn)(void *arg, int ok, int etsi_status,
                              const char *detail);

/* Health of an adapter, for /healthz and logs. */
typedef struct op_health {
  const char *operator_name;
  int configured;    /* 1 when it has what it needs (URL, AP_ID) */
  int available;     /* 1 when configured and the breaker is not open */
  int breaker_state; /* op_breaker_state */
  int consecutive_failures;
  uint64_t inflight; /* transactions not yet final */
  char detail[OP_DETAIL_MAX];
} op_health;

/* ---- the calls (dispatch through the adapter's table)
 * ------------------------- */

/* Sends a signature request through |a| on the loop of |http|. |cb(arg)|
 * runs later on that loop: once with ACCEPTED then (after op_follow) once
 * with FINAL, or once with FINAL only (a fault, no answer, breaker open).
 * Stores the transaction in |*out| (for op_follow / op_cancel). Returns
 * GW_OK, GW_ERR_INVALID (NULL argument, MSISDN not "+968" + 8 digits, no
 * digest, display text over 4096 bytes or with characters XML cannot
 * carry) or GW_ERR_NOMEM; on error no callback runs and |*out| is
 * untouched. */
int op_submit(op_adapter *a, op_http *http, const op_sign_req *req,
              op_result_fn cb, void *arg, op_txn **out);

/* Follows an ACCEPTED transaction to its end (the adapter polls or waits
 * for a notification, within the transaction's deadline: TimeOut plus a
 * short grace); |cb(arg)| runs once with FINAL. Call it from the ACCEPTED
 * callback or later. Returns GW_OK, or GW_ERR_INVALID (not in the ACCEPTED
 * state, already followed) with no callback. */
int op_follow(op_txn *t, op_result_fn cb, void *arg);

/* Gives up a transaction before its FINAL callback (the relying party or
 * the user went away): stops polling or waiting, aborts an HTTP exchange
 * under way, frees it; no callback runs afterwards. The operator is not
 * told (ETSI TS 102 204 has no cancel message): its transaction expires on
 * its side. Not from inside the FINAL callback. NULL is a no-op. */
void op_cancel(op_txn *t);

/* Sends a receipt; |cb| may be NULL (fire and forget). Returns GW_OK (|cb|
 * will run once, later, unless the loop's op_http is freed first),
 * GW_ERR_INVALID, GW_ERR_NOMEM, or GW_ERR_BUSY (operator unavailable:
 * breaker open, not configured) with no callback. */
int op_receipt(op_adapter *a, op_http *http, const op_receipt_req *req,
               op_receipt_fn cb, void *arg);

/* Fills |out|. Thread-safe. */
void op_health_get(op_adapter *a, op_health *out);

/* ---- notifications (server-to-server mode)
 * ------------------------------- */

/* A notification as the gateway's POST /operators/{name}/notify received
 * it. Borrowed. */
typedef struct op_notify_in {
  const char *signature;    /* the X-MSS-Signature header; NULL = absent */
  const char *content_type; /* NULL = absent */
  const char *body;
  size_t body_len;
} op_notify_in;

/* What to answer. */
typedef struct op_notify_answer {
  int status;           /* HTTP status: 200; 400 not a final MSS_StatusResp;
                           401 signature or timestamp refused; 404 unknown
                           transaction or notifications off; 409 the
                           transaction ended otherwise; 415 not the
                           operator's content type */
  const char *error;    /* not 200: a stable code ("bad_signature",
                           "stale_timestamp", "invalid_notification",
                           "unknown_transaction", "already_finished",
                           "unsupported_media_type", "not_enabled") */
  const char *ack_type; /* 200: the content type of |ack| */
  char message[OP_DETAIL_MAX]; /* human text (no secrets, quoted input) */
  char mssp_trans_id[OP_MSSP_TRANSID_MAX + 1]; /* for the log, "" unknown */
  int repeat; /* 200 for a repeat: nothing changed */
} op_notify_answer;

/* Checks a notification for adapter |a| — HMAC and timestamp first,
 * nothing is believed before — and, when it is the first final status of a
 * transaction waiting for one, hands it to that transaction's loop (the
 * result is applied there, after this returns: answer at once). A
 * byte-identical repeat of the notification that ended a transaction is
 * acknowledged again and changes nothing. Writes the acknowledgement
 * (200) to |ack| and fills |ans|. Returns ans->status. Thread-safe. */
int op_notify(op_adapter *a, const op_notify_in *in, gw_buf *ack,
              op_notify_answer *ans);

/* The adapter's operator name ("omantel"); the transaction's adapter. */
const char *op_adapter_name(const op_adapter *a);
op_adapter *op_txn_adapter(const op_txn *t);

/* ---- the registry
 * ----------------------------------------------------------------- */

typedef struct op_registry op_registry;

/* Creates every adapter of the table in op_adapter.c from |cfg| (the keys
 * under operators.* in mpkigw.conf) and loads the numbering plan and the
 * portability table (operators.numbering_plan, operators.portability).
 * Every operator the plan or the table names must have an adapter. On
 * failure |*out| is untouched, a reason is in |err| and the result is
 * GW_ERR_CONFIG, GW_ERR_IO, GW_ERR_TOO_LARGE, GW_ERR_NOMEM or
 * GW_ERR_INTERNAL. Call from the main thread before the workers start
 * (it initialises libcurl and libxml2, and turns libevent's thread
 * support on: create the event loops that run transactions after it, so
 * that a notification received on another thread can wake them). */
int op_registry_new(op_registry **out, const struct gw_config *cfg, char *err,
                    size_t errlen);

/* Frees the adapters and the routing tables. Every transaction must be
 * finished or cancelled first. NULL is a no-op. */
void op_registry_del(op_registry *r);

/* The adapter for operator |name|, or NULL. */
op_adapter *op_registry_get(op_registry *r, const char *name);

/* Routes |msisdn| (any accepted form): fills |res| (normalised number,
 * operator, ported) and, on OP_ROUTE_OK, |*a| with the adapter. Returns
 * the op_route_status (OP_ROUTE_INVALID, OP_ROUTE_NOT_OMAN,
 * OP_ROUTE_NO_OPERATOR: see op_route.h). Thread-safe. */
op_route_status op_registry_route(op_registry *r, const char *msisdn,
                                  op_route_result *res, op_adapter **a);

/* Creates the op_http of one event loop with the registry's settings
 * (operators.max_connections_per_host). Same errors as op_http_new. */
int op_registry_http_new(op_registry *r, struct event_base *base,
                         op_http **out);

/* Appends the Prometheus text of every adapter's metrics to |out|:
 *   mpkigw_operator_transactions_total{operator}
 *   mpkigw_operator_outcomes_total{operator,outcome}
 *   mpkigw_operator_requests_total{operator,kind=signature|status|receipt}
 *   mpkigw_operator_http_failures_total{operator,kind=connect|timeout|...}
 *   mpkigw_operator_latency_seconds{operator} histogram (submit to final)
 *   mpkigw_operator_inflight{operator}
 *   mpkigw_operator_breaker_state{operator} 0 closed, 1 open, 2 half open
 *   mpkigw_operator_breaker_opened_total{operator}
 *   mpkigw_operator_breaker_rejected_total{operator}
 * Thread-safe (counters are atomics). Returns GW_OK or a gw_buf error. */
int op_registry_metrics(op_registry *r, gw_buf *out);

/* Number of adapters, and the one at |i| (for /healthz). */
size_t op_registry_count(const op_registry *r);
op_adapter *op_registry_at(op_registry *r, size_t i);

#endif
