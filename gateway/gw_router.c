/* gw_router.c — the route table.
 *
 * The table holds tens of routes, so it is a plain array scanned in full on
 * every match: easy to read and to check, and fast enough. Each pattern is
 * split once, in gw_router_add, into segments that are either literal bytes
 * or a named parameter; matching walks the request path segment by segment
 * against each route.
 *
 * Choosing among several routes: only routes whose pattern matches the path
 * and whose method fits the request (HEAD fits GET routes) take part. Among
 * those the one with a literal at the first position where they differ wins,
 * so "/api/v1/auth/cancel" beats "/api/v1/auth/{id}" whatever the add order.
 * When patterns match the path but none has a fitting method the answer is
 * GW_ERR_METHOD, and m->allow lists exactly the methods that would match. */
#include "gw_router.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "gw_err.h"
#include "gw_form.h"

/* Longest method name accepted by gw_router_add; keeps m->allow able to list
 * several methods without truncation. */
#define RT_METHOD_MAX 32

typedef struct rt_seg {
  const char *s; /* literal bytes (not NUL-terminated) or parameter name */
  size_t len;    /* length of the literal or of the name */
  int is_param;
} rt_seg;

/* One allocation: the public route, its segments, then a copy of the
 * pattern in which each parameter's closing '}' became a NUL, so that
 * parameter names are C strings owned by the router. */
typedef struct rt_route {
  gw_route pub;
  size_t nseg;
  rt_seg seg[];
} rt_route;

struct gw_router {
  rt_route **v; /* pointers, so that a gw_route * stays valid across adds */
  size_t n;
  size_t alloc;
};

static int is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

/* RFC 9110 tchar: the characters of a method name. */
static int is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
      (c >= 'A' && c <= 'Z')) {
    return 1;
  }
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Bytes allowed raw in a request path. Controls, space and DEL never are;
 * '?' and '#' start a query or fragment, which the caller has removed.
 * Bytes >= 0x80 pass, as nghttp2 lets them through. */
static int is_path_char(unsigned char c) {
  return c > 0x20 && c != 0x7f && c != '?' && c != '#';
}

static int is_name_char(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_dot_segment(const char *s, size_t len) {
  return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

/* Checks that |len| bytes of |s| are path characters with well-formed
 * escapes. */
static int check_chars(const char *s, size_t len) {
  size_t i;

  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];

    if (!is_path_char(c)) {
      return GW_ERR_INVALID;
    }
    if (c == '%') {
      if (len - i < 3 || !is_hex((unsigned char)s[i + 1]) ||
          !is_hex((unsigned char)s[i + 2])) {
        return GW_ERR_INVALID;
      }
      i += 2;
    }
  }
  return GW_OK;
}

/* Returns the end of the segment that starts at |start|: the index of the
 * next '/' or |len|. */
static size_t seg_end(const char *s, size_t start, size_t len) {
  const char *p = memchr(s + start, '/', len - start);

  return p ? (size_t)(p - s) : len;
}

/* Splits |pat| (|len| bytes, starting with '/') into rt->seg; |names| holds
 * a writable copy of the pattern. Sets rt->nseg. */
static int route_parse(rt_route *rt, const char *pat, size_t len, char *names) {
  size_t i = 0, k = 0, nparams = 0, j, start, end;

  while (i < len) {
    rt_seg *seg = &rt->seg[k];

    start = i + 1;
    end = seg_end(pat, start, len);
    if (end - start >= 2 && pat[start] == '{') {
      if (pat[end - 1] != '}' || end - start < 3 ||
          nparams == GW_ROUTE_MAX_PARAMS) {
        return GW_ERR_INVALID;
      }
      for (j = start + 1; j < end - 1; j++) {
        if (!is_name_char((unsigned char)pat[j])) {
          return GW_ERR_INVALID;
        }
      }
      names[end - 1] = '\0';
      seg->s = names + start + 1;
      seg->len = end - start - 2;
      seg->is_param = 1;
      /* gw_route_param() could not tell two equal names apart. */
      for (j = 0; j < k; j++) {
        if (rt->seg[j].is_param && strcmp(rt->seg[j].s, seg->s) == 0) {
          return GW_ERR_INVALID;
        }
      }
      nparams++;
    } else {
      /* An empty segment may only be the last one ("/", "/healthz/"):
       * "/a//b" could never be meant. Dot segments are refused in paths, so
       * a pattern holding one could never match. */
      if ((start == end && end != len) ||
          is_dot_segment(pat + start, end - start) ||
          check_chars(pat + start, end - start) != GW_OK ||
          memchr(pat + start, '{', end - start) ||
          memchr(pat + start, '}', end - start)) {
        return GW_ERR_INVALID;
      }
      seg->s = pat + start;
      seg->len = end - start;
      seg->is_param = 0;
    }
    k++;
    i = end;
  }
  rt->nseg = k;
  return GW_OK;
}

