/* test_ratelimit.c — token buckets, debt, refill and adaptive limits. */
#include "check.h"
#include "ratelimit.h"

static fm_limits_cfg limits(void) {
  fm_limits_cfg c = {.start = {60, 1000, 500, 100},
                     .ceiling = {60, 6000, 3000, 600},
                     .growth_per_min = 0.5,
                     .shrink_per_min = 0.5,
                     .busy_fraction = 0.8};
  return c;
}

TEST(a_request_that_fits_is_allowed_and_charged_only_when_told) {
  fm_limits_cfg cfg = limits();
  fm_limiter l;
  fm_limiter_init(&l, &cfg, 0);
  fm_limit_verdict v = fm_limiter_check(&l, &cfg, 0, 400, 400);
  CHECK(v.ok);
  CHECK_NEAR(l.b[FM_LIMIT_PROMPT].level, 1000, 1e-9);
  fm_limiter_charge(&l, 400, 100);
  CHECK_NEAR(l.b[FM_LIMIT_PROMPT].level, 600, 1e-9);
  CHECK_NEAR(l.b[FM_LIMIT_UNCACHED].level, 400, 1e-9);
  CHECK_NEAR(l.b[FM_LIMIT_REQUESTS].level, 59, 1e-9);
}

TEST(an_empty_bucket_names_its_limit_and_the_wait_for_room) {
  fm_limits_cfg cfg = limits();
  fm_limiter l;
  fm_limiter_init(&l, &cfg, 0);
  fm_limiter_charge(&l, 900, 0);
  fm_limit_verdict v = fm_limiter_check(&l, &cfg, 0, 300, 0);
  CHECK(!v.ok);
  CHECK_EQ_INT(v.hit, FM_LIMIT_PROMPT);
  CHECK_NEAR(v.limit, 1000, 1e-9);
  CHECK_EQ_U64(v.retry_after_us, 200000);               /* 200 tokens at 1000/s */
  CHECK(fm_limiter_check(&l, &cfg, 200000, 300, 0).ok); /* refilled by then */
}

TEST(generated_tokens_run_into_debt_and_block_until_repaid) {
  fm_limits_cfg cfg = limits();
  fm_limiter l;
  fm_limiter_init(&l, &cfg, 0);
  fm_limiter_generated(&l, 150); /* 100 held: 50 in debt */
  fm_limit_verdict v = fm_limiter_check(&l, &cfg, 0, 1, 1);
  CHECK(!v.ok);
  CHECK_EQ_INT(v.hit, FM_LIMIT_GENERATED);
  CHECK_EQ_U64(v.retry_after_us, 500000); /* 50 tokens at 100/s */
  CHECK(fm_limiter_check(&l, &cfg, 500000, 1, 1).ok);
}

TEST(requests_per_minute_refill_at_a_sixtieth_per_second) {
  fm_limits_cfg cfg = limits();
  cfg.start[FM_LIMIT_REQUESTS] = cfg.ceiling[FM_LIMIT_REQUESTS] = 2;
  fm_limiter l;
  fm_limiter_init(&l, &cfg, 0);
  fm_limiter_charge(&l, 0, 0);
  fm_limiter_charge(&l, 0, 0);
  fm_limit_verdict v = fm_limiter_check(&l, &cfg, 0, 0, 0);
  CHECK(!v.ok);
  CHECK_EQ_INT(v.hit, FM_LIMIT_REQUESTS);
  CHECK_EQ_U64(v.retry_after_us, 30000000); /* one request at 2/min */
}

TEST(a_busy_limit_grows_toward_its_ceiling_and_an_idle_one_shrinks_back) {
  fm_limits_cfg cfg = limits();
  fm_limiter l;
  fm_limiter_init(&l, &cfg, 0);
  uint64_t now = 0;
  for (int s = 0; s < 120; s++) { /* two minutes near the limit */
    now += 1000000;
    fm_limiter_advance(&l, &cfg, now);
    fm_limiter_charge(&l, (uint32_t)(0.9 * l.b[FM_LIMIT_PROMPT].limit), 0);
  }
  CHECK(l.b[FM_LIMIT_PROMPT].limit > 2000); /* 1.5^2 = 2.25× start */
  CHECK(l.b[FM_LIMIT_PROMPT].limit <= 6000);
  double grown = l.b[FM_LIMIT_PROMPT].limit;
  for (int s = 0; s < 600; s++) { /* ten idle minutes */
    now += 1000000;
    fm_limiter_advance(&l, &cfg, now);
  }
  CHECK(l.b[FM_LIMIT_PROMPT].limit < grown);
  CHECK_NEAR(l.b[FM_LIMIT_PROMPT].limit, 1000, 1e-6);
}
