/* gw_log.h — structured log lines (logfmt).
 *
 * Each line: ts=<RFC 3339 UTC> level=<lvl> msg="<text>" key=value ...
 * Callers format the key=value part; values that come from the network must
 * go through gw_log_quote() so that a client cannot forge log lines. Check
 * the level before formatting: use the GW_LOG macro. Secrets are never
 * passed here. Thread-safe. */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stddef.h>

typedef enum {
  GW_LOG_DEBUG = 0,
  GW_LOG_INFO = 1,
  GW_LOG_WARN = 2,
  GW_LOG_ERROR = 3
} gw_log_level;

/* Directs the log to |path| (appended, created 0640) or, when NULL or "", to
 * stderr; sets the minimum level. Returns GW_OK or GW_ERR_IO. */
int gw_log_open(const char *path, gw_log_level level);

/* Reopens the file (after rotation); a no-op for stderr. */
int gw_log_reopen(void);

void gw_log_close(void);

/* Parses "debug"|"info"|"warn"|"error". Returns GW_OK or GW_ERR_INVALID. */
int gw_log_level_parse(const char *s, gw_log_level *out);

extern int gw_log_min_level;

void gw_log_write(gw_log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes |n| bytes of already formatted lines (each ending in '\n') in one
 * write; used for the buffered access log. */
void gw_log_write_raw(const char *p, size_t n);

/* A per-thread rate limit for log lines that clients can trigger at will
 * (refused connections, timeouts): at most |per_sec| lines a second; the
 * rest are counted and reported on the next line allowed. Zero-initialise. */
typedef struct gw_log_rl {
  long sec;
  int count;
  int suppressed;
} gw_log_rl;

/* Returns 1 when a line may be written now and stores in |*suppressed| how
 * many were dropped since the last one (0 usually); returns 0 otherwise. */
int gw_log_rl_allow(gw_log_rl *rl, int per_sec, int *suppressed);

/* Writes |src| (|n| bytes) into |dst| as a double-quoted logfmt value,
 * escaping quotes, backslashes and control bytes, truncated to fit |cap|.
 * Returns |dst|. */
char *gw_log_quote(char *dst, size_t cap, const char *src, size_t n);

#define GW_LOG(level, msg, ...)                                                \
  do {                                                                         \
    if ((int)(level) >= gw_log_min_level) {                                    \
      gw_log_write((level), (msg), __VA_ARGS__);                               \
    }                                                                          \
  } while (0)

#endif
