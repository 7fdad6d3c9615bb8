/* http.c — libmicrohttpd inside libuv loops: the workers.
 *
 * Each worker runs one MHD daemon in external-epoll mode on its own loop
 * (worker 0 on the main loop, the others on their own threads) and its own
 * SO_REUSEPORT listening socket. The daemon's epoll fd is level-watched by a
 * uv_poll, so MHD_run() is called whenever a socket it owns is ready or a
 * resumed connection has been signalled; a uv_timer covers MHD's own
 * timeouts. A request that waits is suspended with MHD_suspend_connection()
 * and resumed from its own uv_timer: timers fire in the loop's timer phase,
 * the resumes signal MHD's inter-thread channel, and the next poll phase runs
 * MHD once for all of them.
 *
 * Threads. A request's handles and connection are touched only by its own
 * worker's thread. The simulation core is shared: every entry into handler
 * code (the access handler, completion, a stream's fill, a hang-up, the fleet
 * and scenario timers) holds s->core. When handler code on one worker wakes a
 * request of another (a queue place freed by a stream ending elsewhere), the
 * request goes to that worker's inbox and its uv_async; shutdown steps reach
 * the workers the same way. With one worker there is one thread, the lock is
 * never contended and every wake is direct.
 *
 * Request lifecycle: the access handler collects the body, then dispatches
 * to a route handler (api_*.c) once. A handler answers now (fm_req_reply),
 * streams (fm_req_stream), or waits (fm_req_wait_until / fm_req_park); after
 * a wait MHD calls the access handler again and the continuation runs there,
 * which is the only place MHD allows a response to be queued. When MHD
 * reports the request complete, on_close runs and the request is freed. */
#include "server.h"

#include "drill.h"
#include "log.h"
#include "routes.h"

#include <cjson/cJSON.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- time --------------------------------------------------------------- */

static uint64_t server_clock_now(void *ctx) {
  fm_server *s = ctx;
  double real_us = (double)(uv_hrtime() - s->t0_ns) / 1000.0;
  return (uint64_t)(real_us * s->opt.time_scale);
}

/* Milliseconds of the worker's loop time until the simulated time due_us (rounded up). */
static uint64_t delay_ms_until(fm_worker *w, uint64_t due_us) {
  fm_server *s = w->srv;
  double real_due_ns = (double)s->t0_ns + (double)due_us * 1000.0 / s->opt.time_scale;
  double loop_now_ns = (double)uv_now(w->loop) * 1e6;
  if (real_due_ns <= loop_now_ns) return 0;
  return (uint64_t)ceil((real_due_ns - loop_now_ns) / 1e6);
}

/* ---- running MHD from the loop -------------------------------------------- */

/* The worker whose loop runs on this thread. */
static _Thread_local fm_worker *this_worker;

static void lock(fm_server *s) {
  uv_mutex_lock(&s->core);
}
static void unlock(fm_server *s) {
  uv_mutex_unlock(&s->core);
}

static void mhd_run(fm_worker *w);

static void on_mhd_timer(uv_timer_t *t) {
  mhd_run(t->data);
}

static void on_mhd_poll(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  mhd_run(p->data);
}

/* Not under the core lock: MHD calls back into handlers, which take it. */
static void mhd_run(fm_worker *w) {
  if (!w->mhd) return;
  MHD_run(w->mhd);
  if (!w->mhd) return;
  MHD_UNSIGNED_LONG_LONG to;
  if (MHD_get_timeout(w->mhd, &to) == MHD_YES)
    uv_timer_start(&w->mhd_timer, on_mhd_timer, to, 0);
  else
    uv_timer_stop(&w->mhd_timer);
}

/* ---- request bookkeeping ------------------------------------------------ */

/* One TCP connection, watched for hang-ups from accept to close (below). */
struct fm_conn {
  fm_worker *w;
  int fd;
  fm_req *req; /* the request being served, if any */
  uv_poll_t watch;
};

/* The request is freed when the last of its handles has closed. */
static void req_free(uv_handle_t *h) {
  fm_req *r = h->data;
  if (--r->closing == 0) free(r);
}

/* The route label of a request's path, for metrics. */
static const char *route_of(const fm_req *r) {
  const char *slash = strrchr(r->url, '/');
  if (!slash) return "other";
  if (!strcmp(slash, "/messages")) return "messages";
  if (!strcmp(slash, "/embeddings")) return "embeddings";
  if (!strcmp(slash, "/responses") || strstr(r->url, "/responses/")) return "responses";
  if (!strcmp(slash, "/completions"))
    return slash - r->url >= 5 && !strncmp(slash - 5, "/chat", 5) ? "chat/completions"
                                                                  : "completions";
  return "other";
}

size_t fm_server_live(const fm_server *s) {
  size_t n = 0;
  for (int i = 0; i < s->n_workers; i++)
    n += s->workers[i].n_live;
  return n;
}

/* Takes the request out of its worker's inbox, if a wake is still queued. */
static void inbox_remove(fm_req *r) {
  fm_worker *w = r->w;
  uv_mutex_lock(&w->inbox_lock);
  if (r->in_inbox) {
    for (fm_req **p = &w->inbox; *p; p = &(*p)->inbox_next) {
      if (*p == r) {
        *p = r->inbox_next;
        break;
      }
    }
    r->in_inbox = false;
  }
  uv_mutex_unlock(&w->inbox_lock);
}

static void wheel_remove(fm_req *r);

