/* gw_pki_test.c — unit tests for gateway/gw_pki.c.
 *
 * The certificate builders run with software keys and are checked with
 * OpenSSL's own verifier; the CA on disk (index.txt, CRL numbers, the PIN
 * file, locking) runs in a temporary directory; the token path (ca init,
 * issuing, CRL signing, the gateway keys) runs on a private SoftHSM token
 * directory. */
#include "gw_pki.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gw_config.h"
#include "gw_err.h"
#include "gw_log.h"
#include "harness.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"

static char tmpdir[PATH_MAX];

/* ---- helpers ----------------------------------------------------------- */

static const char *tpath(const char *name) {
  static char p[4][PATH_MAX + 64];
  static int i;

  i = (i + 1) % 4;
  snprintf(p[i], sizeof(p[i]), "%s/%s", tmpdir, name);
  return p[i];
}

static int write_text(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");

  if (!f) {
    printf("#   cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  fputs(text, f);
  fclose(f);
  return chmod(path, mode);
}

static char *read_text(const char *path) {
  static char buf[65536];
  FILE *f = fopen(path, "r");
  size_t n;

  buf[0] = '\0';
  if (!f) {
    return buf;
  }
  n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void rm_rf(const char *path) {
  struct stat st;
  DIR *d;
  struct dirent *de;
  char p[PATH_MAX + 256];

  if (lstat(path, &st) != 0) {
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    d = opendir(path);
    while (d && (de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
        snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        rm_rf(p);
      }
    }
    if (d) {
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

static EVP_PKEY *ec_key(void) {
  return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* Verifies |leaf| up to |root| through |inter| (may be NULL), with |crl|
 * checked when not NULL. Returns the X509_V_* result. */
static int verify_chain(X509 *root, X509 *inter, X509 *leaf, X509_CRL *crl) {
  X509_STORE *store = X509_STORE_new();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  STACK_OF(X509) *chain = sk_X509_new_null();
  int rv;

  X509_STORE_add_cert(store, root);
  if (inter) {
    sk_X509_push(chain, inter);
  }
  if (crl) {
    X509_STORE_add_crl(store, crl);
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  X509_STORE_CTX_init(ctx, store, leaf, chain);
  rv = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  sk_X509_free(chain);
  ERR_clear_error();
  return rv;
}

/* The text of the entry |nid| of |name| (static buffer). */
static const char *name_entry(X509_NAME *name, int nid) {
  static char buf[512];

  buf[0] = '\0';
  X509_NAME_get_text_by_NID(name, nid, buf, sizeof(buf));
  return buf;
}

static int has_ext(X509 *x, int nid) {
  return X509_get_ext_by_NID(x, nid, -1) >= 0;
}

/* A fresh CA in software: root and issuing certificates with their keys. */
typedef struct soft_ca {
  EVP_PKEY *root_key, *issuing_key;
  X509 *root, *issuing;
} soft_ca;

static int soft_ca_new(soft_ca *ca) {
  memset(ca, 0, sizeof(*ca));
  ca->root_key = ec_key();
  ca->issuing_key = ec_key();
  if (!ca->root_key || !ca->issuing_key ||
      gw_pki_make_root(ca->root_key, 30, &ca->root) != GW_OK ||
      gw_pki_make_issuing(ca->root, ca->root_key, ca->issuing_key, 20,
                          &ca->issuing) != GW_OK) {
    return -1;
  }
  return 0;
}

static void soft_ca_free(soft_ca *ca) {
  EVP_PKEY_free(ca->root_key);
  EVP_PKEY_free(ca->issuing_key);
  X509_free(ca->root);
  X509_free(ca->issuing);
}

static const gw_pki_holder holder1 = {"+96899000001", "10000001",
                                      "Salim Al-Harthy"};

/* ---- certificate builders ---------------------------------------------- */

static void test_root_and_issuing(void) {
  soft_ca ca;
  BASIC_CONSTRAINTS *bc;
  ASN1_BIT_STRING *ku;
  int crit = -1;

  T_ASSERT(soft_ca_new(&ca) == 0);
  if (!ca.issuing) {
    soft_ca_free(&ca);
    return;
  }
  T_EQ_STR(name_entry(X509_get_subject_name(ca.root), NID_commonName),
           "Oman National PKI Root \xe2\x80\x94 demo");
  T_EQ_STR(name_entry(X509_get_subject_name(ca.root), NID_countryName), "OM");
  T_EQ_INT(X509_NAME_cmp(X509_get_subject_name(ca.root),
                         X509_get_issuer_name(ca.root)),
           0);
  T_EQ_INT(X509_check_issued(ca.root, ca.root), X509_V_OK);
  T_EQ_INT(X509_check_issued(ca.root, ca.issuing), X509_V_OK);
  T_EQ_INT(verify_chain(ca.root, NULL, ca.issuing, NULL), X509_V_OK);
  T_EQ_STR(name_entry(X509_get_subject_name(ca.issuing), NID_commonName),
           GW_PKI_ISSUING_CN);

  /* The issuing CA may issue end-entity certificates only. */
  bc = X509_get_ext_d2i(ca.issuing, NID_basic_constraints, &crit, NULL);
  T_ASSERT(bc && bc->ca);
  T_EQ_INT(crit, 1);
  T_ASSERT(bc && bc->pathlen && ASN1_INTEGER_get(bc->pathlen) == 0);
  BASIC_CONSTRAINTS_free(bc);
  ku = X509_get_ext_d2i(ca.issuing, NID_key_usage, &crit, NULL);
  T_EQ_INT(crit, 1);
  T_ASSERT(ku && ASN1_BIT_STRING_get_bit(ku, 5)); /* keyCertSign */
  T_ASSERT(ku && ASN1_BIT_STRING_get_bit(ku, 6)); /* cRLSign */
  T_ASSERT(ku && !ASN1_BIT_STRING_get_bit(ku, 0));
  ASN1_BIT_STRING_free(ku);
  T_ASSERT(has_ext(ca.root, NID_subject_key_identifier));
  T_ASSERT(has_ext(ca.issuing, NID_authority_key_identifier));
  T_EQ_INT(X509_get_signature_nid(ca.issuing), NID_ecdsa_with_SHA256);

  /* Bad arguments. */
  X509 *x = NULL;
  T_EQ_INT(gw_pki_make_root(NULL, 10, &x), GW_ERR_INVALID);
  T_EQ_INT(gw_pki_make_root(ca.root_key, 0, &x), GW_ERR_INVALID);
  T_EQ_INT(gw_pki_make_issuing(NULL, ca.root_key, ca.issuing_key, 1, &x),
           GW_ERR_INVALID);
  T_ASSERT(x == NULL);
  soft_ca_free(&ca);
}

static void test_sim_cert(void) {
  soft_ca ca;
  EVP_PKEY *sim = ec_key(), *other = ec_key();
  X509 *x = NULL, *x2 = NULL;
  GENERAL_NAMES *gens;
  ASN1_BIT_STRING *ku;
  char *line;
  int crit = -1;

  T_ASSERT(soft_ca_new(&ca) == 0);
  T_EQ_INT(gw_pki_make_sim_cert(ca.issuing, ca.issuing_key, sim, &holder1, NULL,
                                GW_PKI_SIM_DAYS, &x),
           GW_OK);
  if (!x) {
    goto done;
  }
  T_EQ_INT(verify_chain(ca.root, ca.issuing, x, NULL), X509_V_OK);
  T_EQ_INT(EVP_PKEY_eq(X509_get0_pubkey(x), sim), 1);
  /* The subject, in DER order C, serialNumber, CN. */
  line = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
  T_EQ_STR(line, "/C=OM/serialNumber=PNOOM-10000001/CN=Salim Al-Harthy");
  OPENSSL_free(line);
  /* The MSISDN as the one subjectAltName, a tel: URI. */
  gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  T_ASSERT(gens && sk_GENERAL_NAME_num(gens) == 1);
  if (gens && sk_GENERAL_NAME_num(gens) == 1) {
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, 0);
    T_EQ_INT(gn->type, GEN_URI);
    T_EQ_STR(
        (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
        "tel:+96899000001");
  }
  GENERAL_NAMES_free(gens);
  /* digitalSignature only, critical. */
  ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
  T_EQ_INT(crit, 1);
  T_ASSERT(ku && ASN1_BIT_STRING_get_bit(ku, 0));
  for (int bit = 1; ku && bit < 9; bit++) {
    T_ASSERT(!ASN1_BIT_STRING_get_bit(ku, bit));
  }
  ASN1_BIT_STRING_free(ku);
  T_EQ_INT(X509_check_ca(x), 0);
  T_ASSERT(!has_ext(x, NID_info_access)); /* no OCSP URL given */
  /* About two years, from now. */
  {
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x));
    T_EQ_INT(days, GW_PKI_SIM_DAYS);
    T_ASSERT(X509_cmp_current_time(X509_get0_notBefore(x)) <= 0);
  }
  /* A random positive 128-bit serial; two certificates never share one. */
  {
    char s1[GW_PKI_SERIAL_HEX_MAX + 1], s2[GW_PKI_SERIAL_HEX_MAX + 1];
    T_EQ_INT(gw_pki_serial_hex(x, s1, sizeof(s1)), GW_OK);
    T_EQ_INT(strlen(s1), 32);
    T_EQ_INT(ASN1_INTEGER_get_int64(&(int64_t){0}, X509_get0_serialNumber(x)),
             0); /* > 64 bits: does not fit an int64 */
    T_EQ_INT(gw_pki_make_sim_cert(ca.issuing, ca.issuing_key, sim, &holder1,
                                  NULL, 1, &x2),
             GW_OK);
    T_EQ_INT(gw_pki_serial_hex(x2, s2, sizeof(s2)), GW_OK);
    T_ASSERT(strcmp(s1, s2) != 0);
    ERR_clear_error();
  }
  /* Another issuer's key does not verify. */
  T_ASSERT(X509_verify(x, other) != 1);
  ERR_clear_error();
done:
  X509_free(x);
  X509_free(x2);
  EVP_PKEY_free(sim);
  EVP_PKEY_free(other);
  soft_ca_free(&ca);
}

/* The OCSP URL goes in as a structure: a comma cannot add a field. */
static void test_sim_cert_aia(void) {
  soft_ca ca;
  EVP_PKEY *sim = ec_key();
  AUTHORITY_INFO_ACCESS *aia;
  X509 *x = NULL;

  T_ASSERT(soft_ca_new(&ca) == 0);
  T_EQ_INT(gw_pki_make_sim_cert(ca.issuing, ca.issuing_key, sim, &holder1,
                                "http://127.0.0.1:8888/ocsp,URI:evil", 10, &x),
           GW_OK);
  aia = x ? X509_get_ext_d2i(x, NID_info_access, NULL, NULL) : NULL;
  T_ASSERT(aia && sk_ACCESS_DESCRIPTION_num(aia) == 1);
  if (aia && sk_ACCESS_DESCRIPTION_num(aia) == 1) {
    ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, 0);
    T_EQ_INT(OBJ_obj2nid(ad->method), NID_ad_OCSP);
    T_EQ_INT(ad->location->type, GEN_URI);
    T_EQ_STR((const char *)ASN1_STRING_get0_data(
                 ad->location->d.uniformResourceIdentifier),
             "http://127.0.0.1:8888/ocsp,URI:evil");
  }
  AUTHORITY_INFO_ACCESS_free(aia);
  X509_free(x);
  EVP_PKEY_free(sim);
  soft_ca_free(&ca);
}

/* Names: UTF-8 up to 64 characters (ub-common-name), no further. */
static void test_sim_cert_names(void) {
  soft_ca ca;
  EVP_PKEY *sim = ec_key();
  gw_pki_holder h = holder1;
  char name[512];
  X509 *x = NULL;

  T_ASSERT(soft_ca_new(&ca) == 0);
  /* 64 Arabic letters (128 bytes) fit. */
  name[0] = '\0';
  for (int i = 0; i < 64; i++) {
    strcat(name, "\xd8\xb3");
  }
  h.name = name;
  T_EQ_INT(
      gw_pki_make_sim_cert(ca.issuing, ca.issuing_key, sim, &h, NULL, 1, &x),
      GW_OK);
  if (x) {
    T_EQ_STR(name_entry(X509_get_subject_name(x), NID_commonName), name);
    X509_free(x);
    x = NULL;
  }
  strcat(name, "x"); /* 65 characters */
  T_EQ_INT(
      gw_pki_make_sim_cert(ca.issuing, ca.issuing_key, sim, &h, NULL, 1, &x),
      GW_ERR_INVALID);
  h.name = "bad \xc3\x28";
  T_EQ_INT(
      gw_pki_make_sim_cert(ca.issuing, ca.issuing_key, sim, &h, NULL, 1, &x),
      GW_ERR_INVALID);
  h = holder1;
  h.civil_id = "";
  T_EQ_INT(
      gw_pki_make_sim_cert(ca.issuing, ca.issuing_key, sim, &h, NULL, 1, &x),
      GW_ERR_INVALID);
  h = holder1;
  h.msisdn = NULL;
  T_EQ_INT(
      gw_pki_make_sim_cert(ca.issuing, ca.issuing_key, sim, &h, NULL, 1, &x),
      GW_ERR_INVALID);
  T_ASSERT(x == NULL);
  ERR_clear_error();
  EVP_PKEY_free(sim);
  soft_ca_free(&ca);
}

static void test_ocsp_signer(void) {
  soft_ca ca;
  EVP_PKEY *k = ec_key();
  X509 *x = NULL;

  T_ASSERT(soft_ca_new(&ca) == 0);
  T_EQ_INT(gw_pki_make_ocsp_signer(ca.issuing, ca.issuing_key, k,
                                   GW_PKI_OCSP_DAYS, &x),
           GW_OK);
  if (x) {
    T_EQ_INT(verify_chain(ca.root, ca.issuing, x, NULL), X509_V_OK);
    T_ASSERT(X509_get_extended_key_usage(x) & XKU_OCSP_SIGN);
    T_ASSERT(has_ext(x, NID_id_pkix_OCSP_noCheck));
    T_EQ_INT(X509_check_ca(x), 0);
    T_EQ_STR(name_entry(X509_get_subject_name(x), NID_commonName),
             GW_PKI_OCSP_CN);
  }
  X509_free(x);
  EVP_PKEY_free(k);
  soft_ca_free(&ca);
}

static void test_crl(void) {
  soft_ca ca;
  EVP_PKEY *k1 = ec_key(), *k2 = ec_key();
  X509 *good = NULL, *bad = NULL;
  X509_CRL *crl = NULL;
  gw_pki_revoked list[3];
  ASN1_INTEGER *num;
  int days = 0, secs = 0;

  T_ASSERT(soft_ca_new(&ca) == 0);
  gw_pki_make_sim_cert(ca.issuing, ca.issuing_key, k1, &holder1, NULL, 10,
                       &good);
  gw_pki_make_sim_cert(ca.issuing, ca.issuing_key, k2, &holder1, NULL, 10,
                       &bad);
  T_ASSERT(good && bad);
  if (!good || !bad) {
    goto done;
  }
  memset(list, 0, sizeof(list));
  gw_pki_serial_hex(bad, list[0].serial, sizeof(list[0].serial));
  list[0].when = 1700000000;
  list[0].reason = GW_PKI_REASON_KEY_COMPROMISE;
  snprintf(list[1].serial, sizeof(list[1].serial), "0A");
  list[1].when = 1700000001;
  list[1].reason = GW_PKI_REASON_NONE;
  snprintf(list[2].serial, sizeof(list[2].serial), "0B");
  list[2].when = 1700000002;
  list[2].reason = GW_PKI_REASON_UNSPECIFIED;
  T_EQ_INT(gw_pki_make_crl(ca.issuing, ca.issuing_key, list, 3, 42, 7, &crl),
           GW_OK);
  if (!crl) {
    goto done;
  }
  T_EQ_INT(X509_CRL_verify(crl, ca.issuing_key), 1);
  T_EQ_INT(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
  T_EQ_INT(X509_NAME_cmp(X509_CRL_get_issuer(crl),
                         X509_get_subject_name(ca.issuing)),
           0);
  num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
  T_ASSERT(num && ASN1_INTEGER_get(num) == 42);
  ASN1_INTEGER_free(num);
  T_ASSERT(X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1) >= 0);
  ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl),
                 X509_CRL_get0_nextUpdate(crl));
  T_EQ_INT(days, 7);
  T_EQ_INT(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 3);
  /* The reason is there for keyCompromise, absent for none and for
   * unspecified (RFC 5280 §5.3.1). */
  for (int i = 0; i < sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)); i++) {
    X509_REVOKED *r = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(crl), i);
    ASN1_ENUMERATED *e =
        X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), NULL);
    char *hex = BN_bn2hex(bn);
    if (strcmp(hex, list[0].serial) == 0) {
      T_ASSERT(e && ASN1_ENUMERATED_get(e) == 1);
      T_EQ_INT(
          ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(r), 1700000000),
          0);
    } else {
      T_ASSERT(e == NULL);
    }
    ASN1_ENUMERATED_free(e);
    OPENSSL_free(hex);
    BN_free(bn);
  }
  /* OpenSSL's verifier agrees: one revoked, one good. */
  T_EQ_INT(verify_chain(ca.root, ca.issuing, bad, crl),
           X509_V_ERR_CERT_REVOKED);
  T_EQ_INT(verify_chain(ca.root, ca.issuing, good, crl), X509_V_OK);
  X509_CRL_free(crl);
  crl = NULL;

  /* An empty CRL; a malformed serial is refused. */
  T_EQ_INT(gw_pki_make_crl(ca.issuing, ca.issuing_key, NULL, 0, 1, 1, &crl),
           GW_OK);
  X509_CRL_free(crl);
  crl = NULL;
  snprintf(list[1].serial, sizeof(list[1].serial), "XYZ");
  T_EQ_INT(gw_pki_make_crl(ca.issuing, ca.issuing_key, list, 2, 1, 1, &crl),
           GW_ERR_INVALID);
  T_EQ_INT(gw_pki_make_crl(ca.issuing, ca.issuing_key, list, 1, -1, 1, &crl),
           GW_ERR_INVALID);
  T_ASSERT(crl == NULL);
