/* test_fleet_timing.c — how long the fleet says the first token and each gap take. */
#include "check.h"
#include "fleet.h"

/* A fleet on the default config with patch on top, driven by a manual clock. */
typedef struct scene {
  uint64_t now;
  fm_clock clock;
  fm_config cfg;
  fm_fleet fleet;
  int kimi;
} scene;

static int scene_open(scene *s, const char *patch, bool instant) {
  fm_config_errors errs = {0};
  memset(s, 0, sizeof(*s));
  s->clock = (fm_clock){fm_clock_manual_now, &s->now};
  int rc = fm_config_load_text(&s->cfg, patch, "test", &errs);
  for (size_t i = 0; i < errs.n; i++)
    printf("  config error: %s\n", errs.items[i]);
  fm_config_errors_free(&errs);
  if (rc != 0) return -1;
  if (fm_fleet_init(&s->fleet, &s->cfg, &s->clock, 1, instant) != 0) return -1;
  s->kimi = fm_config_find_pool(&s->cfg, "kimi-k2p6");
  return s->kimi >= 0 ? 0 : -1;
}

static void scene_close(scene *s) {
  fm_fleet_free(&s->fleet);
  fm_config_free(&s->cfg);
}

#define STEADY "\"jitter\": 0, \"slowdown_at_full\": 0"

TEST(first_token_is_ttft_plus_uncached_prefill) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\": {\"kimi-k2p6\": {\"ttft_ms\": 300, \"prefill_tps\": 1000}}}",
                     false) == 0);
  CHECK_EQ_U64(fm_fleet_first_token_us(&s.fleet, s.kimi, 500), 800000);
  CHECK_EQ_U64(fm_fleet_first_token_us(&s.fleet, s.kimi, 0), 300000);
  CHECK_EQ_U64(fm_fleet_first_token_us(&s.fleet, s.kimi, 1), 301000);
  scene_close(&s);
}

TEST(first_token_on_the_default_kimi_pool) {
  scene s;
  REQUIRE(scene_open(&s, NULL, false) == 0);
  /* 400 ms + 8000 tokens at 8000 tokens/s. */
  CHECK_EQ_U64(fm_fleet_first_token_us(&s.fleet, s.kimi, 8000), 1400000);
  scene_close(&s);
}

TEST(first_token_does_not_depend_on_the_clock) {
  scene s;
  REQUIRE(scene_open(&s, NULL, false) == 0);
  uint64_t at_zero = fm_fleet_first_token_us(&s.fleet, s.kimi, 2000);
  s.now = 3600ULL * 1000000;
  CHECK_EQ_U64(fm_fleet_first_token_us(&s.fleet, s.kimi, 2000), at_zero);
  scene_close(&s);
}

TEST(token_gap_without_jitter_or_load_is_one_over_decode_rate) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\": {\"kimi-k2p6\": {\"decode_tps\": 50, " STEADY "}}}", false) ==
          0);
  fm_rng r;
  fm_rng_seed(&r, 3);
  for (int i = 0; i < 100; i++)
    CHECK_EQ_U64(fm_fleet_token_gap_us(&s.fleet, s.kimi, &r), 20000);
  scene_close(&s);
}

TEST(token_gap_rounds_to_the_nearest_microsecond) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\": {\"kimi-k2p6\": {" STEADY "}}}", false) == 0);
  fm_rng r;
  fm_rng_seed(&r, 3);
  CHECK_EQ_U64(fm_fleet_token_gap_us(&s.fleet, s.kimi, &r), 22222); /* 1e6 / 45 = 22222.2 */
  scene_close(&s);
}

TEST(instant_timing_makes_every_delay_zero) {
  scene s;
  REQUIRE(scene_open(&s, NULL, true) == 0);
  fm_rng r;
  fm_rng_seed(&r, 3);
  CHECK_EQ_U64(fm_fleet_first_token_us(&s.fleet, s.kimi, 100000), 0);
  CHECK_EQ_U64(fm_fleet_token_gap_us(&s.fleet, s.kimi, &r), 0);
  scene_close(&s);
}

TEST(full_tenant_load_slows_gaps_by_slowdown_at_full) {
  scene s;
  REQUIRE(scene_open(&s,
                     "{\"pools\": {\"kimi-k2p6\": {\"decode_tps\": 50, \"jitter\": 0,"
                     " \"slowdown_at_full\": 0.4, \"tenant_load\": 1.0}}}",
                     false) == 0);
  fm_rng r;
  fm_rng_seed(&r, 3);
  uint64_t gap = fm_fleet_token_gap_us(&s.fleet, s.kimi, &r);
  CHECK_NEAR(gap, 1.4 * 20000, 1.4 * 20000 * 0.005);
  CHECK_EQ_U64(gap, 28000);
  scene_close(&s);
}

TEST(half_tenant_load_slows_gaps_by_half_as_much) {
  scene s;
  REQUIRE(scene_open(&s,
                     "{\"pools\": {\"kimi-k2p6\": {\"decode_tps\": 50, \"jitter\": 0,"
                     " \"slowdown_at_full\": 0.4, \"tenant_load\": 0.5}}}",
                     false) == 0);
  fm_rng r;
  fm_rng_seed(&r, 3);
  CHECK_EQ_U64(fm_fleet_token_gap_us(&s.fleet, s.kimi, &r), 24000);
  scene_close(&s);
}

TEST(jitter_keeps_gaps_within_its_band_around_the_base) {
  scene s;
  REQUIRE(scene_open(&s,
                     "{\"pools\": {\"kimi-k2p6\": {\"decode_tps\": 50, \"jitter\": 0.05,"
                     " \"slowdown_at_full\": 0}}}",
                     false) == 0);
  fm_rng r;
  fm_rng_seed(&r, 3);
  uint64_t lo = UINT64_MAX, hi = 0;
  double sum = 0;
  for (int i = 0; i < 10000; i++) {
    uint64_t g = fm_fleet_token_gap_us(&s.fleet, s.kimi, &r);
    if (g < lo) lo = g;
    if (g > hi) hi = g;
    sum += (double)g;
  }
  CHECK(lo >= 19000);
  CHECK(hi <= 21000);
  CHECK(lo < 19100 && hi > 20900); /* the whole band is used */
  CHECK_NEAR(sum / 10000, 20000, 40);
  scene_close(&s);
}

TEST(jittered_gaps_repeat_for_the_same_rng_seed) {
  scene s;
  REQUIRE(scene_open(&s, NULL, false) == 0);
  fm_rng a, b;
  fm_rng_seed(&a, 77);
  fm_rng_seed(&b, 77);
  for (int i = 0; i < 100; i++)
    CHECK_EQ_U64(fm_fleet_token_gap_us(&s.fleet, s.kimi, &a),
                 fm_fleet_token_gap_us(&s.fleet, s.kimi, &b));
  scene_close(&s);
}

TEST(each_pool_uses_its_own_speed) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pool_defaults\": {" STEADY "}}", false) == 0);
  int oss = fm_config_find_pool(&s.cfg, "gpt-oss-20b");
  REQUIRE(oss >= 0);
  fm_rng r;
  fm_rng_seed(&r, 3);
  CHECK_EQ_U64(fm_fleet_token_gap_us(&s.fleet, oss, &r), 6667); /* 1e6 / 150 */
  /* 150 ms + 3000 tokens at 30000 tokens/s. */
  CHECK_EQ_U64(fm_fleet_first_token_us(&s.fleet, oss, 3000), 250000);
  scene_close(&s);
}
