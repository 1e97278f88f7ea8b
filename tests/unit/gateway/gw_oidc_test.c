/* gw_oidc_test.c — the OpenID Connect provider's endpoints (gateway/
 * gw_oidc.c) on an in-process gateway server with the real parts behind
 * them: the client registry seeded from a file into the store, a signer
 * made from PEM keys generated here, and the real sign-in engine driving
 * the real Omantel mock MSSP over a private PKI made with the real
 * mpkictl.
 *
 * Covered: the discovery document and the JWKS; every refusal of
 * /bc-authorize (client authentication, grant, scope, officer scope,
 * resource, repeated parameters, hints, binding_message, requested_expiry,
 * unsupported parameters, sizes, media type) with the mock's request
 * counter unchanged — nothing reached a phone; the token endpoint's
 * errors (unknown and foreign auth_req_id, grant types, resource,
 * authorization_pending, slow_down, access_denied with the reason); full
 * CIBA sign-ins whose tokens are decoded and checked claim by claim, then
 * introspected (own client, resource server, another client), revoked and
 * used at /userinfo; tokens minted here to pin the verifier's refusals
 * (alg none, HS256, tampered, expired, foreign issuer, ID token as access
 * token, missing claims); the log (one line per token issued, no secret,
 * token or auth_req_id in it).
 *
 * Prints "# skip" and passes when $BUILD/mssp-mock or $BUILD/mpkictl are
 * not built. Run from the repository root. Each test runs in a child. */
#include "gw_oidc.h"

#include <curl/curl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
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
#define USERINFO ISSUER "/userinfo"
#define RS_LIC "https://rs.test/licensing"
#define RS_OTHER "https://rs.test/other"
/* unencoded in forms: neither holds "&", "=", "+" or "%" */
#define RS_LIC_Q RS_LIC
#define RS_OTHER_Q RS_OTHER
#define CIBA "urn:openid:params:grant-type:ciba"
#define OFFICER "10000031"

#define SECRET_RP "demo-rp-secret-0123456789abcdef-0123456789"
#define SECRET_OTHER "other-rp-secret-0123456789abcdef-012345678"
#define SECRET_RS "licensing-rs-secret-0123456789abcdef-01234"
#define SECRET_PORTAL "licensing-portal-secret-0123456789abcdef-0"
#define SECRET_NOCIBA "no-ciba-secret-0123456789abcdef-0123456789"
#define SECRET_PING "ping-rp-secret-0123456789abcdef-0123456789"
#define AS_RP "client_id=demo-rp&client_secret=" SECRET_RP
#define AS_OTHER "client_id=other-rp&client_secret=" SECRET_OTHER
#define AS_RS "client_id=licensing-rs&client_secret=" SECRET_RS
#define AS_PORTAL "client_id=licensing-portal&client_secret=" SECRET_PORTAL
#define AS_NOCIBA "client_id=no-ciba&client_secret=" SECRET_NOCIBA
#define AS_PING "client_id=ping-rp&client_secret=" SECRET_PING

static char dir[PATH_MAX], build[PATH_MAX];
static char gwconf[PATH_MAX + 32], clients_conf[PATH_MAX + 32];
static int mock_port;
static pid_t mock_pid, parent;
static char *es_pem, *rs_pem;
static long http_ver = CURL_HTTP_VERSION_2TLS; /* of the requests below */

static const char SIMS[] =
    "msisdn,civil_id,name,operator,pin,puk,behaviour\n"
    "+96899000001,10000001,Salim Al-Harthy,omantel,,,approve:200\n"
    "+96899000002,10000002,Aisha Al-Balushi,omantel,,,refuse:100\n"
    "+96899000003,10000003,Khalid Al-Rawahi,omantel,,,no_answer\n"
    "+96899000005," OFFICER ",Officer One,omantel,,,approve:200\n"
    "+96899000006,10000006,Said Al-Busaidi,omantel,,,approve:200\n";

static const char CLIENTS[] =
    "clients = (\n"
    "  { client_id = \"demo-rp\"; name = \"Demo RP\";\n"
    "    secret = \"" SECRET_RP "\";\n"
    "    grant_types = [\"urn:openid:params:grant-type:ciba\"];\n"
    "    scopes = [\"openid\", \"profile\", \"licensing\"];\n"
    "    resources = [\"" RS_LIC "\", \"" RS_OTHER "\"];\n"
    "    ciba_mode = \"poll\"; id_token_alg = \"ES256\"; },\n"
    "  { client_id = \"other-rp\"; name = \"Other RP\";\n"
    "    secret = \"" SECRET_OTHER "\";\n"
    "    grant_types = [\"urn:openid:params:grant-type:ciba\"];\n"
    "    scopes = [\"openid\", \"profile\"];\n"
    "    resources = [\"" RS_OTHER "\"];\n"
    "    ciba_mode = \"poll\"; id_token_alg = \"RS256\"; },\n"
    "  { client_id = \"licensing-rs\"; name = \"Licensing\";\n"
    "    secret = \"" SECRET_RS "\";\n"
    "    resources = [\"" RS_LIC "\"]; resource_server = true; },\n"
    "  { client_id = \"licensing-portal\"; name = \"Licensing portal\";\n"
    "    secret = \"" SECRET_PORTAL "\";\n"
    "    grant_types = [\"urn:openid:params:grant-type:ciba\"];\n"
    "    scopes = [\"openid\", \"profile\", \"licensing\", "
    "\"licensing.officer\"];\n"
    "    resources = [\"" RS_LIC "\"]; ciba_mode = \"poll\"; },\n"
    "  { client_id = \"ping-rp\"; name = \"Ping RP\";\n"
    "    secret = \"" SECRET_PING "\";\n"
    "    grant_types = [\"urn:openid:params:grant-type:ciba\"];\n"
    "    scopes = [\"openid\"]; ciba_mode = \"ping\";\n"
    "    ciba_notification_endpoint = \"https://rp.test/ping\"; },\n"
    "  { client_id = \"no-ciba\"; name = \"No CIBA\";\n"
    "    secret = \"" SECRET_NOCIBA "\";\n"
    "    grant_types = [\"authorization_code\"];\n"
    "    scopes = [\"openid\"];\n"
    "    redirect_uris = [\"https://rp.test/cb\"]; }\n"
    ");\n";

/* ---- set-up ------------------------------------------------------------ */

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

