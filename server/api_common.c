/* api_common.c — what every API surface shares: error bodies in the
 * caller's wire format, body checks, and typed field readers that answer 400
 * naming the field. */
#include "api.h"

#include "infer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NESTING 64

/* ---- errors --------------------------------------------------------------- */

const char *fm_openai_error_type(int status) {
  switch (status) {
  case 401:
    return "authentication_error";
  case 402: /* OpenAI's type for "check your plan and billing": clients know not to retry it */
    return "insufficient_quota";
  case 404:
    return "error"; /* what the real API sends for an unknown model */
  case 429:
    return "rate_limit_error";
  case 500:
    return "internal_error";
  case 503:
    return "server_error";
  default:
    return "invalid_request_error";
  }
}

void fm_openai_error_msg(fm_req *r, int status, const char *code, const char *param,
                         const char *msg) {
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_printf(&b, "{\"error\":{\"object\":\"error\",\"type\":\"%s\",\"code\":\"%s\",\"message\":",
                fm_openai_error_type(status), code);
  fm_buf_json_str(&b, msg);
  fm_buf_puts(&b, ",\"param\":");
  fm_buf_json_str(&b, param);
  fm_buf_puts(&b, "}}");
  fm_req_reply(r, status, "application/json", &b);
  fm_buf_free(&b);
}

void fm_openai_error(fm_req *r, int status, const char *code, const char *param, const char *fmt,
                     ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fm_openai_error_msg(r, status, code, param, msg);
}

/* ---- body checks ---------------------------------------------------------- */

const char *fm_json_prescan(const char *p, size_t n, int max_depth, char *msg, size_t cap) {
  const unsigned char *s = (const unsigned char *)p;
  int depth = 0;
  bool in_str = false, esc = false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c >= 0x80) { /* validate one UTF-8 sequence (RFC 3629: no overlongs, no surrogates) */
      size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
      bool ok = len && c <= 0xf4 && i + len <= n;
      for (size_t k = 1; ok && k < len; k++)
        ok = (s[i + k] & 0xc0) == 0x80;
      if (ok && len == 3) ok = !(c == 0xe0 && s[i + 1] < 0xa0) && !(c == 0xed && s[i + 1] >= 0xa0);
      if (ok && len == 4) ok = !(c == 0xf0 && s[i + 1] < 0x90) && !(c == 0xf4 && s[i + 1] >= 0x90);
      if (!ok) {
        snprintf(msg, cap,
                 "request body is not valid UTF-8 (bad byte 0x%02x at offset %zu); "
                 "send UTF-8 encoded JSON",
                 c, i);
        return msg;
      }
      i += len - 1;
      continue;
    }
    if (in_str) {
      if (esc)
        esc = false;
      else if (c == '\\')
        esc = true;
      else if (c == '"')
        in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        snprintf(msg, cap, "request body nests deeper than %d levels (at offset %zu); flatten it",
                 max_depth, i);
        return msg;
      }
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return NULL;
}

cJSON *fm_parse_body(fm_req *r) {
  void (*err)(fm_req *, int, const char *, const char *, const char *) = fm_api_error_msg;
  char msg[256];
  if (r->body.len == 0) {
    err(r, 400, "INVALID_ARGUMENT", NULL, "request body is empty; send a JSON object");
    return NULL;
  }
  if (fm_json_prescan(r->body.data, r->body.len, MAX_NESTING, msg, sizeof(msg))) {
    err(r, 400, "INVALID_ARGUMENT", NULL, msg);
    return NULL;
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(r->body.data, r->body.len, &end, false);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    size_t off = at && at >= r->body.data ? (size_t)(at - r->body.data) : 0;
    snprintf(msg, sizeof(msg),
             "request body is not valid JSON (stopped at byte %zu); send a JSON "
             "object",
             off);
    err(r, 400, "INVALID_ARGUMENT", NULL, msg);
    return NULL;
  }
  for (; end && end < r->body.data + r->body.len; end++) {
    if (*end != ' ' && *end != '\n' && *end != '\r' && *end != '\t') {
      cJSON_Delete(root);
      snprintf(msg, sizeof(msg),
               "request body has extra data after the JSON value (byte %zu); "
               "send exactly one JSON object",
               (size_t)(end - r->body.data));
      err(r, 400, "INVALID_ARGUMENT", NULL, msg);
      return NULL;
    }
  }
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    err(r, 400, "INVALID_ARGUMENT", NULL,
        r->kind == FM_ROUTE_ADMIN
            ? "request body must be a JSON object (docs/control-plane.md shows each route's body)"
            : "request body must be a JSON object, e.g. {\"model\": ..., \"messages\": [...]}");
    return NULL;
  }
  return root;
}

