/* api_read_responses.c — reading POST responses (the Responses API) from
 * bytes (api_read.h). What the fields mean is in docs/api.md, "Responses".
 *
 * The input items become the same prompt the equivalent chat messages
 * would: instructions a system message, a message item a message, function
 * calls the assistant message's tool_calls (joined to the assistant message
 * before them), a function_call_output a tool message. So a conversation
 * costs, and hits the prompt cache, the same on both routes. Reasoning items
 * are not prompt text, as reasoning_content is not on chat. */
#include "api_read.h"

#include "buf.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METADATA_MAX 16        /* metadata pairs, as OpenAI bounds them */
#define METADATA_KEY_MAX 64    /* bytes of a metadata key */
#define METADATA_VALUE_MAX 512 /* bytes of a metadata value */
#define OTHER_PART_BYTES 1024  /* an image, file or audio part: a flat 256 tokens */

/* Walking the conversation: the prompt it makes, the call ids it has made. */
typedef struct walk {
  fm_reader *rd;
  fm_infer_params *p;
  uint64_t tokens;
  fm_tool_ids ids;
  bool open;                /* an assistant message is open: function calls join it */
  long open_bytes;          /* its bytes so far */
  fm_buf conv;              /* the items as the store keeps them: a JSON array, open */
  bool keeping;             /* new items go to conv (stored ones are there already) */
  cJSON *msgs;              /* the same conversation as chat messages, for reply rules and faults */
  cJSON *msg;               /* the message of msgs being written */
  fm_resp_lookup_fn lookup; /* the store, for previous_response_id and item_reference */
  void *ctx;
  cJSON *held; /* what was looked up, kept while ids point into it */
} walk;

/* Looks a stored text up and keeps it parsed in w->held; NULL when absent. */
static const cJSON *look_up(walk *w, const char *id, bool response) {
  if (!w->lookup || strlen(id) >= FM_RESP_ID_BYTES) return NULL;
  fm_buf b;
  fm_buf_init(&b);
  cJSON *v = w->lookup(w->ctx, id, response, &b) ? cJSON_ParseWithLength(b.data, b.len) : NULL;
  fm_buf_free(&b);
  if (v && !cJSON_AddItemToArray(w->held, v)) {
    cJSON_Delete(v);
    v = NULL;
  }
  return v;
}

static void close_open(walk *w) {
  if (!w->open) return;
  fm_prefix_add(&w->p->prefix, "\n", 1);
  w->tokens += fm_tokens_for_bytes((size_t)w->open_bytes) + FM_TOKENS_PER_MESSAGE;
  w->open = false;
  w->open_bytes = 0;
}

/* Opens the next message: in the prompt, and in msgs as {"role", "content"}
 * (content a copy of the item's; NULL: null). False when out of memory. */
static bool open_message(walk *w, const char *role, const cJSON *content) {
  close_open(w);
  fm_prefix_add(&w->p->prefix, role, strlen(role));
  fm_prefix_add(&w->p->prefix, "\n", 1);
  w->open = true;
  w->msg = cJSON_CreateObject();
  cJSON *c = content ? cJSON_Duplicate(content, true) : cJSON_CreateNull();
  if (!w->msg || !c || !cJSON_AddItemToArray(w->msgs, w->msg)) {
    cJSON_Delete(w->msg);
    cJSON_Delete(c);
    w->msg = NULL;
    fm_rd_fail(w->rd, 500, "INTERNAL", NULL, "out of memory; retry later");
    return false;
  }
  cJSON_AddStringToObject(w->msg, "role", role);
  cJSON_AddItemToObject(w->msg, "content", c);
  return true;
}

/* A message's content: a string, or parts (input_text, output_text,
 * refusal; images, files and audio count 256 tokens). Its bytes, or -1. */
