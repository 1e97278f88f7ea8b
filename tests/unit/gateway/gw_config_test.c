/* gw_config_test.c — unit tests for gateway/gw_config.c.
 *
 * Each test writes config files into a fresh mkdtemp() directory and loads
 * them. Run from the repository root (the reference config is read from
 * configs/mpkigw.conf). */
#include "gw_config.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_err.h"
#include "harness.h"

/* The rows of config_keys[] in gw_config.c. */
#define N_TABLE_KEYS 93

#define TLS_KEYS "tls: { certificate = \"c.pem\"; private_key = \"k.pem\"; };\n"

static char tmpdir[PATH_MAX]; /* realpath'd, so paths compare exactly */
static char errbuf[512];

/* Returns tmpdir/|name| (static storage, overwritten by the next call). */
static const char *tmp_path(const char *name) {
  static char path[PATH_MAX + 64];

  snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
  return path;
}

/* Writes |text| to tmpdir/|name| and returns the path (as tmp_path). */
static const char *write_file(const char *name, const char *text) {
  const char *path = tmp_path(name);
  FILE *f = fopen(path, "w");

  if (!f) {
    printf("#   cannot write %s: %s\n", path, strerror(errno));
    return path;
  }
  fputs(text, f);
  fclose(f);
  return path;
}

/* Loads |text| as tmpdir/t.conf; |*cfg| is NULL on failure. */
static int load_text(const char *text, gw_config **cfg) {
  const char *path = write_file("t.conf", text);

  *cfg = NULL;
  errbuf[0] = '\0';
  return gw_config_load(cfg, path, errbuf, sizeof(errbuf));
}

/* Loads |text| and checks that it fails with GW_ERR_CONFIG and exactly
 * "<tmpdir>/t.conf:<line>: <reason>" (no ":<line>" when |line| is 0). Prints
 * what differed; returns 1 when all matched. */
static int expect_err(const char *text, int line, const char *reason) {
  char want[PATH_MAX + 1024];
  gw_config *cfg;
  int rv = load_text(text, &cfg);

  if (line) {
    snprintf(want, sizeof(want), "%s/t.conf:%d: %s", tmpdir, line, reason);
  } else {
    snprintf(want, sizeof(want), "%s/t.conf: %s", tmpdir, reason);
  }
  if (rv == GW_ERR_CONFIG && cfg == NULL && strcmp(errbuf, want) == 0) {
    return 1;
  }
  printf("#   config:\n#     %s\n#   rv %d (%s), error:\n#     %s\n"
         "#   expected:\n#     %s\n",
         text, rv, gw_strerror(rv), errbuf, want);
  gw_config_del(cfg);
  return 0;
}

/* Loads TLS_KEYS plus |text| and returns the config, or NULL (printing the
 * error). */
static gw_config *load_ok(const char *text) {
  char buf[2048];
  gw_config *cfg;
  int rv;

  snprintf(buf, sizeof(buf), "%s%s", TLS_KEYS, text);
  rv = load_text(buf, &cfg);
  if (rv != GW_OK) {
    printf("#   config:\n#     %s\n#   rv %d: %s\n", buf, rv, errbuf);
    return NULL;
  }
  return cfg;
}

static void t_defaults_minimal(void) {
  gw_config *cfg;
  char want[PATH_MAX + 64];
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

  T_EQ_INT(load_text(TLS_KEYS, &cfg), GW_OK);
  T_EQ_STR(errbuf, "");
  if (!cfg) {
    return;
  }
  snprintf(want, sizeof(want), "%s/t.conf", tmpdir);
  T_EQ_STR(cfg->path, want);
  T_EQ_STR(cfg->listen_host, "127.0.0.1");
  T_EQ_INT(cfg->listen_port, 8443);
  T_EQ_STR(cfg->h2c_host, "");
  T_EQ_INT(cfg->h2c_port, 0);
  T_ASSERT(cfg->workers >= 1);
  T_EQ_INT(cfg->workers, ncpu < 1 ? 1 : ncpu > 64 ? 64 : ncpu);
  T_EQ_INT(cfg->shutdown_grace_ms, 10000);
  T_EQ_INT(cfg->housekeeping_ms, 1000);
  snprintf(want, sizeof(want), "%s/c.pem", tmpdir);
  T_EQ_STR(cfg->tls_cert, want);
  snprintf(want, sizeof(want), "%s/k.pem", tmpdir);
  T_EQ_STR(cfg->tls_key, want);
  T_EQ_INT(cfg->tls_min_version, 0x0303);
  T_EQ_INT(cfg->max_connections, 10000);
  T_EQ_INT(cfg->max_connections_per_ip, 512);
  T_EQ_INT(cfg->max_concurrent_streams, 100);
  T_EQ_INT(cfg->max_header_list_size, 16384);
  T_EQ_INT(cfg->max_header_count, 100);
  T_EQ_INT(cfg->max_body_size, 1048576);
  T_EQ_INT(cfg->max_output_buffer, 1048576);
  T_EQ_INT(cfg->handshake_timeout_ms, 10000);
  T_EQ_INT(cfg->header_timeout_ms, 10000);
  T_EQ_INT(cfg->request_timeout_ms, 30000);
  T_EQ_INT(cfg->idle_timeout_ms, 60000);
  T_EQ_INT(cfg->settings_ack_timeout_ms, 10000);
  T_EQ_INT(cfg->stream_error_budget, 100);
  T_EQ_INT(cfg->reset_burst, 200);
  T_EQ_INT(cfg->reset_rate, 10);
  T_EQ_INT(cfg->log_level, GW_LOG_INFO);
  T_EQ_STR(cfg->log_file, "");
  T_EQ_INT(cfg->access_log, 1);
  T_EQ_STR(cfg->store_backend, "sqlite");
  snprintf(want, sizeof(want), "%s/mpkigw.db", tmpdir);
  T_EQ_STR(cfg->store_path, want);
  T_EQ_INT(cfg->store_busy_timeout_ms, 5000);
  T_EQ_STR(cfg->p11_module, "/usr/lib/softhsm/libsofthsm2.so");
  snprintf(want, sizeof(want), "%s/softhsm2.conf", tmpdir);
  T_EQ_STR(cfg->softhsm_conf, want);
  snprintf(want, sizeof(want), "%s/pki", tmpdir);
  T_EQ_STR(cfg->pki_dir, want);
  T_EQ_STR(cfg->pki_ca_token, "mpki-ca");
  snprintf(want, sizeof(want), "%s/token-pins", tmpdir);
  T_EQ_STR(cfg->pki_pin_file, want);
  T_EQ_INT(cfg->pki_clock_skew_s, 300);
  snprintf(want, sizeof(want), "%s/pki/crl.pem", tmpdir);
  T_EQ_STR(cfg->pki_crl, want);
  T_EQ_INT(cfg->pki_crl_days, 7);
  T_EQ_STR(cfg->pki_ocsp_url, "");
  T_EQ_STR(cfg->gwkeys_token, "mpki-gateway");
  snprintf(want, sizeof(want), "%s/keys", tmpdir);
  T_EQ_STR(cfg->gwkeys_dir, want);
  gw_config_del(cfg);
}

