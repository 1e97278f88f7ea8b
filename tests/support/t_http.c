/* t_http.c — see t_http.h. */
#include "support/t_http.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* The header line after |line| (the status line at first), or NULL at the
 * blank line that ends the head or at the end of the text. */
static const char *next_line(const char *line) {
  const char *e = strstr(line, "\r\n");

  return e && strncmp(e, "\r\n\r\n", 4) != 0 ? e + 2 : NULL;
}

static int is_field(const char *line, const char *name, size_t nlen) {
  return strncasecmp(line, name, nlen) == 0 && line[nlen] == ':';
}

const char *t_hdr_get(const char *head, const char *name) {
  static char v[1024];
  size_t nlen = strlen(name);

  for (const char *line = next_line(head); line; line = next_line(line)) {
    if (is_field(line, name, nlen)) {
      const char *s = line + nlen + 1, *e;
      size_t n;
      while (*s == ' ') {
        s++;
      }
      e = strstr(s, "\r\n");
      n = e ? (size_t)(e - s) : strlen(s);
      if (n >= sizeof(v)) {
        n = sizeof(v) - 1;
      }
      memcpy(v, s, n);
      v[n] = '\0';
      return v;
    }
  }
  return NULL;
}

int t_hdr_count(const char *head, const char *name) {
  size_t nlen = strlen(name);
  int n = 0;

  for (const char *line = next_line(head); line; line = next_line(line)) {
    n += is_field(line, name, nlen);
  }
  return n;
}

int t_starts_with(const char *text, const char *prefix) {
  return text && strncmp(text, prefix, strlen(prefix)) == 0;
}

const char *t_http_body(const char *text) {
  const char *p = strstr(text, "\r\n\r\n");

  return p ? p + 4 : "";
}