/* Two routes have the same shape when they would match exactly the same
 * paths: "/a/{x}" and "/a/{y}" do. */
static int same_shape(const rt_route *a, const rt_route *b) {
  size_t k;

  if (a->nseg != b->nseg) {
    return 0;
  }
  for (k = 0; k < a->nseg; k++) {
    const rt_seg *x = &a->seg[k], *y = &b->seg[k];

    if (x->is_param != y->is_param) {
      return 0;
    }
    if (!x->is_param && (x->len != y->len || memcmp(x->s, y->s, x->len) != 0)) {
      return 0;
    }
  }
  return 1;
}

int gw_router_new(gw_router **out) {
  gw_router *r;

  if (!out) {
    return GW_ERR_INVALID;
  }
  r = calloc(1, sizeof(*r));
  if (!r) {
    return GW_ERR_NOMEM;
  }
  *out = r;
  return GW_OK;
}

void gw_router_del(gw_router *r) {
  size_t i;

  if (!r) {
    return;
  }
  for (i = 0; i < r->n; i++) {
    free(r->v[i]);
  }
  free(r->v);
  free(r);
}

/* |handler| and |name| are stored as given; the table is built by code at
 * start-up, not from network input, so it has no cap beyond memory. */
int gw_router_add(gw_router *r, const char *method, const char *pattern,
                  gw_handler_fn handler, size_t max_body, const char *name) {
  size_t mlen, plen, nseg = 0, i;
  rt_route *rt;
  char *names;
  int rv;

  if (!r || !method || !pattern || pattern[0] != '/') {
    return GW_ERR_INVALID;
  }
  mlen = strnlen(method, RT_METHOD_MAX + 1);
  if (mlen == 0 || mlen > RT_METHOD_MAX) {
    return GW_ERR_INVALID;
  }
  for (i = 0; i < mlen; i++) {
    if (!is_tchar((unsigned char)method[i])) {
      return GW_ERR_INVALID;
    }
  }
  plen = strnlen(pattern, GW_ROUTE_MAX_PATH + 1);
  if (plen > GW_ROUTE_MAX_PATH || r->n >= INT_MAX) {
    return GW_ERR_INVALID;
  }
  for (i = 0; i < plen; i++) {
    nseg += pattern[i] == '/';
  }

  rt = malloc(sizeof(*rt) + nseg * sizeof(rt_seg) + plen + 1);
  if (!rt) {
    return GW_ERR_NOMEM;
  }
  names = (char *)&rt->seg[nseg];
  memcpy(names, pattern, plen + 1);
  rv = route_parse(rt, pattern, plen, names);
  if (rv != GW_OK) {
    goto fail_route;
  }
  for (i = 0; i < r->n; i++) {
    if (strcmp(r->v[i]->pub.method, method) == 0 && same_shape(r->v[i], rt)) {
      rv = GW_ERR_INVALID;
      goto fail_route;
    }
  }

  if (r->n == r->alloc) {
    size_t n = r->alloc ? r->alloc * 2 : 16;
    rt_route **v = realloc(r->v, n * sizeof(*v));

    if (!v) {
      rv = GW_ERR_NOMEM;
      goto fail_route;
    }
    r->v = v;
    r->alloc = n;
  }
  rt->pub.method = method;
  rt->pub.pattern = pattern;
  rt->pub.handler = handler;
  rt->pub.max_body = max_body;
  rt->pub.name = name;
  rt->pub.index = (int)r->n;
  r->v[r->n++] = rt;
  return GW_OK;

fail_route:
  free(rt);
  return rv;
}

/* Checks that |path| is an origin-form path without query: starts with '/',
 * at most GW_ROUTE_MAX_PATH bytes, only path characters, every '%' followed
 * by two hex digits, no "." or ".." segment (we refuse rather than resolve
 * them, so that no handler ever sees a path that climbs). */
static int path_check(const char *path, size_t *lenp) {
  size_t len, i, end;

  if (path[0] != '/') {
    return GW_ERR_INVALID;
  }
  len = strnlen(path, GW_ROUTE_MAX_PATH + 1);
  if (len > GW_ROUTE_MAX_PATH || check_chars(path, len) != GW_OK) {
    return GW_ERR_INVALID;
  }
  for (i = 0; i < len; i = end) {
    end = seg_end(path, i + 1, len);
    if (is_dot_segment(path + i + 1, end - i - 1)) {
      return GW_ERR_INVALID;
    }
  }
  *lenp = len;
  return GW_OK;
}

static int route_matches_path(const rt_route *rt, const char *path,
                              size_t len) {
  size_t i = 0, k, start, end;

  for (k = 0; k < rt->nseg; k++) {
    const rt_seg *seg = &rt->seg[k];

    if (i >= len) {
      return 0; /* the path has fewer segments */
    }
    start = i + 1;
    end = seg_end(path, start, len);
    if (seg->is_param) {
      if (start == end) {
        return 0;
      }
    } else if (end - start != seg->len ||
               memcmp(path + start, seg->s, seg->len) != 0) {
      return 0;
    }
    i = end;
  }
  return i == len;
}

