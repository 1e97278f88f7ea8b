/* harness.h — a minimal unit-test harness.
 *
 * Each test binary prints one line per check group: "ok - name" or
 * "not ok - name: file:line: expression". tests/run.sh counts the lines; a
 * binary that crashes or exits non-zero counts as one more failure. */
#ifndef TESTS_HARNESS_H
#define TESTS_HARNESS_H

#include <stdio.h>
#include <string.h>

static int t_failed_total;
static int t_case_failed;

#define T_ASSERT(cond)                                                         \
  do {                                                                         \
    if (!(cond)) {                                                             \
      printf("#   %s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);  \
      t_case_failed = 1;                                                       \
    }                                                                          \
  } while (0)

#define T_EQ_INT(a, b)                                                         \
  do {                                                                         \
    long long t_a_ = (long long)(a), t_b_ = (long long)(b);                    \
    if (t_a_ != t_b_) {                                                        \
      printf("#   %s:%d: %s == %lld, expected %s == %lld\n", __FILE__,         \
             __LINE__, #a, t_a_, #b, t_b_);                                    \
      t_case_failed = 1;                                                       \
    }                                                                          \
  } while (0)

#define T_EQ_STR(a, b)                                                         \
  do {                                                                         \
    const char *t_a_ = (a), *t_b_ = (b);                                       \
    if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) {                           \
      printf("#   %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, \
             #a, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");              \
      t_case_failed = 1;                                                       \
    }                                                                          \
  } while (0)

#define T_RUN(fn)                                                              \
  do {                                                                         \
    t_case_failed = 0;                                                         \
    fn();                                                                      \
    printf("%s - %s\n", t_case_failed ? "not ok" : "ok", #fn);                 \
    fflush(stdout);                                                            \
    t_failed_total += t_case_failed;                                           \
  } while (0)

#define T_DONE() (t_failed_total ? 1 : 0)

#endif
