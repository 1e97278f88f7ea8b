/* gw_config.c — reads and validates the gateway's configuration file.
 *
 * libconfig does the parsing; this file owns the meaning. Every key is one
 * row of config_keys[] below (name, type, bounds, default, where it is
 * stored), in the manner of redis' static_configs[]: defaults, validation,
 * `--help-config` output and freeing all come from that one table, so a key
 * cannot be half-added. */
#include "gw_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_buf.h"
#include "gw_err.h"

/* How a value is written in the file (and checked). */
typedef enum {
  CT_INT,   /* integer within [min, max] */
  CT_BYTES, /* integer, or a string with suffix k / m, within [min, max] */
  CT_BOOL,  /* true | false */
  CT_PATH,  /* string; relative paths are joined to the file's directory */
  CT_ENUM,  /* one of choices[] */
  CT_ADDR,  /* "host:port"; host and port go to two fields */
  CT_STR    /* string of [min, max] bytes without control characters */
} cfg_type;

/* How a value is stored in gw_config. */
typedef enum {
  ST_INT,   /* int */
  ST_SIZE,  /* size_t */
  ST_LEVEL, /* gw_log_level */
  ST_STR    /* char *, owned by the config */
} cfg_store;

enum {
  F_REQUIRED = 1 << 0, /* no default: the file must set it */
  F_NONEMPTY = 1 << 1, /* "" is refused */
  F_OFF = 1 << 2,      /* CT_ADDR: "" means off (host "", port 0) */
  F_URL = 1 << 3,      /* CT_STR: "" or an http:// or https:// URL */
  F_SECRET = 1 << 4    /* CT_STR: a password: never shown in messages,
                          wiped when freed */
};

typedef struct cfg_choice {
  const char *name;
  int value;
} cfg_choice;

typedef struct cfg_key {
  const char *name; /* full dotted name, "group.key" */
  cfg_type type;
  cfg_store store;
  unsigned flags;
  long long min, max;        /* CT_INT, CT_BYTES */
  long long idef;            /* default of CT_INT, CT_BYTES, CT_BOOL */
  const char *sdef;          /* default of the string types; NULL = none */
  const cfg_choice *choices; /* CT_ENUM, ended by a NULL name */
  size_t off;                /* the field (CT_ADDR: the host) */
  size_t off2;               /* CT_ADDR: the port (an int) */
  const char *help;
} cfg_key;

/* offsetof() that fails to compile unless |field| has type |T|, so that the
 * table cannot store an int into a size_t. */
/* clang-format off */
#define FIELD(field, T)                                                        \
  (offsetof(gw_config, field) +                                                \
   0 * sizeof(char[_Generic(((gw_config *)0)->field, T: 1, default: -1)]))
/* clang-format on */

#define KEY_INT(n, f, lo, hi, d, h)                                            \
  {                                                                            \
    .name = (n), .type = CT_INT, .store = ST_INT, .min = (lo), .max = (hi),    \
    .idef = (d), .off = FIELD(f, int), .help = (h)                             \
  }
#define KEY_BYTES_(n, f, st, T, lo, hi, d, h)                                  \
  {                                                                            \
    .name = (n), .type = CT_BYTES, .store = (st), .min = (lo), .max = (hi),    \
    .idef = (d), .off = FIELD(f, T), .help = (h)                               \
  }
#define KEY_BYTES(n, f, lo, hi, d, h)                                          \
  KEY_BYTES_(n, f, ST_SIZE, size_t, lo, hi, d, h)
#define KEY_BYTES_INT(n, f, lo, hi, d, h)                                      \
  KEY_BYTES_(n, f, ST_INT, int, lo, hi, d, h)
#define KEY_BOOL(n, f, d, h)                                                   \
  {                                                                            \
    .name = (n), .type = CT_BOOL, .store = ST_INT, .min = 0, .max = 1,         \
    .idef = (d), .off = FIELD(f, int), .help = (h)                             \
  }
#define KEY_PATH(n, f, fl, d, h)                                               \
  {                                                                            \
    .name = (n), .type = CT_PATH, .store = ST_STR, .flags = (fl), .sdef = (d), \
    .off = FIELD(f, char *), .help = (h)                                       \
  }
#define KEY_ENUM_(n, f, st, T, ch, d, h)                                       \
  {                                                                            \
    .name = (n), .type = CT_ENUM, .store = (st), .sdef = (d), .choices = (ch), \
    .off = FIELD(f, T), .help = (h)                                            \
  }
#define KEY_ENUM(n, f, ch, d, h) KEY_ENUM_(n, f, ST_INT, int, ch, d, h)
#define KEY_ENUM_LEVEL(n, f, ch, d, h)                                         \
  KEY_ENUM_(n, f, ST_LEVEL, gw_log_level, ch, d, h)
/* Stores the chosen name, not its value. */
#define KEY_ENUM_STR(n, f, ch, d, h) KEY_ENUM_(n, f, ST_STR, char *, ch, d, h)
#define KEY_ADDR(n, fh, fp, fl, d, h)                                          \
  {                                                                            \
    .name = (n), .type = CT_ADDR, .store = ST_STR, .flags = (fl), .sdef = (d), \
    .off = FIELD(fh, char *), .off2 = FIELD(fp, int), .help = (h)              \
  }

#define KEY_STR(n, f, fl, lo, hi, d, h)                                        \
  {                                                                            \
    .name = (n), .type = CT_STR, .store = ST_STR, .flags = (fl), .min = (lo),  \
    .max = (hi), .sdef = (d), .off = FIELD(f, char *), .help = (h)             \
  }

/* A secret string: shown nowhere, wiped on free. */
#define KEY_SECRET(n, f, lo, hi, h)                                            \
  {                                                                            \
    .name = (n), .type = CT_STR, .store = ST_STR, .flags = F_SECRET,           \
    .min = (lo), .max = (hi), .sdef = "", .off = FIELD(f, char *), .help = (h) \
  }

#define KIB 1024LL
#define MIB (1024LL * 1024LL)

/* The longest path we will store; the OS refuses longer ones anyway. */
#define CFG_PATH_MAX 4095
/* The largest config file read; real ones are a few kilobytes. */
#define CFG_FILE_MAX (1024 * 1024)
/* PKCS#11 token labels are 32 bytes (CK_TOKEN_INFO.label). */
#define CFG_LABEL_MAX 32
#define CFG_URL_MAX 1024
/* Upper bound for server.workers (gw_server keeps one listening socket per
 * worker). */
#define CFG_WORKERS_MAX 64
/* AP_ID is an xs:anyURI; the mss.h caps. */
#define CFG_AP_ID_MAX 256
#define CFG_AP_PWD_MAX 128
/* The SOAP codec's input cap (mss_soap.h MSS_SOAP_MAX_INPUT). */
#define CFG_SOAP_MAX (256 * KIB)

static const cfg_choice tls_versions[] = {
    {"1.2", 0x0303}, {"1.3", 0x0304}, {NULL, 0}};
