/* Tests for operators/mss_json.c: every message built and parsed back; the
 * REFERENCE §1b shapes written by hand (Swisscom style, with members we do
 * not know) parsed; every class of refusal with the fault it maps to; the
 * password never echoed; builders refusing what would not parse; the
 * gw_buf cap kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_buf.h"
#include "gw_err.h"
#include "harness.h"
#include "mss.h"
#include "mss_json.h"

/* The password of every request here: a fault detail must never hold it. */
#define PWD "TopSecret-42"

/* ---- helpers ---- */

static int starts_with(const char *s, const char *prefix) {
  return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Returns a malloc'd copy of |s| with the first |from| replaced by |to|
 * (a copy of |s| when |from| is absent — the test then notices). */
static char *replace(const char *s, const char *from, const char *to) {
  const char *p = strstr(s, from);
  size_t n = strlen(s), fl = strlen(from), tl = strlen(to);
  char *r = malloc(n - (p ? fl : 0) + (p ? tl : 0) + 1);

  if (!p) {
    printf("#   replace: \"%s\" not found\n", from);
    t_case_failed = 1;
    memcpy(r, s, n + 1);
    return r;
  }
  memcpy(r, s, (size_t)(p - s));
  memcpy(r + (p - s), to, tl);
  memcpy(r + (p - s) + tl, p + fl, n - (size_t)(p - s) - fl + 1);
  return r;
}

static void fill_ap(mss_ap_info *ap) {
  memset(ap, 0, sizeof(*ap));
  strcpy(ap->ap_id, "http://demo_ap");
  strcpy(ap->ap_pwd, PWD);
  strcpy(ap->ap_trans_id, "_tx-0001");
  strcpy(ap->instant, "2024-05-01T10:00:00Z");
}

/* What JSON must carry byte for byte: quotes, backslashes, control
 * characters, a slash, Arabic, a character outside the BMP. */
static const char tricky_text[] = "Sign in to \"Bank\" \\ C:\\x </script>\r\n"
                                  "\t\x01\x1f تسجيل الدخول 😀 end ";

static void fill_sig_req(mss_signature_req *r) {
  static const char display[] = "تسجيل الدخول إلى البنك";

  memset(r, 0, sizeof(*r));
  r->major_version = 1;
  r->minor_version = MSS_JSON_MINOR_VERSION;
  fill_ap(&r->ap_info);
  strcpy(r->ap_info.ap_url, "http://demo_ap/notify");
  strcpy(r->mssp_info.id, "http://ooredoo.om/mssp");
  strcpy(r->msisdn, "+96895000001");
  mss_data_set(&r->data_to_be_signed, "text/plain", "UTF-8", tricky_text,
               strlen(tricky_text));
  r->has_data_to_be_displayed = 1;
  mss_data_set(&r->data_to_be_displayed, "text/plain", "UTF-8", display,
               strlen(display));
  strcpy(r->signature_profile, "http://alauda.mobi/digitalSignature");
  strcpy(r->mss_format, MSS_FORMAT_PKCS1);
  r->messaging_mode = MSS_MODE_ASYNCH_SERVER_SERVER;
  r->timeout = 80;
}

static void fill_bytes(unsigned char *p, size_t n, unsigned seed) {
  size_t i;

  for (i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (unsigned char)(seed >> 16);
  }
  if (n > 2) {
    p[0] = 0x30; /* a DER SEQUENCE, and a zero byte inside */
    p[1] = 0;
  }
}

/* A response's AP_Info as it comes back: the password is never echoed. */
static void no_pwd(mss_ap_info *ap) {
  memset(ap->ap_pwd, 0, sizeof(ap->ap_pwd));
}

static char *built_sig_req(void) {
  mss_signature_req r;
  gw_buf b;
  char *s;

  fill_sig_req(&r);
  gw_buf_init(&b, 1 << 20);
  if (mss_json_build_signature_req(&r, &b) != GW_OK) {
    t_case_failed = 1;
  }
  s = strdup(gw_buf_cstr(&b));
  gw_buf_free(&b);
  return s;
}

static void expect_fault_(int rc, const mss_fault *f, int want_rc, int want_sub,
                          const char *want_detail, const char *file, int line) {
  if (rc != want_rc || f->subcode != want_sub) {
    printf("#   %s:%d: rc %d subcode %d (%s), expected rc %d subcode %d\n",
           file, line, rc, f->subcode, f->detail, want_rc, want_sub);
    t_case_failed = 1;
  }
  if (want_detail && !strstr(f->detail, want_detail)) {
    printf("#   %s:%d: detail \"%s\" does not name \"%s\"\n", file, line,
           f->detail, want_detail);
    t_case_failed = 1;
  }
  if (strstr(f->detail, PWD) || strstr(f->reason, PWD)) {
    printf("#   %s:%d: the fault echoes the password\n", file, line);
    t_case_failed = 1;
  }
  if (want_rc == GW_ERR_INVALID && rc == GW_ERR_INVALID &&
      f->code != MSS_FAULT_SENDER) {
    printf("#   %s:%d: fault code %d, expected Sender\n", file, line, f->code);
    t_case_failed = 1;
  }
}
#define EXPECT_FAULT(rc, f, want_rc, want_sub, detail)                         \
  expect_fault_(rc, f, want_rc, want_sub, detail, __FILE__, __LINE__)

/* Parses |json| (n bytes) as a signature request; checks the fault and
 * that the output is zeroed. */
static void sig_req_fails_(const char *json, size_t n, int want_rc,
                           int want_sub, const char *detail, const char *file,
                           int line) {
  mss_signature_req out;
  mss_fault f;
  int rc;

  memset(&f, 0, sizeof(f));
  memset(&out, 0x5a, sizeof(out));
  rc = mss_json_parse_signature_req(json, n, &out, &f);
  expect_fault_(rc, &f, want_rc, want_sub, detail, file, line);
  if (rc != GW_OK && (out.msisdn[0] || out.ap_info.ap_pwd[0] || out.timeout)) {
    printf("#   %s:%d: output not zeroed on error\n", file, line);
    t_case_failed = 1;
  }
}
#define SIG_REQ_FAILS(json, sub, detail)                                       \
  sig_req_fails_(json, strlen(json), GW_ERR_INVALID, sub, detail, __FILE__,    \
                 __LINE__)

/* Mutates the built request (|from| -> |to|) and expects |sub|. */
static void mutated_fails_(const char *from, const char *to, int sub,
                           const char *detail, const char *file, int line) {
  char *base = built_sig_req();
  char *bad = replace(base, from, to);

  sig_req_fails_(bad, strlen(bad), GW_ERR_INVALID, sub, detail, file, line);
  free(bad);
  free(base);
}
#define MUTATED_FAILS(from, to, sub, detail)                                   \
  mutated_fails_(from, to, sub, detail, __FILE__, __LINE__)

/* Mutates the built request and expects it to parse. */
static void mutated_parses_(const char *from, const char *to,
                            mss_signature_req *out, const char *file,
                            int line) {
  char *base = built_sig_req();
  char *ok = replace(base, from, to);
  mss_fault f;
  int rc;

  memset(&f, 0, sizeof(f));
  rc = mss_json_parse_signature_req(ok, strlen(ok), out, &f);
  if (rc != GW_OK) {
    printf("#   %s:%d: rc %d (%d %s), expected GW_OK\n", file, line, rc,
           f.subcode, f.detail);
    t_case_failed = 1;
  }
  free(ok);
  free(base);
}
#define MUTATED_PARSES(from, to, out)                                          \
  mutated_parses_(from, to, out, __FILE__, __LINE__)

/* ---- round trips ---- */

static void test_signature_req_roundtrip(void) {
  mss_signature_req r, p;
  mss_fault f;
  gw_buf b;
  mss_msg type;

  fill_sig_req(&r);
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_OK);
  /* Compact, in the documented order, attributes as strings. */
  T_ASSERT(starts_with(b.data,
                       "{\"MSS_SignatureReq\":{\"MajorVersion\":\"1\","
                       "\"MinorVersion\":\"2\",\"MessagingMode\":"
                       "\"asynchServerServer\",\"TimeOut\":\"80\",\"AP_Info\":{"
                       "\"AP_ID\":\"http://demo_ap\",\"AP_PWD\":\"" PWD "\","
                       "\"AP_TransID\":\"_tx-0001\",\"Instant\":"
                       "\"2024-05-01T10:00:00Z\",\"AP_URL\":"
                       "\"http://demo_ap/notify\"},\"MSSP_Info\":{\"MSSP_ID\":{"
                       "\"URI\":\"http://ooredoo.om/mssp\"}},\"MobileUser\":{"
                       "\"MSISDN\":\"+96895000001\"},\"DataToBeSigned\":{"
                       "\"MimeType\":\"text/plain\",\"Encoding\":\"UTF-8\","
                       "\"Data\":\"Sign in to \\\"Bank\\\" \\\\ C:\\\\x "
                       "</script>\\r\\n\\t\\u0001\\u001F"));
  T_ASSERT(strstr(b.data,
                  "\"SignatureProfile\":\"http://alauda.mobi/"
                  "digitalSignature\",\"MSS_Format\":\"" MSS_FORMAT_PKCS1
                  "\"}}") != NULL);
  T_ASSERT(strchr(b.data, '\n') == NULL);
  T_EQ_INT(b.len, strlen(b.data));
  T_EQ_INT(mss_json_peek(b.data, b.len, &type), GW_OK);
  T_EQ_INT(type, MSS_MSG_SIGNATURE_REQ);
  T_EQ_INT(mss_json_parse_signature_req(b.data, b.len, &p, &f), GW_OK);
  T_EQ_INT(p.major_version, 1);
  T_EQ_INT(p.minor_version, 2);
  T_EQ_STR(p.ap_info.ap_pwd, PWD); /* a request carries it */
  T_EQ_STR(p.ap_info.ap_url, "http://demo_ap/notify");
  T_EQ_INT(p.data_to_be_signed.len, strlen(tricky_text));
  T_EQ_STR(p.data_to_be_signed.data, tricky_text); /* byte for byte */
  T_EQ_INT(p.messaging_mode, MSS_MODE_ASYNCH_SERVER_SERVER);
  T_EQ_INT(p.timeout, 80);
  T_ASSERT(memcmp(&p, &r, sizeof(r)) == 0);
  gw_buf_free(&b);
}

