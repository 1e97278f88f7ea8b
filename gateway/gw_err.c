#include "gw_err.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const gw_err_text[] = {
    "success",
    "out of memory",
    "invalid argument or input",
    "too large",
    "not found",
    "method not allowed",
    "input/output error",
    "TLS error",
    "configuration error",
    "store error",
    "busy",
    "limit reached",
    "protocol error",
    "internal error",
    "already exists",
};

const char *gw_strerror(int err) {
  if (err > 0 || err <= GW_ERR_LAST_) {
    return "unknown error";
  }
  return gw_err_text[-err];
}

int gw_err_is_fatal(int err) {
  return err == GW_ERR_NOMEM || err == GW_ERR_INTERNAL;
}

void gw_errf(char *buf, size_t cap, const char *fmt, ...) {
  va_list ap;

  if (!buf || cap == 0) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(buf, cap, fmt, ap);
  va_end(ap);
}
