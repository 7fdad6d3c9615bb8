/* record.c — the recording proxy (record.h). */
#include "record.h"

#include "api.h"
#include "log.h"
#include "match.h"
#include "turn.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RECORD_EVENTS_MAX 200000    /* events timed in one streamed answer */
#define RECORD_BODY_MAX (64u << 20) /* bytes of one upstream answer */

/* ---- the rule of one exchange ------------------------------------------------ */

/* One part being rebuilt from a stream: its text and where each token ended. */
typedef struct part {
  fm_buf text;
  cJSON *cuts;
  bool uncut; /* a chunk was over FM_PIECE_MAX: no cuts kept */
} part;

static void part_add(part *p, const char *s) {
  size_t n = strlen(s);
  if (n == 0) return;
  fm_buf_put(&p->text, s, n);
  if (n > FM_PIECE_MAX) { /* a chunk longer than a token may be: replayed with the usual cut */
    cJSON_Delete(p->cuts);
    p->cuts = NULL;
    p->uncut = true;
  }
  if (p->uncut) return;
  if (!p->cuts) p->cuts = cJSON_CreateArray();
  cJSON_AddItemToArray(p->cuts, cJSON_CreateNumber((double)n));
}

static char *part_text(part *p) {
  fm_buf_putc(&p->text, 0);
  return p->text.data;
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

#define MAX_CALLS 16

typedef struct rebuilt {
  part content, reasoning;
  part args[MAX_CALLS];
  char *names[MAX_CALLS];
  int n_calls;
  char finish[24]; /* "" when none */
  double prompt, cached, completion;
  double first_ms, last_ms;
  cJSON *gaps;
} rebuilt;

static void token_at(rebuilt *b, double t) {
  if (b->first_ms < 0) {
    b->first_ms = t;
  } else {
    double g = t - b->last_ms;
    cJSON_AddItemToArray(b->gaps, cJSON_CreateNumber(g < 0 ? 0 : (double)(long long)(g + 0.5)));
  }
  b->last_ms = t;
}

static const char *finish_of_stop(const char *stop) {
  if (!stop) return NULL;
  if (!strcmp(stop, "end_turn") || !strcmp(stop, "stop_sequence")) return "stop";
  if (!strcmp(stop, "tool_use")) return "tool_calls";
  if (!strcmp(stop, "max_tokens")) return "length";
  return NULL;
}

/* An OpenAI chunk or an Anthropic event. */
static void stream_event(rebuilt *b, const cJSON *e, double t, bool anthropic) {
  if (anthropic) {
    const char *type = str(e, "type");
    if (!type) return;
    if (!strcmp(type, "message_start")) {
      const cJSON *u =
          cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "message"), "usage");
      b->prompt = num(u, "input_tokens");
      b->cached = num(u, "cache_read_input_tokens");
    } else if (!strcmp(type, "content_block_start")) {
      const cJSON *cb = cJSON_GetObjectItemCaseSensitive(e, "content_block");
      if (str(cb, "type") && !strcmp(str(cb, "type"), "tool_use") && b->n_calls < MAX_CALLS)
        b->names[b->n_calls++] = strdup(str(cb, "name") ? str(cb, "name") : "tool");
    } else if (!strcmp(type, "content_block_delta")) {
      const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "delta");
      const char *dt = str(d, "type");
      if (!dt) return;
      if (!strcmp(dt, "text_delta") && str(d, "text")) {
        part_add(&b->content, str(d, "text"));
        token_at(b, t);
      } else if (!strcmp(dt, "thinking_delta") && str(d, "thinking")) {
        part_add(&b->reasoning, str(d, "thinking"));
        token_at(b, t);
      } else if (!strcmp(dt, "input_json_delta") && str(d, "partial_json") && b->n_calls > 0) {
        part_add(&b->args[b->n_calls - 1], str(d, "partial_json"));
        token_at(b, t);
      }
    } else if (!strcmp(type, "message_delta")) {
      const char *f =
          finish_of_stop(str(cJSON_GetObjectItemCaseSensitive(e, "delta"), "stop_reason"));
      if (f) snprintf(b->finish, sizeof(b->finish), "%s", f);
    }
    return;
  }
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(e, "usage");
  if (cJSON_IsObject(u)) {
    b->prompt = num(u, "prompt_tokens");
    b->cached = num(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details"), "cached_tokens");
  }
  const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e, "choices"), 0);
  if (!c) return;
  const char *f = str(c, "finish_reason");
  if (f) snprintf(b->finish, sizeof(b->finish), "%s", f);
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(c, "delta");
  const char *text = d ? str(d, "content") : str(c, "text"); /* completions: choices[0].text */
  bool got = false;
  if (text && *text) {
    part_add(&b->content, text);
    got = true;
  }
  const char *r = str(d, "reasoning_content");
  if (r && *r) {
    part_add(&b->reasoning, r);
    got = true;
  }
  const cJSON *tc;
  cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(d, "tool_calls")) {
    int k = (int)num(tc, "index");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    if (k < 0 || k >= MAX_CALLS) continue;
    while (b->n_calls <= k)
      b->names[b->n_calls++] = NULL;
    if (str(fn, "name") && !b->names[k]) b->names[k] = strdup(str(fn, "name"));
    const char *a = str(fn, "arguments");
    if (a && *a) {
      part_add(&b->args[k], a);
      got = true;
    }
  }
  if (got) token_at(b, t);
}

