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

/* ---- subscriber registry ---------------------------------------------- *
 *
 * One row per provisioned SIM, keyed by its MSISDN: who holds it (civil
 * number, name), which operator issued it, its certificate and whether that
 * certificate is revoked. The gateway resolves a civil number to its
 * MSISDNs here (a civil number may hold SIMs at both operators); mpkictl
 * writes it. Semantic checks (the +968 numbering, the name rules) belong to
 * gw_subscriber.h; the store checks only what it needs to store a row
 * safely: every string NUL-terminated inside its array, the required ones
 * non-empty, the identifiers printable ASCII, the name and behaviour valid
 * UTF-8. */

/* Caps in bytes, excluding the NUL. */
#define GW_STORE_MSISDN_MAX 16    /* "+" and up to 15 digits (E.164) */
#define GW_STORE_CIVIL_ID_MAX 16  /* digits */
#define GW_STORE_NAME_MAX 256     /* UTF-8: 64 characters of up to 4 bytes */
#define GW_STORE_OPERATOR_MAX 16  /* "omantel", "ooredoo" */
#define GW_STORE_SERIAL_MAX 64    /* certificate serial, upper-case hex */
#define GW_STORE_REASON_MAX 32    /* revocation reason name */
#define GW_STORE_BEHAVIOUR_MAX 64 /* demo: what the mock operator does */
#define GW_STORE_CERT_MAX 8192    /* PEM certificate */

typedef struct gw_store_sub {
  char msisdn[GW_STORE_MSISDN_MAX + 1];          /* required, printable ASCII */
  char civil_id[GW_STORE_CIVIL_ID_MAX + 1];      /* required, printable ASCII */
  char name[GW_STORE_NAME_MAX + 1];              /* required, UTF-8 */
  char operator_name[GW_STORE_OPERATOR_MAX + 1]; /* required, ASCII */
  int revoked;                                   /* 0 active, 1 revoked */
  char cert_serial[GW_STORE_SERIAL_MAX + 1];     /* required, ASCII */
  char cert_pem[GW_STORE_CERT_MAX + 1];          /* required, ASCII */
  char behaviour[GW_STORE_BEHAVIOUR_MAX + 1];    /* "" = none; UTF-8 */
  long long created_at;                          /* Unix s; 0 in put = now */
  long long revoked_at;                          /* Unix s; 0 = not revoked */
  char revocation_reason[GW_STORE_REASON_MAX + 1]; /* "" = none, ASCII */
  long long last_signed_at;                        /* Unix s; 0 = never */
} gw_store_sub;

/* Inserts the subscriber |sub| or replaces the row with the same MSISDN,
 * every column as given (created_at 0 is stored as the current time), as
 * one committed transaction. Returns GW_OK,
 *   GW_ERR_INVALID  a string is not terminated inside its array, a required
 *                   one is empty, or its bytes are not allowed (the reason
 *                   names the field);
 *   GW_ERR_BUSY, GW_ERR_STORE, GW_ERR_NOMEM. */
int gw_store_sub_put(gw_store *s, const gw_store_sub *sub);

/* Copies the subscriber with MSISDN |msisdn| into |*out|. Returns GW_OK,
 * GW_ERR_NOT_FOUND, GW_ERR_INVALID (|msisdn| empty, too long or not
 * printable ASCII), GW_ERR_BUSY, GW_ERR_STORE (also: a stored value longer
 * than its field). */
int gw_store_sub_get(gw_store *s, const char *msisdn, gw_store_sub *out);

/* Called by gw_store_sub_list for each row; |sub| is borrowed for the call.
 * Returning anything but GW_OK stops the listing with that value. */
typedef int (*gw_store_sub_cb)(const gw_store_sub *sub, void *arg);

/* Calls |cb| for every subscriber in MSISDN order, or, when |civil_id| is
 * not NULL, for those holding that civil number. The listing is one read
 * transaction: the callback must not write through |s|. Returns GW_OK (also
 * for no rows), the callback's non-GW_OK value, GW_ERR_INVALID (bad
 * |civil_id| or no |cb|), GW_ERR_BUSY or GW_ERR_STORE. */
int gw_store_sub_list(gw_store *s, const char *civil_id, gw_store_sub_cb cb,
                      void *arg);

/* Marks the certificate of |msisdn| revoked at |when| (Unix seconds) with
 * |reason| ("" or NULL = none given), as one committed transaction. A row
 * already revoked keeps its first time and reason. Returns GW_OK (also when
 * it was already revoked), GW_ERR_NOT_FOUND, GW_ERR_INVALID, GW_ERR_BUSY,
 * GW_ERR_STORE. */
int gw_store_sub_revoke(gw_store *s, const char *msisdn, const char *reason,
                        long long when);

