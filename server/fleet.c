/* fleet.c — pools, admission and serving speed. */
#include "fleet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int fm_fleet_init(fm_fleet *f, const fm_config *cfg, const fm_clock *clock, uint64_t seed,
                  bool instant) {
  memset(f, 0, sizeof(*f));
  f->pools = calloc(cfg->n_pools ? cfg->n_pools : 1, sizeof(fm_pool));
  if (!f->pools) return -1;
  f->n_pools = cfg->n_pools;
  for (size_t i = 0; i < cfg->n_pools; i++) f->pools[i].cfg = cfg->pools[i];
  f->clock = clock;
  f->instant = instant;
  fm_rng_seed(&f->rng, seed);
  return 0;
}

void fm_fleet_free(fm_fleet *f) {
  free(f->pools);
  memset(f, 0, sizeof(*f));
}

static int own_running(const fm_pool *p) {
  int n = 0;
  for (int t = 0; t < FM_TIER_N; t++) n += p->running[t];
  return n;
}

double fm_pool_utilisation(const fm_pool *p) {
  return p->cfg.tenant_load + (double)own_running(p) / p->cfg.slots;
}

fm_admit fm_fleet_admit(fm_fleet *f, fm_ticket *t, int pool, fm_tier tier) {
  fm_pool *p = &f->pools[pool];
  t->pool = pool;
  t->tier = tier;
  t->state = FM_TICKET_RUNNING;
  p->running[tier]++;
  return FM_ADMIT_OK;
}

void fm_fleet_release(fm_fleet *f, fm_ticket *t) {
  if (t->state == FM_TICKET_RUNNING) f->pools[t->pool].running[t->tier]--;
  t->state = FM_TICKET_IDLE;
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
