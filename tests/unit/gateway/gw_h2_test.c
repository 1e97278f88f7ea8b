/* gw_h2_test.c — HTTP/2 (gateway/gw_h2.c) through the in-process server:
 * libcurl's multi interface for multiplexing and h2c, and a small nghttp2
 * client of our own over OpenSSL for what curl cannot do on purpose (a
 * body that never comes) or does unreliably (curl 7.88 loses a response
 * followed at once by RST_STREAM, see gw_server_test).
 *
 * Each test runs in a child process with its own server (self-signed
 * P-256 certificate made with the OpenSSL API, listen ports 0), so that a
 * server crash fails that test alone and LeakSanitizer checks each test's
 * process. Every wait has a deadline, every child a time limit. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_config.h"
#include "gw_err.h"
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

static void h_echo(gw_exch *x) {
  gw_req *r = gw_exch_req(x);

  gw_resp_json(x, 200,
               json_pack("{s:s, s:s, s:s?}", "id",
                         gw_route_param(&r->match, "id"), "method", r->method,
                         "query", r->query));
}

static void h_body(gw_exch *x) {
  gw_req *r = gw_exch_req(x);

  gw_resp_json(x, 200,
               json_pack("{s:I, s:s#}", "length", (json_int_t)r->body.len,
                         "body", r->body.data ? r->body.data : "",
                         (int)r->body.len));
}

static int add_routes(gw_router *r) {
  int rv = gw_router_add(r, "GET", "/echo/{id}", h_echo, 0, "echo");

  rv = rv ? rv : gw_router_add(r, "POST", "/body", h_body, 1024, "body");
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

/* ---- a raw TLS client ------------------------------------------------- */

typedef struct tcli {
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;
  char buf[65536]; /* received, not yet consumed */
  size_t len;
  int closed; /* the server closed (EOF, close_notify or reset) */
} tcli;

/* Connects to 127.0.0.1:|port| and completes the TLS handshake, offering
 * ALPN |alpn| (NULL: none). Returns 0 or -1 (printed). */
static int cli_open(tcli *c, int port, const char *alpn) {
  struct sockaddr_in sa;
  struct timeval tv = {3, 0};
  unsigned char wire[32];

  memset(c, 0, sizeof(*c));
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* Blocking for the handshake, bounded by socket timeouts. */
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    printf("#   connect: %s\n", strerror(errno));
    return -1;
  }
  c->ctx = SSL_CTX_new(TLS_client_method());
  c->ssl = c->ctx ? SSL_new(c->ctx) : NULL;
  if (!c->ssl) {
    return -1;
  }
  if (alpn) {
    size_t n = strlen(alpn);
    wire[0] = (unsigned char)n;
    memcpy(wire + 1, alpn, n);
    SSL_set_alpn_protos(c->ssl, wire, (unsigned)(n + 1));
  }
  SSL_set_fd(c->ssl, c->fd);
  if (SSL_connect(c->ssl) != 1) {
    printf("#   TLS handshake failed\n");
    ERR_clear_error();
    return -1;
  }
  if (alpn) {
    const unsigned char *sel = NULL;
    unsigned int sl = 0;
    SSL_get0_alpn_selected(c->ssl, &sel, &sl);
    if (sl != strlen(alpn) || memcmp(sel, alpn, sl) != 0) {
      printf("#   ALPN %s not selected\n", alpn);
      return -1;
    }
  }
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  return 0;
}

static void cli_close(tcli *c) {
  if (c->ssl) {
    SSL_free(c->ssl);
  }
  if (c->ctx) {
    SSL_CTX_free(c->ctx);
  }
  if (c->fd > 0) {
    close(c->fd);
  }
  memset(c, 0, sizeof(*c));
  c->fd = -1;
}

static int wait_fd(int fd, short ev, double deadline) {
  struct pollfd p = {fd, ev, 0};
  double left = deadline - now_ms();

  if (left <= 0) {
    return 0;
  }
  return poll(&p, 1, (int)left + 1) > 0;
}

