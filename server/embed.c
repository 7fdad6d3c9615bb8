/* embed.c — hashed word and trigram features into a vector (embed.h).
 *
 * Feature hashing in the style of Vowpal Wabbit's, with several probes per
 * feature instead of one so that a truncated vector (`dimensions`) still
 * keeps part of every feature. The cost is linear in the text: each word is
 * scanned twice (its hash, its trigrams) straight from the input, lower-cased
 * on the fly, so nothing is copied or allocated. */
#include "embed.h"

#include "rng.h"

#include <math.h>
#include <string.h>

#define TAG_WORD 0x776f7264ULL     /* "word" */
#define TAG_TRIGRAM 0x74726967ULL  /* "trig" */
#define TAG_FALLBACK 0x656d7074ULL /* "empt" */
#define GOLDEN 0x9e3779b97f4a7c15ULL

/* Trigram padding: the word's edges, bytes no word holds. */
#define EDGE_START 0x01
#define EDGE_END 0x02

/* Function words a question is full of and a document's topic is not. */
static const char *const stopwords[] = {
    "a",      "an",    "the",  "of",   "is",    "are",   "was",   "were",  "be",    "been",
    "and",    "or",    "to",   "in",   "on",    "at",    "for",   "with",  "by",    "from",
    "as",     "it",    "its",  "this", "that",  "these", "those", "what",  "which", "who",
    "whom",   "how",   "why",  "when", "where", "do",    "does",  "did",   "i",     "you",
    "we",     "they",  "he",   "she",  "me",    "my",    "our",   "your",  "can",   "could",
    "should", "would", "will", "not",  "no",    "about", "into",  "there", "if",    "so",
    "than",   "then",  "has",  "have", "had",   "any",   "some",  "their", "them",  NULL};
#define STOPWORD_MAX_LEN 6

#define FNV_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* One FNV-1a step: the hashes are stated byte by byte in docs/api.md. */
static inline uint64_t fnv(uint64_t h, unsigned char c) {
  return (h ^ c) * FNV_PRIME;
}

