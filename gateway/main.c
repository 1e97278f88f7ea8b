/* main.c — the mpkigw daemon: command line, start-up, the main thread's
 * signal handling and housekeeping timer, and orderly shutdown. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_app.h"
#include "gw_audit.h"
#include "gw_authz.h"
#include "gw_client.h"
#include "gw_jose.h"
#include "gw_oidc.h"
#include "gw_pki.h"
#include "gw_txn.h"
#include "p11.h"
#include "gw_handlers.h"
#include "gw_operators.h"
#include "gw_log.h"
#include "gw_router.h"
#include "gw_server.h"
#include "gw_store.h"
#include "op_adapter.h"

#ifndef MPKIGW_VERSION
#define MPKIGW_VERSION "0.1.0"
#endif

typedef gw_app app; /* the handlers' context (gw_app.h) */

static void usage(FILE *fp) {
  fprintf(fp,
          "Usage: mpkigw [--config FILE]\n"
          "       mpkigw --check-config FILE\n"
          "\n"
          "The mobile SIM-PKI authentication gateway: an HTTP/2 (and "
          "HTTP/1.1) server\nover TLS 1.2/1.3.\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE        configuration file (default: "
          "var/mpkigw.conf if it\n"
          "                           exists, else configs/mpkigw.conf)\n"
          "  -t, --check-config FILE  check FILE and exit (0 = valid; "
          "errors as file:line)\n"
          "      --help-config        list every configuration key with "
          "type, bounds, default\n"
          "  -h, --help               this text\n"
          "  -V, --version            version and library versions\n"
          "\n"
          "Signals: SIGTERM/SIGINT stop accepting, finish in-flight requests "
          "(bounded by\nserver.shutdown_grace_ms) and exit; SIGHUP reopens "
          "the log file.\n");
}

static int app_metrics(void *arg, gw_buf *out) {
  app *a = arg;
  int rv = op_registry_metrics(a->operators, out);

  if (rv == GW_OK && a->txn) {
    rv = gw_txn_metrics(a->txn, out);
  }
  return rv;
}

#define POOL_THREADS 4       /* PKCS#11 signatures and verifications */
#define POOL_QUEUE 100000    /* jobs waiting: beyond, 503 */
#define PURGE_EVERY_TICKS 60 /* store purges, in housekeeping ticks */

/* The OpenID Connect provider: the gateway's signing keys on their
 * PKCS#11 token, the relying parties, the sign-in engine. Returns 0; 1
 * when it stays off (no PKI or keys yet: its endpoints answer 503, the
 * reason is logged); -1 for a configuration error that stops start-up. */
static int oidc_start(app *a, p11_module **mod, char *err, size_t errlen) {
  size_t seeded = 0;
  int rv;

  if (gw_pki_module_open(a->cfg, mod, err, errlen) != GW_OK ||
      gw_signer_new(&a->signer, a->cfg, *mod, err, errlen) != GW_OK) {
    return 1;
  }
  if (a->cfg->oidc_clients_file[0]) {
    rv = gw_clients_seed(a->store, a->cfg->oidc_clients_file, a->cfg->oidc_demo,
                         1, &seeded, err, errlen);
    if (rv != GW_OK) {
      return -1;
    }
    if (access(a->cfg->oidc_clients_file, R_OK) != 0) {
      /* Optional (the registry may be managed with mpkictl alone), but a
       * mistyped path should not go unnoticed. */
      GW_LOG(GW_LOG_WARN, "oidc.clients_file not found: nothing seeded",
             "path=%s", a->cfg->oidc_clients_file);
    }
  }
  if (gw_clients_new(&a->clients, a->store, err, errlen) != GW_OK) {
    return -1;
  }
  if (p11_pool_new(&a->pool, POOL_THREADS, POOL_QUEUE) != P11_OK) {
    snprintf(err, errlen, "cannot start the signing pool");
    return -1;
  }
  rv = gw_txn_engine_new(&a->txn, a->cfg, a->operators, a->pool, err, errlen);
  if (rv != GW_OK) {
    return 1;
  }
  /* The audit log: every sign-in and token event, hash-chained, its head
   * signed with the gateway's key (docs/audit.md). */
  if (gw_audit_new(&a->audit, a->cfg, a->signer, NULL, err, errlen) != GW_OK) {
    return -1;
  }
  gw_txn_set_audit(a->txn, a->audit);
  /* The browser and native flows: sessions, codes, refresh tokens. */
  if (gw_authz_new(&a->authz, a->cfg) != GW_OK) {
    snprintf(err, errlen, "cannot start the browser flows");
    return -1;
  }
  gw_authz_set_audit(a->authz, a->audit);
  GW_LOG(GW_LOG_INFO, "openid provider ready",
         "issuer=%s clients=%zu seeded=%zu es256_kid=%s rs256_kid=%s",
         a->cfg->oidc_issuer, gw_clients_count(a->clients), seeded,
         gw_signer_kid(a->signer, GW_JWS_ES256)
             ? gw_signer_kid(a->signer, GW_JWS_ES256)
             : "-",
         gw_signer_kid(a->signer, GW_JWS_RS256)
             ? gw_signer_kid(a->signer, GW_JWS_RS256)
             : "-");
  return 0;
}

