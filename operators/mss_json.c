/* mss_json.c — ETSI TS 102 204 messages in the JSON rendering used in the
 * field (REFERENCE §1b), on the structs of mss.h.
 *
 * Reading uses jansson's json_loadb with JSON_REJECT_DUPLICATES and without
 * JSON_ALLOW_NUL, so jansson itself refuses duplicate keys, \u0000, invalid
 * UTF-8 and trailing data; our own walk then caps nesting at
 * MSS_JSON_MAX_DEPTH (jansson's limit, 2048, is far too lax). Members are
 * looked up by name, unknown ones ignored, types checked strictly. jansson's
 * error texts never reach a fault: they quote the input near the error,
 * which may be the password.
 *
 * Writing builds a jansson tree (objects keep insertion order, so members
 * come out in the documented order) and dumps it compact straight into the
 * caller's capped gw_buf. The validation is the SOAP builders' (mss_soap.c),
 * so that both codecs refuse the same structs. */
#include "mss_json.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "gw_err.h"
#include "mss_soap.h" /* MSS_SOAP_NS: the namespace a fault's Code names */

/* Room for the longest member path a fault detail names, e.g.
 * "MSS_SignatureResp.MSS_Signature.PKCS1.X509Certificate". */
#define PATH_MAX_LEN 128

/* Digit strings saturate here: above every bound we check, and far from
 * overflowing a long long. */
#define DIGITS_SATURATE 1000000000000000LL

/* ======================================================================== */
/* UTF-8                                                                     */
/* ======================================================================== */

/* Length of the UTF-8 sequence at s[i] (of n bytes), or 0 when it is not a
 * valid one (overlong, surrogate, over U+10FFFF, truncated). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t i) {
  unsigned long cp, min;
  size_t len, k;

  if (s[i] < 0x80) {
    return 1;
  }
  if (s[i] >= 0xC2 && s[i] <= 0xDF) {
    len = 2, cp = s[i] & 0x1F, min = 0x80;
  } else if (s[i] >= 0xE0 && s[i] <= 0xEF) {
    len = 3, cp = s[i] & 0x0F, min = 0x800;
  } else if (s[i] >= 0xF0 && s[i] <= 0xF4) {
    len = 4, cp = s[i] & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n - i < len) {
    return 0;
  }
  for (k = 1; k < len; k++) {
    if ((s[i + k] & 0xC0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (s[i + k] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return len;
}

/* 1 when |n| bytes are valid UTF-8 without a NUL: what our own parser would
 * take back, so a builder never writes what it could not read. */
static int utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, len;

  while (i < n) {
    len = p[i] ? utf8_seq(p, n, i) : 0;
    if (len == 0) {
      return 0;
    }
    i += len;
  }
  return 1;
}

/* Copies at most |cap| bytes of |n|-byte |s| into dst (cap + 1 bytes), cut
 * back to a UTF-8 boundary: for free text (StatusMessage, Reason, Detail). */
static void copy_cut(char *dst, size_t cap, const char *s, size_t n) {
  if (n > cap) {
    n = cap;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
      n--;
    }
  }
  memcpy(dst, s, n);
  dst[n] = '\0';
}

/* jansson keeps no copy of a secret it was not told about: overwrite every
 * AP_Info.AP_PWD under the root's members before the tree is freed. The
 * string's storage is jansson's own malloc'd buffer, so writing it is safe
 * although the accessor hands it out const. */
static void wipe_password(json_t *root) {
  const char *key;
  json_t *msg, *pwd;

  json_object_foreach(root, key, msg) {
    pwd = json_object_get(json_object_get(msg, "AP_Info"), "AP_PWD");
    if (json_is_string(pwd) && json_string_length(pwd) > 0) {
      OPENSSL_cleanse((char *)json_string_value(pwd), json_string_length(pwd));
    }
  }
}

/* ======================================================================== */
/* Writing                                                                   */
/* ======================================================================== */

typedef struct bld {
  int rc; /* sticky: the first error; every b_* is a no-op after it */
} bld;

static void b_fail(bld *b, int rc) {
  if (b->rc == GW_OK) {
    b->rc = rc;
  }
}

static json_t *b_new_obj(bld *b) {
  json_t *o;

  if (b->rc != GW_OK) {
    return NULL;
  }
  o = json_object();
  if (!o) {
    b_fail(b, GW_ERR_NOMEM);
  }
  return o;
}

/* obj[key] = val. Takes |val|'s reference in every case; a NULL |val| or
 * |obj| means its creator has already recorded the error. */
static void b_set(bld *b, json_t *obj, const char *key, json_t *val) {
  if (!val) {
    return;
  }
  if (b->rc != GW_OK || !obj) {
    json_decref(val);
    return;
  }
  if (json_object_set_new(obj, key, val) != 0) {
    b_fail(b, GW_ERR_NOMEM);
  }
}

/* A new object at obj[key], borrowed (obj owns it). */
static json_t *b_child(bld *b, json_t *obj, const char *key) {
  json_t *c = b_new_obj(b);

  b_set(b, obj, key, c);
  return b->rc == GW_OK ? c : NULL;
}

static json_t *b_strn(bld *b, const char *s, size_t n) {
  json_t *v;

  if (b->rc != GW_OK) {
    return NULL;
  }
  if (!utf8_valid(s, n)) {
    b_fail(b, GW_ERR_INVALID);
    return NULL;
  }
  v = json_stringn(s, n);
  if (!v) {
    b_fail(b, GW_ERR_NOMEM);
  }
  return v;
}

/* obj[key] = the char-array field |s| of capacity |cap|. strnlen: a field
 * that is not terminated within its array is refused, never over-read. */
