/* api.h — the OpenAI-compatible inference API and shared request checks. */
#ifndef FM_API_H
#define FM_API_H

#include "server.h"

#include <stdbool.h>
#include <stddef.h>

struct cJSON;

/* OpenAI-shaped error: {"error":{"object":"error","type","code","message","param"}}. */
void fm_openai_error(fm_req *r, int status, const char *code, const char *param, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

/* The same with a ready message. */
void fm_openai_error_msg(fm_req *r, int status, const char *code, const char *param,
                         const char *msg);

/* Admin routes: answers r for the path after "/admin/". */
void fm_api_admin(fm_req *r, const char *rest);
/* True when the caller may use admin routes; otherwise answers 401/403. */
bool fm_admin_allowed(fm_req *r);

/* Checks that a body is UTF-8 and nested no deeper than max_depth. Returns
 * NULL when it is, else a message naming the byte offset of the problem. */
const char *fm_json_prescan(const char *p, size_t n, int max_depth, char *msg, size_t cap);

/* Parses r's body as a JSON object; on failure answers 400 through err and returns NULL. */
struct cJSON *fm_parse_body(fm_req *r,
                            void (*err)(fm_req *r, int status, const char *code,
                                        const char *param, const char *msg));

/* The bearer key of the request (after "Bearer "), or NULL when missing or empty. */
const char *fm_bearer_key(fm_req *r);

void fm_api_chat(fm_req *r);
void fm_api_completions(fm_req *r);
void fm_api_models(fm_req *r);
void fm_api_model(fm_req *r, const char *id);

#endif
