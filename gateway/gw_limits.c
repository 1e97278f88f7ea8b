/* gw_limits.c — abuse limits of sign-ins: bounded in-memory tables of
 * sliding windows, refusal streaks and pending marks (gw_limits.h).
 *
 * Three tables of the same shape: a fixed-capacity hash table of nodes
 * addressed by index (chains and the LRU list are indices, so the node
 * array may grow by realloc up to its cap), keyed by a 128-bit SipHash
 * digest of the key under a random secret. When a table is full the least
 * recently used node is evicted; expired nodes are reaped from the LRU
 * tail a few at a time, so every call stays O(1).
 *
 * A sliding window is two fixed buckets (the current and the previous
 * window-sized bucket): the count at time t is prev * (W - e) / W + cur,
 * e being the time into the current bucket. It never allows more than the
 * limit in any window of length W and forgets a burst gradually. */
#include "gw_limits.h"

#include <limits.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gw_err.h"

#define NIL UINT32_MAX
/* Expired nodes reclaimed from the LRU tail per call and table. */
#define REAP_PER_CALL 2
#define HOUR_MS (3600LL * 1000)
#define DAY_MS (86400LL * 1000)

typedef struct lim_key {
  uint64_t a, b;
} lim_key;

/* Two-bucket sliding window: |idx| is the current bucket (now / W). */
typedef struct lim_win {
  long long idx;
  uint32_t prev, cur;
} lim_win;

typedef struct lim_node {
  lim_key key;
  long long expires_ms; /* garbage from then on */
  uint32_t chain;       /* next in the bucket, or in the free list */
  uint32_t lru_prev, lru_next;
  int used;
  union {
    struct {
      lim_win w;
    } src;
    struct {
      lim_win hour, day;
      uint32_t streak;      /* refusals in a row */
      long long cool_until; /* 0 = no cool-down */
    } pair;
    struct {
      uint64_t ticket;
      lim_key pair[2];
      int has[2];
    } pend;
  } u;
} lim_node;

typedef struct lim_table {
  lim_node *nodes;
  uint32_t alloc;    /* nodes allocated */
  uint32_t hiwater;  /* nodes ever handed out: [0, hiwater) */
  uint32_t cap;      /* most nodes in use */
  uint32_t *buckets; /* mask + 1 heads */
  uint32_t mask;
  uint32_t free_head;
  uint32_t lru_head, lru_tail; /* head: most recently used */
  size_t count;
} lim_table;

struct gw_limits {
  pthread_mutex_t mu;
  gw_limits_config c;
  uint64_t sip[2]; /* SipHash key */
  uint32_t seq;    /* ticket sequence */
  lim_table src, pairs, pend;
};

/* ---- SipHash-2-4 with 128-bit output, fed byte by byte ---- */

typedef struct sip_state {
  uint64_t v0, v1, v2, v3, tail;
  size_t len;
} sip_state;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(sip_state *s) {
  s->v0 += s->v1;
  s->v1 = ROTL(s->v1, 13);
  s->v1 ^= s->v0;
  s->v0 = ROTL(s->v0, 32);
  s->v2 += s->v3;
  s->v3 = ROTL(s->v3, 16);
  s->v3 ^= s->v2;
  s->v0 += s->v3;
  s->v3 = ROTL(s->v3, 21);
  s->v3 ^= s->v0;
  s->v2 += s->v1;
  s->v1 = ROTL(s->v1, 17);
  s->v1 ^= s->v2;
  s->v2 = ROTL(s->v2, 32);
}

static void sip_init(sip_state *s, const uint64_t k[2]) {
  s->v0 = 0x736f6d6570736575ULL ^ k[0];
  s->v1 = 0x646f72616e646f6dULL ^ k[1] ^ 0xee;
  s->v2 = 0x6c7967656e657261ULL ^ k[0];
  s->v3 = 0x7465646279746573ULL ^ k[1];
  s->tail = 0;
  s->len = 0;
}

static void sip_update(sip_state *s, const void *data, size_t n) {
  const unsigned char *p = data;
  size_t i;

  for (i = 0; i < n; i++) {
    s->tail |= (uint64_t)p[i] << (8 * (s->len & 7));
    s->len++;
    if ((s->len & 7) == 0) {
      s->v3 ^= s->tail;
      sip_round(s);
      sip_round(s);
      s->v0 ^= s->tail;
      s->tail = 0;
    }
  }
}