static inline unsigned char lower(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Letters, digits, and every byte of a non-ASCII (UTF-8) character. */
static inline bool word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static bool is_stopword(const unsigned char *w, size_t n) {
  if (n > STOPWORD_MAX_LEN) return false;
  for (const char *const *s = stopwords; *s; s++) {
    size_t k = 0;
    while (k < n && (*s)[k] && (unsigned char)(*s)[k] == lower(w[k]))
      k++;
    if (k == n && (*s)[k] == '\0') return true;
  }
  return false;
}

/* The next word at or after *pos: its start and length; false at the end. */
static bool next_word(const unsigned char *t, size_t len, size_t *pos, size_t *start, size_t *n) {
  size_t i = *pos;
  while (i < len && !word_byte(t[i]))
    i++;
  if (i == len) return false;
  size_t j = i;
  while (j < len && word_byte(t[j]))
    j++;
  *start = i;
  *n = j - i;
  *pos = j;
  return true;
}

/* Adds weight at the feature's FM_EMBED_PROBES dimensions, each with its
 * sign. The first half of the probes land anywhere; probe 4 + i lands in the
 * first dims >> (i + 1) dimensions (never fewer than FM_EMBED_NESTED_MIN, or
 * dims when smaller). So the leading dimensions hold part of every feature
 * and a vector cut to them (`dimensions`) keeps its meaning, as Matryoshka
 * embeddings do, while the full vector stays nearly as spread out (and its
 * chance collisions as rare) as with uniform probes. */
static void add_feature(float *vec, int dims, uint64_t feature, float weight) {
  uint32_t floor_ = dims < FM_EMBED_NESTED_MIN ? (uint32_t)dims : FM_EMBED_NESTED_MIN;
  for (uint64_t p = 0; p < FM_EMBED_PROBES; p++) {
    uint64_t x = fm_mix64(feature + (p + 1) * GOLDEN);
    uint32_t range =
        p < FM_EMBED_PROBES / 2 ? (uint32_t)dims : (uint32_t)dims >> (p - FM_EMBED_PROBES / 2 + 1);
    if (range < floor_) range = floor_;
    uint32_t d = (uint32_t)(((x >> 32) * (uint64_t)range) >> 32);
    vec[d] += (x & 1) ? -weight : weight;
  }
}

/* A word as the features see it: lower-case, its plural folded ("retries"
 * is "retry", "limits" is "limit", "classes" is "class"). A view of the
 * text, never a copy: n bytes of w, then the byte extra when not 0. */
typedef struct stem {
  const unsigned char *w;
  size_t n;
  unsigned char extra;
} stem;

static inline bool ends(const unsigned char *w, size_t n, const char *suf) {
  size_t k = strlen(suf);
  if (n < k) return false;
  for (size_t i = 0; i < k; i++)
    if (lower(w[n - k + i]) != (unsigned char)suf[i]) return false;
  return true;
}

static stem stem_of(const unsigned char *w, size_t n) {
  stem s = {w, n, 0};
  if (n < 4) return s;
  if (ends(w, n, "ies")) {
    s.n = n - 3;
    s.extra = 'y';
  } else if (ends(w, n, "sses")) {
    s.n = n - 2;
  } else if (ends(w, n, "s") && !ends(w, n, "ss") && !ends(w, n, "us") && !ends(w, n, "is")) {
    s.n = n - 1;
  }
  return s;
}

static inline size_t stem_len(const stem *s) {
  return s->n + (s->extra != 0);
}

static inline unsigned char stem_at(const stem *s, size_t i) {
  return i < s->n ? lower(s->w[i]) : s->extra;
}

/* The padded stem's byte at position i (0 is the start edge, len + 1 the end). */
static inline unsigned char padded(const stem *s, size_t len, size_t i) {
  return i == 0 ? EDGE_START : i == len + 1 ? EDGE_END : stem_at(s, i - 1);
}

static void add_word(uint64_t seed, const unsigned char *w, size_t n, float *vec, int dims) {
  stem s = stem_of(w, n);
  size_t len = stem_len(&s);
  uint64_t h = seed ^ TAG_WORD;
  for (size_t i = 0; i < len; i++)
    h = fnv(h, stem_at(&s, i));
  add_feature(vec, dims, fm_mix64(h), 1.0f);
  /* The len trigrams of the padded stem share FM_EMBED_TRIGRAM_WEIGHT of
   * length: their part of the vector is that fraction of the word's. */
  float tw = (float)(FM_EMBED_TRIGRAM_WEIGHT / sqrt((double)len));
  for (size_t i = 0; i < len; i++) {
    uint64_t t = seed ^ TAG_TRIGRAM;
    for (size_t k = i; k < i + 3; k++)
      t = fnv(t, padded(&s, len, k));
    add_feature(vec, dims, fm_mix64(t), tw);
  }
}

uint64_t fm_embed_seed(const char *model_id) {
  uint64_t h = FNV_BASIS;
  for (const char *p = model_id; *p; p++)
    h = fnv(h, (unsigned char)*p);
  return fm_mix64(h);
}

size_t fm_embed_words(const char *text, size_t len) {
  const unsigned char *t = (const unsigned char *)text;
  size_t pos = 0, start, n, words = 0;
  while (next_word(t, len, &pos, &start, &n))
    words += !is_stopword(t + start, n);
  return words;
}

void fm_embed(uint64_t seed, const char *text, size_t len, int dims, int k, bool normalize,
              float *vec) {
  const unsigned char *t = (const unsigned char *)text;
  memset(vec, 0, (size_t)dims * sizeof(float));
  size_t pos = 0, start, n;
  while (next_word(t, len, &pos, &start, &n))
    if (!is_stopword(t + start, n)) add_word(seed, t + start, n, vec, dims);
  double sum = 0;
  for (int i = 0; i < k; i++)
    sum += (double)vec[i] * vec[i];
  if (sum == 0) { /* nothing to say: the model's fixed unit vector for k dimensions */
    float v = (float)(1.0 / sqrt((double)k));
    for (int i = 0; i < k; i++)
      vec[i] = (fm_mix64(seed ^ TAG_FALLBACK ^ (uint64_t)i) & 1) ? -v : v;
    return;
  }
  if (!normalize) return;
  float scale = (float)(1.0 / sqrt(sum));
  for (int i = 0; i < k; i++)
    vec[i] *= scale;
}