/* Records that |msisdn|'s SIM produced a signature at |when| (Unix s).
 * Returns GW_OK, GW_ERR_NOT_FOUND, GW_ERR_INVALID, GW_ERR_BUSY,
 * GW_ERR_STORE. */
int gw_store_sub_mark_signed(gw_store *s, const char *msisdn, long long when);

/* ---- relying parties (migration 3) --------------------------------------
 * One row per OAuth client, keyed by client_id (table clients). The store
 * checks what it needs to keep a row safely, as for subscribers: every
 * string terminated inside its array, client_id non-empty, the name valid
 * UTF-8 without control characters, everything else printable ASCII,
 * resource_server 0 or 1, created_at >= 0. The meaning (id syntax, known
 * grant types, URLs) is gw_client_check's (gw_client.h), which parses the
 * lists: space-separated words. Only the SHA-256 of the secret is kept. */

#define GW_STORE_CLIENT_ID_MAX 64
#define GW_STORE_CLIENT_NAME_MAX 256
#define GW_STORE_CLIENT_LIST_MAX 2048 /* each space-separated list */
#define GW_STORE_URL_MAX 512

typedef struct gw_store_client {
  char client_id[GW_STORE_CLIENT_ID_MAX + 1];      /* [A-Za-z0-9._-]{1,64} */
  char name[GW_STORE_CLIENT_NAME_MAX + 1];         /* UTF-8, for the phone */
  unsigned char secret_sha256[32];                 /* SHA-256 of the secret */
  char auth_methods[GW_STORE_CLIENT_LIST_MAX + 1]; /* client_secret_basic.. */
  char grant_types[GW_STORE_CLIENT_LIST_MAX + 1];
  char scopes[GW_STORE_CLIENT_LIST_MAX + 1];
  char resources[GW_STORE_CLIENT_LIST_MAX + 1];
  char redirect_uris[GW_STORE_CLIENT_LIST_MAX + 1];
  char ciba_mode[8]; /* "poll", "ping", "" */
  char ciba_notification_endpoint[GW_STORE_URL_MAX + 1];
  char id_token_alg[8]; /* "ES256", "RS256" */
  int resource_server;  /* 0/1 */
  long long created_at; /* Unix s; 0 in put = now */
} gw_store_client;

/* Inserts the client |c| or replaces the row with the same client_id,
 * every column as given (created_at 0 is stored as the current time), as
 * one committed transaction. Returns GW_OK,
 *   GW_ERR_INVALID  a string not terminated inside its array, an empty
 *                   client_id, bytes not allowed (the reason names the
 *                   field), resource_server not 0/1, a negative time;
 *   GW_ERR_BUSY, GW_ERR_STORE, GW_ERR_NOMEM. */
int gw_store_client_put(gw_store *s, const gw_store_client *c);

/* Copies the client |client_id| into |*out|. Returns GW_OK,
 * GW_ERR_NOT_FOUND, GW_ERR_INVALID (|client_id| empty, longer than
 * GW_STORE_CLIENT_ID_MAX or not printable ASCII; |out| NULL), GW_ERR_BUSY,
 * GW_ERR_STORE (also: a stored value longer than its field). */
int gw_store_client_get(gw_store *s, const char *client_id,
                        gw_store_client *out);

/* Deletes the client |client_id|, as one committed transaction. Returns
 * GW_OK, GW_ERR_NOT_FOUND, GW_ERR_INVALID, GW_ERR_BUSY, GW_ERR_STORE. */
int gw_store_client_del(gw_store *s, const char *client_id);

/* Called by gw_store_client_list for each row; |c| is borrowed for the
 * call. Returning anything but GW_OK stops the listing with that value. */
typedef int (*gw_store_client_cb)(const gw_store_client *c, void *arg);

/* Calls |cb| for every client in client_id order, in one read transaction
 * (the callback must not write through |s|). Returns GW_OK (also for no
 * rows), the callback's non-GW_OK value, GW_ERR_INVALID (no |cb|),
 * GW_ERR_BUSY, GW_ERR_STORE, GW_ERR_NOMEM. */
int gw_store_client_list(gw_store *s, gw_store_client_cb cb, void *arg);

/* ---- sign-in transactions (migration 4) ---------------------------------
 * The persistent record of an authentication transaction (gw_txn.h keeps
 * the live state in memory and writes every change here, so that nothing a
 * client was told is lost when the process dies). Table auth_txn, keyed by
 * id, auth_req_id unique among the rows that have one, indexed by
 * expires_at for the purge. The store checks: strings terminated inside
 * their arrays, id / client_id / state non-empty, detail valid UTF-8
 * without control characters, the rest printable ASCII, consumed 0 or 1,
 * times >= 0. */

#define GW_STORE_TXN_ID_MAX 64
#define GW_STORE_TXN_TEXT_MAX 512

