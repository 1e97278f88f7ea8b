/* mpkictl.c — the admin CLI: command parsing and output. The work is done
 * by gw_pki (the CA), gw_subscriber (SIMs), gw_client (relying parties) and
 * the store (the registries).
 * See docs/mpkictl.md.
 *
 * Exit status: 0 done, 1 the operation failed, 2 usage (a bad option,
 * argument or configuration). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gw_audit.h"
#include "gw_client.h"
#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_pki.h"
#include "gw_store.h"
#include "gw_subscriber.h"
#include "gw_verify.h"
#include "p11.h"

#ifndef MPKIGW_VERSION
#define MPKIGW_VERSION "0.1.0"
#endif

enum { EX_DONE = 0, EX_FAIL = 1, EX_USAGE = 2 };

/* The largest CSV file read (a million SIMs is about 100 MiB). */
#define CSV_FILE_MAX (256L * 1024 * 1024)

typedef struct ctl {
  const char *config_path; /* --config, or NULL for the default */
  const char *cmd;         /* "sim provision", for messages */
  gw_config *cfg;
  gw_store *store;
  p11_module *m;
  gw_pki_ca *ca;
  gw_pki_pins pins;
} ctl;

typedef struct command {
  const char *name; /* "sim provision" */
  int (*run)(ctl *c, int argc, char **argv);
  const char *synopsis; /* the arguments, for the usage line */
  const char *summary;  /* one line, for the command list */
  const char *help;     /* the rest of --help */
} command;

static void fail(ctl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(ctl *c, const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "mpkictl: %s%s", c->cmd ? c->cmd : "", c->cmd ? ": " : "");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* Refuses arguments left after the options. Returns EX_DONE or EX_USAGE. */
static int no_extra_args(ctl *c, int argc, char **argv) {
  if (optind < argc) {
    fail(c, "unexpected argument '%s' (see mpkictl %s --help)", argv[optind],
         c->cmd);
    return EX_USAGE;
  }
  return EX_DONE;
}

/* Requires a well-formed --msisdn. Returns EX_DONE or EX_USAGE. */
static int need_msisdn(ctl *c, const char *msisdn) {
  char why[160];

  if (!msisdn) {
    fail(c, "missing --msisdn (see mpkictl %s --help)", c->cmd);
    return EX_USAGE;
  }
  if (gw_sub_check_msisdn(msisdn, why, sizeof(why)) != GW_OK) {
    fail(c, "--msisdn: %s", why);
    return EX_USAGE;
  }
  return EX_DONE;
}

/* ---- shared steps ------------------------------------------------------- */

static const char *default_config(void) {
  return access("var/mpkigw.conf", R_OK) == 0 ? "var/mpkigw.conf"
                                              : "configs/mpkigw.conf";
}

/* Loads the configuration and sets SOFTHSM2_CONF from it. */
static int load_config(ctl *c) {
  char err[1024];
  const char *path = c->config_path ? c->config_path : default_config();
  int rv = gw_config_load(&c->cfg, path, err, sizeof(err));

  if (rv != GW_OK) {
    fail(c, "%s", err);
    return EX_USAGE;
  }
  if (c->cfg->softhsm_conf[0] &&
      setenv("SOFTHSM2_CONF", c->cfg->softhsm_conf, 1) != 0) {
    fail(c, "cannot set SOFTHSM2_CONF: %s", strerror(errno));
    return EX_FAIL;
  }
  return EX_DONE;
}

static int open_store(ctl *c) {
  char err[1024];
  int rv = gw_store_open(&c->store, c->cfg->store_backend, c->cfg->store_path,
                         c->cfg->store_busy_timeout_ms, err, sizeof(err));

  if (rv != GW_OK) {
    fail(c, "cannot open the registry %s: %s", c->cfg->store_path, err);
    return EX_FAIL;
  }
  return EX_DONE;
}

static int open_module(ctl *c) {
  char err[1024];

  if (gw_pki_module_open(c->cfg, &c->m, err, sizeof(err)) != GW_OK) {
    fail(c, "%s", err);
    return EX_FAIL;
  }
  return EX_DONE;
}

/* Reads the PIN file; |create| makes it (random PINs) when it is missing. */
static int load_pins(ctl *c, int create, int *created) {
  char err[1024];
  int rv;

  if (created) {
    *created = 0;
  }
  if (create && access(c->cfg->pki_pin_file, F_OK) != 0 && errno == ENOENT) {
    rv = gw_pki_pins_create(c->cfg->pki_pin_file, &c->pins, err, sizeof(err));
    if (rv == GW_OK && created) {
      *created = 1;
    }
  } else {
    rv = gw_pki_pins_load(c->cfg->pki_pin_file, &c->pins, err, sizeof(err));
  }
  if (rv != GW_OK) {
    if (rv == GW_ERR_IO && !create && errno == ENOENT) {
      fail(c, "%s (pki.pin_file; `mpkictl ca init` creates it)", err);
    } else {
      fail(c, "%s", err);
    }
    return EX_FAIL;
  }
  return EX_DONE;
}

/* Opens the CA; |sign| loads the token's PIN and module for signatures. */
static int open_ca(ctl *c, int sign) {
  char err[1024];
  int rv;

  if (sign) {
    rv = load_pins(c, 0, NULL);
    if (rv == EX_DONE) {
      rv = open_module(c);
    }
    if (rv != EX_DONE) {
      return rv;
    }
  }
  rv = gw_pki_ca_open(&c->ca, c->cfg, sign ? c->m : NULL,
                      sign ? c->pins.ca_pin : NULL, err, sizeof(err));
  if (rv != GW_OK) {
    fail(c, "%s", err);
    return EX_FAIL;
  }
  return EX_DONE;
}

static void ctl_free(ctl *c) {
  gw_pki_ca_del(c->ca);
  p11_module_del(c->m);
  gw_store_close(c->store);
  gw_config_del(c->cfg);
  gw_pki_pins_wipe(&c->pins);
}

/* "2027-11-27" (|date_only|) or "2025-11-27T21:05:00Z". */
static const char *fmt_time(time_t t, int date_only, char *buf, size_t cap) {
  struct tm tm;

  if (t <= 0) {
    snprintf(buf, cap, "never");
    return buf;
  }
  gmtime_r(&t, &tm);
  strftime(buf, cap, date_only ? "%Y-%m-%d" : "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

static time_t asn1_time_t(const ASN1_TIME *a) {
  struct tm tm;

  if (!a || !ASN1_TIME_to_tm(a, &tm)) {
    return 0;
  }
  return timegm(&tm);
}

static X509 *pem_cert(const char *pem) {
  BIO *b = BIO_new_mem_buf(pem, -1);
  X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

  BIO_free(b);
  ERR_clear_error();
  return x;
}

/* Hides a PIN given on the command line from ps(1) once it is copied, and
 * wipes it (OPENSSL_cleanse). */
static void wipe_arg(char *arg) {
  if (arg) {
    OPENSSL_cleanse(arg, strlen(arg));
  }
}

/* Options common to every command. */
enum { OPT_HELP = 'h' };

/* Reports an unknown option or missing argument after getopt_long with
 * opterr = 0. */
static int bad_option(ctl *c, char **argv, int optopt_) {
  const char *arg = argv[optind - 1];

  if (optopt_ == 0) {
    fail(c, "unknown option %s (see mpkictl %s --help)", arg, c->cmd);
  } else if (strncmp(arg, "--", 2) == 0) {
    fail(c, "option %s needs a value (see mpkictl %s --help)", arg, c->cmd);
  } else {
    fail(c, "unknown option -%c (see mpkictl %s --help)", optopt_, c->cmd);
  }
  return EX_USAGE;
}

static const command *find_command(const char *name);
static void command_help(const command *cmd, FILE *fp);

/* Parses options that every command has (only --help) and refuses
 * arguments. Returns -1 to go on, or an exit status. */
static int no_options(ctl *c, int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, OPT_HELP},
                                       {NULL, 0, NULL, 0}};
  int opt;

  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (opt == OPT_HELP) {
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    }
    return bad_option(c, argv, optopt);
  }
  if (no_extra_args(c, argc, argv) != EX_DONE) {
    return EX_USAGE;
  }
  return -1;
}

/* ---- ca init ------------------------------------------------------------ */

static int cmd_ca_init(ctl *c, int argc, char **argv) {
  char err[1024], path[4200];
  int rv, created = 0;

  rv = no_options(c, argc, argv);
  if (rv >= 0) {
    return rv;
  }
  rv = load_config(c);
  if (rv == EX_DONE) {
    snprintf(path, sizeof(path), "%s/root-ca.pem", c->cfg->pki_dir);
    if (access(path, F_OK) == 0) {
      fail(c, "a CA exists already in %s (root-ca.pem); nothing was changed",
           c->cfg->pki_dir);
      return EX_FAIL;
    }
    rv = load_pins(c, 1, &created);
  }
  if (rv == EX_DONE) {
    rv = open_module(c);
  }
  if (rv != EX_DONE) {
    return rv;
  }
  if (gw_pki_ca_init(c->cfg, c->m, &c->pins, err, sizeof(err)) != GW_OK) {
    fail(c, "%s", err);
    return EX_FAIL;
  }
  printf("CA created in %s\n"
         "  root CA        root-ca.pem      CN=%s\n"
         "  issuing CA     issuing-ca.pem   CN=%s\n"
         "                 keys %s and %s: EC P-256 on token \"%s\"\n"
         "  OCSP signer    ocsp.pem, ocsp.key (key in a file: openssl ocsp "
         "-rkey needs one)\n"
         "  CA database    index.txt, index.txt.attr, crlnumber, certs/\n"
         "  CRL            %s\n"
         "  token PINs     %s%s\n",
         c->cfg->pki_dir, GW_PKI_ROOT_CN, GW_PKI_ISSUING_CN,
         GW_PKI_ROOT_KEY_LABEL, GW_PKI_ISSUING_KEY_LABEL, c->cfg->pki_ca_token,
         c->cfg->pki_crl, c->cfg->pki_pin_file,
         created ? " (created, mode 0600)" : "");
  return EX_DONE;
}

/* ---- gateway-key init --------------------------------------------------- */

static int cmd_gateway_key_init(ctl *c, int argc, char **argv) {
  gw_pki_gateway_kids kids;
  char err[1024];
  int rv, created = 0;

  rv = no_options(c, argc, argv);
  if (rv >= 0) {
    return rv;
  }
  rv = load_config(c);
  if (rv == EX_DONE) {
    rv = load_pins(c, 1, &created);
  }
  if (rv == EX_DONE) {
    rv = open_module(c);
  }
  if (rv != EX_DONE) {
    return rv;
  }
  if (gw_pki_gateway_keys_init(c->cfg, c->m, &c->pins, &kids, err,
                               sizeof(err)) != GW_OK) {
    fail(c, "%s", err);
    return EX_FAIL;
  }
  printf("gateway token-signing keys created on token \"%s\"\n"
         "  ES256  EC P-256     key \"%s\"  kid %s  %s/es256.pem\n"
         "  RS256  RSA-2048     key \"%s\"  kid %s  %s/rs256.pem\n"
         "  kids   %s/kids\n",
         c->cfg->gwkeys_token, GW_PKI_ES256_LABEL, kids.es256,
         c->cfg->gwkeys_dir, GW_PKI_RS256_LABEL, kids.rs256, c->cfg->gwkeys_dir,
         c->cfg->gwkeys_dir);
  if (created) {
    printf("  token PINs     %s (created, mode 0600)\n", c->cfg->pki_pin_file);
  }
  return EX_DONE;
}

