/* Tests for operators/mss_soap.c: every message built, validated against the
 * ETSI schemas, parsed back; the FiCom guideline's examples parsed; messages
 * from other clients parsed; hostile input refused without a crash.
 *
 * The schemas are looked up at $MSS_SCHEMA_DIR or, from the repository root
 * (where tests/run.sh runs), ../shared/specs/etsi-ts-102-204. Without them
 * the validation checks are skipped with a "# skip:" line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gw_buf.h"
#include "gw_err.h"
#include "harness.h"
#include "mss.h"
#include "mss_soap.h"

#define FIXTURES "tests/fixtures/etsi/"

static mss_soap_schema *schema;

/* ---- helpers ---- */

static void check_valid_(const char *xml, size_t n, const char *file,
                         int line) {
  char err[512];
  int rc;

  if (!schema) {
    return;
  }
  rc = mss_soap_schema_validate(schema, xml, n, err, sizeof(err));
  if (rc != GW_OK) {
    printf("#   %s:%d: schema validation failed: %s\n", file, line, err);
    t_case_failed = 1;
  }
}
#define CHECK_VALID(b) check_valid_((b)->data, (b)->len, __FILE__, __LINE__)

static char *read_file(const char *path, size_t *n) {
  FILE *fp = fopen(path, "rb");
  char *buf;
  long size;

  if (!fp) {
    printf("#   cannot open %s\n", path);
    return NULL;
  }
  fseek(fp, 0, SEEK_END);
  size = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  buf = malloc((size_t)size + 1);
  if (fread(buf, 1, (size_t)size, fp) != (size_t)size) {
    size = 0;
  }
  buf[size] = '\0';
  fclose(fp);
  *n = (size_t)size;
  return buf;
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
  strcpy(ap->ap_pwd, "demo-secret");
  strcpy(ap->ap_trans_id, "_tx-0001");
  strcpy(ap->instant, "2024-05-01T10:00:00Z");
}

/* A DataToBeSigned with everything that must survive: CR LF, markup
 * characters, quotes, Arabic. */
static const char tricky_text[] =
    "Sign in to <Bank> & \"co\"\r\nتسجيل الدخول\t ]]> end ";

static void fill_sig_req(mss_signature_req *r) {
  static const char display[] = "تسجيل الدخول إلى البنك";

  memset(r, 0, sizeof(*r));
  r->major_version = 1;
  r->minor_version = 1;
  fill_ap(&r->ap_info);
  strcpy(r->mssp_info.id, "http://omantel.om/mssp");
  strcpy(r->msisdn, "+96899000001");
  mss_data_set(&r->data_to_be_signed, "text/plain", "UTF-8", tricky_text,
               strlen(tricky_text));
  r->has_data_to_be_displayed = 1;
  mss_data_set(&r->data_to_be_displayed, "text/plain", "UTF-8", display,
               strlen(display));
  strcpy(r->signature_profile, "http://alauda.mobi/digitalSignature");
  strcpy(r->mss_format, MSS_FORMAT_PKCS7);
  r->messaging_mode = MSS_MODE_ASYNCH_CLIENT_SERVER;
  r->timeout = 80;
}

static void fill_bytes(unsigned char *p, size_t n, unsigned seed) {
  size_t i;

  for (i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (unsigned char)(seed >> 16);
  }
  if (n > 2) {
    p[0] = 0x30; /* a DER SEQUENCE, and zero bytes inside */
    p[1] = 0;
  }
}

static void expect_parse_fault(int rc, const mss_fault *f, int want_rc,
                               int want_sub, const char *file, int line) {
  if (rc != want_rc || f->subcode != want_sub) {
    printf("#   %s:%d: rc %d subcode %d (%s), expected rc %d subcode %d\n",
           file, line, rc, f->subcode, f->detail, want_rc, want_sub);
    t_case_failed = 1;
  }
}
#define EXPECT_FAULT(rc, f, want_rc, want_sub)                                 \
  expect_parse_fault(rc, f, want_rc, want_sub, __FILE__, __LINE__)

static char *built_sig_req(void) {
  mss_signature_req r;
  gw_buf b;
  char *s;

  fill_sig_req(&r);
  gw_buf_init(&b, 1 << 20);
  if (mss_soap_build_signature_req(&r, &b) != GW_OK) {
    t_case_failed = 1;
  }
  s = strdup(gw_buf_cstr(&b));
  gw_buf_free(&b);
  return s;
}

/* Parses |xml| as a signature request and checks the fault subcode. */
static void sig_req_fails_(const char *xml, int want_rc, int want_sub,
                           const char *file, int line) {
  mss_signature_req out;
  mss_fault f;
  int rc;

  memset(&f, 0, sizeof(f));
  rc = mss_soap_parse_signature_req(xml, strlen(xml), &out, &f);
  expect_parse_fault(rc, &f, want_rc, want_sub, file, line);
  if (rc != GW_OK && out.msisdn[0]) {
    printf("#   %s:%d: output not zeroed on error\n", file, line);
    t_case_failed = 1;
  }
  if (want_rc == GW_ERR_INVALID && rc == GW_ERR_INVALID &&
      f.code != MSS_FAULT_SENDER) {
    printf("#   %s:%d: fault code %d, expected Sender\n", file, line, f.code);
    t_case_failed = 1;
  }
}
#define SIG_REQ_FAILS(xml, rc, sub)                                            \
  sig_req_fails_(xml, rc, sub, __FILE__, __LINE__)

/* Mutates the built request (|from| -> |to|) and expects |sub|. */
static void mutated_fails_(const char *from, const char *to, int sub,
                           const char *file, int line) {
  char *base = built_sig_req();
  char *bad = replace(base, from, to);

  sig_req_fails_(bad, GW_ERR_INVALID, sub, file, line);
  free(bad);
  free(base);
}
#define MUTATED_FAILS(from, to, sub)                                           \
  mutated_fails_(from, to, sub, __FILE__, __LINE__)

/* ---- round trips ---- */

static void test_signature_req_roundtrip(void) {
  mss_signature_req r, p;
  mss_fault f;
  gw_buf b;
  mss_msg type;

  fill_sig_req(&r);
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_soap_build_signature_req(&r, &b), GW_OK);
  CHECK_VALID(&b);
  /* The shape of the FiCom examples, with the mss prefix on the element. */
  T_ASSERT(strstr(b.data,
                  "<env:Body>\n<MSS_Signature>\n<mss:MSS_SignatureReq "
                  "xmlns:mss=\"http://uri.etsi.org/TS102204/v1.1.2#\"") !=
           NULL);
  T_ASSERT(strstr(b.data, "</mss:MSS_SignatureReq>\n</MSS_Signature>") != NULL);
  T_ASSERT(strstr(b.data, "AP_PWD=\"demo-secret\"") != NULL); /* a request */
  T_EQ_INT(mss_soap_peek(b.data, b.len, &type), GW_OK);
  T_EQ_INT(type, MSS_MSG_SIGNATURE_REQ);
  T_EQ_INT(mss_soap_parse_signature_req(b.data, b.len, &p, &f), GW_OK);
  T_EQ_INT(p.major_version, 1);
  T_EQ_INT(p.minor_version, 1);
  T_EQ_STR(p.ap_info.ap_id, r.ap_info.ap_id);
  T_EQ_STR(p.ap_info.ap_pwd, "demo-secret");
  T_EQ_STR(p.ap_info.ap_trans_id, "_tx-0001");
  T_EQ_STR(p.ap_info.instant, r.ap_info.instant);
  T_EQ_STR(p.ap_info.ap_url, "");
  T_EQ_STR(p.mssp_info.id, "http://omantel.om/mssp");
  T_EQ_STR(p.msisdn, "+96899000001");
  T_EQ_STR(p.data_to_be_signed.mime_type, "text/plain");
  T_EQ_STR(p.data_to_be_signed.encoding, "UTF-8");
  T_EQ_INT(p.data_to_be_signed.len, strlen(tricky_text));
  T_EQ_STR(p.data_to_be_signed.data, tricky_text); /* byte for byte */
  T_EQ_INT(p.has_data_to_be_displayed, 1);
  T_EQ_STR(p.data_to_be_displayed.data, r.data_to_be_displayed.data);
  T_EQ_STR(p.signature_profile, r.signature_profile);
  T_EQ_STR(p.mss_format, MSS_FORMAT_PKCS7);
  T_EQ_INT(p.messaging_mode, MSS_MODE_ASYNCH_CLIENT_SERVER);
  T_EQ_INT(p.timeout, 80);
  T_ASSERT(memcmp(&p, &r, sizeof(r)) == 0);
  gw_buf_free(&b);
}