static const cfg_choice log_levels[] = {{"debug", GW_LOG_DEBUG},
                                        {"info", GW_LOG_INFO},
                                        {"warn", GW_LOG_WARN},
                                        {"error", GW_LOG_ERROR},
                                        {NULL, 0}};
/* The value is unused: the backend is stored by name. */
static const cfg_choice store_backends[] = {{"sqlite", 0}, {NULL, 0}};

static const cfg_key config_keys[] = {
    /* server */
    KEY_ADDR("server.listen", listen_host, listen_port, F_NONEMPTY,
             "127.0.0.1:8443", "TLS (h2) listen address"),
    KEY_ADDR("server.h2c_listen", h2c_host, h2c_port, F_OFF, "",
             "cleartext h2c listen address, \"\" = off"),
    KEY_INT("server.workers", workers, 0, CFG_WORKERS_MAX, 0,
            "event-loop threads, 0 = one per online CPU"),
    KEY_INT("server.shutdown_grace_ms", shutdown_grace_ms, 0, 600000, 10000,
            "ms to finish requests on shutdown"),
    KEY_INT("server.housekeeping_interval_ms", housekeeping_ms, 10, 60000, 1000,
            "ms between housekeeping runs (timeouts, expiry)"),

    /* tls */
    KEY_PATH("tls.certificate", tls_cert, F_REQUIRED | F_NONEMPTY, NULL,
             "PEM certificate chain, leaf first"),
    KEY_PATH("tls.private_key", tls_key, F_REQUIRED | F_NONEMPTY, NULL,
             "PEM private key of the certificate"),
    KEY_ENUM("tls.min_version", tls_min_version, tls_versions, "1.2",
             "lowest TLS version accepted"),

    /* limits */
    KEY_INT("limits.max_connections", max_connections, 1, 1000000, 10000,
            "open connections in all"),
    KEY_INT("limits.max_connections_per_ip", max_connections_per_ip, 1, 1000000,
            512, "open connections from one client address"),
    KEY_INT("limits.max_concurrent_streams", max_concurrent_streams, 1, 10000,
            100, "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS"),
    KEY_BYTES_INT("limits.max_header_list_size", max_header_list_size, 1 * KIB,
                  256 * KIB, 16 * KIB,
                  "bytes of request headers (HTTP/2 header list size)"),
    KEY_INT("limits.max_header_count", max_header_count, 1, 1000, 100,
            "header fields in one request"),
    KEY_BYTES("limits.max_body_size", max_body_size, 1 * KIB, 256 * MIB,
              1 * MIB, "bytes of one request body"),
    KEY_BYTES("limits.max_output_buffer", max_output_buffer, 16 * KIB,
              256 * MIB, 1 * MIB,
              "bytes queued for one connection before reading pauses"),
    KEY_INT("limits.handshake_timeout_ms", handshake_timeout_ms, 100, 600000,
            10000, "ms for the TLS handshake and client preface"),
    KEY_INT("limits.header_timeout_ms", header_timeout_ms, 100, 600000, 10000,
            "ms to receive a request's headers"),
    KEY_INT("limits.request_timeout_ms", request_timeout_ms, 100, 3600000,
            30000, "ms for a whole request"),
    KEY_INT("limits.idle_timeout_ms", idle_timeout_ms, 1000, 3600000, 60000,
            "ms a connection may stay without streams"),
    KEY_INT("limits.settings_ack_timeout_ms", settings_ack_timeout_ms, 100,
            600000, 10000, "ms for the peer to acknowledge SETTINGS"),
    KEY_INT("limits.stream_error_budget", stream_error_budget, 1, 1000000, 100,
            "stream errors before the connection is closed"),
    KEY_INT("limits.stream_reset_burst", reset_burst, 1, 1000000, 200,
            "stream resets allowed in a burst (rapid-reset guard)"),
    KEY_INT("limits.stream_reset_rate", reset_rate, 1, 1000000, 10,
            "stream resets per second allowed after the burst"),
    KEY_INT("limits.signin_starts_per_source", signin.starts_per_source, 0,
            1000000, 30, "sign-in starts from one address per window, 0 = off"),
    KEY_INT("limits.signin_source_window_s", signin.source_window_s, 1, 86400,
            60, "the window of signin_starts_per_source, s"),
    KEY_INT("limits.signin_per_pair_hour", signin.per_pair_hour, 0, 1000000, 30,
            "sign-ins per (phone, source) and (phone, client) per hour, "
            "0 = off"),
    KEY_INT("limits.signin_per_pair_day", signin.per_pair_day, 0, 1000000, 100,
            "sign-ins per (phone, source) and (phone, client) per day, "
            "0 = off"),
    KEY_INT("limits.signin_refusals_before_cooldown", signin.refusals_cooldown,
            0, 1000, 5,
            "refusals in a row for a pair before a cool-down, 0 = off"),
    KEY_INT("limits.signin_cooldown_s", signin.cooldown_s, 1, 86400, 60,
            "cool-down of a pair after those refusals, s"),
    KEY_INT("limits.signin_pending_max_s", signin.pending_max_s, 10, 3600, 150,
            "s a pending sign-in blocks its phone at most (> ciba_expiry_s)"),
    KEY_INT("limits.signin_max_entries", signin.max_entries, 1000, 10000000,
            100000, "entries per limits table; the oldest are evicted"),

    /* log */
    KEY_ENUM_LEVEL("log.level", log_level, log_levels, "info",
                   "lowest level written"),
    KEY_PATH("log.file", log_file, 0, "", "log file, \"\" = stderr"),
    KEY_BOOL("log.access", access_log, 1, "one line per request"),

    /* store */
    KEY_ENUM_STR("store.backend", store_backend, store_backends, "sqlite",
                 "storage backend"),
    KEY_PATH("store.path", store_path, F_NONEMPTY, "mpkigw.db",
             "database file"),
    KEY_INT("store.busy_timeout_ms", store_busy_timeout_ms, 0, 600000, 5000,
            "ms to wait for a locked database"),

    /* pkcs11 */
    KEY_PATH("pkcs11.module", p11_module, F_NONEMPTY,
             "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 module (.so)"),
    KEY_PATH("pkcs11.softhsm_conf", softhsm_conf, 0, "softhsm2.conf",
             "SOFTHSM2_CONF set before loading the module, \"\" = inherit"),

    /* pki */
    KEY_PATH("pki.dir", pki_dir, F_NONEMPTY, "pki",
             "CA certificates, index.txt, issued certificates"),
    KEY_STR("pki.ca_token", pki_ca_token, 0, 1, CFG_LABEL_MAX, "mpki-ca",
            "label of the PKCS#11 token with the CA keys"),
    KEY_PATH("pki.pin_file", pki_pin_file, F_NONEMPTY, "token-pins",
             "0600 file with the demo tokens' PINs"),
    KEY_INT("pki.clock_skew_s", pki_clock_skew_s, 0, 3600, 300,
            "s of clock skew allowed on validity times"),
    KEY_PATH("pki.crl", pki_crl, F_NONEMPTY, "pki/crl.pem",
             "CRL of the issuing CA (PEM)"),
    KEY_INT("pki.crl_days", pki_crl_days, 1, 365, 7,
            "days from a CRL's thisUpdate to its nextUpdate"),
    KEY_STR("pki.ocsp_url", pki_ocsp_url, F_URL, 0, CFG_URL_MAX, "",
            "OCSP responder URL (certificates' AIA), \"\" = none"),

    /* gateway_keys */
    KEY_STR("gateway_keys.token", gwkeys_token, 0, 1, CFG_LABEL_MAX,
            "mpki-gateway", "label of the token with the token-signing keys"),
    KEY_PATH("gateway_keys.dir", gwkeys_dir, F_NONEMPTY, "keys",
             "public keys of the token-signing keys (PEM), for the JWKS"),

    /* operators */
    KEY_PATH("operators.numbering_plan", op_numbering_plan, F_NONEMPTY,
             "numbering-plan.conf", "MSISDN prefix -> operator"),
    KEY_PATH("operators.portability", op_portability, 0, "portability.csv",
             "ported numbers (CSV msisdn,operator), \"\" = none"),
    KEY_INT("operators.max_connections_per_host", op_max_conns_per_host, 1,
            10000, 64, "connections to one operator host per worker thread"),
    KEY_STR("operators.omantel.url", op_omantel.url, F_URL | F_NONEMPTY, 1,
            CFG_URL_MAX, "http://127.0.0.1:9201/soap/services",
            "Omantel MSSP SOAP base URL (+ /MSS_SignaturePort, ...)"),
    KEY_STR("operators.omantel.ap_id", op_omantel.ap_id, F_URL, 0,
            CFG_AP_ID_MAX, "",
            "our AP_ID at Omantel (a URI), \"\" = adapter not configured"),
    KEY_SECRET("operators.omantel.ap_pwd", op_omantel.ap_pwd, 0, CFG_AP_PWD_MAX,
               "our AP_PWD at Omantel (secret)"),
    KEY_INT("operators.omantel.poll_first_ms", op_omantel.poll_first_ms, 0,
            600000, 1000, "ms from 100 REQUEST_OK to the first status query"),
    KEY_INT("operators.omantel.poll_interval_ms", op_omantel.poll_interval_ms,
            10, 600000, 1000, "ms between status queries"),
    KEY_INT("operators.omantel.timeout_s", op_omantel.timeout_s, 1, 3600, 120,
            "TimeOut of a signature request, s"),
    KEY_INT("operators.omantel.connect_timeout_ms",
            op_omantel.connect_timeout_ms, 100, 60000, 3000,
            "ms to connect to the MSSP"),
    KEY_INT("operators.omantel.http_timeout_ms", op_omantel.http_timeout_ms,
            100, 600000, 10000, "ms for one HTTP exchange with the MSSP"),
    KEY_BYTES("operators.omantel.max_response_size", op_omantel.max_response,
              4 * KIB, CFG_SOAP_MAX, CFG_SOAP_MAX, "bytes of one MSSP answer"),
    KEY_INT("operators.omantel.status_retries", op_omantel.status_retries, 0,
            100, 3, "failed status queries in a row before giving up"),
    KEY_INT("operators.omantel.breaker_failures", op_omantel.breaker_failures,
            0, 1000, 5, "failures in a row that open the breaker, 0 = off"),
    KEY_INT("operators.omantel.breaker_cooldown_ms",
            op_omantel.breaker_cooldown_ms, 100, 3600000, 30000,
            "ms the breaker stays open before a probe"),
    KEY_STR("operators.ooredoo.url", op_ooredoo.url, F_URL | F_NONEMPTY, 1,
            CFG_URL_MAX, "http://127.0.0.1:9202/rest/service",
            "Ooredoo MSSP JSON endpoint (POST, every message)"),
    KEY_STR("operators.ooredoo.ap_id", op_ooredoo.ap_id, F_URL, 0,
            CFG_AP_ID_MAX, "",
            "our AP_ID at Ooredoo (a URI), \"\" = adapter not configured"),
    KEY_SECRET("operators.ooredoo.ap_pwd", op_ooredoo.ap_pwd, 0, CFG_AP_PWD_MAX,
               "our AP_PWD at Ooredoo (secret)"),
    KEY_STR("operators.ooredoo.notify_url", op_ooredoo.notify_url, F_URL, 0,
            CFG_URL_MAX, "",
            "URL of our POST /operators/ooredoo/notify as the MSSP calls it; "
            "\"\" = no notifications, poll"),
    KEY_SECRET("operators.ooredoo.notify_secret", op_ooredoo.notify_secret, 0,
               CFG_AP_PWD_MAX,
               "HMAC-SHA256 key of the notifications (secret, >= 32 bytes "
               "with notify_url)"),
    KEY_INT("operators.ooredoo.notify_overdue_ms", op_ooredoo.notify_overdue_ms,
            100, 3600000, 15000,
            "ms after 100 REQUEST_OK without a notification before polling"),
    KEY_INT("operators.ooredoo.notify_max_skew_s", op_ooredoo.notify_max_skew_s,
            1, 3600, 300, "s a notification's timestamp may differ from now"),
    KEY_INT("operators.ooredoo.poll_first_ms", op_ooredoo.poll_first_ms, 0,
            600000, 1000,
            "ms from 100 REQUEST_OK to the first status query (no notify_url)"),
    KEY_INT("operators.ooredoo.poll_interval_ms", op_ooredoo.poll_interval_ms,
            10, 600000, 2000, "ms between status queries"),
    KEY_INT("operators.ooredoo.timeout_s", op_ooredoo.timeout_s, 1, 3600, 120,
            "TimeOut of a signature request, s"),
    KEY_INT("operators.ooredoo.connect_timeout_ms",
            op_ooredoo.connect_timeout_ms, 100, 60000, 3000,
            "ms to connect to the MSSP"),
    KEY_INT("operators.ooredoo.http_timeout_ms", op_ooredoo.http_timeout_ms,
            100, 600000, 10000, "ms for one HTTP exchange with the MSSP"),
    KEY_BYTES("operators.ooredoo.max_response_size", op_ooredoo.max_response,
              4 * KIB, CFG_SOAP_MAX, CFG_SOAP_MAX, "bytes of one MSSP answer"),
    KEY_INT("operators.ooredoo.status_retries", op_ooredoo.status_retries, 0,
            100, 3, "failed status queries in a row before giving up"),
    KEY_INT("operators.ooredoo.breaker_failures", op_ooredoo.breaker_failures,
            0, 1000, 5, "failures in a row that open the breaker, 0 = off"),
    KEY_INT("operators.ooredoo.breaker_cooldown_ms",
            op_ooredoo.breaker_cooldown_ms, 100, 3600000, 30000,
            "ms the breaker stays open before a probe"),

    /* oidc (issue 6) */
    KEY_STR("oidc.issuer", oidc_issuer, F_URL | F_NONEMPTY, 1, CFG_URL_MAX,
            "https://127.0.0.1:8443",
            "issuer identifier: the gateway's public base URL, exact"),
    KEY_PATH("oidc.clients_file", oidc_clients_file, 0, "clients.conf",
             "relying parties seeded into the store at start-up, \"\" = none"),
    KEY_BOOL("oidc.demo", oidc_demo, 0,
             "demo: client secrets under 32 bytes allowed"),
    KEY_STR("oidc.signing_alg", oidc_signing_alg, F_NONEMPTY, 5, 5, "ES256",
            "default token signing algorithm: ES256 or RS256"),
    KEY_INT("oidc.access_token_ttl_s", oidc_access_ttl_s, 30, 86400, 300,
            "access token lifetime, s"),
    KEY_INT("oidc.id_token_ttl_s", oidc_id_ttl_s, 30, 86400, 300,
            "ID token lifetime, s"),
    KEY_INT("oidc.ciba_expiry_s", oidc_ciba_expiry_s, 10, 600, 120,
            "CIBA request lifetime, s (default and maximum requested_expiry)"),
    KEY_INT("oidc.ciba_interval_s", oidc_ciba_interval_s, 1, 60, 5,
            "CIBA token polling interval, s"),
    KEY_STR("oidc.display_lang", oidc_display_lang, F_NONEMPTY, 2, 2, "ar",
            "language of the text on the phone: ar or en"),
    KEY_STR("oidc.licensing_officers", oidc_officers, 0, 0, 65536, "",
            "civil numbers (space-separated) that may get licensing.officer"),
    /* oidc: the browser flow (issue 7, docs/browser.md) */
    KEY_INT("oidc.session_idle_s", oidc_session_idle_s, 60, 86400, 1800,
            "a browser session ends after this many s without a request"),
    KEY_INT("oidc.session_max_s", oidc_session_max_s, 60, 604800, 43200,
            "a browser session ends this many s after sign-in at the latest"),
    KEY_INT("oidc.code_ttl_s", oidc_code_ttl_s, 10, 600, 60,
            "lifetime of an authorization code, s"),
    KEY_INT("oidc.refresh_ttl_s", oidc_refresh_ttl_s, 60, 2592000, 43200,
            "absolute lifetime of a refresh-token family, s"),
};

