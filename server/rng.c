/* rng.c — xoshiro256** with splitmix64 seeding, plus FNV-1a hashing. */
#include "rng.h"

#include <string.h>

uint64_t fm_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void fm_rng_seed(fm_rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) {
    seed = fm_mix64(seed + (uint64_t)i);
    r->s[i] = seed;
  }
}

static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t fm_rng_next(fm_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double fm_rng_unit(fm_rng *r) {
  return (double)(fm_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t fm_rng_below(fm_rng *r, uint64_t n) {
  /* Lemire's multiply-shift; the bias for n < 2^32 is far below anything a test sees. */
  return (uint64_t)(((unsigned __int128)fm_rng_next(r) * n) >> 64);
}

bool fm_rng_chance(fm_rng *r, double p) {
  if (!(p > 0.0)) return false; /* also catches NaN */
  if (p >= 1.0) return true;
  return fm_rng_unit(r) < p;
}

uint64_t fm_hash64(const void *data, size_t len, uint64_t h) {
  const unsigned char *p = data;
  h ^= 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t fm_hash_bytes(const void *data, size_t len, uint64_t seed) {
  const unsigned char *p = data;
  uint64_t h = seed ^ (len * 0x9E3779B97F4A7C15ULL);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
  }
  uint64_t tail = 0;
  for (int k = 0; i < len; i++, k += 8)
    tail |= (uint64_t)p[i] << k;
  return fm_mix64(h ^ tail);
}
