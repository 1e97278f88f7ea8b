/* gw_log_test.c — unit tests for gateway/gw_log.c. */
#include "gw_log.h"

#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gw_err.h"
#include "harness.h"

static char tmpdir[PATH_MAX];

static const char *tmp_path(const char *name) {
  static char path[PATH_MAX + 64];

  snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
  return path;
}

/* Undoes gw_log_quote's escaping of the text between the quotes into |out|.
 * Returns the length, or -1 when |q| is not a well-formed quoted value. */
static int unquote(const char *q, char *out, size_t cap) {
  size_t len = strlen(q), o = 0;
  unsigned v;

  if (len < 2 || q[0] != '"' || q[len - 1] != '"') {
    return -1;
  }
  for (size_t i = 1; i < len - 1 && o < cap; i++) {
    if (q[i] == '"' || (unsigned char)q[i] < 0x20 || q[i] == 0x7f) {
      return -1; /* must have been escaped */
    }
    if (q[i] != '\\') {
      out[o++] = q[i];
    } else if (q[i + 1] == '"' || q[i + 1] == '\\') {
      out[o++] = q[++i];
    } else if (q[i + 1] == 'x' && i + 3 < len - 1 &&
               sscanf(q + i + 2, "%2x", &v) == 1) {
      out[o++] = (char)v;
      i += 3;
    } else {
      return -1;
    }
  }
  return (int)o;
}

static void t_quote_plain(void) {
  char buf[64];

  T_ASSERT(gw_log_quote(buf, sizeof(buf), "abc", 3) == buf);
  T_EQ_STR(buf, "\"abc\"");
  gw_log_quote(buf, sizeof(buf), "", 0);
  T_EQ_STR(buf, "\"\"");
  /* Only |n| bytes are read. */
  gw_log_quote(buf, sizeof(buf), "abcdef", 2);
  T_EQ_STR(buf, "\"ab\"");
  /* UTF-8 and other high bytes pass unchanged. */
  gw_log_quote(buf, sizeof(buf), "caf\xc3\xa9", 5);
  T_EQ_STR(buf, "\"caf\xc3\xa9\"");
}

static void t_quote_escapes(void) {
  char buf[64];

  gw_log_quote(buf, sizeof(buf), "a\"b\\c", 5);
  T_EQ_STR(buf, "\"a\\\"b\\\\c\"");
  /* A client cannot end the value early and add its own keys. */
  gw_log_quote(buf, sizeof(buf), "x\" level=error", 14);
  T_EQ_STR(buf, "\"x\\\" level=error\"");
}

static void t_quote_control(void) {
  char buf[64];

  gw_log_quote(buf, sizeof(buf), "a\nb\r\t\x01\x1f\x7f", 8);
  T_EQ_STR(buf, "\"a\\x0ab\\x0d\\x09\\x01\\x1f\\x7f\"");
  /* An embedded NUL is data, not the end. */
  gw_log_quote(buf, sizeof(buf), "a\0b", 3);
  T_EQ_STR(buf, "\"a\\x00b\"");
  /* A forged log line stays on one line. */
  gw_log_quote(buf, sizeof(buf), "ok\nts=x level=error", 19);
  T_ASSERT(strchr(buf, '\n') == NULL);
}

static void t_quote_truncation(void) {
  static const char *const inputs[] = {
      "abcdefghijklmnopqrstuvwxyz0123456789",
      "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n",
      "\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"",
      "a\nb\"c\\d\001efghijklmnop\177qrstuvwxyz",
  };
  char buf[80], plain[80];

  /* Too small for even "": empty (or untouched when there is no room). */
  memset(buf, 'Z', sizeof(buf));
  gw_log_quote(buf, 0, "abc", 3);
  T_ASSERT(buf[0] == 'Z');
  gw_log_quote(buf, 1, "abc", 3);
  T_EQ_STR(buf, "");
  memset(buf, 'Z', sizeof(buf));
  gw_log_quote(buf, 2, "abc", 3);
  T_EQ_STR(buf, "");
  gw_log_quote(buf, 3, "abc", 3);
  T_EQ_STR(buf, "\"\"");

  /* For every size, the result fits, is well formed, never splits an
   * escape, and holds a prefix of the input. */
  for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
    size_t n = strlen(inputs[i]);
    int full_seen = 0;

    for (size_t cap = 3; cap <= sizeof(buf); cap++) {
      int len;

      memset(buf, 'Z', sizeof(buf));
      gw_log_quote(buf, cap, inputs[i], n);
      T_ASSERT(strlen(buf) < cap);
      len = unquote(buf, plain, sizeof(plain));
      T_ASSERT(len >= 0);
      if (len < 0) {
        printf("#   cap %zu: %s\n", cap, buf);
        continue;
      }
      T_ASSERT(memcmp(plain, inputs[i], (size_t)len) == 0);
      /* Nothing written past what the caller allowed. */
      if (cap < sizeof(buf)) {
        T_ASSERT(buf[cap] == 'Z');
      }
      full_seen |= (size_t)len == n;
    }
    /* With room enough, nothing is cut. */
    T_ASSERT(full_seen);
  }
}

