/* ciba_bench.c — complete CIBA sign-ins per second end to end, beside the
 * crypto bound measured in the same run, and the memory one pending
 * sign-in costs with 10,000 waiting.
 *
 * 1. End to end. Makes a private PKI with $BUILD/mpkictl (its own SoftHSM
 *    tokens, CA, gateway signing keys and registry under /tmp; var/ is not
 *    touched) with CIBA_BENCH_SIMS subscribers (default 16) per operator
 *    whose behaviour is "approve:0" (the virtual user approves at once),
 *    starts $BUILD/mssp-mock for Omantel and Ooredoo and the real
 *    $BUILD/mpkigw (one CIBA client, oidc.ciba_interval_s = 1, Omantel
 *    polled every 10 ms, Ooredoo by notification), and drives it with
 *    libcurl's multi interface, HTTP/2 over TLS: one slot per SIM does
 *    POST /bc-authorize (client_secret_basic), then POST /token with the
 *    CIBA grant at once and again until the tokens come; one sign-in =
 *    bc-authorize to the access and ID tokens in hand. Two runs of
 *    CIBA_BENCH_SECONDS (default 5) each:
 *      polite  the client waits the interval (1 s) between polls, as CIBA
 *              asks: the rate is bounded by about one sign-in per slot
 *              per second;
 *      eager   the client polls every 10 ms and ignores slow_down (the
 *              gateway answers a ready transaction whatever the interval):
 *              the latency is the time from bc-authorize to the
 *              transaction being ready, the rate what the stack can do.
 * 2. The crypto bound. One sign-in costs one SoftHSM ECDSA P-256 signature
 *    (the SIM, in the mock), one verification with the chain (the
 *    gateway's verifier: CMS for Omantel, raw for Ooredoo) and two ES256
 *    JWT signatures (access and ID token) through the gateway's PKCS#11
 *    token. Measures p11_sign here, and runs $BUILD/tests/bench/
 *    verify_bench and jose_bench for the other two; the bound is
 *    1 / (1/sign + 1/verify + 2/jwt_sign), one CPU, half the sign-ins at
 *    each operator.
 * 3. Memory. An in-process sign-in engine (gw_txn) against a fake Omantel
 *    MSSP (libevent's HTTP server in a child process) that accepts every
 *    MSS_Signature with 100 REQUEST_OK and would answer 504 forever;
 *    status polling is set to 600 s so that the waiting is idle.
 *    CIBA_BENCH_PENDING (default 10000) subscribers are written straight
 *    into a private store (one real certificate for all), then as many
 *    sign-ins are begun on one loop; VmRSS before and after, once every one
 *    is "sent".
 *
 * Prints
 *
 *   ciba signins ops_per_s=X
 *   ciba signins_eager ops_per_s=X
 *   ciba crypto_bound ops_per_s=Y
 *   ciba pending_memory bytes_per_signin=Z
 *
 * and "# ..." lines with the details. Exit 1 when the set-up fails or a
 * sign-in fails. Run from the repository root:
 * BUILD=build build/tests/bench/ciba_bench */
#include <curl/curl.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_store.h"
#include "gw_txn.h"
#include "mss_soap.h"
#include "op_adapter.h"
#include "p11.h"
#include "support/t_demo.h"

#define AP_ID "http://mpkigw.bench/ap"
#define AP_PWD "bench-secret"
#define SECRET "bench-notification-secret-0123456789abcdef"
#define CLIENT_ID "bench-rp"
#define CLIENT_SECRET "bench-rp-secret-0123456789abcdef0123456789"
#define MAX_SIMS 64
#define EAGER_MS 10

enum { OM = 0, OO = 1 };
static const char *const op_names[] = {"omantel", "ooredoo"};
static const char *const op_prefix[] = {"+968992", "+968952"};

static char dir[PATH_MAX], build[PATH_MAX];
static char cert[PATH_MAX + 32], key[PATH_MAX + 32];
static pid_t mock_pid[2], gw_pid, fake_pid;
static int mock_port[2], gw_port;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void stop_child(pid_t *pid) {
  int st;

  if (*pid <= 0) {
    return;
  }
  kill(*pid, SIGTERM);
  for (int i = 0; i < 150 && waitpid(*pid, &st, WNOHANG) == 0; i++) {
    usleep(20000);
  }
  if (waitpid(*pid, &st, WNOHANG) == 0) {
    kill(*pid, SIGKILL);
    waitpid(*pid, &st, 0);
  }
  *pid = 0;
}

static void cleanup(void) {
  stop_child(&gw_pid);
  stop_child(&fake_pid);
  t_mock_stop(&mock_pid[OM]);
  t_mock_stop(&mock_pid[OO]);
  if (dir[0] && !getenv("KEEP_TMP")) {
    t_sh("rm -rf '%s'", dir);
  }
}

/* CPU seconds used so far by process |pid| (utime + stime). */
static double cpu_of(pid_t pid) {
  char path[64], buf[2048], *p;
  unsigned long ut = 0, st = 0;
  FILE *f;
  size_t n;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  f = fopen(path, "r");
  if (!f) {
    return 0;
  }
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &st) != 2) {
    return 0;
  }
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of this process, bytes. */
static long rss_bytes(void) {
  char line[256];
  long kb = -1;
  FILE *f = fopen("/proc/self/status", "r");

  if (!f) {
    return -1;
  }
  while (fgets(line, sizeof(line), f)) {
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) {
      break;
    }
  }
  fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