/* ---- gateway-key rotate, list -------------------------------------------- */

static void print_gwkeys(const gw_pki_gwkeys *ks, long long now) {
  char t1[32], t2[32], t3[32];

  printf("%-5s  %-43s  %-10s  %-9s  %-20s  %-20s  %s\n", "ALG", "KID", "LABEL",
         "STATE", "PUBLISHED", "SIGNS FROM", "RETIRES");
  for (size_t i = 0; i < ks->n; i++) {
    const gw_pki_gwkey *k = &ks->k[i];

    printf("%-5s  %-43s  %-10s  %-9s  %-20s  %-20s  %s\n", k->alg, k->kid,
           k->label, gw_pki_gwkey_state_name(gw_pki_gwkey_state_at(ks, i, now)),
           fmt_time((time_t)k->publish_at, 0, t1, sizeof(t1)),
           fmt_time((time_t)k->sign_from, 0, t2, sizeof(t2)),
           k->retire_at ? fmt_time((time_t)k->retire_at, 0, t3, sizeof(t3))
                        : "-");
  }
}

static int cmd_gateway_key_rotate(ctl *c, int argc, char **argv) {
  enum { O_ALG = 256, O_LEAD };
  static const struct option opts[] = {
      {"alg", required_argument, NULL, O_ALG},
      {"publish-lead-s", required_argument, NULL, O_LEAD},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  gw_pki_rotate_opts o = {1, 1, 600, 0, 0};
  gw_pki_gwkeys *after = NULL;
  char err[1024], *end;
  int opt, rv;

  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (opt == O_ALG) {
      o.es256 = strcmp(optarg, "ES256") == 0 || strcmp(optarg, "both") == 0;
      o.rs256 = strcmp(optarg, "RS256") == 0 || strcmp(optarg, "both") == 0;
      if (!o.es256 && !o.rs256) {
        fail(c, "--alg: ES256, RS256 or both, not '%s'", optarg);
        return EX_USAGE;
      }
    } else if (opt == O_LEAD) {
      errno = 0;
      o.lead_s = strtoll(optarg, &end, 10);
      if (errno || *end || end == optarg || o.lead_s < 0 ||
          o.lead_s > 30LL * 86400) {
        fail(c, "--publish-lead-s: 0 to 2592000 seconds, not '%s'", optarg);
        return EX_USAGE;
      }
    } else if (opt == OPT_HELP) {
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    } else {
      return bad_option(c, argv, optopt);
    }
  }
  if (no_extra_args(c, argc, argv) != EX_DONE) {
    return EX_USAGE;
  }
  rv = load_config(c);
  if (rv == EX_DONE) {
    rv = load_pins(c, 0, NULL);
  }
  if (rv == EX_DONE) {
    rv = open_module(c);
  }
  if (rv != EX_DONE) {
    return rv;
  }
  /* The old key verifies until the last token it signed has expired. */
  o.keep_s = (c->cfg->oidc_access_ttl_s > c->cfg->oidc_id_ttl_s
                  ? c->cfg->oidc_access_ttl_s
                  : c->cfg->oidc_id_ttl_s) +
             60;
  o.now = (long long)time(NULL);
  if (o.lead_s < 600) {
    fprintf(stderr,
            "mpkictl: %s: warning: --publish-lead-s %lld is under 600: "
            "clients that cached the JWKS (10 min) may refuse the new "
            "key's tokens\n",
            c->cmd, o.lead_s);
  }
  after = malloc(sizeof(*after));
  if (!after) {
    fail(c, "out of memory");
    return EX_FAIL;
  }
  if (gw_pki_gateway_keys_rotate(c->cfg, c->m, &c->pins, &o, after, err,
                                 sizeof(err)) != GW_OK) {
    fail(c, "%s", err);
    free(after);
    return EX_FAIL;
  }
  printf("gateway keys rotated on token \"%s\": the new keys are published "
         "now and sign from %lld s on (%s/kids)\n",
         c->cfg->gwkeys_token, o.lead_s, c->cfg->gwkeys_dir);
  print_gwkeys(after, o.now);
  free(after);
  return EX_DONE;
}

static int cmd_gateway_key_list(ctl *c, int argc, char **argv) {
  gw_pki_gwkeys *ks;
  char err[1024];
  int rv;

  rv = no_options(c, argc, argv);
  if (rv >= 0) {
    return rv;
  }
  rv = load_config(c);
  if (rv != EX_DONE) {
    return rv;
  }
  ks = malloc(sizeof(*ks));
  if (!ks) {
    fail(c, "out of memory");
    return EX_FAIL;
  }
  if (gw_pki_gwkeys_read(c->cfg->gwkeys_dir, ks, err, sizeof(err)) != GW_OK) {
    fail(c, "%s", err);
    free(ks);
    return EX_FAIL;
  }
  print_gwkeys(ks, (long long)time(NULL));
  free(ks);
  return EX_DONE;
}

/* ---- sim provision ------------------------------------------------------ */

/* Draws "[#####.....]  5/11 +96899000005" on the terminal line. */
static void progress(size_t done, size_t total, const char *msisdn) {
  char bar[31];
  size_t fill = total ? done * 30 / total : 30;

  memset(bar, '#', fill);
  memset(bar + fill, '.', 30 - fill);
  bar[30] = '\0';
  fprintf(stderr, "\r\033[K[%s] %zu/%zu %s", bar, done, total, msisdn);
  fflush(stderr);
}

static void progress_clear(void) {
  fputs("\r\033[K", stderr);
}

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int provision_one(ctl *c, const gw_sub_request *r, int quiet, char *err,
                         size_t errlen) {
  char until[32], serial[GW_PKI_SERIAL_HEX_MAX + 1];
  X509 *x = NULL;
  int rv;

  rv = gw_sub_provision(c->m, c->ca, c->store, r, &x, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  if (!quiet) {
    gw_pki_serial_hex(x, serial, sizeof(serial));
    printf(
        "provisioned %s (%s): token \"%s\", key \"%s\" (EC P-256), "
        "certificate %s valid until %s\n",
        r->msisdn, r->operator_name, r->msisdn, GW_SUB_KEY_LABEL, serial,
        fmt_time(asn1_time_t(X509_get0_notAfter(x)), 1, until, sizeof(until)));
  }
  X509_free(x);
  return GW_OK;
}

static int read_text_file(ctl *c, const char *path, char **out, size_t *len) {
  struct stat st;
  FILE *fp = fopen(path, "rb");
  size_t n;

  if (!fp) {
    fail(c, "cannot read %s: %s", path, strerror(errno));
    return EX_FAIL;
  }
  if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size > CSV_FILE_MAX) {
    fail(c, "%s: not a regular file of at most %ld bytes", path, CSV_FILE_MAX);
    fclose(fp);
    return EX_FAIL;
  }
  *out = malloc((size_t)st.st_size + 1);
  if (!*out) {
    fclose(fp);
    fail(c, "out of memory");
    return EX_FAIL;
  }
  n = fread(*out, 1, (size_t)st.st_size, fp);
  fclose(fp);
  (*out)[n] = '\0';
  *len = n;
  return EX_DONE;
}

static int provision_csv(ctl *c, const char *path, int skip_existing) {
  char err[1024], *text = NULL;
  gw_sub_csv *csv = NULL;
  gw_sub_request r;
  gw_store_sub *row = NULL;
  size_t len = 0, total, done = 0, ok = 0, bad = 0, skipped = 0;
  int tty = isatty(STDERR_FILENO), rv;
  double t0 = now_s();
  long line = 0;

  rv = read_text_file(c, path, &text, &len);
  if (rv != EX_DONE) {
    return rv;
  }
  rv = gw_sub_csv_new(&csv, path, text, len, err, sizeof(err));
  OPENSSL_cleanse(text, len);
  free(text);
  if (rv != GW_OK) {
    fail(c, "%s", err);
    return EX_FAIL;
  }
  total = gw_sub_csv_rows(csv);
  row = malloc(sizeof(*row));
  if (!row) {
    gw_sub_csv_del(csv);
    fail(c, "out of memory");
    return EX_FAIL;
  }
  /* Everything every row needs, checked once: a wrong CA PIN should be one
   * message, not one per row. */
  rv = open_store(c);
  if (rv == EX_DONE) {
    rv = open_ca(c, 1);
  }
  if (rv == EX_DONE && gw_pki_ca_check_key(c->ca, err, sizeof(err)) != GW_OK) {
    fail(c, "%s", err);
    rv = EX_FAIL;
  }
  if (rv != EX_DONE) {
    fail(c, "no SIM was provisioned from %s", path);
    free(row);
    gw_sub_csv_del(csv);
    return rv;
  }
  for (;;) {
    rv = gw_sub_csv_next(csv, &r, &line, err, sizeof(err));
    if (rv == GW_ERR_NOT_FOUND) {
      break;
    }
    if (tty) {
      progress(done, total, rv == GW_OK ? r.msisdn : "");
    }
    if (rv != GW_OK) {
      /* The parser's "FILE:LINE: reason". */
      if (tty) {
        progress_clear();
      }
      fprintf(stderr, "%s\n", err);
      bad++;
    } else if (skip_existing &&
               gw_store_sub_get(c->store, r.msisdn, row) == GW_OK) {
      skipped++;
    } else if (provision_one(c, &r, 1, err, sizeof(err)) != GW_OK) {
      if (tty) {
        progress_clear();
      }
      fprintf(stderr, "%s:%ld: %s: %s\n", path, line, r.msisdn, err);
      bad++;
    } else {
      ok++;
    }
    gw_sub_request_wipe(&r);
    done++;
  }
  if (tty) {
    progress(done, total, "");
    fputc('\n', stderr);
  }
  printf("provisioned %zu of %zu SIMs from %s in %.1f s (%zu failed, %zu "
         "skipped as already provisioned)\n",
         ok, total, path, now_s() - t0, bad, skipped);
  free(row);
  gw_sub_csv_del(csv);
  return bad ? EX_FAIL : EX_DONE;
}

