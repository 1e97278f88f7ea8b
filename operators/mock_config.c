/* mock_config.c — reads configs/mssp-mock.conf. See mock_config.h.
 *
 * Like gateway/gw_config.c, one static table lists every key with its
 * type, bounds and default; defaults, checks, --help-config and freeing
 * all come from it. The list of application providers is the one
 * structured key and has its own reader. */
#include "mock_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "gw_err.h"

#define FILE_MAX (1024 * 1024)
#define PATH_MAX_ 4095

typedef enum { K_INT, K_BOOL, K_STR, K_PATH, K_ADDR, K_ENUM } ktype;

enum {
  F_NONEMPTY = 1 << 0,
  F_SECRET = 1 << 1,   /* never shown in messages */
  F_URI = 1 << 2,      /* an absolute URI: scheme ":" ... */
  F_BEHAVIOUR = 1 << 3 /* a behaviour string (mock_mssp.h) */
};

typedef struct key {
  const char *name;
  ktype type;
  unsigned flags;
  long long min, max; /* K_INT; K_STR: length */
  long long idef;
  const char *sdef;
  const char *const *choices; /* K_ENUM, NULL-terminated */
  size_t off;                 /* K_ADDR: the host; the port at off2 */
  size_t off2;
  const char *help;
} key;

#define OFF(f) offsetof(mock_config, f)
#define OPOFF(i, f)                                                            \
  (offsetof(mock_config, op) + (i) * sizeof(mock_op_config) +                  \
   offsetof(mock_op_config, f))

static const char *const formats[] = {"PKCS7", "PKCS1", NULL};
static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

/* clang-format off */
#define OPKEYS(g, i, port, id, fmt)                                                  \
  {g ".listen", K_ADDR, F_NONEMPTY, 0, 0, 0, "127.0.0.1:" port, NULL,               \
   OPOFF(i, listen_host), OPOFF(i, listen_port),                                    \
   "listen address host:port (HTTP/1.1 and h2c, or TLS when a certificate is set)"},\
  {g ".mssp_id", K_STR, F_NONEMPTY | F_URI, 1, MSS_URI_MAX, 0, id, NULL,            \
   OPOFF(i, mssp_id), 0, "MSSP_ID URI written into every response"},               \
  {g ".default_format", K_ENUM, 0, 0, 0, 0, fmt, formats, OPOFF(i, default_format),\
   0, "MSS_Format when a request names none: PKCS7 (CMS) or PKCS1 (FiCom)"},       \
  {g ".tls_certificate", K_PATH, 0, 0, 0, 0, "", NULL, OPOFF(i, tls_cert), 0,      \
   "PEM certificate chain; \"\" = plain HTTP"},                                     \
  {g ".tls_private_key", K_PATH, 0, 0, 0, 0, "", NULL, OPOFF(i, tls_key), 0,       \
   "PEM private key of tls_certificate"}

