/* gw_store.c — backend table, argument checks and dispatch. */
#include "gw_store.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "gw_err.h"
#include "gw_store_int.h"

/* Every backend, selected by name in gw_store_open. */
static const gw_store_ops *const store_backends[] = {
    &gw_store_sqlite_ops,
};

#define STORE_NBACKENDS (sizeof(store_backends) / sizeof(store_backends[0]))

int gw_store_open(gw_store **out, const char *backend, const char *path,
                  int busy_timeout_ms, char *err, size_t errlen) {
  const gw_store_ops *ops = NULL;
  char known[128];
  size_t i, o = 0;

  if (err && errlen) {
    err[0] = '\0';
  }
  if (!out || !backend) {
    gw_errf(err, errlen, "store: no handle or backend given");
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
    gw_errf(err, errlen,
            "store: unknown backend \"%.64s\" (known backends: %s)", backend,
            known);
    return GW_ERR_INVALID;
  }
  if (!path || !path[0]) {
    gw_errf(err, errlen, "store: empty database path");
    return GW_ERR_INVALID;
  }
  if (busy_timeout_ms < 0) {
    gw_errf(err, errlen, "store: negative busy timeout %d ms", busy_timeout_ms);
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

/* ---- subscriber registry ---------------------------------------------- */

/* Which bytes a registry string may hold: printable ASCII; the same plus
 * line feeds (PEM); UTF-8 text without control characters. */
enum { SUB_ASCII, SUB_LINES, SUB_UTF8 };

/* Non-zero when |p| (|n| bytes) is well-formed UTF-8 without control
 * characters: no overlong forms, no surrogates, nothing above U+10FFFF
 * (what PostgreSQL's TEXT accepts, and what is safe to print). */
static int store_utf8_ok(const unsigned char *p, size_t n) {
  size_t i = 0;

  while (i < n) {
    unsigned c = p[i], cp, len, k;

    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) {
        return 0;
      }
      i++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (i + len > n) {
      return 0;
    }
    for (k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80) {
        return 0;
      }
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
        (cp >= 0x80 && cp < 0xa0)) {
      return 0;
    }
    i += len;
  }
  return 1;
}

/* Checks one string field of a registry row: terminated inside its
 * |cap|-byte array, non-empty when |required|, and of the allowed bytes. */
static int store_check_field(gw_store *s, const char *name, const char *v,
                             size_t cap, int required, int kind) {
  size_t n = strnlen(v, cap);

  if (n == cap) {
    snprintf(s->errmsg, sizeof(s->errmsg),
             "%s is not terminated inside its %zu bytes", name, cap);
    return GW_ERR_INVALID;
  }
  if (required && n == 0) {
    snprintf(s->errmsg, sizeof(s->errmsg), "%s is empty", name);
    return GW_ERR_INVALID;
  }
  if (kind == SUB_UTF8) {
    if (!store_utf8_ok((const unsigned char *)v, n)) {
      snprintf(s->errmsg, sizeof(s->errmsg),
               "%s is not UTF-8 text without control characters", name);
      return GW_ERR_INVALID;
    }
    return GW_OK;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    if ((c < 0x20 || c > 0x7e) && !(c == '\n' && kind == SUB_LINES)) {
      snprintf(s->errmsg, sizeof(s->errmsg),
               "%s byte %zu is not printable ASCII", name, i);
      return GW_ERR_INVALID;
    }
  }
  return GW_OK;
}

/* Checks an identifier argument (MSISDN, civil number). */
static int store_check_id(gw_store *s, const char *name, const char *v,
                          size_t max) {
  if (!v) {
    snprintf(s->errmsg, sizeof(s->errmsg), "%s is NULL", name);
    return GW_ERR_INVALID;
  }
  if (strnlen(v, max + 1) > max) {
    snprintf(s->errmsg, sizeof(s->errmsg), "%s is longer than %zu bytes", name,
             max);
    return GW_ERR_INVALID;
  }
  return store_check_field(s, name, v, max + 1, 1, SUB_ASCII);
}

/* One string field of a row struct, for store_check_fields. */
typedef struct store_field {
  const char *name;
  size_t off, cap;
  int required, kind;
} store_field;

