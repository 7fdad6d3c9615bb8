/* api_read.c — what every route reader shares: the error record, the body
 * checks and parse, the typed field readers, the fields every inference API
 * has, and the headers the API layer reads (the key, the prompt-cache keys,
 * x-fleetmock-fault). Nothing here knows of a connection (api_read.h). */
#include "api_read.h"

#include "jsonmem.h"
#include "jsonscan.h"
#include "schema.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NESTING 64

void fm_infer_params_free(fm_infer_params *p) {
  free(p->model_name);
  free(p->affinity);
  free(p->isolation);
  free(p->test_id);
  fm_prefix_free(&p->prefix);
  for (int i = 0; i < p->n_stop; i++)
    free(p->stop[i]);
  for (int i = 0; i < p->turn.n_tools; i++)
    fm_tooldef_release(p->turn.tools[i].def);
  free(p->turn.tools);
  fm_schema_release(p->turn.schema);
  free(p->turn.grammar);
  if (p->resp) {
    free(p->resp->echo);
    free(p->resp->items);
    free(p->resp->previous_id);
    free(p->resp);
  }
  cJSON_Delete(p->body_tree);
  free(p->embed.text);
  free(p->embed.end);
  memset(p, 0, sizeof(*p));
}

/* ---- the error record ------------------------------------------------------- */

static void err_vset(fm_api_err *e, int status, const char *code, const char *param,
                     const char *fmt, va_list ap) {
  if (e->status) return;
  e->status = status;
  e->code = code;
  e->has_param = param != NULL;
  snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
  vsnprintf(e->message, sizeof(e->message), fmt, ap);
  /* Both go into a JSON answer; what they quote may come from a URL or a
   * header, and a cut at the end of the buffer may split a character. */
  fm_utf8_clean(e->param);
  fm_utf8_clean(e->message);
}

void fm_api_err_set(fm_api_err *e, int status, const char *code, const char *param, const char *fmt,
                    ...) {
  va_list ap;
  va_start(ap, fmt);
  err_vset(e, status, code, param, fmt, ap);
  va_end(ap);
}

/* ---- body checks ------------------------------------------------------------- */

static void bad_body(fm_api_err *e, const char *msg) {
  fm_api_err_set(e, 400, "INVALID_ARGUMENT", NULL, "%s", msg);
}

/* The prescan's finding as the client reads it. */
static bool prescan_ok(const fm_read_in *in, fm_api_err *e) {
  fm_json_scan sc;
  char path[sizeof(e->param)];
  switch (fm_json_prescan(in->body, in->len, true, MAX_NESTING, &sc)) {
  case FM_JSON_OK:
    return true;
  case FM_JSON_BAD_UTF8:
    fm_api_err_set(e, 400, "INVALID_ARGUMENT", NULL,
                   "request body is not valid UTF-8 (bad byte 0x%02x at offset %zu); "
                   "send UTF-8 encoded JSON",
                   sc.byte, sc.offset);
    return false;
  case FM_JSON_TOO_DEEP:
    fm_api_err_set(e, 400, "INVALID_ARGUMENT", NULL,
                   "request body nests deeper than %d levels (at offset %zu); flatten it",
                   MAX_NESTING, sc.offset);
    return false;
  case FM_JSON_NUL:
    /* cJSON would end the string at the NUL: a model id, a message or a
     * scenario name would be read cut short, as if the client sent less. */
    fm_json_path_at(in->body, in->len, sc.offset, NULL, path, sizeof(path));
    fm_api_err_set(e, 400, "INVALID_ARGUMENT", path,
                   "%s: must not contain a NUL character (\\u0000); remove it", path);
    return false;
  }
  return false;
}

