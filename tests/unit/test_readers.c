/* test_readers.c — the route readers called on plain bytes (api_read.h):
 * a body, a header table and the default config in; a checked request or
 * an error record out. No server, no socket. */
#include "api_read.h"
#include "check.h"
#include "jsonmem.h"

#include <strings.h>

#define KIMI "accounts/fireworks/models/kimi-k2p6"

/* Headers as "name", "value" pairs, ended by NULL. */
static const char *lookup(void *ctx, const char *name) {
  for (const char *const *h = ctx; h && *h; h += 2)
    if (strcasecmp(h[0], name) == 0) return h[1];
  return NULL;
}

static const fm_config *config(void) {
  static fm_config cfg;
  static int ready;
  if (!ready) {
    fm_config_errors errs = {0};
    if (fm_config_load_text(&cfg, NULL, "default", &errs) != 0) abort();
    ready = 1;
  }
  return &cfg;
}

static fm_read_in input(const char *body, const char *const *headers) {
  return (fm_read_in){.body = body,
                      .len = strlen(body),
                      .header = lookup,
                      .header_ctx = (void *)headers,
                      .cfg = config(),
                      .seed = 42};
}

TEST(a_chat_body_reads_into_params_with_the_headers_it_carries) {
  const char *h[] = {"x-session-affinity", "sess-1", "x-fleetmock-fault", "error@3", NULL};
  fm_read_in in = input("{\"model\":\"" KIMI "\",\"messages\":[{\"role\":\"user\",\"content\":"
                        "\"Hello\"}],\"max_tokens\":5,\"n\":2,\"stop\":[\"x\"],\"stream\":true}",
                        h);
  fm_infer_params p;
  fm_api_err e = {0};
  REQUIRE(fm_read_chat(&in, &p, &e));
  CHECK_EQ_INT(e.status, 0);
  CHECK_STR(p.model_name, KIMI);
  CHECK_EQ_INT(p.max_tokens, 5);
  CHECK_EQ_INT(p.n, 2);
  CHECK(p.stream);
  CHECK_EQ_INT(p.n_stop, 1);
  CHECK_STR(p.affinity, "sess-1");
  CHECK_EQ_U64(p.seed, 42); /* none in the body: --seed */
  CHECK_STR(p.route, "chat/completions");
  CHECK(p.account == NULL); /* the live part is the handler's */
  CHECK_EQ_INT(p.fault_kind, FM_HEADER_FAULT_SET);
  CHECK_EQ_INT(p.header_fault.kind, FM_FAULT_ERROR);
  CHECK_EQ_INT(p.header_fault.after_tokens, 3);
  fm_infer_params_free(&p);
}

TEST(a_malformed_fault_header_is_carried_to_where_the_fault_would_fire) {
  const char *h[] = {"x-fleetmock-fault", "101", NULL};
  fm_read_in in = input("{\"model\":\"" KIMI "\",\"prompt\":\"Hi\"}", h);
  fm_infer_params p;
  fm_api_err e = {0};
  REQUIRE(fm_read_completions(&in, &p, &e));
  CHECK_EQ_INT(p.fault_kind, FM_HEADER_FAULT_BAD);
  fm_infer_params_free(&p);
}

