/* op_bench.c — signature round trips per second through the operator
 * adapters and the real mock MSSPs — Omantel (SOAP, status polling) and
 * Ooredoo (JSON, server-to-server notifications) — beside the raw SoftHSM
 * signing rate, same run.
 *
 * Makes a private PKI with $BUILD/mpkictl (its own SoftHSM tokens, CA and
 * registry under /tmp; var/ is not touched) with OP_BENCH_SIMS subscribers
 * (default 16) per operator whose behaviour is "approve:0" (the virtual
 * user approves at once: what remains is the MSSP's work, the SIM's
 * signature and the protocol), starts $BUILD/mssp-mock for each operator on
 * a free loopback port, and keeps one transaction per SIM running through
 * the adapter for OP_BENCH_SECONDS (default 3):
 *   omantel  MSS_Signature, MSS_StatusQuery every 10 ms until 500
 *            SIGNATURE; one round trip = submit to the PKCS#7 in hand;
 *   ooredoo  MSS_SignatureReq in asynchServerServer mode, the mock POSTs
 *            the final MSS_StatusResp over HTTPS (HMAC) to an in-process
 *            gateway server's POST /operators/ooredoo/notify, which hands it
 *            to the adapter's loop; one round trip = submit to the PKCS1
 *            signature in hand, no polling.
 * Then, in the same run, ECDSA P-256 signatures through p11_sign on a token
 * of its own, one thread (each mock's SIM signs one per round trip).
 * Prints
 *
 *   op omantel roundtrips ops_per_s=X
 *   op ooredoo roundtrips ops_per_s=Y
 *   p11 raw sign ops_per_s=Z
 *
 * and "# ..." lines with the details (latency, failures, settings).
 * Exit 1 when the set-up fails or a round trip fails. Run from the
 * repository root: BUILD=build build/tests/bench/op_bench */
#include <curl/curl.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "gw_app.h"
#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_operators.h"
#include "mss_soap.h"
#include "op_adapter.h"
#include "p11.h"
#include "support/t_demo.h"
#include "support/t_server.h"

#define AP_ID "http://mpkigw.bench/ap"
#define AP_PWD "bench-secret"
#define SECRET "bench-notification-secret-0123456789abcdef"
#define MAX_SIMS 64

enum { OM = 0, OO = 1 };
static const char *const op_names[] = {"omantel", "ooredoo"};
static const char *const op_prefix[] = {"+968992", "+968952"};

static char dir[PATH_MAX], build[PATH_MAX];
static char cert[PATH_MAX + 32], key[PATH_MAX + 32];
static pid_t mock_pid[2];
static int mock_port[2], gw_port;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The private PKI: |nsims| SIMs per operator that approve at once; the
 * gateway's AP at both; the notification URL and secret at Ooredoo; a TLS
 * certificate for the in-process gateway that the Ooredoo mock trusts. */
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

static void cleanup(void) {
  t_mock_stop(&mock_pid[OM]);
  t_mock_stop(&mock_pid[OO]);
  if (dir[0] && !getenv("KEEP_TMP")) {
    t_sh("rm -rf '%s'", dir);
  }
}

/* CPU seconds used so far by this process and by the mock (from
 * /proc/<pid>/stat: utime + stime in clock ticks). */