static void test_signature_req_minimal(void) {
  mss_signature_req r, p;
  mss_fault f;
  gw_buf b;

  memset(&r, 0, sizeof(r)); /* versions 0 = the default 1.1 */
  fill_ap(&r.ap_info);
  strcpy(r.msisdn, "+96899000002");
  mss_data_set(&r.data_to_be_signed, "application/x-sha256", "base64",
               "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", 44);
  r.messaging_mode = MSS_MODE_SYNCH;
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_soap_build_signature_req(&r, &b), GW_OK);
  CHECK_VALID(&b);
  T_ASSERT(strstr(b.data, "<mss:MSSP_ID/>") != NULL);
  T_ASSERT(strstr(b.data, "TimeOut") == NULL);
  T_EQ_INT(mss_soap_parse_signature_req(b.data, b.len, &p, &f), GW_OK);
  T_EQ_INT(p.major_version, 1);
  T_EQ_INT(p.minor_version, 1);
  T_EQ_INT(p.messaging_mode, MSS_MODE_SYNCH);
  T_EQ_INT(p.timeout, 0);
  T_EQ_INT(p.has_data_to_be_displayed, 0);
  T_EQ_STR(p.signature_profile, "");
  T_EQ_STR(p.mss_format, "");
  T_EQ_STR(p.mssp_info.id, "");
  T_EQ_STR(p.data_to_be_signed.encoding, "base64");
  T_EQ_INT(p.data_to_be_signed.len, 44);
  gw_buf_free(&b);
}

static void test_signature_resp_async_no_password(void) {
  mss_signature_resp r, p;
  mss_fault f;
  gw_buf b;

  memset(&r, 0, sizeof(r));
  fill_ap(&r.ap_info); /* ap_pwd "demo-secret" must not be echoed */
  strcpy(r.mssp_info.id, "http://omantel.om/mssp");
  strcpy(r.mssp_info.instant, "2024-05-01T10:00:01.250+04:00");
  strcpy(r.mssp_trans_id, "mssp42");
  strcpy(r.msisdn, "+96899000001");
  r.status.code = MSS_REQUEST_OK;
  strcpy(r.status.message, "REQUEST_OK");
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_soap_build_signature_resp(&r, &b), GW_OK);
  CHECK_VALID(&b);
  T_ASSERT(strstr(b.data, "AP_PWD=\"\"") != NULL);
  T_ASSERT(strstr(b.data, "demo-secret") == NULL);
  T_ASSERT(strstr(b.data, "<MSS_SignatureResponse>\n<mss:MSS_SignatureResp ") !=
           NULL);
  T_EQ_INT(mss_soap_parse_signature_resp(b.data, b.len, &p, &f), GW_OK);
  T_EQ_STR(p.mssp_trans_id, "mssp42");
  T_EQ_STR(p.ap_info.ap_pwd, "");
  T_EQ_STR(p.ap_info.ap_trans_id, r.ap_info.ap_trans_id);
  T_EQ_STR(p.mssp_info.instant, r.mssp_info.instant);
  T_EQ_STR(p.msisdn, "+96899000001");
  T_EQ_INT(p.status.code, 100);
  T_EQ_STR(p.status.message, "REQUEST_OK");
  T_EQ_INT(p.signature.kind, MSS_SIG_NONE);
  gw_buf_free(&b);
}

static void test_signature_resp_synch_pkcs7(void) {
  static mss_signature_resp r, p;
  mss_fault f;
  gw_buf b;

  memset(&r, 0, sizeof(r));
  fill_ap(&r.ap_info);
  strcpy(r.mssp_trans_id, "m1");
  strcpy(r.msisdn, "+96899000001");
  strcpy(r.signature_profile, "http://alauda.mobi/digitalSignature");
  r.status.code = MSS_SIGNATURE;
  strcpy(r.status.message, "SIGNATURE");
  r.signature.kind = MSS_SIG_PKCS7;
  r.signature.len = 1499;
  fill_bytes(r.signature.sig, r.signature.len, 7);
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_soap_build_signature_resp(&r, &b), GW_OK);
  CHECK_VALID(&b);
  T_ASSERT(strstr(b.data, "<mss:MSS_Signature><mss:Base64Signature>MA") !=
           NULL);
  T_EQ_INT(mss_soap_parse_signature_resp(b.data, b.len, &p, &f), GW_OK);
  T_EQ_INT(p.signature.kind, MSS_SIG_PKCS7);
  T_EQ_INT(p.signature.len, 1499);
  T_ASSERT(memcmp(p.signature.sig, r.signature.sig, 1499) == 0);
  T_EQ_INT(p.signature.cert_len, 0);
  T_EQ_STR(p.signature_profile, r.signature_profile);
  T_EQ_INT(p.status.code, 500);
  gw_buf_free(&b);
}

static void test_status_req_roundtrip(void) {
  mss_status_req r, p;
  mss_fault f;
  gw_buf b;

  memset(&r, 0, sizeof(r));
  fill_ap(&r.ap_info);
  strcpy(r.ap_info.ap_trans_id, "poll7");
  strcpy(r.mssp_info.id, "http://omantel.om/mssp");
  strcpy(r.mssp_trans_id, "mssp42");
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_soap_build_status_req(&r, &b), GW_OK);
  CHECK_VALID(&b);
  T_ASSERT(strstr(b.data, "<MSS_StatusQuery>\n<mss:MSS_StatusReq ") != NULL);
  T_ASSERT(strstr(b.data, "MobileUser") == NULL);
  T_EQ_INT(mss_soap_parse_status_req(b.data, b.len, &p, &f), GW_OK);
  T_EQ_STR(p.mssp_trans_id, "mssp42");
  T_EQ_STR(p.ap_info.ap_trans_id, "poll7");
  T_EQ_STR(p.ap_info.ap_pwd, "demo-secret");
  T_EQ_STR(p.msisdn, "");
  /* With the optional MobileUser. */
  strcpy(r.msisdn, "+96899000001");
  gw_buf_reset(&b);
  T_EQ_INT(mss_soap_build_status_req(&r, &b), GW_OK);
  CHECK_VALID(&b);
  T_EQ_INT(mss_soap_parse_status_req(b.data, b.len, &p, &f), GW_OK);
  T_EQ_STR(p.msisdn, "+96899000001");
  gw_buf_free(&b);
}