/* A whole (non-streamed) answer. */
static void whole_answer(rebuilt *b, const cJSON *root, bool anthropic) {
  if (anthropic) {
    const cJSON *blk;
    cJSON_ArrayForEach(blk, cJSON_GetObjectItemCaseSensitive(root, "content")) {
      const char *type = str(blk, "type");
      if (!type) continue;
      if (!strcmp(type, "text") && str(blk, "text"))
        fm_buf_puts(&b->content.text, str(blk, "text"));
      if (!strcmp(type, "thinking") && str(blk, "thinking"))
        fm_buf_puts(&b->reasoning.text, str(blk, "thinking"));
      if (!strcmp(type, "tool_use") && b->n_calls < MAX_CALLS) {
        b->names[b->n_calls] = strdup(str(blk, "name") ? str(blk, "name") : "tool");
        char *a = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(blk, "input"));
        if (a) fm_buf_puts(&b->args[b->n_calls].text, a);
        free(a);
        b->n_calls++;
      }
    }
    const char *f = finish_of_stop(str(root, "stop_reason"));
    if (f) snprintf(b->finish, sizeof(b->finish), "%s", f);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    b->prompt = num(u, "input_tokens");
    b->cached = num(u, "cache_read_input_tokens");
    b->completion = num(u, "output_tokens");
    return;
  }
  const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "message");
  const char *text = m ? str(m, "content") : str(c, "text");
  if (text) fm_buf_puts(&b->content.text, text);
  if (str(m, "reasoning_content")) fm_buf_puts(&b->reasoning.text, str(m, "reasoning_content"));
  const cJSON *tc;
  cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) {
    if (b->n_calls >= MAX_CALLS) break;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    b->names[b->n_calls] = strdup(str(fn, "name") ? str(fn, "name") : "tool");
    if (str(fn, "arguments")) fm_buf_puts(&b->args[b->n_calls].text, str(fn, "arguments"));
    b->n_calls++;
  }
  if (str(c, "finish_reason"))
    snprintf(b->finish, sizeof(b->finish), "%s", str(c, "finish_reason"));
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
  b->prompt = num(u, "prompt_tokens");
  b->cached = num(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details"), "cached_tokens");
  b->completion = num(u, "completion_tokens");
}

