/* api_responses.c — the Responses API: POST responses, GET responses (a
 * list page), GET and DELETE responses/{id} (docs/api.md, "Responses").
 *
 * A request goes through the same fleet, limits, cache, pacing, faults and
 * reply rules as chat (infer.c); api_read_responses.c reads it and this file
 * renders the turn as output items, or as the typed stream events, and keeps
 * the finished response in the bounded store (respstore.h) when asked to. */
#include "api.h"

#include "accounts.h"
#include "infer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rendering ------------------------------------------------------------ */

/* A turn the limit cut short is "incomplete" (reason max_output_tokens). */
static bool incomplete(const fm_job *j) {
  return j->choices[0].turn.capped;
}

/* The output items: one per part that produced a token (the message's text
 * part even when it produced none but is all there is). */
static bool shown(const fm_turn *t, int k) {
  return t->parts[k].produced > 0 || (t->n_parts == 1 && t->parts[k].kind == FM_PART_TEXT);
}

static void put_item_id(const fm_job *j, int k, fm_buf *b) {
  static const char *const prefix[] = {"rs", "msg", "fc"};
  const fm_part *p = &j->choices[0].turn.parts[k];
  fm_buf_printf(b, "\"%s_%s_%d\"", prefix[p->kind], j->id, k);
}

static const char *text_of(const fm_part *p) {
  return p->text.data ? p->text.data : "";
}

/* One output item. done: as it ends (its text whole); else as it starts. */
static void put_item(const fm_job *j, int k, bool done, fm_buf *b) {
  const fm_part *p = &j->choices[0].turn.parts[k];
  const char *status = !done ? "in_progress" : incomplete(j) ? "incomplete" : "completed";
  fm_buf_puts(b, "{\"id\":");
  put_item_id(j, k, b);
  switch (p->kind) {
  case FM_PART_REASONING:
    /* the reasoning text as content; also as the summary when one is asked for
     * (what the AI SDK reads), fleetmock's choice (docs/api.md) */
    fm_buf_puts(b, ",\"type\":\"reasoning\",\"summary\":[");
    if (done && j->p.resp->summary) {
      fm_buf_puts(b, "{\"type\":\"summary_text\",\"text\":");
      fm_buf_json_strn(b, text_of(p), p->text.len);
      fm_buf_putc(b, '}');
    }
    fm_buf_puts(b, "],\"content\":[");
    if (done) {
      fm_buf_puts(b, "{\"type\":\"reasoning_text\",\"text\":");
      fm_buf_json_strn(b, text_of(p), p->text.len);
      fm_buf_putc(b, '}');
    }
    fm_buf_printf(b, "],\"encrypted_content\":null,\"status\":\"%s\"}", status);
    break;
  case FM_PART_TOOL_CALL:
    fm_buf_printf(b, ",\"type\":\"function_call\",\"status\":\"%s\",\"call_id\":\"call_%s\",",
                  status, p->id);
    fm_buf_puts(b, "\"name\":");
    fm_buf_json_str(b, fm_part_tool_name(p, &j->p.turn));
    fm_buf_puts(b, ",\"arguments\":");
    fm_buf_json_strn(b, done ? text_of(p) : "", done ? p->text.len : 0);
    fm_buf_putc(b, '}');
    break;
  default:
    fm_buf_printf(b, ",\"type\":\"message\",\"status\":\"%s\",\"role\":\"assistant\",\"content\":[",
                  status);
    if (done) {
      fm_buf_puts(b, "{\"type\":\"output_text\",\"text\":");
      fm_buf_json_strn(b, text_of(p), p->text.len);
      fm_buf_puts(b, ",\"annotations\":[],\"logprobs\":[]}");
    }
    fm_buf_puts(b, "]}");
  }
}

static void put_usage(const fm_job *j, fm_buf *b) {
  const fm_turn *t = &j->choices[0].turn;
  fm_buf_printf(b,
                "\"usage\":{\"input_tokens\":%u,\"input_tokens_details\":{\"cached_tokens\":%u},"
                "\"output_tokens\":%u,\"output_tokens_details\":{\"reasoning_tokens\":%u},"
                "\"total_tokens\":%u}",
                j->p.prompt_tokens, j->p.cached_tokens, t->produced, t->reasoning_produced,
                j->p.prompt_tokens + t->produced);
}

