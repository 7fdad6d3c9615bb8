/* api_journal.c — the request journal's two doors (docs/journal.md): what
 * an inference request leaves in it as it ends, and GET / DELETE
 * /admin/requests. journal.c keeps the ring; this file translates a
 * finished job or a refused request into an entry, and a query string into
 * a filter. Everything here runs under the core lock, like every handler,
 * which is what makes the journal safe with --workers N. */
#include "api.h"

#include "infer.h"
#include "journal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(((fm_journal_entry *)0)->request_id) == sizeof(((fm_req *)0)->request_id),
               "an entry holds a request id as the request does");

static int64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Simulated microseconds as whole milliseconds, rounded as the headers are. */
static int64_t us_to_ms(uint64_t us) {
  return (int64_t)((us + 500) / 1000);
}

/* The live feed's summary of a journal entry (events.h). */
static void feed(fm_server *s, const fm_journal_entry *e) {
  fm_event_req ev = {.time_s = (double)e->sim_ms / 1e3,
                     .route = e->route,
                     .model = e->model,
                     .path = e->tier,
                     .status = e->status,
                     .queue_ms = e->queue_ms,
                     .ttft_ms = e->ttft_ms,
                     .prompt_tokens = e->prompt_tokens,
                     .cached_tokens = e->cached_tokens,
                     .completion_tokens = e->completion_tokens};
  memcpy(ev.key_id, e->key_id, sizeof(ev.key_id));
  fm_events_add(&s->events, &ev, e->test_id);
}

void fm_api_journal_job(const fm_job *j) {
  fm_server *s = j->srv;
  const fm_req *r = j->req;
  fm_journal_entry e = {0};
  e.time_ms = unix_ms();
  e.sim_ms = fm_server_now(s) / 1000;
  memcpy(e.request_id, r->request_id, sizeof(e.request_id));
  e.route = j->p.route;
  e.model = s->cfg.models[j->p.model].id;
  e.tier = (int)j->p.path;
  e.stream = j->p.stream;
  if (j->p.account) memcpy(e.key_id, j->p.account->key_id, sizeof(e.key_id));
  e.test_id = j->p.test_id;
  /* What the client was answered; a client that left first is 499, as the
   * answer infer.c gives one that left while queued; a dropped connection
   * (a disconnect fault) answered nothing. */
  e.status = r->responded ? r->status : r->peer_gone ? 499 : 0;
  e.reply_id = j->reply_id;
  e.fault_id = j->fault_id;
  /* The header's own fault fired when it set the status or armed a stream fault. */
  e.header_fault = j->p.fault_kind == FM_HEADER_FAULT_SET && (j->has_fault || j->status);
  e.queue_ms = j->decided ? us_to_ms(j->decided_us - j->arrived_us) : -1;
  e.ttft_ms = j->decided && j->status == 200 ? us_to_ms(j->first_token_us - j->arrived_us) : -1;
  e.prompt_tokens = j->p.prompt_tokens;
  e.cached_tokens = j->p.cached_tokens;
  if (j->status == 200) /* as billed (infer.c bill): a refused request generated nothing */
    for (int i = 0; i < j->p.n; i++)
      e.completion_tokens += j->choices[i].turn.produced;
  feed(s, &e);
  if (!s->journal.size) return;
  fm_journal_add(&s->journal, &e, r->body.data, r->body.len);
}

/* The route of an inference URL, or NULL for any other path. */
static const char *inference_route(const char *url) {
  static const char *const routes[] = {"chat/completions", "completions", "messages", "responses",
                                       "embeddings"};
  const char *rest = NULL;
  if (!strncmp(url, "/inference/v1/", 14))
    rest = url + 14;
  else if (!strncmp(url, "/v1/", 4))
    rest = url + 4;
  for (size_t i = 0; rest && i < sizeof(routes) / sizeof(routes[0]); i++)
    if (!strcmp(rest, routes[i])) return routes[i];
  return NULL;
}

/* An x-fleetmock-test-id the readers would take (api_read.c), else NULL. */
static const char *valid_test_id(const char *t) {
  if (!t || !*t || strlen(t) > FM_TEST_ID_MAX) return NULL;
  for (const char *p = t; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f) return NULL;
  return t;
}

