/* streamload — hold many streaming chat completions open against fleetmock and
 * measure what a client sees.
 *
 * Each stream is its own keep-alive HTTP/1.1 connection to the server. It POSTs
 * one `stream: true, ignore_eos: true` chat completion, decodes the chunked
 * body and the SSE events inside it as bytes arrive, and stamps every token
 * event with uv_hrtime() at the moment the read callback sees it. From those
 * stamps it reports how far each inter-token gap strays from the cadence the
 * pool was configured for (|gap - 1000/rate| ms), the time to first token,
 * how long the ramp took until every stream was mid-stream at once, and the
 * server's resident memory read from /proc while they were.
 *
 * Everything runs on one libuv loop and one thread. The parser is a byte-at-a-
 * time state machine per connection that keeps no copy of the body: a stream
 * costs about 700 bytes here, so 10 000 of them fit in a few megabytes and the
 * client does not distort the server's memory or CPU more than it must. The
 * read buffer is shared by every connection because a read callback consumes
 * it completely before the loop asks for the next one.
 *
 * Known limits: the client shares the machine with the server, so its own
 * delay is part of the measured gap error. Two numbers bound that share: how
 * long one poll's worth of reads took (a token read late in a long batch was
 * stamped late by us), and the CPU used by this process, the server and the
 * rest of the machine during the run. --sample K times only K streams and
 * reads the others in batches, to cut the client's CPU when that matters.
 * A token counts when its `data:` line carries a non-empty "content" string;
 * the role-only first chunk, a finish-only chunk and the usage chunk do not.
 */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define SL_LINE_CAP 64          /* kept prefix of each header or SSE line */
#define SL_READ_BUF (64 * 1024) /* shared read buffer */
#define SL_ERRBODY_CAP 400      /* first non-200 body kept for the report */
#define SL_TICK_MS 10           /* connect pacing tick */

/* Histogram of durations in microseconds: 1 us buckets below 100 ms, 1 ms
 * buckets from there to 100 s, everything past that in the last bucket. Fixed
 * size so recording a token costs one increment. */
#define SL_HIST_FINE 100000
#define SL_HIST_COARSE 100000
typedef struct {
  uint32_t bucket[SL_HIST_FINE + SL_HIST_COARSE];
  uint64_t count;
  uint64_t max_us;
  double sum_us;
} sl_hist;

enum sl_conn_state { SL_IDLE, SL_CONNECTING, SL_HEAD, SL_BODY, SL_FINISHED };
enum sl_body_mode { SL_BODY_CHUNKED, SL_BODY_LENGTH, SL_BODY_CLOSE };
enum sl_chunk_state { SL_CH_SIZE, SL_CH_EXT, SL_CH_DATA, SL_CH_DATA_END, SL_CH_TRAILER };

/* Why a stream ended. Order matters: the summary prints them in this order. */
enum sl_outcome {
  SL_OK,           /* got data: [DONE] and the end of the body */
  SL_HELD_CLOSED,  /* healthy, closed by us after --hold */
  SL_FAIL_CONNECT, /* connect() or write() failed */
  SL_FAIL_STATUS,  /* HTTP status other than 200 */
  SL_FAIL_SSE,     /* a data: {"error":...} event */
  SL_FAIL_EOF,     /* connection closed or reset before the body ended */
  SL_FAIL_NODONE,  /* body ended without data: [DONE] */
  SL_FAIL_TIMEOUT, /* still running at --timeout-s */
  SL_OUTCOMES
};
static const char *const sl_outcome_name[SL_OUTCOMES] = {
    "completed", "held_closed", "connect_error", "http_status",
    "sse_error", "eof",         "no_done",       "timeout"};

typedef struct sl_conn sl_conn;
typedef struct sl_bench sl_bench;

struct sl_conn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  sl_bench *bench;
  char *request;      /* owned until the write completes */
  uint64_t t_sent;    /* request handed to the kernel */
  uint64_t t_prev;    /* previous token */
  uint64_t remaining; /* bytes left in this chunk, or in a Content-Length body */
  uint32_t index;
  uint32_t tokens;
  uint16_t status;
  uint16_t line_len; /* bytes seen on the current line, may exceed SL_LINE_CAP */
  uint8_t state;
  uint8_t body_mode;
  uint8_t chunk_state;
  uint8_t content_match; /* progress through `"content":"` on this SSE line */
  bool has_length;
  bool chunked;
  bool done_seen;
  bool streaming; /* counted in bench->streaming */
  bool timed;     /* read as data arrives and timed; else drained in batches */
  bool paused;    /* an untimed stream waiting for the next drain */
  char line[SL_LINE_CAP];
};

typedef struct {
  const char *host;
  int port;
  const char *path;
  const char *model;
  const char *api_key;
  bool key_per_stream;
  uint32_t streams;
  uint32_t tokens;
  double rate;
  double connect_rate; /* connections per ms, 0 = all at once */
  uint32_t sample;     /* streams timed; 0 = all */
  double drain_ms;     /* how often untimed streams are read */
  long server_pid;
  bool hold;
  double hold_s;
  double timeout_s;
  uint32_t source_addrs; /* spread connections over 127.0.0.1 .. 127.0.0.K; 0 = the kernel's pick */
  bool json;
  bool quiet;
} sl_options;

struct sl_bench {
  uv_loop_t *loop;
  sl_options opt;
  sl_conn *conns;
  struct sockaddr_storage addr;
  uv_timer_t pace_timer, sample_timer, timeout_timer, hold_timer, drain_timer;
  uint32_t timed_streams;
  uv_prepare_t prepare; /* with check: how long the client spends on one poll's events */
  uv_check_t check;
  uint64_t batch_first; /* first read callback since the last poll, 0 none */
  uv_signal_t sigint;
  bool stopping;
  uint32_t next_conn;
  uint32_t connected;
  uint32_t opened; /* request written */
  uint32_t finished;
  uint32_t first_token_streams;
  uint32_t streaming, streaming_max;
  uint32_t outcome[SL_OUTCOMES];
  uint32_t status_count[600];
  uint64_t tokens;
  uint64_t events;
  uint64_t t_begin, t_all_connected, t_all_open, t_last_first_token, t_end;
  uint64_t expected_gap_us;
  double cpu_self0, cpu_self1, cpu_server0, cpu_server1; /* CPU seconds at start and end */
  double cpu_all0, cpu_all1;                             /* whole machine */
  long rss_kib, rss_peak_kib, hwm_kib, rss_all_open_kib;
  int errbody_owner; /* index of the conn whose error body we keep, -1 none */
  size_t errbody_len;
  char errbody[SL_ERRBODY_CAP + 1];
  sl_hist gap_err, gap, ttft, batch;
};

