/* gw_authz_test.c — the browser and native flows (gateway/gw_authz.c) on
 * an in-process server with the real engine driving the real Omantel mock
 * over a private PKI (as gw_oidc_test.c): /authorize and its refusals, the
 * login page's headers, the native API from the page (cookie, Origin,
 * JSON, CSRF) through real sign-ins to codes, the code grant with PKCE,
 * replay, refresh rotation and reuse, session rotation, the long poll,
 * cancellation, unknown numbers, logout, native clients and 409.
 *
 * Prints "# skip" and passes when $BUILD/mssp-mock or $BUILD/mpkictl are
 * not built. Run from the repository root. Each test runs in a child. */
#include "gw_authz.h"

#include <curl/curl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw_app.h"
#include "gw_client.h"
#include "gw_config.h"
#include "gw_err.h"
#include "gw_jose.h"
#include "gw_log.h"
#include "gw_oidc.h"
#include "gw_store.h"
#include "gw_txn.h"
#include "harness.h"
#include "mss_soap.h"
#include "op_adapter.h"
#include "p11.h"
#include "support/t_child.h"
#include "support/t_curl.h"
#include "support/t_demo.h"
#include "support/t_server.h"

#define AP_ID "http://mpkigw.test/ap"
#define AP_PWD "gw-test-secret-4711"
#define ISSUER "https://op.test"
#define CB "https://rp.test/cb"
#define SECRET_WEB "web-rp-secret-0123456789abcdef-0123456789ab"
#define SECRET_NAT "native-secret-0123456789abcdef-0123456789ab"
#define AS_WEB "client_id=web-rp&client_secret=" SECRET_WEB
#define VERIFIER "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-verifier"

static char dir[PATH_MAX], build[PATH_MAX];
static char gwconf[PATH_MAX + 32], clients_conf[PATH_MAX + 32];
static int mock_port;
static pid_t mock_pid, parent;
static char *es_pem, *rs_pem;
static char challenge[64];

static const char SIMS[] =
    "msisdn,civil_id,name,operator,pin,puk,behaviour\n"
    "+96899000001,10000001,Salim Al-Harthy,omantel,,,approve:200\n"
    "+96899000003,10000003,Khalid Al-Rawahi,omantel,,,no_answer\n"
    "+96899000007,10000007,Two Phones,omantel,,,approve:200\n"
    "+96899000008,10000007,Two Phones,omantel,,,approve:200\n";

static const char CLIENTS[] =
    "clients = (\n"
    "  { client_id = \"web-rp\"; name = \"Web RP\";\n"
    "    secret = \"" SECRET_WEB "\";\n"
    "    grant_types = [\"authorization_code\", \"refresh_token\"];\n"
    "    scopes = [\"openid\", \"profile\"];\n"
    "    redirect_uris = [\"" CB "\"]; },\n"
    "  { client_id = \"native\"; name = \"Native app\";\n"
    "    secret = \"" SECRET_NAT "\";\n"
    "    grant_types = [\"urn:openid:params:grant-type:ciba\"];\n"
    "    scopes = [\"openid\"]; ciba_mode = \"poll\"; }\n"
    ");\n";

static void cleanup(void) {
  if (getpid() != parent) {
    return;
  }
  t_mock_stop(&mock_pid);
  if (dir[0]) {
    t_sh("rm -rf '%s'", dir);
  }
}

static char *pem_of(EVP_PKEY *k) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p = NULL, *s = NULL;
  long n;

  if (b && k && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) {
    n = BIO_get_mem_data(b, &p);
    s = strndup(p, (size_t)n);
  }
  BIO_free(b);
  EVP_PKEY_free(k);
  return s;
}

static int make_stack(void) {
  unsigned char h[32];
  gw_buf b;

  SHA256((const unsigned char *)VERIFIER, strlen(VERIFIER), h);
  gw_buf_init(&b, 64);
  gw_b64url_encode(h, 32, &b);
  snprintf(challenge, sizeof(challenge), "%s", b.data);
  gw_buf_free(&b);
  snprintf(gwconf, sizeof(gwconf), "%s/mpkigw.conf", dir);
  snprintf(clients_conf, sizeof(clients_conf), "%s/clients.conf", dir);
  es_pem = pem_of(EVP_EC_gen("P-256"));
  rs_pem = pem_of(EVP_RSA_gen(2048));
  if (!es_pem || !rs_pem || t_write_text(clients_conf, CLIENTS) != 0 ||
      t_demo_pki(dir, build, SIMS, AP_ID, AP_PWD) != 0) {
    t_sh("tail -n 5 '%s/ctl.log' | sed 's/^/# /'", dir);
    return -1;
  }
  return t_mock_start(dir, build,
                      "transactions: { default_timeout_s = 60; "
                      "keep_done_s = 60; };\n"
                      "control: { enabled = true; };\n"
                      "server: { shutdown_grace_ms = 500; };",
                      &mock_port, &mock_pid);
}

