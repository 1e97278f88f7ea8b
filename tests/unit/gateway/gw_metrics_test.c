/* gw_metrics_test.c — unit tests for gateway/gw_metrics.c.
 *
 * Records into several shards, renders the Prometheus text exposition, and
 * parses it back: every sample line must belong to a family announced by
 * HELP and TYPE, label sets must be well-formed, histogram buckets must be
 * cumulative and the +Inf bucket must equal _count. */
#include "gw_metrics.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_buf.h"
#include "gw_err.h"
#include "harness.h"

#define US 1000ull /* ns per microsecond */

static const char *names3[] = {"healthz", "metrics", "echo"};

static const char *route_name3(int i, void *arg) {
  (void)arg;
  return i >= 0 && i < 3 ? names3[i] : "bad";
}

static gw_metrics *new_metrics(size_t n) {
  gw_metrics *m = NULL;

  if (gw_metrics_new(&m, n) != GW_OK || !m) {
    printf("#   gw_metrics_new(%zu) failed\n", n);
    exit(1);
  }
  return m;
}

/* Renders |m| with the three route names; the caller frees |out|. */
static int render(gw_metrics *m, gw_buf *out, int nroutes) {
  gw_buf_init(out, 4 * 1024 * 1024);
  return gw_metrics_render(m, out, route_name3, NULL, nroutes);
}

/* ---- a small parser for the text exposition -------------------------- */

typedef struct sample {
  char name[128];
  char labels[256]; /* as written, without braces; "" when none */
  double value;
} sample;

typedef struct family {
  char name[128];
  char type[16];
  int help, typed;
} family;

typedef struct expo {
  sample s[512];
  int ns;
  family f[64];
  int nf;
  char err[256]; /* first problem found, "" when well-formed */
} expo;

static int is_name_start(int c) {
  return isalpha(c) || c == '_' || c == ':';
}
static int is_name_char(int c) {
  return isalnum(c) || c == '_' || c == ':';
}

static family *fam_find(expo *e, const char *name) {
  for (int i = 0; i < e->nf; i++) {
    if (strcmp(e->f[i].name, name) == 0) {
      return &e->f[i];
    }
  }
  return NULL;
}

static family *fam_get(expo *e, const char *name) {
  family *f = fam_find(e, name);

  if (!f && e->nf < 64) {
    f = &e->f[e->nf++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
  }
  return f;
}

/* The family a sample belongs to: histograms add _bucket/_sum/_count. */
static family *sample_family(expo *e, const char *name) {
  static const char *sfx[] = {"_bucket", "_sum", "_count"};
  family *f = fam_find(e, name);
  char base[128];

  if (f) {
    return f;
  }
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(name), k = strlen(sfx[i]);
    if (n > k && strcmp(name + n - k, sfx[i]) == 0 && n - k < sizeof(base)) {
      memcpy(base, name, n - k);
      base[n - k] = '\0';
      f = fam_find(e, base);
      if (f && strcmp(f->type, "histogram") == 0) {
        return f;
      }
    }
  }
  return NULL;
}

/* Checks a label set `a="x",b="y"`: names, quoting and escapes. */
static int labels_ok(const char *p) {
  while (*p) {
    if (!is_name_start((unsigned char)*p) || *p == ':') {
      return 0;
    }
    while (is_name_char((unsigned char)*p) && *p != ':') {
      p++;
    }
    if (*p++ != '=' || *p++ != '"') {
      return 0;
    }
    while (*p && *p != '"') {
      if (*p == '\n') {
        return 0;
      }
      if (*p == '\\') {
        p++;
        if (*p != '\\' && *p != '"' && *p != 'n') {
          return 0;
        }
      }
      p++;
    }
    if (*p++ != '"') {
      return 0;
    }
    if (*p == ',') {
      p++;
      if (!*p) {
        return 0;
      }
    } else if (*p) {
      return 0;
    }
  }
  return 1;
}

static void expo_fail(expo *e, int line, const char *why, const char *text) {
  if (!e->err[0]) {
    snprintf(e->err, sizeof(e->err), "line %d: %s: %.120s", line, why, text);
  }
}

