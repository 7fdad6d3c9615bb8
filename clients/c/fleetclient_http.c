/* fleetclient_http.c — chat completions (or the Responses API) over libcurl,
 * steered by the policy.
 *
 * This file translates and decides nothing: it builds the request body for
 * the tier the policy chose, reads the status, Retry-After and usage out of
 * the answer (a JSON body or an SSE stream), and hands the policy an
 * fm_attempt. A call owns one easy handle that is reused for every attempt,
 * so a curl multi keeps its connections warm across retries.
 *
 * Streams are read line by line as they arrive; the assistant text is kept
 * (capped at FM_CONTENT_MAX) and a stream that ends without `data: [DONE]`
 * or with an error event is a stream error, which the policy retries on the
 * same tier and never escalates.
 *
 * Tool calls come whole in a JSON answer and in pieces in a stream (the
 * first delta of call k carries index k, its id and name, later deltas
 * carry pieces of its arguments). Both go through fm_call_tool_piece into
 * the same per-attempt slots, so the caller sees one shape either way.
 *
 * With FM_API_RESPONSES only the body and the reading of the answer change
 * (fleetclient_responses.c, into the same fm_answer); statuses, headers,
 * Retry-After and the policy go through the same code below. */
#define _POSIX_C_SOURCE 200809L
#include "fleetclient_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FM_BODY_MAX (8u << 20) /* largest non-streamed answer kept */
#define FM_LINE_MAX (1u << 20) /* longest SSE line */

int fm_buf_add(fm_buf *b, const char *s, size_t len, size_t max) {
  if (b->n + len > max) return -1;
  if (b->n + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + len + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, len);
  b->n += len;
  b->p[b->n] = '\0';
  return 0;
}

struct fm_client {
  char *url; /* base_url + /chat/completions or /responses */
  fm_client_api api;
  char *api_key, *model;
  fm_route_class route;
  fm_policy policy;
  fm_state state;
  fm_clock_fn clock;
  fm_sleep_fn sleep;
  void *clock_ctx;
  fm_alert_fn on_alert;
  void *alert_ctx;
  uint64_t rng;
  long timeout_ms;
  CURLSH *share; /* connection cache for fm_chat's blocking calls */
};

struct fm_call {
  fm_client *c;
  fm_chat_request req;      /* strings below are owned copies */
  cJSON *messages, *tools;  /* req.messages and req.tools, parsed once (Responses: converted) */
  const char *instructions; /* Responses: a leading system message's text, in `raw` */
  cJSON *raw;               /* Responses: req.messages as parsed, before conversion */
  CURL *easy;
  struct curl_slist *headers;
  char *body;
  fm_client_tier tier;
  int attempt;
  bool prepared, finished;
  int64_t started_ms;
  /* the answer to the current attempt */
  fm_buf resp;   /* a JSON body, or the partial SSE line */
  fm_answer ans; /* what the answer said, as it is read */
  bool is_sse;
  char retry_after[32], retry_after_ms[32];
  char served[16];
  fm_chat_result result;
  void *userdata;
  char errbuf[CURL_ERROR_SIZE];
};

/* ---- clock and jitter defaults ---- */

