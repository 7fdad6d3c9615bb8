/* test_journal.c — the request journal's ring: its bound and what it drops,
 * filters, body caps, clearing one test's entries, and its JSON. */
#include "check.h"
#include "journal.h"

#include <cjson/cJSON.h>

/* An entry as the API layer would hand it over: borrowed strings. */
static fm_journal_entry entry(int64_t time_ms, int status, const char *test_id) {
  fm_journal_entry e = {0};
  e.time_ms = time_ms;
  e.status = status;
  e.test_id = test_id;
  e.route = "chat/completions";
  e.model = "accounts/fireworks/models/kimi-k2p6";
  e.tier = 0;
  e.queue_ms = e.ttft_ms = -1;
  memcpy(e.key_id, "k-000000000001", 15);
  return e;
}

static void add(fm_journal *j, int64_t time_ms, int status, const char *test_id) {
  fm_journal_entry e = entry(time_ms, status, test_id);
  CHECK_EQ_INT(fm_journal_add(j, &e, "{}", 2), 0);
}

/* The times of the entries f matches, newest first, into out; returns how many. */
static size_t times(const fm_journal *j, const fm_journal_filter *f, int64_t *out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; n < max; i++) {
    const fm_journal_entry *e = fm_journal_newest(j, i);
    if (!e) break;
    if (fm_journal_matches(e, f)) out[n++] = e->time_ms;
  }
  return n;
}

/* The JSON of the newest entry, parsed (caller deletes). */
static cJSON *newest_json(const fm_journal *j) {
  fm_buf b;
  fm_buf_init(&b);
  fm_journal_entry_json(&b, fm_journal_newest(j, 0));
  cJSON *v = cJSON_ParseWithLength(b.data, b.len);
  if (!v) printf("  not JSON: %.*s\n", (int)b.len, b.data);
  fm_buf_free(&b);
  return v;
}

TEST(the_ring_holds_its_size_and_counts_what_it_overwrote) {
  fm_journal j;
  fm_journal_init(&j, 100, 64);
  for (int i = 1; i <= 250; i++)
    add(&j, i, 200, NULL);
  CHECK_EQ_INT(j.n, 100);
  CHECK_EQ_U64(j.dropped, 150);
  CHECK_EQ_U64(j.seq, 250);
  CHECK(j.cap <= 100);
  /* Newest first: 250 down to 151. */
  CHECK_EQ_INT(fm_journal_newest(&j, 0)->time_ms, 250);
  CHECK_EQ_INT(fm_journal_newest(&j, 0)->seq, 250);
  CHECK_EQ_INT(fm_journal_newest(&j, 99)->time_ms, 151);
  CHECK(fm_journal_newest(&j, 100) == NULL);
  fm_journal_free(&j);
}

TEST(the_ring_grows_on_demand_and_keeps_order_across_growth) {
  fm_journal j;
  fm_journal_init(&j, 1000, 64);
  CHECK(j.ring == NULL); /* nothing allocated before the first entry */
  for (int i = 1; i <= 130; i++)
    add(&j, i, 200, NULL);
  CHECK_EQ_INT(j.cap, 256);
  CHECK_EQ_U64(j.dropped, 0);
  for (size_t i = 0; i < 130; i++)
    CHECK_EQ_INT(fm_journal_newest(&j, i)->time_ms, 130 - (int64_t)i);
  fm_journal_free(&j);
}

TEST(a_journal_of_size_zero_records_nothing) {
  fm_journal j;
  fm_journal_init(&j, 0, 4096);
  add(&j, 1, 200, NULL);
  CHECK_EQ_INT(j.n, 0);
  CHECK_EQ_U64(j.dropped, 0);
  CHECK(j.ring == NULL);
  fm_journal_free(&j);
}

