/* mock_mssp_test.c — the mock MSSP transaction engine (operators/mock_mssp.c)
 * on its own event loop, without HTTP or SOAP: real SIM tokens on a private
 * SoftHSM, a test CA, the structs of mss.h in and out. Each behaviour, the
 * AP checks, replay, 406, 107, TimeOut, receipts, synch waiting, the
 * virtual-handset hook, the SIM operations of the control endpoint, expiry,
 * the registry and the hooks. Signatures are checked with the gateway's
 * verifier. Every wait is bounded (pump() with a deadline). */
#include "harness.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "gw_err.h"
#include "gw_log.h"
#include "gw_pki.h"
#include "gw_store.h"
#include "gw_verify.h"
#include "mock_mssp.h"
#include "mock_sim.h"
#include "mss.h"
#include "p11.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define PIN "1234"
#define PUK "12345678"
#define AP_ID "http://demo_ap"
#define AP_PWD "demo"
#define NSIMS 6

static const char *sim_msisdn[NSIMS] = {"+96899000001", "+96899000002",
                                        "+96899000003", "+96899000004",
                                        "+96899000005", "+96899000006"};
static char dir[64], state_dir[128], roots_path[128];
static p11_module *mod;
static EVP_PKEY *ca_key;
static X509 *ca_cert;
static char *cert_pem[NSIMS];
static gw_verify *verifier;
static mock_sims *sims;
static struct event_base *base;
static int ap_seq;

/* ---- set-up ------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int make_sim(int i) {
  static const uint8_t id[] = {0x01};
  p11_token *t;
  p11_key *k;
  EVP_PKEY *pub = NULL;
  X509 *cert = NULL;
  BIO *b;
  char *p;
  long n;
  gw_pki_holder h = {.msisdn = sim_msisdn[i],
                     .civil_id = "10000001",
                     .name = "Test Subscriber"};

  if (p11_token_init(mod, sim_msisdn[i], PUK, PIN, &t) != P11_OK ||
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
  cert_pem[i] = strndup(p, (size_t)n);
  BIO_free(b);
  X509_free(cert);
  return cert_pem[i] ? 0 : -1;
}

static int setup(void) {
  char path[160], err[256];
  FILE *f;
  gw_verify_config vc;

  snprintf(dir, sizeof(dir), "/tmp/mockmssptest.XXXXXX");
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
  if (p11_module_new(&mod, MODULE) != P11_OK) {
    return -1;
  }
  ca_key = EVP_EC_gen("P-256");
  if (!ca_key || gw_pki_make_root(ca_key, 30, &ca_cert) != GW_OK) {
    return -1;
  }
  snprintf(roots_path, sizeof(roots_path), "%s/root.pem", dir);
  f = fopen(roots_path, "w");
  if (!f || PEM_write_X509(f, ca_cert) != 1) {
    return -1;
  }
  fclose(f);
  for (int i = 0; i < NSIMS; i++) {
    if (make_sim(i) != 0) {
      return -1;
    }
  }
  gw_verify_config_init(&vc);
  vc.roots_file = roots_path;
  vc.cache_size = 0;
  if (gw_verify_new(&verifier, &vc, err, sizeof(err)) != GW_OK) {
    return -1;
  }
  snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
  if (mock_sims_new(&sims, mod, state_dir, err, sizeof(err)) != GW_OK) {
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
  gw_verify_del(verifier);
  for (int i = 0; i < NSIMS; i++) {
    free(cert_pem[i]);
  }
  X509_free(ca_cert);
  EVP_PKEY_free(ca_key);
  p11_module_del(mod);
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ------------------------------------------------------------ */

static const mock_ap test_aps[] = {
    {.ap_id = AP_ID, .ap_pwd = AP_PWD},
    {.ap_id = "http://other_ap", .ap_pwd = "other"},
};

/* Hooks: counted. */
static int ends_seen, changes_seen;
static char last_end_id[MSS_MSSP_TRANSID_MAX + 1];

static void on_end(void *arg, const mock_tx_info *t) {
  (void)arg;
  ends_seen++;
  snprintf(last_end_id, sizeof(last_end_id), "%s", t->mssp_trans_id);
}

static void on_change(void *arg, const char *msisdn) {
  (void)arg;
  (void)msisdn;
  changes_seen++;
}

/* An engine with the six test SIMs, behaviours as given (NULL = default). */
static mock_mssp *engine(const char *const behaviours[NSIMS],
                         void (*tweak)(mock_mssp_config *)) {
  mock_mssp_config c;
  mock_mssp *e = NULL;
  char err[256];

  mock_mssp_config_init(&c);
  c.aps = test_aps;
  c.naps = 2;
  c.sims = sims;
  c.default_behaviour = "approve:30";
  c.on_end = on_end;
  c.on_change = on_change;
  if (tweak) {
    tweak(&c);
  }
  if (mock_mssp_new(&e, &c, err, sizeof(err)) != GW_OK) {
    printf("#   mock_mssp_new: %s\n", err);
    return NULL;
  }
  for (int i = 0; i < NSIMS; i++) {
    if (mock_mssp_add_subscriber(e, sim_msisdn[i],
                                 behaviours ? behaviours[i] : NULL, cert_pem[i],
                                 strlen(cert_pem[i])) != GW_OK) {
      printf("#   add_subscriber %s failed\n", sim_msisdn[i]);
    }
  }
  if (mock_mssp_bind(e, base) != GW_OK) {
    mock_mssp_del(e);
    return NULL;
  }
  return e;
}

static void loopbreak_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  event_base_loopbreak(arg);
}

/* Runs the loop for |ms| milliseconds. */
static void pump(int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  struct event *ev = evtimer_new(base, loopbreak_cb, base);

  evtimer_add(ev, &tv);
  event_base_dispatch(base);
  event_free(ev);
}

