/* gw_store_sqlite.c — the SQLite store backend.
 *
 * One database file in WAL mode. Settings, migrations and the reasons for
 * them are in docs/store.md. Every statement used after open is prepared once
 * at open (SQLITE_PREPARE_PERSISTENT) and reset after each use, so that no
 * statement holds a read transaction open between calls (which would stop
 * checkpoints) and no SQL is parsed on the request path. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gw_err.h"
#include "gw_log.h"
#include "gw_store.h"
#include "gw_store_int.h"

/* ---- migrations ------------------------------------------------------- */

/* The schema, as a list of steps. Rules:
 * - append only: a released migration is never edited or removed;
 * - versions are 1, 2, 3, ... in order (checked at open);
 * - each step's SQL runs, with the row that records it in
 *   schema_migrations, inside the one BEGIN IMMEDIATE transaction of open,
 *   so a step is applied entirely or not at all, and exactly once. */
typedef struct sq_migration {
  int version;
  const char *description;
  const char *sql;
} sq_migration;

static const sq_migration sq_migrations[] = {
    {1, "key/value table",
     "CREATE TABLE kv (\n"
     "  key TEXT PRIMARY KEY,\n"
     "  value BLOB NOT NULL,\n"
     "  updated_at INTEGER NOT NULL\n"
     ");"},
    {2, "subscriber registry",
     "CREATE TABLE subscribers (\n"
     "  msisdn TEXT PRIMARY KEY,\n"
     "  civil_id TEXT NOT NULL,\n"
     "  name TEXT NOT NULL,\n"
     "  operator TEXT NOT NULL,\n"
     "  status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),\n"
     "  cert_serial TEXT NOT NULL,\n"
     "  cert_pem TEXT NOT NULL,\n"
     "  behaviour TEXT NOT NULL DEFAULT '',\n"
     "  created_at INTEGER NOT NULL,\n"
     "  revoked_at INTEGER,\n"
     "  revocation_reason TEXT,\n"
     "  last_signed_at INTEGER\n"
     ");\n"
     "CREATE INDEX subscribers_civil_id ON subscribers (civil_id);"},
    /* No foreign keys from the later tables to this one: a client removed
     * with mpkictl must not fail on its old transactions, and those must
     * stay readable until they are purged. */
    {3, "relying parties",
     "CREATE TABLE clients (\n"
     "  client_id TEXT PRIMARY KEY,\n"
     "  name TEXT NOT NULL,\n"
     "  secret_sha256 BLOB NOT NULL CHECK (length(secret_sha256) = 32),\n"
     "  auth_methods TEXT NOT NULL,\n"
     "  grant_types TEXT NOT NULL,\n"
     "  scopes TEXT NOT NULL,\n"
     "  resources TEXT NOT NULL,\n"
     "  redirect_uris TEXT NOT NULL,\n"
     "  ciba_mode TEXT NOT NULL,\n"
     "  ciba_notification_endpoint TEXT NOT NULL,\n"
     "  id_token_alg TEXT NOT NULL,\n"
     "  resource_server INTEGER NOT NULL CHECK (resource_server IN (0, 1)),\n"
     "  created_at INTEGER NOT NULL\n"
     ");"},
    /* auth_req_id is NULL, not '', when there is none: UNIQUE allows any
     * number of NULLs (in PostgreSQL too) but only one ''. */
    {4, "sign-in transactions",
     "CREATE TABLE auth_txn (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  auth_req_id TEXT UNIQUE,\n"
     "  client_id TEXT NOT NULL,\n"
     "  msisdn TEXT NOT NULL,\n"
     "  civil_id TEXT NOT NULL,\n"
     "  operator TEXT NOT NULL,\n"
     "  state TEXT NOT NULL,\n"
     "  outcome TEXT NOT NULL,\n"
     "  detail TEXT NOT NULL,\n"
     "  scope TEXT NOT NULL,\n"
     "  resource TEXT NOT NULL,\n"
     "  acr TEXT NOT NULL,\n"
     "  dtbs BLOB NOT NULL CHECK (length(dtbs) = 32),\n"
     "  verification_code TEXT NOT NULL,\n"
     "  mssp_trans_id TEXT NOT NULL,\n"
     "  created_at INTEGER NOT NULL,\n"
     "  expires_at INTEGER NOT NULL,\n"
     "  updated_at INTEGER NOT NULL,\n"
     "  auth_time INTEGER NOT NULL,\n"
     "  consumed INTEGER NOT NULL DEFAULT 0 CHECK (consumed IN (0, 1))\n"
     ");\n"
     "CREATE INDEX auth_txn_expires_at ON auth_txn (expires_at);"},
    {5, "revoked tokens",
     "CREATE TABLE revoked_tokens (\n"
     "  jti TEXT PRIMARY KEY,\n"
     "  client_id TEXT NOT NULL,\n"
     "  exp INTEGER NOT NULL\n"
     ");\n"
     "CREATE INDEX revoked_tokens_exp ON revoked_tokens (exp);"},
    /* No triggers forbid UPDATE or DELETE: whoever can write the file can
     * drop them. Tampering is detected instead, by the hash chain and the
     * signed checkpoints (docs/audit.md). */
    {6, "audit log",
     "CREATE TABLE audit (\n"
     "  seq INTEGER PRIMARY KEY,\n"
     "  ts INTEGER NOT NULL,\n"
     "  kind TEXT NOT NULL,\n"
     "  subject TEXT NOT NULL,\n"
     "  data TEXT NOT NULL,\n"
     "  prev_hash BLOB NOT NULL,\n"
     "  hash BLOB NOT NULL\n"
     ");\n"
     "CREATE TABLE audit_checkpoints (\n"
     "  seq INTEGER PRIMARY KEY,\n"
     "  hash BLOB NOT NULL,\n"
     "  ts INTEGER NOT NULL,\n"
     "  kid TEXT NOT NULL,\n"
     "  jws TEXT NOT NULL\n"
     ");"},
};

#define SQ_NMIGRATIONS ((int)(sizeof(sq_migrations) / sizeof(sq_migrations[0])))

int gw_store_sqlite_migration_count(void) {
  return SQ_NMIGRATIONS;
}

/* ---- prepared statements ---------------------------------------------- */

/* Later issues append their statements here and in sq_sql[]. */
enum {
  SQ_PING,
  SQ_VERSION,
  SQ_KV_PUT,
  SQ_KV_GET,
  SQ_KV_DEL,
  SQ_SUB_PUT,
  SQ_SUB_GET,
  SQ_SUB_LIST,
  SQ_SUB_LIST_CIVIL,
  SQ_SUB_REVOKE,
  SQ_SUB_SIGNED,
  SQ_CLIENT_PUT,
  SQ_CLIENT_GET,
  SQ_CLIENT_DEL,
  SQ_CLIENT_LIST,
  SQ_TXN_PUT,
  SQ_TXN_GET,
  SQ_TXN_GET_REQ,
  SQ_TXN_CONSUME,
  SQ_TXN_EXISTS,
  SQ_TXN_PURGE,
  SQ_REVOKED_PUT,
  SQ_REVOKED_GET,
  SQ_REVOKED_PURGE,
  SQ_AUDIT_PUT,
  SQ_AUDIT_LAST,
  SQ_AUDIT_LIST,
  SQ_AUDIT_COUNT,
  SQ_AUDIT_CP_PUT,
  SQ_AUDIT_CP_LIST,
  SQ_NSTMTS /* count */
};

#define SQ_SUB_COLUMNS                                                         \
  "msisdn, civil_id, name, operator, status, cert_serial, cert_pem, "          \
  "behaviour, created_at, COALESCE(revoked_at, 0), "                           \
  "COALESCE(revocation_reason, ''), COALESCE(last_signed_at, 0)"

