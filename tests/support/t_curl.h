/* t_curl.h — requests to the in-process server (t_server.h) with libcurl.
 *
 * t_do_req() makes one request on a fresh easy handle (a fresh
 * connection), verifying the server's certificate against the test
 * server's own; t_setup_easy() and t_finish_resp() are its two halves for
 * tests that keep a handle (connection reuse) or use the multi interface.
 * Call curl_global_init() once in main() first. CURL_VERBOSE=1 in the
 * environment makes curl say what it does. */
#ifndef TESTS_SUPPORT_T_CURL_H
#define TESTS_SUPPORT_T_CURL_H

#include <stddef.h>

#include <curl/curl.h>
#include <jansson.h>

#include "support/t_server.h"

typedef struct t_resp {
  CURLcode rc;
  long status;
  long version; /* CURL_HTTP_VERSION_* from CURLINFO_HTTP_VERSION */
  long nconnects;
  double ms;
  char body[65536];
  size_t blen;
  char hdr[16384]; /* the final response's header lines as received */
  size_t hlen;
  json_t *json; /* the body parsed, when it is JSON */
} t_resp;

/* What to send; all zero (or a NULL t_reqopt) is a plain GET. */
typedef struct t_reqopt {
  const char *method; /* NULL: GET, or POST with a body */
  const char *body;
  long blen;
  int chunked; /* send the body without a length, 300 bytes at a time */
  int head;
  long timeout_ms; /* 0: 5000 */
  const char *headers[40];
  int h2c; /* to the cleartext listener */
} t_reqopt;

/* A chunked upload in progress (t_setup_easy() fills it in). */
typedef struct t_upload {
  const char *p;
  size_t left;
  size_t chunk;
} t_upload;

/* Prepares |e| for one request to https://127.0.0.1:port|path| on |t| (or
 * http:// and h2c_port with o->h2c) with CURLOPT_HTTP_VERSION |ver|; the
 * body and headers go to |r| (zeroed by the caller), a chunked body is
 * read through |u|. Returns the header list to free with
 * curl_slist_free_all() after the transfer (may be NULL). */
struct curl_slist *t_setup_easy(CURL *e, const ts_server *t, long ver,
                                const char *path, const t_reqopt *o, t_resp *r,
                                t_upload *u);

/* After the transfer: status, HTTP version and connection count into |r|,
 * and the body parsed as JSON (NULL when it is not). */
void t_finish_resp(CURL *e, t_resp *r);

/* One request with a fresh easy handle: |r| zeroed and filled in (rc,
 * duration and all of the above). Free with t_resp_free(). */
void t_do_req(t_resp *r, const ts_server *t, long ver, const char *path,
              const t_reqopt *o);

/* Frees the parsed JSON. */
void t_resp_free(t_resp *r);

/* The value of response header |name| (static), or NULL. */
const char *t_resp_hdr(const t_resp *r, const char *name);

/* 1 when |r| is the gateway's JSON error answer: status |status|,
 * application/json, {"error": |code|, "message": "..."} and nothing else.
 * Otherwise prints what came and returns 0. */
int t_resp_is_error(const t_resp *r, long status, const char *code);

#endif
