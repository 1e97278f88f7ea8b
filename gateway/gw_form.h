/* gw_form.h — application/x-www-form-urlencoded and query strings.
 *
 * Parses "a=1&b=x%20y+z" into name/value pairs, percent-decoding both and
 * turning '+' into a space. Used for query strings and for OAuth's form
 * bodies. Input is hostile: bad escapes ("%zz", "%4"), NUL bytes after
 * decoding, too many pairs and over-long input are errors, never crashes. */
#ifndef GW_FORM_H
#define GW_FORM_H

#include <stddef.h>

#define GW_FORM_MAX_PAIRS 64

typedef struct gw_kv {
  char *name;  /* decoded, NUL-terminated, owned by the gw_form */
  char *value; /* decoded, NUL-terminated, owned by the gw_form */
} gw_kv;

typedef struct gw_form {
  gw_kv pairs[GW_FORM_MAX_PAIRS];
  size_t npairs;
  char *storage; /* one allocation holding every decoded string */
} gw_form;

/* Parses |n| bytes at |s| (need not be NUL-terminated) into |f|, which the
 * caller owns and must release with gw_form_free() even after an error.
 * |f| must be zero-initialised or freed: its old content is not freed.
 * Empty segments ("a=1&&b=2") are skipped; a pair without '=' has the
 * value "". Returns GW_OK, GW_ERR_INVALID (bad escape or NUL byte),
 * GW_ERR_TOO_LARGE (more than GW_FORM_MAX_PAIRS pairs, or |n| over 1 MiB),
 * GW_ERR_NOMEM. */
int gw_form_parse(gw_form *f, const char *s, size_t n);

void gw_form_free(gw_form *f);

/* Returns the value of the first pair named |name|, or NULL; borrowed. */
const char *gw_form_get(const gw_form *f, const char *name);

/* Returns how many pairs are named |name| (OAuth forbids repeated
 * parameters: callers check this is <= 1). */
size_t gw_form_count(const gw_form *f, const char *name);

/* Percent-decodes |n| bytes of |s| into |dst| (at least n+1 bytes), turning
 * '+' into ' ' when |plus_is_space|. Writes the decoded length to |*outlen|.
 * Returns GW_OK or GW_ERR_INVALID (bad escape, decoded NUL). */
int gw_url_decode(char *dst, const char *s, size_t n, int plus_is_space,
                  size_t *outlen);

#endif