TEST(an_unknown_model_is_a_404_record_naming_model) {
  fm_read_in in =
      input("{\"model\":\"acme/nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL);
  fm_infer_params p;
  fm_api_err e = {0};
  CHECK(!fm_read_chat(&in, &p, &e));
  CHECK_EQ_INT(e.status, 404);
  CHECK_STR(e.code, "NOT_FOUND");
  CHECK(e.has_param);
  CHECK_STR(e.param, "model");
  CHECK_STR_PREFIX(e.message, "Model not found, inaccessible, and/or not deployed: \"acme/nope\"");
  CHECK(p.model_name == NULL); /* left empty */
}

TEST(the_first_bad_field_is_the_answer) {
  fm_read_in in =
      input("{\"model\":\"" KIMI "\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
            "\"max_tokens\":0,\"temperature\":9}",
            NULL);
  fm_infer_params p;
  fm_api_err e = {0};
  CHECK(!fm_read_chat(&in, &p, &e));
  CHECK_EQ_INT(e.status, 400);
  CHECK_STR(e.param, "max_tokens");
  CHECK_STR(e.message, "max_tokens: must be between 1 and 262144 (got 0)");
}

TEST(messages_reader_takes_the_key_from_x_api_key_and_the_defaults) {
  const char *h[] = {"x-api-key", "sk-ant", NULL};
  CHECK_STR(fm_read_api_key(lookup, (void *)h, true), "sk-ant");
  CHECK(fm_read_api_key(lookup, (void *)h, false) == NULL); /* only the Anthropic route */
  const char *bearer[] = {"Authorization", "Bearer   k-1", NULL};
  CHECK_STR(fm_read_api_key(lookup, (void *)bearer, false), "k-1");
  fm_read_in in = input("{\"model\":\"" KIMI "\",\"messages\":[{\"role\":\"user\",\"content\":"
                        "[{\"type\":\"text\",\"text\":\"Hi\"}]}]}",
                        h);
  fm_infer_params p;
  fm_api_err e = {0};
  REQUIRE(fm_read_messages(&in, &p, &e));
  CHECK_EQ_INT(p.max_tokens, 4096);
  CHECK_EQ_INT(p.n, 1);
  CHECK_STR(p.route, "messages");
  fm_infer_params_free(&p);
}

TEST(admin_readers_refuse_with_every_problem_and_build_what_they_read) {
  fm_api_err e = {0};
  fm_read_in in = input("{\"match\":{\"tier\":\"gold\"},\"action\":{\"status\":101}}", NULL);
  CHECK(fm_read_fault(&in, &e) == NULL);
  CHECK_EQ_INT(e.status, 400);
  CHECK_STR(e.message,
            "match.tier: must be \"standard\", \"priority\", \"background\" or \"fast\"; "
            "action.status: must be a final HTTP error status between 400 and 599 "
            "(e.g. 503, 429, 500)");

  fm_api_err ok = {0};
  in = input("{\"name\":\"launch-spike\"}", NULL);
  fm_scenario *s = fm_read_scenario(&in, &ok);
  REQUIRE(s);
  CHECK_STR(s->name, "launch-spike");
  fm_scenario_free(s);

  const fm_config *cfg = config();
  fm_pool_cfg pools[16];
  REQUIRE(cfg->n_pools <= 16);
  memcpy(pools, cfg->pools, cfg->n_pools * sizeof(pools[0]));
  int only;
  fm_api_err pe = {0};
  in = input("{\"slots\":8}", NULL);
  REQUIRE(fm_read_pool_patch(&in, "glm-5p1", pools, cfg->n_pools, &only, &pe));
  CHECK_EQ_INT(only, fm_config_find_pool(cfg, "glm-5p1"));
  CHECK_EQ_INT(pools[only].slots, 8);
  fm_api_err nf = {0};
  CHECK(!fm_read_pool_patch(&in, "nope", pools, cfg->n_pools, &only, &nf));
  CHECK_EQ_INT(nf.status, 404);
  CHECK_STR(nf.param, "pool");
}

/* A fake response store for the Responses reader: one stored conversation. */
static bool one_stored(void *ctx, const char *id, bool response, fm_buf *out) {
  (void)ctx;
  if (strcmp(id, "resp_1") != 0) return false;
  fm_buf_puts(
      out, response ? "{\"id\":\"resp_1\",\"output\":[{\"id\":\"msg_1_0\",\"type\":\"message\","
                      "\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":"
                      "\"It is sunny.\"}]}]}"
                    : "\"conv-a\"\n[{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},"
                      "{\"type\":\"function_call\",\"call_id\":\"call_9\",\"name\":\"get_weather\","
                      "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}]");
  return true;
}

TEST(a_responses_conversation_is_the_prompt_of_the_same_chat_messages) {
  /* The same conversation on both routes: tools, instructions, a user
   * message, the assistant's call, its result, the next user message. */
  const char *chat =
      "{\"model\":\"" KIMI "\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
      "\"get_weather\",\"parameters\":{\"type\":\"object\"}}}],\"messages\":["
      "{\"role\":\"system\",\"content\":\"Be brief.\"},"
      "{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},"
      "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_9\",\"type\":"
      "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
      "\\\"Oslo\\\"}\"}}]},"
      "{\"role\":\"tool\",\"tool_call_id\":\"call_9\",\"content\":\"sunny\"},"
      "{\"role\":\"user\",\"content\":\"And tomorrow?\"}]}";
  const char *resp =
      "{\"model\":\"" KIMI "\",\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\","
      "\"parameters\":{\"type\":\"object\"}}],\"instructions\":\"Be brief.\","
      "\"previous_response_id\":\"resp_1\",\"input\":["
      "{\"type\":\"function_call_output\",\"call_id\":\"call_9\",\"output\":\"sunny\"},"
      "{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"And tomorrow?\"}]}]}";
  fm_read_in ci = input(chat, NULL), ri = input(resp, NULL);
  fm_infer_params pc, pr;
  fm_api_err e = {0};
  REQUIRE(fm_read_chat(&ci, &pc, &e));
  REQUIRE(fm_read_responses(&ri, one_stored, NULL, &pr, &e));
  CHECK_EQ_INT(pr.prompt_tokens, pc.prompt_tokens);
  CHECK_EQ_U64(pr.prefix.digest, pc.prefix.digest); /* the same bytes: the same cache blocks */
  CHECK_EQ_U64(pr.prefix.bytes, pc.prefix.bytes);
  CHECK(!pr.turn.after_tool_result && !pc.turn.after_tool_result); /* a user message came after */
  CHECK_STR(pr.route, "responses");
  CHECK_STR(pr.affinity, "conv-a"); /* the conversation's, from the store */
  CHECK(pr.resp->store);
  CHECK_STR_PREFIX(pr.resp->items, "[{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},");
  CHECK_STR_CONTAINS(pr.resp->items, "\"output\":\"sunny\"");
  fm_infer_params_free(&pc);
  fm_infer_params_free(&pr);
}

TEST(responses_reader_refusals_name_the_field) {
  static const struct {
    const char *body, *param;
    int status;
  } cases[] = {
      {"{\"model\":\"" KIMI "\"}", "input", 400},
      {"{\"model\":\"" KIMI "\",\"input\":\"x\",\"previous_response_id\":\"resp_2\"}",
       "previous_response_id", 404},
      {"{\"model\":\"" KIMI "\",\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_1_5\"}]}",
       "input[0].id", 404},
      {"{\"model\":\"" KIMI "\",\"input\":[{\"type\":\"function_call_output\",\"call_id\":"
       "\"call_1\",\"output\":\"x\"}]}",
       "input[0].call_id", 400},
      {"{\"model\":\"" KIMI "\",\"input\":\"x\",\"reasoning\":{\"summary\":\"long\"}}",
       "reasoning.summary", 400},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    fm_read_in in = input(cases[i].body, NULL);
    fm_infer_params p;
    fm_api_err e = {0};
    CHECK(!fm_read_responses(&in, one_stored, NULL, &p, &e));
    CHECK_EQ_INT(e.status, cases[i].status);
    CHECK_STR(e.param, cases[i].param);
    CHECK(p.resp == NULL && p.model_name == NULL);
  }
  /* an item_reference to a stored item reads as the item itself */
  fm_read_in in = input("{\"model\":\"" KIMI "\",\"input\":[{\"role\":\"user\",\"content\":\"q\"},"
                        "{\"type\":\"item_reference\",\"id\":\"msg_1_0\"}]}",
                        NULL);
  fm_infer_params p;
  fm_api_err e = {0};
  REQUIRE(fm_read_responses(&in, one_stored, NULL, &p, &e));
  CHECK_STR_CONTAINS(p.resp->items, "It is sunny.");
  fm_infer_params_free(&p);
}

/* The inference readers parse into the scratch arena (jsonmem.h) and free
 * the whole tree before they return, read or refused: the next request's
 * parse finds the arena idle and draws on it again. */
TEST(the_inference_readers_leave_the_scratch_arena_idle) {
  const char *bodies[] = {
      "{\"model\":\"" KIMI "\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
      "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
      "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}}],"
      "\"response_format\":{\"type\":\"json_object\"},\"stop\":[\"x\"]}",
      "{\"model\":\"" KIMI "\",\"messages\":[{\"role\":\"user\",\"content\":7}]}",     /* refused */
      "{\"model\":\"" KIMI "\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]", /* cut */
  };
  for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
    fm_read_in in = input(bodies[i], NULL);
    fm_infer_params p;
    fm_api_err e = {0};
    unsigned long long drawn = fm_jsonmem_drawn();
    if (fm_read_chat(&in, &p, &e)) fm_infer_params_free(&p);
    CHECK(fm_jsonmem_drawn() > drawn + 5); /* the tree came from the arena */
    CHECK(fm_jsonmem_idle());
  }
  fm_read_in in = input("{\"model\":\"" KIMI "\",\"prompt\":\"Hi\"}", NULL);
  fm_infer_params p;
  fm_api_err e = {0};
  REQUIRE(fm_read_completions(&in, &p, &e));
  fm_infer_params_free(&p);
  CHECK(fm_jsonmem_idle());
  in = input("{\"model\":\"" KIMI "\",\"max_tokens\":50,\"system\":\"Be brief.\",\"tools\":[{"
             "\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}],\"messages\":[{\"role\":"
             "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}]}",
             NULL);
  REQUIRE(fm_read_messages(&in, &p, &e));
  fm_infer_params_free(&p);
  CHECK(fm_jsonmem_idle());
  in = input("{\"model\":\"nomic-ai/nomic-embed-text-v1.5\",\"input\":[\"a\",\"b\"]}", NULL);
  REQUIRE(fm_read_embeddings(&in, &p, &e));
  fm_infer_params_free(&p);
  CHECK(fm_jsonmem_idle());
}

