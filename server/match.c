/* match.c — the conditions of reply rules and faults (match.h). */
#include "match.h"

#include "accounts.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fm_match_init(fm_match *m) {
  memset(m, 0, sizeof(*m));
  m->path = -1;
}

static void text_free(fm_text_cond *c) {
  free(c->contains);
  free(c->equals);
  free(c->regex_src);
  if (c->has_regex) regfree(&c->regex);
  memset(c, 0, sizeof(*c));
}

void fm_match_free(fm_match *m) {
  free(m->model);
  free(m->api_key);
  free(m->key_id);
  free(m->route);
  free(m->test_id);
  free(m->tool_name);
  text_free(&m->last_user);
  text_free(&m->system);
  text_free(&m->any_message);
  cJSON_Delete(m->body);
  fm_match_init(m);
}

/* ---- parsing ------------------------------------------------------------------ */

static char *string_field(const cJSON *o, const char *key, struct fm_config_errors *errs,
                          const char *prefix, int *conditions) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v || cJSON_IsNull(v)) return NULL;
  if (!cJSON_IsString(v) || !*v->valuestring) {
    fm_config_errors_at(errs, prefix, key, "must be a non-empty string");
    return NULL;
  }
  (*conditions)++;
  return strdup(v->valuestring);
}

static void text_parse(fm_text_cond *c, const cJSON *v, const char *key,
                       struct fm_config_errors *errs, const char *prefix, int *conditions) {
  if (!v || cJSON_IsNull(v)) return;
  const cJSON *contains = cJSON_IsString(v) ? v : cJSON_GetObjectItemCaseSensitive(v, "contains");
  const cJSON *regex = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "regex") : NULL;
  const cJSON *equals = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "equals") : NULL;
  bool shape = cJSON_IsString(v) || cJSON_IsObject(v);
  if (cJSON_IsObject(v))
    for (const cJSON *it = v->child; it; it = it->next)
      if (strcmp(it->string, "contains") && strcmp(it->string, "regex") &&
          strcmp(it->string, "equals"))
        shape = false;
  if (!shape || (!contains && !regex && !equals) || (contains && !cJSON_IsString(contains)) ||
      (regex && !cJSON_IsString(regex)) || (equals && !cJSON_IsString(equals))) {
    fm_config_errors_at(
        errs, prefix, key,
        "must be a string (a substring to find), or {\"contains\": \"...\"}, {\"equals\": "
        "\"...\"} (the whole text) or {\"regex\": \"...\"} (POSIX extended)");
    return;
  }
  if (equals) c->equals = strdup(equals->valuestring);
  c->set = true;
  (*conditions)++;
  if (contains) {
    if (strlen(contains->valuestring) > FM_MATCH_PATTERN_MAX)
      fm_config_errors_at(errs, prefix, key, "is longer than %d bytes", FM_MATCH_PATTERN_MAX);
    c->contains = strdup(contains->valuestring);
  }
  if (regex) {
    char field[64];
    snprintf(field, sizeof(field), "%s.regex", key);
    if (strlen(regex->valuestring) > FM_MATCH_PATTERN_MAX) {
      fm_config_errors_at(errs, prefix, field, "is longer than %d bytes", FM_MATCH_PATTERN_MAX);
      return;
    }
    int rc = regcomp(&c->regex, regex->valuestring, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
      char why[200];
      regerror(rc, &c->regex, why, sizeof(why));
      fm_config_errors_at(errs, prefix, field, "is not a POSIX extended regular expression: %s",
                          why);
      return;
    }
    c->has_regex = true;
    c->regex_src = strdup(regex->valuestring);
  }
}

