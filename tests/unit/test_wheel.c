/* test_wheel.c — the timing wheel: a wait fires at its tick, not before,
 * once; removal, laps, and a wheel run late. */
#include "check.h"
#include "wheel.h"

/* What fired, in order. */
typedef struct fired {
  fm_wheel_node *node[16];
  int n;
} fired;

static void record(fm_wheel_node *n, void *ctx) {
  fired *f = ctx;
  if (f->n < 16) f->node[f->n] = n;
  f->n++;
}

TEST(a_wait_fires_at_its_tick_and_not_before) {
  fm_wheel wh;
  fm_wheel_init(&wh);
  fm_wheel_node a = {0};
  REQUIRE(fm_wheel_add(&wh, &a, 1000, 20));
  CHECK_EQ_U64(fm_wheel_next(&wh), 1020);
  fired f = {0};
  CHECK_EQ_INT((int)fm_wheel_run(&wh, 1019, record, &f), 0);
  CHECK_EQ_INT((int)fm_wheel_run(&wh, 1020, record, &f), 1);
  REQUIRE(f.n == 1);
  CHECK(f.node[0] == &a);
  CHECK(!a.on);
  CHECK_EQ_U64(fm_wheel_next(&wh), UINT64_MAX);
  CHECK_EQ_INT((int)fm_wheel_run(&wh, 1040, record, &f), 0); /* once only */
}

TEST(next_is_the_earliest_of_several_waits) {
  fm_wheel wh;
  fm_wheel_init(&wh);
  fm_wheel_node a = {0}, b = {0}, c = {0};
  fm_wheel_add(&wh, &a, 0, 300);
  fm_wheel_add(&wh, &b, 0, 70); /* another bitmap word than a */
  fm_wheel_add(&wh, &c, 0, 5);
  CHECK_EQ_U64(fm_wheel_next(&wh), 5);
  fired f = {0};
  fm_wheel_run(&wh, 5, record, &f);
  CHECK_EQ_U64(fm_wheel_next(&wh), 70);
  fm_wheel_run(&wh, 70, record, &f);
  CHECK_EQ_U64(fm_wheel_next(&wh), 300);
  fm_wheel_run(&wh, 300, record, &f);
  REQUIRE(f.n == 3);
  CHECK(f.node[0] == &c && f.node[1] == &b && f.node[2] == &a);
}

TEST(a_removed_wait_never_fires) {
  fm_wheel wh;
  fm_wheel_init(&wh);
  fm_wheel_node a = {0}, b = {0};
  fm_wheel_add(&wh, &a, 0, 10);
  fm_wheel_add(&wh, &b, 0, 10);
  fm_wheel_remove(&wh, &a);
  fm_wheel_remove(&wh, &a); /* twice is nothing */
  fired f = {0};
  fm_wheel_run(&wh, 10, record, &f);
  REQUIRE(f.n == 1);
  CHECK(f.node[0] == &b);
  fm_wheel_node c = {0};
  fm_wheel_add(&wh, &c, 20, 10);
  fm_wheel_remove(&wh, &c); /* the last one: the wheel is empty */
  CHECK_EQ_U64(fm_wheel_next(&wh), UINT64_MAX);
}

TEST(waits_of_a_wheel_long_or_more_are_refused) {
  fm_wheel wh;
  fm_wheel_init(&wh);
  fm_wheel_node a = {0};
  CHECK(!fm_wheel_add(&wh, &a, 0, FM_WHEEL_SLOTS));
  CHECK(!a.on);
  CHECK(fm_wheel_add(&wh, &a, 0, FM_WHEEL_SLOTS - 1));
  CHECK(!fm_wheel_add(&wh, &a, 0, 1)); /* already on */
}

TEST(a_wheel_run_late_fires_everything_due_and_keeps_the_next_lap) {
  fm_wheel wh;
  fm_wheel_init(&wh);
  fm_wheel_node a = {0}, b = {0}, c = {0};
  fm_wheel_add(&wh, &a, 0, 10);
  fm_wheel_add(&wh, &b, 0, 900);
  /* Not run until 1000: c is added then, due at 1010, the slot of a's lap. */
  fm_wheel_add(&wh, &c, 1000, 10);
  fired f = {0};
  CHECK_EQ_INT((int)fm_wheel_run(&wh, 1000, record, &f), 2);
  REQUIRE(f.n == 2);
  CHECK(c.on);
  CHECK_EQ_U64(fm_wheel_next(&wh), 1010);
  CHECK_EQ_INT((int)fm_wheel_run(&wh, 1010, record, &f), 1);
  CHECK(f.node[2] == &c);
}

TEST(a_wait_added_for_a_tick_already_run_fires_at_the_next_run) {
  fm_wheel wh;
  fm_wheel_init(&wh);
  fm_wheel_node a = {0}, b = {0};
  fm_wheel_add(&wh, &a, 0, 50);
  fired f = {0};
  fm_wheel_run(&wh, 40, record, &f); /* ticks 0..40 are run */
  fm_wheel_add(&wh, &b, 30, 0);      /* a caller whose clock lags */
  CHECK_EQ_U64(b.tick, 41);
  CHECK_EQ_INT((int)fm_wheel_run(&wh, 41, record, &f), 1);
  CHECK(f.node[0] == &b);
}

/* What a stream does: every time it fires it waits again. */
static void again(fm_wheel_node *n, void *ctx) {
  fm_wheel *wh = ctx;
  fm_wheel_add(wh, n, n->tick, 20);
}

TEST(a_wait_added_from_its_own_firing_goes_to_a_later_tick) {
  fm_wheel wh;
  fm_wheel_init(&wh);
  fm_wheel_node a = {0};
  fm_wheel_add(&wh, &a, 0, 20);
  int runs = 0;
  for (uint64_t now = 0; now <= 100; now++) /* bounded: 101 ticks */
    runs += (int)fm_wheel_run(&wh, now, again, &wh);
  CHECK_EQ_INT(runs, 5); /* 20, 40, 60, 80, 100 */
  CHECK_EQ_U64(a.tick, 120);
}
