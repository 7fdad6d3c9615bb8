/* accounts.c — the bounded account table, its eviction, and request costing.
 *
 * The table is open addressing with linear probing, hashed on the key id's
 * bits (a mixed 64-bit hash of the key), so a key and its key id land on the
 * same slot and both lookups are O(1). Deletion shifts the rest of the
 * cluster back (Knuth's algorithm R) instead of leaving tombstones: under the
 * churn of millions of one-off keys, tombstones would fill the table and
 * every miss would probe to the end. The key id bits sit in an array beside
 * the pointers, so a probe compares them without touching the account, and
 * listing a page reads one dense array instead of every account. */
#include "accounts.h"

#include "rng.h"

#include <stdbool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t id_bits_of(const char *key) {
  return fm_mix64(fm_hash64(key, strlen(key), 0x6b6579ULL)) >> 16;
}

void fm_key_id(const char *key, char out[16]) {
  snprintf(out, 16, "k-%012llx", (unsigned long long)id_bits_of(key));
}

bool fm_key_id_parse(const char *key_id, uint64_t *bits) {
  if (strncmp(key_id, "k-", 2) != 0 || strlen(key_id) != 14) return false;
  uint64_t v = 0;
  for (const char *p = key_id + 2; *p; p++) {
    int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | (uint64_t)d;
  }
  *bits = v;
  return true;
}

void fm_accounts_init(fm_accounts *a, const fm_accounts_cfg *cfg, size_t n_models, size_t max) {
  memset(a, 0, sizeof(*a));
  a->cfg = cfg;
  a->n_models = n_models;
  a->max = max ? max : 1;
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
    acc->limiters = calloc(n_models, sizeof(*acc->limiters));
    if (!acc->limiters) return NULL;
    acc->n_limiters = n_models;
  }
  fm_limiter *l = acc->limiters[model];
  if (!l) { /* most keys use one model or two: a limiter for each of them only */
    l = acc->limiters[model] = calloc(1, sizeof(*l));
    if (!l) return NULL;
    fm_limiter_init(l, acc->limits, now_us);
  }
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
      if (acc->limiters[m]) fm_limiter_init(acc->limiters[m], acc->limits, now_us);
  }
  memset(&a->all, 0, sizeof(a->all));
  memset(&a->evicted, 0, sizeof(a->evicted));
  a->n_evicted = 0;
}

static void account_free(fm_account *acc) {
  free(acc->key);
  for (size_t m = 0; m < acc->n_limiters; m++)
    free(acc->limiters[m]);
  free(acc->limiters);
  free(acc);
}

void fm_accounts_free(fm_accounts *a) {
  for (size_t i = 0; i < a->cap; i++)
    if (a->slots[i]) account_free(a->slots[i]);
  free(a->slots);
  free(a->bits);
  memset(a, 0, sizeof(*a));
}

/* ---- the idle list -------------------------------------------------------- */

static bool idle_listed(const fm_account *acc) {
  return !acc->named && acc->in_flight == 0;
}

static void lru_unlink(fm_accounts *a, fm_account *acc) {
  if (acc->lru_prev)
    acc->lru_prev->lru_next = acc->lru_next;
  else
    a->lru_head = acc->lru_next;
  if (acc->lru_next)
    acc->lru_next->lru_prev = acc->lru_prev;
  else
    a->lru_tail = acc->lru_prev;
  acc->lru_prev = acc->lru_next = NULL;
}

static void lru_push_head(fm_accounts *a, fm_account *acc) {
  acc->lru_prev = NULL;
  acc->lru_next = a->lru_head;
  if (a->lru_head)
    a->lru_head->lru_prev = acc;
  else
    a->lru_tail = acc;
  a->lru_head = acc;
}

void fm_accounts_hold(fm_accounts *a, fm_account *acc) {
  if (idle_listed(acc)) lru_unlink(a, acc);
  acc->in_flight++;
}

void fm_accounts_release(fm_accounts *a, fm_account *acc) {
  if (acc->in_flight == 0) return; /* unbalanced: nothing to give back */
  if (--acc->in_flight == 0 && !acc->named) lru_push_head(a, acc);
  fm_accounts_trim(a, 0);
}

/* ---- the table ------------------------------------------------------------ */

/* The slot holding acc, or the empty slot where a key with these bits would go. */
static size_t slot_of_key(const fm_accounts *a, const char *key, uint64_t bits) {
  size_t mask = a->cap - 1, i = (size_t)bits & mask;
  while (a->slots[i] && !(a->bits[i] == bits && fm_same_secret(a->slots[i]->key, key)))
    i = (i + 1) & mask;
  return i;
}

