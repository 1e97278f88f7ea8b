/* gw_store_int.h — what a store backend implements (private to the store).
 *
 * A backend is a gw_store_ops table listed in the static backend table of
 * gw_store.c. Its handle type begins with a `gw_store base;` member, so that
 * the backend casts the gw_store * it receives to its own type (as h2o
 * handlers extend h2o_handler_t).
 *
 * gw_store.c checks every argument (NULL handles, key syntax and length,
 * value length) before it calls an operation, so backends receive only
 * well-formed input: |key| is 1..GW_STORE_KEY_MAX bytes of printable ASCII,
 * NUL-terminated, |keylen| its length; |n| <= GW_STORE_VALUE_MAX. Each
 * operation returns GW_OK or a GW_ERR_* code and, on failure, writes a
 * reason into base.errmsg. */
#ifndef GW_STORE_INT_H
#define GW_STORE_INT_H

#include <stddef.h>

#include "gw_store.h"

typedef struct gw_store_ops gw_store_ops;

struct gw_store {
  const gw_store_ops *ops;
  char errmsg[256]; /* last failure on this handle, "" when none */
};

struct gw_store_ops {
  const char *name;

  /* Opens |path| (see gw_store_open for the contract and error codes),
   * allocates the backend's handle, sets its base.ops and stores it in
   * |*out|. On failure |*out| is untouched and |err| holds the reason. */
  int (*open)(gw_store **out, const char *path, int busy_timeout_ms, char *err,
              size_t errlen);
  /* Frees |s| (never NULL). */
  void (*close)(gw_store *s);
  int (*ping)(gw_store *s);
  int (*schema_version)(gw_store *s, int *out);
  int (*kv_put)(gw_store *s, const char *key, size_t keylen, const void *val,
                size_t n);
  int (*kv_get)(gw_store *s, const char *key, size_t keylen, void *buf,
                size_t cap, size_t *outlen);
  int (*kv_del)(gw_store *s, const char *key, size_t keylen);
  /* The subscriber registry. |sub| and |msisdn| / |civil_id| have been
   * checked as gw_store.h describes; |reason| is never NULL. */
  int (*sub_put)(gw_store *s, const gw_store_sub *sub);
  int (*sub_get)(gw_store *s, const char *msisdn, gw_store_sub *out);
  int (*sub_list)(gw_store *s, const char *civil_id, gw_store_sub_cb cb,
                  void *arg);
  int (*sub_revoke)(gw_store *s, const char *msisdn, const char *reason,
                    long long when);
  int (*sub_mark_signed)(gw_store *s, const char *msisdn, long long when);
  /* Relying parties: |c| has been checked as gw_store.h describes (strings
   * terminated, of the allowed bytes; resource_server 0/1; created_at >= 0);
   * |client_id| is 1..GW_STORE_CLIENT_ID_MAX printable ASCII. */
  int (*client_put)(gw_store *s, const gw_store_client *c);
  int (*client_get)(gw_store *s, const char *client_id, gw_store_client *out);
  int (*client_del)(gw_store *s, const char *client_id);
  int (*client_list)(gw_store *s, gw_store_client_cb cb, void *arg);
  /* Sign-in transactions: |t| checked likewise; |id| / |auth_req_id| are
   * 1..GW_STORE_TXN_ID_MAX printable ASCII; |n| may be NULL. */
  int (*txn_put)(gw_store *s, const gw_store_txn *t);
  int (*txn_get)(gw_store *s, const char *id, gw_store_txn *out);
  int (*txn_get_by_req)(gw_store *s, const char *auth_req_id,
                        gw_store_txn *out);
  int (*txn_consume)(gw_store *s, const char *id);
  int (*txn_purge)(gw_store *s, long long before_ms, size_t *n);
  /* Revoked tokens: |jti| and |client_id| are 1..64 printable ASCII. */
  int (*revoked_put)(gw_store *s, const char *jti, const char *client_id,
                     long long exp);
  int (*revoked_get)(gw_store *s, const char *jti);
  int (*revoked_purge)(gw_store *s, long long before, size_t *n);
  /* The audit log: rows and checkpoints checked as gw_store.h describes;
   * 1 <= n <= GW_STORE_AUDIT_BATCH_MAX; |seq|, |hash|, |cb| not NULL;
   * |rows| / |checkpoints| may be NULL. */
  int (*audit_append)(gw_store *s, const gw_store_audit_row *rows, size_t n);
  int (*audit_last)(gw_store *s, long long *seq, unsigned char *hash);
  int (*audit_list)(gw_store *s, long long from_seq, gw_store_audit_cb cb,
                    void *arg);
  int (*audit_count)(gw_store *s, long long *rows, long long *checkpoints);
  int (*audit_checkpoint_put)(gw_store *s, const gw_store_audit_checkpoint *c);
  int (*audit_checkpoint_list)(gw_store *s, long long from_seq,
                               gw_store_audit_checkpoint_cb cb, void *arg);
};

/* The backends. */
extern const gw_store_ops gw_store_sqlite_ops;

/* The number of schema migrations the SQLite backend knows; a database it
 * has opened is at this schema version. For tests and diagnostics. */
int gw_store_sqlite_migration_count(void);

#endif
