/* scenario.c — parsing, checking and playing scenario timelines. */
#include "scenario.h"

#include "jsonscan.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAMP_TICK_US 50000 /* ramps move every 50 ms of simulated time */

/* ---- errors ------------------------------------------------------------------ */

#define add fm_config_errors_add

/* Moves the errors of a sub-check into errs, each under prefix. */
static void adopt(fm_config_errors *errs, fm_config_errors *sub, const char *prefix) {
  for (size_t i = 0; i < sub->n; i++) {
    const char *e = sub->items[i];
    if (!strncmp(e, "(top level): ", 13))
      add(errs, "%s: %s", prefix, e + 13);
    else
      add(errs, "%s.%s", prefix, e);
  }
  fm_config_errors_free(sub);
}

/* ---- parsing ----------------------------------------------------------------- */

void fm_scenario_free(fm_scenario *s) {
  if (!s) return;
  free(s->name);
  free(s->description);
  for (int i = 0; i < s->n_steps; i++)
    cJSON_Delete(s->steps[i].pools);
  for (int i = 0; i < s->n_faults; i++)
    cJSON_Delete(s->faults[i].fault);
  free(s->steps);
  free(s->faults);
  free(s);
}

static double num(const cJSON *o, const char *key, double def, double lo, double hi,
                  fm_config_errors *errs, const char *where) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v) return def;
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) {
    add(errs, "%s%s%s: must be a number between %g and %g", where, *where ? "." : "", key, lo, hi);
    return def;
  }
  return v->valuedouble;
}

/* A step's settings for one pool key must be valid on every pool they touch. */
static void check_settings(const cJSON *settings, const char *key, const fm_config *cfg,
                           const char *where, fm_config_errors *errs) {
  int only = strcmp(key, "*") ? fm_config_find_pool(cfg, key) : -1;
  if (strcmp(key, "*") && only < 0) {
    add(errs, "%s: no pool named \"%s\" (use a pool from the config, or * for all)", where, key);
    return;
  }
  for (size_t i = 0; i < cfg->n_pools; i++) {
    if (only >= 0 && (size_t)only != i) continue;
    fm_pool_cfg copy = cfg->pools[i];
    fm_config_errors sub = {0};
    fm_pool_cfg_patch(&copy, settings, &sub);
    bool bad = sub.n > 0;
    adopt(errs, &sub, where);
    if (bad) return; /* the same settings fail the same way on the other pools */
  }
}

static int by_time(const void *a, const void *b) {
  double x = ((const fm_scn_step *)a)->at_s, y = ((const fm_scn_step *)b)->at_s;
  return x < y ? -1 : x > y;
}

static int by_fault_time(const void *a, const void *b) {
  double x = ((const fm_scn_fault *)a)->at_s, y = ((const fm_scn_fault *)b)->at_s;
  return x < y ? -1 : x > y;
}

static void parse_steps(fm_scenario *s, const cJSON *steps, const fm_config *cfg,
                        fm_config_errors *errs) {
  if (!cJSON_IsArray(steps) || !steps->child) {
    add(errs, "steps: is required: a non-empty array of {\"at_s\", \"ramp_s\"?, \"pools\"}");
    return;
  }
  s->steps = calloc((size_t)cJSON_GetArraySize(steps), sizeof(fm_scn_step));
  if (!s->steps) return;
  int i = 0;
  for (const cJSON *st = steps->child; st; st = st->next, i++) {
    char where[64];
    snprintf(where, sizeof(where), "steps[%d]", i);
    if (!cJSON_IsObject(st)) {
      add(errs, "%s: must be an object {\"at_s\", \"ramp_s\"?, \"pools\"}", where);
      continue;
    }
    for (const cJSON *f = st->child; f; f = f->next)
      if (strcmp(f->string, "at_s") && strcmp(f->string, "ramp_s") && strcmp(f->string, "pools"))
        add(errs, "%s.%s: unknown field (known fields: at_s, ramp_s, pools)", where, f->string);
    fm_scn_step *step = &s->steps[s->n_steps++];
    if (!cJSON_GetObjectItemCaseSensitive(st, "at_s")) add(errs, "%s.at_s: is required", where);
    step->at_s = num(st, "at_s", 0, 0, s->duration_s, errs, where);
    step->ramp_s = num(st, "ramp_s", 0, 0, 1e7, errs, where);
    const cJSON *pools = cJSON_GetObjectItemCaseSensitive(st, "pools");
    if (!cJSON_IsObject(pools) || !pools->child) {
      add(errs, "%s.pools: is required: an object {\"<pool>|*\": {settings}}", where);
      continue;
    }
    for (const cJSON *p = pools->child; p; p = p->next) {
      char w2[160];
      snprintf(w2, sizeof(w2), "%s.pools%s%s%s", where, strchr(p->string, '*') ? "[\"" : ".",
               p->string, strchr(p->string, '*') ? "\"]" : "");
      check_settings(p, p->string, cfg, w2, errs);
    }
    step->pools = cJSON_Duplicate(pools, true);
  }
  qsort(s->steps, (size_t)s->n_steps, sizeof(fm_scn_step), by_time);
}