static void test_signature_req_minimal(void) {
  mss_signature_req r, p;
  mss_fault f;
  gw_buf b;

  memset(&r, 0, sizeof(r)); /* versions 0: the JSON defaults 1.2 */
  fill_ap(&r.ap_info);
  strcpy(r.msisdn, "+96895000002");
  mss_data_set(&r.data_to_be_signed, "application/x-sha256", "base64",
               "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", 44);
  r.messaging_mode = MSS_MODE_SYNCH;
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_OK);
  T_ASSERT(strstr(b.data, "\"MajorVersion\":\"1\",\"MinorVersion\":\"2\"") !=
           NULL);
  T_ASSERT(strstr(b.data, "\"MSSP_Info\":{\"MSSP_ID\":{}}") != NULL);
  T_ASSERT(strstr(b.data, "TimeOut") == NULL);
  T_ASSERT(strstr(b.data, "AP_URL") == NULL);
  T_ASSERT(strstr(b.data, "DataToBeDisplayed") == NULL);
  T_EQ_INT(mss_json_parse_signature_req(b.data, b.len, &p, &f), GW_OK);
  T_EQ_INT(p.minor_version, MSS_JSON_MINOR_VERSION);
  T_EQ_INT(p.messaging_mode, MSS_MODE_SYNCH);
  T_EQ_INT(p.timeout, 0);
  T_EQ_INT(p.has_data_to_be_displayed, 0);
  T_EQ_STR(p.mssp_info.id, "");
  T_EQ_STR(p.signature_profile, "");
  T_EQ_STR(p.data_to_be_signed.encoding, "base64");
  T_EQ_INT(p.data_to_be_signed.len, 44);
  /* An empty Data survives too. */
  mss_data_set(&r.data_to_be_signed, NULL, NULL, "", 0);
  gw_buf_reset(&b);
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_OK);
  T_ASSERT(strstr(b.data, "\"DataToBeSigned\":{\"Data\":\"\"}") != NULL);
  T_EQ_INT(mss_json_parse_signature_req(b.data, b.len, &p, &f), GW_OK);
  T_EQ_INT(p.data_to_be_signed.len, 0);
  gw_buf_free(&b);
}

static void test_signature_resp_async_no_password(void) {
  static mss_signature_resp r, p;
  mss_fault f;
  gw_buf b;

  memset(&r, 0, sizeof(r));
  r.major_version = 1;
  r.minor_version = 2;
  fill_ap(&r.ap_info); /* the password must not be echoed */
  strcpy(r.mssp_info.id, "http://ooredoo.om/mssp");
  strcpy(r.mssp_info.instant, "2024-05-01T10:00:01.250+04:00");
  strcpy(r.mssp_trans_id, "h44okl");
  strcpy(r.msisdn, "+96895000001");
  r.status.code = MSS_REQUEST_OK;
  strcpy(r.status.message, "REQUEST_OK");
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_json_build_signature_resp(&r, &b), GW_OK);
  T_ASSERT(strstr(b.data, "\"AP_PWD\":\"\"") != NULL);
  T_ASSERT(strstr(b.data, PWD) == NULL);
  T_ASSERT(starts_with(b.data,
                       "{\"MSS_SignatureResp\":{\"MajorVersion\":\"1\","
                       "\"MinorVersion\":\"2\",\"MSSP_TransID\":\"h44okl\","
                       "\"AP_Info\":{"));
  T_ASSERT(strstr(b.data, "\"Status\":{\"StatusCode\":{\"Value\":\"100\"},"
                          "\"StatusMessage\":\"REQUEST_OK\"}}}") != NULL);
  T_ASSERT(strstr(b.data, "MSS_Signature\"") == NULL);
  T_EQ_INT(mss_json_parse_signature_resp(b.data, b.len, &p, &f), GW_OK);
  no_pwd(&r.ap_info);
  T_ASSERT(memcmp(&p, &r, sizeof(r)) == 0);
  gw_buf_free(&b);
}

static void test_signature_resp_pkcs7(void) {
  static mss_signature_resp r, p;
  mss_fault f;
  gw_buf b;

  memset(&r, 0, sizeof(r));
  r.major_version = 1;
  r.minor_version = 2;
  fill_ap(&r.ap_info);
  strcpy(r.mssp_trans_id, "m1");
  /* No MSISDN: the MobileUser object stays, empty. */
  strcpy(r.signature_profile, "http://alauda.mobi/digitalSignature");
  r.status.code = MSS_SIGNATURE;
  strcpy(r.status.message, "SIGNATURE");
  r.signature.kind = MSS_SIG_PKCS7;
  r.signature.len = MSS_SIG_MAX; /* the cap exactly */
  fill_bytes(r.signature.sig, r.signature.len, 7);
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_json_build_signature_resp(&r, &b), GW_OK);
  T_ASSERT(strstr(b.data, "\"MobileUser\":{},\"MSS_Signature\":{"
                          "\"Base64Signature\":\"MA") != NULL);
  T_EQ_INT(mss_json_parse_signature_resp(b.data, b.len, &p, &f), GW_OK);
  T_EQ_INT(p.signature.kind, MSS_SIG_PKCS7);
  T_EQ_INT(p.signature.len, MSS_SIG_MAX);
  T_EQ_INT(p.status.code, 500);
  no_pwd(&r.ap_info);
  T_ASSERT(memcmp(&p, &r, sizeof(r)) == 0);
  gw_buf_free(&b);
}

static void test_status_req_roundtrip(void) {
  mss_status_req r, p;
  mss_fault f;
  gw_buf b;
  mss_msg type;

  memset(&r, 0, sizeof(r));
  r.major_version = 1;
  r.minor_version = 2;
  fill_ap(&r.ap_info);
  memset(r.ap_info.ap_trans_id, 0, sizeof(r.ap_info.ap_trans_id));
  strcpy(r.ap_info.ap_trans_id, "poll7");
  strcpy(r.mssp_info.id, "http://ooredoo.om/mssp");
  strcpy(r.mssp_trans_id, "h44okl");
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_json_build_status_req(&r, &b), GW_OK);
  T_ASSERT(starts_with(b.data, "{\"MSS_StatusReq\":{"));
  T_ASSERT(strstr(b.data, "MobileUser") == NULL);
  T_EQ_INT(mss_json_peek(b.data, b.len, &type), GW_OK);
  T_EQ_INT(type, MSS_MSG_STATUS_REQ);
  T_EQ_INT(mss_json_parse_status_req(b.data, b.len, &p, &f), GW_OK);
  T_ASSERT(memcmp(&p, &r, sizeof(r)) == 0);
  strcpy(r.msisdn, "+96895000001");
  gw_buf_reset(&b);
  T_EQ_INT(mss_json_build_status_req(&r, &b), GW_OK);
  T_EQ_INT(mss_json_parse_status_req(b.data, b.len, &p, &f), GW_OK);
  T_EQ_STR(p.msisdn, "+96895000001");
  T_ASSERT(memcmp(&p, &r, sizeof(r)) == 0);
  gw_buf_free(&b);
}

static void test_status_resp_outstanding_and_pkcs1(void) {
  static mss_status_resp r, p;
  mss_fault f;
  gw_buf b;
  mss_msg type;

  memset(&r, 0, sizeof(r));
  r.major_version = 1;
  r.minor_version = 2;
  fill_ap(&r.ap_info);
  strcpy(r.msisdn, "+96895000001");
  r.status.code = MSS_OUTSTANDING_TRANSACTION;
  strcpy(r.status.message, "OUTSTANDING_TRANSACTION");
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_json_build_status_resp(&r, &b), GW_OK);
  T_ASSERT(strstr(b.data, "MSSP_TransID") == NULL); /* optional, absent */
  T_ASSERT(strstr(b.data, PWD) == NULL);
  T_EQ_INT(mss_json_peek(b.data, b.len, &type), GW_OK);
  T_EQ_INT(type, MSS_MSG_STATUS_RESP);
  T_EQ_INT(mss_json_parse_status_resp(b.data, b.len, &p, &f), GW_OK);
  T_EQ_INT(p.status.code, 504);
  T_EQ_STR(p.mssp_trans_id, "");

  /* The end, as a notification carries it: a PKCS1 signature (raw ECDSA
   * r||s) with the certificate beside it. */
  strcpy(r.mssp_trans_id, "n99");
  r.status.code = MSS_SIGNATURE;
  memset(r.status.message, 0, sizeof(r.status.message));
  strcpy(r.status.message, "SIGNATURE");
  r.signature.kind = MSS_SIG_PKCS1;
  r.signature.len = 64;
  fill_bytes(r.signature.sig, 64, 3);
  r.signature.cert_len = MSS_CERT_MAX;
  fill_bytes(r.signature.cert, MSS_CERT_MAX, 5);
  gw_buf_reset(&b);
  T_EQ_INT(mss_json_build_status_resp(&r, &b), GW_OK);
  T_ASSERT(strstr(b.data, "\"MSS_Signature\":{\"PKCS1\":{\"SignatureValue\":"
                          "\"MA") != NULL);
  T_ASSERT(strstr(b.data, "\",\"X509Certificate\":\"MA") != NULL);
  T_EQ_INT(mss_json_parse_status_resp(b.data, b.len, &p, &f), GW_OK);
  T_EQ_INT(p.signature.kind, MSS_SIG_PKCS1);
  T_EQ_INT(p.signature.cert_len, MSS_CERT_MAX);
  no_pwd(&r.ap_info);
  T_ASSERT(memcmp(&p, &r, sizeof(r)) == 0);
  gw_buf_free(&b);
}