bool fm_match_parse(fm_match *m, const cJSON *j, const fm_config *cfg, const char *prefix,
                    struct fm_config_errors *errs) {
  fm_match_init(m);
  if (!j || cJSON_IsNull(j)) return true;
  size_t before = errs->n;
  if (!cJSON_IsObject(j)) {
    fm_config_errors_add(errs, "%s: must be an object of conditions, e.g. {\"model\": \"...\"}",
                         prefix);
    return false;
  }
  static const char *const known[] = {
      "model",  "tier",        "api_key",     "key_id", "route", "test_id", "last_user",
      "system", "any_message", "tool_result", "turn",   "body",  NULL};
  for (const cJSON *it = j->child; it; it = it->next) {
    bool k = false;
    for (const char *const *n = known; *n && !k; n++)
      k = !strcmp(*n, it->string);
    if (!k)
      fm_config_errors_at(
          errs, prefix, it->string,
          "unknown field (the conditions are model, tier, api_key, key_id, route, test_id, "
          "last_user, system, any_message, tool_result, turn and body)");
  }
  int *n = &m->conditions;
  m->model = string_field(j, "model", errs, prefix, n);
  if (m->model && fm_config_find_model(cfg, m->model) < 0)
    fm_config_errors_at(errs, prefix, "model", "no model \"%s\" (GET /v1/models lists them)",
                        m->model);
  char *tier = string_field(j, "tier", errs, prefix, n);
  if (tier) {
    for (int k = 0; k < FM_PATH_N; k++)
      if (!strcmp(tier, fm_path_names[k])) m->path = k;
    if (m->path < 0)
      fm_config_errors_at(errs, prefix, "tier",
                          "must be \"standard\", \"priority\", \"background\" or \"fast\"");
    free(tier);
  }
  m->api_key = string_field(j, "api_key", errs, prefix, n);
  m->key_id = string_field(j, "key_id", errs, prefix, n);
  m->route = string_field(j, "route", errs, prefix, n);
  if (m->route && strcmp(m->route, "chat/completions") && strcmp(m->route, "completions") &&
      strcmp(m->route, "messages") && strcmp(m->route, "responses") &&
      strcmp(m->route, "embeddings"))
    fm_config_errors_at(errs, prefix, "route",
                        "must be \"chat/completions\", \"completions\", \"messages\", "
                        "\"responses\" or \"embeddings\"");
  m->test_id = string_field(j, "test_id", errs, prefix, n);
  text_parse(&m->last_user, cJSON_GetObjectItemCaseSensitive(j, "last_user"), "last_user", errs,
             prefix, n);
  text_parse(&m->system, cJSON_GetObjectItemCaseSensitive(j, "system"), "system", errs, prefix, n);
  text_parse(&m->any_message, cJSON_GetObjectItemCaseSensitive(j, "any_message"), "any_message",
             errs, prefix, n);
  const cJSON *tr = cJSON_GetObjectItemCaseSensitive(j, "tool_result");
  if (tr && !cJSON_IsNull(tr)) {
    (*n)++;
    if (cJSON_IsBool(tr))
      m->tool_result = cJSON_IsTrue(tr) ? FM_TOOL_RESULT_YES : FM_TOOL_RESULT_NO;
    else if (cJSON_IsString(tr) && *tr->valuestring) {
      m->tool_result = FM_TOOL_RESULT_YES;
      m->tool_name = strdup(tr->valuestring);
    } else
      fm_config_errors_at(
          errs, prefix, "tool_result",
          "must be true (the last message is a tool result), false (it is not), or a tool's "
          "name (it is that tool's result)");
  }
  const cJSON *turn = cJSON_GetObjectItemCaseSensitive(j, "turn");
  if (turn && !cJSON_IsNull(turn)) {
    (*n)++;
    if (!cJSON_IsNumber(turn) || turn->valuedouble < 1 || turn->valuedouble > 1e6 ||
        turn->valuedouble != floor(turn->valuedouble))
      fm_config_errors_at(
          errs, prefix, "turn",
          "must be a whole number from 1: the assistant turn this answer is (1 = the first, "
          "2 = after one assistant message, ...)");
    else
      m->turn = (int)turn->valuedouble;
  }
  const cJSON *body = cJSON_GetObjectItemCaseSensitive(j, "body");
  if (body && !cJSON_IsNull(body)) {
    (*n)++;
    if (!cJSON_IsObject(body))
      fm_config_errors_at(errs, prefix, "body",
                          "must be an object: a JSON subset the request body must contain, e.g. "
                          "{\"temperature\": 0}");
    else
      m->body = cJSON_Duplicate(body, true);
  }
  if (errs->n > before) {
    fm_match_free(m);
    return false;
  }
  return true;
}

