/* gw_authz.c — /authorize, the login page, the native sign-in API, the
 * authorization_code and refresh_token grants, /logout (gw_authz.h,
 * docs/browser.md). */
#include "gw_authz.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "gw_app.h"
#include "gw_async.h"
#include "gw_buf.h"
#include "gw_config.h"
#include "gw_err.h"
#include "gw_http.h"
#include "gw_jose.h"
#include "gw_audit.h"
#include "gw_limits.h"
#include "gw_log.h"
#include "gw_oidc.h"
#include "gw_session.h"
#include "gw_store.h"
#include "gw_txn.h"

#define ID_LEN GW_SESSION_ID_LEN
#define MAX_CODES 20000
#define MAX_AUTHS 20000
#define CODE_KEEP_MS (10 * 60 * 1000) /* a used code is kept for replays */
#define AUTH_KEEP_MS (5 * 60 * 1000)  /* a handle outlives its sign-in */
#define POLL_MAX_MS 60000
#define PAGE_CAP (64 * 1024)
#define URL_CAP 4096
#define OFFICER_SCOPE "licensing.officer"
#define OFFICER_CLIENT "licensing-portal"
#define REALM "mpkigw"

/* ---- state -------------------------------------------------------------- */

typedef struct code_ent {
  unsigned char hash[32];
  gw_session_req req;
  char sub[17], msisdn[17], name[GW_STORE_NAME_MAX + 1];
  char sid[ID_LEN + 1];
  long long auth_time, exp_ms;
  int used;
  char jti[32];
  long long jti_exp;
  char family[ID_LEN + 1];
  struct code_ent *next;
} code_ent;

typedef struct auth_ent {
  char id[ID_LEN + 1];
  char txn[GW_TXN_ID_LEN + 1]; /* "" = no transaction (unknown number) */
  char owner[80];              /* "s:<sid>" or "c:<client_id>" */
  int native;
  int cancelled; /* fake only */
  char code[5];
  long long expires_ms;
  struct auth_ent *next;
} auth_ent;

struct gw_authz {
  gw_sessions *sessions;
  gw_audit *audit;    /* NULL: none */
  pthread_mutex_t mu; /* codes, auths */
  code_ent *codes;
  size_t ncodes;
  auth_ent *auths;
  size_t nauths;
  pthread_mutex_t rt_mu; /* refresh rotation: read, check, mark as one */
  int code_ttl_s, refresh_ttl_s, idle_s;
};

static long long now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int gw_authz_new(gw_authz **out, const gw_config *cfg) {
  gw_authz *a;

  if (!out || !cfg) {
    return GW_ERR_INVALID;
  }
  a = calloc(1, sizeof(*a));
  if (!a) {
    return GW_ERR_NOMEM;
  }
  if (gw_sessions_new(&a->sessions, cfg->oidc_session_idle_s,
                      cfg->oidc_session_max_s, 0) != GW_OK) {
    free(a);
    return GW_ERR_INVALID;
  }
  pthread_mutex_init(&a->mu, NULL);
  pthread_mutex_init(&a->rt_mu, NULL);
  a->code_ttl_s = cfg->oidc_code_ttl_s;
  a->refresh_ttl_s = cfg->oidc_refresh_ttl_s;
  a->idle_s = cfg->oidc_session_idle_s;
  *out = a;
  return GW_OK;
}

void gw_authz_set_audit(gw_authz *a, gw_audit *audit) {
  if (a) {
    a->audit = audit;
  }
}

void gw_authz_del(gw_authz *a) {
  if (!a) {
    return;
  }
  while (a->codes) {
    code_ent *c = a->codes;
    a->codes = c->next;
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
  }
  while (a->auths) {
    auth_ent *e = a->auths;
    a->auths = e->next;
    free(e);
  }
  gw_sessions_del(a->sessions);
  pthread_mutex_destroy(&a->mu);
  pthread_mutex_destroy(&a->rt_mu);
  free(a);
}

gw_sessions *gw_authz_sessions(gw_authz *a) {
  return a ? a->sessions : NULL;
}

/* Under a->mu. */
static void purge_locked(gw_authz *a, long long now) {
  for (code_ent **pp = &a->codes; *pp;) {
    if ((*pp)->exp_ms + CODE_KEEP_MS < now) {
      code_ent *c = *pp;
      *pp = c->next;
      OPENSSL_cleanse(c, sizeof(*c));
      free(c);
      a->ncodes--;
    } else {
      pp = &(*pp)->next;
    }
  }
  for (auth_ent **pp = &a->auths; *pp;) {
    if ((*pp)->expires_ms + AUTH_KEEP_MS < now) {
      auth_ent *e = *pp;
      *pp = e->next;
      free(e);
      a->nauths--;
    } else {
      pp = &(*pp)->next;
    }
  }
}

/* ---- small helpers ------------------------------------------------------ */

static void hex32(const unsigned char h[32], char out[65]) {
  for (int i = 0; i < 32; i++) {
    snprintf(out + 2 * i, 3, "%02x", h[i]);
  }
}

static int b64url_text(const char *s, size_t min, size_t max) {
  size_t n = strlen(s);

  return n >= min && n <= max &&
         strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789-_") == n;
}

static int all_digits(const char *s, size_t min, size_t max) {
  size_t n = strlen(s);

  return n >= min && n <= max && strspn(s, "0123456789") == n;
}

/* Printable ASCII (spaces allowed when |space|). */
static int printable(const char *s, size_t max, int space) {
  size_t n = 0;

  for (; *s; s++, n++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c >= 0x7f || (!space && c == ' ')) {
      return 0;
    }
  }
  return n <= max;
}

static void pct_append(gw_buf *b, const char *v) {
  static const char hexd[] = "0123456789ABCDEF";

  for (; *v; v++) {
    unsigned char c = (unsigned char)*v;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      gw_buf_append(b, v, 1);
    } else {
      char e[3] = {'%', hexd[c >> 4], hexd[c & 15]};
      gw_buf_append(b, e, 3);
    }
  }
}

/* |uri| + "?" or "&" + the pairs (NULL-terminated name, value list; a NULL
 * or empty value is left out). */
static void url_with(gw_buf *b, const char *uri, const char *const *kv) {
  char sep = strchr(uri, '?') ? '&' : '?';

  gw_buf_puts(b, uri);
  for (; kv[0]; kv += 2) {
    if (!kv[1] || !kv[1][0]) {
      continue;
    }
    gw_buf_append(b, &sep, 1);
    sep = '&';
    gw_buf_puts(b, kv[0]);
    gw_buf_puts(b, "=");
    pct_append(b, kv[1]);
  }
}

static void html_append(gw_buf *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '<':
      gw_buf_puts(b, "&lt;");
      break;
    case '>':
      gw_buf_puts(b, "&gt;");
      break;
    case '&':
      gw_buf_puts(b, "&amp;");
      break;
    case '"':
      gw_buf_puts(b, "&quot;");
      break;
    case '\'':
      gw_buf_puts(b, "&#39;");
      break;
    default:
      gw_buf_append(b, s, 1);
    }
  }
}

static void log_refusal(const char *endpoint, int status, const char *error,
                        const char *client_id, const char *why,
                        const char *ip) {
  static _Thread_local gw_log_rl rl;
  char qid[160], qwhy[320];
  int suppressed = 0;

  if (!gw_log_rl_allow(&rl, 20, &suppressed)) {
    return;
  }
  GW_LOG(status >= 500 ? GW_LOG_WARN : GW_LOG_INFO, "authz refused",
         "endpoint=%s status=%d error=%s client_id=%s reason=%s client=%s "
         "suppressed=%d",
         endpoint, status, error,
         gw_log_quote(qid, sizeof(qid), client_id, strlen(client_id)),
         gw_log_quote(qwhy, sizeof(qwhy), why, strlen(why)), ip, suppressed);
}

static void oauth_error(gw_exch *x, const char *endpoint, const char *client,
                        int status, const char *error, const char *desc) {
  log_refusal(endpoint, status, error, client ? client : "-", desc,
              gw_exch_req(x)->client_ip);
  gw_resp_json(
      x, status,
      json_pack("{s:s, s:s}", "error", error, "error_description", desc));
}

static void api_error(gw_exch *x, int status, const char *code,
                      const char *msg) {
  log_refusal("api", status, code, "-", msg, gw_exch_req(x)->client_ip);
  gw_resp_error(x, status, code, "%s", msg);
}

static long long jint(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);

  return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static const char *jstr(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);

  return json_is_string(v) ? json_string_value(v) : "";
}

/* ---- cookies, Origin ---------------------------------------------------- */

/* The session cookie's value from every Cookie header (HTTP/2 may split
 * them). Returns 0 and fills |out|, or -1. */
static int session_cookie(const gw_req *r, char *out, size_t cap) {
  static const char name[] = GW_AUTHZ_COOKIE "=";

  for (size_t i = 0; i < r->nheaders; i++) {
    const char *p;

    if (strcmp(r->headers[i].name, "cookie") != 0) {
      continue;
    }
    for (p = r->headers[i].value; p && *p;) {
      size_t n;

      p += strspn(p, " ;");
      n = strcspn(p, ";");
      if (strncmp(p, name, sizeof(name) - 1) == 0) {
        size_t vlen = n - (sizeof(name) - 1);

        while (vlen && p[sizeof(name) - 1 + vlen - 1] == ' ') {
          vlen--;
        }
        if (vlen >= cap) {
          return -1;
        }
        memcpy(out, p + sizeof(name) - 1, vlen);
        out[vlen] = '\0';
        return 0;
      }
      p += n;
    }
  }
  return -1;
}

static void set_cookie(gw_exch *x, const char *id) {
  char v[160];

  snprintf(v, sizeof(v),
           GW_AUTHZ_COOKIE "=%s; Path=/; Secure; HttpOnly; SameSite=Lax", id);
  gw_resp_header(x, "set-cookie", v);
  OPENSSL_cleanse(v, sizeof(v));
}

static void clear_cookie(gw_exch *x) {
  gw_resp_header(x, "set-cookie",
                 GW_AUTHZ_COOKIE "=; Path=/; Secure; HttpOnly; SameSite=Lax; "
                                 "Max-Age=0");
}

/* scheme://host[:port] of |url| into |out|. */
static void origin_of(const char *url, char *out, size_t cap) {
  const char *p = strstr(url, "://");
  size_t n = p ? (size_t)(p - url) + 3 + strcspn(p + 3, "/?#") : 0;

  snprintf(out, cap, "%.*s", (int)n, url);
}

