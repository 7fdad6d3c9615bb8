/* events.h — what the live feed (GET /admin/events, the dashboard) tells
 * about finished requests (docs/control-plane.md, "GET /admin/events").
 *
 * Every finished inference request adds to cumulative counts by serving path
 * and outcome (2xx, 429, 503, other), which a subscriber turns into "this
 * window" by keeping the counts it last sent; and, while anyone watches, a
 * copy of its summary goes into a fixed ring of the newest FM_EVENTS_RING,
 * from which each subscriber sends what it has not sent yet (at most
 * FM_EVENTS_BATCH a window, the rest counted as omitted). Nothing here grows
 * with the traffic or with a slow subscriber: a subscriber that reads late
 * gets fewer, larger windows.
 *
 * Not thread-safe on its own: the server touches it under the core lock. */
#ifndef FM_EVENTS_H
#define FM_EVENTS_H

#include "buf.h"
#include "config.h"

#include <stdbool.h>
#include <stdint.h>

#define FM_EVENTS_RING 512   /* request summaries kept for the subscribers */
#define FM_EVENTS_BATCH 50   /* the most listed in one window */
#define FM_EVENTS_OUTCOMES 4 /* 2xx, 429, 503 (and 529), other */
#define FM_EVENTS_MAX_SUBSCRIBERS 16
#define FM_EVENTS_TEST_ID_MAX 64 /* bytes of a test id kept (longer ones are cut) */

/* One finished request, as the feed lists it. */
typedef struct fm_event_req {
  uint64_t seq;
  double time_s;     /* simulated seconds when it ended */
  const char *route; /* static */
  const char *model; /* the config's id (lives as long as the server); NULL: unknown */
  int path;          /* fm_path; -1: refused before it was read */
  int status;        /* 0: the connection was dropped */
  int64_t queue_ms;  /* -1: none */
  int64_t ttft_ms;   /* -1: none */
  uint32_t prompt_tokens, cached_tokens, completion_tokens;
  char key_id[16];
  char test_id[FM_EVENTS_TEST_ID_MAX + 1];
} fm_event_req;

typedef struct fm_events {
  fm_event_req ring[FM_EVENTS_RING];
  uint64_t seq;                                   /* requests recorded in the ring since start */
  uint64_t counts[FM_PATH_N][FM_EVENTS_OUTCOMES]; /* cumulative, since start */
  int subscribers;
} fm_events;

/* What one subscriber has sent so far. */
typedef struct fm_events_cursor {
  uint64_t seq;
  uint64_t counts[FM_PATH_N][FM_EVENTS_OUTCOMES];
} fm_events_cursor;

void fm_events_init(fm_events *e);
/* The outcome column of a status. */
int fm_events_outcome(int status);
/* Counts a finished request; keeps its summary while anyone subscribes.
 * test_id may be NULL. */
void fm_events_add(fm_events *e, const fm_event_req *r, const char *test_id);
/* A new subscriber's cursor: from now on. */
void fm_events_cursor_init(const fm_events *e, fm_events_cursor *c);
/* Writes the window since the cursor as the "requests" event's JSON object
 * (docs/control-plane.md) and moves the cursor. window_ms is what the
 * window covered in real time; now_s the simulated time. */
void fm_events_window(const fm_events *e, fm_events_cursor *c, double now_s, double window_ms,
                      fm_buf *out);

#endif
