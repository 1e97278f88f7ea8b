/* Tests for gateway/gw_buf.c. */
#include <stdlib.h>
#include <string.h>

#include "gw_buf.h"
#include "gw_err.h"
#include "harness.h"

static void test_init_empty(void) {
  gw_buf b;

  gw_buf_init(&b, 16);
  T_ASSERT(b.data == NULL);
  T_EQ_INT(b.len, 0);
  T_EQ_INT(b.alloc, 0);
  T_EQ_INT(b.cap, 16);
  T_EQ_STR(gw_buf_cstr(&b), "");
  /* Reset and free of a never-used buffer are harmless. */
  gw_buf_reset(&b);
  gw_buf_free(&b);
  T_EQ_STR(gw_buf_cstr(&b), "");
}

static void test_append_nul_terminated(void) {
  gw_buf b;

  gw_buf_init(&b, 1024);
  T_EQ_INT(gw_buf_append(&b, "abc", 3), GW_OK);
  T_EQ_INT(b.len, 3);
  T_ASSERT(b.data != NULL);
  T_ASSERT(b.alloc > b.len);
  T_EQ_INT(b.data[3], '\0');
  T_EQ_STR(gw_buf_cstr(&b), "abc");
  /* Binary data, and the NUL after it. */
  T_EQ_INT(gw_buf_append(&b, "d\0e", 3), GW_OK);
  T_EQ_INT(b.len, 6);
  T_ASSERT(memcmp(b.data, "abcd\0e", 7) == 0);
  /* Appending nothing keeps the content. */
  T_EQ_INT(gw_buf_append(&b, NULL, 0), GW_OK);
  T_EQ_INT(gw_buf_append(&b, "", 0), GW_OK);
  T_EQ_INT(b.len, 6);
  T_EQ_INT(b.data[6], '\0');
  gw_buf_reset(&b);
  T_EQ_INT(gw_buf_puts(&b, "hello"), GW_OK);
  T_EQ_INT(gw_buf_puts(&b, ", world"), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "hello, world");
  T_EQ_INT(b.len, 12);
  gw_buf_free(&b);
}

/* Growing past the cap fails and leaves the content as it was. */
static void test_cap_leaves_content(void) {
  gw_buf b;
  char *before;

  gw_buf_init(&b, 8);
  T_EQ_INT(gw_buf_append(&b, "abcde", 5), GW_OK);
  before = b.data;
  T_EQ_INT(gw_buf_append(&b, "wxyz", 4), GW_ERR_TOO_LARGE);
  T_EQ_INT(b.len, 5);
  T_EQ_STR(gw_buf_cstr(&b), "abcde");
  T_ASSERT(b.data == before);
  T_EQ_INT(gw_buf_puts(&b, "0123456789"), GW_ERR_TOO_LARGE);
  T_EQ_STR(gw_buf_cstr(&b), "abcde");
  T_EQ_INT(gw_buf_printf(&b, "%d", 1234), GW_ERR_TOO_LARGE);
  T_EQ_INT(b.len, 5);
  T_EQ_STR(gw_buf_cstr(&b), "abcde");
  /* An absurd size is refused, not wrapped around. */
  T_EQ_INT(gw_buf_append(&b, "x", (size_t)-1), GW_ERR_TOO_LARGE);
  T_EQ_STR(gw_buf_cstr(&b), "abcde");
  /* What still fits is accepted after a refusal. */
  T_EQ_INT(gw_buf_append(&b, "xyz", 3), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "abcdexyz");
  gw_buf_free(&b);

  /* A first append over the cap allocates nothing. */
  gw_buf_init(&b, 4);
  T_EQ_INT(gw_buf_append(&b, "abcde", 5), GW_ERR_TOO_LARGE);
  T_ASSERT(b.data == NULL);
  T_EQ_INT(b.len, 0);
  T_EQ_STR(gw_buf_cstr(&b), "");
  gw_buf_free(&b);
}

