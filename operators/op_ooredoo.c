/* op_ooredoo.c — the Ooredoo adapter: the JSON rendering of ETSI TS 102
 * 204 (mss_json.h), every message POSTed to one endpoint, the signature in
 * the FiCom PKCS1 form (raw r||s beside the certificate). With
 * operators.ooredoo.notify_url set it asks for the asynchronous
 * server-server mode: the MSSP POSTs the final MSS_StatusResp to the
 * gateway's POST /operators/ooredoo/notify (op_notify), HMAC-signed with
 * notify_secret; a notification overdue is covered by polling. Without
 * notify_url it polls, as the Omantel adapter does. The protocol logic is
 * op_etsi.c's, shared with Omantel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_config.h"
#include "gw_err.h"
#include "mss_json.h"
#include "op_etsi.h"

/* 1 for application/json, parameters allowed. */
static int json_type(const char *ct) {
  size_t n;

  if (!ct) {
    return 0;
  }
  while (*ct == ' ') {
    ct++;
  }
  n = strcspn(ct, "; ");
  return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

static const op_etsi_codec json_codec = {
    .name = "JSON",
    .content_type = MSS_JSON_CONTENT_TYPE,
    .type_ok = json_type,
    .build_signature_req = mss_json_build_signature_req,
    .parse_signature_resp = mss_json_parse_signature_resp,
    .build_status_req = mss_json_build_status_req,
    .parse_status_resp = mss_json_parse_status_resp,
    .build_receipt_req = mss_json_build_receipt_req,
    .parse_receipt_resp = mss_json_parse_receipt_resp,
};

static int oo_create(op_adapter **out, const gw_config *cfg, char *err,
                     size_t errlen) {
  op_etsi_adapter *ea = calloc(1, sizeof(*ea));
  op_etsi_settings s = {0};
  int rv;

  if (!ea) {
    snprintf(err, errlen, "out of memory");
    return GW_ERR_NOMEM;
  }
  s.oc = &cfg->op_ooredoo;
  s.url_sig = s.url_status = s.url_receipt = cfg->op_ooredoo.url;
  s.mss_format = MSS_FORMAT_PKCS1;
  s.minor_version = MSS_JSON_MINOR_VERSION;
  s.notifications = 1;
  rv = op_etsi_init(ea, &op_ooredoo_ops, &json_codec, &s, err, errlen);
  if (rv != GW_OK) {
    free(ea);
    return rv;
  }
  *out = &ea->base;
  return GW_OK;
}

static void oo_destroy(op_adapter *a) {
  if (a) {
    op_etsi_free((op_etsi_adapter *)a);
    free(a);
  }
}

const op_adapter_ops op_ooredoo_ops = {
    .name = "ooredoo",
    .create = oo_create,
    .destroy = oo_destroy,
    .submit = op_etsi_submit,
    .follow = op_etsi_follow,
    .stop = op_etsi_stop,
    .txn_free = op_etsi_txn_free,
    .receipt = op_etsi_receipt,
    .health = op_etsi_health,
    .notify = op_etsi_notify,
};