static lim_key sip_final(sip_state *s) {
  uint64_t b = ((uint64_t)s->len << 56) | s->tail;
  lim_key k;
  int i;

  s->v3 ^= b;
  sip_round(s);
  sip_round(s);
  s->v0 ^= b;
  s->v2 ^= 0xee;
  for (i = 0; i < 4; i++) {
    sip_round(s);
  }
  k.a = s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
  s->v1 ^= 0xdd;
  for (i = 0; i < 4; i++) {
    sip_round(s);
  }
  k.b = s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
  return k;
}

/* Length-prefixed parts, so that ("ab", "c") and ("a", "bc") differ. */
static void sip_part(sip_state *s, const char *str) {
  size_t n = str ? strlen(str) : 0;
  uint64_t len = n;

  sip_update(s, &len, sizeof(len));
  sip_update(s, str, n);
}

/* The digest of |tag| and up to two strings. */
static lim_key make_key(const gw_limits *l, char tag, const char *x,
                        const char *y) {
  sip_state s;

  sip_init(&s, l->sip);
  sip_update(&s, &tag, 1);
  sip_part(&s, x);
  sip_part(&s, y);
  return sip_final(&s);
}

/* ---- bounded hash table ---- */

static int tbl_init(lim_table *t, uint32_t cap) {
  uint32_t nb = 1024;

  memset(t, 0, sizeof(*t));
  while (nb < cap && nb < (1U << 30)) {
    nb <<= 1;
  }
  t->buckets = malloc(sizeof(*t->buckets) * nb);
  if (!t->buckets) {
    return GW_ERR_NOMEM;
  }
  memset(t->buckets, 0xff, sizeof(*t->buckets) * nb); /* all NIL */
  t->mask = nb - 1;
  t->cap = cap;
  t->free_head = t->lru_head = t->lru_tail = NIL;
  return GW_OK;
}

static void tbl_free(lim_table *t) {
  free(t->nodes);
  free(t->buckets);
}

static void lru_unlink(lim_table *t, uint32_t i) {
  lim_node *n = &t->nodes[i];

  if (n->lru_prev != NIL) {
    t->nodes[n->lru_prev].lru_next = n->lru_next;
  } else {
    t->lru_head = n->lru_next;
  }
  if (n->lru_next != NIL) {
    t->nodes[n->lru_next].lru_prev = n->lru_prev;
  } else {
    t->lru_tail = n->lru_prev;
  }
}

static void lru_push_head(lim_table *t, uint32_t i) {
  lim_node *n = &t->nodes[i];

  n->lru_prev = NIL;
  n->lru_next = t->lru_head;
  if (t->lru_head != NIL) {
    t->nodes[t->lru_head].lru_prev = i;
  } else {
    t->lru_tail = i;
  }
  t->lru_head = i;
}

static void tbl_remove(lim_table *t, uint32_t i) {
  lim_node *n = &t->nodes[i];
  uint32_t *pp = &t->buckets[n->key.a & t->mask];

  while (*pp != NIL && *pp != i) {
    pp = &t->nodes[*pp].chain;
  }
  if (*pp == i) {
    *pp = n->chain;
  }
  lru_unlink(t, i);
  n->used = 0;
  n->chain = t->free_head;
  t->free_head = i;
  t->count--;
}

static void tbl_reap(lim_table *t, long long now) {
  int k;

  for (k = 0; k < REAP_PER_CALL && t->lru_tail != NIL; k++) {
    if (t->nodes[t->lru_tail].expires_ms > now) {
      break;
    }
    tbl_remove(t, t->lru_tail);
  }
}

/* The node of |key|, or NIL; an expired node counts as absent (and is
 * dropped). */
static uint32_t tbl_find(lim_table *t, lim_key key, long long now) {
  uint32_t i = t->buckets[key.a & t->mask];

  while (i != NIL) {
    lim_node *n = &t->nodes[i];
    if (n->key.a == key.a && n->key.b == key.b) {
      if (n->expires_ms <= now) {
        tbl_remove(t, i);
        return NIL;
      }
      return i;
    }
    i = n->chain;
  }
  return NIL;
}

/* A free node index: from the free list, fresh storage, or by evicting
 * the least recently used node. NIL only when memory runs out. */