static int cmd_sim_provision(ctl *c, int argc, char **argv) {
  enum {
    O_MSISDN = 256,
    O_CIVIL,
    O_NAME,
    O_OP,
    O_PIN,
    O_PUK,
    O_BEH,
    O_CSV,
    O_SKIP
  };
  static const struct option opts[] = {
      {"msisdn", required_argument, NULL, O_MSISDN},
      {"civil-id", required_argument, NULL, O_CIVIL},
      {"name", required_argument, NULL, O_NAME},
      {"operator", required_argument, NULL, O_OP},
      {"pin", required_argument, NULL, O_PIN},
      {"puk", required_argument, NULL, O_PUK},
      {"behaviour", required_argument, NULL, O_BEH},
      {"csv", required_argument, NULL, O_CSV},
      {"skip-existing", no_argument, NULL, O_SKIP},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  const char *msisdn = NULL, *civil = NULL, *name = NULL, *op = NULL,
             *beh = NULL, *csv = NULL;
  char *pin = NULL, *puk = NULL, why[512], err[1024];
  int opt, skip = 0, rv;
  gw_sub_request r;

  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (opt) {
    case O_MSISDN:
      msisdn = optarg;
      break;
    case O_CIVIL:
      civil = optarg;
      break;
    case O_NAME:
      name = optarg;
      break;
    case O_OP:
      op = optarg;
      break;
    case O_PIN:
      pin = optarg;
      break;
    case O_PUK:
      puk = optarg;
      break;
    case O_BEH:
      beh = optarg;
      break;
    case O_CSV:
      csv = optarg;
      break;
    case O_SKIP:
      skip = 1;
      break;
    case OPT_HELP:
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    default:
      return bad_option(c, argv, optopt);
    }
  }
  if (no_extra_args(c, argc, argv) != EX_DONE) {
    return EX_USAGE;
  }
  if (csv) {
    if (msisdn || civil || name || op || pin || puk || beh) {
      fail(c, "--csv takes every SIM from the file: it cannot be combined "
              "with --msisdn, --civil-id, --name, --operator, --pin, --puk "
              "or --behaviour");
      return EX_USAGE;
    }
    rv = load_config(c);
    return rv == EX_DONE ? provision_csv(c, csv, skip) : rv;
  }
  if (!msisdn || !civil || !name || !op) {
    fail(c, "missing %s (or give --csv FILE; see mpkictl %s --help)",
         !msisdn  ? "--msisdn"
         : !civil ? "--civil-id"
         : !name  ? "--name"
                  : "--operator",
         c->cmd);
    return EX_USAGE;
  }
  rv = gw_sub_request_set(&r, msisdn, civil, name, op, pin, puk, beh, why,
                          sizeof(why));
  wipe_arg(pin);
  wipe_arg(puk);
  if (rv != GW_OK) {
    fail(c, "%s", why);
    return EX_USAGE;
  }
  rv = load_config(c);
  if (rv == EX_DONE) {
    rv = open_store(c);
  }
  if (rv == EX_DONE && skip &&
      gw_store_sub_get(c->store, r.msisdn, &(gw_store_sub){0}) == GW_OK) {
    printf("%s is already provisioned: skipped\n", r.msisdn);
    gw_sub_request_wipe(&r);
    return EX_DONE;
  }
  if (rv == EX_DONE) {
    rv = open_ca(c, 1);
  }
  if (rv == EX_DONE && provision_one(c, &r, 0, err, sizeof(err)) != GW_OK) {
    fail(c, "%s: %s", r.msisdn, err);
    rv = EX_FAIL;
  }
  gw_sub_request_wipe(&r);
  return rv;
}

/* ---- sim list / show ---------------------------------------------------- */

typedef struct list_state {
  size_t n, revoked;
} list_state;

static int list_row(const gw_store_sub *s, void *arg) {
  list_state *st = arg;
  char until[32] = "?";
  X509 *x = pem_cert(s->cert_pem);

  if (x) {
    fmt_time(asn1_time_t(X509_get0_notAfter(x)), 1, until, sizeof(until));
    X509_free(x);
  }
  if (st->n == 0) {
    printf("%-13s  %-8s  %-10s  %-7s  %-10s  %-14s  %s\n", "MSISDN", "OPERATOR",
           "CIVIL ID", "STATUS", "NOT AFTER", "BEHAVIOUR", "NAME");
  }
  printf("%-13s  %-8s  %-10s  %-7s  %-10s  %-14s  %s\n", s->msisdn,
         s->operator_name, s->civil_id, s->revoked ? "revoked" : "active",
         until, s->behaviour[0] ? s->behaviour : "-", s->name);
  st->n++;
  st->revoked += s->revoked != 0;
  return GW_OK;
}

static int cmd_sim_list(ctl *c, int argc, char **argv) {
  enum { O_CIVIL = 256 };
  static const struct option opts[] = {
      {"civil-id", required_argument, NULL, O_CIVIL},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  const char *civil = NULL;
  list_state st = {0, 0};
  char why[256];
  int opt, rv;

  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (opt == O_CIVIL) {
      civil = optarg;
    } else if (opt == OPT_HELP) {
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    } else {
      return bad_option(c, argv, optopt);
    }
  }
  if (no_extra_args(c, argc, argv) != EX_DONE) {
    return EX_USAGE;
  }
  if (civil && gw_sub_check_civil_id(civil, why, sizeof(why)) != GW_OK) {
    fail(c, "--civil-id: %s", why);
    return EX_USAGE;
  }
  rv = load_config(c);
  if (rv == EX_DONE) {
    rv = open_store(c);
  }
  if (rv != EX_DONE) {
    return rv;
  }
  rv = gw_store_sub_list(c->store, civil, list_row, &st);
  if (rv != GW_OK) {
    fail(c, "registry: %s", gw_store_errmsg(c->store));
    return EX_FAIL;
  }
  if (st.n == 0) {
    printf(civil ? "no SIM of civil number %s in the registry\n"
                 : "no SIM in the registry (mpkictl sim provision adds "
                   "them)%s\n",
           civil ? civil : "");
  } else {
    printf("%zu SIM%s: %zu active, %zu revoked\n", st.n, st.n == 1 ? "" : "s",
           st.n - st.revoked, st.revoked);
  }
  return EX_DONE;
}

/* The subjectAltName URIs of |x|, comma-separated. */
static void san_uris(X509 *x, char *buf, size_t cap) {
  GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  size_t o = 0;

  buf[0] = '\0';
  for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
    if (gn->type == GEN_URI) {
      const ASN1_IA5STRING *u = gn->d.uniformResourceIdentifier;
      int n = snprintf(buf + o, cap - o, "%sURI:%.*s", o ? ", " : "",
                       ASN1_STRING_length(u),
                       (const char *)ASN1_STRING_get0_data(u));
      if (n < 0 || (size_t)n >= cap - o) {
        break;
      }
      o += (size_t)n;
    }
  }
  GENERAL_NAMES_free(gens);
}

static void print_name(const char *label, const X509_NAME *name) {
  BIO *b = BIO_new_fp(stdout, BIO_NOCLOSE);

  printf("%-15s", label);
  fflush(stdout);
  if (b) {
    /* RFC 2253 order (most specific first), UTF-8 shown as UTF-8. */
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    BIO_free(b);
  }
  printf("\n");
}

static int cmd_sim_show(ctl *c, int argc, char **argv) {
  enum { O_MSISDN = 256, O_CERT };
  static const struct option opts[] = {
      {"msisdn", required_argument, NULL, O_MSISDN},
      {"cert", no_argument, NULL, O_CERT},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  const char *msisdn = NULL;
  char t1[32], t2[32], sans[512];
  gw_store_sub *s = NULL;
  int opt, cert = 0, rv;
  X509 *x;

  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (opt == O_MSISDN) {
      msisdn = optarg;
    } else if (opt == O_CERT) {
      cert = 1;
    } else if (opt == OPT_HELP) {
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    } else {
      return bad_option(c, argv, optopt);
    }
  }
  if (no_extra_args(c, argc, argv) != EX_DONE ||
      need_msisdn(c, msisdn) != EX_DONE) {
    return EX_USAGE;
  }
  rv = load_config(c);
  if (rv == EX_DONE) {
    rv = open_store(c);
  }
  if (rv != EX_DONE) {
    return rv;
  }
  s = malloc(sizeof(*s));
  if (!s) {
    fail(c, "out of memory");
    return EX_FAIL;
  }
  rv = gw_store_sub_get(c->store, msisdn, s);
  if (rv != GW_OK) {
    if (rv == GW_ERR_NOT_FOUND) {
      fail(c, "%s is not in the subscriber registry", msisdn);
    } else {
      fail(c, "registry: %s", gw_store_errmsg(c->store));
    }
    free(s);
    return EX_FAIL;
  }
  if (cert) {
    fputs(s->cert_pem, stdout);
    free(s);
    return EX_DONE;
  }
  printf("%-15s%s\n%-15s%s\n%-15s%s\n%-15s%s\n", "msisdn:", s->msisdn,
         "civil id:", s->civil_id, "name:", s->name,
         "operator:", s->operator_name);
  if (s->revoked) {
    printf("%-15srevoked %s%s%s%s\n",
           "status:", fmt_time((time_t)s->revoked_at, 0, t1, sizeof(t1)),
           s->revocation_reason[0] ? " (" : "", s->revocation_reason,
           s->revocation_reason[0] ? ")" : "");
  } else {
    printf("%-15sactive\n", "status:");
  }
  printf("%-15s%s\n%-15s\"%s\", key \"%s\"\n%-15s%s\n%-15s%s\n%-15s%s\n",
         "behaviour:", s->behaviour[0] ? s->behaviour : "-",
         "token:", s->msisdn, GW_SUB_KEY_LABEL,
         "provisioned:", fmt_time((time_t)s->created_at, 0, t1, sizeof(t1)),
         "last signed:", fmt_time((time_t)s->last_signed_at, 0, t2, sizeof(t2)),
         "serial:", s->cert_serial);
  x = pem_cert(s->cert_pem);
  if (x) {
    print_name("subject:", X509_get_subject_name(x));
    print_name("issuer:", X509_get_issuer_name(x));
    san_uris(x, sans, sizeof(sans));
    printf("%-15s%s\n%-15s%s to %s\n", "alt names:", sans, "valid:",
           fmt_time(asn1_time_t(X509_get0_notBefore(x)), 0, t1, sizeof(t1)),
           fmt_time(asn1_time_t(X509_get0_notAfter(x)), 0, t2, sizeof(t2)));
    X509_free(x);
  } else {
    printf("%-15s(the stored certificate does not parse)\n", "certificate:");
  }
  free(s);
  return EX_DONE;
}

/* ---- cert revoke -------------------------------------------------------- */

