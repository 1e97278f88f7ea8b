/* gw_form.c — application/x-www-form-urlencoded and query strings.
 *
 * Two passes over the input: the first counts the pairs, so that a flood of
 * pairs is refused before anything is allocated; the second decodes every
 * name and value into one block whose size follows from the input length
 * (decoding never makes a string longer; each pair adds two NULs). */
#include "gw_form.h"

#include <stdlib.h>
#include <string.h>

#include "gw_err.h"

/* Longest input accepted. Bodies are capped per route and paths by the
 * router long before this; it keeps the storage size far from overflow and
 * bounds the work for any other caller. */
#define FORM_MAX_INPUT (1024 * 1024)

static int hex_val(unsigned char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

int gw_url_decode(char *dst, const char *s, size_t n, int plus_is_space,
                  size_t *outlen) {
  size_t i = 0, o = 0;

  if (outlen) {
    *outlen = 0;
  }
  if (!dst || (!s && n)) {
    return GW_ERR_INVALID;
  }
  while (i < n) {
    unsigned char c = (unsigned char)s[i];

    if (c == '%') {
      int hi, lo;

      if (n - i < 3) {
        goto fail; /* "%" or "%4" at the end */
      }
      hi = hex_val((unsigned char)s[i + 1]);
      lo = hex_val((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0) {
        goto fail;
      }
      c = (unsigned char)(hi << 4 | lo);
      i += 3;
    } else {
      if (c == '+' && plus_is_space) {
        c = ' ';
      }
      i++;
    }
    /* A NUL, raw or decoded, would cut the C string short and let two
     * readers of the same value disagree. */
    if (c == '\0') {
      goto fail;
    }
    dst[o++] = (char)c;
  }
  dst[o] = '\0';
  if (outlen) {
    *outlen = o;
  }
  return GW_OK;

fail:
  dst[0] = '\0';
  return GW_ERR_INVALID;
}

/* Returns the index of the '&' that ends the segment starting at |i|, or
 * |n|. */
static size_t pair_end(const char *s, size_t i, size_t n) {
  const char *p = memchr(s + i, '&', n - i);

  return p ? (size_t)(p - s) : n;
}

/* |f| must be zero-initialised or have been through gw_form_free(): its
 * previous content is overwritten, not freed. On error |f| is left empty
 * (no pairs, no storage), so gw_form_free() is then a no-op. */
int gw_form_parse(gw_form *f, const char *s, size_t n) {
  size_t i, end, count = 0, outlen;
  char *p;
  int rv;

  if (!f) {
    return GW_ERR_INVALID;
  }
  memset(f, 0, sizeof(*f));
  if (!s && n) {
    return GW_ERR_INVALID;
  }
  if (n > FORM_MAX_INPUT) {
    return GW_ERR_TOO_LARGE;
  }

  for (i = 0; i < n; i = end + 1) {
    end = pair_end(s, i, n);
    count += end > i;
  }
  if (count > GW_FORM_MAX_PAIRS) {
    return GW_ERR_TOO_LARGE;
  }
  if (count == 0) {
    return GW_OK;
  }

  f->storage = malloc(n + 2 * count);
  if (!f->storage) {
    return GW_ERR_NOMEM;
  }
  p = f->storage;
  for (i = 0; i < n; i = end + 1) {
    const char *eq;
    size_t nlen;
    gw_kv *kv;

    end = pair_end(s, i, n);
    if (end == i) {
      continue; /* "a=1&&b=2" */
    }
    kv = &f->pairs[f->npairs];
    eq = memchr(s + i, '=', end - i);
    nlen = eq ? (size_t)(eq - (s + i)) : end - i;
    rv = gw_url_decode(p, s + i, nlen, 1, &outlen);
    if (rv != GW_OK) {
      goto fail_storage;
    }
    kv->name = p;
    p += outlen + 1;
    if (eq) {
      rv = gw_url_decode(p, eq + 1, end - i - nlen - 1, 1, &outlen);
      if (rv != GW_OK) {
        goto fail_storage;
      }
    } else {
      p[0] = '\0';
      outlen = 0;
    }
    kv->value = p;
    p += outlen + 1;
    f->npairs++;
  }
  return GW_OK;

fail_storage:
  gw_form_free(f);
  return rv;
}

void gw_form_free(gw_form *f) {
  if (!f) {
    return;
  }
  free(f->storage);
  memset(f, 0, sizeof(*f));
}

const char *gw_form_get(const gw_form *f, const char *name) {
  size_t i;

  if (!f || !name) {
    return NULL;
  }
  for (i = 0; i < f->npairs && i < GW_FORM_MAX_PAIRS; i++) {
    if (f->pairs[i].name && strcmp(f->pairs[i].name, name) == 0) {
      return f->pairs[i].value;
    }
  }
  return NULL;
}

size_t gw_form_count(const gw_form *f, const char *name) {
  size_t i, count = 0;

  if (!f || !name) {
    return 0;
  }
  for (i = 0; i < f->npairs && i < GW_FORM_MAX_PAIRS; i++) {
    if (f->pairs[i].name && strcmp(f->pairs[i].name, name) == 0) {
      count++;
    }
  }
  return count;
}