static size_t slot_of_account(const fm_accounts *a, const fm_account *acc) {
  size_t mask = a->cap - 1, i = (size_t)acc->id_bits & mask;
  while (a->slots[i] != acc)
    i = (i + 1) & mask;
  return i;
}

/* Empties slot i, then moves back every later entry of the cluster that may
 * live there: one whose home is not cyclically inside (i, j]. */
static void table_remove(fm_accounts *a, size_t i) {
  size_t mask = a->cap - 1;
  for (size_t j = (i + 1) & mask; a->slots[j]; j = (j + 1) & mask) {
    size_t home = (size_t)a->bits[j] & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      a->slots[i] = a->slots[j];
      a->bits[i] = a->bits[j];
      i = j;
    }
  }
  a->slots[i] = NULL;
  a->bits[i] = 0;
  a->n--;
}

static int grow(fm_accounts *a) {
  size_t cap = a->cap ? a->cap * 2 : 64;
  fm_account **slots = calloc(cap, sizeof(*slots));
  uint64_t *bits = calloc(cap, sizeof(*bits));
  if (!slots || !bits) {
    free(slots);
    free(bits);
    return -1;
  }
  for (size_t i = 0; i < a->cap; i++) {
    if (!a->slots[i]) continue;
    size_t j = (size_t)a->bits[i] & (cap - 1);
    while (slots[j])
      j = (j + 1) & (cap - 1);
    slots[j] = a->slots[i];
    bits[j] = a->bits[i];
  }
  free(a->slots);
  free(a->bits);
  a->slots = slots;
  a->bits = bits;
  a->cap = cap;
  return 0;
}

void fm_tally_add(fm_tally *t, const fm_account *acc) {
  for (int p = 0; p < FM_PATH_N; p++) {
    fm_usage *u = &t->by_path[p];
    const fm_usage *v = &acc->by_path[p];
    u->requests += v->requests;
    u->ok += v->ok;
    u->limited += v->limited;
    u->over_budget += v->over_budget;
    u->shed += v->shed;
    u->prompt_tokens += v->prompt_tokens;
    u->cached_tokens += v->cached_tokens;
    u->generated_tokens += v->generated_tokens;
    u->cost_usd += v->cost_usd;
  }
  for (int k = 0; k <= FM_LIMIT_N; k++)
    t->limited_by[k] += acc->limited_by[k];
  t->cache_lookups += acc->cache_lookups;
  t->cache_hits += acc->cache_hits;
  t->spent_usd += acc->spent_usd;
}

size_t fm_accounts_trim(fm_accounts *a, size_t room) {
  size_t keep = a->max > room ? a->max - room : 0, gone = 0;
  while (a->n > keep && a->lru_tail) {
    fm_account *acc = a->lru_tail;
    lru_unlink(a, acc);
    fm_tally_add(&a->evicted, acc);
    table_remove(a, slot_of_account(a, acc));
    account_free(acc);
    a->n_evicted++;
    gone++;
  }
  return gone;
}

fm_account *fm_accounts_get(fm_accounts *a, const char *key) {
  if (!a->cap && grow(a) != 0) return NULL;
  uint64_t bits = id_bits_of(key);
  size_t i = slot_of_key(a, key, bits);
  fm_account *acc = a->slots[i];
  if (acc) {
    if (idle_listed(acc) && a->lru_head != acc) { /* most recently used */
      lru_unlink(a, acc);
      lru_push_head(a, acc);
    }
    return acc;
  }
  const fm_key_cfg *k = a->cfg ? listed(a->cfg, key) : NULL;
  if (!k && a->cfg && a->cfg->reject_unknown_keys) return NULL;
  /* Make room first; evicting or growing moves entries, so find the slot again. */
  if (fm_accounts_trim(a, 1) || (a->n + 1) * 4 > a->cap * 3) {
    if ((a->n + 1) * 4 > a->cap * 3 && grow(a) != 0) return NULL;
    i = slot_of_key(a, key, bits);
  }
  acc = calloc(1, sizeof(*acc));
  if (!acc || !(acc->key = strdup(key))) {
    free(acc);
    return NULL;
  }
  acc->id_bits = bits;
  snprintf(acc->key_id, sizeof(acc->key_id), "k-%012llx", (unsigned long long)bits);
  acc->named = k != NULL;
  acc->name = k ? k->name : "";
  acc->limits = k ? &k->limits : &a->cfg->limits;
  a->slots[i] = acc;
  a->bits[i] = bits;
  a->n++;
  if (!acc->named) lru_push_head(a, acc);
  return acc;
}

