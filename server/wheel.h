/* wheel.h — a timing wheel: many short waits behind one timer.
 *
 * Every streamed token is a wait of a few milliseconds (20 ms at 50 tok/s),
 * and thousands of streams wait at once. A uv timer of its own per wait is a
 * heap insert and a heap pop among all the others per token; a wheel of
 * FM_WHEEL_SLOTS one-millisecond slots makes both O(1), and the loop keeps
 * one uv timer, armed for fm_wheel_next(). Nodes are intrusive (an
 * fm_wheel_node lives inside what waits), so adding allocates nothing.
 *
 * Ticks are whatever the caller counts in (the loop's milliseconds in
 * http.c); the wheel is given `now` and keeps no clock. A wait must be
 * shorter than FM_WHEEL_SLOTS ticks (fm_wheel_add refuses longer ones): a
 * slot is then never shared by two laps, except when the caller runs the
 * wheel late, and those nodes are kept for their own lap. */
#ifndef FM_WHEEL_H
#define FM_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FM_WHEEL_SLOTS 1024

typedef struct fm_wheel_node {
  struct fm_wheel_node *prev, *next;
  uint64_t tick; /* due at, while on the wheel */
  bool on;
} fm_wheel_node;

typedef struct fm_wheel {
  uint64_t next_tick; /* the first tick not yet run */
  size_t n;           /* nodes on the wheel */
  fm_wheel_node *slot[FM_WHEEL_SLOTS];
  uint64_t used[FM_WHEEL_SLOTS / 64]; /* a bit per non-empty slot */
} fm_wheel;

void fm_wheel_init(fm_wheel *wh);
/* Puts n on the wheel, due at now + delay (or at the next tick run, if the
 * wheel was last run after that). Returns false, and leaves n off, when
 * delay is FM_WHEEL_SLOTS or more, or n is already on. */
bool fm_wheel_add(fm_wheel *wh, fm_wheel_node *n, uint64_t now, uint64_t delay);
/* Takes n off the wheel; nothing when it is not on. */
void fm_wheel_remove(fm_wheel *wh, fm_wheel_node *n);
/* Takes every node due at now or before off the wheel and calls due for it
 * (due may add nodes back, for a later tick). Returns how many were due. */
size_t fm_wheel_run(fm_wheel *wh, uint64_t now, void (*due)(fm_wheel_node *n, void *ctx),
                    void *ctx);
/* The earliest tick a node waits for (perhaps a lap early, when the wheel
 * was run late: running it then finds nothing due); UINT64_MAX when empty. */
uint64_t fm_wheel_next(const fm_wheel *wh);

#endif