typedef struct gw_store_txn {
  char id[GW_STORE_TXN_ID_MAX + 1];          /* our transaction id */
  char auth_req_id[GW_STORE_TXN_ID_MAX + 1]; /* CIBA handle, "" = none */
  char client_id[GW_STORE_CLIENT_ID_MAX + 1];
  char msisdn[GW_STORE_MSISDN_MAX + 1];
  char civil_id[GW_STORE_CIVIL_ID_MAX + 1];
  char operator_name[GW_STORE_OPERATOR_MAX + 1];
  char state[16];   /* created, sent, signed, verified, done, failed,
                       expired */
  char outcome[32]; /* the failure's name, "" */
  char detail[GW_STORE_TXN_TEXT_MAX + 1]; /* the real reason, for the log */
  char scope[GW_STORE_TXN_TEXT_MAX + 1];
  char resource[GW_STORE_URL_MAX + 1];
  char acr[64];
  unsigned char dtbs[32];    /* the SHA-256 the SIM signs */
  char verification_code[8]; /* "0421" */
  char mssp_trans_id[65];
  long long created_at; /* Unix ms */
  long long expires_at; /* Unix ms */
  long long updated_at; /* Unix ms */
  long long auth_time;  /* Unix s of the verified signature, 0 */
  int consumed;         /* 1 once tokens were issued */
} gw_store_txn;

/* Inserts the transaction |t| or replaces the row with the same id, every
 * column as given, as one committed transaction -- except that a consumed
 * row stays consumed (a put from a stale copy never re-opens a single-use
 * transaction; only gw_store_txn_consume sets it). Returns GW_OK,
 *   GW_ERR_INVALID  as described above (the reason names the field);
 *   GW_ERR_EXISTS   |t->auth_req_id| is the auth_req_id of another row;
 *   GW_ERR_BUSY, GW_ERR_STORE, GW_ERR_NOMEM. */
int gw_store_txn_put(gw_store *s, const gw_store_txn *t);

/* Copy the transaction with id |id|, or with the auth_req_id
 * |auth_req_id|, into |*out|. Return GW_OK, GW_ERR_NOT_FOUND,
 * GW_ERR_INVALID (key empty, over GW_STORE_TXN_ID_MAX or not printable
 * ASCII; |out| NULL), GW_ERR_BUSY, GW_ERR_STORE. */
int gw_store_txn_get(gw_store *s, const char *id, gw_store_txn *out);
int gw_store_txn_get_by_req(gw_store *s, const char *auth_req_id,
                            gw_store_txn *out);

/* Marks |id| consumed when it is not yet (single use), as one committed
 * transaction: one UPDATE ... WHERE id = ? AND consumed = 0, so that of
 * any number of concurrent callers, on any handles or processes, exactly
 * one gets GW_OK. Returns GW_OK (this call consumed it), GW_ERR_EXISTS
 * (consumed before), GW_ERR_NOT_FOUND, GW_ERR_INVALID, GW_ERR_BUSY,
 * GW_ERR_STORE. */
int gw_store_txn_consume(gw_store *s, const char *id);

/* Deletes, as one committed transaction, the rows whose expires_at is
 * before |before_ms| (Unix ms); |*n| (may be NULL) gets how many. Returns
 * GW_OK, GW_ERR_BUSY, GW_ERR_STORE. */
int gw_store_txn_purge(gw_store *s, long long before_ms, size_t *n);

/* ---- revoked tokens (migration 5) ---------------------------------------
 * The jti of every revoked token until it expires (table revoked_tokens,
 * indexed by exp for the purge). */

#define GW_STORE_JTI_MAX 64

/* Records |jti| (1..GW_STORE_JTI_MAX printable ASCII) of |client_id|
 * (1..GW_STORE_CLIENT_ID_MAX printable ASCII) as revoked until |exp| (Unix
 * s, >= 0), as one committed transaction. Idempotent: revoking again
 * succeeds and keeps the later exp. Returns GW_OK, GW_ERR_INVALID,
 * GW_ERR_BUSY, GW_ERR_STORE. */
int gw_store_revoked_put(gw_store *s, const char *jti, const char *client_id,
                         long long exp);

/* Returns GW_OK when |jti| is revoked (whatever its exp: an expired token
 * fails its own exp check), GW_ERR_NOT_FOUND when not, GW_ERR_INVALID,
 * GW_ERR_BUSY, GW_ERR_STORE. */
int gw_store_revoked_get(gw_store *s, const char *jti);

/* Deletes, as one committed transaction, the entries whose exp is before
 * |before| (Unix s); |*n| (may be NULL) gets how many. Returns GW_OK,
 * GW_ERR_BUSY, GW_ERR_STORE. */
int gw_store_revoked_purge(gw_store *s, long long before, size_t *n);

