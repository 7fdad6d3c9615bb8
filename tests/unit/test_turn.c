/* test_turn.c — planning a turn (the auto rule, forcing, parallel calls,
 * reasoning, the limit) and taking it token by token (turn.h). */
#include "check.h"
#include "schema.h"
#include "turn.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static fm_model_agent agent(void) {
  fm_model_agent a = {.tools = true, .reasoning = true, .auto_probability = 1, .max_parallel = 2};
  a.effort_tokens[FM_EFFORT_LOW] = 8;
  a.effort_tokens[FM_EFFORT_MEDIUM] = 32;
  a.effort_tokens[FM_EFFORT_HIGH] = 64;
  return a;
}

/* A spec offering n tools whose arguments are {"city": string}. */
static fm_turn_spec spec_with_tools(int n) {
  fm_turn_spec s = {0};
  s.tools = calloc((size_t)n, sizeof(fm_tool));
  for (int i = 0; i < n; i++) {
    char name[16];
    snprintf(name, sizeof(name), "tool%d", i);
    s.tools[i].name = strdup(name);
    cJSON *tree = cJSON_Parse("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
                              "\"string\"}},\"required\":[\"city\"]}");
    fm_schema_err e;
    s.tools[i].schema = fm_schema_accept(tree, "tools", &e);
    cJSON_Delete(tree);
  }
  s.n_tools = n;
  s.parallel = true;
  return s;
}

static void spec_free(fm_turn_spec *s) {
  for (int i = 0; i < s->n_tools; i++) {
    free((char *)s->tools[i].name); /* the test owns its names */
    fm_schema_release(s->tools[i].schema);
  }
  free(s->tools);
}

/* Takes the whole turn token by token into the bytes of each part (caller
 * frees); returns the tokens, and in *nonempty (when given) those with bytes. */
static uint32_t drain_counting(fm_turn *t, fm_buf *parts, uint32_t *nonempty) {
  uint32_t tokens = 0, full = 0;
  for (int guard = 0; guard < 100000 && !fm_turn_done(t); guard++) {
    char out[FM_GEN_OUT_MAX];
    int part;
    size_t n = fm_turn_next(t, NULL, out, &part);
    fm_buf_put(&parts[part], out, n);
    full += n > 0;
    tokens++;
  }
  if (nonempty) *nonempty = full;
  return tokens;
}

static uint32_t drain(fm_turn *t, fm_buf *parts) {
  return drain_counting(t, parts, NULL);
}

TEST(no_tools_is_one_text_part_of_the_drawn_length) {
  fm_turn_spec s = {0};
  fm_model_agent a = agent();
  fm_turn t;
  CHECK(fm_turn_plan(&t, &s, &a, 7, 12, 0, false));
  CHECK_EQ_INT(t.n_parts, 1);
  CHECK(t.parts[0].kind == FM_PART_TEXT && !t.parts[0].fixed);
  fm_buf parts[4] = {0};
  CHECK_EQ_INT(drain(&t, parts), 12);
  CHECK_STR(fm_turn_finish_reason(&t, FM_WIRE_TOOLS), "stop");
  fm_buf_free(&parts[0]);
  fm_turn_free(&t);
}