/* The Origin header, when present, must be ours: the issuer's origin or
 * the one the request came to; Sec-Fetch-Site, when present, same-origin.
 * |required|: a missing Origin is refused too (POST, DELETE). */
static int origin_ok(gw_exch *x, const gw_config *cfg, int required) {
  const gw_req *r = gw_exch_req(x);
  const char *o = gw_req_header(r, "origin");
  const char *sfs = gw_req_header(r, "sec-fetch-site");
  char mine[600], here[600];

  if (sfs && strcmp(sfs, "same-origin") != 0) {
    return 0;
  }
  if (!o) {
    return !required;
  }
  origin_of(cfg->oidc_issuer, mine, sizeof(mine));
  snprintf(here, sizeof(here), "%s://%s", r->secure ? "https" : "http",
           r->authority ? r->authority : "");
  return strcasecmp(o, mine) == 0 || (r->authority && strcmp(o, here) == 0);
}

/* The media type of Content-Type is application/json. */
static int is_json(const gw_req *r) {
  const char *ct = gw_req_header(r, "content-type");
  size_t n;

  if (!ct) {
    return 0;
  }
  ct += strspn(ct, " \t");
  n = strcspn(ct, "; \t");
  return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* ---- the caller of the JSON API ----------------------------------------- */

typedef struct caller {
  gw_app *app;
  gw_authz *az;
  int native;
  char cookie[ID_LEN + 1];
  gw_session_info s;
  gw_client client;
  char owner[80];
} caller;

/* Binds the caller from the headers alone (the body is not parsed yet).
 * |page_only|: /authorize/finish and /cancel. Returns 0, or -1 when it
 * answered (401/403/415/503). */
static int bind_caller(gw_exch *x, caller *c, int page_only) {
  gw_req *r = gw_exch_req(x);
  int body = strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0;
  const char *authz = gw_req_header(r, "authorization");
  const char *why = "";

  memset(c, 0, sizeof(*c));
  c->app = gw_exch_app(x);
  c->az = c->app ? c->app->authz : NULL;
  if (!c->az || !c->app->cfg || !c->app->clients || !c->app->txn) {
    api_error(x, 503, "temporarily_unavailable",
              "the sign-in service is not running");
    return -1;
  }
  if (authz && !page_only) {
    if (gw_client_authenticate(c->app->clients, authz, NULL, NULL, &c->client,
                               &why) != GW_CLIENT_AUTH_OK) {
      gw_resp_header(x, "www-authenticate", "Basic realm=\"" REALM "\"");
      api_error(x, 401, "invalid_client", "client authentication failed");
      return -1;
    }
    if (!(c->client.grants & GW_GRANT_CIBA)) {
      api_error(x, 403, "unauthorized_client",
                "this client may not use the native API");
      return -1;
    }
    c->native = 1;
    snprintf(c->owner, sizeof(c->owner), "c:%s", c->client.row.client_id);
  } else {
    if (session_cookie(r, c->cookie, sizeof(c->cookie)) != 0 ||
        gw_session_get(c->az->sessions, c->cookie, &c->s) != GW_OK) {
      api_error(x, 401, "unauthorized",
                "no login session: open the sign-in page again");
      return -1;
    }
    if (!c->s.has_req) {
      api_error(x, 403, "forbidden", "no sign-in in progress in this session");
      return -1;
    }
    if (!origin_ok(x, c->app->cfg, body) ||
        !gw_session_csrf_ok(&c->s, gw_req_header(r, "x-csrf-token"))) {
      api_error(x, 403, "forbidden", "cross-site request refused");
      return -1;
    }
    snprintf(c->owner, sizeof(c->owner), "s:%s", c->s.sid);
  }
  if (strcmp(r->method, "POST") == 0 && !is_json(r)) {
    api_error(x, 415, "unsupported_media_type",
              "the body must be application/json");
    return -1;
  }
  return 0;
}

/* Copies the handle |id| owned by |owner|; 0 or -1 (unknown, ended, or
 * another caller's: the same answer). */
static int auth_find(gw_authz *a, const char *id, const char *owner,
                     auth_ent *out) {
  int rv = -1;

  pthread_mutex_lock(&a->mu);
  for (auth_ent *e = a->auths; e; e = e->next) {
    if (strcmp(e->id, id) == 0) {
      if (strcmp(e->owner, owner) == 0) {
        *out = *e;
        rv = 0;
      }
      break;
    }
  }
  pthread_mutex_unlock(&a->mu);
  return rv;
}

/* ---- what a caller may see of a sign-in ------------------------------- */

typedef struct view {
  int complete;
  const char *result; /* static */
  long long hold_ms;  /* RUNNING: wait by timer until then, 0 = watch */
  gw_txn_info t;
  int have_t;
} view;

/* The page gets the public name; a public "not_completed" (not a
 * subscriber, phone absent, timed out, unknown number) stays RUNNING
 * until the sign-in's expiry, so that all four look and last alike. */
static void evaluate(gw_authz *a, gw_txn_engine *e, const auth_ent *h,
                     view *v) {
  long long now = now_ms();
  const char *pub;

  (void)a;
  memset(v, 0, sizeof(*v));
  if (!h->txn[0]) {
    if (h->cancelled) {
      v->complete = 1;
      v->result = "cancelled";
    } else if (now < h->expires_ms) {
      v->hold_ms = h->expires_ms;
    } else {
      v->complete = 1;
      v->result = "not_completed";
    }
    return;
  }
  if (gw_txn_get(e, h->txn, &v->t) != GW_OK) {
    v->complete = 1;
    v->result = "not_completed";
    return;
  }
  v->have_t = 1;
  switch (v->t.state) {
  case GW_TXN_VERIFIED:
  case GW_TXN_DONE:
    v->complete = 1;
    v->result = "ok";
    break;
  case GW_TXN_EXPIRED:
    v->complete = 1;
    v->result = h->native ? "expired" : "not_completed";
    break;
  case GW_TXN_FAILED:
    pub = gw_txn_failure_public(v->t.failure);
    if (h->native) {
      v->complete = 1;
      v->result = gw_txn_failure_name(v->t.failure);
    } else if (strcmp(pub, "not_completed") == 0 && now < v->t.expires_ms) {
      v->hold_ms = v->t.expires_ms;
    } else {
      v->complete = 1;
      v->result = pub;
    }
    break;
  default:
    break;
  }
}

static json_t *view_json(const auth_ent *h, const view *v) {
  json_t *o = json_pack("{s:s}", "state", v->complete ? "COMPLETE" : "RUNNING");

  if (o && v->complete) {
    json_object_set_new(o, "result", json_string(v->result));
    /* Identity for an authenticated client only. */
    if (h->native && v->have_t && strcmp(v->result, "ok") == 0) {
      json_object_set_new(o, "sub", json_string(v->t.civil_id));
      json_object_set_new(o, "msisdn", json_string(v->t.msisdn));
    }
  }
  return o;
}

/* ---- POST /api/v1/auth -------------------------------------------------- */

void gw_authz_mask_msisdn(const char *m, char *out, size_t cap) {
  size_t n = m ? strlen(m) : 0;

  if (n >= 12 && strncmp(m, "+968", 4) == 0) {
    snprintf(out, cap,
             "+968 %c\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2 "
             "\xe2\x80\xa2\xe2\x80\xa2%s",
             m[4], m + n - 2);
  } else if (n >= 2) {
    snprintf(out, cap, "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2%s", m + n - 2);
  } else {
    snprintf(out, cap, "?");
  }
}

typedef struct phones {
  char msisdn[4][GW_STORE_MSISDN_MAX + 1];
  int n;
} phones;

static int phone_row(const gw_store_sub *s, void *arg) {
  phones *p = arg;

  if (!s->revoked && p->n < 4) {
    snprintf(p->msisdn[p->n++], sizeof(p->msisdn[0]), "%s", s->msisdn);
  }
  return GW_OK;
}

/* The login hint from {msisdn | civil_id}: "+968XXXXXXXX" or digits.
 * Returns 0 or -1 (malformed). */
static int hint_of(const json_t *body, char *out, size_t cap, int *civil) {
  const json_t *m = json_object_get(body, "msisdn");
  const json_t *c = json_object_get(body, "civil_id");
  char t[40];
  size_t j = 0;

  *civil = 0;
  if (!!m == !!c || (m && !json_is_string(m)) || (c && !json_is_string(c))) {
    return -1;
  }
  if (c) {
    if (!all_digits(json_string_value(c), 1, GW_STORE_CIVIL_ID_MAX)) {
      return -1;
    }
    *civil = 1;
    snprintf(out, cap, "%s", json_string_value(c));
    return 0;
  }
  for (const char *s = json_string_value(m); *s && j < sizeof(t) - 1; s++) {
    if (*s != ' ' && *s != '-') {
      t[j++] = *s;
    }
  }
  t[j] = '\0';
  if (t[0] == '+' && all_digits(t + 1, 8, 15)) {
    snprintf(out, cap, "%s", t);
  } else if (strncmp(t, "00", 2) == 0 && all_digits(t + 2, 8, 15)) {
    snprintf(out, cap, "+%s", t + 2);
  } else if (all_digits(t, 8, 8)) {
    snprintf(out, cap, "+968%s", t);
  } else if (strncmp(t, "968", 3) == 0 && all_digits(t, 11, 11)) {
    snprintf(out, cap, "+%s", t);
  } else {
    return -1;
  }
  return 0;
}

/* A native client naming a civil number with several active SIMs must
 * choose: 409 with the masked numbers, or phone_choice (an index into
 * them) picks one. Returns 0 (|hint| possibly replaced) or -1 (answered). */
static int native_choice(gw_exch *x, caller *c, const json_t *body, char *hint,
                         size_t cap) {
  gw_store *st = gw_oidc_thread_store(c->app->cfg);
  const json_t *ch = json_object_get(body, "phone_choice");
  phones p;
  json_t *arr;
  char masked[64];

  memset(&p, 0, sizeof(p));
  if (!st || gw_store_sub_list(st, hint, phone_row, &p) != GW_OK) {
    api_error(x, 503, "temporarily_unavailable", "the registry cannot be read");
    return -1;
  }
  if (p.n <= 1) {
    return 0;
  }
  if (json_is_integer(ch) && json_integer_value(ch) >= 0 &&
      json_integer_value(ch) < p.n) {
    snprintf(hint, cap, "%s", p.msisdn[json_integer_value(ch)]);
    return 0;
  }
  arr = json_array();
  for (int i = 0; arr && i < p.n; i++) {
    gw_authz_mask_msisdn(p.msisdn[i], masked, sizeof(masked));
    json_array_append_new(
        arr, json_pack("{s:i, s:s}", "phone_choice", i, "masked", masked));
  }
  gw_resp_json(x, 409,
               json_pack("{s:s, s:s, s:o}", "error", "multiple_phones",
                         "message",
                         "the person has several phones: send phone_choice",
                         "phones", arr ? arr : json_array()));
  return -1;
}

static void cancel_handle(gw_authz *a, gw_txn_engine *e, const char *id,
                          const char *owner) {
  auth_ent h;

  if (!id[0] || auth_find(a, id, owner, &h) != 0) {
    return;
  }
  if (h.txn[0]) {
    gw_txn_cancel(e, h.txn);
  } else {
    pthread_mutex_lock(&a->mu);
    for (auth_ent *p = a->auths; p; p = p->next) {
      if (strcmp(p->id, id) == 0) {
        p->cancelled = 1;
      }
    }
    pthread_mutex_unlock(&a->mu);
  }
}

static int auth_add(gw_authz *a, const auth_ent *h) {
  auth_ent *e = malloc(sizeof(*e));
  int rv = GW_OK;

  if (!e) {
    return GW_ERR_NOMEM;
  }
  *e = *h;
  pthread_mutex_lock(&a->mu);
  purge_locked(a, now_ms());
  if (a->nauths >= MAX_AUTHS) {
    rv = GW_ERR_LIMIT;
    free(e);
  } else {
    e->next = a->auths;
    a->auths = e;
    a->nauths++;
  }
  pthread_mutex_unlock(&a->mu);
  return rv;
}

static void auth_start(gw_exch *x, caller *c, const json_t *body) {
  const gw_config *cfg = c->app->cfg;
  const json_t *lang = json_object_get(body, "lang");
  char hint[40];
  int civil;
  gw_txn_start st;
  gw_txn_info info;
  gw_txn_begin_result br;
  const char *why = NULL;
  gw_client rp;
  auth_ent h;
  long long expires_in;
  unsigned char r[4];

  if (hint_of(body, hint, sizeof(hint), &civil) != 0 ||
      (lang && (!json_is_string(lang) ||
                (strcmp(json_string_value(lang), "ar") != 0 &&
                 strcmp(json_string_value(lang), "en") != 0)))) {
    api_error(x, 400, "invalid_request",
              "send exactly one of msisdn (+968XXXXXXXX) and civil_id "
              "(digits), and lang ar or en");
    return;
  }
  if (c->native) {
    rp = c->client;
    if (civil && native_choice(x, c, body, hint, sizeof(hint)) != 0) {
      return;
    }
  } else if (gw_clients_get(c->app->clients, c->s.req.client_id, &rp) !=
             GW_OK) {
    api_error(x, 403, "forbidden", "the relying party is no longer registered");
    return;
  }
  memset(&st, 0, sizeof(st));
  st.client_id = rp.row.client_id;
  st.client_name = rp.row.name;
  st.login_hint = hint;
  st.scope = c->native ? "openid" : c->s.req.scope;
  st.resource = c->native ? "" : c->s.req.resource;
  st.acr = GW_OIDC_ACR;
  st.lang = lang ? json_string_value(lang) : (c->native ? NULL : c->s.req.lang);
  /* Abuse limits (gw_limits.h): the person's browser or app is the
   * source; starts per address, (phone, source), (phone, client), one
   * pending sign-in per phone. */
  st.source_ip = gw_exch_req(x)->client_ip;
  memset(&info, 0, sizeof(info));
  br = gw_txn_begin(c->app->txn, gw_exch_base(x), &st, &info, &why);
  if (br == GW_TXN_BEGIN_LIMITED) {
    char ra[16];
    if (info.limit == GW_LIMIT_PENDING) {
      api_error(x, 409, "signin_pending",
                "a sign-in is already waiting on this phone: answer or "
                "cancel it first");
      return;
    }
    snprintf(ra, sizeof(ra), "%d",
             info.retry_after_s > 0 ? info.retry_after_s : 1);
    gw_resp_header(x, "retry-after", ra);
    api_error(x, 429, "rate_limited",
              "too many sign-ins: try again later (Retry-After)");
    return;
  }
  memset(&h, 0, sizeof(h));
  if (gw_session_random_id(h.id, sizeof(h.id)) != GW_OK) {
    api_error(x, 500, "internal_error", "no random bytes");
    return;
  }
  snprintf(h.owner, sizeof(h.owner), "%s", c->owner);
  h.native = c->native;
  if (br == GW_TXN_BEGIN_OK) {
    snprintf(h.txn, sizeof(h.txn), "%s", info.id);
    snprintf(h.code, sizeof(h.code), "%s", info.verification_code);
    h.expires_ms = info.expires_ms;
    expires_in = (info.expires_ms - info.created_ms + 999) / 1000;
  } else if (br == GW_TXN_BEGIN_UNKNOWN_USER) {
    /* Nothing is sent anywhere; the caller sees a sign-in that runs and
     * then is not completed, with the shape and duration of a real one:
     * a code from random bits (the engine's formula), the same expiry. */
    if (RAND_bytes(r, sizeof(r)) != 1) {
      api_error(x, 500, "internal_error", "no random bytes");
      return;
    }
    snprintf(h.code, sizeof(h.code), "%04d", gw_txn_code(r, sizeof(r)));
    expires_in = cfg->oidc_ciba_expiry_s;
    h.expires_ms = now_ms() + expires_in * 1000;
  } else if (br == GW_TXN_BEGIN_BAD_HINT) {
    api_error(x, 400, "invalid_request", "not a valid Omani number");
    return;
  } else if (br == GW_TXN_BEGIN_UNAVAILABLE) {
    api_error(x, 503, "temporarily_unavailable",
              "the operator cannot be reached");
    return;
  } else {
    api_error(x, 500, "internal_error", "the sign-in could not be started");
    return;
  }
  if (auth_add(c->az, &h) != GW_OK) {
    if (h.txn[0]) {
      gw_txn_cancel(c->app->txn, h.txn);
    }
    api_error(x, 503, "overloaded", "too many sign-ins in progress");
    return;
  }
  if (!c->native) {
    cancel_handle(c->az, c->app->txn, c->s.auth_id, c->owner);
    snprintf(c->s.auth_id, sizeof(c->s.auth_id), "%s", h.id);
    gw_session_put(c->az->sessions, c->cookie, &c->s);
  }
  GW_LOG(GW_LOG_INFO, "sign-in started", "client_id=%s txn=%.12s native=%d",
         rp.row.client_id, h.txn[0] ? h.txn : "-", c->native);
  gw_resp_json(x, 200,
               json_pack("{s:s, s:s, s:I}", "auth_id", h.id,
                         "verification_code", h.code, "expires_in",
                         (json_int_t)expires_in));
}

static void h_auth_start(gw_exch *x) {
  caller c;
  json_t *body = NULL;

  if (bind_caller(x, &c, 0) != 0 || gw_req_json(x, &body) != GW_OK) {
    return;
  }
  if (!json_is_object(body)) {
    api_error(x, 400, "invalid_request", "the body must be a JSON object");
  } else {
    auth_start(x, &c, body);
  }
  json_decref(body);
}

/* ---- GET /api/v1/auth/{auth_id}: the long poll -------------------------- */

typedef struct poll_job {
  gw_exch *x;
  gw_authz *az;
  gw_txn_engine *e;
  auth_ent h;
  gw_txn_watcher *w;
  struct event *tm;
} poll_job;

static void poll_free(poll_job *p) {
  if (p->tm) {
    event_free(p->tm);
  }
  free(p);
}

static void poll_answer(poll_job *p) {
  view v;

  gw_exch_on_cancel(p->x, NULL, NULL);
  evaluate(p->az, p->e, &p->h, &v);
  gw_resp_json(p->x, 200, view_json(&p->h, &v));
  poll_free(p);
}

static void poll_cancel(void *arg) {
  poll_job *p = arg;

  gw_txn_unwatch(p->w);
  poll_free(p);
}

static void poll_watch_fn(void *arg, const gw_txn_info *info) {
  poll_job *p = arg;

  (void)info;
  p->w = NULL;
  poll_answer(p);
}

static void poll_timer_fn(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  poll_answer(arg);
}

static void h_auth_poll(gw_exch *x) {
  gw_req *r = gw_exch_req(x);
  const char *id = gw_route_param(&r->match, "auth_id");
  caller c;
  gw_form q;
  const char *tms;
  long timeout = 0;
  view v;
  poll_job *p;

  if (bind_caller(x, &c, 0) != 0) {
    return;
  }
  memset(&q, 0, sizeof(q));
  if (gw_req_query(r, &q) != GW_OK) {
    gw_form_free(&q);
    api_error(x, 400, "invalid_request", "malformed query");
    return;
  }
  tms = gw_form_get(&q, "timeout_ms");
  if (tms) {
    timeout = all_digits(tms, 1, 6) ? strtol(tms, NULL, 10) : -1;
  }
  gw_form_free(&q);
  if (timeout < 0 || timeout > POLL_MAX_MS) {
    api_error(x, 400, "invalid_request", "timeout_ms is 0..60000");
    return;
  }
  p = calloc(1, sizeof(*p));
  if (!p) {
    api_error(x, 503, "overloaded", "out of memory");
    return;
  }
  if (!id || auth_find(c.az, id, c.owner, &p->h) != 0) {
    free(p);
    api_error(x, 404, "not_found", "no such sign-in");
    return;
  }
  p->x = x;
  p->az = c.az;
  p->e = c.app->txn;
  evaluate(c.az, p->e, &p->h, &v);
  if (v.complete || timeout == 0) {
    gw_resp_json(x, 200, view_json(&p->h, &v));
    free(p);
    return;
  }
  if (v.hold_ms) {
    long long wait = v.hold_ms - now_ms();
    struct timeval tv;

    if (wait > timeout) {
      wait = timeout;
    }
    if (wait < 0) {
      wait = 0;
    }
    tv.tv_sec = (time_t)(wait / 1000);
    tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
    p->tm = evtimer_new(gw_exch_base(x), poll_timer_fn, p);
    if (!p->tm || evtimer_add(p->tm, &tv) != 0) {
      poll_free(p);
      api_error(x, 503, "overloaded", "out of memory");
      return;
    }
  } else if (gw_txn_watch(p->e, p->h.txn, gw_exch_base(x), (int)timeout,
                          poll_watch_fn, p, &p->w) != GW_OK) {
    /* Forgotten meanwhile, or too many watchers: answer now. */
    evaluate(c.az, p->e, &p->h, &v);
    gw_resp_json(x, 200, view_json(&p->h, &v));
    free(p);
    return;
  }
  gw_exch_on_cancel(x, poll_cancel, p);
}

/* ---- DELETE /api/v1/auth/{auth_id} -------------------------------------- */

static void h_auth_cancel(gw_exch *x) {
  const char *id = gw_route_param(&gw_exch_req(x)->match, "auth_id");
  caller c;
  auth_ent h;

  if (bind_caller(x, &c, 0) != 0) {
    return;
  }
  if (!id || auth_find(c.az, id, c.owner, &h) != 0) {
    api_error(x, 404, "not_found", "no such sign-in");
    return;
  }
  cancel_handle(c.az, c.app->txn, id, c.owner);
  gw_resp_send(x, 204, NULL, NULL, 0);
}

/* ---- authorization codes ------------------------------------------------ */

typedef struct finish_job {
  gw_exch *x;
  gw_app *app;
  caller c;
  gw_txn_info t;
  int consume_rv;
} finish_job;

static void finish_cancel(void *arg) {
  ((finish_job *)arg)->x = NULL;
}

static void finish_work(void *arg) {
  finish_job *j = arg;

  j->consume_rv = gw_txn_consume(j->app->txn, j->t.id);
}

/* The scope granted: licensing.officer only for an officer through the
 * licensing portal (dropped otherwise: the token response says so). */
static void granted_scope(const gw_config *cfg, const gw_session_req *q,
                          const char *sub, char *out, size_t cap) {
  const char *s = q->scope;
  size_t len = 0;
  int officer = strcmp(q->client_id, OFFICER_CLIENT) == 0 &&
                cfg->oidc_officers &&
                gw_client_list_has(cfg->oidc_officers, sub);

  out[0] = '\0';
  while (*s) {
    size_t n = strcspn(s, " ");

    if (n && (officer || n != strlen(OFFICER_SCOPE) ||
              strncmp(s, OFFICER_SCOPE, n) != 0)) {
      len += (size_t)snprintf(out + len, cap - len, "%s%.*s", len ? " " : "",
                              (int)n, s);
      if (len >= cap) {
        out[cap - 1] = '\0';
        return;
      }
    }
    s += n;
    s += strspn(s, " ");
  }
}

static void finish_done(void *arg) {
  finish_job *j = arg;
  gw_authz *a = j->c.az;
  gw_session_info s = j->c.s;
  char code[ID_LEN + 1], nid[ID_LEN + 1];
  code_ent *ce = NULL;
  gw_buf b;

  if (j->x) {
    gw_exch_on_cancel(j->x, NULL, NULL);
  }
  if (!j->x) {
    goto out;
  }
  if (j->consume_rv != GW_OK) {
    api_error(j->x, 409, "conflict", "this sign-in was used already");
    goto out;
  }
  ce = calloc(1, sizeof(*ce));
  if (!ce || gw_session_random_id(code, sizeof(code)) != GW_OK ||
      gw_session_rotate(a->sessions, j->c.cookie, nid) != GW_OK) {
    free(ce);
    api_error(j->x, 500, "internal_error", "the code could not be issued");
    goto out;
  }
  SHA256((const unsigned char *)code, strlen(code), ce->hash);
  ce->req = s.req;
  granted_scope(j->app->cfg, &s.req, j->t.civil_id, ce->req.scope,
                sizeof(ce->req.scope));
  snprintf(ce->sub, sizeof(ce->sub), "%s", j->t.civil_id);
  snprintf(ce->msisdn, sizeof(ce->msisdn), "%s", j->t.msisdn);
  snprintf(ce->name, sizeof(ce->name), "%s", j->t.subscriber_name);
  snprintf(ce->sid, sizeof(ce->sid), "%s", s.sid);
  ce->auth_time = j->t.auth_time;
  ce->exp_ms = now_ms() + (long long)a->code_ttl_s * 1000;
  pthread_mutex_lock(&a->mu);
  purge_locked(a, now_ms());
  if (a->ncodes < MAX_CODES) {
    ce->next = a->codes;
    a->codes = ce;
    a->ncodes++;
    ce = NULL;
  }
  pthread_mutex_unlock(&a->mu);
  if (ce) {
    free(ce);
    api_error(j->x, 503, "overloaded", "too many codes outstanding");
    goto out;
  }
  /* The session, under its new id: signed in, the request done. */
  s.has_req = 0;
  s.auth_id[0] = '\0';
  snprintf(s.sub, sizeof(s.sub), "%s", j->t.civil_id);
  snprintf(s.msisdn, sizeof(s.msisdn), "%s", j->t.msisdn);
  s.auth_time = j->t.auth_time;
  gw_session_put(a->sessions, nid, &s);
  set_cookie(j->x, nid);
  gw_buf_init(&b, URL_CAP);
  url_with(&b, s.req.redirect_uri,
           (const char *const[]){"code", code, "state", s.req.state, "iss",
                                 j->app->cfg->oidc_issuer, NULL});
  GW_LOG(GW_LOG_INFO, "code issued", "client_id=%s sub=%s txn=%.12s",
         s.req.client_id, j->t.civil_id, j->t.id);
  gw_audit_event(
      a->audit, "session.created", j->t.civil_id,
      json_pack("{s:s, s:s}", "client", s.req.client_id, "txn", j->t.id));
  gw_resp_json(j->x, 200, json_pack("{s:s}", "redirect", b.data ? b.data : ""));
  gw_buf_free(&b);
out:
  OPENSSL_cleanse(code, sizeof(code));
  OPENSSL_cleanse(nid, sizeof(nid));
  OPENSSL_cleanse(j, sizeof(*j));
  free(j);
}

static void h_finish(gw_exch *x) {
  finish_job *j;
  json_t *body = NULL;
  const char *id;
  auth_ent h;
  caller c;

  if (bind_caller(x, &c, 1) != 0 || gw_req_json(x, &body) != GW_OK) {
    return;
  }
  id = jstr(body, "auth_id");
  if (!*id || strcmp(id, c.s.auth_id) != 0 ||
      auth_find(c.az, id, c.owner, &h) != 0 || !h.txn[0]) {
    json_decref(body);
    api_error(x, 404, "not_found", "no such sign-in");
    return;
  }
  json_decref(body);
  j = calloc(1, sizeof(*j));
  if (!j) {
    api_error(x, 503, "overloaded", "out of memory");
    return;
  }
  j->x = x;
  j->app = c.app;
  j->c = c;
  if (gw_txn_get(c.app->txn, h.txn, &j->t) != GW_OK ||
      j->t.state != GW_TXN_VERIFIED) {
    free(j);
    api_error(x, 409, "conflict", "the sign-in is not complete");
    return;
  }
  gw_exch_on_cancel(x, finish_cancel, j);
  if (gw_async_run(c.app->pool, gw_exch_base(x), finish_work, finish_done, j) !=
      GW_OK) {
    gw_exch_on_cancel(x, NULL, NULL);
    free(j);
    api_error(x, 503, "overloaded", "busy: try again");
  }
}

static void h_page_cancel(gw_exch *x) {
  caller c;
  gw_buf b;

  if (bind_caller(x, &c, 1) != 0) {
    return;
  }
  cancel_handle(c.az, c.app->txn, c.s.auth_id, c.owner);
  c.s.has_req = 0;
  c.s.auth_id[0] = '\0';
  gw_session_put(c.az->sessions, c.cookie, &c.s);
  gw_buf_init(&b, URL_CAP);
  url_with(&b, c.s.req.redirect_uri,
           (const char *const[]){"error", "access_denied", "error_description",
                                 "the user cancelled the sign-in", "state",
                                 c.s.req.state, "iss", c.app->cfg->oidc_issuer,
                                 NULL});
  gw_resp_json(x, 200, json_pack("{s:s}", "redirect", b.data ? b.data : ""));
  gw_buf_free(&b);
}

/* ---- refresh tokens (the store's kv table) ------------------------------ */

static void rt_key(const char *token, char key[72]) {
  unsigned char h[32];
  char hex[65];

  SHA256((const unsigned char *)token, strlen(token), h);
  hex32(h, hex);
  snprintf(key, 72, "rt:%s", hex);
}

static int family_revoked(gw_store *st, const char *family) {
  char key[64];
  size_t n = 0;

  snprintf(key, sizeof(key), "rf:%s", family);
  return gw_store_kv_get(st, key, NULL, 0, &n) != GW_ERR_NOT_FOUND;
}

static int family_revoke(gw_store *st, const char *family) {
  char key[64];

  if (!family[0]) {
    return GW_OK;
  }
  snprintf(key, sizeof(key), "rf:%s", family);
  return gw_store_kv_put(st, key, "1", 1);
}

/* Reads the record of |token|; a new reference or NULL. */
static json_t *rt_get(gw_store *st, const char *token) {
  char key[72], buf[4096];
  size_t n = 0;

  rt_key(token, key);
  if (gw_store_kv_get(st, key, buf, sizeof(buf), &n) != GW_OK) {
    return NULL;
  }
  return json_loadb(buf, n, 0, NULL);
}

static int rt_put(gw_store *st, const char *token, const json_t *rec) {
  char key[72], *s = json_dumps(rec, JSON_COMPACT);
  int rv;

  if (!s) {
    return GW_ERR_NOMEM;
  }
  rt_key(token, key);
  rv = gw_store_kv_put(st, key, s, strlen(s));
  free(s);
  return rv;
}

int gw_authz_is_refresh(const char *token) {
  return token && b64url_text(token, ID_LEN, ID_LEN);
}

/* A new refresh token of |family| for the identity in |rec| (copied),
 * living until min(family exp, now + idle). Returns GW_OK or an error. */
static int rt_issue(gw_store *st, gw_authz *a, json_t *rec, char *token,
                    size_t cap) {
  long long now = now_ms() / 1000, fexp = jint(rec, "fexp");
  long long exp = now + a->idle_s;
  json_t *n = json_deep_copy(rec);
  int rv;

  if (!n) {
    return GW_ERR_NOMEM;
  }
  json_object_set_new(n, "exp", json_integer(exp < fexp ? exp : fexp));
  json_object_set_new(n, "used", json_false());
  rv = gw_session_random_id(token, cap);
  if (rv == GW_OK) {
    rv = rt_put(st, token, n);
  }
  json_decref(n);
  return rv;
}

/* ---- /token ------------------------------------------------------------- */

typedef struct token_job {
  gw_exch *x;
  gw_authz *az;
  char client_id[GW_STORE_CLIENT_ID_MAX + 1];
  char scope[513];
  char refresh[ID_LEN + 1]; /* "" = none issued */
  unsigned char code_hash[32];
  int from_code;
} token_job;

static void token_cancel(void *arg) {
  ((token_job *)arg)->x = NULL;
}

static void token_minted(void *arg, int rv, const char *at, const char *idt,
                         const char *jti, long long exp) {
  token_job *j = arg;
  const gw_config *cfg;
  json_t *o;

  if (j->from_code && rv == GW_OK) {
    /* What a replay of the code revokes. */
    pthread_mutex_lock(&j->az->mu);
    for (code_ent *c = j->az->codes; c; c = c->next) {
      if (memcmp(c->hash, j->code_hash, 32) == 0) {
        snprintf(c->jti, sizeof(c->jti), "%s", jti);
        c->jti_exp = exp;
      }
    }
    pthread_mutex_unlock(&j->az->mu);
  }
  if (j->x) {
    gw_exch_on_cancel(j->x, NULL, NULL);
    cfg = ((gw_app *)gw_exch_app(j->x))->cfg;
    if (rv != GW_OK) {
      oauth_error(j->x, "token", j->client_id, 500, "server_error",
                  "the tokens could not be signed");
    } else {
      o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "access_token", at,
                    "token_type", "Bearer", "expires_in",
                    cfg->oidc_access_ttl_s, "id_token", idt, "scope", j->scope);
      if (o && j->refresh[0]) {
        json_object_set_new(o, "refresh_token", json_string(j->refresh));
      }
      GW_LOG(GW_LOG_INFO, "token issued",
             "client_id=%s jti=%s grant=%s refresh=%d", j->client_id, jti,
             j->from_code ? "authorization_code" : "refresh_token",
             j->refresh[0] != 0);
      gw_audit_event(
          j->az->audit, "token.issued", jti,
          json_pack("{s:s, s:s, s:s, s:b}", "client", j->client_id, "jti", jti,
                    "grant",
                    j->from_code ? "authorization_code" : "refresh_token",
                    "refresh", j->refresh[0] != 0));
      gw_resp_json(j->x, 200, o);
    }
  }
  OPENSSL_cleanse(j->refresh, sizeof(j->refresh));
  free(j);
}

