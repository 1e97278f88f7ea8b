/* op_route_test.c — unit tests for operators/op_route.c: MSISDN
 * normalisation, the numbering plan, the portability table, load errors.
 * Run from the repository root (the shipped configs/ files are read). */
#include "op_route.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_err.h"
#include "harness.h"

static char tmpdir[PATH_MAX];
static char errbuf[512];

/* Returns tmpdir/|name| in one of four static buffers (used in turn), so
 * that a plan's and a table's paths can be held at once. */
static const char *tmp_path(const char *name) {
  static char paths[4][PATH_MAX + 64];
  static int next;
  char *path = paths[next++ % 4];

  snprintf(path, PATH_MAX + 64, "%s/%s", tmpdir, name);
  return path;
}

static const char *write_file(const char *name, const char *text) {
  const char *path = tmp_path(name);
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
  return path;
}

/* Normalises |in|; returns the status and copies the result to |out|. */
static op_route_status norm(const char *in, char *out) {
  return op_msisdn_normalize(in, out);
}

static void t_normalize_accepted_forms(void) {
  char out[OP_MSISDN_MAX];

  T_EQ_INT(norm("99000001", out), OP_ROUTE_OK);
  T_EQ_STR(out, "+96899000001");
  T_EQ_INT(norm("+96899000001", out), OP_ROUTE_OK);
  T_EQ_STR(out, "+96899000001");
  T_EQ_INT(norm("0096899000001", out), OP_ROUTE_OK);
  T_EQ_STR(out, "+96899000001");
  T_EQ_INT(norm("+968 9900 0001", out), OP_ROUTE_OK);
  T_EQ_STR(out, "+96899000001");
  T_EQ_INT(norm("9900-0001", out), OP_ROUTE_OK);
  T_EQ_STR(out, "+96899000001");
  T_EQ_INT(norm("00968-99-00-00-01", out), OP_ROUTE_OK);
  T_EQ_STR(out, "+96899000001");
  T_EQ_INT(norm("95000001", out), OP_ROUTE_OK);
  T_EQ_STR(out, "+96895000001");
}

static void t_normalize_refused(void) {
  static const char *const bad[] = {
      "",              /* empty */
      "9900001",       /* 7 digits */
      "990000011",     /* 9 digits */
      "+9689900000",   /* 7 national digits */
      "+968990000011", /* 9 national digits */
      "96899000001",   /* bare country code: ambiguous */
      "09900000",      /* national numbers do not start with 0 */
      "+96809900000",  /* same after +968 */
      "+0096899000001",
      "++96899000001",
      "+968  99000001", /* doubled separator */
      " 99000001",      /* leading blank */
      "99000001 ",      /* trailing blank */
      "-99000001",
      "+ 96899000001", /* separator after + */
      "9900.0001",
      "(968) 99000001",
      "tel:+96899000001",
      "99000OO1", /* letters */
      "+96899000001\n",
      "9900\t0001",
      "+",
      "00",
      "0",
      "+1",                /* too short to be a number */
      "+1234567890123456", /* 16 digits: longer than E.164 */
      "99000001999000019990000199900001999000019", /* over the input cap */
  };
  char out[OP_MSISDN_MAX];

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    op_route_status st = norm(bad[i], out);
    if (st != OP_ROUTE_INVALID) {
      printf("#   \"%s\" -> %s\n", bad[i], op_route_status_str(st));
    }
    T_EQ_INT(st, OP_ROUTE_INVALID);
    T_EQ_STR(out, "");
  }
  T_EQ_INT(op_msisdn_normalize(NULL, out), OP_ROUTE_INVALID);
}

static void t_normalize_foreign(void) {
  char out[OP_MSISDN_MAX];

  T_EQ_INT(norm("+447700900123", out), OP_ROUTE_NOT_OMAN);
  T_EQ_STR(out, "");
  T_EQ_INT(norm("00447700900123", out), OP_ROUTE_NOT_OMAN);
  T_EQ_INT(norm("+971 50 123 4567", out), OP_ROUTE_NOT_OMAN); /* UAE */
  T_EQ_INT(norm("+9661234567", out), OP_ROUTE_NOT_OMAN);
  T_EQ_STR(op_route_status_str(OP_ROUTE_NOT_OMAN), "not_oman");
  T_EQ_STR(op_route_status_str(OP_ROUTE_INVALID), "invalid_msisdn");
  T_EQ_STR(op_route_status_str(OP_ROUTE_NO_OPERATOR), "no_operator");
  T_EQ_STR(op_route_status_str(OP_ROUTE_OK), "ok");
  T_ASSERT(strstr(op_route_status_message(OP_ROUTE_NOT_OMAN), "Omani") != NULL);
}