static void test_cap_exactly_reached(void) {
  gw_buf b;

  gw_buf_init(&b, 8);
  T_EQ_INT(gw_buf_append(&b, "abcd", 4), GW_OK);
  T_EQ_INT(gw_buf_append(&b, "efgh", 4), GW_OK);
  T_EQ_INT(b.len, 8);
  T_EQ_STR(gw_buf_cstr(&b), "abcdefgh");
  T_ASSERT(b.alloc <= b.cap + 1);
  T_EQ_INT(gw_buf_append(&b, "i", 1), GW_ERR_TOO_LARGE);
  T_EQ_INT(gw_buf_append(&b, "", 0), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "abcdefgh");
  gw_buf_free(&b);

  /* printf output of exactly the remaining room. */
  gw_buf_init(&b, 6);
  T_EQ_INT(gw_buf_puts(&b, "ab"), GW_OK);
  T_EQ_INT(gw_buf_printf(&b, "%04d", 42), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "ab0042");
  T_EQ_INT(gw_buf_printf(&b, "%s", "x"), GW_ERR_TOO_LARGE);
  T_EQ_STR(gw_buf_cstr(&b), "ab0042");
  gw_buf_free(&b);

  /* A zero cap holds only the empty string. */
  gw_buf_init(&b, 0);
  T_EQ_INT(gw_buf_append(&b, "a", 1), GW_ERR_TOO_LARGE);
  T_EQ_INT(gw_buf_append(&b, "", 0), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "");
  gw_buf_free(&b);

  /* A cap above the first allocation (64) is reached through growth. */
  gw_buf_init(&b, 100);
  for (int i = 0; i < 100; i++) {
    T_EQ_INT(gw_buf_append(&b, "z", 1), GW_OK);
  }
  T_EQ_INT(b.len, 100);
  T_ASSERT(b.alloc <= b.cap + 1);
  T_EQ_INT(b.data[100], '\0');
  T_EQ_INT(gw_buf_append(&b, "z", 1), GW_ERR_TOO_LARGE);
  T_EQ_INT(b.len, 100);
  gw_buf_free(&b);
}

/* printf grows the buffer many times; the content matches snprintf. */
static void test_printf_growth(void) {
  gw_buf b;
  char *expect = malloc(100000);
  size_t elen = 0;

  T_ASSERT(expect != NULL);
  if (!expect) {
    return;
  }
  gw_buf_init(&b, 100000);
  for (int i = 0; i < 2000; i++) {
    T_EQ_INT(gw_buf_printf(&b, "%d:%s;", i, i % 3 ? "xy" : "abcdef"), GW_OK);
    elen += (size_t)snprintf(expect + elen, 100000 - elen, "%d:%s;", i,
                             i % 3 ? "xy" : "abcdef");
  }
  T_EQ_INT(b.len, elen);
  T_EQ_INT(strlen(gw_buf_cstr(&b)), elen);
  T_EQ_STR(gw_buf_cstr(&b), expect);
  T_ASSERT(b.alloc > b.len);
  /* A single printf bigger than the current allocation. */
  gw_buf_reset(&b);
  T_EQ_INT(gw_buf_printf(&b, "%5000d|", 7), GW_OK);
  T_EQ_INT(b.len, 5001);
  T_EQ_INT(b.data[4999], '7');
  T_EQ_INT(b.data[5000], '|');
  T_EQ_INT(b.data[5001], '\0');
  /* Formatting "" adds nothing. */
  T_EQ_INT(gw_buf_printf(&b, "%s", ""), GW_OK);
  T_EQ_INT(b.len, 5001);
  gw_buf_free(&b);
  free(expect);
}

static void test_reset(void) {
  gw_buf b;
  char *data;
  size_t alloc;

  gw_buf_init(&b, 1000);
  T_EQ_INT(gw_buf_puts(&b, "some content that is here"), GW_OK);
  data = b.data;
  alloc = b.alloc;
  gw_buf_reset(&b);
  T_EQ_INT(b.len, 0);
  T_EQ_STR(gw_buf_cstr(&b), "");
  /* The storage is kept. */
  T_ASSERT(b.data == data);
  T_EQ_INT(b.alloc, alloc);
  T_EQ_INT(b.cap, 1000);
  T_EQ_INT(gw_buf_puts(&b, "new"), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "new");
  T_ASSERT(b.data == data);
  gw_buf_free(&b);
}

static void test_free(void) {
  gw_buf b;

  gw_buf_init(&b, 32);
  T_EQ_INT(gw_buf_puts(&b, "abc"), GW_OK);
  gw_buf_free(&b);
  T_ASSERT(b.data == NULL);
  T_EQ_INT(b.len, 0);
  T_EQ_INT(b.alloc, 0);
  T_EQ_INT(b.cap, 32);
  T_EQ_STR(gw_buf_cstr(&b), "");
  gw_buf_free(&b);
  /* Usable again, with the same cap. */
  T_EQ_INT(gw_buf_puts(&b, "def"), GW_OK);
  T_EQ_STR(gw_buf_cstr(&b), "def");
  T_EQ_INT(gw_buf_append(&b, "0123456789012345678901234567890", 31),
           GW_ERR_TOO_LARGE);
  gw_buf_free(&b);
}

int main(void) {
  T_RUN(test_init_empty);
  T_RUN(test_append_nul_terminated);
  T_RUN(test_cap_leaves_content);
  T_RUN(test_cap_exactly_reached);
  T_RUN(test_printf_growth);
  T_RUN(test_reset);
  T_RUN(test_free);
  return T_DONE();
}