static void token_mint(gw_exch *x, gw_authz *a, token_job *j,
                       const gw_oidc_grant *g) {
  int rv;

  j->x = x;
  j->az = a;
  gw_exch_on_cancel(x, token_cancel, j);
  rv = gw_oidc_mint(gw_exch_app(x), gw_exch_base(x), g, token_minted, j);
  if (rv != GW_OK) {
    gw_exch_on_cancel(x, NULL, NULL);
    oauth_error(x, "token", j->client_id, 503, "temporarily_unavailable",
                "the tokens cannot be signed now");
    OPENSSL_cleanse(j->refresh, sizeof(j->refresh));
    free(j);
  }
}

/* RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge. */
static int pkce_ok(const char *verifier, const char *challenge) {
  unsigned char h[32];
  gw_buf b;
  int ok;

  if (strlen(verifier) < 43 || strlen(verifier) > 128 ||
      strspn(verifier, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789-._~") != strlen(verifier)) {
    return 0;
  }
  SHA256((const unsigned char *)verifier, strlen(verifier), h);
  gw_buf_init(&b, 64);
  ok = gw_b64url_encode(h, sizeof(h), &b) == GW_OK &&
       strlen(challenge) == b.len &&
       CRYPTO_memcmp(b.data, challenge, b.len) == 0;
  gw_buf_free(&b);
  return ok;
}

/* A replayed code: what it issued is revoked (RFC 6749 §4.1.2). */
static void code_replayed(gw_app *app, const code_ent *c) {
  gw_store *st = gw_oidc_thread_store(app->cfg);
  int rv = st ? GW_OK : GW_ERR_STORE;

  if (st && c->jti[0]) {
    rv = gw_store_revoked_put(st, c->jti, c->req.client_id, c->jti_exp);
  }
  if (st && rv == GW_OK) {
    rv = family_revoke(st, c->family);
  }
  GW_LOG(rv == GW_OK ? GW_LOG_WARN : GW_LOG_ERROR,
         "authorization code replayed", "client_id=%s sub=%s jti=%s revoked=%d",
         c->req.client_id, c->sub, c->jti[0] ? c->jti : "-", rv == GW_OK);
}

static const char *fparam(const gw_form *f, const char *name) {
  const char *v = gw_form_get(f, name);

  return v && *v ? v : NULL;
}

static void grant_code(gw_exch *x, gw_app *app, const gw_client *cl,
                       const gw_form *f) {
  gw_authz *a = app->authz;
  const char *code = fparam(f, "code"), *ru = fparam(f, "redirect_uri");
  const char *ver = fparam(f, "code_verifier");
  const char *id = cl->row.client_id, *bad = NULL;
  unsigned char h[32];
  code_ent c, *hit = NULL;
  int replay = 0;
  token_job *j;
  gw_oidc_grant g;
  gw_store *st;
  json_t *rec;

  if (!(cl->grants & GW_GRANT_AUTH_CODE)) {
    oauth_error(x, "token", id, 400, "unauthorized_client",
                "this client may not use the authorization_code grant");
    return;
  }
  if (!code || !ru || !ver) {
    oauth_error(x, "token", id, 400, "invalid_request",
                "code, redirect_uri and code_verifier are required");
    return;
  }
  SHA256((const unsigned char *)code, strlen(code), h);
  pthread_mutex_lock(&a->mu);
  for (code_ent **pp = &a->codes; *pp; pp = &(*pp)->next) {
    if (CRYPTO_memcmp((*pp)->hash, h, 32) != 0) {
      continue;
    }
    hit = *pp;
    c = *hit;
    if (strcmp(hit->req.client_id, id) != 0) {
      bad = "the code belongs to another client";
    } else if (hit->used) {
      replay = 1; /* forgotten: a third use finds nothing */
      *pp = hit->next;
      a->ncodes--;
      free(hit);
    } else if (hit->exp_ms <= now_ms()) {
      bad = "the code has expired";
    } else if (strcmp(hit->req.redirect_uri, ru) != 0) {
      bad = "redirect_uri differs from the authorization request's";
    } else if (!pkce_ok(ver, hit->req.code_challenge)) {
      bad = "the code_verifier does not match the code_challenge";
    } else {
      hit->used = 1;
    }
    break;
  }
  pthread_mutex_unlock(&a->mu);
  if (!hit || replay || bad) {
    if (replay) {
      code_replayed(app, &c);
    }
    log_refusal("token", 400, "invalid_grant", id,
                bad      ? bad
                : replay ? "code replayed"
                         : "unknown code",
                gw_exch_req(x)->client_ip);
    gw_resp_json(x, 400,
                 json_pack("{s:s, s:s}", "error", "invalid_grant",
                           "error_description",
                           "the code is invalid, expired or used"));
    if (hit) {
      OPENSSL_cleanse(&c, sizeof(c));
    }
    return;
  }
  j = calloc(1, sizeof(*j));
  if (!j) {
    oauth_error(x, "token", id, 500, "server_error", "out of memory");
    return;
  }
  snprintf(j->client_id, sizeof(j->client_id), "%s", id);
  snprintf(j->scope, sizeof(j->scope), "%s", c.req.scope);
  memcpy(j->code_hash, h, 32);
  j->from_code = 1;
  if (cl->grants & GW_GRANT_REFRESH) {
    char family[ID_LEN + 1];
    long long now = now_ms() / 1000;
    int rv = GW_ERR_NOMEM;

    st = gw_oidc_thread_store(app->cfg);
    rec = NULL;
    if (st && gw_session_random_id(family, sizeof(family)) == GW_OK) {
      rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}",
                      "family", family, "client", id, "sub", c.sub, "msisdn",
                      c.msisdn, "name", c.name, "scope", c.req.scope,
                      "resource", c.req.resource, "acr", c.req.acr, "auth_time",
                      (json_int_t)c.auth_time, "fexp",
                      (json_int_t)(now + a->refresh_ttl_s));
    }
    if (rec) {
      rv = rt_issue(st, a, rec, j->refresh, sizeof(j->refresh));
    }
    json_decref(rec);
    if (rv != GW_OK) {
      free(j);
      oauth_error(x, "token", id, 503, "temporarily_unavailable",
                  "the refresh token cannot be stored now");
      return;
    }
    gw_session_add_family(a->sessions, c.sid, family);
    pthread_mutex_lock(&a->mu);
    for (code_ent *p = a->codes; p; p = p->next) {
      if (memcmp(p->hash, h, 32) == 0) {
        snprintf(p->family, sizeof(p->family), "%s", family);
      }
    }
    pthread_mutex_unlock(&a->mu);
  }
  memset(&g, 0, sizeof(g));
  g.client_id = id;
  g.id_token_alg = cl->row.id_token_alg;
  g.sub = c.sub;
  g.msisdn = c.msisdn;
  g.name = c.name;
  g.scope = c.req.scope;
  g.resource = c.req.resource;
  g.acr = c.req.acr;
  g.nonce = c.req.nonce;
  g.auth_time = c.auth_time;
  token_mint(x, a, j, &g);
  OPENSSL_cleanse(&c, sizeof(c));
}