/* The shipped demo plan and portability table. */
static void t_shipped_configs(void) {
  op_route *r = NULL;
  op_route_result res;

  T_EQ_INT(op_route_load(&r, "configs/numbering-plan.conf",
                         "configs/portability.csv", errbuf, sizeof(errbuf)),
           GW_OK);
  T_EQ_STR(errbuf, "");
  if (!r) {
    return;
  }
  T_EQ_INT(op_route_plan_size(r), 4);
  T_EQ_INT(op_route_ported_size(r), 1);

  T_EQ_INT(op_route_lookup(r, "+96899000001", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "omantel");
  T_EQ_INT(res.ported, 0);
  T_EQ_INT(res.prefix_len, 2);
  T_EQ_STR(res.msisdn, "+96899000001");
  T_EQ_INT(op_route_lookup(r, "92123456", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "omantel");
  T_EQ_INT(op_route_lookup(r, "0096895000001", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "ooredoo");
  T_EQ_INT(op_route_lookup(r, "9600 0002", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "ooredoo");
  /* ported: the plan says Omantel, the table Ooredoo */
  T_EQ_INT(op_route_lookup(r, "99000009", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "ooredoo");
  T_EQ_INT(res.ported, 1);
  T_EQ_STR(res.msisdn, "+96899000009");
  /* its neighbours are not ported */
  T_EQ_INT(op_route_lookup(r, "99000008", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "omantel");
  T_EQ_INT(op_route_lookup(r, "99000010", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "omantel");
  /* outside every range: a landline, an unallocated mobile block */
  T_EQ_INT(op_route_lookup(r, "+96824000000", &res), OP_ROUTE_NO_OPERATOR);
  T_ASSERT(res.op == NULL);
  T_EQ_STR(res.msisdn, "+96824000000"); /* normalised, for the log */
  T_EQ_INT(op_route_lookup(r, "97000000", &res), OP_ROUTE_NO_OPERATOR);
  /* not Omani, malformed */
  T_EQ_INT(op_route_lookup(r, "+447700900123", &res), OP_ROUTE_NOT_OMAN);
  T_ASSERT(res.op == NULL);
  T_EQ_INT(op_route_lookup(r, "hello", &res), OP_ROUTE_INVALID);
  T_EQ_STR(res.msisdn, "");
  op_route_del(r);
  op_route_del(NULL);
}

static void t_longest_prefix_wins(void) {
  op_route *r = NULL;
  op_route_result res;
  const char *plan = write_file("plan", "# comment\n"
                                        "\n"
                                        "9 alpha   # trailing comment\n"
                                        "  99\tbeta\n"
                                        "9912 gamma\n"
                                        "99123456 delta\n");

  T_EQ_INT(op_route_load(&r, plan, "", errbuf, sizeof(errbuf)), GW_OK);
  if (!r) {
    printf("#   %s\n", errbuf);
    return;
  }
  T_EQ_INT(op_route_lookup(r, "91000000", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "alpha");
  T_EQ_INT(res.prefix_len, 1);
  T_EQ_INT(op_route_lookup(r, "99000000", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "beta");
  T_EQ_INT(op_route_lookup(r, "99120000", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "gamma");
  T_EQ_INT(res.prefix_len, 4);
  T_EQ_INT(op_route_lookup(r, "99123456", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "delta");
  T_EQ_INT(res.prefix_len, 8);
  T_EQ_INT(op_route_lookup(r, "99123457", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "gamma");
  T_EQ_INT(op_route_lookup(r, "81000000", &res), OP_ROUTE_NO_OPERATOR);
  T_EQ_INT(op_route_ported_size(r), 0);
  op_route_del(r);
}

/* Expects loading |plan| text (and |port| text unless NULL) to fail with
 * |rv| and an error ending in |reason| after "<file>:<line>: ". */
static int expect_load_err(const char *plan, const char *port, int rv,
                           const char *file, int line, const char *reason) {
  char want[PATH_MAX + 512];
  const char *pp = write_file("p.conf", plan);
  const char *qp = port ? write_file("q.csv", port) : NULL;
  op_route *r = NULL;
  int got = op_route_load(&r, pp, qp, errbuf, sizeof(errbuf));

  if (line) {
    snprintf(want, sizeof(want), "%s/%s:%d: %s", tmpdir, file, line, reason);
  } else {
    snprintf(want, sizeof(want), "%s/%s: %s", tmpdir, file, reason);
  }
  if (got == rv && r == NULL && strcmp(errbuf, want) == 0) {
    return 1;
  }
  printf("#   rv %d (want %d)\n#   got  \"%s\"\n#   want \"%s\"\n", got, rv,
         errbuf, want);
  op_route_del(r);
  return 0;
}

static void t_load_errors(void) {
  op_route *r = (op_route *)0x1;
  char want[PATH_MAX + 64];

  T_ASSERT(expect_load_err("99\n", NULL, GW_ERR_CONFIG, "p.conf", 1,
                           "expected \"<prefix> <operator>\" (two words)"));
  T_ASSERT(expect_load_err("\n99 a b\n", NULL, GW_ERR_CONFIG, "p.conf", 2,
                           "expected \"<prefix> <operator>\" (two words)"));
  T_ASSERT(expect_load_err(
      "+96899 omantel\n", NULL, GW_ERR_CONFIG, "p.conf", 1,
      "prefix \"+96899\" is not 1..8 digits of the national number "
      "(without +968)"));
  T_ASSERT(expect_load_err(
      "991234567 omantel\n", NULL, GW_ERR_CONFIG, "p.conf", 1,
      "prefix \"991234567\" is not 1..8 digits of the national number "
      "(without +968)"));
  T_ASSERT(expect_load_err("99 Omantel\n", NULL, GW_ERR_CONFIG, "p.conf", 1,
                           "operator name \"Omantel\" is not 1..32 of "
                           "[a-z0-9_-]"));
  T_ASSERT(expect_load_err("99 omantel\n92 omantel\n99 ooredoo\n", NULL,
                           GW_ERR_CONFIG, "p.conf", 3,
                           "prefix 99 is listed twice"));
  T_ASSERT(expect_load_err("# nothing\n\n", NULL, GW_ERR_CONFIG, "p.conf", 0,
                           "no prefixes: every number would be refused"));
  T_ASSERT(expect_load_err("99 omantel\n", "msisdn,operator\n+4477009001,x\n",
                           GW_ERR_CONFIG, "q.csv", 2,
                           "\"+4477009001\": not an Omani number"));
  T_ASSERT(expect_load_err("99 omantel\n", "9900001,ooredoo\n", GW_ERR_CONFIG,
                           "q.csv", 1, "\"9900001\": not a phone number"));
  T_ASSERT(expect_load_err("99 omantel\n", "99000009 ooredoo\n", GW_ERR_CONFIG,
                           "q.csv", 1,
                           "expected \"<msisdn>,<operator>\" (two fields)"));
  T_ASSERT(expect_load_err("99 omantel\n", "99000009,ooredoo,x\n",
                           GW_ERR_CONFIG, "q.csv", 1,
                           "expected \"<msisdn>,<operator>\" (two fields)"));
  T_ASSERT(expect_load_err("99 omantel\n", "99000009,\n", GW_ERR_CONFIG,
                           "q.csv", 1,
                           "operator name \"\" is not 1..32 of [a-z0-9_-]"));
  T_ASSERT(expect_load_err(
      "99 omantel\n", "+96899000009,ooredoo\n0096899000009,omantel\n",
      GW_ERR_CONFIG, "q.csv", 0, "+96899000009 is listed twice"));
  {
    char longline[400];
    memset(longline, '9', sizeof(longline) - 2);
    longline[sizeof(longline) - 2] = '\n';
    longline[sizeof(longline) - 1] = '\0';
    T_ASSERT(expect_load_err(longline, NULL, GW_ERR_CONFIG, "p.conf", 1,
                             "line longer than 256 bytes"));
  }
  /* missing files */
  T_EQ_INT(op_route_load(&r, tmp_path("nope"), NULL, errbuf, sizeof(errbuf)),
           GW_ERR_IO);
  snprintf(want, sizeof(want), "%s/nope: No such file or directory", tmpdir);
  T_EQ_STR(errbuf, want);
  T_ASSERT(r == (op_route *)0x1); /* untouched */
  write_file("ok.conf", "99 omantel\n");
  T_EQ_INT(op_route_load(&r, tmp_path("ok.conf"), tmp_path("nope.csv"), errbuf,
                         sizeof(errbuf)),
           GW_ERR_IO);
  T_EQ_INT(op_route_load(&r, "", NULL, errbuf, sizeof(errbuf)), GW_ERR_CONFIG);
  T_EQ_STR(errbuf, "no numbering plan file given");
  T_ASSERT(r == (op_route *)0x1);
}

static void t_portability_forms(void) {
  op_route *r = NULL;
  op_route_result res;
  const char *plan = write_file("plan2", "99 omantel\n95 ooredoo\n");
  const char *port = write_file("port2", "  99000001 , ooredoo\r\n"
                                         "# comment line\n"
                                         "\n"
                                         "00968 9500 0002,omantel\n"
                                         "msisdn,operator\n" /* not a header
                                                                here: but it
                                                                is refused */);

  T_EQ_INT(op_route_load(&r, plan, port, errbuf, sizeof(errbuf)),
           GW_ERR_CONFIG);
  T_ASSERT(strstr(errbuf, "port2:5: \"msisdn\": not a phone number") != NULL);
  port = write_file("port3", "  99000001 , ooredoo\r\n"
                             "# comment line\n"
                             "\n"
                             "00968 9500 0002,omantel\n");
  T_EQ_INT(op_route_load(&r, plan, port, errbuf, sizeof(errbuf)), GW_OK);
  if (!r) {
    printf("#   %s\n", errbuf);
    return;
  }
  T_EQ_INT(op_route_lookup(r, "+96899000001", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "ooredoo");
  T_EQ_INT(res.ported, 1);
  T_EQ_INT(op_route_lookup(r, "+96895000002", &res), OP_ROUTE_OK);
  T_EQ_STR(res.op, "omantel");
  T_EQ_INT(res.ported, 1);
  /* a ported number outside the plan still routes */
  op_route_del(r);
  r = NULL;
  port = write_file("port4", "24000000,fixedco\n");
  T_EQ_INT(op_route_load(&r, plan, port, errbuf, sizeof(errbuf)), GW_OK);
  if (r) {
    T_EQ_INT(op_route_lookup(r, "24000000", &res), OP_ROUTE_OK);
    T_EQ_STR(res.op, "fixedco");
    T_EQ_INT(op_route_lookup(r, "24000001", &res), OP_ROUTE_NO_OPERATOR);
  }
  op_route_del(r);
}

/* A large portability table: lookups stay correct at scale. */
static void t_portability_large(void) {
  const char *plan = write_file("plan5", "99 omantel\n95 ooredoo\n");
  const char *path = tmp_path("port5");
  op_route_result res;
  op_route *r = NULL;
  FILE *f = fopen(path, "w");

  if (!f) {
    T_ASSERT(0);
    return;
  }
  for (int i = 0; i < 200000; i += 2) {
    fprintf(f, "+968%08d,%s\n", 99000000 + ((i * 7919) % 1000000),
            (i & 2) ? "ooredoo" : "omantel");
  }
  fclose(f);
  T_EQ_INT(op_route_load(&r, plan, path, errbuf, sizeof(errbuf)), GW_OK);
  if (!r) {
    printf("#   %s\n", errbuf);
    return;
  }
  T_EQ_INT(op_route_ported_size(r), 100000);
  T_EQ_INT(op_route_lookup(r, "+96899000000", &res), OP_ROUTE_OK);
  T_EQ_INT(res.ported, 1);
  T_EQ_STR(res.op, "omantel");
  T_EQ_INT(op_route_lookup(r,
                           "+968"
                           "99015838",
                           &res),
           OP_ROUTE_OK);
  T_EQ_INT(res.ported, 1); /* i = 2: 2 * 7919 = 15838 */
  T_EQ_STR(res.op, "ooredoo");
  T_EQ_INT(op_route_lookup(r, "+96895000000", &res), OP_ROUTE_OK);
  T_EQ_INT(res.ported, 0);
  op_route_del(r);
}

int main(void) {
  char tmpl[] = "/tmp/op_route_test.XXXXXX";

  if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  T_RUN(t_normalize_accepted_forms);
  T_RUN(t_normalize_refused);
  T_RUN(t_normalize_foreign);
  T_RUN(t_shipped_configs);
  T_RUN(t_longest_prefix_wins);
  T_RUN(t_load_errors);
  T_RUN(t_portability_forms);
  T_RUN(t_portability_large);
  {
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
      printf("# could not remove %s\n", tmpdir);
    }
  }
  return T_DONE();
}
