/* test_fleet_admission.c — who runs, who waits and who is shed (SPEC §4). */
#include "check.h"
#include "fleet.h"

typedef struct scene {
  uint64_t now;
  fm_clock clock;
  fm_config cfg;
  fm_fleet fleet;
  int kimi;
  int decided_ok, decided_shed;
} scene;

static scene *current; /* the decided callback reports into the running scene */

static void on_decided(fm_ticket *t, fm_admit outcome) {
  (void)t;
  if (outcome == FM_ADMIT_OK)
    current->decided_ok++;
  else
    current->decided_shed++;
}

static int scene_open(scene *s, const char *patch, uint64_t seed, bool instant) {
  fm_config_errors errs = {0};
  memset(s, 0, sizeof(*s));
  s->clock = (fm_clock){fm_clock_manual_now, &s->now};
  int rc = fm_config_load_text(&s->cfg, patch, "test", &errs);
  for (size_t i = 0; i < errs.n; i++)
    printf("  config error: %s\n", errs.items[i]);
  fm_config_errors_free(&errs);
  if (rc != 0 || fm_fleet_init(&s->fleet, &s->cfg, &s->clock, seed, instant) != 0) return -1;
  s->kimi = fm_config_find_pool(&s->cfg, "kimi-k2p6");
  current = s;
  return 0;
}

static void scene_close(scene *s) {
  fm_fleet_free(&s->fleet);
  fm_config_free(&s->cfg);
}

static fm_admit admit(scene *s, fm_ticket *t, fm_tier tier) {
  memset(t, 0, sizeof(*t));
  t->decided = on_decided;
  return fm_fleet_admit(&s->fleet, t, s->kimi, tier);
}

TEST(standard_is_shed_before_priority_at_tenant_load_1_2) {
  scene s;
  REQUIRE(scene_open(&s,
                     "{\"pools\":{\"kimi-k2p6\":{\"tenant_load\":1.2,"
                     "\"tenant_priority_share\":0.2}}}",
                     1, true) == 0);
  int std_shed = 0, pri_ok = 0;
  for (int i = 0; i < 1000; i++) {
    fm_ticket t;
    if (admit(&s, &t, FM_TIER_STANDARD) == FM_ADMIT_SHED) std_shed++;
    if (admit(&s, &t, FM_TIER_PRIORITY) == FM_ADMIT_OK) {
      pri_ok++;
      fm_fleet_release(&s.fleet, &t);
    }
  }
  CHECK_EQ_INT(std_shed, 1000);
  CHECK_EQ_INT(pri_ok, 1000);
  scene_close(&s);
}

TEST(standard_sheds_half_where_its_curve_gives_one_half) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\":{\"kimi-k2p6\":{\"tenant_load\":0.925}}}", 7, true) == 0);
  CHECK_NEAR(fm_pool_shed_probability(&s.fleet.pools[s.kimi], FM_TIER_STANDARD), 0.5, 1e-12);
  int shed = 0;
  for (int i = 0; i < 10000; i++) {
    fm_ticket t;
    if (admit(&s, &t, FM_TIER_STANDARD) == FM_ADMIT_SHED)
      shed++;
    else
      fm_fleet_release(&s.fleet, &t);
  }
  CHECK(shed > 4800 && shed < 5200);
  scene_close(&s);
}

TEST(the_same_seed_makes_the_same_decisions) {
  char a[400], b[400], c[400];
  const char *patch = "{\"pools\":{\"kimi-k2p6\":{\"tenant_load\":0.925}}}";
  uint64_t seeds[3] = {11, 11, 12};
  char *out[3] = {a, b, c};
  for (int k = 0; k < 3; k++) {
    scene s;
    REQUIRE(scene_open(&s, patch, seeds[k], true) == 0);
    for (int i = 0; i < 399; i++) {
      fm_ticket t;
      bool ok = admit(&s, &t, FM_TIER_STANDARD) == FM_ADMIT_OK;
      out[k][i] = ok ? '1' : '0';
      if (ok) fm_fleet_release(&s.fleet, &t);
    }
    out[k][399] = '\0';
    scene_close(&s);
  }
  CHECK_STR(a, b);
  CHECK(strcmp(a, c) != 0);
}