static const key keys[] = {
  {"gateway_config", K_PATH, F_NONEMPTY, 0, 0, 0, "../var/mpkigw.conf", NULL,
   OFF(gateway_config), 0,
   "the gateway's config: pkcs11.*, store.* (the SIMs and the registry)"},
  {"gateway_ap", K_BOOL, 0, 0, 1, 1, NULL, NULL, OFF(gateway_ap), 0,
   "also accept the gateway's own AP (operators.<operator>.ap_id/ap_pwd of "
   "gateway_config)"},
  {"state_dir", K_PATH, F_NONEMPTY, 0, 0, 0, "../var/mssp-mock", NULL,
   OFF(state_dir), 0, "SIM PIN/PUK retry counters, one file per SIM"},
  OPKEYS("omantel", 0, "9201", "http://mssp.mock/omantel", "PKCS7"),
  OPKEYS("ooredoo", 1, "9202", "http://mssp.mock/ooredoo", "PKCS1"),
  {"transactions.default_timeout_s", K_INT, 0, 1, 86400, 300, NULL, NULL,
   OFF(default_timeout_s), 0, "TimeOut when a request has none (FiCom: 300)"},
  {"transactions.max_timeout_s", K_INT, 0, 1, 86400, 600, NULL, NULL,
   OFF(max_timeout_s), 0, "a larger TimeOut is cut to this"},
  {"transactions.keep_done_s", K_INT, 0, 1, 86400, 600, NULL, NULL,
   OFF(keep_done_s), 0, "s an ended transaction answers status queries"},
  {"transactions.max_transactions", K_INT, 0, 1, 1000000, 10000, NULL, NULL,
   OFF(max_transactions), 0, "transactions kept at once (running or ended)"},
  {"transactions.replay_window_s", K_INT, 0, 1, 31 * 86400, 86400, NULL, NULL,
   OFF(replay_window_s), 0, "s an (AP_ID, AP_TransID) pair is remembered"},
  {"transactions.replay_max", K_INT, 0, 1, 10000000, 100000, NULL, NULL,
   OFF(replay_max), 0, "pairs remembered at most (the oldest go first)"},
  {"transactions.default_behaviour", K_STR, F_BEHAVIOUR, 1,
   MOCK_BEHAVIOUR_MAX, 0, "approve:1000", NULL, OFF(default_behaviour), 0,
   "behaviour of a registry row without one"},
  {"sims.pin", K_STR, F_SECRET, 4, 64, 0, "1234", NULL, OFF(user_pin), 0,
   "the PIN approving virtual users type (the demo SIMs' PIN)"},
  {"sims.wrong_pin", K_STR, F_SECRET, 4, 64, 0, "0000", NULL, OFF(wrong_pin),
   0, "the PIN wrong_pin users type"},
  {"sims.pool_threads", K_INT, 0, 1, 16, 2, NULL, NULL, OFF(pool_threads), 0,
   "threads doing SIM (PKCS#11) work"},
  {"notifications.max_attempts", K_INT, 0, 1, 20, 6, NULL, NULL,
   OFF(notify_max_attempts), 0,
   "POSTs of one asynchServerServer notification at most (Ooredoo)"},
  {"notifications.first_retry_ms", K_INT, 0, 1, 600000, 1000, NULL, NULL,
   OFF(notify_first_retry_ms), 0,
   "ms before the first retry; each later one waits 4 times longer"},
  {"notifications.window_s", K_INT, 0, 1, 86400, 600, NULL, NULL,
   OFF(notify_window_s), 0,
   "s after the transaction's end past which no attempt is made"},
  {"notifications.timeout_ms", K_INT, 0, 100, 600000, 5000, NULL, NULL,
   OFF(notify_timeout_ms), 0, "ms for one attempt, connect included"},
  {"notifications.ca_file", K_PATH, 0, 0, 0, 0, "../var/tls/server.crt",
   NULL, OFF(notify_ca_file), 0,
   "PEM CA certificates for https notify_urls; \"\" = the system's"},
  {"control.enabled", K_BOOL, 0, 0, 1, 0, NULL, NULL, OFF(control_enabled), 0,
   "the /control/ endpoint (tests, demos): never on a shared network"},
  {"server.shutdown_grace_ms", K_INT, 0, 0, 600000, 2000, NULL, NULL,
   OFF(shutdown_grace_ms), 0, "ms for open requests on SIGTERM/SIGINT"},
  {"log.level", K_ENUM, 0, 0, 0, 0, "info", levels, OFF(log_level), 0,
   "lowest level written"},
  {"log.file", K_PATH, 0, 0, 0, 0, "", NULL, OFF(log_file), 0,
   "log file, \"\" = stderr"},
  {"log.access", K_BOOL, 0, 0, 1, 1, NULL, NULL, OFF(access_log), 0,
   "one line per request"},
};
/* clang-format on */

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

const char *mock_operator_name(mock_operator op) {
  return op == MOCK_OP_OOREDOO ? "ooredoo" : "omantel";
}

int mock_operator_parse(const char *s, mock_operator *out) {
  if (s && strcasecmp(s, "omantel") == 0) {
    *out = MOCK_OP_OMANTEL;
    return GW_OK;
  }
  if (s && strcasecmp(s, "ooredoo") == 0) {
    *out = MOCK_OP_OOREDOO;
    return GW_OK;
  }
  return GW_ERR_INVALID;
}

typedef struct ctx {
  const char *file;
  char *dir;
  char *err;
  size_t errlen;
} ctx;