static char sl_read_buf[SL_READ_BUF];

/* ---- histogram ------------------------------------------------------------ */

static void sl_hist_add(sl_hist *h, uint64_t us) {
  size_t b;
  if (us < SL_HIST_FINE)
    b = (size_t)us;
  else if (us / 1000 < SL_HIST_COARSE)
    b = SL_HIST_FINE + (size_t)(us / 1000);
  else
    b = SL_HIST_FINE + SL_HIST_COARSE - 1;
  h->bucket[b]++;
  h->count++;
  h->sum_us += (double)us;
  if (us > h->max_us) h->max_us = us;
}

/* Value at quantile q in milliseconds (bucket lower bound), 0 when empty. */
static double sl_hist_quantile_ms(const sl_hist *h, double q) {
  if (h->count == 0) return 0;
  if (q >= 1.0) return (double)h->max_us / 1000.0;
  uint64_t rank = (uint64_t)ceil(q * (double)h->count);
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t b = 0; b < SL_HIST_FINE + SL_HIST_COARSE; b++) {
    seen += h->bucket[b];
    if (seen >= rank) {
      if (b < SL_HIST_FINE) return (double)b / 1000.0;
      return (double)(b - SL_HIST_FINE) * 1.0;
    }
  }
  return (double)h->max_us / 1000.0;
}

static double sl_hist_mean_ms(const sl_hist *h) {
  return h->count ? h->sum_us / (double)h->count / 1000.0 : 0;
}

/* ---- server memory -------------------------------------------------------- */

/* CPU seconds (user + system) used so far by pid, or by this process when
 * pid is 0; -1 when unknown. */
static double sl_cpu_seconds(long pid) {
  if (pid == 0) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  }
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  unsigned long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return -1;
  long hz = sysconf(_SC_CLK_TCK);
  return (double)(ut + st) / (double)(hz > 0 ? hz : 100);
}

/* Busy CPU seconds of the whole machine so far (all CPUs, from /proc/stat),
 * or -1. Compared with ours and the server's, it shows other load. */
static double sl_machine_busy_seconds(void) {
  unsigned long long v[8] = {0};
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return -1;
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                 &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  if (n != 8) return -1;
  long hz = sysconf(_SC_CLK_TCK);
  unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* not idle, iowait */
  return (double)busy / (double)(hz > 0 ? hz : 100);
}

/* Reads VmRSS and VmHWM (KiB) of pid; returns -1 when the process is gone. */
static int sl_read_rss(long pid, long *rss, long *hwm) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  *rss = *hwm = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmRSS:", 6) == 0)
      *rss = strtol(line + 6, NULL, 10);
    else if (strncmp(line, "VmHWM:", 6) == 0)
      *hwm = strtol(line + 6, NULL, 10);
  }
  fclose(f);
  return 0;
}

static void sl_sample_rss(sl_bench *b) {
  long rss, hwm;
  if (b->opt.server_pid <= 0 || sl_read_rss(b->opt.server_pid, &rss, &hwm) != 0) return;
  b->rss_kib = rss;
  if (rss > b->rss_peak_kib) b->rss_peak_kib = rss;
  if (hwm > b->hwm_kib) b->hwm_kib = hwm;
}

/* ---- lifecycle ------------------------------------------------------------ */

static void sl_stop(sl_bench *b);

static void sl_on_close(uv_handle_t *h) {
  (void)h;
}

/* Records how a stream ended and closes its socket. Safe to call once per
 * conn; later calls are ignored, so every error path may call it. */
static void sl_finish(sl_conn *c, enum sl_outcome why) {
  sl_bench *b = c->bench;
  if (c->state == SL_FINISHED || c->state == SL_IDLE) return;
  c->state = SL_FINISHED;
  if (c->streaming) {
    c->streaming = false;
    b->streaming--;
  }
  b->outcome[why]++;
  b->finished++;
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, sl_on_close);
  if (b->finished == b->opt.streams) sl_stop(b);
}

static void sl_on_all_open(sl_bench *b) {
  b->t_all_open = uv_hrtime();
  sl_sample_rss(b);
  b->rss_all_open_kib = b->rss_kib;
  if (!b->opt.quiet)
    fprintf(stderr, "streamload: all %u streams mid-stream after %.1f ms, server RSS %.1f MiB\n",
            b->opt.streams, (double)(b->t_all_open - b->t_begin) / 1e6,
            (double)b->rss_kib / 1024.0);
}

/* ---- SSE ------------------------------------------------------------------ */

/* A token is a `data: {` line whose "content" string is non-empty. The needle
 * is matched as the bytes stream past, so no line is ever buffered whole. */
static const char sl_content_needle[] = "\"content\":";
#define SL_NEEDLE_LEN (sizeof sl_content_needle - 1)
#define SL_MATCH_VALUE (SL_NEEDLE_LEN + 1) /* saw the opening quote */
#define SL_MATCH_DONE (SL_NEEDLE_LEN + 2)  /* decided for this line */

static void sl_on_token(sl_conn *c, uint64_t now) {
  sl_bench *b = c->bench;
  c->tokens++;
  b->tokens++;
  if (c->tokens == 1) {
    if (c->timed) sl_hist_add(&b->ttft, (now - c->t_sent) / 1000);
    b->t_last_first_token = now;
    b->first_token_streams++;
    c->streaming = true;
    b->streaming++;
    if (b->streaming > b->streaming_max) b->streaming_max = b->streaming;
    if (b->streaming == b->opt.streams && b->t_all_open == 0) sl_on_all_open(b);
  } else if (c->timed) {
    uint64_t gap = (now - c->t_prev) / 1000;
    uint64_t err = gap > b->expected_gap_us ? gap - b->expected_gap_us : b->expected_gap_us - gap;
    sl_hist_add(&b->gap, gap);
    sl_hist_add(&b->gap_err, err);
  }
  c->t_prev = now;
}

