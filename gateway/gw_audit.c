/* gw_audit.c — the audit log's writer thread, the hash chain, signed
 * checkpoints and the verifier. See gw_audit.h and docs/audit.md. */
#include "gw_audit.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_pki.h"

/* Rows written per store transaction: one WAL commit for many events. */
#define AUDIT_BATCH 256
/* A store failure is retried this many times before the batch is dropped
 * (and counted): the queue must not grow while the disk is broken. */
#define AUDIT_WRITE_TRIES 5
/* After a failed signature, wait this long before trying again. */
#define AUDIT_SIGN_RETRY_MS 10000LL
/* The verifier keeps one entry per checkpoint; a year of 5-minute
 * checkpoints is 105,120. */
#define AUDIT_VERIFY_CP_MAX 10000000LL
#define AUDIT_KEYS_MAX 32

typedef struct audit_item {
  struct audit_item *next;
  long long ts;
  char kind[GW_STORE_AUDIT_KIND_MAX + 1];
  char subject[GW_STORE_AUDIT_SUBJECT_MAX + 1];
  char *data; /* compact JSON, malloc'd (jansson) */
} audit_item;

struct gw_audit {
  gw_store *store; /* the writer thread's own handle */
  gw_signer *signer;
  long long cp_rows, cp_ms;
  size_t queue_max;

  pthread_mutex_t mu;
  pthread_cond_t cv; /* CLOCK_MONOTONIC */
  audit_item *head, *tail;
  size_t queued;
  unsigned long long dropped;       /* total, for gw_audit_dropped */
  unsigned long long dropped_since; /* not yet recorded as audit.dropped */
  int stop;
  pthread_t thread;

  /* The writer thread's alone. */
  long long seq;            /* last row written, 0 none */
  unsigned char hash[32];   /* its hash (zeros for none) */
  long long pending;        /* rows not covered by a checkpoint */
  long long last_cp_ms;     /* monotonic ms of the last checkpoint */
  long long next_sign_ms;   /* no signing attempt before this */
  gw_store_audit_row *rows; /* AUDIT_BATCH rows, reused */
  audit_item *batch[AUDIT_BATCH];
};

static long long mono_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wall_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hex32(const unsigned char h[32], char out[65]) {
  static const char digits[] = "0123456789abcdef";

  for (int i = 0; i < 32; i++) {
    out[2 * i] = digits[h[i] >> 4];
    out[2 * i + 1] = digits[h[i] & 15];
  }
  out[64] = '\0';
}

/* ---- the chain ----------------------------------------------------------- */

