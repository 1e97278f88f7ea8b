/* mock_notify.c — the Ooredoo mock's server-to-server notifications. See
 * mock_notify.h.
 *
 * One pending notification per ended asynchServerServer transaction: the
 * JSON body is built once (mss_json_build_status_resp) and kept, each
 * attempt signs it afresh (X-MSS-Signature with the current Unix time) and
 * POSTs it through op_http (libcurl multi on the engine's loop, created on
 * first use). The attempt's end decides: an acknowledgement ends it, a
 * network error, a timeout or a 5xx arms the retry timer (first_retry_ms,
 * then x4), anything else gives up. Every attempt and every end is logged;
 * the secret never is, and it is wiped when the notification goes. */
#include "mock_notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "gw_buf.h"
#include "gw_err.h"
#include "gw_log.h"
#include "mss_json.h"
#include "op_http.h"

#define NOTIFY_BODY_MAX MSS_JSON_MAX_INPUT
#define ACK_MAX (64 * 1024) /* the AP's answer */
#define DELAY_MAX_MS (86400LL * 1000)
#define SIG_HEADER "X-MSS-Signature"

typedef struct notif notif;

struct notif {
  mock_notify *n;
  char mssp_trans_id[MSS_MSSP_TRANSID_MAX + 1];
  char ap_id[MSS_URI_MAX + 48]; /* quoted for the log */
  char url[MSS_URI_MAX + 1];
  char secret[MSS_PWD_MAX + 1]; /* wiped in notif_free */
  char *body;                   /* the same bytes on every attempt */
  size_t body_len;
  int status; /* the transaction's end, for the log */
  int attempts;
  long long ended_ms; /* monotonic: the window starts here */
  struct event *timer;
  op_http_req *req; /* the attempt under way, or NULL */
  notif *prev, *next;
};

struct mock_notify {
  mock_ap *aps;
  size_t naps;
  int max_attempts, first_retry_ms, window_s, timeout_ms;
  char *ca_file; /* NULL = the system's trust store */
  EVP_MAC *mac;
  struct event_base *base;
  op_http *http; /* on |base|, made on first use */
  notif *head;
  mock_notify_stats stats;
};

static long long mono_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *q(char *buf, size_t cap, const char *s) {
  return gw_log_quote(buf, cap, s, strlen(s));
}

/* ---- life ------------------------------------------------------------- */

int mock_notify_new(mock_notify **out, const mock_notify_config *cfg, char *err,
                    size_t errlen) {
  mock_notify *n;

#define BAD(...)                                                               \
  do {                                                                         \
    snprintf(err, errlen, __VA_ARGS__);                                        \
    return GW_ERR_INVALID;                                                     \
  } while (0)
  if (!out || !cfg) {
    BAD("missing argument");
  }
  if (cfg->naps > MOCK_AP_MAX || (cfg->naps && !cfg->aps)) {
    BAD("at most %d application providers", MOCK_AP_MAX);
  }
  if (cfg->max_attempts < 1 || cfg->max_attempts > 20) {
    BAD("notifications: max_attempts must be 1..20");
  }
  if (cfg->first_retry_ms < 1 || cfg->first_retry_ms > 600000) {
    BAD("notifications: first_retry_ms must be 1..600000");
  }
  if (cfg->window_s < 1 || cfg->window_s > 86400) {
    BAD("notifications: window_s must be 1..86400");
  }
  if (cfg->timeout_ms < 1 || cfg->timeout_ms > 600000) {
    BAD("notifications: timeout_ms must be 1..600000");
  }
  for (size_t i = 0; i < cfg->naps; i++) {
    if (cfg->aps[i].notify_url[0] && !cfg->aps[i].notify_secret[0]) {
      BAD("AP %s: a notify_url needs a notify_secret", cfg->aps[i].ap_id);
    }
  }
#undef BAD
  /* curl_global_init here, on the starting thread, rather than lazily on
   * the loop's. */
  if (op_http_global_init() != GW_OK) {
    snprintf(err, errlen, "cannot initialise libcurl");
    return GW_ERR_INTERNAL;
  }
  n = calloc(1, sizeof(*n));
  if (!n) {
    return GW_ERR_NOMEM;
  }
  if (cfg->naps) {
    n->aps = calloc(cfg->naps, sizeof(*n->aps));
    if (!n->aps) {
      goto fail_nomem;
    }
    memcpy(n->aps, cfg->aps, cfg->naps * sizeof(*n->aps));
    n->naps = cfg->naps;
  }
  if (cfg->ca_file && cfg->ca_file[0]) {
    n->ca_file = strdup(cfg->ca_file);
    if (!n->ca_file) {
      goto fail_nomem;
    }
  }
  n->mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
  if (!n->mac) {
    snprintf(err, errlen, "OpenSSL has no HMAC");
    mock_notify_del(n);
    return GW_ERR_INTERNAL;
  }
  n->max_attempts = cfg->max_attempts;
  n->first_retry_ms = cfg->first_retry_ms;
  n->window_s = cfg->window_s;
  n->timeout_ms = cfg->timeout_ms;
  *out = n;
  return GW_OK;

fail_nomem:
  mock_notify_del(n);
  return GW_ERR_NOMEM;
}

