/* embed.h — deterministic text embeddings for the embeddings route.
 *
 * A vector is built from hashed features of the text, so it is the same for
 * the same (model, text) on every run and every machine, and texts that share
 * words point the same way: lower-case the text, split it into words
 * (letters, digits and any non-ASCII byte), drop a short stopword list, and
 * for each remaining word add +/-1 at FM_EMBED_PROBES dimensions picked by a
 * hash of (model seed, word), the later ones among the leading dimensions, plus its character
 * trigrams at a lower weight so "retry" and "retries" are close. The result is L2-normalized; a
 * request's `dimensions` keeps the first k values and normalizes again (Matryoshka style).
 * docs/api.md ("The vector rule") states the rule exactly.
 *
 * No HTTP, no JSON, no allocation: the caller owns the one vector. */
#ifndef FM_EMBED_H
#define FM_EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FM_EMBED_PROBES 8             /* dimensions each feature adds to */
#define FM_EMBED_NESTED_MIN 64        /* probe 4+i lands in the first max(64, dims >> (i+1)) */
#define FM_EMBED_TRIGRAM_WEIGHT 0.5   /* a word's trigrams together, against 1 for the word */
#define FM_EMBED_DIMENSIONS_MAX 65536 /* the largest model size a config may give */

/* The seed of a model's vectors: a hash of its id. */
uint64_t fm_embed_seed(const char *model_id);

/* Counts the content words of text (after the stopwords are dropped). */
size_t fm_embed_words(const char *text, size_t len);

/* The vector of text for a model of dims dimensions, cut to its first k
 * (1 <= k <= dims): vec holds dims floats of scratch, and on return its first
 * k are the answer. normalize: scale to unit length (after the cut); a vector
 * whose first k values are all zero (no content words, or none reaching the
 * first k dimensions) is the model's fixed fallback unit vector instead. */
void fm_embed(uint64_t seed, const char *text, size_t len, int dims, int k, bool normalize,
              float *vec);

#endif
