/* gw_pki.c — the demo national PKI: certificate builders, the OpenSSL-format
 * CA database, the PIN file, and the CA and gateway keys on PKCS#11 tokens.
 * See gw_pki.h and docs/pki.md. */
#include "gw_pki.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "gw_err.h"

/* Files under pki.dir. */
#define PKI_F_ROOT "root-ca.pem"
#define PKI_F_ISSUING "issuing-ca.pem"
#define PKI_F_OCSP_CERT "ocsp.pem"
#define PKI_F_OCSP_KEY "ocsp.key"
#define PKI_F_INDEX "index.txt"
#define PKI_F_INDEX_ATTR "index.txt.attr"
#define PKI_F_CRLNUMBER "crlnumber"
#define PKI_F_CERTS "certs"
#define PKI_F_LOCK ".lock"

/* index.txt may grow with every SIM; a million rows stay below this. */
#define PKI_INDEX_MAX (256 * 1024 * 1024)
#define PKI_SMALL_FILE_MAX (1024 * 1024)
#define PKI_LOCK_WAIT_MS 10000

/* ---- errors ------------------------------------------------------------ */

/* Writes "<what>: <OpenSSL's first reason>" and empties the error queue.
 * Returns GW_ERR_TLS. */
static int pki_ossl(char *err, size_t errlen, const char *what) {
  unsigned long e = ERR_peek_error();
  char reason[256];

  if (e) {
    ERR_error_string_n(e, reason, sizeof(reason));
  } else {
    snprintf(reason, sizeof(reason), "no detail from OpenSSL");
  }
  ERR_clear_error();
  gw_errf(err, errlen, "%s: %s", what, reason);
  return GW_ERR_TLS;
}

int gw_pki_p11_err(int p11_rv) {
  switch (p11_rv) {
  case P11_OK:
    return GW_OK;
  case P11_ERR_NOMEM:
    return GW_ERR_NOMEM;
  case P11_ERR_NO_TOKEN:
  case P11_ERR_NO_KEY:
    return GW_ERR_NOT_FOUND;
  case P11_ERR_INVALID:
  case P11_ERR_PIN_INCORRECT:
  case P11_ERR_PIN_LOCKED:
  case P11_ERR_PIN_INVALID:
  case P11_ERR_TOKEN_EXISTS:
    return GW_ERR_INVALID;
  case P11_ERR_BUSY:
    return GW_ERR_BUSY;
  default:
    return GW_ERR_IO;
  }
}

/* ---- revocation reasons ------------------------------------------------ */

/* Indexed by gw_pki_reason; the spelling of RFC 5280 and of openssl ca. */
static const char *const pki_reasons[] = {
    "unspecified",        "keyCompromise", "CACompromise",
    "affiliationChanged", "superseded",    "cessationOfOperation",
};
#define PKI_NREASONS (sizeof(pki_reasons) / sizeof(pki_reasons[0]))

int gw_pki_reason_parse(const char *name, gw_pki_reason *out) {
  if (!name || !out) {
    return GW_ERR_INVALID;
  }
  for (size_t i = 0; i < PKI_NREASONS; i++) {
    if (strcasecmp(name, pki_reasons[i]) == 0) {
      *out = (gw_pki_reason)i;
      return GW_OK;
    }
  }
  return GW_ERR_INVALID;
}

const char *gw_pki_reason_name(gw_pki_reason r) {
  if (r == GW_PKI_REASON_NONE) {
    return "";
  }
  if ((int)r < 0 || (size_t)r >= PKI_NREASONS) {
    return "?";
  }
  return pki_reasons[r];
}

const char *gw_pki_reason_list(void) {
  return "keyCompromise|CACompromise|affiliationChanged|superseded|"
         "cessationOfOperation|unspecified";
}

/* ---- files ------------------------------------------------------------- */

static int pki_path(char *buf, size_t cap, const char *dir, const char *name) {
  int n = snprintf(buf, cap, "%s/%s", dir, name);

  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Writes |len| bytes to |path| through a temporary file in the same
 * directory, fsync and rename: readers (openssl ocsp, the gateway's CRL
 * reloader) see the old file or the new one, never half of one. */
static int pki_write_file(const char *path, const void *data, size_t len,
                          mode_t mode, char *err, size_t errlen) {
  char tmp[PATH_MAX];
  const char *p = data;
  int fd, e;

  if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
      (int)sizeof(tmp)) {
    gw_errf(err, errlen, "path too long: %s", path);
    return GW_ERR_IO;
  }
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    gw_errf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
    return GW_ERR_IO;
  }
  if (fchmod(fd, mode) != 0) {
    goto fail;
  }
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      goto fail;
    }
    p += n;
    len -= (size_t)n;
  }
  if (fsync(fd) != 0) {
    goto fail;
  }
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    goto fail;
  }
  return GW_OK;

fail:
  e = errno;
  if (fd >= 0) {
    close(fd);
  }
  unlink(tmp);
  gw_errf(err, errlen, "cannot write %s: %s", path, strerror(e));
  return GW_ERR_IO;
}

/* Reads |path| (at most |cap| bytes) into a new NUL-terminated buffer.
 * Returns GW_OK, GW_ERR_IO (errno says why; ENOENT for a missing file),
 * GW_ERR_TOO_LARGE or GW_ERR_NOMEM. */
static int pki_read_file(const char *path, size_t cap, char **out,
                         size_t *outlen) {
  struct stat st;
  char *buf;
  size_t got = 0;
  int fd;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return GW_ERR_IO;
  }
  if (fstat(fd, &st) != 0) {
    close(fd);
    return GW_ERR_IO;
  }
  if ((unsigned long long)st.st_size > cap) {
    close(fd);
    return GW_ERR_TOO_LARGE;
  }
  buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    close(fd);
    return GW_ERR_NOMEM;
  }
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break; /* the file shrank: take what is there */
    }
    got += (size_t)n;
  }
  close(fd);
  buf[got] = '\0';
  *out = buf;
  if (outlen) {
    *outlen = got;
  }
  return GW_OK;
}

static int pki_mkdir(const char *dir, mode_t mode, char *err, size_t errlen) {
  struct stat st;

  if (mkdir(dir, mode) == 0) {
    return GW_OK;
  }
  if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
    return GW_OK;
  }
  gw_errf(err, errlen, "cannot create directory %s: %s", dir,
          errno == EEXIST ? "a file is in the way" : strerror(errno));
  return GW_ERR_IO;
}

/* PEM of a certificate, CRL, key... through a memory BIO. */
static int pki_bio_bytes(BIO *b, char **data, size_t *len) {
  char *p;
  long n = BIO_get_mem_data(b, &p);

  if (n <= 0) {
    return GW_ERR_TLS;
  }
  *data = p;
  *len = (size_t)n;
  return GW_OK;
}

static int pki_write_cert(const char *path, X509 *x, char *err, size_t errlen) {
  BIO *b = BIO_new(BIO_s_mem());
  char *data;
  size_t len;
  int rv;

  if (!b || !PEM_write_bio_X509(b, x) || pki_bio_bytes(b, &data, &len)) {
    BIO_free(b);
    return pki_ossl(err, errlen, "cannot encode a certificate");
  }
  rv = pki_write_file(path, data, len, 0644, err, errlen);
  BIO_free(b);
  return rv;
}

static int pki_read_cert(const char *path, X509 **out, char *err,
                         size_t errlen) {
  BIO *b = BIO_new_file(path, "r");
  X509 *x;

  if (!b) {
    int e = errno;
    ERR_clear_error();
    gw_errf(err, errlen, "cannot read %s: %s", path, strerror(e));
    return e == ENOENT ? GW_ERR_NOT_FOUND : GW_ERR_IO;
  }
  x = PEM_read_bio_X509(b, NULL, NULL, NULL);
  BIO_free(b);
  if (!x) {
    char what[PATH_MAX + 32];
    snprintf(what, sizeof(what), "%s is not a PEM certificate", path);
    return pki_ossl(err, errlen, what);
  }
  *out = x;
  return GW_OK;
}

/* Takes the directory's write lock, waiting up to PKI_LOCK_WAIT_MS for
 * another mpkictl. The lock goes with the descriptor (close releases it,
 * also when the process dies). */
static int pki_lock(const char *dir, int *fd_out, char *err, size_t errlen) {
  char path[PATH_MAX];
  struct timespec ts = {0, 50 * 1000 * 1000};
  int fd, waited = 0;

  if (pki_path(path, sizeof(path), dir, PKI_F_LOCK) != 0) {
    gw_errf(err, errlen, "path too long: %s", dir);
    return GW_ERR_IO;
  }
  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    gw_errf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return GW_ERR_IO;
  }
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      gw_errf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
      close(fd);
      return GW_ERR_IO;
    }
    if (waited >= PKI_LOCK_WAIT_MS) {
      gw_errf(err, errlen,
              "%s is locked by another mpkictl for more than %d s; try again "
              "when it has finished",
              dir, PKI_LOCK_WAIT_MS / 1000);
      close(fd);
      return GW_ERR_BUSY;
    }
    nanosleep(&ts, NULL);
    waited += 50;
  }
  *fd_out = fd;
  return GW_OK;
}

/* ---- certificate builders ---------------------------------------------- */

/* A random positive 128-bit serial (CA/Browser Forum style: at least 64
 * bits of randomness, so serials cannot be predicted or collide). */
static int pki_set_serial(X509 *x) {
  unsigned char b[16];
  BIGNUM *bn;
  int ok;

  if (RAND_bytes(b, sizeof(b)) != 1) {
    return GW_ERR_TLS;
  }
  b[0] &= 0x7f; /* positive */
  if (b[0] == 0) {
    b[0] = 0x01; /* always 16 bytes, no leading zero octet */
  }
  bn = BN_bin2bn(b, sizeof(b), NULL);
  if (!bn) {
    return GW_ERR_NOMEM;
  }
  ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
  BN_free(bn);
  return ok ? GW_OK : GW_ERR_TLS;
}

/* Adds an extension written in OpenSSL's configuration syntax. Only
 * constant values come here; anything from a user is built as a
 * structure (pki_add_uri_*), so that a comma cannot inject a field. */
static int pki_add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
  X509V3_CTX ctx;
  X509_EXTENSION *ext;
  int ok;

  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!ext) {
    return GW_ERR_TLS;
  }
  ok = X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  return ok ? GW_OK : GW_ERR_TLS;
}

