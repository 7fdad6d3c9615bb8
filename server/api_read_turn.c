/* api_read_turn.c — the request fields that shape the assistant's turn
 * (tools, tool_choice, response formats, reasoning, logprobs), shared by
 * the OpenAI and Anthropic readers (api_read.h). What they mean is in
 * docs/api.md, "Tools, structured outputs and reasoning". */
#include "api_read.h"

#include "jsonmem.h"
#include "jsonscan.h"
#include "memo.h"
#include "rng.h"
#include "schema.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks a schema the request carries and keeps its compiled form for the job. */
static bool take_schema(fm_reader *rd, const cJSON *schema, const char *path, fm_schema **out) {
  fm_schema_err e;
  if (!cJSON_IsObject(schema) && !cJSON_IsBool(schema)) {
    fm_rd_bad(rd, path,
              "must be a JSON Schema object such as {\"type\": \"object\", "
              "\"properties\": {...}}");
    return false;
  }
  *out = fm_schema_accept(schema, path, &e);
  if (!*out && e.oom)
    fm_rd_fail(rd, 500, "INTERNAL", NULL, "out of memory; retry later");
  else if (!*out)
    fm_rd_bad(rd, e.path, "%s", e.message);
  return *out != NULL;
}

static bool valid_tool_name(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > 64) return false;
  for (const char *c = n; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '_' || *c == '-' || *c == '.'))
      return false;
  return true;
}

/* What a tool definition compiles to (memo.h): its name, its schema and the
 * prompt text it adds, the same for every request that sends the same
 * definition with the same schema key. */
struct fm_tooldef {
  fm_memo_entry m; /* first: the memo's view */
  char *name;
  fm_schema *schema; /* a reference; NULL: any object */
  size_t json_len;
  char json[]; /* the definition as the prompt shows it, compact */
};

static fm_memo_entry *tooldef_slots[FM_TOOLDEF_CACHE];
static fm_memo tooldefs = FM_MEMO_INIT(tooldef_slots, FM_TOOLDEF_CACHE_BYTES);

static void tooldef_free(fm_memo_entry *e) {
  fm_tooldef *d = (fm_tooldef *)e;
  free(d->name);
  fm_schema_release(d->schema);
  free(d);
}

void fm_tooldef_release(fm_tooldef *d) {
  if (d) fm_memo_release(&d->m);
}

void fm_tooldef_cache_clear(void) {
  fm_memo_clear(&tooldefs);
}

/* Checks a definition no memo holds and compiles it; NULL after fm_rd_bad/fail. */
static fm_tooldef *compile_def(fm_reader *rd, const cJSON *def, const char *schema_key,
                               bool drop_type, const char *where, uint64_t digest) {
  char path[192];
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(def, "name");
  fm_rd_path(path, sizeof(path), where, "name", 0);
  if (!cJSON_IsString(name) || !valid_tool_name(name->valuestring)) {
    fm_rd_bad(rd, path, "must be a name of 1 to 64 letters, digits, '_', '-' or '.'");
    return NULL;
  }
  const cJSON *schema = cJSON_GetObjectItemCaseSensitive(def, schema_key);
  fm_schema *compiled = NULL;
  fm_rd_path(path, sizeof(path), where, schema_key, 0);
  if (schema && !cJSON_IsNull(schema)) {
    const cJSON *type =
        cJSON_IsObject(schema) ? cJSON_GetObjectItemCaseSensitive(schema, "type") : NULL;
    if (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "object") == 0)) {
      char tp[200];
      snprintf(tp, sizeof(tp), "%s.type", path);
      fm_rd_bad(rd, tp, "must be \"object\": a tool's arguments are a JSON object");
      return NULL;
    }
    if (!take_schema(rd, schema, path, &compiled)) return NULL;
  }
  char stack[2048];
  fm_buf b;
  fm_buf_init_with(&b, stack, sizeof(stack));
  if (drop_type)
    fm_json_write_without(&b, def, "type");
  else
    fm_json_write(&b, def);
  fm_tooldef *d = b.oom ? NULL : malloc(sizeof(*d) + b.len);
  if (d) d->name = strdup(name->valuestring);
  if (!d || !d->name) {
    free(d);
    fm_buf_free(&b);
    fm_schema_release(compiled);
    fm_rd_fail(rd, 500, "INTERNAL", NULL, "out of memory; retry later");
    return NULL;
  }
  d->schema = compiled;
  d->json_len = b.len;
  memcpy(d->json, b.data, b.len);
  fm_buf_free(&b);
  fm_memo_entry_init(&d->m, digest, sizeof(*d) + d->json_len + strlen(d->name) + 1, tooldef_free);
  fm_memo_keep(&tooldefs, &d->m);
  return d;
}