static uint32_t tbl_alloc(lim_table *t) {
  uint32_t i;

  if (t->count >= t->cap && t->lru_tail != NIL) {
    tbl_remove(t, t->lru_tail);
  }
  if (t->free_head != NIL) {
    i = t->free_head;
    t->free_head = t->nodes[i].chain;
    return i;
  }
  if (t->hiwater == t->alloc) {
    uint32_t na = t->alloc ? t->alloc * 2 : 1024;
    lim_node *nn;

    if (na > t->cap) {
      na = t->cap;
    }
    if (na <= t->alloc) {
      return NIL; /* cannot happen: count < cap means room */
    }
    nn = realloc(t->nodes, sizeof(*nn) * na);
    if (!nn) {
      return NIL;
    }
    t->nodes = nn;
    t->alloc = na;
  }
  return t->hiwater++;
}

/* The node of |key|, created empty when absent, made most recently used.
 * NIL when out of memory. */
static uint32_t tbl_get(lim_table *t, lim_key key, long long now) {
  uint32_t i = tbl_find(t, key, now);
  lim_node *n;

  if (i != NIL) {
    lru_unlink(t, i);
    lru_push_head(t, i);
    return i;
  }
  i = tbl_alloc(t);
  if (i == NIL) {
    return NIL;
  }
  n = &t->nodes[i];
  memset(n, 0, sizeof(*n));
  n->key = key;
  n->used = 1;
  n->expires_ms = now + 1;
  n->chain = t->buckets[key.a & t->mask];
  t->buckets[key.a & t->mask] = i;
  lru_push_head(t, i);
  t->count++;
  return i;
}

/* ---- sliding windows ---- */

static void win_roll(lim_win *w, long long now, long long wms) {
  long long idx = now / wms;

  if (idx <= w->idx) {
    return; /* same bucket (or the clock went back: keep counting) */
  }
  w->prev = idx == w->idx + 1 ? w->cur : 0;
  w->cur = 0;
  w->idx = idx;
}

/* 0 when one more event fits under |limit| now, else the ms to wait. */
static long long win_wait(lim_win *w, long long now, long long wms,
                          long long limit) {
  long long e, room;

  win_roll(w, now, wms);
  e = now - w->idx * wms;
  if (e < 0) {
    e = 0;
  }
  if (e >= wms) {
    e = wms - 1;
  }
  /* Allowed when prev * (W - e) / W + cur + 1 <= limit. */
  room = limit - (long long)w->cur - 1;
  if (room >= 0) {
    if ((long long)w->prev * (wms - e) <= room * wms) {
      return 0;
    }
    /* prev > 0 here; the least e' with prev * (W - e') <= room * W. */
    return wms - (room * wms) / (long long)w->prev - e;
  }
  /* Full in this bucket: after the roll, prev' = cur and cur' = 0; cur >=
   * limit > limit - 1, so the wait past the roll is at least 1 ms. */
  return (wms - e) + (wms - ((limit - 1) * wms) / (long long)w->cur);
}

static long long win_expiry(const lim_win *w, long long wms) {
  return (w->idx + 2) * wms; /* both buckets empty from then on */
}

static long long max_ll(long long a, long long b) {
  return a > b ? a : b;
}

/* A pair lives while a window still counts, a cool-down runs, or a
 * refusal streak is younger than a day. */
static void pair_set_expiry(lim_node *n, long long now) {
  long long e = max_ll(max_ll(win_expiry(&n->u.pair.hour, HOUR_MS),
                              win_expiry(&n->u.pair.day, DAY_MS)),
                       n->u.pair.cool_until);

  if (n->u.pair.streak > 0) {
    e = max_ll(e, now + DAY_MS);
  }
  n->expires_ms = max_ll(n->expires_ms, e);
}

static int to_seconds(long long ms) {
  long long s = (ms + 999) / 1000;

  if (s < 1) {
    return 1;
  }
  return s > INT_MAX ? INT_MAX : (int)s;
}

/* ---- public ---- */

const char *gw_limit_result_name(gw_limit_result r) {
  switch (r) {
  case GW_LIMIT_OK:
    return "ok";
  case GW_LIMIT_SOURCE:
    return "source_rate";
  case GW_LIMIT_PAIR:
    return "pair_rate";
  case GW_LIMIT_COOLDOWN:
    return "cooldown";
  case GW_LIMIT_PENDING:
    return "pending";
  }
  return "unknown";
}

