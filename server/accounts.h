/* accounts.h — who is calling, and what they have used and spent.
 *
 * Any non-empty API key is an account of its own. Keys are kept only to
 * match them; everything shown (logs, admin, metrics) uses the key id, a
 * short stable hash such as "k-3f9a1c2b7d40". Totals are kept per account
 * and per serving path. */
#ifndef FM_ACCOUNTS_H
#define FM_ACCOUNTS_H

#include "config.h"
#include "ratelimit.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fm_usage {
  uint64_t requests;
  uint64_t ok;      /* answered 200 */
  uint64_t limited; /* answered 429 */
  uint64_t shed;    /* answered 503 by the fleet */
  uint64_t prompt_tokens;
  uint64_t cached_tokens;
  uint64_t generated_tokens;
  double cost_usd;
} fm_usage;

typedef struct fm_account {
  char *key;
  char key_id[16];
  const char *name;            /* from the config, "" for unlisted keys */
  const fm_limits_cfg *limits; /* the key's own limits or the defaults */
  fm_limiter *limiters;        /* one per model, made on first use */
  size_t n_limiters;
  double spent_usd;                    /* for the budget limit */
  uint64_t limited_by[FM_LIMIT_N + 1]; /* 429s by the limit that refused */
  uint64_t cache_lookups, cache_hits;  /* requests, and those with cached tokens */
  fm_usage by_path[FM_PATH_N];
} fm_account;

typedef struct fm_accounts {
  fm_account **slots; /* open addressing on the key hash */
  size_t cap;
  size_t n;
  const fm_accounts_cfg *cfg;
  size_t n_models;
} fm_accounts;

void fm_accounts_init(fm_accounts *a, const fm_accounts_cfg *cfg, size_t n_models);
void fm_accounts_free(fm_accounts *a);
/* Finds or creates the account for a key. Returns NULL when out of memory,
 * or when the config rejects unknown keys and this key is not listed. */
fm_account *fm_accounts_get(fm_accounts *a, const char *key);
/* The account's limiter for a model, brought up to now. NULL only on OOM. */
fm_limiter *fm_account_limiter(fm_account *acc, int model, size_t n_models, uint64_t now_us);
/* Zeroes usage, 429 counts and spend; limits go back to their start values. */
void fm_accounts_reset(fm_accounts *a, uint64_t now_us);
/* Finds an account by its key id; NULL when none. */
fm_account *fm_accounts_by_id(const fm_accounts *a, const char *key_id);
/* Compares two secrets in time independent of where they differ. */
bool fm_same_secret(const char *a, const char *b);
/* Writes the key id of a key into out (16 bytes). */
void fm_key_id(const char *key, char out[16]);

/* Cost in USD of a request on a price row: uncached input, cached input, output. */
double fm_cost_usd(const fm_price *price, uint64_t prompt_tokens, uint64_t cached_tokens,
                   uint64_t generated_tokens);

#endif
