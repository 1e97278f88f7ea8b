/* gw_authz.h — the browser and native sign-in flows (issue 7;
 * docs/browser.md).
 *
 *   GET  /authorize            authorization code + PKCE (S256): the login
 *                              page itself (200, sets the session cookie)
 *   POST /authorize/finish     the page, after a sign-in: {redirect} with
 *                              the code bound to the /authorize request
 *   POST /authorize/cancel     the page: {redirect} with access_denied
 *   POST /api/v1/auth          start a sign-in {msisdn|civil_id, lang}
 *   GET  /api/v1/auth/{id}     long poll (?timeout_ms=0..60000)
 *   DELETE /api/v1/auth/{id}   cancel (and the operator request)
 *   GET|POST /logout           RP-initiated logout
 *
 * and, called by gw_oidc.c's /token, /introspect and /revoke, the
 * authorization_code and refresh_token grants and refresh tokens.
 *
 * Callers of /api/v1/auth are the login page (the session cookie, a
 * pending /authorize request, the X-CSRF-Token header, Origin, JSON) or a
 * registered client with the CIBA grant authenticating with
 * client_secret_basic; anyone else gets 401/403 before the body is
 * parsed. Sessions, codes and sign-in handles live in memory (one
 * process); refresh tokens in the store's key/value table as SHA-256
 * hashes. */
#ifndef GW_AUTHZ_H
#define GW_AUTHZ_H

#include "gw_client.h"
#include "gw_form.h"
#include "gw_router.h"

struct gw_config;
struct gw_exch;
struct gw_sessions;

/* The session cookie (a __Host- cookie: Secure, Path=/, no Domain). */
#define GW_AUTHZ_COOKIE "__Host-mpkigw-session"
/* Body cap of the JSON routes. */
#define GW_AUTHZ_JSON_MAX 1024

typedef struct gw_authz gw_authz;

/* Creates the flows' state from oidc.session_idle_s, session_max_s,
 * code_ttl_s, refresh_ttl_s. Call at start-up, before the workers;
 * store it in gw_app.authz. Returns GW_OK, GW_ERR_INVALID, GW_ERR_NOMEM;
 * |*out| untouched on failure. */
int gw_authz_new(gw_authz **out, const struct gw_config *cfg);

/* Frees |a| after the workers stopped. NULL is a no-op. */
void gw_authz_del(gw_authz *a);

/* Sends session and token events to the audit log (gw_audit.h):
 * session.created, session.ended, token.issued (code and refresh grants),
 * refresh.reuse. NULL: none. Call before the workers start. */
struct gw_audit;
void gw_authz_set_audit(gw_authz *a, struct gw_audit *audit);

/* The session table (tests, metrics). */
struct gw_sessions *gw_authz_sessions(gw_authz *a);

/* Adds the routes above to |r|. Returns gw_router_add's errors. */
int gw_authz_register(gw_router *r);

/* /token with grant_type |grant| "authorization_code" or "refresh_token",
 * after gw_oidc.c authenticated |client| and checked |form| (no repeated
 * parameter but resource, values capped). Answers |x| (OAuth errors). */
void gw_authz_token(struct gw_exch *x, const gw_client *client,
                    const gw_form *form, const char *grant);

/* 1 when |token| has the shape of our refresh tokens (43 base64url
 * characters; access tokens are JWTs with dots). */
int gw_authz_is_refresh(const char *token);

/* RFC 7662 / RFC 7009 for a refresh token of |client|: answers |x|
 * ({"active":false} / 200 for anything not |client|'s). Revoking a
 * refresh token revokes its family. */
void gw_authz_introspect_refresh(struct gw_exch *x, const gw_client *client,
                                 const char *token);
void gw_authz_revoke_refresh(struct gw_exch *x, const gw_client *client,
                             const char *token);

/* "+968 9••• ••01" for "+96899000001" into |out| (cap >= 32). */
void gw_authz_mask_msisdn(const char *msisdn, char *out, size_t cap);

#endif
