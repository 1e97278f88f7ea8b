/* Tests for gateway/gw_limits.c: every limit trips at exactly its
 * threshold and recovers when it says it will (a fake clock), strangers
 * never lock a citizen out, one pending sign-in per phone, bounded memory,
 * threads. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_limits.h"
#include "harness.h"

/* A monotonic clock far from 0, in the middle of a day bucket or not. */
#define T0 (1000LL * 1000 * 1000 * 1000 + 12345)
#define SEC 1000LL
#define PHONE "+96899000001"
#define SRC "192.0.2.1"
#define CLIENT "demo-rp"

/* Every limit off but the pending mark; tests turn on what they test. */
static gw_limits_config cfg_off(void) {
  gw_limits_config c;

  memset(&c, 0, sizeof(c));
  c.source_window_s = 60;
  c.cooldown_s = 300;
  c.pending_max_s = 150;
  c.max_entries = 100000;
  return c;
}

static gw_limits *mk(const gw_limits_config *c) {
  gw_limits *l = NULL;

  T_EQ_INT(gw_limits_new(&l, c), GW_OK);
  return l;
}

/* begin then end at once (success): one counted start without a pending
 * mark left behind. */
static gw_limit_result once(gw_limits *l, const char *phone, const char *src,
                            const char *client, long long now, int refused,
                            int *retry) {
  uint64_t ticket = 0;
  gw_limit_result r =
      gw_limits_begin(l, phone, src, client, now, retry, &ticket);

  if (r == GW_LIMIT_OK) {
    T_ASSERT(ticket != 0);
    gw_limits_end(l, ticket, refused, now);
  } else {
    T_EQ_INT(ticket, 0);
  }
  return r;
}

/* |r| refuses with |want| at |now| but no longer |retry| s later; one
 * second before that it still refuses (when retry > 1). Returns the time
 * of recovery. */
static long long check_recovery(gw_limits *l, const char *phone,
                                const char *src, const char *client,
                                long long now, gw_limit_result want) {
  int retry = 0, retry2 = 0;

  T_EQ_INT(once(l, phone, src, client, now, 0, &retry), want);
  T_ASSERT(retry >= 1);
  if (retry > 1) {
    T_EQ_INT(once(l, phone, src, client, now + (retry - 1) * SEC, 0, &retry2),
             want);
    T_ASSERT(retry2 >= 1 && retry2 <= 1);
  }
  T_EQ_INT(once(l, phone, src, client, now + retry * SEC, 0, &retry2),
           GW_LIMIT_OK);
  T_EQ_INT(retry2, 0);
  return now + retry * SEC;
}

static void test_names(void) {
  T_EQ_STR(gw_limit_result_name(GW_LIMIT_OK), "ok");
  T_EQ_STR(gw_limit_result_name(GW_LIMIT_SOURCE), "source_rate");
  T_EQ_STR(gw_limit_result_name(GW_LIMIT_PAIR), "pair_rate");
  T_EQ_STR(gw_limit_result_name(GW_LIMIT_COOLDOWN), "cooldown");
  T_EQ_STR(gw_limit_result_name(GW_LIMIT_PENDING), "pending");
  T_EQ_STR(gw_limit_result_message(GW_LIMIT_PENDING),
           "a sign-in is already waiting on this phone");
  T_EQ_INT(gw_limit_result_http_status(GW_LIMIT_OK), 200);
  T_EQ_INT(gw_limit_result_http_status(GW_LIMIT_SOURCE), 429);
  T_EQ_INT(gw_limit_result_http_status(GW_LIMIT_PAIR), 429);
  T_EQ_INT(gw_limit_result_http_status(GW_LIMIT_COOLDOWN), 429);
  T_EQ_INT(gw_limit_result_http_status(GW_LIMIT_PENDING), 409);
}

