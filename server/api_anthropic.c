/* api_anthropic.c — the Anthropic-compatible Messages API (POST messages).
 *
 * The real fleet serves it at /inference/v1/messages, so Anthropic SDK users
 * point baseURL at https://api.fireworks.ai/inference. Requests go through
 * the same fleet, limits, cache and pacing as the OpenAI routes (infer.c);
 * this file only translates the wire format (api_read_anthropic.c reads the
 * request). */
#include "api.h"
#include "record.h"

#include "infer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* While waiting for the first token a stream sends a ping this often (simulated). */
#define PING_US 200000

/* ---- rendering ---------------------------------------------------------------- */

static const char *stop_reason(const fm_choice *c) {
  if (c->turn.stopped) return "stop_sequence";
  if (c->turn.capped) return "max_tokens";
  return c->turn.calls ? "tool_use" : "end_turn";
}

static void put_stop_sequence(const fm_job *j, const fm_choice *c, fm_buf *b) {
  fm_buf_puts(b, ",\"stop_sequence\":");
  if (c->turn.stopped && c->turn.stop_index >= 0)
    fm_buf_json_str(b, j->p.stop[c->turn.stop_index]);
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

static void put_signature(const fm_job *j, int part, fm_buf *b) {
  char sig[FM_SIGNATURE_LEN + 1];
  fm_turn_signature(&j->choices[0].turn, part, sig);
  fm_buf_json_str(b, sig);
}

/* A content block's head: the whole block but its text, which `open` leaves
 * to follow (non-streaming) or empty (content_block_start). */
static void put_block_start(const fm_job *j, int part, fm_buf *b) {
  const fm_part *p = &j->choices[0].turn.parts[part];
  switch (p->kind) {
  case FM_PART_REASONING:
    fm_buf_puts(b, "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}");
    break;
  case FM_PART_TOOL_CALL:
    fm_buf_printf(b, "{\"type\":\"tool_use\",\"id\":\"toolu_%s\",\"name\":", p->id);
    fm_buf_json_str(b, fm_part_tool_name(p, &j->p.turn));
    fm_buf_puts(b, ",\"input\":{}}");
    break;
  default:
    fm_buf_puts(b, "{\"type\":\"text\",\"text\":\"\"}");
  }
}

static void body(fm_job *j, fm_buf *b) {
  const fm_choice *c = &j->choices[0];
  put_message_head(j, b);
  fm_buf_puts(b, ",\"content\":[");
  for (int k = 0; k < c->turn.n_parts; k++) {
    const fm_part *p = &c->turn.parts[k];
    const char *text = p->text.data ? p->text.data : "";
    if (k) fm_buf_putc(b, ',');
    switch (p->kind) {
    case FM_PART_REASONING:
      fm_buf_puts(b, "{\"type\":\"thinking\",\"thinking\":");
      fm_buf_json_strn(b, text, p->text.len);
      fm_buf_puts(b, ",\"signature\":");
      put_signature(j, k, b);
      fm_buf_putc(b, '}');
      break;
    case FM_PART_TOOL_CALL:
      fm_buf_printf(b, "{\"type\":\"tool_use\",\"id\":\"toolu_%s\",\"name\":", p->id);
      fm_buf_json_str(b, fm_part_tool_name(p, &j->p.turn));
      fm_buf_puts(b, ",\"input\":");
      /* arguments cut by max_tokens are not JSON: the block says {} */
      if (p->off == p->bytes.len && p->text.len)
        fm_buf_put(b, p->text.data, p->text.len);
      else
        fm_buf_puts(b, "{}");
      fm_buf_putc(b, '}');
      break;
    default:
      fm_buf_puts(b, "{\"type\":\"text\",\"text\":");
      fm_buf_json_strn(b, text, p->text.len);
      fm_buf_putc(b, '}');
    }
  }
  fm_buf_printf(b, "],\"stop_reason\":\"%s\"", stop_reason(c));
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

/* render_state: the highest content block started so far (-1: none). */
static void block_start(fm_job *j, fm_buf *out, int part) {
  if (part <= j->render_state) return;
  j->render_state = part;
  event(out, "content_block_start");
  fm_buf_printf(out, "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":", part);
  put_block_start(j, part, out);
  fm_buf_puts(out, "}\n\n");
}

static void stream_open(fm_job *j, fm_buf *out) {
  event(out, "message_start");
  fm_buf_puts(out, "{\"type\":\"message_start\",\"message\":");
  put_message_head(j, out);
  fm_buf_puts(out, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,");
  put_usage(j, out, 1);
  fm_buf_puts(out, "}}\n\n");
  j->render_state = -1;
  if (j->choices[0].turn.n_parts > 0) block_start(j, out, 0);
  stream_ping(j, out);
}

static void stream_part_start(fm_job *j, fm_buf *out, int choice, int part) {
  (void)choice;
  block_start(j, out, part);
}

static void stream_token(fm_job *j, fm_buf *out, int choice, int part, const char *text,
                         size_t len) {
  (void)choice;
  if (len == 0) return;
  const fm_part *p = &j->choices[0].turn.parts[part];
  event(out, "content_block_delta");
  fm_buf_printf(out, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":", part);
  switch (p->kind) {
  case FM_PART_REASONING:
    fm_buf_puts(out, "{\"type\":\"thinking_delta\",\"thinking\":");
    break;
  case FM_PART_TOOL_CALL:
    fm_buf_puts(out, "{\"type\":\"input_json_delta\",\"partial_json\":");
    break;
  default:
    fm_buf_puts(out, "{\"type\":\"text_delta\",\"text\":");
  }
  fm_buf_json_strn(out, text, len);
  fm_buf_puts(out, "}}\n\n");
}

static void stream_part_end(fm_job *j, fm_buf *out, int choice, int part) {
  (void)choice;
  if (j->choices[0].turn.parts[part].kind == FM_PART_REASONING) {
    event(out, "content_block_delta");
    fm_buf_printf(out,
                  "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                  "\"signature_delta\",\"signature\":",
                  part);
    put_signature(j, part, out);
    fm_buf_puts(out, "}}\n\n");
  }
  event(out, "content_block_stop");
  fm_buf_printf(out, "{\"type\":\"content_block_stop\",\"index\":%d}\n\n", part);
}

static void stream_choice_end(fm_job *j, fm_buf *out, int choice, const char *reason) {
  (void)reason;
  const fm_choice *c = &j->choices[choice];
  if (c->open_part < 0 && j->render_state >= 0) /* a block opened, no token came */
    stream_part_end(j, out, choice, j->render_state);
  event(out, "message_delta");
  fm_buf_printf(out, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\"",
                stop_reason(c));
  put_stop_sequence(j, c, out);
  fm_buf_printf(out, "},\"usage\":{\"output_tokens\":%u}}\n\n", c->turn.produced);
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
    .open_early = true,
    .ping_us = PING_US,
    .stream_ping = stream_ping,
    .stream_open = stream_open,
    .stream_part_start = stream_part_start,
    .stream_token = stream_token,
    .stream_part_end = stream_part_end,
    .stream_choice_end = stream_choice_end,
    .stream_close = stream_close,
    .stream_error = stream_error,
    .body = body,
    .error = error,
};

void fm_api_messages(fm_req *r) {
  if (r->srv->opt.upstream) {
    fm_record_proxy(r, "messages");
    return;
  }
  fm_read_in in = fm_api_read_in(r);
  fm_infer_params p;
  fm_api_err e = {0};
  if (!fm_read_messages(&in, &p, &e)) {
    fm_api_reply_err(r, &e);
    return;
  }
  if (!fm_api_account(r, &p)) return;
  fm_req_header(r, "request-id", "%s", r->request_id);
  fm_infer_start(r, &p, &anthropic_renderer);
}