static void sig_req(mss_signature_req *r, const char *msisdn,
                    const char *text) {
  memset(r, 0, sizeof(*r));
  r->major_version = 1;
  r->minor_version = 1;
  snprintf(r->ap_info.ap_id, sizeof(r->ap_info.ap_id), "%s", AP_ID);
  snprintf(r->ap_info.ap_pwd, sizeof(r->ap_info.ap_pwd), "%s", AP_PWD);
  snprintf(r->ap_info.ap_trans_id, sizeof(r->ap_info.ap_trans_id), "A%d",
           ++ap_seq);
  snprintf(r->ap_info.instant, sizeof(r->ap_info.instant),
           "2024-01-31T12:00:00Z");
  snprintf(r->msisdn, sizeof(r->msisdn), "%s", msisdn);
  mss_data_set(&r->data_to_be_signed, "text/plain", "UTF-8", text,
               strlen(text));
  r->messaging_mode = MSS_MODE_ASYNCH_CLIENT_SERVER;
}

/* A new AP_TransID for a request used again. */
static void fresh(mss_signature_req *r) {
  snprintf(r->ap_info.ap_trans_id, sizeof(r->ap_info.ap_trans_id), "A%d",
           ++ap_seq);
}

static void status_req(mss_status_req *r, const char *id) {
  memset(r, 0, sizeof(*r));
  r->major_version = 1;
  r->minor_version = 1;
  snprintf(r->ap_info.ap_id, sizeof(r->ap_info.ap_id), "%s", AP_ID);
  snprintf(r->ap_info.ap_pwd, sizeof(r->ap_info.ap_pwd), "%s", AP_PWD);
  snprintf(r->ap_info.ap_trans_id, sizeof(r->ap_info.ap_trans_id), "S%d",
           ++ap_seq);
  snprintf(r->ap_info.instant, sizeof(r->ap_info.instant),
           "2024-01-31T12:00:00Z");
  snprintf(r->mssp_trans_id, sizeof(r->mssp_trans_id), "%s", id);
}

/* Polls the status every 20 ms until it is not 504 or |max_ms| passed. */
static int wait_end(mock_mssp *e, const char *id, int max_ms,
                    mss_status_resp *resp, mss_fault *f) {
  mss_status_req rq;
  int code = MSS_OUTSTANDING_TRANSACTION;

  for (int waited = 0; waited <= max_ms; waited += 20) {
    status_req(&rq, id);
    code = mock_mssp_status(e, &rq, resp, f);
    if (code != MSS_OUTSTANDING_TRANSACTION) {
      return code;
    }
    pump(20);
  }
  return code;
}

/* Starts a transaction for |msisdn|; returns the answer code and the
 * MSSP_TransID in |id|. */
static int start(mock_mssp *e, const char *msisdn, const char *text, char *id,
                 mss_fault *f) {
  static mss_signature_req rq;
  static mss_signature_resp rs;
  int code;

  sig_req(&rq, msisdn, text);
  code = mock_mssp_signature(e, &rq, &rs, f);
  snprintf(id, MSS_MSSP_TRANSID_MAX + 1, "%s",
           code == 100 ? rs.mssp_trans_id : "");
  return code;
}

static mss_status_resp sresp;
static mss_signature_resp gresp;
static mss_signature_req greq;

/* ---- tests -------------------------------------------------------------- */