bool fm_rd_tool(fm_reader *rd, fm_infer_params *p, const cJSON *def, const char *schema_key,
                bool drop_type, const char *where, uint64_t *bytes) {
  fm_turn_spec *t = &p->turn;
  if (t->n_tools >= FM_TOOLS_MAX) {
    fm_rd_bad(rd, where, "offers more than %d tools (fleetmock's bound); offer fewer",
              FM_TOOLS_MAX);
    return false;
  }
  /* The key: def's source bytes when the fast parser kept them (no walk of
   * the tree), else the digest of its tree; salted by what is read from def,
   * the schema's key and the prompt's form. */
  uint64_t salt = fm_hash_bytes(schema_key, strlen(schema_key), drop_type ? 0x7e1 : 0x7e0);
  const char *src;
  size_t src_len;
  uint64_t digest = fm_json_source(def, rd->in->body, rd->in->len, &src, &src_len)
                        ? fm_hash_bytes(src, src_len, salt) | 1
                        : fm_json_digest(def, salt);
  fm_tooldef *d = (fm_tooldef *)fm_memo_find(&tooldefs, digest);
  if (!d) d = compile_def(rd, def, schema_key, drop_type, where, digest);
  if (!d) return false;
  for (int i = 0; i < t->n_tools; i++)
    if (strcmp(t->tools[i].name, d->name) == 0) {
      char path[192];
      fm_rd_path(path, sizeof(path), where, "name", 0);
      fm_rd_bad(rd, path, "\"%s\" is offered twice; give each tool its own name", d->name);
      fm_tooldef_release(d);
      return false;
    }
  /* Room for 4, then doubled when full (4, 8, 16, ...): most requests offer a few. */
  int n = t->n_tools;
  if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
    size_t cap = n == 0 ? 4 : 2 * (size_t)n;
    fm_tool *grown = realloc(t->tools, cap * sizeof(fm_tool));
    if (!grown) {
      fm_tooldef_release(d);
      fm_rd_fail(rd, 500, "INTERNAL", NULL, "out of memory; retry later");
      return false;
    }
    t->tools = grown;
  }
  t->tools[n] = (fm_tool){.name = d->name, .schema = d->schema, .def = d};
  t->n_tools++;
  fm_prefix_add(&p->prefix, d->json, d->json_len);
  *bytes += d->json_len;
  return true;
}

void fm_rd_prompt_json(fm_infer_params *p, const cJSON *v, uint64_t *bytes) {
  char stack[2048];
  fm_buf b;
  fm_buf_init_with(&b, stack, sizeof(stack));
  fm_json_write(&b, v);
  fm_prefix_add(&p->prefix, b.data, b.len);
  *bytes += b.len;
  fm_buf_free(&b);
}

int fm_rd_find_tool(const fm_infer_params *p, const char *name) {
  for (int i = 0; i < p->turn.n_tools; i++)
    if (strcmp(p->turn.tools[i].name, name) == 0) return i;
  return -1;
}

bool fm_rd_format_schema(fm_reader *rd, fm_infer_params *p, const cJSON *schema, const char *path) {
  p->turn.format = FM_FORMAT_JSON_SCHEMA;
  return take_schema(rd, schema, path, &p->turn.schema);
}

bool fm_rd_grammar(fm_reader *rd, fm_infer_params *p, const cJSON *grammar, const char *path) {
  fm_schema_err e;
  if (!cJSON_IsString(grammar)) {
    fm_rd_bad(rd, path, "is required: a GBNF grammar string such as root ::= \"yes\" | \"no\"");
    return false;
  }
  if (!fm_grammar_check(grammar->valuestring, path, &e)) {
    fm_rd_bad(rd, e.path, "%s", e.message);
    return false;
  }
  p->turn.format = FM_FORMAT_GRAMMAR;
  p->turn.grammar = strdup(grammar->valuestring);
  return p->turn.grammar != NULL;
}