static long read_content(walk *w, const cJSON *content, const char *where) {
  fm_reader *rd = w->rd;
  if (cJSON_IsString(content)) {
    size_t n = strlen(content->valuestring);
    fm_prefix_add(&w->p->prefix, content->valuestring, n);
    return (long)n;
  }
  if (!cJSON_IsArray(content)) {
    fm_rd_bad(rd, where,
              "must be a string or an array of parts like [{\"type\": \"input_text\", "
              "\"text\": \"...\"}]");
    return -1;
  }
  long total = 0;
  int k = 0;
  for (const cJSON *part = content->child; part; part = part->next, k++) {
    char at[160];
    fm_rd_path(at, sizeof(at), where, NULL, k);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    const char *key = !strcmp(t, "input_text") || !strcmp(t, "output_text") || !strcmp(t, "text")
                          ? "text"
                      : !strcmp(t, "refusal") ? "refusal"
                                              : NULL;
    if (!key &&
        (!strcmp(t, "input_image") || !strcmp(t, "input_file") || !strcmp(t, "input_audio"))) {
      total += OTHER_PART_BYTES;
      continue;
    }
    if (!cJSON_IsObject(part) || !key) {
      fm_rd_bad(rd, at,
                "must be a part of type \"input_text\", \"output_text\", \"refusal\", "
                "\"input_image\", \"input_file\" or \"input_audio\", e.g. {\"type\": "
                "\"input_text\", \"text\": \"...\"}");
      return -1;
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, key);
    if (!cJSON_IsString(text)) {
      char tp[192];
      fm_rd_path(tp, sizeof(tp), at, key, 0);
      fm_rd_bad(rd, tp, "must be a string");
      return -1;
    }
    size_t n = strlen(text->valuestring);
    fm_prefix_add(&w->p->prefix, text->valuestring, n);
    total += (long)n;
  }
  return total;
}

static bool keep(walk *w, const cJSON *item) {
  if (!w->keeping) return true;
  char *text = cJSON_PrintUnformatted(item);
  if (text) {
    if (w->conv.len > 1) fm_buf_putc(&w->conv, ',');
    fm_buf_puts(&w->conv, text);
    free(text);
  }
  if (!text || w->conv.oom) {
    fm_rd_fail(w->rd, 500, "INTERNAL", NULL, "out of memory; retry later");
    return false;
  }
  return true;
}

