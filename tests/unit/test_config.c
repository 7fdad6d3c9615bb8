/* test_config.c — the default config, merge patches, and error reporting. */
#include "check.h"
#include "config.h"

#include <cjson/cJSON.h>

#define KIMI "accounts/fireworks/models/kimi-k2p6"
#define EMBED "nomic-ai/nomic-embed-text-v1.5"

/* Loads patch over the default; the config and errors are the test's to free. */
static int load(fm_config *cfg, fm_config_errors *errs, const char *patch) {
  memset(errs, 0, sizeof(*errs));
  int rc = fm_config_load_text(cfg, patch, "test.json", errs);
  for (size_t i = 0; i < errs->n; i++)
    printf("  config error: %s\n", errs->items[i]);
  return rc;
}

static void done(fm_config *cfg, fm_config_errors *errs) {
  fm_config_free(cfg);
  fm_config_errors_free(errs);
}

static const fm_pool_cfg *pool(const fm_config *cfg, const char *name) {
  int i = fm_config_find_pool(cfg, name);
  return i < 0 ? NULL : &cfg->pools[i];
}

static const fm_model_cfg *model(const fm_config *cfg, const char *id) {
  int i = fm_config_find_model(cfg, id);
  return i < 0 ? NULL : &cfg->models[i];
}

/* True when some error starts with prefix. */
static int has_error(const fm_config_errors *errs, const char *prefix) {
  for (size_t i = 0; i < errs->n; i++)
    if (strncmp(errs->items[i], prefix, strlen(prefix)) == 0) return 1;
  return 0;
}

TEST(default_config_loads_nine_models_on_eight_pools) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs, NULL), 0);
  CHECK_EQ_INT(errs.n, 0);
  CHECK_EQ_INT(cfg.n_models, 9); /* 7 text models, 2 embedding models */
  CHECK_EQ_INT(cfg.n_pools, 8);
  CHECK_EQ_INT(cfg.max_body_bytes, 4194304);
  CHECK_EQ_INT(cfg.max_accounts, 50000);
  CHECK_EQ_U64(cfg.max_nonstream_tokens, 524288);
  for (size_t i = 0; i < cfg.n_models; i++) {
    const fm_model_cfg *m = &cfg.models[i];
    CHECK(m->pool >= 0 && (size_t)m->pool < cfg.n_pools);
    if (strcmp(m->id, EMBED) != 0) CHECK_STR(m->owned_by, "fireworks");
    CHECK(m->supports_chat == !m->embedding_dims);
  }
  done(&cfg, &errs);
}

TEST(default_kimi_pool_has_its_speeds_and_the_pool_defaults) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs, NULL) == 0);
  const fm_pool_cfg *p = pool(&cfg, "kimi-k2p6");
  REQUIRE(p);
  CHECK_NEAR(p->decode_tps, 45, 0);
  CHECK_NEAR(p->ttft_ms, 400, 0);
  CHECK_NEAR(p->prefill_tps, 8000, 0);
  CHECK_EQ_INT(p->slots, 64);
  CHECK_EQ_INT(p->replicas, 4);
  CHECK_NEAR(p->jitter, 0.05, 0);
  CHECK_NEAR(p->slowdown_at_full, 0.4, 0);
  CHECK_EQ_INT(p->out_min, 16);
  CHECK_EQ_INT(p->out_mean, 150);
  CHECK_EQ_INT(p->out_max, 600);
  CHECK_NEAR(p->shed[FM_TIER_STANDARD].start, 0.85, 0);
  CHECK_NEAR(p->shed[FM_TIER_BACKGROUND].end, 0.80, 0);
  CHECK_NEAR(p->queue_timeout_ms[FM_TIER_PRIORITY], 2000, 0);
  CHECK_EQ_INT(pool(&cfg, "kimi-k2p6-fast")->slots, 32);
  done(&cfg, &errs);
}