static const char *default_config(void) {
  return access("var/mpkigw.conf", R_OK) == 0 ? "var/mpkigw.conf"
                                              : "configs/mpkigw.conf";
}

/* Housekeeping (redis serverCron): the store's health for /healthz. */
static void housekeeping_cb(evutil_socket_t fd, short what, void *arg) {
  static unsigned long ticks;
  app *a = arg;
  int rv = gw_store_ping(a->store);

  (void)fd;
  (void)what;
  if ((rv == GW_OK) != a->store_ok) {
    if (rv == GW_OK) {
      GW_LOG(GW_LOG_INFO, "store healthy again", "path=%s", a->cfg->store_path);
    } else {
      char detail[256];
      const char *m = gw_store_errmsg(a->store);
      gw_log_quote(detail, sizeof(detail), m, strlen(m));
      GW_LOG(GW_LOG_ERROR, "store health check failed",
             "path=%s error=\"%s\" detail=%s", a->cfg->store_path,
             gw_strerror(rv), detail);
    }
  }
  a->store_ok = rv == GW_OK;
  gw_server_set_healthy(a->server, a->store_ok);
  if (a->clients && rv == GW_OK) {
    /* mpkictl client add/remove take effect within a tick. */
    gw_clients_reload(a->clients, a->store);
  }
  if (a->signer) {
    /* mpkictl gateway-key rotate: one stat() when nothing changed; the new
     * key is published at once and signs after its lead (docs/tokens.md). */
    char err[512];
    (void)gw_signer_reload(a->signer, NULL, err, sizeof(err));
  }
  if (a->txn && rv == GW_OK && ++ticks % PURGE_EVERY_TICKS == 0) {
    long long now = (long long)time(NULL);
    gw_store_txn_purge(a->store, (now - 86400) * 1000, NULL);
    gw_store_revoked_purge(a->store, now, NULL);
  }
}

