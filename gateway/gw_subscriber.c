/* gw_subscriber.c — subscriber rules, bulk CSV, provisioning and
 * revocation of SIMs. See gw_subscriber.h. */
#include "gw_subscriber.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "gw_err.h"
#include "gw_log.h"

/* A value quoted for a message: control bytes escaped, long values cut. */
static const char *sub_q(char *buf, size_t cap, const char *v) {
  return gw_log_quote(buf, cap, v, strnlen(v, 200));
}

static int sub_all_digits(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return 0;
    }
  }
  return 1;
}

/* ---- checks ------------------------------------------------------------ */

int gw_sub_check_msisdn(const char *s, char *why, size_t n) {
  char q[96];

  if (!s || strncmp(s, "+968", 4) != 0 || strlen(s) != 12 ||
      !sub_all_digits(s + 4, 8)) {
    gw_errf(why, n, "%s is not +968 followed by 8 digits",
            s ? sub_q(q, sizeof(q), s) : "nothing");
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

int gw_sub_check_civil_id(const char *s, char *why, size_t n) {
  char q[96];
  size_t len = s ? strlen(s) : 0;

  if (len == 0 || len > 16 || !sub_all_digits(s, len)) {
    gw_errf(why, n, "%s is not a civil number (1 to 16 digits)",
            s ? sub_q(q, sizeof(q), s) : "nothing");
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

/* Decodes one UTF-8 character at |p| (|left| bytes). Returns its length
 * and the code point in |*cp|, or 0 when malformed (overlong, surrogate,
 * beyond U+10FFFF, truncated). */
static size_t sub_utf8(const unsigned char *p, size_t left, unsigned *cp) {
  unsigned c = p[0], v;
  size_t len, k;

  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    v = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    v = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (len > left) {
    return 0;
  }
  for (k = 1; k < len; k++) {
    if ((p[k] & 0xc0) != 0x80) {
      return 0;
    }
    v = (v << 6) | (p[k] & 0x3f);
  }
  if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10ffff ||
      (v >= 0xd800 && v <= 0xdfff)) {
    return 0;
  }
  *cp = v;
  return len;
}

int gw_sub_check_name(const char *s, char *why, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t len, i = 0, chars = 0;
  char q[96];
  unsigned cp = 0;

  if (!s || !s[0]) {
    gw_errf(why, n, "must not be empty");
    return GW_ERR_INVALID;
  }
  len = strlen(s);
  while (i < len) {
    size_t l = sub_utf8(p + i, len - i, &cp);
    if (l == 0) {
      gw_errf(why, n, "%s is not valid UTF-8", sub_q(q, sizeof(q), s));
      return GW_ERR_INVALID;
    }
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
      gw_errf(why, n, "%s contains a control character",
              sub_q(q, sizeof(q), s));
      return GW_ERR_INVALID;
    }
    i += l;
    chars++;
  }
  if (chars > GW_SUB_NAME_CHARS) {
    gw_errf(why, n, "is %zu characters long, at most %d fit a certificate",
            chars, GW_SUB_NAME_CHARS);
    return GW_ERR_INVALID;
  }
  if (s[0] == ' ' || s[len - 1] == ' ') {
    gw_errf(why, n, "%s begins or ends with a space", sub_q(q, sizeof(q), s));
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

int gw_sub_parse_operator(const char *s, const char **canon, char *why,
                          size_t n) {
  static const char *const ops[] = {"omantel", "ooredoo"};
  char q[96];

  for (size_t i = 0; s && i < sizeof(ops) / sizeof(ops[0]); i++) {
    if (strcasecmp(s, ops[i]) == 0) {
      if (canon) {
        *canon = ops[i];
      }
      return GW_OK;
    }
  }
  gw_errf(why, n, "%s is not omantel or ooredoo",
          s ? sub_q(q, sizeof(q), s) : "nothing");
  return GW_ERR_INVALID;
}

/* The value is a secret: the reason never quotes it. */
int gw_sub_check_pin(const char *s, char *why, size_t n) {
  size_t len = s ? strlen(s) : 0;

  if (len < 4 || len > GW_SUB_PIN_MAX || !sub_all_digits(s, len)) {
    gw_errf(why, n, "a SIM PIN is 4 to %d digits", GW_SUB_PIN_MAX);
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

int gw_sub_check_puk(const char *s, char *why, size_t n) {
  size_t len = s ? strlen(s) : 0;

  if (len != GW_SUB_PUK_LEN || !sub_all_digits(s, len)) {
    gw_errf(why, n, "a PUK is %d digits", GW_SUB_PUK_LEN);
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

int gw_sub_check_behaviour(const char *s, char *why, size_t n) {
  size_t len = s ? strlen(s) : 0, i = 0;
  char q[96];

  if (len == 0) {
    return GW_OK;
  }
  while (i < len && (islower((unsigned char)s[i]) ||
                     isdigit((unsigned char)s[i]) || s[i] == '_')) {
    i++;
  }
  if (i > 0 && i < len && s[i] == ':' && i + 1 < len &&
      sub_all_digits(s + i + 1, len - i - 1)) {
    i = len;
  }
  if (i == 0 || i != len || len > GW_STORE_BEHAVIOUR_MAX) {
    gw_errf(why, n,
            "%s is not a behaviour (a word of a-z, 0-9 and _, optionally "
            "\":\" and digits, as approve:1000)",
            sub_q(q, sizeof(q), s));
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

void gw_sub_request_wipe(gw_sub_request *r) {
  if (r) {
    OPENSSL_cleanse(r, sizeof(*r));
  }
}

/* The fields of a request: how the command line and the CSV name them. */
enum { FLD_MSISDN, FLD_CIVIL, FLD_NAME, FLD_OP, FLD_PIN, FLD_PUK, FLD_BEH };
static const char *const sub_fld_cli[] = {"--msisdn",   "--civil-id", "--name",
                                          "--operator", "--pin",      "--puk",
                                          "behaviour"};

static int sub_request_set(gw_sub_request *r, const char *const *labels,
                           const char *msisdn, const char *civil_id,
                           const char *name, const char *op, const char *pin,
                           const char *puk, const char *behaviour, char *why,
                           size_t n) {
  char reason[256];
  const char *canon = NULL;
  int bad = -1;

  memset(r, 0, sizeof(*r));
  if (!pin || !pin[0]) {
    pin = GW_SUB_DEMO_PIN;
  }
  if (!puk || !puk[0]) {
    puk = GW_SUB_DEMO_PUK;
  }
  if (!behaviour) {
    behaviour = "";
  }
  if (gw_sub_check_msisdn(msisdn, reason, sizeof(reason)) != GW_OK) {
    bad = FLD_MSISDN;
  } else if (gw_sub_check_civil_id(civil_id, reason, sizeof(reason)) != GW_OK) {
    bad = FLD_CIVIL;
  } else if (gw_sub_check_name(name, reason, sizeof(reason)) != GW_OK) {
    bad = FLD_NAME;
  } else if (gw_sub_parse_operator(op, &canon, reason, sizeof(reason)) !=
             GW_OK) {
    bad = FLD_OP;
  } else if (gw_sub_check_pin(pin, reason, sizeof(reason)) != GW_OK) {
    bad = FLD_PIN;
  } else if (gw_sub_check_puk(puk, reason, sizeof(reason)) != GW_OK) {
    bad = FLD_PUK;
  } else if (gw_sub_check_behaviour(behaviour, reason, sizeof(reason)) !=
             GW_OK) {
    bad = FLD_BEH;
  }
  if (bad >= 0) {
    gw_errf(why, n, "%s: %s", labels[bad], reason);
    return GW_ERR_INVALID;
  }
  /* Every length was checked against these arrays above. */
  snprintf(r->msisdn, sizeof(r->msisdn), "%s", msisdn);
  snprintf(r->civil_id, sizeof(r->civil_id), "%s", civil_id);
  snprintf(r->name, sizeof(r->name), "%s", name);
  snprintf(r->operator_name, sizeof(r->operator_name), "%s", canon);
  snprintf(r->pin, sizeof(r->pin), "%s", pin);
  snprintf(r->puk, sizeof(r->puk), "%s", puk);
  snprintf(r->behaviour, sizeof(r->behaviour), "%s", behaviour);
  return GW_OK;
}

int gw_sub_request_set(gw_sub_request *r, const char *msisdn,
                       const char *civil_id, const char *name, const char *op,
                       const char *pin, const char *puk, const char *behaviour,
                       char *why, size_t n) {
  if (!r) {
    return GW_ERR_INVALID;
  }
  return sub_request_set(r, sub_fld_cli, msisdn, civil_id, name, op, pin, puk,
                         behaviour, why, n);
}

/* ---- provisioning ------------------------------------------------------- */

/* The SIM's public key, read from its token right after generation. */
static int sub_public_key(p11_token *t, const gw_sub_request *r, EVP_PKEY **pub,
                          char *err, size_t errlen) {
  p11_key *k = NULL;
  int rv;

  rv = p11_key_find(t, r->pin, GW_SUB_KEY_LABEL, &k);
  if (rv == P11_OK) {
    rv = p11_key_public(k, pub);
    p11_key_del(k);
  }
  if (rv != P11_OK) {
    gw_errf(err, errlen, "token: cannot read the new key: %s",
            p11_strerror(rv));
    return gw_pki_p11_err(rv);
  }
  return GW_OK;
}

int gw_sub_provision(p11_module *m, gw_pki_ca *ca, gw_store *st,
                     const gw_sub_request *r, X509 **cert, char *err,
                     size_t errlen) {
  static const uint8_t key_id[] = {0x01};
  gw_pki_holder holder;
  gw_store_sub *row;
  p11_token *t = NULL;
  EVP_PKEY *pub = NULL;
  X509 *x = NULL;
  BIO *b = NULL;
  char *pem;
  long pemlen;
  int rv;

  if (!m || !ca || !st || !r) {
    return GW_ERR_INVALID;
  }
  row = calloc(1, sizeof(*row));
  if (!row) {
    return GW_ERR_NOMEM;
  }
  rv = gw_store_sub_get(st, r->msisdn, row);
  if (rv == GW_OK) {
    gw_errf(err, errlen, "already provisioned (%s, %s, certificate %s)",
            row->operator_name, row->revoked ? "revoked" : "active",
            row->cert_serial);
    rv = GW_ERR_INVALID;
    goto done;
  }
  if (rv != GW_ERR_NOT_FOUND) {
    gw_errf(err, errlen, "registry: %s", gw_store_errmsg(st));
    goto done;
  }
  if (p11_token_find(m, r->msisdn, &t) == P11_OK) {
    gw_errf(err, errlen,
            "a token with this label exists but the SIM is not in the "
            "registry (a provisioning that failed half-way?): delete it with "
            "softhsm2-util --delete-token --token %s and try again",
            r->msisdn);
    rv = GW_ERR_INVALID;
    goto done;
  }
  /* The CA must be able to sign before a token is made: a wrong CA PIN
   * must not leave a token without a certificate behind. */
  rv = gw_pki_ca_check_key(ca, err, errlen);
  if (rv != GW_OK) {
    goto done;
  }
  /* The SIM: its PUK is the token's SO PIN, its PIN the user PIN. */
  rv = p11_token_init(m, r->msisdn, r->puk, r->pin, &t);
  if (rv == P11_OK) {
    rv = p11_keygen(t, r->pin, P11_KEY_EC_P256, GW_SUB_KEY_LABEL, key_id,
                    sizeof(key_id));
  }
  if (rv != P11_OK) {
    gw_errf(err, errlen, "token: %s", p11_strerror(rv));
    rv = gw_pki_p11_err(rv);
    goto done;
  }
  rv = sub_public_key(t, r, &pub, err, errlen);
  if (rv != GW_OK) {
    goto done;
  }
  holder.msisdn = r->msisdn;
  holder.civil_id = r->civil_id;
  holder.name = r->name;
  rv = gw_pki_ca_issue_sim(ca, pub, &holder, &x, err, errlen);
  if (rv != GW_OK) {
    goto done;
  }

  memset(row, 0, sizeof(*row));
  snprintf(row->msisdn, sizeof(row->msisdn), "%s", r->msisdn);
  snprintf(row->civil_id, sizeof(row->civil_id), "%s", r->civil_id);
  snprintf(row->name, sizeof(row->name), "%s", r->name);
  snprintf(row->operator_name, sizeof(row->operator_name), "%s",
           r->operator_name);
  snprintf(row->behaviour, sizeof(row->behaviour), "%s", r->behaviour);
  rv = gw_pki_serial_hex(x, row->cert_serial, sizeof(row->cert_serial));
  b = BIO_new(BIO_s_mem());
  if (rv == GW_OK && (!b || !PEM_write_bio_X509(b, x))) {
    rv = GW_ERR_NOMEM;
  }
  if (rv == GW_OK) {
    pemlen = BIO_get_mem_data(b, &pem);
    if (pemlen <= 0 || (size_t)pemlen >= sizeof(row->cert_pem)) {
      rv = GW_ERR_TOO_LARGE;
    } else {
      memcpy(row->cert_pem, pem, (size_t)pemlen);
      row->cert_pem[pemlen] = '\0';
    }
  }
  if (rv == GW_OK) {
    rv = gw_store_sub_put(st, row);
    if (rv != GW_OK) {
      gw_errf(err, errlen,
              "the token and certificate %s exist, but the registry failed: "
              "%s",
              row->cert_serial, gw_store_errmsg(st));
    }
  } else {
    ERR_clear_error();
    gw_errf(err, errlen, "cannot encode the certificate: %s", gw_strerror(rv));
  }
  if (rv == GW_OK && cert) {
    *cert = x;
    x = NULL;
  }
done:
  BIO_free(b);
  X509_free(x);
  EVP_PKEY_free(pub);
  free(row);
  return rv;
}

int gw_sub_revoke(gw_pki_ca *ca, gw_store *st, const char *msisdn,
                  gw_pki_reason reason, time_t when, int *already, char *err,
                  size_t errlen) {
  gw_store_sub *row;
  int rv;

  if (already) {
    *already = 0;
  }
  if (!ca || !st || !msisdn) {
    return GW_ERR_INVALID;
  }
  row = calloc(1, sizeof(*row));
  if (!row) {
    return GW_ERR_NOMEM;
  }
  rv = gw_store_sub_get(st, msisdn, row);
  if (rv == GW_ERR_NOT_FOUND) {
    gw_errf(err, errlen, "%s is not in the subscriber registry", msisdn);
    goto done;
  }
  if (rv != GW_OK) {
    gw_errf(err, errlen, "registry: %s", gw_store_errmsg(st));
    goto done;
  }
  if (row->revoked) {
    if (already) {
      *already = 1;
    }
    goto done;
  }
  /* Revoked in index.txt but not in the registry (an earlier run that
   * stopped in between) is fine: the registry is brought in line below. */
  rv = gw_pki_ca_revoke(ca, row->cert_serial, reason, when, NULL, err, errlen);
  if (rv != GW_OK) {
    goto done;
  }
  rv = gw_store_sub_revoke(
      st, msisdn,
      reason == GW_PKI_REASON_NONE ? "" : gw_pki_reason_name(reason),
      (long long)when);
  if (rv != GW_OK) {
    gw_errf(err, errlen,
            "index.txt says revoked, but the registry failed: %s (run the "
            "command again)",
            gw_store_errmsg(st));
  }
done:
  free(row);
  return rv;
}

/* ---- bulk CSV ------------------------------------------------------------ */

#define CSV_LINE_MAX 4096
#define CSV_COLS_MAX 32

/* The columns mpkictl reads, in FLD_* order. */
static const char *const csv_cols[] = {
    "msisdn", "civil_id", "name", "operator", "pin", "puk", "behaviour"};
#define CSV_NKNOWN 7
#define CSV_NREQUIRED 4

struct gw_sub_csv {
  char *name;
  char *text; /* our copy, split in place */
  size_t len;
  char *pos;
  long line; /* of the line at |pos| minus one */
  size_t rows;
  int col[CSV_NKNOWN]; /* field index of each known column, -1 if absent */
  int ncols;
};

/* Takes the next line from |*pos| (NUL-terminating it in place, CR
 * dropped). Returns it, or NULL at the end; |*toolong| when it exceeds
 * CSV_LINE_MAX. */
static char *csv_line(char **pos, char *end, int *toolong) {
  char *line = *pos, *nl;
  size_t len;

  if (line >= end) {
    return NULL;
  }
  nl = memchr(line, '\n', (size_t)(end - line));
  len = nl ? (size_t)(nl - line) : (size_t)(end - line);
  *pos = nl ? nl + 1 : end;
  line[len] = '\0'; /* |end| points at the copy's own NUL */
  if (len && line[len - 1] == '\r') {
    line[--len] = '\0';
  }
  *toolong = len > CSV_LINE_MAX;
  return line;
}

static int csv_skip(const char *line) {
  line += strspn(line, " \t");
  return line[0] == '\0' || line[0] == '#';
}

/* Splits |line| into fields in place. Returns the count, or -1 with a
 * reason in |why|. */
static int csv_split(char *line, char **f, int max, char *why, size_t n) {
  char *p = line, *o;
  int count = 0;

  for (;;) {
    if (count == max) {
      gw_errf(why, n, "more than %d fields", max);
      return -1;
    }
    p += strspn(p, " \t");
    if (*p == '"') {
      f[count] = o = ++p;
      for (;;) {
        if (*p == '\0') {
          gw_errf(why, n, "field %d: a quoted field does not end on its line",
                  count + 1);
          return -1;
        }
        if (*p == '"' && p[1] == '"') {
          *o++ = '"';
          p += 2;
        } else if (*p == '"') {
          p++;
          break;
        } else {
          *o++ = *p++;
        }
      }
      p += strspn(p, " \t");
      if (*p != ',' && *p != '\0') {
        gw_errf(why, n, "field %d: text after the closing quote", count + 1);
        return -1;
      }
      *o = '\0';
    } else {
      char *e;
      int last;

      f[count] = p;
      p += strcspn(p, ",");
      last = *p == '\0';
      e = p;
      while (e > f[count] && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
      }
      if (memchr(f[count], '"', (size_t)(e - f[count]))) {
        gw_errf(why, n, "field %d: a quote inside an unquoted field",
                count + 1);
        return -1;
      }
      *e = '\0'; /* may be the comma itself: |last| remembers */
      count++;
      if (last) {
        return count;
      }
      p++; /* the comma */
      continue;
    }
    count++;
    if (*p == '\0') {
      return count;
    }
    p++; /* the comma */
  }
}

/* Lower case, '-' and ' ' as '_': to catch "Civil-ID" for civil_id. */
static void csv_norm(const char *in, char *out, size_t cap) {
  size_t i;

  for (i = 0; in[i] && i + 1 < cap; i++) {
    char c = (char)tolower((unsigned char)in[i]);
    out[i] = (c == '-' || c == ' ') ? '_' : c;
  }
  out[i] = '\0';
}

static int csv_header(gw_sub_csv *c, char *err, size_t errlen) {
  char *f[CSV_COLS_MAX], *line, why[160], norm[64], q[96];
  char *end = c->text + c->len;
  int toolong = 0, n, i, k;

  for (;;) {
    line = csv_line(&c->pos, end, &toolong);
    c->line++;
    if (!line) {
      gw_errf(err, errlen,
              "%s: no header row (msisdn,civil_id,name,operator"
              "[,pin,puk][,behaviour...])",
              c->name);
      return GW_ERR_INVALID;
    }
    if (!csv_skip(line)) {
      break;
    }
  }
  if (toolong) {
    gw_errf(err, errlen, "%s:%ld: longer than %d bytes", c->name, c->line,
            CSV_LINE_MAX);
    return GW_ERR_INVALID;
  }
  n = csv_split(line, f, CSV_COLS_MAX, why, sizeof(why));
  if (n < 0) {
    gw_errf(err, errlen, "%s:%ld: header: %s", c->name, c->line, why);
    return GW_ERR_INVALID;
  }
  for (k = 0; k < CSV_NKNOWN; k++) {
    c->col[k] = -1;
  }
  for (i = 0; i < n; i++) {
    for (k = 0; k < CSV_NKNOWN; k++) {
      if (strcmp(f[i], csv_cols[k]) == 0) {
        break;
      }
    }
    if (k < CSV_NKNOWN) {
      if (c->col[k] >= 0) {
        gw_errf(err, errlen, "%s:%ld: column %s appears twice", c->name,
                c->line, csv_cols[k]);
        return GW_ERR_INVALID;
      }
      c->col[k] = i;
      continue;
    }
    csv_norm(f[i], norm, sizeof(norm));
    for (k = 0; k < CSV_NKNOWN; k++) {
      if (strcmp(norm, csv_cols[k]) == 0) {
        gw_errf(err, errlen, "%s:%ld: column %s: did you mean %s?", c->name,
                c->line, sub_q(q, sizeof(q), f[i]), csv_cols[k]);
        return GW_ERR_INVALID;
      }
    }
  }
  for (k = 0; k < CSV_NREQUIRED; k++) {
    if (c->col[k] < 0) {
      gw_errf(err, errlen,
              "%s:%ld: the header has no column %s (required: msisdn, "
              "civil_id, name, operator)",
              c->name, c->line, csv_cols[k]);
      return GW_ERR_INVALID;
    }
  }
  c->ncols = n;
  return GW_OK;
}

int gw_sub_csv_new(gw_sub_csv **out, const char *name, const char *text,
                   size_t len, char *err, size_t errlen) {
  gw_sub_csv *c;
  char *p, *e;
  int rv;

  if (!out || !name || (!text && len)) {
    return GW_ERR_INVALID;
  }
  c = calloc(1, sizeof(*c));
  if (!c) {
    return GW_ERR_NOMEM;
  }
  c->name = strdup(name);
  c->text = malloc(len + 1);
  if (!c->name || !c->text) {
    gw_sub_csv_del(c);
    return GW_ERR_NOMEM;
  }
  if (len) {
    memcpy(c->text, text, len);
  }
  c->text[len] = '\0';
  c->len = len;
  if (memchr(c->text, '\0', len)) {
    gw_errf(err, errlen, "%s: contains a NUL byte (not a text file)", name);
    gw_sub_csv_del(c);
    return GW_ERR_INVALID;
  }
  c->pos = c->text;
  rv = csv_header(c, err, errlen);
  if (rv != GW_OK) {
    gw_sub_csv_del(c);
    return rv;
  }
  /* Count the data rows without touching the text. */
  for (p = c->pos; p < c->text + len; p = e + 1) {
    const char *s;
    e = memchr(p, '\n', (size_t)(c->text + len - p));
    if (!e) {
      e = c->text + len;
    }
    s = p + strspn(p, " \t\r");
    if (s < e && *s != '#') {
      c->rows++;
    }
  }
  *out = c;
  return GW_OK;
}

size_t gw_sub_csv_rows(const gw_sub_csv *c) {
  return c ? c->rows : 0;
}

int gw_sub_csv_next(gw_sub_csv *c, gw_sub_request *r, long *line, char *err,
                    size_t errlen) {
  static const char *const labels[] = {
      "msisdn", "civil_id", "name", "operator", "pin", "puk", "behaviour"};
  char *f[CSV_COLS_MAX], *text, why[320];
  const char *v[CSV_NKNOWN];
  int toolong = 0, n, rv;

  if (!c || !r) {
    return GW_ERR_INVALID;
  }
  do {
    text = csv_line(&c->pos, c->text + c->len, &toolong);
    c->line++;
    if (!text) {
      c->line--;
      return GW_ERR_NOT_FOUND;
    }
  } while (csv_skip(text));
  if (line) {
    *line = c->line;
  }
  if (toolong) {
    gw_errf(err, errlen, "%s:%ld: longer than %d bytes", c->name, c->line,
            CSV_LINE_MAX);
    OPENSSL_cleanse(text, strlen(text));
    return GW_ERR_INVALID;
  }
  n = csv_split(text, f, CSV_COLS_MAX, why, sizeof(why));
  if (n > c->ncols) {
    snprintf(why, sizeof(why), "%d fields, the header has %d", n, c->ncols);
    n = -1;
  }
  if (n < 0) {
    gw_errf(err, errlen, "%s:%ld: %s", c->name, c->line, why);
    return GW_ERR_INVALID;
  }
  for (int k = 0; k < CSV_NKNOWN; k++) {
    /* A short row leaves its last fields empty. */
    v[k] = c->col[k] >= 0 && c->col[k] < n ? f[c->col[k]] : "";
  }
  rv = sub_request_set(r, labels, v[0], v[1], v[2], v[3], v[4], v[5], v[6], why,
                       sizeof(why));
  if (rv != GW_OK) {
    gw_errf(err, errlen, "%s:%ld: %s", c->name, c->line, why);
  }
  return rv;
}

void gw_sub_csv_del(gw_sub_csv *c) {
  if (!c) {
    return;
  }
  if (c->text) {
    OPENSSL_cleanse(c->text, c->len + 1);
  }
  free(c->text);
  free(c->name);
  free(c);
}
