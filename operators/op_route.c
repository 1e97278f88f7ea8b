/* op_route.c — MSISDN normalisation, numbering plan, number portability.
 *
 * The plan is a sorted array of prefixes, searched once per prefix length
 * (at most 8 binary searches); the portability table is a sorted array of
 * national numbers (uint32), searched once. Both are built at load time and
 * never change afterwards. */
#include "op_route.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_err.h"

#define CC "968"    /* Oman's country code */
#define CC_LEN 3    /* its digits */
#define IN_MAX 40   /* longest input looked at */
#define E164_MAX 15 /* digits of an E.164 number */
#define E164_MIN 7  /* shortest plausible international number */
#define MAX_OPS 64  /* distinct operator names in one table */

typedef struct plan_entry {
  char prefix[OP_NATIONAL_DIGITS + 1];
  int len;
  int op; /* index into names */
} plan_entry;

typedef struct port_entry {
  uint32_t national;
  uint32_t op;
} port_entry;

struct op_route {
  char names[MAX_OPS][OP_NAME_MAX + 1];
  int nnames;
  plan_entry *plan;
  size_t nplan;
  port_entry *port;
  size_t nport;
};

const char *op_route_status_str(op_route_status s) {
  switch (s) {
  case OP_ROUTE_OK:
    return "ok";
  case OP_ROUTE_INVALID:
    return "invalid_msisdn";
  case OP_ROUTE_NOT_OMAN:
    return "not_oman";
  case OP_ROUTE_NO_OPERATOR:
    return "no_operator";
  }
  return "unknown";
}

const char *op_route_status_message(op_route_status s) {
  switch (s) {
  case OP_ROUTE_OK:
    return "routed";
  case OP_ROUTE_INVALID:
    return "not a phone number: give 8 digits, +968 and 8 digits, or 00968 "
           "and 8 digits";
  case OP_ROUTE_NOT_OMAN:
    return "not an Omani number (+968): only Omani mobile numbers can sign";
  case OP_ROUTE_NO_OPERATOR:
    return "an Omani number that no mobile operator serves (not in the "
           "numbering plan)";
  }
  return "unknown routing status";
}

static int is_digit(int c) {
  return c >= '0' && c <= '9';
}

op_route_status op_msisdn_normalize(const char *in, char out[OP_MSISDN_MAX]) {
  char d[IN_MAX + 1];
  size_t nd = 0, i, n;
  const char *nat;
  int plus = 0;

  out[0] = '\0';
  if (!in) {
    return OP_ROUTE_INVALID;
  }
  n = strnlen(in, IN_MAX + 1);
  if (n == 0 || n > IN_MAX) {
    return OP_ROUTE_INVALID;
  }
  for (i = 0; i < n; i++) {
    int c = (unsigned char)in[i];

    if (is_digit(c)) {
      d[nd++] = (char)c;
    } else if (c == '+' && i == 0) {
      plus = 1;
    } else if ((c == ' ' || c == '-') && i > 0 && is_digit(in[i - 1]) &&
               i + 1 < n && is_digit(in[i + 1])) {
      /* a single separator between two digits */
    } else {
      return OP_ROUTE_INVALID;
    }
  }
  d[nd] = '\0';
  if (plus || (nd >= 2 && d[0] == '0' && d[1] == '0')) {
    const char *cc = plus ? d : d + 2;
    size_t ncc = plus ? nd : nd - 2;

    if (ncc == 0 || cc[0] == '0') {
      return OP_ROUTE_INVALID;
    }
    if (ncc >= CC_LEN && memcmp(cc, CC, CC_LEN) == 0) {
      if (ncc != CC_LEN + OP_NATIONAL_DIGITS) {
        return OP_ROUTE_INVALID;
      }
      nat = cc + CC_LEN;
    } else {
      return ncc >= E164_MIN && ncc <= E164_MAX ? OP_ROUTE_NOT_OMAN
                                                : OP_ROUTE_INVALID;
    }
  } else {
    if (nd != OP_NATIONAL_DIGITS) {
      return OP_ROUTE_INVALID;
    }
    nat = d;
  }
  if (nat[0] == '0') {
    return OP_ROUTE_INVALID; /* national numbers never start with 0 */
  }
  memcpy(out, "+" CC, CC_LEN + 1);
  memcpy(out + CC_LEN + 1, nat, OP_NATIONAL_DIGITS);
  out[CC_LEN + 1 + OP_NATIONAL_DIGITS] = '\0';
  return OP_ROUTE_OK;
}