static void put_be(unsigned char *p, unsigned long long v, int n) {
  for (int i = n - 1; i >= 0; i--) {
    p[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
}

/* A length prefix makes the encoding unambiguous: ("ab","c") and ("a","bc")
 * hash differently. */
static int sha_lp(EVP_MD_CTX *c, const char *s) {
  unsigned char len[4];
  size_t n = s ? strlen(s) : 0;

  put_be(len, n, 4);
  return EVP_DigestUpdate(c, len, 4) == 1 &&
         (n == 0 || EVP_DigestUpdate(c, s, n) == 1);
}

void gw_audit_hash(const unsigned char prev[32], long long seq, long long ts,
                   const char *kind, const char *subject, const char *data,
                   unsigned char out[32]) {
  unsigned char num[16];
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok;

  put_be(num, (unsigned long long)seq, 8);
  put_be(num + 8, (unsigned long long)ts, 8);
  ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
       EVP_DigestUpdate(c, prev, 32) == 1 &&
       EVP_DigestUpdate(c, num, sizeof(num)) == 1 && sha_lp(c, kind) &&
       sha_lp(c, subject) && sha_lp(c, data) &&
       EVP_DigestFinal_ex(c, out, NULL) == 1;
  EVP_MD_CTX_free(c);
  if (!ok) {
    /* Out of memory: a hash that matches nothing, so that `audit verify`
     * names the row instead of the chain silently missing it. */
    memset(out, 0xff, 32);
  }
}

/* ---- the queue (any thread) ---------------------------------------------- */

static int kind_ok(const char *kind) {
  size_t n = kind ? strnlen(kind, GW_STORE_AUDIT_KIND_MAX + 1) : 0;

  if (n == 0 || n > GW_STORE_AUDIT_KIND_MAX) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if (kind[i] < 0x21 || kind[i] > 0x7e) {
      return 0;
    }
  }
  return 1;
}

/* Copies |subject| as printable ASCII: the column is an identifier, and a
 * hostile byte must not make the store refuse the whole batch. */
static void copy_subject(char *dst, const char *subject) {
  size_t i = 0;

  for (; subject && subject[i] && i < GW_STORE_AUDIT_SUBJECT_MAX; i++) {
    unsigned char c = (unsigned char)subject[i];
    dst[i] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
  }
  dst[i] = '\0';
}

/* Serialises |data| (ASCII only, so the store's UTF-8 check always holds;
 * jansson escapes control characters). */
static char *dump_data(const json_t *data) {
  char *s, buf[64];

  if (!data) {
    return strdup("{}");
  }
  s = json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
  if (s && strlen(s) > GW_STORE_AUDIT_DATA_MAX) {
    snprintf(buf, sizeof(buf), "{\"truncated\":%zu}", strlen(s));
    free(s);
    s = strdup(buf);
  }
  return s;
}

static void count_drop(gw_audit *a, const char *why) {
  unsigned long long n;

  pthread_mutex_lock(&a->mu);
  n = ++a->dropped;
  a->dropped_since++;
  pthread_mutex_unlock(&a->mu);
  /* The first and then every 1000th: a full queue must not flood the log. */
  if (n == 1 || n % 1000 == 0) {
    GW_LOG(GW_LOG_ERROR, "audit event dropped", "reason=%s dropped=%llu", why,
           n);
  }
}

void gw_audit_event(gw_audit *a, const char *kind, const char *subject,
                    json_t *data) {
  audit_item *it;
  int full;

  if (!a) {
    json_decref(data);
    return;
  }
  if (!kind_ok(kind)) {
    json_decref(data);
    count_drop(a, "bad_kind");
    return;
  }
  it = calloc(1, sizeof(*it));
  if (it) {
    it->data = dump_data(data);
  }
  json_decref(data);
  if (!it || !it->data) {
    free(it);
    count_drop(a, "out_of_memory");
    return;
  }
  it->ts = wall_ms();
  snprintf(it->kind, sizeof(it->kind), "%s", kind);
  copy_subject(it->subject, subject);

  pthread_mutex_lock(&a->mu);
  full = a->queued >= a->queue_max || a->stop;
  if (!full) {
    if (a->tail) {
      a->tail->next = it;
    } else {
      a->head = it;
    }
    a->tail = it;
    a->queued++;
    pthread_cond_signal(&a->cv);
  }
  pthread_mutex_unlock(&a->mu);
  if (full) {
    free(it->data);
    free(it);
    count_drop(a, "queue_full");
  }
}

unsigned long long gw_audit_dropped(gw_audit *a) {
  unsigned long long n;

  if (!a) {
    return 0;
  }
  pthread_mutex_lock(&a->mu);
  n = a->dropped;
  pthread_mutex_unlock(&a->mu);
  return n;
}

/* ---- the writer thread ------------------------------------------------- */

/* Reads the head of the chain from the store. */
static int audit_resync(gw_audit *a) {
  int rv = gw_store_audit_last(a->store, &a->seq, a->hash);

  if (rv == GW_ERR_NOT_FOUND) {
    a->seq = 0;
    memset(a->hash, 0, sizeof(a->hash));
    rv = GW_OK;
  }
  return rv;
}

/* Fills a->rows[0..n-1] from the batch, chained from the current head. */
static void audit_chain(gw_audit *a, size_t n) {
  const unsigned char *prev = a->hash;

  for (size_t i = 0; i < n; i++) {
    gw_store_audit_row *r = &a->rows[i];
    const audit_item *it = a->batch[i];

    r->seq = a->seq + 1 + (long long)i;
    r->ts = it->ts;
    snprintf(r->kind, sizeof(r->kind), "%s", it->kind);
    snprintf(r->subject, sizeof(r->subject), "%s", it->subject);
    snprintf(r->data, sizeof(r->data), "%s", it->data);
    memcpy(r->prev_hash, prev, 32);
    gw_audit_hash(r->prev_hash, r->seq, r->ts, r->kind, r->subject, r->data,
                  r->hash);
    prev = r->hash;
  }
}

static void sleep_ms(long long ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

  nanosleep(&ts, NULL);
}

/* Appends the batch of |n| items. Another writer on the same database (a
 * second gateway by mistake) shows as a seq conflict: re-read the head and
 * chain again. Returns GW_OK or the last failure (the batch is lost). */
static int audit_write(gw_audit *a, size_t n) {
  int rv = GW_ERR_STORE;

  for (int try = 0; try < AUDIT_WRITE_TRIES; try++) {
    audit_chain(a, n);
    rv = gw_store_audit_append(a->store, a->rows, n);
    if (rv == GW_OK) {
      a->seq = a->rows[n - 1].seq;
      memcpy(a->hash, a->rows[n - 1].hash, 32);
      a->pending += (long long)n;
      return GW_OK;
    }
    GW_LOG(GW_LOG_WARN, "audit append failed", "rows=%zu try=%d err=%s", n,
           try + 1, gw_store_errmsg(a->store));
    if (rv != GW_ERR_EXISTS) {
      sleep_ms(50LL << try);
    }
    (void)audit_resync(a); /* a failure here shows at the next try */
  }
  return rv;
}

/* Signs the head and stores the checkpoint. */
static void audit_checkpoint(gw_audit *a) {
  gw_store_audit_checkpoint cp;
  char hex[65];
  const char *kid = gw_signer_kid(a->signer, GW_JWS_ES256);
  json_t *claims;
  gw_buf jws;
  int rv;

  memset(&cp, 0, sizeof(cp));
  cp.seq = a->seq;
  cp.ts = wall_ms();
  memcpy(cp.hash, a->hash, 32);
  hex32(a->hash, hex);
  snprintf(cp.kid, sizeof(cp.kid), "%s", kid ? kid : "");
  gw_buf_init(&jws, GW_STORE_AUDIT_JWS_MAX);
  claims = json_pack("{s:I, s:s, s:I}", "seq", (json_int_t)cp.seq, "hash", hex,
                     "ts", (json_int_t)cp.ts);
  rv = claims ? gw_jwt_sign(a->signer, GW_JWS_ES256, GW_AUDIT_JWT_TYP, claims,
                            &jws)
              : GW_ERR_NOMEM;
  json_decref(claims);
  if (rv == GW_OK) {
    snprintf(cp.jws, sizeof(cp.jws), "%s", gw_buf_cstr(&jws));
    rv = gw_store_audit_checkpoint_put(a->store, &cp);
  }
  gw_buf_free(&jws);
  if (rv != GW_OK) {
    GW_LOG(GW_LOG_ERROR, "audit checkpoint failed", "seq=%lld err=%s", cp.seq,
           rv == GW_ERR_STORE || rv == GW_ERR_BUSY ? gw_store_errmsg(a->store)
                                                   : gw_strerror(rv));
    a->next_sign_ms = mono_ms() + AUDIT_SIGN_RETRY_MS;
    return;
  }
  a->pending = 0;
  a->last_cp_ms = mono_ms();
  GW_LOG(GW_LOG_INFO, "audit checkpoint", "seq=%lld hash=%s kid=%s", cp.seq,
         hex, cp.kid);
}

static int checkpoint_due(const gw_audit *a, long long now, int final) {
  if (!a->signer || a->pending == 0 || now < a->next_sign_ms) {
    return final && a->signer && a->pending > 0;
  }
  return final || a->pending >= a->cp_rows || now - a->last_cp_ms >= a->cp_ms;
}

/* When the writer should wake up for the time threshold, or -1. */
static long long wake_at(const gw_audit *a) {
  long long t;

  if (!a->signer || a->pending == 0) {
    return -1;
  }
  t = a->last_cp_ms + a->cp_ms;
  return t > a->next_sign_ms ? t : a->next_sign_ms;
}

/* Waits for work and takes up to AUDIT_BATCH items. Called locked. */
static size_t audit_take(gw_audit *a, unsigned long long *dropped) {
  long long at = wake_at(a);
  struct timespec ts;
  size_t n = 0;

  while (!a->head && !a->stop && a->dropped_since == 0) {
    if (at >= 0 && mono_ms() >= at) {
      break;
    }
    if (at < 0) {
      pthread_cond_wait(&a->cv, &a->mu);
      continue;
    }
    ts.tv_sec = (time_t)(at / 1000);
    ts.tv_nsec = (long)(at % 1000) * 1000000L;
    if (pthread_cond_timedwait(&a->cv, &a->mu, &ts) == ETIMEDOUT) {
      break;
    }
  }
  while (a->head && n < AUDIT_BATCH - 1) { /* room for audit.dropped */
    a->batch[n++] = a->head;
    a->head = a->head->next;
    a->queued--;
  }
  if (!a->head) {
    a->tail = NULL;
  }
  *dropped = a->dropped_since;
  a->dropped_since = 0;
  return n;
}

/* Puts an audit.dropped item in front of the batch. */
static size_t add_dropped(gw_audit *a, size_t n, unsigned long long dropped) {
  audit_item *it = calloc(1, sizeof(*it));
  char buf[64];

  snprintf(buf, sizeof(buf), "{\"count\":%llu}", dropped);
  if (!it || !(it->data = strdup(buf))) {
    free(it);
    return n;
  }
  it->ts = wall_ms();
  snprintf(it->kind, sizeof(it->kind), "audit.dropped");
  memmove(&a->batch[1], &a->batch[0], n * sizeof(a->batch[0]));
  a->batch[0] = it;
  return n + 1;
}

static void free_batch(gw_audit *a, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(a->batch[i]->data);
    free(a->batch[i]);
  }
}