TEST(filters_match_key_id_test_id_model_status_class_and_since) {
  fm_journal j;
  fm_journal_init(&j, 10, 64);
  add(&j, 10, 200, "a");
  add(&j, 20, 429, "b");
  add(&j, 30, 503, "a");
  add(&j, 40, 400, NULL);
  fm_journal_entry other = entry(50, 200, "b");
  other.model = "accounts/fireworks/models/glm-5p1";
  memcpy(other.key_id, "k-000000000002", 15);
  fm_journal_add(&j, &other, NULL, 0);
  add(&j, 60, 0, "a"); /* dropped without an answer */
  int64_t t[10];
  fm_journal_filter f = {0};
  CHECK_EQ_INT(times(&j, &f, t, 10), 6);

  f = (fm_journal_filter){.test_id = "a"};
  REQUIRE(times(&j, &f, t, 10) == 3);
  CHECK_EQ_INT(t[0], 60);
  CHECK_EQ_INT(t[1], 30);
  CHECK_EQ_INT(t[2], 10);

  f = (fm_journal_filter){.key_id = "k-000000000002"};
  REQUIRE(times(&j, &f, t, 10) == 1);
  CHECK_EQ_INT(t[0], 50);

  f = (fm_journal_filter){.model = "accounts/fireworks/models/glm-5p1"};
  CHECK_EQ_INT(times(&j, &f, t, 10), 1);

  f = (fm_journal_filter){.status = 429};
  REQUIRE(times(&j, &f, t, 10) == 1);
  CHECK_EQ_INT(t[0], 20);

  f = (fm_journal_filter){.status_class = 4};
  REQUIRE(times(&j, &f, t, 10) == 2);
  CHECK_EQ_INT(t[0], 40);
  CHECK_EQ_INT(t[1], 20);

  f = (fm_journal_filter){.status_class = 2};
  CHECK_EQ_INT(times(&j, &f, t, 10), 2); /* the dropped one (status 0) is in no class */

  f = (fm_journal_filter){.has_since = true, .since_ms = 30}; /* strictly after */
  REQUIRE(times(&j, &f, t, 10) == 3);
  CHECK_EQ_INT(t[2], 40);

  f = (fm_journal_filter){.test_id = "a", .status_class = 5, .has_since = true, .since_ms = 10};
  REQUIRE(times(&j, &f, t, 10) == 1);
  CHECK_EQ_INT(t[0], 30);
  fm_journal_free(&j);
}

TEST(the_list_answers_newest_first_up_to_its_limit) {
  fm_journal j;
  fm_journal_init(&j, 10, 64);
  for (int i = 1; i <= 5; i++)
    add(&j, i, 200, NULL);
  fm_buf b;
  fm_buf_init(&b);
  fm_journal_filter f = {.limit = 2};
  CHECK_EQ_INT(fm_journal_list_json(&b, &j, &f), 2);
  cJSON *list = cJSON_ParseWithLength(b.data, b.len);
  REQUIRE(cJSON_IsArray(list) && cJSON_GetArraySize(list) == 2);
  CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "time")->valuedouble, 5);
  CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "time")->valuedouble, 4);
  cJSON_Delete(list);
  fm_buf_free(&b);
  fm_journal_free(&j);
}

TEST(a_body_over_body_bytes_is_cut_and_marked_truncated) {
  fm_journal j;
  fm_journal_init(&j, 4, 16);
  const char *body = "{\"model\":\"kimi\",\"messages\":[]}";
  fm_journal_entry e = entry(1, 200, NULL);
  fm_journal_add(&j, &e, body, strlen(body));
  const fm_journal_entry *held = fm_journal_newest(&j, 0);
  CHECK_EQ_INT(held->body_len, 16);
  CHECK(held->body_truncated);
  CHECK(memcmp(held->body, body, 16) == 0);
  cJSON *v = newest_json(&j);
  REQUIRE(v != NULL);
  /* Cut, it is no longer JSON: given as its text. */
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(v, "body")), "{\"model\":\"kimi\",");
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(v, "body_truncated")));
  cJSON_Delete(v);

  /* A body that fits is given as JSON. */
  fm_journal_add(&j, &e, "{\"a\":[1,2]}", 11);
  v = newest_json(&j);
  REQUIRE(v != NULL);
  const cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(v, "body"), "a");
  CHECK(cJSON_IsArray(a) && cJSON_GetArraySize(a) == 2);
  CHECK(cJSON_IsFalse(cJSON_GetObjectItem(v, "body_truncated")));
  cJSON_Delete(v);
  fm_journal_free(&j);
}

TEST(a_cut_never_splits_a_utf8_character) {
  const char *body = "\"ab\xc3\xa9\xc3\xa9\""; /* "abéé": 8 bytes, é is 2 */
  size_t caps[] = {3, 4, 5, 6, 7}, kept[] = {3, 3, 5, 5, 7};
  for (size_t i = 0; i < 5; i++) {
    fm_journal j;
    fm_journal_init(&j, 4, caps[i]);
    fm_journal_entry e = entry(1, 200, NULL);
    fm_journal_add(&j, &e, body, strlen(body));
    CHECK_EQ_INT(fm_journal_newest(&j, 0)->body_len, kept[i]);
    CHECK(fm_journal_newest(&j, 0)->body_truncated);
    fm_journal_free(&j);
  }
}

TEST(a_body_that_is_not_utf8_or_not_json_is_given_as_clean_text) {
  fm_journal j;
  fm_journal_init(&j, 4, 64);
  fm_journal_entry e = entry(1, 400, NULL);
  fm_journal_add(&j, &e, "{\"x\":\"\xff\"}", 9);
  cJSON *v = newest_json(&j);
  REQUIRE(v != NULL);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(v, "body")), "{\"x\":\"?\"}");
  cJSON_Delete(v);
  fm_journal_add(&j, &e, "not json", 8);
  v = newest_json(&j);
  REQUIRE(v != NULL);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(v, "body")), "not json");
  cJSON_Delete(v);
  fm_journal_free(&j);
}

