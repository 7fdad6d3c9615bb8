/* test_faults.c — fault parsing: what a fault may answer, and fault ids. */
#include "check.h"
#include "config.h"
#include "faults.h"

#include <cjson/cJSON.h>

/* Parses a fault from JSON text over the default config; NULL on errors. */
static fm_fault *parse(const char *json, fm_config_errors *errs) {
  fm_config cfg;
  fm_config_errors cerrs = {0};
  memset(errs, 0, sizeof(*errs));
  if (fm_config_load_text(&cfg, NULL, NULL, &cerrs) != 0) return NULL;
  cJSON *j = cJSON_Parse(json);
  fm_fault *f = j ? fm_fault_parse(j, &cfg, "", errs) : NULL;
  cJSON_Delete(j);
  fm_config_free(&cfg);
  fm_config_errors_free(&cerrs);
  for (size_t i = 0; i < errs->n; i++)
    printf("  fault error: %s\n", errs->items[i]);
  return f;
}

static int has_error(const fm_config_errors *errs, const char *prefix) {
  for (size_t i = 0; i < errs->n; i++)
    if (strncmp(errs->items[i], prefix, strlen(prefix)) == 0) return 1;
  return 0;
}

TEST(a_status_fault_answers_a_final_error_status) {
  fm_config_errors errs;
  fm_fault *f = parse("{\"action\":{\"status\":503}}", &errs);
  REQUIRE(f != NULL);
  CHECK_EQ_INT(f->action.kind, FM_FAULT_STATUS);
  CHECK_EQ_INT(f->action.status, 503);
  fm_fault_free(f);
  fm_config_errors_free(&errs);
}

TEST(informational_and_success_statuses_are_refused_naming_action_status) {
  const char *bodies[] = {"{\"action\":{\"status\":101}}", "{\"action\":{\"status\":100}}",
                          "{\"action\":{\"status\":200}}", "{\"action\":{\"status\":302}}",
                          "{\"action\":{\"status\":600}}"};
  for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
    fm_config_errors errs;
    fm_fault *f = parse(bodies[i], &errs);
    CHECK(f == NULL);
    CHECK(has_error(&errs, "action.status: must be a final HTTP error status"));
    fm_fault_free(f);
    fm_config_errors_free(&errs);
  }
}

/* 1e300 is out of int's range: converting it would be undefined behaviour,
 * so the range check must come first (a UBSan build aborts otherwise). */
TEST(a_huge_status_is_refused_without_converting_it) {
  fm_config_errors errs;
  fm_fault *f = parse("{\"action\":{\"status\":1e300}}", &errs);
  CHECK(f == NULL);
  CHECK(has_error(&errs, "action.status:"));
  fm_config_errors_free(&errs);
}

TEST(a_huge_after_tokens_is_refused_without_converting_it) {
  fm_config_errors errs;
  fm_fault *f = parse("{\"action\":{\"stream\":\"error\",\"after_tokens\":1e20}}", &errs);
  CHECK(f == NULL);
  CHECK(has_error(&errs, "action.after_tokens: must be a whole number between 0 and"));
  fm_config_errors_free(&errs);
  f = parse("{\"action\":{\"stream\":\"error\",\"after_tokens\":-1e300}}", &errs);
  CHECK(f == NULL);
  fm_config_errors_free(&errs);
}

TEST(the_fault_header_takes_error_statuses_and_stream_faults_only) {
  fm_fault_action a;
  CHECK(fm_fault_parse_header("503", &a));
  CHECK_EQ_INT(a.status, 503);
  CHECK(fm_fault_parse_header("400", &a));
  CHECK(fm_fault_parse_header("599", &a));
  CHECK(!fm_fault_parse_header("101", &a));
  CHECK(!fm_fault_parse_header("200", &a));
  CHECK(!fm_fault_parse_header("399", &a));
  CHECK(!fm_fault_parse_header("600", &a));
  CHECK(!fm_fault_parse_header("99999999999999999999", &a));
  CHECK(fm_fault_parse_header("error@3", &a));
  CHECK_EQ_INT(a.kind, FM_FAULT_ERROR);
  CHECK_EQ_INT(a.after_tokens, 3);
  CHECK(!fm_fault_parse_header("error@99999999999999999999", &a));
  CHECK(!fm_fault_parse_header("error@-1", &a));
}

TEST(fault_ids_past_32_bits_name_no_fault) {
  uint32_t id = 7;
  CHECK(fm_fault_parse_id("1", &id));
  CHECK_EQ_INT(id, 1);
  CHECK(fm_fault_parse_id("4294967295", &id));
  CHECK(id == 4294967295u);
  id = 7;
  CHECK(!fm_fault_parse_id("4294967297", &id)); /* would alias fault 1 after a cast */
  CHECK(!fm_fault_parse_id("4294967296", &id));
  CHECK(!fm_fault_parse_id("18446744073709551617", &id));
  CHECK(!fm_fault_parse_id("0", &id));
  CHECK(!fm_fault_parse_id("", &id));
  CHECK(!fm_fault_parse_id("-1", &id));
  CHECK(!fm_fault_parse_id("+1", &id));
  CHECK(!fm_fault_parse_id(" 1", &id));
  CHECK(!fm_fault_parse_id("1x", &id));
  CHECK_EQ_INT(id, 7);
}

TEST(deleting_a_fault_by_an_aliasing_id_leaves_it_in_place) {
  fm_faults fs;
  fm_faults_init(&fs, 1);
  fm_config_errors errs;
  fm_fault *f = parse("{\"action\":{\"status\":503}}", &errs);
  REQUIRE(f != NULL);
  CHECK_EQ_INT(fm_faults_add(&fs, f), 1);
  uint32_t id = 0;
  if (fm_fault_parse_id("4294967297", &id)) fm_faults_delete(&fs, id);
  CHECK(fs.head != NULL);
  fm_faults_free(&fs);
  fm_config_errors_free(&errs);
}
