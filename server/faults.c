/* faults.c — the fault list, matching and firing, and parsing. */
#include "faults.h"

#include "accounts.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const fm_fault_kind_names[4] = {"status", "error", "disconnect", "stall"};

void fm_faults_init(fm_faults *f, uint64_t seed) {
  memset(f, 0, sizeof(*f));
  f->next_id = 1;
  fm_rng_seed(&f->rng, seed ^ 0xfa017ULL);
}

void fm_faults_reset(fm_faults *f, uint64_t seed) {
  uint32_t next = f->next_id; /* ids keep counting up: an old id never names a new fault */
  fm_faults_free(f);
  fm_faults_init(f, seed);
  f->next_id = next;
}

void fm_fault_free(fm_fault *x) {
  if (!x) return;
  fm_match_free(&x->match);
  free(x);
}

void fm_faults_free(fm_faults *f) {
  fm_faults_delete(f, 0);
}

uint32_t fm_faults_add(fm_faults *f, fm_fault *x) {
  x->id = f->next_id++;
  fm_fault **tail = &f->head;
  while (*tail)
    tail = &(*tail)->next;
  *tail = x;
  return x->id;
}

bool fm_fault_parse_id(const char *s, uint32_t *id) {
  uint64_t n = 0;
  if (!*s) return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    n = n * 10 + (uint64_t)(*s - '0');
    if (n > UINT32_MAX) return false;
  }
  if (n == 0) return false;
  *id = (uint32_t)n;
  return true;
}

bool fm_faults_delete(fm_faults *f, uint32_t id) {
  bool found = false;
  for (fm_fault **p = &f->head; *p;) {
    fm_fault *x = *p;
    if (id == 0 || x->id == id) {
      *p = x->next;
      fm_fault_free(x);
      found = true;
    } else {
      p = &x->next;
    }
  }
  return found;
}

const fm_fault *fm_faults_fire(fm_faults *f, fm_match_facts *facts) {
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 0 && !facts->test_id) continue;
    for (fm_fault *x = f->head; x; x = x->next) {
      if ((pass == 0) != (x->match.test_id != NULL)) continue;
      if (x->count_left == 0 || !fm_match_test(&x->match, facts, NULL)) continue;
      if (x->count_left > 0)
        x->count_left--;
      else if (x->count_left < 0 && !fm_rng_chance(&f->rng, x->probability))
        continue;
      x->fired++;
      return x;
    }
  }
  return NULL;
}

bool fm_fault_status_ok(long status) {
  return status >= FM_FAULT_STATUS_MIN && status <= FM_FAULT_STATUS_MAX;
}

bool fm_fault_parse_header(const char *v, fm_fault_action *out) {
  memset(out, 0, sizeof(*out));
  char *end;
  const char *at = strchr(v, '@');
  if (!at) {
    long st = strtol(v, &end, 10);
    if (end == v || *end || !fm_fault_status_ok(st)) return false;
    out->kind = FM_FAULT_STATUS;
    out->status = (int)st;
    return true;
  }
  size_t n = (size_t)(at - v);
  int kind = -1;
  for (int k = FM_FAULT_ERROR; k <= FM_FAULT_STALL; k++)
    if (strlen(fm_fault_kind_names[k]) == n && strncmp(v, fm_fault_kind_names[k], n) == 0) kind = k;
  long after = strtol(at + 1, &end, 10);
  if (kind < 0 || end == at + 1 || *end || after < 0 || after > FM_FAULT_AFTER_MAX) return false;
  out->kind = (fm_fault_kind)kind;
  out->after_tokens = (uint32_t)after;
  return true;
}

/* ---- parsing the JSON form --------------------------------------------------- */

static bool only_fields(const cJSON *o, const char *const *known, struct fm_config_errors *errs,
                        const char *prefix, const char *where) {
  bool ok = true;
  for (const cJSON *it = o->child; it; it = it->next) {
    bool k = false;
    for (const char *const *n = known; *n; n++)
      k = k || !strcmp(*n, it->string);
    if (k) continue;
    char f[128];
    snprintf(f, sizeof(f), "%s%s%s", where, *where ? "." : "", it->string);
    fm_config_errors_at(errs, prefix, f, "unknown field");
    ok = false;
  }
  return ok;
}

