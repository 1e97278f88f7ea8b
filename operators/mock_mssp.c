/* mock_mssp.c — the mock MSSPs' transaction engine. See mock_mssp.h.
 *
 * Everything lives on one event loop: the subscriber table, the
 * transactions, the replay table, their timers. SIM work goes to a p11_pool
 * as a job carrying copies of what it needs (never a pointer into the
 * tables); the pool thread puts the finished job on a mutex-protected list
 * and activates an event, and the loop applies the result to whatever the
 * job's transaction or operation has become meanwhile (it may have timed
 * out, or the client may have gone). */
#include "mock_mssp.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "gw_err.h"
#include "gw_http.h"
#include "gw_log.h"
#include "p11.h"

#define BUCKETS 4096
#define PIN_MAX 64
#define HOUSEKEEPING_MS 1000
#define WRONG_PIN_RETRY_MS 50 /* a wrong_pin user types the next PIN */
#define DELAY_MAX 3600000     /* ms, for behaviour arguments */

/* ---- behaviours --------------------------------------------------------- */

typedef enum bkind {
  B_APPROVE,
  B_REFUSE,
  B_NO_ANSWER,
  B_HANDSET,
  B_PIN_BLOCKED,
  B_WRONG_PIN,
  B_ABSENT,
  B_SIM_ERROR,
  B_NOT_SUBSCRIBER
} bkind;

typedef struct behaviour {
  bkind kind;
  int arg; /* delay in ms, or the fault code of not_subscriber */
} behaviour;

static const struct {
  const char *name;
  bkind kind;
  int takes_arg;
  int def;
} behaviour_table[] = {
    {"approve", B_APPROVE, 1, 1000},
    {"refuse", B_REFUSE, 1, 1000},
    {"no_answer", B_NO_ANSWER, 0, 0},
    {"handset", B_HANDSET, 0, 0},
    {"pin_blocked", B_PIN_BLOCKED, 0, 0},
    {"wrong_pin", B_WRONG_PIN, 1, 1000},
    {"absent", B_ABSENT, 1, 500},
    {"sim_error", B_SIM_ERROR, 1, 500},
    {"not_subscriber", B_NOT_SUBSCRIBER, 1, MSS_NO_KEY_FOUND},
};

#define N_BEHAVIOURS (sizeof(behaviour_table) / sizeof(behaviour_table[0]))

static int behaviour_parse(const char *s, behaviour *out) {
  const char *colon;
  size_t wl;
  long v = -1;

  if (!s || !s[0] || strlen(s) > MOCK_BEHAVIOUR_MAX) {
    return GW_ERR_INVALID;
  }
  colon = strchr(s, ':');
  wl = colon ? (size_t)(colon - s) : strlen(s);
  if (colon) {
    const char *p = colon + 1;
    if (!*p || strlen(p) > 7) {
      return GW_ERR_INVALID;
    }
    v = 0;
    for (; *p; p++) {
      if (*p < '0' || *p > '9') {
        return GW_ERR_INVALID;
      }
      v = v * 10 + (*p - '0');
    }
  }
  for (size_t i = 0; i < N_BEHAVIOURS; i++) {
    if (strlen(behaviour_table[i].name) != wl ||
        strncmp(behaviour_table[i].name, s, wl) != 0) {
      continue;
    }
    if (colon && !behaviour_table[i].takes_arg) {
      return GW_ERR_INVALID;
    }
    out->kind = behaviour_table[i].kind;
    out->arg = colon ? (int)v : behaviour_table[i].def;
    if (out->kind == B_NOT_SUBSCRIBER) {
      if (out->arg != MSS_NO_KEY_FOUND && out->arg != MSS_NO_CERT_FOUND) {
        return GW_ERR_INVALID;
      }
    } else if (out->arg > DELAY_MAX) {
      return GW_ERR_INVALID;
    }
    return GW_OK;
  }
  return GW_ERR_INVALID;
}

int mock_mssp_behaviour_check(const char *b) {
  behaviour tmp;

  return behaviour_parse(b, &tmp);
}

/* ---- structures --------------------------------------------------------- */

typedef struct tx tx;

typedef struct sub {
  char msisdn[MSS_MSISDN_MAX + 1];
  char reg_behaviour[MOCK_BEHAVIOUR_MAX + 1]; /* "" = none or unusable */
  char override[MOCK_BEHAVIOUR_MAX + 1];
  int overridden;
  uint8_t *cert; /* DER */
  size_t cert_len;
  tx *running;
  struct sub *next;
} sub;

struct mock_op {
  mock_op_fn fn;
  void *arg;
  int forgotten;
  tx *waiting_on; /* wait operations, while in the transaction's list */
  mock_op *next;
};

struct tx {
  mock_tx_info info;
  mock_mssp *e;
  sub *sub;
  behaviour b;
  uint8_t *data; /* decoded DataToBeSigned */
  size_t n;
  uint8_t *sig; /* result (500) */
  size_t sig_len;
  uint8_t *cert; /* the certificate the SIM signed with */
  size_t cert_len;
  struct event *step_ev;     /* the behaviour's next step */
  struct event *deadline_ev; /* TimeOut */
  long long ended_mono;
  int job_inflight;
  mock_op *waiters;
  tx *hnext;       /* hash chain */
  tx *prev, *next; /* every transaction, oldest first */
};

typedef struct replay {
  char *key;
  long long expires; /* monotonic ms */
  struct replay *hnext;
  struct replay *fnext; /* insertion order = expiry order */
} replay;

typedef enum job_kind {
  JOB_SIGN,
  JOB_BLOCK,
  JOB_STATE,
  JOB_RESET,
  JOB_UNBLOCK
} job_kind;

typedef struct job {
  mock_mssp *e;
  job_kind kind;
  char msisdn[MSS_MSISDN_MAX + 1];
  char tx_id[MSS_MSSP_TRANSID_MAX + 1]; /* "" for control operations */
  char pin[PIN_MAX + 1];
  char puk[PIN_MAX + 1];
  mock_sim_data_kind dkind;
  uint8_t *data;
  size_t n;
  mock_sim_format fmt;
  uint8_t *cert;
  size_t cert_len;
  const uint8_t *chain; /* the engine's, immutable while it lives */
  size_t chain_len;
  mock_op *op;
  /* results */
  int rv;
  mock_sim_outcome outcome;
  int pin_left, puk_left;
  uint8_t *sig;
  size_t sig_len;
  struct job *next;
} job;

struct mock_mssp {
  char operator_name[32];
  char mssp_id[MSS_URI_MAX + 1];
  char default_format[MSS_URI_MAX + 1];
  char default_behaviour[MOCK_BEHAVIOUR_MAX + 1];
  char user_pin[PIN_MAX + 1];
  char wrong_pin[PIN_MAX + 1];
  int allow_server_server;
  mock_ap *aps;
  size_t naps;
  int default_timeout_s, max_timeout_s, keep_done_s, max_transactions;
  int replay_window_s, replay_max;
  mock_sims *sims;
  uint8_t *chain; /* DER certificates for every CMS, one after the other */
  size_t chain_len;
  void (*on_end)(void *arg, const mock_tx_info *tx);
  void (*on_change)(void *arg, const char *msisdn);
  void *hook_arg;

  struct event_base *base;
  struct event *done_ev;
  struct event *hk_ev;
  p11_pool *pool;
  pthread_mutex_t done_lock;
  job *done; /* finished jobs, filled by pool threads */

  sub *subs[BUCKETS];
  size_t nsubs;
  tx *txs[BUCKETS];
  tx *tx_head, *tx_tail;
  size_t ntx;
  replay *replays[BUCKETS];
  replay *replay_head, *replay_tail;
  size_t nreplays;
  mock_mssp_stats stats;
};

/* ---- small helpers ------------------------------------------------------ */

static size_t hash_str(const char *s) {
  size_t h = 5381;

  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    h = h * 33 + *p;
  }
  return h % BUCKETS;
}

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

static void copy_str(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src ? src : "");
}

static struct timeval ms_tv(long long ms) {
  struct timeval tv;

  tv.tv_sec = (time_t)(ms / 1000);
  tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
  return tv;
}

