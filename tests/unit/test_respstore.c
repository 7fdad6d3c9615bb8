/* test_respstore.c — the Responses API store: its count and byte bounds,
 * least-recently-used eviction, expiry in (manual) simulated time, owners,
 * replacement, deletion and list pages. */
#include "check.h"
#include "respstore.h"

#include <cjson/cJSON.h>
#include <stdio.h>

#define HOUR_US 3600000000ULL

static bool put(fm_resp_store *s, const char *id, const char *owner, uint64_t now) {
  char body[64];
  snprintf(body, sizeof(body), "{\"id\":\"%s\"}", id);
  return fm_resp_store_put(s, id, owner, now, body, strlen(body), "[]", 2);
}

static bool has(fm_resp_store *s, const char *id, const char *owner, uint64_t now) {
  return fm_resp_store_get(s, id, owner, now, NULL, NULL);
}

/* The ids of a list page, comma-joined, into out; the page's has_more. */
static bool page(fm_resp_store *s, const char *owner, int limit, bool asc, const char *after,
                 const char *before, char *out, size_t cap, bool *more) {
  fm_buf b;
  fm_buf_init(&b);
  bool ok = fm_resp_store_list(s, owner, 0, limit, asc, after, before, &b);
  out[0] = 0;
  if (ok) {
    cJSON *v = cJSON_ParseWithLength(b.data, b.len);
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(v, "data")) {
      n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "",
                            cJSON_GetStringValue(cJSON_GetObjectItem(it, "id")));
    }
    *more = cJSON_IsTrue(cJSON_GetObjectItem(v, "has_more"));
    cJSON_Delete(v);
  }
  fm_buf_free(&b);
  return ok;
}

TEST(the_count_bound_evicts_the_least_recently_used) {
  fm_resp_store s;
  REQUIRE(fm_resp_store_init(&s, 3, 1 << 20, 24 * HOUR_US) == 0);
  CHECK(put(&s, "a", "k", 0) && put(&s, "b", "k", 0) && put(&s, "c", "k", 0));
  CHECK(has(&s, "a", "k", 0)); /* a is now the most recently used */
  CHECK(put(&s, "d", "k", 0));
  CHECK(has(&s, "a", "k", 0));
  CHECK(!has(&s, "b", "k", 0));
  CHECK(has(&s, "c", "k", 0) && has(&s, "d", "k", 0));
  CHECK_EQ_U64(s.count, 3);
  CHECK_EQ_U64(s.evicted, 1);
  fm_resp_store_free(&s);
}

TEST(the_byte_bound_holds_and_an_oversized_response_is_refused) {
  fm_resp_store s;
  REQUIRE(fm_resp_store_init(&s, 1000, 2048, 24 * HOUR_US) == 0);
  char big[800];
  memset(big, 'x', sizeof(big));
  int stored = 0;
  for (int i = 0; i < 10; i++) {
    char id[8];
    snprintf(id, sizeof(id), "r%d", i);
    stored += fm_resp_store_put(&s, id, "k", 0, big, sizeof(big), "[]", 2);
    CHECK(s.bytes <= 2048);
  }
  CHECK_EQ_INT(stored, 10);
  CHECK_EQ_U64(s.count, 2); /* two of ~0.9 KiB (with their overhead) fit in 2 KiB */
  CHECK(has(&s, "r9", "k", 0) && has(&s, "r8", "k", 0) && !has(&s, "r7", "k", 0));
  char huge[4096];
  memset(huge, 'y', sizeof(huge));
  CHECK(!fm_resp_store_put(&s, "h", "k", 0, huge, sizeof(huge), "[]", 2));
  CHECK_EQ_U64(s.too_large, 1);
  CHECK_EQ_U64(s.count, 2); /* nothing was evicted for it */
  fm_resp_store_free(&s);
}

