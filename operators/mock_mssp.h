/* mock_mssp.h — the transaction engine of the mock MSSPs (mssp-mock).
 *
 * What an MSSP does between an application provider (AP) and a SIM,
 * independent of the wire format: the Omantel front (mock_omantel.c) feeds
 * it messages decoded from SOAP, the Ooredoo front (mock_ooredoo.c) from JSON;
 * both speak the structs of mss.h. The engine
 *  - authenticates APs (AP_ID + AP_PWD from the mock's config; 104
 *    UNAUTHORIZED_ACCESS otherwise);
 *  - refuses a repeated (AP_ID, AP_TransID) in MSS_SignatureReq (101
 *    WRONG_PARAM), remembered for replay_window_s (at most replay_max pairs,
 *    the oldest forgotten first);
 *  - checks the request: MessagingMode (synch, asynchClientServer;
 *    asynchServerServer only when allowed and the AP has a notification
 *    URL), DataToBeSigned (text/plain UTF-8, application/x-sha256 base64 of
 *    32 bytes, application/octet-stream base64), display text that must fit
 *    the SIM (mss_display_fits: GSM-7 160 septets or UCS-2 70 units, else
 *    107 INAPPROPRIATE_DATA, never cut), MSS_Format (PKCS7 or the FiCom
 *    PKCS1), the subscriber (105 UNKNOWN_CLIENT when the MSISDN is not one
 *    of this operator's SIMs in the registry), one running transaction per
 *    phone (406 PB_SIGNATURE_PROCESS);
 *  - gives each transaction an MSSP_TransID and plays the subscriber's
 *    scripted behaviour (below) until it ends: 500 SIGNATURE with the SIM's
 *    signature, or a fault code; TimeOut (or default_timeout_s, cut to
 *    max_timeout_s) ends it with 208 EXPIRED_TRANSACTION;
 *  - answers MSS_StatusQuery (504 OUTSTANDING_TRANSACTION until the end)
 *    and MSS_Receipt (once per ended transaction), keeps ended transactions
 *    keep_done_s for them, then forgets them.
 *
 * Behaviours (the registry's `behaviour` column, configs/demo-subscribers.csv;
 * changeable at run time with mock_mssp_set_behaviour):
 *   approve[:MS]        the user types the right PIN after MS ms (1000):
 *                       the SIM signs (500)
 *   refuse[:MS]         the user cancels after MS ms (1000): 401 USER_CANCEL
 *   no_answer           nothing happens: 208 at TimeOut
 *   handset             waits for mock_mssp_handset() (the virtual handset
 *                       page of issue 5, or the control endpoint)
 *   pin_blocked         the SIM's PIN is blocked (the counter is set to 0
 *                       and persisted): 402 PIN_NR_BLOCKED
 *   wrong_pin[:MS]      the user types a wrong PIN after MS ms (1000), again
 *                       and again, each checked by the token and counted,
 *                       until the PIN blocks: 402
 *   absent[:MS]         the phone is unreachable: 209 OTA_ERROR after MS ms
 *                       (500)
 *   sim_error[:MS]      the SIM application fails: 900 INTERNAL_ERROR with
 *                       detail "9003 SIM application error" after MS ms (500)
 *   not_subscriber[:C]  no PKI on this SIM: the request is refused at once
 *                       with C = 404 NO_KEY_FOUND (default) or 422
 *                       NO_CERT_FOUND
 * A registry row without a behaviour gets default_behaviour. The SIM
 * itself may end a transaction too: a PIN already blocked (402), a card
 * blocked by PUKs (403 CARD_BLOCKED), no token or key (404), a token
 * failure (900).
 *
 * Threads: the engine belongs to one event loop (mock_mssp_bind): every
 * function below except _new, _del, _load_registry and _add_subscriber
 * must run on that loop's thread (the mock's single server worker), and
 * every callback runs there. SIM work (PKCS#11, state files) runs on the
 * engine's own p11_pool; its results come back through an event. Nothing
 * here blocks the loop.
 *
 * Return values of the message functions: the ETSI status code of the
 * answer — a result (100, 500, 504) with |resp| filled, or a fault code
 * (mss_status_is_fault) with |fault| filled — or a negative GW_ERR_* for a
 * misuse (engine not bound: GW_ERR_INVALID) or out of memory. Passwords
 * are never copied into a response or a log. */