static void signal_cb(evutil_socket_t sig, short what, void *arg) {
  app *a = arg;

  (void)what;
  if (sig == SIGHUP) {
    GW_LOG(GW_LOG_INFO, "reopening log", "%s", "");
    gw_log_reopen();
    return;
  }
  GW_LOG(GW_LOG_INFO, "shutting down", "signal=%s grace_ms=%d",
         sig == SIGTERM ? "SIGTERM" : "SIGINT", a->cfg->shutdown_grace_ms);
  gw_server_shutdown(a->server);
  event_base_loopbreak(a->base);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"check-config", required_argument, NULL, 't'},
      {"help-config", no_argument, NULL, 'K'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  const char *config_path = NULL;
  char err[1024];
  int check_only = 0, opt, rv, status = 1;
  gw_router *router = NULL;
  p11_module *p11mod = NULL;
  struct event *sig_int = NULL, *sig_term = NULL, *sig_hup = NULL,
               *housekeeping = NULL;
  struct timeval tv;
  app a;

  memset(&a, 0, sizeof(a));
  while ((opt = getopt_long(argc, argv, "c:t:hV", opts, NULL)) != -1) {
    switch (opt) {
    case 'c':
      config_path = optarg;
      break;
    case 't':
      config_path = optarg;
      check_only = 1;
      break;
    case 'K':
      gw_config_print_keys(stdout);
      return 0;
    case 'h':
      usage(stdout);
      return 0;
    case 'V':
      printf("mpkigw %s\nOpenSSL %s, nghttp2 %s, libevent %s\n", MPKIGW_VERSION,
             OpenSSL_version(OPENSSL_VERSION_STRING),
             nghttp2_version(0)->version_str, event_get_version());
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "mpkigw: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (!config_path) {
    config_path = default_config();
  }
  rv = gw_config_load(&a.cfg, config_path, err, sizeof(err));
  if (rv != GW_OK) {
    fprintf(stderr, "mpkigw: %s\n", err);
    return 2;
  }
  if (check_only) {
    printf("%s: configuration is valid\n", a.cfg->path);
    gw_config_del(a.cfg);
    return 0;
  }
  /* SoftHSM reads SOFTHSM2_CONF when the module is loaded: set it from the
   * config first, so that nobody has to export it (docs/configuration.md). */
  if (a.cfg->softhsm_conf[0] &&
      setenv("SOFTHSM2_CONF", a.cfg->softhsm_conf, 1) != 0) {
    fprintf(stderr, "mpkigw: cannot set SOFTHSM2_CONF: %m\n");
    goto done;
  }
  if (gw_log_open(a.cfg->log_file, a.cfg->log_level) != GW_OK) {
    fprintf(stderr, "mpkigw: cannot open log file %s: %m\n", a.cfg->log_file);
    goto done;
  }
  signal(SIGPIPE, SIG_IGN);

  rv = gw_store_open(&a.store, a.cfg->store_backend, a.cfg->store_path,
                     a.cfg->store_busy_timeout_ms, err, sizeof(err));
  if (rv != GW_OK) {
    char qerr[1100];
    gw_log_quote(qerr, sizeof(qerr), err, strlen(err));
    GW_LOG(GW_LOG_ERROR, "cannot open store", "backend=%s path=%s error=%s",
           a.cfg->store_backend, a.cfg->store_path, qerr);
    fprintf(stderr, "mpkigw: cannot open store %s: %s\n", a.cfg->store_path,
            err);
    goto done;
  }
  /* The numbering plan, portability table and operator settings are
   * checked now, so that a bad file stops start-up rather than a sign-in. */
  rv = op_registry_new(&a.operators, a.cfg, err, sizeof(err));
  if (rv != GW_OK) {
    fprintf(stderr, "mpkigw: operators: %s\n", err);
    goto done;
  }
  rv = oidc_start(&a, &p11mod, err, sizeof(err));
  if (rv < 0) {
    fprintf(stderr, "mpkigw: oidc: %s\n", err);
    status = 2;
    goto done;
  }
  if (rv > 0) {
    char qerr[1100];
    GW_LOG(GW_LOG_WARN, "openid provider off: its endpoints answer 503",
           "reason=%s hint=\"make setup creates the demo PKI and keys\"",
           gw_log_quote(qerr, sizeof(qerr), err, strlen(err)));
  }
  if (gw_router_new(&router) != GW_OK ||
      gw_handlers_register(router) != GW_OK ||
      gw_operators_register(router) != GW_OK ||
      gw_oidc_register(router) != GW_OK || gw_authz_register(router) != GW_OK) {
    fprintf(stderr, "mpkigw: cannot build the route table\n");
    goto done;
  }
  rv = gw_server_new(&a.server, a.cfg, router, &a, err, sizeof(err));
  if (rv != GW_OK) {
    char qerr[1100];
    gw_log_quote(qerr, sizeof(qerr), err, strlen(err));
    GW_LOG(GW_LOG_ERROR, "cannot start server", "error=%s", qerr);
    fprintf(stderr, "mpkigw: %s\n", err);
    goto done;
  }
  gw_server_set_metrics_hook(a.server, app_metrics, &a);
  a.base = event_base_new();
  if (!a.base) {
    fprintf(stderr, "mpkigw: cannot create the main event loop\n");
    goto done;
  }
  sig_int = evsignal_new(a.base, SIGINT, signal_cb, &a);
  sig_term = evsignal_new(a.base, SIGTERM, signal_cb, &a);
  sig_hup = evsignal_new(a.base, SIGHUP, signal_cb, &a);
  housekeeping = event_new(a.base, -1, EV_PERSIST, housekeeping_cb, &a);
  if (!sig_int || !sig_term || !sig_hup || !housekeeping) {
    fprintf(stderr, "mpkigw: cannot set up signal handling\n");
    goto done;
  }
  evsignal_add(sig_int, NULL);
  evsignal_add(sig_term, NULL);
  evsignal_add(sig_hup, NULL);
  a.store_ok = 1;
  housekeeping_cb(-1, 0, &a);
  tv.tv_sec = a.cfg->housekeeping_ms / 1000;
  tv.tv_usec = (a.cfg->housekeeping_ms % 1000) * 1000;
  event_add(housekeeping, &tv);

  if (gw_server_start(a.server) != GW_OK) {
    fprintf(stderr, "mpkigw: cannot start worker threads\n");
    goto done;
  }
  GW_LOG(GW_LOG_INFO, "listening",
         "url=https://%s:%d/ h2c_port=%d workers=%d config=%s store=%s "
         "version=\"%s\"",
         a.cfg->listen_host, gw_server_port(a.server, 0),
         gw_server_port(a.server, 1), a.cfg->workers, a.cfg->path,
         a.cfg->store_path, MPKIGW_VERSION);
  event_base_dispatch(a.base);
  gw_server_join(a.server);
  GW_LOG(GW_LOG_INFO, "stopped", "%s", "");
  status = 0;

done:
  if (sig_int) {
    event_free(sig_int);
  }
  if (sig_term) {
    event_free(sig_term);
  }
  if (sig_hup) {
    event_free(sig_hup);
  }
  if (housekeeping) {
    event_free(housekeeping);
  }
  if (a.base) {
    event_base_free(a.base);
  }
  /* The workers have stopped (joined): let the pool finish its jobs while
   * the loops they report to still exist, then free the loops. */
  p11_pool_del(a.pool);
  gw_authz_del(a.authz);
  gw_audit_del(a.audit);   /* drains the queue, signs the last checkpoint */
  gw_server_del(a.server); /* workers gone: their sign-ins were dropped */
  gw_router_del(router);
  gw_txn_engine_del(a.txn);
  gw_clients_del(a.clients);
  gw_signer_del(a.signer);
  p11_module_del(p11mod);
  op_registry_del(a.operators);
  gw_store_close(a.store);
  gw_config_del(a.cfg);
  gw_log_close();
  return status;
}
