/* keyload — send N non-streaming requests to fleetmock, each with an API key
 * of its own, and count exactly what came back.
 *
 * This is what a load test with one key per simulated user does to the
 * account table (bench/accounts.sh). wrk can send random keys from Lua, but
 * it stops on a duration, not a count, and abandons the requests in flight
 * when it does, so the server may count answers wrk never saw. keyload sends
 * exactly --requests requests over --conns keep-alive connections, one in
 * flight per connection, reads every answer to its last byte, and exits when
 * all are answered (or at --timeout-s, reported as a failure). The counts it
 * prints can therefore be compared with the server's /metrics one for one.
 *
 * Keys are "lk-<index>-<hash>": the index makes every key distinct, the hash
 * (of the index and --seed) makes them look like real, unrelated keys to the
 * server's hash table. --keys K reuses K keys in turn instead (K = 1: one
 * account for the whole run, to measure the request path without churn). Answers are parsed only as
 * far as the status line and Content-Length (fleetmock sends it on every non-streaming answer); a
 * body without one, or a connection that ends mid-answer, counts as an error and the connection is
 * opened again. --body may be given up to KL_BODIES times: request i sends body i mod their number,
 * and the 200s are also counted per body, so a run that mixes tiers can be checked tier by tier.
 * Everything runs on one libuv loop.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define KL_HEAD_CAP 8192 /* a response head larger than this is an error */
#define KL_REQ_CAP 4096
#define KL_BODIES 4

typedef struct kl_conn {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  char req[KL_REQ_CAP];
  char head[KL_HEAD_CAP];
  size_t head_len;
  bool in_body;
  uint64_t body_left;
  int status;
  int body;  /* which --body the request in flight sent */
  bool busy; /* a request is in flight */
  bool dead; /* closing; reopened if work remains */
  int closing;
} kl_conn;

static struct {
  const char *host, *path;
  const char *body[KL_BODIES];
  int n_bodies;
  int port, conns;
  uint64_t requests, seed, keys; /* keys 0: one per request */
  double timeout_s;
  struct sockaddr_storage addr;
  uv_loop_t *loop;
  uv_timer_t timer;
  kl_conn *c;
  uint64_t sent, answered, errors;
  uint64_t by_status[600];
  uint64_t ok_by_body[KL_BODIES];
  uint64_t t0;
  bool timed_out;
} kl;

static uint64_t kl_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static void kl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char shared[64 * 1024]; /* a read callback consumes it all before the next */
  (void)h;
  (void)suggested;
  buf->base = shared;
  buf->len = sizeof(shared);
}

static void kl_open(kl_conn *c);
static void kl_send(kl_conn *c);

static bool kl_done(void) {
  return kl.answered + kl.errors >= kl.requests || kl.timed_out;
}

static void kl_maybe_stop(void) {
  if (!kl_done()) return;
  uv_timer_stop(&kl.timer);
  for (int i = 0; i < kl.conns; i++) {
    kl_conn *c = &kl.c[i];
    if (!c->dead && !uv_is_closing((uv_handle_t *)&c->tcp)) {
      c->dead = true;
      uv_close((uv_handle_t *)&c->tcp, NULL);
    }
  }
  if (!uv_is_closing((uv_handle_t *)&kl.timer)) uv_close((uv_handle_t *)&kl.timer, NULL);
}

static void kl_closed(uv_handle_t *h) {
  kl_conn *c = h->data;
  if (!kl_done()) kl_open(c); /* more to send: a fresh connection */
}

/* The connection failed or ended early: the request in flight is an error. */
static void kl_fail(kl_conn *c) {
  if (c->dead) return;
  if (c->busy) kl.errors++;
  c->busy = false;
  c->dead = true;
  uv_close((uv_handle_t *)&c->tcp, kl_closed);
  kl_maybe_stop();
}

static void kl_answered(kl_conn *c) {
  kl.answered++;
  kl.by_status[c->status > 0 && c->status < 600 ? c->status : 0]++;
  if (c->status == 200) kl.ok_by_body[c->body]++;
  c->busy = false;
  c->in_body = false;
  c->head_len = 0;
  if (kl_done()) {
    kl_maybe_stop();
    return;
  }
  if (kl.sent < kl.requests) kl_send(c);
}

