/* gw_audit_test.c — the audit log: the hash of a row against a vector
 * built by hand, the writer thread (events from several threads, batches,
 * checkpoints by rows and by time, restart continuing the chain, a full
 * queue recorded as audit.dropped, argument rules) and the verifier (an
 * intact chain, an edited row, a rewritten chain caught by its checkpoint,
 * deleted rows, a forged signature, a checkpoint by another key).
 *
 * `gw_audit_test --make-db DB KEYDIR N` writes N events with a checkpoint
 * every 10 rows and the public key to KEYDIR/es256.pem, for
 * tests/integration/audit.sh. */
#include "gw_audit.h"

#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "harness.h"

static char tdir[64], tdb[128];
static char backend[] = "sqlite";
static gw_config cfg;
static gw_signer *signer;

static void tmp_setup(void) {
  snprintf(tdir, sizeof(tdir), "/tmp/gw_audit_test.XXXXXX");
  if (!mkdtemp(tdir)) {
    perror("mkdtemp");
    exit(2);
  }
  snprintf(tdb, sizeof(tdb), "%s/gw.db", tdir);
  memset(&cfg, 0, sizeof(cfg));
  cfg.store_backend = backend;
  cfg.store_path = tdb;
  cfg.store_busy_timeout_ms = 2000;
}

static void tmp_cleanup(void) {
  char p[512];
  struct dirent *de;
  DIR *d = opendir(tdir);

  while (d && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
      snprintf(p, sizeof(p), "%s/%s", tdir, de->d_name);
      unlink(p);
    }
  }
  if (d) {
    closedir(d);
  }
  rmdir(tdir);
}

static char *pem_of(EVP_PKEY *k, int private) {
  BIO *b = BIO_new(BIO_s_mem());
  char *data = NULL, *s = NULL;
  long len;

  if (b && (private ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
                    : PEM_write_bio_PUBKEY(b, k))) {
    len = BIO_get_mem_data(b, &data);
    s = strndup(data, (size_t)len);
  }
  BIO_free(b);
  return s;
}

/* A signer from a fresh P-256 key, its public half written to
 * |dir|/es256.pem. */
static gw_signer *make_signer(const char *dir) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  char *priv = k ? pem_of(k, 1) : NULL, *pub = k ? pem_of(k, 0) : NULL;
  char path[256], err[256];
  gw_signer *s = NULL;
  FILE *f;

  snprintf(path, sizeof(path), "%s/es256.pem", dir);
  f = fopen(path, "w");
  if (f && pub) {
    fputs(pub, f);
  }
  if (f) {
    fclose(f);
  }
  if (!priv || gw_signer_new_pem(&s, priv, NULL, err, sizeof(err)) != GW_OK) {
    s = NULL;
  }
  free(priv);
  free(pub);
  EVP_PKEY_free(k);
  return s;
}

static void put_be(unsigned char *p, unsigned long long v, int n) {
  for (int i = n - 1; i >= 0; i--, v >>= 8) {
    p[i] = (unsigned char)v;
  }
}

/* ---- the hash -------------------------------------------------------------
 */

static void test_hash_vector(void) {
  unsigned char prev[32], buf[256], want[32], got[32];
  size_t o = 0;

  memset(prev, 0xab, sizeof(prev));
  memcpy(buf, prev, 32);
  o = 32;
  put_be(buf + o, 7, 8);
  put_be(buf + o + 8, 1700000000123LL, 8);
  o += 16;
  put_be(buf + o, 4, 4);
  memcpy(buf + o + 4, "kind", 4);
  o += 8;
  put_be(buf + o, 0, 4);
  o += 4;
  put_be(buf + o, 2, 4);
  memcpy(buf + o + 4, "{}", 2);
  o += 6;
  EVP_Digest(buf, o, want, NULL, EVP_sha256(), NULL);
  gw_audit_hash(prev, 7, 1700000000123LL, "kind", "", "{}", got);
  T_ASSERT(memcmp(got, want, 32) == 0);
  /* The length prefixes separate fields: moving a byte changes the hash. */
  gw_audit_hash(prev, 7, 1700000000123LL, "kin", "d", "{}", want);
  T_ASSERT(memcmp(got, want, 32) != 0);
}