/* The match keys of the request: model, route, the last user message, the tool result, the turn. */
static cJSON *match_of(const char *route, const char *req, size_t req_len) {
  cJSON *m = cJSON_CreateObject();
  cJSON *root = cJSON_ParseWithLength(req, req_len);
  if (str(root, "model")) cJSON_AddStringToObject(m, "model", str(root, "model"));
  cJSON_AddStringToObject(m, "route", route);
  cJSON_Delete(root);
  fm_match_facts f = {.body = req, .body_len = req_len};
  fm_match_facts_parse(&f);
  cJSON *lu = cJSON_AddObjectToObject(m, "last_user");
  cJSON_AddStringToObject(lu, "equals", f.last_user ? f.last_user : "");
  if (f.tool_result && f.tool_name)
    cJSON_AddStringToObject(m, "tool_result", f.tool_name);
  else if (f.tool_result)
    cJSON_AddBoolToObject(m, "tool_result", true);
  else
    cJSON_AddBoolToObject(m, "tool_result", false);
  cJSON_AddNumberToObject(m, "turn", f.turn);
  fm_match_facts_free(&f);
  return m;
}

cJSON *fm_record_rule(const char *route, const char *req, size_t req_len, const char *resp,
                      size_t resp_len, bool stream, const double *event_ms, int n_events,
                      double total_ms) {
  bool anthropic = !strcmp(route, "messages");
  rebuilt b;
  memset(&b, 0, sizeof(b));
  b.prompt = b.cached = b.completion = -1;
  b.first_ms = -1;
  b.gaps = cJSON_CreateArray();
  bool ok = true;
  if (stream) {
    /* events end at "\n\n"; each "data: {...}" line is one chunk */
    size_t start = 0;
    int k = 0;
    for (size_t i = 0; i + 1 < resp_len; i++) {
      if (!(resp[i] == '\n' && resp[i + 1] == '\n')) continue;
      double t = k < n_events ? event_ms[k] : total_ms;
      k++;
      for (size_t l = start; l < i + 1;) {
        const char *nl = memchr(resp + l, '\n', i + 1 - l);
        size_t end = nl ? (size_t)(nl - resp) : i + 1;
        if (end - l > 6 && !strncmp(resp + l, "data: ", 6)) {
          cJSON *e = cJSON_ParseWithLength(resp + l + 6, end - l - 6);
          if (e) stream_event(&b, e, t, anthropic);
          cJSON_Delete(e);
        }
        l = end + 1;
      }
      start = i + 2;
      i++;
    }
  } else {
    cJSON *root = cJSON_ParseWithLength(resp, resp_len);
    ok = root != NULL;
    if (root) whole_answer(&b, root, anthropic);
    cJSON_Delete(root);
    b.first_ms = total_ms;
  }
  cJSON *rule = NULL;
  if (ok) {
    rule = cJSON_CreateObject();
    cJSON_AddItemToObject(rule, "match", match_of(route, req, req_len));
    cJSON *reply = cJSON_AddObjectToObject(rule, "reply");
    cJSON *pieces = cJSON_CreateObject();
    if (b.reasoning.text.len) {
      cJSON_AddStringToObject(reply, "reasoning", part_text(&b.reasoning));
      if (b.reasoning.cuts)
        cJSON_AddItemToObject(pieces, "reasoning", b.reasoning.cuts), b.reasoning.cuts = NULL;
    }
    if (b.n_calls) {
      cJSON *calls = cJSON_AddArrayToObject(reply, "tool_calls");
      cJSON *pc = cJSON_CreateArray();
      for (int i = 0; i < b.n_calls; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", b.names[i] ? b.names[i] : "tool");
        cJSON_AddStringToObject(c, "arguments", b.args[i].text.len ? part_text(&b.args[i]) : "{}");
        cJSON_AddItemToArray(calls, c);
        cJSON_AddItemToArray(pc, b.args[i].cuts ? b.args[i].cuts : cJSON_CreateArray());
        b.args[i].cuts = NULL;
      }
      if (stream)
        cJSON_AddItemToObject(pieces, "tool_calls", pc);
      else
        cJSON_Delete(pc);
    } else {
      cJSON_AddStringToObject(reply, "content", b.content.text.len ? part_text(&b.content) : "");
      if (b.content.cuts)
        cJSON_AddItemToObject(pieces, "content", b.content.cuts), b.content.cuts = NULL;
    }
    if (b.finish[0]) cJSON_AddStringToObject(reply, "finish_reason", b.finish);
    if (b.prompt >= 0) {
      cJSON *u = cJSON_AddObjectToObject(reply, "usage");
      cJSON_AddNumberToObject(u, "prompt_tokens", b.prompt);
      if (b.cached >= 0) cJSON_AddNumberToObject(u, "cached_tokens", b.cached);
      /* a whole answer: its tokens as the upstream counted them (a stream has its pieces) */
      int parts = (b.reasoning.text.len ? 1 : 0) + (b.n_calls ? b.n_calls : 1);
      if (!stream && b.completion >= parts)
        cJSON_AddNumberToObject(u, "completion_tokens", b.completion);
    }
    if (pieces->child)
      cJSON_AddItemToObject(reply, "pieces", pieces);
    else
      cJSON_Delete(pieces);
    cJSON *timing = cJSON_AddObjectToObject(reply, "timing");
    cJSON_AddNumberToObject(timing, "ttft_ms",
                            (double)(long long)((b.first_ms < 0 ? total_ms : b.first_ms) + 0.5));
    cJSON_AddItemToObject(timing, "token_ms", b.gaps);
    b.gaps = NULL;
    cJSON_AddStringToObject(reply, "pace", "recorded");
    cJSON_AddNumberToObject(rule, "count", 1);
  }
  cJSON_Delete(b.gaps);
  fm_buf_free(&b.content.text);
  fm_buf_free(&b.reasoning.text);
  cJSON_Delete(b.content.cuts);
  cJSON_Delete(b.reasoning.cuts);
  for (int i = 0; i < MAX_CALLS; i++) {
    fm_buf_free(&b.args[i].text);
    cJSON_Delete(b.args[i].cuts);
    free(b.names[i]);
  }
  return rule;
}