static void b_field(bld *b, json_t *obj, const char *key, const char *s,
                    size_t cap) {
  size_t n = strnlen(s, cap + 1);

  if (n > cap) {
    b_fail(b, GW_ERR_INVALID);
    return;
  }
  b_set(b, obj, key, b_strn(b, s, n));
}

/* Optional field: written only when not empty. */
static void b_opt(bld *b, json_t *obj, const char *key, const char *s,
                  size_t cap) {
  if (s[0]) {
    b_field(b, obj, key, s, cap);
  }
}

/* An XML attribute's integer: a string of digits. */
static void b_num(bld *b, json_t *obj, const char *key, unsigned long v) {
  char num[32];

  snprintf(num, sizeof(num), "%lu", v);
  b_field(b, obj, key, num, sizeof(num) - 1);
}

/* The root {"<name>": {...}} with the versions; returns the message object
 * (borrowed). A version of 0 stands for the default, as in mss_soap. */
static json_t *b_begin(bld *b, json_t **root, const char *name, int major,
                       int minor) {
  json_t *m;

  major = major == 0 ? MSS_MAJOR_VERSION : major;
  minor = minor == 0 ? MSS_JSON_MINOR_VERSION : minor;
  if (major < 0 || minor < 0) {
    b_fail(b, GW_ERR_INVALID);
  }
  *root = b_new_obj(b);
  m = b_child(b, *root, name);
  b_num(b, m, "MajorVersion", (unsigned long)major);
  b_num(b, m, "MinorVersion", (unsigned long)minor);
  return m;
}

/* AP_Info and MSSP_Info. |response|: "AP_PWD": "" whatever ap_pwd holds. */
static void b_infos(bld *b, json_t *m, const mss_ap_info *ap,
                    const mss_mssp_info *mi, int response) {
  json_t *a = b_child(b, m, "AP_Info"), *i;

  b_field(b, a, "AP_ID", ap->ap_id, MSS_URI_MAX);
  b_field(b, a, "AP_PWD", response ? "" : ap->ap_pwd, MSS_PWD_MAX);
  b_field(b, a, "AP_TransID", ap->ap_trans_id, MSS_TRANSID_MAX);
  b_field(b, a, "Instant", ap->instant, MSS_INSTANT_MAX);
  b_opt(b, a, "AP_URL", ap->ap_url, MSS_URI_MAX);
  i = b_child(b, m, "MSSP_Info");
  /* MSSP_ID is required even when blank (FiCom): {} then. */
  b_opt(b, b_child(b, i, "MSSP_ID"), "URI", mi->id, MSS_URI_MAX);
  b_opt(b, i, "Instant", mi->instant, MSS_INSTANT_MAX);
  /* The fields are known to be terminated once written. */
  if (b->rc == GW_OK &&
      (!ap->ap_id[0] || !mss_ncname_valid(ap->ap_trans_id, MSS_TRANSID_MAX) ||
       !mss_instant_valid(ap->instant) ||
       (mi->instant[0] && !mss_instant_valid(mi->instant)))) {
    b_fail(b, GW_ERR_INVALID);
  }
}

/* MobileUser: {"MSISDN": ...}, or {} when |msisdn| is empty and the
 * element is |always| written (responses: the schema requires it). */
static void b_mobile_user(bld *b, json_t *m, const char *msisdn, int always) {
  if (msisdn[0] || always) {
    b_opt(b, b_child(b, m, "MobileUser"), "MSISDN", msisdn, MSS_MSISDN_MAX);
  }
}

static void b_data(bld *b, json_t *m, const char *key, const mss_data *d) {
  json_t *o;

  if (d->len > MSS_DATA_MAX) {
    b_fail(b, GW_ERR_INVALID);
    return;
  }
  o = b_child(b, m, key);
  b_opt(b, o, "MimeType", d->mime_type, MSS_MIME_MAX);
  b_opt(b, o, "Encoding", d->encoding, MSS_ENCODING_MAX);
  b_set(b, o, "Data", b_strn(b, d->data, d->len));
}

static void b_status(bld *b, json_t *m, const mss_status_info *st) {
  json_t *s;

  if (st->code <= 0) {
    b_fail(b, GW_ERR_INVALID);
    return;
  }
  s = b_child(b, m, "Status");
  b_num(b, b_child(b, s, "StatusCode"), "Value", (unsigned long)st->code);
  b_opt(b, s, "StatusMessage", st->message, MSS_STATUS_MSG_MAX);
}

/* obj[key] = base64 of |n| bytes. */
static void b_b64(bld *b, json_t *obj, const char *key, const unsigned char *p,
                  size_t n) {
  gw_buf t;
  int rc;

  if (b->rc != GW_OK) {
    return;
  }
  gw_buf_init(&t, 4 * ((n + 2) / 3)); /* exactly the encoded length */
  rc = mss_base64_encode(p, n, &t);
  if (rc == GW_OK) {
    b_set(b, obj, key, b_strn(b, t.data, t.len));
  } else {
    b_fail(b, rc);
  }
  gw_buf_free(&t);
}

static void b_signature(bld *b, json_t *m, const mss_signature *sig) {
  json_t *s, *p;

  switch (sig->kind) {
  case MSS_SIG_NONE:
    return;
  case MSS_SIG_PKCS7:
    if (sig->len == 0 || sig->len > MSS_SIG_MAX) {
      break;
    }
    s = b_child(b, m, "MSS_Signature");
    b_b64(b, s, "Base64Signature", sig->sig, sig->len);
    return;
  case MSS_SIG_PKCS1:
    if (sig->len == 0 || sig->len > MSS_SIG_MAX || sig->cert_len == 0 ||
        sig->cert_len > MSS_CERT_MAX) {
      break;
    }
    p = b_child(b, b_child(b, m, "MSS_Signature"), "PKCS1");
    b_b64(b, p, "SignatureValue", sig->sig, sig->len);
    b_b64(b, p, "X509Certificate", sig->cert, sig->cert_len);
    return;
  case MSS_SIG_OTHER:
    break; /* we hold no bytes to write it with */
  }
  b_fail(b, GW_ERR_INVALID);
}

