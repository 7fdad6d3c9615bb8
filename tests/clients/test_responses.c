/* test_responses.c — the C client's Responses wire without a server
 * (clients/c/fleetclient_responses.c): chat-form messages, tools and
 * tool_choice as Responses input items and flat tools, the body of an
 * attempt, and the answer read back from a response object or from its
 * typed stream events into the result chat completions fill.
 *
 * JSON is written with single quotes (Q() turns them into double quotes)
 * and compared after a round trip through cJSON, so a failure prints both
 * texts in the same form. */
#include "../unit/check.h"

#include <cjson/cJSON.h>
#include <fleetclient_internal.h>
#include <stdbool.h>

/* s with every ' turned into ", in a buffer of the caller's (one of 4, reused in turn). */
static const char *Q(const char *s) {
  static char bufs[4][8192];
  static int next;
  char *b = bufs[next++ % 4];
  size_t i = 0;
  for (; s[i] && i < sizeof bufs[0] - 1; i++)
    b[i] = s[i] == '\'' ? '"' : s[i];
  b[i] = '\0';
  return b;
}

static char *last_text;
static void free_last_text(void) {
  free(last_text);
}

/* The JSON text of o, for comparing (freed by the next call, or at exit). */
static const char *text_of(const cJSON *o) {
  static bool registered;
  if (!registered) registered = atexit(free_last_text) == 0;
  free(last_text);
  last_text = o ? cJSON_PrintUnformatted(o) : NULL;
  return last_text ? last_text : "(null)";
}

/* Checks that o prints as the single-quoted JSON `want` does. */
#define CHECK_JSON(o, want)                                                                        \
  do {                                                                                             \
    cJSON *w_ = cJSON_Parse(Q(want));                                                              \
    REQUIRE(w_ != NULL);                                                                           \
    char *ws_ = cJSON_PrintUnformatted(w_);                                                        \
    CHECK_STR(text_of(o), ws_);                                                                    \
    free(ws_);                                                                                     \
    cJSON_Delete(w_);                                                                              \
  } while (0)

TEST(messages_become_input_items) {
  cJSON *msgs = cJSON_Parse(
      Q("[{'role':'system','content':'be brief'},"
        "{'role':'user','content':'find the logs'},"
        "{'role':'assistant','content':null,'tool_calls':["
        "{'id':'call_a','type':'function','function':{'name':'search','arguments':'{\\'q\\':1}'}},"
        "{'id':'call_b','type':'function','function':{'name':'read','arguments':'{}'}}]},"
        "{'role':'tool','tool_call_id':'call_a','content':'3 results'},"
        "{'role':'tool','tool_call_id':'call_b','content':[{'type':'text','text':'42 '},"
        "{'type':'text','text':'lines'}]},"
        "{'role':'system','content':'stay on task'},"
        "{'role':'user','content':[{'type':'text','text':'go on'},"
        "{'type':'image_url','image_url':{'url':'data:x'}}]},"
        "{'role':'assistant','content':'done.','tool_calls':[{'id':'call_c','type':'function',"
        "'function':{'name':'ask','arguments':'{}'}}]},"
        "{'role':'assistant','content':[{'type':'text','text':'more'}]}]"));
  REQUIRE(msgs != NULL);
  const char *instructions = NULL;
  cJSON *input = fm_responses_input(msgs, &instructions);
  REQUIRE(input != NULL);
  CHECK_STR(instructions ? instructions : "(null)", "be brief");
  CHECK_JSON(
      input,
      "[{'type':'message','role':'user','content':'find the logs'},"
      "{'type':'function_call','call_id':'call_a','name':'search','arguments':'{\\'q\\':1}'},"
      "{'type':'function_call','call_id':'call_b','name':'read','arguments':'{}'},"
      "{'type':'function_call_output','call_id':'call_a','output':'3 results'},"
      "{'type':'function_call_output','call_id':'call_b','output':'42 lines'},"
      "{'type':'message','role':'system','content':'stay on task'},"
      "{'type':'message','role':'user','content':[{'type':'input_text','text':'go on'},"
      "{'type':'input_image','image_url':'data:x'}]},"
      "{'type':'message','role':'assistant','content':'done.'},"
      "{'type':'function_call','call_id':'call_c','name':'ask','arguments':'{}'},"
      "{'type':'message','role':'assistant','content':[{'type':'output_text',"
      "'text':'more'}]}]");
  cJSON_Delete(input);
  cJSON_Delete(msgs);
}