/* ---- the stack ---------------------------------------------------------- */

static int setup_pki(int nsims) {
  size_t off = 0, cap = 64 + (size_t)nsims * 200;
  char *csv = malloc(cap), ops[1024];
  int rv;

  if (!csv) {
    return -1;
  }
  off += (size_t)snprintf(csv, cap,
                          "msisdn,civil_id,name,operator,pin,puk,behaviour\n");
  for (int o = OM; o <= OO; o++) {
    for (int i = 0; i < nsims; i++) {
      off += (size_t)snprintf(csv + off, cap - off,
                              "%s%05d,%d%07d,Bench %d,%s,,,approve:0\n",
                              op_prefix[o], i, 2 + o, i, i, op_names[o]);
    }
  }
  gw_port = t_free_port();
  snprintf(ops, sizeof(ops),
           "omantel: { ap_id = \"%s\"; ap_pwd = \"%s\"; };\n"
           "ooredoo: { ap_id = \"%s\"; ap_pwd = \"%s\";\n"
           "  notify_url = \"https://127.0.0.1:%d/operators/ooredoo/notify\";\n"
           "  notify_secret = \"%s\"; };\n",
           AP_ID, AP_PWD, AP_ID, AP_PWD, gw_port, SECRET);
  rv = gw_port ? t_demo_pki_ops(dir, build, csv, ops) : -1;
  free(csv);
  if (rv == 0) {
    rv = t_mpkictl(dir, build, 120, "gateway-key init");
  }
  snprintf(cert, sizeof(cert), "%s/gw-cert.pem", dir);
  snprintf(key, sizeof(key), "%s/gw-key.pem", dir);
  if (rv == 0) {
    rv = t_sh("openssl req -x509 -newkey ec -pkeyopt "
              "ec_paramgen_curve:P-256 -nodes -keyout '%s' -out '%s' -days 2 "
              "-subj /CN=gw-bench -addext subjectAltName=IP:127.0.0.1 "
              "2>/dev/null",
              key, cert);
  }
  return rv;
}

static int start_mocks(void) {
  char extra[PATH_MAX + 400];

  snprintf(extra, sizeof(extra),
           "transactions: { keep_done_s = 5; max_transactions = 1000000; };\n"
           "sims: { pool_threads = 2; };\n"
           "notifications: { ca_file = \"%s\"; };",
           cert);
  return t_mock_start_op(dir, build, "omantel", extra, &mock_port[OM],
                         &mock_pid[OM]) ||
         t_mock_start_op(dir, build, "ooredoo", extra, &mock_port[OO],
                         &mock_pid[OO]);
}

/* 1 when `mpkigw --check-config |conf|` refuses it. */
static int check_config_fails(const char *conf) {
  char cmd[2 * PATH_MAX + 96];

  snprintf(cmd, sizeof(cmd), "'%s/mpkigw' --check-config '%s' >/dev/null 2>&1",
           build, conf);
  return system(cmd) != 0;
}

/* The push-bombing limits would stop one client at one address starting
 * sign-ins for the same 32 phones all the time: off for the benchmark. */
static const char LIMITS_OFF[] =
    "limits: { signin_starts_per_source = 0; signin_per_pair_hour = 0;\n"
    "  signin_per_pair_day = 0; signin_refusals_before_cooldown = 0; };\n";

/* The gateway's config beside the demo's mpkigw.conf (same store, tokens,
 * PKI and gateway keys), and the clients file with the one CIBA client.
 * Without the limits group when this mpkigw does not know those keys. */
static int write_gw_config(void) {
  char path[PATH_MAX + 32], *text = NULL;
  const char *cwd = getenv("PWD");
  int rc;

  snprintf(path, sizeof(path), "%s/clients.conf", dir);
  if (t_write_text(path,
                   "clients = (\n"
                   "  { client_id = \"" CLIENT_ID "\"; name = \"Bench RP\";\n"
                   "    secret = \"" CLIENT_SECRET "\";\n"
                   "    auth_methods = [\"client_secret_basic\"];\n"
                   "    grant_types = "
                   "[\"urn:openid:params:grant-type:ciba\"];\n"
                   "    scopes = [\"openid\"]; resources = [];\n"
                   "    redirect_uris = []; ciba_mode = \"poll\";\n"
                   "    ciba_notification_endpoint = \"\";\n"
                   "    id_token_alg = \"ES256\"; resource_server = false; }\n"
                   ");\n") != 0) {
    return -1;
  }
  if (asprintf(
          &text,
          "server: { listen = \"127.0.0.1:%d\"; shutdown_grace_ms = 1000; };\n"
          "tls: { certificate = \"gw-cert.pem\"; private_key = "
          "\"gw-key.pem\"; };\n"
          "log: { level = \"warn\"; file = \"gw.log\"; access = false; };\n"
          "store: { path = \"mpkigw.db\"; };\n"
          "pkcs11: { softhsm_conf = \"softhsm2.conf\"; };\n"
          "pki: { dir = \"pki\"; crl = \"pki/crl.pem\"; };\n"
          "operators: {\n"
          "  numbering_plan = \"%s/configs/numbering-plan.conf\";\n"
          "  portability = \"\";\n"
          "  omantel: { url = \"http://127.0.0.1:%d/soap/services\";\n"
          "    ap_id = \"%s\"; ap_pwd = \"%s\";\n"
          "    poll_first_ms = 10; poll_interval_ms = 10; timeout_s = 60; };\n"
          "  ooredoo: { url = \"http://127.0.0.1:%d/rest/service\";\n"
          "    ap_id = \"%s\"; ap_pwd = \"%s\";\n"
          "    notify_url = "
          "\"https://127.0.0.1:%d/operators/ooredoo/notify\";\n"
          "    notify_secret = \"%s\"; timeout_s = 60; };\n"
          "};\n"
          "oidc: { issuer = \"https://127.0.0.1:%d\";\n"
          "  clients_file = \"clients.conf\"; demo = true;\n"
          "  ciba_interval_s = 1; ciba_expiry_s = 120; display_lang = \"en\"; "
          "};\n%s",
          gw_port, cwd ? cwd : ".", mock_port[OM], AP_ID, AP_PWD, mock_port[OO],
          AP_ID, AP_PWD, gw_port, SECRET, gw_port, LIMITS_OFF) < 0) {
    return -1;
  }
  snprintf(path, sizeof(path), "%s/gw.conf", dir);
  rc = t_write_text(path, text);
  if (rc == 0 && check_config_fails(path)) {
    char *lim = strstr(text, LIMITS_OFF);
    if (lim) {
      *lim = '\0';
    }
    rc = t_write_text(path, text);
  }
  free(text);
  return rc;
}

