/* http.c — HTTP/1.1 served straight from libuv loops: the workers.
 *
 * Each worker owns a listening socket (SO_REUSEPORT when there are several)
 * and every connection it accepts: the socket is a level-triggered uv_poll,
 * read with one recv and written with one writev, so a request answered at
 * once costs one epoll_wait, one recv and one writev (docs/performance.md).
 * The head is parsed in place (http1.c) in the connection's input buffer,
 * and the request's method, path and header lookups point into it while the
 * request lives. The response head is written by hand in front of the body.
 *
 * Connection states: reading a head, reading a body, busy (a handler has
 * the request: it waits, streams, or its answer is being written), and
 * lingering (after an early refusal, the unread body is read and dropped
 * until the client closes). A busy connection is watched only for the
 * peer's hang-up (EPOLLRDHUP), so a pipelined next request waits in the
 * kernel and a client that leaves is noticed whatever the request does.
 *
 * Threads. A request's handles and connection are touched only by its own
 * worker's thread. The simulation core is shared: every entry into handler
 * code (dispatch, completion, a stream's fill, a hang-up, the fleet and
 * scenario timers) holds s->core. When handler code on one worker wakes a
 * request of another (a queue place freed by a stream ending elsewhere), the
 * request goes to that worker's inbox and its uv_async; shutdown steps reach
 * the workers the same way. With one worker there is one thread, the lock is
 * never contended and every wake is direct.
 *
 * Request lifecycle: the head and body are read, then the route handler
 * (api_*.c) runs once. A handler answers now (fm_req_reply), streams
 * (fm_req_stream), or waits (fm_req_wait_until / fm_req_park); a wait ends
 * on a timer or a wake, which puts the request on its worker's ready list,
 * and the prepare handle runs its continuation (never from inside other
 * handler code). When its answer is written, or the connection ends,
 * on_close runs and the request is freed; a pipelined next request is then
 * read from what is already buffered. */
#define _GNU_SOURCE /* accept4 */
#include "server.h"

#include "drill.h"
#include "http1.h"
#include "log.h"
#include "routes.h"

#include <cjson/cJSON.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
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

/* The worker whose loop runs on this thread. */
static _Thread_local fm_worker *this_worker;

static void lock(fm_server *s) {
  uv_mutex_lock(&s->core);
}
static void unlock(fm_server *s) {
  uv_mutex_unlock(&s->core);
}

/* ---- connections ---------------------------------------------------------- */

typedef enum {
  FM_CONN_HEAD,   /* reading a request head (or idle between requests) */
  FM_CONN_BODY,   /* reading the body of c->req */
  FM_CONN_BUSY,   /* a handler has c->req: it waits, streams, or is being written */
  FM_CONN_LINGER, /* answered early and closing: what the client still sends is dropped */
} fm_conn_state;

/* One TCP connection, from accept to close. */
struct fm_conn {
  fm_worker *w;
  int fd;
  uv_poll_t poll;
  int events; /* what poll watches now */
  fm_conn_state state;
  bool closing;
  bool gone;          /* the peer hung up, or a write failed: nothing more is sent */
  bool keep_alive;    /* after this request, the next may come */
  bool head_only;     /* a HEAD request: the answer has no body */
  bool chunked_out;   /* the stream being written is chunk-framed */
  bool body_unread;   /* answered before its body was read: linger, then close */
  bool driving;       /* inside conn_drive (which goes on with what follows) */
  fm_req *req;        /* the request being served, if any */
  fm_http_head head;  /* c->req's head, pointing into in */
  fm_buf in;          /* bytes read: the head at in_pos, then whatever followed */
  size_t in_pos;      /* where the current (or next) request starts */
  size_t body_at;     /* where the unread body begins (FM_CONN_BODY) */
  uint64_t body_left; /* Content-Length bytes still to come */
  fm_chunked chunk;   /* the chunked body's decoder */
  fm_buf out;         /* what the socket has not taken yet */
  size_t out_pos;
  uint64_t active_ms; /* the loop ms of the last activity (the idle timeout) */
  uint64_t linger_until;
  fm_conn *prev, *next;           /* w->conns */
  fm_conn *idle_prev, *idle_next; /* w->idle_head.., while not busy */
  bool on_idle;
  struct sockaddr_storage peer;
};

/* Reads are this large at least: a request, its head and a small body, in one recv. */
#define FM_READ_CHUNK 4096
/* After an early refusal, the client's unsent body is read and dropped for
 * at most this long before the connection is closed anyway. */
#define FM_LINGER_MS 2000

static void conn_drive(fm_conn *c);
static void conn_close(fm_conn *c);
static void request_done(fm_conn *c);
static void stream_pump(fm_conn *c);
static void on_conn_event(uv_poll_t *p, int status, int events);

static void conn_watch(fm_conn *c) {
  int ev = UV_DISCONNECT;
  if (c->state != FM_CONN_BUSY) ev |= UV_READABLE;
  if (c->out_pos < c->out.len) ev |= UV_WRITABLE;
  if (ev == c->events || c->closing) return;
  c->events = ev;
  uv_poll_start(&c->poll, ev, on_conn_event);
}