static void notif_free(notif *nf) {
  mock_notify *n = nf->n;

  if (nf->prev) {
    nf->prev->next = nf->next;
  } else {
    n->head = nf->next;
  }
  if (nf->next) {
    nf->next->prev = nf->prev;
  }
  n->stats.pending--;
  if (nf->req) {
    op_http_cancel(nf->req);
  }
  if (nf->timer) {
    event_free(nf->timer);
  }
  OPENSSL_cleanse(nf->secret, sizeof(nf->secret));
  free(nf->body);
  free(nf);
}

void mock_notify_del(mock_notify *n) {
  if (!n) {
    return;
  }
  while (n->head) {
    notif *nf = n->head;

    GW_LOG(GW_LOG_WARN, "notification dropped at shutdown",
           "mssp_trans_id=%s attempts=%d", nf->mssp_trans_id, nf->attempts);
    notif_free(nf);
  }
  op_http_del(n->http);
  EVP_MAC_free(n->mac);
  if (n->aps) {
    OPENSSL_cleanse(n->aps, n->naps * sizeof(*n->aps));
  }
  free(n->aps);
  free(n->ca_file);
  free(n);
}

void mock_notify_get_stats(const mock_notify *n, mock_notify_stats *out) {
  if (!out) {
    return;
  }
  if (!n) {
    memset(out, 0, sizeof(*out));
    return;
  }
  *out = n->stats;
}

/* ---- one attempt ------------------------------------------------------ */

/* hex(HMAC-SHA256(secret, "<t>.<body>")) into |hex| (65 bytes). */
static int sign(mock_notify *n, const notif *nf, long long t, char *hex) {
  static const char digits[] = "0123456789abcdef";
  char prefix[32], md_name[] = "SHA256";
  unsigned char mac[EVP_MAX_MD_SIZE];
  OSSL_PARAM params[2];
  EVP_MAC_CTX *ctx;
  size_t maclen = 0;
  int plen, ok;

  plen = snprintf(prefix, sizeof(prefix), "%lld.", t);
  params[0] =
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, md_name, 0);
  params[1] = OSSL_PARAM_construct_end();
  ctx = EVP_MAC_CTX_new(n->mac);
  ok =
      ctx &&
      EVP_MAC_init(ctx, (const unsigned char *)nf->secret, strlen(nf->secret),
                   params) == 1 &&
      EVP_MAC_update(ctx, (const unsigned char *)prefix, (size_t)plen) == 1 &&
      EVP_MAC_update(ctx, (const unsigned char *)nf->body, nf->body_len) == 1 &&
      EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) == 1 && maclen == 32;
  EVP_MAC_CTX_free(ctx);
  if (!ok) {
    OPENSSL_cleanse(mac, sizeof(mac));
    return GW_ERR_INTERNAL;
  }
  for (size_t i = 0; i < 32; i++) {
    hex[2 * i] = digits[mac[i] >> 4];
    hex[2 * i + 1] = digits[mac[i] & 15];
  }
  hex[64] = '\0';
  return GW_OK;
}

