/* buf.c — growable byte buffer and JSON string escaping. */
#include "buf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fm_buf_init(fm_buf *b) {
  memset(b, 0, sizeof(*b));
}

void fm_buf_init_with(fm_buf *b, char *storage, size_t cap) {
  fm_buf_init(b);
  if (cap == 0) return;
  b->data = storage;
  b->cap = cap;
  b->borrowed = true;
  storage[0] = '\0';
}

void fm_buf_free(fm_buf *b) {
  if (!b->borrowed) free(b->data);
  fm_buf_init(b);
}

void fm_buf_reset(fm_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

bool fm_buf_reserve(fm_buf *b, size_t n) {
  if (b->oom) return false;
  if (b->len + n + 1 <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n + 1)
    cap *= 2;
  char *p = b->borrowed ? malloc(cap) : realloc(b->data, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  if (b->borrowed) memcpy(p, b->data, b->len + 1);
  b->borrowed = false;
  b->data = p;
  b->cap = cap;
  return true;
}

void fm_buf_put_grow(fm_buf *b, const void *p, size_t n) {
  if (!fm_buf_reserve(b, n)) return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void fm_buf_puts(fm_buf *b, const char *s) {
  fm_buf_put(b, s, strlen(s));
}

void fm_buf_put_i64(fm_buf *b, long long v) {
  /* Two digits a step from a table: a response's headers hold a dozen
   * ten-digit numbers (the lifted rate limits). */
  static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                              "25262728293031323334353637383940414243444546474849"
                              "50515253545556575859606162636465666768697071727374"
                              "75767778798081828384858687888990919293949596979899";
  char tmp[24];
  size_t i = sizeof(tmp);
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  while (u >= 100) {
    unsigned d = (unsigned)(u % 100) * 2;
    u /= 100;
    tmp[--i] = pairs[d + 1];
    tmp[--i] = pairs[d];
  }
  if (u >= 10) {
    tmp[--i] = pairs[u * 2 + 1];
    tmp[--i] = pairs[u * 2];
  } else {
    tmp[--i] = (char)('0' + u);
  }
  if (v < 0) tmp[--i] = '-';
  fm_buf_put(b, tmp + i, sizeof(tmp) - i);
}

void fm_buf_put_milli(fm_buf *b, uint64_t thousandths) {
  fm_buf_put_i64(b, (long long)(thousandths / 1000));
  char frac[4] = {'.', (char)('0' + thousandths / 100 % 10), (char)('0' + thousandths / 10 % 10),
                  (char)('0' + thousandths % 10)};
  fm_buf_put(b, frac, sizeof(frac));
}

void fm_buf_vprintf(fm_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  char small[256];
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  if (n < 0) {
    va_end(ap2);
    return;
  }
  if ((size_t)n < sizeof(small)) {
    fm_buf_put(b, small, (size_t)n);
  } else if (fm_buf_reserve(b, (size_t)n)) {
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    b->len += (size_t)n;
  }
  va_end(ap2);
}

void fm_buf_printf(fm_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fm_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

/* True when none of the 8 bytes in x needs escaping in a JSON string (a
 * control character, '"' or '\\'). The "has a byte below n" and "has a zero
 * byte" tests of Bit Twiddling Hacks (S. E. Anderson): they may misplace
 * which byte it is, never whether there is one, which is all this asks. */
static bool json_word_plain(uint64_t x) {
  const uint64_t ones = 0x0101010101010101ULL;
  uint64_t quote = x ^ (ones * '"'), bslash = x ^ (ones * '\\');
  uint64_t t = ((x - ones * 0x20) & ~x) | ((quote - ones) & ~quote) | ((bslash - ones) & ~bslash);
  return (t & (ones * 0x80)) == 0;
}

static bool json_byte_plain(unsigned char c) {
  return c >= 0x20 && c != '"' && c != '\\';
}

void fm_buf_json_strn(fm_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  if (!fm_buf_reserve(b, n + 2)) return;
  b->data[b->len++] = '"';
  const char *p = s, *end = s + n;
  while (p < end) {
    /* Text that needs no escaping is copied in runs, found 8 bytes at a time. */
    const char *q = p;
    uint64_t w;
    while (end - q >= 8 && (memcpy(&w, q, 8), json_word_plain(w)))
      q += 8;
    while (q < end && json_byte_plain((unsigned char)*q))
      q++;
    fm_buf_put(b, p, (size_t)(q - p));
    if (q == end) break;
    unsigned char c = (unsigned char)*q;
    p = q + 1;
    switch (c) {
    case '"':
      fm_buf_put(b, "\\\"", 2);
      break;
    case '\\':
      fm_buf_put(b, "\\\\", 2);
      break;
    case '\n':
      fm_buf_put(b, "\\n", 2);
      break;
    case '\r':
      fm_buf_put(b, "\\r", 2);
      break;
    case '\t':
      fm_buf_put(b, "\\t", 2);
      break;
    default: {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      fm_buf_put(b, e, 6);
    }
    }
  }
  fm_buf_putc(b, '"');
}

void fm_buf_json_str(fm_buf *b, const char *s) {
  if (!s) {
    fm_buf_put(b, "null", 4);
    return;
  }
  fm_buf_json_strn(b, s, strlen(s));
}

void fm_buf_json_num(fm_buf *b, double v) {
  if (!isfinite(v)) {
    fm_buf_put(b, "null", 4);
  } else if (v == floor(v) && fabs(v) < 9e15) {
    fm_buf_printf(b, "%lld", (long long)v);
  } else {
    fm_buf_printf(b, "%.10g", v);
  }
}

char *fm_buf_steal(fm_buf *b, size_t *len) {
  if (b->borrowed) { /* the caller's storage cannot be handed over: copy it */
    char *p = malloc(b->len + 1);
    if (p) memcpy(p, b->data, b->len + 1);
    if (len) *len = p ? b->len : 0;
    fm_buf_init(b);
    return p;
  }
  if (!b->data && fm_buf_reserve(b, 0)) b->data[0] = '\0';
  char *p = b->data;
  if (len) *len = b->len;
  fm_buf_init(b);
  return p;
}
