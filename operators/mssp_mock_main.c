/* mssp_mock_main.c — build/mssp-mock: a mock mobile operator's MSSP with
 * simulated SIMs, for tests and the demo (`make run`).
 *
 *   mssp-mock --operator omantel|ooredoo --config FILE
 *
 * Reads its config (configs/mssp-mock.conf), the gateway's config named
 * there (for the PKCS#11 module holding the SIM tokens and the subscriber
 * registry), loads this operator's subscribers, and serves its front on
 * one worker thread (the transaction engine lives on that loop; SIM work
 * runs on a pool): Omantel's SOAP ports, or Ooredoo's JSON service with
 * its server-server notifications (mock_notify.h, on the same loop).
 * SIGTERM/SIGINT stop it cleanly. See docs/operators.md. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_pki.h"
#include "gw_router.h"
#include "gw_server.h"
#include "gw_store.h"
#include "mock_config.h"
#include "mock_front.h"
#include "mock_handset.h"
#include "mock_mssp.h"
#include "mock_notify.h"
#include "mock_sim.h"
#include "mss_soap.h"
#include "p11.h"

#ifndef MPKIGW_VERSION
#define MPKIGW_VERSION "0.1.0"
#endif

static void usage(FILE *fp) {
  fprintf(fp,
          "Usage: mssp-mock --operator omantel|ooredoo --config FILE\n"
          "       mssp-mock --check-config FILE\n"
          "\n"
          "A mock mobile operator MSSP (ETSI TS 102 204) with simulated "
          "SIMs:\n"
          "  omantel  SOAP 1.2 at /soap/services/MSS_SignaturePort, "
          "MSS_StatusQueryPort,\n"
          "           MSS_ReceiptPort (default 127.0.0.1:9201)\n"
          "  ooredoo  the JSON rendering at POST /rest/service, "
          "asynchServerServer\n"
          "           notifications (default 127.0.0.1:9202)\n"
          "\n"
          "Options:\n"
          "  -o, --operator NAME      omantel or ooredoo\n"
          "  -c, --config FILE        configuration (configs/mssp-mock.conf "
          "explains\n"
          "                           every key)\n"
          "  -t, --check-config FILE  check FILE and exit (0 = valid)\n"
          "      --help-config        list every configuration key\n"
          "  -h, --help               this text\n"
          "  -V, --version            version\n"
          "\n"
          "Exit status: 0 after a clean stop (SIGTERM/SIGINT), 1 when it "
          "cannot start,\n2 for a usage or configuration error.\n");
}

typedef struct mock_main {
  mock_config *cfg;
  gw_config *gwcfg;
  gw_config *srvcfg;
  p11_module *mod;
  mock_sims *sims;
  mock_mssp *engine;
  gw_router *router;
  gw_server *server;
  struct event_base *base;
  mock_app app;
} mock_main;

static void signal_cb(evutil_socket_t sig, short what, void *arg) {
  mock_main *m = arg;

  (void)what;
  GW_LOG(GW_LOG_INFO, "shutting down", "signal=%s",
         sig == SIGTERM ? "SIGTERM" : "SIGINT");
  gw_server_shutdown(m->server);
  event_base_loopbreak(m->base);
}

/* Engine hooks (on the worker's loop): the handset pages follow every
 * change of a phone; an ended asynchServerServer transaction is notified
 * to its AP (Ooredoo; app->notify is NULL for Omantel). */
static void on_change(void *arg, const char *msisdn) {
  mock_app *app = arg;

  mock_handset_changed(app->handset, msisdn);
}

static void on_end(void *arg, const mock_tx_info *tx) {
  mock_app *app = arg;

  mock_notify_tx_end(app->notify, app->engine, tx);
}

