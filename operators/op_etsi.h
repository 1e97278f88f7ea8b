/* op_etsi.h — the ETSI TS 102 204 client every operator adapter shares:
 * signature request, status polling, server-to-server notifications,
 * receipts, the outcome mapping, retries and the breaker verdicts. An
 * adapter (op_omantel.c: SOAP 1.2; op_ooredoo.c: the JSON rendering) is a
 * codec table, its URLs and its settings; the protocol logic is here once.
 *
 *   submit   MSS_SignatureReq (DataToBeSigned application/x-sha256, base64
 *            of the caller's digest; DataToBeDisplayed text/plain;
 *            MSS_Format; TimeOut; MessagingMode asynchClientServer, or
 *            asynchServerServer when notifications are on). 100
 *            REQUEST_OK with an MSSP_TransID = ACCEPTED; a fault = FINAL.
 *   follow   client-server: MSS_StatusReq poll_first_ms after, then every
 *            poll_interval_ms: 504 goes on; 500 ends with the signature; a
 *            fault ends with its outcome. Server-server: wait for the
 *            notification (op_etsi_notify); none after notify_overdue_ms:
 *            poll as well, whichever answers first wins. Either way the
 *            adapter's own deadline is TimeOut + two intervals + 1 s.
 *   receipt  MSS_ReceiptReq.
 *
 * Retries only where safe: a status query without a usable answer is asked
 * again at the next interval, up to status_retries in a row; a signature
 * request is sent again (once) only when the connection failed before any
 * byte went out, since a second one would push a second request to the
 * phone. Every message carries a fresh AP_TransID (MSSPs refuse a repeat).
 *
 * Breaker verdicts: a message or a fault is a success (the MSSP is up, even
 * when the user refused); no answer, a 5xx without a fault, or an answer
 * that is not the protocol is a failure.
 *
 * Notifications (server-server mode) are received on any worker thread
 * and applied on the loop of the transaction they finish: a table per
 * adapter, under a mutex, maps the AP_TransID of each waiting transaction
 * to it (the MSSP names both ids, and a notification may overtake the
 * answer to the request), and remembers for a while which MSSP_TransIDs
 * ended and by which notification body, so that a repeat of that body is
 * acknowledged again without effect and anything else is refused. */
#ifndef OP_ETSI_H
#define OP_ETSI_H

#include <stdatomic.h>
#include <stddef.h>

#include "gw_buf.h"
#include "mss.h"
#include "op_adapter_int.h"

struct gw_op_config;

/* How one adapter writes and reads the messages. */
typedef struct op_etsi_codec {
  const char *name;         /* "SOAP", "JSON": for log lines */
  const char *content_type; /* of what we send */
  /* 1 when an answer's Content-Type (may be NULL) is this protocol's. */
  int (*type_ok)(const char *content_type);
  int (*build_signature_req)(const mss_signature_req *req, gw_buf *out);
  int (*parse_signature_resp)(const char *p, size_t n, mss_signature_resp *out,
                              mss_fault *fault);
  int (*build_status_req)(const mss_status_req *req, gw_buf *out);
  int (*parse_status_resp)(const char *p, size_t n, mss_status_resp *out,
                           mss_fault *fault);
  int (*build_receipt_req)(const mss_receipt_req *req, gw_buf *out);
  int (*parse_receipt_resp)(const char *p, size_t n, mss_receipt_resp *out,
                            mss_fault *fault);
} op_etsi_codec;

typedef struct op_etsi_notify_table op_etsi_notify_table;

/* An ETSI adapter: embeds op_adapter first; op_omantel.c / op_ooredoo.c
 * embed this first in turn when they need more. */
typedef struct op_etsi_adapter {
  op_adapter base;
  const op_etsi_codec *codec;
  char *url_sig, *url_status, *url_receipt; /* may be the same URL */
  char ap_id[MSS_URI_MAX + 1];
  char ap_pwd[MSS_PWD_MAX + 1]; /* wiped on free */
  const char *mss_format;       /* MSS_FORMAT_PKCS7 or MSS_FORMAT_PKCS1 */
  int minor_version;            /* MinorVersion of our requests */
  int poll_first_ms;
  int poll_interval_ms;
  int timeout_s;
  int connect_timeout_ms;
  int http_timeout_ms;
  int status_retries;
  size_t max_response;
  _Atomic uint64_t last_warn_ns; /* rate limit of "bad answer" lines */
  /* Server-server mode; nt NULL when off. */
  op_etsi_notify_table *nt;
  unsigned char notify_secret[MSS_PWD_MAX]; /* wiped on free */
  size_t notify_secret_len;
  int notify_overdue_ms;
  int notify_max_skew_s;
} op_etsi_adapter;

/* What op_etsi_init takes besides the codec. */
typedef struct op_etsi_settings {
  const struct gw_op_config *oc; /* AP, timeouts, polling, breaker, notify */
  const char *url_sig;           /* copied */
  const char *url_status;
  const char *url_receipt;
  const char *mss_format;
  int minor_version;
  int notifications; /* 1: asynchServerServer when oc->notify_url is set */
} op_etsi_settings;

/* Initialises |ea| (zeroed by the caller) for |ops| with |codec|. With
 * notifications and a notify_url, the secret must be 32..128 bytes.
 * Returns GW_OK, GW_ERR_CONFIG (reason in |err|), GW_ERR_NOMEM. On failure
 * everything allocated is freed (call nothing else). */
int op_etsi_init(op_etsi_adapter *ea, const op_adapter_ops *ops,
                 const op_etsi_codec *codec, const op_etsi_settings *s,
                 char *err, size_t errlen);

/* Frees what op_etsi_init allocated and wipes the secrets (not |ea|). */
void op_etsi_free(op_etsi_adapter *ea);

/* The table functions (op_adapter_int.h) of an ETSI adapter. */
int op_etsi_submit(op_adapter *a, op_http *http, const op_sign_req *req,
                   op_txn **out);
int op_etsi_follow(op_txn *t);
void op_etsi_stop(op_txn *t);
void op_etsi_txn_free(op_txn *t);
int op_etsi_receipt(op_adapter *a, op_http *http, const op_receipt_req *req,
                    op_receipt_fn cb, void *arg);
void op_etsi_health(op_adapter *a, op_health *out);
/* As op_notify (op_adapter.h); 404 when notifications are off. */
int op_etsi_notify(op_adapter *a, const op_notify_in *in, gw_buf *ack,
                   op_notify_answer *ans);

/* The FiCom 4-digit specifier of |code| in |text| (e.g. "9003" in "9003
 * SIM application error" under 900), or 0. */
int op_etsi_detail_code(const char *text, int code);

/* Verifies an X-MSS-Signature header value ("t=<unix>,v1=<hex>[,v1=...]")
 * over |body| with |key|: HMAC-SHA256 of "<t>.<body>", compared in
 * constant time, and |now| - t within +-|max_skew_s|. Returns 0 when
 * good, else -1 with |why| a static reason ("missing", "malformed",
 * "bad signature", "timestamp out of range"). */
int op_etsi_check_signature(const char *header, const char *body, size_t n,
                            const unsigned char *key, size_t keylen,
                            long long now, int max_skew_s, const char **why);

/* Writes an X-MSS-Signature value for |body| at time |t| into |out|
 * (>= 80 bytes): for tests and the mock's own checks. Returns GW_OK or
 * GW_ERR_TOO_LARGE / GW_ERR_INTERNAL. */
int op_etsi_sign_notification(const char *body, size_t n,
                              const unsigned char *key, size_t keylen,
                              long long t, char *out, size_t cap);

#endif
