/* gw_session.c — browser login sessions in memory (gw_session.h). */
#include "gw_session.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "gw_buf.h"
#include "gw_err.h"
#include "gw_jose.h"

#define NBUCKETS 4096u
#define PURGE_EVERY_MS 30000

typedef struct sess {
  unsigned char hash[32]; /* SHA-256 of the cookie value */
  gw_session_info info;
  struct sess *next;
} sess;

struct gw_sessions {
  pthread_mutex_t mu;
  sess *buckets[NBUCKETS];
  size_t count, cap;
  long long idle_ms, max_ms;
  long long last_purge_ms;
};

static long long now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int gw_session_random_id(char *out, size_t cap) {
  unsigned char r[32];
  gw_buf b;
  int rv;

  if (!out || cap < GW_SESSION_ID_LEN + 1) {
    return GW_ERR_INVALID;
  }
  if (RAND_bytes(r, sizeof(r)) != 1) {
    return GW_ERR_INTERNAL;
  }
  gw_buf_init(&b, GW_SESSION_ID_LEN + 1);
  rv = gw_b64url_encode(r, sizeof(r), &b);
  if (rv == GW_OK) {
    memcpy(out, b.data, b.len + 1);
  }
  OPENSSL_cleanse(r, sizeof(r));
  if (b.data) {
    OPENSSL_cleanse(b.data, b.len);
  }
  gw_buf_free(&b);
  return rv;
}

/* Only well-formed ids are hashed: anything else is not a session. */
static int id_hash(const char *id, unsigned char out[32]) {
  size_t n;

  if (!id) {
    return -1;
  }
  n = strlen(id);
  if (n != GW_SESSION_ID_LEN ||
      strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                 "0123456789-_") != n) {
    return -1;
  }
  SHA256((const unsigned char *)id, n, out);
  return 0;
}

static unsigned bucket_of(const unsigned char h[32]) {
  return ((unsigned)h[0] << 8 | h[1]) % NBUCKETS;
}

static int live(const gw_sessions *s, const sess *e, long long now) {
  return now - e->info.last_ms < s->idle_ms &&
         now - e->info.created_ms < s->max_ms;
}

static void sess_free(sess *e) {
  OPENSSL_cleanse(e, sizeof(*e));
  free(e);
}

/* Under the mutex. Returns the link pointing at the session, or NULL. */
static sess **find(gw_sessions *s, const unsigned char h[32]) {
  sess **pp = &s->buckets[bucket_of(h)];

  for (; *pp; pp = &(*pp)->next) {
    if (CRYPTO_memcmp((*pp)->hash, h, 32) == 0) {
      return pp;
    }
  }
  return NULL;
}

static size_t purge_locked(gw_sessions *s, long long now) {
  size_t n = 0;

  for (unsigned b = 0; b < NBUCKETS; b++) {
    sess **pp = &s->buckets[b];

    while (*pp) {
      if (!live(s, *pp, now)) {
        sess *dead = *pp;

        *pp = dead->next;
        sess_free(dead);
        s->count--;
        n++;
      } else {
        pp = &(*pp)->next;
      }
    }
  }
  s->last_purge_ms = now;
  return n;
}

int gw_sessions_new(gw_sessions **out, int idle_s, int max_s, size_t cap) {
  gw_sessions *s;

  if (!out || idle_s <= 0 || max_s <= 0) {
    return GW_ERR_INVALID;
  }
  s = calloc(1, sizeof(*s));
  if (!s) {
    return GW_ERR_NOMEM;
  }
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    free(s);
    return GW_ERR_NOMEM;
  }
  s->idle_ms = (long long)idle_s * 1000;
  s->max_ms = (long long)max_s * 1000;
  s->cap = cap ? cap : GW_SESSION_MAX_DEFAULT;
  s->last_purge_ms = now_ms();
  *out = s;
  return GW_OK;
}

