/* config.c — loading, merging and checking the fleet configuration.
 *
 * The checker walks the merged document once, collecting every problem with
 * its JSON path instead of stopping at the first, because a user fixing a
 * config wants the whole list in one go. */
#include "config.h"

#include "embed.h"
#include "journal.h"
#include "jsonscan.h"
#include "replies.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char fm_default_config_json[];

const char *const fm_tier_names[FM_TIER_N] = {"priority", "standard", "background"};
const char *const fm_path_names[FM_PATH_N] = {"standard", "priority", "background", "fast"};

/* ---- errors and paths ---------------------------------------------------- */

typedef struct check {
  fm_config_errors *errs;
  char path[768];
  size_t len;
} check;

void fm_config_errors_at(fm_config_errors *e, const char *prefix, const char *field,
                         const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fm_config_errors_add(e, "%s%s%s: %s", prefix, *prefix && *field ? "." : "", field, msg);
}

void fm_config_errors_add(fm_config_errors *e, const char *fmt, ...) {
  char line[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  char **items = realloc(e->items, (e->n + 1) * sizeof(char *));
  if (!items) return;
  e->items = items;
  if ((e->items[e->n] = strdup(line))) e->n++;
}

static void check_error(check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check_error(check *c, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fm_config_errors_add(c->errs, "%s: %s", c->len ? c->path : "(top level)", msg);
}

static bool is_plain_key(const char *k) {
  if (!*k) return false;
  for (const char *p = k; *p; p++) {
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') return false;
  }
  return true;
}

/* Appends a key to the path; returns the old length for check_pop. */
static size_t check_push(check *c, const char *key) {
  size_t old = c->len;
  int n;
  if (is_plain_key(key))
    n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "%s%s", c->len ? "." : "", key);
  else
    n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "[\"%s\"]", key);
  if (n > 0) c->len = strlen(c->path);
  return old;
}

static size_t check_push_index(check *c, int i) {
  size_t old = c->len;
  snprintf(c->path + c->len, sizeof(c->path) - c->len, "[%d]", i);
  c->len = strlen(c->path);
  return old;
}

static void check_pop(check *c, size_t old) {
  c->len = old;
  c->path[old] = '\0';
}

void fm_config_errors_free(fm_config_errors *e) {
  for (size_t i = 0; i < e->n; i++)
    free(e->items[i]);
  free(e->items);
  e->items = NULL;
  e->n = 0;
}

/* ---- field readers ------------------------------------------------------- */

static void check_unknown(check *c, const cJSON *obj, const char *const *known) {
  for (const cJSON *it = obj->child; it; it = it->next) {
    bool ok = false;
    for (const char *const *k = known; *k; k++)
      ok = ok || strcmp(*k, it->string) == 0;
    if (ok) continue;
    char list[512] = "";
    for (const char *const *k = known; *k; k++) {
      strncat(list, *k, sizeof(list) - strlen(list) - 1);
      if (k[1]) strncat(list, ", ", sizeof(list) - strlen(list) - 1);
    }
    size_t m = check_push(c, it->string);
    check_error(c, "unknown field (known fields: %s)", list);
    check_pop(c, m);
  }
}

/* Reads obj[key] as a number in [min, max]; min_open makes the bound exclusive. */
static double read_num(check *c, const cJSON *obj, const char *key, double min, bool min_open,
                       double max, bool integer) {
  size_t m = check_push(c, key);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  double d = 0;
  if (!v) {
    check_error(c, "is required");
  } else if (!cJSON_IsNumber(v)) {
    check_error(c, "must be a number");
  } else {
    d = v->valuedouble;
    if (!isfinite(d) || (min_open ? !(d > min) : !(d >= min)) || d > max) {
      if (max >= 1e15)
        check_error(c, "must be %s %.15g", min_open ? ">" : ">=", min);
      else if (min_open)
        check_error(c, "must be > %.15g and at most %.15g", min, max);
      else
        check_error(c, "must be between %.15g and %.15g", min, max);
      d = min_open ? min + 1 : min;
    } else if (integer && d != floor(d)) {
      check_error(c, "must be a whole number");
    }
  }
  check_pop(c, m);
  return d;
}

static const cJSON *read_obj(check *c, const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (v && cJSON_IsObject(v)) return v;
  size_t m = check_push(c, key);
  check_error(c, v ? "must be an object" : "is required");
  check_pop(c, m);
  return NULL;
}

/* ---- merge patch --------------------------------------------------------- */

void fm_json_merge_patch(cJSON *target, const cJSON *patch) {
  for (const cJSON *p = patch->child; p; p = p->next) {
    if (cJSON_IsNull(p)) {
      cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
      continue;
    }
    cJSON *t = cJSON_GetObjectItemCaseSensitive(target, p->string);
    if (cJSON_IsObject(p) && t && cJSON_IsObject(t)) {
      fm_json_merge_patch(t, p);
      continue;
    }
    cJSON *copy = cJSON_Duplicate(p, true);
    if (!copy) continue;
    if (cJSON_IsObject(copy)) { /* nulls inside a new object mean "absent" */
      cJSON *fresh = cJSON_CreateObject();
      if (fresh) {
        fm_json_merge_patch(fresh, copy);
        cJSON_Delete(copy);
        copy = fresh;
      }
    }
    if (t)
      cJSON_ReplaceItemInObjectCaseSensitive(target, p->string, copy);
    else
      cJSON_AddItemToObject(target, p->string, copy);
  }
}

