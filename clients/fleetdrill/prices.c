/* prices.c — the price rows of the default fleet (see prices.h). */
#include "prices.h"

#include <string.h>

typedef struct fd_price_row {
  const char *model;
  fd_price standard, priority;
} fd_price_row;

/* From server/default-config.json, which takes them from the public price list. */
static const fd_price_row fd_prices[] = {
    {"accounts/fireworks/models/kimi-k2p6", {0.95, 0.16, 4.00}, {1.50, 0.22, 6.00}},
    {"accounts/fireworks/models/kimi-k2p5", {0.95, 0.16, 4.00}, {1.50, 0.22, 6.00}},
    {"accounts/fireworks/models/glm-5p1", {1.40, 0.26, 4.40}, {2.10, 0.39, 6.60}},
    {"accounts/fireworks/models/gpt-oss-120b", {0.15, 0.015, 0.60}, {0.18, 0.018, 0.72}},
    {"accounts/fireworks/models/gpt-oss-20b", {0.07, 0.035, 0.30}, {0.07, 0.035, 0.30}},
};

bool fd_price_lookup(const char *model, fm_client_tier tier, fd_price *out) {
  for (size_t i = 0; i < sizeof fd_prices / sizeof fd_prices[0]; i++) {
    if (strcmp(model, fd_prices[i].model) == 0) {
      *out = tier == FM_PRIORITY ? fd_prices[i].priority : fd_prices[i].standard;
      return true;
    }
  }
  return false;
}

double fd_price_cost(const fd_price *p, int64_t prompt, int64_t cached, int64_t completion) {
  int64_t uncached = prompt > cached ? prompt - cached : 0;
  return ((double)uncached * p->input + (double)cached * p->cached +
          (double)completion * p->output) /
         1e6;
}
