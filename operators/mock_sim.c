/* mock_sim.c — the simulated SIMs: retry counters kept beside SoftHSM,
 * signatures through the token, CMS assembled around them. See mock_sim.h. */
#include "mock_sim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gw_err.h"
#include "gw_log.h"

#define SIM_BUCKETS 256
#define STATE_FILE_MAX 256 /* bytes of a state file; real ones are ~40 */
#define PIN_BUF 256        /* PKCS#11 PINs are at most 255 bytes here */

/* One SIM that has been used since the bank was made. Entries are never
 * freed before the bank: the set of SIMs is the demo's, small and fixed. */
typedef struct sim_entry {
  char msisdn[MOCK_SIM_MSISDN_MAX + 1];
  pthread_mutex_t lock; /* serialises every call for this SIM */
  int loaded;           /* counters read from the state file */
  int pin_left;
  int puk_left;
  struct sim_entry *next;
} sim_entry;

struct mock_sims {
  p11_module *m;
  char *dir;
  pthread_mutex_t table_lock; /* guards buckets */
  sim_entry *buckets[SIM_BUCKETS];
};

const char *mock_sim_outcome_str(mock_sim_outcome o) {
  switch (o) {
  case MOCK_SIM_OK:
    return "ok";
  case MOCK_SIM_WRONG_PIN:
    return "wrong_pin";
  case MOCK_SIM_PIN_BLOCKED:
    return "pin_blocked";
  case MOCK_SIM_WRONG_PUK:
    return "wrong_puk";
  case MOCK_SIM_CARD_BLOCKED:
    return "card_blocked";
  case MOCK_SIM_NO_TOKEN:
    return "no_token";
  case MOCK_SIM_NO_KEY:
    return "no_key";
  case MOCK_SIM_BAD_NEW_PIN:
    return "bad_new_pin";
  case MOCK_SIM_FAILED:
    return "failed";
  }
  return "unknown";
}

/* "+" and 1..15 digits: also what makes the MSISDN safe as a file name. */
static int msisdn_ok(const char *s) {
  size_t n;

  if (!s || s[0] != '+') {
    return 0;
  }
  n = strlen(s + 1);
  if (n < 1 || n > MOCK_SIM_MSISDN_MAX - 1) {
    return 0;
  }
  for (size_t i = 1; i <= n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return 0;
    }
  }
  return 1;
}

int mock_sims_new(mock_sims **out, p11_module *m, const char *state_dir,
                  char *err, size_t errlen) {
  mock_sims *s;
  struct stat st;

  if (!out || !m || !state_dir || !state_dir[0]) {
    snprintf(err, errlen, "mock_sims_new: missing argument");
    return GW_ERR_INVALID;
  }
  if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create state directory %s: %s", state_dir,
             strerror(errno));
    return GW_ERR_IO;
  }
  if (stat(state_dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
      access(state_dir, W_OK | X_OK) != 0) {
    snprintf(err, errlen, "state directory %s is not a writable directory",
             state_dir);
    return GW_ERR_IO;
  }
  s = calloc(1, sizeof(*s));
  if (!s) {
    return GW_ERR_NOMEM;
  }
  s->dir = strdup(state_dir);
  if (!s->dir) {
    free(s);
    return GW_ERR_NOMEM;
  }
  s->m = m;
  pthread_mutex_init(&s->table_lock, NULL);
  *out = s;
  return GW_OK;
}

void mock_sims_del(mock_sims *s) {
  if (!s) {
    return;
  }
  for (size_t i = 0; i < SIM_BUCKETS; i++) {
    sim_entry *e = s->buckets[i], *next;
    for (; e; e = next) {
      next = e->next;
      pthread_mutex_destroy(&e->lock);
      free(e);
    }
  }
  pthread_mutex_destroy(&s->table_lock);
  free(s->dir);
  free(s);
}

static size_t bucket_of(const char *msisdn) {
  size_t h = 5381;

  for (const unsigned char *p = (const unsigned char *)msisdn; *p; p++) {
    h = h * 33 + *p;
  }
  return h % SIM_BUCKETS;
}