done:
  ERR_clear_error();
  X509_free(good);
  X509_free(bad);
  EVP_PKEY_free(k1);
  EVP_PKEY_free(k2);
  soft_ca_free(&ca);
}

static void test_serial_hex(void) {
  X509 *x = X509_new();
  char buf[GW_PKI_SERIAL_HEX_MAX + 1], small[4];

  ASN1_INTEGER_set(X509_get_serialNumber(x), 0);
  T_EQ_INT(gw_pki_serial_hex(x, buf, sizeof(buf)), GW_OK);
  T_EQ_STR(buf, "00");
  ASN1_INTEGER_set(X509_get_serialNumber(x), 0xabc);
  T_EQ_INT(gw_pki_serial_hex(x, buf, sizeof(buf)), GW_OK);
  T_EQ_STR(buf, "0ABC"); /* even length, upper case: as openssl ca */
  T_EQ_INT(gw_pki_serial_hex(x, small, sizeof(small)), GW_ERR_TOO_LARGE);
  T_EQ_INT(gw_pki_serial_hex(NULL, buf, sizeof(buf)), GW_ERR_INVALID);
  X509_free(x);
}

/* A fixed vector made with the openssl command line:
 * openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary |
 * base64 | tr '+/' '-_' | tr -d '=' */