static int cli_send(tcli *c, const void *data, size_t n) {
  const char *p = data;
  double deadline = now_ms() + 3000;

  while (n && !c->ssl) { /* cleartext (h2c) */
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_fd(c->fd, POLLOUT, deadline)) {
        return -1;
      }
    } else {
      c->closed = 1;
      return -1;
    }
  }
  while (n) {
    int w = SSL_write(c->ssl, p, (int)(n > 16384 ? 16384 : n));
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    switch (SSL_get_error(c->ssl, w)) {
    case SSL_ERROR_WANT_WRITE:
      if (!wait_fd(c->fd, POLLOUT, deadline)) {
        return -1;
      }
      break;
    case SSL_ERROR_WANT_READ:
      if (!wait_fd(c->fd, POLLIN, deadline)) {
        return -1;
      }
      break;
    default:
      ERR_clear_error();
      return -1;
    }
  }
  return 0;
}

/* Reads more into c->buf. Returns 1 when bytes came, 0 when the server
 * closed, -1 at |deadline|. */
static int cli_fill(tcli *c, double deadline) {
  for (;;) {
    int n;
    if (c->len >= sizeof(c->buf) - 1) {
      return -1;
    }
    if (!c->ssl) { /* cleartext (h2c) */
      ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
      if (r > 0) {
        c->len += (size_t)r;
        c->buf[c->len] = '\0';
        return 1;
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!wait_fd(c->fd, POLLIN, deadline)) {
          return -1;
        }
        continue;
      }
      c->closed = 1;
      return 0;
    }
    n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - 1 - c->len));
    if (n > 0) {
      c->len += (size_t)n;
      c->buf[c->len] = '\0';
      return 1;
    }
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ:
      if (!wait_fd(c->fd, POLLIN, deadline)) {
        return -1;
      }
      break;
    case SSL_ERROR_WANT_WRITE:
      if (!wait_fd(c->fd, POLLOUT, deadline)) {
        return -1;
      }
      break;
    default: /* close_notify, EOF, reset */
      ERR_clear_error();
      c->closed = 1;
      return 0;
    }
  }
}

/* ---- a small nghttp2 client ------------------------------------------- */

typedef struct h2stream {
  int32_t id;
  int status;
  char body[16384];
  size_t blen;
  int end_stream;      /* the response is complete */
  int closed;          /* the stream closed */
  uint32_t close_code; /* error code given on close */
  int got_rst;         /* the server sent RST_STREAM */
  uint32_t rst_code;
  const char *up; /* request body still to send */
  size_t up_left;
  int up_eof; /* end the body once up_left is sent */
} h2stream;

typedef struct h2cli {
  tcli t;
  nghttp2_session *s;
  int goaway;
  uint32_t goaway_code;
  int settings_seen;
} h2cli;

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f,
                        const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen, uint8_t flags, void *ud) {
  h2stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

  (void)flags;
  (void)ud;
  if (st && f->hd.type == NGHTTP2_HEADERS && nlen == 7 &&
      memcmp(name, ":status", 7) == 0 && vlen == 3) {
    st->status = atoi((const char *)value);
  }
  return 0;
}

static int h2_on_data(nghttp2_session *s, uint8_t flags, int32_t id,
                      const uint8_t *data, size_t len, void *ud) {
  h2stream *st = nghttp2_session_get_stream_user_data(s, id);

  (void)flags;
  (void)ud;
  if (st && st->blen + len < sizeof(st->body)) {
    memcpy(st->body + st->blen, data, len);
    st->blen += len;
    st->body[st->blen] = '\0';
  }
  return 0;
}

static int h2_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  h2cli *h = ud;
  h2stream *st = f->hd.stream_id
                     ? nghttp2_session_get_stream_user_data(s, f->hd.stream_id)
                     : NULL;

  switch (f->hd.type) {
  case NGHTTP2_GOAWAY:
    h->goaway = 1;
    h->goaway_code = f->goaway.error_code;
    break;
  case NGHTTP2_SETTINGS:
    h->settings_seen = 1;
    break;
  case NGHTTP2_RST_STREAM:
    if (st) {
      st->got_rst = 1;
      st->rst_code = f->rst_stream.error_code;
    }
    break;
  case NGHTTP2_HEADERS:
  case NGHTTP2_DATA:
    if (st && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      st->end_stream = 1;
    }
    break;
  default:
    break;
  }
  return 0;
}

