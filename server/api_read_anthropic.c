/* api_read_anthropic.c — reading the Anthropic-compatible Messages request
 * (POST messages) from bytes (api_read.h). The fields are Anthropic's
 * (docs/api.md); the checks run in the order below and the first problem is
 * the answer. */
#include "api_read.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* max_tokens is optional here; without it a completion ends by itself or here. */
#define DEFAULT_MAX_TOKENS 4096

/* ---- tools, thinking, structured output -------------------------------------- */

static bool read_tools(fm_reader *rd, fm_infer_params *p, uint64_t *bytes) {
  fm_turn_spec *t = &p->turn;
  t->wire = FM_WIRE_TOOLS;
  t->parallel = true;
  const cJSON *tools = fm_rd_field(rd, "tools");
  if (tools && !cJSON_IsArray(tools)) {
    fm_rd_bad(rd, "tools",
              "must be an array like [{\"name\": \"get_weather\", \"input_schema\": {\"type\": "
              "\"object\"}}]");
    return false;
  }
  int i = 0;
  for (const cJSON *it = tools ? tools->child : NULL; it; it = it->next, i++) {
    char where[48];
    fm_rd_path(where, sizeof(where), "tools", NULL, i);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(it, "input_schema");
    if (!cJSON_IsObject(it) || (type && !cJSON_IsNull(type) &&
                                !(cJSON_IsString(type) && !strcmp(type->valuestring, "custom")))) {
      fm_rd_bad(rd, where,
                "must be a custom tool {\"name\": ..., \"input_schema\": {...}} (server tools do "
                "not run here)");
      return false;
    }
    if (!schema) {
      char sp[64];
      snprintf(sp, sizeof(sp), "%s.input_schema", where);
      fm_rd_bad(rd, sp, "is required: a JSON Schema object like {\"type\": \"object\"}");
      return false;
    }
    if (!fm_rd_tool(rd, p, it, "input_schema", false, where, bytes)) return false;
  }
  const cJSON *tc = fm_rd_field(rd, "tool_choice");
  if (!tc) return true;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(tc, "type");
  static const char *const how = "must be {\"type\": \"auto\"}, {\"type\": \"any\"}, "
                                 "{\"type\": \"tool\", \"name\": \"...\"} or {\"type\": "
                                 "\"none\"}";
  if (!cJSON_IsObject(tc) || !cJSON_IsString(type)) {
    fm_rd_bad(rd, "tool_choice", "%s", how);
    return false;
  }
  const cJSON *dp = cJSON_GetObjectItemCaseSensitive(tc, "disable_parallel_tool_use");
  if (dp && !cJSON_IsBool(dp)) {
    fm_rd_bad(rd, "tool_choice.disable_parallel_tool_use", "must be true or false");
    return false;
  }
  t->parallel = !cJSON_IsTrue(dp);
  const char *v = type->valuestring;
  if (!strcmp(v, "auto")) {
    t->tool_choice = FM_TOOLS_AUTO;
  } else if (!strcmp(v, "any")) {
    t->tool_choice = FM_TOOLS_REQUIRED;
  } else if (!strcmp(v, "none")) {
    t->tool_choice = FM_TOOLS_NONE;
  } else if (!strcmp(v, "tool")) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(tc, "name");
    t->named = cJSON_IsString(name) ? fm_rd_find_tool(p, name->valuestring) : -1;
    if (t->named < 0) {
      fm_rd_bad(rd, "tool_choice.name", "must name one of the tools offered");
      return false;
    }
    t->tool_choice = FM_TOOLS_NAMED;
  } else {
    fm_rd_bad(rd, "tool_choice.type", "%s", how);
    return false;
  }
  if (t->n_tools == 0 &&
      (t->tool_choice == FM_TOOLS_REQUIRED || t->tool_choice == FM_TOOLS_NAMED)) {
    fm_rd_bad(rd, "tool_choice", "asks for a tool call but no tools are offered; add tools");
    return false;
  }
  return true;
}

