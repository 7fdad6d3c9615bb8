/* cache.h — replica-local prompt caches (SPEC §5).
 *
 * A prompt is cut into blocks of FM_CACHE_BLOCK_BYTES of its serialized
 * text (16 tokens under the 4-bytes-a-token rule). Each block is named by a
 * hash chained over every block before it, so a block's name stands for the
 * whole prefix up to its end: the cached part of a prompt is its longest run
 * of leading blocks present in the replica's cache. Names are salted with
 * the account and the isolation key, so one account never hits another's
 * prefixes. Each replica keeps at most `capacity` blocks and evicts the
 * least recently used; memory grows with use up to that bound. */
#ifndef FM_CACHE_H
#define FM_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define FM_CACHE_BLOCK_BYTES 64
#define FM_CACHE_BLOCK_TOKENS 16

/* The block names of one prompt, built while the prompt is read. */
typedef struct fm_prefix {
  uint64_t *blocks;
  uint32_t n, cap;
  uint64_t chain;  /* hash of everything up to the last full block */
  uint64_t digest; /* hash of every byte, full blocks or not */
  unsigned char buf[FM_CACHE_BLOCK_BYTES];
  uint32_t fill;
  size_t bytes;
} fm_prefix;

void fm_prefix_init(fm_prefix *p);
void fm_prefix_add(fm_prefix *p, const void *data, size_t len);
void fm_prefix_free(fm_prefix *p);

typedef struct fm_cache_entry {
  uint64_t name;
  uint32_t prev, next; /* LRU links: indices + 1, 0 = none */
} fm_cache_entry;

typedef struct fm_cache {
  fm_cache_entry *e;
  uint32_t n, cap_alloc; /* entries in use, entries allocated */
  uint32_t capacity;     /* most entries ever kept */
  uint32_t *table;       /* open addressing: entry index + 1, 0 = empty */
  uint32_t table_size;   /* power of two, at least twice cap_alloc */
  uint32_t head, tail;   /* most and least recently used (index + 1) */
} fm_cache;

void fm_cache_init(fm_cache *c, uint32_t capacity_blocks);
void fm_cache_free(fm_cache *c);
/* Number of leading blocks of the prompt present (each hit becomes most recent). */
uint32_t fm_cache_lookup(fm_cache *c, const fm_prefix *p, uint64_t salt);
/* Adds every block of the prompt, evicting the least recently used when full.
 * Returns -1 when memory ran out (the cache keeps what it had). */
int fm_cache_insert(fm_cache *c, const fm_prefix *p, uint64_t salt);

#endif