static void test_status_resp_outstanding_and_pkcs1(void) {
  static mss_status_resp r, p;
  mss_fault f;
  gw_buf b;

  memset(&r, 0, sizeof(r));
  fill_ap(&r.ap_info);
  strcpy(r.mssp_info.id, "http://ooredoo.om/mssp");
  strcpy(r.msisdn, "+96895000001");
  r.status.code = MSS_OUTSTANDING_TRANSACTION;
  strcpy(r.status.message, "OUTSTANDING_TRANSACTION");
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_soap_build_status_resp(&r, &b), GW_OK);
  CHECK_VALID(&b);
  T_ASSERT(strstr(b.data, "MSSP_TransID") == NULL); /* optional, absent */
  T_ASSERT(strstr(b.data, "<MSS_StatusQueryResponse>\n<mss:MSS_StatusResp ") !=
           NULL);
  T_ASSERT(strstr(b.data, "demo-secret") == NULL);
  T_EQ_INT(mss_soap_parse_status_resp(b.data, b.len, &p, &f), GW_OK);
  T_EQ_INT(p.status.code, 504);
  T_EQ_STR(p.mssp_trans_id, "");
  T_EQ_INT(p.signature.kind, MSS_SIG_NONE);

  /* The end, as a notification carries it: MSSP_TransID and a PKCS1
   * signature (raw ECDSA r||s) with the certificate beside it. */
  strcpy(r.mssp_trans_id, "n99");
  r.status.code = MSS_SIGNATURE;
  strcpy(r.status.message, "SIGNATURE");
  r.signature.kind = MSS_SIG_PKCS1;
  r.signature.len = 64;
  fill_bytes(r.signature.sig, 64, 3);
  r.signature.cert_len = 700;
  fill_bytes(r.signature.cert, 700, 5);
  gw_buf_reset(&b);
  T_EQ_INT(mss_soap_build_status_resp(&r, &b), GW_OK);
  CHECK_VALID(&b);
  T_ASSERT(strstr(b.data, "<fi:PKCS1 xmlns:fi=\"" MSS_FICOM_NS
                          "\"><fi:SignatureValue>") != NULL);
  T_EQ_INT(mss_soap_parse_status_resp(b.data, b.len, &p, &f), GW_OK);
  T_EQ_STR(p.mssp_trans_id, "n99");
  T_EQ_INT(p.signature.kind, MSS_SIG_PKCS1);
  T_EQ_INT(p.signature.len, 64);
  T_EQ_INT(p.signature.cert_len, 700);
  T_ASSERT(memcmp(p.signature.sig, r.signature.sig, 64) == 0);
  T_ASSERT(memcmp(p.signature.cert, r.signature.cert, 700) == 0);
  T_EQ_INT(p.status.code, 500);
  gw_buf_free(&b);
}

static void test_receipt_roundtrip(void) {
  static const char receipt_text[] = "شكرا — signed in";
  mss_receipt_req r, p;
  mss_receipt_resp rr, pr;
  mss_fault f;
  gw_buf b;

  memset(&r, 0, sizeof(r));
  fill_ap(&r.ap_info);
  strcpy(r.mssp_trans_id, "mssp42");
  strcpy(r.msisdn, "+96899000001");
  r.status.code = MSS_SIGNATURE;
  strcpy(r.status.message, "SIGNATURE");
  r.has_message = 1;
  T_EQ_INT(mss_data_set(&r.message, "text/plain", "UTF-8", receipt_text,
                        strlen(receipt_text)),
           GW_OK);
  gw_buf_init(&b, 1 << 20);
  T_EQ_INT(mss_soap_build_receipt_req(&r, &b), GW_OK);
  CHECK_VALID(&b);
  T_ASSERT(strstr(b.data, "<MSS_Receipt>\n<mss:MSS_ReceiptReq ") != NULL);
  T_EQ_INT(mss_soap_parse_receipt_req(b.data, b.len, &p, &f), GW_OK);
  T_EQ_STR(p.mssp_trans_id, "mssp42");
  T_EQ_STR(p.msisdn, "+96899000001");
  T_EQ_INT(p.status.code, 500);
  T_EQ_INT(p.has_message, 1);
  T_EQ_INT(p.message.len, strlen(receipt_text));
  T_EQ_STR(p.message.data, r.message.data);
  /* Without the optional Status and Message. */
  r.status.code = 0;
  r.has_message = 0;
  gw_buf_reset(&b);
  T_EQ_INT(mss_soap_build_receipt_req(&r, &b), GW_OK);
  CHECK_VALID(&b);
  T_EQ_INT(mss_soap_parse_receipt_req(b.data, b.len, &p, &f), GW_OK);
  T_EQ_INT(p.status.code, 0);
  T_EQ_INT(p.has_message, 0);

  memset(&rr, 0, sizeof(rr));
  fill_ap(&rr.ap_info);
  rr.status.code = MSS_REQUEST_OK;
  strcpy(rr.status.message, "REQUEST_OK");
  gw_buf_reset(&b);
  T_EQ_INT(mss_soap_build_receipt_resp(&rr, &b), GW_OK);
  CHECK_VALID(&b);
  T_ASSERT(strstr(b.data, "<MSS_ReceiptResponse>\n<mss:MSS_ReceiptResp ") !=
           NULL);
  T_ASSERT(strstr(b.data, "demo-secret") == NULL);
  T_EQ_INT(mss_soap_parse_receipt_resp(b.data, b.len, &pr, &f), GW_OK);
  T_EQ_INT(pr.status.code, 100);
  T_EQ_STR(pr.ap_info.ap_pwd, "");
  gw_buf_free(&b);
}

static void test_fault_every_code(void) {
  static const int codes[] = {101, 102, 103, 104, 105, 107, 108, 109,
                              208, 209, 401, 402, 403, 404, 405, 406,
                              407, 422, 423, 424, 425, 900};
  mss_fault f, p;
  mss_msg type;
  gw_buf b;
  size_t i;
  char want[32];

  gw_buf_init(&b, 1 << 16);
  for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    mss_fault_set(&f, codes[i], i % 2 ? "detail <with> & \"markup\"" : NULL);
    gw_buf_reset(&b);
    T_EQ_INT(mss_soap_build_fault(&f, &b), GW_OK);
    CHECK_VALID(&b);
    snprintf(want, sizeof(want), ">mss:_%d<", codes[i]);
    T_ASSERT(strstr(b.data, want) != NULL);
    T_ASSERT(strstr(b.data, "<env:Text xml:lang=\"en\">") != NULL);
    T_EQ_INT(mss_soap_peek(b.data, b.len, &type), GW_OK);
    T_EQ_INT(type, MSS_MSG_FAULT);
    T_EQ_INT(mss_soap_parse_fault(b.data, b.len, &p), GW_OK);
    T_EQ_INT(p.code, f.code);
    T_EQ_INT(p.subcode, codes[i]);
    T_EQ_STR(p.reason, mss_status_name(codes[i]));
    T_EQ_STR(p.detail, f.detail);
  }
  T_ASSERT(strstr(b.data, "env:Receiver") != NULL); /* 900 */
  /* An empty reason is filled from the subcode. */
  memset(&f, 0, sizeof(f));
  f.code = MSS_FAULT_SENDER;
  f.subcode = 104;
  gw_buf_reset(&b);
  T_EQ_INT(mss_soap_build_fault(&f, &b), GW_OK);
  T_ASSERT(strstr(b.data, ">UNAUTHORIZED_ACCESS<") != NULL);
  T_ASSERT(strstr(b.data, "Detail") == NULL);
  /* Invalid faults are not built. */
  f.subcode = 0;
  T_EQ_INT(mss_soap_build_fault(&f, &b), GW_ERR_INVALID);
  f.subcode = 101;
  f.code = (mss_fault_code)9;
  T_EQ_INT(mss_soap_build_fault(&f, &b), GW_ERR_INVALID);
  /* parse_fault on a non-fault message. */
  {
    char *req = built_sig_req();

    T_EQ_INT(mss_soap_parse_fault(req, strlen(req), &p), GW_ERR_INVALID);
    free(req);
  }
  gw_buf_free(&b);
}