/* ---- pools and models ---------------------------------------------------- */

static const char *const pool_fields[] = {"slots",
                                          "replicas",
                                          "ttft_ms",
                                          "prefill_tps",
                                          "decode_tps",
                                          "jitter",
                                          "slowdown_at_full",
                                          "output_tokens",
                                          "tenant_load",
                                          "tenant_priority_share",
                                          "shed",
                                          "queue_timeout_ms",
                                          "cache_tokens_per_replica",
                                          NULL};

static void read_pool(check *c, const cJSON *j, fm_pool_cfg *p) {
  check_unknown(c, j, pool_fields);
  p->slots = (int)read_num(c, j, "slots", 1, false, 1e6, true);
  p->replicas = (int)read_num(c, j, "replicas", 1, false, 1024, true);
  p->ttft_ms = read_num(c, j, "ttft_ms", 0, false, 600000, false);
  p->prefill_tps = read_num(c, j, "prefill_tps", 0, true, 1e9, false);
  p->decode_tps = read_num(c, j, "decode_tps", 0, true, 1e6, false);
  p->jitter = read_num(c, j, "jitter", 0, false, 0.9, false);
  p->slowdown_at_full = read_num(c, j, "slowdown_at_full", 0, false, 100, false);
  p->tenant_load = read_num(c, j, "tenant_load", 0, false, 100, false);
  p->tenant_priority_share = read_num(c, j, "tenant_priority_share", 0, false, 1, false);
  p->cache_tokens_per_replica = read_num(c, j, "cache_tokens_per_replica", 0, false, 1e9, true);

  const cJSON *o = read_obj(c, j, "output_tokens");
  if (o) {
    size_t m = check_push(c, "output_tokens");
    static const char *const f[] = {"min", "mean", "max", NULL};
    check_unknown(c, o, f);
    p->out_min = (int)read_num(c, o, "min", 1, false, 1e7, true);
    p->out_mean = (int)read_num(c, o, "mean", 1, false, 1e7, true);
    p->out_max = (int)read_num(c, o, "max", 1, false, 1e7, true);
    if (p->out_min > p->out_mean || p->out_mean > p->out_max)
      check_error(c, "must satisfy min <= mean <= max (got %d, %d, %d)", p->out_min, p->out_mean,
                  p->out_max);
    check_pop(c, m);
  }

  static const char *const tiers[] = {"priority", "standard", "background", NULL};
  const cJSON *s = read_obj(c, j, "shed");
  if (s) {
    size_t m = check_push(c, "shed");
    check_unknown(c, s, tiers);
    for (int t = 0; t < FM_TIER_N; t++) {
      const cJSON *curve = read_obj(c, s, fm_tier_names[t]);
      if (!curve) continue;
      size_t m2 = check_push(c, fm_tier_names[t]);
      static const char *const f[] = {"start", "end", NULL};
      check_unknown(c, curve, f);
      p->shed[t].start = read_num(c, curve, "start", 0, false, 100, false);
      p->shed[t].end = read_num(c, curve, "end", 0, false, 100, false);
      if (p->shed[t].end < p->shed[t].start)
        check_error(c, "end must be >= start (got start %g, end %g)", p->shed[t].start,
                    p->shed[t].end);
      check_pop(c, m2);
    }
    check_pop(c, m);
  }
  const cJSON *q = read_obj(c, j, "queue_timeout_ms");
  if (q) {
    size_t m = check_push(c, "queue_timeout_ms");
    check_unknown(c, q, tiers);
    for (int t = 0; t < FM_TIER_N; t++)
      p->queue_timeout_ms[t] = read_num(c, q, fm_tier_names[t], 0, false, 86400000, false);
    check_pop(c, m);
  }
}

static const char *const model_fields[] = {
    "pool",       "paths",  "context_length", "owned_by", "supports_chat", "tools", "reasoning",
    "tool_calls", "prices", "embedding",      NULL};

const char *const fm_effort_names[FM_EFFORT_N] = {"none", "low", "medium", "high"};

/* A bool field, default def when absent. */
static bool read_bool(check *c, const cJSON *obj, const char *key, bool def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) return def;
  if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
  size_t m = check_push(c, key);
  check_error(c, "must be true or false");
  check_pop(c, m);
  return def;
}