static int start_gateway(void) {
  char conf[PATH_MAX + 32], out[PATH_MAX + 32], exe[PATH_MAX + 32];

  snprintf(conf, sizeof(conf), "%s/gw.conf", dir);
  snprintf(out, sizeof(out), "%s/gw.out", dir);
  snprintf(exe, sizeof(exe), "%s/mpkigw", build);
  gw_pid = fork();
  if (gw_pid == 0) {
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    setenv("SOFTHSM2_CONF", "/nonexistent", 1);
    execl(exe, exe, "--config", conf, (char *)NULL);
    _exit(127);
  }
  if (gw_pid < 0) {
    gw_pid = 0;
    return -1;
  }
  for (int i = 0; i < 300; i++) {
    int st;
    char cmd[PATH_MAX + 160];
    snprintf(cmd, sizeof(cmd),
             "curl -s -o /dev/null --max-time 1 -f --cacert '%s' "
             "https://127.0.0.1:%d/healthz 2>/dev/null",
             cert, gw_port);
    if (system(cmd) == 0) {
      return 0;
    }
    if (waitpid(gw_pid, &st, WNOHANG) == gw_pid) {
      gw_pid = 0;
      break;
    }
    usleep(50000);
  }
  t_sh("tail -n 5 '%s' '%s/gw.log' | sed 's/^/# /' >&2", out, dir);
  return -1;
}

/* ---- the CIBA client ---------------------------------------------------- */

enum { S_BC = 0, S_WAIT, S_TOKEN, S_STOPPED };

typedef struct run {
  CURLM *multi;
  int eager;
  double end;
  long done, in_window, failed, slow_downs, polls;
  double lat_sum, lat_max;
  double steady; /* sum over the slots of sign-ins / busy time */
  char first_failure[300];
} run;

typedef struct slot {
  run *r;
  CURL *h;
  int state;
  int busy; /* a request is in flight */
  char msisdn[16];
  char auth_req_id[GW_TXN_ID_LEN + 1];
  double t0, next_at;
  int interval_s;
  long done;
  double busy_s; /* in sign-ins, measured phase */
  char body[8192];
  size_t len;
} slot;

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
  slot *s = arg;
  size_t len = size * n;

  if (len > sizeof(s->body) - 1 - s->len) {
    len = sizeof(s->body) - 1 - s->len; /* cut: the parse will fail */
  }
  memcpy(s->body + s->len, p, len);
  s->len += len;
  s->body[s->len] = '\0';
  return size * n;
}

static void slot_fail(slot *s, const char *what) {
  run *r = s->r;

  if (!r->failed) {
    snprintf(r->first_failure, sizeof(r->first_failure), "%s %s: %.200s",
             s->msisdn, what, s->body);
  }
  r->failed++;
  s->state = S_STOPPED;
}

static void send_req(slot *s) {
  char url[96], form[256];

  if (s->state == S_BC) {
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/bc-authorize", gw_port);
    snprintf(form, sizeof(form),
             "scope=openid&login_hint=tel%%3A%%2B%s&binding_message=Bench",
             s->msisdn + 1);
    s->t0 = now_s();
  } else {
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/token", gw_port);
    snprintf(form, sizeof(form),
             "grant_type=urn%%3Aopenid%%3Aparams%%3Agrant-type%%3Aciba&"
             "auth_req_id=%s",
             s->auth_req_id);
    s->state = S_TOKEN;
    s->r->polls++;
  }
  s->len = 0;
  s->body[0] = '\0';
  curl_easy_setopt(s->h, CURLOPT_URL, url);
  curl_easy_setopt(s->h, CURLOPT_COPYPOSTFIELDS, form);
  s->busy = 1;
  if (curl_multi_add_handle(s->r->multi, s->h) != CURLM_OK) {
    s->busy = 0;
    slot_fail(s, "curl_multi_add_handle");
  }
}

