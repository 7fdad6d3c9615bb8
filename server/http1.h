/* http1.h — HTTP/1.1 on the wire: the request head parser, the chunked body
 * decoder and the reason phrases. Pure functions over bytes, no sockets, so
 * the fuzzers and unit tests call them directly; http.c drives them from the
 * loop.
 *
 * What is accepted (RFC 9112, with fleetmock's choices marked in
 * docs/api.md, "HTTP"):
 * - a request line `METHOD SP target SP HTTP/1.x`, lines ending in CRLF or a
 *   bare LF; the target in origin form (`/path?query`), absolute form
 *   (`http://host/path`, the path is kept) or `*`;
 * - header fields `name: value`, the name a token, the value trimmed of
 *   spaces and tabs; at most FM_HTTP_MAX_FIELDS of them;
 * - Content-Length (digits only; repeated with one value is one length,
 *   with two values it is a conflict the router answers 400), or
 *   Transfer-Encoding exactly `chunked` (any other coding, or a list, is a
 *   501), never both;
 * - in the path and the query, %XX decoded, except %00 (kept as written:
 *   a NUL would cut the string); `+` is not a space.
 * - Connection `close` / `keep-alive`, Expect `100-continue`.
 * A Host header is not required (a choice: a mock is driven by hand). */
#ifndef FM_HTTP1_H
#define FM_HTTP1_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Header fields a request may carry; more is a 431. */
#define FM_HTTP_MAX_FIELDS 100
/* Query arguments kept for lookups; later ones are ignored. */
#define FM_HTTP_MAX_ARGS 32

typedef struct fm_http_field {
  const char *name;  /* NUL-terminated, as sent */
  const char *value; /* NUL-terminated, trimmed; for a query argument NULL when it has no '=' */
} fm_http_field;

typedef struct fm_http_head {
  const char *method;
  const char *path;  /* percent-decoded, NUL-terminated, without the query */
  int minor;         /* HTTP/1.<minor>: 0 or 1 */
  size_t head_bytes; /* the request line and header fields, up to the blank line */
  /* What the head says of the body and the connection. */
  bool has_length;
  uint64_t content_length;
  bool length_conflict; /* two Content-Length fields with different values */
  bool chunked;
  bool keep_alive; /* HTTP/1.1 without `Connection: close`, or 1.0 with `keep-alive` */
  bool expect_continue;
  size_t n_fields;
  size_t n_args;
  /* The fields last: parsing clears only what is above (2 KiB less a request). */
  fm_http_field field[FM_HTTP_MAX_FIELDS];
  fm_http_field arg[FM_HTTP_MAX_ARGS]; /* the query, each name and value percent-decoded */
} fm_http_head;

typedef enum {
  FM_HTTP_PARTIAL = 0, /* the blank line that ends the head has not arrived */
  FM_HTTP_DONE = 1,    /* parsed; *used is the head's length with its blank line */
  FM_HTTP_BAD = -1,    /* refused: *status (400, 431, 501, 505) and *why say why */
} fm_http_result;

/* Parses the request head at the start of buf[0, len). A head longer than
 * max_bytes (the request line and fields, without the blank line) is a 431
 * as soon as that many bytes have arrived without its end. On DONE the head
 * has been rewritten in place (NULs, decoded strings) and h points into buf,
 * which must then stay put while h is used. On BAD h holds no fields, and
 * a head too large has h->head_bytes set to what arrived. *why is a static
 * message naming what is wrong and how to fix it. */
fm_http_result fm_http_parse_head(char *buf, size_t len, size_t max_bytes, fm_http_head *h,
                                  size_t *used, int *status, const char **why);

/* The first field of that name (case-insensitive); NULL when absent. */
const char *fm_http_field_get(const fm_http_head *h, const char *name);
/* The first query argument of that name (case-sensitive); NULL when absent or without a value. */
const char *fm_http_arg_get(const fm_http_head *h, const char *name);

/* A chunked request body, decoded as it arrives. Starts zeroed; bare LF
 * is accepted where CRLF is due, and chunk extensions and trailer fields
 * are read and dropped. */
typedef struct fm_chunked {
  int state;
  uint64_t left; /* of the chunk being read */
  unsigned digits;
} fm_chunked;

typedef enum {
  FM_CHUNKED_MORE = 0, /* everything given was consumed; more is needed */
  FM_CHUNKED_END = 1,  /* the last chunk and trailers are in; *used says how much was read */
  FM_CHUNKED_BAD = -1, /* malformed: *why says where */
} fm_chunked_result;

/* Feeds in[0, len): the data is appended to out until a piece of it would
 * take out past limit bytes; from there on it is dropped and *too_large is
 * set (the caller clears it once, before the first call; the router
 * answers 413 once the body has been read). *used is what was consumed (all
 * of it unless END, where bytes past the body are the next request's;
 * undefined on BAD, which ends the connection). */
fm_chunked_result fm_chunked_feed(fm_chunked *c, const char *in, size_t len, fm_buf *out,
                                  size_t limit, bool *too_large, size_t *used, const char **why);

/* The reason phrase of a status code ("OK", "Not Found"); "Unknown" for one it does not know. */
const char *fm_http_reason(int status);

#endif
