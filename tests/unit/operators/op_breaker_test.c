/* op_breaker_test.c — unit tests for operators/op_breaker.c, with a clock
 * the test moves by hand, and one test of concurrent use. */
#include "op_breaker.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gw_err.h"
#include "harness.h"

#define MS 1000000ull

static op_breaker *mk(int threshold, int cooldown_ms, int probes) {
  op_breaker_config c = {threshold, cooldown_ms, probes};
  op_breaker *b = NULL;

  T_EQ_INT(op_breaker_new(&b, &c), GW_OK);
  return b;
}

static void t_config_checked(void) {
  op_breaker *b = (op_breaker *)0x1;
  op_breaker_config c = {3, 0, 1};

  T_EQ_INT(op_breaker_new(&b, &c), GW_ERR_INVALID);
  c = (op_breaker_config){-1, 10, 1};
  T_EQ_INT(op_breaker_new(&b, &c), GW_ERR_INVALID);
  c = (op_breaker_config){1, 10, 0};
  T_EQ_INT(op_breaker_new(&b, &c), GW_ERR_INVALID);
  T_EQ_INT(op_breaker_new(&b, NULL), GW_ERR_INVALID);
  T_ASSERT(b == (op_breaker *)0x1);
  op_breaker_del(NULL);
  T_EQ_STR(op_breaker_state_str(OP_BREAKER_CLOSED), "closed");
  T_EQ_STR(op_breaker_state_str(OP_BREAKER_OPEN), "open");
  T_EQ_STR(op_breaker_state_str(OP_BREAKER_HALF_OPEN), "half_open");
}

static void t_opens_after_threshold(void) {
  op_breaker *b = mk(3, 1000, 1);
  op_breaker_stats st;
  uint64_t t = 5000 * MS;

  if (!b) {
    return;
  }
  /* two failures, a success resets, then three in a row open it */
  for (int i = 0; i < 2; i++) {
    T_EQ_INT(op_breaker_allow(b, t), 1);
    op_breaker_report(b, OP_BREAKER_FAILURE, t);
  }
  T_EQ_INT(op_breaker_allow(b, t), 1);
  op_breaker_report(b, OP_BREAKER_SUCCESS, t);
  op_breaker_get_stats(b, t, &st);
  T_EQ_INT(st.consecutive_failures, 0);
  for (int i = 0; i < 2; i++) {
    T_EQ_INT(op_breaker_allow(b, t), 1);
    op_breaker_report(b, OP_BREAKER_FAILURE, t);
    T_EQ_INT(op_breaker_state_at(b, t), OP_BREAKER_CLOSED);
  }
  /* neutral verdicts change nothing */
  T_EQ_INT(op_breaker_allow(b, t), 1);
  op_breaker_report(b, OP_BREAKER_NEUTRAL, t);
  T_EQ_INT(op_breaker_state_at(b, t), OP_BREAKER_CLOSED);
  T_EQ_INT(op_breaker_allow(b, t), 1);
  op_breaker_report(b, OP_BREAKER_FAILURE, t);
  T_EQ_INT(op_breaker_state_at(b, t), OP_BREAKER_OPEN);
  op_breaker_get_stats(b, t, &st);
  T_EQ_INT(st.state, OP_BREAKER_OPEN);
  T_EQ_INT(st.opened, 1);
  T_ASSERT(st.open_until_ns == t + 1000 * MS);

  /* open: fail fast for the whole cool-down */
  T_EQ_INT(op_breaker_allow(b, t), 0);
  T_EQ_INT(op_breaker_allow(b, t + 999 * MS), 0);
  op_breaker_get_stats(b, t + 999 * MS, &st);
  T_EQ_INT(st.rejected, 2);
  /* a late success of a request sent before it opened changes nothing */
  op_breaker_report(b, OP_BREAKER_SUCCESS, t + 10 * MS);
  T_EQ_INT(op_breaker_state_at(b, t + 10 * MS), OP_BREAKER_OPEN);
  op_breaker_del(b);
}