static void *audit_main(void *arg) {
  gw_audit *a = arg;
  unsigned long long dropped;
  size_t n;
  int stop;

  for (;;) {
    pthread_mutex_lock(&a->mu);
    n = audit_take(a, &dropped);
    stop = a->stop && !a->head;
    pthread_mutex_unlock(&a->mu);
    if (dropped) {
      n = add_dropped(a, n, dropped);
    }
    if (n && audit_write(a, n) != GW_OK) {
      GW_LOG(GW_LOG_ERROR, "audit rows lost", "rows=%zu err=%s", n,
             gw_store_errmsg(a->store));
      pthread_mutex_lock(&a->mu);
      a->dropped += n;
      a->dropped_since += n;
      pthread_mutex_unlock(&a->mu);
    }
    free_batch(a, n);
    if (checkpoint_due(a, mono_ms(), stop)) {
      audit_checkpoint(a);
    }
    if (stop) {
      break;
    }
  }
  return NULL;
}

/* ---- lifetime ------------------------------------------------------------ */

/* How many rows the last checkpoint leaves uncovered, looked up near the
 * head only; when none is that close, a checkpoint is due at once (a
 * previous run died before signing its tail). */
typedef struct cp_scan {
  long long last;
} cp_scan;

static int cp_scan_cb(const gw_store_audit_checkpoint *c, void *arg) {
  ((cp_scan *)arg)->last = c->seq;
  return GW_OK;
}

