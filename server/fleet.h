/* fleet.h — the simulated GPU fleet: pools, admission, and serving speed.
 *
 * A pool is the capacity behind one or more model ids. Each request holds a
 * ticket on its pool from admission until it ends for any reason; releasing
 * the ticket frees its slot at once. The fleet knows nothing of HTTP: it is
 * driven by the clock it is given, so tests run it with a manual clock. */
#ifndef FM_FLEET_H
#define FM_FLEET_H

#include "cache.h"
#include "clock.h"
#include "config.h"
#include "rng.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum { FM_ADMIT_OK, FM_ADMIT_QUEUED, FM_ADMIT_SHED } fm_admit;

typedef struct fm_ticket fm_ticket;
struct fm_ticket {
  fm_ticket *prev, *next; /* links in the pool's queue while queued */
  int pool;
  fm_tier tier;
  enum { FM_TICKET_IDLE, FM_TICKET_QUEUED, FM_TICKET_RUNNING } state;
  uint64_t queued_at_us;
  uint64_t deadline_us;
  /* Called once when a queued ticket is admitted (FM_ADMIT_OK) or times out (FM_ADMIT_SHED). */
  void (*decided)(fm_ticket *t, fm_admit outcome);
};

typedef struct fm_pool {
  fm_pool_cfg cfg;        /* live settings; PATCH and scenarios change them */
  int running[FM_TIER_N]; /* fleetmock's own requests holding a slot */
  int queued[FM_TIER_N];
  fm_ticket *queue_head[FM_TIER_N], *queue_tail[FM_TIER_N];
  fm_cache *caches; /* one prompt cache per replica */
  int n_caches;
  uint64_t cache_epoch; /* counts rebuilds of caches; a replica index is only good for one */
} fm_pool;

/* A request's replica: its index, and the generation of the pool's caches
 * that index points into. A pool that loses replicas while requests wait
 * rebuilds its caches smaller, so an index kept across the wait must be
 * checked against the epoch before it is used (fm_fleet_replica_cache). */
typedef struct fm_replica {
  int index;
  uint64_t epoch;
} fm_replica;

typedef struct fm_fleet {
  fm_pool *pools;
  size_t n_pools;
  const fm_clock *clock;
  fm_rng rng;          /* admission draws and per-request timing seeds */
  uint64_t draws;      /* admission draws taken, to check that runs repeat */
  bool instant;        /* --timing instant: every simulated delay is zero */
  size_t queued_total; /* tickets queued in all pools and tiers */
} fm_fleet;

/* Builds the fleet from a config (pools are copied). Returns 0 or -1 on OOM. */
int fm_fleet_init(fm_fleet *f, const fm_config *cfg, const fm_clock *clock, uint64_t seed,
                  bool instant);
void fm_fleet_free(fm_fleet *f);

/* Admits a request to a pool on a tier. FM_ADMIT_QUEUED means the ticket
 * waits and t->decided will be called later. */
fm_admit fm_fleet_admit(fm_fleet *f, fm_ticket *t, int pool, fm_tier tier);
/* Ends the ticket's claim, whatever state it is in. Safe to call twice. */
void fm_fleet_release(fm_fleet *f, fm_ticket *t);

/* Utilisation of a pool: tenant demand plus own running requests, over slots. */
double fm_pool_utilisation(const fm_pool *p);
/* The demand a tier competes with, as a fraction of slots (SPEC §4):
 * Priority sees Priority demand alone, Standard sees Priority and Standard,
 * Background sees everything. */
double fm_pool_demand(const fm_pool *p, fm_tier tier);
/* Probability that the tier's shed curve sheds a request at the current demand. */
double fm_pool_shed_probability(const fm_pool *p, fm_tier tier);
/* Requests fleetmock itself is running on the pool (all tiers). */
int fm_pool_running(const fm_pool *p);

/* Replaces a pool's live settings (PATCH, reset, scenarios). Queued requests
 * are drawn again against the new demand; a change of replicas or cache size
 * starts the pool's prompt caches afresh. Returns -1 on OOM (nothing changed). */
int fm_fleet_set_pool(fm_fleet *f, int pool, const fm_pool_cfg *cfg);
/* Empties every prompt cache (reset). */
void fm_fleet_clear_caches(fm_fleet *f);
/* Picks the replica for a request: by affinity key when there is one, else a seeded draw. */
fm_replica fm_fleet_pick_replica(fm_fleet *f, int pool, const char *affinity_key);
/* The prompt cache of r's replica. When the pool's caches were rebuilt since
 * r was picked (its replicas or cache size changed), r is picked again first
 * with the same affinity key, so a stale index never reaches the array. */
fm_cache *fm_fleet_replica_cache(fm_fleet *f, int pool, fm_replica *r, const char *affinity_key);
/* Sheds every queued request whose queue timeout has passed. */
void fm_fleet_expire(fm_fleet *f);
/* Earliest queue deadline over all pools, or UINT64_MAX when nothing waits. */
uint64_t fm_fleet_next_deadline(const fm_fleet *f);

/* Simulated time from admission to the first token, in microseconds. */
uint64_t fm_fleet_first_token_us(fm_fleet *f, int pool, uint32_t uncached_prompt_tokens);
/* Simulated gap before the next token, with jitter and the load slowdown. */
uint64_t fm_fleet_token_gap_us(fm_fleet *f, int pool, fm_rng *rng);

#endif