/* tools, reasoning and tool_calls: what the model does beyond text. */
static void read_agent(check *c, const cJSON *j, fm_model_agent *a) {
  a->tools = read_bool(c, j, "tools", true);
  a->auto_probability = 1;
  a->max_parallel = 2;
  static const uint32_t tokens[FM_EFFORT_N] = {0, 32, 96, 256};
  memcpy(a->effort_tokens, tokens, sizeof(tokens));
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "reasoning");
  if (r && !cJSON_IsFalse(r)) {
    size_t m = check_push(c, "reasoning");
    a->reasoning = true;
    if (!cJSON_IsObject(r) && !cJSON_IsTrue(r)) {
      check_error(c, "must be false, true, or an object {\"default_effort\": \"none\", "
                     "\"tokens\": {\"low\": 32, \"medium\": 96, \"high\": 256}}");
    } else if (cJSON_IsObject(r)) {
      static const char *const fields[] = {"default_effort", "tokens", NULL};
      check_unknown(c, r, fields);
      const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "default_effort");
      if (d) {
        size_t m2 = check_push(c, "default_effort");
        int found = -1;
        for (int k = 0; k < FM_EFFORT_N && cJSON_IsString(d); k++)
          if (strcmp(d->valuestring, fm_effort_names[k]) == 0) found = k;
        if (found < 0)
          check_error(c, "must be \"none\", \"low\", \"medium\" or \"high\"");
        else
          a->default_effort = (fm_effort)found;
        check_pop(c, m2);
      }
      const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "tokens");
      if (t) {
        size_t m2 = check_push(c, "tokens");
        if (!cJSON_IsObject(t)) {
          check_error(c, "must be an object {\"low\": 32, \"medium\": 96, \"high\": 256}");
        } else {
          static const char *const levels[] = {"low", "medium", "high", NULL};
          check_unknown(c, t, levels);
          for (int k = FM_EFFORT_LOW; k < FM_EFFORT_N; k++)
            if (cJSON_GetObjectItemCaseSensitive(t, fm_effort_names[k]))
              a->effort_tokens[k] =
                  (uint32_t)read_num(c, t, fm_effort_names[k], 1, false, 1000000, true);
        }
        check_pop(c, m2);
      }
    }
    check_pop(c, m);
  }
  const cJSON *tc = cJSON_GetObjectItemCaseSensitive(j, "tool_calls");
  if (tc) {
    size_t m = check_push(c, "tool_calls");
    if (!cJSON_IsObject(tc)) {
      check_error(c, "must be an object {\"auto_probability\": 1, \"max_parallel\": 2}");
    } else {
      static const char *const fields[] = {"auto_probability", "max_parallel", NULL};
      check_unknown(c, tc, fields);
      if (cJSON_GetObjectItemCaseSensitive(tc, "auto_probability"))
        a->auto_probability = read_num(c, tc, "auto_probability", 0, false, 1, false);
      if (cJSON_GetObjectItemCaseSensitive(tc, "max_parallel"))
        a->max_parallel =
            (int)read_num(c, tc, "max_parallel", 1, false, FM_MAX_PARALLEL_CALLS, true);
    }
    check_pop(c, m);
  }
}

/* "embedding": {"dimensions": N} makes the model an embedding model of N
 * dimensions (docs/config.md, "Embedding models"). */
static void read_embedding(check *c, const cJSON *j, fm_model_cfg *md) {
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "embedding");
  if (!e || cJSON_IsNull(e) || cJSON_IsFalse(e)) return;
  size_t m = check_push(c, "embedding");
  if (!cJSON_IsObject(e)) {
    check_error(c, "must be an object {\"dimensions\": 768} (the size of the model's vectors)");
  } else {
    static const char *const f[] = {"dimensions", NULL};
    check_unknown(c, e, f);
    md->embedding_dims = (int)read_num(c, e, "dimensions", 1, false, FM_EMBED_DIMENSIONS_MAX, true);
    if (md->embedding_dims < 1) md->embedding_dims = 1; /* reported above; keep it an embedder */
  }
  check_pop(c, m);
}