/* ---- loading ------------------------------------------------------------ */

typedef struct load_ctx {
  const char *file;
  unsigned line;
  char *err;
  size_t errlen;
} load_ctx;

static int load_fail(load_ctx *c, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int load_fail(load_ctx *c, int rv, const char *fmt, ...) {
  va_list ap;
  int n;

  if (!c->err || c->errlen == 0) {
    return rv;
  }
  if (c->line) {
    n = snprintf(c->err, c->errlen, "%s:%u: ", c->file, c->line);
  } else {
    n = snprintf(c->err, c->errlen, "%s: ", c->file);
  }
  if (n < 0 || (size_t)n >= c->errlen) {
    return rv;
  }
  va_start(ap, fmt);
  vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return rv;
}

static int name_ok(const char *s, size_t n) {
  if (n == 0 || n > OP_NAME_MAX) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-')) {
      return 0;
    }
  }
  return 1;
}

/* Finds or adds operator |s| (|n| bytes, already checked). Returns its index
 * or -1 when the table of names is full. */
static int intern(op_route *r, const char *s, size_t n) {
  for (int i = 0; i < r->nnames; i++) {
    if (strlen(r->names[i]) == n && memcmp(r->names[i], s, n) == 0) {
      return i;
    }
  }
  if (r->nnames == MAX_OPS) {
    return -1;
  }
  memcpy(r->names[r->nnames], s, n);
  r->names[r->nnames][n] = '\0';
  return r->nnames++;
}

/* Reads the next line of |fp| into |buf| without its end of line and with
 * comments cut and blanks trimmed. Returns 1 for a line, 0 at the end, or a
 * GW_ERR_* after reporting it. */
static int next_line(load_ctx *c, FILE *fp, char *buf, size_t cap) {
  size_t n;
  char *p, *hash;

  if (!fgets(buf, (int)cap, fp)) {
    if (ferror(fp)) {
      return load_fail(c, GW_ERR_IO, "%s", strerror(errno));
    }
    return 0;
  }
  c->line++;
  n = strlen(buf);
  if (n == cap - 1 && buf[n - 1] != '\n' && !feof(fp)) {
    return load_fail(c, GW_ERR_CONFIG, "line longer than %d bytes",
                     OP_ROUTE_LINE_MAX);
  }
  hash = strchr(buf, '#');
  if (hash) {
    *hash = '\0';
  }
  n = strlen(buf);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
                   buf[n - 1] == ' ' || buf[n - 1] == '\t')) {
    buf[--n] = '\0';
  }
  p = buf + strspn(buf, " \t");
  memmove(buf, p, strlen(p) + 1);
  return 1;
}

static int plan_cmp(const void *a, const void *b) {
  const plan_entry *x = a, *y = b;

  if (x->len != y->len) {
    return x->len < y->len ? -1 : 1;
  }
  return strcmp(x->prefix, y->prefix);
}