static void test_config_errors(void) {
  mock_mssp_config c;
  mock_mssp *e = NULL;
  char err[256];

  mock_mssp_config_init(&c);
  T_EQ_INT(mock_mssp_new(&e, &c, err, sizeof(err)), GW_ERR_INVALID);
  c.sims = sims;
  T_EQ_INT(mock_mssp_new(&e, &c, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(strstr(err, "application providers") != NULL);
  c.aps = test_aps;
  c.naps = 2;
  c.default_behaviour = "dance";
  T_EQ_INT(mock_mssp_new(&e, &c, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(strstr(err, "dance") != NULL);
  c.default_behaviour = "approve";
  c.default_timeout_s = 700;
  T_EQ_INT(mock_mssp_new(&e, &c, err, sizeof(err)), GW_ERR_INVALID);
  c.default_timeout_s = 300;
  c.default_format = "http://example/unknown";
  T_EQ_INT(mock_mssp_new(&e, &c, err, sizeof(err)), GW_ERR_INVALID);
  c.default_format = MSS_FORMAT_PKCS7;
  c.wrong_pin = c.user_pin;
  T_EQ_INT(mock_mssp_new(&e, &c, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(e == NULL);
  c.wrong_pin = "0000";
  T_EQ_INT(mock_mssp_new(&e, &c, err, sizeof(err)), GW_OK);
  /* Not bound yet: messages are refused. */
  {
    mss_fault f;
    sig_req(&greq, sim_msisdn[0], "x");
    T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), GW_ERR_INVALID);
  }
  T_EQ_INT(mock_mssp_bind(e, base), GW_OK);
  T_EQ_INT(mock_mssp_bind(e, base), GW_OK);
  mock_mssp_del(e);
  mock_mssp_del(NULL);
}

static void test_behaviour_strings(void) {
  char out[32];

  T_EQ_INT(mock_mssp_behaviour_check("approve"), GW_OK);
  T_EQ_INT(mock_mssp_behaviour_check("approve:0"), GW_OK);
  T_EQ_INT(mock_mssp_behaviour_check("approve:3600000"), GW_OK);
  T_EQ_INT(mock_mssp_behaviour_check("approve:3600001"), GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_behaviour_check("approve:"), GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_behaviour_check("approve:1x"), GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_behaviour_check("no_answer:5"), GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_behaviour_check("not_subscriber:422"), GW_OK);
  T_EQ_INT(mock_mssp_behaviour_check("not_subscriber:500"), GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_behaviour_check("Approve"), GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_behaviour_check(""), GW_ERR_INVALID);
  for (const char *const *p =
           (const char *const[]){"refuse", "no_answer", "handset",
                                 "pin_blocked", "wrong_pin:5", "absent",
                                 "sim_error:1", "not_subscriber", NULL};
       *p; p++) {
    T_EQ_INT(mock_mssp_behaviour_check(*p), GW_OK);
  }
  T_EQ_INT(mock_mssp_msisdn_norm("+96899000001", out, sizeof(out)), GW_OK);
  T_EQ_STR(out, "+96899000001");
  T_EQ_INT(mock_mssp_msisdn_norm("0096899000001", out, sizeof(out)), GW_OK);
  T_EQ_STR(out, "+96899000001");
  T_EQ_INT(mock_mssp_msisdn_norm("96899000001", out, sizeof(out)), GW_OK);
  T_EQ_STR(out, "+96899000001");
  T_EQ_INT(mock_mssp_msisdn_norm("99000001", out, sizeof(out)), GW_OK);
  T_EQ_STR(out, "+96899000001");
  T_EQ_INT(mock_mssp_msisdn_norm("+968 9900", out, sizeof(out)),
           GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_msisdn_norm("+", out, sizeof(out)), GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_msisdn_norm("+1234567890123456", out, sizeof(out)),
           GW_ERR_INVALID);
}

/* approve: 100, then 504, then 500 with a CMS the verifier accepts. */
static void test_approve_pkcs7(void) {
  mock_mssp *e = engine(NULL, NULL);
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mss_fault f;
  int code;
  gw_verify_req vr;
  gw_verify_status vs;
  mss_status_req rq;
  const char *text = "Sign in to Bank Muscat: 4821";

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  ends_seen = changes_seen = 0;
  T_EQ_INT(start(e, sim_msisdn[0], text, id, &f), 100);
  T_ASSERT(id[0] == 'T' && strlen(id) == 21);
  T_ASSERT(mss_ncname_valid(id, MSS_MSSP_TRANSID_MAX));
  status_req(&rq, id);
  T_EQ_INT(mock_mssp_status(e, &rq, &sresp, &f), 504);
  T_EQ_INT(sresp.status.code, 504);
  T_EQ_STR(sresp.status.message, "OUTSTANDING_TRANSACTION");
  T_EQ_STR(sresp.ap_info.ap_pwd, "");
  T_EQ_STR(sresp.mssp_info.id, "http://mssp.mock/omantel");
  code = wait_end(e, id, 3000, &sresp, &f);
  T_EQ_INT(code, 500);
  T_EQ_INT(sresp.signature.kind, MSS_SIG_PKCS7);
  memset(&vr, 0, sizeof(vr));
  vr.sig = sresp.signature.sig;
  vr.sig_len = sresp.signature.len;
  vr.data = text;
  vr.data_len = strlen(text);
  vr.data_kind = GW_VERIFY_DATA;
  vr.expect_msisdn = sim_msisdn[0];
  T_EQ_INT(gw_verify_cms(verifier, &vr, &vs), GW_VERIFY_OK);
  T_EQ_INT(ends_seen, 1);
  T_EQ_STR(last_end_id, id);
  T_ASSERT(changes_seen >= 2);
  /* Status queries after the end give the same answer. */
  status_req(&rq, id);
  T_EQ_INT(mock_mssp_status(e, &rq, &sresp, &f), 500);
  {
    mock_mssp_stats st;
    mock_mssp_get_stats(e, &st);
    T_EQ_INT(st.started, 1);
    T_EQ_INT(st.signed_ok, 1);
    T_EQ_INT(st.running, 0);
    T_EQ_INT(st.kept, 1);
  }
  mock_mssp_del(e);
}

/* PKCS1 asked for, with an x-sha256 digest: raw r||s and the certificate. */
static void test_approve_pkcs1_digest(void) {
  mock_mssp *e = engine(NULL, NULL);
  uint8_t digest[32];
  gw_buf b64;
  mss_fault f;
  gw_verify_req vr;
  gw_verify_status vs;

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  memset(digest, 0x42, sizeof(digest));
  gw_buf_init(&b64, 1024);
  mss_base64_encode(digest, 32, &b64);
  sig_req(&greq, sim_msisdn[1], "x");
  mss_data_set(&greq.data_to_be_signed, "application/x-sha256", "base64",
               b64.data, b64.len);
  gw_buf_free(&b64);
  greq.has_data_to_be_displayed = 1;
  mss_data_set(&greq.data_to_be_displayed, "text/plain", "UTF-8",
               "Log in to Omantel", 17);
  snprintf(greq.mss_format, sizeof(greq.mss_format), "%s", MSS_FORMAT_PKCS1);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  T_EQ_INT(wait_end(e, gresp.mssp_trans_id, 3000, &sresp, &f), 500);
  T_EQ_INT(sresp.signature.kind, MSS_SIG_PKCS1);
  T_EQ_INT(sresp.signature.len, 64);
  T_ASSERT(sresp.signature.cert_len > 100);
  memset(&vr, 0, sizeof(vr));
  vr.sig = sresp.signature.sig;
  vr.sig_len = sresp.signature.len;
  vr.alg = GW_VERIFY_ECDSA_RAW;
  vr.cert = sresp.signature.cert;
  vr.cert_len = sresp.signature.cert_len;
  vr.data = digest;
  vr.data_len = 32;
  vr.data_kind = GW_VERIFY_DIGEST;
  vr.expect_msisdn = sim_msisdn[1];
  T_EQ_INT(gw_verify_raw(verifier, &vr, &vs), GW_VERIFY_OK);
  /* The handset would show the display text and the digest. */
  {
    mock_tx_info ti;
    T_EQ_INT(mock_mssp_tx(e, gresp.mssp_trans_id, &ti), GW_OK);
    T_EQ_STR(ti.display, "Log in to Omantel");
    T_ASSERT(memcmp(ti.digest, digest, 32) == 0);
    T_EQ_INT(ti.data_kind, MOCK_SIM_DATA_DIGEST);
  }
  mock_mssp_del(e);
}

/* AP authentication and replay. */
static void test_ap_and_replay(void) {
  mock_mssp *e = engine(NULL, NULL);
  mss_fault f;
  mss_status_req rq;
  char id[MSS_MSSP_TRANSID_MAX + 1];

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  sig_req(&greq, sim_msisdn[0], "x");
  snprintf(greq.ap_info.ap_pwd, sizeof(greq.ap_info.ap_pwd), "wrong");
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 104);
  T_EQ_INT(f.subcode, 104);
  T_EQ_INT(f.code, MSS_FAULT_SENDER);
  T_ASSERT(strstr(f.detail, "wrong") == NULL || strstr(f.detail, "AP_PWD"));
  snprintf(greq.ap_info.ap_pwd, sizeof(greq.ap_info.ap_pwd), "dem");
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 104);
  snprintf(greq.ap_info.ap_pwd, sizeof(greq.ap_info.ap_pwd), "other");
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 104);
  snprintf(greq.ap_info.ap_id, sizeof(greq.ap_info.ap_id), "http://nobody");
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 104);
  /* The right password: accepted, and the AP_TransID is now used. */
  sig_req(&greq, sim_msisdn[0], "x");
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  snprintf(id, sizeof(id), "%s", gresp.mssp_trans_id);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 101);
  T_ASSERT(strstr(f.detail, "replay") != NULL);
  /* Another AP may use the same AP_TransID. */
  snprintf(greq.ap_info.ap_id, sizeof(greq.ap_info.ap_id), "http://other_ap");
  snprintf(greq.ap_info.ap_pwd, sizeof(greq.ap_info.ap_pwd), "other");
  snprintf(greq.msisdn, sizeof(greq.msisdn), "%s", sim_msisdn[1]);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  /* Status: wrong password, another AP's transaction, unknown ID. */
  status_req(&rq, id);
  snprintf(rq.ap_info.ap_pwd, sizeof(rq.ap_info.ap_pwd), "x");
  T_EQ_INT(mock_mssp_status(e, &rq, &sresp, &f), 104);
  status_req(&rq, gresp.mssp_trans_id);
  T_EQ_INT(mock_mssp_status(e, &rq, &sresp, &f), 101);
  status_req(&rq, "Tnope");
  T_EQ_INT(mock_mssp_status(e, &rq, &sresp, &f), 101);
  status_req(&rq, id);
  snprintf(rq.msisdn, sizeof(rq.msisdn), "%s", sim_msisdn[3]);
  T_EQ_INT(mock_mssp_status(e, &rq, &sresp, &f), 101);
  snprintf(rq.msisdn, sizeof(rq.msisdn), "99000001");
  T_EQ_INT(mock_mssp_status(e, &rq, &sresp, &f), 504);
  mock_mssp_del(e);
}

