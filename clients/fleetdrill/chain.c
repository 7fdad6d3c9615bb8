/* chain.c — an agent chain's conversation and the judgement of its steps.
 *
 * The conversation is a cJSON array the chain owns: the system prompt, the
 * task, then per tool step the assistant message (its tool_calls, content
 * null), one role "tool" message per call answering the call's id with a
 * short fake result, and before the last step a "continue" user message.
 * It grows by a few small messages per step and a chain has at most
 * FD_CHAIN_MAX_STEPS steps, so it stays small; FD_CHAIN_MAX_BYTES and
 * FD_CHAIN_ARGS_MAX bound it even when a server sends long arguments.
 *
 * A call counts only when it is whole: an id, the name of one of the five
 * tools offered, and arguments that parse as a JSON object. */
#include "chain.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char fd_chain_system[] =
    "You are an operations agent. You plan, call one tool per step, read its result and decide "
    "the next step. Tools: search(query), read(url), run(command), write(path, text), "
    "ask(question). Answer with the tool call only. Keep every step short: the chain is judged on "
    "finishing, not on prose. Never invent tool results; if a step fails, stop and report it. "
    "The workspace is a staging copy; nothing you do here reaches production. Context follows.";

/* The five tools the system prompt names, as OpenAI function tools. */
static const char fd_chain_tools_json[] =
    "["
    "{\"type\":\"function\",\"function\":{\"name\":\"search\",\"description\":\"Search the "
    "workspace and the runbooks.\",\"parameters\":{\"type\":\"object\",\"properties\":{\"query\":"
    "{\"type\":\"string\"}},\"required\":[\"query\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"read\",\"description\":\"Read a document or "
    "a log by URL.\",\"parameters\":{\"type\":\"object\",\"properties\":{\"url\":{\"type\":"
    "\"string\"}},\"required\":[\"url\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"run\",\"description\":\"Run a shell command "
    "in the staging workspace.\",\"parameters\":{\"type\":\"object\",\"properties\":{\"command\":"
    "{\"type\":\"string\"}},\"required\":[\"command\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"write\",\"description\":\"Write a file in "
    "the staging workspace.\",\"parameters\":{\"type\":\"object\",\"properties\":{\"path\":{"
    "\"type\":\"string\"},\"text\":{\"type\":\"string\"}},\"required\":[\"path\",\"text\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"ask\",\"description\":\"Ask the operator a "
    "question.\",\"parameters\":{\"type\":\"object\",\"properties\":{\"question\":{\"type\":"
    "\"string\"}},\"required\":[\"question\"]}}}"
    "]";

/* Each tool's name and the result the drill pretends it returned. */
static const struct {
  const char *name, *result;
} fd_chain_tool_results[] = {
    {"search", "3 results: runbooks/deploy.md, logs/api-latest, status/incidents"},
    {"read", "200 OK, 42 lines; the last deploy finished at 12:04 with one warning"},
    {"run", "exit 0; 2 lines of output: service healthy, 3 pods ready"},
    {"write", "written, 128 bytes"},
    {"ask", "the operator says: go on"},
};
#define FD_CHAIN_NTOOLS (sizeof fd_chain_tool_results / sizeof fd_chain_tool_results[0])

const char *fd_chain_tools(void) {
  return fd_chain_tools_json;
}

static const char *fd_chain_tool_result(const char *name) {
  for (size_t i = 0; i < FD_CHAIN_NTOOLS; i++)
    if (name && strcmp(name, fd_chain_tool_results[i].name) == 0)
      return fd_chain_tool_results[i].result;
  return NULL;
}

/* Appends {role, content} (content NULL: JSON null). Returns the message or NULL. */
static cJSON *fd_chain_add(cJSON *conv, const char *role, const char *content) {
  cJSON *m = cJSON_CreateObject();
  if (!m) return NULL;
  cJSON_AddItemToArray(conv, m);
  if (!cJSON_AddStringToObject(m, "role", role)) return NULL;
  if (!(content ? cJSON_AddStringToObject(m, "content", content)
                : cJSON_AddNullToObject(m, "content")))
    return NULL;
  return m;
}

int fd_chain_begin(fd_chain *c, uint64_t id, int steps) {
  char task[160];
  fd_chain_end(c);
  if (!(c->conv = cJSON_CreateArray())) return -1;
  snprintf(task, sizeof task,
           "Task %016llx: the staging API answers slowly since the last deploy. Find out why and "
           "report in %d steps.",
           (unsigned long long)id, steps);
  if (!fd_chain_add(c->conv, "system", fd_chain_system) || !fd_chain_add(c->conv, "user", task)) {
    fd_chain_end(c);
    return -1;
  }
  c->id = id;
  c->steps = steps;
  c->step = 1;
  return 0;
}