static int fail(ctx *c, int rv, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(ctx *c, int rv, const config_setting_t *s, const char *fmt,
                ...) {
  va_list ap;
  int n;

  if (!c->err || !c->errlen) {
    return rv;
  }
  if (s) {
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

static void *fld(mock_config *cfg, size_t off) {
  return (char *)cfg + off;
}

static void set_str(mock_config *cfg, size_t off, char *v) {
  char **p = fld(cfg, off);

  if (*p) {
    OPENSSL_cleanse(*p, strlen(*p));
  }
  free(*p);
  *p = v;
}

static char *resolve(const ctx *c, const char *v) {
  char *out = NULL;

  if (v[0] == '\0' || v[0] == '/') {
    return strdup(v);
  }
  if (asprintf(&out, "%s/%s", c->dir, v) < 0) {
    return NULL;
  }
  return out;
}

static int parse_addr(const char *s, char **host, int *port) {
  const char *colon = strrchr(s, ':');
  char tmp[64];
  unsigned char bin[16];
  long v = 0;
  size_t hl;

  if (!colon || colon == s || strlen(colon + 1) == 0 || strlen(colon + 1) > 5) {
    return GW_ERR_INVALID;
  }
  hl = (size_t)(colon - s);
  if (hl >= sizeof(tmp)) {
    return GW_ERR_INVALID;
  }
  memcpy(tmp, s, hl);
  tmp[hl] = '\0';
  if (strcmp(tmp, "localhost") != 0 && inet_pton(AF_INET, tmp, bin) != 1) {
    return GW_ERR_INVALID;
  }
  for (const char *p = colon + 1; *p; p++) {
    if (*p < '0' || *p > '9') {
      return GW_ERR_INVALID;
    }
    v = v * 10 + (*p - '0');
  }
  if (v < 1 || v > 65535) {
    return GW_ERR_INVALID;
  }
  *host = strdup(tmp);
  *port = (int)v;
  return *host ? GW_OK : GW_ERR_NOMEM;
}

static int is_uri(const char *v) {
  const char *colon = strchr(v, ':');

  if (!colon || colon == v) {
    return 0;
  }
  for (const char *p = v; p < colon; p++) {
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (p > v && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' ||
                     *p == '.')))) {
      return 0;
    }
  }
  for (const char *p = v; *p; p++) {
    if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
      return 0;
    }
  }
  return 1;
}

/* Sets key |k| from the string |v| (|s| its setting, NULL for defaults). */
static int set_string(ctx *c, mock_config *cfg, const key *k,
                      const config_setting_t *s, const char *v) {
  char *dup = NULL;
  size_t n = strlen(v);
  int port = 0, rv;

  if ((k->flags & F_NONEMPTY) && n == 0) {
    return fail(c, GW_ERR_CONFIG, s, "%s: must not be empty", k->name);
  }
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
      return fail(c, GW_ERR_CONFIG, s, "%s: contains a control character",
                  k->name);
    }
  }
  switch (k->type) {
  case K_STR:
    if ((long long)n < k->min || (long long)n > k->max) {
      return fail(c, GW_ERR_CONFIG, s, "%s: %lld..%lld bytes needed", k->name,
                  k->min, k->max);
    }
    if ((k->flags & F_URI) && !is_uri(v)) {
      return fail(c, GW_ERR_CONFIG, s, "%s: \"%s\" is not an absolute URI",
                  k->name, v);
    }
    if ((k->flags & F_BEHAVIOUR) && mock_mssp_behaviour_check(v) != GW_OK) {
      return fail(c, GW_ERR_CONFIG, s,
                  "%s: \"%s\" is not a behaviour (approve[:ms], refuse[:ms], "
                  "no_answer, handset, pin_blocked, wrong_pin[:ms], "
                  "absent[:ms], sim_error[:ms], not_subscriber[:404|422])",
                  k->name, v);
    }
    dup = strdup(v);
    break;
  case K_PATH:
    if (n > PATH_MAX_) {
      return fail(c, GW_ERR_CONFIG, s, "%s: path too long", k->name);
    }
    dup = resolve(c, v);
    break;
  case K_ADDR:
    rv = parse_addr(v, &dup, &port);
    if (rv == GW_ERR_INVALID) {
      return fail(c, GW_ERR_CONFIG, s,
                  "%s: \"%s\" is not host:port (IPv4 address or localhost, "
                  "port 1..65535)",
                  k->name, v);
    }
    if (rv == GW_OK) {
      *(int *)fld(cfg, k->off2) = port;
    }
    break;
  case K_ENUM:
    for (size_t i = 0; k->choices[i]; i++) {
      if (strcmp(k->choices[i], v) == 0) {
        if (k->choices == levels) {
          gw_log_level_parse(v, (gw_log_level *)fld(cfg, k->off));
          return GW_OK;
        }
        dup = strdup(v);
        break;
      }
    }
    if (!dup) {
      return fail(c, GW_ERR_CONFIG, s, "%s: \"%s\" is not one of %s%s%s%s%s",
                  k->name, v, k->choices[0], k->choices[1] ? ", " : "",
                  k->choices[1] ? k->choices[1] : "",
                  k->choices[1] && k->choices[2] ? ", " : "",
                  k->choices[1] && k->choices[2] ? k->choices[2] : "");
    }
    break;
  case K_INT:
  case K_BOOL:
    return GW_ERR_INTERNAL;
  }
  if (!dup) {
    return fail(c, GW_ERR_NOMEM, s, "out of memory");
  }
  set_str(cfg, k->off, dup);
  return GW_OK;
}