static int audit_start_state(gw_audit *a, char *err, size_t errlen) {
  cp_scan scan = {0};
  int rv = audit_resync(a);

  if (rv == GW_OK && a->seq > 0) {
    rv = gw_store_audit_checkpoint_list(a->store, a->seq - a->cp_rows,
                                        cp_scan_cb, &scan);
  }
  if (rv != GW_OK) {
    gw_errf(err, errlen, "audit: cannot read the chain's head: %s",
            gw_store_errmsg(a->store));
    return rv;
  }
  a->pending = scan.last ? a->seq - scan.last : a->seq > 0 ? a->cp_rows : 0;
  a->last_cp_ms = mono_ms();
  return GW_OK;
}

static int audit_sync_init(gw_audit *a) {
  pthread_condattr_t ca;
  int rc;

  if (pthread_condattr_init(&ca) != 0) {
    return GW_ERR_NOMEM;
  }
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  rc = pthread_cond_init(&a->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0) {
    return GW_ERR_NOMEM;
  }
  if (pthread_mutex_init(&a->mu, NULL) != 0) {
    pthread_cond_destroy(&a->cv);
    return GW_ERR_NOMEM;
  }
  return GW_OK;
}

int gw_audit_new(gw_audit **out, const struct gw_config *cfg, gw_signer *signer,
                 const gw_audit_opts *opts, char *err, size_t errlen) {
  gw_audit *a;
  int rv;

  if (!out || !cfg) {
    gw_errf(err, errlen, "audit: no output or configuration");
    return GW_ERR_INVALID;
  }
  if (signer && !gw_signer_kid(signer, GW_JWS_ES256)) {
    gw_errf(err, errlen, "audit: the signer has no ES256 key");
    return GW_ERR_CONFIG;
  }
  a = calloc(1, sizeof(*a));
  if (!a || !(a->rows = calloc(AUDIT_BATCH, sizeof(*a->rows)))) {
    free(a);
    gw_errf(err, errlen, "audit: out of memory");
    return GW_ERR_NOMEM;
  }
  a->signer = signer;
  a->queue_max = opts && opts->queue_max ? opts->queue_max : GW_AUDIT_QUEUE_MAX;
  a->cp_rows = opts && opts->checkpoint_rows > 0 ? opts->checkpoint_rows
                                                 : GW_AUDIT_CHECKPOINT_ROWS;
  a->cp_ms = opts && opts->checkpoint_ms > 0 ? opts->checkpoint_ms
                                             : GW_AUDIT_CHECKPOINT_MS;
  rv = gw_store_open(&a->store, cfg->store_backend, cfg->store_path,
                     cfg->store_busy_timeout_ms, err, errlen);
  if (rv != GW_OK) {
    goto fail_alloc;
  }
  rv = audit_start_state(a, err, errlen);
  if (rv != GW_OK) {
    goto fail_store;
  }
  rv = audit_sync_init(a);
  if (rv != GW_OK) {
    gw_errf(err, errlen, "audit: cannot create the queue's lock");
    goto fail_store;
  }
  if (pthread_create(&a->thread, NULL, audit_main, a) != 0) {
    gw_errf(err, errlen, "audit: cannot start the writer thread");
    rv = GW_ERR_INTERNAL;
    goto fail_sync;
  }
  if (!signer) {
    GW_LOG(GW_LOG_WARN, "audit checkpoints disabled", "reason=%s", "no_signer");
  }
  GW_LOG(GW_LOG_INFO, "audit log started", "seq=%lld pending=%lld", a->seq,
         a->pending);
  *out = a;
  return GW_OK;

fail_sync:
  pthread_cond_destroy(&a->cv);
  pthread_mutex_destroy(&a->mu);
fail_store:
  gw_store_close(a->store);
fail_alloc:
  free(a->rows);
  free(a);
  return rv;
}

