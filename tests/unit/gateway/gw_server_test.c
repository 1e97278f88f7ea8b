/* gw_server_test.c — the in-process server (gateway/gw_server.c with
 * gw_http.c, gw_h1.c, gw_h2.c and gw_handlers.c) driven by libcurl.
 *
 * Each server gets a fresh mkdtemp() directory with a self-signed P-256
 * certificate made with the OpenSSL API (subjectAltName 127.0.0.1, so that
 * curl verifies it with CURLOPT_CAINFO) and a config file; the listen ports
 * are 0, read back with gw_server_port(). Test routes live in this file.
 *
 * Each test runs in a child process (T_RUN_CHILD) with its own server, so
 * that a server crash fails that test alone and LeakSanitizer checks each
 * test's process at exit. Every wait is bounded (curl timeouts, polling
 * with deadlines, a per-child time limit). */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_form.h"
#include "gw_handlers.h"
#include "gw_http.h"
#include "gw_log.h"
#include "gw_router.h"
#include "gw_server.h"
#include "harness.h"

/* ---- time ------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  nanosleep(&ts, NULL);
}

/* Polls |flag| until it is non-zero or |ms| pass. Returns the flag. */
static int wait_flag(atomic_int *flag, int ms) {
  double end = now_ms() + ms;

  while (!atomic_load(flag) && now_ms() < end) {
    sleep_ms(5);
  }
  return atomic_load(flag);
}

/* ---- test server ------------------------------------------------------ */

typedef struct tserver {
  char dir[64];
  char cert[128];
  gw_config *cfg;
  gw_router *router;
  gw_server *srv;
  int port, h2c_port;
} tserver;

/* Writes a self-signed P-256 certificate and its key into |dir|. */
static int write_cert(const char *dir, char *cert_path, size_t cap) {
  char path[256];
  EVP_PKEY *pk = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  X509_NAME *n;
  X509_EXTENSION *ext;
  X509V3_CTX ctx;
  FILE *f;
  int ok = 0;

  if (!pk || !x) {
    goto done;
  }
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, pk);
  n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                             (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, n);
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name,
                            "DNS:localhost,IP:127.0.0.1");
  if (!ext) {
    goto done;
  }
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  if (!X509_sign(x, pk, EVP_sha256())) {
    goto done;
  }
  snprintf(cert_path, cap, "%s/cert.pem", dir);
  f = fopen(cert_path, "w");
  if (!f) {
    goto done;
  }
  ok = PEM_write_X509(f, x);
  fclose(f);
  snprintf(path, sizeof(path), "%s/key.pem", dir);
  f = fopen(path, "w");
  if (!f) {
    ok = 0;
    goto done;
  }
  ok = ok && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
  fclose(f);
done:
  EVP_PKEY_free(pk);
  X509_free(x);
  return ok;
}