static cJSON *parse(const fm_read_in *in, bool admin, bool scratch, fm_api_err *e) {
  char msg[256];
  if (in->len == 0) {
    bad_body(e, "request body is empty; send a JSON object");
    return NULL;
  }
  if (!prescan_ok(in, e)) return NULL;
  const char *end = NULL;
  cJSON *root = scratch ? fm_json_parse_scratch(in->body, in->len, &end)
                        : cJSON_ParseWithLengthOpts(in->body, in->len, &end, false);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    size_t off = at && at >= in->body ? (size_t)(at - in->body) : 0;
    snprintf(msg, sizeof(msg),
             "request body is not valid JSON (stopped at byte %zu); send a JSON "
             "object",
             off);
    bad_body(e, msg);
    return NULL;
  }
  for (; end && end < in->body + in->len; end++) {
    if (*end != ' ' && *end != '\n' && *end != '\r' && *end != '\t') {
      cJSON_Delete(root);
      snprintf(msg, sizeof(msg),
               "request body has extra data after the JSON value (byte %zu); "
               "send exactly one JSON object",
               (size_t)(end - in->body));
      bad_body(e, msg);
      return NULL;
    }
  }
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    bad_body(e, admin ? "request body must be a JSON object (docs/control-plane.md shows each "
                        "route's body)"
                      : "request body must be a JSON object, e.g. {\"model\": ..., "
                        "\"messages\": [...]}");
    return NULL;
  }
  return root;
}

cJSON *fm_rd_parse(const fm_read_in *in, bool admin, fm_api_err *e) {
  return parse(in, admin, false, e);
}

cJSON *fm_rd_parse_scratch(const fm_read_in *in, fm_api_err *e) {
  return parse(in, false, true, e);
}

/* ---- headers ------------------------------------------------------------------ */

const char *fm_read_api_key(fm_header_fn header, void *ctx, bool x_api_key) {
  const char *h = header ? header(ctx, "Authorization") : NULL;
  if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
    /* The Anthropic SDK sends its key as x-api-key. */
    const char *x = x_api_key && header ? header(ctx, "x-api-key") : NULL;
    return x && *x ? x : NULL;
  }
  h += 7;
  while (*h == ' ')
    h++;
  return *h ? h : NULL;
}

const char *fm_rd_header(const fm_reader *rd, const char *name) {
  return rd->in->header ? rd->in->header(rd->in->header_ctx, name) : NULL;
}

void fm_rd_fault_header(fm_reader *rd, fm_infer_params *p) {
  const char *t = fm_rd_header(rd, "x-fleetmock-test-id");
  if (t && *t) {
    size_t n = strlen(t);
    bool ok = n <= FM_TEST_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
      ok = t[i] > 0x20 && t[i] < 0x7f;
    if (!ok)
      fm_rd_bad(rd, "x-fleetmock-test-id",
                "must be 1 to %d printable ASCII characters without spaces, e.g. the test "
                "file's name",
                FM_TEST_ID_MAX);
    else
      p->test_id = strdup(t);
  }
  const char *h = fm_rd_header(rd, "x-fleetmock-fault");
  if (!h || !*h) return;
  /* A malformed one is answered where the fault would fire (infer.c), after
   * every other check, as it always was. */
  p->fault_kind =
      fm_fault_parse_header(h, &p->header_fault) ? FM_HEADER_FAULT_SET : FM_HEADER_FAULT_BAD;
}

/* ---- field readers: the first bad one is the answer ------------------------------ */

void fm_rd_bad(fm_reader *rd, const char *field, const char *fmt, ...) {
  if (rd->failed) return;
  rd->failed = true;
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(msg, sizeof(msg), "%s: ", field);
  vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
  va_end(ap);
  fm_api_err_set(rd->err, 400, "INVALID_ARGUMENT", field, "%s", msg);
}

void fm_rd_fail(fm_reader *rd, int status, const char *code, const char *param, const char *fmt,
                ...) {
  if (rd->failed) return;
  rd->failed = true;
  va_list ap;
  va_start(ap, fmt);
  err_vset(rd->err, status, code, param, fmt, ap);
  va_end(ap);
}

/* cJSON_GetObjectItemCaseSensitive, the first bytes compared before the
 * rest: a chat request's reader asks for ~25 names in an object of ~5 keys,
 * and most keys differ from the name in their first byte. */
static const cJSON *rd_get(const cJSON *obj, const char *name) {
  if (!obj) return NULL;
  for (const cJSON *c = obj->child; c && c->string; c = c->next)
    if (c->string[0] == name[0] && strcmp(c->string, name) == 0) return c;
  return NULL;
}