/* ---- writing
 * ----------------------------------------------------------------- */

static gw_audit *audit_open(gw_signer *s, long long rows, long long ms,
                            size_t qmax) {
  gw_audit_opts o = {qmax, rows, ms};
  gw_audit *a = NULL;
  char err[256];
  int rv = gw_audit_new(&a, &cfg, s, &o, err, sizeof(err));

  T_EQ_INT(rv, GW_OK);
  if (rv != GW_OK) {
    printf("#   audit_new: %s\n", err);
  }
  return a;
}

static void *events_thread(void *arg) {
  gw_audit *a = arg;
  char sub[32];

  for (int i = 0; i < 10; i++) {
    snprintf(sub, sizeof(sub), "1000000%d", i);
    gw_audit_event(a, "token.issued", sub,
                   json_pack("{s:s, s:s, s:i}", "client", "demo-rp", "jti",
                             "abc", "i", i));
  }
  return NULL;
}

static void counts(long long *rows, long long *cps) {
  gw_store *s = NULL;
  char err[256];

  *rows = *cps = -1;
  if (gw_store_open(&s, "sqlite", tdb, 1000, err, sizeof(err)) == GW_OK) {
    gw_store_audit_count(s, rows, cps);
  }
  gw_store_close(s);
}

static int verify(long long from, gw_audit_report *rep) {
  gw_store *s = NULL;
  char err[256];
  int rv = gw_store_open(&s, "sqlite", tdb, 1000, err, sizeof(err));

  if (rv == GW_OK) {
    rv = gw_audit_verify(s, tdir, from, rep);
  }
  gw_store_close(s);
  return rv;
}

static void sql(const char *q) {
  sqlite3 *db = NULL;
  char *e = NULL;

  T_EQ_INT(sqlite3_open(tdb, &db), SQLITE_OK);
  T_EQ_INT(sqlite3_exec(db, q, NULL, NULL, &e), SQLITE_OK);
  if (e) {
    printf("#   %s: %s\n", q, e);
  }
  sqlite3_free(e);
  sqlite3_close(db);
}

/* 40 events from 4 threads, a checkpoint every 10 rows. */
static gw_audit *write_40(void) {
  gw_audit *a = audit_open(signer, 10, 0, 0);
  pthread_t t[4];

  for (int i = 0; i < 4; i++) {
    pthread_create(&t[i], NULL, events_thread, a);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
  }
  return a;
}

static void test_chain_and_checkpoints(void) {
  gw_audit_report rep;
  long long rows, cps, cps_before;

  tmp_setup();
  signer = make_signer(tdir);
  T_ASSERT(signer != NULL);
  gw_audit_del(write_40());
  counts(&rows, &cps);
  T_EQ_INT(rows, 40);
  T_ASSERT(cps >= 1 && cps <= 40); /* one per batch at most */
  T_EQ_INT(verify(1, &rep), GW_OK);
  T_EQ_INT(rep.rows, 40);
  T_EQ_INT(rep.checkpoints, cps);
  T_EQ_INT(rep.last_checkpoint, 40); /* the final one of gw_audit_del */

  /* A restart continues the chain. */
  cps_before = cps;
  gw_audit *a = audit_open(signer, 10, 0, 0);
  gw_audit_event(a, "session.created", "10000001", NULL);
  gw_audit_del(a);
  counts(&rows, &cps);
  T_EQ_INT(rows, 41);
  T_EQ_INT(cps, cps_before + 1);
  T_EQ_INT(verify(1, &rep), GW_OK);
  T_EQ_INT(rep.last_checkpoint, 41);
  T_EQ_INT(verify(30, &rep), GW_OK);
  T_EQ_INT(rep.first_seq, 30);
  T_EQ_INT(rep.rows, 12);

  /* One edited row is named. */
  sql("UPDATE audit SET data = '{}' WHERE seq = 5");
  T_EQ_INT(verify(1, &rep), GW_ERR_INVALID);
  T_EQ_INT(rep.bad_seq, 5);
  T_ASSERT(strstr(rep.reason, "row 5: hash mismatch") != NULL);
  /* From a later row the damage is out of sight. */
  T_EQ_INT(verify(6, &rep), GW_OK);
  gw_signer_del(signer);
  tmp_cleanup();
}

