/* api_openai.c — the OpenAI-compatible routes: chat/completions,
 * completions, models. This file translates between the wire and
 * fm_infer_params (read by api_read_openai.c); every decision is made in
 * infer.c and fleet.c. */
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
  fm_read_in in = fm_api_read_in(r);
  fm_infer_params p;
  fm_api_err e = {0};
  if (!(chat ? fm_read_chat : fm_read_completions)(&in, &p, &e)) {
    fm_api_reply_err(r, &e);
    return;
  }
  if (!fm_api_account(r, &p)) return;
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