#define N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* What one load needs to report errors and resolve paths. */
typedef struct cfg_ctx {
  const char *file; /* as the caller gave it; used in messages */
  char *dir;        /* absolute directory of the file */
  char *text;       /* the file's content, NUL-terminated */
  char *err;
  size_t errlen;
} cfg_ctx;

/* Writes "file:line: reason" (or "file: reason" without a setting) to the
 * caller's buffer. Returns |rv|. */
static int cfg_fail(cfg_ctx *c, int rv, const config_setting_t *s,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int cfg_fail(cfg_ctx *c, int rv, const config_setting_t *s,
                    const char *fmt, ...) {
  const char *inc = s ? config_setting_source_file(s) : NULL;
  va_list ap;
  int n;

  if (!c->err || c->errlen == 0) {
    return rv;
  }
  if (inc) {
    /* From an @include'd file, which libconfig names as written. */
    n = snprintf(c->err, c->errlen, "%s%s%s:%u: ", inc[0] == '/' ? "" : c->dir,
                 inc[0] == '/' ? "" : "/", inc,
                 (unsigned)config_setting_source_line(s));
  } else if (s) {
    n = snprintf(c->err, c->errlen, "%s:%u: ", c->file,
                 (unsigned)config_setting_source_line(s));
  } else {
    n = snprintf(c->err, c->errlen, "%s: ", c->file);
  }
  if (n < 0 || (size_t)n >= c->errlen) {
    return rv;
  }
  va_start(ap, fmt);
  vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return rv;
}

/* Quotes a value from the file for an error message: control bytes cannot
 * reach the terminal and long values are cut. */
static const char *cfg_q(char *buf, size_t cap, const char *v) {
  return gw_log_quote(buf, cap, v, strlen(v));
}

static const char *type_name(int type) {
  switch (type) {
  case CONFIG_TYPE_GROUP:
    return "a group";
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64:
    return "an integer";
  case CONFIG_TYPE_FLOAT:
    return "a float";
  case CONFIG_TYPE_STRING:
    return "a string";
  case CONFIG_TYPE_BOOL:
    return "a boolean";
  case CONFIG_TYPE_ARRAY:
    return "an array";
  case CONFIG_TYPE_LIST:
    return "a list";
  default:
    return "nothing";
  }
}

static const char *kind_name(cfg_type t) {
  switch (t) {
  case CT_INT:
    return "int";
  case CT_BYTES:
    return "bytes";
  case CT_BOOL:
    return "bool";
  case CT_PATH:
    return "path";
  case CT_ENUM:
    return "enum";
  case CT_ADDR:
    return "address";
  case CT_STR:
    return "string";
  }
  return "?";
}

/* Writes the choices as `"a", "b"` into |buf|. */
static const char *choice_list(char *buf, size_t cap, const cfg_choice *ch,
                               const char *sep, int quote) {
  size_t o = 0;

  buf[0] = '\0';
  for (; ch->name; ch++) {
    int n = snprintf(buf + o, cap - o, "%s%s%s%s", o ? sep : "",
                     quote ? "\"" : "", ch->name, quote ? "\"" : "");
    if (n < 0 || (size_t)n >= cap - o) {
      break;
    }
    o += (size_t)n;
  }
  return buf;
}

static const cfg_key *key_find(const char *name) {
  for (size_t i = 0; i < N_KEYS; i++) {
    if (strcmp(config_keys[i].name, name) == 0) {
      return &config_keys[i];
    }
  }
  return NULL;
}

/* Writes the group names, in table order, as "a, b, c" into |buf|. */
static const char *group_list(char *buf, size_t cap) {
  size_t o = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < N_KEYS; i++) {
    const char *name = config_keys[i].name;
    int glen = (int)strcspn(name, "."), n;

    if (i > 0 &&
        strncmp(config_keys[i - 1].name, name, (size_t)glen + 1) == 0) {
      continue; /* the table keeps a group's keys together */
    }
    n = snprintf(buf + o, cap - o, "%s%.*s", o ? ", " : "", glen, name);
    if (n < 0 || (size_t)n >= cap - o) {
      break;
    }
    o += (size_t)n;
  }
  return buf;
}