typedef enum verdict {
  V_DELIVERED, /* acknowledged */
  V_RETRY,     /* network error, timeout, 5xx */
  V_FINAL      /* 4xx, a 2xx without a valid acknowledgement, ... */
} verdict;

static void attempt(notif *nf);

static void give_up(notif *nf, const char *reason) {
  mock_notify *n = nf->n;

  n->stats.failed++;
  GW_LOG(GW_LOG_WARN, "notification given up",
         "mssp_trans_id=%s ap_id=%s status=%d attempts=%d reason=%s",
         nf->mssp_trans_id, nf->ap_id, nf->status, nf->attempts, reason);
  notif_free(nf);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  attempt(arg);
}

/* The delay before attempt |nf->attempts| + 1: first_retry_ms * 4^(k-1). */
static long long backoff_ms(const notif *nf) {
  long long d = nf->n->first_retry_ms;

  for (int i = 1; i < nf->attempts && d < DELAY_MAX_MS; i++) {
    d *= 4;
  }
  return d < DELAY_MAX_MS ? d : DELAY_MAX_MS;
}

/* After a failed attempt that may be repeated: arms the timer, or gives
 * up when the attempts or the window are used up. */
static void retry_or_give_up(notif *nf) {
  mock_notify *n = nf->n;
  long long delay = backoff_ms(nf);
  struct timeval tv;

  if (nf->attempts >= n->max_attempts) {
    give_up(nf, "max_attempts");
    return;
  }
  if (mono_ms() + delay > nf->ended_ms + (long long)n->window_s * 1000) {
    give_up(nf, "window");
    return;
  }
  tv.tv_sec = (time_t)(delay / 1000);
  tv.tv_usec = (suseconds_t)((delay % 1000) * 1000);
  if (evtimer_add(nf->timer, &tv) != 0) {
    give_up(nf, "timer");
  }
}

/* Is |res| the AP's acknowledgement of |nf|: 2xx and an MSS_ReceiptReq for
 * its MSSP_TransID? */
static int acknowledged(const notif *nf, const op_http_result *res) {
  mss_receipt_req *rr;
  int ok;

  if (res->http_status < 200 || res->http_status > 299) {
    return 0;
  }
  rr = malloc(sizeof(*rr));
  if (!rr) {
    return 0;
  }
  ok =
      mss_json_parse_receipt_req(res->body, res->body_len, rr, NULL) == GW_OK &&
      strcmp(rr->mssp_trans_id, nf->mssp_trans_id) == 0;
  free(rr);
  return ok;
}

static void attempt_done(void *arg, const op_http_result *res) {
  notif *nf = arg;
  mock_notify *n = nf->n;
  const char *outcome;
  char qe[200];
  verdict v;

  nf->req = NULL;
  if (res->status == OP_HTTP_DONE) {
    if (acknowledged(nf, res)) {
      v = V_DELIVERED;
      outcome = "acknowledged";
    } else if (res->http_status >= 500 && res->http_status <= 599) {
      v = V_RETRY;
      outcome = "server_error";
    } else if (res->http_status >= 200 && res->http_status <= 299) {
      v = V_FINAL;
      outcome = "no_acknowledgement";
    } else {
      v = V_FINAL;
      outcome = "refused";
    }
  } else if (res->status == OP_HTTP_TOO_LARGE) {
    v = V_FINAL; /* it answered: not a network error */
    outcome = "answer_too_large";
  } else {
    v = V_RETRY; /* connect, timeout, network, proto, internal */
    outcome = op_http_status_str(res->status);
  }
  GW_LOG(v == V_DELIVERED ? GW_LOG_INFO : GW_LOG_WARN, "notification attempt",
         "mssp_trans_id=%s ap_id=%s attempt=%d outcome=%s http_status=%ld "
         "elapsed_ms=%llu error=%s",
         nf->mssp_trans_id, nf->ap_id, nf->attempts, outcome, res->http_status,
         (unsigned long long)(res->elapsed_ns / 1000000),
         q(qe, sizeof(qe), res->error ? res->error : ""));
  switch (v) {
  case V_DELIVERED:
    n->stats.delivered++;
    GW_LOG(GW_LOG_INFO, "notification delivered",
           "mssp_trans_id=%s ap_id=%s status=%d attempts=%d", nf->mssp_trans_id,
           nf->ap_id, nf->status, nf->attempts);
    notif_free(nf);
    break;
  case V_RETRY:
    retry_or_give_up(nf);
    break;
  case V_FINAL:
    give_up(nf, outcome);
    break;
  }
}