static void sl_content_byte(sl_conn *c, char ch, uint64_t now) {
  uint8_t m = c->content_match;
  if (m == SL_MATCH_DONE) return;
  if (m < SL_NEEDLE_LEN) {
    if (ch == sl_content_needle[m])
      c->content_match = m + 1;
    else
      c->content_match = ch == '"' ? 1 : 0;
  } else if (m == SL_NEEDLE_LEN) { /* after the colon: spaces, then the value */
    if (ch == '"')
      c->content_match = SL_MATCH_VALUE;
    else if (ch != ' ')
      c->content_match = 0;
  } else { /* first byte of the string value */
    c->content_match = SL_MATCH_DONE;
    if (ch != '"') sl_on_token(c, now);
  }
}

/* Returns false when the stream was finished by this line. */
static bool sl_sse_line_end(sl_conn *c) {
  sl_bench *b = c->bench;
  size_t n = c->line_len < SL_LINE_CAP ? c->line_len : SL_LINE_CAP;
  if (n > 0 && c->line[n - 1] == '\r') n--;
  if (n >= 7 && memcmp(c->line, "data: {", 7) == 0) {
    b->events++;
    if (n >= 15 && memcmp(c->line + 7, "\"error\"", 7) == 0) {
      sl_finish(c, SL_FAIL_SSE);
      return false;
    }
  } else if (n >= 12 && memcmp(c->line, "data: [DONE]", 12) == 0) {
    c->done_seen = true;
  }
  c->line_len = 0;
  c->content_match = 0;
  return true;
}

/* Feeds decoded body bytes; returns false once the conn is finished. */
static bool sl_sse_feed(sl_conn *c, const char *p, size_t n, uint64_t now) {
  sl_bench *b = c->bench;
  if (c->status != 200) { /* keep the first error body for the report */
    if (b->errbody_owner < 0) b->errbody_owner = (int)c->index;
    if (b->errbody_owner == (int)c->index) {
      size_t room = SL_ERRBODY_CAP - b->errbody_len;
      size_t k = n < room ? n : room;
      memcpy(b->errbody + b->errbody_len, p, k);
      b->errbody_len += k;
      b->errbody[b->errbody_len] = 0;
    }
    return true;
  }
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (ch == '\n') {
      if (!sl_sse_line_end(c)) return false;
      continue;
    }
    if (c->line_len < SL_LINE_CAP) c->line[c->line_len] = ch;
    if (c->line_len < UINT16_MAX) c->line_len++;
    if (c->line_len == 7 && memcmp(c->line, "data: {", 7) != 0)
      c->content_match = SL_MATCH_DONE; /* not a JSON data line */
    else if (c->line_len > 7)
      sl_content_byte(c, ch, now);
  }
  return true;
}

/* ---- HTTP response -------------------------------------------------------- */

static void sl_body_end(sl_conn *c) {
  if (c->status != 200) {
    sl_finish(c, SL_FAIL_STATUS);
  } else {
    sl_finish(c, c->done_seen ? SL_OK : SL_FAIL_NODONE);
  }
}

/* Handles one header line (kept prefix in c->line). Returns false on a
 * malformed status line. */
static bool sl_header_line(sl_conn *c) {
  sl_bench *b = c->bench;
  size_t n = c->line_len < SL_LINE_CAP ? c->line_len : SL_LINE_CAP - 1;
  if (n > 0 && c->line[n - 1] == '\r') n--;
  c->line[n] = 0;
  if (c->status == 0) {
    int st = 0;
    if (sscanf(c->line, "HTTP/1.%*d %d", &st) != 1 || st < 100 || st > 599) return false;
    c->status = (uint16_t)st;
    return true;
  }
  if (n == 0) {            /* end of headers */
    if (c->status < 200) { /* 100 Continue and friends: a new head follows */
      c->status = 0;
      return true;
    }
    b->status_count[c->status]++;
    c->state = SL_BODY;
    c->line_len = 0;
    c->body_mode = c->chunked ? SL_BODY_CHUNKED : c->has_length ? SL_BODY_LENGTH : SL_BODY_CLOSE;
    c->chunk_state = SL_CH_SIZE;
    if (c->body_mode == SL_BODY_LENGTH && c->remaining == 0) sl_body_end(c);
    return true;
  }
  if (strncasecmp(c->line, "transfer-encoding:", 18) == 0) {
    if (strcasestr(c->line + 18, "chunked")) c->chunked = true;
  } else if (strncasecmp(c->line, "content-length:", 15) == 0) {
    c->has_length = true;
    c->remaining = strtoull(c->line + 15, NULL, 10);
  }
  return true;
}

/* The size line ended: payload follows, or the last chunk and its trailer. */
static void sl_chunk_size_end(sl_conn *c) {
  if (c->remaining) {
    c->chunk_state = SL_CH_DATA;
  } else {
    c->chunk_state = SL_CH_TRAILER;
    c->line_len = 0;
  }
}

