/* chain.h — an agent chain: the conversation of one agent task, the tools
 * it offers, and the judgement of each step's answer.
 *
 * A chain of N steps (3..6) is N-1 tool-calling steps and one final answer.
 * Every step sends the whole conversation with the five tools and
 * tool_choice "auto". Under the server's auto rule the model calls tools
 * while no tool result follows the last user message, and answers in text
 * once one does; so after each tool step the chain appends the assistant's
 * calls, one tool result per call, and (before the last step) a short user
 * message asking for the next step. The chain knows nothing of HTTP or of
 * the drill's loop: it reads a finished fm_chat_result and says what it was. */
#ifndef FD_CHAIN_H
#define FD_CHAIN_H

#include <fleetclient.h>
#include <stdbool.h>
#include <stdint.h>

#define FD_CHAIN_MIN_STEPS 3
#define FD_CHAIN_MAX_STEPS 6
#define FD_CHAIN_MAX_BYTES (16u << 10) /* conversation sent; oldest tool steps go first */
#define FD_CHAIN_ARGS_MAX 4096         /* longest arguments a call may carry */

/* What a step's answer was, judged against the step it answered. */
typedef enum {
  FD_CHAIN_NEXT,            /* a tool step with valid calls: the chain goes on */
  FD_CHAIN_DONE,            /* the last step, answered in text: the chain completed */
  FD_CHAIN_BROKEN_NO_CALL,  /* text where a tool call was due */
  FD_CHAIN_BROKEN_NO_TEXT,  /* a tool call where the final answer was due */
  FD_CHAIN_BROKEN_BAD_CALL, /* calls without id, an unknown tool, arguments not a JSON object */
  FD_CHAIN_OOM              /* the conversation could not grow */
} fd_chain_verdict;

#define FD_CHAIN_NBROKEN 3 /* the BROKEN_* verdicts, indexed from FD_CHAIN_BROKEN_NO_CALL */

struct cJSON;

typedef struct fd_chain {
  struct cJSON *conv; /* the messages; NULL when no chain runs */
  uint64_t id;
  int steps; /* N, planned at the start */
  int step;  /* the step being sent or answered, 1..N */
} fd_chain;

/* Starts a chain of `steps` steps: the system prompt and the task. Returns
 * 0, or -1 when memory runs out (the chain is then not running). */
int fd_chain_begin(fd_chain *c, uint64_t id, int steps);

/* Whether the chain runs: its current step is still to be sent or answered. */
bool fd_chain_running(const fd_chain *c);

/* The conversation for the current step as JSON text (the caller frees
 * it), trimmed to FD_CHAIN_MAX_BYTES by dropping the oldest tool steps.
 * Returns NULL when memory runs out. */
char *fd_chain_messages(fd_chain *c);

/* The tools every step offers, as a JSON array text. */
const char *fd_chain_tools(void);

/* Judges the answer `r` (outcome ok) to the current step and, for
 * FD_CHAIN_NEXT, appends it and the tool results to the conversation. */
fd_chain_verdict fd_chain_take(fd_chain *c, const fm_chat_result *r);

/* The label of a verdict in reports ("chain broken: expected tool call"...). */
const char *fd_chain_verdict_name(fd_chain_verdict v);

/* Frees the conversation; the chain is no longer running. */
void fd_chain_end(fd_chain *c);

#endif