/* A replay window of one second, and a table of two pairs. */
static void tweak_replay(mock_mssp_config *c) {
  c->replay_window_s = 1;
  c->replay_max = 2;
  c->default_behaviour = "refuse:0";
}

static void test_replay_window(void) {
  mock_mssp *e = engine(NULL, tweak_replay);
  mss_fault f;

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  sig_req(&greq, sim_msisdn[0], "x");
  snprintf(greq.ap_info.ap_trans_id, sizeof(greq.ap_info.ap_trans_id), "R1");
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  pump(50);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 101);
  pump(1100);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  pump(50);
  /* The oldest pair is forgotten when the table is full. */
  snprintf(greq.ap_info.ap_trans_id, sizeof(greq.ap_info.ap_trans_id), "R2");
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  pump(50);
  snprintf(greq.ap_info.ap_trans_id, sizeof(greq.ap_info.ap_trans_id), "R3");
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  pump(50);
  snprintf(greq.ap_info.ap_trans_id, sizeof(greq.ap_info.ap_trans_id), "R1");
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  mock_mssp_del(e);
}

static const char *const mixed[NSIMS] = {
    "refuse:20",    "no_answer",      "absent:10",
    "sim_error:10", "not_subscriber", "not_subscriber:422"};

/* Each fault behaviour ends with its code. */
static void test_fault_behaviours(void) {
  mock_mssp *e = engine(mixed, NULL);
  mss_fault f;
  char id[MSS_MSSP_TRANSID_MAX + 1];
  long long t0;

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  T_EQ_INT(start(e, sim_msisdn[0], "x", id, &f), 100);
  T_EQ_INT(wait_end(e, id, 2000, &sresp, &f), 401);
  T_EQ_INT(f.subcode, 401);
  T_EQ_INT(f.code, MSS_FAULT_RECEIVER);
  T_EQ_STR(f.reason, "USER_CANCEL");
  T_EQ_INT(start(e, sim_msisdn[2], "x", id, &f), 100);
  T_EQ_INT(wait_end(e, id, 2000, &sresp, &f), 209);
  T_EQ_INT(start(e, sim_msisdn[3], "x", id, &f), 100);
  T_EQ_INT(wait_end(e, id, 2000, &sresp, &f), 900);
  T_ASSERT(strstr(f.detail, "9003") != NULL);
  T_EQ_INT(start(e, sim_msisdn[4], "x", id, &f), 404);
  T_EQ_INT(start(e, sim_msisdn[5], "x", id, &f), 422);
  /* no_answer with TimeOut 1: 208 after about a second. */
  sig_req(&greq, sim_msisdn[1], "x");
  greq.timeout = 1;
  t0 = (long long)time(NULL);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  T_EQ_INT(wait_end(e, gresp.mssp_trans_id, 3000, &sresp, &f), 208);
  T_ASSERT((long long)time(NULL) - t0 <= 2);
  /* Unknown phones. */
  T_EQ_INT(start(e, "+96899000999", "x", id, &f), 105);
  T_EQ_INT(start(e, "garbage", "x", id, &f), 105);
  mock_mssp_del(e);
}

/* 406 for a busy phone; local number forms are the same phone. */
static void test_busy_phone(void) {
  const char *const b[NSIMS] = {"no_answer", NULL, NULL, NULL, NULL, NULL};
  mock_mssp *e = engine(b, NULL);
  mss_fault f;
  char id[MSS_MSSP_TRANSID_MAX + 1], id2[80];
  mock_sub_info si;

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  T_EQ_INT(start(e, sim_msisdn[0], "x", id, &f), 100);
  T_EQ_INT(start(e, sim_msisdn[0], "y", id2, &f), 406);
  T_ASSERT(strstr(f.detail, id) != NULL);
  T_EQ_INT(start(e, "99000001", "y", id2, &f), 406);
  T_EQ_INT(start(e, "0096899000001", "y", id2, &f), 406);
  T_EQ_INT(mock_mssp_subscriber(e, "99000001", &si), GW_OK);
  T_EQ_STR(si.running, id);
  T_EQ_STR(si.behaviour, "no_answer");
  /* Another phone is free. */
  T_EQ_INT(start(e, sim_msisdn[1], "y", id2, &f), 100);
  mock_mssp_del(e);
}

/* Data checks: 107 for text that does not fit or types we do not sign, 103
 * for a digest of the wrong length, 101 for modes and formats. */
