/* accounts.c — the account table and request costing. */
#include "accounts.h"

#include "rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fm_key_id(const char *key, char out[16]) {
  uint64_t h = fm_mix64(fm_hash64(key, strlen(key), 0x6b6579ULL));
  snprintf(out, 16, "k-%012llx", (unsigned long long)(h >> 16));
}

void fm_accounts_init(fm_accounts *a) {
  memset(a, 0, sizeof(*a));
}

void fm_accounts_free(fm_accounts *a) {
  for (size_t i = 0; i < a->cap; i++) {
    if (!a->slots[i]) continue;
    free(a->slots[i]->key);
    free(a->slots[i]);
  }
  free(a->slots);
  memset(a, 0, sizeof(*a));
}

static size_t slot_of(const fm_accounts *a, const char *key) {
  size_t i = (size_t)fm_hash64(key, strlen(key), 0) & (a->cap - 1);
  while (a->slots[i] && strcmp(a->slots[i]->key, key) != 0) i = (i + 1) & (a->cap - 1);
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
  fm_account *acc = calloc(1, sizeof(*acc));
  if (!acc || !(acc->key = strdup(key))) {
    free(acc);
    return NULL;
  }
  fm_key_id(key, acc->key_id);
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
