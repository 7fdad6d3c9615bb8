/* api_openai.c — the OpenAI-compatible routes: chat/completions,
 * completions, models. This file translates between the wire and
 * fm_infer_params (read by api_read_openai.c); every decision is made in
 * infer.c and fleet.c. */
#include "api.h"
#include "record.h"

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

static uint32_t reasoning_tokens(const fm_job *j) {
  uint32_t n = 0;
  for (int i = 0; i < j->p.n; i++)
    n += j->choices[i].turn.reasoning_produced;
  return n;
}

/* A string literal, its length known at compile time. The answer's fixed
 * text is written with these and fm_buf_put_i64, not printf: every body and
 * every streamed chunk goes through here (docs/performance.md, issue 17). */
#define PUT_LIT(b, lit) fm_buf_put((b), (lit), sizeof(lit) - 1)

static void put_uint(fm_buf *b, uint32_t v) {
  fm_buf_put_i64(b, (long long)v);
}

static void put_usage(fm_job *j, fm_buf *b) {
  PUT_LIT(b, "\"usage\":{\"prompt_tokens\":");
  put_uint(b, j->p.prompt_tokens);
  PUT_LIT(b, ",\"completion_tokens\":");
  put_uint(b, j->completion_tokens);
  PUT_LIT(b, ",\"total_tokens\":");
  put_uint(b, j->p.prompt_tokens + j->completion_tokens);
  PUT_LIT(b, ",\"prompt_tokens_details\":{\"cached_tokens\":");
  put_uint(b, j->p.cached_tokens);
  fm_buf_putc(b, '}');
  if (is_chat(j)) {
    PUT_LIT(b, ",\"completion_tokens_details\":{\"reasoning_tokens\":");
    put_uint(b, reasoning_tokens(j));
    fm_buf_putc(b, '}');
  }
  fm_buf_putc(b, '}');
}

/* Seconds with three decimals, rounded half up as the fireworks-server-*
 * headers are (fm_req_header_secs), so body and headers always agree. */
static void put_perf(fm_job *j, fm_buf *b) {
  PUT_LIT(b, ",\"perf_metrics\":{\"prompt-tokens\":");
  put_uint(b, j->p.prompt_tokens);
  PUT_LIT(b, ",\"cached-prompt-tokens\":");
  put_uint(b, j->p.cached_tokens);
  PUT_LIT(b, ",\"server-time-to-first-token\":");
  fm_buf_put_milli(b, (j->first_token_us - j->arrived_us + 500) / 1000);
  fm_buf_puts(b, ",\"server-processing-time\":");
  fm_buf_put_milli(b, (j->done_us - j->arrived_us + 500) / 1000);
  fm_buf_putc(b, '}');
}

static void put_head(fm_job *j, fm_buf *b, const char *object) {
  if (is_chat(j))
    PUT_LIT(b, "{\"id\":\"chatcmpl-");
  else
    PUT_LIT(b, "{\"id\":\"cmpl-");
  fm_buf_puts(b, j->id);
  PUT_LIT(b, "\",\"object\":\"");
  fm_buf_puts(b, object);
  PUT_LIT(b, "\",\"created\":");
  fm_buf_put_i64(b, j->created);
  PUT_LIT(b, ",\"model\":");
  fm_buf_json_str(b, j->p.model_name);
  PUT_LIT(b, ",\"service_tier\":\"");
  fm_buf_puts(b, fm_path_echo(j->p.path));
  PUT_LIT(b, "\",");
}

/* {"index":i, */
static void put_index(fm_buf *b, int i) {
  PUT_LIT(b, "{\"index\":");
  fm_buf_put_i64(b, i);
  fm_buf_putc(b, ',');
}

/* ---- logprobs ------------------------------------------------------------- */

static void put_bytes(fm_buf *b, const char *text, size_t len) {
  fm_buf_puts(b, "\"bytes\":[");
  for (size_t k = 0; k < len; k++) {
    if (k) fm_buf_putc(b, ',');
    fm_buf_put_i64(b, (unsigned char)text[k]);
  }
  fm_buf_putc(b, ']');
}

static void put_lp(fm_buf *b, double lp) {
  fm_buf_printf(b, "%.6f", lp);
}

