/* gw_store_test.c — the store interface: backend selection, argument
 * checks, caps and the key/value contract, through the public API only.
 * The subscriber registry, relying parties, sign-in transactions and
 * revoked tokens: round trips, field checks, uniqueness, single use, purge.
 * SQLite specifics (WAL, migrations, crash durability, concurrency) are in
 * gw_store_sqlite_test.c. */
#include "gw_store.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_err.h"
#include "gw_log.h"
#include "harness.h"

/* ---- a temporary directory per test ------------------------------------ */

static char tdir[64];
static char tdb[128];

static void tmp_setup(void) {
  snprintf(tdir, sizeof(tdir), "/tmp/gw_store_test.XXXXXX");
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

/* Opens the store on a fresh temporary database; NULL on failure. */
static gw_store *open_tmp(void) {
  gw_store *s = NULL;
  char err[256];
  int rv;

  tmp_setup();
  rv = gw_store_open(&s, "sqlite", tdb, 1000, err, sizeof(err));
  T_EQ_INT(rv, GW_OK);
  if (rv != GW_OK) {
    printf("#   open: %s\n", err);
  }
  return s;
}

static void close_tmp(gw_store *s) {
  gw_store_close(s);
  tmp_cleanup();
}

/* ---- backend selection and open arguments ------------------------------ */

static void test_unknown_backend(void) {
  static char dummy;
  gw_store *sentinel = (gw_store *)(void *)&dummy; /* must stay untouched */
  gw_store *s = sentinel;
  char err[256];
  int rv;

  tmp_setup();
  rv = gw_store_open(&s, "postgres", tdb, 1000, err, sizeof(err));
  T_EQ_INT(rv, GW_ERR_INVALID);
  T_ASSERT(s == sentinel);
  T_ASSERT(strstr(err, "unknown backend") != NULL);
  T_ASSERT(strstr(err, "\"postgres\"") != NULL);
  T_ASSERT(strstr(err, "known backends: sqlite") != NULL);
  /* Nothing was created for a backend that does not exist. */
  T_ASSERT(access(tdb, F_OK) != 0);
  /* The name is matched exactly. */
  T_EQ_INT(gw_store_open(&s, "SQLite", tdb, 1000, err, sizeof(err)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_store_open(&s, "", tdb, 1000, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(s == sentinel);
  tmp_cleanup();
}

static void test_open_bad_arguments(void) {
  gw_store *s = NULL;
  char err[256];

  tmp_setup();
  T_EQ_INT(gw_store_open(&s, NULL, tdb, 1000, err, sizeof(err)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_store_open(NULL, "sqlite", tdb, 1000, err, sizeof(err)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_store_open(&s, "sqlite", NULL, 1000, err, sizeof(err)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_store_open(&s, "sqlite", "", 1000, err, sizeof(err)),
           GW_ERR_INVALID);
  T_ASSERT(strstr(err, "empty database path") != NULL);
  T_EQ_INT(gw_store_open(&s, "sqlite", tdb, -1, err, sizeof(err)),
           GW_ERR_INVALID);
  T_ASSERT(strstr(err, "negative busy timeout") != NULL);
  /* No error buffer is fine too. */
  T_EQ_INT(gw_store_open(&s, "nope", tdb, 1000, NULL, 0), GW_ERR_INVALID);
  T_ASSERT(s == NULL);
  /* A short error buffer is truncated and terminated. */
  memset(err, 'x', sizeof(err));
  T_EQ_INT(gw_store_open(&s, "nope", tdb, 1000, err, 8), GW_ERR_INVALID);
  T_EQ_INT(strlen(err), 7);
  tmp_cleanup();
}

static void test_close_null_and_names(void) {
  gw_store *s;

  gw_store_close(NULL);
  T_EQ_STR(gw_store_backend_name(NULL), "none");
  T_EQ_INT(gw_store_ping(NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_kv_put(NULL, "k", "v", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_kv_get(NULL, "k", NULL, 0, NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_kv_del(NULL, "k"), GW_ERR_INVALID);

  s = open_tmp();
  if (!s) {
    tmp_cleanup();
    return;
  }
  T_EQ_STR(gw_store_backend_name(s), "sqlite");
  T_EQ_INT(gw_store_ping(s), GW_OK);
  T_EQ_STR(gw_store_errmsg(s), "");
  T_EQ_INT(gw_store_schema_version(s, NULL), GW_ERR_INVALID);
  close_tmp(s);
}

/* ---- key/value contract ------------------------------------------------ */

static void test_kv_round_trip(void) {
  static const unsigned char bin[] = {0, 1, 2, 0xff, 0, 'x', 0};
  unsigned char buf[64];
  size_t len = 0;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  T_EQ_INT(gw_store_kv_put(s, "jwks:current", "first", 5), GW_OK);
  T_EQ_INT(gw_store_kv_get(s, "jwks:current", buf, sizeof(buf), &len), GW_OK);
  T_EQ_INT(len, 5);
  T_ASSERT(memcmp(buf, "first", 5) == 0);

  /* Put replaces. */
  T_EQ_INT(gw_store_kv_put(s, "jwks:current", "second!", 7), GW_OK);
  T_EQ_INT(gw_store_kv_get(s, "jwks:current", buf, sizeof(buf), &len), GW_OK);
  T_EQ_INT(len, 7);
  T_ASSERT(memcmp(buf, "second!", 7) == 0);

  /* Values are bytes: embedded NULs survive. */
  T_EQ_INT(gw_store_kv_put(s, "bin", bin, sizeof(bin)), GW_OK);
  memset(buf, 0xaa, sizeof(buf));
  T_EQ_INT(gw_store_kv_get(s, "bin", buf, sizeof(buf), &len), GW_OK);
  T_EQ_INT(len, sizeof(bin));
  T_ASSERT(memcmp(buf, bin, sizeof(bin)) == 0);

  /* An empty value is a value, not an absence; NULL is allowed for n = 0. */
  T_EQ_INT(gw_store_kv_put(s, "empty", NULL, 0), GW_OK);
  len = 99;
  T_EQ_INT(gw_store_kv_get(s, "empty", buf, sizeof(buf), &len), GW_OK);
  T_EQ_INT(len, 0);
  T_EQ_INT(gw_store_kv_get(s, "empty", NULL, 0, NULL), GW_OK);

  /* Delete, then it is gone; deleting again is NOT_FOUND. */
  T_EQ_INT(gw_store_kv_del(s, "jwks:current"), GW_OK);
  T_EQ_INT(gw_store_kv_get(s, "jwks:current", buf, sizeof(buf), &len),
           GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_kv_del(s, "jwks:current"), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_kv_get(s, "never-written", buf, sizeof(buf), &len),
           GW_ERR_NOT_FOUND);
  /* Other keys are untouched by the delete. */
  T_EQ_INT(gw_store_kv_get(s, "bin", buf, sizeof(buf), &len), GW_OK);
  close_tmp(s);
}

static void test_kv_buffer_too_small(void) {
  char buf[8];
  size_t len = 0;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  T_EQ_INT(gw_store_kv_put(s, "k", "0123456789", 10), GW_OK);
  memset(buf, '#', sizeof(buf));
  T_EQ_INT(gw_store_kv_get(s, "k", buf, sizeof(buf), &len), GW_ERR_TOO_LARGE);
  T_EQ_INT(len, 10);                         /* tells the size needed */
  T_ASSERT(memcmp(buf, "########", 8) == 0); /* and leaves buf alone */
  T_ASSERT(strstr(gw_store_errmsg(s), "does not fit") != NULL);

  /* A size query: no buffer. */
  len = 0;
  T_EQ_INT(gw_store_kv_get(s, "k", NULL, 0, &len), GW_ERR_TOO_LARGE);
  T_EQ_INT(len, 10);
  /* A NULL buffer with a non-zero cap is a caller bug. */
  T_EQ_INT(gw_store_kv_get(s, "k", NULL, 4, &len), GW_ERR_INVALID);

  /* Exactly the right size fits. */
  char exact[10];
  T_EQ_INT(gw_store_kv_get(s, "k", exact, sizeof(exact), &len), GW_OK);
  T_ASSERT(memcmp(exact, "0123456789", 10) == 0);
  /* The handle is usable after the TOO_LARGE (the statement was reset). */
  T_EQ_INT(gw_store_kv_put(s, "k2", "v", 1), GW_OK);
  T_EQ_INT(gw_store_ping(s), GW_OK);
  close_tmp(s);
}

static void test_kv_key_rules(void) {
  char key[GW_STORE_KEY_MAX + 2];
  char buf[8];
  size_t len;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  memset(key, 'k', sizeof(key));
  key[GW_STORE_KEY_MAX] = '\0'; /* exactly at the cap: fine */
  T_EQ_INT(gw_store_kv_put(s, key, "v", 1), GW_OK);
  T_EQ_INT(gw_store_kv_get(s, key, buf, sizeof(buf), &len), GW_OK);
  T_EQ_INT(gw_store_kv_del(s, key), GW_OK);

  key[GW_STORE_KEY_MAX] = 'k'; /* one over: refused by every call */
  key[GW_STORE_KEY_MAX + 1] = '\0';
  T_EQ_INT(gw_store_kv_put(s, key, "v", 1), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "key length") != NULL);
  T_EQ_INT(gw_store_kv_get(s, key, buf, sizeof(buf), &len), GW_ERR_INVALID);
  T_EQ_INT(gw_store_kv_del(s, key), GW_ERR_INVALID);

  T_EQ_INT(gw_store_kv_put(s, "", "v", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_kv_put(s, NULL, "v", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_kv_put(s, "tab\there", "v", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_kv_put(s, "nl\n", "v", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_kv_put(s, "del\x7f", "v", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_kv_put(s, "caf\xc3\xa9", "v", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_kv_put(s, "spaces and: punctuation!~", "v", 1), GW_OK);
  /* A NULL value with a length is a caller bug. */
  T_EQ_INT(gw_store_kv_put(s, "k", NULL, 3), GW_ERR_INVALID);
  T_EQ_INT(gw_store_kv_get(s, "k", buf, sizeof(buf), &len), GW_ERR_NOT_FOUND);
  close_tmp(s);
}

static void test_kv_value_cap(void) {
  unsigned char *big = malloc(GW_STORE_VALUE_MAX + 1);
  unsigned char *back = malloc(GW_STORE_VALUE_MAX + 1);
  size_t len = 0;
  gw_store *s = open_tmp();

  if (!s || !big || !back) {
    T_ASSERT(big && back);
    free(big);
    free(back);
    close_tmp(s);
    return;
  }
  for (size_t i = 0; i <= GW_STORE_VALUE_MAX; i++) {
    big[i] = (unsigned char)(i * 7 + 3);
  }
  /* At the cap: stored and read back whole. */
  T_EQ_INT(gw_store_kv_put(s, "big", big, GW_STORE_VALUE_MAX), GW_OK);
  T_EQ_INT(gw_store_kv_get(s, "big", back, GW_STORE_VALUE_MAX + 1, &len),
           GW_OK);
  T_EQ_INT(len, GW_STORE_VALUE_MAX);
  T_ASSERT(memcmp(big, back, GW_STORE_VALUE_MAX) == 0);

  /* One over: refused, and the stored value is unchanged. */
  T_EQ_INT(gw_store_kv_put(s, "big", "x", 1), GW_OK);
  T_EQ_INT(gw_store_kv_put(s, "big", big, GW_STORE_VALUE_MAX + 1),
           GW_ERR_TOO_LARGE);
  T_ASSERT(strstr(gw_store_errmsg(s), "over cap") != NULL);
  T_EQ_INT(gw_store_kv_get(s, "big", back, GW_STORE_VALUE_MAX + 1, &len),
           GW_OK);
  T_EQ_INT(len, 1);
  T_EQ_INT(gw_store_kv_put(s, "new", big, GW_STORE_VALUE_MAX + 1),
           GW_ERR_TOO_LARGE);
  T_EQ_INT(gw_store_kv_get(s, "new", back, 1, &len), GW_ERR_NOT_FOUND);
  free(big);
  free(back);
  close_tmp(s);
}

static void test_data_survives_close(void) {
  gw_store *s = open_tmp();
  char err[256], buf[16];
  size_t len = 0;
  int version = -1;

  if (!s) {
    tmp_cleanup();
    return;
  }
  T_EQ_INT(gw_store_kv_put(s, "a", "alpha", 5), GW_OK);
  T_EQ_INT(gw_store_schema_version(s, &version), GW_OK);
  T_ASSERT(version >= 1);
  gw_store_close(s);
  s = NULL;
  T_EQ_INT(gw_store_open(&s, "sqlite", tdb, 1000, err, sizeof(err)), GW_OK);
  if (s) {
    int again = -1;
    T_EQ_INT(gw_store_kv_get(s, "a", buf, sizeof(buf), &len), GW_OK);
    T_EQ_INT(len, 5);
    T_ASSERT(memcmp(buf, "alpha", 5) == 0);
    T_EQ_INT(gw_store_schema_version(s, &again), GW_OK);
    T_EQ_INT(again, version);
  }
  close_tmp(s);
}

/* ---- subscriber registry ----------------------------------------------- */

static void sub_fill(gw_store_sub *sub, const char *msisdn,
                     const char *civil_id, const char *op) {
  memset(sub, 0, sizeof(*sub));
  snprintf(sub->msisdn, sizeof(sub->msisdn), "%s", msisdn);
  snprintf(sub->civil_id, sizeof(sub->civil_id), "%s", civil_id);
  /* UTF-8: Arabic and an em dash. */
  snprintf(sub->name, sizeof(sub->name), "%s",
           "\xd8\xb3\xd8\xa7\xd9\x84\xd9\x85 Al-Harthy \xe2\x80\x94 demo");
  snprintf(sub->operator_name, sizeof(sub->operator_name), "%s", op);
  snprintf(sub->cert_serial, sizeof(sub->cert_serial), "%s",
           "5A3F00112233445566778899AABBCCDD");
  snprintf(sub->cert_pem, sizeof(sub->cert_pem), "%s",
           "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  snprintf(sub->behaviour, sizeof(sub->behaviour), "%s", "approve:1000");
}

static void test_sub_round_trip(void) {
  gw_store_sub in, out;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  sub_fill(&in, "+96899000001", "10000001", "omantel");
  in.created_at = 1700000000;
  T_EQ_INT(gw_store_sub_put(s, &in), GW_OK);
  memset(&out, 0x55, sizeof(out));
  T_EQ_INT(gw_store_sub_get(s, "+96899000001", &out), GW_OK);
  T_EQ_STR(out.msisdn, in.msisdn);
  T_EQ_STR(out.civil_id, in.civil_id);
  T_EQ_STR(out.name, in.name);
  T_EQ_STR(out.operator_name, "omantel");
  T_EQ_INT(out.revoked, 0);
  T_EQ_STR(out.cert_serial, in.cert_serial);
  T_EQ_STR(out.cert_pem, in.cert_pem);
  T_EQ_STR(out.behaviour, "approve:1000");
  T_EQ_INT(out.created_at, 1700000000);
  T_EQ_INT(out.revoked_at, 0);
  T_EQ_STR(out.revocation_reason, "");
  T_EQ_INT(out.last_signed_at, 0);

  /* created_at 0 means now. */
  sub_fill(&in, "+96895000001", "10000011", "ooredoo");
  in.behaviour[0] = '\0';
  T_EQ_INT(gw_store_sub_put(s, &in), GW_OK);
  T_EQ_INT(gw_store_sub_get(s, "+96895000001", &out), GW_OK);
  T_ASSERT(out.created_at > 1600000000);
  T_EQ_STR(out.behaviour, "");

  /* Put replaces the whole row. */
  snprintf(in.operator_name, sizeof(in.operator_name), "omantel");
  in.revoked = 1;
  in.revoked_at = 1700000100;
  snprintf(in.revocation_reason, sizeof(in.revocation_reason), "superseded");
  in.last_signed_at = 1700000050;
  T_EQ_INT(gw_store_sub_put(s, &in), GW_OK);
  T_EQ_INT(gw_store_sub_get(s, "+96895000001", &out), GW_OK);
  T_EQ_STR(out.operator_name, "omantel");
  T_EQ_INT(out.revoked, 1);
  T_EQ_INT(out.revoked_at, 1700000100);
  T_EQ_STR(out.revocation_reason, "superseded");
  T_EQ_INT(out.last_signed_at, 1700000050);

  T_EQ_INT(gw_store_sub_get(s, "+96899999999", &out), GW_ERR_NOT_FOUND);
  close_tmp(s);
}

typedef struct sub_seen {
  int n;
  char msisdns[8][GW_STORE_MSISDN_MAX + 1];
  int stop_after; /* 0 = never */
} sub_seen;

static int sub_collect(const gw_store_sub *sub, void *arg) {
  sub_seen *seen = arg;

  if (seen->n < 8) {
    snprintf(seen->msisdns[seen->n], sizeof(seen->msisdns[0]), "%s",
             sub->msisdn);
  }
  seen->n++;
  return seen->stop_after && seen->n >= seen->stop_after ? GW_ERR_LIMIT : GW_OK;
}

static void test_sub_list(void) {
  gw_store_sub in;
  sub_seen seen;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  memset(&seen, 0, sizeof(seen));
  T_EQ_INT(gw_store_sub_list(s, NULL, sub_collect, &seen), GW_OK);
  T_EQ_INT(seen.n, 0);

  /* One civil number with SIMs at both operators. */
  sub_fill(&in, "+96899000009", "10000019", "ooredoo");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_OK);
  sub_fill(&in, "+96895000002", "10000019", "omantel");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_OK);
  sub_fill(&in, "+96899000001", "10000001", "omantel");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_OK);

  memset(&seen, 0, sizeof(seen));
  T_EQ_INT(gw_store_sub_list(s, NULL, sub_collect, &seen), GW_OK);
  T_EQ_INT(seen.n, 3);
  /* In MSISDN order. */
  T_EQ_STR(seen.msisdns[0], "+96895000002");
  T_EQ_STR(seen.msisdns[1], "+96899000001");
  T_EQ_STR(seen.msisdns[2], "+96899000009");

  memset(&seen, 0, sizeof(seen));
  T_EQ_INT(gw_store_sub_list(s, "10000019", sub_collect, &seen), GW_OK);
  T_EQ_INT(seen.n, 2);
  T_EQ_STR(seen.msisdns[0], "+96895000002");
  T_EQ_STR(seen.msisdns[1], "+96899000009");

  memset(&seen, 0, sizeof(seen));
  T_EQ_INT(gw_store_sub_list(s, "99999999", sub_collect, &seen), GW_OK);
  T_EQ_INT(seen.n, 0);

  /* The callback stops the listing, and the handle is usable after. */
  memset(&seen, 0, sizeof(seen));
  seen.stop_after = 1;
  T_EQ_INT(gw_store_sub_list(s, NULL, sub_collect, &seen), GW_ERR_LIMIT);
  T_EQ_INT(seen.n, 1);
  T_EQ_INT(gw_store_sub_put(s, &in), GW_OK);

  T_EQ_INT(gw_store_sub_list(s, NULL, NULL, NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_sub_list(s, "", sub_collect, &seen), GW_ERR_INVALID);
  T_EQ_INT(gw_store_sub_list(s, "12345678901234567", sub_collect, &seen),
           GW_ERR_INVALID);
  close_tmp(s);
}

static void test_sub_revoke_and_signed(void) {
  gw_store_sub in, out;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  sub_fill(&in, "+96899000004", "10000004", "omantel");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_OK);

  T_EQ_INT(gw_store_sub_mark_signed(s, "+96899000004", 1700000200), GW_OK);
  T_EQ_INT(gw_store_sub_get(s, "+96899000004", &out), GW_OK);
  T_EQ_INT(out.last_signed_at, 1700000200);
  T_EQ_INT(out.revoked, 0);

  T_EQ_INT(gw_store_sub_revoke(s, "+96899000004", "keyCompromise", 1700000300),
           GW_OK);
  T_EQ_INT(gw_store_sub_get(s, "+96899000004", &out), GW_OK);
  T_EQ_INT(out.revoked, 1);
  T_EQ_INT(out.revoked_at, 1700000300);
  T_EQ_STR(out.revocation_reason, "keyCompromise");
  /* Revoking again changes nothing: the first time and reason stay. */
  T_EQ_INT(gw_store_sub_revoke(s, "+96899000004", "superseded", 1700000400),
           GW_OK);
  T_EQ_INT(gw_store_sub_get(s, "+96899000004", &out), GW_OK);
  T_EQ_INT(out.revoked_at, 1700000300);
  T_EQ_STR(out.revocation_reason, "keyCompromise");
  /* No reason given is stored as none. */
  sub_fill(&in, "+96899000005", "10000005", "omantel");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_OK);
  T_EQ_INT(gw_store_sub_revoke(s, "+96899000005", NULL, 1700000500), GW_OK);
  T_EQ_INT(gw_store_sub_get(s, "+96899000005", &out), GW_OK);
  T_EQ_INT(out.revoked, 1);
  T_EQ_STR(out.revocation_reason, "");
  /* The signed mark still works on a revoked row (the time is a fact). */
  T_EQ_INT(gw_store_sub_mark_signed(s, "+96899000004", 1700000600), GW_OK);

  T_EQ_INT(gw_store_sub_revoke(s, "+96899999999", "", 1), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_sub_mark_signed(s, "+96899999999", 1), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_sub_revoke(s, "+96899000004", "bad\nreason", 1),
           GW_ERR_INVALID);
  T_EQ_INT(gw_store_sub_revoke(s, "+96899000004", "", -1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_sub_mark_signed(s, "", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_sub_mark_signed(s, NULL, 1), GW_ERR_INVALID);
  close_tmp(s);
}

static void test_sub_field_checks(void) {
  gw_store_sub in, out;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  T_EQ_INT(gw_store_sub_put(NULL, &in), GW_ERR_INVALID);
  T_EQ_INT(gw_store_sub_put(s, NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_sub_get(NULL, "+96899000001", &out), GW_ERR_INVALID);
  T_EQ_INT(gw_store_sub_get(s, "+96899000001", NULL), GW_ERR_INVALID);

  sub_fill(&in, "", "1", "omantel");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "msisdn is empty") != NULL);

  sub_fill(&in, "+96899000001", "1", "omantel");
  memset(in.civil_id, '1', sizeof(in.civil_id)); /* no NUL inside */
  T_EQ_INT(gw_store_sub_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "civil_id is not terminated") != NULL);

  sub_fill(&in, "+96899000001", "1", "omantel");
  snprintf(in.name, sizeof(in.name), "bad \xc3\x28 utf-8");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "name is not UTF-8") != NULL);
  snprintf(in.name, sizeof(in.name), "overlong \xc0\xaf");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_ERR_INVALID);
  snprintf(in.name, sizeof(in.name), "surrogate \xed\xa0\x80");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_ERR_INVALID);
  snprintf(in.name, sizeof(in.name), "tab\there");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_ERR_INVALID);
  snprintf(in.name, sizeof(in.name), "C1 \xc2\x85 control");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_ERR_INVALID);

  sub_fill(&in, "+96899000001", "1", "omantel");
  snprintf(in.msisdn, sizeof(in.msisdn), "+968 9900");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_OK); /* the store checks bytes only */
  snprintf(in.msisdn, sizeof(in.msisdn), "+968\x01");
  T_EQ_INT(gw_store_sub_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "msisdn byte 4") != NULL);

  sub_fill(&in, "+96899000001", "1", "omantel");
  in.cert_pem[0] = '\0';
  T_EQ_INT(gw_store_sub_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "cert_pem is empty") != NULL);

  sub_fill(&in, "+96899000001", "1", "omantel");
  in.revoked = 2;
  T_EQ_INT(gw_store_sub_put(s, &in), GW_ERR_INVALID);
  in.revoked = 0;
  in.created_at = -5;
  T_EQ_INT(gw_store_sub_put(s, &in), GW_ERR_INVALID);

  /* Nothing bad was stored on the way. */
  T_EQ_INT(gw_store_sub_get(s, "+96899000001", &out), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_sub_get(s, "12345678901234567", &out), GW_ERR_INVALID);
  close_tmp(s);
}

/* ---- relying parties --------------------------------------------------- */

static void client_fill(gw_store_client *c, const char *id) {
  memset(c, 0, sizeof(*c));
  snprintf(c->client_id, sizeof(c->client_id), "%s", id);
  /* UTF-8: Arabic, for the phone. */
  snprintf(
      c->name, sizeof(c->name), "%s",
      "\xd9\x88\xd8\xb2\xd8\xa7\xd8\xb1\xd8\xa9 Ministry \xe2\x80\x94 demo");
  for (int i = 0; i < 32; i++) {
    c->secret_sha256[i] = (unsigned char)(i * 7 + 1);
  }
  c->secret_sha256[5] = 0; /* a NUL inside the blob is kept */
  snprintf(c->auth_methods, sizeof(c->auth_methods),
           "client_secret_basic client_secret_post");
  snprintf(c->grant_types, sizeof(c->grant_types),
           "urn:openid:params:grant-type:ciba");
  snprintf(c->scopes, sizeof(c->scopes), "openid profile licensing");
  snprintf(c->resources, sizeof(c->resources),
           "https://127.0.0.1:8443/licensing");
  snprintf(c->ciba_mode, sizeof(c->ciba_mode), "poll");
  snprintf(c->id_token_alg, sizeof(c->id_token_alg), "ES256");
}

typedef struct client_seen {
  int n;
  char ids[8][GW_STORE_CLIENT_ID_MAX + 1];
  int stop_after; /* 0 = never */
} client_seen;

static int client_collect(const gw_store_client *c, void *arg) {
  client_seen *seen = arg;

  if (seen->n < 8) {
    snprintf(seen->ids[seen->n], sizeof(seen->ids[0]), "%s", c->client_id);
  }
  seen->n++;
  return seen->stop_after && seen->n >= seen->stop_after ? GW_ERR_LIMIT : GW_OK;
}

static void test_client_round_trip(void) {
  gw_store_client in, out;
  client_seen seen;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  client_fill(&in, "demo-rp");
  in.created_at = 1700000000;
  T_EQ_INT(gw_store_client_put(s, &in), GW_OK);
  memset(&out, 0x55, sizeof(out));
  T_EQ_INT(gw_store_client_get(s, "demo-rp", &out), GW_OK);
  T_EQ_STR(out.client_id, "demo-rp");
  T_EQ_STR(out.name, in.name);
  T_ASSERT(memcmp(out.secret_sha256, in.secret_sha256, 32) == 0);
  T_EQ_STR(out.auth_methods, in.auth_methods);
  T_EQ_STR(out.grant_types, in.grant_types);
  T_EQ_STR(out.scopes, in.scopes);
  T_EQ_STR(out.resources, in.resources);
  T_EQ_STR(out.redirect_uris, "");
  T_EQ_STR(out.ciba_mode, "poll");
  T_EQ_STR(out.ciba_notification_endpoint, "");
  T_EQ_STR(out.id_token_alg, "ES256");
  T_EQ_INT(out.resource_server, 0);
  T_EQ_INT(out.created_at, 1700000000);

  /* Put replaces the whole row; created_at 0 means now. */
  client_fill(&in, "demo-rp");
  in.secret_sha256[0] ^= 0xff;
  snprintf(in.ciba_mode, sizeof(in.ciba_mode), "ping");
  snprintf(in.ciba_notification_endpoint, sizeof(in.ciba_notification_endpoint),
           "https://rp.example/cb");
  snprintf(in.id_token_alg, sizeof(in.id_token_alg), "RS256");
  in.resource_server = 1;
  T_EQ_INT(gw_store_client_put(s, &in), GW_OK);
  T_EQ_INT(gw_store_client_get(s, "demo-rp", &out), GW_OK);
  T_ASSERT(memcmp(out.secret_sha256, in.secret_sha256, 32) == 0);
  T_EQ_STR(out.ciba_mode, "ping");
  T_EQ_STR(out.ciba_notification_endpoint, "https://rp.example/cb");
  T_EQ_STR(out.id_token_alg, "RS256");
  T_EQ_INT(out.resource_server, 1);
  T_ASSERT(out.created_at > 1600000000);

  /* Listed in client_id order; the callback can stop the walk. */
  client_fill(&in, "licensing-portal");
  T_EQ_INT(gw_store_client_put(s, &in), GW_OK);
  client_fill(&in, "a.rs");
  T_EQ_INT(gw_store_client_put(s, &in), GW_OK);
  memset(&seen, 0, sizeof(seen));
  T_EQ_INT(gw_store_client_list(s, client_collect, &seen), GW_OK);
  T_EQ_INT(seen.n, 3);
  T_EQ_STR(seen.ids[0], "a.rs");
  T_EQ_STR(seen.ids[1], "demo-rp");
  T_EQ_STR(seen.ids[2], "licensing-portal");
  memset(&seen, 0, sizeof(seen));
  seen.stop_after = 2;
  T_EQ_INT(gw_store_client_list(s, client_collect, &seen), GW_ERR_LIMIT);
  T_EQ_INT(seen.n, 2);

  T_EQ_INT(gw_store_client_del(s, "a.rs"), GW_OK);
  T_EQ_INT(gw_store_client_del(s, "a.rs"), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_client_get(s, "a.rs", &out), GW_ERR_NOT_FOUND);
  memset(&seen, 0, sizeof(seen));
  T_EQ_INT(gw_store_client_list(s, client_collect, &seen), GW_OK);
  T_EQ_INT(seen.n, 2);
  close_tmp(s);
}

static void test_client_field_checks(void) {
  char long_id[GW_STORE_CLIENT_ID_MAX + 2];
  gw_store_client in, out;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  T_EQ_INT(gw_store_client_put(NULL, &in), GW_ERR_INVALID);
  T_EQ_INT(gw_store_client_put(s, NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_client_get(NULL, "x", &out), GW_ERR_INVALID);
  T_EQ_INT(gw_store_client_get(s, "x", NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_client_del(NULL, "x"), GW_ERR_INVALID);
  T_EQ_INT(gw_store_client_list(NULL, client_collect, NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_client_list(s, NULL, NULL), GW_ERR_INVALID);

  client_fill(&in, "");
  T_EQ_INT(gw_store_client_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "client_id is empty") != NULL);

  client_fill(&in, "rp");
  memset(in.scopes, 'a', sizeof(in.scopes)); /* no NUL inside */
  T_EQ_INT(gw_store_client_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "scopes is not terminated") != NULL);

  client_fill(&in, "rp");
  snprintf(in.name, sizeof(in.name), "bad \xc3\x28 utf-8");
  T_EQ_INT(gw_store_client_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "name is not UTF-8") != NULL);

  client_fill(&in, "rp");
  snprintf(in.redirect_uris, sizeof(in.redirect_uris), "https://a/\n");
  T_EQ_INT(gw_store_client_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "redirect_uris byte 10") != NULL);

  client_fill(&in, "rp");
  in.resource_server = 2;
  T_EQ_INT(gw_store_client_put(s, &in), GW_ERR_INVALID);
  in.resource_server = 0;
  in.created_at = -1;
  T_EQ_INT(gw_store_client_put(s, &in), GW_ERR_INVALID);

  memset(long_id, 'a', sizeof(long_id) - 1);
  long_id[sizeof(long_id) - 1] = '\0';
  T_EQ_INT(gw_store_client_get(s, long_id, &out), GW_ERR_INVALID);
  T_EQ_INT(gw_store_client_get(s, "", &out), GW_ERR_INVALID);
  T_EQ_INT(gw_store_client_del(s, "a\x01"), GW_ERR_INVALID);

  /* Nothing bad was stored on the way. */
  T_EQ_INT(gw_store_client_get(s, "rp", &out), GW_ERR_NOT_FOUND);
  close_tmp(s);
}

/* ---- sign-in transactions ---------------------------------------------- */

static void txn_fill(gw_store_txn *t, const char *id, const char *req) {
  memset(t, 0, sizeof(*t));
  snprintf(t->id, sizeof(t->id), "%s", id);
  snprintf(t->auth_req_id, sizeof(t->auth_req_id), "%s", req);
  snprintf(t->client_id, sizeof(t->client_id), "demo-rp");
  snprintf(t->msisdn, sizeof(t->msisdn), "+96899000001");
  snprintf(t->civil_id, sizeof(t->civil_id), "10000001");
  snprintf(t->operator_name, sizeof(t->operator_name), "omantel");
  snprintf(t->state, sizeof(t->state), "sent");
  snprintf(t->detail, sizeof(t->detail), "%s",
           "waiting \xe2\x80\x94 operator answered 100");
  snprintf(t->scope, sizeof(t->scope), "openid profile");
  snprintf(t->resource, sizeof(t->resource), "https://127.0.0.1:8443/lic");
  snprintf(t->acr, sizeof(t->acr), "urn:om:mpki:loa3");
  for (int i = 0; i < 32; i++) {
    t->dtbs[i] = (unsigned char)(0xa0 + i);
  }
  t->dtbs[31] = 0;
  snprintf(t->verification_code, sizeof(t->verification_code), "0421");
  snprintf(t->mssp_trans_id, sizeof(t->mssp_trans_id), "omantel-77");
  t->created_at = 1700000000000LL;
  t->expires_at = 1700000120000LL;
  t->updated_at = 1700000001000LL;
}

static void test_txn_round_trip(void) {
  gw_store_txn in, out;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  txn_fill(&in, "t1", "req-1");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_OK);
  memset(&out, 0x55, sizeof(out));
  T_EQ_INT(gw_store_txn_get(s, "t1", &out), GW_OK);
  T_EQ_STR(out.id, "t1");
  T_EQ_STR(out.auth_req_id, "req-1");
  T_EQ_STR(out.client_id, "demo-rp");
  T_EQ_STR(out.msisdn, "+96899000001");
  T_EQ_STR(out.civil_id, "10000001");
  T_EQ_STR(out.operator_name, "omantel");
  T_EQ_STR(out.state, "sent");
  T_EQ_STR(out.outcome, "");
  T_EQ_STR(out.detail, in.detail);
  T_EQ_STR(out.scope, "openid profile");
  T_EQ_STR(out.resource, in.resource);
  T_EQ_STR(out.acr, in.acr);
  T_ASSERT(memcmp(out.dtbs, in.dtbs, 32) == 0);
  T_EQ_STR(out.verification_code, "0421");
  T_EQ_STR(out.mssp_trans_id, "omantel-77");
  T_EQ_INT(out.created_at, 1700000000000LL);
  T_EQ_INT(out.expires_at, 1700000120000LL);
  T_EQ_INT(out.updated_at, 1700000001000LL);
  T_EQ_INT(out.auth_time, 0);
  T_EQ_INT(out.consumed, 0);

  memset(&out, 0, sizeof(out));
  T_EQ_INT(gw_store_txn_get_by_req(s, "req-1", &out), GW_OK);
  T_EQ_STR(out.id, "t1");

  /* Every change is written again under the same id. */
  snprintf(in.state, sizeof(in.state), "done");
  in.auth_time = 1700000050;
  in.updated_at = 1700000050000LL;
  T_EQ_INT(gw_store_txn_put(s, &in), GW_OK);
  T_EQ_INT(gw_store_txn_get(s, "t1", &out), GW_OK);
  T_EQ_STR(out.state, "done");
  T_EQ_INT(out.auth_time, 1700000050);
  T_EQ_INT(out.updated_at, 1700000050000LL);

  T_EQ_INT(gw_store_txn_get(s, "t2", &out), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_txn_get_by_req(s, "req-2", &out), GW_ERR_NOT_FOUND);
  close_tmp(s);
}

static void test_txn_auth_req_id_unique(void) {
  gw_store_txn in, out;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  txn_fill(&in, "t1", "req-1");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_OK);
  /* Another row may not take it... */
  txn_fill(&in, "t2", "req-1");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_ERR_EXISTS);
  T_ASSERT(strstr(gw_store_errmsg(s), "auth_req_id") != NULL);
  T_EQ_INT(gw_store_txn_get(s, "t2", &out), GW_ERR_NOT_FOUND);
  /* ...not even by changing its own. */
  txn_fill(&in, "t2", "req-2");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_OK);
  txn_fill(&in, "t2", "req-1");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_ERR_EXISTS);
  T_EQ_INT(gw_store_txn_get(s, "t2", &out), GW_OK);
  T_EQ_STR(out.auth_req_id, "req-2");
  /* The row itself may keep it, and the handle still works after. */
  txn_fill(&in, "t1", "req-1");
  snprintf(in.state, sizeof(in.state), "signed");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_OK);
  T_EQ_INT(gw_store_txn_get_by_req(s, "req-1", &out), GW_OK);
  T_EQ_STR(out.state, "signed");
  /* Any number of rows have none; "" is not a key to look up. */
  txn_fill(&in, "t3", "");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_OK);
  txn_fill(&in, "t4", "");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_OK);
  T_EQ_INT(gw_store_txn_get(s, "t4", &out), GW_OK);
  T_EQ_STR(out.auth_req_id, "");
  T_EQ_INT(gw_store_txn_get_by_req(s, "", &out), GW_ERR_INVALID);
  close_tmp(s);
}