const char *gw_limit_result_message(gw_limit_result r) {
  switch (r) {
  case GW_LIMIT_OK:
    return "ok";
  case GW_LIMIT_SOURCE:
    return "too many sign-in requests from this address; try again later";
  case GW_LIMIT_PAIR:
    return "too many sign-in requests for this phone; try again later";
  case GW_LIMIT_COOLDOWN:
    return "sign-in requests for this phone were refused several times in "
           "a row; try again later";
  case GW_LIMIT_PENDING:
    return "a sign-in is already waiting on this phone";
  }
  return "unknown";
}

int gw_limit_result_http_status(gw_limit_result r) {
  switch (r) {
  case GW_LIMIT_OK:
    return 200;
  case GW_LIMIT_PENDING:
    return 409;
  case GW_LIMIT_SOURCE:
  case GW_LIMIT_PAIR:
  case GW_LIMIT_COOLDOWN:
    break;
  }
  return 429;
}

/* The bounds of the limits.signin_* keys in gw_config.c. */
static int config_ok(const gw_limits_config *c) {
  return c->starts_per_source >= 0 && c->starts_per_source <= 1000000 &&
         c->source_window_s >= 1 && c->source_window_s <= 86400 &&
         c->per_pair_hour >= 0 && c->per_pair_hour <= 1000000 &&
         c->per_pair_day >= 0 && c->per_pair_day <= 1000000 &&
         c->refusals_cooldown >= 0 && c->refusals_cooldown <= 1000 &&
         c->cooldown_s >= 1 && c->cooldown_s <= 86400 &&
         c->pending_max_s >= 10 && c->pending_max_s <= 3600 &&
         c->max_entries >= 1000 && c->max_entries <= 10000000;
}

int gw_limits_new(gw_limits **out, const gw_limits_config *c) {
  gw_limits *l;
  int rv;

  if (!out || !c || !config_ok(c)) {
    return GW_ERR_INVALID;
  }
  l = calloc(1, sizeof(*l));
  if (!l) {
    return GW_ERR_NOMEM;
  }
  l->c = *c;
  if (RAND_bytes((unsigned char *)l->sip, sizeof(l->sip)) != 1) {
    rv = GW_ERR_TLS;
    goto fail_l;
  }
  rv = tbl_init(&l->src, (uint32_t)c->max_entries);
  if (rv != GW_OK) {
    goto fail_l;
  }
  rv = tbl_init(&l->pairs, (uint32_t)c->max_entries);
  if (rv != GW_OK) {
    goto fail_src;
  }
  rv = tbl_init(&l->pend, (uint32_t)c->max_entries);
  if (rv != GW_OK) {
    goto fail_pairs;
  }
  if (pthread_mutex_init(&l->mu, NULL) != 0) {
    rv = GW_ERR_NOMEM;
    goto fail_pend;
  }
  *out = l;
  return GW_OK;

fail_pend:
  tbl_free(&l->pend);
fail_pairs:
  tbl_free(&l->pairs);
fail_src:
  tbl_free(&l->src);
fail_l:
  free(l);
  return rv;
}

void gw_limits_del(gw_limits *l) {
  if (!l) {
    return;
  }
  pthread_mutex_destroy(&l->mu);
  tbl_free(&l->src);
  tbl_free(&l->pairs);
  tbl_free(&l->pend);
  free(l);
}

static int nonempty(const char *s) {
  return s && s[0];
}

/* The source window's wait for one more start; the lock is held. */
static long long source_wait(gw_limits *l, lim_key ks, long long now) {
  uint32_t i;

  if (l->c.starts_per_source == 0) {
    return 0;
  }
  i = tbl_find(&l->src, ks, now);
  if (i == NIL) {
    return 0;
  }
  return win_wait(&l->src.nodes[i].u.src.w, now, l->c.source_window_s * 1000LL,
                  l->c.starts_per_source);
}

/* Counts one start from the source; the lock is held. */
static void source_count(gw_limits *l, lim_key ks, long long now) {
  long long wms = l->c.source_window_s * 1000LL;
  uint32_t i;
  lim_node *n;

  if (l->c.starts_per_source == 0) {
    return;
  }
  i = tbl_get(&l->src, ks, now);
  if (i == NIL) {
    return; /* out of memory: fail open, the other limits still hold */
  }
  n = &l->src.nodes[i];
  win_roll(&n->u.src.w, now, wms);
  n->u.src.w.cur++;
  n->expires_ms = win_expiry(&n->u.src.w, wms);
}