static void b_trans_id(bld *b, json_t *m, const char *id, int required) {
  if (!id[0] && !required) {
    return;
  }
  if (strnlen(id, MSS_MSSP_TRANSID_MAX + 1) > MSS_MSSP_TRANSID_MAX ||
      !mss_ncname_valid(id, MSS_MSSP_TRANSID_MAX)) {
    b_fail(b, GW_ERR_INVALID);
    return;
  }
  b_field(b, m, "MSSP_TransID", id, MSS_MSSP_TRANSID_MAX);
}

typedef struct sink {
  gw_buf *out;
  int rc;
} sink;

static int dump_cb(const char *p, size_t n, void *data) {
  sink *s = data;
  int rc = gw_buf_append(s->out, p, n);

  if (rc != GW_OK) {
    s->rc = rc;
    return -1;
  }
  return 0;
}

/* Ends a build: dumps |root| compact into |out| and frees it (wiping the
 * password it holds); on error |out| gets back its previous length. */
static int b_finish(bld *b, json_t *root, gw_buf *out) {
  size_t old = out->len;
  sink s = {out, GW_OK};

  if (b->rc == GW_OK &&
      json_dump_callback(root, dump_cb, &s, JSON_COMPACT) != 0) {
    b->rc = s.rc != GW_OK ? s.rc : GW_ERR_NOMEM;
  }
  if (root) {
    wipe_password(root);
    json_decref(root);
  }
  if (b->rc != GW_OK) {
    out->len = old;
    if (out->data) {
      out->data[old] = '\0';
    }
  }
  return b->rc;
}

int mss_json_build_signature_req(const mss_signature_req *r, gw_buf *out) {
  bld b = {GW_OK};
  json_t *root = NULL, *m;
  const char *mode = mss_mode_name(r->messaging_mode);

  if (!mode || !r->msisdn[0]) {
    return GW_ERR_INVALID;
  }
  m = b_begin(&b, &root, "MSS_SignatureReq", r->major_version,
              r->minor_version);
  b_field(&b, m, "MessagingMode", mode, MSS_URI_MAX);
  if (r->timeout > 0) {
    b_num(&b, m, "TimeOut", r->timeout);
  }
  b_infos(&b, m, &r->ap_info, &r->mssp_info, 0);
  b_mobile_user(&b, m, r->msisdn, 1);
  b_data(&b, m, "DataToBeSigned", &r->data_to_be_signed);
  if (r->has_data_to_be_displayed) {
    b_data(&b, m, "DataToBeDisplayed", &r->data_to_be_displayed);
  }
  b_opt(&b, m, "SignatureProfile", r->signature_profile, MSS_URI_MAX);
  b_opt(&b, m, "MSS_Format", r->mss_format, MSS_URI_MAX);
  return b_finish(&b, root, out);
}

int mss_json_build_signature_resp(const mss_signature_resp *r, gw_buf *out) {
  bld b = {GW_OK};
  json_t *root = NULL, *m;

  m = b_begin(&b, &root, "MSS_SignatureResp", r->major_version,
              r->minor_version);
  b_trans_id(&b, m, r->mssp_trans_id, 1);
  b_infos(&b, m, &r->ap_info, &r->mssp_info, 1);
  b_mobile_user(&b, m, r->msisdn, 1);
  b_signature(&b, m, &r->signature);
  b_opt(&b, m, "SignatureProfile", r->signature_profile, MSS_URI_MAX);
  b_status(&b, m, &r->status);
  return b_finish(&b, root, out);
}

int mss_json_build_status_req(const mss_status_req *r, gw_buf *out) {
  bld b = {GW_OK};
  json_t *root = NULL, *m;

  m = b_begin(&b, &root, "MSS_StatusReq", r->major_version, r->minor_version);
  b_trans_id(&b, m, r->mssp_trans_id, 1);
  b_infos(&b, m, &r->ap_info, &r->mssp_info, 0);
  b_mobile_user(&b, m, r->msisdn, 0);
  return b_finish(&b, root, out);
}

int mss_json_build_status_resp(const mss_status_resp *r, gw_buf *out) {
  bld b = {GW_OK};
  json_t *root = NULL, *m;

  m = b_begin(&b, &root, "MSS_StatusResp", r->major_version, r->minor_version);
  b_trans_id(&b, m, r->mssp_trans_id, 0);
  b_infos(&b, m, &r->ap_info, &r->mssp_info, 1);
  b_mobile_user(&b, m, r->msisdn, 1);
  b_signature(&b, m, &r->signature);
  b_status(&b, m, &r->status);
  return b_finish(&b, root, out);
}

int mss_json_build_receipt_req(const mss_receipt_req *r, gw_buf *out) {
  bld b = {GW_OK};
  json_t *root = NULL, *m;

  m = b_begin(&b, &root, "MSS_ReceiptReq", r->major_version, r->minor_version);
  b_trans_id(&b, m, r->mssp_trans_id, 1);
  b_infos(&b, m, &r->ap_info, &r->mssp_info, 0);
  b_mobile_user(&b, m, r->msisdn, 1);
  if (r->status.code != 0) {
    b_status(&b, m, &r->status);
  }
  if (r->has_message) {
    b_data(&b, m, "Message", &r->message);
  }
  return b_finish(&b, root, out);
}

int mss_json_build_receipt_resp(const mss_receipt_resp *r, gw_buf *out) {
  bld b = {GW_OK};
  json_t *root = NULL, *m;

  m = b_begin(&b, &root, "MSS_ReceiptResp", r->major_version, r->minor_version);
  b_infos(&b, m, &r->ap_info, &r->mssp_info, 1);
  b_status(&b, m, &r->status);
  return b_finish(&b, root, out);
}