static int cmd_cert_revoke(ctl *c, int argc, char **argv) {
  enum { O_MSISDN = 256, O_REASON };
  static const struct option opts[] = {
      {"msisdn", required_argument, NULL, O_MSISDN},
      {"reason", required_argument, NULL, O_REASON},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  const char *msisdn = NULL, *reason_arg = NULL;
  gw_pki_reason reason = GW_PKI_REASON_NONE;
  char err[1024], when_s[32];
  time_t now = time(NULL);
  int opt, rv, already = 0;
  gw_store_sub *s;

  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (opt == O_MSISDN) {
      msisdn = optarg;
    } else if (opt == O_REASON) {
      reason_arg = optarg;
    } else if (opt == OPT_HELP) {
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    } else {
      return bad_option(c, argv, optopt);
    }
  }
  if (no_extra_args(c, argc, argv) != EX_DONE ||
      need_msisdn(c, msisdn) != EX_DONE) {
    return EX_USAGE;
  }
  if (reason_arg && gw_pki_reason_parse(reason_arg, &reason) != GW_OK) {
    char q[96];
    fail(c, "--reason: %s is not one of %s",
         gw_log_quote(q, sizeof(q), reason_arg, strnlen(reason_arg, 64)),
         gw_pki_reason_list());
    return EX_USAGE;
  }
  rv = load_config(c);
  if (rv == EX_DONE) {
    rv = open_store(c);
  }
  if (rv == EX_DONE) {
    rv = open_ca(c, 0);
  }
  if (rv != EX_DONE) {
    return rv;
  }
  err[0] = '\0';
  if (gw_sub_revoke(c->ca, c->store, msisdn, reason, now, &already, err,
                    sizeof(err)) != GW_OK) {
    fail(c, "%s", err);
    return EX_FAIL;
  }
  s = malloc(sizeof(*s));
  if (s && gw_store_sub_get(c->store, msisdn, s) == GW_OK) {
    if (already) {
      printf("%s: certificate %s was already revoked on %s%s%s%s; nothing "
             "changed\n",
             msisdn, s->cert_serial,
             fmt_time((time_t)s->revoked_at, 0, when_s, sizeof(when_s)),
             s->revocation_reason[0] ? " (" : "", s->revocation_reason,
             s->revocation_reason[0] ? ")" : "");
    } else {
      printf("revoked %s: certificate %s%s%s%s at %s; run `mpkictl crl "
             "publish` to put it on the CRL\n",
             msisdn, s->cert_serial, s->revocation_reason[0] ? " (" : "",
             s->revocation_reason, s->revocation_reason[0] ? ")" : "",
             fmt_time(now, 0, when_s, sizeof(when_s)));
    }
  }
  free(s);
  return EX_DONE;
}

/* ---- crl publish -------------------------------------------------------- */

static int cmd_crl_publish(ctl *c, int argc, char **argv) {
  char err[1024], next[32];
  size_t entries = 0;
  long number = 0;
  int rv;

  rv = no_options(c, argc, argv);
  if (rv >= 0) {
    return rv;
  }
  rv = load_config(c);
  if (rv == EX_DONE) {
    rv = open_ca(c, 1);
  }
  if (rv != EX_DONE) {
    return rv;
  }
  if (gw_pki_ca_publish_crl(c->ca, &number, &entries, err, sizeof(err)) !=
      GW_OK) {
    fail(c, "%s", err);
    return EX_FAIL;
  }
  printf("published CRL number %ld with %zu revoked certificate%s to %s "
         "(next update %s)\n",
         number, entries, entries == 1 ? "" : "s", c->cfg->pki_crl,
         fmt_time(time(NULL) + (time_t)c->cfg->pki_crl_days * 86400, 0, next,
                  sizeof(next)));
  return EX_DONE;
}

/* ---- cert check --------------------------------------------------------- */

/* Reads at most |cap| + 1 bytes of |path| into |buf| (the verifier refuses
 * a certificate over its cap, so one byte more is enough to tell). */
static int read_cert_file(ctl *c, const char *path, unsigned char *buf,
                          size_t cap, size_t *len) {
  FILE *fp = fopen(path, "rb");
  struct stat st;
  size_t n;

  if (!fp) {
    fail(c, "cannot read %s: %s", path, strerror(errno));
    return EX_FAIL;
  }
  if (fstat(fileno(fp), &st) != 0 || S_ISDIR(st.st_mode)) {
    fail(c, "%s: not a file", path);
    fclose(fp);
    return EX_FAIL;
  }
  n = fread(buf, 1, cap + 1, fp);
  if (ferror(fp)) {
    fail(c, "cannot read %s: %s", path, strerror(errno));
    fclose(fp);
    return EX_FAIL;
  }
  fclose(fp);
  *len = n;
  return EX_DONE;
}

static int cmd_cert_check(ctl *c, int argc, char **argv) {
  enum { O_MSISDN = 256, O_CERT, O_OCSP_URL, O_NO_CRL, O_NO_OCSP };
  static const struct option opts[] = {
      {"msisdn", required_argument, NULL, O_MSISDN},
      {"cert", required_argument, NULL, O_CERT},
      {"ocsp-url", required_argument, NULL, O_OCSP_URL},
      {"no-crl", no_argument, NULL, O_NO_CRL},
      {"no-ocsp", no_argument, NULL, O_NO_OCSP},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  const char *msisdn = NULL, *cert_path = NULL, *ocsp_arg = NULL, *ocsp;
  char why[256], err[1024], roots[4200], inter[4200], q[3 * 256];
  char civil[GW_VERIFY_CIVIL_MAX + 1] = "";
  int opt, rv, no_crl = 0, no_ocsp = 0;
  int saved_level;
  unsigned char *buf = NULL;
  size_t len = 0;
  gw_store_sub *s = NULL;
  gw_verify_config vc;
  gw_verify *v = NULL;
  gw_verify_req rq;
  gw_verify_status *st = NULL;
  gw_verify_result r;
  const gw_verify_identity *id;

  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (opt) {
    case O_MSISDN:
      msisdn = optarg;
      break;
    case O_CERT:
      cert_path = optarg;
      break;
    case O_OCSP_URL:
      ocsp_arg = optarg;
      break;
    case O_NO_CRL:
      no_crl = 1;
      break;
    case O_NO_OCSP:
      no_ocsp = 1;
      break;
    case OPT_HELP:
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    default:
      return bad_option(c, argv, optopt);
    }
  }
  if (no_extra_args(c, argc, argv) != EX_DONE) {
    return EX_USAGE;
  }
  if (!msisdn == !cert_path) {
    fail(c, "%s (see mpkictl %s --help)",
         msisdn ? "give --msisdn or --cert, not both"
                : "missing --msisdn (or --cert FILE)",
         c->cmd);
    return EX_USAGE;
  }
  if (msisdn && gw_sub_check_msisdn(msisdn, why, sizeof(why)) != GW_OK) {
    fail(c, "--msisdn: %s", why);
    return EX_USAGE;
  }
  if (ocsp_arg && no_ocsp) {
    fail(c, "--ocsp-url and --no-ocsp contradict each other");
    return EX_USAGE;
  }
  if (ocsp_arg && strncmp(ocsp_arg, "http://", 7) != 0) {
    fail(c, "--ocsp-url: %s is not an http:// URL",
         gw_log_quote(q, sizeof(q), ocsp_arg, strnlen(ocsp_arg, 200)));
    return EX_USAGE;
  }
  rv = load_config(c);
  if (rv != EX_DONE) {
    return rv;
  }
  ocsp = no_ocsp ? "" : ocsp_arg ? ocsp_arg : c->cfg->pki_ocsp_url;

  buf = malloc(GW_VERIFY_CERT_MAX + 1);
  st = malloc(sizeof(*st));
  if (!buf || !st) {
    fail(c, "out of memory");
    rv = EX_FAIL;
    goto done;
  }
  if (cert_path) {
    rv = read_cert_file(c, cert_path, buf, GW_VERIFY_CERT_MAX, &len);
  } else {
    rv = open_store(c);
    if (rv == EX_DONE && !(s = malloc(sizeof(*s)))) {
      fail(c, "out of memory");
      rv = EX_FAIL;
    }
    if (rv == EX_DONE) {
      int g = gw_store_sub_get(c->store, msisdn, s);
      if (g == GW_ERR_NOT_FOUND) {
        fail(c, "%s is not in the subscriber registry", msisdn);
        rv = EX_FAIL;
      } else if (g != GW_OK) {
        fail(c, "registry: %s", gw_store_errmsg(c->store));
        rv = EX_FAIL;
      }
    }
    if (rv == EX_DONE) {
      len = strnlen(s->cert_pem, GW_VERIFY_CERT_MAX + 1);
      memcpy(buf, s->cert_pem, len);
      snprintf(civil, sizeof(civil), "%s", s->civil_id);
    }
  }
  if (rv != EX_DONE) {
    goto done;
  }

  /* The gateway's verifier, configured as the gateway would be from this
   * configuration: trust anchors in pki.dir, pki.crl, pki.ocsp_url,
   * pki.clock_skew_s. No cache: one full check. */
  snprintf(roots, sizeof(roots), "%s/root-ca.pem", c->cfg->pki_dir);
  snprintf(inter, sizeof(inter), "%s/issuing-ca.pem", c->cfg->pki_dir);
  gw_verify_config_init(&vc);
  vc.roots_file = roots;
  vc.intermediates_file = inter;
  vc.crl_file = no_crl ? NULL : c->cfg->pki_crl;
  vc.ocsp_url = ocsp[0] ? ocsp : NULL;
  vc.clock_skew_s = c->cfg->pki_clock_skew_s;
  vc.cache_size = 0;
  err[0] = '\0';
  /* A CRL that does not load is a warning of the verifier's; here the
   * outcome line says it. */
  saved_level = gw_log_min_level;
  gw_log_min_level = GW_LOG_ERROR;
  rv = gw_verify_new(&v, &vc, err, sizeof(err));
  gw_log_min_level = saved_level;
  if (rv != GW_OK) {
    fail(c, "cannot set up the verifier: %s", err[0] ? err : gw_strerror(rv));
    /* A URL the verifier does not take came from the command line or the
     * configuration: a usage error. Unusable trust files: a failure. */
    rv = rv == GW_ERR_INVALID ? EX_USAGE : EX_FAIL;
    goto done;
  }
  memset(&rq, 0, sizeof(rq));
  rq.cert = buf;
  rq.cert_len = len;
  if (msisdn) {
    /* The registry row and the certificate must name the same person. */
    rq.expect_msisdn = msisdn;
    rq.expect_civil_id = civil;
  }
  r = gw_verify_cert(v, &rq, st);
  if (r == GW_VERIFY_OK) {
    printf("%s: good\n", msisdn ? msisdn : cert_path);
  } else {
    printf("%s: %s (ETSI %d): %s\n", msisdn ? msisdn : cert_path,
           gw_verify_result_str(r), gw_verify_result_etsi(r),
           st->detail[0] ? st->detail : "-");
  }
  id = &st->identity;
  if (st->have_cert) {
    gw_log_quote(q, sizeof(q), id->name, strlen(id->name));
    printf("  identity:   civil id %s, msisdn %s, name %s\n",
           id->civil_id[0] ? id->civil_id : "(none)",
           id->msisdn[0] ? id->msisdn : "(none)", id->name[0] ? q : "(none)");
  } else {
    printf("  identity:   (the certificate did not parse)\n");
  }
  if (no_crl && !ocsp[0]) {
    printf("  revocation: not checked (--no-crl, and no OCSP URL)\n");
  } else {
    printf("  revocation: %s%s%s%s%s\n", no_crl ? "" : "CRL ",
           no_crl ? "" : c->cfg->pki_crl, !no_crl && ocsp[0] ? ", " : "",
           ocsp[0] ? "OCSP " : "", ocsp);
  }
  rv = r == GW_VERIFY_OK ? EX_DONE : EX_FAIL;

done:
  gw_verify_del(v);
  free(s);
  free(st);
  free(buf);
  return rv;
}

