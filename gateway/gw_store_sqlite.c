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
  SQ_NSTMTS /* count */
};

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

const gw_store_ops gw_store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .ping = sq_ping,
    .schema_version = sq_schema_version,
    .kv_put = sq_kv_put,
    .kv_get = sq_kv_get,
    .kv_del = sq_kv_del,
};