static int h2_on_close(nghttp2_session *s, int32_t id, uint32_t code,
                       void *ud) {
  h2stream *st = nghttp2_session_get_stream_user_data(s, id);

  (void)ud;
  if (st) {
    st->closed = 1;
    st->close_code = code;
  }
  return 0;
}

static ssize_t h2_up_read(nghttp2_session *s, int32_t id, uint8_t *buf,
                          size_t len, uint32_t *flags, nghttp2_data_source *src,
                          void *ud) {
  h2stream *st = src->ptr;
  size_t n = len < st->up_left ? len : st->up_left;

  (void)s;
  (void)id;
  (void)ud;
  if (n == 0 && !st->up_eof) {
    return NGHTTP2_ERR_DEFERRED; /* a body that does not come */
  }
  memcpy(buf, st->up, n);
  st->up += n;
  st->up_left -= n;
  if (st->up_left == 0 && st->up_eof) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return (ssize_t)n;
}

/* A cleartext connection (no TLS) for h2c prior knowledge. */
static int cli_open_plain(tcli *c, int port) {
  struct sockaddr_in sa;

  memset(c, 0, sizeof(*c));
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    printf("#   connect: %s\n", strerror(errno));
    return -1;
  }
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  return 0;
}

/* Connects with TLS and ALPN h2, or in cleartext with prior knowledge when
 * |h2c|, and queues our SETTINGS. Returns 0 or -1. */
static int h2_open_ex(h2cli *h, int port, int h2c) {
  nghttp2_session_callbacks *cb;
  int rv;

  memset(h, 0, sizeof(*h));
  if ((h2c ? cli_open_plain(&h->t, port) : cli_open(&h->t, port, "h2")) != 0) {
    return -1;
  }
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_close);
  rv = nghttp2_session_client_new(&h->s, cb, h);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) {
    return -1;
  }
  nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, NULL, 0);
  return 0;
}

static int h2_open(h2cli *h, int port) {
  return h2_open_ex(h, port, 0);
}

static void h2_close(h2cli *h) {
  if (h->s) {
    nghttp2_session_del(h->s);
  }
  cli_close(&h->t);
  h->s = NULL;
}

/* Sends what nghttp2 has queued and feeds what arrives until |done(arg)|
 * is true (1), the server closes the connection (0) or |ms| pass (-1). */
static int h2_run(h2cli *h, int (*done)(void *), void *arg, int ms) {
  double deadline = now_ms() + ms;

  for (;;) {
    const uint8_t *data;
    ssize_t n;
    int rv;

    while ((n = nghttp2_session_mem_send(h->s, &data)) > 0) {
      if (cli_send(&h->t, data, (size_t)n) != 0) {
        return h->t.closed ? 0 : -1;
      }
    }
    if (n < 0) {
      return -1;
    }
    if (done && done(arg)) {
      return 1;
    }
    if (h->t.closed) {
      return 0;
    }
    rv = cli_fill(&h->t, deadline);
    if (h->t.len) {
      n = nghttp2_session_mem_recv(h->s, (const uint8_t *)h->t.buf, h->t.len);
      h->t.len = 0;
      if (n < 0) {
        printf("#   nghttp2_session_mem_recv: %s\n", nghttp2_strerror((int)n));
        return -1;
      }
    }
    if (rv < 0) {
      return -1;
    }
  }
}

static int stream_done(void *arg) {
  h2stream *st = arg;

  return st->closed || st->end_stream;
}

static int stream_closed(void *arg) {
  return ((h2stream *)arg)->closed;
}

