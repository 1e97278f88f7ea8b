/* mock_handset.c — STUB being replaced (issue 5 helper). */
#include <stdlib.h>

#include "gw_err.h"
#include "mock_handset.h"

struct mock_handset {
  int unused;
};

int mock_handset_new(mock_handset **out) {
  *out = calloc(1, sizeof(**out));
  return *out ? GW_OK : GW_ERR_NOMEM;
}

void mock_handset_del(mock_handset *h) { free(h); }

void mock_handset_changed(mock_handset *h, const char *msisdn) {
  (void)h;
  (void)msisdn;
}

int mock_handset_routes(gw_router *r) {
  (void)r;
  return GW_OK;
}

int mock_handset_code(const uint8_t *digest, size_t n) {
  if (n == 0) {
    return -1;
  }
  return ((digest[0] & 0xFC) << 5) | (digest[n - 1] & 0x7F);
}