TEST(only_a_first_system_message_is_the_instructions) {
  cJSON *msgs = cJSON_Parse(Q("[{'role':'user','content':'hi'},{'role':'system','content':'s'}]"));
  const char *instructions = "unset";
  cJSON *input = fm_responses_input(msgs, &instructions);
  CHECK(instructions == NULL);
  CHECK_JSON(input, "[{'type':'message','role':'user','content':'hi'},"
                    "{'type':'message','role':'system','content':'s'}]");
  cJSON_Delete(input);
  cJSON_Delete(msgs);
}

TEST(chat_tools_become_flat_function_tools) {
  cJSON *tools = cJSON_Parse(
      Q("[{'type':'function','function':{'name':'search','description':'Search.',"
        "'parameters':{'type':'object','properties':{'q':{'type':'string'}}},'strict':true}},"
        "{'type':'function','name':'read','parameters':{}}]"));
  cJSON *flat = fm_responses_tools(tools);
  CHECK_JSON(flat, "[{'type':'function','name':'search','description':'Search.',"
                   "'parameters':{'type':'object','properties':{'q':{'type':'string'}}},"
                   "'strict':true},"
                   "{'type':'function','name':'read','parameters':{}}]");
  cJSON_Delete(flat);
  cJSON_Delete(tools);
}

TEST(tool_choice_strings_pass_and_objects_flatten) {
  const char *strings[] = {"auto", "none", "required"};
  for (int i = 0; i < 3; i++) {
    cJSON *tc = fm_responses_tool_choice(strings[i]);
    CHECK(cJSON_IsString(tc) && strcmp(tc->valuestring, strings[i]) == 0);
    cJSON_Delete(tc);
  }
  cJSON *tc = fm_responses_tool_choice(Q("{'type':'function','function':{'name':'read'}}"));
  CHECK_JSON(tc, "{'type':'function','name':'read'}");
  cJSON_Delete(tc);
  tc = fm_responses_tool_choice(Q("{'type':'function','name':'read'}"));
  CHECK_JSON(tc, "{'type':'function','name':'read'}");
  cJSON_Delete(tc);
  CHECK(fm_responses_tool_choice("{not json") == NULL);
}

TEST(a_prompt_body_names_the_responses_fields) {
  fm_chat_request req = {
      .system = "sys", .prompt = "hi", .max_tokens = 48, .stream = true, .cache_key = "chain-1"};
  fm_responses_req rr = {.model = "m", .req = &req};
  char *body = fm_responses_body(&rr, FM_PRIORITY);
  cJSON *o = cJSON_Parse(body);
  CHECK_JSON(o, "{'model':'m','input':'hi','instructions':'sys','max_output_tokens':48,"
                "'stream':true,'service_tier':'priority','prompt_cache_key':'chain-1',"
                "'store':false}");
  cJSON_Delete(o);
  free(body);
  req = (fm_chat_request){.prompt = "hi"};
  body = fm_responses_body(&rr, FM_STANDARD); /* Standard is not named, as on chat */
  o = cJSON_Parse(body);
  CHECK_JSON(o, "{'model':'m','input':'hi','store':false}");
  cJSON_Delete(o);
  free(body);
}