/* Walks the chunked framing; hands the payload to the SSE parser. */
static void sl_chunked_feed(sl_conn *c, const char *p, size_t n, uint64_t now) {
  size_t i = 0;
  while (i < n && c->state == SL_BODY) {
    char ch = p[i];
    switch (c->chunk_state) {
    case SL_CH_SIZE:
      i++;
      if (ch >= '0' && ch <= '9')
        c->remaining = c->remaining * 16 + (uint64_t)(ch - '0');
      else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
        c->remaining = c->remaining * 16 + (uint64_t)((ch | 0x20) - 'a' + 10);
      else if (ch == '\n')
        sl_chunk_size_end(c);
      else
        c->chunk_state = SL_CH_EXT; /* ';ext' or '\r' */
      break;
    case SL_CH_EXT:
      i++;
      if (ch == '\n') sl_chunk_size_end(c);
      break;
    case SL_CH_DATA: {
      size_t k = n - i < c->remaining ? n - i : (size_t)c->remaining;
      if (!sl_sse_feed(c, p + i, k, now)) return;
      i += k;
      c->remaining -= k;
      if (c->remaining == 0) c->chunk_state = SL_CH_DATA_END;
      break;
    }
    case SL_CH_DATA_END:
      i++;
      if (ch == '\n') c->chunk_state = SL_CH_SIZE;
      break;
    case SL_CH_TRAILER: /* line_len counts bytes of the trailer line */
      i++;
      if (ch == '\n') {
        if (c->line_len <= 1) { /* empty line ends the message */
          sl_body_end(c);
          return;
        }
        c->line_len = 0;
      } else {
        c->line_len++;
      }
      break;
    }
  }
}

static void sl_consume(sl_conn *c, const char *p, size_t n, uint64_t now) {
  size_t i = 0;
  while (i < n && c->state == SL_HEAD) {
    char ch = p[i++];
    if (ch == '\n') {
      if (!sl_header_line(c)) {
        sl_finish(c, SL_FAIL_STATUS);
        return;
      }
      c->line_len = 0;
      continue;
    }
    if (c->line_len < SL_LINE_CAP) c->line[c->line_len] = ch;
    if (c->line_len < UINT16_MAX) c->line_len++;
  }
  if (c->state != SL_BODY || i == n) return;
  p += i;
  n -= i;
  switch (c->body_mode) {
  case SL_BODY_CHUNKED:
    sl_chunked_feed(c, p, n, now);
    break;
  case SL_BODY_LENGTH: {
    size_t k = n < c->remaining ? n : (size_t)c->remaining;
    if (!sl_sse_feed(c, p, k, now)) return;
    c->remaining -= k;
    if (c->remaining == 0) sl_body_end(c);
    break;
  }
  case SL_BODY_CLOSE:
    sl_sse_feed(c, p, n, now);
    break;
  }
}

/* ---- libuv callbacks ------------------------------------------------------ */

static void sl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  *buf = uv_buf_init(sl_read_buf, sizeof sl_read_buf);
}

static void sl_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  sl_conn *c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    if (c->state == SL_BODY && c->body_mode == SL_BODY_CLOSE && nread == UV_EOF)
      sl_body_end(c);
    else
      sl_finish(c, SL_FAIL_EOF);
    return;
  }
  /* One stamp per read: every token in this read reached us at this moment. */
  uint64_t now = uv_hrtime();
  if (c->bench->batch_first == 0) c->bench->batch_first = now;
  sl_consume(c, buf->base, (size_t)nread, now);
  if (!c->timed && c->state == SL_BODY && !c->paused) {
    uv_read_stop(s); /* the rest waits in the socket buffer for the next drain */
    c->paused = true;
  }
}

/* Reads every untimed stream once: whatever piled up since the last drain
 * arrives in one read, so they cost the client little. */
static void sl_on_drain(uv_timer_t *t) {
  sl_bench *b = t->data;
  for (uint32_t i = 0; i < b->next_conn; i++) {
    sl_conn *c = &b->conns[i];
    if (c->paused && c->state == SL_BODY) {
      c->paused = false;
      if (uv_read_start((uv_stream_t *)&c->tcp, sl_alloc, sl_on_read) < 0)
        sl_finish(c, SL_FAIL_EOF);
    }
  }
}

static void sl_on_write(uv_write_t *req, int status) {
  sl_conn *c = req->data;
  free(c->request);
  c->request = NULL;
  if (status < 0) sl_finish(c, SL_FAIL_CONNECT);
}

static char *sl_build_request(const sl_bench *b, uint32_t index, size_t *len) {
  const sl_options *o = &b->opt;
  char key[160], body[512];
  if (o->key_per_stream)
    snprintf(key, sizeof key, "%s-%" PRIu32, o->api_key, index);
  else
    snprintf(key, sizeof key, "%s", o->api_key);
  int bn = snprintf(body, sizeof body,
                    "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                    "\"stream\":true,\"ignore_eos\":true,\"max_tokens\":%" PRIu32 "}",
                    o->model, o->tokens);
  if (bn < 0 || (size_t)bn >= sizeof body) return NULL;
  size_t cap = 512 + strlen(o->path) + strlen(o->host) + strlen(key) + (size_t)bn;
  char *req = malloc(cap);
  if (!req) return NULL;
  int rn = snprintf(req, cap,
                    "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                    "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                    "Content-Length: %d\r\n\r\n%s",
                    o->path, o->host, o->port, key, bn, body);
  if (rn < 0 || (size_t)rn >= cap) {
    free(req);
    return NULL;
  }
  *len = (size_t)rn;
  return req;
}

static void sl_on_connect(uv_connect_t *req, int status) {
  sl_conn *c = req->data;
  sl_bench *b = c->bench;
  if (c->state != SL_CONNECTING) return; /* timed out meanwhile */
  if (status < 0) {
    if (b->outcome[SL_FAIL_CONNECT] == 0)
      fprintf(stderr, "streamload: connect: %s\n", uv_strerror(status));
    sl_finish(c, SL_FAIL_CONNECT);
    return;
  }
  if (++b->connected == b->opt.streams) b->t_all_connected = uv_hrtime();
  uv_tcp_nodelay(&c->tcp, 1);
  size_t len = 0;
  c->request = sl_build_request(b, c->index, &len);
  if (!c->request) {
    sl_finish(c, SL_FAIL_CONNECT);
    return;
  }
  c->state = SL_HEAD;
  c->write_req.data = c;
  uv_buf_t buf = uv_buf_init(c->request, (unsigned)len);
  c->t_sent = uv_hrtime();
  int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, sl_on_write);
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&c->tcp, sl_alloc, sl_on_read);
  if (rc < 0) {
    sl_finish(c, SL_FAIL_CONNECT);
    return;
  }
  b->opened++;
}