void fm_api_journal_refused(fm_req *r, int status, const char *code, const char *msg) {
  fm_server *s = r->srv;
  if (r->ctx) return;
  if (r->kind != FM_ROUTE_OPENAI && r->kind != FM_ROUTE_ANTHROPIC) return;
  const char *route = inference_route(r->url);
  if (!route) return;
  fm_journal_entry e = {0};
  e.time_ms = unix_ms();
  e.sim_ms = fm_server_now(s) / 1000;
  memcpy(e.request_id, r->request_id, sizeof(e.request_id));
  e.route = route;
  e.tier = -1;
  e.queue_ms = e.ttft_ms = -1;
  e.status = status;
  e.error_code = code;
  e.error_message = msg;
  const char *key = fm_bearer_key(r);
  if (key) fm_key_id(key, e.key_id); /* the key itself never reaches the journal */
  e.test_id = valid_test_id(fm_req_header_in(r, "x-fleetmock-test-id"));
  feed(s, &e);
  if (!s->journal.size) return;
  /* The model and stream flag the body asked for, when it says. */
  cJSON *body = r->body.len ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
  if (cJSON_IsString(model)) e.model = model->valuestring;
  e.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "stream"));
  fm_journal_add(&s->journal, &e, r->body.data, r->body.len);
  cJSON_Delete(body);
}

/* ---- GET, HEAD and DELETE /admin/requests ----------------------------------------- */

#define FM_REQUESTS_PAGE 100

static const char *const get_known[] = {"key_id", "test_id", "model", "status",
                                        "since",  "limit",   NULL};
static const char *const del_known[] = {"test_id", NULL};

/* A query parameter's value; "" when it is there without one ("?test_id"),
 * which fm_req_query cannot tell from absent: a DELETE that meant one test
 * must never clear them all. known: the parameters the route takes, already
 * checked to be the only ones present. */
static const char *param(fm_req *r, const char *const *known, const char *name) {
  const char *v = fm_req_query(r, name);
  if (v) return v;
  const char *others[8];
  size_t n = 0;
  for (const char *const *k = known; *k && n < 7; k++)
    if (strcmp(*k, name) != 0) others[n++] = *k;
  others[n] = NULL;
  const char *first = fm_req_query_unknown(r, others); /* with name left out, it is the one */
  return first && !strcmp(first, name) ? "" : NULL;
}

static void bad_param(fm_req *r, const char *param, const char *fmt, const char *got) {
  char msg[512];
  snprintf(msg, sizeof(msg), fmt, got);
  fm_openai_error_msg(r, 400, "INVALID_ARGUMENT", param, msg);
}

/* Reads a whole decimal number from lo to hi; false when it is not one. */
static bool read_whole(const char *v, unsigned long long lo, unsigned long long hi,
                       unsigned long long *out) {
  if (!v || *v < '0' || *v > '9') return false;
  char *end = NULL;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || *end || n < lo || n > hi) return false;
  *out = n;
  return true;
}