static const char *str_field(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool read_message(walk *w, const cJSON *it, const char *where) {
  fm_reader *rd = w->rd;
  char at[160];
  const char *role = str_field(it, "role");
  static const char *const roles[] = {"user", "assistant", "system", "developer"};
  bool known = false;
  for (size_t k = 0; role && k < sizeof(roles) / sizeof(roles[0]); k++)
    known = known || !strcmp(role, roles[k]);
  if (!known) {
    fm_rd_path(at, sizeof(at), where, "role", 0);
    fm_rd_bad(rd, at, "must be \"user\", \"assistant\", \"system\" or \"developer\"");
    return false;
  }
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
  fm_rd_path(at, sizeof(at), where, "content", 0);
  if (!content || cJSON_IsNull(content)) {
    fm_rd_bad(rd, at, "is required: a string or an array of parts");
    return false;
  }
  if (!open_message(w, role, content)) return false;
  long bytes = read_content(w, content, at);
  if (bytes < 0) return false;
  w->open_bytes += bytes;
  if (strcmp(role, "assistant") != 0) close_open(w); /* only an assistant's calls join it */
  if (!strcmp(role, "user")) w->p->turn.after_tool_result = false;
  return keep(w, it);
}

static bool read_call(walk *w, const cJSON *it, const char *where) {
  fm_reader *rd = w->rd;
  const char *call_id = str_field(it, "call_id"), *name = str_field(it, "name");
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(it, "arguments");
  if (!call_id || !name || !cJSON_IsString(args)) {
    char at[160];
    fm_rd_path(at, sizeof(at), where, !call_id ? "call_id" : !name ? "name" : "arguments", 0);
    fm_rd_bad(rd, at,
              "is required: a function_call item is {\"type\": \"function_call\", \"call_id\": "
              "\"call_...\", \"name\": \"...\", \"arguments\": \"<JSON string>\"}");
    return false;
  }
  if (!w->open && !open_message(w, "assistant", NULL)) return false;
  /* on chat the call is the assistant message's {"name", "arguments"} */
  cJSON *fn = cJSON_CreateObject();
  if (!fn || !cJSON_AddStringToObject(fn, "name", name) ||
      !cJSON_AddStringToObject(fn, "arguments", args->valuestring) ||
      !fm_tool_ids_add(&w->ids, call_id)) {
    cJSON_Delete(fn);
    fm_rd_fail(rd, 500, "INTERNAL", NULL, "out of memory; retry later");
    return false;
  }
  uint64_t b = 0;
  fm_rd_prompt_json(w->p, fn, &b);
  /* and in msgs, a tool_calls entry of that assistant message */
  cJSON *calls = cJSON_GetObjectItemCaseSensitive(w->msg, "tool_calls");
  if (!calls) calls = cJSON_AddArrayToObject(w->msg, "tool_calls");
  cJSON *call = cJSON_CreateObject();
  if (!calls || !call || !cJSON_AddItemToArray(calls, call)) {
    cJSON_Delete(fn);
    cJSON_Delete(call);
    fm_rd_fail(rd, 500, "INTERNAL", NULL, "out of memory; retry later");
    return false;
  }
  cJSON_AddStringToObject(call, "id", call_id);
  cJSON_AddStringToObject(call, "type", "function");
  cJSON_AddItemToObject(call, "function", fn);
  w->open_bytes += (long)b;
  return keep(w, it);
}

static bool read_call_output(walk *w, const cJSON *it, const char *where) {
  fm_reader *rd = w->rd;
  char at[160];
  const char *call_id = str_field(it, "call_id");
  fm_rd_path(at, sizeof(at), where, "call_id", 0);
  if (!call_id) {
    fm_rd_bad(rd, at, "is required: the call_id of the function_call this output answers");
    return false;
  }
  if (!fm_tool_ids_has(&w->ids, call_id)) {
    fm_rd_bad(rd, at,
              "\"%.64s\" answers no earlier function call; use the call_id of a function_call "
              "item earlier in the conversation (in input, or in the response previous_response_id "
              "names)",
              call_id);
    return false;
  }
  const cJSON *out = cJSON_GetObjectItemCaseSensitive(it, "output");
  fm_rd_path(at, sizeof(at), where, "output", 0);
  if (!out || cJSON_IsNull(out)) {
    fm_rd_bad(rd, at, "is required: the tool's result, a string or an array of parts");
    return false;
  }
  if (!open_message(w, "tool", out)) return false;
  cJSON_AddStringToObject(w->msg, "tool_call_id", call_id);
  long bytes = read_content(w, out, at);
  if (bytes < 0) return false;
  w->open_bytes += bytes;
  close_open(w);
  w->p->turn.after_tool_result = true;
  return keep(w, it);
}

static bool read_item(walk *w, const cJSON *it, const char *where);

/* {"type": "item_reference", "id": "msg_<response>_<n>"}: an output item of
 * a stored response (the AI SDK sends earlier turns so), read as if sent. */
static bool read_reference(walk *w, const cJSON *it, const char *where) {
  const char *id = str_field(it, "id");
  const char *us = id ? strchr(id, '_') : NULL, *last = id ? strrchr(id, '_') : NULL;
  const cJSON *found = NULL;
  if (us && last > us && last - us < FM_RESP_ID_BYTES - 8) {
    char rid[FM_RESP_ID_BYTES];
    snprintf(rid, sizeof(rid), "resp_%.*s", (int)(last - us - 1), us + 1);
    const cJSON *resp = look_up(w, rid, true);
    const cJSON *output = cJSON_GetObjectItemCaseSensitive(resp, "output");
    for (const cJSON *o = cJSON_IsArray(output) ? output->child : NULL; o && !found; o = o->next) {
      const char *oid = str_field(o, "id");
      if (oid && !strcmp(oid, id)) found = o;
    }
  }
  if (!found) {
    char at[160];
    fm_rd_path(at, sizeof(at), where, "id", 0);
    fm_rd_fail(w->rd, 404, "NOT_FOUND", at,
               "%s: \"%.64s\" is no output item of a response this API key stored (it was "
               "never stored, was deleted, expired or evicted); send the item itself instead "
               "of a reference",
               at, id ? id : "");
    return false;
  }
  return read_item(w, found, where);
}

static bool read_item(walk *w, const cJSON *it, const char *where) {
  if (!cJSON_IsObject(it)) {
    fm_rd_bad(w->rd, where,
              "must be an object: a message {\"role\": \"user\", \"content\": \"...\"}, a "
              "function_call or a function_call_output");
    return false;
  }
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
  if (!type || cJSON_IsNull(type) ||
      (cJSON_IsString(type) && !strcmp(type->valuestring, "message")))
    return read_message(w, it, where);
  const char *t = cJSON_IsString(type) ? type->valuestring : "";
  if (!strcmp(t, "function_call")) return read_call(w, it, where);
  if (!strcmp(t, "function_call_output")) return read_call_output(w, it, where);
  if (!strcmp(t, "reasoning")) return true; /* not prompt text, as reasoning_content on chat */
  if (!strcmp(t, "item_reference")) return read_reference(w, it, where);
  char at[160];
  fm_rd_path(at, sizeof(at), where, "type", 0);
  fm_rd_bad(w->rd, at,
            "\"%.64s\" is not an input item served here; use \"message\", \"function_call\", "
            "\"function_call_output\", \"reasoning\" or \"item_reference\" (server-run tool "
            "items are not supported)",
            t);
  return false;
}

/* The conversation previous_response_id continues: {"affinity", "items"} as
 * api_responses.c stores it. */
/* The conversation previous_response_id continues, as api_responses.c
 * stores it: the affinity (a JSON string or null), a newline, the items (a
 * JSON array). The items are walked for the prompt and their text is reused
 * as the start of this turn's conversation. */
static bool read_previous(walk *w, const char *id, char **affinity) {
  fm_reader *rd = w->rd;
  fm_buf b;
  fm_buf_init(&b);
  bool found = w->lookup && strlen(id) < FM_RESP_ID_BYTES && w->lookup(w->ctx, id, false, &b);
  if (!found) {
    fm_buf_free(&b);
    fm_rd_fail(rd, 404, "NOT_FOUND", "previous_response_id",
               "previous_response_id: no stored response \"%.64s\" for this API key; it was "
               "never stored (store: false), was deleted, expired or was evicted from the "
               "bounded store (server.responses), or belongs to another key. Send the "
               "conversation in input instead, or a response id this key stored",
               id);
    return false;
  }
  const char *nl = b.data ? memchr(b.data, '\n', b.len) : NULL;
  cJSON *aff = nl ? cJSON_ParseWithLength(b.data, (size_t)(nl - b.data)) : NULL;
  size_t off = nl ? (size_t)(nl - b.data) + 1 : 0;
  cJSON *items = nl ? cJSON_ParseWithLength(b.data + off, b.len - off) : NULL;
  bool ok = cJSON_IsArray(items) && b.len - off >= 2 &&
            (!cJSON_IsString(aff) || (*affinity = strdup(aff->valuestring)));
  cJSON_Delete(aff);
  if (ok && !cJSON_AddItemToArray(w->held, items))
    ok = false;
  else if (ok)
    items = NULL; /* held */
  if (ok) {       /* the stored items start this turn's conversation: "[...", still open */
    fm_buf_reset(&w->conv);
    fm_buf_put(&w->conv, b.data + off, b.len - off - 1);
    ok = !w->conv.oom;
  }
  fm_buf_free(&b);
  cJSON_Delete(items);
  if (!ok) {
    fm_rd_fail(rd, 500, "INTERNAL", NULL, "the stored conversation is unreadable; retry");
    return false;
  }
  const cJSON *held = w->held->child;
  while (held && held->next)
    held = held->next;
  bool keeping = w->keeping;
  w->keeping = false;
  int i = 0;
  for (const cJSON *it = held->child; it && ok; it = it->next, i++) {
    char where[64];
    fm_rd_path(where, sizeof(where), "previous_response_id.items", NULL, i);
    ok = read_item(w, it, where);
  }
  w->keeping = keeping;
  return ok;
}

static bool read_input(walk *w, const cJSON *input) {
  fm_reader *rd = w->rd;
  if (cJSON_IsString(input)) {
    cJSON *msg = cJSON_CreateObject();
    bool ok = msg && cJSON_AddStringToObject(msg, "role", "user") &&
              cJSON_AddStringToObject(msg, "content", input->valuestring);
    ok = ok ? read_message(w, msg, "input")
            : (fm_rd_fail(rd, 500, "INTERNAL", NULL, "out of memory"), false);
    cJSON_Delete(msg);
    return ok;
  }
  if (!cJSON_IsArray(input) || !input->child) {
    fm_rd_bad(rd, "input",
              input && !cJSON_IsNull(input)
                  ? "must be a string or a non-empty array of input items like [{\"role\": "
                    "\"user\", \"content\": \"Hello\"}]"
                  : "is required: a string or an array of input items like [{\"role\": "
                    "\"user\", \"content\": \"Hello\"}]");
    return false;
  }
  int i = 0;
  for (const cJSON *it = input->child; it; it = it->next, i++) {
    char where[32];
    fm_rd_path(where, sizeof(where), "input", NULL, i);
    if (!read_item(w, it, where)) return false;
  }
  return true;
}

/* tools: [{"type": "function", "name", "description", "parameters", "strict"}] */
static bool read_tools(fm_reader *rd, fm_infer_params *p, uint64_t *bytes) {
  fm_turn_spec *t = &p->turn;
  t->wire = FM_WIRE_TOOLS;
  const cJSON *tools = fm_rd_field(rd, "tools");
  if (tools && !cJSON_IsArray(tools)) {
    fm_rd_bad(rd, "tools",
              "must be an array like [{\"type\": \"function\", \"name\": \"get_weather\", "
              "\"parameters\": {...}}]");
    return false;
  }
  int i = 0;
  for (const cJSON *it = tools ? tools->child : NULL; it; it = it->next, i++) {
    char where[32];
    fm_rd_path(where, sizeof(where), "tools", NULL, i);
    const char *type = str_field(it, "type");
    if (!cJSON_IsObject(it) || !type || strcmp(type, "function") != 0) {
      fm_rd_bad(rd, where,
                "must be {\"type\": \"function\", \"name\": ..., \"parameters\": {...}}: only "
                "function tools, run by the client, are served here (mcp, web_search and the "
                "other server-run tools are not)");
      return false;
    }
    const cJSON *strict = cJSON_GetObjectItemCaseSensitive(it, "strict");
    if (strict && !cJSON_IsBool(strict) && !cJSON_IsNull(strict)) {
      char sp[64];
      fm_rd_path(sp, sizeof(sp), where, "strict", 0);
      fm_rd_bad(rd, sp, "must be true or false");
      return false;
    }
    /* on chat the prompt holds the function object: the tool without its type */
    if (!fm_rd_tool(rd, p, it, "parameters", true, where, bytes)) return false;
  }
  t->parallel = fm_rd_bool(rd, "parallel_tool_calls", true);
  t->tool_choice = FM_TOOLS_AUTO;
  const cJSON *tc = fm_rd_field(rd, "tool_choice");
  if (!tc) return !rd->failed;
  static const char *const shape =
      "must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": \"...\"}";
  if (cJSON_IsString(tc)) {
    const char *v = tc->valuestring;
    if (!strcmp(v, "auto"))
      t->tool_choice = FM_TOOLS_AUTO;
    else if (!strcmp(v, "none"))
      t->tool_choice = FM_TOOLS_NONE;
    else if (!strcmp(v, "required") || !strcmp(v, "any"))
      t->tool_choice = FM_TOOLS_REQUIRED;
    else {
      fm_rd_bad(rd, "tool_choice", "%s", shape);
      return false;
    }
  } else {
    const char *type = str_field(tc, "type"), *name = str_field(tc, "name");
    if (!cJSON_IsObject(tc) || !type || strcmp(type, "function") != 0 || !name) {
      fm_rd_bad(rd, "tool_choice", "%s", shape);
      return false;
    }
    t->named = fm_rd_find_tool(p, name);
    if (t->named < 0) {
      fm_rd_bad(rd, "tool_choice.name",
                "names \"%.64s\", which is not among the tools offered; name one of them", name);
      return false;
    }
    t->tool_choice = FM_TOOLS_NAMED;
  }
  if (t->n_tools == 0 && t->tool_choice != FM_TOOLS_NONE && t->tool_choice != FM_TOOLS_AUTO) {
    fm_rd_bad(rd, "tool_choice",
              "asks for a tool call but no tools are offered; add tools or drop tool_choice");
    return false;
  }
  return !rd->failed;
}

/* text: {"format": {"type": "text" | "json_object" | "json_schema", ...}} */
static bool read_text(fm_reader *rd, fm_infer_params *p) {
  const cJSON *text = fm_rd_field(rd, "text");
  if (!text) return true;
  if (!cJSON_IsObject(text)) {
    fm_rd_bad(rd, "text", "must be an object like {\"format\": {\"type\": \"text\"}}");
    return false;
  }
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(text, "format");
  if (!f || cJSON_IsNull(f)) return true;
  const char *type = str_field(f, "type");
  if (!cJSON_IsObject(f) || !type) {
    fm_rd_bad(rd, "text.format",
              "must be an object like {\"type\": \"json_schema\", \"name\": \"...\", "
              "\"schema\": {...}}");
    return false;
  }
  if (!strcmp(type, "text")) return true;
  if (!strcmp(type, "json_object")) {
    p->turn.format = FM_FORMAT_JSON_OBJECT;
    return true;
  }
  if (!strcmp(type, "json_schema")) {
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(f, "schema");
    if (!cJSON_IsObject(schema)) {
      fm_rd_bad(rd, "text.format.schema",
                "is required with type json_schema: the JSON Schema the answer follows");
      return false;
    }
    return fm_rd_format_schema(rd, p, schema, "text.format.schema");
  }
  fm_rd_bad(rd, "text.format.type", "must be \"text\", \"json_object\" or \"json_schema\"");
  return false;
}

/* reasoning: {"effort": "low" | "medium" | "high" | "none", "summary": ...} */
static bool read_reasoning(fm_reader *rd, fm_infer_params *p, bool *given) {
  const cJSON *re = fm_rd_field(rd, "reasoning");
  *given = false;
  if (re && !cJSON_IsObject(re)) {
    fm_rd_bad(rd, "reasoning", "must be an object like {\"effort\": \"medium\"}");
    return false;
  }
  const cJSON *effort = re ? cJSON_GetObjectItemCaseSensitive(re, "effort") : NULL;
  const cJSON *summary = re ? cJSON_GetObjectItemCaseSensitive(re, "summary") : NULL;
  if (summary && !cJSON_IsNull(summary) &&
      (!cJSON_IsString(summary) ||
       (strcmp(summary->valuestring, "auto") && strcmp(summary->valuestring, "concise") &&
        strcmp(summary->valuestring, "detailed")))) {
    fm_rd_bad(rd, "reasoning.summary", "must be \"auto\", \"concise\", \"detailed\" or null");
    return false;
  }
  p->resp->summary = summary && !cJSON_IsNull(summary);
  if (cJSON_IsString(effort) && !strcmp(effort->valuestring, "minimal")) {
    p->turn.effort = FM_EFFORT_LOW; /* OpenAI's lowest level: fleetmock's low */
    *given = true;
  } else if (effort && !cJSON_IsNull(effort)) {
    if (!cJSON_IsString(effort)) {
      fm_rd_bad(rd, "reasoning.effort",
                "must be \"none\", \"minimal\", \"low\", \"medium\" or \"high\"");
      return false;
    }
    if (!fm_rd_effort(rd, p, effort, "reasoning.effort")) return false;
    *given = true;
  }
  return true;
}

static bool read_metadata(fm_reader *rd) {
  const cJSON *md = fm_rd_field(rd, "metadata");
  if (!md) return true;
  if (!cJSON_IsObject(md) || cJSON_GetArraySize(md) > METADATA_MAX) {
    fm_rd_bad(rd, "metadata", "must be an object of at most %d string pairs", METADATA_MAX);
    return false;
  }
  for (const cJSON *kv = md->child; kv; kv = kv->next) {
    if (strlen(kv->string) > METADATA_KEY_MAX || !cJSON_IsString(kv) ||
        strlen(kv->valuestring) > METADATA_VALUE_MAX) {
      char at[96];
      fm_rd_path(at, sizeof(at), "metadata", kv->string, 0);
      fm_rd_bad(rd, at, "keys are at most %d bytes and values strings of at most %d bytes",
                METADATA_KEY_MAX, METADATA_VALUE_MAX);
      return false;
    }
  }
  return true;
}

static void echo_num(cJSON *echo, const char *k, const cJSON *v, double def) {
  cJSON_AddNumberToObject(echo, k, cJSON_IsNumber(v) ? v->valuedouble : def);
}

static void echo_copy(cJSON *echo, const char *k, const cJSON *v) {
  cJSON *c = v && !cJSON_IsNull(v) ? cJSON_Duplicate(v, true) : cJSON_CreateNull();
  if (c) cJSON_AddItemToObject(echo, k, c);
}

/* The request fields the response object repeats, in the order OpenAI's has them. */
static char *build_echo(fm_reader *rd, const fm_infer_params *p, bool store) {
  const cJSON *o = rd->obj;
  cJSON *echo = cJSON_CreateObject();
  if (!echo) return NULL;
  echo_copy(echo, "instructions", cJSON_GetObjectItemCaseSensitive(o, "instructions"));
  echo_copy(echo, "max_output_tokens", cJSON_GetObjectItemCaseSensitive(o, "max_output_tokens"));
  echo_copy(echo, "max_tool_calls", cJSON_GetObjectItemCaseSensitive(o, "max_tool_calls"));
  const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
  if (cJSON_IsObject(md))
    echo_copy(echo, "metadata", md);
  else
    cJSON_AddItemToObject(echo, "metadata", cJSON_CreateObject());
  cJSON_AddBoolToObject(echo, "parallel_tool_calls", p->turn.parallel);
  echo_copy(echo, "previous_response_id",
            cJSON_GetObjectItemCaseSensitive(o, "previous_response_id"));
  cJSON *re = cJSON_AddObjectToObject(echo, "reasoning");
  if (re) {
    if (p->turn.effort != FM_EFFORT_NONE)
      cJSON_AddStringToObject(re, "effort", fm_effort_names[p->turn.effort]);
    else
      cJSON_AddNullToObject(re, "effort");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "reasoning");
    echo_copy(re, "summary", cJSON_GetObjectItemCaseSensitive(r, "summary"));
  }
  cJSON_AddBoolToObject(echo, "store", store);
  echo_num(echo, "temperature", cJSON_GetObjectItemCaseSensitive(o, "temperature"), 1);
  const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(text, "format");
  cJSON *t = cJSON_AddObjectToObject(echo, "text");
  if (t) {
    if (cJSON_IsObject(fmt)) {
      echo_copy(t, "format", fmt);
    } else {
      cJSON *f = cJSON_AddObjectToObject(t, "format");
      if (f) cJSON_AddStringToObject(f, "type", "text");
    }
  }
  const cJSON *tc = cJSON_GetObjectItemCaseSensitive(o, "tool_choice");
  if (tc && !cJSON_IsNull(tc))
    echo_copy(echo, "tool_choice", tc);
  else
    cJSON_AddStringToObject(echo, "tool_choice", "auto");
  const cJSON *tools = cJSON_GetObjectItemCaseSensitive(o, "tools");
  if (cJSON_IsArray(tools))
    echo_copy(echo, "tools", tools);
  else
    cJSON_AddItemToObject(echo, "tools", cJSON_CreateArray());
  echo_num(echo, "top_p", cJSON_GetObjectItemCaseSensitive(o, "top_p"), 1);
  const char *tr = str_field(o, "truncation");
  cJSON_AddStringToObject(echo, "truncation", tr ? tr : "disabled");
  echo_copy(echo, "user", cJSON_GetObjectItemCaseSensitive(o, "user"));
  char *s = cJSON_PrintUnformatted(echo);
  cJSON_Delete(echo);
  if (!s) return NULL;
  /* members only: the renderer writes them inside its own object */
  size_t n = strlen(s);
  if (n >= 2) {
    memmove(s, s + 1, n - 2);
    s[n - 2] = 0;
  }
  return s;
}