int mss_json_build_fault(const mss_fault *f, gw_buf *out) {
  bld b = {GW_OK};
  json_t *root, *fo, *code, *sub;
  const char *value = f->code == MSS_FAULT_SENDER     ? "Sender"
                      : f->code == MSS_FAULT_RECEIVER ? "Receiver"
                                                      : NULL;
  char num[32];

  if (!value || f->subcode <= 0) {
    return GW_ERR_INVALID;
  }
  snprintf(num, sizeof(num), "_%d", f->subcode);
  root = b_new_obj(&b);
  fo = b_child(&b, root, "Fault");
  code = b_child(&b, fo, "Code");
  b_field(&b, code, "Value", value, MSS_URI_MAX);
  b_field(&b, code, "ValueNs", MSS_SOAP_NS, MSS_URI_MAX);
  sub = b_child(&b, code, "SubCode");
  b_field(&b, sub, "Value", num, sizeof(num) - 1);
  b_field(&b, sub, "ValueNs", MSS_NS, MSS_URI_MAX);
  b_field(&b, fo, "Reason",
          f->reason[0] ? f->reason : mss_status_name(f->subcode),
          MSS_FAULT_REASON_MAX);
  b_opt(&b, fo, "Detail", f->detail, MSS_FAULT_DETAIL_MAX);
  return b_finish(&b, root, out);
}

/* ======================================================================== */
/* Reading                                                                   */
/* ======================================================================== */

/* A loaded document: one root member, the message (or Fault). */
typedef struct p_doc {
  json_t *root;
  const char *name; /* the root member's name (borrowed from root) */
  json_t *msg;      /* its value (borrowed) */
} p_doc;

static void p_free(p_doc *d) {
  if (d->root) {
    wipe_password(d->root);
    json_decref(d->root);
  }
  memset(d, 0, sizeof(*d));
}

/* 1 when |v| holds containers nested deeper than |left| levels. The
 * recursion is bounded by MSS_JSON_MAX_DEPTH, not by the input. */
static int too_deep(json_t *v, int left) {
  const char *key;
  json_t *c;
  size_t i;

  if (!json_is_object(v) && !json_is_array(v)) {
    return 0;
  }
  if (left == 0) {
    return 1;
  }
  if (json_is_object(v)) {
    json_object_foreach(v, key, c) {
      if (too_deep(c, left - 1)) {
        return 1;
      }
    }
    return 0;
  }
  json_array_foreach(v, i, c) {
    if (too_deep(c, left - 1)) {
      return 1;
    }
  }
  return 0;
}

/* Maps jansson's refusal to our fault: only its category and position,
 * never its text (which quotes the input). */
static int p_load_error(const json_error_t *e, mss_fault *f) {
  const char *why;

  switch (json_error_code(e)) {
  case json_error_out_of_memory:
    return mss_fault_failf(f, GW_ERR_NOMEM, MSS_INTERNAL_ERROR,
                           "out of memory");
  case json_error_stack_overflow:
    why = "nested too deep";
    break;
  case json_error_invalid_utf8:
    why = "invalid UTF-8";
    break;
  case json_error_null_character:
  case json_error_null_byte_in_key:
    why = "NUL character in a string";
    break;
  case json_error_duplicate_key:
    why = "duplicate key";
    break;
  case json_error_premature_end_of_input:
    why = "truncated";
    break;
  case json_error_end_of_input_expected:
    why = "data after the document";
    break;
  case json_error_numeric_overflow:
    why = "number out of range";
    break;
  default:
    why = "syntax error, or not an object";
    break;
  }
  return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                         "invalid JSON (%s) at line %d, column %d", why,
                         e->line, e->column);
}

/* Parses |json| and finds the root member. On failure fills |f| (Sender
 * 108, or 103 / 900) and returns the error. */
static int p_load(const char *json, size_t n, p_doc *d, mss_fault *f) {
  json_error_t err;
  void *it;

  memset(d, 0, sizeof(*d));
  if (n > MSS_JSON_MAX_INPUT) {
    return mss_fault_failf(f, GW_ERR_TOO_LARGE, MSS_WRONG_DATA_LENGTH,
                           "message over %d bytes", MSS_JSON_MAX_INPUT);
  }
  if (!json || n == 0) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "empty message");
  }
  /* No JSON_ALLOW_NUL: \u0000 is refused. No JSON_DECODE_ANY: the root
   * must be an object or an array. */
  d->root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &err);
  if (!d->root) {
    return p_load_error(&err, f);
  }
  if (!json_is_object(d->root) || json_object_size(d->root) != 1) {
    p_free(d);
    return mss_fault_failf(
        f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
        "the document must be an object with exactly one member, "
        "the message");
  }
  if (too_deep(d->root, MSS_JSON_MAX_DEPTH)) {
    p_free(d);
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "nested deeper than %d levels", MSS_JSON_MAX_DEPTH);
  }
  it = json_object_iter(d->root);
  d->name = json_object_iter_key(it);
  d->msg = json_object_iter_value(it);
  return GW_OK;
}

static const char *type_word(json_type t) {
  switch (t) {
  case JSON_OBJECT:
    return "an object";
  case JSON_ARRAY:
    return "an array";
  case JSON_STRING:
    return "a string";
  default:
    return "of the right type";
  }
}

/* Every p_* step below returns GW_OK or an error with the fault filled;
 * callers chain them with `if (rc == GW_OK)`. |path| names the object being
 * read ("MSS_SignatureReq.AP_Info") for the fault's detail. */

/* Member |key| of |obj| when it has type |t|. Absent: *out = NULL, and 102
 * when |required|. Any other type (null included): 101. */