static bool read_output(fm_reader *rd, fm_infer_params *p) {
  const cJSON *oc = fm_rd_field(rd, "output_config");
  if (!oc) return true;
  if (!cJSON_IsObject(oc)) {
    fm_rd_bad(
        rd, "output_config",
        "must be an object like {\"format\": {\"type\": \"json_schema\", \"schema\": {...}}}");
    return false;
  }
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(oc, "format");
  if (!f || cJSON_IsNull(f)) return true;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(f, "type");
  if (!cJSON_IsObject(f) || !cJSON_IsString(type) || strcmp(type->valuestring, "json_schema")) {
    fm_rd_bad(rd, "output_config.format", "must be {\"type\": \"json_schema\", \"schema\": {...}}");
    return false;
  }
  return fm_rd_format_schema(rd, p, cJSON_GetObjectItemCaseSensitive(f, "schema"),
                             "output_config.format.schema");
}

/* tool_use blocks (assistant) and tool_result blocks (user) in a message:
 * their ids checked and remembered; *results says whether it answers tools. */
static bool read_tool_blocks(fm_reader *rd, const cJSON *content, int i, fm_tool_ids *ids,
                             bool *results) {
  *results = false;
  int k = 0;
  for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next, k++) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(b, "type");
    if (!cJSON_IsString(type)) continue; /* fm_rd_text_content names it */
    char name[96];
    if (!strcmp(type->valuestring, "tool_use")) {
      const cJSON *id = cJSON_GetObjectItemCaseSensitive(b, "id");
      snprintf(name, sizeof(name), "messages[%d].content[%d].id", i, k);
      if (!cJSON_IsString(id)) {
        fm_rd_bad(rd, name, "is required: the tool_use block's id (\"toolu_...\")");
        return false;
      }
      if (!fm_tool_ids_add(ids, id->valuestring)) {
        fm_rd_fail(rd, 500, "INTERNAL", NULL, "out of memory; retry later");
        return false;
      }
    } else if (!strcmp(type->valuestring, "tool_result")) {
      const cJSON *id = cJSON_GetObjectItemCaseSensitive(b, "tool_use_id");
      snprintf(name, sizeof(name), "messages[%d].content[%d].tool_use_id", i, k);
      if (!cJSON_IsString(id) || !fm_tool_ids_has(ids, id->valuestring)) {
        fm_rd_bad(rd, name,
                  "must be the id of a tool_use block in an earlier assistant message (\"%.64s\" "
                  "answers none)",
                  cJSON_IsString(id) ? id->valuestring : "");
        return false;
      }
      *results = true;
    }
  }
  return true;
}

/* ---- request ---------------------------------------------------------------- */

static bool read_prompt(fm_reader *rd, fm_infer_params *p, uint64_t extra_bytes) {
  uint64_t tokens = FM_TOKENS_PER_CHAT + fm_tokens_for_bytes((size_t)extra_bytes);
  fm_tool_ids ids = {0};
  bool ok = true;
  const cJSON *system = fm_rd_field(rd, "system");
  if (system) {
    fm_prefix_add(&p->prefix, "system\n", 7);
    long n = fm_rd_text_content(rd, system, "system", &p->prefix);
    if (n < 0) return false;
    fm_prefix_add(&p->prefix, "\n", 1);
    tokens += fm_tokens_for_bytes((size_t)n) + FM_TOKENS_PER_MESSAGE;
  }
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(rd->obj, "messages");
  if (!cJSON_IsArray(msgs) || !msgs->child) {
    fm_rd_bad(rd, "messages",
              "is required: a non-empty array like [{\"role\": \"user\", "
              "\"content\": \"Hello\"}]");
    return false;
  }
  int i = 0;
  for (const cJSON *m = msgs->child; m && ok; m = m->next, i++) {
    char name[64];
    snprintf(name, sizeof(name), "messages[%d]", i);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsObject(m)) {
      fm_rd_bad(rd, name, "must be an object with \"role\" and \"content\"");
      ok = false;
      break;
    }
    snprintf(name, sizeof(name), "messages[%d].role", i);
    if (!cJSON_IsString(role) ||
        (strcmp(role->valuestring, "user") != 0 && strcmp(role->valuestring, "assistant") != 0)) {
      fm_rd_bad(rd, name, "must be \"user\" or \"assistant\" (put system text in \"system\")");
      ok = false;
      break;
    }
    fm_prefix_add(&p->prefix, role->valuestring, strlen(role->valuestring));
    fm_prefix_add(&p->prefix, "\n", 1);
    snprintf(name, sizeof(name), "messages[%d].content", i);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (!content) {
      fm_rd_bad(rd, name, "is required");
      ok = false;
      break;
    }
    bool results = false;
    if (!read_tool_blocks(rd, content, i, &ids, &results)) {
      ok = false;
      break;
    }
    if (!strcmp(role->valuestring, "user")) p->turn.after_tool_result = results;
    long n = fm_rd_text_content(rd, content, name, &p->prefix);
    if (n < 0) {
      ok = false;
      break;
    }
    fm_prefix_add(&p->prefix, "\n", 1);
    tokens += fm_tokens_for_bytes((size_t)n) + FM_TOKENS_PER_MESSAGE;
  }
  fm_tool_ids_free(&ids);
  return ok && fm_rd_prompt_fits(rd, p, tokens, "messages");
}

