/* gw_oidc.h — the OpenID Connect provider's HTTP endpoints (docs/oidc.md).
 *
 *   GET  /.well-known/openid-configuration   discovery (OpenID Discovery 1.0)
 *   GET  /jwks.json                          the token keys (gw_signer_jwks)
 *   POST /bc-authorize                       CIBA Core 1.0, poll mode
 *   POST /token                              grant urn:openid:params:
 *                                            grant-type:ciba
 *   POST /introspect                         RFC 7662
 *   POST /revoke                             RFC 7009
 *   GET|POST /userinfo                       OpenID Connect Core §5.3
 *
 * The authorization_code and refresh_token grants of /token, and refresh
 * tokens given to /introspect and /revoke, are gw_authz.c's (gw_authz.h);
 * so are /authorize, /logout and the native API.
 *
 * The handlers take everything from the gw_app (gw_exch_app): cfg (oidc.*,
 * store.*), clients (client authentication), txn (the sign-in engine),
 * signer (token keys) and pool (gw_jwt_sign blocks: tokens are signed on a
 * pool thread). A missing part answers 503 temporarily_unavailable.
 *
 * Errors are OAuth's {"error", "error_description"} with Cache-Control:
 * no-store; every refusal is logged once (rate-limited per thread) with
 * its real reason; secrets (client secrets, tokens, auth_req_id) never
 * are. Nothing is sent to a phone for a request that fails validation:
 * gw_txn_begin is the last step of /bc-authorize.
 *
 * Access tokens are RFC 9068 JWTs (typ at+jwt, signed with
 * oidc.signing_alg): iss, sub (the civil number), aud (the one resource
 * asked for, or <issuer>/userinfo), exp, iat, jti, client_id, scope,
 * auth_time, acr, amr ["mpki"]. They are revocable by jti (the store's
 * revoked-token table, checked on every introspection and userinfo call
 * through a store handle per thread, opened on first use and closed when
 * the thread exits). */
#ifndef GW_OIDC_H
#define GW_OIDC_H

#include <jansson.h>

#include "gw_router.h"

struct gw_app;

/* The body cap of every POST route (form bodies are small). */
#define GW_OIDC_FORM_MAX 8192
/* Any parameter value longer than this is invalid_request (the token
 * parameter of /introspect and /revoke excepted: capped by the body). */
#define GW_OIDC_PARAM_MAX 2048
/* The acr of every sign-in: a signature by the SIM's PKI key, under the
 * national PKI, after the user typed the SIM PIN. */
#define GW_OIDC_ACR "urn:mpkigw:acr:mobile-pki"

/* Adds the provider's routes to |r|. Returns gw_router_add's errors
 * (GW_ERR_INVALID for a route already there, GW_ERR_NOMEM). */
int gw_oidc_register(gw_router *r);

/* Checks an access token as a resource server must (RFC 9068 §4): the
 * signature with the gateway's keys (ES256/RS256 only, typ at+jwt), iss ==
 * oidc.issuer, exp in the future, the claims present and well-typed, aud
 * equal to |aud| when |aud| is not NULL, and the jti not revoked. Runs on
 * any thread (the store is read through that thread's own handle). On
 * GW_OK stores the claims in |*claims| (a new reference). Returns GW_OK,
 * GW_ERR_INVALID (not a valid, live token of ours: |*why| says why, a
 * static text for the log), or GW_ERR_STORE when revocation cannot be
 * checked (the signer or the store is not available): the caller fails
 * closed. */
int gw_oidc_access_token_check(struct gw_app *app, const char *token,
                               const char *aud, json_t **claims,
                               const char **why);

/* ---- shared with gw_authz.c (the browser and native flows) ------------ */

struct event_base;
struct gw_config;
struct gw_store;

/* The calling thread's store handle (opened on first use, closed when the
 * thread exits; see gw_oidc.c), or NULL when it cannot be opened (logged,
 * rate-limited). Never close it. */
struct gw_store *gw_oidc_thread_store(const struct gw_config *cfg);

#define GW_OIDC_NONCE_MAX 255

/* What to mint tokens for, without a CIBA transaction: strings are copied
 * (NULL = ""); |client_id| and |sub| are required. */
typedef struct gw_oidc_grant {
  const char *client_id;
  const char *id_token_alg; /* the client's; NULL = ES256 */
  const char *sub;          /* the civil number */
  const char *msisdn, *name;
  const char *scope, *resource, *acr;
  const char *nonce; /* the ID token's nonce claim, NULL/"" = none */
  long long auth_time;
} gw_oidc_grant;

/* |rv| GW_OK: |at| / |idt| are the signed access and ID tokens (borrowed
 * for the call), |jti| and |exp| the access token's; otherwise they are
 * NULL and |rv| says why (logged by the caller). */
typedef void (*gw_oidc_mint_fn)(void *arg, int rv, const char *at,
                                const char *idt, const char *jti,
                                long long exp);

/* Signs an access token and an ID token for |g| exactly as the CIBA grant
 * does (same claims, algorithms and lifetimes), on app->pool, then calls
 * |fn(arg, ...)| on |base|'s thread (never inside this call). From
 * |base|'s thread. Returns GW_OK, GW_ERR_STORE (no signer or pool),
 * GW_ERR_INVALID, GW_ERR_BUSY (the pool's queue is full), GW_ERR_NOMEM;
 * |fn| is not called then. */
int gw_oidc_mint(struct gw_app *app, struct event_base *base,
                 const gw_oidc_grant *g, gw_oidc_mint_fn fn, void *arg);

#endif
