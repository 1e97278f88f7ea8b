/* mock_config_test.c — operators/mock_config.c: the reference file, the
 * defaults, every kind of error with its file:line, the AP list (with the
 * notification URL and secret of Ooredoo's asynchServerServer mode), the
 * notifications group and the gateway's AP added beside it. */
#include "harness.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_err.h"
#include "mock_config.h"

static char dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Writes |text| to dir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text) {
  static char path[160];
  FILE *f;

  snprintf(path, sizeof(path), "%s/%s", dir, name);
  f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
  return path;
}

static const char *aps =
    "application_providers = ( { ap_id = \"http://demo_ap\"; ap_pwd = "
    "\"demo\"; } );\n";

/* Loads |text|; returns the error code, the message in |err|. */
static int load(const char *text, mock_config **out, char *err, size_t n) {
  *out = NULL;
  return mock_config_load(out, write_file("t.conf", text), err, n);
}

static void test_reference_file(void) {
  mock_config *c = NULL;
  char err[512];
  int rv = mock_config_load(&c, "configs/mssp-mock.conf", err, sizeof(err));

  T_EQ_INT(rv, GW_OK);
  if (rv != GW_OK) {
    printf("#   %s\n", err);
    return;
  }
  T_EQ_STR(c->op[MOCK_OP_OMANTEL].listen_host, "127.0.0.1");
  T_EQ_INT(c->op[MOCK_OP_OMANTEL].listen_port, 9201);
  T_EQ_INT(c->op[MOCK_OP_OOREDOO].listen_port, 9202);
  T_EQ_STR(c->op[MOCK_OP_OMANTEL].default_format, "PKCS7");
  T_EQ_STR(c->op[MOCK_OP_OOREDOO].default_format, "PKCS1");
  T_EQ_INT(c->control_enabled, 0);
  T_EQ_INT(c->gateway_ap, 1);
  T_EQ_INT(c->naps, 1);
  T_EQ_STR(c->aps[0].ap_id, "http://demo_ap");
  T_EQ_STR(c->aps[0].ap_pwd, "demo");
  T_ASSERT(strstr(c->gateway_config, "/var/mpkigw.conf") != NULL);
  T_ASSERT(c->gateway_config[0] == '/');
  T_EQ_INT(c->default_timeout_s, 300);
  T_EQ_STR(c->default_behaviour, "approve:1000");
  T_EQ_INT(c->notify_max_attempts, 6);
  T_EQ_INT(c->notify_first_retry_ms, 1000);
  T_EQ_INT(c->notify_window_s, 600);
  T_EQ_INT(c->notify_timeout_ms, 5000);
  T_ASSERT(strstr(c->notify_ca_file, "/var/tls/server.crt") != NULL);
  T_ASSERT(c->notify_ca_file[0] == '/');
  mock_config_del(c);
}

static void test_defaults_and_overrides(void) {
  mock_config *c = NULL;
  char err[512], text[1024];

  snprintf(text, sizeof(text),
           "state_dir = \"st\";\n"
           "omantel: { listen = \"localhost:1234\"; default_format = "
           "\"PKCS1\"; };\n"
           "transactions: { default_timeout_s = 5; max_timeout_s = 10; "
           "default_behaviour = \"refuse:5\"; };\n"
           "control: { enabled = true; };\n"
           "log: { level = \"debug\"; access = false; };\n"
           "application_providers = (\n"
           "  { ap_id = \"http://a\"; ap_pwd = \"x\"; },\n"
           "  { ap_id = \"urn:b\"; ap_pwd = \"y\"; notify_url = "
           "\"http://127.0.0.1:1/n\"; notify_secret = "
           "\"0123456789abcdef0123456789abcdef\"; }\n"
           ");\n"
           "notifications: { max_attempts = 3; first_retry_ms = 10; "
           "window_s = 5; timeout_ms = 200; ca_file = \"\"; };\n");
  T_EQ_INT(load(text, &c, err, sizeof(err)), GW_OK);
  if (!c) {
    printf("#   %s\n", err);
    return;
  }
  T_EQ_STR(c->op[MOCK_OP_OMANTEL].listen_host, "localhost");
  T_EQ_INT(c->op[MOCK_OP_OMANTEL].listen_port, 1234);
  T_EQ_STR(c->op[MOCK_OP_OMANTEL].default_format, "PKCS1");
  T_EQ_INT(c->default_timeout_s, 5);
  T_EQ_INT(c->control_enabled, 1);
  T_EQ_INT(c->log_level, GW_LOG_DEBUG);
  T_EQ_INT(c->access_log, 0);
  T_EQ_INT(c->naps, 2);
  T_EQ_STR(c->aps[1].notify_url, "http://127.0.0.1:1/n");
  T_EQ_STR(c->aps[1].notify_secret, "0123456789abcdef0123456789abcdef");
  T_EQ_INT(c->notify_max_attempts, 3);
  T_EQ_INT(c->notify_first_retry_ms, 10);
  T_EQ_INT(c->notify_window_s, 5);
  T_EQ_INT(c->notify_timeout_ms, 200);
  T_EQ_STR(c->notify_ca_file, "");
  /* Relative paths: against the file's directory. */
  T_ASSERT(strncmp(c->state_dir, dir, strlen(dir)) == 0);
  T_EQ_STR(c->state_dir + strlen(c->state_dir) - 3, "/st");
  /* The gateway's AP: added once, with its notification URL and secret. */
  T_EQ_INT(mock_config_add_ap(c, "http://gw", "secret", "https://gw/notify",
                              "secret-secret-secret-secret-32by"),
           GW_OK);
  T_EQ_INT(mock_config_add_ap(c, "http://gw", "other", NULL, NULL), GW_OK);
  T_EQ_INT(c->naps, 3);
  T_EQ_STR(c->aps[2].ap_pwd, "secret");
  T_EQ_STR(c->aps[2].notify_url, "https://gw/notify");
  T_EQ_STR(c->aps[2].notify_secret, "secret-secret-secret-secret-32by");
  T_EQ_INT(mock_config_add_ap(c, "", "x", NULL, NULL), GW_ERR_INVALID);
  /* A notify_url needs http(s) and a secret of 32 bytes or more. */
  T_EQ_INT(mock_config_add_ap(c, "http://gw2", "x", "https://gw/n", "short"),
           GW_ERR_INVALID);
  T_EQ_INT(mock_config_add_ap(c, "http://gw2", "x", "ftp://gw/n",
                              "secret-secret-secret-secret-32by"),
           GW_ERR_INVALID);
  T_EQ_INT(mock_config_add_ap(c, "http://gw2", "x", "", "ignored"), GW_OK);
  T_EQ_INT(c->naps, 4);
  T_EQ_STR(c->aps[3].notify_url, "");
  mock_config_del(c);
  mock_config_del(NULL);
}

