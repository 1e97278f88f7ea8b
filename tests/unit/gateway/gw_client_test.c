/* gw_client_test.c — the relying parties: the rules of a client row, the
 * lists, secrets, the snapshot (copies, reload), client authentication
 * (Basic and post, percent-encoding, both at once, wrong method, unknown
 * client and its hashing cost) and the seed file (a good file, every kind
 * of error with file:line, the demo's short secrets). */
#include "gw_client.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "gw_err.h"
#include "gw_log.h"
#include "harness.h"

/* |s| holds |sub|. */
#define T_STR_HAS(s, sub)                                                      \
  do {                                                                         \
    const char *t_s_ = (s);                                                    \
    if (!t_s_ || !strstr(t_s_, (sub))) {                                       \
      printf("#   %s:%d: \"%s\" does not hold \"%s\"\n", __FILE__, __LINE__,   \
             t_s_ ? t_s_ : "(null)", (sub));                                   \
      t_case_failed = 1;                                                       \
    }                                                                          \
  } while (0)

/* 32 bytes and more: a secret the non-demo rules accept. */
#define GOOD_SECRET "s3cret-of-thirty-two-bytes-at-least"
/* SHA-256 of GOOD_SECRET, as `printf %s ... | sha256sum` prints it. */
static char good_hex[65];

/* ---- helpers ----------------------------------------------------------- */

static char tdir[64];
static char tdb[128];

static void tmp_setup(void) {
  snprintf(tdir, sizeof(tdir), "/tmp/gw_client_test.XXXXXX");
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

static gw_store *open_tmp(void) {
  gw_store *s = NULL;
  char err[256];

  tmp_setup();
  if (gw_store_open(&s, "sqlite", tdb, 1000, err, sizeof(err)) != GW_OK) {
    printf("#   open: %s\n", err);
    T_ASSERT(0);
    tmp_cleanup();
    return NULL;
  }
  return s;
}

static void close_tmp(gw_store *s) {
  gw_store_close(s);
  tmp_cleanup();
}

/* A valid CIBA client with |secret|. */
static void row_fill(gw_store_client *r, const char *id, const char *secret) {
  memset(r, 0, sizeof(*r));
  snprintf(r->client_id, sizeof(r->client_id), "%s", id);
  snprintf(r->name, sizeof(r->name), "Demo RP \xd9\x85");
  gw_client_secret_hash(secret, r->secret_sha256);
  snprintf(r->auth_methods, sizeof(r->auth_methods),
           "client_secret_basic client_secret_post");
  snprintf(r->grant_types, sizeof(r->grant_types),
           "urn:openid:params:grant-type:ciba");
  snprintf(r->scopes, sizeof(r->scopes), "openid profile");
  snprintf(r->resources, sizeof(r->resources),
           "https://127.0.0.1:8443/licensing");
  snprintf(r->ciba_mode, sizeof(r->ciba_mode), "poll");
  snprintf(r->id_token_alg, sizeof(r->id_token_alg), "ES256");
}

/* "Basic " + base64(|user| ":" |pass|), both as given (already encoded). */
static void basic(char *out, size_t cap, const char *user, const char *pass) {
  unsigned char raw[512], b64[700];
  int n = snprintf((char *)raw, sizeof(raw), "%s:%s", user, pass);

  EVP_EncodeBlock(b64, raw, n);
  snprintf(out, cap, "Basic %s", (const char *)b64);
}

static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");

  T_ASSERT(fp != NULL);
  if (fp) {
    fputs(text, fp);
    fclose(fp);
  }
}

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- lists, rules, secrets --------------------------------------------- */

static void test_list_has(void) {
  T_EQ_INT(gw_client_list_has("openid profile licensing", "openid"), 1);
  T_EQ_INT(gw_client_list_has("openid profile licensing", "profile"), 1);
  T_EQ_INT(gw_client_list_has("openid profile licensing", "licensing"), 1);
  T_EQ_INT(gw_client_list_has("openid profile licensing", "licens"), 0);
  T_EQ_INT(gw_client_list_has("openid profile", "openid profile"), 0);
  T_EQ_INT(gw_client_list_has("openid", ""), 0);
  T_EQ_INT(gw_client_list_has("", "openid"), 0);
  T_EQ_INT(gw_client_list_has(NULL, "openid"), 0);
  T_EQ_INT(gw_client_list_has("openid", NULL), 0);
  T_EQ_INT(gw_client_list_has("licensing.officer licensing", "licensing"), 1);
}

/* |mutate| breaks one rule; the message must name |want|. */
static void check_refused(void (*mutate)(gw_store_client *), const char *want) {
  gw_store_client r;
  char err[256] = "";

  row_fill(&r, "demo-rp", GOOD_SECRET);
  mutate(&r);
  T_EQ_INT(gw_client_check(&r, err, sizeof(err)), GW_ERR_INVALID);
  if (!strstr(err, want)) {
    printf("#   expected \"%s\" in \"%s\"\n", want, err);
    T_ASSERT(0);
  }
}