/* POSTs the body once more, signed now. */
static void attempt(notif *nf) {
  mock_notify *n = nf->n;
  char hex[65], line[sizeof(SIG_HEADER) + 128];
  const char *headers[2];
  op_http_opts o;
  long long t = (long long)time(NULL);
  int rv;

  nf->attempts++;
  n->stats.attempts++;
  rv = sign(n, nf, t, hex);
  if (rv == GW_OK) {
    snprintf(line, sizeof(line), "%s: t=%lld,v1=%s", SIG_HEADER, t, hex);
    headers[0] = line;
    headers[1] = NULL;
    memset(&o, 0, sizeof(o));
    o.url = nf->url;
    o.content_type = MSS_JSON_CONTENT_TYPE;
    o.headers = headers;
    o.body = nf->body;
    o.body_len = nf->body_len;
    o.connect_timeout_ms = n->timeout_ms;
    o.timeout_ms = n->timeout_ms;
    o.max_response = ACK_MAX;
    o.ca_file = n->ca_file;
    /* Each attempt counted once at the AP: libcurl never repeats it on a
     * kept-alive connection found dead. */
    o.fresh_connect = 1;
    rv = op_http_submit(n->http, &o, attempt_done, nf, &nf->req);
  }
  if (rv != GW_OK) {
    GW_LOG(GW_LOG_ERROR, "notification attempt",
           "mssp_trans_id=%s ap_id=%s attempt=%d outcome=not_sent error=\"%s\"",
           nf->mssp_trans_id, nf->ap_id, nf->attempts, gw_strerror(rv));
    nf->req = NULL;
    retry_or_give_up(nf);
  }
}

/* ---- the engine's hook ------------------------------------------------ */

static const mock_ap *ap_find(const mock_notify *n, const char *ap_id) {
  for (size_t i = 0; i < n->naps; i++) {
    if (strcmp(n->aps[i].ap_id, ap_id) == 0) {
      return &n->aps[i];
    }
  }
  return NULL;
}

/* "INTERNAL_ERROR: 9003 SIM application error": the status name and the
 * engine's detail, cut on a UTF-8 boundary to fit |cap|. */
static void status_message(char *out, size_t cap, int code,
                           const char *detail) {
  size_t n = (size_t)snprintf(out, cap, "%s: ", mss_status_name(code));
  size_t d = strlen(detail);

  if (n >= cap) {
    out[cap - 1] = '\0';
    return;
  }
  if (d > cap - 1 - n) {
    d = cap - 1 - n;
    while (d > 0 && ((unsigned char)detail[d] & 0xC0) == 0x80) {
      d--; /* detail[d] would begin the cut: not inside a character */
    }
  }
  memcpy(out + n, detail, d);
  out[n + d] = '\0';
}

/* The body: the final MSS_StatusResp in JSON. Returns GW_OK or an error
 * (logged by the caller). */
