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
  g->tail_len = 0;
}

bool fm_gen_done(const fm_gen *g) {
  return g->stopped || g->produced >= g->target;
}

/* Remembers the last bytes produced, keeping at most FM_STOP_MAX_BYTES. */
static void keep_tail(fm_gen *g, const char *p, size_t n) {
  if (n >= sizeof(g->tail)) {
    memcpy(g->tail, p + n - sizeof(g->tail), sizeof(g->tail));
    g->tail_len = sizeof(g->tail);
    return;
  }
  size_t keep = g->tail_len + n > sizeof(g->tail) ? sizeof(g->tail) - n : g->tail_len;
  memmove(g->tail, g->tail + g->tail_len - keep, keep);
  memcpy(g->tail + keep, p, n);
  g->tail_len = (uint16_t)(keep + n);
}

size_t fm_gen_next(fm_gen *g, const fm_stops *stops, char *out) {
  if (fm_gen_done(g)) return 0;
  const char *w = words[fm_rng_below(&g->rng, N_WORDS)];
  size_t n = 0;
  if (g->produced > 0) out[n++] = ' ';
  size_t wl = strlen(w);
  memcpy(out + n, w, wl);
  n += wl;
  g->produced++;

  if (stops && stops->n > 0) {
    /* Look for the earliest stop that ends inside this token, across the tail. */
    char window[FM_STOP_MAX_BYTES + FM_TOKEN_MAX_BYTES];
    memcpy(window, g->tail, g->tail_len);
    memcpy(window + g->tail_len, out, n);
    size_t wlen = g->tail_len + n;
    size_t cut = SIZE_MAX; /* offset in window where a stop begins */
    int which = -1;
    for (int i = 0; i < stops->n; i++) {
      size_t sl = stops->len[i];
      if (sl == 0 || sl > wlen) continue;
      for (size_t at = 0; at + sl <= wlen; at++) {
        if (at + sl <= g->tail_len) continue; /* ended inside text already checked */
        if (memcmp(window + at, stops->s[i], sl) == 0) {
          if (at < cut) cut = at, which = i;
          break;
        }
      }
    }
    if (cut != SIZE_MAX) {
      g->stopped = true;
      g->stop_index = which;
      /* The text before the stop that belongs to this token is all it keeps. */
      n = cut > g->tail_len ? cut - g->tail_len : 0;
    }
  }
  keep_tail(g, out, n);
  return n;
}

const char *fm_gen_finish_reason(const fm_gen *g, bool hit_max_tokens) {
  if (g->stopped) return "stop";
  return hit_max_tokens ? "length" : "stop";
}