/* Each bad file: the error names the line and the key. */
static void test_errors(void) {
  static const struct {
    const char *text;
    const char *want;
  } cases[] = {
      {"colour = \"blue\";\n", "t.conf:1: unknown key \"colour\""},
      {"omantel: { port = 1; };\n", "t.conf:1: unknown key \"omantel.port\""},
      {"\ntransactions: { keep_done_s = 0; };\n",
       "t.conf:2: transactions.keep_done_s: 0 is outside 1..86400"},
      {"control: { enabled = 1; };\n",
       "control.enabled: expected true or false"},
      {"omantel: { listen = \"1.2.3.4\"; };\n", "is not host:port"},
      {"omantel: { listen = \"example.com:80\"; };\n", "is not host:port"},
      {"omantel: { default_format = \"XML\"; };\n", "is not one of PKCS7"},
      {"omantel: { mssp_id = \"not a uri\"; };\n", "not an absolute URI"},
      {"transactions: { default_behaviour = \"dance\"; };\n",
       "is not a behaviour"},
      {"sims: { pin = \"12\"; };\n", "sims.pin: 4..64 bytes"},
      {"sims: { pin = \"0000\"; };\n", "must differ from sims.pin"},
      {"transactions: { default_timeout_s = 700; };\n",
       "is above transactions.max_timeout_s"},
      {"omantel: { tls_certificate = \"c.pem\"; };\n", "go together"},
      {"omantel = 5;\n", "omantel: expected a group"},
      {"gateway_config = 5;\n", "gateway_config: expected a string"},
      {"x = \n", "t.conf:2:"},
      {"notifications: { max_attempts = 21; };\n",
       "notifications.max_attempts: 21 is outside 1..20"},
      {"notifications: { max_attempts = 0; };\n",
       "notifications.max_attempts: 0 is outside 1..20"},
      {"notifications: { first_retry_ms = 0; };\n",
       "notifications.first_retry_ms"},
      {"notifications: { window_s = 0; };\n", "notifications.window_s"},
      {"notifications: { ca_file = 1; };\n",
       "notifications.ca_file: expected a string"},
      {"notifications: { retries = 1; };\n",
       "unknown key \"notifications.retries\""},
  };
  static const struct {
    const char *text;
    const char *want;
  } ap_cases[] = {
      {"application_providers = ();\n", "1..64 entries"},
      {"application_providers = ( { ap_pwd = \"x\"; } );\n", "without ap_id"},
      {"application_providers = ( { ap_id = \"http://a\"; } );\n",
       "without ap_pwd"},
      {"application_providers = ( { ap_id = \"nope\"; ap_pwd = \"x\"; } );\n",
       "not an absolute URI"},
      {"application_providers = ( { ap_id = \"http://a\"; ap_pwd = \"x\"; "
       "colour = 1; } );\n",
       "unknown key \"application_providers.colour\""},
      {"application_providers = ( { ap_id = \"http://a\"; ap_pwd = \"x\"; }, "
       "{ ap_id = \"http://a\"; ap_pwd = \"y\"; } );\n",
       "listed twice"},
      {"application_providers = \"x\";\n", "expected a list"},
      {"application_providers = ( { ap_id = \"http://a\"; ap_pwd = \"x\";\n"
       "  notify_url = \"http://127.0.0.1:9/n\";\n"
       "  notify_secret = \"too-short-secret\"; } );\n",
       "t.conf:3: application_providers.notify_secret: at least 32 bytes"},
      {"application_providers = ( { ap_id = \"http://a\"; ap_pwd = \"x\";\n"
       "  notify_url = \"http://127.0.0.1:9/n\"; } );\n",
       "application_providers.notify_secret: at least 32 bytes"},
      {"application_providers = ( { ap_id = \"http://a\"; ap_pwd = \"x\";\n"
       "  notify_url = \"mailto:ap@example.com\";\n"
       "  notify_secret = \"0123456789abcdef0123456789abcdef\"; } );\n",
       "t.conf:2: application_providers.notify_url: \"mailto:ap@example.com\" "
       "is not an http:// or https:// URL"},
      {"state_dir = \"s\";\n",
       "missing required key \"application_providers\""},
  };
  mock_config *c;
  char err[512], text[1024];

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    snprintf(text, sizeof(text), "%s%s", cases[i].text,
             strstr(cases[i].text, "x = ") ? "" : aps);
    err[0] = '\0';
    T_EQ_INT(load(text, &c, err, sizeof(err)), GW_ERR_CONFIG);
    if (!strstr(err, cases[i].want)) {
      printf("#   case %zu: \"%s\" lacks \"%s\"\n", i, err, cases[i].want);
      t_case_failed = 1;
    }
    T_ASSERT(c == NULL);
  }
  for (size_t i = 0; i < sizeof(ap_cases) / sizeof(ap_cases[0]); i++) {
    err[0] = '\0';
    T_EQ_INT(load(ap_cases[i].text, &c, err, sizeof(err)), GW_ERR_CONFIG);
    if (!strstr(err, ap_cases[i].want)) {
      printf("#   ap case %zu: \"%s\" lacks \"%s\"\n", i, err,
             ap_cases[i].want);
      t_case_failed = 1;
    }
  }
  /* The password is never in a message. */
  T_EQ_INT(load("application_providers = ( { ap_id = \"http://a\"; ap_pwd = "
                "\"hunter2hunter2\"; colour = 1; } );\n",
                &c, err, sizeof(err)),
           GW_ERR_CONFIG);
  T_ASSERT(strstr(err, "hunter2") == NULL);
  /* Nor the notification secret. */
  T_EQ_INT(load("application_providers = ( { ap_id = \"http://a\"; ap_pwd = "
                "\"x\"; notify_url = \"http://127.0.0.1:9/n\"; "
                "notify_secret = \"s3cr3t-s3cr3t\"; } );\n",
                &c, err, sizeof(err)),
           GW_ERR_CONFIG);
  T_ASSERT(strstr(err, "s3cr3t") == NULL);
  /* A missing file. */
  T_EQ_INT(mock_config_load(&c, "/nonexistent/x.conf", err, sizeof(err)),
           GW_ERR_IO);
  T_ASSERT(strstr(err, "/nonexistent/x.conf") != NULL);
}