TEST(probabilities_are_exact_at_zero_and_one_and_take_no_draw) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\":{\"kimi-k2p6\":{\"tenant_load\":0.5}}}", 3, true) == 0);
  fm_ticket t;
  CHECK_EQ_INT(admit(&s, &t, FM_TIER_STANDARD), FM_ADMIT_OK); /* p = 0 */
  fm_fleet_release(&s.fleet, &t);
  CHECK_EQ_INT(admit(&s, &t, FM_TIER_BACKGROUND), FM_ADMIT_OK); /* 0.5 < 0.6: p = 0 */
  fm_fleet_release(&s.fleet, &t);
  uint64_t draws = s.fleet.draws;
  fm_rng before = s.fleet.rng;
  fm_pool_cfg full = s.fleet.pools[s.kimi].cfg;
  full.tenant_load = 1.0; /* Standard p = 1: shed without consuming the generator */
  fm_fleet_set_pool(&s.fleet, s.kimi, &full);
  CHECK_EQ_INT(admit(&s, &t, FM_TIER_STANDARD), FM_ADMIT_SHED);
  CHECK_EQ_U64(s.fleet.draws, draws + 1);
  CHECK(memcmp(&before, &s.fleet.rng, sizeof(before)) == 0);
  scene_close(&s);
}

TEST(four_slots_run_four_and_the_fifth_waits_then_runs_when_one_ends) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\":{\"kimi-k2p6\":{\"slots\":4}}}", 1, false) == 0);
  fm_ticket run[4], wait;
  for (int i = 0; i < 4; i++)
    CHECK_EQ_INT(admit(&s, &run[i], FM_TIER_STANDARD), FM_ADMIT_OK);
  CHECK_EQ_INT(admit(&s, &wait, FM_TIER_STANDARD), FM_ADMIT_QUEUED);
  CHECK_EQ_INT(s.fleet.pools[s.kimi].queued[FM_TIER_STANDARD], 1);
  s.now += 100000; /* 100 ms: within the 250 ms Standard timeout */
  fm_fleet_release(&s.fleet, &run[0]);
  CHECK_EQ_INT(s.decided_ok, 1);
  CHECK_EQ_INT(wait.state, FM_TICKET_RUNNING);
  CHECK_EQ_INT(fm_pool_running(&s.fleet.pools[s.kimi]), 4);
  CHECK_EQ_U64(s.fleet.queued_total, 0); /* admitted from the queue: nothing waits */
  CHECK_EQ_U64(fm_fleet_next_deadline(&s.fleet), UINT64_MAX);
  for (int i = 1; i < 4; i++)
    fm_fleet_release(&s.fleet, &run[i]);
  fm_fleet_release(&s.fleet, &wait);
  CHECK_EQ_INT(fm_pool_running(&s.fleet.pools[s.kimi]), 0);
  scene_close(&s);
}

TEST(a_queued_request_is_shed_when_its_queue_timeout_ends) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\":{\"kimi-k2p6\":{\"slots\":1}}}", 1, false) == 0);
  fm_ticket run, wait;
  CHECK_EQ_INT(admit(&s, &run, FM_TIER_STANDARD), FM_ADMIT_OK);
  CHECK_EQ_INT(admit(&s, &wait, FM_TIER_STANDARD), FM_ADMIT_QUEUED);
  CHECK_EQ_U64(fm_fleet_next_deadline(&s.fleet), 250000);
  s.now = 249999;
  fm_fleet_expire(&s.fleet);
  CHECK_EQ_INT(s.decided_shed, 0);
  s.now = 250000;
  fm_fleet_expire(&s.fleet);
  CHECK_EQ_INT(s.decided_shed, 1);
  CHECK_EQ_INT(s.fleet.pools[s.kimi].queued[FM_TIER_STANDARD], 0);
  CHECK_EQ_U64(fm_fleet_next_deadline(&s.fleet), UINT64_MAX);
  fm_fleet_release(&s.fleet, &run);
  scene_close(&s);
}

TEST(a_queued_priority_request_is_served_before_a_queued_standard_one) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\":{\"kimi-k2p6\":{\"slots\":2}}}", 1, false) == 0);
  fm_ticket a, b, std, pri;
  CHECK_EQ_INT(admit(&s, &a, FM_TIER_STANDARD), FM_ADMIT_OK);
  CHECK_EQ_INT(admit(&s, &b, FM_TIER_STANDARD), FM_ADMIT_OK);
  CHECK_EQ_INT(admit(&s, &std, FM_TIER_STANDARD), FM_ADMIT_QUEUED);
  CHECK_EQ_INT(admit(&s, &pri, FM_TIER_PRIORITY), FM_ADMIT_QUEUED);
  fm_fleet_release(&s.fleet, &a);
  CHECK_EQ_INT(pri.state, FM_TICKET_RUNNING);
  CHECK_EQ_INT(std.state, FM_TICKET_QUEUED);
  fm_fleet_release(&s.fleet, &b);
  CHECK_EQ_INT(std.state, FM_TICKET_RUNNING);
  fm_fleet_release(&s.fleet, &pri);
  fm_fleet_release(&s.fleet, &std);
  scene_close(&s);
}

