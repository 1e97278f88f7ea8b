/* mock_notify.h — the Ooredoo mock's server-to-server notifications
 * (ETSI TS 102 204 asynchServerServer, JSON rendering).
 *
 * When a transaction started in asynchServerServer mode ends, the mock
 * POSTs its final MSS_StatusResp (mss_json.h) to the notify_url registered
 * for the transaction's AP in the mock's config, with
 *
 *   Content-Type: application/json; charset=utf-8
 *   X-MSS-Signature: t=<unix time>,v1=<hex HMAC-SHA256(notify_secret,
 *                    "<t>.<body>")>
 *
 * The body names the transaction by its MSSP_TransID and by the AP's own
 * AP_TransID (AP_Info.AP_TransID of the signature request, AP_PWD ""), so
 * that the AP can match it even before it has read the MSSP_TransID from
 * the answer to its request. The body is the same bytes on every attempt;
 * t is taken afresh for each.
 *
 * Delivery is done when the AP answers 2xx with an MSS_ReceiptReq-shaped
 * acknowledgement for that MSSP_TransID. A network error, a timeout or a
 * 5xx is retried with growing delays (first_retry_ms, then x4 each time),
 * at most max_attempts attempts in all and none later than window_s after
 * the end of the transaction; a 4xx, or a 2xx without a valid
 * acknowledgement, is final (logged). Nothing here blocks the loop (libcurl
 * multi through op_http). */
#ifndef MOCK_NOTIFY_H
#define MOCK_NOTIFY_H

#include <stddef.h>

#include "mock_mssp.h"

struct event_base;

typedef struct mock_notify mock_notify;

typedef struct mock_notify_config {
  const mock_ap *aps; /* copied: notify_url / notify_secret per AP_ID */
  size_t naps;
  int max_attempts;    /* 1..20 (6) */
  int first_retry_ms;  /* 1..600000 (1000) */
  int window_s;        /* 1..86400 (600) */
  int timeout_ms;      /* per attempt, connect included (5000) */
  const char *ca_file; /* PEM to verify an https notify_url; NULL or ""
                          = the system's trust store */
} mock_notify_config;

/* Counters, for the control endpoint and tests. */
typedef struct mock_notify_stats {
  unsigned long long queued;    /* notifications begun */
  unsigned long long attempts;  /* POSTs sent */
  unsigned long long delivered; /* acknowledged */
  unsigned long long failed;    /* given up */
  unsigned long long pending;   /* now */
} mock_notify_stats;

/* Creates the notifier (the APs and strings copied). Call on the main
 * thread before the loop runs: it initialises libcurl. Its op_http is made
 * on the engine's loop at the first notification. Returns GW_OK,
 * GW_ERR_INVALID with the reason in |err| (a limit out of range, an AP
 * with a notify_url and no notify_secret), GW_ERR_INTERNAL (libcurl or
 * OpenSSL's HMAC unavailable), GW_ERR_NOMEM. |*out| untouched on failure. */
int mock_notify_new(mock_notify **out, const mock_notify_config *cfg, char *err,
                    size_t errlen);

/* Drops notifications still pending (logged). Call on the loop's thread
 * after the server stopped, before its event_base is freed. NULL: no-op. */
void mock_notify_del(mock_notify *n);

/* The engine's on_end hook: starts the notification of |tx| when it ran in
 * asynchServerServer mode and its AP has a notify_url; ignores the rest
 * (and a NULL |n|: Omantel). Reads the final status and signature from |e|
 * (mock_mssp_final_status) and builds the body once; the first attempt is
 * submitted at once (its HTTP exchange runs on the loop, no callback before
 * this returns). Failures are logged and counted. Loop thread. */
void mock_notify_tx_end(mock_notify *n, mock_mssp *e, const mock_tx_info *tx);

/* Copies the counters (zeros for a NULL |n|). Loop thread. */
void mock_notify_get_stats(const mock_notify *n, mock_notify_stats *out);

#endif