static int build_body(mock_mssp *e, const mock_tx_info *tx, notif *nf) {
  mss_status_resp *resp = malloc(sizeof(*resp));
  mss_fault f;
  gw_buf out;
  int code, rv;

  if (!resp) {
    return GW_ERR_NOMEM;
  }
  code = mock_mssp_final_status(e, tx->mssp_trans_id, resp, &f);
  if (code < 0 || code == MSS_OUTSTANDING_TRANSACTION) {
    free(resp);
    return code < 0 ? code : GW_ERR_INTERNAL;
  }
  nf->status = code;
  resp->minor_version = MSS_JSON_MINOR_VERSION;
  resp->ap_info.ap_pwd[0] = '\0';
  snprintf(resp->ap_info.ap_trans_id, sizeof(resp->ap_info.ap_trans_id), "%s",
           tx->ap_trans_id);
  mss_instant_format(time(NULL), resp->ap_info.instant,
                     sizeof(resp->ap_info.instant));
  if (mss_status_is_fault(code) && f.detail[0]) {
    status_message(resp->status.message, sizeof(resp->status.message), code,
                   f.detail);
  }
  gw_buf_init(&out, NOTIFY_BODY_MAX);
  rv = mss_json_build_status_resp(resp, &out);
  free(resp);
  if (rv != GW_OK) {
    gw_buf_free(&out);
    return rv;
  }
  nf->body = out.data; /* taken over from the buffer */
  nf->body_len = out.len;
  return nf->body ? GW_OK : GW_ERR_INTERNAL;
}

void mock_notify_tx_end(mock_notify *n, mock_mssp *e, const mock_tx_info *tx) {
  const mock_ap *ap;
  struct event_base *base;
  char qa[300];
  notif *nf;
  int rv;

  if (!n || !e || !tx || tx->mode != MSS_MODE_ASYNCH_SERVER_SERVER) {
    return;
  }
  ap = ap_find(n, tx->ap_id);
  if (!ap || !ap->notify_url[0]) {
    return;
  }
  q(qa, sizeof(qa), tx->ap_id);
  n->stats.queued++;
  base = mock_mssp_base(e);
  nf = calloc(1, sizeof(*nf));
  if (!nf) {
    rv = GW_ERR_NOMEM;
    goto fail;
  }
  nf->n = n;
  snprintf(nf->mssp_trans_id, sizeof(nf->mssp_trans_id), "%s",
           tx->mssp_trans_id);
  snprintf(nf->ap_id, sizeof(nf->ap_id), "%s", qa);
  memcpy(nf->url, ap->notify_url, sizeof(nf->url));
  memcpy(nf->secret, ap->notify_secret, sizeof(nf->secret));
  nf->ended_ms = mono_ms();
  rv = build_body(e, tx, nf);
  if (rv != GW_OK) {
    goto fail;
  }
  if (!base || (n->base && n->base != base)) {
    rv = GW_ERR_INVALID;
    goto fail;
  }
  if (!n->http) {
    rv = op_http_new(&n->http, base, NULL);
    if (rv != GW_OK) {
      goto fail;
    }
    n->base = base;
  }
  nf->timer = evtimer_new(base, retry_cb, nf);
  if (!nf->timer) {
    rv = GW_ERR_NOMEM;
    goto fail;
  }
  nf->next = n->head;
  if (n->head) {
    n->head->prev = nf;
  }
  n->head = nf;
  n->stats.pending++;
  GW_LOG(GW_LOG_INFO, "notification queued",
         "mssp_trans_id=%s ap_id=%s status=%d bytes=%zu", nf->mssp_trans_id,
         nf->ap_id, nf->status, nf->body_len);
  attempt(nf);
  return;

fail:
  n->stats.failed++;
  GW_LOG(GW_LOG_ERROR, "notification not sent",
         "mssp_trans_id=%s ap_id=%s error=\"%s\"", tx->mssp_trans_id, qa,
         gw_strerror(rv));
  if (nf) {
    if (nf->timer) {
      event_free(nf->timer);
    }
    OPENSSL_cleanse(nf->secret, sizeof(nf->secret));
    free(nf->body);
    free(nf);
  }
}