/* One chat logprobs entry: the token, its logprob, bytes and alternatives. */
static void put_chat_lp(const fm_job *j, fm_buf *b, uint64_t seed, uint32_t index, const char *text,
                        size_t len) {
  fm_buf_puts(b, "{\"token\":");
  fm_buf_json_strn(b, text, len);
  fm_buf_puts(b, ",\"logprob\":");
  put_lp(b, fm_turn_logprob(seed, index, 0));
  fm_buf_putc(b, ',');
  put_bytes(b, text, len);
  fm_buf_puts(b, ",\"top_logprobs\":[");
  for (int r = 0; r < j->p.turn.top_logprobs; r++) {
    char alt[FM_TOKEN_MAX_BYTES + 2];
    const char *t = text;
    size_t tl = len;
    if (r > 0) {
      fm_turn_alt_token(seed, index, r, alt);
      t = alt;
      tl = strlen(alt);
    }
    if (r) fm_buf_putc(b, ',');
    fm_buf_puts(b, "{\"token\":");
    fm_buf_json_strn(b, t, tl);
    fm_buf_puts(b, ",\"logprob\":");
    put_lp(b, fm_turn_logprob(seed, index, r));
    fm_buf_putc(b, ',');
    put_bytes(b, t, tl);
    fm_buf_putc(b, '}');
  }
  fm_buf_puts(b, "]}");
}

/* The text part of a turn, or NULL when it ends in tool calls. */
static const fm_part *text_part(const fm_choice *c) {
  for (int k = 0; k < c->turn.n_parts; k++)
    if (c->turn.parts[k].kind == FM_PART_TEXT) return &c->turn.parts[k];
  return NULL;
}

/* Non-streaming logprobs of a choice: chat's {content: [...]}, or the
 * completions form {tokens, token_logprobs, top_logprobs, text_offset}. */
static void put_logprobs(const fm_job *j, const fm_choice *c, fm_buf *b) {
  const fm_part *tp = text_part(c);
  const uint32_t *ends = (const uint32_t *)c->tok_ends.data;
  size_t n = tp ? c->tok_ends.len / sizeof(uint32_t) : 0;
  uint64_t seed = c->turn.seed;
  if (is_chat(j)) {
    fm_buf_puts(b, "{\"content\":[");
    for (size_t k = 0; k < n; k++) {
      uint32_t from = k ? ends[k - 1] : 0;
      if (k) fm_buf_putc(b, ',');
      put_chat_lp(j, b, seed, (uint32_t)k, tp->text.data + from, ends[k] - from);
    }
    fm_buf_puts(b, "],\"refusal\":null}");
    return;
  }
  int top = j->p.turn.completion_logprobs;
  fm_buf_puts(b, "{\"tokens\":[");
  for (size_t k = 0; k < n; k++) {
    uint32_t from = k ? ends[k - 1] : 0;
    if (k) fm_buf_putc(b, ',');
    fm_buf_json_strn(b, tp->text.data + from, ends[k] - from);
  }
  fm_buf_puts(b, "],\"token_logprobs\":[");
  for (size_t k = 0; k < n; k++) {
    if (k) fm_buf_putc(b, ',');
    put_lp(b, fm_turn_logprob(seed, (uint32_t)k, 0));
  }
  fm_buf_puts(b, "],\"top_logprobs\":[");
  for (size_t k = 0; k < n; k++) {
    uint32_t from = k ? ends[k - 1] : 0;
    if (k) fm_buf_putc(b, ',');
    fm_buf_putc(b, '{');
    for (int r = 0; r < top; r++) {
      char alt[FM_TOKEN_MAX_BYTES + 2];
      if (r) fm_buf_putc(b, ',');
      if (r == 0) {
        fm_buf_json_strn(b, tp->text.data + from, ends[k] - from);
      } else {
        fm_turn_alt_token(seed, (uint32_t)k, r, alt);
        fm_buf_json_str(b, alt);
      }
      fm_buf_putc(b, ':');
      put_lp(b, fm_turn_logprob(seed, (uint32_t)k, r));
    }
    fm_buf_putc(b, '}');
  }
  fm_buf_puts(b, "],\"text_offset\":[");
  for (size_t k = 0; k < n; k++) {
    if (k) fm_buf_putc(b, ',');
    fm_buf_put_i64(b, k ? ends[k - 1] : 0);
  }
  fm_buf_puts(b, "]}");
}

static bool wants_logprobs(const fm_job *j) {
  return is_chat(j) ? j->p.turn.logprobs : j->p.turn.completion_logprobs > 0;
}

/* ---- non-streaming -------------------------------------------------------- */

static void put_call(const fm_job *j, const fm_part *p, fm_buf *b) {
  fm_buf_puts(b, "{\"name\":");
  fm_buf_json_str(b, fm_part_tool_name(p, &j->p.turn));
  fm_buf_puts(b, ",\"arguments\":");
  fm_buf_json_strn(b, p->text.data ? p->text.data : "", p->text.len);
  fm_buf_putc(b, '}');
}