/* The response object. status "in_progress" (the stream's first events:
 * no output, no usage), "completed", "incomplete" or "failed" (with error). */
static void put_response(const fm_job *j, const char *status, const char *code, const char *msg,
                         fm_buf *b) {
  bool final = strcmp(status, "in_progress") != 0;
  fm_buf_printf(b,
                "{\"id\":\"resp_%s\",\"object\":\"response\",\"created_at\":%lld,\"status\":\"%s\","
                "\"background\":false,\"error\":",
                j->id, j->created, status);
  if (code) {
    fm_buf_puts(b, "{\"type\":\"server_error\",\"code\":");
    fm_buf_json_str(b, code);
    fm_buf_puts(b, ",\"message\":");
    fm_buf_json_str(b, msg);
    fm_buf_putc(b, '}');
  } else {
    fm_buf_puts(b, "null");
  }
  fm_buf_puts(b, ",\"incomplete_details\":");
  fm_buf_puts(b, !strcmp(status, "incomplete") ? "{\"reason\":\"max_output_tokens\"}" : "null");
  fm_buf_putc(b, ',');
  fm_buf_puts(b, j->p.resp->echo);
  fm_buf_puts(b, ",\"model\":");
  fm_buf_json_str(b, j->p.model_name);
  fm_buf_puts(b, ",\"output\":[");
  const fm_turn *t = &j->choices[0].turn;
  bool first = true;
  for (int k = 0; final && k < t->n_parts; k++) {
    if (!shown(t, k)) continue;
    if (!first) fm_buf_putc(b, ',');
    first = false;
    put_item(j, k, true, b);
  }
  fm_buf_printf(b, "],\"service_tier\":\"%s\",", fm_path_echo(j->p.path));
  if (final)
    put_usage(j, b);
  else
    fm_buf_puts(b, "\"usage\":null");
  fm_buf_putc(b, '}');
}

static const char *final_status(const fm_job *j) {
  return incomplete(j) ? "incomplete" : "completed";
}

/* Keeps the finished response: the object, and the conversation it ends
 * (its input items and its output, reasoning left out) for a later turn. */
static void store(fm_job *j, const char *response, size_t len) {
  if (!j->p.resp->store || !j->p.account) return;
  fm_buf conv; /* the affinity (a JSON string or null), a newline, the items */
  fm_buf_init(&conv);
  if (j->p.affinity)
    fm_buf_json_str(&conv, j->p.affinity);
  else
    fm_buf_puts(&conv, "null");
  fm_buf_putc(&conv, '\n');
  const char *items = j->p.resp->items;
  size_t n = strlen(items);
  fm_buf_put(&conv, items, n > 0 ? n - 1 : 0); /* without its closing bracket */
  bool empty = n <= 2;
  const fm_turn *t = &j->choices[0].turn;
  for (int k = 0; k < t->n_parts; k++) {
    if (!shown(t, k) || t->parts[k].kind == FM_PART_REASONING) continue;
    if (!empty) fm_buf_putc(&conv, ',');
    empty = false;
    put_item(j, k, true, &conv);
  }
  fm_buf_putc(&conv, ']');
  char id[FM_RESP_ID_BYTES];
  snprintf(id, sizeof(id), "resp_%s", j->id);
  if (!conv.oom)
    fm_resp_store_put(&j->srv->responses, id, j->p.account->key_id, fm_server_now(j->srv), response,
                      len, conv.data, conv.len);
  fm_buf_free(&conv);
}

static void body(fm_job *j, fm_buf *b) {
  size_t start = b->len;
  put_response(j, final_status(j), NULL, NULL, b);
  if (!b->oom) store(j, b->data + start, b->len - start);
}

/* ---- streaming: typed events, each with its sequence_number ----------------- */

/* render_state: the next sequence number. */
static void event(fm_job *j, fm_buf *out, const char *type) {
  fm_buf_printf(out, "event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%d", type, type,
                j->render_state++);
}

static void event_end(fm_buf *out) {
  fm_buf_puts(out, "}\n\n");
}

/* The output_index of part k: the items before it that are shown. */
static int output_index(const fm_job *j, int k) {
  const fm_turn *t = &j->choices[0].turn;
  int n = 0;
  for (int i = 0; i < k; i++)
    n += t->parts[i].produced > 0;
  return n;
}