/* ---- the idle timeout ------------------------------------------------------ */

static void on_idle_timer(uv_timer_t *t);

static void idle_arm(fm_worker *w) {
  if (!w->idle_head) {
    if (w->idle_armed != UINT64_MAX) uv_timer_stop(&w->idle_timer);
    w->idle_armed = UINT64_MAX;
    return;
  }
  uint64_t due = w->idle_head->active_ms + (uint64_t)w->srv->opt.idle_timeout_s * 1000;
  if (due == w->idle_armed) return;
  w->idle_armed = due;
  uint64_t now = uv_now(w->loop);
  uv_timer_start(&w->idle_timer, on_idle_timer, due > now ? due - now : 0, 0);
}

static void idle_remove(fm_conn *c) {
  if (!c->on_idle) return;
  fm_worker *w = c->w;
  if (c->idle_prev)
    c->idle_prev->idle_next = c->idle_next;
  else
    w->idle_head = c->idle_next;
  if (c->idle_next)
    c->idle_next->idle_prev = c->idle_prev;
  else
    w->idle_tail = c->idle_prev;
  c->idle_prev = c->idle_next = NULL;
  c->on_idle = false;
}

/* Activity now: to the back of the idle list. The timer is left armed for
 * the old front; when it fires it re-arms for the new one. */
static void idle_touch(fm_conn *c) {
  fm_worker *w = c->w;
  c->active_ms = uv_now(w->loop);
  if (c->on_idle && !c->idle_next) return; /* already last */
  idle_remove(c);
  c->idle_prev = w->idle_tail;
  if (w->idle_tail)
    w->idle_tail->idle_next = c;
  else
    w->idle_head = c;
  w->idle_tail = c;
  c->on_idle = true;
  if (w->idle_armed == UINT64_MAX) idle_arm(w);
}

static void on_idle_timer(uv_timer_t *t) {
  fm_worker *w = t->data;
  w->idle_armed = UINT64_MAX;
  uint64_t now = uv_now(w->loop), timeout = (uint64_t)w->srv->opt.idle_timeout_s * 1000;
  while (w->idle_head && w->idle_head->active_ms + timeout <= now) {
    fm_conn *c = w->idle_head;
    idle_remove(c);
    conn_close(c); /* silent: not a hang-up */
  }
  idle_arm(w);
}

/* ---- request bookkeeping ------------------------------------------------ */

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

static void ready_remove(fm_req *r) {
  if (!r->ready) return;
  fm_worker *w = r->w;
  if (r->ready_prev)
    r->ready_prev->ready_next = r->ready_next;
  else
    w->ready_head = r->ready_next;
  if (r->ready_next)
    r->ready_next->ready_prev = r->ready_prev;
  else
    w->ready_tail = r->ready_prev;
  r->ready_prev = r->ready_next = NULL;
  r->ready = false;
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
  ready_remove(r);
  fm_buf_free(&r->body);
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

/* The request has ended (answered, or its connection gone): on_close runs. */
static void req_end(fm_req *r) {
  fm_server *s = r->srv;
  lock(s);
  req_destroy(r);
  /* The last request of a drain: the main loop stops the workers. */
  if (s->draining && fm_server_live(s) == 0 && !s->stopped) uv_async_send(&s->main_async);
  unlock(s);
}

/* Its wait is over: on the ready list, run by the prepare handle. */
static void req_resume(fm_req *r) {
  if (!r->suspended) return;
  r->suspended = false;
  fm_worker *w = r->w;
  r->ready = true;
  r->ready_next = NULL;
  r->ready_prev = w->ready_tail;
  if (w->ready_tail)
    w->ready_tail->ready_next = r;
  else
    w->ready_head = r;
  w->ready_tail = r;
}

/* Wakes a request of this thread's worker, whatever it waited for. */
static void wake_here(fm_req *r) {
  if (r->timer_ready) uv_timer_stop(&r->timer);
  wheel_remove(r);
  req_resume(r);
}

/* ---- writing ---------------------------------------------------------------- */

/* Writes what c->out holds, then the iov (not copied unless the socket does
 * not take it all: the rest goes to c->out). Returns false when the
 * connection is gone (a write failed); the caller then closes it. */
static bool conn_write(fm_conn *c, const struct iovec *iov, int n) {
  if (c->gone) return false;
  struct iovec v[5];
  int k = 0;
  size_t total = 0;
  if (c->out_pos < c->out.len) {
    v[k].iov_base = c->out.data + c->out_pos;
    v[k].iov_len = c->out.len - c->out_pos;
    total += v[k++].iov_len;
  }
  for (int i = 0; i < n && k < 5; i++) {
    if (!iov[i].iov_len) continue;
    v[k] = iov[i];
    total += v[k++].iov_len;
  }
  if (!total) return true;
  ssize_t wrote;
  do {
    struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)k};
    wrote = sendmsg(c->fd, &m, MSG_NOSIGNAL);
  } while (wrote < 0 && errno == EINTR);
  if (wrote < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      c->gone = true;
      return false;
    }
    wrote = 0;
  }
  size_t done = (size_t)wrote;
  if (done == total) {
    fm_buf_free(&c->out); /* a held stream keeps no buffer between its tokens */
    c->out_pos = 0;
    if (c->events & UV_WRITABLE) conn_watch(c); /* else unchanged: no epoll_ctl */
    return true;
  }
  /* What is left, in order, behind what c->out still held. */
  fm_buf rest;
  fm_buf_init(&rest);
  for (int i = 0; i < k; i++) {
    if (done >= v[i].iov_len) {
      done -= v[i].iov_len;
      continue;
    }
    fm_buf_put(&rest, (const char *)v[i].iov_base + done, v[i].iov_len - done);
    done = 0;
  }
  fm_buf_free(&c->out);
  c->out = rest;
  c->out_pos = 0;
  conn_watch(c);
  return !c->out.oom;
}