#define STORE_FIELD(type, field, req, kind)                                    \
  { #field, offsetof(type, field), sizeof(((type *)0)->field), req, kind }

/* Checks every string field listed in |fields| of the row at |row|. */
static int store_check_fields(gw_store *s, const void *row,
                              const store_field *fields, size_t n) {
  int rv;

  for (size_t i = 0; i < n; i++) {
    rv = store_check_field(s, fields[i].name, (const char *)row + fields[i].off,
                           fields[i].cap, fields[i].required, fields[i].kind);
    if (rv != GW_OK) {
      return rv;
    }
  }
  return GW_OK;
}

int gw_store_sub_put(gw_store *s, const gw_store_sub *sub) {
#define F(field, req, kind) STORE_FIELD(gw_store_sub, field, req, kind)
  static const store_field fields[] = {
      F(msisdn, 1, SUB_ASCII),      F(civil_id, 1, SUB_ASCII),
      F(name, 1, SUB_UTF8),         F(operator_name, 1, SUB_ASCII),
      F(cert_serial, 1, SUB_ASCII), F(cert_pem, 1, SUB_LINES),
      F(behaviour, 0, SUB_UTF8),    F(revocation_reason, 0, SUB_ASCII),
  };
#undef F
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  if (!sub) {
    snprintf(s->errmsg, sizeof(s->errmsg), "subscriber is NULL");
    return GW_ERR_INVALID;
  }
  rv = store_check_fields(s, sub, fields, sizeof(fields) / sizeof(fields[0]));
  if (rv != GW_OK) {
    return rv;
  }
  if (sub->revoked != 0 && sub->revoked != 1) {
    snprintf(s->errmsg, sizeof(s->errmsg), "revoked is %d, not 0 or 1",
             sub->revoked);
    return GW_ERR_INVALID;
  }
  if (sub->created_at < 0 || sub->revoked_at < 0 || sub->last_signed_at < 0) {
    snprintf(s->errmsg, sizeof(s->errmsg), "a time is negative");
    return GW_ERR_INVALID;
  }
  return s->ops->sub_put(s, sub);
}

int gw_store_sub_get(gw_store *s, const char *msisdn, gw_store_sub *out) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_id(s, "msisdn", msisdn, GW_STORE_MSISDN_MAX);
  if (rv != GW_OK) {
    return rv;
  }
  if (!out) {
    snprintf(s->errmsg, sizeof(s->errmsg), "output is NULL");
    return GW_ERR_INVALID;
  }
  return s->ops->sub_get(s, msisdn, out);
}

int gw_store_sub_list(gw_store *s, const char *civil_id, gw_store_sub_cb cb,
                      void *arg) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  if (civil_id) {
    rv = store_check_id(s, "civil_id", civil_id, GW_STORE_CIVIL_ID_MAX);
    if (rv != GW_OK) {
      return rv;
    }
  }
  if (!cb) {
    snprintf(s->errmsg, sizeof(s->errmsg), "callback is NULL");
    return GW_ERR_INVALID;
  }
  return s->ops->sub_list(s, civil_id, cb, arg);
}

int gw_store_sub_revoke(gw_store *s, const char *msisdn, const char *reason,
                        long long when) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_id(s, "msisdn", msisdn, GW_STORE_MSISDN_MAX);
  if (rv != GW_OK) {
    return rv;
  }
  if (!reason) {
    reason = "";
  }
  if (strnlen(reason, GW_STORE_REASON_MAX + 1) > GW_STORE_REASON_MAX) {
    snprintf(s->errmsg, sizeof(s->errmsg), "reason longer than %d bytes",
             GW_STORE_REASON_MAX);
    return GW_ERR_INVALID;
  }
  rv = store_check_field(s, "reason", reason, GW_STORE_REASON_MAX + 1, 0,
                         SUB_ASCII);
  if (rv != GW_OK) {
    return rv;
  }
  if (when < 0) {
    snprintf(s->errmsg, sizeof(s->errmsg), "time is negative");
    return GW_ERR_INVALID;
  }
  return s->ops->sub_revoke(s, msisdn, reason, when);
}

int gw_store_sub_mark_signed(gw_store *s, const char *msisdn, long long when) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_id(s, "msisdn", msisdn, GW_STORE_MSISDN_MAX);
  if (rv != GW_OK) {
    return rv;
  }
  if (when < 0) {
    snprintf(s->errmsg, sizeof(s->errmsg), "time is negative");
    return GW_ERR_INVALID;
  }
  return s->ops->sub_mark_signed(s, msisdn, when);
}

/* ---- relying parties, sign-in transactions, revoked tokens ------------ */