/* Parses a complete head: the status and Content-Length. */
static bool kl_parse_head(kl_conn *c, size_t len) {
  c->head[len] = '\0';
  if (sscanf(c->head, "HTTP/1.%*d %d", &c->status) != 1) return false;
  for (char *line = strstr(c->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
    if (!strncasecmp(line + 2, "content-length:", 15)) {
      c->body_left = strtoull(line + 17, NULL, 10);
      return true;
    }
  }
  return false;
}

static void kl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  kl_conn *c = s->data;
  if (n < 0) {
    kl_fail(c);
    return;
  }
  const char *p = buf->base;
  size_t left = (size_t)n;
  while (left > 0 && !c->dead) {
    if (!c->busy) { /* bytes nobody asked for */
      kl_fail(c);
      return;
    }
    if (!c->in_body) {
      size_t room = KL_HEAD_CAP - 1 - c->head_len, take = left < room ? left : room;
      memcpy(c->head + c->head_len, p, take);
      size_t old = c->head_len;
      c->head_len += take;
      c->head[c->head_len] = '\0';
      char *end = strstr(c->head + (old > 3 ? old - 3 : 0), "\r\n\r\n");
      if (!end) {
        if (c->head_len == KL_HEAD_CAP - 1) kl_fail(c);
        return;
      }
      size_t head = (size_t)(end - c->head) + 4;
      size_t used = head - old; /* bytes of this read that were head */
      if (!kl_parse_head(c, head)) {
        kl_fail(c);
        return;
      }
      c->in_body = true;
      p += used;
      left -= used;
    }
    uint64_t take = left < c->body_left ? left : c->body_left;
    c->body_left -= take;
    p += take;
    left -= take;
    if (c->body_left == 0) kl_answered(c);
  }
}

static void kl_written(uv_write_t *w, int status) {
  if (status < 0) kl_fail(w->data);
}

static void kl_send(kl_conn *c) {
  uint64_t i = kl.sent++, k = kl.keys ? i % kl.keys : i;
  c->body = (int)(i % (uint64_t)kl.n_bodies);
  const char *body = kl.body[c->body];
  size_t blen = strlen(body);
  int n =
      snprintf(c->req, sizeof(c->req),
               "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer lk-%" PRIu64 "-%016" PRIx64
               "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n"
               "%s",
               kl.path, kl.host, kl.port, k, kl_mix(k ^ kl.seed), blen, body);
  c->busy = true;
  uv_buf_t b = uv_buf_init(c->req, (unsigned)n);
  c->write.data = c;
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, kl_written) != 0) kl_fail(c);
}

static void kl_connected(uv_connect_t *req, int status) {
  kl_conn *c = req->data;
  if (status < 0) {
    fprintf(stderr, "keyload: connect: %s\n", uv_strerror(status));
    kl.errors++; /* counted so a dead server ends the run */
    c->dead = true;
    uv_close((uv_handle_t *)&c->tcp, kl_closed);
    kl_maybe_stop();
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, kl_alloc, kl_read);
  if (kl.sent < kl.requests) kl_send(c);
}

static void kl_open(kl_conn *c) {
  if (kl.sent >= kl.requests) return;
  memset(c, 0, sizeof(*c));
  uv_tcp_init(kl.loop, &c->tcp);
  uv_tcp_nodelay(&c->tcp, 1);
  c->tcp.data = c;
  c->connect.data = c;
  uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&kl.addr, kl_connected);
}

static void kl_tick(uv_timer_t *t) {
  (void)t;
  kl.timed_out = true;
  fprintf(stderr, "keyload: timed out after %.0f s with %" PRIu64 " of %" PRIu64 " answered\n",
          kl.timeout_s, kl.answered, kl.requests);
  kl_maybe_stop();
}

static void kl_usage(void) {
  fprintf(stderr, "usage: keyload --port N [--host 127.0.0.1] [--requests 2000000] [--conns 64]\n"
                  "               [--path /inference/v1/chat/completions] [--body JSON]...\n"
                  "               [--seed 1] [--keys K] [--timeout-s 600]\n");
}