static void rm_dir(const char *dir) {
  static const char *files[] = {"cert.pem", "key.pem", "t.conf"};
  char path[256];

  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* Starts a server with |workers| threads; |tweak| may change the loaded
 * config (limits below the file's minimums, for instance) and |routes| adds
 * the test routes. Returns 0 or -1 (printed). */
static int tserver_start(tserver *t, int workers, void (*tweak)(gw_config *),
                         int (*routes)(gw_router *)) {
  char path[256], err[512];
  FILE *f;

  memset(t, 0, sizeof(*t));
  snprintf(t->dir, sizeof(t->dir), "/tmp/gw-srv-test.XXXXXX");
  if (!mkdtemp(t->dir) || !write_cert(t->dir, t->cert, sizeof(t->cert))) {
    printf("#   cannot make the test directory or certificate\n");
    return -1;
  }
  snprintf(path, sizeof(path), "%s/t.conf", t->dir);
  f = fopen(path, "w");
  if (!f) {
    printf("#   cannot write %s\n", path);
    return -1;
  }
  fprintf(f,
          "server: { listen = \"127.0.0.1:1\"; h2c_listen = \"127.0.0.1:2\";\n"
          "  workers = %d; shutdown_grace_ms = 500; };\n"
          "tls: { certificate = \"cert.pem\"; private_key = \"key.pem\"; };\n"
          "log: { level = \"warn\"; access = false; };\n",
          workers);
  fclose(f);
  if (gw_config_load(&t->cfg, path, err, sizeof(err)) != GW_OK) {
    printf("#   config: %s\n", err);
    return -1;
  }
  /* Port 0 (any free port) is below the file's minimum of 1. */
  t->cfg->listen_port = 0;
  t->cfg->h2c_port = 0;
  if (tweak) {
    tweak(t->cfg);
  }
  if (gw_router_new(&t->router) != GW_OK ||
      gw_handlers_register(t->router) != GW_OK ||
      (routes && routes(t->router) != GW_OK)) {
    printf("#   router set-up failed\n");
    return -1;
  }
  if (gw_server_new(&t->srv, t->cfg, t->router, t, err, sizeof(err)) != GW_OK) {
    printf("#   gw_server_new: %s\n", err);
    return -1;
  }
  t->port = gw_server_port(t->srv, 0);
  t->h2c_port = gw_server_port(t->srv, 1);
  if (gw_server_start(t->srv) != GW_OK) {
    printf("#   gw_server_start failed\n");
    gw_server_del(t->srv);
    t->srv = NULL;
    return -1;
  }
  return 0;
}

/* Shuts down (if still running), joins and frees. */
static void tserver_stop(tserver *t) {
  if (t->srv) {
    gw_server_shutdown(t->srv);
    gw_server_join(t->srv);
    gw_server_del(t->srv);
    t->srv = NULL;
  }
  gw_router_del(t->router);
  t->router = NULL;
  gw_config_del(t->cfg);
  t->cfg = NULL;
  if (t->dir[0]) {
    rm_dir(t->dir);
  }
}

/* ---- libcurl client --------------------------------------------------- */

typedef struct resp {
  CURLcode rc;
  long status;
  long version; /* CURL_HTTP_VERSION_* from CURLINFO_HTTP_VERSION */
  long nconnects;
  double ms;
  char body[65536];
  size_t blen;
  char hdr[16384]; /* every header line as received */
  size_t hlen;
  json_t *json; /* the body parsed, when it is JSON */
} resp;

typedef struct upload {
  const char *p;
  size_t left;
  size_t chunk;
} upload;

static size_t on_body(char *p, size_t sz, size_t n, void *arg) {
  resp *r = arg;
  size_t len = sz * n, room = sizeof(r->body) - 1 - r->blen;

  if (len > room) {
    len = room;
  }
  memcpy(r->body + r->blen, p, len);
  r->blen += len;
  r->body[r->blen] = '\0';
  return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg) {
  resp *r = arg;
  size_t len = sz * n, room = sizeof(r->hdr) - 1 - r->hlen;

  /* Only the final response's headers (after a 100 Continue). */
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    r->hlen = 0;
  }
  if (len > room) {
    len = room;
  }
  memcpy(r->hdr + r->hlen, p, len);
  r->hlen += len;
  r->hdr[r->hlen] = '\0';
  return sz * n;
}

static size_t on_read(char *buf, size_t sz, size_t n, void *arg) {
  upload *u = arg;
  size_t len = sz * n;

  if (len > u->chunk) {
    len = u->chunk;
  }
  if (len > u->left) {
    len = u->left;
  }
  memcpy(buf, u->p, len);
  u->p += len;
  u->left -= len;
  return len;
}

/* The value of response header |name| (static), or NULL. */
static const char *hdr_get(const resp *r, const char *name) {
  static char v[1024];
  size_t nlen = strlen(name);
  const char *p = r->hdr;

  while (*p) {
    const char *e = strstr(p, "\r\n");
    if (!e) {
      break;
    }
    if ((size_t)(e - p) > nlen && strncasecmp(p, name, nlen) == 0 &&
        p[nlen] == ':') {
      const char *s = p + nlen + 1;
      size_t len;
      while (*s == ' ') {
        s++;
      }
      len = (size_t)(e - s);
      if (len >= sizeof(v)) {
        len = sizeof(v) - 1;
      }
      memcpy(v, s, len);
      v[len] = '\0';
      return v;
    }
    p = e + 2;
  }
  return NULL;
}

typedef struct reqopt {
  const char *method; /* NULL: GET, or POST with a body */
  const char *body;
  long blen;
  int chunked; /* send the body without a length */
  int head;
  long timeout_ms; /* 0: 5000 */
  const char *headers[40];
  int h2c; /* cleartext prior-knowledge HTTP/2 */
} reqopt;

static void resp_free(resp *r) {
  json_decref(r->json);
  r->json = NULL;
}

/* Prepares |e| for one request to |t| (the caller adds |r| results). */
static struct curl_slist *setup_easy(CURL *e, const tserver *t, long ver,
                                     const char *path, const reqopt *o, resp *r,
                                     upload *u) {
  char url[512];
  struct curl_slist *hl = NULL;

  if (o && o->h2c) {
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", t->h2c_port, path);
  } else {
    snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", t->port, path);
  }
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CAINFO, t->cert);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, ver);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (getenv("CURL_VERBOSE")) {
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
  }
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                   o && o->timeout_ms ? o->timeout_ms : 5000L);
  if (o && o->body) {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    if (o->chunked) {
      u->p = o->body;
      u->left = (size_t)o->blen;
      u->chunk = 300;
      curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(e, CURLOPT_READDATA, u);
    } else {
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->body);
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, o->blen);
    }
  }
  if (o && o->method) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
  }
  if (o && o->head) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  }
  for (int i = 0; o && i < 40 && o->headers[i]; i++) {
    hl = curl_slist_append(hl, o->headers[i]);
  }
  if (hl) {
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
  }
  return hl;
}

static void finish_resp(CURL *e, resp *r) {
  json_error_t je;

  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &r->version);
  curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &r->nconnects);
  r->json = r->blen ? json_loadb(r->body, r->blen, 0, &je) : NULL;
}

/* One request with a fresh easy handle (a fresh connection). */
static void do_req(resp *r, const tserver *t, long ver, const char *path,
                   const reqopt *o) {
  CURL *e = curl_easy_init();
  struct curl_slist *hl;
  upload u;
  double t0 = now_ms();

  memset(r, 0, sizeof(*r));
  if (!e) {
    r->rc = CURLE_FAILED_INIT;
    return;
  }
  hl = setup_easy(e, t, ver, path, o, r, &u);
  r->rc = curl_easy_perform(e);
  r->ms = now_ms() - t0;
  finish_resp(e, r);
  curl_slist_free_all(hl);
  curl_easy_cleanup(e);
}

#define H1 CURL_HTTP_VERSION_1_1
#define H2 CURL_HTTP_VERSION_2TLS

/* String member |k| of the response JSON, or NULL. */
static const char *jstr(const resp *r, const char *k) {
  return json_string_value(json_object_get(r->json, k));
}

static const char *jpath(const resp *r, const char *k1, const char *k2) {
  return json_string_value(json_object_get(json_object_get(r->json, k1), k2));
}

/* Checks a JSON error answer {"error": code, "message": "..."}. */
static int is_error(const resp *r, long status, const char *code) {
  const char *e = jstr(r, "error"), *m = jstr(r, "message");
  const char *ct = hdr_get(r, "content-type");

  if (r->rc != CURLE_OK || r->status != status || !e || strcmp(e, code) || !m ||
      !ct || strcmp(ct, "application/json") || json_object_size(r->json) != 2) {
    printf("#   expected %ld %s; got rc=%d (%s) status %ld body %.300s\n",
           status, code, r->rc, curl_easy_strerror(r->rc), r->status, r->body);
    return 0;
  }
  return 1;
}

/* ---- routes ----------------------------------------------------------- */

static atomic_int cancel_ran;    /* /cancel-probe's cancel callback */
static atomic_int probe_started; /* /cancel-probe's handler ran */
static atomic_int async_cancelled;
static gw_exch *async_x; /* touched on the (single) worker only */
static atomic_int async_waiting;

static void on_probe_cancel(void *arg) {
  (void)arg;
  atomic_store(&cancel_ran, 1);
}

