/* api_read.h — the request readers of every route, on plain bytes.
 *
 * A reader takes what a request carries (the body, a way to look up its
 * headers) and the settings that bound it (the config, --seed) and gives
 * back either the request in checked form (fm_infer_params, a pool patch, a
 * fault, a scenario) or one error record: the status, code, param and
 * message the route answers with. It touches no connection, no socket and
 * no live server state, so a fuzzer (tests/fuzz/) or a unit test calls it
 * directly. The handlers in api_*.c call the reader, answer its error in the
 * route's wire format if there is one, and otherwise do the live part: the
 * account, the fleet, the fault list.
 *
 * Checks run in a fixed order and the first problem wins; every message
 * names the field ("messages[0].content: ...") and says how to fix it. */
#ifndef FM_API_READ_H
#define FM_API_READ_H

#include "config.h"
#include "faults.h"
#include "replies.h"
#include "infer_params.h"
#include "scenario.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* A request header by name (case-insensitive), NULL when absent. */
typedef const char *(*fm_header_fn)(void *ctx, const char *name);

/* What a request carries, and the settings its reader checks it against. */
typedef struct fm_read_in {
  const char *body; /* need not be NUL-terminated */
  size_t len;
  fm_header_fn header; /* NULL: no headers */
  void *header_ctx;
  const fm_config *cfg;
  uint64_t seed; /* --seed: the seed of a request that sends none */
} fm_read_in;

/* The answer to a request a reader refused. */
typedef struct fm_api_err {
  int status;       /* 0: none yet */
  const char *code; /* "INVALID_ARGUMENT", "NOT_FOUND" (static) */
  bool has_param;   /* false: the wire's param is null */
  char param[160];
  char message[1024];
} fm_api_err;

/* ---- route readers: true and the checked request, or false and *e ---------- */

/* POST chat/completions and POST completions. On false, p is left empty. */
bool fm_read_chat(const fm_read_in *in, fm_infer_params *p, fm_api_err *e);
bool fm_read_completions(const fm_read_in *in, fm_infer_params *p, fm_api_err *e);
/* POST messages (Anthropic). On false, p is left empty. */
bool fm_read_messages(const fm_read_in *in, fm_infer_params *p, fm_api_err *e);
/* POST responses. lookup appends to out what the store holds under the
 * response id: the response object (response true; an item_reference is
 * resolved from its output) or the conversation a previous_response_id
 * continues ({"affinity", "items"}, as api_responses.c stores it), and
 * returns true, or returns false when this caller has none (NULL: none
 * ever). On false, p is left empty. */
#define FM_RESP_ID_BYTES 64 /* the longest response id looked up */
typedef bool (*fm_resp_lookup_fn)(void *ctx, const char *id, bool response, struct fm_buf *out);
bool fm_read_responses(const fm_read_in *in, fm_resp_lookup_fn lookup, void *ctx,
                       fm_infer_params *p, fm_api_err *e);
/* POST embeddings (api_read_embeddings.c): p->embed holds the inputs. On
 * false, p is left empty. */
bool fm_read_embeddings(const fm_read_in *in, fm_infer_params *p, fm_api_err *e);

/* PATCH /admin/pools/{name}: `name` is a pool of in->cfg or "*"; pools holds
 * the n current settings (NULL when the caller ran out of memory), in
 * in->cfg's order, and is patched in place: the named one, or all for "*"
 * (*only is then -1). On false, pools may be partly patched: discard it. */
bool fm_read_pool_patch(const fm_read_in *in, const char *name, fm_pool_cfg *pools, size_t n,
                        int *only, fm_api_err *e);
/* POST /admin/replies: the rule (caller frees with fm_reply_rule_free), or NULL. */
fm_reply_rule *fm_read_reply_rule(const fm_read_in *in, fm_api_err *e);
/* POST /admin/faults: the fault (caller frees with fm_fault_free), or NULL. */
fm_fault *fm_read_fault(const fm_read_in *in, fm_api_err *e);
/* POST /admin/scenario: a whole scenario body, or {"name": "<built-in>"}.
 * The scenario (caller frees with fm_scenario_free), or NULL. */
