/* gw_oidc.c — the OpenID Connect provider's HTTP endpoints (gw_oidc.h,
 * docs/oidc.md). */
#include "gw_oidc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "gw_app.h"
#include "gw_async.h"
#include "gw_audit.h"
#include "gw_authz.h"
#include "gw_buf.h"
#include "gw_client.h"
#include "gw_config.h"
#include "gw_err.h"
#include "gw_form.h"
#include "gw_http.h"
#include "gw_jose.h"
#include "gw_limits.h"
#include "gw_log.h"
#include "gw_store.h"
#include "gw_txn.h"

#define CIBA_GRANT "urn:openid:params:grant-type:ciba"
#define AUTH_REQ_ID_CLAIM "urn:openid:params:jwt:claim:auth_req_id"
#define OFFICER_SCOPE "licensing.officer"
#define OFFICER_CLIENT "licensing-portal"
#define REALM "mpkigw"

#define LOGIN_HINT_MAX 64
#define BINDING_MESSAGE_MAX 64 /* characters: the phone's dialogue is small */
#define NOTIFICATION_TOKEN_MAX 1024
#define SCOPE_MAX 512 /* gw_txn_info.scope */
#define SCOPE_WORDS_MAX 16
#define RESOURCE_MAX 512 /* gw_txn_info.resource */
#define URL_MAX 600
#define JTI_BYTES 16 /* 128 bits: unguessable, unique without a registry */
#define TOKEN_CAP (16 * 1024)
#define JWKS_CAP (64 * 1024)
#define CLOCK_SKEW_S 60
#define REFUSAL_LOG_PER_SEC 20
#define DISCOVERY_CACHE "public, max-age=300"

/* ---- the per-thread store handle --------------------------------------
 * Revocation is read on every introspection and userinfo call, on the
 * worker's loop (one indexed read): a handle per thread, as gw_store.h
 * requires, opened on first use and closed by the key's destructor when
 * the thread exits. The path is kept so that a thread that outlives one
 * configuration (tests) reopens on the next. */

typedef struct thread_store {
  gw_store *st;
  char *path;
} thread_store;

static pthread_key_t store_key;
static pthread_once_t store_once = PTHREAD_ONCE_INIT;
static int store_key_ok;

static void thread_store_free(void *p) {
  thread_store *t = p;

  if (t) {
    gw_store_close(t->st);
    free(t->path);
    free(t);
  }
}

static void store_key_make(void) {
  store_key_ok = pthread_key_create(&store_key, thread_store_free) == 0;
}

static gw_store *thread_store_get(const gw_config *cfg) {
  static _Thread_local gw_log_rl rl;
  thread_store *t;
  gw_store *st = NULL;
  char err[256], qerr[300];
  int suppressed = 0;

  pthread_once(&store_once, store_key_make);
  if (!store_key_ok || !cfg->store_path) {
    return NULL;
  }
  t = pthread_getspecific(store_key);
  if (t && strcmp(t->path, cfg->store_path) == 0) {
    return t->st;
  }
  if (t) {
    pthread_setspecific(store_key, NULL);
    thread_store_free(t);
  }
  if (gw_store_open(&st, cfg->store_backend ? cfg->store_backend : "sqlite",
                    cfg->store_path, cfg->store_busy_timeout_ms, err,
                    sizeof(err)) != GW_OK) {
    if (gw_log_rl_allow(&rl, 1, &suppressed)) {
      GW_LOG(GW_LOG_ERROR, "oidc: cannot open the store",
             "reason=%s suppressed=%d",
             gw_log_quote(qerr, sizeof(qerr), err, strlen(err)), suppressed);
    }
    return NULL;
  }
  t = calloc(1, sizeof(*t));
  if (t) {
    t->path = strdup(cfg->store_path);
  }
  if (!t || !t->path || pthread_setspecific(store_key, t) != 0) {
    gw_store_close(st);
    if (t) {
      free(t->path);
      free(t);
    }
    return NULL;
  }
  t->st = st;
  return st;
}

gw_store *gw_oidc_thread_store(const gw_config *cfg) {
  return cfg ? thread_store_get(cfg) : NULL;
}

/* ---- small helpers ---------------------------------------------------- */

/* |issuer| + |path| without a doubled '/': the issuer may end in one. */
static void endpoint_url(const gw_config *cfg, const char *path, char *out,
                         size_t cap) {
  size_t n = strlen(cfg->oidc_issuer);

  if (n && cfg->oidc_issuer[n - 1] == '/') {
    n--;
  }
  snprintf(out, cap, "%.*s%s", (int)n, cfg->oidc_issuer, path);
}

static int all_digits(const char *s, size_t min, size_t max) {
  size_t n = strlen(s);

  if (n < min || n > max) {
    return 0;
  }
  return strspn(s, "0123456789") == n;
}

/* Printable ASCII without space: what a scope word, resource or token
 * parameter may hold here. A space would let a value match across two
 * words of a client's space-separated lists. */
static int is_token_text(const char *s) {
  if (!*s) {
    return 0;
  }
  for (; *s; s++) {
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
      return 0;
    }
  }
  return 1;
}

/* Copies at most 32 printable ASCII bytes of client input into |out|,
 * '?' for the rest: error descriptions must be valid UTF-8 for jansson
 * and must not carry whatever a client chose to send. */
static const char *safe_name(const char *s, char out[40]) {
  size_t i;

  for (i = 0; i < 32 && s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  out[i] = '\0';
  return out;
}

/* Decodes one UTF-8 sequence at |s| into |*cp|; returns its length, or 0
 * when it is malformed (overlong, surrogate, beyond U+10FFFF, cut). */
static size_t utf8_next(const unsigned char *s, unsigned *cp) {
  unsigned c = s[0], min;
  size_t n;

  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if ((c & 0xE0) == 0xC0) {
    n = 2, min = 0x80, c &= 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, min = 0x800, c &= 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, c &= 0x07;
  } else {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) {
      return 0;
    }
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
    return 0;
  }
  *cp = c;
  return n;
}

/* Code points a binding message must not hold: controls (C0, DEL, C1),
 * line and paragraph separators, and the bidirectional overrides and
 * isolates, with which a relying party could make the phone show the
 * text — the verification code — in another order than it was sent. */