/* A response parser handed a fault reports it as GW_ERR_PROTO. */
static void test_response_parsers_see_faults(void) {
  static mss_signature_resp sr;
  static mss_status_resp st;
  mss_receipt_resp rr;
  mss_signature_req q;
  mss_fault f, got;
  gw_buf b;

  gw_buf_init(&b, 1 << 16);
  mss_fault_set(&f, MSS_USER_CANCEL, "refused on the handset");
  T_EQ_INT(mss_soap_build_fault(&f, &b), GW_OK);
  memset(&got, 0, sizeof(got));
  T_EQ_INT(mss_soap_parse_signature_resp(b.data, b.len, &sr, &got),
           GW_ERR_PROTO);
  T_EQ_INT(got.subcode, 401);
  T_EQ_INT(got.code, MSS_FAULT_RECEIVER);
  T_EQ_STR(got.detail, "refused on the handset");
  T_EQ_INT(mss_soap_parse_status_resp(b.data, b.len, &st, &got), GW_ERR_PROTO);
  T_EQ_INT(got.subcode, 401);
  T_EQ_INT(mss_soap_parse_receipt_resp(b.data, b.len, &rr, NULL), GW_ERR_PROTO);
  T_EQ_INT(mss_soap_parse_signature_req(b.data, b.len, &q, &got), GW_ERR_PROTO);
  gw_buf_free(&b);
}

/* ---- the FiCom guideline's examples ---- */

static void test_ficom_signature_req(void) {
  size_t n;
  char *xml = read_file(FIXTURES "ficom_signature_req.xml", &n);
  mss_signature_req p;
  mss_fault f;

  T_ASSERT(xml != NULL);
  if (!xml) {
    return;
  }
  check_valid_(xml, n, __FILE__, __LINE__);
  T_EQ_INT(mss_soap_parse_signature_req(xml, n, &p, &f), GW_OK);
  T_EQ_STR(p.ap_info.ap_id, "http://mss.teliasonera.com/mssURI/oycompanyab");
  T_EQ_STR(p.ap_info.ap_trans_id, "A1203");
  T_EQ_STR(p.ap_info.ap_pwd, "ssl");
  T_EQ_STR(p.ap_info.instant, "2003-06-24T21:32:00Z");
  T_EQ_STR(p.mssp_info.id, "");
  T_EQ_STR(p.msisdn, "+358123456789");
  T_EQ_STR(p.data_to_be_signed.mime_type, "text/plain");
  /* Content kept exactly as received, surrounding whitespace included. */
  T_EQ_STR(p.data_to_be_signed.data,
           "\n          24F56B879D6ADF71027E65A7095D1162EAF17C7A\n       ");
  T_EQ_STR(p.signature_profile,
           "http://mss.ficom.fi/TS102206/v1.0.0/authentication-profile.xml");
  T_EQ_STR(p.mss_format, "");
  T_EQ_INT(p.messaging_mode, MSS_MODE_SYNCH);
  T_EQ_INT(p.timeout, 0);
  free(xml);
}

static void test_ficom_signature_resp(void) {
  size_t n;
  char *xml = read_file(FIXTURES "ficom_signature_resp.xml", &n);
  static mss_signature_resp p;
  mss_fault f;

  T_ASSERT(xml != NULL);
  if (!xml) {
    return;
  }
  /* (Not schema-valid as published: fi:Description has text, no mssURI.) */
  T_EQ_INT(mss_soap_parse_signature_resp(xml, n, &p, &f), GW_OK);
  T_EQ_STR(p.mssp_trans_id, "B653");
  T_EQ_STR(p.ap_info.ap_id, "http://mss.teliasonera.com/mssURI/oycompanyab");
  T_EQ_STR(p.mssp_info.id, "http://mss.elisa.fi");
  T_EQ_STR(p.mssp_info.instant, "2003-06-24T21:32:28Z");
  T_EQ_STR(p.msisdn, "+358123456789");
  T_EQ_INT(p.signature.kind, MSS_SIG_PKCS7);
  T_EQ_INT(p.signature.len, 128);
  T_EQ_INT(p.signature.sig[0], 0x13);
  T_EQ_INT(p.status.code, MSS_VALID_SIGNATURE);
  T_EQ_STR(p.status.message, "VALID_SIGNATURE");
  free(xml);
}

static void test_ficom_status(void) {
  size_t n;
  char *xml = read_file(FIXTURES "ficom_status_req.xml", &n);
  mss_status_req q;
  static mss_status_resp p;
  mss_fault f;
  mss_msg type;

  T_ASSERT(xml != NULL);
  if (!xml) {
    return;
  }
  check_valid_(xml, n, __FILE__, __LINE__);
  T_EQ_INT(mss_soap_peek(xml, n, &type), GW_OK);
  T_EQ_INT(type, MSS_MSG_STATUS_REQ);
  T_EQ_INT(mss_soap_parse_status_req(xml, n, &q, &f), GW_OK);
  T_EQ_STR(q.mssp_trans_id, "B653");
  T_EQ_STR(q.ap_info.ap_trans_id, "A204");
  T_EQ_STR(q.mssp_info.id, "http://mss.teliasonera.com");
  free(xml);
  xml = read_file(FIXTURES "ficom_status_resp.xml", &n);
  T_ASSERT(xml != NULL);
  if (!xml) {
    return;
  }
  check_valid_(xml, n, __FILE__, __LINE__);
  T_EQ_INT(mss_soap_parse_status_resp(xml, n, &p, &f), GW_OK);
  T_EQ_STR(p.mssp_trans_id, "B653");
  T_EQ_INT(p.status.code, MSS_OUTSTANDING_TRANSACTION);
  T_EQ_STR(p.status.message, "OUTSTANDING_TRANSACTION");
  T_EQ_INT(p.signature.kind, MSS_SIG_NONE);
  T_EQ_STR(p.msisdn, "+358123456789");
  free(xml);
}

static void test_ficom_receipt(void) {
  size_t n;
  char *xml = read_file(FIXTURES "ficom_receipt_req.xml", &n);
  mss_receipt_req q;
  mss_receipt_resp p;
  mss_fault f;

  T_ASSERT(xml != NULL);
  if (!xml) {
    return;
  }
  check_valid_(xml, n, __FILE__, __LINE__);
  T_EQ_INT(mss_soap_parse_receipt_req(xml, n, &q, &f), GW_OK);
  T_EQ_STR(q.mssp_trans_id, "B653");
  T_EQ_INT(q.status.code, 502);
  T_EQ_STR(q.status.message, "VALID_SIGNATURE");
  T_EQ_INT(q.has_message, 1);
  T_ASSERT(strstr(q.message.data, "Welcome to Company Ltd.") != NULL);
  free(xml);
  xml = read_file(FIXTURES "ficom_receipt_resp.xml", &n);
  T_ASSERT(xml != NULL);
  if (!xml) {
    return;
  }
  /* (Not schema-valid as published: MSSP_TransID on MSS_ReceiptResp.) */
  T_EQ_INT(mss_soap_parse_receipt_resp(xml, n, &p, &f), GW_OK);
  T_EQ_INT(p.status.code, 100);
  T_EQ_STR(p.status.message, "REQUEST_OK");
  T_EQ_STR(p.mssp_info.instant, "2003-06-24T21:32:36Z");
  free(xml);
}