#ifndef MOCK_MSSP_H
#define MOCK_MSSP_H

#include <stddef.h>
#include <stdint.h>

#include "gw_store.h"
#include "mock_sim.h"
#include "mss.h"

struct event_base;
struct gw_exch;

typedef struct mock_mssp mock_mssp;
typedef struct mock_op mock_op;

#define MOCK_AP_MAX 64
#define MOCK_BEHAVIOUR_MAX 64
#define MOCK_DETAIL_MAX 160

/* An application provider allowed to use the MSSP. */
typedef struct mock_ap {
  char ap_id[MSS_URI_MAX + 1];
  char ap_pwd[MSS_PWD_MAX + 1];
  /* asynchServerServer (the Ooredoo mock, mock_notify.h): where and with which
   * secret the final MSS_StatusResp is POSTed; "" = none. */
  char notify_url[MSS_URI_MAX + 1];
  char notify_secret[MSS_PWD_MAX + 1];
} mock_ap;

typedef enum mock_tx_state {
  MOCK_TX_WAITING = 0, /* for the (virtual) user */
  MOCK_TX_SIGNING = 1, /* the SIM is working */
  MOCK_TX_DONE = 2
} mock_tx_state;

/* A copy of a transaction, for hooks, handset pages and the control API. */
typedef struct mock_tx_info {
  char mssp_trans_id[MSS_MSSP_TRANSID_MAX + 1];
  char ap_id[MSS_URI_MAX + 1];
  char ap_trans_id[MSS_TRANSID_MAX + 1];
  char msisdn[MSS_MSISDN_MAX + 1];
  char behaviour[MOCK_BEHAVIOUR_MAX + 1]; /* as it was when it began */
  mss_mode mode;
  mock_tx_state state;
  int status; /* 504 while running; 500 or a fault code at the end */
  char detail[MOCK_DETAIL_MAX + 1]; /* why it ended, "" when running/500 */
  /* What the phone shows: DataToBeDisplayed, else a text/plain
   * DataToBeSigned, else "" (UTF-8). */
  char display[MSS_DATA_MAX + 1];
  mock_sim_data_kind data_kind;
  uint8_t digest[32]; /* what the SIM signs (REFERENCE §1c) */
  mock_sim_format format;
  int timeout_s;
  long long created_at; /* Unix ms */
  long long deadline_at;
  long long ended_at; /* 0 while running */
  int receipt;        /* an MSS_Receipt was accepted */
  int pin_attempts;   /* PINs typed so far in this transaction */
} mock_tx_info;

typedef struct mock_mssp_config {
  const char *operator_name;  /* registry rows of this operator ("omantel") */
  const char *mssp_id;        /* MSSP_ID/URI in every response */
  const char *default_format; /* MSS_Format when a request has none
                                 (MSS_FORMAT_PKCS7) */
  int allow_server_server;    /* asynchServerServer accepted (0) */
  const mock_ap *aps;         /* copied */
  size_t naps;                /* 1..MOCK_AP_MAX */
  int default_timeout_s;      /* TimeOut when absent (300, FiCom) */
  int max_timeout_s;          /* a larger TimeOut is cut to it (600) */
  int keep_done_s;            /* ended transactions kept (600) */
  int max_transactions;       /* kept at once, running or ended (10000) */
  int replay_window_s;        /* (AP_ID, AP_TransID) remembered (86400) */
  int replay_max;             /* pairs remembered at most (100000) */
  const char *default_behaviour; /* for rows without one ("approve:1000") */
  const char *user_pin;          /* what the virtual users type ("1234") */
  const char *wrong_pin;         /* what wrong_pin users type ("0000") */
  int pool_threads;              /* SIM worker threads, 1..16 (2) */
  mock_sims *sims;               /* borrowed; required */
  const char *chain_file;        /* PEM certificates put into every CMS beside
                                    the SIM's (the issuing CA); NULL or "" =
                                    none */
  /* Hooks, on the loop thread, may be NULL. on_end: a transaction ended
   * (server-server notifications: mock_notify_tx_end). on_change: something
   * changed for this phone: a transaction began, ended, or a PIN was refused
   * (issue 5: handset pages update by themselves). */
  void (*on_end)(void *arg, const mock_tx_info *tx);
  void (*on_change)(void *arg, const char *msisdn);
  void *hook_arg;
} mock_mssp_config;

