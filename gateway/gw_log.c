#include "gw_log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "gw_err.h"

int gw_log_min_level = GW_LOG_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = 2;
static char log_path[4096];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int gw_log_level_parse(const char *s, gw_log_level *out) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (gw_log_level)i;
      return GW_OK;
    }
  }
  return GW_ERR_INVALID;
}

static int log_open_file(const char *path) {
  return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int gw_log_open(const char *path, gw_log_level level) {
  int fd = 2;

  if (path && path[0]) {
    fd = log_open_file(path);
    if (fd < 0) {
      return GW_ERR_IO;
    }
  }
  pthread_mutex_lock(&log_lock);
  if (log_fd > 2) {
    close(log_fd);
  }
  log_fd = fd;
  snprintf(log_path, sizeof(log_path), "%s", (path && path[0]) ? path : "");
  gw_log_min_level = (int)level;
  pthread_mutex_unlock(&log_lock);
  return GW_OK;
}

int gw_log_reopen(void) {
  int fd, rv = GW_OK;

  pthread_mutex_lock(&log_lock);
  if (log_path[0]) {
    fd = log_open_file(log_path);
    if (fd < 0) {
      rv = GW_ERR_IO;
    } else {
      close(log_fd);
      log_fd = fd;
    }
  }
  pthread_mutex_unlock(&log_lock);
  return rv;
}

void gw_log_close(void) {
  pthread_mutex_lock(&log_lock);
  if (log_fd > 2) {
    close(log_fd);
  }
  log_fd = 2;
  log_path[0] = '\0';
  pthread_mutex_unlock(&log_lock);
}

char *gw_log_quote(char *dst, size_t cap, const char *src, size_t n) {
  size_t o = 0;
  static const char hex[] = "0123456789abcdef";

  if (cap < 3) {
    if (cap) {
      dst[0] = '\0';
    }
    return dst;
  }
  dst[o++] = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)src[i];
    /* Leave room for the worst escape (4), the closing quote and NUL. */
    if (o + 6 > cap) {
      break;
    }
    if (c == '"' || c == '\\') {
      dst[o++] = '\\';
      dst[o++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      dst[o++] = '\\';
      dst[o++] = 'x';
      dst[o++] = hex[c >> 4];
      dst[o++] = hex[c & 15];
    } else {
      dst[o++] = (char)c;
    }
  }
  dst[o++] = '"';
  dst[o] = '\0';
  return dst;
}

int gw_log_rl_allow(gw_log_rl *rl, int per_sec, int *suppressed) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  if (ts.tv_sec != rl->sec) {
    rl->sec = ts.tv_sec;
    rl->count = 0;
  }
  if (rl->count >= per_sec) {
    rl->suppressed++;
    return 0;
  }
  rl->count++;
  *suppressed = rl->suppressed;
  rl->suppressed = 0;
  return 1;
}

void gw_log_write_raw(const char *p, size_t n) {
  ssize_t w;

  pthread_mutex_lock(&log_lock);
  while (n > 0) {
    w = write(log_fd, p, n);
    if (w <= 0) {
      break;
    }
    p += w;
    n -= (size_t)w;
  }
  pthread_mutex_unlock(&log_lock);
}

void gw_log_write(gw_log_level level, const char *msg, const char *fmt, ...) {
  char line[4096], qmsg[512];
  struct timeval tv;
  struct tm tm;
  va_list ap;
  int n, m;

  if ((int)level < gw_log_min_level || level > GW_LOG_ERROR) {
    return;
  }
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  gw_log_quote(qmsg, sizeof(qmsg), msg, strlen(msg));
  n = snprintf(line, sizeof(line),
               "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s msg=%s",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
               tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
               level_names[level], qmsg);
  if (n < 0 || (size_t)n >= sizeof(line) - 2) {
    n = (int)sizeof(line) - 2;
  }
  if (fmt && fmt[0]) {
    line[n++] = ' ';
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m > 0) {
      n += m;
      if ((size_t)n > sizeof(line) - 2) {
        n = (int)sizeof(line) - 2;
      }
    } else {
      n--;
    }
  }
  line[n++] = '\n';
  pthread_mutex_lock(&log_lock);
  /* One write per line keeps lines whole when several processes append. */
  if (write(log_fd, line, (size_t)n) < 0) {
    /* Nowhere left to report it. */
  }
  pthread_mutex_unlock(&log_lock);
}