/* The engine: this operator's settings, APs, SIM bank, registry. */
static int engine_new(mock_main *m, mock_operator op, char *err,
                      size_t errlen) {
  const mock_op_config *oc = &m->cfg->op[op];
  char chain[4200];
  mock_mssp_config ec;
  gw_store *st = NULL;
  size_t loaded = 0;
  int rv;

  mock_mssp_config_init(&ec);
  ec.operator_name = mock_operator_name(op);
  ec.mssp_id = oc->mssp_id;
  ec.default_format = strcmp(oc->default_format, "PKCS1") == 0
                          ? MSS_FORMAT_PKCS1
                          : MSS_FORMAT_PKCS7;
  /* asynchServerServer: Ooredoo only, for APs with a notify_url. */
  ec.allow_server_server = op == MOCK_OP_OOREDOO;
  ec.aps = m->cfg->aps;
  ec.naps = m->cfg->naps;
  ec.default_timeout_s = m->cfg->default_timeout_s;
  ec.max_timeout_s = m->cfg->max_timeout_s;
  ec.keep_done_s = m->cfg->keep_done_s;
  ec.max_transactions = m->cfg->max_transactions;
  ec.replay_window_s = m->cfg->replay_window_s;
  ec.replay_max = m->cfg->replay_max;
  ec.default_behaviour = m->cfg->default_behaviour;
  ec.user_pin = m->cfg->user_pin;
  ec.wrong_pin = m->cfg->wrong_pin;
  ec.pool_threads = m->cfg->pool_threads;
  ec.sims = m->sims;
  ec.on_change = on_change;
  ec.on_end = on_end;
  ec.hook_arg = &m->app;
  /* The issuing CA travels in every CMS, so that a verifier holding only
   * the root builds the chain (openssl cms -verify -CAfile root-ca.pem). */
  if (snprintf(chain, sizeof(chain), "%s/issuing-ca.pem", m->gwcfg->pki_dir) <
          (int)sizeof(chain) &&
      access(chain, R_OK) == 0) {
    ec.chain_file = chain;
  } else {
    GW_LOG(GW_LOG_WARN, "no issuing CA certificate to put into CMS", "path=%s",
           chain);
  }
  rv = mock_mssp_new(&m->engine, &ec, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  rv = gw_store_open(&st, m->gwcfg->store_backend, m->gwcfg->store_path,
                     m->gwcfg->store_busy_timeout_ms, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  rv = mock_mssp_load_registry(m->engine, st, &loaded, err, errlen);
  gw_store_close(st);
  if (rv != GW_OK) {
    return rv;
  }
  GW_LOG(GW_LOG_INFO, "subscribers loaded", "operator=%s count=%zu store=%s",
         mock_operator_name(op), loaded, m->gwcfg->store_path);
  if (loaded == 0) {
    GW_LOG(GW_LOG_WARN, "no subscribers of this operator in the registry",
           "operator=%s hint=\"provision SIMs with mpkictl (make run does)\"",
           mock_operator_name(op));
  }
  return GW_OK;
}

/* The embedded server: one worker, plain HTTP (HTTP/1.1 + h2c) on the
 * operator's address, or TLS when a certificate is configured. */
static int server_new(mock_main *m, mock_operator op, char *err,
                      size_t errlen) {
  const mock_op_config *oc = &m->cfg->op[op];
  gw_config *s;
  int rv = gw_config_new_defaults(&m->srvcfg);

  if (rv != GW_OK) {
    snprintf(err, errlen, "cannot create the server settings");
    return rv;
  }
  s = m->srvcfg;
  s->workers = 1; /* the engine lives on one loop */
  s->shutdown_grace_ms = m->cfg->shutdown_grace_ms;
  s->access_log = m->cfg->access_log;
  s->log_level = m->cfg->log_level;
  free(s->h2c_host);
  s->h2c_host = NULL;
  if (oc->tls_cert[0]) {
    free(s->listen_host);
    s->listen_host = strdup(oc->listen_host);
    s->listen_port = oc->listen_port;
    s->tls_cert = strdup(oc->tls_cert);
    s->tls_key = strdup(oc->tls_key);
    s->h2c_host = strdup("");
    s->h2c_port = 0;
    if (!s->listen_host || !s->tls_cert || !s->tls_key || !s->h2c_host) {
      return GW_ERR_NOMEM;
    }
  } else {
    s->h2c_host = strdup(oc->listen_host);
    s->h2c_port = oc->listen_port;
    if (!s->h2c_host) {
      return GW_ERR_NOMEM;
    }
  }
  rv = gw_router_new(&m->router);
  rv = rv ? rv : mock_front_routes(m->router, m->cfg->control_enabled);
  rv = rv ? rv : mock_handset_routes(m->router);
  if (rv == GW_OK) {
    rv = op == MOCK_OP_OOREDOO ? mock_ooredoo_routes(m->router)
                               : mock_omantel_routes(m->router);
  }
  if (rv != GW_OK) {
    snprintf(err, errlen, "cannot build the route table: %s", gw_strerror(rv));
    return rv;
  }
  m->app.engine = m->engine;
  m->app.operator_name = mock_operator_name(op);
  return gw_server_new(&m->server, s, m->router, &m->app, err, errlen);
}

static void main_free(mock_main *m) {
  gw_server_del(m->server); /* after the engine: its events are on a worker */
  mock_handset_del(m->app.handset); /* after the server: parked polls */
  gw_router_del(m->router);
  mock_sims_del(m->sims);
  p11_module_del(m->mod);
  gw_config_del(m->srvcfg);
  gw_config_del(m->gwcfg);
  mock_config_del(m->cfg);
  if (m->base) {
    event_base_free(m->base);
  }
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"operator", required_argument, NULL, 'o'},
      {"config", required_argument, NULL, 'c'},
      {"check-config", required_argument, NULL, 't'},
      {"help-config", no_argument, NULL, 'K'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  const char *op_name = NULL, *config_path = NULL;
  mock_operator op = MOCK_OP_OMANTEL;
  const gw_op_config *gwop;
  struct event *sig_int = NULL, *sig_term = NULL;
  char err[1024];
  int opt, rv, check_only = 0, status = 1;
  mock_main m;

  memset(&m, 0, sizeof(m));
  while ((opt = getopt_long(argc, argv, "o:c:t:hV", opts, NULL)) != -1) {
    switch (opt) {
    case 'o':
      op_name = optarg;
      break;
    case 'c':
      config_path = optarg;
      break;
    case 't':
      config_path = optarg;
      check_only = 1;
      break;
    case 'K':
      mock_config_print_keys(stdout);
      return 0;
    case 'h':
      usage(stdout);
      return 0;
    case 'V':
      printf("mssp-mock %s\n", MPKIGW_VERSION);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "mssp-mock: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (!config_path || (!check_only && !op_name)) {
    fprintf(stderr, "mssp-mock: --operator and --config are required\n");
    usage(stderr);
    return 2;
  }
  if (op_name && mock_operator_parse(op_name, &op) != GW_OK) {
    fprintf(stderr, "mssp-mock: --operator: \"%s\" is not omantel or ooredoo\n",
            op_name);
    return 2;
  }
  rv = mock_config_load(&m.cfg, config_path, err, sizeof(err));
  if (rv != GW_OK) {
    fprintf(stderr, "mssp-mock: %s\n", err);
    return 2;
  }
  rv = gw_config_load(&m.gwcfg, m.cfg->gateway_config, err, sizeof(err));
  if (rv != GW_OK) {
    fprintf(stderr, "mssp-mock: gateway_config: %s\n", err);
    main_free(&m);
    return 2;
  }
  if (check_only) {
    printf("%s: configuration is valid\n", m.cfg->path);
    main_free(&m);
    return 0;
  }
  /* The gateway's own AP at this operator, when it has one (at Ooredoo
   * with the notification URL and secret of its asynchServerServer mode). */
  gwop = op == MOCK_OP_OOREDOO ? &m.gwcfg->op_ooredoo : &m.gwcfg->op_omantel;
  if (m.cfg->gateway_ap && gwop->ap_id && gwop->ap_id[0] &&
      mock_config_add_ap(m.cfg, gwop->ap_id, gwop->ap_pwd ? gwop->ap_pwd : "",
                         op == MOCK_OP_OOREDOO ? gwop->notify_url : NULL,
                         op == MOCK_OP_OOREDOO ? gwop->notify_secret : NULL) !=
          GW_OK) {
    fprintf(stderr,
            "mssp-mock: cannot add the gateway's AP (operators.%s in %s: "
            "ap_id/ap_pwd/notify_url too long, or notify_url without an "
            "http(s) scheme or a notify_secret of at least %d bytes)\n",
            mock_operator_name(op), m.cfg->gateway_config,
            MOCK_NOTIFY_SECRET_MIN);
    main_free(&m);
    return 2;
  }
  if (gw_log_open(m.cfg->log_file, m.cfg->log_level) != GW_OK) {
    fprintf(stderr, "mssp-mock: cannot open log file %s\n", m.cfg->log_file);
    main_free(&m);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  mss_soap_init();

  rv = gw_pki_module_open(m.gwcfg, &m.mod, err, sizeof(err));
  if (rv != GW_OK) {
    fprintf(stderr, "mssp-mock: PKCS#11: %s\n", err);
    goto done;
  }
  rv = mock_sims_new(&m.sims, m.mod, m.cfg->state_dir, err, sizeof(err));
  if (rv != GW_OK) {
    fprintf(stderr, "mssp-mock: %s\n", err);
    goto done;
  }
  if (mock_handset_new(&m.app.handset) != GW_OK) {
    fprintf(stderr, "mssp-mock: out of memory\n");
    goto done;
  }
  if (op == MOCK_OP_OOREDOO) {
    mock_notify_config nc = {
        .aps = m.cfg->aps,
        .naps = m.cfg->naps,
        .max_attempts = m.cfg->notify_max_attempts,
        .first_retry_ms = m.cfg->notify_first_retry_ms,
        .window_s = m.cfg->notify_window_s,
        .timeout_ms = m.cfg->notify_timeout_ms,
        .ca_file = m.cfg->notify_ca_file,
    };
    rv = mock_notify_new(&m.app.notify, &nc, err, sizeof(err));
    if (rv != GW_OK) {
      fprintf(stderr, "mssp-mock: notifications: %s\n", err);
      goto done;
    }
  }
  rv = engine_new(&m, op, err, sizeof(err));
  if (rv != GW_OK) {
    fprintf(stderr, "mssp-mock: %s\n", err);
    goto done;
  }
  rv = server_new(&m, op, err, sizeof(err));
  if (rv != GW_OK) {
    fprintf(stderr, "mssp-mock: %s\n", err);
    goto done;
  }
  m.base = event_base_new();
  if (!m.base) {
    fprintf(stderr, "mssp-mock: cannot create the main event loop\n");
    goto done;
  }
  sig_int = evsignal_new(m.base, SIGINT, signal_cb, &m);
  sig_term = evsignal_new(m.base, SIGTERM, signal_cb, &m);
  if (!sig_int || !sig_term || evsignal_add(sig_int, NULL) != 0 ||
      evsignal_add(sig_term, NULL) != 0) {
    fprintf(stderr, "mssp-mock: cannot set up signal handling\n");
    goto done;
  }
  gw_server_set_healthy(m.server, 1);
  if (gw_server_start(m.server) != GW_OK) {
    fprintf(stderr, "mssp-mock: cannot start the worker thread\n");
    goto done;
  }
  GW_LOG(GW_LOG_INFO, "listening",
         "operator=%s url=%s://%s:%d/ control=%s aps=%zu config=%s "
         "version=\"%s\"",
         mock_operator_name(op), m.cfg->op[op].tls_cert[0] ? "https" : "http",
         m.cfg->op[op].listen_host,
         gw_server_port(m.server, m.cfg->op[op].tls_cert[0] ? 0 : 1),
         m.cfg->control_enabled ? "on" : "off", m.cfg->naps, m.cfg->path,
         MPKIGW_VERSION);
  event_base_dispatch(m.base);
  gw_server_join(m.server);
  GW_LOG(GW_LOG_INFO, "stopped", "operator=%s", mock_operator_name(op));
  status = 0;

done:
  if (sig_int) {
    event_free(sig_int);
  }
  if (sig_term) {
    event_free(sig_term);
  }
  /* The engine's and the notifications' events live on the worker's loop
   * (stopped and joined by now): free them before the server frees that
   * loop. */
  mock_mssp_del(m.engine);
  m.engine = NULL;
  m.app.engine = NULL;
  mock_notify_del(m.app.notify);
  m.app.notify = NULL;
  main_free(&m);
  gw_log_close();
  return status;
}