static void h_echo(gw_exch *x) {
  gw_req *r = gw_exch_req(x);
  gw_form f;
  json_t *q = json_object(), *o;

  memset(&f, 0, sizeof(f));
  if (gw_req_query(r, &f) != GW_OK) {
    gw_form_free(&f);
    json_decref(q);
    gw_resp_error(x, 400, "invalid_query", "the query string is malformed");
    return;
  }
  for (size_t i = 0; i < f.npairs; i++) {
    json_object_set_new(q, f.pairs[i].name, json_string(f.pairs[i].value));
  }
  gw_form_free(&f);
  o = json_pack("{s:s, s:o, s:s, s:s, s:s?, s:s}", "id",
                gw_route_param(&r->match, "id"), "query", q, "method",
                r->method, "proto", r->proto == GW_PROTO_H2 ? "h2" : "http/1.1",
                "authority", r->authority, "path", r->path);
  gw_resp_header(x, "x-echo", "1");
  gw_resp_json(x, 200, o);
}

static void h_body(gw_exch *x) {
  gw_req *r = gw_exch_req(x);
  const char *ct = gw_req_header(r, "content-type");
  json_t *o = json_pack("{s:I, s:s?}", "length", (json_int_t)r->body.len,
                        "content_type", ct);

  if (ct && strncmp(ct, "application/x-www-form-urlencoded", 33) == 0) {
    gw_form f;
    json_t *fo = json_object();
    memset(&f, 0, sizeof(f));
    if (gw_form_parse(&f, r->body.data ? r->body.data : "", r->body.len) !=
        GW_OK) {
      gw_form_free(&f);
      json_decref(fo);
      json_decref(o);
      gw_resp_error(x, 400, "invalid_form", "the form body is malformed");
      return;
    }
    for (size_t i = 0; i < f.npairs; i++) {
      json_object_set_new(fo, f.pairs[i].name, json_string(f.pairs[i].value));
    }
    gw_form_free(&f);
    json_object_set_new(o, "form", fo);
  }
  gw_resp_json(x, 200, o);
}

static void on_async_cancel(void *arg) {
  (void)arg;
  async_x = NULL;
  atomic_store(&async_waiting, 0);
  atomic_store(&async_cancelled, 1);
}

static void h_async(gw_exch *x) {
  if (async_x) {
    gw_resp_error(x, 409, "busy", "one /async at a time");
    return;
  }
  async_x = x;
  gw_exch_on_cancel(x, on_async_cancel, NULL);
  atomic_store(&async_waiting, 1);
}

static void h_release(gw_exch *x) {
  gw_exch *a = async_x;

  if (!a) {
    gw_resp_error(x, 404, "nothing_waiting", "no /async request is waiting");
    return;
  }
  async_x = NULL;
  atomic_store(&async_waiting, 0);
  gw_resp_json(a, 200, json_pack("{s:b}", "released", 1));
  gw_resp_json(x, 200, json_pack("{s:b}", "release", 1));
}

static void h_probe(gw_exch *x) {
  gw_exch_on_cancel(x, on_probe_cancel, NULL);
  atomic_store(&probe_started, 1);
}

static int add_routes(gw_router *r) {
  int rv = gw_router_add(r, "GET", "/echo/{id}", h_echo, 0, "echo");

  rv = rv ? rv : gw_router_add(r, "POST", "/body", h_body, 1024, "body");
  rv = rv ? rv : gw_router_add(r, "GET", "/async", h_async, 0, "async");
  rv = rv ? rv : gw_router_add(r, "GET", "/release", h_release, 0, "release");
  rv = rv ? rv : gw_router_add(r, "GET", "/cancel-probe", h_probe, 0, "probe");
  return rv;
}

/* ---- running each test in a child process ---------------------------- */

/* Runs |fn| in a child; fails when the child fails a check, dies of a
 * signal (a crash in the in-process server), exits non-zero (a sanitizer
 * report) or outlives |limit_s| seconds (then it is killed). */
static void run_child(void (*fn)(void), int limit_s) {
  double end = now_ms() + limit_s * 1000.0;
  int status = 0;
  pid_t pid, w;

  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) {
    printf("#   fork: %s\n", strerror(errno));
    t_case_failed = 1;
    return;
  }
  if (pid == 0) {
    t_case_failed = 0;
    alarm((unsigned)limit_s + 5);
    fn();
    fflush(stdout);
    /* 3, not 1: sanitizers exit with 1. */
    exit(t_case_failed ? 3 : 0);
  }
  while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < end) {
    sleep_ms(10);
  }
  if (w == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    printf("#   test process killed after %d s (hang)\n", limit_s);
    t_case_failed = 1;
  } else if (WIFSIGNALED(status)) {
    printf("#   test process died of signal %d (%s): the in-process server "
           "crashed\n",
           WTERMSIG(status), strsignal(WTERMSIG(status)));
    t_case_failed = 1;
  } else if (WEXITSTATUS(status) == 3) {
    t_case_failed = 1; /* the child printed its failed checks */
  } else if (WEXITSTATUS(status) != 0) {
    printf("#   test process exited with status %d (sanitizer report on "
           "stderr?)\n",
           WEXITSTATUS(status));
    t_case_failed = 1;
  }
}