/* With --source-addrs K, stream i comes from 127.0.0.(1 + i % K). The
 * kernel has ~28 000 ephemeral ports (ip_local_port_range) for each source
 * address towards one server port, so one address cannot hold more streams
 * than that. IP_BIND_ADDRESS_NO_PORT leaves the port to connect(), which
 * picks it for the whole 4-tuple instead of reserving it at bind(). */
static int sl_bind_source(sl_conn *c) {
  uv_os_fd_t fd;
  int rc = uv_fileno((uv_handle_t *)&c->tcp, &fd);
  if (rc < 0) return rc;
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  struct sockaddr_in src = {.sin_family = AF_INET};
  src.sin_addr.s_addr = htonl((127u << 24) | (1 + c->index % c->bench->opt.source_addrs));
  return uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
}

static void sl_start_conn(sl_bench *b, sl_conn *c) {
  c->bench = b;
  /* With --sample K, every (N/K)th stream is timed, so the sample spans the ramp. */
  uint32_t stride = b->opt.sample ? b->opt.streams / b->opt.sample : 1;
  if (stride == 0) stride = 1;
  c->timed = c->index % stride == 0 && (!b->opt.sample || b->timed_streams < b->opt.sample);
  if (c->timed) b->timed_streams++;
  c->tcp.data = c;
  c->connect_req.data = c;
  int rc = b->opt.source_addrs ? uv_tcp_init_ex(b->loop, &c->tcp, AF_INET)
                               : uv_tcp_init(b->loop, &c->tcp);
  if (rc < 0) { /* no handle to close: count it here */
    fprintf(stderr, "streamload: socket: %s\n", uv_strerror(rc));
    c->state = SL_FINISHED;
    b->outcome[SL_FAIL_CONNECT]++;
    if (++b->finished == b->opt.streams) sl_stop(b);
    return;
  }
  c->state = SL_CONNECTING;
  rc = b->opt.source_addrs ? sl_bind_source(c) : 0;
  if (rc < 0) {
    if (b->outcome[SL_FAIL_CONNECT] == 0)
      fprintf(stderr, "streamload: bind: %s\n", uv_strerror(rc));
    sl_finish(c, SL_FAIL_CONNECT);
    return;
  }
  rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&b->addr, sl_on_connect);
  if (rc < 0) {
    if (b->outcome[SL_FAIL_CONNECT] == 0)
      fprintf(stderr, "streamload: connect: %s\n", uv_strerror(rc));
    sl_finish(c, SL_FAIL_CONNECT);
  }
}

static void sl_on_pace(uv_timer_t *t) {
  sl_bench *b = t->data;
  uint32_t batch =
      b->opt.connect_rate > 0 ? (uint32_t)ceil(b->opt.connect_rate * SL_TICK_MS) : b->opt.streams;
  if (batch == 0) batch = 1;
  for (uint32_t i = 0; i < batch && b->next_conn < b->opt.streams && !b->stopping; i++) {
    sl_conn *c = &b->conns[b->next_conn];
    c->index = b->next_conn++;
    sl_start_conn(b, c);
  }
  if (b->next_conn >= b->opt.streams) uv_timer_stop(t);
}

static void sl_on_hold_end(uv_timer_t *t) {
  sl_bench *b = t->data;
  sl_sample_rss(b);
  for (uint32_t i = 0; i < b->next_conn; i++)
    sl_finish(&b->conns[i], SL_HELD_CLOSED);
}

static void sl_on_sample(uv_timer_t *t) {
  sl_bench *b = t->data;
  sl_sample_rss(b);
  if (b->opt.hold && b->t_all_open && !uv_is_active((uv_handle_t *)&b->hold_timer))
    uv_timer_start(&b->hold_timer, sl_on_hold_end, (uint64_t)(b->opt.hold_s * 1000), 0);
  static uint64_t last_print;
  static double last_self, last_srv;
  uint64_t now = uv_hrtime();
  if (!b->opt.quiet && now - last_print >= 1000000000ull) {
    double span = last_print ? (double)(now - last_print) / 1e9 : 0;
    double self = sl_cpu_seconds(0);
    double srv = b->opt.server_pid > 0 ? sl_cpu_seconds(b->opt.server_pid) : 0;
    fprintf(stderr,
            "streamload: t=%.1fs connected=%u streaming=%u finished=%u tokens=%" PRIu64
            " rss=%.1fMiB cpu: self %.0f%% server %.0f%%\n",
            (double)(now - b->t_begin) / 1e9, b->connected, b->streaming, b->finished, b->tokens,
            (double)b->rss_kib / 1024.0, span > 0 ? 100 * (self - last_self) / span : 0,
            span > 0 ? 100 * (srv - last_srv) / span : 0);
    last_print = now;
    last_self = self;
    last_srv = srv;
  }
}

/* The loop is about to poll: a new batch of events starts after it. */
static void sl_on_prepare(uv_prepare_t *p) {
  ((sl_bench *)p->data)->batch_first = 0;
}

/* The poll's callbacks are done. A token read late in a long batch was
 * stamped late by the client itself; this bounds that part of the error. */
static void sl_on_check(uv_check_t *ch) {
  sl_bench *b = ch->data;
  if (b->batch_first) sl_hist_add(&b->batch, (uv_hrtime() - b->batch_first) / 1000);
  b->batch_first = 0;
}

static void sl_on_timeout(uv_timer_t *t) {
  sl_bench *b = t->data;
  fprintf(stderr, "streamload: --timeout-s %.0f reached, stopping\n", b->opt.timeout_s);
  sl_sample_rss(b);
  for (uint32_t i = 0; i < b->next_conn; i++)
    sl_finish(&b->conns[i], SL_FAIL_TIMEOUT);
  sl_stop(b);
}

static void sl_on_sigint(uv_signal_t *s, int signum) {
  (void)signum;
  sl_bench *b = s->data;
  fprintf(stderr, "streamload: interrupted, stopping\n");
  for (uint32_t i = 0; i < b->next_conn; i++)
    sl_finish(&b->conns[i], SL_FAIL_TIMEOUT);
  sl_stop(b);
}

