/* gw_buf.h — a growable byte buffer with a hard cap.
 *
 * Every buffer that holds network input has a cap fixed at init; growing past
 * it fails with GW_ERR_TOO_LARGE and leaves the content unchanged. */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct gw_buf {
  char *data;   /* NULL until the first append; always NUL-terminated after */
  size_t len;   /* bytes in use, excluding the terminating NUL */
  size_t alloc; /* bytes allocated */
  size_t cap;   /* hard cap on len */
} gw_buf;

/* Initialises an empty buffer that may hold at most |cap| bytes. */
void gw_buf_init(gw_buf *b, size_t cap);

/* Frees the storage; the buffer is empty (same cap) afterwards. */
void gw_buf_free(gw_buf *b);

/* Empties the buffer, keeping its storage. */
void gw_buf_reset(gw_buf *b);

/* Appends |n| bytes. Returns GW_OK, GW_ERR_TOO_LARGE or GW_ERR_NOMEM. */
int gw_buf_append(gw_buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string. Same errors as gw_buf_append. */
int gw_buf_puts(gw_buf *b, const char *s);

/* Appends formatted text. Same errors as gw_buf_append. */
int gw_buf_printf(gw_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int gw_buf_vprintf(gw_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Returns the content as a C string ("" when empty); borrowed. */
const char *gw_buf_cstr(const gw_buf *b);

#endif