TEST(leaving_the_queue_frees_the_place_and_releasing_twice_is_harmless) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\":{\"kimi-k2p6\":{\"slots\":1}}}", 1, false) == 0);
  fm_ticket run, wait;
  admit(&s, &run, FM_TIER_STANDARD);
  CHECK_EQ_INT(admit(&s, &wait, FM_TIER_STANDARD), FM_ADMIT_QUEUED);
  fm_fleet_release(&s.fleet, &wait);
  fm_fleet_release(&s.fleet, &wait);
  CHECK_EQ_INT(s.fleet.pools[s.kimi].queued[FM_TIER_STANDARD], 0);
  fm_fleet_release(&s.fleet, &run);
  fm_fleet_release(&s.fleet, &run);
  CHECK_EQ_INT(fm_pool_running(&s.fleet.pools[s.kimi]), 0);
  CHECK_EQ_INT(s.decided_ok + s.decided_shed, 0);
  scene_close(&s);
}

TEST(priority_is_judged_on_priority_demand_alone) {
  scene s;
  REQUIRE(scene_open(&s,
                     "{\"pools\":{\"kimi-k2p6\":{\"tenant_load\":1.0,"
                     "\"tenant_priority_share\":0.95}}}",
                     1, true) == 0);
  fm_pool *p = &s.fleet.pools[s.kimi];
  CHECK_NEAR(fm_pool_demand(p, FM_TIER_PRIORITY), 0.95, 1e-12);
  CHECK_NEAR(fm_pool_shed_probability(p, FM_TIER_PRIORITY), 0.5, 1e-9);
  CHECK_NEAR(fm_pool_shed_probability(p, FM_TIER_STANDARD), 1.0, 1e-12);
  scene_close(&s);
}

TEST(lowering_the_load_draws_the_queue_again) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\":{\"kimi-k2p6\":{\"tenant_load\":1.5}}}", 1, false) == 0);
  fm_ticket t;
  CHECK_EQ_INT(admit(&s, &t, FM_TIER_STANDARD), FM_ADMIT_QUEUED);
  fm_pool_cfg calm = s.fleet.pools[s.kimi].cfg;
  calm.tenant_load = 0.1;
  CHECK_EQ_INT(fm_fleet_set_pool(&s.fleet, s.kimi, &calm), 0);
  CHECK_EQ_INT(t.state, FM_TICKET_RUNNING);
  fm_fleet_release(&s.fleet, &t);
  scene_close(&s);
}

/* A request picks its replica on arrival and may then queue; if the pool
 * loses replicas meanwhile, the index it kept points past the rebuilt cache
 * array. At admission it must get a cache of the pool as it is now. */
TEST(a_replica_picked_before_the_pool_shrank_is_picked_again_at_admission) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\":{\"kimi-k2p6\":{\"replicas\":8,\"slots\":1}}}", 1, false) ==
          0);
  fm_replica kept[16];
  int past_the_end = 0;
  for (int i = 0; i < 16; i++) {
    char key[16];
    snprintf(key, sizeof(key), "session-%d", i);
    kept[i] = fm_fleet_pick_replica(&s.fleet, s.kimi, key);
    if (kept[i].index >= 1) past_the_end++;
  }
  CHECK(past_the_end > 0); /* the scene needs indexes the shrink invalidates */
  fm_pool_cfg smaller = s.fleet.pools[s.kimi].cfg;
  smaller.replicas = 1;
  smaller.slots = 100;
  REQUIRE(fm_fleet_set_pool(&s.fleet, s.kimi, &smaller) == 0);
  for (int i = 0; i < 16; i++) {
    char key[16];
    snprintf(key, sizeof(key), "session-%d", i);
    fm_cache *c = fm_fleet_replica_cache(&s.fleet, s.kimi, &kept[i], key);
    CHECK(c == &s.fleet.pools[s.kimi].caches[0]);
    CHECK_EQ_INT(kept[i].index, 0);
    CHECK(kept[i].epoch == s.fleet.pools[s.kimi].cache_epoch);
  }
  scene_close(&s);
}

TEST(a_replica_kept_while_the_caches_stay_is_kept) {
  scene s;
  REQUIRE(scene_open(&s, "{\"pools\":{\"kimi-k2p6\":{\"replicas\":8}}}", 1, false) == 0);
  fm_replica r = fm_fleet_pick_replica(&s.fleet, s.kimi, "session-a");
  int before = r.index;
  fm_pool_cfg same_replicas = s.fleet.pools[s.kimi].cfg;
  same_replicas.tenant_load = 0.9; /* a setting that leaves the caches alone */
  REQUIRE(fm_fleet_set_pool(&s.fleet, s.kimi, &same_replicas) == 0);
  CHECK(fm_fleet_replica_cache(&s.fleet, s.kimi, &r, "session-a") ==
        &s.fleet.pools[s.kimi].caches[before]);
  CHECK_EQ_INT(r.index, before);
  scene_close(&s);
}