fm_account *fm_accounts_by_id(const fm_accounts *a, const char *key_id) {
  uint64_t bits;
  if (!a->cap || !fm_key_id_parse(key_id, &bits)) return NULL;
  size_t mask = a->cap - 1;
  for (size_t i = (size_t)bits & mask; a->slots[i]; i = (i + 1) & mask)
    if (a->bits[i] == bits) return a->slots[i];
  return NULL;
}

/* ---- listing -------------------------------------------------------------- */

/* A max-heap on id_bits holds the `limit` smallest ids seen so far. */
static void heap_down(fm_account **h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, top = i;
    if (l < n && h[l]->id_bits > h[top]->id_bits) top = l;
    if (r < n && h[r]->id_bits > h[top]->id_bits) top = r;
    if (top == i) return;
    fm_account *t = h[i];
    h[i] = h[top];
    h[top] = t;
    i = top;
  }
}

static void heap_up(fm_account **h, size_t i) {
  while (i > 0 && h[(i - 1) / 2]->id_bits < h[i]->id_bits) {
    fm_account *t = h[i];
    h[i] = h[(i - 1) / 2];
    h[(i - 1) / 2] = t;
    i = (i - 1) / 2;
  }
}

size_t fm_accounts_page(const fm_accounts *a, const uint64_t *after, size_t limit, fm_account **out,
                        bool *more) {
  size_t n = 0, matched = 0;
  for (size_t i = 0; i < a->cap; i++) {
    if (!a->slots[i] || (after && a->bits[i] <= *after)) continue;
    matched++;
    if (n < limit) {
      out[n] = a->slots[i];
      heap_up(out, n++);
    } else if (limit && a->bits[i] < out[0]->id_bits) {
      out[0] = a->slots[i];
      heap_down(out, n, 0);
    }
  }
  *more = matched > n;
  for (size_t k = n; k > 1; k--) { /* heap sort: ascending ids */
    fm_account *t = out[0];
    out[0] = out[k - 1];
    out[k - 1] = t;
    heap_down(out, k - 1, 0);
  }
  return n;
}

/* ---- usage ---------------------------------------------------------------- */

static void usage_add(fm_usage *u, int status, uint64_t prompt, uint64_t cached, uint64_t generated,
                      double cost) {
  u->requests++;
  switch (status) {
  case 200:
    u->ok++;
    u->prompt_tokens += prompt;
    u->cached_tokens += cached;
    u->generated_tokens += generated;
    u->cost_usd += cost;
    break;
  case 402:
    u->over_budget++;
    break;
  case 429:
    u->limited++;
    break;
  case 503:
  case 529:
    u->shed++;
    break;
  default: /* an injected fault's status: counted as a request only */
    break;
  }
}

void fm_accounts_bill(fm_accounts *a, fm_account *acc, fm_path path, int status,
                      uint64_t prompt_tokens, uint64_t cached_tokens, uint64_t generated_tokens,
                      double cost_usd) {
  usage_add(&acc->by_path[path], status, prompt_tokens, cached_tokens, generated_tokens, cost_usd);
  usage_add(&a->all.by_path[path], status, prompt_tokens, cached_tokens, generated_tokens,
            cost_usd);
  if (status != 200) return;
  acc->spent_usd += cost_usd;
  a->all.spent_usd += cost_usd;
}

void fm_accounts_refused(fm_accounts *a, fm_account *acc, fm_limit_kind kind) {
  acc->limited_by[kind]++;
  a->all.limited_by[kind]++;
}

void fm_accounts_cache_lookup(fm_accounts *a, fm_account *acc, bool hit) {
  acc->cache_lookups++;
  a->all.cache_lookups++;
  if (!hit) return;
  acc->cache_hits++;
  a->all.cache_hits++;
}

double fm_cost_usd(const fm_price *price, uint64_t prompt_tokens, uint64_t cached_tokens,
                   uint64_t generated_tokens) {
  uint64_t uncached = prompt_tokens > cached_tokens ? prompt_tokens - cached_tokens : 0;
  return ((double)uncached * price->input + (double)cached_tokens * price->cached +
          (double)generated_tokens * price->output) /
         1e6;
}