/* ---- the proxy ------------------------------------------------------------------ */

typedef struct exchange {
  atomic_int refs; /* the request's and the thread's */
  fm_server *srv;
  fm_req *r; /* NULL once the request has ended (under the core lock) */
  const char *route;
  char *url;
  fm_buf body;
  struct curl_slist *headers;
  /* the answer */
  fm_buf resp;
  long status;
  char content_type[128];
  double start_ms, total_ms;
  double *event_ms;
  int n_events;
  bool stream;
  bool too_big;
  char error[CURL_ERROR_SIZE];
  CURLcode rc;
} exchange;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void exchange_release(exchange *x) {
  if (atomic_fetch_sub(&x->refs, 1) != 1) return;
  free(x->url);
  fm_buf_free(&x->body);
  fm_buf_free(&x->resp);
  curl_slist_free_all(x->headers);
  free(x->event_ms);
  free(x);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
  exchange *x = ud;
  size_t len = size * n;
  if (x->resp.len + len > RECORD_BODY_MAX) {
    x->too_big = true;
    return 0;
  }
  size_t before = x->resp.len;
  fm_buf_put(&x->resp, p, len);
  /* an event ends at each "\n\n": time it (a boundary may straddle two calls) */
  double t = now_ms() - x->start_ms;
  for (size_t i = before ? before - 1 : 0; i + 1 < x->resp.len; i++)
    if (x->resp.data[i] == '\n' && x->resp.data[i + 1] == '\n' && x->n_events < RECORD_EVENTS_MAX) {
      if (!x->event_ms) x->event_ms = malloc(RECORD_EVENTS_MAX * sizeof(double));
      if (x->event_ms) x->event_ms[x->n_events++] = t;
      i++;
    }
  return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  exchange *x = ud;
  size_t len = size * n;
  if (len > 13 && !strncasecmp(p, "content-type:", 13)) {
    size_t k = 13;
    while (k < len && p[k] == ' ')
      k++;
    size_t m = len - k;
    while (m > 0 && (p[k + m - 1] == '\r' || p[k + m - 1] == '\n'))
      m--;
    if (m >= sizeof(x->content_type)) m = sizeof(x->content_type) - 1;
    memcpy(x->content_type, p + k, m);
    x->content_type[m] = 0;
    x->stream = strstr(x->content_type, "text/event-stream") != NULL;
  }
  return len;
}