TEST(auto_calls_until_a_tool_result_follows_then_answers) {
  fm_turn_spec s = spec_with_tools(1);
  fm_model_agent a = agent();
  fm_turn t;
  CHECK(fm_turn_plan(&t, &s, &a, 7, 12, 0, false));
  CHECK(t.calls);
  CHECK(t.parts[0].kind == FM_PART_TOOL_CALL);
  CHECK_EQ_INT(t.parts[0].tool, 0);
  fm_buf parts[4] = {0};
  drain(&t, parts);
  cJSON *args = cJSON_ParseWithLength(parts[0].data, parts[0].len);
  CHECK(args && cJSON_IsString(cJSON_GetObjectItem(args, "city")));
  cJSON_Delete(args);
  CHECK_STR(fm_turn_finish_reason(&t, FM_WIRE_TOOLS), "tool_calls");
  CHECK_STR(fm_turn_finish_reason(&t, FM_WIRE_FUNCTIONS), "function_call");
  fm_buf_free(&parts[0]);
  fm_turn_free(&t);

  s.after_tool_result = true;
  CHECK(fm_turn_plan(&t, &s, &a, 7, 12, 0, false));
  CHECK(!t.calls);
  CHECK(t.parts[0].kind == FM_PART_TEXT);
  fm_turn_free(&t);
  s.tool_choice = FM_TOOLS_REQUIRED; /* forcing wins */
  CHECK(fm_turn_plan(&t, &s, &a, 7, 12, 0, false));
  CHECK(t.calls);
  fm_turn_free(&t);
  a.auto_probability = 0; /* auto never calls; required still does */
  CHECK(fm_turn_plan(&t, &s, &a, 7, 12, 0, false));
  CHECK(t.calls);
  fm_turn_free(&t);
  s.tool_choice = FM_TOOLS_AUTO;
  s.after_tool_result = false;
  CHECK(fm_turn_plan(&t, &s, &a, 7, 12, 0, false));
  CHECK(!t.calls);
  fm_turn_free(&t);
  spec_free(&s);
}

TEST(parallel_calls_are_distinct_and_bounded) {
  fm_turn_spec s = spec_with_tools(5);
  s.tool_choice = FM_TOOLS_REQUIRED;
  fm_model_agent a = agent();
  a.max_parallel = 3;
  int seen[4] = {0};
  for (uint64_t seed = 1; seed <= 60; seed++) {
    fm_turn t;
    CHECK(fm_turn_plan(&t, &s, &a, seed, 12, 0, false));
    CHECK(t.n_parts >= 1 && t.n_parts <= 3);
    seen[t.n_parts]++;
    for (int i = 0; i < t.n_parts; i++) {
      CHECK_EQ_INT(t.parts[i].call, i);
      CHECK_EQ_INT((int)strlen(t.parts[i].id), FM_CALL_ID_LEN);
      for (int k = 0; k < i; k++)
        CHECK(t.parts[k].tool != t.parts[i].tool);
    }
    fm_turn_free(&t);
  }
  CHECK(seen[1] && seen[2] && seen[3]);
  s.parallel = false;
  s.tool_choice = FM_TOOLS_NAMED;
  s.named = 4;
  fm_turn t;
  CHECK(fm_turn_plan(&t, &s, &a, 9, 12, 0, false));
  CHECK_EQ_INT(t.n_parts, 1);
  CHECK_EQ_INT(t.parts[0].tool, 4);
  fm_turn_free(&t);
  spec_free(&s);
}

/* A spec answering in JSON: a constant string with two- and three-byte characters. */
static fm_turn_spec spec_unicode_json(void) {
  fm_turn_spec s = {0};
  s.format = FM_FORMAT_JSON_SCHEMA;
  cJSON *tree = cJSON_Parse("{\"const\":\"h\\u00e9llo w\\u00f6rld \\u2603\"}");
  fm_schema_err e;
  s.schema = fm_schema_accept(tree, "response_format", &e);
  cJSON_Delete(tree);
  return s;
}

TEST(planned_bytes_are_cut_in_four_byte_pieces_at_character_ends) {
  fm_turn_spec s = spec_unicode_json();
  CHECK(s.schema != NULL);
  fm_model_agent a = agent();
  fm_turn t;
  CHECK(fm_turn_plan(&t, &s, &a, 3, 99, 0, false));
  CHECK(t.parts[0].fixed);
  size_t total = 0;
  uint32_t tokens = 0;
  while (!fm_turn_done(&t)) {
    char out[FM_GEN_OUT_MAX];
    int part;
    size_t n = fm_turn_next(&t, NULL, out, &part);
    CHECK(n >= 1 && n <= 4 + 3);
    CHECK(((unsigned char)out[0] & 0xC0) != 0x80); /* never starts inside a character */
    total += n;
    tokens++;
  }
  CHECK_EQ_INT((int)total, (int)t.parts[0].bytes.len);
  CHECK_EQ_INT((int)tokens, (int)t.parts[0].tokens);
  CHECK_EQ_INT((int)t.produced, (int)tokens);
  fm_turn_free(&t);
  fm_schema_release(s.schema);
}