#define SQ_CLIENT_COLUMNS                                                      \
  "client_id, name, secret_sha256, auth_methods, grant_types, scopes, "        \
  "resources, redirect_uris, ciba_mode, ciba_notification_endpoint, "          \
  "id_token_alg, resource_server, created_at"

#define SQ_TXN_COLUMNS                                                         \
  "id, COALESCE(auth_req_id, ''), client_id, msisdn, civil_id, operator, "     \
  "state, outcome, detail, scope, resource, acr, dtbs, verification_code, "    \
  "mssp_trans_id, created_at, expires_at, updated_at, auth_time, consumed"

static const char *const sq_sql[SQ_NSTMTS] = {
    /* Reads a table rather than a bare "SELECT 1", which never touches the
     * file: this starts a read transaction, so a database that has become
     * unreadable (I/O error, corruption, lock trouble) fails the ping. */
    [SQ_PING] = "SELECT 1 FROM schema_migrations LIMIT 1",
    [SQ_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [SQ_KV_PUT] = "INSERT INTO kv (key, value, updated_at) "
                  "VALUES (?1, ?2, CAST(strftime('%s', 'now') AS INTEGER)) "
                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                  "updated_at = excluded.updated_at",
    [SQ_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
    [SQ_KV_DEL] = "DELETE FROM kv WHERE key = ?1",
    [SQ_SUB_PUT] =
        "INSERT INTO subscribers (msisdn, civil_id, name, operator, status, "
        "cert_serial, cert_pem, behaviour, created_at, revoked_at, "
        "revocation_reason, last_signed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
        "?7, ?8, CASE WHEN ?9 > 0 THEN ?9 ELSE CAST(strftime('%s', 'now') AS "
        "INTEGER) END, NULLIF(?10, 0), NULLIF(?11, ''), NULLIF(?12, 0)) "
        "ON CONFLICT (msisdn) DO UPDATE SET civil_id = excluded.civil_id, "
        "name = excluded.name, operator = excluded.operator, "
        "status = excluded.status, cert_serial = excluded.cert_serial, "
        "cert_pem = excluded.cert_pem, behaviour = excluded.behaviour, "
        "created_at = excluded.created_at, revoked_at = excluded.revoked_at, "
        "revocation_reason = excluded.revocation_reason, "
        "last_signed_at = excluded.last_signed_at",
    /* The column order is the one sq_sub_read expects. */
    [SQ_SUB_GET] =
        "SELECT " SQ_SUB_COLUMNS " FROM subscribers WHERE msisdn = ?1",
    [SQ_SUB_LIST] =
        "SELECT " SQ_SUB_COLUMNS " FROM subscribers ORDER BY msisdn",
    [SQ_SUB_LIST_CIVIL] = "SELECT " SQ_SUB_COLUMNS " FROM subscribers "
                          "WHERE civil_id = ?1 ORDER BY msisdn",
    /* Only an active row changes: a second revocation keeps the first time
     * and reason. */
    [SQ_SUB_REVOKE] = "UPDATE subscribers SET status = 'revoked', "
                      "revoked_at = ?2, revocation_reason = NULLIF(?3, '') "
                      "WHERE msisdn = ?1 AND status = 'active'",
    [SQ_SUB_SIGNED] =
        "UPDATE subscribers SET last_signed_at = ?2 WHERE msisdn = ?1",
    [SQ_CLIENT_PUT] =
        "INSERT INTO clients (" SQ_CLIENT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, "
        "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, CASE WHEN ?13 > 0 THEN ?13 ELSE "
        "CAST(strftime('%s', 'now') AS INTEGER) END) "
        "ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, "
        "secret_sha256 = excluded.secret_sha256, "
        "auth_methods = excluded.auth_methods, "
        "grant_types = excluded.grant_types, scopes = excluded.scopes, "
        "resources = excluded.resources, "
        "redirect_uris = excluded.redirect_uris, "
        "ciba_mode = excluded.ciba_mode, "
        "ciba_notification_endpoint = excluded.ciba_notification_endpoint, "
        "id_token_alg = excluded.id_token_alg, "
        "resource_server = excluded.resource_server, "
        "created_at = excluded.created_at",
    /* The column order is the one sq_client_read expects. */
    [SQ_CLIENT_GET] =
        "SELECT " SQ_CLIENT_COLUMNS " FROM clients WHERE client_id = ?1",
    [SQ_CLIENT_DEL] = "DELETE FROM clients WHERE client_id = ?1",
    [SQ_CLIENT_LIST] =
        "SELECT " SQ_CLIENT_COLUMNS " FROM clients ORDER BY client_id",
    /* A put from a stale copy never clears consumed: single use is decided
     * by SQ_TXN_CONSUME alone. A UNIQUE failure on auth_req_id (another
     * row's) is not covered by the upsert and aborts the statement. */
    [SQ_TXN_PUT] =
        "INSERT INTO auth_txn (id, auth_req_id, client_id, msisdn, civil_id, "
        "operator, state, outcome, detail, scope, resource, acr, dtbs, "
        "verification_code, mssp_trans_id, created_at, expires_at, "
        "updated_at, auth_time, consumed) VALUES (?1, NULLIF(?2, ''), ?3, "
        "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
        "?18, ?19, ?20) "
        "ON CONFLICT (id) DO UPDATE SET auth_req_id = excluded.auth_req_id, "
        "client_id = excluded.client_id, msisdn = excluded.msisdn, "
        "civil_id = excluded.civil_id, operator = excluded.operator, "
        "state = excluded.state, outcome = excluded.outcome, "
        "detail = excluded.detail, scope = excluded.scope, "
        "resource = excluded.resource, acr = excluded.acr, "
        "dtbs = excluded.dtbs, "
        "verification_code = excluded.verification_code, "
        "mssp_trans_id = excluded.mssp_trans_id, "
        "created_at = excluded.created_at, expires_at = excluded.expires_at, "
        "updated_at = excluded.updated_at, auth_time = excluded.auth_time, "
        "consumed = MAX(consumed, excluded.consumed)",
    /* The column order is the one sq_txn_read expects. */
    [SQ_TXN_GET] = "SELECT " SQ_TXN_COLUMNS " FROM auth_txn WHERE id = ?1",
    [SQ_TXN_GET_REQ] =
        "SELECT " SQ_TXN_COLUMNS " FROM auth_txn WHERE auth_req_id = ?1",
    /* The single-use check and the mark in one statement: SQLite (and
     * PostgreSQL) apply it atomically, so two callers cannot both see 0. */
    [SQ_TXN_CONSUME] =
        "UPDATE auth_txn SET consumed = 1 WHERE id = ?1 AND consumed = 0",
    [SQ_TXN_EXISTS] = "SELECT 1 FROM auth_txn WHERE id = ?1",
    [SQ_TXN_PURGE] = "DELETE FROM auth_txn WHERE expires_at < ?1",
    [SQ_REVOKED_PUT] = "INSERT INTO revoked_tokens (jti, client_id, exp) "
                       "VALUES (?1, ?2, ?3) ON CONFLICT (jti) DO UPDATE "
                       "SET exp = MAX(exp, excluded.exp)",
    [SQ_REVOKED_GET] = "SELECT 1 FROM revoked_tokens WHERE jti = ?1",
    [SQ_REVOKED_PURGE] = "DELETE FROM revoked_tokens WHERE exp < ?1",
    /* A plain INSERT: an existing seq is a conflict, never replaced. */
    [SQ_AUDIT_PUT] = "INSERT INTO audit (seq, ts, kind, subject, data, "
                     "prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQ_AUDIT_LAST] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    /* The column order is the one sq_audit_read expects. */
    [SQ_AUDIT_LIST] = "SELECT seq, ts, kind, subject, data, prev_hash, hash "
                      "FROM audit WHERE seq >= ?1 ORDER BY seq",
    [SQ_AUDIT_COUNT] = "SELECT (SELECT COUNT(*) FROM audit), "
                       "(SELECT COUNT(*) FROM audit_checkpoints)",
    [SQ_AUDIT_CP_PUT] = "INSERT INTO audit_checkpoints (seq, hash, ts, kid, "
                        "jws) VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_AUDIT_CP_LIST] = "SELECT seq, hash, ts, kid, jws FROM "
                         "audit_checkpoints WHERE seq >= ?1 ORDER BY seq",
};

typedef struct sq_store {
  gw_store base; /* first: gw_store * and sq_store * convert */
  sqlite3 *db;
  sqlite3_stmt *stmt[SQ_NSTMTS];
} sq_store;

/* ---- errors ----------------------------------------------------------- */

/* Translates an SQLite result code; ROW and DONE are not errors. */
static int sq_rc(int rc) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_ROW:
  case SQLITE_DONE:
    return GW_OK;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return GW_ERR_BUSY;
  case SQLITE_NOMEM:
    return GW_ERR_NOMEM;
  case SQLITE_TOOBIG:
    return GW_ERR_TOO_LARGE;
  default:
    return GW_ERR_STORE;
  }
}