static void test_receipt_roundtrip(void) {
  static mss_receipt_req r, p;
  mss_receipt_resp s, q;
  mss_fault f;
  gw_buf b;
  mss_msg type;

  memset(&r, 0, sizeof(r));
  r.major_version = 1;
  r.minor_version = 2;
  fill_ap(&r.ap_info);
  strcpy(r.mssp_trans_id, "h44okl");
  strcpy(r.msisdn, "+96895000001");
  r.status.code = MSS_SIGNATURE;
  strcpy(r.status.message, "SIGNATURE");
  r.has_message = 1;
  mss_data_set(&r.message, "text/plain", "UTF-8", "شكرا", strlen("شكرا"));
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_json_build_receipt_req(&r, &b), GW_OK);
  T_ASSERT(strstr(b.data, "\"Message\":{\"MimeType\":\"text/plain\","
                          "\"Encoding\":\"UTF-8\",\"Data\":\"شكرا\"}") != NULL);
  T_EQ_INT(mss_json_peek(b.data, b.len, &type), GW_OK);
  T_EQ_INT(type, MSS_MSG_RECEIPT_REQ);
  T_EQ_INT(mss_json_parse_receipt_req(b.data, b.len, &p, &f), GW_OK);
  T_ASSERT(memcmp(&p, &r, sizeof(r)) == 0);
  /* Without the optional Status and Message. */
  r.status.code = 0;
  r.status.message[0] = '\0';
  memset(r.status.message, 0, sizeof(r.status.message));
  r.has_message = 0;
  memset(&r.message, 0, sizeof(r.message));
  gw_buf_reset(&b);
  T_EQ_INT(mss_json_build_receipt_req(&r, &b), GW_OK);
  T_ASSERT(strstr(b.data, "Status") == NULL);
  T_EQ_INT(mss_json_parse_receipt_req(b.data, b.len, &p, &f), GW_OK);
  T_ASSERT(memcmp(&p, &r, sizeof(r)) == 0);

  memset(&s, 0, sizeof(s));
  s.major_version = 1;
  s.minor_version = 2;
  fill_ap(&s.ap_info);
  s.status.code = MSS_REQUEST_OK;
  gw_buf_reset(&b);
  T_EQ_INT(mss_json_build_receipt_resp(&s, &b), GW_OK);
  T_ASSERT(strstr(b.data, PWD) == NULL);
  T_ASSERT(strstr(b.data, "MSSP_TransID") == NULL);
  T_EQ_INT(mss_json_peek(b.data, b.len, &type), GW_OK);
  T_EQ_INT(type, MSS_MSG_RECEIPT_RESP);
  T_EQ_INT(mss_json_parse_receipt_resp(b.data, b.len, &q, &f), GW_OK);
  no_pwd(&s.ap_info);
  T_ASSERT(memcmp(&q, &s, sizeof(s)) == 0);
  gw_buf_free(&b);
}

/* ---- REFERENCE §1b shapes, written by hand ---- */

/* A Swisscom Mobile ID style request: pretty-printed, members in another
 * order, AdditionalServices, and members we do not know (ignored). */
static const char swisscom_req[] =
    "{\n"
    "  \"MSS_SignatureReq\": {\n"
    "    \"AdditionalServices\": [\n"
    "      {\"Description\": \"http://mss.ficom.fi/TS102204/v1.0.0#userLang\","
    "       \"UserLang\": {\"Value\": \"en\"}},\n"
    "      {\"Description\": \"http://mid.swisscom.ch/as#subscriberInfo\"}\n"
    "    ],\n"
    "    \"AP_Info\": {\n"
    "      \"AP_ID\": \"mid://dev.swisscom.ch\",\n"
    "      \"AP_PWD\": \"disabled\",\n"
    "      \"AP_TransID\": \"ID-d8e1dbd5-e7a8\",\n"
    "      \"Instant\": \"2024-05-01T10:00:00.000+02:00\"\n"
    "    },\n"
    "    \"DataToBeSigned\": {\n"
    "      \"Data\": \"test.ch: Please confirm login \\u2713\",\n"
    "      \"Encoding\": \"UTF-8\",\n"
    "      \"MimeType\": \"text/plain\"\n"
    "    },\n"
    "    \"MSSP_Info\": {\"MSSP_ID\": {\"URI\": "
    "\"http://mid.swisscom.ch/\"}},\n"
    "    \"MajorVersion\": \"1\",\n"
    "    \"MessagingMode\": \"synch\",\n"
    "    \"MinorVersion\": \"2\",\n"
    "    \"MobileUser\": {\"MSISDN\": \"41791234567\", \"UserLang\": \"en\"},\n"
    "    \"SignatureProfile\": "
    "\"http://mid.swisscom.ch/MID/v1/AuthProfile1\",\n"
    "    \"TimeOut\": \"80\",\n"
    "    \"KeyReference\": null,\n"
    "    \"Extra\": [1, 2.5, true, false, null, {\"x\": []}, \"\"]\n"
    "  }\n"
    "}\n";

static const char swisscom_resp[] =
    "{\"MSS_SignatureResp\":{\"AP_Info\":{\"AP_ID\":\"mid://dev.swisscom.ch\","
    "\"AP_PWD\":\"\",\"AP_TransID\":\"ID-d8e1dbd5-e7a8\",\"Instant\":"
    "\"2024-05-01T10:00:00.000+02:00\"},\"MSSP_Info\":{\"Instant\":"
    "\"2024-05-01T10:00:05.123+02:00\",\"MSSP_ID\":{\"URI\":"
    "\"http://mid.swisscom.ch/\"}},\"MSS_Signature\":{\"Base64Signature\":"
    "\"MIIBAA==\"},\"MSSP_TransID\":\"h44okl\",\"MajorVersion\":\"1\","
    "\"MinorVersion\":\"1\",\"MobileUser\":{\"MSISDN\":\"41791234567\"},"
    "\"SignatureProfile\":\"http://mid.swisscom.ch/MID/v1/AuthProfile1\","
    "\"Status\":{\"StatusCode\":{\"Value\":\"500\"},\"StatusDetail\":{"
    "\"ServiceResponses\":[{\"Description\":"
    "\"http://mid.swisscom.ch/as#subscriberInfo\",\"SubscriberInfo\":{"
    "\"Detail\":[{\"id\":\"1901\",\"value\":\"22801\"}]}}]},"
    "\"StatusMessage\":\"SIGNATURE\"}}}";

static void test_reference_shapes(void) {
  static mss_signature_resp sr;
  static mss_status_resp st;
  mss_signature_req p;
  mss_fault f;
  mss_msg type;
  char *doc;

  T_EQ_INT(mss_json_peek(swisscom_req, strlen(swisscom_req), &type), GW_OK);
  T_EQ_INT(type, MSS_MSG_SIGNATURE_REQ);
  memset(&f, 0, sizeof(f));
  T_EQ_INT(
      mss_json_parse_signature_req(swisscom_req, strlen(swisscom_req), &p, &f),
      GW_OK);
  T_EQ_INT(f.subcode, 0);
  T_EQ_INT(p.major_version, 1);
  T_EQ_INT(p.minor_version, 2);
  T_EQ_INT(p.messaging_mode, MSS_MODE_SYNCH);
  T_EQ_INT(p.timeout, 80);
  T_EQ_STR(p.ap_info.ap_id, "mid://dev.swisscom.ch");
  T_EQ_STR(p.ap_info.ap_pwd, "disabled");
  T_EQ_STR(p.ap_info.ap_trans_id, "ID-d8e1dbd5-e7a8");
  T_EQ_STR(p.ap_info.instant, "2024-05-01T10:00:00.000+02:00");
  T_EQ_STR(p.mssp_info.id, "http://mid.swisscom.ch/");
  T_EQ_STR(p.msisdn, "41791234567");
  T_EQ_STR(p.data_to_be_signed.mime_type, "text/plain");
  T_EQ_STR(p.data_to_be_signed.encoding, "UTF-8");
  T_EQ_STR(p.data_to_be_signed.data,
           "test.ch: Please confirm login \xe2\x9c\x93"); /* \u2713 */
  T_EQ_STR(p.signature_profile, "http://mid.swisscom.ch/MID/v1/AuthProfile1");
  T_EQ_STR(p.mss_format, "");
  T_EQ_INT(p.has_data_to_be_displayed, 0);

  T_EQ_INT(mss_json_parse_signature_resp(swisscom_resp, strlen(swisscom_resp),
                                         &sr, &f),
           GW_OK);
  T_EQ_STR(sr.mssp_trans_id, "h44okl");
  T_EQ_INT(sr.minor_version, 1);
  T_EQ_STR(sr.mssp_info.instant, "2024-05-01T10:00:05.123+02:00");
  T_EQ_INT(sr.status.code, 500);
  T_EQ_STR(sr.status.message, "SIGNATURE");
  T_EQ_INT(sr.signature.kind, MSS_SIG_PKCS7);
  T_EQ_INT(sr.signature.len, 4);
  T_ASSERT(memcmp(sr.signature.sig, "\x30\x82\x01\x00", 4) == 0);

  /* The same with an MSS_Signature of another shape: kind OTHER. */
  doc = replace(swisscom_resp, "{\"Base64Signature\":\"MIIBAA==\"}",
                "{\"XMLSignature\":{\"SignedInfo\":\"...\"}}");
  T_EQ_INT(mss_json_parse_signature_resp(doc, strlen(doc), &sr, &f), GW_OK);
  T_EQ_INT(sr.signature.kind, MSS_SIG_OTHER);
  T_EQ_INT(sr.signature.len, 0);
  free(doc);

  /* A status response with the FiCom PKCS1 pair, by hand. */
  {
    static const char resp[] =
        "{\"MSS_StatusResp\": {\"MajorVersion\": \"1\", \"MinorVersion\": "
        "\"2\", \"MSSP_TransID\": \"n1\", \"AP_Info\": {\"AP_ID\": "
        "\"http://ap\", \"AP_PWD\": \"\", \"AP_TransID\": \"T1\", "
        "\"Instant\": \"2026-01-01T00:00:00Z\"}, \"MSSP_Info\": {\"MSSP_ID\": "
        "{\"URI\": \"http://mssp\"}}, \"MobileUser\": {}, \"MSS_Signature\": "
        "{\"PKCS1\": {\"SignatureValue\": \"AQID\", \"X509Certificate\": "
        "\"MIIB\\nAA==\"}}, \"Status\": {\"StatusCode\": {\"Value\": \"500\"}}}"
        "}";

    T_EQ_INT(mss_json_parse_status_resp(resp, strlen(resp), &st, &f), GW_OK);
    T_EQ_INT(st.signature.kind, MSS_SIG_PKCS1);
    T_EQ_INT(st.signature.len, 3);
    T_ASSERT(memcmp(st.signature.sig, "\x01\x02\x03", 3) == 0);
    T_EQ_INT(st.signature.cert_len, 4); /* whitespace in base64 is skipped */
    T_EQ_STR(st.msisdn, "");
    T_EQ_STR(st.status.message, "");
  }
}