/* Under the core lock, on the request's own worker. */
static void req_destroy(fm_req *r) {
  fm_server *s = r->srv;
  fm_worker *w = r->w;
  /* Requests that never became a job (errors, models) are counted here;
   * jobs count themselves with their model and tier. */
  if (!r->ctx && r->status && (r->kind == FM_ROUTE_OPENAI || r->kind == FM_ROUTE_ANTHROPIC))
    fm_metrics_request(&s->metrics, route_of(r), -1, -1, r->status);
  if (r->on_close) r->on_close(r);
  r->on_close = NULL;
  if (r->prev)
    r->prev->next = r->next;
  else
    w->live = r->next;
  if (r->next) r->next->prev = r->prev;
  w->n_live--;
  inbox_remove(r);
  fm_buf_free(&r->body);
  fm_buf_free(&r->out);
  fm_buf_free(&r->hdrs);
  if (r->tcp) r->tcp->req = NULL;
  wheel_remove(r);
  if (!r->timer_ready) {
    free(r);
    return;
  }
  r->closing = 1;
  uv_close((uv_handle_t *)&r->timer, req_free);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)c;
  fm_worker *w = cls;
  fm_server *s = w->srv;
  fm_req *r = *con_cls;
  if (!r) return;
  *con_cls = NULL;
  if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && fm_log_enabled(FM_LOG_DEBUG)) {
    char code[16];
    snprintf(code, sizeof(code), "%d", (int)toe);
    fm_log(FM_LOG_DEBUG, "request ended early", "request_id", r->request_id, "reason", code, NULL);
  }
  lock(s);
  req_destroy(r);
  /* The last request of a drain: the main loop stops the workers (never
   * from inside an MHD callback). */
  if (s->draining && fm_server_live(s) == 0 && !s->stopped) uv_async_send(&s->main_async);
  unlock(s);
}

/* In external-epoll mode a resumed connection is only processed by the next
 * MHD_run(); the prepare handle runs it once per loop iteration, after the
 * timers that resumed connections and before the loop blocks in poll. */
static void req_resume(fm_req *r) {
  if (!r->suspended) return;
  r->suspended = false;
  MHD_resume_connection(r->conn);
  r->w->resume_pending = true;
}

/* Wakes a request of this thread's worker now, whatever it waited for. */
static void wake_here(fm_req *r) {
  if (r->timer_ready) uv_timer_stop(&r->timer);
  wheel_remove(r);
  req_resume(r);
}

/* ---- connections: a hang-up is noticed in any state ----------------------- *
 *
 * libmicrohttpd watches its sockets edge-triggered and, after a short read,
 * waits for the next edge before it reads again. A client that sends part of
 * a request (or all of it) and closes at once delivers its data and its FIN
 * in one edge: MHD reads the data and never sees the FIN, so the socket sits
 * in CLOSE-WAIT until the connection timeout, and a partial request counts
 * as in progress (a drain would wait for it). A suspended connection is not
 * watched by MHD at all. So every connection's socket is also watched here,
 * from accept to close, for the peer's hang-up (EPOLLRDHUP, level-triggered
 * by libuv: it fires once the FIN has arrived, whatever was read). On a
 * hang-up the socket is shut down both ways, which gives MHD the edge it
 * waits for: its next read ends the connection. A request waiting on it is
 * woken first so its slot or queue place is freed at once. A half-close
 * (shutdown(SHUT_WR) after the request) counts as a hang-up: no client of an
 * HTTP/1.1 API half-closes and still reads (docs/api.md). */

static void conn_free(uv_handle_t *h) {
  free(h->data);
}

static void on_peer_gone(uv_poll_t *p, int status, int events) {
  (void)events;
  fm_conn *c = p->data;
  uv_poll_stop(p); /* level-triggered: once is enough */
  if (status < 0 && status != UV_EBADF) return;
  fm_req *r = c->req;
  fm_server *s = c->w->srv;
  lock(s);
  s->metrics.peer_hangups++;
  bool wake = r && r->suspended;
  if (wake) {
    r->peer_gone = true;
    if (r->on_peer_gone) r->on_peer_gone(r);
  }
  unlock(s);
  if (wake) wake_here(r);
  shutdown(c->fd, SHUT_RDWR);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  fm_worker *w = cls;
  lock(w->srv);
  w->srv->metrics.connections_open += code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
  unlock(w->srv);
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    fm_conn *c = calloc(1, sizeof(*c));
    if (!c || !ci || uv_poll_init(w->loop, &c->watch, ci->connect_fd) != 0) {
      free(c); /* unwatched: MHD still serves it and its idle timeout still applies */
      *socket_context = NULL;
      return;
    }
    c->w = w;
    c->fd = ci->connect_fd;
    c->watch.data = c;
    uv_poll_start(&c->watch, UV_DISCONNECT, on_peer_gone);
    *socket_context = c;
    return;
  }
  fm_conn *c = *socket_context; /* closed: MHD closes the fd after this returns */
  *socket_context = NULL;
  if (!c) return;
  if (c->req) c->req->tcp = NULL;
  uv_close((uv_handle_t *)&c->watch, conn_free);
}

/* Every worker keeps a fleet timer on the earliest queue deadline; whichever
 * fires first expires what is due, the others find nothing left. */
static void on_fleet_timer(uv_timer_t *t) {
  fm_worker *w = t->data;
  lock(w->srv);
  w->fleet_deadline = UINT64_MAX;
  fm_fleet_expire(&w->srv->fleet);
  unlock(w->srv);
}