static void test_txn_consume_once(void) {
  gw_store_txn in, out;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  txn_fill(&in, "t1", "req-1");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_OK);
  T_EQ_INT(gw_store_txn_consume(s, "t1"), GW_OK);
  T_EQ_INT(gw_store_txn_consume(s, "t1"), GW_ERR_EXISTS);
  T_EQ_INT(gw_store_txn_consume(s, "t1"), GW_ERR_EXISTS);
  T_EQ_INT(gw_store_txn_get(s, "t1", &out), GW_OK);
  T_EQ_INT(out.consumed, 1);
  /* A put from a copy made before the consume does not re-open it. */
  in.consumed = 0;
  snprintf(in.state, sizeof(in.state), "done");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_OK);
  T_EQ_INT(gw_store_txn_get(s, "t1", &out), GW_OK);
  T_EQ_STR(out.state, "done");
  T_EQ_INT(out.consumed, 1);
  T_EQ_INT(gw_store_txn_consume(s, "t1"), GW_ERR_EXISTS);
  /* Put may record it consumed directly. */
  txn_fill(&in, "t2", "");
  in.consumed = 1;
  T_EQ_INT(gw_store_txn_put(s, &in), GW_OK);
  T_EQ_INT(gw_store_txn_consume(s, "t2"), GW_ERR_EXISTS);

  T_EQ_INT(gw_store_txn_consume(s, "nope"), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_txn_consume(s, ""), GW_ERR_INVALID);
  T_EQ_INT(gw_store_txn_consume(s, NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_txn_consume(NULL, "t1"), GW_ERR_INVALID);
  close_tmp(s);
}

