/* Tests for gateway/gw_form.c. */
#include <stdlib.h>
#include <string.h>

#include "gw_err.h"
#include "gw_form.h"
#include "harness.h"

/* Parses |s| from a heap copy of exactly strlen(s) bytes with no NUL after
 * it, so that ASan reports any read past the end. */
static int parse_exact(gw_form *f, const char *s) {
  size_t n = strlen(s);
  char *copy = malloc(n ? n : 1);
  int rv;

  if (!copy) {
    printf("#   out of memory\n");
    exit(1);
  }
  memcpy(copy, s, n);
  rv = gw_form_parse(f, copy, n);
  free(copy);
  return rv;
}

static void test_basic(void) {
  gw_form f = {0};

  T_EQ_INT(parse_exact(&f, "a=1&b=x%20y+z"), GW_OK);
  T_EQ_INT(f.npairs, 2);
  T_EQ_STR(f.pairs[0].name, "a");
  T_EQ_STR(f.pairs[0].value, "1");
  T_EQ_STR(f.pairs[1].name, "b");
  T_EQ_STR(f.pairs[1].value, "x y z");
  T_EQ_STR(gw_form_get(&f, "a"), "1");
  T_EQ_STR(gw_form_get(&f, "b"), "x y z");
  T_ASSERT(gw_form_get(&f, "c") == NULL);
  T_ASSERT(gw_form_get(&f, "A") == NULL);
  T_ASSERT(gw_form_get(&f, "") == NULL);
  T_ASSERT(gw_form_get(NULL, "a") == NULL);
  T_ASSERT(gw_form_get(&f, NULL) == NULL);
  gw_form_free(&f);
  T_EQ_INT(f.npairs, 0);
  T_ASSERT(f.storage == NULL);
}

static void test_decoding(void) {
  gw_form f = {0};

  /* Names are decoded as well as values. */
  T_EQ_INT(parse_exact(&f, "redirect%5Furi=https%3A%2F%2Fh.example%2Fcb%3Fa"
                           "%3D1&x+y=%2B+%2b&e=%C3%A9"),
           GW_OK);
  T_EQ_INT(f.npairs, 3);
  T_EQ_STR(gw_form_get(&f, "redirect_uri"), "https://h.example/cb?a=1");
  T_EQ_STR(gw_form_get(&f, "x y"), "+ +");
  T_EQ_STR(gw_form_get(&f, "e"), "\xc3\xa9");
  gw_form_free(&f);

  /* '=' after the first one belongs to the value. */
  T_EQ_INT(parse_exact(&f, "a=b=c&d==&%3D=%3d"), GW_OK);
  T_EQ_STR(gw_form_get(&f, "a"), "b=c");
  T_EQ_STR(gw_form_get(&f, "d"), "=");
  T_EQ_STR(gw_form_get(&f, "="), "=");
  gw_form_free(&f);

  /* Only "&" separates pairs. */
  T_EQ_INT(parse_exact(&f, "a=1;b=2"), GW_OK);
  T_EQ_INT(f.npairs, 1);
  T_EQ_STR(gw_form_get(&f, "a"), "1;b=2");
  gw_form_free(&f);
}

static void test_bad_escapes(void) {
  static const char *bad[] = {"a=%zz",    "a=%4",      "a=%",     "%",
                              "a=1&b=%4", "a=%4g&b=1", "%zz=1",   "a%=1",
                              "a=%00",    "%00=1",     "a=x%00y", "a=1&b=%0",
                              "a=%%41",   "a=%g0",     "a=% 41",  "ok=1&a=%Z"};

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    gw_form f = {0};
    int rv = parse_exact(&f, bad[i]);

    if (rv != GW_ERR_INVALID) {
      printf("#   input \"%s\"\n", bad[i]);
    }
    T_EQ_INT(rv, GW_ERR_INVALID);
    /* An error leaves the form empty; freeing it is still allowed. */
    T_EQ_INT(f.npairs, 0);
    T_ASSERT(f.storage == NULL);
    T_ASSERT(gw_form_get(&f, "ok") == NULL);
    gw_form_free(&f);
  }
}