static void test_data_checks(void) {
  const char *const b[NSIMS] = {"refuse:0", "refuse:0", "refuse:0",
                                "refuse:0", "refuse:0", "refuse:0"};
  mock_mssp *e = engine(b, NULL);
  mss_fault f;
  char text[1024], id[80];
  const char *alef = "\xd8\xa7"; /* U+0627, 2 bytes of UTF-8 */
  size_t o = 0;

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  /* 160 GSM-7 characters fit, 161 do not. */
  memset(text, 'a', 161);
  text[160] = '\0';
  T_EQ_INT(start(e, sim_msisdn[0], text, id, &f), 100);
  pump(30);
  text[160] = 'a';
  text[161] = '\0';
  T_EQ_INT(start(e, sim_msisdn[0], text, id, &f), 107);
  T_EQ_INT(f.code, MSS_FAULT_SENDER);
  /* Arabic: 70 fit, 71 do not. */
  for (int i = 0; i < 70; i++) {
    memcpy(text + o, alef, 2);
    o += 2;
  }
  text[o] = '\0';
  T_EQ_INT(start(e, sim_msisdn[1], text, id, &f), 100);
  pump(30);
  memcpy(text + o, alef, 2);
  text[o + 2] = '\0';
  T_EQ_INT(start(e, sim_msisdn[1], text, id, &f), 107);
  T_ASSERT(strstr(f.detail, "UCS-2") != NULL);
  /* A long display text with a digest to sign. */
  sig_req(&greq, sim_msisdn[2], "x");
  mss_data_set(&greq.data_to_be_signed, "application/x-sha256", "base64",
               "AAAA", 4);
  fresh(&greq);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 103);
  mss_data_set(&greq.data_to_be_signed, "application/x-sha256", "base64",
               "not base64!", 11);
  fresh(&greq);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 101);
  sig_req(&greq, sim_msisdn[2], "x");
  greq.has_data_to_be_displayed = 1;
  mss_data_set(&greq.data_to_be_displayed, "text/plain", "UTF-8", text,
               strlen(text));
  fresh(&greq);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 107);
  mss_data_set(&greq.data_to_be_displayed, "text/html", NULL, "<b>x</b>", 8);
  fresh(&greq);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 107);
  /* Unsupported types and encodings. */
  sig_req(&greq, sim_msisdn[2], "x");
  mss_data_set(&greq.data_to_be_signed, "image/png", "base64", "AAAA", 4);
  fresh(&greq);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 107);
  mss_data_set(&greq.data_to_be_signed, "text/plain", "ISO-8859-1", "x", 1);
  fresh(&greq);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 107);
  mss_data_set(&greq.data_to_be_signed, "text/plain", "UTF-8", "\xff\xfe", 2);
  fresh(&greq);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 107);
  mss_data_set(&greq.data_to_be_signed, "text/plain", NULL, "", 0);
  fresh(&greq);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 103);
  /* octet-stream is signed (hashed). */
  mss_data_set(&greq.data_to_be_signed, "application/octet-stream", "base64",
               "AAECAw==", 8);
  fresh(&greq);
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  pump(30);
  /* Modes and formats. */
  sig_req(&greq, sim_msisdn[3], "x");
  greq.messaging_mode = MSS_MODE_ASYNCH_SERVER_SERVER;
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 101);
  T_ASSERT(strstr(f.detail, "asynchServerServer") != NULL);
  sig_req(&greq, sim_msisdn[3], "x");
  snprintf(greq.mss_format, sizeof(greq.mss_format), "http://example/XML");
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 101);
  {
    mock_mssp_stats st;
    mock_mssp_get_stats(e, &st);
    T_ASSERT(st.refused >= 10);
  }
  mock_mssp_del(e);
}

/* wrong_pin: the token refuses three PINs, the SIM blocks: 402, and the
 * counter says so; pin_blocked: 402 at once; the control reset helps. */
static int sim_done;
static mock_op_result sim_res;

static void sim_cb(void *arg, const mock_op_result *r) {
  (void)arg;
  sim_res = *r;
  sim_done = 1;
}

static int run_op(int max_ms) {
  for (int w = 0; w <= max_ms && !sim_done; w += 10) {
    pump(10);
  }
  return sim_done;
}

static void test_pin_behaviours(void) {
  const char *const b[NSIMS] = {"wrong_pin:10", "pin_blocked", NULL,
                                NULL,           NULL,          NULL};
  mock_mssp *e = engine(b, NULL);
  mss_fault f;
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_op *op = NULL;
  mock_tx_info ti;

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  T_EQ_INT(start(e, sim_msisdn[0], "x", id, &f), 100);
  T_EQ_INT(wait_end(e, id, 3000, &sresp, &f), 402);
  T_EQ_INT(mock_mssp_tx(e, id, &ti), GW_OK);
  T_EQ_INT(ti.pin_attempts, 3);
  sim_done = 0;
  T_EQ_INT(mock_mssp_sim_state(e, sim_msisdn[0], sim_cb, NULL, &op), GW_OK);
  T_ASSERT(run_op(2000));
  T_EQ_INT(sim_res.rv, GW_OK);
  T_EQ_INT(sim_res.pin_tries_left, 0);
  /* A blocked SIM stays blocked for an approving user too. */
  T_EQ_INT(mock_mssp_set_behaviour(e, sim_msisdn[0], "approve:0"), GW_OK);
  T_EQ_INT(start(e, sim_msisdn[0], "x", id, &f), 100);
  T_EQ_INT(wait_end(e, id, 3000, &sresp, &f), 402);
  /* The PUK unblocks (through the token). */
  sim_done = 0;
  T_EQ_INT(mock_mssp_sim_unblock(e, sim_msisdn[0], PUK, PIN, sim_cb, NULL, &op),
           GW_OK);
  T_ASSERT(run_op(3000));
  T_EQ_INT(sim_res.outcome, MOCK_SIM_OK);
  T_EQ_INT(sim_res.pin_tries_left, 3);
  T_EQ_INT(start(e, sim_msisdn[0], "x", id, &f), 100);
  T_EQ_INT(wait_end(e, id, 3000, &sresp, &f), 500);

  /* pin_blocked. */
  T_EQ_INT(start(e, sim_msisdn[1], "x", id, &f), 100);
  T_EQ_INT(wait_end(e, id, 3000, &sresp, &f), 402);
  sim_done = 0;
  T_EQ_INT(mock_mssp_sim_reset(e, sim_msisdn[1], sim_cb, NULL, &op), GW_OK);
  T_ASSERT(run_op(2000));
  T_EQ_INT(sim_res.pin_tries_left, 3);
  T_EQ_INT(sim_res.puk_tries_left, 10);
  /* Control operations on unknown or bad numbers. */
  T_EQ_INT(mock_mssp_sim_reset(e, "+96899999999", sim_cb, NULL, &op),
           GW_ERR_NOT_FOUND);
  T_EQ_INT(mock_mssp_sim_reset(e, "x", sim_cb, NULL, &op), GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_sim_unblock(e, sim_msisdn[1], "", PIN, sim_cb, NULL, &op),
           GW_ERR_INVALID);
  /* A forgotten operation does not call back. */
  sim_done = 0;
  T_EQ_INT(mock_mssp_sim_state(e, sim_msisdn[1], sim_cb, NULL, &op), GW_OK);
  mock_mssp_op_forget(e, op);
  pump(200);
  T_EQ_INT(sim_done, 0);
  mock_mssp_del(e);
}

