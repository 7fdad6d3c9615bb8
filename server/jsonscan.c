/* jsonscan.c — the pass over JSON text before it is parsed, and JSON paths.
 *
 * The prescan is on every request's path, so it stays one loop over the
 * bytes that looks at little more than quotes, backslashes and brackets; it
 * does not check the JSON grammar (cJSON does that next) and only has to be
 * right about what lies inside strings. Naming a path costs a second walk,
 * but only up to the place found and only when something was found. */
#include "jsonscan.h"

#include "buf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

#include <stdio.h>
#include <string.h>

size_t fm_utf8_seq_len(const unsigned char *s, size_t n) {
  if (n == 0) return 0;
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  /* RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF. */
  size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  bool ok = len && c <= 0xf4 && len <= n;
  /* In order, stopping at the first bad byte: a C string's NUL ends the check. */
  for (size_t k = 1; ok && k < len; k++)
    ok = (s[k] & 0xc0) == 0x80;
  if (ok && len == 3) ok = !(c == 0xe0 && s[1] < 0xa0) && !(c == 0xed && s[1] >= 0xa0);
  if (ok && len == 4) ok = !(c == 0xf0 && s[1] < 0x90) && !(c == 0xf4 && s[1] >= 0x90);
  return ok ? len : 0;
}

char *fm_utf8_clean(char *s) {
  unsigned char *u = (unsigned char *)s;
  size_t n = strlen(s);
  for (size_t i = 0; i < n;) {
    size_t len = fm_utf8_seq_len(u + i, n - i);
    if (len) {
      i += len;
    } else {
      u[i++] = '?';
    }
  }
  return s;
}

static fm_json_issue found(fm_json_scan *out, fm_json_issue issue, size_t at, unsigned char c) {
  out->issue = issue;
  out->offset = at;
  out->byte = c;
  return issue;
}

/* The bytes the prescan acts on, inside a string and outside one. Most of a
 * body is plain text, which the loop skips without looking further. */
static const unsigned char stop_in_string[256] = {
    [0] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1};
static const unsigned char stop_outside[256] = {
    ['"'] = 1, ['['] = 1, ['{'] = 1, [']'] = 1, ['}'] = 1, [0x80 ... 0xff] = 1};