/* Fills |f| for |code| with a formatted detail; returns |code|. */
static int fault(mss_fault *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fault(mss_fault *f, int code, const char *fmt, ...) {
  char detail[MSS_FAULT_DETAIL_MAX + 1];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  mss_fault_set(f, code, detail[0] ? detail : NULL);
  return code;
}

/* Copies text from the network into a log value. */
static const char *q(char *buf, size_t cap, const char *s) {
  return gw_log_quote(buf, cap, s, strlen(s));
}

int mock_mssp_msisdn_norm(const char *in, char *out, size_t cap) {
  char digits[MSS_MSISDN_MAX + 1];
  const char *p = in;
  size_t n = 0;

  if (!in || !out) {
    return GW_ERR_INVALID;
  }
  if (p[0] == '+') {
    p++;
  } else if (p[0] == '0' && p[1] == '0') {
    p += 2;
  }
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || n >= 15) {
      return GW_ERR_INVALID;
    }
    digits[n++] = *p;
  }
  digits[n] = '\0';
  if (n == 0) {
    return GW_ERR_INVALID;
  }
  if (in[0] != '+' && !(in[0] == '0' && in[1] == '0') && n == 8) {
    /* A local Omani number. */
    if ((size_t)snprintf(out, cap, "+968%s", digits) >= cap) {
      return GW_ERR_INVALID;
    }
    return GW_OK;
  }
  if ((size_t)snprintf(out, cap, "+%s", digits) >= cap) {
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

/* ---- configuration ------------------------------------------------------ */

void mock_mssp_config_init(mock_mssp_config *c) {
  memset(c, 0, sizeof(*c));
  c->operator_name = "omantel";
  c->mssp_id = "http://mssp.mock/omantel";
  c->default_format = MSS_FORMAT_PKCS7;
  c->default_timeout_s = 300;
  c->max_timeout_s = 600;
  c->keep_done_s = 600;
  c->max_transactions = 10000;
  c->replay_window_s = 86400;
  c->replay_max = 100000;
  c->default_behaviour = "approve:1000";
  c->user_pin = "1234";
  c->wrong_pin = "0000";
  c->pool_threads = 2;
}

/* Reads every certificate of the PEM file |path| into DER bytes, one after
 * the other. */
static int chain_load(const char *path, uint8_t **out, size_t *out_len,
                      char *err, size_t errlen) {
  BIO *b = BIO_new_file(path, "r");
  X509 *x;
  uint8_t *buf = NULL, *p;
  size_t len = 0;
  int n, count = 0;

  if (!b) {
    snprintf(err, errlen, "cannot read the CMS chain file %s", path);
    return GW_ERR_INVALID;
  }
  while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    n = i2d_X509(x, NULL);
    if (n <= 0 || len + (size_t)n > MOCK_SIM_CHAIN_MAX) {
      X509_free(x);
      free(buf);
      BIO_free(b);
      snprintf(err, errlen, "%s: certificates over %d bytes", path,
               MOCK_SIM_CHAIN_MAX);
      return GW_ERR_INVALID;
    }
    p = realloc(buf, len + (size_t)n);
    if (!p) {
      X509_free(x);
      free(buf);
      BIO_free(b);
      return GW_ERR_NOMEM;
    }
    buf = p;
    p = buf + len;
    i2d_X509(x, &p);
    len += (size_t)n;
    count++;
    X509_free(x);
  }
  ERR_clear_error(); /* the end of the file reads as an error */
  BIO_free(b);
  if (count == 0) {
    free(buf);
    snprintf(err, errlen, "%s holds no PEM certificate", path);
    return GW_ERR_INVALID;
  }
  *out = buf;
  *out_len = len;
  return GW_OK;
}

int mock_mssp_new(mock_mssp **out, const mock_mssp_config *cfg, char *err,
                  size_t errlen) {
  mock_mssp *e;
  behaviour b;

#define BAD(...)                                                               \
  do {                                                                         \
    snprintf(err, errlen, __VA_ARGS__);                                        \
    return GW_ERR_INVALID;                                                     \
  } while (0)
  if (!out || !cfg) {
    BAD("missing argument");
  }
  if (!cfg->sims) {
    BAD("no SIM bank");
  }
  if (!cfg->aps || cfg->naps == 0 || cfg->naps > MOCK_AP_MAX) {
    BAD("between 1 and %d application providers are needed", MOCK_AP_MAX);
  }
  if (!cfg->operator_name || !cfg->operator_name[0] ||
      strlen(cfg->operator_name) >= 32 || !cfg->mssp_id ||
      strlen(cfg->mssp_id) > MSS_URI_MAX) {
    BAD("operator name or MSSP_ID missing or too long");
  }
  if (!cfg->default_format ||
      (strcmp(cfg->default_format, MSS_FORMAT_PKCS7) != 0 &&
       strcmp(cfg->default_format, MSS_FORMAT_PKCS1) != 0)) {
    BAD("default format must be %s or %s", MSS_FORMAT_PKCS7, MSS_FORMAT_PKCS1);
  }
  if (behaviour_parse(cfg->default_behaviour, &b) != GW_OK) {
    BAD("default behaviour \"%s\" does not parse",
        cfg->default_behaviour ? cfg->default_behaviour : "");
  }
  if (cfg->default_timeout_s < 1 || cfg->max_timeout_s < 1 ||
      cfg->default_timeout_s > cfg->max_timeout_s ||
      cfg->max_timeout_s > 86400) {
    BAD("timeouts: 1 <= default <= max <= 86400 s");
  }
  if (cfg->keep_done_s < 1 || cfg->max_transactions < 1 ||
      cfg->replay_window_s < 1 || cfg->replay_max < 1 ||
      cfg->pool_threads < 1 || cfg->pool_threads > 16) {
    BAD("keep_done_s, max_transactions, replay_window_s, replay_max >= 1; "
        "pool_threads 1..16");
  }
  if (!cfg->user_pin || !cfg->user_pin[0] || strlen(cfg->user_pin) > PIN_MAX ||
      !cfg->wrong_pin || !cfg->wrong_pin[0] ||
      strlen(cfg->wrong_pin) > PIN_MAX ||
      strcmp(cfg->user_pin, cfg->wrong_pin) == 0) {
    BAD("user PIN and wrong PIN: 1..%d bytes, different", PIN_MAX);
  }
#undef BAD
  e = calloc(1, sizeof(*e));
  if (!e) {
    return GW_ERR_NOMEM;
  }
  e->aps = calloc(cfg->naps, sizeof(*e->aps));
  if (!e->aps || p11_pool_new(&e->pool, cfg->pool_threads, 100000) != P11_OK) {
    free(e->aps);
    free(e);
    return GW_ERR_NOMEM;
  }
  memcpy(e->aps, cfg->aps, cfg->naps * sizeof(*e->aps));
  e->naps = cfg->naps;
  copy_str(e->operator_name, sizeof(e->operator_name), cfg->operator_name);
  copy_str(e->mssp_id, sizeof(e->mssp_id), cfg->mssp_id);
  copy_str(e->default_format, sizeof(e->default_format), cfg->default_format);
  copy_str(e->default_behaviour, sizeof(e->default_behaviour),
           cfg->default_behaviour);
  copy_str(e->user_pin, sizeof(e->user_pin), cfg->user_pin);
  copy_str(e->wrong_pin, sizeof(e->wrong_pin), cfg->wrong_pin);
  e->allow_server_server = cfg->allow_server_server;
  e->default_timeout_s = cfg->default_timeout_s;
  e->max_timeout_s = cfg->max_timeout_s;
  e->keep_done_s = cfg->keep_done_s;
  e->max_transactions = cfg->max_transactions;
  e->replay_window_s = cfg->replay_window_s;
  e->replay_max = cfg->replay_max;
  e->sims = cfg->sims;
  e->on_end = cfg->on_end;
  e->on_change = cfg->on_change;
  e->hook_arg = cfg->hook_arg;
  pthread_mutex_init(&e->done_lock, NULL);
  if (cfg->chain_file && cfg->chain_file[0]) {
    int rv = chain_load(cfg->chain_file, &e->chain, &e->chain_len, err, errlen);
    if (rv != GW_OK) {
      mock_mssp_del(e);
      return rv;
    }
  }
  *out = e;
  return GW_OK;
}

/* ---- subscribers -------------------------------------------------------- */

static sub *sub_find(mock_mssp *e, const char *msisdn) {
  for (sub *s = e->subs[hash_str(msisdn)]; s; s = s->next) {
    if (strcmp(s->msisdn, msisdn) == 0) {
      return s;
    }
  }
  return NULL;
}

/* The behaviour in effect for |s|, as text. */
static const char *sub_behaviour(const mock_mssp *e, const sub *s) {
  if (s->overridden) {
    return s->override;
  }
  return s->reg_behaviour[0] ? s->reg_behaviour : e->default_behaviour;
}

/* Reads a certificate in PEM or DER into new DER bytes. */
static int cert_to_der(const void *cert, size_t len, uint8_t **out,
                       size_t *out_len) {
  const unsigned char *p = cert;
  X509 *x = NULL;
  unsigned char *der = NULL;
  int n;

  if (len > 11 && memcmp(cert, "-----BEGIN ", 11) == 0) {
    BIO *b = BIO_new_mem_buf(cert, (int)len);
    x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
  } else {
    x = d2i_X509(NULL, &p, (long)len);
    if (x && p != (const unsigned char *)cert + len) {
      X509_free(x);
      x = NULL;
    }
  }
  if (!x) {
    return GW_ERR_INVALID;
  }
  n = i2d_X509(x, &der);
  X509_free(x);
  if (n <= 0 || (size_t)n > MSS_CERT_MAX) {
    OPENSSL_free(der);
    return n <= 0 ? GW_ERR_NOMEM : GW_ERR_INVALID;
  }
  *out = malloc((size_t)n);
  if (!*out) {
    OPENSSL_free(der);
    return GW_ERR_NOMEM;
  }
  memcpy(*out, der, (size_t)n);
  OPENSSL_free(der);
  *out_len = (size_t)n;
  return GW_OK;
}

