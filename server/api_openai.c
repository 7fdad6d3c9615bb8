/* api_openai.c — the OpenAI-compatible routes: chat/completions,
 * completions, models. This file translates between the wire and
 * fm_infer_params; every decision is made in infer.c and fleet.c. */
#include "api.h"

#include "infer.h"
#include "rng.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the fields shared by chat and completions ---------------------------- */

static bool read_common(fm_reader *rd, fm_infer_params *p) {
  fm_server *s = rd->r->srv;
  if (!fm_rd_account_and_model(rd, p)) return false;
  const fm_model_cfg *mc = &s->cfg.models[p->model];

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
  p->seed = has_seed ? (uint64_t)seed : s->opt.seed;

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

  const char *tier = NULL;
  const cJSON *st = fm_rd_field(rd, "service_tier");
  if (st && !cJSON_IsString(st))
    fm_rd_bad(rd, "service_tier",
              "must be a string: \"auto\", "
              "\"default\", \"flex\", \"priority\" or "
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

/* ---- prompts -------------------------------------------------------------- */

static bool read_messages(fm_reader *rd, fm_infer_params *p) {
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
  uint64_t tokens = FM_TOKENS_PER_CHAT;
  fm_prefix_init(&p->prefix);
  int i = 0;
  for (const cJSON *m = msgs->child; m; m = m->next, i++) {
    char name[64];
    snprintf(name, sizeof(name), "messages[%d]", i);
    if (!cJSON_IsObject(m)) {
      fm_rd_bad(rd, name, "must be an object with \"role\" and \"content\"");
      return false;
    }
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    snprintf(name, sizeof(name), "messages[%d].role", i);
    bool known = false;
    for (size_t k = 0; cJSON_IsString(role) && k < sizeof(roles) / sizeof(roles[0]); k++)
      known = known || strcmp(role->valuestring, roles[k]) == 0;
    if (!known) {
      fm_rd_bad(rd, name,
                "must be one of \"system\", \"user\", \"assistant\", \"tool\", \"developer\"");
      return false;
    }
    /* The cache sees each message as "role\n" + content + "\n". */
    fm_prefix_add(&p->prefix, role->valuestring, strlen(role->valuestring));
    fm_prefix_add(&p->prefix, "\n", 1);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    long bytes = 0;
    snprintf(name, sizeof(name), "messages[%d].content", i);
    if (!content || cJSON_IsNull(content)) {
      if (strcmp(role->valuestring, "assistant") != 0) {
        fm_rd_bad(rd, name, "is required for role \"%s\"", role->valuestring);
        return false;
      }
    } else if ((bytes = fm_rd_text_content(rd, content, name, &p->prefix)) < 0) {
      return false;
    }
    fm_prefix_add(&p->prefix, "\n", 1);
    tokens += fm_tokens_for_bytes((size_t)bytes) + FM_TOKENS_PER_MESSAGE;
  }
  return fm_rd_prompt_fits(rd, p, tokens, "messages");
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

/* ---- rendering ------------------------------------------------------------ */

static const fm_renderer chat_renderer, text_renderer;

static bool is_chat(const fm_job *j) {
  return j->render == &chat_renderer;
}

static const char *echo_tier(const fm_job *j) {
  switch (j->p.path) {
  case FM_PATH_PRIORITY:
    return "priority";
  case FM_PATH_BACKGROUND:
    return "background";
  default:
    return "default";
  }
}

static void put_usage(fm_job *j, fm_buf *b) {
  fm_buf_printf(b,
                "\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%u,\"total_tokens\":%u,"
                "\"prompt_tokens_details\":{\"cached_tokens\":%u}}",
                j->p.prompt_tokens, j->completion_tokens, j->p.prompt_tokens + j->completion_tokens,
                j->p.cached_tokens);
}

static void put_perf(fm_job *j, fm_buf *b) {
  fm_buf_printf(b,
                ",\"perf_metrics\":{\"prompt-tokens\":%u,\"cached-prompt-tokens\":%u,"
                "\"server-time-to-first-token\":%.3f,\"server-processing-time\":%.3f}",
                j->p.prompt_tokens, j->p.cached_tokens,
                fm_us_to_s(j->first_token_us - j->arrived_us),
                fm_us_to_s(j->done_us - j->arrived_us));
}

static void put_head(fm_job *j, fm_buf *b, const char *object) {
  fm_buf_printf(b, "{\"id\":\"%s%s\",\"object\":\"%s\",\"created\":%lld,\"model\":",
                is_chat(j) ? "chatcmpl-" : "cmpl-", j->id, object, j->created);
  fm_buf_json_str(b, j->p.model_name);
  fm_buf_printf(b, ",\"service_tier\":\"%s\",", echo_tier(j));
}

static void body(fm_job *j, fm_buf *b) {
  put_head(j, b, is_chat(j) ? "chat.completion" : "text_completion");
  fm_buf_puts(b, "\"choices\":[");
  for (int i = 0; i < j->p.n; i++) {
    fm_choice *c = &j->choices[i];
    if (i) fm_buf_putc(b, ',');
    fm_buf_printf(b, "{\"index\":%d,", i);
    if (is_chat(j)) {
      fm_buf_puts(b, "\"message\":{\"role\":\"assistant\",\"content\":");
      fm_buf_json_strn(b, c->text.data ? c->text.data : "", c->text.len);
      fm_buf_putc(b, '}');
    } else {
      fm_buf_puts(b, "\"text\":");
      fm_buf_json_strn(b, c->text.data ? c->text.data : "", c->text.len);
    }
    fm_buf_printf(b, ",\"finish_reason\":\"%s\",\"logprobs\":null}", c->finish_reason);
  }
  fm_buf_puts(b, "],");
  put_usage(j, b);
  if (j->p.perf_metrics) put_perf(j, b);
  fm_buf_putc(b, '}');
}

/* Every chunk starts the same; build that once per stream. */
static void chunk_start(fm_job *j, fm_buf *out, int choice) {
  if (j->prefix.len == 0) {
    fm_buf_puts(&j->prefix, "data: ");
    put_head(j, &j->prefix, is_chat(j) ? "chat.completion.chunk" : "text_completion");
    fm_buf_puts(&j->prefix, "\"choices\":[");
  }
  fm_buf_put(out, j->prefix.data, j->prefix.len);
  fm_buf_printf(out, "{\"index\":%d,", choice);
}

static void chunk_end(fm_job *j, fm_buf *out, bool last) {
  fm_buf_putc(out, ']');
  if (j->p.include_usage) fm_buf_puts(out, ",\"usage\":null");
  if (last && j->p.perf_metrics && !j->p.include_usage) put_perf(j, out);
  fm_buf_puts(out, "}\n\n");
}

static void stream_open(fm_job *j, fm_buf *out) {
  if (!is_chat(j)) return;
  for (int i = 0; i < j->p.n; i++) {
    chunk_start(j, out, i);
    fm_buf_puts(out, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,"
                     "\"logprobs\":null}");
    chunk_end(j, out, false);
  }
}

static void stream_token(fm_job *j, fm_buf *out, int choice, const char *text, size_t len) {
  chunk_start(j, out, choice);
  fm_buf_puts(out, is_chat(j) ? "\"delta\":{\"content\":" : "\"text\":");
  fm_buf_json_strn(out, text, len);
  fm_buf_puts(out, is_chat(j) ? "},\"finish_reason\":null,\"logprobs\":null}"
                              : ",\"finish_reason\":null,\"logprobs\":null}");
  chunk_end(j, out, false);
}

static void stream_choice_end(fm_job *j, fm_buf *out, int choice, const char *reason) {
  chunk_start(j, out, choice);
  fm_buf_printf(out, "%s,\"finish_reason\":\"%s\",\"logprobs\":null}",
                is_chat(j) ? "\"delta\":{}" : "\"text\":\"\"", reason);
  j->done_us = fm_server_now(j->srv);
  chunk_end(j, out, j->choices_left == 0);
}

static void stream_close(fm_job *j, fm_buf *out) {
  if (j->p.include_usage) {
    fm_buf_puts(out, "data: ");
    put_head(j, out, is_chat(j) ? "chat.completion.chunk" : "text_completion");
    fm_buf_puts(out, "\"choices\":[],");
    put_usage(j, out);
    if (j->p.perf_metrics) put_perf(j, out);
    fm_buf_puts(out, "}\n\n");
  }
  fm_buf_puts(out, "data: [DONE]\n\n");
}

static void stream_error(fm_job *j, fm_buf *out, int status, const char *code, const char *msg) {
  (void)j;
  fm_buf_printf(out,
                "data: {\"error\":{\"object\":\"error\",\"type\":\"%s\",\"code\":\"%s\","
                "\"message\":",
                fm_openai_error_type(status), code);
  fm_buf_json_str(out, msg);
  fm_buf_puts(out, ",\"param\":null}}\n\n");
}

static const fm_renderer chat_renderer = {false,        0,
                                          NULL,         stream_open,
                                          stream_token, stream_choice_end,
                                          stream_close, stream_error,
                                          body,         fm_openai_error_msg};
static const fm_renderer text_renderer = {false,        0,
                                          NULL,         stream_open,
                                          stream_token, stream_choice_end,
                                          stream_close, stream_error,
                                          body,         fm_openai_error_msg};

/* ---- handlers ------------------------------------------------------------- */

static void handle(fm_req *r, bool chat) {
  cJSON *root = fm_parse_body(r);
  if (!root) return;
  fm_reader rd = {.r = r, .obj = root};
  fm_infer_params p = {0};
  bool ok = read_common(&rd, &p) && (chat ? read_messages(&rd, &p) : read_prompt(&rd, &p));
  cJSON_Delete(root);
  if (!ok) {
    fm_infer_params_free(&p);
    return;
  }
  p.route = chat ? "chat/completions" : "completions";
  fm_infer_start(r, &p, chat ? &chat_renderer : &text_renderer);
}

void fm_api_chat(fm_req *r) {
  handle(r, true);
}

void fm_api_completions(fm_req *r) {
  handle(r, false);
}

static void put_model(fm_buf *b, const fm_model_cfg *m) {
  fm_buf_puts(b, "{\"id\":");
  fm_buf_json_str(b, m->id);
  fm_buf_puts(b, ",\"object\":\"model\",\"owned_by\":");
  fm_buf_json_str(b, m->owned_by);
  fm_buf_printf(b,
                ",\"created\":0,\"kind\":\"HF_BASE_MODEL\",\"context_length\":%ld,"
                "\"supports_chat\":%s,\"supports_tools\":false,\"serving_paths\":[",
                m->context_length, m->supports_chat ? "true" : "false");
  bool first = true;
  for (int k = 0; k < FM_PATH_N; k++) {
    if (!(m->paths & (1u << k))) continue;
    fm_buf_printf(b, "%s\"%s\"", first ? "" : ",", fm_path_names[k]);
    first = false;
  }
  fm_buf_puts(b, "]}");
}

void fm_api_models(fm_req *r) {
  const fm_config *cfg = &r->srv->cfg;
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_puts(&b, "{\"object\":\"list\",\"data\":[");
  for (size_t i = 0; i < cfg->n_models; i++) {
    if (i) fm_buf_putc(&b, ',');
    put_model(&b, &cfg->models[i]);
  }
  fm_buf_puts(&b, "]}");
  fm_req_reply(r, 200, "application/json", &b);
  fm_buf_free(&b);
}

void fm_api_model(fm_req *r, const char *id) {
  int i = fm_config_find_model(&r->srv->cfg, id);
  if (i < 0) {
    fm_openai_error(
        r, 404, "NOT_FOUND", "model",
        "Model not found, inaccessible, and/or not deployed: \"%.200s\"; GET /v1/models "
        "lists the ids this server knows",
        id);
    return;
  }
  fm_buf b;
  fm_buf_init(&b);
  put_model(&b, &r->srv->cfg.models[i]);
  fm_req_reply(r, 200, "application/json", &b);
  fm_buf_free(&b);
}
