/* op_bench.c — signature round trips per second through the Omantel adapter
 * and the real mock MSSP, beside the raw SoftHSM signing rate, same run.
 *
 * Makes a private PKI with $BUILD/mpkictl (its own SoftHSM tokens, CA and
 * registry under /tmp; var/ is not touched) with OP_BENCH_SIMS subscribers
 * (default 16) whose behaviour is "approve:0" (the virtual user approves at
 * once: what remains is the MSSP's work, the SIM's signature and the
 * protocol), starts $BUILD/mssp-mock on a free loopback port, and keeps one
 * transaction per SIM running through the adapter (op_submit, op_follow:
 * MSS_Signature, MSS_StatusQuery every poll interval until 500 SIGNATURE)
 * for OP_BENCH_SECONDS (default 3). One round trip = submit to the PKCS#7 in
 * hand. Then, in the same run, ECDSA P-256 signatures through p11_sign on a
 * token of its own, one thread (the mock's SIM signs one per round trip).
 * Prints
 *
 *   op omantel roundtrips ops_per_s=X
 *   p11 raw sign ops_per_s=Y
 *
 * and "# ..." lines with the details (latency, failures, settings).
 * Exit 1 when the set-up fails or a round trip fails. Run from the
 * repository root: BUILD=build build/tests/bench/op_bench */
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

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "mss_soap.h"
#include "op_adapter.h"
#include "p11.h"

#define AP_ID "http://mpkigw.bench/ap"
#define AP_PWD "bench-secret"
#define MAX_SIMS 64

static char dir[PATH_MAX], build[PATH_MAX];
static pid_t mock_pid;
static int mock_port;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  int rc;

  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  rc = system(cmd);
  if (rc != 0) {
    fprintf(stderr, "op_bench: failed (%d): %.300s\n", rc, cmd);
  }
  return rc;
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) {
    return -1;
  }
  fputs(text, f);
  return fclose(f);
}

static int free_port(void) {
  struct sockaddr_in a;
  socklen_t al = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &al) == 0) {
    port = ntohs(a.sin_port);
  }
  if (fd >= 0) {
    close(fd);
  }
  return port;
}