static const char *type_name(int t) {
  switch (t) {
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

static int apply(ctx *c, mock_config *cfg, const key *k,
                 const config_setting_t *s) {
  int t = config_setting_type(s);
  long long v;

  switch (k->type) {
  case K_INT:
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
      return fail(c, GW_ERR_CONFIG, s, "%s: expected an integer, got %s",
                  k->name, type_name(t));
    }
    v = config_setting_get_int64(s);
    if (v < k->min || v > k->max) {
      return fail(c, GW_ERR_CONFIG, s, "%s: %lld is outside %lld..%lld",
                  k->name, v, k->min, k->max);
    }
    *(int *)fld(cfg, k->off) = (int)v;
    return GW_OK;
  case K_BOOL:
    if (t != CONFIG_TYPE_BOOL) {
      return fail(c, GW_ERR_CONFIG, s, "%s: expected true or false, got %s",
                  k->name, type_name(t));
    }
    *(int *)fld(cfg, k->off) = config_setting_get_bool(s) ? 1 : 0;
    return GW_OK;
  default:
    if (t != CONFIG_TYPE_STRING) {
      return fail(c, GW_ERR_CONFIG, s, "%s: expected a string, got %s", k->name,
                  type_name(t));
    }
    return set_string(c, cfg, k, s, config_setting_get_string(s));
  }
}

static const key *key_find(const char *name) {
  for (size_t i = 0; i < N_KEYS; i++) {
    if (strcmp(keys[i].name, name) == 0) {
      return &keys[i];
    }
  }
  return NULL;
}

static int group_known(const char *g) {
  size_t n = strlen(g);

  for (size_t i = 0; i < N_KEYS; i++) {
    if (strncmp(keys[i].name, g, n) == 0 && keys[i].name[n] == '.') {
      return 1;
    }
  }
  return 0;
}

/* The string member |name| of an AP entry into |dst| (|cap| bytes). */
static int ap_field(ctx *c, config_setting_t *e, const char *name, char *dst,
                    size_t cap, int required, int uri) {
  config_setting_t *s = config_setting_get_member(e, name);
  const char *v;

  if (!s) {
    if (required) {
      return fail(c, GW_ERR_CONFIG, e,
                  "application_providers: an entry without %s", name);
    }
    dst[0] = '\0';
    return GW_OK;
  }
  if (config_setting_type(s) != CONFIG_TYPE_STRING) {
    return fail(c, GW_ERR_CONFIG, s,
                "application_providers.%s: expected a string, got %s", name,
                type_name(config_setting_type(s)));
  }
  v = config_setting_get_string(s);
  if (strlen(v) >= cap || (required && !v[0])) {
    return fail(c, GW_ERR_CONFIG, s,
                "application_providers.%s: 1..%zu bytes needed", name, cap - 1);
  }
  if (uri && v[0] && !is_uri(v)) {
    return fail(c, GW_ERR_CONFIG, s,
                "application_providers.%s: \"%s\" is not an absolute URI", name,
                v);
  }
  memcpy(dst, v, strlen(v) + 1);
  return GW_OK;
}

static int is_http_url(const char *v) {
  return strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0;
}

/* A notify_url needs an http(s) scheme and a secret long enough for an
 * HMAC-SHA256 key. */
static int ap_notify_check(ctx *c, config_setting_t *e, const mock_ap *a) {
  config_setting_t *s = config_setting_get_member(e, "notify_url");

  if (!a->notify_url[0]) {
    return GW_OK;
  }
  if (!is_http_url(a->notify_url)) {
    return fail(c, GW_ERR_CONFIG, s ? s : e,
                "application_providers.notify_url: \"%s\" is not an "
                "http:// or https:// URL",
                a->notify_url);
  }
  if (strlen(a->notify_secret) < MOCK_NOTIFY_SECRET_MIN) {
    s = config_setting_get_member(e, "notify_secret");
    return fail(c, GW_ERR_CONFIG, s ? s : e,
                "application_providers.notify_secret: at least %d bytes "
                "are needed beside a notify_url (the HMAC-SHA256 key of "
                "the notifications)",
                MOCK_NOTIFY_SECRET_MIN);
  }
  return GW_OK;
}

static int read_aps(ctx *c, mock_config *cfg, config_setting_t *list) {
  int n;
  static const char *const known[] = {"ap_id", "ap_pwd", "notify_url",
                                      "notify_secret", NULL};

  if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
    return fail(c, GW_ERR_CONFIG, list,
                "application_providers: expected a list ( {...}, ... ), "
                "got %s",
                type_name(config_setting_type(list)));
  }
  n = config_setting_length(list);
  if (n < 1 || n > MOCK_AP_MAX) {
    return fail(c, GW_ERR_CONFIG, list,
                "application_providers: 1..%d entries needed", MOCK_AP_MAX);
  }
  cfg->aps = calloc((size_t)n, sizeof(*cfg->aps));
  if (!cfg->aps) {
    return fail(c, GW_ERR_NOMEM, list, "out of memory");
  }
  for (int i = 0; i < n; i++) {
    config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
    mock_ap *a = &cfg->aps[i];
    int rv;

    if (!config_setting_is_group(e)) {
      return fail(c, GW_ERR_CONFIG, e,
                  "application_providers: each entry is a group { ap_id = "
                  "\"...\"; ap_pwd = \"...\"; }");
    }
    for (int j = 0; j < config_setting_length(e); j++) {
      config_setting_t *m = config_setting_get_elem(e, (unsigned)j);
      int ok = 0;
      for (size_t kk = 0; known[kk]; kk++) {
        ok |= strcmp(config_setting_name(m), known[kk]) == 0;
      }
      if (!ok) {
        return fail(c, GW_ERR_CONFIG, m,
                    "unknown key \"application_providers.%s\" (ap_id, ap_pwd, "
                    "notify_url, notify_secret)",
                    config_setting_name(m));
      }
    }
    rv = ap_field(c, e, "ap_id", a->ap_id, sizeof(a->ap_id), 1, 1);
    rv = rv ? rv : ap_field(c, e, "ap_pwd", a->ap_pwd, sizeof(a->ap_pwd), 1, 0);
    rv = rv ? rv
            : ap_field(c, e, "notify_url", a->notify_url, sizeof(a->notify_url),
                       0, 1);
    rv = rv ? rv
            : ap_field(c, e, "notify_secret", a->notify_secret,
                       sizeof(a->notify_secret), 0, 0);
    if (rv) {
      return rv;
    }
    rv = ap_notify_check(c, e, a);
    if (rv) {
      return rv;
    }
    for (int j = 0; j < i; j++) {
      if (strcmp(cfg->aps[j].ap_id, a->ap_id) == 0) {
        return fail(c, GW_ERR_CONFIG, e,
                    "application_providers: ap_id \"%s\" is listed twice",
                    a->ap_id);
      }
    }
    cfg->naps++;
  }
  return GW_OK;
}