static GENERAL_NAME *pki_uri_name(const char *uri) {
  GENERAL_NAME *gn = GENERAL_NAME_new();
  ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

  if (!gn || !ia5 || !ASN1_STRING_set(ia5, uri, (int)strlen(uri))) {
    GENERAL_NAME_free(gn);
    ASN1_IA5STRING_free(ia5);
    return NULL;
  }
  GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
  return gn;
}

/* subjectAltName with one URI. */
static int pki_add_san_uri(X509 *x, const char *uri) {
  GENERAL_NAMES *gens = GENERAL_NAMES_new();
  GENERAL_NAME *gn = pki_uri_name(uri);
  int ok = 0;

  if (gens && gn && sk_GENERAL_NAME_push(gens, gn)) {
    gn = NULL;
    ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
                           X509V3_ADD_DEFAULT) == 1;
  }
  GENERAL_NAME_free(gn);
  GENERAL_NAMES_free(gens);
  return ok ? GW_OK : GW_ERR_TLS;
}

/* authorityInfoAccess with one OCSP URI. */
static int pki_add_aia_ocsp(X509 *x, const char *url) {
  AUTHORITY_INFO_ACCESS *aia = AUTHORITY_INFO_ACCESS_new();
  ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
  GENERAL_NAME *gn = pki_uri_name(url);
  int ok = 0;

  if (aia && ad && gn) {
    ASN1_OBJECT_free(ad->method);
    ad->method = OBJ_nid2obj(NID_ad_OCSP);
    GENERAL_NAME_free(ad->location);
    ad->location = gn;
    gn = NULL;
    if (sk_ACCESS_DESCRIPTION_push(aia, ad)) {
      ad = NULL;
      ok = X509_add1_ext_i2d(x, NID_info_access, aia, 0, X509V3_ADD_DEFAULT) ==
           1;
    }
  }
  GENERAL_NAME_free(gn);
  ACCESS_DESCRIPTION_free(ad);
  AUTHORITY_INFO_ACCESS_free(aia);
  return ok ? GW_OK : GW_ERR_TLS;
}

/* C=OM, O=<org>, CN=<cn> for the CA certificates. */
static X509_NAME *pki_ca_name(const char *cn) {
  X509_NAME *n = X509_NAME_new();

  if (!n ||
      !X509_NAME_add_entry_by_NID(n, NID_countryName, MBSTRING_ASC,
                                  (const unsigned char *)"OM", -1, -1, 0) ||
      !X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
                                  (const unsigned char *)GW_PKI_ORG, -1, -1,
                                  0) ||
      !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
                                  (const unsigned char *)cn, -1, -1, 0)) {
    X509_NAME_free(n);
    return NULL;
  }
  return n;
}

/* A version 3 certificate for |pub| named |subject|, issued by |issuer|
 * (NULL: self-issued), valid from now for |days|, with a random serial and
 * the subject key identifier. */
static int pki_new_cert(X509 **out, X509_NAME *subject, X509 *issuer,
                        EVP_PKEY *pub, int days) {
  X509 *x = X509_new();
  int rv = GW_ERR_TLS;

  if (!x) {
    return GW_ERR_NOMEM;
  }
  if (!X509_set_version(x, X509_VERSION_3)) {
    goto fail;
  }
  rv = pki_set_serial(x);
  if (rv != GW_OK) {
    goto fail;
  }
  rv = GW_ERR_TLS;
  if (!X509_set_subject_name(x, subject) ||
      !X509_set_issuer_name(x,
                            issuer ? X509_get_subject_name(issuer) : subject) ||
      !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
      !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) ||
      !X509_set_pubkey(x, pub)) {
    goto fail;
  }
  rv = pki_add_ext(x, issuer, NID_subject_key_identifier, "hash");
  if (rv != GW_OK) {
    goto fail;
  }
  *out = x;
  return GW_OK;

fail:
  X509_free(x);
  return rv;
}

/* Adds the authority key identifier and signs with SHA-256. */
static int pki_finish(X509 *x, X509 *issuer, EVP_PKEY *key) {
  int rv = pki_add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");

  if (rv != GW_OK) {
    return rv;
  }
  return X509_sign(x, key, EVP_sha256()) > 0 ? GW_OK : GW_ERR_TLS;
}

/* Builds a CA-issued certificate: |cn| subject, extensions |exts| (pairs of
 * nid and value, ending with 0), signed by |issuer| / |key| (NULL issuer:
 * self-signed with |key|). */
typedef struct pki_ext {
  int nid;
  const char *value;
} pki_ext;

static int pki_make_ca_style(X509 *issuer, EVP_PKEY *key, EVP_PKEY *pub,
                             const char *cn, const pki_ext *exts, int days,
                             X509 **out) {
  X509_NAME *name;
  X509 *x = NULL;
  int rv;

  if (!key || !pub || !out || days < 1) {
    return GW_ERR_INVALID;
  }
  name = pki_ca_name(cn);
  if (!name) {
    return GW_ERR_TLS;
  }
  rv = pki_new_cert(&x, name, issuer, pub, days);
  X509_NAME_free(name);
  for (; rv == GW_OK && exts->nid; exts++) {
    rv = pki_add_ext(x, issuer, exts->nid, exts->value);
  }
  if (rv == GW_OK) {
    rv = pki_finish(x, issuer, key);
  }
  if (rv != GW_OK) {
    X509_free(x);
    return rv;
  }
  *out = x;
  return GW_OK;
}

int gw_pki_make_root(EVP_PKEY *key, int days, X509 **out) {
  static const pki_ext exts[] = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_key_usage, "critical,keyCertSign,cRLSign"},
      {0, NULL}};

  return pki_make_ca_style(NULL, key, key, GW_PKI_ROOT_CN, exts, days, out);
}

int gw_pki_make_issuing(X509 *root, EVP_PKEY *root_key, EVP_PKEY *pub, int days,
                        X509 **out) {
  static const pki_ext exts[] = {
      {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
      {NID_key_usage, "critical,keyCertSign,cRLSign"},
      {0, NULL}};

  if (!root) {
    return GW_ERR_INVALID;
  }
  return pki_make_ca_style(root, root_key, pub, GW_PKI_ISSUING_CN, exts, days,
                           out);
}

int gw_pki_make_ocsp_signer(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pub,
                            int days, X509 **out) {
  static const pki_ext exts[] = {{NID_basic_constraints, "CA:FALSE"},
                                 {NID_key_usage, "critical,digitalSignature"},
                                 {NID_ext_key_usage, "OCSPSigning"},
                                 {NID_id_pkix_OCSP_noCheck, "ignored"},
                                 {0, NULL}};

  if (!issuer) {
    return GW_ERR_INVALID;
  }
  return pki_make_ca_style(issuer, issuer_key, pub, GW_PKI_OCSP_CN, exts, days,
                           out);
}

int gw_pki_make_sim_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pub,
                         const gw_pki_holder *holder, const char *ocsp_url,
                         int days, X509 **out) {
  char serial[64], uri[64];
  X509_NAME *name = NULL;
  X509 *x = NULL;
  int rv;

  if (!issuer || !issuer_key || !pub || !holder || !out || days < 1 ||
      !holder->msisdn || !holder->civil_id || !holder->name ||
      !holder->msisdn[0] || !holder->civil_id[0] || !holder->name[0]) {
    return GW_ERR_INVALID;
  }
  if (snprintf(serial, sizeof(serial), "%s%s", GW_PKI_CIVIL_PREFIX,
               holder->civil_id) >= (int)sizeof(serial) ||
      snprintf(uri, sizeof(uri), "tel:%s", holder->msisdn) >=
          (int)sizeof(uri)) {
    return GW_ERR_INVALID;
  }
  name = X509_NAME_new();
  if (!name) {
    return GW_ERR_NOMEM;
  }
  /* DER order C, serialNumber, CN: RFC 4514 prints it most specific first,
   * "CN=<name>,serialNumber=PNOOM-<civil id>,C=OM". The name is a
   * UTF8String; OpenSSL refuses more than 64 characters (ub-common-name)
   * and malformed UTF-8. */
  if (!X509_NAME_add_entry_by_NID(name, NID_countryName, MBSTRING_ASC,
                                  (const unsigned char *)"OM", -1, -1, 0) ||
      !X509_NAME_add_entry_by_NID(name, NID_serialNumber, MBSTRING_ASC,
                                  (const unsigned char *)serial, -1, -1, 0)) {
    rv = GW_ERR_INVALID;
    goto done;
  }
  if (!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                  (const unsigned char *)holder->name, -1, -1,
                                  0)) {
    ERR_clear_error();
    rv = GW_ERR_INVALID;
    goto done;
  }
  rv = pki_new_cert(&x, name, issuer, pub, days);
  if (rv == GW_OK) {
    rv = pki_add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
  }
  if (rv == GW_OK) {
    rv = pki_add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
  }
  if (rv == GW_OK) {
    rv = pki_add_san_uri(x, uri);
  }
  if (rv == GW_OK && ocsp_url && ocsp_url[0]) {
    rv = pki_add_aia_ocsp(x, ocsp_url);
  }
  if (rv == GW_OK) {
    rv = pki_finish(x, issuer, issuer_key);
  }
done:
  X509_NAME_free(name);
  if (rv != GW_OK) {
    X509_free(x);
    return rv;
  }
  *out = x;
  return GW_OK;
}

static ASN1_INTEGER *pki_serial_from_hex(const char *hex) {
  BIGNUM *bn = NULL;
  ASN1_INTEGER *ai;
  size_t n = strlen(hex);

  if (n == 0 || n > GW_PKI_SERIAL_HEX_MAX ||
      strspn(hex, "0123456789ABCDEFabcdef") != n) {
    return NULL;
  }
  if (BN_hex2bn(&bn, hex) != (int)n) {
    BN_free(bn);
    return NULL;
  }
  ai = BN_to_ASN1_INTEGER(bn, NULL);
  BN_free(bn);
  return ai;
}

