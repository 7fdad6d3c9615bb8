/* turn.h — what the assistant says, decided once for every wire format.
 *
 * A turn is an ordered list of parts: reasoning, then either content (text
 * or a JSON answer) or tool calls. It is planned when the request starts,
 * from the request's turn spec (tools, tool_choice, response_format,
 * reasoning effort), the model's settings and the choice's seed, so the same
 * (seed, request) always says the same thing. The pacer then takes it one
 * token at a time with fm_turn_next and the wire formats (api_openai.c,
 * api_anthropic.c) only render the parts: none of them decides anything.
 *
 * Tokens. Words (text and reasoning) are one token each, as textgen.h says.
 * Planned bytes (a JSON answer, a tool call's arguments, grammar output) are
 * cut into pieces of 4 bytes, extended to the end of a UTF-8 character, one
 * token each: the prompt rule (ceil(bytes / 4)) run backwards. Every token of
 * every part is a generated token: it takes decode time, counts against the
 * generated-tokens limit and is billed.
 *
 * The auto rule (tool_choice "auto", docs/api.md): the model calls tools
 * when tools are offered and no tool result follows the last user message,
 * with the model's auto_probability; once a tool result is there it answers.
 * "required" (and "any") always call, a named tool is called once, "none"
 * never calls. How many calls (1 to the model's max_parallel, at most the
 * tools offered; 1 without parallel_tool_calls) and which tools come from the
 * choice's seed. */
#ifndef FM_TURN_H
#define FM_TURN_H

#include "buf.h"
#include "config.h"
#include "infer_params.h"
#include "textgen.h"

#include <stdbool.h>
#include <stdint.h>

#define FM_PIECE_BYTES 4 /* bytes of planned text per token */
/* The most bytes of one planned token (a recorded piece, or a reply's text
 * spread over its usage): what fm_turn_next's out holds, less a UTF-8 tail. */
#define FM_PIECE_MAX 252
#define FM_CALL_ID_LEN 24   /* characters after "call_" / "toolu_" */
#define FM_SIGNATURE_LEN 64 /* a thinking block's signature */

typedef enum { FM_PART_REASONING, FM_PART_TEXT, FM_PART_TOOL_CALL } fm_part_kind;

typedef struct fm_part {
  fm_part_kind kind;
  bool fixed;        /* planned bytes (JSON, arguments, grammar text), not words */
  uint32_t tokens;   /* tokens it produces (cut to the turn's limit) */
  uint32_t produced; /* tokens produced so far */
  fm_buf bytes;      /* fixed: all its bytes */
  size_t off;        /* fixed: bytes produced so far */
  bool even;         /* fixed: its bytes spread evenly over `tokens` (a reply's usage) */
  uint32_t *cuts;    /* fixed: the byte length of each token, as recorded (owned); NULL: 4 bytes */
  bool ascii;        /* fixed: no byte above 0x7f, so each token (without cuts) is 4 bytes */
  int tool;          /* tool call: index into the spec's tools (-1: see name) */
  char *name;        /* tool call: the tool's name when it is not one offered (owned) */
  int call;          /* tool call: its number among the turn's calls */
  char id[FM_CALL_ID_LEN + 1];
  fm_buf text; /* what it produced, when the caller keeps it (non-streaming) */
} fm_part;

typedef struct fm_turn {
  fm_part *parts;
  int n_parts;
  int cur;           /* the part producing now */
  uint32_t produced; /* tokens, all parts */
  uint32_t reasoning_produced;
  bool capped;  /* the limit cut the plan short: finish "length" */
  bool stopped; /* a stop sequence ended the text */
  int stop_index;
  bool calls; /* the turn ends in tool calls */
  uint64_t seed;
  fm_gen gen;      /* the words of the current words part */
  char finish[16]; /* a reply rule's finish_reason; "" for the turn's own */
} fm_turn;

/* The name of the tool a tool-call part calls. */
static inline const char *fm_part_tool_name(const fm_part *p, const fm_turn_spec *s) {
  return p->name ? p->name : s->tools[p->tool].name;
}

/* Plans the turn of one choice. text_tokens is the length of a text answer
 * (drawn from the pool, or max_tokens under ignore_eos); limit the most
 * tokens the turn may produce (0: none); max_tokens whether that limit is
 * the request's max_tokens (so reaching it says "length"). Planned JSON is
 * generated here: the spec's schemas must have passed fm_schema_check.
 * Returns false when out of memory (t is then empty). */
bool fm_turn_plan(fm_turn *t, const fm_turn_spec *s, const fm_model_agent *a, uint64_t seed,
                  uint32_t text_tokens, uint32_t limit, bool max_tokens);
void fm_turn_free(fm_turn *t);

struct fm_reply;
struct fm_match_facts;
/* Plans the turn of a reply rule instead: its reasoning, content or JSON,
 * and tool calls as fixed parts (templates expanded from the request's
 * facts), cut to limit like any turn; completion_tokens, when the reply
 * sets it, is the exact number of tokens its parts are spread over. */
bool fm_turn_plan_reply(fm_turn *t, const struct fm_reply *r, struct fm_match_facts *f,
                        const fm_turn_spec *s, uint64_t seed, uint32_t limit, bool max_tokens);

/* The most tokens the plan can produce (what a non-streaming body holds). */
uint32_t fm_turn_planned(const fm_turn *t);

bool fm_turn_done(const fm_turn *t);

/* Produces the next token: writes the bytes that may go out now to out (room
 * for FM_GEN_OUT_MAX; 0 bytes while a stop sequence may be starting) and
 * returns their length; *part is the index of the part it belongs to. Only
 * text parts see the stop sequences. Call only while !fm_turn_done. */
size_t fm_turn_next(fm_turn *t, const fm_stops *stops, char *out, int *part);

/* Produces the rest of the current part at once into its text (what
 * fm_turn_next would give token by token and a non-streaming caller keeps),
 * for a caller with no stop sequences to watch and no per-token record to
 * keep (logprobs). Returns the tokens produced (0 when the turn is done); *part is the part's
 * index, *nonempty how many of its tokens carried bytes. */
uint32_t fm_turn_run(fm_turn *t, int *part, uint32_t *nonempty);

/* OpenAI's finish_reason: "stop", "length", "tool_calls" or (functions) "function_call". */
const char *fm_turn_finish_reason(const fm_turn *t, fm_tool_wire wire);

/* A deterministic signature for a thinking block (FM_SIGNATURE_LEN chars + NUL). */
void fm_turn_signature(const fm_turn *t, int part, char *out);

/* Log-probability of the token at `index` of a choice, for rank 0 (the token
 * sent) and the ranks after it (top_logprobs alternatives): negative,
 * falling with rank, a pure function of (seed, index, rank). */
double fm_turn_logprob(uint64_t seed, uint32_t index, int rank);
/* The alternative token of a given rank (>= 1): a word, with a leading space
 * when index > 0. Writes at most FM_TOKEN_MAX_BYTES + 1 bytes, NUL-terminated. */
void fm_turn_alt_token(uint64_t seed, uint32_t index, int rank, char *out);

#endif