/* Someone who rewrites row 5 and recomputes every later hash is caught by
 * the first checkpoint at or after row 5. */
static void test_rewritten_chain(void) {
  gw_audit_report rep;
  unsigned char prev[32], h[32];
  char q[512], hex[65];
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;

  tmp_setup();
  signer = make_signer(tdir);
  gw_audit_del(write_40());
  sql("UPDATE audit SET data = '{\"forged\":1}' WHERE seq = 5");
  sqlite3_open(tdb, &db);
  sqlite3_prepare_v2(
      db,
      "SELECT seq, ts, kind, subject, data, prev_hash FROM audit "
      "WHERE seq >= 5 ORDER BY seq",
      -1, &st, NULL);
  T_EQ_INT(sqlite3_step(st), SQLITE_ROW);
  memcpy(prev, sqlite3_column_blob(st, 5), 32);
  do {
    gw_audit_hash(prev, sqlite3_column_int64(st, 0),
                  sqlite3_column_int64(st, 1),
                  (const char *)sqlite3_column_text(st, 2),
                  (const char *)sqlite3_column_text(st, 3),
                  (const char *)sqlite3_column_text(st, 4), h);
    for (int i = 0; i < 32; i++) {
      snprintf(hex + 2 * i, 3, "%02x", h[i]);
    }
    snprintf(q, sizeof(q),
             "UPDATE audit SET hash = x'%s' WHERE seq = %lld;"
             "UPDATE audit SET prev_hash = x'%s' WHERE seq = %lld",
             hex, (long long)sqlite3_column_int64(st, 0), hex,
             (long long)sqlite3_column_int64(st, 0) + 1);
    sqlite3_exec(db, q, NULL, NULL, NULL);
    memcpy(prev, h, 32);
  } while (sqlite3_step(st) == SQLITE_ROW);
  sqlite3_finalize(st);
  sqlite3_close(db);
  T_EQ_INT(verify(1, &rep), GW_ERR_INVALID);
  T_ASSERT(rep.bad_seq >= 5 && rep.bad_seq <= 40);
  T_ASSERT(strstr(rep.reason, "the chain differs from the signed one") != NULL);
  printf("#   %s\n", rep.reason);
  gw_signer_del(signer);
  tmp_cleanup();
}

static void test_deleted_rows(void) {
  gw_audit_report rep;

  tmp_setup();
  signer = make_signer(tdir);
  gw_audit_del(write_40());
  /* The last rows: caught by the final checkpoint at 40. */
  sql("DELETE FROM audit WHERE seq > 35");
  T_EQ_INT(verify(1, &rep), GW_ERR_INVALID);
  T_ASSERT(strstr(rep.reason, "rows after the last row 35 are missing") !=
           NULL);
  /* Rows in the middle: a gap. */
  sql("DELETE FROM audit WHERE seq = 20");
  T_EQ_INT(verify(1, &rep), GW_ERR_INVALID);
  T_EQ_INT(rep.bad_seq, 20);
  /* The first rows. */
  sql("DELETE FROM audit WHERE seq = 1");
  T_EQ_INT(verify(1, &rep), GW_ERR_INVALID);
  T_EQ_INT(rep.bad_seq, 2);
  gw_signer_del(signer);
  tmp_cleanup();
}