TEST(a_conversation_body_carries_items_tools_and_choice) {
  cJSON *msgs =
      cJSON_Parse(Q("[{'role':'system','content':'agent'},{'role':'user','content':'go'}]"));
  cJSON *chat_tools = cJSON_Parse(Q("[{'type':'function','function':{'name':'run'}}]"));
  const char *instructions;
  cJSON *input = fm_responses_input(msgs, &instructions);
  cJSON *tools = fm_responses_tools(chat_tools);
  fm_chat_request req = {.system = "ignored: the messages have their own",
                         .messages = "(parsed above)",
                         .tool_choice = Q("{'type':'function','function':{'name':'run'}}"),
                         .max_tokens = 64};
  fm_responses_req rr = {
      .model = "m", .req = &req, .input = input, .instructions = instructions, .tools = tools};
  char *body = fm_responses_body(&rr, FM_STANDARD);
  cJSON *o = cJSON_Parse(body);
  CHECK_JSON(o, "{'model':'m','input':[{'type':'message','role':'user','content':'go'}],"
                "'instructions':'agent','tools':[{'type':'function','name':'run'}],"
                "'tool_choice':{'type':'function','name':'run'},'max_output_tokens':64,"
                "'store':false}");
  cJSON_Delete(o);
  free(body);
  cJSON_Delete(tools);
  cJSON_Delete(input);
  cJSON_Delete(chat_tools);
  cJSON_Delete(msgs);
}

/* Checks one tool call of a result: its id, name, arguments and whether they parse. */
#define CHECK_CALL(t, id_, name_, args_, ok_)                                                      \
  do {                                                                                             \
    CHECK_STR((t).id, id_);                                                                        \
    CHECK_STR((t).name, name_);                                                                    \
    CHECK_STR((t).arguments, args_);                                                               \
    CHECK_EQ_INT((t).arguments_ok, ok_);                                                           \
  } while (0)

/* An answer being read, and the result it lands in. */
typedef struct reading {
  fm_chat_result res;
  fm_answer ans;
} reading;

static void reading_start(reading *r) {
  memset(r, 0, sizeof *r);
  r->ans.res = &r->res;
}

static void reading_end(reading *r) {
  fm_answer_free(&r->ans);
  fm_chat_result_free(&r->res);
}

static void read_response(reading *r, const char *json) {
  cJSON *o = cJSON_Parse(Q(json));
  REQUIRE(o != NULL);
  fm_responses_read(&r->ans, o);
  cJSON_Delete(o);
}

/* Feeds the events, one single-quoted JSON object per element, NULL-ended. */
static void read_events(reading *r, const char *const *events) {
  for (; *events; events++) {
    cJSON *o = cJSON_Parse(Q(*events));
    REQUIRE(o != NULL);
    fm_responses_event(&r->ans, o);
    cJSON_Delete(o);
  }
}

TEST(a_response_object_gives_text_calls_finish_and_usage) {
  reading r;
  reading_start(&r);
  read_response(&r,
                "{'id':'resp_1','object':'response','status':'completed','output':["
                "{'id':'rs_1','type':'reasoning','summary':[],'content':[{'type':'reasoning_text',"
                "'text':'thinking'}]},"
                "{'id':'msg_1','type':'message','status':'completed','role':'assistant','content':["
                "{'type':'output_text','text':'Let me look. ','annotations':[]},"
                "{'type':'output_text','text':'Now.'}]},"
                "{'id':'fc_1','type':'function_call','status':'completed','call_id':'call_x',"
                "'name':'read','arguments':'{\\'url\\':\\'logs\\'}'},"
                "{'id':'fc_2','type':'function_call','status':'completed','call_id':'call_y',"
                "'name':'search','arguments':'{\\'q\\''}],"
                "'usage':{'input_tokens':36,'input_tokens_details':{'cached_tokens':16},"
                "'output_tokens':12,'total_tokens':48}}");
  CHECK(!r.ans.failed);
  REQUIRE(fm_answer_finish(&r.ans) == 0);
  CHECK_STR(r.res.content, "Let me look. Now.");
  CHECK_STR(r.res.finish_reason, "tool_calls");
  REQUIRE(r.res.n_tool_calls == 2);
  CHECK_CALL(r.res.tool_calls[0], "call_x", "read", "{\"url\":\"logs\"}", true);
  CHECK_CALL(r.res.tool_calls[1], "call_y", "search", "{\"q\"", false); /* cut: not an object */
  CHECK_EQ_INT(r.res.prompt_tokens, 36);
  CHECK_EQ_INT(r.res.cached_tokens, 16);
  CHECK_EQ_INT(r.res.completion_tokens, 12);
  reading_end(&r);
}