static int p_get(json_t *obj, const char *path, const char *key, json_type t,
                 int required, json_t **out, mss_fault *f) {
  json_t *v = json_object_get(obj, key);

  *out = NULL;
  if (!v) {
    return required ? mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                                      "%s.%s: missing", path, key)
                    : GW_OK;
  }
  if (json_typeof(v) != t) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM, "%s.%s: not %s",
                           path, key, type_word(t));
  }
  *out = v;
  return GW_OK;
}

/* An object member; its path into |sub| (PATH_MAX_LEN bytes). */
static int p_obj(json_t *obj, const char *path, const char *key, int required,
                 json_t **out, char *sub, mss_fault *f) {
  /* Paths are ours and short; a cut one would only shorten a detail. */
  if (snprintf(sub, PATH_MAX_LEN, "%s.%s", path, key) >= PATH_MAX_LEN) {
    sub[PATH_MAX_LEN - 1] = '\0';
  }
  return p_get(obj, path, key, JSON_OBJECT, required, out, f);
}

/* A string member into dst (cap + 1 bytes), kept exactly as sent. Absent:
 * "" (102 when required). Over |cap|: 101. */
static int p_str(json_t *obj, const char *path, const char *key, char *dst,
                 size_t cap, int required, mss_fault *f) {
  json_t *v;
  size_t n;
  int rc = p_get(obj, path, key, JSON_STRING, required, &v, f);

  dst[0] = '\0';
  if (rc != GW_OK || !v) {
    return rc;
  }
  n = json_string_length(v); /* == strlen: no NUL gets past the loader */
  if (n > cap) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "%s.%s: longer than %zu bytes", path, key, cap);
  }
  memcpy(dst, json_string_value(v), n);
  dst[n] = '\0';
  return GW_OK;
}

/* A required string that must not be empty either (AP_ID, MSISDN). */
static int p_str_nonempty(json_t *obj, const char *path, const char *key,
                          char *dst, size_t cap, mss_fault *f) {
  int rc = p_str(obj, path, key, dst, cap, 1, f);

  if (rc == GW_OK && !dst[0]) {
    rc = mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM, "%s.%s: empty",
                         path, key);
  }
  return rc;
}

/* Free text (StatusMessage): cut at |cap| on a UTF-8 boundary. */
static int p_text(json_t *obj, const char *path, const char *key, char *dst,
                  size_t cap, mss_fault *f) {
  json_t *v;
  int rc = p_get(obj, path, key, JSON_STRING, 0, &v, f);

  dst[0] = '\0';
  if (rc == GW_OK && v) {
    copy_cut(dst, cap, json_string_value(v), json_string_length(v));
  }
  return rc;
}

/* An xs:NCName of 1..cap bytes; optional ones must be valid when present. */
static int p_ncname(json_t *obj, const char *path, const char *key, char *dst,
                    size_t cap, int required, mss_fault *f) {
  json_t *v;
  int rc = p_get(obj, path, key, JSON_STRING, required, &v, f);

  dst[0] = '\0';
  if (rc != GW_OK || !v) {
    return rc;
  }
  if (!mss_ncname_valid(json_string_value(v), cap)) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "%s.%s: not an NCName of 1..%zu characters", path,
                           key, cap);
  }
  memcpy(dst, json_string_value(v), json_string_length(v) + 1);
  return GW_OK;
}

static int p_instant(json_t *obj, const char *path, const char *key, char *dst,
                     int required, mss_fault *f) {
  json_t *v;
  int rc = p_get(obj, path, key, JSON_STRING, required, &v, f);

  dst[0] = '\0';
  if (rc != GW_OK || !v) {
    return rc;
  }
  if (json_string_length(v) > MSS_INSTANT_MAX ||
      !mss_instant_valid(json_string_value(v))) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "%s.%s: not an xs:dateTime", path, key);
  }
  memcpy(dst, json_string_value(v), json_string_length(v) + 1);
  return GW_OK;
}

/* An XML attribute's integer: a non-empty string of ASCII digits (no sign,
 * no blanks) in [lo, hi]; above |hi| it is clamped to |hi| when |clamp|.
 * *present (may be NULL) says whether the member was there. */
static int p_digits(json_t *obj, const char *path, const char *key,
                    long long lo, long long hi, int clamp, int required,
                    long long *out, int *present, mss_fault *f) {
  json_t *v;
  const char *s;
  size_t n, i;
  long long x = 0;
  int rc = p_get(obj, path, key, JSON_STRING, required, &v, f);

  if (present) {
    *present = 0;
  }
  if (rc != GW_OK || !v) {
    return rc;
  }
  s = json_string_value(v);
  n = json_string_length(v);
  for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    x = x < DIGITS_SATURATE ? x * 10 + (s[i] - '0') : DIGITS_SATURATE;
  }
  if (n == 0 || i < n) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "%s.%s: not a string of digits", path, key);
  }
  if (x > hi && clamp) {
    x = hi;
  }
  if (x < lo || x > hi) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "%s.%s: out of range", path, key);
  }
  *out = x;
  if (present) {
    *present = 1;
  }
  return GW_OK;
}

static int p_versions(json_t *m, const char *path, int *major, int *minor,
                      mss_fault *f) {
  long long v = 0;
  int rc = p_digits(m, path, "MajorVersion", 0, LLONG_MAX, 0, 1, &v, NULL, f);

  if (rc != GW_OK) {
    return rc;
  }
  if (v != MSS_MAJOR_VERSION) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "%s.MajorVersion: only \"1\" is supported", path);
  }
  *major = MSS_MAJOR_VERSION;
  rc = p_digits(m, path, "MinorVersion", 0, INT_MAX, 0, 1, &v, NULL, f);
  if (rc == GW_OK) {
    *minor = (int)v;
  }
  return rc;
}