fm_fault *fm_fault_parse(const cJSON *j, const fm_config *cfg, const char *prefix,
                         struct fm_config_errors *errs) {
  size_t before = errs->n;
  fm_fault *x = calloc(1, sizeof(*x));
  if (!x) return NULL;
  fm_match_init(&x->match);
  x->count_left = -1;
  if (!cJSON_IsObject(j)) {
    fm_config_errors_at(errs, prefix, "",
                        "a fault must be an object {\"match\": {...}, \"action\": {...}, "
                        "\"count\": N or \"probability\": p}");
    fm_fault_free(x);
    return NULL;
  }
  static const char *const top[] = {"match", "action", "count", "probability", "at_s", NULL};
  only_fields(j, top, errs, prefix, "");

  char mp[160];
  snprintf(mp, sizeof(mp), "%s%smatch", prefix, *prefix ? "." : "");
  fm_match_parse(&x->match, cJSON_GetObjectItemCaseSensitive(j, "match"), cfg, mp, errs);

  const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "action");
  if (!cJSON_IsObject(a)) {
    fm_config_errors_at(errs, prefix, "action",
                        "is required: {\"status\": 503} or {\"stream\": "
                        "\"error\"|\"disconnect\"|\"stall\", \"after_tokens\": N}");
  } else {
    static const char *const af[] = {"status", "stream", "after_tokens", NULL};
    only_fields(a, af, errs, prefix, "action");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(a, "status");
    const cJSON *sm = cJSON_GetObjectItemCaseSensitive(a, "stream");
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(a, "after_tokens");
    if ((st != NULL) == (sm != NULL)) {
      fm_config_errors_at(errs, prefix, "action", "needs exactly one of \"status\" or \"stream\"");
    } else if (st) {
      /* The range is checked before the cast: a double out of int's range is UB to convert. */
      bool ok = cJSON_IsNumber(st) && st->valuedouble == floor(st->valuedouble) &&
                st->valuedouble >= FM_FAULT_STATUS_MIN && st->valuedouble <= FM_FAULT_STATUS_MAX;
      if (!ok)
        fm_config_errors_at(
            errs, prefix, "action.status",
            "must be a final HTTP error status between %d and %d (e.g. 503, 429, 500)",
            FM_FAULT_STATUS_MIN, FM_FAULT_STATUS_MAX);
      x->action.kind = FM_FAULT_STATUS;
      x->action.status = ok ? (int)st->valuedouble : 503;
    } else {
      int kind = -1;
      for (int k = FM_FAULT_ERROR; cJSON_IsString(sm) && k <= FM_FAULT_STALL; k++)
        if (!strcmp(sm->valuestring, fm_fault_kind_names[k])) kind = k;
      if (kind < 0)
        fm_config_errors_at(errs, prefix, "action.stream",
                            "must be \"error\", \"disconnect\" or \"stall\"");
      x->action.kind = kind < 0 ? FM_FAULT_ERROR : (fm_fault_kind)kind;
      bool ok = !after || (cJSON_IsNumber(after) && after->valuedouble >= 0 &&
                           after->valuedouble <= FM_FAULT_AFTER_MAX &&
                           after->valuedouble == floor(after->valuedouble));
      if (!ok)
        fm_config_errors_at(errs, prefix, "action.after_tokens",
                            "must be a whole number between 0 and %d", FM_FAULT_AFTER_MAX);
      x->action.after_tokens = ok && after ? (uint32_t)after->valuedouble : 0;
    }
  }

  const cJSON *count = cJSON_GetObjectItemCaseSensitive(j, "count");
  const cJSON *prob = cJSON_GetObjectItemCaseSensitive(j, "probability");
  if (count && prob) {
    fm_config_errors_at(errs, prefix, "count", "send either count or probability, not both");
  } else if (count) {
    if (!cJSON_IsNumber(count) || count->valuedouble < 0 || count->valuedouble > 1e12 ||
        count->valuedouble != floor(count->valuedouble))
      fm_config_errors_at(errs, prefix, "count", "must be a whole number >= 0");
    else
      x->count_left = (long long)count->valuedouble;
  } else if (prob) {
    if (!cJSON_IsNumber(prob) || !(prob->valuedouble >= 0 && prob->valuedouble <= 1))
      fm_config_errors_at(errs, prefix, "probability", "must be a number between 0 and 1");
    else
      x->probability = prob->valuedouble;
  } else {
    x->probability = 1.0; /* neither: every matching request, until deleted */
  }
  if (errs->n > before) {
    fm_fault_free(x);
    return NULL;
  }
  return x;
}