static void parse_expo(expo *e, const char *text) {
  const char *p = text;
  int lineno = 0;

  memset(e, 0, sizeof(*e));
  if (!*text || text[strlen(text) - 1] != '\n') {
    expo_fail(e, 0, "exposition does not end with a newline", "");
  }
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    char line[1024], name[128];
    size_t i = 0;

    lineno++;
    if (len >= sizeof(line)) {
      expo_fail(e, lineno, "line too long", p);
      return;
    }
    memcpy(line, p, len);
    line[len] = '\0';
    p += len + (nl ? 1 : 0);
    if (len == 0) {
      expo_fail(e, lineno, "empty line", line);
      continue;
    }
    if (line[0] == '#') {
      char kw[16], fname[128], rest[512] = "";
      int n = sscanf(line, "# %15s %127s %511[^\n]", kw, fname, rest);
      family *f;
      if (n < 3) {
        expo_fail(e, lineno, "short comment line", line);
        continue;
      }
      f = fam_get(e, fname);
      if (!f) {
        expo_fail(e, lineno, "too many families", line);
        continue;
      }
      if (strcmp(kw, "HELP") == 0) {
        if (f->help) {
          expo_fail(e, lineno, "second HELP", line);
        }
        f->help = 1;
      } else if (strcmp(kw, "TYPE") == 0) {
        if (f->typed) {
          expo_fail(e, lineno, "second TYPE", line);
        }
        if (strcmp(rest, "counter") && strcmp(rest, "gauge") &&
            strcmp(rest, "histogram") && strcmp(rest, "summary") &&
            strcmp(rest, "untyped")) {
          expo_fail(e, lineno, "unknown type", line);
        }
        f->typed = 1;
        snprintf(f->type, sizeof(f->type), "%.15s", rest);
      } else {
        expo_fail(e, lineno, "unknown comment keyword", line);
      }
      continue;
    }
    /* name{labels} value */
    if (!is_name_start((unsigned char)line[0])) {
      expo_fail(e, lineno, "bad metric name", line);
      continue;
    }
    while (is_name_char((unsigned char)line[i]) && i < sizeof(name) - 1) {
      i++;
    }
    memcpy(name, line, i);
    name[i] = '\0';
    if (e->ns >= 512) {
      expo_fail(e, lineno, "too many samples", line);
      return;
    }
    sample *s = &e->s[e->ns];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    if (line[i] == '{') {
      const char *close = NULL;
      int inq = 0;
      for (size_t j = i + 1; line[j]; j++) {
        if (inq && line[j] == '\\' && line[j + 1]) {
          j++;
        } else if (line[j] == '"') {
          inq = !inq;
        } else if (!inq && line[j] == '}') {
          close = line + j;
          break;
        }
      }
      if (!close || (size_t)(close - line - i - 1) >= sizeof(s->labels)) {
        expo_fail(e, lineno, "unterminated label set", line);
        continue;
      }
      memcpy(s->labels, line + i + 1, (size_t)(close - line - i - 1));
      s->labels[close - line - i - 1] = '\0';
      if (!labels_ok(s->labels)) {
        expo_fail(e, lineno, "malformed labels", line);
        continue;
      }
      i = (size_t)(close - line) + 1;
    }
    if (line[i] != ' ') {
      expo_fail(e, lineno, "no space before the value", line);
      continue;
    }
    {
      char *endp;
      const char *v = line + i + 1;
      if (strcmp(v, "+Inf") == 0 || strcmp(v, "-Inf") == 0 ||
          strcmp(v, "NaN") == 0) {
        s->value = 0;
      } else {
        s->value = strtod(v, &endp);
        if (endp == v || *endp) {
          expo_fail(e, lineno, "bad value", line);
          continue;
        }
      }
    }
    {
      family *f = sample_family(e, name);
      if (!f || !f->help || !f->typed) {
        expo_fail(e, lineno, "sample before its HELP and TYPE", line);
        continue;
      }
      if (strcmp(f->type, "counter") == 0 && s->value < 0) {
        expo_fail(e, lineno, "negative counter", line);
      }
    }
    e->ns++;
  }
}

/* Value of the sample |name| with exactly |labels|, or -1 when absent. */
static double expo_get(const expo *e, const char *name, const char *labels) {
  for (int i = 0; i < e->ns; i++) {
    if (strcmp(e->s[i].name, name) == 0 &&
        strcmp(e->s[i].labels, labels) == 0) {
      return e->s[i].value;
    }
  }
  return -1;
}