/* ---- faults ---- */

static void test_fault_every_code(void) {
  static const int codes[] = {101, 102, 103, 104, 105, 107, 108, 109,
                              208, 209, 401, 402, 403, 404, 405, 406,
                              407, 422, 423, 424, 425, 900};
  mss_fault f, p;
  mss_msg type;
  gw_buf b;
  size_t i;
  char want[64];

  gw_buf_init(&b, 1 << 16);
  for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    mss_fault_set(&f, codes[i],
                  i % 2 ? "detail \"quoted\" \\ <x> تفاصيل" : NULL);
    gw_buf_reset(&b);
    T_EQ_INT(mss_json_build_fault(&f, &b), GW_OK);
    snprintf(want, sizeof(want), "\"SubCode\":{\"Value\":\"_%d\"", codes[i]);
    T_ASSERT(strstr(b.data, want) != NULL);
    T_EQ_INT(mss_json_peek(b.data, b.len, &type), GW_OK);
    T_EQ_INT(type, MSS_MSG_FAULT);
    T_EQ_INT(mss_json_parse_fault(b.data, b.len, &p), GW_OK);
    T_EQ_INT(p.code, f.code);
    T_EQ_INT(p.subcode, codes[i]);
    T_EQ_STR(p.reason, mss_status_name(codes[i]));
    T_EQ_STR(p.detail, f.detail);
  }
  T_ASSERT(strstr(b.data, "\"Value\":\"Receiver\"") != NULL); /* 900 */

  /* Exactly the shape of REFERENCE §1b. */
  mss_fault_set(&f, MSS_WRONG_PARAM, "bad AP_TransID");
  gw_buf_reset(&b);
  T_EQ_INT(mss_json_build_fault(&f, &b), GW_OK);
  T_EQ_STR(b.data, "{\"Fault\":{\"Code\":{\"Value\":\"Sender\",\"ValueNs\":"
                   "\"http://www.w3.org/2003/05/soap-envelope\",\"SubCode\":{"
                   "\"Value\":\"_101\",\"ValueNs\":"
                   "\"http://uri.etsi.org/TS102204/v1.1.2#\"}},\"Reason\":"
                   "\"WRONG_PARAM\",\"Detail\":\"bad AP_TransID\"}}");

  /* An empty reason is filled from the subcode; no detail, no member. */
  memset(&f, 0, sizeof(f));
  f.code = MSS_FAULT_SENDER;
  f.subcode = 104;
  gw_buf_reset(&b);
  T_EQ_INT(mss_json_build_fault(&f, &b), GW_OK);
  T_ASSERT(strstr(b.data, "\"Reason\":\"UNAUTHORIZED_ACCESS\"}}") != NULL);
  T_ASSERT(strstr(b.data, "Detail") == NULL);
  /* Invalid faults are not built, and the buffer is left alone. */
  gw_buf_reset(&b);
  T_EQ_INT(gw_buf_puts(&b, "keep"), GW_OK);
  f.subcode = 0;
  T_EQ_INT(mss_json_build_fault(&f, &b), GW_ERR_INVALID);
  f.subcode = 101;
  f.code = (mss_fault_code)9;
  T_EQ_INT(mss_json_build_fault(&f, &b), GW_ERR_INVALID);
  f.code = MSS_FAULT_SENDER;
  strcpy(f.detail, "broken \xC3 UTF-8");
  T_EQ_INT(mss_json_build_fault(&f, &b), GW_ERR_INVALID);
  T_EQ_STR(gw_buf_cstr(&b), "keep");
  /* parse_fault on a message that is not a fault. */
  {
    char *req = built_sig_req();

    T_EQ_INT(mss_json_parse_fault(req, strlen(req), &p), GW_ERR_INVALID);
    T_EQ_INT(p.subcode, 0);
    free(req);
  }
  gw_buf_free(&b);
}

static void parse_fault_ok_(const char *json, int code, int subcode,
                            const char *reason, const char *file, int line) {
  mss_fault p;
  int rc = mss_json_parse_fault(json, strlen(json), &p);

  if (rc != GW_OK || (int)p.code != code || p.subcode != subcode ||
      strcmp(p.reason, reason) != 0) {
    printf("#   %s:%d: rc %d code %d subcode %d reason \"%s\"\n", file, line,
           rc, p.code, p.subcode, p.reason);
    t_case_failed = 1;
  }
}
#define PARSE_FAULT_OK(json, code, sub, reason)                                \
  parse_fault_ok_(json, code, sub, reason, __FILE__, __LINE__)

static void parse_fault_fails_(const char *json, const char *file, int line) {
  mss_fault p;
  int rc = mss_json_parse_fault(json, strlen(json), &p);

  if (rc != GW_ERR_INVALID || p.subcode != 0 || p.code != 0) {
    printf("#   %s:%d: rc %d subcode %d, expected GW_ERR_INVALID, zeroed\n",
           file, line, rc, p.subcode);
    t_case_failed = 1;
  }
}
#define PARSE_FAULT_FAILS(json) parse_fault_fails_(json, __FILE__, __LINE__)

/* Faults written by other MSSPs and clients. */
static void test_fault_foreign(void) {
  char big[2048], *p;
  mss_fault f;
  size_t i;

  PARSE_FAULT_OK("{\"Fault\":{\"Code\":{\"Value\":\"env:Sender\",\"SubCode\":"
                 "{\"Value\":\"mss:_105\"}},\"Reason\":\"UNKNOWN_CLIENT\"}}",
                 MSS_FAULT_SENDER, 105, "UNKNOWN_CLIENT");
  PARSE_FAULT_OK("{\"Fault\":{\"Code\":{\"Value\":\"soap:Receiver\","
                 "\"Subcode\":{\"Value\":\"fi:_208\"}}}}",
                 MSS_FAULT_RECEIVER, 208, "");
  PARSE_FAULT_OK("{\"Fault\":{\"Code\":{\"Value\":\"Receiver\"},\"Reason\":"
                 "\"no subcode\",\"Detail\":42}}",
                 MSS_FAULT_RECEIVER, 0, "no subcode");
  /* Any code other than Receiver is the sender's. */
  PARSE_FAULT_OK("{\"Fault\":{\"Code\":{\"Value\":\"env:VersionMismatch\","
                 "\"SubCode\":{\"Value\":\"_99999999999\"}},\"Reason\":7}}",
                 MSS_FAULT_SENDER, 0, "");
  PARSE_FAULT_FAILS("{\"Fault\":{\"Reason\":\"x\"}}");
  PARSE_FAULT_FAILS("{\"Fault\":{\"Code\":{\"Value\":5}}}");
  PARSE_FAULT_FAILS("{\"Fault\":{\"Code\":\"Sender\"}}");
  PARSE_FAULT_FAILS("{\"Fault\":[]}");
  PARSE_FAULT_FAILS("{\"Fault\":");
  PARSE_FAULT_FAILS("{\"MSS_StatusReq\":{\"Code\":{\"Value\":\"Sender\"}}}");
  /* A long detail is cut on a UTF-8 boundary. */
  p = big + sprintf(big, "{\"Fault\":{\"Code\":{\"Value\":\"Sender\"},"
                         "\"Detail\":\"x");
  for (i = 0; i < 300; i++) {
    memcpy(p, "ت", 2); /* 2 bytes; with the leading x, 512 splits one */
    p += 2;
  }
  strcpy(p, "\"}}");
  T_EQ_INT(mss_json_parse_fault(big, strlen(big), &f), GW_OK);
  T_EQ_INT(strlen(f.detail), MSS_FAULT_DETAIL_MAX - 1);
  /* Still valid UTF-8: the fault can be built again. */
  {
    gw_buf b;

    gw_buf_init(&b, 1 << 16);
    f.subcode = 101;
    T_EQ_INT(mss_json_build_fault(&f, &b), GW_OK);
    gw_buf_free(&b);
  }
}

/* Every parser handed a fault reports it as GW_ERR_PROTO with the fault. */
static void test_parsers_see_faults(void) {
  static mss_signature_resp sr;
  static mss_status_resp st;
  static mss_receipt_req rq;
  mss_receipt_resp rr;
  mss_signature_req q;
  mss_status_req sq;
  mss_fault f, got;
  gw_buf b;
  static const char no_code[] = "{\"Fault\":{\"Reason\":\"x\"}}";

  gw_buf_init(&b, 1 << 16);
  mss_fault_set(&f, MSS_USER_CANCEL, "refused on the handset");
  T_EQ_INT(mss_json_build_fault(&f, &b), GW_OK);
  memset(&got, 0, sizeof(got));
  T_EQ_INT(mss_json_parse_signature_resp(b.data, b.len, &sr, &got),
           GW_ERR_PROTO);
  T_EQ_INT(got.subcode, 401);
  T_EQ_INT(got.code, MSS_FAULT_RECEIVER);
  T_EQ_STR(got.reason, "USER_CANCEL");
  T_EQ_STR(got.detail, "refused on the handset");
  T_EQ_STR(sr.mssp_trans_id, "");
  T_EQ_INT(mss_json_parse_status_resp(b.data, b.len, &st, &got), GW_ERR_PROTO);
  T_EQ_INT(got.subcode, 401);
  T_EQ_INT(mss_json_parse_receipt_resp(b.data, b.len, &rr, NULL), GW_ERR_PROTO);
  T_EQ_INT(mss_json_parse_signature_req(b.data, b.len, &q, &got), GW_ERR_PROTO);
  T_EQ_INT(mss_json_parse_status_req(b.data, b.len, &sq, &got), GW_ERR_PROTO);
  T_EQ_INT(mss_json_parse_receipt_req(b.data, b.len, &rq, &got), GW_ERR_PROTO);
  T_EQ_INT(got.subcode, 401);
  /* A fault we cannot read is still a fault: 108 in its place. */
  T_EQ_INT(mss_json_parse_status_resp(no_code, strlen(no_code), &st, &got),
           GW_ERR_PROTO);
  T_EQ_INT(got.subcode, MSS_INCOMPATIBLE_INTERFACE);
  gw_buf_free(&b);
}

