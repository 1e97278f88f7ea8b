/* fuzz_form.c — libFuzzer target for gw_form.c and gw_router.c.
 *
 * The input is treated as a request target "path?query": the whole input is
 * parsed as a form, the part after the first '?' again as a query string,
 * and the part before it is matched against a small route table with
 * several methods. Beyond the sanitizers, the target checks the documented
 * promises and aborts when one is broken.
 *
 * Build with libFuzzer:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Igateway \
 *     tests/fuzz/fuzz_form.c gateway/gw_form.c gateway/gw_router.c \
 *     gateway/gw_err.c -o fuzz_form
 * or with any compiler and tests/fuzz/replay.c to run the corpus once. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_err.h"
#include "gw_form.h"
#include "gw_router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static void h_fuzz(struct gw_exch *x) { (void)x; }

static const struct {
  const char *method;
  const char *pattern;
} fuzz_routes[] = {
    {"GET", "/healthz"},
    {"GET", "/metrics"},
    {"GET", "/"},
    {"POST", "/api/v1/auth"},
    {"GET", "/api/v1/auth/{auth_id}"},
    {"DELETE", "/api/v1/auth/{auth_id}"},
    {"POST", "/api/v1/auth/cancel"},
    {"POST", "/operators/{name}/notify"},
    {"GET", "/a/{x}/c"},
    {"GET", "/a/b/{y}"},
    {"PUT", "/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}"},
    {"HEAD", "/docs/"},
};

static const char *const fuzz_methods[] = {"GET", "HEAD", "POST", "DELETE",
                                           "PATCH"};

/* Built once and kept for the life of the process. */
static gw_router *fuzz_router(void) {
  static gw_router *r;
  size_t i;

  if (r) {
    return r;
  }
  CHECK(gw_router_new(&r) == GW_OK);
  for (i = 0; i < sizeof(fuzz_routes) / sizeof(fuzz_routes[0]); i++) {
    CHECK(gw_router_add(r, fuzz_routes[i].method, fuzz_routes[i].pattern,
                        h_fuzz, 0, fuzz_routes[i].pattern) == GW_OK);
  }
  return r;
}

static void fuzz_one_form(const char *s, size_t n) {
  gw_form f = {0};
  int rv = gw_form_parse(&f, s, n);
  size_t i;

  CHECK(rv == GW_OK || rv == GW_ERR_INVALID || rv == GW_ERR_TOO_LARGE);
  CHECK(f.npairs <= GW_FORM_MAX_PAIRS);
  if (rv != GW_OK) {
    CHECK(f.npairs == 0 && f.storage == NULL);
  }
  for (i = 0; i < f.npairs; i++) {
    const char *name = f.pairs[i].name, *value = f.pairs[i].value;

    CHECK(name && value);
    /* Decoding never lengthens: both fit in what was read. */
    CHECK(strlen(name) <= n && strlen(value) <= n);
    CHECK(gw_form_get(&f, name) != NULL);
    CHECK(gw_form_count(&f, name) >= 1);
  }
  gw_form_free(&f);
  gw_form_free(&f);

  /* gw_url_decode on its own, both ways. */
  {
    char *dst = malloc(n + 1);
    size_t outlen;
    int plus;

    CHECK(dst != NULL);
    for (plus = 0; plus < 2; plus++) {
      rv = gw_url_decode(dst, s, n, plus, &outlen);
      if (rv == GW_OK) {
        CHECK(outlen <= n && strlen(dst) == outlen);
      } else {
        CHECK(rv == GW_ERR_INVALID);
      }
    }
    free(dst);
  }
}

static void fuzz_one_path(const char *path) {
  const gw_router *r = fuzz_router();
  gw_route_match m;
  size_t i, j;

  for (i = 0; i < sizeof(fuzz_methods) / sizeof(fuzz_methods[0]); i++) {
    int rv = gw_router_match(r, fuzz_methods[i], path, &m);

    switch (rv) {
    case GW_OK:
      CHECK(m.route != NULL);
      CHECK(strcmp(m.route->method, fuzz_methods[i]) == 0 ||
            (strcmp(fuzz_methods[i], "HEAD") == 0 &&
             strcmp(m.route->method, "GET") == 0));
      CHECK(m.route == gw_router_get(r, (size_t)m.route->index));
      CHECK(m.nparams <= GW_ROUTE_MAX_PARAMS);
      CHECK(path[0] == '/' && strlen(path) <= GW_ROUTE_MAX_PATH);
      for (j = 0; j < m.nparams; j++) {
        const char *v = m.params[j].value;

        CHECK(m.params[j].name != NULL);
        CHECK(memchr(v, '\0', sizeof(m.params[j].value)) != NULL);
        CHECK(v[0] != '\0' && strchr(v, '/') == NULL);
        CHECK(strcmp(v, ".") != 0 && strcmp(v, "..") != 0);
        CHECK(gw_route_param(&m, m.params[j].name) != NULL);
      }
      break;
    case GW_ERR_METHOD:
      CHECK(m.route == NULL);
      CHECK(m.allow[0] != '\0');
      CHECK(memchr(m.allow, '\0', sizeof(m.allow)) != NULL);
      /* Every method listed would have matched, so not this one. */
      CHECK(strstr(m.allow, fuzz_methods[i]) == NULL);
      break;
    case GW_ERR_NOT_FOUND:
    case GW_ERR_INVALID:
      CHECK(m.route == NULL);
      break;
    default:
      CHECK(!"unexpected return code");
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  const char *q = memchr(s, '?', size);
  size_t plen = q ? (size_t)(q - s) : size;
  char *path;

  fuzz_one_form(s, size);
  if (q) {
    fuzz_one_form(q + 1, size - plen - 1);
  }

  /* The router takes a C string: an embedded NUL ends the path, as it
   * would if the server forgot to refuse one. */
  path = malloc(plen + 1);
  CHECK(path != NULL);
  if (plen) {
    memcpy(path, s, plen);
  }
  path[plen] = '\0';
  fuzz_one_path(path);
  free(path);
  return 0;
}