void gw_sessions_del(gw_sessions *s) {
  if (!s) {
    return;
  }
  for (unsigned b = 0; b < NBUCKETS; b++) {
    while (s->buckets[b]) {
      sess *e = s->buckets[b];

      s->buckets[b] = e->next;
      sess_free(e);
    }
  }
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int gw_session_create(gw_sessions *s, char id[GW_SESSION_ID_LEN + 1],
                      gw_session_info *info) {
  sess *e;
  long long now = now_ms();
  int rv;

  if (!s || !id) {
    return GW_ERR_INVALID;
  }
  e = calloc(1, sizeof(*e));
  if (!e) {
    return GW_ERR_NOMEM;
  }
  if (gw_session_random_id(id, GW_SESSION_ID_LEN + 1) != GW_OK ||
      gw_session_random_id(e->info.sid, sizeof(e->info.sid)) != GW_OK ||
      gw_session_random_id(e->info.csrf, sizeof(e->info.csrf)) != GW_OK ||
      id_hash(id, e->hash) != 0) {
    sess_free(e);
    return GW_ERR_INTERNAL;
  }
  e->info.created_ms = e->info.last_ms = now;
  pthread_mutex_lock(&s->mu);
  if (now - s->last_purge_ms >= PURGE_EVERY_MS || s->count >= s->cap) {
    purge_locked(s, now);
  }
  if (s->count >= s->cap) {
    rv = GW_ERR_LIMIT;
  } else {
    unsigned b = bucket_of(e->hash);

    e->next = s->buckets[b];
    s->buckets[b] = e;
    s->count++;
    if (info) {
      *info = e->info;
    }
    rv = GW_OK;
  }
  pthread_mutex_unlock(&s->mu);
  if (rv != GW_OK) {
    sess_free(e);
  }
  return rv;
}

int gw_session_get(gw_sessions *s, const char *id, gw_session_info *out) {
  unsigned char h[32];
  sess **pp;
  long long now = now_ms();
  int rv = GW_ERR_NOT_FOUND;

  if (!s || !out) {
    return GW_ERR_INVALID;
  }
  if (id_hash(id, h) != 0) {
    return GW_ERR_NOT_FOUND;
  }
  pthread_mutex_lock(&s->mu);
  pp = find(s, h);
  if (pp && live(s, *pp, now)) {
    (*pp)->info.last_ms = now;
    *out = (*pp)->info;
    rv = GW_OK;
  }
  pthread_mutex_unlock(&s->mu);
  return rv;
}

int gw_session_put(gw_sessions *s, const char *id, const gw_session_info *in) {
  unsigned char h[32];
  sess **pp;
  int rv = GW_ERR_NOT_FOUND;

  if (!s || !in) {
    return GW_ERR_INVALID;
  }
  if (id_hash(id, h) != 0) {
    return GW_ERR_NOT_FOUND;
  }
  pthread_mutex_lock(&s->mu);
  pp = find(s, h);
  if (pp && live(s, *pp, now_ms())) {
    gw_session_info keep = (*pp)->info;

    (*pp)->info = *in;
    memcpy((*pp)->info.sid, keep.sid, sizeof(keep.sid));
    (*pp)->info.created_ms = keep.created_ms;
    (*pp)->info.last_ms = keep.last_ms;
    rv = GW_OK;
  }
  pthread_mutex_unlock(&s->mu);
  return rv;
}

int gw_session_rotate(gw_sessions *s, const char *old_id,
                      char new_id[GW_SESSION_ID_LEN + 1]) {
  unsigned char h[32], nh[32];
  char csrf[GW_SESSION_ID_LEN + 1];
  sess **pp, *e;
  int rv = GW_ERR_NOT_FOUND;

  if (!s || !new_id) {
    return GW_ERR_INVALID;
  }
  if (id_hash(old_id, h) != 0) {
    return GW_ERR_NOT_FOUND;
  }
  if (gw_session_random_id(new_id, GW_SESSION_ID_LEN + 1) != GW_OK ||
      gw_session_random_id(csrf, sizeof(csrf)) != GW_OK ||
      id_hash(new_id, nh) != 0) {
    return GW_ERR_INTERNAL;
  }
  pthread_mutex_lock(&s->mu);
  pp = find(s, h);
  if (pp && live(s, *pp, now_ms())) {
    unsigned b = bucket_of(nh);

    e = *pp;
    *pp = e->next;
    memcpy(e->hash, nh, sizeof(nh));
    memcpy(e->info.csrf, csrf, sizeof(csrf));
    e->next = s->buckets[b];
    s->buckets[b] = e;
    rv = GW_OK;
  }
  pthread_mutex_unlock(&s->mu);
  OPENSSL_cleanse(csrf, sizeof(csrf));
  return rv;
}

int gw_session_end(gw_sessions *s, const char *id, gw_session_info *out) {
  unsigned char h[32];
  sess **pp, *e = NULL;
  int rv = GW_ERR_NOT_FOUND;

  if (!s) {
    return GW_ERR_INVALID;
  }
  if (id_hash(id, h) != 0) {
    return GW_ERR_NOT_FOUND;
  }
  pthread_mutex_lock(&s->mu);
  pp = find(s, h);
  if (pp) {
    e = *pp;
    *pp = e->next;
    s->count--;
    if (live(s, e, now_ms())) {
      if (out) {
        *out = e->info;
      }
      rv = GW_OK;
    }
  }
  pthread_mutex_unlock(&s->mu);
  if (e) {
    sess_free(e);
  }
  return rv;
}

int gw_session_add_family(gw_sessions *s, const char *sid, const char *family) {
  int rv = GW_ERR_NOT_FOUND;

  if (!s || !sid || !family || !*sid) {
    return GW_ERR_INVALID;
  }
  pthread_mutex_lock(&s->mu);
  /* By sid: a linear scan, as rare as sign-ins. */
  for (unsigned b = 0; b < NBUCKETS && rv != GW_OK; b++) {
    for (sess *e = s->buckets[b]; e; e = e->next) {
      gw_session_info *i = &e->info;

      if (strcmp(i->sid, sid) != 0) {
        continue;
      }
      if (i->nfamilies == GW_SESSION_MAX_FAMILIES) {
        memmove(i->families[0], i->families[1],
                sizeof(i->families[0]) * (GW_SESSION_MAX_FAMILIES - 1));
        i->nfamilies--;
      }
      snprintf(i->families[i->nfamilies], sizeof(i->families[0]), "%s", family);
      i->nfamilies++;
      rv = GW_OK;
      break;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return rv;
}

size_t gw_sessions_purge(gw_sessions *s) {
  size_t n;

  if (!s) {
    return 0;
  }
  pthread_mutex_lock(&s->mu);
  n = purge_locked(s, now_ms());
  pthread_mutex_unlock(&s->mu);
  return n;
}

size_t gw_sessions_count(gw_sessions *s) {
  size_t n;

  if (!s) {
    return 0;
  }
  pthread_mutex_lock(&s->mu);
  n = s->count;
  pthread_mutex_unlock(&s->mu);
  return n;
}

int gw_session_csrf_ok(const gw_session_info *info, const char *given) {
  size_t n;

  if (!info || !given || !info->csrf[0]) {
    return 0;
  }
  n = strlen(info->csrf);
  return strlen(given) == n && CRYPTO_memcmp(info->csrf, given, n) == 0;
}