static bool read_fields(fm_reader *rd, fm_infer_params *p, fm_resp_req *rq, bool *effort_given) {
  if (!fm_rd_model(rd, p)) return false;
  const fm_model_cfg *mc = &rd->in->cfg->models[p->model];
  bool has_max = false;
  p->max_tokens = (uint32_t)fm_rd_int(rd, "max_output_tokens", 1, mc->context_length, 0, &has_max);
  rq->max_output = has_max;
  fm_rd_int(rd, "max_tool_calls", 1, 1000, 0, NULL);
  p->n = 1;
  p->stream = fm_rd_bool(rd, "stream", false);
  rq->store = fm_rd_bool(rd, "store", true);
  fm_rd_number(rd, "temperature", 0, 2, 1);
  fm_rd_number(rd, "top_p", 0, 1, 1);
  fm_rd_int(rd, "top_logprobs", 0, FM_TOP_LOGPROBS_MAX, 0, NULL);
  const char *tr = fm_rd_string(rd, "truncation");
  if (tr && strcmp(tr, "auto") && strcmp(tr, "disabled"))
    fm_rd_bad(rd, "truncation", "must be \"auto\" or \"disabled\"");
  if (fm_rd_bool(rd, "background", false))
    fm_rd_bad(rd, "background",
              "background responses are not served here; send \"background\": false (or "
              "leave it out) and wait for the answer, or stream it");
  if (fm_rd_field(rd, "conversation"))
    fm_rd_bad(rd, "conversation",
              "the Conversations API is not served here; continue a conversation with "
              "previous_response_id, or send it whole in input");
  const cJSON *inc = fm_rd_field(rd, "include");
  if (inc && !cJSON_IsArray(inc)) fm_rd_bad(rd, "include", "must be an array of strings");
  const char *user = fm_rd_string(rd, "user");
  const char *pck = fm_rd_string(rd, "prompt_cache_key");
  fm_rd_cache_keys(rd, p, pck && *pck ? pck : user);
  p->seed = rd->in->seed;
  const char *prev = fm_rd_string(rd, "previous_response_id");
  if (prev && !(rq->previous_id = strdup(prev)))
    fm_rd_fail(rd, 500, "INTERNAL", NULL, "out of memory");
  fm_rd_string(rd, "instructions");
  if (!read_metadata(rd)) return false;

  if (!fm_rd_openai_tier(rd, p)) return false;
  if (!read_text(rd, p) || !read_reasoning(rd, p, effort_given)) return false;
  return true;
}