static int method_fits(const char *route_method, const char *method) {
  return strcmp(route_method, method) == 0 ||
         (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* Returns non-zero when |a| should be chosen over |b|; both match the same
 * path, so they have the same number of segments. */
static int route_better(const rt_route *a, const rt_route *b,
                        const char *method) {
  size_t k;

  for (k = 0; k < a->nseg; k++) {
    if (a->seg[k].is_param != b->seg[k].is_param) {
      return !a->seg[k].is_param;
    }
  }
  /* Same shape: a HEAD route beats the GET route that HEAD also fits. */
  return strcmp(a->pub.method, method) == 0 &&
         strcmp(b->pub.method, method) != 0;
}

static int allow_has(const char *allow, const char *method) {
  size_t mlen = strlen(method);
  const char *p = allow;

  while (*p) {
    size_t n = strcspn(p, ",");

    if (n == mlen && memcmp(p, method, n) == 0) {
      return 1;
    }
    p += n;
    if (*p == ',') {
      p += 2; /* ", " */
    }
  }
  return 0;
}

/* Appends |method| to the "A, B" list in |allow| unless already there. A
 * method that does not fit is left out whole rather than cut. */
static void allow_add(char *allow, size_t cap, const char *method) {
  size_t used = strlen(allow), mlen = strlen(method);
  size_t sep = used ? 2 : 0;

  if (allow_has(allow, method) || used + sep + mlen + 1 > cap) {
    return;
  }
  memcpy(allow + used, ", ", sep);
  memcpy(allow + used + sep, method, mlen + 1);
}

/* Percent-decodes the parameters of |rt| from |path| into |m|. */
static int fill_params(const rt_route *rt, const char *path, size_t len,
                       gw_route_match *m) {
  char tmp[GW_ROUTE_MAX_PATH + 1];
  size_t i = 0, k, start, end, outlen;

  for (k = 0; k < rt->nseg; k++) {
    start = i + 1;
    end = seg_end(path, start, len);
    i = end;
    if (!rt->seg[k].is_param) {
      continue;
    }
    /* Decoded NUL or '/' would let a value mean something its segment did
     * not; "." and ".." would too, once a handler builds a path from it. */
    if (gw_url_decode(tmp, path + start, end - start, 0, &outlen) != GW_OK ||
        outlen >= sizeof(m->params[0].value) || memchr(tmp, '/', outlen) ||
        is_dot_segment(tmp, outlen)) {
      m->nparams = 0;
      return GW_ERR_INVALID;
    }
    m->params[m->nparams].name = rt->seg[k].s;
    memcpy(m->params[m->nparams].value, tmp, outlen + 1);
    m->nparams++;
  }
  m->route = &rt->pub;
  return GW_OK;
}

int gw_router_match(const gw_router *r, const char *method, const char *path,
                    gw_route_match *m) {
  const rt_route *best = NULL;
  size_t len = 0, i;
  int path_found = 0, rv;

  if (!m) {
    return GW_ERR_INVALID;
  }
  m->route = NULL;
  m->nparams = 0;
  m->allow[0] = '\0';
  if (!r || !method || !path) {
    return GW_ERR_INVALID;
  }
  rv = path_check(path, &len);
  if (rv != GW_OK) {
    return rv;
  }

  for (i = 0; i < r->n; i++) {
    const rt_route *rt = r->v[i];

    if (!route_matches_path(rt, path, len)) {
      continue;
    }
    path_found = 1;
    if (method_fits(rt->pub.method, method) &&
        (!best || route_better(rt, best, method))) {
      best = rt;
    }
  }
  if (best) {
    return fill_params(best, path, len, m);
  }
  if (!path_found) {
    return GW_ERR_NOT_FOUND;
  }

  for (i = 0; i < r->n; i++) {
    const rt_route *rt = r->v[i];

    if (!route_matches_path(rt, path, len)) {
      continue;
    }
    allow_add(m->allow, sizeof(m->allow), rt->pub.method);
    if (strcmp(rt->pub.method, "GET") == 0) {
      allow_add(m->allow, sizeof(m->allow), "HEAD");
    }
  }
  return GW_ERR_METHOD;
}

size_t gw_router_count(const gw_router *r) {
  return r ? r->n : 0;
}

const gw_route *gw_router_get(const gw_router *r, size_t i) {
  if (!r || i >= r->n) {
    return NULL;
  }
  return &r->v[i]->pub;
}

const char *gw_route_param(const gw_route_match *m, const char *name) {
  size_t i;

  if (!m || !name) {
    return NULL;
  }
  for (i = 0; i < m->nparams && i < GW_ROUTE_MAX_PARAMS; i++) {
    if (strcmp(m->params[i].name, name) == 0) {
      return m->params[i].value;
    }
  }
  return NULL;
}
