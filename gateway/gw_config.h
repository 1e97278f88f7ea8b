/* gw_config.h — the gateway's configuration.
 *
 * The file is libconfig syntax (groups of `key = value;`), see
 * configs/mpkigw.conf. Every key is listed once in a static table in
 * gw_config.c with its type, bounds and default. Unknown keys, wrong types
 * and out-of-range values stop start-up with "file:line: reason". Relative
 * paths in the file are resolved against the directory of the file. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>

#include "gw_log.h"

/* One operator's adapter settings (operators.<name>.*; docs/operators.md).
 * Omantel and Ooredoo have the same keys; the notify_* ones are used by
 * adapters that take server-to-server notifications (Ooredoo). */
typedef struct gw_op_config {
  char *url;            /* the MSSP's base URL (Omantel: + "/MSS_SignaturePort",
                           ...) or its one endpoint (Ooredoo: /rest/service) */
  char *ap_id;          /* AP_ID (a URI), "" = adapter not configured */
  char *ap_pwd;         /* AP_PWD: a secret, wiped on free, never shown */
  int poll_first_ms;    /* first MSS_StatusQuery after accept */
  int poll_interval_ms; /* then every so many ms */
  int timeout_s;        /* TimeOut sent with each request */
  int connect_timeout_ms;
  int http_timeout_ms;     /* one HTTP exchange, connect included */
  size_t max_response;     /* response body cap, bytes */
  int status_retries;      /* failed status queries in a row tolerated */
  int breaker_failures;    /* failures in a row that open the breaker,
                              0 = no breaker */
  int breaker_cooldown_ms; /* open time before a probe */
  char *notify_url;        /* where the MSSP POSTs our notifications (told
                              to the MSSP out of band); "" = no
                              notifications: poll */
  char *notify_secret;     /* HMAC key of the notifications (secret) */
  int notify_overdue_ms;   /* no notification this long after accept:
                              poll as well */
  int notify_max_skew_s;   /* |now - t| allowed in X-MSS-Signature */
} gw_op_config;

/* Abuse limits of sign-ins (limits.signin_*; docs/limits.md, gw_limits.h).
 * A count of 0 turns that limit off. */
typedef struct gw_limits_config {
  int starts_per_source; /* sign-in starts from one address per window */
  int source_window_s;   /* that window, s */
  int per_pair_hour;     /* starts per (phone, source) and per (phone,
                            client) per hour */
  int per_pair_day;      /* the same per day */
  int refusals_cooldown; /* refusals in a row for a pair before a
                            cool-down */
  int cooldown_s;        /* the cool-down, s */
  int pending_max_s;     /* a pending mark never outlives this, s */
  int max_entries;       /* entries per table (memory bound) */
} gw_limits_config;