static int expo_count(const expo *e, const char *name) {
  int n = 0;

  for (int i = 0; i < e->ns; i++) {
    n += strcmp(e->s[i].name, name) == 0;
  }
  return n;
}

static expo *render_parse(gw_metrics *m, int nroutes) {
  static expo e;
  gw_buf out;
  int rv = render(m, &out, nroutes);

  if (rv != GW_OK) {
    printf("#   gw_metrics_render: %d\n", rv);
  }
  parse_expo(&e, gw_buf_cstr(&out));
  if (e.err[0]) {
    printf("#   exposition: %s\n", e.err);
  }
  gw_buf_free(&out);
  return &e;
}

#define REQ "mpkigw_http_requests_total"
#define HIST "mpkigw_http_request_duration_seconds"

/* ---- tests ------------------------------------------------------------ */

static void test_new_del(void) {
  gw_metrics *m = new_metrics(0); /* 0 shards is treated as 1 */

  T_ASSERT(gw_metrics_shard_get(m, 0) != NULL);
  /* An index out of range falls back to shard 0 instead of overrunning. */
  T_ASSERT(gw_metrics_shard_get(m, 5) == gw_metrics_shard_get(m, 0));
  gw_metrics_del(m);
  gw_metrics_del(NULL);
  m = new_metrics(4);
  T_ASSERT(gw_metrics_shard_get(m, 3) != gw_metrics_shard_get(m, 0));
  T_ASSERT(gw_metrics_shard_get(m, 1) != gw_metrics_shard_get(m, 2));
  gw_metrics_del(m);
}

static void test_empty_render(void) {
  gw_metrics *m = new_metrics(2);
  expo *e = render_parse(m, 3);

  T_EQ_STR(e->err, "");
  /* No request lines when nothing was counted, but every family exists. */
  T_EQ_INT(expo_count(e, REQ), 0);
  T_ASSERT(fam_find(e, REQ) != NULL);
  T_EQ_STR(fam_find(e, REQ)->type, "counter");
  T_EQ_STR(fam_find(e, HIST)->type, "histogram");
  T_EQ_INT(expo_count(e, HIST "_bucket"), GW_METRICS_NBUCKETS + 1);
  T_ASSERT(expo_get(e, HIST "_bucket", "le=\"+Inf\"") == 0);
  T_ASSERT(expo_get(e, HIST "_count", "") == 0);
  T_ASSERT(expo_get(e, HIST "_sum", "") == 0);
  T_ASSERT(expo_get(e, "mpkigw_open_streams", "") == 0);
  T_ASSERT(expo_get(e, "mpkigw_open_connections", "protocol=\"h2\"") == 0);
  T_ASSERT(expo_get(e, "mpkigw_connections_accepted_total", "") == 0);
  T_ASSERT(expo_get(e, "mpkigw_http2_goaway_enhance_your_calm_total", "") == 0);
  gw_metrics_del(m);
}

static void test_requests_summed_across_shards(void) {
  gw_metrics *m = new_metrics(2);
  gw_metrics_shard *a = gw_metrics_shard_get(m, 0);
  gw_metrics_shard *b = gw_metrics_shard_get(m, 1);
  expo *e;

  gw_metrics_request(a, 0, 200, 0, 50 * US);
  gw_metrics_request(b, 0, 200, 0, 50 * US);
  gw_metrics_request(b, 0, 200, 0, 50 * US);
  gw_metrics_request(a, 0, 200, 1, 50 * US);
  gw_metrics_request(b, 2, 404, 1, 50 * US);
  e = render_parse(m, 3);
  T_EQ_STR(e->err, "");
  T_ASSERT(expo_get(e, REQ,
                    "route=\"healthz\",status=\"200\",protocol=\"http/1.1\"") ==
           3);
  T_ASSERT(expo_get(e, REQ,
                    "route=\"healthz\",status=\"200\",protocol=\"h2\"") == 1);
  T_ASSERT(expo_get(e, REQ, "route=\"echo\",status=\"404\",protocol=\"h2\"") ==
           1);
  /* Zero counts are not written. */
  T_EQ_INT(expo_count(e, REQ), 3);
  T_ASSERT(expo_get(e, HIST "_count", "") == 5);
  gw_metrics_del(m);
}