static void test_ficom_faults(void) {
  size_t n;
  char *xml = read_file(FIXTURES "ficom_fault.xml", &n);
  mss_fault p;
  static mss_status_resp st;

  T_ASSERT(xml != NULL);
  if (!xml) {
    return;
  }
  T_EQ_INT(mss_soap_parse_fault(xml, n, &p), GW_OK);
  T_EQ_INT(p.code, MSS_FAULT_RECEIVER);
  T_EQ_INT(p.subcode, 208);
  T_EQ_STR(p.reason, "EXPIRED_TRANSACTION");
  T_EQ_STR(p.detail, "");
  T_EQ_INT(mss_soap_parse_status_resp(xml, n, &st, &p), GW_ERR_PROTO);
  T_EQ_INT(p.subcode, 208);
  free(xml);
  xml = read_file(FIXTURES "ficom_fault_specifier.xml", &n);
  T_ASSERT(xml != NULL);
  if (!xml) {
    return;
  }
  T_EQ_INT(mss_soap_parse_fault(xml, n, &p), GW_OK);
  T_EQ_INT(p.code, MSS_FAULT_RECEIVER);
  T_EQ_INT(p.subcode, 101);
  T_EQ_STR(p.reason, "User cancel");
  free(xml);
}

/* ---- what other clients send ---- */

/* As Swisscom's Mobile ID documentation and Laverca write it: other prefixes,
 * a Header, namespaces declared on the Envelope, an empty default namespace
 * on the wrapper, AdditionalServices, fractional seconds with an offset. */