/* The virtual-handset hook: wrong PIN (counted, still waiting), right PIN
 * (signed); refusal; answers for transactions that do not wait. */
static void test_handset(void) {
  const char *const b[NSIMS] = {"handset", "handset", "approve:5000",
                                NULL,      NULL,      NULL};
  mock_mssp *e = engine(b, NULL);
  mss_fault f;
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_op *op = NULL;
  mock_tx_info pend[2];
  size_t n = 9;

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  T_EQ_INT(start(e, sim_msisdn[0], "Log in: 7", id, &f), 100);
  T_EQ_INT(mock_mssp_pending(e, sim_msisdn[0], pend, 2, &n), GW_OK);
  T_EQ_INT(n, 1);
  T_EQ_STR(pend[0].mssp_trans_id, id);
  T_EQ_STR(pend[0].display, "Log in: 7");
  pump(100);
  T_EQ_INT(wait_end(e, id, 0, &sresp, &f), 504); /* still waiting */
  sim_done = 0;
  T_EQ_INT(mock_mssp_handset(e, id, 1, "9999", sim_cb, NULL, &op), GW_OK);
  /* While the SIM works, another answer is refused. */
  T_EQ_INT(mock_mssp_handset(e, id, 1, PIN, sim_cb, NULL, &op), GW_ERR_BUSY);
  T_ASSERT(run_op(2000));
  T_EQ_INT(sim_res.outcome, MOCK_SIM_WRONG_PIN);
  T_EQ_INT(sim_res.pin_tries_left, 2);
  T_EQ_INT(sim_res.status, 504);
  sim_done = 0;
  T_EQ_INT(mock_mssp_handset(e, id, 1, PIN, sim_cb, NULL, &op), GW_OK);
  T_ASSERT(run_op(2000));
  T_EQ_INT(sim_res.outcome, MOCK_SIM_OK);
  T_EQ_INT(sim_res.pin_tries_left, 3);
  T_EQ_INT(sim_res.status, 500);
  T_EQ_INT(wait_end(e, id, 0, &sresp, &f), 500);
  /* Refusal. */
  T_EQ_INT(start(e, sim_msisdn[1], "x", id, &f), 100);
  T_EQ_INT(mock_mssp_handset(e, id, 0, NULL, NULL, NULL, &op), GW_OK);
  T_ASSERT(op == NULL);
  T_EQ_INT(wait_end(e, id, 0, &sresp, &f), 401);
  T_EQ_INT(mock_mssp_handset(e, id, 0, NULL, NULL, NULL, &op),
           GW_ERR_NOT_FOUND);
  /* A transaction that does not wait for a handset. */
  T_EQ_INT(start(e, sim_msisdn[2], "x", id, &f), 100);
  T_EQ_INT(mock_mssp_handset(e, id, 1, PIN, sim_cb, NULL, &op), GW_ERR_BUSY);
  T_EQ_INT(mock_mssp_pending(e, "+96890000000", pend, 2, &n), GW_ERR_NOT_FOUND);
  mock_mssp_del(e);
}

/* Synch mode: wait for the end, then the final answer. */
static int waited;
static int waited_status;

static void wait_cb(void *arg, const mock_op_result *r) {
  (void)arg;
  waited++;
  waited_status = r->status;
}

static void test_synch_wait(void) {
  const char *const b[NSIMS] = {"approve:50", "no_answer", NULL,
                                NULL,         NULL,        NULL};
  mock_mssp *e = engine(b, NULL);
  mss_fault f;
  mock_op *op = NULL, *op2 = NULL;
  char id[MSS_MSSP_TRANSID_MAX + 1];

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  sig_req(&greq, sim_msisdn[0], "synch please");
  greq.messaging_mode = MSS_MODE_SYNCH;
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  snprintf(id, sizeof(id), "%s", gresp.mssp_trans_id);
  waited = 0;
  T_EQ_INT(mock_mssp_wait(e, id, wait_cb, NULL, &op), GW_OK);
  T_ASSERT(op != NULL);
  /* A second waiter, forgotten: only the first hears the end. */
  T_EQ_INT(mock_mssp_wait(e, id, wait_cb, NULL, &op2), GW_OK);
  mock_mssp_op_forget(e, op2);
  T_EQ_INT(mock_mssp_signature_final(e, id, &gresp, &f), 504);
  for (int w = 0; w < 3000 && !waited; w += 10) {
    pump(10);
  }
  T_EQ_INT(waited, 1);
  T_EQ_INT(waited_status, 500);
  T_EQ_INT(mock_mssp_signature_final(e, id, &gresp, &f), 500);
  T_EQ_INT(gresp.signature.kind, MSS_SIG_PKCS7);
  T_EQ_INT(gresp.status.code, 500);
  /* Waiting on an ended transaction calls back at once. */
  T_EQ_INT(mock_mssp_wait(e, id, wait_cb, NULL, &op), GW_OK);
  T_ASSERT(op == NULL);
  T_EQ_INT(waited, 2);
  T_EQ_INT(mock_mssp_wait(e, "Tunknown", wait_cb, NULL, &op), GW_ERR_NOT_FOUND);
  T_EQ_INT(mock_mssp_signature_final(e, "Tunknown", &gresp, &f), 101);
  /* Timing out in synch mode. */
  sig_req(&greq, sim_msisdn[1], "x");
  greq.messaging_mode = MSS_MODE_SYNCH;
  greq.timeout = 1;
  T_EQ_INT(mock_mssp_signature(e, &greq, &gresp, &f), 100);
  waited = 0;
  T_EQ_INT(mock_mssp_wait(e, gresp.mssp_trans_id, wait_cb, NULL, &op), GW_OK);
  for (int w = 0; w < 3000 && !waited; w += 10) {
    pump(10);
  }
  T_EQ_INT(waited_status, 208);
  T_EQ_INT(mock_mssp_signature_final(e, gresp.mssp_trans_id, &gresp, &f), 208);
  mock_mssp_del(e);
}