/* Non-zero when some key lives in group |g| ("server", or a nested group
 * such as "operators.omantel"). */
static int group_known(const char *g) {
  size_t n = strlen(g);

  for (size_t i = 0; i < N_KEYS; i++) {
    if (strncmp(config_keys[i].name, g, n) == 0 &&
        config_keys[i].name[n] == '.') {
      return 1;
    }
  }
  return 0;
}

static void *field(gw_config *cfg, size_t off) {
  return (char *)cfg + off;
}

static void store_int(gw_config *cfg, const cfg_key *k, long long v) {
  switch (k->store) {
  case ST_INT:
    *(int *)field(cfg, k->off) = (int)v;
    break;
  case ST_SIZE:
    *(size_t *)field(cfg, k->off) = (size_t)v;
    break;
  case ST_LEVEL:
    *(gw_log_level *)field(cfg, k->off) = (gw_log_level)v;
    break;
  case ST_STR:
    break; /* not reached: string keys do not come here */
  }
}

/* Replaces the string at |off| with |v| (taken over). */
static void store_str(gw_config *cfg, size_t off, char *v) {
  char **p = field(cfg, off);

  free(*p);
  *p = v;
}

static int check_range(cfg_ctx *c, const cfg_key *k, const config_setting_t *s,
                       long long v) {
  if (v < k->min) {
    return cfg_fail(c, GW_ERR_CONFIG, s, "%s: %lld is below the minimum %lld",
                    k->name, v, k->min);
  }
  if (v > k->max) {
    return cfg_fail(c, GW_ERR_CONFIG, s, "%s: %lld is above the maximum %lld",
                    k->name, v, k->max);
  }
  return GW_OK;
}