static int p_ap_info(json_t *m, const char *path, mss_ap_info *ap,
                     mss_fault *f) {
  char p[PATH_MAX_LEN];
  json_t *a;
  int rc = p_obj(m, path, "AP_Info", 1, &a, p, f);

  if (rc == GW_OK) {
    rc = p_str_nonempty(a, p, "AP_ID", ap->ap_id, MSS_URI_MAX, f);
  }
  if (rc == GW_OK) {
    /* Required, may be "", kept as sent; its value is never quoted. */
    rc = p_str(a, p, "AP_PWD", ap->ap_pwd, MSS_PWD_MAX, 1, f);
  }
  if (rc == GW_OK) {
    rc = p_ncname(a, p, "AP_TransID", ap->ap_trans_id, MSS_TRANSID_MAX, 1, f);
  }
  if (rc == GW_OK) {
    rc = p_instant(a, p, "Instant", ap->instant, 1, f);
  }
  if (rc == GW_OK) {
    rc = p_str(a, p, "AP_URL", ap->ap_url, MSS_URI_MAX, 0, f);
  }
  return rc;
}

static int p_mssp_info(json_t *m, const char *path, mss_mssp_info *mi,
                       mss_fault *f) {
  char p[PATH_MAX_LEN], pid[PATH_MAX_LEN];
  json_t *i, *id;
  int rc = p_obj(m, path, "MSSP_Info", 1, &i, p, f);

  if (rc == GW_OK) {
    rc = p_instant(i, p, "Instant", mi->instant, 0, f);
  }
  if (rc == GW_OK) {
    rc = p_obj(i, p, "MSSP_ID", 1, &id, pid, f);
  }
  if (rc == GW_OK) {
    rc = p_str(id, pid, "URI", mi->id, MSS_URI_MAX, 0, f);
  }
  return rc;
}

/* MobileUser.MSISDN. |required|: 1 = both, 2 = MobileUser only, 0 =
 * neither (as mss_soap). */
static int p_mobile_user(json_t *m, const char *path, char *msisdn,
                         int required, mss_fault *f) {
  char p[PATH_MAX_LEN];
  json_t *u;
  int rc = p_obj(m, path, "MobileUser", required != 0, &u, p, f);

  msisdn[0] = '\0';
  if (rc != GW_OK || !u) {
    return rc;
  }
  if (required == 1) {
    return p_str_nonempty(u, p, "MSISDN", msisdn, MSS_MSISDN_MAX, f);
  }
  return p_str(u, p, "MSISDN", msisdn, MSS_MSISDN_MAX, 0, f);
}

/* A typed data element {"MimeType", "Encoding", "Data"}; *has (may be
 * NULL) is set when it is present. Data over MSS_DATA_MAX: 103. */
static int p_data(json_t *m, const char *path, const char *key, int required,
                  mss_data *d, int *has, mss_fault *f) {
  char p[PATH_MAX_LEN];
  json_t *o, *v = NULL;
  size_t n;
  int rc = p_obj(m, path, key, required, &o, p, f);

  memset(d, 0, sizeof(*d));
  if (rc != GW_OK || !o) {
    return rc;
  }
  if (has) {
    *has = 1;
  }
  rc = p_str(o, p, "MimeType", d->mime_type, MSS_MIME_MAX, 0, f);
  if (rc == GW_OK) {
    rc = p_str(o, p, "Encoding", d->encoding, MSS_ENCODING_MAX, 0, f);
  }
  if (rc == GW_OK) {
    rc = p_get(o, p, "Data", JSON_STRING, 1, &v, f);
  }
  if (rc != GW_OK) {
    return rc;
  }
  n = json_string_length(v);
  if (n > MSS_DATA_MAX) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_DATA_LENGTH,
                           "%s.Data: longer than %d bytes", p, MSS_DATA_MAX);
  }
  memcpy(d->data, json_string_value(v), n + 1);
  d->len = n;
  return GW_OK;
}

static int p_mode(json_t *m, const char *path, mss_mode *mode, mss_fault *f) {
  json_t *v;
  int rc = p_get(m, path, "MessagingMode", JSON_STRING, 1, &v, f);

  if (rc == GW_OK && mss_mode_parse(json_string_value(v), mode) != GW_OK) {
    rc = mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                         "%s.MessagingMode: not synch, asynchClientServer or "
                         "asynchServerServer",
                         path);
  }
  return rc;
}

static int p_status(json_t *m, const char *path, mss_status_info *st,
                    int required, mss_fault *f) {
  char p[PATH_MAX_LEN], pc[PATH_MAX_LEN];
  json_t *s, *c;
  long long v = 0;
  int rc = p_obj(m, path, "Status", required, &s, p, f);

  memset(st, 0, sizeof(*st));
  if (rc != GW_OK || !s) {
    return rc;
  }
  rc = p_obj(s, p, "StatusCode", 1, &c, pc, f);
  if (rc == GW_OK) {
    rc = p_digits(c, pc, "Value", 1, INT_MAX, 0, 1, &v, NULL, f);
  }
  if (rc == GW_OK) {
    st->code = (int)v;
    rc = p_text(s, p, "StatusMessage", st->message, MSS_STATUS_MSG_MAX, f);
  }
  return rc;
}

/* A required base64 string member into out (cap bytes). Too many bytes:
 * 103, as mss_soap; not base64: 101. */
static int p_b64(json_t *obj, const char *path, const char *key,
                 unsigned char *out, size_t cap, size_t *len, mss_fault *f) {
  json_t *v;
  int rc = p_get(obj, path, key, JSON_STRING, 1, &v, f);

  *len = 0;
  if (rc != GW_OK) {
    return rc;
  }
  rc = mss_base64_decode(json_string_value(v), json_string_length(v), out, cap,
                         len);
  if (rc == GW_ERR_TOO_LARGE) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_DATA_LENGTH,
                           "%s.%s: more than %zu bytes", path, key, cap);
  }
  if (rc != GW_OK) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "%s.%s: bad base64", path, key);
  }
  return GW_OK;
}