gw_limit_result gw_limits_source_check(gw_limits *l, const char *source_ip,
                                       long long now_ms, int *retry_after_s) {
  gw_limit_result r = GW_LIMIT_OK;
  long long wait;
  lim_key ks;

  if (retry_after_s) {
    *retry_after_s = 0;
  }
  if (!l || !nonempty(source_ip)) {
    return GW_LIMIT_OK;
  }
  ks = make_key(l, 's', source_ip, NULL);
  pthread_mutex_lock(&l->mu);
  tbl_reap(&l->src, now_ms);
  wait = source_wait(l, ks, now_ms);
  if (wait > 0) {
    r = GW_LIMIT_SOURCE;
    if (retry_after_s) {
      *retry_after_s = to_seconds(wait);
    }
  } else {
    source_count(l, ks, now_ms);
  }
  pthread_mutex_unlock(&l->mu);
  return r;
}

gw_limit_result gw_limits_begin(gw_limits *l, const char *msisdn,
                                const char *source_ip, const char *client_id,
                                long long now_ms, int *retry_after_s,
                                uint64_t *ticket) {
  return gw_limits_begin_ex(l, msisdn, source_ip, client_id, 0, now_ms,
                            retry_after_s, ticket);
}

gw_limit_result gw_limits_begin_ex(gw_limits *l, const char *msisdn,
                                   const char *source_ip, const char *client_id,
                                   unsigned flags, long long now_ms,
                                   int *retry_after_s, uint64_t *ticket) {
  int has_src = nonempty(source_ip);
  int check_src = has_src && !(flags & GW_LIMITS_SOURCE_COUNTED);
  lim_key kphone, ksrc = {0, 0}, kpair[2] = {{0, 0}, {0, 0}};
  int has[2];
  gw_limit_result r = GW_LIMIT_OK;
  long long wait = 0;
  uint32_t i;
  int k;

  if (retry_after_s) {
    *retry_after_s = 0;
  }
  if (ticket) {
    *ticket = 0;
  }
  if (!l) {
    return GW_LIMIT_OK;
  }
  /* Hash outside the lock; the same work whatever the inputs. */
  kphone = make_key(l, 'p', msisdn, NULL);
  if (has_src) {
    ksrc = make_key(l, 's', source_ip, NULL);
    kpair[0] = make_key(l, 'S', msisdn, source_ip);
  }
  has[0] = has_src;
  has[1] = nonempty(client_id);
  if (has[1]) {
    kpair[1] = make_key(l, 'C', msisdn, client_id);
  }

  pthread_mutex_lock(&l->mu);
  tbl_reap(&l->src, now_ms);
  tbl_reap(&l->pairs, now_ms);
  tbl_reap(&l->pend, now_ms);

  /* 1. starts from the source */
  if (check_src) {
    wait = source_wait(l, ksrc, now_ms);
    if (wait > 0) {
      r = GW_LIMIT_SOURCE;
      goto done;
    }
  }
  /* 2. the pairs' hour and day caps */
  for (k = 0; k < 2; k++) {
    lim_node *n;

    if (!has[k] || (i = tbl_find(&l->pairs, kpair[k], now_ms)) == NIL) {
      continue;
    }
    n = &l->pairs.nodes[i];
    if (l->c.per_pair_hour > 0) {
      wait = max_ll(
          wait, win_wait(&n->u.pair.hour, now_ms, HOUR_MS, l->c.per_pair_hour));
    }
    if (l->c.per_pair_day > 0) {
      wait = max_ll(
          wait, win_wait(&n->u.pair.day, now_ms, DAY_MS, l->c.per_pair_day));
    }
  }
  if (wait > 0) {
    r = GW_LIMIT_PAIR;
    goto done;
  }
  /* 3. the pairs' cool-downs; one that has passed starts a new streak */
  for (k = 0; k < 2; k++) {
    lim_node *n;

    if (!has[k] || (i = tbl_find(&l->pairs, kpair[k], now_ms)) == NIL) {
      continue;
    }
    n = &l->pairs.nodes[i];
    if (n->u.pair.cool_until > now_ms) {
      wait = max_ll(wait, n->u.pair.cool_until - now_ms);
    } else if (n->u.pair.cool_until != 0) {
      n->u.pair.cool_until = 0;
      n->u.pair.streak = 0;
    }
  }
  if (wait > 0) {
    r = GW_LIMIT_COOLDOWN;
    goto done;
  }
  /* 4. one pending sign-in per phone */
  i = tbl_find(&l->pend, kphone, now_ms);
  if (i != NIL) {
    wait = l->pend.nodes[i].expires_ms - now_ms;
    r = GW_LIMIT_PENDING;
    goto done;
  }

  /* Accepted: count the start everywhere and mark the phone. */
  if (check_src) {
    source_count(l, ksrc, now_ms);
  }
  for (k = 0; k < 2; k++) {
    lim_node *n;

    if (!has[k] || (i = tbl_get(&l->pairs, kpair[k], now_ms)) == NIL) {
      continue;
    }
    n = &l->pairs.nodes[i];
    win_roll(&n->u.pair.hour, now_ms, HOUR_MS);
    win_roll(&n->u.pair.day, now_ms, DAY_MS);
    n->u.pair.hour.cur++;
    n->u.pair.day.cur++;
    pair_set_expiry(n, now_ms);
  }
  i = tbl_get(&l->pend, kphone, now_ms);
  if (i != NIL) {
    lim_node *n = &l->pend.nodes[i];

    if (++l->seq == 0) {
      l->seq = 1;
    }
    n->u.pend.ticket = ((uint64_t)l->seq << 32) | ((uint64_t)i + 1);
    n->u.pend.pair[0] = kpair[0];
    n->u.pend.pair[1] = kpair[1];
    n->u.pend.has[0] = has[0];
    n->u.pend.has[1] = has[1];
    n->expires_ms = now_ms + l->c.pending_max_s * 1000LL;
    if (ticket) {
      *ticket = n->u.pend.ticket;
    }
  }

done:
  pthread_mutex_unlock(&l->mu);
  if (r != GW_LIMIT_OK && retry_after_s) {
    *retry_after_s = to_seconds(wait);
  }
  return r;
}