/* Parses "123", "64k" or "1m" (case-insensitive suffix). Returns 0 on
 * success, -1 when |s| is not such a number or overflows. */
static int parse_bytes(const char *s, long long *out) {
  unsigned long long v = 0, mul = 1;
  const char *p = s;

  if (*p < '0' || *p > '9') {
    return -1;
  }
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (unsigned long long)LLONG_MAX / 10) {
      return -1;
    }
    v = v * 10 + (unsigned)(*p - '0');
  }
  if (*p == 'k' || *p == 'K') {
    mul = 1024;
    p++;
  } else if (*p == 'm' || *p == 'M') {
    mul = 1024 * 1024;
    p++;
  }
  if (*p != '\0' || v > (unsigned long long)LLONG_MAX / mul) {
    return -1;
  }
  *out = (long long)(v * mul);
  return 0;
}

/* Parses "a.b.c.d:port", "localhost:port" or "[v6]:port" into a newly
 * allocated host (without brackets) and a port. Returns GW_OK,
 * GW_ERR_INVALID or GW_ERR_NOMEM. */
static int parse_addr(const char *s, char **host, int *port) {
  const char *h, *hend, *p;
  char tmp[INET6_ADDRSTRLEN + 1];
  unsigned char bin[16];
  size_t hlen;
  long v = 0;

  if (s[0] == '[') {
    h = s + 1;
    hend = strchr(h, ']');
    if (!hend || hend[1] != ':') {
      return GW_ERR_INVALID;
    }
    p = hend + 2;
  } else {
    h = s;
    hend = strrchr(s, ':');
    if (!hend) {
      return GW_ERR_INVALID;
    }
    p = hend + 1;
  }
  hlen = (size_t)(hend - h);
  if (hlen == 0 || hlen >= sizeof(tmp)) {
    return GW_ERR_INVALID;
  }
  memcpy(tmp, h, hlen);
  tmp[hlen] = '\0';
  if (s[0] == '[') {
    if (inet_pton(AF_INET6, tmp, bin) != 1) {
      return GW_ERR_INVALID;
    }
  } else if (strcmp(tmp, "localhost") != 0 &&
             inet_pton(AF_INET, tmp, bin) != 1) {
    return GW_ERR_INVALID;
  }
  if (*p == '\0' || strlen(p) > 5) {
    return GW_ERR_INVALID;
  }
  for (; *p; p++) {
    if (*p < '0' || *p > '9') {
      return GW_ERR_INVALID;
    }
    v = v * 10 + (*p - '0');
  }
  if (v < 1 || v > 65535) {
    return GW_ERR_INVALID;
  }
  *host = strdup(tmp);
  if (!*host) {
    return GW_ERR_NOMEM;
  }
  *port = (int)v;
  return GW_OK;
}

/* Joins a relative |v| to the config's directory; "" and absolute paths are
 * kept. Returns a new string or NULL when out of memory. */
static char *resolve_path(const cfg_ctx *c, const char *v) {
  char *out;
  size_t dl;

  if (v[0] == '\0' || v[0] == '/') {
    return strdup(v);
  }
  dl = strlen(c->dir);
  out = malloc(dl + 1 + strlen(v) + 1);
  if (!out) {
    return NULL;
  }
  /* The directory is "/" only for files in the root. */
  snprintf(out, dl + 1 + strlen(v) + 1, "%s%s%s", c->dir,
           c->dir[dl - 1] == '/' ? "" : "/", v);
  return out;
}

/* Checks a CT_STR value: its length, no control bytes (labels and URLs are
 * printed and passed to libraries that stop at them), and the URL form. */
static int check_str(cfg_ctx *c, const cfg_key *k, const config_setting_t *s,
                     const char *v) {
  size_t n = strlen(v);
  char q[96];

  if (n == 0 && k->min > 0) {
    return cfg_fail(c, GW_ERR_CONFIG, s, "%s: must not be empty", k->name);
  }
  if ((long long)n > k->max) {
    return cfg_fail(c, GW_ERR_CONFIG, s, "%s: longer than %lld bytes", k->name,
                    k->max);
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)v[i];
    if (ch < 0x20 || ch == 0x7f) {
      return cfg_fail(c, GW_ERR_CONFIG, s,
                      "%s: %s contains a control character", k->name,
                      (k->flags & F_SECRET) ? "(the secret value)"
                                            : cfg_q(q, sizeof(q), v));
    }
  }
  if ((k->flags & F_URL) && n > 0 && strncmp(v, "http://", 7) != 0 &&
      strncmp(v, "https://", 8) != 0) {
    return cfg_fail(c, GW_ERR_CONFIG, s,
                    "%s: %s is not an http:// or https:// URL", k->name,
                    cfg_q(q, sizeof(q), v));
  }
  return GW_OK;
}

/* Sets a string-typed key from |v|; |s| is the setting it came from, NULL
 * for the table's default. */
static int set_string(cfg_ctx *c, gw_config *cfg, const cfg_key *k,
                      const config_setting_t *s, const char *v) {
  char q[96], list[128], *dup = NULL;
  const cfg_choice *ch;
  int port = 0, rv;

  if ((k->flags & F_NONEMPTY) && v[0] == '\0') {
    return cfg_fail(c, GW_ERR_CONFIG, s, "%s: must not be empty", k->name);
  }
  switch (k->type) {
  case CT_ENUM:
    for (ch = k->choices; ch->name; ch++) {
      if (strcmp(ch->name, v) == 0) {
        break;
      }
    }
    if (!ch->name) {
      return cfg_fail(c, GW_ERR_CONFIG, s, "%s: %s is not one of %s", k->name,
                      cfg_q(q, sizeof(q), v),
                      choice_list(list, sizeof(list), k->choices, ", ", 1));
    }
    if (k->store != ST_STR) {
      store_int(cfg, k, ch->value);
      return GW_OK;
    }
    dup = strdup(ch->name);
    break;
  case CT_ADDR:
    if (v[0] == '\0' && (k->flags & F_OFF)) {
      dup = strdup("");
      break;
    }
    rv = parse_addr(v, &dup, &port);
    if (rv == GW_ERR_INVALID) {
      return cfg_fail(c, GW_ERR_CONFIG, s,
                      "%s: %s is not host:port (IPv4 address, localhost or "
                      "[IPv6 address], port 1..65535)",
                      k->name, cfg_q(q, sizeof(q), v));
    }
    break;
  case CT_PATH:
    if (strlen(v) > CFG_PATH_MAX) {
      return cfg_fail(c, GW_ERR_CONFIG, s, "%s: longer than %d bytes", k->name,
                      CFG_PATH_MAX);
    }
    dup = resolve_path(c, v);
    if (dup && strlen(dup) > CFG_PATH_MAX) {
      free(dup);
      return cfg_fail(c, GW_ERR_CONFIG, s,
                      "%s: longer than %d bytes once made absolute", k->name,
                      CFG_PATH_MAX);
    }
    break;
  case CT_STR:
    rv = check_str(c, k, s, v);
    if (rv != GW_OK) {
      return rv;
    }
    dup = strdup(v);
    break;
  case CT_INT:
  case CT_BYTES:
  case CT_BOOL:
    return GW_ERR_INTERNAL; /* not string types */
  }
  if (!dup) {
    return cfg_fail(c, GW_ERR_NOMEM, s, "%s: out of memory", k->name);
  }
  if (k->flags & F_SECRET) {
    char **old = field(cfg, k->off);
    if (*old) {
      OPENSSL_cleanse(*old, strlen(*old));
    }
  }
  store_str(cfg, k->off, dup);
  if (k->type == CT_ADDR) {
    *(int *)field(cfg, k->off2) = port;
  }
  return GW_OK;
}

