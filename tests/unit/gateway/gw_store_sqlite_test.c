/* gw_store_sqlite_test.c — the SQLite backend: settings really applied
 * (checked from a second, raw connection), file mode, migrations (once, never
 * downgraded; an old database upgraded), the later tables' schema, clear
 * errors, crash durability, concurrent handles and single use across
 * threads. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw_err.h"
#include "gw_log.h"
#include "gw_store.h"
#include "gw_store_int.h"
#include "harness.h"

/* ---- helpers ----------------------------------------------------------- */

static char tdir[64];
static char tdb[128];

static void tmp_setup(void) {
  snprintf(tdir, sizeof(tdir), "/tmp/gw_store_sqlite_test.XXXXXX");
  if (!mkdtemp(tdir)) {
    perror("mkdtemp");
    exit(2);
  }
  snprintf(tdb, sizeof(tdb), "%s/gw.db", tdir);
}

static void tmp_cleanup(void) {
  char p[512];
  struct dirent *de;
  DIR *d = opendir(tdir);

  if (d) {
    while ((de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
        snprintf(p, sizeof(p), "%s/%s", tdir, de->d_name);
        unlink(p);
      }
    }
    closedir(d);
  }
  rmdir(tdir);
}

static int store_open(gw_store **s, int busy_ms) {
  char err[512];
  int rv = gw_store_open(s, "sqlite", tdb, busy_ms, err, sizeof(err));

  if (rv != GW_OK) {
    printf("#   open %s: %s (%s)\n", tdb, gw_strerror(rv), err);
  }
  return rv;
}

/* A second connection that does not go through the store, to check what the
 * store claims from the outside. */
