/* buf.h — a growable byte buffer and the JSON string writer built on it.
 *
 * Responses are rendered straight into one of these: it is cheaper than
 * building a cJSON tree and printing it, and the hot paths (non-streaming
 * bodies, SSE chunks) reuse one buffer per request so a streamed token
 * allocates nothing. */
#ifndef FM_BUF_H
#define FM_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct fm_buf {
  char *data;
  size_t len;
  size_t cap;
  bool oom;      /* set once an allocation failed; later writes are dropped */
  bool borrowed; /* data is the caller's storage (fm_buf_init_with), not ours to free */
} fm_buf;

void fm_buf_init(fm_buf *b);
/* Starts in the caller's storage (a stack array: no allocation for short
 * text); past it the bytes move to the heap. fm_buf_free as usual. */
void fm_buf_init_with(fm_buf *b, char *storage, size_t cap);
void fm_buf_free(fm_buf *b);
void fm_buf_reset(fm_buf *b);
/* Makes room for n more bytes. Returns false (and sets oom) on failure. */
bool fm_buf_reserve(fm_buf *b, size_t n);
/* Appends n bytes. Inline for the common case, room already there: the
 * answer, its headers and every streamed token are written in small pieces. */
void fm_buf_put_grow(fm_buf *b, const void *p, size_t n);
static inline void fm_buf_put(fm_buf *b, const void *p, size_t n) {
  if (b->len + n < b->cap && !b->oom) {
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return;
  }
  fm_buf_put_grow(b, p, n);
}
void fm_buf_puts(fm_buf *b, const char *s);
static inline void fm_buf_putc(fm_buf *b, char c) {
  if (b->len + 1 < b->cap && !b->oom) {
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return;
  }
  fm_buf_put_grow(b, &c, 1);
}
/* Decimal integers, without printf: response headers write many of them. */
void fm_buf_put_i64(fm_buf *b, long long v);
/* thousandths / 1000 with exactly three decimals ("1.005", "0.040"). */
void fm_buf_put_milli(fm_buf *b, uint64_t thousandths);
void fm_buf_printf(fm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fm_buf_vprintf(fm_buf *b, const char *fmt, va_list ap);
/* Writes s as a quoted JSON string, escaping as RFC 8259 requires. */
void fm_buf_json_str(fm_buf *b, const char *s);
void fm_buf_json_strn(fm_buf *b, const char *s, size_t n);
/* Writes a number the way JSON wants it: integers without a fraction. */
void fm_buf_json_num(fm_buf *b, double v);
/* Hands the bytes over to the caller (NUL-terminated); the buffer is left empty. */
char *fm_buf_steal(fm_buf *b, size_t *len);

#endif