int mock_mssp_add_subscriber(mock_mssp *e, const char *msisdn, const char *beh,
                             const void *cert, size_t cert_len) {
  char norm[MSS_MSISDN_MAX + 1];
  uint8_t *der = NULL;
  size_t der_len = 0;
  sub *s;
  int rv;

  if (!e || mock_mssp_msisdn_norm(msisdn, norm, sizeof(norm)) != GW_OK ||
      strcmp(norm, msisdn) != 0) {
    return GW_ERR_INVALID;
  }
  if (beh && beh[0] && mock_mssp_behaviour_check(beh) != GW_OK) {
    return GW_ERR_INVALID;
  }
  if (cert) {
    rv = cert_to_der(cert, cert_len, &der, &der_len);
    if (rv != GW_OK) {
      return rv;
    }
  }
  s = sub_find(e, norm);
  if (!s) {
    size_t b = hash_str(norm);
    s = calloc(1, sizeof(*s));
    if (!s) {
      free(der);
      return GW_ERR_NOMEM;
    }
    copy_str(s->msisdn, sizeof(s->msisdn), norm);
    s->next = e->subs[b];
    e->subs[b] = s;
    e->nsubs++;
  }
  free(s->cert);
  s->cert = der;
  s->cert_len = der_len;
  copy_str(s->reg_behaviour, sizeof(s->reg_behaviour), beh);
  return GW_OK;
}

typedef struct load_ctx {
  mock_mssp *e;
  size_t n;
  int rv;
} load_ctx;

static int load_one(const gw_store_sub *row, void *arg) {
  load_ctx *c = arg;
  const char *beh = row->behaviour;
  char qb[96];
  int rv;

  if (strcasecmp(row->operator_name, c->e->operator_name) != 0) {
    return GW_OK;
  }
  if (beh[0] && mock_mssp_behaviour_check(beh) != GW_OK) {
    GW_LOG(GW_LOG_WARN, "unknown behaviour in the registry; using the default",
           "msisdn=%s behaviour=%s default=%s", row->msisdn,
           q(qb, sizeof(qb), beh), c->e->default_behaviour);
    beh = "";
  }
  rv = mock_mssp_add_subscriber(c->e, row->msisdn, beh, row->cert_pem,
                                strlen(row->cert_pem));
  if (rv == GW_ERR_INVALID) {
    /* A row the mock cannot use (odd MSISDN, certificate that does not
     * parse): the SIM stays unknown (105) rather than stopping start-up. */
    GW_LOG(GW_LOG_WARN, "registry row skipped", "msisdn=%s reason=%s",
           row->msisdn, "bad MSISDN or certificate");
    return GW_OK;
  }
  if (rv != GW_OK) {
    c->rv = rv;
    return rv;
  }
  c->n++;
  return GW_OK;
}

int mock_mssp_load_registry(mock_mssp *e, gw_store *st, size_t *loaded,
                            char *err, size_t errlen) {
  load_ctx c = {.e = e};
  int rv;

  if (!e || !st) {
    snprintf(err, errlen, "missing argument");
    return GW_ERR_INVALID;
  }
  rv = gw_store_sub_list(st, NULL, load_one, &c);
  if (rv != GW_OK) {
    snprintf(err, errlen, "cannot read the subscriber registry: %s",
             c.rv ? gw_strerror(c.rv) : gw_store_errmsg(st));
    return rv;
  }
  if (loaded) {
    *loaded = c.n;
  }
  return GW_OK;
}

/* ---- transactions: table ------------------------------------------------ */

static tx *tx_find(mock_mssp *e, const char *id) {
  for (tx *t = e->txs[hash_str(id)]; t; t = t->hnext) {
    if (strcmp(t->info.mssp_trans_id, id) == 0) {
      return t;
    }
  }
  return NULL;
}

/* A fresh MSSP_TransID: an NCName ("T" and 20 hex digits, 80 random
 * bits), unique among the transactions kept. */
static int tx_new_id(mock_mssp *e, char *out, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  unsigned char r[10];

  for (int attempt = 0; attempt < 8; attempt++) {
    if (RAND_bytes(r, sizeof(r)) != 1 || cap < 2 + 2 * sizeof(r)) {
      return GW_ERR_INTERNAL;
    }
    out[0] = 'T';
    for (size_t i = 0; i < sizeof(r); i++) {
      out[1 + 2 * i] = hex[r[i] >> 4];
      out[2 + 2 * i] = hex[r[i] & 15];
    }
    out[1 + 2 * sizeof(r)] = '\0';
    if (!tx_find(e, out)) {
      return GW_OK;
    }
  }
  return GW_ERR_INTERNAL;
}

static void tx_free(mock_mssp *e, tx *t) {
  tx **pp = &e->txs[hash_str(t->info.mssp_trans_id)];

  while (*pp && *pp != t) {
    pp = &(*pp)->hnext;
  }
  if (*pp) {
    *pp = t->hnext;
  }
  if (t->prev) {
    t->prev->next = t->next;
  } else {
    e->tx_head = t->next;
  }
  if (t->next) {
    t->next->prev = t->prev;
  } else {
    e->tx_tail = t->prev;
  }
  e->ntx--;
  if (t->sub && t->sub->running == t) {
    t->sub->running = NULL;
  }
  while (t->waiters) {
    mock_op *op = t->waiters;
    t->waiters = op->next;
    free(op);
  }
  if (t->step_ev) {
    event_free(t->step_ev);
  }
  if (t->deadline_ev) {
    event_free(t->deadline_ev);
  }
  free(t->data);
  free(t->sig);
  free(t->cert);
  free(t);
}

/* ---- replay table ------------------------------------------------------- */

static char *replay_key(const char *ap_id, const char *ap_trans_id) {
  char *k = NULL;

  if (asprintf(&k, "%s\n%s", ap_id, ap_trans_id) < 0) {
    return NULL;
  }
  return k;
}

static void replay_drop_head(mock_mssp *e) {
  replay *r = e->replay_head, **pp;

  if (!r) {
    return;
  }
  e->replay_head = r->fnext;
  if (!e->replay_head) {
    e->replay_tail = NULL;
  }
  pp = &e->replays[hash_str(r->key)];
  while (*pp && *pp != r) {
    pp = &(*pp)->hnext;
  }
  if (*pp) {
    *pp = r->hnext;
  }
  e->nreplays--;
  free(r->key);
  free(r);
}

static void replay_expire(mock_mssp *e, long long now) {
  while (e->replay_head && e->replay_head->expires <= now) {
    replay_drop_head(e);
  }
}

/* Returns 1 when the pair was seen (a replay), 0 when it is new (and now
 * remembered), or GW_ERR_NOMEM. */
static int replay_check(mock_mssp *e, const char *ap_id,
                        const char *ap_trans_id) {
  char *key = replay_key(ap_id, ap_trans_id);
  long long now = mono_ms();
  size_t b;
  replay *r;

  if (!key) {
    return GW_ERR_NOMEM;
  }
  replay_expire(e, now);
  b = hash_str(key);
  for (r = e->replays[b]; r; r = r->hnext) {
    if (strcmp(r->key, key) == 0) {
      free(key);
      return 1;
    }
  }
  while (e->nreplays >= (size_t)e->replay_max) {
    replay_drop_head(e);
  }
  r = calloc(1, sizeof(*r));
  if (!r) {
    free(key);
    return GW_ERR_NOMEM;
  }
  r->key = key;
  r->expires = now + (long long)e->replay_window_s * 1000;
  r->hnext = e->replays[b];
  e->replays[b] = r;
  if (e->replay_tail) {
    e->replay_tail->fnext = r;
  } else {
    e->replay_head = r;
  }
  e->replay_tail = r;
  e->nreplays++;
  return 0;
}

/* ---- APs ---------------------------------------------------------------- */

static const mock_ap *ap_auth(const mock_mssp *e, const mss_ap_info *ai) {
  size_t pl = strlen(ai->ap_pwd);

  for (size_t i = 0; i < e->naps; i++) {
    const mock_ap *a = &e->aps[i];
    if (strcmp(a->ap_id, ai->ap_id) != 0) {
      continue;
    }
    if (strlen(a->ap_pwd) == pl &&
        CRYPTO_memcmp(a->ap_pwd, ai->ap_pwd, pl) == 0) {
      return a;
    }
    return NULL;
  }
  return NULL;
}

static int auth_fault(const mock_mssp *e, const mss_ap_info *ai, mss_fault *f,
                      const char *what) {
  char qa[300];

  GW_LOG(GW_LOG_INFO, "AP authentication failed",
         "operator=%s message=%s ap_id=%s", e->operator_name, what,
         q(qa, sizeof(qa), ai->ap_id));
  return fault(f, MSS_UNAUTHORIZED_ACCESS, "unknown AP_ID or wrong AP_PWD");
}

/* ---- transactions: life ------------------------------------------------- */

