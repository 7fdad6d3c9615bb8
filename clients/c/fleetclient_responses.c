/* fleetclient_responses.c — the Responses API wire (POST /responses): the
 * caller's chat-form request as a Responses body, and the answer (a response
 * object, or its typed stream events) read into the same fm_answer chat
 * completions fill. Nothing here does I/O or decides anything: statuses,
 * headers, Retry-After and the policy stay in fleetclient_http.c.
 *
 * Every body says `store: false`: the caller (fleetdrill's agent chains
 * among them) sends the whole conversation on every call, so nothing needs
 * to be kept for a previous_response_id, and nothing fills the server's
 * response store.
 *
 * A streamed function call arrives as response.output_item.added (call_id,
 * name), argument deltas, then .done events carrying the whole arguments;
 * calls are placed by their output_index, and a whole text replaces the
 * pieces, so reading an item twice (added, done, or a non-streamed output)
 * gives it once. */
#define _POSIX_C_SOURCE 200809L
#include "fleetclient_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fm_str(const cJSON *o, const char *key) {
  return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static bool fm_is(const char *s, const char *want) {
  return s && strcmp(s, want) == 0;
}

/* ---- request ---- */

/* Adds {type, k1: v1, k2: v2, k3: v3} (a NULL key ends the list) to the
 * array `to`. Returns the item, or NULL when memory runs out. */
static cJSON *fm_responses_item(cJSON *to, const char *type, const char *k1, const char *v1,
                                const char *k2, const char *v2, const char *k3, const char *v3) {
  cJSON *it = cJSON_CreateObject();
  if (!it) return NULL;
  cJSON_AddItemToArray(to, it);
  const char *keys[] = {"type", k1, k2, k3}, *vals[] = {type, v1, v2, v3};
  for (int i = 0; i < 4 && keys[i]; i++)
    if (!cJSON_AddStringToObject(it, keys[i], vals[i] ? vals[i] : "")) return NULL;
  return it;
}

/* Chat message content as Responses content: a string stays a string; text
 * parts become input_text (output_text for the assistant), image_url parts
 * input_image; anything else goes as it is, for the server to judge. */
static cJSON *fm_responses_content(const cJSON *content, bool assistant) {
  if (!content || cJSON_IsNull(content)) return cJSON_CreateString("");
  if (!cJSON_IsArray(content)) return cJSON_Duplicate(content, true);
  cJSON *parts = cJSON_CreateArray();
  if (!parts) return NULL;
  const cJSON *p;
  cJSON_ArrayForEach(p, content) {
    const char *type = fm_str(p, "type"), *text = fm_str(p, "text");
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(p, "image_url");
    const char *url = cJSON_IsString(img) ? img->valuestring : fm_str(img, "url");
    cJSON *q = NULL;
    if (fm_is(type, "text") && text) {
      q = fm_responses_item(parts, assistant ? "output_text" : "input_text", "text", text, NULL,
                            NULL, NULL, NULL);
    } else if (fm_is(type, "image_url") && url) {
      q = fm_responses_item(parts, "input_image", "image_url", url, NULL, NULL, NULL, NULL);
    } else if ((q = cJSON_Duplicate(p, true))) {
      cJSON_AddItemToArray(parts, q);
    }
    if (!q) {
      cJSON_Delete(parts);
      return NULL;
    }
  }
  return parts;
}

/* A tool message's content as a function_call_output's output: its text. */
static char *fm_responses_output_text(const cJSON *content) {
  if (cJSON_IsString(content)) return strdup(content->valuestring);
  if (content && !cJSON_IsArray(content) && !cJSON_IsNull(content))
    return cJSON_PrintUnformatted(content);
  fm_buf b = {0};
  const cJSON *p;
  cJSON_ArrayForEach(p, content) {
    const char *t = fm_str(p, "text");
    if (t && fm_buf_add(&b, t, strlen(t), FM_CONTENT_MAX) != 0) break;
  }
  return b.p ? b.p : strdup("");
}

