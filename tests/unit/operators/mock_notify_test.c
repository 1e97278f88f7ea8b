/* mock_notify_test.c — the Ooredoo mock's server-to-server notifications
 * (operators/mock_notify.c) with the real engine (mock_mssp.c, one SIM on a
 * private SoftHSM token, the others scripted) on its own event loop,
 * against a scripted receiver on 127.0.0.1: the X-MSS-Signature header
 * (format, HMAC recomputed here, a fresh t), the body (the final
 * MSS_StatusResp: status, AP_TransID, the PKCS1 signature, a fault's
 * message), the same body on every attempt, retries on connection refused,
 * a timeout and 503 with the backoff, no retry on 400, max_attempts, the
 * window, a 2xx without a valid acknowledgement, and dropping at
 * shutdown. The secret never reaches the log. Every wait is bounded. */
#include "harness.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "gw_err.h"
#include "gw_log.h"
#include "gw_pki.h"
#include "mock_mssp.h"
#include "mock_notify.h"
#include "mock_sim.h"
#include "mss.h"
#include "mss_json.h"
#include "p11.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define PIN "1234"
#define PUK "12345678"
#define AP_ID "http://ap.test/notified"
#define AP_PWD "ap-password"
#define SECRET "0123456789abcdef-notify-secret-0123456789"
#define SIGNER "+96895000001"
#define REFUSER "+96895000002"
#define SIM_ERROR "+96895000003"

static char dir[64], log_path[128];
static p11_module *mod;
static EVP_PKEY *ca_key;
static X509 *ca_cert;
static char *cert_pem;
static mock_sims *sims;
static struct event_base *base;
static int ap_seq;

/* ---- the scripted receiver ---------------------------------------------- */

typedef enum rx_action {
  RX_ACK = 0,   /* 200 and an MSS_ReceiptReq for the MSSP_TransID */
  RX_ACK_OTHER, /* 200 and an MSS_ReceiptReq for another MSSP_TransID */
  RX_NOACK,     /* 200 "{}" */
  RX_503,       /* 503 */
  RX_400,       /* 400 */
  RX_SLOW_ACK,  /* RX_ACK after 400 ms */
  RX_HANG       /* never answers (until rx_stop) */
} rx_action;

#define RX_MAX 32

typedef struct rx_req {
  char path[64];
  char sig[256];
  char ctype[128];
  char *body;
  size_t len;
  long long wall_s; /* when it arrived (Unix seconds) */
  double at_ms;     /* monotonic */
} rx_req;

typedef struct rx_server {
  int lfd, port;
  atomic_int stop;
  pthread_t accept_thread;
  pthread_t threads[RX_MAX];
  int fds[RX_MAX];
  int nthreads;
  pthread_mutex_t mu;
  rx_action script[RX_MAX]; /* by request index; beyond: the last */
  int nscript;
  rx_req reqs[RX_MAX];
  atomic_int nreqs;
} rx_server;

static rx_server rx;

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The value of header |name| ("x-mss-signature:") in |head|. */
static void header_value(const char *head, const char *name, char *out,
                         size_t cap) {
  const char *p = head;
  size_t nl = strlen(name);

  out[0] = '\0';
  while ((p = strstr(p, "\r\n")) != NULL) {
    p += 2;
    if (strncasecmp(p, name, nl) == 0) {
      const char *v = p + nl, *e;
      v += strspn(v, " \t");
      e = strstr(v, "\r\n");
      if (e) {
        snprintf(out, cap, "%.*s", (int)(e - v), v);
      }
      return;
    }
  }
}

static void rx_send(int fd, int status, const char *body) {
  char head[256];
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                   status, strlen(body));

  if (send(fd, head, (size_t)n, MSG_NOSIGNAL) == n) {
    send(fd, body, strlen(body), MSG_NOSIGNAL);
  }
}

/* An acknowledgement naming |tid|. */
static char *ack_json(const char *tid) {
  mss_receipt_req rr;
  gw_buf b;

  memset(&rr, 0, sizeof(rr));
  snprintf(rr.ap_info.ap_id, sizeof(rr.ap_info.ap_id), "%s", AP_ID);
  snprintf(rr.ap_info.ap_trans_id, sizeof(rr.ap_info.ap_trans_id), "K1");
  snprintf(rr.ap_info.instant, sizeof(rr.ap_info.instant),
           "2026-01-31T12:00:00Z");
  snprintf(rr.mssp_trans_id, sizeof(rr.mssp_trans_id), "%s", tid);
  snprintf(rr.msisdn, sizeof(rr.msisdn), "%s", SIGNER);
  gw_buf_init(&b, 65536);
  if (mss_json_build_receipt_req(&rr, &b) != GW_OK) {
    gw_buf_free(&b);
    return NULL;
  }
  return b.data;
}

static int rx_sleep(int ms) {
  double end = now_ms() + ms;

  while (!atomic_load(&rx.stop) && now_ms() < end) {
    usleep(5000);
  }
  return !atomic_load(&rx.stop);
}

