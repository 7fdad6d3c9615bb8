/* test_chain.c — fleetdrill's agent chain (clients/fleetdrill/chain.c) on
 * hand-made answers: which step wants a tool call, which wants the final
 * answer, what the conversation holds after each step, and its bound.
 * No server: a step's answer is an fm_chat_result built here. */
#include "../unit/check.h"

#include "chain.h"

#include <cjson/cJSON.h>

/* An answer with n calls of `tool` (arguments `args`), or text when n is 0. */
static fm_chat_result answer(int n, const char *tool, const char *args) {
  static fm_tool_call calls[4];
  static char ids[4][32];
  fm_chat_result r = {.outcome = FM_OUTCOME_OK, .status = 200, .content = ""};
  for (int i = 0; i < n; i++) {
    snprintf(ids[i], sizeof ids[i], "call_%024d", i);
    calls[i] = (fm_tool_call){
        .id = ids[i], .name = (char *)tool, .arguments = (char *)args, .arguments_ok = false};
    cJSON *parsed = cJSON_ParseWithOpts(args, NULL, true); /* as the library judges them */
    calls[i].arguments_ok = cJSON_IsObject(parsed);
    cJSON_Delete(parsed);
  }
  r.tool_calls = n ? calls : NULL;
  r.n_tool_calls = n;
  snprintf(r.finish_reason, sizeof r.finish_reason, "%s", n ? "tool_calls" : "stop");
  return r;
}

static cJSON *sent(fd_chain *c) {
  char *s = fd_chain_messages(c);
  cJSON *m = cJSON_Parse(s);
  free(s);
  return m;
}

static const char *role(const cJSON *msgs, int i) {
  return cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, i), "role")->valuestring;
}

TEST(a_chain_of_four_steps_is_three_tool_steps_then_an_answer) {
  fd_chain c = {0};
  REQUIRE(fd_chain_begin(&c, 0xabc, 4) == 0);
  CHECK(fd_chain_running(&c));
  cJSON *m = sent(&c);
  CHECK_EQ_INT(cJSON_GetArraySize(m), 2);
  CHECK_STR(role(m, 0), "system");
  CHECK_STR(role(m, 1), "user");
  cJSON_Delete(m);

  fm_chat_result two = answer(2, "search", "{\"query\":\"slow api\"}");
  CHECK_EQ_INT(fd_chain_take(&c, &two), FD_CHAIN_NEXT);
  CHECK_EQ_INT(c.step, 2);
  m = sent(&c); /* system, task, assistant, tool, tool, "continue: step 2 of 4" */
  CHECK_EQ_INT(cJSON_GetArraySize(m), 6);
  cJSON *a = cJSON_GetArrayItem(m, 2);
  CHECK_STR(role(m, 2), "assistant");
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(a, "content")));
  cJSON *call = cJSON_GetArrayItem(cJSON_GetObjectItem(a, "tool_calls"), 1);
  CHECK_STR(cJSON_GetObjectItem(call, "id")->valuestring, "call_000000000000000000000001");
  CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(call, "function"), "arguments")->valuestring,
            "{\"query\":\"slow api\"}");
  CHECK_STR(role(m, 3), "tool");
  CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 4), "tool_call_id")->valuestring,
            "call_000000000000000000000001");
  CHECK_STR(role(m, 5), "user");
  CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 5), "content")->valuestring,
            "continue: step 2 of 4");
  cJSON_Delete(m);

  fm_chat_result one = answer(1, "read", "{\"url\":\"logs\"}");
  CHECK_EQ_INT(fd_chain_take(&c, &one), FD_CHAIN_NEXT);
  CHECK_EQ_INT(fd_chain_take(&c, &one), FD_CHAIN_NEXT);
  m = sent(&c); /* step 3's results end the conversation: no new user message */
  CHECK_EQ_INT(cJSON_GetArraySize(m), 6 + 3 + 2);
  CHECK_STR(role(m, 8), "user");
  CHECK_STR(role(m, 9), "assistant");
  CHECK_STR(role(m, 10), "tool");
  cJSON_Delete(m);

  fm_chat_result text = answer(0, NULL, "");
  CHECK_EQ_INT(fd_chain_take(&c, &text), FD_CHAIN_DONE);
  fd_chain_end(&c);
  CHECK(!fd_chain_running(&c));
}

TEST(text_where_a_tool_call_was_due_breaks_the_chain) {
  fd_chain c = {0};
  REQUIRE(fd_chain_begin(&c, 1, 3) == 0);
  fm_chat_result text = answer(0, NULL, "");
  CHECK_EQ_INT(fd_chain_take(&c, &text), FD_CHAIN_BROKEN_NO_CALL);
  CHECK_STR(fd_chain_verdict_name(FD_CHAIN_BROKEN_NO_CALL), "chain broken: expected tool call");
  fd_chain_end(&c);
}

