/* mock_ooredoo.c — the Ooredoo mock MSSP's JSON front (ETSI TS 102 204 in
 * the JSON rendering used in the field, REFERENCE §1b).
 *
 * One endpoint, as Swisscom Mobile ID's REST interface has it:
 *   POST /rest/service
 * The root member of the JSON object names the message: MSS_SignatureReq,
 * MSS_StatusReq or MSS_ReceiptReq (mss_json_peek); mss_json.h parses and
 * builds, mock_mssp.h decides. Requests are application/json (any
 * parameters), over HTTP/1.1 (keep-alive, chunked bodies) or h2c; anything
 * else gets 415 with a JSON Fault _108.
 *
 * Results (100, 500, 504) are HTTP 200; every Fault — Sender (the request
 * was wrong) or Receiver (the MSSP or the user) — is HTTP 500 with a
 * {"Fault": ...} body, as the JSON MSSPs in the field answer.
 *
 * Messaging modes: synch (the MSS_SignatureReq's exchange is kept until the
 * transaction ends: mock_mssp_wait; a client that goes away drops the wait,
 * not the transaction), asynchClientServer (100, then status queries) and
 * asynchServerServer (100, then the final MSS_StatusResp is POSTed to the
 * AP's notify_url: mock_notify.h, started by the engine's on_end hook). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "gw_err.h"
#include "gw_http.h"
#include "gw_log.h"
#include "mock_front.h"
#include "mss_json.h"

#define SERVICE_PATH "/rest/service"
#define JSON_RESP_MAX (MSS_JSON_MAX_INPUT + 64 * 1024)
#define FAULT_HTTP_STATUS 500

/* 1 when the request is application/json (parameters such as charset are
 * ignored), else 0. */
static int json_media(const gw_req *r) {
  const char *ct = gw_req_header(r, "content-type");
  size_t n;

  if (!ct) {
    return 0;
  }
  n = strcspn(ct, ";");
  while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
    n--;
  }
  return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* Sends |f| as a JSON Fault with HTTP |status| (500, or 415). */
static void send_fault_status(gw_exch *x, int status, const mss_fault *f) {
  gw_buf out;

  gw_buf_init(&out, JSON_RESP_MAX);
  if (mss_json_build_fault(f, &out) != GW_OK) {
    gw_buf_free(&out);
    gw_resp_error(x, 500, "internal_error", "cannot build the JSON fault");
    return;
  }
  gw_resp_send(x, status, MSS_JSON_CONTENT_TYPE, out.data, out.len);
  gw_buf_free(&out);
}

static void send_fault(gw_exch *x, const mss_fault *f) {
  send_fault_status(x, FAULT_HTTP_STATUS, f);
}

static void send_fault_code(gw_exch *x, int code, const char *detail) {
  mss_fault f;

  memset(&f, 0, sizeof(f));
  mss_fault_set(&f, code, detail);
  send_fault(x, &f);
}

/* Sends a built document (HTTP 200), or a fault when building failed. */
static void send_doc(gw_exch *x, int rv, gw_buf *out) {
  if (rv != GW_OK) {
    GW_LOG(GW_LOG_ERROR, "cannot build a JSON response", "error=\"%s\"",
           gw_strerror(rv));
    send_fault_code(x, MSS_INTERNAL_ERROR,
                    "the mock could not build its response");
  } else {
    gw_resp_send(x, 200, MSS_JSON_CONTENT_TYPE, out->data, out->len);
  }
  gw_buf_free(out);
}

static const char *body_of(const gw_req *r) {
  return r->body.data ? r->body.data : "";
}

/* A parser's failure: its fault (GW_ERR_PROTO: the body is a Fault, not a
 * request). */
static void parse_failed(gw_exch *x, int rv, mss_fault *f) {
  if (rv == GW_ERR_PROTO) {
    send_fault_code(x, MSS_WRONG_PARAM, "the body is a Fault, not a request");
    return;
  }
  if (f->subcode <= 0) {
    mss_fault_set(
        f, rv == GW_ERR_NOMEM ? MSS_INTERNAL_ERROR : MSS_INCOMPATIBLE_INTERFACE,
        "the request could not be read");
  }
  send_fault(x, f);
}

/* ---- MSS_Signature ------------------------------------------------------ */

typedef struct synch_wait {
  gw_exch *x;
  mock_mssp *e;
  mock_op *op;
  mss_signature_resp resp; /* the first answer, completed at the end */
} synch_wait;

static void synch_cancel(void *arg) {
  synch_wait *w = arg;

  mock_mssp_op_forget(w->e, w->op);
  free(w);
}