static void parse_faults(fm_scenario *s, const cJSON *faults, const fm_config *cfg,
                         fm_config_errors *errs) {
  if (!faults) return;
  if (!cJSON_IsArray(faults)) {
    add(errs, "faults: must be an array of {\"at_s\", \"match\", \"action\", ...}");
    return;
  }
  s->faults = calloc((size_t)cJSON_GetArraySize(faults) + 1, sizeof(fm_scn_fault));
  if (!s->faults) return;
  int i = 0;
  for (const cJSON *f = faults->child; f; f = f->next, i++) {
    char where[64];
    snprintf(where, sizeof(where), "faults[%d]", i);
    fm_fault *x = fm_fault_parse(f, cfg, where, errs);
    fm_fault_free(x);
    if (!x) continue;
    fm_scn_fault *sf = &s->faults[s->n_faults++];
    if (!cJSON_GetObjectItemCaseSensitive(f, "at_s")) add(errs, "%s.at_s: is required", where);
    sf->at_s = num(f, "at_s", 0, 0, s->duration_s, errs, where);
    sf->fault = cJSON_Duplicate(f, true);
  }
  qsort(s->faults, (size_t)s->n_faults, sizeof(fm_scn_fault), by_fault_time);
}

fm_scenario *fm_scenario_parse(const char *text, const char *label, const fm_config *cfg,
                               fm_config_errors *errs) {
  size_t before = errs->n;
  cJSON *root = cJSON_Parse(text);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    int line = 1, col = 1;
    for (const char *p = text; at && p < at && *p; p++) {
      if (*p == '\n')
        line++, col = 1;
      else
        col++;
    }
    add(errs, "(top level): %s is not valid JSON (line %d, column %d): fix the syntax there", label,
        line, col);
    return NULL;
  }
  fm_json_scan sc;
  if (fm_json_prescan(text, strlen(text), false, 0, &sc) == FM_JSON_NUL) {
    /* cJSON ends a string at an embedded NUL: "launch-spike\u0000x" would
     * run as launch-spike, a pool name would name another pool. */
    char path[256];
    fm_json_path_at(text, strlen(text), sc.offset, NULL, path, sizeof(path));
    add(errs, "%s: must not contain a NUL character (\\u0000); remove it", path);
    cJSON_Delete(root);
    return NULL;
  }
  fm_scenario *s = calloc(1, sizeof(*s));
  if (!s || !cJSON_IsObject(root)) {
    add(errs, "(top level): a scenario must be a JSON object with name, description, "
              "duration_s and steps");
    cJSON_Delete(root);
    free(s);
    return NULL;
  }
  static const char *const known[] = {"name",  "description", "duration_s", "repeat",
                                      "steps", "faults",      NULL};
  for (const cJSON *f = root->child; f; f = f->next) {
    bool ok = false;
    for (const char *const *k = known; *k; k++)
      ok = ok || !strcmp(*k, f->string);
    if (!ok)
      add(errs,
          "%s: unknown field (known fields: name, description, duration_s, repeat, steps, "
          "faults)",
          f->string);
  }
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
  if (!cJSON_IsString(name) || !*name->valuestring)
    add(errs, "name: is required: a non-empty string");
  else
    s->name = strdup(name->valuestring);
  const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
  if (!cJSON_IsString(desc))
    add(errs, "description: is required: say what happens and what a well-behaved client "
              "should show");
  else
    s->description = strdup(desc->valuestring);
  if (!cJSON_GetObjectItemCaseSensitive(root, "duration_s"))
    add(errs, "duration_s: is required: the length of the timeline in seconds");
  s->duration_s = num(root, "duration_s", 1, 0.001, 1e7, errs, "");
  const cJSON *rep = cJSON_GetObjectItemCaseSensitive(root, "repeat");
  if (rep && !cJSON_IsBool(rep)) add(errs, "repeat: must be true or false");
  s->repeat = cJSON_IsTrue(rep);
  parse_steps(s, cJSON_GetObjectItemCaseSensitive(root, "steps"), cfg, errs);
  parse_faults(s, cJSON_GetObjectItemCaseSensitive(root, "faults"), cfg, errs);
  cJSON_Delete(root);
  if (errs->n > before) {
    fm_scenario_free(s);
    return NULL;
  }
  return s;
}

