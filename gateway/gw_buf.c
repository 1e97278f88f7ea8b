#include "gw_buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_err.h"

/* Caps above this would let the doubling in buf_reserve (and cap + 1)
 * overflow; no buffer of ours comes near it. */
#define GW_BUF_MAX_CAP (SIZE_MAX / 4)

void gw_buf_init(gw_buf *b, size_t cap) {
  b->data = NULL;
  b->len = 0;
  b->alloc = 0;
  b->cap = cap > GW_BUF_MAX_CAP ? GW_BUF_MAX_CAP : cap;
}

void gw_buf_free(gw_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->alloc = 0;
}

void gw_buf_reset(gw_buf *b) {
  b->len = 0;
  if (b->data) {
    b->data[0] = '\0';
  }
}

/* Makes room for |extra| more bytes plus the NUL. */
static int buf_reserve(gw_buf *b, size_t extra) {
  size_t need, n;
  char *p;

  if (extra > b->cap || b->len > b->cap - extra) {
    return GW_ERR_TOO_LARGE;
  }
  need = b->len + extra + 1;
  if (need <= b->alloc) {
    return GW_OK;
  }
  n = b->alloc ? b->alloc : 64;
  while (n < need) {
    n *= 2;
  }
  if (n > b->cap + 1) {
    n = b->cap + 1;
  }
  p = realloc(b->data, n);
  if (!p) {
    return GW_ERR_NOMEM;
  }
  b->data = p;
  b->alloc = n;
  return GW_OK;
}

int gw_buf_append(gw_buf *b, const void *p, size_t n) {
  int rv = buf_reserve(b, n);

  if (rv != GW_OK) {
    return rv;
  }
  if (n) {
    memcpy(b->data + b->len, p, n);
  }
  b->len += n;
  b->data[b->len] = '\0';
  return GW_OK;
}

int gw_buf_puts(gw_buf *b, const char *s) {
  return gw_buf_append(b, s, strlen(s));
}

int gw_buf_vprintf(gw_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  size_t avail = b->alloc > b->len ? b->alloc - b->len : 0;
  int n, rv;

  /* Format straight into the free space; only a line that does not fit is
   * formatted a second time, after growing. */
  va_copy(ap2, ap);
  n = vsnprintf(avail ? b->data + b->len : NULL, avail, fmt, ap2);
  va_end(ap2);
  if (n < 0) {
    return GW_ERR_INVALID;
  }
  if ((size_t)n < avail) {
    if ((size_t)n > b->cap - b->len) {
      b->data[b->len] = '\0';
      return GW_ERR_TOO_LARGE;
    }
    b->len += (size_t)n;
    return GW_OK;
  }
  if (b->data) {
    b->data[b->len] = '\0';
  }
  rv = buf_reserve(b, (size_t)n);
  if (rv != GW_OK) {
    return rv;
  }
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return GW_OK;
}

int gw_buf_printf(gw_buf *b, const char *fmt, ...) {
  va_list ap;
  int rv;

  va_start(ap, fmt);
  rv = gw_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rv;
}

const char *gw_buf_cstr(const gw_buf *b) {
  return b->data ? b->data : "";
}
