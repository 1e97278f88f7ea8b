/* gw_router.h — the route table: method + path pattern -> handler.
 *
 * Patterns are literal segments and parameters: "/api/v1/auth/{auth_id}",
 * "/operators/{name}/notify". A parameter matches one non-empty segment.
 * Matching is on the raw (still percent-encoded) path; parameter values are
 * percent-decoded into the match. Literal routes win over parameter routes
 * at the same segment regardless of the order they were added. */
#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stddef.h>

#define GW_ROUTE_MAX_PARAMS 8
#define GW_ROUTE_MAX_PATH 2048
#define GW_ROUTE_BODY_DEFAULT ((size_t)-1)

struct gw_exch;
typedef void (*gw_handler_fn)(struct gw_exch *x);

typedef struct gw_route {
  const char *method;  /* "GET", "POST", ... (HEAD matches GET routes) */
  const char *pattern; /* "/a/{b}/c" */
  gw_handler_fn handler;
  size_t max_body;  /* request body cap in bytes; 0 = no body accepted;
                     * GW_ROUTE_BODY_DEFAULT = limits.max_body_size. The
                     * server never allows more than limits.max_body_size */
  const char *name; /* metrics label, e.g. "healthz" */
  int index;        /* position in the table, set by gw_router_add */
} gw_route;

typedef struct gw_route_match {
  const gw_route *route;
  size_t nparams;
  struct {
    const char *name; /* borrowed from the pattern (a NUL-terminated copy
                         the router owns, valid until gw_router_del) */
    char value[256];  /* decoded value */
  } params[GW_ROUTE_MAX_PARAMS];
  char allow[128]; /* on GW_ERR_METHOD: "GET, HEAD" for the Allow header */
} gw_route_match;

typedef struct gw_router gw_router;

/* Creates an empty table. Returns GW_OK or GW_ERR_NOMEM. */
int gw_router_new(gw_router **out);
void gw_router_del(gw_router *r);

/* Adds a route; strings are borrowed and must outlive the router.
 * Returns GW_OK, GW_ERR_INVALID (pattern not starting with '/', malformed
 * "{", too many params, duplicate method+pattern) or GW_ERR_NOMEM.
 * Patterns differing only in parameter names are duplicates. */
int gw_router_add(gw_router *r, const char *method, const char *pattern,
                  gw_handler_fn handler, size_t max_body, const char *name);

/* Matches |method| and |path| (no query string). Returns GW_OK with |m|
 * filled; GW_ERR_NOT_FOUND when no pattern matches the path;
 * GW_ERR_METHOD when patterns match but none for this method (m->allow
 * lists the methods that would); GW_ERR_INVALID for a path that is not
 * origin-form, too long, or a parameter with a bad escape or over 255
 * bytes decoded. Precedence (literal over parameter) is decided among the
 * routes that fit |method|; a parameter that decodes to '/', NUL, "." or
 * "..", and a path with a "." or ".." segment, are GW_ERR_INVALID. */
int gw_router_match(const gw_router *r, const char *method, const char *path,
                    gw_route_match *m);

/* Number of routes and the route at |i| (for metrics labels). */
size_t gw_router_count(const gw_router *r);
const gw_route *gw_router_get(const gw_router *r, size_t i);

/* Returns the value of parameter |name| in |m|, or NULL. */
const char *gw_route_param(const gw_route_match *m, const char *name);

#endif