/* Fills f from the query string; false after answering a 400 naming the parameter. */
static bool read_filter(fm_req *r, fm_journal_filter *f) {
  size_t size = r->srv->journal.size;
  size_t max = size ? size : 1;
  memset(f, 0, sizeof(*f));
  f->limit = max < FM_REQUESTS_PAGE ? max : FM_REQUESTS_PAGE;
  const char *v = param(r, get_known, "key_id");
  uint64_t bits;
  if (v && !fm_key_id_parse(v, &bits)) {
    bad_param(r, "key_id",
              "key_id: must be a key id such as k-3f9a1c2b7d40 (got \"%.40s\"); the "
              "x-fleetmock-key-id response header and GET /admin/accounts show them",
              v);
    return false;
  }
  f->key_id = v;
  v = param(r, get_known, "test_id");
  if (v && !valid_test_id(v)) {
    bad_param(r, "test_id",
              "test_id: must be 1 to 128 printable ASCII characters without spaces, as the "
              "x-fleetmock-test-id header sent (got \"%.40s\")",
              v);
    return false;
  }
  f->test_id = v;
  f->model = param(r, get_known, "model");
  if (f->model && !*f->model) {
    fm_openai_error_msg(r, 400, "INVALID_ARGUMENT", "model",
                        "model: must be a model id such as accounts/fireworks/models/kimi-k2p6 "
                        "(got nothing); leave it out to match every model");
    return false;
  }
  v = param(r, get_known, "status");
  unsigned long long n;
  if (v) {
    if (v[0] >= '1' && v[0] <= '5' && !strcmp(v + 1, "xx")) {
      f->status_class = v[0] - '0';
    } else if (read_whole(v, 100, 599, &n)) {
      f->status = (int)n;
    } else {
      bad_param(r, "status",
                "status: must be an HTTP status from 100 to 599 such as 429, or a class: 2xx, "
                "4xx or 5xx (got \"%.20s\")",
                v);
      return false;
    }
  }
  v = param(r, get_known, "since");
  if (v) {
    if (!read_whole(v, 0, INT64_MAX, &n)) {
      bad_param(r, "since",
                "since: must be a time in unix milliseconds such as 1767225600000 (got "
                "\"%.30s\"); entries that ended strictly after it are answered",
                v);
      return false;
    }
    f->has_since = true;
    f->since_ms = (int64_t)n;
  }
  v = param(r, get_known, "limit");
  if (v) {
    if (!read_whole(v, 1, max, &n)) {
      char fmt[256];
      snprintf(fmt, sizeof(fmt),
               "limit: must be a whole number from 1 to %zu, the journal's size "
               "(server.journal.size) (got \"%%.20s\")",
               max);
      bad_param(r, "limit", fmt, v);
      return false;
    }
    f->limit = (size_t)n;
  }
  return true;
}

static void list(fm_req *r) {
  const fm_journal *jr = &r->srv->journal;
  fm_journal_filter f;
  if (!read_filter(r, &f)) return;
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_puts(&b, "{\"object\":\"list\",\"data\":");
  fm_journal_list_json(&b, jr, &f);
  fm_buf_puts(&b, ",\"dropped\":");
  fm_buf_put_i64(&b, (long long)jr->dropped);
  fm_buf_puts(&b, ",\"size\":");
  fm_buf_put_i64(&b, (long long)jr->size);
  fm_buf_putc(&b, '}');
  if (b.oom) {
    fm_buf_free(&b);
    fm_openai_error_msg(r, 500, "INTERNAL", NULL,
                        "out of memory rendering the journal; ask for fewer entries (limit)");
    return;
  }
  fm_req_reply(r, 200, "application/json", &b);
  fm_buf_free(&b);
}

static void clear(fm_req *r) {
  const char *t = param(r, del_known, "test_id");
  if (t && !valid_test_id(t)) {
    bad_param(r, "test_id",
              "test_id: must be 1 to 128 printable ASCII characters without spaces, as the "
              "x-fleetmock-test-id header sent (got \"%.40s\")",
              t);
    return;
  }
  size_t n = fm_journal_clear(&r->srv->journal, t);
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_puts(&b, "{\"status\":\"deleted\",\"deleted\":");
  fm_buf_put_i64(&b, (long long)n);
  fm_buf_putc(&b, '}');
  fm_req_reply(r, 200, "application/json", &b);
  fm_buf_free(&b);
}

void fm_api_requests(fm_req *r) {
  const char *m = r->method;
  bool get = !strcmp(m, "GET") || !strcmp(m, "HEAD"), del = !strcmp(m, "DELETE");
  if (!get && !del) {
    fm_req_header(r, "Allow", "GET, HEAD, DELETE");
    fm_openai_error(r, 405, "METHOD_NOT_ALLOWED", NULL,
                    "%s is not allowed on %s; use GET, HEAD or DELETE", m, r->url);
    return;
  }
  const char *bad = fm_req_query_unknown(r, get ? get_known : del_known);
  if (bad) {
    bad_param(r, bad,
              get ? "unknown query parameter \"%.40s\": GET /admin/requests filters by key_id, "
                    "test_id, model, status (429, or 2xx, 4xx, 5xx) and since (unix ms), and "
                    "takes limit"
                  : "unknown query parameter \"%.40s\": DELETE /admin/requests takes only "
                    "test_id (clear one test's entries; without it, all are cleared)",
              bad);
    return;
  }
  if (get)
    list(r);
  else
    clear(r);
}