/* Characters of a libconfig setting name. */
static int name_char(int ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '*';
}

static int digit_value(int ch, int base) {
  int d = -1;

  if (ch >= '0' && ch <= '9') {
    d = ch - '0';
  } else if (ch >= 'a' && ch <= 'f') {
    d = ch - 'a' + 10;
  } else if (ch >= 'A' && ch <= 'F') {
    d = ch - 'A' + 10;
  }
  return d < base ? d : -1;
}

/* Reads an integer literal as libconfig writes it ([+-]123, 0x1f) at |v|.
 * Returns its length (0 when there is none); |*fits| says whether it fits
 * in an int, and then |*val| is its value. */
static size_t read_literal(const char *v, long long *val, int *fits) {
  unsigned long long acc = 0;
  const char *p = v, *digits;
  int neg = 0, ovf = 0, base = 10, d;

  if (*p == '+' || *p == '-') {
    neg = *p == '-';
    p++;
  }
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    base = 16;
    p += 2;
  }
  for (digits = p;; p++) {
    d = digit_value((unsigned char)*p, base);
    if (d < 0) {
      break;
    }
    if (acc > (ULLONG_MAX - (unsigned)d) / (unsigned)base) {
      ovf = 1;
    } else {
      acc = acc * (unsigned)base + (unsigned)d;
    }
  }
  if (p == digits) {
    return 0;
  }
  *fits = !ovf && acc <= (neg ? (unsigned long long)INT_MAX + 1 : INT_MAX);
  *val = *fits ? (neg ? -(long long)acc : (long long)acc) : 0;
  return (size_t)(p - v);
}

/* libconfig 1.5 keeps an integer literal without the L suffix in an int
 * even when it does not fit and wraps it: "4294968320" reads as 1024. So an
 * int setting's literal is found again in |text| (its name starts on
 * |line|) and compared with |got|. Returns 0 when they agree or the literal
 * cannot be found, else -1 with the literal copied to |lit|. */
static int literal_wrapped(const char *text, unsigned line, const char *name,
                           long long got, char *lit, size_t litcap) {
  const char *p = text, *end, *q, *v;
  size_t nl = strlen(name), n;
  long long val;
  int fits, found = 0;

  for (unsigned l = 1; l < line && p; l++) {
    p = strchr(p, '\n');
    p = p ? p + 1 : NULL;
  }
  if (!p) {
    return 0;
  }
  end = strchr(p, '\n');
  end = end ? end : p + strlen(p);
  /* Every "name = literal" starting on the line: a comment or a string may
   * hold the same words, so one agreeing literal is enough. */
  for (q = strstr(p, name); q && q < end; q = strstr(q + nl, name)) {
    if ((q > text && name_char((unsigned char)q[-1])) ||
        name_char((unsigned char)q[nl])) {
      continue;
    }
    v = q + nl + strspn(q + nl, " \t\r\n");
    if (*v != '=' && *v != ':') {
      continue;
    }
    v += 1 + strspn(v + 1, " \t\r\n");
    n = read_literal(v, &val, &fits);
    if (n == 0) {
      continue;
    }
    if (fits && val == got) {
      return 0;
    }
    if (!found) {
      snprintf(lit, litcap, "%.*s", (int)n, v);
      found = 1;
    }
  }
  return found ? -1 : 0;
}

/* Reads |fp| to the end, at most CFG_FILE_MAX bytes, into a new
 * NUL-terminated |*out| of |*len| bytes. Returns GW_OK, GW_ERR_IO (errno
 * set), GW_ERR_TOO_LARGE or GW_ERR_NOMEM. */
static int read_text(FILE *fp, char **out, size_t *len) {
  char chunk[4096];
  gw_buf b;
  size_t n;
  int rv = GW_OK;

  gw_buf_init(&b, CFG_FILE_MAX);
  do {
    n = fread(chunk, 1, sizeof(chunk), fp);
    rv = gw_buf_append(&b, chunk, n);
  } while (rv == GW_OK && n == sizeof(chunk));
  if (rv == GW_OK && ferror(fp)) {
    rv = GW_ERR_IO;
  }
  if (rv == GW_OK && !b.data) {
    b.data = strdup(""); /* an empty file */
    rv = b.data ? GW_OK : GW_ERR_NOMEM;
  }
  if (rv != GW_OK) {
    gw_buf_free(&b);
    return rv;
  }
  *out = b.data;
  *len = b.len;
  return GW_OK;
}

/* Frees a copy of the file's text, wiped first: it may hold a secret
 * (operators.*.ap_pwd). */
static void free_text(char *t) {
  if (t) {
    OPENSSL_cleanse(t, strlen(t));
    free(t);
  }
}

/* Checks an int setting's literal against wrapping (see literal_wrapped). */
static int check_int_literal(cfg_ctx *c, const cfg_key *k,
                             const config_setting_t *s, long long got) {
  const char *inc = config_setting_source_file(s);
  char lit[48], *text = c->text, *path = NULL;
  size_t len;
  FILE *fp;
  int bad;

  if (inc) {
    /* Rare: read the @include'd file again. */
    if (asprintf(&path, "%s%s%s", inc[0] == '/' ? "" : c->dir,
                 inc[0] == '/' ? "" : "/", inc) < 0) {
      return cfg_fail(c, GW_ERR_NOMEM, s, "%s: out of memory", k->name);
    }
    fp = fopen(path, "r");
    free(path);
    text = NULL;
    if (fp) {
      if (read_text(fp, &text, &len) != GW_OK) {
        text = NULL;
      }
      fclose(fp);
    }
    if (!text) {
      return GW_OK; /* libconfig read it a moment ago; nothing to compare */
    }
  }
  bad = literal_wrapped(text, config_setting_source_line(s),
                        strrchr(k->name, '.') + 1, got, lit, sizeof(lit));
  if (text != c->text) {
    free_text(text);
  }
  if (!bad) {
    return GW_OK;
  }
  return cfg_fail(c, GW_ERR_CONFIG, s, "%s: %s is %s %lld", k->name, lit,
                  lit[0] == '-' ? "below the minimum" : "above the maximum",
                  lit[0] == '-' ? k->min : k->max);
}