TEST(default_kimi_model_prices_with_background_derived_at_a_quarter) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs, NULL) == 0);
  const fm_model_cfg *m = model(&cfg, KIMI);
  REQUIRE(m);
  CHECK_EQ_INT(m->pool, fm_config_find_pool(&cfg, "kimi-k2p6"));
  CHECK_EQ_INT(m->context_length, 262144);
  CHECK_EQ_INT(m->paths,
               (1u << FM_PATH_STANDARD) | (1u << FM_PATH_PRIORITY) | (1u << FM_PATH_BACKGROUND));
  CHECK_NEAR(m->prices[FM_PATH_STANDARD].input, 0.95, 1e-12);
  CHECK_NEAR(m->prices[FM_PATH_STANDARD].cached, 0.16, 1e-12);
  CHECK_NEAR(m->prices[FM_PATH_STANDARD].output, 4.00, 1e-12);
  CHECK_NEAR(m->prices[FM_PATH_PRIORITY].input, 1.50, 1e-12);
  CHECK_NEAR(m->prices[FM_PATH_BACKGROUND].input, 0.2375, 1e-12);
  CHECK_NEAR(m->prices[FM_PATH_BACKGROUND].cached, 0.04, 1e-12);
  CHECK_NEAR(m->prices[FM_PATH_BACKGROUND].output, 1.00, 1e-12);
  done(&cfg, &errs);
}

TEST(a_background_price_that_is_set_is_not_derived) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs,
               "{\"models\": {\"" KIMI "\": {\"prices\": {\"background\":"
               " {\"input\": 0.5, \"cached\": 0.1, \"output\": 2}}}}}") == 0);
  const fm_model_cfg *m = model(&cfg, KIMI);
  REQUIRE(m);
  CHECK_NEAR(m->prices[FM_PATH_BACKGROUND].input, 0.5, 0);
  CHECK_NEAR(m->prices[FM_PATH_BACKGROUND].cached, 0.1, 0);
  CHECK_NEAR(m->prices[FM_PATH_BACKGROUND].output, 2, 0);
  done(&cfg, &errs);
}

TEST(fast_routers_serve_only_the_fast_path) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs, NULL) == 0);
  const fm_model_cfg *k = model(&cfg, "accounts/fireworks/routers/kimi-k2p6-fast");
  const fm_model_cfg *g = model(&cfg, "accounts/fireworks/routers/glm-5p1-fast");
  REQUIRE(k && g);
  CHECK_EQ_INT(k->paths, 1u << FM_PATH_FAST);
  CHECK_EQ_INT(g->paths, 1u << FM_PATH_FAST);
  CHECK_NEAR(k->prices[FM_PATH_FAST].output, 8.00, 1e-12);
  CHECK_EQ_INT(k->pool, fm_config_find_pool(&cfg, "kimi-k2p6-fast"));
  done(&cfg, &errs);
}

TEST(merge_patch_changes_one_field_and_keeps_the_rest) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs, "{\"pools\": {\"kimi-k2p6\": {\"decode_tps\": 60}}}") == 0);
  const fm_pool_cfg *p = pool(&cfg, "kimi-k2p6");
  REQUIRE(p);
  CHECK_NEAR(p->decode_tps, 60, 0);
  CHECK_NEAR(p->ttft_ms, 400, 0);
  CHECK_NEAR(p->prefill_tps, 8000, 0);
  CHECK_NEAR(pool(&cfg, "kimi-k2p5")->decode_tps, 45, 0);
  CHECK_EQ_INT(cfg.n_pools, 8);
  CHECK_EQ_INT(cfg.n_models, 9);
  done(&cfg, &errs);
}

TEST(merge_patch_inside_a_model_keeps_its_other_prices) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs,
               "{\"models\": {\"" KIMI "\": {\"prices\": {\"standard\": {\"output\": 5}}}}}") == 0);
  const fm_model_cfg *m = model(&cfg, KIMI);
  REQUIRE(m);
  CHECK_NEAR(m->prices[FM_PATH_STANDARD].output, 5, 0);
  CHECK_NEAR(m->prices[FM_PATH_STANDARD].input, 0.95, 1e-12);
  CHECK_NEAR(m->prices[FM_PATH_BACKGROUND].output, 1.25, 1e-12); /* still derived */
  done(&cfg, &errs);
}

TEST(pool_defaults_apply_to_every_pool) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs, "{\"pool_defaults\": {\"jitter\": 0, \"replicas\": 2}}") == 0);
  REQUIRE(cfg.n_pools == 8);
  for (size_t i = 0; i < cfg.n_pools; i++) {
    CHECK_NEAR(cfg.pools[i].jitter, 0, 0);
    CHECK_EQ_INT(cfg.pools[i].replicas, 2);
  }
  done(&cfg, &errs);
}