/* ---- client add / list / remove ------------------------------------------ */

/* A short name on the command line and the word stored for it. */
typedef struct word_map {
  const char *arg, *word;
} word_map;

static const word_map auth_map[] = {
    {"basic", "client_secret_basic"},
    {"post", "client_secret_post"},
    {"client_secret_basic", "client_secret_basic"},
    {"client_secret_post", "client_secret_post"},
};

static const word_map grant_map[] = {
    {"ciba", "urn:openid:params:grant-type:ciba"},
    {"urn:openid:params:grant-type:ciba", "urn:openid:params:grant-type:ciba"},
    {"authorization_code", "authorization_code"},
    {"refresh_token", "refresh_token"},
};

/* Appends |n| bytes of |word| to the space-separated list |dst|. Returns
 * EX_DONE, or EX_USAGE when the list is full. */
static int list_add(ctl *c, const char *opt, char *dst, size_t cap,
                    const char *word, size_t n) {
  size_t o = strlen(dst);

  if (o + (o ? 1 : 0) + n >= cap) {
    fail(c, "%s: more than %zu bytes in all", opt, cap - 1);
    return EX_USAGE;
  }
  if (o) {
    dst[o++] = ' ';
  }
  memcpy(dst + o, word, n);
  dst[o + n] = '\0';
  return EX_DONE;
}

/* Translates the comma-separated |arg| of |opt| through |map| into the
 * list |dst|. */
static int map_words(ctl *c, const char *opt, const char *arg,
                     const word_map *map, size_t nmap, char *dst, size_t cap) {
  const char *p = arg;
  char q[200];

  dst[0] = '\0';
  for (;;) {
    size_t n = strcspn(p, ",");
    size_t i;

    for (i = 0; i < nmap; i++) {
      if (strlen(map[i].arg) == n && strncmp(map[i].arg, p, n) == 0) {
        break;
      }
    }
    if (i == nmap) {
      fail(c, "%s: %s is not one of %s", opt, gw_log_quote(q, sizeof(q), p, n),
           map == auth_map ? "basic, post"
                           : "ciba, authorization_code, refresh_token");
      return EX_USAGE;
    }
    if (list_add(c, opt, dst, cap, map[i].word, strlen(map[i].word)) !=
        EX_DONE) {
      return EX_USAGE;
    }
    if (!p[n]) {
      return EX_DONE;
    }
    p += n + 1;
  }
}

/* Copies a string option into a row field. */
static int opt_copy(ctl *c, const char *opt, const char *arg, char *dst,
                    size_t cap) {
  size_t n = strlen(arg);

  if (n >= cap) {
    fail(c, "%s: longer than %zu bytes", opt, cap - 1);
    return EX_USAGE;
  }
  memcpy(dst, arg, n + 1);
  return EX_DONE;
}

/* Requires a well-formed --id (the rule of gw_client_check). */
static int need_client_id(ctl *c, const char *id) {
  size_t n = id ? strnlen(id, GW_STORE_CLIENT_ID_MAX + 1) : 0;
  char q[200];

  if (!id) {
    fail(c, "missing --id (see mpkictl %s --help)", c->cmd);
    return EX_USAGE;
  }
  if (n == 0 || n > GW_STORE_CLIENT_ID_MAX ||
      strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                 "0123456789._-") != n) {
    fail(c, "--id: %s is not 1 to %d of A-Z a-z 0-9 . _ -",
         gw_log_quote(q, sizeof(q), id, strnlen(id, 80)),
         GW_STORE_CLIENT_ID_MAX);
    return EX_USAGE;
  }
  return EX_DONE;
}

/* What `client add` was given, before it becomes a row. */
typedef struct client_opts {
  const char *id, *name, *auth, *grant, *scope, *mode, *endpoint, *alg;
  char *secret;
  int rs, replace;
} client_opts;

/* Builds the row from the options and the defaults, and checks it. */
static int client_row(ctl *c, const client_opts *o, gw_store_client *row) {
  const char *mode;
  int rv;

  memset(row, 0, sizeof(*row));
  rv = opt_copy(c, "--id", o->id, row->client_id, sizeof(row->client_id));
  if (rv == EX_DONE) {
    rv = opt_copy(c, "--name", o->name ? o->name : o->id, row->name,
                  sizeof(row->name));
  }
  if (rv == EX_DONE) {
    rv = map_words(c, "--auth", o->auth ? o->auth : "basic,post", auth_map,
                   sizeof(auth_map) / sizeof(auth_map[0]), row->auth_methods,
                   sizeof(row->auth_methods));
  }
  /* A resource server alone needs no grant; any other client gets CIBA,
   * the gateway's flow, unless told otherwise. */
  if (rv == EX_DONE && (o->grant || !o->rs)) {
    rv = map_words(c, "--grant", o->grant ? o->grant : "ciba", grant_map,
                   sizeof(grant_map) / sizeof(grant_map[0]), row->grant_types,
                   sizeof(row->grant_types));
  }
  if (rv == EX_DONE && (o->scope || row->grant_types[0])) {
    rv = opt_copy(c, "--scope", o->scope ? o->scope : "openid", row->scopes,
                  sizeof(row->scopes));
  }
  if (rv == EX_DONE) {
    mode = o->mode ? o->mode : "";
    if (!o->mode && gw_client_list_has(row->grant_types, grant_map[0].word)) {
      mode = "poll";
    }
    rv = opt_copy(c, "--ciba-mode", mode, row->ciba_mode,
                  sizeof(row->ciba_mode));
  }
  if (rv == EX_DONE) {
    rv = opt_copy(c, "--ciba-endpoint", o->endpoint ? o->endpoint : "",
                  row->ciba_notification_endpoint,
                  sizeof(row->ciba_notification_endpoint));
  }
  if (rv == EX_DONE) {
    rv = opt_copy(c, "--id-token-alg", o->alg ? o->alg : "ES256",
                  row->id_token_alg, sizeof(row->id_token_alg));
  }
  if (rv != EX_DONE) {
    return rv;
  }
  row->resource_server = o->rs;
  return EX_DONE;
}

/* Checks the row; --resource and --redirect-uri are in it already. */
static int client_row_check(ctl *c, const gw_store_client *row) {
  char why[512];

  if (gw_client_check(row, why, sizeof(why)) != GW_OK) {
    fail(c, "%s", why);
    return EX_USAGE;
  }
  return EX_DONE;
}

/* Hashes the given secret, or generates one into |gen|. The given one is
 * refused under GW_CLIENT_SECRET_MIN bytes unless oidc.demo. */
static int client_secret(ctl *c, const client_opts *o, gw_store_client *row,
                         char *gen, size_t cap) {
  size_t n;

  gen[0] = '\0';
  if (!o->secret) {
    if (gw_client_secret_generate(gen, cap) != GW_OK) {
      fail(c, "cannot generate a secret: no randomness");
      return EX_FAIL;
    }
    gw_client_secret_hash(gen, row->secret_sha256);
    return EX_DONE;
  }
  n = strlen(o->secret);
  if (n == 0 || (n < GW_CLIENT_SECRET_MIN && !c->cfg->oidc_demo)) {
    fail(c,
         "--secret: %zu bytes, at least %d are needed (oidc.demo = true "
         "allows shorter ones; leave --secret out to have one generated)",
         n, GW_CLIENT_SECRET_MIN);
    return EX_USAGE;
  }
  gw_client_secret_hash(o->secret, row->secret_sha256);
  return EX_DONE;
}

/* Writes the row, refusing an existing client unless --replace (which
 * keeps its created_at). */
static int client_store(ctl *c, const client_opts *o, gw_store_client *row,
                        int *replaced) {
  gw_store_client *old = malloc(sizeof(*old));
  int rv;

  *replaced = 0;
  if (!old) {
    fail(c, "out of memory");
    return EX_FAIL;
  }
  rv = gw_store_client_get(c->store, row->client_id, old);
  if (rv == GW_OK && !o->replace) {
    fail(c,
         "client %s exists already; nothing was changed (--replace "
         "replaces it)",
         row->client_id);
    free(old);
    return EX_FAIL;
  }
  if (rv == GW_OK) {
    row->created_at = old->created_at;
    *replaced = 1;
  }
  free(old);
  if (rv == GW_OK || rv == GW_ERR_NOT_FOUND) {
    rv = gw_store_client_put(c->store, row);
  }
  if (rv != GW_OK) {
    fail(c, "registry: %s", gw_store_errmsg(c->store));
    return EX_FAIL;
  }
  return EX_DONE;
}