/* Receipts: not before the end, once after it. */
static void test_receipt(void) {
  const char *const b[NSIMS] = {"approve:30", NULL, NULL, NULL, NULL, NULL};
  mock_mssp *e = engine(b, NULL);
  mss_fault f;
  mss_receipt_req rr;
  mss_receipt_resp rs;
  char id[MSS_MSSP_TRANSID_MAX + 1];

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  T_EQ_INT(start(e, sim_msisdn[0], "x", id, &f), 100);
  memset(&rr, 0, sizeof(rr));
  rr.major_version = 1;
  rr.minor_version = 1;
  snprintf(rr.ap_info.ap_id, sizeof(rr.ap_info.ap_id), AP_ID);
  snprintf(rr.ap_info.ap_pwd, sizeof(rr.ap_info.ap_pwd), AP_PWD);
  snprintf(rr.ap_info.ap_trans_id, sizeof(rr.ap_info.ap_trans_id), "R9");
  snprintf(rr.mssp_trans_id, sizeof(rr.mssp_trans_id), "%s", id);
  T_EQ_INT(mock_mssp_receipt(e, &rr, &rs, &f), 101);
  T_ASSERT(strstr(f.detail, "running") != NULL);
  T_EQ_INT(wait_end(e, id, 3000, &sresp, &f), 500);
  T_EQ_INT(mock_mssp_receipt(e, &rr, &rs, &f), 100);
  T_EQ_INT(rs.status.code, 100);
  T_EQ_STR(rs.status.message, "REQUEST_OK");
  T_EQ_STR(rs.ap_info.ap_pwd, "");
  T_EQ_INT(mock_mssp_receipt(e, &rr, &rs, &f), 101);
  snprintf(rr.ap_info.ap_pwd, sizeof(rr.ap_info.ap_pwd), "bad");
  T_EQ_INT(mock_mssp_receipt(e, &rr, &rs, &f), 104);
  snprintf(rr.ap_info.ap_pwd, sizeof(rr.ap_info.ap_pwd), AP_PWD);
  snprintf(rr.mssp_trans_id, sizeof(rr.mssp_trans_id), "Tnone");
  T_EQ_INT(mock_mssp_receipt(e, &rr, &rs, &f), 101);
  mock_mssp_del(e);
}

/* Ended transactions are forgotten after keep_done_s; max_transactions
 * bounds them. */
static void tweak_small(mock_mssp_config *c) {
  c->keep_done_s = 1;
  c->max_transactions = 2;
  c->default_behaviour = "refuse:0";
}

static void test_expiry_and_cap(void) {
  mock_mssp *e = engine(NULL, tweak_small);
  mss_fault f;
  char id[MSS_MSSP_TRANSID_MAX + 1], id2[80], id3[80];
  mss_status_req rq;

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  T_EQ_INT(start(e, sim_msisdn[0], "x", id, &f), 100);
  T_EQ_INT(mock_mssp_set_behaviour(e, sim_msisdn[1], "no_answer"), GW_OK);
  T_EQ_INT(start(e, sim_msisdn[1], "x", id2, &f), 100);
  T_EQ_INT(start(e, sim_msisdn[2], "x", id3, &f), 900);
  T_ASSERT(strstr(f.detail, "too many") != NULL);
  pump(2100);
  status_req(&rq, id);
  T_EQ_INT(mock_mssp_status(e, &rq, &sresp, &f), 101); /* forgotten */
  status_req(&rq, id2);
  T_EQ_INT(mock_mssp_status(e, &rq, &sresp, &f), 504); /* still running */
  T_EQ_INT(start(e, sim_msisdn[2], "x", id3, &f), 100);
  mock_mssp_del(e);
}

/* Behaviours set at run time, and back to the registry's. */
static void test_set_behaviour(void) {
  const char *const b[NSIMS] = {"refuse:0", NULL, NULL, NULL, NULL, NULL};
  mock_mssp *e = engine(b, NULL);
  mock_sub_info si;
  mss_fault f;
  char id[MSS_MSSP_TRANSID_MAX + 1];

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  T_EQ_INT(mock_mssp_set_behaviour(e, sim_msisdn[0], "dance"), GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_set_behaviour(e, "+96800000000", "refuse"),
           GW_ERR_NOT_FOUND);
  T_EQ_INT(mock_mssp_set_behaviour(e, sim_msisdn[0], "absent:0"), GW_OK);
  T_EQ_INT(mock_mssp_subscriber(e, sim_msisdn[0], &si), GW_OK);
  T_EQ_STR(si.behaviour, "absent:0");
  T_EQ_STR(si.registry_behaviour, "refuse:0");
  T_EQ_INT(si.overridden, 1);
  T_EQ_INT(si.has_cert, 1);
  T_EQ_INT(start(e, sim_msisdn[0], "x", id, &f), 100);
  T_EQ_INT(wait_end(e, id, 2000, &sresp, &f), 209);
  T_EQ_INT(mock_mssp_set_behaviour(e, sim_msisdn[0], NULL), GW_OK);
  T_EQ_INT(mock_mssp_subscriber(e, sim_msisdn[0], &si), GW_OK);
  T_EQ_STR(si.behaviour, "refuse:0");
  T_EQ_INT(si.overridden, 0);
  T_EQ_INT(start(e, sim_msisdn[0], "x", id, &f), 100);
  T_EQ_INT(wait_end(e, id, 2000, &sresp, &f), 401);
  /* The default for a row without one. */
  T_EQ_INT(mock_mssp_subscriber(e, sim_msisdn[1], &si), GW_OK);
  T_EQ_STR(si.behaviour, "approve:30");
  /* A SIM without a certificate: 422 when it comes to signing. */
  T_EQ_INT(mock_mssp_add_subscriber(e, "+96899000077", "approve:0", NULL, 0),
           GW_OK);
  T_EQ_INT(start(e, "+96899000077", "x", id, &f), 100);
  T_EQ_INT(wait_end(e, id, 2000, &sresp, &f), 422);
  T_EQ_INT(mock_mssp_add_subscriber(e, "96899000078", NULL, NULL, 0),
           GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_add_subscriber(e, "+96899000078", "fly", NULL, 0),
           GW_ERR_INVALID);
  T_EQ_INT(mock_mssp_add_subscriber(e, "+96899000078", NULL, "junk", 4),
           GW_ERR_INVALID);
  mock_mssp_del(e);
}

