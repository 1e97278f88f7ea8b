/* gw_crl.c — CRLs from one file: load, validate, reload on change, look up.
 *
 * A load produces an immutable snapshot (the CRLs, each with the CA that
 * signed it, or a failure reason). Checks read the current snapshot under a
 * read lock; a reload builds the next snapshot without any lock held and
 * swaps it in under the write lock, so checks never wait for file I/O or
 * signature verification. */
#include "gw_crl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gw_err.h"
#include "gw_verify_int.h"

#define CRL_PER_FILE_MAX 64
#define CRL_DN_MAX 120

/* What identifies a version of the file. */
typedef struct crl_fid {
  int present;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtim;
  struct timespec ctim;
} crl_fid;

typedef struct crl_one {
  X509_CRL *crl;
  X509 *signer; /* the CA whose key verified it (up-referenced) */
  time_t this_update;
  time_t next_update;
} crl_one;

typedef struct crl_snap {
  gw_verify_result status; /* GW_VERIFY_OK or GW_VERIFY_CRL_UNAVAILABLE */
  char detail[GW_VERIFY_DETAIL_MAX];
  crl_one *v;
  int n;
  uint64_t gen;
} crl_snap;

struct gw_crl {
  char *path;
  STACK_OF(X509) * issuers;
  pthread_rwlock_t lock;  /* guards snap, fid, last_try */
  pthread_mutex_t reload; /* one reload at a time */
  crl_snap *snap;
  crl_fid fid;
  time_t last_try;
  atomic_uint_fast64_t loads;
};

static void fid_from_stat(crl_fid *f, const struct stat *st) {
  memset(f, 0, sizeof(*f));
  f->present = 1;
  f->dev = st->st_dev;
  f->ino = st->st_ino;
  f->size = st->st_size;
  f->mtim = st->st_mtim;
  f->ctim = st->st_ctim;
}

