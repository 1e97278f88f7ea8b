/* gw_store.h — the gateway's persistent store.
 *
 * One interface, several backends: a gw_store handle is opened by backend
 * name ("sqlite" today; a PostgreSQL backend can be added later without
 * touching callers). The backends are listed in one static table in
 * gw_store.c; each is a table of operations (gw_store_int.h). See
 * docs/store.md.
 *
 * Threading: a handle is used by one thread at a time and never crosses a
 * fork(). Each thread that needs the store opens its own handle on the same
 * path. The SQLite backend runs in WAL mode: many readers and one writer at
 * a time; a writer that finds the database locked waits up to the busy
 * timeout given at open, then fails with GW_ERR_BUSY. Opening a handle on a
 * database that another thread or process is opening or using at the same
 * moment is safe: migrations are applied once, under the write lock.
 *
 * Durability: when a write function returns GW_OK its transaction is
 * committed, and survives the process being killed at any later moment
 * (SIGKILL, crash, OOM killer). With the SQLite settings used
 * (synchronous=NORMAL), an operating-system crash or power loss can roll back
 * the last few commits but never corrupts the database.
 *
 * Errors: every function returns GW_OK or a negative GW_ERR_* code
 * (gw_err.h). After a failure on an open handle, gw_store_errmsg() tells
 * the backend's reason. */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stddef.h>

typedef struct gw_store gw_store;

/* Caps of the key/value table. Keys are identifiers that the program
 * chooses: 1..GW_STORE_KEY_MAX bytes of printable ASCII (0x20..0x7e), so
 * that every backend can store them as text. Values are arbitrary bytes,
 * 0..GW_STORE_VALUE_MAX of them. */
#define GW_STORE_KEY_MAX 256
#define GW_STORE_VALUE_MAX 65536

/* Opens (creating if needed) the database at |path| with the backend named
 * |backend|, applies the backend's settings and every pending schema
 * migration, and stores the new handle in |*out|. |busy_timeout_ms| (>= 0)
 * is how long a write waits for another writer before giving up.
 *
 * The directory that holds |path| must exist; it is not created. A new
 * database file is created with mode 0600.
 *
 * On failure |*out| is untouched and, when |err| is not NULL, a readable
 * reason (NUL-terminated, truncated to |errlen|) is written to |err|.
 * Returns GW_OK, or
 *   GW_ERR_INVALID  unknown backend (the message lists the known ones), an
 *                   empty path or a negative timeout;
 *   GW_ERR_IO       the database file cannot be created or opened (e.g. its
 *                   directory does not exist);
 *   GW_ERR_BUSY     another writer held the database past the timeout;
 *   GW_ERR_STORE    the backend refused: settings could not be applied, a
 *                   migration failed, or the database's schema is newer
 *                   than this program knows (it is never downgraded);
 *   GW_ERR_NOMEM    out of memory. */
int gw_store_open(gw_store **out, const char *backend, const char *path,
                  int busy_timeout_ms, char *err, size_t errlen);

/* Closes |s| and frees it; NULL is a no-op. Checkpoints the write-ahead log
 * when that needs no waiting. Never loses a committed write. */
void gw_store_close(gw_store *s);

/* A cheap liveness check (one prepared query that reads the database), for
 * the housekeeping timer that sets /healthz. Returns GW_OK, GW_ERR_BUSY or
 * GW_ERR_STORE. */
int gw_store_ping(gw_store *s);

/* Stores in |*out| the schema version of the database (the highest applied
 * migration). Returns GW_OK, GW_ERR_BUSY or GW_ERR_STORE. */
int gw_store_schema_version(gw_store *s, int *out);

/* Returns the backend's name ("sqlite"); static, never NULL. */
const char *gw_store_backend_name(const gw_store *s);

/* Returns the reason of the last failure on |s| ("" when none); borrowed,
 * valid until the next call on |s|. */
const char *gw_store_errmsg(const gw_store *s);

/* Inserts or replaces the value of |key| with |n| bytes at |val| (|val| may
 * be NULL when |n| is 0), as one committed transaction. Returns GW_OK,
 *   GW_ERR_INVALID    |key| is empty, too long or not printable ASCII;
 *   GW_ERR_TOO_LARGE  |n| > GW_STORE_VALUE_MAX;
 *   GW_ERR_BUSY, GW_ERR_STORE, GW_ERR_NOMEM. */
int gw_store_kv_put(gw_store *s, const char *key, const void *val, size_t n);

/* Copies the value of |key| into |buf| (|cap| bytes; |buf| may be NULL when
 * |cap| is 0) and stores its length in |*outlen| (if not NULL). Returns
 * GW_OK,
 *   GW_ERR_NOT_FOUND  no such key;
 *   GW_ERR_TOO_LARGE  the value is longer than |cap|: |buf| is untouched and
 *                     |*outlen| is set to the length needed;
 *   GW_ERR_INVALID    as for gw_store_kv_put;
 *   GW_ERR_BUSY, GW_ERR_STORE, GW_ERR_NOMEM. */
int gw_store_kv_get(gw_store *s, const char *key, void *buf, size_t cap,
                    size_t *outlen);

/* Deletes |key|, as one committed transaction. Returns GW_OK,
 * GW_ERR_NOT_FOUND (no such key), GW_ERR_INVALID as for gw_store_kv_put,
 * GW_ERR_BUSY or GW_ERR_STORE. */
int gw_store_kv_del(gw_store *s, const char *key);

#endif