static int walk(ctx *c, mock_config *cfg, config_setting_t *root) {
  int aps_seen = 0, rv;

  for (int i = 0; i < config_setting_length(root); i++) {
    config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
    const char *name = config_setting_name(s);
    const key *k = key_find(name);

    if (strcmp(name, "application_providers") == 0) {
      rv = read_aps(c, cfg, s);
      aps_seen = 1;
    } else if (k) {
      rv = apply(c, cfg, k, s);
    } else if (group_known(name)) {
      if (!config_setting_is_group(s)) {
        return fail(c, GW_ERR_CONFIG, s, "%s: expected a group, got %s", name,
                    type_name(config_setting_type(s)));
      }
      rv = GW_OK;
      for (int j = 0; rv == GW_OK && j < config_setting_length(s); j++) {
        config_setting_t *m = config_setting_get_elem(s, (unsigned)j);
        char full[160];
        const key *mk;

        snprintf(full, sizeof(full), "%s.%s", name, config_setting_name(m));
        mk = key_find(full);
        if (!mk) {
          return fail(c, GW_ERR_CONFIG, m, "unknown key \"%s\"", full);
        }
        rv = apply(c, cfg, mk, m);
      }
    } else {
      return fail(c, GW_ERR_CONFIG, s,
                  "unknown key \"%s\" (mssp-mock --help-config lists them)",
                  name);
    }
    if (rv != GW_OK) {
      return rv;
    }
  }
  if (!aps_seen) {
    return fail(c, GW_ERR_CONFIG, NULL,
                "missing required key \"application_providers\"");
  }
  if (cfg->default_timeout_s > cfg->max_timeout_s) {
    return fail(c, GW_ERR_CONFIG, NULL,
                "transactions.default_timeout_s (%d) is above "
                "transactions.max_timeout_s (%d)",
                cfg->default_timeout_s, cfg->max_timeout_s);
  }
  if (strcmp(cfg->user_pin, cfg->wrong_pin) == 0) {
    return fail(c, GW_ERR_CONFIG, NULL,
                "sims.wrong_pin must differ from sims.pin");
  }
  for (int i = 0; i < MOCK_OP_COUNT_; i++) {
    if (!cfg->op[i].tls_cert[0] != !cfg->op[i].tls_key[0]) {
      return fail(c, GW_ERR_CONFIG, NULL,
                  "%s.tls_certificate and %s.tls_private_key go together",
                  mock_operator_name((mock_operator)i),
                  mock_operator_name((mock_operator)i));
    }
  }
  return GW_OK;
}