static void sq_printf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sq_printf(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;

  if (!err || errlen == 0) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* Records the failure of |what| with SQLite's own message on the handle and
 * returns the translated code. */
static int sq_fail(sq_store *sq, int rc, const char *what) {
  snprintf(sq->base.errmsg, sizeof(sq->base.errmsg), "sqlite: %s: %s", what,
           sqlite3_errmsg(sq->db));
  return sq_rc(rc);
}

/* Resets |st| after use; SQLite's reset returns the last step's error again,
 * which the caller has already handled. */
static void sq_done(sqlite3_stmt *st) {
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

/* ---- open ------------------------------------------------------------- */

/* Creates the database file with mode 0600 when it does not exist, so that
 * it is never readable by others, not even for a moment (SQLite would create
 * it 0644 & ~umask; its -wal and -shm files copy the database's mode). The
 * parent directory is not created: a wrong path should stop start-up. */
static int sq_create_file(const char *path, char *err, size_t errlen) {
  char dir[PATH_MAX];
  const char *slash;
  struct stat st;
  int fd, e;

  fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    e = errno;
    if (e == EEXIST) {
      /* An existing file keeps the mode its owner gave it; say so if others
       * can read it. */
      if (stat(path, &st) == 0 && (st.st_mode & 077)) {
        char qpath[256];
        gw_log_quote(qpath, sizeof(qpath), path, strlen(path));
        GW_LOG(GW_LOG_WARN, "store file is accessible to other users",
               "backend=sqlite path=%s mode=%04o", qpath,
               (unsigned)(st.st_mode & 07777));
      }
      return GW_OK;
    }
    if (e == ENOENT) {
      slash = strrchr(path, '/');
      if (slash && slash != path && (size_t)(slash - path) < sizeof(dir)) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
        if (stat(dir, &st) != 0) {
          sq_printf(err, errlen,
                    "sqlite: cannot create database \"%s\": directory \"%s\" "
                    "does not exist (it is not created automatically)",
                    path, dir);
          return GW_ERR_IO;
        }
      }
    }
    sq_printf(err, errlen, "sqlite: cannot create database \"%s\": %s", path,
              strerror(e));
    return GW_ERR_IO;
  }
  /* The umask may have removed bits from 0600; set exactly 0600. */
  if (fchmod(fd, 0600) != 0) {
    e = errno;
    close(fd);
    unlink(path);
    sq_printf(err, errlen, "sqlite: cannot set mode 0600 on \"%s\": %s", path,
              strerror(e));
    return GW_ERR_IO;
  }
  close(fd);
  return GW_OK;
}