static bool conn_flushed(const fm_conn *c) {
  return c->out_pos >= c->out.len;
}

/* "Date: <IMF-fixdate>\r\n", written once a second per worker. */
static const char *date_line(fm_worker *w) {
  time_t now = time(NULL);
  if ((long long)now != w->date_sec) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(w->date, sizeof(w->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    w->date_sec = (long long)now;
  }
  return w->date;
}

static void put_field(fm_buf *b, const char *name, size_t nl, const char *value, size_t vl) {
  if (!fm_buf_reserve(b, nl + vl + 4)) return;
  char *p = b->data + b->len;
  memcpy(p, name, nl);
  p[nl] = ':';
  p[nl + 1] = ' ';
  memcpy(p + nl + 2, value, vl);
  p[nl + 2 + vl] = '\r';
  p[nl + 3 + vl] = '\n';
  p[nl + 4 + vl] = '\0';
  b->len += nl + vl + 4;
}

/* The status line, Date and the fields every answer starts with, into w->head. */
static fm_buf *head_start(fm_req *r, int status, const char *content_type, const char *cache) {
  fm_worker *w = r->w;
  fm_buf *h = &w->head;
  fm_buf_reset(h);
  char line[16] = "HTTP/1.1 000 ";
  if (status < 100 || status > 999) status = 500;
  line[9] = (char)('0' + status / 100);
  line[10] = (char)('0' + status / 10 % 10);
  line[11] = (char)('0' + status % 10);
  fm_buf_put(h, line, 13);
  fm_buf_puts(h, fm_http_reason(status));
  fm_buf_put(h, "\r\n", 2);
  fm_buf_puts(h, date_line(w));
  if (content_type) put_field(h, "Content-Type", 12, content_type, strlen(content_type));
  if (cache) put_field(h, "Cache-Control", 13, cache, strlen(cache));
  put_field(h, "x-request-id", 12, r->request_id, strlen(r->request_id));
  fm_conn *c = r->tcp;
  if (r->srv->draining) c->keep_alive = false;
  if (r->says_connection) c->keep_alive = false; /* a handler's Connection: close */
  if (!r->says_connection) {
    if (!c->keep_alive)
      fm_buf_puts(h, "Connection: close\r\n");
    else if (c->head.minor == 0)
      fm_buf_puts(h, "Connection: keep-alive\r\n");
  }
  if (r->hdrs.len) fm_buf_put(h, r->hdrs.data, r->hdrs.len);
  return h;
}

/* ---- the timers: the wheel, the fleet, a request's own ---------------------- */

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
  return fm_http_field_get(&r->tcp->head, name);
}

const char *fm_req_query(fm_req *r, const char *name) {
  return fm_http_arg_get(&r->tcp->head, name);
}

const char *fm_req_query_unknown(fm_req *r, const char *const *known) {
  const fm_http_head *h = &r->tcp->head;
  for (size_t i = 0; i < h->n_args; i++) {
    const char *const *k = known;
    while (*k && strcmp(*k, h->arg[i].name) != 0)
      k++;
    if (!*k) return h->arg[i].name;
  }
  return NULL;
}

/* An answer carries about 20 headers, 600 to 900 bytes of them: room for
 * them all at the first, rather than growing through 256, 512 and 1024.
 * 1 KiB with the buffer's NUL: glibc serves that from its per-thread cache,
 * where 2 KiB would come from the large bins, whose every allocation first
 * consolidates the fast bins (malloc_consolidate). */
#define FM_HDRS_START (1024 - 1)

/* r->hdrs holds the fields as they go on the wire, "Name: value\r\n" each,
 * so the response head takes them in one copy. */
static void header_name(fm_req *r, const char *name) {
  if (!r->hdrs.cap) fm_buf_reserve(&r->hdrs, FM_HDRS_START);
  if ((name[0] | 0x20) == 'c' && strcasecmp(name, "Connection") == 0) r->says_connection = true;
  fm_buf_puts(&r->hdrs, name);
  fm_buf_put(&r->hdrs, ": ", 2);
}

/* A value with a CR or LF would end the field early and start another (a
 * header injected into the answer): each becomes a space. */
