/* fleet.c — pools, tiered admission with shedding and queues, serving speed.
 *
 * Admission (SPEC §4). A request on tier T is judged on the demand T
 * competes with, as a fraction of slots, not counting itself:
 *   Priority   tenant Priority demand + own Priority running
 *   Standard   all tenant demand + own Priority and Standard running
 *   Background all tenant demand + all own running
 * Its shed curve turns that demand into a probability that rises linearly
 * from 0 at `start` to 1 at `end`; one seeded draw decides. A request that is
 * shed, or that finds every real slot taken by fleetmock's own requests,
 * waits in its tier's queue. Queues are served Priority, then Standard, then
 * Background, and every queued request is drawn again whenever demand
 * changes (a request ends, a setting moves). A request still waiting when its
 * tier's queue timeout ends is shed for good: the caller answers 503.
 *
 * Tenant demand is virtual: it takes no real slot but counts in every
 * demand and in utilisation, so a pool over 1.0 gets slower, not bigger. */
#include "fleet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void free_caches(fm_pool *p) {
  for (int r = 0; r < p->n_caches; r++)
    fm_cache_free(&p->caches[r]);
  free(p->caches);
  p->caches = NULL;
  p->n_caches = 0;
}

static int make_caches(fm_pool *p, const fm_pool_cfg *cfg) {
  fm_cache *c = calloc((size_t)cfg->replicas, sizeof(*c));
  if (!c) return -1;
  free_caches(p);
  uint32_t blocks = (uint32_t)(cfg->cache_tokens_per_replica / FM_CACHE_BLOCK_TOKENS);
  for (int r = 0; r < cfg->replicas; r++)
    fm_cache_init(&c[r], blocks);
  p->caches = c;
  p->n_caches = cfg->replicas;
  p->cache_epoch++;
  return 0;
}

int fm_fleet_init(fm_fleet *f, const fm_config *cfg, const fm_clock *clock, uint64_t seed,
                  bool instant) {
  memset(f, 0, sizeof(*f));
  f->pools = calloc(cfg->n_pools ? cfg->n_pools : 1, sizeof(fm_pool));
  if (!f->pools) return -1;
  f->n_pools = cfg->n_pools;
  for (size_t i = 0; i < cfg->n_pools; i++) {
    if (make_caches(&f->pools[i], &cfg->pools[i]) != 0) {
      fm_fleet_free(f);
      return -1;
    }
    f->pools[i].cfg = cfg->pools[i];
  }
  f->clock = clock;
  f->instant = instant;
  fm_rng_seed(&f->rng, seed);
  return 0;
}

void fm_fleet_free(fm_fleet *f) {
  for (size_t i = 0; f->pools && i < f->n_pools; i++)
    free_caches(&f->pools[i]);
  free(f->pools);
  memset(f, 0, sizeof(*f));
}

int fm_pool_running(const fm_pool *p) {
  return p->running[FM_TIER_PRIORITY] + p->running[FM_TIER_STANDARD] +
         p->running[FM_TIER_BACKGROUND];
}

double fm_pool_utilisation(const fm_pool *p) {
  return p->cfg.tenant_load + (double)fm_pool_running(p) / p->cfg.slots;
}

double fm_pool_demand(const fm_pool *p, fm_tier tier) {
  double slots = p->cfg.slots;
  double tenant_priority = p->cfg.tenant_load * p->cfg.tenant_priority_share;
  switch (tier) {
  case FM_TIER_PRIORITY:
    return tenant_priority + p->running[FM_TIER_PRIORITY] / slots;
  case FM_TIER_STANDARD:
    return p->cfg.tenant_load +
           (p->running[FM_TIER_PRIORITY] + p->running[FM_TIER_STANDARD]) / slots;
  default:
    return fm_pool_utilisation(p);
  }
}

double fm_pool_shed_probability(const fm_pool *p, fm_tier tier) {
  const fm_curve *c = &p->cfg.shed[tier];
  double d = fm_pool_demand(p, tier);
  if (d < c->start) return 0.0;
  if (d >= c->end) return 1.0;
  return (d - c->start) / (c->end - c->start);
}

/* One seeded draw against the tier's curve; true when the request may run. */
static bool draw_admits(fm_fleet *f, const fm_pool *p, fm_tier tier) {
  if (fm_pool_running(p) >= p->cfg.slots) return false; /* no real slot: no draw */
  f->draws++;
  return !fm_rng_chance(&f->rng, fm_pool_shed_probability(p, tier));
}

static void queue_push(fm_fleet *f, fm_pool *p, fm_ticket *t) {
  f->queued_total++;
  t->next = NULL;
  t->prev = p->queue_tail[t->tier];
  if (t->prev)
    t->prev->next = t;
  else
    p->queue_head[t->tier] = t;
  p->queue_tail[t->tier] = t;
  p->queued[t->tier]++;
  t->state = FM_TICKET_QUEUED;
}

static void queue_remove(fm_fleet *f, fm_pool *p, fm_ticket *t) {
  f->queued_total--;
  if (t->prev)
    t->prev->next = t->next;
  else
    p->queue_head[t->tier] = t->next;
  if (t->next)
    t->next->prev = t->prev;
  else
    p->queue_tail[t->tier] = t->prev;
  t->prev = t->next = NULL;
  p->queued[t->tier]--;
  t->state = FM_TICKET_IDLE;
}

static void run(fm_pool *p, fm_ticket *t) {
  t->state = FM_TICKET_RUNNING;
  p->running[t->tier]++;
}