/* Runs a statement that returns one text value and copies it to |out|. */
static int sq_pragma_text(sq_store *sq, const char *sql, char *out,
                          size_t cap) {
  sqlite3_stmt *st = NULL;
  const unsigned char *t;
  int rc;

  out[0] = '\0';
  rc = sqlite3_prepare_v2(sq->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) {
    return rc;
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    t = sqlite3_column_text(st, 0);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

static long long sq_now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Puts the file in WAL mode and checks that it is. WAL is a property of the
 * file, so after the first open it is only read, which takes no write lock.
 * Converting needs an exclusive lock, and SQLite does not always run the
 * busy handler for it: when handles open a new file at the same moment, the
 * pragma can fail with SQLITE_BUSY at once, or answer the old mode. So it is
 * retried, with backoff, within the busy timeout. */
static int sq_set_wal(sq_store *sq, int busy_timeout_ms, char *err,
                      size_t errlen) {
  long long deadline = sq_now_ms() + busy_timeout_ms;
  char mode[32];
  int rc, delay = 1;

  for (;;) {
    rc = sq_pragma_text(sq, "PRAGMA journal_mode", mode, sizeof(mode));
    if (rc == SQLITE_OK && strcasecmp(mode, "wal") == 0) {
      return GW_OK;
    }
    if (rc == SQLITE_OK) {
      rc = sq_pragma_text(sq, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
      if (rc == SQLITE_OK && strcasecmp(mode, "wal") == 0) {
        return GW_OK;
      }
    }
    if (rc != SQLITE_OK && sq_rc(rc) != GW_ERR_BUSY) {
      break; /* a real error: no point in waiting */
    }
    if (sq_now_ms() >= deadline) {
      break;
    }
    sqlite3_sleep(delay);
    delay = delay < 50 ? delay * 2 : 50;
  }
  if (rc != SQLITE_OK) {
    sq_printf(err, errlen, "sqlite: cannot set journal_mode=WAL: %s",
              sqlite3_errmsg(sq->db));
    return sq_rc(rc) == GW_ERR_BUSY ? GW_ERR_BUSY : GW_ERR_STORE;
  }
  sq_printf(err, errlen,
            "sqlite: journal_mode=WAL refused, the database answered \"%s\" "
            "(a file system without shared memory or mmap support?)",
            mode);
  return GW_ERR_STORE;
}

/* Applies the connection settings. See docs/store.md for each reason. */
static int sq_configure(sq_store *sq, int busy_timeout_ms, char *err,
                        size_t errlen) {
  int rc, rv;

  /* First, so that the pragmas below wait for a lock like any write. */
  sqlite3_busy_timeout(sq->db, busy_timeout_ms);
  sqlite3_extended_result_codes(sq->db, 1);
#ifdef SQLITE_DBCONFIG_DEFENSIVE
  sqlite3_db_config(sq->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
#endif
  if (sqlite3_db_readonly(sq->db, "main") == 1) {
    sq_printf(err, errlen, "sqlite: database file is read-only");
    return GW_ERR_STORE;
  }

  rv = sq_set_wal(sq, busy_timeout_ms, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }

  rc = sqlite3_exec(sq->db,
                    "PRAGMA synchronous = NORMAL;"
                    "PRAGMA foreign_keys = ON;"
                    "PRAGMA trusted_schema = OFF;"
                    "PRAGMA journal_size_limit = 67108864;",
                    NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sq_printf(err, errlen, "sqlite: cannot apply settings: %s",
              sqlite3_errmsg(sq->db));
    return sq_rc(rc) == GW_ERR_BUSY ? GW_ERR_BUSY : GW_ERR_STORE;
  }
  return GW_OK;
}

static void sq_rollback(sq_store *sq) {
  if (!sqlite3_get_autocommit(sq->db)) {
    sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL);
  }
}

/* Reads the highest applied migration into |*out| (0 for a new database). */
static int sq_read_version(sq_store *sq, int *out) {
  sqlite3_stmt *st = NULL;
  int rc;

  rc = sqlite3_prepare_v2(sq->db, sq_sql[SQ_VERSION], -1, &st, NULL);
  if (rc != SQLITE_OK) {
    return rc;
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int(st, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

static int sq_record_migration(sq_store *sq, const sq_migration *m) {
  sqlite3_stmt *st = NULL;
  int rc;

  rc = sqlite3_prepare_v2(
      sq->db,
      "INSERT INTO schema_migrations (version, description, applied_at) "
      "VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
      -1, &st, NULL);
  if (rc != SQLITE_OK) {
    return rc;
  }
  sqlite3_bind_int(st, 1, m->version);
  sqlite3_bind_text(st, 2, m->description, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Brings the schema to the newest version. Runs under BEGIN IMMEDIATE (the
 * write lock) so that handles opened at the same moment, in this process or
 * another, see each other's work: the second one waits (busy timeout), then
 * reads the version the first one committed and applies nothing. */
static int sq_migrate(sq_store *sq, const char *path, char *err,
                      size_t errlen) {
  char qpath[256];
  int rc, cur = 0, from, i;

  for (i = 0; i < SQ_NMIGRATIONS; i++) {
    if (sq_migrations[i].version != i + 1) {
      sq_printf(err, errlen, "sqlite: migration table out of order at %d", i);
      return GW_ERR_INTERNAL;
    }
  }

  rc = sqlite3_exec(sq->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sq_printf(err, errlen, "sqlite: cannot lock the database to migrate: %s",
              sqlite3_errmsg(sq->db));
    return sq_rc(rc) == GW_ERR_BUSY ? GW_ERR_BUSY : GW_ERR_STORE;
  }
  rc = sqlite3_exec(sq->db,
                    "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                    "  version INTEGER PRIMARY KEY,\n"
                    "  description TEXT NOT NULL,\n"
                    "  applied_at TEXT NOT NULL\n"
                    ")",
                    NULL, NULL, NULL);
  if (rc == SQLITE_OK) {
    rc = sq_read_version(sq, &cur);
  }
  if (rc != SQLITE_OK) {
    sq_printf(err, errlen, "sqlite: cannot read the schema version: %s",
              sqlite3_errmsg(sq->db));
    goto fail;
  }
  if (cur > SQ_NMIGRATIONS) {
    sq_printf(err, errlen,
              "sqlite: database schema version %d is newer than this program "
              "knows (%d); refusing to open it (it is never downgraded): run "
              "the newer mpkigw or restore a matching backup",
              cur, SQ_NMIGRATIONS);
    sq_rollback(sq);
    return GW_ERR_STORE;
  }

  from = cur;
  for (i = cur; i < SQ_NMIGRATIONS; i++) {
    const sq_migration *m = &sq_migrations[i];

    rc = sqlite3_exec(sq->db, m->sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
      rc = sq_record_migration(sq, m);
    }
    if (rc != SQLITE_OK) {
      sq_printf(err, errlen, "sqlite: migration %d (%s) failed: %s", m->version,
                m->description, sqlite3_errmsg(sq->db));
      goto fail;
    }
  }
  rc = sqlite3_exec(sq->db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sq_printf(err, errlen, "sqlite: cannot commit the migrations: %s",
              sqlite3_errmsg(sq->db));
    goto fail;
  }

  if (from < SQ_NMIGRATIONS) {
    gw_log_quote(qpath, sizeof(qpath), path, strlen(path));
    for (i = from; i < SQ_NMIGRATIONS; i++) {
      GW_LOG(GW_LOG_INFO, "store migration applied",
             "backend=sqlite path=%s version=%d description=\"%s\"", qpath,
             sq_migrations[i].version, sq_migrations[i].description);
    }
  }
  return GW_OK;

fail:
  sq_rollback(sq);
  return sq_rc(rc) == GW_ERR_BUSY ? GW_ERR_BUSY : GW_ERR_STORE;
}

static int sq_prepare_all(sq_store *sq, char *err, size_t errlen) {
  int rc;

  for (int i = 0; i < SQ_NSTMTS; i++) {
    rc = sqlite3_prepare_v3(sq->db, sq_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                            &sq->stmt[i], NULL);
    if (rc != SQLITE_OK) {
      sq_printf(err, errlen, "sqlite: cannot prepare statement %d: %s", i,
                sqlite3_errmsg(sq->db));
      return sq_rc(rc) == GW_ERR_NOMEM ? GW_ERR_NOMEM : GW_ERR_STORE;
    }
  }
  return GW_OK;
}

static void sq_free(sq_store *sq) {
  for (int i = 0; i < SQ_NSTMTS; i++) {
    sqlite3_finalize(sq->stmt[i]); /* NULL is a no-op */
  }
  /* Every statement is finalized, so close cannot be left pending. */
  sqlite3_close(sq->db);
  free(sq);
}

static int sq_open(gw_store **out, const char *path, int busy_timeout_ms,
                   char *err, size_t errlen) {
  sq_store *sq;
  int rc, rv;

  rv = sq_create_file(path, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  sq = calloc(1, sizeof(*sq));
  if (!sq) {
    sq_printf(err, errlen, "sqlite: out of memory");
    return GW_ERR_NOMEM;
  }
  sq->base.ops = &gw_store_sqlite_ops;

  /* NOMUTEX: a handle is used by one thread at a time (gw_store.h), so
   * SQLite's per-connection mutex is not needed. */
  rc = sqlite3_open_v2(
      path, &sq->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    sq_printf(err, errlen, "sqlite: cannot open \"%s\": %s", path,
              sq->db ? sqlite3_errmsg(sq->db) : sqlite3_errstr(rc));
    rv = sq_rc(rc) == GW_ERR_NOMEM ? GW_ERR_NOMEM : GW_ERR_STORE;
    goto fail;
  }
  rv = sq_configure(sq, busy_timeout_ms, err, errlen);
  if (rv != GW_OK) {
    goto fail;
  }
  rv = sq_migrate(sq, path, err, errlen);
  if (rv != GW_OK) {
    goto fail;
  }
  rv = sq_prepare_all(sq, err, errlen);
  if (rv != GW_OK) {
    goto fail;
  }
  *out = &sq->base;
  return GW_OK;

fail:
  sq_free(sq);
  return rv;
}

/* ---- operations ------------------------------------------------------- */

static void sq_close(gw_store *s) {
  sq_store *sq = (sq_store *)s;

  /* PASSIVE never waits for readers or writers: it copies what it can from
   * the WAL into the database now. Whatever it cannot copy stays safe in the
   * WAL; the last connection to close checkpoints everything. */
  sqlite3_wal_checkpoint_v2(sq->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                            NULL);
  sq_free(sq);
}

static int sq_ping(gw_store *s) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_PING];
  int rc, rv = GW_OK;

  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    rv = sq_fail(sq, rc, "ping");
  }
  sq_done(st);
  return rv;
}

static int sq_schema_version(gw_store *s, int *out) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_VERSION];
  int rc, rv = GW_OK;

  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int(st, 0);
  } else {
    rv = rc == SQLITE_DONE ? GW_ERR_STORE : sq_fail(sq, rc, "schema version");
  }
  sq_done(st);
  return rv;
}

static int sq_bind_key(sq_store *sq, sqlite3_stmt *st, const char *key,
                       size_t keylen) {
  int rc = sqlite3_bind_text(st, 1, key, (int)keylen, SQLITE_STATIC);

  return rc == SQLITE_OK ? GW_OK : sq_fail(sq, rc, "bind key");
}

static int sq_kv_put(gw_store *s, const char *key, size_t keylen,
                     const void *val, size_t n) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_KV_PUT];
  int rc, rv;

  rv = sq_bind_key(sq, st, key, keylen);
  if (rv == GW_OK) {
    /* A NULL pointer would bind SQL NULL; "" binds an empty blob. */
    rc = sqlite3_bind_blob64(st, 2, n ? val : "", (sqlite3_uint64)n,
                             SQLITE_STATIC);
    if (rc != SQLITE_OK) {
      rv = sq_fail(sq, rc, "bind value");
    }
  }
  if (rv == GW_OK) {
    /* Autocommit: the statement is its own transaction, committed (in the
     * WAL) when step returns DONE. */
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
      rv = sq_fail(sq, rc, "kv put");
    }
  }
  sq_done(st);
  return rv;
}