int gw_store_client_put(gw_store *s, const gw_store_client *c) {
#define F(field, req, kind) STORE_FIELD(gw_store_client, field, req, kind)
  static const store_field fields[] = {
      F(client_id, 1, SUB_ASCII),
      F(name, 0, SUB_UTF8),
      F(auth_methods, 0, SUB_ASCII),
      F(grant_types, 0, SUB_ASCII),
      F(scopes, 0, SUB_ASCII),
      F(resources, 0, SUB_ASCII),
      F(redirect_uris, 0, SUB_ASCII),
      F(ciba_mode, 0, SUB_ASCII),
      F(ciba_notification_endpoint, 0, SUB_ASCII),
      F(id_token_alg, 0, SUB_ASCII),
  };
#undef F
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  if (!c) {
    snprintf(s->errmsg, sizeof(s->errmsg), "client is NULL");
    return GW_ERR_INVALID;
  }
  rv = store_check_fields(s, c, fields, sizeof(fields) / sizeof(fields[0]));
  if (rv != GW_OK) {
    return rv;
  }
  if (c->resource_server != 0 && c->resource_server != 1) {
    snprintf(s->errmsg, sizeof(s->errmsg), "resource_server is %d, not 0 or 1",
             c->resource_server);
    return GW_ERR_INVALID;
  }
  if (c->created_at < 0) {
    snprintf(s->errmsg, sizeof(s->errmsg), "created_at is negative");
    return GW_ERR_INVALID;
  }
  return s->ops->client_put(s, c);
}

/* The common start of the functions that take a key and an output row. */
static int store_check_key_out(gw_store *s, const char *name, const char *v,
                               size_t max, const void *out) {
  int rv = store_check_id(s, name, v, max);

  if (rv == GW_OK && !out) {
    snprintf(s->errmsg, sizeof(s->errmsg), "output is NULL");
    rv = GW_ERR_INVALID;
  }
  return rv;
}

int gw_store_client_get(gw_store *s, const char *client_id,
                        gw_store_client *out) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_key_out(s, "client_id", client_id, GW_STORE_CLIENT_ID_MAX,
                           out);
  return rv == GW_OK ? s->ops->client_get(s, client_id, out) : rv;
}

int gw_store_client_del(gw_store *s, const char *client_id) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_id(s, "client_id", client_id, GW_STORE_CLIENT_ID_MAX);
  return rv == GW_OK ? s->ops->client_del(s, client_id) : rv;
}

int gw_store_client_list(gw_store *s, gw_store_client_cb cb, void *arg) {
  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  if (!cb) {
    snprintf(s->errmsg, sizeof(s->errmsg), "callback is NULL");
    return GW_ERR_INVALID;
  }
  return s->ops->client_list(s, cb, arg);
}

int gw_store_txn_put(gw_store *s, const gw_store_txn *t) {
#define F(field, req, kind) STORE_FIELD(gw_store_txn, field, req, kind)
  static const store_field fields[] = {
      F(id, 1, SUB_ASCII),
      F(auth_req_id, 0, SUB_ASCII),
      F(client_id, 1, SUB_ASCII),
      F(msisdn, 0, SUB_ASCII),
      F(civil_id, 0, SUB_ASCII),
      F(operator_name, 0, SUB_ASCII),
      F(state, 1, SUB_ASCII),
      F(outcome, 0, SUB_ASCII),
      F(detail, 0, SUB_UTF8),
      F(scope, 0, SUB_ASCII),
      F(resource, 0, SUB_ASCII),
      F(acr, 0, SUB_ASCII),
      F(verification_code, 0, SUB_ASCII),
      F(mssp_trans_id, 0, SUB_ASCII),
  };
#undef F
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  if (!t) {
    snprintf(s->errmsg, sizeof(s->errmsg), "transaction is NULL");
    return GW_ERR_INVALID;
  }
  rv = store_check_fields(s, t, fields, sizeof(fields) / sizeof(fields[0]));
  if (rv != GW_OK) {
    return rv;
  }
  if (t->consumed != 0 && t->consumed != 1) {
    snprintf(s->errmsg, sizeof(s->errmsg), "consumed is %d, not 0 or 1",
             t->consumed);
    return GW_ERR_INVALID;
  }
  if (t->created_at < 0 || t->expires_at < 0 || t->updated_at < 0 ||
      t->auth_time < 0) {
    snprintf(s->errmsg, sizeof(s->errmsg), "a time is negative");
    return GW_ERR_INVALID;
  }
  return s->ops->txn_put(s, t);
}

int gw_store_txn_get(gw_store *s, const char *id, gw_store_txn *out) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_key_out(s, "id", id, GW_STORE_TXN_ID_MAX, out);
  return rv == GW_OK ? s->ops->txn_get(s, id, out) : rv;
}

int gw_store_txn_get_by_req(gw_store *s, const char *auth_req_id,
                            gw_store_txn *out) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_key_out(s, "auth_req_id", auth_req_id, GW_STORE_TXN_ID_MAX,
                           out);
  return rv == GW_OK ? s->ops->txn_get_by_req(s, auth_req_id, out) : rv;
}

int gw_store_txn_consume(gw_store *s, const char *id) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_id(s, "id", id, GW_STORE_TXN_ID_MAX);
  return rv == GW_OK ? s->ops->txn_consume(s, id) : rv;
}

int gw_store_txn_purge(gw_store *s, long long before_ms, size_t *n) {
  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  return s->ops->txn_purge(s, before_ms, n);
}