#define NV(n, v)                                                               \
  {                                                                            \
    (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                  \
        NGHTTP2_NV_FLAG_NONE                                                   \
  }

/* Submits |method| |path| with |extra| headers; a body when |body| is not
 * NULL (|eof| 0: the body never ends). Returns the stream id. */
static int32_t h2_request(h2cli *h, h2stream *st, const char *method,
                          const char *path, const nghttp2_nv *extra,
                          size_t nextra, const char *body, size_t blen,
                          int eof) {
  nghttp2_nv nva[128] = {NV(":method", method), NV(":scheme", "https"),
                         NV(":authority", "gw.test"), NV(":path", path)};
  nghttp2_data_provider prd;
  size_t n = 4;

  memset(st, 0, sizeof(*st));
  for (size_t i = 0; i < nextra && n < 128; i++) {
    nva[n++] = extra[i];
  }
  st->up = body;
  st->up_left = blen;
  st->up_eof = eof;
  prd.source.ptr = st;
  prd.read_callback = h2_up_read;
  st->id = nghttp2_submit_request(h->s, NULL, nva, n, body ? &prd : NULL, st);
  return st->id;
}

static const char *sjstr(const h2stream *st, const char *k) {
  static char v[256];
  json_t *j = json_loadb(st->body, st->blen, 0, NULL);
  const char *s = json_string_value(json_object_get(j, k));

  snprintf(v, sizeof(v), "%s", s ? s : "(none)");
  json_decref(j);
  return v;
}

/* ---- servers ---------------------------------------------------------- */

static int up(tserver *t, void (*tweak)(gw_config *)) {
  if (tserver_start(t, 2, tweak, add_routes) != 0) {
    t_case_failed = 1;
    return 0;
  }
  return 1;
}

static long server_counter(tserver *t, const char *name) {
  gw_buf out;
  const char *p;
  char key[128];
  long v = -1;

  gw_buf_init(&out, 1 << 20);
  snprintf(key, sizeof(key), "\n%s ", name);
  if (gw_server_metrics(t->srv, &out) == GW_OK &&
      (p = strstr(gw_buf_cstr(&out), key)) != NULL) {
    v = atol(p + strlen(key));
  }
  gw_buf_free(&out);
  return v;
}

#define H2 CURL_HTTP_VERSION_2TLS

/* ---- tests ------------------------------------------------------------ */

/* 50 requests at once over one connection (curl multi, CURLPIPE_MULTIPLEX
 * and PIPEWAIT): all answered, one connection opened. */
static void test_multiplex_50(void) {
  enum { N = 50 };
  static resp r[N];
  static char paths[N][32];
  CURL *e[N];
  CURLM *m = curl_multi_init();
  upload u;
  long conns = 0;
  int running = 1;
  double deadline;
  tserver t;

  if (!up(&t, NULL)) {
    curl_multi_cleanup(m);
    return;
  }
  curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  for (int i = 0; i < N; i++) {
    memset(&r[i], 0, sizeof(r[i]));
    snprintf(paths[i], sizeof(paths[i]), "/echo/%d?n=%d", i, i);
    e[i] = curl_easy_init();
    setup_easy(e[i], &t, H2, paths[i], NULL, &r[i], &u);
    curl_easy_setopt(e[i], CURLOPT_PIPEWAIT, 1L);
    curl_multi_add_handle(m, e[i]);
  }
  deadline = now_ms() + 10000;
  while (running && now_ms() < deadline) {
    curl_multi_perform(m, &running);
    if (running) {
      curl_multi_poll(m, NULL, 0, 100, NULL);
    }
  }
  T_EQ_INT(running, 0);
  for (int i = 0; i < N; i++) {
    CURLMsg *msg;
    int left;
    char id[8];
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK) {
        printf("#   a transfer failed: %s\n",
               curl_easy_strerror(msg->data.result));
        t_case_failed = 1;
      }
    }
    finish_resp(e[i], &r[i]);
    snprintf(id, sizeof(id), "%d", i);
    if (r[i].status != 200 || r[i].version != CURL_HTTP_VERSION_2_0 ||
        !jstr(&r[i], "id") || strcmp(jstr(&r[i], "id"), id) != 0) {
      printf("#   request %d: status %ld version %ld body %.100s\n", i,
             r[i].status, r[i].version, r[i].body);
      t_case_failed = 1;
    }
    conns += r[i].nconnects;
    curl_multi_remove_handle(m, e[i]);
    curl_easy_cleanup(e[i]);
    resp_free(&r[i]);
  }
  curl_multi_cleanup(m);
  T_EQ_INT(conns, 1);
  T_EQ_INT(server_counter(&t, "mpkigw_connections_accepted_total"), 1);
  tserver_stop(&t);
}

/* POST over the 1024-byte cap: 413, and the connection carries on. With
 * content-length (refused from the headers) and without (refused at the
 * cap). While the body is still coming the server may reset the stream,
 * with NO_ERROR only (RFC 9113 §8.1: the client may stop sending; today it
 * does, see test_regress_h2_413_reset_hides_response in gw_server_test for
 * what that costs); if it does not, the client ends the stream itself. */