static int sq_kv_get(gw_store *s, const char *key, size_t keylen, void *buf,
                     size_t cap, size_t *outlen) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_KV_GET];
  const void *p;
  size_t len;
  int rc, rv;

  rv = sq_bind_key(sq, st, key, keylen);
  if (rv != GW_OK) {
    goto done;
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    rv = GW_ERR_NOT_FOUND;
    goto done;
  }
  if (rc != SQLITE_ROW) {
    rv = sq_fail(sq, rc, "kv get");
    goto done;
  }
  /* blob first, then bytes: the order SQLite documents as safe. */
  p = sqlite3_column_blob(st, 0);
  len = (size_t)sqlite3_column_bytes(st, 0);
  if (!p && len) {
    rv = sq_fail(sq, SQLITE_NOMEM, "kv get");
    goto done;
  }
  if (outlen) {
    *outlen = len;
  }
  if (len > cap) {
    snprintf(sq->base.errmsg, sizeof(sq->base.errmsg),
             "value of %zu bytes does not fit in %zu", len, cap);
    rv = GW_ERR_TOO_LARGE;
    goto done;
  }
  if (len) {
    memcpy(buf, p, len);
  }
done:
  sq_done(st);
  return rv;
}

static int sq_kv_del(gw_store *s, const char *key, size_t keylen) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_KV_DEL];
  int rc, rv;

  rv = sq_bind_key(sq, st, key, keylen);
  if (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
      rv = sq_fail(sq, rc, "kv del");
    } else if (sqlite3_changes(sq->db) == 0) {
      rv = GW_ERR_NOT_FOUND;
    }
  }
  sq_done(st);
  return rv;
}

/* ---- subscriber registry ---------------------------------------------- */

static int sq_bind_text(sq_store *sq, sqlite3_stmt *st, int i, const char *v) {
  int rc = sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);

  return rc == SQLITE_OK ? GW_OK : sq_fail(sq, rc, "bind");
}

static int sq_bind_int64(sq_store *sq, sqlite3_stmt *st, int i, long long v) {
  int rc = sqlite3_bind_int64(st, i, (sqlite3_int64)v);

  return rc == SQLITE_OK ? GW_OK : sq_fail(sq, rc, "bind");
}

static int sq_sub_put(gw_store *s, const gw_store_sub *sub) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_SUB_PUT];
  const char *text[] = {sub->msisdn,
                        sub->civil_id,
                        sub->name,
                        sub->operator_name,
                        sub->revoked ? "revoked" : "active",
                        sub->cert_serial,
                        sub->cert_pem,
                        sub->behaviour};
  int rc, rv = GW_OK;

  for (int i = 0; rv == GW_OK && i < 8; i++) {
    rv = sq_bind_text(sq, st, i + 1, text[i]);
  }
  if (rv == GW_OK) {
    rv = sq_bind_int64(sq, st, 9, sub->created_at);
  }
  if (rv == GW_OK) {
    rv = sq_bind_int64(sq, st, 10, sub->revoked ? sub->revoked_at : 0);
  }
  if (rv == GW_OK) {
    rv = sq_bind_text(sq, st, 11, sub->revoked ? sub->revocation_reason : "");
  }
  if (rv == GW_OK) {
    rv = sq_bind_int64(sq, st, 12, sub->last_signed_at);
  }
  if (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
      rv = sq_fail(sq, rc, "subscriber put");
    }
  }
  sq_done(st);
  return rv;
}

/* Copies text column |col| into |dst| (|cap| bytes with the NUL). A value
 * that does not fit was not written by this store: it is an error, never
 * silently cut. */
static int sq_col_text(sq_store *sq, sqlite3_stmt *st, int col, char *dst,
                       size_t cap, const char *name) {
  const unsigned char *t = sqlite3_column_text(st, col);
  size_t n = (size_t)sqlite3_column_bytes(st, col);

  if (!t) {
    if (sqlite3_errcode(sq->db) == SQLITE_NOMEM) {
      return sq_fail(sq, SQLITE_NOMEM, "read");
    }
    n = 0;
  }
  if (n >= cap) {
    snprintf(sq->base.errmsg, sizeof(sq->base.errmsg),
             "column %s holds %zu bytes, over its cap %zu", name, n, cap - 1);
    return GW_ERR_STORE;
  }
  if (n) {
    memcpy(dst, t, n);
  }
  dst[n] = '\0';
  return GW_OK;
}

/* Reads the current row of a SQ_SUB_COLUMNS statement into |out|. */
static int sq_sub_read(sq_store *sq, sqlite3_stmt *st, gw_store_sub *out) {
  char status[16];
  int rv;

  memset(out, 0, sizeof(*out));
#define COL(i, field)                                                          \
  do {                                                                         \
    rv = sq_col_text(sq, st, (i), out->field, sizeof(out->field), #field);     \
    if (rv != GW_OK) {                                                         \
      return rv;                                                               \
    }                                                                          \
  } while (0)
  COL(0, msisdn);
  COL(1, civil_id);
  COL(2, name);
  COL(3, operator_name);
  rv = sq_col_text(sq, st, 4, status, sizeof(status), "status");
  if (rv != GW_OK) {
    return rv;
  }
  out->revoked = strcmp(status, "revoked") == 0;
  COL(5, cert_serial);
  COL(6, cert_pem);
  COL(7, behaviour);
  out->created_at = sqlite3_column_int64(st, 8);
  out->revoked_at = sqlite3_column_int64(st, 9);
  COL(10, revocation_reason);
  out->last_signed_at = sqlite3_column_int64(st, 11);
#undef COL
  return GW_OK;
}

static int sq_sub_get(gw_store *s, const char *msisdn, gw_store_sub *out) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_SUB_GET];
  int rc, rv;

  rv = sq_bind_text(sq, st, 1, msisdn);
  if (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      rv = sq_sub_read(sq, st, out);
    } else if (rc == SQLITE_DONE) {
      rv = GW_ERR_NOT_FOUND;
    } else {
      rv = sq_fail(sq, rc, "subscriber get");
    }
  }
  sq_done(st);
  return rv;
}

static int sq_sub_list(gw_store *s, const char *civil_id, gw_store_sub_cb cb,
                       void *arg) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[civil_id ? SQ_SUB_LIST_CIVIL : SQ_SUB_LIST];
  gw_store_sub *sub;
  int rc, rv = GW_OK;

  /* A row is 9 KiB: on the heap, not on the caller's stack. */
  sub = malloc(sizeof(*sub));
  if (!sub) {
    snprintf(sq->base.errmsg, sizeof(sq->base.errmsg), "out of memory");
    return GW_ERR_NOMEM;
  }
  if (civil_id) {
    rv = sq_bind_text(sq, st, 1, civil_id);
  }
  while (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
      break;
    }
    if (rc != SQLITE_ROW) {
      rv = sq_fail(sq, rc, "subscriber list");
      break;
    }
    rv = sq_sub_read(sq, st, sub);
    if (rv == GW_OK) {
      rv = cb(sub, arg);
    }
  }
  sq_done(st);
  free(sub);
  return rv;
}

/* After an UPDATE that changed nothing: GW_OK when |msisdn| exists, else
 * GW_ERR_NOT_FOUND. */