static void item_ref(fm_job *j, int k, fm_buf *out) {
  fm_buf_puts(out, ",\"item_id\":");
  put_item_id(j, k, out);
  fm_buf_printf(out, ",\"output_index\":%d", output_index(j, k));
}

static void stream_open(fm_job *j, fm_buf *out) {
  j->render_state = 0;
  event(j, out, "response.created");
  fm_buf_puts(out, ",\"response\":");
  put_response(j, "in_progress", NULL, NULL, out);
  event_end(out);
  event(j, out, "response.in_progress");
  fm_buf_puts(out, ",\"response\":");
  put_response(j, "in_progress", NULL, NULL, out);
  event_end(out);
}

static void stream_part_start(fm_job *j, fm_buf *out, int choice, int part) {
  (void)choice;
  const fm_part *p = &j->choices[0].turn.parts[part];
  event(j, out, "response.output_item.added");
  fm_buf_printf(out, ",\"output_index\":%d,\"item\":", output_index(j, part));
  put_item(j, part, false, out);
  event_end(out);
  if (p->kind == FM_PART_TOOL_CALL) return;
  if (p->kind == FM_PART_REASONING && j->p.resp->summary) {
    event(j, out, "response.reasoning_summary_part.added");
    item_ref(j, part, out);
    fm_buf_puts(out, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}");
    event_end(out);
  }
  event(j, out, "response.content_part.added");
  item_ref(j, part, out);
  fm_buf_puts(out, p->kind == FM_PART_REASONING
                       ? ",\"content_index\":0,\"part\":{\"type\":\"reasoning_text\",\"text\":\"\"}"
                       : ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\","
                         "\"annotations\":[],\"logprobs\":[]}");
  event_end(out);
}

static void stream_token(fm_job *j, fm_buf *out, int choice, int part, const char *text,
                         size_t len) {
  (void)choice;
  if (len == 0) return;
  fm_part *p = &j->choices[0].turn.parts[part];
  fm_buf_put(&p->text, text, len); /* the done events and the final object repeat it whole */
  switch (p->kind) {
  case FM_PART_REASONING: {
    /* one delta per token: of the summary when one is asked for, else of the text */
    bool sum = j->p.resp->summary;
    event(j, out, sum ? "response.reasoning_summary_text.delta" : "response.reasoning_text.delta");
    item_ref(j, part, out);
    fm_buf_puts(out, sum ? ",\"summary_index\":0,\"delta\":" : ",\"content_index\":0,\"delta\":");
    break;
  }
  case FM_PART_TOOL_CALL:
    event(j, out, "response.function_call_arguments.delta");
    item_ref(j, part, out);
    fm_buf_puts(out, ",\"delta\":");
    break;
  default:
    event(j, out, "response.output_text.delta");
    item_ref(j, part, out);
    fm_buf_puts(out, ",\"content_index\":0,\"delta\":");
  }
  fm_buf_json_strn(out, text, len);
  if (p->kind == FM_PART_TEXT) fm_buf_puts(out, ",\"logprobs\":[]");
  event_end(out);
}

/* A text's two closing events: `done` with the whole text, then
 * `part_event` with it as a part of type part_type; index names the part's
 * place (content_index, summary_index). An answer's output_text also
 * carries its (empty) logprobs and annotations. */
static void text_done(fm_job *j, fm_buf *out, int part, const char *done, const char *part_event,
                      const char *index, const char *part_type) {
  bool answer = !strcmp(part_type, "output_text");
  const fm_part *p = &j->choices[0].turn.parts[part];
  event(j, out, done);
  item_ref(j, part, out);
  fm_buf_printf(out, ",\"%s\":0,\"text\":", index);
  fm_buf_json_strn(out, text_of(p), p->text.len);
  if (answer) fm_buf_puts(out, ",\"logprobs\":[]");
  event_end(out);
  event(j, out, part_event);
  item_ref(j, part, out);
  fm_buf_printf(out, ",\"%s\":0,\"part\":{\"type\":\"%s\",\"text\":", index, part_type);
  fm_buf_json_strn(out, text_of(p), p->text.len);
  fm_buf_puts(out, answer ? ",\"annotations\":[],\"logprobs\":[]}" : "}");
  event_end(out);
}