fm_scenario *fm_read_scenario(const fm_read_in *in, fm_api_err *e);

/* The API key: the bearer token, or (when x_api_key, the Anthropic route)
 * the x-api-key header; NULL when there is none. Points into the header. */
const char *fm_read_api_key(fm_header_fn header, void *ctx, bool x_api_key);

/* ---- the pieces the route readers are made of --------------------------------- */

/* Sets *e unless it already holds an error: the first problem is the answer. */
void fm_api_err_set(fm_api_err *e, int status, const char *code, const char *param, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));

/* Parses the body as a JSON object after fm_json_prescan (UTF-8, nesting,
 * NUL); NULL with *e set otherwise. admin picks the wording of the
 * "must be a JSON object" error. */
struct cJSON *fm_rd_parse(const fm_read_in *in, bool admin, fm_api_err *e);
/* The same for an inference route's reader that deletes the tree before it
 * returns: its blocks come from the thread's scratch arena (jsonmem.h). */
struct cJSON *fm_rd_parse_scratch(const fm_read_in *in, fm_api_err *e);

/* Typed readers over one JSON object. The first bad field sets the error
 * (400 naming it) and failed; later calls then change nothing but still
 * return values (defaults when absent), which callers ignore once failed. */
typedef struct fm_reader {
  const fm_read_in *in;
  const struct cJSON *obj;
  fm_api_err *err;
  bool failed;
} fm_reader;

void fm_rd_bad(fm_reader *rd, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Any other error (a 404): the same first-wins rule. */
void fm_rd_fail(fm_reader *rd, int status, const char *code, const char *param, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));
/* The field, or NULL when absent or null. */
const struct cJSON *fm_rd_field(fm_reader *rd, const char *name);
bool fm_rd_bool(fm_reader *rd, const char *name, bool def);
double fm_rd_number(fm_reader *rd, const char *name, double lo, double hi, double def);
long long fm_rd_int(fm_reader *rd, const char *name, long long lo, long long hi, long long def,
                    bool *present);
const char *fm_rd_string(fm_reader *rd, const char *name);
/* A request header through in->header; NULL when absent or there are no headers. */
const char *fm_rd_header(const fm_reader *rd, const char *name);
/* Reads the model: 400 when missing or not a string, 404 when not served here. */
bool fm_rd_model(fm_reader *rd, fm_infer_params *p);
/* Sets the admission tier and serving path, 400 (naming field) when the
 * model cannot serve it: Priority with a Fast router, a missing path. */
void fm_rd_tier(fm_reader *rd, fm_infer_params *p, const char *field, fm_tier want);
/* One accepted service_tier value of an API and the tier it selects. */
typedef struct fm_tier_name {
  const char *name;
  fm_tier tier;
} fm_tier_name;
/* Resolves service_tier against an API's table (ended by {NULL}); an absent
 * value takes the first entry. Unknown values are a 400 listing the table. */
void fm_rd_tier_named(fm_reader *rd, fm_infer_params *p, const char *value,
                      const fm_tier_name *names);
/* service_tier on the OpenAI-shaped routes (chat, completions, responses):
 * "auto", "default", "flex" (Standard), "priority", "background". */
bool fm_rd_openai_tier(fm_reader *rd, fm_infer_params *p);
/* Prompt-cache keys: affinity (x-session-affinity header, else body_affinity)
 * and isolation (header, else the prompt_cache_isolation_key field). */
void fm_rd_cache_keys(fm_reader *rd, fm_infer_params *p, const char *body_affinity);
/* A message content, a string or an array of parts ({"type":"text","text"}; other
 * parts count 256 tokens): adds its text to the prompt and returns its bytes,
 * or -1 after a 400 naming `name`. */
long fm_rd_text_content(fm_reader *rd, const struct cJSON *content, const char *name,
                        fm_prefix *pre);
/* Records the prompt's size and lowers max_tokens to the room the context
 * leaves (context_length_exceeded_behavior "truncate", the default). Returns
 * false after a 400 naming prompt_field when the prompt alone fills the
 * context, or naming max_tokens under "error". */