/* Every field set away from its default, with every value form. */
static void t_all_keys_set(void) {
  gw_config *cfg;

  T_EQ_INT(
      load_text(
          "server: { listen = \"[::1]:9443\"; h2c_listen = "
          "\"localhost:8080\";\n"
          "  workers = 3; shutdown_grace_ms = 0; housekeeping_interval_ms = "
          "10;\n"
          "};\n"
          "tls: { certificate = \"/c.pem\"; private_key = \"k.pem\";\n"
          "  min_version = \"1.3\"; };\n"
          "limits: { max_connections = 7; max_connections_per_ip = 1;\n"
          "  max_concurrent_streams = 10000; max_header_list_size = \"256k\";\n"
          "  max_header_count = 1; max_body_size = \"2m\";\n"
          "  max_output_buffer = 16384L; handshake_timeout_ms = 100;\n"
          "  header_timeout_ms = 200; request_timeout_ms = 3600000;\n"
          "  idle_timeout_ms = 1000; settings_ack_timeout_ms = 0x100;\n"
          "  stream_error_budget = 1; stream_reset_burst = 2;\n"
          "  stream_reset_rate = 1000000; };\n"
          "log: { level = \"debug\"; file = \"/var/log/gw.log\"; access = "
          "false; "
          "};\n"
          "store: { backend = \"sqlite\"; path = \"/srv/x.db\"; "
          "busy_timeout_ms = "
          "0; };\n"
          "pkcs11: { module = \"/opt/hsm/libvendor.so\"; softhsm_conf = \"\"; "
          "};\n"
          "pki: { dir = \"/srv/pki\"; ca_token = "
          "\"0123456789abcdef0123456789abcdef\";\n"
          "  pin_file = \"p/pins\"; clock_skew_s = 0; crl = \"/srv/c.pem\";\n"
          "  crl_days = 365; ocsp_url = \"http://127.0.0.1:8888/ocsp\"; };\n"
          "gateway_keys: { token = \"g\"; dir = \"/srv/keys\"; };\n",
          &cfg),
      GW_OK);
  if (!cfg) {
    printf("#   %s\n", errbuf);
    return;
  }
  T_EQ_STR(cfg->tls_cert, "/c.pem");
  T_EQ_STR(cfg->listen_host, "::1");
  T_EQ_INT(cfg->listen_port, 9443);
  T_EQ_STR(cfg->h2c_host, "localhost");
  T_EQ_INT(cfg->h2c_port, 8080);
  T_EQ_INT(cfg->workers, 3);
  T_EQ_INT(cfg->shutdown_grace_ms, 0);
  T_EQ_INT(cfg->housekeeping_ms, 10);
  T_EQ_INT(cfg->tls_min_version, 0x0304);
  T_EQ_INT(cfg->max_connections, 7);
  T_EQ_INT(cfg->max_connections_per_ip, 1);
  T_EQ_INT(cfg->max_concurrent_streams, 10000);
  T_EQ_INT(cfg->max_header_list_size, 262144);
  T_EQ_INT(cfg->max_header_count, 1);
  T_EQ_INT(cfg->max_body_size, 2 * 1048576);
  T_EQ_INT(cfg->max_output_buffer, 16384);
  T_EQ_INT(cfg->handshake_timeout_ms, 100);
  T_EQ_INT(cfg->header_timeout_ms, 200);
  T_EQ_INT(cfg->request_timeout_ms, 3600000);
  T_EQ_INT(cfg->idle_timeout_ms, 1000);
  T_EQ_INT(cfg->settings_ack_timeout_ms, 256);
  T_EQ_INT(cfg->stream_error_budget, 1);
  T_EQ_INT(cfg->reset_burst, 2);
  T_EQ_INT(cfg->reset_rate, 1000000);
  T_EQ_INT(cfg->log_level, GW_LOG_DEBUG);
  T_EQ_STR(cfg->log_file, "/var/log/gw.log");
  T_EQ_INT(cfg->access_log, 0);
  T_EQ_STR(cfg->store_backend, "sqlite");
  T_EQ_STR(cfg->store_path, "/srv/x.db");
  T_EQ_INT(cfg->store_busy_timeout_ms, 0);
  T_EQ_STR(cfg->p11_module, "/opt/hsm/libvendor.so");
  T_EQ_STR(cfg->softhsm_conf, "");
  T_EQ_STR(cfg->pki_dir, "/srv/pki");
  T_EQ_STR(cfg->pki_ca_token, "0123456789abcdef0123456789abcdef");
  {
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s/p/pins", tmpdir);
    T_EQ_STR(cfg->pki_pin_file, want);
  }
  T_EQ_INT(cfg->pki_clock_skew_s, 0);
  T_EQ_STR(cfg->pki_crl, "/srv/c.pem");
  T_EQ_INT(cfg->pki_crl_days, 365);
  T_EQ_STR(cfg->pki_ocsp_url, "http://127.0.0.1:8888/ocsp");
  T_EQ_STR(cfg->gwkeys_token, "g");
  T_EQ_STR(cfg->gwkeys_dir, "/srv/keys");
  gw_config_del(cfg);
}

/* The printed table, one key per line; returns the number of lines and
 * leaves the text in |buf|. */
static int printed_keys(char *buf, size_t cap) {
  FILE *f = tmpfile();
  size_t n;
  int lines = 0;

  buf[0] = '\0';
  if (!f) {
    return -1;
  }
  gw_config_print_keys(f);
  rewind(f);
  n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
  for (size_t i = 0; i < n; i++) {
    lines += buf[i] == '\n';
  }
  return lines;
}

static void t_print_keys(void) {
  static char buf[16384];
  int lines = printed_keys(buf, sizeof(buf));

  T_EQ_INT(lines, N_TABLE_KEYS);
  T_ASSERT(strstr(buf, "limits.max_body_size ") != NULL);
  T_ASSERT(strstr(buf, "1024..268435456") != NULL);
  T_ASSERT(strstr(buf, "1048576") != NULL);
  T_ASSERT(strstr(buf, "debug|info|warn|error") != NULL);
  T_ASSERT(strstr(buf, "(required)") != NULL);
  T_ASSERT(strncmp(buf, "server.listen ", 14) == 0);
  T_ASSERT(strstr(buf, "pki.ca_token ") != NULL);
  T_ASSERT(strstr(buf, "1..32 bytes") != NULL);
  T_ASSERT(strstr(buf, "http(s) URL|\"\"") != NULL);
  T_ASSERT(strstr(buf, "\"/usr/lib/softhsm/libsofthsm2.so\"") != NULL);
}