/* Under the core lock. */
static void arm_fleet_timer(fm_worker *w) {
  uint64_t due = fm_fleet_next_deadline(&w->srv->fleet);
  if (due == w->fleet_deadline) return;
  w->fleet_deadline = due;
  if (due == UINT64_MAX)
    uv_timer_stop(&w->fleet_timer);
  else
    uv_timer_start(&w->fleet_timer, on_fleet_timer, delay_ms_until(w, due), 0);
}

static void on_prepare(uv_prepare_t *h) {
  fm_worker *w = h->data;
  if (w->stopped) return;
  lock(w->srv);
  arm_fleet_timer(w);
  unlock(w->srv);
  if (!w->resume_pending) return;
  w->resume_pending = false;
  mhd_run(w);
  lock(w->srv);
  arm_fleet_timer(w);
  unlock(w->srv);
}

static void on_wheel(uv_timer_t *t);

static void on_req_timer(uv_timer_t *t) {
  req_resume(t->data);
}

/* A short wait (a stream's next token) goes on the worker's wheel, behind
 * one timer armed for the earliest tick (wheel.h); a longer one keeps the
 * request's own uv timer. Half the wheel: a loop that runs late cannot then
 * make a wait share its slot with the next lap's. */
#define FM_WHEEL_MAX_MS (FM_WHEEL_SLOTS / 2)

static void wheel_arm(fm_worker *w, uint64_t tick) {
  w->wheel_armed = tick;
  if (tick == UINT64_MAX) {
    uv_timer_stop(&w->wheel_timer);
    return;
  }
  uint64_t now = uv_now(w->loop);
  uv_timer_start(&w->wheel_timer, on_wheel, tick > now ? tick - now : 0, 0);
}

static void wheel_due(fm_wheel_node *n, void *ctx) {
  (void)ctx;
  req_resume((fm_req *)((char *)n - offsetof(fm_req, wait)));
}

static void on_wheel(uv_timer_t *t) {
  fm_worker *w = t->data;
  fm_wheel_run(&w->wheel, uv_now(w->loop), wheel_due, NULL);
  wheel_arm(w, fm_wheel_next(&w->wheel));
}

/* A request no longer waits: off the wheel (its timer may fire for nothing). */
static void wheel_remove(fm_req *r) {
  fm_wheel_remove(&r->w->wheel, &r->wait);
}

static void req_suspend_for(fm_req *r, uint64_t delay_ms) {
  MHD_suspend_connection(r->conn);
  r->suspended = true;
  fm_worker *w = r->w;
  if (delay_ms < FM_WHEEL_MAX_MS && fm_wheel_add(&w->wheel, &r->wait, uv_now(w->loop), delay_ms)) {
    if (r->wait.tick < w->wheel_armed) wheel_arm(w, r->wait.tick);
    return;
  }
  if (!r->timer_ready) {
    uv_timer_init(r->w->loop, &r->timer);
    r->timer.data = r;
    r->timer_ready = true;
  }
  uv_timer_start(&r->timer, on_req_timer, delay_ms, 0);
}

/* ---- what handlers call ------------------------------------------------- */

const char *fm_req_header_in(fm_req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *fm_req_query(fm_req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct query_scan {
  const char *const *known;
  const char *unknown;
} query_scan;

static enum MHD_Result find_unknown_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value) {
  (void)kind;
  (void)value;
  query_scan *q = cls;
  for (const char *const *k = q->known; *k; k++)
    if (!strcmp(*k, key)) return MHD_YES;
  q->unknown = key;
  return MHD_NO;
}

const char *fm_req_query_unknown(fm_req *r, const char *const *known) {
  query_scan q = {known, NULL};
  MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, find_unknown_arg, &q);
  return q.unknown;
}

/* An answer carries about 20 headers, 600 to 900 bytes of them: room for
 * them all at the first, rather than growing through 256, 512 and 1024.
 * 1 KiB with the buffer's NUL: glibc serves that from its per-thread cache,
 * where 2 KiB would come from the large bins, whose every allocation first
 * consolidates the fast bins (malloc_consolidate). */
#define FM_HDRS_START (1024 - 1)

/* Appends the name and its NUL. */
static void header_name(fm_req *r, const char *name) {
  if (!r->hdrs.cap) fm_buf_reserve(&r->hdrs, FM_HDRS_START);
  fm_buf_put(&r->hdrs, name, strlen(name) + 1);
}

void fm_req_header(fm_req *r, const char *name, const char *fmt, ...) {
  header_name(r, name);
  va_list ap;
  va_start(ap, fmt);
  fm_buf_vprintf(&r->hdrs, fmt, ap);
  va_end(ap);
  fm_buf_putc(&r->hdrs, '\0');
}

void fm_req_header_str(fm_req *r, const char *name, const char *value) {
  header_name(r, name);
  fm_buf_put(&r->hdrs, value, strlen(value) + 1);
}

void fm_req_header_int(fm_req *r, const char *name, long long value) {
  header_name(r, name);
  fm_buf_put_i64(&r->hdrs, value);
  fm_buf_putc(&r->hdrs, '\0');
}

void fm_req_header_secs(fm_req *r, const char *name, uint64_t us) {
  header_name(r, name);
  fm_buf_put_milli(&r->hdrs, (us + 500) / 1000);
  fm_buf_putc(&r->hdrs, '\0');
}

