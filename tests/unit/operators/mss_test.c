/* Tests for operators/mss.c: status codes, modes, helpers, display rule. */
#include <stdlib.h>
#include <string.h>

#include "gw_err.h"
#include "harness.h"
#include "mss.h"

static void test_status_names(void) {
  T_EQ_STR(mss_status_name(MSS_REQUEST_OK), "REQUEST_OK");
  T_EQ_STR(mss_status_name(101), "WRONG_PARAM");
  T_EQ_STR(mss_status_name(102), "MISSING_PARAM");
  T_EQ_STR(mss_status_name(107), "INAPPROPRIATE_DATA");
  T_EQ_STR(mss_status_name(108), "INCOMPATIBLE_INTERFACE");
  T_EQ_STR(mss_status_name(208), "EXPIRED_TRANSACTION");
  T_EQ_STR(mss_status_name(401), "USER_CANCEL");
  T_EQ_STR(mss_status_name(402), "PIN_NR_BLOCKED");
  T_EQ_STR(mss_status_name(406), "PB_SIGNATURE_PROCESS");
  T_EQ_STR(mss_status_name(422), "NO_CERT_FOUND");
  T_EQ_STR(mss_status_name(500), "SIGNATURE");
  T_EQ_STR(mss_status_name(501), "REVOKED_CERTIFICATE");
  T_EQ_STR(mss_status_name(502), "VALID_SIGNATURE");
  T_EQ_STR(mss_status_name(503), "INVALID_SIGNATURE");
  T_EQ_STR(mss_status_name(504), "OUTSTANDING_TRANSACTION");
  T_EQ_STR(mss_status_name(900), "INTERNAL_ERROR");
  T_EQ_STR(mss_status_name(106), "UNKNOWN");
  T_EQ_STR(mss_status_name(0), "UNKNOWN");
  T_EQ_STR(mss_status_name(-1), "UNKNOWN");
  T_EQ_INT(MSS_EXPIRED_TRANSACTION, 208);
  T_EQ_INT(MSS_USER_CANCEL, 401);
  T_EQ_INT(MSS_PIN_NR_BLOCKED, 402);
  T_EQ_INT(MSS_INTERNAL_ERROR, 900);
}

static void test_status_from_name_roundtrip(void) {
  static const int codes[] = {100, 101, 102, 103, 104, 105, 107, 108, 109, 208,
                              209, 401, 402, 403, 404, 405, 406, 407, 422, 423,
                              424, 425, 500, 501, 502, 503, 504, 505, 900};
  size_t i;

  for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    T_ASSERT(mss_status_is_known(codes[i]));
    T_EQ_INT(mss_status_from_name(mss_status_name(codes[i])), codes[i]);
  }
  T_EQ_INT(mss_status_from_name("UNKNOWN"), -1);
  T_EQ_INT(mss_status_from_name("user_cancel"), -1);
  T_EQ_INT(mss_status_from_name(NULL), -1);
  T_ASSERT(!mss_status_is_known(106));
}

static void test_status_is_fault(void) {
  T_ASSERT(!mss_status_is_fault(MSS_REQUEST_OK));
  T_ASSERT(!mss_status_is_fault(MSS_SIGNATURE));
  T_ASSERT(!mss_status_is_fault(MSS_REVOKED_CERTIFICATE));
  T_ASSERT(!mss_status_is_fault(MSS_VALID_SIGNATURE));
  T_ASSERT(!mss_status_is_fault(MSS_INVALID_SIGNATURE));
  T_ASSERT(!mss_status_is_fault(MSS_OUTSTANDING_TRANSACTION));
  T_ASSERT(!mss_status_is_fault(MSS_CONSTRAINT_MISMATCH));
  T_ASSERT(mss_status_is_fault(MSS_WRONG_PARAM));
  T_ASSERT(mss_status_is_fault(MSS_EXPIRED_TRANSACTION));
  T_ASSERT(mss_status_is_fault(MSS_USER_CANCEL));
  T_ASSERT(mss_status_is_fault(MSS_PIN_NR_BLOCKED));
  T_ASSERT(mss_status_is_fault(MSS_NO_KEY_FOUND));
  T_ASSERT(mss_status_is_fault(MSS_INTERNAL_ERROR));
  T_ASSERT(mss_status_is_fault(750)); /* roaming, unknown to us */
  T_ASSERT(!mss_status_is_fault(0));
  T_ASSERT(!mss_status_is_fault(-5));
}