/* configs/mpkigw.conf loads, gives the defaults, and lists every key. */
static void t_reference_config(void) {
  static char buf[16384];
  char *line, *save = NULL;
  gw_config *cfg = NULL, *def = NULL;
  config_t lc;
  int rv;

  rv = gw_config_load(&cfg, "configs/mpkigw.conf", errbuf, sizeof(errbuf));
  T_EQ_INT(rv, GW_OK);
  T_EQ_STR(errbuf, "");
  T_EQ_INT(load_text(TLS_KEYS, &def), GW_OK);
  if (cfg && def) {
    T_ASSERT(cfg->path[0] == '/');
    T_ASSERT(strstr(cfg->path, "/configs/mpkigw.conf") != NULL);
    T_ASSERT(strstr(cfg->tls_cert, "/configs/../var/tls/server.crt") != NULL);
    T_ASSERT(strstr(cfg->tls_key, "/configs/../var/tls/server.key") != NULL);
    T_ASSERT(strstr(cfg->store_path, "/configs/../var/mpkigw.db") != NULL);
    T_ASSERT(strstr(cfg->softhsm_conf, "/configs/../var/softhsm2.conf") !=
             NULL);
    T_ASSERT(strstr(cfg->pki_dir, "/configs/../var/pki") != NULL);
    T_ASSERT(strstr(cfg->pki_crl, "/configs/../var/pki/crl.pem") != NULL);
    T_ASSERT(strstr(cfg->pki_pin_file, "/configs/../var/token-pins") != NULL);
    T_ASSERT(strstr(cfg->gwkeys_dir, "/configs/../var/keys") != NULL);
    T_EQ_STR(cfg->p11_module, def->p11_module);
    T_EQ_STR(cfg->pki_ca_token, def->pki_ca_token);
    T_EQ_INT(cfg->pki_clock_skew_s, def->pki_clock_skew_s);
    T_EQ_INT(cfg->pki_crl_days, def->pki_crl_days);
    T_EQ_STR(cfg->pki_ocsp_url, def->pki_ocsp_url);
    T_EQ_STR(cfg->gwkeys_token, def->gwkeys_token);
    T_EQ_STR(cfg->log_file, "");
    /* Apart from the paths it holds exactly the defaults. */
    T_EQ_STR(cfg->listen_host, def->listen_host);
    T_EQ_INT(cfg->listen_port, def->listen_port);
    T_EQ_STR(cfg->h2c_host, def->h2c_host);
    T_EQ_INT(cfg->h2c_port, def->h2c_port);
    T_EQ_INT(cfg->workers, def->workers);
    T_EQ_INT(cfg->shutdown_grace_ms, def->shutdown_grace_ms);
    T_EQ_INT(cfg->housekeeping_ms, def->housekeeping_ms);
    T_EQ_INT(cfg->tls_min_version, def->tls_min_version);
    T_EQ_INT(cfg->max_connections, def->max_connections);
    T_EQ_INT(cfg->max_connections_per_ip, def->max_connections_per_ip);
    T_EQ_INT(cfg->max_concurrent_streams, def->max_concurrent_streams);
    T_EQ_INT(cfg->max_header_list_size, def->max_header_list_size);
    T_EQ_INT(cfg->max_header_count, def->max_header_count);
    T_EQ_INT(cfg->max_body_size, def->max_body_size);
    T_EQ_INT(cfg->max_output_buffer, def->max_output_buffer);
    T_EQ_INT(cfg->handshake_timeout_ms, def->handshake_timeout_ms);
    T_EQ_INT(cfg->header_timeout_ms, def->header_timeout_ms);
    T_EQ_INT(cfg->request_timeout_ms, def->request_timeout_ms);
    T_EQ_INT(cfg->idle_timeout_ms, def->idle_timeout_ms);
    T_EQ_INT(cfg->settings_ack_timeout_ms, def->settings_ack_timeout_ms);
    T_EQ_INT(cfg->stream_error_budget, def->stream_error_budget);
    T_EQ_INT(cfg->reset_burst, def->reset_burst);
    T_EQ_INT(cfg->reset_rate, def->reset_rate);
    T_EQ_INT(cfg->log_level, def->log_level);
    T_EQ_INT(cfg->access_log, def->access_log);
    T_EQ_STR(cfg->store_backend, def->store_backend);
    T_EQ_INT(cfg->store_busy_timeout_ms, def->store_busy_timeout_ms);
  }
  gw_config_del(cfg);
  gw_config_del(def);

  /* Every key of the table is written out in the reference file. */
  T_EQ_INT(printed_keys(buf, sizeof(buf)), N_TABLE_KEYS);
  config_init(&lc);
  T_ASSERT(config_read_file(&lc, "configs/mpkigw.conf") == CONFIG_TRUE);
  for (line = strtok_r(buf, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    line[strcspn(line, " ")] = '\0';
    if (!config_lookup(&lc, line)) {
      printf("#   configs/mpkigw.conf lacks %s\n", line);
      t_case_failed = 1;
    }
  }
  config_destroy(&lc);
}

static void t_err_syntax(void) {
  T_ASSERT(expect_err("server: {\n  listen = ;\n};\n", 2, "syntax error"));
  /* Not `listen "x";`: libconfig 1.5 leaks the string token that it
   * finds unexpected, which would fail the LeakSanitizer run. */
  T_ASSERT(expect_err("server: {\n  workers = 1;\n  listen = = 1;\n};\n", 3,
                      "syntax error"));
  T_ASSERT(expect_err("server: {\n  workers = 1;\n", 3, "syntax error"));
  T_ASSERT(expect_err("# c\nserver: { workers = 1; workers = 2; };\n", 2,
                      "duplicate setting name"));
}

static void t_err_unknown_key(void) {
  T_ASSERT(expect_err(TLS_KEYS "server: {\n  lisen = \"127.0.0.1:1\";\n};\n", 3,
                      "unknown key \"server.lisen\""));
  T_ASSERT(expect_err(
      TLS_KEYS "\n\nsrever: { listen = \"127.0.0.1:1\"; };\n", 4,
      "unknown key \"srever\" (the groups are server, tls, "
      "limits, log, store, pkcs11, pki, gateway_keys, operators, oidc)"));
  T_ASSERT(expect_err(
      "workers = 4;\n", 1,
      "unknown key \"workers\" (the groups are server, tls, "
      "limits, log, store, pkcs11, pki, gateway_keys, operators, oidc)"));
  /* A group nested in a known group. */
  T_ASSERT(expect_err(TLS_KEYS "server: {\n  extra: {\n    workers = 1;\n  "
                               "};\n};\n",
                      3, "unknown key \"server.extra\""));
  /* A prefix of a group name is not a group. */
  T_ASSERT(expect_err(
      "serv: { };\n", 1,
      "unknown key \"serv\" (the groups are server, tls, "
      "limits, log, store, pkcs11, pki, gateway_keys, operators, oidc)"));
  T_ASSERT(expect_err("server = 1;\n", 1,
                      "server: expected a group, got an integer"));
}

static void t_err_wrong_type(void) {
  T_ASSERT(expect_err(TLS_KEYS "server: { workers = \"4\"; };\n", 2,
                      "server.workers: expected an integer, got a string"));
  T_ASSERT(expect_err(TLS_KEYS "server: { workers = 4.0; };\n", 2,
                      "server.workers: expected an integer, got a float"));
  T_ASSERT(expect_err(TLS_KEYS "log: {\n access = 1; };\n", 3,
                      "log.access: expected true or false, got an integer"));
  T_ASSERT(expect_err("tls: { certificate = 5; };\n", 1,
                      "tls.certificate: expected a string, got an integer"));
  T_ASSERT(expect_err(TLS_KEYS "limits: { max_body_size = [1]; };\n", 2,
                      "limits.max_body_size: expected a byte count (an "
                      "integer, or a string such as \"64k\" or \"1m\"), got "
                      "an array"));
  T_ASSERT(expect_err(TLS_KEYS "log: { level = 1; };\n", 2,
                      "log.level: expected one of \"debug\", \"info\", "
                      "\"warn\", \"error\", got an integer"));
  T_ASSERT(expect_err(TLS_KEYS "server: { listen = { }; };\n", 2,
                      "server.listen: expected a string, got a group"));
}

static void t_err_range(void) {
  /* The example from docs/configuration.md, on line 12. */
  T_ASSERT(expect_err(TLS_KEYS "\n\n\n\n\n\n\n\n\nlimits: {\n"
                               "  max_body_size = 0;\n};\n",
                      12, "limits.max_body_size: 0 is below the minimum 1024"));
  T_ASSERT(expect_err(TLS_KEYS "limits: { max_header_list_size = 1023; };\n", 2,
                      "limits.max_header_list_size: 1023 is below the "
                      "minimum 1024"));
  T_ASSERT(expect_err(TLS_KEYS "limits: { max_header_list_size = 262145; };\n",
                      2,
                      "limits.max_header_list_size: 262145 is above the "
                      "maximum 262144"));
  T_ASSERT(expect_err(TLS_KEYS "limits: { max_connections_per_ip = 0; };\n", 2,
                      "limits.max_connections_per_ip: 0 is below the minimum "
                      "1"));
  T_ASSERT(expect_err(TLS_KEYS "server: { workers = -1; };\n", 2,
                      "server.workers: -1 is below the minimum 0"));
  /* With the L suffix libconfig reads a 64-bit integer. */
  T_ASSERT(expect_err(TLS_KEYS "server: { workers = 99999999999L; };\n", 2,
                      "server.workers: 99999999999 is above the maximum "
                      "64"));
  T_ASSERT(expect_err(TLS_KEYS "limits: { max_body_size = \"1024m\"; };\n", 2,
                      "limits.max_body_size: 1073741824 is above the maximum "
                      "268435456"));
}

/* libconfig 1.5 wraps an integer literal beyond 32 bits (4294968320 reads
 * as 1024); such values must be refused, not taken modulo 2^32. */
static void t_err_int_wrap(void) {
  gw_config *cfg;

  T_ASSERT(expect_err(TLS_KEYS "limits: { max_body_size = 4294968320; };\n", 2,
                      "limits.max_body_size: 4294968320 is above the maximum "
                      "268435456"));
  T_ASSERT(expect_err(TLS_KEYS "limits: { max_body_size = 0x100000400; };\n", 2,
                      "limits.max_body_size: 0x100000400 is above the "
                      "maximum 268435456"));
  T_ASSERT(expect_err(TLS_KEYS "server: { workers=-4294967295; };\n", 2,
                      "server.workers: -4294967295 is below the minimum 0"));
  T_ASSERT(expect_err(TLS_KEYS "server: { workers = 1;\n"
                               "  shutdown_grace_ms = 4294967297; };\n",
                      3,
                      "server.shutdown_grace_ms: 4294967297 is above the "
                      "maximum 600000"));
  T_ASSERT(expect_err(TLS_KEYS "server: {\n  workers :\n\n 4294967297\n};\n", 3,
                      "server.workers: 4294967297 is above the maximum "
                      "64"));
  T_ASSERT(expect_err(TLS_KEYS "server: { workers = 99999999999999999999; };\n",
                      2,
                      "server.workers: 99999999999999999999 is above the "
                      "maximum 64"));
  /* 2^31 wraps to a negative int. */
  T_ASSERT(expect_err(TLS_KEYS "store: { busy_timeout_ms = 2147483648; };\n", 2,
                      "store.busy_timeout_ms: 2147483648 is above the "
                      "maximum 600000"));
  /* The same words in a comment do not confuse the check. */
  cfg = load_ok("server: { workers = 4; # workers = 99999999999\n };\n"
                "limits: { max_header_count = 100; /* max_header_count = "
                "4294967396 */ };\n");
  T_ASSERT(cfg != NULL);
  if (cfg) {
    T_EQ_INT(cfg->workers, 4);
    T_EQ_INT(cfg->max_header_count, 100);
  }
  gw_config_del(cfg);
  /* Values that do fit, in every form, are taken. */
  T_ASSERT(expect_err(TLS_KEYS "limits: { max_connections = 2147483647; };\n",
                      2,
                      "limits.max_connections: 2147483647 is above the "
                      "maximum 1000000"));
  T_ASSERT(expect_err(TLS_KEYS "server: { workers = -2147483648; };\n", 2,
                      "server.workers: -2147483648 is below the minimum 0"));
  cfg = load_ok("server: { workers = 0x10; shutdown_grace_ms = 00012;\n"
                "  housekeeping_interval_ms = +15; };\n");
  T_ASSERT(cfg != NULL);
  if (cfg) {
    T_EQ_INT(cfg->workers, 16);
    T_EQ_INT(cfg->shutdown_grace_ms, 12);
    T_EQ_INT(cfg->housekeeping_ms, 15);
  }
  gw_config_del(cfg);
}

static void t_err_enum(void) {
  T_ASSERT(expect_err(TLS_KEYS "log: { level = \"verbose\"; };\n", 2,
                      "log.level: \"verbose\" is not one of \"debug\", "
                      "\"info\", \"warn\", \"error\""));
  T_ASSERT(expect_err(TLS_KEYS "store: { backend = \"mysql\"; };\n", 2,
                      "store.backend: \"mysql\" is not one of \"sqlite\""));
  /* Control bytes from the file do not reach the terminal raw. */
  T_ASSERT(expect_err(TLS_KEYS "log: { level = \"a\\nb\"; };\n", 2,
                      "log.level: \"a\\x0ab\" is not one of \"debug\", "
                      "\"info\", \"warn\", \"error\""));
}

static void t_tls_versions(void) {
  gw_config *cfg;

  T_ASSERT(expect_err("tls: { certificate = \"c\"; private_key = \"k\";\n"
                      "  min_version = \"1.1\"; };\n",
                      2,
                      "tls.min_version: \"1.1\" is not one of \"1.2\", "
                      "\"1.3\""));
  T_ASSERT(expect_err("tls: { certificate = \"c\"; private_key = \"k\";\n"
                      "  min_version = \"1.0\"; };\n",
                      2,
                      "tls.min_version: \"1.0\" is not one of \"1.2\", "
                      "\"1.3\""));
  T_ASSERT(expect_err("tls: { certificate = \"c\"; private_key = \"k\";\n"
                      "  min_version = 1.2; };\n",
                      2,
                      "tls.min_version: expected one of \"1.2\", \"1.3\", "
                      "got a float"));
  T_EQ_INT(load_text("tls: { certificate = \"c\"; private_key = \"k\";"
                     " min_version = \"1.3\"; };\n",
                     &cfg),
           GW_OK);
  if (cfg) {
    T_EQ_INT(cfg->tls_min_version, 0x0304);
  }
  gw_config_del(cfg);
}

static void t_listen_addresses(void) {
  static const struct {
    const char *in, *host;
    int port;
  } good[] = {
      {"127.0.0.1:1", "127.0.0.1", 1},
      {"0.0.0.0:65535", "0.0.0.0", 65535},
      {"localhost:8443", "localhost", 8443},
      {"[::1]:8443", "::1", 8443},
      {"[::]:80", "::", 80},
      {"[2001:db8::1]:443", "2001:db8::1", 443},
  };
  static const char *const bad[] = {
      "127.0.0.1",        "127.0.0.1:",
      "127.0.0.1:0",      "127.0.0.1:65536",
      "127.0.0.1:-1",     "127.0.0.1:80x",
      "127.0.0.1: 80",    ":8443",
      "1.2.3:80",         "256.0.0.1:80",
      "example.com:80",   "[::1]8443",
      "[::1]:",           "[zz]:80",
      "::1:8443",         "[127.0.0.1]:80",
      "localhost:123456", "",
  };
  char text[256], reason[256], q[64];

  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    gw_config *cfg;

    snprintf(text, sizeof(text), "server: { listen = \"%s\"; };\n", good[i].in);
    cfg = load_ok(text);
    T_ASSERT(cfg != NULL);
    if (cfg) {
      T_EQ_STR(cfg->listen_host, good[i].host);
      T_EQ_INT(cfg->listen_port, good[i].port);
    }
    gw_config_del(cfg);
  }
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(text, sizeof(text), TLS_KEYS "server: { listen = \"%s\"; };\n",
             bad[i]);
    snprintf(q, sizeof(q), "\"%s\"", bad[i]);
    if (bad[i][0]) {
      snprintf(reason, sizeof(reason),
               "server.listen: %s is not host:port (IPv4 address, localhost "
               "or [IPv6 address], port 1..65535)",
               q);
    } else {
      snprintf(reason, sizeof(reason), "server.listen: must not be empty");
    }
    T_ASSERT(expect_err(text, 2, reason));
  }
}

