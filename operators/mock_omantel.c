/* mock_omantel.c — the Omantel mock MSSP's SOAP 1.2 front (ETSI TS 102 204).
 *
 * Three ports, as the FiCom guideline's MSSPs publish them:
 *   POST /soap/services/MSS_SignaturePort     MSS_SignatureReq
 *   POST /soap/services/MSS_StatusQueryPort   MSS_StatusReq
 *   POST /soap/services/MSS_ReceiptPort       MSS_ReceiptReq
 * Requests are SOAP 1.2 envelopes sent as application/soap+xml (or text/xml,
 * as older clients label them), over HTTP/1.1 (keep-alive, chunked bodies)
 * or h2c. mss_soap.h parses and builds them; mock_mssp.h decides. A message
 * posted to another message's port is refused (101).
 *
 * Faults are SOAP 1.2 faults (env:Sender / env:Receiver, Subcode mss:_NNN)
 * sent, per the SOAP 1.2 HTTP binding (SOAP 1.2 Part 2 §7.5.2.2), with HTTP
 * 400 for env:Sender (the request was wrong: 101..108) and HTTP 500 for
 * env:Receiver (the MSSP or the user: 208, 209, 401..425, 900). Results
 * (100, 500, 504) are HTTP 200.
 *
 * In synch mode the MSS_SignatureReq's exchange is kept until the
 * transaction ends (mock_mssp_wait), then answered with 500 and the
 * signature or the fault; a client that goes away drops the wait, not the
 * transaction. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "gw_err.h"
#include "gw_http.h"
#include "gw_log.h"
#include "mock_front.h"
#include "mss_soap.h"

#define SOAP_RESP_MAX (MSS_SOAP_MAX_INPUT + 64 * 1024)

typedef enum { PORT_SIGNATURE, PORT_STATUS, PORT_RECEIPT } port;

static const char *const port_path[] = {"/soap/services/MSS_SignaturePort",
                                        "/soap/services/MSS_StatusQueryPort",
                                        "/soap/services/MSS_ReceiptPort"};

/* The media type of a request: 1 application/soap+xml, 2 text/xml, 0
 * other. Parameters (charset, action) are ignored. */
static int soap_media(const gw_req *r) {
  const char *ct = gw_req_header(r, "content-type");
  size_t n;

  if (!ct) {
    return 0;
  }
  n = strcspn(ct, ";");
  while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
    n--;
  }
  if (n == 20 && strncasecmp(ct, "application/soap+xml", 20) == 0) {
    return 1;
  }
  if (n == 8 && strncasecmp(ct, "text/xml", 8) == 0) {
    return 2;
  }
  return 0;
}

static const char *resp_type(int media) {
  return media == 2 ? "text/xml; charset=utf-8" : MSS_SOAP_CONTENT_TYPE;
}

/* Sends |f| as a SOAP 1.2 fault: 400 for Sender, 500 for Receiver. */
static void send_fault(gw_exch *x, int media, const mss_fault *f) {
  gw_buf out;
  int status = f->code == MSS_FAULT_SENDER ? 400 : 500;

  gw_buf_init(&out, SOAP_RESP_MAX);
  if (mss_soap_build_fault(f, &out) != GW_OK) {
    gw_buf_free(&out);
    gw_resp_error(x, 500, "internal_error", "cannot build the SOAP fault");
    return;
  }
  gw_resp_send(x, status, resp_type(media), out.data, out.len);
  gw_buf_free(&out);
}

static void send_fault_code(gw_exch *x, int media, int code,
                            const char *detail) {
  mss_fault f;

  memset(&f, 0, sizeof(f));
  mss_fault_set(&f, code, detail);
  send_fault(x, media, &f);
}

/* Sends a built document, or a 500 when building failed. */
static void send_doc(gw_exch *x, int media, int rv, gw_buf *out) {
  if (rv != GW_OK) {
    GW_LOG(GW_LOG_ERROR, "cannot build a SOAP response", "error=\"%s\"",
           gw_strerror(rv));
    send_fault_code(x, media, MSS_INTERNAL_ERROR,
                    "the mock could not build its response");
  } else {
    gw_resp_send(x, 200, resp_type(media), out->data, out->len);
  }
  gw_buf_free(out);
}

/* Common checks: the engine's loop, the media type, the message on its
 * port. Returns the media type (1, 2) or 0 when it has answered. */
