/* replies.c — the reply rules: parsing, the store, picking (replies.h). */
#include "replies.h"

#include "jsonscan.h"
#include "turn.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fm_replies_init(fm_replies *r) {
  memset(r, 0, sizeof(*r));
  r->next_id = 1;
}

void fm_replies_free(fm_replies *r) {
  fm_replies_delete(r, 0, NULL);
}

static void reply_free(fm_reply *x) {
  free(x->content);
  free(x->reasoning);
  cJSON_Delete(x->json);
  for (int i = 0; i < x->n_calls; i++) {
    free(x->calls[i].name);
    cJSON_Delete(x->calls[i].arguments);
    free(x->calls[i].arguments_text);
    free(x->calls[i].pieces.len);
  }
  free(x->finish_reason);
  free(x->content_pieces.len);
  free(x->reasoning_pieces.len);
  free(x->gaps_ms);
}

void fm_reply_rule_free(fm_reply_rule *rule) {
  if (!rule) return;
  fm_match_free(&rule->match);
  for (int i = 0; i < rule->n_replies; i++)
    reply_free(&rule->replies[i]);
  free(rule->replies);
  free(rule);
}

uint32_t fm_replies_add(fm_replies *r, fm_reply_rule *rule) {
  if (r->n >= FM_REPLIES_MAX) {
    fm_reply_rule_free(rule);
    return 0;
  }
  rule->id = r->next_id++;
  fm_reply_rule **tail = &r->head;
  while (*tail)
    tail = &(*tail)->next_rule;
  *tail = rule;
  r->n++;
  return rule->id;
}

int fm_replies_delete(fm_replies *r, uint32_t id, const char *test_id) {
  int gone = 0;
  for (fm_reply_rule **p = &r->head; *p;) {
    fm_reply_rule *x = *p;
    bool del =
        id ? x->id == id : !test_id || (x->match.test_id && !strcmp(x->match.test_id, test_id));
    if (del) {
      *p = x->next_rule;
      fm_reply_rule_free(x);
      r->n--;
      gone++;
    } else {
      p = &x->next_rule;
    }
  }
  return gone;
}

static bool live(const fm_reply_rule *x) {
  if (x->count_left == 0) return false;
  return !x->sequence || x->repeat || x->next < x->n_replies;
}

const fm_reply *fm_replies_pick(fm_replies *r, fm_match_facts *f, uint32_t *rule_id) {
  /* two passes: the request's own test's rules, then everyone's */
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 0 && !f->test_id) continue;
    for (fm_reply_rule *x = r->head; x; x = x->next_rule) {
      if ((pass == 0) != (x->match.test_id != NULL)) continue;
      if (!live(x) || !fm_match_test(&x->match, f, NULL)) continue;
      if (x->count_left > 0) x->count_left--;
      int k = 0;
      if (x->sequence) {
        if (x->next >= x->n_replies) x->next = 0; /* repeat */
        k = x->next++;
      }
      x->fired++;
      r->fired++;
      if (rule_id) *rule_id = x->id;
      return &x->replies[k];
    }
  }
  return NULL;
}

const fm_reply_rule *fm_replies_closest(fm_replies *r, fm_match_facts *f, const char **failed) {
  const fm_reply_rule *best = NULL;
  int best_score = -1;
  for (const fm_reply_rule *x = r->head; x; x = x->next_rule) {
    if (!live(x)) continue;
    int s = fm_match_score(&x->match, f);
    if (s > best_score) {
      best = x;
      best_score = s;
    }
  }
  if (best && failed) fm_match_test(&best->match, f, failed);
  return best;
}

/* ---- templates ------------------------------------------------------------------ */

