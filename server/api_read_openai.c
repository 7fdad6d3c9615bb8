/* api_read_openai.c — reading the OpenAI-compatible requests,
 * chat/completions and completions, from bytes (api_read.h). What the
 * fields mean is in docs/api.md; the checks run in the order below and the
 * first problem is the answer. */
#include "api_read.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fields shared by chat and completions ---------------------------- */

static bool read_common(fm_reader *rd, fm_infer_params *p) {
  if (!fm_rd_model(rd, p)) return false;
  const fm_model_cfg *mc = &rd->in->cfg->models[p->model];

  bool has_max = false, has_mct = false;
  long long ctx = mc->context_length;
  long long mt = fm_rd_int(rd, "max_tokens", 1, ctx, 0, &has_max);
  long long mct = fm_rd_int(rd, "max_completion_tokens", 1, ctx, 0, &has_mct);
  if (has_max && has_mct)
    fm_rd_bad(rd, "max_completion_tokens",
              "send either max_tokens or max_completion_tokens, not both");
  p->max_tokens = (uint32_t)(has_max ? mt : mct);
  p->stream = fm_rd_bool(rd, "stream", false);
  const cJSON *so = fm_rd_field(rd, "stream_options");
  if (so) {
    if (!cJSON_IsObject(so)) {
      fm_rd_bad(rd, "stream_options", "must be an object such as {\"include_usage\": true}");
    } else {
      const cJSON *iu = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
      if (iu && !cJSON_IsNull(iu) && !cJSON_IsBool(iu))
        fm_rd_bad(rd, "stream_options.include_usage", "must be true or false");
      p->include_usage = cJSON_IsTrue(iu);
    }
  }
  p->n = (int)fm_rd_int(rd, "n", 1, 128, 1, NULL);
  fm_rd_number(rd, "temperature", 0, 2, 1);
  fm_rd_number(rd, "top_p", 0, 1, 1);
  fm_rd_number(rd, "frequency_penalty", -2, 2, 0);
  fm_rd_number(rd, "presence_penalty", -2, 2, 0);
  fm_rd_int(rd, "top_k", 0, 100000, 0, NULL);
  const char *user = fm_rd_string(rd, "user");
  const char *pck = fm_rd_string(rd, "prompt_cache_key");
  fm_rd_cache_keys(rd, p, pck && *pck ? pck : user);
  p->ignore_eos = fm_rd_bool(rd, "ignore_eos", false);
  p->perf_metrics = fm_rd_bool(rd, "perf_metrics_in_response", false);
  fm_rd_context_behavior(rd, p);
  bool has_seed = false;
  long long seed = fm_rd_int(rd, "seed", -9007199254740991LL, 9007199254740991LL, 0, &has_seed);
  p->seed = has_seed ? (uint64_t)seed : rd->in->seed;

  const cJSON *stop = fm_rd_field(rd, "stop");
  if (stop) {
    if (cJSON_IsString(stop)) {
      if (*stop->valuestring) p->stop[p->n_stop++] = strdup(stop->valuestring);
    } else if (cJSON_IsArray(stop) && cJSON_GetArraySize(stop) <= FM_STOP_MAX) {
      for (const cJSON *it = stop->child; it && !rd->failed; it = it->next) {
        if (!cJSON_IsString(it))
          fm_rd_bad(rd, "stop", "must hold only strings");
        else if (*it->valuestring)
          p->stop[p->n_stop++] = strdup(it->valuestring);
      }
    } else {
      fm_rd_bad(rd, "stop", "must be a string or an array of at most %d strings", FM_STOP_MAX);
    }
    for (int i = 0; i < p->n_stop && !rd->failed; i++)
      if (strlen(p->stop[i]) > FM_STOP_MAX_BYTES)
        fm_rd_bad(rd, "stop", "each stop sequence must be at most %d bytes", FM_STOP_MAX_BYTES);
  }

  if (rd->failed) return false;
  return fm_rd_openai_tier(rd, p);
}

/* ---- the turn: tools, formats, reasoning, logprobs (chat) ------------------ */