static int cp_refused(unsigned cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 ||
         cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

/* 1 when |s| is valid UTF-8 of 1..|max| printable characters. */
static int printable_utf8(const char *s, size_t max) {
  const unsigned char *p = (const unsigned char *)s;
  size_t chars = 0, n;
  unsigned cp;

  while (*p) {
    n = utf8_next(p, &cp);
    if (n == 0 || cp_refused(cp) || ++chars > max) {
      return 0;
    }
    p += n;
  }
  return chars > 0;
}

static long long now_s(void) {
  return (long long)time(NULL);
}

/* ---- one OAuth request ------------------------------------------------ */

typedef struct oreq {
  gw_exch *x;
  gw_app *app;
  const char *endpoint; /* for the log: "bc-authorize", "token", ... */
  gw_form form;
  gw_client client; /* the authenticated caller */
  int authed;
  const char *www_auth; /* WWW-Authenticate of a 401, NULL = none */
} oreq;

static void oauth_error(gw_exch *x, int status, const char *error,
                        const char *desc, const char *www_auth) {
  if (status == 401 && www_auth) {
    gw_resp_header(x, "www-authenticate", www_auth);
  }
  gw_resp_json(
      x, status,
      json_pack("{s:s, s:s}", "error", error, "error_description", desc));
}

/* One line per refusal with the real reason (|why|), rate-limited per
 * thread because clients trigger refusals at will. */
static void log_refusal(const char *endpoint, int status, const char *error,
                        const char *client_id, const char *why,
                        const char *ip) {
  static _Thread_local gw_log_rl rl;
  char qid[160], qwhy[320];
  int suppressed = 0;

  if (!gw_log_rl_allow(&rl, REFUSAL_LOG_PER_SEC, &suppressed)) {
    return;
  }
  GW_LOG(strcmp(error, "invalid_client") == 0 || status >= 500 ? GW_LOG_WARN
                                                               : GW_LOG_INFO,
         "oidc refused",
         "endpoint=%s status=%d error=%s client_id=%s reason=%s client=%s "
         "suppressed=%d",
         endpoint, status, error,
         gw_log_quote(qid, sizeof(qid), client_id, strlen(client_id)),
         gw_log_quote(qwhy, sizeof(qwhy), why, strlen(why)), ip, suppressed);
}

/* The client_id to log: the authenticated one, else the one claimed in
 * the form (not a secret), else "-". */
static const char *log_client(const oreq *q) {
  const char *id;

  if (q->authed) {
    return q->client.row.client_id;
  }
  id = gw_form_get(&q->form, "client_id");
  return id && *id ? id : "-";
}

/* Answers the OAuth error and logs it; |why| (NULL = |desc|) is the real
 * reason, for the log only. */
static void refuse(oreq *q, int status, const char *error, const char *desc,
                   const char *why) {
  log_refusal(q->endpoint, status, error, log_client(q), why ? why : desc,
              gw_exch_req(q->x)->client_ip);
  oauth_error(q->x, status, error, desc, q->www_auth);
}

/* A parameter's value; empty counts as absent (RFC 6749 §3.1). */
static const char *param(const oreq *q, const char *name) {
  const char *v = gw_form_get(&q->form, name);

  return v && *v ? v : NULL;
}

/* The media type of Content-Type, before any parameters, is |type|. */
static int content_type_is(const gw_req *r, const char *type) {
  const char *ct = gw_req_header(r, "content-type");
  size_t n;

  if (!ct) {
    return 0;
  }
  ct += strspn(ct, " \t");
  n = strcspn(ct, "; \t");
  return n == strlen(type) && strncasecmp(ct, type, n) == 0;
}

/* Reads the form body. Done here rather than with gw_req_form so that
 * its refusals are in OAuth's error format, as clients of these endpoints
 * expect. */
static int read_form(oreq *q) {
  gw_req *r = gw_exch_req(q->x);
  int rv;

  if (!content_type_is(r, "application/x-www-form-urlencoded")) {
    refuse(q, 415, "invalid_request",
           "the body must be application/x-www-form-urlencoded", NULL);
    return -1;
  }
  rv = gw_form_parse(&q->form, r->body.data ? r->body.data : "", r->body.len);
  if (rv != GW_OK) {
    refuse(q, 400, "invalid_request",
           rv == GW_ERR_TOO_LARGE ? "too many parameters"
                                  : "the form body is malformed",
           NULL);
    return -1;
  }
  return 0;
}

/* RFC 6749 §3.1: no parameter may be repeated. |multi_ok| (may be NULL)
 * is exempt here (RFC 8707 allows several resources: the caller refuses
 * them as invalid_target). Values are capped, except |big_ok|'s (a token
 * being introspected or revoked: capped by the body). */
static int check_params(oreq *q, const char *multi_ok, const char *big_ok) {
  char name[40], desc[96];

  for (size_t i = 0; i < q->form.npairs; i++) {
    const gw_kv *kv = &q->form.pairs[i];
    int exempt_multi = multi_ok && strcmp(kv->name, multi_ok) == 0;
    int exempt_big = big_ok && strcmp(kv->name, big_ok) == 0;

    if (!exempt_multi && gw_form_count(&q->form, kv->name) > 1) {
      snprintf(desc, sizeof(desc), "parameter %s is repeated",
               safe_name(kv->name, name));
      refuse(q, 400, "invalid_request", desc, NULL);
      return -1;
    }
    if (!exempt_big && strlen(kv->value) > GW_OIDC_PARAM_MAX) {
      snprintf(desc, sizeof(desc), "parameter %s is too long",
               safe_name(kv->name, name));
      refuse(q, 400, "invalid_request", desc, NULL);
      return -1;
    }
  }
  return 0;
}

/* RFC 6749 §2.3.1. A 401 carries WWW-Authenticate: Basic (RFC 6749 §5.2
 * asks for it when Basic was tried; RFC 9110 wants one on every 401). */
static int authenticate(oreq *q) {
  const char *why = "";
  gw_client_auth_result r;

  r = gw_client_authenticate(
      q->app->clients, gw_req_header(gw_exch_req(q->x), "authorization"),
      param(q, "client_id"), param(q, "client_secret"), &q->client, &why);
  switch (r) {
  case GW_CLIENT_AUTH_OK:
    q->authed = 1;
    return 0;
  case GW_CLIENT_AUTH_MALFORMED:
    refuse(q, 400, "invalid_request", "malformed client authentication", why);
    return -1;
  case GW_CLIENT_AUTH_NONE:
  case GW_CLIENT_AUTH_FAILED:
  default:
    q->www_auth = "Basic realm=\"" REALM "\"";
    refuse(q, 401, "invalid_client", "client authentication failed", why);
    return -1;
  }
}

/* The common start of the client-authenticated POST endpoints. Returns 0,
 * or -1 when it has answered. */
static int oreq_begin(oreq *q, gw_exch *x, const char *endpoint,
                      const char *multi_ok, const char *big_ok) {
  memset(q, 0, sizeof(*q));
  q->x = x;
  q->app = gw_exch_app(x);
  q->endpoint = endpoint;
  if (!q->app || !q->app->cfg || !q->app->clients) {
    refuse(q, 503, "temporarily_unavailable",
           "the OpenID provider is not running", NULL);
    return -1;
  }
  if (read_form(q) != 0 || check_params(q, multi_ok, big_ok) != 0) {
    return -1;
  }
  return authenticate(q);
}

static void oreq_end(oreq *q) {
  gw_form_free(&q->form);
}

/* ---- discovery and keys ----------------------------------------------- */

static json_t *str_array(const char *const *v, size_t n) {
  json_t *a = json_array();

  for (size_t i = 0; a && i < n; i++) {
    json_array_append_new(a, json_string(v[i]));
  }
  return a;
}

#define STR_ARRAY(...)                                                         \
  str_array((const char *const[]){__VA_ARGS__},                                \
            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))

static void set_url(json_t *d, const gw_config *cfg, const char *key,
                    const char *path) {
  char url[URL_MAX];

  endpoint_url(cfg, path, url, sizeof(url));
  json_object_set_new(d, key, json_string(url));
}

