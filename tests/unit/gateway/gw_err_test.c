/* Tests for gateway/gw_err.c. */
#include <limits.h>
#include <string.h>

#include "gw_err.h"
#include "harness.h"

/* Every code from GW_OK down to the last real one has its own text. Run
 * under ASan this also catches a code added to the enum without a line in
 * the table. */
static void test_every_code_has_text(void) {
  for (int e = GW_OK; e > GW_ERR_LAST_; e--) {
    const char *s = gw_strerror(e);

    T_ASSERT(s != NULL);
    if (!s) {
      continue;
    }
    if (s[0] == '\0' || strcmp(s, "unknown error") == 0) {
      printf("#   code %d has text \"%s\"\n", e, s);
    }
    T_ASSERT(s[0] != '\0');
    T_ASSERT(strcmp(s, "unknown error") != 0);
    for (int o = GW_OK; o > e; o--) {
      const char *t = gw_strerror(o);

      if (t && strcmp(s, t) == 0) {
        printf("#   codes %d and %d share \"%s\"\n", e, o, s);
        T_ASSERT(strcmp(s, t) != 0);
      }
    }
  }
  T_EQ_STR(gw_strerror(GW_OK), "success");
  T_EQ_STR(gw_strerror(GW_ERR_NOMEM), "out of memory");
  T_EQ_STR(gw_strerror(GW_ERR_METHOD), "method not allowed");
}

static void test_out_of_range(void) {
  static const int codes[] = {
      1, 2, 100, INT_MAX, GW_ERR_LAST_, GW_ERR_LAST_ - 1, -1000, INT_MIN};

  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    T_EQ_STR(gw_strerror(codes[i]), "unknown error");
  }
}

static void test_is_fatal(void) {
  for (int e = GW_OK; e > GW_ERR_LAST_; e--) {
    int want = e == GW_ERR_NOMEM || e == GW_ERR_INTERNAL;

    if (!gw_err_is_fatal(e) != !want) {
      printf("#   is_fatal(%d) is wrong\n", e);
    }
    T_EQ_INT(!!gw_err_is_fatal(e), want);
  }
  T_EQ_INT(!!gw_err_is_fatal(GW_ERR_LAST_), 0);
  T_EQ_INT(!!gw_err_is_fatal(1), 0);
  T_EQ_INT(!!gw_err_is_fatal(INT_MIN), 0);
}

int main(void) {
  T_RUN(test_every_code_has_text);
  T_RUN(test_out_of_range);
  T_RUN(test_is_fatal);
  return T_DONE();
}