static int cmd_client_add(ctl *c, int argc, char **argv) {
  enum {
    O_ID = 256,
    O_NAME,
    O_SECRET,
    O_AUTH,
    O_GRANT,
    O_SCOPE,
    O_RESOURCE,
    O_REDIRECT,
    O_MODE,
    O_ENDPOINT,
    O_ALG,
    O_RS,
    O_REPLACE
  };
  static const struct option opts[] = {
      {"id", required_argument, NULL, O_ID},
      {"name", required_argument, NULL, O_NAME},
      {"secret", required_argument, NULL, O_SECRET},
      {"auth", required_argument, NULL, O_AUTH},
      {"grant", required_argument, NULL, O_GRANT},
      {"scope", required_argument, NULL, O_SCOPE},
      {"resource", required_argument, NULL, O_RESOURCE},
      {"redirect-uri", required_argument, NULL, O_REDIRECT},
      {"ciba-mode", required_argument, NULL, O_MODE},
      {"ciba-endpoint", required_argument, NULL, O_ENDPOINT},
      {"id-token-alg", required_argument, NULL, O_ALG},
      {"resource-server", no_argument, NULL, O_RS},
      {"replace", no_argument, NULL, O_REPLACE},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  /* --resource and --redirect-uri repeat: collected here, then copied. */
  char resources[GW_STORE_CLIENT_LIST_MAX + 1] = "";
  char redirects[GW_STORE_CLIENT_LIST_MAX + 1] = "";
  char gen[64] = "";
  client_opts o;
  gw_store_client *row = NULL;
  int opt, rv, replaced = 0;

  memset(&o, 0, sizeof(o));
  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    rv = EX_DONE;
    switch (opt) {
    case O_ID:
      o.id = optarg;
      break;
    case O_NAME:
      o.name = optarg;
      break;
    case O_SECRET:
      o.secret = optarg;
      break;
    case O_AUTH:
      o.auth = optarg;
      break;
    case O_GRANT:
      o.grant = optarg;
      break;
    case O_SCOPE:
      o.scope = optarg;
      break;
    case O_RESOURCE:
      rv = list_add(c, "--resource", resources, sizeof(resources), optarg,
                    strlen(optarg));
      break;
    case O_REDIRECT:
      rv = list_add(c, "--redirect-uri", redirects, sizeof(redirects), optarg,
                    strlen(optarg));
      break;
    case O_MODE:
      o.mode = optarg;
      break;
    case O_ENDPOINT:
      o.endpoint = optarg;
      break;
    case O_ALG:
      o.alg = optarg;
      break;
    case O_RS:
      o.rs = 1;
      break;
    case O_REPLACE:
      o.replace = 1;
      break;
    case OPT_HELP:
      wipe_arg(o.secret);
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    default:
      wipe_arg(o.secret);
      return bad_option(c, argv, optopt);
    }
    if (rv != EX_DONE) {
      goto done;
    }
  }
  rv = no_extra_args(c, argc, argv);
  if (rv == EX_DONE) {
    rv = need_client_id(c, o.id);
  }
  if (rv != EX_DONE) {
    goto done;
  }
  row = calloc(1, sizeof(*row));
  if (!row) {
    fail(c, "out of memory");
    rv = EX_FAIL;
    goto done;
  }
  rv = client_row(c, &o, row);
  if (rv == EX_DONE) {
    memcpy(row->resources, resources, sizeof(resources));
    memcpy(row->redirect_uris, redirects, sizeof(redirects));
    rv = client_row_check(c, row);
  }
  if (rv == EX_DONE) {
    rv = load_config(c);
  }
  if (rv == EX_DONE) {
    rv = client_secret(c, &o, row, gen, sizeof(gen));
  }
  /* The given secret is hashed (or refused): wipe it from argv now. */
  wipe_arg(o.secret);
  o.secret = NULL;
  if (rv == EX_DONE) {
    rv = open_store(c);
  }
  if (rv == EX_DONE) {
    rv = client_store(c, &o, row, &replaced);
  }
  if (rv != EX_DONE) {
    goto done;
  }
  printf("%s client %s (%s): grants %s; authentication %s\n",
         replaced ? "replaced" : "added", row->client_id, row->name,
         row->grant_types[0] ? row->grant_types : "none", row->auth_methods);
  if (gen[0]) {
    /* The one time the secret is shown: the registry keeps its hash. */
    printf("client_secret: %s\n"
           "(shown once: store it now; the registry keeps only its "
           "SHA-256)\n",
           gen);
    fflush(stdout);
  }
done:
  wipe_arg(o.secret);
  OPENSSL_cleanse(gen, sizeof(gen));
  if (row) {
    OPENSSL_cleanse(row->secret_sha256, sizeof(row->secret_sha256));
  }
  free(row);
  return rv;
}

/* "urn:openid:params:grant-type:ciba authorization_code" as "ciba,
 * authorization_code" (|map| short names), for the table. */
static void short_words(const char *list, const word_map *map, size_t nmap,
                        char *out, size_t cap) {
  const char *p = list;
  size_t o = 0;

  out[0] = '\0';
  while (*p && o + 1 < cap) {
    size_t n = strcspn(p, " "), i;
    const char *w = p;
    size_t wn = n;
    int k;

    for (i = 0; i < nmap; i++) {
      if (strlen(map[i].word) == n && strncmp(map[i].word, p, n) == 0) {
        w = map[i].arg;
        wn = strlen(w);
        break;
      }
    }
    k = snprintf(out + o, cap - o, "%s%.*s", o ? "," : "", (int)wn, w);
    if (k < 0) {
      break;
    }
    o += (size_t)k;
    p += n + (p[n] == ' ');
  }
  if (!out[0]) {
    snprintf(out, cap, "-");
  }
}

/* A space-separated list as a JSON array of strings. */
static json_t *json_words(const char *list) {
  json_t *a = json_array();
  const char *p = list;

  while (a && *p) {
    size_t n = strcspn(p, " ");
    json_array_append_new(a, json_stringn(p, n));
    p += n + (p[n] == ' ');
  }
  return a;
}

typedef struct client_list_state {
  size_t n;
  json_t *json; /* NULL: print a table */
} client_list_state;

static int client_list_row(const gw_store_client *r, void *arg) {
  client_list_state *st = arg;
  char grants[128], auth[64], created[32];
  json_t *o;

  fmt_time((time_t)r->created_at, 0, created, sizeof(created));
  if (st->json) {
    /* Everything but the secret's hash. */
    o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:s, s:b, "
                  "s:s}",
                  "client_id", r->client_id, "name", r->name, "auth_methods",
                  json_words(r->auth_methods), "grant_types",
                  json_words(r->grant_types), "scopes", json_words(r->scopes),
                  "resources", json_words(r->resources), "redirect_uris",
                  json_words(r->redirect_uris), "ciba_mode", r->ciba_mode,
                  "ciba_notification_endpoint", r->ciba_notification_endpoint,
                  "id_token_alg", r->id_token_alg, "resource_server",
                  r->resource_server, "created_at", created);
    if (!o || json_array_append_new(st->json, o) != 0) {
      return GW_ERR_NOMEM;
    }
    st->n++;
    return GW_OK;
  }
  short_words(r->grant_types, grant_map, 1, grants, sizeof(grants));
  short_words(r->auth_methods, auth_map, 2, auth, sizeof(auth));
  if (st->n == 0) {
    printf("%-20s  %-10s  %-37s  %-4s  %-5s  %-3s  %s\n", "CLIENT ID", "AUTH",
           "GRANTS", "CIBA", "ALG", "RS", "NAME");
  }
  printf("%-20s  %-10s  %-37s  %-4s  %-5s  %-3s  %s\n", r->client_id, auth,
         grants, r->ciba_mode[0] ? r->ciba_mode : "-", r->id_token_alg,
         r->resource_server ? "yes" : "-", r->name);
  st->n++;
  return GW_OK;
}

static int cmd_client_list(ctl *c, int argc, char **argv) {
  enum { O_JSON = 256 };
  static const struct option opts[] = {{"json", no_argument, NULL, O_JSON},
                                       {"help", no_argument, NULL, OPT_HELP},
                                       {NULL, 0, NULL, 0}};
  client_list_state st = {0, NULL};
  int opt, rv, json = 0;
  char *text;

  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (opt == O_JSON) {
      json = 1;
    } else if (opt == OPT_HELP) {
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    } else {
      return bad_option(c, argv, optopt);
    }
  }
  if (no_extra_args(c, argc, argv) != EX_DONE) {
    return EX_USAGE;
  }
  rv = load_config(c);
  if (rv == EX_DONE) {
    rv = open_store(c);
  }
  if (rv != EX_DONE) {
    return rv;
  }
  if (json && !(st.json = json_array())) {
    fail(c, "out of memory");
    return EX_FAIL;
  }
  rv = gw_store_client_list(c->store, client_list_row, &st);
  if (rv != GW_OK) {
    fail(c, "registry: %s",
         rv == GW_ERR_NOMEM ? "out of memory" : gw_store_errmsg(c->store));
    json_decref(st.json);
    return EX_FAIL;
  }
  if (json) {
    text = json_dumps(st.json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(st.json);
    if (!text) {
      fail(c, "out of memory");
      return EX_FAIL;
    }
    printf("%s\n", text);
    free(text);
  } else if (st.n == 0) {
    printf("no client in the registry (mpkictl client add, or "
           "oidc.clients_file at mpkigw's start)\n");
  } else {
    printf("%zu client%s\n", st.n, st.n == 1 ? "" : "s");
  }
  return EX_DONE;
}

static int cmd_client_remove(ctl *c, int argc, char **argv) {
  enum { O_ID = 256 };
  static const struct option opts[] = {{"id", required_argument, NULL, O_ID},
                                       {"help", no_argument, NULL, OPT_HELP},
                                       {NULL, 0, NULL, 0}};
  const char *id = NULL;
  int opt, rv;

  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (opt == O_ID) {
      id = optarg;
    } else if (opt == OPT_HELP) {
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    } else {
      return bad_option(c, argv, optopt);
    }
  }
  if (no_extra_args(c, argc, argv) != EX_DONE ||
      need_client_id(c, id) != EX_DONE) {
    return EX_USAGE;
  }
  rv = load_config(c);
  if (rv == EX_DONE) {
    rv = open_store(c);
  }
  if (rv != EX_DONE) {
    return rv;
  }
  rv = gw_store_client_del(c->store, id);
  if (rv == GW_ERR_NOT_FOUND) {
    fail(c, "no client %s in the registry", id);
    return EX_FAIL;
  }
  if (rv != GW_OK) {
    fail(c, "registry: %s", gw_store_errmsg(c->store));
    return EX_FAIL;
  }
  printf("removed client %s\n", id);
  return EX_DONE;
}

/* ---- audit verify, audit tail ------------------------------------------ */

/* Parses a positive integer option value up to |max|. */
static int opt_count(ctl *c, const char *opt, const char *arg, long long max,
                     long long *out) {
  char *end;
  long long v;

  errno = 0;
  v = strtoll(arg, &end, 10);
  if (errno || end == arg || *end || v < 1 || v > max) {
    fail(c, "%s: \"%s\" is not a number from 1 to %lld", opt, arg, max);
    return EX_USAGE;
  }
  *out = v;
  return EX_DONE;
}

/* The audit commands only read: they refuse a store that does not exist
 * rather than create an empty one. */
static int open_audit_store(ctl *c) {
  int rv = load_config(c);

  if (rv != EX_DONE) {
    return rv;
  }
  if (access(c->cfg->store_path, R_OK) != 0) {
    fail(c, "cannot read the store %s: %s", c->cfg->store_path,
         strerror(errno));
    return EX_FAIL;
  }
  return open_store(c);
}

static int cmd_audit_verify(ctl *c, int argc, char **argv) {
  enum { O_FROM = 256 };
  static const struct option opts[] = {
      {"from", required_argument, NULL, O_FROM},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  gw_audit_report rep;
  long long from = 1;
  int opt, rv;

  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (opt == O_FROM) {
      if (opt_count(c, "--from", optarg, LLONG_MAX, &from) != EX_DONE) {
        return EX_USAGE;
      }
    } else if (opt == OPT_HELP) {
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    } else {
      return bad_option(c, argv, optopt);
    }
  }
  if (no_extra_args(c, argc, argv) != EX_DONE) {
    return EX_USAGE;
  }
  rv = open_audit_store(c);
  if (rv != EX_DONE) {
    return rv;
  }
  rv = gw_audit_verify(c->store, c->cfg->gwkeys_dir, from, &rep);
  if (rv != GW_OK) {
    printf("audit: %s\n", rep.reason);
    return EX_FAIL;
  }
  printf("audit: %lld rows, %lld checkpoints, chain intact\n", rep.rows,
         rep.checkpoints);
  if (rep.last_seq > rep.last_checkpoint) {
    printf("audit: rows %lld..%lld are after the last checkpoint: not signed "
           "yet\n",
           rep.last_checkpoint >= rep.first_seq ? rep.last_checkpoint + 1
                                                : rep.first_seq,
           rep.last_seq);
  }
  return EX_DONE;
}