TEST(the_status_sets_the_finish_reason) {
  static const struct {
    const char *response, *finish;
  } cases[] = {
      {"{'status':'completed','output':[{'type':'message','content':[{'type':'output_text',"
       "'text':'ok'}]}]}",
       "stop"},
      {"{'status':'incomplete','incomplete_details':{'reason':'max_output_tokens'},'output':["
       "{'type':'message','content':[{'type':'output_text','text':'cut'}]}]}",
       "length"},
      {"{'status':'incomplete','output':[{'type':'function_call','call_id':'c','name':'run',"
       "'arguments':'{'}]}",
       "length"}, /* a call the limit cut: "length", as chat says for the same turn */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    reading r;
    reading_start(&r);
    read_response(&r, cases[i].response);
    CHECK_STR(r.res.finish_reason, cases[i].finish);
    CHECK(!r.ans.failed);
    reading_end(&r);
  }
}

TEST(a_failed_response_object_is_a_failure_with_its_message) {
  reading r;
  reading_start(&r);
  read_response(&r, "{'status':'failed','error':{'type':'server_error','code':'server_error',"
                    "'message':'the replica went away'},'output':[]}");
  CHECK(r.ans.failed);
  CHECK_STR(r.res.error, "the replica went away");
  reading_end(&r);
}

/* What fleetmock streams for a turn with text and two calls, abridged to
 * the fields read: the whole-item events repeat what the deltas said. */
static const char *const stream_events[] = {
    "{'type':'response.created','sequence_number':0,'response':{'status':'in_progress',"
    "'output':[],'usage':null}}",
    "{'type':'response.in_progress','sequence_number':1,'response':{'status':'in_progress'}}",
    "{'type':'response.output_item.added','output_index':0,'item':{'id':'msg_1',"
    "'type':'message','status':'in_progress','role':'assistant','content':[]}}",
    "{'type':'response.content_part.added','output_index':0,'content_index':0,"
    "'part':{'type':'output_text','text':''}}",
    "{'type':'response.output_text.delta','item_id':'msg_1','output_index':0,"
    "'content_index':0,'delta':'Hel'}",
    "{'type':'response.output_text.delta','item_id':'msg_1','output_index':0,"
    "'content_index':0,'delta':'lo'}",
    "{'type':'response.output_text.done','output_index':0,'text':'Hello'}",
    "{'type':'response.output_item.done','output_index':0,'item':{'id':'msg_1',"
    "'type':'message','content':[{'type':'output_text','text':'Hello'}]}}",
    "{'type':'response.output_item.added','output_index':1,'item':{'id':'fc_1',"
    "'type':'function_call','status':'in_progress','call_id':'call_s','name':'search',"
    "'arguments':''}}",
    "{'type':'response.output_item.added','output_index':2,'item':{'id':'fc_2',"
    "'type':'function_call','status':'in_progress','call_id':'call_r','name':'read',"
    "'arguments':''}}",
    "{'type':'response.function_call_arguments.delta','item_id':'fc_1','output_index':1,"
    "'delta':'{\\'qu'}",
    "{'type':'response.function_call_arguments.delta','item_id':'fc_2','output_index':2,"
    "'delta':'{\\'url\\':'}",
    "{'type':'response.function_call_arguments.delta','item_id':'fc_1','output_index':1,"
    "'delta':'ery\\':\\'x\\'}'}",
    "{'type':'response.function_call_arguments.done','item_id':'fc_1','output_index':1,"
    "'name':'search','arguments':'{\\'query\\':\\'x\\'}'}",
    "{'type':'response.output_item.done','output_index':1,'item':{'id':'fc_1',"
    "'type':'function_call','status':'completed','call_id':'call_s','name':'search',"
    "'arguments':'{\\'query\\':\\'x\\'}'}}",
    "{'type':'response.function_call_arguments.delta','item_id':'fc_2','output_index':2,"
    "'delta':'\\'logs\\'}'}",
    "{'type':'response.completed','response':{'status':'completed','output':[],"
    "'usage':{'input_tokens':40,'input_tokens_details':{'cached_tokens':32},"
    "'output_tokens':9}}}",
    NULL};