static void test_raw_nul(void) {
  static const char in[] = {'a', '=', '1', '&', 'b', '=', 'x', '\0', 'y'};
  gw_form f = {0};
  char *copy = malloc(sizeof(in));

  T_ASSERT(copy != NULL);
  if (!copy) {
    return;
  }
  memcpy(copy, in, sizeof(in));
  T_EQ_INT(gw_form_parse(&f, copy, sizeof(in)), GW_ERR_INVALID);
  gw_form_free(&f);
  /* A NUL in a name too. */
  copy[0] = '\0';
  T_EQ_INT(gw_form_parse(&f, copy, 3), GW_ERR_INVALID);
  gw_form_free(&f);
  /* The bytes before the NUL parse fine. */
  T_EQ_INT(gw_form_parse(&f, copy + 1, 6), GW_OK);
  T_EQ_STR(gw_form_get(&f, "b"), "x");
  gw_form_free(&f);
  free(copy);
}

static void test_repeated_names(void) {
  gw_form f = {0};

  T_EQ_INT(parse_exact(&f, "scope=a&code=c&scope=b&scope"), GW_OK);
  T_EQ_INT(f.npairs, 4);
  T_EQ_INT(gw_form_count(&f, "scope"), 3);
  T_EQ_INT(gw_form_count(&f, "code"), 1);
  T_EQ_INT(gw_form_count(&f, "nope"), 0);
  T_EQ_INT(gw_form_count(&f, "scop"), 0);
  T_EQ_INT(gw_form_count(NULL, "scope"), 0);
  T_EQ_INT(gw_form_count(&f, NULL), 0);
  /* The first one is returned. */
  T_EQ_STR(gw_form_get(&f, "scope"), "a");
  gw_form_free(&f);

  /* Encoded names count as the same name. */
  T_EQ_INT(parse_exact(&f, "a=1&%61=2"), GW_OK);
  T_EQ_INT(gw_form_count(&f, "a"), 2);
  gw_form_free(&f);
}

static void test_missing_equals_and_empty(void) {
  gw_form f = {0};

  T_EQ_INT(parse_exact(&f, "flag&a=&=v&b"), GW_OK);
  T_EQ_INT(f.npairs, 4);
  T_EQ_STR(f.pairs[0].name, "flag");
  T_EQ_STR(f.pairs[0].value, "");
  T_EQ_STR(f.pairs[1].name, "a");
  T_EQ_STR(f.pairs[1].value, "");
  T_EQ_STR(f.pairs[2].name, "");
  T_EQ_STR(f.pairs[2].value, "v");
  T_EQ_STR(f.pairs[3].name, "b");
  T_EQ_STR(f.pairs[3].value, "");
  T_EQ_STR(gw_form_get(&f, ""), "v");
  gw_form_free(&f);

  /* Empty segments are skipped. */
  T_EQ_INT(parse_exact(&f, "&&a=1&&&b=2&"), GW_OK);
  T_EQ_INT(f.npairs, 2);
  T_EQ_STR(gw_form_get(&f, "a"), "1");
  T_EQ_STR(gw_form_get(&f, "b"), "2");
  gw_form_free(&f);

  T_EQ_INT(parse_exact(&f, ""), GW_OK);
  T_EQ_INT(f.npairs, 0);
  gw_form_free(&f);
  T_EQ_INT(parse_exact(&f, "&&&"), GW_OK);
  T_EQ_INT(f.npairs, 0);
  T_ASSERT(f.storage == NULL);
  gw_form_free(&f);
  T_EQ_INT(gw_form_parse(&f, NULL, 0), GW_OK);
  T_EQ_INT(f.npairs, 0);
  gw_form_free(&f);
  T_EQ_INT(parse_exact(&f, "="), GW_OK);
  T_EQ_INT(f.npairs, 1);
  T_EQ_STR(f.pairs[0].name, "");
  T_EQ_STR(f.pairs[0].value, "");
  gw_form_free(&f);
}