static void test_forged_checkpoint(void) {
  gw_audit_report rep;
  gw_signer *other;
  char sub[256];

  tmp_setup();
  signer = make_signer(tdir);
  gw_audit_del(write_40());
  T_EQ_INT(verify(1, &rep), GW_OK);
  /* One signature byte changed. */
  sql("UPDATE audit_checkpoints SET jws = substr(jws, 1, length(jws) - 2) || "
      "CASE WHEN substr(jws, -2, 1) = 'A' THEN 'B' ELSE 'A' END || "
      "substr(jws, -1) WHERE seq = (SELECT MIN(seq) FROM audit_checkpoints)");
  T_EQ_INT(verify(1, &rep), GW_ERR_INVALID);
  T_ASSERT(strstr(rep.reason, ": bad signature") != NULL);
  gw_signer_del(signer);
  tmp_cleanup();

  /* A whole log signed by another key, whose file is not in the
   * directory, claiming the kid of the trusted one. */
  tmp_setup();
  signer = make_signer(tdir);
  snprintf(sub, sizeof(sub), "%s/other", tdir);
  mkdir(sub, 0700);
  other = make_signer(sub);
  gw_audit_del(write_40());
  gw_signer *keep = signer;
  signer = other;
  gw_audit *a = audit_open(other, 10, 0, 0);
  gw_audit_event(a, "token.revoked", "jti-1", NULL);
  gw_audit_del(a);
  T_EQ_INT(verify(1, &rep), GW_ERR_INVALID);
  T_EQ_INT(rep.bad_seq, 41);
  T_ASSERT(strstr(rep.reason, "checkpoint at 41: bad signature") != NULL);
  snprintf(sub, sizeof(sub), "%s/other/es256.pem", tdir);
  unlink(sub);
  snprintf(sub, sizeof(sub), "%s/other", tdir);
  rmdir(sub);
  gw_signer_del(other);
  gw_signer_del(keep);
  tmp_cleanup();
}

static void test_checkpoint_by_time(void) {
  long long rows = 0, cps = 0;
  gw_audit *a;

  tmp_setup();
  signer = make_signer(tdir);
  a = audit_open(signer, 1000, 50, 0);
  gw_audit_event(a, "signin.begin", "10000001", NULL);
  gw_audit_event(a, "signin.end", "10000001",
                 json_pack("{s:s}", "state", "done"));
  for (int i = 0; i < 100 && cps < 1; i++) {
    usleep(20000);
    counts(&rows, &cps);
  }
  T_EQ_INT(rows, 2);
  T_EQ_INT(cps, 1); /* before gw_audit_del, by the 50 ms timer */
  gw_audit_del(a);
  counts(&rows, &cps);
  T_EQ_INT(cps, 1); /* nothing new to cover */
  gw_signer_del(signer);
  tmp_cleanup();
}

static void test_no_signer(void) {
  gw_audit_report rep;
  long long rows, cps;

  tmp_setup();
  signer = make_signer(tdir); /* only for the key file */
  gw_audit *a = audit_open(NULL, 10, 0, 0);
  for (int i = 0; i < 25; i++) {
    gw_audit_event(a, "refresh.rotated", "10000001", NULL);
  }
  gw_audit_del(a);
  counts(&rows, &cps);
  T_EQ_INT(rows, 25);
  T_EQ_INT(cps, 0);
  T_EQ_INT(verify(1, &rep), GW_OK);
  T_EQ_INT(rep.last_checkpoint, 0);
  gw_signer_del(signer);
  tmp_cleanup();
}

/* The writer is stuck behind another writer's lock: the queue fills, the
 * rest is dropped and recorded once the store is back. */