static void test_new_invalid(void) {
  gw_limits_config c = cfg_off();
  gw_limits *l = (gw_limits *)&c;

  T_EQ_INT(gw_limits_new(NULL, &c), GW_ERR_INVALID);
  T_EQ_INT(gw_limits_new(&l, NULL), GW_ERR_INVALID);
  c.max_entries = 10;
  T_EQ_INT(gw_limits_new(&l, &c), GW_ERR_INVALID);
  c = cfg_off();
  c.source_window_s = 0;
  T_EQ_INT(gw_limits_new(&l, &c), GW_ERR_INVALID);
  c = cfg_off();
  c.per_pair_hour = -1;
  T_EQ_INT(gw_limits_new(&l, &c), GW_ERR_INVALID);
  T_ASSERT(l == (gw_limits *)&c); /* untouched on failure */
  gw_limits_del(NULL);
}

/* The configuration's defaults are accepted as they are. */
static void test_config_defaults(void) {
  gw_config *cfg = NULL;
  gw_limits *l = NULL;

  T_EQ_INT(gw_config_new_defaults(&cfg), GW_OK);
  if (!cfg) {
    return;
  }
  T_EQ_INT(cfg->signin.starts_per_source, 30);
  T_EQ_INT(cfg->signin.source_window_s, 60);
  T_EQ_INT(cfg->signin.per_pair_hour, 30);
  T_EQ_INT(cfg->signin.per_pair_day, 100);
  T_EQ_INT(cfg->signin.refusals_cooldown, 5);
  T_EQ_INT(cfg->signin.cooldown_s, 60);
  T_EQ_INT(cfg->signin.pending_max_s, 150);
  T_EQ_INT(cfg->signin.max_entries, 100000);
  T_ASSERT(cfg->signin.pending_max_s > cfg->oidc_ciba_expiry_s);
  T_EQ_INT(gw_limits_new(&l, &cfg->signin), GW_OK);
  gw_limits_del(l);
  gw_config_del(cfg);
}

static void test_source_window(void) {
  gw_limits_config c = cfg_off();
  gw_limits *l;
  char phone[32];
  int i, retry = -1;
  long long t;

  c.starts_per_source = 3;
  l = mk(&c);
  for (i = 0; i < 3; i++) {
    snprintf(phone, sizeof(phone), "+9689900010%d", i);
    T_EQ_INT(once(l, phone, SRC, CLIENT, T0 + i, 0, &retry), GW_LIMIT_OK);
  }
  /* The fourth start from that address, whatever the phone. */
  T_EQ_INT(once(l, "+96899000200", SRC, CLIENT, T0 + 10, 0, &retry),
           GW_LIMIT_SOURCE);
  T_ASSERT(retry >= 1 && retry <= 120);
  /* Another address is not affected; no address = no source limit. */
  T_EQ_INT(once(l, "+96899000200", "192.0.2.2", CLIENT, T0 + 10, 0, &retry),
           GW_LIMIT_OK);
  T_EQ_INT(once(l, "+96899000201", NULL, CLIENT, T0 + 10, 0, &retry),
           GW_LIMIT_OK);
  T_EQ_INT(once(l, "+96899000202", "", NULL, T0 + 10, 0, &retry), GW_LIMIT_OK);
  t = check_recovery(l, "+96899000300", SRC, CLIENT, T0 + 20, GW_LIMIT_SOURCE);
  /* Two windows later everything is forgotten: 3 again, the 4th refused. */
  t += 2 * 60 * SEC;
  for (i = 0; i < 3; i++) {
    snprintf(phone, sizeof(phone), "+9689900040%d", i);
    T_EQ_INT(once(l, phone, SRC, CLIENT, t, 0, &retry), GW_LIMIT_OK);
  }
  T_EQ_INT(once(l, "+96899000500", SRC, CLIENT, t, 0, &retry), GW_LIMIT_SOURCE);
  /* The check alone, and begin_ex not counting twice. */
  T_EQ_INT(gw_limits_source_check(l, "192.0.2.9", t, &retry), GW_LIMIT_OK);
  T_EQ_INT(gw_limits_source_check(l, "192.0.2.9", t, &retry), GW_LIMIT_OK);
  T_EQ_INT(gw_limits_source_check(l, "192.0.2.9", t, &retry), GW_LIMIT_OK);
  T_EQ_INT(gw_limits_source_check(l, "192.0.2.9", t, &retry), GW_LIMIT_SOURCE);
  T_ASSERT(retry >= 1);
  {
    uint64_t tk = 0;
    T_EQ_INT(gw_limits_begin_ex(l, "+96899000600", "192.0.2.9", CLIENT,
                                GW_LIMITS_SOURCE_COUNTED, t, &retry, &tk),
             GW_LIMIT_OK);
    T_ASSERT(tk != 0);
    gw_limits_end(l, tk, 0, t);
  }
  T_EQ_INT(gw_limits_source_check(l, NULL, t, &retry), GW_LIMIT_OK);
  gw_limits_del(l);
}

