/* t_curl.c — see t_curl.h. */
#include "support/t_curl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/t_http.h"
#include "support/t_json.h"
#include "support/t_time.h"

/* Appends |n| bytes at |p| to |buf| (|cap| bytes, |*len| of them used,
 * kept NUL-terminated), dropping what does not fit. */
static void append(char *buf, size_t cap, size_t *len, const char *p,
                   size_t n) {
  size_t room = cap - 1 - *len;

  if (n > room) {
    n = room;
  }
  memcpy(buf + *len, p, n);
  *len += n;
  buf[*len] = '\0';
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg) {
  t_resp *r = arg;

  append(r->body, sizeof(r->body), &r->blen, p, sz * n);
  return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg) {
  t_resp *r = arg;

  /* Only the final response's headers (after a 100 Continue). */
  if (sz * n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    r->hlen = 0;
  }
  append(r->hdr, sizeof(r->hdr), &r->hlen, p, sz * n);
  return sz * n;
}

static size_t on_read(char *buf, size_t sz, size_t n, void *arg) {
  t_upload *u = arg;
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

struct curl_slist *t_setup_easy(CURL *e, const ts_server *t, long ver,
                                const char *path, const t_reqopt *o, t_resp *r,
                                t_upload *u) {
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

void t_finish_resp(CURL *e, t_resp *r) {
  json_error_t je;

  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &r->version);
  curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &r->nconnects);
  r->json = r->blen ? json_loadb(r->body, r->blen, 0, &je) : NULL;
}

void t_do_req(t_resp *r, const ts_server *t, long ver, const char *path,
              const t_reqopt *o) {
  CURL *e = curl_easy_init();
  struct curl_slist *hl;
  t_upload u;
  double t0 = t_now_ms();

  memset(r, 0, sizeof(*r));
  if (!e) {
    r->rc = CURLE_FAILED_INIT;
    return;
  }
  hl = t_setup_easy(e, t, ver, path, o, r, &u);
  r->rc = curl_easy_perform(e);
  r->ms = t_now_ms() - t0;
  t_finish_resp(e, r);
  curl_slist_free_all(hl);
  curl_easy_cleanup(e);
}

void t_resp_free(t_resp *r) {
  json_decref(r->json);
  r->json = NULL;
}

const char *t_resp_hdr(const t_resp *r, const char *name) {
  return t_hdr_get(r->hdr, name);
}

int t_resp_is_error(const t_resp *r, long status, const char *code) {
  const char *ct = t_resp_hdr(r, "content-type");

  if (r->rc != CURLE_OK || r->status != status ||
      !t_json_is_error(r->json, code) || json_object_size(r->json) != 2 ||
      !ct || strcmp(ct, "application/json")) {
    printf("#   expected %ld %s; got rc=%d (%s) status %ld body %.300s\n",
           status, code, r->rc, curl_easy_strerror(r->rc), r->status, r->body);
    return 0;
  }
  return 1;
}
