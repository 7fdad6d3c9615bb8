/* api_anthropic.c — the Anthropic-compatible Messages API (POST messages).
 *
 * The real fleet serves it at /inference/v1/messages, so Anthropic SDK users
 * point baseURL at https://api.fireworks.ai/inference. Requests go through
 * the same fleet, limits, cache and pacing as the OpenAI routes (infer.c);
 * this file only translates the wire format. */
#include "api.h"

#include "infer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* max_tokens is optional here; without it a completion ends by itself or here. */
#define DEFAULT_MAX_TOKENS 4096
/* While waiting for the first token a stream sends a ping this often (simulated). */
#define PING_US 200000

/* ---- request ---------------------------------------------------------------- */

static bool read_prompt(fm_reader *rd, fm_infer_params *p) {
  uint64_t tokens = FM_TOKENS_PER_CHAT;
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
  for (const cJSON *m = msgs->child; m; m = m->next, i++) {
    char name[64];
    snprintf(name, sizeof(name), "messages[%d]", i);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsObject(m)) {
      fm_rd_bad(rd, name, "must be an object with \"role\" and \"content\"");
      return false;
    }
    snprintf(name, sizeof(name), "messages[%d].role", i);
    if (!cJSON_IsString(role) ||
        (strcmp(role->valuestring, "user") != 0 && strcmp(role->valuestring, "assistant") != 0)) {
      fm_rd_bad(rd, name, "must be \"user\" or \"assistant\" (put system text in \"system\")");
      return false;
    }
    fm_prefix_add(&p->prefix, role->valuestring, strlen(role->valuestring));
    fm_prefix_add(&p->prefix, "\n", 1);
    snprintf(name, sizeof(name), "messages[%d].content", i);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (!content) {
      fm_rd_bad(rd, name, "is required");
      return false;
    }
    long n = fm_rd_text_content(rd, content, name, &p->prefix);
    if (n < 0) return false;
    fm_prefix_add(&p->prefix, "\n", 1);
    tokens += fm_tokens_for_bytes((size_t)n) + FM_TOKENS_PER_MESSAGE;
  }
  return fm_rd_prompt_fits(rd, p, tokens, "messages");
}

static bool read_request(fm_reader *rd, fm_infer_params *p) {
  fm_server *s = rd->r->srv;
  if (!fm_rd_account_and_model(rd, p)) return false;
  const fm_model_cfg *mc = &s->cfg.models[p->model];
  bool has_max = false;
  long long mt = fm_rd_int(rd, "max_tokens", 1, mc->context_length, 0, &has_max);
  p->max_tokens = (uint32_t)(has_max ? mt : DEFAULT_MAX_TOKENS);
  p->n = 1;
  p->stream = fm_rd_bool(rd, "stream", false);
  p->ignore_eos = fm_rd_bool(rd, "ignore_eos", false);
  fm_rd_context_behavior(rd, p);
  p->seed = s->opt.seed;
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
  return !rd->failed && read_prompt(rd, p);
}

/* ---- rendering ---------------------------------------------------------------- */

static const char *stop_reason(const fm_choice *c) {
  if (c->gen.stopped) return "stop_sequence";
  return strcmp(c->finish_reason, "length") == 0 ? "max_tokens" : "end_turn";
}

static void put_stop_sequence(const fm_job *j, const fm_choice *c, fm_buf *b) {
  fm_buf_puts(b, ",\"stop_sequence\":");
  if (c->gen.stopped && c->gen.stop_index >= 0)
    fm_buf_json_str(b, j->p.stop[c->gen.stop_index]);
  else
    fm_buf_puts(b, "null");
}

static const char *usage_tier(const fm_job *j) {
  return j->p.path == FM_PATH_PRIORITY ? "priority" : "standard";
}

static void put_usage(const fm_job *j, fm_buf *b, uint32_t output_tokens) {
  fm_buf_printf(b,
                "\"usage\":{\"input_tokens\":%u,\"output_tokens\":%u,"
                "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":%u,"
                "\"service_tier\":\"%s\"}",
                j->p.prompt_tokens - j->p.cached_tokens, output_tokens, j->p.cached_tokens,
                usage_tier(j));
}

