/* wheel.c — the timing wheel (wheel.h): slot lists and a bitmap of the
 * non-empty ones, so the next tick is found by scanning 16 words. */
#include "wheel.h"

#include <string.h>

void fm_wheel_init(fm_wheel *wh) {
  memset(wh, 0, sizeof(*wh));
}

static void unlink_node(fm_wheel *wh, fm_wheel_node *n) {
  size_t i = n->tick % FM_WHEEL_SLOTS;
  if (n->prev)
    n->prev->next = n->next;
  else
    wh->slot[i] = n->next;
  if (n->next) n->next->prev = n->prev;
  if (!wh->slot[i]) wh->used[i / 64] &= ~(1ull << (i % 64));
  n->prev = n->next = NULL;
  n->on = false;
  wh->n--;
}

bool fm_wheel_add(fm_wheel *wh, fm_wheel_node *n, uint64_t now, uint64_t delay) {
  if (delay >= FM_WHEEL_SLOTS || n->on) return false;
  if (!wh->n) wh->next_tick = now;
  uint64_t tick = now + delay;
  if (tick < wh->next_tick) tick = wh->next_tick; /* that tick has been run: the next one */
  size_t i = tick % FM_WHEEL_SLOTS;
  n->tick = tick;
  n->prev = NULL;
  n->next = wh->slot[i];
  if (n->next) n->next->prev = n;
  wh->slot[i] = n;
  wh->used[i / 64] |= 1ull << (i % 64);
  n->on = true;
  wh->n++;
  return true;
}

void fm_wheel_remove(fm_wheel *wh, fm_wheel_node *n) {
  if (n->on) unlink_node(wh, n);
}

size_t fm_wheel_run(fm_wheel *wh, uint64_t now, void (*due)(fm_wheel_node *n, void *ctx),
                    void *ctx) {
  if (now < wh->next_tick) return 0;
  uint64_t ticks = now - wh->next_tick + 1;
  if (ticks > FM_WHEEL_SLOTS) ticks = FM_WHEEL_SLOTS; /* run late: every slot once */
  uint64_t first = wh->next_tick;
  wh->next_tick = now + 1; /* before due() runs, so what it adds goes to a later tick */
  size_t fired = 0;
  for (uint64_t k = 0; k < ticks && wh->n; k++) {
    size_t i = (first + k) % FM_WHEEL_SLOTS;
    for (fm_wheel_node *n = wh->slot[i], *next; n; n = next) {
      next = n->next;
      if (n->tick > now) continue; /* a lap later */
      unlink_node(wh, n);
      fired++;
      due(n, ctx);
    }
  }
  return fired;
}

uint64_t fm_wheel_next(const fm_wheel *wh) {
  if (!wh->n) return UINT64_MAX;
  uint64_t from = wh->next_tick;
  for (size_t k = 0; k < FM_WHEEL_SLOTS;) { /* one lap at most */
    size_t i = (from + k) % FM_WHEEL_SLOTS;
    uint64_t word = wh->used[i / 64] >> (i % 64);
    if (word) return from + k + (uint64_t)__builtin_ctzll(word);
    k += 64 - i % 64; /* the rest of this word is empty */
  }
  return UINT64_MAX;
}