#define T_RUN_CHILD(fn)                                                        \
  do {                                                                         \
    t_case_failed = 0;                                                         \
    run_child(fn, 30);                                                         \
    printf("%s - %s\n", t_case_failed ? "not ok" : "ok", #fn);                 \
    fflush(stdout);                                                            \
    t_failed_total += t_case_failed;                                           \
  } while (0)

/* Starts the usual server (2 workers) into |t|; fails the test if not. */
static int up(tserver *t) {
  if (tserver_start(t, 2, NULL, add_routes) != 0) {
    t_case_failed = 1;
    return 0;
  }
  return 1;
}

static void check_security_headers(const resp *r, int tls) {
  const char *v;

  T_EQ_STR(hdr_get(r, "x-content-type-options"), "nosniff");
  T_EQ_STR(hdr_get(r, "referrer-policy"), "no-referrer");
  T_EQ_STR(hdr_get(r, "cache-control"), "no-store");
  T_EQ_STR(hdr_get(r, "content-security-policy"),
           "default-src 'none'; frame-ancestors 'none'");
  v = hdr_get(r, "strict-transport-security");
  if (tls) {
    T_EQ_STR(v, "max-age=63072000; includeSubDomains");
  } else {
    T_ASSERT(v == NULL);
  }
  T_EQ_STR(hdr_get(r, "server"), "mpkigw");
  T_ASSERT(hdr_get(r, "date") != NULL);
}

static const long both[] = {H1, H2};

/* ---- tests ------------------------------------------------------------ */

static void test_start_stop(void) {
  tserver t;

  if (!up(&t)) {
    return;
  }
  T_ASSERT(t.port > 0);
  T_ASSERT(t.h2c_port > 0 && t.h2c_port != t.port);
  T_EQ_INT(gw_server_healthy(t.srv), 0); /* until housekeeping says so */
  tserver_stop(&t);
  /* Shutdown, join and del without any traffic, and del of NULL. */
  gw_server_del(NULL);
}

static void test_echo(void) {
  tserver t;
  resp r;

  if (!up(&t)) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    do_req(&r, &t, both[i], "/echo/caf%C3%A9%20x?a=1&b=x%20y+z&c", NULL);
    T_EQ_INT(r.rc, CURLE_OK);
    T_EQ_INT(r.status, 200);
    T_EQ_INT(r.version,
             both[i] == H1 ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2_0);
    T_EQ_STR(jstr(&r, "id"), "caf\xc3\xa9 x");
    T_EQ_STR(jstr(&r, "path"), "/echo/caf%C3%A9%20x");
    T_EQ_STR(jstr(&r, "method"), "GET");
    T_EQ_STR(jstr(&r, "proto"), both[i] == H1 ? "http/1.1" : "h2");
    T_ASSERT(jstr(&r, "authority") != NULL &&
             strncmp(jstr(&r, "authority"), "127.0.0.1:", 10) == 0);
    T_EQ_STR(jpath(&r, "query", "a"), "1");
    T_EQ_STR(jpath(&r, "query", "b"), "x y z");
    T_EQ_STR(jpath(&r, "query", "c"), "");
    T_EQ_STR(hdr_get(&r, "content-type"), "application/json");
    T_EQ_STR(hdr_get(&r, "x-echo"), "1");
    {
      char n[16];
      snprintf(n, sizeof(n), "%zu", r.blen);
      T_EQ_STR(hdr_get(&r, "content-length"), n);
    }
    check_security_headers(&r, 1);
    resp_free(&r);

    /* No query at all. */
    do_req(&r, &t, both[i], "/echo/plain", NULL);
    T_EQ_INT(r.status, 200);
    T_EQ_STR(jstr(&r, "id"), "plain");
    T_EQ_INT(json_object_size(json_object_get(r.json, "query")), 0);
    resp_free(&r);

    /* A bad escape in the query: the handler's 400. */
    do_req(&r, &t, both[i], "/echo/1?a=%zz", NULL);
    T_ASSERT(is_error(&r, 400, "invalid_query"));
    resp_free(&r);
  }
  tserver_stop(&t);
}

/* Answers given from the headers alone, before any handler: 404, 405 with
 * Allow, 400 for a bad path, HEAD of a missing resource, a body sent to a
 * 405. Over HTTP/2 here, over HTTP/1.1 in the regression test below. */
static void early_answers(tserver *t, long ver) {
  reqopt o;
  resp r;

  do_req(&r, t, ver, "/nope", NULL);
  T_ASSERT(is_error(&r, 404, "not_found"));
  check_security_headers(&r, 1);
  resp_free(&r);

  do_req(&r, t, ver, "/echo", NULL); /* a parameter is non-empty */
  T_ASSERT(is_error(&r, 404, "not_found"));
  resp_free(&r);

  memset(&o, 0, sizeof(o));
  o.method = "DELETE";
  do_req(&r, t, ver, "/echo/1", &o);
  T_ASSERT(is_error(&r, 405, "method_not_allowed"));
  T_EQ_STR(hdr_get(&r, "allow"), "GET, HEAD");
  resp_free(&r);

  memset(&o, 0, sizeof(o));
  do_req(&r, t, ver, "/body", &o);
  T_ASSERT(is_error(&r, 405, "method_not_allowed"));
  T_EQ_STR(hdr_get(&r, "allow"), "POST");
  resp_free(&r);

  /* A parameter decoding to '/' or "..", a bad escape in the path. */
  do_req(&r, t, ver, "/echo/a%2Fb", NULL);
  T_ASSERT(is_error(&r, 400, "invalid_path"));
  check_security_headers(&r, 1);
  resp_free(&r);
  do_req(&r, t, ver, "/echo/%2e%2e", NULL);
  T_ASSERT(is_error(&r, 400, "invalid_path"));
  resp_free(&r);
  do_req(&r, t, ver, "/echo/%zz", NULL);
  T_ASSERT(is_error(&r, 400, "invalid_path"));
  resp_free(&r);

  /* HEAD of an unknown path: 404 without a body. */
  memset(&o, 0, sizeof(o));
  o.head = 1;
  do_req(&r, t, ver, "/nope", &o);
  T_EQ_INT(r.rc, CURLE_OK);
  T_EQ_INT(r.status, 404);
  T_EQ_INT(r.blen, 0);
  resp_free(&r);

  /* A body sent to a 405: answered, body discarded. */
  memset(&o, 0, sizeof(o));
  o.body = "x";
  o.blen = 1;
  do_req(&r, t, ver, "/echo/1", &o);
  T_ASSERT(is_error(&r, 405, "method_not_allowed"));
  resp_free(&r);
}

static void test_early_answers_h2(void) {
  tserver t;

  if (!up(&t)) {
    return;
  }
  early_answers(&t, H2);
  tserver_stop(&t);
}

/* Regression (fixed in 3a19fad): over HTTP/1.1 a request without a body
 * answered from its headers (404, 405, 400 invalid_path, 400/414/431
 * rejections) made gw_h1_submit() pause the parser inside
 * on_headers_complete; h1_process() then finished the exchange (h1x =
 * NULL) and resumed the parser, whose on_message_complete() called
 * gw_exch_request_done(NULL): SIGSEGV. Any "GET /nope" killed the server. */
