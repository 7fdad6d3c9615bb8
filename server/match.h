/* match.h — which requests a rule applies to: the one matcher of reply rules
 * and faults (docs/replies.md, "Matching").
 *
 * A match is a set of conditions, every one optional, all of which must hold:
 * the model, the serving path ("tier"), the API key or its key id, the route,
 * the test id (x-fleetmock-test-id), text conditions on the last user
 * message, the system prompt or any message, whether the last message is a
 * tool result (and of which tool), the turn number, and a JSON subset of the
 * request body. The request's side is an fm_match_facts: what infer.c knows
 * (model, path, key, route, test id) plus the body, parsed only when a
 * condition needs it, so rules that look at the model alone cost no parse. */
#ifndef FM_MATCH_H
#define FM_MATCH_H

#include "config.h"

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

struct cJSON;
struct fm_config_errors;

#define FM_MATCH_PATTERN_MAX 1024 /* bytes of one contains / regex */

/* A condition on text: a substring, or a POSIX extended regular expression. */
typedef struct fm_text_cond {
  bool set;
  char *contains; /* NULL: none */
  char *equals;   /* the whole text; NULL: none */
  bool has_regex;
  regex_t regex;
  char *regex_src;
} fm_text_cond;

typedef enum { FM_TOOL_RESULT_ANY, FM_TOOL_RESULT_YES, FM_TOOL_RESULT_NO } fm_tool_result_cond;

typedef struct fm_match {
  char *model;   /* NULL: any */
  int path;      /* fm_path, or -1: any */
  char *api_key; /* NULL: any */
  char *key_id;  /* NULL: any */
  char *route;   /* "chat/completions", "completions", "messages"; NULL: any */
  char *test_id; /* NULL: requests of any test, or of none */
  fm_text_cond last_user, system, any_message;
  fm_tool_result_cond tool_result;
  char *tool_name;    /* the tool whose result it is; NULL: any */
  int turn;           /* 1 = the first assistant turn; 0: any */
  struct cJSON *body; /* a JSON subset of the request body; NULL: none */
  int conditions;     /* how many are set (the closest rule, for errors) */
} fm_match;

/* What a request offers to the conditions. The caller fills the first
 * fields; the body is parsed on first need and freed by fm_match_facts_free. */
typedef struct fm_match_facts {
  const char *model;
  int path;
  const char *api_key;
  const char *key_id;
  const char *route;
  const char *test_id;
  const char *body; /* JSON text, need not be NUL-terminated */
  size_t body_len;
  const struct cJSON *given; /* the body already parsed, used instead of body (not freed) */
  /* derived from the body, on first need */
  bool parsed;
  struct cJSON *root;
  char *last_user;       /* the text of the last user message; "" when none */
  char *system;          /* the system prompt(s) joined; "" when none */
  char *tool_result;     /* the last message's tool result text; NULL when it is none */
  const char *tool_name; /* the tool that result answers (into root); NULL: unknown */
  int turn;              /* assistant messages so far + 1 */
} fm_match_facts;

void fm_match_init(fm_match *m);
void fm_match_free(fm_match *m);
/* Reads a "match" object into m, reporting every problem with its path under
 * prefix (e.g. "replies[2].match"). j may be NULL (matches everything).
 * Returns false when there were errors. */
bool fm_match_parse(fm_match *m, const struct cJSON *j, const fm_config *cfg, const char *prefix,
                    struct fm_config_errors *errs);
/* Writes m back as JSON (GET /admin/replies, /admin/faults). */
void fm_match_to_json(const fm_match *m, struct cJSON *out);

/* True when every condition of m holds for the request. When not and
 * failed is given, *failed names the first condition that failed. */
bool fm_match_test(const fm_match *m, fm_match_facts *f, const char **failed);
/* How many of m's conditions hold (for "the closest rule"). */
int fm_match_score(const fm_match *m, fm_match_facts *f);

/* Makes sure the derived fields are there (templates read them). */
void fm_match_facts_parse(fm_match_facts *f);
void fm_match_facts_free(fm_match_facts *f);

#endif
