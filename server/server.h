/* server.h — the running server: options, config, fleet, and the HTTP glue.
 *
 * Each worker is one libuv loop that serves HTTP/1.1 itself (http.c, with
 * the parser in http1.c): every connection's socket is a uv_poll, a request
 * that has to wait (for admission, for its first token, for its next token)
 * is suspended and resumed from a uv timer or the worker's timing wheel.
 * With --workers 1 (the default) the one worker runs on the main loop and
 * the server is one thread. The simulation core (config, fleet, accounts,
 * faults, metrics, journal, scenario) is shared by the workers behind one
 * mutex, which every entry into a handler holds. Handlers in the api_* files
 * receive an fm_req and answer through the fm_req_* calls below; they never
 * touch sockets or libuv directly. */
#ifndef FM_SERVER_H
#define FM_SERVER_H

#include "accounts.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "faults.h"
#include "replies.h"
#include "fleet.h"
#include "journal.h"
#include "metrics.h"
#include "options.h"
#include "events.h"
#include "respstore.h"
#include "scenario.h"
#include "wheel.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct fm_req fm_req;
typedef struct fm_conn fm_conn;

/* A request head (request line and headers) larger than this is answered
 * 431 and the connection closed (docs/api.md, "HTTP"). */
#define FM_MAX_HEAD_BYTES 12288

/* One event loop with its own listening socket (SO_REUSEPORT spreads
 * connections over the workers). Worker 0 runs on the main loop, beside the
 * signals and the scenario timer; the others each run on their own thread.
 * A request belongs to the worker that accepted it: its libuv handles and
 * its connection are touched only from that thread. */
typedef struct fm_worker {
  struct fm_server *srv;
  uv_loop_t *loop;
  uv_loop_t own_loop; /* workers 1..N-1 */
  uv_thread_t thread;
  bool thread_started;
  int listen_fd;
  uv_poll_t listen_poll;
  bool listening;          /* listen_poll is started */
  uv_timer_t accept_timer; /* accepting again after the process ran out of descriptors */
  unsigned conn_limit;     /* connections this worker holds at most */
  unsigned n_conns;
  fm_conn *conns; /* every open connection */
  /* Connections with no request in progress, oldest activity first: the
   * idle timeout closes from the front (O(1) a request). */
  fm_conn *idle_head, *idle_tail;
  uv_timer_t idle_timer;
  uint64_t idle_armed; /* the loop ms it fires at; UINT64_MAX when stopped */
  /* Requests whose wait is over, run from the prepare handle: a wake may come
   * from inside handler code, which must not run again under itself. */
  fm_req *ready_head, *ready_tail;
  uv_prepare_t prepare;
  uv_timer_t fleet_timer; /* fires at the earliest queue deadline */
  /* Its requests' waits shorter than FM_WHEEL_SLOTS / 2 ms (a stream's next
   * token), behind one timer armed for the earliest (wheel.h). */
  fm_wheel wheel;
  uv_timer_t wheel_timer;
  uint64_t wheel_armed; /* the loop ms it fires at; UINT64_MAX when stopped */
  uint64_t fleet_deadline;
  bool stopped;
  fm_req *live;  /* this worker's requests not yet completed (its thread only) */
  size_t n_live; /* how many; under the core lock (fm_server_live sums them) */
  /* Other threads hand this worker requests to wake and commands here. */
  uv_async_t inbox_async;
  uv_mutex_t inbox_lock;
  fm_req *inbox;      /* guarded by inbox_lock */
  fm_buf scratch;     /* what a stream's fill makes, before it is written (its thread only) */
  fm_buf head;        /* a response head being written (its thread only) */
  long long date_sec; /* the second date[] was written for */
  char date[40];      /* "Date: Fri, 04 Dec 2026 03:38:02 GMT\r\n" */
  unsigned commands;  /* FM_CMD_* bits, guarded by inbox_lock */
} fm_worker;

typedef struct fm_server {
  fm_options opt;
  fm_config cfg;
  fm_fleet fleet;
  fm_accounts accounts;
  fm_faults faults;
  fm_replies replies;
  struct cJSON *boot_replies; /* the config's and --replies rules, added at start and on reset */
  fm_metrics metrics;
  fm_journal journal;      /* the last requests as they ended (GET /admin/requests) */
  fm_resp_store responses; /* the Responses API's stored responses */
  fm_events events;        /* what the live feed says of finished requests */
  fm_player player;        /* the running scenario, if any */
  uv_timer_t scenario_timer;
  fm_clock clock;
  uint64_t t0_ns;  /* monotonic time of simulated zero */
  uv_loop_t *loop; /* the main loop: signals, scenario, shutdown, worker 0 */
  uint16_t port;
  /* Everything above, and every field below up to `stopped`, is the
   * simulation core: any thread touches it only while holding core. */
  uv_mutex_t core;
  fm_worker *workers;
  int n_workers;
  uv_timer_t grace_timer;
  uv_signal_t sig_term, sig_int;
  uv_async_t main_async; /* wakes the main loop: re-arm the scenario, end a drain */
  bool drill_rearm;      /* the scenario timer must be re-armed on the main loop */
  uint64_t request_seq;
  bool draining;  /* stopped accepting; waiting for requests to end */
  bool force_end; /* grace period over: requests still running are ended now */
  bool stopped;
} fm_server;

