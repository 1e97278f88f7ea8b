/* gw_store.c — backend table, argument checks and dispatch. */
#include "gw_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gw_err.h"
#include "gw_store_int.h"

/* Every backend, selected by name in gw_store_open. */
static const gw_store_ops *const store_backends[] = {
    &gw_store_sqlite_ops,
};

#define STORE_NBACKENDS (sizeof(store_backends) / sizeof(store_backends[0]))

static void store_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void store_set_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;

  if (!err || errlen == 0) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

int gw_store_open(gw_store **out, const char *backend, const char *path,
                  int busy_timeout_ms, char *err, size_t errlen) {
  const gw_store_ops *ops = NULL;
  char known[128];
  size_t i, o = 0;

  if (err && errlen) {
    err[0] = '\0';
  }
  if (!out || !backend) {
    store_set_err(err, errlen, "store: no handle or backend given");
    return GW_ERR_INVALID;
  }
  for (i = 0; i < STORE_NBACKENDS; i++) {
    if (strcmp(store_backends[i]->name, backend) == 0) {
      ops = store_backends[i];
      break;
    }
  }
  if (!ops) {
    known[0] = '\0';
    for (i = 0; i < STORE_NBACKENDS && o < sizeof(known); i++) {
      int n = snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
                       store_backends[i]->name);
      if (n < 0) {
        break;
      }
      o += (size_t)n;
    }
    store_set_err(err, errlen,
                  "store: unknown backend \"%.64s\" (known backends: %s)",
                  backend, known);
    return GW_ERR_INVALID;
  }
  if (!path || !path[0]) {
    store_set_err(err, errlen, "store: empty database path");
    return GW_ERR_INVALID;
  }
  if (busy_timeout_ms < 0) {
    store_set_err(err, errlen, "store: negative busy timeout %d ms",
                  busy_timeout_ms);
    return GW_ERR_INVALID;
  }
  return ops->open(out, path, busy_timeout_ms, err, errlen);
}

void gw_store_close(gw_store *s) {
  if (s) {
    s->ops->close(s);
  }
}

int gw_store_ping(gw_store *s) {
  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  return s->ops->ping(s);
}

int gw_store_schema_version(gw_store *s, int *out) {
  if (!s || !out) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  return s->ops->schema_version(s, out);
}

const char *gw_store_backend_name(const gw_store *s) {
  return s ? s->ops->name : "none";
}

const char *gw_store_errmsg(const gw_store *s) {
  return s ? s->errmsg : "no store";
}

/* Checks |key| and stores its length in |*len|. Keys are printable ASCII so
 * that every backend can keep them as text (PostgreSQL's TEXT refuses NUL and
 * invalid UTF-8) and so that they are safe to log. */
static int store_check_key(gw_store *s, const char *key, size_t *len) {
  size_t n;

  if (!key) {
    snprintf(s->errmsg, sizeof(s->errmsg), "key is NULL");
    return GW_ERR_INVALID;
  }
  n = strnlen(key, GW_STORE_KEY_MAX + 1);
  if (n == 0 || n > GW_STORE_KEY_MAX) {
    snprintf(s->errmsg, sizeof(s->errmsg), "key length not in 1..%d",
             GW_STORE_KEY_MAX);
    return GW_ERR_INVALID;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)key[i];
    if (c < 0x20 || c > 0x7e) {
      snprintf(s->errmsg, sizeof(s->errmsg),
               "key byte %zu is not printable ASCII", i);
      return GW_ERR_INVALID;
    }
  }
  *len = n;
  return GW_OK;
}

int gw_store_kv_put(gw_store *s, const char *key, const void *val, size_t n) {
  size_t keylen;
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_key(s, key, &keylen);
  if (rv != GW_OK) {
    return rv;
  }
  if (n > GW_STORE_VALUE_MAX) {
    snprintf(s->errmsg, sizeof(s->errmsg), "value of %zu bytes over cap %d", n,
             GW_STORE_VALUE_MAX);
    return GW_ERR_TOO_LARGE;
  }
  if (!val && n) {
    snprintf(s->errmsg, sizeof(s->errmsg), "value is NULL");
    return GW_ERR_INVALID;
  }
  return s->ops->kv_put(s, key, keylen, val, n);
}

int gw_store_kv_get(gw_store *s, const char *key, void *buf, size_t cap,
                    size_t *outlen) {
  size_t keylen;
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_key(s, key, &keylen);
  if (rv != GW_OK) {
    return rv;
  }
  if (!buf && cap) {
    snprintf(s->errmsg, sizeof(s->errmsg), "buffer is NULL");
    return GW_ERR_INVALID;
  }
  return s->ops->kv_get(s, key, keylen, buf, cap, outlen);
}

int gw_store_kv_del(gw_store *s, const char *key) {
  size_t keylen;
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_key(s, key, &keylen);
  if (rv != GW_OK) {
    return rv;
  }
  return s->ops->kv_del(s, key, keylen);
}