const cJSON *fm_rd_field(fm_reader *rd, const char *name) {
  const cJSON *v = rd_get(rd->obj, name);
  return v && !cJSON_IsNull(v) ? v : NULL;
}

bool fm_rd_bool(fm_reader *rd, const char *name, bool def) {
  const cJSON *v = fm_rd_field(rd, name);
  if (!v) return def;
  if (!cJSON_IsBool(v)) fm_rd_bad(rd, name, "must be true or false");
  return cJSON_IsTrue(v);
}

double fm_rd_number(fm_reader *rd, const char *name, double lo, double hi, double def) {
  const cJSON *v = fm_rd_field(rd, name);
  if (!v) return def;
  if (!cJSON_IsNumber(v))
    fm_rd_bad(rd, name, "must be a number between %g and %g", lo, hi);
  else if (!(v->valuedouble >= lo && v->valuedouble <= hi))
    fm_rd_bad(rd, name, "must be between %g and %g (got %g)", lo, hi, v->valuedouble);
  return v->valuedouble;
}

/* Integers arrive as doubles; they must be whole and in range. */
long long fm_rd_int(fm_reader *rd, const char *name, long long lo, long long hi, long long def,
                    bool *present) {
  const cJSON *v = fm_rd_field(rd, name);
  if (present) *present = v != NULL;
  if (!v) return def;
  double d = v->valuedouble;
  if (!cJSON_IsNumber(v) || d != floor(d)) {
    fm_rd_bad(rd, name, "must be a whole number between %lld and %lld", lo, hi);
    return def;
  }
  if (d < (double)lo || d > (double)hi) {
    fm_rd_bad(rd, name, "must be between %lld and %lld (got %.0f)", lo, hi, d);
    return def;
  }
  return (long long)d;
}

const char *fm_rd_string(fm_reader *rd, const char *name) {
  const cJSON *v = fm_rd_field(rd, name);
  if (!v) return NULL;
  if (!cJSON_IsString(v)) {
    fm_rd_bad(rd, name, "must be a string");
    return NULL;
  }
  return v->valuestring;
}

/* context_length_exceeded_behavior: "truncate" (the real API's default) or "error". */
void fm_rd_context_behavior(fm_reader *rd, fm_infer_params *p) {
  const char *b = fm_rd_string(rd, "context_length_exceeded_behavior");
  if (!b || !strcmp(b, "truncate")) return;
  if (!strcmp(b, "error")) {
    p->context_error = true;
    return;
  }
  fm_rd_bad(rd, "context_length_exceeded_behavior",
            "must be \"truncate\" or \"error\" (got \"%.40s\")", b);
}

/* Records the prompt's size. When prompt plus max_tokens is more than the
 * context, max_tokens is lowered to what is left, as the real API does by
 * default; with context_length_exceeded_behavior "error", or when the prompt
 * alone leaves no room, it is a 400. */
bool fm_rd_prompt_fits(fm_reader *rd, fm_infer_params *p, uint64_t tokens,
                       const char *prompt_field) {
  const fm_model_cfg *mc = &rd->in->cfg->models[p->model];
  uint64_t ctx = (uint64_t)mc->context_length;
  if (tokens >= ctx) {
    fm_rd_bad(rd, prompt_field,
              "the prompt (%llu tokens) leaves no room in the context length of %s (%llu "
              "tokens); shorten the prompt",
              (unsigned long long)tokens, mc->id, (unsigned long long)ctx);
    return false;
  }
  if (p->max_tokens && tokens + p->max_tokens > ctx) {
    if (p->context_error) {
      fm_rd_bad(rd, "max_tokens",
                "the prompt (%llu tokens) plus max_tokens (%u) exceeds the context length of %s "
                "(%llu tokens); shorten the prompt, lower max_tokens, or drop "
                "context_length_exceeded_behavior \"error\" to have max_tokens lowered",
                (unsigned long long)tokens, p->max_tokens, mc->id, (unsigned long long)ctx);
      return false;
    }
    p->max_tokens = (uint32_t)(ctx - tokens);
  }
  p->prompt_tokens = (uint32_t)tokens;
  p->prompt_digest = p->prefix.digest;
  return true;
}

