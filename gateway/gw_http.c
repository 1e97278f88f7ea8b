/* gw_http.c — the request/response exchange shared by HTTP/1.1 and HTTP/2:
 * header collection with limits, validation, routing, body caps, the
 * response with its security headers, metrics and the access log. */
#include "gw_http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "gw_err.h"
#include "gw_log.h"
#include "gw_server_int.h"

#define ACCESS_LOG_FLUSH_AT 32768
#define ACCESS_LOG_CAP (1024 * 1024)

uint64_t gw_now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const struct {
  int status;
  const char *reason;
} reasons[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *gw_http_reason(int status) {
  for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
    if (reasons[i].status == status) {
      return reasons[i].reason;
    }
  }
  return "";
}

const char *gw_worker_date(gw_worker *w) {
  time_t now = time(NULL);
  struct tm tm;

  if (now != w->date_sec) {
    gmtime_r(&now, &tm);
    strftime(w->date, sizeof(w->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    w->date_sec = now;
  }
  return w->date;
}

/* ---- the exchange --------------------------------------------------- */

struct gw_arena_block {
  struct gw_arena_block *next;
  max_align_t data[];
};

/* Returns |n| bytes from the exchange's arena, 8-byte aligned; NULL when out
 * of memory. Freed all at once with the exchange. */
static void *exch_alloc(gw_exch *x, size_t n) {
  struct gw_arena_block *b;
  size_t off = (x->arena_used + 7) & ~(size_t)7;

  if (off + n <= sizeof(x->arena)) {
    x->arena_used = off + n;
    return x->arena + off;
  }
  b = malloc(sizeof(*b) + n);
  if (!b) {
    return NULL;
  }
  b->next = x->arena_blocks;
  x->arena_blocks = b;
  return b->data;
}

static char *exch_strndup(gw_exch *x, const char *s, size_t n) {
  char *p = exch_alloc(x, n + 1);

  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

gw_exch *gw_exch_new(gw_conn *c, int32_t stream_id) {
  gw_worker *w = c->w;
  gw_exch *x = w->exch_pool;
  gw_buf keep_req, keep_resp;

  if (x) {
    w->exch_pool = x->next;
    w->exch_pool_len--;
    keep_req = x->req.body;
    keep_resp = x->resp_body;
  } else {
    x = malloc(sizeof(*x));
    if (!x) {
      return NULL;
    }
    gw_buf_init(&keep_req, 0);
    gw_buf_init(&keep_resp, 0);
  }
  /* Zero the small part; the request is set field by field below. */
  memset(x, 0, offsetof(gw_exch, req));
  x->conn = c;
  x->stream_id = stream_id;
  memset(&x->req, 0, offsetof(gw_req, match));
  x->req.match.route = NULL;
  x->req.match.nparams = 0;
  x->req.proto = c->proto;
  x->req.secure = c->secure;
  x->req.start_ns = gw_now_ns();
  memcpy(x->req.client_ip, c->client_ip, sizeof(x->req.client_ip));
  /* Buffers keep their storage across reuse; only the caps are reset. */
  x->req.body = keep_req;
  gw_buf_reset(&x->req.body);
  x->req.body.cap = 0;
  x->resp_body = keep_resp;
  gw_buf_reset(&x->resp_body);
  x->resp_body.cap = 16 * 1024 * 1024;
  return x;
}

void gw_exch_free(gw_exch *x) {
  gw_worker *w = x->conn->w;

  while (x->arena_blocks) {
    struct gw_arena_block *b = x->arena_blocks;
    x->arena_blocks = b->next;
    free(b);
  }
  /* Do not let one large request pin memory in the pool. */
  if (x->req.body.alloc > 16384) {
    gw_buf_free(&x->req.body);
  }
  if (x->resp_body.alloc > 16384) {
    gw_buf_free(&x->resp_body);
  }
  if (w->exch_pool_len >= GW_EXCH_POOL_MAX) {
    gw_buf_free(&x->req.body);
    gw_buf_free(&x->resp_body);
    free(x);
    return;
  }
  x->next = w->exch_pool;
  w->exch_pool = x;
  w->exch_pool_len++;
}

void gw_worker_exch_pool_free(gw_worker *w) {
  while (w->exch_pool) {
    gw_exch *x = w->exch_pool;
    w->exch_pool = x->next;
    gw_buf_free(&x->req.body);
    gw_buf_free(&x->resp_body);
    free(x);
  }
  w->exch_pool_len = 0;
}

void gw_exch_reject(gw_exch *x, int status, const char *code, const char *fmt,
                    ...) {
  va_list ap;

  if (x->reject_status) {
    return; /* the first problem is the one reported */
  }
  x->reject_status = status;
  x->reject_code = code;
  va_start(ap, fmt);
  vsnprintf(x->reject_msg, sizeof(x->reject_msg), fmt, ap);
  va_end(ap);
}

/* Counts a field against the limits; RFC 9113 §6.5.2 counts 32 bytes of
 * overhead per field. nghttp2 1.52 only advertises the limit, so this is
 * where it is enforced (REFERENCE §4). */
static int exch_count_field(gw_exch *x, size_t nlen, size_t vlen) {
  const gw_config *cfg = x->conn->w->srv->cfg;

  x->header_bytes += nlen + vlen + 32;
  x->header_count++;
  if (x->header_bytes > (size_t)cfg->max_header_list_size) {
    gw_exch_reject(x, 431, "headers_too_large",
                   "request headers exceed %d bytes",
                   cfg->max_header_list_size);
    return GW_ERR_TOO_LARGE;
  }
  if (x->header_count > (size_t)cfg->max_header_count) {
    gw_exch_reject(x, 431, "too_many_headers",
                   "more than %d request header fields", cfg->max_header_count);
    return GW_ERR_TOO_LARGE;
  }
  return GW_OK;
}

int gw_exch_set_target(gw_exch *x, const char *target, size_t n) {
  const char *p = target, *end = target + n, *q;
  size_t plen;

  if (x->req.target) {
    gw_exch_reject(x, 400, "invalid_request", "duplicate request target");
    return GW_ERR_INVALID;
  }
  if (n > GW_MAX_TARGET) {
    gw_exch_reject(x, 414, "uri_too_long", "request target over %d bytes",
                   GW_MAX_TARGET);
    return GW_ERR_TOO_LARGE;
  }
  x->req.target = exch_strndup(x, target, n);
  if (!x->req.target) {
    return GW_ERR_NOMEM;
  }
  /* Absolute-form (RFC 9112 §3.2.2) must be accepted: drop scheme and
   * authority. */
  if ((n >= 7 && strncasecmp(p, "http://", 7) == 0) ||
      (n >= 8 && strncasecmp(p, "https://", 8) == 0)) {
    size_t skip = (p[4] == ':') ? 7 : 8;
    p = memchr(p + skip, '/', n - skip);
    if (!p) {
      p = "/";
      end = p + 1;
    }
  }
  if (p == end || *p != '/') {
    gw_exch_reject(x, 400, "invalid_request_target",
                   "the request target must be an absolute path");
    return GW_ERR_INVALID;
  }
  q = memchr(p, '?', (size_t)(end - p));
  plen = q ? (size_t)(q - p) : (size_t)(end - p);
  /* One allocation: "path\0query\0". */
  x->req.path = exch_alloc(x, (size_t)(end - p) + 2);
  if (!x->req.path) {
    return GW_ERR_NOMEM;
  }
  memcpy(x->req.path, p, plen);
  x->req.path[plen] = '\0';
  if (q) {
    x->req.query = x->req.path + plen + 1;
    memcpy(x->req.query, q + 1, (size_t)(end - q - 1));
    x->req.query[end - q - 1] = '\0';
  }
  return GW_OK;
}

int gw_exch_add_header(gw_exch *x, const char *name, size_t nlen,
                       const char *value, size_t vlen) {
  gw_header *h;
  char *s;

  if (exch_count_field(x, nlen, vlen) != GW_OK) {
    return GW_ERR_TOO_LARGE;
  }
  if (x->reject_status) {
    return GW_OK; /* already failing: do not store more */
  }
  if (nlen == 4 && strncasecmp(name, "host", 4) == 0 && !x->req.authority) {
    x->req.authority = exch_strndup(x, value, vlen);
    if (!x->req.authority) {
      return GW_ERR_NOMEM;
    }
  }
  if (nlen == 14 && strncasecmp(name, "content-length", 14) == 0) {
    char digits[24];
    char *endp;
    unsigned long long v;
    if (vlen == 0 || vlen >= sizeof(digits) || x->req.has_content_length) {
      gw_exch_reject(x, 400, "invalid_content_length",
                     "missing, repeated or over-long Content-Length");
      return GW_ERR_INVALID;
    }
    memcpy(digits, value, vlen);
    digits[vlen] = '\0';
    for (size_t i = 0; i < vlen; i++) {
      if (!isdigit((unsigned char)digits[i])) {
        gw_exch_reject(x, 400, "invalid_content_length",
                       "Content-Length is not a number");
        return GW_ERR_INVALID;
      }
    }
    v = strtoull(digits, &endp, 10);
    x->req.content_length = (size_t)v;
    x->req.has_content_length = 1;
  }
  /* The array doubles from 16; its old copies stay in the arena. */
  if (x->req.nheaders == 0 ||
      (x->req.nheaders >= 16 &&
       (x->req.nheaders & (x->req.nheaders - 1)) == 0)) {
    size_t want = x->req.nheaders ? x->req.nheaders * 2 : 16;
    gw_header *n = exch_alloc(x, want * sizeof(*n));
    if (!n) {
      return GW_ERR_NOMEM;
    }
    if (x->req.nheaders) {
      memcpy(n, x->req.headers, x->req.nheaders * sizeof(*n));
    }
    x->req.headers = n;
  }
  /* Name and value in one allocation. */
  s = exch_alloc(x, nlen + vlen + 2);
  if (!s) {
    return GW_ERR_NOMEM;
  }
  for (size_t i = 0; i < nlen; i++) {
    s[i] = (char)tolower((unsigned char)name[i]);
  }
  s[nlen] = '\0';
  memcpy(s + nlen + 1, value, vlen);
  s[nlen + 1 + vlen] = '\0';
  h = &x->req.headers[x->req.nheaders++];
  h->name = s;
  h->value = s + nlen + 1;
  return GW_OK;
}

int gw_exch_add_pseudo(gw_exch *x, const char *name, size_t nlen,
                       const char *value, size_t vlen) {
  if (exch_count_field(x, nlen, vlen) != GW_OK) {
    return GW_ERR_TOO_LARGE;
  }
  if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
    if (vlen == 0 || vlen >= sizeof(x->req.method)) {
      gw_exch_reject(x, 400, "invalid_method", "malformed method");
      return GW_ERR_INVALID;
    }
    memcpy(x->req.method, value, vlen);
    x->req.method[vlen] = '\0';
  } else if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
    return gw_exch_set_target(x, value, vlen);
  } else if (nlen == 10 && memcmp(name, ":authority", 10) == 0) {
    x->req.authority = exch_strndup(x, value, vlen);
    if (!x->req.authority) {
      return GW_ERR_NOMEM;
    }
  }
  return GW_OK;
}

/* Sends the rejection recorded while parsing. */
static void exch_send_reject(gw_exch *x) {
  gw_resp_error(x, x->reject_status, x->reject_code, "%s", x->reject_msg);
}

void gw_exch_headers_done(gw_exch *x) {
  gw_server *srv = x->conn->w->srv;
  const char *m = x->req.method;
  int rv;

  x->headers_done = 1;
  /* Before any early answer: a HEAD request never gets a body, not even
   * an error's (a body would desynchronise a reused HTTP/1.1 connection). */
  x->is_head = strcmp(m, "HEAD") == 0;
  if (x->reject_status) {
    exch_send_reject(x);
    return;
  }
  if (!m[0] || !x->req.path) {
    gw_resp_error(x, 400, "invalid_request", "missing method or path");
    return;
  }
  rv = gw_router_match(srv->router, m, x->req.path, &x->req.match);
  if (rv == GW_ERR_NOT_FOUND) {
    gw_resp_error(x, 404, "not_found", "no resource at %.200s", x->req.path);
    return;
  }
  if (rv == GW_ERR_METHOD) {
    gw_resp_header(x, "allow", x->req.match.allow);
    gw_resp_error(x, 405, "method_not_allowed",
                  "%s is not allowed on %.200s; allowed: %s", m, x->req.path,
                  x->req.match.allow);
    return;
  }
  if (rv != GW_OK && strlen(x->req.path) > GW_ROUTE_MAX_PATH) {
    gw_resp_error(x, 414, "uri_too_long", "path over %d bytes",
                  GW_ROUTE_MAX_PATH);
    return;
  }
  if (rv != GW_OK) {
    gw_resp_error(x, 400, "invalid_path", "malformed path");
    return;
  }
  /* limits.max_body_size is the default and the ceiling of every route. */
  x->req.body.cap = x->req.match.route->max_body;
  if (x->req.body.cap > srv->cfg->max_body_size) {
    x->req.body.cap = srv->cfg->max_body_size;
  }
  if (x->req.has_content_length && x->req.content_length > x->req.body.cap) {
    gw_resp_error(x, 413, "body_too_large",
                  "request body of %zu bytes exceeds the limit of %zu for "
                  "this resource",
                  x->req.content_length, x->req.body.cap);
  }
}

void gw_exch_body(gw_exch *x, const uint8_t *data, size_t n) {
  int rv;

  if (x->responded || !x->headers_done) {
    return; /* answered early (error): the rest of the body is discarded */
  }
  rv = gw_buf_append(&x->req.body, data, n);
  if (rv == GW_ERR_TOO_LARGE) {
    gw_resp_error(x, 413, "body_too_large",
                  "request body exceeds the limit of %zu bytes for this "
                  "resource",
                  x->req.body.cap);
  } else if (rv != GW_OK) {
    gw_resp_error(x, 503, "overloaded", "out of memory");
  }
}

void gw_exch_request_done(gw_exch *x) {
  x->request_done = 1;
  if (x->responded || x->dispatched) {
    return;
  }
  x->dispatched = 1;
  x->req.match.route->handler(x);
}

void gw_exch_cancel(gw_exch *x) {
  void (*fn)(void *) = x->cancel_fn;

  x->cancel_fn = NULL;
  if (fn && !x->responded) {
    fn(x->cancel_arg);
  }
}

/* ---- public API ----------------------------------------------------- */

gw_req *gw_exch_req(gw_exch *x) {
  return &x->req;
}

void *gw_exch_app(gw_exch *x) {
  return x->conn->w->srv->app;
}

struct event_base *gw_exch_base(gw_exch *x) {
  return x->conn->w->base;
}

gw_server *gw_exch_server(gw_exch *x) {
  return x->conn->w->srv;
}

int gw_exch_responded(const gw_exch *x) {
  return x->responded;
}

void gw_exch_on_cancel(gw_exch *x, void (*fn)(void *arg), void *arg) {
  x->cancel_fn = fn;
  x->cancel_arg = arg;
}

const char *gw_req_header(const gw_req *r, const char *name) {
  for (size_t i = 0; i < r->nheaders; i++) {
    if (strcasecmp(r->headers[i].name, name) == 0) {
      return r->headers[i].value;
    }
  }
  return NULL;
}

int gw_req_query(const gw_req *r, gw_form *f) {
  if (!r->query) {
    memset(f, 0, sizeof(*f));
    return GW_OK;
  }
  return gw_form_parse(f, r->query, strlen(r->query));
}

/* Compares the media type of Content-Type (before any ';' parameters)
 * case-insensitively with |type|; "+json" suffixes match "application/json"
 * when |suffix| is given. */
static int content_type_is(const gw_req *r, const char *type,
                           const char *suffix) {
  const char *ct = gw_req_header(r, "content-type");
  size_t n, tl = strlen(type);

  if (!ct) {
    return 0;
  }
  while (*ct == ' ' || *ct == '\t') {
    ct++;
  }
  n = strcspn(ct, "; \t");
  if (n == tl && strncasecmp(ct, type, tl) == 0) {
    return 1;
  }
  if (suffix) {
    size_t sl = strlen(suffix);
    return n > sl && strncasecmp(ct + n - sl, suffix, sl) == 0 &&
           strncasecmp(ct, "application/", 12) == 0;
  }
  return 0;
}

int gw_req_json(gw_exch *x, json_t **out) {
  json_error_t jerr;
  json_t *j;

  if (!content_type_is(&x->req, "application/json", "+json")) {
    gw_resp_error(x, 415, "unsupported_media_type",
                  "the body must be application/json");
    return GW_ERR_INVALID;
  }
  j = json_loadb(x->req.body.data ? x->req.body.data : "", x->req.body.len,
                 JSON_REJECT_DUPLICATES, &jerr);
  if (!j) {
    gw_resp_error(x, 400, "invalid_json",
                  "the body is not valid JSON: %s at line %d, column %d",
                  jerr.text, jerr.line, jerr.column);
    return GW_ERR_INVALID;
  }
  *out = j;
  return GW_OK;
}

int gw_req_form(gw_exch *x, gw_form *f) {
  int rv;

  if (!content_type_is(&x->req, "application/x-www-form-urlencoded", NULL)) {
    gw_resp_error(x, 415, "unsupported_media_type",
                  "the body must be application/x-www-form-urlencoded");
    return GW_ERR_INVALID;
  }
  rv = gw_form_parse(f, x->req.body.data ? x->req.body.data : "",
                     x->req.body.len);
  if (rv != GW_OK) {
    gw_resp_error(x, 400, "invalid_form", "the form body is malformed: %s",
                  rv == GW_ERR_TOO_LARGE ? "too many parameters"
                                         : "bad percent-encoding");
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

static int resp_has(const gw_exch *x, const char *name) {
  for (size_t i = 0; i < x->nresp_headers; i++) {
    if (strcmp(x->resp_headers[i].name, name) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Adds a header whose strings outlive the exchange (literals). */
static void resp_static(gw_exch *x, const char *name, const char *value) {
  if (x->nresp_headers < GW_RESP_MAX_HEADERS) {
    x->resp_headers[x->nresp_headers].name = name;
    x->resp_headers[x->nresp_headers].value = value;
    x->nresp_headers++;
  }
}

int gw_resp_header(gw_exch *x, const char *name, const char *value) {
  size_t nlen = strlen(name), vlen = strlen(value);
  char *s;

  if (x->responded) {
    return GW_ERR_INVALID;
  }
  if (x->nresp_app >= GW_RESP_MAX_APP_HEADERS) {
    return GW_ERR_LIMIT;
  }
  /* Refuse CR/LF so that no value can split the response. */
  if (strpbrk(value, "\r\n") || strpbrk(name, "\r\n: ")) {
    return GW_ERR_INVALID;
  }
  s = exch_alloc(x, nlen + vlen + 2);
  if (!s) {
    return GW_ERR_NOMEM;
  }
  memcpy(s, name, nlen + 1);
  memcpy(s + nlen + 1, value, vlen + 1);
  x->nresp_app++;
  resp_static(x, s, s + nlen + 1);
  return GW_OK;
}

/* Small appenders: the access log is written for every request, and
 * printf-style formatting was a quarter of the server's time under load. */
static char *put_mem(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}

#define PUT_LIT(p, lit) put_mem((p), (lit), sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v) {
  char tmp[24];
  size_t n = 0;

  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) {
    *p++ = tmp[--n];
  }
  return p;
}

/* "2026-11-27T20:59:07.123Z": the part up to the seconds is cached per
 * worker and rebuilt once a second. */
static char *put_timestamp(char *p, gw_worker *w) {
  struct timespec ts;
  struct tm tm;
  int ms;

  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != w->log_ts_sec) {
    gmtime_r(&ts.tv_sec, &tm);
    strftime(w->log_ts, sizeof(w->log_ts), "%Y-%m-%dT%H:%M:%S", &tm);
    w->log_ts_sec = ts.tv_sec;
  }
  p = put_mem(p, w->log_ts, 19);
  ms = (int)(ts.tv_nsec / 1000000);
  *p++ = '.';
  *p++ = (char)('0' + ms / 100);
  *p++ = (char)('0' + ms / 10 % 10);
  *p++ = (char)('0' + ms % 10);
  *p++ = 'Z';
  return p;
}

static void exch_access_log(gw_exch *x, uint64_t dur_ns) {
  gw_worker *w = x->conn->w;
  char line[1024], qpath[300], qmethod[40];
  const gw_route *route = x->req.match.route;
  const char *rname = route ? route->name : "-";
  char *p = line;

  if (!w->srv->cfg->access_log || GW_LOG_INFO < gw_log_min_level) {
    return;
  }
  /* The path only, never the query: query strings can carry codes and
   * tokens. Quoted, so that a client cannot forge a log line. */
  gw_log_quote(qpath, sizeof(qpath), x->req.path ? x->req.path : "-",
               x->req.path ? strlen(x->req.path) : 1);
  gw_log_quote(qmethod, sizeof(qmethod), x->req.method, strlen(x->req.method));
  /* Every piece is bounded: 24 + 300 + 40 + 64 (client) + route names
   * (literals) + numbers stay far below sizeof(line). */
  p = PUT_LIT(p, "ts=");
  p = put_timestamp(p, w);
  p = PUT_LIT(p, " level=info msg=\"access\" proto=");
  if (x->req.proto == GW_PROTO_H2) {
    p = PUT_LIT(p, "h2");
  } else {
    p = PUT_LIT(p, "http/1.1");
  }
  p = PUT_LIT(p, " method=");
  p = put_mem(p, qmethod, strlen(qmethod));
  p = PUT_LIT(p, " path=");
  p = put_mem(p, qpath, strlen(qpath));
  p = PUT_LIT(p, " route=");
  p = put_mem(p, rname, strnlen(rname, 64));
  p = PUT_LIT(p, " status=");
  p = put_u64(p, (uint64_t)x->status);
  p = PUT_LIT(p, " bytes=");
  p = put_u64(p, x->is_head ? 0 : x->resp_body.len);
  p = PUT_LIT(p, " dur_us=");
  p = put_u64(p, dur_ns / 1000);
  p = PUT_LIT(p, " client=");
  p = put_mem(p, x->req.client_ip, strnlen(x->req.client_ip, 63));
  *p++ = '\n';
  gw_buf_append(&w->access_log, line, (size_t)(p - line));
  if (w->access_log.len >= ACCESS_LOG_FLUSH_AT) {
    gw_log_write_raw(w->access_log.data, w->access_log.len);
    gw_buf_reset(&w->access_log);
  }
}

void gw_resp_send(gw_exch *x, int status, const char *content_type,
                  const void *body, size_t n) {
  uint64_t dur;
  int html;

  if (x->responded) {
    return;
  }
  if (n && gw_buf_append(&x->resp_body, body, n) != GW_OK) {
    gw_buf_reset(&x->resp_body);
    status = 500;
    content_type = "application/json";
    gw_buf_puts(&x->resp_body, "{\"error\":\"internal_error\",\"message\":"
                               "\"response too large\"}");
  }
  x->responded = 1;
  x->responded_ns = gw_now_ns();
  x->status = status;
  html = content_type && strncmp(content_type, "text/html", 9) == 0;
  if (content_type) {
    resp_static(x, "content-type", content_type);
  }
  *put_u64(x->clen, x->resp_body.len) = '\0';
  resp_static(x, "content-length", x->clen);
  resp_static(x, "date", gw_worker_date(x->conn->w));
  resp_static(x, "server", "mpkigw");
  resp_static(x, "x-content-type-options", "nosniff");
  resp_static(x, "referrer-policy", "no-referrer");
  if (!resp_has(x, "content-security-policy")) {
    resp_static(x, "content-security-policy",
                html ? "default-src 'self'; img-src 'self' data:; "
                       "object-src 'none'; base-uri 'none'; "
                       "form-action 'self'; frame-ancestors 'none'"
                     : "default-src 'none'; frame-ancestors 'none'");
  }
  if (html) {
    resp_static(x, "x-frame-options", "DENY");
  }
  if (x->req.secure) {
    resp_static(x, "strict-transport-security",
                "max-age=63072000; includeSubDomains");
  }
  if (!resp_has(x, "cache-control")) {
    resp_static(x, "cache-control", "no-store");
  }
  dur = gw_now_ns() - x->req.start_ns;
  gw_metrics_request(x->conn->w->m,
                     x->req.match.route ? x->req.match.route->index : -1,
                     status, x->req.proto == GW_PROTO_H2, dur);
  exch_access_log(x, dur);
  if (x->req.proto == GW_PROTO_H2) {
    gw_h2_submit(x);
  } else {
    gw_h1_submit(x);
  }
}

void gw_resp_json(gw_exch *x, int status, json_t *json) {
  char *s = json ? json_dumps(json, JSON_COMPACT) : NULL;

  json_decref(json);
  if (!s) {
    static const char fallback[] = "{\"error\":\"internal_error\","
                                   "\"message\":\"could not encode the "
                                   "response\"}";
    gw_resp_send(x, 500, "application/json", fallback, sizeof(fallback) - 1);
    return;
  }
  gw_resp_send(x, status, "application/json", s, strlen(s));
  free(s);
}

void gw_resp_error(gw_exch *x, int status, const char *code, const char *fmt,
                   ...) {
  char msg[512];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  /* jansson escapes whatever of the request the message quotes. */
  gw_resp_json(x, status,
               json_pack("{s:s, s:s}", "error", code, "message", msg));
}

int gw_page_nonce(char *out, size_t cap) {
  unsigned char r[16];

  if (!out || cap < 2 * sizeof(r) + 1 || RAND_bytes(r, sizeof(r)) != 1) {
    return GW_ERR_INTERNAL;
  }
  for (size_t i = 0; i < sizeof(r); i++) {
    snprintf(out + 2 * i, 3, "%02x", r[i]);
  }
  return GW_OK;
}

int gw_resp_page_csp(gw_exch *x, const char *nonce, const char *form_action) {
  char csp[400];

  snprintf(csp, sizeof(csp),
           "default-src 'none'; script-src 'nonce-%s'; style-src 'nonce-%s'; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
           "form-action %s; frame-ancestors 'none'",
           nonce, nonce, form_action);
  return gw_resp_header(x, "content-security-policy", csp);
}