/* ---- refusals ---- */

static void test_not_json(void) {
  static const char raw_nul[] = "{\"MSS_SignatureReq\":\0{}}";

  SIG_REQ_FAILS("", MSS_INCOMPATIBLE_INTERFACE, "empty");
  SIG_REQ_FAILS("{", MSS_INCOMPATIBLE_INTERFACE, "invalid JSON (truncated)");
  SIG_REQ_FAILS("<soap/>", MSS_INCOMPATIBLE_INTERFACE, "invalid JSON");
  SIG_REQ_FAILS("\"MSS_SignatureReq\"", MSS_INCOMPATIBLE_INTERFACE,
                "invalid JSON");
  SIG_REQ_FAILS("{} {}", MSS_INCOMPATIBLE_INTERFACE, "data after");
  SIG_REQ_FAILS("[{\"MSS_SignatureReq\":{}}]", MSS_INCOMPATIBLE_INTERFACE,
                "exactly one member");
  SIG_REQ_FAILS("{}", MSS_INCOMPATIBLE_INTERFACE, "exactly one member");
  SIG_REQ_FAILS("{\"MSS_SignatureReq\":{},\"MSS_StatusReq\":{}}",
                MSS_INCOMPATIBLE_INTERFACE, "exactly one member");
  SIG_REQ_FAILS("{\"MSS_Bogus\":{}}", MSS_INCOMPATIBLE_INTERFACE,
                "expected MSS_SignatureReq, got MSS_Bogus");
  SIG_REQ_FAILS("{\"MSS_SignatureReq\":[]}", MSS_WRONG_PARAM,
                "MSS_SignatureReq: not an object");
  SIG_REQ_FAILS("{\"MSS_SignatureReq\":{\"MajorVersion\":\"1\"} // c",
                MSS_INCOMPATIBLE_INTERFACE, "invalid JSON");
  SIG_REQ_FAILS("{\"MSS_SignatureReq\":{\"a\":1e999}}",
                MSS_INCOMPATIBLE_INTERFACE, "number out of range");
  sig_req_fails_(raw_nul, sizeof(raw_nul) - 1, GW_ERR_INVALID,
                 MSS_INCOMPATIBLE_INTERFACE, "invalid JSON", __FILE__,
                 __LINE__);
  sig_req_fails_(NULL, 0, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE, "empty",
                 __FILE__, __LINE__);
  /* Another message than the one expected. */
  {
    mss_status_req r;
    gw_buf b;
    mss_fault f;
    mss_signature_req q;

    memset(&r, 0, sizeof(r));
    fill_ap(&r.ap_info);
    strcpy(r.mssp_trans_id, "m1");
    gw_buf_init(&b, 1 << 16);
    T_EQ_INT(mss_json_build_status_req(&r, &b), GW_OK);
    EXPECT_FAULT(mss_json_parse_signature_req(b.data, b.len, &q, &f), &f,
                 GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                 "expected MSS_SignatureReq, got MSS_StatusReq");
    gw_buf_free(&b);
  }
}

static void test_versions(void) {
  mss_signature_req p;

  MUTATED_FAILS("\"MajorVersion\":\"1\"", "\"MajorVersion\":\"2\"",
                MSS_INCOMPATIBLE_INTERFACE, "MSS_SignatureReq.MajorVersion");
  MUTATED_FAILS("\"MajorVersion\":\"1\"", "\"MajorVersion\":\"0\"",
                MSS_INCOMPATIBLE_INTERFACE, "MajorVersion");
  MUTATED_FAILS("\"MajorVersion\":\"1\"",
                "\"MajorVersion\":\"100000000000000000000001\"",
                MSS_INCOMPATIBLE_INTERFACE, "MajorVersion");
  MUTATED_FAILS("\"MajorVersion\":\"1\"", "\"MajorVersion\":1", MSS_WRONG_PARAM,
                "MSS_SignatureReq.MajorVersion: not a string");
  MUTATED_FAILS("\"MajorVersion\":\"1\"", "\"MajorVersion\":\"v1\"",
                MSS_WRONG_PARAM, "MajorVersion: not a string of digits");
  MUTATED_FAILS("\"MajorVersion\":\"1\",", "", MSS_MISSING_PARAM,
                "MSS_SignatureReq.MajorVersion: missing");
  MUTATED_FAILS("\"MinorVersion\":\"2\"", "\"MinorVersion\":\"\"",
                MSS_WRONG_PARAM, "MinorVersion");
  MUTATED_FAILS("\"MinorVersion\":\"2\"", "\"MinorVersion\":\"99999999999\"",
                MSS_WRONG_PARAM, "MinorVersion: out of range");
  MUTATED_FAILS("\"MinorVersion\":\"2\",", "", MSS_MISSING_PARAM,
                "MinorVersion: missing");
  /* Any MinorVersion is accepted and recorded. */
  MUTATED_PARSES("\"MinorVersion\":\"2\"", "\"MinorVersion\":\"7\"", &p);
  T_EQ_INT(p.minor_version, 7);
  MUTATED_PARSES("\"MinorVersion\":\"2\"", "\"MinorVersion\":\"0\"", &p);
  T_EQ_INT(p.minor_version, 0);
}

static void test_missing_members(void) {
  MUTATED_FAILS("\"MobileUser\":{\"MSISDN\":\"+96895000001\"}",
                "\"MobileUser\":{}", MSS_MISSING_PARAM,
                "MSS_SignatureReq.MobileUser.MSISDN: missing");
  MUTATED_FAILS("\"MSISDN\":\"+96895000001\"", "\"MSISDN\":\"\"",
                MSS_MISSING_PARAM, "MSS_SignatureReq.MobileUser.MSISDN: empty");
  MUTATED_FAILS("\"MobileUser\":", "\"MobileUserX\":", MSS_MISSING_PARAM,
                "MSS_SignatureReq.MobileUser: missing");
  MUTATED_FAILS("\"AP_Info\":", "\"AP_InfoX\":", MSS_MISSING_PARAM,
                "MSS_SignatureReq.AP_Info: missing");
  MUTATED_FAILS("\"AP_ID\":\"http://demo_ap\",", "", MSS_MISSING_PARAM,
                "MSS_SignatureReq.AP_Info.AP_ID: missing");
  MUTATED_FAILS("\"AP_ID\":\"http://demo_ap\"", "\"AP_ID\":\"\"",
                MSS_MISSING_PARAM, "AP_Info.AP_ID: empty");
  MUTATED_FAILS("\"AP_PWD\":\"" PWD "\",", "", MSS_MISSING_PARAM,
                "MSS_SignatureReq.AP_Info.AP_PWD: missing");
  MUTATED_FAILS("\"AP_TransID\":\"_tx-0001\",", "", MSS_MISSING_PARAM,
                "AP_Info.AP_TransID: missing");
  MUTATED_FAILS("\"Instant\":\"2024-05-01T10:00:00Z\",", "", MSS_MISSING_PARAM,
                "AP_Info.Instant: missing");
  MUTATED_FAILS("\"MSSP_Info\":", "\"MSSP_InfoX\":", MSS_MISSING_PARAM,
                "MSS_SignatureReq.MSSP_Info: missing");
  MUTATED_FAILS("\"MSSP_ID\":", "\"MSSP_IDX\":", MSS_MISSING_PARAM,
                "MSS_SignatureReq.MSSP_Info.MSSP_ID: missing");
  MUTATED_FAILS("\"MessagingMode\":", "\"Mode\":", MSS_MISSING_PARAM,
                "MSS_SignatureReq.MessagingMode: missing");
  MUTATED_FAILS("\"DataToBeSigned\":", "\"DTBS\":", MSS_MISSING_PARAM,
                "MSS_SignatureReq.DataToBeSigned: missing");
  MUTATED_FAILS("\"Data\":\"Sign in", "\"Text\":\"Sign in", MSS_MISSING_PARAM,
                "MSS_SignatureReq.DataToBeSigned.Data: missing");

  /* Responses: MSSP_TransID, Status, StatusCode, Value. */
  {
    static mss_signature_resp r;
    static const char *const cuts[][3] = {
        {"\"MSSP_TransID\":\"m1\",", "", "MSS_SignatureResp.MSSP_TransID"},
        {"\"Status\":", "\"StatusX\":", "MSS_SignatureResp.Status: missing"},
        {"\"StatusCode\":", "\"Code\":", "Status.StatusCode: missing"},
        {"{\"Value\":\"100\"}", "{}", "Status.StatusCode.Value: missing"},
        {"\"MobileUser\":{},", "", "MSS_SignatureResp.MobileUser: missing"},
    };
    mss_fault f;
    gw_buf b;
    size_t i;
    char *bad;

    memset(&r, 0, sizeof(r));
    fill_ap(&r.ap_info);
    strcpy(r.mssp_trans_id, "m1");
    r.status.code = 100;
    gw_buf_init(&b, 1 << 16);
    T_EQ_INT(mss_json_build_signature_resp(&r, &b), GW_OK);
    for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
      bad = replace(b.data, cuts[i][0], cuts[i][1]);
      memset(&f, 0, sizeof(f));
      EXPECT_FAULT(mss_json_parse_signature_resp(bad, strlen(bad), &r, &f), &f,
                   GW_ERR_INVALID, MSS_MISSING_PARAM, cuts[i][2]);
      free(bad);
    }
    gw_buf_free(&b);
  }
}