static void read_model(check *c, const cJSON *j, fm_model_cfg *md, const fm_config *cfg) {
  check_unknown(c, j, model_fields);
  const cJSON *pool = cJSON_GetObjectItemCaseSensitive(j, "pool");
  size_t m = check_push(c, "pool");
  md->pool = -1;
  if (!cJSON_IsString(pool)) {
    check_error(c, pool ? "must be a string naming a pool" : "is required (name of a pool)");
  } else if ((md->pool = fm_config_find_pool(cfg, pool->valuestring)) < 0) {
    check_error(c, "no pool named \"%s\" (define it under pools)", pool->valuestring);
  }
  check_pop(c, m);

  const cJSON *paths = cJSON_GetObjectItemCaseSensitive(j, "paths");
  m = check_push(c, "paths");
  if (!cJSON_IsArray(paths) || cJSON_GetArraySize(paths) == 0) {
    check_error(
        c, "must be a non-empty array of \"standard\", \"priority\", \"background\", \"fast\"");
  } else {
    int i = 0;
    for (const cJSON *it = paths->child; it; it = it->next, i++) {
      int found = -1;
      for (int k = 0; k < FM_PATH_N && cJSON_IsString(it); k++)
        if (strcmp(it->valuestring, fm_path_names[k]) == 0) found = k;
      size_t m2 = check_push_index(c, i);
      if (found < 0)
        check_error(c, "must be one of \"standard\", \"priority\", \"background\", \"fast\"");
      else
        md->paths |= 1u << found;
      check_pop(c, m2);
    }
    if ((md->paths & (1u << FM_PATH_FAST)) && (md->paths & ~(1u << FM_PATH_FAST)))
      check_error(c, "a fast model serves only \"fast\" (Priority and Fast are not stackable)");
  }
  check_pop(c, m);

  md->context_length = (long)read_num(c, j, "context_length", 16, false, 1e8, true);
  const cJSON *owned = cJSON_GetObjectItemCaseSensitive(j, "owned_by");
  md->owned_by = strdup(cJSON_IsString(owned) ? owned->valuestring : "fireworks");
  if (owned && !cJSON_IsString(owned)) {
    m = check_push(c, "owned_by");
    check_error(c, "must be a string");
    check_pop(c, m);
  }
  read_embedding(c, j, md);
  const cJSON *chat = cJSON_GetObjectItemCaseSensitive(j, "supports_chat");
  md->supports_chat = chat ? cJSON_IsTrue(chat) : !md->embedding_dims;
  if (chat && !cJSON_IsBool(chat)) {
    m = check_push(c, "supports_chat");
    check_error(c, "must be true or false");
    check_pop(c, m);
  }
  read_agent(c, j, &md->agent);
  if (md->embedding_dims) {
    /* An embedding model only embeds: nothing that generates applies. */
    if (md->supports_chat) {
      m = check_push(c, "supports_chat");
      check_error(c, "must be false for an embedding model (it has \"embedding\"); drop one");
      check_pop(c, m);
    }
    static const char *const gen[] = {"tools", "reasoning", "tool_calls", NULL};
    for (const char *const *k = gen; *k; k++) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, *k);
      if (!v || cJSON_IsFalse(v)) continue;
      m = check_push(c, *k);
      check_error(c, "does not apply to an embedding model (it has \"embedding\"); drop it");
      check_pop(c, m);
    }
    md->agent.tools = false;
    md->agent.reasoning = false;
  }

  const cJSON *prices = read_obj(c, j, "prices");
  if (!prices) return;
  m = check_push(c, "prices");
  static const char *const rows[] = {"standard", "priority", "background", "fast", NULL};
  check_unknown(c, prices, rows);
  bool have[FM_PATH_N] = {0};
  for (int k = 0; k < FM_PATH_N; k++) {
    const cJSON *row = cJSON_GetObjectItemCaseSensitive(prices, fm_path_names[k]);
    if (!row) continue;
    size_t m2 = check_push(c, fm_path_names[k]);
    if (!cJSON_IsObject(row)) {
      check_error(c, "must be an object {input, cached, output} in USD per million tokens");
    } else {
      static const char *const f[] = {"input", "cached", "output", NULL};
      check_unknown(c, row, f);
      md->prices[k].input = read_num(c, row, "input", 0, false, 1e6, false);
      /* An embedding model reads only: its row may be {"input"} alone. */
      bool emb = md->embedding_dims > 0;
      if (!emb || cJSON_GetObjectItemCaseSensitive(row, "cached"))
        md->prices[k].cached = read_num(c, row, "cached", 0, false, 1e6, false);
      if (!emb || cJSON_GetObjectItemCaseSensitive(row, "output"))
        md->prices[k].output = read_num(c, row, "output", 0, false, 1e6, false);
      have[k] = true;
    }
    check_pop(c, m2);
  }
  for (int k = 0; k < FM_PATH_N; k++) {
    if (!(md->paths & (1u << k)) || have[k]) continue;
    if (k == FM_PATH_BACKGROUND && have[FM_PATH_STANDARD]) {
      md->prices[k].input = 0.25 * md->prices[FM_PATH_STANDARD].input;
      md->prices[k].cached = 0.25 * md->prices[FM_PATH_STANDARD].cached;
      md->prices[k].output = 0.25 * md->prices[FM_PATH_STANDARD].output;
      continue;
    }
    check_error(c, "needs a \"%s\" price row because the model serves that path", fm_path_names[k]);
  }
  check_pop(c, m);
}

/* ---- accounts and limits ------------------------------------------------- */

static const char *const limit_fields[] = {
    "requests_per_min", "prompt_tps",     "uncached_prompt_tps",
    "generated_tps",    "growth_per_min", "shrink_per_min",
    "busy_fraction",    "budget_usd",     NULL};

/* Reads a limits object; every field is optional and defaults to base. */
static void read_limits(check *c, const cJSON *j, const fm_limits_cfg *base, fm_limits_cfg *out) {
  *out = *base;
  if (!cJSON_IsObject(j)) {
    check_error(c, "must be an object of limits (see docs/rate-limits.md)");
    return;
  }
  check_unknown(c, j, limit_fields);
  for (int k = 0; k < FM_LIMIT_N; k++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, limit_fields[k]);
    if (!v) continue;
    size_t m = check_push(c, limit_fields[k]);
    if (!cJSON_IsObject(v)) {
      check_error(c, "must be an object {\"start\": N, \"ceiling\": N}");
    } else {
      static const char *const f[] = {"start", "ceiling", NULL};
      check_unknown(c, v, f);
      if (cJSON_GetObjectItemCaseSensitive(v, "start"))
        out->start[k] = read_num(c, v, "start", 0, true, 1e12, false);
      if (cJSON_GetObjectItemCaseSensitive(v, "ceiling"))
        out->ceiling[k] = read_num(c, v, "ceiling", 0, true, 1e12, false);
      if (out->ceiling[k] < out->start[k])
        check_error(c, "ceiling must be >= start (got start %.15g, ceiling %.15g)", out->start[k],
                    out->ceiling[k]);
    }
    check_pop(c, m);
  }
  if (cJSON_GetObjectItemCaseSensitive(j, "growth_per_min"))
    out->growth_per_min = read_num(c, j, "growth_per_min", 0, false, 100, false);
  if (cJSON_GetObjectItemCaseSensitive(j, "shrink_per_min"))
    out->shrink_per_min = read_num(c, j, "shrink_per_min", 0, false, 1, false);
  if (cJSON_GetObjectItemCaseSensitive(j, "busy_fraction"))
    out->busy_fraction = read_num(c, j, "busy_fraction", 0, true, 1, false);
  if (cJSON_GetObjectItemCaseSensitive(j, "budget_usd"))
    out->budget_usd = read_num(c, j, "budget_usd", 0, false, 1e12, false);
}