static bool read_request(fm_reader *rd, fm_infer_params *p) {
  if (!fm_rd_model(rd, p)) return false;
  const fm_model_cfg *mc = &rd->in->cfg->models[p->model];
  bool has_max = false;
  long long mt = fm_rd_int(rd, "max_tokens", 1, mc->context_length, 0, &has_max);
  p->max_tokens = (uint32_t)(has_max ? mt : DEFAULT_MAX_TOKENS);
  p->n = 1;
  p->stream = fm_rd_bool(rd, "stream", false);
  p->ignore_eos = fm_rd_bool(rd, "ignore_eos", false);
  fm_rd_context_behavior(rd, p);
  p->seed = rd->in->seed;
  fm_rd_number(rd, "temperature", 0, 1, 1);
  fm_rd_number(rd, "top_p", 0, 1, 1);
  fm_rd_int(rd, "top_k", 0, 100000, 0, NULL);

  const char *user = NULL;
  const cJSON *meta = fm_rd_field(rd, "metadata");
  if (meta) {
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(meta, "user_id");
    if (!cJSON_IsObject(meta))
      fm_rd_bad(rd, "metadata", "must be an object like {\"user_id\": \"...\"}");
    else if (uid && !cJSON_IsNull(uid) && !cJSON_IsString(uid))
      fm_rd_bad(rd, "metadata.user_id", "must be a string");
    else if (cJSON_IsString(uid))
      user = uid->valuestring;
  }
  fm_rd_cache_keys(rd, p, user);

  const cJSON *stops = fm_rd_field(rd, "stop_sequences");
  if (stops) {
    if (!cJSON_IsArray(stops) || cJSON_GetArraySize(stops) > FM_STOP_MAX) {
      fm_rd_bad(rd, "stop_sequences", "must be an array of at most %d strings", FM_STOP_MAX);
    } else {
      for (const cJSON *it = stops->child; it && !rd->failed; it = it->next) {
        if (!cJSON_IsString(it) || strlen(it->valuestring) > FM_STOP_MAX_BYTES)
          fm_rd_bad(rd, "stop_sequences", "must hold strings of at most %d bytes",
                    FM_STOP_MAX_BYTES);
        else if (*it->valuestring)
          p->stop[p->n_stop++] = strdup(it->valuestring);
      }
    }
  }

  const char *tier = fm_rd_string(rd, "service_tier");
  if (rd->failed) return false;
  static const fm_tier_name tiers[] = {{"auto", FM_TIER_STANDARD},
                                       {"standard_only", FM_TIER_STANDARD},
                                       {"priority", FM_TIER_PRIORITY},
                                       {NULL, FM_TIER_STANDARD}};
  fm_rd_tier_named(rd, p, tier, tiers);
  if (rd->failed) return false;
  uint64_t tool_bytes = 0;
  const cJSON *th = fm_rd_field(rd, "thinking");
  if (th && !fm_rd_thinking(rd, p, th, p->max_tokens)) return false;
  /* the Anthropic API thinks only when asked: no thinking field, no thinking */
  if (!th) p->turn.effort = FM_EFFORT_NONE;
  return read_tools(rd, p, &tool_bytes) && read_output(rd, p) && fm_rd_turn_done(rd, p, true) &&
         read_prompt(rd, p, tool_bytes);
}

bool fm_read_messages(const fm_read_in *in, fm_infer_params *p, fm_api_err *e) {
  memset(p, 0, sizeof(*p));
  fm_prefix_init(&p->prefix);
  cJSON *root = fm_rd_parse_scratch(in, e);
  if (!root) return false;
  fm_reader rd = {.in = in, .obj = root, .err = e};
  bool ok = read_request(&rd, p);
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
  p->route = "messages";
  return true;
}