static void test_regress_h1_early_answer_without_body(void) {
  tserver t;
  resp r;

  if (!up(&t)) {
    return;
  }
  early_answers(&t, H1);
  /* The server is still there afterwards. */
  do_req(&r, &t, H1, "/echo/after", NULL);
  T_EQ_INT(r.status, 200);
  resp_free(&r);
  tserver_stop(&t);
}

static void test_head(void) {
  tserver t;
  reqopt o;
  resp r, g;

  if (!up(&t)) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    do_req(&g, &t, both[i], "/echo/h", NULL);
    memset(&o, 0, sizeof(o));
    o.head = 1;
    do_req(&r, &t, both[i], "/echo/h", &o);
    T_EQ_INT(r.rc, CURLE_OK);
    T_EQ_INT(r.status, 200);
    T_EQ_INT(r.blen, 0);
    /* The GET handler answers HEAD (it sees method HEAD, so its body and
     * length differ by that word): a length, a type, no body. */
    T_ASSERT(hdr_get(&r, "content-length") != NULL &&
             atoi(hdr_get(&r, "content-length")) == (int)g.blen + 1);
    T_EQ_STR(hdr_get(&r, "content-type"), "application/json");
    check_security_headers(&r, 1);
    resp_free(&r);
    resp_free(&g);
  }
  tserver_stop(&t);
}

static char big_body[4096];

static void test_body(void) {
  tserver t;
  reqopt o;
  resp r;

  if (!up(&t)) {
    return;
  }
  memset(big_body, 'b', sizeof(big_body));
  for (int i = 0; i < 2; i++) {
    for (int chunked = 0; chunked < 2; chunked++) {
      memset(&o, 0, sizeof(o));
      o.body = "a=1&b=x%20y+z&c=%C3%A9";
      o.blen = (long)strlen(o.body);
      o.chunked = chunked;
      o.headers[0] = "Content-Type: application/x-www-form-urlencoded";
      do_req(&r, &t, both[i], "/body", &o);
      T_EQ_INT(r.rc, CURLE_OK);
      T_EQ_INT(r.status, 200);
      T_EQ_INT(json_integer_value(json_object_get(r.json, "length")), o.blen);
      T_EQ_STR(jstr(&r, "content_type"), "application/x-www-form-urlencoded");
      T_EQ_STR(jpath(&r, "form", "a"), "1");
      T_EQ_STR(jpath(&r, "form", "b"), "x y z");
      T_EQ_STR(jpath(&r, "form", "c"), "\xc3\xa9");
      resp_free(&r);

      /* Exactly the limit. */
      o.body = big_body;
      o.blen = 1024;
      o.headers[0] = "Content-Type: application/octet-stream";
      do_req(&r, &t, both[i], "/body", &o);
      T_EQ_INT(r.status, 200);
      T_EQ_INT(json_integer_value(json_object_get(r.json, "length")), 1024);
      T_EQ_STR(jstr(&r, "content_type"), "application/octet-stream");
      resp_free(&r);

      /* Malformed form. */
      o.body = "a=%zz";
      o.blen = 5;
      o.headers[0] = "Content-Type: application/x-www-form-urlencoded";
      do_req(&r, &t, both[i], "/body", &o);
      T_ASSERT(is_error(&r, 400, "invalid_form"));
      resp_free(&r);
    }
    /* Empty body, no Content-Type (curl's default one removed). */
    memset(&o, 0, sizeof(o));
    o.body = "";
    o.blen = 0;
    o.headers[0] = "Content-Type:";
    do_req(&r, &t, both[i], "/body", &o);
    T_EQ_INT(r.status, 200);
    T_EQ_INT(json_integer_value(json_object_get(r.json, "length")), 0);
    T_ASSERT(json_is_null(json_object_get(r.json, "content_type")));
    resp_free(&r);
  }
  tserver_stop(&t);
}

/* POSTs |n| bytes to /body (cap 1024), with Content-Length or without
 * (chunked over HTTP/1.1; DATA without content-length over HTTP/2), with
 * or without "Expect: 100-continue" (curl adds it by itself to HTTP/1.1
 * bodies over 1 KiB; without it the body is on its way when the 413
 * comes). Checks the 413 JSON answer. */
static int post_too_large(const tserver *t, long ver, int chunked, int expect,
                          long n) {
  reqopt o;
  resp r;
  int ok;

  memset(big_body, 'b', sizeof(big_body));
  memset(&o, 0, sizeof(o));
  o.body = big_body;
  o.blen = n;
  o.chunked = chunked;
  o.headers[0] = expect ? "Expect: 100-continue" : "Expect:";
  do_req(&r, t, ver, "/body", &o);
  ok = r.status == 413 && jstr(&r, "error") &&
       strcmp(jstr(&r, "error"), "body_too_large") == 0 &&
       hdr_get(&r, "x-content-type-options") != NULL;
  if (!ok && ver == H1) {
    is_error(&r, 413, "body_too_large"); /* prints what came */
    printf("#   ^ %s, %s, %ld bytes\n",
           chunked ? "no length" : "content-length",
           expect ? "expect 100-continue" : "no expect", n);
  } else if (!ok && getenv("GW_TEST_VERBOSE")) {
    printf("#   h2 %s %s: curl rc %d (%s), status %ld\n",
           chunked ? "no length" : "content-length",
           expect ? "expect 100-continue" : "no expect", r.rc,
           curl_easy_strerror(r.rc), r.status);
  }
  resp_free(&r);
  return ok;
}

/* HTTP/1.1 with Content-Length: refused from the headers, with and without
 * "Expect: 100-continue". (A streamed body refused at the cap is in
 * gw_h1_test: curl loses that 413 now and then, see
 * test_regress_h1_413_lost_to_reset there.) */
static void test_body_too_large_h1(void) {
  tserver t;

  if (!up(&t)) {
    return;
  }
  for (int expect = 0; expect < 2; expect++) {
    T_ASSERT(post_too_large(&t, H1, 0, expect, 1025));
    T_ASSERT(post_too_large(&t, H1, 0, expect, 4000));
  }
  tserver_stop(&t);
}