static void test_status_slots(void) {
  gw_metrics *m = new_metrics(2);
  gw_metrics_shard *a = gw_metrics_shard_get(m, 0);
  gw_metrics_shard *b = gw_metrics_shard_get(m, 1);
  expo *e;

  gw_metrics_request(a, 1, 200, 0, 1 * US);
  gw_metrics_request(a, 1, 418, 0, 1 * US); /* not a known status */
  gw_metrics_request(b, 1, 451, 0, 1 * US);
  gw_metrics_request(b, 1, 413, 0, 1 * US); /* known */
  gw_metrics_request(b, 1, 500, 0, 1 * US); /* 5xx class */
  gw_metrics_request(a, 1, 503, 0, 1 * US); /* known */
  gw_metrics_request(a, 1, 101, 0, 1 * US);
  gw_metrics_request(a, 1, 307, 0, 1 * US);
  e = render_parse(m, 3);
  T_EQ_STR(e->err, "");
#define R(st) "route=\"metrics\",status=\"" st "\",protocol=\"http/1.1\""
  T_ASSERT(expo_get(e, REQ, R("200")) == 1);
  T_ASSERT(expo_get(e, REQ, R("4xx")) == 2);
  T_ASSERT(expo_get(e, REQ, R("418")) == -1);
  T_ASSERT(expo_get(e, REQ, R("413")) == 1);
  T_ASSERT(expo_get(e, REQ, R("5xx")) == 1);
  T_ASSERT(expo_get(e, REQ, R("503")) == 1);
  T_ASSERT(expo_get(e, REQ, R("1xx")) == 1);
  T_ASSERT(expo_get(e, REQ, R("3xx")) == 1);
#undef R
  gw_metrics_del(m);
}

static void test_unmatched_route(void) {
  gw_metrics *m = new_metrics(2);
  gw_metrics_shard *a = gw_metrics_shard_get(m, 0);
  gw_metrics_shard *b = gw_metrics_shard_get(m, 1);
  expo *e;

  gw_metrics_request(a, -1, 404, 0, 1 * US);
  gw_metrics_request(b, -1, 404, 0, 1 * US);
  gw_metrics_request(b, -1, 400, 1, 1 * US);
  e = render_parse(m, 3);
  T_EQ_STR(e->err, "");
  T_ASSERT(
      expo_get(e, REQ,
               "route=\"unmatched\",status=\"404\",protocol=\"http/1.1\"") ==
      2);
  T_ASSERT(expo_get(e, REQ,
                    "route=\"unmatched\",status=\"400\",protocol=\"h2\"") == 1);
  gw_metrics_del(m);
}

/* gw_metrics.h: "route index >= GW_METRICS_MAX_ROUTES counts as 'other'".
 * The implementation folds such requests into the same slot as requests
 * that matched no route, so they are reported as route="unmatched". */
static void test_regress_route_overflow_label(void) {
  gw_metrics *m = new_metrics(1);
  gw_metrics_shard *a = gw_metrics_shard_get(m, 0);
  expo *e;

  gw_metrics_request(a, GW_METRICS_MAX_ROUTES + 5, 200, 0, 1 * US);
  e = render_parse(m, 3);
  T_EQ_STR(e->err, "");
  T_ASSERT(
      expo_get(e, REQ,
               "route=\"unmatched\",status=\"200\",protocol=\"http/1.1\"") ==
      -1);
  T_ASSERT(expo_get(e, REQ,
                    "route=\"other\",status=\"200\",protocol=\"http/1.1\"") ==
           1);
  gw_metrics_del(m);
}