void fm_reply_expand(const char *text, fm_match_facts *f, fm_buf *out) {
  static const char *const names[] = {"last_user", "system", "tool_result", "model"};
  for (const char *s = text; *s;) {
    const char *open = strstr(s, "{{");
    if (!open) {
      fm_buf_puts(out, s);
      return;
    }
    fm_buf_put(out, s, (size_t)(open - s));
    const char *close = strstr(open + 2, "}}");
    int which = -1;
    for (int k = 0; close && k < 4; k++)
      if ((size_t)(close - open - 2) == strlen(names[k]) &&
          !strncmp(open + 2, names[k], strlen(names[k])))
        which = k;
    if (which < 0) { /* not a template: kept as written */
      fm_buf_put(out, open, 2);
      s = open + 2;
      continue;
    }
    if (which < 3) fm_match_facts_parse(f);
    const char *v = which == 0   ? f->last_user
                    : which == 1 ? f->system
                    : which == 2 ? f->tool_result
                                 : f->model;
    if (v) fm_buf_puts(out, v);
    s = close + 2;
  }
}

/* ---- parsing ------------------------------------------------------------------ */

static char *text_field(const cJSON *o, const char *key, struct fm_config_errors *errs,
                        const char *prefix) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v || cJSON_IsNull(v)) return NULL;
  if (!cJSON_IsString(v)) {
    fm_config_errors_at(errs, prefix, key, "must be a string");
    return NULL;
  }
  if (strlen(v->valuestring) > FM_REPLY_TEXT_MAX) {
    fm_config_errors_at(errs, prefix, key, "is longer than %d bytes", FM_REPLY_TEXT_MAX);
    return NULL;
  }
  return strdup(v->valuestring);
}

static long long tokens_field(const cJSON *o, const char *key, struct fm_config_errors *errs,
                              const char *prefix) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v || cJSON_IsNull(v)) return -1;
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e7 ||
      v->valuedouble != floor(v->valuedouble)) {
    fm_config_errors_at(errs, prefix, key,
                        "must be a whole number of tokens between 0 and 10000000");
    return -1;
  }
  return (long long)v->valuedouble;
}

/* An array of whole numbers 0..max into *out (n at most most); false when it is not one. */
static bool u32_list(const cJSON *a, uint32_t max, int most, uint32_t **out, int *n) {
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > most) return false;
  int k = cJSON_GetArraySize(a);
  *out = k ? calloc((size_t)k, sizeof(uint32_t)) : NULL;
  if (k && !*out) return false;
  *n = 0;
  for (const cJSON *it = a->child; it; it = it->next) {
    if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > max ||
        it->valuedouble != floor(it->valuedouble))
      return false;
    (*out)[(*n)++] = (uint32_t)it->valuedouble;
  }
  return true;
}

/* pieces: byte lengths that must add up to the text's length. */
static void pieces_parse(const cJSON *a, size_t bytes, fm_pieces *p, const char *field,
                         struct fm_config_errors *errs, const char *prefix) {
  if (!a) return;
  uint64_t sum = 0;
  bool ok = u32_list(a, FM_REPLY_TEXT_MAX, FM_REPLY_GAPS_MAX, &p->len, &p->n);
  for (int i = 0; ok && i < p->n; i++) {
    ok = p->len[i] <= FM_PIECE_MAX;
    sum += p->len[i];
  }
  if (!ok || sum != bytes)
    fm_config_errors_at(
        errs, prefix, field,
        "must be the byte lengths of the tokens the text is cut into (whole numbers of at most "
        "%d, adding up to its %zu bytes)",
        FM_PIECE_MAX, bytes);
}

