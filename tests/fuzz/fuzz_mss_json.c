/* fuzz_mss_json.c — libFuzzer target for operators/mss_json.c.
 *
 * Every input goes through mss_json_peek, every message parser and
 * mss_json_parse_fault. Beyond the sanitizers, the target checks the
 * documented promises and aborts when one is broken: an error always comes
 * with a fault that can itself be sent as JSON, the output is zeroed on
 * error, and whatever parses and can be built again parses back to the same
 * struct (for responses, but for AP_PWD, which is never echoed).
 *
 * Build with libFuzzer:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Igateway -Ioperators \
 *     tests/fuzz/fuzz_mss_json.c operators/mss.c operators/mss_json.c \
 *     gateway/gw_buf.c gateway/gw_err.c -ljansson -lcrypto -o fuzz_mss_json
 * or with any compiler and tests/fuzz/replay.c to run the corpus once. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_buf.h"
#include "gw_err.h"
#include "mss.h"
#include "mss_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* The promises every parser makes about its result. */
static void check_result(int rc, const mss_fault *f, const void *out,
                         size_t size) {
  const unsigned char *p = out;
  gw_buf b;
  size_t i;

  CHECK(rc == GW_OK || rc == GW_ERR_INVALID || rc == GW_ERR_PROTO ||
        rc == GW_ERR_TOO_LARGE || rc == GW_ERR_NOMEM);
  if (rc == GW_OK) {
    return;
  }
  CHECK(f->subcode > 0 || rc == GW_ERR_PROTO);
  CHECK(f->code == MSS_FAULT_SENDER || f->code == MSS_FAULT_RECEIVER);
  CHECK(memchr(f->reason, '\0', sizeof(f->reason)) != NULL);
  CHECK(memchr(f->detail, '\0', sizeof(f->detail)) != NULL);
  for (i = 0; i < size; i++) {
    CHECK(p[i] == 0);
  }
  /* Our side answers with this fault: it must be buildable (valid UTF-8,
   * even when the detail was cut or names a member of the input). */
  if (f->subcode > 0) {
    gw_buf_init(&b, 1 << 16);
    CHECK(mss_json_build_fault(f, &b) == GW_OK);
    gw_buf_free(&b);
  }
}

/* Every parse / build / re-parse, in one macro per message type.
 * |response|: the builder writes "AP_PWD": "", so the password is left out
 * of the comparison. */
#define ROUND_TRIP(type, parse, build, response)                               \
  do {                                                                         \
    static type a, b;                                                          \
    mss_fault f;                                                               \
    int prc;                                                                   \
    memset(&f, 0, sizeof(f));                                                  \
    prc = parse(json, size, &a, &f);                                           \
    check_result(prc, &f, &a, sizeof(a));                                      \
    if (prc == GW_OK) {                                                        \
      if (a.minor_version == 0) { /* 0 is "default" to the builders */         \
        a.minor_version = MSS_JSON_MINOR_VERSION;                              \
      }                                                                        \
      gw_buf_reset(&out);                                                      \
      if (build(&a, &out) == GW_OK) {                                          \
        prc = parse(out.data, out.len, &b, &f);                                \
        if (prc != GW_OK) {                                                    \
          fprintf(stderr, "re-parse: %d %s\n%s\n", f.subcode, f.detail,        \
                  out.data);                                                   \
        }                                                                      \
        CHECK(prc == GW_OK);                                                   \
        if (response) {                                                        \
          CHECK(b.ap_info.ap_pwd[0] == '\0');                                  \
          memset(a.ap_info.ap_pwd, 0, sizeof(a.ap_info.ap_pwd));               \
        }                                                                      \
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);                                 \
      }                                                                        \
    }                                                                          \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *json = (const char *)data;
  gw_buf out;
  mss_msg type;
  mss_fault fault;
  int rc;

  gw_buf_init(&out, 4 * MSS_JSON_MAX_INPUT);

  rc = mss_json_peek(json, size, &type);
  CHECK(rc == GW_OK || rc == GW_ERR_INVALID || rc == GW_ERR_TOO_LARGE ||
        rc == GW_ERR_NOMEM);
  CHECK(rc == GW_OK || type == MSS_MSG_NONE);

  ROUND_TRIP(mss_signature_req, mss_json_parse_signature_req,
             mss_json_build_signature_req, 0);
  ROUND_TRIP(mss_signature_resp, mss_json_parse_signature_resp,
             mss_json_build_signature_resp, 1);
  ROUND_TRIP(mss_status_req, mss_json_parse_status_req,
             mss_json_build_status_req, 0);
  ROUND_TRIP(mss_status_resp, mss_json_parse_status_resp,
             mss_json_build_status_resp, 1);
  ROUND_TRIP(mss_receipt_req, mss_json_parse_receipt_req,
             mss_json_build_receipt_req, 0);
  ROUND_TRIP(mss_receipt_resp, mss_json_parse_receipt_resp,
             mss_json_build_receipt_resp, 1);

  rc = mss_json_parse_fault(json, size, &fault);
  CHECK(rc == GW_OK || rc == GW_ERR_INVALID || rc == GW_ERR_TOO_LARGE ||
        rc == GW_ERR_NOMEM);
  if (rc == GW_OK) {
    mss_fault again;

    CHECK(type == MSS_MSG_FAULT);
    gw_buf_reset(&out);
    if (mss_json_build_fault(&fault, &out) == GW_OK) {
      CHECK(mss_json_parse_fault(out.data, out.len, &again) == GW_OK);
      CHECK(again.code == fault.code && again.subcode == fault.subcode);
      CHECK(strcmp(again.detail, fault.detail) == 0);
      CHECK(!fault.reason[0] || strcmp(again.reason, fault.reason) == 0);
    }
  }
  gw_buf_free(&out);
  return 0;
}