static void header_value_end(fm_req *r, size_t from) {
  for (char *p = r->hdrs.data + from, *end = r->hdrs.data + r->hdrs.len; p < end; p++)
    if (*p == '\r' || *p == '\n') *p = ' ';
  fm_buf_put(&r->hdrs, "\r\n", 2);
}

void fm_req_header(fm_req *r, const char *name, const char *fmt, ...) {
  header_name(r, name);
  size_t from = r->hdrs.len;
  va_list ap;
  va_start(ap, fmt);
  fm_buf_vprintf(&r->hdrs, fmt, ap);
  va_end(ap);
  header_value_end(r, from);
}

void fm_req_header_str(fm_req *r, const char *name, const char *value) {
  header_name(r, name);
  size_t from = r->hdrs.len;
  fm_buf_puts(&r->hdrs, value);
  header_value_end(r, from);
}

void fm_req_header_int(fm_req *r, const char *name, long long value) {
  header_name(r, name);
  fm_buf_put_i64(&r->hdrs, value);
  fm_buf_put(&r->hdrs, "\r\n", 2);
}

void fm_req_header_secs(fm_req *r, const char *name, uint64_t us) {
  header_name(r, name);
  fm_buf_put_milli(&r->hdrs, (us + 500) / 1000);
  fm_buf_put(&r->hdrs, "\r\n", 2);
}

bool fm_req_has_header(fm_req *r, const char *name) {
  if (!r->hdrs.len) return false; /* data is NULL then, and NULL + 0 is undefined */
  size_t n = strlen(name);
  for (const char *p = r->hdrs.data, *end = p + r->hdrs.len; p < end;) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) break;
    if ((size_t)(eol - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0) return true;
    p = eol + 1;
  }
  return false;
}

static void log_request(fm_req *r, int status) {
  if (!fm_log_enabled(FM_LOG_DEBUG)) return;
  char st[8];
  snprintf(st, sizeof(st), "%d", status);
  fm_log(FM_LOG_DEBUG, "request", "method", r->method, "path", r->url, "status", st, "request_id",
         r->request_id, NULL);
}

/* Writes the head (from w->head) and the body now; what the socket does not
 * take waits in c->out. The request completes once it is all written (in
 * conn_after, outside handler code). */
void fm_req_reply(fm_req *r, int status, const char *content_type, fm_buf *body) {
  if (r->responded) return;
  fm_conn *c = r->tcp;
  fm_buf *h = head_start(r, status, content_type, NULL);
  fm_buf_put(h, "Content-Length: ", 16);
  fm_buf_put_i64(h, (long long)body->len);
  fm_buf_put(h, "\r\n\r\n", 4);
  struct iovec iov[2] = {{h->data, h->len}, {body->data, c->head_only ? 0 : body->len}};
  if (h->oom) c->gone = true; /* closed without an answer: better than half of one */
  conn_write(c, iov, 2);
  fm_buf_free(body);
  r->responded = true;
  r->status = status;
  log_request(r, status);
}