/* HTTP/2: a 413 answered before the whole body arrived is followed by
 * RST_STREAM(NO_ERROR) (gw_h2.c on_frame_send). When HEADERS, DATA and
 * that RST_STREAM reach curl 7.88 (Debian 12's libcurl) in one read, curl
 * drops the response: CURLE_HTTP2_STREAM (92) or CURLE_GOT_NOTHING (52),
 * status 0. Always with "Expect: 100-continue", about one time in three
 * without. RFC 9113 §8.1 allows the reset; the client is at fault, but the
 * 413 never reaches Debian's own curl. */
static void test_regress_h2_413_reset_hides_response(void) {
  tserver t;
  int fails[3] = {0, 0, 0};

  if (!up(&t)) {
    return;
  }
  for (int i = 0; i < 5; i++) {
    fails[0] += !post_too_large(&t, H2, 0, 0, 1025);
    fails[1] += !post_too_large(&t, H2, 1, 0, 3000);
    fails[2] += !post_too_large(&t, H2, 0, 1, 1025);
  }
  if (fails[0] + fails[1] + fails[2]) {
    printf("#   413s lost by curl, of 5 each: content-length %d, no length "
           "%d, content-length + expect %d (curl said CURLE_HTTP2_STREAM or "
           "CURLE_GOT_NOTHING; GW_TEST_VERBOSE=1 for each)\n",
           fails[0], fails[1], fails[2]);
    t_case_failed = 1;
  }
  tserver_stop(&t);
}

static void test_healthz(void) {
  tserver t;
  resp r;

  if (!up(&t)) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    gw_server_set_healthy(t.srv, 0);
    T_EQ_INT(gw_server_healthy(t.srv), 0);
    do_req(&r, &t, both[i], "/healthz", NULL);
    T_EQ_INT(r.status, 503);
    T_EQ_STR(jstr(&r, "status"), "unavailable");
    T_EQ_STR(jstr(&r, "error"), "store_unavailable");
    check_security_headers(&r, 1);
    resp_free(&r);

    gw_server_set_healthy(t.srv, 7); /* any non-zero is healthy */
    T_EQ_INT(gw_server_healthy(t.srv), 1);
    do_req(&r, &t, both[i], "/healthz", NULL);
    T_EQ_INT(r.status, 200);
    T_EQ_STR(jstr(&r, "status"), "ok");
    resp_free(&r);
  }
  tserver_stop(&t);
}

static void test_metrics(void) {
  tserver t;
  reqopt o;
  resp r;

  if (!up(&t)) {
    return;
  }
  do_req(&r, &t, H2, "/echo/1", NULL);
  resp_free(&r);
  do_req(&r, &t, H1, "/echo/1", NULL);
  resp_free(&r);
  do_req(&r, &t, H2, "/nope", NULL);
  resp_free(&r);
  do_req(&r, &t, H1, "/healthz", NULL);
  resp_free(&r);
  memset(&o, 0, sizeof(o));
  o.body = big_body;
  o.blen = 2000;
  do_req(&r, &t, H2, "/body", &o);
  resp_free(&r);

  do_req(&r, &t, H2, "/metrics", NULL);
  T_EQ_INT(r.status, 200);
  T_EQ_STR(hdr_get(&r, "content-type"),
           "text/plain; version=0.0.4; charset=utf-8");
#define HAS(s) T_ASSERT(strstr(r.body, s) != NULL)
  HAS("mpkigw_http_requests_total{route=\"echo\",status=\"200\","
      "protocol=\"h2\"} 1\n");
  HAS("mpkigw_http_requests_total{route=\"echo\",status=\"200\","
      "protocol=\"http/1.1\"} 1\n");
  HAS("mpkigw_http_requests_total{route=\"unmatched\",status=\"404\","
      "protocol=\"h2\"} 1\n");
  HAS("mpkigw_http_requests_total{route=\"body\",status=\"413\","
      "protocol=\"h2\"} 1\n");
  HAS("mpkigw_http_requests_total{route=\"healthz\",status=\"503\","
      "protocol=\"http/1.1\"} 1\n");
  HAS("mpkigw_http_request_duration_seconds_count 5\n");
  HAS("mpkigw_connections_accepted_total 6\n");
#undef HAS
  /* This request's own connection and stream are open while the page is
   * rendered (earlier connections may still be closing). */
  {
    const char *p = strstr(r.body, "mpkigw_open_connections{protocol=\"h2\"} ");
    const char *q = strstr(r.body, "\nmpkigw_open_streams ");
    T_ASSERT(p && atoi(p + 39) >= 1);
    T_ASSERT(q && atoi(q + 21) >= 1);
  }
  resp_free(&r);
  tserver_stop(&t);
}