static void test_modes(void) {
  mss_mode m = MSS_MODE_NONE;

  T_EQ_STR(mss_mode_name(MSS_MODE_SYNCH), "synch");
  T_EQ_STR(mss_mode_name(MSS_MODE_ASYNCH_CLIENT_SERVER), "asynchClientServer");
  T_EQ_STR(mss_mode_name(MSS_MODE_ASYNCH_SERVER_SERVER), "asynchServerServer");
  T_ASSERT(mss_mode_name(MSS_MODE_NONE) == NULL);
  T_ASSERT(mss_mode_name((mss_mode)7) == NULL);
  T_EQ_INT(mss_mode_parse("asynchClientServer", &m), GW_OK);
  T_EQ_INT(m, MSS_MODE_ASYNCH_CLIENT_SERVER);
  T_EQ_INT(mss_mode_parse("synch", &m), GW_OK);
  T_EQ_INT(m, MSS_MODE_SYNCH);
  T_EQ_INT(mss_mode_parse("Synch", &m), GW_ERR_INVALID);
  T_EQ_INT(mss_mode_parse(" synch", &m), GW_ERR_INVALID);
  T_EQ_INT(mss_mode_parse("", &m), GW_ERR_INVALID);
  T_EQ_INT(mss_mode_parse(NULL, &m), GW_ERR_INVALID);
  T_EQ_INT(m, MSS_MODE_SYNCH); /* untouched on error */
  T_EQ_STR(mss_msg_name(MSS_MSG_STATUS_RESP), "MSS_StatusResp");
  T_EQ_STR(mss_msg_name(MSS_MSG_FAULT), "Fault");
  T_EQ_STR(mss_msg_name(MSS_MSG_NONE), "NONE");
}

static void test_fault_set(void) {
  mss_fault f;
  char longtext[MSS_FAULT_DETAIL_MAX + 50];
  size_t i;

  mss_fault_set(&f, MSS_WRONG_PARAM, "AP_TransID reused");
  T_EQ_INT(f.code, MSS_FAULT_SENDER);
  T_EQ_INT(f.subcode, 101);
  T_EQ_STR(f.reason, "WRONG_PARAM");
  T_EQ_STR(f.detail, "AP_TransID reused");
  T_EQ_STR(mss_fault_code_name(f.code), "env:Sender");
  mss_fault_set(&f, MSS_USER_CANCEL, NULL);
  T_EQ_INT(f.code, MSS_FAULT_RECEIVER);
  T_EQ_STR(f.reason, "USER_CANCEL");
  T_EQ_STR(f.detail, "");
  T_EQ_STR(mss_fault_code_name(f.code), "env:Receiver");
  T_EQ_INT(mss_fault_code_for(108), MSS_FAULT_SENDER);
  T_EQ_INT(mss_fault_code_for(109), MSS_FAULT_RECEIVER);
  T_EQ_INT(mss_fault_code_for(208), MSS_FAULT_RECEIVER);
  T_EQ_INT(mss_fault_code_for(402), MSS_FAULT_RECEIVER);
  T_EQ_INT(mss_fault_code_for(900), MSS_FAULT_RECEIVER);
  T_ASSERT(mss_fault_code_name((mss_fault_code)0) == NULL);
  /* A long detail is cut on a UTF-8 boundary: "é" is two bytes. */
  for (i = 0; i + 1 < sizeof(longtext); i += 2) {
    longtext[i] = (char)0xC3;
    longtext[i + 1] = (char)0xA9;
  }
  longtext[sizeof(longtext) - 1] = '\0';
  longtext[sizeof(longtext) - 2] = 'x';
  mss_fault_set(&f, 900, longtext);
  T_ASSERT(strlen(f.detail) <= MSS_FAULT_DETAIL_MAX);
  T_EQ_INT(strlen(f.detail) % 2, 0);
  T_ASSERT(((unsigned char)f.detail[strlen(f.detail) - 1] & 0xC0) == 0x80);
}