static void m_id_bad(gw_store_client *r) {
  snprintf(r->client_id, sizeof(r->client_id), "demo rp");
}
static void m_id_empty(gw_store_client *r) {
  r->client_id[0] = '\0';
}
static void m_name_empty(gw_store_client *r) {
  r->name[0] = '\0';
}
static void m_name_ctl(gw_store_client *r) {
  snprintf(r->name, sizeof(r->name), "a\tb");
}
static void m_name_utf8(gw_store_client *r) {
  snprintf(r->name, sizeof(r->name), "\xc3\x28");
}
static void m_auth_none(gw_store_client *r) {
  r->auth_methods[0] = '\0';
}
static void m_auth_unknown(gw_store_client *r) {
  snprintf(r->auth_methods, sizeof(r->auth_methods), "private_key_jwt");
}
static void m_grant_unknown(gw_store_client *r) {
  snprintf(r->grant_types, sizeof(r->grant_types), "password");
}
static void m_grant_none(gw_store_client *r) {
  r->grant_types[0] = '\0';
  r->ciba_mode[0] = '\0';
}
static void m_grant_twice(gw_store_client *r) {
  snprintf(r->grant_types, sizeof(r->grant_types),
           "refresh_token urn:openid:params:grant-type:ciba refresh_token");
}
static void m_double_space(gw_store_client *r) {
  snprintf(r->scopes, sizeof(r->scopes), "openid  profile");
}
static void m_trailing_space(gw_store_client *r) {
  snprintf(r->scopes, sizeof(r->scopes), "openid ");
}
static void m_scope_quote(gw_store_client *r) {
  snprintf(r->scopes, sizeof(r->scopes), "openid \"x\"");
}
static void m_resource_http(gw_store_client *r) {
  snprintf(r->resources, sizeof(r->resources), "http://rs.example.om/api");
}
static void m_resource_fragment(gw_store_client *r) {
  snprintf(r->resources, sizeof(r->resources), "https://rs.example.om/a#b");
}
static void m_resource_userinfo(gw_store_client *r) {
  snprintf(r->resources, sizeof(r->resources), "https://u@rs.example.om/");
}
static void m_resource_nohost(gw_store_client *r) {
  snprintf(r->resources, sizeof(r->resources), "https:///x");
}
static void m_redirect_ftp(gw_store_client *r) {
  snprintf(r->redirect_uris, sizeof(r->redirect_uris), "ftp://x/");
}
static void m_code_without_redirect(gw_store_client *r) {
  snprintf(r->grant_types, sizeof(r->grant_types), "authorization_code");
  r->ciba_mode[0] = '\0';
}
static void m_mode_bad(gw_store_client *r) {
  snprintf(r->ciba_mode, sizeof(r->ciba_mode), "push");
}
static void m_mode_without_grant(gw_store_client *r) {
  snprintf(r->grant_types, sizeof(r->grant_types), "authorization_code");
  snprintf(r->redirect_uris, sizeof(r->redirect_uris), "https://rp/cb");
}
static void m_ping_without_endpoint(gw_store_client *r) {
  snprintf(r->ciba_mode, sizeof(r->ciba_mode), "ping");
}
static void m_ping_http(gw_store_client *r) {
  snprintf(r->ciba_mode, sizeof(r->ciba_mode), "ping");
  snprintf(r->ciba_notification_endpoint, sizeof(r->ciba_notification_endpoint),
           "http://127.0.0.1:9/cb");
}
static void m_endpoint_poll(gw_store_client *r) {
  snprintf(r->ciba_notification_endpoint, sizeof(r->ciba_notification_endpoint),
           "https://rp/cb");
}
static void m_alg(gw_store_client *r) {
  snprintf(r->id_token_alg, sizeof(r->id_token_alg), "none");
}
static void m_rs_flag(gw_store_client *r) {
  r->resource_server = 3;
}
static void m_unterminated(gw_store_client *r) {
  memset(r->ciba_mode, 'p', sizeof(r->ciba_mode));
}

static void test_check(void) {
  gw_store_client r;
  char err[256] = "";

  row_fill(&r, "demo-rp", GOOD_SECRET);
  T_EQ_INT(gw_client_check(&r, err, sizeof(err)), GW_OK);
  /* Loopback http, ping with https, a resource server without grants, a
   * code client with its redirect URI: all fine. */
  snprintf(r.resources, sizeof(r.resources),
           "http://127.0.0.1:8443/licensing http://localhost/x "
           "https://rs.example.om/api?v=1");
  snprintf(r.ciba_mode, sizeof(r.ciba_mode), "ping");
  snprintf(r.ciba_notification_endpoint, sizeof(r.ciba_notification_endpoint),
           "https://rp.example.om/cb");
  T_EQ_INT(gw_client_check(&r, err, sizeof(err)), GW_OK);
  row_fill(&r, "licensing.rs", GOOD_SECRET);
  r.grant_types[0] = r.ciba_mode[0] = r.scopes[0] = '\0';
  r.resource_server = 1;
  T_EQ_INT(gw_client_check(&r, err, sizeof(err)), GW_OK);
  row_fill(&r, "A.b_c-9", GOOD_SECRET);
  snprintf(r.grant_types, sizeof(r.grant_types),
           "authorization_code refresh_token");
  snprintf(r.redirect_uris, sizeof(r.redirect_uris), "https://rp/cb");
  r.ciba_mode[0] = '\0';
  T_EQ_INT(gw_client_check(&r, err, sizeof(err)), GW_OK);
  /* The CIBA grant with no mode is poll. */
  row_fill(&r, "demo-rp", GOOD_SECRET);
  r.ciba_mode[0] = '\0';
  T_EQ_INT(gw_client_check(&r, err, sizeof(err)), GW_OK);
  T_EQ_INT(gw_client_check(NULL, err, sizeof(err)), GW_ERR_INVALID);

  check_refused(m_id_bad, "client_id");
  check_refused(m_id_empty, "client_id");
  check_refused(m_name_empty, "name");
  check_refused(m_name_ctl, "name");
  check_refused(m_name_utf8, "name");
  check_refused(m_auth_none, "auth_methods: none");
  check_refused(m_auth_unknown,
                "auth_methods: unknown value \"private_key_jwt\"");
  check_refused(m_grant_unknown, "grant_types: unknown value \"password\"");
  check_refused(m_grant_none, "grant_types: none");
  check_refused(m_grant_twice, "\"refresh_token\" is listed twice");
  check_refused(m_double_space, "scopes: words are separated by one space");
  check_refused(m_trailing_space, "scopes: words are separated by one space");
  check_refused(m_scope_quote, "scopes:");
  check_refused(m_resource_http, "http:// only to 127.0.0.1 or localhost");
  check_refused(m_resource_fragment, "fragment");
  check_refused(m_resource_userinfo, "user info");
  check_refused(m_resource_nohost, "no host");
  check_refused(m_redirect_ftp, "redirect_uris: \"ftp://x/\" is not an");
  check_refused(m_code_without_redirect, "redirect_uris: the "
                                         "authorization_code grant needs");
  check_refused(m_mode_bad, "ciba_mode: \"push\"");
  check_refused(m_mode_without_grant, "ciba_mode: set, but grant_types lacks");
  check_refused(m_ping_without_endpoint, "ping mode needs an https://");
  check_refused(m_ping_http, "ciba_notification_endpoint: "
                             "\"http://127.0.0.1:9/cb\" is not an https://");
  check_refused(m_endpoint_poll, "only for ciba_mode \"ping\"");
  check_refused(m_alg, "id_token_alg: \"none\"");
  check_refused(m_rs_flag, "resource_server");
  check_refused(m_unterminated, "ciba_mode: longer than 7 bytes");
}

