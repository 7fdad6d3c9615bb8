/* accounts.h — who is calling, and what they have used and spent.
 *
 * Any non-empty API key is an account of its own. Keys are kept only to
 * match them; everything shown (logs, admin, metrics) uses the key id, a
 * short stable hash such as "k-3f9a1c2b7d40". Totals are kept per account
 * and per serving path.
 *
 * The table is bounded (server.max_accounts), because a load test that sends
 * a fresh key per user would otherwise grow it without end. When it is full,
 * a new key takes the place of the least recently used idle account that the
 * config does not name. Usage is recorded through fm_accounts_bill and its
 * siblings, which add it to the account and to `all`, the running totals
 * of every account since the last reset: sums over accounts stay exact
 * after eviction and cost nothing to read. An evicted account's own totals
 * are folded into `evicted`, so what the listed accounts no longer show is
 * known too (all = evicted + the accounts held). An account is idle when no
 * request in flight points at it (fm_accounts_hold / fm_accounts_release):
 * requests keep pointers to the account and into its limiters, so one in use
 * is never freed. When every account is named or in use, the new key is
 * still served and the table runs over its bound by that many; the excess is
 * bounded by the number of named keys plus the requests in flight (itself
 * bounded by the connection limit), and is trimmed as soon as those
 * requests end. */
#ifndef FM_ACCOUNTS_H
#define FM_ACCOUNTS_H

#include "config.h"
#include "ratelimit.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fm_usage {
  uint64_t requests;
  uint64_t ok;          /* answered 200 */
  uint64_t limited;     /* answered 429 by a rate limit */
  uint64_t over_budget; /* answered 402: the spend limit was reached */
  uint64_t shed;        /* answered 503 by the fleet */
  uint64_t prompt_tokens;
  uint64_t cached_tokens;
  uint64_t generated_tokens;
  double cost_usd;
} fm_usage;

typedef struct fm_account {
  char *key;
  char key_id[16];
  uint64_t id_bits;            /* the 48 bits the key id shows; also the table's hash */
  const char *name;            /* from the config, "" for unlisted keys */
  bool named;                  /* listed in the config: never evicted */
  uint32_t in_flight;          /* requests pointing at it: never evicted while > 0 */
  struct fm_account *lru_prev; /* on the idle list (unnamed, in_flight 0) only */
  struct fm_account *lru_next;
  const fm_limits_cfg *limits; /* the key's own limits or the defaults */
  fm_limiter **limiters;       /* by model; each made when the key first uses that model */
  size_t n_limiters;
  double spent_usd;                    /* for the budget limit */
  uint64_t limited_by[FM_LIMIT_N + 1]; /* refusals by limit: 429s, and 402s for budget */
  uint64_t cache_lookups, cache_hits;  /* requests, and those with cached tokens */
  fm_usage by_path[FM_PATH_N];
} fm_account;

/* What a set of accounts used, summed: all of them, or the evicted ones. */
typedef struct fm_tally {
  fm_usage by_path[FM_PATH_N];
  uint64_t limited_by[FM_LIMIT_N + 1];
  uint64_t cache_lookups, cache_hits;
  double spent_usd;
} fm_tally;

/* Bound: `max` accounts (server.max_accounts), exceeded only by accounts
 * that are named or in use (see the top of this file). Lookups by key and
 * by key id are O(1): open addressing with linear probing on id_bits, and
 * backward-shift deletion, so no tombstones pile up under churn. The idle
 * list is intrusive (most recently used at the head), so a request costs
 * no allocation and eviction pops the tail. */
typedef struct fm_accounts {
  fm_account **slots;
  uint64_t *bits; /* slots[i]->id_bits, beside it: probes and listing scan this array */
  size_t cap;     /* a power of two; the table grows until n reaches max */
  size_t n;
  size_t max;
  fm_account *lru_head, *lru_tail; /* idle unnamed accounts, most recent first */
  fm_tally all;                    /* every account's usage since the last reset */
  fm_tally evicted;                /* the part of `all` that evicted accounts had */
  uint64_t n_evicted;
  const fm_accounts_cfg *cfg;
  size_t n_models;
} fm_accounts;

/* max is server.max_accounts (at least 1). */
void fm_accounts_init(fm_accounts *a, const fm_accounts_cfg *cfg, size_t n_models, size_t max);
void fm_accounts_free(fm_accounts *a);
/* Finds or creates the account for a key and marks it most recently used;
 * creating one in a full table evicts first (fm_accounts_trim). Returns
 * NULL when out of memory, or when the config rejects unknown keys and this
 * key is not listed. The pointer is good until the next fm_accounts_get or
 * release, unless the account is held. */
fm_account *fm_accounts_get(fm_accounts *a, const char *key);
/* A request now points at the account (and its limiters): it is not evicted
 * until the matching fm_accounts_release. */
void fm_accounts_hold(fm_accounts *a, fm_account *acc);
/* The request has ended: at zero holds the account is idle again, most
 * recently used, and a table over its bound is trimmed back. */
void fm_accounts_release(fm_accounts *a, fm_account *acc);
/* The eviction policy, in one place: evicts idle unnamed accounts, least
 * recently used first, until at most max - room are held or none is left to
 * evict. Each one's totals go into a->evicted. Returns how many went. */
size_t fm_accounts_trim(fm_accounts *a, size_t room);
/* Records one answered request on the account and in the totals: 200s with
 * their tokens and cost (added to spent_usd), 402, 429, and 503/529 counted. */
void fm_accounts_bill(fm_accounts *a, fm_account *acc, fm_path path, int status,
                      uint64_t prompt_tokens, uint64_t cached_tokens, uint64_t generated_tokens,
                      double cost_usd);
/* Records a refusal by a limit (429, or 402 for FM_LIMIT_BUDGET). */
void fm_accounts_refused(fm_accounts *a, fm_account *acc, fm_limit_kind kind);
/* Records a prompt-cache lookup, and whether it found cached tokens. */
void fm_accounts_cache_lookup(fm_accounts *a, fm_account *acc, bool hit);
/* The account's limiter for a model, brought up to now. NULL only on OOM. */
fm_limiter *fm_account_limiter(fm_account *acc, int model, size_t n_models, uint64_t now_us);
/* Zeroes usage, refusal counts and spend, and the totals; limits go back to
 * their start values. Accounts stay (requests in flight point at them). */
void fm_accounts_reset(fm_accounts *a, uint64_t now_us);
/* Finds an account by its key id; NULL when none (or the id is malformed). */
fm_account *fm_accounts_by_id(const fm_accounts *a, const char *key_id);
/* Parses a key id ("k-" and 12 lower-case hex digits) into its bits; false when malformed. */
bool fm_key_id_parse(const char *key_id, uint64_t *bits);
/* Up to limit accounts whose key id bits are above *after (after NULL: from
 * the start), in key id order, into out. *more tells whether accounts past
 * them remain. One pass over `bits`, O(cap + n log limit); returns how many
 * were written. */
size_t fm_accounts_page(const fm_accounts *a, const uint64_t *after, size_t limit, fm_account **out,
                        bool *more);
/* Adds what one account used into a tally. */
void fm_tally_add(fm_tally *t, const fm_account *acc);
/* Compares two secrets in time independent of where they differ. */
bool fm_same_secret(const char *a, const char *b);
/* Writes the key id of a key into out (16 bytes). */
void fm_key_id(const char *key, char out[16]);

/* Cost in USD of a request on a price row: uncached input, cached input, output. */
double fm_cost_usd(const fm_price *price, uint64_t prompt_tokens, uint64_t cached_tokens,
                   uint64_t generated_tokens);

#endif