static void text_to_json(const fm_text_cond *c, const char *key, cJSON *out) {
  if (!c->set) return;
  cJSON *o = cJSON_AddObjectToObject(out, key);
  if (c->contains) cJSON_AddStringToObject(o, "contains", c->contains);
  if (c->equals) cJSON_AddStringToObject(o, "equals", c->equals);
  if (c->regex_src) cJSON_AddStringToObject(o, "regex", c->regex_src);
}

void fm_match_to_json(const fm_match *m, cJSON *out) {
  if (m->model) cJSON_AddStringToObject(out, "model", m->model);
  if (m->path >= 0) cJSON_AddStringToObject(out, "tier", fm_path_names[m->path]);
  if (m->key_id) {
    cJSON_AddStringToObject(out, "key_id", m->key_id);
  } else if (m->api_key) { /* the key itself is never shown */
    char id[16];
    fm_key_id(m->api_key, id);
    cJSON_AddStringToObject(out, "key_id", id);
  }
  if (m->route) cJSON_AddStringToObject(out, "route", m->route);
  if (m->test_id) cJSON_AddStringToObject(out, "test_id", m->test_id);
  text_to_json(&m->last_user, "last_user", out);
  text_to_json(&m->system, "system", out);
  text_to_json(&m->any_message, "any_message", out);
  if (m->tool_result != FM_TOOL_RESULT_ANY) {
    if (m->tool_name)
      cJSON_AddStringToObject(out, "tool_result", m->tool_name);
    else
      cJSON_AddBoolToObject(out, "tool_result", m->tool_result == FM_TOOL_RESULT_YES);
  }
  if (m->turn) cJSON_AddNumberToObject(out, "turn", m->turn);
  if (m->body) cJSON_AddItemToObject(out, "body", cJSON_Duplicate(m->body, true));
}

/* ---- the request's side ------------------------------------------------------- */

/* Appends the text of a message's content: a string, or the text of its
 * parts/blocks ({"type": "text", "text": ...}; a tool_result's own content). */
static void content_text(const cJSON *content, fm_buf *out) {
  if (cJSON_IsString(content)) {
    fm_buf_puts(out, content->valuestring);
    return;
  }
  if (!cJSON_IsArray(content)) return;
  for (const cJSON *part = content->child; part; part = part->next) {
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
    if (cJSON_IsString(text)) {
      if (out->len) fm_buf_putc(out, '\n');
      fm_buf_puts(out, text->valuestring);
    }
  }
}

static char *steal_text(fm_buf *b) {
  fm_buf_putc(b, '\0');
  return fm_buf_steal(b, NULL);
}

static const char *role_of(const cJSON *msg) {
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(msg, "role");
  return cJSON_IsString(r) ? r->valuestring : "";
}

/* An Anthropic user message's tool_result block, or NULL. */
static const cJSON *anthropic_tool_result(const cJSON *msg) {
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
  for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(b, "type");
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "tool_result")) return b;
  }
  return NULL;
}

static bool has_text(const cJSON *msg) {
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
  if (cJSON_IsString(content)) return true;
  for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next)
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(b, "text"))) return true;
  return false;
}

/* The name of the tool whose call has this id, from the assistant messages. */
static const char *call_name(const cJSON *messages, const char *id) {
  for (const cJSON *m = messages->child; m; m = m->next) {
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    for (const cJSON *c = cJSON_IsArray(calls) ? calls->child : NULL; c; c = c->next) {
      const cJSON *cid = cJSON_GetObjectItemCaseSensitive(c, "id");
      const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
      const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
      if (cJSON_IsString(cid) && !strcmp(cid->valuestring, id) && cJSON_IsString(name))
        return name->valuestring;
    }
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
      const cJSON *bid = cJSON_GetObjectItemCaseSensitive(b, "id");
      const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
      if (cJSON_IsString(bid) && !strcmp(bid->valuestring, id) && cJSON_IsString(name))
        return name->valuestring;
    }
  }
  return NULL;
}