static void test_secrets(void) {
  static const unsigned char abc[32] = {
      0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
      0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
      0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  unsigned char h[32];
  char a[64], b[64];

  /* FIPS 180-2 "abc". */
  gw_client_secret_hash("abc", h);
  T_ASSERT(memcmp(h, abc, 32) == 0);

  T_EQ_INT(gw_client_secret_generate(a, 44), GW_OK);
  T_EQ_INT(gw_client_secret_generate(b, sizeof(b)), GW_OK);
  T_EQ_INT(strlen(a), 43);
  T_EQ_INT(strlen(b), 43);
  T_EQ_INT(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789-_"),
           43);
  T_ASSERT(strcmp(a, b) != 0);
  T_EQ_INT(gw_client_secret_generate(a, 43), GW_ERR_INVALID);
  T_EQ_INT(gw_client_secret_generate(NULL, 44), GW_ERR_INVALID);
}

/* ---- the snapshot ------------------------------------------------------ */

static void test_snapshot(void) {
  gw_store_client r;
  gw_clients *c = NULL;
  gw_client out;
  char err[256];
  gw_store *s = open_tmp();
  int saved = gw_log_min_level;

  if (!s) {
    return;
  }
  T_EQ_INT(gw_clients_new(&c, s, err, sizeof(err)), GW_OK);
  T_EQ_INT(gw_clients_count(c), 0);
  T_EQ_INT(gw_clients_get(c, "demo-rp", &out), GW_ERR_NOT_FOUND);

  row_fill(&r, "demo-rp", GOOD_SECRET);
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);
  row_fill(&r, "b-rp", GOOD_SECRET);
  snprintf(r.ciba_mode, sizeof(r.ciba_mode), "ping");
  snprintf(r.ciba_notification_endpoint, sizeof(r.ciba_notification_endpoint),
           "https://b.example/cb");
  snprintf(r.auth_methods, sizeof(r.auth_methods), "client_secret_post");
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);
  /* A row that breaks the rules is left out, with a warning. */
  row_fill(&r, "broken", GOOD_SECRET);
  snprintf(r.grant_types, sizeof(r.grant_types), "password");
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);

  /* Not seen until the reload. */
  T_EQ_INT(gw_clients_get(c, "demo-rp", &out), GW_ERR_NOT_FOUND);
  gw_log_min_level = GW_LOG_ERROR;
  T_EQ_INT(gw_clients_reload(c, s), GW_OK);
  gw_log_min_level = saved;
  T_EQ_INT(gw_clients_count(c), 2);
  T_EQ_INT(gw_clients_get(c, "broken", &out), GW_ERR_NOT_FOUND);
  memset(&out, 0, sizeof(out));
  T_EQ_INT(gw_clients_get(c, "demo-rp", &out), GW_OK);
  T_EQ_STR(out.row.client_id, "demo-rp");
  T_EQ_INT(out.grants, GW_GRANT_CIBA);
  T_EQ_INT(out.auth_methods, GW_AUTH_BASIC | GW_AUTH_POST);
  T_EQ_INT(out.ciba_ping, 0);
  T_EQ_INT(gw_clients_get(c, "b-rp", &out), GW_OK);
  T_EQ_INT(out.auth_methods, GW_AUTH_POST);
  T_EQ_INT(out.ciba_ping, 1);
  /* A copy: changing it changes nothing in the snapshot. */
  out.row.name[0] = 'X';
  T_EQ_INT(gw_clients_get(c, "b-rp", &out), GW_OK);
  T_ASSERT(out.row.name[0] == 'D');

  /* Removal is seen at the next reload too; a failed reload keeps the
   * contents. */
  T_EQ_INT(gw_store_client_del(s, "b-rp"), GW_OK);
  T_EQ_INT(gw_clients_reload(c, NULL), GW_ERR_INVALID);
  T_EQ_INT(gw_clients_count(c), 2);
  gw_log_min_level = GW_LOG_ERROR;
  T_EQ_INT(gw_clients_reload(c, s), GW_OK);
  gw_log_min_level = saved;
  T_EQ_INT(gw_clients_count(c), 1);
  T_EQ_INT(gw_clients_get(c, "b-rp", &out), GW_ERR_NOT_FOUND);

  T_EQ_INT(gw_clients_get(c, NULL, &out), GW_ERR_INVALID);
  T_EQ_INT(gw_clients_count(NULL), 0);
  T_EQ_INT(gw_clients_new(NULL, s, err, sizeof(err)), GW_ERR_INVALID);
  gw_clients_del(c);
  gw_clients_del(NULL);
  close_tmp(s);
}