bool fm_req_has_header(fm_req *r, const char *name) {
  if (!r->hdrs.len) return false; /* data is NULL then, and NULL + 0 is undefined */
  for (const char *p = r->hdrs.data, *end = p + r->hdrs.len; p < end;) {
    if (strcasecmp(p, name) == 0) return true;
    p += strlen(p) + 1;
    p += strlen(p) + 1;
  }
  return false;
}

static void add_headers(fm_req *r, struct MHD_Response *resp) {
  MHD_add_response_header(resp, "x-request-id", r->request_id);
  if (r->srv->draining) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  if (!r->hdrs.len) return; /* data is NULL then, and NULL + 0 is undefined */
  const char *p = r->hdrs.data, *end = r->hdrs.data + r->hdrs.len;
  while (p < end) {
    const char *name = p;
    const char *value = name + strlen(name) + 1;
    MHD_add_response_header(resp, name, value);
    p = value + strlen(value) + 1;
  }
}

static void log_request(fm_req *r, int status) {
  if (!fm_log_enabled(FM_LOG_DEBUG)) return;
  char st[8];
  snprintf(st, sizeof(st), "%d", status);
  fm_log(FM_LOG_DEBUG, "request", "method", r->method, "path", r->url, "status", st, "request_id",
         r->request_id, NULL);
}

void fm_req_reply(fm_req *r, int status, const char *content_type, fm_buf *body) {
  if (r->responded) return;
  size_t len = 0;
  char *data = fm_buf_steal(body, &len);
  struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, data, free);
  if (!resp) {
    free(data);
    return;
  }
  if (content_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  add_headers(r, resp);
  MHD_queue_response(r->conn, (unsigned)status, resp);
  MHD_destroy_response(resp);
  r->responded = true;
  r->status = status;
  log_request(r, status);
}

/* A held stream's memory. A stream that is waiting costs what the server
 * keeps for it between tokens, and 10 000 of them must fit in 128 MiB
 * (docs/performance.md, "Issue 17: held streams and cadence"). So:
 *
 * - The fill writes into one scratch buffer per worker, and what it made is
 *   copied straight into the space libmicrohttpd lends the reader. Only when
 *   that space is too small (a stream behind its schedule) does the rest go
 *   to the request's own r->out, which is freed again once it has drained:
 *   an allocation per backlog, none per token.
 * - The response block of MHD_create_response_from_callback is not used for
 *   a chunked body (libmicrohttpd 0.9.75 hands the reader its connection's
 *   write buffer), only for an HTTP/1.0 client's unchunked one; it is kept
 *   small.
 * - libmicrohttpd zeroes the unused half of the connection's pool when it
 *   switches from reading to sending, which makes those pages resident, and
 *   then lends them to the reader as write space. A stream writes a few
 *   hundred bytes at a time at the start of that space, so at the first read
 *   the whole pages past what was written are given back (MADV_DONTNEED):
 *   they read as zeros if touched again, which is all the reader's contract
 *   promises of space it has not filled. One madvise per stream; ~8 KiB. */
#define FM_STREAM_BLOCK 256

static void give_back_pages(char *from, char *to) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE); /* per call: workers share this */
  uintptr_t a = ((uintptr_t)from + page - 1) & ~(page - 1), b = (uintptr_t)to & ~(page - 1);
  if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Copies up to max bytes of src[0, len) to buf; the rest becomes r->out. */
static size_t stream_emit(fm_req *r, const char *src, size_t len, char *buf, size_t max) {
  size_t n = len < max ? len : max;
  memcpy(buf, src, n);
  if (n < len) {
    fm_buf_reset(&r->out);
    fm_buf_put(&r->out, src + n, len - n);
    r->out_pos = 0;
  }
  return n;
}

/* Streams whatever the handler's fill function has due; suspends when nothing is. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  fm_req *r = cls;
  fm_server *s = r->srv;
  if (r->out_pos < r->out.len) { /* a backlog from an earlier call */
    size_t n = r->out.len - r->out_pos;
    if (n > max) n = max;
    memcpy(buf, r->out.data + r->out_pos, n);
    r->out_pos += n;
    if (r->out_pos >= r->out.len) {
      fm_buf_free(&r->out);
      r->out_pos = 0;
    }
    return (ssize_t)n;
  }
  if (!r->fill) return MHD_CONTENT_READER_END_OF_STREAM;
  fm_buf *out = &r->w->scratch;
  fm_buf_reset(out);
  uint64_t next_due = 0;
  bool done = false;
  lock(s);
  r->fill(r, out, fm_server_now(s), &next_due, &done);
  unlock(s);
  if (r->drop) return MHD_CONTENT_READER_END_WITH_ERROR; /* a disconnect fault */
  if (out->oom) {
    fm_buf_free(out); /* the next stream starts afresh */
    return MHD_CONTENT_READER_END_OF_STREAM;
  }
  size_t n = 0;
  if (out->len) {
    if (done) r->fill = NULL; /* the next call after this data ends the stream */
    n = stream_emit(r, out->data, out->len, buf, max);
  } else if (done) {
    return MHD_CONTENT_READER_END_OF_STREAM;
  }
  if (!r->pages_given_back) {
    r->pages_given_back = true;
    give_back_pages(buf + n, buf + max);
  }
  if (n) return (ssize_t)n;
  if (next_due == UINT64_MAX)
    fm_req_park(r, NULL); /* stalled: wait for the peer to leave */
  else
    req_suspend_for(r, delay_ms_until(r->w, next_due));
  return 0;
}