void fm_match_facts_parse(fm_match_facts *f) {
  if (f->parsed) return;
  f->parsed = true;
  f->turn = 1;
  f->root = f->given  ? (cJSON *)f->given
            : f->body ? cJSON_ParseWithLength(f->body, f->body_len)
                      : NULL;
  fm_buf user, system;
  fm_buf_init(&user);
  fm_buf_init(&system);
  const cJSON *sys = cJSON_GetObjectItemCaseSensitive(f->root, "system"); /* Anthropic */
  if (sys) content_text(sys, &system);
  const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(f->root, "prompt"); /* completions */
  if (cJSON_IsString(prompt))
    fm_buf_puts(&user, prompt->valuestring);
  else if (cJSON_IsArray(prompt) && cJSON_IsString(cJSON_GetArrayItem(prompt, 0)))
    fm_buf_puts(&user, cJSON_GetArrayItem(prompt, cJSON_GetArraySize(prompt) - 1)->valuestring);
  const cJSON *messages = cJSON_GetObjectItemCaseSensitive(f->root, "messages");
  const cJSON *last_user = NULL, *last = NULL;
  for (const cJSON *m = cJSON_IsArray(messages) ? messages->child : NULL; m; m = m->next) {
    const char *role = role_of(m);
    if (!strcmp(role, "assistant")) f->turn++;
    if (!strcmp(role, "system") || !strcmp(role, "developer")) {
      if (system.len) fm_buf_putc(&system, '\n');
      content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), &system);
    }
    if (!strcmp(role, "user") && has_text(m)) last_user = m;
    last = m;
  }
  if (last_user) content_text(cJSON_GetObjectItemCaseSensitive(last_user, "content"), &user);
  if (last) {
    const char *role = role_of(last);
    const cJSON *block = !strcmp(role, "user") ? anthropic_tool_result(last) : NULL;
    if (!strcmp(role, "tool") || !strcmp(role, "function") || block) {
      fm_buf r;
      fm_buf_init(&r);
      content_text(cJSON_GetObjectItemCaseSensitive(block ? block : last, "content"), &r);
      f->tool_result = steal_text(&r);
      const cJSON *id = cJSON_GetObjectItemCaseSensitive(block ? block : last,
                                                         block ? "tool_use_id" : "tool_call_id");
      const cJSON *name = cJSON_GetObjectItemCaseSensitive(last, "name"); /* legacy function */
      if (cJSON_IsString(id)) f->tool_name = call_name(messages, id->valuestring);
      if (!f->tool_name && cJSON_IsString(name)) f->tool_name = name->valuestring;
    }
  }
  f->last_user = steal_text(&user);
  f->system = steal_text(&system);
}

void fm_match_facts_free(fm_match_facts *f) {
  if (f->root != f->given) cJSON_Delete(f->root);
  free(f->last_user);
  free(f->system);
  free(f->tool_result);
  f->root = NULL;
  f->last_user = f->system = f->tool_result = NULL;
  f->tool_name = NULL;
  f->parsed = false;
}

/* ---- testing ------------------------------------------------------------------ */

static bool text_holds(const fm_text_cond *c, const char *s) {
  if (!s) return false;
  if (c->contains && !strstr(s, c->contains)) return false;
  if (c->equals && strcmp(s, c->equals) != 0) return false;
  if (c->has_regex && regexec(&c->regex, s, 0, NULL, 0) != 0) return false;
  return true;
}

static bool any_message_holds(const fm_text_cond *c, fm_match_facts *f) {
  const cJSON *messages = cJSON_GetObjectItemCaseSensitive(f->root, "messages");
  bool hit = false;
  fm_buf b;
  fm_buf_init(&b);
  for (const cJSON *m = cJSON_IsArray(messages) ? messages->child : NULL; m && !hit; m = m->next) {
    fm_buf_reset(&b);
    content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), &b);
    const cJSON *tr = anthropic_tool_result(m);
    if (tr) content_text(cJSON_GetObjectItemCaseSensitive(tr, "content"), &b);
    fm_buf_putc(&b, '\0');
    hit = !b.oom && text_holds(c, b.data);
  }
  fm_buf_free(&b);
  return hit || text_holds(c, f->system) ||
         (f->last_user && *f->last_user && !messages && text_holds(c, f->last_user));
}

