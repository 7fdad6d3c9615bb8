/* textgen.c — deterministic words and stop-sequence handling. */
#include "textgen.h"

#include <math.h>
#include <string.h>

static const char *const words[] = {
    "the",     "fleet",   "serves",  "tokens",   "while",    "a",       "queue",    "waits",
    "for",     "room",    "on",      "each",     "replica",  "and",     "every",    "request",
    "finds",   "its",     "slot",    "when",     "load",     "rises",   "standard", "traffic",
    "is",      "shed",    "before",  "priority", "so",       "clients", "should",   "retry",
    "with",    "care",    "back",    "off",      "then",     "try",     "again",    "later",
    "model",   "answers", "quickly", "under",    "light",    "but",     "slows",    "down",
    "as",      "demand",  "grows",   "past",     "capacity", "this",    "text",     "comes",
    "from",    "simple",  "seeded",  "draw",     "that",     "repeats", "exactly",  "same",
    "prompt",  "gives",   "words",   "in",       "order",    "cache",   "hits",     "skip",
    "prefill", "time",    "which",   "makes",    "first",    "token",   "arrive",   "sooner",
    "over",    "limit",   "brings",  "status",   "code",     "four",    "two",      "nine",
    "five",    "zero",    "three",   "means",    "busy",     "now",     "steady",   "spike",
    "storm",   "window",  "path",    "fast",     "router",   "stream",  "chunk",    "done",
    "usage",   "counts",  "prompts", "cached",   "input",    "output",  "price",    "cost",
    "drill",   "staging", "test",    "suite",    "mock",     "server",  "loop",     "timer",
    "socket",  "event",   "batch",   "agent",    "chain",    "step",    "ends",     "well",
};
#define N_WORDS (sizeof(words) / sizeof(words[0]))

const char *fm_gen_word(fm_rng *rng) {
  return words[fm_rng_below(rng, N_WORDS)];
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
  const char *w = fm_gen_word(&g->rng);
  /* The text not yet returned: what was held back, then this token. Text
   * returned earlier cannot begin a stop: it would have been held back. */
  size_t n = g->held_len;
  memcpy(out, g->held, n);
  if (g->produced > 0) out[n++] = ' ';
  size_t wl = strlen(w);
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