/* "2025-11-27T21:05:00.123Z" */
static const char *fmt_time_ms(long long ms, char *buf, size_t cap) {
  char s[32];

  fmt_time((time_t)(ms / 1000), 0, s, sizeof(s));
  snprintf(buf, cap, "%.19s.%03lldZ", s, ms % 1000);
  return buf;
}

typedef struct tail_state {
  json_t *json; /* NULL: print lines */
  size_t n;
} tail_state;

static int tail_row(const gw_store_audit_row *r, void *arg) {
  tail_state *st = arg;
  char when[40];
  json_t *o, *data;

  fmt_time_ms(r->ts, when, sizeof(when));
  st->n++;
  if (!st->json) {
    printf("%-8lld %s  %-16s %-24s %s\n", r->seq, when, r->kind,
           r->subject[0] ? r->subject : "-", r->data);
    return GW_OK;
  }
  /* data as stored when it is not JSON: the row was changed by hand. */
  data = json_loads(r->data, 0, NULL);
  o = json_pack("{s:I, s:s, s:s, s:s, s:o}", "seq", (json_int_t)r->seq, "ts",
                when, "kind", r->kind, "subject", r->subject, "data",
                data ? data : json_string(r->data));
  if (!o || json_array_append_new(st->json, o) != 0) {
    return GW_ERR_NOMEM;
  }
  return GW_OK;
}

static int cmd_audit_tail(ctl *c, int argc, char **argv) {
  enum { O_JSON = 256 };
  static const struct option opts[] = {{"json", no_argument, NULL, O_JSON},
                                       {"help", no_argument, NULL, OPT_HELP},
                                       {NULL, 0, NULL, 0}};
  unsigned char hash[32];
  tail_state st = {NULL, 0};
  long long n = 20, last = 0;
  int opt, rv, json = 0;
  char *text;

  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+hn:", opts, NULL)) != -1) {
    if (opt == 'n') {
      if (opt_count(c, "-n", optarg, 100000, &n) != EX_DONE) {
        return EX_USAGE;
      }
    } else if (opt == O_JSON) {
      json = 1;
    } else if (opt == OPT_HELP) {
      command_help(find_command(c->cmd), stdout);
      return EX_DONE;
    } else {
      return bad_option(c, argv, optopt);
    }
  }
  if (no_extra_args(c, argc, argv) != EX_DONE) {
    return EX_USAGE;
  }
  rv = open_audit_store(c);
  if (rv != EX_DONE) {
    return rv;
  }
  rv = gw_store_audit_last(c->store, &last, hash);
  if (rv != GW_OK && rv != GW_ERR_NOT_FOUND) {
    fail(c, "store: %s", gw_store_errmsg(c->store));
    return EX_FAIL;
  }
  if (json && !(st.json = json_array())) {
    fail(c, "out of memory");
    return EX_FAIL;
  }
  if (last > 0) {
    rv = gw_store_audit_list(c->store, last - n + 1, tail_row, &st);
  }
  if (last > 0 && rv != GW_OK) {
    fail(c, "store: %s",
         rv == GW_ERR_NOMEM ? "out of memory" : gw_store_errmsg(c->store));
    json_decref(st.json);
    return EX_FAIL;
  }
  if (json) {
    text = json_dumps(st.json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(st.json);
    if (!text) {
      fail(c, "out of memory");
      return EX_FAIL;
    }
    printf("%s\n", text);
    free(text);
  } else if (st.n == 0) {
    printf("the audit log is empty\n");
  }
  return EX_DONE;
}

/* ---- the command table -------------------------------------------------- */

static int cmd_help(ctl *c, int argc, char **argv);

