/* Tests for gateway/gw_router.c. */
#include <stdlib.h>
#include <string.h>

#include "gw_err.h"
#include "gw_router.h"
#include "harness.h"

/* Distinct handlers, so that a test can tell which route was chosen. */
static void h_a(struct gw_exch *x) {
  (void)x;
}
static void h_b(struct gw_exch *x) {
  (void)x;
}

static gw_router *new_router(void) {
  gw_router *r = NULL;

  if (gw_router_new(&r) != GW_OK || !r) {
    printf("#   gw_router_new failed\n");
    exit(1);
  }
  return r;
}

/* Returns the name of the matched route, or the error as text. */
static const char *match_name(const gw_router *r, const char *method,
                              const char *path, gw_route_match *m) {
  int rv = gw_router_match(r, method, path, m);

  if (rv != GW_OK) {
    return gw_strerror(rv);
  }
  return m->route ? m->route->name : "(no route)";
}

static void test_empty(void) {
  gw_router *r = new_router();
  gw_route_match m;

  T_EQ_INT(gw_router_count(r), 0);
  T_ASSERT(gw_router_get(r, 0) == NULL);
  T_EQ_INT(gw_router_match(r, "GET", "/", &m), GW_ERR_NOT_FOUND);
  T_ASSERT(m.route == NULL);
  gw_router_del(r);
  gw_router_del(NULL);
}

static void test_literal(void) {
  gw_router *r = new_router();
  gw_route_match m;

  T_EQ_INT(gw_router_add(r, "GET", "/healthz", h_a, 0, "healthz"), GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/metrics", h_b, 0, "metrics"), GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/", h_b, 0, "root"), GW_OK);
  T_EQ_INT(gw_router_add(r, "POST", "/api/v1/auth", h_a, 4096, "start"), GW_OK);

  T_EQ_INT(gw_router_match(r, "GET", "/healthz", &m), GW_OK);
  T_ASSERT(m.route && m.route->handler == h_a);
  T_EQ_INT(m.nparams, 0);
  T_EQ_STR(match_name(r, "GET", "/metrics", &m), "metrics");
  T_EQ_STR(match_name(r, "GET", "/", &m), "root");
  T_EQ_STR(match_name(r, "POST", "/api/v1/auth", &m), "start");
  T_EQ_INT(m.route->max_body, 4096);
  T_EQ_STR(m.route->method, "POST");
  T_EQ_STR(m.route->pattern, "/api/v1/auth");

  /* Case, prefixes and extensions are different paths. */
  T_EQ_INT(gw_router_match(r, "GET", "/Healthz", &m), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_router_match(r, "GET", "/health", &m), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_router_match(r, "GET", "/healthzz", &m), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_router_match(r, "GET", "/healthz/x", &m), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_router_match(r, "POST", "/api/v1", &m), GW_ERR_NOT_FOUND);
  /* Methods are case-sensitive. */
  T_EQ_INT(gw_router_match(r, "get", "/healthz", &m), GW_ERR_METHOD);
  /* Matching is on the raw path: an encoded literal is another path. */
  T_EQ_INT(gw_router_match(r, "GET", "/%68ealthz", &m), GW_ERR_NOT_FOUND);
  gw_router_del(r);
}

static void test_trailing_slash_and_empty_segments(void) {
  gw_router *r = new_router();
  gw_route_match m;

  T_EQ_INT(gw_router_add(r, "GET", "/healthz", h_a, 0, "healthz"), GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/docs/", h_a, 0, "docs"), GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/api/v1/auth/{id}", h_a, 0, "status"),
           GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/operators/{name}/notify", h_a, 0, "n"),
           GW_OK);

  T_EQ_INT(gw_router_match(r, "GET", "/healthz/", &m), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_router_match(r, "GET", "//healthz", &m), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_router_match(r, "GET", "/", &m), GW_ERR_NOT_FOUND);
  T_EQ_STR(match_name(r, "GET", "/docs/", &m), "docs");
  T_EQ_INT(gw_router_match(r, "GET", "/docs", &m), GW_ERR_NOT_FOUND);
  /* A parameter needs one non-empty segment. */
  T_EQ_INT(gw_router_match(r, "GET", "/api/v1/auth/", &m), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_router_match(r, "GET", "/api/v1/auth", &m), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_router_match(r, "GET", "/api/v1/auth/a/", &m), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_router_match(r, "GET", "/api/v1/auth/a/b", &m), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_router_match(r, "GET", "/operators//notify", &m),
           GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_router_match(r, "GET", "/api//v1/auth/x", &m), GW_ERR_NOT_FOUND);
  gw_router_del(r);
}

