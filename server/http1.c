/* http1.c — the request head parser, the chunked body decoder and the
 * reason phrases (http1.h). The head is looked at twice: once for its end
 * (the blank line), every time more bytes arrive, and once, when it is all
 * in, to cut it into fields in place. A head arrives in one read almost
 * always, so the first pass runs once and costs one memchr walk. */
#include "http1.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 §5.6.2 tchar. */
static bool is_tchar(unsigned char c) {
  static const char extra[] = "!#$%&'*+-.^_`|~";
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c && strchr(extra, c));
}

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes %XX in place (a % not followed by two hex digits is kept as is). */
static void percent_decode(char *s) {
  char *out = s;
  for (const char *p = s; *p; p++) {
    int hi, lo;
    if (*p == '%' && (hi = hex_value((unsigned char)p[1])) >= 0 &&
        (lo = hex_value((unsigned char)p[2])) >= 0 &&
        (hi | lo)) { /* %00 stays: it would cut the string */
      *out++ = (char)(hi * 16 + lo);
      p += 2;
    } else {
      *out++ = *p;
    }
  }
  *out = '\0';
}

/* Where the head ends: the index just past its blank line, or 0 when it has
 * not arrived. A line ends in LF, with or without a CR before it. */
static size_t head_end(const char *buf, size_t len) {
  const char *p = buf, *end = buf + len;
  while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    p++;
    if (p < end && *p == '\n') return (size_t)(p + 1 - buf);
    if (p + 1 < end && p[0] == '\r' && p[1] == '\n') return (size_t)(p + 2 - buf);
  }
  return 0;
}

/* Cuts the line at s (ending in LF or CRLF) and returns the next one. */
static char *cut_line(char *s) {
  char *nl = strchr(s, '\n'); /* the caller has checked one is there */
  char *next = nl + 1;
  if (nl > s && nl[-1] == '\r') nl--;
  *nl = '\0';
  return next;
}

static void parse_query(char *q, fm_http_head *h) {
  while (q && *q && h->n_args < FM_HTTP_MAX_ARGS) {
    char *amp = strchr(q, '&');
    if (amp) *amp = '\0';
    if (*q) {
      char *eq = strchr(q, '=');
      if (eq) *eq = '\0';
      percent_decode(q);
      if (eq) percent_decode(eq + 1);
      h->arg[h->n_args].name = q;
      h->arg[h->n_args].value = eq ? eq + 1 : NULL;
      h->n_args++;
    }
    q = amp ? amp + 1 : NULL;
  }
}

typedef struct head_error {
  int status;
  const char *why;
} head_error;

#define REFUSE(st, msg)                                                                            \
  do {                                                                                             \
    e->status = (st);                                                                              \
    e->why = (msg);                                                                                \
    return false;                                                                                  \
  } while (0)

/* `METHOD SP target SP HTTP/1.x`. */
static bool parse_request_line(char *line, fm_http_head *h, head_error *e) {
  char *sp1 = strchr(line, ' ');
  if (!sp1 || sp1 == line) REFUSE(400, "malformed request line: expected `METHOD /path HTTP/1.1`");
  *sp1 = '\0';
  for (const char *p = line; *p; p++)
    if (!is_tchar((unsigned char)*p))
      REFUSE(400, "malformed request line: the method must be a token such as GET or POST");
  char *target = sp1 + 1;
  char *sp2 = strchr(target, ' ');
  if (!sp2 || sp2 == target)
    REFUSE(400, "malformed request line: expected `METHOD /path HTTP/1.1`");
  *sp2 = '\0';
  const char *version = sp2 + 1;
  if (strncmp(version, "HTTP/", 5) != 0 || version[5] < '0' || version[5] > '9' ||
      version[6] != '.' || version[7] < '0' || version[7] > '9' || version[8])
    REFUSE(400, "malformed request line: the version must be HTTP/1.1 or HTTP/1.0");
  if (version[5] != '1')
    REFUSE(505, "HTTP version not supported: this server speaks HTTP/1.1 (and 1.0) only");
  h->minor = version[7] > '1' ? 1 : version[7] - '0'; /* 1.2 and later are read as 1.1 */
  for (const char *p = target; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      REFUSE(400,
             "malformed request target: control characters are not allowed; percent-encode them");
  if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
    char *path = strchr(strstr(target, "//") + 2, '/');
    if (path) {
      target = path;
    } else { /* "http://host" is "/", written over its own bytes */
      target[0] = '/';
      target[1] = '\0';
    }
  } else if (strcmp(target, "*") != 0 && target[0] != '/') {
    REFUSE(400, "malformed request target: it must start with '/'");
  }
  char *q = strchr(target, '?');
  if (q) *q++ = '\0';
  percent_decode(target);
  parse_query(q, h);
  h->method = line;
  h->path = target;
  return true;
}

