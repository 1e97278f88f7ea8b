#include "gw_err.h"

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
