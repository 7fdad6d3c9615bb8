/* textgen.c — deterministic words and stop-sequence handling. */
#include "textgen.h"

#include <math.h>
#include <string.h>

/* Each word with its length, so generation needs no strlen, in a block of
 * FM_TOKEN_MAX_BYTES zero-padded bytes, so a copy may take all of them. */
typedef struct word {
  char s[FM_TOKEN_MAX_BYTES];
  unsigned char len;
} word;
#define W(text)                                                                                    \
  { text, sizeof(text) - 1 }
static const word words[] = {
    W("the"),     W("fleet"),   W("serves"),  W("tokens"),   W("while"),    W("a"),
    W("queue"),   W("waits"),   W("for"),     W("room"),     W("on"),       W("each"),
    W("replica"), W("and"),     W("every"),   W("request"),  W("finds"),    W("its"),
    W("slot"),    W("when"),    W("load"),    W("rises"),    W("standard"), W("traffic"),
    W("is"),      W("shed"),    W("before"),  W("priority"), W("so"),       W("clients"),
    W("should"),  W("retry"),   W("with"),    W("care"),     W("back"),     W("off"),
    W("then"),    W("try"),     W("again"),   W("later"),    W("model"),    W("answers"),
    W("quickly"), W("under"),   W("light"),   W("but"),      W("slows"),    W("down"),
    W("as"),      W("demand"),  W("grows"),   W("past"),     W("capacity"), W("this"),
    W("text"),    W("comes"),   W("from"),    W("simple"),   W("seeded"),   W("draw"),
    W("that"),    W("repeats"), W("exactly"), W("same"),     W("prompt"),   W("gives"),
    W("words"),   W("in"),      W("order"),   W("cache"),    W("hits"),     W("skip"),
    W("prefill"), W("time"),    W("which"),   W("makes"),    W("first"),    W("token"),
    W("arrive"),  W("sooner"),  W("over"),    W("limit"),    W("brings"),   W("status"),
    W("code"),    W("four"),    W("two"),     W("nine"),     W("five"),     W("zero"),
    W("three"),   W("means"),   W("busy"),    W("now"),      W("steady"),   W("spike"),
    W("storm"),   W("window"),  W("path"),    W("fast"),     W("router"),   W("stream"),
    W("chunk"),   W("done"),    W("usage"),   W("counts"),   W("prompts"),  W("cached"),
    W("input"),   W("output"),  W("price"),   W("cost"),     W("drill"),    W("staging"),
    W("test"),    W("suite"),   W("mock"),    W("server"),   W("loop"),     W("timer"),
    W("socket"),  W("event"),   W("batch"),   W("agent"),    W("chain"),    W("step"),
    W("ends"),    W("well"),
};
#undef W
#define N_WORDS (sizeof(words) / sizeof(words[0]))

const char *fm_gen_word(fm_rng *rng) {
  return words[fm_rng_below(rng, N_WORDS)].s;
}

const char *fm_gen_word_len(fm_rng *rng, size_t *len) {
  const word *w = &words[fm_rng_below(rng, N_WORDS)];
  *len = w->len;
  return w->s;
}

uint64_t fm_gen_seed(uint64_t seed, uint64_t prompt_digest, uint32_t choice) {
  return fm_mix64(fm_mix64(seed ^ 0x5eedULL) ^ prompt_digest) + choice;
}

uint32_t fm_gen_draw_length(fm_rng *rng, int min, int mean, int max) {
  double u = fm_rng_unit(rng);
  double x = min + -log1p(-u) * (double)(mean - min);
  if (x > max) x = max;
  if (x < min) x = min;
  return (uint32_t)x;
}

void fm_gen_start(fm_gen *g, uint64_t seed, uint32_t target) {
  fm_rng_seed(&g->rng, seed);
  g->target = target;
  g->produced = 0;
  g->stopped = false;
  g->stop_index = -1;
  g->held_len = 0;
}

bool fm_gen_done(const fm_gen *g) {
  return g->stopped || g->produced >= g->target;
}

/* The longest end of text[0..n) that is the start, but not the whole, of a
 * stop sequence: text that a later token could still turn into a stop. */
static size_t stop_prefix_at_end(const char *text, size_t n, const fm_stops *stops) {
  size_t best = 0;
  for (int i = 0; i < stops->n; i++) {
    size_t k = stops->len[i] > 0 ? stops->len[i] - 1 : 0;
    if (k > n) k = n;
    for (; k > best; k--) {
      if (memcmp(text + n - k, stops->s[i], k) == 0) {
        best = k;
        break;
      }
    }
  }
  return best;
}

/* Where the earliest stop sequence begins in text[0..n), or SIZE_MAX. */
static size_t first_stop(const char *text, size_t n, const fm_stops *stops, int *which) {
  size_t cut = SIZE_MAX;
  for (int i = 0; i < stops->n; i++) {
    size_t sl = stops->len[i];
    if (sl == 0 || sl > n) continue;
    for (size_t at = 0; at + sl <= n && at < cut; at++) {
      if (memcmp(text + at, stops->s[i], sl) == 0) {
        cut = at;
        *which = i;
        break;
      }
    }
  }
  return cut;
}

size_t fm_gen_next(fm_gen *g, const fm_stops *stops, char *out) {
  if (fm_gen_done(g)) return 0;
  size_t wl;
  const char *w = fm_gen_word_len(&g->rng, &wl);
  /* The text not yet returned: what was held back, then this token. Text
   * returned earlier cannot begin a stop: it would have been held back. */
  size_t n = g->held_len;
  memcpy(out, g->held, n);
  if (g->produced > 0) out[n++] = ' ';
  memcpy(out + n, w, wl);
  n += wl;
  g->produced++;
  g->held_len = 0;
  if (!stops || stops->n == 0) return n;

  int which = -1;
  size_t cut = first_stop(out, n, stops, &which);
  if (cut != SIZE_MAX) {
    g->stopped = true;
    g->stop_index = which;
    return cut; /* the text ends right before the stop */
  }
  if (g->produced >= g->target) return n; /* the last token: nothing is held back */
  size_t keep = stop_prefix_at_end(out, n, stops);
  memcpy(g->held, out + n - keep, keep);
  g->held_len = (uint16_t)keep;
  return n - keep;
}

const char *fm_gen_finish_reason(const fm_gen *g, bool hit_max_tokens) {
  if (g->stopped) return "stop";
  return hit_max_tokens ? "length" : "stop";
}
