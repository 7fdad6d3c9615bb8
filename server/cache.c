/* cache.c — block-chained prompt prefixes and a bounded LRU per replica.
 *
 * The table uses linear probing with backward-shift deletion, so there are
 * no tombstones and a lookup never walks more than the cluster it lands in. */
#include "cache.h"

#include "rng.h"

#include <stdbool.h>

#include <stdlib.h>
#include <string.h>

void fm_prefix_init(fm_prefix *p) {
  memset(p, 0, sizeof(*p));
  p->chain = 0x70726566ULL;
}

void fm_prefix_free(fm_prefix *p) {
  free(p->blocks);
  memset(p, 0, sizeof(*p));
}

static void push_block(fm_prefix *p) {
  p->chain = fm_mix64(fm_hash64(p->buf, FM_CACHE_BLOCK_BYTES, p->chain));
  if (p->n == p->cap) {
    uint32_t cap = p->cap ? p->cap * 2 : 16;
    uint64_t *b = realloc(p->blocks, cap * sizeof(*b));
    if (!b) return; /* the prompt just caches less */
    p->blocks = b;
    p->cap = cap;
  }
  p->blocks[p->n++] = p->chain;
}

void fm_prefix_add(fm_prefix *p, const void *data, size_t len) {
  const unsigned char *s = data;
  p->digest = fm_hash64(s, len, p->digest);
  p->bytes += len;
  while (len > 0) {
    size_t take = FM_CACHE_BLOCK_BYTES - p->fill;
    if (take > len) take = len;
    memcpy(p->buf + p->fill, s, take);
    p->fill += (uint32_t)take;
    s += take;
    len -= take;
    if (p->fill == FM_CACHE_BLOCK_BYTES) {
      push_block(p);
      p->fill = 0;
    }
  }
}

void fm_cache_init(fm_cache *c, uint32_t capacity_blocks) {
  memset(c, 0, sizeof(*c));
  c->capacity = capacity_blocks;
}

void fm_cache_free(fm_cache *c) {
  free(c->e);
  free(c->table);
  uint32_t cap = c->capacity;
  fm_cache_init(c, cap);
}

static uint32_t slot_of(const fm_cache *c, uint64_t name) {
  return (uint32_t)(fm_mix64(name) & (c->table_size - 1));
}

/* Table position holding name, or the empty position where it would go. */
static uint32_t find(const fm_cache *c, uint64_t name) {
  uint32_t i = slot_of(c, name);
  while (c->table[i] && c->e[c->table[i] - 1].name != name)
    i = (i + 1) & (c->table_size - 1);
  return i;
}

static void lru_unlink(fm_cache *c, uint32_t idx) {
  fm_cache_entry *x = &c->e[idx - 1];
  if (x->prev)
    c->e[x->prev - 1].next = x->next;
  else
    c->head = x->next;
  if (x->next)
    c->e[x->next - 1].prev = x->prev;
  else
    c->tail = x->prev;
  x->prev = x->next = 0;
}

static void lru_push_front(fm_cache *c, uint32_t idx) {
  fm_cache_entry *x = &c->e[idx - 1];
  x->prev = 0;
  x->next = c->head;
  if (c->head) c->e[c->head - 1].prev = idx;
  c->head = idx;
  if (!c->tail) c->tail = idx;
}

/* Removes the entry at table position i, shifting its cluster back. */
static void table_delete(fm_cache *c, uint32_t i) {
  uint32_t mask = c->table_size - 1;
  c->table[i] = 0;
  for (uint32_t j = (i + 1) & mask; c->table[j]; j = (j + 1) & mask) {
    uint32_t home = slot_of(c, c->e[c->table[j] - 1].name);
    /* Move j back to i when its home is not in the cyclic range (i, j]. */
    bool stay = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stay) continue;
    c->table[i] = c->table[j];
    c->table[j] = 0;
    i = j;
  }
}

static int grow(fm_cache *c) {
  uint32_t cap = c->cap_alloc ? c->cap_alloc * 2 : 256;
  if (cap > c->capacity) cap = c->capacity;
  fm_cache_entry *e = realloc(c->e, cap * sizeof(*e));
  if (!e) return -1;
  c->e = e;
  uint32_t ts = 16;
  while (ts < cap * 2)
    ts *= 2;
  if (ts != c->table_size) {
    uint32_t *t = calloc(ts, sizeof(*t));
    if (!t) return -1;
    free(c->table);
    c->table = t;
    c->table_size = ts;
    for (uint32_t k = 0; k < c->n; k++)
      c->table[find(c, c->e[k].name)] = k + 1;
  }
  c->cap_alloc = cap;
  return 0;
}

uint32_t fm_cache_lookup(fm_cache *c, const fm_prefix *p, uint64_t salt) {
  if (!c->table) return 0;
  uint32_t hit = 0;
  for (; hit < p->n; hit++) {
    uint32_t i = find(c, fm_mix64(p->blocks[hit] ^ salt));
    if (!c->table[i]) break;
    lru_unlink(c, c->table[i]);
    lru_push_front(c, c->table[i]);
  }
  return hit;
}

int fm_cache_insert(fm_cache *c, const fm_prefix *p, uint64_t salt) {
  if (c->capacity == 0) return 0;
  for (uint32_t b = 0; b < p->n; b++) {
    uint64_t name = fm_mix64(p->blocks[b] ^ salt);
    if (c->table) {
      uint32_t i = find(c, name);
      if (c->table[i]) {
        lru_unlink(c, c->table[i]);
        lru_push_front(c, c->table[i]);
        continue;
      }
    }
    uint32_t idx;
    if (c->n < c->capacity && c->n == c->cap_alloc && grow(c) != 0) return -1;
    if (c->n < c->cap_alloc) {
      idx = ++c->n;
    } else { /* full: reuse the least recently used entry */
      idx = c->tail;
      lru_unlink(c, idx);
      table_delete(c, find(c, c->e[idx - 1].name));
    }
    c->e[idx - 1].name = name;
    c->table[find(c, name)] = idx;
    lru_push_front(c, idx);
  }
  return 0;
}