/* Counts the lines of |path| that hold |needle|. */
static int count_lines(const char *path, const char *needle) {
  char line[2048];
  int n = 0;
  FILE *fp = fopen(path, "r");

  if (!fp) {
    return -1;
  }
  while (fgets(line, sizeof(line), fp)) {
    n += strstr(line, needle) != NULL;
  }
  fclose(fp);
  return n;
}

/* Rows left out are logged in one line at load, and again by a reload
 * only when their number changes: the reload is periodic, and the same
 * warning every few seconds would bury the log. */
static void test_snapshot_logs_left_out_rows_once(void) {
  static const char msg[] = "clients left out of the registry snapshot";
  gw_store_client r;
  gw_clients *c = NULL;
  char err[256], logp[160];
  gw_store *s = open_tmp();

  if (!s) {
    return;
  }
  snprintf(logp, sizeof(logp), "%s/gw.log", tdir);
  T_EQ_INT(gw_log_open(logp, GW_LOG_WARN), GW_OK);
  row_fill(&r, "good", GOOD_SECRET);
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);
  row_fill(&r, "bad-1", GOOD_SECRET);
  snprintf(r.id_token_alg, sizeof(r.id_token_alg), "HS256");
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);
  T_EQ_INT(gw_clients_new(&c, s, err, sizeof(err)), GW_OK);
  T_EQ_INT(gw_clients_count(c), 1);
  T_EQ_INT(count_lines(logp, msg), 1);
  T_EQ_INT(count_lines(logp, "client_ids=\"bad-1\""), 1);
  T_EQ_INT(count_lines(logp, "id_token_alg: \\\"HS256\\\""), 1);
  T_EQ_INT(gw_clients_reload(c, s), GW_OK);
  T_EQ_INT(gw_clients_reload(c, s), GW_OK);
  T_EQ_INT(count_lines(logp, msg), 1);
  row_fill(&r, "bad-2", GOOD_SECRET);
  r.auth_methods[0] = '\0';
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);
  T_EQ_INT(gw_clients_reload(c, s), GW_OK);
  T_EQ_INT(count_lines(logp, msg), 2);
  T_EQ_INT(count_lines(logp, "count=2 client_ids=\"bad-1\",\"bad-2\""), 1);
  gw_log_open(NULL, GW_LOG_WARN);
  gw_clients_del(c);
  close_tmp(s);
}

/* ---- authentication ---------------------------------------------------- */

/* A snapshot with demo-rp (both methods), basic-only, post-only and a
 * client whose id and secret need percent-encoding in Basic. */
static gw_clients *auth_setup(gw_store **sp) {
  gw_store_client r;
  gw_clients *c = NULL;
  char err[256];
  gw_store *s = open_tmp();

  *sp = s;
  if (!s) {
    return NULL;
  }
  row_fill(&r, "demo-rp", GOOD_SECRET);
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);
  row_fill(&r, "basic-only", GOOD_SECRET);
  snprintf(r.auth_methods, sizeof(r.auth_methods), "client_secret_basic");
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);
  row_fill(&r, "post-only", GOOD_SECRET);
  snprintf(r.auth_methods, sizeof(r.auth_methods), "client_secret_post");
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);
  row_fill(&r, "odd.rp", "p:ss%w rd+/\xc3\xa9");
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);
  T_EQ_INT(gw_clients_new(&c, s, err, sizeof(err)), GW_OK);
  return c;
}

