/* test_embed.c — the embedding vectors: repeatable, unit length, closer for
 * texts that share words, different per model, and renormalized when cut. */
#include "check.h"
#include "embed.h"

#include <math.h>
#include <string.h>

#define DIMS 768

static float va[DIMS], vb[DIMS], vc[DIMS];

static void vec_of(const char *model, const char *text, int k, float *v) {
  fm_embed(fm_embed_seed(model), text, strlen(text), DIMS, k, true, v);
}

static double dot(const float *a, const float *b, int k) {
  double s = 0;
  for (int i = 0; i < k; i++)
    s += (double)a[i] * b[i];
  return s;
}

static const char *const NOMIC = "nomic-ai/nomic-embed-text-v1.5";
static const char *const QWEN = "fireworks/qwen3-embedding-8b";

TEST(same_model_and_text_give_the_same_vector) {
  vec_of(NOMIC, "How do I retry a request?", DIMS, va);
  vec_of(NOMIC, "How do I retry a request?", DIMS, vb);
  CHECK(memcmp(va, vb, sizeof(va)) == 0);
}

TEST(a_vector_has_unit_length) {
  vec_of(NOMIC, "Exponential backoff with jitter spreads retries out", DIMS, va);
  CHECK_NEAR(dot(va, va, DIMS), 1.0, 1e-5);
}

TEST(texts_sharing_words_are_closer_than_texts_that_do_not) {
  vec_of(NOMIC, "The cat sat on the warm mat", DIMS, va);
  vec_of(NOMIC, "A cat likes a warm mat", DIMS, vb);
  vec_of(NOMIC, "Quarterly revenue grew in Europe", DIMS, vc);
  double near = dot(va, vb, DIMS), far = dot(va, vc, DIMS);
  CHECK(near > 0.5);
  CHECK(fabs(far) < 0.2);
  CHECK(near > far + 0.3);
}

TEST(case_and_punctuation_do_not_matter) {
  vec_of(NOMIC, "Rate limits: 429!", DIMS, va);
  vec_of(NOMIC, "rate LIMITS 429", DIMS, vb);
  CHECK_NEAR(dot(va, vb, DIMS), 1.0, 1e-5);
}

TEST(stopwords_carry_no_weight) {
  vec_of(NOMIC, "what is the rate limit of this account", DIMS, va);
  vec_of(NOMIC, "rate limit account", DIMS, vb);
  CHECK_NEAR(dot(va, vb, DIMS), 1.0, 1e-5);
  CHECK_EQ_INT(fm_embed_words("what is the rate limit of this account", 38), 3);
}

TEST(plurals_are_folded_into_their_word) {
  vec_of(NOMIC, "retries limits classes", DIMS, va);
  vec_of(NOMIC, "retry limit class", DIMS, vb);
  CHECK_NEAR(dot(va, vb, DIMS), 1.0, 1e-5);
}

TEST(other_word_forms_are_close_through_their_trigrams) {
  vec_of(NOMIC, "retrying", DIMS, va);
  vec_of(NOMIC, "retry", DIMS, vb);
  vec_of(NOMIC, "banana", DIMS, vc);
  double near = dot(va, vb, DIMS), far = dot(va, vc, DIMS);
  CHECK(near > 0.1);
  CHECK(near > far + 0.1);
}

TEST(different_models_give_different_vectors) {
  vec_of(NOMIC, "shared words mean higher cosine", DIMS, va);
  vec_of(QWEN, "shared words mean higher cosine", DIMS, vb);
  CHECK(memcmp(va, vb, sizeof(va)) != 0);
  CHECK(fabs(dot(va, vb, DIMS)) < 0.3);
}

TEST(a_cut_vector_still_tells_texts_apart) {
  /* Part of every feature lands in the leading dimensions. */
  vec_of(NOMIC, "The cat sat on the warm mat", 64, va);
  vec_of(NOMIC, "A cat likes a warm mat", 64, vb);
  vec_of(NOMIC, "Quarterly revenue grew in Europe", 64, vc);
  CHECK(dot(va, vb, 64) > dot(va, vc, 64) + 0.3);
}

TEST(truncation_keeps_the_first_values_and_renormalizes) {
  const char *text = "prompt caching discounts repeated prefixes on the same replica";
  vec_of(NOMIC, text, DIMS, va);
  float full[DIMS];
  memcpy(full, va, sizeof(full));
  vec_of(NOMIC, text, 256, vb);
  CHECK_NEAR(dot(vb, vb, 256), 1.0, 1e-5);
  /* The cut vector points where the full one's first 256 values do. */
  double head = sqrt(dot(full, full, 256));
  REQUIRE(head > 0);
  for (int i = 0; i < 256; i++)
    CHECK_NEAR(vb[i], full[i] / head, 1e-5);
}

TEST(no_content_words_give_a_fixed_unit_vector) {
  vec_of(NOMIC, "", DIMS, va);
  vec_of(NOMIC, "the of and ... ?!", DIMS, vb);
  CHECK_NEAR(dot(va, va, DIMS), 1.0, 1e-5);
  CHECK(memcmp(va, vb, sizeof(va)) == 0);
  vec_of(QWEN, "", DIMS, vc);
  CHECK(memcmp(va, vc, sizeof(va)) != 0);
}

TEST(without_normalize_the_raw_sums_are_kept) {
  /* One word once: +-1 at its probes (two may share a dimension), plus its trigrams. */
  fm_embed(fm_embed_seed(NOMIC), "fleet", 5, DIMS, DIMS, false, va);
  double n2 = dot(va, va, DIMS);
  CHECK(n2 > 4.0);
  fm_embed(fm_embed_seed(NOMIC), "fleet", 5, DIMS, DIMS, true, vb);
  for (int i = 0; i < DIMS; i++)
    CHECK_NEAR(vb[i], va[i] / sqrt(n2), 1e-5);
}

TEST(repeated_words_count_more) {
  vec_of(NOMIC, "alpha beta", DIMS, va);
  vec_of(NOMIC, "alpha alpha alpha beta", DIMS, vb);
  vec_of(NOMIC, "alpha", DIMS, vc);
  CHECK(dot(vb, vc, DIMS) > dot(va, vc, DIMS));
}