/* ---- the gateway ------------------------------------------------------- */

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

static int env_parts(env *e, char *err, size_t errlen) {
  gw_config *c = e->cfg;
  char url[128];

  snprintf(url, sizeof(url), "http://127.0.0.1:%d/soap/services", mock_port);
  set_str(&c->op_omantel.url, url);
  c->op_omantel.poll_first_ms = 50;
  c->op_omantel.poll_interval_ms = 50;
  set_str(&c->oidc_issuer, ISSUER);
  set_str(&c->oidc_officers, OFFICER " 10000099");
  set_str(&c->oidc_signing_alg, "ES256");
  c->oidc_ciba_interval_s = 1;
  c->oidc_ciba_expiry_s = 60;
  e->app.cfg = c;
  if (gw_store_open(&e->st, c->store_backend, c->store_path,
                    c->store_busy_timeout_ms, err, errlen) != GW_OK ||
      gw_clients_seed(e->st, clients_conf, 0, 0, NULL, err, errlen) != GW_OK ||
      gw_clients_new(&e->app.clients, e->st, err, errlen) != GW_OK ||
      gw_signer_new_pem(&e->app.signer, es_pem, rs_pem, err, errlen) != GW_OK ||
      op_registry_new(&e->app.operators, c, err, errlen) != GW_OK ||
      p11_pool_new(&e->app.pool, 2, 1000) != P11_OK ||
      gw_txn_engine_new(&e->app.txn, c, e->app.operators, e->app.pool, err,
                        errlen) != GW_OK) {
    return -1;
  }
  e->app.store = e->st;
  return 0;
}

static int env_up(env *e) {
  char err[512] = "";

  memset(e, 0, sizeof(*e));
  snprintf(e->logpath, sizeof(e->logpath), "%s/oidc-%d.log", dir,
           (int)getpid());
  gw_log_open(e->logpath, GW_LOG_INFO);
  if (gw_config_load(&e->cfg, gwconf, err, sizeof(err)) != GW_OK ||
      env_parts(e, err, sizeof(err)) != 0) {
    printf("# env: %s\n", err);
    return -1;
  }
  if (ts_start_app(&e->srv, 2, NULL, gw_oidc_register, &e->app) != 0) {
    return -1;
  }
  e->srv_up = 1;
  return 0;
}

static void env_down(env *e) {
  if (e->srv_up) {
    ts_stop(&e->srv); /* the workers end: their sign-ins go */
  }
  p11_pool_del(e->app.pool);
  gw_txn_engine_del(e->app.txn);
  op_registry_del(e->app.operators);
  gw_clients_del(e->app.clients);
  gw_signer_del(e->app.signer);
  gw_store_close(e->st);
  gw_config_del(e->cfg);
  gw_log_close();
}

/* ---- requests ---------------------------------------------------------- */

/* POSTs |body| with Content-Type |ctype| (NULL: the form type) and one
 * extra header line (may be NULL). */
static void post_raw(t_resp *r, env *e, const char *path, const char *ctype,
                     const char *body, const char *hdr) {
  char ct[128];
  t_reqopt o;

  memset(&o, 0, sizeof(o));
  o.method = "POST";
  o.body = body;
  o.blen = (long)strlen(body);
  snprintf(ct, sizeof(ct), "Content-Type: %s",
           ctype ? ctype : "application/x-www-form-urlencoded");
  o.headers[0] = ct;
  o.headers[1] = hdr;
  t_do_req(r, &e->srv, http_ver, path, &o);
}

static void post(t_resp *r, env *e, const char *path, const char *body) {
  post_raw(r, e, path, NULL, body, NULL);
}

static void get(t_resp *r, env *e, const char *path, const char *hdr) {
  t_reqopt o;

  memset(&o, 0, sizeof(o));
  o.headers[0] = hdr;
  t_do_req(r, &e->srv, http_ver, path, &o);
}

/* 1 when |r| is OAuth's error answer: |status|, {"error": |code|,
 * "error_description": "..."} and nothing else, not to be cached. */
static int oauth_err(const t_resp *r, long status, const char *code) {
  const char *cc = t_resp_hdr(r, "cache-control");
  const char *got = json_string_value(json_object_get(r->json, "error"));

  if (r->rc != CURLE_OK || r->status != status || !got ||
      strcmp(got, code) != 0 ||
      !json_is_string(json_object_get(r->json, "error_description")) ||
      json_object_size(r->json) != 2 || !cc || strcmp(cc, "no-store") != 0) {
    printf("#   expected %ld %s; got %ld %.300s\n", status, code, r->status,
           r->body);
    return 0;
  }
  return 1;
}

/* The mock's count of signature requests (every one a push to a phone). */
static long mock_requests(void) {
  char cmd[160], buf[2048];
  size_t n = 0;
  json_t *j;
  long v = -1;
  FILE *p;

  snprintf(cmd, sizeof(cmd), "curl -s http://127.0.0.1:%d/control/stats",
           mock_port);
  p = popen(cmd, "r");
  if (p) {
    n = fread(buf, 1, sizeof(buf) - 1, p);
    pclose(p);
  }
  buf[n] = '\0';
  j = json_loads(buf, 0, NULL);
  if (json_is_integer(json_object_get(j, "requests"))) {
    v = (long)json_integer_value(json_object_get(j, "requests"));
  }
  json_decref(j);
  return v;
}

/* Part |idx| (0 header, 1 payload) of a compact JWT, parsed. */
static json_t *jwt_part(const char *jwt, int idx) {
  unsigned char buf[8192];
  const char *s = jwt, *dot;
  size_t n;

  for (int i = 0; i < idx && s; i++) {
    s = strchr(s, '.');
    s = s ? s + 1 : NULL;
  }
  dot = s ? strchr(s, '.') : NULL;
  if (!dot || gw_b64url_decode(s, (size_t)(dot - s), buf, sizeof(buf) - 1,
                               &n) != GW_OK) {
    return NULL;
  }
  return json_loadb((const char *)buf, n, 0, NULL);
}

/* The keys of |o| in order, comma-separated. */
static const char *keys_of(const json_t *o) {
  static char out[1024];
  const char *k;
  json_t *v;
  size_t len = 0;

  out[0] = '\0';
  json_object_foreach((json_t *)o, k, v) {
    (void)v;
    len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s",
                            len ? "," : "", k);
    if (len >= sizeof(out)) {
      break;
    }
  }
  return out;
}