static int precheck(gw_exch *x, port p) {
  static const mss_msg want[] = {MSS_MSG_SIGNATURE_REQ, MSS_MSG_STATUS_REQ,
                                 MSS_MSG_RECEIPT_REQ};
  gw_req *r = gw_exch_req(x);
  mock_app *app = gw_exch_app(x);
  mss_msg type = MSS_MSG_NONE;
  int media = soap_media(r);
  char detail[200];

  if (mock_mssp_bind_exch(app->engine, x) != GW_OK) {
    gw_resp_error(x, 500, "internal_error",
                  "the engine runs on another event loop");
    return 0;
  }
  if (!media) {
    /* Still a SOAP fault, so that a SOAP client can read why. */
    mss_fault f;
    gw_buf out;
    memset(&f, 0, sizeof(f));
    mss_fault_set(&f, MSS_INCOMPATIBLE_INTERFACE,
                  "the request must be a SOAP 1.2 message sent as "
                  "application/soap+xml (or text/xml)");
    gw_buf_init(&out, SOAP_RESP_MAX);
    if (mss_soap_build_fault(&f, &out) == GW_OK) {
      gw_resp_send(x, 415, MSS_SOAP_CONTENT_TYPE, out.data, out.len);
    } else {
      gw_resp_error(x, 415, "unsupported_media_type",
                    "application/soap+xml expected");
    }
    gw_buf_free(&out);
    return 0;
  }
  if (mss_soap_peek(r->body.data ? r->body.data : "", r->body.len, &type) ==
          GW_OK &&
      type != want[p] && type != MSS_MSG_NONE) {
    snprintf(detail, sizeof(detail), "%s posted to %s; this port takes %s",
             mss_msg_name(type), port_path[p], mss_msg_name(want[p]));
    send_fault_code(x, media, MSS_WRONG_PARAM, detail);
    return 0;
  }
  return media;
}

/* A parser's failure: its fault (GW_ERR_PROTO: the body is a fault, not a
 * request). */
static void parse_failed(gw_exch *x, int media, int rv, mss_fault *f) {
  if (rv == GW_ERR_PROTO) {
    send_fault_code(x, media, MSS_WRONG_PARAM,
                    "the Body holds a Fault, not a request");
    return;
  }
  if (f->subcode <= 0) {
    mss_fault_set(
        f, rv == GW_ERR_NOMEM ? MSS_INTERNAL_ERROR : MSS_INCOMPATIBLE_INTERFACE,
        "the request could not be read");
  }
  send_fault(x, media, f);
}

/* ---- MSS_Signature --------------------------------------------------------
 */