/* Applies one setting from the file to |cfg|. */
static int apply(cfg_ctx *c, gw_config *cfg, const cfg_key *k,
                 const config_setting_t *s) {
  char q[96], list[128];
  int t = config_setting_type(s);
  long long v;
  int rv;

  switch (k->type) {
  case CT_INT:
  case CT_BYTES:
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
      v = config_setting_get_int64(s);
      if (t == CONFIG_TYPE_INT) {
        rv = check_int_literal(c, k, s, v);
        if (rv != GW_OK) {
          return rv;
        }
      }
    } else if (k->type == CT_BYTES && t == CONFIG_TYPE_STRING) {
      if (parse_bytes(config_setting_get_string(s), &v) != 0) {
        return cfg_fail(c, GW_ERR_CONFIG, s,
                        "%s: %s is not a byte count (an integer, optionally "
                        "with suffix k or m)",
                        k->name,
                        cfg_q(q, sizeof(q), config_setting_get_string(s)));
      }
    } else {
      return cfg_fail(c, GW_ERR_CONFIG, s, "%s: expected %s, got %s", k->name,
                      k->type == CT_BYTES
                          ? "a byte count (an integer, or a string such as "
                            "\"64k\" or \"1m\")"
                          : "an integer",
                      type_name(t));
    }
    rv = check_range(c, k, s, v);
    if (rv != GW_OK) {
      return rv;
    }
    store_int(cfg, k, v);
    return GW_OK;
  case CT_BOOL:
    if (t != CONFIG_TYPE_BOOL) {
      return cfg_fail(c, GW_ERR_CONFIG, s, "%s: expected true or false, got %s",
                      k->name, type_name(t));
    }
    store_int(cfg, k, config_setting_get_bool(s) ? 1 : 0);
    return GW_OK;
  case CT_PATH:
  case CT_ENUM:
  case CT_ADDR:
  case CT_STR:
    if (t != CONFIG_TYPE_STRING) {
      if (k->type == CT_ENUM) {
        return cfg_fail(
            c, GW_ERR_CONFIG, s, "%s: expected one of %s, got %s", k->name,
            choice_list(list, sizeof(list), k->choices, ", ", 1), type_name(t));
      }
      return cfg_fail(c, GW_ERR_CONFIG, s, "%s: expected a string, got %s",
                      k->name, type_name(t));
    }
    return set_string(c, cfg, k, s, config_setting_get_string(s));
  }
  return GW_ERR_INTERNAL;
}

/* Fills |cfg| with the table's defaults. A failure other than NOMEM is a bug
 * in the table, caught by the unit tests. */
static int apply_defaults(cfg_ctx *c, gw_config *cfg) {
  int rv;

  for (size_t i = 0; i < N_KEYS; i++) {
    const cfg_key *k = &config_keys[i];

    if (k->store == ST_STR || k->type == CT_ENUM) {
      if (!k->sdef) {
        continue; /* required */
      }
      rv = set_string(c, cfg, k, NULL, k->sdef);
      if (rv != GW_OK) {
        return rv;
      }
    } else {
      store_int(cfg, k, k->idef);
    }
  }
  return GW_OK;
}

/* Applies the settings of group |g| named |gname| (dotted); a nested group
 * whose name some key continues ("operators" holds "omantel") is walked
 * the same way. */
static int apply_group(cfg_ctx *c, gw_config *cfg, config_setting_t *g,
                       const char *gname) {
  char full[256];
  int n = config_setting_length(g);
  int rv;

  for (int j = 0; j < n; j++) {
    config_setting_t *s = config_setting_get_elem(g, (unsigned)j);
    const cfg_key *k;

    /* Setting names are short [A-Za-z0-9_*-] words: a cut name matches
     * no key and is safe to print. */
    snprintf(full, sizeof(full), "%s.%s", gname, config_setting_name(s));
    k = key_find(full);
    if (!k && group_known(full)) {
      if (!config_setting_is_group(s)) {
        return cfg_fail(c, GW_ERR_CONFIG, s, "%s: expected a group, got %s",
                        full, type_name(config_setting_type(s)));
      }
      rv = apply_group(c, cfg, s, full);
      if (rv != GW_OK) {
        return rv;
      }
      continue;
    }
    if (!k) {
      return cfg_fail(c, GW_ERR_CONFIG, s, "unknown key \"%s\"", full);
    }
    rv = apply(c, cfg, k, s);
    if (rv != GW_OK) {
      return rv;
    }
  }
  return GW_OK;
}

/* Walks every setting in the file, in file order, so that the first error
 * reported is the first one in the file. */
static int apply_file(cfg_ctx *c, gw_config *cfg, config_setting_t *root) {
  char groups[160];
  int ng = config_setting_length(root);
  int rv;

  for (int i = 0; i < ng; i++) {
    config_setting_t *g = config_setting_get_elem(root, (unsigned)i);
    const char *gname = config_setting_name(g);

    if (!group_known(gname) || strchr(gname, '.')) {
      return cfg_fail(c, GW_ERR_CONFIG, g,
                      "unknown key \"%s\" (the groups are %s)", gname,
                      group_list(groups, sizeof(groups)));
    }
    if (!config_setting_is_group(g)) {
      return cfg_fail(c, GW_ERR_CONFIG, g, "%s: expected a group, got %s",
                      gname, type_name(config_setting_type(g)));
    }
    rv = apply_group(c, cfg, g, gname);
    if (rv != GW_OK) {
      return rv;
    }
  }
  return GW_OK;
}

/* Checks that need the whole file. */
static int check_config(cfg_ctx *c, gw_config *cfg, config_t *lc) {
  for (size_t i = 0; i < N_KEYS; i++) {
    const cfg_key *k = &config_keys[i];

    if ((k->flags & F_REQUIRED) && !*(char **)field(cfg, k->off)) {
      return cfg_fail(c, GW_ERR_CONFIG, NULL, "missing required key \"%s\"",
                      k->name);
    }
  }
  if (cfg->h2c_port != 0 && cfg->h2c_port == cfg->listen_port &&
      strcmp(cfg->h2c_host, cfg->listen_host) == 0) {
    return cfg_fail(c, GW_ERR_CONFIG, config_lookup(lc, "server.h2c_listen"),
                    "server.h2c_listen: the same address as server.listen");
  }
  if (cfg->workers == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    cfg->workers = n < 1 ? 1 : n > CFG_WORKERS_MAX ? CFG_WORKERS_MAX : (int)n;
  }
  return GW_OK;
}

/* Reads |path| into c->text and sets c->dir and |*abs| to its absolute
 * directory and name. */
