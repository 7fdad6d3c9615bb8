/* clock.h — the simulated clock the core is driven by.
 *
 * The core never reads the time itself: it asks the clock it was given. The
 * server passes a clock that runs --time-scale times faster than the
 * monotonic clock; unit tests pass one they move by hand. Times are
 * simulated microseconds since the clock's epoch. */
#ifndef FM_CLOCK_H
#define FM_CLOCK_H

#include <stdint.h>

typedef struct fm_clock {
  uint64_t (*now_us)(void *ctx);
  void *ctx;
} fm_clock;

static inline uint64_t fm_clock_now(const fm_clock *c) {
  return c->now_us(c->ctx);
}

/* A clock for tests: reads *ctx, a uint64_t the test advances. */
static inline uint64_t fm_clock_manual_now(void *ctx) {
  return *(const uint64_t *)ctx;
}

#endif