static int fid_eq(const crl_fid *a, const crl_fid *b) {
  if (a->present != b->present) {
    return 0;
  }
  if (!a->present) {
    return 1;
  }
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtim.tv_sec == b->mtim.tv_sec &&
         a->mtim.tv_nsec == b->mtim.tv_nsec &&
         a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

static void snap_free(crl_snap *s) {
  int i;

  if (!s) {
    return;
  }
  for (i = 0; i < s->n; i++) {
    X509_CRL_free(s->v[i].crl);
    X509_free(s->v[i].signer);
  }
  free(s->v);
  free(s);
}

/* Marks |s| failed with a reason. Always returns |s|. */
static crl_snap *snap_fail(crl_snap *s, const char *path, const char *why) {
  s->status = GW_VERIFY_CRL_UNAVAILABLE;
  gw_verify_setf(s->detail, sizeof(s->detail), "CRL file %s: %s", path, why);
  return s;
}

/* Reads the whole file into |*buf| (caller frees) and identifies it.
 * Returns GW_OK or GW_ERR_IO / GW_ERR_TOO_LARGE / GW_ERR_NOMEM with a reason
 * in |why|. */
static int read_file(const char *path, unsigned char **buf, size_t *len,
                     crl_fid *fid, char *why, size_t whylen) {
  struct stat st;
  unsigned char *p;
  size_t got = 0;
  ssize_t r;
  int fd;

  /* Identify the file even when it cannot be opened, so that the next
   * refresh does not see a change where there is none. */
  memset(fid, 0, sizeof(*fid));
  if (stat(path, &st) == 0) {
    fid_from_stat(fid, &st);
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    gw_verify_setf(why, whylen, "%s", strerror(errno));
    return GW_ERR_IO;
  }
  if (fstat(fd, &st) != 0) {
    gw_verify_setf(why, whylen, "%s", strerror(errno));
    goto fail_fd;
  }
  fid_from_stat(fid, &st);
  if (!S_ISREG(st.st_mode)) {
    gw_verify_setf(why, whylen, "not a regular file");
    goto fail_fd;
  }
  if (st.st_size <= 0) {
    gw_verify_setf(why, whylen, "empty file");
    goto fail_fd;
  }
  if (st.st_size > GW_VERIFY_CRL_FILE_MAX) {
    gw_verify_setf(why, whylen, "larger than %d bytes", GW_VERIFY_CRL_FILE_MAX);
    close(fd);
    return GW_ERR_TOO_LARGE;
  }
  p = malloc((size_t)st.st_size);
  if (!p) {
    close(fd);
    return GW_ERR_NOMEM;
  }
  while (got < (size_t)st.st_size) {
    r = read(fd, p + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0) {
      gw_verify_setf(why, whylen, "%s", strerror(errno));
      free(p);
      goto fail_fd;
    }
    if (r == 0) {
      break; /* shrank while we read: the next refresh sees the change */
    }
    got += (size_t)r;
  }
  close(fd);
  *buf = p;
  *len = got;
  return GW_OK;

fail_fd:
  close(fd);
  return GW_ERR_IO;
}

/* Parses one DER CRL or every PEM CRL in |buf| into |crls|.
 * Returns GW_OK or GW_ERR_INVALID (reason in |why|) or GW_ERR_NOMEM. */
static int parse_crls(const unsigned char *buf, size_t len,
                      STACK_OF(X509_CRL) * crls, char *why, size_t whylen) {
  X509_CRL *crl;
  BIO *bio;
  unsigned long e;
  const unsigned char *p = buf;

  if (!memmem(buf, len, "-----BEGIN", 10)) {
    crl = d2i_X509_CRL(NULL, &p, (long)len);
    if (!crl || p != buf + len) {
      X509_CRL_free(crl);
      gw_verify_setf(why, whylen, "not a DER or PEM CRL");
      gw_verify_ossl_err(why, whylen);
      return GW_ERR_INVALID;
    }
    if (!sk_X509_CRL_push(crls, crl)) {
      X509_CRL_free(crl);
      return GW_ERR_NOMEM;
    }
    return GW_OK;
  }
  bio = BIO_new_mem_buf(buf, (int)len);
  if (!bio) {
    return GW_ERR_NOMEM;
  }
  while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
    if (sk_X509_CRL_num(crls) >= CRL_PER_FILE_MAX ||
        !sk_X509_CRL_push(crls, crl)) {
      X509_CRL_free(crl);
      BIO_free(bio);
      gw_verify_setf(why, whylen, "more than %d CRLs", CRL_PER_FILE_MAX);
      return GW_ERR_INVALID;
    }
  }
  BIO_free(bio);
  /* The loop ends on "no start line" once the file is exhausted; any other
   * error means a damaged PEM block. */
  e = ERR_peek_last_error();
  if (!(ERR_GET_LIB(e) == ERR_LIB_PEM &&
        ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
    gw_verify_setf(why, whylen, "damaged PEM CRL");
    gw_verify_ossl_err(why, whylen);
    return GW_ERR_INVALID;
  }
  if (sk_X509_CRL_num(crls) == 0) {
    gw_verify_setf(why, whylen, "no CRL in PEM file");
    ERR_clear_error();
    return GW_ERR_INVALID;
  }
  ERR_clear_error();
  return GW_OK;
}

/* Validates |crl| and finds the CA that signed it. Returns GW_OK (|o|
 * filled, |crl| owned by |o|) or GW_ERR_INVALID with a reason. */
static int validate_crl(X509_CRL *crl, STACK_OF(X509) * issuers, crl_one *o,
                        char *why, size_t whylen) {
  const STACK_OF(X509_REVOKED) * revs;
  const ASN1_TIME *nu;
  X509_REVOKED *dummy;
  ASN1_INTEGER *zero;
  char dn[CRL_DN_MAX];
  int i, named = 0;

  gw_verify_fmt_name(X509_CRL_get_issuer(crl), dn, sizeof(dn));
  nu = X509_CRL_get0_nextUpdate(crl);
  if (!nu) {
    gw_verify_setf(why, whylen, "CRL from %s has no nextUpdate", dn);
    return GW_ERR_INVALID;
  }
  if (gw_verify_asn1_time(X509_CRL_get0_lastUpdate(crl), &o->this_update) ||
      gw_verify_asn1_time(nu, &o->next_update)) {
    gw_verify_setf(why, whylen, "CRL from %s has a malformed time", dn);
    return GW_ERR_INVALID;
  }
  for (i = 0; i < X509_CRL_get_ext_count(crl); i++) {
    X509_EXTENSION *ext = X509_CRL_get_ext(crl, i);
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));

    if (X509_EXTENSION_get_critical(ext) || nid == NID_delta_crl) {
      gw_verify_setf(why, whylen,
                     "CRL from %s has extension %s, not supported (delta, "
                     "partitioned or critical)",
                     dn, nid == NID_undef ? "unknown" : OBJ_nid2sn(nid));
      return GW_ERR_INVALID;
    }
  }
  revs = X509_CRL_get_REVOKED(crl);
  for (i = 0; i < sk_X509_REVOKED_num(revs); i++) {
    const STACK_OF(X509_EXTENSION) *exts =
        X509_REVOKED_get0_extensions(sk_X509_REVOKED_value(revs, i));
    int j;

    for (j = 0; j < sk_X509_EXTENSION_num(exts); j++) {
      if (X509_EXTENSION_get_critical(sk_X509_EXTENSION_value(exts, j))) {
        gw_verify_setf(why, whylen,
                       "CRL from %s has an entry with a critical extension "
                       "(indirect CRL), not supported",
                       dn);
        return GW_ERR_INVALID;
      }
    }
  }
  o->signer = NULL;
  for (i = 0; i < sk_X509_num(issuers) && !o->signer; i++) {
    X509 *ca = sk_X509_value(issuers, i);

    if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl))) {
      continue;
    }
    named = 1;
    if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1) {
      o->signer = ca;
    }
  }
  ERR_clear_error();
  if (!o->signer) {
    gw_verify_setf(why, whylen,
                   named ? "CRL from %s is not signed by its issuer"
                         : "CRL issuer %s is not a configured CA",
                   dn);
    return GW_ERR_INVALID;
  }
  if ((X509_get_extension_flags(o->signer) & EXFLAG_KUSAGE) &&
      !(X509_get_key_usage(o->signer) & KU_CRL_SIGN)) {
    gw_verify_setf(why, whylen, "CA %s may not sign CRLs (keyUsage)", dn);
    o->signer = NULL;
    return GW_ERR_INVALID;
  }
  X509_up_ref(o->signer);
  o->crl = crl;
  /* A first lookup sorts the entries, so that checks only read. */
  zero = ASN1_INTEGER_new();
  if (zero) {
    X509_CRL_get0_by_serial(crl, &dummy, zero);
    ASN1_INTEGER_free(zero);
  }
  return GW_OK;
}

