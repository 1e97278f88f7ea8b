/* gw_app.h — the gateway's application context: what mpkigw's request
 * handlers reach through gw_exch_app(x). main.c owns it; tests that run
 * handlers in-process fill the parts they need (the rest NULL). Handlers
 * must cope with a NULL part by answering 503, not by crashing. */
#ifndef GW_APP_H
#define GW_APP_H

struct event_base;
struct gw_config;
struct gw_server;
struct gw_store;
struct op_registry;

typedef struct gw_app {
  struct gw_config *cfg;
  struct gw_store *store; /* the main thread's handle, for housekeeping */
  struct gw_server *server;
  struct op_registry *operators; /* routing + adapters (op_adapter.h) */
  struct event_base *base;       /* the main thread's loop */
  int store_ok;
} gw_app;

#endif
