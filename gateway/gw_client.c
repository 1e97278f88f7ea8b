/* gw_client.c — the relying parties: their rules (gw_client_check), the
 * in-memory snapshot the request paths read, client authentication (RFC
 * 6749 §2.3.1) and the seed file. See gw_client.h and docs/oidc.md. */
#include "gw_client.h"

#include <errno.h>
#include <libconfig.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "gw_err.h"
#include "gw_form.h"
#include "gw_log.h"

/* The most clients a snapshot holds (a row is about 11 KiB). */
#define CLIENTS_MAX 1024
/* The largest seed file read. */
#define SEED_FILE_MAX (1024 * 1024)
/* The longest base64 credentials of a Basic header: 1024 bytes decoded,
 * far above any client_id:secret this gateway issues. */
#define BASIC_B64_MAX 1368
#define BASIC_RAW_MAX (BASIC_B64_MAX / 4 * 3)

static const char ciba_grant[] = "urn:openid:params:grant-type:ciba";

typedef struct word_bit {
  const char *word;
  unsigned bit;
} word_bit;

static const word_bit grant_words[] = {
    {ciba_grant, GW_GRANT_CIBA},
    {"authorization_code", GW_GRANT_AUTH_CODE},
    {"refresh_token", GW_GRANT_REFRESH},
};