static void stream_part_end(fm_job *j, fm_buf *out, int choice, int part) {
  (void)choice;
  const fm_part *p = &j->choices[0].turn.parts[part];
  switch (p->kind) {
  case FM_PART_REASONING:
    if (j->p.resp->summary)
      text_done(j, out, part, "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done", "summary_index", "summary_text");
    text_done(j, out, part, "response.reasoning_text.done", "response.content_part.done",
              "content_index", "reasoning_text");
    break;
  case FM_PART_TOOL_CALL:
    event(j, out, "response.function_call_arguments.done");
    item_ref(j, part, out);
    fm_buf_puts(out, ",\"name\":");
    fm_buf_json_str(out, fm_part_tool_name(p, &j->p.turn));
    fm_buf_puts(out, ",\"arguments\":");
    fm_buf_json_strn(out, text_of(p), p->text.len);
    event_end(out);
    break;
  default:
    text_done(j, out, part, "response.output_text.done", "response.content_part.done",
              "content_index", "output_text");
  }
  event(j, out, "response.output_item.done");
  fm_buf_printf(out, ",\"output_index\":%d,\"item\":", output_index(j, part));
  put_item(j, part, true, out);
  event_end(out);
}

static void stream_choice_end(fm_job *j, fm_buf *out, int choice, const char *reason) {
  (void)out;
  (void)choice;
  (void)reason;
  j->done_us = fm_server_now(j->srv);
}

/* The last event carries the whole response; the stored copy is that object. */
static void stream_final(fm_job *j, fm_buf *out, const char *status, const char *code,
                         const char *msg) {
  char type[32];
  snprintf(type, sizeof(type), "response.%s", status);
  event(j, out, type);
  fm_buf_puts(out, ",\"response\":");
  size_t start = out->len;
  put_response(j, status, code, msg, out);
  size_t end = out->len;
  event_end(out);
  if (!out->oom) store(j, out->data + start, end - start);
}

static void stream_close(fm_job *j, fm_buf *out) {
  stream_final(j, out, final_status(j), NULL, NULL);
}

static void stream_error(fm_job *j, fm_buf *out, int status, const char *code, const char *msg) {
  (void)status;
  if (!j->opened) stream_open(j, out);
  /* an item left open ends, as the SDKs expect every added item to be done */
  const fm_choice *c = &j->choices[0];
  if (c->open_part >= 0 && !c->finished) stream_part_end(j, out, 0, c->open_part);
  stream_final(j, out, "failed", code, msg);
}

static const fm_renderer responses_renderer = {
    .open_early = true,
    .stream_open = stream_open,
    .stream_part_start = stream_part_start,
    .stream_token = stream_token,
    .stream_part_end = stream_part_end,
    .stream_choice_end = stream_choice_end,
    .stream_close = stream_close,
    .stream_error = stream_error,
    .body = body,
    .error = fm_openai_error_msg,
};

/* ---- the routes ----------------------------------------------------------- */

typedef struct lookup_ctx {
  fm_server *srv;
  const char *owner;
} lookup_ctx;

static bool lookup(void *ctx, const char *id, bool response, fm_buf *out) {
  lookup_ctx *k = ctx;
  return fm_resp_store_get(&k->srv->responses, id, k->owner, fm_server_now(k->srv),
                           response ? out : NULL, response ? NULL : out);
}

static void create(fm_req *r) {
  char owner[16];
  fm_key_id(fm_bearer_key(r), owner);
  lookup_ctx ctx = {.srv = r->srv, .owner = owner};
  fm_read_in in = fm_api_read_in(r);
  fm_infer_params p;
  fm_api_err e = {0};
  if (!fm_read_responses(&in, lookup, &ctx, &p, &e)) {
    fm_api_reply_err(r, &e);
    return;
  }
  if (!fm_api_account(r, &p)) return;
  if (!p.affinity) { /* a new conversation: its turns stay on one replica */
    char aff[FM_RESP_ID_BYTES];
    snprintf(aff, sizeof(aff), "resp_%.39s", r->request_id);
    p.affinity = strdup(aff);
  }
  fm_infer_start(r, &p, &responses_renderer);
}