/* Draws every queued request again, Priority first; admits the ones that pass. */
static void pump(fm_fleet *f, int pool) {
  fm_pool *p = &f->pools[pool];
  for (int tier = 0; tier < FM_TIER_N; tier++) {
    fm_ticket *t = p->queue_head[tier];
    while (t && fm_pool_running(p) < p->cfg.slots) {
      fm_ticket *next = t->next;
      if (draw_admits(f, p, (fm_tier)tier)) {
        queue_remove(f, p, t);
        run(p, t);
        t->decided(t, FM_ADMIT_OK);
      }
      t = next;
    }
  }
}

fm_admit fm_fleet_admit(fm_fleet *f, fm_ticket *t, int pool, fm_tier tier) {
  fm_pool *p = &f->pools[pool];
  uint64_t now = fm_clock_now(f->clock);
  t->pool = pool;
  t->tier = tier;
  t->queued_at_us = now;
  if (draw_admits(f, p, tier)) {
    run(p, t);
    return FM_ADMIT_OK;
  }
  double timeout_ms = f->instant ? 0 : p->cfg.queue_timeout_ms[tier];
  if (timeout_ms <= 0) return FM_ADMIT_SHED;
  t->deadline_us = now + (uint64_t)llround(timeout_ms * 1000.0);
  queue_push(f, p, t);
  return FM_ADMIT_QUEUED;
}

void fm_fleet_release(fm_fleet *f, fm_ticket *t) {
  fm_pool *p = &f->pools[t->pool];
  if (t->state == FM_TICKET_QUEUED) {
    queue_remove(f, p, t);
    return;
  }
  if (t->state != FM_TICKET_RUNNING) return;
  p->running[t->tier]--;
  t->state = FM_TICKET_IDLE;
  pump(f, t->pool); /* demand fell: the queue gets another draw */
}

int fm_fleet_set_pool(fm_fleet *f, int pool, const fm_pool_cfg *cfg) {
  fm_pool *p = &f->pools[pool];
  if ((cfg->replicas != p->cfg.replicas ||
       cfg->cache_tokens_per_replica != p->cfg.cache_tokens_per_replica) &&
      make_caches(p, cfg) != 0)
    return -1;
  p->cfg = *cfg;
  pump(f, pool);
  return 0;
}

void fm_fleet_clear_caches(fm_fleet *f) {
  for (size_t i = 0; i < f->n_pools; i++) {
    fm_pool *p = &f->pools[i];
    for (int r = 0; r < p->n_caches; r++)
      fm_cache_free(&p->caches[r]);
  }
}

fm_replica fm_fleet_pick_replica(fm_fleet *f, int pool, const char *affinity_key) {
  const fm_pool *p = &f->pools[pool];
  uint64_t n = (uint64_t)p->n_caches;
  fm_replica r = {.epoch = p->cache_epoch};
  if (affinity_key && *affinity_key)
    r.index = (int)(fm_mix64(fm_hash64(affinity_key, strlen(affinity_key), 0x61666631ULL)) % n);
  else
    r.index = (int)fm_rng_below(&f->rng, n);
  return r;
}

fm_cache *fm_fleet_replica_cache(fm_fleet *f, int pool, fm_replica *r, const char *affinity_key) {
  fm_pool *p = &f->pools[pool];
  if (r->epoch != p->cache_epoch || r->index < 0 || r->index >= p->n_caches)
    *r = fm_fleet_pick_replica(f, pool, affinity_key);
  return &p->caches[r->index];
}

void fm_fleet_expire(fm_fleet *f) {
  uint64_t now = fm_clock_now(f->clock);
  for (size_t i = 0; i < f->n_pools; i++) {
    fm_pool *p = &f->pools[i];
    for (int tier = 0; tier < FM_TIER_N; tier++) {
      fm_ticket *t = p->queue_head[tier];
      while (t) {
        fm_ticket *next = t->next;
        if (t->deadline_us <= now) {
          queue_remove(f, p, t);
          t->decided(t, FM_ADMIT_SHED);
        }
        t = next;
      }
    }
  }
}

/* Queues are FIFO with one timeout per tier, so each head holds its queue's
 * earliest deadline. (A timeout lowered live applies to requests queued
 * after the change; earlier ones keep the deadline they were given.) */
uint64_t fm_fleet_next_deadline(const fm_fleet *f) {
  uint64_t best = UINT64_MAX;
  if (f->queued_total == 0) return best; /* the loop asks every iteration; mostly none wait */
  for (size_t i = 0; i < f->n_pools; i++)
    for (int tier = 0; tier < FM_TIER_N; tier++) {
      const fm_ticket *t = f->pools[i].queue_head[tier];
      if (t && t->deadline_us < best) best = t->deadline_us;
    }
  return best;
}

uint64_t fm_fleet_first_token_us(fm_fleet *f, int pool, uint32_t uncached_prompt_tokens) {
  if (f->instant) return 0;
  const fm_pool_cfg *c = &f->pools[pool].cfg;
  double ms = c->ttft_ms + 1000.0 * uncached_prompt_tokens / c->prefill_tps;
  return (uint64_t)llround(ms * 1000.0);
}

uint64_t fm_fleet_token_gap_us(fm_fleet *f, int pool, fm_rng *rng) {
  if (f->instant) return 0;
  const fm_pool *p = &f->pools[pool];
  double gap = 1e6 / p->cfg.decode_tps;
  gap *= 1.0 + p->cfg.slowdown_at_full * fm_pool_utilisation(p);
  if (p->cfg.jitter > 0) gap *= 1.0 + p->cfg.jitter * (2.0 * fm_rng_unit(rng) - 1.0);
  return (uint64_t)llround(gap);
}