static void t_h2c_listen(void) {
  gw_config *cfg = load_ok("server: { h2c_listen = \"127.0.0.1:8080\"; };\n");

  T_ASSERT(cfg != NULL);
  if (cfg) {
    T_EQ_STR(cfg->h2c_host, "127.0.0.1");
    T_EQ_INT(cfg->h2c_port, 8080);
  }
  gw_config_del(cfg);
  T_ASSERT(expect_err(TLS_KEYS "server: { h2c_listen = \"x:1\"; };\n", 2,
                      "server.h2c_listen: \"x:1\" is not host:port (IPv4 "
                      "address, localhost or [IPv6 address], port "
                      "1..65535)"));
  T_ASSERT(expect_err(TLS_KEYS "server: {\n listen = \"127.0.0.1:9000\";\n"
                               " h2c_listen = \"127.0.0.1:9000\";\n};\n",
                      4,
                      "server.h2c_listen: the same address as "
                      "server.listen"));
}

static void t_bytes_suffix(void) {
  gw_config *cfg = load_ok("limits: { max_body_size = \"64k\";\n"
                           " max_output_buffer = \"3M\";\n"
                           " max_header_list_size = \"2048\"; };\n");

  T_ASSERT(cfg != NULL);
  if (cfg) {
    T_EQ_INT(cfg->max_body_size, 65536);
    T_EQ_INT(cfg->max_output_buffer, 3 * 1048576);
    T_EQ_INT(cfg->max_header_list_size, 2048);
  }
  gw_config_del(cfg);
  static const char *const bad[] = {"1x",
                                    "m",
                                    "",
                                    "-1k",
                                    "1 k",
                                    "1kb",
                                    "99999999999999999999",
                                    "9999999999999999m"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char text[256], reason[256];

    snprintf(text, sizeof(text),
             TLS_KEYS "limits: { max_body_size = \"%s\"; };\n", bad[i]);
    snprintf(reason, sizeof(reason),
             "limits.max_body_size: \"%s\" is not a byte count (an integer, "
             "optionally with suffix k or m)",
             bad[i]);
    T_ASSERT(expect_err(text, 2, reason));
  }
}