/* Loads the file into a new snapshot; NULL only when out of memory. */
static crl_snap *crl_load(gw_crl *c, crl_fid *fid) {
  STACK_OF(X509_CRL) *crls = NULL;
  unsigned char *buf = NULL;
  size_t len = 0;
  crl_snap *s;
  char why[GW_VERIFY_DETAIL_MAX - 64];
  int rv, i;

  s = calloc(1, sizeof(*s));
  if (!s) {
    return NULL;
  }
  why[0] = '\0';
  rv = read_file(c->path, &buf, &len, fid, why, sizeof(why));
  if (rv == GW_ERR_NOMEM) {
    goto fail_oom;
  }
  if (rv != GW_OK) {
    return snap_fail(s, c->path, why);
  }
  crls = sk_X509_CRL_new_null();
  if (!crls) {
    goto fail_oom;
  }
  rv = parse_crls(buf, len, crls, why, sizeof(why));
  free(buf);
  buf = NULL;
  if (rv == GW_ERR_NOMEM) {
    goto fail_oom;
  }
  if (rv != GW_OK) {
    snap_fail(s, c->path, why);
    goto done;
  }
  s->v = calloc((size_t)sk_X509_CRL_num(crls), sizeof(*s->v));
  if (!s->v) {
    goto fail_oom;
  }
  while (sk_X509_CRL_num(crls) > 0) {
    X509_CRL *crl = sk_X509_CRL_shift(crls);

    if (validate_crl(crl, c->issuers, &s->v[s->n], why, sizeof(why))) {
      X509_CRL_free(crl);
      snap_fail(s, c->path, why);
      goto done;
    }
    s->n++;
  }
  s->status = GW_VERIFY_OK;

done:
  sk_X509_CRL_pop_free(crls, X509_CRL_free);
  if (s->status != GW_VERIFY_OK) {
    for (i = 0; i < s->n; i++) {
      X509_CRL_free(s->v[i].crl);
      X509_free(s->v[i].signer);
    }
    s->n = 0;
  }
  ERR_clear_error();
  return s;

fail_oom:
  free(buf);
  sk_X509_CRL_pop_free(crls, X509_CRL_free);
  snap_free(s);
  ERR_clear_error();
  return NULL;
}

