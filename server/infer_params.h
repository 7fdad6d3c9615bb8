/* infer_params.h — one inference request as the API layer hands it to the
 * core: every field a route reader took from the body and the headers,
 * checked, in the terms infer.c works in.
 *
 * It has a header of its own, apart from infer.h, because the readers that
 * fill it (api_read*.c) build without the HTTP glue: a fuzzer or a unit
 * test gives them bytes and gets this back. The account is the one field a
 * reader never sets; the handler looks it up in the live table afterwards. */
#ifndef FM_INFER_PARAMS_H
#define FM_INFER_PARAMS_H

#include "accounts.h"
#include "cache.h"
#include "config.h"
#include "faults.h"
#include "textgen.h"

#include <stdbool.h>
#include <stdint.h>

/* What the request's own x-fleetmock-fault header asks for. */
typedef enum {
  FM_HEADER_FAULT_NONE, /* no header: the stored faults decide */
  FM_HEADER_FAULT_SET,  /* header_fault holds its action */
  FM_HEADER_FAULT_BAD,  /* malformed: the request is answered 400 where a fault would fire */
} fm_header_fault;

/* ---- what the request asks of the assistant's turn (turn.h decides it) ---- */

typedef enum {
  FM_TOOLS_AUTO,     /* the documented rule decides (docs/api.md, "The auto rule") */
  FM_TOOLS_NONE,     /* never call */
  FM_TOOLS_REQUIRED, /* "required", "any": at least one call */
  FM_TOOLS_NAMED,    /* one call of the named tool */
} fm_tool_choice;

typedef enum {
  FM_FORMAT_TEXT,
  FM_FORMAT_JSON_OBJECT,
  FM_FORMAT_JSON_SCHEMA,
  FM_FORMAT_GRAMMAR,
} fm_format;

typedef enum {
  FM_WIRE_TOOLS,     /* OpenAI tools / Anthropic tool_use */
  FM_WIRE_FUNCTIONS, /* the legacy OpenAI functions / function_call */
} fm_tool_wire;

/* One tool the request offers: what its definition compiles to (api_read.h,
 * fm_rd_tool), shared by every request that sends the same definition. */
typedef struct fm_tooldef fm_tooldef;
typedef struct fm_tool {
  const char *name;         /* the definition's */
  struct fm_schema *schema; /* its parameters, compiled (the definition's); NULL: any object */
  fm_tooldef *def;          /* a reference the job holds (fm_tooldef_release) */
} fm_tool;

#define FM_TOOLS_MAX 128       /* tools one request may offer */
#define FM_TOP_LOGPROBS_MAX 20 /* top_logprobs, as OpenAI bounds it */

typedef struct fm_turn_spec {
  fm_tool *tools;
  int n_tools;
  fm_tool_choice tool_choice;
  int named;     /* FM_TOOLS_NAMED: index into tools */
  bool parallel; /* parallel_tool_calls (Anthropic: !disable_parallel_tool_use) */
  fm_tool_wire wire;
  bool after_tool_result; /* a tool result follows the last user message */
  fm_format format;
  struct fm_schema *schema; /* FM_FORMAT_JSON_SCHEMA: the schema, compiled (a reference held) */
  char *grammar;            /* FM_FORMAT_GRAMMAR: the GBNF text (owned) */
  fm_effort effort;         /* reasoning: resolved against the model's default */
  uint32_t
      reasoning_cap; /* 0: none; else the most reasoning tokens (integer effort, budget_tokens) */
  bool logprobs;
  int top_logprobs;
  int completion_logprobs; /* completions: logprobs N (0 = off; -1 unset) */
} fm_turn_spec;

/* What only the Responses API carries (api_read_responses.c); every string owned. */
typedef struct fm_resp_req {
  bool store;        /* keep the response for retrieval and previous_response_id */
  bool max_output;   /* max_output_tokens was given: a turn it cuts is "incomplete" */
  bool summary;      /* reasoning.summary asked for: the reasoning is also its summary */
  char *echo;        /* the request fields the response object repeats: JSON members, no braces */
  char *items;       /* the conversation up to this turn: a JSON array of input items */
  char *previous_id; /* previous_response_id, or NULL */
} fm_resp_req;
/* An embeddings request (api_read_embeddings.c): the inputs to embed and
 * how. n is 0 for every other route. infer.c plans no turn for it (the job
 * has no choices) and answers at the first-token time; the renderer writes
 * the vectors (api_embeddings.c). */
typedef struct fm_embed_spec {
  int n;          /* inputs */
  char *text;     /* their texts one after another (owned); token ids as decimal words */
  size_t *end;    /* where input i ends in text (owned, n entries) */
  int dimensions; /* of each output vector: the model's size unless the request cut it */
  bool base64;    /* encoding_format "base64": little-endian float32, base64 */
  bool normalize; /* Fireworks' normalize (default true) */
} fm_embed_spec;

#define FM_EMBED_MAX_INPUTS 2048          /* inputs one request may send */
#define FM_EMBED_MAX_TOKENS 300000        /* tokens of all its inputs together */
#define FM_EMBED_MAX_VALUES (2048 * 1024) /* inputs x dimensions: the answer's size */

typedef struct fm_infer_params {
  fm_account *account; /* who pays; held by the job (fm_accounts_hold) until it ends */
  int model;           /* index into the config's models */
  int pool;
  fm_path path;        /* serving path, for billing and the echo */
  fm_tier tier;        /* admission tier */
  char *model_name;    /* as the client sent it */
  uint32_t max_tokens; /* 0: not given */
  bool ignore_eos;
  bool context_error; /* context_length_exceeded_behavior "error": 400 instead of truncating */
  int n;
  char *stop[FM_STOP_MAX];
  int n_stop;
  uint64_t seed;
  uint64_t prompt_digest;
  uint32_t prompt_tokens;
  uint32_t cached_tokens;
  bool stream;
  bool include_usage;
  bool perf_metrics;
  const char *route; /* "chat/completions", "completions" or "messages" (for fault matching) */
  char *affinity;    /* x-session-affinity, else prompt_cache_key, else user */
  char *isolation;   /* prompt-cache isolation key */
  fm_prefix prefix;  /* the prompt's cache blocks */
  fm_turn_spec turn; /* tools, formats, reasoning, logprobs */
  fm_header_fault fault_kind; /* x-fleetmock-fault, read by the API layer */
  fm_fault_action header_fault;
  char *test_id; /* x-fleetmock-test-id: scopes reply rules, faults and the journal; NULL: none */
  fm_resp_req *resp;   /* the Responses API's own fields; NULL on the other routes */
  fm_embed_spec embed; /* the embeddings route; n 0 otherwise */
  /* The parsed body, what reply rules and faults match (match.h), so it is
   * parsed once: on Responses with "messages", the whole conversation as
   * chat messages. A reader's scratch tree (jsonmem.h): the job deletes it
   * once it has matched, fm_infer_params_free when the request ends sooner. */
  struct cJSON *body_tree;
} fm_infer_params;

#define FM_TEST_ID_MAX 128 /* bytes of an x-fleetmock-test-id */

/* Frees the strings and prompt blocks p holds and zeroes it (safe to call twice). */
void fm_infer_params_free(fm_infer_params *p);

#endif
