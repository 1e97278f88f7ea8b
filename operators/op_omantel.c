/* op_omantel.c — the Omantel adapter: ETSI TS 102 204 over SOAP 1.2
 * (mss_soap.h), asynchronous client-server mode (status polling), the
 * signature as PKCS#7. The protocol logic is op_etsi.c's; this file is the
 * codec table, the three SOAP ports and the settings
 * (operators.omantel.*). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_config.h"
#include "gw_err.h"
#include "mss_soap.h"
#include "op_etsi.h"

#define PATH_SIG "/MSS_SignaturePort"
#define PATH_STATUS "/MSS_StatusQueryPort"
#define PATH_RECEIPT "/MSS_ReceiptPort"

/* 1 when |ct| is a SOAP 1.2 (application/soap+xml) or SOAP 1.1-era
 * (text/xml) content type, parameters allowed. */
static int soap_type(const char *ct) {
  static const char *const ok[] = {"application/soap+xml", "text/xml"};

  if (!ct) {
    return 0;
  }
  while (*ct == ' ') {
    ct++;
  }
  for (size_t i = 0; i < 2; i++) {
    size_t n = strlen(ok[i]);
    if (strncasecmp(ct, ok[i], n) == 0 &&
        (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ')) {
      return 1;
    }
  }
  return 0;
}

static const op_etsi_codec soap_codec = {
    .name = "SOAP",
    .content_type = MSS_SOAP_CONTENT_TYPE,
    .type_ok = soap_type,
    .build_signature_req = mss_soap_build_signature_req,
    .parse_signature_resp = mss_soap_parse_signature_resp,
    .build_status_req = mss_soap_build_status_req,
    .parse_status_resp = mss_soap_parse_status_resp,
    .build_receipt_req = mss_soap_build_receipt_req,
    .parse_receipt_resp = mss_soap_parse_receipt_resp,
};

static char *join(const char *base, const char *path) {
  size_t bl = strlen(base), pl = strlen(path);
  char *s;

  while (bl > 0 && base[bl - 1] == '/') {
    bl--;
  }
  s = malloc(bl + pl + 1);
  if (s) {
    memcpy(s, base, bl);
    memcpy(s + bl, path, pl + 1);
  }
  return s;
}

static int om_create(op_adapter **out, const gw_config *cfg, char *err,
                     size_t errlen) {
  op_etsi_adapter *ea = calloc(1, sizeof(*ea));
  char *sig = join(cfg->op_omantel.url, PATH_SIG);
  char *status = join(cfg->op_omantel.url, PATH_STATUS);
  char *receipt = join(cfg->op_omantel.url, PATH_RECEIPT);
  op_etsi_settings s = {0};
  int rv = GW_ERR_NOMEM;

  if (!ea || !sig || !status || !receipt) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  s.oc = &cfg->op_omantel;
  s.url_sig = sig;
  s.url_status = status;
  s.url_receipt = receipt;
  s.mss_format = MSS_FORMAT_PKCS7;
  s.minor_version = MSS_MINOR_VERSION;
  s.notifications = 0;
  rv = op_etsi_init(ea, &op_omantel_ops, &soap_codec, &s, err, errlen);
  if (rv == GW_OK) {
    *out = &ea->base;
    ea = NULL;
  }
done:
  free(ea);
  free(sig);
  free(status);
  free(receipt);
  return rv;
}

static void om_destroy(op_adapter *a) {
  if (a) {
    op_etsi_free((op_etsi_adapter *)a);
    free(a);
  }
}

const op_adapter_ops op_omantel_ops = {
    .name = "omantel",
    .create = om_create,
    .destroy = om_destroy,
    .submit = op_etsi_submit,
    .follow = op_etsi_follow,
    .stop = op_etsi_stop,
    .txn_free = op_etsi_txn_free,
    .receipt = op_etsi_receipt,
    .health = op_etsi_health,
    .notify = NULL,
};