/* Finds or adds the entry of |msisdn| (checked by the caller). */
static sim_entry *entry_get(mock_sims *s, const char *msisdn) {
  size_t b = bucket_of(msisdn);
  sim_entry *e;

  pthread_mutex_lock(&s->table_lock);
  for (e = s->buckets[b]; e; e = e->next) {
    if (strcmp(e->msisdn, msisdn) == 0) {
      break;
    }
  }
  if (!e) {
    e = calloc(1, sizeof(*e));
    if (e) {
      snprintf(e->msisdn, sizeof(e->msisdn), "%s", msisdn);
      pthread_mutex_init(&e->lock, NULL);
      e->next = s->buckets[b];
      s->buckets[b] = e;
    }
  }
  pthread_mutex_unlock(&s->table_lock);
  return e;
}

static void state_path(const mock_sims *s, const char *msisdn, char *buf,
                       size_t cap, const char *suffix) {
  snprintf(buf, cap, "%s/%s.sim%s", s->dir, msisdn, suffix);
}

/* Reads "pin_tries_left=N\npuk_tries_left=N\n". A missing file means a SIM
 * never used: full counters. Called with the entry locked. */
static int state_load(mock_sims *s, sim_entry *e) {
  char path[4096], text[STATE_FILE_MAX + 1];
  int fd, pin = -1, puk = -1;
  ssize_t n;
  char *line, *save = NULL;

  if (e->loaded) {
    return GW_OK;
  }
  state_path(s, e->msisdn, path, sizeof(path), "");
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) {
      GW_LOG(GW_LOG_ERROR, "cannot read SIM state", "path=%s error=\"%s\"",
             path, strerror(errno));
      return GW_ERR_IO;
    }
    e->pin_left = MOCK_SIM_PIN_TRIES;
    e->puk_left = MOCK_SIM_PUK_TRIES;
    e->loaded = 1;
    return GW_OK;
  }
  n = read(fd, text, STATE_FILE_MAX);
  close(fd);
  if (n < 0) {
    GW_LOG(GW_LOG_ERROR, "cannot read SIM state", "path=%s error=\"%s\"", path,
           strerror(errno));
    return GW_ERR_IO;
  }
  text[n] = '\0';
  for (line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    int v;
    char extra;
    if (sscanf(line, "pin_tries_left=%d%c", &v, &extra) == 1) {
      pin = v;
    } else if (sscanf(line, "puk_tries_left=%d%c", &v, &extra) == 1) {
      puk = v;
    } else if (line[0] != '#' && line[0] != '\0') {
      pin = -1;
      break;
    }
  }
  if (pin < 0 || pin > MOCK_SIM_PIN_TRIES || puk < 0 ||
      puk > MOCK_SIM_PUK_TRIES) {
    GW_LOG(GW_LOG_ERROR, "malformed SIM state file", "path=%s", path);
    return GW_ERR_IO;
  }
  e->pin_left = pin;
  e->puk_left = puk;
  e->loaded = 1;
  return GW_OK;
}

/* Writes the counters (temporary file, fsync, rename): the file holds the
 * old or the new state, never half of one. The entry changes only when the
 * write succeeded. Called with the entry locked. */
static int state_store(mock_sims *s, sim_entry *e, int pin, int puk) {
  char path[4096], tmp[4200], text[128];
  int fd, len, ok;

  state_path(s, e->msisdn, path, sizeof(path), "");
  snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
  len = snprintf(text, sizeof(text),
                 "# SIM state of the mock MSSP (mock_sim.c)\n"
                 "pin_tries_left=%d\npuk_tries_left=%d\n",
                 pin, puk);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    GW_LOG(GW_LOG_ERROR, "cannot write SIM state", "path=%s error=\"%s\"", tmp,
           strerror(errno));
    return GW_ERR_IO;
  }
  ok = write(fd, text, (size_t)len) == len && fsync(fd) == 0;
  ok = (close(fd) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    GW_LOG(GW_LOG_ERROR, "cannot write SIM state", "path=%s error=\"%s\"", path,
           strerror(errno));
    unlink(tmp);
    return GW_ERR_IO;
  }
  e->pin_left = pin;
  e->puk_left = puk;
  return GW_OK;
}

int mock_sim_digest(mock_sim_data_kind kind, const uint8_t *data, size_t n,
                    uint8_t out[32]) {
  if (!out || (!data && n > 0)) {
    return GW_ERR_INVALID;
  }
  switch (kind) {
  case MOCK_SIM_DATA_DIGEST:
    if (n != 32) {
      return GW_ERR_INVALID;
    }
    memcpy(out, data, 32);
    return GW_OK;
  case MOCK_SIM_DATA_TEXT:
  case MOCK_SIM_DATA_BYTES:
    if (EVP_Digest(data ? data : (const uint8_t *)"", n, out, NULL,
                   EVP_sha256(), NULL) != 1) {
      return GW_ERR_TLS;
    }
    return GW_OK;
  }
  return GW_ERR_INVALID;
}