TEST(clearing_one_test_keeps_the_others_in_order) {
  fm_journal j;
  fm_journal_init(&j, 8, 64);
  /* 12 entries into 8 slots: the ring has wrapped, its oldest is not slot 0. */
  for (int i = 1; i <= 12; i++)
    add(&j, i, 200, i % 3 == 0 ? "x" : "y");
  REQUIRE(j.head != 0);
  CHECK_EQ_INT(fm_journal_clear(&j, "x"), 3); /* 6, 9, 12 */
  CHECK_EQ_INT(j.n, 5);
  CHECK_EQ_U64(j.dropped, 4); /* clearing is not dropping */
  int64_t want[] = {11, 10, 8, 7, 5};
  for (size_t i = 0; i < 5; i++)
    CHECK_EQ_INT(fm_journal_newest(&j, i)->time_ms, want[i]);
  /* It fills up again to its size, then wraps as before. */
  for (int i = 13; i <= 16; i++)
    add(&j, i, 200, "y");
  CHECK_EQ_INT(j.n, 8);
  CHECK_EQ_U64(j.dropped, 5);
  CHECK_EQ_INT(fm_journal_newest(&j, 0)->time_ms, 16);
  CHECK_EQ_INT(fm_journal_newest(&j, 7)->time_ms, 7);
  CHECK_EQ_INT(fm_journal_clear(&j, NULL), 8);
  CHECK_EQ_INT(j.n, 0);
  add(&j, 17, 200, NULL);
  CHECK_EQ_INT(fm_journal_newest(&j, 0)->time_ms, 17);
  CHECK_EQ_U64(fm_journal_newest(&j, 0)->seq, 17); /* seq goes on across clears */
  fm_journal_reset(&j);
  CHECK_EQ_U64(j.dropped, 0);
  CHECK_EQ_INT(j.n, 0);
  fm_journal_free(&j);
}

TEST(the_entry_json_says_null_for_what_is_not_known) {
  fm_journal j;
  fm_journal_init(&j, 4, 64);
  fm_journal_entry e = entry(7, 0, NULL);
  e.tier = -1;
  e.key_id[0] = '\0';
  e.error_code = "INVALID_ARGUMENT";
  e.error_message = "messages: is required";
  e.header_fault = true;
  fm_journal_add(&j, &e, NULL, 0);
  cJSON *v = newest_json(&j);
  REQUIRE(v != NULL);
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(v, "status")));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(v, "tier")));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(v, "key_id")));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(v, "test_id")));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(v, "queue_ms")));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(v, "ttft_ms")));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(v, "reply")));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(v, "body")));
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(v, "fault")), "header");
  const cJSON *err = cJSON_GetObjectItem(v, "error");
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(err, "code")), "INVALID_ARGUMENT");
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(err, "message")), "messages: is required");
  cJSON_Delete(v);

  e = entry(8, 200, "t");
  e.fault_id = 3;
  e.reply_id = 2;
  e.queue_ms = 12;
  e.ttft_ms = 450;
  e.prompt_tokens = 9;
  e.cached_tokens = 0;
  e.completion_tokens = 4;
  fm_journal_add(&j, &e, NULL, 0);
  v = newest_json(&j);
  REQUIRE(v != NULL);
  CHECK_EQ_INT(cJSON_GetObjectItem(v, "fault")->valuedouble, 3);
  CHECK_EQ_INT(cJSON_GetObjectItem(v, "reply")->valuedouble, 2);
  CHECK_EQ_INT(cJSON_GetObjectItem(v, "queue_ms")->valuedouble, 12);
  CHECK_EQ_INT(cJSON_GetObjectItem(v, "ttft_ms")->valuedouble, 450);
  CHECK_EQ_INT(cJSON_GetObjectItem(v, "completion_tokens")->valuedouble, 4);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(v, "tier")), "standard");
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(v, "error")));
  cJSON_Delete(v);
  fm_journal_free(&j);
}

TEST(long_strings_are_kept_within_their_caps) {
  fm_journal j;
  fm_journal_init(&j, 2, 8);
  char model[600], msg[3000];
  memset(model, 'm', sizeof(model) - 1);
  model[sizeof(model) - 1] = '\0';
  memset(msg, 'e', sizeof(msg) - 1);
  msg[sizeof(msg) - 1] = '\0';
  fm_journal_entry e = entry(1, 404, NULL);
  e.model = model;
  e.error_message = msg;
  fm_journal_add(&j, &e, NULL, 0);
  const fm_journal_entry *held = fm_journal_newest(&j, 0);
  CHECK_EQ_INT(strlen(held->model), FM_JOURNAL_MODEL_MAX);
  CHECK_EQ_INT(strlen(held->error_message), FM_JOURNAL_MESSAGE_MAX);
  fm_journal_free(&j);
}
