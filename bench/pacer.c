/* pacer — the least a server can do to pace token streams, as a yardstick.
 *
 * It answers every HTTP request on a connection with a chunked
 * text/event-stream of --tokens SSE events, the first after --ttft-ms and the
 * rest every 1000/--rate ms on an absolute schedule, then `data: [DONE]`. It
 * reads the request only far enough to find the end of its head and skips a
 * Content-Length body; there is no routing, JSON, admission or accounting.
 * One uv_timer per stream and one write per token: the same loopback TCP
 * work fleetmock does per token, and nothing else. --threads N runs N loops,
 * each on its own SO_REUSEPORT listener, so the kernel spreads connections
 * over them: with one loop per CPU it is the best any design can do here.
 *
 * bench/streams.sh runs streamload against it right after fleetmock, in the
 * same run, so the cadence fleetmock reaches can be read against what the
 * machine allows at all (the way throughput.sh reads fleetmock against nginx).
 * It binds 127.0.0.1 only and stops on SIGTERM.
 */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
  int port;
  const char *port_file;
  uint32_t tokens;
  double rate;
  double ttft_ms;
  int threads;
} pc_opts;

typedef struct {
  uv_tcp_t tcp;
  uv_timer_t timer;
  int closing;
  char head[4096];
  size_t head_len;
  uint64_t body_left; /* Content-Length bytes still to skip */
  bool streaming;
  uint32_t sent;
  uint64_t next_due_ns; /* absolute uv_hrtime() of the next token */
  uint64_t gap_ns;
  const pc_opts *o;
} pc_conn;

static void pc_free(uv_handle_t *h) {
  pc_conn *c = h->data;
  if (--c->closing == 0) free(c);
}

static void pc_close(pc_conn *c) {
  if (c->closing) return;
  c->closing = 2;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, pc_free);
  uv_close((uv_handle_t *)&c->tcp, pc_free);
}

/* Writes now if the socket takes it (it always does at these sizes); a
 * short write ends the connection rather than buffering. */
static void pc_write(pc_conn *c, const char *p, size_t n) {
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  if (uv_try_write((uv_stream_t *)&c->tcp, &b, 1) != (int)n) pc_close(c);
}

static void pc_on_tick(uv_timer_t *t);

static void pc_arm(pc_conn *c) {
  uint64_t now_ms = uv_now(c->tcp.loop);
  uint64_t due_ms = (c->next_due_ns + 999999) / 1000000;
  uv_timer_start(&c->timer, pc_on_tick, due_ms > now_ms ? due_ms - now_ms : 0, 0);
}

static void pc_on_tick(uv_timer_t *t) {
  pc_conn *c = t->data;
  static const char event[] =
      "data: {\"id\":\"pacer\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
      "\"delta\":{\"content\":\" token\"},\"finish_reason\":null}]}\n\n";
  static const char done[] = "data: [DONE]\n\n";
  char buf[512];
  uint64_t now = uv_hrtime();
  while (c->sent < c->o->tokens && now >= c->next_due_ns && !c->closing) {
    int n = snprintf(buf, sizeof buf, "%zx\r\n%s\r\n", sizeof event - 1, event);
    pc_write(c, buf, (size_t)n);
    c->sent++;
    c->next_due_ns += c->gap_ns;
  }
  if (c->closing) return;
  if (c->sent == c->o->tokens) {
    int n = snprintf(buf, sizeof buf, "%zx\r\n%s\r\n0\r\n\r\n", sizeof done - 1, done);
    pc_write(c, buf, (size_t)n);
    c->streaming = false;
    return;
  }
  pc_arm(c);
}

static void pc_start_stream(pc_conn *c) {
  static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
  pc_write(c, head, sizeof head - 1);
  c->streaming = true;
  c->sent = 0;
  c->gap_ns = (uint64_t)llround(1e9 / c->o->rate);
  c->next_due_ns = uv_hrtime() + (uint64_t)llround(c->o->ttft_ms * 1e6);
  pc_arm(c);
}

/* Consumes request bytes: a head up to the blank line, then its body. */
static void pc_feed(pc_conn *c, const char *p, size_t n) {
  while (n > 0 && !c->closing) {
    if (c->body_left) {
      size_t k = n < c->body_left ? n : (size_t)c->body_left;
      c->body_left -= k;
      p += k;
      n -= k;
      if (c->body_left == 0) pc_start_stream(c);
      continue;
    }
    if (c->head_len == sizeof c->head - 1) {
      pc_close(c);
      return;
    }
    c->head[c->head_len++] = *p++;
    n--;
    c->head[c->head_len] = 0;
    if (c->head_len < 4 || memcmp(c->head + c->head_len - 4, "\r\n\r\n", 4) != 0) continue;
    const char *cl = strcasestr(c->head, "\r\ncontent-length:");
    uint64_t len = cl ? strtoull(cl + 17, NULL, 10) : 0;
    c->head_len = 0;
    if (len)
      c->body_left = len;
    else
      pc_start_stream(c);
  }
}