static void test_413_keeps_connection(void) {
  static char body[4000];
  nghttp2_nv cl_big[] = {NV("content-length", "100000")};
  nghttp2_nv cl[] = {NV("content-length", "4000")};
  tserver t;
  h2cli h;
  h2stream a, b;

  if (!up(&t, NULL)) {
    return;
  }
  if (h2_open(&h, t.port) != 0) {
    t_case_failed = 1;
    tserver_stop(&t);
    return;
  }
  memset(body, 'x', sizeof(body));
  for (int i = 0; i < 3; i++) {
    if (i == 0) { /* declared too large, more to come */
      h2_request(&h, &a, "POST", "/body", cl_big, 1, body, sizeof(body), 0);
    } else if (i == 1) { /* no length, more to come */
      h2_request(&h, &a, "POST", "/body", NULL, 0, body, sizeof(body), 0);
    } else { /* declared too large, all of it sent at once */
      h2_request(&h, &a, "POST", "/body", cl, 1, body, sizeof(body), 1);
    }
    T_EQ_INT(h2_run(&h, stream_done, &a, 3000), 1);
    T_EQ_INT(a.status, 413);
    T_EQ_STR(sjstr(&a, "error"), "body_too_large");
    T_EQ_INT(a.end_stream, 1);
    h2_run(&h, stream_closed, &a, 200); /* a reset, if any, comes now */
    if (a.got_rst) {
      T_EQ_INT(a.rst_code, NGHTTP2_NO_ERROR);
    } else if (!a.closed) {
      nghttp2_submit_rst_stream(h.s, NGHTTP2_FLAG_NONE, a.id, NGHTTP2_CANCEL);
    }
    /* Same connection, next stream. */
    h2_request(&h, &b, "GET", "/echo/next", NULL, 0, NULL, 0, 1);
    T_EQ_INT(h2_run(&h, stream_done, &b, 3000), 1);
    T_EQ_INT(b.status, 200);
    T_EQ_STR(sjstr(&b, "id"), "next");
    T_ASSERT(b.id > a.id);
    T_EQ_INT(h.goaway, 0);
  }
  /* Exactly the cap is fine. */
  h2_request(&h, &a, "POST", "/body", NULL, 0, body, 1024, 1);
  T_EQ_INT(h2_run(&h, stream_done, &a, 3000), 1);
  T_EQ_INT(a.status, 200);
  T_EQ_INT(server_counter(&t, "mpkigw_connections_accepted_total"), 1);
  h2_close(&h);
  tserver_stop(&t);
}

/* The same with libcurl on one easy handle (curl reuses the connection):
 * see gw_server_test's test_regress_h2_413_reset_hides_response for curl
 * losing the 413 itself, so only the reuse is asserted here. */
static void test_413_curl_reuse(void) {
  static char body[2000];
  tserver t;
  CURL *e;
  resp r;
  upload u;
  struct curl_slist *hl;
  reqopt o;

  if (!up(&t, NULL)) {
    return;
  }
  memset(body, 'y', sizeof(body));
  e = curl_easy_init();
  memset(&o, 0, sizeof(o));
  o.body = body;
  o.blen = sizeof(body);
  memset(&r, 0, sizeof(r));
  hl = setup_easy(e, &t, H2, "/body", &o, &r, &u);
  curl_easy_perform(e);
  finish_resp(e, &r);
  if (r.status != 413) {
    printf("# note: curl did not see the 413 (status %ld): the known curl "
           "7.88 issue\n",
           r.status);
  }
  resp_free(&r);
  curl_slist_free_all(hl);
  curl_easy_reset(e);
  memset(&r, 0, sizeof(r));
  setup_easy(e, &t, H2, "/echo/again", NULL, &r, &u);
  T_EQ_INT(curl_easy_perform(e), CURLE_OK);
  finish_resp(e, &r);
  T_EQ_INT(r.status, 200);
  T_EQ_INT(r.nconnects, 0); /* the connection of the 413 */
  T_EQ_STR(jstr(&r, "id"), "again");
  resp_free(&r);
  curl_easy_cleanup(e);
  T_EQ_INT(server_counter(&t, "mpkigw_connections_accepted_total"), 1);
  tserver_stop(&t);
}