static double cpu_self(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double cpu_mock(pid_t pid) {
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

/* ---- the round trips
 * --------------------------------------------------------- */

typedef struct bench {
  op_adapter *a;
  op_http *http;
  double end;
  long done, failed, outstanding;
  double lat_sum, lat_max;
  double cpu_self, cpu_mock; /* during the measured phase */
  char first_failure[300];
} bench;

typedef struct slot {
  bench *b;
  char msisdn[16];
  unsigned char digest[32];
  double t0;
} slot;

static void start(slot *s);

static void on_result(void *arg, op_txn *t, const op_result *r) {
  slot *s = arg;
  bench *b = s->b;
  double lat;

  if (r->phase == OP_PHASE_ACCEPTED) {
    if (op_follow(t, on_result, s) != GW_OK) {
      b->failed++;
      op_cancel(t);
      b->outstanding--;
    }
    return;
  }
  b->outstanding--;
  if (r->outcome != OP_SIGNED || r->signature_len == 0) {
    if (!b->failed) {
      snprintf(b->first_failure, sizeof(b->first_failure), "%s: %s",
               op_outcome_name(r->outcome), r->detail);
    }
    b->failed++;
    return; /* this slot stops */
  }
  lat = now_s() - s->t0;
  b->done++;
  b->lat_sum += lat;
  if (lat > b->lat_max) {
    b->lat_max = lat;
  }
  if (now_s() < b->end) {
    start(s);
  }
}

static void start(slot *s) {
  op_sign_req rq;
  op_txn *t;

  for (int i = 0; i < 32; i++) {
    s->digest[i] = (unsigned char)rand();
  }
  rq.msisdn = s->msisdn;
  rq.digest = s->digest;
  rq.display_text = "Bench sign-in";
  rq.timeout_s = 0;
  s->t0 = now_s();
  if (op_submit(s->b->a, s->b->http, &rq, on_result, s, &t) == GW_OK) {
    s->b->outstanding++;
  } else {
    s->b->failed++;
  }
}

/* The in-process gateway that receives the Ooredoo notifications: the
 * port and certificate the mock was told. */
static void gw_tweak(gw_config *c) {
  c->listen_port = gw_port;
  free(c->tls_cert);
  free(c->tls_key);
  c->tls_cert = strdup(cert);
  c->tls_key = strdup(key);
}

static void set_op(gw_op_config *oc, int port, const char *path, int poll_first,
                   int poll_interval) {
  char url[128];

  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  free(oc->url);
  oc->url = strdup(url);
  oc->poll_first_ms = poll_first;
  oc->poll_interval_ms = poll_interval;
  oc->timeout_s = 30;
  oc->notify_overdue_ms = 10000; /* notifications only */
}

static double run_roundtrips(int op, int nsims, double seconds, int poll_first,
                             int poll_interval, bench *b) {
  char path[PATH_MAX + 32], err[512];
  struct event_base *base = NULL;
  gw_config *cfg = NULL;
  gw_app app;
  ts_server srv;
  int srv_up = 0;
  slot *slots = calloc((size_t)nsims, sizeof(*slots));
  double t0, dt = 0;

  memset(b, 0, sizeof(*b));
  memset(&app, 0, sizeof(app));
  snprintf(path, sizeof(path), "%s/mpkigw.conf", dir);
  if (!slots || gw_config_load(&cfg, path, err, sizeof(err)) != GW_OK) {
    fprintf(stderr, "op_bench: config: %s\n", err);
    goto out;
  }
  set_op(&cfg->op_omantel, mock_port[OM], "/soap/services", poll_first,
         poll_interval);
  set_op(&cfg->op_ooredoo, mock_port[OO], "/rest/service", poll_first,
         poll_interval);
  if (op_registry_new(&app.operators, cfg, err, sizeof(err)) != GW_OK) {
    fprintf(stderr, "op_bench: registry: %s\n", err);
    goto out;
  }
  app.cfg = cfg;
  base = event_base_new(); /* after the registry: notifications wake it */
  if (!base || op_registry_http_new(app.operators, base, &b->http) != GW_OK) {
    goto out;
  }
  if (op == OO) {
    if (ts_start_app(&srv, 1, gw_tweak, gw_operators_register, &app) != 0) {
      fprintf(stderr, "op_bench: the notification receiver did not start\n");
      goto out;
    }
    srv_up = 1;
  }
  b->a = op_registry_get(app.operators, op_names[op]);
  /* warm-up: one round trip per SIM (connections, SIM logins) */
  b->end = 0;
  for (int i = 0; i < nsims; i++) {
    slots[i].b = b;
    snprintf(slots[i].msisdn, sizeof(slots[i].msisdn), "%s%05d", op_prefix[op],
             i);
    start(&slots[i]);
  }
  while (b->outstanding > 0) {
    event_base_loop(base, EVLOOP_ONCE);
  }
  if (b->failed) {
    goto out;
  }
  b->done = 0;
  b->lat_sum = b->lat_max = 0;
  b->cpu_self = cpu_self();
  b->cpu_mock = cpu_mock(mock_pid[op]);
  t0 = now_s();
  b->end = t0 + seconds;
  for (int i = 0; i < nsims; i++) {
    start(&slots[i]);
  }
  while (b->outstanding > 0) {
    event_base_loop(base, EVLOOP_ONCE);
  }
  dt = now_s() - t0;
  b->cpu_self = cpu_self() - b->cpu_self;
  b->cpu_mock = cpu_mock(mock_pid[op]) - b->cpu_mock;
out:
  if (srv_up) {
    ts_stop(&srv);
  }
  op_http_del(b->http);
  b->http = NULL;
  op_registry_del(app.operators);
  gw_config_del(cfg);
  if (base) {
    event_base_free(base);
  }
  free(slots);
  return dt > 0 ? (double)b->done / dt : 0;
}

static void report(int op, double rt, double seconds, int nsims,
                   const bench *b) {
  printf("op %s roundtrips ops_per_s=%.0f\n", op_names[op], rt);
  printf("# %s: %ld round trips in %.1f s, %d SIMs (approve:0) in parallel, "
         "%s; latency mean %.1f ms, max %.1f ms; %ld failed%s%s\n",
         op_names[op], b->done, seconds, nsims,
         op == OM ? "status queries at +1 ms then every 10 ms"
                  : "final status by notification (HTTPS + HMAC), no polling",
         b->done ? 1e3 * b->lat_sum / (double)b->done : 0, 1e3 * b->lat_max,
         b->failed, b->failed ? ": " : "", b->first_failure);
  if (b->done) {
    printf("# %s CPU per round trip: adapter%s (this process) %.0f us, mock "
           "MSSP %.0f us; %ld CPUs\n",
           op_names[op], op == OO ? " + notification receiver" : "",
           1e6 * b->cpu_self / (double)b->done,
           1e6 * b->cpu_mock / (double)b->done, sysconf(_SC_NPROCESSORS_ONLN));
  }
  fflush(stdout);
}

/* ---- raw SoftHSM
 * ------------------------------------------------------------------ */

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
    fprintf(stderr, "op_bench: SoftHSM set-up failed\n");
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
  return rate;
}

int main(void) {
  const char *bs = getenv("BUILD"), *ss = getenv("OP_BENCH_SECONDS"),
             *ns = getenv("OP_BENCH_SIMS");
  double seconds = ss ? atof(ss) : 3.0, rt, rt2, raw;
  int nsims = ns ? atoi(ns) : 16;
  char tmpl[] = "/tmp/op_bench.XXXXXX";
  bench b, b2;
  long failed;
  int rc = 1;

  if (seconds <= 0) {
    seconds = 3.0;
  }
  if (nsims < 1 || nsims > MAX_SIMS) {
    nsims = 16;
  }
  if (!realpath(bs && bs[0] ? bs : "build", build)) {
    fprintf(stderr, "op_bench: no build directory\n");
    return 1;
  }
  if (!mkdtemp(tmpl) || !realpath(tmpl, dir)) {
    perror("op_bench: mkdtemp");
    return 1;
  }
  atexit(cleanup);
  signal(SIGPIPE, SIG_IGN);
  gw_log_open(NULL, GW_LOG_ERROR);
  mss_soap_init();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  srand((unsigned)getpid());
  if (setup_pki(nsims) != 0 || start_mocks() != 0) {
    fprintf(stderr, "op_bench: set-up failed\n");
    return 1;
  }
  rt = run_roundtrips(OM, nsims, seconds, 1, 10, &b);
  report(OM, rt, seconds, nsims, &b);
  failed = b.failed;
  rt2 = run_roundtrips(OO, nsims, seconds, 1, 10, &b2);
  report(OO, rt2, seconds, nsims, &b2);
  failed += b2.failed;
  fflush(stdout);
  raw = raw_sign_rate(seconds);
  printf("p11 raw sign ops_per_s=%.0f\n", raw);
  printf("# ECDSA P-256 through p11_sign on a SoftHSM token, 1 thread; each "
         "round trip above costs one such signature in the mock's SIM, plus "
         "the protocol: ratio omantel %.3f (SOAP, polling, CMS), ooredoo "
         "%.3f (JSON, notification, raw r||s); ooredoo/omantel %.2f\n",
         raw > 0 ? rt / raw : 0, raw > 0 ? rt2 / raw : 0,
         rt > 0 ? rt2 / rt : 0);
  rc = failed || rt <= 0 || rt2 <= 0 || raw <= 0;
  return rc;
}