static bool reply_parse(fm_reply *x, const cJSON *j, const char *prefix,
                        struct fm_config_errors *errs) {
  memset(x, 0, sizeof(*x));
  x->prompt_tokens = x->cached_tokens = x->completion_tokens = -1;
  if (!cJSON_IsObject(j)) {
    fm_config_errors_at(
        errs, prefix, "",
        "a reply must be an object such as {\"content\": \"It is sunny\"} or {\"tool_calls\": "
        "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]}");
    return false;
  }
  size_t before = errs->n;
  static const char *const known[] = {"content",       "reasoning", "json",  "tool_calls",
                                      "finish_reason", "usage",     "fault", "pieces",
                                      "timing",        "pace",      NULL};
  for (const cJSON *it = j->child; it; it = it->next) {
    bool k = false;
    for (const char *const *n = known; *n && !k; n++)
      k = !strcmp(*n, it->string);
    if (!k)
      fm_config_errors_at(
          errs, prefix, it->string,
          "unknown field (known: content, reasoning, json, tool_calls, finish_reason, usage, "
          "fault, pieces, timing, pace)");
  }
  x->content = text_field(j, "content", errs, prefix);
  x->reasoning = text_field(j, "reasoning", errs, prefix);
  const cJSON *json = cJSON_GetObjectItemCaseSensitive(j, "json");
  if (json && !cJSON_IsNull(json)) {
    if (x->content)
      fm_config_errors_at(errs, prefix, "json", "send either content or json, not both");
    else
      x->json = cJSON_Duplicate(json, true);
  }
  const cJSON *calls = cJSON_GetObjectItemCaseSensitive(j, "tool_calls");
  if (calls && !cJSON_IsNull(calls)) {
    if (!cJSON_IsArray(calls) || cJSON_GetArraySize(calls) < 1 ||
        cJSON_GetArraySize(calls) > FM_REPLY_CALLS_MAX) {
      fm_config_errors_at(
          errs, prefix, "tool_calls",
          "must be an array of 1 to %d calls like {\"name\": \"get_weather\", \"arguments\": "
          "{\"city\": \"Paris\"}}",
          FM_REPLY_CALLS_MAX);
    } else {
      int i = 0;
      for (const cJSON *c = calls->child; c; c = c->next, i++) {
        char where[64];
        snprintf(where, sizeof(where), "tool_calls[%d]", i);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(c, "arguments");
        if (!cJSON_IsObject(c) || !cJSON_IsString(name) || !*name->valuestring) {
          fm_config_errors_at(errs, prefix, where, "needs a \"name\": the tool to call");
          continue;
        }
        if (args && !cJSON_IsNull(args) && !cJSON_IsObject(args) && !cJSON_IsString(args)) {
          char f[96];
          snprintf(f, sizeof(f), "%s.arguments", where);
          fm_config_errors_at(
              errs, prefix, f,
              "must be an object (the arguments), or a string holding them as JSON text "
              "exactly as they are to be sent");
          continue;
        }
        fm_reply_call *rc = &x->calls[x->n_calls++];
        rc->name = strdup(name->valuestring);
        if (cJSON_IsString(args))
          rc->arguments_text = strdup(args->valuestring);
        else
          rc->arguments =
              args && !cJSON_IsNull(args) ? cJSON_Duplicate(args, true) : cJSON_CreateObject();
      }
      if (x->n_calls && (x->content || x->json))
        fm_config_errors_at(
            errs, prefix, "tool_calls",
            "a reply either calls tools or answers (content/json), not both, as a model turn "
            "does");
    }
  }
  x->finish_reason = text_field(j, "finish_reason", errs, prefix);
  if (x->finish_reason) {
    static const char *const ok[] = {"stop",           "length",        "tool_calls",
                                     "content_filter", "function_call", NULL};
    bool k = false;
    for (const char *const *n = ok; *n && !k; n++)
      k = !strcmp(*n, x->finish_reason);
    if (!k)
      fm_config_errors_at(errs, prefix, "finish_reason",
                          "must be \"stop\", \"length\", \"tool_calls\", \"function_call\" or "
                          "\"content_filter\" (Anthropic answers get the matching stop_reason)");
  }
  const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
  if (usage && !cJSON_IsNull(usage)) {
    char up[200];
    snprintf(up, sizeof(up), "%s.usage", prefix);
    if (!cJSON_IsObject(usage)) {
      fm_config_errors_at(errs, prefix, "usage",
                          "must be an object like {\"prompt_tokens\": 100, \"cached_tokens\": 0, "
                          "\"completion_tokens\": 20}");
    } else {
      for (const cJSON *it = usage->child; it; it = it->next)
        if (strcmp(it->string, "prompt_tokens") && strcmp(it->string, "cached_tokens") &&
            strcmp(it->string, "completion_tokens"))
          fm_config_errors_at(
              errs, up, it->string,
              "unknown field (known: prompt_tokens, cached_tokens, completion_tokens)");
      x->prompt_tokens = tokens_field(usage, "prompt_tokens", errs, up);
      x->cached_tokens = tokens_field(usage, "cached_tokens", errs, up);
      x->completion_tokens = tokens_field(usage, "completion_tokens", errs, up);
      if (x->cached_tokens > 0 && x->prompt_tokens >= 0 && x->cached_tokens > x->prompt_tokens)
        fm_config_errors_at(errs, up, "cached_tokens", "must not be more than prompt_tokens");
      int parts = (x->reasoning ? 1 : 0) + (x->content || x->json ? 1 : 0) + x->n_calls;
      if (x->completion_tokens >= 0 && x->completion_tokens < parts)
        fm_config_errors_at(
            errs, up, "completion_tokens",
            "must be at least %d: one token for each part of the reply (reasoning, content, "
            "each tool call)",
            parts);
    }
  }
  /* Recorded replies (--record): how the upstream cut its tokens, and its pace. */
  const cJSON *pieces = cJSON_GetObjectItemCaseSensitive(j, "pieces");
  if (pieces && !cJSON_IsNull(pieces)) {
    char pp[200];
    snprintf(pp, sizeof(pp), "%s.pieces", prefix);
    if (!cJSON_IsObject(pieces)) {
      fm_config_errors_at(errs, prefix, "pieces",
                          "must be an object {\"content\": [byte lengths], \"reasoning\": [...], "
                          "\"tool_calls\": [[...], ...]}");
    } else {
      pieces_parse(cJSON_GetObjectItemCaseSensitive(pieces, "content"),
                   x->content ? strlen(x->content) : 0, &x->content_pieces, "content", errs, pp);
      pieces_parse(cJSON_GetObjectItemCaseSensitive(pieces, "reasoning"),
                   x->reasoning ? strlen(x->reasoning) : 0, &x->reasoning_pieces, "reasoning", errs,
                   pp);
      const cJSON *tc = cJSON_GetObjectItemCaseSensitive(pieces, "tool_calls");
      int i = 0;
      for (const cJSON *it = cJSON_IsArray(tc) ? tc->child : NULL; it && i < x->n_calls;
           it = it->next, i++) {
        char f[48];
        snprintf(f, sizeof(f), "tool_calls[%d]", i);
        if (x->calls[i].arguments_text)
          pieces_parse(it, strlen(x->calls[i].arguments_text), &x->calls[i].pieces, f, errs, pp);
        else
          fm_config_errors_at(errs, pp, f, "applies to arguments given as text (a string) only");
      }
    }
  }
  const cJSON *timing = cJSON_GetObjectItemCaseSensitive(j, "timing");
  if (timing && !cJSON_IsNull(timing)) {
    const cJSON *ttft = cJSON_GetObjectItemCaseSensitive(timing, "ttft_ms");
    const cJSON *gaps = cJSON_GetObjectItemCaseSensitive(timing, "token_ms");
    bool ok = cJSON_IsObject(timing) && cJSON_IsNumber(ttft) && ttft->valuedouble >= 0 &&
              ttft->valuedouble <= 3.6e6;
    if (ok) x->ttft_ms = (uint32_t)ttft->valuedouble;
    if (ok && gaps) ok = u32_list(gaps, 3600000, FM_REPLY_GAPS_MAX, &x->gaps_ms, &x->n_gaps);
    if (!ok)
      fm_config_errors_at(
          errs, prefix, "timing",
          "must be {\"ttft_ms\": N, \"token_ms\": [gap before each later token, ms]} (whole "
          "milliseconds up to an hour)");
    x->recorded_pace = ok;
  }
  const cJSON *pace = cJSON_GetObjectItemCaseSensitive(j, "pace");
  if (pace && !cJSON_IsNull(pace)) {
    bool rec = cJSON_IsString(pace) && !strcmp(pace->valuestring, "recorded");
    bool pool = cJSON_IsString(pace) && !strcmp(pace->valuestring, "pool");
    if (!rec && !pool)
      fm_config_errors_at(
          errs, prefix, "pace",
          "must be \"recorded\" (the timing given) or \"pool\" (the serving path's speed)");
    else if (rec && !x->recorded_pace)
      fm_config_errors_at(errs, prefix, "pace", "\"recorded\" needs a \"timing\"");
    x->recorded_pace = rec;
  }
  const cJSON *fault = cJSON_GetObjectItemCaseSensitive(j, "fault");
  if (fault && !cJSON_IsNull(fault)) {
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(fault, "stream");
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(fault, "after_tokens");
    int kind = -1;
    for (int k = FM_FAULT_ERROR; cJSON_IsString(stream) && k <= FM_FAULT_STALL; k++)
      if (!strcmp(stream->valuestring, fm_fault_kind_names[k])) kind = k;
    bool ok = cJSON_IsObject(fault) && kind >= 0 &&
              (!after || (cJSON_IsNumber(after) && after->valuedouble >= 0 &&
                          after->valuedouble <= FM_FAULT_AFTER_MAX &&
                          after->valuedouble == floor(after->valuedouble)));
    if (!ok) {
      fm_config_errors_at(
          errs, prefix, "fault",
          "must be {\"stream\": \"error\"|\"disconnect\"|\"stall\", \"after_tokens\": N}: the "
          "stream breaks after N tokens of this reply");
    } else {
      x->has_fault = true;
      x->fault.kind = (fm_fault_kind)kind;
      x->fault.after_tokens = after ? (uint32_t)after->valuedouble : 0;
    }
  }
  return errs->n == before;
}