static int sq_sub_exists(sq_store *sq, const char *msisdn) {
  sqlite3_stmt *st = sq->stmt[SQ_SUB_GET];
  int rc, rv;

  rv = sq_bind_text(sq, st, 1, msisdn);
  if (rv == GW_OK) {
    rc = sqlite3_step(st);
    rv = rc == SQLITE_ROW    ? GW_OK
         : rc == SQLITE_DONE ? GW_ERR_NOT_FOUND
                             : sq_fail(sq, rc, "subscriber get");
  }
  sq_done(st);
  return rv;
}

static int sq_sub_update(sq_store *sq, int which, const char *msisdn,
                         long long when, const char *reason, const char *what) {
  sqlite3_stmt *st = sq->stmt[which];
  int rc, rv, changed = 0;

  rv = sq_bind_text(sq, st, 1, msisdn);
  if (rv == GW_OK) {
    rv = sq_bind_int64(sq, st, 2, when);
  }
  if (rv == GW_OK && reason) {
    rv = sq_bind_text(sq, st, 3, reason);
  }
  if (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
      rv = sq_fail(sq, rc, what);
    } else {
      changed = sqlite3_changes(sq->db) > 0;
    }
  }
  sq_done(st);
  if (rv == GW_OK && !changed) {
    rv = sq_sub_exists(sq, msisdn);
  }
  return rv;
}

static int sq_sub_revoke(gw_store *s, const char *msisdn, const char *reason,
                         long long when) {
  return sq_sub_update((sq_store *)s, SQ_SUB_REVOKE, msisdn, when, reason,
                       "subscriber revoke");
}

static int sq_sub_mark_signed(gw_store *s, const char *msisdn, long long when) {
  return sq_sub_update((sq_store *)s, SQ_SUB_SIGNED, msisdn, when, NULL,
                       "subscriber mark signed");
}

/* ---- shared steps of the later tables -------------------------------- */

static int sq_bind_blob(sq_store *sq, sqlite3_stmt *st, int i, const void *p,
                        size_t n) {
  int rc = sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC);

  return rc == SQLITE_OK ? GW_OK : sq_fail(sq, rc, "bind");
}

/* Binds the texts |v[0..n-1]| to the parameters |first|, |first| + 1, ... */
static int sq_bind_texts(sq_store *sq, sqlite3_stmt *st, int first,
                         const char *const *v, int n) {
  int rv = GW_OK;

  for (int i = 0; rv == GW_OK && i < n; i++) {
    rv = sq_bind_text(sq, st, first + i, v[i]);
  }
  return rv;
}

/* Copies blob column |col| into |dst|, which it must fill exactly: the
 * tables' CHECKs keep the length, so another length is damage. */
static int sq_col_blob(sq_store *sq, sqlite3_stmt *st, int col, void *dst,
                       size_t n, const char *name) {
  const void *p = sqlite3_column_blob(st, col);
  size_t len = (size_t)sqlite3_column_bytes(st, col);

  if (!p && len == 0 && sqlite3_errcode(sq->db) == SQLITE_NOMEM) {
    return sq_fail(sq, SQLITE_NOMEM, "read");
  }
  if (!p || len != n) {
    snprintf(sq->base.errmsg, sizeof(sq->base.errmsg),
             "column %s holds %zu bytes, not %zu", name, len, n);
    return GW_ERR_STORE;
  }
  memcpy(dst, p, n);
  return GW_OK;
}

/* Steps a write statement that returns no row and resets it. */
static int sq_write(sq_store *sq, sqlite3_stmt *st, int rv, const char *what) {
  int rc;

  if (rv == GW_OK) {
    /* Autocommit: the statement is its own transaction. */
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
      rv = sq_fail(sq, rc, what);
    }
  }
  sq_done(st);
  return rv;
}

/* Reads the current row of a statement into |out|. */
typedef int (*sq_reader)(sq_store *sq, sqlite3_stmt *st, void *out);

/* Runs the one-key query |which| for |key| and reads its row with |read|.
 * Returns GW_OK, GW_ERR_NOT_FOUND or the failure. */
static int sq_get_one(sq_store *sq, int which, const char *key, sq_reader read,
                      void *out, const char *what) {
  sqlite3_stmt *st = sq->stmt[which];
  int rc, rv;

  rv = sq_bind_text(sq, st, 1, key);
  if (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      rv = read ? read(sq, st, out) : GW_OK;
    } else if (rc == SQLITE_DONE) {
      rv = GW_ERR_NOT_FOUND;
    } else {
      rv = sq_fail(sq, rc, what);
    }
  }
  sq_done(st);
  return rv;
}

/* Runs the one-key DELETE or UPDATE |which|; GW_ERR_NOT_FOUND when it
 * changed no row. */
static int sq_change_one(sq_store *sq, int which, const char *key,
                         const char *what) {
  sqlite3_stmt *st = sq->stmt[which];
  int rc, rv;

  rv = sq_bind_text(sq, st, 1, key);
  if (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
      rv = sq_fail(sq, rc, what);
    } else if (sqlite3_changes(sq->db) == 0) {
      rv = GW_ERR_NOT_FOUND;
    }
  }
  sq_done(st);
  return rv;
}

/* Runs the DELETE ... WHERE x < ?1 |which|; |*n| (may be NULL) gets the
 * number of rows deleted. */
static int sq_purge(sq_store *sq, int which, long long before, size_t *n,
                    const char *what) {
  sqlite3_stmt *st = sq->stmt[which];
  int rv;

  rv = sq_write(sq, st, sq_bind_int64(sq, st, 1, before), what);
  if (rv == GW_OK && n) {
    *n = (size_t)sqlite3_changes64(sq->db);
  }
  return rv;
}

/* ---- relying parties -------------------------------------------------- */

static int sq_client_put(gw_store *s, const gw_store_client *c) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_CLIENT_PUT];
  const char *const text[] = {c->auth_methods,
                              c->grant_types,
                              c->scopes,
                              c->resources,
                              c->redirect_uris,
                              c->ciba_mode,
                              c->ciba_notification_endpoint,
                              c->id_token_alg};
  int rv;

  rv = sq_bind_text(sq, st, 1, c->client_id);
  if (rv == GW_OK) {
    rv = sq_bind_text(sq, st, 2, c->name);
  }
  if (rv == GW_OK) {
    rv = sq_bind_blob(sq, st, 3, c->secret_sha256, sizeof(c->secret_sha256));
  }
  if (rv == GW_OK) {
    rv = sq_bind_texts(sq, st, 4, text, 8);
  }
  if (rv == GW_OK) {
    rv = sq_bind_int64(sq, st, 12, c->resource_server);
  }
  if (rv == GW_OK) {
    rv = sq_bind_int64(sq, st, 13, c->created_at);
  }
  return sq_write(sq, st, rv, "client put");
}

