/* test_buf.c — the growable buffer and the JSON writers on it. */
#include "check.h"
#include "buf.h"

#include <limits.h>

/* Renders one JSON string into a fresh buffer; returns the buffer for CHECK_STR. */
static const char *json_str(fm_buf *b, const char *s) {
  fm_buf_init(b);
  fm_buf_json_str(b, s);
  return b->data;
}

static const char *json_num(fm_buf *b, double v) {
  fm_buf_init(b);
  fm_buf_json_num(b, v);
  return b->data;
}

TEST(plain_text_is_quoted_unchanged) {
  fm_buf b;
  CHECK_STR(json_str(&b, "hello world"), "\"hello world\"");
  fm_buf_free(&b);
  CHECK_STR(json_str(&b, ""), "\"\"");
  fm_buf_free(&b);
}

TEST(quote_and_backslash_are_escaped) {
  fm_buf b;
  CHECK_STR(json_str(&b, "say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
  fm_buf_free(&b);
}

TEST(newline_tab_and_carriage_return_use_short_escapes) {
  fm_buf b;
  CHECK_STR(json_str(&b, "a\nb\tc\rd"), "\"a\\nb\\tc\\rd\"");
  fm_buf_free(&b);
}

TEST(other_control_chars_use_unicode_escapes) {
  fm_buf b;
  CHECK_STR(json_str(&b, "\x01"), "\"\\u0001\"");
  fm_buf_free(&b);
  CHECK_STR(json_str(&b, "x\x1fy\x08z"), "\"x\\u001fy\\u0008z\"");
  fm_buf_free(&b);
}

TEST(embedded_nul_is_escaped_when_length_is_given) {
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_json_strn(&b, "a\0b", 3);
  CHECK_STR(b.data, "\"a\\u0000b\"");
  CHECK_EQ_INT(b.len, 10);
  fm_buf_free(&b);
}

TEST(utf8_and_del_pass_through) {
  fm_buf b;
  CHECK_STR(json_str(&b, "caf\xc3\xa9 \x7f"), "\"caf\xc3\xa9 \x7f\"");
  fm_buf_free(&b);
}

/* The escaping the writer must match, one byte at a time. */
static void escape_slowly(fm_buf *b, const unsigned char *s, size_t n) {
  fm_buf_putc(b, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\')
      fm_buf_printf(b, "\\%c", c);
    else if (c == '\n')
      fm_buf_puts(b, "\\n");
    else if (c == '\r')
      fm_buf_puts(b, "\\r");
    else if (c == '\t')
      fm_buf_puts(b, "\\t");
    else if (c < 0x20)
      fm_buf_printf(b, "\\u%04x", c);
    else
      fm_buf_putc(b, (char)c);
  }
  fm_buf_putc(b, '"');
}

/* Plain text is scanned 8 bytes at a time: any byte value, at any place in
 * a word, in strings of every length around a word, is escaped as it must. */
TEST(every_byte_at_every_offset_is_escaped_as_one_at_a_time) {
  unsigned char s[19];
  int bad = 0;
  for (size_t len = 1; len <= sizeof(s) && !bad; len++) {
    for (size_t at = 0; at < len && !bad; at++) {
      for (int c = 0; c < 256 && !bad; c++) {
        memset(s, 'a', sizeof(s));
        s[at] = (unsigned char)c;
        if (len > 9) s[len - 1] = 0xe9; /* a high byte beside it, in another word */
        fm_buf got, want;
        fm_buf_init(&got);
        fm_buf_init(&want);
        fm_buf_json_strn(&got, (const char *)s, len);
        escape_slowly(&want, s, len);
        bad = got.len != want.len || memcmp(got.data, want.data, got.len) != 0;
        CHECK_STR(got.data, want.data);
        fm_buf_free(&got);
        fm_buf_free(&want);
      }
    }
  }
}

/* Integers are written without printf, two digits a step; they must read as printf's %lld. */
TEST(integers_are_written_as_printf_writes_them) {
  static const long long fixed[] = {0,    9,    10,    99,        100,        101,
                                    -1,   -9,   -10,   -100,      1000000000, 999999999,
                                    1024, 4096, 65535, LLONG_MAX, LLONG_MIN,  LLONG_MIN + 1};
  char want[32];
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
    fm_buf b;
    fm_buf_init(&b);
    fm_buf_put_i64(&b, fixed[i]);
    snprintf(want, sizeof(want), "%lld", fixed[i]);
    CHECK_STR(b.data, want);
    fm_buf_free(&b);
  }
  int bad = 0;
  for (long long v = -20000; v <= 20000 && !bad; v += 7) {
    fm_buf b;
    fm_buf_init(&b);
    fm_buf_put_i64(&b, v * 7919);
    snprintf(want, sizeof(want), "%lld", v * 7919);
    bad = strcmp(b.data, want) != 0;
    CHECK_STR(b.data, want);
    fm_buf_free(&b);
  }
}

TEST(null_string_is_json_null) {
  fm_buf b;
  CHECK_STR(json_str(&b, NULL), "null");
  fm_buf_free(&b);
}

TEST(whole_numbers_have_no_fraction) {
  fm_buf b;
  CHECK_STR(json_num(&b, 0), "0");
  fm_buf_free(&b);
  CHECK_STR(json_num(&b, 42), "42");
  fm_buf_free(&b);
  CHECK_STR(json_num(&b, -7), "-7");
  fm_buf_free(&b);
  CHECK_STR(json_num(&b, 1e15), "1000000000000000");
  fm_buf_free(&b);
  CHECK_STR(json_num(&b, 4194304.0), "4194304");
  fm_buf_free(&b);
}

TEST(fractions_keep_their_digits) {
  fm_buf b;
  CHECK_STR(json_num(&b, 0.5), "0.5");
  fm_buf_free(&b);
  CHECK_STR(json_num(&b, 0.95), "0.95");
  fm_buf_free(&b);
  CHECK_STR(json_num(&b, -1.25), "-1.25");
  fm_buf_free(&b);
}

TEST(non_finite_numbers_are_null) {
  fm_buf b;
  CHECK_STR(json_num(&b, NAN), "null");
  fm_buf_free(&b);
  CHECK_STR(json_num(&b, INFINITY), "null");
  fm_buf_free(&b);
  CHECK_STR(json_num(&b, -INFINITY), "null");
  fm_buf_free(&b);
}

TEST(printf_grows_past_256_bytes) {
  char big[1001];
  memset(big, 'x', 1000);
  big[1000] = '\0';
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_printf(&b, "[%s]", big);
  CHECK_EQ_INT(b.len, 1002);
  CHECK_EQ_INT(strlen(b.data), 1002);
  CHECK(b.cap >= 1003);
  CHECK(b.data[0] == '[' && b.data[1] == 'x' && b.data[1000] == 'x' && b.data[1001] == ']');
  CHECK(!b.oom);
  fm_buf_free(&b);
}

TEST(printf_exactly_256_bytes_takes_the_long_path) {
  char s[257];
  memset(s, 'y', 256);
  s[256] = '\0';
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_printf(&b, "%s", s);
  CHECK_EQ_INT(b.len, 256);
  CHECK_STR(b.data, s);
  fm_buf_free(&b);
}

TEST(printf_appends_after_existing_text) {
  char big[301];
  memset(big, 'z', 300);
  big[300] = '\0';
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_puts(&b, "head:");
  fm_buf_printf(&b, "%d:", 7);
  fm_buf_printf(&b, "%s", big);
  fm_buf_printf(&b, ":%s", "tail");
  CHECK_EQ_INT(b.len, 5 + 2 + 300 + 5);
  CHECK(strncmp(b.data, "head:7:zzz", 10) == 0);
  CHECK_STR(b.data + b.len - 6, "z:tail");
  fm_buf_free(&b);
}

TEST(many_small_writes_grow_the_buffer) {
  fm_buf b;
  fm_buf_init(&b);
  for (int i = 0; i < 1000; i++)
    fm_buf_putc(&b, (char)('a' + i % 26));
  CHECK_EQ_INT(b.len, 1000);
  CHECK(b.data[999] == 'a' + 999 % 26);
  CHECK(b.data[1000] == '\0');
  fm_buf_free(&b);
}

TEST(reset_empties_but_keeps_capacity) {
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_puts(&b, "something");
  size_t cap = b.cap;
  fm_buf_reset(&b);
  CHECK_EQ_INT(b.len, 0);
  CHECK_STR(b.data, "");
  CHECK_EQ_INT(b.cap, cap);
  fm_buf_free(&b);
}

TEST(steal_hands_over_the_bytes_and_empties_the_buffer) {
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_puts(&b, "abc");
  size_t len = 0;
  char *s = fm_buf_steal(&b, &len);
  CHECK_STR(s, "abc");
  CHECK_EQ_INT(len, 3);
  CHECK(b.data == NULL);
  CHECK_EQ_INT(b.len, 0);
  free(s);
}

TEST(steal_of_an_empty_buffer_gives_an_empty_string) {
  fm_buf b;
  fm_buf_init(&b);
  size_t len = 99;
  char *s = fm_buf_steal(&b, &len);
  REQUIRE(s != NULL);
  CHECK_EQ_INT(s[0], '\0'); /* not CHECK_STR: without the NUL it would read past the end */
  CHECK_EQ_INT(len, 0);
  free(s);
}

TEST(a_buffer_in_callers_storage_moves_to_the_heap_when_it_outgrows_it) {
  char stack[8];
  fm_buf b;
  fm_buf_init_with(&b, stack, sizeof(stack));
  fm_buf_puts(&b, "abc");
  CHECK(b.data == stack);
  fm_buf_puts(&b, "defghij"); /* 10 bytes and the NUL: past 8 */
  CHECK(b.data != stack);
  fm_buf_putc(&b, 0);
  CHECK_STR(b.data, "abcdefghij");
  fm_buf_free(&b); /* frees the heap copy only */
  fm_buf_init_with(&b, stack, sizeof(stack));
  fm_buf_puts(&b, "xy");
  size_t len = 0;
  char *s = fm_buf_steal(&b, &len); /* stack bytes are copied out, never handed over */
  CHECK(s != stack);
  CHECK_EQ_INT(len, 2);
  CHECK(memcmp(s, "xy", 2) == 0);
  free(s);
}
