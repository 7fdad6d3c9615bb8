/* test_replies.c — reply rules and the shared matcher (server/replies.c,
 * server/match.c): conditions against request bodies, which rule wins,
 * count and sequence, templates, parse errors with their paths, and the
 * turn a reply plans. */
#include "check.h"
#include "config.h"
#include "faults.h"
#include "replies.h"
#include "turn.h"

#include <cjson/cJSON.h>

static fm_config cfg;

static void load_cfg(void) {
  fm_config_errors e = {0};
  if (!cfg.n_models) fm_config_load_text(&cfg, NULL, NULL, &e);
  fm_config_errors_free(&e);
}

static fm_reply_rule *rule(const char *json, fm_config_errors *errs) {
  load_cfg();
  memset(errs, 0, sizeof(*errs));
  cJSON *j = cJSON_Parse(json);
  fm_reply_rule *x = j ? fm_reply_rule_parse(j, &cfg, "replies[0]", errs) : NULL;
  cJSON_Delete(j);
  return x;
}

static bool has_error(const fm_config_errors *errs, const char *prefix) {
  for (size_t i = 0; i < errs->n; i++)
    if (strncmp(errs->items[i], prefix, strlen(prefix)) == 0) return true;
  for (size_t i = 0; i < errs->n; i++)
    printf("  error: %s\n", errs->items[i]);
  return false;
}

static fm_match_facts facts(const char *body) {
  return (fm_match_facts){.model = "accounts/fireworks/models/kimi-k2p6",
                          .path = FM_PATH_STANDARD,
                          .api_key = "sk-test",
                          .key_id = "k-000000000001",
                          .route = "chat/completions",
                          .body = body,
                          .body_len = strlen(body)};
}