static void test_ncname(void) {
  char s33[34];

  T_ASSERT(mss_ncname_valid("A1203", MSS_TRANSID_MAX));
  T_ASSERT(mss_ncname_valid("_x-1.2", MSS_TRANSID_MAX));
  T_ASSERT(
      mss_ncname_valid("\xD8\xB9\xD8\xB1\xD8\xA8\xD9\x8A", 32)); /* Arabic */
  T_ASSERT(!mss_ncname_valid("", MSS_TRANSID_MAX));
  T_ASSERT(!mss_ncname_valid("1abc", MSS_TRANSID_MAX));
  T_ASSERT(!mss_ncname_valid("-abc", MSS_TRANSID_MAX));
  T_ASSERT(!mss_ncname_valid(".abc", MSS_TRANSID_MAX));
  T_ASSERT(!mss_ncname_valid("a:b", MSS_TRANSID_MAX));
  T_ASSERT(!mss_ncname_valid("a b", MSS_TRANSID_MAX));
  T_ASSERT(!mss_ncname_valid("a\xC3", MSS_TRANSID_MAX)); /* bad UTF-8 */
  T_ASSERT(!mss_ncname_valid(NULL, MSS_TRANSID_MAX));
  memset(s33, 'a', 33);
  s33[33] = '\0';
  T_ASSERT(!mss_ncname_valid(s33, MSS_TRANSID_MAX));
  s33[32] = '\0';
  T_ASSERT(mss_ncname_valid(s33, MSS_TRANSID_MAX));
}

static void test_instant(void) {
  char buf[MSS_INSTANT_MAX + 1];

  T_ASSERT(mss_instant_valid("2003-06-24T21:32:00Z"));
  T_ASSERT(mss_instant_valid("2016-06-21T12:00:00.000+02:00"));
  T_ASSERT(mss_instant_valid("2024-02-29T23:59:59"));
  T_ASSERT(mss_instant_valid("2024-01-01T24:00:00Z"));
  T_ASSERT(!mss_instant_valid("2023-02-29T00:00:00Z"));
  T_ASSERT(!mss_instant_valid("2024-13-01T00:00:00Z"));
  T_ASSERT(!mss_instant_valid("2024-01-01 00:00:00Z"));
  T_ASSERT(!mss_instant_valid("2024-01-01T00:00:00ZZ"));
  T_ASSERT(!mss_instant_valid("2024-01-01T24:00:01Z"));
  T_ASSERT(!mss_instant_valid("2024-01-01T00:00:00+15:00"));
  T_ASSERT(!mss_instant_valid("2024-01-01T00:00:00."));
  T_ASSERT(!mss_instant_valid("yesterday"));
  T_ASSERT(!mss_instant_valid(""));
  T_ASSERT(!mss_instant_valid(NULL));
  T_EQ_INT(mss_instant_format(1056490320, buf, sizeof(buf)), GW_OK);
  T_EQ_STR(buf, "2003-06-24T21:32:00Z");
  T_ASSERT(mss_instant_valid(buf));
  T_EQ_INT(mss_instant_format(0, buf, 20), GW_ERR_TOO_LARGE);
}

static void test_base64(void) {
  gw_buf b;
  unsigned char out[16];
  size_t n = 99;
  const unsigned char bytes[] = {0xFB, 0xFF, 0x00, 0x01};

  gw_buf_init(&b, 64);
  T_EQ_INT(mss_base64_encode("", 0, &b), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "");
  T_EQ_INT(mss_base64_encode("f", 1, &b), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "Zg==");
  gw_buf_reset(&b);
  T_EQ_INT(mss_base64_encode("fo", 2, &b), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "Zm8=");
  gw_buf_reset(&b);
  T_EQ_INT(mss_base64_encode(bytes, 4, &b), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "+/8AAQ==");
  T_EQ_INT(mss_base64_decode(b.data, b.len, out, sizeof(out), &n), GW_OK);
  T_EQ_INT(n, 4);
  T_ASSERT(memcmp(out, bytes, 4) == 0);
  /* Whitespace anywhere, padding optional at the end. */
  T_EQ_INT(mss_base64_decode(" Zm9v\n YmFy\r\n", 13, out, sizeof(out), &n),
           GW_OK);
  T_EQ_INT(n, 6);
  T_ASSERT(memcmp(out, "foobar", 6) == 0);
  T_EQ_INT(mss_base64_decode("Zm8", 3, out, sizeof(out), &n), GW_OK);
  T_EQ_INT(n, 2);
  T_EQ_INT(mss_base64_decode("Zm8=Zm8=", 8, out, sizeof(out), &n),
           GW_ERR_INVALID);
  T_EQ_INT(mss_base64_decode("Z", 1, out, sizeof(out), &n), GW_ERR_INVALID);
  T_EQ_INT(mss_base64_decode("Zm9v_w==", 8, out, sizeof(out), &n),
           GW_ERR_INVALID);
  T_EQ_INT(mss_base64_decode("Zh==", 4, out, sizeof(out), &n),
           GW_ERR_INVALID); /* non-zero trailing bits */
  T_EQ_INT(mss_base64_decode("Zm9vYmFy", 8, out, 5, &n), GW_ERR_TOO_LARGE);
  /* A full buffer is restored on overflow. */
  gw_buf_free(&b);
  gw_buf_init(&b, 5);
  T_EQ_INT(gw_buf_puts(&b, "ab"), GW_OK);
  T_EQ_INT(mss_base64_encode("foo", 3, &b), GW_ERR_TOO_LARGE);
  T_EQ_STR(gw_buf_cstr(&b), "ab");
  gw_buf_free(&b);
}