static json_t *discovery_doc(const gw_config *cfg) {
  json_t *d = json_object();

  if (!d) {
    return NULL;
  }
  json_object_set_new(d, "issuer", json_string(cfg->oidc_issuer));
  set_url(d, cfg, "authorization_endpoint", "/authorize");
  set_url(d, cfg, "token_endpoint", "/token");
  set_url(d, cfg, "userinfo_endpoint", "/userinfo");
  set_url(d, cfg, "jwks_uri", "/jwks.json");
  set_url(d, cfg, "backchannel_authentication_endpoint", "/bc-authorize");
  set_url(d, cfg, "introspection_endpoint", "/introspect");
  set_url(d, cfg, "revocation_endpoint", "/revoke");
  set_url(d, cfg, "end_session_endpoint", "/logout");
  json_object_set_new(
      d, "scopes_supported",
      STR_ARRAY("openid", "profile", "licensing", "licensing.officer"));
  json_object_set_new(d, "response_types_supported", STR_ARRAY("code"));
  json_object_set_new(
      d, "grant_types_supported",
      STR_ARRAY(CIBA_GRANT, "authorization_code", "refresh_token"));
  json_object_set_new(d, "subject_types_supported", STR_ARRAY("public"));
  json_object_set_new(d, "id_token_signing_alg_values_supported",
                      STR_ARRAY("ES256", "RS256"));
  json_object_set_new(d, "token_endpoint_auth_methods_supported",
                      STR_ARRAY("client_secret_basic", "client_secret_post"));
  json_object_set_new(d, "introspection_endpoint_auth_methods_supported",
                      STR_ARRAY("client_secret_basic", "client_secret_post"));
  json_object_set_new(d, "revocation_endpoint_auth_methods_supported",
                      STR_ARRAY("client_secret_basic", "client_secret_post"));
  json_object_set_new(d, "backchannel_token_delivery_modes_supported",
                      STR_ARRAY("poll", "ping"));
  json_object_set_new(d, "backchannel_user_code_parameter_supported",
                      json_false());
  json_object_set_new(d, "claims_supported",
                      STR_ARRAY("iss", "sub", "aud", "exp", "iat", "auth_time",
                                "acr", "amr", "name", "phone_number",
                                "phone_number_verified"));
  json_object_set_new(d, "code_challenge_methods_supported", STR_ARRAY("S256"));
  json_object_set_new(d, "acr_values_supported", STR_ARRAY(GW_OIDC_ACR));
  /* Request objects are refused: say so (request_uri's default is true). */
  json_object_set_new(d, "request_parameter_supported", json_false());
  json_object_set_new(d, "request_uri_parameter_supported", json_false());
  json_object_set_new(d, "claims_parameter_supported", json_false());
  return d;
}

static void h_discovery(gw_exch *x) {
  gw_app *app = gw_exch_app(x);
  json_t *d;

  if (!app || !app->cfg || !app->cfg->oidc_issuer) {
    oauth_error(x, 503, "temporarily_unavailable",
                "the OpenID provider is not configured", NULL);
    return;
  }
  d = discovery_doc(app->cfg);
  if (!d) {
    oauth_error(x, 500, "server_error", "out of memory", NULL);
    return;
  }
  gw_resp_header(x, "cache-control", DISCOVERY_CACHE);
  gw_resp_json(x, 200, d);
}

static void h_jwks(gw_exch *x) {
  gw_app *app = gw_exch_app(x);
  gw_buf b;

  if (!app || !app->signer) {
    oauth_error(x, 503, "temporarily_unavailable",
                "the token keys are not loaded", NULL);
    return;
  }
  gw_buf_init(&b, JWKS_CAP);
  if (gw_signer_jwks(app->signer, &b) != GW_OK) {
    gw_buf_free(&b);
    oauth_error(x, 500, "server_error", "could not render the keys", NULL);
    return;
  }
  gw_resp_header(x, "cache-control", DISCOVERY_CACHE);
  gw_resp_send(x, 200, "application/json", b.data, b.len);
  gw_buf_free(&b);
}

/* ---- POST /bc-authorize ------------------------------------------------ */

typedef struct ciba_req {
  const char *hint;
  const char *binding_message;
  const char *resource;
  int expiry_s;
  char scope[SCOPE_MAX + 1]; /* normalised: deduplicated, one space */
} ciba_req;

/* Parameters this provider does not support: refused rather than
 * ignored, since ignoring them would change what the client asked for. */
static int ciba_check_unsupported(oreq *q) {
  if (param(q, "user_code")) {
    refuse(q, 400, "invalid_request", "user_code is not supported", NULL);
    return -1;
  }
  if (param(q, "request") || param(q, "request_uri")) {
    refuse(q, 400, "invalid_request",
           "signed authentication requests are not supported", NULL);
    return -1;
  }
  return 0;
}

static int ciba_check_client(oreq *q) {
  const char *tok = param(q, "client_notification_token");

  if (!(q->client.grants & GW_GRANT_CIBA)) {
    refuse(q, 400, "unauthorized_client",
           "this client may not use the CIBA grant", NULL);
    return -1;
  }
  /* CIBA §7.1: required in ping mode; ignored in poll mode. */
  if (q->client.ciba_ping &&
      (!tok || strlen(tok) > NOTIFICATION_TOKEN_MAX || !is_token_text(tok))) {
    refuse(q, 400, "invalid_request",
           "client_notification_token is required in ping mode (1..1024 "
           "printable characters)",
           NULL);
    return -1;
  }
  return 0;
}

/* "tel:+<8..15 digits>", "+<8..15 digits>" or a civil number (digits):
 * the engine decides whether the number is Omani and known. */
static int hint_syntax_ok(const char *h) {
  if (strncmp(h, "tel:", 4) == 0) {
    h += 4;
  }
  if (*h == '+') {
    return all_digits(h + 1, 8, 15);
  }
  return all_digits(h, 1, GW_STORE_CIVIL_ID_MAX);
}

static int ciba_check_hint(oreq *q, ciba_req *c) {
  const char *h = param(q, "login_hint");
  int n = !!h + !!param(q, "id_token_hint") + !!param(q, "login_hint_token");

  if (n != 1) {
    refuse(q, 400, "invalid_request",
           "exactly one of login_hint, id_token_hint and login_hint_token "
           "is required",
           NULL);
    return -1;
  }
  if (!h) {
    refuse(q, 400, "invalid_request",
           "id_token_hint and login_hint_token are not supported: use "
           "login_hint",
           NULL);
    return -1;
  }
  if (strlen(h) > LOGIN_HINT_MAX || !hint_syntax_ok(h)) {
    refuse(q, 400, "invalid_request",
           "login_hint must be tel:+968XXXXXXXX or a civil number", NULL);
    return -1;
  }
  c->hint = h;
  return 0;
}

/* Splits |s| into words, checks each (syntax, the client's scopes), drops
 * repeats and writes the normalised list to c->scope. */
static int ciba_parse_scope(oreq *q, ciba_req *c, const char *s) {
  char word[SCOPE_MAX + 1];
  size_t len = 0, nwords = 0;

  c->scope[0] = '\0';
  while (*s) {
    size_t n = strcspn(s, " ");

    if (n > 0) {
      if (n > SCOPE_MAX || ++nwords > SCOPE_WORDS_MAX) {
        refuse(q, 400, "invalid_scope", "too many or too long scopes", NULL);
        return -1;
      }
      memcpy(word, s, n);
      word[n] = '\0';
      if (!is_token_text(word) || strchr(word, '"') || strchr(word, '\\') ||
          !gw_client_list_has(q->client.row.scopes, word)) {
        refuse(q, 400, "invalid_scope",
               "a scope is not allowed for this client", NULL);
        return -1;
      }
      if (!gw_client_list_has(c->scope, word)) {
        if (len + (len ? 1 : 0) + n > SCOPE_MAX) {
          refuse(q, 400, "invalid_scope", "the scope is too long", NULL);
          return -1;
        }
        len += (size_t)snprintf(c->scope + len, sizeof(c->scope) - len, "%s%s",
                                len ? " " : "", word);
      }
    }
    s += n;
    s += strspn(s, " ");
  }
  return 0;
}