static void test_wrong_types(void) {
  MUTATED_FAILS("\"TimeOut\":\"80\"", "\"TimeOut\":80", MSS_WRONG_PARAM,
                "MSS_SignatureReq.TimeOut: not a string");
  MUTATED_FAILS("\"MSISDN\":\"+96895000001\"", "\"MSISDN\":96895000001",
                MSS_WRONG_PARAM,
                "MSS_SignatureReq.MobileUser.MSISDN: not a "
                "string");
  MUTATED_FAILS("\"AP_URL\":\"http://demo_ap/notify\"", "\"AP_URL\":null",
                MSS_WRONG_PARAM, "AP_Info.AP_URL: not a string");
  MUTATED_FAILS("\"AP_PWD\":\"" PWD "\"", "\"AP_PWD\":[\"" PWD "\"]",
                MSS_WRONG_PARAM, "AP_Info.AP_PWD: not a string");
  MUTATED_FAILS("\"MSSP_ID\":{\"URI\":\"http://ooredoo.om/mssp\"}",
                "\"MSSP_ID\":\"http://ooredoo.om/mssp\"", MSS_WRONG_PARAM,
                "MSS_SignatureReq.MSSP_Info.MSSP_ID: not an object");
  MUTATED_FAILS("\"MobileUser\":{\"MSISDN\":\"+96895000001\"}",
                "\"MobileUser\":[{\"MSISDN\":\"+96895000001\"}]",
                MSS_WRONG_PARAM, "MSS_SignatureReq.MobileUser: not an object");
  MUTATED_FAILS("\"Encoding\":\"UTF-8\"", "\"Encoding\":true", MSS_WRONG_PARAM,
                "DataToBeSigned.Encoding: not a string");
  MUTATED_FAILS("\"SignatureProfile\":\"http://alauda.mobi/digitalSignature\"",
                "\"SignatureProfile\":{\"mssURI\":\"http://x\"}",
                MSS_WRONG_PARAM, "SignatureProfile: not a string");
  MUTATED_FAILS("\"MessagingMode\":\"asynchServerServer\"",
                "\"MessagingMode\":3", MSS_WRONG_PARAM,
                "MessagingMode: not a string");
}

static void test_bad_values(void) {
  mss_signature_req p;
  char longer[MSS_URI_MAX + 40];

  MUTATED_FAILS("\"AP_TransID\":\"_tx-0001\"", "\"AP_TransID\":\"1bad\"",
                MSS_WRONG_PARAM,
                "MSS_SignatureReq.AP_Info.AP_TransID: not an NCName of 1..32 "
                "characters");
  MUTATED_FAILS("\"AP_TransID\":\"_tx-0001\"",
                "\"AP_TransID\":\"a23456789012345678901234567890123\"",
                MSS_WRONG_PARAM, "AP_TransID: not an NCName");
  MUTATED_FAILS("\"AP_TransID\":\"_tx-0001\"", "\"AP_TransID\":\"\"",
                MSS_WRONG_PARAM, "AP_TransID: not an NCName");
  MUTATED_FAILS("\"AP_TransID\":\"_tx-0001\"", "\"AP_TransID\":\"a:b\"",
                MSS_WRONG_PARAM, "AP_TransID: not an NCName");
  MUTATED_FAILS("\"Instant\":\"2024-05-01T10:00:00Z\"",
                "\"Instant\":\"2024-02-30T10:00:00Z\"", MSS_WRONG_PARAM,
                "MSS_SignatureReq.AP_Info.Instant: not an xs:dateTime");
  MUTATED_FAILS("\"Instant\":\"2024-05-01T10:00:00Z\"",
                "\"Instant\":\"yesterday\"", MSS_WRONG_PARAM,
                "AP_Info.Instant: not an xs:dateTime");
  MUTATED_FAILS("\"MSSP_Info\":{", "\"MSSP_Info\":{\"Instant\":\"noon\",",
                MSS_WRONG_PARAM, "MSSP_Info.Instant: not an xs:dateTime");
  MUTATED_FAILS("\"MessagingMode\":\"asynchServerServer\"",
                "\"MessagingMode\":\"sync\"", MSS_WRONG_PARAM,
                "MSS_SignatureReq.MessagingMode: not synch");
  MUTATED_FAILS("\"MessagingMode\":\"asynchServerServer\"",
                "\"MessagingMode\":\"Synch\"", MSS_WRONG_PARAM,
                "MessagingMode");
  MUTATED_FAILS("\"TimeOut\":\"80\"", "\"TimeOut\":\"0\"", MSS_WRONG_PARAM,
                "TimeOut: out of range");
  MUTATED_FAILS("\"TimeOut\":\"80\"", "\"TimeOut\":\"-5\"", MSS_WRONG_PARAM,
                "TimeOut: not a string of digits");
  MUTATED_FAILS("\"TimeOut\":\"80\"", "\"TimeOut\":\" 80\"", MSS_WRONG_PARAM,
                "TimeOut: not a string of digits");
  MUTATED_FAILS("\"TimeOut\":\"80\"", "\"TimeOut\":\"8e1\"", MSS_WRONG_PARAM,
                "TimeOut: not a string of digits");
  /* A TimeOut past any unsigned means "as long as you can". */
  MUTATED_PARSES("\"TimeOut\":\"80\"",
                 "\"TimeOut\":\"99999999999999999999999999\"", &p);
  T_EQ_INT(p.timeout, 4294967295u);
  MUTATED_PARSES("\"TimeOut\":\"80\"", "\"TimeOut\":\"0080\"", &p);
  T_EQ_INT(p.timeout, 80);
  /* Over a cap: refused, never truncated. */
  memset(longer, 'a', sizeof(longer) - 1);
  longer[sizeof(longer) - 1] = '\0';
  memcpy(longer, "\"AP_ID\":\"", 9);
  strcpy(longer + 9 + MSS_URI_MAX + 1, "\"");
  MUTATED_FAILS("\"AP_ID\":\"http://demo_ap\"", longer, MSS_WRONG_PARAM,
                "AP_Info.AP_ID: longer than 256 bytes");
  MUTATED_FAILS("\"MSISDN\":\"+96895000001\"",
                "\"MSISDN\":\"+968950000010000000000000000000000\"",
                MSS_WRONG_PARAM, "MobileUser.MSISDN: longer than 32 bytes");
  MUTATED_FAILS("\"MimeType\":\"text/plain\",\"Encoding\":\"UTF-8\",\"Data\":"
                "\"Sign",
                "\"MimeType\":\"text/plain\",\"Encoding\":"
                "\"UTF-8-but-very-much-longer-than-32-bytes\",\"Data\":\"Sign",
                MSS_WRONG_PARAM, "DataToBeSigned.Encoding: longer than 32");
  /* Unicode escapes are decoded. */
  MUTATED_PARSES("\"MSISDN\":\"+96895000001\"",
                 "\"MSISDN\":\"\\u002b96895000001\"", &p);
  T_EQ_STR(p.msisdn, "+96895000001");
}

/* A status response carrying |sig| (a JSON MSS_Signature value). */
static void sig_fails_(const char *sig, int want_sub, const char *detail,
                       const char *file, int line) {
  static mss_status_resp r;
  mss_fault f;
  char doc[40000];

  snprintf(doc, sizeof(doc),
           "{\"MSS_StatusResp\":{\"MajorVersion\":\"1\",\"MinorVersion\":"
           "\"2\",\"AP_Info\":{\"AP_ID\":\"a\",\"AP_PWD\":\"\","
           "\"AP_TransID\":\"T\",\"Instant\":\"2026-01-01T00:00:00Z\"},"
           "\"MSSP_Info\":{\"MSSP_ID\":{}},\"MobileUser\":{},"
           "\"MSS_Signature\":%s,\"Status\":{\"StatusCode\":{\"Value\":"
           "\"500\"}}}}",
           sig);
  memset(&f, 0, sizeof(f));
  expect_fault_(mss_json_parse_status_resp(doc, strlen(doc), &r, &f), &f,
                GW_ERR_INVALID, want_sub, detail, file, line);
  if (r.signature.len || r.signature.kind) {
    printf("#   %s:%d: output not zeroed on error\n", file, line);
    t_case_failed = 1;
  }
}
#define SIG_FAILS(sig, sub, detail)                                            \
  sig_fails_(sig, sub, detail, __FILE__, __LINE__)

static void test_bad_signatures(void) {
  char big[30000];
  size_t i;

  SIG_FAILS("{\"Base64Signature\":\"!!!!\"}", MSS_WRONG_PARAM,
            "MSS_StatusResp.MSS_Signature.Base64Signature: bad base64");
  SIG_FAILS("{\"Base64Signature\":\"AQID_-==\"}", MSS_WRONG_PARAM,
            "bad base64"); /* base64url is not base64 */
  SIG_FAILS("{\"Base64Signature\":\"AQ=ID\"}", MSS_WRONG_PARAM, "bad base64");
  SIG_FAILS("{\"Base64Signature\":12}", MSS_WRONG_PARAM,
            "Base64Signature: not a string");
  SIG_FAILS("{}", MSS_MISSING_PARAM, "MSS_StatusResp.MSS_Signature: empty");
  SIG_FAILS("\"MIIB\"", MSS_WRONG_PARAM,
            "MSS_StatusResp.MSS_Signature: not an object");
  SIG_FAILS("{\"PKCS1\":{\"SignatureValue\":\"AQID\"}}", MSS_MISSING_PARAM,
            "MSS_StatusResp.MSS_Signature.PKCS1.X509Certificate: missing");
  SIG_FAILS("{\"PKCS1\":{\"X509Certificate\":\"AQID\"}}", MSS_MISSING_PARAM,
            "PKCS1.SignatureValue: missing");
  SIG_FAILS("{\"PKCS1\":{\"SignatureValue\":\"AQID\",\"X509Certificate\":"
            "\"%%%\"}}",
            MSS_WRONG_PARAM, "PKCS1.X509Certificate: bad base64");
  SIG_FAILS("{\"PKCS1\":\"AQID\"}", MSS_WRONG_PARAM,
            "MSS_Signature.PKCS1: not an object");
  /* Over the cap: 103, as in SOAP. */
  strcpy(big, "{\"Base64Signature\":\"");
  for (i = 0; i < (MSS_SIG_MAX / 3 + 1) * 4; i += 4) {
    strcat(big, "AAAA");
  }
  strcat(big, "\"}");
  SIG_FAILS(big, MSS_WRONG_DATA_LENGTH, "Base64Signature: more than 16384");
}