/* Every word of |want| is in |have|. */
static int scope_subset(const char *want, const char *have) {
  char w[128];

  while (*want) {
    size_t n = strcspn(want, " ");

    if (n >= sizeof(w)) {
      return 0;
    }
    if (n) {
      memcpy(w, want, n);
      w[n] = '\0';
      if (!gw_client_list_has(have, w)) {
        return 0;
      }
    }
    want += n;
    want += strspn(want, " ");
  }
  return 1;
}

static void grant_refresh(gw_exch *x, gw_app *app, const gw_client *cl,
                          const gw_form *f) {
  gw_authz *a = app->authz;
  const char *tok = fparam(f, "refresh_token"), *scope = fparam(f, "scope");
  const char *id = cl->row.client_id, *bad = NULL;
  gw_store *st = gw_oidc_thread_store(app->cfg);
  json_t *rec = NULL;
  token_job *j = NULL;
  gw_oidc_grant g;
  int rv = GW_OK;

  if (!(cl->grants & GW_GRANT_REFRESH)) {
    oauth_error(x, "token", id, 400, "unauthorized_client",
                "this client may not use the refresh_token grant");
    return;
  }
  if (!tok) {
    oauth_error(x, "token", id, 400, "invalid_request",
                "refresh_token is required");
    return;
  }
  if (!st) {
    oauth_error(x, "token", id, 503, "temporarily_unavailable",
                "the store cannot be read now");
    return;
  }
  j = calloc(1, sizeof(*j));
  if (!j) {
    oauth_error(x, "token", id, 500, "server_error", "out of memory");
    return;
  }
  pthread_mutex_lock(&a->rt_mu);
  rec = gw_authz_is_refresh(tok) ? rt_get(st, tok) : NULL;
  if (!rec) {
    bad = "unknown refresh token";
  } else if (strcmp(jstr(rec, "client"), id) != 0) {
    bad = "a refresh token of another client";
  } else if (family_revoked(st, jstr(rec, "family"))) {
    bad = "the family is revoked";
  } else if (json_is_true(json_object_get(rec, "used"))) {
    bad = "reused: the family is revoked";
    rv = family_revoke(st, jstr(rec, "family"));
    GW_LOG(GW_LOG_WARN, "refresh token reused",
           "client_id=%s sub=%s revoked=%d", id, jstr(rec, "sub"), rv == GW_OK);
    gw_audit_event(
        a->audit, "refresh.reuse", jstr(rec, "sub"),
        json_pack("{s:s, s:b}", "client", id, "family_revoked", rv == GW_OK));
  } else if (jint(rec, "exp") <= now_ms() / 1000) {
    bad = "the refresh token has expired";
  } else if (scope && !scope_subset(scope, jstr(rec, "scope"))) {
    bad = "scope";
  } else {
    json_object_set_new(rec, "used", json_true());
    rv = rt_put(st, tok, rec);
    if (rv == GW_OK) {
      rv = rt_issue(st, a, rec, j->refresh, sizeof(j->refresh));
    }
  }
  pthread_mutex_unlock(&a->rt_mu);
  if (bad && strcmp(bad, "scope") == 0) {
    oauth_error(x, "token", id, 400, "invalid_scope",
                "the scope exceeds the one originally granted");
  } else if (bad) {
    log_refusal("token", 400, "invalid_grant", id, bad,
                gw_exch_req(x)->client_ip);
    gw_resp_json(x, 400,
                 json_pack("{s:s, s:s}", "error", "invalid_grant",
                           "error_description",
                           "the refresh token is invalid, expired or used"));
  } else if (rv != GW_OK) {
    oauth_error(x, "token", id, 503, "temporarily_unavailable",
                "the refresh token cannot be rotated now");
  } else {
    snprintf(j->client_id, sizeof(j->client_id), "%s", id);
    snprintf(j->scope, sizeof(j->scope), "%s",
             scope ? scope : jstr(rec, "scope"));
    memset(&g, 0, sizeof(g));
    g.client_id = id;
    g.id_token_alg = cl->row.id_token_alg;
    g.sub = jstr(rec, "sub");
    g.msisdn = jstr(rec, "msisdn");
    g.name = jstr(rec, "name");
    g.scope = j->scope;
    g.resource = jstr(rec, "resource");
    g.acr = jstr(rec, "acr");
    g.auth_time = jint(rec, "auth_time");
    token_mint(x, a, j, &g);
    j = NULL;
  }
  json_decref(rec);
  free(j);
}