static void *upstream_call(void *arg) {
  exchange *x = arg;
  CURL *c = curl_easy_init();
  if (c) {
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body.data ? x->body.data : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)x->body.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->error);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    x->start_ms = now_ms();
    x->rc = curl_easy_perform(c);
    x->total_ms = now_ms() - x->start_ms;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
    curl_easy_cleanup(c);
  } else {
    x->rc = CURLE_FAILED_INIT;
  }
  uv_mutex_lock(&x->srv->core);
  if (x->r) fm_req_wake(x->r);
  uv_mutex_unlock(&x->srv->core);
  exchange_release(x);
  return NULL;
}

static void append_rule(exchange *x) {
  cJSON *rule = fm_record_rule(x->route, x->body.data, x->body.len, x->resp.data, x->resp.len,
                               x->stream, x->event_ms, x->n_events, x->total_ms);
  if (!rule) return;
  char *line = cJSON_PrintUnformatted(rule);
  cJSON_Delete(rule);
  FILE *f = line ? fopen(x->srv->opt.record, "a") : NULL;
  if (f) {
    fprintf(f, "%s\n", line);
    fclose(f);
    x->srv->metrics.recorded++;
  } else {
    fm_log(FM_LOG_ERROR, "cannot append to the --record file", "error", strerror(errno), NULL);
  }
  free(line);
}

static void answered(fm_req *r) {
  exchange *x = r->ctx;
  if (x->rc != CURLE_OK) {
    fm_api_error(r, 502, "BAD_GATEWAY", NULL,
                 "--upstream %s did not answer: %s%s (fleetmock is recording, so every request "
                 "goes there)",
                 r->srv->opt.upstream, x->too_big ? "the answer is over 64 MiB; " : "",
                 x->error[0] ? x->error : curl_easy_strerror(x->rc));
    return;
  }
  if (x->status == 200) append_rule(x);
  fm_buf body = x->resp;
  fm_buf_init(&x->resp);
  fm_req_reply(r, (int)x->status, x->content_type[0] ? x->content_type : "application/json", &body);
  fm_buf_free(&body);
}

static void exchange_close(fm_req *r) {
  exchange *x = r->ctx;
  if (!x) return;
  x->r = NULL;
  r->ctx = NULL;
  exchange_release(x);
}

void fm_record_init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

void fm_record_proxy(fm_req *r, const char *route) {
  fm_server *s = r->srv;
  exchange *x = calloc(1, sizeof(*x));
  if (!x) {
    fm_api_error(r, 500, "INTERNAL", NULL, "out of memory; retry later");
    return;
  }
  atomic_init(&x->refs, 2);
  x->srv = s;
  x->r = r;
  x->route = route;
  size_t n = strlen(s->opt.upstream) + strlen(r->url) + 1;
  x->url = malloc(n);
  if (x->url) snprintf(x->url, n, "%s%s", s->opt.upstream, r->url);
  fm_buf_init(&x->body);
  fm_buf_put(&x->body, r->body.data ? r->body.data : "", r->body.len);
  static const char *const pass[] = {
      "authorization",      "x-api-key",           "anthropic-version", "anthropic-beta",
      "x-session-affinity", "x-fleetmock-test-id", "x-fleetmock-fault", NULL};
  x->headers = curl_slist_append(NULL, "Content-Type: application/json");
  x->headers = curl_slist_append(x->headers, "Expect:");
  for (const char *const *h = pass; *h; h++) {
    const char *v = fm_req_header_in(r, *h);
    if (!v) continue;
    char line[4200];
    snprintf(line, sizeof(line), "%s: %s", *h, v);
    x->headers = curl_slist_append(x->headers, line);
  }
  r->ctx = x;
  r->on_close = exchange_close;
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (!x->url || pthread_create(&t, &attr, upstream_call, x) != 0) {
    pthread_attr_destroy(&attr);
    atomic_fetch_sub(&x->refs, 1); /* no thread holds it */
    fm_api_error(r, 500, "INTERNAL", NULL, "cannot start the upstream call; retry later");
    return;
  }
  pthread_attr_destroy(&attr);
  fm_req_park(r, answered);
}