/* licensing.officer: only through the licensing portal and only for a
 * civil number listed in oidc.officers. The civil number must be the
 * login_hint itself: with a phone number it would be known only after
 * gw_txn_begin had pushed a request to the phone, and nothing may be
 * pushed for a request that is then refused. */
static int ciba_check_officer(oreq *q, const ciba_req *c) {
  const char *officers = q->app->cfg->oidc_officers;

  if (!gw_client_list_has(c->scope, OFFICER_SCOPE)) {
    return 0;
  }
  if (strcmp(q->client.row.client_id, OFFICER_CLIENT) != 0) {
    refuse(q, 400, "invalid_scope",
           OFFICER_SCOPE " is not available to this client", NULL);
    return -1;
  }
  if (!all_digits(c->hint, 1, GW_STORE_CIVIL_ID_MAX)) {
    refuse(q, 400, "invalid_scope",
           OFFICER_SCOPE " needs the civil number as login_hint", NULL);
    return -1;
  }
  if (!officers || !gw_client_list_has(officers, c->hint)) {
    refuse(q, 400, "invalid_scope",
           OFFICER_SCOPE " is not granted to this user",
           "the civil number is not in oidc.officers");
    return -1;
  }
  return 0;
}

static int ciba_check_scope(oreq *q, ciba_req *c) {
  const char *s = param(q, "scope");

  if (!s) {
    refuse(q, 400, "invalid_request", "scope is required", NULL);
    return -1;
  }
  if (ciba_parse_scope(q, c, s) != 0) {
    return -1;
  }
  if (!gw_client_list_has(c->scope, "openid")) {
    refuse(q, 400, "invalid_scope", "the scope must contain openid", NULL);
    return -1;
  }
  return ciba_check_officer(q, c);
}

static int ciba_check_binding(oreq *q, ciba_req *c) {
  const char *m = param(q, "binding_message");

  if (m && !printable_utf8(m, BINDING_MESSAGE_MAX)) {
    refuse(q, 400, "invalid_binding_message",
           "binding_message must be 1..64 printable characters", NULL);
    return -1;
  }
  c->binding_message = m;
  return 0;
}

/* Digits only (no sign, exponent or spaces), 1..oidc.ciba_expiry_s. */
static int ciba_check_expiry(oreq *q, ciba_req *c) {
  const char *e = param(q, "requested_expiry");
  int max = q->app->cfg->oidc_ciba_expiry_s;
  char desc[96];
  long v;

  if (!e) {
    return 0;
  }
  v = all_digits(e, 1, 6) ? strtol(e, NULL, 10) : 0;
  if (v < 1 || v > max) {
    snprintf(desc, sizeof(desc),
             "requested_expiry must be an integer from 1 to %d", max);
    refuse(q, 400, "invalid_request", desc, NULL);
    return -1;
  }
  c->expiry_s = (int)v;
  return 0;
}

/* RFC 8707: one resource at most (a token has one audience here), and one
 * of the client's. */
static int check_resource(oreq *q, const char **out) {
  const char *r = param(q, "resource");

  *out = NULL;
  if (gw_form_count(&q->form, "resource") > 1) {
    refuse(q, 400, "invalid_target", "at most one resource per request", NULL);
    return -1;
  }
  if (!r) {
    return 0;
  }
  if (strlen(r) > RESOURCE_MAX || !is_token_text(r) || strchr(r, '#') ||
      !gw_client_list_has(q->client.row.resources, r)) {
    refuse(q, 400, "invalid_target", "the resource is not one of this client's",
           NULL);
    return -1;
  }
  *out = r;
  return 0;
}

static int ciba_validate(oreq *q, ciba_req *c) {
  memset(c, 0, sizeof(*c));
  if (ciba_check_unsupported(q) != 0 || ciba_check_client(q) != 0 ||
      ciba_check_hint(q, c) != 0 || ciba_check_scope(q, c) != 0 ||
      ciba_check_binding(q, c) != 0 || ciba_check_expiry(q, c) != 0 ||
      check_resource(q, &c->resource) != 0) {
    return -1;
  }
  return 0;
}

static void ciba_refuse_begin(oreq *q, gw_txn_begin_result r, const char *why,
                              const gw_txn_info *info) {
  const char *w = why && *why ? why : "refused by the sign-in engine";
  char ra[16];

  switch (r) {
  case GW_TXN_BEGIN_LIMITED:
    /* Abuse limits (gw_limits.h): a sign-in already waiting on the phone
     * is a plain refusal; the rate limits say when to come back. */
    if (info->limit == GW_LIMIT_PENDING) {
      refuse(q, 400, "access_denied", w, NULL);
    } else {
      snprintf(ra, sizeof(ra), "%d",
               info->retry_after_s > 0 ? info->retry_after_s : 1);
      gw_resp_header(q->x, "retry-after", ra);
      refuse(q, 429, "slow_down", w, NULL);
    }
    break;
  case GW_TXN_BEGIN_UNKNOWN_USER:
    refuse(q, 400, "unknown_user_id", w, NULL);
    break;
  case GW_TXN_BEGIN_BAD_HINT:
    refuse(q, 400, "invalid_request", w, NULL);
    break;
  case GW_TXN_BEGIN_BAD_MESSAGE:
    refuse(q, 400, "invalid_binding_message", w, NULL);
    break;
  case GW_TXN_BEGIN_UNAVAILABLE:
    refuse(q, 503, "temporarily_unavailable",
           "the user's operator cannot be reached", w);
    break;
  case GW_TXN_BEGIN_INTERNAL:
  default:
    refuse(q, 500, "server_error", "the sign-in could not be started", w);
    break;
  }
}

/* Transaction ids are logged cut to 12 characters, as the engine does:
 * enough to follow one sign-in, not enough to act on it. */
static void ciba_start(oreq *q, const ciba_req *c) {
  gw_txn_start st;
  gw_txn_info info;
  gw_txn_begin_result r;
  const char *why = NULL;
  long long expires_in;

  memset(&st, 0, sizeof(st));
  st.client_id = q->client.row.client_id;
  st.client_name = q->client.row.name;
  st.login_hint = c->hint;
  st.binding_message = c->binding_message;
  st.scope = c->scope;
  st.resource = c->resource ? c->resource : "";
  st.acr = GW_OIDC_ACR;
  st.expiry_s = c->expiry_s;
  st.ciba = 1;
  if (q->client.ciba_ping) { /* the token was checked by ciba_check_client */
    st.ping_endpoint = q->client.row.ciba_notification_endpoint;
    st.ping_token = param(q, "client_notification_token");
  }
  memset(&info, 0, sizeof(info));
  r = gw_txn_begin(q->app->txn, gw_exch_base(q->x), &st, &info, &why);
  if (r != GW_TXN_BEGIN_OK) {
    ciba_refuse_begin(q, r, why, &info);
    return;
  }
  expires_in = (info.expires_ms - info.created_ms + 999) / 1000;
  GW_LOG(GW_LOG_INFO, "ciba request",
         "client_id=%s txn=%.12s operator=%s expires_in=%lld",
         q->client.row.client_id, info.id, info.operator_name, expires_in);
  gw_resp_json(
      q->x, 200,
      json_pack("{s:s, s:I, s:i, s:s}", "auth_req_id", info.auth_req_id,
                "expires_in", (json_int_t)expires_in, "interval",
                info.interval_s > 0 ? info.interval_s
                                    : q->app->cfg->oidc_ciba_interval_s,
                "verification_code", info.verification_code));
}