bool fm_rd_prompt_fits(fm_reader *rd, fm_infer_params *p, uint64_t tokens,
                       const char *prompt_field);
/* Reads context_length_exceeded_behavior ("truncate" or "error") into p. */
void fm_rd_context_behavior(fm_reader *rd, fm_infer_params *p);
/* Reads the x-fleetmock-fault header into p (fault_kind, header_fault). */
void fm_rd_fault_header(fm_reader *rd, fm_infer_params *p);

/* ---- the turn: tools, formats, reasoning (api_read_turn.c) ------------------ */

/* Adds one offered tool: its name (checked, unique) and parameters schema
 * (checked with fm_schema_check, copied; NULL: any object). where names the
 * tool ("tools[2].function"), schema_key its schema field ("parameters"). */
/* Writes into out (cap bytes, always terminated, cut when too long) the
 * path base.key, or base[index] when key is NULL: the names errors give.
 * Readers build one per array item, so it is plain copies, not printf. */
void fm_rd_path(char *out, size_t cap, const char *base, const char *key, int index);

/* Tool definitions are part of the prompt: v's compact JSON is added to the
 * prompt's cache blocks and its length to *bytes. */
void fm_rd_prompt_json(fm_infer_params *p, const struct cJSON *v, uint64_t *bytes);

/* One tool a request offers, its definition def (an OpenAI function object,
 * an Anthropic or Responses tool): its name and its schema (def's member
 * schema_key; absent or null: any object) checked, the tool added to the
 * turn, and def's compact JSON (without its "type" member when drop_type) in
 * the prompt (fm_rd_prompt_json). `where` names def in errors. False after
 * a 400 that names the field, or a 500 for memory. */
#define FM_TOOLDEF_CACHE 256              /* tool definitions kept for reuse */
#define FM_TOOLDEF_CACHE_BYTES (4u << 20) /* their memory, in all (one: a 16th of it) */
bool fm_rd_tool(fm_reader *rd, fm_infer_params *p, const struct cJSON *def, const char *schema_key,
                bool drop_type, const char *where, uint64_t *bytes);
/* Drops a reference fm_rd_tool gave a tool (NULL is fine). */
void fm_tooldef_release(fm_tooldef *d);
/* Empties the definitions kept for reuse (tests; each is freed when its last request ends). */
void fm_tooldef_cache_clear(void);
/* The index of the offered tool with this name, or -1. */
int fm_rd_find_tool(const fm_infer_params *p, const char *name);
/* A JSON answer under this schema (response_format json_schema, output_config). */
bool fm_rd_format_schema(fm_reader *rd, fm_infer_params *p, const struct cJSON *schema,
                         const char *path);
/* A grammar answer (response_format grammar): the GBNF subset schema.h generates from. */
bool fm_rd_grammar(fm_reader *rd, fm_infer_params *p, const struct cJSON *grammar,
                   const char *path);
/* reasoning_effort: a level, a boolean (true = medium) or an integer token budget. */
bool fm_rd_effort(fm_reader *rd, fm_infer_params *p, const struct cJSON *v, const char *field);
/* thinking {type: "enabled", budget_tokens >= 1024} or {type: "disabled"}:
 * the reasoning effort and its cap. max_tokens, when not 0, must exceed the budget. */
bool fm_rd_thinking(fm_reader *rd, fm_infer_params *p, const struct cJSON *th, uint32_t max_tokens);
/* After the turn fields: tools on a model without them is a 400; without an
 * effort in the request, the model's default; a model that does not reason
 * never does. */
bool fm_rd_turn_done(fm_reader *rd, fm_infer_params *p, bool effort_given);

/* The tool-call ids a conversation has made so far (borrowed strings). */
typedef struct fm_tool_ids {
  const char **ids;
  size_t n, cap;
} fm_tool_ids;
bool fm_tool_ids_add(fm_tool_ids *ids, const char *id);
bool fm_tool_ids_has(const fm_tool_ids *ids, const char *id);
void fm_tool_ids_free(fm_tool_ids *ids);

#endif