static int defaults(ctx *c, mock_config *cfg) {
  for (size_t i = 0; i < N_KEYS; i++) {
    const key *k = &keys[i];
    int rv;

    if (k->type == K_INT || k->type == K_BOOL) {
      *(int *)fld(cfg, k->off) = (int)k->idef;
      continue;
    }
    rv = set_string(c, cfg, k, NULL, k->sdef);
    if (rv != GW_OK) {
      return rv;
    }
  }
  return GW_OK;
}

void mock_config_del(mock_config *cfg) {
  if (!cfg) {
    return;
  }
  for (size_t i = 0; i < N_KEYS; i++) {
    if (keys[i].type != K_INT && keys[i].type != K_BOOL &&
        !(keys[i].type == K_ENUM && keys[i].choices == levels)) {
      set_str(cfg, keys[i].off, NULL);
    }
  }
  if (cfg->aps) {
    OPENSSL_cleanse(cfg->aps, cfg->naps * sizeof(*cfg->aps));
  }
  free(cfg->aps);
  free(cfg->path);
  free(cfg);
}

int mock_config_load(mock_config **out, const char *path, char *err,
                     size_t errlen) {
  ctx c = {.file = path, .err = err, .errlen = errlen};
  mock_config *cfg = NULL;
  config_t lc;
  struct stat st;
  char *abs, *slash;
  int rv;

  if (err && errlen) {
    err[0] = '\0';
  }
  if (stat(path, &st) != 0) {
    return fail(&c, GW_ERR_IO, NULL, "%s", strerror(errno));
  }
  if (!S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
    return fail(&c, GW_ERR_CONFIG, NULL,
                "not a regular file of at most %d "
                "bytes",
                FILE_MAX);
  }
  abs = realpath(path, NULL);
  if (!abs) {
    return fail(&c, GW_ERR_IO, NULL, "%s", strerror(errno));
  }
  c.dir = strdup(abs);
  if (!c.dir) {
    free(abs);
    return GW_ERR_NOMEM;
  }
  slash = strrchr(c.dir, '/');
  slash[slash == c.dir ? 1 : 0] = '\0';
  config_init(&lc);
  config_set_include_dir(&lc, c.dir);
  if (config_read_file(&lc, abs) != CONFIG_TRUE) {
    rv = GW_ERR_CONFIG;
    if (err && errlen) {
      snprintf(err, errlen, "%s:%d: %s",
               config_error_file(&lc) ? config_error_file(&lc) : path,
               config_error_line(&lc), config_error_text(&lc));
    }
    goto done;
  }
  cfg = calloc(1, sizeof(*cfg));
  if (!cfg) {
    rv = GW_ERR_NOMEM;
    goto done;
  }
  cfg->path = abs;
  abs = NULL;
  rv = defaults(&c, cfg);
  rv = rv ? rv : walk(&c, cfg, config_root_setting(&lc));
  if (rv == GW_OK) {
    *out = cfg;
    cfg = NULL;
  }
done:
  mock_config_del(cfg);
  config_destroy(&lc);
  free(abs);
  free(c.dir);
  return rv;
}