/* A plain-HTTP request to the TLS port gets a readable 400. */
static void test_plain_http_on_tls_port(void) {
  struct sockaddr_in sa;
  struct timeval tv = {2, 0};
  char buf[2048];
  size_t got = 0;
  ssize_t n;
  tserver t;
  int fd;

  if (!up(&t)) {
    return;
  }
  fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)t.port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  T_EQ_INT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  T_ASSERT(send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, MSG_NOSIGNAL) ==
           27);
  while (got < sizeof(buf) - 1 &&
         (n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0) {
    got += (size_t)n;
  }
  buf[got] = '\0';
  T_ASSERT(strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
  T_ASSERT(strstr(buf, "\"error\":\"tls_required\"") != NULL);
  T_ASSERT(strstr(buf, "Connection: close") != NULL);
  close(fd);
  tserver_stop(&t);
}

/* The client gives up on a request the handler never answers: the cancel
 * callback runs. */
static void probe_cancel(long ver) {
  tserver t;
  reqopt o;
  resp r;

  if (!up(&t)) {
    return;
  }
  atomic_store(&cancel_ran, 0);
  atomic_store(&probe_started, 0);
  memset(&o, 0, sizeof(o));
  o.timeout_ms = 300;
  do_req(&r, &t, ver, "/cancel-probe", &o);
  T_EQ_INT(r.rc, CURLE_OPERATION_TIMEDOUT);
  T_EQ_INT(atomic_load(&probe_started), 1);
  if (!wait_flag(&cancel_ran, 2000)) {
    printf("#   cancel callback did not run within 2 s of the client "
           "closing\n");
    t_case_failed = 1;
  }
  resp_free(&r);
  tserver_stop(&t);
}

static void test_cancel_h2(void) {
  probe_cancel(H2);
}

/* HTTP/1.1: while a handler works on a request the parser is paused and
 * h1_update_read() disables reading, so a client that closes its
 * connection is not noticed: the cancel callback does not run and the
 * connection (and its exchange) stay until the server shuts down. */
static void test_regress_h1_cancel_on_client_close(void) {
  probe_cancel(H1);
}

/* h2c prior knowledge on the cleartext listener: no HSTS there. */
static void test_h2c(void) {
  tserver t;
  reqopt o;
  resp r;

  if (!up(&t)) {
    return;
  }
  memset(&o, 0, sizeof(o));
  o.h2c = 1;
  do_req(&r, &t, CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, "/echo/c?x=1", &o);
  T_EQ_INT(r.rc, CURLE_OK);
  T_EQ_INT(r.status, 200);
  T_EQ_INT(r.version, CURL_HTTP_VERSION_2_0);
  T_EQ_STR(jstr(&r, "proto"), "h2");
  T_EQ_STR(jpath(&r, "query", "x"), "1");
  check_security_headers(&r, 0);
  resp_free(&r);
  tserver_stop(&t);
}

typedef struct bg_req {
  pthread_t th;
  const tserver *t;
  long ver;
  const char *path;
  long timeout_ms;
  resp r;
} bg_req;

static void *bg_main(void *arg) {
  bg_req *b = arg;
  reqopt o;

  memset(&o, 0, sizeof(o));
  o.timeout_ms = b->timeout_ms;
  do_req(&b->r, b->t, b->ver, b->path, &o);
  return NULL;
}

/* Shuts down with a /cancel-probe in flight: gw_server_join returns within
 * shutdown_grace_ms (500) plus a margin, the cancel callback has run, the
 * client's connection was closed (not left to its 5 s timeout), and the
 * port no longer accepts. */
static void shutdown_with_probe(long ver) {
  tserver t;
  bg_req b;
  double t0, dt;
  resp r;

  if (!up(&t)) {
    return;
  }
  atomic_store(&cancel_ran, 0);
  atomic_store(&probe_started, 0);
  memset(&b, 0, sizeof(b));
  b.t = &t;
  b.ver = ver;
  b.path = "/cancel-probe";
  b.timeout_ms = 5000;
  if (pthread_create(&b.th, NULL, bg_main, &b) != 0) {
    T_ASSERT(0);
    tserver_stop(&t);
    return;
  }
  T_ASSERT(wait_flag(&probe_started, 3000));
  t0 = now_ms();
  gw_server_shutdown(t.srv);
  gw_server_shutdown(t.srv); /* twice is harmless */
  gw_server_join(t.srv);
  dt = now_ms() - t0;
  if (dt > 500 + 700) {
    printf("#   gw_server_join took %.0f ms (grace 500)\n", dt);
    t_case_failed = 1;
  }
  T_EQ_INT(atomic_load(&cancel_ran), 1);
  /* Listeners are closed. */
  do_req(&r, &t, ver, "/healthz", NULL);
  T_EQ_INT(r.rc, CURLE_COULDNT_CONNECT);
  resp_free(&r);
  /* The connections cut off at the end of the grace period are closed by
   * gw_server_del (libevent finalizes the bufferevents when the base is
   * freed), not by gw_server_join. */
  t0 = now_ms();
  gw_server_del(t.srv);
  t.srv = NULL;
  pthread_join(b.th, NULL);
  dt = now_ms() - t0;
  T_ASSERT(b.r.rc != CURLE_OK || b.r.status != 200);
  T_ASSERT(b.r.rc != CURLE_OPERATION_TIMEDOUT);
  if (dt > 1000) {
    printf("#   client still connected %.0f ms after gw_server_del\n", dt);
    t_case_failed = 1;
  }
  resp_free(&b.r);
  tserver_stop(&t);
}

static void test_shutdown_h2(void) {
  shutdown_with_probe(H2);
}

static void test_shutdown_h1(void) {
  shutdown_with_probe(H1);
}

/* Shutdown with idle keep-alive connections and nothing in flight returns
 * at once, not after the grace period. */
static void test_shutdown_idle(void) {
  tserver t;
  CURL *e[2];
  resp r[2];
  upload u;
  double t0, dt;

  if (!up(&t)) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    e[i] = curl_easy_init();
    memset(&r[i], 0, sizeof(r[i]));
    setup_easy(e[i], &t, both[i], "/healthz", NULL, &r[i], &u);
    T_EQ_INT(curl_easy_perform(e[i]), CURLE_OK); /* connection kept */
  }
  t0 = now_ms();
  gw_server_shutdown(t.srv);
  gw_server_join(t.srv);
  dt = now_ms() - t0;
  if (dt > 300) {
    printf("#   idle shutdown took %.0f ms\n", dt);
    t_case_failed = 1;
  }
  for (int i = 0; i < 2; i++) {
    curl_easy_cleanup(e[i]);
  }
  tserver_stop(&t);
}

/* One worker: /async is answered by /release on another connection, which
 * is then on the same worker thread. */
static void test_async(void) {
  tserver t;

  if (tserver_start(&t, 1, NULL, add_routes) != 0) {
    T_ASSERT(0);
    return;
  }
  for (int i = 0; i < 2; i++) {
    bg_req b;
    resp r;

    memset(&b, 0, sizeof(b));
    b.t = &t;
    b.ver = both[i];
    b.path = "/async";
    b.timeout_ms = 5000;
    atomic_store(&async_cancelled, 0);
    if (pthread_create(&b.th, NULL, bg_main, &b) != 0) {
      T_ASSERT(0);
      break;
    }
    T_ASSERT(wait_flag(&async_waiting, 3000));
    sleep_ms(50); /* still waiting, not answered */
    T_EQ_INT(atomic_load(&async_waiting), 1);
    do_req(&r, &t, both[i], "/release", NULL);
    T_EQ_INT(r.status, 200);
    T_ASSERT(json_is_true(json_object_get(r.json, "release")));
    resp_free(&r);
    pthread_join(b.th, NULL);
    T_EQ_INT(b.r.rc, CURLE_OK);
    T_EQ_INT(b.r.status, 200);
    T_ASSERT(json_is_true(json_object_get(b.r.json, "released")));
    check_security_headers(&b.r, 1);
    T_EQ_INT(atomic_load(&async_cancelled), 0);
    resp_free(&b.r);

    /* Nothing waiting now. */
    do_req(&r, &t, both[i], "/release", NULL);
    T_ASSERT(is_error(&r, 404, "nothing_waiting"));
    resp_free(&r);
  }
  tserver_stop(&t);
}