static void on_done(slot *s, CURLcode cc) {
  run *r = s->r;
  long code = 0;
  json_t *j;
  double t = now_s();

  s->busy = 0;
  if (cc != CURLE_OK) {
    snprintf(s->body, sizeof(s->body), "%s", curl_easy_strerror(cc));
    slot_fail(s, "transfer");
    return;
  }
  curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
  j = json_loadb(s->body, s->len, 0, NULL);
  if (!j) {
    slot_fail(s, "not JSON");
    return;
  }
  if (s->state == S_BC) {
    const char *id = json_string_value(json_object_get(j, "auth_req_id"));
    if (code != 200 || !id || strlen(id) > GW_TXN_ID_LEN) {
      slot_fail(s, "bc-authorize");
    } else {
      snprintf(s->auth_req_id, sizeof(s->auth_req_id), "%s", id);
      s->interval_s = (int)json_integer_value(json_object_get(j, "interval"));
      s->state = S_WAIT;
      send_req(s); /* the first poll is always on time */
    }
  } else if (code == 200 && json_object_get(j, "access_token") &&
             json_object_get(j, "id_token")) {
    double lat = t - s->t0;
    r->done++;
    r->in_window += t <= r->end;
    s->done++;
    s->busy_s += lat;
    r->lat_sum += lat;
    if (lat > r->lat_max) {
      r->lat_max = lat;
    }
    s->state = t < r->end ? S_BC : S_STOPPED;
    if (s->state == S_BC) {
      send_req(s);
    }
  } else {
    const char *e = json_string_value(json_object_get(j, "error"));
    if (e && strcmp(e, "slow_down") == 0) {
      r->slow_downs++;
    }
    if (e && (!strcmp(e, "authorization_pending") || !strcmp(e, "slow_down"))) {
      s->state = S_WAIT;
      s->next_at = t + (r->eager ? EAGER_MS / 1e3
                                 : (s->interval_s > 0 ? s->interval_s : 1));
    } else {
      slot_fail(s, "token");
    }
  }
  json_decref(j);
}

/* Keeps every slot going until r->end; returns the elapsed seconds. */
static double drive(run *r, slot *slots, int n) {
  double t0 = now_s();

  for (int i = 0; i < n; i++) {
    slots[i].r = r;
    slots[i].state = S_BC;
    send_req(&slots[i]);
  }
  for (;;) {
    double t = now_s(), next = t + 1;
    int live = 0, running, left;
    CURLMsg *m;

    for (int i = 0; i < n; i++) {
      slot *s = &slots[i];
      if (s->state == S_STOPPED) {
        continue;
      }
      live++;
      if (s->state == S_WAIT && !s->busy) {
        if (t >= s->next_at) {
          send_req(s);
        } else if (s->next_at < next) {
          next = s->next_at;
        }
      }
    }
    if (!live) {
      break;
    }
    if (t > r->end + 60 && t > t0 + 60) { /* a sign-in is stuck: give up */
      for (int i = 0; i < n; i++) {
        if (slots[i].state != S_STOPPED) {
          if (slots[i].busy) {
            curl_multi_remove_handle(r->multi, slots[i].h);
            slots[i].busy = 0;
          }
          snprintf(slots[i].body, sizeof(slots[i].body), "no end after 60 s");
          slot_fail(&slots[i], "stuck");
        }
      }
      break;
    }
    curl_multi_perform(r->multi, &running);
    while ((m = curl_multi_info_read(r->multi, &left)) != NULL) {
      slot *s = NULL;
      if (m->msg != CURLMSG_DONE) {
        continue;
      }
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
      curl_multi_remove_handle(r->multi, m->easy_handle);
      on_done(s, m->data.result);
    }
    t = now_s();
    curl_multi_poll(r->multi, NULL, 0,
                    next > t ? (int)((next - t) * 1e3) + 1 : 0, NULL);
  }
  return now_s() - t0;
}