/* Fills |c| with the defaults above (no APs, no SIMs, operator "omantel",
 * MSSP_ID "http://mssp.mock/omantel"). */
void mock_mssp_config_init(mock_mssp_config *c);

/* Creates an engine (strings copied; the SIM bank borrowed). Returns GW_OK,
 * GW_ERR_INVALID with the reason in |err| (no APs, no SIM bank, a value
 * out of range, a default behaviour that does not parse, an unknown
 * default format, a chain file that cannot be read or holds no
 * certificate), GW_ERR_NOMEM. |*out| untouched on failure. */
int mock_mssp_new(mock_mssp **out, const mock_mssp_config *cfg, char *err,
                  size_t errlen);

/* Frees the engine: waits for SIM work in flight, drops outstanding
 * operations without calling them. Call after the loop stopped (its
 * event_base must still exist). NULL is a no-op. */
void mock_mssp_del(mock_mssp *e);

/* Adds the subscribers of the configured operator from the registry:
 * MSISDN, behaviour, certificate; |*loaded| (may be NULL) gets how many.
 * A behaviour that does not parse is logged and replaced by the default.
 * Returns GW_OK or the store's error (reason in |err|), GW_ERR_NOMEM. */
int mock_mssp_load_registry(mock_mssp *e, gw_store *st, size_t *loaded,
                            char *err, size_t errlen);

/* Adds (or replaces) one subscriber: |behaviour| NULL or "" = the default;
 * |cert| the SIM's certificate in PEM or DER (|cert_len| bytes; NULL = none:
 * signatures then end with 422 NO_CERT_FOUND). Returns GW_OK,
 * GW_ERR_INVALID (MSISDN not "+digits", behaviour or certificate does not
 * parse), GW_ERR_NOMEM. */
int mock_mssp_add_subscriber(mock_mssp *e, const char *msisdn,
                             const char *behaviour, const void *cert,
                             size_t cert_len);

/* Binds the engine to the loop that will run it (creates its timers and
 * the SIM-result event). A second call with the same base is a no-op.
 * Returns GW_OK, GW_ERR_INVALID (bound to another base already),
 * GW_ERR_NOMEM. */
int mock_mssp_bind(mock_mssp *e, struct event_base *base);

/* For the HTTP fronts: binds the engine to the loop of the server worker
 * that runs exchange |x| (see mock_mssp_bind). */
int mock_mssp_bind_exch(mock_mssp *e, struct gw_exch *x);

/* The loop the engine is bound to (NULL before mock_mssp_bind), for the
 * fronts' own timers. */
struct event_base *mock_mssp_base(const mock_mssp *e);

/* ---- messages --------------------------------------------------------- */

/* MSS_SignatureReq. Returns 100 with |resp| (MSSP_TransID, REQUEST_OK) when
 * a transaction began — in synch mode too: the front then waits for the end
 * (mock_mssp_wait) and answers with mock_mssp_signature_final — or a fault
 * code: 104, 101 (replay, mode, format), 102, 103, 105, 107, 404/422
 * (not_subscriber), 406, 900 (max_transactions reached). */
int mock_mssp_signature(mock_mssp *e, const mss_signature_req *req,
                        mss_signature_resp *resp, mss_fault *fault);