TEST(a_tool_call_where_the_final_answer_was_due_breaks_the_chain) {
  fd_chain c = {0};
  REQUIRE(fd_chain_begin(&c, 1, 3) == 0);
  fm_chat_result call = answer(1, "run", "{\"command\":\"uptime\"}");
  CHECK_EQ_INT(fd_chain_take(&c, &call), FD_CHAIN_NEXT);
  CHECK_EQ_INT(fd_chain_take(&c, &call), FD_CHAIN_NEXT);
  CHECK_EQ_INT(fd_chain_take(&c, &call), FD_CHAIN_BROKEN_NO_TEXT);
  fd_chain_end(&c);
}

TEST(a_final_answer_cut_by_max_tokens_still_completes_the_chain) {
  fd_chain c = {0};
  REQUIRE(fd_chain_begin(&c, 1, 3) == 0);
  fm_chat_result call = answer(1, "ask", "{\"question\":\"go\"}");
  fd_chain_take(&c, &call);
  fd_chain_take(&c, &call);
  fm_chat_result text = answer(0, NULL, "");
  snprintf(text.finish_reason, sizeof text.finish_reason, "length");
  CHECK_EQ_INT(fd_chain_take(&c, &text), FD_CHAIN_DONE);
  fd_chain_end(&c);
}

TEST(calls_that_are_not_whole_are_invalid) {
  fd_chain c = {0};
  REQUIRE(fd_chain_begin(&c, 1, 3) == 0);
  fm_chat_result bad = answer(1, "search", "{\"query\":");
  CHECK_EQ_INT(fd_chain_take(&c, &bad), FD_CHAIN_BROKEN_BAD_CALL); /* arguments not JSON */
  bad = answer(1, "delete", "{}");
  CHECK_EQ_INT(fd_chain_take(&c, &bad), FD_CHAIN_BROKEN_BAD_CALL); /* a tool not offered */
  bad = answer(1, "search", "{}");
  bad.tool_calls[0].id = NULL;
  CHECK_EQ_INT(fd_chain_take(&c, &bad), FD_CHAIN_BROKEN_BAD_CALL); /* no id to answer */
  bad = answer(1, "search", "{}");
  snprintf(bad.finish_reason, sizeof bad.finish_reason, "length");
  CHECK_EQ_INT(fd_chain_take(&c, &bad), FD_CHAIN_BROKEN_BAD_CALL); /* cut short */
  CHECK_EQ_INT(c.step, 1);
  fd_chain_end(&c);
}

TEST(the_conversation_drops_its_oldest_tool_steps_past_the_bound) {
  static char args[FD_CHAIN_ARGS_MAX + 1];
  memset(args, 'x', sizeof args - 1);
  memcpy(args, "{\"query\":\"", 10);
  memcpy(args + sizeof args - 3, "\"}", 2);
  fd_chain c = {0};
  REQUIRE(fd_chain_begin(&c, 1, 6) == 0);
  fm_chat_result big = answer(2, "search", args); /* 2 × 4 KiB a step */
  for (int i = 0; i < 5; i++)
    CHECK_EQ_INT(fd_chain_take(&c, &big), FD_CHAIN_NEXT);
  char *s = fd_chain_messages(&c);
  CHECK(strlen(s) <= FD_CHAIN_MAX_BYTES);
  cJSON *m = cJSON_Parse(s);
  free(s);
  CHECK_STR(role(m, 0), "system");
  CHECK_STR(role(m, 1), "user");
  CHECK_STR(role(m, 2), "assistant"); /* whole steps went: every tool result has its call */
  int n = cJSON_GetArraySize(m);
  CHECK_STR(role(m, n - 1), "tool"); /* the last step's results are kept */
  CHECK(n < 2 + 5 * 4);
  cJSON_Delete(m);
  fd_chain_end(&c);
}

TEST(arguments_past_the_bound_are_invalid) {
  static char args[FD_CHAIN_ARGS_MAX + 2];
  memset(args, 'x', sizeof args - 1);
  memcpy(args, "{\"query\":\"", 10);
  memcpy(args + sizeof args - 3, "\"}", 2);
  fd_chain c = {0};
  REQUIRE(fd_chain_begin(&c, 1, 3) == 0);
  fm_chat_result big = answer(1, "search", args);
  CHECK_EQ_INT(fd_chain_take(&c, &big), FD_CHAIN_BROKEN_BAD_CALL);
  fd_chain_end(&c);
}