static void t_workers_auto(void) {
  gw_config *cfg = load_ok("server: { workers = 0; };\n");

  T_ASSERT(cfg != NULL);
  if (cfg) {
    T_ASSERT(cfg->workers >= 1);
    T_ASSERT(cfg->workers <= 64);
  }
  gw_config_del(cfg);
  cfg = load_ok("server: { workers = 64; };\n");
  T_ASSERT(cfg != NULL);
  if (cfg) {
    T_EQ_INT(cfg->workers, 64);
  }
  gw_config_del(cfg);
}

static void t_relative_paths(void) {
  char want[PATH_MAX + 64], rel[PATH_MAX + 64], cwd[PATH_MAX];
  gw_config *cfg = NULL;
  int rv;

  T_ASSERT(mkdir(tmp_path("sub"), 0700) == 0);
  write_file("sub/r.conf", "tls: { certificate = \"certs/c.pem\";\n"
                           "  private_key = \"/abs/k.pem\"; };\n"
                           "log: { file = \"../logs/gw.log\"; };\n"
                           "store: { path = \"./db/x.db\"; };\n");

  /* Loaded through a relative path from another directory: the result
   * must not depend on the current directory. */
  T_ASSERT(getcwd(cwd, sizeof(cwd)) != NULL);
  T_ASSERT(chdir(tmpdir) == 0);
  snprintf(rel, sizeof(rel), "sub/../sub/r.conf");
  rv = gw_config_load(&cfg, rel, errbuf, sizeof(errbuf));
  T_ASSERT(chdir(cwd) == 0);
  T_EQ_INT(rv, GW_OK);
  if (!cfg) {
    printf("#   %s\n", errbuf);
    return;
  }
  snprintf(want, sizeof(want), "%s/sub/r.conf", tmpdir);
  T_EQ_STR(cfg->path, want);
  snprintf(want, sizeof(want), "%s/sub/certs/c.pem", tmpdir);
  T_EQ_STR(cfg->tls_cert, want);
  T_EQ_STR(cfg->tls_key, "/abs/k.pem");
  snprintf(want, sizeof(want), "%s/sub/../logs/gw.log", tmpdir);
  T_EQ_STR(cfg->log_file, want);
  snprintf(want, sizeof(want), "%s/sub/./db/x.db", tmpdir);
  T_EQ_STR(cfg->store_path, want);
  gw_config_del(cfg);
}