static void test_queue_full_recorded(void) {
  gw_audit_report rep;
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  gw_audit *a;

  tmp_setup();
  signer = make_signer(tdir);
  cfg.store_busy_timeout_ms = 100;
  a = audit_open(signer, 1000, 0, 4);
  sqlite3_open(tdb, &db);
  sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  for (int i = 0; i < 50; i++) {
    gw_audit_event(a, "signin.begin", "x", NULL);
  }
  T_ASSERT(gw_audit_dropped(a) >= 40);
  usleep(150000);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  gw_audit_del(a);
  sqlite3_prepare_v2(db,
                     "SELECT data FROM audit WHERE kind = 'audit.dropped' "
                     "ORDER BY seq LIMIT 1",
                     -1, &st, NULL);
  T_EQ_INT(sqlite3_step(st), SQLITE_ROW);
  T_ASSERT(
      strncmp((const char *)sqlite3_column_text(st, 0), "{\"count\":", 9) == 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  T_EQ_INT(verify(1, &rep), GW_OK);
  gw_signer_del(signer);
  tmp_cleanup();
}

static void test_event_arguments(void) {
  char big[GW_STORE_AUDIT_DATA_MAX + 10];
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  gw_audit *a;

  /* A NULL log is a no-op that still releases the data (ASan: no leak). */
  gw_audit_event(NULL, "token.issued", "x", json_object());
  tmp_setup();
  a = audit_open(NULL, 10, 0, 0);
  gw_audit_event(a, "", "x", json_object());
  gw_audit_event(a, "bad kind", "x", NULL);
  gw_audit_event(a, NULL, "x", NULL);
  T_EQ_INT(gw_audit_dropped(a), 3);
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  gw_audit_event(a, "session.ended", "ab\x01\n\xc3\xa9",
                 json_pack("{s:s}", "detail", big));
  gw_audit_del(a);
  sqlite3_open(tdb, &db);
  sqlite3_prepare_v2(db,
                     "SELECT subject, data FROM audit WHERE kind = "
                     "'session.ended'",
                     -1, &st, NULL);
  T_EQ_INT(sqlite3_step(st), SQLITE_ROW);
  T_EQ_STR((const char *)sqlite3_column_text(st, 0), "ab????");
  T_ASSERT(strncmp((const char *)sqlite3_column_text(st, 1),
                   "{\"truncated\":", 13) == 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  tmp_cleanup();
}

/* ---- --make-db, for tests/integration/audit.sh ------------------------ */

static int make_db(const char *db, const char *keydir, int n) {
  gw_audit_opts o = {0, 10, 0};
  gw_audit *a = NULL;
  char err[256];
  gw_signer *s = make_signer(keydir);

  memset(&cfg, 0, sizeof(cfg));
  cfg.store_backend = backend;
  cfg.store_path = (char *)db;
  cfg.store_busy_timeout_ms = 2000;
  if (!s || gw_audit_new(&a, &cfg, s, &o, err, sizeof(err)) != GW_OK) {
    fprintf(stderr, "make-db: %s\n", s ? err : "no signer");
    gw_signer_del(s);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    gw_audit_event(a, i % 2 ? "signin.end" : "signin.begin", "10000001",
                   json_pack("{s:i}", "i", i));
    if (i % 10 == 9) {
      usleep(100000); /* let the writer catch up: a checkpoint per 10 */
    }
  }
  gw_audit_del(a);
  gw_signer_del(s);
  return 0;
}

int main(int argc, char **argv) {
  gw_log_min_level = GW_LOG_ERROR + 1; /* the test provokes errors */
  if (argc == 5 && strcmp(argv[1], "--make-db") == 0) {
    return make_db(argv[2], argv[3], atoi(argv[4]));
  }
  T_RUN(test_hash_vector);
  T_RUN(test_chain_and_checkpoints);
  T_RUN(test_rewritten_chain);
  T_RUN(test_deleted_rows);
  T_RUN(test_forged_checkpoint);
  T_RUN(test_checkpoint_by_time);
  T_RUN(test_no_signer);
  T_RUN(test_queue_full_recorded);
  T_RUN(test_event_arguments);
  return T_DONE();
}