static void t_level_parse(void) {
  static const char *const bad[] = {"INFO", "",      "warning", "infox",
                                    "inf",  " info", "err"};
  gw_log_level lv = GW_LOG_ERROR;

  T_EQ_INT(gw_log_level_parse("debug", &lv), GW_OK);
  T_EQ_INT(lv, GW_LOG_DEBUG);
  T_EQ_INT(gw_log_level_parse("info", &lv), GW_OK);
  T_EQ_INT(lv, GW_LOG_INFO);
  T_EQ_INT(gw_log_level_parse("warn", &lv), GW_OK);
  T_EQ_INT(lv, GW_LOG_WARN);
  T_EQ_INT(gw_log_level_parse("error", &lv), GW_OK);
  T_EQ_INT(lv, GW_LOG_ERROR);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    lv = GW_LOG_WARN;
    T_EQ_INT(gw_log_level_parse(bad[i], &lv), GW_ERR_INVALID);
    T_EQ_INT(lv, GW_LOG_WARN); /* untouched */
  }
}

/* Reads |path| into |buf|; returns the number of lines, -1 on error. */
static int read_lines(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  size_t n;
  int lines = 0;

  buf[0] = '\0';
  if (!f) {
    return -1;
  }
  n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
  for (size_t i = 0; i < n; i++) {
    lines += buf[i] == '\n';
  }
  return lines;
}

/* Checks that |line| (up to its '\n') is "ts=<now> " followed by exactly
 * |rest|. */
static int line_is(const char *line, const char *rest) {
  static const char ts_re[] =
      "^ts=([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
      "\\.[0-9]{3}Z ";
  size_t len = strcspn(line, "\n");
  regmatch_t m[7];
  regex_t re;
  struct tm tm;
  time_t ts;
  int ok;

  if (regcomp(&re, ts_re, REG_EXTENDED) != 0) {
    return 0;
  }
  ok = regexec(&re, line, 7, m, 0) == 0;
  regfree(&re);
  if (!ok) {
    printf("#   no timestamp: %.*s\n", (int)len, line);
    return 0;
  }
  memset(&tm, 0, sizeof(tm));
  tm.tm_year = atoi(line + m[1].rm_so) - 1900;
  tm.tm_mon = atoi(line + m[2].rm_so) - 1;
  tm.tm_mday = atoi(line + m[3].rm_so);
  tm.tm_hour = atoi(line + m[4].rm_so);
  tm.tm_min = atoi(line + m[5].rm_so);
  tm.tm_sec = atoi(line + m[6].rm_so);
  ts = timegm(&tm);
  if (ts < time(NULL) - 60 || ts > time(NULL) + 1) {
    printf("#   timestamp is not now (UTC): %.*s\n", (int)len, line);
    return 0;
  }
  if (len - (size_t)m[0].rm_eo != strlen(rest) ||
      memcmp(line + m[0].rm_eo, rest, strlen(rest)) != 0) {
    printf("#   line:     %.*s\n#   expected: ts=... %s\n", (int)len, line,
           rest);
    return 0;
  }
  return 1;
}

static void t_log_file(void) {
  static char buf[16384];
  const char *path = tmp_path("gw.log");
  const char *l2, *l3;
  struct stat st;

  T_EQ_INT(gw_log_open(path, GW_LOG_INFO), GW_OK);
  T_EQ_INT(gw_log_min_level, GW_LOG_INFO);
  GW_LOG(GW_LOG_DEBUG, "hidden", "k=%d", 1);
  gw_log_write(GW_LOG_DEBUG, "hidden too", "k=%d", 2); /* checks as well */
  GW_LOG(GW_LOG_INFO, "hello \"you\"", "k=%s n=%d", "v", 42);
  GW_LOG(GW_LOG_ERROR, "line\nbreak", "%s", "x=1");
  gw_log_write(GW_LOG_WARN, "bare", NULL);

  T_EQ_INT(read_lines(path, buf, sizeof(buf)), 3);
  T_ASSERT(strstr(buf, "hidden") == NULL);
  T_ASSERT(line_is(buf, "level=info msg=\"hello \\\"you\\\"\" k=v n=42"));
  l2 = strchr(buf, '\n');
  l2 = l2 ? l2 + 1 : "";
  T_ASSERT(line_is(l2, "level=error msg=\"line\\x0abreak\" x=1"));
  l3 = strchr(l2, '\n');
  l3 = l3 ? l3 + 1 : "";
  T_ASSERT(line_is(l3, "level=warn msg=\"bare\""));

  /* Not readable by others: logs can hold client addresses. */
  T_ASSERT(stat(path, &st) == 0 && (st.st_mode & 0007) == 0);

  /* Opened again, the file is appended to, at the new level. */
  T_EQ_INT(gw_log_open(path, GW_LOG_WARN), GW_OK);
  GW_LOG(GW_LOG_INFO, "below warn", "%s", "");
  GW_LOG(GW_LOG_WARN, "again", "k=%d", 3);
  T_EQ_INT(read_lines(path, buf, sizeof(buf)), 4);
  T_ASSERT(line_is(buf, "level=info msg=\"hello \\\"you\\\"\" k=v n=42"));
  T_ASSERT(strstr(buf, "below warn") == NULL);
  T_ASSERT(strstr(buf, "level=warn msg=\"again\" k=3\n") != NULL);
  gw_log_close();
  remove(path);
}

