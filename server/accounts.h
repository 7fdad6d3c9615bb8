/* accounts.h — who is calling, and what they have used and spent.
 *
 * Any non-empty API key is an account of its own. Keys are kept only to
 * match them; everything shown (logs, admin, metrics) uses the key id, a
 * short stable hash such as "k-3f9a1c2b7d40". Totals are kept per account
 * and per serving path. */
#ifndef FM_ACCOUNTS_H
#define FM_ACCOUNTS_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fm_usage {
  uint64_t requests;
  uint64_t ok;        /* answered 200 */
  uint64_t limited;   /* answered 429 */
  uint64_t shed;      /* answered 503 by the fleet */
  uint64_t prompt_tokens;
  uint64_t cached_tokens;
  uint64_t generated_tokens;
  double cost_usd;
} fm_usage;

typedef struct fm_account {
  char *key;
  char key_id[16];
  fm_usage by_path[FM_PATH_N];
} fm_account;

typedef struct fm_accounts {
  fm_account **slots; /* open addressing on the key hash */
  size_t cap;
  size_t n;
} fm_accounts;

void fm_accounts_init(fm_accounts *a);
void fm_accounts_free(fm_accounts *a);
/* Finds or creates the account for a key. Returns NULL only when out of memory. */
fm_account *fm_accounts_get(fm_accounts *a, const char *key);
/* Finds an account by its key id; NULL when none. */
fm_account *fm_accounts_by_id(const fm_accounts *a, const char *key_id);
/* Writes the key id of a key into out (16 bytes). */
void fm_key_id(const char *key, char out[16]);

/* Cost in USD of a request on a price row: uncached input, cached input, output. */
double fm_cost_usd(const fm_price *price, uint64_t prompt_tokens, uint64_t cached_tokens,
                   uint64_t generated_tokens);

#endif