static void test_pair_hour(void) {
  gw_limits_config c = cfg_off();
  gw_limits *l;
  int i, retry;
  long long t;

  c.per_pair_hour = 3;
  l = mk(&c);
  for (i = 0; i < 3; i++) {
    T_EQ_INT(once(l, PHONE, SRC, CLIENT, T0 + i * SEC, 0, &retry), GW_LIMIT_OK);
  }
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, T0 + 5 * SEC, 0, &retry), GW_LIMIT_PAIR);
  /* Same source, other client: (phone, source) is full. */
  T_EQ_INT(once(l, PHONE, SRC, "other-rp", T0 + 5 * SEC, 0, &retry),
           GW_LIMIT_PAIR);
  /* Same client, other source: (phone, client) is full. */
  T_EQ_INT(once(l, PHONE, "192.0.2.7", CLIENT, T0 + 5 * SEC, 0, &retry),
           GW_LIMIT_PAIR);
  /* Other source and other client: a fresh pair on both sides. */
  T_EQ_INT(once(l, PHONE, "192.0.2.7", "other-rp", T0 + 5 * SEC, 0, &retry),
           GW_LIMIT_OK);
  /* Another phone from the same source and client. */
  T_EQ_INT(once(l, "+96899000002", SRC, CLIENT, T0 + 5 * SEC, 0, &retry),
           GW_LIMIT_OK);
  t = check_recovery(l, PHONE, SRC, CLIENT, T0 + 6 * SEC, GW_LIMIT_PAIR);
  T_ASSERT(t - T0 <= 2 * 3600 * SEC);
  /* Two hours of quiet: the full cap again. */
  t += 2 * 3600 * SEC;
  for (i = 0; i < 3; i++) {
    T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 0, &retry), GW_LIMIT_OK);
  }
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 0, &retry), GW_LIMIT_PAIR);
  gw_limits_del(l);
}

static void test_pair_day(void) {
  gw_limits_config c = cfg_off();
  gw_limits *l;
  int i, retry;
  long long t = T0;

  c.per_pair_day = 5;
  l = mk(&c);
  /* Spread over hours: only the day cap counts. */
  for (i = 0; i < 5; i++) {
    T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 0, &retry), GW_LIMIT_OK);
    t += 2 * 3600 * SEC;
  }
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 0, &retry), GW_LIMIT_PAIR);
  T_ASSERT(retry > 3600);
  T_ASSERT(retry <= 2 * 86400);
  check_recovery(l, PHONE, SRC, CLIENT, t, GW_LIMIT_PAIR);
  gw_limits_del(l);
}

