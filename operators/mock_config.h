/* mock_config.h — the configuration of mssp-mock (configs/mssp-mock.conf).
 *
 * libconfig syntax, like the gateway's. One file serves both mocks: the
 * operator chosen on the command line takes its own group (omantel { } or
 * ooredoo { }) and shares the rest. Every key is one row of a static table
 * in mock_config.c (type, bounds, default); unknown keys, wrong types and
 * values out of range stop start-up with "file:line: reason". Relative
 * paths are resolved against the file's directory. */
#ifndef MOCK_CONFIG_H
#define MOCK_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "gw_log.h"
#include "mock_mssp.h"

typedef enum mock_operator {
  MOCK_OP_OMANTEL = 0,
  MOCK_OP_OOREDOO = 1,
  MOCK_OP_COUNT_
} mock_operator;

/* "omantel" / "ooredoo". */
const char *mock_operator_name(mock_operator op);
/* Parses the name (case-insensitive). Returns GW_OK or GW_ERR_INVALID. */
int mock_operator_parse(const char *s, mock_operator *out);

/* One operator's group. */
typedef struct mock_op_config {
  char *listen_host; /* listen "host:port" */
  int listen_port;
  char *mssp_id;        /* MSSP_ID URI */
  char *default_format; /* "PKCS7" | "PKCS1" */
  char *tls_cert;       /* "" = plain HTTP (HTTP/1.1 and h2c) */
  char *tls_key;
} mock_op_config;

typedef struct mock_config {
  char *path;           /* absolute */
  char *gateway_config; /* the gateway's config: pkcs11.*, store.* */
  int gateway_ap;       /* accept the gateway's AP from gateway_config */
  char *state_dir;      /* SIM retry counters */
  mock_op_config op[MOCK_OP_COUNT_];
  /* transactions */
  int default_timeout_s, max_timeout_s, keep_done_s, max_transactions;
  int replay_window_s, replay_max;
  char *default_behaviour;
  /* sims */
  char *user_pin, *wrong_pin;
  int pool_threads;
  /* notifications (Ooredoo's asynchServerServer mode, mock_notify.h) */
  int notify_max_attempts;   /* 1..20 (6) */
  int notify_first_retry_ms; /* then x4 each time (1000) */
  int notify_window_s;       /* no attempt later after the end (600) */
  int notify_timeout_ms;     /* one attempt, connect included (5000) */
  char *notify_ca_file;      /* verifies https notify_urls; "" = the
                                system's trust store */
  /* control */
  int control_enabled;
  /* server */
  int shutdown_grace_ms;
  /* log */
  gw_log_level log_level;
  char *log_file; /* "" = stderr */
  int access_log;
  /* application_providers (the gateway's AP is added by the caller when
   * gateway_ap is set: mock_config_add_ap) */
  mock_ap *aps;
  size_t naps;
} mock_config;

/* Reads and checks |path|. Returns GW_OK with a new config in |*out|, or
 * GW_ERR_CONFIG / GW_ERR_IO / GW_ERR_NOMEM with "file:line: reason" in
 * |err|; |*out| untouched on failure. */
int mock_config_load(mock_config **out, const char *path, char *err,
                     size_t errlen);

/* Adds an AP (the gateway's own, read from gateway_config) unless one
 * with that AP_ID is listed already. |notify_url| / |notify_secret| (NULL
 * or "" = none) are where and with which HMAC key the Ooredoo mock POSTs
 * its asynchServerServer notifications: an http:// or https:// URL and a
 * secret of at least MOCK_NOTIFY_SECRET_MIN bytes. Returns GW_OK,
 * GW_ERR_INVALID (a string too long, an empty ap_id, a notify_url that is
 * not http(s):// or whose secret is too short, MOCK_AP_MAX reached),
 * GW_ERR_NOMEM. */
int mock_config_add_ap(mock_config *c, const char *ap_id, const char *ap_pwd,
                       const char *notify_url, const char *notify_secret);

/* The shortest notify_secret accepted beside a notify_url (bytes). */
#define MOCK_NOTIFY_SECRET_MIN 32

/* Frees |c| (wiping the AP passwords and PINs); NULL is a no-op. */
void mock_config_del(mock_config *c);

/* Writes every key with its type, bounds and default to |fp|. */
void mock_config_print_keys(FILE *fp);

#endif