/* The final MSS_SignatureResp of an ended transaction (synch mode): 500
 * with the signature, or its fault code; 504 with |resp| as for a status
 * query when it is still running; 101 for an unknown MSSP_TransID. */
int mock_mssp_signature_final(mock_mssp *e, const char *mssp_trans_id,
                              mss_signature_resp *resp, mss_fault *fault);

/* The final MSS_StatusResp of transaction |mssp_trans_id|, for a
 * server-server notification (mock_notify.h) — nobody asked, so no AP
 * authentication: MajorVersion/MinorVersion 1, AP_Info with the
 * transaction's AP_ID and AP_TransID (AP_PWD "", Instant now), MSSP_Info,
 * MSSP_TransID, MSISDN and Status {code, mss_status_name(code)}; with 500
 * the signature (PKCS7 or FiCom PKCS1, as the request asked); with a fault
 * code also |fault| (mss_fault_set: subcode, the engine's detail, e.g.
 * "9003 SIM application error"). Returns the end status (500 or a fault
 * code); 504 OUTSTANDING_TRANSACTION with |resp| so filled while it runs;
 * GW_ERR_NOT_FOUND when it is not kept (never was, or forgotten after
 * keep_done_s); GW_ERR_INVALID for a NULL argument. */
int mock_mssp_final_status(mock_mssp *e, const char *mssp_trans_id,
                           mss_status_resp *resp, mss_fault *fault);

/* MSS_StatusReq: 504 while running, then 500 with the signature, or the
 * transaction's fault code; 104; 101 for an unknown MSSP_TransID, another
 * AP's, or an MSISDN that is not the transaction's. */
int mock_mssp_status(mock_mssp *e, const mss_status_req *req,
                     mss_status_resp *resp, mss_fault *fault);

/* MSS_ReceiptReq: 100 REQUEST_OK once per ended transaction; 104; 101 for
 * an unknown MSSP_TransID, a running transaction, a second receipt. */
int mock_mssp_receipt(mock_mssp *e, const mss_receipt_req *req,
                      mss_receipt_resp *resp, mss_fault *fault);

/* ---- waiting and SIM operations --------------------------------------- */

/* What an operation reports to its callback. */
typedef struct mock_op_result {
  int rv;                   /* GW_OK, or the GW_ERR_* the SIM work met */
  int status;               /* wait: the transaction's end status;
                               handset: its status after the answer (504
                               while it still waits) */
  mock_sim_outcome outcome; /* SIM operations */
  int pin_tries_left;       /* SIM operations; -1 when unknown */
  int puk_tries_left;
} mock_op_result;

typedef void (*mock_op_fn)(void *arg, const mock_op_result *r);

/* Calls |fn(arg, r)| once the transaction ends (at once, before returning,
 * when it has ended already: then |*op| is NULL). |*op| identifies the wait
 * for mock_mssp_op_forget. Returns GW_OK, GW_ERR_NOT_FOUND, GW_ERR_NOMEM. */
int mock_mssp_wait(mock_mssp *e, const char *mssp_trans_id, mock_op_fn fn,
                   void *arg, mock_op **op);

/* The virtual handset answers transaction |mssp_trans_id| (behaviour
 * handset, waiting for the user): |approve| 0 refuses at once (401; no
 * callback, |*op| NULL, returns GW_OK); |approve| 1 has the SIM sign with
 * |pin| and calls |fn| with the SIM's outcome — a wrong PIN leaves the
 * transaction waiting for another try (r->status 504) until the PIN
 * blocks. Returns GW_OK, GW_ERR_NOT_FOUND (no such running transaction),
 * GW_ERR_BUSY (the SIM is busy with it, or it does not wait for a handset),
 * GW_ERR_INVALID (no PIN), GW_ERR_NOMEM. */
int mock_mssp_handset(mock_mssp *e, const char *mssp_trans_id, int approve,
                      const char *pin, mock_op_fn fn, void *arg, mock_op **op);