static bool read_flag(check *c, const cJSON *j, const char *key, bool def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  if (!v) return def;
  if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
  size_t m = check_push(c, key);
  check_error(c, "must be true or false");
  check_pop(c, m);
  return def;
}

static void read_accounts(check *c, const cJSON *j, fm_accounts_cfg *a) {
  static const char *const f[] = {"reject_unknown_keys", "ratelimit_extension_headers", "limits",
                                  "keys", NULL};
  check_unknown(c, j, f);
  a->reject_unknown_keys = read_flag(c, j, "reject_unknown_keys", false);
  a->ratelimit_extension_headers = read_flag(c, j, "ratelimit_extension_headers", true);
  fm_limits_cfg zero = {0};
  const cJSON *limits = read_obj(c, j, "limits");
  if (limits) {
    size_t m = check_push(c, "limits");
    read_limits(c, limits, &zero, &a->limits);
    for (int k = 0; k < FM_LIMIT_N; k++)
      if (!(a->limits.start[k] > 0)) {
        size_t m2 = check_push(c, limit_fields[k]);
        check_error(c, "is required: {\"start\": N, \"ceiling\": N}");
        check_pop(c, m2);
      }
    check_pop(c, m);
  }
  const cJSON *keys = cJSON_GetObjectItemCaseSensitive(j, "keys");
  if (!keys) return;
  size_t m = check_push(c, "keys");
  if (!cJSON_IsObject(keys)) {
    check_error(c, "must be an object mapping API keys to {\"name\", \"limits\"}");
    check_pop(c, m);
    return;
  }
  size_t n = (size_t)cJSON_GetArraySize(keys);
  a->keys = calloc(n ? n : 1, sizeof(fm_key_cfg));
  for (const cJSON *it = keys->child; it && a->keys; it = it->next) {
    fm_key_cfg *k = &a->keys[a->n_keys++];
    k->key = strdup(it->string);
    k->limits = a->limits;
    /* The key itself is a secret: its path in errors is its position. */
    size_t m2 = check_push_index(c, (int)a->n_keys - 1);
    if (!*it->string) check_error(c, "an API key must not be empty");
    if (!cJSON_IsObject(it)) {
      check_error(c, "must be an object {\"name\": ..., \"limits\": {...}}");
    } else {
      static const char *const kf[] = {"name", "limits", NULL};
      check_unknown(c, it, kf);
      const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
      if (name && !cJSON_IsString(name)) {
        size_t m3 = check_push(c, "name");
        check_error(c, "must be a string");
        check_pop(c, m3);
      }
      k->name = strdup(cJSON_IsString(name) ? name->valuestring : "");
      const cJSON *kl = cJSON_GetObjectItemCaseSensitive(it, "limits");
      if (kl) {
        size_t m3 = check_push(c, "limits");
        read_limits(c, kl, &a->limits, &k->limits);
        check_pop(c, m3);
      }
    }
    check_pop(c, m2);
  }
  check_pop(c, m);
}

/* One whole-number setting of a server.* object: its key, range and meaning. */
typedef struct whole_field {
  const char *key;
  double min, max;
  const char *what;
} whole_field;

/* server.<name>: an object of n required whole-number fields, read into out
 * (in the order of fields). example is what to write instead of a bad one. */
static void read_wholes(check *c, const cJSON *server, const char *name, const char *example,
                        const whole_field *fields, size_t n, double *out) {
  const cJSON *o = cJSON_GetObjectItemCaseSensitive(server, name);
  size_t m = check_push(c, name);
  if (!cJSON_IsObject(o)) {
    check_error(c, "%s; write %s", o ? "must be an object" : "is required", example);
    check_pop(c, m);
    return;
  }
  const char *known[8] = {0};
  for (size_t i = 0; i < n && i < 7; i++)
    known[i] = fields[i].key;
  check_unknown(c, o, known);
  for (size_t i = 0; i < n; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, fields[i].key);
    size_t m2 = check_push(c, fields[i].key);
    if (!v)
      check_error(c, "is required (%s)", fields[i].what);
    else if (!cJSON_IsNumber(v) || !(v->valuedouble >= fields[i].min) ||
             v->valuedouble > fields[i].max || v->valuedouble != floor(v->valuedouble))
      check_error(c, "must be a whole number from %.0f to %.0f (%s)", fields[i].min, fields[i].max,
                  fields[i].what);
    else
      out[i] = v->valuedouble;
    check_pop(c, m2);
  }
  check_pop(c, m);
}