static sqlite3 *raw_open(void) {
  sqlite3 *db = NULL;

  if (sqlite3_open_v2(tdb, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    printf("#   raw open: %s\n", db ? sqlite3_errmsg(db) : "?");
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

/* The first column of the first row of |sql| as text ("" if none). */
static void raw_text(sqlite3 *db, const char *sql, char *out, size_t cap) {
  sqlite3_stmt *st = NULL;

  out[0] = '\0';
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    snprintf(out, cap, "error: %s", sqlite3_errmsg(db));
    return;
  }
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
    snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
}

static long long raw_int(sqlite3 *db, const char *sql) {
  char t[64];

  raw_text(db, sql, t, sizeof(t));
  return t[0] ? atoll(t) : -1;
}

static int raw_exec(sqlite3 *db, const char *sql) {
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

  if (rc != SQLITE_OK) {
    printf("#   raw exec \"%s\": %s\n", sql, sqlite3_errmsg(db));
  }
  return rc;
}

static long long file_size(const char *suffix) {
  char p[160];
  struct stat st;

  snprintf(p, sizeof(p), "%s%s", tdb, suffix);
  return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

static int file_mode(const char *suffix) {
  char p[160];
  struct stat st;

  snprintf(p, sizeof(p), "%s%s", tdb, suffix);
  return stat(p, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static long long now_ms(void) {
  struct timeval tv;

  gettimeofday(&tv, NULL);
  return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- settings and files ------------------------------------------------ */

static void test_fresh_database(void) {
  gw_store *s = NULL;
  sqlite3 *raw;
  char t[64];
  int version = -1;

  tmp_setup();
  if (store_open(&s, 1000) != GW_OK) {
    T_ASSERT(0);
    tmp_cleanup();
    return;
  }
  T_EQ_INT(gw_store_schema_version(s, &version), GW_OK);
  T_EQ_INT(version, gw_store_sqlite_migration_count());
  T_ASSERT(gw_store_sqlite_migration_count() >= 1);
  T_EQ_INT(gw_store_kv_put(s, "k", "v", 1), GW_OK);

  raw = raw_open();
  T_ASSERT(raw != NULL);
  if (raw) {
    /* WAL is a property of the file, so a fresh connection sees it. */
    raw_text(raw, "PRAGMA journal_mode", t, sizeof(t));
    T_EQ_STR(t, "wal");
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM schema_migrations"),
             gw_store_sqlite_migration_count());
    T_EQ_INT(raw_int(raw, "SELECT MAX(version) FROM schema_migrations"),
             gw_store_sqlite_migration_count());
    raw_text(raw, "SELECT description FROM schema_migrations WHERE version=1",
             t, sizeof(t));
    T_EQ_STR(t, "key/value table");
    /* applied_at is an ISO 8601 UTC time. */
    raw_text(raw, "SELECT applied_at FROM schema_migrations WHERE version=1", t,
             sizeof(t));
    T_EQ_INT(strlen(t), 20);
    T_ASSERT(t[10] == 'T' && t[19] == 'Z');
    /* The kv table has the documented columns; updated_at is set. */
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM pragma_table_info('kv') "
                          "WHERE name IN ('key','value','updated_at')"),
             3);
    T_ASSERT(raw_int(raw, "SELECT updated_at FROM kv WHERE key='k'") >
             1600000000);
    raw_text(raw, "SELECT typeof(value) FROM kv WHERE key='k'", t, sizeof(t));
    T_EQ_STR(t, "blob");
    sqlite3_close(raw);
  }
  gw_store_close(s);
  tmp_cleanup();
}

static void test_file_mode_0600(void) {
  gw_store *s = NULL;
  mode_t old = umask(0); /* the most permissive umask: 0600 must still hold */

  tmp_setup();
  T_EQ_INT(store_open(&s, 1000), GW_OK);
  umask(old);
  if (s) {
    T_EQ_INT(gw_store_kv_put(s, "k", "v", 1), GW_OK);
    T_EQ_INT(file_mode(""), 0600);
    /* SQLite gives the WAL and shared-memory files the database's mode. */
    T_EQ_INT(file_mode("-wal"), 0600);
    T_EQ_INT(file_mode("-shm"), 0600);
  }
  gw_store_close(s);
  tmp_cleanup();
}

static void test_missing_directory(void) {
  static char dummy;
  gw_store *sentinel = (gw_store *)(void *)&dummy;
  gw_store *s = sentinel;
  char path[256], dir[200], err[512];
  int rv;

  tmp_setup();
  snprintf(dir, sizeof(dir), "%s/no/such", tdir);
  snprintf(path, sizeof(path), "%s/gw.db", dir);
  rv = gw_store_open(&s, "sqlite", path, 1000, err, sizeof(err));
  T_EQ_INT(rv, GW_ERR_IO);
  T_ASSERT(s == sentinel);
  T_ASSERT(strstr(err, "does not exist") != NULL);
  T_ASSERT(strstr(err, dir) != NULL);
  /* and it was not created */
  T_ASSERT(access(dir, F_OK) != 0);
  if (rv == GW_OK) {
    gw_store_close(s);
  }
  tmp_cleanup();
}

static void test_not_a_database(void) {
  static const char junk[] = "this is not an SQLite database, it is a text "
                             "file that someone put where the store goes\n";
  gw_store *s = NULL;
  char err[512];
  int fd, rv;

  tmp_setup();
  fd = open(tdb, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  T_ASSERT(fd >= 0);
  for (int i = 0; fd >= 0 && i < 64; i++) {
    T_ASSERT(write(fd, junk, sizeof(junk) - 1) == (ssize_t)(sizeof(junk) - 1));
  }
  if (fd >= 0) {
    close(fd);
  }
  rv = gw_store_open(&s, "sqlite", tdb, 1000, err, sizeof(err));
  T_EQ_INT(rv, GW_ERR_STORE);
  T_ASSERT(s == NULL);
  T_ASSERT(strstr(err, "not a database") != NULL);
  if (rv == GW_OK) {
    gw_store_close(s);
  }
  tmp_cleanup();
}

/* ---- migrations -------------------------------------------------------- */

static void test_reopen_does_not_reapply(void) {
  gw_store *s = NULL;
  sqlite3 *raw;
  char t[64], buf[16];
  size_t len = 0;
  int version = -1;

  tmp_setup();
  if (store_open(&s, 1000) != GW_OK) {
    T_ASSERT(0);
    tmp_cleanup();
    return;
  }
  T_EQ_INT(gw_store_kv_put(s, "kept", "yes", 3), GW_OK);
  gw_store_close(s);
  s = NULL;

  /* Mark the recorded migration: re-applying it would fail (the table
   * exists) or rewrite the row. */
  raw = raw_open();
  T_ASSERT(raw != NULL);
  if (raw) {
    T_EQ_INT(raw_exec(raw, "UPDATE schema_migrations SET applied_at='marker'"),
             SQLITE_OK);
    sqlite3_close(raw);
  }

  for (int round = 0; round < 3; round++) {
    T_EQ_INT(store_open(&s, 1000), GW_OK);
    if (!s) {
      break;
    }
    T_EQ_INT(gw_store_schema_version(s, &version), GW_OK);
    T_EQ_INT(version, gw_store_sqlite_migration_count());
    T_EQ_INT(gw_store_kv_get(s, "kept", buf, sizeof(buf), &len), GW_OK);
    T_EQ_INT(len, 3);
    gw_store_close(s);
    s = NULL;
  }

  raw = raw_open();
  if (raw) {
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM schema_migrations"),
             gw_store_sqlite_migration_count());
    raw_text(raw, "SELECT DISTINCT applied_at FROM schema_migrations", t,
             sizeof(t));
    T_EQ_STR(t, "marker");
    sqlite3_close(raw);
  }
  tmp_cleanup();
}

static void test_future_schema_refused(void) {
  static char dummy;
  gw_store *sentinel = (gw_store *)(void *)&dummy;
  gw_store *s = NULL;
  sqlite3 *raw;
  char err[512], sql[160], want[64];
  int future = gw_store_sqlite_migration_count() + 1, rv;

  tmp_setup();
  T_EQ_INT(store_open(&s, 1000), GW_OK);
  gw_store_close(s);
  raw = raw_open();
  T_ASSERT(raw != NULL);
  if (!raw) {
    tmp_cleanup();
    return;
  }
  snprintf(sql, sizeof(sql),
           "INSERT INTO schema_migrations VALUES (%d, 'from the future', "
           "'2099-01-01T00:00:00Z')",
           future);
  T_EQ_INT(raw_exec(raw, sql), SQLITE_OK);
  sqlite3_close(raw);

  s = sentinel;
  rv = gw_store_open(&s, "sqlite", tdb, 1000, err, sizeof(err));
  T_EQ_INT(rv, GW_ERR_STORE);
  T_ASSERT(s == sentinel);
  T_ASSERT(strstr(err, "newer than this program knows") != NULL);
  snprintf(want, sizeof(want), "version %d", future);
  T_ASSERT(strstr(err, want) != NULL);
  if (rv == GW_OK) {
    gw_store_close(s);
  }

  /* Not downgraded: the future row is still there. */
  raw = raw_open();
  if (raw) {
    T_EQ_INT(raw_int(raw, "SELECT MAX(version) FROM schema_migrations"),
             future);
    sqlite3_close(raw);
  }
  tmp_cleanup();
}

/* Migration 2 creates the subscriber registry with the documented
 * columns, the civil-number index and the status check. */
static void test_subscriber_schema(void) {
  gw_store *s = NULL;
  sqlite3 *raw;
  char t[64];

  tmp_setup();
  if (store_open(&s, 1000) != GW_OK) {
    T_ASSERT(0);
    tmp_cleanup();
    return;
  }
  T_ASSERT(gw_store_sqlite_migration_count() >= 2);
  raw = raw_open();
  T_ASSERT(raw != NULL);
  if (raw) {
    raw_text(raw, "SELECT description FROM schema_migrations WHERE version=2",
             t, sizeof(t));
    T_EQ_STR(t, "subscriber registry");
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM pragma_table_info("
                          "'subscribers') WHERE name IN ('msisdn','civil_id',"
                          "'name','operator','status','cert_serial','cert_pem',"
                          "'behaviour','created_at','revoked_at',"
                          "'revocation_reason','last_signed_at')"),
             12);
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM pragma_index_list("
                          "'subscribers') WHERE name='subscribers_civil_id'"),
             1);
    /* The status column takes only the two states. */
    T_EQ_INT(sqlite3_exec(raw,
                          "INSERT INTO subscribers (msisdn, civil_id, name, "
                          "operator, status, cert_serial, cert_pem, "
                          "created_at) VALUES ('+1', '1', 'n', 'o', "
                          "'suspended', 's', 'p', 1)",
                          NULL, NULL, NULL),
             SQLITE_CONSTRAINT);
    T_EQ_INT(sqlite3_extended_errcode(raw), SQLITE_CONSTRAINT_CHECK);
    sqlite3_close(raw);
  }
  gw_store_close(s);
  tmp_cleanup();
}

/* A database written by the first release (schema 1, kv only) is brought
 * to the current schema on open, and its data is kept. */
static void test_upgrade_from_schema_1(void) {
  gw_store *s = NULL;
  gw_store_sub sub;
  sqlite3 *raw = NULL;
  char buf[32];
  size_t len = 0;
  int version = -1;

  tmp_setup();
  T_EQ_INT(sqlite3_open_v2(tdb, &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
           SQLITE_OK);
  T_EQ_INT(raw_exec(raw,
                    "PRAGMA journal_mode=WAL;"
                    "CREATE TABLE schema_migrations (version INTEGER PRIMARY "
                    "KEY, description TEXT NOT NULL, applied_at TEXT NOT "
                    "NULL);"
                    "INSERT INTO schema_migrations VALUES (1, 'key/value "
                    "table', '2024-01-01T00:00:00Z');"
                    "CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT "
                    "NULL, updated_at INTEGER NOT NULL);"
                    "INSERT INTO kv VALUES ('old', x'6f6c64', 1);"),
           SQLITE_OK);
  sqlite3_close(raw);
  chmod(tdb, 0600); /* as the store makes it; else it warns */

  T_EQ_INT(store_open(&s, 1000), GW_OK);
  if (s) {
    T_EQ_INT(gw_store_schema_version(s, &version), GW_OK);
    T_EQ_INT(version, gw_store_sqlite_migration_count());
    T_EQ_INT(gw_store_kv_get(s, "old", buf, sizeof(buf), &len), GW_OK);
    T_EQ_INT(len, 3);
    T_EQ_INT(gw_store_sub_get(s, "+96899000001", &sub), GW_ERR_NOT_FOUND);
    gw_store_close(s);
  }
  raw = raw_open();
  if (raw) {
    /* The old step was not re-applied: its row is the original one. */
    raw_text(raw, "SELECT applied_at FROM schema_migrations WHERE version=1",
             buf, sizeof(buf));
    T_EQ_STR(buf, "2024-01-01T00:00:00Z");
    sqlite3_close(raw);
  }
  tmp_cleanup();
}

/* Six migrations today: a new one must be counted here on purpose (and
 * documented in docs/store.md). */
static void test_migration_count(void) {
  T_EQ_INT(gw_store_sqlite_migration_count(), 6);
}

/* Migrations 3 to 5: relying parties, sign-in transactions, revoked
 * tokens, with their columns, indexes and checks. */
static void test_oidc_schema(void) {
  gw_store *s = NULL;
  gw_store_txn t;
  sqlite3 *raw;
  char t3[64], t4[64], t5[64];

  tmp_setup();
  if (store_open(&s, 1000) != GW_OK) {
    T_ASSERT(0);
    tmp_cleanup();
    return;
  }
  memset(&t, 0, sizeof(t));
  snprintf(t.id, sizeof(t.id), "t1");
  snprintf(t.client_id, sizeof(t.client_id), "rp");
  snprintf(t.state, sizeof(t.state), "created");
  T_EQ_INT(gw_store_txn_put(s, &t), GW_OK);
  raw = raw_open();
  T_ASSERT(raw != NULL);
  if (raw) {
    raw_text(raw, "SELECT description FROM schema_migrations WHERE version=3",
             t3, sizeof(t3));
    raw_text(raw, "SELECT description FROM schema_migrations WHERE version=4",
             t4, sizeof(t4));
    raw_text(raw, "SELECT description FROM schema_migrations WHERE version=5",
             t5, sizeof(t5));
    T_EQ_STR(t3, "relying parties");
    T_EQ_STR(t4, "sign-in transactions");
    T_EQ_STR(t5, "revoked tokens");
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM pragma_table_info('clients') "
                          "WHERE name IN ('client_id','name','secret_sha256',"
                          "'auth_methods','grant_types','scopes','resources',"
                          "'redirect_uris','ciba_mode',"
                          "'ciba_notification_endpoint','id_token_alg',"
                          "'resource_server','created_at')"),
             13);
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM pragma_table_info('auth_txn')"),
             20);
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM pragma_index_list('auth_txn') "
                          "WHERE name='auth_txn_expires_at'"),
             1);
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM pragma_index_list('auth_txn') "
                          "WHERE \"unique\" = 1 AND origin = 'u'"),
             1);
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM pragma_table_info("
                          "'revoked_tokens') WHERE name IN ('jti',"
                          "'client_id','exp')"),
             3);
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM pragma_index_list("
                          "'revoked_tokens') WHERE name='revoked_tokens_exp'"),
             1);
    /* No auth_req_id is NULL, not '' (UNIQUE allows many NULLs). */
    T_EQ_INT(raw_int(raw, "SELECT auth_req_id IS NULL FROM auth_txn "
                          "WHERE id='t1'"),
             1);
    /* The hashes are exactly 32 bytes. */
    T_EQ_INT(sqlite3_exec(raw,
                          "INSERT INTO clients VALUES ('x', 'x', x'00', '', "
                          "'', '', '', '', '', '', 'ES256', 0, 1)",
                          NULL, NULL, NULL),
             SQLITE_CONSTRAINT);
    T_EQ_INT(sqlite3_extended_errcode(raw), SQLITE_CONSTRAINT_CHECK);
    sqlite3_close(raw);
  }
  gw_store_close(s);
  tmp_cleanup();
}