int gw_pki_make_crl(X509 *issuer, EVP_PKEY *issuer_key,
                    const gw_pki_revoked *list, size_t n, long number, int days,
                    X509_CRL **out) {
  X509_CRL *crl = NULL;
  ASN1_TIME *now = NULL, *next = NULL;
  ASN1_INTEGER *num = NULL;
  X509_EXTENSION *ext;
  X509V3_CTX ctx;
  int rv = GW_ERR_TLS;

  if (!issuer || !issuer_key || (!list && n) || number < 0 || days < 1 ||
      !out) {
    return GW_ERR_INVALID;
  }
  crl = X509_CRL_new();
  now = X509_gmtime_adj(NULL, 0);
  next = X509_time_adj_ex(NULL, days, 0, NULL);
  num = ASN1_INTEGER_new();
  if (!crl || !now || !next || !num) {
    rv = GW_ERR_NOMEM;
    goto done;
  }
  if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
      !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) ||
      !X509_CRL_set1_lastUpdate(crl, now) ||
      !X509_CRL_set1_nextUpdate(crl, next)) {
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_INTEGER *serial = pki_serial_from_hex(list[i].serial);
    ASN1_TIME *when = ASN1_TIME_set(NULL, list[i].when);
    ASN1_ENUMERATED *reason = NULL;
    int ok = r && serial && when && X509_REVOKED_set_serialNumber(r, serial) &&
             X509_REVOKED_set_revocationDate(r, when);

    /* RFC 5280 §5.3.1: the reasonCode unspecified SHOULD be absent. */
    if (ok && list[i].reason > GW_PKI_REASON_UNSPECIFIED) {
      reason = ASN1_ENUMERATED_new();
      ok = reason && ASN1_ENUMERATED_set(reason, list[i].reason) &&
           X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0) == 1;
    }
    if (ok) {
      ok = X509_CRL_add0_revoked(crl, r);
    }
    ASN1_ENUMERATED_free(reason);
    ASN1_TIME_free(when);
    if (!ok) {
      X509_REVOKED_free(r);
      rv = serial ? GW_ERR_TLS : GW_ERR_INVALID;
      ASN1_INTEGER_free(serial);
      goto done;
    }
    ASN1_INTEGER_free(serial);
  }
  if (!X509_CRL_sort(crl)) {
    goto done;
  }
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
  ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
                            "keyid:always");
  if (!ext) {
    goto done;
  }
  if (!X509_CRL_add_ext(crl, ext, -1)) {
    X509_EXTENSION_free(ext);
    goto done;
  }
  X509_EXTENSION_free(ext);
  if (!ASN1_INTEGER_set(num, number) ||
      X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1) {
    goto done;
  }
  if (X509_CRL_sign(crl, issuer_key, EVP_sha256()) <= 0) {
    goto done;
  }
  *out = crl;
  crl = NULL;
  rv = GW_OK;
done:
  X509_CRL_free(crl);
  ASN1_TIME_free(now);
  ASN1_TIME_free(next);
  ASN1_INTEGER_free(num);
  return rv;
}

int gw_pki_serial_hex(const X509 *x, char *buf, size_t cap) {
  BIGNUM *bn;
  char *hex;
  int rv = GW_OK;

  if (!x || !buf) {
    return GW_ERR_INVALID;
  }
  bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  if (!bn) {
    return GW_ERR_NOMEM;
  }
  /* As `openssl ca` and `openssl ocsp` spell it: "00" for zero. */
  hex = BN_is_zero(bn) ? OPENSSL_strdup("00") : BN_bn2hex(bn);
  BN_free(bn);
  if (!hex) {
    return GW_ERR_NOMEM;
  }
  if (strlen(hex) >= cap || strlen(hex) > GW_PKI_SERIAL_HEX_MAX) {
    rv = GW_ERR_TOO_LARGE;
  } else {
    memcpy(buf, hex, strlen(hex) + 1);
  }
  OPENSSL_free(hex);
  return rv;
}

int gw_pki_kid(EVP_PKEY *pub, char *out, size_t cap) {
  unsigned char *der = NULL, md[32];
  unsigned char b64[64];
  int len, n;

  if (!pub || !out || cap < GW_PKI_KID_LEN + 1) {
    return GW_ERR_INVALID;
  }
  len = i2d_PUBKEY(pub, &der);
  if (len <= 0) {
    return GW_ERR_INVALID;
  }
  if (!EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL)) {
    OPENSSL_free(der);
    return GW_ERR_NOMEM;
  }
  OPENSSL_free(der);
  n = EVP_EncodeBlock(b64, md, sizeof(md)); /* 44 with one '=' */
  for (int i = 0; i < n; i++) {
    b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
  }
  memcpy(out, b64, GW_PKI_KID_LEN);
  out[GW_PKI_KID_LEN] = '\0';
  return GW_OK;
}

/* ---- the CA database (index.txt) --------------------------------------- */

/* "YYMMDDHHMMSSZ" (UTCTime: index.txt's revocation field must be one; this
 * demo ends well before 2050). */
static void pki_utctime(time_t t, char *buf, size_t cap) {
  struct tm tm;

  gmtime_r(&t, &tm);
  snprintf(buf, cap, "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int gw_pki_index_parse_revoked(const char *field, time_t *when,
                               gw_pki_reason *reason) {
  char tbuf[32];
  const char *comma = strchr(field, ',');
  size_t tlen = comma ? (size_t)(comma - field) : strlen(field);
  ASN1_TIME *t;
  struct tm tm;
  int ok;

  if (tlen == 0 || tlen >= sizeof(tbuf)) {
    return GW_ERR_INVALID;
  }
  memcpy(tbuf, field, tlen);
  tbuf[tlen] = '\0';
  t = ASN1_TIME_new();
  if (!t) {
    return GW_ERR_NOMEM;
  }
  ok = ASN1_TIME_set_string(t, tbuf) && ASN1_TIME_to_tm(t, &tm);
  ASN1_TIME_free(t);
  if (!ok) {
    ERR_clear_error();
    return GW_ERR_INVALID;
  }
  *when = timegm(&tm);
  if (!comma) {
    *reason = GW_PKI_REASON_NONE;
    return GW_OK;
  }
  return gw_pki_reason_parse(comma + 1, reason);
}

/* Splits one line (without its newline) into the six tab-separated fields
 * of `openssl ca`'s database. Returns 0 or -1. */
static int pki_index_split(char *line, gw_pki_index_row *row) {
  char *f[6];
  int i;

  f[0] = line;
  for (i = 1; i < 6; i++) {
    char *tab = strchr(f[i - 1], '\t');
    if (!tab) {
      return -1;
    }
    *tab = '\0';
    f[i] = tab + 1;
  }
  if (strchr(f[5], '\t') || strlen(f[0]) != 1 || !strchr("VRE", f[0][0]) ||
      !f[1][0] || !f[3][0]) {
    return -1;
  }
  if ((f[0][0] == 'R') != (f[2][0] != '\0')) {
    return -1; /* a revocation field exactly on R rows */
  }
  row->status = f[0][0];
  row->expires = f[1];
  row->revoked = f[2];
  row->serial = f[3];
  row->file = f[4];
  row->subject = f[5];
  return 0;
}

int gw_pki_index_walk(const char *dir,
                      int (*cb)(const gw_pki_index_row *row, void *arg),
                      void *arg, char *err, size_t errlen) {
  char path[PATH_MAX], *text = NULL, *line, *next;
  gw_pki_index_row row;
  long lineno = 0;
  int rv;

  if (!dir || !cb || pki_path(path, sizeof(path), dir, PKI_F_INDEX) != 0) {
    return GW_ERR_INVALID;
  }
  rv = pki_read_file(path, PKI_INDEX_MAX, &text, NULL);
  if (rv != GW_OK) {
    gw_errf(err, errlen, "cannot read %s: %s", path,
            rv == GW_ERR_IO ? strerror(errno) : gw_strerror(rv));
    return rv;
  }
  for (line = text; *line; line = next) {
    next = strchr(line, '\n');
    if (next) {
      *next++ = '\0';
    } else {
      next = line + strlen(line);
    }
    lineno++;
    if (!line[0]) {
      continue;
    }
    if (pki_index_split(line, &row) != 0) {
      gw_errf(err, errlen,
              "%s:%ld: not a line of an OpenSSL CA database (six "
              "tab-separated fields)",
              path, lineno);
      rv = GW_ERR_INVALID;
      break;
    }
    rv = cb(&row, arg);
    if (rv != GW_OK) {
      break;
    }
  }
  free(text);
  return rv;
}

/* Appends the row of |x| (status V) to index.txt. One write() with
 * O_APPEND, then fsync: a crash leaves the line whole or absent. */
static int pki_index_add(const char *dir, X509 *x, char *err, size_t errlen) {
  char path[PATH_MAX], serial[GW_PKI_SERIAL_HEX_MAX + 1], *subject = NULL;
  char *line = NULL;
  const ASN1_TIME *na = X509_get0_notAfter(x);
  int fd, len, rv;

  rv = gw_pki_serial_hex(x, serial, sizeof(serial));
  if (rv != GW_OK) {
    gw_errf(err, errlen, "cannot encode the serial number");
    return rv;
  }
  /* X509_NAME_oneline escapes every byte outside printable ASCII as \xHH,
   * so a tab or newline in a name cannot break the line (as openssl ca). */
  subject = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
  if (!subject) {
    return GW_ERR_NOMEM;
  }
  len = asprintf(&line, "V\t%.*s\t\t%s\tunknown\t%s\n", ASN1_STRING_length(na),
                 (const char *)ASN1_STRING_get0_data(na), serial, subject);
  OPENSSL_free(subject);
  if (len < 0) {
    return GW_ERR_NOMEM;
  }
  if (pki_path(path, sizeof(path), dir, PKI_F_INDEX) != 0) {
    free(line);
    return GW_ERR_IO;
  }
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, line, (size_t)len) != len || fsync(fd) != 0) {
    gw_errf(err, errlen, "cannot append to %s: %s", path, strerror(errno));
    rv = GW_ERR_IO;
  }
  if (fd >= 0) {
    close(fd);
  }
  free(line);
  return rv;
}

/* ---- PIN file ---------------------------------------------------------- */

void gw_pki_pins_wipe(gw_pki_pins *pins) {
  if (pins) {
    OPENSSL_cleanse(pins, sizeof(*pins));
  }
}

static char *pki_trim(char *s) {
  char *e;

  while (*s == ' ' || *s == '\t') {
    s++;
  }
  e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
    *--e = '\0';
  }
  return s;
}