/* Wraps the token's DER ECDSA signature |dsig| in a CMS SignedData without
 * signed attributes (so the signature value is over the content's SHA-256,
 * or for a digest over the digest itself), with the certificate inside and
 * the content attached when |attach|. CMS_sign with CMS_PARTIAL and the
 * certificate's public key sets up the SignerInfo (sid, digest and signature
 * algorithms) without signing; the value and content are filled in here. */
static int build_cms(const uint8_t *cert_der, size_t cert_len,
                     const uint8_t *chain_der, size_t chain_len,
                     const uint8_t *content, size_t clen, int attach,
                     const uint8_t *dsig, size_t dlen, uint8_t *out,
                     size_t *out_len) {
  const unsigned char *p = cert_der;
  X509 *x = NULL;
  CMS_ContentInfo *cms = NULL;
  CMS_SignerInfo *si;
  ASN1_OCTET_STRING **pos, *os = NULL;
  unsigned char *q;
  int len, rv = GW_ERR_TLS;
  unsigned flags = CMS_PARTIAL | CMS_NOATTR | CMS_BINARY;

  x = d2i_X509(NULL, &p, (long)cert_len);
  if (!x || p != cert_der + cert_len) {
    rv = GW_ERR_INVALID;
    goto done;
  }
  if (!attach) {
    flags |= CMS_DETACHED;
  }
  cms = CMS_sign(x, X509_get0_pubkey(x), NULL, NULL, flags);
  if (!cms) {
    goto done;
  }
  /* No chain: no pointer arithmetic on NULL either. */
  if (!chain_der) {
    chain_len = 0;
  }
  for (const unsigned char *c = chain_der,
                           *end = chain_der ? chain_der + chain_len : NULL;
       c && c < end;) {
    X509 *ca = d2i_X509(NULL, &c, (long)(end - c));
    int added;
    if (!ca) {
      rv = GW_ERR_INVALID;
      goto done;
    }
    added = CMS_add1_cert(cms, ca);
    X509_free(ca);
    if (added != 1) {
      goto done;
    }
  }
  si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
  if (!si || ASN1_STRING_set(CMS_SignerInfo_get0_signature(si), dsig,
                             (int)dlen) != 1) {
    goto done;
  }
  if (attach) {
    pos = CMS_get0_content(cms);
    os = ASN1_OCTET_STRING_new();
    if (!pos || !os || ASN1_OCTET_STRING_set(os, content, (int)clen) != 1) {
      goto done;
    }
    /* A fresh string: the one CMS made may be a streaming placeholder. */
    ASN1_OCTET_STRING_free(*pos);
    *pos = os;
    os = NULL;
  }
  len = i2d_CMS_ContentInfo(cms, NULL);
  if (len <= 0) {
    goto done;
  }
  if ((size_t)len > *out_len) {
    rv = GW_ERR_TOO_LARGE;
    goto done;
  }
  q = out;
  if (i2d_CMS_ContentInfo(cms, &q) != len) {
    goto done;
  }
  *out_len = (size_t)len;
  rv = GW_OK;
done:
  if (rv == GW_ERR_TLS) {
    GW_LOG(GW_LOG_ERROR, "cannot build CMS SignedData", "openssl=%lu",
           ERR_peek_last_error());
  }
  ASN1_OCTET_STRING_free(os);
  CMS_ContentInfo_free(cms);
  X509_free(x);
  return rv;
}

/* Copies a PIN into a local buffer the caller wipes. */
static int pin_copy(char *dst, const char *pin) {
  size_t n = pin ? strlen(pin) : 0;

  if (n == 0 || n >= PIN_BUF) {
    return GW_ERR_INVALID;
  }
  memcpy(dst, pin, n + 1);
  return GW_OK;
}

