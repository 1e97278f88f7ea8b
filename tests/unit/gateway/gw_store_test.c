/* gw_store_test.c — the store interface: backend selection, argument
 * checks, caps and the key/value contract, through the public API only.
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
  return T_DONE();
}
