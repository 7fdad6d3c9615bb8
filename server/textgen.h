/* textgen.h — deterministic fake text and the token-count rule.
 *
 * Prompt tokens: a piece of text of B bytes is ceil(B / 4) tokens. A chat
 * prompt is the sum over messages of (content tokens + 4) plus 3, which is
 * close to what chat templates add on real tokenizers. A completions prompt
 * is just its text.
 *
 * Completion text: plain lowercase words, one token each, drawn from a
 * generator seeded by (request seed, prompt, choice index), so the same
 * request always gets the same text. The first token has no leading space,
 * later ones start with one. Tokens are produced one at a time so a stream
 * never holds more than the last few bytes it sent (for stop matching). */
#ifndef FM_TEXTGEN_H
#define FM_TEXTGEN_H

#include "rng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FM_TOKENS_PER_MESSAGE 4
#define FM_TOKENS_PER_CHAT 3
#define FM_TOKEN_MAX_BYTES 16 /* longest word plus its leading space */
#define FM_STOP_MAX 4
#define FM_STOP_MAX_BYTES 256

static inline uint32_t fm_tokens_for_bytes(size_t bytes) {
  return (uint32_t)((bytes + 3) / 4);
}

typedef struct fm_stops {
  const char *s[FM_STOP_MAX]; /* borrowed; must outlive the generator */
  size_t len[FM_STOP_MAX];
  int n;
} fm_stops;

typedef struct fm_gen {
  fm_rng rng;
  uint32_t target;   /* tokens to produce unless a stop sequence ends it first */
  uint32_t produced; /* tokens produced so far */
  bool stopped;      /* a stop sequence ended the text */
  int stop_index;    /* which stop sequence (index into fm_stops), -1 if none */
  uint16_t tail_len;
  char tail[FM_STOP_MAX_BYTES]; /* the last bytes produced, to find stops across tokens */
} fm_gen;

/* Seed for one choice of one request: mixes the request seed, the prompt digest and the index. */
uint64_t fm_gen_seed(uint64_t seed, uint64_t prompt_digest, uint32_t choice);

/* A draw from the pool's length distribution: exponential with the given mean,
 * clipped to [min, max]; the same rng state gives the same length. */
uint32_t fm_gen_draw_length(fm_rng *rng, int min, int mean, int max);

void fm_gen_start(fm_gen *g, uint64_t seed, uint32_t target);

/* Writes the next token's text to out (room for FM_TOKEN_MAX_BYTES) and
 * returns its length. Returns 0 when the text is complete; a stop sequence
 * can also cut a token short, in which case the text is complete after it.
 * fm_gen_done() tells whether another call would produce anything. */
size_t fm_gen_next(fm_gen *g, const fm_stops *stops, char *out);
bool fm_gen_done(const fm_gen *g);

/* "length" when the target was reached without a stop sequence, else "stop". */
const char *fm_gen_finish_reason(const fm_gen *g, bool hit_max_tokens);

#endif