/* The registry: this operator's rows only; a bad behaviour falls back. */
static void test_registry(void) {
  mock_mssp_config c;
  mock_mssp *e = NULL;
  gw_store *st = NULL;
  gw_store_sub row;
  char path[160], err[256];
  size_t n = 0;
  mock_sub_info si;
  static const char *const ops[NSIMS] = {"omantel", "omantel", "ooredoo",
                                         "omantel", "Omantel", "ooredoo"};
  static const char *const behs[NSIMS] = {"refuse",   "",        "approve:1",
                                          "fly_away", "handset", ""};

  snprintf(path, sizeof(path), "%s/registry.db", dir);
  T_EQ_INT(gw_store_open(&st, "sqlite", path, 1000, err, sizeof(err)), GW_OK);
  if (!st) {
    return;
  }
  for (int i = 0; i < NSIMS; i++) {
    memset(&row, 0, sizeof(row));
    snprintf(row.msisdn, sizeof(row.msisdn), "%s", sim_msisdn[i]);
    snprintf(row.civil_id, sizeof(row.civil_id), "1000000%d", i);
    snprintf(row.name, sizeof(row.name), "Subscriber %d", i);
    snprintf(row.operator_name, sizeof(row.operator_name), "%s", ops[i]);
    snprintf(row.cert_serial, sizeof(row.cert_serial), "0%d", i);
    snprintf(row.cert_pem, sizeof(row.cert_pem), "%s", cert_pem[i]);
    snprintf(row.behaviour, sizeof(row.behaviour), "%s", behs[i]);
    T_EQ_INT(gw_store_sub_put(st, &row), GW_OK);
  }
  mock_mssp_config_init(&c);
  c.aps = test_aps;
  c.naps = 1;
  c.sims = sims;
  T_EQ_INT(mock_mssp_new(&e, &c, err, sizeof(err)), GW_OK);
  if (e) {
    T_EQ_INT(mock_mssp_load_registry(e, st, &n, err, sizeof(err)), GW_OK);
    T_EQ_INT(n, 4);
    T_EQ_INT(mock_mssp_subscriber(e, sim_msisdn[0], &si), GW_OK);
    T_EQ_STR(si.behaviour, "refuse");
    T_EQ_INT(mock_mssp_subscriber(e, sim_msisdn[1], &si), GW_OK);
    T_EQ_STR(si.behaviour, "approve:1000");
    T_EQ_INT(mock_mssp_subscriber(e, sim_msisdn[2], &si), GW_ERR_NOT_FOUND);
    T_EQ_INT(mock_mssp_subscriber(e, sim_msisdn[3], &si), GW_OK);
    T_EQ_STR(si.behaviour, "approve:1000");
    T_EQ_INT(mock_mssp_subscriber(e, sim_msisdn[4], &si), GW_OK);
    T_EQ_STR(si.behaviour, "handset");
    T_EQ_INT(si.has_cert, 1);
    mock_mssp_del(e);
  }
  gw_store_close(st);
}

/* A transaction whose SIM work is still in flight when the engine is
 * freed: nothing leaks, nothing is called. */
static void test_del_in_flight(void) {
  const char *const b[NSIMS] = {"approve:0", "handset", NULL, NULL, NULL, NULL};
  mock_mssp *e = engine(b, NULL);
  mss_fault f;
  char id[MSS_MSSP_TRANSID_MAX + 1];
  mock_op *op = NULL;

  if (!e) {
    T_ASSERT(e != NULL);
    return;
  }
  T_EQ_INT(start(e, sim_msisdn[0], "x", id, &f), 100);
  pump(1); /* the step fires; the job goes to the pool */
  T_EQ_INT(start(e, sim_msisdn[1], "y", id, &f), 100);
  sim_done = 0;
  T_EQ_INT(mock_mssp_handset(e, id, 1, PIN, sim_cb, NULL, &op), GW_OK);
  T_EQ_INT(mock_mssp_wait(e, id, wait_cb, NULL, &op), GW_OK);
  mock_mssp_del(e);
  T_EQ_INT(sim_done, 0);
}

int main(void) {
  if (setup() != 0) {
    printf("not ok - setup: SoftHSM, test CA, SIM tokens or event loop\n");
    teardown();
    return 1;
  }
  gw_log_open(NULL, GW_LOG_WARN);
  T_RUN(test_config_errors);
  T_RUN(test_behaviour_strings);
  T_RUN(test_approve_pkcs7);
  T_RUN(test_approve_pkcs1_digest);
  T_RUN(test_ap_and_replay);
  T_RUN(test_replay_window);
  T_RUN(test_fault_behaviours);
  T_RUN(test_busy_phone);
  T_RUN(test_data_checks);
  T_RUN(test_pin_behaviours);
  T_RUN(test_handset);
  T_RUN(test_synch_wait);
  T_RUN(test_receipt);
  T_RUN(test_expiry_and_cap);
  T_RUN(test_set_behaviour);
  T_RUN(test_registry);
  T_RUN(test_del_in_flight);
  teardown();
  return T_DONE();
}