const char *fm_builtin_scenario(const char *name) {
  for (int i = 0; fm_builtin_scenario_names[i]; i++)
    if (!strcmp(fm_builtin_scenario_names[i], name)) return fm_builtin_scenario_texts[i];
  return NULL;
}

/* ---- playing ------------------------------------------------------------------ */

static uint64_t at_us(double s) {
  return (uint64_t)llround(s * 1e6);
}

static bool integral_field(const char *f) {
  return !strcmp(f, "slots") || !strcmp(f, "replicas") || !strcmp(f, "cache_tokens_per_replica");
}

/* Applies a patch to one pool; a bad value (it was checked at parse) leaves it alone. */
static void apply_patch(fm_fleet *fleet, int pool, const cJSON *patch) {
  fm_pool_cfg next = fleet->pools[pool].cfg;
  fm_config_errors errs = {0};
  if (fm_pool_cfg_patch(&next, patch, &errs) == 0) fm_fleet_set_pool(fleet, pool, &next);
  fm_config_errors_free(&errs);
}

static void set_number(fm_fleet *fleet, int pool, const char *field, double v) {
  cJSON *patch = cJSON_CreateObject();
  if (!patch) return;
  cJSON_AddNumberToObject(patch, field, integral_field(field) ? round(v) : v);
  apply_patch(fleet, pool, patch);
  cJSON_Delete(patch);
}

static void add_ramp(fm_player *p, int pool, const char *field, double from, double to, uint64_t t0,
                     uint64_t dur) {
  for (int i = 0; i < p->n_ramps; i++) /* a new ramp of the same setting replaces the old */
    if (p->ramps[i].pool == pool && !strcmp(p->ramps[i].field, field)) {
      p->ramps[i] = p->ramps[--p->n_ramps];
      break;
    }
  if (p->n_ramps == p->cap_ramps) {
    int cap = p->cap_ramps ? p->cap_ramps * 2 : 16;
    fm_ramp *r = realloc(p->ramps, (size_t)cap * sizeof(*r));
    if (!r) return;
    p->ramps = r;
    p->cap_ramps = cap;
  }
  fm_ramp *r = &p->ramps[p->n_ramps++];
  r->pool = pool;
  snprintf(r->field, sizeof(r->field), "%s", field);
  r->from = from;
  r->to = to;
  r->t0_us = t0;
  r->dur_us = dur;
}

static void apply_step(fm_player *p, const fm_scn_step *st, fm_fleet *fleet, uint64_t t0) {
  for (const cJSON *entry = st->pools->child; entry; entry = entry->next) {
    for (size_t i = 0; i < fleet->n_pools; i++) {
      if (strcmp(entry->string, "*") && strcmp(entry->string, fleet->pools[i].cfg.name)) continue;
      cJSON *now_patch = cJSON_CreateObject();
      cJSON *current = fm_pool_cfg_to_json(&fleet->pools[i].cfg);
      for (const cJSON *f = entry->child; f && now_patch && current; f = f->next) {
        const cJSON *cur = cJSON_GetObjectItemCaseSensitive(current, f->string);
        if (st->ramp_s > 0 && cJSON_IsNumber(f) && cJSON_IsNumber(cur))
          add_ramp(p, (int)i, f->string, cur->valuedouble, f->valuedouble, t0, at_us(st->ramp_s));
        else
          cJSON_AddItemToObject(now_patch, f->string, cJSON_Duplicate(f, true));
      }
      if (now_patch && now_patch->child) apply_patch(fleet, (int)i, now_patch);
      cJSON_Delete(now_patch);
      cJSON_Delete(current);
    }
  }
}