/* Stops the timers; uv_run returns once the last socket has closed. */
static void sl_stop(sl_bench *b) {
  if (b->stopping) return;
  b->stopping = true;
  b->t_end = uv_hrtime();
  b->cpu_self1 = sl_cpu_seconds(0);
  b->cpu_all1 = sl_machine_busy_seconds();
  b->cpu_server1 = b->opt.server_pid > 0 ? sl_cpu_seconds(b->opt.server_pid) : -1;
  uv_close((uv_handle_t *)&b->pace_timer, NULL);
  uv_close((uv_handle_t *)&b->sample_timer, NULL);
  uv_close((uv_handle_t *)&b->timeout_timer, NULL);
  uv_close((uv_handle_t *)&b->hold_timer, NULL);
  uv_close((uv_handle_t *)&b->drain_timer, NULL);
  uv_close((uv_handle_t *)&b->prepare, NULL);
  uv_close((uv_handle_t *)&b->check, NULL);
  uv_close((uv_handle_t *)&b->sigint, NULL);
}

/* ---- report --------------------------------------------------------------- */

static double sl_ms(uint64_t from, uint64_t to) {
  return to > from ? (double)(to - from) / 1e6 : 0;
}

static void sl_report(const sl_bench *b) {
  const sl_options *o = &b->opt;
  uint32_t failed = 0;
  for (int i = SL_FAIL_CONNECT; i < SL_OUTCOMES; i++)
    failed += b->outcome[i];
  uint32_t not_started = o->streams - b->next_conn;
  double ramp_ms = sl_ms(b->t_begin, b->t_all_open ? b->t_all_open : b->t_last_first_token);
  double elapsed_s = sl_ms(b->t_begin, b->t_end) / 1000.0;

  printf("streamload: %u streams x %u tokens at %.1f tok/s (expected gap %.3f ms), model %s\n",
         o->streams, o->tokens, o->rate, (double)b->expected_gap_us / 1000.0, o->model);
  printf("  streams    opened %u  completed %u  held_closed %u  failed %u  not_started %u\n",
         b->opened, b->outcome[SL_OK], b->outcome[SL_HELD_CLOSED], failed, not_started);
  if (failed) {
    printf("  failures  ");
    for (int i = SL_FAIL_CONNECT; i < SL_OUTCOMES; i++)
      if (b->outcome[i]) printf(" %s %u", sl_outcome_name[i], b->outcome[i]);
    printf("\n");
    for (int s = 0; s < 600; s++)
      if (s != 200 && b->status_count[s])
        printf("  http %d: %u responses\n", s, b->status_count[s]);
    if (b->errbody_len) printf("  first error body: %s\n", b->errbody);
  }
  if (b->timed_streams < o->streams)
    printf("  timing     %u of %u streams timed; the others read every %.0f ms, not timed\n",
           b->timed_streams, o->streams, o->drain_ms);
  printf("  tokens     %" PRIu64 " received (%" PRIu64 " data events), %.0f tok/s overall\n",
         b->tokens, b->events, elapsed_s > 0 ? (double)b->tokens / elapsed_s : 0);
  printf("  gap error  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f ms  (%" PRIu64
         " gaps, mean gap %.3f ms)\n",
         sl_hist_quantile_ms(&b->gap_err, 0.50), sl_hist_quantile_ms(&b->gap_err, 0.90),
         sl_hist_quantile_ms(&b->gap_err, 0.99), sl_hist_quantile_ms(&b->gap_err, 1.0),
         b->gap_err.count, sl_hist_mean_ms(&b->gap));
  printf("  client     one poll's reads took p50 %.3f  p99 %.3f  max %.3f ms (%" PRIu64
         " polls): a bound on the client's own share of the gap error\n",
         sl_hist_quantile_ms(&b->batch, 0.50), sl_hist_quantile_ms(&b->batch, 0.99),
         sl_hist_quantile_ms(&b->batch, 1.0), b->batch.count);
  printf("  ttft       p50 %.1f  p99 %.1f  max %.1f ms\n", sl_hist_quantile_ms(&b->ttft, 0.50),
         sl_hist_quantile_ms(&b->ttft, 0.99), sl_hist_quantile_ms(&b->ttft, 1.0));
  printf("  ramp       all connected %.1f ms, all mid-stream %s %.1f ms, max concurrent %u\n",
         sl_ms(b->t_begin, b->t_all_connected), b->t_all_open ? "at" : "NEVER (last first token)",
         ramp_ms, b->streaming_max);
  if (o->server_pid > 0)
    printf("  server RSS at all-open %.1f MiB, peak sampled %.1f MiB, VmHWM %.1f MiB (pid %ld)\n",
           (double)b->rss_all_open_kib / 1024.0, (double)b->rss_peak_kib / 1024.0,
           (double)b->hwm_kib / 1024.0, o->server_pid);
  double cpu_self = b->cpu_self1 - b->cpu_self0;
  double cpu_srv =
      b->cpu_server0 >= 0 && b->cpu_server1 >= 0 ? b->cpu_server1 - b->cpu_server0 : -1;
  printf("  elapsed    %.2f s; CPU used: streamload %.2f s (%.0f%% of a core)", elapsed_s, cpu_self,
         elapsed_s > 0 ? 100 * cpu_self / elapsed_s : 0);
  if (cpu_srv >= 0)
    printf(", server %.2f s (%.0f%% of a core)", cpu_srv,
           elapsed_s > 0 ? 100 * cpu_srv / elapsed_s : 0);
  printf("\n");
  double cpu_all = b->cpu_all0 >= 0 && b->cpu_all1 >= 0 ? b->cpu_all1 - b->cpu_all0 : -1;
  if (cpu_all >= 0 && elapsed_s > 0) {
    double rest = cpu_all - cpu_self - (cpu_srv > 0 ? cpu_srv : 0);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf(
        "  machine    %.0f%% of %ld CPUs busy; %.0f%% of a core outside streamload and the server"
        " (softirq, other processes)\n",
        100 * cpu_all / elapsed_s / (double)(ncpu > 0 ? ncpu : 1), ncpu,
        100 * (rest > 0 ? rest : 0) / elapsed_s);
  }

  if (!o->json) return;
  printf("{\"streams\":%u,\"tokens_per_stream\":%u,\"rate\":%.3f,\"opened\":%u,\"completed\":%u,"
         "\"held_closed\":%u,\"failed\":%u,\"not_started\":%u,\"failures\":{",
         o->streams, o->tokens, o->rate, b->opened, b->outcome[SL_OK], b->outcome[SL_HELD_CLOSED],
         failed, not_started);
  for (int i = SL_FAIL_CONNECT; i < SL_OUTCOMES; i++)
    printf("%s\"%s\":%u", i == SL_FAIL_CONNECT ? "" : ",", sl_outcome_name[i], b->outcome[i]);
  printf("},\"tokens\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"gap_err_ms\":{\"p50\":%.3f,\"p90\":%.3f,"
         "\"p99\":%.3f,\"max\":%.3f},\"gap_mean_ms\":%.3f,\"ttft_ms\":{\"p50\":%.1f,\"p99\":%.1f,"
         "\"max\":%.1f},\"ramp_ms\":%.1f,\"all_open\":%s,\"max_concurrent\":%u,"
         "\"rss_all_open_kib\":%ld,\"rss_peak_kib\":%ld,\"vmhwm_kib\":%ld,\"elapsed_s\":%.3f,"
         "\"cpu_streamload_s\":%.2f,\"cpu_server_s\":%.2f,\"cpu_machine_s\":%.2f,"
         "\"timed_streams\":%u,\"client_poll_ms\":{\"p99\":%.3f,\"max\":%.3f}}\n",
         b->tokens, b->gap_err.count, sl_hist_quantile_ms(&b->gap_err, 0.50),
         sl_hist_quantile_ms(&b->gap_err, 0.90), sl_hist_quantile_ms(&b->gap_err, 0.99),
         sl_hist_quantile_ms(&b->gap_err, 1.0), sl_hist_mean_ms(&b->gap),
         sl_hist_quantile_ms(&b->ttft, 0.50), sl_hist_quantile_ms(&b->ttft, 0.99),
         sl_hist_quantile_ms(&b->ttft, 1.0), ramp_ms, b->t_all_open ? "true" : "false",
         b->streaming_max, b->rss_all_open_kib, b->rss_peak_kib, b->hwm_kib, elapsed_s,
         b->cpu_self1 - b->cpu_self0,
         b->cpu_server0 >= 0 && b->cpu_server1 >= 0 ? b->cpu_server1 - b->cpu_server0 : -1.0,
         b->cpu_all0 >= 0 && b->cpu_all1 >= 0 ? b->cpu_all1 - b->cpu_all0 : -1.0, b->timed_streams,
         sl_hist_quantile_ms(&b->batch, 0.99), sl_hist_quantile_ms(&b->batch, 1.0));
}