void gw_limits_end(gw_limits *l, uint64_t ticket, int refused,
                   long long now_ms) {
  uint32_t idx = (uint32_t)(ticket & 0xffffffffU) - 1;
  lim_key pair[2];
  int has[2], k;
  lim_node *n;

  if (!l || ticket == 0 || (ticket & 0xffffffffU) == 0) {
    return;
  }
  pthread_mutex_lock(&l->mu);
  if (idx >= l->pend.hiwater) {
    goto done;
  }
  n = &l->pend.nodes[idx];
  if (!n->used || n->u.pend.ticket != ticket) {
    goto done;
  }
  for (k = 0; k < 2; k++) {
    pair[k] = n->u.pend.pair[k];
    has[k] = n->u.pend.has[k];
  }
  tbl_remove(&l->pend, idx);
  if (refused != 0 && refused != 1) {
    goto done;
  }
  for (k = 0; k < 2; k++) {
    uint32_t i;
    lim_node *p;

    if (!has[k]) {
      continue;
    }
    i = refused ? tbl_get(&l->pairs, pair[k], now_ms)
                : tbl_find(&l->pairs, pair[k], now_ms);
    if (i == NIL) {
      continue;
    }
    p = &l->pairs.nodes[i];
    if (!refused) {
      p->u.pair.streak = 0;
      continue;
    }
    if (p->u.pair.cool_until != 0 && p->u.pair.cool_until <= now_ms) {
      p->u.pair.cool_until = 0; /* a cool-down served: a new streak */
      p->u.pair.streak = 0;
    }
    if (p->u.pair.streak < UINT32_MAX) {
      p->u.pair.streak++;
    }
    if (l->c.refusals_cooldown > 0 &&
        p->u.pair.streak >= (uint32_t)l->c.refusals_cooldown) {
      p->u.pair.cool_until =
          max_ll(p->u.pair.cool_until, now_ms + l->c.cooldown_s * 1000LL);
    }
    pair_set_expiry(p, now_ms);
  }
done:
  pthread_mutex_unlock(&l->mu);
}

void gw_limits_stats(gw_limits *l, size_t *sources, size_t *pairs,
                     size_t *pending) {
  if (!l) {
    return;
  }
  pthread_mutex_lock(&l->mu);
  if (sources) {
    *sources = l->src.count;
  }
  if (pairs) {
    *pairs = l->pairs.count;
  }
  if (pending) {
    *pending = l->pend.count;
  }
  pthread_mutex_unlock(&l->mu);
}