static int load_plan(op_route *r, const char *path, char *err, size_t errlen) {
  load_ctx c = {.file = path, .err = err, .errlen = errlen};
  char buf[OP_ROUTE_LINE_MAX + 2];
  size_t cap = 0;
  FILE *fp;
  int rv;

  fp = fopen(path, "r");
  if (!fp) {
    return load_fail(&c, GW_ERR_IO, "%s", strerror(errno));
  }
  while ((rv = next_line(&c, fp, buf, sizeof(buf))) == 1) {
    char *pfx, *op, *extra, *save = NULL;
    size_t pl;
    int idx;

    pfx = strtok_r(buf, " \t", &save);
    if (!pfx) {
      continue; /* blank or comment */
    }
    op = strtok_r(NULL, " \t", &save);
    extra = strtok_r(NULL, " \t", &save);
    if (!op || extra) {
      rv = load_fail(&c, GW_ERR_CONFIG,
                     "expected \"<prefix> <operator>\" (two words)");
      goto out;
    }
    pl = strlen(pfx);
    if (pl == 0 || pl > OP_NATIONAL_DIGITS || strspn(pfx, "0123456789") != pl) {
      rv = load_fail(&c, GW_ERR_CONFIG,
                     "prefix \"%.16s\" is not 1..%d digits of the national "
                     "number (without +968)",
                     pfx, OP_NATIONAL_DIGITS);
      goto out;
    }
    if (!name_ok(op, strlen(op))) {
      rv = load_fail(&c, GW_ERR_CONFIG,
                     "operator name \"%.40s\" is not 1..%d of [a-z0-9_-]", op,
                     OP_NAME_MAX);
      goto out;
    }
    if (r->nplan == OP_PLAN_MAX_ENTRIES) {
      rv = load_fail(&c, GW_ERR_TOO_LARGE, "more than %d prefixes",
                     OP_PLAN_MAX_ENTRIES);
      goto out;
    }
    idx = intern(r, op, strlen(op));
    if (idx < 0) {
      rv = load_fail(&c, GW_ERR_TOO_LARGE, "more than %d operators", MAX_OPS);
      goto out;
    }
    for (size_t i = 0; i < r->nplan; i++) {
      if (strcmp(r->plan[i].prefix, pfx) == 0) {
        rv = load_fail(&c, GW_ERR_CONFIG, "prefix %s is listed twice", pfx);
        goto out;
      }
    }
    if (r->nplan == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      plan_entry *np = realloc(r->plan, ncap * sizeof(*np));
      if (!np) {
        rv = load_fail(&c, GW_ERR_NOMEM, "out of memory");
        goto out;
      }
      r->plan = np;
      cap = ncap;
    }
    memcpy(r->plan[r->nplan].prefix, pfx, pl + 1);
    r->plan[r->nplan].len = (int)pl;
    r->plan[r->nplan].op = idx;
    r->nplan++;
  }
  if (rv < 0) {
    goto out;
  }
  c.line = 0;
  if (r->nplan == 0) {
    rv = load_fail(&c, GW_ERR_CONFIG,
                   "no prefixes: every number would be "
                   "refused");
    goto out;
  }
  qsort(r->plan, r->nplan, sizeof(*r->plan), plan_cmp);
  rv = GW_OK;
out:
  fclose(fp);
  return rv;
}

static int port_cmp(const void *a, const void *b) {
  const port_entry *x = a, *y = b;
  return x->national < y->national ? -1 : x->national > y->national;
}

static int load_port(op_route *r, const char *path, char *err, size_t errlen) {
  load_ctx c = {.file = path, .err = err, .errlen = errlen};
  char buf[OP_ROUTE_LINE_MAX + 2], norm[OP_MSISDN_MAX];
  size_t cap = 0;
  int seen_data = 0;
  FILE *fp;
  int rv;

  fp = fopen(path, "r");
  if (!fp) {
    return load_fail(&c, GW_ERR_IO, "%s", strerror(errno));
  }
  while ((rv = next_line(&c, fp, buf, sizeof(buf))) == 1) {
    char *comma, *num, *op;
    size_t nl, ol;
    op_route_status st;
    int idx;

    if (buf[0] == '\0') {
      continue;
    }
    comma = strchr(buf, ',');
    if (!comma || strchr(comma + 1, ',')) {
      rv = load_fail(&c, GW_ERR_CONFIG,
                     "expected \"<msisdn>,<operator>\" (two fields)");
      goto out;
    }
    *comma = '\0';
    num = buf;
    op = comma + 1;
    nl = strlen(num);
    while (nl > 0 && (num[nl - 1] == ' ' || num[nl - 1] == '\t')) {
      num[--nl] = '\0';
    }
    op += strspn(op, " \t");
    ol = strlen(op);
    if (!seen_data && strcmp(num, "msisdn") == 0 &&
        strcmp(op, "operator") == 0) {
      seen_data = 1;
      continue; /* the header */
    }
    seen_data = 1;
    st = op_msisdn_normalize(num, norm);
    if (st != OP_ROUTE_OK) {
      char q[48];
      snprintf(q, sizeof(q), "%.40s", num);
      for (char *p = q; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
          *p = '?';
        }
      }
      rv = load_fail(&c, GW_ERR_CONFIG, "\"%s\": %s", q,
                     st == OP_ROUTE_NOT_OMAN ? "not an Omani number"
                                             : "not a phone number");
      goto out;
    }
    if (!name_ok(op, ol)) {
      rv = load_fail(&c, GW_ERR_CONFIG,
                     "operator name \"%.40s\" is not 1..%d of [a-z0-9_-]", op,
                     OP_NAME_MAX);
      goto out;
    }
    if (r->nport == OP_PORT_MAX_ENTRIES) {
      rv = load_fail(&c, GW_ERR_TOO_LARGE, "more than %d numbers",
                     OP_PORT_MAX_ENTRIES);
      goto out;
    }
    idx = intern(r, op, ol);
    if (idx < 0) {
      rv = load_fail(&c, GW_ERR_TOO_LARGE, "more than %d operators", MAX_OPS);
      goto out;
    }
    if (r->nport == cap) {
      size_t ncap = cap ? cap * 2 : 64;
      port_entry *np = realloc(r->port, ncap * sizeof(*np));
      if (!np) {
        rv = load_fail(&c, GW_ERR_NOMEM, "out of memory");
        goto out;
      }
      r->port = np;
      cap = ncap;
    }
    r->port[r->nport].national = (uint32_t)strtoul(norm + 1 + CC_LEN, NULL, 10);
    r->port[r->nport].op = (uint32_t)idx;
    r->nport++;
  }
  if (rv < 0) {
    goto out;
  }
  qsort(r->port, r->nport, sizeof(*r->port), port_cmp);
  for (size_t i = 1; i < r->nport; i++) {
    if (r->port[i].national == r->port[i - 1].national) {
      c.line = 0;
      rv = load_fail(&c, GW_ERR_CONFIG, "+968%08u is listed twice",
                     (unsigned)r->port[i].national);
      goto out;
    }
  }
  rv = GW_OK;
