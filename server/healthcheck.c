/* healthcheck.c — `fleetmock --healthcheck URL`: one plain HTTP GET, so a
 * container image can check itself without curl. */
#include "healthcheck.h"

#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TIMEOUT_MS 3000

/* Splits http://HOST[:PORT][/PATH]; IPv6 hosts go in brackets. */
static int parse_url(const char *url, char *host, size_t hcap, char *port, size_t pcap,
                     const char **path) {
  if (strncmp(url, "http://", 7) != 0) return -1;
  const char *h = url + 7, *end;
  if (*h == '[') {
    end = strchr(h, ']');
    if (!end) return -1;
    snprintf(host, hcap, "%.*s", (int)(end - h - 1), h + 1);
    end++;
  } else {
    end = h + strcspn(h, ":/");
    snprintf(host, hcap, "%.*s", (int)(end - h), h);
  }
  snprintf(port, pcap, "80");
  if (*end == ':') {
    const char *p = end + 1;
    end = p + strcspn(p, "/");
    snprintf(port, pcap, "%.*s", (int)(end - p), p);
  }
  *path = *end ? end : "/";
  return *host ? 0 : -1;
}

int fm_healthcheck(const char *url) {
  char host[256], port[16];
  const char *path;
  if (parse_url(url, host, sizeof(host), port, sizeof(port), &path) != 0) {
    fprintf(stderr, "fleetmock: --healthcheck '%s': must be http://HOST[:PORT][/PATH]\n", url);
    return 2;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  if (getaddrinfo(host, port, &hints, &res) != 0) {
    fprintf(stderr, "fleetmock: --healthcheck: cannot resolve %s\n", host);
    return 1;
  }
  int fd = socket(res->ai_family, SOCK_STREAM, 0);
  int ok = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  freeaddrinfo(res);
  if (!ok) {
    fprintf(stderr, "fleetmock: --healthcheck: cannot connect to %s:%s\n", host, port);
    if (fd >= 0) close(fd);
    return 1;
  }
  char req[512];
  int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                   path, host);
  char status[64] = "";
  if (n > 0 && write(fd, req, (size_t)n) == n) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, TIMEOUT_MS) == 1) {
      ssize_t r = read(fd, status, sizeof(status) - 1);
      status[r > 0 ? r : 0] = '\0';
    }
  }
  close(fd);
  if (strncmp(status, "HTTP/1.1 200", 12) == 0 || strncmp(status, "HTTP/1.0 200", 12) == 0)
    return 0;
  fprintf(stderr, "fleetmock: --healthcheck %s: not healthy (%.*s)\n", url,
          (int)strcspn(status, "\r\n"), *status ? status : "no answer");
  return 1;
}