bool fm_rd_effort(fm_reader *rd, fm_infer_params *p, const cJSON *v, const char *field) {
  if (!v || cJSON_IsNull(v)) return true;
  fm_turn_spec *t = &p->turn;
  if (cJSON_IsBool(v)) {
    t->effort = cJSON_IsTrue(v) ? FM_EFFORT_MEDIUM : FM_EFFORT_NONE;
    return true;
  }
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (d < 0 || d > 1e7 || d != (double)(long long)d) {
      fm_rd_bad(rd, field, "as a number must be a whole token budget between 0 and 10000000");
      return false;
    }
    t->effort = d == 0 ? FM_EFFORT_NONE : FM_EFFORT_HIGH;
    t->reasoning_cap = (uint32_t)d;
    return true;
  }
  for (int k = 0; k < FM_EFFORT_N && cJSON_IsString(v); k++)
    if (strcmp(v->valuestring, fm_effort_names[k]) == 0) {
      t->effort = (fm_effort)k;
      return true;
    }
  fm_rd_bad(rd, field,
            "must be \"none\", \"low\", \"medium\", \"high\", true, false or a token budget "
            "(an integer)");
  return false;
}

bool fm_rd_thinking(fm_reader *rd, fm_infer_params *p, const cJSON *th, uint32_t max_tokens) {
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(th, "type");
  if (!cJSON_IsObject(th) || !cJSON_IsString(type) ||
      (strcmp(type->valuestring, "enabled") && strcmp(type->valuestring, "disabled"))) {
    fm_rd_bad(rd, "thinking",
              "must be {\"type\": \"enabled\", \"budget_tokens\": 1024} or {\"type\": "
              "\"disabled\"}");
    return false;
  }
  if (!strcmp(type->valuestring, "disabled")) {
    p->turn.effort = FM_EFFORT_NONE;
    return true;
  }
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(th, "budget_tokens");
  if (!cJSON_IsNumber(b) || b->valuedouble < 1024 || b->valuedouble > 1e7 ||
      b->valuedouble != (double)(long long)b->valuedouble) {
    fm_rd_bad(rd, "thinking.budget_tokens", "is required: a whole number of tokens, at least 1024");
    return false;
  }
  if (max_tokens && b->valuedouble >= max_tokens) {
    fm_rd_bad(rd, "thinking.budget_tokens", "must be less than max_tokens (%u); raise max_tokens",
              max_tokens);
    return false;
  }
  p->turn.effort = FM_EFFORT_HIGH;
  p->turn.reasoning_cap = (uint32_t)b->valuedouble;
  return true;
}

bool fm_rd_turn_done(fm_reader *rd, fm_infer_params *p, bool effort_given) {
  const fm_model_cfg *mc = &rd->in->cfg->models[p->model];
  fm_turn_spec *t = &p->turn;
  if (t->n_tools > 0 && !mc->agent.tools) {
    fm_rd_bad(rd, t->wire == FM_WIRE_FUNCTIONS ? "functions" : "tools",
              "model %s does not support tools here (its config says \"tools\": false); drop "
              "the tools or pick a model that supports them (GET /v1/models, supports_tools)",
              mc->id);
    return false;
  }
  if (!effort_given) t->effort = mc->agent.reasoning ? mc->agent.default_effort : FM_EFFORT_NONE;
  if (!mc->agent.reasoning) t->effort = FM_EFFORT_NONE;
  return true;
}

void fm_tool_ids_free(fm_tool_ids *ids) {
  free(ids->ids);
  memset(ids, 0, sizeof(*ids));
}

bool fm_tool_ids_add(fm_tool_ids *ids, const char *id) {
  if (ids->n == ids->cap) {
    size_t cap = ids->cap ? ids->cap * 2 : 8;
    const char **n = realloc(ids->ids, cap * sizeof(*n));
    if (!n) return false;
    ids->ids = n;
    ids->cap = cap;
  }
  ids->ids[ids->n++] = id;
  return true;
}

bool fm_tool_ids_has(const fm_tool_ids *ids, const char *id) {
  for (size_t i = 0; i < ids->n; i++)
    if (strcmp(ids->ids[i], id) == 0) return true;
  return false;
}