static const char foreign_req[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<soapenv:Envelope "
    "xmlns:soapenv=\"http://www.w3.org/2003/05/soap-envelope\"\n"
    "  xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"\n"
    "  xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
    "  xmlns:etsi=\"http://uri.etsi.org/TS102204/v1.1.2#\">\n"
    " <soapenv:Header/>\n"
    " <soapenv:Body>\n"
    "  <MSS_Signature xmlns=\"\">\n"
    "   <etsi:MSS_SignatureReq MajorVersion=\"1\" MinorVersion=\"2\"\n"
    "      MessagingMode=\"asynchClientServer\" TimeOut=\"+0080\"\n"
    "      xmlns:fi=\"http://mss.ficom.fi/TS102204/v1.0.0#\">\n"
    "    <etsi:AP_Info AP_ID=\"http://demo_ap\" AP_PWD=\"demo\"\n"
    "       AP_TransID=\"AP.TEST.12345.6789\"\n"
    "       Instant=\"2016-06-21T12:00:00.000+02:00\"/>\n"
    "    <etsi:MSSP_Info><etsi:MSSP_ID><etsi:URI>http://mid.swisscom.ch/"
    "</etsi:URI></etsi:MSSP_ID></etsi:MSSP_Info>\n"
    "    <etsi:MobileUser><etsi:MSISDN>+96899000001</etsi:MSISDN>"
    "</etsi:MobileUser>\n"
    "    <etsi:DataToBeSigned MimeType=\"text/plain\" Encoding=\"UTF-8\">"
    "Login &amp; <![CDATA[<ok>]]>&#x20AC;</etsi:DataToBeSigned>\n"
    "    <etsi:SignatureProfile><etsi:mssURI>http://mid.swisscom.ch/MID/v1/"
    "AuthProfile1</etsi:mssURI></etsi:SignatureProfile>\n"
    "    <etsi:AdditionalServices><etsi:Service><etsi:Description>"
    "<etsi:mssURI>http://mss.ficom.fi/TS102204/v1.0.0#userLang</etsi:mssURI>"
    "</etsi:Description><fi:UserLang>ar</fi:UserLang></etsi:Service>"
    "</etsi:AdditionalServices>\n"
    "    "
    "<etsi:MSS_Format><etsi:mssURI>http://mss.ficom.fi/TS102204/v1.0.0#PKCS1"
    "</etsi:mssURI></etsi:MSS_Format>\n"
    "   </etsi:MSS_SignatureReq>\n"
    "  </MSS_Signature>\n"
    " </soapenv:Body>\n"
    "</soapenv:Envelope>\n";

static void test_foreign_client_request(void) {
  mss_signature_req p;
  mss_fault f;
  char *nowrap;

  check_valid_(foreign_req, strlen(foreign_req), __FILE__, __LINE__);
  T_EQ_INT(
      mss_soap_parse_signature_req(foreign_req, strlen(foreign_req), &p, &f),
      GW_OK);
  T_EQ_INT(p.minor_version, 2);
  T_EQ_INT(p.timeout, 80);
  T_EQ_STR(p.ap_info.ap_trans_id, "AP.TEST.12345.6789");
  T_EQ_STR(p.ap_info.instant, "2016-06-21T12:00:00.000+02:00");
  T_EQ_STR(p.mssp_info.id, "http://mid.swisscom.ch/");
  T_EQ_STR(p.data_to_be_signed.data, "Login & <ok>\xE2\x82\xAC");
  T_EQ_STR(p.mss_format, MSS_FORMAT_PKCS1);
  T_EQ_STR(p.signature_profile, "http://mid.swisscom.ch/MID/v1/AuthProfile1");
  T_EQ_INT(p.messaging_mode, MSS_MODE_ASYNCH_CLIENT_SERVER);

  /* No wrapper at all: the message directly in the Body. */
  nowrap = replace(foreign_req, "<MSS_Signature xmlns=\"\">", "");
  {
    char *tmp = replace(nowrap, "</MSS_Signature>", "");

    free(nowrap);
    nowrap = tmp;
  }
  T_EQ_INT(mss_soap_parse_signature_req(nowrap, strlen(nowrap), &p, &f), GW_OK);
  T_EQ_STR(p.msisdn, "+96899000001");
  free(nowrap);

  /* (The default-namespace form is covered by the FiCom examples.) */
}

/* ---- hostile input ---- */

static void test_truncated(void) {
  char *req = built_sig_req();
  size_t n = strlen(req), cut;
  mss_signature_req p;
  mss_fault f;
  int rc;

  for (cut = 0; cut < n - 1; cut += 13) {
    rc = mss_soap_parse_signature_req(req, cut, &p, &f);
    if (rc == GW_OK) {
      printf("#   truncated at %zu parsed\n", cut);
      t_case_failed = 1;
    }
    T_EQ_INT(f.code, MSS_FAULT_SENDER);
  }
  /* The final newline is not needed. */
  T_EQ_INT(mss_soap_parse_signature_req(req, n - 1, &p, &f), GW_OK);
  free(req);
  SIG_REQ_FAILS("", GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE);
  SIG_REQ_FAILS("\x01\x02\xff\xfe garbage", GW_ERR_INVALID,
                MSS_INCOMPATIBLE_INTERFACE);
  SIG_REQ_FAILS("<a/>", GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE);
  {
    mss_signature_req q;
    mss_fault g;

    T_EQ_INT(mss_soap_parse_signature_req(NULL, 0, &q, &g), GW_ERR_INVALID);
    /* A NUL inside the input. */
    T_EQ_INT(mss_soap_parse_signature_req("<a>\0</a>", 8, &q, &g),
             GW_ERR_INVALID);
  }
}

static void test_wrong_namespace_and_envelope(void) {
  /* Another version of the ETSI namespace. */
  MUTATED_FAILS("xmlns:mss=\"http://uri.etsi.org/TS102204/v1.1.2#\"",
                "xmlns:mss=\"http://uri.etsi.org/TS102204/v1.1.1#\"",
                MSS_INCOMPATIBLE_INTERFACE);
  /* A SOAP 1.1 envelope. */
  MUTATED_FAILS("http://www.w3.org/2003/05/soap-envelope",
                "http://schemas.xmlsoap.org/soap/envelope/",
                MSS_INCOMPATIBLE_INTERFACE);
  /* Body missing (renamed). */
  MUTATED_FAILS("<env:Body>", "<env:Bodx>", MSS_INCOMPATIBLE_INTERFACE);
  /* Another message where a signature request is expected. */
  {
    mss_status_req r;
    mss_signature_req p;
    mss_fault f;
    gw_buf b;

    memset(&r, 0, sizeof(r));
    fill_ap(&r.ap_info);
    strcpy(r.mssp_trans_id, "x1");
    gw_buf_init(&b, 1 << 16);
    T_EQ_INT(mss_soap_build_status_req(&r, &b), GW_OK);
    T_EQ_INT(mss_soap_parse_signature_req(b.data, b.len, &p, &f),
             GW_ERR_INVALID);
    T_EQ_INT(f.subcode, MSS_INCOMPATIBLE_INTERFACE);
    gw_buf_free(&b);
  }
  /* Empty Body, empty wrapper. */
  SIG_REQ_FAILS(
      "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\">"
      "<e:Body/></e:Envelope>",
      GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE);
  SIG_REQ_FAILS(
      "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\">"
      "<e:Body><MSS_Signature/></e:Body></e:Envelope>",
      GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE);
  /* MajorVersion 2 is another interface; MinorVersion is recorded. */
  MUTATED_FAILS("MajorVersion=\"1\"", "MajorVersion=\"2\"",
                MSS_INCOMPATIBLE_INTERFACE);
  MUTATED_FAILS("MajorVersion=\"1\"", "MajorVersion=\"one\"", MSS_WRONG_PARAM);
}

static void test_missing_elements(void) {
  MUTATED_FAILS("<mss:AP_Info ", "<mss:AP_Infx ", MSS_MISSING_PARAM);
  MUTATED_FAILS("AP_PWD=\"demo-secret\"", "", MSS_MISSING_PARAM);
  MUTATED_FAILS("AP_TransID=\"_tx-0001\"", "", MSS_MISSING_PARAM);
  MUTATED_FAILS("Instant=\"2024-05-01T10:00:00Z\"", "", MSS_MISSING_PARAM);
  MUTATED_FAILS("AP_ID=\"http://demo_ap\"", "", MSS_MISSING_PARAM);
  MUTATED_FAILS("<mss:MSSP_Info>", "<mss:MSSP_Infx>", MSS_INCOMPATIBLE_INTERFACE
                /* mismatched tags: not well-formed */);
  MUTATED_FAILS("<mss:MSISDN>+96899000001</mss:MSISDN>", "", MSS_MISSING_PARAM);
  MUTATED_FAILS("<mss:MSISDN>+96899000001</mss:MSISDN>",
                "<mss:MSISDN> </mss:MSISDN>", MSS_MISSING_PARAM);
  MUTATED_FAILS("<mss:MobileUser>", "<mss:MobileUsex>",
                MSS_INCOMPATIBLE_INTERFACE);
  MUTATED_FAILS("MessagingMode=\"asynchClientServer\"", "", MSS_MISSING_PARAM);
  MUTATED_FAILS("MajorVersion=\"1\"", "", MSS_MISSING_PARAM);
  {
    char *base = built_sig_req();
    char *a = replace(base, "<mss:DataToBeSigned", "<mss:DataToBeSignex");
    char *b = replace(a, "</mss:DataToBeSigned>", "</mss:DataToBeSignex>");

    SIG_REQ_FAILS(b, GW_ERR_INVALID, MSS_MISSING_PARAM);
    free(b);
    free(a);
    a = replace(base,
                "<mss:MSSP_Info>\n<mss:MSSP_ID><mss:URI>http://omantel.om/"
                "mssp</mss:URI></mss:MSSP_ID>\n</mss:MSSP_Info>\n",
                "");
    SIG_REQ_FAILS(a, GW_ERR_INVALID, MSS_MISSING_PARAM);
    free(a);
    a = replace(base, "<mss:MSS_Format><mss:mssURI>",
                "<mss:MSS_Format><mss:x>");
    b = replace(a, "</mss:mssURI></mss:MSS_Format>",
                "</mss:x></mss:MSS_Format>");
    SIG_REQ_FAILS(b, GW_ERR_INVALID, MSS_MISSING_PARAM);
    free(b);
    free(a);
    free(base);
  }
}

static void test_bad_values(void) {
  char attr[80];

  MUTATED_FAILS("AP_TransID=\"_tx-0001\"", "AP_TransID=\"1abc\"",
                MSS_WRONG_PARAM);
  MUTATED_FAILS("AP_TransID=\"_tx-0001\"", "AP_TransID=\"a b\"",
                MSS_WRONG_PARAM);
  MUTATED_FAILS("AP_TransID=\"_tx-0001\"", "AP_TransID=\"\"", MSS_WRONG_PARAM);
  MUTATED_FAILS("AP_TransID=\"_tx-0001\"", "AP_TransID=\"a:b\"",
                MSS_WRONG_PARAM);
  snprintf(attr, sizeof(attr), "AP_TransID=\"%s\"",
           "a23456789012345678901234567890123"); /* 33 characters */
  MUTATED_FAILS("AP_TransID=\"_tx-0001\"", attr, MSS_WRONG_PARAM);
  snprintf(attr, sizeof(attr), "AP_TransID=\"%s\"",
           "a2345678901234567890123456789012"); /* 32 characters: fine */
  {
    char *base = built_sig_req();
    char *ok = replace(base, "AP_TransID=\"_tx-0001\"", attr);
    mss_signature_req p;
    mss_fault f;

    T_EQ_INT(mss_soap_parse_signature_req(ok, strlen(ok), &p, &f), GW_OK);
    free(ok);
    free(base);
  }
  MUTATED_FAILS("Instant=\"2024-05-01T10:00:00Z\"", "Instant=\"yesterday\"",
                MSS_WRONG_PARAM);
  MUTATED_FAILS("MessagingMode=\"asynchClientServer\"",
                "MessagingMode=\"sync\"", MSS_WRONG_PARAM);
  MUTATED_FAILS("MessagingMode=\"asynchClientServer\"",
                "MessagingMode=\" synch\"", MSS_WRONG_PARAM);
  MUTATED_FAILS("TimeOut=\"80\"", "TimeOut=\"0\"", MSS_WRONG_PARAM);
  MUTATED_FAILS("TimeOut=\"80\"", "TimeOut=\"-5\"", MSS_WRONG_PARAM);
  MUTATED_FAILS("TimeOut=\"80\"", "TimeOut=\"8O\"", MSS_WRONG_PARAM);
  MUTATED_FAILS("TimeOut=\"80\"", "TimeOut=\"\"", MSS_WRONG_PARAM);
  MUTATED_FAILS(
      "<mss:MSISDN>+96899000001</mss:MSISDN>",
      "<mss:MSISDN>+968990000011234567890123456789012345</mss:MSISDN>",
      MSS_WRONG_PARAM);
  {
    /* A huge TimeOut is a valid positiveInteger: clamped, not refused. */
    char *base = built_sig_req();
    char *big =
        replace(base, "TimeOut=\"80\"", "TimeOut=\"99999999999999999999999\"");
    mss_signature_req p;
    mss_fault f;

    T_EQ_INT(mss_soap_parse_signature_req(big, strlen(big), &p, &f), GW_OK);
    T_ASSERT(p.timeout > 1000000000u);
    free(big);
    free(base);
  }
}

static void test_data_too_long(void) {
  char *base = built_sig_req();
  char *text = malloc(MSS_DATA_MAX + 2), *bad;
  char *attr = malloc(MSS_DATA_MAX + 100);

  memset(text, 'x', MSS_DATA_MAX + 1);
  text[MSS_DATA_MAX + 1] = '\0';
  /* DataToBeSigned's content grows by MSS_DATA_MAX + 1 bytes. */
  snprintf(attr, MSS_DATA_MAX + 100, "Encoding=\"UTF-8\">%s", text);
  bad = replace(base, "Encoding=\"UTF-8\">Sign in to ", attr);
  SIG_REQ_FAILS(bad, GW_ERR_INVALID, MSS_WRONG_DATA_LENGTH);
  free(bad);
  free(attr);
  free(text);
  free(base);
}

static void test_huge_input(void) {
  size_t n = MSS_SOAP_MAX_INPUT + 1;
  char *big = malloc(n + 1);
  mss_signature_req p;
  mss_fault f;
  mss_msg type;

  memset(big, ' ', n);
  memcpy(big, "<?xml version=\"1.0\"?>", 21);
  big[n] = '\0';
  T_EQ_INT(mss_soap_parse_signature_req(big, n, &p, &f), GW_ERR_TOO_LARGE);
  T_EQ_INT(f.subcode, MSS_WRONG_DATA_LENGTH);
  T_EQ_INT(mss_soap_parse_fault(big, n, &f), GW_ERR_TOO_LARGE);
  T_EQ_INT(mss_soap_peek(big, n, &type), GW_ERR_TOO_LARGE);
  free(big);
}

static void test_doctype_and_entities(void) {
  static const char laughs[] =
      "<?xml version=\"1.0\"?>\n"
      "<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
      "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
      "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
      "<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]>\n"
      "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\">"
      "<env:Body><MSS_Signature><mss:MSS_SignatureReq xmlns:mss=\"" MSS_NS
      "\">&lol4;</mss:MSS_SignatureReq></MSS_Signature></env:Body>"
      "</env:Envelope>";
  static const char xxe[] =
      "<?xml version=\"1.0\"?>\n"
      "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n"
      "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\">"
      "<env:Body><env:Fault><env:Code><env:Value>env:Sender</env:Value>"
      "</env:Code><env:Reason><env:Text xml:lang=\"en\">&e;</env:Text>"
      "</env:Reason></env:Fault></env:Body></env:Envelope>";
  static const char ext_dtd[] =
      "<?xml version=\"1.0\"?>\n"
      "<!DOCTYPE env:Envelope SYSTEM \"http://127.0.0.1:1/evil.dtd\">\n"
      "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\">"
      "<env:Body/></env:Envelope>";
  mss_fault f;
  mss_msg type;

  SIG_REQ_FAILS(laughs, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE);
  SIG_REQ_FAILS(xxe, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE);
  SIG_REQ_FAILS(ext_dtd, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE);
  T_EQ_INT(mss_soap_parse_fault(xxe, strlen(xxe), &f), GW_ERR_INVALID);
  T_EQ_STR(f.reason, "");
  T_EQ_INT(mss_soap_peek(laughs, strlen(laughs), &type), GW_ERR_INVALID);
  {
    mss_signature_req p;

    memset(&f, 0, sizeof(f));
    mss_soap_parse_signature_req(xxe, strlen(xxe), &p, &f);
    T_ASSERT(strstr(f.detail, "DOCTYPE") != NULL);
  }
  /* An undeclared entity reference is not well-formed. */
  MUTATED_FAILS("Sign in to ", "&undefined; ", MSS_INCOMPATIBLE_INTERFACE);
}

static char *nested(size_t depth) {
  static const char head[] =
      "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\">"
      "<env:Body><MSS_Signature><mss:MSS_SignatureReq xmlns:mss=\"" MSS_NS
      "\" MajorVersion=\"1\" MinorVersion=\"1\" MessagingMode=\"synch\">";
  static const char tail[] =
      "</mss:MSS_SignatureReq></MSS_Signature></env:Body></env:Envelope>";
  size_t hl = strlen(head), tl = strlen(tail), i;
  char *s = malloc(hl + depth * 7 + tl + 1), *p = s;

  memcpy(p, head, hl);
  p += hl;
  for (i = 0; i < depth; i++) {
    memcpy(p, "<a>", 3);
    p += 3;
  }
  for (i = 0; i < depth; i++) {
    memcpy(p, "</a>", 4);
    p += 4;
  }
  memcpy(p, tail, tl + 1);
  return s;
}

static void test_deep_nesting(void) {
  char *s;

  s = nested(100);
  SIG_REQ_FAILS(s, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE);
  free(s);
  s = nested(20000); /* beyond libxml2's own limit too */
  SIG_REQ_FAILS(s, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE);
  free(s);
  s = nested(10); /* shallow: fails only for the missing AP_Info */
  SIG_REQ_FAILS(s, GW_ERR_INVALID, MSS_MISSING_PARAM);
  free(s);
}

static void test_bad_signature_payloads(void) {
  static mss_signature_resp r, p;
  mss_fault f;
  gw_buf b;
  char *bad;

  memset(&r, 0, sizeof(r));
  fill_ap(&r.ap_info);
  strcpy(r.mssp_trans_id, "m1");
  r.status.code = 500;
  r.signature.kind = MSS_SIG_PKCS7;
  r.signature.len = 3;
  memcpy(r.signature.sig, "abc", 3);
  gw_buf_init(&b, 1 << 16);
  T_EQ_INT(mss_soap_build_signature_resp(&r, &b), GW_OK);
  bad = replace(b.data, ">YWJj<", ">YW*j<");
  memset(&f, 0, sizeof(f));
  T_EQ_INT(mss_soap_parse_signature_resp(bad, strlen(bad), &p, &f),
           GW_ERR_INVALID);
  T_EQ_INT(f.subcode, MSS_WRONG_PARAM);
  free(bad);
  bad = replace(b.data, "MSSP_TransID=\"m1\"", "MSSP_TransID=\"9x\"");
  T_EQ_INT(mss_soap_parse_signature_resp(bad, strlen(bad), &p, &f),
           GW_ERR_INVALID);
  T_EQ_INT(f.subcode, MSS_WRONG_PARAM);
  free(bad);
  bad = replace(b.data, "MSSP_TransID=\"m1\"", "");
  T_EQ_INT(mss_soap_parse_signature_resp(bad, strlen(bad), &p, &f),
           GW_ERR_INVALID);
  T_EQ_INT(f.subcode, MSS_MISSING_PARAM);
  free(bad);
  bad = replace(b.data, "<mss:StatusCode Value=\"500\"/>",
                "<mss:StatusCode Value=\"5OO\"/>");
  T_EQ_INT(mss_soap_parse_signature_resp(bad, strlen(bad), &p, &f),
           GW_ERR_INVALID);
  T_EQ_INT(f.subcode, MSS_WRONG_PARAM);
  free(bad);
  /* An XMLSignature (or another extension) is recognised, not decoded. */
  bad = replace(
      b.data, "<mss:Base64Signature>YWJj</mss:Base64Signature>",
      "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"/>");
  T_EQ_INT(mss_soap_parse_signature_resp(bad, strlen(bad), &p, &f), GW_OK);
  T_EQ_INT(p.signature.kind, MSS_SIG_OTHER);
  T_EQ_INT(p.signature.len, 0);
  free(bad);
  gw_buf_free(&b);
}

/* ---- builders refuse what would not be schema-valid ---- */

static void test_builder_errors(void) {
  mss_signature_req r;
  static mss_signature_resp s;
  gw_buf b;

  gw_buf_init(&b, 1 << 16);
  T_EQ_INT(gw_buf_puts(&b, "keep"), GW_OK);
  fill_sig_req(&r);
  strcpy(r.ap_info.ap_trans_id, "1bad");
  T_EQ_INT(mss_soap_build_signature_req(&r, &b), GW_ERR_INVALID);
  T_EQ_STR(gw_buf_cstr(&b), "keep"); /* restored */
  fill_sig_req(&r);
  r.msisdn[0] = '\0';
  T_EQ_INT(mss_soap_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  r.messaging_mode = MSS_MODE_NONE;
  T_EQ_INT(mss_soap_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  strcpy(r.ap_info.instant, "2024-05-01");
  T_EQ_INT(mss_soap_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  r.ap_info.ap_id[0] = '\0';
  T_EQ_INT(mss_soap_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  r.data_to_be_signed.data[3] = '\x01'; /* not an XML 1.0 character */
  T_EQ_INT(mss_soap_build_signature_req(&r, &b), GW_ERR_INVALID);
  fill_sig_req(&r);
  r.data_to_be_displayed.data[0] = '\xC3'; /* broken UTF-8 */
  r.data_to_be_displayed.data[1] = 'x';
  T_EQ_INT(mss_soap_build_signature_req(&r, &b), GW_ERR_INVALID);
  T_EQ_STR(gw_buf_cstr(&b), "keep");
  /* The builder appends. */
  fill_sig_req(&r);
  T_EQ_INT(mss_soap_build_signature_req(&r, &b), GW_OK);
  T_ASSERT(strncmp(b.data, "keep<?xml", 9) == 0);
  gw_buf_free(&b);

  /* A buffer too small: GW_ERR_TOO_LARGE, content kept. */
  gw_buf_init(&b, 300);
  T_EQ_INT(gw_buf_puts(&b, "x"), GW_OK);
  T_EQ_INT(mss_soap_build_signature_req(&r, &b), GW_ERR_TOO_LARGE);
  T_EQ_STR(gw_buf_cstr(&b), "x");
  gw_buf_free(&b);

  gw_buf_init(&b, 1 << 16);
  memset(&s, 0, sizeof(s));
  fill_ap(&s.ap_info);
  strcpy(s.mssp_trans_id, "m1");
  T_EQ_INT(mss_soap_build_signature_resp(&s, &b), GW_ERR_INVALID); /* no code */
  s.status.code = 500;
  s.signature.kind = MSS_SIG_PKCS1;
  s.signature.len = 64;
  T_EQ_INT(mss_soap_build_signature_resp(&s, &b), GW_ERR_INVALID); /* no cert */
  s.signature.kind = MSS_SIG_OTHER;
  T_EQ_INT(mss_soap_build_signature_resp(&s, &b), GW_ERR_INVALID);
  s.signature.kind = MSS_SIG_PKCS7;
  s.signature.len = 0;
  T_EQ_INT(mss_soap_build_signature_resp(&s, &b), GW_ERR_INVALID);
  s.signature.kind = MSS_SIG_NONE;
  s.mssp_trans_id[0] = '\0';
  T_EQ_INT(mss_soap_build_signature_resp(&s, &b), GW_ERR_INVALID);
  strcpy(s.mssp_trans_id, "m1");
  T_EQ_INT(mss_soap_build_signature_resp(&s, &b), GW_OK);
  T_EQ_INT(b.len, strlen(b.data));
  gw_buf_free(&b);
}

static void test_schema_catches_invalid(void) {
  char *base, *bad;
  char err[512];

  if (!schema) {
    printf("# skip: no schemas\n");
    return;
  }
  base = built_sig_req();
  T_EQ_INT(
      mss_soap_schema_validate(schema, base, strlen(base), err, sizeof(err)),
      GW_OK);
  /* AP_PWD is required by the schema. */
  bad = replace(base, "AP_PWD=\"demo-secret\"", "");
  T_EQ_INT(mss_soap_schema_validate(schema, bad, strlen(bad), err, sizeof(err)),
           GW_ERR_INVALID);
  T_ASSERT(strstr(err, "AP_PWD") != NULL);
  free(bad);
  /* Elements out of order. */
  bad = replace(base, "<mss:MSSP_Info>", "<mss:Bogus/><mss:MSSP_Info>");
  T_EQ_INT(mss_soap_schema_validate(schema, bad, strlen(bad), NULL, 0),
           GW_ERR_INVALID);
  free(bad);
  /* Not XML at all. */
  T_EQ_INT(mss_soap_schema_validate(schema, "<x", 2, err, sizeof(err)),
           GW_ERR_INVALID);
  free(base);
}

int main(void) {
  const char *dir = getenv("MSS_SCHEMA_DIR");
  struct stat st;
  int rc;

  mss_soap_init();
  if (!dir) {
    dir = "../shared/specs/etsi-ts-102-204";
  }
  if (stat(dir, &st) != 0) {
    printf("# skip: schemas not found at %s\n", dir);
  } else {
    rc = mss_soap_schema_new(&schema, dir);
    if (rc != GW_OK) {
      printf("not ok - schema_load: %s: %s\n", dir, gw_strerror(rc));
      return 1;
    }
  }
  T_RUN(test_signature_req_roundtrip);
  T_RUN(test_signature_req_minimal);
  T_RUN(test_signature_resp_async_no_password);
  T_RUN(test_signature_resp_synch_pkcs7);
  T_RUN(test_status_req_roundtrip);
  T_RUN(test_status_resp_outstanding_and_pkcs1);
  T_RUN(test_receipt_roundtrip);
  T_RUN(test_fault_every_code);
  T_RUN(test_response_parsers_see_faults);
  T_RUN(test_ficom_signature_req);
  T_RUN(test_ficom_signature_resp);
  T_RUN(test_ficom_status);
  T_RUN(test_ficom_receipt);
  T_RUN(test_ficom_faults);
  T_RUN(test_foreign_client_request);
  T_RUN(test_truncated);
  T_RUN(test_wrong_namespace_and_envelope);
  T_RUN(test_missing_elements);
  T_RUN(test_bad_values);
  T_RUN(test_data_too_long);
  T_RUN(test_huge_input);
  T_RUN(test_doctype_and_entities);
  T_RUN(test_deep_nesting);
  T_RUN(test_bad_signature_payloads);
  T_RUN(test_builder_errors);
  T_RUN(test_schema_catches_invalid);
  mss_soap_schema_del(schema);
  return T_DONE();
}