static void test_histogram(void) {
  /* Bucket bounds in microseconds, as gw_metrics.c declares them. */
  static const char *les[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025",
                              "0.005",  "0.01",    "0.025",  "0.05",  "0.1",
                              "0.25",   "0.5",     "1",      "5",     "+Inf"};
  static const uint64_t durs_us[] = {
      0, 100, 101, 250, 1000, 1001, 70000, 4999999, 5000000, 5000001, 60000000};
  /* Expected cumulative counts for the durations above (a bound is
   * inclusive: 100 us is in le="0.0001"). */
  static const double want[] = {2, 4, 4, 5, 6, 6, 6, 6, 6, 7, 7, 7, 7, 9, 11};
  gw_metrics *m = new_metrics(2);
  double prev = -1, sum_us = 0;
  char lbl[64];
  expo *e;

  T_EQ_INT(sizeof(les) / sizeof(les[0]), GW_METRICS_NBUCKETS + 1);
  for (size_t i = 0; i < sizeof(durs_us) / sizeof(durs_us[0]); i++) {
    gw_metrics_request(gw_metrics_shard_get(m, i % 2), 0, 200, (int)(i % 2),
                       durs_us[i] * US + 999); /* sub-us part is dropped */
    sum_us += (double)durs_us[i];
  }
  e = render_parse(m, 3);
  T_EQ_STR(e->err, "");
  T_EQ_INT(expo_count(e, HIST "_bucket"), GW_METRICS_NBUCKETS + 1);
  for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
    double v;
    snprintf(lbl, sizeof(lbl), "le=\"%s\"", les[i]);
    v = expo_get(e, HIST "_bucket", lbl);
    if (v != want[i]) {
      printf("#   bucket %s: %g, expected %g\n", les[i], v, want[i]);
      t_case_failed = 1;
    }
    T_ASSERT(v >= prev); /* cumulative */
    prev = v;
  }
  T_ASSERT(expo_get(e, HIST "_bucket", "le=\"+Inf\"") ==
           expo_get(e, HIST "_count", ""));
  T_ASSERT(expo_get(e, HIST "_count", "") == 11);
  {
    double s = expo_get(e, HIST "_sum", "");
    T_ASSERT(s > sum_us / 1e6 - 1e-6 && s < sum_us / 1e6 + 1e-6);
  }
  gw_metrics_del(m);
}

static void test_counters_and_gauges(void) {
  gw_metrics *m = new_metrics(2);
  gw_metrics_shard *a = gw_metrics_shard_get(m, 0);
  gw_metrics_shard *b = gw_metrics_shard_get(m, 1);
  expo *e;

  gw_metrics_count(a, GW_M_CONN_ACCEPTED);
  gw_metrics_count(b, GW_M_CONN_ACCEPTED);
  gw_metrics_count(b, GW_M_CONN_ACCEPTED);
  gw_metrics_count(a, GW_M_TIMEOUTS);
  gw_metrics_count(b, GW_M_GOAWAY_CALM);
  gw_metrics_gauge(a, GW_G_CONNS_H2, 3);
  gw_metrics_gauge(b, GW_G_CONNS_H2, 2);
  gw_metrics_gauge(a, GW_G_CONNS_H2, -1);
  gw_metrics_gauge(a, GW_G_STREAMS, 1);
  /* A shard's gauge may go below zero when a connection moves between
   * states; only the sum is meaningful. */
  gw_metrics_gauge(b, GW_G_CONNS_H1, -1);
  gw_metrics_gauge(a, GW_G_CONNS_H1, 2);
  gw_metrics_gauge(b, GW_G_CONNS_HANDSHAKE, 1);
  T_EQ_INT(gw_metrics_gauge_sum(m, GW_G_CONNS_H2), 4);
  T_EQ_INT(gw_metrics_gauge_sum(m, GW_G_CONNS_H1), 1);
  T_EQ_INT(gw_metrics_gauge_sum(m, GW_G_STREAMS), 1);
  e = render_parse(m, 3);
  T_EQ_STR(e->err, "");
  T_ASSERT(expo_get(e, "mpkigw_connections_accepted_total", "") == 3);
  T_ASSERT(expo_get(e, "mpkigw_timeouts_total", "") == 1);
  T_ASSERT(expo_get(e, "mpkigw_http2_goaway_enhance_your_calm_total", "") == 1);
  T_ASSERT(expo_get(e, "mpkigw_connections_rejected_total", "") == 0);
  T_ASSERT(expo_get(e, "mpkigw_open_connections", "protocol=\"h2\"") == 4);
  T_ASSERT(expo_get(e, "mpkigw_open_connections", "protocol=\"http/1.1\"") ==
           1);
  T_ASSERT(expo_get(e, "mpkigw_open_connections",
                    "protocol=\"tls-handshake\"") == 1);
  T_ASSERT(expo_get(e, "mpkigw_open_streams", "") == 1);
  T_EQ_STR(fam_find(e, "mpkigw_open_streams")->type, "gauge");
  T_EQ_STR(fam_find(e, "mpkigw_timeouts_total")->type, "counter");
  gw_metrics_del(m);
}