static int p_signature(json_t *m, const char *path, mss_signature *sig,
                       mss_fault *f) {
  char p[PATH_MAX_LEN], pp[PATH_MAX_LEN];
  json_t *s, *k;
  int rc = p_obj(m, path, "MSS_Signature", 0, &s, p, f);

  memset(sig, 0, sizeof(*sig));
  if (rc != GW_OK || !s) {
    return rc;
  }
  if (json_object_size(s) == 0) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM, "%s: empty",
                           p);
  }
  if (json_object_get(s, "Base64Signature")) {
    rc = p_b64(s, p, "Base64Signature", sig->sig, MSS_SIG_MAX, &sig->len, f);
    sig->kind = MSS_SIG_PKCS7;
    return rc;
  }
  if (!json_object_get(s, "PKCS1")) {
    sig->kind = MSS_SIG_OTHER; /* XMLSignature or another extension */
    return GW_OK;
  }
  rc = p_obj(s, p, "PKCS1", 1, &k, pp, f);
  if (rc == GW_OK) {
    rc = p_b64(k, pp, "SignatureValue", sig->sig, MSS_SIG_MAX, &sig->len, f);
  }
  if (rc == GW_OK) {
    rc = p_b64(k, pp, "X509Certificate", sig->cert, MSS_CERT_MAX,
               &sig->cert_len, f);
  }
  sig->kind = MSS_SIG_PKCS1;
  return rc;
}

/* Reads a Fault object into |out|. Lenient beyond Code.Value: a member of
 * another type is taken as absent. Returns GW_OK or GW_ERR_INVALID. */
static int p_fault(json_t *fo, mss_fault *out) {
  json_t *code = json_object_get(fo, "Code"), *value, *sub;
  const char *s, *local, *u;
  long long v = 0;

  memset(out, 0, sizeof(*out));
  value = json_object_get(code, "Value");
  if (!json_is_string(value)) {
    return GW_ERR_INVALID;
  }
  /* "Receiver", also as a QName ("env:Receiver", "soap:Receiver"); any
   * other code is the sender's (as mss_soap). */
  s = json_string_value(value);
  local = strrchr(s, ':');
  local = local ? local + 1 : s;
  out->code =
      strcmp(local, "Receiver") == 0 ? MSS_FAULT_RECEIVER : MSS_FAULT_SENDER;
  sub = json_object_get(code, "SubCode");
  if (!sub) {
    sub = json_object_get(code, "Subcode"); /* the SOAP 1.2 spelling */
  }
  value = json_object_get(sub, "Value");
  u = json_is_string(value) ? strrchr(json_string_value(value), '_') : NULL;
  if (u && u[1] >= '0' && u[1] <= '9') {
    for (u++; *u >= '0' && *u <= '9' && v <= INT_MAX; u++) {
      v = v * 10 + (*u - '0');
    }
    out->subcode = *u == '\0' && v <= INT_MAX ? (int)v : 0;
  }
  value = json_object_get(fo, "Reason");
  if (json_is_string(value)) {
    copy_cut(out->reason, MSS_FAULT_REASON_MAX, json_string_value(value),
             json_string_length(value));
  }
  value = json_object_get(fo, "Detail");
  if (json_is_string(value)) {
    copy_cut(out->detail, MSS_FAULT_DETAIL_MAX, json_string_value(value),
             json_string_length(value));
  }
  return GW_OK;
}

/* The common start of every parse: load, fault check, message name,
 * versions, AP_Info, MSSP_Info. */
static int p_common(const char *json, size_t n, p_doc *d, const char *name,
                    int *major, int *minor, mss_ap_info *ap, mss_mssp_info *mi,
                    mss_fault *f) {
  char got[65];
  int rc = p_load(json, n, d, f);

  if (rc != GW_OK) {
    return rc;
  }
  if (strcmp(d->name, "Fault") == 0) {
    if (f && p_fault(d->msg, f) != GW_OK) {
      mss_fault_set(f, MSS_INCOMPATIBLE_INTERFACE, "Fault without Code.Value");
    }
    return GW_ERR_PROTO;
  }
  if (strcmp(d->name, name) != 0) {
    /* Cut on a UTF-8 boundary: the detail must stay buildable. */
    copy_cut(got, sizeof(got) - 1, d->name, strlen(d->name));
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "expected %s, got %s", name, got);
  }
  if (!json_is_object(d->msg)) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "%s: not an object", name);
  }
  rc = p_versions(d->msg, name, major, minor, f);
  if (rc == GW_OK) {
    rc = p_ap_info(d->msg, name, ap, f);
  }
  if (rc == GW_OK) {
    rc = p_mssp_info(d->msg, name, mi, f);
  }
  return rc;
}

/* Frees the document; on error zeroes *out. */
static int p_done(p_doc *d, int rc, void *out, size_t size) {
  p_free(d);
  if (rc != GW_OK) {
    memset(out, 0, size);
  }
  return rc;
}