static void test_auth_basic(void) {
  char h[1024], big[2000];
  const char *why = NULL;
  gw_client out;
  gw_store *s;
  gw_clients *c = auth_setup(&s);

  if (!c) {
    close_tmp(s);
    return;
  }
  basic(h, sizeof(h), "demo-rp", GOOD_SECRET);
  memset(&out, 0, sizeof(out));
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_OK);
  T_EQ_STR(out.row.client_id, "demo-rp");
  T_EQ_STR(why, "");
  /* The scheme is case-insensitive (RFC 7235); extra spaces are fine. */
  h[0] = 'b';
  h[1] = 'A';
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_OK);
  /* A client_id in the form beside Basic: the same client is fine. */
  basic(h, sizeof(h), "demo-rp", GOOD_SECRET);
  T_EQ_INT(gw_client_authenticate(c, h, "demo-rp", NULL, &out, &why),
           GW_CLIENT_AUTH_OK);
  T_EQ_INT(gw_client_authenticate(c, h, "basic-only", NULL, &out, &why),
           GW_CLIENT_AUTH_MALFORMED);

  /* Bad secret, unknown client: FAILED, and |out| untouched. */
  basic(h, sizeof(h), "demo-rp", GOOD_SECRET "x");
  memset(&out, 0x5a, sizeof(out));
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_FAILED);
  T_EQ_STR(why, "wrong secret");
  T_ASSERT(out.row.client_id[0] == 0x5a);
  basic(h, sizeof(h), "nobody", GOOD_SECRET);
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_FAILED);
  T_EQ_STR(why, "unknown client");
  basic(h, sizeof(h), "demo-rp", "");
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_FAILED);

  /* Malformed. */
  T_EQ_INT(gw_client_authenticate(c, "Basic !!!!", NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_MALFORMED);
  T_EQ_INT(gw_client_authenticate(c, "Basic ZGVtbw", NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_MALFORMED); /* unpadded */
  T_EQ_INT(
      gw_client_authenticate(c, "Basic ZGVtby1ycA==", NULL, NULL, &out, &why),
      GW_CLIENT_AUTH_MALFORMED); /* "demo-rp", no colon */
  T_STR_HAS(why, "colon");
  T_EQ_INT(gw_client_authenticate(c, "Basic Og==", NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_MALFORMED); /* ":" — no client_id */
  T_EQ_INT(gw_client_authenticate(c, "Basic ", NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_MALFORMED);
  T_EQ_INT(gw_client_authenticate(c, "Bearer abc", NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_MALFORMED);
  T_EQ_INT(gw_client_authenticate(c, "Basic=ZGVtbzpw", NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_MALFORMED);
  basic(h, sizeof(h), "demo-rp", "bad%zzescape");
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_MALFORMED);
  basic(h, sizeof(h), "demo-rp", "nul%00byte");
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_MALFORMED);
  /* Over the cap of the credentials. */
  memcpy(big, "Basic ", 6);
  memset(big + 6, 'A', 1372);
  big[6 + 1372] = '\0';
  T_EQ_INT(gw_client_authenticate(c, big, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_MALFORMED);

  /* A client that allows post only. */
  basic(h, sizeof(h), "post-only", GOOD_SECRET);
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_FAILED);
  T_STR_HAS(why, "client_secret_basic not allowed");
  basic(h, sizeof(h), "basic-only", GOOD_SECRET);
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_OK);
  /* NULL |why| is allowed. */
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, NULL),
           GW_CLIENT_AUTH_OK);
  gw_clients_del(c);
  close_tmp(s);
}

/* RFC 6749 §2.3.1: id and secret are form-urlencoded before base64, so a
 * colon, a percent sign, a plus and non-ASCII survive. */
static void test_auth_basic_percent_encoded(void) {
  char h[1024];
  const char *why;
  gw_client out;
  gw_store *s;
  gw_clients *c = auth_setup(&s);

  if (!c) {
    close_tmp(s);
    return;
  }
  /* The secret is "p:ss%w rd+/é". */
  basic(h, sizeof(h), "odd%2Erp", "p%3Ass%25w+rd%2B%2F%C3%A9");
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_OK);
  T_EQ_STR(out.row.client_id, "odd.rp");
  /* Lower-case escapes are the same bytes. */
  basic(h, sizeof(h), "odd.rp", "p%3ass%25w%20rd%2b/%c3%a9");
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_OK);
  /* An unencoded '+' is a space, so the secret differs. */
  basic(h, sizeof(h), "odd.rp", "p%3Ass%25w+rd+/%C3%A9");
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_FAILED);
  /* The first colon splits: a raw colon in the secret stays in it. */
  basic(h, sizeof(h), "odd.rp", "p:ss%25w+rd%2B/%C3%A9");
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_OK);
  gw_clients_del(c);
  close_tmp(s);
}

