/* mhdyard — the least libmicrohttpd can do to send fleetmock's answer, as a yardstick.
 *
 * A bare libmicrohttpd server (one thread, MHD_USE_EPOLL_INTERNAL_THREAD)
 * that answers every request with one fixed answer loaded at start: the
 * status line and headers in --headers (what `curl -D` writes), the body in
 * --body (what `curl -o` writes), both captured from a real fleetmock answer
 * by bench/throughput.sh. It reads the request body and discards it, as
 * fleetmock reads it before it answers; there is no routing, JSON,
 * admission or accounting.
 *
 * Per request it does what any server whose answers differ must do with
 * this library: create a response over the body (not copied), add every
 * captured header with MHD_add_response_header, queue it, destroy it. The
 * headers libmicrohttpd writes itself (Date, Content-Length, Connection) are
 * skipped. The connection pool is the 16 KiB fleetmock used while it ran on
 * libmicrohttpd (--pool-bytes 16384), because the library clears the pool
 * on every request and its size is part of the cost. So the req/s it makes
 * is what the library does for these bytes on the wire; fleetmock, which
 * now speaks HTTP itself (server/http.c), is measured against it.
 *
 * It binds 127.0.0.1 only, writes its port to --port-file, and stops on
 * SIGTERM or SIGINT. Exit status 0, 2 on bad usage or a file it cannot read.
 */
#define _GNU_SOURCE /* strcasecmp, strndup */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#define MY_MAX_HEADERS 64

typedef struct {
  unsigned status;
  char *body;
  size_t body_len;
  int n_headers;
  char *name[MY_MAX_HEADERS];
  char *value[MY_MAX_HEADERS];
} my_answer;

/* The whole file, NUL-terminated; NULL when it cannot be read. */
static char *my_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *data = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      char *grown = realloc(data, cap);
      if (!grown) goto err;
      data = grown;
    }
    size_t got = fread(data + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  if (ferror(f)) goto err;
  fclose(f);
  data[n] = '\0';
  *len = n;
  return data;
err:
  free(data);
  fclose(f);
  return NULL;
}

/* Headers libmicrohttpd writes itself, from the response and the connection. */
static bool my_mhd_writes(const char *name, size_t n) {
  static const char *const own[] = {"Date", "Content-Length", "Connection", "Transfer-Encoding"};
  for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
    if (strlen(own[i]) == n && strncasecmp(own[i], name, n) == 0) return true;
  return false;
}

/* Reads `curl -D` output: "HTTP/1.1 200 OK" then "Name: value" lines up to a
 * blank line. When curl followed a 100 Continue, the last head counts.
 * Returns 0, or -1 with a message on stderr. */
static int my_parse_head(my_answer *a, char *text) {
  char *line = text, *next;
  bool in_head = false;
  for (; *line; line = next) {
    size_t n = strcspn(line, "\r\n");
    next = line + n;
    if (*next == '\r') next++;
    if (*next == '\n') next++;
    if (n == 0) {
      in_head = false;
      continue;
    }
    if (!in_head) { /* a status line starts a head */
      unsigned st;
      if (sscanf(line, "HTTP/%*s %u", &st) != 1) {
        fprintf(stderr, "mhdyard: --headers: expected a status line, got \"%.*s\"\n", (int)n, line);
        return -1;
      }
      a->status = st;
      for (int i = 0; i < a->n_headers; i++) {
        free(a->name[i]);
        free(a->value[i]);
      }
      a->n_headers = 0;
      in_head = true;
      continue;
    }
    char *colon = memchr(line, ':', n);
    if (!colon) {
      fprintf(stderr, "mhdyard: --headers: not a header line: \"%.*s\"\n", (int)n, line);
      return -1;
    }
    size_t name_len = (size_t)(colon - line);
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
      v++;
    if (my_mhd_writes(line, name_len)) continue;
    if (a->n_headers == MY_MAX_HEADERS) {
      fprintf(stderr, "mhdyard: --headers: more than %d headers\n", MY_MAX_HEADERS);
      return -1;
    }
    a->name[a->n_headers] = strndup(line, name_len);
    a->value[a->n_headers] = strndup(v, (size_t)(line + n - v));
    if (!a->name[a->n_headers] || !a->value[a->n_headers]) return -1;
    a->n_headers++;
  }
  return a->status ? 0 : -1;
}