static void put_message(const fm_job *j, const fm_choice *c, fm_buf *b) {
  const fm_turn *t = &c->turn;
  fm_buf_puts(b, "\"message\":{\"role\":\"assistant\",\"content\":");
  const fm_part *tp = text_part(c);
  if (tp)
    fm_buf_json_strn(b, tp->text.data ? tp->text.data : "", tp->text.len);
  else
    fm_buf_puts(b, t->calls ? "null" : "\"\""); /* max_tokens spent on reasoning: "" */
  for (int k = 0; k < t->n_parts; k++) {
    const fm_part *p = &t->parts[k];
    if (p->kind != FM_PART_REASONING) continue;
    fm_buf_puts(b, ",\"reasoning_content\":");
    fm_buf_json_strn(b, p->text.data ? p->text.data : "", p->text.len);
  }
  bool first = true;
  for (int k = 0; k < t->n_parts; k++) {
    const fm_part *p = &t->parts[k];
    if (p->kind != FM_PART_TOOL_CALL || p->produced == 0) continue;
    if (j->p.turn.wire == FM_WIRE_FUNCTIONS) {
      fm_buf_puts(b, ",\"function_call\":");
      put_call(j, p, b);
      break;
    }
    fm_buf_puts(b, first ? ",\"tool_calls\":[" : ",");
    first = false;
    PUT_LIT(b, "{\"id\":\"call_");
    fm_buf_puts(b, p->id);
    PUT_LIT(b, "\",\"type\":\"function\",\"function\":");
    put_call(j, p, b);
    fm_buf_putc(b, '}');
  }
  if (!first) fm_buf_putc(b, ']');
  fm_buf_putc(b, '}');
}

static void body(fm_job *j, fm_buf *b) {
  put_head(j, b, is_chat(j) ? "chat.completion" : "text_completion");
  fm_buf_puts(b, "\"choices\":[");
  for (int i = 0; i < j->p.n; i++) {
    fm_choice *c = &j->choices[i];
    if (i) fm_buf_putc(b, ',');
    put_index(b, i);
    if (is_chat(j)) {
      put_message(j, c, b);
    } else {
      const fm_part *tp = text_part(c);
      fm_buf_puts(b, "\"text\":");
      fm_buf_json_strn(b, tp && tp->text.data ? tp->text.data : "", tp ? tp->text.len : 0);
    }
    PUT_LIT(b, ",\"finish_reason\":\"");
    fm_buf_puts(b, c->finish_reason);
    PUT_LIT(b, "\",\"logprobs\":");
    if (wants_logprobs(j))
      put_logprobs(j, c, b);
    else
      fm_buf_puts(b, "null");
    fm_buf_putc(b, '}');
  }
  fm_buf_puts(b, "],");
  put_usage(j, b);
  if (j->p.perf_metrics) put_perf(j, b);
  fm_buf_putc(b, '}');
}

/* ---- streaming ------------------------------------------------------------ */