/* Builds the server from options (config already loaded). Returns 0 or -1 with a logged reason. */
int fm_server_start(fm_server *s, uv_loop_t *loop);
/* Frees what fm_server_start took; call after the loop has stopped. */
void fm_server_free(fm_server *s);

/* ---- what handlers use -------------------------------------------------- */

typedef enum { FM_ROUTE_OPENAI, FM_ROUTE_ANTHROPIC, FM_ROUTE_ADMIN, FM_ROUTE_OTHER } fm_route_kind;

struct fm_req {
  fm_server *srv;
  fm_worker *w; /* the worker (thread) that owns the connection */
  fm_conn *tcp; /* the connection it arrived on (outlives the request) */
  fm_req *prev, *next;
  const char *method;
  const char *url;
  fm_route_kind kind;
  fm_buf body;
  bool too_large;       /* the body (or its declared Content-Length) is over the limit */
  bool length_conflict; /* two Content-Length headers with different values */
  size_t head_bytes;    /* request line and headers */
  int head_status;      /* the head was refused (400, 501, 505): the router answers it */
  const char *head_why; /* and says why */
  bool responded;       /* a response has been queued */
  int status;           /* the status answered */
  bool suspended;
  bool streaming;
  bool timer_ready;     /* timer has been uv_timer_init'ed */
  bool peer_gone;       /* the client hung up while the request waited */
  bool drop;            /* end the connection without an answer (a fault) */
  bool says_connection; /* a handler set the Connection header */
  int closing;          /* handles still closing; the request is freed at zero */
  bool in_inbox;        /* queued to be woken by its worker (w->inbox_lock) */
  fm_req *inbox_next;
  bool ready; /* on w->ready: its wait is over */
  fm_req *ready_prev, *ready_next;
  uv_timer_t timer;   /* a wait too long for the wheel */
  fm_wheel_node wait; /* a shorter wait, on w->wheel */
  char request_id[40];
  /* A continuation to run, inside the access handler, after a wait. */
  void (*resume_cb)(fm_req *r);
  /* Streaming: fills out with whatever is due at now_us; sets *next_due_us when
   * more will come later and *done when the stream is over. */
  void (*fill)(fm_req *r, fm_buf *out, uint64_t now_us, uint64_t *next_due_us, bool *done);
  /* Called when the client hangs up during a long wait (before on_close). */
  void (*on_peer_gone)(fm_req *r);
  /* Called exactly once when the request ends for any reason. */
  void (*on_close)(fm_req *r);
  void *ctx; /* the handler's own state */
  /* Headers collected for the response. */
  fm_buf hdrs; /* "name\0value\0" pairs */
};

/* Looks up a request header (case-insensitive); NULL when absent. */
const char *fm_req_header_in(fm_req *r, const char *name);
/* Looks up a query-string argument (decoded); NULL when absent or without a value. */
const char *fm_req_query(fm_req *r, const char *name);
/* The first query argument not named in known (NULL-terminated); NULL when none. */
const char *fm_req_query_unknown(fm_req *r, const char *const *known);
/* Adds a response header; the value is formatted. */
void fm_req_header(fm_req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same without printf, for the headers every response carries. */
void fm_req_header_str(fm_req *r, const char *name, const char *value);
void fm_req_header_int(fm_req *r, const char *name, long long value);
/* Microseconds written as seconds with three decimals (rounded to the ms). */
void fm_req_header_secs(fm_req *r, const char *name, uint64_t us);
/* True when a response header of that name was already added. */
bool fm_req_has_header(fm_req *r, const char *name);
/* Queues a complete response now. The body is taken over (left empty). */
void fm_req_reply(fm_req *r, int status, const char *content_type, fm_buf *body);
/* Starts a 200 text/event-stream response driven by r->fill. */
void fm_req_stream(fm_req *r);
/* Suspends the request until the simulated time due_us, then runs cb. */
void fm_req_wait_until(fm_req *r, uint64_t due_us, void (*cb)(fm_req *r));
/* Suspends the request until fm_req_wake (or the client leaves), then runs cb. */
void fm_req_park(fm_req *r, void (*cb)(fm_req *r));
/* Wakes a parked request (e.g. its queued ticket was decided). Callable from
 * any worker with the core lock held; another worker's request is woken on
 * its own thread. */
void fm_req_wake(fm_req *r);
/* Requests not yet completed, over all workers; under the core lock. */
size_t fm_server_live(const fm_server *s);
/* The scenario's next step changed: re-arm its timer on the main loop. */
void fm_server_rearm_scenario(fm_server *s);
/* The peer is a loopback address. */
bool fm_req_peer_is_loopback(fm_req *r);

static inline uint64_t fm_server_now(const fm_server *s) {
  return fm_clock_now(&s->clock);
}

#endif