static int64_t fm_monotonic_ms(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fm_nanosleep_ms(void *ctx, int64_t ms) {
  (void)ctx;
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

/* xorshift64*: jitter only, so quality beyond "spread out" does not matter. */
static double fm_client_jitter(fm_client *c) {
  c->rng ^= c->rng >> 12;
  c->rng ^= c->rng << 25;
  c->rng ^= c->rng >> 27;
  return (double)((c->rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* ---- the client ---- */

void fm_client_config_default(fm_client_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->route = FM_ROUTE_INTERACTIVE;
  fm_policy_default(&cfg->policy);
}

static char *fm_strdup(const char *s) {
  return s ? strdup(s) : NULL;
}

fm_client *fm_client_new(const fm_client_config *cfg) {
  if (!cfg || !cfg->base_url || !*cfg->base_url || !cfg->api_key || !cfg->model) return NULL;
  if (cfg->policy.max_attempts < 1) return NULL;
  if (cfg->api != FM_API_CHAT && cfg->api != FM_API_RESPONSES) return NULL;
  fm_client *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  const char *path = cfg->api == FM_API_RESPONSES ? "/responses" : "/chat/completions";
  size_t blen = strlen(cfg->base_url);
  while (blen > 0 && cfg->base_url[blen - 1] == '/')
    blen--;
  c->url = malloc(blen + strlen(path) + 1);
  c->api_key = fm_strdup(cfg->api_key);
  c->model = fm_strdup(cfg->model);
  if (!c->url || !c->api_key || !c->model) goto err;
  memcpy(c->url, cfg->base_url, blen);
  memcpy(c->url + blen, path, strlen(path) + 1);
  c->api = cfg->api;
  c->route = cfg->route;
  c->policy = cfg->policy;
  c->clock = cfg->clock ? cfg->clock : fm_monotonic_ms;
  c->sleep = cfg->sleep ? cfg->sleep : fm_nanosleep_ms;
  c->clock_ctx = cfg->clock_ctx;
  c->on_alert = cfg->on_alert;
  c->alert_ctx = cfg->alert_ctx;
  c->rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ULL;
  c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 120000;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) goto err;
  c->share = curl_share_init();
  if (c->share) curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  return c;
err:
  free(c->url);
  free(c->api_key);
  free(c->model);
  free(c);
  return NULL;
}

void fm_client_free(fm_client *c) {
  if (!c) return;
  if (c->share) curl_share_cleanup(c->share);
  free(c->url);
  free(c->api_key);
  free(c->model);
  free(c);
  curl_global_cleanup();
}

const fm_state *fm_client_state(const fm_client *c) {
  return &c->state;
}

const fm_policy *fm_client_policy(const fm_client *c) {
  return &c->policy;
}

void fm_client_set_time_scale(fm_client *c, double time_scale) {
  if (time_scale > 0) c->policy.time_scale = time_scale;
}

int64_t fm_client_now(const fm_client *c) {
  return c->clock(c->clock_ctx);
}

void fm_chat_result_free(fm_chat_result *r) {
  if (!r) return;
  free(r->content);
  r->content = NULL;
  for (int i = 0; i < r->n_tool_calls; i++) {
    free(r->tool_calls[i].id);
    free(r->tool_calls[i].name);
    free(r->tool_calls[i].arguments);
  }
  free(r->tool_calls);
  r->tool_calls = NULL;
  r->n_tool_calls = 0;
}

/* ---- one attempt: request ---- */

static char *fm_call_body(const fm_call *call) {
  const fm_chat_request *r = &call->req;
  if (call->c->api == FM_API_RESPONSES) {
    fm_responses_req rr = {.model = call->c->model,
                           .req = r,
                           .input = call->messages,
                           .instructions = call->instructions,
                           .tools = call->tools};
    return fm_responses_body(&rr, call->tier);
  }
  cJSON *o = cJSON_CreateObject(), *msgs = NULL, *m;
  if (!o) return NULL;
  char *out = NULL;
  if (!cJSON_AddStringToObject(o, "model", call->c->model)) goto done;
  if (call->messages) {
    /* A reference: the call keeps the parsed conversation for every attempt. */
    if (!cJSON_AddItemReferenceToObject(o, "messages", call->messages)) goto done;
  } else if (!(msgs = cJSON_AddArrayToObject(o, "messages"))) {
    goto done;
  }
  if (msgs && r->system) {
    if (!(m = cJSON_CreateObject())) goto done;
    cJSON_AddItemToArray(msgs, m);
    if (!cJSON_AddStringToObject(m, "role", "system") ||
        !cJSON_AddStringToObject(m, "content", r->system))
      goto done;
  }
  if (msgs) {
    if (!(m = cJSON_CreateObject())) goto done;
    cJSON_AddItemToArray(msgs, m);
    if (!cJSON_AddStringToObject(m, "role", "user") ||
        !cJSON_AddStringToObject(m, "content", r->prompt))
      goto done;
  }
  if (call->tools && !cJSON_AddItemReferenceToObject(o, "tools", call->tools)) goto done;
  if (r->tool_choice) {
    cJSON *tc =
        r->tool_choice[0] == '{' ? cJSON_Parse(r->tool_choice) : cJSON_CreateString(r->tool_choice);
    if (!tc) goto done;
    cJSON_AddItemToObject(o, "tool_choice", tc);
  }
  if (r->max_tokens > 0 && !cJSON_AddNumberToObject(o, "max_tokens", r->max_tokens)) goto done;
  if (r->stream) {
    cJSON *so;
    if (!cJSON_AddTrueToObject(o, "stream") ||
        !(so = cJSON_AddObjectToObject(o, "stream_options")) ||
        !cJSON_AddTrueToObject(so, "include_usage"))
      goto done;
  }
  /* Standard is what the server does without a tier; only Priority is named. */
  if (call->tier == FM_PRIORITY && !cJSON_AddStringToObject(o, "service_tier", "priority"))
    goto done;
  if (r->cache_key && !cJSON_AddStringToObject(o, "prompt_cache_key", r->cache_key)) goto done;
  out = cJSON_PrintUnformatted(o);
done:
  cJSON_Delete(o);
  return out;
}

/* ---- one attempt: answer ---- */

static size_t fm_call_on_header(char *data, size_t size, size_t n, void *ud) {
  fm_call *call = ud;
  size_t len = size * n;
  if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new status line: forget the last */
    call->retry_after[0] = call->retry_after_ms[0] = call->served[0] = '\0';
    call->is_sse = false;
    return len;
  }
  const char *colon = memchr(data, ':', len);
  if (!colon) return len;
  size_t nlen = (size_t)(colon - data);
  const char *v = colon + 1, *end = data + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  size_t vlen = (size_t)(end - v);
  struct {
    const char *name;
    char *dst;
    size_t cap;
  } keep[] = {{"retry-after", call->retry_after, sizeof call->retry_after},
              {"retry-after-ms", call->retry_after_ms, sizeof call->retry_after_ms},
              {"x-fleetmock-service-tier", call->served, sizeof call->served},
              {"x-fleetmock-pool", call->result.pool, sizeof call->result.pool}};
  for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
    if (strlen(keep[i].name) == nlen && strncasecmp(data, keep[i].name, nlen) == 0) {
      size_t k = vlen < keep[i].cap - 1 ? vlen : keep[i].cap - 1;
      memcpy(keep[i].dst, v, k);
      keep[i].dst[k] = '\0';
    }
  }
  if (nlen == 12 && strncasecmp(data, "content-type", 12) == 0 && vlen >= 17 &&
      strncasecmp(v, "text/event-stream", 17) == 0)
    call->is_sse = true;
  return len;
}

/* ---- the answer, whatever the wire ---- */

void fm_answer_text(fm_answer *a, const char *text) {
  if (text && *text) (void)fm_buf_add(&a->content, text, strlen(text), FM_CONTENT_MAX);
}

static char *fm_strndup_capped(const char *s) {
  size_t n = strlen(s);
  return strndup(s, n < FM_NAME_MAX ? n : FM_NAME_MAX);
}

fm_tool_slot *fm_answer_tool(fm_answer *a, int k, const char *id, const char *name) {
  if (k < 0 || k >= FM_TOOL_CALLS_MAX) return NULL;
  fm_tool_slot *t = &a->tools[k];
  if (k >= a->n_tools) a->n_tools = k + 1;
  if (!t->id && id && *id) t->id = fm_strndup_capped(id);
  if (!t->name && name && *name) t->name = fm_strndup_capped(name);
  return t;
}

void fm_tool_args_add(fm_tool_slot *t, const char *piece) {
  if (piece && *piece && fm_buf_add(&t->args, piece, strlen(piece), FM_CONTENT_MAX) != 0)
    t->cut = true;
}

void fm_answer_usage(fm_answer *a, const cJSON *usage, const char *prompt, const char *details,
                     const char *completion) {
  const cJSON *x;
  if (!cJSON_IsObject(usage)) return;
  if (cJSON_IsNumber(x = cJSON_GetObjectItemCaseSensitive(usage, prompt)))
    a->res->prompt_tokens = (int64_t)x->valuedouble;
  if (cJSON_IsNumber(x = cJSON_GetObjectItemCaseSensitive(usage, completion)))
    a->res->completion_tokens = (int64_t)x->valuedouble;
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(usage, details);
  if (cJSON_IsNumber(x = cJSON_GetObjectItemCaseSensitive(d, "cached_tokens")))
    a->res->cached_tokens = (int64_t)x->valuedouble;
}

void fm_answer_error(fm_answer *a, const cJSON *error) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(error, "message");
  if (cJSON_IsString(m)) snprintf(a->res->error, sizeof a->res->error, "%s", m->valuestring);
}

void fm_answer_finish_reason(fm_answer *a, const char *reason) {
  snprintf(a->res->finish_reason, sizeof a->res->finish_reason, "%s", reason);
}

void fm_answer_reset(fm_answer *a) {
  for (int i = 0; i < a->n_tools; i++) {
    fm_tool_slot *t = &a->tools[i];
    free(t->id);
    free(t->name);
    t->id = t->name = NULL;
    t->args.n = 0;
    t->cut = false;
    t->item = 0;
  }
  a->n_tools = 0;
  a->content.n = 0;
  a->ended = a->failed = false;
}

void fm_answer_free(fm_answer *a) {
  fm_answer_reset(a);
  for (int i = 0; i < FM_TOOL_CALLS_MAX; i++)
    free(a->tools[i].args.p);
  free(a->content.p);
  a->content.p = NULL;
}

int fm_answer_finish(fm_answer *a) {
  fm_chat_result *r = a->res;
  if (!(r->content = strdup(a->content.n ? a->content.p : ""))) return -1;
  if (a->n_tools == 0) return 0;
  r->tool_calls = calloc((size_t)a->n_tools, sizeof *r->tool_calls);
  if (!r->tool_calls) return -1;
  r->n_tool_calls = a->n_tools;
  for (int i = 0; i < a->n_tools; i++) {
    fm_tool_slot *t = &a->tools[i];
    fm_tool_call *out = &r->tool_calls[i];
    out->id = t->id;
    out->name = t->name;
    t->id = t->name = NULL;
    out->arguments = strdup(t->args.n ? t->args.p : "");
    if (!out->arguments) return -1;
    cJSON *args = t->cut ? NULL : cJSON_ParseWithOpts(out->arguments, NULL, true);
    out->arguments_ok = cJSON_IsObject(args);
    cJSON_Delete(args);
  }
  return 0;
}

/* ---- chat completions ---- */

/* Takes one tool call object, whole (a JSON answer's message.tool_calls[pos])
 * or a piece of it (a stream's delta.tool_calls[pos], placed by its index):
 * the first id and name seen stick, arguments pieces are appended. */
static void fm_chat_tool_piece(fm_answer *a, const cJSON *item, int pos) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(item, "index");
  double at = cJSON_IsNumber(x) ? x->valuedouble : pos;
  if (!(at >= 0 && at < FM_TOOL_CALLS_MAX)) return; /* NaN included */
  const cJSON *fn = cJSON_GetObjectItemCaseSensitive(item, "function");
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
  fm_tool_slot *t =
      fm_answer_tool(a, (int)at, cJSON_GetStringValue(id), cJSON_GetStringValue(name));
  fm_tool_args_add(t, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fn, "arguments")));
}