/* A comma-separated list holds the token (case-insensitive). */
static bool list_has(const char *v, const char *token) {
  size_t n = strlen(token);
  for (const char *p = v; *p;) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *start = p;
    while (*p && *p != ',')
      p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    if ((size_t)(end - start) == n && strncasecmp(start, token, n) == 0) return true;
  }
  return false;
}

/* The last coding of a list (where chunked must be). */
static bool last_is_chunked(const char *v) {
  const char *comma = strrchr(v, ',');
  const char *last = comma ? comma + 1 : v;
  while (*last == ' ' || *last == '\t')
    last++;
  return strcasecmp(last, "chunked") == 0;
}

static bool note_field(fm_http_head *h, const char *name, const char *value, bool *has_te,
                       head_error *e) {
  switch (name[0] | 0x20) {
  case 'c':
    if (strcasecmp(name, "Content-Length") == 0) {
      if (!*value) REFUSE(400, "Content-Length must be a number of bytes (digits only)");
      uint64_t n = 0;
      for (const char *p = value; *p; p++) {
        if (*p < '0' || *p > '9' || n > (UINT64_MAX - 9) / 10)
          REFUSE(400, "Content-Length must be a number of bytes (digits only)");
        n = n * 10 + (uint64_t)(*p - '0');
      }
      if (h->has_length && h->content_length != n) h->length_conflict = true;
      if (!h->has_length) h->content_length = n;
      h->has_length = true;
    } else if (strcasecmp(name, "Connection") == 0) {
      if (list_has(value, "close"))
        h->keep_alive = false;
      else if (list_has(value, "keep-alive"))
        h->keep_alive = true;
    }
    break;
  case 't':
    if (strcasecmp(name, "Transfer-Encoding") == 0) {
      if (!last_is_chunked(value) || strchr(value, ','))
        REFUSE(501,
               "Transfer-Encoding: only `chunked` is supported; send the body plain or chunked");
      *has_te = true;
      h->chunked = true;
    }
    break;
  case 'e':
    if (strcasecmp(name, "Expect") == 0 && strcasecmp(value, "100-continue") == 0)
      h->expect_continue = true;
    break;
  default:
    break;
  }
  return true;
}

/* One `name: value` line, cut in place. */
static bool parse_field(char *line, fm_http_head *h, bool *has_te, head_error *e) {
  if (*line == ' ' || *line == '\t')
    REFUSE(400, "obsolete line folding in a header field: send each field on one line");
  char *colon = strchr(line, ':');
  if (!colon || colon == line) REFUSE(400, "malformed header field: expected `Name: value`");
  for (const char *p = line; p < colon; p++)
    if (!is_tchar((unsigned char)*p))
      REFUSE(400, "malformed header field name: no spaces or separators before the colon");
  *colon = '\0';
  char *v = colon + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  char *end = v + strlen(v);
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    *--end = '\0';
  if (h->n_fields == FM_HTTP_MAX_FIELDS) REFUSE(431, "too many header fields: send at most 100");
  h->field[h->n_fields].name = line;
  h->field[h->n_fields].value = v;
  h->n_fields++;
  return note_field(h, line, v, has_te, e);
}