static void test_cooldown(void) {
  gw_limits_config c = cfg_off();
  gw_limits *l;
  int i, retry;
  long long t = T0;

  c.refusals_cooldown = 3;
  c.cooldown_s = 300;
  l = mk(&c);
  /* Two refusals, then a success: the streak starts again. */
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 1, &retry), GW_LIMIT_OK);
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 1, &retry), GW_LIMIT_OK);
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 0, &retry), GW_LIMIT_OK);
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 1, &retry), GW_LIMIT_OK);
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 1, &retry), GW_LIMIT_OK);
  /* Neither-nor outcomes (-1: expired, cancelled) do not count. */
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, -1, &retry), GW_LIMIT_OK);
  /* The third refusal in a row. */
  t += 10 * SEC;
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 1, &retry), GW_LIMIT_OK);
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 0, &retry), GW_LIMIT_COOLDOWN);
  T_EQ_INT(retry, 300);
  /* Both pairs cool down. */
  T_EQ_INT(once(l, PHONE, "192.0.2.7", CLIENT, t, 0, &retry),
           GW_LIMIT_COOLDOWN);
  T_EQ_INT(once(l, PHONE, SRC, "other-rp", t, 0, &retry), GW_LIMIT_COOLDOWN);
  T_EQ_INT(once(l, PHONE, "192.0.2.7", "other-rp", t, 0, &retry), GW_LIMIT_OK);
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t + 299 * SEC, 0, &retry),
           GW_LIMIT_COOLDOWN);
  T_EQ_INT(retry, 1);
  t += 300 * SEC;
  /* Served: a new streak of three. */
  for (i = 0; i < 3; i++) {
    T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 1, &retry), GW_LIMIT_OK);
  }
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 0, &retry), GW_LIMIT_COOLDOWN);
  check_recovery(l, PHONE, SRC, CLIENT, t, GW_LIMIT_COOLDOWN);
  gw_limits_del(l);
}

/* A stranger from other addresses and other relying parties trips every
 * limit he can reach; the citizen's own (source, client) still works. */
static void test_stranger_cannot_lock_out(void) {
  gw_limits_config c = cfg_off();
  gw_limits *l;
  char src[32], client[32];
  int i, j, retry;
  long long t = T0;

  c.starts_per_source = 5;
  c.per_pair_hour = 3;
  c.per_pair_day = 6;
  c.refusals_cooldown = 2;
  l = mk(&c);
  for (i = 0; i < 50; i++) {
    snprintf(src, sizeof(src), "198.51.100.%d", i);
    snprintf(client, sizeof(client), "evil-%d", i % 5);
    for (j = 0; j < 10; j++) {
      /* The citizen refuses every push the stranger causes. */
      (void)once(l, PHONE, src, client, t, 1, &retry);
    }
    t += SEC;
  }
  T_EQ_INT(once(l, PHONE, SRC, CLIENT, t, 0, &retry), GW_LIMIT_OK);
  /* And the stranger is still refused. */
  T_ASSERT(once(l, PHONE, "198.51.100.1", "evil-1", t, 0, &retry) !=
           GW_LIMIT_OK);
  gw_limits_del(l);
}

static void test_pending(void) {
  gw_limits_config c = cfg_off();
  gw_limits *l;
  uint64_t t1 = 0, t2 = 0, t3 = 0;
  int retry;

  l = mk(&c);
  T_EQ_INT(gw_limits_begin(l, PHONE, SRC, CLIENT, T0, &retry, &t1),
           GW_LIMIT_OK);
  T_EQ_INT(retry, 0);
  /* A second sign-in for the phone, from anyone. */
  T_EQ_INT(gw_limits_begin(l, PHONE, SRC, CLIENT, T0 + SEC, &retry, &t2),
           GW_LIMIT_PENDING);
  T_EQ_INT(retry, 149);
  T_EQ_INT(t2, 0);
  T_EQ_INT(gw_limits_begin(l, PHONE, NULL, NULL, T0 + SEC, &retry, &t2),
           GW_LIMIT_PENDING);
  /* Another phone is not affected. */
  T_EQ_INT(gw_limits_begin(l, "+96899000002", SRC, CLIENT, T0, &retry, &t2),
           GW_LIMIT_OK);
  T_ASSERT(t2 != 0 && t2 != t1);
  /* end releases; ending twice, or a bogus ticket, is harmless. */
  gw_limits_end(l, t1, 0, T0 + 2 * SEC);
  gw_limits_end(l, t1, 0, T0 + 2 * SEC);
  gw_limits_end(l, 0, 0, T0 + 2 * SEC);
  gw_limits_end(l, 0xffffffffffffULL, 1, T0 + 2 * SEC);
  gw_limits_end(l, (1ULL << 32) | 7, 1, T0 + 2 * SEC);
  T_EQ_INT(gw_limits_begin(l, PHONE, SRC, CLIENT, T0 + 3 * SEC, &retry, &t1),
           GW_LIMIT_OK);
  /* The mark expires on its own after pending_max_s. */
  T_EQ_INT(gw_limits_begin(l, PHONE, SRC, CLIENT, T0 + 152 * SEC, &retry, &t3),
           GW_LIMIT_PENDING);
  T_EQ_INT(retry, 1);
  T_EQ_INT(gw_limits_begin(l, PHONE, SRC, CLIENT, T0 + 153 * SEC, &retry, &t3),
           GW_LIMIT_OK);
  /* The expired sign-in's late end does not release the new mark. */
  gw_limits_end(l, t1, 1, T0 + 154 * SEC);
  T_EQ_INT(gw_limits_begin(l, PHONE, SRC, CLIENT, T0 + 154 * SEC, &retry, &t1),
           GW_LIMIT_PENDING);
  gw_limits_end(l, t3, 0, T0 + 155 * SEC);
  gw_limits_end(l, t2, 0, T0 + 155 * SEC);
  {
    size_t pend = 99;
    gw_limits_stats(l, NULL, NULL, &pend);
    T_EQ_INT(pend, 0);
  }
  gw_limits_del(l);
}