static void test_auth_post_and_both(void) {
  char h[1024];
  const char *why;
  gw_client out;
  gw_store *s;
  gw_clients *c = auth_setup(&s);

  if (!c) {
    close_tmp(s);
    return;
  }
  T_EQ_INT(gw_client_authenticate(c, NULL, "demo-rp", GOOD_SECRET, &out, &why),
           GW_CLIENT_AUTH_OK);
  T_EQ_STR(out.row.client_id, "demo-rp");
  /* An empty Authorization value is no Basic. */
  T_EQ_INT(gw_client_authenticate(c, "", "post-only", GOOD_SECRET, &out, &why),
           GW_CLIENT_AUTH_OK);
  /* The form values are already decoded: taken as they are. */
  T_EQ_INT(gw_client_authenticate(c, NULL, "odd.rp", "p:ss%w rd+/\xc3\xa9",
                                  &out, &why),
           GW_CLIENT_AUTH_OK);
  T_EQ_INT(gw_client_authenticate(c, NULL, "demo-rp", "wrong", &out, &why),
           GW_CLIENT_AUTH_FAILED);
  T_EQ_STR(why, "wrong secret");
  T_EQ_INT(gw_client_authenticate(c, NULL, "demo-rp", "", &out, &why),
           GW_CLIENT_AUTH_FAILED);
  /* Wrong method: basic-only may not post. */
  T_EQ_INT(
      gw_client_authenticate(c, NULL, "basic-only", GOOD_SECRET, &out, &why),
      GW_CLIENT_AUTH_FAILED);
  T_STR_HAS(why, "client_secret_post not allowed");
  T_EQ_INT(gw_client_authenticate(c, NULL, "nobody", GOOD_SECRET, &out, &why),
           GW_CLIENT_AUTH_FAILED);
  T_EQ_STR(why, "unknown client");

  /* Both methods at once: malformed, even with the right secret twice. */
  basic(h, sizeof(h), "demo-rp", GOOD_SECRET);
  T_EQ_INT(gw_client_authenticate(c, h, "demo-rp", GOOD_SECRET, &out, &why),
           GW_CLIENT_AUTH_MALFORMED);
  T_STR_HAS(why, "both");
  T_EQ_INT(gw_client_authenticate(c, h, NULL, "", &out, &why),
           GW_CLIENT_AUTH_MALFORMED);

  /* No credentials; an id alone; a secret alone. */
  T_EQ_INT(gw_client_authenticate(c, NULL, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_NONE);
  T_EQ_INT(gw_client_authenticate(c, NULL, "demo-rp", NULL, &out, &why),
           GW_CLIENT_AUTH_NONE);
  T_EQ_INT(gw_client_authenticate(c, NULL, NULL, GOOD_SECRET, &out, &why),
           GW_CLIENT_AUTH_MALFORMED);
  T_EQ_INT(gw_client_authenticate(c, NULL, "", GOOD_SECRET, &out, &why),
           GW_CLIENT_AUTH_MALFORMED);
  T_EQ_INT(
      gw_client_authenticate(NULL, NULL, "demo-rp", GOOD_SECRET, &out, &why),
      GW_CLIENT_AUTH_FAILED);
  gw_clients_del(c);
  close_tmp(s);
}

/* An unknown client must cost the hash of its secret, as a known one does:
 * else the time of the answer tells which client_ids exist. With a long
 * secret the hash is most of the work, so skipping it for unknown clients
 * would make them many times faster; the bound below leaves a wide margin
 * for a loaded machine. */
#define TIMING_SECRET (512 * 1024)
#define TIMING_ROUNDS 20

static void test_auth_unknown_client_costs_a_hash(void) {
  const char *why;
  gw_client out;
  double t0, known, unknown;
  char *secret;
  gw_store *s;
  gw_clients *c = auth_setup(&s);

  secret = malloc(TIMING_SECRET + 1);
  if (!c || !secret) {
    T_ASSERT(c && secret);
    free(secret);
    gw_clients_del(c);
    close_tmp(s);
    return;
  }
  memset(secret, 'k', TIMING_SECRET);
  secret[TIMING_SECRET] = '\0';
  /* Warm up, then alternate so that a slow patch hits both. */
  gw_client_authenticate(c, NULL, "demo-rp", secret, &out, &why);
  known = unknown = 0;
  for (int i = 0; i < TIMING_ROUNDS; i++) {
    t0 = now_s();
    T_EQ_INT(gw_client_authenticate(c, NULL, "demo-rp", secret, &out, &why),
             GW_CLIENT_AUTH_FAILED);
    known += now_s() - t0;
    t0 = now_s();
    T_EQ_INT(
        gw_client_authenticate(c, NULL, "no-such-client", secret, &out, &why),
        GW_CLIENT_AUTH_FAILED);
    unknown += now_s() - t0;
  }
  printf("#   %d rounds with a %d KiB secret: known %.1f ms, unknown %.1f ms\n",
         TIMING_ROUNDS, TIMING_SECRET / 1024, known * 1e3, unknown * 1e3);
  T_ASSERT(unknown > known / 4);
  free(secret);
  gw_clients_del(c);
  close_tmp(s);
}

/* ---- the seed file ----------------------------------------------------- */

/* Seeds |text| (written to a file in the test directory) into |s|; the
 * message goes to |err|. */
static int seed_text(gw_store *s, const char *text, int demo, size_t *n,
                     char *err, size_t errlen) {
  char path[160];

  snprintf(path, sizeof(path), "%s/clients.conf", tdir);
  write_file(path, text);
  return gw_clients_seed(s, path, demo, 0, n, err, errlen);
}

static const char good_file[] =
    "# the demo's relying parties\n"
    "clients = (\n"
    "  { client_id = \"demo-rp\";\n"
    "    name = \"Demo RP\";\n"
    "    secret = \"" GOOD_SECRET "\";\n"
    "    grant_types = [\"urn:openid:params:grant-type:ciba\"];\n"
    "    scopes = [\"openid\", \"profile\", \"licensing\"];\n"
    "    resources = [\"https://127.0.0.1:8443/licensing\"];\n"
    "    redirect_uris = [];\n"
    "    ciba_mode = \"poll\"; },\n"
    "  { client_id = \"licensing-portal\";\n"
    "    secret_sha256 = \"%s\";\n"
    "    auth_methods = [\"client_secret_basic\"];\n"
    "    grant_types = [\"authorization_code\", \"refresh_token\"];\n"
    "    scopes = [\"openid\"];\n"
    "    redirect_uris = [\"https://127.0.0.1:8443/portal/cb\"];\n"
    "    id_token_alg = \"RS256\"; },\n"
    "  { client_id = \"licensing-rs\";\n"
    "    secret = \"" GOOD_SECRET "\";\n"
    "    resources = [\"https://127.0.0.1:8443/licensing\"];\n"
    "    resource_server = true; }\n"
    ");\n";

static void test_seed_good_file(void) {
  char text[4096], err[512] = "", h[1024];
  gw_store_client r;
  gw_clients *c = NULL;
  gw_client out;
  const char *why;
  size_t n = 0;
  gw_store *s = open_tmp();

  if (!s) {
    return;
  }
  snprintf(text, sizeof(text), good_file, good_hex);
  T_EQ_INT(seed_text(s, text, 0, &n, err, sizeof(err)), GW_OK);
  if (err[0]) {
    printf("#   %s\n", err);
  }
  T_EQ_INT(n, 3);
  T_EQ_INT(gw_store_client_get(s, "demo-rp", &r), GW_OK);
  T_EQ_STR(r.name, "Demo RP");
  T_EQ_STR(r.auth_methods, "client_secret_basic client_secret_post");
  T_EQ_STR(r.grant_types, "urn:openid:params:grant-type:ciba");
  T_EQ_STR(r.scopes, "openid profile licensing");
  T_EQ_STR(r.resources, "https://127.0.0.1:8443/licensing");
  T_EQ_STR(r.redirect_uris, "");
  T_EQ_STR(r.ciba_mode, "poll");
  T_EQ_STR(r.id_token_alg, "ES256");
  T_EQ_INT(r.resource_server, 0);
  T_EQ_INT(gw_store_client_get(s, "licensing-portal", &r), GW_OK);
  T_EQ_STR(r.name, "licensing-portal"); /* the default name */
  T_EQ_STR(r.auth_methods, "client_secret_basic");
  T_EQ_STR(r.grant_types, "authorization_code refresh_token");
  T_EQ_STR(r.id_token_alg, "RS256");
  T_EQ_STR(r.ciba_mode, "");
  T_EQ_INT(gw_store_client_get(s, "licensing-rs", &r), GW_OK);
  T_EQ_INT(r.resource_server, 1);
  T_EQ_STR(r.grant_types, "");

  /* The plain secret and the hex hash both authenticate. */
  T_EQ_INT(gw_clients_new(&c, s, err, sizeof(err)), GW_OK);
  T_EQ_INT(gw_clients_count(c), 3);
  basic(h, sizeof(h), "demo-rp", GOOD_SECRET);
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_OK);
  basic(h, sizeof(h), "licensing-portal", GOOD_SECRET);
  T_EQ_INT(gw_client_authenticate(c, h, NULL, NULL, &out, &why),
           GW_CLIENT_AUTH_OK);
  gw_clients_del(c);

  /* Seeding again keeps created_at, replaces changed rows and leaves
   * clients that are not in the file alone. */
  T_EQ_INT(gw_store_client_get(s, "demo-rp", &r), GW_OK);
  r.created_at = 1600000000;
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);
  row_fill(&r, "added-by-mpkictl", GOOD_SECRET);
  T_EQ_INT(gw_store_client_put(s, &r), GW_OK);
  snprintf(text, sizeof(text),
           "clients = ({ client_id = \"demo-rp\"; name = \"Renamed\"; "
           "secret = \"" GOOD_SECRET "\"; grant_types = "
           "[\"urn:openid:params:grant-type:ciba\"]; });");
  T_EQ_INT(seed_text(s, text, 0, &n, err, sizeof(err)), GW_OK);
  T_EQ_INT(n, 1);
  T_EQ_INT(gw_store_client_get(s, "demo-rp", &r), GW_OK);
  T_EQ_STR(r.name, "Renamed");
  T_EQ_INT(r.created_at, 1600000000);
  T_EQ_INT(gw_store_client_get(s, "added-by-mpkictl", &r), GW_OK);
  T_EQ_INT(gw_store_client_get(s, "licensing-rs", &r), GW_OK);

  /* An empty list, an empty file. */
  T_EQ_INT(seed_text(s, "clients = ();\n", 0, &n, err, sizeof(err)), GW_OK);
  T_EQ_INT(n, 0);
  T_EQ_INT(seed_text(s, "# nothing\n", 0, &n, err, sizeof(err)), GW_OK);
  T_EQ_INT(n, 0);
  close_tmp(s);
}