int main(int argc, char **argv) {
  kl.host = "127.0.0.1";
  kl.path = "/inference/v1/chat/completions";
  const char *dflt =
      "{\"model\":\"accounts/fireworks/models/kimi-k2p6\",\"messages\":[{\"role\":\"user\","
      "\"content\":\"hi\"}],\"max_tokens\":4,\"ignore_eos\":true}";
  kl.requests = 2000000;
  kl.conns = 64;
  kl.seed = 1;
  kl.timeout_s = 600;
  static const struct option opts[] = {
      {"host", 1, 0, 'h'},      {"port", 1, 0, 'p'},  {"path", 1, 0, 'P'}, {"body", 1, 0, 'b'},
      {"requests", 1, 0, 'n'},  {"conns", 1, 0, 'c'}, {"seed", 1, 0, 's'}, {"keys", 1, 0, 'k'},
      {"timeout-s", 1, 0, 't'}, {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'h':
      kl.host = optarg;
      break;
    case 'p':
      kl.port = atoi(optarg);
      break;
    case 'P':
      kl.path = optarg;
      break;
    case 'b':
      if (kl.n_bodies == KL_BODIES) {
        fprintf(stderr, "keyload: at most %d --body\n", KL_BODIES);
        return 2;
      }
      if (strlen(optarg) > KL_REQ_CAP - 512) {
        fprintf(stderr, "keyload: a --body is at most %d bytes\n", KL_REQ_CAP - 512);
        return 2;
      }
      kl.body[kl.n_bodies++] = optarg;
      break;
    case 'n':
      kl.requests = strtoull(optarg, NULL, 10);
      break;
    case 'c':
      kl.conns = atoi(optarg);
      break;
    case 's':
      kl.seed = strtoull(optarg, NULL, 10);
      break;
    case 'k':
      kl.keys = strtoull(optarg, NULL, 10);
      break;
    case 't':
      kl.timeout_s = atof(optarg);
      break;
    default:
      kl_usage();
      return 2;
    }
  }
  if (!kl.n_bodies) kl.body[kl.n_bodies++] = dflt;
  if (kl.port <= 0 || kl.conns <= 0 || kl.requests == 0) {
    kl_usage();
    return 2;
  }
  if (uv_ip4_addr(kl.host, kl.port, (struct sockaddr_in *)&kl.addr) != 0 &&
      uv_ip6_addr(kl.host, kl.port, (struct sockaddr_in6 *)&kl.addr) != 0) {
    fprintf(stderr, "keyload: bad --host %s (an IP address)\n", kl.host);
    return 2;
  }
  if ((uint64_t)kl.conns > kl.requests) kl.conns = (int)kl.requests;
  kl.loop = uv_default_loop();
  kl.c = calloc((size_t)kl.conns, sizeof(kl_conn));
  if (!kl.c) return 2;
  uv_timer_init(kl.loop, &kl.timer);
  uv_timer_start(&kl.timer, kl_tick, (uint64_t)(kl.timeout_s * 1000), 0);
  kl.t0 = uv_hrtime();
  for (int i = 0; i < kl.conns; i++)
    kl_open(&kl.c[i]);
  uv_run(kl.loop, UV_RUN_DEFAULT);
  double secs = (double)(uv_hrtime() - kl.t0) / 1e9;
  printf("keyload: requests=%" PRIu64 " sent=%" PRIu64 " answered=%" PRIu64 " errors=%" PRIu64
         " seconds=%.2f rps=%.0f\n",
         kl.requests, kl.sent, kl.answered, kl.errors, secs, (double)kl.answered / secs);
  printf("keyload: status");
  for (int s = 0; s < 600; s++)
    if (kl.by_status[s]) printf(" %d=%" PRIu64, s, kl.by_status[s]);
  printf("\nkeyload: ok_by_body");
  for (int b = 0; b < kl.n_bodies; b++)
    printf(" %d=%" PRIu64, b, kl.ok_by_body[b]);
  printf("\n");
  free(kl.c);
  return kl.timed_out || kl.errors ? 1 : 0;
}