/* The order of the checks: source, pair caps, cool-down, pending. */
static void test_order(void) {
  gw_limits_config c = cfg_off();
  gw_limits *l;
  uint64_t tk = 0, tk2;
  int retry;

  c.starts_per_source = 2;
  c.per_pair_hour = 1;
  c.refusals_cooldown = 1;
  l = mk(&c);
  T_EQ_INT(gw_limits_begin(l, PHONE, SRC, CLIENT, T0, &retry, &tk),
           GW_LIMIT_OK);
  T_EQ_INT(gw_limits_begin(l, PHONE, "192.0.2.5", "x", T0, &retry, &tk2),
           GW_LIMIT_PENDING);
  gw_limits_end(l, tk, 1, T0); /* cool-down on both pairs */
  T_EQ_INT(gw_limits_begin(l, PHONE, SRC, "y", T0, &retry, &tk2),
           GW_LIMIT_PAIR); /* the cap before the cool-down */
  T_EQ_INT(gw_limits_begin(l, "+96899000002", SRC, "y", T0, &retry, &tk2),
           GW_LIMIT_OK);
  T_EQ_INT(gw_limits_begin(l, PHONE, SRC, CLIENT, T0, &retry, &tk2),
           GW_LIMIT_SOURCE); /* the source before everything */
  gw_limits_del(l);
}

/* A flood of distinct keys never holds more than max_entries per table. */
static void test_eviction_bounds_memory(void) {
  gw_limits_config c = cfg_off();
  gw_limits *l;
  char phone[32], src[48], client[32];
  size_t s = 0, p = 0, q = 0, smax = 0, pmax = 0, qmax = 0;
  uint64_t tk;
  int i, retry;

  c.starts_per_source = 5;
  c.per_pair_hour = 5;
  c.per_pair_day = 10;
  c.max_entries = 1000;
  l = mk(&c);
  for (i = 0; i < 1000000; i++) {
    snprintf(phone, sizeof(phone), "+968%08d", i);
    snprintf(src, sizeof(src), "2001:db8::%x", i);
    snprintf(client, sizeof(client), "c%d", i);
    T_EQ_INT(gw_limits_begin(l, phone, src, client, T0 + i, &retry, &tk),
             GW_LIMIT_OK);
    if (i % 4096 == 0) {
      gw_limits_stats(l, &s, &p, &q);
      smax = s > smax ? s : smax;
      pmax = p > pmax ? p : pmax;
      qmax = q > qmax ? q : qmax;
    }
  }
  gw_limits_stats(l, &s, &p, &q);
  T_ASSERT(s <= 1000 && p <= 1000 && q <= 1000);
  T_ASSERT(smax <= 1000 && pmax <= 1000 && qmax <= 1000);
  T_ASSERT(q > 0);
  /* Still working: the newest phone is pending, a fresh one is not. */
  T_EQ_INT(gw_limits_begin(l, phone, NULL, NULL, T0 + i, &retry, &tk),
           GW_LIMIT_PENDING);
  T_EQ_INT(gw_limits_begin(l, "+96899999999", SRC, CLIENT, T0 + i, &retry, &tk),
           GW_LIMIT_OK);
  gw_limits_del(l);
}

