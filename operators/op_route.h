/* op_route.h — MSISDN normalisation and routing to an operator.
 *
 * A phone number (MSISDN) is written by people in many ways; the gateway
 * keeps exactly one: E.164 "+968" followed by the 8-digit national number.
 * op_msisdn_normalize() accepts
 *
 *   99000001          8-digit national number
 *   +96899000001      international, E.164
 *   0096899000001     international with the 00 prefix
 *
 * with single spaces or dashes between digits tolerated and dropped
 * ("+968 9900 0001", "9900-0001": the way numbers are printed), and refuses
 * everything else: other characters (dots, brackets, letters, "tel:"),
 * doubled or leading/trailing separators, a bare "968..." without + or 00
 * (ambiguous), the wrong number of digits. A well-formed international number
 * of another country is a distinct error, so that the caller can say "not an
 * Omani number" rather than "malformed".
 *
 * Routing: the numbering plan (configs/numbering-plan.conf) maps prefixes of
 * the national number to operators, the longest prefix winning; the number
 * portability table (configs/portability.csv) overrides it for single
 * numbers that moved to another operator. A number of Oman outside every
 * range of the plan is an error of its own. See docs/operators.md#routing.
 *
 * A loaded op_route is immutable: share it between threads freely; reload by
 * loading a new one and swapping pointers. */
#ifndef OP_ROUTE_H
#define OP_ROUTE_H

#include <stddef.h>

/* "+968" + 8 digits + NUL, with room to spare. */
#define OP_MSISDN_MAX 16
/* Digits of an Omani national (significant) number. */
#define OP_NATIONAL_DIGITS 8
/* Operator names: 1..32 of [a-z0-9_-]. */
#define OP_NAME_MAX 32
/* Caps on the files, so that a wrong path (a log, a dump) fails clearly. */
#define OP_PLAN_MAX_ENTRIES 10000
#define OP_PORT_MAX_ENTRIES 20000000
#define OP_ROUTE_LINE_MAX 256

/* What normalisation or a lookup found. 0 is success; the rest are the
 * reasons a number cannot be routed. */
typedef enum op_route_status {
  OP_ROUTE_OK = 0,
  OP_ROUTE_INVALID = 1,     /* not a phone number in an accepted form */
  OP_ROUTE_NOT_OMAN = 2,    /* an international number of another country */
  OP_ROUTE_NO_OPERATOR = 3, /* an Omani number in no range of the plan */
} op_route_status;

/* A stable lower-case code for |s|: "ok", "invalid_msisdn", "not_oman",
 * "no_operator" ("unknown" out of range). Never NULL. */
const char *op_route_status_str(op_route_status s);

/* A sentence for people ("the number is not an Omani number (+968)").
 * Never NULL. */
const char *op_route_status_message(op_route_status s);

/* Normalises |in| (NUL-terminated) to "+968XXXXXXXX" in |out|. Returns
 * OP_ROUTE_OK, OP_ROUTE_INVALID or OP_ROUTE_NOT_OMAN (|out| is "" on
 * failure). NULL |in| is OP_ROUTE_INVALID. Pure; thread-safe. */
op_route_status op_msisdn_normalize(const char *in, char out[OP_MSISDN_MAX]);

typedef struct op_route op_route;

/* Loads the numbering plan |plan_path| and the portability table
 * |portability_path| ("" or NULL = none).
 *
 * Plan format, one entry a line, '#' starts a comment:
 *     <prefix> <operator>        e.g.  "99 omantel"
 * <prefix> is 1..8 digits of the national number; <operator> 1..32 of
 * [a-z0-9_-]. A prefix listed twice is an error.
 *
 * Portability format: CSV, '#' comments, an optional header line
 * "msisdn,operator", then "<msisdn>,<operator>" with the MSISDN in any form
 * op_msisdn_normalize() accepts (it must be Omani). A number listed twice is
 * an error. Lines are at most OP_ROUTE_LINE_MAX bytes.
 *
 * On success stores a new table in |*out| and returns GW_OK. On failure
 * |*out| is untouched, "file:line: reason" (or "file: reason") is written to
 * |err| (|errlen| bytes), and the result is GW_ERR_CONFIG (bad content),
 * GW_ERR_IO (cannot read; errno's text in |err|), GW_ERR_TOO_LARGE (over the
 * entry caps) or GW_ERR_NOMEM. */
int op_route_load(op_route **out, const char *plan_path,
                  const char *portability_path, char *err, size_t errlen);

/* Frees the table; NULL is a no-op. */
void op_route_del(op_route *r);

/* The result of a lookup. */
typedef struct op_route_result {
  char msisdn[OP_MSISDN_MAX]; /* normalised; "" when invalid */
  const char *op;             /* operator name, borrowed from the table
                                 (valid until op_route_del); NULL on error */
  int ported;                 /* 1 when the portability table decided */
  int prefix_len;             /* digits of the plan prefix that matched (0
                                 when ported or on error) */
} op_route_result;

/* Normalises |msisdn| and finds its operator: the portability table first,
 * then the longest matching prefix of the plan. Returns OP_ROUTE_OK (|res|
 * filled), OP_ROUTE_INVALID, OP_ROUTE_NOT_OMAN or OP_ROUTE_NO_OPERATOR.
 * Thread-safe; O(log n) in the portability table. */
op_route_status op_route_lookup(const op_route *r, const char *msisdn,
                                op_route_result *res);

/* The distinct operator names the plan and the table mention: |i| from 0
 * to op_route_operator_count() - 1; NULL beyond. Borrowed. */
size_t op_route_operator_count(const op_route *r);
const char *op_route_operator_name(const op_route *r, size_t i);

/* Counts, for logs at start-up. */
size_t op_route_plan_size(const op_route *r);
size_t op_route_ported_size(const op_route *r);

#endif
