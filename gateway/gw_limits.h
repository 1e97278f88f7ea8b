/* gw_limits.h — abuse limits of sign-ins (push-bombing defences).
 *
 * Every sign-in start asks this module first (after the request was
 * validated, before anything is sent to a phone). It keeps, in memory:
 *
 *   - starts per source address, in a sliding window (configurable);
 *   - starts per (phone, source address) and per (phone, client), per hour
 *     and per day (sliding windows of two buckets each);
 *   - for each of those pairs, the refusals in a row, and a cool-down once
 *     they reach a threshold;
 *   - one pending sign-in per phone, released when the sign-in ends and
 *     expiring on its own after pending_max_s.
 *
 * Nothing counts per phone alone: a stranger (another source, another
 * client) who trips a limit never blocks the citizen's own pairs. Only the
 * pending mark is per phone, and it lasts one sign-in at most.
 *
 * The module never looks at the subscriber registry and does the same
 * constant work for every number: callers must call it in exactly the same
 * way for unknown numbers as for registered ones (including keeping the
 * pending mark of an unknown number until the time a real sign-in would
 * have ended), so that neither the answer nor its timing tells whether a
 * number is registered. See docs/limits.md.
 *
 * Memory is bounded: each of the three tables (sources, pairs, pending
 * phones) holds at most max_entries entries; beyond that the least recently
 * used entry is evicted. Keys are hashed with SipHash under a random key
 * (no hash flooding); only 128-bit digests are stored.
 *
 * Threads: every function may be called from any thread (one mutex); each
 * call is O(1). Time is passed in (milliseconds of a monotonic clock), so
 * that tests can drive it. */
#ifndef GW_LIMITS_H
#define GW_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "gw_config.h"

typedef struct gw_limits gw_limits;

typedef enum gw_limit_result {
  GW_LIMIT_OK = 0,
  GW_LIMIT_SOURCE,   /* too many starts from this address: 429 */
  GW_LIMIT_PAIR,     /* too many sign-ins for this phone from this source
                        or client in the hour or the day: 429 */
  GW_LIMIT_COOLDOWN, /* refused too often in a row: 429 */
  GW_LIMIT_PENDING   /* a sign-in is already waiting on this phone: 409 */
} gw_limit_result;

/* The stable name: "ok", "source_rate", "pair_rate", "cooldown",
 * "pending". */
const char *gw_limit_result_name(gw_limit_result r);

/* A text for the caller ("a sign-in is already waiting on this phone",
 * ...). It never depends on whether the number is registered. */
const char *gw_limit_result_message(gw_limit_result r);

/* The HTTP status: 200 for OK, 429 for the rate limits and the cool-down,
 * 409 for PENDING. The answer carries Retry-After: *retry_after_s. */
int gw_limit_result_http_status(gw_limit_result r);

/* Creates the limits with the settings of |c| (gw_config.signin). Returns
 * GW_OK, GW_ERR_INVALID (NULL argument or a value out of the config
 * table's bounds), GW_ERR_NOMEM or GW_ERR_TLS (no randomness for the hash
 * key); |*out| is untouched on failure. */
int gw_limits_new(gw_limits **out, const gw_limits_config *c);

/* Frees the limits; NULL is a no-op. */
void gw_limits_del(gw_limits *l);

/* Flags of gw_limits_begin_ex. */
enum {
  /* The source window was already charged for this start by
   * gw_limits_source_check: do not check or count it again. */
  GW_LIMITS_SOURCE_COUNTED = 1 << 0
};

/* Before a sign-in starts. Checks, in this order: the starts from
 * |source_ip| in its window; the hour and day caps of (msisdn, source_ip)
 * and of (msisdn, client_id); their cool-downs; one pending sign-in per
 * |msisdn|. The first limit that refuses gives the result, and
 * |*retry_after_s| (>= 1) says when trying again may succeed (the latest
 * of the limits of that kind that refuse); nothing is counted then.
 *
 * On GW_LIMIT_OK the start is counted in every window, the phone is marked
 * pending and |*ticket| (never 0) is what gw_limits_end takes;
 * |*retry_after_s| is 0.
 *
 * |source_ip| NULL or "" skips the source window and the (phone, source)
 * pair; |client_id| NULL or "" skips the (phone, client) pair. |msisdn| is
 * the normalised number (or whatever identifies the phone), NULL = "".
 * Strings of any length are accepted (they are hashed). |retry_after_s|
 * and |ticket| may be NULL. */
gw_limit_result gw_limits_begin(gw_limits *l, const char *msisdn,
                                const char *source_ip, const char *client_id,
                                long long now_ms, int *retry_after_s,
                                uint64_t *ticket);

/* gw_limits_begin with |flags| (GW_LIMITS_SOURCE_COUNTED). */
gw_limit_result gw_limits_begin_ex(gw_limits *l, const char *msisdn,
                                   const char *source_ip, const char *client_id,
                                   unsigned flags, long long now_ms,
                                   int *retry_after_s, uint64_t *ticket);

/* When the sign-in of |ticket| ends (any outcome, also expiry and
 * cancellation): releases the pending mark of its phone. |refused| 1 (the
 * user refused, PIN failures) counts one refusal for both pairs of the
 * start — reaching refusals_cooldown starts their cool-down at |now_ms| —
 * and 0 on success resets the pairs' streaks. Use |refused| -1 for an
 * outcome that is neither (expired, cancelled, operator errors): only the
 * mark is released. A ticket that is 0, unknown, already ended or whose
 * mark was evicted is ignored. */
void gw_limits_end(gw_limits *l, uint64_t ticket, int refused,
                   long long now_ms);

/* The source-address start check alone, for unauthenticated endpoints
 * that start sign-ins before the phone is known: checks and, on
 * GW_LIMIT_OK, counts one start from |source_ip| (NULL or "": always OK).
 * Returns GW_LIMIT_OK or GW_LIMIT_SOURCE with |*retry_after_s|. Pass
 * GW_LIMITS_SOURCE_COUNTED to the gw_limits_begin_ex of the same start. */
gw_limit_result gw_limits_source_check(gw_limits *l, const char *source_ip,
                                       long long now_ms, int *retry_after_s);

/* Entries held in each table (for metrics and tests); pointers may be
 * NULL. */
void gw_limits_stats(gw_limits *l, size_t *sources, size_t *pairs,
                     size_t *pending);

#endif