/* A database of the previous release (schema 2: kv and subscribers, as
 * those migrations wrote them) is brought to the current schema on open;
 * its rows are kept and the new tables work. */
static void test_upgrade_from_schema_2(void) {
  gw_store *s = NULL;
  gw_store_sub sub;
  gw_store_client c, out;
  sqlite3 *raw = NULL;
  char buf[32];
  size_t len = 0;
  int version = -1;

  tmp_setup();
  T_EQ_INT(sqlite3_open_v2(tdb, &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
           SQLITE_OK);
  T_EQ_INT(
      raw_exec(raw,
               "PRAGMA journal_mode=WAL;"
               "CREATE TABLE schema_migrations (version INTEGER PRIMARY "
               "KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL);"
               "INSERT INTO schema_migrations VALUES (1, 'key/value table', "
               "'2024-01-01T00:00:00Z'), (2, 'subscriber registry', "
               "'2024-06-01T00:00:00Z');"
               "CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT "
               "NULL, updated_at INTEGER NOT NULL);"
               "INSERT INTO kv VALUES ('old', x'6f6c64', 1);"
               "CREATE TABLE subscribers (msisdn TEXT PRIMARY KEY, civil_id "
               "TEXT NOT NULL, name TEXT NOT NULL, operator TEXT NOT NULL, "
               "status TEXT NOT NULL CHECK (status IN ('active', "
               "'revoked')), cert_serial TEXT NOT NULL, cert_pem TEXT NOT "
               "NULL, behaviour TEXT NOT NULL DEFAULT '', created_at INTEGER "
               "NOT NULL, revoked_at INTEGER, revocation_reason TEXT, "
               "last_signed_at INTEGER);"
               "CREATE INDEX subscribers_civil_id ON subscribers (civil_id);"
               "INSERT INTO subscribers (msisdn, civil_id, name, operator, "
               "status, cert_serial, cert_pem, created_at) VALUES "
               "('+96899000001', '10000001', 'Salim', 'omantel', 'active', "
               "'01', 'pem', 1700000000);"),
      SQLITE_OK);
  sqlite3_close(raw);
  chmod(tdb, 0600); /* as the store makes it; else it warns */

  T_EQ_INT(store_open(&s, 1000), GW_OK);
  if (s) {
    T_EQ_INT(gw_store_schema_version(s, &version), GW_OK);
    T_EQ_INT(version, gw_store_sqlite_migration_count());
    T_EQ_INT(gw_store_kv_get(s, "old", buf, sizeof(buf), &len), GW_OK);
    T_EQ_INT(gw_store_sub_get(s, "+96899000001", &sub), GW_OK);
    T_EQ_STR(sub.name, "Salim");
    T_EQ_INT(sub.created_at, 1700000000);
    memset(&c, 0, sizeof(c));
    snprintf(c.client_id, sizeof(c.client_id), "demo-rp");
    snprintf(c.name, sizeof(c.name), "Demo RP");
    T_EQ_INT(gw_store_client_put(s, &c), GW_OK);
    T_EQ_INT(gw_store_client_get(s, "demo-rp", &out), GW_OK);
    T_EQ_INT(gw_store_revoked_put(s, "j", "demo-rp", 1), GW_OK);
    gw_store_close(s);
  }
  raw = raw_open();
  if (raw) {
    /* The old steps were not re-applied. */
    raw_text(raw, "SELECT applied_at FROM schema_migrations WHERE version=2",
             buf, sizeof(buf));
    T_EQ_STR(buf, "2024-06-01T00:00:00Z");
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM schema_migrations"),
             gw_store_sqlite_migration_count());
    sqlite3_close(raw);
  }
  tmp_cleanup();
}