void mock_config_print_keys(FILE *fp) {
  for (size_t i = 0; i < N_KEYS; i++) {
    const key *k = &keys[i];
    static const char *const tn[] = {"int",  "bool",    "string",
                                     "path", "address", "enum"};

    if (k->type == K_INT) {
      fprintf(fp, "%-34s %-7s %lld..%lld, default %lld: %s\n", k->name,
              tn[k->type], k->min, k->max, k->idef, k->help);
    } else if (k->type == K_BOOL) {
      fprintf(fp, "%-34s %-7s default %s: %s\n", k->name, tn[k->type],
              k->idef ? "true" : "false", k->help);
    } else {
      fprintf(fp, "%-34s %-7s default \"%s\": %s\n", k->name, tn[k->type],
              (k->flags & F_SECRET) ? "(demo value)" : k->sdef, k->help);
    }
  }
  fprintf(fp,
          "%-34s %-7s required: ( { ap_id = \"URI\"; ap_pwd = \"...\"; "
          "[notify_url = \"http(s)://...\"; notify_secret = \"32+ "
          "bytes\";] }, ... )\n",
          "application_providers", "list");
}

int mock_config_add_ap(mock_config *c, const char *ap_id, const char *ap_pwd,
                       const char *notify_url, const char *notify_secret) {
  mock_ap *n;

  if (!notify_url) {
    notify_url = "";
  }
  if (!notify_secret) {
    notify_secret = "";
  }
  if (!c || !ap_id || !ap_id[0] || strlen(ap_id) > MSS_URI_MAX || !ap_pwd ||
      strlen(ap_pwd) > MSS_PWD_MAX || c->naps >= MOCK_AP_MAX ||
      strlen(notify_url) > MSS_URI_MAX || strlen(notify_secret) > MSS_PWD_MAX) {
    return GW_ERR_INVALID;
  }
  if (notify_url[0] && (!is_http_url(notify_url) || !is_uri(notify_url) ||
                        strlen(notify_secret) < MOCK_NOTIFY_SECRET_MIN)) {
    return GW_ERR_INVALID;
  }
  for (size_t i = 0; i < c->naps; i++) {
    if (strcmp(c->aps[i].ap_id, ap_id) == 0) {
      return GW_OK;
    }
  }
  n = calloc(c->naps + 1, sizeof(*n));
  if (!n) {
    return GW_ERR_NOMEM;
  }
  if (c->naps) {
    memcpy(n, c->aps, c->naps * sizeof(*n));
    OPENSSL_cleanse(c->aps, c->naps * sizeof(*n));
  }
  free(c->aps);
  c->aps = n;
  memcpy(n[c->naps].ap_id, ap_id, strlen(ap_id) + 1);
  memcpy(n[c->naps].ap_pwd, ap_pwd, strlen(ap_pwd) + 1);
  memcpy(n[c->naps].notify_url, notify_url, strlen(notify_url) + 1);
  memcpy(n[c->naps].notify_secret, notify_secret, strlen(notify_secret) + 1);
  c->naps++;
  return GW_OK;
}