static bool read_tools(fm_reader *rd, fm_infer_params *p, uint64_t *bytes) {
  fm_turn_spec *t = &p->turn;
  const cJSON *tools = fm_rd_field(rd, "tools");
  const cJSON *fns = fm_rd_field(rd, "functions");
  if (tools && fns) {
    fm_rd_bad(rd, "functions", "send either tools or the legacy functions, not both");
    return false;
  }
  const cJSON *list = tools ? tools : fns;
  const char *field = tools ? "tools" : "functions";
  if (list && (!cJSON_IsArray(list))) {
    fm_rd_bad(rd, field,
              tools ? "must be an array like [{\"type\": \"function\", \"function\": {\"name\": "
                      "\"get_weather\", \"parameters\": {...}}}]"
                    : "must be an array like [{\"name\": \"get_weather\", \"parameters\": {...}}]");
    return false;
  }
  t->wire = fns ? FM_WIRE_FUNCTIONS : FM_WIRE_TOOLS;
  int i = 0;
  for (const cJSON *it = list ? list->child : NULL; it; it = it->next, i++) {
    char where[64];
    fm_rd_path(where, sizeof(where), field, NULL, i);
    const cJSON *fn = it;
    if (tools) {
      const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
      fn = cJSON_GetObjectItemCaseSensitive(it, "function");
      if (!cJSON_IsObject(it) || !cJSON_IsString(type) || strcmp(type->valuestring, "function")) {
        fm_rd_bad(rd, where,
                  "must be {\"type\": \"function\", \"function\": {\"name\": ..., "
                  "\"parameters\": {...}}} (only function tools run here)");
        return false;
      }
      char item[40];
      fm_rd_path(item, sizeof(item), "tools", NULL, i);
      fm_rd_path(where, sizeof(where), item, "function", 0);
    }
    if (!cJSON_IsObject(fn)) {
      fm_rd_bad(rd, where, "must be an object with \"name\" and \"parameters\"");
      return false;
    }
    const cJSON *strict = cJSON_GetObjectItemCaseSensitive(fn, "strict");
    if (strict && !cJSON_IsBool(strict) && !cJSON_IsNull(strict)) {
      char sp[96];
      snprintf(sp, sizeof(sp), "%s.strict", where);
      fm_rd_bad(rd, sp, "must be true or false");
      return false;
    }
    if (!fm_rd_tool(rd, p, fn, "parameters", false, where, bytes)) return false;
  }

  /* tool_choice (or the legacy function_call) */
  const cJSON *tc = fm_rd_field(rd, fns ? "function_call" : "tool_choice");
  const char *tcf = fns ? "function_call" : "tool_choice";
  t->tool_choice = FM_TOOLS_AUTO;
  t->parallel = fm_rd_bool(rd, "parallel_tool_calls", true);
  if (!tc) return !rd->failed;
  if (cJSON_IsString(tc)) {
    const char *v = tc->valuestring;
    if (!strcmp(v, "auto"))
      t->tool_choice = FM_TOOLS_AUTO;
    else if (!strcmp(v, "none"))
      t->tool_choice = FM_TOOLS_NONE;
    else if (!fns && (!strcmp(v, "required") || !strcmp(v, "any")))
      t->tool_choice = FM_TOOLS_REQUIRED;
    else {
      fm_rd_bad(rd, tcf,
                fns ? "must be \"auto\", \"none\" or {\"name\": \"...\"}"
                    : "must be \"auto\", \"none\", \"required\", \"any\" or {\"type\": "
                      "\"function\", \"function\": {\"name\": \"...\"}}");
      return false;
    }
  } else {
    const cJSON *fn = fns ? tc : cJSON_GetObjectItemCaseSensitive(tc, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    if (!cJSON_IsObject(tc) || !cJSON_IsString(name)) {
      fm_rd_bad(rd, tcf,
                fns ? "must be \"auto\", \"none\" or {\"name\": \"...\"}"
                    : "as an object must be {\"type\": \"function\", \"function\": {\"name\": "
                      "\"...\"}}");
      return false;
    }
    t->named = fm_rd_find_tool(p, name->valuestring);
    if (t->named < 0) {
      char np[64];
      snprintf(np, sizeof(np), "%s", fns ? "function_call.name" : "tool_choice.function.name");
      fm_rd_bad(rd, np, "names \"%.64s\", which is not among the %s offered; name one of them",
                name->valuestring, fns ? "functions" : "tools");
      return false;
    }
    t->tool_choice = FM_TOOLS_NAMED;
  }
  if (t->n_tools == 0 && t->tool_choice != FM_TOOLS_NONE && t->tool_choice != FM_TOOLS_AUTO) {
    fm_rd_bad(rd, tcf, "asks for a tool call but no tools are offered; add tools or drop %s", tcf);
    return false;
  }
  return !rd->failed;
}

static bool read_format(fm_reader *rd, fm_infer_params *p) {
  const cJSON *rf = fm_rd_field(rd, "response_format");
  if (!rf) return true;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(rf, "type");
  if (!cJSON_IsObject(rf) || !cJSON_IsString(type)) {
    fm_rd_bad(rd, "response_format",
              "must be an object like {\"type\": \"json_object\"} or {\"type\": "
              "\"json_schema\", \"json_schema\": {\"name\": \"...\", \"schema\": {...}}}");
    return false;
  }
  const char *v = type->valuestring;
  if (!strcmp(v, "text")) return true;
  if (!strcmp(v, "json_object")) {
    /* Fireworks' own JSON mode takes a schema right here */
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(rf, "schema");
    if (schema && !cJSON_IsNull(schema))
      return fm_rd_format_schema(rd, p, schema, "response_format.schema");
    p->turn.format = FM_FORMAT_JSON_OBJECT;
    return true;
  }
  if (!strcmp(v, "json_schema")) {
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(js, "schema");
    if (!cJSON_IsObject(js) || !schema) {
      fm_rd_bad(rd, "response_format.json_schema",
                "is required with type json_schema: {\"name\": \"...\", \"schema\": {...}, "
                "\"strict\": true}");
      return false;
    }
    return fm_rd_format_schema(rd, p, schema, "response_format.json_schema.schema");
  }
  if (!strcmp(v, "grammar"))
    return fm_rd_grammar(rd, p, cJSON_GetObjectItemCaseSensitive(rf, "grammar"),
                         "response_format.grammar");
  fm_rd_bad(rd, "response_format.type",
            "must be \"text\", \"json_object\", \"json_schema\" or \"grammar\"");
  return false;
}

static bool read_reasoning(fm_reader *rd, fm_infer_params *p) {
  const cJSON *re = fm_rd_field(rd, "reasoning_effort");
  const cJSON *th = fm_rd_field(rd, "thinking");
  if (re && th) {
    fm_rd_bad(rd, "thinking", "cannot be combined with reasoning_effort; send one of them");
    return false;
  }
  if (th && !fm_rd_thinking(rd, p, th, 0)) return false;
  if (!fm_rd_effort(rd, p, re, "reasoning_effort")) return false;
  return fm_rd_turn_done(rd, p, re || th);
}

static bool read_logprobs(fm_reader *rd, fm_infer_params *p, bool chat) {
  if (!chat) {
    const cJSON *lp = fm_rd_field(rd, "logprobs");
    if (cJSON_IsBool(lp)) {
      p->turn.completion_logprobs = cJSON_IsTrue(lp) ? 1 : 0;
      return true;
    }
    p->turn.completion_logprobs = (int)fm_rd_int(rd, "logprobs", 0, 5, 0, NULL);
    return !rd->failed;
  }
  p->turn.logprobs = fm_rd_bool(rd, "logprobs", false);
  bool has_top = false;
  p->turn.top_logprobs = (int)fm_rd_int(rd, "top_logprobs", 0, FM_TOP_LOGPROBS_MAX, 0, &has_top);
  if (has_top && p->turn.top_logprobs > 0 && !p->turn.logprobs)
    fm_rd_bad(rd, "top_logprobs", "needs \"logprobs\": true");
  return !rd->failed;
}

/* ---- prompts -------------------------------------------------------------- */

/* An assistant message's tool_calls (or legacy function_call): checked,
 * their ids remembered, their JSON counted as prompt text. */
static bool read_calls(fm_reader *rd, const cJSON *m, int i, fm_infer_params *p, fm_tool_ids *ids,
                       long *bytes) {
  const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
  char name[96];
  snprintf(name, sizeof(name), "messages[%d].tool_calls", i);
  if (calls && !cJSON_IsNull(calls) && !cJSON_IsArray(calls)) {
    fm_rd_bad(rd, name,
              "must be an array of {\"id\", \"type\": \"function\", \"function\": "
              "{\"name\", \"arguments\"}}");
    return false;
  }
  int k = 0;
  for (const cJSON *c = cJSON_IsArray(calls) ? calls->child : NULL; c; c = c->next, k++) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    snprintf(name, sizeof(name), "messages[%d].tool_calls[%d]", i, k);
    if (!cJSON_IsString(id) || !cJSON_IsObject(fn) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fn, "name")) ||
        (args && !cJSON_IsString(args))) {
      fm_rd_bad(rd, name,
                "must be {\"id\": \"call_...\", \"type\": \"function\", \"function\": "
                "{\"name\": \"...\", \"arguments\": \"<JSON string>\"}}");
      return false;
    }
    if (!fm_tool_ids_add(ids, id->valuestring)) {
      fm_rd_fail(rd, 500, "INTERNAL", NULL, "out of memory; retry later");
      return false;
    }
    uint64_t b = 0;
    fm_rd_prompt_json(p, fn, &b);
    *bytes += (long)b;
  }
  const cJSON *fc = cJSON_GetObjectItemCaseSensitive(m, "function_call");
  if (fc && !cJSON_IsNull(fc)) {
    uint64_t b = 0;
    fm_rd_prompt_json(p, fc, &b);
    *bytes += (long)b;
  }
  return true;
}