static void test_data(void) {
  mss_data d;
  unsigned char out[64];
  size_t n;
  static char big[MSS_DATA_MAX + 2];

  T_EQ_INT(mss_data_set(&d, "text/plain", "UTF-8", "hello", 5), GW_OK);
  T_EQ_STR(d.mime_type, "text/plain");
  T_EQ_INT(d.len, 5);
  T_EQ_INT(mss_data_decode(&d, out, sizeof(out), &n), GW_OK);
  T_EQ_INT(n, 5);
  T_ASSERT(memcmp(out, "hello", 5) == 0);
  T_EQ_INT(mss_data_set(&d, "application/x-sha256", "base64", "aGVsbG8=", 8),
           GW_OK);
  T_EQ_INT(mss_data_decode(&d, out, sizeof(out), &n), GW_OK);
  T_EQ_INT(n, 5);
  T_ASSERT(memcmp(out, "hello", 5) == 0);
  T_EQ_INT(mss_data_set(&d, NULL, "BASE64", "a*==", 4), GW_OK);
  T_EQ_STR(d.mime_type, "");
  T_EQ_INT(mss_data_decode(&d, out, sizeof(out), &n), GW_ERR_INVALID);
  T_EQ_INT(mss_data_set(&d, NULL, NULL, "a\0b", 3), GW_ERR_INVALID);
  memset(big, 'x', sizeof(big) - 1);
  T_EQ_INT(mss_data_set(&d, NULL, NULL, big, MSS_DATA_MAX + 1),
           GW_ERR_TOO_LARGE);
  T_EQ_INT(mss_data_set(&d, NULL, NULL, big, MSS_DATA_MAX), GW_OK);
  T_EQ_INT(mss_data_decode(&d, out, sizeof(out), &n), GW_ERR_TOO_LARGE);
}

/* Builds a string of |count| copies of |unit|. */
static char *repeat(const char *unit, size_t count) {
  size_t ul = strlen(unit), i;
  char *s = malloc(ul * count + 1);

  for (i = 0; i < count; i++) {
    memcpy(s + i * ul, unit, ul);
  }
  s[ul * count] = '\0';
  return s;
}

static int fits(const char *s, int *gsm, size_t *units) {
  return mss_display_fits(s, strlen(s), gsm, units);
}

static void test_display_gsm7_basic(void) {
  int gsm = -1;
  size_t units = 0;

  T_ASSERT(fits("Sign in to Bank Muscat? Code 1234", &gsm, &units));
  T_EQ_INT(gsm, 1);
  T_EQ_INT(units, 33);
  /* Non-ASCII characters of the default alphabet count 1. */
  T_ASSERT(fits("\xC3\xA9\xC3\xA8\xC2\xA3\xC2\xA5\xC3\x84\xCE\x94\xCE\xA9",
                &gsm, &units)); /* éè£¥ÄΔΩ */
  T_EQ_INT(gsm, 1);
  T_EQ_INT(units, 7);
  T_ASSERT(fits("line1\nline2\r", &gsm, &units));
  T_EQ_INT(gsm, 1);
  T_EQ_INT(units, 12);
  T_ASSERT(fits("", &gsm, &units));
  T_EQ_INT(gsm, 1);
  T_EQ_INT(units, 0);
}

static void test_display_gsm7_extension(void) {
  int gsm = -1;
  size_t units = 0;

  /* ^ { } \ [ ~ ] | and the euro sign take an escape: 2 septets each. */
  T_ASSERT(fits("^{}\\[~]|", &gsm, &units));
  T_EQ_INT(gsm, 1);
  T_EQ_INT(units, 16);
  T_ASSERT(fits("Pay 5\xE2\x82\xAC", &gsm, &units)); /* "Pay 5€" */
  T_EQ_INT(gsm, 1);
  T_EQ_INT(units, 7);
  T_ASSERT(fits("\f", &gsm, &units));
  T_EQ_INT(units, 2);
}