static void test_data_too_long(void) {
  static char at_cap[MSS_DATA_MAX + 1], over[MSS_DATA_MAX + 2];
  mss_signature_req p;

  memset(at_cap, 'x', MSS_DATA_MAX);
  memset(over, 'x', MSS_DATA_MAX + 1);
  {
    char *a = malloc(MSS_DATA_MAX + 32), *b = malloc(MSS_DATA_MAX + 32);

    snprintf(a, MSS_DATA_MAX + 32, "\"Data\":\"%s\"", at_cap);
    snprintf(b, MSS_DATA_MAX + 32, "\"Data\":\"%s\"", over);
    MUTATED_PARSES("\"Data\":\"تسجيل الدخول إلى البنك\"", a, &p);
    T_EQ_INT(p.data_to_be_displayed.len, MSS_DATA_MAX);
    MUTATED_FAILS("\"Data\":\"تسجيل الدخول إلى البنك\"", b,
                  MSS_WRONG_DATA_LENGTH,
                  "MSS_SignatureReq.DataToBeDisplayed.Data: longer than 4096");
    free(a);
    free(b);
  }
  /* The cap is on bytes after unescaping: 4096 × "\u0041" is 4096 bytes. */
  {
    size_t n = 6 * MSS_DATA_MAX + 16, i;
    char *a = malloc(n), *q = a;

    q += sprintf(q, "\"Data\":\"");
    for (i = 0; i < MSS_DATA_MAX; i++) {
      q += sprintf(q, "\\u0041");
    }
    strcpy(q, "\"");
    MUTATED_PARSES("\"Data\":\"تسجيل الدخول إلى البنك\"", a, &p);
    T_EQ_INT(p.data_to_be_displayed.len, MSS_DATA_MAX);
    free(a);
  }
}

static void test_huge_input(void) {
  char *base = built_sig_req(), *doc = malloc(MSS_JSON_MAX_INPUT + 2);
  size_t n = strlen(base);
  mss_signature_req p;
  mss_fault f;
  mss_msg type;

  /* Trailing blanks up to the cap exactly: still read. */
  memset(doc, ' ', MSS_JSON_MAX_INPUT + 1);
  memcpy(doc, base, n);
  T_EQ_INT(mss_json_parse_signature_req(doc, MSS_JSON_MAX_INPUT, &p, &f),
           GW_OK);
  /* One byte more: refused before jansson sees it. */
  sig_req_fails_(doc, MSS_JSON_MAX_INPUT + 1, GW_ERR_TOO_LARGE,
                 MSS_WRONG_DATA_LENGTH, "over 262144 bytes", __FILE__,
                 __LINE__);
  T_EQ_INT(mss_json_peek(doc, MSS_JSON_MAX_INPUT + 1, &type), GW_ERR_TOO_LARGE);
  T_EQ_INT(type, MSS_MSG_NONE);
  T_EQ_INT(mss_json_parse_fault(doc, MSS_JSON_MAX_INPUT + 1, &f),
           GW_ERR_TOO_LARGE);
  free(doc);
  free(base);
}

/* Wraps |levels| arrays around 0 in an unknown member of the request. */
static char *nested(int levels) {
  char *s = malloc((size_t)levels * 2 + 32), *q = s;
  int i;

  q += sprintf(q, "\"Extra\":");
  for (i = 0; i < levels; i++) {
    *q++ = '[';
  }
  *q++ = '0';
  for (i = 0; i < levels; i++) {
    *q++ = ']';
  }
  strcpy(q, ",\"MessagingMode\"");
  return s;
}

static void test_deep_nesting(void) {
  mss_signature_req p;
  char *s;

  /* root object (1) + message (2) + 14 arrays = 16 levels: fine. */
  s = nested(MSS_JSON_MAX_DEPTH - 2);
  MUTATED_PARSES("\"MessagingMode\"", s, &p);
  free(s);
  s = nested(MSS_JSON_MAX_DEPTH - 1);
  MUTATED_FAILS("\"MessagingMode\"", s, MSS_INCOMPATIBLE_INTERFACE,
                "nested deeper than 16 levels");
  free(s);
  /* Far past jansson's own limit: refused by jansson, no crash. */
  s = nested(100000);
  MUTATED_FAILS("\"MessagingMode\"", s, MSS_INCOMPATIBLE_INTERFACE,
                "invalid JSON (nested too deep)");
  free(s);
  /* Objects count as much as arrays. */
  MUTATED_FAILS("\"MessagingMode\"",
                "\"X\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"
                "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}}}}}}},"
                "\"MessagingMode\"",
                MSS_INCOMPATIBLE_INTERFACE, "nested deeper");
}

static void test_duplicate_keys(void) {
  MUTATED_FAILS("\"AP_PWD\":\"" PWD "\"",
                "\"AP_PWD\":\"" PWD "\",\"AP_PWD\":\"other\"",
                MSS_INCOMPATIBLE_INTERFACE, "invalid JSON (duplicate key)");
  MUTATED_FAILS("\"TimeOut\":\"80\"", "\"TimeOut\":\"80\",\"TimeOut\":\"80\"",
                MSS_INCOMPATIBLE_INTERFACE, "duplicate key");
  /* Even inside a member we ignore. */
  MUTATED_FAILS("\"MessagingMode\"",
                "\"X\":[{\"a\":1,\"a\":1}],\"MessagingMode\"",
                MSS_INCOMPATIBLE_INTERFACE, "duplicate key");
}

static void test_nul_in_strings(void) {
  MUTATED_FAILS("\"Data\":\"Sign in", "\"Data\":\"Sign\\u0000 in",
                MSS_INCOMPATIBLE_INTERFACE,
                "invalid JSON (NUL character in a string)");
  MUTATED_FAILS("\"AP_PWD\":\"" PWD "\"", "\"AP_PWD\":\"" PWD "\\u0000\"",
                MSS_INCOMPATIBLE_INTERFACE, "NUL character");
  MUTATED_FAILS("\"MessagingMode\"", "\"a\\u0000b\":1,\"MessagingMode\"",
                MSS_INCOMPATIBLE_INTERFACE, "NUL character");
  /* A raw NUL byte inside a string, as a control character. */
  {
    char *base = built_sig_req(), *p = strstr(base, "Sign in");

    T_ASSERT(p != NULL);
    if (p) {
      p[4] = '\0';
      sig_req_fails_(base, strlen(base) + strlen(p + 5) + 1, GW_ERR_INVALID,
                     MSS_INCOMPATIBLE_INTERFACE, "invalid JSON", __FILE__,
                     __LINE__);
    }
    free(base);
  }
}

static void test_invalid_utf8(void) {
  mss_signature_req p;

  MUTATED_FAILS("\"Data\":\"Sign in", "\"Data\":\"Sign \xC3\x28in",
                MSS_INCOMPATIBLE_INTERFACE, "invalid JSON (invalid UTF-8)");
  MUTATED_FAILS("\"Data\":\"Sign in", "\"Data\":\"Sign \xC0\xAFin",
                MSS_INCOMPATIBLE_INTERFACE, "invalid UTF-8"); /* overlong */
  MUTATED_FAILS("\"Data\":\"Sign in", "\"Data\":\"Sign \xED\xA0\x80in",
                MSS_INCOMPATIBLE_INTERFACE, "invalid UTF-8"); /* surrogate */
  MUTATED_FAILS("\"Data\":\"Sign in", "\"Data\":\"Sign \xF4\x90\x80\x80in",
                MSS_INCOMPATIBLE_INTERFACE, "invalid UTF-8"); /* > 10FFFF */
  MUTATED_FAILS("\"Data\":\"Sign in", "\"Data\":\"Sign \xE2\x9Cin",
                MSS_INCOMPATIBLE_INTERFACE, "invalid UTF-8"); /* truncated */
  MUTATED_FAILS("\"Data\":\"Sign in", "\"Data\":\"Sign \\ud800in",
                MSS_INCOMPATIBLE_INTERFACE, "invalid JSON"); /* lone escape */
  MUTATED_FAILS("\"MessagingMode\"", "\"\xFF\":1,\"MessagingMode\"",
                MSS_INCOMPATIBLE_INTERFACE, "invalid UTF-8"); /* in a key */
  /* A surrogate pair escape is one character outside the BMP. */
  MUTATED_PARSES("\"Data\":\"Sign in", "\"Data\":\"\\ud83d\\ude00Sign in", &p);
  T_ASSERT(starts_with(p.data_to_be_signed.data, "\xF0\x9F\x98\x80Sign"));
}

/* ---- the password ---- */

static void test_password_never_echoed(void) {
  static mss_signature_resp r;
  mss_status_resp *s = calloc(1, sizeof(*s));
  mss_receipt_resp q;
  char longpwd[300];
  mss_fault f;
  gw_buf b;

  /* Refusals right at the password: EXPECT_FAULT checks the detail. */
  snprintf(longpwd, sizeof(longpwd), "\"AP_PWD\":\"%s%0*d\"", PWD, MSS_PWD_MAX,
           0);
  MUTATED_FAILS("\"AP_PWD\":\"" PWD "\"", longpwd, MSS_WRONG_PARAM,
                "MSS_SignatureReq.AP_Info.AP_PWD: longer than 128 bytes");
  /* jansson's own message would quote the string around the error. */
  MUTATED_FAILS("\"AP_PWD\":\"" PWD "\"", "\"AP_PWD\":\"" PWD "\x01\"",
                MSS_INCOMPATIBLE_INTERFACE, "invalid JSON (syntax error");
  MUTATED_FAILS("\"AP_PWD\":\"" PWD "\"", "\"AP_PWD\":\"" PWD "\xC3(\"",
                MSS_INCOMPATIBLE_INTERFACE, "invalid UTF-8");
  MUTATED_FAILS("\"AP_PWD\":\"" PWD "\"", "\"AP_PWD\":\"" PWD "\\q\"",
                MSS_INCOMPATIBLE_INTERFACE, "invalid JSON");
  MUTATED_FAILS("\"AP_PWD\":\"" PWD "\"", "\"AP_PWD\":" PWD,
                MSS_INCOMPATIBLE_INTERFACE, "invalid JSON");
  {
    static const char cut[] = "{\"MSS_SignatureReq\":{\"AP_Info\":{\"AP_PWD\":"
                              "\"" PWD;

    SIG_REQ_FAILS(cut, MSS_INCOMPATIBLE_INTERFACE, "truncated");
  }
  /* Every response builder writes "AP_PWD":"" whatever the struct holds. */
  gw_buf_init(&b, 1 << 16);
  memset(&r, 0, sizeof(r));
  fill_ap(&r.ap_info);
  strcpy(r.mssp_trans_id, "m1");
  r.status.code = 100;
  T_EQ_INT(mss_json_build_signature_resp(&r, &b), GW_OK);
  fill_ap(&s->ap_info);
  s->status.code = 504;
  T_EQ_INT(mss_json_build_status_resp(s, &b), GW_OK);
  memset(&q, 0, sizeof(q));
  fill_ap(&q.ap_info);
  q.status.code = 100;
  T_EQ_INT(mss_json_build_receipt_resp(&q, &b), GW_OK);
  T_ASSERT(strstr(b.data, PWD) == NULL);
  T_ASSERT(strstr(b.data, "\"AP_PWD\":\"\"") != NULL);
  /* A fault built from a parse error holds no password either. */
  memset(&f, 0, sizeof(f));
  {
    char *base = built_sig_req(), *bad = replace(base, "\"_tx-0001\"", "\"1\"");
    mss_signature_req p;

    T_EQ_INT(mss_json_parse_signature_req(bad, strlen(bad), &p, &f),
             GW_ERR_INVALID);
    gw_buf_reset(&b);
    T_EQ_INT(mss_json_build_fault(&f, &b), GW_OK);
    T_ASSERT(strstr(b.data, PWD) == NULL);
    free(bad);
    free(base);
  }
  gw_buf_free(&b);
  free(s);
}