static void test_params(void) {
  gw_router *r = new_router();
  gw_route_match m;

  T_EQ_INT(gw_router_add(r, "GET", "/api/v1/auth/{auth_id}", h_a, 0, "st"),
           GW_OK);
  T_EQ_INT(
      gw_router_add(r, "POST", "/operators/{name}/notify", h_b, 65536, "nt"),
      GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/a/{x}/b/{y}/{z}", h_b, 0, "three"), GW_OK);

  T_EQ_INT(gw_router_match(r, "GET", "/api/v1/auth/0123-abcd", &m), GW_OK);
  T_EQ_INT(m.nparams, 1);
  T_EQ_STR(m.params[0].name, "auth_id");
  T_EQ_STR(m.params[0].value, "0123-abcd");
  T_EQ_STR(gw_route_param(&m, "auth_id"), "0123-abcd");
  T_ASSERT(gw_route_param(&m, "name") == NULL);
  T_ASSERT(gw_route_param(&m, "auth") == NULL);
  T_ASSERT(gw_route_param(NULL, "auth_id") == NULL);
  T_ASSERT(gw_route_param(&m, NULL) == NULL);

  T_EQ_INT(gw_router_match(r, "POST", "/operators/ooredoo/notify", &m), GW_OK);
  T_ASSERT(m.route && m.route->handler == h_b);
  T_EQ_STR(gw_route_param(&m, "name"), "ooredoo");

  T_EQ_INT(gw_router_match(r, "GET", "/a/1/b/2/3", &m), GW_OK);
  T_EQ_INT(m.nparams, 3);
  T_EQ_STR(gw_route_param(&m, "x"), "1");
  T_EQ_STR(gw_route_param(&m, "y"), "2");
  T_EQ_STR(gw_route_param(&m, "z"), "3");
  T_EQ_INT(gw_router_match(r, "GET", "/a/1/c/2/3", &m), GW_ERR_NOT_FOUND);

  /* A second match starts from scratch. */
  T_EQ_INT(gw_router_match(r, "GET", "/api/v1/auth/q", &m), GW_OK);
  T_EQ_INT(m.nparams, 1);
  T_ASSERT(gw_route_param(&m, "z") == NULL);
  gw_router_del(r);
}

static void test_param_decoding(void) {
  gw_router *r = new_router();
  gw_route_match m;
  char path[600];

  T_EQ_INT(gw_router_add(r, "GET", "/p/{v}", h_a, 0, "p"), GW_OK);

  T_EQ_INT(gw_router_match(r, "GET", "/p/%41b%20c%7e", &m), GW_OK);
  T_EQ_STR(gw_route_param(&m, "v"), "Ab c~");
  /* No '+' conversion in paths. */
  T_EQ_INT(gw_router_match(r, "GET", "/p/a+b", &m), GW_OK);
  T_EQ_STR(gw_route_param(&m, "v"), "a+b");
  T_EQ_INT(gw_router_match(r, "GET", "/p/%2B", &m), GW_OK);
  T_EQ_STR(gw_route_param(&m, "v"), "+");
  T_EQ_INT(gw_router_match(r, "GET", "/p/%c3%a9", &m), GW_OK);
  T_EQ_STR(gw_route_param(&m, "v"), "\xc3\xa9");

  /* A decoded '/' or NUL would change what the segment means. */
  T_EQ_INT(gw_router_match(r, "GET", "/p/a%2Fb", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/p/a%2fb", &m), GW_ERR_INVALID);
  T_ASSERT(m.route == NULL);
  T_EQ_INT(gw_router_match(r, "GET", "/p/a%00b", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/p/%2e%2e", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/p/%2E", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/p/.%2e.", &m), GW_OK);
  T_EQ_STR(gw_route_param(&m, "v"), "...");
  /* Bad escapes. */
  T_EQ_INT(gw_router_match(r, "GET", "/p/%zz", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/p/%4", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/p/%", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/p/%4g", &m), GW_ERR_INVALID);
  /* ... anywhere in the path, matched or not. */
  T_EQ_INT(gw_router_match(r, "GET", "/q%zz/x", &m), GW_ERR_INVALID);

  /* 255 decoded bytes fit, 256 do not. */
  memset(path, 0, sizeof(path));
  memcpy(path, "/p/", 3);
  memset(path + 3, 'v', 255);
  T_EQ_INT(gw_router_match(r, "GET", path, &m), GW_OK);
  T_EQ_INT(strlen(gw_route_param(&m, "v")), 255);
  path[3 + 255] = 'v';
  T_EQ_INT(gw_router_match(r, "GET", path, &m), GW_ERR_INVALID);
  /* What counts is the decoded length: 150 escapes are 450 raw bytes. */
  memset(path, 0, sizeof(path));
  memcpy(path, "/p/", 3);
  for (int i = 0; i < 150; i++) {
    memcpy(path + 3 + 3 * i, "%41", 3);
  }
  T_EQ_INT(gw_router_match(r, "GET", path, &m), GW_OK);
  T_EQ_INT(strlen(gw_route_param(&m, "v")), 150);
  gw_router_del(r);
}

/* Literal beats parameter at the same position whatever the add order. */
static void test_precedence(void) {
  for (int order = 0; order < 2; order++) {
    gw_router *r = new_router();
    gw_route_match m;

    if (order == 0) {
      T_EQ_INT(gw_router_add(r, "POST", "/api/v1/auth/{id}", h_a, 0, "param"),
               GW_OK);
      T_EQ_INT(gw_router_add(r, "POST", "/api/v1/auth/cancel", h_b, 0, "lit"),
               GW_OK);
    } else {
      T_EQ_INT(gw_router_add(r, "POST", "/api/v1/auth/cancel", h_b, 0, "lit"),
               GW_OK);
      T_EQ_INT(gw_router_add(r, "POST", "/api/v1/auth/{id}", h_a, 0, "param"),
               GW_OK);
    }
    T_EQ_STR(match_name(r, "POST", "/api/v1/auth/cancel", &m), "lit");
    T_EQ_INT(m.nparams, 0);
    T_EQ_STR(match_name(r, "POST", "/api/v1/auth/cancelx", &m), "param");
    T_EQ_STR(gw_route_param(&m, "id"), "cancelx");
    T_EQ_STR(match_name(r, "POST", "/api/v1/auth/%63ancel", &m), "param");
    T_EQ_STR(gw_route_param(&m, "id"), "cancel");
    gw_router_del(r);
  }

  /* The first position where two patterns differ decides. */
  for (int order = 0; order < 2; order++) {
    gw_router *r = new_router();
    gw_route_match m;

    if (order == 0) {
      T_EQ_INT(gw_router_add(r, "GET", "/a/{x}/c", h_a, 0, "axc"), GW_OK);
      T_EQ_INT(gw_router_add(r, "GET", "/a/b/{y}", h_a, 0, "aby"), GW_OK);
      T_EQ_INT(gw_router_add(r, "GET", "/{w}/{x}/{y}", h_a, 0, "www"), GW_OK);
    } else {
      T_EQ_INT(gw_router_add(r, "GET", "/{w}/{x}/{y}", h_a, 0, "www"), GW_OK);
      T_EQ_INT(gw_router_add(r, "GET", "/a/b/{y}", h_a, 0, "aby"), GW_OK);
      T_EQ_INT(gw_router_add(r, "GET", "/a/{x}/c", h_a, 0, "axc"), GW_OK);
    }
    T_EQ_STR(match_name(r, "GET", "/a/b/c", &m), "aby");
    T_EQ_STR(gw_route_param(&m, "y"), "c");
    T_EQ_STR(match_name(r, "GET", "/a/z/c", &m), "axc");
    T_EQ_STR(gw_route_param(&m, "x"), "z");
    T_EQ_STR(match_name(r, "GET", "/z/b/c", &m), "www");
    T_EQ_STR(gw_route_param(&m, "w"), "z");
    gw_router_del(r);
  }
}

static void test_not_found_vs_method(void) {
  gw_router *r = new_router();
  gw_route_match m;

  T_EQ_INT(gw_router_add(r, "GET", "/healthz", h_a, 0, "healthz"), GW_OK);
  T_EQ_INT(gw_router_add(r, "POST", "/api/v1/auth", h_a, 4096, "start"), GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/api/v1/auth/{id}", h_a, 0, "status"),
           GW_OK);
  T_EQ_INT(gw_router_add(r, "POST", "/api/v1/auth/cancel", h_a, 0, "cancel"),
           GW_OK);
  T_EQ_INT(gw_router_add(r, "DELETE", "/api/v1/auth/{id}", h_a, 0, "del"),
           GW_OK);
  T_EQ_INT(gw_router_add(r, "PUT", "/x", h_a, 0, "x"), GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/x", h_a, 0, "x"), GW_OK);
  T_EQ_INT(gw_router_add(r, "POST", "/x", h_a, 0, "x"), GW_OK);
  T_EQ_INT(gw_router_add(r, "HEAD", "/y", h_a, 0, "y"), GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/y", h_a, 0, "y"), GW_OK);

  T_EQ_INT(gw_router_match(r, "GET", "/nope", &m), GW_ERR_NOT_FOUND);
  T_EQ_STR(m.allow, "");
  T_ASSERT(m.route == NULL);

  T_EQ_INT(gw_router_match(r, "POST", "/healthz", &m), GW_ERR_METHOD);
  T_ASSERT(m.route == NULL);
  T_EQ_STR(m.allow, "GET, HEAD");
  T_EQ_INT(gw_router_match(r, "GET", "/api/v1/auth", &m), GW_ERR_METHOD);
  T_EQ_STR(m.allow, "POST");
  T_EQ_INT(gw_router_match(r, "HEAD", "/api/v1/auth", &m), GW_ERR_METHOD);
  T_EQ_STR(m.allow, "POST");
  /* Methods of every pattern that matches the path, unique, table order. */
  T_EQ_INT(gw_router_match(r, "PUT", "/api/v1/auth/cancel", &m), GW_ERR_METHOD);
  T_EQ_STR(m.allow, "GET, HEAD, POST, DELETE");
  T_EQ_INT(gw_router_match(r, "PUT", "/api/v1/auth/abc", &m), GW_ERR_METHOD);
  T_EQ_STR(m.allow, "GET, HEAD, DELETE");
  T_EQ_INT(gw_router_match(r, "DELETE", "/x", &m), GW_ERR_METHOD);
  T_EQ_STR(m.allow, "PUT, GET, HEAD, POST");
  T_EQ_INT(gw_router_match(r, "POST", "/y", &m), GW_ERR_METHOD);
  T_EQ_STR(m.allow, "HEAD, GET");

  /* A method that exists for the path is routed, even if a more specific
   * pattern exists for another method. */
  T_EQ_STR(match_name(r, "GET", "/api/v1/auth/cancel", &m), "status");
  T_EQ_STR(match_name(r, "POST", "/api/v1/auth/cancel", &m), "cancel");
  T_EQ_STR(match_name(r, "DELETE", "/api/v1/auth/cancel", &m), "del");
  gw_router_del(r);
}

static void test_allow_does_not_overflow(void) {
  static const char *methods[] = {
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
      "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD",
      "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE", "GET"};
  gw_router *r = new_router();
  gw_route_match m;

  for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
    T_EQ_INT(gw_router_add(r, methods[i], "/m", h_a, 0, "m"), GW_OK);
  }
  T_EQ_INT(gw_router_match(r, "POST", "/m", &m), GW_ERR_METHOD);
  T_ASSERT(strlen(m.allow) < sizeof(m.allow));
  /* Whole names only: the list is a prefix of the full one. */
  T_EQ_STR(m.allow, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA, "
                    "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB, "
                    "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC, GET, HEAD");
  gw_router_del(r);
}

static void test_head(void) {
  gw_router *r = new_router();
  gw_route_match m;

  T_EQ_INT(gw_router_add(r, "GET", "/healthz", h_a, 0, "healthz"), GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/api/v1/auth/{id}", h_a, 0, "status"),
           GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/z", h_a, 0, "z-get"), GW_OK);
  T_EQ_INT(gw_router_add(r, "HEAD", "/z", h_b, 0, "z-head"), GW_OK);

  T_EQ_STR(match_name(r, "HEAD", "/healthz", &m), "healthz");
  T_EQ_STR(match_name(r, "HEAD", "/api/v1/auth/42", &m), "status");
  T_EQ_STR(gw_route_param(&m, "id"), "42");
  /* An explicit HEAD route wins over the GET one. */
  T_EQ_STR(match_name(r, "HEAD", "/z", &m), "z-head");
  T_EQ_STR(match_name(r, "GET", "/z", &m), "z-get");
  /* GET does not match HEAD routes. */
  gw_router_del(r);

  r = new_router();
  T_EQ_INT(gw_router_add(r, "HEAD", "/only-head", h_a, 0, "oh"), GW_OK);
  T_EQ_INT(gw_router_match(r, "GET", "/only-head", &m), GW_ERR_METHOD);
  T_EQ_STR(m.allow, "HEAD");
  gw_router_del(r);
}

static void test_bad_paths(void) {
  gw_router *r = new_router();
  gw_route_match m;
  char *longp;

  T_EQ_INT(gw_router_add(r, "GET", "/healthz", h_a, 0, "healthz"), GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/p/{v}", h_a, 0, "p"), GW_OK);

  T_EQ_INT(gw_router_match(r, "GET", "", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "healthz", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "OPTIONS", "*", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "http://h/healthz", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/healthz\x01", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/healthz\x7f", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/heal\tthz", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/p/a\r\nX: y", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/p/a b", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/healthz?x=1", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/healthz#f", &m), GW_ERR_INVALID);
  /* Dot segments are refused, not resolved. */
  T_EQ_INT(gw_router_match(r, "GET", "/p/..", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/p/.", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/x/../healthz", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/./healthz", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/..", &m), GW_ERR_INVALID);
  T_EQ_STR(match_name(r, "GET", "/p/..a", &m), "p");
  T_EQ_STR(match_name(r, "GET", "/p/.a", &m), "p");
  /* Bytes >= 0x80 pass through (as nghttp2 lets them). */
  T_EQ_STR(match_name(r, "GET", "/p/\xc3\xa9", &m), "p");

  /* NULL arguments. */
  T_EQ_INT(gw_router_match(NULL, "GET", "/healthz", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, NULL, "/healthz", &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", NULL, &m), GW_ERR_INVALID);
  T_EQ_INT(gw_router_match(r, "GET", "/healthz", NULL), GW_ERR_INVALID);

  /* Exactly GW_ROUTE_MAX_PATH bytes is a path; one more is not. Built in a
   * buffer of exactly that size so that ASan sees any over-read. */
  longp = malloc(GW_ROUTE_MAX_PATH + 2);
  T_ASSERT(longp != NULL);
  if (longp) {
    memset(longp, 'a', GW_ROUTE_MAX_PATH + 1);
    longp[0] = '/';
    longp[GW_ROUTE_MAX_PATH] = '\0';
    T_EQ_INT(gw_router_match(r, "GET", longp, &m), GW_ERR_NOT_FOUND);
    longp[GW_ROUTE_MAX_PATH] = 'a';
    longp[GW_ROUTE_MAX_PATH + 1] = '\0';
    T_EQ_INT(gw_router_match(r, "GET", longp, &m), GW_ERR_INVALID);
    free(longp);
  }
  gw_router_del(r);
}

static void test_add_rejects(void) {
  gw_router *r = new_router();
  char nine[64];
  char *longp;

  T_EQ_INT(gw_router_add(r, "GET", "/a/{id}", h_a, 0, "a"), GW_OK);

  /* Patterns. */
  T_EQ_INT(gw_router_add(r, "GET", "", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "x", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "x/{a}", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/{", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/{a", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/a}", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/{}", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/x{a}", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/{a}x", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/{a/b}", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/{a-b}", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/{{a}}", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/{a}/{a}", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b//c", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "//", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/../c", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b/.", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b c", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b?c", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b%zz", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/b\x01", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", NULL, h_a, 0, "x"), GW_ERR_INVALID);

  /* GW_ROUTE_MAX_PARAMS parameters fit, one more does not. */
  strcpy(nine, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}");
  T_EQ_INT(gw_router_add(r, "GET", nine, h_a, 0, "eight"), GW_OK);
  strcpy(nine, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}");
  T_EQ_INT(gw_router_add(r, "GET", nine, h_a, 0, "nine"), GW_ERR_INVALID);

  /* Duplicates: same method and pattern, or same shape. */
  T_EQ_INT(gw_router_add(r, "GET", "/a/{id}", h_b, 0, "a2"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET", "/a/{other}", h_b, 0, "a3"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "POST", "/a/{id}", h_b, 0, "a4"), GW_OK);
  T_EQ_INT(gw_router_add(r, "HEAD", "/a/{id}", h_b, 0, "a5"), GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/a/b", h_b, 0, "a6"), GW_OK);
  T_EQ_INT(gw_router_add(r, "GET", "/a/b/", h_b, 0, "a7"), GW_OK);

  /* Methods. */
  T_EQ_INT(gw_router_add(r, "", "/m", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GE T", "/m", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GET\n", "/m", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, "GE,T", "/m", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(
      gw_router_add(r, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/m", h_a, 0, "x"),
      GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(r, NULL, "/m", h_a, 0, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_router_add(NULL, "GET", "/m", h_a, 0, "x"), GW_ERR_INVALID);

  /* Pattern length. */
  longp = malloc(GW_ROUTE_MAX_PATH + 2);
  T_ASSERT(longp != NULL);
  if (longp) {
    memset(longp, 'p', GW_ROUTE_MAX_PATH + 1);
    longp[0] = '/';
    longp[GW_ROUTE_MAX_PATH + 1] = '\0';
    T_EQ_INT(gw_router_add(r, "GET", longp, h_a, 0, "x"), GW_ERR_INVALID);
    free(longp);
  }

  /* Nothing rejected was added. */
  T_EQ_INT(gw_router_count(r), 6);
  gw_router_del(r);

  T_EQ_INT(gw_router_new(NULL), GW_ERR_INVALID);
}

static void test_index_and_get(void) {
  static const char *paths[] = {"/a", "/b/{x}", "/c", "/d/{y}/e"};
  gw_router *r = new_router();
  gw_route_match m;

  for (size_t i = 0; i < 4; i++) {
    T_EQ_INT(gw_router_add(r, "GET", paths[i], h_a, i, paths[i]), GW_OK);
  }
  T_EQ_INT(gw_router_count(r), 4);
  for (size_t i = 0; i < 4; i++) {
    const gw_route *rt = gw_router_get(r, i);

    T_ASSERT(rt != NULL);
    if (rt) {
      T_EQ_INT(rt->index, i);
      T_EQ_STR(rt->pattern, paths[i]);
      T_EQ_INT(rt->max_body, i);
    }
  }
  T_ASSERT(gw_router_get(r, 4) == NULL);
  T_ASSERT(gw_router_get(NULL, 0) == NULL);
  T_EQ_INT(gw_router_count(NULL), 0);

  T_EQ_INT(gw_router_match(r, "GET", "/d/1/e", &m), GW_OK);
  T_EQ_INT(m.route->index, 3);
  T_ASSERT(m.route == gw_router_get(r, 3));
  gw_router_del(r);
}

/* Route pointers stay valid while the table grows. */
static void test_many_routes(void) {
  static char pats[100][16];
  gw_router *r = new_router();
  const gw_route *first = NULL;
  gw_route_match m;

  for (int i = 0; i < 100; i++) {
    snprintf(pats[i], sizeof(pats[i]), "/r%d/{v}", i);
    T_EQ_INT(gw_router_add(r, "GET", pats[i], h_a, 0, pats[i]), GW_OK);
    if (i == 0) {
      first = gw_router_get(r, 0);
    }
  }
  T_ASSERT(first == gw_router_get(r, 0));
  T_EQ_STR(first->pattern, "/r0/{v}");
  T_EQ_INT(gw_router_match(r, "GET", "/r77/x", &m), GW_OK);
  T_EQ_INT(m.route->index, 77);
  T_EQ_STR(gw_route_param(&m, "v"), "x");
  gw_router_del(r);
}

int main(void) {
  T_RUN(test_empty);
  T_RUN(test_literal);
  T_RUN(test_trailing_slash_and_empty_segments);
  T_RUN(test_params);
  T_RUN(test_param_decoding);
  T_RUN(test_precedence);
  T_RUN(test_not_found_vs_method);
  T_RUN(test_allow_does_not_overflow);
  T_RUN(test_head);
  T_RUN(test_bad_paths);
  T_RUN(test_add_rejects);
  T_RUN(test_index_and_get);
  T_RUN(test_many_routes);
  return T_DONE();
}