static void synch_done(void *arg, const mock_op_result *r) {
  synch_wait *w = arg;
  mss_fault f;
  gw_buf out;
  int code;

  (void)r;
  memset(&f, 0, sizeof(f));
  code = mock_mssp_signature_final(w->e, w->resp.mssp_trans_id, &w->resp, &f);
  if (code < 0 || mss_status_is_fault(code)) {
    if (code < 0) {
      mss_fault_set(&f, MSS_INTERNAL_ERROR, NULL);
    }
    send_fault(w->x, &f);
  } else {
    gw_buf_init(&out, JSON_RESP_MAX);
    send_doc(w->x, mss_json_build_signature_resp(&w->resp, &out), &out);
  }
  free(w);
}

static void h_signature(gw_exch *x) {
  gw_req *r = gw_exch_req(x);
  mock_app *app = gw_exch_app(x);
  mss_signature_req *req = NULL;
  synch_wait *w = NULL;
  mss_fault f;
  mock_op *op = NULL;
  gw_buf out;
  int rv, code;

  req = malloc(sizeof(*req));
  w = calloc(1, sizeof(*w));
  if (!req || !w) {
    send_fault_code(x, MSS_INTERNAL_ERROR, "out of memory");
    goto done;
  }
  memset(&f, 0, sizeof(f));
  rv = mss_json_parse_signature_req(body_of(r), r->body.len, req, &f);
  if (rv != GW_OK) {
    parse_failed(x, rv, &f);
    goto done;
  }
  code = mock_mssp_signature(app->engine, req, &w->resp, &f);
  if (code < 0) {
    send_fault_code(x, MSS_INTERNAL_ERROR, gw_strerror(code));
    goto done;
  }
  if (mss_status_is_fault(code)) {
    send_fault(x, &f);
    goto done;
  }
  if (req->messaging_mode != MSS_MODE_SYNCH) {
    /* asynchClientServer: status queries follow; asynchServerServer: the
     * engine's on_end hook notifies the AP. */
    gw_buf_init(&out, JSON_RESP_MAX);
    send_doc(x, mss_json_build_signature_resp(&w->resp, &out), &out);
    goto done;
  }
  /* synch: answer at the end. */
  w->x = x;
  w->e = app->engine;
  rv = mock_mssp_wait(app->engine, w->resp.mssp_trans_id, synch_done, w, &op);
  if (rv != GW_OK) {
    send_fault_code(x, MSS_INTERNAL_ERROR, gw_strerror(rv));
    goto done;
  }
  if (op) {
    w->op = op;
    gw_exch_on_cancel(x, synch_cancel, w);
  }
  w = NULL; /* owned by the wait (or already answered and freed) */
done:
  free(req);
  free(w);
}

/* ---- MSS_StatusQuery ---------------------------------------------------- */

static void h_status(gw_exch *x) {
  gw_req *r = gw_exch_req(x);
  mock_app *app = gw_exch_app(x);
  mss_status_req req;
  mss_status_resp *resp;
  mss_fault f;
  gw_buf out;
  int rv, code;

  memset(&f, 0, sizeof(f));
  rv = mss_json_parse_status_req(body_of(r), r->body.len, &req, &f);
  if (rv != GW_OK) {
    parse_failed(x, rv, &f);
    return;
  }
  resp = malloc(sizeof(*resp));
  if (!resp) {
    send_fault_code(x, MSS_INTERNAL_ERROR, "out of memory");
    return;
  }
  code = mock_mssp_status(app->engine, &req, resp, &f);
  if (code < 0) {
    send_fault_code(x, MSS_INTERNAL_ERROR, gw_strerror(code));
  } else if (mss_status_is_fault(code)) {
    send_fault(x, &f);
  } else {
    gw_buf_init(&out, JSON_RESP_MAX);
    send_doc(x, mss_json_build_status_resp(resp, &out), &out);
  }
  free(resp);
}

/* ---- MSS_Receipt -------------------------------------------------------- */

static void h_receipt(gw_exch *x) {
  gw_req *r = gw_exch_req(x);
  mock_app *app = gw_exch_app(x);
  mss_receipt_req *req;
  mss_receipt_resp resp;
  mss_fault f;
  gw_buf out;
  int rv, code;

  req = malloc(sizeof(*req));
  if (!req) {
    send_fault_code(x, MSS_INTERNAL_ERROR, "out of memory");
    return;
  }
  memset(&f, 0, sizeof(f));
  rv = mss_json_parse_receipt_req(body_of(r), r->body.len, req, &f);
  if (rv != GW_OK) {
    parse_failed(x, rv, &f);
    free(req);
    return;
  }
  code = mock_mssp_receipt(app->engine, req, &resp, &f);
  free(req);
  if (code < 0) {
    send_fault_code(x, MSS_INTERNAL_ERROR, gw_strerror(code));
  } else if (mss_status_is_fault(code)) {
    send_fault(x, &f);
  } else {
    gw_buf_init(&out, JSON_RESP_MAX);
    send_doc(x, mss_json_build_receipt_resp(&resp, &out), &out);
  }
}