TEST(a_pool_setting_overrides_pool_defaults) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs, "{\"pool_defaults\": {\"prefill_tps\": 5000}}") == 0);
  CHECK_NEAR(pool(&cfg, "kimi-k2p6")->prefill_tps, 5000, 0);
  CHECK_NEAR(pool(&cfg, "gpt-oss-120b")->prefill_tps, 20000, 0); /* set on the pool itself */
  done(&cfg, &errs);
}

TEST(null_deletes_a_model) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs, "{\"models\": {\"accounts/fireworks/models/gpt-oss-20b\": null}}") ==
          0);
  CHECK_EQ_INT(cfg.n_models, 8);
  CHECK_EQ_INT(fm_config_find_model(&cfg, "accounts/fireworks/models/gpt-oss-20b"), -1);
  CHECK(fm_config_find_model(&cfg, KIMI) >= 0);
  CHECK_EQ_INT(cfg.n_pools, 8); /* its pool stays */
  done(&cfg, &errs);
}

TEST(bad_value_is_reported_at_its_json_path) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs, "{\"pools\": {\"kimi-k2p6\": {\"decode_tps\": -1}}}"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR_PREFIX(errs.items[0], "pools.kimi-k2p6.decode_tps:");
  CHECK_STR(errs.items[0], "pools.kimi-k2p6.decode_tps: must be > 0 and at most 1000000");
  CHECK_EQ_INT(cfg.n_pools, 0); /* a config with errors is left empty */
  CHECK_EQ_INT(cfg.n_models, 0);
  CHECK(cfg.pools == NULL);
  done(&cfg, &errs);
}

TEST(max_accounts_is_read_and_a_bad_one_is_reported_at_its_path) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs, "{\"server\": {\"max_accounts\": 5}}"), 0);
  CHECK_EQ_INT(cfg.max_accounts, 5);
  done(&cfg, &errs);
  CHECK_EQ_INT(load(&cfg, &errs, "{\"server\": {\"max_accounts\": 0}}"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0], "server.max_accounts: must be between 1 and 10000000");
  done(&cfg, &errs);
  CHECK_EQ_INT(load(&cfg, &errs, "{\"server\": {\"max_accounts\": 2.5}}"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0], "server.max_accounts: must be a whole number");
  done(&cfg, &errs);
}

TEST(the_journal_defaults_to_1000_requests_of_4096_body_bytes) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs, NULL), 0);
  CHECK_EQ_INT(cfg.journal_size, 1000);
  CHECK_EQ_INT(cfg.journal_body_bytes, 4096);
  done(&cfg, &errs);
  CHECK_EQ_INT(load(&cfg, &errs, "{\"server\": {\"journal\": {\"size\": 0}}}"), 0);
  CHECK_EQ_INT(cfg.journal_size, 0); /* off; body_bytes keeps its default */
  CHECK_EQ_INT(cfg.journal_body_bytes, 4096);
  done(&cfg, &errs);
}

TEST(a_bad_journal_setting_is_reported_at_its_path_with_its_range) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs, "{\"server\": {\"journal\": {\"size\": 1000001}}}"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR_PREFIX(errs.items[0],
                   "server.journal.size: must be a whole number from 0 to 1000000 (the most "
                   "requests the journal holds; 0 turns it off)");
  done(&cfg, &errs);
  CHECK_EQ_INT(load(&cfg, &errs, "{\"server\": {\"journal\": {\"body_bytes\": -1, \"sise\": 5}}}"),
               -1);
  REQUIRE(errs.n == 2);
  CHECK(has_error(&errs, "server.journal.sise: unknown field (known fields: size, body_bytes)"));
  CHECK(has_error(&errs, "server.journal.body_bytes: must be a whole number from 0 to 1048576"));
  done(&cfg, &errs);
  CHECK_EQ_INT(load(&cfg, &errs, "{\"server\": {\"journal\": null}}"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR_PREFIX(errs.items[0], "server.journal: is required; write {\"size\": 1000");
  CHECK_STR_CONTAINS(errs.items[0], "{\"size\": 0} to turn the request journal off");
  done(&cfg, &errs);
}

TEST(unknown_field_is_reported_by_name) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs, "{\"pools\": {\"kimi-k2p6\": {\"decode_tsp\": 50}}}"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR_PREFIX(errs.items[0], "pools.kimi-k2p6.decode_tsp: unknown field");
  CHECK_STR_CONTAINS(errs.items[0], "decode_tps"); /* the known fields are listed */
  done(&cfg, &errs);
}