static void tx_end(mock_mssp *e, tx *t, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void tx_end(mock_mssp *e, tx *t, int status, const char *fmt, ...) {
  mock_op *list, *op, *next;
  mock_op_result r;
  va_list ap;

  if (t->info.state == MOCK_TX_DONE) {
    return;
  }
  t->info.state = MOCK_TX_DONE;
  t->info.status = status;
  va_start(ap, fmt);
  vsnprintf(t->info.detail, sizeof(t->info.detail), fmt, ap);
  va_end(ap);
  t->info.ended_at = wall_ms();
  t->ended_mono = mono_ms();
  if (t->sub && t->sub->running == t) {
    t->sub->running = NULL;
  }
  if (t->step_ev) {
    event_del(t->step_ev);
  }
  if (t->deadline_ev) {
    event_del(t->deadline_ev);
  }
  e->stats.running--;
  e->stats.kept++;
  if (status == MSS_SIGNATURE) {
    e->stats.signed_ok++;
  } else {
    e->stats.failed++;
  }
  GW_LOG(GW_LOG_INFO, "transaction ended",
         "operator=%s mssp_trans_id=%s msisdn=%s status=%d name=%s "
         "duration_ms=%lld",
         e->operator_name, t->info.mssp_trans_id, t->info.msisdn, status,
         mss_status_name(status), t->info.ended_at - t->info.created_at);
  /* Waiters: detached first, so that a callback that forgets another wait
   * of this list only marks it. */
  list = t->waiters;
  t->waiters = NULL;
  for (op = list; op; op = op->next) {
    op->waiting_on = NULL;
  }
  memset(&r, 0, sizeof(r));
  r.rv = GW_OK;
  r.status = status;
  r.pin_tries_left = -1;
  r.puk_tries_left = -1;
  for (op = list; op; op = next) {
    next = op->next;
    if (!op->forgotten) {
      op->fn(op->arg, &r);
    }
    free(op);
  }
  if (e->on_end) {
    e->on_end(e->hook_arg, &t->info);
  }
  if (e->on_change) {
    e->on_change(e->hook_arg, t->info.msisdn);
  }
}

static void job_done_cb(evutil_socket_t fd, short what, void *arg);

static void job_free(job *j) {
  OPENSSL_cleanse(j->pin, sizeof(j->pin));
  OPENSSL_cleanse(j->puk, sizeof(j->puk));
  free(j->data);
  free(j->cert);
  free(j->sig);
  free(j);
}

/* Pool thread: the SIM work. */
static void job_run(void *arg) {
  job *j = arg;
  mock_mssp *e = j->e;

  j->pin_left = -1;
  j->puk_left = -1;
  switch (j->kind) {
  case JOB_SIGN:
    j->sig_len = MOCK_SIM_SIG_MAX;
    j->sig = malloc(j->sig_len);
    if (!j->sig) {
      j->rv = GW_ERR_NOMEM;
      break;
    }
    j->rv = mock_sim_sign(e->sims, j->msisdn, j->pin, j->dkind, j->data, j->n,
                          j->fmt, j->cert, j->cert_len, j->chain, j->chain_len,
                          j->sig, &j->sig_len, &j->outcome, &j->pin_left);
    break;
  case JOB_BLOCK:
    j->rv = mock_sim_set_state(e->sims, j->msisdn, 0, -1);
    j->outcome = MOCK_SIM_PIN_BLOCKED;
    break;
  case JOB_RESET:
    j->rv = mock_sim_set_state(e->sims, j->msisdn, MOCK_SIM_PIN_TRIES,
                               MOCK_SIM_PUK_TRIES);
    j->outcome = MOCK_SIM_OK;
    break;
  case JOB_UNBLOCK:
    j->rv = mock_sim_unblock(e->sims, j->msisdn, j->puk, j->pin, &j->outcome,
                             &j->puk_left);
    break;
  case JOB_STATE:
    j->outcome = MOCK_SIM_OK;
    j->rv = GW_OK;
    break;
  }
  OPENSSL_cleanse(j->pin, sizeof(j->pin));
  OPENSSL_cleanse(j->puk, sizeof(j->puk));
  if (j->rv == GW_OK && j->kind != JOB_SIGN) {
    mock_sim_state(e->sims, j->msisdn, &j->pin_left, &j->puk_left);
  } else if (j->rv == GW_OK) {
    mock_sim_state(e->sims, j->msisdn, NULL, &j->puk_left);
  }
  pthread_mutex_lock(&e->done_lock);
  j->next = e->done;
  e->done = j;
  pthread_mutex_unlock(&e->done_lock);
  event_active(e->done_ev, EV_READ, 0);
}

static int job_submit(mock_mssp *e, job *j) {
  if (p11_pool_submit(e->pool, job_run, j) != P11_OK) {
    return GW_ERR_BUSY;
  }
  return GW_OK;
}

static job *job_new(mock_mssp *e, job_kind kind, const char *msisdn) {
  job *j = calloc(1, sizeof(*j));

  if (j) {
    j->e = e;
    j->kind = kind;
    copy_str(j->msisdn, sizeof(j->msisdn), msisdn);
  }
  return j;
}

/* The user typed |pin|: the SIM signs. |op| (may be NULL) hears how it
 * went. Returns GW_OK or GW_ERR_BUSY/NOMEM (the transaction is unchanged). */
static int tx_sign(mock_mssp *e, tx *t, const char *pin, mock_op *op) {
  job *j;

  if (!t->sub->cert) {
    tx_end(e, t, MSS_NO_CERT_FOUND,
           "the SIM signed but no certificate is registered for it");
    return GW_OK;
  }
  j = job_new(e, JOB_SIGN, t->info.msisdn);
  if (!j) {
    return GW_ERR_NOMEM;
  }
  copy_str(j->tx_id, sizeof(j->tx_id), t->info.mssp_trans_id);
  copy_str(j->pin, sizeof(j->pin), pin);
  j->dkind = t->info.data_kind;
  j->fmt = t->info.format;
  j->data = malloc(t->n ? t->n : 1);
  j->cert = malloc(t->sub->cert_len);
  if (!j->data || !j->cert) {
    job_free(j);
    return GW_ERR_NOMEM;
  }
  memcpy(j->data, t->data, t->n);
  j->n = t->n;
  memcpy(j->cert, t->sub->cert, t->sub->cert_len);
  j->cert_len = t->sub->cert_len;
  j->chain = e->chain;
  j->chain_len = e->chain_len;
  j->op = op;
  if (job_submit(e, j) != GW_OK) {
    job_free(j);
    return GW_ERR_BUSY;
  }
  t->info.state = MOCK_TX_SIGNING;
  t->info.pin_attempts++;
  t->job_inflight = 1;
  return GW_OK;
}

/* Arms the behaviour's next step in |ms| milliseconds. */
static void tx_step_in(tx *t, long long ms) {
  struct timeval tv = ms_tv(ms);

  event_add(t->step_ev, &tv);
}

/* The behaviour's timer: what the virtual user (or phone) does now. */
static void step_cb(evutil_socket_t fd, short what, void *arg) {
  tx *t = arg;
  mock_mssp *e = t->e;
  int rv = GW_OK;

  (void)fd;
  (void)what;
  if (t->info.state != MOCK_TX_WAITING) {
    return;
  }
  switch (t->b.kind) {
  case B_APPROVE:
    rv = tx_sign(e, t, e->user_pin, NULL);
    break;
  case B_WRONG_PIN:
    rv = tx_sign(e, t, e->wrong_pin, NULL);
    break;
  case B_REFUSE:
    tx_end(e, t, MSS_USER_CANCEL, "the user cancelled");
    break;
  case B_ABSENT:
    tx_end(e, t, MSS_OTA_ERROR, "the phone could not be reached");
    break;
  case B_SIM_ERROR:
    tx_end(e, t, MSS_INTERNAL_ERROR, "9003 SIM application error");
    break;
  case B_NO_ANSWER:
  case B_HANDSET:
  case B_PIN_BLOCKED:
  case B_NOT_SUBSCRIBER:
    break;
  }
  if (rv != GW_OK) {
    tx_end(e, t, MSS_INTERNAL_ERROR, "the SIM could not be reached: %s",
           gw_strerror(rv));
  }
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg) {
  tx *t = arg;

  (void)fd;
  (void)what;
  tx_end(t->e, t, MSS_EXPIRED_TRANSACTION,
         "no answer within the TimeOut of %d s", t->info.timeout_s);
}

/* Applies a finished SIGN or BLOCK job to its transaction (still running,
 * or the result is dropped). Returns the transaction's status afterwards
 * (504 while it runs), for a handset operation. */
static int tx_apply(mock_mssp *e, job *j) {
  tx *t = j->tx_id[0] ? tx_find(e, j->tx_id) : NULL;

  if (!t) {
    return MSS_EXPIRED_TRANSACTION; /* forgotten meanwhile */
  }
  if (t->job_inflight) {
    t->job_inflight = 0;
  }
  if (t->info.state == MOCK_TX_DONE) {
    return t->info.status;
  }
  t->info.state = MOCK_TX_WAITING;
  if (j->rv != GW_OK) {
    tx_end(e, t, MSS_INTERNAL_ERROR, "9002 the SIM simulation failed: %s",
           gw_strerror(j->rv));
    return t->info.status;
  }
  switch (j->outcome) {
  case MOCK_SIM_OK:
    t->sig = j->sig;
    t->sig_len = j->sig_len;
    j->sig = NULL;
    t->cert = j->cert;
    t->cert_len = j->cert_len;
    j->cert = NULL;
    tx_end(e, t, MSS_SIGNATURE, "%s", "");
    break;
  case MOCK_SIM_WRONG_PIN:
    if (t->b.kind == B_HANDSET) {
      if (e->on_change) {
        e->on_change(e->hook_arg, t->info.msisdn);
      }
    } else if (t->b.kind == B_WRONG_PIN) {
      tx_step_in(t, WRONG_PIN_RETRY_MS);
    } else {
      tx_end(e, t, MSS_USER_CANCEL,
             "the user typed a wrong PIN (%d tries left) and gave up",
             j->pin_left);
    }
    break;
  case MOCK_SIM_PIN_BLOCKED:
    tx_end(e, t, MSS_PIN_NR_BLOCKED, "4021 PIN blocked");
    break;
  case MOCK_SIM_CARD_BLOCKED:
    tx_end(e, t, MSS_CARD_BLOCKED, "4031 PUK blocked");
    break;
  case MOCK_SIM_NO_TOKEN:
  case MOCK_SIM_NO_KEY:
    tx_end(e, t, MSS_NO_KEY_FOUND, "4041 no signature key on the SIM");
    break;
  case MOCK_SIM_WRONG_PUK:
  case MOCK_SIM_BAD_NEW_PIN:
  case MOCK_SIM_FAILED:
    tx_end(e, t, MSS_INTERNAL_ERROR, "9003 SIM application error");
    break;
  }
  return t->info.state == MOCK_TX_DONE ? t->info.status
                                       : MSS_OUTSTANDING_TRANSACTION;
}

/* Loop thread: the pool finished some jobs. */
static void job_done_cb(evutil_socket_t fd, short what, void *arg) {
  mock_mssp *e = arg;
  job *list, *j, *next, *rev = NULL;
  mock_op_result r;

  (void)fd;
  (void)what;
  pthread_mutex_lock(&e->done_lock);
  list = e->done;
  e->done = NULL;
  pthread_mutex_unlock(&e->done_lock);
  for (j = list; j; j = next) { /* oldest first */
    next = j->next;
    j->next = rev;
    rev = j;
  }
  for (j = rev; j; j = next) {
    next = j->next;
    memset(&r, 0, sizeof(r));
    r.status = MSS_OUTSTANDING_TRANSACTION;
    if (j->kind == JOB_SIGN || j->kind == JOB_BLOCK) {
      r.status = tx_apply(e, j);
    }
    r.rv = j->rv;
    r.outcome = j->outcome;
    r.pin_tries_left = j->pin_left;
    r.puk_tries_left = j->puk_left;
    if (j->op) {
      if (!j->op->forgotten) {
        j->op->fn(j->op->arg, &r);
      }
      free(j->op);
    }
    job_free(j);
  }
}

static void housekeeping_cb(evutil_socket_t fd, short what, void *arg) {
  mock_mssp *e = arg;
  long long now = mono_ms(), keep = (long long)e->keep_done_s * 1000;
  tx *t, *next;

  (void)fd;
  (void)what;
  for (t = e->tx_head; t; t = next) {
    next = t->next;
    if (t->info.state == MOCK_TX_DONE && t->ended_mono + keep <= now &&
        !t->job_inflight) {
      e->stats.kept--;
      tx_free(e, t);
    }
  }
  replay_expire(e, now);
}

int mock_mssp_bind(mock_mssp *e, struct event_base *base) {
  struct timeval tv = ms_tv(HOUSEKEEPING_MS);

  if (!e || !base) {
    return GW_ERR_INVALID;
  }
  if (e->base) {
    return e->base == base ? GW_OK : GW_ERR_INVALID;
  }
  e->done_ev = event_new(base, -1, 0, job_done_cb, e);
  e->hk_ev = event_new(base, -1, EV_PERSIST, housekeeping_cb, e);
  if (!e->done_ev || !e->hk_ev) {
    if (e->done_ev) {
      event_free(e->done_ev);
    }
    if (e->hk_ev) {
      event_free(e->hk_ev);
    }
    e->done_ev = e->hk_ev = NULL;
    return GW_ERR_NOMEM;
  }
  event_add(e->hk_ev, &tv);
  e->base = base;
  return GW_OK;
}

void mock_mssp_del(mock_mssp *e) {
  job *j, *next;

  if (!e) {
    return;
  }
  /* Jobs in flight finish first (they post to done_ev, which must exist). */
  p11_pool_del(e->pool);
  for (j = e->done; j; j = next) {
    next = j->next;
    free(j->op);
    job_free(j);
  }
  while (e->tx_head) {
    tx_free(e, e->tx_head);
  }
  while (e->replay_head) {
    replay_drop_head(e);
  }
  for (size_t i = 0; i < BUCKETS; i++) {
    sub *s = e->subs[i], *sn;
    for (; s; s = sn) {
      sn = s->next;
      free(s->cert);
      free(s);
    }
  }
  if (e->done_ev) {
    event_free(e->done_ev);
  }
  if (e->hk_ev) {
    event_free(e->hk_ev);
  }
  pthread_mutex_destroy(&e->done_lock);
  OPENSSL_cleanse(e->aps, e->naps * sizeof(*e->aps));
  free(e->aps);
  free(e->chain);
  OPENSSL_cleanse(e->user_pin, sizeof(e->user_pin));
  OPENSSL_cleanse(e->wrong_pin, sizeof(e->wrong_pin));
  free(e);
}

/* ---- MSS_Signature ------------------------------------------------------ */

static int mime_is(const char *mime, const char *want) {
  size_t n = strcspn(mime, ";");

  while (n > 0 && (mime[n - 1] == ' ' || mime[n - 1] == '\t')) {
    n--;
  }
  return strlen(want) == n && strncasecmp(mime, want, n) == 0;
}

static int enc_is_utf8(const char *enc) {
  return !enc[0] || strcasecmp(enc, "UTF-8") == 0 ||
         strcasecmp(enc, "UTF8") == 0;
}

/* Decodes DataToBeSigned (REFERENCE §1c) into |*out| (new) and its kind.
 * Returns GW_OK or a fault code with |f| filled. */
static int dtbs_decode(const mss_data *d, mock_sim_data_kind *kind,
                       uint8_t **out, size_t *n, mss_fault *f) {
  char qm[96];
  uint8_t *buf = malloc(MSS_DATA_MAX + 1);
  int rv;

  if (!buf) {
    return fault(f, MSS_INTERNAL_ERROR, "out of memory");
  }
  if (!d->mime_type[0] || mime_is(d->mime_type, "text/plain")) {
    *kind = MOCK_SIM_DATA_TEXT;
    if (enc_is_utf8(d->encoding)) {
      memcpy(buf, d->data, d->len);
      *n = d->len;
    } else if (strcasecmp(d->encoding, "base64") == 0) {
      if (mss_base64_decode(d->data, d->len, buf, MSS_DATA_MAX, n) != GW_OK) {
        free(buf);
        return fault(f, MSS_WRONG_PARAM, "DataToBeSigned is not base64");
      }
    } else {
      free(buf);
      return fault(f, MSS_INAPPROPRIATE_DATA,
                   "text/plain DataToBeSigned must be UTF-8 (or base64)");
    }
    if (*n == 0) {
      free(buf);
      return fault(f, MSS_WRONG_DATA_LENGTH, "DataToBeSigned is empty");
    }
    if (!mss_display_fits((const char *)buf, *n, NULL, NULL)) {
      free(buf);
      return fault(f, MSS_INAPPROPRIATE_DATA,
                   "the text to be signed does not fit the SIM's display "
                   "(GSM-7: %d characters, UCS-2 such as Arabic: %d) or is "
                   "not UTF-8",
                   MSS_DISPLAY_GSM7_MAX, MSS_DISPLAY_UCS2_MAX);
    }
  } else if (mime_is(d->mime_type, "application/x-sha256") ||
             mime_is(d->mime_type, "application/octet-stream")) {
    int digest = mime_is(d->mime_type, "application/x-sha256");
    if (d->encoding[0] && strcasecmp(d->encoding, "base64") != 0) {
      free(buf);
      return fault(
          f, MSS_INAPPROPRIATE_DATA, "%s DataToBeSigned must be base64",
          digest ? "application/x-sha256" : "application/octet-stream");
    }
    rv = mss_base64_decode(d->data, d->len, buf, MSS_DATA_MAX, n);
    if (rv != GW_OK) {
      free(buf);
      return fault(
          f, rv == GW_ERR_TOO_LARGE ? MSS_WRONG_DATA_LENGTH : MSS_WRONG_PARAM,
          "DataToBeSigned is not base64");
    }
    if (digest && *n != 32) {
      free(buf);
      return fault(f, MSS_WRONG_DATA_LENGTH,
                   "application/x-sha256 DataToBeSigned must be 32 bytes, "
                   "got %zu",
                   *n);
    }
    if (*n == 0) {
      free(buf);
      return fault(f, MSS_WRONG_DATA_LENGTH, "DataToBeSigned is empty");
    }
    *kind = digest ? MOCK_SIM_DATA_DIGEST : MOCK_SIM_DATA_BYTES;
  } else {
    free(buf);
    return fault(f, MSS_INAPPROPRIATE_DATA,
                 "DataToBeSigned MimeType %s is not supported (text/plain, "
                 "application/x-sha256, application/octet-stream)",
                 q(qm, sizeof(qm), d->mime_type));
  }
  *out = buf;
  return GW_OK;
}

/* Checks DataToBeDisplayed: UTF-8 text that fits the SIM. Copies it to
 * |display|. Returns GW_OK or a fault code. */
static int dtbd_check(const mss_data *d, char *display, size_t cap,
                      mss_fault *f) {
  int gsm7 = 0;
  size_t units = 0;

  if (d->mime_type[0] && !mime_is(d->mime_type, "text/plain")) {
    return fault(f, MSS_INAPPROPRIATE_DATA,
                 "DataToBeDisplayed must be text/plain");
  }
  if (!enc_is_utf8(d->encoding)) {
    return fault(f, MSS_INAPPROPRIATE_DATA,
                 "DataToBeDisplayed must be UTF-8 text");
  }
  if (!mss_display_fits(d->data, d->len, &gsm7, &units)) {
    return fault(f, MSS_INAPPROPRIATE_DATA,
                 "the display text does not fit the SIM: %s, %zu %s, at most "
                 "%d; it is never cut",
                 units == 0 ? "not UTF-8 text"
                 : gsm7     ? "GSM-7"
                            : "UCS-2",
                 units, gsm7 ? "septets" : "UTF-16 units",
                 gsm7 ? MSS_DISPLAY_GSM7_MAX : MSS_DISPLAY_UCS2_MAX);
  }
  copy_str(display, cap, d->data);
  return GW_OK;
}

static void fill_mssp_info(const mock_mssp *e, mss_mssp_info *m) {
  copy_str(m->id, sizeof(m->id), e->mssp_id);
  mss_instant_format(time(NULL), m->instant, sizeof(m->instant));
}

static void fill_ap_echo(mss_ap_info *dst, const mss_ap_info *src) {
  *dst = *src;
  dst->ap_pwd[0] = '\0'; /* never echoed */
}

static void fill_status(mss_status_info *s, int code) {
  s->code = code;
  copy_str(s->message, sizeof(s->message), mss_status_name(code));
}

static void fill_signature(const tx *t, mss_signature *s) {
  if (t->info.format == MOCK_SIM_FORMAT_PKCS1) {
    s->kind = MSS_SIG_PKCS1;
    memcpy(s->cert, t->cert, t->cert_len);
    s->cert_len = t->cert_len;
  } else {
    s->kind = MSS_SIG_PKCS7;
  }
  memcpy(s->sig, t->sig, t->sig_len);
  s->len = t->sig_len;
}

/* Starts the behaviour of a new transaction. */
static int tx_begin(mock_mssp *e, tx *t) {
  struct timeval tv = ms_tv((long long)t->info.timeout_s * 1000);
  job *j;

  t->step_ev = event_new(e->base, -1, 0, step_cb, t);
  t->deadline_ev = event_new(e->base, -1, 0, deadline_cb, t);
  if (!t->step_ev || !t->deadline_ev) {
    return GW_ERR_NOMEM;
  }
  event_add(t->deadline_ev, &tv);
  switch (t->b.kind) {
  case B_APPROVE:
  case B_REFUSE:
  case B_WRONG_PIN:
  case B_ABSENT:
  case B_SIM_ERROR:
    tx_step_in(t, t->b.arg);
    break;
  case B_PIN_BLOCKED:
    j = job_new(e, JOB_BLOCK, t->info.msisdn);
    if (!j) {
      return GW_ERR_NOMEM;
    }
    copy_str(j->tx_id, sizeof(j->tx_id), t->info.mssp_trans_id);
    if (job_submit(e, j) != GW_OK) {
      job_free(j);
      return GW_ERR_BUSY;
    }
    t->info.state = MOCK_TX_SIGNING;
    t->job_inflight = 1;
    break;
  case B_NO_ANSWER:
  case B_HANDSET:
  case B_NOT_SUBSCRIBER:
    break;
  }
  return GW_OK;
}

int mock_mssp_signature(mock_mssp *e, const mss_signature_req *req,
                        mss_signature_resp *resp, mss_fault *f) {
  char norm[MSS_MSISDN_MAX + 1], qa[300], qt[80];
  const char *beh;
  const mock_ap *ap;
  mock_sim_data_kind kind;
  mock_sim_format fmt;
  uint8_t *data = NULL;
  size_t n = 0;
  behaviour b;
  sub *s;
  tx *t;
  int rv, timeout;

  if (!e || !req || !resp || !f) {
    return GW_ERR_INVALID;
  }
  if (!e->base) {
    return GW_ERR_INVALID;
  }
  memset(resp, 0, sizeof(*resp));
  memset(f, 0, sizeof(*f));
  e->stats.requests++;
  ap = ap_auth(e, &req->ap_info);
  if (!ap) {
    e->stats.refused++;
    return auth_fault(e, &req->ap_info, f, "MSS_SignatureReq");
  }
  rv = replay_check(e, req->ap_info.ap_id, req->ap_info.ap_trans_id);
  if (rv < 0) {
    return rv;
  }
  if (rv == 1) {
    e->stats.refused++;
    GW_LOG(GW_LOG_INFO, "replayed AP_TransID refused",
           "operator=%s ap_id=%s ap_trans_id=%s", e->operator_name,
           q(qa, sizeof(qa), req->ap_info.ap_id),
           q(qt, sizeof(qt), req->ap_info.ap_trans_id));
    return fault(f, MSS_WRONG_PARAM,
                 "AP_TransID %s was used before by this AP (replay)",
                 req->ap_info.ap_trans_id);
  }
  rv = GW_OK;
#define REFUSE(...)                                                            \
  do {                                                                         \
    e->stats.refused++;                                                        \
    free(data);                                                                \
    return fault(f, __VA_ARGS__);                                              \
  } while (0)
  switch (req->messaging_mode) {
  case MSS_MODE_SYNCH:
  case MSS_MODE_ASYNCH_CLIENT_SERVER:
    break;
  case MSS_MODE_ASYNCH_SERVER_SERVER:
    if (e->allow_server_server && ap->notify_url[0]) {
      break;
    }
    REFUSE(MSS_WRONG_PARAM,
           "1013 MessagingMode asynchServerServer is not offered %s",
           e->allow_server_server ? "to this AP (no notification URL)"
                                  : "by this MSSP");
  default:
    REFUSE(MSS_MISSING_PARAM, "MessagingMode missing");
  }
  if (mock_mssp_msisdn_norm(req->msisdn, norm, sizeof(norm)) != GW_OK) {
    REFUSE(MSS_UNKNOWN_CLIENT, "1051 malformed MSISDN");
  }
  s = sub_find(e, norm);
  if (!s) {
    REFUSE(MSS_UNKNOWN_CLIENT, "1052 %s is not a subscriber of this MSSP",
           norm);
  }
  beh = sub_behaviour(e, s);
  if (behaviour_parse(beh, &b) != GW_OK) {
    behaviour_parse(e->default_behaviour, &b);
  }
  if (b.kind == B_NOT_SUBSCRIBER) {
    REFUSE(b.arg, "%s",
           b.arg == MSS_NO_CERT_FOUND ? "no certificate for this SIM"
                                      : "4041 this SIM has no signature key");
  }
  rv = dtbs_decode(&req->data_to_be_signed, &kind, &data, &n, f);
  if (rv != GW_OK) {
    e->stats.refused++;
    return rv;
  }
  if (!req->mss_format[0]) {
    fmt = strcmp(e->default_format, MSS_FORMAT_PKCS1) == 0
              ? MOCK_SIM_FORMAT_PKCS1
              : MOCK_SIM_FORMAT_PKCS7;
  } else if (strcmp(req->mss_format, MSS_FORMAT_PKCS7) == 0) {
    fmt = MOCK_SIM_FORMAT_PKCS7;
  } else if (strcmp(req->mss_format, MSS_FORMAT_PKCS1) == 0) {
    fmt = MOCK_SIM_FORMAT_PKCS1;
  } else {
    REFUSE(MSS_WRONG_PARAM, "1017 MSS_Format not supported (%s or %s)",
           MSS_FORMAT_PKCS7, MSS_FORMAT_PKCS1);
  }
  t = calloc(1, sizeof(*t));
  if (!t) {
    free(data);
    return GW_ERR_NOMEM;
  }
  if (req->has_data_to_be_displayed) {
    rv = dtbd_check(&req->data_to_be_displayed, t->info.display,
                    sizeof(t->info.display), f);
  } else if (kind == MOCK_SIM_DATA_TEXT) {
    memcpy(t->info.display, data, n);
    t->info.display[n] = '\0';
  }
  if (rv != GW_OK) {
    free(t);
    REFUSE(rv, "%s", f->detail);
  }
  if (s->running) {
    free(t);
    REFUSE(MSS_PB_SIGNATURE_PROCESS,
           "another transaction (%s) is running for this phone",
           s->running->info.mssp_trans_id);
  }
  if (e->ntx >= (size_t)e->max_transactions) {
    housekeeping_cb(-1, 0, e);
  }
  if (e->ntx >= (size_t)e->max_transactions) {
    free(t);
    REFUSE(MSS_INTERNAL_ERROR, "9002 too many transactions (%d)",
           e->max_transactions);
  }
#undef REFUSE
  if (tx_new_id(e, t->info.mssp_trans_id, sizeof(t->info.mssp_trans_id)) !=
      GW_OK) {
    free(t);
    free(data);
    return GW_ERR_INTERNAL;
  }
  t->e = e;
  t->sub = s;
  t->b = b;
  t->data = data;
  t->n = n;
  copy_str(t->info.ap_id, sizeof(t->info.ap_id), req->ap_info.ap_id);
  copy_str(t->info.ap_trans_id, sizeof(t->info.ap_trans_id),
           req->ap_info.ap_trans_id);
  copy_str(t->info.msisdn, sizeof(t->info.msisdn), norm);
  copy_str(t->info.behaviour, sizeof(t->info.behaviour), beh);
  t->info.mode = req->messaging_mode;
  t->info.state = MOCK_TX_WAITING;
  t->info.status = MSS_OUTSTANDING_TRANSACTION;
  t->info.data_kind = kind;
  mock_sim_digest(kind, data, n, t->info.digest);
  t->info.format = fmt;
  timeout = req->timeout ? (int)(req->timeout > (unsigned)e->max_timeout_s
                                     ? (unsigned)e->max_timeout_s
                                     : req->timeout)
                         : e->default_timeout_s;
  t->info.timeout_s = timeout;
  t->info.created_at = wall_ms();
  t->info.deadline_at = t->info.created_at + (long long)timeout * 1000;
  {
    size_t hb = hash_str(t->info.mssp_trans_id);
    t->hnext = e->txs[hb];
    e->txs[hb] = t;
    t->prev = e->tx_tail;
    if (e->tx_tail) {
      e->tx_tail->next = t;
    } else {
      e->tx_head = t;
    }
    e->tx_tail = t;
    e->ntx++;
  }
  s->running = t;
  e->stats.started++;
  e->stats.running++;
  rv = tx_begin(e, t);
  GW_LOG(GW_LOG_INFO, "transaction began",
         "operator=%s mssp_trans_id=%s ap_id=%s ap_trans_id=%s msisdn=%s "
         "mode=%s behaviour=%s timeout_s=%d",
         e->operator_name, t->info.mssp_trans_id,
         q(qa, sizeof(qa), t->info.ap_id),
         q(qt, sizeof(qt), t->info.ap_trans_id), norm,
         mss_mode_name(t->info.mode), beh, timeout);
  if (rv != GW_OK) {
    tx_end(e, t, MSS_INTERNAL_ERROR, "9002 the SIM could not be reached: %s",
           gw_strerror(rv));
  }
  if (e->on_change) {
    e->on_change(e->hook_arg, norm);
  }
  resp->major_version = req->major_version;
  resp->minor_version = req->minor_version;
  fill_ap_echo(&resp->ap_info, &req->ap_info);
  fill_mssp_info(e, &resp->mssp_info);
  copy_str(resp->mssp_trans_id, sizeof(resp->mssp_trans_id),
           t->info.mssp_trans_id);
  copy_str(resp->msisdn, sizeof(resp->msisdn), req->msisdn);
  copy_str(resp->signature_profile, sizeof(resp->signature_profile),
           req->signature_profile);
  fill_status(&resp->status, MSS_REQUEST_OK);
  return MSS_REQUEST_OK;
}

/* The end of |t| as a fault, or 0 when it ended with a signature. */
static int tx_fault(const tx *t, mss_fault *f) {
  if (t->info.status == MSS_SIGNATURE) {
    return 0;
  }
  mss_fault_set(f, t->info.status, t->info.detail[0] ? t->info.detail : NULL);
  return t->info.status;
}

int mock_mssp_signature_final(mock_mssp *e, const char *id,
                              mss_signature_resp *resp, mss_fault *f) {
  tx *t;
  int code;

  if (!e || !id || !resp || !f) {
    return GW_ERR_INVALID;
  }
  memset(f, 0, sizeof(*f));
  t = tx_find(e, id);
  if (!t) {
    return fault(f, MSS_WRONG_PARAM, "unknown MSSP_TransID");
  }
  /* |id| may be resp->mssp_trans_id itself: copy from the transaction. */
  copy_str(resp->mssp_trans_id, sizeof(resp->mssp_trans_id),
           t->info.mssp_trans_id);
  fill_mssp_info(e, &resp->mssp_info);
  if (t->info.state != MOCK_TX_DONE) {
    fill_status(&resp->status, MSS_OUTSTANDING_TRANSACTION);
    return MSS_OUTSTANDING_TRANSACTION;
  }
  code = tx_fault(t, f);
  if (code) {
    return code;
  }
  fill_status(&resp->status, MSS_SIGNATURE);
  fill_signature(t, &resp->signature);
  return MSS_SIGNATURE;
}

int mock_mssp_final_status(mock_mssp *e, const char *id, mss_status_resp *resp,
                           mss_fault *f) {
  tx *t;
  int code;

  if (!e || !id || !resp || !f) {
    return GW_ERR_INVALID;
  }
  memset(f, 0, sizeof(*f));
  t = tx_find(e, id);
  if (!t) {
    return GW_ERR_NOT_FOUND;
  }
  memset(resp, 0, sizeof(*resp));
  resp->major_version = MSS_MAJOR_VERSION;
  resp->minor_version = MSS_MINOR_VERSION;
  copy_str(resp->ap_info.ap_id, sizeof(resp->ap_info.ap_id), t->info.ap_id);
  copy_str(resp->ap_info.ap_trans_id, sizeof(resp->ap_info.ap_trans_id),
           t->info.ap_trans_id);
  mss_instant_format(time(NULL), resp->ap_info.instant,
                     sizeof(resp->ap_info.instant));
  fill_mssp_info(e, &resp->mssp_info);
  copy_str(resp->mssp_trans_id, sizeof(resp->mssp_trans_id),
           t->info.mssp_trans_id);
  copy_str(resp->msisdn, sizeof(resp->msisdn), t->info.msisdn);
  if (t->info.state != MOCK_TX_DONE) {
    fill_status(&resp->status, MSS_OUTSTANDING_TRANSACTION);
    return MSS_OUTSTANDING_TRANSACTION;
  }
  code = tx_fault(t, f);
  if (code) {
    fill_status(&resp->status, code);
    return code;
  }
  fill_status(&resp->status, MSS_SIGNATURE);
  fill_signature(t, &resp->signature);
  return MSS_SIGNATURE;
}

/* Finds the transaction a status query or receipt names, for this AP. */
static tx *tx_for(mock_mssp *e, const mss_ap_info *ai, const char *id,
                  const char *msisdn, mss_fault *f, int *code) {
  char norm[MSS_MSISDN_MAX + 1];
  tx *t = tx_find(e, id);

  if (!t || strcmp(t->info.ap_id, ai->ap_id) != 0) {
    /* Another AP's transaction looks exactly like none. */
    *code = fault(f, MSS_WRONG_PARAM, "unknown MSSP_TransID");
    return NULL;
  }
  if (msisdn[0] &&
      (mock_mssp_msisdn_norm(msisdn, norm, sizeof(norm)) != GW_OK ||
       strcmp(norm, t->info.msisdn) != 0)) {
    *code = fault(f, MSS_WRONG_PARAM,
                  "the MSISDN is not the one of this transaction");
    return NULL;
  }
  return t;
}

int mock_mssp_status(mock_mssp *e, const mss_status_req *req,
                     mss_status_resp *resp, mss_fault *f) {
  tx *t;
  int code = 0;

  if (!e || !req || !resp || !f || !e->base) {
    return GW_ERR_INVALID;
  }
  memset(resp, 0, sizeof(*resp));
  memset(f, 0, sizeof(*f));
  if (!ap_auth(e, &req->ap_info)) {
    return auth_fault(e, &req->ap_info, f, "MSS_StatusReq");
  }
  t = tx_for(e, &req->ap_info, req->mssp_trans_id, req->msisdn, f, &code);
  if (!t) {
    return code;
  }
  if (t->info.state == MOCK_TX_DONE) {
    code = tx_fault(t, f);
    if (code) {
      return code;
    }
  }
  resp->major_version = req->major_version;
  resp->minor_version = req->minor_version;
  fill_ap_echo(&resp->ap_info, &req->ap_info);
  fill_mssp_info(e, &resp->mssp_info);
  copy_str(resp->mssp_trans_id, sizeof(resp->mssp_trans_id),
           t->info.mssp_trans_id);
  copy_str(resp->msisdn, sizeof(resp->msisdn),
           req->msisdn[0] ? req->msisdn : t->info.msisdn);
  if (t->info.state != MOCK_TX_DONE) {
    fill_status(&resp->status, MSS_OUTSTANDING_TRANSACTION);
    return MSS_OUTSTANDING_TRANSACTION;
  }
  fill_status(&resp->status, MSS_SIGNATURE);
  fill_signature(t, &resp->signature);
  return MSS_SIGNATURE;
}

int mock_mssp_receipt(mock_mssp *e, const mss_receipt_req *req,
                      mss_receipt_resp *resp, mss_fault *f) {
  tx *t;
  int code = 0;

  if (!e || !req || !resp || !f || !e->base) {
    return GW_ERR_INVALID;
  }
  memset(resp, 0, sizeof(*resp));
  memset(f, 0, sizeof(*f));
  if (!ap_auth(e, &req->ap_info)) {
    return auth_fault(e, &req->ap_info, f, "MSS_ReceiptReq");
  }
  t = tx_for(e, &req->ap_info, req->mssp_trans_id, req->msisdn, f, &code);
  if (!t) {
    return code;
  }
  if (t->info.state != MOCK_TX_DONE) {
    return fault(f, MSS_WRONG_PARAM,
                 "the transaction is still running: no receipt yet");
  }
  if (t->info.receipt) {
    return fault(f, MSS_WRONG_PARAM,
                 "a receipt was given for this transaction already");
  }
  t->info.receipt = 1;
  resp->major_version = req->major_version;
  resp->minor_version = req->minor_version;
  fill_ap_echo(&resp->ap_info, &req->ap_info);
  fill_mssp_info(e, &resp->mssp_info);
  fill_status(&resp->status, MSS_REQUEST_OK);
  return MSS_REQUEST_OK;
}

/* ---- operations --------------------------------------------------------- */

static mock_op *op_new(mock_op_fn fn, void *arg) {
  mock_op *op = calloc(1, sizeof(*op));

  if (op) {
    op->fn = fn;
    op->arg = arg;
  }
  return op;
}

int mock_mssp_wait(mock_mssp *e, const char *id, mock_op_fn fn, void *arg,
                   mock_op **out) {
  mock_op *op;
  mock_op_result r;
  tx *t;

  if (!e || !id || !fn || !out) {
    return GW_ERR_INVALID;
  }
  *out = NULL;
  t = tx_find(e, id);
  if (!t) {
    return GW_ERR_NOT_FOUND;
  }
  if (t->info.state == MOCK_TX_DONE) {
    memset(&r, 0, sizeof(r));
    r.status = t->info.status;
    r.pin_tries_left = r.puk_tries_left = -1;
    fn(arg, &r);
    return GW_OK;
  }
  op = op_new(fn, arg);
  if (!op) {
    return GW_ERR_NOMEM;
  }
  op->waiting_on = t;
  op->next = t->waiters;
  t->waiters = op;
  *out = op;
  return GW_OK;
}

void mock_mssp_op_forget(mock_mssp *e, mock_op *op) {
  (void)e;
  if (!op) {
    return;
  }
  if (op->waiting_on) {
    mock_op **pp = &op->waiting_on->waiters;
    while (*pp && *pp != op) {
      pp = &(*pp)->next;
    }
    if (*pp) {
      *pp = op->next;
    }
    free(op);
    return;
  }
  op->forgotten = 1; /* a job or an ending transaction frees it */
}

int mock_mssp_handset(mock_mssp *e, const char *id, int approve,
                      const char *pin, mock_op_fn fn, void *arg,
                      mock_op **out) {
  mock_op *op;
  tx *t;
  int rv;

  if (!e || !id || !out) {
    return GW_ERR_INVALID;
  }
  *out = NULL;
  t = tx_find(e, id);
  if (!t || t->info.state == MOCK_TX_DONE) {
    return GW_ERR_NOT_FOUND;
  }
  if (t->b.kind != B_HANDSET || t->info.state != MOCK_TX_WAITING) {
    return GW_ERR_BUSY;
  }
  if (!approve) {
    tx_end(e, t, MSS_USER_CANCEL, "the user refused on the handset");
    return GW_OK;
  }
  if (!pin || !pin[0] || strlen(pin) > PIN_MAX || !fn) {
    return GW_ERR_INVALID;
  }
  op = op_new(fn, arg);
  if (!op) {
    return GW_ERR_NOMEM;
  }
  rv = tx_sign(e, t, pin, op);
  if (rv != GW_OK) {
    free(op);
    return rv;
  }
  if (t->info.state == MOCK_TX_DONE) { /* ended at once (no certificate) */
    free(op);
    return GW_OK;
  }
  *out = op;
  return GW_OK;
}

static int sim_op(mock_mssp *e, job_kind kind, const char *msisdn,
                  const char *puk, const char *new_pin, mock_op_fn fn,
                  void *arg, mock_op **out) {
  char norm[MSS_MSISDN_MAX + 1];
  job *j;

  if (!e || !fn || !out) {
    return GW_ERR_INVALID;
  }
  *out = NULL;
  if (mock_mssp_msisdn_norm(msisdn, norm, sizeof(norm)) != GW_OK) {
    return GW_ERR_INVALID;
  }
  if (!sub_find(e, norm)) {
    return GW_ERR_NOT_FOUND;
  }
  if (kind == JOB_UNBLOCK &&
      (!puk || !puk[0] || strlen(puk) > PIN_MAX || !new_pin || !new_pin[0] ||
       strlen(new_pin) > PIN_MAX)) {
    return GW_ERR_INVALID;
  }
  j = job_new(e, kind, norm);
  if (!j) {
    return GW_ERR_NOMEM;
  }
  if (kind == JOB_UNBLOCK) {
    copy_str(j->puk, sizeof(j->puk), puk);
    copy_str(j->pin, sizeof(j->pin), new_pin);
  }
  j->op = op_new(fn, arg);
  if (!j->op) {
    job_free(j);
    return GW_ERR_NOMEM;
  }
  *out = j->op;
  if (job_submit(e, j) != GW_OK) {
    free(j->op);
    job_free(j);
    *out = NULL;
    return GW_ERR_BUSY;
  }
  return GW_OK;
}

int mock_mssp_sim_state(mock_mssp *e, const char *msisdn, mock_op_fn fn,
                        void *arg, mock_op **op) {
  return sim_op(e, JOB_STATE, msisdn, NULL, NULL, fn, arg, op);
}

int mock_mssp_sim_reset(mock_mssp *e, const char *msisdn, mock_op_fn fn,
                        void *arg, mock_op **op) {
  return sim_op(e, JOB_RESET, msisdn, NULL, NULL, fn, arg, op);
}

int mock_mssp_sim_unblock(mock_mssp *e, const char *msisdn, const char *puk,
                          const char *new_pin, mock_op_fn fn, void *arg,
                          mock_op **op) {
  return sim_op(e, JOB_UNBLOCK, msisdn, puk, new_pin, fn, arg, op);
}

/* ---- inspection and control --------------------------------------------- */

static sub *sub_lookup(mock_mssp *e, const char *msisdn, int *rv) {
  char norm[MSS_MSISDN_MAX + 1];
  sub *s;

  if (!e || mock_mssp_msisdn_norm(msisdn, norm, sizeof(norm)) != GW_OK) {
    *rv = GW_ERR_INVALID;
    return NULL;
  }
  s = sub_find(e, norm);
  *rv = s ? GW_OK : GW_ERR_NOT_FOUND;
  return s;
}

int mock_mssp_set_behaviour(mock_mssp *e, const char *msisdn, const char *beh) {
  int rv;
  sub *s = sub_lookup(e, msisdn, &rv);

  if (!s) {
    return rv;
  }
  if (!beh || !beh[0]) {
    s->overridden = 0;
    s->override[0] = '\0';
    return GW_OK;
  }
  if (mock_mssp_behaviour_check(beh) != GW_OK) {
    return GW_ERR_INVALID;
  }
  copy_str(s->override, sizeof(s->override), beh);
  s->overridden = 1;
  GW_LOG(GW_LOG_INFO, "behaviour set", "operator=%s msisdn=%s behaviour=%s",
         e->operator_name, s->msisdn, beh);
  return GW_OK;
}

int mock_mssp_subscriber(mock_mssp *e, const char *msisdn, mock_sub_info *out) {
  int rv;
  sub *s = sub_lookup(e, msisdn, &rv);

  if (!s || !out) {
    return s ? GW_ERR_INVALID : rv;
  }
  memset(out, 0, sizeof(*out));
  copy_str(out->msisdn, sizeof(out->msisdn), s->msisdn);
  copy_str(out->behaviour, sizeof(out->behaviour), sub_behaviour(e, s));
  copy_str(out->registry_behaviour, sizeof(out->registry_behaviour),
           s->reg_behaviour);
  out->overridden = s->overridden;
  out->has_cert = s->cert != NULL;
  if (s->running) {
    copy_str(out->running, sizeof(out->running),
             s->running->info.mssp_trans_id);
  }
  return GW_OK;
}

int mock_mssp_tx(mock_mssp *e, const char *id, mock_tx_info *out) {
  tx *t;

  if (!e || !id || !out) {
    return GW_ERR_INVALID;
  }
  t = tx_find(e, id);
  if (!t) {
    return GW_ERR_NOT_FOUND;
  }
  *out = t->info;
  return GW_OK;
}

int mock_mssp_pending(mock_mssp *e, const char *msisdn, mock_tx_info *out,
                      size_t cap, size_t *n) {
  int rv;
  sub *s = sub_lookup(e, msisdn, &rv);

  if (!s || !n) {
    return s ? GW_ERR_INVALID : rv;
  }
  *n = 0;
  if (s->running && s->running->info.state != MOCK_TX_DONE) {
    if (cap > 0 && out) {
      out[0] = s->running->info;
    }
    *n = 1;
  }
  return GW_OK;
}

struct event_base *mock_mssp_base(const mock_mssp *e) {
  return e ? e->base : NULL;
}

void mock_mssp_get_stats(mock_mssp *e, mock_mssp_stats *out) {
  *out = e->stats;
}

/* ---- the HTTP fronts' loop --------------------------------------------- */

int mock_mssp_bind_exch(mock_mssp *e, struct gw_exch *x) {
  if (!x) {
    return GW_ERR_INVALID;
  }
  return mock_mssp_bind(e, gw_exch_base(x));
}