static void t_empty_strings(void) {
  T_ASSERT(expect_err("tls: { certificate = \"\"; private_key = \"k\"; };\n", 1,
                      "tls.certificate: must not be empty"));
  T_ASSERT(expect_err(TLS_KEYS "store: { path = \"\"; };\n", 2,
                      "store.path: must not be empty"));
}

static void t_missing_required(void) {
  T_ASSERT(expect_err("tls: { certificate = \"c.pem\"; };\n", 0,
                      "missing required key \"tls.private_key\""));
  T_ASSERT(expect_err("tls: { private_key = \"k.pem\"; };\n", 0,
                      "missing required key \"tls.certificate\""));
  T_ASSERT(expect_err("", 0, "missing required key \"tls.certificate\""));
  T_ASSERT(expect_err("# only a comment\n", 0,
                      "missing required key \"tls.certificate\""));
}

static void t_missing_file(void) {
  char path[PATH_MAX + 64], want[PATH_MAX + 128];
  gw_config *sentinel = (gw_config *)&sentinel, *cfg = sentinel;

  snprintf(path, sizeof(path), "%s/nope.conf", tmpdir);
  T_EQ_INT(gw_config_load(&cfg, path, errbuf, sizeof(errbuf)), GW_ERR_IO);
  snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
  T_EQ_STR(errbuf, want);
  T_ASSERT(cfg == sentinel);

  T_EQ_INT(gw_config_load(&cfg, tmpdir, errbuf, sizeof(errbuf)), GW_ERR_IO);
  snprintf(want, sizeof(want), "%s: %s", tmpdir, strerror(EISDIR));
  T_EQ_STR(errbuf, want);
  T_ASSERT(cfg == sentinel);
}

/* A failed load leaves *out alone, and the error buffer may be small or
 * absent. */
static void t_failure_contract(void) {
  gw_config *sentinel = (gw_config *)&sentinel, *cfg = sentinel;
  const char *path = write_file("bad.conf", TLS_KEYS "log: { level = 7; };\n");
  char small[8];

  T_EQ_INT(gw_config_load(&cfg, path, errbuf, sizeof(errbuf)), GW_ERR_CONFIG);
  T_ASSERT(cfg == sentinel);
  T_EQ_INT(gw_config_load(&cfg, path, NULL, 0), GW_ERR_CONFIG);
  T_ASSERT(cfg == sentinel);
  memset(small, 'x', sizeof(small));
  T_EQ_INT(gw_config_load(&cfg, path, small, sizeof(small)), GW_ERR_CONFIG);
  T_EQ_INT(strlen(small), sizeof(small) - 1);
  T_ASSERT(strncmp(small, tmpdir, sizeof(small) - 1) == 0);
  T_ASSERT(cfg == sentinel);
  gw_config_del(NULL);
}

/* @include is relative to the file's directory, and errors inside an
 * included file name that file. */
static void t_include(void) {
  char want[PATH_MAX + 256];
  gw_config *cfg;

  write_file("inc_ok.conf", "limits: { max_header_count = 42; };\n");
  T_EQ_INT(load_text(TLS_KEYS "@include \"inc_ok.conf\"\n", &cfg), GW_OK);
  if (cfg) {
    T_EQ_INT(cfg->max_header_count, 42);
  } else {
    printf("#   %s\n", errbuf);
  }
  gw_config_del(cfg);

  write_file("inc_bad.conf", "\nlimits: { max_header_count = 0; };\n");
  T_EQ_INT(load_text(TLS_KEYS "@include \"inc_bad.conf\"\n", &cfg),
           GW_ERR_CONFIG);
  snprintf(want, sizeof(want),
           "%s/inc_bad.conf:2: limits.max_header_count: 0 is below the "
           "minimum 1",
           tmpdir);
  T_EQ_STR(errbuf, want);

  /* The wrap check reads the included file. */
  write_file("inc_bad.conf", "limits: {\n max_header_count = 4294967396; };\n");
  T_EQ_INT(load_text(TLS_KEYS "@include \"inc_bad.conf\"\n", &cfg),
           GW_ERR_CONFIG);
  snprintf(want, sizeof(want),
           "%s/inc_bad.conf:2: limits.max_header_count: 4294967396 is above "
           "the maximum 1000",
           tmpdir);
  T_EQ_STR(errbuf, want);

  /* A syntax error in an included file names that file. */
  write_file("inc_bad.conf", "limits: {\n max_header_count = ; };\n");
  T_EQ_INT(load_text(TLS_KEYS "@include \"inc_bad.conf\"\n", &cfg),
           GW_ERR_CONFIG);
  snprintf(want, sizeof(want), "%s/inc_bad.conf:2: syntax error", tmpdir);
  T_EQ_STR(errbuf, want);

  T_EQ_INT(load_text(TLS_KEYS "@include \"nope.conf\"\n", &cfg), GW_ERR_CONFIG);
  T_ASSERT(strstr(errbuf, "t.conf:2: ") != NULL);
}