/* Every chunk starts the same; build that once per stream. */
static void chunk_start(fm_job *j, fm_buf *out, int choice) {
  if (j->prefix.len == 0) {
    fm_buf_puts(&j->prefix, "data: ");
    put_head(j, &j->prefix, is_chat(j) ? "chat.completion.chunk" : "text_completion");
    fm_buf_puts(&j->prefix, "\"choices\":[");
  }
  fm_buf_put(out, j->prefix.data, j->prefix.len);
  put_index(out, choice);
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

/* A tool call's first chunk: its index, id, type and name, no arguments yet. */
static void stream_part_start(fm_job *j, fm_buf *out, int choice, int part) {
  const fm_part *p = &j->choices[choice].turn.parts[part];
  if (p->kind != FM_PART_TOOL_CALL) return;
  chunk_start(j, out, choice);
  if (j->p.turn.wire == FM_WIRE_FUNCTIONS) {
    fm_buf_puts(out, "\"delta\":{\"function_call\":{\"name\":");
    fm_buf_json_str(out, fm_part_tool_name(p, &j->p.turn));
    fm_buf_puts(out, ",\"arguments\":\"\"}}");
  } else {
    fm_buf_printf(out,
                  "\"delta\":{\"tool_calls\":[{\"index\":%d,\"id\":\"call_%s\",\"type\":"
                  "\"function\",\"function\":{\"name\":",
                  p->call, p->id);
    fm_buf_json_str(out, fm_part_tool_name(p, &j->p.turn));
    fm_buf_puts(out, ",\"arguments\":\"\"}}]}");
  }
  fm_buf_puts(out, ",\"finish_reason\":null,\"logprobs\":null}");
  chunk_end(j, out, false);
}

static void stream_token(fm_job *j, fm_buf *out, int choice, int part, const char *text,
                         size_t len) {
  if (len == 0) return;
  const fm_choice *c = &j->choices[choice];
  const fm_part *p = &c->turn.parts[part];
  chunk_start(j, out, choice);
  if (!is_chat(j)) {
    fm_buf_puts(out, "\"text\":");
    fm_buf_json_strn(out, text, len);
    fm_buf_puts(out, ",\"finish_reason\":null,\"logprobs\":null}");
    chunk_end(j, out, false);
    return;
  }
  switch (p->kind) {
  case FM_PART_REASONING:
    fm_buf_puts(out, "\"delta\":{\"reasoning_content\":");
    fm_buf_json_strn(out, text, len);
    fm_buf_putc(out, '}');
    break;
  case FM_PART_TOOL_CALL:
    if (j->p.turn.wire == FM_WIRE_FUNCTIONS)
      fm_buf_puts(out, "\"delta\":{\"function_call\":{\"arguments\":");
    else
      fm_buf_printf(
          out, "\"delta\":{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":", p->call);
    fm_buf_json_strn(out, text, len);
    fm_buf_puts(out, j->p.turn.wire == FM_WIRE_FUNCTIONS ? "}}" : "}}]}");
    break;
  default:
    fm_buf_puts(out, "\"delta\":{\"content\":");
    fm_buf_json_strn(out, text, len);
    fm_buf_putc(out, '}');
    if (j->p.turn.logprobs) {
      fm_buf_puts(out, ",\"finish_reason\":null,\"logprobs\":{\"content\":[");
      put_chat_lp(j, out, c->turn.seed, c->content_tokens, text, len);
      fm_buf_puts(out, "],\"refusal\":null}}");
      chunk_end(j, out, false);
      return;
    }
  }
  fm_buf_puts(out, ",\"finish_reason\":null,\"logprobs\":null}");
  chunk_end(j, out, false);
}

static void stream_choice_end(fm_job *j, fm_buf *out, int choice, const char *reason) {
  chunk_start(j, out, choice);
  if (is_chat(j))
    PUT_LIT(out, "\"delta\":{},\"finish_reason\":\"");
  else
    PUT_LIT(out, "\"text\":\"\",\"finish_reason\":\"");
  fm_buf_puts(out, reason);
  PUT_LIT(out, "\",\"logprobs\":null}");
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

static const fm_renderer chat_renderer = {
    .stream_open = stream_open,
    .stream_part_start = stream_part_start,
    .stream_token = stream_token,
    .stream_choice_end = stream_choice_end,
    .stream_close = stream_close,
    .stream_error = stream_error,
    .body = body,
    .error = fm_openai_error_msg,
};
static const fm_renderer text_renderer = {
    .stream_open = stream_open,
    .stream_token = stream_token,
    .stream_choice_end = stream_choice_end,
    .stream_close = stream_close,
    .stream_error = stream_error,
    .body = body,
    .error = fm_openai_error_msg,
};

/* ---- handlers ------------------------------------------------------------- */

static void handle(fm_req *r, bool chat) {
  if (r->srv->opt.upstream) {
    fm_record_proxy(r, chat ? "chat/completions" : "completions");
    return;
  }
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
                "\"supports_chat\":%s,\"supports_tools\":%s,\"supports_response_schema\":%s,"
                "\"supports_reasoning\":%s,\"serving_paths\":[",
                m->context_length, m->supports_chat ? "true" : "false",
                m->agent.tools ? "true" : "false", m->supports_chat ? "true" : "false",
                m->agent.reasoning ? "true" : "false");
  bool first = true;
  for (int k = 0; k < FM_PATH_N; k++) {
    if (!(m->paths & (1u << k))) continue;
    fm_buf_printf(b, "%s\"%s\"", first ? "" : ",", fm_path_names[k]);
    first = false;
  }
  fm_buf_putc(b, ']');
  /* Embedding models (POST embeddings) say so, with their vector size. */
  if (m->embedding_dims)
    fm_buf_printf(b, ",\"embedding\":true,\"dimensions\":%d", m->embedding_dims);
  else
    fm_buf_puts(b, ",\"embedding\":false");
  fm_buf_putc(b, '}');
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