/* A value that another program wrote past a field's cap is an error, never
 * cut silently; the handle stays usable. */
static void test_subscriber_oversized_column(void) {
  gw_store *s = NULL;
  gw_store_sub sub;
  sqlite3 *raw;

  tmp_setup();
  if (store_open(&s, 1000) != GW_OK) {
    T_ASSERT(0);
    tmp_cleanup();
    return;
  }
  raw = raw_open();
  T_ASSERT(raw != NULL);
  if (raw) {
    T_EQ_INT(raw_exec(raw, "INSERT INTO subscribers (msisdn, civil_id, name, "
                           "operator, status, cert_serial, cert_pem, "
                           "created_at) VALUES ('+96899000001', '1', "
                           "printf('%.300c', 'x'), 'omantel', 'active', "
                           "'01', 'pem', 1)"),
             SQLITE_OK);
    sqlite3_close(raw);
  }
  T_EQ_INT(gw_store_sub_get(s, "+96899000001", &sub), GW_ERR_STORE);
  T_ASSERT(strstr(gw_store_errmsg(s), "column name holds 300 bytes") != NULL);
  T_EQ_INT(gw_store_ping(s), GW_OK);
  gw_store_close(s);
  tmp_cleanup();
}

/* ---- busy -------------------------------------------------------------- */