void gw_authz_token(gw_exch *x, const gw_client *client, const gw_form *form,
                    const char *grant) {
  gw_app *app = gw_exch_app(x);

  if (!app || !app->authz || !app->cfg) {
    oauth_error(x, "token", client->row.client_id, 503,
                "temporarily_unavailable", "the browser flow is not running");
  } else if (strcmp(grant, "authorization_code") == 0) {
    grant_code(x, app, client, form);
  } else {
    grant_refresh(x, app, client, form);
  }
}

void gw_authz_introspect_refresh(gw_exch *x, const gw_client *client,
                                 const char *token) {
  static const char inactive[] = "{\"active\":false}";
  gw_app *app = gw_exch_app(x);
  gw_store *st = app && app->cfg ? gw_oidc_thread_store(app->cfg) : NULL;
  json_t *rec = st ? rt_get(st, token) : NULL;

  if (rec && strcmp(jstr(rec, "client"), client->row.client_id) == 0 &&
      !json_is_true(json_object_get(rec, "used")) &&
      jint(rec, "exp") > now_ms() / 1000 &&
      !family_revoked(st, jstr(rec, "family"))) {
    gw_resp_json(x, 200,
                 json_pack("{s:b, s:s, s:s, s:s, s:s, s:I}", "active", 1,
                           "token_type", "refresh_token", "client_id",
                           client->row.client_id, "sub", jstr(rec, "sub"),
                           "scope", jstr(rec, "scope"), "exp",
                           (json_int_t)jint(rec, "exp")));
  } else {
    gw_resp_send(x, 200, "application/json", inactive, sizeof(inactive) - 1);
  }
  json_decref(rec);
}