/* Reads choices[0] of a JSON answer (`message`) or a stream chunk (`delta`):
 * the text, the tool calls, the finish reason; and the usage beside it. */
static void fm_chat_read(fm_answer *a, const cJSON *root, const char *part) {
  fm_answer_usage(a, cJSON_GetObjectItemCaseSensitive(root, "usage"), "prompt_tokens",
                  "prompt_tokens_details", "completion_tokens");
  const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, part);
  fm_answer_text(a, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "content")));
  const cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
  int pos = 0;
  const cJSON *item;
  if (!cJSON_IsArray(calls)) calls = NULL;
  cJSON_ArrayForEach(item, calls) fm_chat_tool_piece(a, item, pos++);
  const cJSON *fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
  if (cJSON_IsString(fr)) fm_answer_finish_reason(a, fr->valuestring);
}

static void fm_call_sse_line(fm_call *call, char *line) {
  if (strncmp(line, "data:", 5) != 0) return; /* comments, event names, blank lines */
  line += 5;
  while (*line == ' ')
    line++;
  if (call->c->api == FM_API_CHAT && strcmp(line, "[DONE]") == 0) {
    call->ans.ended = true;
    return;
  }
  cJSON *o = cJSON_Parse(line);
  if (!o) return;
  if (call->c->api == FM_API_RESPONSES) {
    fm_responses_event(&call->ans, o);
  } else {
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (err) {
      call->ans.failed = true;
      fm_answer_error(&call->ans, err);
    }
    fm_chat_read(&call->ans, o, "delta");
  }
  cJSON_Delete(o);
}