/* Many custom headers via CURLOPT_HTTPHEADER totalling over 16 KiB (but
 * fewer than 100 fields): 431 JSON. */
static void test_431_header_list(void) {
  static char vals[40][600];
  tserver t;
  reqopt o;
  resp r;

  if (!up(&t, NULL)) {
    return;
  }
  memset(&o, 0, sizeof(o));
  for (int i = 0; i < 30; i++) {
    int n = snprintf(vals[i], sizeof(vals[i]), "X-Pad-%02d: ", i);
    memset(vals[i] + n, 'p', 550);
    vals[i][n + 550] = '\0';
    o.headers[i] = vals[i]; /* 30 * (9 + 550 + 32) > 16384 */
  }
  do_req(&r, &t, H2, "/echo/big", &o);
  T_EQ_INT(r.rc, CURLE_OK);
  T_EQ_INT(r.version, CURL_HTTP_VERSION_2_0);
  T_ASSERT(is_error(&r, 431, "headers_too_large"));
  resp_free(&r);

  /* Under the limit: fine. */
  for (int i = 20; i < 30; i++) {
    o.headers[i] = NULL;
  }
  do_req(&r, &t, H2, "/echo/big", &o);
  T_EQ_INT(r.status, 200);
  resp_free(&r);
  tserver_stop(&t);
}

/* Over the limit on our own client: 431 on that stream, the connection
 * goes on. Also over limits.max_header_count (100). */
static void test_431_keeps_connection(void) {
  static char vals[120][32], pad[20000];
  static nghttp2_nv nv[120];
  tserver t;
  h2cli h;
  h2stream a;

  if (!up(&t, NULL)) {
    return;
  }
  if (h2_open(&h, t.port) != 0) {
    t_case_failed = 1;
    tserver_stop(&t);
    return;
  }
  memset(pad, 'p', sizeof(pad));
  nv[0] = (nghttp2_nv){(uint8_t *)"x-pad", (uint8_t *)pad, 5, 10000,
                       NGHTTP2_NV_FLAG_NONE};
  nv[1] = nv[0];
  h2_request(&h, &a, "GET", "/echo/1", nv, 2, NULL, 0, 1);
  T_EQ_INT(h2_run(&h, stream_done, &a, 3000), 1);
  T_EQ_INT(a.status, 431);
  T_EQ_STR(sjstr(&a, "error"), "headers_too_large");

  for (int i = 0; i < 100; i++) {
    snprintf(vals[i], sizeof(vals[i]), "x-h%d", i);
    nv[i] = (nghttp2_nv){(uint8_t *)vals[i], (uint8_t *)"v", strlen(vals[i]), 1,
                         NGHTTP2_NV_FLAG_NONE};
  }
  /* 4 pseudo-headers + 100 = 104 fields. */
  h2_request(&h, &a, "GET", "/echo/2", nv, 100, NULL, 0, 1);
  T_EQ_INT(h2_run(&h, stream_done, &a, 3000), 1);
  T_EQ_INT(a.status, 431);
  T_EQ_STR(sjstr(&a, "error"), "too_many_headers");

  h2_request(&h, &a, "GET", "/echo/3", NULL, 0, NULL, 0, 1);
  T_EQ_INT(h2_run(&h, stream_done, &a, 3000), 1);
  T_EQ_INT(a.status, 200);
  T_EQ_INT(h.goaway, 0);
  h2_close(&h);
  tserver_stop(&t);
}

static void tweak_timers(gw_config *c) {
  c->request_timeout_ms = 400;
  c->idle_timeout_ms = 300; /* below the file's minimum of 1000 */
}

/* A request body that never comes: 408 after limits.request_timeout_ms,
 * and the connection still serves other streams. */