void gw_authz_revoke_refresh(gw_exch *x, const gw_client *client,
                             const char *token) {
  gw_app *app = gw_exch_app(x);
  gw_store *st = app && app->cfg ? gw_oidc_thread_store(app->cfg) : NULL;
  json_t *rec = st ? rt_get(st, token) : NULL;

  if (rec && strcmp(jstr(rec, "client"), client->row.client_id) == 0) {
    if (family_revoke(st, jstr(rec, "family")) != GW_OK) {
      oauth_error(x, "revoke", client->row.client_id, 503,
                  "temporarily_unavailable", "the token cannot be revoked now");
      json_decref(rec);
      return;
    }
    GW_LOG(GW_LOG_INFO, "refresh family revoked", "client_id=%s sub=%s",
           client->row.client_id, jstr(rec, "sub"));
  }
  json_decref(rec);
  gw_resp_send(x, 200, NULL, NULL, 0);
}

/* ---- pages -------------------------------------------------------------- */

typedef struct lang_text {
  const char *code, *dir, *other, *other_name;
  const char *title, *lead, *label, *placeholder, *start, *code_label, *cancel,
      *signed_out, *error_title;
  const char *js; /* the messages object */
} lang_text;

static const lang_text L_AR = {
    "ar",
    "rtl",
    "en",
    "English",
    "تسجيل الدخول بالهوية الرقمية",
    "تسجيل الدخول إلى",
    "رقم الهاتف أو الرقم المدني",
    "مثال: 99000001",
    "متابعة",
    "رمز التحقق — تأكد أنه نفس الرمز الظاهر على هاتفك:",
    "إلغاء",
    "تم تسجيل خروجك.",
    "طلب غير صالح",
    "var M={empty:'أدخل رقم الهاتف أو الرقم المدني.',"
    "wait:'أكمل الطلب على هاتفك وأدخل الرمز السري للشريحة…',"
    "ok:'تم التحقق. جارٍ التحويل…',"
    "f_not_completed:'لم يكتمل تسجيل الدخول. تحقق من الرقم وأن هاتفك متصل ثم "
    "حاول مرة أخرى.',"
    "f_user_cancelled:'تم رفض الطلب على الهاتف.',"
    "f_cancelled:'تم الإلغاء.',"
    "f_pin_blocked:'الرمز السري للشريحة مقفل. راجع مشغل الاتصالات.',"
    "f_revoked_certificate:'شهادة الشريحة ملغاة.',"
    "f_certificate:'شهادة الشريحة غير صالحة.',"
    "f_operator_unavailable:'تعذر الوصول إلى مشغل الاتصالات. حاول لاحقاً.',"
    "f_internal:'حدث خطأ. حاول مرة أخرى.'};",
};

static const lang_text L_EN = {
    "en",
    "ltr",
    "ar",
    "العربية",
    "Sign in with Mobile ID",
    "Sign in to",
    "Phone number or civil number",
    "e.g. 99000001",
    "Continue",
    "Verification code — check that your phone shows the same:",
    "Cancel",
    "You have been signed out.",
    "Invalid request",
    "var M={empty:'Enter your phone number or civil number.',"
    "wait:'Complete the request on your phone and enter your SIM PIN…',"
    "ok:'Verified. Redirecting…',"
    "f_not_completed:'The sign-in was not completed. Check the number and "
    "that your phone is reachable, then try again.',"
    "f_user_cancelled:'The request was refused on the phone.',"
    "f_cancelled:'Cancelled.',"
    "f_pin_blocked:'The SIM PIN is blocked. Contact your operator.',"
    "f_revoked_certificate:'The SIM certificate is revoked.',"
    "f_certificate:'The SIM certificate is not valid.',"
    "f_operator_unavailable:'The operator cannot be reached. Try later.',"
    "f_internal:'Something went wrong. Please try again.'};",
};

static const char PAGE_CSS[] =
    "*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;"
    "background:#f3f5f7;color:#1b1f23}main{max-width:26rem;margin:0 auto;"
    "padding:1.25rem}h1{font-size:1.35rem;margin:.5rem 0 1rem}.card{background:"
    "#fff;border-radius:.75rem;padding:1.25rem;box-shadow:0 1px 3px #0002}"
    "label{display:block;margin-bottom:.4rem}input{width:100%;font-size:1.2rem;"
    "padding:.7rem;border:1px solid #9aa4ae;border-radius:.5rem}"
    "button{width:100%;margin-top:1rem;font-size:1.1rem;padding:.8rem;border:0;"
    "border-radius:.5rem;background:#0b6e4f;color:#fff}button.sec{background:"
    "#e1e5e9;color:#1b1f23}button:disabled{opacity:.5}#verification-code{"
    "font-size:2.4rem;letter-spacing:.4rem;text-align:center;font-weight:700;"
    "direction:ltr}#error{color:#a4161a;margin-top:1rem}#status{margin-top:"
    "1rem}nav{text-align:end;margin-bottom:.5rem}a{color:#0b6e4f}";