void fm_req_stream(fm_req *r) {
  if (r->responded) return;
  struct MHD_Response *resp =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, FM_STREAM_BLOCK, stream_reader, r, NULL);
  if (!resp) return;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  add_headers(r, resp);
  fm_buf_free(&r->hdrs); /* MHD has its own copy; a stream may be held for minutes */
  MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  r->responded = true;
  r->streaming = true;
  r->status = 200;
  log_request(r, 200);
}

void fm_req_wait_until(fm_req *r, uint64_t due_us, void (*cb)(fm_req *r)) {
  r->resume_cb = cb;
  req_suspend_for(r, delay_ms_until(r->w, due_us));
}

void fm_req_park(fm_req *r, void (*cb)(fm_req *r)) {
  r->resume_cb = cb;
  MHD_suspend_connection(r->conn);
  r->suspended = true;
}

void fm_req_wake(fm_req *r) {
  fm_worker *w = r->w;
  if (w == this_worker) {
    wake_here(r);
    return;
  }
  uv_mutex_lock(&w->inbox_lock);
  if (!r->in_inbox) {
    r->in_inbox = true;
    r->inbox_next = w->inbox;
    w->inbox = r;
  }
  uv_mutex_unlock(&w->inbox_lock);
  uv_async_send(&w->inbox_async);
}

bool fm_req_peer_is_loopback(fm_req *r) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!ci || !ci->client_addr) return false;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

/* ---- the access handler ------------------------------------------------- */

/* What one pass over the request's headers finds: their bytes as MHD holds
 * them in the pool, and the Content-Length values. */
typedef struct head_scan {
  size_t bytes;
  const char *first_length;
  int lengths;
  bool lengths_differ;
} head_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
  (void)kind;
  head_scan *h = cls;
  size_t kl = strlen(key);
  h->bytes += kl + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
  if (kl != sizeof(MHD_HTTP_HEADER_CONTENT_LENGTH) - 1 || !value ||
      strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
    return MHD_YES;
  if (h->lengths++ == 0)
    h->first_length = value;
  else if (strcmp(h->first_length, value) != 0)
    h->lengths_differ = true;
  return MHD_YES;
}

/* Reads the head once: its size (the request line and headers) into
 * r->head_bytes, and what it says of the body, judged before any of it is
 * read: a declared length over the limit is answered 413 at once rather
 * than after the client has sent it all, and two different lengths (a
 * request smuggling shape) are refused. Either answer closes the
 * connection, since the body is never read. Returns true when the request
 * is answered now. */
static bool read_head(fm_req *r, const char *url, const char *method, size_t limit) {
  head_scan h = {.bytes = strlen(method) + strlen(url) + 12}; /* " HTTP/1.1\r\n" */
  MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_header, &h);
  r->head_bytes = h.bytes;
  if (h.lengths_differ)
    r->length_conflict = true;
  else if (h.first_length && strtoull(h.first_length, NULL, 10) > limit)
    r->too_large = true;
  return r->length_conflict || r->too_large;
}

/* The request's next step, under the core lock: a handler's continuation
 * after a wait, or the route on first dispatch. */
static void dispatch(fm_req *r) {
  if (r->drop) return;
  if (r->resume_cb) { /* back from a wait */
    void (*cb)(fm_req *) = r->resume_cb;
    r->resume_cb = NULL;
    cb(r);
  } else {
    fm_route(r);
  }
  if (r->drop) return; /* a disconnect fault: close without an answer */
  if (!r->responded && !r->suspended) {
    /* A handler must answer or wait; this is a bug, so say so rather than hang. */
    fm_buf b;
    fm_buf_init(&b);
    fm_buf_puts(&b, "{\"error\":{\"object\":\"error\",\"type\":\"internal_error\",\"code\":"
                    "\"INTERNAL\",\"message\":\"handler produced no response\",\"param\":null}}");
    fm_req_reply(r, 500, "application/json", &b);
  }
}