fm_http_result fm_http_parse_head(char *buf, size_t len, size_t max_bytes, fm_http_head *h,
                                  size_t *used, int *status, const char **why) {
  /* A client may send blank lines before the request line (RFC 9112 §2.2). */
  size_t skip = 0;
  while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n'))
    skip++;
  size_t rel = head_end(buf + skip, len - skip);
  /* Without its end, a head of len - skip bytes is at least one byte less
   * long than that (the last could be the blank line's CR). */
  if (!rel && len - skip > max_bytes + 1) {
    memset(h, 0, offsetof(fm_http_head, field));
    h->head_bytes = len - skip;
    *status = 431;
    *why = "request head too large: keep the request line and headers under 12288 bytes";
    return FM_HTTP_BAD;
  }
  if (!rel) return FM_HTTP_PARTIAL;
  size_t end = skip + rel;
  char *p = buf + skip, *stop = buf + end;
  memset(h, 0, offsetof(fm_http_head, field));
  if (memchr(p, '\0', rel)) {
    *status = 400;
    *why = "a NUL byte in the request head; remove it";
    return FM_HTTP_BAD;
  }
  /* The blank line: "\r\n" or "\n" after the last line's LF. */
  char *blank = stop - 1;
  if (blank - 1 > p && blank[-1] == '\r' && blank[-2] == '\n') blank--;
  *blank = '\0'; /* every strchr below stays inside the head */
  h->head_bytes = (size_t)(blank - p);
  if (h->head_bytes > max_bytes) {
    *status = 431;
    *why = "request head too large: keep the request line and headers under 12288 bytes";
    return FM_HTTP_BAD;
  }
  head_error e = {0};
  char *next = cut_line(p);
  if (!parse_request_line(p, h, &e)) goto bad;
  h->keep_alive = h->minor >= 1;
  bool has_te = false;
  while (next < blank) {
    char *line = next;
    next = cut_line(line);
    if (!parse_field(line, h, &has_te, &e)) goto bad;
  }
  if (has_te && h->has_length) {
    e.status = 400;
    e.why = "both Transfer-Encoding and Content-Length: send one of them";
    goto bad;
  }
  *used = end;
  return FM_HTTP_DONE;
bad:
  *status = e.status;
  *why = e.why;
  return FM_HTTP_BAD;
}

const char *fm_http_field_get(const fm_http_head *h, const char *name) {
  int first = name[0] | 0x20; /* most fields differ in their first letter: no call for them */
  for (size_t i = 0; i < h->n_fields; i++)
    if ((h->field[i].name[0] | 0x20) == first && strcasecmp(h->field[i].name, name) == 0)
      return h->field[i].value;
  return NULL;
}

const char *fm_http_arg_get(const fm_http_head *h, const char *name) {
  for (size_t i = 0; i < h->n_args; i++)
    if (strcmp(h->arg[i].name, name) == 0) return h->arg[i].value;
  return NULL;
}

/* ---- chunked bodies ---------------------------------------------------------- */

enum {
  CH_SIZE,    /* hex digits of the chunk size */
  CH_EXT,     /* a chunk extension, up to the line's end */
  CH_SIZE_LF, /* the LF of the size line */
  CH_DATA,    /* the chunk's bytes */
  CH_DATA_CR, /* the CRLF after them */
  CH_DATA_LF,
  CH_TRAILER, /* the start of a trailer line (or the blank line) */
  CH_TRAILER_LINE,
  CH_END_LF, /* the LF of the blank line */
};

/* A chunk size line may carry extensions (ignored) but no more than this in all. */
#define FM_CHUNK_LINE_MAX 4096