/* One bad file: the call fails with GW_ERR_CONFIG and a message that
 * starts with "FILE:|line|: " and holds |want|; nothing is written. */
static void seed_refused(gw_store *s, const char *text, int line,
                         const char *want) {
  char err[512] = "", prefix[256];
  gw_store_client r;
  size_t n = 99;
  int rv;

  rv = seed_text(s, text, 0, &n, err, sizeof(err));
  snprintf(prefix, sizeof(prefix), "%s/clients.conf:%d: ", tdir, line);
  T_EQ_INT(rv, GW_ERR_CONFIG);
  T_EQ_INT(n, 0);
  if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, want)) {
    printf("#   expected \"%s...%s\", got \"%s\"\n", prefix, want, err);
    T_ASSERT(0);
  }
  /* The secret never appears in a message. */
  T_ASSERT(strstr(err, GOOD_SECRET) == NULL);
  T_ASSERT(strstr(err, "short-secret") == NULL);
  T_EQ_INT(gw_store_client_get(s, "ok-rp", &r), GW_ERR_NOT_FOUND);
}

#define OK_CLIENT                                                              \
  "  { client_id = \"ok-rp\"; secret = \"" GOOD_SECRET "\";\n"                 \
  "    grant_types = [\"urn:openid:params:grant-type:ciba\"]; },\n"
#define CIBA "grant_types = [\"urn:openid:params:grant-type:ciba\"]; "