/* Routes at or past |nroutes| are not named; the table never has more. */
static void test_nroutes_bound(void) {
  gw_metrics *m = new_metrics(1);
  gw_metrics_shard *a = gw_metrics_shard_get(m, 0);
  expo *e;

  gw_metrics_request(a, 0, 200, 0, 1 * US);
  gw_metrics_request(a, 1, 200, 0, 1 * US);
  e = render_parse(m, 1);
  T_EQ_STR(e->err, "");
  T_ASSERT(expo_get(e, REQ,
                    "route=\"healthz\",status=\"200\",protocol=\"http/1.1\"") ==
           1);
  T_ASSERT(expo_get(e, REQ,
                    "route=\"metrics\",status=\"200\",protocol=\"http/1.1\"") ==
           -1);
  gw_metrics_del(m);
}

/* The cap of the output buffer is honoured: a too-small buffer fails with
 * the gw_buf error instead of writing a truncated exposition silently. */
static void test_render_cap(void) {
  gw_metrics *m = new_metrics(1);
  gw_buf out;

  gw_buf_init(&out, 100);
  T_EQ_INT(gw_metrics_render(m, &out, route_name3, NULL, 3), GW_ERR_TOO_LARGE);
  T_ASSERT(out.len <= 100);
  gw_buf_free(&out);
  gw_metrics_del(m);
}

/* Concurrent writers on distinct shards and a concurrent reader: the sum
 * after the writers stop is exact. */
static void *writer(void *arg) {
  gw_metrics_shard *s = arg;

  for (int i = 0; i < 100000; i++) {
    gw_metrics_request(s, 0, 200, 1, 10 * US);
    gw_metrics_count(s, GW_M_STREAM_ERRORS);
    gw_metrics_gauge(s, GW_G_STREAMS, 1);
  }
  return NULL;
}

static void test_threads(void) {
  gw_metrics *m = new_metrics(2);
  pthread_t t[2];
  expo *e;

  for (int i = 0; i < 2; i++) {
    pthread_create(&t[i], NULL, writer, gw_metrics_shard_get(m, (size_t)i));
  }
  for (int i = 0; i < 5; i++) {
    gw_buf out;
    render(m, &out, 3);
    gw_buf_free(&out);
  }
  for (int i = 0; i < 2; i++) {
    pthread_join(t[i], NULL);
  }
  e = render_parse(m, 3);
  T_EQ_STR(e->err, "");
  T_ASSERT(
      expo_get(e, REQ, "route=\"healthz\",status=\"200\",protocol=\"h2\"") ==
      200000);
  T_ASSERT(expo_get(e, "mpkigw_http2_stream_errors_total", "") == 200000);
  T_EQ_INT(gw_metrics_gauge_sum(m, GW_G_STREAMS), 200000);
  gw_metrics_del(m);
}

/* The parser itself must reject what it is meant to catch. */
static void test_parser_self_check(void) {
  static expo e;

  parse_expo(&e, "# HELP a x\n# TYPE a counter\na 1\n");
  T_EQ_STR(e.err, "");
  parse_expo(&e, "a 1\n");
  T_ASSERT(e.err[0] != '\0');
  parse_expo(&e, "# HELP a x\n# TYPE a counter\na{l=\"x} 1\n");
  T_ASSERT(e.err[0] != '\0');
  parse_expo(&e, "# HELP a x\n# TYPE a counter\na{l=\"x\"\"} 1\n");
  T_ASSERT(e.err[0] != '\0');
  parse_expo(&e, "# HELP a x\n# TYPE a counter\na{l=\"x\"} one\n");
  T_ASSERT(e.err[0] != '\0');
  parse_expo(&e, "# HELP a x\n# TYPE a counter\na 1");
  T_ASSERT(e.err[0] != '\0');
}

int main(void) {
  T_RUN(test_parser_self_check);
  T_RUN(test_new_del);
  T_RUN(test_empty_render);
  T_RUN(test_requests_summed_across_shards);
  T_RUN(test_status_slots);
  T_RUN(test_unmatched_route);
  T_RUN(test_regress_route_overflow_label);
  T_RUN(test_histogram);
  T_RUN(test_counters_and_gauges);
  T_RUN(test_nroutes_bound);
  T_RUN(test_render_cap);
  T_RUN(test_threads);
  return T_DONE();
}