static const char PAGE_JS[] =
    "(function(){var b=document.body,csrf=b.getAttribute('data-csrf'),"
    "L=b.getAttribute('lang-code'),cur=null;"
    "function $(i){return document.getElementById(i);}"
    "function err(t){$('error').textContent=t||'';$('error').hidden=!t;}"
    "function st(t){$('status').textContent=t||'';}"
    "function api(m,u,d){var h={'X-CSRF-Token':csrf};"
    "if(d){h['Content-Type']='application/json';}"
    "return fetch(u,{method:m,headers:h,credentials:'same-origin',"
    "cache:'no-store',body:d?JSON.stringify(d):undefined}).then(function(r){"
    "if(r.status===204){return {s:204,j:{}};}"
    "return r.json().then(function(j){return {s:r.status,j:j};});});}"
    "function reset(){cur=null;$('start').disabled=false;"
    "$('login-hint').disabled=false;$('code-box').hidden=true;st('');}"
    "function fail(c){reset();err(M['f_'+c]||M.f_internal);}"
    "function finish(){st(M.ok);api('POST','/authorize/finish',{auth_id:cur})"
    ".then(function(r){if(r.s===200&&r.j.redirect){location.assign(r.j."
    "redirect);}else{fail('internal');}},function(){fail('internal');});}"
    "function poll(){var id=cur;if(!id){return;}"
    "api('GET','/api/v1/auth/'+encodeURIComponent(id)+'?timeout_ms=25000')"
    ".then(function(r){if(id!==cur){return;}"
    "if(r.s!==200){fail(r.j.error||'internal');return;}"
    "if(r.j.state==='RUNNING'){poll();return;}"
    "if(r.j.result==='ok'){finish();}else{fail(r.j.result);}},"
    "function(){if(id===cur){setTimeout(poll,2000);}});}"
    "function start(){var v=$('login-hint').value.replace(/[\\s-]/g,'');"
    "if(!v){err(M.empty);return;}err('');$('start').disabled=true;"
    "var d={lang:L};if(/^(\\+|00|968)/.test(v)||/^[79][0-9]{7}$/.test(v))"
    "{d.msisdn=v;}else{d.civil_id=v;}"
    "api('POST','/api/v1/auth',d).then(function(r){"
    "if(r.s!==200){fail(r.s===400?'not_completed':(r.j.error||'internal'));"
    "return;}cur=r.j.auth_id;$('verification-code').textContent="
    "r.j.verification_code;$('code-box').hidden=false;"
    "$('login-hint').disabled=true;st(M.wait);poll();},"
    "function(){fail('internal');});}"
    "$('form').addEventListener('submit',function(e){e.preventDefault();"
    "start();});"
    "$('cancel').addEventListener('click',function(){if(cur){var id=cur;"
    "cur=null;api('DELETE','/api/v1/auth/'+encodeURIComponent(id));"
    "fail('cancelled');return;}api('POST','/authorize/cancel',{})"
    ".then(function(r){if(r.j.redirect){location.assign(r.j.redirect);}});});"
    "})();";

static void page_head(gw_buf *b, const lang_text *L, const char *nonce,
                      const char *title) {
  gw_buf_printf(b,
                "<!DOCTYPE html>\n<html lang=\"%s\" dir=\"%s\">\n<head>\n"
                "<meta charset=\"utf-8\">\n<meta name=\"viewport\" "
                "content=\"width=device-width,initial-scale=1\">\n"
                "<meta name=\"referrer\" content=\"no-referrer\">\n<title>",
                L->code, L->dir);
  html_append(b, title);
  gw_buf_printf(b, "</title>\n<style nonce=\"%s\">%s</style>\n</head>\n", nonce,
                PAGE_CSS);
}

/* The query of this request with ui_locales replaced by |lang|. */
static void switch_href(gw_buf *b, const gw_req *r, const char *lang) {
  const char *q = r->query ? r->query : "";

  gw_buf_puts(b, "/authorize?");
  while (*q) {
    size_t n = strcspn(q, "&");

    if (n && strncmp(q, "ui_locales=", 11) != 0) {
      gw_buf_append(b, q, n);
      gw_buf_puts(b, "&");
    }
    q += n;
    q += strspn(q, "&");
  }
  gw_buf_printf(b, "ui_locales=%s", lang);
}

static void send_login_page(gw_exch *x, const lang_text *L, const char *csrf,
                            const char *client_name) {
  gw_buf b, href;
  char nonce[40];

  if (gw_page_nonce(nonce, sizeof(nonce)) != GW_OK) {
    gw_resp_error(x, 500, "internal_error", "no random bytes");
    return;
  }
  gw_buf_init(&b, PAGE_CAP);
  gw_buf_init(&href, URL_CAP);
  switch_href(&href, gw_exch_req(x), L->other);
  page_head(&b, L, nonce, L->title);
  gw_buf_printf(&b, "<body data-csrf=\"%s\" lang-code=\"%s\">\n<main>\n", csrf,
                L->code);
  gw_buf_printf(&b, "<nav><a id=\"lang-switch\" lang=\"%s\" href=\"", L->other);
  html_append(&b, href.data ? href.data : "/authorize");
  gw_buf_printf(&b, "\">%s</a></nav>\n<div class=\"card\">\n<h1>%s ",
                L->other_name, L->lead);
  html_append(&b, client_name);
  gw_buf_printf(
      &b,
      "</h1>\n<form id=\"form\" method=\"post\" action=\"#\">\n"
      "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
      "<label for=\"login-hint\">%s</label>\n"
      "<input id=\"login-hint\" name=\"login_hint\" type=\"tel\" "
      "inputmode=\"tel\" autocomplete=\"tel\" dir=\"ltr\" "
      "maxlength=\"20\" placeholder=\"%s\" required>\n"
      "<button id=\"start\" type=\"submit\">%s</button>\n</form>\n"
      "<div id=\"code-box\" hidden>\n<p>%s</p>\n"
      "<div id=\"verification-code\"></div>\n</div>\n"
      "<div id=\"status\" role=\"status\" aria-live=\"polite\"></div>\n"
      "<div id=\"error\" role=\"alert\" hidden></div>\n"
      "<button id=\"cancel\" class=\"sec\" type=\"button\">%s"
      "</button>\n</div>\n</main>\n",
      csrf, L->label, L->placeholder, L->start, L->code_label, L->cancel);
  gw_buf_printf(&b, "<script nonce=\"%s\">%s%s</script>\n</body>\n</html>\n",
                nonce, L->js, PAGE_JS);
  gw_resp_page_csp(x, nonce, "'self'");
  if (b.len >= PAGE_CAP - 1) {
    gw_resp_error(x, 500, "internal_error", "the page could not be built");
  } else {
    gw_resp_send(x, 200, "text/html; charset=utf-8", b.data, b.len);
  }
  gw_buf_free(&b);
  gw_buf_free(&href);
}

/* A bilingual page without script: errors that must not redirect, and
 * the signed-out page. */
static void send_plain_page(gw_exch *x, int status, const lang_text *L,
                            const char *title, const char *text) {
  gw_buf b;
  char nonce[40];

  if (gw_page_nonce(nonce, sizeof(nonce)) != GW_OK) {
    gw_resp_error(x, 500, "internal_error", "no random bytes");
    return;
  }
  gw_buf_init(&b, PAGE_CAP);
  page_head(&b, L, nonce, title);
  gw_buf_puts(&b, "<body>\n<main>\n<div class=\"card\">\n<h1 id=\"title\">");
  html_append(&b, title);
  gw_buf_puts(&b, "</h1>\n<p id=\"message\">");
  html_append(&b, text);
  gw_buf_puts(&b, "</p>\n</div>\n</main>\n</body>\n</html>\n");
  gw_resp_page_csp(x, nonce, "'self'");
  gw_resp_send(x, status, "text/html; charset=utf-8", b.data, b.len);
  gw_buf_free(&b);
}

/* The language of a page: the first of ui_locales (RFC: space-separated)
 * that we have, else the first of the browser's Accept-Language (comma-
 * separated, q-values in order as browsers send them), else |dflt|. */
static const lang_text *lang_from(const char *list, const char *seps) {
  const char *s = list ? list : "";

  while (*s) {
    size_t n = strcspn(s, seps);
    size_t m = strcspn(s, ";"); /* "ar-OM;q=0.9" */

    if (m < n) {
      n = m;
    }
    while (n > 0 && *s == ' ') {
      s++;
      n--;
    }
    if (n >= 2 && strncasecmp(s, "ar", 2) == 0 && (n == 2 || s[2] == '-')) {
      return &L_AR;
    }
    if (n >= 2 && strncasecmp(s, "en", 2) == 0 && (n == 2 || s[2] == '-')) {
      return &L_EN;
    }
    s += strcspn(s, seps);
    s += strspn(s, seps);
  }
  return NULL;
}

static const lang_text *lang_pick_req(gw_exch *x, const char *ui_locales,
                                      const char *dflt) {
  const lang_text *l = lang_from(ui_locales, " ");

  if (!l) {
    l = lang_from(gw_req_header(gw_exch_req(x), "accept-language"), ",");
  }
  if (l) {
    return l;
  }
  return dflt && strcmp(dflt, "en") == 0 ? &L_EN : &L_AR;
}

/* ---- GET /authorize ----------------------------------------------------- */

static void error_redirect(gw_exch *x, const char *client_id, const char *ru,
                           const char *state, const char *issuer,
                           const char *error, const char *desc) {
  gw_buf b;

  log_refusal("authorize", 302, error, client_id, desc,
              gw_exch_req(x)->client_ip);
  gw_buf_init(&b, URL_CAP);
  url_with(&b, ru,
           (const char *const[]){"error", error, "error_description", desc,
                                 "state", state, "iss", issuer, NULL});
  gw_resp_header(x, "location", b.data ? b.data : ru);
  gw_resp_send(x, 302, NULL, NULL, 0);
  gw_buf_free(&b);
}

/* Checks the request after client and redirect URI; fills |q|. Returns
 * NULL or the OAuth error (|*desc| says why). */
static const char *authorize_check(const gw_form *f, const gw_client *cl,
                                   gw_session_req *q, const char **desc) {
  const char *rt = fparam(f, "response_type"), *scope = fparam(f, "scope");
  const char *cc = fparam(f, "code_challenge");
  const char *ccm = fparam(f, "code_challenge_method");
  const char *nonce = fparam(f, "nonce"), *res = fparam(f, "resource");
  const char *prompt = fparam(f, "prompt"), *acr = fparam(f, "acr_values");

  for (size_t i = 0; i < f->npairs; i++) {
    if (gw_form_count(f, f->pairs[i].name) > 1 ||
        strlen(f->pairs[i].value) > 2048) {
      *desc = "a parameter is repeated or too long";
      return "invalid_request";
    }
  }
  if (fparam(f, "request")) {
    *desc = "request objects are not supported";
    return "request_not_supported";
  }
  if (fparam(f, "request_uri")) {
    *desc = "request_uri is not supported";
    return "request_uri_not_supported";
  }
  if (!rt || strcmp(rt, "code") != 0) {
    *desc = "response_type must be code";
    return "unsupported_response_type";
  }
  if (!scope || !printable(scope, sizeof(q->scope) - 1, 1) ||
      !gw_client_list_has(scope, "openid")) {
    *desc = "the scope must contain openid";
    return "invalid_scope";
  }
  if (!scope_subset(scope, cl->row.scopes) ||
      (gw_client_list_has(scope, OFFICER_SCOPE) &&
       strcmp(cl->row.client_id, OFFICER_CLIENT) != 0)) {
    *desc = "a scope is not allowed for this client";
    return "invalid_scope";
  }
  if (!cc || !ccm) {
    *desc = "PKCE is required: code_challenge and code_challenge_method S256";
    return "invalid_request";
  }
  if (strcmp(ccm, "S256") != 0 || !b64url_text(cc, 43, 43)) {
    *desc = "code_challenge_method must be S256 with a 43-character challenge";
    return "invalid_request";
  }
  if (nonce && !printable(nonce, GW_OIDC_NONCE_MAX, 0)) {
    *desc = "nonce must be up to 255 printable characters";
    return "invalid_request";
  }
  if (fparam(f, "state") &&
      !printable(fparam(f, "state"), sizeof(q->state) - 1, 1)) {
    *desc = "state must be up to 512 printable characters";
    return "invalid_request";
  }
  if (res && (strlen(res) >= sizeof(q->resource) ||
              !gw_client_list_has(cl->row.resources, res))) {
    *desc = "the resource is not one of this client's";
    return "invalid_target";
  }
  if (prompt && gw_client_list_has(prompt, "none")) {
    *desc = "the user must sign in";
    return "login_required";
  }
  /* acr_values (OIDC Core §3.1.2.1): the gateway has one level, a SIM's
   * PKI signature; asking for another one is refused rather than silently
   * answered with a level the client did not want. */
  if (acr &&
      (!printable(acr, 512, 1) || !gw_client_list_has(acr, GW_OIDC_ACR))) {
    *desc = "acr_values: the only level is " GW_OIDC_ACR;
    return "invalid_request";
  }
  snprintf(q->scope, sizeof(q->scope), "%s", scope);
  snprintf(q->code_challenge, sizeof(q->code_challenge), "%s", cc);
  snprintf(q->nonce, sizeof(q->nonce), "%s", nonce ? nonce : "");
  snprintf(q->resource, sizeof(q->resource), "%s", res ? res : "");
  snprintf(q->acr, sizeof(q->acr), "%s", GW_OIDC_ACR);
  return NULL;
}