typedef struct env {
  gw_config *cfg;
  gw_store *st;
  gw_app app;
  ts_server srv;
  int srv_up;
  char logpath[PATH_MAX + 64];
} env;

static void set_str(char **p, const char *v) {
  free(*p);
  *p = strdup(v);
}

static int routes(gw_router *r) {
  int rv = gw_oidc_register(r);

  return rv ? rv : gw_authz_register(r);
}

static int env_up(env *e) {
  char err[512] = "", url[128];
  gw_config *c;

  memset(e, 0, sizeof(*e));
  snprintf(e->logpath, sizeof(e->logpath), "%s/authz-%d.log", dir,
           (int)getpid());
  gw_log_open(e->logpath, GW_LOG_INFO);
  if (gw_config_load(&e->cfg, gwconf, err, sizeof(err)) != GW_OK) {
    printf("# env: %s\n", err);
    return -1;
  }
  c = e->cfg;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/soap/services", mock_port);
  set_str(&c->op_omantel.url, url);
  c->op_omantel.poll_first_ms = 50;
  c->op_omantel.poll_interval_ms = 50;
  set_str(&c->oidc_issuer, ISSUER);
  c->oidc_ciba_expiry_s = 10;
  e->app.cfg = c;
  if (gw_store_open(&e->st, c->store_backend, c->store_path,
                    c->store_busy_timeout_ms, err, sizeof(err)) != GW_OK ||
      gw_clients_seed(e->st, clients_conf, 0, 0, NULL, err, sizeof(err)) !=
          GW_OK ||
      gw_clients_new(&e->app.clients, e->st, err, sizeof(err)) != GW_OK ||
      gw_signer_new_pem(&e->app.signer, es_pem, rs_pem, err, sizeof(err)) !=
          GW_OK ||
      op_registry_new(&e->app.operators, c, err, sizeof(err)) != GW_OK ||
      p11_pool_new(&e->app.pool, 2, 1000) != P11_OK ||
      gw_txn_engine_new(&e->app.txn, c, e->app.operators, e->app.pool, err,
                        sizeof(err)) != GW_OK ||
      gw_authz_new(&e->app.authz, c) != GW_OK) {
    printf("# env: %s\n", err);
    return -1;
  }
  e->app.store = e->st;
  if (ts_start_app(&e->srv, 2, NULL, routes, &e->app) != 0) {
    return -1;
  }
  e->srv_up = 1;
  return 0;
}

static void env_down(env *e) {
  if (e->srv_up) {
    ts_stop(&e->srv);
  }
  p11_pool_del(e->app.pool);
  gw_txn_engine_del(e->app.txn);
  gw_authz_del(e->app.authz);
  op_registry_del(e->app.operators);
  gw_clients_del(e->app.clients);
  gw_signer_del(e->app.signer);
  gw_store_close(e->st);
  gw_config_del(e->cfg);
  gw_log_close();
}

/* ---- requests ---------------------------------------------------------- */

typedef struct page {
  char cookie[64];
  char csrf[64];
} page;

static void req(t_resp *r, env *e, const char *method, const char *path,
                const char *ctype, const char *body, const char *const *hdrs) {
  char ct[128];
  t_reqopt o;
  int n = 0;

  memset(&o, 0, sizeof(o));
  o.method = method;
  o.timeout_ms = 30000;
  if (body) {
    o.body = body;
    o.blen = (long)strlen(body);
  }
  if (ctype) {
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    o.headers[n++] = ct;
  }
  for (; hdrs && *hdrs && n < 30; hdrs++) {
    o.headers[n++] = *hdrs;
  }
  t_do_req(r, &e->srv, CURL_HTTP_VERSION_2TLS, path, &o);
}

/* A request from the login page |p|: cookie, Origin, CSRF. */
static void page_req(t_resp *r, env *e, const page *p, const char *method,
                     const char *path, const char *json, int csrf) {
  char ck[128], org[64], tok[96];
  const char *h[4] = {ck, org, csrf ? tok : NULL, NULL};

  snprintf(ck, sizeof(ck), "Cookie: " GW_AUTHZ_COOKIE "=%s", p->cookie);
  snprintf(org, sizeof(org), "Origin: https://127.0.0.1:%d", e->srv.port);
  snprintf(tok, sizeof(tok), "X-CSRF-Token: %s", p->csrf);
  req(r, e, method, path, json ? "application/json" : NULL, json, h);
}

static void form(t_resp *r, env *e, const char *path, const char *body) {
  req(r, e, "POST", path, "application/x-www-form-urlencoded", body, NULL);
}