fm_reply_rule *fm_reply_rule_parse(const cJSON *j, const fm_config *cfg, const char *prefix,
                                   struct fm_config_errors *errs) {
  size_t before = errs->n;
  if (!cJSON_IsObject(j)) {
    fm_config_errors_at(
        errs, prefix, "",
        "a reply rule must be an object {\"match\": {...}, \"reply\": {...}} (or \"sequence\": "
        "[...] instead of \"reply\")");
    return NULL;
  }
  fm_reply_rule *x = calloc(1, sizeof(*x));
  if (!x) return NULL;
  x->count_left = -1;
  static const char *const known[] = {"match", "reply", "sequence", "count", "repeat", NULL};
  for (const cJSON *it = j->child; it; it = it->next) {
    bool k = false;
    for (const char *const *n = known; *n && !k; n++)
      k = !strcmp(*n, it->string);
    if (!k)
      fm_config_errors_at(errs, prefix, it->string,
                          "unknown field (known: match, reply, sequence, count, repeat)");
  }
  char mp[200];
  snprintf(mp, sizeof(mp), "%s%smatch", prefix, *prefix ? "." : "");
  fm_match_parse(&x->match, cJSON_GetObjectItemCaseSensitive(j, "match"), cfg, mp, errs);
  const cJSON *reply = cJSON_GetObjectItemCaseSensitive(j, "reply");
  const cJSON *seq = cJSON_GetObjectItemCaseSensitive(j, "sequence");
  if ((reply != NULL) == (seq != NULL)) {
    fm_config_errors_at(errs, prefix, "reply",
                        "needs exactly one of \"reply\" (one answer) or \"sequence\" "
                        "(answers in order)");
  } else if (reply) {
    x->replies = calloc(1, sizeof(fm_reply));
    if (x->replies) {
      x->n_replies = 1;
      char rp[200];
      snprintf(rp, sizeof(rp), "%s%sreply", prefix, *prefix ? "." : "");
      reply_parse(&x->replies[0], reply, rp, errs);
    }
  } else if (!cJSON_IsArray(seq) || cJSON_GetArraySize(seq) < 1 ||
             cJSON_GetArraySize(seq) > FM_REPLY_SEQUENCE_MAX) {
    fm_config_errors_at(errs, prefix, "sequence", "must be an array of 1 to %d replies",
                        FM_REPLY_SEQUENCE_MAX);
  } else {
    x->sequence = true;
    x->replies = calloc((size_t)cJSON_GetArraySize(seq), sizeof(fm_reply));
    int i = 0;
    for (const cJSON *it = seq->child; it && x->replies; it = it->next, i++) {
      char rp[200];
      snprintf(rp, sizeof(rp), "%s%ssequence[%d]", prefix, *prefix ? "." : "", i);
      reply_parse(&x->replies[i], it, rp, errs);
      x->n_replies = i + 1;
    }
  }
  const cJSON *count = cJSON_GetObjectItemCaseSensitive(j, "count");
  if (count && !cJSON_IsNull(count)) {
    if (!cJSON_IsNumber(count) || count->valuedouble < 1 || count->valuedouble > 1e12 ||
        count->valuedouble != floor(count->valuedouble))
      fm_config_errors_at(errs, prefix, "count",
                          "must be a whole number >= 1: the rule retires after that many");
    else
      x->count_left = (long long)count->valuedouble;
  }
  const cJSON *repeat = cJSON_GetObjectItemCaseSensitive(j, "repeat");
  if (repeat && !cJSON_IsNull(repeat)) {
    if (!cJSON_IsBool(repeat))
      fm_config_errors_at(errs, prefix, "repeat",
                          "must be true (start the sequence again) or false (retire)");
    else if (!seq)
      fm_config_errors_at(errs, prefix, "repeat", "applies to a \"sequence\" only");
    x->repeat = cJSON_IsTrue(repeat);
  }
  if (errs->n > before || !x->replies) {
    fm_reply_rule_free(x);
    return NULL;
  }
  return x;
}