/* Builds |n| pairs "kI=vI" joined by |sep|. */
static char *make_pairs(int n, const char *sep) {
  char *s = malloc((size_t)n * (16 + strlen(sep)) + 1);
  size_t len = 0;

  if (!s) {
    printf("#   out of memory\n");
    exit(1);
  }
  s[0] = '\0';
  for (int i = 0; i < n; i++) {
    len += (size_t)sprintf(s + len, "%sk%d=v%d", i ? sep : "", i, i);
  }
  return s;
}

static void test_pair_limit(void) {
  gw_form f = {0};
  char *s;

  s = make_pairs(GW_FORM_MAX_PAIRS, "&");
  T_EQ_INT(parse_exact(&f, s), GW_OK);
  T_EQ_INT(f.npairs, GW_FORM_MAX_PAIRS);
  T_EQ_STR(gw_form_get(&f, "k63"), "v63");
  gw_form_free(&f);
  free(s);

  s = make_pairs(GW_FORM_MAX_PAIRS + 1, "&");
  T_EQ_INT(parse_exact(&f, s), GW_ERR_TOO_LARGE);
  T_EQ_INT(f.npairs, 0);
  T_ASSERT(f.storage == NULL);
  gw_form_free(&f);
  free(s);

  /* Empty segments do not count towards the limit. */
  s = make_pairs(GW_FORM_MAX_PAIRS, "&&&");
  T_EQ_INT(parse_exact(&f, s), GW_OK);
  T_EQ_INT(f.npairs, GW_FORM_MAX_PAIRS);
  gw_form_free(&f);
  free(s);

  /* 65 pairs without '=' are 65 pairs as well. */
  {
    char bare[2 * (GW_FORM_MAX_PAIRS + 1)];

    for (int i = 0; i < GW_FORM_MAX_PAIRS + 1; i++) {
      bare[2 * i] = 'x';
      bare[2 * i + 1] = '&';
    }
    bare[sizeof(bare) - 1] = '\0';
    T_EQ_INT(parse_exact(&f, bare), GW_ERR_TOO_LARGE);
    gw_form_free(&f);
  }
}

static void test_long_input(void) {
  const size_t big = 1024 * 1024;
  gw_form f = {0};
  char *s = malloc(big + 1);

  T_ASSERT(s != NULL);
  if (!s) {
    return;
  }
  /* One long value at the cap parses; one byte more is too large. */
  memset(s, 'v', big + 1);
  s[0] = 'a';
  s[1] = '=';
  T_EQ_INT(gw_form_parse(&f, s, big), GW_OK);
  T_EQ_INT(strlen(gw_form_get(&f, "a")), big - 2);
  gw_form_free(&f);
  T_EQ_INT(gw_form_parse(&f, s, big + 1), GW_ERR_TOO_LARGE);
  gw_form_free(&f);
  free(s);
}

/* Inputs that end in the middle of an escape, in buffers with no NUL after
 * them: any read past |n| is an ASan error. */
static void test_not_terminated(void) {
  static const char *in[] = {"a=1&b=%4", "a=%", "a=b%2", "%", "%4"};
  gw_form f = {0};

  for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
    T_EQ_INT(parse_exact(&f, in[i]), GW_ERR_INVALID);
    gw_form_free(&f);
  }
  T_EQ_INT(parse_exact(&f, "a=b"), GW_OK);
  T_EQ_STR(gw_form_get(&f, "a"), "b");
  gw_form_free(&f);
  T_EQ_INT(parse_exact(&f, "a=%41"), GW_OK);
  T_EQ_STR(gw_form_get(&f, "a"), "A");
  gw_form_free(&f);
  T_EQ_INT(parse_exact(&f, "abc"), GW_OK);
  T_EQ_STR(gw_form_get(&f, "abc"), "");
  gw_form_free(&f);

  /* A prefix of a longer buffer: the rest is not looked at. */
  T_EQ_INT(gw_form_parse(&f, "a=1&b=%zz", 3), GW_OK);
  T_EQ_INT(f.npairs, 1);
  T_EQ_STR(gw_form_get(&f, "a"), "1");
  gw_form_free(&f);
}