static void h_authorize(gw_exch *x) {
  gw_app *app = gw_exch_app(x);
  gw_req *r = gw_exch_req(x);
  const lang_text *L = &L_AR;
  const char *cid, *ru, *err, *desc = "";
  gw_session_req q;
  gw_session_info s;
  gw_client cl;
  gw_form f;
  char cookie[ID_LEN + 1], id[ID_LEN + 1];
  int have = 0;

  memset(&f, 0, sizeof(f));
  memset(&q, 0, sizeof(q));
  if (!app || !app->authz || !app->cfg || !app->clients) {
    send_plain_page(x, 503, L, "Service unavailable",
                    "The sign-in service is not running.");
    return;
  }
  if (gw_req_query(r, &f) != GW_OK) {
    send_plain_page(x, 400, L, L->error_title, "Malformed request.");
    gw_form_free(&f);
    return;
  }
  L = lang_pick_req(x, fparam(&f, "ui_locales"), app->cfg->oidc_display_lang);
  cid = fparam(&f, "client_id");
  ru = fparam(&f, "redirect_uri");
  /* Never redirect to a URI that is not registered exactly. */
  if (!cid || gw_form_count(&f, "client_id") > 1 ||
      gw_clients_get(app->clients, cid, &cl) != GW_OK ||
      !(cl.grants & GW_GRANT_AUTH_CODE)) {
    log_refusal("authorize", 400, "invalid_client", cid ? cid : "-",
                "unknown client or not allowed the code flow", r->client_ip);
    send_plain_page(x, 400, L, L->error_title,
                    strcmp(L->code, "ar") == 0
                        ? "الخدمة التي طلبت تسجيل الدخول غير معروفة."
                        : "The service that asked you to sign in is unknown.");
    gw_form_free(&f);
    return;
  }
  if (!ru || gw_form_count(&f, "redirect_uri") > 1 ||
      strlen(ru) >= sizeof(q.redirect_uri) ||
      !gw_client_list_has(cl.row.redirect_uris, ru)) {
    log_refusal("authorize", 400, "invalid_request", cid,
                "redirect_uri is not registered for the client", r->client_ip);
    send_plain_page(x, 400, L, L->error_title,
                    strcmp(L->code, "ar") == 0
                        ? "عنوان العودة غير مسجل لهذه الخدمة."
                        : "The return address is not registered for this "
                          "service.");
    gw_form_free(&f);
    return;
  }
  err = authorize_check(&f, &cl, &q, &desc);
  if (err) {
    error_redirect(x, cid, ru, fparam(&f, "state"), app->cfg->oidc_issuer, err,
                   desc);
    gw_form_free(&f);
    return;
  }
  snprintf(q.client_id, sizeof(q.client_id), "%s", cid);
  snprintf(q.redirect_uri, sizeof(q.redirect_uri), "%s", ru);
  snprintf(q.state, sizeof(q.state), "%s",
           fparam(&f, "state") ? fparam(&f, "state") : "");
  snprintf(q.lang, sizeof(q.lang), "%s", L->code);
  gw_form_free(&f);
  /* The session: the cookie's when live, else a new one. */
  if (session_cookie(r, cookie, sizeof(cookie)) == 0 &&
      gw_session_get(app->authz->sessions, cookie, &s) == GW_OK) {
    have = 1;
    memcpy(id, cookie, sizeof(id));
    if (app->txn) {
      char owner[80];
      snprintf(owner, sizeof(owner), "s:%s", s.sid);
      cancel_handle(app->authz, app->txn, s.auth_id, owner);
    }
  } else if (gw_session_create(app->authz->sessions, id, &s) == GW_OK) {
    have = 1;
  }
  if (!have) {
    send_plain_page(x, 503, L, L->error_title, "Too many sign-ins: try later.");
    return;
  }
  s.has_req = 1;
  s.req = q;
  s.auth_id[0] = '\0';
  gw_session_put(app->authz->sessions, id, &s);
  set_cookie(x, id);
  send_login_page(x, L, s.csrf, cl.row.name);
  OPENSSL_cleanse(id, sizeof(id));
  OPENSSL_cleanse(cookie, sizeof(cookie));
}

/* ---- /logout --------------------------------------------------------------
 */

static void h_logout(gw_exch *x) {
  gw_app *app = gw_exch_app(x);
  gw_req *r = gw_exch_req(x);
  const char *hint, *plru, *state, *aud = NULL;
  const lang_text *L;
  json_t *claims = NULL;
  gw_session_info s;
  gw_client cl;
  gw_form f;
  gw_store *st;
  gw_buf b;
  char cookie[ID_LEN + 1];
  int ok, rv;

  memset(&f, 0, sizeof(f));
  if (!app || !app->authz || !app->cfg) {
    gw_resp_error(x, 503, "temporarily_unavailable",
                  "the sign-in service is not running");
    return;
  }
  rv = strcmp(r->method, "POST") == 0
           ? gw_form_parse(&f, r->body.data ? r->body.data : "", r->body.len)
           : gw_req_query(r, &f);
  if (rv != GW_OK) {
    gw_form_free(&f);
    gw_resp_error(x, 400, "invalid_request", "malformed parameters");
    return;
  }
  L = lang_pick_req(x, fparam(&f, "ui_locales"), app->cfg->oidc_display_lang);
  hint = fparam(&f, "id_token_hint");
  plru = fparam(&f, "post_logout_redirect_uri");
  state = fparam(&f, "state");
  /* The hint names the client (aud) whose registered URI may be used; its
   * exp is not checked (OpenID RP-Initiated Logout §2). */
  if (hint && app->signer &&
      gw_jwt_verify(app->signer, hint, strlen(hint), "JWT", &claims, NULL) ==
          GW_OK &&
      strcmp(jstr(claims, "iss"), app->cfg->oidc_issuer) == 0) {
    aud = jstr(claims, "aud");
  }
  if (aud && fparam(&f, "client_id") &&
      strcmp(fparam(&f, "client_id"), aud) != 0) {
    aud = NULL;
  }
  ok = aud && plru && gw_clients_get(app->clients, aud, &cl) == GW_OK &&
       gw_client_list_has(cl.row.redirect_uris, plru) && !strchr(plru, ' ');
  /* End the session and its refresh tokens. */
  if (session_cookie(r, cookie, sizeof(cookie)) == 0 &&
      gw_session_end(app->authz->sessions, cookie, &s) == GW_OK) {
    st = gw_oidc_thread_store(app->cfg);
    for (int i = 0; st && i < s.nfamilies; i++) {
      family_revoke(st, s.families[i]);
    }
    GW_LOG(GW_LOG_INFO, "signed out", "sub=%s families=%d",
           s.sub[0] ? s.sub : "-", s.nfamilies);
    gw_audit_event(app->authz->audit, "session.ended", s.sub,
                   json_pack("{s:s, s:i}", "reason", "logout",
                             "refresh_families_revoked", s.nfamilies));
    OPENSSL_cleanse(&s, sizeof(s));
  }
  OPENSSL_cleanse(cookie, sizeof(cookie));
  clear_cookie(x);
  if (ok) {
    gw_buf_init(&b, URL_CAP);
    url_with(&b, plru, (const char *const[]){"state", state, NULL});
    gw_resp_header(x, "location", b.data ? b.data : plru);
    gw_resp_send(x, 303, NULL, NULL, 0);
    gw_buf_free(&b);
  } else {
    send_plain_page(x, 200, L, L->title, L->signed_out);
  }
  json_decref(claims);
  gw_form_free(&f);
}

/* ---- routes ---------------------------------------------------------------
 */

int gw_authz_register(gw_router *r) {
  static const struct {
    const char *method, *pattern;
    gw_handler_fn fn;
    size_t max_body;
    const char *name;
  } routes[] = {
      {"GET", "/authorize", h_authorize, 0, "authz_authorize"},
      {"POST", "/authorize/finish", h_finish, GW_AUTHZ_JSON_MAX,
       "authz_finish"},
      {"POST", "/authorize/cancel", h_page_cancel, GW_AUTHZ_JSON_MAX,
       "authz_cancel"},
      {"POST", "/api/v1/auth", h_auth_start, GW_AUTHZ_JSON_MAX,
       "api_auth_start"},
      {"GET", "/api/v1/auth/{auth_id}", h_auth_poll, 0, "api_auth_poll"},
      {"DELETE", "/api/v1/auth/{auth_id}", h_auth_cancel, 0, "api_auth_cancel"},
      {"GET", "/logout", h_logout, 0, "authz_logout"},
      {"POST", "/logout", h_logout, 8192, "authz_logout"},
  };
  int rv = GW_OK;

  for (size_t i = 0; rv == GW_OK && i < sizeof(routes) / sizeof(routes[0]);
       i++) {
    rv = gw_router_add(r, routes[i].method, routes[i].pattern, routes[i].fn,
                       routes[i].max_body, routes[i].name);
  }
  return rv;
}