static void test_txn_purge(void) {
  gw_store_txn in, out;
  size_t n = 99;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  T_EQ_INT(gw_store_txn_purge(s, 1000, &n), GW_OK);
  T_EQ_INT(n, 0);
  for (int i = 1; i <= 3; i++) {
    char id[8];
    snprintf(id, sizeof(id), "t%d", i);
    txn_fill(&in, id, "");
    in.expires_at = 100LL * i;
    T_EQ_INT(gw_store_txn_put(s, &in), GW_OK);
  }
  /* Strictly before: the row expiring at 200 stays. */
  T_EQ_INT(gw_store_txn_purge(s, 200, &n), GW_OK);
  T_EQ_INT(n, 1);
  T_EQ_INT(gw_store_txn_get(s, "t1", &out), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_txn_get(s, "t2", &out), GW_OK);
  T_EQ_INT(gw_store_txn_purge(s, 1000, NULL), GW_OK);
  T_EQ_INT(gw_store_txn_get(s, "t3", &out), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_txn_purge(NULL, 1, NULL), GW_ERR_INVALID);
  close_tmp(s);
}

static void test_txn_field_checks(void) {
  gw_store_txn in, out;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  T_EQ_INT(gw_store_txn_put(NULL, &in), GW_ERR_INVALID);
  T_EQ_INT(gw_store_txn_put(s, NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_txn_get(s, "t1", NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_txn_get_by_req(s, NULL, &out), GW_ERR_INVALID);

  txn_fill(&in, "", "");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "id is empty") != NULL);

  txn_fill(&in, "t1", "");
  in.state[0] = '\0';
  T_EQ_INT(gw_store_txn_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "state is empty") != NULL);

  txn_fill(&in, "t1", "");
  in.client_id[0] = '\0';
  T_EQ_INT(gw_store_txn_put(s, &in), GW_ERR_INVALID);

  txn_fill(&in, "t1", "");
  memset(in.verification_code, '1', sizeof(in.verification_code));
  T_EQ_INT(gw_store_txn_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "verification_code is not terminated") !=
           NULL);

  txn_fill(&in, "t1", "");
  snprintf(in.detail, sizeof(in.detail), "line\nbreak");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "detail is not UTF-8") != NULL);

  txn_fill(&in, "t1", "r\x7f");
  T_EQ_INT(gw_store_txn_put(s, &in), GW_ERR_INVALID);
  T_ASSERT(strstr(gw_store_errmsg(s), "auth_req_id byte 1") != NULL);

  txn_fill(&in, "t1", "");
  in.consumed = 2;
  T_EQ_INT(gw_store_txn_put(s, &in), GW_ERR_INVALID);
  in.consumed = 0;
  in.expires_at = -1;
  T_EQ_INT(gw_store_txn_put(s, &in), GW_ERR_INVALID);

  T_EQ_INT(gw_store_txn_get(s, "t1", &out), GW_ERR_NOT_FOUND);
  close_tmp(s);
}