static int signins(int nsims, double seconds, int eager, run *r, double *dt,
                   double *cpu_gw, double *cpu_mocks) {
  int n = 2 * nsims;
  slot *slots = calloc((size_t)n, sizeof(*slots));
  double c0, m0;
  int rc = -1;

  memset(r, 0, sizeof(*r));
  r->multi = curl_multi_init();
  if (!slots || !r->multi) {
    goto out;
  }
  curl_multi_setopt(r->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  for (int i = 0; i < n; i++) {
    slot *s = &slots[i];
    snprintf(s->msisdn, sizeof(s->msisdn), "%s%05d", op_prefix[i % 2], i / 2);
    s->h = curl_easy_init();
    if (!s->h) {
      goto out;
    }
    curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(s->h, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(s->h, CURLOPT_CAINFO, cert);
    curl_easy_setopt(s->h, CURLOPT_USERNAME, CLIENT_ID);
    curl_easy_setopt(s->h, CURLOPT_PASSWORD, CLIENT_SECRET);
    curl_easy_setopt(s->h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, 30000L);
  }
  /* warm-up: one sign-in per slot (connections, SIM logins, caches) */
  r->eager = 1;
  r->end = 0;
  drive(r, slots, n);
  if (r->failed) {
    goto out;
  }
  r->eager = eager;
  r->done = r->in_window = r->polls = r->slow_downs = 0;
  for (int i = 0; i < n; i++) {
    slots[i].done = 0;
    slots[i].busy_s = 0;
  }
  r->lat_sum = r->lat_max = 0;
  c0 = cpu_of(gw_pid);
  m0 = cpu_of(mock_pid[OM]) + cpu_of(mock_pid[OO]);
  r->end = now_s() + seconds;
  *dt = drive(r, slots, n);
  *cpu_gw = cpu_of(gw_pid) - c0;
  *cpu_mocks = cpu_of(mock_pid[OM]) + cpu_of(mock_pid[OO]) - m0;
  for (int i = 0; i < n; i++) {
    r->steady +=
        slots[i].busy_s > 0 ? (double)slots[i].done / slots[i].busy_s : 0;
  }
  rc = r->failed ? -1 : 0;
out:
  for (int i = 0; slots && i < n; i++) {
    curl_easy_cleanup(slots[i].h);
  }
  if (r->multi) {
    curl_multi_cleanup(r->multi);
  }
  free(slots);
  return rc;
}

/* Every slot starts its next sign-in as soon as the last one ends: the
 * steady rate is the sum over the slots of sign-ins / time spent in them.
 * The count completed within the window is printed beside it (it runs low
 * when the window holds few sign-ins per slot: they all start together). */
static double report_signins(const char *name, int nsims, int eager, run *r,
                             double seconds, double dt, double cpu_gw,
                             double cpu_mocks) {
  double rate = r->steady;

  printf("ciba %s ops_per_s=%.0f\n", name, rate);
  printf("# %s: %ld sign-ins completed in %.1f s (%.0f/s; %ld more by "
         "%.1f s), %d slots (%d approve:0 SIMs per operator), %s; latency "
         "mean %.0f ms, max %.0f ms; %.1f token polls per sign-in, %ld "
         "slow_down; %ld failed%s%s\n",
         name, r->in_window, seconds, (double)r->in_window / seconds,
         r->done - r->in_window, dt, 2 * nsims, nsims,
         eager ? "token polls every 10 ms, slow_down ignored"
               : "token polls at once, then every interval (1 s)",
         r->done ? 1e3 * r->lat_sum / (double)r->done : 0, 1e3 * r->lat_max,
         r->done ? (double)r->polls / (double)r->done : 0, r->slow_downs,
         r->failed, r->failed ? ": " : "", r->first_failure);
  if (r->done) {
    printf("# %s CPU per sign-in: mpkigw %.0f us, both mocks %.0f us; %ld "
           "CPUs\n",
           name, 1e6 * cpu_gw / (double)r->done,
           1e6 * cpu_mocks / (double)r->done, sysconf(_SC_NPROCESSORS_ONLN));
  }
  fflush(stdout);
  return rate;
}

/* ---- the crypto bound --------------------------------------------------- */

static double raw_sign_rate(double seconds) {
  char tdir[PATH_MAX + 32], conf[PATH_MAX + 64], text[PATH_MAX + 200];
  const uint8_t id[] = {1};
  p11_module *m = NULL;
  p11_token *t = NULL;
  p11_key *k = NULL;
  uint8_t dg[32], sig[64];
  double end, t0, rate = -1;
  long n = 0;

  snprintf(tdir, sizeof(tdir), "%s/raw-tokens", dir);
  mkdir(tdir, 0700);
  snprintf(conf, sizeof(conf), "%s/raw-softhsm2.conf", dir);
  snprintf(text, sizeof(text),
           "directories.tokendir = %s\nobjectstore.backend = file\n"
           "log.level = ERROR\nslots.removable = false\n",
           tdir);
  if (t_write_text(conf, text) != 0) {
    return -1;
  }
  setenv("SOFTHSM2_CONF", conf, 1);
  if (p11_module_new(&m, "/usr/lib/softhsm/libsofthsm2.so") != P11_OK ||
      p11_token_init(m, "rawbench", "87654321", "1234", &t) != P11_OK ||
      p11_keygen(t, "1234", P11_KEY_EC_P256, "k", id, sizeof(id)) != P11_OK ||
      p11_key_find(t, "1234", "k", &k) != P11_OK) {
    fprintf(stderr, "ciba_bench: SoftHSM set-up failed\n");
    goto out;
  }
  memset(dg, 0x5a, sizeof(dg));
  t0 = now_s();
  end = t0 + seconds;
  while (now_s() < end) {
    size_t len = sizeof(sig);
    if (p11_sign(k, P11_MECH_ECDSA, dg, sizeof(dg), 0, sig, &len) != P11_OK) {
      goto out;
    }
    dg[0]++;
    n++;
  }
  rate = (double)n / (now_s() - t0);
out:
  p11_key_del(k);
  p11_module_del(m);
  unsetenv("SOFTHSM2_CONF");
  return rate;
}

/* Runs |cmd| and returns the ops_per_s of its line starting with |prefix|
 * (e.g. "verify cms-ecdsa-p256 cached "), or -1. */
static double bench_figure(const char *cmd, const char *const prefix[],
                           double out[], int n) {
  char line[512];
  FILE *p = popen(cmd, "r");
  int found = 0;

  if (!p) {
    return -1;
  }
  while (fgets(line, sizeof(line), p)) {
    for (int i = 0; i < n; i++) {
      size_t l = strlen(prefix[i]);
      const char *v;
      if (strncmp(line, prefix[i], l) == 0 &&
          (v = strstr(line, "ops_per_s=")) != NULL) {
        out[i] = atof(v + 10);
        found++;
      }
    }
  }
  pclose(p);
  return found == n ? 0 : -1;
}

static double bound(double sign, double vcms, double vraw, double jwt) {
  double cost;

  if (sign <= 0 || vcms <= 0 || vraw <= 0 || jwt <= 0) {
    return 0;
  }
  cost = 1 / sign + 0.5 / vcms + 0.5 / vraw + 2 / jwt;
  return 1 / cost;
}

/* ---- memory per pending sign-in ----------------------------------------- */

/* The fake Omantel MSSP: 100 REQUEST_OK to every MSS_Signature, 504
 * (outstanding) to every status query. Fills |b|; returns the HTTP status. */
static int fake_answer(const char *path, const char *body, size_t len,
                       gw_buf *b) {
  static long nsig;
  mss_signature_req sq;
  mss_status_req st;
  mss_fault f;

  if (strstr(path, "/MSS_SignaturePort") &&
      mss_soap_parse_signature_req(body, len, &sq, &f) == GW_OK) {
    mss_signature_resp resp;
    memset(&resp, 0, sizeof(resp));
    resp.major_version = 1;
    resp.minor_version = 1;
    resp.ap_info = sq.ap_info;
    resp.ap_info.ap_pwd[0] = '\0';
    snprintf(resp.mssp_info.id, sizeof(resp.mssp_info.id),
             "http://mssp.fake/omantel");
    snprintf(resp.mssp_trans_id, sizeof(resp.mssp_trans_id), "M%ld", ++nsig);
    snprintf(resp.msisdn, sizeof(resp.msisdn), "%s", sq.msisdn);
    resp.status.code = 100;
    snprintf(resp.status.message, sizeof(resp.status.message), "REQUEST_OK");
    return mss_soap_build_signature_resp(&resp, b) == GW_OK ? 200 : 500;
  }
  if (strstr(path, "/MSS_StatusQueryPort") &&
      mss_soap_parse_status_req(body, len, &st, &f) == GW_OK) {
    mss_status_resp resp;
    memset(&resp, 0, sizeof(resp));
    resp.major_version = 1;
    resp.minor_version = 1;
    resp.ap_info = st.ap_info;
    resp.ap_info.ap_pwd[0] = '\0';
    snprintf(resp.mssp_info.id, sizeof(resp.mssp_info.id),
             "http://mssp.fake/omantel");
    snprintf(resp.mssp_trans_id, sizeof(resp.mssp_trans_id), "%s",
             st.mssp_trans_id);
    snprintf(resp.msisdn, sizeof(resp.msisdn), "%s", st.msisdn);
    resp.status.code = 504; /* outstanding, forever */
    return mss_soap_build_status_resp(&resp, b) == GW_OK ? 200 : 500;
  }
  memset(&f, 0, sizeof(f));
  mss_fault_set(&f, 101, "not for this fake");
  mss_soap_build_fault(&f, b);
  return 500;
}

static void fake_request(struct evhttp_request *req, void *arg) {
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  struct evbuffer *out = evbuffer_new();
  size_t len = evbuffer_get_length(in);
  const char *body = (const char *)evbuffer_pullup(in, -1);
  gw_buf b;
  int status;

  (void)arg;
  gw_buf_init(&b, 1 << 20);
  status = fake_answer(evhttp_request_get_uri(req), body ? body : "", len, &b);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    MSS_SOAP_CONTENT_TYPE);
  if (out && b.data) {
    evbuffer_add(out, b.data, b.len);
  }
  evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", out);
  if (out) {
    evbuffer_free(out);
  }
  gw_buf_free(&b);
}

/* The fake MSSP (libevent's HTTP server: the adapter opens a fresh
 * connection for every MSS_Signature, 10,000 of them) in a child process,
 * so that its buffers do not count in this process's RSS. Returns its
 * port, or 0. */
static int start_fake(void) {
  int fds[2], port = 0;
  pid_t parent = getpid();

  if (pipe(fds) != 0) {
    return 0;
  }
  fake_pid = fork();
  if (fake_pid == 0) {
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    struct evhttp_bound_socket *bs;
    struct sockaddr_in a;
    socklen_t al = sizeof(a);

    close(fds[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent || !http ||
        !(bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0)) ||
        getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&a,
                    &al) != 0) {
      _exit(1);
    }
    evhttp_set_gencb(http, fake_request, NULL);
    evhttp_set_max_body_size(http, 1 << 20);
    port = ntohs(a.sin_port);
    if (write(fds[1], &port, sizeof(port)) != sizeof(port)) {
      _exit(1);
    }
    event_base_dispatch(base); /* until SIGTERM */
    _exit(0);
  }
  close(fds[1]);
  if (fake_pid < 0) {
    fake_pid = 0;
  } else if (read(fds[0], &port, sizeof(port)) != sizeof(port)) {
    port = 0;
  }
  close(fds[0]);
  return port;
}