static void t_half_open_probe(void) {
  op_breaker *b = mk(1, 100, 1);
  uint64_t t = 1000 * MS;

  if (!b) {
    return;
  }
  T_EQ_INT(op_breaker_allow(b, t), 1);
  op_breaker_report(b, OP_BREAKER_FAILURE, t);
  T_EQ_INT(op_breaker_state_at(b, t), OP_BREAKER_OPEN);
  t += 100 * MS;
  T_EQ_INT(op_breaker_state_at(b, t), OP_BREAKER_HALF_OPEN);
  /* one probe goes, the others wait */
  T_EQ_INT(op_breaker_allow(b, t), 1);
  T_EQ_INT(op_breaker_allow(b, t), 0);
  T_EQ_INT(op_breaker_allow(b, t + 50 * MS), 0);
  /* the probe fails: open again for a new cool-down */
  op_breaker_report(b, OP_BREAKER_FAILURE, t + 50 * MS);
  T_EQ_INT(op_breaker_state_at(b, t + 50 * MS), OP_BREAKER_OPEN);
  T_EQ_INT(op_breaker_allow(b, t + 149 * MS), 0);
  t += 150 * MS;
  T_EQ_INT(op_breaker_allow(b, t), 1);
  /* a cancelled probe gives its permit back */
  op_breaker_report(b, OP_BREAKER_NEUTRAL, t);
  T_EQ_INT(op_breaker_state_at(b, t), OP_BREAKER_HALF_OPEN);
  T_EQ_INT(op_breaker_allow(b, t), 1);
  /* the probe succeeds: closed, everything goes */
  op_breaker_report(b, OP_BREAKER_SUCCESS, t);
  T_EQ_INT(op_breaker_state_at(b, t), OP_BREAKER_CLOSED);
  for (int i = 0; i < 5; i++) {
    T_EQ_INT(op_breaker_allow(b, t), 1);
    op_breaker_report(b, OP_BREAKER_SUCCESS, t);
  }
  op_breaker_del(b);
}

static void t_several_probes(void) {
  op_breaker *b = mk(2, 10, 3);
  uint64_t t = 0;

  if (!b) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    T_EQ_INT(op_breaker_allow(b, t), 1);
    op_breaker_report(b, OP_BREAKER_FAILURE, t);
  }
  T_EQ_INT(op_breaker_allow(b, t), 0);
  t += 10 * MS;
  T_EQ_INT(op_breaker_allow(b, t), 1);
  T_EQ_INT(op_breaker_allow(b, t), 1);
  T_EQ_INT(op_breaker_allow(b, t), 1);
  T_EQ_INT(op_breaker_allow(b, t), 0);
  op_breaker_report(b, OP_BREAKER_SUCCESS, t);
  T_EQ_INT(op_breaker_state_at(b, t), OP_BREAKER_CLOSED);
  /* the other two probes report late: as closed-state verdicts */
  op_breaker_report(b, OP_BREAKER_FAILURE, t);
  T_EQ_INT(op_breaker_state_at(b, t), OP_BREAKER_CLOSED);
  op_breaker_report(b, OP_BREAKER_SUCCESS, t);
  op_breaker_del(b);
}

static void t_disabled(void) {
  op_breaker *b = mk(0, 10, 1);

  if (!b) {
    return;
  }
  for (int i = 0; i < 100; i++) {
    T_EQ_INT(op_breaker_allow(b, 0), 1);
    op_breaker_report(b, OP_BREAKER_FAILURE, 0);
  }
  T_EQ_INT(op_breaker_state_at(b, 0), OP_BREAKER_CLOSED);
  op_breaker_del(b);
  /* a NULL breaker lets everything through */
  T_EQ_INT(op_breaker_allow(NULL, 0), 1);
  op_breaker_report(NULL, OP_BREAKER_FAILURE, 0);
}

typedef struct hammer_arg {
  op_breaker *b;
  int allowed;
} hammer_arg;

static void *hammer(void *p) {
  hammer_arg *a = p;
  for (int i = 0; i < 100000; i++) {
    uint64_t t = (uint64_t)i * 1000;
    if (op_breaker_allow(a->b, t)) {
      a->allowed++;
      op_breaker_report(
          a->b, (i % 7) == 0 ? OP_BREAKER_FAILURE : OP_BREAKER_SUCCESS, t);
    }
  }
  return NULL;
}

/* Two threads at once: no lost permits (every half-open probe reported),
 * no crash; with successes dominating, it ends closed. */
static void t_threads(void) {
  op_breaker *b = mk(2, 1, 1);
  hammer_arg a[2];
  pthread_t th[2];

  if (!b) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    a[i] = (hammer_arg){b, 0};
    pthread_create(&th[i], NULL, hammer, &a[i]);
  }
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
  }
  T_ASSERT(a[0].allowed > 0 && a[1].allowed > 0);
  T_ASSERT(op_breaker_state_at(b, UINT64_MAX / 2) != OP_BREAKER_OPEN);
  op_breaker_del(b);
}

int main(void) {
  T_RUN(t_config_checked);
  T_RUN(t_opens_after_threshold);
  T_RUN(t_half_open_probe);
  T_RUN(t_several_probes);
  T_RUN(t_disabled);
  T_RUN(t_threads);
  return T_DONE();
}