int mss_json_parse_signature_req(const char *json, size_t n,
                                 mss_signature_req *out, mss_fault *f) {
  static const char path[] = "MSS_SignatureReq";
  p_doc d;
  long long to = 0;
  int rc, present = 0;

  memset(out, 0, sizeof(*out));
  rc = p_common(json, n, &d, path, &out->major_version, &out->minor_version,
                &out->ap_info, &out->mssp_info, f);
  if (rc == GW_OK) {
    rc = p_mode(d.msg, path, &out->messaging_mode, f);
  }
  if (rc == GW_OK) {
    /* As mss_soap: 0 is refused, anything over UINT_MAX means "forever". */
    rc = p_digits(d.msg, path, "TimeOut", 1, UINT_MAX, 1, 0, &to, &present, f);
    out->timeout = present ? (unsigned)to : 0;
  }
  if (rc == GW_OK) {
    rc = p_mobile_user(d.msg, path, out->msisdn, 1, f);
  }
  if (rc == GW_OK) {
    rc = p_data(d.msg, path, "DataToBeSigned", 1, &out->data_to_be_signed, NULL,
                f);
  }
  if (rc == GW_OK) {
    rc = p_data(d.msg, path, "DataToBeDisplayed", 0, &out->data_to_be_displayed,
                &out->has_data_to_be_displayed, f);
  }
  if (rc == GW_OK) {
    rc = p_str(d.msg, path, "SignatureProfile", out->signature_profile,
               MSS_URI_MAX, 0, f);
  }
  if (rc == GW_OK) {
    rc = p_str(d.msg, path, "MSS_Format", out->mss_format, MSS_URI_MAX, 0, f);
  }
  /* AdditionalServices and anything else: ignored. */
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_json_parse_signature_resp(const char *json, size_t n,
                                  mss_signature_resp *out, mss_fault *f) {
  static const char path[] = "MSS_SignatureResp";
  p_doc d;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_common(json, n, &d, path, &out->major_version, &out->minor_version,
                &out->ap_info, &out->mssp_info, f);
  if (rc == GW_OK) {
    rc = p_ncname(d.msg, path, "MSSP_TransID", out->mssp_trans_id,
                  MSS_MSSP_TRANSID_MAX, 1, f);
  }
  if (rc == GW_OK) {
    rc = p_mobile_user(d.msg, path, out->msisdn, 2, f);
  }
  if (rc == GW_OK) {
    rc = p_signature(d.msg, path, &out->signature, f);
  }
  if (rc == GW_OK) {
    rc = p_str(d.msg, path, "SignatureProfile", out->signature_profile,
               MSS_URI_MAX, 0, f);
  }
  if (rc == GW_OK) {
    rc = p_status(d.msg, path, &out->status, 1, f);
  }
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_json_parse_status_req(const char *json, size_t n, mss_status_req *out,
                              mss_fault *f) {
  static const char path[] = "MSS_StatusReq";
  p_doc d;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_common(json, n, &d, path, &out->major_version, &out->minor_version,
                &out->ap_info, &out->mssp_info, f);
  if (rc == GW_OK) {
    rc = p_ncname(d.msg, path, "MSSP_TransID", out->mssp_trans_id,
                  MSS_MSSP_TRANSID_MAX, 1, f);
  }
  if (rc == GW_OK) {
    rc = p_mobile_user(d.msg, path, out->msisdn, 0, f);
  }
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_json_parse_status_resp(const char *json, size_t n, mss_status_resp *out,
                               mss_fault *f) {
  static const char path[] = "MSS_StatusResp";
  p_doc d;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_common(json, n, &d, path, &out->major_version, &out->minor_version,
                &out->ap_info, &out->mssp_info, f);
  if (rc == GW_OK) {
    rc = p_ncname(d.msg, path, "MSSP_TransID", out->mssp_trans_id,
                  MSS_MSSP_TRANSID_MAX, 0, f);
  }
  if (rc == GW_OK) {
    rc = p_mobile_user(d.msg, path, out->msisdn, 2, f);
  }
  if (rc == GW_OK) {
    rc = p_signature(d.msg, path, &out->signature, f);
  }
  if (rc == GW_OK) {
    rc = p_status(d.msg, path, &out->status, 1, f);
  }
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_json_parse_receipt_req(const char *json, size_t n, mss_receipt_req *out,
                               mss_fault *f) {
  static const char path[] = "MSS_ReceiptReq";
  p_doc d;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_common(json, n, &d, path, &out->major_version, &out->minor_version,
                &out->ap_info, &out->mssp_info, f);
  if (rc == GW_OK) {
    rc = p_ncname(d.msg, path, "MSSP_TransID", out->mssp_trans_id,
                  MSS_MSSP_TRANSID_MAX, 1, f);
  }
  if (rc == GW_OK) {
    rc = p_mobile_user(d.msg, path, out->msisdn, 2, f);
  }
  if (rc == GW_OK) {
    rc = p_status(d.msg, path, &out->status, 0, f);
  }
  if (rc == GW_OK) {
    rc = p_data(d.msg, path, "Message", 0, &out->message, &out->has_message, f);
  }
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_json_parse_receipt_resp(const char *json, size_t n,
                                mss_receipt_resp *out, mss_fault *f) {
  static const char path[] = "MSS_ReceiptResp";
  p_doc d;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_common(json, n, &d, path, &out->major_version, &out->minor_version,
                &out->ap_info, &out->mssp_info, f);
  if (rc == GW_OK) {
    rc = p_status(d.msg, path, &out->status, 1, f);
  }
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_json_peek(const char *json, size_t n, mss_msg *type) {
  p_doc d;
  int rc = p_load(json, n, &d, NULL), i;

  *type = MSS_MSG_NONE;
  if (rc != GW_OK) {
    return rc;
  }
  for (i = MSS_MSG_SIGNATURE_REQ; i <= MSS_MSG_FAULT; i++) {
    if (strcmp(d.name, mss_msg_name((mss_msg)i)) == 0) {
      *type = (mss_msg)i;
    }
  }
  p_free(&d);
  return GW_OK;
}

int mss_json_parse_fault(const char *json, size_t n, mss_fault *out) {
  p_doc d;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_load(json, n, &d, NULL);
  if (rc != GW_OK) {
    return rc;
  }
  rc = strcmp(d.name, "Fault") == 0 ? p_fault(d.msg, out) : GW_ERR_INVALID;
  p_free(&d);
  if (rc != GW_OK) {
    memset(out, 0, sizeof(*out));
  }
  return rc;
}
