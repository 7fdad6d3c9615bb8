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