static void h_bc_authorize(gw_exch *x) {
  oreq q;
  ciba_req c;

  if (oreq_begin(&q, x, "bc-authorize", "resource", NULL) == 0) {
    if (!q.app->txn) {
      refuse(&q, 503, "temporarily_unavailable",
             "the sign-in engine is not running", NULL);
    } else if (ciba_validate(&q, &c) == 0) {
      ciba_start(&q, &c);
    }
  }
  oreq_end(&q);
}

/* ---- minting tokens (on the pool) ------------------------------------- */

typedef struct mint_job {
  gw_exch *x; /* NULL once the client went away */
  gw_app *app;
  gw_txn_info info;
  char client_id[GW_STORE_CLIENT_ID_MAX + 1];
  char ip[64];
  gw_jws_alg at_alg, id_alg;
  /* results, written by the pool thread */
  int consume_rv;
  int sign_rv;
  long long iat;
  char jti[32];
  char aud[URL_MAX];
  gw_buf at, idt;
  /* gw_oidc_mint: no transaction to consume; |fn| gets the tokens */
  char nonce[GW_OIDC_NONCE_MAX + 1];
  gw_oidc_mint_fn fn;
  void *fn_arg;
} mint_job;

static void mint_cancel(void *arg) {
  ((mint_job *)arg)->x = NULL;
}

static int make_jti(char *out, size_t cap) {
  unsigned char r[JTI_BYTES];
  gw_buf b;
  int rv;

  if (RAND_bytes(r, sizeof(r)) != 1) {
    return GW_ERR_INTERNAL;
  }
  gw_buf_init(&b, cap - 1);
  rv = gw_b64url_encode(r, sizeof(r), &b);
  if (rv == GW_OK) {
    memcpy(out, b.data, b.len + 1);
  }
  gw_buf_free(&b);
  return rv;
}

/* RFC 9068 §2.2, in this order. */
static json_t *access_claims(const mint_job *j) {
  const gw_config *cfg = j->app->cfg;
  const gw_txn_info *t = &j->info;

  return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:s, "
                   "s:[s]}",
                   "iss", cfg->oidc_issuer, "sub", t->civil_id, "aud", j->aud,
                   "exp", (json_int_t)(j->iat + cfg->oidc_access_ttl_s), "iat",
                   (json_int_t)j->iat, "jti", j->jti, "client_id", j->client_id,
                   "scope", t->scope, "auth_time",
                   (json_int_t)(t->auth_time ? t->auth_time : j->iat), "acr",
                   t->acr[0] ? t->acr : GW_OIDC_ACR, "amr", "mpki");
}

/* OpenID Connect Core §2, plus CIBA's auth_req_id claim (CIBA Core §10.3.1
 * requires it only in push mode; poll clients may use it to bind the ID
 * token to their request), plus the profile claims when asked for. */
static json_t *id_claims(const mint_job *j) {
  const gw_config *cfg = j->app->cfg;
  const gw_txn_info *t = &j->info;
  json_t *c;

  c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:[s]}", "iss",
                cfg->oidc_issuer, "sub", t->civil_id, "aud", j->client_id,
                "exp", (json_int_t)(j->iat + cfg->oidc_id_ttl_s), "iat",
                (json_int_t)j->iat, "auth_time",
                (json_int_t)(t->auth_time ? t->auth_time : j->iat), "acr",
                t->acr[0] ? t->acr : GW_OIDC_ACR, "amr", "mpki");
  if (c && t->auth_req_id[0]) {
    json_object_set_new(c, AUTH_REQ_ID_CLAIM, json_string(t->auth_req_id));
  }
  if (c && j->nonce[0]) {
    json_object_set_new(c, "nonce", json_string(j->nonce));
  }
  if (c && gw_client_list_has(t->scope, "profile")) {
    json_object_set_new(c, "name", json_string(t->subscriber_name));
    json_object_set_new(c, "phone_number", json_string(t->msisdn));
    json_object_set_new(c, "phone_number_verified", json_true());
  }
  return c;
}

static int mint_sign(mint_job *j) {
  json_t *ac = NULL, *ic = NULL;
  int rv = GW_ERR_NOMEM;

  j->iat = now_s();
  if (j->info.resource[0]) {
    snprintf(j->aud, sizeof(j->aud), "%s", j->info.resource);
  } else {
    endpoint_url(j->app->cfg, "/userinfo", j->aud, sizeof(j->aud));
  }
  rv = make_jti(j->jti, sizeof(j->jti));
  if (rv != GW_OK) {
    goto done;
  }
  ac = access_claims(j);
  ic = id_claims(j);
  if (!ac || !ic) {
    rv = GW_ERR_NOMEM;
    goto done;
  }
  rv = gw_jwt_sign(j->app->signer, j->at_alg, "at+jwt", ac, &j->at);
  if (rv == GW_OK) {
    rv = gw_jwt_sign(j->app->signer, j->id_alg, "JWT", ic, &j->idt);
  }
done:
  json_decref(ac);
  json_decref(ic);
  return rv;
}

/* On a pool thread: single use first, then the (blocking) signatures. */
static void mint_work(void *arg) {
  mint_job *j = arg;

  j->consume_rv = j->fn ? GW_OK : gw_txn_consume(j->app->txn, j->info.id);
  if (j->consume_rv == GW_OK) {
    j->sign_rv = mint_sign(j);
  }
}

static void mint_answer(mint_job *j) {
  const gw_config *cfg = j->app->cfg;
  char qaud[URL_MAX + 16];

  if (j->consume_rv != GW_OK) {
    log_refusal("token", 400, "invalid_grant", j->client_id,
                j->consume_rv == GW_ERR_EXISTS
                    ? "already consumed (a concurrent poll won)"
                    : "the transaction is no longer verified",
                j->ip);
    if (j->x) {
      oauth_error(j->x, 400, "invalid_grant",
                  "tokens were already issued for this auth_req_id, or it "
                  "is no longer valid",
                  NULL);
    }
    return;
  }
  if (j->sign_rv != GW_OK) {
    GW_LOG(GW_LOG_ERROR, "token signing failed",
           "client_id=%s txn=%.12s error=\"%s\"", j->client_id, j->info.id,
           gw_strerror(j->sign_rv));
    if (j->x) {
      oauth_error(j->x, 500, "server_error", "the tokens could not be signed",
                  NULL);
    }
    return;
  }
  GW_LOG(GW_LOG_INFO, "token issued",
         "client_id=%s sub=%s jti=%s aud=%s txn=%.12s delivered=%d",
         j->client_id, j->info.civil_id, j->jti,
         gw_log_quote(qaud, sizeof(qaud), j->aud, strlen(j->aud)), j->info.id,
         j->x != NULL);
  gw_audit_event(j->app->audit, "token.issued", j->info.civil_id,
                 json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "client",
                           j->client_id, "sub", j->info.civil_id, "jti", j->jti,
                           "aud", j->aud, "type", "access", "txn", j->info.id));
  if (j->x) {
    gw_resp_json(j->x, 200,
                 json_pack("{s:s, s:s, s:i, s:s, s:s}", "access_token",
                           j->at.data, "token_type", "Bearer", "expires_in",
                           cfg->oidc_access_ttl_s, "id_token", j->idt.data,
                           "scope", j->info.scope));
  }
}

/* Back on the exchange's loop. */
static void mint_done(void *arg) {
  mint_job *j = arg;

  /* Before answering: the exchange may be gone once it has answered. */
  if (j->x) {
    gw_exch_on_cancel(j->x, NULL, NULL);
  }
  if (j->fn) {
    j->fn(j->fn_arg, j->sign_rv, j->sign_rv == GW_OK ? j->at.data : NULL,
          j->sign_rv == GW_OK ? j->idt.data : NULL, j->jti,
          j->iat + j->app->cfg->oidc_access_ttl_s);
  } else {
    mint_answer(j);
  }
  gw_buf_free(&j->at);
  gw_buf_free(&j->idt);
  free(j);
}