static void test_free_and_reuse(void) {
  gw_form f;

  memset(&f, 0, sizeof(f));
  gw_form_free(&f); /* zeroed */
  gw_form_free(&f); /* twice */
  gw_form_free(NULL);

  T_EQ_INT(parse_exact(&f, "a=1"), GW_OK);
  gw_form_free(&f);
  T_EQ_INT(parse_exact(&f, "b=2"), GW_OK);
  T_ASSERT(gw_form_get(&f, "a") == NULL);
  T_EQ_STR(gw_form_get(&f, "b"), "2");
  gw_form_free(&f);

  T_EQ_INT(gw_form_parse(NULL, "a", 1), GW_ERR_INVALID);
  T_EQ_INT(gw_form_parse(&f, NULL, 1), GW_ERR_INVALID);
  gw_form_free(&f);
}

static void test_url_decode(void) {
  char dst[32];
  size_t n = 99;

  T_EQ_INT(gw_url_decode(dst, "a+b%20c", 7, 1, &n), GW_OK);
  T_EQ_STR(dst, "a b c");
  T_EQ_INT(n, 5);
  T_EQ_INT(gw_url_decode(dst, "a+b%20c", 7, 0, &n), GW_OK);
  T_EQ_STR(dst, "a+b c");
  T_EQ_INT(n, 5);
  /* Only |n| bytes are read. */
  T_EQ_INT(gw_url_decode(dst, "ab%zz", 2, 0, &n), GW_OK);
  T_EQ_STR(dst, "ab");
  T_EQ_INT(gw_url_decode(dst, "", 0, 0, &n), GW_OK);
  T_EQ_STR(dst, "");
  T_EQ_INT(n, 0);
  T_EQ_INT(gw_url_decode(dst, "%fF%Ff", 6, 0, &n), GW_OK);
  T_EQ_INT(n, 2);
  T_EQ_INT((unsigned char)dst[0], 0xff);
  T_EQ_INT((unsigned char)dst[1], 0xff);

  n = 99;
  T_EQ_INT(gw_url_decode(dst, "%zz", 3, 0, &n), GW_ERR_INVALID);
  T_EQ_INT(n, 0);
  T_EQ_INT(gw_url_decode(dst, "ab%4", 4, 0, &n), GW_ERR_INVALID);
  T_EQ_INT(gw_url_decode(dst, "%00", 3, 0, &n), GW_ERR_INVALID);
  T_EQ_INT(gw_url_decode(dst, "a\0b", 3, 0, &n), GW_ERR_INVALID);
  T_EQ_INT(gw_url_decode(dst, "%41", 2, 0, &n), GW_ERR_INVALID);
  T_EQ_INT(gw_url_decode(NULL, "a", 1, 0, &n), GW_ERR_INVALID);
  T_EQ_INT(gw_url_decode(dst, NULL, 1, 0, &n), GW_ERR_INVALID);
}

int main(void) {
  T_RUN(test_basic);
  T_RUN(test_decoding);
  T_RUN(test_bad_escapes);
  T_RUN(test_raw_nul);
  T_RUN(test_repeated_names);
  T_RUN(test_missing_equals_and_empty);
  T_RUN(test_pair_limit);
  T_RUN(test_long_input);
  T_RUN(test_not_terminated);
  T_RUN(test_free_and_reuse);
  T_RUN(test_url_decode);
  return T_DONE();
}