/* One chat message as input items. Returns -1 when memory runs out. */
static int fm_responses_message(cJSON *input, const cJSON *m) {
  const char *role = fm_str(m, "role");
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
  if (!cJSON_IsObject(m) || !role) { /* not a message: sent as it is, for the server's 400 */
    cJSON *copy = cJSON_Duplicate(m, true);
    return copy ? (cJSON_AddItemToArray(input, copy), 0) : -1;
  }
  if (fm_is(role, "tool")) {
    char *out = fm_responses_output_text(content);
    cJSON *it = out ? fm_responses_item(input, "function_call_output", "call_id",
                                        fm_str(m, "tool_call_id"), "output", out, NULL, NULL)
                    : NULL;
    free(out);
    return it ? 0 : -1;
  }
  bool assistant = fm_is(role, "assistant");
  bool has_text = cJSON_IsString(content) ? *content->valuestring != '\0'
                                          : cJSON_IsArray(content) && cJSON_GetArraySize(content);
  if (!assistant || has_text) {
    cJSON *it = fm_responses_item(input, "message", "role", role, NULL, NULL, NULL, NULL);
    cJSON *c = it ? fm_responses_content(content, assistant) : NULL;
    if (!c) return -1;
    cJSON_AddItemToObject(it, "content", c);
  }
  const cJSON *tc, *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
  if (!assistant || !cJSON_IsArray(calls)) calls = NULL;
  cJSON_ArrayForEach(tc, calls) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    char *printed = args && !cJSON_IsString(args) ? cJSON_PrintUnformatted(args) : NULL;
    cJSON *it = fm_responses_item(input, "function_call", "call_id", fm_str(tc, "id"), "name",
                                  fm_str(fn, "name"), "arguments",
                                  printed ? printed : fm_str(fn, "arguments"));
    free(printed);
    if (!it) return -1;
  }
  return 0;
}

cJSON *fm_responses_input(const cJSON *messages, const char **instructions) {
  *instructions = NULL;
  cJSON *input = cJSON_CreateArray();
  if (!input) return NULL;
  const cJSON *m;
  bool first = true;
  cJSON_ArrayForEach(m, messages) {
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (first && fm_is(fm_str(m, "role"), "system") && cJSON_IsString(content)) {
      *instructions = content->valuestring;
    } else if (fm_responses_message(input, m) != 0) {
      cJSON_Delete(input);
      return NULL;
    }
    first = false;
  }
  return input;
}

cJSON *fm_responses_tools(const cJSON *tools) {
  cJSON *out = cJSON_CreateArray();
  const cJSON *t, *f;
  if (!out) return NULL;
  cJSON_ArrayForEach(t, tools) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
    cJSON *flat = cJSON_IsObject(fn) ? cJSON_CreateObject() : cJSON_Duplicate(t, true);
    if (!flat) goto oom;
    cJSON_AddItemToArray(out, flat);
    if (!cJSON_IsObject(fn)) continue; /* already flat, or for the server to judge */
    if (!cJSON_AddStringToObject(flat, "type", "function")) goto oom;
    cJSON_ArrayForEach(f, fn) { /* name, description, parameters, strict */
      if (strcmp(f->string, "type") == 0) continue;
      cJSON *copy = cJSON_Duplicate(f, true);
      if (!copy) goto oom;
      cJSON_AddItemToObject(flat, f->string, copy);
    }
  }
  return out;
oom:
  cJSON_Delete(out);
  return NULL;
}

cJSON *fm_responses_tool_choice(const char *tool_choice) {
  if (tool_choice[0] != '{') return cJSON_CreateString(tool_choice);
  cJSON *tc = cJSON_Parse(tool_choice);
  const char *name = fm_str(cJSON_GetObjectItemCaseSensitive(tc, "function"), "name");
  if (!name) return tc; /* already {type, name}, or something for the server to judge */
  cJSON *flat = cJSON_CreateObject();
  if (flat && (!cJSON_AddStringToObject(flat, "type", "function") ||
               !cJSON_AddStringToObject(flat, "name", name)))
    cJSON_Delete(flat), flat = NULL;
  cJSON_Delete(tc);
  return flat;
}

char *fm_responses_body(const fm_responses_req *rr, fm_client_tier tier) {
  const fm_chat_request *r = rr->req;
  cJSON *o = cJSON_CreateObject();
  char *out = NULL;
  if (!o || !cJSON_AddStringToObject(o, "model", rr->model)) goto done;
  if (rr->input ? !cJSON_AddItemReferenceToObject(o, "input", rr->input)
                : !cJSON_AddStringToObject(o, "input", r->prompt))
    goto done;
  const char *instructions = rr->input ? rr->instructions : r->system;
  if (instructions && !cJSON_AddStringToObject(o, "instructions", instructions)) goto done;
  if (rr->tools && !cJSON_AddItemReferenceToObject(o, "tools", rr->tools)) goto done;
  if (r->tool_choice) {
    cJSON *tc = fm_responses_tool_choice(r->tool_choice);
    if (!tc) goto done;
    cJSON_AddItemToObject(o, "tool_choice", tc);
  }
  if (r->max_tokens > 0 && !cJSON_AddNumberToObject(o, "max_output_tokens", r->max_tokens))
    goto done;
  if (r->stream && !cJSON_AddTrueToObject(o, "stream")) goto done;
  if (tier == FM_PRIORITY && !cJSON_AddStringToObject(o, "service_tier", "priority")) goto done;
  if (r->cache_key && !cJSON_AddStringToObject(o, "prompt_cache_key", r->cache_key)) goto done;
  if (!cJSON_AddFalseToObject(o, "store")) goto done;
  out = cJSON_PrintUnformatted(o);
done:
  cJSON_Delete(o);
  return out;
}