/* The string keys of the PKI: labels fit a PKCS#11 token label, no control
 * bytes, URLs are http(s). */
static void t_pki_strings(void) {
  gw_config *cfg;

  T_ASSERT(expect_err(TLS_KEYS "pki: { ca_token = \"\"; };\n", 2,
                      "pki.ca_token: must not be empty"));
  T_ASSERT(expect_err(
      TLS_KEYS "pki: {\n ca_token = \"0123456789abcdef0123456789abcdefX\";"
               " };\n",
      3, "pki.ca_token: longer than 32 bytes"));
  T_ASSERT(expect_err(TLS_KEYS "gateway_keys: { token = \"a\\tb\"; };\n", 2,
                      "gateway_keys.token: \"a\\x09b\" contains a control "
                      "character"));
  T_ASSERT(expect_err(TLS_KEYS "gateway_keys: { token = 5; };\n", 2,
                      "gateway_keys.token: expected a string, got an "
                      "integer"));
  T_ASSERT(expect_err(TLS_KEYS "pki: { ocsp_url = \"ftp://x/\"; };\n", 2,
                      "pki.ocsp_url: \"ftp://x/\" is not an http:// or "
                      "https:// URL"));
  T_ASSERT(expect_err(TLS_KEYS "pki: { ocsp_url = \"127.0.0.1:8888\"; };\n", 2,
                      "pki.ocsp_url: \"127.0.0.1:8888\" is not an http:// or "
                      "https:// URL"));
  T_ASSERT(expect_err(TLS_KEYS "pki: { crl_days = 0; };\n", 2,
                      "pki.crl_days: 0 is below the minimum 1"));
  T_ASSERT(expect_err(TLS_KEYS "pki: { clock_skew_s = 3601; };\n", 2,
                      "pki.clock_skew_s: 3601 is above the maximum 3600"));
  T_ASSERT(expect_err(TLS_KEYS "pki: { dir = \"\"; };\n", 2,
                      "pki.dir: must not be empty"));
  T_ASSERT(expect_err(TLS_KEYS "pkcs11: { module = \"\"; };\n", 2,
                      "pkcs11.module: must not be empty"));
  /* Labels may hold UTF-8 and spaces; https is fine. */
  cfg = load_ok("pki: { ca_token = \"CA \xc3\xa9\"; ocsp_url = "
                "\"https://ocsp.example/\"; };\n"
                "pkcs11: { softhsm_conf = \"\"; };\n");
  T_ASSERT(cfg != NULL);
  if (cfg) {
    T_EQ_STR(cfg->pki_ca_token, "CA \xc3\xa9");
    T_EQ_STR(cfg->pki_ocsp_url, "https://ocsp.example/");
    T_EQ_STR(cfg->softhsm_conf, "");
  }
  gw_config_del(cfg);
}

static void cleanup(void) {
  static const char *const names[] = {
      "t.conf",     "bad.conf", "inc_ok.conf", "inc_bad.conf",
      "sub/r.conf", "sub",      NULL};
  for (int i = 0; names[i]; i++) {
    remove(tmp_path(names[i]));
  }
  rmdir(tmpdir);
}

/* The operator keys' defaults (docs/configuration.md, operators.*). */
static void t_operators_defaults(void) {
  char want[PATH_MAX + 64];
  gw_config *cfg = load_ok("");

  if (!cfg) {
    T_ASSERT(0);
    return;
  }
  snprintf(want, sizeof(want), "%s/numbering-plan.conf", tmpdir);
  T_EQ_STR(cfg->op_numbering_plan, want);
  snprintf(want, sizeof(want), "%s/portability.csv", tmpdir);
  T_EQ_STR(cfg->op_portability, want);
  T_EQ_INT(cfg->op_max_conns_per_host, 64);
  T_EQ_STR(cfg->op_omantel.url, "http://127.0.0.1:9201/soap/services");
  T_EQ_STR(cfg->op_omantel.ap_id, "");
  T_EQ_STR(cfg->op_omantel.ap_pwd, "");
  T_EQ_INT(cfg->op_omantel.poll_first_ms, 1000);
  T_EQ_INT(cfg->op_omantel.poll_interval_ms, 1000);
  T_EQ_INT(cfg->op_omantel.timeout_s, 120);
  T_EQ_INT(cfg->op_omantel.connect_timeout_ms, 3000);
  T_EQ_INT(cfg->op_omantel.http_timeout_ms, 10000);
  T_EQ_INT(cfg->op_omantel.max_response, 262144);
  T_EQ_INT(cfg->op_omantel.status_retries, 3);
  T_EQ_INT(cfg->op_omantel.breaker_failures, 5);
  T_EQ_INT(cfg->op_omantel.breaker_cooldown_ms, 30000);
  gw_config_del(cfg);

  /* the reference file: the demo's routing files beside it, no AP */
  cfg = NULL;
  T_EQ_INT(gw_config_load(&cfg, "configs/mpkigw.conf", errbuf, sizeof(errbuf)),
           GW_OK);
  if (cfg) {
    T_ASSERT(strstr(cfg->op_numbering_plan,
                    "/configs/../configs/numbering-plan.conf") != NULL);
    T_ASSERT(strstr(cfg->op_portability,
                    "/configs/../configs/portability.csv") != NULL);
    T_EQ_STR(cfg->op_omantel.ap_id, "");
    T_EQ_STR(cfg->op_omantel.ap_pwd, "");
    T_EQ_INT(cfg->op_omantel.timeout_s, 120);
  }
  gw_config_del(cfg);
}

