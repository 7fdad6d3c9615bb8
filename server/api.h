/* api.h — the OpenAI-compatible inference API and shared request checks. */
#ifndef FM_API_H
#define FM_API_H

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

/* Checks that a body is UTF-8 and nested no deeper than max_depth. Returns
 * NULL when it is, else a message naming the byte offset of the problem. */
const char *fm_json_prescan(const char *p, size_t n, int max_depth, char *msg, size_t cap);

/* Parses r's body as a JSON object; on failure answers 400 and returns NULL. */
struct cJSON *fm_parse_body(fm_req *r);

/* Errors in the wire format of the request's route (OpenAI or Anthropic). */
void fm_api_error_msg(fm_req *r, int status, const char *code, const char *param, const char *msg);
void fm_api_error(fm_req *r, int status, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Anthropic-shaped error: {"type":"error","error":{"type","message"}}. */
void fm_anthropic_error_msg(fm_req *r, int status, const char *code, const char *param,
                            const char *msg);

/* Typed readers over one JSON object. The first bad field answers 400 naming
 * it and sets failed; later calls then do nothing but return defaults. */
typedef struct fm_reader {
  fm_req *r;
  const struct cJSON *obj;
  bool failed;
} fm_reader;

struct fm_infer_params;
void fm_rd_bad(fm_reader *rd, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The field, or NULL when absent or null. */
const struct cJSON *fm_rd_field(fm_reader *rd, const char *name);
bool fm_rd_bool(fm_reader *rd, const char *name, bool def);
double fm_rd_number(fm_reader *rd, const char *name, double lo, double hi, double def);
long long fm_rd_int(fm_reader *rd, const char *name, long long lo, long long hi, long long def,
                    bool *present);
const char *fm_rd_string(fm_reader *rd, const char *name);
/* Reads the account (from the key) and the model; answers 401/404/400 itself. */
bool fm_rd_account_and_model(fm_reader *rd, struct fm_infer_params *p);
/* Sets the admission tier and serving path, answering 400 (naming field) when
 * the model cannot serve it: Priority with a Fast router, a missing path. */
void fm_rd_tier(fm_reader *rd, struct fm_infer_params *p, const char *field, fm_tier want);
/* One accepted service_tier value of an API and the tier it selects. */
typedef struct fm_tier_name {
  const char *name;
  fm_tier tier;
} fm_tier_name;
/* Resolves service_tier against an API's table (ended by {NULL}); an absent
 * value takes the first entry. Unknown values answer 400 listing the table. */
void fm_rd_tier_named(fm_reader *rd, struct fm_infer_params *p, const char *value,
                      const fm_tier_name *names);
/* Prompt-cache keys: affinity (x-session-affinity header, else body_affinity)
 * and isolation (header, else the prompt_cache_isolation_key field). */
void fm_rd_cache_keys(fm_reader *rd, struct fm_infer_params *p, const char *body_affinity);
struct fm_prefix;
/* A message content, a string or an array of parts ({"type":"text","text"}; other
 * parts count 256 tokens): adds its text to the prompt and returns its bytes,
 * or -1 after answering 400 naming `name`. */
long fm_rd_text_content(fm_reader *rd, const struct cJSON *content, const char *name,
                        struct fm_prefix *pre);
/* Records the prompt's size and lowers max_tokens to the room the context
 * leaves (context_length_exceeded_behavior "truncate", the default). Returns
 * false after answering 400 naming prompt_field when the prompt alone fills
 * the context, or naming max_tokens under "error". */
bool fm_rd_prompt_fits(fm_reader *rd, struct fm_infer_params *p, uint64_t tokens,
                       const char *prompt_field);
/* Reads context_length_exceeded_behavior ("truncate" or "error") into p. */
void fm_rd_context_behavior(fm_reader *rd, struct fm_infer_params *p);

/* The API key: the bearer token, or on the Anthropic route also x-api-key; NULL when missing. */
const char *fm_bearer_key(fm_req *r);

void fm_api_chat(fm_req *r);
/* POST messages: the Anthropic-compatible Messages API. */
void fm_api_messages(fm_req *r);
void fm_api_completions(fm_req *r);
void fm_api_models(fm_req *r);
void fm_api_model(fm_req *r, const char *id);

#endif