fm_json_issue fm_json_prescan(const char *p, size_t n, bool utf8, int max_depth,
                              fm_json_scan *out) {
  const unsigned char *s = (const unsigned char *)p;
  int depth = 0;
  bool in_str = false, esc = false;
  size_t str_at = 0; /* the opening quote of the string we are in */
  for (size_t i = 0; i < n; i++) {
    if (!esc) { /* the byte after a backslash is looked at whatever it is */
      const unsigned char *stop = in_str ? stop_in_string : stop_outside;
      while (i < n && !stop[s[i]])
        i++;
      if (i == n) break;
    }
    unsigned char c = s[i];
    if (c >= 0x80) {
      /* A backslash escapes the next byte whatever it is: fm_json_path_at
       * reads the text the same way, so both agree on where strings are. */
      esc = false;
      if (!utf8) continue;
      size_t len = fm_utf8_seq_len(s + i, n - i);
      if (!len) return found(out, FM_JSON_BAD_UTF8, i, c);
      i += len - 1;
      continue;
    }
    if (in_str) {
      if (esc) {
        esc = false;
        if (c == 'u' && n - i > 4 && memcmp(s + i + 1, "0000", 4) == 0 && depth > 0)
          return found(out, FM_JSON_NUL, str_at, 0);
      } else if (c == '\\') {
        esc = true;
      } else if (c == '"') {
        in_str = false;
      } else if (c == 0 && depth > 0) { /* not JSON, but cJSON would copy it into the string */
        return found(out, FM_JSON_NUL, str_at, 0);
      }
    } else if (c == '"') {
      in_str = true;
      str_at = i;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth && max_depth > 0) return found(out, FM_JSON_TOO_DEEP, i, c);
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return found(out, FM_JSON_OK, 0, 0);
}

/* ---- paths ------------------------------------------------------------------- */

/* One open array or object on the way to the place. */
typedef struct frame {
  bool array;
  bool want_key;       /* object: the next string is a key */
  int index;           /* array: the element; object: the member */
  size_t key, key_len; /* object: the current member's key, as bytes of the text */
} frame;

/* Appends to a bounded string; once something does not fit, nothing more
 * is added but "...", so a path is cut between parts, never inside one. */
typedef struct path_out {
  char *p;
  size_t cap, len;
  bool full;
} path_out;

static void put(path_out *o, const char *s, size_t n) {
  if (o->full) return;
  if (o->len + n + 4 > o->cap) { /* keep room for "..." */
    o->full = true;
    if (o->len + 4 <= o->cap) {
      memcpy(o->p + o->len, "...", 3);
      o->len += 3;
      o->p[o->len] = '\0';
    }
    return;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
  o->p[o->len] = '\0';
}

static bool plain_key(const unsigned char *k, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = k[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/* A key longer than this is shown cut, so the parts after it still fit. */
#define KEY_SHOWN 64

static void put_key(path_out *o, const unsigned char *k, size_t n) {
  if (plain_key(k, n) && n <= KEY_SHOWN) {
    char part[KEY_SHOWN + 1]; /* the dot and the key fit or not together */
    size_t len = 0;
    if (o->len) part[len++] = '.';
    memcpy(part + len, k, n);
    put(o, part, len + n);
    return;
  }
  char shown[KEY_SHOWN + 8];
  size_t len = 0;
  for (size_t i = 0; i < n;) {
    size_t seq = fm_utf8_seq_len(k + i, n - i);
    bool ok = seq > 1 || (seq == 1 && k[i] >= 0x20);
    if (!ok) seq = 1;
    if (len + seq > KEY_SHOWN) {
      memcpy(shown + len, "...", 3);
      len += 3;
      break;
    }
    if (ok)
      memcpy(shown + len, k + i, seq);
    else
      shown[len] = '?';
    len += ok ? seq : 1;
    i += seq;
  }
  char part[KEY_SHOWN + 16];
  memcpy(part, "[\"", 2);
  memcpy(part + 2, shown, len);
  memcpy(part + 2 + len, "\"]", 2);
  put(o, part, len + 4);
}

static void put_index(path_out *o, int i) {
  char b[24];
  int n = snprintf(b, sizeof(b), "[%d]", i);
  put(o, b, (size_t)n);
}

/* The end of the string whose opening quote is at `at`: its closing quote, or n. */
static size_t string_end(const unsigned char *s, size_t n, size_t at) {
  bool esc = false;
  for (size_t i = at + 1; i < n; i++) {
    if (esc)
      esc = false;
    else if (s[i] == '\\')
      esc = true;
    else if (s[i] == '"')
      return i;
  }
  return n;
}

const char *fm_json_path_at(const char *p, size_t n, size_t at, const char *secret, char *out,
                            size_t cap) {
  const unsigned char *s = (const unsigned char *)p;
  frame st[FM_JSON_PATH_DEPTH];
  int depth = 0; /* may exceed FM_JSON_PATH_DEPTH: frames past it are counted, not kept */
  bool in_str = false, esc = false;
  size_t str_at = 0;
  if (cap) out[0] = '\0';
  if (cap < 8) return out;
  for (size_t i = 0; i < at && i < n; i++) {
    unsigned char c = s[i];
    frame *top = depth > 0 && depth <= FM_JSON_PATH_DEPTH ? &st[depth - 1] : NULL;
    if (in_str) {
      if (esc) {
        esc = false;
      } else if (c == '\\') {
        esc = true;
      } else if (c == '"') {
        in_str = false;
        if (top && !top->array && top->want_key) {
          top->key = str_at + 1;
          top->key_len = i - str_at - 1;
          top->want_key = false;
        }
      }
      continue;
    }
    switch (c) {
    case '"':
      in_str = true;
      str_at = i;
      break;
    case '[':
    case '{':
      if (depth < FM_JSON_PATH_DEPTH)
        st[depth] =
            (frame){.array = c == '[', .want_key = c == '{', .index = 0, .key = 0, .key_len = 0};
      depth++;
      break;
    case ']':
    case '}':
      if (depth > 0) depth--;
      break;
    case ',':
      if (top) {
        top->index++;
        if (!top->array) top->want_key = true;
      }
      break;
    default:
      break;
    }
  }
  if (depth <= 0) return out;
  frame *top = depth <= FM_JSON_PATH_DEPTH ? &st[depth - 1] : NULL;
  if (top && !top->array && top->want_key && at < n) { /* the string is a key: it names itself */
    top->key = at + 1;
    top->key_len = string_end(s, n, at) - at - 1;
  }
  path_out o = {.p = out, .cap = cap};
  int shown = depth < FM_JSON_PATH_DEPTH ? depth : FM_JSON_PATH_DEPTH;
  for (int k = 0; k < shown; k++) {
    const frame *f = &st[k];
    if (f->array || (secret && !strcmp(out, secret)))
      put_index(&o, f->index);
    else
      put_key(&o, s + f->key, f->key_len);
  }
  if (depth > shown) put(&o, "...", 3);
  return out;
}

void fm_json_write_number(fm_buf *b, double v) {
  if (!isfinite(v)) {
    fm_buf_put(b, "null", 4);
    return;
  }
  if (v == floor(v) && fabs(v) < 1e15) {
    fm_buf_put_i64(b, (long long)v);
    return;
  }
  char s[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(s, sizeof(s), "%.*g", prec, v);
    if (strtod(s, NULL) == v) break;
  }
  fm_buf_puts(b, s);
}

static void write_value(fm_buf *b, const cJSON *v, int depth);

/* An array or object, an object's member named skip left out. */
static void write_members(fm_buf *b, const cJSON *v, int depth, const char *skip) {
  bool obj = (v->type & 0xff) == cJSON_Object, first = true;
  fm_buf_putc(b, obj ? '{' : '[');
  for (const cJSON *c = v->child; c; c = c->next) {
    if (obj && skip && c->string && strcmp(c->string, skip) == 0) continue;
    if (!first) fm_buf_putc(b, ',');
    first = false;
    if (obj) {
      fm_buf_json_str(b, c->string ? c->string : "");
      fm_buf_putc(b, ':');
    }
    write_value(b, c, depth + 1);
  }
  fm_buf_putc(b, obj ? '}' : ']');
}

static void write_value(fm_buf *b, const cJSON *v, int depth) {
  if (depth > 512) {
    fm_buf_put(b, "null", 4);
    return;
  }
  switch (v->type & 0xff) {
  case cJSON_False:
    fm_buf_put(b, "false", 5);
    return;
  case cJSON_True:
    fm_buf_put(b, "true", 4);
    return;
  case cJSON_Number:
    fm_json_write_number(b, v->valuedouble);
    return;
  case cJSON_String:
  case cJSON_Raw:
    fm_buf_json_str(b, v->valuestring);
    return;
  case cJSON_Array:
  case cJSON_Object:
    write_members(b, v, depth, NULL);
    return;
  default:
    fm_buf_put(b, "null", 4);
    return;
  }
}

void fm_json_write_without(fm_buf *b, const cJSON *obj, const char *skip) {
  if ((obj->type & 0xff) == cJSON_Object)
    write_members(b, obj, 0, skip);
  else
    write_value(b, obj, 0);
}

void fm_json_write(fm_buf *b, const cJSON *v) {
  if (v)
    write_value(b, v, 0);
  else
    fm_buf_put(b, "null", 4);
}

static uint64_t digest_str(uint64_t h, const char *s) {
  for (; s && *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return (h ^ 0xff) * 0x100000001b3ULL;
}

static uint64_t digest(const cJSON *n, uint64_t h, int depth) {
  for (; n; n = n->next) {
    h = (h ^ (uint64_t)(n->type & 0xff)) * 0x100000001b3ULL;
    if (depth > 0) h = digest_str(h, n->string);
    if (cJSON_IsString(n)) h = digest_str(h, n->valuestring);
    if (cJSON_IsNumber(n)) {
      uint64_t bits;
      memcpy(&bits, &n->valuedouble, sizeof(bits));
      h = (h ^ bits) * 0x100000001b3ULL;
    }
    if (n->child && depth < 4096)
      h = digest(n->child, (h ^ '{') * 0x100000001b3ULL, depth + 1) ^ '}';
    if (depth == 0) break; /* the root's siblings are not part of it */
  }
  return h;
}

uint64_t fm_json_digest(const cJSON *v, uint64_t salt) {
  uint64_t h = digest(v, 0xcbf29ce484222325ULL ^ salt, 0);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h | 1;
}

int fm_hex_digits(const char *s, int digits) {
  int v = 0;
  for (int i = 0; i < digits; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}