/* "messages[i]" and a suffix, without printf: three of these per message. */
static void message_name(char out[64], int i, const char *suffix) {
  char digits[12];
  size_t nd = 0;
  unsigned u = (unsigned)i;
  do {
    digits[nd++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  size_t n = 0;
  memcpy(out, "messages[", 9);
  n = 9;
  while (nd)
    out[n++] = digits[--nd];
  out[n++] = ']';
  size_t sl = strlen(suffix);
  if (sl > 63 - n) sl = 63 - n;
  memcpy(out + n, suffix, sl);
  out[n + sl] = '\0';
}
static bool read_messages(fm_reader *rd, fm_infer_params *p, uint64_t extra_bytes) {
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(rd->obj, "messages");
  if (!msgs || cJSON_IsNull(msgs)) {
    fm_rd_bad(rd, "messages",
              "is required: an array like [{\"role\": \"user\", \"content\": "
              "\"Hello\"}]");
    return false;
  }
  if (!cJSON_IsArray(msgs) || !msgs->child) {
    fm_rd_bad(rd, "messages",
              "must be a non-empty array like [{\"role\": \"user\", \"content\": "
              "\"Hello\"}]");
    return false;
  }
  static const char *const roles[] = {"system", "user",      "assistant",
                                      "tool",   "developer", "function"};
  uint64_t tokens = FM_TOKENS_PER_CHAT + fm_tokens_for_bytes((size_t)extra_bytes);
  fm_tool_ids ids = {0};
  bool ok = true;
  int i = 0;
  for (const cJSON *m = msgs->child; m && ok; m = m->next, i++) {
    char name[64];
    message_name(name, i, "");
    if (!cJSON_IsObject(m)) {
      fm_rd_bad(rd, name, "must be an object with \"role\" and \"content\"");
      ok = false;
      break;
    }
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    message_name(name, i, ".role");
    bool known = false;
    for (size_t k = 0; cJSON_IsString(role) && k < sizeof(roles) / sizeof(roles[0]); k++)
      known = known || strcmp(role->valuestring, roles[k]) == 0;
    if (!known) {
      fm_rd_bad(rd, name,
                "must be one of \"system\", \"user\", \"assistant\", \"tool\", \"developer\"");
      ok = false;
      break;
    }
    /* The cache sees each message as "role\n" + content + "\n". */
    fm_prefix_add(&p->prefix, role->valuestring, strlen(role->valuestring));
    fm_prefix_add(&p->prefix, "\n", 1);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    long bytes = 0;
    message_name(name, i, ".content");
    if (!content || cJSON_IsNull(content)) {
      if (strcmp(role->valuestring, "assistant") != 0) {
        fm_rd_bad(rd, name, "is required for role \"%s\"", role->valuestring);
        ok = false;
        break;
      }
    } else if ((bytes = fm_rd_text_content(rd, content, name, &p->prefix)) < 0) {
      ok = false;
      break;
    }
    const char *rn = role->valuestring;
    if (!strcmp(rn, "assistant") && !read_calls(rd, m, i, p, &ids, &bytes)) {
      ok = false;
      break;
    }
    if (!strcmp(rn, "user")) p->turn.after_tool_result = false;
    if (!strcmp(rn, "tool") || !strcmp(rn, "function")) p->turn.after_tool_result = true;
    if (!strcmp(rn, "tool")) {
      const cJSON *tid = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
      message_name(name, i, ".tool_call_id");
      if (!cJSON_IsString(tid)) {
        fm_rd_bad(rd, name, "is required for role \"tool\": the id of the call it answers");
        ok = false;
        break;
      }
      if (!fm_tool_ids_has(&ids, tid->valuestring)) {
        fm_rd_bad(rd, name,
                  "\"%.64s\" answers no earlier tool call; use the id of a tool_calls entry in an "
                  "earlier assistant message",
                  tid->valuestring);
        ok = false;
        break;
      }
    }
    fm_prefix_add(&p->prefix, "\n", 1);
    tokens += fm_tokens_for_bytes((size_t)bytes) + FM_TOKENS_PER_MESSAGE;
  }
  fm_tool_ids_free(&ids);
  return ok && fm_rd_prompt_fits(rd, p, tokens, "messages");
}

static bool read_prompt(fm_reader *rd, fm_infer_params *p) {
  const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(rd->obj, "prompt");
  size_t bytes = 0;
  fm_prefix_init(&p->prefix);
  if (cJSON_IsString(prompt)) {
    bytes = strlen(prompt->valuestring);
    fm_prefix_add(&p->prefix, prompt->valuestring, bytes);
  } else if (cJSON_IsArray(prompt) && prompt->child) {
    int i = 0;
    for (const cJSON *it = prompt->child; it; it = it->next, i++) {
      if (!cJSON_IsString(it)) {
        char name[32];
        snprintf(name, sizeof(name), "prompt[%d]", i);
        fm_rd_bad(rd, name, "must be a string");
        return false;
      }
      size_t n = strlen(it->valuestring);
      fm_prefix_add(&p->prefix, it->valuestring, n);
      bytes += n;
    }
  } else {
    fm_rd_bad(rd, "prompt",
              prompt && !cJSON_IsNull(prompt) ? "must be a string or a non-empty array of strings"
                                              : "is required: the text to complete");
    return false;
  }
  return fm_rd_prompt_fits(rd, p, fm_tokens_for_bytes(bytes), "prompt");
}

/* ---- the readers ------------------------------------------------------------ */

static bool read_request(const fm_read_in *in, fm_infer_params *p, fm_api_err *e, bool chat) {
  memset(p, 0, sizeof(*p));
  cJSON *root = fm_rd_parse_scratch(in, e);
  if (!root) return false;
  fm_reader rd = {.in = in, .obj = root, .err = e};
  fm_prefix_init(&p->prefix);
  uint64_t tool_bytes = 0;
  bool ok = read_common(&rd, p) && read_logprobs(&rd, p, chat) &&
            (chat ? read_tools(&rd, p, &tool_bytes) && read_format(&rd, p) &&
                        read_reasoning(&rd, p) && read_messages(&rd, p, tool_bytes)
                  : read_prompt(&rd, p));
  p->body_tree = root; /* what the job matches; freed with p */
  if (!ok) {
    fm_infer_params_free(p);
    return false;
  }
  fm_rd_fault_header(&rd, p);
  if (rd.failed) {
    fm_infer_params_free(p);
    return false;
  }
  p->route = chat ? "chat/completions" : "completions";
  return true;
}

bool fm_read_chat(const fm_read_in *in, fm_infer_params *p, fm_api_err *e) {
  return read_request(in, p, e, true);
}

bool fm_read_completions(const fm_read_in *in, fm_infer_params *p, fm_api_err *e) {
  return read_request(in, p, e, false);
}