/* ---- fields every inference API has --------------------------------------------- */

bool fm_rd_model(fm_reader *rd, fm_infer_params *p) {
  const fm_config *cfg = rd->in->cfg;
  const cJSON *m = rd_get(rd->obj, "model");
  if (!m || cJSON_IsNull(m)) {
    fm_rd_bad(rd, "model",
              "is required; set it to a model id such as "
              "\"accounts/fireworks/models/kimi-k2p6\" (GET /v1/models lists them)");
    return false;
  }
  if (!cJSON_IsString(m)) {
    fm_rd_bad(rd, "model",
              "must be a string model id such as \"accounts/fireworks/models/kimi-k2p6\"");
    return false;
  }
  p->model = fm_config_find_model(cfg, m->valuestring);
  if (p->model < 0) {
    fm_rd_fail(rd, 404, "NOT_FOUND", "model",
               "Model not found, inaccessible, and/or not deployed: \"%.200s\" is not served "
               "here; GET /v1/models lists the ids this server knows",
               m->valuestring);
    return false;
  }
  /* An embedding model serves only POST embeddings, whose reader
   * (api_read_embeddings.c) checks the model itself. */
  const fm_model_cfg *mc = &cfg->models[p->model];
  if (mc->embedding_dims) {
    const char *chat = NULL;
    for (size_t i = 0; i < cfg->n_models && !chat; i++)
      if (!cfg->models[i].embedding_dims && cfg->models[i].supports_chat) chat = cfg->models[i].id;
    fm_rd_bad(rd, "model",
              "\"%.200s\" is an embedding model: send it to POST /v1/embeddings, or use a chat "
              "model such as \"%s\" here (GET /v1/models lists them)",
              m->valuestring, chat ? chat : "accounts/fireworks/models/kimi-k2p6");
    return false;
  }
  p->model_name = strdup(m->valuestring);
  p->pool = mc->pool;
  return true;
}

void fm_rd_tier(fm_reader *rd, fm_infer_params *p, const char *field, fm_tier want) {
  const fm_model_cfg *mc = &rd->in->cfg->models[p->model];
  bool fast = mc->paths & (1u << FM_PATH_FAST);
  p->tier = want;
  switch (want) {
  case FM_TIER_STANDARD:
    p->path = fast ? FM_PATH_FAST : FM_PATH_STANDARD;
    if (!fast && !(mc->paths & (1u << FM_PATH_STANDARD)))
      fm_rd_bad(rd, field, "model %s has no Standard path; ask for \"%s\"", mc->id,
                mc->paths & (1u << FM_PATH_PRIORITY) ? "priority" : "background");
    break;
  case FM_TIER_PRIORITY:
    p->path = FM_PATH_PRIORITY;
    if (fast)
      fm_rd_bad(rd, field,
                "Priority and Fast are not stackable: %s is a Fast router; drop %s or "
                "use the non-Fast model id",
                mc->id, field);
    else if (!(mc->paths & (1u << FM_PATH_PRIORITY)))
      fm_rd_bad(rd, field, "model %s has no Priority path; drop %s to use Standard", mc->id, field);
    break;
  default:
    p->path = FM_PATH_BACKGROUND;
    if (fast || !(mc->paths & (1u << FM_PATH_BACKGROUND)))
      fm_rd_bad(rd, field, "model %s has no Background path; drop %s to use Standard", mc->id,
                field);
  }
}

bool fm_rd_openai_tier(fm_reader *rd, fm_infer_params *p) {
  const char *tier = NULL;
  const cJSON *st = fm_rd_field(rd, "service_tier");
  if (st && !cJSON_IsString(st))
    fm_rd_bad(rd, "service_tier",
              "must be a string: \"auto\", \"default\", \"flex\", \"priority\" or "
              "\"background\"");
  else if (st)
    tier = st->valuestring;
  if (rd->failed) return false;
  static const fm_tier_name tiers[] = {
      {"auto", FM_TIER_STANDARD},         {"default", FM_TIER_STANDARD},
      {"flex", FM_TIER_STANDARD},         {"priority", FM_TIER_PRIORITY},
      {"background", FM_TIER_BACKGROUND}, {NULL, FM_TIER_STANDARD}};
  fm_rd_tier_named(rd, p, tier, tiers);
  return !rd->failed;
}

