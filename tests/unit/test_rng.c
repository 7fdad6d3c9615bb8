/* test_rng.c — the seeded generator: repeatable, in range, exact at the ends. */
#include "check.h"
#include "rng.h"

#include <math.h>

#define DRAWS 100000

TEST(same_seed_gives_same_sequence) {
  fm_rng a, b;
  fm_rng_seed(&a, 42);
  fm_rng_seed(&b, 42);
  int differ = 0;
  for (int i = 0; i < 1000; i++)
    differ += fm_rng_next(&a) != fm_rng_next(&b);
  CHECK_EQ_INT(differ, 0);
}

TEST(different_seeds_give_different_sequences) {
  fm_rng a, b;
  fm_rng_seed(&a, 1);
  fm_rng_seed(&b, 2);
  int same = 0;
  for (int i = 0; i < 1000; i++)
    same += fm_rng_next(&a) == fm_rng_next(&b);
  CHECK_EQ_INT(same, 0);
}

TEST(seed_zero_gives_a_working_generator) {
  /* xoshiro's one bad state is all zeros; seeding through splitmix64 must avoid it. */
  fm_rng r;
  fm_rng_seed(&r, 0);
  int zeros = 0;
  for (int i = 0; i < 1000; i++)
    zeros += fm_rng_next(&r) == 0;
  CHECK_EQ_INT(zeros, 0);
}

/* True when r is where a generator freshly seeded with seed would be. */
static int untouched(fm_rng *r, uint64_t seed) {
  fm_rng fresh;
  fm_rng_seed(&fresh, seed);
  for (int i = 0; i < 100; i++)
    if (fm_rng_next(r) != fm_rng_next(&fresh)) return 0;
  return 1;
}

TEST(chance_zero_never_fires_and_takes_no_draw) {
  fm_rng r;
  fm_rng_seed(&r, 7);
  int fired = 0;
  for (int i = 0; i < DRAWS; i++)
    fired += fm_rng_chance(&r, 0.0);
  CHECK_EQ_INT(fired, 0);
  CHECK(untouched(&r, 7));
}

TEST(chance_below_zero_never_fires_and_takes_no_draw) {
  fm_rng r;
  fm_rng_seed(&r, 7);
  int fired = 0;
  for (int i = 0; i < DRAWS; i++)
    fired += fm_rng_chance(&r, -0.5);
  CHECK_EQ_INT(fired, 0);
  CHECK(untouched(&r, 7));
}

TEST(chance_one_always_fires_and_takes_no_draw) {
  fm_rng r;
  fm_rng_seed(&r, 7);
  int fired = 0;
  for (int i = 0; i < DRAWS; i++)
    fired += fm_rng_chance(&r, 1.0);
  CHECK_EQ_INT(fired, DRAWS);
  CHECK(untouched(&r, 7));
}

TEST(chance_above_one_always_fires_and_takes_no_draw) {
  fm_rng r;
  fm_rng_seed(&r, 7);
  int fired = 0;
  for (int i = 0; i < DRAWS; i++)
    fired += fm_rng_chance(&r, 2.0);
  CHECK_EQ_INT(fired, DRAWS);
  CHECK(untouched(&r, 7));
}

TEST(chance_nan_never_fires_and_takes_no_draw) {
  fm_rng r;
  fm_rng_seed(&r, 7);
  int fired = 0;
  for (int i = 0; i < DRAWS; i++)
    fired += fm_rng_chance(&r, NAN);
  CHECK_EQ_INT(fired, 0);
  CHECK(untouched(&r, 7));
}

TEST(chance_between_zero_and_one_takes_one_draw) {
  fm_rng r, shadow;
  fm_rng_seed(&r, 7);
  fm_rng_seed(&shadow, 7);
  fm_rng_chance(&r, 0.5);
  fm_rng_next(&shadow);
  CHECK_EQ_U64(fm_rng_next(&r), fm_rng_next(&shadow));
}

TEST(chance_half_fires_half_the_time) {
  fm_rng r;
  fm_rng_seed(&r, 2024);
  int fired = 0;
  for (int i = 0; i < DRAWS; i++)
    fired += fm_rng_chance(&r, 0.5);
  CHECK_NEAR((double)fired / DRAWS, 0.5, 0.01);
}

TEST(chance_tenth_fires_a_tenth_of_the_time) {
  fm_rng r;
  fm_rng_seed(&r, 2024);
  int fired = 0;
  for (int i = 0; i < DRAWS; i++)
    fired += fm_rng_chance(&r, 0.1);
  CHECK_NEAR((double)fired / DRAWS, 0.1, 0.005);
}

TEST(below_stays_in_range) {
  static const uint64_t ns[] = {1, 2, 3, 7, 10, 1000, 1ULL << 40, UINT64_MAX};
  fm_rng r;
  fm_rng_seed(&r, 99);
  for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
    int out = 0;
    for (int i = 0; i < 10000; i++)
      out += fm_rng_below(&r, ns[k]) >= ns[k];
    CHECK_EQ_INT(out, 0);
  }
}

TEST(below_one_is_always_zero) {
  fm_rng r;
  fm_rng_seed(&r, 99);
  int nonzero = 0;
  for (int i = 0; i < 1000; i++)
    nonzero += fm_rng_below(&r, 1) != 0;
  CHECK_EQ_INT(nonzero, 0);
}

TEST(below_reaches_every_value) {
  fm_rng r;
  fm_rng_seed(&r, 99);
  int seen[7] = {0};
  for (int i = 0; i < 7000; i++)
    seen[fm_rng_below(&r, 7)]++;
  for (int v = 0; v < 7; v++)
    CHECK_NEAR(seen[v], 1000, 150);
}

TEST(unit_is_in_zero_to_one_half_open) {
  fm_rng r;
  fm_rng_seed(&r, 5);
  int out = 0;
  double sum = 0, lo = 1, hi = 0;
  for (int i = 0; i < DRAWS; i++) {
    double u = fm_rng_unit(&r);
    out += !(u >= 0.0 && u < 1.0);
    sum += u;
    if (u < lo) lo = u;
    if (u > hi) hi = u;
  }
  CHECK_EQ_INT(out, 0);
  CHECK_NEAR(sum / DRAWS, 0.5, 0.01);
  CHECK(lo < 0.001);
  CHECK(hi > 0.999);
}

TEST(hash_is_stable_and_sensitive_to_every_byte) {
  CHECK_EQ_U64(fm_hash64("abc", 3, 0), fm_hash64("abc", 3, 0));
  CHECK(fm_hash64("abc", 3, 0) != fm_hash64("abd", 3, 0));
  CHECK(fm_hash64("abc", 3, 0) != fm_hash64("abc", 3, 1));
  /* FNV-1a of the empty string is its offset basis. */
  CHECK_EQ_U64(fm_hash64("", 0, 0), 0xcbf29ce484222325ULL);
}