static size_t fm_call_on_data(char *data, size_t size, size_t n, void *ud) {
  fm_call *call = ud;
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &code);
  if (!(call->is_sse && code == 200))
    return fm_buf_add(&call->resp, data, len, FM_BODY_MAX) == 0 ? len : 0;
  /* SSE: split on newlines; resp holds the unfinished line. */
  while (len > 0) {
    char *nl = memchr(data, '\n', len);
    size_t take = nl ? (size_t)(nl - data) : len;
    if (fm_buf_add(&call->resp, data, take, FM_LINE_MAX) != 0) return 0;
    if (!nl) break;
    if (call->resp.n && call->resp.p[call->resp.n - 1] == '\r') call->resp.p[--call->resp.n] = 0;
    if (call->resp.n) fm_call_sse_line(call, call->resp.p);
    call->resp.n = 0;
    if (call->resp.p) call->resp.p[0] = '\0';
    data += take + 1;
    len -= take + 1;
  }
  return size * n;
}

/* Sets up the easy handle for the attempt at call->attempt on call->tier. */
static int fm_call_prepare(fm_call *call) {
  fm_client *c = call->c;
  free(call->body);
  if (!(call->body = fm_call_body(call))) return -1;
  call->resp.n = 0;
  fm_answer_reset(&call->ans);
  call->result.finish_reason[0] = '\0';
  call->is_sse = false;
  call->retry_after[0] = call->retry_after_ms[0] = call->served[0] = '\0';
  call->result.pool[0] = '\0';
  call->result.prompt_tokens = call->result.cached_tokens = call->result.completion_tokens = 0;
  call->errbuf[0] = '\0';
  if (!call->headers) {
    const char *key = call->req.api_key ? call->req.api_key : c->api_key;
    char auth[512], aff[300];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h) h = curl_slist_append(h, auth);
    if (h) h = curl_slist_append(h, "Expect:");
    if (h && call->req.cache_key) {
      snprintf(aff, sizeof aff, "x-session-affinity: %s", call->req.cache_key);
      h = curl_slist_append(h, aff);
    }
    if (!h) return -1;
    call->headers = h;
  }
  CURL *e = call->easy;
  curl_easy_setopt(e, CURLOPT_URL, c->url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(call->body));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fm_call_on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, fm_call_on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
  curl_easy_setopt(e, CURLOPT_PRIVATE, call);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  call->prepared = true;
  return 0;
}

