/* gw_operators.c — POST /operators/{name}/notify (gw_operators.h). */
#include "gw_operators.h"

#include <stdio.h>
#include <string.h>

#include "gw_app.h"
#include "gw_buf.h"
#include "gw_err.h"
#include "gw_http.h"
#include "gw_log.h"
#include "op_adapter.h"

#define ACK_MAX (64 * 1024)
#define REFUSED_LOG_PER_SEC 10

static void log_result(const gw_req *r, const char *op,
                       const op_notify_answer *ans) {
  /* Refusals may come in floods (an attacker, a misconfigured MSSP): a few
   * lines a second per worker are enough to see it. */
  static _Thread_local gw_log_rl rl;
  char qmsg[OP_DETAIL_MAX + 16], qid[OP_MSSP_TRANSID_MAX + 8];
  int suppressed = 0;

  if (ans->status != 200 &&
      !gw_log_rl_allow(&rl, REFUSED_LOG_PER_SEC, &suppressed)) {
    return;
  }
  GW_LOG(
      ans->status == 200 ? GW_LOG_INFO : GW_LOG_WARN, "operator notification",
      "operator=%s status=%d result=%s mssp_trans_id=%s client=%s "
      "detail=%s suppressed=%d",
      op, ans->status,
      ans->status == 200 ? (ans->repeat ? "repeated" : "applied") : ans->error,
      gw_log_quote(qid, sizeof(qid), ans->mssp_trans_id,
                   strlen(ans->mssp_trans_id)),
      r->client_ip,
      gw_log_quote(qmsg, sizeof(qmsg), ans->message, strlen(ans->message)),
      suppressed);
}

static void h_notify(gw_exch *x) {
  gw_app *app = gw_exch_app(x);
  gw_req *r = gw_exch_req(x);
  const char *name = gw_route_param(&r->match, "name");
  op_adapter *a = NULL;
  op_notify_answer ans;
  op_notify_in in;
  gw_buf ack;

  if (!app || !app->operators) {
    gw_resp_error(x, 503, "unavailable", "the operator layer is not running");
    return;
  }
  a = op_registry_get(app->operators, name);
  if (!a) {
    gw_resp_error(x, 404, "unknown_operator", "no operator by that name");
    return;
  }
  memset(&in, 0, sizeof(in));
  in.signature = gw_req_header(r, "x-mss-signature");
  in.content_type = gw_req_header(r, "content-type");
  in.body = r->body.data ? r->body.data : "";
  in.body_len = r->body.len;
  gw_buf_init(&ack, ACK_MAX);
  op_notify(a, &in, &ack, &ans);
  log_result(r, op_adapter_name(a), &ans);
  if (ans.status == 200) {
    gw_resp_send(x, 200, ans.ack_type, ack.data ? ack.data : "", ack.len);
  } else {
    gw_resp_error(x, ans.status, ans.error, "%s", ans.message);
  }
  gw_buf_free(&ack);
}

int gw_operators_register(gw_router *r) {
  return gw_router_add(r, "POST", "/operators/{name}/notify", h_notify,
                       GW_OPERATORS_NOTIFY_MAX, "operator_notify");
}