typedef struct synch_wait {
  gw_exch *x;
  mock_mssp *e;
  mock_op *op;
  int media;
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
    send_fault(w->x, w->media, &f);
  } else {
    gw_buf_init(&out, SOAP_RESP_MAX);
    send_doc(w->x, w->media, mss_soap_build_signature_resp(&w->resp, &out),
             &out);
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
  int media, rv, code;

  media = precheck(x, PORT_SIGNATURE);
  if (!media) {
    return;
  }
  req = malloc(sizeof(*req));
  w = calloc(1, sizeof(*w));
  if (!req || !w) {
    send_fault_code(x, media, MSS_INTERNAL_ERROR, "out of memory");
    goto done;
  }
  memset(&f, 0, sizeof(f));
  rv = mss_soap_parse_signature_req(r->body.data ? r->body.data : "",
                                    r->body.len, req, &f);
  if (rv != GW_OK) {
    parse_failed(x, media, rv, &f);
    goto done;
  }
  code = mock_mssp_signature(app->engine, req, &w->resp, &f);
  if (code < 0) {
    send_fault_code(x, media, MSS_INTERNAL_ERROR, gw_strerror(code));
    goto done;
  }
  if (mss_status_is_fault(code)) {
    send_fault(x, media, &f);
    goto done;
  }
  if (req->messaging_mode != MSS_MODE_SYNCH) {
    gw_buf_init(&out, SOAP_RESP_MAX);
    send_doc(x, media, mss_soap_build_signature_resp(&w->resp, &out), &out);
    goto done;
  }
  /* synch: answer at the end. */
  w->x = x;
  w->e = app->engine;
  w->media = media;
  rv = mock_mssp_wait(app->engine, w->resp.mssp_trans_id, synch_done, w, &op);
  if (rv != GW_OK) {
    send_fault_code(x, media, MSS_INTERNAL_ERROR, gw_strerror(rv));
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

/* ---- MSS_StatusQuery --------------------------------------------------------
 */

static void h_status(gw_exch *x) {
  gw_req *r = gw_exch_req(x);
  mock_app *app = gw_exch_app(x);
  mss_status_req req;
  mss_status_resp *resp;
  mss_fault f;
  gw_buf out;
  int media, rv, code;

  media = precheck(x, PORT_STATUS);
  if (!media) {
    return;
  }
  memset(&f, 0, sizeof(f));
  rv = mss_soap_parse_status_req(r->body.data ? r->body.data : "", r->body.len,
                                 &req, &f);
  if (rv != GW_OK) {
    parse_failed(x, media, rv, &f);
    return;
  }
  resp = malloc(sizeof(*resp));
  if (!resp) {
    send_fault_code(x, media, MSS_INTERNAL_ERROR, "out of memory");
    return;
  }
  code = mock_mssp_status(app->engine, &req, resp, &f);
  if (code < 0) {
    send_fault_code(x, media, MSS_INTERNAL_ERROR, gw_strerror(code));
  } else if (mss_status_is_fault(code)) {
    send_fault(x, media, &f);
  } else {
    gw_buf_init(&out, SOAP_RESP_MAX);
    send_doc(x, media, mss_soap_build_status_resp(resp, &out), &out);
  }
  free(resp);
}

/* ---- MSS_Receipt
 * -------------------------------------------------------------- */

static void h_receipt(gw_exch *x) {
  gw_req *r = gw_exch_req(x);
  mock_app *app = gw_exch_app(x);
  mss_receipt_req *req;
  mss_receipt_resp resp;
  mss_fault f;
  gw_buf out;
  int media, rv, code;

  media = precheck(x, PORT_RECEIPT);
  if (!media) {
    return;
  }
  req = malloc(sizeof(*req));
  if (!req) {
    send_fault_code(x, media, MSS_INTERNAL_ERROR, "out of memory");
    return;
  }
  memset(&f, 0, sizeof(f));
  rv = mss_soap_parse_receipt_req(r->body.data ? r->body.data : "", r->body.len,
                                  req, &f);
  if (rv != GW_OK) {
    parse_failed(x, media, rv, &f);
    free(req);
    return;
  }
  code = mock_mssp_receipt(app->engine, req, &resp, &f);
  free(req);
  if (code < 0) {
    send_fault_code(x, media, MSS_INTERNAL_ERROR, gw_strerror(code));
  } else if (mss_status_is_fault(code)) {
    send_fault(x, media, &f);
  } else {
    gw_buf_init(&out, SOAP_RESP_MAX);
    send_doc(x, media, mss_soap_build_receipt_resp(&resp, &out), &out);
  }
}

/* ---- misbehaviour on demand (PUT /control/inject) ------------------------ */

static const mock_wire soap_wire = {
    .content_type = MSS_SOAP_CONTENT_TYPE,
    .truncated =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<env:Envelope "
        "xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\">\n<env:Body>\n"
        "<MSS_SignatureResponse>\n<mss:MSS_SignatureResp xmlns:mss=\"http://"
        "uri.etsi.org/TS102204/v1.1.2#\" MajorVersion=\"1\" MinorVer",
    /* a comment pads it */
    .pad_head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!--",
    .pad_unit = "padding padding padding padding padding pad\n",
    .pad_tail = "-->\n<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/"
                "soap-envelope\"><env:Body/></env:Envelope>\n",
    .garbage_first = -1,
};

static void dispatch(gw_exch *x, port p) {
  switch (p) {
  case PORT_SIGNATURE:
    h_signature(x);
    break;
  case PORT_STATUS:
    h_status(x);
    break;
  case PORT_RECEIPT:
    h_receipt(x);
    break;
  }
}

static void handle_later(gw_exch *x, void *arg) {
  dispatch(x, (port)(intptr_t)arg);
}

static void on_port(gw_exch *x, port p) {
  if (!mock_front_misbehave(x, &soap_wire, handle_later, (void *)(intptr_t)p)) {
    dispatch(x, p);
  }
}

static void h_signature_port(gw_exch *x) {
  on_port(x, PORT_SIGNATURE);
}

static void h_status_port(gw_exch *x) {
  on_port(x, PORT_STATUS);
}

static void h_receipt_port(gw_exch *x) {
  on_port(x, PORT_RECEIPT);
}

int mock_omantel_routes(gw_router *r) {
  int rv;

  rv = gw_router_add(r, "POST", port_path[PORT_SIGNATURE], h_signature_port,
                     MSS_SOAP_MAX_INPUT, "mss_signature");
  rv = rv ? rv
          : gw_router_add(r, "POST", port_path[PORT_STATUS], h_status_port,
                          MSS_SOAP_MAX_INPUT, "mss_status");
  rv = rv ? rv
          : gw_router_add(r, "POST", port_path[PORT_RECEIPT], h_receipt_port,
                          MSS_SOAP_MAX_INPUT, "mss_receipt");
  return rv;
}