static int setup_pki(int nsims) {
  char path[PATH_MAX + 64], text[PATH_MAX + 1024], *csv;
  size_t off = 0, cap = 64 + (size_t)nsims * 96;
  const char *cwd = getenv("PWD");

  snprintf(path, sizeof(path), "%s/tokens", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
  snprintf(text, sizeof(text),
           "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
           "log.level = ERROR\nslots.removable = false\n",
           dir);
  if (write_text(path, text) != 0) {
    return -1;
  }
  snprintf(path, sizeof(path), "%s/mpkigw.conf", dir);
  snprintf(text, sizeof(text),
           "tls: { certificate = \"none.pem\"; private_key = \"none.key\"; };\n"
           "log: { level = \"warn\"; };\n"
           "store: { path = \"mpkigw.db\"; };\n"
           "pkcs11: { softhsm_conf = \"softhsm2.conf\"; };\n"
           "pki: { dir = \"pki\"; crl = \"pki/crl.pem\"; };\n"
           "operators: {\n"
           "  numbering_plan = \"%s/configs/numbering-plan.conf\";\n"
           "  portability = \"\";\n"
           "  omantel: { ap_id = \"" AP_ID "\"; ap_pwd = \"" AP_PWD "\"; };\n"
           "};\n",
           cwd ? cwd : ".");
  if (write_text(path, text) != 0) {
    return -1;
  }
  csv = malloc(cap);
  if (!csv) {
    return -1;
  }
  off += (size_t)snprintf(csv, cap,
                          "msisdn,civil_id,name,operator,pin,puk,behaviour\n");
  for (int i = 0; i < nsims; i++) {
    off += (size_t)snprintf(csv + off, cap - off,
                            "+968992%05d,2%07d,Bench %d,omantel,,,approve:0\n",
                            i, i, i);
  }
  snprintf(path, sizeof(path), "%s/sims.csv", dir);
  if (write_text(path, csv) != 0) {
    free(csv);
    return -1;
  }
  free(csv);
  if (sh("cd '%s' && SOFTHSM2_CONF=/nonexistent timeout 120 '%s/mpkictl' "
         "--config mpkigw.conf ca init >ctl.log 2>&1",
         dir, build) != 0 ||
      sh("cd '%s' && SOFTHSM2_CONF=/nonexistent timeout 600 '%s/mpkictl' "
         "--config mpkigw.conf sim provision --csv sims.csv >>ctl.log 2>&1",
         dir, build) != 0) {
    sh("tail -n 5 '%s/ctl.log' >&2", dir);
    return -1;
  }
  return 0;
}

static int start_mock(void) {
  char conf[PATH_MAX + 32], logp[PATH_MAX + 32], exe[PATH_MAX + 32], text[2048],
      cmd[256];

  mock_port = free_port();
  snprintf(conf, sizeof(conf), "%s/mssp-mock.conf", dir);
  snprintf(text, sizeof(text),
           "gateway_config = \"mpkigw.conf\";\n"
           "gateway_ap = true;\n"
           "state_dir = \"mock-state\";\n"
           "omantel: { listen = \"127.0.0.1:%d\"; };\n"
           "transactions: { keep_done_s = 5; max_transactions = 1000000; };\n"
           "sims: { pool_threads = 2; };\n"
           "log: { level = \"warn\"; file = \"mock.log\"; access = false; };\n"
           "application_providers = ( { ap_id = \"http://demo_ap\"; ap_pwd "
           "= \"demo\"; } );\n",
           mock_port);
  if (write_text(conf, text) != 0) {
    return -1;
  }
  snprintf(logp, sizeof(logp), "%s/mock.out", dir);
  snprintf(exe, sizeof(exe), "%s/mssp-mock", build);
  mock_pid = fork();
  if (mock_pid == 0) {
    int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    setenv("SOFTHSM2_CONF", "/nonexistent", 1);
    execl(exe, exe, "--operator", "omantel", "--config", conf, (char *)NULL);
    _exit(127);
  }
  if (mock_pid < 0) {
    return -1;
  }
  snprintf(cmd, sizeof(cmd),
           "curl -s -o /dev/null -f --max-time 1 "
           "http://127.0.0.1:%d/healthz",
           mock_port);
  for (int i = 0; i < 200; i++) {
    int st;
    if (system(cmd) == 0) {
      return 0;
    }
    if (waitpid(mock_pid, &st, WNOHANG) == mock_pid) {
      mock_pid = 0;
      break;
    }
    usleep(50000);
  }
  sh("tail -n 5 '%s' >&2", logp);
  return -1;
}

static void cleanup(void) {
  if (mock_pid > 0) {
    int st;
    kill(mock_pid, SIGTERM);
    for (int i = 0; i < 150 && waitpid(mock_pid, &st, WNOHANG) == 0; i++) {
      usleep(20000);
    }
    if (waitpid(mock_pid, &st, WNOHANG) == 0) {
      kill(mock_pid, SIGKILL);
      waitpid(mock_pid, &st, 0);
    }
    mock_pid = 0;
  }
  if (dir[0] && !getenv("KEEP_TMP")) {
    sh("rm -rf '%s'", dir);
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

static double cpu_mock(void) {
  char path[64], buf[2048], *p;
  unsigned long ut = 0, st = 0;
  FILE *f;
  size_t n;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)mock_pid);
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
  op_adapter *om;
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
  if (op_submit(s->b->om, s->b->http, &rq, on_result, s, &t) == GW_OK) {
    s->b->outstanding++;
  } else {
    s->b->failed++;
  }
}

static double run_roundtrips(int nsims, double seconds, int poll_first,
                             int poll_interval, bench *b) {
  char path[PATH_MAX + 32], err[512], url[128];
  struct event_base *base = event_base_new();
  gw_config *cfg = NULL;
  op_registry *reg = NULL;
  slot *slots = calloc((size_t)nsims, sizeof(*slots));
  double t0, dt = 0;

  memset(b, 0, sizeof(*b));
  snprintf(path, sizeof(path), "%s/mpkigw.conf", dir);
  if (!base || !slots ||
      gw_config_load(&cfg, path, err, sizeof(err)) != GW_OK) {
    fprintf(stderr, "op_bench: config: %s\n", err);
    goto out;
  }
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/soap/services", mock_port);
  free(cfg->op_omantel_url);
  cfg->op_omantel_url = strdup(url);
  cfg->op_omantel_poll_first_ms = poll_first;
  cfg->op_omantel_poll_interval_ms = poll_interval;
  cfg->op_omantel_timeout_s = 30;
  if (op_registry_new(&reg, cfg, err, sizeof(err)) != GW_OK ||
      op_registry_http_new(reg, base, &b->http) != GW_OK) {
    fprintf(stderr, "op_bench: registry: %s\n", err);
    goto out;
  }
  b->om = op_registry_get(reg, "omantel");
  /* warm-up: one round trip per SIM (connections, SIM logins) */
  b->end = 0;
  for (int i = 0; i < nsims; i++) {
    slots[i].b = b;
    snprintf(slots[i].msisdn, sizeof(slots[i].msisdn), "+968992%05d", i);
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
  b->cpu_mock = cpu_mock();
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
  b->cpu_mock = cpu_mock() - b->cpu_mock;
out:
  op_http_del(b->http);
  b->http = NULL;
  op_registry_del(reg);
  gw_config_del(cfg);
  if (base) {
    event_base_free(base);
  }
  free(slots);
  return dt > 0 ? (double)b->done / dt : 0;
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
  if (write_text(conf, text) != 0) {
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
  double seconds = ss ? atof(ss) : 3.0, rt, raw;
  int nsims = ns ? atoi(ns) : 16;
  char tmpl[] = "/tmp/op_bench.XXXXXX";
  bench b;
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
  srand((unsigned)getpid());
  if (setup_pki(nsims) != 0 || start_mock() != 0) {
    fprintf(stderr, "op_bench: set-up failed\n");
    return 1;
  }
  rt = run_roundtrips(nsims, seconds, 1, 10, &b);
  printf("op omantel roundtrips ops_per_s=%.0f\n", rt);
  printf("# %ld round trips in %.1f s, %d SIMs (approve:0) in parallel, "
         "status queries at +1 ms then every 10 ms; latency mean %.1f ms, "
         "max %.1f ms; %ld failed%s%s\n",
         b.done, seconds, nsims, b.done ? 1e3 * b.lat_sum / (double)b.done : 0,
         1e3 * b.lat_max, b.failed, b.failed ? ": " : "", b.first_failure);
  if (b.done) {
    printf("# CPU per round trip: adapter (this process) %.0f us, mock MSSP "
           "%.0f us; %ld CPUs\n",
           1e6 * b.cpu_self / (double)b.done, 1e6 * b.cpu_mock / (double)b.done,
           sysconf(_SC_NPROCESSORS_ONLN));
  }
  fflush(stdout);
  raw = raw_sign_rate(seconds);
  printf("p11 raw sign ops_per_s=%.0f\n", raw);
  printf("# ECDSA P-256 through p11_sign on a SoftHSM token, 1 thread; each "
         "round trip above costs one such signature in the mock's SIM, plus "
         "SOAP, HTTP and the CMS: ratio %.2f\n",
         raw > 0 ? rt / raw : 0);
  rc = b.failed || rt <= 0 || raw <= 0;
  return rc;
}
