/* replies.h — reply rules: what the model says to the requests a rule
 * matches (docs/replies.md).
 *
 * A rule is a match (match.h) and either one reply, served `count` times or
 * until deleted, or a sequence of replies served in order on successive
 * matches, then retired (or, with "repeat", served again from the first).
 * A reply is what the assistant's turn holds instead of seeded words:
 * reasoning text, content text or a JSON value, tool calls with their
 * arguments, a finish_reason, usage overrides, and optionally a stream fault
 * after N tokens. The reply is still admitted, queued, shed, limited, paced
 * at the path's speed and billed like any answer: only its words are given.
 *
 * Templates: in content, reasoning and every string inside arguments and
 * json, {{last_user}}, {{system}}, {{tool_result}} and {{model}} are
 * replaced by that part of the request (docs/replies.md). */
#ifndef FM_REPLIES_H
#define FM_REPLIES_H

#include "buf.h"
#include "config.h"
#include "faults.h"
#include "match.h"

#include <stdbool.h>
#include <stdint.h>

struct cJSON;
struct fm_config_errors;

#define FM_REPLY_CALLS_MAX 16       /* tool calls in one reply */
#define FM_REPLY_SEQUENCE_MAX 256   /* replies in one sequence */
#define FM_REPLY_TEXT_MAX (1 << 20) /* bytes of one content/reasoning/json/arguments */
#define FM_REPLIES_MAX 10000        /* rules held at once */

/* Byte lengths of the tokens a part is cut into, as recorded (NULL: the usual cut). */
typedef struct fm_pieces {
  uint32_t *len;
  int n;
} fm_pieces;

typedef struct fm_reply_call {
  char *name;
  struct cJSON *arguments; /* an object */
  char *arguments_text;    /* recorded: the arguments exactly as sent (NULL: from arguments) */
  fm_pieces pieces;
} fm_reply_call;

#define FM_REPLY_GAPS_MAX 100000 /* recorded token gaps in one reply */

typedef struct fm_reply {
  char *content;      /* NULL: none */
  char *reasoning;    /* NULL: none */
  struct cJSON *json; /* rendered as the content (response_format answers); NULL: none */
  fm_reply_call calls[FM_REPLY_CALLS_MAX];
  int n_calls;
  char *finish_reason; /* NULL: what the turn says (stop, tool_calls, length) */
  long long prompt_tokens, cached_tokens, completion_tokens; /* -1: not overridden */
  bool has_fault;
  fm_fault_action fault; /* a stream fault after N tokens (error, disconnect, stall) */
  fm_pieces content_pieces, reasoning_pieces; /* recorded token cuts */
  bool recorded_pace; /* "pace": "recorded": the timing below, not the pool's */
  uint32_t ttft_ms;   /* timing.ttft_ms: first token after admission */
  uint32_t *gaps_ms;  /* timing.token_ms: the gap before each later token */
  int n_gaps;
} fm_reply;

typedef struct fm_reply_rule {
  uint32_t id;
  fm_match match;
  fm_reply *replies; /* one, or the sequence */
  int n_replies;
  bool sequence;
  bool repeat;
  int next;             /* the sequence's next reply */
  long long count_left; /* -1: until deleted (or the sequence ends) */
  uint64_t fired;
  struct fm_reply_rule *next_rule;
} fm_reply_rule;

typedef struct fm_replies {
  fm_reply_rule *head;
  uint32_t next_id;
  int n;
  uint64_t fired; /* replies served, all rules */
} fm_replies;

void fm_replies_init(fm_replies *r);
void fm_replies_free(fm_replies *r);
/* Takes over a rule from fm_reply_rule_parse; returns its id (0 when the
 * store is full: FM_REPLIES_MAX, the rule is then freed). */
uint32_t fm_replies_add(fm_replies *r, fm_reply_rule *rule);
/* Deletes one rule by id, or with id 0 every rule of test_id (NULL: all).
 * Returns how many went. */
int fm_replies_delete(fm_replies *r, uint32_t id, const char *test_id);

/* The rule that answers this request, with the reply it gives (the rule's
 * count and sequence move on), or NULL. Rules scoped to the request's test
 * id come first, then the others; among them the first added wins. */
const fm_reply *fm_replies_pick(fm_replies *r, fm_match_facts *f, uint32_t *rule_id);
/* The rule whose conditions come closest (most of them hold), or NULL;
 * *failed names one that does not hold. For the "unmatched" error. */
const fm_reply_rule *fm_replies_closest(fm_replies *r, fm_match_facts *f, const char **failed);

/* Parses one rule ({"match", "reply" | "sequence", "count", "repeat"}),
 * reporting problems with their paths under prefix. NULL on errors. */
fm_reply_rule *fm_reply_rule_parse(const struct cJSON *j, const fm_config *cfg, const char *prefix,
                                   struct fm_config_errors *errs);
void fm_reply_rule_free(fm_reply_rule *rule);
/* The rule as JSON, as GET /admin/replies shows it. */
struct cJSON *fm_reply_rule_to_json(const fm_reply_rule *rule);

/* The rules of a --replies FILE (a JSON rule, a JSON array of rules, or
 * JSON Lines) or DIR (its *.json and *.jsonl files in name order), as an
 * array of {"where": "file:line", "rule": {...}}; problems go to errs. */
struct cJSON *fm_replies_read_path(const char *path, struct fm_config_errors *errs);
/* Adds every rule of such an array, each checked with its "where" as the
 * path prefix; -1 when any was refused (errs says why). */
int fm_replies_add_all(fm_replies *r, const fm_config *cfg, const struct cJSON *rules,
                       struct fm_config_errors *errs);

/* Expands the templates of text into out (see above). */
void fm_reply_expand(const char *text, fm_match_facts *f, fm_buf *out);

#endif
