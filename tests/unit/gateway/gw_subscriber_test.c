/* gw_subscriber_test.c — unit tests for gateway/gw_subscriber.c: the
 * subscriber rules, the bulk CSV reader, and provisioning / revocation on a
 * private SoftHSM token directory with a real CA and store. */
#include "gw_subscriber.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "harness.h"

static char tmpdir[PATH_MAX];
static char why[512];

static const char *tpath(const char *name) {
  static char p[4][PATH_MAX + 64];
  static int i;

  i = (i + 1) % 4;
  snprintf(p[i], sizeof(p[i]), "%s/%s", tmpdir, name);
  return p[i];
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");

  if (!f) {
    return -1;
  }
  fputs(text, f);
  return fclose(f);
}

static void rm_rf(const char *path) {
  struct stat st;
  struct dirent *de;
  char p[PATH_MAX + 256];
  DIR *d;

  if (lstat(path, &st) != 0) {
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    unlink(path);
    return;
  }
  d = opendir(path);
  while (d && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
      snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
      rm_rf(p);
    }
  }
  if (d) {
    closedir(d);
  }
  rmdir(path);
}

/* ---- rules -------------------------------------------------------------- */

static void test_msisdn_civil_operator(void) {
  const char *canon = NULL;

  T_EQ_INT(gw_sub_check_msisdn("+96899000001", why, sizeof(why)), GW_OK);
  T_EQ_INT(gw_sub_check_msisdn("+96895000010", why, sizeof(why)), GW_OK);
  T_EQ_INT(gw_sub_check_msisdn("96899000001", why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_STR(why, "\"96899000001\" is not +968 followed by 8 digits");
  T_EQ_INT(gw_sub_check_msisdn("+9689900000", why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_msisdn("+968990000011", why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_msisdn("+97199000001", why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_msisdn("+968 9900001", why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_msisdn("+9689900000\n", why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_STR(why, "\"+9689900000\\x0a\" is not +968 followed by 8 digits");
  T_EQ_INT(gw_sub_check_msisdn(NULL, why, sizeof(why)), GW_ERR_INVALID);

  T_EQ_INT(gw_sub_check_civil_id("10000001", why, sizeof(why)), GW_OK);
  T_EQ_INT(gw_sub_check_civil_id("0", why, sizeof(why)), GW_OK);
  T_EQ_INT(gw_sub_check_civil_id("1234567890123456", why, sizeof(why)), GW_OK);
  T_EQ_INT(gw_sub_check_civil_id("12345678901234567", why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_civil_id("", why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_civil_id("1000-001", why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_STR(why, "\"1000-001\" is not a civil number (1 to 16 digits)");

  T_EQ_INT(gw_sub_parse_operator("Omantel", &canon, why, sizeof(why)), GW_OK);
  T_EQ_STR(canon, "omantel");
  T_EQ_INT(gw_sub_parse_operator("OOREDOO", &canon, why, sizeof(why)), GW_OK);
  T_EQ_STR(canon, "ooredoo");
  T_EQ_INT(gw_sub_parse_operator("vodafone", &canon, why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_STR(why, "\"vodafone\" is not omantel or ooredoo");
}

static void test_name(void) {
  char name[300];

  T_EQ_INT(gw_sub_check_name("Salim Al-Harthy", why, sizeof(why)), GW_OK);
  T_EQ_INT(
      gw_sub_check_name("\xd8\xb3\xd8\xa7\xd9\x84\xd9\x85", why, sizeof(why)),
      GW_OK);
  T_EQ_INT(gw_sub_check_name("", why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_name(" lead", why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_name("trail ", why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_name("tab\there", why, sizeof(why)), GW_ERR_INVALID);
  T_ASSERT(strstr(why, "control character") != NULL);
  T_EQ_INT(gw_sub_check_name("c1 \xc2\x85", why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_name("bad \xc3\x28", why, sizeof(why)), GW_ERR_INVALID);
  T_ASSERT(strstr(why, "not valid UTF-8") != NULL);
  T_EQ_INT(gw_sub_check_name("overlong \xc0\xaf", why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_name("surrogate \xed\xa0\x80", why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_name("cut \xe2\x80", why, sizeof(why)), GW_ERR_INVALID);
  /* 64 characters are counted as characters, not bytes. */
  name[0] = '\0';
  for (int i = 0; i < 64; i++) {
    strcat(name, "\xd8\xb3");
  }
  T_EQ_INT(gw_sub_check_name(name, why, sizeof(why)), GW_OK);
  strcat(name, "x");
  T_EQ_INT(gw_sub_check_name(name, why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_STR(why, "is 65 characters long, at most 64 fit a certificate");
}

static void test_pin_puk_behaviour(void) {
  T_EQ_INT(gw_sub_check_pin("1234", why, sizeof(why)), GW_OK);
  T_EQ_INT(gw_sub_check_pin("12345678", why, sizeof(why)), GW_OK);
  T_EQ_INT(gw_sub_check_pin("123", why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_pin("123456789", why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_pin("12a4", why, sizeof(why)), GW_ERR_INVALID);
  /* The reason never shows the value. */
  T_EQ_STR(why, "a SIM PIN is 4 to 8 digits");
  T_EQ_INT(gw_sub_check_puk("12345678", why, sizeof(why)), GW_OK);
  T_EQ_INT(gw_sub_check_puk("1234567", why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_STR(why, "a PUK is 8 digits");

  T_EQ_INT(gw_sub_check_behaviour("", why, sizeof(why)), GW_OK);
  T_EQ_INT(gw_sub_check_behaviour("approve:1000", why, sizeof(why)), GW_OK);
  T_EQ_INT(gw_sub_check_behaviour("pin_blocked", why, sizeof(why)), GW_OK);
  T_EQ_INT(gw_sub_check_behaviour("Approve", why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_behaviour("approve:", why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_behaviour(":1000", why, sizeof(why)), GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_behaviour("approve:1s", why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_INT(gw_sub_check_behaviour("a b", why, sizeof(why)), GW_ERR_INVALID);
}

static void test_request_set(void) {
  gw_sub_request r;

  T_EQ_INT(gw_sub_request_set(&r, "+96899000001", "10000001", "Salim",
                              "Omantel", NULL, "", NULL, why, sizeof(why)),
           GW_OK);
  T_EQ_STR(r.operator_name, "omantel");
  T_EQ_STR(r.pin, GW_SUB_DEMO_PIN);
  T_EQ_STR(r.puk, GW_SUB_DEMO_PUK);
  T_EQ_STR(r.behaviour, "");
  T_EQ_INT(gw_sub_request_set(&r, "+96899000001", "10000001", "Salim",
                              "ooredoo", "987654", "87654321", "refuse", why,
                              sizeof(why)),
           GW_OK);
  T_EQ_STR(r.pin, "987654");
  T_EQ_STR(r.behaviour, "refuse");
  gw_sub_request_wipe(&r);
  T_EQ_STR(r.pin, "");
  T_EQ_STR(r.msisdn, "");

  /* The first bad field is named as the command line spells it; a failed
   * set leaves nothing behind. */
  T_EQ_INT(gw_sub_request_set(&r, "+96899000001", "x", "Salim", "omantel",
                              "1234", NULL, NULL, why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_STR(why, "--civil-id: \"x\" is not a civil number (1 to 16 digits)");
  T_EQ_STR(r.msisdn, "");
  T_EQ_INT(gw_sub_request_set(&r, "+96899000001", "1", "Salim", "omantel", "12",
                              NULL, NULL, why, sizeof(why)),
           GW_ERR_INVALID);
  T_EQ_STR(why, "--pin: a SIM PIN is 4 to 8 digits");
  T_EQ_STR(r.pin, "");
  T_EQ_INT(gw_sub_request_set(&r, "+96899000001", "1", "Salim", NULL, NULL,
                              NULL, NULL, why, sizeof(why)),
           GW_ERR_INVALID);
  T_ASSERT(strncmp(why, "--operator: ", 12) == 0);
  T_EQ_INT(gw_sub_request_set(NULL, "+96899000001", "1", "S", "omantel", NULL,
                              NULL, NULL, why, sizeof(why)),
           GW_ERR_INVALID);
}

/* ---- CSV ---------------------------------------------------------------- */

static gw_sub_csv *csv(const char *text) {
  gw_sub_csv *c = NULL;
  int rv = gw_sub_csv_new(&c, "f.csv", text, strlen(text), why, sizeof(why));

  return rv == GW_OK ? c : NULL;
}

static void test_csv_rows(void) {
  static const char text[] =
      "# comment first\r\n"
      "\r\n"
      "name , msisdn,civil_id,operator,note,behaviour,pin\r\n"
      "Salim Al-Harthy,+96899000001,10000001,omantel,free text,approve:1000,"
      "\r\n"
      "\"Al-Balushi, Aisha \"\"Umm Ali\"\"\",+96899000002 , 10000002,"
      "Ooredoo,,refuse,4321\r\n"
      "  # an indented comment\n"
      "\n"
      "Short Row,+96899000003,10000003,omantel\n"
      "Last,+96899000004,10000004,omantel,\"a, b\",,"; /* no final newline */
  gw_sub_csv *c = csv(text);
  gw_sub_request r;
  long line = 0;

  T_ASSERT(c != NULL);
  if (!c) {
    printf("#   %s\n", why);
    return;
  }
  T_EQ_INT(gw_sub_csv_rows(c), 4);
  T_EQ_INT(gw_sub_csv_next(c, &r, &line, why, sizeof(why)), GW_OK);
  T_EQ_INT(line, 4);
  T_EQ_STR(r.msisdn, "+96899000001");
  T_EQ_STR(r.name, "Salim Al-Harthy");
  T_EQ_STR(r.behaviour, "approve:1000");
  T_EQ_STR(r.pin, GW_SUB_DEMO_PIN); /* empty = the demo's */
  T_EQ_INT(gw_sub_csv_next(c, &r, &line, why, sizeof(why)), GW_OK);
  T_EQ_INT(line, 5);
  T_EQ_STR(r.name, "Al-Balushi, Aisha \"Umm Ali\"");
  T_EQ_STR(r.msisdn, "+96899000002");
  T_EQ_STR(r.civil_id, "10000002");
  T_EQ_STR(r.operator_name, "ooredoo");
  T_EQ_STR(r.pin, "4321");
  T_EQ_INT(gw_sub_csv_next(c, &r, &line, why, sizeof(why)), GW_OK);
  T_EQ_INT(line, 8);
  T_EQ_STR(r.name, "Short Row");
  T_EQ_STR(r.behaviour, "");
  T_EQ_INT(gw_sub_csv_next(c, &r, &line, why, sizeof(why)), GW_OK);
  T_EQ_INT(line, 9);
  T_EQ_STR(r.msisdn, "+96899000004");
  T_EQ_INT(gw_sub_csv_next(c, &r, &line, why, sizeof(why)), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_sub_csv_next(c, &r, &line, why, sizeof(why)), GW_ERR_NOT_FOUND);
  gw_sub_request_wipe(&r);
  gw_sub_csv_del(c);
}

/* Each bad row is reported with its line, and the next row still reads. */
static void test_csv_bad_rows(void) {
  static const char text[] = "msisdn,civil_id,name,operator\n"
                             "+9689900000,1,A,omantel\n"        /* 2 */
                             "+96899000002,1x,B,omantel\n"      /* 3 */
                             "+96899000003,1,,omantel\n"        /* 4 */
                             "+96899000004,1,D,etisalat\n"      /* 5 */
                             "+96899000005,1,E,omantel,extra\n" /* 6 */
                             "\"+96899000006,1,F,omantel\n"     /* 7 */
                             "+96899000007,1,\"G\" x,omantel\n" /* 8 */
                             "+96899000008,1,H\"i,omantel\n"    /* 9 */
                             "+96899000009,1,Good,omantel\n";   /* 10 */
  static const char *const want[] = {
      "f.csv:2: msisdn: \"+9689900000\" is not +968 followed by 8 digits",
      "f.csv:3: civil_id: \"1x\" is not a civil number (1 to 16 digits)",
      "f.csv:4: name: must not be empty",
      "f.csv:5: operator: \"etisalat\" is not omantel or ooredoo",
      "f.csv:6: 5 fields, the header has 4",
      "f.csv:7: field 1: a quoted field does not end on its line",
      "f.csv:8: field 3: text after the closing quote",
      "f.csv:9: field 3: a quote inside an unquoted field",
  };
  gw_sub_csv *c = csv(text);
  gw_sub_request r;
  long line = 0;

  T_ASSERT(c != NULL);
  if (!c) {
    return;
  }
  T_EQ_INT(gw_sub_csv_rows(c), 9);
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    T_EQ_INT(gw_sub_csv_next(c, &r, &line, why, sizeof(why)), GW_ERR_INVALID);
    T_EQ_INT(line, (long)i + 2);
    T_EQ_STR(why, want[i]);
  }
  T_EQ_INT(gw_sub_csv_next(c, &r, &line, why, sizeof(why)), GW_OK);
  T_EQ_INT(line, 10);
  T_EQ_STR(r.name, "Good");
  gw_sub_csv_del(c);

  /* A line over 4096 bytes. */
  {
    static char big[6000];
    snprintf(big, sizeof(big),
             "msisdn,civil_id,name,operator\n+96899000001,1,");
    memset(big + strlen(big), 'x', 4200);
    strcat(big, ",omantel\n");
    c = csv(big);
    T_ASSERT(c != NULL);
    if (c) {
      T_EQ_INT(gw_sub_csv_next(c, &r, &line, why, sizeof(why)), GW_ERR_INVALID);
      T_EQ_STR(why, "f.csv:2: longer than 4096 bytes");
      gw_sub_csv_del(c);
    }
  }
}

static void test_csv_headers(void) {
  gw_sub_csv *c = NULL;

  T_EQ_INT(gw_sub_csv_new(&c, "f.csv", "", 0, why, sizeof(why)),
           GW_ERR_INVALID);
  T_ASSERT(strncmp(why, "f.csv: no header row", 20) == 0);
  T_EQ_INT(gw_sub_csv_new(&c, "f.csv", "# only\n\n", 8, why, sizeof(why)),
           GW_ERR_INVALID);
  T_ASSERT(csv("msisdn,civil_id,name\n") == NULL);
  T_EQ_STR(why, "f.csv:1: the header has no column operator (required: "
                "msisdn, civil_id, name, operator)");
  T_ASSERT(csv("# x\nmsisdn,Civil-ID,name,operator\n") == NULL);
  T_EQ_STR(why, "f.csv:2: column \"Civil-ID\": did you mean civil_id?");
  T_ASSERT(csv("msisdn,civil_id,name,operator,PIN\n") == NULL);
  T_EQ_STR(why, "f.csv:1: column \"PIN\": did you mean pin?");
  T_ASSERT(csv("msisdn,civil_id,name,operator,msisdn\n") == NULL);
  T_EQ_STR(why, "f.csv:1: column msisdn appears twice");
  T_EQ_INT(gw_sub_csv_new(&c, "f.csv", "msisdn\0,x", 9, why, sizeof(why)),
           GW_ERR_INVALID);
  T_ASSERT(strstr(why, "NUL byte") != NULL);
  /* Unknown columns are other readers' business. */
  c = csv("ported_from,msisdn,civil_id,name,operator,role\n");
  T_ASSERT(c != NULL);
  T_EQ_INT(gw_sub_csv_rows(c), 0);
  gw_sub_csv_del(c);
  gw_sub_csv_del(NULL);
}

/* The demo file in configs/ reads without an error. */
static void test_csv_demo_file(void) {
  static char text[65536];
  FILE *f = fopen("configs/demo-subscribers.csv", "r");
  gw_sub_csv *c;
  gw_sub_request r;
  size_t n, rows = 0;
  long line;
  int rv;

  T_ASSERT(f != NULL);
  if (!f) {
    return;
  }
  n = fread(text, 1, sizeof(text), f);
  fclose(f);
  c = NULL;
  T_EQ_INT(gw_sub_csv_new(&c, "demo", text, n, why, sizeof(why)), GW_OK);
  if (!c) {
    printf("#   %s\n", why);
    return;
  }
  T_EQ_INT(gw_sub_csv_rows(c), 11);
  while ((rv = gw_sub_csv_next(c, &r, &line, why, sizeof(why))) !=
         GW_ERR_NOT_FOUND) {
    if (rv != GW_OK) {
      printf("#   %s\n", why);
    }
    T_EQ_INT(rv, GW_OK);
    if (strcmp(r.msisdn, "+96899000009") == 0) {
      T_EQ_STR(r.operator_name, "ooredoo"); /* ported */
    }
    T_EQ_STR(r.pin, "1234");
    T_EQ_STR(r.puk, "12345678");
    rows++;
  }
  T_EQ_INT(rows, 11);
  gw_sub_csv_del(c);
}

/* ---- provisioning on SoftHSM -------------------------------------------- */

static void test_provision_and_revoke(void) {
  char text[PATH_MAX + 512], err[1024];
  gw_config *cfg = NULL;
  gw_store *st = NULL;
  p11_module *m = NULL;
  gw_pki_ca *ca = NULL;
  gw_pki_pins pins;
  gw_sub_request r;
  gw_store_sub *row = calloc(1, sizeof(*row));
  p11_token *t = NULL;
  X509 *x = NULL;
  int already = -1;

  memset(&pins, 0, sizeof(pins));
  rm_rf(tpath("tokens"));
  mkdir(tpath("tokens"), 0700);
  snprintf(text, sizeof(text),
           "directories.tokendir = %s\nobjectstore.backend = file\n"
           "log.level = ERROR\nslots.removable = false\n",
           tpath("tokens"));
  write_text(tpath("softhsm2.conf"), text);
  write_text(tpath("t.conf"),
             "tls: { certificate = \"c\"; private_key = \"k\"; };\n");
  if (!row ||
      gw_config_load(&cfg, tpath("t.conf"), err, sizeof(err)) != GW_OK ||
      gw_store_open(&st, "sqlite", cfg->store_path, 1000, err, sizeof(err)) !=
          GW_OK ||
      gw_pki_pins_create(cfg->pki_pin_file, &pins, err, sizeof(err)) != GW_OK ||
      gw_pki_module_open(cfg, &m, err, sizeof(err)) != GW_OK ||
      gw_pki_ca_init(cfg, m, &pins, err, sizeof(err)) != GW_OK ||
      gw_pki_ca_open(&ca, cfg, m, pins.ca_pin, err, sizeof(err)) != GW_OK) {
    printf("#   set-up: %s\n", err);
    T_ASSERT(0);
    goto done;
  }

  /* One person with SIMs at both operators. */
  T_EQ_INT(gw_sub_request_set(&r, "+96899000001", "10000001", "Salim",
                              "omantel", NULL, NULL, "approve:1000", why,
                              sizeof(why)),
           GW_OK);
  T_EQ_INT(gw_sub_provision(m, ca, st, &r, &x, err, sizeof(err)), GW_OK);
  T_ASSERT(x != NULL);
  T_EQ_INT(gw_sub_request_set(&r, "+96895000001", "10000001", "Salim",
                              "ooredoo", "5678", "87654321", NULL, why,
                              sizeof(why)),
           GW_OK);
  T_EQ_INT(gw_sub_provision(m, ca, st, &r, NULL, err, sizeof(err)), GW_OK);

  /* The registry row. */
  T_EQ_INT(gw_store_sub_get(st, "+96899000001", row), GW_OK);
  T_EQ_STR(row->civil_id, "10000001");
  T_EQ_STR(row->operator_name, "omantel");
  T_EQ_STR(row->behaviour, "approve:1000");
  T_EQ_INT(row->revoked, 0);
  T_ASSERT(strncmp(row->cert_pem, "-----BEGIN CERTIFICATE-----", 27) == 0);
  if (x) {
    char serial[GW_PKI_SERIAL_HEX_MAX + 1];
    gw_pki_serial_hex(x, serial, sizeof(serial));
    T_EQ_STR(row->cert_serial, serial);
  }

  /* The token: labelled with the MSISDN, PIN = the SIM PIN, PUK = SO PIN;
   * the key on it signs and matches the certificate. */
  T_EQ_INT(p11_token_find(m, "+96895000001", &t), P11_OK);
  if (t) {
    uint8_t dig[32] = {1, 2, 3}, sig[80];
    size_t siglen = sizeof(sig);
    X509 *x2 = NULL;
    BIO *b;

    T_EQ_INT(p11_check_pin(t, "5678"), P11_OK);
    T_EQ_INT(p11_check_pin(t, "1234"), P11_ERR_PIN_INCORRECT);
    T_EQ_INT(p11_sign_with_pin(t, "5678", GW_SUB_KEY_LABEL, P11_MECH_ECDSA, dig,
                               sizeof(dig), 1, sig, &siglen),
             P11_OK);
    T_EQ_INT(gw_store_sub_get(st, "+96895000001", row), GW_OK);
    b = BIO_new_mem_buf(row->cert_pem, -1);
    x2 = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    T_ASSERT(x2 != NULL);
    if (x2) {
      EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(X509_get0_pubkey(x2), NULL);
      T_EQ_INT(EVP_PKEY_verify_init(v), 1);
      T_EQ_INT(EVP_PKEY_verify(v, sig, siglen, dig, sizeof(dig)), 1);
      EVP_PKEY_CTX_free(v);
      X509_free(x2);
    }
  }

  /* Twice: refused by the registry, nothing else made. */
  T_EQ_INT(gw_sub_provision(m, ca, st, &r, NULL, err, sizeof(err)),
           GW_ERR_INVALID);
  T_ASSERT(strstr(err, "already provisioned (ooredoo, active") != NULL);
  /* A token without a registry row (a half-finished run) is named. */
  T_EQ_INT(p11_token_init(m, "+96899000077", "12345678", "1234", &t), P11_OK);
  T_EQ_INT(gw_sub_request_set(&r, "+96899000077", "1", "Orphan", "omantel",
                              NULL, NULL, NULL, why, sizeof(why)),
           GW_OK);
  T_EQ_INT(gw_sub_provision(m, ca, st, &r, NULL, err, sizeof(err)),
           GW_ERR_INVALID);
  T_ASSERT(strstr(err, "softhsm2-util --delete-token --token +96899000077") !=
           NULL);

  /* Revoke: index.txt and registry; a second time changes nothing. */
  T_EQ_INT(gw_sub_revoke(ca, st, "+96899000001", GW_PKI_REASON_KEY_COMPROMISE,
                         1700000000, &already, err, sizeof(err)),
           GW_OK);
  T_EQ_INT(already, 0);
  T_EQ_INT(gw_store_sub_get(st, "+96899000001", row), GW_OK);
  T_EQ_INT(row->revoked, 1);
  T_EQ_INT(row->revoked_at, 1700000000);
  T_EQ_STR(row->revocation_reason, "keyCompromise");
  T_EQ_INT(gw_sub_revoke(ca, st, "+96899000001", GW_PKI_REASON_SUPERSEDED,
                         1700000100, &already, err, sizeof(err)),
           GW_OK);
  T_EQ_INT(already, 1);
  T_EQ_INT(gw_store_sub_get(st, "+96899000001", row), GW_OK);
  T_EQ_STR(row->revocation_reason, "keyCompromise");
  T_EQ_INT(gw_sub_revoke(ca, st, "+96899000099", GW_PKI_REASON_NONE, 1,
                         &already, err, sizeof(err)),
           GW_ERR_NOT_FOUND);
  T_ASSERT(strstr(err, "not in the subscriber registry") != NULL);
  /* The other SIM of the same person is untouched. */
  T_EQ_INT(gw_store_sub_get(st, "+96895000001", row), GW_OK);
  T_EQ_INT(row->revoked, 0);
  gw_sub_request_wipe(&r);

done:
  ERR_clear_error();
  X509_free(x);
  gw_pki_ca_del(ca);
  p11_module_del(m);
  gw_store_close(st);
  gw_pki_pins_wipe(&pins);
  gw_config_del(cfg);
  free(row);
}

int main(void) {
  char tmpl[] = "/tmp/gw_subscriber_test.XXXXXX";

  gw_log_min_level = GW_LOG_ERROR;
  if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir)) {
    printf("not ok - mkdtemp: %s\n", strerror(errno));
    return 1;
  }
  T_RUN(test_msisdn_civil_operator);
  T_RUN(test_name);
  T_RUN(test_pin_puk_behaviour);
  T_RUN(test_request_set);
  T_RUN(test_csv_rows);
  T_RUN(test_csv_bad_rows);
  T_RUN(test_csv_headers);
  T_RUN(test_csv_demo_file);
  T_RUN(test_provision_and_revoke);
  rm_rf(tmpdir);
  return T_DONE();
}