static void *rx_conn(void *arg) {
  int fd = (int)(long)arg;
  char *buf = malloc(MSS_JSON_MAX_INPUT + 8192);
  size_t len = 0, cap = MSS_JSON_MAX_INPUT + 8192, need = 0, hlen = 0;
  char cl[32], tid[MSS_MSSP_TRANSID_MAX + 1];
  rx_req *rq;
  rx_action act;
  int idx;

  if (!buf) {
    return NULL;
  }
  for (;;) { /* head and body, bounded by the stop flag */
    struct pollfd p = {fd, POLLIN, 0};
    char *end;
    ssize_t n;

    if (atomic_load(&rx.stop)) {
      goto out;
    }
    if (poll(&p, 1, 50) <= 0) {
      continue;
    }
    n = recv(fd, buf + len, cap - len - 1, 0);
    if (n <= 0) {
      goto out;
    }
    len += (size_t)n;
    buf[len] = '\0';
    end = strstr(buf, "\r\n\r\n");
    if (end && !hlen) {
      hlen = (size_t)(end - buf) + 4;
      buf[hlen - 2] = '\0';
      header_value(buf, "content-length:", cl, sizeof(cl));
      need = hlen + strtoul(cl, NULL, 10);
    }
    if (hlen && len >= need) {
      break;
    }
  }
  idx = atomic_fetch_add(&rx.nreqs, 1);
  if (idx >= RX_MAX) {
    goto out;
  }
  rq = &rx.reqs[idx];
  sscanf(buf, "%*s %63s", rq->path);
  header_value(buf, "x-mss-signature:", rq->sig, sizeof(rq->sig));
  header_value(buf, "content-type:", rq->ctype, sizeof(rq->ctype));
  rq->len = need - hlen;
  rq->body = malloc(rq->len + 1);
  if (rq->body) {
    memcpy(rq->body, buf + hlen, rq->len);
    rq->body[rq->len] = '\0';
  }
  rq->wall_s = (long long)time(NULL);
  rq->at_ms = now_ms();
  pthread_mutex_lock(&rx.mu);
  act = rx.nscript == 0    ? RX_ACK
        : idx < rx.nscript ? rx.script[idx]
                           : rx.script[rx.nscript - 1];
  pthread_mutex_unlock(&rx.mu);
  /* The MSSP_TransID the body names, for the acknowledgement. */
  tid[0] = '\0';
  {
    mss_status_resp *sr = malloc(sizeof(*sr));
    if (sr && rq->body &&
        mss_json_parse_status_resp(rq->body, rq->len, sr, NULL) == GW_OK) {
      snprintf(tid, sizeof(tid), "%s", sr->mssp_trans_id);
    }
    free(sr);
  }
  switch (act) {
  case RX_SLOW_ACK:
    if (!rx_sleep(400)) {
      break;
    }
    /* fall through */
  case RX_ACK:
  case RX_ACK_OTHER: {
    char *ack = ack_json(act == RX_ACK_OTHER ? "Tsomethingelse" : tid);
    rx_send(fd, 200, ack ? ack : "{}");
    free(ack);
    break;
  }
  case RX_NOACK:
    rx_send(fd, 200, "{}");
    break;
  case RX_503:
    rx_send(fd, 503, "{\"error\":\"busy\"}");
    break;
  case RX_400:
    rx_send(fd, 400, "{\"error\":\"no\"}");
    break;
  case RX_HANG:
    while (rx_sleep(50)) {
    }
    break;
  }
out:
  free(buf);
  shutdown(fd, SHUT_RDWR);
  return NULL;
}

static void *rx_accept(void *arg) {
  (void)arg;
  while (!atomic_load(&rx.stop)) {
    struct pollfd p = {rx.lfd, POLLIN, 0};
    int fd;

    if (poll(&p, 1, 50) <= 0) {
      continue;
    }
    fd = accept(rx.lfd, NULL, NULL);
    if (fd < 0) {
      continue;
    }
    pthread_mutex_lock(&rx.mu);
    if (rx.nthreads == RX_MAX ||
        pthread_create(&rx.threads[rx.nthreads], NULL, rx_conn,
                       (void *)(long)fd) != 0) {
      close(fd);
    } else {
      rx.fds[rx.nthreads++] = fd;
    }
    pthread_mutex_unlock(&rx.mu);
  }
  return NULL;
}