out:
  fclose(fp);
  return rv;
}

int op_route_load(op_route **out, const char *plan_path,
                  const char *portability_path, char *err, size_t errlen) {
  op_route *r;
  int rv;

  if (err && errlen) {
    err[0] = '\0';
  }
  if (!out || !plan_path || !plan_path[0]) {
    if (err && errlen) {
      snprintf(err, errlen, "no numbering plan file given");
    }
    return GW_ERR_CONFIG;
  }
  r = calloc(1, sizeof(*r));
  if (!r) {
    return GW_ERR_NOMEM;
  }
  rv = load_plan(r, plan_path, err, errlen);
  if (rv != GW_OK) {
    goto fail;
  }
  if (portability_path && portability_path[0]) {
    rv = load_port(r, portability_path, err, errlen);
    if (rv != GW_OK) {
      goto fail;
    }
  }
  *out = r;
  return GW_OK;

fail:
  op_route_del(r);
  return rv;
}

void op_route_del(op_route *r) {
  if (!r) {
    return;
  }
  free(r->plan);
  free(r->port);
  free(r);
}

op_route_status op_route_lookup(const op_route *r, const char *msisdn,
                                op_route_result *res) {
  op_route_status st;
  const char *nat;

  memset(res, 0, sizeof(*res));
  st = op_msisdn_normalize(msisdn, res->msisdn);
  if (st != OP_ROUTE_OK) {
    return st;
  }
  if (!r) {
    return OP_ROUTE_NO_OPERATOR;
  }
  nat = res->msisdn + 1 + CC_LEN;
  if (r->nport) {
    port_entry key = {.national = (uint32_t)strtoul(nat, NULL, 10)};
    const port_entry *p =
        bsearch(&key, r->port, r->nport, sizeof(*r->port), port_cmp);
    if (p) {
      res->op = r->names[p->op];
      res->ported = 1;
      return OP_ROUTE_OK;
    }
  }
  for (int len = OP_NATIONAL_DIGITS; len >= 1; len--) {
    plan_entry key = {.len = len};
    const plan_entry *p;

    memcpy(key.prefix, nat, (size_t)len);
    key.prefix[len] = '\0';
    p = bsearch(&key, r->plan, r->nplan, sizeof(*r->plan), plan_cmp);
    if (p) {
      res->op = r->names[p->op];
      res->prefix_len = len;
      return OP_ROUTE_OK;
    }
  }
  return OP_ROUTE_NO_OPERATOR;
}

size_t op_route_plan_size(const op_route *r) {
  return r ? r->nplan : 0;
}

size_t op_route_ported_size(const op_route *r) {
  return r ? r->nport : 0;
}

size_t op_route_operator_count(const op_route *r) {
  return r ? (size_t)r->nnames : 0;
}

const char *op_route_operator_name(const op_route *r, size_t i) {
  return r && i < (size_t)r->nnames ? r->names[i] : NULL;
}