void gw_audit_del(gw_audit *a) {
  if (!a) {
    return;
  }
  pthread_mutex_lock(&a->mu);
  a->stop = 1;
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
  pthread_join(a->thread, NULL);
  /* audit_main drained the queue before it returned. */
  pthread_cond_destroy(&a->cv);
  pthread_mutex_destroy(&a->mu);
  gw_store_close(a->store);
  free(a->rows);
  free(a);
}

/* ---- verification ---------------------------------------------------------
 * Own ES256 verification with public keys only: gw_jwt_verify needs a
 * signer, which holds private keys (a token or PEM private keys), and the
 * verifier must run where only the public keys are. */

typedef struct audit_key {
  char kid[GW_PKI_KID_LEN + 1];
  EVP_PKEY *pub;
} audit_key;

typedef struct audit_keys {
  audit_key k[AUDIT_KEYS_MAX];
  int n;
} audit_keys;

static void keys_free(audit_keys *ks) {
  for (int i = 0; i < ks->n; i++) {
    EVP_PKEY_free(ks->k[i].pub);
  }
  ks->n = 0;
}

/* Non-zero when |k| is an EC P-256 key. */
static int is_p256(EVP_PKEY *k) {
  char group[32];
  size_t len = 0;

  return EVP_PKEY_base_id(k) == EVP_PKEY_EC &&
         EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group),
                                        &len) == 1 &&
         strcmp(group, "prime256v1") == 0;
}