static void t_log_long_line(void) {
  static char buf[16384], big[6000], msg[1000];
  const char *path = tmp_path("long.log");
  int n;

  memset(big, 'v', sizeof(big) - 1);
  memset(msg, 'm', sizeof(msg) - 1);
  T_EQ_INT(gw_log_open(path, GW_LOG_DEBUG), GW_OK);
  GW_LOG(GW_LOG_DEBUG, msg, "k=%s", big);
  GW_LOG(GW_LOG_INFO, "after", "%s", "k=1");
  gw_log_close();
  T_EQ_INT(read_lines(path, buf, sizeof(buf)), 2);
  n = (int)strcspn(buf, "\n");
  T_ASSERT(n > 0 && n < 4096); /* cut, but still one line */
  T_ASSERT(strstr(buf, "level=info msg=\"after\" k=1\n") != NULL);
  remove(path);
}

static void t_log_reopen(void) {
  static char buf[4096];
  const char *p = tmp_path("r.log");
  char path[PATH_MAX + 64], rotated[PATH_MAX + 64];

  snprintf(path, sizeof(path), "%s", p);
  snprintf(rotated, sizeof(rotated), "%s", tmp_path("r.log.1"));
  T_EQ_INT(gw_log_open(path, GW_LOG_INFO), GW_OK);
  GW_LOG(GW_LOG_INFO, "one", "%s", "k=1");
  T_ASSERT(rename(path, rotated) == 0);
  T_EQ_INT(gw_log_reopen(), GW_OK);
  GW_LOG(GW_LOG_INFO, "two", "%s", "k=2");
  gw_log_close();
  T_EQ_INT(read_lines(rotated, buf, sizeof(buf)), 1);
  T_ASSERT(strstr(buf, "msg=\"one\"") != NULL);
  T_EQ_INT(read_lines(path, buf, sizeof(buf)), 1);
  T_ASSERT(strstr(buf, "msg=\"two\"") != NULL);
  /* On stderr, reopen has nothing to do. */
  T_EQ_INT(gw_log_reopen(), GW_OK);
  remove(path);
  remove(rotated);
}

static void t_log_open_fail(void) {
  static char buf[4096];
  const char *p = tmp_path("keep.log");
  char path[PATH_MAX + 64];

  snprintf(path, sizeof(path), "%s", p);
  T_EQ_INT(gw_log_open(path, GW_LOG_INFO), GW_OK);
  /* A failed open keeps the current file and level. */
  T_EQ_INT(gw_log_open(tmp_path("no/such/dir.log"), GW_LOG_DEBUG), GW_ERR_IO);
  T_EQ_INT(gw_log_min_level, GW_LOG_INFO);
  GW_LOG(GW_LOG_INFO, "still here", "%s", "k=1");
  gw_log_close();
  T_EQ_INT(read_lines(path, buf, sizeof(buf)), 1);
  T_ASSERT(strstr(buf, "msg=\"still here\"") != NULL);
  remove(path);
}

int main(void) {
  char tmpl[] = "/tmp/gw_log_test.XXXXXX";

  if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir)) {
    printf("not ok - mkdtemp: %s\n", strerror(errno));
    return 1;
  }
  T_RUN(t_quote_plain);
  T_RUN(t_quote_escapes);
  T_RUN(t_quote_control);
  T_RUN(t_quote_truncation);
  T_RUN(t_level_parse);
  T_RUN(t_log_file);
  T_RUN(t_log_long_line);
  T_RUN(t_log_reopen);
  T_RUN(t_log_open_fail);
  rmdir(tmpdir);
  return T_DONE();
}