/* Every operator key set, in the nested group operators.omantel. */
static void t_operators_set(void) {
  gw_config *cfg = load_ok(
      "operators: {\n"
      "  numbering_plan = \"/etc/mpkigw/plan.conf\"; portability = \"\";\n"
      "  max_connections_per_host = 2;\n"
      "  omantel: {\n"
      "    url = \"https://mssp.omantel.example/soap\";\n"
      "    ap_id = \"http://mpkigw.example.om/ap\"; ap_pwd = "
      "\"s3cr\xc3\xa9t\";\n"
      "    poll_first_ms = 0; poll_interval_ms = 10; timeout_s = 1;\n"
      "    connect_timeout_ms = 100; http_timeout_ms = 600000;\n"
      "    max_response_size = \"4k\"; status_retries = 0;\n"
      "    breaker_failures = 0; breaker_cooldown_ms = 3600000;\n"
      "  };\n"
      "};\n");

  if (!cfg) {
    T_ASSERT(0);
    return;
  }
  T_EQ_STR(cfg->op_numbering_plan, "/etc/mpkigw/plan.conf");
  T_EQ_STR(cfg->op_portability, "");
  T_EQ_INT(cfg->op_max_conns_per_host, 2);
  T_EQ_STR(cfg->op_omantel.url, "https://mssp.omantel.example/soap");
  T_EQ_STR(cfg->op_omantel.ap_id, "http://mpkigw.example.om/ap");
  T_EQ_STR(cfg->op_omantel.ap_pwd, "s3cr\xc3\xa9t");
  T_EQ_INT(cfg->op_omantel.poll_first_ms, 0);
  T_EQ_INT(cfg->op_omantel.poll_interval_ms, 10);
  T_EQ_INT(cfg->op_omantel.timeout_s, 1);
  T_EQ_INT(cfg->op_omantel.connect_timeout_ms, 100);
  T_EQ_INT(cfg->op_omantel.http_timeout_ms, 600000);
  T_EQ_INT(cfg->op_omantel.max_response, 4096);
  T_EQ_INT(cfg->op_omantel.status_retries, 0);
  T_EQ_INT(cfg->op_omantel.breaker_failures, 0);
  T_EQ_INT(cfg->op_omantel.breaker_cooldown_ms, 3600000);
  gw_config_del(cfg);
}

static void t_operators_errors(void) {
  /* nested groups: unknown names, a value where the group goes */
  T_ASSERT(expect_err(TLS_KEYS "operators: {\n  vodafone: { url = \"x\"; };\n"
                               "};\n",
                      3, "unknown key \"operators.vodafone\""));
  T_ASSERT(expect_err(TLS_KEYS
                      "operators: { omantel: {\n urll = \"x\"; }; };\n",
                      3, "unknown key \"operators.omantel.urll\""));
  T_ASSERT(expect_err(TLS_KEYS "operators: {\n omantel = 1; };\n", 3,
                      "operators.omantel: expected a group, got an integer"));
  T_ASSERT(expect_err(TLS_KEYS "operators: { omantel: {\n url = { }; }; };\n",
                      3,
                      "operators.omantel.url: expected a string, got a "
                      "group"));
  T_ASSERT(expect_err(TLS_KEYS "omantel: { url = \"http://x/\"; };\n", 2,
                      "unknown key \"omantel\" (the groups are server, tls, "
                      "limits, log, store, pkcs11, pki, gateway_keys, "
                      "operators, oidc)"));
  /* values */
  T_ASSERT(expect_err(TLS_KEYS "operators: { omantel: {\n url = \"\"; }; };\n",
                      3, "operators.omantel.url: must not be empty"));
  T_ASSERT(expect_err(TLS_KEYS "operators: { omantel: {\n url = "
                               "\"127.0.0.1:9201\"; }; };\n",
                      3,
                      "operators.omantel.url: \"127.0.0.1:9201\" is not "
                      "an http:// or https:// URL"));
  T_ASSERT(expect_err(TLS_KEYS "operators: { omantel: {\n ap_id = "
                               "\"demo_ap\"; }; };\n",
                      3,
                      "operators.omantel.ap_id: \"demo_ap\" is not an "
                      "http:// or https:// URL"));
  T_ASSERT(expect_err(TLS_KEYS "operators: { omantel: {\n timeout_s = 0; }; "
                               "};\n",
                      3,
                      "operators.omantel.timeout_s: 0 is below the "
                      "minimum 1"));
  T_ASSERT(expect_err(TLS_KEYS "operators: { omantel: {\n poll_interval_ms = "
                               "9; }; };\n",
                      3,
                      "operators.omantel.poll_interval_ms: 9 is below the "
                      "minimum 10"));
  T_ASSERT(expect_err(TLS_KEYS "operators: { omantel: {\n max_response_size "
                               "= \"1m\"; }; };\n",
                      3,
                      "operators.omantel.max_response_size: 1048576 is "
                      "above the maximum 262144"));
  T_ASSERT(expect_err(TLS_KEYS "operators: { omantel: {\n "
                               "breaker_failures = 4294967297; }; };\n",
                      3,
                      "operators.omantel.breaker_failures: 4294967297 is "
                      "above the maximum 1000"));
  T_ASSERT(expect_err(TLS_KEYS "operators: {\n numbering_plan = \"\"; };\n", 3,
                      "operators.numbering_plan: must not be empty"));
  /* the password never appears in a message */
  T_ASSERT(expect_err(TLS_KEYS "operators: { omantel: {\n ap_pwd = "
                               "\"hunter\\t2\"; }; };\n",
                      3,
                      "operators.omantel.ap_pwd: (the secret value) "
                      "contains a control character"));
  T_ASSERT(strstr(errbuf, "hunter") == NULL);
  {
    char pwd[200], text[400];
    memset(pwd, 'p', 129);
    pwd[129] = '\0';
    snprintf(text, sizeof(text),
             TLS_KEYS "operators: { omantel: {\n ap_pwd = \"%s\"; }; };\n",
             pwd);
    T_ASSERT(
        expect_err(text, 3, "operators.omantel.ap_pwd: longer than 128 bytes"));
    T_ASSERT(strstr(errbuf, "ppp") == NULL);
  }
}

int main(void) {
  char tmpl[] = "/tmp/gw_config_test.XXXXXX";

  if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir)) {
    printf("not ok - mkdtemp: %s\n", strerror(errno));
    return 1;
  }
  T_RUN(t_defaults_minimal);
  T_RUN(t_all_keys_set);
  T_RUN(t_print_keys);
  T_RUN(t_reference_config);
  T_RUN(t_err_syntax);
  T_RUN(t_err_unknown_key);
  T_RUN(t_err_wrong_type);
  T_RUN(t_err_range);
  T_RUN(t_err_int_wrap);
  T_RUN(t_err_enum);
  T_RUN(t_tls_versions);
  T_RUN(t_listen_addresses);
  T_RUN(t_h2c_listen);
  T_RUN(t_bytes_suffix);
  T_RUN(t_workers_auto);
  T_RUN(t_relative_paths);
  T_RUN(t_empty_strings);
  T_RUN(t_missing_required);
  T_RUN(t_missing_file);
  T_RUN(t_failure_contract);
  T_RUN(t_include);
  T_RUN(t_pki_strings);
  T_RUN(t_operators_defaults);
  T_RUN(t_operators_set);
  T_RUN(t_operators_errors);
  cleanup();
  return T_DONE();
}