/* server.journal: how many requests the journal holds and how much of each
 * body (journal.h). Its memory is bounded by size x (entry + body_bytes). */
static void read_journal(check *c, const cJSON *server, fm_config *cfg) {
  static const whole_field fields[] = {
      {"size", 0, FM_JOURNAL_SIZE_MAX, "the most requests the journal holds; 0 turns it off"},
      {"body_bytes", 0, FM_JOURNAL_BODY_MAX,
       "bytes of each request body kept; a longer body is cut and marked body_truncated"},
  };
  double v[2] = {(double)cfg->journal_size, (double)cfg->journal_body_bytes};
  read_wholes(c, server, "journal",
              "{\"size\": 1000, \"body_bytes\": 4096}, or {\"size\": 0} to turn the request "
              "journal off",
              fields, 2, v);
  cfg->journal_size = (size_t)v[0];
  cfg->journal_body_bytes = (size_t)v[1];
}

/* server.responses: the Responses API's store (respstore.h), bounded in
 * count and bytes, with an expiry in simulated seconds. */
static void read_responses(check *c, const cJSON *server, fm_config *cfg) {
  static const whole_field fields[] = {
      {"size", 0, 1e7, "the most responses the store holds; 0 stores none"},
      {"bytes", 4096, 1099511627776.0, "the most bytes the stored responses take in all"},
      {"ttl_s", 1, 1e10, "simulated seconds a stored response lives (the real API: 30 days)"},
  };
  double v[3] = {(double)cfg->responses_size, (double)cfg->responses_bytes, cfg->responses_ttl_s};
  read_wholes(c, server, "responses",
              "{\"size\": 10000, \"bytes\": 67108864, \"ttl_s\": 2592000}, or {\"size\": 0} "
              "to store no responses",
              fields, 3, v);
  cfg->responses_size = (size_t)v[0];
  cfg->responses_bytes = (size_t)v[1];
  cfg->responses_ttl_s = v[2];
}

static const char *const top_fields[] = {"server",   "pool_defaults", "pools", "models",
                                         "accounts", "replies",       NULL};

