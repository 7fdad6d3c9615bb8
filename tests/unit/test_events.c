/* test_events.c — the live feed's request counts and summaries: windows
 * count what finished since the last one, the ring lists at most a batch,
 * nothing is kept while nobody watches, and its JSON. */
#include "check.h"
#include "events.h"

#include <cjson/cJSON.h>

static fm_event_req req(int path, int status) {
  fm_event_req r = {.route = "chat/completions",
                    .model = "m",
                    .path = path,
                    .status = status,
                    .queue_ms = -1,
                    .ttft_ms = 12};
  memcpy(r.key_id, "k-000000000001", 15);
  return r;
}

static cJSON *window(fm_events *e, fm_events_cursor *c) {
  fm_buf b;
  fm_buf_init(&b);
  fm_events_window(e, c, 1.5, 250, &b);
  cJSON *v = cJSON_ParseWithLength(b.data, b.len);
  fm_buf_free(&b);
  return v;
}

static int count(const cJSON *w, const char *path, const char *outcome) {
  return (int)cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(w, "counts"), path),
                                  outcome)
      ->valuedouble;
}

TEST(outcomes_are_2xx_429_503_and_other) {
  CHECK_EQ_INT(fm_events_outcome(200), 0);
  CHECK_EQ_INT(fm_events_outcome(429), 1);
  CHECK_EQ_INT(fm_events_outcome(503), 2);
  CHECK_EQ_INT(fm_events_outcome(529), 2);
  CHECK_EQ_INT(fm_events_outcome(400), 3);
  CHECK_EQ_INT(fm_events_outcome(0), 3);
}

TEST(a_window_counts_what_finished_since_the_last_one) {
  static fm_events e;
  fm_events_init(&e);
  fm_event_req r = req(FM_PATH_STANDARD, 200);
  fm_events_add(&e, &r, NULL); /* before the subscriber: not in its windows */
  e.subscribers = 1;
  fm_events_cursor c;
  fm_events_cursor_init(&e, &c);
  fm_event_req a = req(FM_PATH_STANDARD, 503), b = req(FM_PATH_PRIORITY, 200),
               d = req(FM_PATH_STANDARD, 429), x = req(-1, 400);
  fm_events_add(&e, &a, "t1");
  fm_events_add(&e, &a, NULL);
  fm_events_add(&e, &b, NULL);
  fm_events_add(&e, &d, NULL);
  fm_events_add(&e, &x, NULL); /* refused before it was read: listed, not counted */
  cJSON *w = window(&e, &c);
  REQUIRE(w != NULL);
  CHECK_EQ_INT(count(w, "standard", "503"), 2);
  CHECK_EQ_INT(count(w, "standard", "429"), 1);
  CHECK_EQ_INT(count(w, "standard", "200"), 0);
  CHECK_EQ_INT(count(w, "priority", "200"), 1);
  const cJSON *list = cJSON_GetObjectItem(w, "requests");
  CHECK_EQ_INT(cJSON_GetArraySize(list), 5);
  const cJSON *first = cJSON_GetArrayItem(list, 0);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "test_id")), "t1");
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "tier")), "standard");
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(first, "queue_ms")));
  CHECK_EQ_INT(cJSON_GetObjectItem(first, "ttft_ms")->valuedouble, 12);
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 4), "tier")));
  CHECK_EQ_INT(cJSON_GetObjectItem(w, "omitted")->valuedouble, 0);
  cJSON_Delete(w);
  w = window(&e, &c); /* nothing since */
  CHECK_EQ_INT(count(w, "standard", "503"), 0);
  CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(w, "requests")), 0);
  cJSON_Delete(w);
}

TEST(a_flood_lists_the_newest_batch_and_counts_the_rest) {
  static fm_events e;
  fm_events_init(&e);
  e.subscribers = 1;
  fm_events_cursor c;
  fm_events_cursor_init(&e, &c);
  for (int i = 0; i < 3 * FM_EVENTS_RING; i++) {
    fm_event_req r = req(FM_PATH_STANDARD, 200);
    r.prompt_tokens = (uint32_t)i;
    fm_events_add(&e, &r, NULL);
  }
  cJSON *w = window(&e, &c);
  CHECK_EQ_INT(count(w, "standard", "200"), 3 * FM_EVENTS_RING);
  const cJSON *list = cJSON_GetObjectItem(w, "requests");
  CHECK_EQ_INT(cJSON_GetArraySize(list), FM_EVENTS_BATCH);
  CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(list, FM_EVENTS_BATCH - 1), "prompt_tokens")
                   ->valuedouble,
               3 * FM_EVENTS_RING - 1); /* the newest last */
  CHECK_EQ_INT(cJSON_GetObjectItem(w, "omitted")->valuedouble,
               3 * FM_EVENTS_RING - FM_EVENTS_BATCH);
  cJSON_Delete(w);
}

TEST(nothing_is_kept_while_nobody_watches) {
  static fm_events e;
  fm_events_init(&e);
  fm_event_req r = req(FM_PATH_PRIORITY, 200);
  for (int i = 0; i < 10; i++)
    fm_events_add(&e, &r, NULL);
  CHECK_EQ_U64(e.seq, 0);
  CHECK_EQ_U64(e.counts[FM_PATH_PRIORITY][0], 10);
}