/* ---- main ----------------------------------------------------------------- */

static void sl_usage(FILE *f) {
  fprintf(
      f,
      "usage: streamload --port N [options]\n"
      "  --host ADDR          server address (127.0.0.1)\n"
      "  --port N             server port (required)\n"
      "  --path P             route (/inference/v1/chat/completions)\n"
      "  --streams N          concurrent streams, one connection each (100)\n"
      "  --tokens T           max_tokens per stream, with ignore_eos (200)\n"
      "  --rate R             expected tokens/s per stream; gap error is |gap - 1000/R| ms (50)\n"
      "  --model ID           (accounts/fireworks/models/kimi-k2p6)\n"
      "  --api-key K          bearer key (bench)\n"
      "  --key-per-stream     use K-<i> so each stream is its own account\n"
      "  --server-pid PID     sample VmRSS/VmHWM of PID from /proc\n"
      "  --connect-rate R     new connections per ms, paced in %d ms batches; 0 = all at once "
      "(50)\n"
      "  --sample K           time only K streams, spread evenly; read the others in batches\n"
      "                       every --drain-ms so the client costs the shared CPU less (all)\n"
      "  --drain-ms MS        (250)\n"
      "  --hold               once all streams are mid-stream, sample RSS, hold --hold-s, close\n"
      "  --hold-s S           seconds to hold (2)\n"
      "  --timeout-s S        stop everything after S seconds (120)\n"
      "  --source-addrs K     connect from 127.0.0.1 .. 127.0.0.K in turn (a loopback --host\n"
      "                       only): past ~28 000 streams one source address runs out of ports\n"
      "  --json               also print one JSON line\n"
      "  --quiet              no progress lines on stderr\n"
      "exit status: 0 all streams completed (or held), 1 any failed, 2 usage\n",
      SL_TICK_MS);
}