static void pc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  (void)hint;
  static _Thread_local char buf[65536]; /* one per loop thread */
  *b = uv_buf_init(buf, sizeof buf);
}

static void pc_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  pc_conn *c = s->data;
  if (n < 0) {
    pc_close(c);
    return;
  }
  pc_feed(c, b->base, (size_t)n);
}

static void pc_on_conn(uv_stream_t *server, int status) {
  if (status < 0) return;
  pc_conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->o = server->data;
  uv_tcp_init(server->loop, &c->tcp);
  uv_timer_init(server->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    pc_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, pc_alloc, pc_on_read);
}

/* One loop per thread, each with its own SO_REUSEPORT listener on the port:
 * the kernel spreads new connections over them. */
typedef struct {
  pc_opts *o;
  int fd;
  uv_loop_t loop;
  uv_async_t stop;
  pthread_t thread;
} pc_worker;

static void pc_on_stop(uv_async_t *a) {
  uv_stop(a->loop);
}

static void *pc_worker_main(void *arg) {
  pc_worker *w = arg;
  uv_tcp_t server;
  uv_tcp_init(&w->loop, &server);
  server.data = w->o;
  uv_tcp_open(&server, w->fd);
  if (uv_listen((uv_stream_t *)&server, 4096, pc_on_conn) != 0) {
    fprintf(stderr, "pacer: listen failed\n");
    return NULL;
  }
  uv_run(&w->loop, UV_RUN_DEFAULT);
  return NULL;
}

static int pc_listener(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    fprintf(stderr, "pacer: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
    exit(2);
  }
  return fd;
}

static void pc_on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  uv_stop(h->loop);
}

int main(int argc, char **argv) {
  pc_opts o = {.port = 0, .tokens = 200, .rate = 50, .ttft_ms = 100, .threads = 1};
  static const struct option longs[] = {
      {"port", required_argument, 0, 'p'},    {"port-file", required_argument, 0, 'f'},
      {"tokens", required_argument, 0, 't'},  {"rate", required_argument, 0, 'r'},
      {"ttft-ms", required_argument, 0, 'T'}, {"threads", required_argument, 0, 'n'},
      {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  for (int ch; (ch = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
    switch (ch) {
    case 'p':
      o.port = atoi(optarg);
      break;
    case 'f':
      o.port_file = optarg;
      break;
    case 't':
      o.tokens = (uint32_t)strtoul(optarg, NULL, 10);
      break;
    case 'r':
      o.rate = atof(optarg);
      break;
    case 'T':
      o.ttft_ms = atof(optarg);
      break;
    case 'n':
      o.threads = atoi(optarg);
      break;
    default:
      fprintf(stderr, "usage: pacer [--port P] [--port-file F] [--tokens N] [--rate TOK_S] "
                      "[--ttft-ms MS] [--threads N]\n");
      return ch == 'h' ? 0 : 2;
    }
  }
  if (o.tokens == 0 || o.rate <= 0 || o.ttft_ms < 0 || o.threads < 1 || o.threads > 64) {
    fprintf(stderr, "pacer: --tokens, --rate must be positive, --ttft-ms not negative and "
                    "--threads 1..64\n");
    return 2;
  }
  pc_worker *w = calloc((size_t)o.threads, sizeof *w);
  if (!w) return 2;
  int port = o.port;
  for (int i = 0; i < o.threads; i++) {
    w[i].o = &o;
    w[i].fd = pc_listener(port);
    if (i == 0) {
      struct sockaddr_in bound;
      socklen_t blen = sizeof bound;
      getsockname(w[0].fd, (struct sockaddr *)&bound, &blen);
      port = ntohs(bound.sin_port);
    }
  }
  if (o.port_file) {
    FILE *f = fopen(o.port_file, "w");
    if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0) {
      fprintf(stderr, "pacer: cannot write %s: %s\n", o.port_file, strerror(errno));
      return 2;
    }
  }
  for (int i = 0; i < o.threads; i++) {
    uv_loop_init(&w[i].loop);
    uv_async_init(&w[i].loop, &w[i].stop, pc_on_stop);
    pthread_create(&w[i].thread, NULL, pc_worker_main, &w[i]);
  }
  uv_loop_t *main_loop = uv_default_loop();
  uv_signal_t sig;
  uv_signal_init(main_loop, &sig);
  uv_signal_start(&sig, pc_on_signal, SIGTERM);
  uv_run(main_loop, UV_RUN_DEFAULT);
  for (int i = 0; i < o.threads; i++) {
    uv_async_send(&w[i].stop);
    pthread_join(w[i].thread, NULL);
  }
  free(w);
  return 0;
}