static void read_config(check *c, const cJSON *root, fm_config *cfg) {
  if (!cJSON_IsObject(root)) {
    check_error(c, "the config must be a JSON object");
    return;
  }
  check_unknown(c, root, top_fields);
  const cJSON *server = read_obj(c, root, "server");
  if (server) {
    size_t m = check_push(c, "server");
    static const char *const f[] = {"max_body_bytes",
                                    "max_accounts",
                                    "max_nonstream_tokens",
                                    "anthropic_overload_status",
                                    "unmatched",
                                    "journal",
                                    "responses",
                                    NULL};
    check_unknown(c, server, f);
    cfg->max_body_bytes = (size_t)read_num(c, server, "max_body_bytes", 64, false, 1 << 30, true);
    /* Each account costs about 1.5 KiB (docs/config.md): 10^7 is already ~15 GiB. */
    cfg->max_accounts = (size_t)read_num(c, server, "max_accounts", 1, false, 1e7, true);
    cfg->max_nonstream_tokens =
        (uint64_t)read_num(c, server, "max_nonstream_tokens", 1, false, 1e9, true);
    cfg->anthropic_overload_status =
        (int)read_num(c, server, "anthropic_overload_status", 503, false, 529, true);
    if (cfg->anthropic_overload_status != 503 && cfg->anthropic_overload_status != 529) {
      size_t m2 = check_push(c, "anthropic_overload_status");
      check_error(c, "must be 503 (as the Fireworks fleet) or 529 (as Anthropic's own API)");
      check_pop(c, m2);
    }
    const cJSON *un = cJSON_GetObjectItemCaseSensitive(server, "unmatched");
    if (un && !cJSON_IsNull(un)) {
      bool gen = cJSON_IsString(un) && !strcmp(un->valuestring, "generate");
      cfg->unmatched_error = cJSON_IsString(un) && !strcmp(un->valuestring, "error");
      if (!gen && !cfg->unmatched_error) {
        size_t m2 = check_push(c, "unmatched");
        check_error(c, "must be \"generate\" (seeded words when no reply rule matches) or "
                       "\"error\" (a 404 that names the closest rule)");
        check_pop(c, m2);
      }
    }
    read_journal(c, server, cfg);
    read_responses(c, server, cfg);
    check_pop(c, m);
  }
  const cJSON *defaults = cJSON_GetObjectItemCaseSensitive(root, "pool_defaults");
  if (defaults && !cJSON_IsObject(defaults)) {
    size_t m = check_push(c, "pool_defaults");
    check_error(c, "must be an object of pool settings");
    check_pop(c, m);
    defaults = NULL;
  }
  const cJSON *accounts = read_obj(c, root, "accounts");
  if (accounts) {
    size_t m = check_push(c, "accounts");
    read_accounts(c, accounts, &cfg->accounts);
    check_pop(c, m);
  }
  const cJSON *pools = read_obj(c, root, "pools");
  const cJSON *models = read_obj(c, root, "models");
  if (!pools || !models) return;

  size_t np = (size_t)cJSON_GetArraySize(pools), nm = (size_t)cJSON_GetArraySize(models);
  cfg->pools = calloc(np ? np : 1, sizeof(fm_pool_cfg));
  cfg->models = calloc(nm ? nm : 1, sizeof(fm_model_cfg));
  if (!cfg->pools || !cfg->models) {
    check_error(c, "out of memory");
    return;
  }
  size_t m = check_push(c, "pools");
  if (np == 0) check_error(c, "must define at least one pool");
  for (const cJSON *it = pools->child; it; it = it->next) {
    size_t m2 = check_push(c, it->string);
    fm_pool_cfg *p = &cfg->pools[cfg->n_pools++];
    p->name = strdup(it->string);
    if (!cJSON_IsObject(it)) {
      check_error(c, "must be an object of pool settings");
    } else {
      cJSON *eff = defaults ? cJSON_Duplicate(defaults, true) : cJSON_CreateObject();
      if (eff) {
        fm_json_merge_patch(eff, it);
        read_pool(c, eff, p);
        cJSON_Delete(eff);
      }
    }
    check_pop(c, m2);
  }
  check_pop(c, m);

  m = check_push(c, "models");
  if (nm == 0) check_error(c, "must define at least one model");
  for (const cJSON *it = models->child; it; it = it->next) {
    size_t m2 = check_push(c, it->string);
    fm_model_cfg *md = &cfg->models[cfg->n_models++];
    md->id = strdup(it->string);
    if (!cJSON_IsObject(it))
      check_error(c, "must be an object describing the model");
    else
      read_model(c, it, md, cfg);
    check_pop(c, m2);
  }
  check_pop(c, m);

  /* Reply rules: checked here, with their paths; the server adds them at start. */
  const cJSON *replies = cJSON_GetObjectItemCaseSensitive(root, "replies");
  if (replies && !cJSON_IsNull(replies)) {
    if (!cJSON_IsArray(replies)) {
      m = check_push(c, "replies");
      check_error(c, "must be an array of reply rules {\"match\": {...}, \"reply\": {...}}");
      check_pop(c, m);
    } else {
      int i = 0;
      cfg->replies = cJSON_CreateArray();
      for (const cJSON *it = replies->child; it; it = it->next, i++) {
        char where[32];
        snprintf(where, sizeof(where), "replies[%d]", i);
        fm_reply_rule_free(fm_reply_rule_parse(it, cfg, where, c->errs));
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "where", where);
        cJSON_AddItemToObject(o, "rule", cJSON_Duplicate(it, true));
        cJSON_AddItemToArray(cfg->replies, o);
      }
    }
  }
}

/* ---- loading ------------------------------------------------------------- */

char *fm_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *data = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      char *p = realloc(data, cap);
      if (!p) {
        free(data);
        fclose(f);
        errno = ENOMEM;
        return NULL;
      }
      data = p;
    }
    size_t r = fread(data + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(data);
    errno = EIO;
    return NULL;
  }
  data[n] = '\0';
  if (len) *len = n;
  return data;
}