int gw_crl_new(gw_crl **out, const char *path, STACK_OF(X509) * issuers) {
  gw_crl *c;
  int i;

  if (!out || !path || !*path || !issuers) {
    return GW_ERR_INVALID;
  }
  c = calloc(1, sizeof(*c));
  if (!c) {
    return GW_ERR_NOMEM;
  }
  c->path = strdup(path);
  c->issuers = sk_X509_new_null();
  if (!c->path || !c->issuers) {
    goto fail_c;
  }
  for (i = 0; i < sk_X509_num(issuers); i++) {
    if (!sk_X509_push(c->issuers, sk_X509_value(issuers, i))) {
      goto fail_c;
    }
    X509_up_ref(sk_X509_value(issuers, i));
  }
  if (pthread_rwlock_init(&c->lock, NULL) != 0) {
    goto fail_c;
  }
  if (pthread_mutex_init(&c->reload, NULL) != 0) {
    goto fail_rwlock;
  }
  c->snap = crl_load(c, &c->fid);
  if (!c->snap) {
    goto fail_mutex;
  }
  c->snap->gen = 1;
  atomic_init(&c->loads, 1);
  *out = c;
  return GW_OK;

fail_mutex:
  pthread_mutex_destroy(&c->reload);
fail_rwlock:
  pthread_rwlock_destroy(&c->lock);
fail_c:
  sk_X509_pop_free(c->issuers, X509_free);
  free(c->path);
  free(c);
  return GW_ERR_NOMEM;
}

void gw_crl_del(gw_crl *c) {
  if (!c) {
    return;
  }
  snap_free(c->snap);
  pthread_mutex_destroy(&c->reload);
  pthread_rwlock_destroy(&c->lock);
  sk_X509_pop_free(c->issuers, X509_free);
  free(c->path);
  free(c);
}

/* Whether the file must be read again, given its identity now. */
static int needs_reload(gw_crl *c, const crl_fid *now_fid, time_t now) {
  int r;

  pthread_rwlock_rdlock(&c->lock);
  r = !fid_eq(now_fid, &c->fid) ||
      (c->snap->status != GW_VERIFY_OK &&
       (now - c->last_try >= 1 || now < c->last_try));
  pthread_rwlock_unlock(&c->lock);
  return r;
}

int gw_crl_refresh(gw_crl *c, time_t now) {
  crl_fid f, loaded;
  struct stat st;
  crl_snap *s, *old;

  memset(&f, 0, sizeof(f));
  if (stat(c->path, &st) == 0) {
    fid_from_stat(&f, &st);
  }
  if (!needs_reload(c, &f, now)) {
    return 0;
  }
  pthread_mutex_lock(&c->reload);
  if (!needs_reload(c, &f, now)) { /* another thread did it */
    pthread_mutex_unlock(&c->reload);
    return 0;
  }
  s = crl_load(c, &loaded);
  if (!s) { /* out of memory: keep the current CRLs, retry next time */
    pthread_mutex_unlock(&c->reload);
    return 0;
  }
  pthread_rwlock_wrlock(&c->lock);
  old = c->snap;
  s->gen = old->gen + 1;
  c->snap = s;
  c->fid = loaded;
  c->last_try = now;
  pthread_rwlock_unlock(&c->lock);
  pthread_mutex_unlock(&c->reload);
  snap_free(old);
  atomic_fetch_add(&c->loads, 1);
  return 1;
}

uint64_t gw_crl_generation(gw_crl *c) {
  uint64_t g;

  pthread_rwlock_rdlock(&c->lock);
  g = c->snap->gen;
  pthread_rwlock_unlock(&c->lock);
  return g;
}