static void not_found(fm_req *r, const char *id) {
  fm_openai_error(r, 404, "NOT_FOUND", "response_id",
                  "no stored response \"%.64s\" for this API key: it was never stored (store: "
                  "false), was deleted, expired or was evicted from the bounded store "
                  "(server.responses), or belongs to another key",
                  id);
}

static void retrieve(fm_req *r, const char *id, const char *owner) {
  fm_buf b;
  fm_buf_init(&b);
  if (!fm_resp_store_get(&r->srv->responses, id, owner, fm_server_now(r->srv), &b, NULL)) {
    fm_buf_free(&b);
    not_found(r, id);
    return;
  }
  fm_req_reply(r, 200, "application/json", &b);
  fm_buf_free(&b);
}

static void delete_one(fm_req *r, const char *id, const char *owner) {
  if (!fm_resp_store_delete(&r->srv->responses, id, owner, fm_server_now(r->srv))) {
    not_found(r, id);
    return;
  }
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_puts(&b, "{\"id\":");
  fm_buf_json_str(&b, id);
  fm_buf_puts(&b, ",\"object\":\"response.deleted\",\"deleted\":true}");
  fm_req_reply(r, 200, "application/json", &b);
  fm_buf_free(&b);
}

static void list(fm_req *r, const char *owner) {
  static const char *const known[] = {"limit", "after", "before", "order", NULL};
  const char *unknown = fm_req_query_unknown(r, known);
  if (unknown) {
    fm_openai_error(r, 400, "INVALID_ARGUMENT", unknown,
                    "%.64s: not a parameter of GET responses; use limit, after, before or order",
                    unknown);
    return;
  }
  const char *ls = fm_req_query(r, "limit");
  long limit = 20;
  if (ls) {
    char *end;
    limit = strtol(ls, &end, 10);
    if (*end || end == ls || limit < 1 || limit > FM_RESP_LIST_MAX) {
      fm_openai_error(r, 400, "INVALID_ARGUMENT", "limit",
                      "limit: must be a whole number from 1 to %d", FM_RESP_LIST_MAX);
      return;
    }
  }
  const char *order = fm_req_query(r, "order");
  if (order && strcmp(order, "asc") && strcmp(order, "desc")) {
    fm_openai_error(r, 400, "INVALID_ARGUMENT", "order",
                    "order: must be \"desc\" (newest first, the default) or \"asc\"");
    return;
  }
  const char *after = fm_req_query(r, "after"), *before = fm_req_query(r, "before");
  fm_buf b;
  fm_buf_init(&b);
  if (!fm_resp_store_list(&r->srv->responses, owner, fm_server_now(r->srv), (int)limit,
                          order && !strcmp(order, "asc"), after, before, &b)) {
    fm_buf_free(&b);
    const char *cursor = after ? "after" : "before";
    fm_openai_error(r, 404, "NOT_FOUND", cursor,
                    "%s: \"%.64s\" is no stored response of this API key; page with the "
                    "first_id / last_id of a page you were given",
                    cursor, after ? after : before);
    return;
  }
  fm_req_reply(r, 200, "application/json", &b);
  fm_buf_free(&b);
}

static void allow(fm_req *r, const char *methods) {
  fm_req_header(r, "Allow", "%s", methods);
  fm_openai_error(r, 405, "METHOD_NOT_ALLOWED", NULL, "%s is not allowed on %s; use %s", r->method,
                  r->url, methods);
}

void fm_api_responses(fm_req *r, const char *id) {
  bool get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
  char owner[16];
  fm_key_id(fm_bearer_key(r), owner);
  if (!id) {
    if (!strcmp(r->method, "POST"))
      create(r);
    else if (get)
      list(r, owner);
    else
      allow(r, "POST, GET, HEAD");
    return;
  }
  if (strchr(id, '/')) {
    fm_openai_error(r, 404, "NOT_FOUND", NULL,
                    "no route %s %s; the Responses API here serves responses and responses/{id} "
                    "(input_items and cancel are not served)",
                    r->method, r->url);
    return;
  }
  if (get)
    retrieve(r, id, owner);
  else if (!strcmp(r->method, "DELETE"))
    delete_one(r, id, owner);
  else
    allow(r, "GET, HEAD, DELETE");
}