static const command commands[] = {
    {"ca init", cmd_ca_init, "",
     "create the root and issuing CA, their keys on the CA token",
     "Creates the demo national PKI under pki.dir: a root CA (\"Oman National "
     "PKI Root\n"
     "— demo\") and an issuing CA for mobile PKI, their EC P-256 keys "
     "generated on the\n"
     "PKCS#11 token pki.ca_token (never extractable); root-ca.pem, "
     "issuing-ca.pem; a\n"
     "delegated OCSP signer (ocsp.pem, and ocsp.key in a file because "
     "`openssl ocsp\n"
     "-rkey` needs one); the OpenSSL-format CA database index.txt; and a "
     "first CRL.\n"
     "Creates pki.pin_file with random token PINs when it is missing.\n"
     "Refuses to run twice.\n"},
    {"sim provision", cmd_sim_provision,
     "--msisdn +968XXXXXXXX --civil-id N\n"
     "           --name NAME --operator omantel|ooredoo [--pin PIN] [--puk "
     "PUK]\n"
     "           [--behaviour B] [--skip-existing]\n"
     "       mpkictl [--config FILE] sim provision --csv FILE "
     "[--skip-existing]",
     "provision a SIM (a token, a key on it, a certificate), or many from a "
     "CSV",
     "Creates one SoftHSM token per SIM, labelled with its MSISDN (user PIN = "
     "the SIM\n"
     "PIN, SO PIN = the PUK), generates an EC P-256 key on it (label "
     "\"mpki-auth\",\n"
     "never extractable), has the issuing CA sign its certificate (subject\n"
     "CN=NAME, serialNumber=PNOOM-N, C=OM; subjectAltName URI:tel:MSISDN; "
     "keyUsage\n"
     "digitalSignature) and registers it in the store with its operator.\n"
     "\n"
     "  --msisdn M       +968 followed by 8 digits\n"
     "  --civil-id N     the holder's civil number, digits (one may hold "
     "SIMs at both\n"
     "                   operators)\n"
     "  --name NAME      the holder's name, UTF-8, at most 64 characters\n"
     "  --operator OP    omantel or ooredoo\n"
     "  --pin PIN        SIM PIN, 4 to 8 digits (default 1234, the demo's)\n"
     "  --puk PUK        PUK, 8 digits (default 12345678, the demo's)\n"
     "  --behaviour B    what the demo's mock operator does, e.g. "
     "approve:1000\n"
     "  --csv FILE       provision every row of FILE: a header row naming "
     "the columns\n"
     "                   msisdn,civil_id,name,operator[,pin,puk][,behaviour"
     "...]; a bad\n"
     "                   row is reported as FILE:LINE: reason and the others "
     "go on;\n"
     "                   the exit status is 1 when any row failed\n"
     "  --skip-existing  leave SIMs that are in the registry already alone\n"
     "\n"
     "A PIN given on the command line is visible to other users in ps(1) "
     "until\n"
     "mpkictl wipes it; prefer the CSV file (mode 0600) for real PINs.\n"},
    {"sim list", cmd_sim_list, "[--civil-id N]",
     "list the SIMs in the registry",
     "Prints a table of the registered SIMs: MSISDN, operator, civil number, "
     "status,\n"
     "certificate expiry, demo behaviour and name.\n"
     "\n"
     "  --civil-id N   only the SIMs of this civil number\n"},
    {"sim show", cmd_sim_show, "--msisdn +968XXXXXXXX [--cert]",
     "show one SIM; --cert prints its certificate (PEM)",
     "Prints what the registry holds about one SIM and its certificate.\n"
     "\n"
     "  --msisdn M   the SIM\n"
     "  --cert       print only the PEM certificate, e.g. for\n"
     "               openssl verify -CAfile root-ca.pem -untrusted "
     "issuing-ca.pem\n"},
    {"cert revoke", cmd_cert_revoke, "--msisdn +968XXXXXXXX [--reason R]",
     "revoke a SIM's certificate (index.txt and registry)",
     "Marks the SIM's certificate revoked in the CA database index.txt (what "
     "an\n"
     "`openssl ocsp -index` responder answers from) and in the registry. The "
     "CRL\n"
     "changes with the next `mpkictl crl publish`. Revoking a revoked "
     "certificate\n"
     "changes nothing and succeeds.\n"
     "\n"
     "  --msisdn M   the SIM\n"
     "  --reason R   keyCompromise, CACompromise, affiliationChanged, "
     "superseded,\n"
     "               cessationOfOperation or unspecified (default: none "
     "given)\n"},
    {"cert check", cmd_cert_check,
     "--msisdn +968XXXXXXXX [--ocsp-url URL | --no-ocsp]\n"
     "           [--no-crl]\n"
     "       mpkictl [--config FILE] cert check --cert FILE [--ocsp-url URL | "
     "--no-ocsp]\n"
     "           [--no-crl]",
     "check a SIM's certificate with the gateway's own verifier",
     "Runs the gateway's verifier (gw_verify) on the SIM's registered "
     "certificate, as\n"
     "the gateway would: the chain to pki.dir/root-ca.pem (with "
     "issuing-ca.pem as the\n"
     "intermediate), key usage, validity now (pki.clock_skew_s), "
     "revocation by the\n"
     "CRL pki.crl and by OCSP at pki.ocsp_url, both failing closed; and "
     "that the\n"
     "certificate names the registry's MSISDN and civil number. Prints\n"
     "\"MSISDN: good\" or \"MSISDN: RESULT (ETSI CODE): DETAIL\", then the "
     "identity\n"
     "found in the certificate and what revocation was checked against.\n"
     "\n"
     "  --msisdn M       the registered SIM whose certificate to check\n"
     "  --cert FILE      check this certificate (PEM or DER) instead; no "
     "identity\n"
     "                   expectation\n"
     "  --ocsp-url URL   ask this OCSP responder (http://) instead of "
     "pki.ocsp_url\n"
     "  --no-ocsp        do not ask any OCSP responder\n"
     "  --no-crl         do not use the CRL\n"
     "\n"
     "Exit status: 0 good, 1 rejected (or the check could not be made), 2 "
     "usage.\n"},
    {"crl publish", cmd_crl_publish, "",
     "publish the issuing CA's CRL to pki.crl",
     "Writes a CRL of every revoked certificate in index.txt to pki.crl "
     "(PEM),\n"
     "signed by the issuing CA's key on its token, nextUpdate pki.crl_days "
     "ahead,\n"
     "with the next CRL number (crlnumber). The file is replaced atomically: "
     "the\n"
     "gateway reloads it. Verifiers refuse a CRL past its nextUpdate: "
     "publish\n"
     "before that (make run does at every start).\n"},
    {"gateway-key init", cmd_gateway_key_init, "",
     "create the gateway's ES256 and RS256 token-signing keys",
     "Initialises the token gateway_keys.token and generates on it an EC "
     "P-256 key\n"
     "(\"es256\") and an RSA-2048 key (\"rs256\"). Prints their kids "
     "(base64url "
     "of the\n"
     "SHA-256 of the public key's DER) and writes the public keys to\n"
     "gateway_keys.dir (es256.pem, rs256.pem, kids) for the JWKS. Refuses "
     "to run\n"
     "twice.\n"},
    {"gateway-key rotate", cmd_gateway_key_rotate,
     "[--alg ES256|RS256|both] [--publish-lead-s N]",
     "add new token-signing keys; retire the old ones safely",
     "Generates a new key per algorithm on gateway_keys.token (labels "
     "es256-N,\n"
     "rs256-N), writes its public key (LABEL.pem) and adds it to\n"
     "gateway_keys.dir/kids: in the JWKS at once, signing from N seconds "
     "on. The\n"
     "older keys of the algorithm stay in the JWKS until the new one signs, "
     "plus\n"
     "the longest token lifetime (oidc.access_token_ttl_s, "
     "oidc.id_token_ttl_s)\n"
     "plus 60 s. Keys retired already leave the list (and their PEM files "
     "go;\n"
     "they stay on the token). The running gateway reloads the list within "
     "a\n"
     "housekeeping tick.\n"
     "\n"
     "  --alg ALG            ES256, RS256 or both (default both)\n"
     "  --publish-lead-s N   seconds between publishing and signing "
     "(default 600:\n"
     "                       clients cache the JWKS for 10 minutes)\n"},
    {"gateway-key list", cmd_gateway_key_list, "",
     "list the gateway's signing keys and their states",
     "Prints every key of gateway_keys.dir/kids: algorithm, kid, label on "
     "the\n"
     "token, state (pending, published, signing, retiring, retired) and "
     "when it\n"
     "is published, signs and retires (UTC). Touches no token.\n"},
    {"client add", cmd_client_add,
     "--id ID [--name TEXT] [--secret S] [--auth basic,post]\n"
     "           [--grant ciba,authorization_code,refresh_token] [--scope "
     "\"openid ...\"]\n"
     "           [--resource URL]... [--redirect-uri URL]... [--ciba-mode "
     "poll|ping]\n"
     "           [--ciba-endpoint URL] [--id-token-alg ES256|RS256] "
     "[--resource-server]\n"
     "           [--replace]",
     "register a relying party (OAuth client) in the store",
     "Registers an OAuth client of the gateway's OpenID provider. The store "
     "keeps\n"
     "only the SHA-256 of its secret. Without --secret a secret of 32 random "
     "bytes\n"
     "(base64url, 43 characters) is generated and printed once, on a line\n"
     "\"client_secret: ...\": store it then. The running gateway sees the "
     "client at\n"
     "its next registry reload.\n"
     "\n"
     "  --id ID              1 to 64 of A-Z a-z 0-9 . _ -\n"
     "  --name TEXT          shown on the phone (default: the id)\n"
     "  --secret S           the client secret, at least 32 bytes (shorter "
     "only when\n"
     "                       the configuration says oidc.demo = true); "
     "visible in ps(1)\n"
     "                       until mpkictl wipes it\n"
     "  --auth LIST          client_secret_basic and/or client_secret_post, "
     "as basic,post\n"
     "                       (default: both)\n"
     "  --grant LIST         ciba, authorization_code, refresh_token "
     "(default: ciba,\n"
     "                       none with --resource-server alone)\n"
     "  --scope \"A B\"        the scopes it may ask for, space-separated "
     "(default:\n"
     "                       openid when it has a grant)\n"
     "  --resource URL       an audience it may ask tokens for (RFC 8707); "
     "repeat it\n"
     "  --redirect-uri URL   a redirect URI (authorization_code needs one); "
     "repeat it\n"
     "  --ciba-mode MODE     poll or ping (default: poll with the ciba "
     "grant)\n"
     "  --ciba-endpoint URL  the https:// client notification endpoint of "
     "ping mode\n"
     "  --id-token-alg ALG   ES256 (default) or RS256\n"
     "  --resource-server    may introspect tokens whose audience is one of "
     "its\n"
     "                       resources\n"
     "  --replace            replace a client that exists (a new secret is "
     "generated\n"
     "                       unless --secret is given)\n"
     "\n"
     "URLs are https://, or http:// to 127.0.0.1 or localhost; no "
     "fragments.\n"},
    {"client list", cmd_client_list, "[--json]",
     "list the relying parties in the store",
     "Prints a table of the registered clients: id, authentication methods, "
     "grants,\n"
     "CIBA mode, ID token algorithm, resource server, name. Secrets and "
     "their hashes\n"
     "are never printed.\n"
     "\n"
     "  --json   every field of every client as a JSON array\n"},
    {"client remove", cmd_client_remove, "--id ID",
     "remove a relying party from the store",
     "Deletes the client from the store; the running gateway refuses it "
     "from its\n"
     "next registry reload. A client listed in oidc.clients_file is put "
     "back when\n"
     "mpkigw next starts: remove it there too.\n"
     "\n"
     "  --id ID   the client\n"},
    {"audit verify", cmd_audit_verify, "[--from SEQ]",
     "check the audit log's hash chain and signed checkpoints",
     "Recomputes the hash of every row of the audit log from the first one "
     "(or from\n"
     "row SEQ, trusting its link to the row before) and checks every "
     "checkpoint: its\n"
     "ES256 signature, with the public keys (*.pem) in gateway_keys.dir, and "
     "that it\n"
     "signs the recomputed hash of its row. Names the first broken row or\n"
     "checkpoint. Rows after the last checkpoint are reported as not signed "
     "yet.\n"
     "Reads only. Exit status 1 when the log was changed.\n"
     "\n"
     "  --from SEQ   start at row SEQ\n"},
    {"audit tail", cmd_audit_tail, "[-n N] [--json]",
     "print the last events of the audit log",
     "Prints the last N rows of the audit log (default 20): sequence "
     "number, time\n"
     "(UTC, ms), kind, subject and data.\n"
     "\n"
     "  -n N     how many rows (1 to 100000)\n"
     "  --json   a JSON array of {seq, ts, kind, subject, data}\n"},
    {"help", cmd_help, "[COMMAND]", "help for a command", ""},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const command *find_command(const char *name) {
  for (size_t i = 0; name && i < N_COMMANDS; i++) {
    if (strcmp(commands[i].name, name) == 0) {
      return &commands[i];
    }
  }
  return NULL;
}

static void usage(FILE *fp) {
  fprintf(fp, "Usage: mpkictl [--config FILE] COMMAND [OPTIONS]\n"
              "\n"
              "The admin CLI of the mobile SIM-PKI gateway: the demo national "
              "CA, SIMs on\n"
              "PKCS#11 tokens, revocation, the gateway's signing keys and the "
              "relying\n"
              "parties of its OpenID provider.\n"
              "\n"
              "Commands:\n");
  for (size_t i = 0; i < N_COMMANDS; i++) {
    fprintf(fp, "  %-18s %s\n", commands[i].name, commands[i].summary);
  }
  fprintf(fp,
          "\n"
          "Options:\n"
          "  -c, --config FILE  configuration (default: var/mpkigw.conf if "
          "it exists,\n"
          "                     else configs/mpkigw.conf); SOFTHSM2_CONF is "
          "set from its\n"
          "                     pkcs11.softhsm_conf\n"
          "  -h, --help         this text; mpkictl COMMAND --help for a "
          "command\n"
          "  -V, --version      version\n"
          "\n"
          "Exit status: 0 done, 1 the operation failed, 2 usage error.\n");
}

static void command_help(const command *cmd, FILE *fp) {
  if (!cmd) {
    usage(fp);
    return;
  }
  fprintf(fp, "Usage: mpkictl [--config FILE] %s%s%s\n\n%c%s.\n", cmd->name,
          cmd->synopsis[0] ? " " : "", cmd->synopsis,
          toupper((unsigned char)cmd->summary[0]), cmd->summary + 1);
  if (cmd->help[0]) {
    fprintf(fp, "\n%s", cmd->help);
  }
}

static int cmd_help(ctl *c, int argc, char **argv) {
  char name[64];
  const command *cmd;

  if (argc >= 2 &&
      (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    command_help(find_command("help"), stdout);
    return EX_DONE;
  }
  if (argc < 2) {
    usage(stdout);
    return EX_DONE;
  }
  snprintf(name, sizeof(name), "%s%s%s", argv[1], argc > 2 ? " " : "",
           argc > 2 ? argv[2] : "");
  cmd = find_command(name);
  if (!cmd) {
    cmd = find_command(argv[1]);
  }
  if (!cmd) {
    fail(c, "no command \"%s\" (mpkictl help lists them)", name);
    return EX_USAGE;
  }
  command_help(cmd, stdout);
  return EX_DONE;
}

/* Finds the command named by one or two words of |argv|; sets |*used|. */
static const command *match_command(int argc, char **argv, int *used) {
  char name[64];
  const command *cmd;

  if (argc >= 2) {
    snprintf(name, sizeof(name), "%s %s", argv[0], argv[1]);
    cmd = find_command(name);
    if (cmd) {
      *used = 2;
      return cmd;
    }
  }
  cmd = find_command(argv[0]);
  *used = 1;
  return cmd;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
  const command *cmd;
  ctl c;
  int opt, used = 0, rv;

  memset(&c, 0, sizeof(c));
  /* Quiet unless something is wrong: the store's migration notes would
   * clutter the output. */
  gw_log_min_level = GW_LOG_WARN;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
    switch (opt) {
    case 'c':
      c.config_path = optarg;
      break;
    case 'h':
      usage(stdout);
      return EX_DONE;
    case 'V':
      printf("mpkictl %s\n", MPKIGW_VERSION);
      return EX_DONE;
    default:
      if (optopt == 'c') {
        fprintf(stderr, "mpkictl: --config needs a file name\n");
      } else {
        fprintf(stderr, "mpkictl: unknown option %s\n", argv[optind - 1]);
      }
      usage(stderr);
      return EX_USAGE;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "mpkictl: missing command\n");
    usage(stderr);
    return EX_USAGE;
  }
  cmd = match_command(argc - optind, argv + optind, &used);
  if (!cmd) {
    const char *w = argv[optind];
    char subs[128] = "";
    size_t n = strlen(w), o = 0;

    /* "sim" alone or "sim frob": name the subcommands of "sim". */
    for (size_t i = 0; i < N_COMMANDS; i++) {
      if (strncmp(commands[i].name, w, n) == 0 && commands[i].name[n] == ' ' &&
          o < sizeof(subs)) {
        int k = snprintf(subs + o, sizeof(subs) - o, "%s%s", o ? "|" : "",
                         commands[i].name + n + 1);
        o += k > 0 ? (size_t)k : 0;
      }
    }
    if (subs[0] && argc - optind > 1) {
      fprintf(stderr,
              "mpkictl: %s: unknown subcommand \"%s\" (mpkictl %s %s)\n", w,
              argv[optind + 1], w, subs);
    } else if (subs[0]) {
      fprintf(stderr, "mpkictl: %s: missing subcommand (mpkictl %s %s)\n", w, w,
              subs);
    } else {
      fprintf(stderr,
              "mpkictl: unknown command \"%s\" (mpkictl help lists the "
              "commands)\n",
              w);
    }
    return EX_USAGE;
  }
  c.cmd = cmd->name;
  /* The command sees its own name as argv[0] (getopt reports from there). */
  rv = cmd->run(&c, argc - optind - used + 1, argv + optind + used - 1);
  ctl_free(&c);
  return rv;
}
