/* test_jsonscan.c — the body prescan (UTF-8, nesting, NUL) and the JSON
 * paths it names (jsonscan.c). */
#include "check.h"
#include "buf.h"
#include "jsonscan.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

/* The prescan's finding on text, and the path of the string it stopped at. */
static fm_json_issue scan(const char *text, char *path, size_t cap) {
  fm_json_scan sc;
  size_t n = strlen(text);
  fm_json_issue issue = fm_json_prescan(text, n, true, 64, &sc);
  path[0] = '\0';
  if (issue == FM_JSON_NUL) fm_json_path_at(text, n, sc.offset, NULL, path, cap);
  return issue;
}

TEST(nul_in_a_value_is_named_by_its_path) {
  char path[160];
  CHECK_EQ_INT(
      scan("{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", path, sizeof(path)),
      FM_JSON_NUL);
  CHECK_STR(path, "messages[0].content");
  CHECK_EQ_INT(scan("{\"stop\":[\"a\",\"b\\u0000\"]}", path, sizeof(path)), FM_JSON_NUL);
  CHECK_STR(path, "stop[1]");
}

TEST(nul_in_a_key_names_that_member_as_sent) {
  char path[160];
  CHECK_EQ_INT(scan("{\"metadata\":{\"a b\":1,\"model\\u0000x\":2}}", path, sizeof(path)),
               FM_JSON_NUL);
  CHECK_STR(path, "metadata[\"model\\u0000x\"]");
}

TEST(raw_zero_byte_in_a_string_is_a_nul_too) {
  const char text[] = "{\"model\":\"k\0x\"}";
  fm_json_scan sc;
  CHECK_EQ_INT(fm_json_prescan(text, sizeof(text) - 1, true, 64, &sc), FM_JSON_NUL);
  char path[64];
  CHECK_STR(fm_json_path_at(text, sizeof(text) - 1, sc.offset, NULL, path, sizeof(path)), "model");
}

TEST(escaped_backslash_before_u0000_is_not_a_nul) {
  char path[64];
  CHECK_EQ_INT(scan("{\"content\":\"C:\\\\u0000\"}", path, sizeof(path)), FM_JSON_OK);
  CHECK_EQ_INT(scan("\"top\\u0000level\"", path, sizeof(path)), FM_JSON_OK);
}

/* Found by fuzz_messages: the prescan let a backslash escape the byte after
 * a multi-byte character, the path walker did not, so they disagreed on
 * where strings were, and a NUL was missed or named by an empty path. */
TEST(a_backslash_before_a_multibyte_character_escapes_only_its_first_byte) {
  char path[64];
  CHECK_EQ_INT(scan("{\"k\":[\"\\\xc3\xa9\",{\"x\":\"\\u0000\"}]}", path, sizeof(path)),
               FM_JSON_NUL);
  CHECK_STR(path, "k[1].x");
}

TEST(secret_object_members_are_named_by_position) {
  const char *text = "{\"accounts\":{\"keys\":{\"sk-a\":{},\"sk-b\\u0000\":{}}}}";
  fm_json_scan sc;
  REQUIRE(fm_json_prescan(text, strlen(text), false, 0, &sc) == FM_JSON_NUL);
  char path[64];
  CHECK_STR(fm_json_path_at(text, strlen(text), sc.offset, "accounts.keys", path, sizeof(path)),
            "accounts.keys[1]");
}

TEST(a_path_too_long_for_its_buffer_is_cut_between_parts) {
  char text[512] = "{";
  for (int i = 0; i < 20; i++)
    strcat(text, "\"abcdefgh\":{");
  strcat(text, "\"x\":\"\\u0000\"");
  fm_json_scan sc;
  REQUIRE(fm_json_prescan(text, strlen(text), true, 64, &sc) == FM_JSON_NUL);
  char path[40];
  fm_json_path_at(text, strlen(text), sc.offset, NULL, path, sizeof(path));
  CHECK_STR(path, "abcdefgh.abcdefgh.abcdefgh.abcdefgh...");
}

TEST(utf8_and_depth_problems_are_found_at_their_byte) {
  fm_json_scan sc;
  CHECK_EQ_INT(fm_json_prescan("{\"a\":\"\xff\"}", 9, true, 64, &sc), FM_JSON_BAD_UTF8);
  CHECK_EQ_INT(sc.offset, 6);
  CHECK_EQ_INT(sc.byte, 0xff);
  CHECK_EQ_INT(fm_json_prescan("[[[]]]", 6, true, 2, &sc), FM_JSON_TOO_DEEP);
  CHECK_EQ_INT(sc.offset, 2);
  /* An overlong form and a surrogate are not UTF-8 either. */
  CHECK_EQ_INT(fm_json_prescan("\"\xc0\xaf\"", 4, true, 64, &sc), FM_JSON_BAD_UTF8);
  CHECK_EQ_INT(fm_json_prescan("\"\xed\xa0\x80\"", 5, true, 64, &sc), FM_JSON_BAD_UTF8);
}

TEST(utf8_clean_replaces_every_stray_byte_and_keeps_whole_characters) {
  char s[] = "caf\xc3\xa9 \xff x \xe2\x82";
  CHECK_STR(fm_utf8_clean(s), "caf\xc3\xa9 ? x ??");
}

TEST(json_write_matches_cjson_print_for_request_trees) {
  static const char *const docs[] = {
      "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{"
      "\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"minLength\":3}},"
      "\"required\":[\"city\"],\"additionalProperties\":false},\"strict\":true}}",
      "[1,-2,0,1e300,0.5,0.1,123456789012,null,true,false,\"a\\\"b\\\\c\\n\\u00e9\"]", "{}", "[]",
      "{\"\":{\"x\":[[],{}]}}"};
  for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
    cJSON *v = cJSON_Parse(docs[i]);
    REQUIRE(v);
    char *want = cJSON_PrintUnformatted(v);
    fm_buf b;
    fm_buf_init(&b);
    fm_json_write(&b, v);
    fm_buf_putc(&b, 0);
    /* cJSON writes 1e300 as 1e+300 and so do we; both read back equal. */
    CHECK_STR(b.data, want);
    fm_buf_free(&b);
    cJSON_free(want);
    cJSON_Delete(v);
  }
}
