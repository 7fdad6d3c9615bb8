/* events.c — request counts and summaries for the live feed (events.h). */
#include "events.h"

#include <stdio.h>
#include <string.h>

static const char *const outcome_names[FM_EVENTS_OUTCOMES] = {"200", "429", "503", "other"};

void fm_events_init(fm_events *e) {
  memset(e, 0, sizeof(*e));
}

int fm_events_outcome(int status) {
  if (status >= 200 && status < 300) return 0;
  if (status == 429) return 1;
  if (status == 503 || status == 529) return 2;
  return 3;
}

void fm_events_add(fm_events *e, const fm_event_req *r, const char *test_id) {
  if (r->path >= 0 && r->path < FM_PATH_N) e->counts[r->path][fm_events_outcome(r->status)]++;
  if (e->subscribers == 0) return;
  fm_event_req *slot = &e->ring[e->seq % FM_EVENTS_RING];
  *slot = *r;
  slot->seq = ++e->seq;
  slot->test_id[0] = 0;
  if (test_id) snprintf(slot->test_id, sizeof(slot->test_id), "%s", test_id);
}

void fm_events_cursor_init(const fm_events *e, fm_events_cursor *c) {
  c->seq = e->seq;
  memcpy(c->counts, e->counts, sizeof(c->counts));
}

static void put_ms(fm_buf *b, int64_t ms) {
  if (ms < 0)
    fm_buf_puts(b, "null");
  else
    fm_buf_put_i64(b, ms);
}

static void put_req(const fm_event_req *r, fm_buf *b) {
  fm_buf_printf(b, "{\"time_s\":%.3f,\"route\":", r->time_s);
  fm_buf_json_str(b, r->route ? r->route : "other");
  fm_buf_puts(b, ",\"model\":");
  if (r->model)
    fm_buf_json_str(b, r->model);
  else
    fm_buf_puts(b, "null");
  fm_buf_puts(b, ",\"tier\":");
  if (r->path >= 0 && r->path < FM_PATH_N)
    fm_buf_printf(b, "\"%s\"", fm_path_names[r->path]);
  else
    fm_buf_puts(b, "null");
  fm_buf_printf(b, ",\"status\":%d,\"key_id\":", r->status);
  if (r->key_id[0])
    fm_buf_json_str(b, r->key_id);
  else
    fm_buf_puts(b, "null");
  fm_buf_puts(b, ",\"test_id\":");
  if (r->test_id[0])
    fm_buf_json_str(b, r->test_id);
  else
    fm_buf_puts(b, "null");
  fm_buf_puts(b, ",\"queue_ms\":");
  put_ms(b, r->queue_ms);
  fm_buf_puts(b, ",\"ttft_ms\":");
  put_ms(b, r->ttft_ms);
  fm_buf_printf(b, ",\"prompt_tokens\":%u,\"cached_tokens\":%u,\"completion_tokens\":%u}",
                r->prompt_tokens, r->cached_tokens, r->completion_tokens);
}

void fm_events_window(const fm_events *e, fm_events_cursor *c, double now_s, double window_ms,
                      fm_buf *out) {
  fm_buf_printf(out, "{\"time_s\":%.3f,\"window_ms\":%.0f,\"counts\":{", now_s, window_ms);
  for (int p = 0; p < FM_PATH_N; p++) {
    fm_buf_printf(out, "%s\"%s\":{", p ? "," : "", fm_path_names[p]);
    for (int k = 0; k < FM_EVENTS_OUTCOMES; k++)
      fm_buf_printf(out, "%s\"%s\":%llu", k ? "," : "", outcome_names[k],
                    (unsigned long long)(e->counts[p][k] - c->counts[p][k]));
    fm_buf_putc(out, '}');
  }
  /* the newest FM_EVENTS_BATCH not sent yet, oldest first, if the ring still has them */
  uint64_t fresh = e->seq - c->seq;
  uint64_t avail = fresh < FM_EVENTS_RING ? fresh : FM_EVENTS_RING;
  uint64_t listed = avail < FM_EVENTS_BATCH ? avail : FM_EVENTS_BATCH;
  fm_buf_puts(out, "},\"requests\":[");
  for (uint64_t s = e->seq - listed + 1; listed && s <= e->seq; s++) {
    if (s != e->seq - listed + 1) fm_buf_putc(out, ',');
    put_req(&e->ring[(s - 1) % FM_EVENTS_RING], out);
  }
  fm_buf_printf(out, "],\"omitted\":%llu}", (unsigned long long)(fresh - listed));
  c->seq = e->seq;
  memcpy(c->counts, e->counts, sizeof(c->counts));
}
