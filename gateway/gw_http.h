/* gw_http.h — one request/response abstraction for HTTP/1.1 and HTTP/2.
 *
 * The transports (gw_h1.c, gw_h2.c) parse requests into a gw_exch and hand
 * it to the route's handler; the handler answers with one of the
 * gw_resp_* functions, now or later (asynchronous handlers keep the gw_exch
 * and register a cancel callback, which runs if the client goes away first:
 * after it the gw_exch must not be touched). Every response gets the
 * security headers; errors are JSON {"error": code, "message": text}. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gw_buf.h"
#include "gw_form.h"
#include "gw_router.h"

typedef enum { GW_PROTO_HTTP11 = 0, GW_PROTO_H2 = 1 } gw_proto;

typedef struct gw_header {
  char *name;  /* lower-case, NUL-terminated */
  char *value; /* NUL-terminated */
} gw_header;

typedef struct gw_req {
  gw_proto proto;
  int secure; /* arrived over TLS */
  char method[16];
  char *target;       /* raw request target, "/path?query" */
  char *path;         /* target up to '?', still percent-encoded */
  char *query;        /* after '?', or NULL */
  char *authority;    /* :authority or Host, or NULL */
  gw_header *headers; /* regular headers (no pseudo-headers) */
  size_t nheaders;
  size_t content_length; /* when has_content_length */
  int has_content_length;
  gw_buf body; /* capped at the route's max_body */
  char client_ip[64];
  uint64_t start_ns;    /* monotonic, when the request began */
  gw_route_match match; /* last: large, and filled by the router itself */
} gw_req;

typedef struct gw_exch gw_exch;

/* The request being answered; borrowed, valid until the response is sent
 * or the exchange is cancelled. */
gw_req *gw_exch_req(gw_exch *x);

/* The event loop of the worker thread that owns |x| (borrowed): an
 * asynchronous handler schedules its later answer there, since an exchange
 * must be answered on its own thread. */
struct event_base *gw_exch_base(gw_exch *x);

/* The application context given to gw_server_new (borrowed). */
void *gw_exch_app(gw_exch *x);

/* Non-zero once a response has been submitted. */
int gw_exch_responded(const gw_exch *x);

/* Registers |fn(arg)| to run if the client goes away before the response
 * is sent (stream reset, connection closed, server shutdown). */
void gw_exch_on_cancel(gw_exch *x, void (*fn)(void *arg), void *arg);

/* Returns the first value of header |name| (case-insensitive), or NULL. */
const char *gw_req_header(const gw_req *r, const char *name);

/* Parses the query string into |f| (zeroed by the caller, freed with
 * gw_form_free). Returns the gw_form_parse errors. */
int gw_req_query(const gw_req *r, gw_form *f);

/* Parses the request body as JSON (Content-Type application/json, or a
 * +json type). On success stores a new reference in |*out| (the caller
 * decrefs) and returns GW_OK. On failure it has already answered: 415
 * unsupported_media_type, or 400 invalid_json naming the line, column and
 * reason; returns GW_ERR_INVALID. |*out| is untouched then. Duplicate
 * object keys are refused (JSON_REJECT_DUPLICATES). */
int gw_req_json(gw_exch *x, json_t **out);

/* Parses an application/x-www-form-urlencoded body into |f| (zeroed by the
 * caller; free with gw_form_free even after an error). On failure it has
 * already answered (415 unsupported_media_type, 400 invalid_form) and
 * returns GW_ERR_INVALID. */
int gw_req_form(gw_exch *x, gw_form *f);

/* Adds a response header, before gw_resp_send. Names must be lower-case.
 * Returns GW_OK, GW_ERR_LIMIT (more than 16 headers) or GW_ERR_NOMEM. */
int gw_resp_header(gw_exch *x, const char *name, const char *value);

/* Self-contained HTML pages (one inline <style>, one inline <script>):
 * gw_page_nonce writes a fresh nonce (128 random bits, hex) into |out|
 * (|cap| >= 33) and returns GW_OK or GW_ERR_INTERNAL (no randomness);
 * gw_resp_page_csp sets a Content-Security-Policy that allows exactly the
 * elements carrying that nonce, fetches to the page's own origin,
 * |form_action| ("'self'" or "'none'"), no framing. Returns gw_resp_header's
 * result. The server's default policy for HTML allows no inline code. */
int gw_page_nonce(char *out, size_t cap);
int gw_resp_page_csp(gw_exch *x, const char *nonce, const char *form_action);

/* Sends the response: |status|, |content_type| (may be NULL for no body)
 * and |n| bytes of |body| (copied). Adds Content-Length, the security
 * headers and Cache-Control: no-store unless set. A second call is
 * ignored. */
void gw_resp_send(gw_exch *x, int status, const char *content_type,
                  const void *body, size_t n);

/* Sends |json| (reference stolen) as application/json. */
void gw_resp_json(gw_exch *x, int status, json_t *json);

/* Sends {"error": code, "message": formatted} with |status|. */
void gw_resp_error(gw_exch *x, int status, const char *code, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* The reason phrase for |status| ("Not Found"), "" if unknown. */
const char *gw_http_reason(int status);

/* Monotonic clock in nanoseconds. */
uint64_t gw_now_ns(void);

#endif