static void test_busy_when_writer_holds_lock(void) {
  gw_store *s = NULL, *s2 = NULL;
  sqlite3 *raw;
  long long t0, dt;
  char buf[8], err[512];
  size_t len;

  tmp_setup();
  if (store_open(&s, 0) != GW_OK) {
    T_ASSERT(0);
    tmp_cleanup();
    return;
  }
  T_EQ_INT(gw_store_kv_put(s, "k", "old", 3), GW_OK);
  raw = raw_open();
  T_ASSERT(raw != NULL);
  if (!raw) {
    gw_store_close(s);
    tmp_cleanup();
    return;
  }
  T_EQ_INT(raw_exec(raw, "BEGIN IMMEDIATE"), SQLITE_OK);

  /* Timeout 0: fails at once with BUSY, not STORE. */
  T_EQ_INT(gw_store_kv_put(s, "k", "new", 3), GW_ERR_BUSY);
  T_ASSERT(gw_store_errmsg(s)[0] != '\0');
  /* WAL: readers are not blocked by the writer. */
  T_EQ_INT(gw_store_kv_get(s, "k", buf, sizeof(buf), &len), GW_OK);
  T_ASSERT(len == 3 && memcmp(buf, "old", 3) == 0);
  T_EQ_INT(gw_store_ping(s), GW_OK);

  /* Opening runs its migration check under the write lock: with a timeout
   * it waits that long, then reports BUSY with a reason. */
  t0 = now_ms();
  T_EQ_INT(gw_store_open(&s2, "sqlite", tdb, 300, err, sizeof(err)),
           GW_ERR_BUSY);
  dt = now_ms() - t0;
  T_ASSERT(dt >= 250);
  T_ASSERT(s2 == NULL);
  T_ASSERT(strstr(err, "locked") != NULL);
  gw_store_close(s2); /* in case it opened after all */

  T_EQ_INT(raw_exec(raw, "COMMIT"), SQLITE_OK);
  T_EQ_INT(gw_store_kv_put(s, "k", "new", 3), GW_OK);
  T_EQ_INT(gw_store_kv_get(s, "k", buf, sizeof(buf), &len), GW_OK);
  T_ASSERT(len == 3 && memcmp(buf, "new", 3) == 0);
  sqlite3_close(raw);
  gw_store_close(s);
  tmp_cleanup();
}