fm_chunked_result fm_chunked_feed(fm_chunked *c, const char *in, size_t len, fm_buf *out,
                                  size_t limit, bool *too_large, size_t *used, const char **why) {
  size_t i = 0;
  while (i < len) {
    unsigned char ch = (unsigned char)in[i];
    switch (c->state) {
    case CH_SIZE: {
      int v = hex_value(ch);
      if (v >= 0) {
        if (++c->digits > 16) goto bad_size;
        c->left = c->left * 16 + (uint64_t)v;
        i++;
        break;
      }
      if (!c->digits) goto bad_size;
      if (ch == ';' || ch == ' ' || ch == '\t') {
        c->state = CH_EXT;
        c->digits = 0;
      } else if (ch == '\r') {
        c->state = CH_SIZE_LF;
        i++;
      } else if (ch == '\n') {
        c->state = c->left ? CH_DATA : CH_TRAILER;
        i++;
      } else {
        goto bad_size;
      }
      break;
    }
    case CH_EXT:
      if (++c->digits > FM_CHUNK_LINE_MAX) {
        *why = "chunked body: a chunk extension longer than 4096 bytes";
        return FM_CHUNKED_BAD;
      }
      if (ch == '\n') c->state = c->left ? CH_DATA : CH_TRAILER;
      i++;
      break;
    case CH_SIZE_LF:
      if (ch != '\n') goto bad_size;
      c->state = c->left ? CH_DATA : CH_TRAILER;
      i++;
      break;
    case CH_DATA: {
      size_t n = len - i;
      if (n > c->left) n = (size_t)c->left;
      if (!*too_large && out->len + n <= limit)
        fm_buf_put(out, in + i, n);
      else
        *too_large = true;
      i += n;
      c->left -= n;
      if (!c->left) c->state = CH_DATA_CR;
      break;
    }
    case CH_DATA_CR:
      if (ch == '\n') {
        c->state = CH_SIZE;
        c->digits = 0;
      } else if (ch == '\r') {
        c->state = CH_DATA_LF;
      } else {
        *why = "chunked body: a chunk's data must be followed by CRLF; check the chunk size";
        return FM_CHUNKED_BAD;
      }
      i++;
      break;
    case CH_DATA_LF:
      if (ch != '\n') {
        *why = "chunked body: a chunk's data must be followed by CRLF; check the chunk size";
        return FM_CHUNKED_BAD;
      }
      c->state = CH_SIZE;
      c->digits = 0;
      c->left = 0;
      i++;
      break;
    case CH_TRAILER:
      if (ch == '\n') {
        *used = i + 1;
        return FM_CHUNKED_END;
      }
      c->state = ch == '\r' ? CH_END_LF : CH_TRAILER_LINE;
      c->digits = 0;
      i++;
      break;
    case CH_TRAILER_LINE:
      if (++c->digits > FM_CHUNK_LINE_MAX) {
        *why = "chunked body: a trailer field longer than 4096 bytes";
        return FM_CHUNKED_BAD;
      }
      if (ch == '\n') c->state = CH_TRAILER;
      i++;
      break;
    case CH_END_LF:
      if (ch != '\n') {
        c->state = CH_TRAILER_LINE; /* a trailer line that began with CR */
        break;
      }
      *used = i + 1;
      return FM_CHUNKED_END;
    }
  }
  *used = i;
  return FM_CHUNKED_MORE;
bad_size:
  *why = "chunked body: a chunk size must be hex digits (at most 16) ending in CRLF";
  return FM_CHUNKED_BAD;
}

/* ---- reason phrases ---------------------------------------------------------- */

const char *fm_http_reason(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 402:
    return "Payment Required";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 411:
    return "Length Required";
  case 413:
    return "Content Too Large";
  case 415:
    return "Unsupported Media Type";
  case 417:
    return "Expectation Failed";
  case 422:
    return "Unprocessable Content";
  case 425:
    return "Too Early";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  case 529:
    return "Site is overloaded";
  default:
    return "Unknown";
  }
}