static void test_body_timeout(void) {
  tserver t;
  h2cli h;
  h2stream a, b;
  double t0, d;

  if (!up(&t, tweak_timers)) {
    return;
  }
  if (h2_open(&h, t.port) != 0) {
    t_case_failed = 1;
    tserver_stop(&t);
    return;
  }
  t0 = now_ms();
  h2_request(&h, &a, "POST", "/body", NULL, 0, "part", 4, 0);
  T_EQ_INT(h2_run(&h, stream_done, &a, 3000), 1);
  d = now_ms() - t0;
  T_EQ_INT(a.status, 408);
  T_EQ_STR(sjstr(&a, "error"), "request_timeout");
  T_ASSERT(d >= 350 && d < 2000);
  h2_request(&h, &b, "GET", "/echo/b", NULL, 0, NULL, 0, 1);
  T_EQ_INT(h2_run(&h, stream_done, &b, 3000), 1);
  T_EQ_INT(b.status, 200);
  T_EQ_INT(server_counter(&t, "mpkigw_timeouts_total"), 1);
  h2_close(&h);
  tserver_stop(&t);
}

/* After that 408 the stream stays half-open (the client never ends its
 * body) and gw_h2_timer() does not re-arm the connection timer for it
 * ("continue" right after the 408 skips "next = d"); with a stream open,
 * the idle timer does not apply either. So the stream is never reset and
 * the connection is never closed: a client can hold connections (and
 * max_connections slots) for ever at the cost of one HEADERS frame each.
 * Expected: RST_STREAM for the stream (gw_h2_timer's CANCEL branch) and
 * then, with no streams left, GOAWAY at the idle timeout. */
static void test_regress_h2_408_stream_never_reaped(void) {
  tserver t;
  h2cli h;
  h2stream a;
  int rv;

  if (!up(&t, tweak_timers)) {
    return;
  }
  if (h2_open(&h, t.port) != 0) {
    t_case_failed = 1;
    tserver_stop(&t);
    return;
  }
  h2_request(&h, &a, "POST", "/body", NULL, 0, "part", 4, 0);
  T_EQ_INT(h2_run(&h, stream_done, &a, 3000), 1);
  T_EQ_INT(a.status, 408);
  /* 400 ms request timeout, 300 ms idle: 1.5 s is plenty for each. */
  rv = h2_run(&h, stream_closed, &a, 1500);
  if (rv != 1) {
    printf("#   stream %d still open 1.5 s after its 408\n", a.id);
    t_case_failed = 1;
  }
  rv = h2_run(&h, NULL, NULL, 1500);
  if (rv != 0 || !h.goaway) {
    printf("#   connection not closed (goaway %d, rv %d)\n", h.goaway, rv);
    t_case_failed = 1;
  }
  h2_close(&h);
  tserver_stop(&t);
}