bool fm_read_responses(const fm_read_in *in, fm_resp_lookup_fn lookup, void *ctx,
                       fm_infer_params *p, fm_api_err *e) {
  memset(p, 0, sizeof(*p));
  cJSON *root = fm_rd_parse(in, false, e);
  if (!root) return false;
  fm_reader rd = {.in = in, .obj = root, .err = e};
  fm_prefix_init(&p->prefix);
  fm_resp_req *rq = calloc(1, sizeof(*rq));
  walk w = {.rd = &rd, .p = p, .lookup = lookup, .ctx = ctx, .held = cJSON_CreateArray()};
  fm_buf_init(&w.conv);
  bool ok = rq != NULL;
  if (!ok) fm_rd_fail(&rd, 500, "INTERNAL", NULL, "out of memory; retry later");
  p->resp = rq;
  uint64_t tool_bytes = 0;
  bool effort_given = false;
  ok = ok && read_fields(&rd, p, rq, &effort_given) && read_tools(&rd, p, &tool_bytes) &&
       fm_rd_turn_done(&rd, p, effort_given);
  if (ok) {
    w.tokens = FM_TOKENS_PER_CHAT + fm_tokens_for_bytes((size_t)tool_bytes);
    fm_buf_puts(&w.conv, "[");
    w.keeping = true;
    const char *instr = str_field(root, "instructions");
    w.msgs = cJSON_CreateArray();
    if (instr && w.msgs) { /* a system message, not carried to the next turn (as OpenAI's) */
      open_message(&w, "system", cJSON_GetObjectItemCaseSensitive(root, "instructions"));
      size_t n = strlen(instr);
      fm_prefix_add(&p->prefix, instr, n);
      w.open_bytes = (long)n;
      close_open(&w);
    }
    char *affinity = NULL;
    ok = !w.conv.oom && w.msgs && w.held && !rd.failed &&
         (!rq->previous_id || read_previous(&w, rq->previous_id, &affinity)) &&
         read_input(&w, cJSON_GetObjectItemCaseSensitive(root, "input"));
    close_open(&w);
    /* a conversation stays on the replica that served it (its cache) unless told otherwise */
    if (ok && !p->affinity && affinity)
      p->affinity = affinity;
    else
      free(affinity);
    ok = ok && fm_rd_prompt_fits(&rd, p, w.tokens, "input");
  }
  if (ok) {
    rq->echo = build_echo(&rd, p, rq->store);
    fm_buf_putc(&w.conv, ']');
    fm_buf_putc(&w.conv, '\0');
    rq->items = w.conv.oom ? NULL : fm_buf_steal(&w.conv, NULL);
    /* what reply rules and faults see: the body, with the conversation as messages */
    while (cJSON_GetObjectItemCaseSensitive(root, "messages")) /* a body may repeat a key */
      cJSON_DeleteItemFromObjectCaseSensitive(root, "messages");
    if (cJSON_AddItemToObject(root, "messages", w.msgs)) w.msgs = NULL;
    if (!w.msgs) { /* the parsed body is handed over, not printed again */
      p->body_tree = root;
      root = NULL;
    }
    if (!rq->echo || !rq->items || !p->body_tree) {
      fm_rd_fail(&rd, 500, "INTERNAL", NULL, "out of memory; retry later");
      ok = false;
    }
  }
  fm_tool_ids_free(&w.ids);
  fm_buf_free(&w.conv);
  cJSON_Delete(w.msgs);
  cJSON_Delete(w.held);
  cJSON_Delete(root);
  if (ok) fm_rd_fault_header(&rd, p);
  if (!ok || rd.failed) {
    fm_infer_params_free(p);
    return false;
  }
  p->route = "responses";
  return true;
}