void fm_req_stream(fm_req *r) {
  if (r->responded) return;
  fm_conn *c = r->tcp;
  c->chunked_out = c->head.minor >= 1;
  if (!c->chunked_out) c->keep_alive = false; /* HTTP/1.0: the body ends with the connection */
  fm_buf *h = head_start(r, 200, "text/event-stream", "no-cache");
  if (c->chunked_out) fm_buf_puts(h, "Transfer-Encoding: chunked\r\n");
  fm_buf_puts(h, "\r\n");
  /* The head goes out with the first fill (stream_pump), in the same write. */
  if (conn_flushed(c)) {
    fm_buf_free(&c->out);
    c->out = *h; /* taken over, not copied */
    c->out_pos = 0;
    fm_buf_init(h);
  } else {
    fm_buf_put(&c->out, h->data, h->len); /* behind what is still unwritten (a 100 Continue) */
  }
  fm_buf_free(&r->hdrs); /* written; a stream may be held for minutes */
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
  const struct sockaddr *sa = (const struct sockaddr *)&r->tcp->peer;
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

/* ---- streams ---------------------------------------------------------------- *
 *
 * A held stream costs what the server keeps for it between tokens, and
 * 10 000 of them must fit in 128 MiB (docs/performance.md). The fill writes
 * into one scratch buffer per worker, which is written to the socket at
 * once with its chunk framing around it (one sendmsg a token, nothing
 * copied); only what the socket does not take (a slow reader) is kept, in
 * c->out, and freed once it has drained. */

static size_t chunk_size_line(char *out, size_t n) {
  static const char hex[] = "0123456789abcdef";
  char tmp[20];
  size_t k = 0;
  do {
    tmp[k++] = hex[n & 15];
    n >>= 4;
  } while (n);
  for (size_t i = 0; i < k; i++)
    out[i] = tmp[k - 1 - i];
  out[k] = '\r';
  out[k + 1] = '\n';
  return k + 2;
}

/* The stream's last bytes are written: with them the request completes. */
static void stream_end(fm_conn *c) {
  fm_req *r = c->req;
  r->fill = NULL;
  r->streaming = false; /* now like any written answer: done once flushed */
  if (c->chunked_out) {
    struct iovec end = {(char *)"0\r\n\r\n", 5};
    conn_write(c, &end, 1);
  }
}

/* Writes whatever the handler's fill has due; waits when nothing is. */
static void stream_pump(fm_conn *c) {
  fm_req *r = c->req;
  fm_server *s = r->srv;
  fm_worker *w = c->w;
  for (int round = 0; round < 64 && !c->gone; round++) {
    if (!conn_flushed(c) && round > 0) return; /* the socket is full: on writable */
    fm_buf *out = &w->scratch;
    fm_buf_reset(out);
    uint64_t next_due = 0;
    bool done = false;
    lock(s);
    r->fill(r, out, fm_server_now(s), &next_due, &done);
    unlock(s);
    if (r->drop) { /* a disconnect fault: the connection ends mid-stream */
      c->gone = true;
      return;
    }
    if (out->oom) {
      fm_buf_free(out); /* the next stream starts afresh */
      done = true;
    } else if (out->len) {
      char size[24];
      struct iovec iov[3] = {{size, 0}, {out->data, out->len}, {(char *)"\r\n", 2}};
      if (c->chunked_out)
        iov[0].iov_len = chunk_size_line(size, out->len);
      else
        iov[2].iov_len = 0;
      if (!conn_write(c, iov, 3)) return;
    } else if (!conn_flushed(c)) {
      if (!conn_write(c, NULL, 0)) return; /* the head alone, when nothing was due yet */
    }
    if (done) {
      stream_end(c);
      return;
    }
    if (next_due == UINT64_MAX) {
      fm_req_park(r, NULL); /* stalled: wait for the peer to leave */
      return;
    }
    uint64_t delay = delay_ms_until(w, next_due);
    if (delay > 0 || out->len == 0) {
      if (!conn_flushed(c)) return; /* writable first; then the fill again */
      req_suspend_for(r, delay);
      return;
    }
  }
  if (!c->gone && conn_flushed(c)) req_suspend_for(r, 0); /* behind: the rest next turn */
}

/* ---- the request's next step ---------------------------------------------- */

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

/* After handler code ran for c->req: close, wait, write the stream, or end
 * the request once its answer is all written. */
static void conn_after(fm_conn *c) {
  fm_req *r = c->req;
  if (!r || c->closing) return;
  if (r->drop || c->gone) {
    conn_close(c);
    return;
  }
  if (r->suspended || r->ready) {
    conn_watch(c); /* only a hang-up (and a backlog) from here */
    return;
  }
  if (r->streaming) {
    stream_pump(c);
    if (r->drop || c->gone) {
      conn_close(c);
      return;
    }
    if (r->streaming) {
      conn_watch(c);
      return;
    }
  }
  if (conn_flushed(c))
    request_done(c);
  else
    conn_watch(c); /* the rest on writable */
}

/* Runs the route, or a continuation after a wait. */
static void run_request(fm_conn *c) {
  fm_req *r = c->req;
  c->state = FM_CONN_BUSY;
  idle_remove(c);
  lock(r->srv);
  dispatch(r);
  unlock(r->srv);
  conn_after(c);
}

/* The request's answer is written: it ends, and the connection waits for
 * the next one (or closes). */
static void request_done(fm_conn *c) {
  req_end(c->req);
  if (!c->keep_alive) {
    if (!c->body_unread) {
      conn_close(c);
      return;
    }
    /* Refused before its body was read: closing now, with that body unread,
     * would reset the connection and could lose the answer at the client.
     * Stop sending, drop what comes, close at its end (or FM_LINGER_MS). */
    shutdown(c->fd, SHUT_WR);
    c->state = FM_CONN_LINGER;
    c->linger_until = uv_now(c->w->loop) + FM_LINGER_MS;
    c->in.len = c->in_pos = 0;
    idle_touch(c);
    conn_watch(c);
    return;
  }
  size_t rest = c->in.len - c->in_pos;
  if (rest && c->in_pos) memmove(c->in.data, c->in.data + c->in_pos, rest);
  c->in.len = rest;
  c->in_pos = 0;
  if (c->in.data) c->in.data[rest] = '\0';
  c->state = FM_CONN_HEAD;
  idle_touch(c);
  conn_watch(c);
}

/* A request head is in (used > 0), or was refused (used 0: status and why). */
static void request_begin(fm_conn *c, size_t used, int status, const char *why) {
  fm_worker *w = c->w;
  fm_server *s = w->srv;
  fm_req *r = calloc(1, sizeof(*r));
  if (!r) {
    conn_close(c);
    return;
  }
  r->srv = s;
  r->w = w;
  r->tcp = c;
  c->req = r;
  r->next = w->live;
  if (w->live) w->live->prev = r;
  w->live = r;
  lock(s);
  uint64_t id = ++s->request_seq;
  w->n_live++;
  unlock(s);
  request_id(r->request_id, fm_mix64(s->opt.seed ^ id), id);
  c->head_only = false;
  c->body_unread = false;
  if (!used) { /* refused: the router answers with the reason, and the connection closes */
    c->head.n_fields = c->head.n_args = 0;
    r->method = "-";
    r->url = "-";
    if (status == 431 && c->head.head_bytes > FM_MAX_HEAD_BYTES) {
      r->head_bytes = c->head.head_bytes;
    } else {
      r->head_status = status;
      r->head_why = why;
    }
    c->keep_alive = false;
    c->body_unread = true;
    c->in_pos = c->in.len;
    run_request(c);
    return;
  }
  const fm_http_head *h = &c->head;
  r->method = h->method;
  r->url = h->path;
  r->head_bytes = h->head_bytes;
  c->keep_alive = h->keep_alive;
  c->head_only = strcmp(h->method, "HEAD") == 0;
  c->body_at = c->in_pos + used;
  c->body_left = h->has_length ? h->content_length : 0;
  memset(&c->chunk, 0, sizeof(c->chunk));
  /* What the head says of the body is judged before any of it is read: a
   * declared length over the limit is a 413 at once, two lengths (a
   * request smuggling shape) a 400; either closes the connection. */
  if (h->length_conflict)
    r->length_conflict = true;
  else if (h->has_length && h->content_length > s->cfg.max_body_bytes)
    r->too_large = true;
  if (r->length_conflict || r->too_large) {
    c->keep_alive = false;
    c->body_unread = true;
    c->in_pos = c->in.len;
    run_request(c);
    return;
  }
  if (!h->chunked && !c->body_left) {
    c->in_pos = c->body_at;
    run_request(c);
    return;
  }
  size_t have = c->in.len - c->body_at;
  if (h->expect_continue && h->minor >= 1 && (h->chunked || have < c->body_left)) {
    static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct iovec v = {cont, sizeof(cont) - 1};
    conn_write(c, &v, 1);
  }
  if (c->body_left) fm_buf_reserve(&r->body, c->body_left < 65536 ? (size_t)c->body_left : 65536);
  c->state = FM_CONN_BODY;
}

/* Takes what has arrived of the body; true when the request went on (the
 * body is complete, or refused). */
static bool body_take(fm_conn *c) {
  fm_req *r = c->req;
  char *p = c->in.data + c->body_at;
  size_t avail = c->in.len - c->body_at;
  if (c->head.chunked) {
    size_t used = 0;
    const char *why = NULL;
    fm_chunked_result res = fm_chunked_feed(&c->chunk, p, avail, &r->body,
                                            r->srv->cfg.max_body_bytes, &r->too_large, &used, &why);
    c->body_at += used;
    if (res == FM_CHUNKED_MORE) {
      c->in.len = c->body_at; /* consumed: the space is read into again */
      return false;
    }
    if (res == FM_CHUNKED_BAD) {
      r->head_status = 400;
      r->head_why = why;
      c->keep_alive = false;
      c->body_unread = true;
      c->body_at = c->in.len;
    }
  } else {
    size_t n = avail < c->body_left ? avail : (size_t)c->body_left;
    fm_buf_put(&r->body, p, n);
    c->body_left -= n;
    c->body_at += n;
    if (c->body_left) {
      c->in.len = c->body_at;
      return false;
    }
  }
  c->in_pos = c->body_at;
  run_request(c);
  return true;
}

/* Parses and serves what c->in holds, request after request (pipelining). */
static void conn_drive(fm_conn *c) {
  if (c->driving) return; /* the outer call goes on with it */
  c->driving = true;
  while (!c->closing) {
    if (c->state == FM_CONN_HEAD) {
      size_t avail = c->in.len - c->in_pos;
      if (!avail) break;
      size_t used = 0;
      int status = 0;
      const char *why = NULL;
      fm_http_result res = fm_http_parse_head(c->in.data + c->in_pos, avail, FM_MAX_HEAD_BYTES,
                                              &c->head, &used, &status, &why);
      if (res == FM_HTTP_PARTIAL) break;
      request_begin(c, res == FM_HTTP_DONE ? used : 0, status, why);
    } else if (c->state == FM_CONN_BODY) {
      if (!body_take(c)) break;
    } else {
      break; /* busy, or lingering */
    }
  }
  c->driving = false;
}

/* ---- reading, hang-ups, closing ---------------------------------------------- */

static void count_hangup(fm_conn *c) {
  fm_server *s = c->w->srv;
  lock(s);
  s->metrics.peer_hangups++;
  unlock(s);
}

/* Room for want more bytes in c->in. The head of a request being read
 * points into it, so when it moves those pointers move with it. */
static bool in_reserve(fm_conn *c, size_t want) {
  if (c->in.len + want + 1 <= c->in.cap) return true;
  if (c->state != FM_CONN_BODY) return fm_buf_reserve(&c->in, want);
  fm_http_head *h = &c->head;
  fm_req *r = c->req;
  const char **ptr[2 + 2 * (FM_HTTP_MAX_FIELDS + FM_HTTP_MAX_ARGS)];
  size_t n = 0;
  ptr[n++] = &h->method;
  ptr[n++] = &h->path;
  for (size_t i = 0; i < h->n_fields; i++) {
    ptr[n++] = &h->field[i].name;
    ptr[n++] = &h->field[i].value;
  }
  for (size_t i = 0; i < h->n_args; i++) {
    ptr[n++] = &h->arg[i].name;
    if (h->arg[i].value) ptr[n++] = &h->arg[i].value;
  }
  size_t off[sizeof(ptr) / sizeof(ptr[0])];
  const char *base = c->in.data;
  for (size_t i = 0; i < n; i++)
    off[i] = (size_t)(*ptr[i] - base);
  if (!fm_buf_reserve(&c->in, want)) return false;
  for (size_t i = 0; i < n; i++)
    *ptr[i] = c->in.data + off[i];
  r->method = h->method;
  r->url = h->path;
  return true;
}

/* A body of known length is read straight into the request's buffer, never
 * past its end: what follows is the next request. The buffer grows as the
 * body arrives (a declared length reserves nothing a client did not send). */
static void body_read(fm_conn *c) {
  fm_req *r = c->req;
  fm_buf *b = &r->body;
  size_t want = c->body_left < 65536 ? (size_t)c->body_left : 65536;
  if (!fm_buf_reserve(b, want)) {
    conn_close(c);
    return;
  }
  ssize_t n;
  do {
    n = recv(c->fd, b->data + b->len, want, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n <= 0) { /* the peer closed half-way through its body */
    count_hangup(c);
    conn_close(c);
    return;
  }
  b->len += (size_t)n;
  b->data[b->len] = '\0';
  c->body_left -= (uint64_t)n;
  idle_touch(c);
  if (c->body_left) return;
  c->in_pos = c->in.len; /* nothing of the next request was read */
  run_request(c);
}

static void conn_read(fm_conn *c) {
  if (c->state == FM_CONN_BODY && !c->head.chunked && c->body_at == c->in.len) {
    body_read(c);
    if (!c->closing && c->state == FM_CONN_HEAD && c->in.len) conn_drive(c);
    return;
  }
  /* Read into what is free; grow only when under 1 KiB is (a 4 KiB buffer
   * first, then 8 and 16 KiB for a long head). */
  if (c->in.cap - c->in.len < 1024 + 1 && !in_reserve(c, FM_READ_CHUNK - 1)) {
    conn_close(c);
    return;
  }
  ssize_t n;
  do {
    n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (c->state != FM_CONN_LINGER) count_hangup(c); /* reset by the peer */
    conn_close(c);
    return;
  }
  if (n == 0) { /* the peer closed (or half-closed: counted the same) */
    if (c->state != FM_CONN_LINGER) count_hangup(c);
    conn_close(c);
    return;
  }
  if (c->state == FM_CONN_LINGER) { /* dropped */
    if (uv_now(c->w->loop) >= c->linger_until) conn_close(c);
    return;
  }
  c->in.len += (size_t)n;
  c->in.data[c->in.len] = '\0';
  idle_touch(c);
  conn_drive(c);
}

/* The peer hung up while a handler has its request. A request that waits is
 * told (its slot or queue place is freed at once) and woken, so its
 * continuation sees peer_gone; then the connection closes. */
static void conn_hangup(fm_conn *c) {
  fm_req *r = c->req;
  fm_server *s = c->w->srv;
  bool waiting = r && r->suspended;
  lock(s);
  s->metrics.peer_hangups++;
  if (waiting) {
    r->peer_gone = true;
    if (r->on_peer_gone) r->on_peer_gone(r);
  }
  unlock(s);
  c->gone = true;
  if (waiting && !r->streaming) {
    uv_poll_stop(&c->poll); /* level-triggered: once is enough */
    c->events = 0;
    wake_here(r);
    return;
  }
  conn_close(c);
}

static void conn_free(uv_handle_t *h) {
  free(h->data);
}

static void listen_start(fm_worker *w);

static void conn_close(fm_conn *c) {
  if (c->closing) return;
  c->closing = true;
  fm_worker *w = c->w;
  if (c->req) req_end(c->req);
  idle_remove(c);
  if (c->prev)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  w->n_conns--;
  lock(w->srv);
  w->srv->metrics.connections_open--;
  unlock(w->srv);
  uv_close((uv_handle_t *)&c->poll, conn_free); /* stops watching the fd now */
  close(c->fd);
  fm_buf_free(&c->in);
  fm_buf_free(&c->out);
  if (!w->listening && w->n_conns < w->conn_limit) listen_start(w);
}

static void on_conn_event(uv_poll_t *p, int status, int events) {
  fm_conn *c = p->data;
  if (c->closing) return;
  if (status < 0) {
    c->gone = true;
    conn_close(c);
    return;
  }
  if (events & UV_WRITABLE) {
    if (!conn_write(c, NULL, 0)) {
      conn_close(c);
      return;
    }
    if (conn_flushed(c) && c->req && !c->req->suspended && !c->req->ready) {
      conn_after(c);
      if (c->closing) return;
      if (c->state == FM_CONN_HEAD && c->in.len) conn_drive(c);
    }
  }
  if (c->closing) return;
  if (c->state != FM_CONN_BUSY && (events & (UV_READABLE | UV_DISCONNECT)))
    conn_read(c);
  else if (c->state == FM_CONN_BUSY && (events & UV_DISCONNECT))
    conn_hangup(c);
}

/* Requests whose wait is over, in the order they became ready. */
static void run_ready(fm_worker *w) {
  while (w->ready_head) {
    fm_req *r = w->ready_head;
    ready_remove(r);
    fm_conn *c = r->tcp;
    if (r->streaming)
      conn_after(c);
    else
      run_request(c);
    if (!c->closing && c->state == FM_CONN_HEAD && c->in.len) conn_drive(c);
  }
}

static void on_prepare(uv_prepare_t *h) {
  fm_worker *w = h->data;
  if (w->stopped) return;
  run_ready(w);
  lock(w->srv);
  arm_fleet_timer(w);
  unlock(w->srv);
}

/* ---- accepting ------------------------------------------------------------------ */

static void conn_open(fm_worker *w, int fd, const struct sockaddr_storage *peer) {
  fm_conn *c = calloc(1, sizeof(*c));
  if (!c || uv_poll_init(w->loop, &c->poll, fd) != 0) {
    free(c);
    close(fd);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* a token is one small write */
  c->w = w;
  c->fd = fd;
  c->peer = *peer;
  c->poll.data = c;
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  w->n_conns++;
  lock(w->srv);
  w->srv->metrics.connections_open++;
  unlock(w->srv);
  idle_touch(c);
  conn_watch(c);
}

static void on_listen(uv_poll_t *p, int status, int events);

static void on_accept_timer(uv_timer_t *t) {
  listen_start(t->data);
}

static void listen_start(fm_worker *w) {
  if (w->listening || w->listen_fd < 0 || w->stopped) return;
  w->listening = true;
  uv_poll_start(&w->listen_poll, UV_READABLE, on_listen);
}

static void listen_stop(fm_worker *w) {
  if (!w->listening) return;
  w->listening = false;
  uv_poll_stop(&w->listen_poll);
}

static void on_listen(uv_poll_t *p, int status, int events) {
  (void)events;
  fm_worker *w = p->data;
  if (status < 0) return;
  for (int i = 0; i < 64 && w->n_conns < w->conn_limit; i++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = accept4(w->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      conn_open(w, fd, &ss);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      /* Out of descriptors: the backlog waits; try again in a moment. */
      fm_log(FM_LOG_WARN, "cannot accept a connection", "detail", strerror(errno), NULL);
      listen_stop(w);
      uv_timer_start(&w->accept_timer, on_accept_timer, 100, 0);
    }
    break;
  }
  if (w->n_conns >= w->conn_limit) listen_stop(w);
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
  FM_CMD_STOP = 4,      /* close every connection and the worker's handles */
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

/* No more connections: the listening socket is closed. */
static void listen_close(fm_worker *w) {
  if (w->listen_fd < 0) return;
  listen_stop(w);
  close_handle((uv_handle_t *)&w->listen_poll); /* stops watching the fd now */
  close(w->listen_fd);
  w->listen_fd = -1;
}

/* The worker's part of stopping: every connection still open is closed,
 * which ends its request (on_close runs), and the loop's handles close. */
static void worker_stop(fm_worker *w) {
  if (w->stopped) return;
  w->stopped = true;
  listen_close(w);
  while (w->conns)
    conn_close(w->conns);
  close_handle((uv_handle_t *)&w->accept_timer);
  close_handle((uv_handle_t *)&w->idle_timer);
  close_handle((uv_handle_t *)&w->prepare);
  close_handle((uv_handle_t *)&w->fleet_timer);
  close_handle((uv_handle_t *)&w->wheel_timer);
  close_handle((uv_handle_t *)&w->inbox_async);
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
  if (cmd & FM_CMD_DRAIN) listen_close(w);
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
  uv_run(w->loop, UV_RUN_DEFAULT);
}

/* The worker's handles, on its loop (not yet running). */
static int worker_init(fm_worker *w, unsigned conn_limit) {
  if (uv_mutex_init(&w->inbox_lock) != 0) return -1;
  w->conn_limit = conn_limit;
  if (uv_poll_init(w->loop, &w->listen_poll, w->listen_fd) != 0) {
    fm_log(FM_LOG_ERROR, "cannot watch the listening socket", NULL);
    return -1;
  }
  w->listen_poll.data = w;
  listen_start(w);
  uv_timer_init(w->loop, &w->accept_timer);
  w->accept_timer.data = w;
  uv_timer_init(w->loop, &w->idle_timer);
  w->idle_timer.data = w;
  w->idle_armed = UINT64_MAX;
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
  w->date_sec = -1;
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
  /* Connections: what the descriptor limit leaves, less a margin for the
   * config, the journal's files and libuv's own, shared by the workers. */
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
    if (w->listen_fd >= 0 && !w->stopped) close(w->listen_fd);
    w->listen_fd = -1;
    fm_buf_free(&w->scratch);
    fm_buf_free(&w->head);
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