/* Reads the current row of a SQ_CLIENT_COLUMNS statement into |out|. */
static int sq_client_read(sq_store *sq, sqlite3_stmt *st, void *arg) {
  gw_store_client *out = arg;
  int rv;

  memset(out, 0, sizeof(*out));
#define COL(i, field)                                                          \
  do {                                                                         \
    rv = sq_col_text(sq, st, (i), out->field, sizeof(out->field), #field);     \
    if (rv != GW_OK) {                                                         \
      return rv;                                                               \
    }                                                                          \
  } while (0)
  COL(0, client_id);
  COL(1, name);
  rv = sq_col_blob(sq, st, 2, out->secret_sha256, sizeof(out->secret_sha256),
                   "secret_sha256");
  if (rv != GW_OK) {
    return rv;
  }
  COL(3, auth_methods);
  COL(4, grant_types);
  COL(5, scopes);
  COL(6, resources);
  COL(7, redirect_uris);
  COL(8, ciba_mode);
  COL(9, ciba_notification_endpoint);
  COL(10, id_token_alg);
#undef COL
  out->resource_server = sqlite3_column_int(st, 11) != 0;
  out->created_at = sqlite3_column_int64(st, 12);
  return GW_OK;
}

static int sq_client_get(gw_store *s, const char *client_id,
                         gw_store_client *out) {
  return sq_get_one((sq_store *)s, SQ_CLIENT_GET, client_id, sq_client_read,
                    out, "client get");
}

static int sq_client_del(gw_store *s, const char *client_id) {
  return sq_change_one((sq_store *)s, SQ_CLIENT_DEL, client_id, "client del");
}

static int sq_client_list(gw_store *s, gw_store_client_cb cb, void *arg) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_CLIENT_LIST];
  gw_store_client *c;
  int rc, rv = GW_OK;

  /* A row is 11 KiB: on the heap, not on the caller's stack. */
  c = malloc(sizeof(*c));
  if (!c) {
    snprintf(sq->base.errmsg, sizeof(sq->base.errmsg), "out of memory");
    return GW_ERR_NOMEM;
  }
  while (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
      break;
    }
    if (rc != SQLITE_ROW) {
      rv = sq_fail(sq, rc, "client list");
      break;
    }
    rv = sq_client_read(sq, st, c);
    if (rv == GW_OK) {
      rv = cb(c, arg);
    }
  }
  sq_done(st);
  free(c);
  return rv;
}

/* ---- sign-in transactions --------------------------------------------- */

static int sq_txn_put(gw_store *s, const gw_store_txn *t) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_TXN_PUT];
  const char *const text[] = {t->id,     t->auth_req_id, t->client_id,
                              t->msisdn, t->civil_id,    t->operator_name,
                              t->state,  t->outcome,     t->detail,
                              t->scope,  t->resource,    t->acr};
  const long long num[] = {t->created_at, t->expires_at, t->updated_at,
                           t->auth_time, t->consumed};
  int rc, rv;

  rv = sq_bind_texts(sq, st, 1, text, 12);
  if (rv == GW_OK) {
    rv = sq_bind_blob(sq, st, 13, t->dtbs, sizeof(t->dtbs));
  }
  if (rv == GW_OK) {
    rv = sq_bind_text(sq, st, 14, t->verification_code);
  }
  if (rv == GW_OK) {
    rv = sq_bind_text(sq, st, 15, t->mssp_trans_id);
  }
  for (int i = 0; rv == GW_OK && i < 5; i++) {
    rv = sq_bind_int64(sq, st, 16 + i, num[i]);
  }
  if (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
      /* The id conflict is the upsert's: this is another row's
       * auth_req_id. */
      snprintf(sq->base.errmsg, sizeof(sq->base.errmsg),
               "auth_req_id belongs to another transaction");
      rv = GW_ERR_EXISTS;
    } else if (rc != SQLITE_DONE) {
      rv = sq_fail(sq, rc, "transaction put");
    }
  }
  sq_done(st);
  return rv;
}

/* Reads the current row of a SQ_TXN_COLUMNS statement into |out|. */
static int sq_txn_read(sq_store *sq, sqlite3_stmt *st, void *arg) {
  gw_store_txn *out = arg;
  int rv;

  memset(out, 0, sizeof(*out));
#define COL(i, field)                                                          \
  do {                                                                         \
    rv = sq_col_text(sq, st, (i), out->field, sizeof(out->field), #field);     \
    if (rv != GW_OK) {                                                         \
      return rv;                                                               \
    }                                                                          \
  } while (0)
  COL(0, id);
  COL(1, auth_req_id);
  COL(2, client_id);
  COL(3, msisdn);
  COL(4, civil_id);
  COL(5, operator_name);
  COL(6, state);
  COL(7, outcome);
  COL(8, detail);
  COL(9, scope);
  COL(10, resource);
  COL(11, acr);
  rv = sq_col_blob(sq, st, 12, out->dtbs, sizeof(out->dtbs), "dtbs");
  if (rv != GW_OK) {
    return rv;
  }
  COL(13, verification_code);
  COL(14, mssp_trans_id);
#undef COL
  out->created_at = sqlite3_column_int64(st, 15);
  out->expires_at = sqlite3_column_int64(st, 16);
  out->updated_at = sqlite3_column_int64(st, 17);
  out->auth_time = sqlite3_column_int64(st, 18);
  out->consumed = sqlite3_column_int(st, 19) != 0;
  return GW_OK;
}

static int sq_txn_get(gw_store *s, const char *id, gw_store_txn *out) {
  return sq_get_one((sq_store *)s, SQ_TXN_GET, id, sq_txn_read, out,
                    "transaction get");
}

static int sq_txn_get_by_req(gw_store *s, const char *auth_req_id,
                             gw_store_txn *out) {
  return sq_get_one((sq_store *)s, SQ_TXN_GET_REQ, auth_req_id, sq_txn_read,
                    out, "transaction get");
}

static int sq_txn_consume(gw_store *s, const char *id) {
  sq_store *sq = (sq_store *)s;
  int rv;

  rv = sq_change_one(sq, SQ_TXN_CONSUME, id, "transaction consume");
  if (rv != GW_ERR_NOT_FOUND) {
    return rv;
  }
  /* Nothing changed: consumed before, or no such row. The order of the two
   * statements does not matter: a row is never un-consumed. */
  rv = sq_get_one(sq, SQ_TXN_EXISTS, id, NULL, NULL, "transaction get");
  return rv == GW_OK ? GW_ERR_EXISTS : rv;
}

static int sq_txn_purge(gw_store *s, long long before_ms, size_t *n) {
  return sq_purge((sq_store *)s, SQ_TXN_PURGE, before_ms, n,
                  "transaction purge");
}

/* ---- revoked tokens --------------------------------------------------- */

static int sq_revoked_put(gw_store *s, const char *jti, const char *client_id,
                          long long exp) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_REVOKED_PUT];
  int rv;

  rv = sq_bind_text(sq, st, 1, jti);
  if (rv == GW_OK) {
    rv = sq_bind_text(sq, st, 2, client_id);
  }
  if (rv == GW_OK) {
    rv = sq_bind_int64(sq, st, 3, exp);
  }
  return sq_write(sq, st, rv, "revoked put");
}

static int sq_revoked_get(gw_store *s, const char *jti) {
  return sq_get_one((sq_store *)s, SQ_REVOKED_GET, jti, NULL, NULL,
                    "revoked get");
}

static int sq_revoked_purge(gw_store *s, long long before, size_t *n) {
  return sq_purge((sq_store *)s, SQ_REVOKED_PURGE, before, n, "revoked purge");
}

/* ---- audit log -------------------------------------------------------- */

static int sq_audit_put_one(sq_store *sq, const gw_store_audit_row *r) {
  sqlite3_stmt *st = sq->stmt[SQ_AUDIT_PUT];
  const char *const text[] = {r->kind, r->subject, r->data};
  int rc, rv;

  rv = sq_bind_int64(sq, st, 1, r->seq);
  if (rv == GW_OK) {
    rv = sq_bind_int64(sq, st, 2, r->ts);
  }
  if (rv == GW_OK) {
    rv = sq_bind_texts(sq, st, 3, text, 3);
  }
  if (rv == GW_OK) {
    rv = sq_bind_blob(sq, st, 6, r->prev_hash, sizeof(r->prev_hash));
  }
  if (rv == GW_OK) {
    rv = sq_bind_blob(sq, st, 7, r->hash, sizeof(r->hash));
  }
  if (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
      snprintf(sq->base.errmsg, sizeof(sq->base.errmsg),
               "audit row %lld exists already", r->seq);
      rv = GW_ERR_EXISTS;
    } else if (rc != SQLITE_DONE) {
      rv = sq_fail(sq, rc, "audit append");
    }
  }
  sq_done(st);
  return rv;
}