void fm_rd_cache_keys(fm_reader *rd, fm_infer_params *p, const char *body_affinity) {
  const char *iso = fm_rd_string(rd, "prompt_cache_isolation_key");
  const char *aff = fm_rd_header(rd, "x-session-affinity");
  aff = aff && *aff ? aff : body_affinity && *body_affinity ? body_affinity : NULL;
  if (aff) p->affinity = strdup(aff);
  const char *iso_h = fm_rd_header(rd, "x-prompt-cache-isolation-key");
  iso = iso_h && *iso_h ? iso_h : iso;
  if (iso && *iso) p->isolation = strdup(iso);
}

long fm_rd_text_content(fm_reader *rd, const cJSON *content, const char *name, fm_prefix *pre) {
  if (cJSON_IsString(content)) {
    size_t n = strlen(content->valuestring);
    fm_prefix_add(pre, content->valuestring, n);
    return (long)n;
  }
  if (!cJSON_IsArray(content)) {
    fm_rd_bad(rd, name,
              "must be a string or an array of parts like "
              "[{\"type\": \"text\", \"text\": \"...\"}]");
    return -1;
  }
  long total = 0;
  int k = 0;
  for (const cJSON *part = content->child; part; part = part->next, k++) {
    char where[96];
    fm_rd_path(where, sizeof(where), name, NULL, k);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
    if (!cJSON_IsObject(part) || !cJSON_IsString(type)) {
      fm_rd_bad(rd, where,
                "must be an object with a string \"type\", e.g. {\"type\": \"text\", "
                "\"text\": \"...\"}");
      return -1;
    }
    if (strcmp(type->valuestring, "text") != 0) {
      total += 1024; /* images, tool blocks: a flat 256 tokens each */
      continue;
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
    if (!cJSON_IsString(text)) {
      snprintf(where, sizeof(where), "%s[%d].text", name, k);
      fm_rd_bad(rd, where, "must be a string");
      return -1;
    }
    size_t n = strlen(text->valuestring);
    fm_prefix_add(pre, text->valuestring, n);
    total += (long)n;
  }
  return total;
}

void fm_rd_path(char *out, size_t cap, const char *base, const char *key, int index) {
  if (cap == 0) return;
  size_t n = 0;
#define PUT(s, len)                                                                                \
  do {                                                                                             \
    size_t l_ = (len);                                                                             \
    if (l_ > cap - 1 - n) l_ = cap - 1 - n;                                                        \
    memcpy(out + n, (s), l_);                                                                      \
    n += l_;                                                                                       \
  } while (0)
  PUT(base, strlen(base));
  if (key) {
    PUT(".", 1);
    PUT(key, strlen(key));
  } else {
    char num[16];
    size_t k = sizeof(num);
    unsigned v = index < 0 ? 0u : (unsigned)index;
    num[--k] = ']';
    do
      num[--k] = (char)('0' + v % 10);
    while ((v /= 10) && k > 1);
    num[--k] = '[';
    PUT(num + k, sizeof(num) - k);
  }
#undef PUT
  out[n] = '\0';
}

void fm_rd_tier_named(fm_reader *rd, fm_infer_params *p, const char *value,
                      const fm_tier_name *names) {
  if (rd->failed) return;
  if (!value) { /* absent: the first entry is the default */
    fm_rd_tier(rd, p, "service_tier", names[0].tier);
    return;
  }
  char choices[160] = "";
  for (const fm_tier_name *n = names; n->name; n++) {
    if (!strcmp(value, n->name)) {
      fm_rd_tier(rd, p, "service_tier", n->tier);
      return;
    }
    size_t len = strlen(choices);
    snprintf(choices + len, sizeof(choices) - len, "%s\"%s\"",
             n == names  ? ""
             : n[1].name ? ", "
                         : " or ",
             n->name);
  }
  fm_rd_bad(rd, "service_tier", "unknown value \"%.64s\"; use %s", value, choices);
}
