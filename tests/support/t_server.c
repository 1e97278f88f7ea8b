/* t_server.c — see t_server.h. */
#include "support/t_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_buf.h"
#include "gw_err.h"
#include "gw_handlers.h"
#include "gw_http.h"

/* Writes a self-signed P-256 certificate and its key into |dir|. */
static int write_cert(const char *dir, char *cert_path, size_t cap) {
  char path[256];
  EVP_PKEY *pk = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  X509_NAME *n;
  X509_EXTENSION *ext;
  X509V3_CTX ctx;
  FILE *f;
  int ok = 0;

  if (!pk || !x) {
    goto done;
  }
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, pk);
  n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                             (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, n);
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name,
                            "DNS:localhost,IP:127.0.0.1");
  if (!ext) {
    goto done;
  }
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  if (!X509_sign(x, pk, EVP_sha256())) {
    goto done;
  }
  snprintf(cert_path, cap, "%s/cert.pem", dir);
  f = fopen(cert_path, "w");
  if (!f) {
    goto done;
  }
  ok = PEM_write_X509(f, x);
  fclose(f);
  snprintf(path, sizeof(path), "%s/key.pem", dir);
  f = fopen(path, "w");
  if (!f) {
    ok = 0;
    goto done;
  }
  ok = ok && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
  fclose(f);
done:
  EVP_PKEY_free(pk);
  X509_free(x);
  return ok;
}

static void rm_dir(const char *dir) {
  static const char *files[] = {"cert.pem", "key.pem", "t.conf"};
  char path[256];

  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

int ts_start(ts_server *t, int workers, void (*tweak)(gw_config *),
             int (*routes)(gw_router *)) {
  return ts_start_app(t, workers, tweak, routes, NULL);
}

int ts_start_app(ts_server *t, int workers, void (*tweak)(gw_config *),
                 int (*routes)(gw_router *), void *app) {
  char path[256], err[512];
  FILE *f;

  memset(t, 0, sizeof(*t));
  snprintf(t->dir, sizeof(t->dir), "/tmp/gw-srv-test.XXXXXX");
  if (!mkdtemp(t->dir) || !write_cert(t->dir, t->cert, sizeof(t->cert))) {
    printf("#   cannot make the test directory or certificate\n");
    return -1;
  }
  snprintf(path, sizeof(path), "%s/t.conf", t->dir);
  f = fopen(path, "w");
  if (!f) {
    printf("#   cannot write %s\n", path);
    return -1;
  }
  fprintf(f,
          "server: { listen = \"127.0.0.1:1\"; h2c_listen = \"127.0.0.1:2\";\n"
          "  workers = %d; shutdown_grace_ms = 500; };\n"
          "tls: { certificate = \"cert.pem\"; private_key = \"key.pem\"; };\n"
          "log: { level = \"warn\"; access = false; };\n",
          workers);
  fclose(f);
  if (gw_config_load(&t->cfg, path, err, sizeof(err)) != GW_OK) {
    printf("#   config: %s\n", err);
    return -1;
  }
  /* Port 0 (any free port) is below the file's minimum of 1. */
  t->cfg->listen_port = 0;
  t->cfg->h2c_port = 0;
  if (tweak) {
    tweak(t->cfg);
  }
  if (gw_router_new(&t->router) != GW_OK ||
      gw_handlers_register(t->router) != GW_OK ||
      (routes && routes(t->router) != GW_OK)) {
    printf("#   router set-up failed\n");
    return -1;
  }
  if (gw_server_new(&t->srv, t->cfg, t->router, app ? app : t, err,
                    sizeof(err)) != GW_OK) {
    printf("#   gw_server_new: %s\n", err);
    return -1;
  }
  t->port = gw_server_port(t->srv, 0);
  t->h2c_port = gw_server_port(t->srv, 1);
  if (gw_server_start(t->srv) != GW_OK) {
    printf("#   gw_server_start failed\n");
    gw_server_del(t->srv);
    t->srv = NULL;
    return -1;
  }
  return 0;
}

void ts_stop(ts_server *t) {
  if (t->srv) {
    gw_server_shutdown(t->srv);
    gw_server_join(t->srv);
    gw_server_del(t->srv);
    t->srv = NULL;
  }
  gw_router_del(t->router);
  t->router = NULL;
  gw_config_del(t->cfg);
  t->cfg = NULL;
  if (t->dir[0]) {
    rm_dir(t->dir);
  }
}

long ts_metric(ts_server *t, const char *name) {
  gw_buf out;
  const char *p;
  char key[128];
  long v = -1;

  gw_buf_init(&out, 1 << 20);
  snprintf(key, sizeof(key), "\n%s ", name);
  if (gw_server_metrics(t->srv, &out) == GW_OK &&
      (p = strstr(gw_buf_cstr(&out), key)) != NULL) {
    v = atol(p + strlen(key));
  }
  gw_buf_free(&out);
  return v;
}

/* ---- routes ----------------------------------------------------------- */

static void h_echo(gw_exch *x) {
  gw_req *r = gw_exch_req(x);

  gw_resp_json(x, 200,
               json_pack("{s:s, s:s, s:s?}", "id",
                         gw_route_param(&r->match, "id"), "method", r->method,
                         "query", r->query));
}

static void h_body(gw_exch *x) {
  gw_req *r = gw_exch_req(x);

  gw_resp_json(x, 200,
               json_pack("{s:I, s:s#}", "length", (json_int_t)r->body.len,
                         "body", r->body.data ? r->body.data : "",
                         (int)r->body.len));
}

int ts_echo_routes(gw_router *r) {
  int rv = gw_router_add(r, "GET", "/echo/{id}", h_echo, 0, "echo");

  rv = rv ? rv : gw_router_add(r, "POST", "/body", h_body, 1024, "body");
  return rv;
}