static cJSON *reply_to_json(const fm_reply *x) {
  cJSON *o = cJSON_CreateObject();
  if (x->reasoning) cJSON_AddStringToObject(o, "reasoning", x->reasoning);
  if (x->content) cJSON_AddStringToObject(o, "content", x->content);
  if (x->json) cJSON_AddItemToObject(o, "json", cJSON_Duplicate(x->json, true));
  if (x->n_calls) {
    cJSON *calls = cJSON_AddArrayToObject(o, "tool_calls");
    for (int i = 0; i < x->n_calls; i++) {
      cJSON *c = cJSON_CreateObject();
      cJSON_AddStringToObject(c, "name", x->calls[i].name);
      if (x->calls[i].arguments_text)
        cJSON_AddStringToObject(c, "arguments", x->calls[i].arguments_text);
      else
        cJSON_AddItemToObject(c, "arguments", cJSON_Duplicate(x->calls[i].arguments, true));
      cJSON_AddItemToArray(calls, c);
    }
  }
  if (x->finish_reason) cJSON_AddStringToObject(o, "finish_reason", x->finish_reason);
  if (x->prompt_tokens >= 0 || x->cached_tokens >= 0 || x->completion_tokens >= 0) {
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    if (x->prompt_tokens >= 0)
      cJSON_AddNumberToObject(u, "prompt_tokens", (double)x->prompt_tokens);
    if (x->cached_tokens >= 0)
      cJSON_AddNumberToObject(u, "cached_tokens", (double)x->cached_tokens);
    if (x->completion_tokens >= 0)
      cJSON_AddNumberToObject(u, "completion_tokens", (double)x->completion_tokens);
  }
  if (x->has_fault) {
    cJSON *f = cJSON_AddObjectToObject(o, "fault");
    cJSON_AddStringToObject(f, "stream", fm_fault_kind_names[x->fault.kind]);
    cJSON_AddNumberToObject(f, "after_tokens", x->fault.after_tokens);
  }
  return o;
}