static void put_message_head(const fm_job *j, fm_buf *b) {
  fm_buf_printf(b,
                "{\"id\":\"msg_%s\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", j->id);
  fm_buf_json_str(b, j->p.model_name);
}

static void body(fm_job *j, fm_buf *b) {
  const fm_choice *c = &j->choices[0];
  put_message_head(j, b);
  fm_buf_puts(b, ",\"content\":[{\"type\":\"text\",\"text\":");
  fm_buf_json_strn(b, c->text.data ? c->text.data : "", c->text.len);
  fm_buf_printf(b, "}],\"stop_reason\":\"%s\"", stop_reason(c));
  put_stop_sequence(j, c, b);
  fm_buf_putc(b, ',');
  put_usage(j, b, j->completion_tokens);
  fm_buf_putc(b, '}');
}

static void event(fm_buf *out, const char *name) {
  fm_buf_printf(out, "event: %s\ndata: ", name);
}

static void stream_ping(fm_job *j, fm_buf *out) {
  (void)j;
  event(out, "ping");
  fm_buf_puts(out, "{\"type\":\"ping\"}\n\n");
}

static void stream_open(fm_job *j, fm_buf *out) {
  event(out, "message_start");
  fm_buf_puts(out, "{\"type\":\"message_start\",\"message\":");
  put_message_head(j, out);
  fm_buf_puts(out, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,");
  put_usage(j, out, 1);
  fm_buf_puts(out, "}}\n\n");
  event(out, "content_block_start");
  fm_buf_puts(out, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                   "{\"type\":\"text\",\"text\":\"\"}}\n\n");
  stream_ping(j, out);
}

static void stream_token(fm_job *j, fm_buf *out, int choice, const char *text, size_t len) {
  (void)j;
  (void)choice;
  event(out, "content_block_delta");
  fm_buf_puts(out, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                   "{\"type\":\"text_delta\",\"text\":");
  fm_buf_json_strn(out, text, len);
  fm_buf_puts(out, "}}\n\n");
}

static void stream_choice_end(fm_job *j, fm_buf *out, int choice, const char *reason) {
  (void)reason;
  const fm_choice *c = &j->choices[choice];
  event(out, "content_block_stop");
  fm_buf_puts(out, "{\"type\":\"content_block_stop\",\"index\":0}\n\n");
  event(out, "message_delta");
  fm_buf_printf(out, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\"",
                stop_reason(c));
  put_stop_sequence(j, c, out);
  fm_buf_printf(out, "},\"usage\":{\"output_tokens\":%u}}\n\n", c->gen.produced);
}

static void stream_close(fm_job *j, fm_buf *out) {
  (void)j;
  event(out, "message_stop");
  fm_buf_puts(out, "{\"type\":\"message_stop\"}\n\n");
}

static void stream_error(fm_job *j, fm_buf *out, int status, const char *code, const char *msg) {
  (void)j;
  (void)code;
  event(out, "error");
  fm_buf_printf(out, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":",
                status == 503 || status == 529 ? "overloaded_error" : "api_error");
  fm_buf_json_str(out, msg);
  fm_buf_puts(out, "}}\n\n");
}

/* Overload is 503 on the Fireworks fleet; server.anthropic_overload_status: 529
 * answers like Anthropic's own API instead. */
static void error(fm_req *r, int status, const char *code, const char *param, const char *msg) {
  if (status == 503 && strcmp(code, "SERVICE_OVERLOADED") == 0)
    status = r->srv->cfg.anthropic_overload_status;
  fm_anthropic_error_msg(r, status, code, param, msg);
}

static const fm_renderer anthropic_renderer = {
    true,         PING_US,      stream_ping, stream_open, stream_token, stream_choice_end,
    stream_close, stream_error, body,        error};

void fm_api_messages(fm_req *r) {
  cJSON *root = fm_parse_body(r);
  if (!root) return;
  fm_reader rd = {.r = r, .obj = root};
  fm_infer_params p = {0};
  fm_prefix_init(&p.prefix);
  bool ok = read_request(&rd, &p);
  cJSON_Delete(root);
  if (!ok) {
    fm_infer_params_free(&p);
    return;
  }
  fm_req_header(r, "request-id", "%s", r->request_id);
  p.route = "messages";
  fm_infer_start(r, &p, &anthropic_renderer);
}