/* The server's SETTINGS, and GOAWAY(NO_ERROR) + close when idle. */
static void test_settings_and_idle(void) {
  tserver t;
  h2cli h;
  double t0, d;
  int rv;

  if (!up(&t, tweak_timers)) {
    return;
  }
  if (h2_open(&h, t.port) != 0) {
    t_case_failed = 1;
    tserver_stop(&t);
    return;
  }
  t0 = now_ms();
  rv = h2_run(&h, NULL, NULL, 3000);
  d = now_ms() - t0;
  T_EQ_INT(rv, 0); /* closed by the server */
  T_EQ_INT(h.settings_seen, 1);
  T_EQ_INT(h.goaway, 1);
  T_EQ_INT(h.goaway_code, NGHTTP2_NO_ERROR);
  T_ASSERT(d >= 200 && d < 1500);
  T_EQ_INT(nghttp2_session_get_remote_settings(
               h.s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
           100);
  T_EQ_INT(nghttp2_session_get_remote_settings(
               h.s, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE),
           16384);
  T_EQ_INT(
      nghttp2_session_get_remote_settings(h.s, NGHTTP2_SETTINGS_ENABLE_PUSH),
      1); /* a server does not send it; 1 is the protocol default */
  h2_close(&h);
  tserver_stop(&t);
}

/* HEAD over HTTP/2: headers with END_STREAM, no DATA. */
static void test_head(void) {
  tserver t;
  h2cli h;
  h2stream a;

  if (!up(&t, NULL)) {
    return;
  }
  if (h2_open(&h, t.port) != 0) {
    t_case_failed = 1;
    tserver_stop(&t);
    return;
  }
  h2_request(&h, &a, "HEAD", "/echo/h", NULL, 0, NULL, 0, 1);
  T_EQ_INT(h2_run(&h, stream_closed, &a, 3000), 1);
  T_EQ_INT(a.status, 200);
  T_EQ_INT(a.blen, 0);
  T_EQ_INT(a.end_stream, 1);
  T_EQ_INT(a.close_code, NGHTTP2_NO_ERROR);
  h2_close(&h);
  tserver_stop(&t);
}

/* The cleartext h2c listener with prior knowledge: curl (one request per
 * connection: curl 7.88 fails a second request on a prior-knowledge
 * connection, reused or multiplexed, with "Error in the HTTP2 framing
 * layer" against nghttpd too), then 20 concurrent streams on one
 * connection from our own client. No HSTS on cleartext. */
static void test_h2c(void) {
  enum { N = 20 };
  static h2stream st[N];
  static char paths[N][32];
  tserver t;
  reqopt o;
  resp r;
  h2cli h;

  if (!up(&t, NULL)) {
    return;
  }
  T_ASSERT(t.h2c_port > 0);
  memset(&o, 0, sizeof(o));
  o.h2c = 1;
  for (int i = 0; i < 2; i++) {
    char path[32], id[8];
    snprintf(path, sizeof(path), "/echo/c%d", i);
    snprintf(id, sizeof(id), "c%d", i);
    do_req(&r, &t, CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, path, &o);
    T_EQ_INT(r.rc, CURLE_OK);
    T_EQ_INT(r.status, 200);
    T_EQ_INT(r.version, CURL_HTTP_VERSION_2_0);
    T_EQ_STR(jstr(&r, "id"), id);
    T_EQ_STR(hdr_get(&r, "x-content-type-options"), "nosniff");
    T_ASSERT(hdr_get(&r, "strict-transport-security") == NULL);
    resp_free(&r);
  }

  if (h2_open_ex(&h, t.h2c_port, 1) != 0) {
    t_case_failed = 1;
    tserver_stop(&t);
    return;
  }
  for (int i = 0; i < N; i++) {
    snprintf(paths[i], sizeof(paths[i]), "/echo/s%d", i);
    h2_request(&h, &st[i], "GET", paths[i], NULL, 0, NULL, 0, 1);
  }
  T_EQ_INT(h2_run(&h, stream_done, &st[N - 1], 3000), 1);
  for (int i = 0; i < N; i++) {
    char id[8];
    if (!stream_done(&st[i])) {
      T_EQ_INT(h2_run(&h, stream_done, &st[i], 3000), 1);
    }
    snprintf(id, sizeof(id), "s%d", i);
    T_EQ_INT(st[i].status, 200);
    T_EQ_STR(sjstr(&st[i], "id"), id);
  }
  h2_close(&h);
  tserver_stop(&t);
}

/* The cleartext listener speaks HTTP/1.1 as well as h2c with prior
 * knowledge (the mock operators serve plain HTTP/1.1 clients on it). */
static void test_cleartext_port_serves_http1(void) {
  tserver t;
  reqopt o;
  resp r;

  if (!up(&t, NULL)) {
    return;
  }
  memset(&o, 0, sizeof(o));
  o.h2c = 1;
  o.timeout_ms = 2000;
  do_req(&r, &t, CURL_HTTP_VERSION_1_1, "/echo/x", &o);
  T_EQ_INT(r.rc, CURLE_OK);
  T_EQ_INT(r.status, 200);
  resp_free(&r);
  tserver_stop(&t);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  gw_log_open(NULL, GW_LOG_ERROR);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  T_RUN_CHILD(test_multiplex_50);
  T_RUN_CHILD(test_413_keeps_connection);
  T_RUN_CHILD(test_413_curl_reuse);
  T_RUN_CHILD(test_431_header_list);
  T_RUN_CHILD(test_431_keeps_connection);
  T_RUN_CHILD(test_body_timeout);
  T_RUN_CHILD(test_regress_h2_408_stream_never_reaped);
  T_RUN_CHILD(test_settings_and_idle);
  T_RUN_CHILD(test_head);
  T_RUN_CHILD(test_h2c);
  T_RUN_CHILD(test_cleartext_port_serves_http1);
  curl_global_cleanup();
  gw_log_close();
  return T_DONE();
}