TEST(stream_events_assemble_text_and_calls_once) {
  reading r;
  reading_start(&r);
  read_events(&r, stream_events);
  CHECK(r.ans.ended);
  CHECK(!r.ans.failed);
  REQUIRE(fm_answer_finish(&r.ans) == 0);
  CHECK_STR(r.res.content, "Hello");
  CHECK_STR(r.res.finish_reason, "tool_calls");
  REQUIRE(r.res.n_tool_calls == 2);
  CHECK_CALL(r.res.tool_calls[0], "call_s", "search", "{\"query\":\"x\"}", true);
  CHECK_CALL(r.res.tool_calls[1], "call_r", "read", "{\"url\":\"logs\"}", true); /* deltas only */
  CHECK_EQ_INT(r.res.prompt_tokens, 40);
  CHECK_EQ_INT(r.res.cached_tokens, 32);
  CHECK_EQ_INT(r.res.completion_tokens, 9);
  reading_end(&r);
}

TEST(a_stream_cut_before_its_end_event_has_not_ended) {
  reading r;
  reading_start(&r);
  const char *const cut[] = {stream_events[0], stream_events[4], stream_events[5], NULL};
  read_events(&r, cut);
  CHECK(!r.ans.ended);
  CHECK(!r.ans.failed);
  reading_end(&r);
}

TEST(an_incomplete_stream_ends_with_length) {
  reading r;
  reading_start(&r);
  const char *const events[] = {
      "{'type':'response.output_text.delta','output_index':0,'delta':'cut sho'}",
      "{'type':'response.incomplete','response':{'status':'incomplete','incomplete_details':"
      "{'reason':'max_output_tokens'},'usage':{'input_tokens':5,'output_tokens':2}}}",
      NULL};
  read_events(&r, events);
  CHECK(r.ans.ended);
  CHECK(!r.ans.failed);
  CHECK_STR(r.res.finish_reason, "length");
  CHECK_EQ_INT(r.res.completion_tokens, 2);
  reading_end(&r);
}

TEST(response_failed_and_error_events_fail_the_stream) {
  static const struct {
    const char *events[3], *error;
  } cases[] = {
      {{"{'type':'response.output_text.delta','output_index':0,'delta':'par'}",
        "{'type':'response.failed','response':{'status':'failed','error':{'type':'server_error',"
        "'code':'server_error','message':'injected fault after 1 tokens'}}}",
        NULL},
       "injected fault after 1 tokens"},
      {{"{'type':'response.failed','response':{}}", NULL}, "response failed"},
      {{"{'type':'error','code':'server_error','message':'boom'}", NULL}, "boom"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    reading r;
    reading_start(&r);
    read_events(&r, cases[i].events);
    CHECK(r.ans.failed);
    CHECK_STR(r.res.error, cases[i].error);
    reading_end(&r);
  }
}

TEST(a_reset_answer_forgets_the_last_attempt) {
  reading r;
  reading_start(&r);
  read_events(&r, stream_events);
  fm_answer_reset(&r.ans);
  const char *const again[] = {
      "{'type':'response.output_text.delta','output_index':0,'delta':'second'}",
      "{'type':'response.completed','response':{'status':'completed'}}", NULL};
  read_events(&r, again);
  REQUIRE(fm_answer_finish(&r.ans) == 0);
  CHECK_STR(r.res.content, "second");
  CHECK_EQ_INT(r.res.n_tool_calls, 0);
  CHECK_STR(r.res.finish_reason, "stop");
  reading_end(&r);
}