static void test_seed_errors(void) {
  gw_store *s = open_tmp();

  if (!s) {
    return;
  }
  /* libconfig's own syntax errors. */
  seed_refused(s, "clients = (\n  { client_id = \"x\" \n", 3, "syntax error");
  seed_refused(s, "\nclient = ();\n", 2, "unknown key \"client\"");
  seed_refused(s, "clients = \"demo\";\n", 1, "expected a list");
  seed_refused(s, "clients = (\n" OK_CLIENT "  \"x\" );\n", 4,
               "each entry is a group");
  /* Every error names the line of the setting at fault, and a client
   * before it is not written either. */
  seed_refused(s,
               "clients = (\n" OK_CLIENT
               "  { client_id = \"b\";\n    secert = \"x\"; }\n);\n",
               5, "unknown key \"clients.secert\"");
  seed_refused(s, "clients = (\n" OK_CLIENT "  { name = \"b\"; }\n);\n", 4,
               "a client without client_id");
  seed_refused(
      s, "clients = (\n" OK_CLIENT "  { client_id = \"b\"; " CIBA "}\n);\n", 4,
      "client \"b\": give secret or secret_sha256");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"b\"; " CIBA
               "\n    secret = \"" GOOD_SECRET
               "\";\n    secret_sha256 = \"00\"; }\n);\n",
               5, "exactly one");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"b\"; " CIBA
               "\n    secret_sha256 = \"abcd\"; }\n);\n",
               5, "clients.secret_sha256: 64 hex digits");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"b\"; " CIBA
               "\n    secret = \"short-secret\"; }\n);\n",
               5, "clients.secret: 12 bytes, at least 32");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"b\";\n"
               "    secret = \"" GOOD_SECRET
               "\";\n    grant_types = \"ciba\"; }\n);\n",
               6, "clients.grant_types: expected an array of strings");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"b\";\n"
               "    secret = \"" GOOD_SECRET "\";\n    grant_types = [1]; }\n"
               ");\n",
               6, "element 1 is an integer");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"b\";\n"
               "    secret = \"" GOOD_SECRET
               "\";\n    grant_types = [\"password\"]; }\n);\n",
               6, "client \"b\": grant_types: unknown value \"password\"");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"b\"; " CIBA
               "\n    secret = \"" GOOD_SECRET "\";\n"
               "    resources = [\"http://rs.example.om/\"]; }\n);\n",
               6, "resources: \"http://rs.example.om/\"");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"b\"; " CIBA
               "\n    secret = \"" GOOD_SECRET "\";\n"
               "    ciba_mode = \"ping\"; }\n);\n",
               6, "ping mode needs an https:// endpoint");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"b\"; " CIBA
               "\n    secret = \"" GOOD_SECRET "\";\n"
               "    resource_server = \"yes\"; }\n);\n",
               6, "clients.resource_server: expected true or false");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"b c\"; " CIBA
               "\n    secret = \"" GOOD_SECRET "\"; }\n);\n",
               4, "client_id: 1 to 64 of");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"b\"; " CIBA
               "\n    secret = \"" GOOD_SECRET "\";\n    name = 5; }\n);\n",
               6, "clients.name: expected a string, got an integer");
  seed_refused(s,
               "clients = (\n" OK_CLIENT "  { client_id = \"ok-rp\"; " CIBA
               "\n    secret = \"" GOOD_SECRET "\"; }\n);\n",
               4, "client \"ok-rp\" is listed twice");
  close_tmp(s);
}

static void test_seed_demo_and_files(void) {
  static const char short_file[] =
      "clients = ({ client_id = \"demo-rp\";\n"
      "  secret = \"demo-rp-secret\";\n" CIBA "});\n";
  char err[512], path[160];
  gw_store_client r;
  unsigned char h[32];
  size_t n = 99;
  gw_store *s = open_tmp();

  if (!s) {
    return;
  }
  /* The demo's short secrets: refused, unless oidc.demo. */
  T_EQ_INT(seed_text(s, short_file, 0, &n, err, sizeof(err)), GW_ERR_CONFIG);
  T_STR_HAS(err, "clients.conf:2: clients.secret: 14 bytes, at least 32 are "
                 "needed (or oidc.demo = true");
  T_ASSERT(strstr(err, "demo-rp-secret") == NULL);
  T_EQ_INT(seed_text(s, short_file, 1, &n, err, sizeof(err)), GW_OK);
  T_EQ_INT(n, 1);
  T_EQ_INT(gw_store_client_get(s, "demo-rp", &r), GW_OK);
  gw_client_secret_hash("demo-rp-secret", h);
  T_ASSERT(memcmp(r.secret_sha256, h, 32) == 0);
  /* Empty is refused even for the demo. */
  T_EQ_INT(seed_text(s,
                     "clients = ({ client_id = \"x\"; secret = \"\"; " CIBA
                     "});\n",
                     1, &n, err, sizeof(err)),
           GW_ERR_CONFIG);

  /* A missing file: fine when optional, else named. */
  snprintf(path, sizeof(path), "%s/none.conf", tdir);
  T_EQ_INT(gw_clients_seed(s, path, 0, 1, &n, err, sizeof(err)), GW_OK);
  T_EQ_INT(n, 0);
  T_EQ_INT(gw_clients_seed(s, path, 0, 0, &n, err, sizeof(err)), GW_ERR_IO);
  T_STR_HAS(err, "none.conf: No such file");
  /* oidc.clients_file = "" means none; a directory is not a file. */
  T_EQ_INT(gw_clients_seed(s, "", 0, 0, &n, err, sizeof(err)), GW_OK);
  T_EQ_INT(gw_clients_seed(s, tdir, 0, 0, &n, err, sizeof(err)), GW_ERR_CONFIG);
  T_EQ_INT(gw_clients_seed(NULL, path, 0, 1, &n, err, sizeof(err)),
           GW_ERR_INVALID);
  close_tmp(s);
}

int main(void) {
  unsigned char h[32];

  gw_log_min_level = GW_LOG_WARN;
  gw_client_secret_hash(GOOD_SECRET, h);
  for (int i = 0; i < 32; i++) {
    snprintf(good_hex + 2 * i, 3, "%02x", h[i]);
  }
  T_RUN(test_list_has);
  T_RUN(test_check);
  T_RUN(test_secrets);
  T_RUN(test_snapshot);
  T_RUN(test_snapshot_logs_left_out_rows_once);
  T_RUN(test_auth_basic);
  T_RUN(test_auth_basic_percent_encoded);
  T_RUN(test_auth_post_and_both);
  T_RUN(test_auth_unknown_client_costs_a_hash);
  T_RUN(test_seed_good_file);
  T_RUN(test_seed_errors);
  T_RUN(test_seed_demo_and_files);
  return T_DONE();
}