/* Writes v in lower-case hex, at least width digits; returns the digits. */
static size_t put_hex(char *out, uint64_t v, size_t width) {
  char tmp[16];
  size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  while (n < width)
    tmp[n++] = '0';
  for (size_t i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  return n;
}

/* printf's "%016llx%08llx" of mix and seq (at most 32 digits), without printf. */
static void request_id(char out[40], uint64_t mix, uint64_t seq) {
  size_t n = put_hex(out, mix, 16);
  n += put_hex(out + n, seq, 8);
  out[n] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)version;
  fm_worker *w = cls;
  fm_server *s = w->srv;
  fm_req *r = *con_cls;
  if (!r) {
    r = calloc(1, sizeof(*r));
    if (!r) return MHD_NO;
    r->srv = s;
    r->w = w;
    r->conn = conn;
    r->method = method;
    r->url = url;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->tcp = ci ? ci->socket_context : NULL;
    if (r->tcp) r->tcp->req = r;
    r->next = w->live;
    if (w->live) w->live->prev = r;
    w->live = r;
    lock(s);
    uint64_t id = ++s->request_seq;
    w->n_live++;
    unlock(s);
    request_id(r->request_id, fm_mix64(s->opt.seed ^ id), id);
    *con_cls = r;
    if (!read_head(r, url, method, s->cfg.max_body_bytes)) return MHD_YES;
    fm_req_header_str(r, "Connection", "close");
    lock(s);
    dispatch(r);
    unlock(s);
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t limit = s->cfg.max_body_bytes;
    if (!r->too_large && r->body.len + *upload_data_size <= limit)
      fm_buf_put(&r->body, upload_data, *upload_data_size);
    else
      r->too_large = true;
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (r->responded) return MHD_YES;
  lock(s);
  dispatch(r);
  bool drop = r->drop;
  unlock(s);
  return drop ? MHD_NO : MHD_YES;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
    msg[--n] = '\0';
  fm_log(FM_LOG_DEBUG, "libmicrohttpd", "detail", msg, NULL);
}

/* ---- listening, signals, shutdown ---------------------------------------- */

/* A listening socket on the address, with SO_REUSEPORT when the workers
 * share the port. Returns the fd, or -1 with errno set. */
static int listen_on(const struct addrinfo *ai, bool reuseport) {
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if ((reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static uint16_t port_of(int fd) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                        : ((struct sockaddr_in *)&ss)->sin_port);
}

/* One listening socket per worker, all on one port. With several workers the
 * port is first bound alone: SO_REUSEPORT would otherwise let a second
 * server join a port already in use instead of failing. */
static int open_listeners(fm_server *s) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  char port[8];
  snprintf(port, sizeof(port), "%d", s->opt.port);
  int rc = getaddrinfo(s->opt.host, port, &hints, &res);
  if (rc != 0) {
    fm_log(FM_LOG_ERROR, "--host must be a numeric IPv4 or IPv6 address", "host", s->opt.host,
           "detail", gai_strerror(rc), NULL);
    return -1;
  }
  bool shared = s->n_workers > 1;
  int fd = 0;
  if (shared && s->opt.port != 0) {
    fd = listen_on(res, false);
    if (fd >= 0) close(fd);
  }
  for (int i = 0; i < s->n_workers && fd >= 0; i++) {
    if (i == 1) { /* the others join the port the first one got */
      uint16_t p = port_of(s->workers[0].listen_fd);
      if (res->ai_family == AF_INET6)
        ((struct sockaddr_in6 *)res->ai_addr)->sin6_port = htons(p);
      else
        ((struct sockaddr_in *)res->ai_addr)->sin_port = htons(p);
    }
    fd = s->workers[i].listen_fd = listen_on(res, shared);
  }
  freeaddrinfo(res);
  if (fd < 0) {
    fm_log(FM_LOG_ERROR, "cannot listen", "host", s->opt.host, "port", port, "detail",
           strerror(errno), NULL);
    return -1;
  }
  s->port = port_of(s->workers[0].listen_fd);
  return 0;
}

static int write_port_file(fm_server *s) {
  if (!s->opt.port_file) return 0;
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp.%d", s->opt.port_file, (int)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f || fprintf(f, "%u\n", (unsigned)s->port) < 0 || fclose(f) != 0 ||
      rename(tmp, s->opt.port_file) != 0) {
    fm_log(FM_LOG_ERROR, "cannot write --port-file", "path", s->opt.port_file, "detail",
           strerror(errno), NULL);
    return -1;
  }
  return 0;
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* ---- workers: commands, shutdown ------------------------------------------ */

enum {
  FM_CMD_DRAIN = 1,     /* stop accepting */
  FM_CMD_FORCE_END = 2, /* wake every request so it ends now */
  FM_CMD_STOP = 4,      /* stop MHD and close the worker's handles */
};

static void post_command(fm_worker *w, unsigned cmd) {
  uv_mutex_lock(&w->inbox_lock);
  w->commands |= cmd;
  uv_mutex_unlock(&w->inbox_lock);
  uv_async_send(&w->inbox_async);
}

static void post_all(fm_server *s, unsigned cmd) {
  for (int i = 0; i < s->n_workers; i++)
    post_command(&s->workers[i], cmd);
}

/* The worker's part of stopping: MHD may not be stopped with suspended
 * connections, so they are woken first; MHD_stop_daemon then completes
 * every request still open. */
static void worker_stop(fm_worker *w) {
  if (w->stopped) return;
  w->stopped = true;
  for (fm_req *r = w->live; r; r = r->next)
    req_resume(r);
  uv_poll_stop(&w->mhd_poll);
  close_handle((uv_handle_t *)&w->mhd_poll);
  close_handle((uv_handle_t *)&w->mhd_timer);
  close_handle((uv_handle_t *)&w->prepare);
  close_handle((uv_handle_t *)&w->fleet_timer);
  close_handle((uv_handle_t *)&w->wheel_timer);
  close_handle((uv_handle_t *)&w->inbox_async);
  struct MHD_Daemon *d = w->mhd;
  w->mhd = NULL;
  if (d) MHD_stop_daemon(d);
}

/* Wakes queued requests other threads handed over, and runs commands. */
static void on_inbox(uv_async_t *a) {
  fm_worker *w = a->data;
  uv_mutex_lock(&w->inbox_lock);
  fm_req *list = w->inbox;
  w->inbox = NULL;
  for (fm_req *r = list; r; r = r->inbox_next)
    r->in_inbox = false;
  unsigned cmd = w->commands;
  w->commands = 0;
  uv_mutex_unlock(&w->inbox_lock);
  for (fm_req *r = list, *next; r; r = next) {
    next = r->inbox_next;
    wake_here(r);
  }
  if ((cmd & FM_CMD_DRAIN) && w->mhd && w->listen_fd >= 0) {
    int fd = MHD_quiesce_daemon(w->mhd);
    if (fd >= 0) close(fd);
    w->listen_fd = -1;
  }
  if (cmd & FM_CMD_FORCE_END) {
    for (fm_req *r = w->live; r; r = r->next)
      wake_here(r);
  }
  if (cmd & FM_CMD_STOP) worker_stop(w);
}

/* Everything has ended (or the grace period is over): stop the workers and
 * let the loops exit. On the main loop. */
static void finish_shutdown(fm_server *s) {
  lock(s);
  bool was = s->stopped;
  s->stopped = true;
  if (!was) fm_drill_close(s);
  unlock(s);
  if (was) return;
  post_all(s, FM_CMD_STOP);
  close_handle((uv_handle_t *)&s->grace_timer);
  close_handle((uv_handle_t *)&s->sig_term);
  close_handle((uv_handle_t *)&s->sig_int);
  close_handle((uv_handle_t *)&s->main_async);
  fm_log(FM_LOG_INFO, "stopped", NULL);
}

/* Grace period over: every request still running ends now, with a final event. */
static void on_grace_over(uv_timer_t *t) {
  fm_server *s = t->data;
  lock(s);
  size_t live = fm_server_live(s);
  bool first = !s->force_end;
  if (live && first) s->force_end = true;
  unlock(s);
  if (live == 0 || !first) {
    finish_shutdown(s);
    return;
  }
  char n[24];
  snprintf(n, sizeof(n), "%zu", live);
  fm_log(FM_LOG_WARN, "grace period over; ending requests still running", "requests", n, NULL);
  post_all(s, FM_CMD_FORCE_END);
  /* Give the final events a moment to be written, then stop regardless. */
  uv_timer_start(&s->grace_timer, on_grace_over, 1000, 0);
}

/* Another thread asked the main loop for something: the scenario timer
 * changed, or the last request of a drain completed. */
static void on_main_async(uv_async_t *a) {
  fm_server *s = a->data;
  lock(s);
  bool rearm = s->drill_rearm && !s->stopped;
  s->drill_rearm = false;
  if (rearm) fm_drill_arm(s);
  bool drained = s->draining && fm_server_live(s) == 0 && !s->stopped;
  unlock(s);
  if (drained) finish_shutdown(s);
}

/* Under the core lock. */
void fm_server_rearm_scenario(fm_server *s) {
  if (s->stopped) return;
  if (this_worker == &s->workers[0]) { /* the main loop's own thread */
    fm_drill_arm(s);
    return;
  }
  s->drill_rearm = true;
  uv_async_send(&s->main_async);
}

static void on_signal(uv_signal_t *h, int signum) {
  fm_server *s = h->data;
  lock(s);
  bool again = s->draining;
  s->draining = true;
  size_t live = fm_server_live(s);
  unlock(s);
  if (again) {
    fm_log(FM_LOG_WARN, "second signal: ending every request now", NULL);
    uv_timer_start(&s->grace_timer, on_grace_over, 0, 0);
    return;
  }
  fm_log(FM_LOG_INFO, "draining: no longer accepting connections", "signal",
         signum == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
  post_all(s, FM_CMD_DRAIN);
  if (live == 0) {
    finish_shutdown(s);
    return;
  }
  uv_timer_start(&s->grace_timer, on_grace_over, (uint64_t)(s->opt.grace_period_s * 1000), 0);
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* ---- starting ------------------------------------------------------------ */

static void worker_main(void *arg) {
  fm_worker *w = arg;
  this_worker = w;
  mhd_run(w);
  uv_run(w->loop, UV_RUN_DEFAULT);
}

/* The worker's daemon and handles, on its loop (not yet running). */
static int worker_init(fm_worker *w, unsigned conn_limit) {
  if (uv_mutex_init(&w->inbox_lock) != 0) return -1;
  w->mhd = MHD_start_daemon(
      MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, w,
      MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, w, MHD_OPTION_LISTEN_SOCKET, w->listen_fd,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, w, MHD_OPTION_CONNECTION_LIMIT, conn_limit,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)FM_CONN_POOL_BYTES, MHD_OPTION_NOTIFY_CONNECTION,
      on_connection, w, MHD_OPTION_CONNECTION_TIMEOUT, w->srv->opt.idle_timeout_s, MHD_OPTION_END);
  if (!w->mhd) {
    fm_log(FM_LOG_ERROR, "libmicrohttpd failed to start", NULL);
    return -1;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  uv_poll_init(w->loop, &w->mhd_poll, di->epoll_fd);
  w->mhd_poll.data = w;
  uv_poll_start(&w->mhd_poll, UV_READABLE, on_mhd_poll);
  uv_timer_init(w->loop, &w->mhd_timer);
  w->mhd_timer.data = w;
  uv_timer_init(w->loop, &w->fleet_timer);
  w->fleet_timer.data = w;
  w->fleet_deadline = UINT64_MAX;
  fm_wheel_init(&w->wheel);
  uv_timer_init(w->loop, &w->wheel_timer);
  w->wheel_timer.data = w;
  w->wheel_armed = UINT64_MAX;
  uv_prepare_init(w->loop, &w->prepare);
  w->prepare.data = w;
  uv_prepare_start(&w->prepare, on_prepare);
  uv_async_init(w->loop, &w->inbox_async, on_inbox);
  w->inbox_async.data = w;
  return 0;
}

int fm_server_start(fm_server *s, uv_loop_t *loop) {
  s->loop = loop;
  s->t0_ns = uv_hrtime();
  s->clock.now_us = server_clock_now;
  s->clock.ctx = s;
  if (s->opt.max_body_bytes > 0) s->cfg.max_body_bytes = (size_t)s->opt.max_body_bytes;
  if (uv_mutex_init(&s->core) != 0) return -1;
  s->n_workers = s->opt.workers > 0 ? s->opt.workers : 1;
  s->workers = calloc((size_t)s->n_workers, sizeof(*s->workers));
  if (!s->workers) return -1;
  for (int i = 0; i < s->n_workers; i++) {
    fm_worker *w = &s->workers[i];
    w->srv = s;
    w->listen_fd = -1;
    w->loop = i == 0 ? loop : &w->own_loop;
    if (i > 0 && uv_loop_init(&w->own_loop) != 0) return -1;
  }
  this_worker = &s->workers[0];
  if (fm_fleet_init(&s->fleet, &s->cfg, &s->clock, s->opt.seed, s->opt.instant) != 0) {
    fm_log(FM_LOG_ERROR, "out of memory building the fleet", NULL);
    return -1;
  }
  fm_accounts_init(&s->accounts, &s->cfg.accounts, s->cfg.n_models, s->cfg.max_accounts);
  fm_faults_init(&s->faults, s->opt.seed);
  if (fm_metrics_init(&s->metrics, s->cfg.n_models, s->cfg.n_pools) != 0) {
    fm_log(FM_LOG_ERROR, "out of memory for metrics", NULL);
    return -1;
  }
  fm_journal_init(&s->journal, s->cfg.journal_size, s->cfg.journal_body_bytes);
  fm_events_init(&s->events);
  if (fm_resp_store_init(&s->responses, s->cfg.responses_size, s->cfg.responses_bytes,
                         (uint64_t)(s->cfg.responses_ttl_s * 1e6)) != 0) {
    fm_log(FM_LOG_ERROR, "out of memory for the response store", NULL);
    return -1;
  }
  raise_fd_limit();
  if (open_listeners(s) != 0) return -1;
  struct rlimit rl;
  unsigned limit = 60000;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < limit + 64)
    limit = rl.rlim_cur > 128 ? (unsigned)rl.rlim_cur - 64 : 64;
  limit /= (unsigned)s->n_workers;
  for (int i = 0; i < s->n_workers; i++)
    if (worker_init(&s->workers[i], limit) != 0) return -1;
  fm_drill_init(s);
  uv_timer_init(loop, &s->grace_timer);
  s->grace_timer.data = s;
  uv_async_init(loop, &s->main_async, on_main_async);
  s->main_async.data = s;
  uv_signal_init(loop, &s->sig_term);
  s->sig_term.data = s;
  uv_signal_start(&s->sig_term, on_signal, SIGTERM);
  uv_signal_init(loop, &s->sig_int);
  s->sig_int.data = s;
  uv_signal_start(&s->sig_int, on_signal, SIGINT);

  char url[300];
  bool v6 = strchr(s->opt.host, ':') != NULL;
  snprintf(url, sizeof(url), "http://%s%s%s:%u", v6 ? "[" : "", s->opt.host, v6 ? "]" : "",
           (unsigned)s->port);
  char msg[320], workers[16];
  snprintf(msg, sizeof(msg), "listening on %s", url);
  snprintf(workers, sizeof(workers), "%d", s->n_workers);
  if (s->n_workers > 1)
    fm_log(FM_LOG_INFO, msg, "workers", workers, NULL);
  else
    fm_log(FM_LOG_INFO, msg, NULL);
  for (int i = 1; i < s->n_workers; i++) {
    fm_worker *w = &s->workers[i];
    if (uv_thread_create(&w->thread, worker_main, w) != 0) {
      fm_log(FM_LOG_ERROR, "cannot start a worker thread", NULL);
      return -1;
    }
    w->thread_started = true;
  }
  if (write_port_file(s) != 0) return -1;
  mhd_run(&s->workers[0]);
  return 0;
}

/* After the main loop has stopped: every worker has been told to stop. */
void fm_server_free(fm_server *s) {
  for (int i = 0; s->workers && i < s->n_workers; i++) {
    fm_worker *w = &s->workers[i];
    if (!w->thread_started) continue;
    if (!s->stopped) post_command(w, FM_CMD_STOP); /* start failed after the threads began */
    uv_thread_join(&w->thread);
  }
  for (int i = 0; s->workers && i < s->n_workers; i++) {
    fm_worker *w = &s->workers[i];
    if (w->mhd)
      MHD_stop_daemon(w->mhd); /* closes the listening socket unless quiesced */
    else if (w->listen_fd >= 0 && !w->stopped)
      close(w->listen_fd);
    w->mhd = NULL;
    fm_buf_free(&w->scratch);
    if (i > 0) uv_loop_close(&w->own_loop);
  }
  fm_fleet_free(&s->fleet);
  fm_accounts_free(&s->accounts);
  fm_faults_free(&s->faults);
  fm_replies_free(&s->replies);
  cJSON_Delete(s->boot_replies);
  s->boot_replies = NULL;
  fm_metrics_free(&s->metrics);
  fm_journal_free(&s->journal);
  fm_resp_store_free(&s->responses);
  fm_config_free(&s->cfg);
  free(s->workers);
  s->workers = NULL;
}