bool fd_chain_running(const fd_chain *c) {
  return c->conv != NULL;
}

void fd_chain_end(fd_chain *c) {
  cJSON_Delete(c->conv);
  c->conv = NULL;
}

static bool fd_chain_is_assistant(const cJSON *m) {
  const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
  return cJSON_IsString(role) && strcmp(role->valuestring, "assistant") == 0;
}

/* Drops the oldest tool step (its assistant message and everything up to
 * the next one) unless it is the only one left. Returns whether it did. */
static bool fd_chain_drop_oldest(fd_chain *c) {
  cJSON *first = cJSON_GetArrayItem(c->conv, 2); /* after the system prompt and the task */
  if (!first || !fd_chain_is_assistant(first)) return false;
  const cJSON *next = first->next;
  while (next && !fd_chain_is_assistant(next))
    next = next->next;
  if (!next) return false;
  while (cJSON_GetArrayItem(c->conv, 2) != next)
    cJSON_DeleteItemFromArray(c->conv, 2);
  return true;
}

char *fd_chain_messages(fd_chain *c) {
  for (;;) {
    char *s = cJSON_PrintUnformatted(c->conv);
    if (!s || strlen(s) <= FD_CHAIN_MAX_BYTES || !fd_chain_drop_oldest(c)) return s;
    free(s);
  }
}

static bool fd_chain_call_ok(const fm_tool_call *t) {
  return t->id && *t->id && fd_chain_tool_result(t->name) && t->arguments_ok &&
         strlen(t->arguments) <= FD_CHAIN_ARGS_MAX;
}

/* Appends the assistant's calls and one result per call. */
static int fd_chain_add_tool_step(fd_chain *c, const fm_chat_result *r) {
  cJSON *m = fd_chain_add(c->conv, "assistant", NULL), *calls;
  if (!m || !(calls = cJSON_AddArrayToObject(m, "tool_calls"))) return -1;
  for (int i = 0; i < r->n_tool_calls; i++) {
    const fm_tool_call *t = &r->tool_calls[i];
    cJSON *call = cJSON_CreateObject(), *fn;
    if (!call) return -1;
    cJSON_AddItemToArray(calls, call);
    if (!cJSON_AddStringToObject(call, "id", t->id) ||
        !cJSON_AddStringToObject(call, "type", "function") ||
        !(fn = cJSON_AddObjectToObject(call, "function")) ||
        !cJSON_AddStringToObject(fn, "name", t->name) ||
        !cJSON_AddStringToObject(fn, "arguments", t->arguments))
      return -1;
  }
  for (int i = 0; i < r->n_tool_calls; i++) {
    const fm_tool_call *t = &r->tool_calls[i];
    cJSON *res = fd_chain_add(c->conv, "tool", fd_chain_tool_result(t->name));
    if (!res || !cJSON_AddStringToObject(res, "tool_call_id", t->id)) return -1;
  }
  if (c->step + 1 < c->steps) { /* the next step calls a tool again */
    char next[64];
    snprintf(next, sizeof next, "continue: step %d of %d", c->step + 1, c->steps);
    if (!fd_chain_add(c->conv, "user", next)) return -1;
  }
  return 0;
}

fd_chain_verdict fd_chain_take(fd_chain *c, const fm_chat_result *r) {
  const char *fr = r->finish_reason;
  if (c->step >= c->steps) { /* the final answer is due */
    if (r->n_tool_calls > 0 || (strcmp(fr, "stop") != 0 && strcmp(fr, "length") != 0))
      return FD_CHAIN_BROKEN_NO_TEXT;
    return FD_CHAIN_DONE;
  }
  if (r->n_tool_calls == 0) return FD_CHAIN_BROKEN_NO_CALL;
  if (strcmp(fr, "tool_calls") != 0) return FD_CHAIN_BROKEN_BAD_CALL;
  for (int i = 0; i < r->n_tool_calls; i++)
    if (!fd_chain_call_ok(&r->tool_calls[i])) return FD_CHAIN_BROKEN_BAD_CALL;
  if (fd_chain_add_tool_step(c, r) != 0) return FD_CHAIN_OOM;
  c->step++;
  return FD_CHAIN_NEXT;
}

const char *fd_chain_verdict_name(fd_chain_verdict v) {
  switch (v) {
  case FD_CHAIN_NEXT:
    return "tool step";
  case FD_CHAIN_DONE:
    return "chain completed";
  case FD_CHAIN_BROKEN_NO_CALL:
    return "chain broken: expected tool call";
  case FD_CHAIN_BROKEN_NO_TEXT:
    return "chain broken: expected final answer";
  case FD_CHAIN_BROKEN_BAD_CALL:
    return "chain broken: invalid tool call";
  case FD_CHAIN_OOM:
    return "out of memory";
  }
  return "?";
}
