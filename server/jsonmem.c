/* jsonmem.c — cJSON's hooks and the scratch arena of each thread (jsonmem.h). */
#include "jsonmem.h"

#include "jsonscan.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define FM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FM_ASAN 1
#endif
#endif
#ifdef FM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 16

typedef struct scratch {
  _Alignas(ALIGN) char mem[FM_JSONMEM_ARENA];
  size_t used;  /* bytes handed out since the arena was last empty */
  size_t live;  /* blocks handed out and not freed yet */
  bool drawing; /* a scratch parse is running: its blocks come from mem */
  unsigned long long drawn;
} scratch;

static _Thread_local scratch tl;

static bool in_arena(const void *p) {
  uintptr_t a = (uintptr_t)p, base = (uintptr_t)tl.mem;
  return a >= base && a < base + FM_JSONMEM_ARENA;
}

static void *hook_malloc(size_t n) {
  if (tl.drawing) {
    size_t rounded = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (rounded >= n && rounded <= FM_JSONMEM_ARENA - tl.used) {
      char *p = tl.mem + tl.used;
      tl.used += rounded;
      tl.live++;
      tl.drawn++;
      UNPOISON(p, n);
      return p;
    }
  }
  return malloc(n);
}

static void hook_free(void *p) {
  if (!in_arena(p)) {
    free(p);
    return;
  }
  if (--tl.live > 0) return;
  POISON(tl.mem, tl.used); /* every block is back: the arena starts again */
  tl.used = 0;
}

__attribute__((constructor)) static void install_hooks(void) {
  cJSON_Hooks hooks = {.malloc_fn = hook_malloc, .free_fn = hook_free};
  cJSON_InitHooks(&hooks);
}

/* ---- the fast parser ------------------------------------------------------
 * One pass over strict JSON (RFC 8259) into the same tree cJSON builds:
 * the same node types, values, keys and links, its blocks from hook_malloc.
 * It never judges a body: anything outside the subset it is sure of (an
 * error, \u escapes, raw control bytes, cJSON's looser numbers and
 * whitespace, a byte-order mark, a number of more than 63 characters,
 * nesting past cJSON's 1 000) makes it give up, and cJSON parses the body
 * instead, so what is accepted and every error message stay cJSON's. */

#define FAST_DEPTH 1000 /* CJSON_NESTING_LIMIT */

typedef struct fast {
  const char *text, *p, *end;
  bool gave_up;
} fast;

static void fast_ws(fast *f) {
  while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\r' || *f->p == '\t'))
    f->p++;
}

static cJSON *fast_node(fast *f, int type) {
  cJSON *n = hook_malloc(sizeof(*n));
  if (!n) {
    f->gave_up = true;
    return NULL;
  }
  memset(n, 0, sizeof(*n));
  n->type = type;
  return n;
}

/* At a backslash-u escape: the code point it (with a low surrogate's escape
 * after a high one) stands for, and its length in *len; -1 for what cJSON
 * refuses or reads differently (a lone surrogate, \u0000, a bad digit),
 * which are left to it. */
static long fast_escape(const char *q, const char *end, size_t *len) {
  long hi = end - q >= 6 ? fm_hex_digits(q + 2, 4) : -1;
  if (hi <= 0 || (hi >= 0xDC00 && hi <= 0xDFFF)) return -1;
  *len = 6;
  if (hi < 0xD800 || hi > 0xDBFF) return hi;
  if (end - q < 12 || q[6] != '\\' || q[7] != 'u') return -1;
  long lo = fm_hex_digits(q + 8, 4);
  if (lo < 0xDC00 || lo > 0xDFFF) return -1;
  *len = 12;
  return 0x10000 + (((hi & 0x3FF) << 10) | (lo & 0x3FF));
}