/* The rows of a batch in one transaction: one WAL commit for all of them,
 * and a conflict leaves none behind. */
static int sq_audit_append(gw_store *s, const gw_store_audit_row *rows,
                           size_t n) {
  sq_store *sq = (sq_store *)s;
  int rc, rv = GW_OK;

  rc = sqlite3_exec(sq->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    return sq_fail(sq, rc, "audit append: begin");
  }
  for (size_t i = 0; rv == GW_OK && i < n; i++) {
    rv = sq_audit_put_one(sq, &rows[i]);
  }
  if (rv == GW_OK) {
    rc = sqlite3_exec(sq->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
      rv = sq_fail(sq, rc, "audit append: commit");
    }
  }
  if (rv != GW_OK) {
    sq_rollback(sq);
  }
  return rv;
}

static int sq_audit_last(gw_store *s, long long *seq, unsigned char *hash) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_AUDIT_LAST];
  int rc, rv = GW_OK;

  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *seq = sqlite3_column_int64(st, 0);
    rv = sq_col_blob(sq, st, 1, hash, 32, "hash");
  } else if (rc == SQLITE_DONE) {
    rv = GW_ERR_NOT_FOUND;
  } else {
    rv = sq_fail(sq, rc, "audit last");
  }
  sq_done(st);
  return rv;
}

/* Reads the current row of SQ_AUDIT_LIST into |out|. */
static int sq_audit_read(sq_store *sq, sqlite3_stmt *st,
                         gw_store_audit_row *out) {
  int rv;

  memset(out, 0, sizeof(*out));
  out->seq = sqlite3_column_int64(st, 0);
  out->ts = sqlite3_column_int64(st, 1);
  rv = sq_col_text(sq, st, 2, out->kind, sizeof(out->kind), "kind");
  if (rv == GW_OK) {
    rv = sq_col_text(sq, st, 3, out->subject, sizeof(out->subject), "subject");
  }
  if (rv == GW_OK) {
    rv = sq_col_text(sq, st, 4, out->data, sizeof(out->data), "data");
  }
  if (rv == GW_OK) {
    rv = sq_col_blob(sq, st, 5, out->prev_hash, 32, "prev_hash");
  }
  if (rv == GW_OK) {
    rv = sq_col_blob(sq, st, 6, out->hash, 32, "hash");
  }
  return rv;
}

static int sq_audit_list(gw_store *s, long long from_seq, gw_store_audit_cb cb,
                         void *arg) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_AUDIT_LIST];
  gw_store_audit_row *r;
  int rc, rv;

  /* A row is 4 KiB: on the heap, not on the caller's stack. */
  r = malloc(sizeof(*r));
  if (!r) {
    snprintf(sq->base.errmsg, sizeof(sq->base.errmsg), "out of memory");
    return GW_ERR_NOMEM;
  }
  rv = sq_bind_int64(sq, st, 1, from_seq);
  while (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
      break;
    }
    if (rc != SQLITE_ROW) {
      rv = sq_fail(sq, rc, "audit list");
      break;
    }
    rv = sq_audit_read(sq, st, r);
    if (rv == GW_OK) {
      rv = cb(r, arg);
    }
  }
  sq_done(st);
  free(r);
  return rv;
}

static int sq_audit_count(gw_store *s, long long *rows,
                          long long *checkpoints) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_AUDIT_COUNT];
  int rc, rv = GW_OK;

  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    if (rows) {
      *rows = sqlite3_column_int64(st, 0);
    }
    if (checkpoints) {
      *checkpoints = sqlite3_column_int64(st, 1);
    }
  } else {
    rv = sq_fail(sq, rc, "audit count");
  }
  sq_done(st);
  return rv;
}

static int sq_audit_checkpoint_put(gw_store *s,
                                   const gw_store_audit_checkpoint *c) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_AUDIT_CP_PUT];
  int rc, rv;

  rv = sq_bind_int64(sq, st, 1, c->seq);
  if (rv == GW_OK) {
    rv = sq_bind_blob(sq, st, 2, c->hash, sizeof(c->hash));
  }
  if (rv == GW_OK) {
    rv = sq_bind_int64(sq, st, 3, c->ts);
  }
  if (rv == GW_OK) {
    rv = sq_bind_text(sq, st, 4, c->kid);
  }
  if (rv == GW_OK) {
    rv = sq_bind_text(sq, st, 5, c->jws);
  }
  if (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
      snprintf(sq->base.errmsg, sizeof(sq->base.errmsg),
               "checkpoint %lld exists already", c->seq);
      rv = GW_ERR_EXISTS;
    } else if (rc != SQLITE_DONE) {
      rv = sq_fail(sq, rc, "checkpoint put");
    }
  }
  sq_done(st);
  return rv;
}

static int sq_audit_cp_read(sq_store *sq, sqlite3_stmt *st,
                            gw_store_audit_checkpoint *out) {
  int rv;

  memset(out, 0, sizeof(*out));
  out->seq = sqlite3_column_int64(st, 0);
  out->ts = sqlite3_column_int64(st, 2);
  rv = sq_col_blob(sq, st, 1, out->hash, 32, "hash");
  if (rv == GW_OK) {
    rv = sq_col_text(sq, st, 3, out->kid, sizeof(out->kid), "kid");
  }
  if (rv == GW_OK) {
    rv = sq_col_text(sq, st, 4, out->jws, sizeof(out->jws), "jws");
  }
  return rv;
}

static int sq_audit_checkpoint_list(gw_store *s, long long from_seq,
                                    gw_store_audit_checkpoint_cb cb,
                                    void *arg) {
  sq_store *sq = (sq_store *)s;
  sqlite3_stmt *st = sq->stmt[SQ_AUDIT_CP_LIST];
  gw_store_audit_checkpoint *c;
  int rc, rv;

  c = malloc(sizeof(*c));
  if (!c) {
    snprintf(sq->base.errmsg, sizeof(sq->base.errmsg), "out of memory");
    return GW_ERR_NOMEM;
  }
  rv = sq_bind_int64(sq, st, 1, from_seq);
  while (rv == GW_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
      break;
    }
    if (rc != SQLITE_ROW) {
      rv = sq_fail(sq, rc, "checkpoint list");
      break;
    }
    rv = sq_audit_cp_read(sq, st, c);
    if (rv == GW_OK) {
      rv = cb(c, arg);
    }
  }
  sq_done(st);
  free(c);
  return rv;
}

const gw_store_ops gw_store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .ping = sq_ping,
    .schema_version = sq_schema_version,
    .kv_put = sq_kv_put,
    .kv_get = sq_kv_get,
    .kv_del = sq_kv_del,
    .sub_put = sq_sub_put,
    .sub_get = sq_sub_get,
    .sub_list = sq_sub_list,
    .sub_revoke = sq_sub_revoke,
    .sub_mark_signed = sq_sub_mark_signed,
    .client_put = sq_client_put,
    .client_get = sq_client_get,
    .client_del = sq_client_del,
    .client_list = sq_client_list,
    .txn_put = sq_txn_put,
    .txn_get = sq_txn_get,
    .txn_get_by_req = sq_txn_get_by_req,
    .txn_consume = sq_txn_consume,
    .txn_purge = sq_txn_purge,
    .revoked_put = sq_revoked_put,
    .revoked_get = sq_revoked_get,
    .revoked_purge = sq_revoked_purge,
    .audit_append = sq_audit_append,
    .audit_last = sq_audit_last,
    .audit_list = sq_audit_list,
    .audit_count = sq_audit_count,
    .audit_checkpoint_put = sq_audit_checkpoint_put,
    .audit_checkpoint_list = sq_audit_checkpoint_list,
};