/* |n| + 1 Omantel subscribers +96899210000... in a new store at |path|, each
 * with the certificate of the first bench SIM. */
static int fill_store(const char *path, int n) {
  char p0[PATH_MAX + 32], err[256];
  gw_store *src = NULL, *st = NULL;
  gw_store_sub *sub = calloc(1, sizeof(*sub));
  int rc = -1;

  snprintf(p0, sizeof(p0), "%s/mpkigw.db", dir);
  if (!sub || gw_store_open(&src, "sqlite", p0, 5000, err, sizeof(err)) ||
      gw_store_sub_get(src, "+96899200000", sub) != GW_OK ||
      gw_store_open(&st, "sqlite", path, 5000, err, sizeof(err)) != GW_OK) {
    fprintf(stderr, "ciba_bench: store: %s\n", err);
    goto out;
  }
  sub->behaviour[0] = '\0';
  for (int i = 0; i <= n; i++) {
    snprintf(sub->msisdn, sizeof(sub->msisdn), "+968992%05d", 10000 + i);
    snprintf(sub->civil_id, sizeof(sub->civil_id), "9%07d", i);
    if (gw_store_sub_put(st, sub) != GW_OK) {
      goto out;
    }
  }
  rc = 0;
out:
  gw_store_close(src);
  gw_store_close(st);
  free(sub);
  return rc;
}