/* Adds the key of |path| when it is an EC P-256 public key; others (the
 * RS256 key, certificates) are skipped. */
static void keys_add_file(audit_keys *ks, const char *path) {
  FILE *f = fopen(path, "r");
  EVP_PKEY *k;

  if (!f) {
    return;
  }
  k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
  fclose(f);
  if (k && is_p256(k) && ks->n < AUDIT_KEYS_MAX &&
      gw_pki_kid(k, ks->k[ks->n].kid, sizeof(ks->k[ks->n].kid)) == GW_OK) {
    ks->k[ks->n++].pub = k;
    return;
  }
  EVP_PKEY_free(k);
}

static int keys_load(audit_keys *ks, const char *dir, gw_audit_report *rep) {
  char path[4096];
  struct dirent *de;
  size_t n;
  DIR *d = opendir(dir);

  if (!d) {
    snprintf(rep->reason, sizeof(rep->reason), "cannot read %s: %s", dir,
             strerror(errno));
    return GW_ERR_CONFIG;
  }
  while ((de = readdir(d)) != NULL) {
    n = strlen(de->d_name);
    if (n > 4 && strcmp(de->d_name + n - 4, ".pem") == 0 &&
        (size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) <
            sizeof(path)) {
      keys_add_file(ks, path);
    }
  }
  closedir(d);
  ERR_clear_error();
  if (ks->n == 0) {
    snprintf(rep->reason, sizeof(rep->reason),
             "no EC P-256 public key (*.pem) in %s", dir);
    return GW_ERR_CONFIG;
  }
  return GW_OK;
}

static EVP_PKEY *keys_find(const audit_keys *ks, const char *kid) {
  for (int i = 0; i < ks->n; i++) {
    if (strcmp(ks->k[i].kid, kid) == 0) {
      return ks->k[i].pub;
    }
  }
  return NULL;
}

/* Decodes the base64url JSON object of |p| (|n| bytes). */
static json_t *b64_json(const char *p, size_t n) {
  unsigned char buf[GW_STORE_AUDIT_JWS_MAX];
  size_t len;

  if (gw_b64url_decode(p, n, buf, sizeof(buf), &len) != GW_OK) {
    return NULL;
  }
  return json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
}