typedef struct release_arg {
  sqlite3 *db;
  int after_ms;
} release_arg;

static void *release_main(void *p) {
  release_arg *a = p;

  usleep((useconds_t)a->after_ms * 1000);
  sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
  return NULL;
}

/* Regression: with another connection holding the write lock on a new,
 * still empty database (rollback mode), "PRAGMA journal_mode = WAL" fails
 * with SQLITE_BUSY at once; SQLite does not run the busy handler for it.
 * This is the state that handles opening one new file together run into.
 * The store must wait for the lock within its busy timeout, as for any
 * write, instead of failing the open. */
static void test_wal_conversion_busy_ignores_busy_timeout(void) {
  release_arg ra;
  pthread_t th;
  gw_store *s = NULL;
  sqlite3 *raw = NULL;
  long long t0, dt;
  char t[16];
  int fd;

  tmp_setup();
  fd = open(tdb, O_RDWR | O_CREAT, 0600);
  T_ASSERT(fd >= 0);
  if (fd >= 0) {
    close(fd);
  }
  raw = raw_open();
  T_ASSERT(raw != NULL);
  if (!raw) {
    tmp_cleanup();
    return;
  }
  T_EQ_INT(raw_exec(raw, "BEGIN IMMEDIATE"), SQLITE_OK);
  ra.db = raw;
  ra.after_ms = 200;
  T_EQ_INT(pthread_create(&th, NULL, release_main, &ra), 0);

  t0 = now_ms();
  T_EQ_INT(store_open(&s, 5000), GW_OK);
  dt = now_ms() - t0;
  pthread_join(th, NULL);
  T_ASSERT(dt >= 150); /* it did wait for the lock */
  T_ASSERT(dt < 5000);
  if (s) {
    T_EQ_INT(gw_store_kv_put(s, "k", "v", 1), GW_OK);
  }
  raw_text(raw, "PRAGMA journal_mode", t, sizeof(t));
  T_EQ_STR(t, "wal");
  sqlite3_close(raw);
  gw_store_close(s);
  tmp_cleanup();
}

/* ---- durability -------------------------------------------------------- */

#define CRASH_KEYS 200

/* A process crash must not lose a committed write: a child commits
 * CRASH_KEYS puts, says so, and is SIGKILLed without closing the store (no
 * checkpoint: everything is still only in the WAL). The parent reopens the
 * database and must find every key. */
/* Child side: report to the parent through the pipe. */
static void child_say(int fd, const char *msg) {
  if (write(fd, msg, strlen(msg)) < 0) {
    _exit(3);
  }
}

static void test_sigkill_loses_no_committed_write(void) {
  int fds[2], status = 0;
  char msg[8] = {0}, key[32], val[32], buf[32];
  size_t len;
  gw_store *s = NULL;
  ssize_t n;
  pid_t pid;

  tmp_setup();
  T_ASSERT(pipe(fds) == 0);
  fflush(stdout);
  pid = fork();
  T_ASSERT(pid >= 0);
  if (pid < 0) {
    tmp_cleanup();
    return;
  }
  if (pid == 0) {
    close(fds[0]);
    if (store_open(&s, 5000) != GW_OK) {
      child_say(fds[1], "fail");
      _exit(1);
    }
    for (int i = 0; i < CRASH_KEYS; i++) {
      snprintf(key, sizeof(key), "crash:%d", i);
      snprintf(val, sizeof(val), "value-%d", i * 31);
      if (gw_store_kv_put(s, key, val, strlen(val)) != GW_OK) {
        child_say(fds[1], "fail");
        _exit(1);
      }
    }
    child_say(fds[1], "done");
    for (;;) {
      pause(); /* wait to be killed, store still open */
    }
  }
  close(fds[1]);
  n = read(fds[0], msg, 4);
  close(fds[0]);
  T_EQ_INT(n, 4);
  T_EQ_STR(msg, "done");
  kill(pid, SIGKILL);
  T_EQ_INT(waitpid(pid, &status, 0), pid);
  T_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  /* The writes are in the WAL, not yet in the database file: what is found
   * below comes from WAL recovery, the path a crash takes. */
  T_ASSERT(file_size("-wal") > 0);

  if (store_open(&s, 5000) != GW_OK) {
    T_ASSERT(0);
    tmp_cleanup();
    return;
  }
  int found = 0;
  for (int i = 0; i < CRASH_KEYS; i++) {
    snprintf(key, sizeof(key), "crash:%d", i);
    snprintf(val, sizeof(val), "value-%d", i * 31);
    if (gw_store_kv_get(s, key, buf, sizeof(buf), &len) == GW_OK &&
        len == strlen(val) && memcmp(buf, val, len) == 0) {
      found++;
    }
  }
  T_EQ_INT(found, CRASH_KEYS);
  gw_store_close(s);
  tmp_cleanup();
}

/* ---- concurrency ------------------------------------------------------- */

#define WRITER_THREADS 2
#define WRITER_PUTS 300
#define OPENER_THREADS 8