/* |tmpl| with the first "@" replaced by |k1|, the second by |k2|, and
 * "@3" by |k2| cut by one character. */
static void fill_kids(char *out, size_t cap, const char *tmpl, const char *k1,
                      const char *k2) {
  size_t o = 0;
  int n = 0;

  for (const char *p = tmpl; *p && o + 50 < cap; p++) {
    if (*p != '@') {
      out[o++] = *p;
      continue;
    }
    if (p[1] == '3') {
      memcpy(out + o, k2, strlen(k2) - 1);
      o += strlen(k2) - 1;
      p++;
    } else {
      const char *k = n++ == 0 ? k1 : k2;
      memcpy(out + o, k, strlen(k));
      o += strlen(k);
    }
  }
  out[o] = '\0';
}

/* The key list: the two-line file of `gateway-key init`, the full form
 * of `gateway-key rotate`, refusals, and the states over time. */
static void test_gwkeys_parse_states(void) {
  static const char K1[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  static const char K2[] = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
  static const char K3[] = "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC-";
  static const char K4[] = "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD_";
  gw_pki_gwkeys *ks = calloc(1, sizeof(*ks));
  char text[2048], err[256];

  T_ASSERT(ks != NULL);
  if (!ks) {
    return;
  }
  /* Old format: two current keys with the historical names. */
  snprintf(text, sizeof(text), "# kids\n\nES256 %s\nRS256 %s", K1, K2);
  T_EQ_INT(gw_pki_gwkeys_parse(text, "kids", ks, err, sizeof(err)), GW_OK);
  T_EQ_INT(ks->n, 2);
  T_EQ_STR(ks->k[0].label, "es256");
  T_EQ_STR(ks->k[0].file, "es256.pem");
  T_EQ_STR(ks->k[1].label, "rs256");
  T_EQ_STR(ks->k[1].file, "rs256.pem");
  T_EQ_INT(ks->k[0].publish_at + ks->k[0].sign_from + ks->k[0].retire_at, 0);
  T_EQ_INT(gw_pki_gwkey_state_at(ks, 0, 1000), GW_PKI_GWKEY_SIGNING);
  T_EQ_INT(gw_pki_gwkey_current(ks, "RS256", 1000), 1);

  /* After a rotation at t=1000 with a lead of 600 and a keep of 360. */
  snprintf(text, sizeof(text),
           "ES256 %s\n"
           "RS256 %s rs256 rs256.pem\n"
           "ES256 %s es256-1 es256-1.pem 1000 1600 -\n"
           "RS256 %s rs256-1 rs256-1.pem 1000 1600 -\n",
           K1, K2, K3, K4);
  /* (the two old keys get their retirement written out) */
  {
    char full[2048];
    snprintf(full, sizeof(full),
             "ES256 %s es256 es256.pem 0 0 1960\n"
             "RS256 %s rs256 rs256.pem 0 0 1960 # comment\n%s",
             K1, K2, strchr(strchr(text, '\n') + 1, '\n') + 1);
    T_EQ_INT(gw_pki_gwkeys_parse(full, "kids", ks, err, sizeof(err)), GW_OK);
  }
  T_EQ_INT(ks->n, 4);
  T_EQ_INT(ks->k[0].retire_at, 1960);
  T_EQ_INT(ks->k[2].sign_from, 1600);
  T_EQ_INT(ks->k[2].retire_at, 0);
  /* before the lead: the old key signs, the new one is published */
  T_EQ_INT(gw_pki_gwkey_state_at(ks, 0, 1200), GW_PKI_GWKEY_SIGNING);
  T_EQ_INT(gw_pki_gwkey_state_at(ks, 2, 1200), GW_PKI_GWKEY_PUBLISHED);
  T_EQ_INT(gw_pki_gwkey_state_at(ks, 2, 999), GW_PKI_GWKEY_PENDING);
  T_EQ_INT(gw_pki_gwkey_current(ks, "ES256", 1599), 0);
  /* after: the new one signs, the old one is retiring, then retired */
  T_EQ_INT(gw_pki_gwkey_current(ks, "ES256", 1600), 2);
  T_EQ_INT(gw_pki_gwkey_state_at(ks, 0, 1600), GW_PKI_GWKEY_RETIRING);
  T_EQ_INT(gw_pki_gwkey_state_at(ks, 0, 1959), GW_PKI_GWKEY_RETIRING);
  T_EQ_INT(gw_pki_gwkey_state_at(ks, 0, 1960), GW_PKI_GWKEY_RETIRED);
  T_EQ_INT(gw_pki_gwkey_state_at(ks, 3, 1960), GW_PKI_GWKEY_SIGNING);
  T_EQ_STR(gw_pki_gwkey_state_name(GW_PKI_GWKEY_RETIRING), "retiring");

  /* Refusals, each naming the line. */
  {
    static const struct {
      const char *fmt, *needle;
    } bad[] = {
        {"ES256 @ x\nRS256 @\n", "kids:1: expected"},
        {"HS256 @\nRS256 @\n", "kids:1: unknown algorithm"},
        {"ES256 @\nES256 @ es256-1 es256-1.pem\n", "the RS256 kid is missing"},
        {"ES256 @\nES256 @\n", "kids:2: label listed twice"},
        {"ES256 @\nRS256 @3\n", "kids:2: the kid is not 43"},
        {"ES256 @ ../x es256.pem\nRS256 @\n", "kids:1: a label"},
        {"ES256 @ es256 a/b.pem\nRS256 @\n", "kids:1: a label"},
        {"ES256 @ es256 es256.pem 10 5 -\nRS256 @\n", "before PUBLISH_AT"},
        {"ES256 @ es256 es256.pem 1 2 x\nRS256 @\n", "Unix seconds"},
        {"ES256 @ es256 es256.pem -1 2 -\nRS256 @\n", "Unix seconds"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
      fill_kids(text, sizeof(text), bad[i].fmt, K1, K2);
      err[0] = '\0';
      T_EQ_INT(gw_pki_gwkeys_parse(text, "kids", ks, err, sizeof(err)),
               GW_ERR_CONFIG);
      if (!strstr(err, bad[i].needle)) {
        printf("#   case %zu: \"%s\" lacks \"%s\"\n", i, err, bad[i].needle);
        T_ASSERT(0);
      }
    }
    snprintf(text, sizeof(text), "ES256 %s\nRS256 %s\nES256 %s\n", K1, K2, K1);
    T_EQ_INT(gw_pki_gwkeys_parse(text, "kids", ks, err, sizeof(err)),
             GW_ERR_CONFIG);
    T_ASSERT(strstr(err, "kids:3: kid listed twice") != NULL);
  }
  free(ks);
}

static void test_kid(void) {
  static const char pem[] =
      "-----BEGIN PUBLIC KEY-----\n"
      "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhPiM/7XBqGCtXG/n8UuFgtjfrd2m\n"
      "vmRWv2imxL4wm//ipivuOpMgzuKAq23v30MEZrttKOrnQ2ewt+udHprGEw==\n"
      "-----END PUBLIC KEY-----\n";
  BIO *b = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
  char kid[GW_PKI_KID_LEN + 1];

  T_ASSERT(k != NULL);
  T_EQ_INT(gw_pki_kid(k, kid, sizeof(kid)), GW_OK);
  T_EQ_STR(kid, "LFyvZeBpKmB2lR5duOLHY7WDQkAOaqPE_JepMizqe_M");
  T_EQ_INT(gw_pki_kid(k, kid, GW_PKI_KID_LEN), GW_ERR_INVALID);
  T_EQ_INT(gw_pki_kid(NULL, kid, sizeof(kid)), GW_ERR_INVALID);
  EVP_PKEY_free(k);
  BIO_free(b);
}

static void test_reasons(void) {
  gw_pki_reason r = GW_PKI_REASON_NONE;

  T_EQ_INT(gw_pki_reason_parse("keyCompromise", &r), GW_OK);
  T_EQ_INT(r, GW_PKI_REASON_KEY_COMPROMISE);
  T_EQ_INT(gw_pki_reason_parse("SUPERSEDED", &r), GW_OK);
  T_EQ_INT(r, GW_PKI_REASON_SUPERSEDED);
  T_EQ_INT(gw_pki_reason_parse("cessationOfOperation", &r), GW_OK);
  T_EQ_INT(r, GW_PKI_REASON_CESSATION);
  T_EQ_INT(gw_pki_reason_parse("unspecified", &r), GW_OK);
  T_EQ_INT(r, GW_PKI_REASON_UNSPECIFIED);
  T_EQ_INT(gw_pki_reason_parse("certificateHold", &r), GW_ERR_INVALID);
  T_EQ_INT(gw_pki_reason_parse("", &r), GW_ERR_INVALID);
  T_EQ_INT(gw_pki_reason_parse(NULL, &r), GW_ERR_INVALID);
  T_EQ_STR(gw_pki_reason_name(GW_PKI_REASON_CA_COMPROMISE), "CACompromise");
  T_EQ_STR(gw_pki_reason_name(GW_PKI_REASON_NONE), "");
  T_EQ_STR(gw_pki_reason_name((gw_pki_reason)99), "?");
  T_ASSERT(strstr(gw_pki_reason_list(), "keyCompromise") != NULL);
}

/* ---- the CA database, without a token ---------------------------------- */

typedef struct walk_state {
  int n;
  char statuses[8];
  char serials[8][48];
} walk_state;

static int walk_cb(const gw_pki_index_row *row, void *arg) {
  walk_state *w = arg;

  if (w->n < 8) {
    w->statuses[w->n] = row->status;
    snprintf(w->serials[w->n], sizeof(w->serials[0]), "%s", row->serial);
  }
  w->n++;
  return GW_OK;
}

/* Writes a CA directory (software keys) with root, issuing and |index|. */
static int write_ca_dir(const char *dir, const char *index) {
  soft_ca ca;
  char path[PATH_MAX + 64];
  FILE *f;
  int rv = 0;

  rm_rf(dir);
  if (mkdir(dir, 0755) != 0 || soft_ca_new(&ca) != 0) {
    return -1;
  }
  snprintf(path, sizeof(path), "%s/root-ca.pem", dir);
  f = fopen(path, "w");
  rv |= !f || !PEM_write_X509(f, ca.root);
  if (f) {
    fclose(f);
  }
  snprintf(path, sizeof(path), "%s/issuing-ca.pem", dir);
  f = fopen(path, "w");
  rv |= !f || !PEM_write_X509(f, ca.issuing);
  if (f) {
    fclose(f);
  }
  snprintf(path, sizeof(path), "%s/index.txt", dir);
  rv |= write_text(path, index, 0644);
  soft_ca_free(&ca);
  return rv ? -1 : 0;
}

/* A config file for the tests in |tmpdir|; the caller frees it. */
static gw_config *test_config(const char *extra) {
  char text[2048], err[512];
  gw_config *cfg = NULL;

  snprintf(text, sizeof(text),
           "tls: { certificate = \"c.pem\"; private_key = \"k.pem\"; };\n"
           "store: { path = \"gw.db\"; };\n"
           "pkcs11: { module = \"" MODULE "\"; softhsm_conf = "
           "\"softhsm2.conf\"; };\n"
           "%s",
           extra ? extra : "");
  write_text(tpath("t.conf"), text, 0644);
  if (gw_config_load(&cfg, tpath("t.conf"), err, sizeof(err)) != GW_OK) {
    printf("#   config: %s\n", err);
  }
  return cfg;
}

static void test_index_revoke(void) {
  static const char index[] =
      "V\t281126212713Z\t\t0A\tunknown\t/C=OM/CN=a\n"
      "V\t281126212713Z\t\t0B\tunknown\t/C=OM/CN=b\n"
      "R\t281126212713Z\t251127212713Z,superseded\t0C\tunknown\t/C=OM/CN=c\n";
  gw_config *cfg = test_config(NULL);
  gw_pki_ca *ca = NULL, *ca2 = NULL;
  walk_state w;
  char err[512], before[4096];
  int already = -1;
  time_t when = 0;
  gw_pki_reason reason = GW_PKI_REASON_NONE;

  if (!cfg || write_ca_dir(cfg->pki_dir, index) != 0) {
    T_ASSERT(0);
    gw_config_del(cfg);
    return;
  }
  memset(&w, 0, sizeof(w));
  T_EQ_INT(gw_pki_index_walk(cfg->pki_dir, walk_cb, &w, err, sizeof(err)),
           GW_OK);
  T_EQ_INT(w.n, 3);
  T_ASSERT(memcmp(w.statuses, "VVR", 3) == 0);

  /* Revoking needs no token. */
  T_EQ_INT(gw_pki_ca_open(&ca, cfg, NULL, NULL, err, sizeof(err)), GW_OK);
  if (!ca) {
    printf("#   %s\n", err);
    gw_config_del(cfg);
    return;
  }
  T_ASSERT(gw_pki_ca_issuer(ca) != NULL);
  T_EQ_INT(gw_pki_ca_revoke(ca, "0B", GW_PKI_REASON_KEY_COMPROMISE, 1700000000,
                            &already, err, sizeof(err)),
           GW_OK);
  T_EQ_INT(already, 0);
  T_ASSERT(strstr(read_text(tpath("pki/index.txt")),
                  "R\t281126212713Z\t231114221320Z,keyCompromise\t0B\tunknown"
                  "\t/C=OM/CN=b\n") != NULL);
  /* The other lines are kept as they were. */
  T_ASSERT(strncmp(read_text(tpath("pki/index.txt")), index,
                   (size_t)(strchr(index, '\n') - index + 1)) == 0);
  /* Again (any case): nothing changes, the first reason stays. */
  snprintf(before, sizeof(before), "%s", read_text(tpath("pki/index.txt")));
  T_EQ_INT(gw_pki_ca_revoke(ca, "0b", GW_PKI_REASON_SUPERSEDED, 1700000500,
                            &already, err, sizeof(err)),
           GW_OK);
  T_EQ_INT(already, 1);
  T_EQ_STR(read_text(tpath("pki/index.txt")), before);
  T_EQ_INT(
      gw_pki_ca_revoke(ca, "0D", GW_PKI_REASON_NONE, 1, NULL, err, sizeof(err)),
      GW_ERR_NOT_FOUND);
  T_ASSERT(strstr(err, "0D is not in") != NULL);
  T_EQ_INT(gw_pki_ca_revoke(ca, "0A", GW_PKI_REASON_NONE, 1700000000, NULL, err,
                            sizeof(err)),
           GW_OK);
  memset(&w, 0, sizeof(w));
  gw_pki_index_walk(cfg->pki_dir, walk_cb, &w, err, sizeof(err));
  T_ASSERT(memcmp(w.statuses, "RRR", 3) == 0);
  /* Signing needs the module. */
  T_EQ_INT(gw_pki_ca_check_key(ca, err, sizeof(err)), GW_ERR_INVALID);
  /* The lock is released with the handle: a second open works after. */
  gw_pki_ca_del(ca);
  T_EQ_INT(gw_pki_ca_open(&ca2, cfg, NULL, NULL, err, sizeof(err)), GW_OK);
  gw_pki_ca_del(ca2);

  /* Revocation fields. */
  T_EQ_INT(
      gw_pki_index_parse_revoked("231114221320Z,keyCompromise", &when, &reason),
      GW_OK);
  T_EQ_INT(when, 1700000000);
  T_EQ_INT(reason, GW_PKI_REASON_KEY_COMPROMISE);
  T_EQ_INT(gw_pki_index_parse_revoked("231114221320Z", &when, &reason), GW_OK);
  T_EQ_INT(reason, GW_PKI_REASON_NONE);
  T_EQ_INT(gw_pki_index_parse_revoked("yesterday", &when, &reason),
           GW_ERR_INVALID);
  T_EQ_INT(gw_pki_index_parse_revoked("231114221320Z,oops", &when, &reason),
           GW_ERR_INVALID);

  /* A malformed line is named by its number. */
  write_text(tpath("pki/index.txt"),
             "V\t281126212713Z\t\t0A\tunknown\t/CN=a\nV\tonly three\n", 0644);
  T_EQ_INT(gw_pki_index_walk(cfg->pki_dir, walk_cb, &w, err, sizeof(err)),
           GW_ERR_INVALID);
  T_ASSERT(strstr(err, "index.txt:2: not a line") != NULL);
  /* An R row needs a revocation field, a V row must not have one. */
  write_text(tpath("pki/index.txt"), "R\t281126212713Z\t\t0A\tunknown\t/CN=a\n",
             0644);
  T_EQ_INT(gw_pki_index_walk(cfg->pki_dir, walk_cb, &w, err, sizeof(err)),
           GW_ERR_INVALID);
  gw_config_del(cfg);
  rm_rf(tpath("pki"));
}

static void test_ca_open_missing(void) {
  gw_config *cfg = test_config(NULL);
  gw_pki_ca *ca = NULL;
  char err[512];

  if (!cfg) {
    T_ASSERT(0);
    return;
  }
  rm_rf(cfg->pki_dir);
  T_EQ_INT(gw_pki_ca_open(&ca, cfg, NULL, NULL, err, sizeof(err)),
           GW_ERR_NOT_FOUND);
  T_ASSERT(strstr(err, "ca init") != NULL);
  mkdir(cfg->pki_dir, 0755);
  T_EQ_INT(gw_pki_ca_open(&ca, cfg, NULL, NULL, err, sizeof(err)),
           GW_ERR_NOT_FOUND);
  T_ASSERT(strstr(err, "root-ca.pem is missing") != NULL);
  T_ASSERT(ca == NULL);
  rm_rf(cfg->pki_dir);
  gw_config_del(cfg);
}

/* ---- PIN file ------------------------------------------------------------ */

static void test_pins(void) {
  const char *path = tpath("pins");
  gw_pki_pins a, b;
  char err[512];
  struct stat st;

  unlink(path);
  T_EQ_INT(gw_pki_pins_create(path, &a, err, sizeof(err)), GW_OK);
  T_ASSERT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
  T_EQ_INT(strlen(a.ca_pin), 16);
  T_ASSERT(strcmp(a.ca_pin, a.gw_pin) != 0);
  T_EQ_INT(gw_pki_pins_load(path, &b, err, sizeof(err)), GW_OK);
  T_EQ_STR(b.ca_pin, a.ca_pin);
  T_EQ_STR(b.ca_so_pin, a.ca_so_pin);
  T_EQ_STR(b.gw_pin, a.gw_pin);
  T_EQ_STR(b.gw_so_pin, a.gw_so_pin);
  /* Never over an existing file. */
  T_EQ_INT(gw_pki_pins_create(path, &b, err, sizeof(err)), GW_ERR_IO);
  gw_pki_pins_wipe(&a);
  T_EQ_STR(a.ca_pin, "");

  /* Others may not read it. */
  chmod(path, 0640);
  T_EQ_INT(gw_pki_pins_load(path, &b, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(strstr(err, "mode 0640") != NULL);
  T_ASSERT(strstr(err, "chmod 600") != NULL);
  T_EQ_STR(b.ca_pin, ""); /* wiped on failure */

  write_text(path,
             "# c\n ca.pin = 1111 \nca.so_pin=2222\n\ngateway.pin = 3333\n"
             "gateway.so_pin = 4444\n",
             0600);
  T_EQ_INT(gw_pki_pins_load(path, &b, err, sizeof(err)), GW_OK);
  T_EQ_STR(b.ca_pin, "1111");
  T_EQ_STR(b.gw_so_pin, "4444");
  write_text(path, "ca.pin = 1111\nca.so_pin = 2222\ngateway.pin = 3333\n",
             0600);
  T_EQ_INT(gw_pki_pins_load(path, &b, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(strstr(err, "gateway.so_pin is missing") != NULL);
  write_text(path, "ca.pin = 1111\nca.pim = 2222\n", 0600);
  T_EQ_INT(gw_pki_pins_load(path, &b, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(strstr(err, "pins:2: unknown name \"ca.pim\"") != NULL);
  write_text(path, "ca.pin = 111\n", 0600);
  T_EQ_INT(gw_pki_pins_load(path, &b, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(strstr(err, "pins:1: ca.pin must be 4 to") != NULL);
  T_ASSERT(strstr(err, "111 ") == NULL); /* the value is never shown */
  write_text(path, "ca.pin 1111\n", 0600);
  T_EQ_INT(gw_pki_pins_load(path, &b, err, sizeof(err)), GW_ERR_INVALID);
  unlink(path);
  T_EQ_INT(gw_pki_pins_load(path, &b, err, sizeof(err)), GW_ERR_IO);
}

/* ---- on a SoftHSM token ---------------------------------------------------
 */

static int softhsm_setup(void) {
  char text[PATH_MAX + 256];

  rm_rf(tpath("tokens"));
  if (mkdir(tpath("tokens"), 0700) != 0) {
    return -1;
  }
  snprintf(text, sizeof(text),
           "directories.tokendir = %s\nobjectstore.backend = file\n"
           "log.level = ERROR\nslots.removable = false\n",
           tpath("tokens"));
  return write_text(tpath("softhsm2.conf"), text, 0644);
}

static void test_token_ca(void) {
  gw_config *cfg = test_config(
      "pki: { ocsp_url = \"http://127.0.0.1:1/ocsp\"; crl_days = 3; };\n");
  p11_module *m = NULL;
  gw_pki_ca *ca = NULL;
  gw_pki_pins pins;
  gw_pki_gateway_kids kids;
  EVP_PKEY *sim = ec_key();
  X509 *x = NULL, *root = NULL, *issuing = NULL;
  X509_CRL *crl = NULL;
  char err[512], serial[GW_PKI_SERIAL_HEX_MAX + 1], path[PATH_MAX + 64];
  long number = 0;
  size_t entries = 99;
  FILE *f;

  if (!cfg || softhsm_setup() != 0) {
    T_ASSERT(0);
    goto done;
  }
  rm_rf(cfg->pki_dir);
  unlink(cfg->pki_pin_file);
  T_EQ_INT(gw_pki_pins_create(cfg->pki_pin_file, &pins, err, sizeof(err)),
           GW_OK);
  T_EQ_INT(gw_pki_module_open(cfg, &m, err, sizeof(err)), GW_OK);
  if (!m) {
    printf("#   %s\n", err);
    goto done;
  }
  err[0] = '\0';
  T_EQ_INT(gw_pki_ca_init(cfg, m, &pins, err, sizeof(err)), GW_OK);
  if (err[0]) {
    printf("#   %s\n", err);
  }
  /* Twice: refused, nothing changed. */
  T_EQ_INT(gw_pki_ca_init(cfg, m, &pins, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(strstr(err, "a CA exists already") != NULL);

  /* The files. */
  f = fopen(tpath("pki/root-ca.pem"), "r");
  root = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f) {
    fclose(f);
  }
  f = fopen(tpath("pki/issuing-ca.pem"), "r");
  issuing = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f) {
    fclose(f);
  }
  T_ASSERT(root && issuing);
  if (root && issuing) {
    T_EQ_INT(verify_chain(root, NULL, issuing, NULL), X509_V_OK);
  }
  T_EQ_STR(read_text(tpath("pki/index.txt.attr")), "unique_subject = no\n");
  T_EQ_STR(read_text(tpath("pki/crlnumber")), "02\n");
  T_ASSERT(strstr(read_text(tpath("pki/index.txt")), "OCSP Responder") != NULL);
  {
    struct stat st;
    T_ASSERT(stat(tpath("pki/ocsp.key"), &st) == 0 &&
             (st.st_mode & 0777) == 0600);
  }

  /* Issue with the key on the token. */
  T_EQ_INT(gw_pki_ca_open(&ca, cfg, m, pins.ca_pin, err, sizeof(err)), GW_OK);
  if (!ca) {
    printf("#   %s\n", err);
    goto done;
  }
  T_EQ_INT(gw_pki_ca_check_key(ca, err, sizeof(err)), GW_OK);
  T_EQ_INT(gw_pki_ca_issue_sim(ca, sim, &holder1, &x, err, sizeof(err)), GW_OK);
  if (!x) {
    printf("#   %s\n", err);
    goto done;
  }
  if (root && issuing) {
    T_EQ_INT(verify_chain(root, issuing, x, NULL), X509_V_OK);
  }
  T_ASSERT(has_ext(x, NID_info_access)); /* pki.ocsp_url */
  gw_pki_serial_hex(x, serial, sizeof(serial));
  snprintf(path, sizeof(path), "pki/certs/%s.pem", serial);
  T_ASSERT(access(tpath(path), R_OK) == 0);
  snprintf(
      path, sizeof(path),
      "\t\t%s\tunknown\t/C=OM/serialNumber=PNOOM-10000001/CN=Salim Al-Harthy\n",
      serial);
  T_ASSERT(strstr(read_text(tpath("pki/index.txt")), path) != NULL);

  /* Revoke and publish: CRL number 2, then 3. */
  T_EQ_INT(gw_pki_ca_revoke(ca, serial, GW_PKI_REASON_SUPERSEDED, time(NULL),
                            NULL, err, sizeof(err)),
           GW_OK);
  T_EQ_INT(gw_pki_ca_publish_crl(ca, &number, &entries, err, sizeof(err)),
           GW_OK);
  T_EQ_INT(number, 2);
  T_EQ_INT(entries, 1);
  T_EQ_INT(gw_pki_ca_publish_crl(ca, &number, &entries, err, sizeof(err)),
           GW_OK);
  T_EQ_INT(number, 3);
  T_EQ_STR(read_text(tpath("pki/crlnumber")), "04\n");
  f = fopen(cfg->pki_crl, "r");
  crl = f ? PEM_read_X509_CRL(f, NULL, NULL, NULL) : NULL;
  if (f) {
    fclose(f);
  }
  T_ASSERT(crl != NULL);
  if (crl && root && issuing) {
    int days = 0, secs = 0;
    T_EQ_INT(X509_CRL_verify(crl, X509_get0_pubkey(issuing)), 1);
    ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl),
                   X509_CRL_get0_nextUpdate(crl));
    T_EQ_INT(days, 3); /* pki.crl_days */
    T_EQ_INT(verify_chain(root, issuing, x, crl), X509_V_ERR_CERT_REVOKED);
  }
  gw_pki_ca_del(ca);
  ca = NULL;

  /* A wrong PIN is named as such. */
  T_EQ_INT(gw_pki_ca_open(&ca, cfg, m, "99999999", err, sizeof(err)), GW_OK);
  T_EQ_INT(gw_pki_ca_check_key(ca, err, sizeof(err)), GW_ERR_INVALID);
  T_ASSERT(strstr(err, "wrong PIN") != NULL);
  T_ASSERT(strstr(err, "99999999") == NULL);
  gw_pki_ca_del(ca);
  ca = NULL;

  /* The gateway's keys. */
  T_EQ_INT(gw_pki_gateway_keys_init(cfg, m, &pins, &kids, err, sizeof(err)),
           GW_OK);
  T_EQ_INT(strlen(kids.es256), GW_PKI_KID_LEN);
  T_EQ_INT(strlen(kids.rs256), GW_PKI_KID_LEN);
  {
    EVP_PKEY *es = NULL, *rs = NULL;
    char kid[GW_PKI_KID_LEN + 1], want[128];
    f = fopen(tpath("keys/es256.pem"), "r");
    es = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
    if (f) {
      fclose(f);
    }
    f = fopen(tpath("keys/rs256.pem"), "r");
    rs = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
    if (f) {
      fclose(f);
    }
    T_ASSERT(es && EVP_PKEY_get_base_id(es) == EVP_PKEY_EC);
    T_ASSERT(rs && EVP_PKEY_get_base_id(rs) == EVP_PKEY_RSA &&
             EVP_PKEY_get_bits(rs) == 2048);
    if (es) {
      gw_pki_kid(es, kid, sizeof(kid));
      T_EQ_STR(kid, kids.es256);
    }
    snprintf(want, sizeof(want), "ES256 %s\nRS256 %s\n", kids.es256,
             kids.rs256);
    T_EQ_STR(read_text(tpath("keys/kids")), want);
    EVP_PKEY_free(es);
    EVP_PKEY_free(rs);
  }
  T_EQ_INT(gw_pki_gateway_keys_init(cfg, m, &pins, &kids, err, sizeof(err)),
           GW_ERR_INVALID);
  T_ASSERT(strstr(err, "exists already") != NULL);

done:
  ERR_clear_error();
  gw_pki_ca_del(ca);
  p11_module_del(m);
  X509_free(x);
  X509_free(root);
  X509_free(issuing);
  X509_CRL_free(crl);
  EVP_PKEY_free(sim);
  gw_pki_pins_wipe(&pins);
  if (cfg) {
    rm_rf(cfg->pki_dir);
    unlink(cfg->pki_pin_file);
  }
  rm_rf(tpath("keys"));
  rm_rf(tpath("tokens"));
  gw_config_del(cfg);
}

/* A missing SoftHSM configuration or module is named. */
static void test_module_open_errors(void) {
  gw_config *cfg = NULL;
  p11_module *m = NULL;
  char err[512];

  write_text(tpath("t2.conf"),
             "tls: { certificate = \"c\"; private_key = \"k\"; };\n"
             "pkcs11: { softhsm_conf = \"nope.conf\"; };\n",
             0644);
  T_EQ_INT(gw_config_load(&cfg, tpath("t2.conf"), err, sizeof(err)), GW_OK);
  if (!cfg) {
    return;
  }
  T_EQ_INT(gw_pki_module_open(cfg, &m, err, sizeof(err)), GW_ERR_IO);
  T_ASSERT(strstr(err, "pkcs11.softhsm_conf") != NULL);
  T_ASSERT(strstr(err, "nope.conf") != NULL);
  gw_config_del(cfg);
  write_text(tpath("t2.conf"),
             "tls: { certificate = \"c\"; private_key = \"k\"; };\n"
             "pkcs11: { module = \"/nonexistent/lib.so\"; softhsm_conf = "
             "\"\"; };\n",
             0644);
  cfg = NULL;
  T_EQ_INT(gw_config_load(&cfg, tpath("t2.conf"), err, sizeof(err)), GW_OK);
  if (cfg) {
    T_EQ_INT(gw_pki_module_open(cfg, &m, err, sizeof(err)), GW_ERR_IO);
    T_ASSERT(strstr(err, "pkcs11.module") != NULL);
  }
  T_ASSERT(m == NULL);
  gw_config_del(cfg);
  unlink(tpath("t2.conf"));
}

int main(void) {
  char tmpl[] = "/tmp/gw_pki_test.XXXXXX";

  gw_log_min_level = GW_LOG_ERROR;
  if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir)) {
    printf("not ok - mkdtemp: %s\n", strerror(errno));
    return 1;
  }
  T_RUN(test_root_and_issuing);
  T_RUN(test_sim_cert);
  T_RUN(test_sim_cert_aia);
  T_RUN(test_sim_cert_names);
  T_RUN(test_ocsp_signer);
  T_RUN(test_crl);
  T_RUN(test_serial_hex);
  T_RUN(test_kid);
  T_RUN(test_gwkeys_parse_states);
  T_RUN(test_reasons);
  T_RUN(test_index_revoke);
  T_RUN(test_ca_open_missing);
  T_RUN(test_pins);
  T_RUN(test_token_ca);
  T_RUN(test_module_open_errors);
  rm_rf(tmpdir);
  return T_DONE();
}