static const word_bit auth_words[] = {
    {"client_secret_basic", GW_AUTH_BASIC},
    {"client_secret_post", GW_AUTH_POST},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- lists ------------------------------------------------------------- */

/* Steps through the words of a list, separated by single spaces: |*p| is
 * the cursor, from list_begin, NULL at the end. Returns 1 with the word in
 * |*w| / |*n|, or 0 at the end. Doubled, leading or trailing spaces give
 * empty words (n == 0), which list_check refuses. */
static int list_next(const char **p, const char **w, size_t *n) {
  const char *s = *p, *e;

  if (!s) {
    return 0;
  }
  e = strchr(s, ' ');
  *w = s;
  if (e) {
    *n = (size_t)(e - s);
    *p = e + 1;
  } else {
    *n = strlen(s);
    *p = NULL;
  }
  return 1;
}

/* The cursor of an empty list is at its end already. */
static const char *list_begin(const char *list) {
  return list && list[0] ? list : NULL;
}

/* Quotes a value for an error message: bytes from a file or the command
 * line reach a terminal only escaped, and long ones are cut. */
static const char *quote_val(char *buf, size_t cap, const char *v, size_t n) {
  return gw_log_quote(buf, cap, v, n > 80 ? 80 : n);
}

int gw_client_list_has(const char *list, const char *word) {
  const char *p = list_begin(list), *w;
  size_t n, wl;

  if (!list || !word || !word[0] || strchr(word, ' ')) {
    return 0;
  }
  wl = strlen(word);
  while (list_next(&p, &w, &n)) {
    if (n == wl && memcmp(w, word, n) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Non-zero when |n| bytes at |w| are a word |table| knows; its bit goes to
 * |*bit|. */
static int word_lookup(const word_bit *table, size_t count, const char *w,
                       size_t n, unsigned *bit) {
  for (size_t i = 0; i < count; i++) {
    if (strlen(table[i].word) == n && memcmp(table[i].word, w, n) == 0) {
      *bit = table[i].bit;
      return 1;
    }
  }
  return 0;
}

/* What a word of a list may hold. */
enum { W_PRINTABLE, W_SCOPE };

/* Checks the list syntax: words separated by one space, none empty or
 * repeated, each of the allowed bytes (scope tokens: RFC 6749 §3.3). */
static int list_check(const char *name, const char *list, int kind, char *err,
                      size_t errlen) {
  const char *p = list_begin(list), *w, *o, *v;
  char qb[200];
  size_t n, m;

  while (list_next(&p, &w, &n)) {
    if (n == 0) {
      gw_errf(err, errlen, "%s: words are separated by one space", name);
      return GW_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
      unsigned char c = (unsigned char)w[i];
      if (c <= 0x20 || c >= 0x7f ||
          (kind == W_SCOPE && (c == '"' || c == '\\'))) {
        gw_errf(err, errlen, "%s: %s holds a byte not allowed (0x%02x)", name,
                quote_val(qb, sizeof(qb), w, n), c);
        return GW_ERR_INVALID;
      }
    }
    o = list_begin(list);
    while (list_next(&o, &v, &m) && v < w) {
      if (m == n && memcmp(v, w, n) == 0) {
        gw_errf(err, errlen, "%s: %s is listed twice", name,
                quote_val(qb, sizeof(qb), w, n));
        return GW_ERR_INVALID;
      }
    }
  }
  return GW_OK;
}

/* Parses a list of known words into bits. */
static int list_bits(const char *name, const char *list, const word_bit *table,
                     size_t count, unsigned *bits, char *err, size_t errlen) {
  const char *p = list_begin(list), *w;
  char qb[200];
  unsigned bit;
  size_t n;
  int rv = list_check(name, list, W_PRINTABLE, err, errlen);

  *bits = 0;
  if (rv != GW_OK) {
    return rv;
  }
  while (list_next(&p, &w, &n)) {
    if (!word_lookup(table, count, w, n, &bit)) {
      gw_errf(err, errlen, "%s: unknown value %s", name,
              quote_val(qb, sizeof(qb), w, n));
      return GW_ERR_INVALID;
    }
    *bits |= bit;
  }
  return GW_OK;
}

/* ---- URLs and text ----------------------------------------------------- */

/* Non-zero when the authority |a| (|n| bytes) is the loopback host, with
 * or without a port: the only place plain http is allowed (a developer's
 * RP on the same machine). */
static int url_loopback(const char *a, size_t n) {
  static const char *const hosts[] = {"127.0.0.1", "localhost", "[::1]"};

  for (size_t i = 0; i < N_OF(hosts); i++) {
    size_t h = strlen(hosts[i]);
    if (n >= h && memcmp(a, hosts[i], h) == 0 && (n == h || a[h] == ':')) {
      return 1;
    }
  }
  return 0;
}

/* Checks one URL: https://host..., or http:// to the loopback host; no
 * fragment (RFC 6749 §3.1.2, RFC 8707 §2), no user info, no spaces or
 * control bytes. |https_only| refuses http even on loopback. */
static int url_check(const char *name, const char *u, size_t n, int https_only,
                     char *err, size_t errlen) {
  const char *a;
  char qb[200];
  size_t alen, scheme;

  if (n > GW_STORE_URL_MAX) {
    gw_errf(err, errlen, "%s: a URL is longer than %d bytes", name,
            GW_STORE_URL_MAX);
    return GW_ERR_INVALID;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)u[i];
    if (c <= 0x20 || c >= 0x7f || c == '#') {
      gw_errf(err, errlen, "%s: %s holds a space, a control byte or a fragment",
              name, quote_val(qb, sizeof(qb), u, n));
      return GW_ERR_INVALID;
    }
  }
  if (n > 8 && strncmp(u, "https://", 8) == 0) {
    scheme = 8;
  } else if (n > 7 && strncmp(u, "http://", 7) == 0 && !https_only) {
    scheme = 7;
  } else {
    gw_errf(err, errlen, "%s: %s is not an https:// URL%s", name,
            quote_val(qb, sizeof(qb), u, n),
            https_only ? "" : " (http:// only to 127.0.0.1 or localhost)");
    return GW_ERR_INVALID;
  }
  /* The authority ends at the path or the query; |u| may go on past |n|
   * (a word of a list), hence the clamp. */
  a = u + scheme;
  alen = strcspn(a, "/?");
  if (alen > n - scheme) {
    alen = n - scheme;
  }
  if (alen == 0 || memchr(a, '@', alen)) {
    gw_errf(err, errlen, "%s: %s has no host, or has user info", name,
            quote_val(qb, sizeof(qb), u, n));
    return GW_ERR_INVALID;
  }
  if (scheme == 7 && !url_loopback(a, alen)) {
    gw_errf(err, errlen,
            "%s: %s: http:// only to 127.0.0.1 or localhost; use https://",
            name, quote_val(qb, sizeof(qb), u, n));
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

/* Checks a list of URLs. */
static int url_list_check(const char *name, const char *list, char *err,
                          size_t errlen) {
  const char *p = list_begin(list), *w;
  size_t n;
  int rv = list_check(name, list, W_PRINTABLE, err, errlen);

  while (rv == GW_OK && list_next(&p, &w, &n)) {
    rv = url_check(name, w, n, 0, err, errlen);
  }
  return rv;
}

/* Non-zero when |p| is well-formed UTF-8 without control characters (C0,
 * DEL, C1): text shown on a phone and written to logs. */
static int utf8_text_ok(const unsigned char *p) {
  while (*p) {
    unsigned c = *p, cp, len;

    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) {
        return 0;
      }
      p++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return 0;
    }
    for (unsigned k = 1; k < len; k++) {
      if ((p[k] & 0xc0) != 0x80) {
        return 0; /* also stops at the NUL */
      }
      cp = (cp << 6) | (p[k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
        (cp >= 0x80 && cp < 0xa0)) {
      return 0;
    }
    p += len;
  }
  return 1;
}

/* ---- the rules of a client -------------------------------------------- */

/* Non-zero when |s| is terminated inside its |cap| bytes. */
static int terminated(const char *s, size_t cap) {
  return memchr(s, '\0', cap) != NULL;
}

static int check_id(const char *id, char *err, size_t errlen) {
  size_t n = strnlen(id, GW_STORE_CLIENT_ID_MAX + 1);

  if (n == 0 || n > GW_STORE_CLIENT_ID_MAX ||
      strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                 "0123456789._-") != n) {
    gw_errf(err, errlen,
            "client_id: 1 to %d of A-Z a-z 0-9 . _ - (got %zu bytes)",
            GW_STORE_CLIENT_ID_MAX, n);
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

/* The CIBA settings: a mode only with the CIBA grant ("" then means
 * poll); ping needs an https endpoint to ping (CIBA Core §4), and the
 * endpoint is for ping alone. */
static int check_ciba(const gw_store_client *r, unsigned grants, char *err,
                      size_t errlen, const char **field) {
  const char *mode = r->ciba_mode, *ep = r->ciba_notification_endpoint;
  char qb[64];

  *field = "ciba_mode";
  if (mode[0] && strcmp(mode, "poll") != 0 && strcmp(mode, "ping") != 0) {
    gw_errf(err, errlen, "ciba_mode: %s is not poll, ping or \"\"",
            quote_val(qb, sizeof(qb), mode, strlen(mode)));
    return GW_ERR_INVALID;
  }
  if (mode[0] && !(grants & GW_GRANT_CIBA)) {
    gw_errf(err, errlen, "ciba_mode: set, but grant_types lacks %s",
            ciba_grant);
    return GW_ERR_INVALID;
  }
  *field = "ciba_notification_endpoint";
  if (strcmp(mode, "ping") == 0) {
    if (!ep[0]) {
      *field = "ciba_mode"; /* the setting that asks for one */
      gw_errf(err, errlen,
              "ciba_notification_endpoint: ping mode needs an https:// "
              "endpoint");
      return GW_ERR_INVALID;
    }
    return url_check("ciba_notification_endpoint", ep, strlen(ep), 1, err,
                     errlen);
  }
  if (ep[0]) {
    gw_errf(err, errlen,
            "ciba_notification_endpoint: only for ciba_mode \"ping\"");
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

/* The lists of a row, in the order they are checked. */
static int check_lists(const gw_store_client *r, unsigned *grants,
                       unsigned *methods, char *err, size_t errlen,
                       const char **field) {
  int rv;

  *field = "auth_methods";
  rv = list_bits("auth_methods", r->auth_methods, auth_words, N_OF(auth_words),
                 methods, err, errlen);
  if (rv == GW_OK && !*methods) {
    gw_errf(err, errlen,
            "auth_methods: none given (client_secret_basic, "
            "client_secret_post)");
    rv = GW_ERR_INVALID;
  }
  if (rv != GW_OK) {
    return rv;
  }
  *field = "grant_types";
  rv = list_bits("grant_types", r->grant_types, grant_words, N_OF(grant_words),
                 grants, err, errlen);
  if (rv == GW_OK && !*grants && !r->resource_server) {
    gw_errf(err, errlen,
            "grant_types: none given, and the client is not a "
            "resource server");
    rv = GW_ERR_INVALID;
  }
  if (rv != GW_OK) {
    return rv;
  }
  *field = "scopes";
  rv = list_check("scopes", r->scopes, W_SCOPE, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  *field = "resources";
  rv = url_list_check("resources", r->resources, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  *field = "redirect_uris";
  rv = url_list_check("redirect_uris", r->redirect_uris, err, errlen);
  if (rv == GW_OK && (*grants & GW_GRANT_AUTH_CODE) && !r->redirect_uris[0]) {
    /* OpenID Connect Core §3.1.2.1: redirect_uri must match a registered
     * one exactly, so a code client without one could never sign in. */
    gw_errf(err, errlen,
            "redirect_uris: the authorization_code grant needs "
            "at least one");
    rv = GW_ERR_INVALID;
  }
  return rv;
}

/* gw_client_check, also giving the parsed bits and the name of the field
 * at fault (so that the seed reader can point at its line). */
static int client_check(const gw_store_client *r, unsigned *grants,
                        unsigned *methods, char *err, size_t errlen,
                        const char **field) {
  char qb[64];
  int rv;

#define TERM(f)                                                                \
  do {                                                                         \
    if (!terminated(r->f, sizeof(r->f))) {                                     \
      *field = #f;                                                             \
      gw_errf(err, errlen, #f ": longer than %zu bytes", sizeof(r->f) - 1);    \
      return GW_ERR_INVALID;                                                   \
    }                                                                          \
  } while (0)
  TERM(client_id);
  TERM(name);
  TERM(auth_methods);
  TERM(grant_types);
  TERM(scopes);
  TERM(resources);
  TERM(redirect_uris);
  TERM(ciba_mode);
  TERM(ciba_notification_endpoint);
  TERM(id_token_alg);
#undef TERM

  *field = "client_id";
  rv = check_id(r->client_id, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  *field = "name";
  if (!r->name[0] || !utf8_text_ok((const unsigned char *)r->name)) {
    gw_errf(err, errlen,
            "name: 1 to %d bytes of UTF-8 text without control characters",
            GW_STORE_CLIENT_NAME_MAX);
    return GW_ERR_INVALID;
  }
  *field = "resource_server";
  if (r->resource_server != 0 && r->resource_server != 1) {
    gw_errf(err, errlen, "resource_server: %d is not 0 or 1",
            r->resource_server);
    return GW_ERR_INVALID;
  }
  rv = check_lists(r, grants, methods, err, errlen, field);
  if (rv == GW_OK) {
    rv = check_ciba(r, *grants, err, errlen, field);
  }
  if (rv != GW_OK) {
    return rv;
  }
  *field = "id_token_alg";
  if (strcmp(r->id_token_alg, "ES256") != 0 &&
      strcmp(r->id_token_alg, "RS256") != 0) {
    gw_errf(
        err, errlen, "id_token_alg: %s is not ES256 or RS256",
        quote_val(qb, sizeof(qb), r->id_token_alg, strlen(r->id_token_alg)));
    return GW_ERR_INVALID;
  }
  *field = NULL;
  return GW_OK;
}

int gw_client_check(const gw_store_client *row, char *err, size_t errlen) {
  unsigned grants, methods;
  const char *field;

  if (!row) {
    gw_errf(err, errlen, "no client");
    return GW_ERR_INVALID;
  }
  return client_check(row, &grants, &methods, err, errlen, &field);
}

/* ---- secrets ----------------------------------------------------------- */

void gw_client_secret_hash(const char *secret, unsigned char out[32]) {
  if (!secret) {
    secret = "";
  }
  /* SHA256() cannot fail for memory input in OpenSSL 3 (no allocation). */
  SHA256((const unsigned char *)secret, strlen(secret), out);
}

int gw_client_secret_generate(char *out, size_t cap) {
  unsigned char raw[32], b64[48];
  int n;

  if (!out || cap < 44) {
    return GW_ERR_INVALID;
  }
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    OPENSSL_cleanse(raw, sizeof(raw));
    return GW_ERR_INTERNAL;
  }
  n = EVP_EncodeBlock(b64, raw, sizeof(raw)); /* 44 with one '=' */
  OPENSSL_cleanse(raw, sizeof(raw));
  for (int i = 0; i < 43; i++) {
    out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
  }
  out[43] = '\0';
  OPENSSL_cleanse(b64, sizeof(b64));
  return n == 44 ? GW_OK : GW_ERR_INTERNAL;
}

/* ---- the snapshot ------------------------------------------------------ */

struct gw_clients {
  pthread_rwlock_t lock;
  gw_client *v; /* in client_id order (the store lists them so) */
  size_t n;
  size_t skipped; /* rows the last load left out, to log changes only */
};

typedef struct load_state {
  gw_client *v;
  size_t n, cap;
  size_t skipped;
  char skipped_ids[256]; /* the first ones left out, quoted, for the log */
  char why[256];         /* the reason of the first one */
} load_state;

/* Adds one stored row to the new snapshot. A row that breaks the rules
 * (written by hand, or by an older release) is left out: that client
 * cannot authenticate, the others still can. It is noted for the log. */
static int load_row(const gw_store_client *row, void *arg) {
  load_state *ls = arg;
  unsigned grants, methods;
  const char *field;
  char why[256], qid[160];
  size_t o;
  gw_client *c;

  if (client_check(row, &grants, &methods, why, sizeof(why), &field) != GW_OK) {
    if (ls->skipped++ == 0) {
      memcpy(ls->why, why, sizeof(why));
    }
    gw_log_quote(qid, sizeof(qid), row->client_id,
                 strnlen(row->client_id, sizeof(row->client_id)));
    o = strlen(ls->skipped_ids);
    if (o + strlen(qid) + 2 < sizeof(ls->skipped_ids)) {
      snprintf(ls->skipped_ids + o, sizeof(ls->skipped_ids) - o, "%s%s",
               o ? "," : "", qid);
    }
    return GW_OK;
  }
  if (ls->n == ls->cap) {
    size_t cap = ls->cap ? ls->cap * 2 : 16;
    gw_client *v;

    if (ls->cap >= CLIENTS_MAX) {
      return GW_ERR_LIMIT;
    }
    cap = cap > CLIENTS_MAX ? CLIENTS_MAX : cap;
    v = realloc(ls->v, cap * sizeof(*v));
    if (!v) {
      return GW_ERR_NOMEM;
    }
    ls->v = v;
    ls->cap = cap;
  }
  c = &ls->v[ls->n++];
  c->row = *row;
  c->grants = grants;
  c->auth_methods = methods;
  c->ciba_ping = strcmp(row->ciba_mode, "ping") == 0;
  return GW_OK;
}

/* One line for the rows a load left out (not one a row: the reload runs
 * periodically, and the same rows would fill the log). */
static void log_skipped(const load_state *ls) {
  char qwhy[300];

  gw_log_quote(qwhy, sizeof(qwhy), ls->why, strlen(ls->why));
  GW_LOG(GW_LOG_WARN, "clients left out of the registry snapshot",
         "count=%zu client_ids=%s first_reason=%s", ls->skipped,
         ls->skipped_ids, qwhy);
}

static void clients_free(gw_client *v, size_t n) {
  if (v) {
    OPENSSL_cleanse(v, n * sizeof(*v));
  }
  free(v);
}

/* Reads every client of |st| into a new array. */
static int clients_load(gw_store *st, load_state *ls, char *err,
                        size_t errlen) {
  int rv;

  memset(ls, 0, sizeof(*ls));
  if (!st) {
    gw_errf(err, errlen, "clients: no store");
    return GW_ERR_INVALID;
  }
  rv = gw_store_client_list(st, load_row, ls);
  if (rv != GW_OK) {
    if (rv == GW_ERR_LIMIT) {
      gw_errf(err, errlen, "clients: more than %d in the store", CLIENTS_MAX);
    } else if (rv == GW_ERR_NOMEM) {
      gw_errf(err, errlen, "clients: out of memory");
    } else {
      gw_errf(err, errlen, "clients: %s", gw_store_errmsg(st));
    }
    clients_free(ls->v, ls->n);
    memset(ls, 0, sizeof(*ls));
  }
  return rv;
}

int gw_clients_new(gw_clients **out, gw_store *st, char *err, size_t errlen) {
  load_state ls;
  gw_clients *c;
  int rv;

  if (!out) {
    gw_errf(err, errlen, "clients: no output");
    return GW_ERR_INVALID;
  }
  c = calloc(1, sizeof(*c));
  if (!c) {
    gw_errf(err, errlen, "clients: out of memory");
    return GW_ERR_NOMEM;
  }
  if (pthread_rwlock_init(&c->lock, NULL) != 0) {
    free(c);
    gw_errf(err, errlen, "clients: cannot create a lock");
    return GW_ERR_NOMEM;
  }
  rv = clients_load(st, &ls, err, errlen);
  if (rv != GW_OK) {
    pthread_rwlock_destroy(&c->lock);
    free(c);
    return rv;
  }
  c->v = ls.v;
  c->n = ls.n;
  c->skipped = ls.skipped;
  if (ls.skipped) {
    log_skipped(&ls);
  }
  *out = c;
  return GW_OK;
}

int gw_clients_reload(gw_clients *c, gw_store *st) {
  load_state ls;
  gw_client *old;
  size_t old_n;
  int rv, changed;

  if (!c) {
    return GW_ERR_INVALID;
  }
  /* Read the store without the lock: requests go on with the old
   * contents meanwhile, and only the swap excludes them. */
  rv = clients_load(st, &ls, NULL, 0);
  if (rv != GW_OK) {
    return rv;
  }
  pthread_rwlock_wrlock(&c->lock);
  old = c->v;
  old_n = c->n;
  c->v = ls.v;
  c->n = ls.n;
  changed = ls.skipped != c->skipped;
  c->skipped = ls.skipped;
  pthread_rwlock_unlock(&c->lock);
  clients_free(old, old_n);
  if (changed && ls.skipped) {
    log_skipped(&ls);
  }
  return GW_OK;
}

void gw_clients_del(gw_clients *c) {
  if (!c) {
    return;
  }
  clients_free(c->v, c->n);
  pthread_rwlock_destroy(&c->lock);
  free(c);
}

/* Binary search by client_id; the caller holds the lock. The store's
 * ORDER BY client_id compares bytes, as strcmp does. */
static const gw_client *clients_find(const gw_clients *c, const char *id) {
  size_t lo = 0, hi = c->n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int d = strcmp(id, c->v[mid].row.client_id);

    if (d == 0) {
      return &c->v[mid];
    }
    if (d < 0) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return NULL;
}

int gw_clients_get(gw_clients *c, const char *client_id, gw_client *out) {
  const gw_client *f;

  if (!c || !client_id || !out) {
    return GW_ERR_INVALID;
  }
  pthread_rwlock_rdlock(&c->lock);
  f = clients_find(c, client_id);
  if (f) {
    *out = *f;
  }
  pthread_rwlock_unlock(&c->lock);
  return f ? GW_OK : GW_ERR_NOT_FOUND;
}

size_t gw_clients_count(gw_clients *c) {
  size_t n;

  if (!c) {
    return 0;
  }
  pthread_rwlock_rdlock(&c->lock);
  n = c->n;
  pthread_rwlock_unlock(&c->lock);
  return n;
}

/* ---- client authentication -------------------------------------------- */

/* Credentials taken from a request; the buffers hold the Basic ones. */
typedef struct creds {
  char id_buf[BASIC_RAW_MAX + 1];
  char secret_buf[BASIC_RAW_MAX + 1];
  const char *id, *secret;
  unsigned method;
} creds;

/* Strict base64 (RFC 4648 §4, padded): what RFC 7617 puts in a Basic
 * header. Returns the decoded length, or -1. */
static int b64_decode(const char *s, size_t n, unsigned char *out) {
  size_t pad = 0;
  int len;

  if (n == 0 || n % 4 || n > BASIC_B64_MAX) {
    return -1;
  }
  while (pad < 2 && s[n - 1 - pad] == '=') {
    pad++;
  }
  for (size_t i = 0; i < n - pad; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || c == '+' || c == '/')) {
      return -1;
    }
  }
  len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
  return len < 0 ? -1 : len - (int)pad;
}

/* Reads "Basic base64(urlencode(id):urlencode(secret))" (RFC 6749
 * §2.3.1: both parts form-urlencoded before base64, so that an id or a
 * secret may hold a colon). */
static gw_client_auth_result basic_parse(const char *authz, creds *cr,
                                         const char **why) {
  unsigned char raw[BASIC_RAW_MAX + 3];
  const char *b64, *colon;
  size_t n, idn, secn;
  int len;
  gw_client_auth_result r = GW_CLIENT_AUTH_MALFORMED;

  if (strncasecmp(authz, "Basic ", 6) != 0) {
    *why = "Authorization is not Basic";
    return r;
  }
  b64 = authz + 6;
  b64 += strspn(b64, " ");
  n = strlen(b64);
  while (n && (b64[n - 1] == ' ' || b64[n - 1] == '\t')) {
    n--;
  }
  len = b64_decode(b64, n, raw);
  if (len < 0) {
    *why = "Basic credentials are not base64";
    goto done;
  }
  colon = memchr(raw, ':', (size_t)len);
  if (!colon) {
    *why = "Basic credentials without a colon";
    goto done;
  }
  idn = (size_t)(colon - (const char *)raw);
  secn = (size_t)len - idn - 1;
  if (gw_url_decode(cr->id_buf, (const char *)raw, idn, 1, NULL) != GW_OK ||
      gw_url_decode(cr->secret_buf, colon + 1, secn, 1, NULL) != GW_OK) {
    *why = "Basic credentials are not form-urlencoded";
    goto done;
  }
  if (!cr->id_buf[0]) {
    *why = "Basic credentials without a client_id";
    goto done;
  }
  cr->id = cr->id_buf;
  cr->secret = cr->secret_buf;
  cr->method = GW_AUTH_BASIC;
  r = GW_CLIENT_AUTH_OK;
done:
  OPENSSL_cleanse(raw, sizeof(raw));
  return r;
}

/* Decides which credentials the request carries. */
static gw_client_auth_result creds_get(const char *authz, const char *form_id,
                                       const char *form_secret, creds *cr,
                                       const char **why) {
  gw_client_auth_result r;

  if (authz && authz[0]) {
    r = basic_parse(authz, cr, why);
    if (r != GW_CLIENT_AUTH_OK) {
      return r;
    }
    /* RFC 6749 §2.3: "MUST NOT use more than one authentication method in
     * each request". A client_id beside Basic is allowed (§3.2.1), if it
     * names the same client. */
    if (form_secret) {
      *why = "both client_secret_basic and client_secret_post";
      return GW_CLIENT_AUTH_MALFORMED;
    }
    if (form_id && strcmp(form_id, cr->id) != 0) {
      *why = "client_id differs from the Basic credentials";
      return GW_CLIENT_AUTH_MALFORMED;
    }
    return GW_CLIENT_AUTH_OK;
  }
  if (form_secret) {
    if (!form_id || !form_id[0]) {
      *why = "client_secret without client_id";
      return GW_CLIENT_AUTH_MALFORMED;
    }
    cr->id = form_id;
    cr->secret = form_secret;
    cr->method = GW_AUTH_POST;
    return GW_CLIENT_AUTH_OK;
  }
  *why = form_id ? "client_id without a secret" : "no client credentials";
  return GW_CLIENT_AUTH_NONE;
}

gw_client_auth_result gw_client_authenticate(gw_clients *c, const char *authz,
                                             const char *form_id,
                                             const char *form_secret,
                                             gw_client *out, const char **why) {
  /* What an unknown client's hash is compared with: the same work. */
  static const unsigned char nobody[32];
  const char *dummy_why;
  unsigned char hash[32];
  const gw_client *f;
  gw_client_auth_result r;
  creds *cr;
  int same;

  if (!why) {
    why = &dummy_why;
  }
  *why = "";
  if (!c || !out) {
    *why = "no client registry";
    return GW_CLIENT_AUTH_FAILED;
  }
  /* 2 KiB of buffers: on the heap, not an event loop's stack. */
  cr = calloc(1, sizeof(*cr));
  if (!cr) {
    *why = "out of memory";
    return GW_CLIENT_AUTH_FAILED;
  }
  r = creds_get(authz, form_id, form_secret, cr, why);
  if (r != GW_CLIENT_AUTH_OK) {
    goto done;
  }
  /* Hash first, whoever the client is: an unknown client_id costs what a
   * known one does, so timing does not tell which ids exist. */
  gw_client_secret_hash(cr->secret, hash);
  pthread_rwlock_rdlock(&c->lock);
  f = clients_find(c, cr->id);
  same = CRYPTO_memcmp(hash, f ? f->row.secret_sha256 : nobody, 32) == 0;
  if (!f) {
    *why = "unknown client";
    r = GW_CLIENT_AUTH_FAILED;
  } else if (!same) {
    *why = "wrong secret";
    r = GW_CLIENT_AUTH_FAILED;
  } else if (!(f->auth_methods & cr->method)) {
    *why = cr->method == GW_AUTH_BASIC
               ? "client_secret_basic not allowed for this client"
               : "client_secret_post not allowed for this client";
    r = GW_CLIENT_AUTH_FAILED;
  } else {
    *out = *f;
  }
  pthread_rwlock_unlock(&c->lock);
  OPENSSL_cleanse(hash, sizeof(hash));
done:
  OPENSSL_cleanse(cr, sizeof(*cr));
  free(cr);
  return r;
}

/* ---- the seed file ----------------------------------------------------- */

typedef struct seed_ctx {
  const char *path;
  char *dir; /* absolute directory of the file (for @include) */
  int demo;
  char *err;
  size_t errlen;
} seed_ctx;

/* Writes "file:line: reason" (or "file: reason" without a setting).
 * Returns |rv|. */
static int seed_fail(seed_ctx *c, int rv, const config_setting_t *s,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int seed_fail(seed_ctx *c, int rv, const config_setting_t *s,
                     const char *fmt, ...) {
  const char *inc = s ? config_setting_source_file(s) : NULL;
  va_list ap;
  int n;

  if (!c->err || c->errlen == 0) {
    return rv;
  }
  if (inc) {
    /* From an @include'd file, which libconfig names as written. */
    n = snprintf(c->err, c->errlen,
                 "%s%s%s:%u: ", inc[0] == '/' || !c->dir ? "" : c->dir,
                 inc[0] == '/' || !c->dir ? "" : "/", inc,
                 (unsigned)config_setting_source_line(s));
  } else if (s) {
    n = snprintf(c->err, c->errlen, "%s:%u: ", c->path,
                 (unsigned)config_setting_source_line(s));
  } else {
    n = snprintf(c->err, c->errlen, "%s: ", c->path);
  }
  if (n < 0 || (size_t)n >= c->errlen) {
    return rv;
  }
  va_start(ap, fmt);
  vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return rv;
}

static const char *seed_type(const config_setting_t *s) {
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_GROUP:
    return "a group";
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64:
    return "an integer";
  case CONFIG_TYPE_FLOAT:
    return "a float";
  case CONFIG_TYPE_STRING:
    return "a string";
  case CONFIG_TYPE_BOOL:
    return "a boolean";
  case CONFIG_TYPE_ARRAY:
    return "an array";
  case CONFIG_TYPE_LIST:
    return "a list";
  default:
    return "something else";
  }
}

/* The keys of a client group; `secret` and `secret_sha256` are read apart.
 * |off| is the row field of a string or list, |list| says which. */
typedef struct seed_key {
  const char *name;
  size_t off, cap;
  int list;
} seed_key;

#define SK(f, l)                                                               \
  { #f, offsetof(gw_store_client, f), sizeof(((gw_store_client *)0)->f), l }

static const seed_key seed_keys[] = {
    SK(client_id, 0),     SK(name, 0),      SK(auth_methods, 1),
    SK(grant_types, 1),   SK(scopes, 1),    SK(resources, 1),
    SK(redirect_uris, 1), SK(ciba_mode, 0), SK(ciba_notification_endpoint, 0),
    SK(id_token_alg, 0),
};

#undef SK

static const char seed_known[] =
    "client_id, name, secret, secret_sha256, auth_methods, grant_types, "
    "scopes, resources, redirect_uris, ciba_mode, ciba_notification_endpoint, "
    "id_token_alg, resource_server";

/* Copies the string setting |s| into |dst| (|cap| bytes with the NUL). */
static int seed_string(seed_ctx *c, const config_setting_t *s, char *dst,
                       size_t cap) {
  const char *v;
  size_t n;

  if (config_setting_type(s) != CONFIG_TYPE_STRING) {
    return seed_fail(c, GW_ERR_CONFIG, s,
                     "clients.%s: expected a string, got %s",
                     config_setting_name(s), seed_type(s));
  }
  v = config_setting_get_string(s);
  n = strlen(v);
  if (n >= cap) {
    return seed_fail(c, GW_ERR_CONFIG, s, "clients.%s: longer than %zu bytes",
                     config_setting_name(s), cap - 1);
  }
  memcpy(dst, v, n + 1);
  return GW_OK;
}

/* Joins the array of strings |s| into a space-separated list. */
static int seed_list(seed_ctx *c, const config_setting_t *s, char *dst,
                     size_t cap) {
  const char *name = config_setting_name(s);
  size_t o = 0;
  int n;

  if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
    return seed_fail(c, GW_ERR_CONFIG, s,
                     "clients.%s: expected an array of strings [\"...\", "
                     "...], got %s",
                     name, seed_type(s));
  }
  n = config_setting_length(s);
  dst[0] = '\0';
  for (int i = 0; i < n; i++) {
    const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
    const char *v;
    size_t len;

    if (config_setting_type(e) != CONFIG_TYPE_STRING) {
      return seed_fail(c, GW_ERR_CONFIG, s,
                       "clients.%s: element %d is %s, not a string", name,
                       i + 1, seed_type(e));
    }
    v = config_setting_get_string(e);
    len = strlen(v);
    if (len == 0 || strpbrk(v, " \t\r\n")) {
      return seed_fail(c, GW_ERR_CONFIG, s,
                       "clients.%s: element %d is empty or holds a space", name,
                       i + 1);
    }
    if (o + (o ? 1 : 0) + len >= cap) {
      return seed_fail(c, GW_ERR_CONFIG, s,
                       "clients.%s: longer than %zu bytes in all", name,
                       cap - 1);
    }
    if (o) {
      dst[o++] = ' ';
    }
    memcpy(dst + o, v, len + 1);
    o += len;
  }
  return GW_OK;
}

static int hex_nibble(int ch) {
  if (ch >= '0' && ch <= '9') {
    return ch - '0';
  }
  if (ch >= 'a' && ch <= 'f') {
    return ch - 'a' + 10;
  }
  if (ch >= 'A' && ch <= 'F') {
    return ch - 'A' + 10;
  }
  return -1;
}

/* Reads `secret` or `secret_sha256` (exactly one) into the row's hash. */
static int seed_secret(seed_ctx *c, config_setting_t *g, gw_store_client *r) {
  config_setting_t *plain = config_setting_get_member(g, "secret");
  config_setting_t *hex = config_setting_get_member(g, "secret_sha256");
  const char *v;
  size_t n;

  if (!plain == !hex) {
    return seed_fail(c, GW_ERR_CONFIG, plain ? plain : g,
                     "client \"%s\": give secret or secret_sha256 (exactly "
                     "one)",
                     r->client_id);
  }
  if (hex) {
    v = config_setting_type(hex) == CONFIG_TYPE_STRING
            ? config_setting_get_string(hex)
            : "";
    if (strlen(v) != 64) {
      return seed_fail(c, GW_ERR_CONFIG, hex,
                       "clients.secret_sha256: 64 hex digits expected");
    }
    for (int i = 0; i < 32; i++) {
      int hi = hex_nibble(v[2 * i]), lo = hex_nibble(v[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        return seed_fail(c, GW_ERR_CONFIG, hex,
                         "clients.secret_sha256: 64 hex digits expected");
      }
      r->secret_sha256[i] = (unsigned char)(hi << 4 | lo);
    }
    return GW_OK;
  }
  if (config_setting_type(plain) != CONFIG_TYPE_STRING) {
    return seed_fail(c, GW_ERR_CONFIG, plain,
                     "clients.secret: expected a string, got %s",
                     seed_type(plain));
  }
  v = config_setting_get_string(plain);
  n = strlen(v);
  if (n == 0 || (n < GW_CLIENT_SECRET_MIN && !c->demo)) {
    /* The length only: the secret itself is never printed. */
    return seed_fail(c, GW_ERR_CONFIG, plain,
                     "clients.secret: %zu bytes, at least %d are needed (or "
                     "oidc.demo = true for a demo)",
                     n, GW_CLIENT_SECRET_MIN);
  }
  gw_client_secret_hash(v, r->secret_sha256);
  return GW_OK;
}

/* libconfig keeps its own copy of every string and frees it without
 * wiping: wipe the plain secrets before config_destroy, whatever the
 * outcome (an error may stop the walk before a client's secret is read).
 * The strings are the parser's heap copies; only their bytes change. */
static void seed_wipe_secrets(config_t *lc) {
  config_setting_t *list = config_lookup(lc, "clients");
  int n =
      list && (config_setting_is_list(list) || config_setting_is_array(list))
          ? config_setting_length(list)
          : 0;

  for (int i = 0; i < n; i++) {
    config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
    config_setting_t *m = config_setting_is_group(g)
                              ? config_setting_get_member(g, "secret")
                              : NULL;
    const char *v = m && config_setting_type(m) == CONFIG_TYPE_STRING
                        ? config_setting_get_string(m)
                        : NULL;

    if (v) {
      OPENSSL_cleanse((char *)(uintptr_t)v, strlen(v));
    }
  }
}

/* Refuses keys of a client group that are not known (a typo would else
 * leave a setting at its default without a word). */
static int seed_known_keys(seed_ctx *c, config_setting_t *g) {
  for (int j = 0; j < config_setting_length(g); j++) {
    config_setting_t *m = config_setting_get_elem(g, (unsigned)j);
    const char *name = config_setting_name(m);
    int ok = strcmp(name, "secret") == 0 ||
             strcmp(name, "secret_sha256") == 0 ||
             strcmp(name, "resource_server") == 0;

    for (size_t k = 0; !ok && k < N_OF(seed_keys); k++) {
      ok = strcmp(name, seed_keys[k].name) == 0;
    }
    if (!ok) {
      return seed_fail(c, GW_ERR_CONFIG, m,
                       "unknown key \"clients.%s\" (known: %s)", name,
                       seed_known);
    }
  }
  return GW_OK;
}

/* Reads one client group into |r| and checks it. */
static int seed_client(seed_ctx *c, config_setting_t *g, gw_store_client *r) {
  config_setting_t *m;
  char why[256];
  const char *field;
  unsigned grants, methods;
  int rv;

  memset(r, 0, sizeof(*r));
  rv = seed_known_keys(c, g);
  if (rv != GW_OK) {
    return rv;
  }
  snprintf(r->auth_methods, sizeof(r->auth_methods),
           "client_secret_basic client_secret_post");
  snprintf(r->id_token_alg, sizeof(r->id_token_alg), "ES256");
  if (!config_setting_get_member(g, "client_id")) {
    return seed_fail(c, GW_ERR_CONFIG, g, "a client without client_id");
  }
  for (size_t k = 0; k < N_OF(seed_keys); k++) {
    char *dst = (char *)r + seed_keys[k].off;

    m = config_setting_get_member(g, seed_keys[k].name);
    if (!m) {
      continue;
    }
    rv = seed_keys[k].list ? seed_list(c, m, dst, seed_keys[k].cap)
                           : seed_string(c, m, dst, seed_keys[k].cap);
    if (rv != GW_OK) {
      return rv;
    }
  }
  m = config_setting_get_member(g, "resource_server");
  if (m && config_setting_type(m) != CONFIG_TYPE_BOOL) {
    return seed_fail(c, GW_ERR_CONFIG, m,
                     "clients.resource_server: expected true or false, got %s",
                     seed_type(m));
  }
  r->resource_server = m ? config_setting_get_bool(m) : 0;
  if (!r->name[0] && strlen(r->client_id) < sizeof(r->name)) {
    memcpy(r->name, r->client_id, strlen(r->client_id) + 1);
  }
  rv = client_check(r, &grants, &methods, why, sizeof(why), &field);
  if (rv != GW_OK) {
    m = field ? config_setting_get_member(g, field) : NULL;
    return seed_fail(c, GW_ERR_CONFIG, m ? m : g, "client \"%.64s\": %s",
                     r->client_id, why);
  }
  return seed_secret(c, g, r);
}

/* Reads the whole file (at most SEED_FILE_MAX bytes) into |*text|. */
static int seed_read(seed_ctx *c, int optional, char **text, size_t *len) {
  struct stat st;
  FILE *fp = fopen(c->path, "rb");
  char *abs, *slash;
  size_t n;

  if (!fp) {
    if (errno == ENOENT && optional) {
      return GW_ERR_NOT_FOUND;
    }
    return seed_fail(c, GW_ERR_IO, NULL, "%s", strerror(errno));
  }
  if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size > SEED_FILE_MAX) {
    fclose(fp);
    return seed_fail(c, GW_ERR_CONFIG, NULL,
                     "not a regular file of at most %d bytes", SEED_FILE_MAX);
  }
  *text = malloc((size_t)st.st_size + 1);
  if (!*text) {
    fclose(fp);
    return seed_fail(c, GW_ERR_NOMEM, NULL, "out of memory");
  }
  n = fread(*text, 1, (size_t)st.st_size, fp);
  fclose(fp);
  (*text)[n] = '\0';
  *len = n;
  if (memchr(*text, '\0', n)) {
    return seed_fail(c, GW_ERR_CONFIG, NULL, "contains a NUL byte");
  }
  abs = realpath(c->path, NULL);
  if (abs) {
    slash = strrchr(abs, '/');
    slash[slash == abs ? 1 : 0] = '\0';
    c->dir = abs;
  }
  return GW_OK;
}

/* Reads every client of the parsed file into |rows| (|*n| of them). */
static int seed_walk(seed_ctx *c, config_t *lc, gw_store_client **rows,
                     size_t *alloc, size_t *n) {
  config_setting_t *root = config_root_setting(lc), *list = NULL;
  int count, rv;

  for (int i = 0; i < config_setting_length(root); i++) {
    config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
    if (strcmp(config_setting_name(s), "clients") != 0) {
      return seed_fail(c, GW_ERR_CONFIG, s,
                       "unknown key \"%s\" (the file holds clients = ( { ... "
                       "}, ... ))",
                       config_setting_name(s));
    }
    list = s;
  }
  if (!list) {
    return GW_OK; /* an empty file: no client */
  }
  count = config_setting_length(list);
  if ((!config_setting_is_list(list) && !config_setting_is_array(list)) ||
      (config_setting_is_array(list) && count > 0)) {
    return seed_fail(c, GW_ERR_CONFIG, list,
                     "clients: expected a list ( { ... }, ... ), got %s",
                     seed_type(list));
  }
  if (count > CLIENTS_MAX) {
    return seed_fail(c, GW_ERR_CONFIG, list, "clients: more than %d",
                     CLIENTS_MAX);
  }
  *rows = calloc(count ? (size_t)count : 1, sizeof(**rows));
  if (!*rows) {
    return seed_fail(c, GW_ERR_NOMEM, NULL, "out of memory");
  }
  *alloc = (size_t)count;
  for (int i = 0; i < count; i++) {
    config_setting_t *g = config_setting_get_elem(list, (unsigned)i);

    if (!config_setting_is_group(g)) {
      return seed_fail(c, GW_ERR_CONFIG, g,
                       "clients: each entry is a group { client_id = "
                       "\"...\"; ... }, not %s",
                       seed_type(g));
    }
    rv = seed_client(c, g, &(*rows)[i]);
    if (rv != GW_OK) {
      return rv;
    }
    for (int j = 0; j < i; j++) {
      if (strcmp((*rows)[j].client_id, (*rows)[i].client_id) == 0) {
        return seed_fail(c, GW_ERR_CONFIG, g, "client \"%s\" is listed twice",
                         (*rows)[i].client_id);
      }
    }
    *n = (size_t)i + 1;
  }
  return GW_OK;
}

/* Puts the checked rows into the store. A row that exists keeps its
 * created_at: the seed runs at every start. */
static int seed_store(seed_ctx *c, gw_store *st, gw_store_client *rows,
                      size_t n) {
  gw_store_client *old = malloc(sizeof(*old));
  int rv = GW_OK;

  if (!old) {
    return seed_fail(c, GW_ERR_NOMEM, NULL, "out of memory");
  }
  for (size_t i = 0; rv == GW_OK && i < n; i++) {
    rv = gw_store_client_get(st, rows[i].client_id, old);
    if (rv == GW_OK) {
      rows[i].created_at = old->created_at;
    }
    if (rv == GW_OK || rv == GW_ERR_NOT_FOUND) {
      rv = gw_store_client_put(st, &rows[i]);
    }
    if (rv != GW_OK) {
      seed_fail(c, rv, NULL, "client \"%s\": store: %s", rows[i].client_id,
                gw_store_errmsg(st));
    }
  }
  free(old);
  return rv;
}

int gw_clients_seed(gw_store *st, const char *path, int demo, int optional,
                    size_t *count, char *err, size_t errlen) {
  seed_ctx c = {.path = path, .demo = demo, .err = err, .errlen = errlen};
  gw_store_client *rows = NULL;
  char *text = NULL;
  size_t len = 0, n = 0, alloc = 0;
  config_t lc;
  int rv;

  if (err && errlen) {
    err[0] = '\0';
  }
  if (count) {
    *count = 0;
  }
  if (!st || !path) {
    gw_errf(err, errlen, "clients: no store or seed file");
    return GW_ERR_INVALID;
  }
  if (!path[0]) {
    return GW_OK; /* oidc.clients_file = "": none */
  }
  rv = seed_read(&c, optional, &text, &len);
  if (rv != GW_OK) {
    if (text) {
      OPENSSL_cleanse(text, len);
    }
    free(text);
    free(c.dir);
    return rv == GW_ERR_NOT_FOUND ? GW_OK : rv;
  }
  config_init(&lc);
  if (c.dir) {
    config_set_include_dir(&lc, c.dir);
  }
  if (config_read_string(&lc, text) != CONFIG_TRUE) {
    const char *inc = config_error_file(&lc);
    int rel = inc && inc[0] != '/' && c.dir;

    /* An @include'd file is named as written, relative to this one. */
    gw_errf(err, errlen, "%s%s%s:%d: %s", rel ? c.dir : "", rel ? "/" : "",
            inc ? inc : path, config_error_line(&lc), config_error_text(&lc));
    rv = GW_ERR_CONFIG;
    goto done;
  }
  rv = seed_walk(&c, &lc, &rows, &alloc, &n);
  if (rv == GW_OK) {
    rv = seed_store(&c, st, rows, n);
  }
  if (rv == GW_OK && count) {
    *count = n;
  }
done:
  seed_wipe_secrets(&lc);
  config_destroy(&lc);
  OPENSSL_cleanse(text, len);
  free(text);
  if (rows) {
    OPENSSL_cleanse(rows, alloc * sizeof(*rows));
  }
  free(rows);
  free(c.dir);
  return rv;
}
