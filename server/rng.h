/* rng.h — the seeded random generator behind every random choice.
 *
 * xoshiro256** seeded through splitmix64: fast, small state, and the same
 * sequence on every platform, so a run with the same --seed decides the same
 * way. Probabilities are exact at the ends: fm_rng_chance(r, 0) never fires
 * and fm_rng_chance(r, 1) always does, without consuming a draw. */
#ifndef FM_RNG_H
#define FM_RNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fm_rng {
  uint64_t s[4];
} fm_rng;

void fm_rng_seed(fm_rng *r, uint64_t seed);
uint64_t fm_rng_next(fm_rng *r);
/* Uniform in [0, 1). */
double fm_rng_unit(fm_rng *r);
/* Uniform in [0, n); n must be > 0. */
uint64_t fm_rng_below(fm_rng *r, uint64_t n);
/* True with probability p; p <= 0 is never, p >= 1 is always (no draw taken). */
bool fm_rng_chance(fm_rng *r, double p);

/* Stable 64-bit hashes used to derive per-request seeds. */
uint64_t fm_hash64(const void *data, size_t len, uint64_t h);
uint64_t fm_mix64(uint64_t x);
/* A 64-bit hash of bytes, eight at a time: for keys of caches (not for
 * seeds, which fm_hash64 gives and which must not change). */
uint64_t fm_hash_bytes(const void *data, size_t len, uint64_t seed);

#endif