/* ---- revoked tokens ---------------------------------------------------- */

static void test_revoked_tokens(void) {
  char jti65[66];
  size_t n = 99;
  gw_store *s = open_tmp();

  if (!s) {
    tmp_cleanup();
    return;
  }
  T_EQ_INT(gw_store_revoked_get(s, "jti-1"), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_revoked_put(s, "jti-1", "demo-rp", 1000), GW_OK);
  T_EQ_INT(gw_store_revoked_get(s, "jti-1"), GW_OK);
  /* Idempotent; the later exp is kept, an earlier one ignored. */
  T_EQ_INT(gw_store_revoked_put(s, "jti-1", "demo-rp", 2000), GW_OK);
  T_EQ_INT(gw_store_revoked_put(s, "jti-1", "demo-rp", 500), GW_OK);
  T_EQ_INT(gw_store_revoked_put(s, "jti-2", "demo-rp", 1500), GW_OK);
  T_EQ_INT(gw_store_revoked_purge(s, 1600, &n), GW_OK);
  T_EQ_INT(n, 1);
  T_EQ_INT(gw_store_revoked_get(s, "jti-2"), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_revoked_get(s, "jti-1"), GW_OK);
  T_EQ_INT(gw_store_revoked_purge(s, 2001, NULL), GW_OK);
  T_EQ_INT(gw_store_revoked_get(s, "jti-1"), GW_ERR_NOT_FOUND);

  memset(jti65, 'j', sizeof(jti65) - 1);
  jti65[sizeof(jti65) - 1] = '\0';
  T_EQ_INT(gw_store_revoked_put(s, jti65, "demo-rp", 1), GW_ERR_INVALID);
  jti65[64] = '\0'; /* 64 is the cap */
  T_EQ_INT(gw_store_revoked_put(s, jti65, "demo-rp", 1), GW_OK);
  T_EQ_INT(gw_store_revoked_put(s, "", "demo-rp", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_revoked_put(s, "a b\n", "demo-rp", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_revoked_put(s, "jti-3", "", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_revoked_put(s, "jti-3", NULL, 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_revoked_put(s, "jti-3", "demo-rp", -1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_revoked_get(s, NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_revoked_get(NULL, "jti-1"), GW_ERR_INVALID);
  T_EQ_INT(gw_store_revoked_purge(NULL, 1, NULL), GW_ERR_INVALID);
  close_tmp(s);
}

/* ---- audit log ------------------------------------------------------------
 */

static void audit_row(gw_store_audit_row *r, long long seq) {
  memset(r, 0, sizeof(*r));
  r->seq = seq;
  r->ts = 1700000000000LL + seq;
  snprintf(r->kind, sizeof(r->kind), "token.issued");
  snprintf(r->subject, sizeof(r->subject), "sub-%lld", seq);
  snprintf(r->data, sizeof(r->data), "{\"i\":%lld}", seq);
  memset(r->prev_hash, (int)(seq - 1), 32);
  memset(r->hash, (int)seq, 32);
}

static int audit_collect(const gw_store_audit_row *r, void *arg) {
  long long *seqs = arg;

  seqs[0]++;
  seqs[seqs[0]] = r->seq;
  return (r->hash[0] == (unsigned char)r->seq &&
          strcmp(r->kind, "token.issued") == 0)
             ? GW_OK
             : GW_ERR_STORE;
}

static int audit_cp_collect(const gw_store_audit_checkpoint *c, void *arg) {
  long long *seqs = arg;

  seqs[0]++;
  seqs[seqs[0]] = c->seq;
  return GW_OK;
}

static void test_audit_append_and_order(void) {
  gw_store *s = open_tmp();
  gw_store_audit_row rows[5];
  gw_store_audit_checkpoint cp;
  unsigned char h[32];
  long long seq = 0, n = -1, ncp = -1, seqs[16] = {0};

  T_EQ_INT(gw_store_audit_last(s, &seq, h), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_store_audit_count(s, &n, &ncp), GW_OK);
  T_EQ_INT(n, 0);
  T_EQ_INT(ncp, 0);
  /* Appended in two batches, out of order inside the second. */
  for (int i = 0; i < 5; i++) {
    audit_row(&rows[i], i + 1);
  }
  T_EQ_INT(gw_store_audit_append(s, rows, 2), GW_OK);
  T_EQ_INT(gw_store_audit_append(s, &rows[2], 3), GW_OK);
  T_EQ_INT(gw_store_audit_last(s, &seq, h), GW_OK);
  T_EQ_INT(seq, 5);
  T_EQ_INT(h[31], 5);
  T_EQ_INT(gw_store_audit_list(s, 1, audit_collect, seqs), GW_OK);
  T_EQ_INT(seqs[0], 5);
  for (int i = 1; i <= 5; i++) {
    T_EQ_INT(seqs[i], i);
  }
  memset(seqs, 0, sizeof(seqs));
  T_EQ_INT(gw_store_audit_list(s, 4, audit_collect, seqs), GW_OK);
  T_EQ_INT(seqs[0], 2);
  T_EQ_INT(seqs[1], 4);
  /* Never replaced; a batch with one conflict leaves nothing behind. */
  audit_row(&rows[0], 6);
  audit_row(&rows[1], 3);
  T_EQ_INT(gw_store_audit_append(s, rows, 2), GW_ERR_EXISTS);
  T_EQ_INT(gw_store_audit_count(s, &n, NULL), GW_OK);
  T_EQ_INT(n, 5);
  /* Checkpoints. */
  memset(&cp, 0, sizeof(cp));
  cp.seq = 5;
  cp.ts = 1;
  snprintf(cp.kid, sizeof(cp.kid), "kid");
  snprintf(cp.jws, sizeof(cp.jws), "a.b.c");
  T_EQ_INT(gw_store_audit_checkpoint_put(s, &cp), GW_OK);
  T_EQ_INT(gw_store_audit_checkpoint_put(s, &cp), GW_ERR_EXISTS);
  cp.seq = 2;
  T_EQ_INT(gw_store_audit_checkpoint_put(s, &cp), GW_OK);
  memset(seqs, 0, sizeof(seqs));
  T_EQ_INT(gw_store_audit_checkpoint_list(s, 0, audit_cp_collect, seqs), GW_OK);
  T_EQ_INT(seqs[0], 2);
  T_EQ_INT(seqs[1], 2);
  T_EQ_INT(seqs[2], 5);
  T_EQ_INT(gw_store_audit_count(s, NULL, &ncp), GW_OK);
  T_EQ_INT(ncp, 2);
  close_tmp(s);
}

static void test_audit_field_checks(void) {
  gw_store *s = open_tmp();
  gw_store_audit_row r;
  gw_store_audit_checkpoint cp;

  audit_row(&r, 1);
  T_EQ_INT(gw_store_audit_append(s, &r, 0), GW_ERR_INVALID);
  T_EQ_INT(gw_store_audit_append(s, NULL, 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_audit_append(s, &r, GW_STORE_AUDIT_BATCH_MAX + 1),
           GW_ERR_INVALID);
  r.kind[0] = '\0';
  T_EQ_INT(gw_store_audit_append(s, &r, 1), GW_ERR_INVALID);
  audit_row(&r, 1);
  r.data[0] = '\n';
  T_EQ_INT(gw_store_audit_append(s, &r, 1), GW_ERR_INVALID);
  audit_row(&r, 0);
  T_EQ_INT(gw_store_audit_append(s, &r, 1), GW_ERR_INVALID);
  audit_row(&r, 1);
  memset(r.subject, 'x', sizeof(r.subject));
  T_EQ_INT(gw_store_audit_append(s, &r, 1), GW_ERR_INVALID);
  T_EQ_INT(gw_store_audit_list(s, 1, NULL, NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_store_audit_last(s, NULL, NULL), GW_ERR_INVALID);
  memset(&cp, 0, sizeof(cp));
  cp.seq = 1;
  T_EQ_INT(gw_store_audit_checkpoint_put(s, &cp), GW_ERR_INVALID); /* no jws */
  T_EQ_INT(gw_store_audit_checkpoint_put(s, NULL), GW_ERR_INVALID);
  close_tmp(s);
}

int main(void) {
  /* Migration log lines would clutter the test output. */
  gw_log_min_level = GW_LOG_WARN;
  T_RUN(test_unknown_backend);
  T_RUN(test_open_bad_arguments);
  T_RUN(test_close_null_and_names);
  T_RUN(test_kv_round_trip);
  T_RUN(test_kv_buffer_too_small);
  T_RUN(test_kv_key_rules);
  T_RUN(test_kv_value_cap);
  T_RUN(test_data_survives_close);
  T_RUN(test_sub_round_trip);
  T_RUN(test_sub_list);
  T_RUN(test_sub_revoke_and_signed);
  T_RUN(test_sub_field_checks);
  T_RUN(test_client_round_trip);
  T_RUN(test_client_field_checks);
  T_RUN(test_txn_round_trip);
  T_RUN(test_txn_auth_req_id_unique);
  T_RUN(test_txn_consume_once);
  T_RUN(test_txn_purge);
  T_RUN(test_txn_field_checks);
  T_RUN(test_revoked_tokens);
  T_RUN(test_audit_append_and_order);
  T_RUN(test_audit_field_checks);
  return T_DONE();
}