static enum MHD_Result my_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls) {
  (void)url;
  (void)method;
  (void)version;
  (void)upload_data;
  static int started;
  const my_answer *a = cls;
  if (!*con_cls) { /* the head has arrived; the body (if any) comes next */
    *con_cls = &started;
    return MHD_YES;
  }
  if (*upload_data_size) { /* read and discarded */
    *upload_data_size = 0;
    return MHD_YES;
  }
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(a->body_len, a->body, MHD_RESPMEM_PERSISTENT);
  if (!resp) return MHD_NO;
  for (int i = 0; i < a->n_headers; i++)
    MHD_add_response_header(resp, a->name[i], a->value[i]);
  enum MHD_Result rc = MHD_queue_response(conn, a->status, resp);
  MHD_destroy_response(resp);
  return rc;
}

static int my_listen(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4096) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int main(int argc, char **argv) {
  const char *headers = NULL, *body = NULL, *port_file = NULL;
  int port = 0;
  size_t pool = 16384;
  static const struct option longs[] = {{"headers", required_argument, 0, 'H'},
                                        {"body", required_argument, 0, 'b'},
                                        {"port", required_argument, 0, 'p'},
                                        {"port-file", required_argument, 0, 'f'},
                                        {"pool-bytes", required_argument, 0, 'P'},
                                        {"help", no_argument, 0, 'h'},
                                        {0, 0, 0, 0}};
  for (int ch; (ch = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
    switch (ch) {
    case 'H':
      headers = optarg;
      break;
    case 'b':
      body = optarg;
      break;
    case 'p':
      port = atoi(optarg);
      break;
    case 'f':
      port_file = optarg;
      break;
    case 'P':
      pool = strtoul(optarg, NULL, 10);
      break;
    default:
      fprintf(stderr, "usage: mhdyard --headers FILE --body FILE [--port P] [--port-file F] "
                      "[--pool-bytes 16384]\n");
      return ch == 'h' ? 0 : 2;
    }
  }
  if (!headers || !body || pool < 1024) {
    fprintf(stderr, "mhdyard: --headers and --body are required; --pool-bytes at least 1024\n");
    return 2;
  }
  my_answer a = {0};
  size_t head_len;
  char *head = my_slurp(headers, &head_len);
  a.body = my_slurp(body, &a.body_len);
  if (!head || !a.body) {
    fprintf(stderr, "mhdyard: cannot read %s: %s\n", head ? body : headers, strerror(errno));
    return 2;
  }
  if (my_parse_head(&a, head) != 0) return 2;
  free(head);

  /* Blocked before the daemon's thread starts, so only sigwait sees them. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  int fd = my_listen(port);
  if (fd < 0) {
    fprintf(stderr, "mhdyard: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
    return 2;
  }
  struct sockaddr_in bound;
  socklen_t blen = sizeof(bound);
  getsockname(fd, (struct sockaddr *)&bound, &blen);
  struct MHD_Daemon *d = MHD_start_daemon(
      MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, my_on_request, &a,
      MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
      MHD_OPTION_CONNECTION_LIMIT, 60000u, MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "mhdyard: libmicrohttpd failed to start\n");
    return 2;
  }
  if (port_file) {
    FILE *f = fopen(port_file, "w");
    if (!f || fprintf(f, "%d\n", ntohs(bound.sin_port)) < 0 || fclose(f) != 0) {
      fprintf(stderr, "mhdyard: cannot write %s: %s\n", port_file, strerror(errno));
      MHD_stop_daemon(d);
      return 2;
    }
  }
  int sig;
  sigwait(&stop, &sig);
  MHD_stop_daemon(d);
  for (int i = 0; i < a.n_headers; i++) {
    free(a.name[i]);
    free(a.value[i]);
  }
  free(a.body);
  return 0;
}
