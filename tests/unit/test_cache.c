/* test_cache.c — replica prompt caches: longest cached prefix, salts, LRU bound. */
#include "cache.h"
#include "check.h"

static void prompt(fm_prefix *p, const char *text, size_t repeat) {
  fm_prefix_init(p);
  for (size_t i = 0; i < repeat; i++)
    fm_prefix_add(p, text, strlen(text));
}

TEST(a_prompt_is_cut_into_64_byte_blocks_and_the_tail_is_not_a_block) {
  fm_prefix p;
  prompt(&p, "0123456789", 20); /* 200 bytes: 3 blocks and 8 bytes over */
  CHECK_EQ_INT(p.n, 3);
  CHECK_EQ_INT(p.fill, 8);
  fm_prefix_free(&p);
}

TEST(the_same_prompt_hits_every_block_the_second_time) {
  fm_cache c;
  fm_cache_init(&c, 1000);
  fm_prefix p;
  prompt(&p, "abcdefgh", 40); /* 320 bytes = 5 blocks */
  CHECK_EQ_INT(fm_cache_lookup(&c, &p, 1), 0);
  CHECK_EQ_INT(fm_cache_insert(&c, &p, 1), 0);
  CHECK_EQ_INT(fm_cache_lookup(&c, &p, 1), 5);
  CHECK_EQ_INT(fm_cache_lookup(&c, &p, 2), 0); /* another account or isolation key */
  fm_prefix_free(&p);
  fm_cache_free(&c);
}

TEST(a_longer_prompt_hits_the_shared_prefix_only) {
  fm_cache c;
  fm_cache_init(&c, 1000);
  fm_prefix first, second;
  prompt(&first, "turn one text ", 10); /* 140 bytes: 2 blocks */
  fm_cache_insert(&c, &first, 7);
  prompt(&second, "turn one text ", 10);
  fm_prefix_add(&second, "and the reply, then turn two, which is long enough to add blocks....",
                68);
  CHECK_EQ_INT(second.n, 3);
  CHECK_EQ_INT(fm_cache_lookup(&c, &second, 7), 2);
  fm_prefix differs;
  prompt(&differs, "TURN one text ", 10);
  CHECK_EQ_INT(fm_cache_lookup(&c, &differs, 7), 0);
  fm_prefix_free(&first);
  fm_prefix_free(&second);
  fm_prefix_free(&differs);
  fm_cache_free(&c);
}

TEST(the_cache_keeps_at_most_its_capacity_and_evicts_the_least_recent) {
  fm_cache c;
  fm_cache_init(&c, 300);
  fm_prefix p[8];
  char text[32];
  for (int i = 0; i < 8; i++) {
    snprintf(text, sizeof(text), "prompt number %d ", i);
    prompt(&p[i], text, 200); /* 100+ blocks each */
    CHECK_EQ_INT(fm_cache_insert(&c, &p[i], 0), 0);
    CHECK(c.n <= 300);
  }
  CHECK_EQ_INT(c.n, 300);
  CHECK_EQ_INT(fm_cache_lookup(&c, &p[0], 0), 0);           /* evicted long ago */
  CHECK_EQ_INT(fm_cache_lookup(&c, &p[7], 0), (int)p[7].n); /* the newest stays whole */
  for (int i = 0; i < 8; i++)
    fm_prefix_free(&p[i]);
  fm_cache_free(&c);
}

TEST(a_cache_of_capacity_zero_never_hits) {
  fm_cache c;
  fm_cache_init(&c, 0);
  fm_prefix p;
  prompt(&p, "abcdefgh", 40);
  fm_cache_insert(&c, &p, 1);
  CHECK_EQ_INT(fm_cache_lookup(&c, &p, 1), 0);
  fm_prefix_free(&p);
  fm_cache_free(&c);
}