uint64_t gw_crl_loads(gw_crl *c) {
  return atomic_load(&c->loads);
}

gw_verify_result gw_crl_state(gw_crl *c, char *detail, size_t n) {
  gw_verify_result r;

  pthread_rwlock_rdlock(&c->lock);
  r = c->snap->status;
  if (r != GW_VERIFY_OK) {
    gw_verify_setf(detail, n, "%s", c->snap->detail);
  }
  pthread_rwlock_unlock(&c->lock);
  return r;
}

/* Writes "serial <hex> revoked at <time> (<reason>)" for |rev|. */
static void describe_revoked(X509_REVOKED *rev, const char *dn, char *detail,
                             size_t n) {
  const ASN1_INTEGER *serial = X509_REVOKED_get0_serialNumber(rev);
  ASN1_ENUMERATED *reason;
  BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  char when[GW_VERIFY_TIME_STR] = "?";
  time_t t;
  long code = -1;

  if (!gw_verify_asn1_time(X509_REVOKED_get0_revocationDate(rev), &t)) {
    gw_verify_fmt_time(t, when);
  }
  reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
  if (reason) {
    code = ASN1_ENUMERATED_get(reason);
    ASN1_ENUMERATED_free(reason);
  }
  gw_verify_setf(detail, n, "serial %s revoked at %s (%s) by the CRL of %s",
                 hex ? hex : "?", when,
                 code >= 0 ? OCSP_crl_reason_str(code) : "no reason given", dn);
  OPENSSL_free(hex);
  BN_free(bn);
}

gw_verify_result gw_crl_check(gw_crl *c, X509 *cert, X509 *issuer, time_t now,
                              int skew_s, time_t *next_update, uint64_t *gen,
                              char *detail, size_t n) {
  const crl_one *best = NULL;
  X509_REVOKED *rev = NULL;
  gw_verify_result r;
  char dn[CRL_DN_MAX], t[GW_VERIFY_TIME_STR];
  crl_snap *s;
  int i;

  gw_verify_fmt_name(X509_get_subject_name(issuer), dn, sizeof(dn));
  pthread_rwlock_rdlock(&c->lock);
  s = c->snap;
  if (gen) {
    *gen = s->gen;
  }
  if (s->status != GW_VERIFY_OK) {
    gw_verify_setf(detail, n, "%s", s->detail);
    r = s->status;
    goto out;
  }
  for (i = 0; i < s->n; i++) {
    const crl_one *o = &s->v[i];

    if (X509_NAME_cmp(X509_CRL_get_issuer(o->crl),
                      X509_get_subject_name(issuer)) != 0) {
      continue;
    }
    if (X509_cmp(o->signer, issuer) != 0 &&
        EVP_PKEY_eq(X509_get0_pubkey(o->signer), X509_get0_pubkey(issuer)) !=
            1) {
      continue;
    }
    if (!best || o->this_update > best->this_update) {
      best = o;
    }
  }
  if (!best) {
    gw_verify_setf(detail, n, "no CRL from %s", dn);
    r = GW_VERIFY_CRL_UNAVAILABLE;
    goto out;
  }
  /* A listed certificate is revoked whatever the CRL's age. */
  if (X509_CRL_get0_by_cert(best->crl, &rev, cert) == 1) {
    describe_revoked(rev, dn, detail, n);
    r = GW_VERIFY_REVOKED;
    goto out;
  }
  if (best->this_update > now + skew_s) {
    gw_verify_fmt_time(best->this_update, t);
    gw_verify_setf(detail, n, "CRL of %s is not valid before %s", dn, t);
    r = GW_VERIFY_CRL_UNAVAILABLE;
    goto out;
  }
  if (now > best->next_update + skew_s) {
    gw_verify_fmt_time(best->next_update, t);
    gw_verify_setf(detail, n, "CRL of %s expired at %s (nextUpdate)", dn, t);
    r = GW_VERIFY_CRL_EXPIRED;
    goto out;
  }
  if (next_update) {
    *next_update = best->next_update;
  }
  r = GW_VERIFY_OK;

out:
  pthread_rwlock_unlock(&c->lock);
  ERR_clear_error();
  return r;
}
