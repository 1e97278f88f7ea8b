/* t_http.h — reading an HTTP/1.x-style response head as text.
 *
 * |head| is a status line followed by header lines, each ending in CRLF;
 * the blank line that ends the head, and anything after it (the body),
 * may follow. libcurl's header lines for HTTP/2 have the same form. */
#ifndef TESTS_SUPPORT_T_HTTP_H
#define TESTS_SUPPORT_T_HTTP_H

/* The value of header |name| (any case; the first of several), without
 * the spaces after the colon, in a static buffer; NULL when absent. */
const char *t_hdr_get(const char *head, const char *name);

/* How many times header |name| occurs in the head. */
int t_hdr_count(const char *head, const char *name);

/* |text| begins with |prefix| (a status line, say); NULL does not. */
int t_starts_with(const char *text, const char *prefix);

/* What follows the blank line ending the head ("" without one). */
const char *t_http_body(const char *text);

#endif