static const char *jstr(const json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

static long long jint(const json_t *o, const char *k) {
  return (long long)json_integer_value(json_object_get(o, k));
}

static int log_has(const env *e, const char *needle) {
  char buf[1 << 16];
  size_t n = 0;
  FILE *f = fopen(e->logpath, "r");

  if (f) {
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
  }
  buf[n] = '\0';
  return strstr(buf, needle) != NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Starts a CIBA request (|extra|: scope, hint, ...) as |as|; copies the
 * auth_req_id. Returns the HTTP status. */
static long bc_start(env *e, const char *as, const char *extra, char *id,
                     size_t cap) {
  char body[1024];
  t_resp r;
  long st;

  snprintf(body, sizeof(body), "%s&%s", as, extra);
  post(&r, e, "/bc-authorize", body);
  st = r.status;
  if (st == 200 && jstr(r.json, "auth_req_id")) {
    snprintf(id, cap, "%s", jstr(r.json, "auth_req_id"));
  } else {
    printf("#   bc-authorize: %ld %.300s\n", r.status, r.body);
  }
  t_resp_free(&r);
  return st;
}

static void token_poll(t_resp *r, env *e, const char *as, const char *id) {
  char body[512];

  snprintf(body, sizeof(body), "%s&grant_type=" CIBA "&auth_req_id=%s", as, id);
  post(r, e, "/token", body);
}

/* Polls once a second (the test's interval) until the answer is no longer
 * pending; |r| holds the last answer. */
static void token_wait(t_resp *r, env *e, const char *as, const char *id) {
  const char *err;

  for (int i = 0; i < 12; i++) {
    sleep_ms(1050);
    token_poll(r, e, as, id);
    err = jstr(r->json, "error");
    if (!err || (strcmp(err, "authorization_pending") != 0 &&
                 strcmp(err, "slow_down") != 0)) {
      return;
    }
    t_resp_free(r);
  }
}

static void introspect(t_resp *r, env *e, const char *as, const char *tok) {
  char body[8192];

  snprintf(body, sizeof(body), "%s&token=%s&token_type_hint=access_token", as,
           tok);
  post(r, e, "/introspect", body);
}

/* 1 when |tok| is active for |as|. */
static int active(env *e, const char *as, const char *tok) {
  t_resp r;
  int a;

  introspect(&r, e, as, tok);
  a = r.status == 200 && json_is_true(json_object_get(r.json, "active"));
  if (!a && (r.status != 200 || strcmp(r.body, "{\"active\":false}") != 0)) {
    printf("#   introspection: %ld %.300s\n", r.status, r.body);
    a = -1;
  }
  t_resp_free(&r);
  return a;
}

static long do_revoke(env *e, const char *as, const char *tok) {
  char body[8192];
  t_resp r;
  long st;

  snprintf(body, sizeof(body), "%s&token=%s", as, tok);
  post(&r, e, "/revoke", body);
  st = r.status == 200 && r.blen == 0 ? 200 : -r.status;
  t_resp_free(&r);
  return st;
}

static void userinfo(t_resp *r, env *e, const char *tok) {
  char h[8192];

  snprintf(h, sizeof(h), "Authorization: Bearer %s", tok);
  get(r, e, "/userinfo", h);
}

/* ---- tokens made here ---------------------------------------------------
 * With the same keys as the server's signer, so that the verifier's
 * refusals are pinned one by one. */

typedef struct mint_opt {
  gw_jws_alg alg;
  const char *typ, *iss, *aud, *client_id, *scope, *sub;
  long long exp_delta;
  int no_jti;
} mint_opt;

static void mint_defaults(mint_opt *m) {
  memset(m, 0, sizeof(*m));
  m->alg = GW_JWS_ES256;
  m->typ = "at+jwt";
  m->iss = ISSUER;
  m->aud = USERINFO;
  m->client_id = "demo-rp";
  m->scope = "openid profile";
  m->sub = "10000006";
  m->exp_delta = 300;
}

static char *mint(env *e, const mint_opt *m) {
  long long now = (long long)time(NULL);
  char jti[64];
  json_t *c;
  gw_buf b;
  char *s = NULL;

  snprintf(jti, sizeof(jti), "test-%lld-%d", now, rand());
  c = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", m->iss, "sub", m->sub,
                "aud", m->aud, "exp", (json_int_t)(now + m->exp_delta), "iat",
                (json_int_t)now);
  if (!m->no_jti) {
    json_object_set_new(c, "jti", json_string(jti));
  }
  json_object_set_new(c, "client_id", json_string(m->client_id));
  json_object_set_new(c, "scope", json_string(m->scope));
  json_object_set_new(c, "auth_time", json_integer(now));
  json_object_set_new(c, "acr", json_string(GW_OIDC_ACR));
  json_object_set_new(c, "amr", json_pack("[s]", "mpki"));
  gw_buf_init(&b, 16384);
  if (gw_jwt_sign(e->app.signer, m->alg, m->typ, c, &b) == GW_OK) {
    s = strdup(b.data);
  }
  gw_buf_free(&b);
  json_decref(c);
  return s;
}

/* A JWT with any header: an unsigned one when |sig| is "". */
static char *forge(const char *header, const json_t *payload, const char *sig) {
  char *p = json_dumps(payload, JSON_COMPACT), *out = NULL;
  gw_buf h, b;

  gw_buf_init(&h, 16384);
  gw_buf_init(&b, 16384);
  if (p && gw_b64url_encode(header, strlen(header), &h) == GW_OK &&
      gw_b64url_encode(p, strlen(p), &b) == GW_OK &&
      asprintf(&out, "%s.%s.%s", h.data, b.data, sig) < 0) {
    out = NULL;
  }
  free(p);
  gw_buf_free(&h);
  gw_buf_free(&b);
  return out;
}

/* ---- tests ------------------------------------------------------------- */

static void t_discovery_jwks(void) {
  static const char *const grants[] = {"urn:openid:params:grant-type:ciba",
                                       "authorization_code", "refresh_token"};
  json_t *d, *k;
  t_resp r;
  env e;

  T_ASSERT(env_up(&e) == 0);
  get(&r, &e, "/.well-known/openid-configuration", NULL);
  d = r.json;
  T_EQ_INT(r.status, 200);
  T_EQ_STR(t_resp_hdr(&r, "cache-control"), "public, max-age=300");
  T_EQ_STR(jstr(d, "issuer"), ISSUER);
  T_EQ_STR(jstr(d, "jwks_uri"), ISSUER "/jwks.json");
  T_EQ_STR(jstr(d, "token_endpoint"), ISSUER "/token");
  T_EQ_STR(jstr(d, "authorization_endpoint"), ISSUER "/authorize");
  T_EQ_STR(jstr(d, "backchannel_authentication_endpoint"),
           ISSUER "/bc-authorize");
  T_EQ_STR(jstr(d, "introspection_endpoint"), ISSUER "/introspect");
  T_EQ_STR(jstr(d, "revocation_endpoint"), ISSUER "/revoke");
  T_EQ_STR(jstr(d, "userinfo_endpoint"), USERINFO);
  for (size_t i = 0; i < 3; i++) {
    T_EQ_STR(json_string_value(json_array_get(
                 json_object_get(d, "grant_types_supported"), i)),
             grants[i]);
  }
  T_EQ_STR(json_string_value(json_array_get(
               json_object_get(d, "id_token_signing_alg_values_supported"), 1)),
           "RS256");
  T_EQ_STR(
      json_string_value(json_array_get(
          json_object_get(d, "backchannel_token_delivery_modes_supported"), 0)),
      "poll");
  T_EQ_STR(json_string_value(json_array_get(
               json_object_get(d, "code_challenge_methods_supported"), 0)),
           "S256");
  T_EQ_INT(json_array_size(json_object_get(d, "scopes_supported")), 4);
  T_EQ_STR(json_string_value(json_array_get(
               json_object_get(d, "response_types_supported"), 0)),
           "code");
  T_EQ_STR(json_string_value(json_array_get(
               json_object_get(d, "subject_types_supported"), 0)),
           "public");
  T_ASSERT(json_is_false(
      json_object_get(d, "backchannel_user_code_parameter_supported")));
  T_ASSERT(!json_object_get(
      d, "backchannel_authentication_request_signing_alg_values_supported"));
  T_ASSERT(json_is_array(json_object_get(d, "claims_supported")));
  T_ASSERT(json_is_array(json_object_get(d, "acr_values_supported")));
  T_ASSERT(json_is_array(
      json_object_get(d, "introspection_endpoint_auth_methods_supported")));
  T_ASSERT(json_is_array(
      json_object_get(d, "revocation_endpoint_auth_methods_supported")));
  T_ASSERT(json_is_array(
      json_object_get(d, "token_endpoint_auth_methods_supported")));
  t_resp_free(&r);

  get(&r, &e, "/jwks.json", NULL);
  T_EQ_INT(r.status, 200);
  T_EQ_INT(json_array_size(json_object_get(r.json, "keys")), 2);
  for (size_t i = 0; i < 2; i++) {
    k = json_array_get(json_object_get(r.json, "keys"), i);
    T_EQ_STR(jstr(k, "kid"),
             gw_signer_kid(e.app.signer, gw_jws_alg_parse(jstr(k, "alg"))));
    T_EQ_STR(jstr(k, "use"), "sig");
  }
  t_resp_free(&r);
  env_down(&e);
}

typedef struct bc_case {
  const char *ctype; /* NULL: form */
  const char *hdr;
  const char *body;
  long status;
  const char *error;
} bc_case;

#define HINT1 "login_hint=tel:%2B96899000001"
/* demo-rp:wrong */
#define BASIC_WRONG "Authorization: Basic ZGVtby1ycDp3cm9uZw=="

static const bc_case BC_CASES[] = {
    /* client authentication */
    {NULL, NULL, "client_id=demo-rp&client_secret=nope&scope=openid&" HINT1,
     401, "invalid_client"},
    {NULL, NULL, "client_id=nobody&client_secret=nope&scope=openid&" HINT1, 401,
     "invalid_client"},
    {NULL, NULL, "scope=openid&" HINT1, 401, "invalid_client"},
    {NULL, BASIC_WRONG, "scope=openid&" HINT1, 401, "invalid_client"},
    {NULL, NULL, AS_NOCIBA "&scope=openid&" HINT1, 400, "unauthorized_client"},
    /* ping mode needs client_notification_token (CIBA §7.1) */
    {NULL, NULL, AS_PING "&scope=openid&" HINT1, 400, "invalid_request"},
    /* scope */
    {NULL, NULL, AS_RP "&" HINT1, 400, "invalid_request"},
    {NULL, NULL, AS_RP "&scope=profile&" HINT1, 400, "invalid_scope"},
    {NULL, NULL, AS_RP "&scope=openid+licensing.officer&" HINT1, 400,
     "invalid_scope"},
    {NULL, NULL, AS_RP "&scope=openid+%22x&" HINT1, 400, "invalid_scope"},
    {NULL, NULL, AS_PORTAL "&scope=openid+licensing.officer&" HINT1, 400,
     "invalid_scope"},
    {NULL, NULL,
     AS_PORTAL "&scope=openid+licensing.officer&login_hint=10000001", 400,
     "invalid_scope"},
    /* resource */
    {NULL, NULL,
     AS_RP "&scope=openid&" HINT1 "&resource=https%3A%2F%2Frs.test%2Fnope", 400,
     "invalid_target"},
    {NULL, NULL,
     AS_RP "&scope=openid&" HINT1 "&resource=" RS_LIC_Q "&resource=" RS_OTHER_Q,
     400, "invalid_target"},
    {NULL, NULL, AS_OTHER "&scope=openid&" HINT1 "&resource=" RS_LIC_Q, 400,
     "invalid_target"},
    /* repeated parameters */
    {NULL, NULL, AS_RP "&scope=openid&scope=openid&" HINT1, 400,
     "invalid_request"},
    {NULL, NULL, AS_RP "&scope=openid&" HINT1 "&" HINT1, 400,
     "invalid_request"},
    {NULL, NULL, AS_RP "&client_id=demo-rp&scope=openid&" HINT1, 400,
     "invalid_request"},
    /* hints */
    {NULL, NULL, AS_RP "&scope=openid", 400, "invalid_request"},
    {NULL, NULL, AS_RP "&scope=openid&" HINT1 "&id_token_hint=eyJ.eyJ.x", 400,
     "invalid_request"},
    {NULL, NULL, AS_RP "&scope=openid&id_token_hint=eyJ.eyJ.x", 400,
     "invalid_request"},
    {NULL, NULL, AS_RP "&scope=openid&login_hint_token=eyJ.eyJ.x", 400,
     "invalid_request"},
    {NULL, NULL, AS_RP "&scope=openid&login_hint=alice%40example.om", 400,
     "invalid_request"},
    {NULL, NULL, AS_RP "&scope=openid&login_hint=tel:%2B4915112345678", 400,
     "invalid_request"},
    {NULL, NULL, AS_RP "&scope=openid&login_hint=tel:%2B96899123456", 400,
     "unknown_user_id"},
    {NULL, NULL, AS_RP "&scope=openid&login_hint=99999999", 400,
     "unknown_user_id"},
    /* binding_message: 65 characters, a newline, a right-to-left
     * override, bytes that are not UTF-8 */
    {NULL, NULL,
     AS_RP "&scope=openid&" HINT1
           "&binding_message=12345678901234567890123456789012345678901234567"
           "890123456789012345",
     400, "invalid_binding_message"},
    {NULL, NULL, AS_RP "&scope=openid&" HINT1 "&binding_message=a%0Ab", 400,
     "invalid_binding_message"},
    {NULL, NULL,
     AS_RP "&scope=openid&" HINT1 "&binding_message=code+%E2%80%AE1234", 400,
     "invalid_binding_message"},
    {NULL, NULL, AS_RP "&scope=openid&" HINT1 "&binding_message=%FF%FE", 400,
     "invalid_binding_message"},
    /* requested_expiry: 1..oidc.ciba_expiry_s (60 here) */
    {NULL, NULL, AS_RP "&scope=openid&" HINT1 "&requested_expiry=0", 400,
     "invalid_request"},
    {NULL, NULL, AS_RP "&scope=openid&" HINT1 "&requested_expiry=61", 400,
     "invalid_request"},
    {NULL, NULL, AS_RP "&scope=openid&" HINT1 "&requested_expiry=-5", 400,
     "invalid_request"},
    {NULL, NULL, AS_RP "&scope=openid&" HINT1 "&requested_expiry=1e2", 400,
     "invalid_request"},
    /* unsupported */
    {NULL, NULL, AS_RP "&scope=openid&" HINT1 "&user_code=1234", 400,
     "invalid_request"},
    {NULL, NULL, AS_RP "&scope=openid&" HINT1 "&request=eyJ.eyJ.x", 400,
     "invalid_request"},
    /* not a form */
    {"application/json", NULL, "{\"scope\":\"openid\"}", 415,
     "invalid_request"},
    {NULL, NULL, "a=%zz", 400, "invalid_request"},
};

static void t_bc_refusals(void) {
  char big[3000];
  long before;
  t_resp r;
  env e;

  T_ASSERT(env_up(&e) == 0);
  before = mock_requests();
  T_ASSERT(before >= 0);
  for (size_t i = 0; i < sizeof(BC_CASES) / sizeof(BC_CASES[0]); i++) {
    const bc_case *c = &BC_CASES[i];

    post_raw(&r, &e, "/bc-authorize", c->ctype, c->body, c->hdr);
    if (!oauth_err(&r, c->status, c->error)) {
      printf("#   case %zu: %.200s\n", i, c->body);
      t_case_failed = 1;
    }
    if (c->status == 401 && !t_resp_hdr(&r, "www-authenticate")) {
      printf("#   case %zu: a 401 without WWW-Authenticate\n", i);
      t_case_failed = 1;
    }
    t_resp_free(&r);
  }
  /* a parameter over 2 KiB */
  snprintf(big, sizeof(big), "%s", AS_RP "&scope=openid&" HINT1 "&acr_values=");
  memset(big + strlen(big), 'a', 2100);
  big[sizeof(big) - 1] = '\0';
  post(&r, &e, "/bc-authorize", big);
  T_ASSERT(oauth_err(&r, 400, "invalid_request"));
  t_resp_free(&r);
  /* a body over the route's 8 KiB, and the wrong method */
  {
    char *huge = calloc(1, GW_OIDC_FORM_MAX + 100);
    memset(huge, 'a', GW_OIDC_FORM_MAX + 50);
    post(&r, &e, "/bc-authorize", huge);
    T_EQ_INT(r.status, 413);
    t_resp_free(&r);
    free(huge);
  }
  get(&r, &e, "/bc-authorize", NULL);
  T_EQ_INT(r.status, 405);
  t_resp_free(&r);
  /* nothing reached a phone, nothing was started */
  T_EQ_INT(mock_requests(), before);
  T_EQ_INT((int)gw_txn_count(e.app.txn), 0);
  T_ASSERT(log_has(&e, "oidc refused"));
  T_ASSERT(!log_has(&e, SECRET_RP));
  env_down(&e);
}

static void t_token_errors(void) {
  char id[128], body[512];
  long before;
  t_resp r;
  env e;

  T_ASSERT(env_up(&e) == 0);
  before = mock_requests();
  /* a request to the phone that never answers */
  snprintf(body, sizeof(body),
           AS_RP "&scope=openid+licensing&login_hint=%s"
                 "&requested_expiry=30&resource=" RS_LIC_Q
                 "&binding_message=Order+42",
           "tel:%2B96899000003");
  post(&r, &e, "/bc-authorize", body);
  T_EQ_INT(r.status, 200);
  T_EQ_INT((int)strlen(jstr(r.json, "auth_req_id")), GW_TXN_ID_LEN);
  T_EQ_INT(jint(r.json, "expires_in"), 30);
  T_EQ_INT(jint(r.json, "interval"), 1);
  T_EQ_INT((int)strlen(jstr(r.json, "verification_code")), 4);
  T_EQ_INT(json_object_size(r.json), 4);
  T_EQ_STR(t_resp_hdr(&r, "cache-control"), "no-store");
  snprintf(id, sizeof(id), "%s", jstr(r.json, "auth_req_id"));
  t_resp_free(&r);
  T_EQ_INT(mock_requests(), before + 1);

  static const struct {
    const char *body;
    long status;
    const char *error;
  } cases[] = {
      {AS_RP "&grant_type=password&username=a&password=b", 400,
       "unsupported_grant_type"},
      {AS_RP "&grant_type=authorization_code&code=x", 400,
       "unsupported_grant_type"},
      {AS_RP "&auth_req_id=x", 400, "invalid_request"},
      {AS_RP "&grant_type=" CIBA, 400, "invalid_request"},
      {AS_RP "&grant_type=" CIBA "&auth_req_id=unknown0123456789", 400,
       "invalid_grant"},
      {"client_id=demo-rp&client_secret=nope&grant_type=" CIBA "&auth_req_id=x",
       401, "invalid_client"},
      {AS_RP "&grant_type=" CIBA "&grant_type=" CIBA "&auth_req_id=x", 400,
       "invalid_request"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    post(&r, &e, "/token", cases[i].body);
    if (!oauth_err(&r, cases[i].status, cases[i].error)) {
      printf("#   token case %zu\n", i);
      t_case_failed = 1;
    }
    t_resp_free(&r);
  }
  /* another client's auth_req_id, a client without the grant */
  token_poll(&r, &e, AS_OTHER, id);
  T_ASSERT(oauth_err(&r, 400, "invalid_grant"));
  t_resp_free(&r);
  token_poll(&r, &e, AS_NOCIBA, id);
  T_ASSERT(oauth_err(&r, 400, "unauthorized_client"));
  t_resp_free(&r);
  /* another resource than the request's */
  snprintf(body, sizeof(body),
           AS_RP "&grant_type=" CIBA "&auth_req_id=%s&resource=" RS_OTHER_Q,
           id);
  post(&r, &e, "/token", body);
  T_ASSERT(oauth_err(&r, 400, "invalid_target"));
  t_resp_free(&r);
  /* pending; too soon after: slow_down; an interval later: pending */
  token_poll(&r, &e, AS_RP, id);
  T_ASSERT(oauth_err(&r, 400, "authorization_pending"));
  t_resp_free(&r);
  token_poll(&r, &e, AS_RP, id);
  T_ASSERT(oauth_err(&r, 400, "slow_down"));
  t_resp_free(&r);
  sleep_ms(1050);
  snprintf(body, sizeof(body),
           AS_RP "&grant_type=" CIBA "&auth_req_id=%s&resource=" RS_LIC_Q, id);
  post(&r, &e, "/token", body);
  T_ASSERT(oauth_err(&r, 400, "authorization_pending"));
  t_resp_free(&r);

  /* the user refuses: access_denied, with the reason */
  T_EQ_INT(bc_start(&e, AS_RP, "scope=openid&login_hint=tel:%2B96899000002", id,
                    sizeof(id)),
           200);
  token_wait(&r, &e, AS_RP, id);
  T_ASSERT(oauth_err(&r, 400, "access_denied"));
  T_EQ_STR(jstr(r.json, "error_description"),
           gw_txn_failure_text(GW_TXN_FAIL_USER_CANCELLED));
  t_resp_free(&r);
  T_ASSERT(!log_has(&e, id)); /* auth_req_id is a credential */
  env_down(&e);
}

/* A full sign-in with a resource: the tokens claim by claim, single use,
 * introspection by whom, revocation by whom, /userinfo refusing it. */
static void t_ciba_tokens(void) {
  char id[128], at[4096], idt[4096], body[512];
  json_t *h, *p;
  long long now = (long long)time(NULL);
  t_resp r;
  env e;

  T_ASSERT(env_up(&e) == 0);
  T_EQ_INT(bc_start(&e, AS_RP,
                    "scope=openid+profile+licensing+openid&login_hint=tel:%"
                    "2B96899000001&resource=" RS_LIC_Q
                    "&binding_message=Order+42",
                    id, sizeof(id)),
           200);
  token_wait(&r, &e, AS_RP, id);
  T_EQ_INT(r.status, 200);
  T_EQ_STR(jstr(r.json, "token_type"), "Bearer");
  T_EQ_STR(jstr(r.json, "scope"), "openid profile licensing");
  T_EQ_INT(jint(r.json, "expires_in"), e.cfg->oidc_access_ttl_s);
  T_EQ_STR(t_resp_hdr(&r, "cache-control"), "no-store");
  snprintf(at, sizeof(at), "%s", jstr(r.json, "access_token") ?: "");
  snprintf(idt, sizeof(idt), "%s", jstr(r.json, "id_token") ?: "");
  t_resp_free(&r);

  h = jwt_part(at, 0);
  p = jwt_part(at, 1);
  T_EQ_STR(jstr(h, "typ"), "at+jwt");
  T_EQ_STR(jstr(h, "alg"), "ES256");
  T_EQ_STR(jstr(h, "kid"), gw_signer_kid(e.app.signer, GW_JWS_ES256));
  T_EQ_STR(keys_of(p), "iss,sub,aud,exp,iat,jti,client_id,scope,auth_time,"
                       "acr,amr");
  T_EQ_STR(jstr(p, "iss"), ISSUER);
  T_EQ_STR(jstr(p, "sub"), "10000001");
  T_EQ_STR(jstr(p, "aud"), RS_LIC);
  T_EQ_STR(jstr(p, "client_id"), "demo-rp");
  T_EQ_STR(jstr(p, "acr"), GW_OIDC_ACR);
  T_EQ_STR(json_string_value(json_array_get(json_object_get(p, "amr"), 0)),
           "mpki");
  T_EQ_INT(jint(p, "exp") - jint(p, "iat"), e.cfg->oidc_access_ttl_s);
  T_ASSERT(jint(p, "iat") >= now && jint(p, "auth_time") >= now);
  T_ASSERT(jstr(p, "jti") && strlen(jstr(p, "jti")) >= 22);
  T_ASSERT(log_has(&e, "token issued"));
  T_ASSERT(jstr(p, "jti") && log_has(&e, jstr(p, "jti")));
  json_decref(h);
  json_decref(p);

  h = jwt_part(idt, 0);
  p = jwt_part(idt, 1);
  T_EQ_STR(jstr(h, "typ"), "JWT");
  T_EQ_STR(jstr(h, "alg"), "ES256");
  T_EQ_STR(keys_of(p), "iss,sub,aud,exp,iat,auth_time,acr,amr,urn:openid:"
                       "params:jwt:claim:auth_req_id,name,phone_number,"
                       "phone_number_verified");
  T_EQ_STR(jstr(p, "aud"), "demo-rp");
  T_EQ_STR(jstr(p, "urn:openid:params:jwt:claim:auth_req_id"), id);
  T_EQ_STR(jstr(p, "name"), "Salim Al-Harthy");
  T_EQ_STR(jstr(p, "phone_number"), "+96899000001");
  T_ASSERT(json_is_true(json_object_get(p, "phone_number_verified")));
  json_decref(h);
  json_decref(p);

  /* single use */
  token_poll(&r, &e, AS_RP, id);
  T_ASSERT(oauth_err(&r, 400, "invalid_grant"));
  t_resp_free(&r);

  /* introspection: the client, the resource server; not another client */
  introspect(&r, &e, AS_RP, at);
  T_EQ_INT(r.status, 200);
  T_ASSERT(json_is_true(json_object_get(r.json, "active")));
  T_EQ_STR(keys_of(r.json), "active,scope,client_id,sub,aud,iss,exp,iat,jti,"
                            "token_type,auth_time,acr,amr");
  T_EQ_STR(jstr(r.json, "token_type"), "Bearer");
  T_EQ_STR(jstr(r.json, "aud"), RS_LIC);
  t_resp_free(&r);
  T_EQ_INT(active(&e, AS_RS, at), 1);
  T_EQ_INT(active(&e, AS_OTHER, at), 0);
  T_EQ_INT(active(&e, AS_RS, idt), 0); /* an ID token is no access token */
  /* not a token for /userinfo */
  userinfo(&r, &e, at);
  T_ASSERT(oauth_err(&r, 401, "invalid_token"));
  T_ASSERT(strstr(t_resp_hdr(&r, "www-authenticate") ?: "",
                  "error=\"invalid_token\"") != NULL);
  t_resp_free(&r);

  /* revocation: another client's attempt changes nothing; the owner's
   * does, for everyone; revoking again is fine */
  T_EQ_INT(do_revoke(&e, AS_OTHER, at), 200);
  T_EQ_INT(active(&e, AS_RP, at), 1);
  T_EQ_INT(do_revoke(&e, AS_RP, at), 200);
  T_EQ_INT(active(&e, AS_RP, at), 0);
  T_EQ_INT(active(&e, AS_RS, at), 0);
  T_EQ_INT(do_revoke(&e, AS_RP, at), 200);
  T_EQ_INT(do_revoke(&e, AS_RP, "not-a-token"), 200);
  snprintf(body, sizeof(body), AS_RP "&token_type_hint=access_token");
  post(&r, &e, "/revoke", body);
  T_ASSERT(oauth_err(&r, 400, "invalid_request"));
  t_resp_free(&r);

  /* no secret, token or auth_req_id in the log */
  T_ASSERT(!log_has(&e, SECRET_RP));
  T_ASSERT(!log_has(&e, id));
  T_ASSERT(!log_has(&e, at + strlen(at) - 40)); /* the signature */
  env_down(&e);
}

/* A sign-in without a resource, by civil number, for a client whose ID
 * tokens are RS256: the access token is for /userinfo only. Over
 * HTTP/1.1, so that the tokens signed on the pool are answered on that
 * transport too. */
static void t_ciba_userinfo(void) {
  char id[128], at[4096], idt[4096];
  json_t *h;
  t_resp r;
  env e;

  T_ASSERT(env_up(&e) == 0);
  http_ver = CURL_HTTP_VERSION_1_1;
  T_EQ_INT(bc_start(&e, AS_OTHER, "scope=openid+profile&login_hint=10000006",
                    id, sizeof(id)),
           200);
  token_wait(&r, &e, AS_OTHER, id);
  T_EQ_INT(r.status, 200);
  snprintf(at, sizeof(at), "%s", jstr(r.json, "access_token") ?: "");
  snprintf(idt, sizeof(idt), "%s", jstr(r.json, "id_token") ?: "");
  t_resp_free(&r);
  h = jwt_part(idt, 0);
  T_EQ_STR(jstr(h, "alg"), "RS256");
  T_EQ_STR(jstr(h, "kid"), gw_signer_kid(e.app.signer, GW_JWS_RS256));
  json_decref(h);
  h = jwt_part(at, 1);
  T_EQ_STR(jstr(h, "aud"), USERINFO);
  json_decref(h);

  userinfo(&r, &e, at);
  T_EQ_INT(r.status, 200);
  T_EQ_STR(keys_of(r.json), "sub,name,phone_number,phone_number_verified");
  T_EQ_STR(jstr(r.json, "sub"), "10000006");
  T_EQ_STR(jstr(r.json, "name"), "Said Al-Busaidi");
  T_EQ_STR(jstr(r.json, "phone_number"), "+96899000006");
  t_resp_free(&r);
  /* POST works too (OpenID Connect Core §5.3.1) */
  {
    char hdr[4200];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", at);
    post_raw(&r, &e, "/userinfo", NULL, "", hdr);
    T_EQ_INT(r.status, 200);
    t_resp_free(&r);
  }
  T_EQ_INT(do_revoke(&e, AS_OTHER, at), 200);
  userinfo(&r, &e, at);
  T_ASSERT(oauth_err(&r, 401, "invalid_token"));
  t_resp_free(&r);
  env_down(&e);
}

/* The officer scope for a listed civil number through the portal. */
static void t_officer(void) {
  char id[128];
  t_resp r;
  env e;

  T_ASSERT(env_up(&e) == 0);
  T_EQ_INT(
      bc_start(&e, AS_PORTAL,
               "scope=openid+licensing+licensing.officer&login_hint=" OFFICER
               "&resource=" RS_LIC_Q,
               id, sizeof(id)),
      200);
  token_wait(&r, &e, AS_PORTAL, id);
  T_EQ_INT(r.status, 200);
  T_EQ_STR(jstr(r.json, "scope"), "openid licensing licensing.officer");
  t_resp_free(&r);
  env_down(&e);
}

/* Tokens made here: what the verifier refuses, and the rules of who may
 * introspect what. */
static void t_minted(void) {
  char *ok, *rs, *tok;
  json_t *p;
  mint_opt m;
  t_resp r;
  env e;

  T_ASSERT(env_up(&e) == 0);
  mint_defaults(&m);
  ok = mint(&e, &m);
  T_ASSERT(ok != NULL);
  T_EQ_INT(active(&e, AS_RP, ok), 1);
  T_EQ_INT(active(&e, AS_OTHER, ok), 0);
  T_EQ_INT(active(&e, AS_RS, ok), 0); /* aud is not one of its resources */
  userinfo(&r, &e, ok);
  T_EQ_INT(r.status, 200);
  T_EQ_STR(jstr(r.json, "name"), "Said Al-Busaidi");
  t_resp_free(&r);

  /* RS256 access tokens verify as well; the RS sees its audience */
  m.alg = GW_JWS_RS256;
  m.aud = RS_LIC;
  rs = mint(&e, &m);
  T_EQ_INT(active(&e, AS_RS, rs), 1);
  T_EQ_INT(active(&e, AS_RP, rs), 1);

  /* without profile: sub only */
  mint_defaults(&m);
  m.scope = "openid";
  tok = mint(&e, &m);
  userinfo(&r, &e, tok);
  T_EQ_INT(r.status, 200);
  T_EQ_STR(keys_of(r.json), "sub");
  t_resp_free(&r);
  free(tok);

  /* refused: expired, another issuer, an ID token, no jti */
  mint_defaults(&m);
  m.exp_delta = -5;
  tok = mint(&e, &m);
  T_EQ_INT(active(&e, AS_RP, tok), 0);
  free(tok);
  mint_defaults(&m);
  m.iss = "https://evil.test";
  tok = mint(&e, &m);
  T_EQ_INT(active(&e, AS_RP, tok), 0);
  free(tok);
  mint_defaults(&m);
  m.typ = "JWT";
  tok = mint(&e, &m);
  T_EQ_INT(active(&e, AS_RP, tok), 0);
  userinfo(&r, &e, tok);
  T_ASSERT(oauth_err(&r, 401, "invalid_token"));
  t_resp_free(&r);
  free(tok);
  mint_defaults(&m);
  m.no_jti = 1;
  tok = mint(&e, &m);
  T_EQ_INT(active(&e, AS_RP, tok), 0);
  free(tok);

  /* alg none, HS256 with the public kid, a tampered payload */
  p = jwt_part(ok, 1);
  T_ASSERT(p != NULL);
  tok = forge("{\"alg\":\"none\",\"typ\":\"at+jwt\"}", p, "");
  T_EQ_INT(active(&e, AS_RP, tok), 0);
  userinfo(&r, &e, tok);
  T_ASSERT(oauth_err(&r, 401, "invalid_token"));
  t_resp_free(&r);
  free(tok);
  {
    char hdr[256];
    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"HS256\",\"typ\":\"at+jwt\","
             "\"kid\":\"%s\"}",
             gw_signer_kid(e.app.signer, GW_JWS_ES256));
    tok = forge(hdr, p, "c2lnbmF0dXJl");
    T_EQ_INT(active(&e, AS_RP, tok), 0);
    free(tok);
  }
  json_object_set_new(p, "sub", json_string("10000001"));
  {
    json_t *hd = jwt_part(ok, 0);
    char *hs = json_dumps(hd, JSON_COMPACT);
    tok = forge(hs, p, strrchr(ok, '.') + 1);
    T_EQ_INT(active(&e, AS_RP, tok), 0);
    userinfo(&r, &e, tok);
    T_ASSERT(oauth_err(&r, 401, "invalid_token"));
    t_resp_free(&r);
    free(tok);
    free(hs);
    json_decref(hd);
  }
  json_decref(p);

  /* /userinfo without a token; /introspect without one or unauthenticated */
  get(&r, &e, "/userinfo", NULL);
  T_EQ_INT(r.status, 401);
  T_EQ_STR(t_resp_hdr(&r, "www-authenticate"), "Bearer realm=\"mpkigw\"");
  t_resp_free(&r);
  get(&r, &e, "/userinfo", "Authorization: Basic ZGVtby1ycDp3cm9uZw==");
  T_EQ_INT(r.status, 401);
  t_resp_free(&r);
  post(&r, &e, "/introspect", AS_RP);
  T_ASSERT(oauth_err(&r, 400, "invalid_request"));
  t_resp_free(&r);
  introspect(&r, &e, "client_id=demo-rp&client_secret=nope", ok);
  T_ASSERT(oauth_err(&r, 401, "invalid_client"));
  t_resp_free(&r);
  post_raw(&r, &e, "/introspect", "text/plain", "token=x", NULL);
  T_ASSERT(oauth_err(&r, 415, "invalid_request"));
  t_resp_free(&r);
  T_EQ_INT(do_revoke(&e, "client_id=demo-rp&client_secret=nope", ok), -401);
  free(ok);
  free(rs);
  env_down(&e);
}

/* A provider with no parts: 503, never a crash. */
static void t_unavailable(void) {
  gw_app app;
  ts_server srv;
  t_resp r;

  memset(&app, 0, sizeof(app));
  T_ASSERT(ts_start_app(&srv, 1, NULL, gw_oidc_register, &app) == 0);
  {
    env e;
    memset(&e, 0, sizeof(e));
    e.srv = srv;
    get(&r, &e, "/.well-known/openid-configuration", NULL);
    T_ASSERT(oauth_err(&r, 503, "temporarily_unavailable"));
    t_resp_free(&r);
    get(&r, &e, "/jwks.json", NULL);
    T_ASSERT(oauth_err(&r, 503, "temporarily_unavailable"));
    t_resp_free(&r);
    post(&r, &e, "/token", AS_RP "&grant_type=" CIBA "&auth_req_id=x");
    T_ASSERT(oauth_err(&r, 503, "temporarily_unavailable"));
    t_resp_free(&r);
    get(&r, &e, "/userinfo", "Authorization: Bearer x.y.z");
    T_ASSERT(oauth_err(&r, 503, "temporarily_unavailable"));
    t_resp_free(&r);
  }
  ts_stop(&srv);
}

int main(void) {
  const char *b = getenv("BUILD");
  char tmpl[] = "/tmp/gw_oidc_test.XXXXXX", p1[PATH_MAX + 32],
       p2[PATH_MAX + 32];
  int ok;

  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  gw_log_open(NULL, GW_LOG_ERROR);
  T_RUN_CHILD(t_unavailable);
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
  T_RUN_CHILD(t_discovery_jwks);
  T_RUN_CHILD(t_bc_refusals);
  T_RUN_CHILD(t_token_errors);
  T_RUN_CHILD(t_ciba_tokens);
  T_RUN_CHILD(t_ciba_userinfo);
  T_RUN_CHILD(t_officer);
  T_RUN_CHILD(t_minted);
  free(es_pem);
  free(rs_pem);
  curl_global_cleanup();
  return T_DONE();
}