TEST(unknown_top_level_field_is_reported_by_name) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs, "{\"poolz\": {}}"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR_PREFIX(errs.items[0], "poolz: unknown field");
  done(&cfg, &errs);
}

TEST(model_on_a_missing_pool_is_reported_at_its_pool_field) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs, "{\"models\": {\"" KIMI "\": {\"pool\": \"nope\"}}}"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR_PREFIX(errs.items[0], "models[\"" KIMI "\"].pool: no pool named \"nope\"");
  done(&cfg, &errs);
}

TEST(deleting_a_pool_in_use_is_reported_at_the_models_using_it) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs, "{\"pools\": {\"kimi-k2p6\": null}}"), -1);
  CHECK_EQ_INT(errs.n, 1);
  CHECK(has_error(&errs, "models[\"" KIMI "\"].pool: no pool named \"kimi-k2p6\""));
  done(&cfg, &errs);
}

TEST(every_error_is_reported_not_just_the_first) {
  fm_config cfg;
  fm_config_errors errs;
  const char *patch = "{\"serverr\": 1,"
                      " \"pools\": {\"kimi-k2p6\": {\"decode_tps\": -1},"
                      "             \"glm-5p1\": {\"jitter\": 2, \"slots\": 1.5}},"
                      " \"models\": {\"" KIMI "\": {\"pool\": \"nope\"}}}";
  CHECK_EQ_INT(load(&cfg, &errs, patch), -1);
  CHECK_EQ_INT(errs.n, 5);
  CHECK(has_error(&errs, "serverr: unknown field"));
  CHECK(has_error(&errs, "pools.kimi-k2p6.decode_tps: "));
  CHECK(has_error(&errs, "pools.glm-5p1.jitter: must be between 0 and 0.9"));
  CHECK(has_error(&errs, "pools.glm-5p1.slots: must be a whole number"));
  CHECK(has_error(&errs, "models[\"" KIMI "\"].pool: "));
  done(&cfg, &errs);
}

TEST(invalid_json_is_reported_with_line_and_column) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(
      load(&cfg, &errs, "{\n  \"pools\": {\n    \"kimi-k2p6\": {\"ttft_ms\": 30O}\n  }\n}"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0],
            "(top level): test.json is not valid JSON (line 3, column 32): fix the syntax there");
  done(&cfg, &errs);
}

TEST(patch_that_is_not_an_object_is_refused) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs, "[1, 2]"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0], "(top level): test.json must hold a JSON object (a merge patch over the "
                           "default config)");
  done(&cfg, &errs);
}

TEST(shed_curve_ending_before_it_starts_is_reported) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(
      load(
          &cfg, &errs,
          "{\"pools\": {\"glm-5p1\": {\"shed\": {\"standard\": {\"start\": 0.9, \"end\": 0.5}}}}}"),
      -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0],
            "pools.glm-5p1.shed.standard: end must be >= start (got start 0.9, end 0.5)");
  done(&cfg, &errs);
}

TEST(output_tokens_out_of_order_are_reported) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(
      load(&cfg, &errs, "{\"pool_defaults\": {\"output_tokens\": {\"min\": 200, \"mean\": 150}}}"),
      -1);
  CHECK_EQ_INT(errs.n, 8); /* once for every pool the default reaches */
  CHECK(has_error(&errs, "pools.kimi-k2p6.output_tokens: must satisfy min <= mean <= max"));
  done(&cfg, &errs);
}

TEST(fast_model_with_another_path_is_refused) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs,
                    "{\"models\": {\"accounts/fireworks/routers/kimi-k2p6-fast\":"
                    " {\"paths\": [\"fast\", \"priority\"]}}}"),
               -1);
  CHECK(has_error(&errs, "models[\"accounts/fireworks/routers/kimi-k2p6-fast\"].paths: a fast "
                         "model serves only"));
  done(&cfg, &errs);
}