/* Starts the receiver with |n| scripted actions. */
static int rx_start(const rx_action *script, int n) {
  struct sockaddr_in a;
  socklen_t al = sizeof(a);

  memset(&rx, 0, sizeof(rx));
  pthread_mutex_init(&rx.mu, NULL);
  for (int i = 0; i < n && i < RX_MAX; i++) {
    rx.script[i] = script[i];
  }
  rx.nscript = n;
  rx.lfd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (rx.lfd < 0 || bind(rx.lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(rx.lfd, 64) != 0 ||
      getsockname(rx.lfd, (struct sockaddr *)&a, &al) != 0) {
    return -1;
  }
  rx.port = ntohs(a.sin_port);
  return pthread_create(&rx.accept_thread, NULL, rx_accept, NULL) == 0 ? 0 : -1;
}

static void rx_stop(void) {
  atomic_store(&rx.stop, 1);
  pthread_join(rx.accept_thread, NULL);
  close(rx.lfd);
  for (int i = 0; i < rx.nthreads; i++) {
    pthread_join(rx.threads[i], NULL);
    close(rx.fds[i]);
  }
  for (int i = 0; i < RX_MAX; i++) {
    free(rx.reqs[i].body);
  }
  pthread_mutex_destroy(&rx.mu);
}

/* A port where nothing listens. */
static int dead_port(void) {
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

/* ---- set-up ---------------------------------------------------------------
 */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* One SIM token with its key and a certificate from the test CA. */
static int make_signer(void) {
  static const uint8_t id[] = {0x01};
  gw_pki_holder h = {
      .msisdn = SIGNER, .civil_id = "10000011", .name = "Test Subscriber"};
  p11_token *t;
  p11_key *k;
  EVP_PKEY *pub = NULL;
  X509 *cert = NULL;
  BIO *b;
  char *p;
  long n;

  if (p11_token_init(mod, SIGNER, PUK, PIN, &t) != P11_OK ||
      p11_keygen(t, PIN, P11_KEY_EC_P256, MOCK_SIM_KEY_LABEL, id, sizeof(id)) !=
          P11_OK ||
      p11_key_find(t, PIN, MOCK_SIM_KEY_LABEL, &k) != P11_OK) {
    return -1;
  }
  if (p11_key_public(k, &pub) != P11_OK) {
    p11_key_del(k);
    return -1;
  }
  p11_key_del(k);
  if (gw_pki_make_sim_cert(ca_cert, ca_key, pub, &h, NULL, 30, &cert) !=
      GW_OK) {
    EVP_PKEY_free(pub);
    return -1;
  }
  EVP_PKEY_free(pub);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, cert);
  n = BIO_get_mem_data(b, &p);
  cert_pem = strndup(p, (size_t)n);
  BIO_free(b);
  X509_free(cert);
  return cert_pem ? 0 : -1;
}

static int setup(void) {
  char path[160], err[256];
  FILE *f;

  snprintf(dir, sizeof(dir), "/tmp/mocknotifytest.XXXXXX");
  if (!mkdtemp(dir)) {
    return -1;
  }
  snprintf(path, sizeof(path), "%s/tokens", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
  f = fopen(path, "w");
  if (!f) {
    return -1;
  }
  fprintf(f,
          "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
          "log.level = ERROR\nslots.removable = false\n",
          dir);
  fclose(f);
  setenv("SOFTHSM2_CONF", path, 1);
  snprintf(log_path, sizeof(log_path), "%s/test.log", dir);
  if (gw_log_open(log_path, GW_LOG_DEBUG) != GW_OK) {
    return -1;
  }
  if (p11_module_new(&mod, MODULE) != P11_OK) {
    return -1;
  }
  ca_key = EVP_EC_gen("P-256");
  if (!ca_key || gw_pki_make_root(ca_key, 30, &ca_cert) != GW_OK ||
      make_signer() != 0) {
    return -1;
  }
  snprintf(path, sizeof(path), "%s/state", dir);
  if (mock_sims_new(&sims, mod, path, err, sizeof(err)) != GW_OK) {
    return -1;
  }
  evthread_use_pthreads();
  base = event_base_new();
  return base ? 0 : -1;
}

static void teardown(void) {
  if (base) {
    event_base_free(base);
  }
  mock_sims_del(sims);
  free(cert_pem);
  X509_free(ca_cert);
  EVP_PKEY_free(ca_key);
  p11_module_del(mod);
  gw_log_close();
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the engine and the notifier ------------------------------------------
 */

typedef struct fixture {
  mock_mssp *e;
  mock_notify *n;
  mock_ap aps[2];
} fixture;

static fixture fx;

static void on_end(void *arg, const mock_tx_info *tx) {
  fixture *f = arg;

  mock_notify_tx_end(f->n, f->e, tx);
}

/* An engine whose AP is notified at |url| (NULL: a dead port), and a
 * notifier with the given limits. */
static int fixture_new(const char *url, int max_attempts, int first_retry_ms,
                       int window_s, int timeout_ms) {
  mock_mssp_config c;
  mock_notify_config nc;
  char err[256];

  memset(&fx, 0, sizeof(fx));
  snprintf(fx.aps[0].ap_id, sizeof(fx.aps[0].ap_id), "%s", AP_ID);
  snprintf(fx.aps[0].ap_pwd, sizeof(fx.aps[0].ap_pwd), "%s", AP_PWD);
  if (url) {
    snprintf(fx.aps[0].notify_url, sizeof(fx.aps[0].notify_url), "%s", url);
  } else {
    snprintf(fx.aps[0].notify_url, sizeof(fx.aps[0].notify_url),
             "http://127.0.0.1:%d/notify", dead_port());
  }
  snprintf(fx.aps[0].notify_secret, sizeof(fx.aps[0].notify_secret), "%s",
           SECRET);
  snprintf(fx.aps[1].ap_id, sizeof(fx.aps[1].ap_id), "http://ap.test/plain");
  snprintf(fx.aps[1].ap_pwd, sizeof(fx.aps[1].ap_pwd), "plain");

  memset(&nc, 0, sizeof(nc));
  nc.aps = fx.aps;
  nc.naps = 2;
  nc.max_attempts = max_attempts;
  nc.first_retry_ms = first_retry_ms;
  nc.window_s = window_s;
  nc.timeout_ms = timeout_ms;
  if (mock_notify_new(&fx.n, &nc, err, sizeof(err)) != GW_OK) {
    printf("#   mock_notify_new: %s\n", err);
    return -1;
  }
  mock_mssp_config_init(&c);
  c.operator_name = "ooredoo";
  c.mssp_id = "http://mssp.test/ooredoo";
  c.default_format = MSS_FORMAT_PKCS1;
  c.allow_server_server = 1;
  c.aps = fx.aps;
  c.naps = 2;
  c.sims = sims;
  c.on_end = on_end;
  c.hook_arg = &fx;
  if (mock_mssp_new(&fx.e, &c, err, sizeof(err)) != GW_OK) {
    printf("#   mock_mssp_new: %s\n", err);
    return -1;
  }
  if (mock_mssp_add_subscriber(fx.e, SIGNER, "approve:0", cert_pem,
                               strlen(cert_pem)) != GW_OK ||
      mock_mssp_add_subscriber(fx.e, REFUSER, "refuse:0", NULL, 0) != GW_OK ||
      mock_mssp_add_subscriber(fx.e, SIM_ERROR, "sim_error:0", NULL, 0) !=
          GW_OK ||
      mock_mssp_bind(fx.e, base) != GW_OK) {
    return -1;
  }
  return 0;
}

static void fixture_del(void) {
  mock_mssp_del(fx.e);
  mock_notify_del(fx.n);
  memset(&fx, 0, sizeof(fx));
}

/* Starts a transaction; returns the answer code, the MSSP_TransID in |id|,
 * the AP_TransID in |tid|. */
static int start(const char *msisdn, mss_mode mode, const char *ap_id,
                 const char *ap_pwd, char *id, char *tid) {
  static mss_signature_req rq;
  static mss_signature_resp rs;
  static const char text[] = "Sign in to the licensing portal: 0421";
  mss_fault f;
  int code;

  memset(&rq, 0, sizeof(rq));
  rq.major_version = 1;
  rq.minor_version = 2;
  snprintf(rq.ap_info.ap_id, sizeof(rq.ap_info.ap_id), "%s", ap_id);
  snprintf(rq.ap_info.ap_pwd, sizeof(rq.ap_info.ap_pwd), "%s", ap_pwd);
  snprintf(rq.ap_info.ap_trans_id, sizeof(rq.ap_info.ap_trans_id), "N%d",
           ++ap_seq);
  snprintf(rq.ap_info.instant, sizeof(rq.ap_info.instant),
           "2026-01-31T12:00:00Z");
  snprintf(rq.msisdn, sizeof(rq.msisdn), "%s", msisdn);
  mss_data_set(&rq.data_to_be_signed, "text/plain", "UTF-8", text,
               strlen(text));
  rq.messaging_mode = mode;
  code = mock_mssp_signature(fx.e, &rq, &rs, &f);
  snprintf(id, MSS_MSSP_TRANSID_MAX + 1, "%s",
           code == MSS_REQUEST_OK ? rs.mssp_trans_id : "");
  if (tid) {
    snprintf(tid, MSS_TRANSID_MAX + 1, "%s", rq.ap_info.ap_trans_id);
  }
  return code;
}

/* The loop runs until the notifier has nothing pending and at least
 * |min_attempts| attempts were made, or |max_ms| passed. The time of each
 * attempt seen (by the stats, in 2 ms ticks) goes to |times| (may be NULL,
 * |cap| entries). Returns the stats. */
typedef struct pump_ctx {
  double *times;
  int cap, seen, min_attempts;
  double deadline;
} pump_ctx;

static void tick_cb(evutil_socket_t fd, short what, void *arg) {
  pump_ctx *p = arg;
  mock_notify_stats st;

  (void)fd;
  (void)what;
  mock_notify_get_stats(fx.n, &st);
  while (p->seen < (int)st.attempts) {
    if (p->times && p->seen < p->cap) {
      p->times[p->seen] = now_ms();
    }
    p->seen++;
  }
  if ((st.pending == 0 && st.queued > 0 &&
       (int)st.attempts >= p->min_attempts) ||
      now_ms() >= p->deadline) {
    event_base_loopbreak(base);
  }
}

static mock_notify_stats run(int min_attempts, int max_ms, double *times,
                             int cap) {
  pump_ctx p = {times, cap, 0, min_attempts, now_ms() + max_ms};
  struct timeval tv = {0, 2000};
  struct event *ev = event_new(base, -1, EV_PERSIST, tick_cb, &p);
  mock_notify_stats st;

  event_add(ev, &tv);
  event_base_dispatch(base);
  event_free(ev);
  mock_notify_get_stats(fx.n, &st);
  return st;
}

/* Runs the loop for |ms| (lets retries that should not come, come). */
static void idle(int ms) {
  run(1 << 30, ms, NULL, 0);
}

/* Checks request |i|'s X-MSS-Signature: "t=<digits>,v1=<64 hex>", the
 * HMAC-SHA256 of "<t>.<body>" under SECRET, t within a second of its
 * arrival. */
static int sig_ok(int i) {
  const rx_req *r = &rx.reqs[i];
  unsigned char mac[32];
  unsigned int maclen = 0;
  char hex[65], *data;
  long long t = 0;
  const char *v1;
  size_t n;
  int ok;

  if (strncmp(r->sig, "t=", 2) != 0 || !strstr(r->sig, ",v1=")) {
    printf("#   request %d: X-MSS-Signature \"%s\"\n", i, r->sig);
    return 0;
  }
  for (const char *p = r->sig + 2; *p != ','; p++) {
    if (*p < '0' || *p > '9') {
      return 0;
    }
    t = t * 10 + (*p - '0');
  }
  v1 = strstr(r->sig, ",v1=") + 4;
  if (strlen(v1) != 64 || strspn(v1, "0123456789abcdef") != 64) {
    return 0;
  }
  n = (size_t)snprintf(NULL, 0, "%lld.", t) + r->len;
  data = malloc(n + 1);
  if (!data) {
    return 0;
  }
  snprintf(data, n + 1, "%lld.", t);
  memcpy(data + n - r->len, r->body, r->len);
  HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)data, n, mac,
       &maclen);
  free(data);
  for (int k = 0; k < 32; k++) {
    snprintf(hex + 2 * k, 3, "%02x", mac[k]);
  }
  ok = maclen == 32 && strcmp(hex, v1) == 0 && llabs(t - r->wall_s) <= 1;
  if (!ok) {
    printf("#   request %d: HMAC or t wrong (t=%lld, arrived %lld)\n", i, t,
           r->wall_s);
  }
  return ok;
}

static char url_buf[128];

static const char *rx_url(const char *path) {
  snprintf(url_buf, sizeof(url_buf), "http://127.0.0.1:%d%s", rx.port, path);
  return url_buf;
}

/* ---- tests ----------------------------------------------------------------
 */

static mss_status_resp sresp;

static void test_config_errors(void) {
  mock_notify_config nc;
  mock_notify *n = NULL;
  mock_ap ap;
  char err[256];

  memset(&nc, 0, sizeof(nc));
  nc.max_attempts = 6;
  nc.first_retry_ms = 1000;
  nc.window_s = 600;
  nc.timeout_ms = 5000;
  T_EQ_INT(mock_notify_new(&n, &nc, err, sizeof(err)), GW_OK);
  mock_notify_del(n);
  mock_notify_del(NULL);
  n = NULL;
  nc.max_attempts = 21;
  T_EQ_INT(mock_notify_new(&n, &nc, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(strstr(err, "max_attempts") != NULL);
  nc.max_attempts = 6;
  nc.window_s = 0;
  T_EQ_INT(mock_notify_new(&n, &nc, err, sizeof(err)), GW_ERR_INVALID);
  nc.window_s = 600;
  memset(&ap, 0, sizeof(ap));
  snprintf(ap.ap_id, sizeof(ap.ap_id), "http://a");
  snprintf(ap.notify_url, sizeof(ap.notify_url), "http://127.0.0.1:1/n");
  nc.aps = &ap;
  nc.naps = 1;
  T_EQ_INT(mock_notify_new(&n, &nc, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(strstr(err, "notify_secret") != NULL);
  T_ASSERT(n == NULL);
}

/* The engine's side: the final status of an ended transaction. */
static void test_final_status(void) {
  char id[MSS_MSSP_TRANSID_MAX + 1], tid[MSS_TRANSID_MAX + 1];
  mss_fault f;

  if (fixture_new(NULL, 1, 10, 60, 1000) != 0) {
    T_ASSERT(0);
    fixture_del();
    return;
  }
  T_EQ_INT(mock_mssp_final_status(fx.e, "Tnope", &sresp, &f), GW_ERR_NOT_FOUND);
  /* asynchClientServer: no notification, but the final status is there. */
  T_EQ_INT(
      start(REFUSER, MSS_MODE_ASYNCH_CLIENT_SERVER, AP_ID, AP_PWD, id, tid),
      MSS_REQUEST_OK);
  T_EQ_INT(mock_mssp_final_status(fx.e, id, &sresp, &f),
           MSS_OUTSTANDING_TRANSACTION);
  T_EQ_STR(sresp.mssp_trans_id, id);
  idle(100);
  T_EQ_INT(mock_mssp_final_status(fx.e, id, &sresp, &f), MSS_USER_CANCEL);
  T_EQ_INT(sresp.status.code, MSS_USER_CANCEL);
  T_EQ_STR(sresp.status.message, "USER_CANCEL");
  T_EQ_INT(f.subcode, MSS_USER_CANCEL);
  T_EQ_STR(sresp.ap_info.ap_id, AP_ID);
  T_EQ_STR(sresp.ap_info.ap_trans_id, tid);
  T_EQ_STR(sresp.ap_info.ap_pwd, "");
  T_EQ_STR(sresp.msisdn, REFUSER);
  T_EQ_STR(sresp.mssp_info.id, "http://mssp.test/ooredoo");
  {
    mock_notify_stats st;
    mock_notify_get_stats(fx.n, &st);
    T_EQ_INT(st.queued, 0); /* not asynchServerServer */
  }
  /* An AP without a notify_url cannot use asynchServerServer. */
  T_EQ_INT(start(REFUSER, MSS_MODE_ASYNCH_SERVER_SERVER, "http://ap.test/plain",
                 "plain", id, NULL),
           MSS_WRONG_PARAM);
  fixture_del();
}

/* A signature, delivered at once: header, body, acknowledgement. */
static void test_delivered(void) {
  static const rx_action script[] = {RX_ACK};
  char id[MSS_MSSP_TRANSID_MAX + 1], tid[MSS_TRANSID_MAX + 1];
  mock_notify_stats st;
  mss_fault f;

  T_EQ_INT(rx_start(script, 1), 0);
  if (fixture_new(rx_url("/mss/notify"), 6, 50, 60, 2000) != 0) {
    T_ASSERT(0);
    goto out;
  }
  T_EQ_INT(start(SIGNER, MSS_MODE_ASYNCH_SERVER_SERVER, AP_ID, AP_PWD, id, tid),
           MSS_REQUEST_OK);
  st = run(1, 10000, NULL, 0);
  T_EQ_INT(st.queued, 1);
  T_EQ_INT(st.attempts, 1);
  T_EQ_INT(st.delivered, 1);
  T_EQ_INT(st.failed, 0);
  T_EQ_INT(st.pending, 0);
  T_EQ_INT(atomic_load(&rx.nreqs), 1);
  T_EQ_STR(rx.reqs[0].path, "/mss/notify");
  T_ASSERT(strncmp(rx.reqs[0].ctype, "application/json", 16) == 0);
  T_ASSERT(sig_ok(0));
  memset(&f, 0, sizeof(f));
  T_EQ_INT(mss_json_parse_status_resp(rx.reqs[0].body ? rx.reqs[0].body : "",
                                      rx.reqs[0].len, &sresp, &f),
           GW_OK);
  T_EQ_STR(sresp.mssp_trans_id, id);
  T_EQ_STR(sresp.ap_info.ap_id, AP_ID);
  T_EQ_STR(sresp.ap_info.ap_trans_id, tid);
  T_EQ_STR(sresp.ap_info.ap_pwd, "");
  T_EQ_STR(sresp.msisdn, SIGNER);
  T_EQ_STR(sresp.mssp_info.id, "http://mssp.test/ooredoo");
  T_EQ_INT(sresp.status.code, MSS_SIGNATURE);
  T_EQ_STR(sresp.status.message, "SIGNATURE");
  T_EQ_INT(sresp.minor_version, MSS_JSON_MINOR_VERSION);
  T_EQ_INT(sresp.signature.kind, MSS_SIG_PKCS1);
  T_EQ_INT(sresp.signature.len, 64);
  T_ASSERT(sresp.signature.cert_len > 100);
  /* The password is never in a notification. */
  T_ASSERT(!rx.reqs[0].body || strstr(rx.reqs[0].body, AP_PWD) == NULL);
out:
  fixture_del();
  rx_stop();
}

/* A fault: the status message carries the engine's detail. */
static void test_fault_message(void) {
  static const rx_action script[] = {RX_ACK};
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_notify_stats st;

  T_EQ_INT(rx_start(script, 1), 0);
  if (fixture_new(rx_url("/n"), 6, 50, 60, 2000) != 0) {
    T_ASSERT(0);
    goto out;
  }
  T_EQ_INT(
      start(SIM_ERROR, MSS_MODE_ASYNCH_SERVER_SERVER, AP_ID, AP_PWD, id, NULL),
      MSS_REQUEST_OK);
  st = run(1, 10000, NULL, 0);
  T_EQ_INT(st.delivered, 1);
  T_EQ_INT(atomic_load(&rx.nreqs), 1);
  T_EQ_INT(mss_json_parse_status_resp(rx.reqs[0].body ? rx.reqs[0].body : "",
                                      rx.reqs[0].len, &sresp, NULL),
           GW_OK);
  T_EQ_INT(sresp.status.code, MSS_INTERNAL_ERROR);
  T_EQ_STR(sresp.status.message, "INTERNAL_ERROR: 9003 SIM application error");
  T_EQ_INT(sresp.signature.kind, MSS_SIG_NONE);
  T_ASSERT(sig_ok(0));
out:
  fixture_del();
  rx_stop();
}

/* 503, 503, then the acknowledgement: three attempts, the same body, each
 * signed, first_retry_ms then 4 times longer between them. */
static void test_retry_503(void) {
  static const rx_action script[] = {RX_503, RX_503, RX_ACK};
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_notify_stats st;

  T_EQ_INT(rx_start(script, 3), 0);
  if (fixture_new(rx_url("/n"), 6, 60, 60, 2000) != 0) {
    T_ASSERT(0);
    goto out;
  }
  T_EQ_INT(
      start(REFUSER, MSS_MODE_ASYNCH_SERVER_SERVER, AP_ID, AP_PWD, id, NULL),
      MSS_REQUEST_OK);
  st = run(3, 10000, NULL, 0);
  T_EQ_INT(st.attempts, 3);
  T_EQ_INT(st.delivered, 1);
  T_EQ_INT(st.failed, 0);
  T_EQ_INT(atomic_load(&rx.nreqs), 3);
  if (atomic_load(&rx.nreqs) == 3) {
    for (int i = 0; i < 3; i++) {
      T_ASSERT(sig_ok(i));
      T_EQ_INT(rx.reqs[i].len, rx.reqs[0].len);
      T_ASSERT(rx.reqs[i].body && rx.reqs[0].body &&
               memcmp(rx.reqs[i].body, rx.reqs[0].body, rx.reqs[0].len) == 0);
    }
    /* 60 ms, then 240 ms (loopback answers in well under 10 ms). */
    T_ASSERT(rx.reqs[1].at_ms - rx.reqs[0].at_ms >= 55);
    T_ASSERT(rx.reqs[1].at_ms - rx.reqs[0].at_ms < 1000);
    T_ASSERT(rx.reqs[2].at_ms - rx.reqs[1].at_ms >= 235);
    T_ASSERT(rx.reqs[2].at_ms - rx.reqs[1].at_ms < 1500);
  }
out:
  fixture_del();
  rx_stop();
}

/* Nobody listens: connection refused is retried with the backoff until
 * max_attempts, then given up. */
static void test_refused_max_attempts(void) {
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_notify_stats st;
  double t[8] = {0};

  if (fixture_new(NULL, 3, 100, 60, 1000) != 0) {
    T_ASSERT(0);
    fixture_del();
    return;
  }
  T_EQ_INT(
      start(REFUSER, MSS_MODE_ASYNCH_SERVER_SERVER, AP_ID, AP_PWD, id, NULL),
      MSS_REQUEST_OK);
  st = run(3, 10000, t, 8);
  T_EQ_INT(st.attempts, 3);
  T_EQ_INT(st.delivered, 0);
  T_EQ_INT(st.failed, 1);
  T_EQ_INT(st.pending, 0);
  /* 100 ms, then 400 ms (the refusal itself is immediate on loopback; the
   * times are seen in 2 ms ticks, the first one late by the first
   * request's set-up). */
  T_ASSERT(t[1] - t[0] >= 80 && t[1] - t[0] < 1000);
  T_ASSERT(t[2] - t[1] >= 380 && t[2] - t[1] < 2000);
  if (t[1] - t[0] < 80 || t[2] - t[1] < 380) {
    printf("#   gaps %.1f ms, %.1f ms\n", t[1] - t[0], t[2] - t[1]);
  }
  idle(300);
  mock_notify_get_stats(fx.n, &st);
  T_EQ_INT(st.attempts, 3);
  fixture_del();
}

/* Always 503: exactly max_attempts POSTs. */
static void test_503_max_attempts(void) {
  static const rx_action script[] = {RX_503};
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_notify_stats st;

  T_EQ_INT(rx_start(script, 1), 0);
  if (fixture_new(rx_url("/n"), 4, 5, 60, 2000) != 0) {
    T_ASSERT(0);
    goto out;
  }
  T_EQ_INT(
      start(REFUSER, MSS_MODE_ASYNCH_SERVER_SERVER, AP_ID, AP_PWD, id, NULL),
      MSS_REQUEST_OK);
  st = run(4, 10000, NULL, 0); /* 5 + 20 + 80 ms of waits */
  idle(600);                   /* a fifth would come after 320 ms */
  mock_notify_get_stats(fx.n, &st);
  T_EQ_INT(st.attempts, 4);
  T_EQ_INT(st.failed, 1);
  T_EQ_INT(atomic_load(&rx.nreqs), 4);
out:
  fixture_del();
  rx_stop();
}

/* A timeout is retried like a network error. */
static void test_timeout_retried(void) {
  static const rx_action script[] = {RX_SLOW_ACK, RX_ACK};
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_notify_stats st;

  T_EQ_INT(rx_start(script, 2), 0);
  if (fixture_new(rx_url("/n"), 6, 20, 60, 150) != 0) {
    T_ASSERT(0);
    goto out;
  }
  T_EQ_INT(
      start(REFUSER, MSS_MODE_ASYNCH_SERVER_SERVER, AP_ID, AP_PWD, id, NULL),
      MSS_REQUEST_OK);
  st = run(2, 10000, NULL, 0);
  T_EQ_INT(st.attempts, 2);
  T_EQ_INT(st.delivered, 1);
  T_EQ_INT(atomic_load(&rx.nreqs), 2);
out:
  fixture_del();
  rx_stop();
}

/* 400: final at once, no retry. */
static void test_400_no_retry(void) {
  static const rx_action script[] = {RX_400, RX_ACK};
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_notify_stats st;

  T_EQ_INT(rx_start(script, 2), 0);
  if (fixture_new(rx_url("/n"), 6, 20, 60, 2000) != 0) {
    T_ASSERT(0);
    goto out;
  }
  T_EQ_INT(
      start(REFUSER, MSS_MODE_ASYNCH_SERVER_SERVER, AP_ID, AP_PWD, id, NULL),
      MSS_REQUEST_OK);
  st = run(1, 10000, NULL, 0);
  idle(300);
  mock_notify_get_stats(fx.n, &st);
  T_EQ_INT(st.attempts, 1);
  T_EQ_INT(st.failed, 1);
  T_EQ_INT(st.delivered, 0);
  T_EQ_INT(atomic_load(&rx.nreqs), 1);
out:
  fixture_del();
  rx_stop();
}

/* A 2xx is a delivery only with an MSS_ReceiptReq for this MSSP_TransID;
 * otherwise it is final (not retried). */
static void test_2xx_without_ack(void) {
  static const rx_action noack[] = {RX_NOACK, RX_ACK};
  static const rx_action other[] = {RX_ACK_OTHER, RX_ACK};
  const rx_action *scripts[] = {noack, other};
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_notify_stats st;

  for (int s = 0; s < 2; s++) {
    T_EQ_INT(rx_start(scripts[s], 2), 0);
    if (fixture_new(rx_url("/n"), 6, 20, 60, 2000) != 0) {
      T_ASSERT(0);
      fixture_del();
      rx_stop();
      return;
    }
    T_EQ_INT(
        start(REFUSER, MSS_MODE_ASYNCH_SERVER_SERVER, AP_ID, AP_PWD, id, NULL),
        MSS_REQUEST_OK);
    st = run(1, 10000, NULL, 0);
    idle(200);
    mock_notify_get_stats(fx.n, &st);
    T_EQ_INT(st.attempts, 1);
    T_EQ_INT(st.delivered, 0);
    T_EQ_INT(st.failed, 1);
    fixture_del();
    rx_stop();
  }
}

/* No attempt later than window_s after the end: 503s with a long backoff
 * stop before max_attempts. */
static void test_window(void) {
  static const rx_action script[] = {RX_503};
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_notify_stats st;
  double t0;

  T_EQ_INT(rx_start(script, 1), 0);
  /* Attempts at 0 and 300 ms; the next would be at 1.5 s, past 1 s. */
  if (fixture_new(rx_url("/n"), 6, 300, 1, 2000) != 0) {
    T_ASSERT(0);
    goto out;
  }
  t0 = now_ms();
  T_EQ_INT(
      start(REFUSER, MSS_MODE_ASYNCH_SERVER_SERVER, AP_ID, AP_PWD, id, NULL),
      MSS_REQUEST_OK);
  st = run(2, 10000, NULL, 0);
  T_EQ_INT(st.attempts, 2);
  T_EQ_INT(st.failed, 1);
  T_EQ_INT(st.pending, 0);
  T_ASSERT(now_ms() - t0 < 1000); /* given up at once, not at the end */
  T_EQ_INT(atomic_load(&rx.nreqs), 2);
out:
  fixture_del();
  rx_stop();
}

/* Shutdown with an attempt in flight and another waiting to retry: both
 * dropped (logged), nothing leaks. */
static void test_dropped_at_shutdown(void) {
  static const rx_action script[] = {RX_HANG};
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_notify_stats st;

  T_EQ_INT(rx_start(script, 1), 0);
  if (fixture_new(rx_url("/n"), 6, 20, 60, 5000) != 0) {
    T_ASSERT(0);
    goto out;
  }
  T_EQ_INT(
      start(REFUSER, MSS_MODE_ASYNCH_SERVER_SERVER, AP_ID, AP_PWD, id, NULL),
      MSS_REQUEST_OK);
  for (int i = 0; i < 200 && atomic_load(&rx.nreqs) < 1; i++) {
    idle(10);
  }
  mock_notify_get_stats(fx.n, &st);
  T_EQ_INT(st.pending, 1);
  T_EQ_INT(atomic_load(&rx.nreqs), 1);
out:
  fixture_del(); /* the HTTP exchange is cancelled */
  rx_stop();
}

/* The secret never reaches the log (run last: every test wrote to it). */
static void test_secret_not_logged(void) {
  FILE *f = fopen(log_path, "r");
  char line[4096];
  int lines = 0, found = 0, attempts = 0;

  T_ASSERT(f != NULL);
  if (!f) {
    return;
  }
  while (fgets(line, sizeof(line), f)) {
    lines++;
    found |= strstr(line, SECRET) != NULL || strstr(line, AP_PWD) != NULL;
    attempts += strstr(line, "msg=\"notification attempt\"") != NULL;
  }
  fclose(f);
  T_ASSERT(lines > 0);
  T_ASSERT(attempts >= 10); /* each attempt is logged */
  T_ASSERT(!found);
}

int main(void) {
  if (setup() != 0) {
    printf("not ok - setup (SoftHSM at %s, a writable /tmp)\n", MODULE);
    teardown();
    return 1;
  }
  T_RUN(test_config_errors);
  T_RUN(test_final_status);
  T_RUN(test_delivered);
  T_RUN(test_fault_message);
  T_RUN(test_retry_503);
  T_RUN(test_refused_max_attempts);
  T_RUN(test_503_max_attempts);
  T_RUN(test_timeout_retried);
  T_RUN(test_400_no_retry);
  T_RUN(test_2xx_without_ack);
  T_RUN(test_window);
  T_RUN(test_dropped_at_shutdown);
  T_RUN(test_secret_not_logged);
  teardown();
  return T_DONE();
}