/* ---- builders ---- */

static void test_builder_refusals(void) {
  mss_signature_req r;
  static mss_signature_resp s;
  mss_status_req sq;
  mss_receipt_req rq;
  gw_buf b;

  gw_buf_init(&b, 1 << 16);
  T_EQ_INT(gw_buf_puts(&b, "keep"), GW_OK);
  fill_sig_req(&r);
  r.ap_info.ap_id[0] = '\0';
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  r.messaging_mode = MSS_MODE_NONE;
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  r.messaging_mode = (mss_mode)7;
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  r.msisdn[0] = '\0';
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  strcpy(r.ap_info.ap_trans_id, "1bad");
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  strcpy(r.ap_info.instant, "2024-05-01");
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  strcpy(r.mssp_info.instant, "later");
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  r.data_to_be_displayed.data[0] = '\xC3'; /* broken UTF-8 */
  r.data_to_be_displayed.data[1] = 'x';
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  r.data_to_be_signed.data[2] = '\0'; /* a NUL within len */
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  r.data_to_be_signed.len = MSS_DATA_MAX + 1;
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  memset(r.ap_info.ap_id, 'a', sizeof(r.ap_info.ap_id)); /* unterminated */
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  r.minor_version = -1;
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_INVALID);
  T_EQ_STR(gw_buf_cstr(&b), "keep");
  T_EQ_INT(b.len, 4);

  memset(&s, 0, sizeof(s));
  fill_ap(&s.ap_info);
  strcpy(s.mssp_trans_id, "m1");
  T_EQ_INT(mss_json_build_signature_resp(&s, &b), GW_ERR_INVALID); /* code */
  s.status.code = 500;
  s.signature.kind = MSS_SIG_PKCS1;
  s.signature.len = 64;
  T_EQ_INT(mss_json_build_signature_resp(&s, &b), GW_ERR_INVALID); /* cert */
  s.signature.cert_len = MSS_CERT_MAX + 1;
  T_EQ_INT(mss_json_build_signature_resp(&s, &b), GW_ERR_INVALID);
  s.signature.kind = MSS_SIG_OTHER;
  T_EQ_INT(mss_json_build_signature_resp(&s, &b), GW_ERR_INVALID);
  s.signature.kind = MSS_SIG_PKCS7;
  s.signature.len = 0;
  T_EQ_INT(mss_json_build_signature_resp(&s, &b), GW_ERR_INVALID);
  s.signature.kind = MSS_SIG_NONE;
  s.mssp_trans_id[0] = '\0';
  T_EQ_INT(mss_json_build_signature_resp(&s, &b), GW_ERR_INVALID);
  strcpy(s.mssp_trans_id, "9m");
  T_EQ_INT(mss_json_build_signature_resp(&s, &b), GW_ERR_INVALID);
  T_EQ_STR(gw_buf_cstr(&b), "keep");
  strcpy(s.mssp_trans_id, "m1");
  T_EQ_INT(mss_json_build_signature_resp(&s, &b), GW_OK);
  T_ASSERT(starts_with(b.data, "keep{\"MSS_SignatureResp\":"));
  T_EQ_INT(b.len, strlen(b.data));

  memset(&sq, 0, sizeof(sq));
  fill_ap(&sq.ap_info);
  T_EQ_INT(mss_json_build_status_req(&sq, &b), GW_ERR_INVALID); /* no id */
  memset(&rq, 0, sizeof(rq));
  fill_ap(&rq.ap_info);
  strcpy(rq.mssp_trans_id, "m1");
  rq.status.code = -3;
  T_EQ_INT(mss_json_build_receipt_req(&rq, &b), GW_ERR_INVALID);
  gw_buf_free(&b);
}

/* The gw_buf cap is respected to the byte, and restored on error. */
static void test_buf_cap(void) {
  mss_signature_req r;
  gw_buf b;
  size_t len;

  fill_sig_req(&r);
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_OK);
  len = b.len;
  gw_buf_free(&b);

  gw_buf_init(&b, len + 1);
  T_EQ_INT(gw_buf_puts(&b, "x"), GW_OK);
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_OK);
  T_EQ_INT(b.len, len + 1);
  gw_buf_free(&b);

  gw_buf_init(&b, len);
  T_EQ_INT(gw_buf_puts(&b, "x"), GW_OK);
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_TOO_LARGE);
  T_EQ_STR(gw_buf_cstr(&b), "x");
  T_EQ_INT(b.len, 1);
  gw_buf_free(&b);

  /* An empty buffer too small stays empty. */
  gw_buf_init(&b, 20);
  T_EQ_INT(mss_json_build_signature_req(&r, &b), GW_ERR_TOO_LARGE);
  T_EQ_STR(gw_buf_cstr(&b), "");
  T_EQ_INT(b.len, 0);
  {
    mss_fault f;

    mss_fault_set(&f, MSS_WRONG_PARAM, "x");
    T_EQ_INT(mss_json_build_fault(&f, &b), GW_ERR_TOO_LARGE);
    T_EQ_INT(b.len, 0);
  }
  gw_buf_free(&b);
}

static void peek_is_(const char *json, int want_rc, mss_msg want,
                     const char *file, int line) {
  mss_msg type = MSS_MSG_RECEIPT_RESP;
  int rc = mss_json_peek(json, strlen(json), &type);

  if (rc != want_rc || type != want) {
    printf("#   %s:%d: peek rc %d type %d, expected rc %d type %d\n", file,
           line, rc, type, want_rc, want);
    t_case_failed = 1;
  }
}
#define PEEK_IS(json, rc, type) peek_is_(json, rc, type, __FILE__, __LINE__)

static void test_peek(void) {
  PEEK_IS("{\"MSS_SignatureReq\":{}}", GW_OK, MSS_MSG_SIGNATURE_REQ);
  PEEK_IS("{\"MSS_SignatureResp\":1}", GW_OK, MSS_MSG_SIGNATURE_RESP);
  PEEK_IS(" {\"MSS_StatusReq\":null} ", GW_OK, MSS_MSG_STATUS_REQ);
  PEEK_IS("{\"MSS_StatusResp\":{}}", GW_OK, MSS_MSG_STATUS_RESP);
  PEEK_IS("{\"MSS_ReceiptReq\":{}}", GW_OK, MSS_MSG_RECEIPT_REQ);
  PEEK_IS("{\"MSS_ReceiptResp\":{}}", GW_OK, MSS_MSG_RECEIPT_RESP);
  PEEK_IS("{\"Fault\":{}}", GW_OK, MSS_MSG_FAULT);
  PEEK_IS("{\"MSS_RegistrationReq\":{}}", GW_OK, MSS_MSG_NONE);
  PEEK_IS("{\"mss_signaturereq\":{}}", GW_OK, MSS_MSG_NONE);
  PEEK_IS("{\"NONE\":{}}", GW_OK, MSS_MSG_NONE);
  PEEK_IS("", GW_ERR_INVALID, MSS_MSG_NONE);
  PEEK_IS("not json", GW_ERR_INVALID, MSS_MSG_NONE);
  PEEK_IS("[]", GW_ERR_INVALID, MSS_MSG_NONE);
  PEEK_IS("{}", GW_ERR_INVALID, MSS_MSG_NONE);
  PEEK_IS("{\"MSS_StatusReq\":{},\"Fault\":{}}", GW_ERR_INVALID, MSS_MSG_NONE);
  PEEK_IS("{\"Fault\":{},\"Fault\":{}}", GW_ERR_INVALID, MSS_MSG_NONE);
  PEEK_IS("{\"Fault\":\"\\u0000\"}", GW_ERR_INVALID, MSS_MSG_NONE);
  PEEK_IS("{\"Fault\":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}", GW_ERR_INVALID,
          MSS_MSG_NONE);
  PEEK_IS("{\"Fault\":[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]}", GW_OK, MSS_MSG_FAULT);
}

int main(void) {
  T_RUN(test_signature_req_roundtrip);
  T_RUN(test_signature_req_minimal);
  T_RUN(test_signature_resp_async_no_password);
  T_RUN(test_signature_resp_pkcs7);
  T_RUN(test_status_req_roundtrip);
  T_RUN(test_status_resp_outstanding_and_pkcs1);
  T_RUN(test_receipt_roundtrip);
  T_RUN(test_reference_shapes);
  T_RUN(test_fault_every_code);
  T_RUN(test_fault_foreign);
  T_RUN(test_parsers_see_faults);
  T_RUN(test_not_json);
  T_RUN(test_versions);
  T_RUN(test_missing_members);
  T_RUN(test_wrong_types);
  T_RUN(test_bad_values);
  T_RUN(test_bad_signatures);
  T_RUN(test_data_too_long);
  T_RUN(test_huge_input);
  T_RUN(test_deep_nesting);
  T_RUN(test_duplicate_keys);
  T_RUN(test_nul_in_strings);
  T_RUN(test_invalid_utf8);
  T_RUN(test_password_never_echoed);
  T_RUN(test_builder_refusals);
  T_RUN(test_buf_cap);
  T_RUN(test_peek);
  return T_DONE();
}
