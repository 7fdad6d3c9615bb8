/* api_events.c — the dashboard's two doors (docs/dashboard.md): GET
 * /admin/events, the live feed a page watches, and GET /ui, the page itself,
 * embedded in the binary at build time (the files in server/ui, and Chart.js).
 *
 * The feed is pulled, never pushed: each window is written when the
 * connection can take it, from the state at that moment and the request
 * counts since the subscriber's last window (events.h). A reader that falls
 * behind gets fewer, larger windows; nothing queues for it. */
#include "api.h"
#include "jsonscan.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INTERVAL_MS_DEFAULT 250
#define INTERVAL_MS_MIN 100
#define INTERVAL_MS_MAX 5000

/* One subscriber. */
typedef struct watcher {
  fm_events_cursor cursor;
  uint64_t interval_us; /* simulated: the real interval times --time-scale */
  uint64_t next_us;     /* simulated time the next window is due */
  double last_ms;       /* real (monotonic) ms of the last window */
} watcher;

static double real_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void watch_close(fm_req *r) {
  watcher *w = r->ctx;
  if (!w) return;
  r->srv->events.subscribers--;
  free(w);
  r->ctx = NULL;
}

static void window(fm_req *r, watcher *w, uint64_t now, fm_buf *out) {
  fm_server *s = r->srv;
  cJSON *state = fm_admin_state_json(s, s->events.subscribers);
  if (state) { /* written by fm_json_write: cJSON's own printer costs ~5x more here */
    fm_buf_puts(out, "event: state\ndata: ");
    fm_json_write(out, state);
    fm_buf_puts(out, "\n\n");
    cJSON_Delete(state);
  }
  double t = real_ms();
  fm_buf_puts(out, "event: requests\ndata: ");
  fm_events_window(&s->events, &w->cursor, (double)now / 1e6, t - w->last_ms, out);
  fm_buf_puts(out, "\n\n");
  w->last_ms = t;
}

static void watch_fill(fm_req *r, fm_buf *out, uint64_t now, uint64_t *next_due, bool *done) {
  watcher *w = r->ctx;
  if (r->srv->draining || r->srv->force_end) { /* a feed never holds up a shutdown */
    *done = true;
    return;
  }
  if (now >= w->next_us) {
    window(r, w, now, out);
    w->next_us = now + w->interval_us;
  }
  *next_due = w->next_us;
}

void fm_api_events(fm_req *r) {
  fm_server *s = r->srv;
  static const char *const known[] = {"interval_ms", NULL};
  const char *unknown = fm_req_query_unknown(r, known);
  if (unknown) {
    fm_openai_error(r, 400, "INVALID_ARGUMENT", unknown,
                    "%.64s: not a parameter of GET /admin/events; it takes interval_ms", unknown);
    return;
  }
  long interval = INTERVAL_MS_DEFAULT;
  const char *iv = fm_req_query(r, "interval_ms");
  if (iv) {
    char *end;
    interval = strtol(iv, &end, 10);
    if (*end || end == iv || interval < INTERVAL_MS_MIN || interval > INTERVAL_MS_MAX) {
      fm_openai_error(r, 400, "INVALID_ARGUMENT", "interval_ms",
                      "interval_ms: must be a whole number of milliseconds from %d to %d "
                      "(default %d)",
                      INTERVAL_MS_MIN, INTERVAL_MS_MAX, INTERVAL_MS_DEFAULT);
      return;
    }
  }
  if (s->events.subscribers >= FM_EVENTS_MAX_SUBSCRIBERS) {
    fm_openai_error(r, 503, "TOO_MANY_FEEDS", NULL,
                    "%d live feeds are open, the most this server serves at once; close a "
                    "dashboard (or another GET /admin/events) and retry",
                    FM_EVENTS_MAX_SUBSCRIBERS);
    return;
  }
  watcher *w = calloc(1, sizeof(*w));
  if (!w) {
    fm_openai_error(r, 500, "INTERNAL", NULL, "out of memory; retry");
    return;
  }
  s->events.subscribers++;
  fm_events_cursor_init(&s->events, &w->cursor);
  w->interval_us = (uint64_t)((double)interval * 1000.0 * s->opt.time_scale);
  if (w->interval_us == 0) w->interval_us = 1;
  w->next_us = fm_server_now(s); /* the first window at once */
  w->last_ms = real_ms();
  r->ctx = w;
  r->on_close = watch_close;
  r->fill = watch_fill;
  fm_req_stream(r);
}

/* ---- GET /ui ---------------------------------------------------------------- */

/* The embedded files (builtin_ui.c, from embed_ui.cmake), ended by NULL. */
extern const char *const fm_ui_names[];
extern const unsigned char *const fm_ui_data[];
extern const unsigned long fm_ui_sizes[];

static const char *content_type(const char *name) {
  static const struct {
    const char *ext, *type;
  } types[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".png", "image/png"},
      {".svg", "image/svg+xml"},
      {".json", "application/json"},
      {".ico", "image/x-icon"},
  };
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
    if (!strcmp(dot, types[i].ext)) return types[i].type;
  return "application/octet-stream";
}

void fm_api_ui(fm_req *r, const char *file) {
  fm_server *s = r->srv;
  bool get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
  if (!get) {
    fm_req_header_str(r, "Allow", "GET, HEAD");
    fm_openai_error(r, 405, "METHOD_NOT_ALLOWED", NULL, "%s is not allowed on %s; use GET",
                    r->method, r->url);
    return;
  }
  /* The page holds no data: with --admin-token anyone may load it (it asks
   * for the token its calls need); without one, as /admin, loopback only. */
  bool token = s->opt.admin_token && *s->opt.admin_token;
  if (!token && !fm_req_peer_is_loopback(r)) {
    fm_openai_error(r, 403, "PERMISSION_DENIED", NULL,
                    "the dashboard is served to loopback peers only when the server runs "
                    "without --admin-token; open it on the same host or start the server with "
                    "--admin-token");
    return;
  }
  if (!file || !*file) file = "index.html";
  for (size_t i = 0; fm_ui_names[i]; i++) {
    if (strcmp(fm_ui_names[i], file) != 0) continue;
    fm_buf b;
    fm_buf_init(&b);
    fm_buf_put(&b, fm_ui_data[i], fm_ui_sizes[i]);
    fm_req_header_str(r, "Cache-Control", "no-cache");
    fm_req_reply(r, 200, content_type(file), &b);
    fm_buf_free(&b);
    return;
  }
  fm_openai_error(r, 404, "NOT_FOUND", NULL, "no dashboard file %.100s; the dashboard is at /ui",
                  file);
}