/* ---- answer ---- */

/* The slot of the function_call item at output_index `index`, opened on
 * first sight with the item's call_id and name. NULL past FM_TOOL_CALLS_MAX. */
static fm_tool_slot *fm_responses_slot(fm_answer *a, int index, const cJSON *item) {
  int k = 0;
  while (k < a->n_tools && a->tools[k].item != index)
    k++;
  fm_tool_slot *t = fm_answer_tool(a, k, fm_str(item, "call_id"), fm_str(item, "name"));
  if (t) t->item = index;
  return t;
}

/* A call's whole arguments replace the pieces read so far. */
static void fm_responses_args(fm_tool_slot *t, const char *args) {
  if (!t || !args || !*args) return;
  t->args.n = 0;
  t->cut = false;
  fm_tool_args_add(t, args);
}

static int fm_responses_index(const cJSON *ev) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(ev, "output_index");
  return cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble < 1e6 ? x->valueint : -1;
}

/* An output item, whole: a message's text, or a function call. */
static void fm_responses_output_item(fm_answer *a, const cJSON *item, int index) {
  const char *type = fm_str(item, "type");
  if (fm_is(type, "function_call")) {
    fm_responses_args(fm_responses_slot(a, index, item), fm_str(item, "arguments"));
  } else if (fm_is(type, "message")) {
    const cJSON *part;
    cJSON_ArrayForEach(part, cJSON_GetObjectItemCaseSensitive(item, "content")) {
      if (fm_is(fm_str(part, "type"), "output_text")) fm_answer_text(a, fm_str(part, "text"));
    }
  } /* reasoning: not part of the result */
}

/* What the response's end says: usage, and the finish reason from its
 * status and calls ("length" first, as chat reports a turn the limit cut). */
static void fm_responses_status(fm_answer *a, const cJSON *response) {
  fm_answer_usage(a, cJSON_GetObjectItemCaseSensitive(response, "usage"), "input_tokens",
                  "input_tokens_details", "output_tokens");
  const char *status = fm_str(response, "status");
  if (fm_is(status, "failed")) {
    a->failed = true;
    fm_answer_error(a, cJSON_GetObjectItemCaseSensitive(response, "error"));
    if (!a->res->error[0]) snprintf(a->res->error, sizeof a->res->error, "response failed");
    return;
  }
  fm_answer_finish_reason(a, fm_is(status, "incomplete") ? "length"
                             : a->n_tools > 0            ? "tool_calls"
                                                         : "stop");
}

void fm_responses_read(fm_answer *a, const cJSON *response) {
  const cJSON *item;
  int i = 0;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(response, "output")) {
    fm_responses_output_item(a, item, i++);
  }
  fm_responses_status(a, response);
}

void fm_responses_event(fm_answer *a, const cJSON *ev) {
  const char *type = fm_str(ev, "type");
  if (!type) return;
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
  if (fm_is(type, "response.output_text.delta")) {
    fm_answer_text(a, fm_str(ev, "delta"));
  } else if (fm_is(type, "response.output_item.added") ||
             fm_is(type, "response.output_item.done")) {
    if (fm_is(fm_str(item, "type"), "function_call")) /* message text comes in deltas */
      fm_responses_output_item(a, item, fm_responses_index(ev));
  } else if (fm_is(type, "response.function_call_arguments.delta")) {
    fm_tool_slot *t = fm_responses_slot(a, fm_responses_index(ev), NULL);
    if (t) fm_tool_args_add(t, fm_str(ev, "delta"));
  } else if (fm_is(type, "response.function_call_arguments.done")) {
    fm_responses_args(fm_responses_slot(a, fm_responses_index(ev), ev), fm_str(ev, "arguments"));
  } else if (fm_is(type, "response.completed") || fm_is(type, "response.incomplete") ||
             fm_is(type, "response.failed")) {
    fm_responses_status(a, cJSON_GetObjectItemCaseSensitive(ev, "response"));
    if (fm_is(type, "response.failed") && !a->failed) {
      a->failed = true;
      snprintf(a->res->error, sizeof a->res->error, "response failed");
    }
    a->ended = true;
  } else if (fm_is(type, "error")) { /* {type, code, message}, or the message under `error` */
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(ev, "error");
    a->failed = true;
    fm_answer_error(a, err ? err : ev);
    if (!a->res->error[0]) snprintf(a->res->error, sizeof a->res->error, "stream error event");
  }
}