TEST(reasoning_comes_first_is_capped_and_counted) {
  fm_turn_spec s = {0};
  s.effort = FM_EFFORT_HIGH;
  fm_model_agent a = agent();
  fm_turn t;
  CHECK(fm_turn_plan(&t, &s, &a, 5, 10, 0, false));
  CHECK_EQ_INT(t.n_parts, 2);
  CHECK(t.parts[0].kind == FM_PART_REASONING);
  CHECK(t.parts[0].tokens >= 32 && t.parts[0].tokens <= 128);
  fm_buf parts[4] = {0};
  uint32_t n = drain(&t, parts);
  CHECK_EQ_INT((int)t.reasoning_produced, (int)t.parts[0].tokens);
  CHECK_EQ_INT((int)n, (int)(t.parts[0].tokens + 10));
  fm_buf_free(&parts[0]);
  fm_buf_free(&parts[1]);
  fm_turn_free(&t);
  s.reasoning_cap = 5;
  CHECK(fm_turn_plan(&t, &s, &a, 5, 10, 0, false));
  CHECK_EQ_INT((int)t.parts[0].tokens, 5);
  fm_turn_free(&t);
  a.reasoning = false; /* a model that does not reason never does */
  CHECK(fm_turn_plan(&t, &s, &a, 5, 10, 0, false));
  CHECK_EQ_INT(t.n_parts, 1);
  fm_turn_free(&t);
}

TEST(max_tokens_cuts_the_plan_and_says_length) {
  fm_turn_spec s = spec_with_tools(1);
  s.tool_choice = FM_TOOLS_REQUIRED;
  s.effort = FM_EFFORT_LOW;
  fm_model_agent a = agent();
  fm_turn t;
  CHECK(fm_turn_plan(&t, &s, &a, 5, 10, 6, true));
  CHECK(t.capped);
  CHECK_EQ_INT((int)fm_turn_planned(&t), 6);
  fm_buf parts[4] = {0};
  CHECK_EQ_INT((int)drain(&t, parts), 6);
  CHECK_STR(fm_turn_finish_reason(&t, FM_WIRE_TOOLS), "length");
  for (int i = 0; i < 4; i++)
    fm_buf_free(&parts[i]);
  fm_turn_free(&t);
  /* a limit that is the context, not max_tokens, cuts without "length" */
  CHECK(fm_turn_plan(&t, &s, &a, 5, 10, 6, false));
  CHECK(!t.capped);
  fm_turn_free(&t);
  spec_free(&s);
}

TEST(the_same_seed_plans_the_same_turn) {
  fm_turn_spec s = spec_with_tools(3);
  s.tool_choice = FM_TOOLS_REQUIRED;
  fm_model_agent a = agent();
  fm_turn t1, t2;
  CHECK(fm_turn_plan(&t1, &s, &a, 42, 10, 0, false));
  CHECK(fm_turn_plan(&t2, &s, &a, 42, 10, 0, false));
  CHECK_EQ_INT(t1.n_parts, t2.n_parts);
  for (int i = 0; i < t1.n_parts; i++) {
    CHECK_STR(t1.parts[i].id, t2.parts[i].id);
    CHECK(t1.parts[i].bytes.len == t2.parts[i].bytes.len &&
          !memcmp(t1.parts[i].bytes.data, t2.parts[i].bytes.data, t1.parts[i].bytes.len));
  }
  fm_turn_free(&t1);
  fm_turn_free(&t2);
  spec_free(&s);
}

/* Takes the whole turn a part at a time, as a non-streaming request with no
 * stop sequences does; returns the tokens and the non-empty ones. */
