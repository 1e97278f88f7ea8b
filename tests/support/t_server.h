/* t_server.h — an in-process gateway server for tests.
 *
 * ts_start() makes a fresh mkdtemp() directory under /tmp holding a
 * self-signed P-256 certificate made with the OpenSSL API (subjectAltName
 * localhost and 127.0.0.1, so that a client verifies the server with that
 * file as its only CA), its key and a config file; loads the config; lets
 * the test change it; builds the router (the gateway's own handlers plus
 * the test's routes) and starts the server, its listen ports 0 (any free
 * port) read back with gw_server_port(). ts_stop() undoes all of it.
 *
 * Both print what went wrong as "#" lines and leave failing the test to
 * the caller (harness.h's t_case_failed belongs to the test program). */
#ifndef TESTS_SUPPORT_T_SERVER_H
#define TESTS_SUPPORT_T_SERVER_H

#include "gw_config.h"
#include "gw_router.h"
#include "gw_server.h"

typedef struct ts_server {
  char dir[64];   /* the temporary directory */
  char cert[128]; /* its cert.pem: the CA file for clients */
  gw_config *cfg;
  gw_router *router;
  gw_server *srv;
  int port;     /* the TLS listener's */
  int h2c_port; /* the cleartext listener's (h2c and HTTP/1.1) */
} ts_server;

/* Starts a server with |workers| threads into |t|. The config has
 * shutdown_grace_ms 500, log level warn and no access log; |tweak| (may be
 * NULL) changes it after loading, so it may set limits below the file's
 * minimums. |routes| (may be NULL) adds the test's routes. Returns 0 or -1
 * (printed). */
int ts_start(ts_server *t, int workers, void (*tweak)(gw_config *),
             int (*routes)(gw_router *));

/* As ts_start, with |app| as the server's application context (what
 * handlers get from gw_exch_app; NULL: |t| itself, as ts_start does). */
int ts_start_app(ts_server *t, int workers, void (*tweak)(gw_config *),
                 int (*routes)(gw_router *), void *app);

/* Shuts the server down (if still running), joins and frees it, frees the
 * router and the config and removes the directory. */
void ts_stop(ts_server *t);

/* The value of the unlabelled metric |name| on the server's /metrics page,
 * or -1 when it is not there. */
long ts_metric(ts_server *t, const char *name);

/* Test routes for the transport tests, as |routes| for ts_start():
 *   GET  /echo/{id}  200 {"id": id, "method": method, "query": query?}
 *   POST /body       200 {"length": n, "body": "..."} (body cap 1024) */
int ts_echo_routes(gw_router *r);

#endif
