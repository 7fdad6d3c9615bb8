/* api.h — the route handlers and the error bodies of each wire format.
 * A handler reads its request with a reader (api_read.h), answers the
 * reader's error if there is one, and does the live part otherwise. */
#ifndef FM_API_H
#define FM_API_H

#include "api_read.h"
#include "server.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* OpenAI-shaped error: {"error":{"object":"error","type","code","message","param"}}. */
void fm_openai_error(fm_req *r, int status, const char *code, const char *param, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

/* The OpenAI error "type" for a status. */
const char *fm_openai_error_type(int status);
/* The same with a ready message. */
void fm_openai_error_msg(fm_req *r, int status, const char *code, const char *param,
                         const char *msg);

/* Admin routes: answers r for the path after "/admin/". */
void fm_api_admin(fm_req *r, const char *rest);
/* GET /metrics: Prometheus text (admin auth). */
void fm_api_metrics(fm_req *r);
/* True when the caller may use admin routes; otherwise answers 401/403. */
bool fm_admin_allowed(fm_req *r);

/* Errors in the wire format of the request's route (OpenAI or Anthropic). */
void fm_api_error_msg(fm_req *r, int status, const char *code, const char *param, const char *msg);
void fm_api_error(fm_req *r, int status, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Anthropic-shaped error: {"type":"error","error":{"type","message"}}. */
void fm_anthropic_error_msg(fm_req *r, int status, const char *code, const char *param,
                            const char *msg);

/* The request's body and headers as a reader takes them (api_read.h). */
fm_read_in fm_api_read_in(fm_req *r);
/* Answers a reader's error in the route's wire format. */
void fm_api_reply_err(fm_req *r, const fm_api_err *e);
/* Looks up the account of the request's key into p; otherwise answers
 * 401/500, frees p and returns false. */
bool fm_api_account(fm_req *r, struct fm_infer_params *p);

/* The API key: the bearer token, or on the Anthropic route also x-api-key; NULL when missing. */
const char *fm_bearer_key(fm_req *r);

/* GET /admin/state's object; watchers are the admin requests in progress
 * not to count (the caller's own, the live feeds). */
struct cJSON *fm_admin_state_json(fm_server *s, int watchers);
/* GET /admin/events: the live feed (api_events.c), after the admin check. */
void fm_api_events(fm_req *r);
/* GET /ui and /ui/{file}: the dashboard's files, embedded (api_events.c). */
void fm_api_ui(fm_req *r, const char *file);

/* The request journal (api_journal.c, docs/journal.md). GET, HEAD or DELETE
 * /admin/requests, after the admin check. */
void fm_api_requests(fm_req *r);
/* Records a job as it ends (from its on_close, before its state is freed). */
struct fm_job;
void fm_api_journal_job(const struct fm_job *j);
/* Records an inference request refused before it became a job (a reader's
 * 400, a 401, 404, 405, 413, 431); other routes are not recorded. */
void fm_api_journal_refused(fm_req *r, int status, const char *code, const char *msg);

void fm_api_chat(fm_req *r);
/* POST messages: the Anthropic-compatible Messages API. */
void fm_api_messages(fm_req *r);
void fm_api_completions(fm_req *r);
/* POST responses, GET responses, GET and DELETE responses/{id} (api_responses.c). */
void fm_api_responses(fm_req *r, const char *id);
/* POST embeddings (api_embeddings.c). */
void fm_api_embeddings(fm_req *r);
void fm_api_models(fm_req *r);
void fm_api_model(fm_req *r, const char *id);

#endif