cJSON *fm_reply_rule_to_json(const fm_reply_rule *x) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "id", x->id);
  cJSON_AddItemToObject(o, "match", cJSON_CreateObject());
  fm_match_to_json(&x->match, cJSON_GetObjectItem(o, "match"));
  if (x->sequence) {
    cJSON *s = cJSON_AddArrayToObject(o, "sequence");
    for (int i = 0; i < x->n_replies; i++)
      cJSON_AddItemToArray(s, reply_to_json(&x->replies[i]));
    cJSON_AddBoolToObject(o, "repeat", x->repeat);
    cJSON_AddNumberToObject(o, "next", x->next);
  } else {
    cJSON_AddItemToObject(o, "reply", reply_to_json(&x->replies[0]));
  }
  if (x->count_left >= 0)
    cJSON_AddNumberToObject(o, "count_left", (double)x->count_left);
  else
    cJSON_AddNullToObject(o, "count_left");
  cJSON_AddNumberToObject(o, "fired", (double)x->fired);
  cJSON_AddBoolToObject(o, "active", live(x));
  return o;
}

/* ---- loading: the config's rules and --replies FILE|DIR ------------------------- */

int fm_replies_add_all(fm_replies *r, const fm_config *cfg, const cJSON *rules,
                       struct fm_config_errors *errs) {
  size_t before = errs->n;
  for (const cJSON *it = rules ? rules->child : NULL; it; it = it->next) {
    const cJSON *where = cJSON_GetObjectItemCaseSensitive(it, "where");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(it, "rule");
    fm_reply_rule *x =
        fm_reply_rule_parse(rule, cfg, cJSON_IsString(where) ? where->valuestring : "", errs);
    if (x && !fm_replies_add(r, x))
      fm_config_errors_add(errs, "%s: more than %d reply rules", where->valuestring,
                           FM_REPLIES_MAX);
  }
  return errs->n > before ? -1 : 0;
}