int mock_sim_sign(mock_sims *s, const char *msisdn, const char *pin,
                  mock_sim_data_kind kind, const uint8_t *data, size_t n,
                  mock_sim_format format, const uint8_t *cert_der,
                  size_t cert_len, const uint8_t *chain_der, size_t chain_len,
                  uint8_t *sig, size_t *sig_len, mock_sim_outcome *outcome,
                  int *tries_left) {
  uint8_t digest[32], raw[80];
  size_t rawlen = sizeof(raw);
  char pinbuf[PIN_BUF];
  sim_entry *e;
  p11_token *t;
  int rv, prv;
  mock_sim_outcome o = MOCK_SIM_FAILED;

  if (!s || !msisdn_ok(msisdn) || !sig || !sig_len || !outcome ||
      (format != MOCK_SIM_FORMAT_PKCS1 && format != MOCK_SIM_FORMAT_PKCS7) ||
      (format == MOCK_SIM_FORMAT_PKCS7 && (!cert_der || cert_len == 0))) {
    return GW_ERR_INVALID;
  }
  rv = mock_sim_digest(kind, data, n, digest);
  if (rv != GW_OK) {
    return rv;
  }
  if (pin_copy(pinbuf, pin) != GW_OK) {
    return GW_ERR_INVALID;
  }
  e = entry_get(s, msisdn);
  if (!e) {
    OPENSSL_cleanse(pinbuf, sizeof(pinbuf));
    return GW_ERR_NOMEM;
  }
  pthread_mutex_lock(&e->lock);
  rv = state_load(s, e);
  if (rv != GW_OK) {
    goto unlock;
  }
  if (e->puk_left == 0) {
    o = MOCK_SIM_CARD_BLOCKED;
    goto unlock;
  }
  if (e->pin_left == 0) {
    o = MOCK_SIM_PIN_BLOCKED;
    goto unlock;
  }
  if (p11_token_find(s->m, msisdn, &t) != P11_OK) {
    o = MOCK_SIM_NO_TOKEN;
    goto unlock;
  }
  prv = p11_sign_with_pin(t, pinbuf, MOCK_SIM_KEY_LABEL, P11_MECH_ECDSA, digest,
                          sizeof(digest), format == MOCK_SIM_FORMAT_PKCS7, raw,
                          &rawlen);
  switch (prv) {
  case P11_OK:
    o = MOCK_SIM_OK;
    if (e->pin_left != MOCK_SIM_PIN_TRIES) {
      rv = state_store(s, e, MOCK_SIM_PIN_TRIES, e->puk_left);
    }
    break;
  case P11_ERR_PIN_INCORRECT:
  case P11_ERR_PIN_INVALID: /* a PIN of the wrong length is a wrong PIN */
    rv = state_store(s, e, e->pin_left - 1, e->puk_left);
    o = e->pin_left > 0 ? MOCK_SIM_WRONG_PIN : MOCK_SIM_PIN_BLOCKED;
    break;
  case P11_ERR_PIN_LOCKED:
    rv = state_store(s, e, 0, e->puk_left);
    o = MOCK_SIM_PIN_BLOCKED;
    break;
  case P11_ERR_NO_KEY:
    o = MOCK_SIM_NO_KEY;
    break;
  case P11_ERR_NOMEM:
    rv = GW_ERR_NOMEM;
    break;
  default:
    GW_LOG(GW_LOG_WARN, "SIM signature failed", "msisdn=%s error=\"%s\"",
           msisdn, p11_strerror(prv));
    o = MOCK_SIM_FAILED;
    break;
  }
unlock:
  if (tries_left) {
    *tries_left = e->loaded ? e->pin_left : 0;
  }
  pthread_mutex_unlock(&e->lock);
  OPENSSL_cleanse(pinbuf, sizeof(pinbuf));
  if (rv != GW_OK) {
    return rv;
  }
  if (o == MOCK_SIM_OK) {
    if (format == MOCK_SIM_FORMAT_PKCS1) {
      if (*sig_len < rawlen) {
        return GW_ERR_TOO_LARGE;
      }
      memcpy(sig, raw, rawlen);
      *sig_len = rawlen;
    } else {
      rv = build_cms(cert_der, cert_len, chain_der, chain_len, data, n,
                     kind != MOCK_SIM_DATA_DIGEST, raw, rawlen, sig, sig_len);
      if (rv != GW_OK) {
        return rv;
      }
    }
  }
  *outcome = o;
  return GW_OK;
}

