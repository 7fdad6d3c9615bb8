/* ratelimit.c — token buckets with adaptive limits. */
#include "ratelimit.h"

#include <math.h>

const char *const fm_limit_names[FM_LIMIT_N + 1] = {"requests", "prompt", "uncached_prompt",
                                                    "generated", "budget"};

/* Seconds of limit a bucket holds, and the unit of its rate. */
static double window_s(fm_limit_kind k) {
  return k == FM_LIMIT_REQUESTS ? 60.0 : 1.0;
}

double fm_bucket_capacity(const fm_bucket *b, fm_limit_kind kind) {
  (void)kind;
  /* requests: a minute's worth at the per-minute rate; tokens: a second's worth */
  return b->limit;
}

static double rate_per_s(const fm_bucket *b, fm_limit_kind k) {
  return b->limit / window_s(k);
}

void fm_limiter_init(fm_limiter *l, const fm_limits_cfg *cfg, uint64_t now_us) {
  for (int k = 0; k < FM_LIMIT_N; k++) {
    l->b[k].limit = cfg->start[k];
    l->b[k].level = cfg->start[k];
    l->b[k].used = 0;
  }
  l->last_us = now_us;
  l->adapt_us = now_us;
}

/* Once per simulated second: a limit used above busy_fraction grows for that
 * second; idle seconds (a tenth of that use or less) shrink it toward start. */
static void adapt(fm_limiter *l, const fm_limits_cfg *cfg, uint64_t now_us) {
  double dt = (double)(now_us - l->adapt_us) / 1e6;
  if (dt < 1.0) return;
  /* Charges since the last step all happened in its first second (each
   * request adapts first); anything after that second was idle. */
  for (int k = 0; k < FM_LIMIT_N; k++) {
    fm_bucket *b = &l->b[k];
    double share = b->used / rate_per_s(b, (fm_limit_kind)k);
    if (share >= cfg->busy_fraction)
      b->limit = fmin(cfg->ceiling[k], b->limit * pow(1.0 + cfg->growth_per_min, 1.0 / 60.0));
    double idle_s = share < cfg->busy_fraction * 0.1 ? dt : dt - 1.0;
    if (idle_s > 0)
      b->limit = fmax(cfg->start[k], b->limit * pow(1.0 - cfg->shrink_per_min, idle_s / 60.0));
    b->used = 0;
  }
  l->adapt_us = now_us;
}

void fm_limiter_advance(fm_limiter *l, const fm_limits_cfg *cfg, uint64_t now_us) {
  if (now_us <= l->last_us) return;
  double dt = (double)(now_us - l->last_us) / 1e6;
  for (int k = 0; k < FM_LIMIT_N; k++) {
    fm_bucket *b = &l->b[k];
    b->level = fmin(fm_bucket_capacity(b, (fm_limit_kind)k),
                    b->level + rate_per_s(b, (fm_limit_kind)k) * dt);
  }
  l->last_us = now_us;
  adapt(l, cfg, now_us);
}

/* Time until the bucket holds `need`, in microseconds (at least 1 ms). */
static uint64_t wait_for(const fm_bucket *b, fm_limit_kind k, double need) {
  double s = (need - b->level) / rate_per_s(b, k);
  if (s < 0.001) s = 0.001;
  return (uint64_t)ceil(s * 1e6);
}

fm_limit_verdict fm_limiter_check(fm_limiter *l, const fm_limits_cfg *cfg, uint64_t now_us,
                                  uint32_t prompt_tokens, uint32_t uncached_tokens) {
  fm_limiter_advance(l, cfg, now_us);
  double charge[FM_LIMIT_N] = {1.0, prompt_tokens, uncached_tokens, 0.0};
  fm_limit_verdict v = {.ok = true};
  for (int k = 0; k < FM_LIMIT_N; k++) {
    fm_bucket *b = &l->b[k];
    /* A charge bigger than the whole bucket passes when the bucket is full. */
    double need = fmin(charge[k], fm_bucket_capacity(b, (fm_limit_kind)k));
    if (k == FM_LIMIT_GENERATED) need = 0.0; /* only debt blocks */
    if (b->level >= need && !(k == FM_LIMIT_GENERATED && b->level < 0)) continue;
    uint64_t wait = wait_for(b, (fm_limit_kind)k, need > 0 ? need : 0.0);
    if (!v.ok && wait <= v.retry_after_us) continue;
    v.ok = false;
    v.hit = (fm_limit_kind)k;
    v.limit = b->limit;
    v.retry_after_us = wait;
  }
  return v;
}

void fm_limiter_charge(fm_limiter *l, uint32_t prompt_tokens, uint32_t uncached_tokens) {
  double charge[FM_LIMIT_N] = {1.0, prompt_tokens, uncached_tokens, 0.0};
  for (int k = 0; k < FM_LIMIT_N; k++) {
    l->b[k].level -= charge[k];
    l->b[k].used += charge[k];
  }
}

bool fm_limiter_over(const fm_limiter *l) {
  for (int k = 0; k < FM_LIMIT_N; k++)
    if (l->b[k].level < 0.2 * fm_bucket_capacity(&l->b[k], (fm_limit_kind)k)) return true;
  return false;
}

void fm_limiter_generated(fm_limiter *l, uint32_t tokens) {
  l->b[FM_LIMIT_GENERATED].level -= tokens;
  l->b[FM_LIMIT_GENERATED].used += tokens;
}
