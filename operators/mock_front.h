/* mock_front.h — the HTTP side of mssp-mock: what every mock operator
 * serves (GET /healthz, the /control/ endpoint) and the route tables of the
 * operator fronts (Omantel's SOAP in mock_omantel.c; Ooredoo's JSON, issue
 * 5). The fronts decode requests into the structs of mss.h, hand them to
 * the transaction engine (mock_mssp.h) and encode its answers; they run on
 * the server's single worker thread, like the engine.
 *
 * The control endpoint (JSON; only registered when control.enabled):
 *   GET    /control/stats   the engine's counters; with Ooredoo also
 *          "notifications": {queued, attempts, delivered, failed, pending}
 *   GET    /control/subscribers/{msisdn}
 *   PUT    /control/subscribers/{msisdn}/behaviour   {"behaviour": "refuse"}
 *          ({"behaviour": null} or DELETE: back to the registry's)
 *   DELETE /control/subscribers/{msisdn}/behaviour
 *   POST   /control/subscribers/{msisdn}/pin/reset   full PIN/PUK counters
 *   POST   /control/subscribers/{msisdn}/pin/unblock {"puk": "...",
 *                                                     "new_pin": "..."}
 *   POST   /control/subscribers/{msisdn}/handset     {"action": "approve",
 *          "pin": "1234"} or {"action": "refuse"}: answers the transaction
 *          waiting on a "handset" subscriber's phone
 *   GET    /control/transactions/{mssp_trans_id}
 *   PUT    /control/inject   {"mode": "slow", "ms": 3000} | {"mode":
 *          "garbage"} | "invalid_xml" | "content_type" | {"mode":
 *          "oversized", "bytes": N} | {"mode": "http_error", "status": 503}
 *          | "none": how the operator front misbehaves (DELETE: "none")
 * Errors are the server's JSON {"error": code, "message": text}. See
 * docs/operators.md. */
#ifndef MOCK_FRONT_H
#define MOCK_FRONT_H

#include "gw_router.h"
#include "mock_mssp.h"

/* The application context of the server (gw_server_new's |app|). */
/* Misbehaviour of the operator front, for the gateway adapter's tests (the
 * operator slow, answering garbage, ...): set through PUT /control/inject,
 * applied by the front to every operator request until cleared. */
typedef enum mock_inject {
  MOCK_INJECT_NONE = 0,
  MOCK_INJECT_SLOW,         /* answer |inject_arg| ms late (normally) */
  MOCK_INJECT_GARBAGE,      /* 200, the right content type, random bytes */
  MOCK_INJECT_INVALID_XML,  /* 200, a truncated SOAP envelope (Ooredoo:
                               truncated JSON) */
  MOCK_INJECT_CONTENT_TYPE, /* 200, text/html */
  MOCK_INJECT_OVERSIZED,    /* 200, |inject_arg| bytes of well-formed XML
                               (Ooredoo: JSON) */
  MOCK_INJECT_HTTP_ERROR,   /* HTTP |inject_arg| (e.g. 503), no SOAP/JSON */
  MOCK_INJECT_COUNT_
} mock_inject;

/* "none", "slow", "garbage", "invalid_xml", "content_type", "oversized",
 * "http_error"; NULL out of range. */
const char *mock_inject_name(mock_inject m);

/* The application context of the server (gw_server_new's |app|); touched
 * on the worker thread only. */
typedef struct mock_app {
  mock_mssp *engine;
  struct mock_handset *handset; /* the virtual handsets (mock_handset.h) */
  struct mock_notify *notify;   /* Ooredoo: notifications (mock_notify.h);
                                   NULL for Omantel */
  const char *operator_name;    /* "omantel" */
  mock_inject inject;
  int inject_arg; /* ms for slow, bytes for oversized, status for
                     http_error */
} mock_app;

/* Adds GET /healthz and, when |control| is set, the control routes.
 * Returns GW_OK or the router's error. */
int mock_front_routes(gw_router *r, int control);

/* Adds the Omantel SOAP ports (mock_omantel.c):
 *   POST /soap/services/MSS_SignaturePort
 *   POST /soap/services/MSS_StatusQueryPort
 *   POST /soap/services/MSS_ReceiptPort
 * Returns GW_OK or the router's error. */
int mock_omantel_routes(gw_router *r);

/* How an operator front misbehaves on demand, in its own wire format. */
typedef struct mock_wire {
  const char *content_type; /* of the front's answers */
  const char *truncated;    /* a document cut off half-way (invalid_xml) */
  const char *pad_head;     /* oversized: a well-formed document made of */
  const char *pad_unit;     /* head, units up to the size asked, tail */
  const char *pad_tail;
  int garbage_first; /* garbage: its first byte (never a valid document
                        by chance), -1 = random */
} mock_wire;

/* Answers as the injected misbehaviour (app->inject, PUT /control/inject)
 * says, in |w|'s format. Returns 0 when the request is to be handled
 * normally now; 1 when it was answered, or (slow) will be handled by
 * |handle(x, arg)| after the delay on the engine's loop. */
struct gw_exch;
int mock_front_misbehave(struct gw_exch *x, const mock_wire *w,
                         void (*handle)(struct gw_exch *x, void *arg),
                         void *arg);

/* Adds the Ooredoo JSON service (mock_ooredoo.c): one endpoint,
 *   POST /rest/service
 * taking MSS_SignatureReq, MSS_StatusReq and MSS_ReceiptReq in the JSON
 * rendering (mss_json.h; the root member names the message), sent as
 * application/json (else 415 with a JSON Fault _108). Results are HTTP 200,
 * every Fault HTTP 500. Returns GW_OK or the router's error. */
int mock_ooredoo_routes(gw_router *r);

#endif