static gw_txn_begin_result mem_begin(gw_txn_engine *e, struct event_base *base,
                                     int i, gw_txn_info *info) {
  char hint[32];
  gw_txn_start s;
  const char *why;

  snprintf(hint, sizeof(hint), "tel:+968992%05d", 10000 + i);
  memset(&s, 0, sizeof(s));
  s.client_id = CLIENT_ID;
  s.client_name = "Bench RP";
  s.login_hint = hint;
  s.scope = "openid";
  s.resource = "";
  s.acr = "mpki";
  s.lang = "en";
  s.ciba = 1;
  return gw_txn_begin(e, base, &s, info, &why);
}

static char mem_failure[300];

/* Runs |base| until every transaction of |ids| has left "created". Returns
 * how many are "sent". */
static int wait_sent(gw_txn_engine *e, struct event_base *base, char (*ids)[44],
                     int n, double deadline) {
  int sent = 0;

  while (now_s() < deadline) {
    struct timeval tv = {0, 50000};
    int created = 0;
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    sent = 0;
    for (int i = 0; i < n; i++) {
      gw_txn_info t;
      if (gw_txn_get_by_req(e, ids[i], &t) == GW_OK) {
        created += t.state == GW_TXN_CREATED;
        sent += t.state == GW_TXN_SENT;
        if (t.state != GW_TXN_CREATED && t.state != GW_TXN_SENT &&
            !mem_failure[0]) {
          snprintf(mem_failure, sizeof(mem_failure), "%s %s: %s",
                   gw_txn_state_name(t.state), gw_txn_failure_name(t.failure),
                   t.detail);
        }
      }
    }
    if (!created) {
      break;
    }
  }
  return sent;
}

static int pending_memory(int n) {
  char conf[PATH_MAX + 32], db[PATH_MAX + 32], url[96], err[512];
  gw_config *cfg = NULL;
  op_registry *ops = NULL;
  p11_pool *pool = NULL;
  gw_txn_engine *e = NULL;
  struct event_base *base = NULL;
  char(*ids)[44] = calloc((size_t)n + 1, sizeof(*ids));
  gw_txn_info info;
  long rss0, rss1;
  double t0, tfill, tbegin;
  int port, sent, rc = -1;

  snprintf(conf, sizeof(conf), "%s/gw.conf", dir);
  snprintf(db, sizeof(db), "%s/mem.db", dir);
  t0 = now_s();
  if (!ids || fill_store(db, n) != 0) {
    goto out;
  }
  tfill = now_s() - t0;
  port = start_fake();
  if (!port || gw_config_load(&cfg, conf, err, sizeof(err)) != GW_OK) {
    fprintf(stderr, "ciba_bench: fake MSSP or config: %s\n", err);
    goto out;
  }
  free(cfg->store_path);
  cfg->store_path = strdup(db);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/soap/services", port);
  free(cfg->op_omantel.url);
  cfg->op_omantel.url = strdup(url);
  cfg->op_omantel.poll_first_ms = 600000; /* idle while waiting */
  cfg->op_omantel.poll_interval_ms = 600000;
  cfg->op_omantel.timeout_s = 3600;
  /* 10,000 requests queue behind max_connections_per_host: no timeouts, no
   * breaker while they wait their turn */
  cfg->op_omantel.connect_timeout_ms = 60000;
  cfg->op_omantel.http_timeout_ms = 600000;
  cfg->op_omantel.breaker_failures = 0;
  cfg->oidc_ciba_expiry_s = 600;
  if (!cfg->store_path || !cfg->op_omantel.url ||
      op_registry_new(&ops, cfg, err, sizeof(err)) != GW_OK ||
      p11_pool_new(&pool, 1, 1000) != P11_OK ||
      gw_txn_engine_new(&e, cfg, ops, pool, err, sizeof(err)) != GW_OK ||
      !(base = event_base_new())) {
    fprintf(stderr, "ciba_bench: engine: %s\n", err);
    goto out;
  }
  /* warm-up: the loop's HTTP client, the store handle, the first pages */
  if (mem_begin(e, base, n, &info) != GW_TXN_BEGIN_OK) {
    fprintf(stderr, "ciba_bench: the first begin was refused\n");
    goto out;
  }
  memcpy(ids[n], info.auth_req_id, sizeof(ids[n]));
  if (wait_sent(e, base, ids + n, 1, now_s() + 10) != 1) {
    fprintf(stderr, "ciba_bench: the fake MSSP did not accept\n");
    goto out;
  }
  rss0 = rss_bytes();
  t0 = now_s();
  for (int i = 0; i < n; i++) {
    if (mem_begin(e, base, i, &info) != GW_TXN_BEGIN_OK) {
      fprintf(stderr, "ciba_bench: begin %d refused\n", i);
      goto out;
    }
    memcpy(ids[i], info.auth_req_id, sizeof(ids[i]));
  }
  tbegin = now_s() - t0;
  sent = wait_sent(e, base, ids, n, now_s() + 60);
  rss1 = rss_bytes();
  printf("ciba pending_memory bytes_per_signin=%.0f\n",
         (double)(rss1 - rss0) / n);
  printf("# pending_memory: %d sign-ins waiting (%d sent to the fake MSSP, "
         "%zu in the engine): VmRSS %.1f MB before, %.1f MB after, +%.1f "
         "MB; in-process engine, one loop, SQLite store (its page cache "
         "included); %d begins in %.2f s, all sent after %.2f s; %d "
         "subscribers written in %.1f s\n",
         n, sent, gw_txn_count(e), rss0 / 1048576.0, rss1 / 1048576.0,
         (double)(rss1 - rss0) / 1048576.0, n, tbegin, now_s() - t0, n + 1,
         tfill);
  fflush(stdout);
  if (sent != n) {
    printf("# pending_memory: %d did not wait: first %s\n", n - sent,
           mem_failure);
  }
  rc = sent == n ? 0 : -1;
out:
  p11_pool_del(pool);
  gw_txn_engine_del(e);
  if (base) {
    event_base_free(base);
  }
  op_registry_del(ops);
  gw_config_del(cfg);
  stop_child(&fake_pid);
  free(ids);
  return rc;
}