/* Verifies the raw r||s ES256 signature |sig| over |msg| with |pub|. */
static int es256_ok(EVP_PKEY *pub, const char *msg, size_t n,
                    const unsigned char sig[64]) {
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
  unsigned char *der = NULL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int len, ok = 0;

  if (!es || !r || !s || !md || ECDSA_SIG_set0(es, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    goto done;
  }
  len = i2d_ECDSA_SIG(es, &der);
  ok = len > 0 &&
       EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
       EVP_DigestVerify(md, der, (size_t)len, (const unsigned char *)msg, n) ==
           1;
done:
  OPENSSL_free(der);
  ECDSA_SIG_free(es);
  EVP_MD_CTX_free(md);
  ERR_clear_error();
  return ok;
}

/* Checks the header of |jws| (alg ES256, our typ, the stored |kid|, a key
 * of that kid in |ks|) and its signature. Returns non-zero when good. */
static int jws_signature_ok(const audit_keys *ks, const char *jws,
                            const char *kid) {
  const char *d1 = strchr(jws, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  unsigned char sig[64];
  size_t siglen;
  json_t *h;
  EVP_PKEY *pub;
  int ok;

  if (!d1 || !d2 || strchr(d2 + 1, '.')) {
    return 0;
  }
  h = b64_json(jws, (size_t)(d1 - jws));
  ok = h && json_is_string(json_object_get(h, "alg")) &&
       strcmp(json_string_value(json_object_get(h, "alg")), "ES256") == 0 &&
       json_is_string(json_object_get(h, "typ")) &&
       strcmp(json_string_value(json_object_get(h, "typ")), GW_AUDIT_JWT_TYP) ==
           0 &&
       json_is_string(json_object_get(h, "kid")) &&
       strcmp(json_string_value(json_object_get(h, "kid")), kid) == 0;
  json_decref(h);
  pub = ok ? keys_find(ks, kid) : NULL;
  if (!pub ||
      gw_b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof(sig), &siglen) !=
          GW_OK ||
      siglen != 64) {
    return 0;
  }
  return es256_ok(pub, jws, (size_t)(d2 - jws), sig);
}

/* Checks that the payload of a verified |jws| says what the row says. */
static int jws_payload_ok(const gw_store_audit_checkpoint *c) {
  const char *d1 = strchr(c->jws, '.'), *d2 = strchr(d1 + 1, '.');
  json_t *p = b64_json(d1 + 1, (size_t)(d2 - d1 - 1));
  json_t *seq = json_object_get(p, "seq"), *hash = json_object_get(p, "hash");
  char hex[65];
  int ok;

  hex32(c->hash, hex);
  ok = json_is_integer(seq) && json_integer_value(seq) == c->seq &&
       json_is_string(hash) && strcmp(json_string_value(hash), hex) == 0;
  json_decref(p);
  return ok;
}

typedef struct audit_cp {
  long long seq;
  unsigned char hash[32];
  int sig_ok;
} audit_cp;

typedef struct verify_state {
  const audit_keys *keys;
  gw_audit_report *rep;
  audit_cp *cps;
  size_t ncp, capcp, icp;
  long long from;
  long long expect; /* the next row's seq, 0 before the first */
  unsigned char prev[32];
} verify_state;

static int cp_collect(const gw_store_audit_checkpoint *c, void *arg) {
  verify_state *v = arg;
  audit_cp *grown;

  if (v->ncp == v->capcp) {
    if (v->capcp >= AUDIT_VERIFY_CP_MAX) {
      snprintf(v->rep->reason, sizeof(v->rep->reason),
               "more than %lld checkpoints", AUDIT_VERIFY_CP_MAX);
      return GW_ERR_TOO_LARGE;
    }
    grown = realloc(v->cps, (v->capcp ? v->capcp * 2 : 64) * sizeof(*grown));
    if (!grown) {
      return GW_ERR_NOMEM;
    }
    v->cps = grown;
    v->capcp = v->capcp ? v->capcp * 2 : 64;
  }
  v->cps[v->ncp].seq = c->seq;
  memcpy(v->cps[v->ncp].hash, c->hash, 32);
  v->cps[v->ncp].sig_ok =
      jws_signature_ok(v->keys, c->jws, c->kid) && jws_payload_ok(c);
  v->ncp++;
  return GW_OK;
}

static int fault(verify_state *v, long long seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fault(verify_state *v, long long seq, const char *fmt, ...) {
  va_list ap;

  v->rep->bad_seq = seq;
  va_start(ap, fmt);
  vsnprintf(v->rep->reason, sizeof(v->rep->reason), fmt, ap);
  va_end(ap);
  return GW_ERR_INVALID;
}

/* Checks the checkpoint |cp| against the recomputed |hash| of its row (NULL:
 * the row is not in the table). */
static int check_cp(verify_state *v, const audit_cp *cp,
                    const unsigned char *hash) {
  if (!cp->sig_ok) {
    return fault(v, cp->seq, "checkpoint at %lld: bad signature", cp->seq);
  }
  if (!hash) {
    return fault(v, cp->seq,
                 "checkpoint at %lld: its row is missing (rows were deleted)",
                 cp->seq);
  }
  if (memcmp(cp->hash, hash, 32) != 0) {
    return fault(v, cp->seq,
                 "checkpoint at %lld: the chain differs from the signed one "
                 "(rows up to %lld were rewritten)",
                 cp->seq, cp->seq);
  }
  v->rep->checkpoints++;
  v->rep->last_checkpoint = cp->seq;
  return GW_OK;
}

static int verify_row(const gw_store_audit_row *r, void *arg) {
  verify_state *v = arg;
  unsigned char h[32];
  int rv;

  if (v->expect == 0) {
    if (v->from <= 1 && r->seq != 1) {
      return fault(v, r->seq,
                   "row %lld: the chain does not start at row 1 (rows were "
                   "deleted)",
                   r->seq);
    }
    /* From row 1 the link is to nothing (zeros); from a later row it is
     * trusted as stored. */
    if (v->from <= 1) {
      memset(v->prev, 0, 32);
    } else {
      memcpy(v->prev, r->prev_hash, 32);
    }
    v->rep->first_seq = r->seq;
  } else if (r->seq != v->expect) {
    return fault(v, v->expect, "row %lld: missing (rows %lld..%lld deleted)",
                 v->expect, v->expect, r->seq - 1);
  }
  gw_audit_hash(v->prev, r->seq, r->ts, r->kind, r->subject, r->data, h);
  if (memcmp(r->prev_hash, v->prev, 32) != 0 || memcmp(h, r->hash, 32) != 0) {
    return fault(v, r->seq,
                 "row %lld: hash mismatch (the row or an earlier one was "
                 "changed)",
                 r->seq);
  }
  for (; v->icp < v->ncp && v->cps[v->icp].seq <= r->seq; v->icp++) {
    rv = check_cp(v, &v->cps[v->icp], v->cps[v->icp].seq == r->seq ? h : NULL);
    if (rv != GW_OK) {
      return rv;
    }
  }
  memcpy(v->prev, h, 32);
  v->expect = r->seq + 1;
  v->rep->rows++;
  v->rep->last_seq = r->seq;
  return GW_OK;
}

/* Checkpoints beyond the last row: it covered rows that are gone. */
static int verify_tail(verify_state *v) {
  const audit_cp *cp;

  if (v->icp >= v->ncp) {
    return GW_OK;
  }
  cp = &v->cps[v->icp];
  if (!cp->sig_ok) {
    return fault(v, cp->seq, "checkpoint at %lld: bad signature", cp->seq);
  }
  return fault(v, cp->seq,
               "rows after the last row %lld are missing: checkpoint at %lld "
               "covers them (rows were deleted)",
               v->rep->last_seq, cp->seq);
}

int gw_audit_verify(gw_store *s, const char *keys_dir, long long from_seq,
                    gw_audit_report *rep) {
  audit_keys keys = {.n = 0};
  verify_state v;
  int rv;

  memset(rep, 0, sizeof(*rep));
  memset(&v, 0, sizeof(v));
  v.keys = &keys;
  v.rep = rep;
  v.from = from_seq;
  rv = keys_load(&keys, keys_dir, rep);
  if (rv != GW_OK) {
    return rv;
  }
  rv = gw_store_audit_checkpoint_list(s, from_seq, cp_collect, &v);
  if (rv == GW_OK) {
    rv = gw_store_audit_list(s, from_seq, verify_row, &v);
  }
  if (rv == GW_OK) {
    rv = verify_tail(&v);
  }
  if (rv != GW_OK && rv != GW_ERR_INVALID && !rep->reason[0]) {
    /* A row the store cannot even read (a hash that is not 32 bytes, an
     * oversized value) was written by someone else. */
    snprintf(rep->reason, sizeof(rep->reason), "after row %lld: %s",
             rep->last_seq, gw_store_errmsg(s));
    rep->bad_seq = rep->last_seq + 1;
  }
  free(v.cps);
  keys_free(&keys);
  return rv;
}