int gw_pki_pins_load(const char *path, gw_pki_pins *pins, char *err,
                     size_t errlen) {
  static const char *const names[4] = {"ca.pin", "ca.so_pin", "gateway.pin",
                                       "gateway.so_pin"};
  char *fields[4];
  char *text = NULL, *line, *next;
  struct stat st;
  int seen[4] = {0, 0, 0, 0}, rv, lineno = 0;
  size_t len = 0;

  if (!path || !pins) {
    return GW_ERR_INVALID;
  }
  memset(pins, 0, sizeof(*pins));
  fields[0] = pins->ca_pin;
  fields[1] = pins->ca_so_pin;
  fields[2] = pins->gw_pin;
  fields[3] = pins->gw_so_pin;
  if (stat(path, &st) != 0) {
    gw_errf(err, errlen, "cannot read the PIN file %s: %s", path,
            strerror(errno));
    return GW_ERR_IO;
  }
  if (st.st_mode & 077) {
    gw_errf(err, errlen,
            "the PIN file %s may be read by other users (mode %04o): run "
            "chmod 600 %s",
            path, (unsigned)(st.st_mode & 07777), path);
    return GW_ERR_INVALID;
  }
  rv = pki_read_file(path, 64 * 1024, &text, &len);
  if (rv != GW_OK) {
    gw_errf(err, errlen, "cannot read the PIN file %s: %s", path,
            rv == GW_ERR_IO ? strerror(errno) : gw_strerror(rv));
    return rv;
  }
  for (line = text; *line; line = next) {
    char *eq, *key, *val;
    int i;

    next = strchr(line, '\n');
    if (next) {
      *next++ = '\0';
    } else {
      next = line + strlen(line);
    }
    lineno++;
    line = pki_trim(line);
    if (!line[0] || line[0] == '#') {
      continue;
    }
    eq = strchr(line, '=');
    if (!eq) {
      gw_errf(err, errlen, "%s:%d: expected name = value", path, lineno);
      rv = GW_ERR_INVALID;
      goto done;
    }
    *eq = '\0';
    key = pki_trim(line);
    val = pki_trim(eq + 1);
    for (i = 0; i < 4; i++) {
      if (strcmp(key, names[i]) == 0) {
        break;
      }
    }
    if (i == 4) {
      /* |key| is not a secret; cut it for the message. */
      gw_errf(err, errlen,
              "%s:%d: unknown name \"%.32s\" (known: ca.pin, ca.so_pin, "
              "gateway.pin, gateway.so_pin)",
              path, lineno, key);
      rv = GW_ERR_INVALID;
      goto done;
    }
    if (strlen(val) < 4 || strlen(val) > GW_PKI_PIN_MAX) {
      gw_errf(err, errlen, "%s:%d: %s must be 4 to %d characters", path, lineno,
              names[i], GW_PKI_PIN_MAX);
      rv = GW_ERR_INVALID;
      goto done;
    }
    for (char *p = val; *p; p++) {
      if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
        gw_errf(err, errlen, "%s:%d: %s must be printable ASCII without spaces",
                path, lineno, names[i]);
        rv = GW_ERR_INVALID;
        goto done;
      }
    }
    memcpy(fields[i], val, strlen(val) + 1);
    seen[i] = 1;
  }
  for (int i = 0; i < 4; i++) {
    if (!seen[i]) {
      gw_errf(err, errlen, "%s: %s is missing", path, names[i]);
      rv = GW_ERR_INVALID;
      goto done;
    }
  }
  rv = GW_OK;
done:
  OPENSSL_cleanse(text, len);
  free(text);
  if (rv != GW_OK) {
    gw_pki_pins_wipe(pins);
  }
  return rv;
}

int gw_pki_pins_create(const char *path, gw_pki_pins *pins, char *err,
                       size_t errlen) {
  char *fields[4];
  unsigned char rnd[8];
  char text[512];
  int fd, n, rv = GW_OK;

  if (!path || !pins) {
    return GW_ERR_INVALID;
  }
  memset(pins, 0, sizeof(*pins));
  fields[0] = pins->ca_pin;
  fields[1] = pins->ca_so_pin;
  fields[2] = pins->gw_pin;
  fields[3] = pins->gw_so_pin;
  for (int i = 0; i < 4; i++) {
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
      gw_pki_pins_wipe(pins);
      return pki_ossl(err, errlen, "no randomness for the PINs");
    }
    for (size_t j = 0; j < sizeof(rnd); j++) {
      snprintf(fields[i] + 2 * j, 3, "%02x", rnd[j]);
    }
  }
  OPENSSL_cleanse(rnd, sizeof(rnd));
  n = snprintf(text, sizeof(text),
               "# PINs of the demo's PKCS#11 tokens, made by mpkictl ca init.\n"
               "# Keep this file mode 0600. A real deployment keeps its CA "
               "and gateway\n"
               "# keys in an HSM with its own PIN entry, never a PIN file.\n"
               "ca.pin = %s\nca.so_pin = %s\ngateway.pin = %s\n"
               "gateway.so_pin = %s\n",
               pins->ca_pin, pins->ca_so_pin, pins->gw_pin, pins->gw_so_pin);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    gw_errf(err, errlen, "cannot create the PIN file %s: %s", path,
            strerror(errno));
    rv = GW_ERR_IO;
  } else if (fchmod(fd, 0600) != 0 || write(fd, text, (size_t)n) != n ||
             fsync(fd) != 0) {
    gw_errf(err, errlen, "cannot write the PIN file %s: %s", path,
            strerror(errno));
    rv = GW_ERR_IO;
  }
  if (fd >= 0) {
    close(fd);
    if (rv != GW_OK) {
      unlink(path);
    }
  }
  OPENSSL_cleanse(text, sizeof(text));
  if (rv != GW_OK) {
    gw_pki_pins_wipe(pins);
  }
  return rv;
}

/* ---- the PKCS#11 module ------------------------------------------------- */

int gw_pki_module_open(const gw_config *cfg, p11_module **out, char *err,
                       size_t errlen) {
  int rv;

  if (!cfg || !out) {
    return GW_ERR_INVALID;
  }
  if (cfg->softhsm_conf[0]) {
    if (access(cfg->softhsm_conf, R_OK) != 0) {
      gw_errf(err, errlen,
              "pkcs11.softhsm_conf: cannot read %s: %s (scripts/setup.sh "
              "writes var/softhsm2.conf; see docs/pki.md)",
              cfg->softhsm_conf, strerror(errno));
      return GW_ERR_IO;
    }
    if (setenv("SOFTHSM2_CONF", cfg->softhsm_conf, 1) != 0) {
      gw_errf(err, errlen, "cannot set SOFTHSM2_CONF: %s", strerror(errno));
      return GW_ERR_IO;
    }
  }
  if (access(cfg->p11_module, R_OK) != 0) {
    gw_errf(err, errlen,
            "pkcs11.module: cannot read %s: %s (for SoftHSM: apt-get "
            "install softhsm2)",
            cfg->p11_module, strerror(errno));
    return GW_ERR_IO;
  }
  rv = p11_module_new(out, cfg->p11_module);
  if (rv != P11_OK) {
    gw_errf(err, errlen, "cannot load the PKCS#11 module %s: %s%s",
            cfg->p11_module, p11_strerror(rv),
            cfg->softhsm_conf[0]
                ? " (does the directories.tokendir of pkcs11.softhsm_conf "
                  "exist?)"
                : "");
    return gw_pki_p11_err(rv);
  }
  return GW_OK;
}

/* Describes a p11 failure on token |label| in |err|; |pin_src| says where
 * the PIN came from. Returns the mapped GW code. */
static int pki_p11_fail(int p11_rv, const char *label, const char *what,
                        const char *pin_src, char *err, size_t errlen) {
  switch (p11_rv) {
  case P11_ERR_PIN_INCORRECT:
    gw_errf(err, errlen, "token \"%s\": wrong PIN (%s)", label, pin_src);
    break;
  case P11_ERR_PIN_LOCKED:
    gw_errf(err, errlen, "token \"%s\": the PIN is locked", label);
    break;
  case P11_ERR_NO_TOKEN:
    gw_errf(err, errlen, "no token labelled \"%s\" in the PKCS#11 module",
            label);
    break;
  case P11_ERR_NO_KEY:
    gw_errf(err, errlen, "token \"%s\" has no key \"%s\"", label, what);
    break;
  default:
    gw_errf(err, errlen, "token \"%s\": %s failed: %s", label, what,
            p11_strerror(p11_rv));
    break;
  }
  return gw_pki_p11_err(p11_rv);
}

/* Finds key |label| on token |token| with |pin| and its EVP_PKEY (for
 * signing) or public key; the caller frees the EVP_PKEY, then the key. */
static int pki_token_key(p11_module *m, const char *token, const char *pin,
                         const char *pin_src, const char *label,
                         int public_only, p11_key **key, EVP_PKEY **evp,
                         char *err, size_t errlen) {
  p11_token *t = NULL;
  int rv;

  rv = p11_token_find(m, token, &t);
  if (rv != P11_OK) {
    return pki_p11_fail(rv, token, "find", pin_src, err, errlen);
  }
  rv = p11_key_find(t, pin, label, key);
  if (rv != P11_OK) {
    return pki_p11_fail(rv, token, label, pin_src, err, errlen);
  }
  rv = public_only ? p11_key_public(*key, evp) : p11_key_evp(*key, evp);
  if (rv != P11_OK) {
    p11_key_del(*key);
    *key = NULL;
    return pki_p11_fail(rv, token, label, pin_src, err, errlen);
  }
  return GW_OK;
}

/* ---- the CA ------------------------------------------------------------ */

struct gw_pki_ca {
  const gw_config *cfg;
  p11_module *m;
  char pin[GW_PKI_PIN_MAX + 1];
  char pin_src[PATH_MAX + 16]; /* where the PIN came from, for messages */
  X509 *root;
  X509 *issuing;
  /* The issuing key, found at the first signature and held until
   * gw_pki_ca_del: one login per run however many certificates are
   * issued, and SIM tokens initialised in between do not disturb it. */
  p11_key *key;
  EVP_PKEY *evp;
  int lock_fd;
};

static void pki_ca_free(gw_pki_ca *ca) {
  if (!ca) {
    return;
  }
  OPENSSL_cleanse(ca->pin, sizeof(ca->pin));
  EVP_PKEY_free(ca->evp); /* before its key */
  p11_key_del(ca->key);
  X509_free(ca->root);
  X509_free(ca->issuing);
  if (ca->lock_fd >= 0) {
    close(ca->lock_fd); /* releases the flock */
  }
  free(ca);
}

void gw_pki_ca_del(gw_pki_ca *ca) {
  pki_ca_free(ca);
}

X509 *gw_pki_ca_issuer(gw_pki_ca *ca) {
  return ca ? ca->issuing : NULL;
}

static gw_pki_ca *pki_ca_alloc(const gw_config *cfg, p11_module *m,
                               const char *pin) {
  gw_pki_ca *ca = calloc(1, sizeof(*ca));

  if (!ca) {
    return NULL;
  }
  ca->cfg = cfg;
  ca->m = m;
  ca->lock_fd = -1;
  snprintf(ca->pin, sizeof(ca->pin), "%s", pin ? pin : "");
  snprintf(ca->pin_src, sizeof(ca->pin_src), "ca.pin in %s", cfg->pki_pin_file);
  return ca;
}