int gw_store_revoked_put(gw_store *s, const char *jti, const char *client_id,
                         long long exp) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_id(s, "jti", jti, GW_STORE_JTI_MAX);
  if (rv == GW_OK) {
    rv = store_check_id(s, "client_id", client_id, GW_STORE_CLIENT_ID_MAX);
  }
  if (rv == GW_OK && exp < 0) {
    snprintf(s->errmsg, sizeof(s->errmsg), "exp is negative");
    rv = GW_ERR_INVALID;
  }
  return rv == GW_OK ? s->ops->revoked_put(s, jti, client_id, exp) : rv;
}

int gw_store_revoked_get(gw_store *s, const char *jti) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  rv = store_check_id(s, "jti", jti, GW_STORE_JTI_MAX);
  return rv == GW_OK ? s->ops->revoked_get(s, jti) : rv;
}

int gw_store_revoked_purge(gw_store *s, long long before, size_t *n) {
  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  return s->ops->revoked_purge(s, before, n);
}

/* ---- audit log -------------------------------------------------------- */

static int store_check_audit_row(gw_store *s, const gw_store_audit_row *r) {
#define F(field, req, kind) STORE_FIELD(gw_store_audit_row, field, req, kind)
  static const store_field fields[] = {
      F(kind, 1, SUB_ASCII),
      F(subject, 0, SUB_ASCII),
      F(data, 1, SUB_UTF8),
  };
#undef F
  int rv = store_check_fields(s, r, fields, sizeof(fields) / sizeof(fields[0]));

  if (rv == GW_OK && (r->seq < 1 || r->ts < 0)) {
    snprintf(s->errmsg, sizeof(s->errmsg),
             "audit row %lld: seq below 1 or negative time", r->seq);
    rv = GW_ERR_INVALID;
  }
  return rv;
}

int gw_store_audit_append(gw_store *s, const gw_store_audit_row *rows,
                          size_t n) {
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  if (!rows || n == 0 || n > GW_STORE_AUDIT_BATCH_MAX) {
    snprintf(s->errmsg, sizeof(s->errmsg), "audit append: %zu rows, not 1..%d",
             n, GW_STORE_AUDIT_BATCH_MAX);
    return GW_ERR_INVALID;
  }
  for (size_t i = 0; i < n; i++) {
    rv = store_check_audit_row(s, &rows[i]);
    if (rv != GW_OK) {
      return rv;
    }
  }
  return s->ops->audit_append(s, rows, n);
}

int gw_store_audit_last(gw_store *s, long long *seq, unsigned char *hash) {
  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  if (!seq || !hash) {
    snprintf(s->errmsg, sizeof(s->errmsg), "output is NULL");
    return GW_ERR_INVALID;
  }
  return s->ops->audit_last(s, seq, hash);
}

int gw_store_audit_list(gw_store *s, long long from_seq, gw_store_audit_cb cb,
                        void *arg) {
  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  if (!cb) {
    snprintf(s->errmsg, sizeof(s->errmsg), "callback is NULL");
    return GW_ERR_INVALID;
  }
  return s->ops->audit_list(s, from_seq, cb, arg);
}

int gw_store_audit_count(gw_store *s, long long *rows, long long *checkpoints) {
  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  return s->ops->audit_count(s, rows, checkpoints);
}

int gw_store_audit_checkpoint_put(gw_store *s,
                                  const gw_store_audit_checkpoint *c) {
#define F(field, req, kind)                                                    \
  STORE_FIELD(gw_store_audit_checkpoint, field, req, kind)
  static const store_field fields[] = {
      F(kid, 0, SUB_ASCII),
      F(jws, 1, SUB_ASCII),
  };
#undef F
  int rv;

  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  if (!c) {
    snprintf(s->errmsg, sizeof(s->errmsg), "checkpoint is NULL");
    return GW_ERR_INVALID;
  }
  rv = store_check_fields(s, c, fields, sizeof(fields) / sizeof(fields[0]));
  if (rv == GW_OK && (c->seq < 1 || c->ts < 0)) {
    snprintf(s->errmsg, sizeof(s->errmsg),
             "checkpoint: seq below 1 or negative time");
    rv = GW_ERR_INVALID;
  }
  return rv == GW_OK ? s->ops->audit_checkpoint_put(s, c) : rv;
}

int gw_store_audit_checkpoint_list(gw_store *s, long long from_seq,
                                   gw_store_audit_checkpoint_cb cb, void *arg) {
  if (!s) {
    return GW_ERR_INVALID;
  }
  s->errmsg[0] = '\0';
  if (!cb) {
    snprintf(s->errmsg, sizeof(s->errmsg), "callback is NULL");
    return GW_ERR_INVALID;
  }
  return s->ops->audit_checkpoint_list(s, from_seq, cb, arg);
}
