/* accounts.c — the account table and request costing. */
#include "accounts.h"

#include "rng.h"

#include <stdbool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fm_key_id(const char *key, char out[16]) {
  uint64_t h = fm_mix64(fm_hash64(key, strlen(key), 0x6b6579ULL));
  snprintf(out, 16, "k-%012llx", (unsigned long long)(h >> 16));
}

void fm_accounts_init(fm_accounts *a, const fm_accounts_cfg *cfg, size_t n_models) {
  memset(a, 0, sizeof(*a));
  a->cfg = cfg;
  a->n_models = n_models;
}

/* Compares without an early exit, so timing does not reveal how much matched. */
bool fm_same_secret(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char diff = (unsigned char)(la != lb);
  for (size_t i = 0; i < la; i++)
    diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
  return diff == 0;
}

static const fm_key_cfg *listed(const fm_accounts_cfg *cfg, const char *key) {
  const fm_key_cfg *found = NULL;
  for (size_t i = 0; i < cfg->n_keys; i++) /* no early exit: constant time in the key */
    if (fm_same_secret(key, cfg->keys[i].key) && !found) found = &cfg->keys[i];
  return found;
}

fm_limiter *fm_account_limiter(fm_account *acc, int model, size_t n_models, uint64_t now_us) {
  if (!acc->limiters) {
    acc->limiters = calloc(n_models, sizeof(fm_limiter));
    if (!acc->limiters) return NULL;
    acc->n_limiters = n_models;
    for (size_t i = 0; i < n_models; i++)
      fm_limiter_init(&acc->limiters[i], acc->limits, now_us);
  }
  fm_limiter *l = &acc->limiters[model];
  fm_limiter_advance(l, acc->limits, now_us);
  l->touched = true;
  return l;
}

void fm_accounts_reset(fm_accounts *a, uint64_t now_us) {
  for (size_t i = 0; i < a->cap; i++) {
    fm_account *acc = a->slots[i];
    if (!acc) continue;
    memset(acc->by_path, 0, sizeof(acc->by_path));
    memset(acc->limited_by, 0, sizeof(acc->limited_by));
    acc->spent_usd = 0;
    acc->cache_lookups = acc->cache_hits = 0;
    /* Re-armed in place: requests in flight still point at them. */
    for (size_t m = 0; m < acc->n_limiters; m++)
      fm_limiter_init(&acc->limiters[m], acc->limits, now_us);
  }
}

void fm_accounts_free(fm_accounts *a) {
  for (size_t i = 0; i < a->cap; i++) {
    if (!a->slots[i]) continue;
    free(a->slots[i]->key);
    free(a->slots[i]->limiters);
    free(a->slots[i]);
  }
  free(a->slots);
  memset(a, 0, sizeof(*a));
}

static size_t slot_of(const fm_accounts *a, const char *key) {
  size_t i = (size_t)fm_hash64(key, strlen(key), 0) & (a->cap - 1);
  while (a->slots[i] && !fm_same_secret(a->slots[i]->key, key))
    i = (i + 1) & (a->cap - 1);
  return i;
}

static int grow(fm_accounts *a) {
  size_t cap = a->cap ? a->cap * 2 : 64;
  fm_account **old = a->slots;
  size_t old_cap = a->cap;
  a->slots = calloc(cap, sizeof(*a->slots));
  if (!a->slots) {
    a->slots = old;
    return -1;
  }
  a->cap = cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i]) a->slots[slot_of(a, old[i]->key)] = old[i];
  free(old);
  return 0;
}

fm_account *fm_accounts_get(fm_accounts *a, const char *key) {
  if ((a->n + 1) * 4 > a->cap * 3 && grow(a) != 0) return NULL;
  size_t i = slot_of(a, key);
  if (a->slots[i]) return a->slots[i];
  const fm_key_cfg *k = a->cfg ? listed(a->cfg, key) : NULL;
  if (!k && a->cfg && a->cfg->reject_unknown_keys) return NULL;
  fm_account *acc = calloc(1, sizeof(*acc));
  if (!acc || !(acc->key = strdup(key))) {
    free(acc);
    return NULL;
  }
  fm_key_id(key, acc->key_id);
  acc->name = k ? k->name : "";
  acc->limits = k ? &k->limits : &a->cfg->limits;
  a->slots[i] = acc;
  a->n++;
  return acc;
}

fm_account *fm_accounts_by_id(const fm_accounts *a, const char *key_id) {
  for (size_t i = 0; i < a->cap; i++)
    if (a->slots[i] && strcmp(a->slots[i]->key_id, key_id) == 0) return a->slots[i];
  return NULL;
}

double fm_cost_usd(const fm_price *price, uint64_t prompt_tokens, uint64_t cached_tokens,
                   uint64_t generated_tokens) {
  uint64_t uncached = prompt_tokens > cached_tokens ? prompt_tokens - cached_tokens : 0;
  return ((double)uncached * price->input + (double)cached_tokens * price->cached +
          (double)generated_tokens * price->output) /
         1e6;
}