static void add_error(fm_config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_error(fm_config_errors *errs, const char *fmt, ...) {
  check c = {.errs = errs};
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  check_error(&c, "%s", msg);
}

/* Reports where a JSON parse stopped as line:column. */
static void parse_error(fm_config_errors *errs, const char *label, const char *text) {
  const char *at = cJSON_GetErrorPtr();
  int line = 1, col = 1;
  for (const char *p = text; at && p < at && *p; p++) {
    if (*p == '\n')
      line++, col = 1;
    else
      col++;
  }
  add_error(errs, "%s is not valid JSON (line %d, column %d): fix the syntax there", label, line,
            col);
}

/* cJSON ends a string at an embedded NUL ("\u0000"), so a pool, model or
 * key name would be read cut short and the config would mean something it
 * does not say. Reports the first such string by its path; API keys are
 * named by position, as everywhere in config errors. */
static bool has_nul(fm_config_errors *errs, const char *text) {
  fm_json_scan sc;
  size_t n = strlen(text);
  if (fm_json_prescan(text, n, false, 0, &sc) != FM_JSON_NUL) return false;
  char path[256];
  fm_json_path_at(text, n, sc.offset, "accounts.keys", path, sizeof(path));
  fm_config_errors_add(errs, "%s: must not contain a NUL character (\\u0000); remove it", path);
  return true;
}

int fm_config_load_text(fm_config *cfg, const char *patch, const char *label,
                        fm_config_errors *errs) {
  memset(cfg, 0, sizeof(*cfg));
  cJSON *root = cJSON_Parse(fm_default_config_json);
  if (!root) {
    add_error(errs, "the embedded default config does not parse (a build problem)");
    return -1;
  }
  if (patch) {
    cJSON *p = cJSON_Parse(patch);
    if (!p) {
      parse_error(errs, label, patch);
      cJSON_Delete(root);
      return -1;
    }
    if (has_nul(errs, patch)) {
      cJSON_Delete(p);
      cJSON_Delete(root);
      return -1;
    }
    if (!cJSON_IsObject(p)) {
      add_error(errs, "%s must hold a JSON object (a merge patch over the default config)", label);
      cJSON_Delete(p);
      cJSON_Delete(root);
      return -1;
    }
    fm_json_merge_patch(root, p);
    cJSON_Delete(p);
  }
  check c = {.errs = errs};
  size_t before = errs->n;
  read_config(&c, root, cfg);
  cJSON_Delete(root);
  if (errs->n > before) {
    fm_config_free(cfg);
    return -1;
  }
  return 0;
}

int fm_config_load(fm_config *cfg, const char *path, fm_config_errors *errs) {
  if (!path) return fm_config_load_text(cfg, NULL, "default", errs);
  char *text = fm_read_file(path, NULL);
  if (!text) {
    memset(cfg, 0, sizeof(*cfg));
    add_error(errs, "cannot read %s: %s", path, strerror(errno));
    return -1;
  }
  int rc = fm_config_load_text(cfg, text, path, errs);
  free(text);
  return rc;
}

void fm_config_free(fm_config *cfg) {
  for (size_t i = 0; i < cfg->n_pools; i++)
    free(cfg->pools[i].name);
  for (size_t i = 0; i < cfg->n_models; i++) {
    free(cfg->models[i].id);
    free(cfg->models[i].owned_by);
  }
  for (size_t i = 0; i < cfg->accounts.n_keys; i++) {
    free(cfg->accounts.keys[i].key);
    free(cfg->accounts.keys[i].name);
  }
  free(cfg->accounts.keys);
  free(cfg->pools);
  free(cfg->models);
  cJSON_Delete(cfg->replies);
  memset(cfg, 0, sizeof(*cfg));
}

int fm_config_find_pool(const fm_config *cfg, const char *name) {
  for (size_t i = 0; i < cfg->n_pools; i++)
    if (strcmp(cfg->pools[i].name, name) == 0) return (int)i;
  return -1;
}

int fm_config_find_model(const fm_config *cfg, const char *id) {
  for (size_t i = 0; i < cfg->n_models; i++)
    if (strcmp(cfg->models[i].id, id) == 0) return (int)i;
  return -1;
}

/* ---- live pool settings ------------------------------------------------- */

cJSON *fm_pool_cfg_to_json(const fm_pool_cfg *p) {
  cJSON *j = cJSON_CreateObject();
  if (!j) return NULL;
  cJSON_AddNumberToObject(j, "slots", p->slots);
  cJSON_AddNumberToObject(j, "replicas", p->replicas);
  cJSON_AddNumberToObject(j, "ttft_ms", p->ttft_ms);
  cJSON_AddNumberToObject(j, "prefill_tps", p->prefill_tps);
  cJSON_AddNumberToObject(j, "decode_tps", p->decode_tps);
  cJSON_AddNumberToObject(j, "jitter", p->jitter);
  cJSON_AddNumberToObject(j, "slowdown_at_full", p->slowdown_at_full);
  cJSON *o = cJSON_AddObjectToObject(j, "output_tokens");
  cJSON_AddNumberToObject(o, "min", p->out_min);
  cJSON_AddNumberToObject(o, "mean", p->out_mean);
  cJSON_AddNumberToObject(o, "max", p->out_max);
  cJSON_AddNumberToObject(j, "tenant_load", p->tenant_load);
  cJSON_AddNumberToObject(j, "tenant_priority_share", p->tenant_priority_share);
  cJSON_AddNumberToObject(j, "cache_tokens_per_replica", p->cache_tokens_per_replica);
  cJSON *shed = cJSON_AddObjectToObject(j, "shed");
  cJSON *q = cJSON_AddObjectToObject(j, "queue_timeout_ms");
  for (int t = 0; t < FM_TIER_N; t++) {
    cJSON *c = cJSON_AddObjectToObject(shed, fm_tier_names[t]);
    cJSON_AddNumberToObject(c, "start", p->shed[t].start);
    cJSON_AddNumberToObject(c, "end", p->shed[t].end);
    cJSON_AddNumberToObject(q, fm_tier_names[t], p->queue_timeout_ms[t]);
  }
  return j;
}

int fm_pool_cfg_patch(fm_pool_cfg *p, const cJSON *patch, fm_config_errors *errs) {
  check c = {.errs = errs};
  if (!cJSON_IsObject(patch)) {
    check_error(&c, "the body must be a JSON object of pool settings, e.g. {\"tenant_load\": 1.2}");
    return -1;
  }
  cJSON *j = fm_pool_cfg_to_json(p);
  if (!j) {
    check_error(&c, "out of memory");
    return -1;
  }
  fm_json_merge_patch(j, patch);
  fm_pool_cfg next = *p;
  size_t before = errs->n;
  check_unknown(&c, patch, pool_fields); /* report against what the caller sent */
  if (errs->n == before) read_pool(&c, j, &next);
  cJSON_Delete(j);
  if (errs->n > before) return -1;
  *p = next;
  return 0;
}
