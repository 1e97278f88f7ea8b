/* op_breaker.h — a circuit breaker per operator.
 *
 * So that an operator that is down fails fast ("operator_unavailable" at
 * once) instead of tying up every sign-in for a connect timeout, each
 * adapter asks its breaker before each request to the operator and reports
 * how the request went:
 *
 *   CLOSED     requests go; |failure_threshold| failures in a row open it.
 *   OPEN       requests are refused at once; after |cooldown_ms| the next
 *              request finds it HALF_OPEN.
 *   HALF_OPEN  up to |half_open_probes| requests go as probes; the others
 *              are refused. A probe that succeeds closes the breaker; one
 *              that fails opens it again for another cool-down.
 *
 * What counts as a failure is the adapter's decision (for Omantel: no
 * usable answer at the HTTP or SOAP level — connect failure, timeout,
 * reset, 5xx without a SOAP fault, garbage); a well-formed answer,
 * including an ETSI fault such as USER_CANCEL, is a success: the operator is
 * up. OP_BREAKER_NEUTRAL gives a permit back without a verdict (the request
 * was cancelled by our side).
 *
 * One breaker is shared by every worker thread (the operator is down for
 * all of them); calls are serialised by a mutex held for a few instructions.
 * Times are CLOCK_MONOTONIC nanoseconds passed by the caller, so that tests
 * control the clock. */
#ifndef OP_BREAKER_H
#define OP_BREAKER_H

#include <stdint.h>

typedef enum op_breaker_state {
  OP_BREAKER_CLOSED = 0,
  OP_BREAKER_OPEN = 1,
  OP_BREAKER_HALF_OPEN = 2
} op_breaker_state;

/* "closed", "open", "half_open". */
const char *op_breaker_state_str(op_breaker_state s);

typedef enum op_breaker_verdict {
  OP_BREAKER_SUCCESS = 0,
  OP_BREAKER_FAILURE = 1,
  OP_BREAKER_NEUTRAL = 2
} op_breaker_verdict;

typedef struct op_breaker_config {
  int failure_threshold; /* consecutive failures that open it: 1..; 0 turns
                            the breaker off (always closed) */
  int cooldown_ms;       /* time open before probing: 1.. */
  int half_open_probes;  /* requests let through while half open: 1.. */
} op_breaker_config;

typedef struct op_breaker op_breaker;

/* Creates a closed breaker. Returns GW_OK, GW_ERR_INVALID (a value out of
 * range) or GW_ERR_NOMEM; |*out| untouched on failure. */
int op_breaker_new(op_breaker **out, const op_breaker_config *cfg);

/* Frees it; NULL is a no-op. */
void op_breaker_del(op_breaker *b);

/* Asks to send one request at |now_ns|. Returns 1 with a permit (the
 * caller must later call op_breaker_report once for it), 0 when refused
 * (fail fast; nothing to report). */
int op_breaker_allow(op_breaker *b, uint64_t now_ns);

/* Reports how a permitted request went. */
void op_breaker_report(op_breaker *b, op_breaker_verdict v, uint64_t now_ns);

/* The state at |now_ns| (OPEN turns HALF_OPEN here too once the cool-down
 * is over, for reporting). */
op_breaker_state op_breaker_state_at(op_breaker *b, uint64_t now_ns);

/* Counters since creation, for metrics and health. */
typedef struct op_breaker_stats {
  op_breaker_state state;
  uint64_t opened;   /* times it opened */
  uint64_t rejected; /* requests refused while open or half open */
  int consecutive_failures;
  uint64_t open_until_ns; /* when OPEN: end of the cool-down */
} op_breaker_stats;

void op_breaker_get_stats(op_breaker *b, uint64_t now_ns,
                          op_breaker_stats *out);

#endif
