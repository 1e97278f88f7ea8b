/* op_adapter_int.h — what adapters share: the table of functions each one
 * fills, the base structs they embed first in their own, and the helpers
 * that keep transaction bookkeeping, metrics and the breaker in one place
 * (op_adapter.c), so that every adapter counts and behaves alike. For
 * adapter implementations only (op_omantel.c, op_ooredoo.c, op_adapter.c);
 * the rest of the gateway uses op_adapter.h. */
#ifndef OP_ADAPTER_INT_H
#define OP_ADAPTER_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "op_adapter.h"
#include "op_breaker.h"

struct gw_config;
struct event;

/* Kinds of HTTP exchange with an operator, for metrics. */
typedef enum op_req_kind {
  OP_REQ_SIGNATURE = 0,
  OP_REQ_STATUS,
  OP_REQ_RECEIPT,
  OP_REQ_NOTIFY, /* notifications received (server-to-server mode) */
  OP_REQ_KIND_COUNT_
} op_req_kind;

#define OP_LAT_BUCKETS 12

/* What became of the notifications received, for metrics. */
typedef enum op_notify_result {
  OP_NOTIFY_APPLIED = 0, /* ended a transaction */
  OP_NOTIFY_REPEATED,    /* a byte-identical repeat, acknowledged again */
  OP_NOTIFY_REFUSED,     /* bad signature or timestamp, invalid */
  OP_NOTIFY_UNMATCHED,   /* unknown or already finished transaction */
  OP_NOTIFY_COUNT_
} op_notify_result;

typedef struct op_metrics {
  _Atomic uint64_t transactions;
  _Atomic uint64_t cancelled;
  _Atomic uint64_t outcomes[OP_OUTCOME_COUNT_];
  _Atomic uint64_t requests[OP_REQ_KIND_COUNT_];
  _Atomic uint64_t http_failures[OP_HTTP_INTERNAL + 1]; /* [0]: bad answers */
  _Atomic uint64_t lat[OP_LAT_BUCKETS + 1];
  _Atomic uint64_t lat_sum_us;
  _Atomic int64_t inflight;
  _Atomic uint64_t notify[OP_NOTIFY_COUNT_];
} op_metrics;

/* The table of functions of one adapter. */
typedef struct op_adapter_ops {
  const char *name; /* operator name, as in the numbering plan */
  /* Creates the adapter from the config. Returns GW_OK or GW_ERR_* with a
   * reason in |err|. A missing setting that only makes the operator
   * unusable (no AP_ID) is not an error: the adapter is created
   * unconfigured and answers operator_unavailable. */
  int (*create)(op_adapter **out, const struct gw_config *cfg, char *err,
                size_t errlen);
  void (*destroy)(op_adapter *a);
  /* As op_submit: allocate the adapter's transaction (op_txn first),
   * op_txn_init() it, start the work. */
  int (*submit)(op_adapter *a, op_http *http, const op_sign_req *req,
                op_txn **out);
  /* As op_follow; the base has already checked the state and stored the
   * callback. */
  int (*follow)(op_txn *t);
  /* Stops the transaction's work (HTTP request, timers); must not free it
   * nor call back. */
  void (*stop)(op_txn *t);
  /* Frees the adapter's part of the transaction and the memory. */
  void (*txn_free)(op_txn *t);
  int (*receipt)(op_adapter *a, op_http *http, const op_receipt_req *req,
                 op_receipt_fn cb, void *arg);
  /* Optional: adds to |out| (the base filled the common fields). */
  void (*health)(op_adapter *a, op_health *out);
  /* Optional (server-to-server mode): as op_notify. Any thread. */
  int (*notify)(op_adapter *a, const op_notify_in *in, gw_buf *ack,
                op_notify_answer *ans);
} op_adapter_ops;

/* The part of every adapter the base manages. Embed first. */
struct op_adapter {
  const op_adapter_ops *ops;
  const char *name;
  op_breaker *breaker; /* NULL: none */
  op_metrics m;
  int configured;
  char why_unconfigured[128];
};

typedef enum op_txn_state {
  OP_TXN_SUBMITTING = 0, /* the request is on its way */
  OP_TXN_ACCEPTED,       /* ACCEPTED told, op_follow not yet called */
  OP_TXN_FOLLOWING,      /* op_follow called */
  OP_TXN_FINAL           /* FINAL being told */
} op_txn_state;

/* The part of every transaction the base manages. Embed first. */
struct op_txn {
  op_adapter *a;
  op_http *http;
  op_result_fn cb;
  void *arg;
  uint64_t start_ns;
  op_txn_state state;
  int in_cb;          /* a callback of this transaction is running */
  int cancelled;      /* op_cancel during a callback */
  struct event *soon; /* op_txn_final_soon's timer */
  op_result pending;  /* op_txn_final_soon's result */
  char msisdn[OP_MSISDN_MAX];
  char ap_trans_id[OP_TRANSID_MAX + 1];
  char mssp_trans_id[OP_MSSP_TRANSID_MAX + 1];
};

/* Initialises the base of an adapter. |bcfg| NULL: no breaker. Returns
 * GW_OK, GW_ERR_INVALID, GW_ERR_NOMEM. */
int op_adapter_base_init(op_adapter *a, const op_adapter_ops *ops,
                         const op_breaker_config *bcfg);
void op_adapter_base_free(op_adapter *a);

/* Initialises the base of a new transaction: copies the MSISDN, makes a
 * fresh AP_TransID, counts it. |req| was checked by op_submit. */
void op_txn_init(op_txn *t, op_adapter *a, op_http *http,
                 const op_sign_req *req);

/* Tells the caller ACCEPTED (|r|'s ids and status; the base fills the
 * rest). Returns 1 when the transaction is still alive afterwards, 0 when
 * the callback cancelled it (it is freed then: do not touch it). */
int op_txn_accepted(op_txn *t, op_result *r);

/* Tells the caller FINAL (fills phase, operator, ids, elapsed), counts the
 * outcome and the latency, then frees the transaction (ops->stop,
 * ops->txn_free). Do not touch |t| afterwards. */
void op_txn_final(op_txn *t, op_result *r);

/* op_txn_final() on the next loop iteration, with |outcome|, |etsi| and
 * |detail| (for fail-fast answers from inside submit). Returns GW_OK or
 * GW_ERR_NOMEM. */
int op_txn_final_soon(op_txn *t, op_outcome outcome, int etsi,
                      const char *detail);

/* Writes a fresh AP_TransID: an NCName of 27 characters, "T" and 26 base32
 * characters of 130 random bits (CSPRNG), unique without coordination
 * between restarts and gateway instances. */
void op_new_trans_id(char out[OP_TRANSID_MAX + 1]);

/* Breaker and counters. */
int op_adapter_allow(op_adapter *a);
void op_adapter_report(op_adapter *a, op_breaker_verdict v);
void op_adapter_count_request(op_adapter *a, op_req_kind k);
/* |s| OP_HTTP_DONE counts a bad answer (garbage, wrong type). */
void op_adapter_count_failure(op_adapter *a, op_http_status s);

/* Monotonic nanoseconds. */
uint64_t op_now_ns(void);

/* The adapters (op_adapter.c lists them in its table). */
extern const op_adapter_ops op_omantel_ops;
extern const op_adapter_ops op_ooredoo_ops;

#endif