static int sl_parse_args(int argc, char **argv, sl_options *o) {
  static const struct option longopts[] = {{"host", required_argument, 0, 'H'},
                                           {"port", required_argument, 0, 'p'},
                                           {"path", required_argument, 0, 'P'},
                                           {"streams", required_argument, 0, 'n'},
                                           {"tokens", required_argument, 0, 't'},
                                           {"rate", required_argument, 0, 'r'},
                                           {"model", required_argument, 0, 'm'},
                                           {"api-key", required_argument, 0, 'k'},
                                           {"key-per-stream", no_argument, 0, 'K'},
                                           {"server-pid", required_argument, 0, 's'},
                                           {"connect-rate", required_argument, 0, 'c'},
                                           {"hold", no_argument, 0, 'h'},
                                           {"hold-s", required_argument, 0, 'S'},
                                           {"timeout-s", required_argument, 0, 'T'},
                                           {"sample", required_argument, 0, 'x'},
                                           {"drain-ms", required_argument, 0, 'd'},
                                           {"source-addrs", required_argument, 0, 'A'},
                                           {"json", no_argument, 0, 'j'},
                                           {"quiet", no_argument, 0, 'q'},
                                           {"help", no_argument, 0, '?'},
                                           {0, 0, 0, 0}};
  *o = (sl_options){.host = "127.0.0.1",
                    .port = 0,
                    .path = "/inference/v1/chat/completions",
                    .model = "accounts/fireworks/models/kimi-k2p6",
                    .api_key = "bench",
                    .streams = 100,
                    .tokens = 200,
                    .rate = 50,
                    .connect_rate = 50,
                    .drain_ms = 250,
                    .hold_s = 2,
                    .timeout_s = 120};
  int ch;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
    case 'H':
      o->host = optarg;
      break;
    case 'p':
      o->port = atoi(optarg);
      break;
    case 'P':
      o->path = optarg;
      break;
    case 'n':
      o->streams = (uint32_t)strtoul(optarg, NULL, 10);
      break;
    case 't':
      o->tokens = (uint32_t)strtoul(optarg, NULL, 10);
      break;
    case 'r':
      o->rate = atof(optarg);
      break;
    case 'm':
      o->model = optarg;
      break;
    case 'k':
      o->api_key = optarg;
      break;
    case 'K':
      o->key_per_stream = true;
      break;
    case 's':
      o->server_pid = strtol(optarg, NULL, 10);
      break;
    case 'c':
      o->connect_rate = atof(optarg);
      break;
    case 'h':
      o->hold = true;
      break;
    case 'S':
      o->hold_s = atof(optarg);
      break;
    case 'T':
      o->timeout_s = atof(optarg);
      break;
    case 'x':
      o->sample = (uint32_t)strtoul(optarg, NULL, 10);
      break;
    case 'd':
      o->drain_ms = atof(optarg);
      break;
    case 'A':
      o->source_addrs = (uint32_t)strtoul(optarg, NULL, 10);
      break;
    case 'j':
      o->json = true;
      break;
    case 'q':
      o->quiet = true;
      break;
    default:
      return -1;
    }
  }
  if (optind != argc || o->port <= 0 || o->port > 65535 || o->streams == 0 || o->tokens == 0 ||
      o->rate <= 0 || o->connect_rate < 0 || o->drain_ms <= 0 || o->hold_s < 0 ||
      o->timeout_s <= 0 || strlen(o->model) > 200 || strlen(o->api_key) > 100 ||
      o->source_addrs > 254)
    return -1;
  if (o->source_addrs && strncmp(o->host, "127.", 4) != 0) {
    fprintf(stderr, "streamload: --source-addrs needs an IPv4 loopback --host\n");
    return -1;
  }
  return 0;
}

/* Raises the open-file limit to the hard limit; warns when it is too low. */
static void sl_raise_nofile(uint32_t need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) perror("streamload: setrlimit");
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need + 16)
    fprintf(stderr, "streamload: warning: RLIMIT_NOFILE %lu < %u streams\n",
            (unsigned long)rl.rlim_cur, need);
}

int main(int argc, char **argv) {
  static sl_bench bench; /* large histograms: keep off the stack */
  sl_bench *b = &bench;
  if (sl_parse_args(argc, argv, &b->opt) != 0) {
    sl_usage(stderr);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  sl_raise_nofile(b->opt.streams);
  b->loop = uv_default_loop();
  b->errbody_owner = -1;
  b->expected_gap_us = (uint64_t)llround(1e6 / b->opt.rate);
  if (uv_ip4_addr(b->opt.host, b->opt.port, (struct sockaddr_in *)&b->addr) != 0 &&
      uv_ip6_addr(b->opt.host, b->opt.port, (struct sockaddr_in6 *)&b->addr) != 0) {
    fprintf(stderr, "streamload: bad --host %s\n", b->opt.host);
    return 2;
  }
  b->conns = calloc(b->opt.streams, sizeof *b->conns);
  if (!b->conns) {
    fprintf(stderr, "streamload: out of memory for %u streams\n", b->opt.streams);
    return 1;
  }
  uv_timer_init(b->loop, &b->pace_timer);
  uv_timer_init(b->loop, &b->sample_timer);
  uv_timer_init(b->loop, &b->timeout_timer);
  uv_timer_init(b->loop, &b->hold_timer);
  uv_timer_init(b->loop, &b->drain_timer);
  b->drain_timer.data = b;
  uv_signal_init(b->loop, &b->sigint);
  uv_prepare_init(b->loop, &b->prepare);
  uv_check_init(b->loop, &b->check);
  b->prepare.data = b->check.data = b;
  uv_prepare_start(&b->prepare, sl_on_prepare);
  uv_check_start(&b->check, sl_on_check);
  b->pace_timer.data = b->sample_timer.data = b->timeout_timer.data = b->hold_timer.data = b;
  b->sigint.data = b;
  uv_signal_start(&b->sigint, sl_on_sigint, SIGINT);

  sl_sample_rss(b);
  if (!b->opt.quiet && b->opt.server_pid > 0)
    fprintf(stderr, "streamload: server pid %ld idle RSS %.1f MiB\n", b->opt.server_pid,
            (double)b->rss_kib / 1024.0);
  b->cpu_self0 = sl_cpu_seconds(0);
  b->cpu_all0 = sl_machine_busy_seconds();
  b->cpu_server0 = b->opt.server_pid > 0 ? sl_cpu_seconds(b->opt.server_pid) : -1;
  b->t_begin = uv_hrtime();
  uv_timer_start(&b->pace_timer, sl_on_pace, 0, SL_TICK_MS);
  uv_timer_start(&b->sample_timer, sl_on_sample, 100, 100);
  uv_timer_start(&b->timeout_timer, sl_on_timeout, (uint64_t)(b->opt.timeout_s * 1000), 0);
  if (b->opt.sample && b->opt.sample < b->opt.streams) {
    uint64_t every = (uint64_t)(b->opt.drain_ms > 1 ? b->opt.drain_ms : 1);
    uv_timer_start(&b->drain_timer, sl_on_drain, every, every);
  }
  uv_run(b->loop, UV_RUN_DEFAULT);
  if (b->t_end == 0) b->t_end = uv_hrtime();

  sl_report(b);
  uint32_t failed = b->opt.streams - b->outcome[SL_OK] - b->outcome[SL_HELD_CLOSED];
  free(b->conns);
  uv_loop_close(b->loop);
  return failed ? 1 : 0;
}