/* Appends {"where": ..., "rule": ...} to out. */
static void collect(cJSON *out, const char *where, const cJSON *rule) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "where", where);
  cJSON_AddItemToObject(o, "rule", cJSON_Duplicate(rule, true));
  cJSON_AddItemToArray(out, o);
}

static void collect_text(cJSON *out, const char *path, const char *text,
                         struct fm_config_errors *errs) {
  char where[600];
  const char *end = NULL;
  cJSON *all = cJSON_ParseWithOpts(text, &end, true); /* the whole text, or it is JSONL */
  if (all) {                                          /* JSON: one rule, or an array of them */
    if (cJSON_IsArray(all)) {
      int i = 0;
      for (const cJSON *it = all->child; it; it = it->next, i++) {
        snprintf(where, sizeof(where), "%s: [%d]", path, i);
        collect(out, where, it);
      }
    } else {
      snprintf(where, sizeof(where), "%s", path);
      collect(out, where, all);
    }
    cJSON_Delete(all);
    return;
  }
  /* JSONL: one rule per line; blank lines and lines starting with # are skipped */
  int line = 0;
  for (const char *s = text; *s;) {
    const char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s) : strlen(s);
    line++;
    size_t k = 0;
    while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
      k++;
    if (k < n && s[k] != '#') {
      cJSON *rule = cJSON_ParseWithLengthOpts(s, n, &end, false);
      while (rule && end < s + n && (*end == ' ' || *end == '\t' || *end == '\r'))
        end++;
      if (rule && end != s + n) { /* something after the rule on its line */
        cJSON_Delete(rule);
        rule = NULL;
      }
      snprintf(where, sizeof(where), "%s:%d", path, line);
      if (rule)
        collect(out, where, rule);
      else
        fm_config_errors_add(errs,
                             "%s: not JSON (a --replies file is a JSON rule, a JSON array of "
                             "rules, or JSON Lines with one rule per line)",
                             where);
      cJSON_Delete(rule);
    }
    s += n + (nl ? 1 : 0);
  }
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

cJSON *fm_replies_read_path(const char *path, struct fm_config_errors *errs) {
  cJSON *out = cJSON_CreateArray();
  struct stat st;
  if (stat(path, &st) != 0) {
    fm_config_errors_add(errs, "--replies %s: %s", path, strerror(errno));
    return out;
  }
  if (!S_ISDIR(st.st_mode)) {
    char *text = fm_read_file(path, NULL);
    if (!text)
      fm_config_errors_add(errs, "--replies %s: %s", path, strerror(errno));
    else
      collect_text(out, path, text, errs);
    free(text);
    return out;
  }
  DIR *d = opendir(path);
  if (!d) {
    fm_config_errors_add(errs, "--replies %s: %s", path, strerror(errno));
    return out;
  }
  char *names[4096];
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) && n < 4096) {
    size_t len = strlen(de->d_name);
    bool json = len > 5 && !strcmp(de->d_name + len - 5, ".json");
    bool jsonl = len > 6 && !strcmp(de->d_name + len - 6, ".jsonl");
    if (json || jsonl) names[n++] = strdup(de->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof(names[0]), name_cmp); /* in name order, documented */
  for (int i = 0; i < n; i++) {
    char file[4200];
    snprintf(file, sizeof(file), "%s/%s", path, names[i]);
    char *text = fm_read_file(file, NULL);
    if (!text)
      fm_config_errors_add(errs, "--replies %s: %s", file, strerror(errno));
    else
      collect_text(out, file, text, errs);
    free(text);
    free(names[i]);
  }
  return out;
}