fm_call *fm_call_new(fm_client *c, const fm_chat_request *req) {
  if (!c || !req || (!req->prompt && !req->messages)) return NULL;
  fm_call *call = calloc(1, sizeof *call);
  if (!call) return NULL;
  call->c = c;
  call->req = *req;
  call->req.system = fm_strdup(req->system);
  call->req.prompt = fm_strdup(req->prompt);
  call->req.cache_key = fm_strdup(req->cache_key);
  call->req.api_key = fm_strdup(req->api_key);
  call->req.tool_choice = fm_strdup(req->tool_choice);
  call->req.messages = call->req.tools = NULL; /* kept parsed instead */
  call->easy = curl_easy_init();
  if ((req->prompt && !call->req.prompt) || (req->system && !call->req.system) ||
      (req->cache_key && !call->req.cache_key) || (req->api_key && !call->req.api_key) ||
      (req->tool_choice && !call->req.tool_choice) || !call->easy)
    goto err;
  call->ans.res = &call->result;
  if (req->messages && !cJSON_IsArray(call->messages = cJSON_Parse(req->messages))) goto err;
  if (req->tools && !cJSON_IsArray(call->tools = cJSON_Parse(req->tools))) goto err;
  if (c->api == FM_API_RESPONSES) { /* converted once; the chat form is kept for instructions */
    call->raw = call->messages;
    call->messages = NULL;
    if (call->raw && !(call->messages = fm_responses_input(call->raw, &call->instructions)))
      goto err;
    cJSON *flat = call->tools ? fm_responses_tools(call->tools) : NULL;
    cJSON_Delete(call->tools);
    if (!(call->tools = flat) && req->tools) goto err;
  }
  call->started_ms = c->clock(c->clock_ctx);
  call->tier = fm_policy_start(&c->state, &c->policy, c->route, call->started_ms);
  call->attempt = 1;
  call->result.last_retry_after_ms = -1;
  if (fm_call_prepare(call) != 0) goto err;
  return call;
err:
  fm_call_free(call);
  return NULL;
}