/* ---- audit log (migration 6) --------------------------------------------
 * An append-only hash chain of events (table audit, keyed by seq) and the
 * signed checkpoints of its head (table audit_checkpoints, keyed by the seq
 * they cover). The store computes nothing: gw_audit.h computes each row's
 * hash and signs the checkpoints; the store only keeps what it is given and
 * returns it in seq order. It checks: strings terminated inside their
 * arrays, kind non-empty printable ASCII, subject printable ASCII, data
 * valid UTF-8 without control characters, kid printable ASCII, jws
 * non-empty printable ASCII, seq >= 1, ts >= 0. */

#define GW_STORE_AUDIT_KIND_MAX 32
#define GW_STORE_AUDIT_SUBJECT_MAX 128
#define GW_STORE_AUDIT_DATA_MAX 4096 /* compact JSON */
#define GW_STORE_AUDIT_KID_MAX 64
#define GW_STORE_AUDIT_JWS_MAX 2048
#define GW_STORE_AUDIT_BATCH_MAX 1024 /* rows per gw_store_audit_append */

typedef struct gw_store_audit_row {
  long long seq;                                /* 1, 2, 3, ... */
  long long ts;                                 /* Unix ms */
  char kind[GW_STORE_AUDIT_KIND_MAX + 1];       /* "token.issued" */
  char subject[GW_STORE_AUDIT_SUBJECT_MAX + 1]; /* "" = none */
  char data[GW_STORE_AUDIT_DATA_MAX + 1];       /* compact JSON object */
  unsigned char prev_hash[32];                  /* the previous row's hash */
  unsigned char hash[32];                       /* see gw_audit.h */
} gw_store_audit_row;

typedef struct gw_store_audit_checkpoint {
  long long seq; /* the audit row whose hash is signed */
  unsigned char hash[32];
  long long ts; /* Unix ms of the signature */
  char kid[GW_STORE_AUDIT_KID_MAX + 1];
  char jws[GW_STORE_AUDIT_JWS_MAX + 1]; /* compact JWS of {seq, hash, ts} */
} gw_store_audit_checkpoint;

/* Appends the |n| rows |rows[0..n-1]| (1..GW_STORE_AUDIT_BATCH_MAX), all or
 * none, as one committed transaction. Never replaces a row. Returns GW_OK,
 *   GW_ERR_INVALID  a field as described above, n out of range;
 *   GW_ERR_EXISTS   a row with one of the seqs exists already (another
 *                   writer appended: re-read the head and recompute);
 *   GW_ERR_BUSY, GW_ERR_STORE, GW_ERR_NOMEM. */
int gw_store_audit_append(gw_store *s, const gw_store_audit_row *rows,
                          size_t n);

/* Stores the highest seq and its row's hash in |*seq| and |hash| (32
 * bytes). Returns GW_OK, GW_ERR_NOT_FOUND (the table is empty),
 * GW_ERR_INVALID (NULL argument), GW_ERR_BUSY, GW_ERR_STORE. */
int gw_store_audit_last(gw_store *s, long long *seq, unsigned char *hash);

/* Called for each row; |row| is borrowed for the call. Returning anything
 * but GW_OK stops the listing with that value. */
typedef int (*gw_store_audit_cb)(const gw_store_audit_row *row, void *arg);

/* Calls |cb| for every row with seq >= |from_seq|, in seq order, in one read
 * transaction (the callback must not write through |s|). Returns GW_OK (also
 * for no rows), the callback's non-GW_OK value, GW_ERR_INVALID (no |cb|),
 * GW_ERR_BUSY, GW_ERR_STORE (also: a stored value longer than its field or
 * a hash that is not 32 bytes), GW_ERR_NOMEM. */
int gw_store_audit_list(gw_store *s, long long from_seq, gw_store_audit_cb cb,
                        void *arg);

/* Stores in |*rows| and |*checkpoints| (either may be NULL) the number of
 * rows of each table. Returns GW_OK, GW_ERR_INVALID, GW_ERR_BUSY,
 * GW_ERR_STORE. */
int gw_store_audit_count(gw_store *s, long long *rows, long long *checkpoints);

/* Inserts the checkpoint |c|, as one committed transaction. Returns GW_OK,
 * GW_ERR_INVALID, GW_ERR_EXISTS (a checkpoint of that seq exists),
 * GW_ERR_BUSY, GW_ERR_STORE, GW_ERR_NOMEM. */
int gw_store_audit_checkpoint_put(gw_store *s,
                                  const gw_store_audit_checkpoint *c);

typedef int (*gw_store_audit_checkpoint_cb)(const gw_store_audit_checkpoint *c,
                                            void *arg);

/* Calls |cb| for every checkpoint with seq >= |from_seq|, in seq order, in
 * one read transaction. Returns as gw_store_audit_list. */
int gw_store_audit_checkpoint_list(gw_store *s, long long from_seq,
                                   gw_store_audit_checkpoint_cb cb, void *arg);

#endif