typedef struct gw_config {
  char *path; /* the file it was read from (absolute) */

  /* server */
  char *listen_host; /* server.listen "host:port", default 127.0.0.1:8443 */
  int listen_port;
  char *h2c_host;        /* server.h2c_listen, "" = off (default) */
  int h2c_port;          /* 0 when off */
  int workers;           /* server.workers, 0 in the file = number of cores */
  int shutdown_grace_ms; /* server.shutdown_grace_ms */
  int housekeeping_ms;   /* server.housekeeping_interval_ms */

  /* tls */
  char *tls_cert;      /* tls.certificate (PEM chain), required */
  char *tls_key;       /* tls.private_key (PEM), required */
  int tls_min_version; /* tls.min_version "1.2" | "1.3" as 0x0303 / 0x0304 */

  /* limits */
  int max_connections;         /* limits.max_connections */
  int max_connections_per_ip;  /* limits.max_connections_per_ip (>= 1) */
  int max_concurrent_streams;  /* limits.max_concurrent_streams */
  int max_header_list_size;    /* limits.max_header_list_size, bytes */
  int max_header_count;        /* limits.max_header_count */
  size_t max_body_size;        /* limits.max_body_size, bytes, default cap */
  size_t max_output_buffer;    /* limits.max_output_buffer, bytes per conn */
  int handshake_timeout_ms;    /* limits.handshake_timeout_ms */
  int header_timeout_ms;       /* limits.header_timeout_ms */
  int request_timeout_ms;      /* limits.request_timeout_ms (whole request) */
  int idle_timeout_ms;         /* limits.idle_timeout_ms */
  int settings_ack_timeout_ms; /* limits.settings_ack_timeout_ms */
  int stream_error_budget;     /* limits.stream_error_budget per connection */
  int reset_burst;             /* limits.stream_reset_burst */
  int reset_rate;              /* limits.stream_reset_rate, per second */
  gw_limits_config signin;     /* limits.signin_* */

  /* log */
  gw_log_level log_level; /* log.level "debug"|"info"|"warn"|"error" */
  char *log_file;         /* log.file, "" = stderr */
  int access_log;         /* log.access true|false */

  /* store */
  char *store_backend;       /* store.backend, "sqlite" */
  char *store_path;          /* store.path */
  int store_busy_timeout_ms; /* store.busy_timeout_ms */

  /* pkcs11 */
  char *p11_module;   /* pkcs11.module, the PKCS#11 module (.so) */
  char *softhsm_conf; /* pkcs11.softhsm_conf; when not "", mpkigw and mpkictl
                         set SOFTHSM2_CONF to it before loading the module */

  /* pki */
  char *pki_dir;        /* pki.dir: root-ca.pem, issuing-ca.pem, index.txt */
  char *pki_ca_token;   /* pki.ca_token, token label (1..32 bytes) */
  char *pki_pin_file;   /* pki.pin_file, 0600 file of demo token PINs */
  int pki_clock_skew_s; /* pki.clock_skew_s, on validity times */
  char *pki_crl;        /* pki.crl, the issuing CA's CRL (PEM) */
  int pki_crl_days;     /* pki.crl_days, thisUpdate to nextUpdate */
  char *pki_ocsp_url;   /* pki.ocsp_url, "" = none */

  /* gateway_keys */
  char *gwkeys_token; /* gateway_keys.token, token label (1..32 bytes) */
  char *gwkeys_dir;   /* gateway_keys.dir, public keys (PEM) for the JWKS */

  /* operators (see docs/operators.md) */
  char *op_numbering_plan;   /* operators.numbering_plan, prefix -> operator */
  char *op_portability;      /* operators.portability, "" = none */
  int op_max_conns_per_host; /* operators.max_connections_per_host, per
                                worker thread */
  gw_op_config op_omantel;   /* operators.omantel: SOAP 1.2, polling */
  gw_op_config op_ooredoo;   /* operators.ooredoo: JSON, notifications */

  /* oidc: the OpenID Connect provider (docs/oidc.md) */
  char *oidc_issuer;       /* issuer identifier, exact */
  char *oidc_clients_file; /* seed file of relying parties, "" = none */
  int oidc_demo;           /* short client secrets allowed */
  char *oidc_signing_alg;  /* "ES256" | "RS256" */
  int oidc_access_ttl_s;
  int oidc_id_ttl_s;
  int oidc_ciba_expiry_s;   /* default and max requested_expiry */
  int oidc_ciba_interval_s; /* token polling interval */
  char *oidc_display_lang;  /* "ar" | "en" */
  char *oidc_officers;      /* civil numbers, space-separated */
  int oidc_session_idle_s;  /* browser session idle timeout */
  int oidc_session_max_s;   /* browser session absolute timeout */
  int oidc_code_ttl_s;      /* authorization codes */
  int oidc_refresh_ttl_s;   /* refresh-token family, absolute */
} gw_config;

/* Reads and validates |path|. On success stores a new config in |*out| and
 * returns GW_OK. On failure returns GW_ERR_CONFIG (or GW_ERR_NOMEM, GW_ERR_IO)
 * and writes "file:line: reason" to |err| (|errlen| bytes, NUL-terminated);
 * |*out| is left untouched. */
int gw_config_load(gw_config **out, const char *path, char *err, size_t errlen);

/* Creates a config holding every key's default (relative paths against the
 * current directory; no TLS certificate: tls_cert and tls_key are NULL), for
 * programs that embed the server with settings of their own (the mock
 * operators). Returns GW_OK, GW_ERR_NOMEM or GW_ERR_IO. */
int gw_config_new_defaults(gw_config **out);

/* Frees a config; NULL is a no-op. */
void gw_config_del(gw_config *cfg);

/* Writes every key with its type, bounds and default to |fp|, one per line
 * (used by `mpkigw --help-config`). */
void gw_config_print_keys(void *fp);

#endif