static const char *ASK = "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                         "{\"role\":\"user\",\"content\":\"what is the weather in Paris?\"}]}";
static const char *AFTER_TOOL =
    "{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},{\"role\":\"assistant\","
    "\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{"
    "\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
    "\"call_1\",\"content\":\"22C and sunny\"}],\"temperature\":0}";
static const char *ANTHROPIC_AFTER_TOOL =
    "{\"system\":\"sys text\",\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},{\"role\":"
    "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"lookup\","
    "\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
    "\"toolu_1\",\"content\":\"found it\"}]}]}";

TEST(message_conditions_read_the_last_user_message_system_and_tool_results) {
  fm_config_errors errs;
  fm_reply_rule *a = rule("{\"match\":{\"last_user\":\"weather\",\"system\":{\"regex\":\"^be "
                          "(brief|long)$\"},\"tool_result\":false,\"turn\":1},\"reply\":{"
                          "\"content\":\"x\"}}",
                          &errs);
  REQUIRE(a != NULL);
  fm_match_facts f = facts(ASK);
  CHECK(fm_match_test(&a->match, &f, NULL));
  fm_match_facts_free(&f);
  f = facts(AFTER_TOOL);
  const char *failed = NULL;
  CHECK(!fm_match_test(&a->match, &f, &failed));
  CHECK_STR(failed, "system");
  CHECK_EQ_INT(f.turn, 2);
  CHECK_STR(f.tool_result, "22C and sunny");
  CHECK_STR(f.tool_name, "get_weather");
  fm_match_facts_free(&f);
  fm_reply_rule_free(a);

  fm_reply_rule *b = rule("{\"match\":{\"tool_result\":\"lookup\",\"system\":\"sys\","
                          "\"any_message\":\"found\"},\"reply\":{\"content\":\"x\"}}",
                          &errs);
  REQUIRE(b != NULL);
  f = facts(ANTHROPIC_AFTER_TOOL);
  CHECK(fm_match_test(&b->match, &f, NULL));
  CHECK_STR(f.last_user, "weather?"); /* the tool_result message is not the user's text */
  fm_match_facts_free(&f);
  fm_reply_rule_free(b);
}

TEST(body_subset_key_and_route_conditions) {
  fm_config_errors errs;
  fm_reply_rule *a =
      rule("{\"match\":{\"body\":{\"temperature\":0,\"messages\":[{\"role\":"
           "\"tool\"}]},\"route\":\"chat/completions\",\"key_id\":"
           "\"k-000000000001\",\"tier\":\"standard\"},\"reply\":{\"content\":\"x\"}}",
           &errs);
  REQUIRE(a != NULL);
  fm_match_facts f = facts(AFTER_TOOL);
  CHECK(fm_match_test(&a->match, &f, NULL));
  f.path = FM_PATH_PRIORITY;
  const char *failed;
  CHECK(!fm_match_test(&a->match, &f, &failed));
  CHECK_STR(failed, "tier");
  CHECK_EQ_INT(fm_match_score(&a->match, &f), 3); /* route, key_id and the body hold */
  fm_match_facts_free(&f);
  f = facts(ASK); /* no temperature, no tool message */
  CHECK(!fm_match_test(&a->match, &f, &failed));
  CHECK_STR(failed, "body");
  fm_match_facts_free(&f);
  fm_reply_rule_free(a);
}

TEST(the_tests_own_rules_come_first_then_the_first_added) {
  fm_config_errors errs;
  fm_replies rs;
  fm_replies_init(&rs);
  uint32_t global = fm_replies_add(&rs, rule("{\"reply\":{\"content\":\"g\"}}", &errs));
  uint32_t mine = fm_replies_add(
      &rs, rule("{\"match\":{\"test_id\":\"t1\"},\"reply\":{\"content\":\"t\"}}", &errs));
  fm_replies_add(&rs,
                 rule("{\"match\":{\"test_id\":\"t2\"},\"reply\":{\"content\":\"u\"}}", &errs));
  fm_match_facts f = facts(ASK);
  uint32_t id = 0;
  CHECK_STR(fm_replies_pick(&rs, &f, &id)->content, "g"); /* no test id: global only */
  CHECK_EQ_INT(id, global);
  f.test_id = "t1";
  CHECK_STR(fm_replies_pick(&rs, &f, &id)->content, "t");
  CHECK_EQ_INT(id, mine);
  f.test_id = "t3"; /* another test sees neither t1's nor t2's rule */
  CHECK_STR(fm_replies_pick(&rs, &f, &id)->content, "g");
  CHECK_EQ_INT(fm_replies_delete(&rs, 0, "t1"), 1);
  CHECK_EQ_INT(rs.n, 2);
  fm_match_facts_free(&f);
  fm_replies_free(&rs);
}

TEST(count_retires_a_rule_and_a_sequence_serves_in_order_then_retires_or_repeats) {
  fm_config_errors errs;
  fm_replies rs;
  fm_replies_init(&rs);
  fm_replies_add(&rs, rule("{\"count\":2,\"reply\":{\"content\":\"twice\"}}", &errs));
  fm_replies_add(&rs, rule("{\"sequence\":[{\"content\":\"one\"},{\"content\":\"two\"}]}", &errs));
  fm_replies_add(
      &rs, rule("{\"sequence\":[{\"content\":\"a\"},{\"content\":\"b\"}],\"repeat\":true}", &errs));
  fm_match_facts f = facts(ASK);
  const char *want[] = {"twice", "twice", "one", "two", "a", "b", "a", "b"};
  for (int i = 0; i < 8; i++) {
    const fm_reply *r = fm_replies_pick(&rs, &f, NULL);
    REQUIRE(r != NULL);
    CHECK_STR(r->content, want[i]);
  }
  CHECK_EQ_INT((int)rs.fired, 8);
  fm_match_facts_free(&f);
  fm_replies_free(&rs);
}

TEST(templates_echo_the_request_and_leave_other_braces_alone) {
  fm_match_facts f = facts(AFTER_TOOL);
  fm_buf b;
  fm_buf_init(&b);
  fm_reply_expand("you said {{last_user}}; tool: {{tool_result}} on {{model}} {{nope}} {{", &f, &b);
  fm_buf_putc(&b, 0);
  CHECK_STR(b.data, "you said weather?; tool: 22C and sunny on "
                    "accounts/fireworks/models/kimi-k2p6 {{nope}} {{");
  fm_buf_free(&b);
  fm_match_facts_free(&f);
}

TEST(bad_rules_are_refused_with_the_path_of_each_problem) {
  fm_config_errors errs;
  CHECK(rule("{\"match\":{\"modle\":\"x\"},\"reply\":{\"content\":\"x\"}}", &errs) == NULL);
  CHECK(has_error(&errs, "replies[0].match.modle: unknown field"));
  fm_config_errors_free(&errs);
  CHECK(rule("{\"reply\":{\"tool_calls\":[{\"arguments\":\"{}\"}]}}", &errs) == NULL);
  CHECK(has_error(&errs, "replies[0].reply.tool_calls[0]: needs a \"name\""));
  fm_config_errors_free(&errs);
  CHECK(rule("{\"sequence\":[{\"content\":1}],\"count\":0}", &errs) == NULL);
  CHECK(has_error(&errs, "replies[0].sequence[0].content: must be a string"));
  CHECK(has_error(&errs, "replies[0].count: must be a whole number >= 1"));
  fm_config_errors_free(&errs);
  CHECK(rule("{\"match\":{\"last_user\":{\"regex\":\"(\"}},\"reply\":{}}", &errs) == NULL);
  CHECK(has_error(&errs, "replies[0].match.last_user.regex: is not a POSIX"));
  fm_config_errors_free(&errs);
  CHECK(rule("{\"reply\":{\"content\":\"x\",\"usage\":{\"completion_tokens\":0}}}", &errs) == NULL);
  CHECK(has_error(&errs, "replies[0].reply.usage.completion_tokens: must be at least 1"));
  fm_config_errors_free(&errs);
  CHECK(rule("{\"reply\":{\"content\":\"x\"},\"sequence\":[]}", &errs) == NULL);
  CHECK(has_error(&errs, "replies[0].reply: needs exactly one of"));
  fm_config_errors_free(&errs);
}

TEST(a_reply_plans_its_calls_and_spreads_its_text_over_the_usage_it_sets) {
  fm_config_errors errs;
  fm_reply_rule *x = rule("{\"reply\":{\"reasoning\":\"think\",\"tool_calls\":[{\"name\":"
                          "\"get_weather\",\"arguments\":{\"q\":\"{{last_user}}\"}},{\"name\":"
                          "\"other\"}],\"usage\":{\"completion_tokens\":30}}}",
                          &errs);
  REQUIRE(x != NULL);
  fm_turn_spec s = {0};
  fm_tool tools[1] = {{.name = "get_weather"}};
  s.tools = tools;
  s.n_tools = 1;
  fm_match_facts f = facts(AFTER_TOOL);
  fm_turn t;
  REQUIRE(fm_turn_plan_reply(&t, &x->replies[0], &f, &s, 7, 0, false));
  CHECK_EQ_INT(t.n_parts, 3);
  CHECK_EQ_INT(t.parts[0].kind, FM_PART_REASONING);
  CHECK_EQ_INT(t.parts[1].tool, 0);
  CHECK_STR(fm_part_tool_name(&t.parts[2], &s), "other"); /* not offered: named as given */
  CHECK_EQ_INT((int)fm_turn_planned(&t), 30);
  fm_buf all;
  fm_buf_init(&all);
  int tokens = 0;
  while (!fm_turn_done(&t)) {
    char out[FM_GEN_OUT_MAX];
    int part;
    size_t n = fm_turn_next(&t, NULL, out, &part);
    if (part == 1) fm_buf_put(&all, out, n);
    tokens++;
  }
  fm_buf_putc(&all, 0);
  CHECK_EQ_INT(tokens, 30);
  CHECK_STR(all.data, "{\"q\":\"weather?\"}");
  CHECK_STR(fm_turn_finish_reason(&t, FM_WIRE_TOOLS), "tool_calls");
  fm_buf_free(&all);
  fm_turn_free(&t);
  fm_match_facts_free(&f);
  fm_reply_rule_free(x);
}

TEST(faults_read_the_same_conditions) {
  load_cfg();
  fm_config_errors errs = {0};
  cJSON *j = cJSON_Parse("{\"match\":{\"last_user\":\"Paris\",\"test_id\":\"t1\"},\"action\":{"
                         "\"status\":503},\"count\":1}");
  fm_fault *x = fm_fault_parse(j, &cfg, "", &errs);
  cJSON_Delete(j);
  REQUIRE(x != NULL);
  fm_faults fs;
  fm_faults_init(&fs, 1);
  fm_faults_add(&fs, x);
  fm_match_facts f = facts(ASK);
  CHECK(fm_faults_fire(&fs, &f) == NULL); /* another test's (no test id) */
  f.test_id = "t1";
  CHECK(fm_faults_fire(&fs, &f) != NULL);
  CHECK(fm_faults_fire(&fs, &f) == NULL); /* count 1: spent */
  fm_match_facts_free(&f);
  fm_faults_free(&fs);
}

TEST(no_planned_token_is_longer_than_fm_piece_max_whatever_the_usage_asks) {
  load_cfg();
  char json[4200];
  char text[2001];
  memset(text, 'a', 2000);
  text[2000] = 0;
  snprintf(json, sizeof(json),
           "{\"reply\":{\"content\":\"%s\",\"usage\":{\"completion_tokens\":1}}}", text);
  fm_config_errors errs;
  fm_reply_rule *x = rule(json, &errs);
  REQUIRE(x != NULL);
  fm_turn_spec s = {0};
  fm_match_facts f = facts(ASK);
  fm_turn t;
  REQUIRE(fm_turn_plan_reply(&t, &x->replies[0], &f, &s, 7, 0, false));
  size_t total = 0;
  while (!fm_turn_done(&t)) {
    char out[FM_GEN_OUT_MAX];
    int part;
    size_t n = fm_turn_next(&t, NULL, out, &part);
    CHECK(n <= FM_PIECE_MAX);
    total += n;
  }
  CHECK_EQ_INT((int)total, 2000);
  CHECK((int)t.produced >= 8); /* raised from the 1 asked: 2000 bytes need 8 of 252 */
  fm_turn_free(&t);
  fm_match_facts_free(&f);
  fm_reply_rule_free(x);
  fm_config_free(&cfg);
}
