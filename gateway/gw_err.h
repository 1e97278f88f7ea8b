/* gw_err.h — the gateway's error codes.
 *
 * Every gw_ function that can fail returns 0 (GW_OK) or one of these negative
 * codes. Other libraries' conventions (OpenSSL's 1 = success, SQLite's rc,
 * libevent's -1) are translated at the call site. */
#ifndef GW_ERR_H
#define GW_ERR_H

enum {
  GW_OK = 0,
  GW_ERR_NOMEM = -1,     /* allocation failed */
  GW_ERR_INVALID = -2,   /* bad argument or malformed input */
  GW_ERR_TOO_LARGE = -3, /* input or buffer over its cap */
  GW_ERR_NOT_FOUND = -4, /* no such thing (route, key, row) */
  GW_ERR_METHOD = -5,    /* path exists, method does not */
  GW_ERR_IO = -6,        /* system call failed; errno says more */
  GW_ERR_TLS = -7,       /* OpenSSL failed; its error queue says more */
  GW_ERR_CONFIG = -8,    /* configuration rejected */
  GW_ERR_STORE = -9,     /* the store failed */
  GW_ERR_BUSY = -10,     /* the store or a resource is busy; retry later */
  GW_ERR_LIMIT = -11,    /* a configured limit was reached */
  GW_ERR_PROTO = -12,    /* peer broke the protocol */
  GW_ERR_INTERNAL = -13, /* a bug: should not happen */
  GW_ERR_EXISTS = -14,   /* already there, or already done (single use) */
  GW_ERR_LAST_ = -15
};

/* Returns a static, human-readable text for |err|; never NULL. */
const char *gw_strerror(int err);

#include <stddef.h>

/* Writes a formatted reason into |buf| (|cap| bytes; nothing when |buf| is
 * NULL or |cap| 0), cut to fit: the "err"/"errlen" out-parameter of the
 * functions that explain their failures. */
void gw_errf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns non-zero when |err| leaves the process unable to continue
 * (out of memory, internal error). */
int gw_err_is_fatal(int err);

#endif