const char *fm_bearer_key(fm_req *r) {
  const char *h = fm_req_header_in(r, "Authorization");
  if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
    /* The Anthropic SDK sends its key as x-api-key. */
    const char *x = r->kind == FM_ROUTE_ANTHROPIC ? fm_req_header_in(r, "x-api-key") : NULL;
    return x && *x ? x : NULL;
  }
  h += 7;
  while (*h == ' ')
    h++;
  return *h ? h : NULL;
}

/* ---- field readers: each answers 400 naming the field and returns false --- */

void fm_rd_bad(fm_reader *rd, const char *field, const char *fmt, ...) {
  if (rd->failed) return;
  rd->failed = true;
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(msg, sizeof(msg), "%s: ", field);
  vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
  va_end(ap);
  fm_api_error_msg(rd->r, 400, "INVALID_ARGUMENT", field, msg);
}

const cJSON *fm_rd_field(fm_reader *rd, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(rd->obj, name);
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
 * alone leaves no room, it answers 400. */
bool fm_rd_prompt_fits(fm_reader *rd, fm_infer_params *p, uint64_t tokens,
                       const char *prompt_field) {
  const fm_model_cfg *mc = &rd->r->srv->cfg.models[p->model];
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

/* ---- errors in the caller's format ------------------------------------------ */

static const char *anthropic_type(int status) {
  switch (status) {
  case 401:
    return "authentication_error";
  case 402:
    return "billing_error"; /* Anthropic's 402 type, listed for Fireworks' Messages route too */
  case 403:
    return "permission_error";
  case 404:
    return "not_found_error";
  case 413:
    return "request_too_large";
  case 429:
    return "rate_limit_error";
  case 500:
    return "api_error";
  case 503:
  case 529:
    return "overloaded_error";
  default:
    return "invalid_request_error";
  }
}

void fm_anthropic_error_msg(fm_req *r, int status, const char *code, const char *param,
                            const char *msg) {
  (void)code;
  (void)param;
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_printf(
      &b, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":", anthropic_type(status));
  fm_buf_json_str(&b, msg);
  fm_buf_printf(&b, "},\"request_id\":\"%s\"}", r->request_id);
  if (!fm_req_has_header(r, "request-id")) fm_req_header(r, "request-id", "%s", r->request_id);
  fm_req_reply(r, status, "application/json", &b);
  fm_buf_free(&b);
}

void fm_api_error_msg(fm_req *r, int status, const char *code, const char *param, const char *msg) {
  if (r->kind == FM_ROUTE_ANTHROPIC)
    fm_anthropic_error_msg(r, status, code, param, msg);
  else
    fm_openai_error_msg(r, status, code, param, msg);
}

void fm_api_error(fm_req *r, int status, const char *code, const char *param, const char *fmt,
                  ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fm_api_error_msg(r, status, code, param, msg);
}

/* ---- fields every inference API has ------------------------------------------ */

bool fm_rd_account_and_model(fm_reader *rd, fm_infer_params *p) {
  fm_server *s = rd->r->srv;
  p->account = fm_accounts_get(&s->accounts, fm_bearer_key(rd->r));
  if (!p->account) {
    rd->failed = true;
    if (s->cfg.accounts.reject_unknown_keys)
      fm_api_error(rd->r, 401, "UNAUTHENTICATED", NULL,
                   "unknown API key: this server only accepts the keys listed in its config "
                   "(accounts.keys); check the key you send");
    else
      fm_api_error(rd->r, 500, "INTERNAL", NULL, "out of memory creating the account; retry");
    return false;
  }
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(rd->obj, "model");
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
  p->model = fm_config_find_model(&s->cfg, m->valuestring);
  if (p->model < 0) {
    rd->failed = true;
    fm_api_error(rd->r, 404, "NOT_FOUND", "model",
                 "Model not found, inaccessible, and/or not deployed: \"%.200s\" is not served "
                 "here; GET /v1/models lists the ids this server knows",
                 m->valuestring);
    return false;
  }
  p->model_name = strdup(m->valuestring);
  p->pool = s->cfg.models[p->model].pool;
  return true;
}

void fm_rd_tier(fm_reader *rd, fm_infer_params *p, const char *field, fm_tier want) {
  const fm_model_cfg *mc = &rd->r->srv->cfg.models[p->model];
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

void fm_rd_cache_keys(fm_reader *rd, fm_infer_params *p, const char *body_affinity) {
  const char *iso = fm_rd_string(rd, "prompt_cache_isolation_key");
  const char *aff = fm_req_header_in(rd->r, "x-session-affinity");
  aff = aff && *aff ? aff : body_affinity && *body_affinity ? body_affinity : NULL;
  if (aff) p->affinity = strdup(aff);
  const char *iso_h = fm_req_header_in(rd->r, "x-prompt-cache-isolation-key");
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
    snprintf(where, sizeof(where), "%s[%d]", name, k);
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