static void move_ramps(fm_player *p, fm_fleet *fleet, uint64_t now) {
  for (int i = 0; i < p->n_ramps;) {
    fm_ramp *r = &p->ramps[i];
    double frac = now <= r->t0_us ? 0.0 : (double)(now - r->t0_us) / (double)r->dur_us;
    if (frac > 1.0) frac = 1.0;
    set_number(fleet, r->pool, r->field, r->from + (r->to - r->from) * frac);
    if (frac >= 1.0)
      p->ramps[i] = p->ramps[--p->n_ramps];
    else
      i++;
  }
}

static void drop_faults(fm_player *p, fm_faults *faults) {
  for (int i = 0; i < p->n_fault_ids; i++)
    fm_faults_delete(faults, p->fault_ids[i]);
  p->n_fault_ids = 0;
}

int fm_player_start(fm_player *p, fm_scenario *s, fm_fleet *fleet, uint64_t now) {
  fm_pool_cfg *saved = malloc(fleet->n_pools * sizeof(*saved) + 1);
  if (!saved) return -1;
  for (size_t i = 0; i < fleet->n_pools; i++)
    saved[i] = fleet->pools[i].cfg;
  memset(p, 0, sizeof(*p));
  p->s = s;
  p->saved = saved;
  p->n_saved = fleet->n_pools;
  p->start_us = p->began_us = now;
  p->step = -1;
  return 0;
}

void fm_player_tick(fm_player *p, fm_fleet *fleet, fm_faults *faults, const fm_config *cfg,
                    uint64_t now) {
  if (!p->s || p->finished) return;
  const fm_scenario *s = p->s;
  for (;;) {
    uint64_t end = p->start_us + at_us(s->duration_s);
    uint64_t horizon = now < end ? now : end;
    while (p->next_step < s->n_steps &&
           p->start_us + at_us(s->steps[p->next_step].at_s) <= horizon) {
      uint64_t t0 = p->start_us + at_us(s->steps[p->next_step].at_s);
      apply_step(p, &s->steps[p->next_step], fleet, t0);
      p->step = p->next_step++;
    }
    while (p->next_fault < s->n_faults &&
           p->start_us + at_us(s->faults[p->next_fault].at_s) <= horizon) {
      fm_config_errors errs = {0};
      fm_fault *f = fm_fault_parse(s->faults[p->next_fault].fault, cfg, "", &errs);
      fm_config_errors_free(&errs);
      if (f) {
        uint32_t id = fm_faults_add(faults, f);
        uint32_t *ids = realloc(p->fault_ids, ((size_t)p->n_fault_ids + 1) * sizeof(*ids));
        if (ids) {
          p->fault_ids = ids;
          ids[p->n_fault_ids++] = id;
        }
      }
      p->next_fault++;
    }
    if (now < end) break;
    if (!s->repeat) {
      p->finished = true;
      break;
    }
    p->start_us = end; /* next loop: the timeline starts over from the settings it left */
    p->loop++;
    drop_faults(p, faults); /* its faults come back at their at_s, fresh */
    p->next_step = p->next_fault = 0;
  }
  move_ramps(p, fleet, now);
}

uint64_t fm_player_next_us(const fm_player *p, uint64_t now) {
  if (!p->s || p->finished) return UINT64_MAX;
  const fm_scenario *s = p->s;
  uint64_t next = p->start_us + at_us(s->duration_s);
  if (p->next_step < s->n_steps) {
    uint64_t t = p->start_us + at_us(s->steps[p->next_step].at_s);
    if (t < next) next = t;
  }
  if (p->next_fault < s->n_faults) {
    uint64_t t = p->start_us + at_us(s->faults[p->next_fault].at_s);
    if (t < next) next = t;
  }
  if (p->n_ramps > 0 && now + RAMP_TICK_US < next) next = now + RAMP_TICK_US;
  return next;
}

void fm_player_stop(fm_player *p, fm_fleet *fleet, fm_faults *faults) {
  if (!p->s) return;
  drop_faults(p, faults);
  free(p->fault_ids);
  for (size_t i = 0; i < p->n_saved && i < fleet->n_pools; i++)
    fm_fleet_set_pool(fleet, (int)i, &p->saved[i]);
  fm_scenario_free(p->s);
  free(p->saved);
  free(p->ramps);
  memset(p, 0, sizeof(*p));
}