CURL *fm_call_easy(fm_call *call) {
  return call->finished ? NULL : call->easy;
}

/* The status the policy sees for the attempt that just ended. */
static int fm_call_status(fm_call *call, CURLcode rc) {
  long code = 0;
  curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &code);
  if (rc != CURLE_OK) {
    snprintf(call->result.error, sizeof call->result.error, "%s",
             call->errbuf[0] ? call->errbuf : curl_easy_strerror(rc));
    return code == 200 ? FM_STATUS_STREAM_ERROR : FM_STATUS_NETWORK;
  }
  if (code != 200) {
    cJSON *o = cJSON_Parse(call->resp.p ? call->resp.p : "");
    if (o)
      fm_answer_error(&call->ans, cJSON_GetObjectItemCaseSensitive(o, "error"));
    else
      snprintf(call->result.error, sizeof call->result.error, "HTTP %ld", code);
    cJSON_Delete(o);
    return (int)code;
  }
  if (!call->is_sse) {
    cJSON *o = cJSON_Parse(call->resp.p ? call->resp.p : "");
    if (!o) {
      snprintf(call->result.error, sizeof call->result.error, "200 with a body that is not JSON");
      return FM_STATUS_STREAM_ERROR;
    }
    if (call->c->api == FM_API_RESPONSES)
      fm_responses_read(&call->ans, o);
    else
      fm_chat_read(&call->ans, o, "message");
    cJSON_Delete(o);
    call->ans.ended = true;
  }
  if (call->ans.failed || !call->ans.ended) {
    if (!call->ans.failed)
      snprintf(call->result.error, sizeof call->result.error, "stream ended without %s",
               call->c->api == FM_API_RESPONSES ? "response.completed" : "[DONE]");
    return FM_STATUS_STREAM_ERROR;
  }
  return 200;
}