static int cookie_of(const t_resp *r, char *out, size_t cap) {
  const char *v = t_resp_hdr(r, "set-cookie");
  size_t n;

  if (!v || strncmp(v, GW_AUTHZ_COOKIE "=", sizeof(GW_AUTHZ_COOKIE)) != 0) {
    return -1;
  }
  v += sizeof(GW_AUTHZ_COOKIE);
  n = strcspn(v, ";");
  if (n >= cap) {
    return -1;
  }
  memcpy(out, v, n);
  out[n] = '\0';
  return 0;
}

static const char *jstr(const json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

static char authz_qs[1024];

static const char *authorize_path(const char *extra) {
  snprintf(authz_qs, sizeof(authz_qs),
           "/authorize?client_id=web-rp&redirect_uri=" CB
           "&response_type=code&scope=openid%%20profile&state=st-42"
           "&nonce=n-123&code_challenge=%s&code_challenge_method=S256%s",
           challenge, extra ? extra : "");
  return authz_qs;
}

/* GET /authorize: the page's cookie and CSRF token. */
static int open_page(env *e, page *p, t_resp *keep) {
  t_resp r;
  const char *c;

  req(&r, e, "GET", authorize_path("&ui_locales=en"), NULL, NULL, NULL);
  c = strstr(r.body, "data-csrf=\"");
  if (r.status != 200 || cookie_of(&r, p->cookie, sizeof(p->cookie)) != 0 ||
      !c) {
    printf("#   authorize: %ld %.200s\n", r.status, r.body);
    t_resp_free(&r);
    return -1;
  }
  c += 11;
  snprintf(p->csrf, sizeof(p->csrf), "%.*s", (int)strcspn(c, "\""), c);
  if (keep) {
    *keep = r;
  } else {
    t_resp_free(&r);
  }
  return 0;
}

static int start_auth(env *e, page *p, const char *json, char *id, size_t cap) {
  t_resp r;
  int ok;

  page_req(&r, e, p, "POST", "/api/v1/auth", json, 1);
  ok = r.status == 200 && jstr(r.json, "auth_id") &&
       jstr(r.json, "verification_code");
  if (ok) {
    snprintf(id, cap, "%s", jstr(r.json, "auth_id"));
  } else {
    printf("#   start: %ld %.200s\n", r.status, r.body);
  }
  t_resp_free(&r);
  return ok ? 0 : -1;
}

/* Polls until COMPLETE; returns the result (static) or "". */
static const char *wait_result(env *e, page *p, const char *id) {
  static char res[64];
  char path[256];
  t_resp r;

  res[0] = '\0';
  snprintf(path, sizeof(path), "/api/v1/auth/%s?timeout_ms=20000", id);
  for (int i = 0; i < 5 && !res[0]; i++) {
    page_req(&r, e, p, "GET", path, NULL, 1);
    if (r.status == 200 && strcmp(jstr(r.json, "state"), "COMPLETE") == 0) {
      snprintf(res, sizeof(res), "%s", jstr(r.json, "result"));
      if (json_object_get(r.json, "sub") || json_object_get(r.json, "msisdn")) {
        snprintf(res, sizeof(res), "identity-leaked");
      }
    } else if (r.status != 200) {
      printf("#   poll: %ld %.200s\n", r.status, r.body);
      t_resp_free(&r);
      break;
    }
    t_resp_free(&r);
  }
  return res;
}

/* A whole sign-in of +96899000001 from the page: the code. */
static int sign_in(env *e, page *p, char *code, size_t cap) {
  char id[64], old[64];
  const char *loc, *c;
  t_resp r;

  if (open_page(e, p, NULL) != 0 ||
      start_auth(e, p, "{\"msisdn\":\"+96899000001\",\"lang\":\"en\"}", id,
                 sizeof(id)) != 0 ||
      strcmp(wait_result(e, p, id), "ok") != 0) {
    return -1;
  }
  snprintf(old, sizeof(old), "%s", p->cookie);
  {
    char body[128];
    snprintf(body, sizeof(body), "{\"auth_id\":\"%s\"}", id);
    page_req(&r, e, p, "POST", "/authorize/finish", body, 1);
  }
  loc = jstr(r.json, "redirect");
  c = loc ? strstr(loc, "code=") : NULL;
  if (r.status != 200 || !c || strncmp(loc, CB "?", strlen(CB) + 1) != 0 ||
      !strstr(loc, "state=st-42") ||
      !strstr(loc, "iss=https%3A%2F%2Fop.test") ||
      cookie_of(&r, p->cookie, sizeof(p->cookie)) != 0 ||
      strcmp(old, p->cookie) == 0) {
    printf("#   finish: %ld %.300s\n", r.status, r.body);
    t_resp_free(&r);
    return -1;
  }
  c += 5;
  snprintf(code, cap, "%.*s", (int)strcspn(c, "&"), c);
  t_resp_free(&r);
  return 0;
}

static void exchange(t_resp *r, env *e, const char *code, const char *ver) {
  char body[512];

  snprintf(body, sizeof(body),
           AS_WEB "&grant_type=authorization_code&code=%s&redirect_uri=" CB
                  "&code_verifier=%s",
           code, ver);
  form(r, e, "/token", body);
}

static void refresh(t_resp *r, env *e, const char *rt) {
  char body[512];

  snprintf(body, sizeof(body),
           AS_WEB "&grant_type=refresh_token&refresh_token=%s", rt);
  form(r, e, "/token", body);
}

static int active(env *e, const char *tok) {
  char body[8192];
  t_resp r;
  int a;

  snprintf(body, sizeof(body), AS_WEB "&token=%s", tok);
  form(&r, e, "/introspect", body);
  a = r.status == 200 && json_is_true(json_object_get(r.json, "active"));
  t_resp_free(&r);
  return a;
}

static int is_grant_err(const t_resp *r, const char *code) {
  const char *g = jstr(r->json, "error");

  if (r->status != 400 || !g || strcmp(g, code) != 0) {
    printf("#   expected 400 %s, got %ld %.200s\n", code, r->status, r->body);
    return 0;
  }
  return 1;
}

static json_t *jwt_payload(const char *jwt) {
  unsigned char buf[8192];
  const char *s = strchr(jwt, '.'), *dot = s ? strchr(s + 1, '.') : NULL;
  size_t n;

  if (!dot || gw_b64url_decode(s + 1, (size_t)(dot - s - 1), buf,
                               sizeof(buf) - 1, &n) != GW_OK) {
    return NULL;
  }
  return json_loadb((const char *)buf, n, 0, NULL);
}

static long long ms_now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tests ------------------------------------------------------------- */

/* The page, its cookie and headers; the refusals of /authorize. */
static void t_authorize(void) {
  env e;
  page p;
  t_resp r;
  const char *sc, *csp, *loc;

  T_ASSERT(env_up(&e) == 0);
  T_ASSERT(open_page(&e, &p, &r) == 0);
  sc = t_resp_hdr(&r, "set-cookie");
  T_ASSERT(sc && strstr(sc, "; Secure") && strstr(sc, "; HttpOnly") &&
           strstr(sc, "; SameSite=Lax") && strstr(sc, "; Path=/") &&
           !strstr(sc, "Domain"));
  T_EQ_INT(strlen(p.cookie), 43);
  csp = t_resp_hdr(&r, "content-security-policy");
  T_ASSERT(csp && strstr(csp, "frame-ancestors 'none'") &&
           strstr(csp, "script-src 'nonce-"));
  T_ASSERT(strstr(r.body, "<html lang=\"en\" dir=\"ltr\">") &&
           strstr(r.body, "id=\"login-hint\"") &&
           strstr(r.body, "id=\"start\"") &&
           strstr(r.body, "id=\"verification-code\"") &&
           strstr(r.body, "id=\"status\"") && strstr(r.body, "id=\"error\"") &&
           strstr(r.body, "Web RP") && !strstr(r.body, " src=") &&
           !strstr(r.body, "<link") && !strstr(r.body, "url("));
  t_resp_free(&r);
  /* Arabic, right to left, by default */
  req(&r, &e, "GET", authorize_path(NULL), NULL, NULL, NULL);
  T_ASSERT(r.status == 200 && strstr(r.body, "<html lang=\"ar\" dir=\"rtl\">"));
  t_resp_free(&r);
  /* acr_values: our one level is accepted, another one refused */
  req(&r, &e, "GET",
      authorize_path("&acr_values=urn%3Ampkigw%3Aacr%3Amobile-pki"), NULL, NULL,
      NULL);
  T_EQ_INT((int)r.status, 200);
  t_resp_free(&r);
  req(&r, &e, "GET", authorize_path("&acr_values=urn%3Aother%3Aloa2"), NULL,
      NULL, NULL);
  T_ASSERT(r.status == 302 && t_resp_hdr(&r, "location") &&
           strstr(t_resp_hdr(&r, "location"), "error=invalid_request"));
  t_resp_free(&r);
  /* a redirect URI not registered exactly: a page, never a redirect */
  req(&r, &e, "GET",
      "/authorize?client_id=web-rp&redirect_uri=https://rp.test/cb/x"
      "&response_type=code&scope=openid",
      NULL, NULL, NULL);
  T_ASSERT(r.status == 400 && !t_resp_hdr(&r, "location") &&
           strstr(r.body, "<html"));
  t_resp_free(&r);
  req(&r, &e, "GET",
      "/authorize?client_id=nobody&redirect_uri=" CB
      "&response_type=code&scope=openid",
      NULL, NULL, NULL);
  T_ASSERT(r.status == 400 && !t_resp_hdr(&r, "location"));
  t_resp_free(&r);
  /* no PKCE: back to the client with the error and state */
  req(&r, &e, "GET",
      "/authorize?client_id=web-rp&redirect_uri=" CB
      "&response_type=code&scope=openid&state=abc",
      NULL, NULL, NULL);
  loc = t_resp_hdr(&r, "location");
  T_ASSERT(r.status == 302 && loc &&
           strncmp(loc, CB "?", strlen(CB) + 1) == 0 &&
           strstr(loc, "error=invalid_request") && strstr(loc, "state=abc"));
  t_resp_free(&r);
  req(&r, &e, "GET",
      "/authorize?client_id=web-rp&redirect_uri=" CB
      "&response_type=code&scope=openid&code_challenge_method=plain"
      "&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabc",
      NULL, NULL, NULL);
  loc = t_resp_hdr(&r, "location");
  T_ASSERT(r.status == 302 && loc && strstr(loc, "error=invalid_request"));
  t_resp_free(&r);
  req(&r, &e, "GET",
      "/authorize?client_id=web-rp&redirect_uri=" CB
      "&response_type=token&scope=openid",
      NULL, NULL, NULL);
  loc = t_resp_hdr(&r, "location");
  T_ASSERT(r.status == 302 && loc &&
           strstr(loc, "error=unsupported_response_type"));
  t_resp_free(&r);
  env_down(&e);
}

/* The code flow end to end: code, PKCE, nonce, replay. */
static void t_code_flow(void) {
  env e;
  page p;
  t_resp r;
  char code[128], at[4096], rt[128];
  json_t *idt;

  T_ASSERT(env_up(&e) == 0);
  T_ASSERT(sign_in(&e, &p, code, sizeof(code)) == 0);
  exchange(&r, &e, code, "wrong-verifier-wrong-verifier-wrong-verifier-0");
  T_ASSERT(is_grant_err(&r, "invalid_grant"));
  t_resp_free(&r);
  exchange(&r, &e, code, VERIFIER);
  T_ASSERT(r.status == 200 && jstr(r.json, "access_token") &&
           jstr(r.json, "id_token") && jstr(r.json, "refresh_token"));
  if (r.status != 200) {
    printf("#   %.300s\n", r.body);
    t_resp_free(&r);
    env_down(&e);
    return;
  }
  snprintf(at, sizeof(at), "%s", jstr(r.json, "access_token"));
  snprintf(rt, sizeof(rt), "%s", jstr(r.json, "refresh_token"));
  idt = jwt_payload(jstr(r.json, "id_token"));
  T_ASSERT(idt && jstr(idt, "nonce") &&
           strcmp(jstr(idt, "nonce"), "n-123") == 0 &&
           strcmp(jstr(idt, "sub"), "10000001") == 0 &&
           strcmp(jstr(idt, "aud"), "web-rp") == 0);
  json_decref(idt);
  t_resp_free(&r);
  T_EQ_INT(active(&e, at), 1);
  T_EQ_INT(active(&e, rt), 1);
  /* a replay: refused, and what the code issued is revoked */
  exchange(&r, &e, code, VERIFIER);
  T_ASSERT(is_grant_err(&r, "invalid_grant"));
  t_resp_free(&r);
  T_EQ_INT(active(&e, at), 0);
  T_EQ_INT(active(&e, rt), 0);
  env_down(&e);
}

/* Rotation, and the reuse of a used refresh token revokes the family. */
static void t_refresh(void) {
  env e;
  page p;
  t_resp r;
  char code[128], rt1[128], rt2[128];

  T_ASSERT(env_up(&e) == 0);
  T_ASSERT(sign_in(&e, &p, code, sizeof(code)) == 0);
  exchange(&r, &e, code, VERIFIER);
  T_ASSERT(r.status == 200 && jstr(r.json, "refresh_token"));
  snprintf(rt1, sizeof(rt1), "%s", jstr(r.json, "refresh_token"));
  t_resp_free(&r);
  refresh(&r, &e, rt1);
  T_ASSERT(r.status == 200 && jstr(r.json, "refresh_token") &&
           jstr(r.json, "access_token"));
  snprintf(rt2, sizeof(rt2), "%s",
           jstr(r.json, "refresh_token") ? jstr(r.json, "refresh_token") : "");
  t_resp_free(&r);
  T_ASSERT(strcmp(rt1, rt2) != 0);
  T_EQ_INT(active(&e, rt1), 0);
  T_EQ_INT(active(&e, rt2), 1);
  refresh(&r, &e, rt1); /* reuse */
  T_ASSERT(is_grant_err(&r, "invalid_grant"));
  t_resp_free(&r);
  refresh(&r, &e, rt2); /* the family is gone */
  T_ASSERT(is_grant_err(&r, "invalid_grant"));
  t_resp_free(&r);
  env_down(&e);
}

/* Who may call the API: CSRF, other sessions, unbound callers; results
 * carry no identity; long polls wake on change. */
static void t_api_binding(void) {
  env e;
  page p, q;
  t_resp r;
  char id[64], path[256];
  const char *junk[] = {NULL};
  long long t0;

  T_ASSERT(env_up(&e) == 0);
  T_ASSERT(open_page(&e, &p, NULL) == 0 && open_page(&e, &q, NULL) == 0);
  /* unbound: 401 before the (invalid) body is parsed */
  req(&r, &e, "POST", "/api/v1/auth", "application/json", "{not json", junk);
  T_ASSERT(r.status == 401);
  t_resp_free(&r);
  /* no CSRF token */
  page_req(&r, &e, &p, "POST", "/api/v1/auth", "{\"msisdn\":\"+96899000001\"}",
           0);
  T_ASSERT(r.status == 403);
  t_resp_free(&r);
  /* a foreign Origin */
  {
    char ck[128], tok[96];
    const char *h[] = {ck, tok, "Origin: https://evil.test", NULL};
    snprintf(ck, sizeof(ck), "Cookie: " GW_AUTHZ_COOKIE "=%s", p.cookie);
    snprintf(tok, sizeof(tok), "X-CSRF-Token: %s", p.csrf);
    req(&r, &e, "POST", "/api/v1/auth", "application/json",
        "{\"msisdn\":\"+96899000001\"}", h);
    T_ASSERT(r.status == 403);
    t_resp_free(&r);
  }
  T_ASSERT(
      start_auth(&e, &p, "{\"msisdn\":\"+96899000001\"}", id, sizeof(id)) == 0);
  /* another session cannot see it */
  snprintf(path, sizeof(path), "/api/v1/auth/%s", id);
  page_req(&r, &e, &q, "GET", path, NULL, 1);
  T_ASSERT(r.status == 404 || r.status == 403);
  t_resp_free(&r);
  /* the long poll wakes when the sign-in completes (~0.3 s) */
  snprintf(path, sizeof(path), "/api/v1/auth/%s?timeout_ms=20000", id);
  t0 = ms_now();
  page_req(&r, &e, &p, "GET", path, NULL, 1);
  T_ASSERT(r.status == 200);
  if (strcmp(jstr(r.json, "state"), "RUNNING") == 0) {
    t_resp_free(&r);
    page_req(&r, &e, &p, "GET", path, NULL, 1);
  }
  T_ASSERT(ms_now() - t0 < 5000);
  T_ASSERT(strcmp(jstr(r.json, "state"), "COMPLETE") == 0 &&
           strcmp(jstr(r.json, "result"), "ok") == 0 &&
           !json_object_get(r.json, "sub") &&
           !json_object_get(r.json, "msisdn"));
  t_resp_free(&r);
  env_down(&e);
}

/* DELETE cancels; an unknown number looks like a sign-in that does not
 * complete. */
static void t_cancel_unknown(void) {
  env e;
  page p;
  t_resp r;
  char id[64], path[256];
  long long t0;

  T_ASSERT(env_up(&e) == 0);
  T_ASSERT(open_page(&e, &p, NULL) == 0);
  T_ASSERT(
      start_auth(&e, &p, "{\"msisdn\":\"+96899000003\"}", id, sizeof(id)) == 0);
  snprintf(path, sizeof(path), "/api/v1/auth/%s", id);
  page_req(&r, &e, &p, "DELETE", path, NULL, 1);
  T_EQ_INT(r.status, 204);
  t_resp_free(&r);
  T_EQ_STR(wait_result(&e, &p, id), "cancelled");
  /* unknown: a code, RUNNING until the expiry (10 s here) */
  page_req(&r, &e, &p, "POST", "/api/v1/auth", "{\"msisdn\":\"+96899009999\"}",
           1);
  T_ASSERT(r.status == 200 && jstr(r.json, "verification_code") &&
           strlen(jstr(r.json, "verification_code")) == 4 &&
           json_integer_value(json_object_get(r.json, "expires_in")) == 10);
  snprintf(id, sizeof(id), "%s",
           jstr(r.json, "auth_id") ? jstr(r.json, "auth_id") : "");
  t_resp_free(&r);
  snprintf(path, sizeof(path), "/api/v1/auth/%s?timeout_ms=500", id);
  t0 = ms_now();
  page_req(&r, &e, &p, "GET", path, NULL, 1);
  T_ASSERT(r.status == 200 && strcmp(jstr(r.json, "state"), "RUNNING") == 0 &&
           ms_now() - t0 >= 450);
  t_resp_free(&r);
  T_EQ_STR(wait_result(&e, &p, id), "not_completed");
  env_down(&e);
}

/* Push flooding one phone from the login page: a second start while one
 * waits is refused (409); starts from one address are capped (429 with
 * Retry-After) — and an unknown number costs the same start. */
static void t_flood(void) {
  env e;
  page p, q;
  t_resp r;
  char id[64];
  int n429 = 0;

  T_ASSERT(env_up(&e) == 0);
  T_ASSERT(open_page(&e, &p, NULL) == 0);
  T_ASSERT(open_page(&e, &q, NULL) == 0); /* a stranger's browser */
  T_ASSERT(
      start_auth(&e, &p, "{\"msisdn\":\"+96899000003\"}", id, sizeof(id)) == 0);
  page_req(&r, &e, &q, "POST", "/api/v1/auth", "{\"msisdn\":\"+96899000003\"}",
           1);
  T_EQ_INT(r.status, 409); /* one waiting sign-in per phone */
  T_ASSERT(r.json && strcmp(jstr(r.json, "error"), "signin_pending") == 0);
  t_resp_free(&r);
  /* an unknown number looks the same: a second start while the first
   * "waits" is refused alike */
  page_req(&r, &e, &q, "POST", "/api/v1/auth", "{\"msisdn\":\"+96899009999\"}",
           1);
  T_EQ_INT(r.status, 200);
  t_resp_free(&r);
  page_req(&r, &e, &q, "POST", "/api/v1/auth", "{\"msisdn\":\"+96899009999\"}",
           1);
  T_EQ_INT(r.status, 409);
  t_resp_free(&r);
  for (int i = 0; i < 40 && n429 == 0; i++) {
    char body[64];
    snprintf(body, sizeof(body), "{\"msisdn\":\"+968990098%02d\"}", i);
    page_req(&r, &e, &q, "POST", "/api/v1/auth", body, 1);
    if (r.status == 429) {
      n429++;
      T_ASSERT(t_resp_hdr(&r, "retry-after") != NULL);
    } else if (r.status != 200) {
      printf("#   start %d: %ld %.200s\n", i, r.status, r.body);
      T_ASSERT(0);
    }
    t_resp_free(&r);
  }
  T_EQ_INT(n429, 1); /* the address: 30 starts a minute by default */
  env_down(&e);
}

/* RP-initiated logout: with and without a registered URI. */
static void t_logout(void) {
  env e;
  page p;
  t_resp r;
  char code[128], idt[4096], rt[128], path[8192];
  const char *loc;

  T_ASSERT(env_up(&e) == 0);
  T_ASSERT(sign_in(&e, &p, code, sizeof(code)) == 0);
  exchange(&r, &e, code, VERIFIER);
  T_ASSERT(r.status == 200);
  snprintf(idt, sizeof(idt), "%s",
           jstr(r.json, "id_token") ? jstr(r.json, "id_token") : "");
  snprintf(rt, sizeof(rt), "%s",
           jstr(r.json, "refresh_token") ? jstr(r.json, "refresh_token") : "");
  t_resp_free(&r);
  /* an unregistered URI: our own page, the session still ends */
  /* POST: t_curl's URLs are short (RP-Initiated Logout allows both) */
  snprintf(path, sizeof(path),
           "id_token_hint=%s&post_logout_redirect_uri="
           "https://evil.test/&state=s1",
           idt);
  req(&r, &e, "POST", "/logout", "application/x-www-form-urlencoded", path,
      NULL);
  T_ASSERT(r.status == 200 && !t_resp_hdr(&r, "location") &&
           strstr(r.body, "<html"));
  t_resp_free(&r);
  T_ASSERT(sign_in(&e, &p, code, sizeof(code)) == 0);
  exchange(&r, &e, code, VERIFIER);
  T_ASSERT(r.status == 200);
  snprintf(rt, sizeof(rt), "%s",
           jstr(r.json, "refresh_token") ? jstr(r.json, "refresh_token") : "");
  t_resp_free(&r);
  T_EQ_INT(active(&e, rt), 1);
  {
    char ck[128];
    const char *h[] = {ck, NULL};
    snprintf(ck, sizeof(ck), "Cookie: " GW_AUTHZ_COOKIE "=%s", p.cookie);
    snprintf(path, sizeof(path),
             "id_token_hint=%s&post_logout_redirect_uri=" CB "&state=s2", idt);
    req(&r, &e, "POST", "/logout", "application/x-www-form-urlencoded", path,
        h);
  }
  loc = t_resp_hdr(&r, "location");
  T_ASSERT(r.status == 303 && loc && strcmp(loc, CB "?state=s2") == 0);
  if (r.status != 303) {
    printf("#   logout: %ld %s %.200s\n", r.status, loc ? loc : "-", r.body);
  }
  T_ASSERT(t_resp_hdr(&r, "set-cookie") &&
           strstr(t_resp_hdr(&r, "set-cookie"), "Max-Age=0"));
  t_resp_free(&r);
  T_EQ_INT(active(&e, rt), 0); /* the session's refresh tokens */
  env_down(&e);
}

/* A native client: client authentication, identity in results, 409. */
static void t_native(void) {
  env e;
  t_resp r;
  const char *h[] = {NULL, NULL};
  char auth[256], id[64], path[256];
  gw_buf b;

  T_ASSERT(env_up(&e) == 0);
  gw_buf_init(&b, 256);
  gw_buf_puts(&b, "Authorization: Basic ");
  {
    unsigned char out[200];
    int n = EVP_EncodeBlock(out, (const unsigned char *)"native:" SECRET_NAT,
                            (int)strlen("native:" SECRET_NAT));
    gw_buf_append(&b, out, (size_t)n);
  }
  snprintf(auth, sizeof(auth), "%s", b.data);
  gw_buf_free(&b);
  h[0] = auth;
  req(&r, &e, "POST", "/api/v1/auth", "application/json",
      "{\"civil_id\":\"10000007\"}", h);
  T_ASSERT(r.status == 409 &&
           strcmp(jstr(r.json, "error"), "multiple_phones") == 0 &&
           json_array_size(json_object_get(r.json, "phones")) == 2 &&
           strstr(r.body, "+968 9"));
  t_resp_free(&r);
  req(&r, &e, "POST", "/api/v1/auth", "application/json",
      "{\"civil_id\":\"10000007\",\"phone_choice\":1}", h);
  T_ASSERT(r.status == 200 && jstr(r.json, "auth_id"));
  snprintf(id, sizeof(id), "%s",
           jstr(r.json, "auth_id") ? jstr(r.json, "auth_id") : "");
  t_resp_free(&r);
  snprintf(path, sizeof(path), "/api/v1/auth/%s?timeout_ms=20000", id);
  req(&r, &e, "GET", path, NULL, NULL, h);
  /* each long poll wakes at a change: sent, signed, verified */
  for (int i = 0; i < 6 && r.status == 200 && jstr(r.json, "state") &&
                  strcmp(jstr(r.json, "state"), "RUNNING") == 0;
       i++) {
    t_resp_free(&r);
    req(&r, &e, "GET", path, NULL, NULL, h);
  }
  T_ASSERT(r.status == 200 && jstr(r.json, "sub") &&
           strcmp(jstr(r.json, "msisdn"), "+96899000008") == 0);
  t_resp_free(&r);
  /* a wrong secret: 401 */
  {
    const char *bad[] = {"Authorization: Basic bmF0aXZlOng=", NULL};
    req(&r, &e, "POST", "/api/v1/auth", "application/json", "{}", bad);
    T_EQ_INT(r.status, 401);
    t_resp_free(&r);
  }
  env_down(&e);
}

static void t_mask(void) {
  char m[64];

  gw_authz_mask_msisdn("+96899000001", m, sizeof(m));
  T_EQ_STR(m, "+968 9\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2 "
              "\xe2\x80\xa2\xe2\x80\xa2"
              "01");
}

int main(void) {
  const char *b = getenv("BUILD");
  char tmpl[] = "/tmp/gw_authz_test.XXXXXX", p1[PATH_MAX + 32],
       p2[PATH_MAX + 32];
  int ok;

  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  gw_log_open(NULL, GW_LOG_ERROR);
  T_RUN(t_mask);
  if (!realpath(b && b[0] ? b : "build", build)) {
    printf("# skip: no build directory\n");
    return T_DONE();
  }
  snprintf(p1, sizeof(p1), "%s/mssp-mock", build);
  snprintf(p2, sizeof(p2), "%s/mpkictl", build);
  if (access(p1, X_OK) != 0 || access(p2, X_OK) != 0) {
    printf("# skip: the rest needs %s and %s\n", p1, p2);
    return T_DONE();
  }
  if (!mkdtemp(tmpl) || !realpath(tmpl, dir)) {
    return 1;
  }
  parent = getpid();
  atexit(cleanup);
  mss_soap_init();
  op_http_global_init();
  ok = make_stack() == 0;
  printf("%s - private PKI, clients and the Omantel mock\n",
         ok ? "ok" : "not ok");
  if (!ok) {
    return 1;
  }
  T_RUN_CHILD(t_authorize);
  T_RUN_CHILD(t_code_flow);
  T_RUN_CHILD(t_refresh);
  T_RUN_CHILD(t_api_binding);
  T_RUN_CHILD(t_cancel_unknown);
  T_RUN_CHILD(t_logout);
  T_RUN_CHILD(t_flood);
  T_RUN_CHILD(t_native);
  free(es_pem);
  free(rs_pem);
  curl_global_cleanup();
  return T_DONE();
}
