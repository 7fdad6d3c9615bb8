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
 * later ones start with one.
 *
 * Stop sequences are matched across tokens the way a real server does it:
 * text that could still be the start of a stop sequence is held back, not
 * sent. It goes out with the next token once it cannot be a stop any more (or
 * with the last token), and is dropped when the stop completes. So a stream
 * never sends any part of a stop sequence, and the text ends right before it. */
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
/* Room one fm_gen_next call may write: a token plus the text held back before it. */
#define FM_GEN_OUT_MAX (FM_STOP_MAX_BYTES + FM_TOKEN_MAX_BYTES)

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
  uint16_t held_len;
  char held[FM_STOP_MAX_BYTES]; /* produced, not yet returned: may begin a stop sequence */
} fm_gen;

/* Seed for one choice of one request: mixes the request seed, the prompt digest and the index. */
uint64_t fm_gen_seed(uint64_t seed, uint64_t prompt_digest, uint32_t choice);

/* One plain lowercase word from the same list the text is drawn from (ASCII,
 * at most FM_TOKEN_MAX_BYTES - 1 bytes); the JSON Schema generator's strings use it. */
const char *fm_gen_word(fm_rng *rng);
/* The same draw as fm_gen_word, with the word's length (no strlen). The
 * word is the start of FM_TOKEN_MAX_BYTES readable bytes (zeros after it),
 * so a caller may copy that many and keep *len. */
const char *fm_gen_word_len(fm_rng *rng, size_t *len);

/* A draw from the pool's length distribution: exponential with the given mean,
 * clipped to [min, max]; the same rng state gives the same length. */
uint32_t fm_gen_draw_length(fm_rng *rng, int min, int mean, int max);

void fm_gen_start(fm_gen *g, uint64_t seed, uint32_t target);

/* Produces the next token and writes to out (room for FM_GEN_OUT_MAX) the
 * text that may be sent now, returning its length. That can be 0 while the
 * text goes on (the token is held back as a possible stop sequence), and
 * more than one token's bytes (held-back text going out with it). A stop
 * sequence ends the text before it. fm_gen_done() tells whether another
 * call would produce anything; once it is true, nothing is held back. */
size_t fm_gen_next(fm_gen *g, const fm_stops *stops, char *out);
bool fm_gen_done(const fm_gen *g);

/* "length" when the target was reached without a stop sequence, else "stop". */
const char *fm_gen_finish_reason(const fm_gen *g, bool hit_max_tokens);

#endif
