/* fleetclient_internal.h — what the client's two wires share, and what the
 * unit tests reach without a server. Not installed; not part of the API.
 *
 * An attempt's answer is read into an fm_answer whatever the wire: the text,
 * the tool calls being assembled (whole from a JSON answer, in pieces from a
 * stream), whether the stream reached its end or failed, and, straight into
 * the result, the usage, the finish reason and the error message.
 * fleetclient_http.c reads chat completions into it, fleetclient_responses.c
 * the Responses API; fm_answer_finish hands it to the result the same way. */
#ifndef FLEETCLIENT_INTERNAL_H
#define FLEETCLIENT_INTERNAL_H

#include "fleetclient.h"

#include <cjson/cJSON.h>
#include <stddef.h>

#define FM_CONTENT_MAX (1u << 20) /* largest assistant text (and tool arguments) kept */
#define FM_NAME_MAX 256           /* longest tool call id or name kept */

typedef struct fm_buf {
  char *p;
  size_t n, cap;
} fm_buf;

/* Appends len bytes, keeping a NUL after them. Returns -1 past `max` or on ENOMEM. */
int fm_buf_add(fm_buf *b, const char *s, size_t len, size_t max);

/* A tool call being assembled during one attempt. */
typedef struct fm_tool_slot {
  char *id, *name;
  fm_buf args;
  bool cut; /* the arguments went past FM_CONTENT_MAX */
  int item; /* Responses: the output_index of its function_call item */
} fm_tool_slot;

typedef struct fm_answer {
  fm_chat_result *res; /* usage, finish_reason and error are written here */
  fm_buf content;
  fm_tool_slot tools[FM_TOOL_CALLS_MAX];
  int n_tools; /* slots in use */
  bool ended;  /* the stream's end: [DONE], response.completed or response.incomplete */
  bool failed; /* an error event, response.failed, or a response of status "failed" */
} fm_answer;

/* Appends assistant text (silently capped at FM_CONTENT_MAX). */
void fm_answer_text(fm_answer *a, const char *text);
/* Slot k (0 <= k < FM_TOOL_CALLS_MAX, else NULL), in use from now on; the
 * first non-empty id and name given stick. */
fm_tool_slot *fm_answer_tool(fm_answer *a, int k, const char *id, const char *name);
/* Appends a piece of a call's arguments. */
void fm_tool_args_add(fm_tool_slot *t, const char *piece);
/* Reads usage counts under the wire's names into the result. */
void fm_answer_usage(fm_answer *a, const cJSON *usage, const char *prompt, const char *details,
                     const char *completion);
/* Keeps an error object's `message` as the result's error. */
void fm_answer_error(fm_answer *a, const cJSON *error);
void fm_answer_finish_reason(fm_answer *a, const char *reason);
/* Forgets what an attempt read (the buffers are kept for the next). */
void fm_answer_reset(fm_answer *a);
void fm_answer_free(fm_answer *a);
/* Hands the text and the assembled calls to the result. Returns -1 when memory runs out. */
int fm_answer_finish(fm_answer *a);

/* ---- The Responses API (fleetclient_responses.c) ---- */

/* The chat-form conversation `messages` (a JSON array) as Responses input
 * items. A first message of role system with string content is left out and
 * its text pointed at by *instructions (else NULL). Returns NULL when memory
 * runs out. */
cJSON *fm_responses_input(const cJSON *messages, const char **instructions);
/* Chat-form tools as flat function tools. NULL when memory runs out. */
cJSON *fm_responses_tools(const cJSON *tools);
/* tool_choice as sent: a string, or a JSON object text in either form.
 * NULL when it does not parse. */
cJSON *fm_responses_tool_choice(const char *tool_choice);

/* What a Responses body is made of, converted once per call. */
typedef struct fm_responses_req {
  const char *model;
  const fm_chat_request *req; /* max_tokens, stream, cache_key, system, prompt, tool_choice */
  cJSON *input;               /* converted messages, or NULL for req->prompt */
  const char *instructions;   /* from the messages, or NULL for req->system */
  cJSON *tools;               /* converted, or NULL */
} fm_responses_req;

/* The request body for one attempt on `tier`, or NULL when memory runs out. */
char *fm_responses_body(const fm_responses_req *r, fm_client_tier tier);

/* A whole response object (a non-streamed answer): its output items, status and usage. */
void fm_responses_read(fm_answer *a, const cJSON *response);
/* One stream event (a `data:` object). */
void fm_responses_event(fm_answer *a, const cJSON *event);

#endif