static size_t utf8_len(long cp) {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static char *utf8_put(char *w, long cp) {
  if (cp < 0x80) {
    *w++ = (char)cp;
  } else if (cp < 0x800) {
    *w++ = (char)(0xC0 | (cp >> 6));
    *w++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *w++ = (char)(0xE0 | (cp >> 12));
    *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *w++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *w++ = (char)(0xF0 | (cp >> 18));
    *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *w++ = (char)(0x80 | (cp & 0x3F));
  }
  return w;
}

/* At the opening quote: the decoded string in a block of its own. */
static char *fast_string(fast *f) {
  const char *q = ++f->p;
  /* Most strings hold no escape and no control byte: one scan, one copy. */
  while (q < f->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
    q++;
  if (q < f->end && *q == '"') {
    size_t len = (size_t)(q - f->p);
    char *out = hook_malloc(len + 1);
    if (!out) {
      f->gave_up = true;
      return NULL;
    }
    memcpy(out, f->p, len);
    out[len] = '\0';
    f->p = q + 1;
    return out;
  }
  size_t n = (size_t)(q - f->p);
  while (q < f->end && *q != '"') {
    unsigned char c = (unsigned char)*q;
    if (c < 0x20) break; /* cJSON takes raw control bytes; leave them to it */
    if (c == '\\' && q + 1 < f->end && q[1] == 'u') {
      /* what Python's json.dumps writes for every non-ASCII character */
      size_t len;
      long cp = fast_escape(q, f->end, &len);
      if (cp < 0) break;
      q += len;
      n += utf8_len(cp);
      continue;
    }
    if (c == '\\') {
      if (q + 1 >= f->end || !strchr("\"\\/bfnrt", q[1]) || !q[1]) break; /* the rest: cJSON's */
      q++;
    }
    q++;
    n++;
  }
  if (q >= f->end || *q != '"') {
    f->gave_up = true;
    return NULL;
  }
  char *out = hook_malloc(n + 1);
  if (!out) {
    f->gave_up = true;
    return NULL;
  }
  char *w = out;
  for (const char *r = f->p; r < q; r++) {
    if (*r != '\\') {
      *w++ = *r;
      continue;
    }
    switch (*++r) {
    case 'b':
      *w++ = '\b';
      break;
    case 'f':
      *w++ = '\f';
      break;
    case 'n':
      *w++ = '\n';
      break;
    case 'r':
      *w++ = '\r';
      break;
    case 't':
      *w++ = '\t';
      break;
    case 'u': {
      size_t len;
      w = utf8_put(w, fast_escape(r - 1, q, &len));
      r += len - 2;
      break;
    }
    default:
      *w++ = *r; /* " \ / */
    }
  }
  *w = '\0';
  f->p = q + 1;
  return out;
}

static bool digit(fast *f, const char *q) {
  return q < f->end && *q >= '0' && *q <= '9';
}

/* A strict JSON number, its value as cJSON's strtod gives it. */
static void fast_number(fast *f, cJSON *n) {
  const char *s = f->p, *q = s;
  bool neg = q < f->end && *q == '-';
  q += neg;
  if (!digit(f, q)) {
    f->gave_up = true;
    return;
  }
  uint64_t whole = 0;
  int digits = 0;
  if (*q == '0') {
    q++;
  } else {
    for (; digit(f, q); q++, digits++)
      whole = whole * 10 + (uint64_t)(*q - '0');
  }
  bool integer = true;
  if (q < f->end && *q == '.') {
    integer = false;
    if (!digit(f, ++q)) {
      f->gave_up = true;
      return;
    }
    while (digit(f, q))
      q++;
  }
  if (q < f->end && (*q == 'e' || *q == 'E')) {
    integer = false;
    q++;
    if (q < f->end && (*q == '+' || *q == '-')) q++;
    if (!digit(f, q)) {
      f->gave_up = true;
      return;
    }
    while (digit(f, q))
      q++;
  }
  size_t len = (size_t)(q - s);
  if (len > 63) { /* cJSON reads at most 63 characters of a number */
    f->gave_up = true;
    return;
  }
  double v;
  if (integer && digits <= 15) {
    v = (double)whole; /* exact below 2^53, as strtod rounds it */
    if (neg) v = -v;
  } else {
    char buf[64];
    memcpy(buf, s, len);
    buf[len] = '\0';
    v = strtod(buf, NULL);
  }
  n->valuedouble = v;
  if (v >= INT_MAX)
    n->valueint = INT_MAX;
  else if (v <= (double)INT_MIN)
    n->valueint = INT_MIN;
  else
    n->valueint = (int)v;
  f->p = q;
}

static bool fast_word(fast *f, const char *w, size_t n) {
  if ((size_t)(f->end - f->p) < n || memcmp(f->p, w, n) != 0) return false;
  f->p += n;
  return true;
}

static cJSON *fast_value(fast *f, int depth);

/* At [ or {: the children, linked as cJSON links them (the first one's prev
 * is the last). */
/* A container's source, kept in the two fields cJSON leaves unused on
 * containers (fm_json_source reads them). */
static void fast_span(fast *f, cJSON *c, const char *open) {
  if (f->p - f->text > INT_MAX) return;
  c->valueint = (int)(open - f->text);
  c->valuedouble = (double)(f->p - open);
}

static cJSON *fast_container(fast *f, int depth, bool object) {
  const char *open = f->p;
  cJSON *c = fast_node(f, object ? cJSON_Object : cJSON_Array);
  if (!c) return NULL;
  if (depth >= FAST_DEPTH) {
    f->gave_up = true;
    return c;
  }
  f->p++;
  fast_ws(f);
  if (f->p < f->end && *f->p == (object ? '}' : ']')) {
    f->p++;
    fast_span(f, c, open);
    return c;
  }
  cJSON *last = NULL;
  for (;;) {
    char *key = NULL;
    if (object) {
      if (f->p >= f->end || *f->p != '"' || !(key = fast_string(f))) {
        f->gave_up = true;
        return c;
      }
      fast_ws(f);
      if (f->p >= f->end || *f->p != ':') {
        hook_free(key);
        f->gave_up = true;
        return c;
      }
      f->p++;
      fast_ws(f);
    }
    cJSON *v = fast_value(f, depth + 1);
    if (!v) {
      hook_free(key);
      f->gave_up = true;
      return c;
    }
    v->string = key;
    if (last) {
      last->next = v;
      v->prev = last;
    } else {
      c->child = v;
    }
    last = v;
    c->child->prev = last;
    if (f->gave_up) return c;
    fast_ws(f);
    if (f->p < f->end && *f->p == ',') {
      f->p++;
      fast_ws(f);
      continue;
    }
    if (f->p < f->end && *f->p == (object ? '}' : ']')) {
      f->p++;
      fast_span(f, c, open);
      return c;
    }
    f->gave_up = true;
    return c;
  }
}

static cJSON *fast_value(fast *f, int depth) {
  if (f->p >= f->end) {
    f->gave_up = true;
    return NULL;
  }
  cJSON *n = NULL;
  switch (*f->p) {
  case '{':
  case '[':
    return fast_container(f, depth, *f->p == '{');
  case '"': {
    char *s = fast_string(f);
    if (!s) return NULL;
    if (!(n = fast_node(f, cJSON_String))) {
      hook_free(s);
      return NULL;
    }
    n->valuestring = s;
    return n;
  }
  case 't':
    if (!fast_word(f, "true", 4)) break;
    if ((n = fast_node(f, cJSON_True))) n->valueint = 1;
    return n;
  case 'f':
    if (!fast_word(f, "false", 5)) break;
    return fast_node(f, cJSON_False);
  case 'n':
    if (!fast_word(f, "null", 4)) break;
    return fast_node(f, cJSON_NULL);
  default:
    if ((n = fast_node(f, cJSON_Number))) fast_number(f, n);
    return n;
  }
  f->gave_up = true;
  return NULL;
}

cJSON *fm_json_parse_fast(const char *text, size_t len, const char **end) {
  fast f = {.text = text, .p = text, .end = text + len};
  fast_ws(&f);
  cJSON *root = fast_value(&f, 0);
  /* A lone scalar is cJSON's: its looser numbers and words would read on
   * where this stops (every reader refuses it anyway). */
  if (f.gave_up || !root || !(root->type & (cJSON_Object | cJSON_Array))) {
    cJSON_Delete(root);
    return NULL;
  }
  if (end) *end = f.p;
  return root;
}

cJSON *fm_json_parse_scratch(const char *text, size_t len, const char **end) {
  if (tl.live == 0) {
    if (tl.used == 0) POISON(tl.mem, FM_JSONMEM_ARENA);
    tl.drawing = true;
  }
  cJSON *root = fm_json_parse_fast(text, len, end);
  if (!root) root = cJSON_ParseWithLengthOpts(text, len, end, false);
  tl.drawing = false;
  return root;
}

bool fm_jsonmem_idle(void) {
  return tl.live == 0;
}

unsigned long long fm_jsonmem_drawn(void) {
  return tl.drawn;
}

bool fm_json_source(const cJSON *v, const char *text, size_t len, const char **at, size_t *n) {
  if (!v || !(v->type & (cJSON_Object | cJSON_Array)) || !(v->valuedouble > 0) || v->valueint < 0 ||
      v->valuedouble > (double)len || (size_t)v->valueint > len - (size_t)v->valuedouble)
    return false;
  const char *a = text + v->valueint;
  size_t k = (size_t)v->valuedouble;
  char open = (v->type & cJSON_Object) ? '{' : '[', close = open == '{' ? '}' : ']';
  if (k < 2 || a[0] != open || a[k - 1] != close) return false;
  *at = a;
  *n = k;
  return true;
}