TEST(an_api_key_is_named_by_its_position_in_errors_never_by_its_value) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs,
                    "{\"accounts\": {\"keys\": {\"fw_ok\": {\"name\": \"ok\"},"
                    " \"fw_secret\": {\"name\": 5}}}}"),
               -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0], "accounts.keys[1].name: must be a string");
  done(&cfg, &errs);
}

/* ---- live pool patches (PATCH /admin/pools/..., scenarios) ---- */

TEST(pool_patch_changes_one_setting) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs, NULL) == 0);
  fm_pool_cfg p = *pool(&cfg, "kimi-k2p6");
  cJSON *patch = cJSON_Parse("{\"tenant_load\": 1.2}");
  CHECK_EQ_INT(fm_pool_cfg_patch(&p, patch, &errs), 0);
  CHECK_EQ_INT(errs.n, 0);
  CHECK_NEAR(p.tenant_load, 1.2, 0);
  CHECK_NEAR(p.decode_tps, 45, 0);
  CHECK_NEAR(p.shed[FM_TIER_STANDARD].start, 0.85, 0);
  cJSON_Delete(patch);
  done(&cfg, &errs);
}

TEST(bad_pool_patch_is_reported_and_changes_nothing) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs, NULL) == 0);
  fm_pool_cfg p = *pool(&cfg, "kimi-k2p6");
  cJSON *patch = cJSON_Parse("{\"tenant_load\": 1.2, \"decode_tps\": 0, \"decodetps\": 1}");
  CHECK_EQ_INT(fm_pool_cfg_patch(&p, patch, &errs), -1);
  CHECK_EQ_INT(errs.n, 1); /* an unknown field is reported before values are read */
  CHECK(has_error(&errs, "decodetps: unknown field"));
  fm_config_errors_free(&errs);
  cJSON_Delete(patch);

  patch = cJSON_Parse("{\"tenant_load\": 1.2, \"decode_tps\": 0}");
  CHECK_EQ_INT(fm_pool_cfg_patch(&p, patch, &errs), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0], "decode_tps: must be > 0 and at most 1000000");
  CHECK_NEAR(p.tenant_load, 0, 0);
  CHECK_NEAR(p.decode_tps, 45, 0);
  cJSON_Delete(patch);
  done(&cfg, &errs);
}

TEST(pool_patch_that_is_not_an_object_is_refused_with_an_example) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs, NULL) == 0);
  fm_pool_cfg p = *pool(&cfg, "kimi-k2p6");
  cJSON *patch = cJSON_Parse("[1]");
  CHECK_EQ_INT(fm_pool_cfg_patch(&p, patch, &errs), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0], "(top level): the body must be a JSON object of pool settings, e.g. "
                           "{\"tenant_load\": 1.2}");
  cJSON_Delete(patch);
  done(&cfg, &errs);
}

/* cJSON ends a string at \u0000: "kimi-k2p6\u0000x" would be read as the
 * pool kimi-k2p6. A config with a NUL in any string is refused, by path. */
TEST(config_string_with_an_embedded_nul_is_refused_naming_its_path) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs, "{\"models\": {\"" KIMI "\": {\"pool\": \"glm-5p1\\u0000x\"}}}"),
               -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0], "models[\"" KIMI "\"].pool: must not contain a NUL character "
                           "(\\u0000); remove it");
  fm_config_errors_free(&errs);

  CHECK_EQ_INT(load(&cfg, &errs, "{\"pools\": {\"kimi-k2p6\\u0000\": {\"slots\": 2}}}"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0], "pools[\"kimi-k2p6\\u0000\"]: must not contain a NUL character "
                           "(\\u0000); remove it");
  fm_config_errors_free(&errs);
}

TEST(config_api_key_with_a_nul_is_named_by_position_never_printed) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs,
                    "{\"accounts\": {\"keys\": {\"sk-a\": {\"name\": \"a\"}, "
                    "\"sk-secret\\u0000\": {\"name\": \"b\"}}}}"),
               -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0],
            "accounts.keys[1]: must not contain a NUL character (\\u0000); remove it");
  CHECK(strstr(errs.items[0], "secret") == NULL);
  fm_config_errors_free(&errs);

  /* A NUL in the name under a key: the key is still shown by position. */
  CHECK_EQ_INT(
      load(&cfg, &errs, "{\"accounts\": {\"keys\": {\"sk-a\": {\"name\": \"a\\u0000\"}}}}"), -1);
  REQUIRE(errs.n == 1);
  CHECK_STR(errs.items[0], "accounts.keys[0].name: must not contain a NUL character (\\u0000); "
                           "remove it");
  fm_config_errors_free(&errs);
}