/* ---- connection limits and the handshake timer ------------------------ */

static void tweak_limits(gw_config *c) {
  c->max_connections_per_ip = 2;
  c->handshake_timeout_ms = 300;
}

static int tcp_connect(int port) {
  struct sockaddr_in sa;
  struct timeval tv = {3, 0};
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Milliseconds until the server closes |fd| (reads return 0 or an error),
 * or -1 after the 3 s receive timeout. */
static double ms_until_closed(int fd) {
  double t0 = now_ms();
  char b[256];
  ssize_t n;

  while ((n = recv(fd, b, sizeof(b), 0)) > 0) {
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return -1;
  }
  return now_ms() - t0;
}

static void test_limits(void) {
  tserver t;
  int a, b, c;
  double d;
  resp r;

  if (tserver_start(&t, 2, tweak_limits, add_routes) != 0) {
    T_ASSERT(0);
    return;
  }
  a = tcp_connect(t.port);
  b = tcp_connect(t.port);
  sleep_ms(100); /* accepted by now */
  c = tcp_connect(t.port);
  T_ASSERT(a >= 0 && b >= 0 && c >= 0);
  /* The third from the same address is closed at once. */
  d = ms_until_closed(c);
  T_ASSERT(d >= 0 && d < 250);
  close(c);
  /* The first two are closed by the handshake timer (300 ms). */
  d = ms_until_closed(a);
  T_ASSERT(d >= 0 && d < 1000);
  d = ms_until_closed(b);
  T_ASSERT(d >= 0 && d < 1000);
  close(a);
  close(b);
  sleep_ms(100);
  /* Their slots were given back. */
  do_req(&r, &t, H2, "/healthz", NULL);
  T_EQ_INT(r.rc, CURLE_OK);
  T_EQ_INT(r.status, 503);
  resp_free(&r);
  do_req(&r, &t, H1, "/healthz", NULL);
  T_EQ_INT(r.status, 503);
  resp_free(&r);
  {
    gw_buf out;
    gw_buf_init(&out, 1 << 20);
    T_EQ_INT(gw_server_metrics(t.srv, &out), GW_OK);
    T_ASSERT(strstr(gw_buf_cstr(&out),
                    "mpkigw_connections_rejected_total 1\n") != NULL);
    T_ASSERT(strstr(gw_buf_cstr(&out),
                    "mpkigw_tls_handshake_failures_total 2\n") != NULL);

    gw_buf_free(&out);
  }
  tserver_stop(&t);
}

/* A certificate that does not exist fails gw_server_new with GW_ERR_TLS
 * and a reason; an address that cannot be bound, or a port another server
 * holds (despite SO_REUSEPORT), fails with GW_ERR_IO. */
static void test_new_errors(void) {
  tserver t;
  gw_server *s = NULL;
  char err[512] = "";
  char *saved;

  if (tserver_start(&t, 1, NULL, NULL) != 0) {
    T_ASSERT(0);
    return;
  }
  saved = t.cfg->tls_cert;
  t.cfg->tls_cert = (char *)"/nonexistent/cert.pem";
  T_EQ_INT(gw_server_new(&s, t.cfg, t.router, NULL, err, sizeof(err)),
           GW_ERR_TLS);
  T_ASSERT(s == NULL);
  T_ASSERT(strstr(err, "/nonexistent/cert.pem") != NULL);
  t.cfg->tls_cert = saved;
  saved = t.cfg->listen_host;
  t.cfg->listen_host = (char *)"192.0.2.1"; /* not a local address */
  err[0] = '\0';
  T_EQ_INT(gw_server_new(&s, t.cfg, t.router, NULL, err, sizeof(err)),
           GW_ERR_IO);
  T_ASSERT(s == NULL);
  T_ASSERT(strstr(err, "192.0.2.1") != NULL);
  t.cfg->listen_host = saved;
  t.cfg->listen_port = t.port; /* the running server's */
  err[0] = '\0';
  T_EQ_INT(gw_server_new(&s, t.cfg, t.router, NULL, err, sizeof(err)),
           GW_ERR_IO);
  T_ASSERT(s == NULL);
  T_ASSERT(err[0] != '\0');
  tserver_stop(&t);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  gw_log_open(NULL, GW_LOG_ERROR);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  T_RUN_CHILD(test_start_stop);
  T_RUN_CHILD(test_echo);
  T_RUN_CHILD(test_early_answers_h2);
  T_RUN_CHILD(test_regress_h1_early_answer_without_body);
  T_RUN_CHILD(test_head);
  T_RUN_CHILD(test_body);
  T_RUN_CHILD(test_body_too_large_h1);
  T_RUN_CHILD(test_regress_h2_413_reset_hides_response);
  T_RUN_CHILD(test_healthz);
  T_RUN_CHILD(test_metrics);
  T_RUN_CHILD(test_plain_http_on_tls_port);
  T_RUN_CHILD(test_cancel_h2);
  T_RUN_CHILD(test_regress_h1_cancel_on_client_close);
  T_RUN_CHILD(test_h2c);
  T_RUN_CHILD(test_async);
  T_RUN_CHILD(test_shutdown_h2);
  T_RUN_CHILD(test_shutdown_h1);
  T_RUN_CHILD(test_shutdown_idle);
  T_RUN_CHILD(test_limits);
  T_RUN_CHILD(test_new_errors);
  curl_global_cleanup();
  gw_log_close();
  return T_DONE();
}