typedef struct writer_arg {
  int id;
  pthread_barrier_t *barrier;
  int open_rv;
  int failed;    /* puts that did not return GW_OK */
  int first_err; /* the first such code */
} writer_arg;

/* Each thread opens its own handle (the documented threading model) and
 * writes; the busy timeout must absorb every collision. */
static void *writer_main(void *p) {
  writer_arg *a = p;
  gw_store *s = NULL;
  char key[32], val[64], buf[64];
  size_t len;
  int rv;

  a->open_rv = store_open(&s, 10000);
  pthread_barrier_wait(a->barrier);
  if (a->open_rv != GW_OK) {
    return NULL;
  }
  for (int i = 0; i < WRITER_PUTS; i++) {
    snprintf(key, sizeof(key), "w%d:%d", a->id, i);
    snprintf(val, sizeof(val), "thread %d value %d", a->id, i);
    rv = gw_store_kv_put(s, key, val, strlen(val));
    if (rv == GW_OK) {
      /* Interleave a shared key too, written by both threads. */
      rv = gw_store_kv_put(s, "shared", val, strlen(val));
    }
    if (rv == GW_OK) {
      rv = gw_store_kv_get(s, key, buf, sizeof(buf), &len);
    }
    if (rv != GW_OK) {
      if (!a->failed) {
        a->first_err = rv;
      }
      a->failed++;
    }
  }
  gw_store_close(s);
  return NULL;
}

static void test_two_threads_write_concurrently(void) {
  pthread_t th[WRITER_THREADS];
  writer_arg args[WRITER_THREADS];
  pthread_barrier_t barrier;
  gw_store *s = NULL;
  sqlite3 *raw;

  tmp_setup();
  pthread_barrier_init(&barrier, NULL, WRITER_THREADS);
  for (int i = 0; i < WRITER_THREADS; i++) {
    memset(&args[i], 0, sizeof(args[i]));
    args[i].id = i;
    args[i].barrier = &barrier;
    T_EQ_INT(pthread_create(&th[i], NULL, writer_main, &args[i]), 0);
  }
  for (int i = 0; i < WRITER_THREADS; i++) {
    pthread_join(th[i], NULL);
    T_EQ_INT(args[i].open_rv, GW_OK);
    T_EQ_INT(args[i].failed, 0);
    T_EQ_INT(args[i].first_err, GW_OK);
  }
  pthread_barrier_destroy(&barrier);

  raw = raw_open();
  if (raw) {
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM kv WHERE key LIKE 'w%'"),
             WRITER_THREADS * WRITER_PUTS);
    sqlite3_close(raw);
  }
  T_EQ_INT(store_open(&s, 1000), GW_OK);
  gw_store_close(s);
  tmp_cleanup();
}

/* Single use across handles: two threads, each with its own handle (the
 * documented model), consume the same transaction at the same moment, for
 * many transactions. Exactly one of the two wins each time; the other
 * hears GW_ERR_EXISTS, never OK and never an error. */
#define CONSUME_ROUNDS 200

typedef struct consumer_arg {
  pthread_barrier_t *barrier;
  int open_rv;
  int won, lost, other; /* GW_OK, GW_ERR_EXISTS, anything else */
  int result[CONSUME_ROUNDS];
} consumer_arg;

static void *consumer_main(void *p) {
  consumer_arg *a = p;
  gw_store *s = NULL;
  char id[32];
  int rv;

  a->open_rv = store_open(&s, 10000);
  for (int r = 0; r < CONSUME_ROUNDS; r++) {
    pthread_barrier_wait(a->barrier);
    if (a->open_rv != GW_OK) {
      continue;
    }
    snprintf(id, sizeof(id), "txn-%d", r);
    rv = gw_store_txn_consume(s, id);
    a->result[r] = rv;
    if (rv == GW_OK) {
      a->won++;
    } else if (rv == GW_ERR_EXISTS) {
      a->lost++;
    } else {
      a->other++;
    }
  }
  gw_store_close(s);
  return NULL;
}

static void test_consume_once_from_two_threads(void) {
  pthread_t th[2];
  consumer_arg args[2];
  pthread_barrier_t barrier;
  gw_store *s = NULL;
  gw_store_txn t;
  int both = 0, neither = 0;

  tmp_setup();
  if (store_open(&s, 1000) != GW_OK) {
    T_ASSERT(0);
    tmp_cleanup();
    return;
  }
  memset(&t, 0, sizeof(t));
  snprintf(t.client_id, sizeof(t.client_id), "rp");
  snprintf(t.state, sizeof(t.state), "verified");
  for (int r = 0; r < CONSUME_ROUNDS; r++) {
    snprintf(t.id, sizeof(t.id), "txn-%d", r);
    T_EQ_INT(gw_store_txn_put(s, &t), GW_OK);
  }
  pthread_barrier_init(&barrier, NULL, 2);
  for (int i = 0; i < 2; i++) {
    memset(&args[i], 0, sizeof(args[i]));
    args[i].barrier = &barrier;
    T_EQ_INT(pthread_create(&th[i], NULL, consumer_main, &args[i]), 0);
  }
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    T_EQ_INT(args[i].open_rv, GW_OK);
    T_EQ_INT(args[i].other, 0);
  }
  pthread_barrier_destroy(&barrier);
  for (int r = 0; r < CONSUME_ROUNDS; r++) {
    int a = args[0].result[r] == GW_OK, b = args[1].result[r] == GW_OK;
    both += a && b;
    neither += !a && !b;
  }
  T_EQ_INT(both, 0);
  T_EQ_INT(neither, 0);
  T_EQ_INT(args[0].won + args[1].won, CONSUME_ROUNDS);
  T_EQ_INT(args[0].lost + args[1].lost, CONSUME_ROUNDS);
  gw_store_close(s);
  tmp_cleanup();
}