/* SIM operations for the control endpoint, run on the pool; |fn| gets the
 * outcome and counters:
 *   mock_mssp_sim_state    reads the counters
 *   mock_mssp_sim_reset    full counters (no PUK: a test/demo shortcut)
 *   mock_mssp_sim_unblock  the PUK path (mock_sim_unblock)
 * Return GW_OK, GW_ERR_INVALID (bad MSISDN, missing PUK/PIN),
 * GW_ERR_NOT_FOUND (not a subscriber of this MSSP), GW_ERR_BUSY (the
 * pool's queue is full), GW_ERR_NOMEM. */
int mock_mssp_sim_state(mock_mssp *e, const char *msisdn, mock_op_fn fn,
                        void *arg, mock_op **op);
int mock_mssp_sim_reset(mock_mssp *e, const char *msisdn, mock_op_fn fn,
                        void *arg, mock_op **op);
int mock_mssp_sim_unblock(mock_mssp *e, const char *msisdn, const char *puk,
                          const char *new_pin, mock_op_fn fn, void *arg,
                          mock_op **op);

/* Drops an operation: its callback will not run (the HTTP front calls it
 * when the client went away). NULL is a no-op. */
void mock_mssp_op_forget(mock_mssp *e, mock_op *op);

/* ---- inspection and control ------------------------------------------- */

typedef struct mock_sub_info {
  char msisdn[MSS_MSISDN_MAX + 1];
  char behaviour[MOCK_BEHAVIOUR_MAX + 1];          /* in effect */
  char registry_behaviour[MOCK_BEHAVIOUR_MAX + 1]; /* from the registry */
  int overridden;                                  /* set at run time */
  int has_cert;
  char running[MSS_MSSP_TRANSID_MAX + 1]; /* running transaction, "" */
} mock_sub_info;

/* Normalises an MSISDN as the engine does ("+96899000001", "0096899000001",
 * "96899000001" and "99000001" are the same phone) into |out| (|cap|
 * bytes). Returns GW_OK or GW_ERR_INVALID. */
int mock_mssp_msisdn_norm(const char *in, char *out, size_t cap);

/* Checks a behaviour string. Returns GW_OK or GW_ERR_INVALID. */
int mock_mssp_behaviour_check(const char *behaviour);

/* Sets the behaviour of |msisdn| at run time (NULL or "" = back to the
 * registry's); running transactions keep theirs. Returns GW_OK,
 * GW_ERR_NOT_FOUND, GW_ERR_INVALID (does not parse). */
int mock_mssp_set_behaviour(mock_mssp *e, const char *msisdn,
                            const char *behaviour);

/* Copies subscriber |msisdn|. Returns GW_OK, GW_ERR_NOT_FOUND,
 * GW_ERR_INVALID. */
int mock_mssp_subscriber(mock_mssp *e, const char *msisdn, mock_sub_info *out);

/* Copies transaction |mssp_trans_id|. Returns GW_OK or GW_ERR_NOT_FOUND. */
int mock_mssp_tx(mock_mssp *e, const char *mssp_trans_id, mock_tx_info *out);

/* The running transactions of |msisdn| waiting for its user (at most one
 * today: 406 keeps the others out), copied into |out| (|cap| entries);
 * |*n| gets how many. Returns GW_OK, GW_ERR_NOT_FOUND (not a subscriber). */
int mock_mssp_pending(mock_mssp *e, const char *msisdn, mock_tx_info *out,
                      size_t cap, size_t *n);

/* Counters since creation, for logs and the control endpoint. */
typedef struct mock_mssp_stats {
  unsigned long long requests;  /* MSS_SignatureReq received */
  unsigned long long refused;   /* answered with a fault at once */
  unsigned long long started;   /* transactions begun */
  unsigned long long signed_ok; /* ended with 500 */
  unsigned long long failed;    /* ended with a fault */
  unsigned long long running;   /* now */
  unsigned long long kept;      /* ended, still answering status queries */
} mock_mssp_stats;

void mock_mssp_get_stats(mock_mssp *e, mock_mssp_stats *out);

#endif