int64_t fm_call_done(fm_call *call, CURLcode rc) {
  if (call->finished) return -1;
  fm_client *c = call->c;
  fm_chat_result *r = &call->result;
  r->error[0] = '\0';
  fm_attempt a = {.tier = call->tier, .attempt = call->attempt, .status = fm_call_status(call, rc)};
  a.retry_after_ms = fm_parse_retry_after(call->retry_after_ms, call->retry_after);
  int64_t now = c->clock(c->clock_ctx);
  fm_decision d = fm_policy_decide(&c->state, &c->policy, c->route, &a, now, fm_client_jitter(c));
  r->attempts = call->attempt;
  r->status = a.status;
  r->tier = strcmp(call->served, "priority") == 0 ? FM_PRIORITY
            : call->served[0]                     ? FM_STANDARD
                                                  : call->tier;
  r->last_retry_after_ms = a.retry_after_ms;
  if (d.escalated) r->escalated = true;
  if (d.alert && c->on_alert) {
    fm_alert al = {.consecutive_windows = c->state.consecutive_windows,
                   .escalations = c->state.escalations,
                   .priority_until_ms = c->state.priority_until_ms,
                   .rate_503 = fm_state_503_rate(&c->state)};
    c->on_alert(c->alert_ctx, &al);
  }
  if (d.retry) {
    call->tier = d.tier;
    call->attempt++;
    if (fm_call_prepare(call) == 0) return d.delay_ms;
    snprintf(r->error, sizeof r->error, "out of memory preparing a retry");
    d.outcome = FM_OUTCOME_ERROR;
  }
  call->finished = true;
  r->outcome = d.outcome;
  r->latency_ms = now - call->started_ms;
  if (r->outcome == FM_OUTCOME_OK) {
    if (fm_answer_finish(&call->ans) != 0) {
      fm_chat_result_free(r);
      r->outcome = FM_OUTCOME_ERROR;
      snprintf(r->error, sizeof r->error, "out of memory reading the answer");
    }
  }
  return -1;
}

const fm_chat_result *fm_call_result(const fm_call *call) {
  return &call->result;
}

fm_client_tier fm_call_tier(const fm_call *call) {
  return call->tier;
}

void *fm_call_userdata(const fm_call *call) {
  return call->userdata;
}

void fm_call_set_userdata(fm_call *call, void *userdata) {
  call->userdata = userdata;
}

void fm_call_free(fm_call *call) {
  if (!call) return;
  if (call->easy) curl_easy_cleanup(call->easy);
  curl_slist_free_all(call->headers);
  free(call->body);
  free(call->resp.p);
  fm_answer_free(&call->ans);
  fm_chat_result_free(&call->result);
  cJSON_Delete(call->raw);
  cJSON_Delete(call->messages);
  cJSON_Delete(call->tools);
  free((char *)call->req.tool_choice);
  free((char *)call->req.system);
  free((char *)call->req.prompt);
  free((char *)call->req.cache_key);
  free((char *)call->req.api_key);
  free(call);
}

int fm_chat(fm_client *c, const fm_chat_request *req, fm_chat_result *out) {
  fm_call *call = fm_call_new(c, req);
  if (!call) return -1;
  if (c->share) curl_easy_setopt(call->easy, CURLOPT_SHARE, c->share);
  for (;;) {
    CURLcode rc = curl_easy_perform(call->easy);
    int64_t wait = fm_call_done(call, rc);
    if (wait < 0) break;
    if (wait > 0) c->sleep(c->clock_ctx, wait);
  }
  *out = call->result;
  call->result.content = NULL; /* now the caller's, with the tool calls */
  call->result.tool_calls = NULL;
  call->result.n_tool_calls = 0;
  fm_call_free(call);
  return 0;
}