typedef struct opener_arg {
  pthread_barrier_t *barrier;
  int rv;
} opener_arg;

static void *opener_main(void *p) {
  opener_arg *a = p;
  gw_store *s = NULL;

  pthread_barrier_wait(a->barrier);
  a->rv = store_open(&s, 10000);
  if (a->rv == GW_OK) {
    a->rv = gw_store_kv_put(s, "opened", "1", 1);
  }
  gw_store_close(s);
  return NULL;
}

/* Many handles opening a database that does not exist yet, at the same
 * moment: all succeed, the file ends in WAL mode and the migrations are
 * applied exactly once. Repeated, because the races it covers (see
 * test_wal_conversion_busy_ignores_busy_timeout) hit only some rounds. */
#define OPEN_ROUNDS 40

static void test_concurrent_first_open(void) {
  pthread_t th[OPENER_THREADS];
  opener_arg args[OPENER_THREADS];
  pthread_barrier_t barrier;
  sqlite3 *raw;
  char t[16];
  int failed = 0, first_err = GW_OK;

  for (int round = 0; round < OPEN_ROUNDS; round++) {
    tmp_setup();
    pthread_barrier_init(&barrier, NULL, OPENER_THREADS);
    for (int i = 0; i < OPENER_THREADS; i++) {
      args[i].barrier = &barrier;
      args[i].rv = -999;
      T_EQ_INT(pthread_create(&th[i], NULL, opener_main, &args[i]), 0);
    }
    for (int i = 0; i < OPENER_THREADS; i++) {
      pthread_join(th[i], NULL);
      if (args[i].rv != GW_OK) {
        first_err = failed ? first_err : args[i].rv;
        failed++;
      }
    }
    pthread_barrier_destroy(&barrier);
    raw = raw_open();
    if (raw) {
      T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM schema_migrations"),
               gw_store_sqlite_migration_count());
      raw_text(raw, "PRAGMA journal_mode", t, sizeof(t));
      T_EQ_STR(t, "wal");
      sqlite3_close(raw);
    }
    tmp_cleanup();
  }
  T_EQ_INT(failed, 0);
  T_EQ_INT(first_err, GW_OK);
}

/* The same across processes: children opening one new file together. */
static void test_concurrent_first_open_processes(void) {
  pid_t pids[OPENER_THREADS];
  int status, ok = 0;
  sqlite3 *raw;

  tmp_setup();
  fflush(stdout);
  for (int i = 0; i < OPENER_THREADS; i++) {
    pids[i] = fork();
    if (pids[i] == 0) {
      gw_store *s = NULL;
      int rv = store_open(&s, 10000);
      if (rv == GW_OK) {
        rv = gw_store_kv_put(s, "opened", "1", 1);
      }
      gw_store_close(s);
      _exit(rv == GW_OK ? 0 : 1);
    }
    T_ASSERT(pids[i] > 0);
  }
  for (int i = 0; i < OPENER_THREADS; i++) {
    if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] &&
        WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      ok++;
    }
  }
  T_EQ_INT(ok, OPENER_THREADS);
  raw = raw_open();
  if (raw) {
    T_EQ_INT(raw_int(raw, "SELECT COUNT(*) FROM schema_migrations"),
             gw_store_sqlite_migration_count());
    sqlite3_close(raw);
  }
  tmp_cleanup();
}

int main(void) {
  /* Migration log lines would clutter the test output. */
  gw_log_min_level = GW_LOG_WARN;
  T_RUN(test_fresh_database);
  T_RUN(test_file_mode_0600);
  T_RUN(test_missing_directory);
  T_RUN(test_not_a_database);
  T_RUN(test_reopen_does_not_reapply);
  T_RUN(test_future_schema_refused);
  T_RUN(test_subscriber_schema);
  T_RUN(test_upgrade_from_schema_1);
  T_RUN(test_migration_count);
  T_RUN(test_oidc_schema);
  T_RUN(test_upgrade_from_schema_2);
  T_RUN(test_subscriber_oversized_column);
  T_RUN(test_busy_when_writer_holds_lock);
  T_RUN(test_wal_conversion_busy_ignores_busy_timeout);
  T_RUN(test_sigkill_loses_no_committed_write);
  T_RUN(test_two_threads_write_concurrently);
  T_RUN(test_consume_once_from_two_threads);
  T_RUN(test_concurrent_first_open);
  T_RUN(test_concurrent_first_open_processes);
  return T_DONE();
}