int main(void) {
  const char *bs = getenv("BUILD"), *ss = getenv("CIBA_BENCH_SECONDS"),
             *ns = getenv("CIBA_BENCH_SIMS"),
             *ps = getenv("CIBA_BENCH_PENDING");
  static const char *const vp[] = {
      "verify cms-ecdsa-p256 cached ", "verify ecdsa-p256 cached ",
      "verify cms-ecdsa-p256 cold ", "verify ecdsa-p256 cold "};
  static const char *const jp[] = {"jwt sign ES256 "};
  double seconds = ss ? atof(ss) : 5.0, dt, cg, cm, rate, eager, sign;
  double v[4] = {0}, jwt = 0, b, bcold;
  int nsims = ns ? atoi(ns) : 16, npending = ps ? atoi(ps) : 10000, rc = 0;
  char tmpl[] = "/tmp/ciba_bench.XXXXXX", cmd[PATH_MAX * 2 + 128];
  run r;

  if (seconds <= 0) {
    seconds = 5.0;
  }
  if (nsims < 1 || nsims > MAX_SIMS) {
    nsims = 16;
  }
  if (npending < 1 || npending > 10000) {
    npending = 10000;
  }
  if (!realpath(bs && bs[0] ? bs : "build", build)) {
    fprintf(stderr, "ciba_bench: no build directory\n");
    return 1;
  }
  if (!mkdtemp(tmpl) || !realpath(tmpl, dir)) {
    perror("ciba_bench: mkdtemp");
    return 1;
  }
  atexit(cleanup);
  signal(SIGPIPE, SIG_IGN);
  gw_log_open(NULL, GW_LOG_ERROR);
  mss_soap_init();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  op_http_global_init();
  if (setup_pki(nsims) != 0 || start_mocks() != 0 || write_gw_config() != 0 ||
      start_gateway() != 0) {
    fprintf(stderr, "ciba_bench: set-up failed\n");
    return 1;
  }

  /* 1. end to end */
  rc |= signins(nsims, seconds, 0, &r, &dt, &cg, &cm);
  rate = report_signins("signins", nsims, 0, &r, seconds, dt, cg, cm);
  rc |= signins(nsims, seconds, 1, &r, &dt, &cg, &cm);
  eager = report_signins("signins_eager", nsims, 1, &r, seconds, dt, cg, cm);
  stop_child(&gw_pid);

  /* 2. the crypto bound, same run */
  sign = raw_sign_rate(seconds > 2 ? 2 : seconds);
  snprintf(cmd, sizeof(cmd), "'%s/tests/bench/verify_bench' 1 2>/dev/null",
           build);
  if (bench_figure(cmd, vp, v, 4) != 0) {
    fprintf(stderr, "ciba_bench: no figures from %s\n", cmd);
    rc = -1;
  }
  snprintf(cmd, sizeof(cmd),
           "JOSE_BENCH_SECONDS=1 '%s/tests/bench/jose_bench' 2>/dev/null",
           build);
  if (bench_figure(cmd, jp, &jwt, 1) != 0) {
    fprintf(stderr, "ciba_bench: no figures from %s\n", cmd);
    rc = -1;
  }
  b = bound(sign, v[0], v[1], jwt);
  bcold = bound(sign, v[2], v[3], jwt);
  printf("ciba crypto_bound ops_per_s=%.0f\n", b);
  printf("# crypto per sign-in, one CPU: SoftHSM ECDSA P-256 sign %.0f/s "
         "(the SIM), verify with the chain, cached %.0f/s CMS (Omantel) and "
         "%.0f/s raw (Ooredoo), 2 x ES256 JWT sign %.0f/s; half the sign-ins "
         "at each operator\n",
         sign, v[0], v[1], jwt);
  printf("# with the chain checked cold (no cache: CMS %.0f/s, raw %.0f/s) "
         "the bound is %.0f/s; signins/crypto_bound %.3f, "
         "signins_eager/crypto_bound %.3f; the polite rate is set by the "
         "polling interval: about one sign-in per slot per second, %d/s "
         "(2 x %d slots, 1 s)\n",
         v[2], v[3], bcold, b > 0 ? rate / b : 0, b > 0 ? eager / b : 0,
         2 * nsims, nsims);
  fflush(stdout);

  /* 3. memory per pending sign-in */
  if (pending_memory(npending) != 0) {
    fprintf(stderr, "ciba_bench: the pending-memory measurement failed\n");
    rc = -1;
  }
  return rc != 0 || rate <= 0 || eager <= 0 || b <= 0;
}