static void test_display_ucs2(void) {
  int gsm = -1;
  size_t units = 0;

  /* Arabic: "تسجيل الدخول" (sign in), 12 characters. */
  T_ASSERT(fits("\xD8\xAA\xD8\xB3\xD8\xAC\xD9\x8A\xD9\x84 "
                "\xD8\xA7\xD9\x84\xD8\xAF\xD8\xAE\xD9\x88\xD9\x84",
                &gsm, &units));
  T_EQ_INT(gsm, 0);
  T_EQ_INT(units, 12);
  /* One Arabic letter turns the whole text into UCS-2: no escape doubling. */
  T_ASSERT(fits("Code {1234} \xD8\xB1", &gsm, &units));
  T_EQ_INT(gsm, 0);
  T_EQ_INT(units, 13);
  /* Characters outside GSM 03.38: backtick, tab, 'ç' lower-case... */
  T_ASSERT(fits("`", &gsm, &units));
  T_EQ_INT(gsm, 0);
  T_ASSERT(fits("a\tb", &gsm, &units));
  T_EQ_INT(gsm, 0);
  T_ASSERT(fits("\xC3\xA7", &gsm, &units)); /* ç */
  T_EQ_INT(gsm, 0);
  /* A character outside the BMP takes a surrogate pair: 2 units. */
  T_ASSERT(fits("OK \xF0\x9F\x91\x8D", &gsm, &units)); /* thumbs up */
  T_EQ_INT(gsm, 0);
  T_EQ_INT(units, 5);
}

static void test_display_limits(void) {
  int gsm = -1;
  size_t units = 0;
  char *s;

  s = repeat("a", 160);
  T_ASSERT(fits(s, &gsm, &units));
  T_EQ_INT(units, 160);
  free(s);
  s = repeat("a", 161);
  T_ASSERT(!fits(s, &gsm, &units));
  T_EQ_INT(gsm, 1);
  T_EQ_INT(units, 161);
  free(s);
  s = repeat("[", 80); /* 80 extension characters = 160 septets */
  T_ASSERT(fits(s, &gsm, &units));
  T_EQ_INT(units, 160);
  free(s);
  s = repeat("[", 81);
  T_ASSERT(!fits(s, NULL, NULL));
  free(s);
  s = repeat("\xD8\xB3", 70); /* Arabic sin x 70 */
  T_ASSERT(fits(s, &gsm, &units));
  T_EQ_INT(gsm, 0);
  T_EQ_INT(units, 70);
  free(s);
  s = repeat("\xD8\xB3", 71);
  T_ASSERT(!fits(s, &gsm, &units));
  T_EQ_INT(units, 71);
  free(s);
  s = repeat("\xF0\x9F\x91\x8D", 36); /* 72 UTF-16 units */
  T_ASSERT(!fits(s, &gsm, &units));
  T_EQ_INT(units, 72);
  free(s);
}

static void test_display_invalid_utf8(void) {
  int gsm = -1;
  size_t units = 99;

  T_ASSERT(!mss_display_fits("a\xC3", 2, &gsm, &units)); /* truncated */
  T_EQ_INT(units, 0);
  T_EQ_INT(gsm, 0);
  T_ASSERT(!mss_display_fits("\xC0\xAF", 2, &gsm, &units));     /* overlong */
  T_ASSERT(!mss_display_fits("\xED\xA0\x80", 3, &gsm, &units)); /* surrogate */
  T_ASSERT(!mss_display_fits("\xF4\x90\x80\x80", 4, &gsm, &units));
  T_ASSERT(!mss_display_fits("a\0b", 3, &gsm, &units)); /* NUL */
  T_ASSERT(!mss_display_fits(NULL, 3, &gsm, &units));
  /* |n| bounds the text: no NUL terminator needed. */
  T_ASSERT(mss_display_fits("abcdef", 3, &gsm, &units));
  T_EQ_INT(units, 3);
}

int main(void) {
  T_RUN(test_status_names);
  T_RUN(test_status_from_name_roundtrip);
  T_RUN(test_status_is_fault);
  T_RUN(test_modes);
  T_RUN(test_fault_set);
  T_RUN(test_ncname);
  T_RUN(test_instant);
  T_RUN(test_base64);
  T_RUN(test_data);
  T_RUN(test_display_gsm7_basic);
  T_RUN(test_display_gsm7_extension);
  T_RUN(test_display_ucs2);
  T_RUN(test_display_limits);
  T_RUN(test_display_invalid_utf8);
  return T_DONE();
}