static gw_jws_alg alg_or(const char *name, gw_jws_alg dflt) {
  gw_jws_alg a = name ? gw_jws_alg_parse(name) : GW_JWS_NONE;

  return a == GW_JWS_NONE ? dflt : a;
}

static void mint_start(oreq *q, const gw_txn_info *info) {
  gw_app *app = q->app;
  mint_job *j;
  int rv;

  if (!app->pool || !app->signer) {
    refuse(q, 503, "temporarily_unavailable", "the token keys are not loaded",
           NULL);
    return;
  }
  j = calloc(1, sizeof(*j));
  if (!j) {
    refuse(q, 500, "server_error", "out of memory", NULL);
    return;
  }
  j->x = q->x;
  j->app = app;
  j->info = *info;
  snprintf(j->client_id, sizeof(j->client_id), "%s", q->client.row.client_id);
  snprintf(j->ip, sizeof(j->ip), "%s", gw_exch_req(q->x)->client_ip);
  j->at_alg = alg_or(app->cfg->oidc_signing_alg, GW_JWS_ES256);
  j->id_alg = alg_or(q->client.row.id_token_alg, GW_JWS_ES256);
  gw_buf_init(&j->at, TOKEN_CAP);
  gw_buf_init(&j->idt, TOKEN_CAP);
  gw_exch_on_cancel(q->x, mint_cancel, j);
  rv = gw_async_run(app->pool, gw_exch_base(q->x), mint_work, mint_done, j);
  if (rv != GW_OK) {
    gw_exch_on_cancel(q->x, NULL, NULL);
    free(j);
    /* Nothing was consumed: a full queue is a reason to poll later, which
     * is what slow_down tells a CIBA client. */
    if (rv == GW_ERR_BUSY) {
      refuse(q, 400, "slow_down", "the gateway is busy: poll more slowly",
             "the pool's queue is full");
    } else {
      refuse(q, 500, "server_error", "out of memory", NULL);
    }
  }
}

int gw_oidc_mint(gw_app *app, struct event_base *base, const gw_oidc_grant *g,
                 gw_oidc_mint_fn fn, void *arg) {
  mint_job *j;
  int rv;

  if (!app || !app->cfg || !app->pool || !app->signer) {
    return GW_ERR_STORE;
  }
  if (!base || !g || !fn || !g->client_id || !g->sub) {
    return GW_ERR_INVALID;
  }
  j = calloc(1, sizeof(*j));
  if (!j) {
    return GW_ERR_NOMEM;
  }
  j->app = app;
  j->fn = fn;
  j->fn_arg = arg;
  snprintf(j->client_id, sizeof(j->client_id), "%s", g->client_id);
  snprintf(j->info.civil_id, sizeof(j->info.civil_id), "%s", g->sub);
  snprintf(j->info.msisdn, sizeof(j->info.msisdn), "%s",
           g->msisdn ? g->msisdn : "");
  snprintf(j->info.subscriber_name, sizeof(j->info.subscriber_name), "%s",
           g->name ? g->name : "");
  snprintf(j->info.scope, sizeof(j->info.scope), "%s",
           g->scope ? g->scope : "");
  snprintf(j->info.resource, sizeof(j->info.resource), "%s",
           g->resource ? g->resource : "");
  snprintf(j->info.acr, sizeof(j->info.acr), "%s", g->acr ? g->acr : "");
  snprintf(j->nonce, sizeof(j->nonce), "%s", g->nonce ? g->nonce : "");
  j->info.auth_time = g->auth_time;
  j->at_alg = alg_or(app->cfg->oidc_signing_alg, GW_JWS_ES256);
  j->id_alg = alg_or(g->id_token_alg, GW_JWS_ES256);
  gw_buf_init(&j->at, TOKEN_CAP);
  gw_buf_init(&j->idt, TOKEN_CAP);
  rv = gw_async_run(app->pool, base, mint_work, mint_done, j);
  if (rv != GW_OK) {
    free(j);
  }
  return rv;
}

/* ---- POST /token ------------------------------------------------------- */

/* A pending transaction: slow_down when polled too soon (the engine keeps
 * the previous poll time), authorization_pending otherwise. Polls of a
 * finished transaction are answered at once: being slow then helps no
 * one, and a finished transaction cannot bother a phone any more. */
static void token_pending(oreq *q, const gw_txn_info *t) {
  int r = gw_txn_poll(q->app->txn, t->auth_req_id);

  if (r > 0) {
    refuse(q, 400, "slow_down", "polled before the interval", NULL);
  } else if (r < 0) {
    refuse(q, 400, "invalid_grant", "unknown or expired auth_req_id",
           "forgotten while being polled");
  } else {
    oauth_error(q->x, 400, "authorization_pending",
                "the user has not signed yet", NULL);
  }
}

static void token_by_state(oreq *q, const gw_txn_info *t) {
  char why[320];

  switch (t->state) {
  case GW_TXN_CREATED:
  case GW_TXN_SENT:
  case GW_TXN_SIGNED:
    token_pending(q, t);
    break;
  case GW_TXN_VERIFIED:
    mint_start(q, t);
    break;
  case GW_TXN_FAILED:
    /* The relying party is authenticated and owns the request: it may
     * know the reason, so that it can tell the user what to do. */
    snprintf(why, sizeof(why), "%s: %s", gw_txn_failure_name(t->failure),
             t->detail);
    refuse(q, 400, "access_denied", gw_txn_failure_text(t->failure), why);
    break;
  case GW_TXN_EXPIRED:
    refuse(q, 400, "expired_token", "the auth_req_id has expired", NULL);
    break;
  case GW_TXN_DONE:
  default:
    refuse(q, 400, "invalid_grant",
           "tokens were already issued for this auth_req_id", NULL);
    break;
  }
}

static void token_ciba(oreq *q) {
  const char *id = param(q, "auth_req_id");
  const char *resource;
  gw_txn_info t;

  if (!(q->client.grants & GW_GRANT_CIBA)) {
    refuse(q, 400, "unauthorized_client",
           "this client may not use the CIBA grant", NULL);
    return;
  }
  if (!id) {
    refuse(q, 400, "invalid_request", "auth_req_id is required", NULL);
    return;
  }
  if (!q->app->txn) {
    refuse(q, 503, "temporarily_unavailable",
           "the sign-in engine is not running", NULL);
    return;
  }
  if (gw_txn_get_by_req(q->app->txn, id, &t) != GW_OK) {
    refuse(q, 400, "invalid_grant", "unknown or expired auth_req_id", NULL);
    return;
  }
  /* Before anything else about it: another client learns nothing. */
  if (strcmp(t.client_id, q->client.row.client_id) != 0) {
    refuse(q, 400, "invalid_grant", "unknown or expired auth_req_id",
           "the auth_req_id belongs to another client");
    return;
  }
  if (gw_form_count(&q->form, "resource") > 1) {
    refuse(q, 400, "invalid_target", "at most one resource per request", NULL);
    return;
  }
  resource = param(q, "resource");
  if (resource && strcmp(resource, t.resource) != 0) {
    refuse(q, 400, "invalid_target",
           "the resource differs from the one of the authentication request",
           NULL);
    return;
  }
  token_by_state(q, &t);
}