TEST(responses_expire_after_ttl_in_simulated_time) {
  fm_resp_store s;
  REQUIRE(fm_resp_store_init(&s, 10, 1 << 20, HOUR_US) == 0);
  CHECK(put(&s, "old", "k", 0));
  CHECK(put(&s, "new", "k", HOUR_US / 2));
  CHECK(has(&s, "old", "k", HOUR_US - 1));
  CHECK(!has(&s, "old", "k", HOUR_US));
  CHECK(has(&s, "new", "k", HOUR_US));
  CHECK(!has(&s, "new", "k", HOUR_US / 2 + HOUR_US));
  CHECK_EQ_U64(s.expired, 2);
  CHECK_EQ_U64(s.count, 0);
  fm_resp_store_free(&s);
}

TEST(owners_replacement_deletion_and_the_texts) {
  fm_resp_store s;
  REQUIRE(fm_resp_store_init(&s, 10, 1 << 20, HOUR_US) == 0);
  CHECK(fm_resp_store_put(&s, "r", "k1", 0, "{\"v\":1}", 7, "[1]", 3));
  CHECK(!has(&s, "r", "k2", 0));
  CHECK(!fm_resp_store_delete(&s, "r", "k2", 0));
  CHECK(fm_resp_store_put(&s, "r", "k1", 0, "{\"v\":2}", 7, "[2]", 3));
  CHECK_EQ_U64(s.count, 1);
  fm_buf resp, items;
  fm_buf_init(&resp);
  fm_buf_init(&items);
  CHECK(fm_resp_store_get(&s, "r", "k1", 0, &resp, &items));
  fm_buf_putc(&resp, 0);
  fm_buf_putc(&items, 0);
  CHECK_STR(resp.data, "{\"v\":2}");
  CHECK_STR(items.data, "[2]");
  fm_buf_free(&resp);
  fm_buf_free(&items);
  CHECK(fm_resp_store_delete(&s, "r", "k1", 0));
  CHECK(!has(&s, "r", "k1", 0));
  CHECK_EQ_U64(s.count, 0);
  CHECK_EQ_U64(s.bytes, 0);
  fm_resp_store_free(&s);
}

TEST(a_store_of_size_zero_keeps_nothing) {
  fm_resp_store s;
  REQUIRE(fm_resp_store_init(&s, 0, 1 << 20, HOUR_US) == 0);
  CHECK(!put(&s, "a", "k", 0));
  CHECK(!has(&s, "a", "k", 0));
  fm_resp_store_free(&s);
}

TEST(list_pages_newest_first_with_cursors_and_owners) {
  fm_resp_store s;
  REQUIRE(fm_resp_store_init(&s, 100, 1 << 20, HOUR_US) == 0);
  const char *ids[] = {"r1", "x1", "r2", "r3", "x2", "r4", "r5"};
  for (size_t i = 0; i < 7; i++)
    CHECK(put(&s, ids[i], ids[i][0] == 'r' ? "k" : "other", 0));
  char out[128];
  bool more = false;
  CHECK(page(&s, "k", 2, false, NULL, NULL, out, sizeof(out), &more));
  CHECK_STR(out, "r5,r4");
  CHECK(more);
  CHECK(page(&s, "k", 2, false, "r4", NULL, out, sizeof(out), &more));
  CHECK_STR(out, "r3,r2");
  CHECK(more);
  CHECK(page(&s, "k", 2, false, "r2", NULL, out, sizeof(out), &more));
  CHECK_STR(out, "r1");
  CHECK(!more);
  CHECK(page(&s, "k", 10, true, NULL, NULL, out, sizeof(out), &more));
  CHECK_STR(out, "r1,r2,r3,r4,r5");
  CHECK(page(&s, "k", 2, false, NULL, "r2", out, sizeof(out), &more));
  CHECK_STR(out, "r4,r3"); /* the two just before r2, in the list's order */
  CHECK(page(&s, "k", 10, false, "r5", "r2", out, sizeof(out), &more));
  CHECK_STR(out, "r4,r3");
  CHECK(!page(&s, "k", 2, false, "x1", NULL, out, sizeof(out), &more)); /* another owner's */
  CHECK(!page(&s, "k", 2, false, "nope", NULL, out, sizeof(out), &more));
  CHECK(page(&s, "nobody", 2, false, NULL, NULL, out, sizeof(out), &more));
  CHECK_STR(out, "");
  fm_resp_store_free(&s);
}