/* A chat request offering the tools in `tools` (a JSON array's text). */
static bool read_tools(const char *tools, fm_infer_params *p, fm_api_err *e) {
  char body[1024];
  snprintf(body, sizeof(body),
           "{\"model\":\"" KIMI "\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
           "\"tools\":%s}",
           tools);
  fm_read_in in = input(body, NULL);
  memset(e, 0, sizeof(*e));
  return fm_read_chat(&in, p, e);
}

TEST(a_tool_definition_is_compiled_once_and_never_taken_for_another) {
  fm_tooldef_cache_clear();
  const char *a = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
                  "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";
  const char *spaced = "[ { \"type\" : \"function\" , \"function\" : { \"name\" : \"get_weather\" "
                       ", \"parameters\" : { \"type\" : \"object\" , \"properties\" : { \"city\" "
                       ": { \"type\" : \"string\" } } } } } ]";
  const char *b = "[{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":"
                  "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";
  fm_infer_params p1, p2, p3, p4;
  fm_api_err e;
  REQUIRE(read_tools(a, &p1, &e));
  REQUIRE(read_tools(a, &p2, &e));
  REQUIRE(read_tools(b, &p3, &e));
  REQUIRE(read_tools(spaced, &p4, &e));
  CHECK(p1.turn.tools[0].def == p2.turn.tools[0].def); /* the same bytes: kept */
  CHECK(p1.turn.tools[0].def != p3.turn.tools[0].def);
  CHECK_STR(p3.turn.tools[0].name, "get_time");
  CHECK_STR(p4.turn.tools[0].name, "get_weather");
  /* the prompt holds the compact definition whatever its spelling */
  CHECK_EQ_U64(p1.prefix.bytes, p4.prefix.bytes);
  CHECK_EQ_U64(p1.prompt_digest, p4.prompt_digest);
  CHECK(p1.prompt_digest != p3.prompt_digest);
  fm_infer_params_free(&p1);
  fm_infer_params_free(&p2);
  fm_infer_params_free(&p3);
  fm_infer_params_free(&p4);
  /* a refused definition is never kept: the same bytes are refused again, by their path */
  const char *bad = "[{\"type\":\"function\",\"function\":{\"name\":\"bad name\"}}]";
  for (int i = 0; i < 2; i++) {
    CHECK(!read_tools(bad, &p1, &e));
    CHECK_EQ_INT(e.status, 400);
    CHECK_STR(e.param, "tools[0].function.name");
  }
  /* a name offered twice is refused even when the definition comes from the memo */
  char twice[512];
  snprintf(twice, sizeof(twice), "[%.*s,%.*s]", (int)strlen(a) - 2, a + 1, (int)strlen(a) - 2,
           a + 1);
  CHECK(!read_tools(twice, &p1, &e));
  CHECK_STR(e.param, "tools[1].function.name");
  fm_tooldef_cache_clear();
}