TEST(config_text_that_only_looks_like_a_nul_loads) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(
      load(&cfg, &errs, "{\"accounts\": {\"keys\": {\"sk-a\": {\"name\": \"C:\\\\u0000\"}}}}"), 0);
  CHECK_STR(cfg.accounts.keys[0].name, "C:\\u0000");
  done(&cfg, &errs);
}

/* ---- embedding models ------------------------------------------------------ */

TEST(default_embedding_models_have_their_size_and_input_only_prices) {
  fm_config cfg;
  fm_config_errors errs;
  REQUIRE(load(&cfg, &errs, NULL) == 0);
  const fm_model_cfg *m = model(&cfg, EMBED);
  REQUIRE(m);
  CHECK_EQ_INT(m->embedding_dims, 768);
  CHECK_EQ_INT(m->context_length, 8192);
  CHECK(!m->supports_chat);
  CHECK(!m->agent.tools);
  CHECK(!m->agent.reasoning);
  CHECK_NEAR(m->prices[FM_PATH_STANDARD].input, 0.008, 1e-12);
  CHECK_NEAR(m->prices[FM_PATH_STANDARD].output, 0, 0);
  CHECK_NEAR(m->prices[FM_PATH_STANDARD].cached, 0, 0);
  CHECK_EQ_INT(model(&cfg, "fireworks/qwen3-embedding-8b")->embedding_dims, 4096);
  CHECK_EQ_INT(model(&cfg, KIMI)->embedding_dims, 0);
  const fm_pool_cfg *p = pool(&cfg, "embeddings");
  REQUIRE(p);
  CHECK_NEAR(p->prefill_tps, 200000, 0);
  CHECK_NEAR(p->ttft_ms, 30, 0);
  CHECK_EQ_INT(m->pool, fm_config_find_pool(&cfg, "embeddings"));
  done(&cfg, &errs);
}

TEST(embedding_settings_are_checked_at_their_paths) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs,
                    "{\"models\": {\"" EMBED "\": {\"embedding\": {\"dimensions\": 0, "
                    "\"size\": 3}, \"supports_chat\": true, \"tools\": true, "
                    "\"reasoning\": true}, \"" KIMI "\": {\"embedding\": 768}}}"),
               -1);
  const char *at = "models[\"" EMBED "\"].";
  char want[256];
  const char *const fields[] = {"embedding.dimensions: must be between 1 and 65536",
                                "embedding.size: unknown field",
                                "supports_chat: must be false for an embedding model",
                                "tools: does not apply to an embedding model",
                                "reasoning: does not apply to an embedding model",
                                NULL};
  for (const char *const *f = fields; *f; f++) {
    snprintf(want, sizeof(want), "%s%s", at, *f);
    CHECK(has_error(&errs, want));
  }
  CHECK(
      has_error(&errs, "models[\"" KIMI "\"].embedding: must be an object {\"dimensions\": 768}"));
  done(&cfg, &errs);
}

TEST(a_text_model_needs_full_price_rows_an_embedding_model_does_not) {
  fm_config cfg;
  fm_config_errors errs;
  CHECK_EQ_INT(load(&cfg, &errs,
                    "{\"models\": {\"" KIMI "\": {\"prices\": {\"standard\": {\"input\": 1, "
                    "\"cached\": null, \"output\": null}}}}}"),
               -1);
  CHECK(has_error(&errs, "models[\"" KIMI "\"].prices.standard.cached: is required"));
  done(&cfg, &errs);
  REQUIRE(load(&cfg, &errs,
               "{\"models\": {\"" EMBED "\": {\"prices\": {\"standard\": {\"input\": 0.02, "
               "\"output\": 0}}}}}") == 0);
  CHECK_NEAR(model(&cfg, EMBED)->prices[FM_PATH_STANDARD].input, 0.02, 1e-12);
  done(&cfg, &errs);
}