int mock_sim_unblock(mock_sims *s, const char *msisdn, const char *puk,
                     const char *new_pin, mock_sim_outcome *outcome,
                     int *puk_tries_left) {
  char pukbuf[PIN_BUF], pinbuf[PIN_BUF];
  sim_entry *e;
  p11_token *t;
  int rv, prv;
  mock_sim_outcome o = MOCK_SIM_FAILED;

  if (!s || !msisdn_ok(msisdn) || !outcome || pin_copy(pukbuf, puk) != GW_OK) {
    return GW_ERR_INVALID;
  }
  if (!new_pin || strlen(new_pin) < 4 || strlen(new_pin) >= PIN_BUF) {
    OPENSSL_cleanse(pukbuf, sizeof(pukbuf));
    *outcome = MOCK_SIM_BAD_NEW_PIN;
    if (puk_tries_left) {
      *puk_tries_left = -1;
    }
    return mock_sim_state(s, msisdn, NULL, puk_tries_left);
  }
  memcpy(pinbuf, new_pin, strlen(new_pin) + 1);
  e = entry_get(s, msisdn);
  if (!e) {
    rv = GW_ERR_NOMEM;
    goto wipe;
  }
  pthread_mutex_lock(&e->lock);
  rv = state_load(s, e);
  if (rv != GW_OK) {
    goto unlock;
  }
  if (e->puk_left == 0) {
    o = MOCK_SIM_CARD_BLOCKED;
    goto unlock;
  }
  if (p11_token_find(s->m, msisdn, &t) != P11_OK) {
    o = MOCK_SIM_NO_TOKEN;
    goto unlock;
  }
  prv = p11_init_pin(t, pukbuf, pinbuf);
  switch (prv) {
  case P11_OK:
    rv = state_store(s, e, MOCK_SIM_PIN_TRIES, MOCK_SIM_PUK_TRIES);
    o = MOCK_SIM_OK;
    break;
  case P11_ERR_PIN_INCORRECT:
    rv = state_store(s, e, e->pin_left, e->puk_left - 1);
    o = e->puk_left > 0 ? MOCK_SIM_WRONG_PUK : MOCK_SIM_CARD_BLOCKED;
    break;
  case P11_ERR_PIN_INVALID:
    o = MOCK_SIM_BAD_NEW_PIN;
    break;
  case P11_ERR_NOMEM:
    rv = GW_ERR_NOMEM;
    break;
  default:
    GW_LOG(GW_LOG_WARN, "SIM PUK unblock failed", "msisdn=%s error=\"%s\"",
           msisdn, p11_strerror(prv));
    o = MOCK_SIM_FAILED;
    break;
  }
unlock:
  if (puk_tries_left) {
    *puk_tries_left = e->loaded ? e->puk_left : 0;
  }
  pthread_mutex_unlock(&e->lock);
wipe:
  OPENSSL_cleanse(pukbuf, sizeof(pukbuf));
  OPENSSL_cleanse(pinbuf, sizeof(pinbuf));
  if (rv == GW_OK) {
    *outcome = o;
  }
  return rv;
}

int mock_sim_state(mock_sims *s, const char *msisdn, int *pin_tries_left,
                   int *puk_tries_left) {
  sim_entry *e;
  int rv;

  if (!s || !msisdn_ok(msisdn)) {
    return GW_ERR_INVALID;
  }
  e = entry_get(s, msisdn);
  if (!e) {
    return GW_ERR_NOMEM;
  }
  pthread_mutex_lock(&e->lock);
  rv = state_load(s, e);
  if (rv == GW_OK) {
    if (pin_tries_left) {
      *pin_tries_left = e->pin_left;
    }
    if (puk_tries_left) {
      *puk_tries_left = e->puk_left;
    }
  }
  pthread_mutex_unlock(&e->lock);
  return rv;
}

int mock_sim_set_state(mock_sims *s, const char *msisdn, int pin_tries_left,
                       int puk_tries_left) {
  sim_entry *e;
  int rv;

  if (!s || !msisdn_ok(msisdn) || pin_tries_left < -1 ||
      pin_tries_left > MOCK_SIM_PIN_TRIES || puk_tries_left < -1 ||
      puk_tries_left > MOCK_SIM_PUK_TRIES) {
    return GW_ERR_INVALID;
  }
  e = entry_get(s, msisdn);
  if (!e) {
    return GW_ERR_NOMEM;
  }
  pthread_mutex_lock(&e->lock);
  rv = state_load(s, e);
  if (rv == GW_ERR_IO) {
    /* A malformed file is replaced by what the caller sets. */
    e->pin_left = MOCK_SIM_PIN_TRIES;
    e->puk_left = MOCK_SIM_PUK_TRIES;
    e->loaded = 1;
    rv = GW_OK;
  }
  if (rv == GW_OK) {
    rv = state_store(s, e, pin_tries_left < 0 ? e->pin_left : pin_tries_left,
                     puk_tries_left < 0 ? e->puk_left : puk_tries_left);
  }
  pthread_mutex_unlock(&e->lock);
  return rv;
}