/* Every member of the pattern is in the value: objects by key, arrays by
 * some element each (any order), scalars equal. */
static bool subset(const cJSON *pat, const cJSON *v, int depth) {
  if (depth > 64 || !v) return false;
  if (cJSON_IsObject(pat)) {
    if (!cJSON_IsObject(v)) return false;
    for (const cJSON *p = pat->child; p; p = p->next)
      if (!subset(p, cJSON_GetObjectItemCaseSensitive(v, p->string), depth + 1)) return false;
    return true;
  }
  if (cJSON_IsArray(pat)) {
    if (!cJSON_IsArray(v)) return false;
    for (const cJSON *p = pat->child; p; p = p->next) {
      bool found = false;
      for (const cJSON *x = v->child; x && !found; x = x->next)
        found = subset(p, x, depth + 1);
      if (!found) return false;
    }
    return true;
  }
  if (cJSON_IsNumber(pat)) return cJSON_IsNumber(v) && pat->valuedouble == v->valuedouble;
  if (cJSON_IsString(pat)) return cJSON_IsString(v) && !strcmp(pat->valuestring, v->valuestring);
  return (pat->type & 0xff) == (v->type & 0xff); /* true, false, null */
}

static bool needs_body(const fm_match *m) {
  return m->last_user.set || m->system.set || m->any_message.set ||
         m->tool_result != FM_TOOL_RESULT_ANY || m->turn || m->body;
}

/* Tests the conditions in order; *failed names the first that fails. With
 * score, goes on and counts the ones that hold instead. */
static int run(const fm_match *m, fm_match_facts *f, const char **failed, bool all) {
  int held = 0;
#define COND(ok, name)                                                                             \
  do {                                                                                             \
    if (ok) {                                                                                      \
      held++;                                                                                      \
    } else {                                                                                       \
      if (failed && !*failed) *failed = name;                                                      \
      if (!all) return -1;                                                                         \
    }                                                                                              \
  } while (0)
  if (m->test_id) COND(f->test_id && !strcmp(m->test_id, f->test_id), "test_id");
  if (m->model) COND(f->model && !strcmp(m->model, f->model), "model");
  if (m->path >= 0) COND(m->path == f->path, "tier");
  if (m->route) COND(f->route && !strcmp(m->route, f->route), "route");
  if (m->key_id) COND(f->key_id && !strcmp(m->key_id, f->key_id), "key_id");
  if (m->api_key) COND(f->api_key && fm_same_secret(m->api_key, f->api_key), "api_key");
  if (needs_body(m)) {
    fm_match_facts_parse(f);
    if (m->last_user.set) COND(text_holds(&m->last_user, f->last_user), "last_user");
    if (m->system.set) COND(text_holds(&m->system, f->system), "system");
    if (m->any_message.set) COND(any_message_holds(&m->any_message, f), "any_message");
    if (m->tool_result == FM_TOOL_RESULT_NO) COND(!f->tool_result, "tool_result");
    if (m->tool_result == FM_TOOL_RESULT_YES)
      COND(f->tool_result &&
               (!m->tool_name || (f->tool_name && !strcmp(m->tool_name, f->tool_name))),
           "tool_result");
    if (m->turn) COND(m->turn == f->turn, "turn");
    if (m->body) COND(subset(m->body, f->root, 0), "body");
  }
#undef COND
  return held;
}

bool fm_match_test(const fm_match *m, fm_match_facts *f, const char **failed) {
  if (failed) *failed = NULL;
  return run(m, f, failed, false) >= 0;
}

int fm_match_score(const fm_match *m, fm_match_facts *f) {
  return run(m, f, NULL, true);
}