static void test_operator_names(void) {
  mock_operator op;

  T_EQ_INT(mock_operator_parse("Omantel", &op), GW_OK);
  T_EQ_INT(op, MOCK_OP_OMANTEL);
  T_EQ_INT(mock_operator_parse("ooredoo", &op), GW_OK);
  T_EQ_INT(op, MOCK_OP_OOREDOO);
  T_EQ_INT(mock_operator_parse("vodafone", &op), GW_ERR_INVALID);
  T_EQ_STR(mock_operator_name(MOCK_OP_OOREDOO), "ooredoo");
}

static void test_print_keys(void) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);

  mock_config_print_keys(f);
  fclose(f);
  T_ASSERT(strstr(buf, "omantel.listen") != NULL);
  T_ASSERT(strstr(buf, "application_providers") != NULL);
  T_ASSERT(strstr(buf, "notifications.max_attempts") != NULL);
  T_ASSERT(strstr(buf, "notifications.ca_file") != NULL);
  T_ASSERT(strstr(buf, "\"1234\"") == NULL); /* PINs not printed */
  free(buf);
}

int main(void) {
  snprintf(dir, sizeof(dir), "/tmp/mockconftest.XXXXXX");
  if (!mkdtemp(dir)) {
    printf("not ok - mkdtemp\n");
    return 1;
  }
  T_RUN(test_reference_file);
  T_RUN(test_defaults_and_overrides);
  T_RUN(test_errors);
  T_RUN(test_operator_names);
  T_RUN(test_print_keys);
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return T_DONE();
}
