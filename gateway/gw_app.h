/* gw_app.h — the gateway's application context: what mpkigw's request
 * handlers reach through gw_exch_app(x). main.c owns it; tests that run
 * handlers in-process fill the parts they need (the rest NULL). Handlers
 * must cope with a NULL part by answering 503, not by crashing. */
#ifndef GW_APP_H
#define GW_APP_H

struct event_base;
struct gw_audit;
struct gw_authz;
struct gw_clients;
struct gw_config;
struct gw_server;
struct gw_signer;
struct gw_store;
struct gw_txn_engine;
struct op_registry;
struct p11_pool;

typedef struct gw_app {
  struct gw_config *cfg;
  struct gw_store *store; /* the main thread's handle, for housekeeping */
  struct gw_server *server;
  struct op_registry *operators; /* routing + adapters (op_adapter.h) */
  struct event_base *base;       /* the main thread's loop */
  int store_ok;
  /* the OpenID Connect provider (gw_oidc.h); all shared by every worker */
  struct gw_txn_engine *txn;  /* sign-in transactions (gw_txn.h) */
  struct gw_clients *clients; /* relying parties, in memory (gw_client.h) */
  struct gw_signer *signer;   /* token keys, JWKS (gw_jose.h) */
  struct p11_pool *pool;      /* blocking PKCS#11 work (gw_async.h) */
  /* the browser and native flows (gw_authz.h): login sessions,
   * authorization codes, native sign-ins; NULL = those routes answer 503 */
  struct gw_authz *authz;
  struct gw_audit *audit; /* the audit log (gw_audit.h); NULL = none */
} gw_app;

#endif