/* The issuing CA's key on the token (borrowed: held by |ca|). */
static int pki_ca_issuing_key(gw_pki_ca *ca, EVP_PKEY **evp, char *err,
                              size_t errlen) {
  int rv;

  if (!ca->evp) {
    if (!ca->m) {
      gw_errf(err, errlen, "the CA was opened without its PKCS#11 module");
      return GW_ERR_INVALID;
    }
    rv = pki_token_key(ca->m, ca->cfg->pki_ca_token, ca->pin, ca->pin_src,
                       GW_PKI_ISSUING_KEY_LABEL, 0, &ca->key, &ca->evp, err,
                       errlen);
    if (rv != GW_OK) {
      return rv;
    }
  }
  *evp = ca->evp;
  return GW_OK;
}

int gw_pki_ca_check_key(gw_pki_ca *ca, char *err, size_t errlen) {
  EVP_PKEY *evp;

  if (!ca) {
    return GW_ERR_INVALID;
  }
  return pki_ca_issuing_key(ca, &evp, err, errlen);
}

int gw_pki_ca_open(gw_pki_ca **out, const gw_config *cfg, p11_module *m,
                   const char *pin, char *err, size_t errlen) {
  char path[PATH_MAX];
  struct stat st;
  gw_pki_ca *ca;
  int rv;

  if (!out || !cfg) {
    return GW_ERR_INVALID;
  }
  if (stat(cfg->pki_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    gw_errf(err, errlen, "no CA in %s (pki.dir): run `mpkictl ca init` first",
            cfg->pki_dir);
    return GW_ERR_NOT_FOUND;
  }
  ca = pki_ca_alloc(cfg, m, pin);
  if (!ca) {
    return GW_ERR_NOMEM;
  }
  rv = pki_lock(cfg->pki_dir, &ca->lock_fd, err, errlen);
  if (rv != GW_OK) {
    goto fail;
  }
  pki_path(path, sizeof(path), cfg->pki_dir, PKI_F_ROOT);
  rv = pki_read_cert(path, &ca->root, err, errlen);
  if (rv == GW_OK) {
    pki_path(path, sizeof(path), cfg->pki_dir, PKI_F_ISSUING);
    rv = pki_read_cert(path, &ca->issuing, err, errlen);
  }
  if (rv == GW_ERR_NOT_FOUND) {
    gw_errf(err, errlen,
            "no CA in %s (pki.dir): %s is missing; run `mpkictl ca init` "
            "first",
            cfg->pki_dir, path);
  }
  if (rv != GW_OK) {
    goto fail;
  }
  *out = ca;
  return GW_OK;
fail:
  pki_ca_free(ca);
  return rv;
}

int gw_pki_ca_issue_sim(gw_pki_ca *ca, EVP_PKEY *pub,
                        const gw_pki_holder *holder, X509 **out, char *err,
                        size_t errlen) {
  char path[PATH_MAX], serial[GW_PKI_SERIAL_HEX_MAX + 1], rel[64];
  EVP_PKEY *evp = NULL;
  X509 *x = NULL;
  int rv;

  if (!ca || !pub || !holder || !out) {
    return GW_ERR_INVALID;
  }
  rv = pki_ca_issuing_key(ca, &evp, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  rv = gw_pki_make_sim_cert(ca->issuing, evp, pub, holder,
                            ca->cfg->pki_ocsp_url, GW_PKI_SIM_DAYS, &x);
  if (rv == GW_ERR_INVALID) {
    gw_errf(err, errlen,
            "the certificate cannot hold this subject (a name of at most 64 "
            "characters of UTF-8)");
    ERR_clear_error();
    return rv;
  }
  if (rv != GW_OK) {
    return pki_ossl(err, errlen, "cannot sign the certificate on the token");
  }
  rv = gw_pki_serial_hex(x, serial, sizeof(serial));
  if (rv == GW_OK) {
    snprintf(rel, sizeof(rel), PKI_F_CERTS "/%s.pem", serial);
    if (pki_path(path, sizeof(path), ca->cfg->pki_dir, rel) != 0) {
      rv = GW_ERR_IO;
    }
  }
  /* The certificate file first: an index line always has its file. */
  if (rv == GW_OK) {
    rv = pki_write_cert(path, x, err, errlen);
  }
  if (rv == GW_OK) {
    rv = pki_index_add(ca->cfg->pki_dir, x, err, errlen);
  }
  if (rv != GW_OK) {
    X509_free(x);
    return rv;
  }
  *out = x;
  return GW_OK;
}

int gw_pki_ca_revoke(gw_pki_ca *ca, const char *serial, gw_pki_reason reason,
                     time_t when, int *already, char *err, size_t errlen) {
  char path[PATH_MAX], rev[64], *text = NULL, *line, *next, *outbuf = NULL;
  size_t len = 0, o = 0;
  int rv, found = 0;
  long lineno = 0;

  if (already) {
    *already = 0;
  }
  if (!ca || !serial || !serial[0]) {
    return GW_ERR_INVALID;
  }
  pki_utctime(when, rev, sizeof(rev));
  if (reason != GW_PKI_REASON_NONE) {
    size_t l = strlen(rev);
    snprintf(rev + l, sizeof(rev) - l, ",%s", gw_pki_reason_name(reason));
  }
  pki_path(path, sizeof(path), ca->cfg->pki_dir, PKI_F_INDEX);
  rv = pki_read_file(path, PKI_INDEX_MAX, &text, &len);
  if (rv != GW_OK) {
    gw_errf(err, errlen, "cannot read %s: %s", path,
            rv == GW_ERR_IO ? strerror(errno) : gw_strerror(rv));
    return rv;
  }
  /* The new file is at most one revocation field longer per line. */
  outbuf = malloc(len + sizeof(rev) + 2);
  if (!outbuf) {
    free(text);
    return GW_ERR_NOMEM;
  }
  for (line = text; *line; line = next) {
    char copy[8192];
    gw_pki_index_row row;
    size_t ll;

    next = strchr(line, '\n');
    ll = next ? (size_t)(next - line) : strlen(line);
    next = next ? next + 1 : line + ll;
    lineno++;
    if (ll == 0) {
      continue;
    }
    if (ll >= sizeof(copy)) {
      gw_errf(err, errlen, "%s:%ld: line too long", path, lineno);
      rv = GW_ERR_INVALID;
      goto done;
    }
    memcpy(copy, line, ll);
    copy[ll] = '\0';
    if (pki_index_split(copy, &row) != 0) {
      gw_errf(err, errlen,
              "%s:%ld: not a line of an OpenSSL CA database (six "
              "tab-separated fields)",
              path, lineno);
      rv = GW_ERR_INVALID;
      goto done;
    }
    if (strcasecmp(row.serial, serial) == 0) {
      if (row.status == 'R') {
        /* Nothing to change: the first time and reason stay. */
        if (already) {
          *already = 1;
        }
        rv = GW_OK;
        goto done;
      }
      found = 1;
      o += (size_t)sprintf(outbuf + o, "R\t%s\t%s\t%s\t%s\t%s\n", row.expires,
                           rev, row.serial, row.file, row.subject);
      continue;
    }
    memcpy(outbuf + o, line, ll);
    o += ll;
    outbuf[o++] = '\n';
  }
  if (!found) {
    gw_errf(err, errlen, "certificate %s is not in %s", serial, path);
    rv = GW_ERR_NOT_FOUND;
    goto done;
  }
  rv = pki_write_file(path, outbuf, o, 0644, err, errlen);
done:
  free(text);
  free(outbuf);
  return rv;
}

typedef struct pki_revlist {
  gw_pki_revoked *v;
  size_t n, cap;
  const char *path;
  char *err;
  size_t errlen;
} pki_revlist;

static int pki_collect_revoked(const gw_pki_index_row *row, void *arg) {
  pki_revlist *l = arg;
  gw_pki_revoked *r;

  if (row->status != 'R') {
    return GW_OK;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    gw_pki_revoked *v = realloc(l->v, cap * sizeof(*v));
    if (!v) {
      return GW_ERR_NOMEM;
    }
    l->v = v;
    l->cap = cap;
  }
  r = &l->v[l->n];
  if (strlen(row->serial) > GW_PKI_SERIAL_HEX_MAX ||
      gw_pki_index_parse_revoked(row->revoked, &r->when, &r->reason) != GW_OK) {
    gw_errf(l->err, l->errlen,
            "%s: the row of certificate %.48s has a malformed serial or "
            "revocation field \"%.64s\"",
            l->path, row->serial, row->revoked);
    return GW_ERR_INVALID;
  }
  snprintf(r->serial, sizeof(r->serial), "%s", row->serial);
  l->n++;
  return GW_OK;
}

/* Reads and advances crlnumber (hex, as openssl ca: the next number to
 * use). Advancing first means that a crash can skip a number but never
 * publish two different CRLs with the same one. */
static int pki_next_crl_number(const char *dir, long *number, char *err,
                               size_t errlen) {
  char path[PATH_MAX], *text = NULL, *end, buf[32];
  long n = 1;
  int rv, len;

  pki_path(path, sizeof(path), dir, PKI_F_CRLNUMBER);
  rv = pki_read_file(path, 64, &text, NULL);
  if (rv == GW_OK) {
    errno = 0;
    n = strtol(text, &end, 16);
    if (end == text || errno || n < 1 || n >= LONG_MAX / 2 ||
        (*end && *end != '\n')) {
      gw_errf(err, errlen, "%s does not hold a CRL number in hex", path);
      free(text);
      return GW_ERR_INVALID;
    }
    free(text);
  } else if (!(rv == GW_ERR_IO && errno == ENOENT)) {
    gw_errf(err, errlen, "cannot read %s: %s", path, gw_strerror(rv));
    return rv;
  }
  len = snprintf(buf, sizeof(buf), "%lX", n + 1);
  /* An even number of digits, as BN_bn2hex writes them. */
  if (len % 2) {
    len = snprintf(buf, sizeof(buf), "0%lX\n", n + 1);
  } else {
    len = snprintf(buf, sizeof(buf), "%lX\n", n + 1);
  }
  rv = pki_write_file(path, buf, (size_t)len, 0644, err, errlen);
  if (rv == GW_OK) {
    *number = n;
  }
  return rv;
}

int gw_pki_ca_publish_crl(gw_pki_ca *ca, long *number, size_t *entries,
                          char *err, size_t errlen) {
  char path[PATH_MAX];
  pki_revlist l;
  EVP_PKEY *evp = NULL;
  X509_CRL *crl = NULL;
  BIO *b = NULL;
  char *data;
  size_t len;
  long num = 0;
  int rv;

  if (!ca) {
    return GW_ERR_INVALID;
  }
  memset(&l, 0, sizeof(l));
  pki_path(path, sizeof(path), ca->cfg->pki_dir, PKI_F_INDEX);
  l.path = path;
  l.err = err;
  l.errlen = errlen;
  rv =
      gw_pki_index_walk(ca->cfg->pki_dir, pki_collect_revoked, &l, err, errlen);
  if (rv != GW_OK) {
    goto done;
  }
  rv = pki_ca_issuing_key(ca, &evp, err, errlen);
  if (rv != GW_OK) {
    goto done;
  }
  rv = pki_next_crl_number(ca->cfg->pki_dir, &num, err, errlen);
  if (rv != GW_OK) {
    goto done;
  }
  rv = gw_pki_make_crl(ca->issuing, evp, l.v, l.n, num, ca->cfg->pki_crl_days,
                       &crl);
  if (rv != GW_OK) {
    pki_ossl(err, errlen, "cannot sign the CRL on the token");
    goto done;
  }
  b = BIO_new(BIO_s_mem());
  if (!b || !PEM_write_bio_X509_CRL(b, crl) ||
      pki_bio_bytes(b, &data, &len) != GW_OK) {
    rv = pki_ossl(err, errlen, "cannot encode the CRL");
    goto done;
  }
  rv = pki_write_file(ca->cfg->pki_crl, data, len, 0644, err, errlen);
  if (rv == GW_OK) {
    if (number) {
      *number = num;
    }
    if (entries) {
      *entries = l.n;
    }
  }
done:
  BIO_free(b);
  X509_CRL_free(crl);
  free(l.v);
  return rv;
}

/* ---- ca init ------------------------------------------------------------ */

static int pki_write_key(const char *path, EVP_PKEY *k, char *err,
                         size_t errlen) {
  BIO *b = BIO_new(BIO_s_mem());
  char *data;
  size_t len;
  int rv;

  if (!b || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) ||
      pki_bio_bytes(b, &data, &len) != GW_OK) {
    BIO_free(b);
    return pki_ossl(err, errlen, "cannot encode the OCSP signer's key");
  }
  rv = pki_write_file(path, data, len, 0600, err, errlen);
  OPENSSL_cleanse(data, len);
  BIO_free(b);
  return rv;
}

/* Writes a file into |dir| (mode 0644). */
static int pki_put(const char *dir, const char *name, const char *text,
                   char *err, size_t errlen) {
  char path[PATH_MAX];

  if (pki_path(path, sizeof(path), dir, name) != 0) {
    gw_errf(err, errlen, "path too long: %s", dir);
    return GW_ERR_IO;
  }
  return pki_write_file(path, text, strlen(text), 0644, err, errlen);
}

static int pki_put_cert(const char *dir, const char *name, X509 *x, char *err,
                        size_t errlen) {
  char path[PATH_MAX];

  if (pki_path(path, sizeof(path), dir, name) != 0) {
    gw_errf(err, errlen, "path too long: %s", dir);
    return GW_ERR_IO;
  }
  return pki_write_cert(path, x, err, errlen);
}

int gw_pki_ca_init(const gw_config *cfg, p11_module *m, const gw_pki_pins *pins,
                   char *err, size_t errlen) {
  static const uint8_t root_id[] = {0x01}, issuing_id[] = {0x02};
  const char *dir, *label;
  char path[PATH_MAX], serial[GW_PKI_SERIAL_HEX_MAX + 1];
  p11_token *tok = NULL;
  p11_key *key = NULL;
  EVP_PKEY *evp = NULL, *issuing_pub = NULL, *ocsp_key = NULL;
  X509 *root = NULL, *issuing = NULL, *ocsp = NULL;
  gw_pki_ca *ca = NULL;
  int rv;

  if (!cfg || !m || !pins) {
    return GW_ERR_INVALID;
  }
  dir = cfg->pki_dir;
  label = cfg->pki_ca_token;
  ca = pki_ca_alloc(cfg, m, pins->ca_pin);
  if (!ca) {
    return GW_ERR_NOMEM;
  }
  rv = pki_mkdir(dir, 0755, err, errlen);
  if (rv == GW_OK) {
    rv = pki_lock(dir, &ca->lock_fd, err, errlen);
  }
  if (rv != GW_OK) {
    goto done;
  }
  pki_path(path, sizeof(path), dir, PKI_F_ROOT);
  if (access(path, F_OK) == 0) {
    gw_errf(err, errlen,
            "a CA exists already in %s (%s): nothing was changed; to start "
            "over, remove the directory and the token \"%s\"",
            dir, PKI_F_ROOT, label);
    rv = GW_ERR_INVALID;
    goto done;
  }
  if (p11_token_find(m, label, &tok) == P11_OK) {
    gw_errf(err, errlen,
            "token \"%s\" exists already, but %s holds no CA (an earlier "
            "`ca init` that failed half-way?): delete it with softhsm2-util "
            "--delete-token --token %s, or set another pki.ca_token",
            label, dir, label);
    rv = GW_ERR_INVALID;
    goto done;
  }

  /* The token and the two keys. */
  rv = p11_token_init(m, label, pins->ca_so_pin, pins->ca_pin, &tok);
  if (rv != P11_OK) {
    rv = pki_p11_fail(rv, label, "token initialisation", "the PIN file", err,
                      errlen);
    goto done;
  }
  rv = p11_keygen(tok, pins->ca_pin, P11_KEY_EC_P256, GW_PKI_ROOT_KEY_LABEL,
                  root_id, sizeof(root_id));
  if (rv == P11_OK) {
    rv = p11_keygen(tok, pins->ca_pin, P11_KEY_EC_P256,
                    GW_PKI_ISSUING_KEY_LABEL, issuing_id, sizeof(issuing_id));
  }
  if (rv != P11_OK) {
    rv = pki_p11_fail(rv, label, "key generation", ca->pin_src, err, errlen);
    goto done;
  }

  /* The issuing key first, held by |ca| to the end (it signs the OCSP
   * signer and the first CRL); the root key only for the two CA
   * certificates. */
  rv = pki_ca_issuing_key(ca, &evp, err, errlen);
  if (rv == GW_OK && p11_key_public(ca->key, &issuing_pub) != P11_OK) {
    gw_errf(err, errlen, "token \"%s\": cannot read the issuing public key",
            label);
    rv = GW_ERR_IO;
  }
  evp = NULL; /* borrowed from |ca| */
  if (rv != GW_OK) {
    goto done;
  }
  rv = pki_token_key(m, label, ca->pin, ca->pin_src, GW_PKI_ROOT_KEY_LABEL, 0,
                     &key, &evp, err, errlen);
  if (rv != GW_OK) {
    goto done;
  }
  rv = gw_pki_make_root(evp, GW_PKI_ROOT_DAYS, &root);
  if (rv == GW_OK) {
    rv = gw_pki_make_issuing(root, evp, issuing_pub, GW_PKI_ISSUING_DAYS,
                             &issuing);
  }
  EVP_PKEY_free(evp);
  evp = NULL;
  p11_key_del(key);
  key = NULL;
  if (rv != GW_OK) {
    rv = pki_ossl(err, errlen, "cannot sign the CA certificates on the token");
    goto done;
  }
  ocsp_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if (!ocsp_key) {
    rv = pki_ossl(err, errlen, "cannot generate the OCSP signer's key");
    goto done;
  }
  rv = gw_pki_make_ocsp_signer(issuing, ca->evp, ocsp_key, GW_PKI_OCSP_DAYS,
                               &ocsp);
  if (rv != GW_OK) {
    rv = pki_ossl(err, errlen, "cannot sign the OCSP signer certificate");
    goto done;
  }

  /* The files; root-ca.pem last, since it marks a complete CA. */
  pki_path(path, sizeof(path), dir, PKI_F_CERTS);
  rv = pki_mkdir(path, 0755, err, errlen);
  if (rv == GW_OK) {
    rv = pki_put(dir, PKI_F_INDEX, "", err, errlen);
  }
  if (rv == GW_OK) {
    /* Two SIMs of one person (both operators) have the same subject. */
    rv = pki_put(dir, PKI_F_INDEX_ATTR, "unique_subject = no\n", err, errlen);
  }
  if (rv == GW_OK) {
    rv = pki_put(dir, PKI_F_CRLNUMBER, "01\n", err, errlen);
  }
  if (rv == GW_OK) {
    pki_path(path, sizeof(path), dir, PKI_F_OCSP_KEY);
    rv = pki_write_key(path, ocsp_key, err, errlen);
  }
  if (rv == GW_OK) {
    rv = pki_put_cert(dir, PKI_F_OCSP_CERT, ocsp, err, errlen);
  }
  if (rv == GW_OK && gw_pki_serial_hex(ocsp, serial, sizeof(serial)) == GW_OK) {
    char rel[64];
    snprintf(rel, sizeof(rel), PKI_F_CERTS "/%s.pem", serial);
    rv = pki_put_cert(dir, rel, ocsp, err, errlen);
    if (rv == GW_OK) {
      rv = pki_index_add(dir, ocsp, err, errlen);
    }
  }
  ca->root = root;
  ca->issuing = issuing;
  root = issuing = NULL;
  /* A first, empty CRL, so that verifiers have one from the start. */
  if (rv == GW_OK) {
    rv = gw_pki_ca_publish_crl(ca, NULL, NULL, err, errlen);
  }
  if (rv == GW_OK) {
    rv = pki_put_cert(dir, PKI_F_ISSUING, ca->issuing, err, errlen);
  }
  if (rv == GW_OK) {
    rv = pki_put_cert(dir, PKI_F_ROOT, ca->root, err, errlen);
  }

done:
  EVP_PKEY_free(evp);
  p11_key_del(key);
  EVP_PKEY_free(issuing_pub);
  EVP_PKEY_free(ocsp_key);
  X509_free(root);
  X509_free(issuing);
  X509_free(ocsp);
  pki_ca_free(ca);
  return rv;
}

/* ---- the gateway's keys -------------------------------------------------- */

static int pki_write_pubkey(const char *dir, const char *name, EVP_PKEY *pub,
                            char *err, size_t errlen) {
  char path[PATH_MAX];
  BIO *b = BIO_new(BIO_s_mem());
  char *data;
  size_t len;
  int rv;

  if (!b || !PEM_write_bio_PUBKEY(b, pub) ||
      pki_bio_bytes(b, &data, &len) != GW_OK) {
    BIO_free(b);
    return pki_ossl(err, errlen, "cannot encode a public key");
  }
  if (pki_path(path, sizeof(path), dir, name) != 0) {
    BIO_free(b);
    gw_errf(err, errlen, "path too long: %s", dir);
    return GW_ERR_IO;
  }
  rv = pki_write_file(path, data, len, 0644, err, errlen);
  BIO_free(b);
  return rv;
}

int gw_pki_gateway_keys_init(const gw_config *cfg, p11_module *m,
                             const gw_pki_pins *pins, gw_pki_gateway_kids *kids,
                             char *err, size_t errlen) {
  static const struct {
    const char *label, *file;
    p11_keytype type;
    uint8_t id;
  } keys[2] = {{GW_PKI_ES256_LABEL, "es256.pem", P11_KEY_EC_P256, 0x01},
               {GW_PKI_RS256_LABEL, "rs256.pem", P11_KEY_RSA_2048, 0x02}};
  const char *label;
  char src[PATH_MAX + 32], text[256];
  char *kid[2];
  p11_token *tok = NULL;
  int rv;

  if (!cfg || !m || !pins || !kids) {
    return GW_ERR_INVALID;
  }
  label = cfg->gwkeys_token;
  kid[0] = kids->es256;
  kid[1] = kids->rs256;
  snprintf(src, sizeof(src), "gateway.pin in %s", cfg->pki_pin_file);
  if (p11_token_find(m, label, &tok) == P11_OK) {
    gw_errf(err, errlen,
            "token \"%s\" exists already: the gateway keys were made before "
            "(their public keys are in %s); nothing was changed",
            label, cfg->gwkeys_dir);
    return GW_ERR_INVALID;
  }
  rv = pki_mkdir(cfg->gwkeys_dir, 0755, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  rv = p11_token_init(m, label, pins->gw_so_pin, pins->gw_pin, &tok);
  if (rv != P11_OK) {
    return pki_p11_fail(rv, label, "token initialisation", "the PIN file", err,
                        errlen);
  }
  for (int i = 0; i < 2; i++) {
    rv = p11_keygen(tok, pins->gw_pin, keys[i].type, keys[i].label, &keys[i].id,
                    1);
    if (rv != P11_OK) {
      return pki_p11_fail(rv, label, "key generation", src, err, errlen);
    }
  }
  for (int i = 0; i < 2; i++) {
    p11_key *key = NULL;
    EVP_PKEY *pub = NULL;

    rv = pki_token_key(m, label, pins->gw_pin, src, keys[i].label, 1, &key,
                       &pub, err, errlen);
    if (rv != GW_OK) {
      return rv;
    }
    rv = gw_pki_kid(pub, kid[i], GW_PKI_KID_LEN + 1);
    if (rv == GW_OK) {
      rv = pki_write_pubkey(cfg->gwkeys_dir, keys[i].file, pub, err, errlen);
    }
    EVP_PKEY_free(pub);
    p11_key_del(key);
    if (rv != GW_OK) {
      return rv;
    }
  }
  snprintf(text, sizeof(text), "ES256 %s\nRS256 %s\n", kids->es256,
           kids->rs256);
  return pki_put(cfg->gwkeys_dir, "kids", text, err, errlen);
}

/* ---- the key list and rotation ------------------------------------------ */

#define PKI_F_KIDS "kids"
#define PKI_KIDS_FILE_MAX (64 * 1024)
#define PKI_ROTATE_MAX_S (30LL * 86400) /* bound on --publish-lead-s, keep */
#define PKI_LABEL_PROBES 1000

static int pki_gwkey_name_ok(const char *s) {
  size_t n = strlen(s);

  if (n == 0 || n > GW_PKI_GWKEY_NAME_MAX || s[0] == '.') {
    return 0;
  }
  return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789._-") == n;
}

static int pki_gwkey_time(const char *s, int dash_ok, long long *out) {
  char *end;
  long long v;

  if (dash_ok && strcmp(s, "-") == 0) {
    *out = 0;
    return 0;
  }
  if (s[0] < '0' || s[0] > '9') {
    return -1;
  }
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < 0) {
    return -1;
  }
  *out = v;
  return 0;
}

/* Parses one line split in |f| (|nf| fields) into |k|. Returns NULL or
 * the reason. */
static const char *pki_gwkey_line(char **f, int nf, gw_pki_gwkey *k) {
  int es;

  memset(k, 0, sizeof(*k));
  if (nf != 2 && nf != 4 && nf != 7) {
    return "expected \"ALG KID [LABEL PEMFILE [PUBLISH_AT SIGN_FROM "
           "RETIRE_AT]]\"";
  }
  if (strcmp(f[0], "ES256") != 0 && strcmp(f[0], "RS256") != 0) {
    return "unknown algorithm";
  }
  es = f[0][0] == 'E';
  if (strlen(f[1]) != GW_PKI_KID_LEN ||
      strspn(f[1], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789-_") != GW_PKI_KID_LEN) {
    return "the kid is not 43 base64url characters";
  }
  memcpy(k->alg, f[0], 6);
  memcpy(k->kid, f[1], GW_PKI_KID_LEN + 1);
  if (nf == 2) {
    snprintf(k->label, sizeof(k->label), "%s",
             es ? GW_PKI_ES256_LABEL : GW_PKI_RS256_LABEL);
    snprintf(k->file, sizeof(k->file), "%s", es ? "es256.pem" : "rs256.pem");
    return NULL;
  }
  if (!pki_gwkey_name_ok(f[2]) || !pki_gwkey_name_ok(f[3])) {
    return "a label or file name is empty, too long or has characters "
           "outside A-Z a-z 0-9 . _ -";
  }
  snprintf(k->label, sizeof(k->label), "%s", f[2]);
  snprintf(k->file, sizeof(k->file), "%s", f[3]);
  if (nf == 7 && (pki_gwkey_time(f[4], 0, &k->publish_at) != 0 ||
                  pki_gwkey_time(f[5], 0, &k->sign_from) != 0 ||
                  pki_gwkey_time(f[6], 1, &k->retire_at) != 0)) {
    return "the times are Unix seconds (RETIRE_AT may be \"-\")";
  }
  if (k->sign_from < k->publish_at) {
    return "SIGN_FROM is before PUBLISH_AT";
  }
  return NULL;
}

int gw_pki_gwkeys_parse(const char *text, const char *path, gw_pki_gwkeys *out,
                        char *err, size_t errlen) {
  const char *p = text;
  int lineno = 0, have[2] = {0, 0};

  if (!text || !out) {
    return GW_ERR_INVALID;
  }
  path = path ? path : "kids";
  out->n = 0;
  while (*p) {
    char line[512], *f[8], *save = NULL, *tok;
    size_t len = strcspn(p, "\n");
    const char *why;
    int nf = 0;

    lineno++;
    if (len >= sizeof(line)) {
      gw_errf(err, errlen, "%s:%d: line too long", path, lineno);
      return GW_ERR_CONFIG;
    }
    memcpy(line, p, len);
    line[len] = '\0';
    p += len + (p[len] == '\n');
    line[strcspn(line, "\r#")] = '\0';
    for (tok = strtok_r(line, " \t", &save); tok && nf < 8;
         tok = strtok_r(NULL, " \t", &save)) {
      f[nf++] = tok;
    }
    if (nf == 0) {
      continue;
    }
    if (out->n == GW_PKI_GWKEYS_MAX) {
      gw_errf(err, errlen, "%s:%d: more than %d keys", path, lineno,
              GW_PKI_GWKEYS_MAX);
      return GW_ERR_CONFIG;
    }
    why = pki_gwkey_line(f, nf, &out->k[out->n]);
    for (size_t i = 0; !why && i < out->n; i++) {
      if (strcmp(out->k[i].kid, out->k[out->n].kid) == 0) {
        why = "kid listed twice";
      } else if (strcmp(out->k[i].label, out->k[out->n].label) == 0) {
        why = "label listed twice";
      }
    }
    if (why) {
      gw_errf(err, errlen, "%s:%d: %s", path, lineno, why);
      return GW_ERR_CONFIG;
    }
    have[out->k[out->n].alg[0] == 'E' ? 0 : 1] = 1;
    out->n++;
  }
  if (!have[0] || !have[1]) {
    gw_errf(err, errlen, "%s: the %s kid is missing", path,
            have[0] ? "RS256" : "ES256");
    return GW_ERR_CONFIG;
  }
  return GW_OK;
}

int gw_pki_gwkeys_read(const char *dir, gw_pki_gwkeys *out, char *err,
                       size_t errlen) {
  char path[PATH_MAX];
  char *text = NULL;
  int rv;

  if (!dir || !out) {
    return GW_ERR_INVALID;
  }
  if (pki_path(path, sizeof(path), dir, PKI_F_KIDS) != 0) {
    gw_errf(err, errlen, "gateway_keys.dir: path too long: %s", dir);
    return GW_ERR_CONFIG;
  }
  rv = pki_read_file(path, PKI_KIDS_FILE_MAX, &text, NULL);
  if (rv == GW_ERR_IO) {
    gw_errf(err, errlen, "cannot read %s: %s (run `mpkictl gateway-key init`)",
            path, strerror(errno));
    return GW_ERR_IO;
  }
  if (rv == GW_ERR_TOO_LARGE) {
    gw_errf(err, errlen, "%s: over %d bytes", path, PKI_KIDS_FILE_MAX);
    return GW_ERR_CONFIG;
  }
  if (rv != GW_OK) {
    gw_errf(err, errlen, "out of memory");
    return rv;
  }
  rv = gw_pki_gwkeys_parse(text, path, out, err, errlen);
  free(text);
  return rv;
}

long gw_pki_gwkey_current(const gw_pki_gwkeys *ks, const char *alg,
                          long long now) {
  for (size_t i = ks->n; i-- > 0;) {
    const gw_pki_gwkey *k = &ks->k[i];

    if (strcmp(k->alg, alg) == 0 && k->publish_at <= now &&
        k->sign_from <= now && (k->retire_at == 0 || now < k->retire_at)) {
      return (long)i;
    }
  }
  return -1;
}

gw_pki_gwkey_state gw_pki_gwkey_state_at(const gw_pki_gwkeys *ks, size_t i,
                                         long long now) {
  const gw_pki_gwkey *k;

  if (!ks || i >= ks->n) {
    return GW_PKI_GWKEY_RETIRED;
  }
  k = &ks->k[i];
  if (k->retire_at != 0 && now >= k->retire_at) {
    return GW_PKI_GWKEY_RETIRED;
  }
  if (now < k->publish_at) {
    return GW_PKI_GWKEY_PENDING;
  }
  if (gw_pki_gwkey_current(ks, k->alg, now) == (long)i) {
    return GW_PKI_GWKEY_SIGNING;
  }
  return k->retire_at ? GW_PKI_GWKEY_RETIRING : GW_PKI_GWKEY_PUBLISHED;
}

const char *gw_pki_gwkey_state_name(gw_pki_gwkey_state st) {
  static const char *const names[] = {"pending", "published", "signing",
                                      "retiring", "retired"};

  return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

static int pki_gwkeys_write(const char *dir, const gw_pki_gwkeys *ks, char *err,
                            size_t errlen) {
  size_t cap = 512 + ks->n * 256, len = 0;
  char *text = malloc(cap);
  int rv;

  if (!text) {
    gw_errf(err, errlen, "out of memory");
    return GW_ERR_NOMEM;
  }
  len += (size_t)snprintf(
      text, cap,
      "# The gateway's signing keys (mpkictl gateway-key; docs/tokens.md).\n"
      "# ALG KID LABEL PEMFILE PUBLISH_AT SIGN_FROM RETIRE_AT (Unix "
      "seconds)\n");
  for (size_t i = 0; i < ks->n && len < cap; i++) {
    const gw_pki_gwkey *k = &ks->k[i];
    char retire[24];

    snprintf(retire, sizeof(retire), "%lld", k->retire_at);
    len += (size_t)snprintf(text + len, cap - len, "%s %s %s %s %lld %lld %s\n",
                            k->alg, k->kid, k->label, k->file, k->publish_at,
                            k->sign_from, k->retire_at ? retire : "-");
  }
  if (len >= cap) {
    free(text);
    gw_errf(err, errlen, "the key list is too long");
    return GW_ERR_INTERNAL;
  }
  rv = pki_put(dir, PKI_F_KIDS, text, err, errlen);
  free(text);
  return rv;
}

static int pki_gwkey_retired(const gw_pki_gwkey *k, long long now) {
  return k->retire_at != 0 && now >= k->retire_at;
}

/* Whether |alg| has a key that is not retired at |now|. */
static int pki_gwkey_alg_live(const gw_pki_gwkeys *ks, const char *alg,
                              long long now) {
  for (size_t i = 0; i < ks->n; i++) {
    if (strcmp(ks->k[i].alg, alg) == 0 && !pki_gwkey_retired(&ks->k[i], now)) {
      return 1;
    }
  }
  return 0;
}

/* N of "es256-N" ("es256" itself is 0), -1 for other labels. */
static long pki_gwkey_label_n(const char *label, const char *base) {
  size_t bl = strlen(base);
  char *end;
  long n;

  if (strncmp(label, base, bl) != 0) {
    return -1;
  }
  if (label[bl] == '\0') {
    return 0;
  }
  if (label[bl] != '-' || label[bl + 1] < '0' || label[bl + 1] > '9') {
    return -1;
  }
  n = strtol(label + bl + 1, &end, 10);
  return *end == '\0' && n >= 0 && n < 1000000 ? n : -1;
}

/* Makes one new key for |es| (ES256) or RS256 on |tok| and appends it to
 * |ks|, retiring the older keys of the algorithm. */
static int pki_rotate_one(const gw_config *cfg, p11_module *m, p11_token *tok,
                          const gw_pki_pins *pins, int es,
                          const gw_pki_rotate_opts *o, long long now,
                          gw_pki_gwkeys *ks, char *err, size_t errlen) {
  const char *base = es ? GW_PKI_ES256_LABEL : GW_PKI_RS256_LABEL;
  const char *alg = es ? "ES256" : "RS256";
  char src[PATH_MAX + 32];
  gw_pki_gwkey *nk;
  long n = 0;
  p11_key *key = NULL;
  EVP_PKEY *pub = NULL;
  int rv, probes;

  snprintf(src, sizeof(src), "gateway.pin in %s", cfg->pki_pin_file);
  if (ks->n >= GW_PKI_GWKEYS_MAX) {
    gw_errf(err, errlen,
            "%s/kids lists %d keys already: wait until the oldest are "
            "retired",
            cfg->gwkeys_dir, GW_PKI_GWKEYS_MAX);
    return GW_ERR_INVALID;
  }
  for (size_t i = 0; i < ks->n; i++) {
    long v = pki_gwkey_label_n(ks->k[i].label, base);
    n = v > n ? v : n;
  }
  nk = &ks->k[ks->n];
  memset(nk, 0, sizeof(*nk));
  /* A retired key leaves the list but stays on the token: skip labels the
   * token has (p11_keygen would refuse them anyway). */
  for (probes = 0; probes < PKI_LABEL_PROBES; probes++) {
    n++;
    snprintf(nk->label, sizeof(nk->label), "%s-%ld", base, n);
    rv = p11_key_find(tok, pins->gw_pin, nk->label, &key);
    if (rv == P11_ERR_NO_KEY) {
      break;
    }
    if (rv != P11_OK) {
      return pki_p11_fail(rv, cfg->gwkeys_token, nk->label, src, err, errlen);
    }
    p11_key_del(key);
    key = NULL;
  }
  if (probes == PKI_LABEL_PROBES) {
    gw_errf(err, errlen, "token \"%s\": no free label %s-N", cfg->gwkeys_token,
            base);
    return GW_ERR_INVALID;
  }
  rv = p11_keygen(tok, pins->gw_pin, es ? P11_KEY_EC_P256 : P11_KEY_RSA_2048,
                  nk->label, (const uint8_t *)nk->label, strlen(nk->label));
  if (rv != P11_OK) {
    return pki_p11_fail(rv, cfg->gwkeys_token, "key generation", src, err,
                        errlen);
  }
  rv = pki_token_key(m, cfg->gwkeys_token, pins->gw_pin, src, nk->label, 1,
                     &key, &pub, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  /* "es256-N.pem": N has at most 6 digits (pki_gwkey_label_n). */
  memcpy(nk->file, nk->label, strlen(nk->label));
  memcpy(nk->file + strlen(nk->label), ".pem", 5);
  rv = gw_pki_kid(pub, nk->kid, sizeof(nk->kid));
  if (rv == GW_OK) {
    rv = pki_write_pubkey(cfg->gwkeys_dir, nk->file, pub, err, errlen);
  }
  EVP_PKEY_free(pub);
  p11_key_del(key);
  if (rv != GW_OK) {
    return rv;
  }
  memcpy(nk->alg, alg, 6);
  nk->publish_at = now;
  nk->sign_from = now + o->lead_s;
  nk->retire_at = 0;
  /* Every older key that may still sign until the new one takes over
   * keeps verifying until the last token it signed has expired. */
  for (size_t i = 0; i < ks->n; i++) {
    if (strcmp(ks->k[i].alg, alg) == 0 && ks->k[i].retire_at == 0) {
      ks->k[i].retire_at = nk->sign_from + o->keep_s;
    }
  }
  ks->n++;
  return GW_OK;
}

int gw_pki_gateway_keys_rotate(const gw_config *cfg, p11_module *m,
                               const gw_pki_pins *pins,
                               const gw_pki_rotate_opts *o,
                               gw_pki_gwkeys *after, char *err, size_t errlen) {
  gw_pki_gwkeys *ks = NULL;
  char dropped[GW_PKI_GWKEYS_MAX][GW_PKI_GWKEY_NAME_MAX + 1];
  size_t ndropped = 0, kept = 0;
  p11_token *tok = NULL;
  long long now;
  int fd = -1, rv;

  if (!cfg || !m || !pins || !o || (!o->es256 && !o->rs256) || o->lead_s < 0 ||
      o->lead_s > PKI_ROTATE_MAX_S || o->keep_s < 0 ||
      o->keep_s > PKI_ROTATE_MAX_S) {
    gw_errf(err, errlen, "bad rotation options");
    return GW_ERR_INVALID;
  }
  now = o->now ? o->now : (long long)time(NULL);
  ks = malloc(sizeof(*ks));
  if (!ks) {
    gw_errf(err, errlen, "out of memory");
    return GW_ERR_NOMEM;
  }
  rv = pki_lock(cfg->gwkeys_dir, &fd, err, errlen);
  if (rv != GW_OK) {
    goto done;
  }
  rv = gw_pki_gwkeys_read(cfg->gwkeys_dir, ks, err, errlen);
  if (rv != GW_OK) {
    rv = rv == GW_ERR_IO ? GW_ERR_NOT_FOUND : rv;
    goto done;
  }
  if (p11_token_find(m, cfg->gwkeys_token, &tok) != P11_OK) {
    gw_errf(err, errlen,
            "no token labelled \"%s\" (gateway_keys.token; run `mpkictl "
            "gateway-key init`)",
            cfg->gwkeys_token);
    rv = GW_ERR_NOT_FOUND;
    goto done;
  }
  /* Retired keys leave the list, unless that would leave their algorithm
   * without any key (a hand-edited list). */
  for (size_t i = 0; i < ks->n; i++) {
    if (pki_gwkey_retired(&ks->k[i], now) &&
        ((ks->k[i].alg[0] == 'E' ? o->es256 : o->rs256) ||
         pki_gwkey_alg_live(ks, ks->k[i].alg, now))) {
      memcpy(dropped[ndropped++], ks->k[i].file, sizeof(dropped[0]));
    } else {
      ks->k[kept++] = ks->k[i];
    }
  }
  ks->n = kept;
  if (o->es256) {
    rv = pki_rotate_one(cfg, m, tok, pins, 1, o, now, ks, err, errlen);
  }
  if (rv == GW_OK && o->rs256) {
    rv = pki_rotate_one(cfg, m, tok, pins, 0, o, now, ks, err, errlen);
  }
  if (rv == GW_OK) {
    rv = pki_gwkeys_write(cfg->gwkeys_dir, ks, err, errlen);
  }
  for (size_t i = 0; rv == GW_OK && i < ndropped; i++) {
    char path[PATH_MAX];
    int used = 0;

    for (size_t j = 0; j < ks->n; j++) {
      used |= strcmp(ks->k[j].file, dropped[i]) == 0;
    }
    if (!used &&
        pki_path(path, sizeof(path), cfg->gwkeys_dir, dropped[i]) == 0) {
      unlink(path);
    }
  }
  if (rv == GW_OK && after) {
    *after = *ks;
  }

done:
  if (fd >= 0) {
    close(fd);
  }
  free(ks);
  return rv;
}