static int load_file(cfg_ctx *c, const char *path, char **abs) {
  struct stat st;
  char *slash;
  size_t len;
  FILE *fp;
  int rv;

  fp = fopen(path, "r");
  if (!fp) {
    return cfg_fail(c, GW_ERR_IO, NULL, "%s", strerror(errno));
  }
  if (fstat(fileno(fp), &st) != 0) {
    goto fail_errno;
  }
  if (S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    goto fail_errno;
  }
  rv = read_text(fp, &c->text, &len);
  if (rv == GW_ERR_IO) {
    goto fail_errno;
  }
  fclose(fp);
  if (rv == GW_ERR_TOO_LARGE) {
    return cfg_fail(c, GW_ERR_CONFIG, NULL, "larger than %d bytes",
                    CFG_FILE_MAX);
  }
  if (rv != GW_OK) {
    return cfg_fail(c, rv, NULL, "out of memory");
  }
  if (memchr(c->text, '\0', len)) {
    /* libconfig would stop reading at the NUL without a word. */
    return cfg_fail(c, GW_ERR_CONFIG, NULL, "contains a NUL byte");
  }
  *abs = realpath(path, NULL);
  if (!*abs) {
    return cfg_fail(c, GW_ERR_IO, NULL, "%s", strerror(errno));
  }
  c->dir = strdup(*abs);
  if (!c->dir) {
    return cfg_fail(c, GW_ERR_NOMEM, NULL, "out of memory");
  }
  slash = strrchr(c->dir, '/'); /* realpath's result always has one */
  slash[slash == c->dir ? 1 : 0] = '\0';
  return GW_OK;

fail_errno:
  cfg_fail(c, GW_ERR_IO, NULL, "%s", strerror(errno));
  fclose(fp);
  return GW_ERR_IO;
}

static void free_strings(gw_config *cfg) {
  for (size_t i = 0; i < N_KEYS; i++) {
    if (config_keys[i].store == ST_STR) {
      char **p = field(cfg, config_keys[i].off);

      if ((config_keys[i].flags & F_SECRET) && *p) {
        OPENSSL_cleanse(*p, strlen(*p));
      }
      store_str(cfg, config_keys[i].off, NULL);
    }
  }
  free(cfg->path);
}

int gw_config_load(gw_config **out, const char *path, char *err,
                   size_t errlen) {
  cfg_ctx c = {.file = path, .err = err, .errlen = errlen};
  gw_config *cfg = NULL;
  char *abs = NULL;
  config_t lc;
  int rv;

  if (err && errlen) {
    err[0] = '\0';
  }
  rv = load_file(&c, path, &abs);
  if (rv != GW_OK) {
    goto fail_file;
  }
  config_init(&lc);
  /* @include "x.conf" is relative to the file, like every other path. */
  config_set_include_dir(&lc, c.dir);
  if (config_read_string(&lc, c.text) != CONFIG_TRUE) {
    const char *inc = config_error_file(&lc);

    rv = GW_ERR_CONFIG;
    if (err && errlen && inc) {
      snprintf(err, errlen, "%s%s%s:%d: %s", inc[0] == '/' ? "" : c.dir,
               inc[0] == '/' ? "" : "/", inc, config_error_line(&lc),
               config_error_text(&lc));
    } else if (err && errlen) {
      snprintf(err, errlen, "%s:%d: %s", path, config_error_line(&lc),
               config_error_text(&lc));
    }
    goto fail_read;
  }
  cfg = calloc(1, sizeof(*cfg));
  if (!cfg) {
    rv = cfg_fail(&c, GW_ERR_NOMEM, NULL, "out of memory");
    goto fail_read;
  }
  cfg->path = abs;
  abs = NULL;
  rv = apply_defaults(&c, cfg);
  if (rv != GW_OK) {
    goto fail_cfg;
  }
  rv = apply_file(&c, cfg, config_root_setting(&lc));
  if (rv != GW_OK) {
    goto fail_cfg;
  }
  rv = check_config(&c, cfg, &lc);
  if (rv != GW_OK) {
    goto fail_cfg;
  }
  config_destroy(&lc);
  free_text(c.text);
  free(c.dir);
  *out = cfg;
  return GW_OK;

fail_cfg:
  gw_config_del(cfg);
fail_read:
  config_destroy(&lc);
fail_file:
  free(abs);
  free_text(c.text);
  free(c.dir);
  return rv;
}

int gw_config_new_defaults(gw_config **out) {
  cfg_ctx c = {.file = "(defaults)"};
  char cwd[4096];
  gw_config *cfg;
  long n;

  if (!getcwd(cwd, sizeof(cwd))) {
    return GW_ERR_IO;
  }
  c.dir = cwd;
  cfg = calloc(1, sizeof(*cfg));
  if (!cfg) {
    return GW_ERR_NOMEM;
  }
  if (apply_defaults(&c, cfg) != GW_OK) {
    gw_config_del(cfg);
    return GW_ERR_NOMEM;
  }
  n = sysconf(_SC_NPROCESSORS_ONLN);
  cfg->workers = n < 1 ? 1 : n > CFG_WORKERS_MAX ? CFG_WORKERS_MAX : (int)n;
  *out = cfg;
  return GW_OK;
}

void gw_config_del(gw_config *cfg) {
  if (!cfg) {
    return;
  }
  free_strings(cfg);
  free(cfg);
}

void gw_config_print_keys(void *fp) {
  FILE *f = fp;
  char bounds[64], def[64];

  for (size_t i = 0; i < N_KEYS; i++) {
    const cfg_key *k = &config_keys[i];

    switch (k->type) {
    case CT_INT:
    case CT_BYTES:
      snprintf(bounds, sizeof(bounds), "%lld..%lld", k->min, k->max);
      snprintf(def, sizeof(def), "%lld", k->idef);
      break;
    case CT_BOOL:
      snprintf(bounds, sizeof(bounds), "true|false");
      snprintf(def, sizeof(def), "%s", k->idef ? "true" : "false");
      break;
    case CT_ENUM:
      choice_list(bounds, sizeof(bounds), k->choices, "|", 0);
      snprintf(def, sizeof(def), "\"%s\"", k->sdef);
      break;
    case CT_ADDR:
      snprintf(bounds, sizeof(bounds), "%s",
               (k->flags & F_OFF) ? "host:port|\"\"" : "host:port");
      snprintf(def, sizeof(def), "\"%s\"", k->sdef);
      break;
    case CT_STR:
      if (k->flags & F_URL) {
        snprintf(bounds, sizeof(bounds), "http(s) URL|\"\"");
      } else {
        snprintf(bounds, sizeof(bounds), "%lld..%lld bytes", k->min, k->max);
      }
      snprintf(def, sizeof(def), "\"%s\"", k->sdef);
      break;
    case CT_PATH:
      snprintf(bounds, sizeof(bounds), "%s",
               (k->flags & F_NONEMPTY) ? "non-empty" : "-");
      if (k->sdef) {
        snprintf(def, sizeof(def), "\"%s\"", k->sdef);
      } else {
        snprintf(def, sizeof(def), "(required)");
      }
      break;
    }
    fprintf(f, "%-38s %-7s %-22s %-16s %s\n", k->name, kind_name(k->type),
            bounds, def, k->help);
  }
}