/* Expired entries go away by themselves. */
static void test_expiry_reaps(void) {
  gw_limits_config c = cfg_off();
  gw_limits *l;
  char phone[32];
  size_t s, p, q;
  int i, retry;
  uint64_t tk;

  c.starts_per_source = 10;
  c.per_pair_hour = 10;
  l = mk(&c);
  for (i = 0; i < 100; i++) {
    snprintf(phone, sizeof(phone), "+968%08d", i);
    T_EQ_INT(gw_limits_begin(l, phone, SRC, CLIENT, T0 + i, &retry, &tk),
             i < 10 ? GW_LIMIT_OK : GW_LIMIT_SOURCE);
  }
  gw_limits_stats(l, &s, &p, &q);
  T_EQ_INT(q, 10);
  /* Three days later a few calls reap everything old. */
  for (i = 0; i < 40; i++) {
    (void)once(l, "+96899000001", NULL, NULL, T0 + 3 * 86400 * SEC + i, 0,
               &retry);
  }
  gw_limits_stats(l, &s, &p, &q);
  T_EQ_INT(s, 0);
  T_EQ_INT(p, 0);
  T_EQ_INT(q, 0);
  gw_limits_del(l);
}

typedef struct hammer_arg {
  gw_limits *l;
  int id;
  int oks;
} hammer_arg;

static atomic_llong hammer_clock = T0;

static void *hammer(void *p) {
  hammer_arg *a = p;
  char phone[32], src[32], client[32];
  unsigned seed = (unsigned)a->id * 2654435761U;
  int i, retry;

  for (i = 0; i < 50000; i++) {
    long long now = atomic_fetch_add(&hammer_clock, 1);
    uint64_t tk = 0;

    seed = seed * 1103515245U + 12345U;
    snprintf(phone, sizeof(phone), "+968990%05u", (seed >> 8) % 200);
    snprintf(src, sizeof(src), "10.0.%d.%u", a->id, (seed >> 4) % 16);
    snprintf(client, sizeof(client), "rp%u", (seed >> 12) % 8);
    if (gw_limits_begin(a->l, phone, src, client, now, &retry, &tk) ==
        GW_LIMIT_OK) {
      a->oks++;
      gw_limits_end(a->l, tk, (int)((seed >> 16) % 3) - 1, now);
    } else if ((seed >> 20) % 64 == 0) {
      gw_limits_source_check(a->l, src, now, &retry);
    }
  }
  return NULL;
}

static void test_threads(void) {
  gw_limits_config c = cfg_off();
  gw_limits *l;
  pthread_t th[4];
  hammer_arg a[4];
  size_t q = 99;
  int i;

  c.starts_per_source = 1000;
  c.per_pair_hour = 500;
  c.per_pair_day = 2000;
  c.refusals_cooldown = 5;
  c.cooldown_s = 1;
  c.max_entries = 1000;
  l = mk(&c);
  for (i = 0; i < 4; i++) {
    a[i].l = l;
    a[i].id = i;
    a[i].oks = 0;
    T_EQ_INT(pthread_create(&th[i], NULL, hammer, &a[i]), 0);
  }
  for (i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    T_ASSERT(a[i].oks > 0);
  }
  /* Every begun sign-in was ended: nothing is pending. */
  gw_limits_stats(l, NULL, NULL, &q);
  T_EQ_INT(q, 0);
  gw_limits_del(l);
}

int main(void) {
  T_RUN(test_names);
  T_RUN(test_new_invalid);
  T_RUN(test_config_defaults);
  T_RUN(test_source_window);
  T_RUN(test_pair_hour);
  T_RUN(test_pair_day);
  T_RUN(test_cooldown);
  T_RUN(test_stranger_cannot_lock_out);
  T_RUN(test_pending);
  T_RUN(test_order);
  T_RUN(test_eviction_bounds_memory);
  T_RUN(test_expiry_reaps);
  T_RUN(test_threads);
  return T_DONE();
}