static uint32_t run_all(fm_turn *t, fm_buf *parts, uint32_t *nonempty) {
  uint32_t tokens = 0;
  *nonempty = 0;
  for (int guard = 0; guard < 100 && !fm_turn_done(t); guard++) {
    int part;
    uint32_t ne;
    tokens += fm_turn_run(t, &part, &ne);
    *nonempty += ne;
    fm_buf_put(&parts[part], t->parts[part].text.data, t->parts[part].text.len);
  }
  return tokens;
}

/* Plans the same turn twice (seed 11); takes one token by token and the
 * other a part at a time; both must say the same bytes, counts and reason. */
static void check_run_matches_next(const fm_turn_spec *s, uint32_t limit, bool max_tokens,
                                   uint32_t spread) {
  fm_model_agent a = agent();
  fm_turn t1, t2;
  CHECK(fm_turn_plan(&t1, s, &a, 11, 40, limit, max_tokens));
  CHECK(fm_turn_plan(&t2, s, &a, 11, 40, limit, max_tokens));
  if (spread) /* a reply's usage: the bytes spread over more tokens than pieces */
    for (int i = 0; i < t1.n_parts; i++)
      if (t1.parts[i].fixed) {
        t1.parts[i].even = t2.parts[i].even = true;
        t1.parts[i].tokens = t2.parts[i].tokens = t1.parts[i].tokens * spread;
      }
  fm_buf p1[8] = {0}, p2[8] = {0};
  CHECK(t1.n_parts <= 8);
  uint32_t nonempty1;
  uint32_t n1 = drain_counting(&t1, p1, &nonempty1);
  uint32_t nonempty2;
  uint32_t n2 = run_all(&t2, p2, &nonempty2);
  CHECK_EQ_INT((int)n1, (int)n2);
  CHECK_EQ_INT((int)nonempty1, (int)nonempty2);
  CHECK_EQ_INT((int)t1.produced, (int)t2.produced);
  CHECK_EQ_INT((int)t1.reasoning_produced, (int)t2.reasoning_produced);
  CHECK_STR(fm_turn_finish_reason(&t1, FM_WIRE_TOOLS), fm_turn_finish_reason(&t2, FM_WIRE_TOOLS));
  for (int i = 0; i < 8; i++) {
    CHECK_EQ_INT((int)p1[i].len, (int)p2[i].len);
    CHECK(p1[i].len == 0 || !memcmp(p1[i].data, p2[i].data, p1[i].len));
    fm_buf_free(&p1[i]);
    fm_buf_free(&p2[i]);
  }
  fm_turn_free(&t1);
  fm_turn_free(&t2);
}

TEST(a_part_at_a_time_says_what_token_by_token_says) {
  fm_turn_spec s = {0};
  check_run_matches_next(&s, 0, false, 0); /* words */
  s.effort = FM_EFFORT_HIGH;
  check_run_matches_next(&s, 0, false, 0); /* reasoning, then words */
  check_run_matches_next(&s, 20, true, 0); /* cut inside the reasoning */
  fm_turn_spec tools = spec_with_tools(3);
  tools.tool_choice = FM_TOOLS_REQUIRED;
  tools.effort = FM_EFFORT_LOW;
  check_run_matches_next(&tools, 0, false, 0); /* reasoning, then parallel calls */
  check_run_matches_next(&tools, 14, true, 0); /* cut inside a call */
  check_run_matches_next(&tools, 0, false, 3); /* calls spread: empty tokens */
  spec_free(&tools);
  fm_turn_spec js = spec_unicode_json();
  CHECK(js.schema != NULL);
  check_run_matches_next(&js, 0, false, 0); /* a JSON answer across characters */
  check_run_matches_next(&js, 0, false, 2);
  fm_schema_release(js.schema);
}

TEST(logprobs_fall_with_rank_and_are_pure) {
  for (uint32_t i = 0; i < 50; i++) {
    double p0 = fm_turn_logprob(9, i, 0), p1 = fm_turn_logprob(9, i, 1),
           p2 = fm_turn_logprob(9, i, 2);
    CHECK(p0 < 0 && p1 < p0 && p2 < p1);
    CHECK(p0 == fm_turn_logprob(9, i, 0));
  }
}