/* ---- the one endpoint --------------------------------------------------- */

/* The engine's loop, the media type, the message named by the root member:
 * dispatches, or answers with a fault. */
static void h_request(gw_exch *x) {
  gw_req *r = gw_exch_req(x);
  mock_app *app = gw_exch_app(x);
  mss_msg type = MSS_MSG_NONE;
  mss_fault f;
  char detail[160];
  int rv;

  if (mock_mssp_bind_exch(app->engine, x) != GW_OK) {
    gw_resp_error(x, 500, "internal_error",
                  "the engine runs on another event loop");
    return;
  }
  if (!json_media(r)) {
    /* Still a JSON Fault, so that a JSON client can read why. */
    memset(&f, 0, sizeof(f));
    mss_fault_set(&f, MSS_INCOMPATIBLE_INTERFACE,
                  "the request must be a JSON document sent as "
                  "application/json");
    send_fault_status(x, 415, &f);
    return;
  }
  rv = mss_json_peek(body_of(r), r->body.len, &type);
  if (rv == GW_ERR_NOMEM) {
    send_fault_code(x, MSS_INTERNAL_ERROR, "out of memory");
    return;
  }
  if (rv == GW_ERR_TOO_LARGE) {
    send_fault_code(x, MSS_WRONG_DATA_LENGTH, "the request is too large");
    return;
  }
  if (rv != GW_OK) {
    send_fault_code(x, MSS_INCOMPATIBLE_INTERFACE,
                    "the body must be a JSON object with one member named "
                    "after the message (MSS_SignatureReq, MSS_StatusReq, "
                    "MSS_ReceiptReq)");
    return;
  }
  switch (type) {
  case MSS_MSG_SIGNATURE_REQ:
    h_signature(x);
    return;
  case MSS_MSG_STATUS_REQ:
    h_status(x);
    return;
  case MSS_MSG_RECEIPT_REQ:
    h_receipt(x);
    return;
  case MSS_MSG_NONE:
    send_fault_code(x, MSS_INCOMPATIBLE_INTERFACE,
                    "unknown message; this service takes MSS_SignatureReq, "
                    "MSS_StatusReq and MSS_ReceiptReq");
    return;
  case MSS_MSG_FAULT:
    send_fault_code(x, MSS_WRONG_PARAM, "the body is a Fault, not a request");
    return;
  case MSS_MSG_SIGNATURE_RESP:
  case MSS_MSG_STATUS_RESP:
  case MSS_MSG_RECEIPT_RESP:
    break;
  }
  snprintf(detail, sizeof(detail),
           "%s is not a request; this service takes MSS_SignatureReq, "
           "MSS_StatusReq and MSS_ReceiptReq",
           mss_msg_name(type));
  send_fault_code(x, MSS_WRONG_PARAM, detail);
}

/* ---- misbehaviour on demand (PUT /control/inject) ----------------------- */

static const mock_wire json_wire = {
    .content_type = MSS_JSON_CONTENT_TYPE,
    .truncated =
        "{\"MSS_StatusResp\":{\"MajorVersion\":\"1\",\"MinorVersion\":\"2\","
        "\"AP_Info\":{\"AP_ID\":\"http://demo_ap\",\"AP_PWD\":\"\",\"AP_Tra",
    .pad_head = "{\"MSS_StatusResp\":{\"MajorVersion\":\"1\","
                "\"MinorVersion\":\"2\",\"Padding\":\"",
    .pad_unit = "padding padding padding padding padding pad ",
    .pad_tail = "\"}}",
    .garbage_first = 0xff, /* never by chance a JSON document */
};

static void handle_later(gw_exch *x, void *arg) {
  (void)arg;
  h_request(x);
}

static void h_service(gw_exch *x) {
  if (!mock_front_misbehave(x, &json_wire, handle_later, NULL)) {
    h_request(x);
  }
}

int mock_ooredoo_routes(gw_router *r) {
  return gw_router_add(r, "POST", SERVICE_PATH, h_service, MSS_JSON_MAX_INPUT,
                       "mss_service");
}