static void h_token(gw_exch *x) {
  oreq q;
  const char *gt;

  if (oreq_begin(&q, x, "token", "resource", NULL) == 0) {
    gt = param(&q, "grant_type");
    if (!gt) {
      refuse(&q, 400, "invalid_request", "grant_type is required", NULL);
    } else if (strcmp(gt, CIBA_GRANT) == 0) {
      token_ciba(&q);
    } else if (q.app->authz && (strcmp(gt, "authorization_code") == 0 ||
                                strcmp(gt, "refresh_token") == 0)) {
      gw_authz_token(x, &q.client, &q.form, gt); /* gw_authz.c */
    } else {
      refuse(&q, 400, "unsupported_grant_type",
             "the grant types are urn:openid:params:grant-type:ciba, "
             "authorization_code and refresh_token",
             NULL);
    }
  }
  oreq_end(&q);
}

/* ---- checking access tokens ------------------------------------------- */

static const char *claim_str(const json_t *c, const char *key) {
  const json_t *v = json_object_get(c, key);

  return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long claim_int(const json_t *c, const char *key) {
  const json_t *v = json_object_get(c, key);

  return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* The claims of a token we minted: present, of the right types, ours
 * (iss), live (exp), not from the future (iat). */
static const char *claims_problem(const gw_config *cfg, const json_t *c,
                                  const char *aud) {
  const char *iss = claim_str(c, "iss"), *a = claim_str(c, "aud");
  const char *jti = claim_str(c, "jti"), *sub = claim_str(c, "sub");
  long long now = now_s(), exp = claim_int(c, "exp"), iat = claim_int(c, "iat");

  if (!iss || strcmp(iss, cfg->oidc_issuer) != 0) {
    return "iss is not this issuer";
  }
  if (!sub || !*sub || !a || !claim_str(c, "client_id") ||
      !claim_str(c, "scope") || !jti || !*jti || strlen(jti) > 64) {
    return "a required claim is missing";
  }
  if (exp <= now) {
    return "expired";
  }
  if (iat < 0 || iat > now + CLOCK_SKEW_S) {
    return "iat is in the future";
  }
  if (aud && strcmp(a, aud) != 0) {
    return "aud is not this resource";
  }
  return NULL;
}

/* Verifies |token| (signature, claims) and, when |revocation|, looks its
 * jti up. Returns GW_OK, GW_ERR_INVALID or GW_ERR_STORE. */
static int check_token(gw_app *app, const char *token, const char *aud,
                       int revocation, json_t **claims, const char **why) {
  json_t *c = NULL;
  gw_store *st;
  int rv;

  *why = "";
  if (!app || !app->signer || !app->cfg) {
    *why = "the token keys are not loaded";
    return GW_ERR_STORE;
  }
  if (gw_jwt_verify(app->signer, token, strlen(token), "at+jwt", &c, NULL) !=
      GW_OK) {
    *why = "not an access token of this gateway (format, alg, kid, typ or "
           "signature)";
    return GW_ERR_INVALID;
  }
  *why = claims_problem(app->cfg, c, aud);
  if (*why) {
    json_decref(c);
    return GW_ERR_INVALID;
  }
  if (revocation) {
    st = thread_store_get(app->cfg);
    rv = st ? gw_store_revoked_get(st, claim_str(c, "jti")) : GW_ERR_STORE;
    if (rv != GW_ERR_NOT_FOUND) {
      json_decref(c);
      *why = rv == GW_OK ? "revoked" : "the store cannot be read";
      return rv == GW_OK ? GW_ERR_INVALID : GW_ERR_STORE;
    }
  }
  *why = "";
  *claims = c;
  return GW_OK;
}

int gw_oidc_access_token_check(gw_app *app, const char *token, const char *aud,
                               json_t **claims, const char **why) {
  return check_token(app, token, aud, 1, claims, why);
}

/* ---- POST /introspect -------------------------------------------------- */

/* RFC 7662 §2.2: the caller sees a token it was issued, or, as a resource
 * server, one whose audience is one of its resources. */
static int may_introspect(const gw_client *caller, const json_t *c) {
  if (strcmp(claim_str(c, "client_id"), caller->row.client_id) == 0) {
    return 1;
  }
  return caller->row.resource_server &&
         gw_client_list_has(caller->row.resources, claim_str(c, "aud"));
}

static json_t *introspection(const json_t *c) {
  static const char *const keys[] = {"scope", "client_id", "sub", "aud",
                                     "iss",   "exp",       "iat", "jti"};
  json_t *o = json_pack("{s:b}", "active", 1);

  for (size_t i = 0; o && i < sizeof(keys) / sizeof(keys[0]); i++) {
    json_object_set(o, keys[i], json_object_get(c, keys[i]));
  }
  if (o) {
    json_object_set_new(o, "token_type", json_string("Bearer"));
    json_object_set(o, "auth_time", json_object_get(c, "auth_time"));
    json_object_set(o, "acr", json_object_get(c, "acr"));
    json_object_set(o, "amr", json_object_get(c, "amr"));
  }
  return o;
}

static void introspect(oreq *q, const char *token) {
  static const char inactive[] = "{\"active\":false}";
  json_t *c = NULL;
  const char *why;
  int rv;

  if (gw_authz_is_refresh(token)) {
    gw_authz_introspect_refresh(q->x, &q->client, token);
    return;
  }
  rv = check_token(q->app, token, NULL, 1, &c, &why);
  if (rv == GW_ERR_STORE) {
    refuse(q, 503, "temporarily_unavailable",
           "revocation cannot be checked now", why);
    return;
  }
  if (rv == GW_OK && !may_introspect(&q->client, c)) {
    rv = GW_ERR_INVALID;
    why = "a token of another client, not for this resource server";
  }
  if (rv != GW_OK) {
    log_refusal(q->endpoint, 200, "inactive", q->client.row.client_id, why,
                gw_exch_req(q->x)->client_ip);
    json_decref(c);
    gw_resp_send(q->x, 200, "application/json", inactive, sizeof(inactive) - 1);
    return;
  }
  gw_resp_json(q->x, 200, introspection(c));
  json_decref(c);
}

static void h_introspect(gw_exch *x) {
  oreq q;
  const char *token;

  if (oreq_begin(&q, x, "introspect", NULL, "token") == 0) {
    token = param(&q, "token");
    if (!token) {
      refuse(&q, 400, "invalid_request", "token is required", NULL);
    } else {
      introspect(&q, token); /* token_type_hint is ignored (RFC 7662) */
    }
  }
  oreq_end(&q);
}

/* ---- POST /revoke ------------------------------------------------------ */

/* RFC 7009: 200 whether or not there was anything to revoke; a token of
 * another client is left alone and answered 200 all the same, so that
 * revocation tells no one about other clients' tokens. */
static void revoke_token(oreq *q, const char *token) {
  json_t *c = NULL;
  const char *why, *jti;
  gw_store *st;
  int rv;

  if (gw_authz_is_refresh(token)) {
    gw_authz_revoke_refresh(q->x, &q->client, token);
    return;
  }
  rv = check_token(q->app, token, NULL, 0, &c, &why);
  if (rv == GW_OK &&
      strcmp(claim_str(c, "client_id"), q->client.row.client_id) != 0) {
    rv = GW_ERR_INVALID;
    why = "a token of another client";
  }
  if (rv != GW_OK) {
    log_refusal(q->endpoint, 200, "not_revoked", q->client.row.client_id, why,
                gw_exch_req(q->x)->client_ip);
    json_decref(c);
    gw_resp_send(q->x, 200, NULL, NULL, 0);
    return;
  }
  jti = claim_str(c, "jti");
  st = thread_store_get(q->app->cfg);
  rv = st ? gw_store_revoked_put(st, jti, q->client.row.client_id,
                                 claim_int(c, "exp"))
          : GW_ERR_STORE;
  if (rv != GW_OK) {
    refuse(q, 503, "temporarily_unavailable", "the token cannot be revoked now",
           st ? gw_store_errmsg(st) : "no store");
  } else {
    gw_audit_event(q->app->audit, "token.revoked", jti ? jti : "",
                   json_pack("{s:s, s:s?}", "client", q->client.row.client_id,
                             "jti", jti));
    GW_LOG(GW_LOG_INFO, "token revoked", "client_id=%s sub=%s jti=%s",
           q->client.row.client_id, claim_str(c, "sub"), jti);
    gw_resp_send(q->x, 200, NULL, NULL, 0);
  }
  json_decref(c);
}

static void h_revoke(gw_exch *x) {
  oreq q;
  const char *token;

  if (oreq_begin(&q, x, "revoke", NULL, "token") == 0) {
    token = param(&q, "token");
    if (!token) {
      refuse(&q, 400, "invalid_request", "token is required", NULL);
    } else {
      revoke_token(&q, token); /* token_type_hint is ignored (RFC 7009 §2.1) */
    }
  }
  oreq_end(&q);
}

/* ---- GET|POST /userinfo ----------------------------------------------- */

/* RFC 6750 §3: the challenge of a refused bearer token. */
static void bearer_refuse(oreq *q, int status, const char *error,
                          const char *desc, const char *why) {
  char hdr[256];

  if (error) {
    snprintf(hdr, sizeof(hdr),
             "Bearer realm=\"" REALM "\", error=\"%s\", "
             "error_description=\"%s\"%s",
             error, desc,
             strcmp(error, "insufficient_scope") == 0 ? ", scope=\"openid\""
                                                      : "");
  } else {
    snprintf(hdr, sizeof(hdr), "Bearer realm=\"" REALM "\"");
  }
  gw_resp_header(q->x, "www-authenticate", hdr);
  log_refusal(q->endpoint, status, error ? error : "invalid_token", "-",
              why ? why : desc, gw_exch_req(q->x)->client_ip);
  gw_resp_json(q->x, status,
               json_pack("{s:s, s:s}", "error", error ? error : "invalid_token",
                         "error_description", desc));
}

/* The Bearer token of the Authorization header (scheme case-insensitive,
 * RFC 6750 §2.1), or NULL. */
static const char *bearer_token(const gw_req *r) {
  const char *h = gw_req_header(r, "authorization");

  if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
    return NULL;
  }
  h += 7;
  h += strspn(h, " ");
  return *h ? h : NULL;
}

typedef struct profile {
  char name[GW_STORE_NAME_MAX + 1];
  char msisdn[GW_STORE_MSISDN_MAX + 1];
  long long best; /* last_signed_at of the row taken, -1 = none */
  int active;
} profile;

/* The SIM of the person that signed last, as gw_txn_begin chooses it:
 * active SIMs first. */
static int profile_row(const gw_store_sub *s, void *arg) {
  profile *p = arg;
  int active = !s->revoked;

  if (p->best < 0 || active > p->active ||
      (active == p->active && s->last_signed_at > p->best)) {
    snprintf(p->name, sizeof(p->name), "%s", s->name);
    snprintf(p->msisdn, sizeof(p->msisdn), "%s", s->msisdn);
    p->best = s->last_signed_at;
    p->active = active;
  }
  return GW_OK;
}

static json_t *userinfo(gw_app *app, const json_t *c) {
  const char *sub = claim_str(c, "sub");
  json_t *o = json_pack("{s:s}", "sub", sub);
  profile p;
  gw_store *st;

  if (!o || !gw_client_list_has(claim_str(c, "scope"), "profile")) {
    return o;
  }
  memset(&p, 0, sizeof(p));
  p.best = -1;
  st = thread_store_get(app->cfg);
  if (!st || gw_store_sub_list(st, sub, profile_row, &p) != GW_OK) {
    json_decref(o);
    return NULL;
  }
  if (p.best >= 0) {
    json_object_set_new(o, "name", json_string(p.name));
  }
  if (p.best >= 0 && p.active) {
    json_object_set_new(o, "phone_number", json_string(p.msisdn));
    json_object_set_new(o, "phone_number_verified", json_true());
  }
  return o;
}

static void h_userinfo(gw_exch *x) {
  oreq q;
  char url[URL_MAX];
  const char *token, *why;
  json_t *c = NULL, *o;
  int rv;

  memset(&q, 0, sizeof(q));
  q.x = x;
  q.app = gw_exch_app(x);
  q.endpoint = "userinfo";
  if (!q.app || !q.app->cfg || !q.app->cfg->oidc_issuer) {
    refuse(&q, 503, "temporarily_unavailable",
           "the OpenID provider is not running", NULL);
    return;
  }
  token = bearer_token(gw_exch_req(x));
  if (!token) {
    bearer_refuse(&q, 401, NULL, "a bearer access token is required", NULL);
    return;
  }
  endpoint_url(q.app->cfg, "/userinfo", url, sizeof(url));
  rv = check_token(q.app, token, url, 1, &c, &why);
  if (rv == GW_ERR_STORE) {
    refuse(&q, 503, "temporarily_unavailable",
           "the token cannot be checked now", why);
    return;
  }
  if (rv != GW_OK) {
    bearer_refuse(&q, 401, "invalid_token",
                  "the access token is invalid, expired, revoked or not for "
                  "this endpoint",
                  why);
    return;
  }
  if (!gw_client_list_has(claim_str(c, "scope"), "openid")) {
    bearer_refuse(&q, 403, "insufficient_scope", "the scope lacks openid",
                  NULL);
  } else if ((o = userinfo(q.app, c)) == NULL) {
    refuse(&q, 503, "temporarily_unavailable",
           "the user's profile cannot be read now", NULL);
  } else {
    gw_resp_json(x, 200, o);
  }
  json_decref(c);
}

/* ---- routes ------------------------------------------------------------ */

int gw_oidc_register(gw_router *r) {
  static const struct {
    const char *method, *pattern;
    gw_handler_fn fn;
    size_t max_body;
    const char *name;
  } routes[] = {
      {"GET", "/.well-known/openid-configuration", h_discovery, 0,
       "oidc_discovery"},
      {"GET", "/jwks.json", h_jwks, 0, "oidc_jwks"},
      {"POST", "/bc-authorize", h_bc_authorize, GW_OIDC_FORM_MAX,
       "oidc_bc_authorize"},
      {"POST", "/token", h_token, GW_OIDC_FORM_MAX, "oidc_token"},
      {"POST", "/introspect", h_introspect, GW_OIDC_FORM_MAX,
       "oidc_introspect"},
      {"POST", "/revoke", h_revoke, GW_OIDC_FORM_MAX, "oidc_revoke"},
      {"GET", "/userinfo", h_userinfo, 0, "oidc_userinfo"},
      {"POST", "/userinfo", h_userinfo, GW_OIDC_FORM_MAX, "oidc_userinfo"},
  };
  int rv = GW_OK;

  for (size_t i = 0; rv == GW_OK && i < sizeof(routes) / sizeof(routes[0]);
       i++) {
    rv = gw_router_add(r, routes[i].method, routes[i].pattern, routes[i].fn,
                       routes[i].max_body, routes[i].name);
  }
  return rv;
}
