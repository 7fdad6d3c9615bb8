/* schema.c — JSON Schema check, generation and validation (see schema.h).
 *
 * Three parts share one view of a schema:
 *
 *  - The pattern subset (re_*): a parser into a small tree, a backtracking
 *    matcher with a step budget (for validation), and a random walk of the
 *    tree (for generation).
 *  - The check walk (ck_*): every subschema, with its path, for the keyword
 *    forms and the contradictions one node can show (minimum > maximum, an
 *    enum no value of which fits, ...). It registers every node in a table
 *    that then holds each node's "height": the least value nesting its
 *    required parts need, found by a fixpoint over the $ref graph. A schema
 *    whose height is infinite recurses without end and is refused; the
 *    generator uses heights to pick branches that end. Last, the check
 *    generates FM_SCHEMA_CHECK_SEEDS values and validates them, which catches
 *    what the static rules miss (allOf conflicts, overlapping oneOf, not).
 *  - The generator (gen_*) works on a conjunction: the list of subschemas one
 *    value must satisfy (a node, its allOf members, its $ref target, the
 *    anyOf/oneOf branches chosen). Numbers take the tightest bounds, strings
 *    the first format or pattern (checked against the others), objects the
 *    union of properties. When a conjunction merged more than one node, or
 *    holds oneOf or not, the value is validated and retried.
 *  - The validator (val_*) is a plain recursive one with a step budget.
 *
 * Known limits: allOf members' additionalProperties see only their own
 * properties (as the spec says), so allOf [{properties:{a}, additionalProperties:false},
 * {properties:{b}, required:[b]}] is refused as unsatisfiable; patternProperties
 * are validated but never generated; string lengths count code points, the
 * pattern matcher works on bytes for ASCII and treats any other code point
 * as one character that only "." and negated classes match. */
#include "schema.h"

#include "jsonscan.h"
#include "memo.h"
#include "rng.h"
#include "textgen.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H_INF 1000 /* height of a schema no finite value satisfies */

/* ---------------------------------------------------------------- errors */

typedef struct spath {
  char s[sizeof(((fm_schema_err *)0)->path)];
  size_t len;
} spath;

/* Appends what fits of s[0..n) (the path is cut, never overrun). */
static void path_cat(spath *p, const char *s, size_t n) {
  size_t room = sizeof(p->s) - 1 - p->len;
  if (n > room) n = room;
  memcpy(p->s + p->len, s, n);
  p->len += n;
  p->s[p->len] = 0;
}

static void path_set(spath *p, const char *s) {
  p->len = 0;
  p->s[0] = 0;
  if (s) path_cat(p, s, strlen(s));
}

/* Appends ".key" (or "[i]" when key is NULL) and returns the old length for
 * path_pop. Generation pushes a step per value, so no printf here. */
static size_t path_push(spath *p, const char *key, int index) {
  size_t old = p->len;
  if (key) {
    if (p->len) path_cat(p, ".", 1);
    path_cat(p, key, strlen(key));
  } else {
    char num[16];
    size_t n = sizeof(num);
    unsigned v = index < 0 ? 0u : (unsigned)index;
    num[--n] = ']';
    do
      num[--n] = (char)('0' + v % 10);
    while ((v /= 10) && n > 1);
    num[--n] = '[';
    path_cat(p, num + n, sizeof(num) - n);
  }
  return old;
}

static void path_pop(spath *p, size_t old) {
  p->len = old;
  p->s[old] = 0;
}

static void err_set(fm_schema_err *e, const spath *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_set(fm_schema_err *e, const spath *p, const char *fmt, ...) {
  if (!e) return;
  snprintf(e->path, sizeof(e->path), "%s", p ? p->s : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof(e->message), fmt, ap);
  va_end(ap);
}

/* ---------------------------------------------------------------- UTF-8 */

/* Decodes the code point at s[0..n); *len gets its byte length (1 for a bad byte). */
static uint32_t utf8_at(const char *s, size_t n, size_t *len) {
  const unsigned char *u = (const unsigned char *)s;
  if (u[0] < 0x80 || n < 2) {
    *len = 1;
    return u[0];
  }
  int extra = u[0] >= 0xf0 ? 3 : u[0] >= 0xe0 ? 2 : 1;
  if ((size_t)extra >= n) {
    *len = 1;
    return u[0];
  }
  uint32_t cp = u[0] & (0x3f >> extra);
  for (int i = 1; i <= extra; i++)
    cp = (cp << 6) | (u[i] & 0x3f);
  *len = (size_t)extra + 1;
  return cp;
}

/* Code points, as ajv's ucs2length counts them (a surrogate pair is one). */
static size_t utf8_count(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xc0) != 0x80) n++;
  return n;
}

/* ---------------------------------------------------------------- patterns */

#define RE_NODES 256
#define RE_INF 0xffff
#define RE_MAX_REPEAT 1000
#define RE_MAX_INPUT 4096
#define RE_MAX_NEST 16

enum { RE_CLASS, RE_SEQ, RE_ALT, RE_REP, RE_BOL, RE_EOL };

typedef struct re_node {
  uint8_t kind;
  bool any;      /* ".": any code point but line terminators */
  bool nonascii; /* the class matches code points >= 128 (negated classes) */
  uint16_t min, max;
  int16_t child, next; /* first child, next sibling; -1 for none */
  uint8_t bits[16];    /* ASCII members */
} re_node;

typedef struct re_prog {
  re_node n[RE_NODES];
  int count, root;
  const char *src;
  size_t pos, len;
  const char *err; /* NULL when the pattern parsed */
} re_prog;

static bool re_has(const re_node *c, uint32_t cp) {
  if (c->any) return cp != '\n' && cp != '\r' && cp != 0x2028 && cp != 0x2029;
  if (cp >= 128) return c->nonascii;
  return (c->bits[cp >> 3] >> (cp & 7)) & 1;
}

static void re_add(re_node *c, unsigned lo, unsigned hi) {
  for (unsigned x = lo; x <= hi && x < 128; x++)
    c->bits[x >> 3] |= (uint8_t)(1u << (x & 7));
}

static int re_new(re_prog *p, int kind) {
  if (p->count == RE_NODES) {
    p->err = "the pattern is too complex (more than 256 parts)";
    return -1;
  }
  re_node *n = &p->n[p->count];
  memset(n, 0, sizeof(*n));
  n->kind = (uint8_t)kind;
  n->child = n->next = -1;
  return p->count++;
}

/* Adds the class escape \d \w \s (or a complement) to c; false if `e` is not one. */
static bool re_class_escape(re_node *c, char e) {
  re_node t;
  memset(&t, 0, sizeof(t));
  char l = (char)(e | 0x20);
  if (l == 'd') {
    re_add(&t, '0', '9');
  } else if (l == 'w') {
    re_add(&t, 'a', 'z');
    re_add(&t, 'A', 'Z');
    re_add(&t, '0', '9');
    re_add(&t, '_', '_');
  } else if (l == 's') {
    re_add(&t, ' ', ' ');
    re_add(&t, '\t', '\r'); /* \t \n \v \f \r */
  } else {
    return false;
  }
  bool neg = e != l;
  for (int i = 0; i < 16; i++)
    c->bits[i] |= neg ? (uint8_t)~t.bits[i] : t.bits[i];
  if (neg) c->nonascii = true;
  return true;
}

/* One escaped character (after the backslash) as a code point, or -1 with p->err set. */
static int re_escape_char(re_prog *p, bool in_class) {
  char c = p->src[p->pos++];
  switch (c) {
  case 'n':
    return '\n';
  case 't':
    return '\t';
  case 'r':
    return '\r';
  case 'f':
    return '\f';
  case 'v':
    return '\v';
  case 'x':
  case 'u': {
    int digits = c == 'x' ? 2 : 4;
    int v = p->pos + (size_t)digits <= p->len ? fm_hex_digits(p->src + p->pos, digits) : -1;
    if (v < 0) {
      p->err = "a \\x or \\u escape needs hex digits";
      return -1;
    }
    if (v >= 128) {
      p->err = "non-ASCII characters in patterns are not supported";
      return -1;
    }
    p->pos += (size_t)digits;
    return v;
  }
  case 'b':
    if (in_class) return '\b';
    p->err = "\\b and \\B (word boundaries) are not supported";
    return -1;
  case 'B':
    p->err = "\\b and \\B (word boundaries) are not supported";
    return -1;
  case 'p':
  case 'P':
    p->err = "Unicode property escapes \\p{...} are not supported";
    return -1;
  case 'k':
    p->err = "named backreferences are not supported";
    return -1;
  default:
    if (c >= '1' && c <= '9') {
      p->err = "backreferences (\\1...) are not supported";
      return -1;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '0' || (unsigned char)c >= 128) {
      p->err = "unknown escape in pattern";
      return -1;
    }
    return (unsigned char)c; /* \. \\ \/ \- \( ... */
  }
}

static int re_class(re_prog *p) {
  int id = re_new(p, RE_CLASS);
  if (id < 0) return -1;
  re_node *c = &p->n[id];
  bool neg = false;
  if (p->pos < p->len && p->src[p->pos] == '^') {
    neg = true;
    p->pos++;
  }
  bool any = false;
  while (p->pos < p->len && p->src[p->pos] != ']') {
    int lo;
    if (p->src[p->pos] == '\\') {
      p->pos++;
      if (p->pos >= p->len) break;
      if (re_class_escape(c, p->src[p->pos])) {
        p->pos++;
        any = true;
        continue;
      }
      lo = re_escape_char(p, true);
      if (lo < 0) return -1;
    } else {
      lo = (unsigned char)p->src[p->pos++];
      if (lo >= 128) {
        p->err = "non-ASCII characters in patterns are not supported";
        return -1;
      }
    }
    int hi = lo;
    if (p->pos + 1 < p->len && p->src[p->pos] == '-' && p->src[p->pos + 1] != ']') {
      p->pos++;
      if (p->src[p->pos] == '\\') {
        p->pos++;
        if (p->pos >= p->len) break;
        hi = re_escape_char(p, true);
        if (hi < 0) return -1;
      } else {
        hi = (unsigned char)p->src[p->pos++];
      }
      if (hi >= 128 || hi < lo) {
        p->err = "a character class range is out of order or not ASCII";
        return -1;
      }
    }
    re_add(c, (unsigned)lo, (unsigned)hi);
    any = true;
  }
  if (p->pos >= p->len) {
    p->err = "a character class is not closed with ]";
    return -1;
  }
  p->pos++;
  if (neg) {
    for (int i = 0; i < 16; i++)
      c->bits[i] = (uint8_t)~c->bits[i];
    c->nonascii = !c->nonascii;
  } else if (!any) {
    p->err = "an empty character class [] matches nothing";
    return -1;
  }
  return id;
}

static int re_alt(re_prog *p, int depth);

static int re_atom(re_prog *p, int depth) {
  char c = p->src[p->pos];
  if (c == '(') {
    p->pos++;
    if (p->pos < p->len && p->src[p->pos] == '?') {
      if (p->pos + 1 < p->len && p->src[p->pos + 1] == ':') {
        p->pos += 2;
      } else {
        p->err = "lookarounds (?=...) (?!...) and named groups (?<name>...) are not supported";
        return -1;
      }
    }
    int inner = re_alt(p, depth + 1);
    if (inner < 0) return -1;
    if (p->pos >= p->len || p->src[p->pos] != ')') {
      p->err = "a group is not closed with )";
      return -1;
    }
    p->pos++;
    return inner;
  }
  if (c == '[') {
    p->pos++;
    return re_class(p);
  }
  if (c == '^' || c == '$') {
    p->pos++;
    return re_new(p, c == '^' ? RE_BOL : RE_EOL);
  }
  if (c == '*' || c == '+' || c == '?' || c == '{' || c == '}' || c == ']') {
    p->err = "a quantifier or bracket has nothing to apply to (escape it with \\)";
    return -1;
  }
  int id = re_new(p, RE_CLASS);
  if (id < 0) return -1;
  re_node *n = &p->n[id];
  p->pos++;
  if (c == '.') {
    n->any = true;
    return id;
  }
  if (c == '\\') {
    if (p->pos >= p->len) {
      p->err = "the pattern ends with a lone backslash";
      return -1;
    }
    if (re_class_escape(n, p->src[p->pos])) {
      p->pos++;
      return id;
    }
    int v = re_escape_char(p, false);
    if (v < 0) return -1;
    re_add(n, (unsigned)v, (unsigned)v);
    return id;
  }
  if ((unsigned char)c >= 128) {
    p->err = "non-ASCII characters in patterns are not supported";
    return -1;
  }
  re_add(n, (unsigned char)c, (unsigned char)c);
  return id;
}

static bool re_number(re_prog *p, unsigned *v) {
  size_t start = p->pos;
  unsigned x = 0;
  while (p->pos < p->len && p->src[p->pos] >= '0' && p->src[p->pos] <= '9') {
    if (x <= RE_MAX_REPEAT) x = x * 10 + (unsigned)(p->src[p->pos] - '0');
    p->pos++;
  }
  *v = x;
  return p->pos > start;
}

/* Wraps atom `a` in a repeat when a quantifier follows. */
static int re_quant(re_prog *p, int a) {
  if (p->pos >= p->len) return a;
  char c = p->src[p->pos];
  unsigned min, max;
  if (c == '*' || c == '+' || c == '?') {
    p->pos++;
    min = c == '+' ? 1 : 0;
    max = c == '?' ? 1 : RE_INF;
  } else if (c == '{') {
    p->pos++;
    if (!re_number(p, &min)) goto malformed;
    max = min;
    if (p->pos < p->len && p->src[p->pos] == ',') {
      p->pos++;
      if (!re_number(p, &max)) max = RE_INF;
    }
    if (p->pos >= p->len || p->src[p->pos] != '}') goto malformed;
    p->pos++;
    if (min > RE_MAX_REPEAT || (max != RE_INF && max > RE_MAX_REPEAT)) {
      p->err = "a repeat count above 1000 is not supported";
      return -1;
    }
    if (min > max) {
      p->err = "a repeat {m,n} has m > n";
      return -1;
    }
  } else {
    return a;
  }
  if (p->pos < p->len && p->src[p->pos] == '?') p->pos++; /* lazy: same language */
  if (p->n[a].kind == RE_BOL || p->n[a].kind == RE_EOL) {
    p->err = "an anchor cannot be repeated";
    return -1;
  }
  int r = re_new(p, RE_REP);
  if (r < 0) return -1;
  p->n[r].child = (int16_t)a;
  p->n[r].min = (uint16_t)min;
  p->n[r].max = (uint16_t)max;
  if (p->pos < p->len && strchr("*+?{", p->src[p->pos])) {
    p->err = "a quantifier follows a quantifier";
    return -1;
  }
  return r;
malformed:
  p->err = "a { in a pattern must be a repeat {m}, {m,} or {m,n} (escape a literal one as \\{)";
  return -1;
}

static int re_seq(re_prog *p, int depth) {
  int seq = re_new(p, RE_SEQ), last = -1;
  if (seq < 0) return -1;
  while (p->pos < p->len && p->src[p->pos] != '|' && p->src[p->pos] != ')') {
    int a = re_atom(p, depth);
    if (a < 0) return -1;
    a = re_quant(p, a);
    if (a < 0) return -1;
    if (last < 0)
      p->n[seq].child = (int16_t)a;
    else
      p->n[last].next = (int16_t)a;
    last = a;
  }
  return seq;
}

static int re_alt(re_prog *p, int depth) {
  if (depth > RE_MAX_NEST) {
    p->err = "groups nested more than 16 deep are not supported";
    return -1;
  }
  int first = re_seq(p, depth);
  if (first < 0 || p->pos >= p->len || p->src[p->pos] != '|') return first;
  int alt = re_new(p, RE_ALT);
  if (alt < 0) return -1;
  p->n[alt].child = (int16_t)first;
  int last = first;
  while (p->pos < p->len && p->src[p->pos] == '|') {
    p->pos++;
    int s = re_seq(p, depth);
    if (s < 0) return -1;
    p->n[last].next = (int16_t)s;
    last = s;
  }
  return alt;
}

static bool re_compile(re_prog *p, const char *src) {
  p->count = 0;
  p->src = src;
  p->len = strlen(src);
  p->pos = 0;
  p->err = NULL;
  if (p->len > FM_SCHEMA_MAX_PATTERN) {
    p->err = "the pattern is longer than 512 bytes";
    return false;
  }
  p->root = re_alt(p, 0);
  if (p->root >= 0 && p->pos < p->len) p->err = "unbalanced ) in pattern";
  return p->root >= 0 && !p->err;
}

/* Matching: backtracking with continuations on the C stack. */
typedef struct re_k {
  int node, idx; /* SEQ: the next child (-1: done); REP: repetitions done */
  size_t start;  /* REP: where the last repetition began */
  const struct re_k *up;
} re_k;

typedef struct re_m {
  const re_prog *p;
  const char *s;
  size_t n;
  long budget;
} re_m;

static bool re_run(re_m *m, int id, size_t pos, const re_k *k, int depth);
static bool re_cont(re_m *m, size_t pos, const re_k *k, int depth);

static bool re_rep(re_m *m, int id, int count, size_t start, size_t pos, const re_k *up,
                   int depth) {
  const re_node *nd = &m->p->n[id];
  if (count > nd->min && pos == start) return false; /* an empty repetition past min: no progress */
  if (count < nd->max) {
    re_k k2 = {id, count + 1, pos, up};
    if (re_run(m, nd->child, pos, &k2, depth + 1)) return true;
  }
  return count >= nd->min && re_cont(m, pos, up, depth + 1);
}

/* Goes on with what k says follows. */
static bool re_cont(re_m *m, size_t pos, const re_k *k, int depth) {
  if (!k) return true;
  const re_node *nd = &m->p->n[k->node];
  if (nd->kind == RE_SEQ) {
    if (k->idx < 0) return re_cont(m, pos, k->up, depth + 1);
    re_k k2 = {k->node, m->p->n[k->idx].next, 0, k->up};
    return re_run(m, k->idx, pos, &k2, depth + 1);
  }
  return re_rep(m, k->node, k->idx, k->start, pos, k->up, depth + 1);
}

static bool re_run(re_m *m, int id, size_t pos, const re_k *k, int depth) {
  if (--m->budget < 0 || depth > 30000) {
    m->budget = -1;
    return false;
  }
  const re_node *nd = &m->p->n[id];
  switch (nd->kind) {
  case RE_CLASS: {
    if (pos >= m->n) return false;
    size_t l;
    uint32_t cp = utf8_at(m->s + pos, m->n - pos, &l);
    return re_has(nd, cp) && re_cont(m, pos + l, k, depth);
  }
  case RE_SEQ: {
    if (nd->child < 0) return re_cont(m, pos, k, depth);
    re_k k2 = {id, m->p->n[nd->child].next, 0, k};
    return re_run(m, nd->child, pos, &k2, depth + 1);
  }
  case RE_ALT:
    for (int c = nd->child; c >= 0; c = m->p->n[c].next)
      if (re_run(m, c, pos, k, depth + 1)) return true;
    return false;
  case RE_REP:
    return re_rep(m, id, 0, (size_t)-1, pos, k, depth);
  case RE_BOL:
    return pos == 0 && re_cont(m, pos, k, depth);
  default:
    return pos == m->n && re_cont(m, pos, k, depth);
  }
}

/* RegExp.prototype.test: a match anywhere. False also when the budget runs out. */
static bool re_search(const re_prog *p, const char *s, size_t n, bool *gave_up) {
  re_m m = {p, s, n, FM_SCHEMA_MAX_STEPS};
  *gave_up = n > RE_MAX_INPUT;
  if (*gave_up) return false;
  for (size_t at = 0; at <= n; at++) {
    if (re_run(&m, p->root, at, NULL, 0)) return true;
    if (m.budget < 0) {
      *gave_up = true;
      return false;
    }
  }
  return false;
}

/* The shortest string the node matches, in bytes (capped). */
static size_t re_minlen(const re_prog *p, int id) {
  const re_node *nd = &p->n[id];
  size_t t = 0;
  switch (nd->kind) {
  case RE_CLASS:
    return 1;
  case RE_SEQ:
    for (int c = nd->child; c >= 0; c = p->n[c].next)
      t += re_minlen(p, c);
    return t > 1u << 20 ? 1u << 20 : t;
  case RE_ALT:
    t = (size_t)-1;
    for (int c = nd->child; c >= 0; c = p->n[c].next) {
      size_t x = re_minlen(p, c);
      if (x < t) t = x;
    }
    return t;
  case RE_REP:
    t = nd->min * re_minlen(p, nd->child);
    return t > 1u << 20 ? 1u << 20 : t;
  default:
    return 0;
  }
}

/* The one length every match of the node has, or -1. */
static long re_fixed(const re_prog *p, int id) {
  const re_node *nd = &p->n[id];
  long t = 0, x;
  switch (nd->kind) {
  case RE_CLASS:
    return nd->any || nd->nonascii ? -1 : 1;
  case RE_SEQ:
    for (int c = nd->child; c >= 0; c = p->n[c].next) {
      if ((x = re_fixed(p, c)) < 0) return -1;
      t += x;
    }
    return t;
  case RE_ALT:
    t = -2;
    for (int c = nd->child; c >= 0; c = p->n[c].next) {
      x = re_fixed(p, c);
      if (x < 0 || (t != -2 && x != t)) return -1;
      t = x;
    }
    return t;
  case RE_REP:
    if (nd->min != nd->max) return -1;
    x = re_fixed(p, nd->child);
    return x < 0 ? -1 : x * nd->min;
  default:
    return 0;
  }
}

/* A random string the node matches. With slack (a length target), repeats
 * stay at their minimum except that the first ones with a fixed-length body
 * take up the slack; without, each repeat adds up to 3 more. */
static void re_gen(const re_prog *p, int id, fm_rng *rng, fm_buf *b, bool minimal, long *slack) {
  const re_node *nd = &p->n[id];
  if (b->len > FM_SCHEMA_MAX_STRING * 4) return;
  switch (nd->kind) {
  case RE_CLASS: {
    if (nd->any) {
      fm_buf_putc(b, (char)('a' + fm_rng_below(rng, 26)));
      return;
    }
    char pool[128];
    int np = 0, nl = 0;
    char lower[128];
    for (int c = 0x20; c < 0x7f; c++)
      if (re_has(nd, (uint32_t)c)) {
        pool[np++] = (char)c;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) lower[nl++] = (char)c;
      }
    if (nl > 0 && fm_rng_chance(rng, 0.8)) {
      fm_buf_putc(b, lower[fm_rng_below(rng, (uint64_t)nl)]);
    } else if (np > 0) {
      fm_buf_putc(b, pool[fm_rng_below(rng, (uint64_t)np)]);
    } else {
      for (int c = 1; c < 128; c++)
        if (re_has(nd, (uint32_t)c)) pool[np++] = (char)c;
      if (np > 0)
        fm_buf_putc(b, pool[fm_rng_below(rng, (uint64_t)np)]);
      else
        fm_buf_puts(b, "\xc3\xa9"); /* U+00E9: the class only holds non-ASCII */
    }
    return;
  }
  case RE_SEQ:
    for (int c = nd->child; c >= 0; c = p->n[c].next)
      re_gen(p, c, rng, b, minimal, slack);
    return;
  case RE_ALT: {
    int n = 0;
    for (int c = nd->child; c >= 0; c = p->n[c].next)
      n++;
    int pick = (int)fm_rng_below(rng, (uint64_t)n);
    for (int c = nd->child; c >= 0; c = p->n[c].next)
      if (pick-- == 0) re_gen(p, c, rng, b, minimal, slack);
    return;
  }
  case RE_REP: {
    unsigned hi = nd->max == RE_INF ? nd->min + 3u : nd->max;
    if (hi > nd->min + 3u) hi = nd->min + 3u;
    unsigned count = minimal ? nd->min : nd->min + (unsigned)fm_rng_below(rng, hi - nd->min + 1);
    if (slack) {
      long l = re_fixed(p, nd->child);
      long add = l > 0 ? *slack / l : 0,
           room = nd->max == RE_INF ? RE_MAX_REPEAT : nd->max - nd->min;
      if (add > room) add = room;
      count = nd->min + (unsigned)add;
      *slack -= add * (l > 0 ? l : 0);
    }
    for (unsigned i = 0; i < count; i++)
      re_gen(p, nd->child, rng, b, minimal, slack);
    return;
  }
  default:
    return;
  }
}

/* ---------------------------------------------------------------- schema nodes */

enum { T_NULL = 1, T_BOOL = 2, T_INT = 4, T_FRAC = 8, T_STR = 16, T_ARR = 32, T_OBJ = 64 };
#define T_NUM (T_INT | T_FRAC)
#define T_ALL 127
#define T_SCALAR (T_NULL | T_BOOL | T_NUM | T_STR)

/* A compiled schema's object nodes carry, in cJSON's valueint (unused for
 * objects), a filter of the keys they hold: bit key_bit(k) for each key k,
 * and KEYS_FILTERED. kw() answers "absent" from it without walking the keys,
 * which is most lookups (a node holds a few of the keywords asked about). */
#define KEYS_FILTERED (1 << 30)

static int key_bit(const char *k) {
  unsigned a = (unsigned char)k[0], b = a ? (unsigned char)k[1] : 0;
  return 1 << ((a * 31u + b) % 30u);
}

static const cJSON *kw(const cJSON *node, const char *name) {
  if (!node || (node->type & 0xff) != cJSON_Object) return NULL;
  if ((node->valueint & KEYS_FILTERED) && !(node->valueint & key_bit(name))) return NULL;
  /* cJSON_GetObjectItemCaseSensitive's walk, the first byte compared before the rest */
  for (const cJSON *c = node->child; c; c = c->next)
    if (c->string && c->string[0] == name[0] && strcmp(c->string, name) == 0) return c;
  return NULL;
}

/* Sets the key filter on every object node of a tree we own. */
static void keys_filter(cJSON *n, int depth) {
  for (; n; n = n->next) {
    if (cJSON_IsObject(n)) {
      int f = KEYS_FILTERED;
      for (const cJSON *c = n->child; c; c = c->next)
        if (c->string) f |= key_bit(c->string);
      n->valueint = f;
    }
    if (n->child && depth < 4096) keys_filter(n->child, depth + 1);
    if (depth == 0) break;
  }
}

static int type_bits(const char *name) {
  static const struct {
    const char *name;
    int bits;
  } t[] = {{"null", T_NULL},  {"boolean", T_BOOL}, {"integer", T_INT}, {"number", T_NUM},
           {"string", T_STR}, {"array", T_ARR},    {"object", T_OBJ}};
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    if (strcmp(name, t[i].name) == 0) return t[i].bits;
  return 0;
}

/* The "type" keyword as a mask, or -1 when there is none. */
static int explicit_types(const cJSON *node) {
  const cJSON *t = kw(node, "type");
  if (cJSON_IsString(t)) return type_bits(t->valuestring);
  if (!cJSON_IsArray(t)) return -1;
  int m = 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, t) if (cJSON_IsString(x)) m |= type_bits(x->valuestring);
  return m;
}

static bool has_any(const cJSON *node, const char *const *names) {
  for (; *names; names++)
    if (kw(node, *names)) return true;
  return false;
}

/* The types the generator picks from: "type" when given, else what the keywords imply. */
static int node_types(const cJSON *node) {
  int t = explicit_types(node);
  if (t >= 0) return t;
  static const char *const obj[] = {"properties", "required", "additionalProperties",
                                    "propertyNames", NULL};
  static const char *const arr[] = {"items",       "prefixItems",     "minItems", "maxItems",
                                    "uniqueItems", "additionalItems", NULL};
  static const char *const str[] = {"minLength", "maxLength", "pattern", "format", NULL};
  static const char *const num[] = {"minimum",          "maximum",    "exclusiveMinimum",
                                    "exclusiveMaximum", "multipleOf", NULL};
  int m = (has_any(node, obj) ? T_OBJ : 0) | (has_any(node, arr) ? T_ARR : 0) |
          (has_any(node, str) ? T_STR : 0) | (has_any(node, num) ? T_NUM : 0);
  return m ? m : T_ALL;
}

static bool is_annotation(const char *k) {
  static const char *const a[] = {"title",    "description", "default",  "examples",
                                  "$schema",  "$id",         "$comment", "deprecated",
                                  "readOnly", "writeOnly",   "$anchor",  NULL};
  for (int i = 0; a[i]; i++)
    if (strcmp(k, a[i]) == 0) return true;
  return false;
}

/* Resolves a local $ref: "#" or a JSON pointer that walks only through
 * subschema positions ($defs/X, definitions/X, properties/X, items, anyOf/N, ...). */
static const cJSON *ref_resolve(const cJSON *root, const char *ref) {
  if (!ref || ref[0] != '#') return NULL;
  const char *s = ref + 1;
  const cJSON *cur = root;
  enum { AT_SCHEMA, AT_MAP, AT_LIST } at = AT_SCHEMA;
  while (*s == '/') {
    s++;
    char seg[128];
    size_t n = 0;
    while (*s && *s != '/') {
      char c = *s++;
      if (c == '~' && (*s == '0' || *s == '1')) {
        c = *s == '0' ? '~' : '/';
        s++;
      } else if (c == '%' && s[0] && s[1] && fm_hex_digits(s, 2) >= 0) {
        c = (char)fm_hex_digits(s, 2);
        s += 2;
      }
      if (n == sizeof(seg) - 1) return NULL;
      seg[n++] = c;
    }
    seg[n] = 0;
    const cJSON *next;
    if (at == AT_LIST) {
      char *end;
      long i = strtol(seg, &end, 10);
      if (!cJSON_IsArray(cur) || *end || n == 0 || i < 0) return NULL;
      next = cJSON_GetArrayItem(cur, (int)i);
    } else {
      if (!cJSON_IsObject(cur)) return NULL;
      next = cJSON_GetObjectItemCaseSensitive(cur, seg);
    }
    if (!next) return NULL;
    if (at != AT_SCHEMA) {
      at = AT_SCHEMA;
    } else if (!strcmp(seg, "properties") || !strcmp(seg, "$defs") || !strcmp(seg, "definitions") ||
               !strcmp(seg, "patternProperties")) {
      at = AT_MAP;
    } else if (!strcmp(seg, "allOf") || !strcmp(seg, "anyOf") || !strcmp(seg, "oneOf") ||
               !strcmp(seg, "prefixItems") || (!strcmp(seg, "items") && cJSON_IsArray(next))) {
      at = AT_LIST;
    } else if (strcmp(seg, "items") && strcmp(seg, "additionalProperties") &&
               strcmp(seg, "propertyNames") && strcmp(seg, "not") &&
               strcmp(seg, "additionalItems")) {
      return NULL;
    }
    cur = next;
  }
  if (*s || at != AT_SCHEMA) return NULL;
  return cur;
}

/* The schema for property `name` of an object under node (NULL: anything). */
static const cJSON *prop_schema(const cJSON *node, const char *name, bool *listed) {
  const cJSON *props = kw(node, "properties");
  const cJSON *p = cJSON_IsObject(props) ? cJSON_GetObjectItemCaseSensitive(props, name) : NULL;
  if (listed) *listed = p != NULL;
  return p ? p : kw(node, "additionalProperties");
}

/* A tuple (prefixItems, or a draft-7 items array) and the schema of the items after it. */
static const cJSON *tuple_of(const cJSON *node, const cJSON **rest) {
  const cJSON *prefix = kw(node, "prefixItems"), *items = kw(node, "items");
  if (cJSON_IsArray(prefix)) {
    *rest = items;
    return prefix;
  }
  if (cJSON_IsArray(items)) {
    *rest = kw(node, "additionalItems");
    return items;
  }
  *rest = items;
  return NULL;
}

static const cJSON *item_schema(const cJSON *node, int i) {
  const cJSON *rest, *tuple = tuple_of(node, &rest);
  if (tuple && i < cJSON_GetArraySize(tuple)) return cJSON_GetArrayItem(tuple, i);
  return rest;
}

static long num_kw(const cJSON *node, const char *name, long dflt) {
  const cJSON *v = kw(node, name);
  return cJSON_IsNumber(v) ? (long)v->valuedouble : dflt;
}

/* ---------------------------------------------------------------- the node table */

#define NTAB_CAP 8192 /* the most slots: a power of two above 2 * FM_SCHEMA_MAX_NODES */

struct plain;

typedef struct ntab {
  const cJSON **key;
  int16_t *h;
  const cJSON **order; /* registration order, for the fixpoint */
  size_t n;
  size_t cap;        /* slots: a power of two above twice the subschemas it can hold */
  size_t max;        /* entries order[] holds */
  struct plain **pl; /* a compiled schema's: its plain subschemas, by slot (see plain_index) */
} ntab;

/* JSON nodes in the tree, counted up to `most`: a bound on its subschemas. */
static size_t count_nodes(const cJSON *n, size_t most) {
  size_t c = 0;
  for (; n && c < most; n = n->next)
    c += 1 + (n->child ? count_nodes(n->child, most - c) : 0);
  return c;
}

/* A table sized to the schema (a tool's parameters are a few dozen nodes;
 * zeroing the full 8192 slots cost more than the generation itself). */
static bool ntab_init(ntab *t, const cJSON *schema) {
  size_t nodes = schema ? count_nodes(schema->child, FM_SCHEMA_MAX_NODES) + 1 : FM_SCHEMA_MAX_NODES;
  if (nodes > FM_SCHEMA_MAX_NODES) nodes = FM_SCHEMA_MAX_NODES;
  t->cap = 16;
  while (t->cap < 2 * nodes + 2 && t->cap < NTAB_CAP)
    t->cap *= 2;
  t->key = calloc(t->cap, sizeof(*t->key));
  t->h = calloc(t->cap, sizeof(*t->h));
  t->order = calloc(nodes, sizeof(*t->order));
  t->max = nodes;
  t->n = 0;
  t->pl = NULL;
  return t->key && t->h && t->order;
}

static void plain_free(ntab *t);

static void ntab_free(ntab *t) {
  plain_free(t);
  free(t->key);
  free(t->h);
  free(t->order);
}

static size_t ntab_slot(const ntab *t, const cJSON *node) {
  size_t i = (size_t)(((uintptr_t)node >> 4) * 0x9E3779B97F4A7C15ULL >> 40) & (t->cap - 1);
  while (t->key[i] && t->key[i] != node)
    i = (i + 1) & (t->cap - 1);
  return i;
}

/* Registers node; false when it was there already. */
static bool ntab_add(ntab *t, const cJSON *node) {
  size_t i = ntab_slot(t, node);
  if (t->key[i]) return false;
  t->key[i] = node;
  t->h[i] = H_INF;
  t->order[t->n++] = node;
  return true;
}

/* The height of a subschema: the least nesting of a value under it. */
static int height(const ntab *t, const cJSON *node) {
  if (!node || cJSON_IsTrue(node)) return 0;
  if (!cJSON_IsObject(node)) return H_INF;
  size_t i = ntab_slot(t, node);
  return t->key[i] ? t->h[i] : 0;
}

static int imax(int a, int b) {
  return a > b ? a : b;
}

static int height_calc(const ntab *t, const cJSON *root, const cJSON *node) {
  if (kw(node, "const") || kw(node, "enum")) return 0;
  int types = node_types(node), own = H_INF;
  if (types & T_SCALAR) own = 0;
  if (types & T_OBJ) {
    int o = 1;
    const cJSON *req = kw(node, "required"), *r;
    cJSON_ArrayForEach(r, req) {
      if (cJSON_IsString(r)) o = imax(o, 1 + height(t, prop_schema(node, r->valuestring, NULL)));
    }
    if (o < own) own = o;
  }
  if (types & T_ARR) {
    int a = 1;
    long m = num_kw(node, "minItems", 0);
    if (m > FM_SCHEMA_MAX_ITEMS) m = FM_SCHEMA_MAX_ITEMS;
    const cJSON *rest, *tuple = tuple_of(node, &rest);
    int nt = tuple ? cJSON_GetArraySize(tuple) : 0;
    for (long i = 0; i < m && i <= nt; i++)
      a = imax(a, 1 + height(t, item_schema(node, (int)i)));
    if (a < own) own = a;
  }
  int h = own;
  const cJSON *ref = kw(node, "$ref");
  if (ref)
    h = imax(h, cJSON_IsString(ref) ? height(t, ref_resolve(root, ref->valuestring)) : H_INF);
  const cJSON *x;
  cJSON_ArrayForEach(x, kw(node, "allOf")) h = imax(h, height(t, x));
  const char *alts[] = {"anyOf", "oneOf"};
  for (int k = 0; k < 2; k++) {
    const cJSON *list = kw(node, alts[k]);
    if (!cJSON_IsArray(list)) continue;
    int best = H_INF;
    cJSON_ArrayForEach(x, list) {
      int hx = height(t, x);
      if (hx < best) best = hx;
    }
    h = imax(h, best);
  }
  return h >= H_INF ? H_INF : h;
}

/* Heights start infinite and only go down, so the fixpoint reached is the
 * greatest one: a node stays infinite unless a finite value exists. Stopping
 * early (the pass cap) leaves heights too high, which refuses more, never less. */
static void heights_solve(ntab *t, const cJSON *root) {
  for (int pass = 0; pass < 4 * FM_SCHEMA_MAX_DEPTH; pass++) {
    bool changed = false;
    for (size_t k = 0; k < t->n; k++) {
      size_t i = ntab_slot(t, t->order[k]);
      int h = height_calc(t, root, t->order[k]);
      if (h < t->h[i]) {
        t->h[i] = (int16_t)h;
        changed = true;
      }
    }
    if (!changed) return;
  }
}

/* ---------------------------------------------------------------- the validator */

typedef struct vctx {
  const cJSON *root;
  fm_schema_err *e;
  spath path;
  long steps;
  int quiet; /* > 0 inside anyOf/oneOf/not: failures are expected, not reported */
} vctx;

static bool vfail(vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool vfail(vctx *v, const char *fmt, ...) {
  if (v->quiet || !v->e) return false;
  snprintf(v->e->path, sizeof(v->e->path), "%s", v->path.s);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->e->message, sizeof(v->e->message), fmt, ap);
  va_end(ap);
  return false;
}

static bool fmt_valid(const char *fmt, const char *s);
static bool fmt_known(const char *fmt);

static bool val_node(vctx *v, const cJSON *node, const cJSON *x, int depth);

static int value_type(const cJSON *x) {
  if (cJSON_IsNull(x)) return T_NULL;
  if (cJSON_IsBool(x)) return T_BOOL;
  if (cJSON_IsNumber(x))
    return isfinite(x->valuedouble) && x->valuedouble == floor(x->valuedouble) ? T_INT : T_FRAC;
  if (cJSON_IsString(x)) return T_STR;
  if (cJSON_IsArray(x)) return T_ARR;
  return T_OBJ;
}

/* JSON equality as ajv's fast-deep-equal has it (numbers by value, objects by key set). */
static bool json_equal(const cJSON *a, const cJSON *b) {
  if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) return a->valuedouble == b->valuedouble;
  if ((a->type & 0xff) != (b->type & 0xff)) return false;
  if (cJSON_IsString(a)) return strcmp(a->valuestring, b->valuestring) == 0;
  if (cJSON_IsArray(a)) {
    if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) return false;
    for (const cJSON *p = a->child, *q = b->child; p; p = p->next, q = q->next)
      if (!json_equal(p, q)) return false;
    return true;
  }
  if (cJSON_IsObject(a)) {
    if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) return false;
    for (const cJSON *p = a->child; p; p = p->next) {
      const cJSON *q = cJSON_GetObjectItemCaseSensitive(b, p->string);
      if (!q || !json_equal(p, q)) return false;
    }
    return true;
  }
  return true; /* null, true, false */
}

static bool val_pattern(const char *pattern, const char *s, bool *ok) {
  re_prog *p = malloc(sizeof(*p));
  if (!p) return false;
  bool gave_up = false;
  bool compiled = re_compile(p, pattern);
  *ok = compiled && re_search(p, s, strlen(s), &gave_up);
  free(p);
  return compiled && !gave_up;
}

static bool val_number(vctx *v, const cJSON *node, double d) {
  const cJSON *mn = kw(node, "minimum"), *mx = kw(node, "maximum");
  const cJSON *emn = kw(node, "exclusiveMinimum"), *emx = kw(node, "exclusiveMaximum");
  if (cJSON_IsNumber(mn)) {
    bool ex = cJSON_IsTrue(emn);
    if (ex ? !(d > mn->valuedouble) : !(d >= mn->valuedouble))
      return vfail(v, "%.17g is below the minimum %.17g%s", d, mn->valuedouble,
                   ex ? " (exclusive)" : "");
  }
  if (cJSON_IsNumber(mx)) {
    bool ex = cJSON_IsTrue(emx);
    if (ex ? !(d < mx->valuedouble) : !(d <= mx->valuedouble))
      return vfail(v, "%.17g is above the maximum %.17g%s", d, mx->valuedouble,
                   ex ? " (exclusive)" : "");
  }
  if (cJSON_IsNumber(emn) && !(d > emn->valuedouble))
    return vfail(v, "%.17g is not above exclusiveMinimum %.17g", d, emn->valuedouble);
  if (cJSON_IsNumber(emx) && !(d < emx->valuedouble))
    return vfail(v, "%.17g is not below exclusiveMaximum %.17g", d, emx->valuedouble);
  const cJSON *mo = kw(node, "multipleOf");
  if (cJSON_IsNumber(mo) && mo->valuedouble > 0) {
    double q = d / mo->valuedouble; /* ajv: data / multipleOf must be an integer */
    if (!isfinite(q) || q != floor(q))
      return vfail(v, "%.17g is not a multiple of %.17g", d, mo->valuedouble);
  }
  return true;
}

static bool val_string(vctx *v, const cJSON *node, const char *s) {
  long n = (long)utf8_count(s);
  long mn = num_kw(node, "minLength", -1), mx = num_kw(node, "maxLength", -1);
  if (mn >= 0 && n < mn) return vfail(v, "is %ld characters, shorter than minLength %ld", n, mn);
  if (mx >= 0 && n > mx) return vfail(v, "is %ld characters, longer than maxLength %ld", n, mx);
  const cJSON *pat = kw(node, "pattern");
  if (cJSON_IsString(pat)) {
    bool ok;
    if (!val_pattern(pat->valuestring, s, &ok))
      return vfail(v, "pattern %s cannot be checked (unsupported, or too long a string)",
                   pat->valuestring);
    if (!ok) return vfail(v, "does not match the pattern %s", pat->valuestring);
  }
  const cJSON *f = kw(node, "format");
  if (cJSON_IsString(f) && !fmt_valid(f->valuestring, s))
    return vfail(v, "is not a valid %s", f->valuestring);
  return true;
}

static bool val_array(vctx *v, const cJSON *node, const cJSON *x, int depth) {
  int n = cJSON_GetArraySize(x);
  long mn = num_kw(node, "minItems", -1), mx = num_kw(node, "maxItems", -1);
  if (mn >= 0 && n < mn) return vfail(v, "has %d items, fewer than minItems %ld", n, mn);
  if (mx >= 0 && n > mx) return vfail(v, "has %d items, more than maxItems %ld", n, mx);
  int i = 0;
  for (const cJSON *it = x->child; it; it = it->next, i++) {
    const cJSON *s = item_schema(node, i);
    if (!s) continue;
    size_t old = path_push(&v->path, NULL, i);
    bool ok = val_node(v, s, it, depth + 1);
    path_pop(&v->path, old);
    if (!ok) return false;
  }
  if (cJSON_IsTrue(kw(node, "uniqueItems"))) {
    i = 0;
    for (const cJSON *a = x->child; a; a = a->next, i++) {
      int j = i + 1;
      for (const cJSON *b = a->next; b; b = b->next, j++) {
        if (++v->steps > FM_SCHEMA_MAX_STEPS) return vfail(v, "validation took too many steps");
        if (json_equal(a, b)) return vfail(v, "items %d and %d are equal (uniqueItems)", i, j);
      }
    }
  }
  return true;
}

static bool val_object(vctx *v, const cJSON *node, const cJSON *x, int depth) {
  const cJSON *r;
  cJSON_ArrayForEach(r, kw(node, "required")) {
    if (cJSON_IsString(r) && !cJSON_GetObjectItemCaseSensitive(x, r->valuestring))
      return vfail(v, "lacks the required property \"%s\"", r->valuestring);
  }
  const cJSON *pp = kw(node, "patternProperties"), *pn = kw(node, "propertyNames");
  for (const cJSON *m = x->child; m; m = m->next) {
    size_t old = path_push(&v->path, m->string, 0);
    bool listed, ok = true, matched = false;
    const cJSON *s = prop_schema(node, m->string, &listed);
    if (!listed && cJSON_IsObject(pp)) {
      for (const cJSON *p = pp->child; p && ok; p = p->next) {
        bool hit;
        if (!val_pattern(p->string, m->string, &hit)) {
          ok = vfail(v, "patternProperties pattern %s cannot be checked", p->string);
        } else if (hit) {
          matched = true;
          ok = val_node(v, p, m, depth + 1);
        }
      }
    }
    if (ok && pn) {
      cJSON *key = cJSON_CreateString(m->string);
      ok = key && val_node(v, pn, key, depth + 1);
      cJSON_Delete(key);
    }
    if (ok && s && (listed || !matched)) {
      if (cJSON_IsFalse(s) && !listed)
        ok = vfail(v, "is not allowed (additionalProperties is false)");
      else
        ok = val_node(v, s, m, depth + 1);
    }
    path_pop(&v->path, old);
    if (!ok) return false;
  }
  return true;
}

static bool val_node(vctx *v, const cJSON *node, const cJSON *x, int depth) {
  if (++v->steps > FM_SCHEMA_MAX_STEPS) return vfail(v, "validation took too many steps");
  if (depth > 4 * FM_SCHEMA_MAX_DEPTH) return vfail(v, "nested deeper than the validator goes");
  if (cJSON_IsTrue(node)) return true;
  if (cJSON_IsFalse(node)) return vfail(v, "the schema is false: no value is allowed");
  if (!cJSON_IsObject(node)) return vfail(v, "the schema is not an object or a boolean");
  int vt = value_type(x), et = explicit_types(node);
  if (et >= 0 && !(et & vt)) return vfail(v, "has the wrong type");
  const cJSON *c = kw(node, "const");
  if (c && !json_equal(c, x)) return vfail(v, "is not the const value");
  const cJSON *en = kw(node, "enum");
  if (cJSON_IsArray(en)) {
    bool any = false;
    const cJSON *m;
    cJSON_ArrayForEach(m, en) any = any || json_equal(m, x);
    if (!any) return vfail(v, "is not one of the enum values");
  }
  bool ok = true;
  if (vt & T_NUM) ok = val_number(v, node, x->valuedouble);
  if (vt == T_STR) ok = val_string(v, node, x->valuestring);
  if (vt == T_ARR) ok = val_array(v, node, x, depth);
  if (vt == T_OBJ) ok = val_object(v, node, x, depth);
  if (!ok) return false;
  const cJSON *ref = kw(node, "$ref");
  if (cJSON_IsString(ref)) {
    const cJSON *t = ref_resolve(v->root, ref->valuestring);
    if (!t) return vfail(v, "$ref %s does not resolve", ref->valuestring);
    if (!val_node(v, t, x, depth + 1)) return false;
  }
  const cJSON *s;
  cJSON_ArrayForEach(s, kw(node, "allOf")) if (!val_node(v, s, x, depth + 1)) return false;
  const cJSON *any = kw(node, "anyOf");
  if (cJSON_IsArray(any)) {
    bool hit = false;
    v->quiet++;
    cJSON_ArrayForEach(s, any) if (!hit && val_node(v, s, x, depth + 1)) hit = true;
    v->quiet--;
    if (!hit) return vfail(v, "matches no anyOf branch");
  }
  const cJSON *one = kw(node, "oneOf");
  if (cJSON_IsArray(one)) {
    int hits = 0;
    v->quiet++;
    cJSON_ArrayForEach(s, one) hits += val_node(v, s, x, depth + 1);
    v->quiet--;
    if (hits != 1) return vfail(v, "matches %d oneOf branches, not exactly one", hits);
  }
  const cJSON *no = kw(node, "not");
  if (no) {
    v->quiet++;
    bool hit = val_node(v, no, x, depth + 1);
    v->quiet--;
    if (hit) return vfail(v, "matches the schema under not");
  }
  return true;
}

/* Validates against a subschema of root (quietly when e is NULL). */
static bool val_sub(const cJSON *root, const cJSON *node, const cJSON *x, fm_schema_err *e) {
  vctx v = {.root = root, .e = e};
  path_set(&v.path, "$");
  return val_node(&v, node, x, 0);
}

bool fm_schema_validate(const cJSON *schema, const cJSON *value, fm_schema_err *e) {
  return val_sub(schema, schema, value, e);
}

/* ---------------------------------------------------------------- formats */

static const char *const known_formats[] = {
    "date",          "time", "date-time", "email", "uri",      "url",      "iri", "uri-reference",
    "iri-reference", "uuid", "ipv4",      "ipv6",  "hostname", "duration", NULL};

static bool fmt_known(const char *fmt) {
  for (int i = 0; known_formats[i]; i++)
    if (strcmp(fmt, known_formats[i]) == 0) return true;
  return false;
}

static bool digits(const char *s, int n) {
  for (int i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

static int num2(const char *s) {
  return (s[0] - '0') * 10 + (s[1] - '0');
}

static bool fmt_date_n(const char *s, size_t n) {
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (n != 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
      !digits(s + 8, 2))
    return false;
  int y = num2(s) * 100 + num2(s + 2), m = num2(s + 5), d = num2(s + 8);
  if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return !(m == 2 && d == 29 && !leap);
}

/* HH:MM:SS[.frac] and a zone (ajv-formats 3 wants one: Z or +HH:MM). */
static bool fmt_time(const char *s) {
  if (!digits(s, 2) || s[2] != ':' || !digits(s + 3, 2) || s[5] != ':' || !digits(s + 6, 2))
    return false;
  if (num2(s) > 23 || num2(s + 3) > 59 || num2(s + 6) > 60) return false;
  s += 8;
  if (*s == '.') {
    s++;
    if (!digits(s, 1)) return false;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  if ((*s == 'Z' || *s == 'z') && !s[1]) return true;
  if (*s != '+' && *s != '-') return false;
  s++;
  if (!digits(s, 2) || num2(s) > 23) return false;
  s += 2;
  if (*s == ':') s++;
  return digits(s, 2) && num2(s) <= 59 && !s[2];
}

static bool label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* Dot-separated labels of [a-z0-9-], none starting or ending with '-'. */
static bool fmt_hostname(const char *s, bool need_dot) {
  size_t n = strlen(s), lab = 0;
  bool dot = false;
  if (n == 0 || n > 253) return false;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || s[i] == '.') {
      if (lab == 0 || lab > 63 || s[i - lab] == '-' || s[i - 1] == '-') return false;
      if (i < n) dot = true;
      lab = 0;
    } else if (label_char(s[i])) {
      lab++;
    } else {
      return false;
    }
  }
  return dot || !need_dot;
}

static bool fmt_email(const char *s) {
  const char *at = strrchr(s, '@');
  if (!at || at == s) return false;
  static const char local[] = "!#$%&'*+/=?^_`{|}~-";
  for (const char *p = s; p < at; p++) {
    bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(local, *p) || (*p == '.' && p > s && p[-1] != '.' && p + 1 < at);
    if (!ok || !*p) return false;
  }
  return fmt_hostname(at + 1, true);
}

static bool fmt_uri(const char *s, bool reference) {
  const char *p = s;
  for (const char *q = s; *q; q++)
    if ((unsigned char)*q <= ' ' || *q == '"' || *q == '<' || *q == '>' || *q == '\\' ||
        *q == '^' || *q == '`' || *q == '{' || *q == '|' || *q == '}')
      return false;
  if (reference) return true;
  if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) return false;
  while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
         *p == '+' || *p == '.' || *p == '-')
    p++;
  return *p == ':' && p[1];
}

static bool fmt_uuid(const char *s) {
  if (strncmp(s, "urn:uuid:", 9) == 0) s += 9;
  if (strlen(s) != 36) return false;
  for (int i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : fm_hex_digits(s + i, 1) < 0) return false;
  }
  return true;
}

static bool fmt_ipv4(const char *s) {
  for (int part = 0; part < 4; part++) {
    int n = 0, v = 0;
    while (s[n] >= '0' && s[n] <= '9' && n < 4)
      v = v * 10 + (s[n++] - '0');
    if (n == 0 || n > 3 || v > 255 || (n > 1 && s[0] == '0')) return false;
    s += n;
    if (part < 3 && *s++ != '.') return false;
  }
  return *s == 0;
}

static bool fmt_ipv6(const char *s) {
  int colons = 0;
  size_t n = strlen(s);
  if (n < 2 || n > 45) return false;
  for (const char *p = s; *p; p++) {
    if (*p == ':')
      colons++;
    else if (fm_hex_digits(p, 1) < 0 && *p != '.')
      return false;
  }
  return colons >= 2 && colons <= 7;
}

static bool fmt_duration(const char *s) {
  if (*s++ != 'P' || !*s) return false;
  for (; *s; s++)
    if (!strchr("0123456789.,YMWDTHS", *s)) return false;
  return true;
}

static bool fmt_valid(const char *fmt, const char *s) {
  if (!strcmp(fmt, "date")) return fmt_date_n(s, strlen(s));
  if (!strcmp(fmt, "time")) return fmt_time(s);
  if (!strcmp(fmt, "date-time")) {
    size_t n = strlen(s);
    return n > 11 && (s[10] == 'T' || s[10] == 't' || s[10] == ' ') && fmt_date_n(s, 10) &&
           fmt_time(s + 11);
  }
  if (!strcmp(fmt, "email")) return fmt_email(s);
  if (!strcmp(fmt, "uri") || !strcmp(fmt, "iri")) return fmt_uri(s, false);
  if (!strcmp(fmt, "url"))
    return (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) || !strncmp(s, "ftp://", 6)) &&
           fmt_uri(s, false);
  if (!strcmp(fmt, "uri-reference") || !strcmp(fmt, "iri-reference")) return fmt_uri(s, true);
  if (!strcmp(fmt, "uuid")) return fmt_uuid(s);
  if (!strcmp(fmt, "ipv4")) return fmt_ipv4(s);
  if (!strcmp(fmt, "ipv6")) return fmt_ipv6(s);
  if (!strcmp(fmt, "hostname")) return fmt_hostname(s, false);
  if (!strcmp(fmt, "duration")) return fmt_duration(s);
  return true; /* unknown formats are not checked (ajv with strict: false ignores them too) */
}

/* Writes (unquoted) a string of a known format into b. */
static void fmt_gen(const char *fmt, fm_rng *r, fm_buf *b) {
  int y = 2020 + (int)fm_rng_below(r, 7), mo = 1 + (int)fm_rng_below(r, 12);
  int d = 1 + (int)fm_rng_below(r, 28), h = (int)fm_rng_below(r, 24);
  int mi = (int)fm_rng_below(r, 60), s = (int)fm_rng_below(r, 60);
  if (!strcmp(fmt, "date")) {
    fm_buf_printf(b, "%04d-%02d-%02d", y, mo, d);
  } else if (!strcmp(fmt, "time")) {
    fm_buf_printf(b, "%02d:%02d:%02dZ", h, mi, s);
  } else if (!strcmp(fmt, "date-time")) {
    fm_buf_printf(b, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, h, mi, s);
  } else if (!strcmp(fmt, "email")) {
    fm_buf_printf(b, "%s@%s.com", fm_gen_word(r), fm_gen_word(r));
  } else if (!strcmp(fmt, "uuid")) {
    uint64_t a = fm_rng_next(r), c = fm_rng_next(r);
    fm_buf_printf(b, "%08x-%04x-4%03x-%x%03x-%012llx", (unsigned)(a >> 32),
                  (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff, 8 + (unsigned)(c >> 62),
                  (unsigned)(c >> 48) & 0xfff, (unsigned long long)(c & 0xffffffffffffULL));
  } else if (!strcmp(fmt, "ipv4")) {
    fm_buf_printf(b, "192.168.%d.%d", (int)fm_rng_below(r, 256), 1 + (int)fm_rng_below(r, 254));
  } else if (!strcmp(fmt, "ipv6")) {
    fm_buf_printf(b, "2001:db8:0:0:0:0:0:%x", 1 + (unsigned)fm_rng_below(r, 0xfffe));
  } else if (!strcmp(fmt, "hostname")) {
    fm_buf_printf(b, "%s.example.com", fm_gen_word(r));
  } else if (!strcmp(fmt, "duration")) {
    fm_buf_printf(b, "P%dD", 1 + (int)fm_rng_below(r, 30));
  } else if (!strcmp(fmt, "uri-reference") || !strcmp(fmt, "iri-reference")) {
    fm_buf_printf(b, "/%s/%s", fm_gen_word(r), fm_gen_word(r));
  } else { /* uri, url, iri */
    fm_buf_printf(b, "https://%s.example.com/%s", fm_gen_word(r), fm_gen_word(r));
  }
}

/* ---------------------------------------------------------------- the generator */

#define CONJ_MAX 32

/* The subschemas one value must satisfy. */
typedef struct conj {
  const cJSON *p[CONJ_MAX];
  int n;
  bool never; /* a false schema is among them */
  bool risky; /* oneOf or not: validate the value and retry */
} conj;

typedef struct gctx {
  const cJSON *root;
  const ntab *tab;
  fm_rng rng;
  fm_buf *out;
  fm_schema_err *e;
  spath vpath; /* where in the value, for messages */
  long steps;
  int refs;
  bool lean_forced;
  bool hard;      /* a bound was hit: stop, do not retry */
  int enum_sweep; /* >= 0: enums take this value index (mod n) instead of a random one */
  int vary;       /* a retry: numbers also try fractions and negatives, to split oneOf branches */
} gctx;

static bool gfail(gctx *g, bool hard, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool gfail(gctx *g, bool hard, const char *fmt, ...) {
  if (hard) g->hard = true;
  if (g->e) {
    snprintf(g->e->path, sizeof(g->e->path), "%s", g->vpath.s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->e->message, sizeof(g->e->message), fmt, ap);
    va_end(ap);
  }
  return false;
}

/* A node that holds nothing but a $ref (and annotations) adds only its target. */
static bool only_ref(const cJSON *node) {
  for (const cJSON *k = node->child; k; k = k->next)
    if (strcmp(k->string, "$ref") && !is_annotation(k->string)) return false;
  return true;
}

static bool conj_add(gctx *g, conj *c, const cJSON *node) {
  if (!node || cJSON_IsTrue(node)) return true;
  if (!cJSON_IsObject(node)) {
    c->never = true;
    return true;
  }
  for (int i = 0; i < c->n; i++)
    if (c->p[i] == node) return true;
  const cJSON *ref = kw(node, "$ref");
  if (!ref || !only_ref(node)) {
    if (c->n == CONJ_MAX)
      return gfail(g, true, "more than %d subschemas apply to one value", CONJ_MAX);
    c->p[c->n++] = node;
  }
  if (ref) {
    if (++g->refs > FM_SCHEMA_MAX_REFS)
      return gfail(g, true, "more than %d $ref expansions", FM_SCHEMA_MAX_REFS);
    const cJSON *t = cJSON_IsString(ref) ? ref_resolve(g->root, ref->valuestring) : NULL;
    if (!t) return gfail(g, true, "a $ref does not resolve");
    if (!conj_add(g, c, t)) return false;
  }
  const cJSON *x;
  cJSON_ArrayForEach(x, kw(node, "allOf")) if (!conj_add(g, c, x)) return false;
  if (kw(node, "not") || kw(node, "oneOf")) c->risky = true;
  return true;
}

static int conj_height(const gctx *g, const conj *c) {
  int h = c->never ? H_INF : 0;
  for (int i = 0; i < c->n; i++)
    h = imax(h, height(g->tab, c->p[i]));
  return h;
}

/* Picks a branch of every anyOf/oneOf among the parts (and the parts those add):
 * one that can end, and when lean the one that ends soonest. */
static bool conj_choose(gctx *g, conj *c, bool lean) {
  static const char *const alts[] = {"anyOf", "oneOf"};
  for (int i = 0; i < c->n; i++) {
    for (int k = 0; k < 2; k++) {
      const cJSON *list = kw(c->p[i], alts[k]), *x;
      if (!cJSON_IsArray(list)) continue;
      int best = H_INF, nbest = 0, nfinite = 0;
      cJSON_ArrayForEach(x, list) {
        int h = height(g->tab, x);
        if (h >= H_INF) continue;
        nfinite++;
        if (h < best) best = h, nbest = 0;
        if (h == best) nbest++;
      }
      if (nfinite == 0) {
        c->never = true;
        return true;
      }
      int pick = (int)fm_rng_below(&g->rng, (uint64_t)(lean ? nbest : nfinite));
      cJSON_ArrayForEach(x, list) {
        int h = height(g->tab, x);
        if (h >= H_INF || (lean && h != best)) continue;
        if (pick-- == 0) break;
      }
      if (!conj_add(g, c, x)) return false;
    }
  }
  return true;
}

static void put_json(fm_buf *b, const cJSON *v) {
  fm_json_write(b, v);
}

/* The shortest decimal that reads back as v. */
static void put_num(fm_buf *b, double v) {
  fm_json_write_number(b, v);
}

static bool conj_valid(const gctx *g, const conj *c, const cJSON *x) {
  for (int i = 0; i < c->n; i++)
    if (!val_sub(g->root, c->p[i], x, NULL)) return false;
  return true;
}

static bool gen_conj(gctx *g, const conj *base, int depth);

static bool gen_enum(gctx *g, const conj *c) {
  for (int i = 0; i < c->n; i++) {
    const cJSON *k = kw(c->p[i], "const");
    if (k) {
      if (!conj_valid(g, c, k)) return gfail(g, false, "the const value breaks another subschema");
      put_json(g->out, k);
      return true;
    }
  }
  for (int i = 0; i < c->n; i++) {
    const cJSON *en = kw(c->p[i], "enum"), *x;
    if (!cJSON_IsArray(en)) continue;
    int n = cJSON_GetArraySize(en), start = 0;
    if (n) start = g->enum_sweep >= 0 ? g->enum_sweep % n : (int)fm_rng_below(&g->rng, (uint64_t)n);
    for (int j = 0; j < n; j++) {
      x = cJSON_GetArrayItem(en, (start + j) % n);
      if (conj_valid(g, c, x)) {
        put_json(g->out, x);
        return true;
      }
    }
    return gfail(g, false, "no enum value satisfies every subschema");
  }
  return false;
}

static void bound_tighten(double *b, bool *ex, double v, bool vex, bool lower) {
  if (lower ? v > *b : v < *b) {
    *b = v;
    *ex = vex;
  } else if (v == *b && vex) {
    *ex = true;
  }
}

/* The k range with lo <= k*s <= hi (exclusive where asked), or false. */
static bool k_range(double lo, bool lox, double hi, bool hix, double s, double *kmin,
                    double *kmax) {
  *kmin = isfinite(lo) ? ceil(lo / s) : -INFINITY;
  *kmax = isfinite(hi) ? floor(hi / s) : INFINITY;
  if (isfinite(lo) && (*kmin * s < lo || (lox && *kmin * s <= lo))) *kmin += 1;
  if (isfinite(hi) && (*kmax * s > hi || (hix && *kmax * s >= hi))) *kmax -= 1;
  return *kmin <= *kmax;
}

static bool gen_number(gctx *g, const conj *c, int types) {
  double lo = -INFINITY, hi = INFINITY, m = 0;
  bool lox = false, hix = false;
  for (int i = 0; i < c->n; i++) {
    const cJSON *p = c->p[i], *x;
    if (cJSON_IsNumber(x = kw(p, "minimum")))
      bound_tighten(&lo, &lox, x->valuedouble, cJSON_IsTrue(kw(p, "exclusiveMinimum")), true);
    if (cJSON_IsNumber(x = kw(p, "maximum")))
      bound_tighten(&hi, &hix, x->valuedouble, cJSON_IsTrue(kw(p, "exclusiveMaximum")), false);
    if (cJSON_IsNumber(x = kw(p, "exclusiveMinimum")))
      bound_tighten(&lo, &lox, x->valuedouble, true, true);
    if (cJSON_IsNumber(x = kw(p, "exclusiveMaximum")))
      bound_tighten(&hi, &hix, x->valuedouble, true, false);
    if (cJSON_IsNumber(x = kw(p, "multipleOf")) && x->valuedouble > 0) {
      double v = x->valuedouble;
      if (m == 0)
        m = v;
      else if (m == floor(m) && v == floor(v) && m * v < 1e15) {
        double a = m, b = v;
        while (b > 0) {
          double t = fmod(a, b);
          a = b;
          b = t;
        }
        m = m / a * v; /* lcm */
      } else if (v > m) {
        m = v;
      }
    }
  }
  bool int_only = !(types & T_FRAC);
  double s = m > 0 ? m : 1;
  if (int_only && s != floor(s)) {
    double j = 1;
    while (j <= 1000 && s * j != floor(s * j))
      j++;
    if (j > 1000) return gfail(g, false, "no integer is a multiple of %.17g", m);
    s = s * j;
  }
  if (!int_only && m == 0 && ((isfinite(lo) && isfinite(hi) && hi - lo <= 10) || g->vary % 2))
    s = 0.25;
  double kmin, kmax;
  bool found = k_range(lo, lox, hi, hix, s, &kmin, &kmax);
  static const double steps[] = {0.5, 0.25, 0.1, 0.01, 0.001, 1e-6};
  for (size_t i = 0; !found && !int_only && m == 0 && i < sizeof(steps) / sizeof(steps[0]); i++) {
    s = steps[i];
    found = k_range(lo, lox, hi, hix, s, &kmin, &kmax);
  }
  if (!found) return gfail(g, false, "no number satisfies the bounds");
  /* A nice window: 0..100 when the range allows, else the 100 steps at its nearer end. */
  double w = ceil(100 / s) > 1000 ? 1000 : ceil(100 / s);
  double a = kmin > 0 ? kmin : kmax < 0 ? kmax - w : (g->vary && g->vary % 4 >= 2) ? -w : 0;
  double b = a + w;
  if (a < kmin) a = kmin;
  if (b > kmax) b = kmax;
  if (fabs(a) > 1e15 || fabs(b) > 1e15) return gfail(g, false, "the number range is too far out");
  double inv = s < 1 && fabs(1 / s - round(1 / s)) < 1e-9 ? round(1 / s) : 0;
  double k0 = a + (double)fm_rng_below(&g->rng, (uint64_t)(b - a) + 1);
  if (g->enum_sweep >= 0) k0 = a + fmod((double)g->enum_sweep, b - a + 1); /* uniqueItems retries */
  for (int t = 0; t < 50; t++) {
    double k = k0 + (t % 2 ? -(t + 1) / 2 : t / 2);
    if (k < kmin || k > kmax) continue;
    double v = inv ? k / inv : k * s;
    if (v == 0) v = 0; /* no -0 */
    bool ok = (lox ? v > lo : v >= lo) && (hix ? v < hi : v <= hi);
    if (m > 0 && (v / m != floor(v / m))) ok = false;
    if (int_only && v != floor(v)) ok = false;
    if (ok) {
      put_num(g->out, v);
      return true;
    }
  }
  return gfail(g, false, "no number satisfies the bounds and multipleOf");
}

/* Plain words: between lo and hi characters (hi < 0: no limit). */
/* Words (plain ASCII: bytes are code points, nothing to escape). */
static void gen_words(fm_rng *r, long lo, long hi, fm_buf *b) {
  size_t start = b->len;
  if (hi == 0) return;
  int n = 1 + (fm_rng_chance(r, 0.5) ? 0 : fm_rng_chance(r, 0.7) ? 1 : 2);
  for (int i = 0; i < n || (long)(b->len - start) < lo; i++) {
    size_t wl;
    const char *w = fm_gen_word_len(r, &wl);
    /* room for the space and the word's whole padded block, copied as one */
    if (b->len + FM_TOKEN_MAX_BYTES + 2 > b->cap && !fm_buf_reserve(b, FM_TOKEN_MAX_BYTES + 1))
      return;
    if (i) b->data[b->len++] = ' ';
    memcpy(b->data + b->len, w, FM_TOKEN_MAX_BYTES);
    b->len += wl;
  }
  if (hi > 0 && (long)(b->len - start) > hi) b->len = start + (size_t)hi;
  if (b->len > start && b->data[b->len - 1] == ' ') b->data[b->len - 1] = 'a';
}

#define MAX_PATTERNS 4

static bool gen_string(gctx *g, const conj *c) {
  const char *fmt = NULL;
  const char *pats[MAX_PATTERNS];
  int np = 0;
  long lo = 0, hi = -1;
  for (int i = 0; i < c->n; i++) {
    const cJSON *p = c->p[i], *x;
    if (cJSON_IsString(x = kw(p, "format")) && !fmt && fmt_known(x->valuestring))
      fmt = x->valuestring;
    if (cJSON_IsString(x = kw(p, "pattern"))) {
      if (np == MAX_PATTERNS) return gfail(g, false, "more than %d patterns on one string", np);
      pats[np++] = x->valuestring;
    }
    long v = num_kw(p, "minLength", 0);
    if (v > lo) lo = v;
    v = num_kw(p, "maxLength", -1);
    if (v >= 0 && (hi < 0 || v < hi)) hi = v;
  }
  if (!fmt && !np) { /* words only: ASCII, so written as they are, quoted */
    g->steps += 16;
    fm_buf_putc(g->out, '"');
    gen_words(&g->rng, lo, hi, g->out);
    fm_buf_putc(g->out, '"');
    return !g->out->oom;
  }
  re_prog *re = np ? malloc(sizeof(*re)) : NULL;
  if (np && (!re || !re_compile(re, pats[0]))) {
    free(re);
    return gfail(g, true, "pattern %s is not supported", pats[0]);
  }
  char tmp_storage[512];
  fm_buf tmp;
  fm_buf_init_with(&tmp, tmp_storage, sizeof(tmp_storage));
  bool ok = false;
  for (int attempt = 0; attempt < FM_SCHEMA_RETRIES && !ok; attempt++) {
    g->steps += 16;
    fm_buf_reset(&tmp);
    if (fmt && !(np && attempt % 2))
      fmt_gen(fmt, &g->rng, &tmp);
    else if (np && (lo > 0 || hi >= 0) && attempt % 2 == 0) {
      /* a length target in [lo, hi] (or lo + 8), met by stretching repeats */
      long top = hi >= 0 ? hi : lo + 8,
           want = lo + (long)fm_rng_below(&g->rng, (uint64_t)(top - lo + 1));
      long slack = want - (long)re_minlen(re, re->root);
      re_gen(re, re->root, &g->rng, &tmp, false, slack > 0 ? &slack : NULL);
    } else if (np)
      re_gen(re, re->root, &g->rng, &tmp, attempt >= FM_SCHEMA_RETRIES / 2, NULL);
    else
      gen_words(&g->rng, lo, hi, &tmp);
    fm_buf_putc(&tmp, 0);
    if (tmp.oom) break;
    const char *s = tmp.data;
    long n = (long)utf8_count(s);
    ok = n >= lo && (hi < 0 || n <= hi) && (!fmt || fmt_valid(fmt, s));
    for (int i = 0; i < np && ok; i++) {
      bool hit;
      ok = val_pattern(pats[i], s, &hit) && hit;
    }
    if (ok) fm_buf_json_strn(g->out, s, tmp.len - 1);
  }
  fm_buf_free(&tmp);
  free(re);
  return ok ||
         gfail(g, false, "no string found that satisfies format, pattern and length together");
}

/* The conjunction for item i of an array under c. */
static bool item_conj(gctx *g, const conj *c, int i, conj *ic) {
  memset(ic, 0, sizeof(*ic));
  for (int k = 0; k < c->n; k++)
    if (!conj_add(g, ic, item_schema(c->p[k], i))) return false;
  return true;
}

static bool gen_array(gctx *g, const conj *c, int depth, bool lean) {
  long lo = 0, hi = FM_SCHEMA_MAX_ITEMS;
  bool unique = false;
  for (int k = 0; k < c->n; k++) {
    const cJSON *p = c->p[k], *rest, *tuple = tuple_of(p, &rest);
    long v = num_kw(p, "minItems", 0);
    if (v > lo) lo = v;
    v = num_kw(p, "maxItems", -1);
    if (v >= 0 && v < hi) hi = v;
    if (cJSON_IsFalse(rest) && tuple && cJSON_GetArraySize(tuple) < hi)
      hi = cJSON_GetArraySize(tuple);
    unique = unique || cJSON_IsTrue(kw(p, "uniqueItems"));
  }
  if (lo > hi) return gfail(g, false, "minItems is above maxItems");
  long top = lo + 3 < hi ? lo + 3 : hi;
  long n = lean ? lo : lo + (long)fm_rng_below(&g->rng, (uint64_t)(top - lo + 1));
  size_t st[FM_SCHEMA_MAX_ITEMS], en[FM_SCHEMA_MAX_ITEMS];
  int sweep = g->enum_sweep;
  fm_buf_putc(g->out, '[');
  for (long i = 0; i < n; i++) {
    conj ic;
    if (!item_conj(g, c, (int)i, &ic)) return false;
    if (ic.never || conj_height(g, &ic) >= H_INF) {
      if (i < lo) return gfail(g, false, "item %ld cannot be generated", i);
      break;
    }
    size_t mark = g->out->len, old = path_push(&g->vpath, NULL, (int)i);
    bool ok = false;
    /* Under uniqueItems a repeat is retried; from the second try on, enums are
     * swept in order (enum_sweep) so a small enum still yields distinct values. */
    for (int attempt = 0; attempt < (unique ? 2 * FM_SCHEMA_RETRIES : 1) && !ok; attempt++) {
      g->out->len = mark;
      if (i) fm_buf_putc(g->out, ',');
      st[i] = g->out->len;
      g->enum_sweep = attempt ? attempt - 1 : sweep;
      if (!gen_conj(g, &ic, depth + 1)) break;
      en[i] = g->out->len;
      ok = true;
      for (long j = 0; j < i && unique && ok; j++)
        if (en[j] - st[j] == en[i] - st[i] &&
            memcmp(g->out->data + st[j], g->out->data + st[i], en[i] - st[i]) == 0)
          ok = false;
    }
    g->enum_sweep = sweep;
    path_pop(&g->vpath, old);
    if (g->hard) return false;
    if (!ok) {
      g->out->len = mark;
      if (i < lo) return gfail(g, false, "not enough distinct items for uniqueItems");
      break;
    }
  }
  fm_buf_putc(g->out, ']');
  return true;
}

static bool name_in(const char *const *names, int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (strcmp(names[i], s) == 0) return true;
  return false;
}

#define MAX_PROPS 256

static bool gen_object(gctx *g, const conj *c, int depth, bool lean) {
  const char *names[MAX_PROPS];
  int nn = 0;
  bool record = true, closed = false;
  const cJSON *x;
  for (int k = 0; k < c->n; k++) {
    const cJSON *p = c->p[k], *props = kw(p, "properties");
    if (props) record = false;
    if (cJSON_IsFalse(kw(p, "additionalProperties"))) closed = true;
    cJSON_ArrayForEach(x, props) {
      if (nn < MAX_PROPS && !name_in(names, nn, x->string)) names[nn++] = x->string;
    }
  }
  for (int k = 0; k < c->n; k++) {
    cJSON_ArrayForEach(x, kw(c->p[k], "required")) {
      if (cJSON_IsString(x) && nn < MAX_PROPS && !name_in(names, nn, x->valuestring))
        names[nn++] = x->valuestring;
    }
  }
  fm_buf_putc(g->out, '{');
  int written = 0;
  for (int i = 0; i < nn; i++) {
    bool req = false;
    for (int k = 0; k < c->n && !req; k++) {
      cJSON_ArrayForEach(x, kw(c->p[k], "required")) {
        if (cJSON_IsString(x) && strcmp(x->valuestring, names[i]) == 0) req = true;
      }
    }
    conj pc;
    pc.n = 0, pc.never = pc.risky = false;
    for (int k = 0; k < c->n; k++)
      if (!conj_add(g, &pc, prop_schema(c->p[k], names[i], NULL))) return false;
    if (!req && (lean || pc.never || conj_height(g, &pc) >= H_INF ||
                 !fm_rng_chance(&g->rng, FM_SCHEMA_OPTIONAL_P)))
      continue;
    if (pc.never) return gfail(g, false, "required property \"%s\" is not allowed", names[i]);
    if (written++) fm_buf_putc(g->out, ',');
    fm_buf_json_str(g->out, names[i]);
    fm_buf_putc(g->out, ':');
    size_t old = path_push(&g->vpath, names[i], 0);
    bool ok = gen_conj(g, &pc, depth + 1);
    path_pop(&g->vpath, old);
    if (!ok) return false;
  }
  /* A record (no properties, values under additionalProperties): a few word keys. */
  bool has_extra = false;
  for (int k = 0; k < c->n; k++) {
    const cJSON *ap = kw(c->p[k], "additionalProperties");
    if (cJSON_IsObject(ap) || kw(c->p[k], "propertyNames")) has_extra = true;
  }
  if (record && has_extra && !closed && !lean) {
    conj vc, kc;
    memset(&vc, 0, sizeof(vc));
    memset(&kc, 0, sizeof(kc));
    for (int k = 0; k < c->n; k++) {
      if (!conj_add(g, &vc, kw(c->p[k], "additionalProperties"))) return false;
      if (!conj_add(g, &kc, kw(c->p[k], "propertyNames"))) return false;
    }
    int extras = conj_height(g, &vc) >= H_INF ? 0 : 1 + (int)fm_rng_below(&g->rng, 3);
    size_t keys[4];
    size_t keylen[4];
    int nk = 0;
    for (int i = 0; i < extras; i++) {
      size_t mark = g->out->len;
      if (written) fm_buf_putc(g->out, ',');
      size_t kat = g->out->len;
      if (kc.n) {
        if (!gen_conj(g, &kc, depth + 1)) return false;
      } else {
        fm_buf_json_str(g->out, fm_gen_word(&g->rng));
      }
      size_t kl = g->out->len - kat;
      bool dup = g->out->data[kat] != '"';
      for (int j = 0; j < nk && !dup; j++)
        dup = keylen[j] == kl && !memcmp(g->out->data + keys[j], g->out->data + kat, kl);
      for (int j = 0; j < nn && !dup; j++)
        dup = strlen(names[j]) + 2 == kl && !memcmp(names[j], g->out->data + kat + 1, kl - 2);
      if (dup) {
        g->out->len = mark;
        continue;
      }
      keys[nk] = kat;
      keylen[nk++] = kl;
      fm_buf_putc(g->out, ':');
      if (!gen_conj(g, &vc, depth + 1)) return false;
      written++;
    }
  }
  fm_buf_putc(g->out, '}');
  return true;
}

/* One value under the parts of c (branches already chosen). */
static bool gen_typed(gctx *g, const conj *c, int depth, bool lean) {
  for (int i = 0; i < c->n; i++)
    if (kw(c->p[i], "const") || kw(c->p[i], "enum")) return gen_enum(g, c);
  int types = T_ALL, inferred = 0;
  bool explicit = false;
  for (int i = 0; i < c->n; i++) {
    int t = explicit_types(c->p[i]);
    if (t >= 0) {
      types &= t;
      explicit = true;
    } else {
      int n = node_types(c->p[i]);
      if (n != T_ALL) inferred |= n;
    }
  }
  if (!explicit) types = inferred ? inferred : T_ALL;
  if (types == 0) return gfail(g, false, "the subschemas allow no common type");
  if (types == T_ALL) types = T_STR | T_NUM | T_BOOL; /* {}: anything, so a plain scalar */
  int kinds[6], nk = 0;
  static const int order[] = {T_NULL, T_BOOL, T_NUM, T_STR, T_ARR, T_OBJ};
  for (int i = 0; i < 6; i++)
    if (types & order[i]) kinds[nk++] = order[i];
  int first;
  if (lean || nk == 1) {
    first = 0;
  } else if (types & T_NULL) {
    first = fm_rng_chance(&g->rng, FM_SCHEMA_NULL_P)
                ? 0
                : 1 + (int)fm_rng_below(&g->rng, (uint64_t)(nk - 1));
  } else {
    first = (int)fm_rng_below(&g->rng, (uint64_t)nk);
  }
  /* The kind drawn, and should it fail (say an object whose required parts
   * recurse) the others in order. */
  size_t start = g->out->len;
  for (int t = 0; t < nk; t++) {
    int kind = kinds[t == 0 ? first : (t <= first ? t - 1 : t)];
    g->out->len = start;
    bool ok;
    switch (kind) {
    case T_NULL:
      fm_buf_puts(g->out, "null");
      return true;
    case T_BOOL:
      fm_buf_puts(g->out, fm_rng_chance(&g->rng, 0.5) ? "true" : "false");
      return true;
    case T_NUM:
      ok = gen_number(g, c, types);
      break;
    case T_STR:
      ok = gen_string(g, c);
      break;
    case T_ARR:
      ok = gen_array(g, c, depth, lean);
      break;
    default:
      ok = gen_object(g, c, depth, lean);
      break;
    }
    if (ok || g->hard) return ok;
  }
  return false;
}

/* The bounds every value's generation checks first. */
static bool gen_guard(gctx *g, int depth) {
  if (++g->steps > FM_SCHEMA_MAX_STEPS)
    return gfail(g, true, "generation took more than %d steps", FM_SCHEMA_MAX_STEPS);
  if (depth > FM_SCHEMA_MAX_DEPTH)
    return gfail(g, true, "the value nests deeper than %d", FM_SCHEMA_MAX_DEPTH);
  if (g->out->len > FM_SCHEMA_MAX_OUTPUT)
    return gfail(g, true, "the value is larger than %d bytes", FM_SCHEMA_MAX_OUTPUT);
  return true;
}

static bool gen_lean(const gctx *g, int depth) {
  return g->lean_forced || depth >= FM_SCHEMA_LEAN_DEPTH || g->out->len >= FM_SCHEMA_LEAN_BYTES;
}

static const struct plain *plain_of(const ntab *t, const cJSON *node);
static bool gen_plain(gctx *g, const struct plain *pl, int depth);

static bool gen_conj(gctx *g, const conj *base, int depth) {
  if (!gen_guard(g, depth)) return false;
  if (base->never) return gfail(g, false, "the schema is false here: no value is allowed");
  const struct plain *pl = base->n == 1 && !base->risky ? plain_of(g->tab, base->p[0]) : NULL;
  if (pl) return gen_plain(g, pl, depth);
  bool lean = gen_lean(g, depth);
  bool chooses = base->n > 1 || base->risky;
  for (int i = 0; i < base->n && !chooses; i++)
    chooses = kw(base->p[i], "anyOf") || kw(base->p[i], "oneOf");
  size_t start = g->out->len;
  for (int attempt = 0; attempt < (chooses ? FM_SCHEMA_RETRIES : 1); attempt++) {
    g->out->len = start;
    conj c; /* *base, but only the parts it holds */
    c.n = base->n;
    c.never = base->never;
    c.risky = base->risky;
    memcpy(c.p, base->p, (size_t)base->n * sizeof(c.p[0]));
    int vary = g->vary;
    if (attempt) g->vary = attempt;
    if (!conj_choose(g, &c, lean)) return false;
    if (c.never) continue;
    bool typed = gen_typed(g, &c, depth, lean);
    g->vary = vary;
    if (!typed) {
      if (g->hard || g->out->oom) return false;
      continue;
    }
    if (g->out->oom) return gfail(g, true, "out of memory");
    if (c.n <= 1 && !c.risky) return true;
    cJSON *v = cJSON_ParseWithLength(g->out->data + start, g->out->len - start);
    bool ok = v && conj_valid(g, &c, v);
    cJSON_Delete(v);
    if (ok) return true;
    gfail(g, false, "no value found that satisfies every allOf/anyOf/oneOf/not subschema");
  }
  g->out->len = start;
  return false;
}

/* ---- plain subschemas --------------------------------------------------------
 *
 * Most tool parameters are objects of strings, booleans and such objects,
 * with nothing to choose, merge or validate. A compiled schema marks those
 * subschemas (plain_index) with what generating them reads: the kind, the
 * string bounds, the properties in order with their required flags. The
 * generator writes them straight from that, drawing from the generator in
 * exactly the order gen_conj would (gen_object, gen_typed, gen_string), so
 * the value is the same byte for byte; unit.schema checks it across the
 * corpus. */
typedef struct pprop {
  const char *name;
  const struct plain *pl; /* its subschema's record */
  bool req;
} pprop;

typedef struct plain {
  int kind;    /* T_STR, T_BOOL or T_OBJ */
  long lo, hi; /* T_STR: minLength, maxLength (-1: none) */
  int n;       /* T_OBJ: its properties, in order */
  pprop props[];
} plain;

/* A sentinel in ntab.pl: looked at, not plain. */
static plain not_plain;

static const plain *plain_of(const ntab *t, const cJSON *node) {
  if (!t->pl || !node) return NULL;
  size_t i = ntab_slot(t, node);
  return t->key[i] && t->pl[i] != &not_plain ? t->pl[i] : NULL;
}

static void plain_free(ntab *t) {
  if (!t->pl) return;
  for (size_t i = 0; i < t->cap; i++)
    if (t->pl[i] != &not_plain) free(t->pl[i]);
  free(t->pl);
  t->pl = NULL;
}

static bool only_keys(const cJSON *node, const char *const *allowed) {
  for (const cJSON *k = node->child; k; k = k->next) {
    bool ok = is_annotation(k->string);
    for (int i = 0; allowed[i] && !ok; i++)
      ok = strcmp(k->string, allowed[i]) == 0;
    if (!ok) return false;
  }
  return true;
}

static const plain *plain_mark(ntab *t, const cJSON *node, int depth);

/* What node is when plain; NULL when it is not (registered nodes only). */
static plain *plain_build(ntab *t, const cJSON *node, int depth) {
  static const char *const str_keys[] = {"type", "minLength", "maxLength", NULL};
  static const char *const bool_keys[] = {"type", NULL};
  static const char *const obj_keys[] = {"type", "properties", "required", "additionalProperties",
                                         NULL};
  const cJSON *type = kw(node, "type");
  if (!cJSON_IsString(type) || depth > FM_SCHEMA_MAX_DEPTH) return NULL;
  int kind = type_bits(type->valuestring);
  if (kind == T_BOOL && only_keys(node, bool_keys)) {
    plain *pl = calloc(1, sizeof(*pl));
    if (pl) pl->kind = T_BOOL;
    return pl;
  }
  if (kind == T_STR && only_keys(node, str_keys)) {
    const cJSON *lo = kw(node, "minLength"), *hi = kw(node, "maxLength");
    if ((lo && !cJSON_IsNumber(lo)) || (hi && !cJSON_IsNumber(hi))) return NULL;
    plain *pl = calloc(1, sizeof(*pl));
    if (!pl) return NULL;
    pl->kind = T_STR;
    pl->lo = num_kw(node, "minLength", 0);
    pl->hi = num_kw(node, "maxLength", -1);
    return pl;
  }
  if (kind != T_OBJ || !only_keys(node, obj_keys)) return NULL;
  const cJSON *props = kw(node, "properties"), *req = kw(node, "required");
  const cJSON *extra = kw(node, "additionalProperties"), *x, *y;
  if (!cJSON_IsObject(props) || (req && !cJSON_IsArray(req)) || (extra && !cJSON_IsBool(extra)))
    return NULL;
  int n = 0;
  cJSON_ArrayForEach(x, props) {
    for (y = props->child; y != x; y = y->next)
      if (strcmp(y->string, x->string) == 0) return NULL; /* a key twice */
    if (!plain_mark(t, x, depth + 1)) return NULL;
    n++;
  }
  cJSON_ArrayForEach(x, req) {
    if (!cJSON_IsString(x) || !cJSON_GetObjectItemCaseSensitive(props, x->valuestring))
      return NULL; /* gen_object would add it with no schema of its own */
  }
  plain *pl = calloc(1, sizeof(*pl) + (size_t)n * sizeof(pprop));
  if (!pl) return NULL;
  pl->kind = T_OBJ;
  pl->n = n;
  int i = 0;
  cJSON_ArrayForEach(x, props) {
    pprop *p = &pl->props[i++];
    p->name = x->string;
    p->pl = plain_mark(t, x, depth + 1); /* marked above: a lookup now */
    cJSON_ArrayForEach(y, req) {
      if (strcmp(y->valuestring, x->string) == 0) p->req = true;
    }
  }
  return pl;
}

static const plain *plain_mark(ntab *t, const cJSON *node, int depth) {
  if (!cJSON_IsObject(node)) return NULL;
  size_t i = ntab_slot(t, node);
  if (!t->key[i]) return NULL;
  if (!t->pl[i]) {
    plain *pl = plain_build(t, node, depth);
    t->pl[i] = pl ? pl : &not_plain;
  }
  return t->pl[i] != &not_plain ? t->pl[i] : NULL;
}

/* Marks the plain subschemas of a compiled schema's table (none when out of memory). */
static void plain_index(ntab *t) {
  t->pl = calloc(t->cap, sizeof(*t->pl));
  if (!t->pl) return;
  for (size_t k = 0; k < t->n; k++)
    plain_mark(t, t->order[k], 0);
}

/* A plain subschema's value: gen_conj's, without its machinery. */
static bool gen_plain(gctx *g, const plain *pl, int depth) {
  size_t start = g->out->len;
  switch (pl->kind) {
  case T_STR:
    g->steps += 16;
    fm_buf_putc(g->out, '"');
    gen_words(&g->rng, pl->lo, pl->hi, g->out);
    fm_buf_putc(g->out, '"');
    return !g->out->oom;
  case T_BOOL:
    fm_buf_puts(g->out, fm_rng_chance(&g->rng, 0.5) ? "true" : "false");
    break;
  default: {
    bool lean = gen_lean(g, depth);
    int written = 0;
    fm_buf_putc(g->out, '{');
    for (int i = 0; i < pl->n; i++) {
      const pprop *p = &pl->props[i];
      if (!p->req && (lean || !fm_rng_chance(&g->rng, FM_SCHEMA_OPTIONAL_P))) continue;
      if (written++) fm_buf_putc(g->out, ',');
      fm_buf_json_str(g->out, p->name);
      fm_buf_putc(g->out, ':');
      size_t old = path_push(&g->vpath, p->name, 0);
      bool ok = gen_guard(g, depth + 1) && gen_plain(g, p->pl, depth + 1);
      path_pop(&g->vpath, old);
      if (!ok) {
        g->out->len = start;
        return false;
      }
    }
    fm_buf_putc(g->out, '}');
  }
  }
  if (g->out->oom) return gfail(g, true, "out of memory");
  return true;
}

/* Walks the schema for the node table and heights (the check walk, without its rules). */
static bool schema_index(const cJSON *schema, const char *path, ntab *t, fm_schema_err *e,
                         bool rules);

static bool generate(const cJSON *schema, const ntab *t, uint64_t seed, bool lean, fm_buf *out,
                     fm_schema_err *e) {
  gctx g = {.root = schema, .tab = t, .out = out, .e = e, .lean_forced = lean, .enum_sweep = -1};
  fm_rng_seed(&g.rng, fm_mix64(seed ^ 0x5c4e3aULL));
  path_set(&g.vpath, "$");
  size_t start = out->len;
  conj c;
  memset(&c, 0, sizeof(c));
  bool ok = conj_add(&g, &c, schema) && gen_conj(&g, &c, 0);
  if (ok && out->len - start > FM_SCHEMA_MAX_OUTPUT)
    ok = gfail(&g, true, "the value is larger than %d bytes", FM_SCHEMA_MAX_OUTPUT);
  if (!ok) out->len = start;
  return ok;
}

bool fm_schema_generate(const cJSON *schema, uint64_t seed, fm_buf *out, fm_schema_err *e) {
  ntab t;
  bool ok = ntab_init(&t, schema);
  if (!ok && e) err_set(e, NULL, "out of memory");
  ok = ok && schema_index(schema, "", &t, e, false);
  ok = ok && generate(schema, &t, seed, false, out, e);
  ntab_free(&t);
  return ok;
}

void fm_schema_generate_object(uint64_t seed, fm_buf *out) {
  fm_rng r;
  fm_rng_seed(&r, fm_mix64(seed ^ 0x0b1ec7ULL));
  const char *keys[4];
  int n = 1 + (int)fm_rng_below(&r, 4), nk = 0;
  fm_buf_putc(out, '{');
  for (int i = 0; i < n; i++) {
    const char *k = fm_gen_word(&r);
    if (name_in(keys, nk, k)) continue;
    if (nk) fm_buf_putc(out, ',');
    keys[nk++] = k;
    fm_buf_json_str(out, k);
    fm_buf_putc(out, ':');
    switch (fm_rng_below(&r, 3)) {
    case 0:
      fm_buf_json_str(out, fm_gen_word(&r));
      break;
    case 1:
      fm_buf_put_i64(out, (long long)fm_rng_below(&r, 100));
      break;
    default:
      fm_buf_puts(out, fm_rng_chance(&r, 0.5) ? "true" : "false");
      break;
    }
  }
  fm_buf_putc(out, '}');
}

/* ---------------------------------------------------------------- the check */

typedef struct cctx {
  const cJSON *root;
  ntab *t;
  fm_schema_err *e;
  spath path;
  bool rules; /* false: only index the nodes (fm_schema_generate) */
} cctx;

static bool cfail(cctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool cfail(cctx *c, const char *key, const char *fmt, ...) {
  if (!c->e) return false;
  size_t old = key ? path_push(&c->path, key, 0) : c->path.len;
  snprintf(c->e->path, sizeof(c->e->path), "%s", c->path.s);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->e->message, sizeof(c->e->message), fmt, ap);
  va_end(ap);
  path_pop(&c->path, old);
  return false;
}

static bool ck_node(cctx *c, const cJSON *node, int depth);

static bool ck_child(cctx *c, const char *key, int index, const cJSON *node, int depth) {
  size_t old = path_push(&c->path, key, index);
  bool ok = ck_node(c, node, depth);
  path_pop(&c->path, old);
  return ok;
}

/* How many distinct values a schema allows when that is few (enum, const,
 * boolean, null), else -1. */
static int finite_values(const cJSON *root, const cJSON *s) {
  for (int hop = 0; hop < 8 && cJSON_IsObject(s) && kw(s, "$ref") && only_ref(s); hop++) {
    const cJSON *ref = kw(s, "$ref");
    s = cJSON_IsString(ref) ? ref_resolve(root, ref->valuestring) : NULL;
  }
  if (!cJSON_IsObject(s)) return -1;
  if (kw(s, "const")) return 1;
  const cJSON *en = kw(s, "enum");
  if (cJSON_IsArray(en)) return cJSON_GetArraySize(en);
  int t = explicit_types(s);
  if (t > 0 && !(t & ~(T_NULL | T_BOOL))) return ((t & T_BOOL) ? 2 : 0) + ((t & T_NULL) ? 1 : 0);
  return -1;
}

static bool ck_count(cctx *c, const cJSON *node, const char *name) {
  const cJSON *x = kw(node, name);
  if (x && (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble != floor(x->valuedouble) ||
            x->valuedouble > 1e15))
    return cfail(c, name, "%s must be a non-negative integer", name);
  return true;
}

static bool ck_numbers(cctx *c, const cJSON *node, int types) {
  static const char *const nums[] = {"minimum", "maximum", "multipleOf"};
  for (int i = 0; i < 3; i++) {
    const cJSON *x = kw(node, nums[i]);
    if (x && !cJSON_IsNumber(x)) return cfail(c, nums[i], "%s must be a number", nums[i]);
  }
  static const char *const ex[] = {"exclusiveMinimum", "exclusiveMaximum"};
  for (int i = 0; i < 2; i++) {
    const cJSON *x = kw(node, ex[i]);
    if (x && !cJSON_IsNumber(x) && !cJSON_IsBool(x))
      return cfail(c, ex[i], "%s must be a number (or, draft 4, a boolean)", ex[i]);
  }
  const cJSON *mo = kw(node, "multipleOf");
  if (mo && !(mo->valuedouble > 0)) return cfail(c, "multipleOf", "multipleOf must be above 0");
  if (!(types & T_NUM)) return true;
  double lo = -INFINITY, hi = INFINITY;
  bool lox = false, hix = false;
  const char *lok = NULL, *x;
  const cJSON *v;
  if (cJSON_IsNumber(v = kw(node, "minimum"))) {
    bound_tighten(&lo, &lox, v->valuedouble, cJSON_IsTrue(kw(node, "exclusiveMinimum")), true);
    lok = "minimum";
  }
  if (cJSON_IsNumber(v = kw(node, "exclusiveMinimum"))) {
    x = v->valuedouble >= lo ? "exclusiveMinimum" : lok;
    bound_tighten(&lo, &lox, v->valuedouble, true, true);
    lok = x;
  }
  if (cJSON_IsNumber(v = kw(node, "maximum")))
    bound_tighten(&hi, &hix, v->valuedouble, cJSON_IsTrue(kw(node, "exclusiveMaximum")), false);
  if (cJSON_IsNumber(v = kw(node, "exclusiveMaximum")))
    bound_tighten(&hi, &hix, v->valuedouble, true, false);
  if (lo > hi || (lo == hi && (lox || hix)))
    return cfail(c, lok,
                 "no number lies between the lower bound %.17g and the upper bound %.17g: "
                 "lower the minimum or raise the maximum",
                 lo, hi);
  double kmin, kmax;
  if (!(types & T_FRAC) && !k_range(lo, lox, hi, hix, 1, &kmin, &kmax))
    return cfail(c, lok,
                 "no integer lies between %.17g and %.17g: widen the bounds or use type "
                 "number",
                 lo, hi);
  if (cJSON_IsNumber(mo) && isfinite(lo) && isfinite(hi) &&
      !k_range(lo, lox, hi, hix, mo->valuedouble, &kmin, &kmax))
    return cfail(c, "multipleOf",
                 "no multiple of %.17g lies between %.17g and %.17g: widen the "
                 "bounds or change multipleOf",
                 mo->valuedouble, lo, hi);
  return true;
}

static bool ck_strings(cctx *c, const cJSON *node) {
  long mn = num_kw(node, "minLength", 0), mx = num_kw(node, "maxLength", -1);
  if (mn > FM_SCHEMA_MAX_STRING)
    return cfail(c, "minLength", "minLength %ld is above fleetmock's bound of %d characters", mn,
                 FM_SCHEMA_MAX_STRING);
  if (mx >= 0 && mn > mx)
    return cfail(c, "minLength",
                 "minLength %ld is above maxLength %ld: lower one or raise the other", mn, mx);
  const cJSON *f = kw(node, "format");
  if (f && !cJSON_IsString(f)) return cfail(c, "format", "format must be a string");
  const cJSON *pat = kw(node, "pattern");
  if (!pat) return true;
  if (!cJSON_IsString(pat)) return cfail(c, "pattern", "pattern must be a string");
  re_prog *re = malloc(sizeof(*re));
  if (!re) return cfail(c, "pattern", "out of memory");
  bool ok = re_compile(re, pat->valuestring);
  size_t at = re->pos, minlen = ok ? re_minlen(re, re->root) : 0;
  const char *why = re->err;
  free(re);
  if (!ok)
    return cfail(c, "pattern",
                 "pattern not supported: %s (near byte %zu); fleetmock supports literals, classes, "
                 "\\d \\w \\s, groups, | and the quantifiers ? * + {m,n}",
                 why ? why : "syntax error", at);
  if (minlen > FM_SCHEMA_MAX_STRING)
    return cfail(c, "pattern", "the pattern's shortest match is above fleetmock's bound of %d",
                 FM_SCHEMA_MAX_STRING);
  if (mx >= 0 && (long)minlen > mx)
    return cfail(c, "pattern", "the pattern's shortest match (%zu) is longer than maxLength %ld",
                 minlen, mx);
  return true;
}

static bool ck_arrays(cctx *c, const cJSON *node) {
  long mn = num_kw(node, "minItems", 0), mx = num_kw(node, "maxItems", -1);
  if (mn > FM_SCHEMA_MAX_ITEMS)
    return cfail(c, "minItems", "minItems %ld is above fleetmock's bound of %d items", mn,
                 FM_SCHEMA_MAX_ITEMS);
  if (mx >= 0 && mn > mx)
    return cfail(c, "minItems", "minItems %ld is above maxItems %ld: lower one or raise the other",
                 mn, mx);
  const cJSON *items = kw(node, "items"), *prefix = kw(node, "prefixItems");
  if (prefix && !cJSON_IsArray(prefix))
    return cfail(c, "prefixItems", "prefixItems must be an array of schemas");
  const cJSON *rest, *tuple = tuple_of(node, &rest);
  int nt = tuple ? cJSON_GetArraySize(tuple) : 0;
  if (tuple && cJSON_IsFalse(rest) && mn > nt)
    return cfail(c, "minItems",
                 "minItems %ld needs more than the %d tuple items, and no more are "
                 "allowed: lower minItems or allow further items",
                 mn, nt);
  if (cJSON_IsTrue(kw(node, "uniqueItems")) && !tuple && mn > 1) {
    int n = finite_values(c->root, items);
    if (n >= 0 && n < mn)
      return cfail(c, "uniqueItems",
                   "uniqueItems with minItems %ld, but the items allow only %d "
                   "distinct values: lower minItems or allow more values",
                   mn, n);
  }
  return true;
}

static bool ck_objects(cctx *c, const cJSON *node) {
  const cJSON *props = kw(node, "properties"), *req = kw(node, "required"), *r;
  if (props && !cJSON_IsObject(props))
    return cfail(c, "properties", "properties must be an object");
  if (req && !cJSON_IsArray(req)) return cfail(c, "required", "required must be an array of names");
  int i = 0;
  cJSON_ArrayForEach(r, req) {
    if (!cJSON_IsString(r)) return cfail(c, "required", "required must hold property names");
    bool listed;
    if (cJSON_IsFalse(prop_schema(node, r->valuestring, &listed))) {
      if (listed)
        return cfail(c, "required", "required property \"%s\" has the schema false",
                     r->valuestring);
      return cfail(c, "required",
                   "required property \"%s\" is not in properties and additionalProperties is "
                   "false: add it to properties or remove it from required",
                   r->valuestring);
    }
    i++;
  }
  const cJSON *pp = kw(node, "patternProperties"), *p;
  if (pp && !cJSON_IsObject(pp))
    return cfail(c, "patternProperties", "patternProperties must be an object");
  cJSON_ArrayForEach(p, pp) {
    re_prog *re = malloc(sizeof(*re));
    bool ok = re && re_compile(re, p->string);
    free(re);
    if (!ok)
      return cfail(c, "patternProperties", "the patternProperties pattern %s is not supported",
                   p->string);
  }
  return true;
}

static bool ck_values(cctx *c, const cJSON *node) {
  const cJSON *en = kw(node, "enum"), *k = kw(node, "const"), *x;
  if (en) {
    if (!cJSON_IsArray(en)) return cfail(c, "enum", "enum must be an array of values");
    if (cJSON_GetArraySize(en) == 0)
      return cfail(c, "enum", "enum is empty: list at least one value");
    bool any = false;
    cJSON_ArrayForEach(x, en) any = any || val_sub(c->root, node, x, NULL);
    if (!any)
      return cfail(c, "enum",
                   "no enum value fits the rest of this schema (its type or bounds): "
                   "fix the values or the other keywords");
  }
  if (k) {
    fm_schema_err ve;
    if (!val_sub(c->root, node, k, &ve))
      return cfail(c, "const", "the const value does not fit the rest of this schema: %s",
                   ve.message);
  }
  return true;
}

static int ref_types(const cJSON *root, const cJSON *s) {
  for (int hop = 0; hop < 8 && cJSON_IsObject(s) && kw(s, "$ref") && explicit_types(s) < 0; hop++) {
    const cJSON *ref = kw(s, "$ref");
    s = cJSON_IsString(ref) ? ref_resolve(root, ref->valuestring) : NULL;
  }
  if (cJSON_IsFalse(s)) return 0;
  int t = cJSON_IsObject(s) ? explicit_types(s) : -1;
  return t < 0 ? T_ALL : t;
}

static bool ck_rules(cctx *c, const cJSON *node) {
  const cJSON *t = kw(node, "type"), *x;
  if (t) {
    bool ok = cJSON_IsString(t) ? type_bits(t->valuestring) != 0
                                : cJSON_IsArray(t) && cJSON_GetArraySize(t) > 0;
    const cJSON *tl = cJSON_IsArray(t) ? t : NULL;
    cJSON_ArrayForEach(x, tl) ok = ok && cJSON_IsString(x) && type_bits(x->valuestring);
    if (!ok)
      return cfail(c, "type",
                   "type must be one of string, number, integer, boolean, null, object, "
                   "array, or a non-empty list of them");
  }
  int types = node_types(node);
  static const char *const counts[] = {"minLength", "maxLength",     "minItems",
                                       "maxItems",  "minProperties", "maxProperties"};
  for (int i = 0; i < 6; i++)
    if (!ck_count(c, node, counts[i])) return false;
  if (!ck_numbers(c, node, types) || !ck_strings(c, node) || !ck_arrays(c, node) ||
      !ck_objects(c, node) || !ck_values(c, node))
    return false;
  static const char *const lists[] = {"allOf", "anyOf", "oneOf"};
  for (int i = 0; i < 3; i++) {
    const cJSON *l = kw(node, lists[i]);
    if (l && (!cJSON_IsArray(l) || cJSON_GetArraySize(l) == 0))
      return cfail(c, lists[i], "%s must be a non-empty array of schemas", lists[i]);
  }
  int common = explicit_types(node) < 0 ? T_ALL : explicit_types(node);
  cJSON_ArrayForEach(x, kw(node, "allOf")) common &= ref_types(c->root, x);
  if (common == 0)
    return cfail(c, "allOf", "the allOf members (and this schema's type) allow no common type");
  const cJSON *ref = kw(node, "$ref");
  if (ref && (!cJSON_IsString(ref) || !ref_resolve(c->root, ref->valuestring)))
    return cfail(c, "$ref",
                 "$ref %s does not resolve: fleetmock follows \"#\", \"#/$defs/Name\" and "
                 "\"#/definitions/Name\" (JSON pointers to subschemas of this same schema)",
                 cJSON_IsString(ref) ? ref->valuestring : "(not a string)");
  static const char *const maps[] = {"$defs", "definitions"};
  for (int i = 0; i < 2; i++) {
    const cJSON *m = kw(node, maps[i]);
    if (m && !cJSON_IsObject(m))
      return cfail(c, maps[i], "%s must be an object of schemas", maps[i]);
  }
  return true;
}

static bool ck_node(cctx *c, const cJSON *node, int depth) {
  if (cJSON_IsBool(node)) return true;
  if (!cJSON_IsObject(node)) return cfail(c, NULL, "a schema must be an object, true or false");
  if (depth > FM_SCHEMA_MAX_DEPTH)
    return cfail(c, NULL,
                 "subschemas nest deeper than %d here: flatten the schema or move parts "
                 "to $defs",
                 FM_SCHEMA_MAX_DEPTH);
  if (c->t->n >= c->t->max) /* max is FM_SCHEMA_MAX_NODES, or the tree's own node count */
    return cfail(c, NULL, "the schema has more than %d subschemas", FM_SCHEMA_MAX_NODES);
  if (!ntab_add(c->t, node)) return true;
  if (c->rules && !ck_rules(c, node)) return false;
  static const char *const maps[] = {"properties", "$defs", "definitions", "patternProperties"};
  static const char *const lists[] = {"allOf", "anyOf", "oneOf", "prefixItems"};
  static const char *const singles[] = {"additionalProperties", "propertyNames", "not",
                                        "additionalItems"};
  const cJSON *x;
  char key[160];
  for (int i = 0; i < 4; i++) {
    const cJSON *m = kw(node, maps[i]);
    if (!cJSON_IsObject(m)) continue;
    cJSON_ArrayForEach(x, m) {
      snprintf(key, sizeof(key), "%s.%s", maps[i], x->string);
      if (!ck_child(c, key, 0, x, depth + 1)) return false;
    }
  }
  for (int i = 0; i < 4; i++) {
    const cJSON *l = kw(node, lists[i]);
    if (!cJSON_IsArray(l)) continue;
    int k = 0;
    cJSON_ArrayForEach(x, l) {
      snprintf(key, sizeof(key), "%s[%d]", lists[i], k++);
      if (!ck_child(c, key, 0, x, depth + 1)) return false;
    }
  }
  const cJSON *items = kw(node, "items");
  if (cJSON_IsArray(items)) {
    int k = 0;
    cJSON_ArrayForEach(x, items) {
      snprintf(key, sizeof(key), "items[%d]", k++);
      if (!ck_child(c, key, 0, x, depth + 1)) return false;
    }
  } else if (items && !ck_child(c, "items", 0, items, depth + 1)) {
    return false;
  }
  for (int i = 0; i < 4; i++) {
    x = kw(node, singles[i]);
    if (x && !ck_child(c, singles[i], 0, x, depth + 1)) return false;
  }
  return true;
}

static bool schema_index(const cJSON *schema, const char *path, ntab *t, fm_schema_err *e,
                         bool rules) {
  cctx c = {.root = schema, .t = t, .e = e, .rules = rules};
  path_set(&c.path, path);
  if (!schema) return cfail(&c, NULL, "no schema");
  if (!ck_node(&c, schema, 0)) return false;
  heights_solve(t, schema);
  return true;
}

/* ---- compiled schemas, shared ---------------------------------------------- */

/* An accepted schema is compiled once (memo.h): a copy of its tree with its
 * node table, immutable, shared by every request that sends the same schema. */
struct fm_schema {
  fm_memo_entry m; /* first: the memo's view */
  cJSON *tree;
  ntab tab;
};

static fm_memo_entry *schema_slots[FM_SCHEMA_CACHE];
static fm_memo schemas = FM_MEMO_INIT(schema_slots, FM_SCHEMA_CACHE_BYTES);

static size_t tree_bytes(const cJSON *n, int depth) {
  size_t b = 0;
  for (; n; n = n->next) {
    b += sizeof(cJSON) + (n->string ? strlen(n->string) + 1 : 0);
    if (cJSON_IsString(n) && n->valuestring) b += strlen(n->valuestring) + 1;
    if (n->child && depth < 4096) b += tree_bytes(n->child, depth + 1);
    if (depth == 0) break;
  }
  return b;
}

static bool check_tree(const cJSON *schema, const char *path, ntab *t, fm_schema_err *e);

static void schema_free(fm_schema *s) {
  cJSON_Delete(s->tree);
  ntab_free(&s->tab);
  free(s);
}

static void schema_entry_free(fm_memo_entry *e) {
  schema_free((fm_schema *)e);
}

void fm_schema_release(fm_schema *s) {
  if (s) fm_memo_release(&s->m);
}

fm_schema *fm_schema_accept(const cJSON *schema, const char *path, fm_schema_err *e) {
  e->oom = false;
  uint64_t d = fm_json_digest(schema, 0);
  fm_schema *s = (fm_schema *)fm_memo_find(&schemas, d);
  if (s) return s;

  s = calloc(1, sizeof(*s));
  if (s) s->tree = cJSON_Duplicate(schema, true);
  if (!s || !s->tree) {
    if (s) free(s);
    e->oom = true;
    snprintf(e->path, sizeof(e->path), "%s", path);
    snprintf(e->message, sizeof(e->message), "out of memory; retry later");
    return NULL;
  }
  /* The table holds pointers into the copy, so the check runs on the copy. */
  if (!check_tree(s->tree, path, &s->tab, e)) {
    schema_free(s);
    return NULL;
  }
  keys_filter(s->tree, 0);
  plain_index(&s->tab);
  fm_memo_entry_init(&s->m, d,
                     sizeof(*s) + tree_bytes(s->tree, 0) +
                         s->tab.cap * (sizeof(*s->tab.key) + sizeof(*s->tab.h)) +
                         s->tab.max * sizeof(*s->tab.order),
                     schema_entry_free);
  fm_memo_keep(&schemas, &s->m);
  return s;
}

bool fm_schema_emit(const fm_schema *s, uint64_t seed, fm_buf *out, fm_schema_err *e) {
  return generate(s->tree, &s->tab, seed, false, out, e);
}

int fm_schema_plain_count(const fm_schema *s) {
  int n = 0;
  for (size_t i = 0; s->tab.pl && i < s->tab.cap; i++)
    n += s->tab.pl[i] && s->tab.pl[i] != &not_plain;
  return n;
}

const cJSON *fm_schema_tree(const fm_schema *s) {
  return s->tree;
}

void fm_schema_cache_clear(void) {
  fm_memo_clear(&schemas);
}

bool fm_schema_check(const cJSON *schema, const char *path, fm_schema_err *e) {
  fm_schema *s = fm_schema_accept(schema, path, e);
  fm_schema_release(s);
  return s != NULL;
}

/* The check proper; on success *t is the schema's node table (the caller frees it). */
static bool check_tree(const cJSON *schema, const char *path, ntab *t, fm_schema_err *e) {
  spath p;
  path_set(&p, path);
  if (!ntab_init(t, schema)) {
    ntab_free(t);
    memset(t, 0, sizeof(*t));
    err_set(e, &p, "out of memory");
    e->oom = true;
    return false;
  }
  bool ok = schema_index(schema, path, t, e, true);
  if (ok && height(t, schema) >= H_INF) {
    ok = false;
    err_set(e, &p,
            "this schema has no finite value: a required property, minItems or allOf leads "
            "back through $ref with no way out (or to false); make the recursion optional "
            "or nullable, or allow an empty array");
  }
  for (size_t i = 0; ok && i < t->n; i++) {
    int h = height(t, t->order[i]);
    if (h < H_INF && h > FM_SCHEMA_MAX_DEPTH - FM_SCHEMA_LEAN_DEPTH - 2) {
      ok = false;
      err_set(e, &p, "this schema requires values nested %d deep, above fleetmock's bound of %d", h,
              FM_SCHEMA_MAX_DEPTH - FM_SCHEMA_LEAN_DEPTH - 2);
    }
  }
  /* Trial runs: what the rules above cannot see (allOf conflicts, overlapping
   * oneOf branches, not) shows up as a value that does not validate. */
  fm_buf b;
  fm_buf_init(&b);
  for (int s = 0; ok && s <= FM_SCHEMA_CHECK_SEEDS; s++) {
    fm_schema_err ge;
    fm_buf_reset(&b);
    ok = generate(schema, t, (uint64_t)s, s == 0, &b, &ge);
    if (!ok) {
      err_set(e, &p, "fleetmock cannot generate a value for this schema: %s (at %s)", ge.message,
              ge.path);
      break;
    }
    cJSON *v = cJSON_ParseWithLength(b.data, b.len);
    ok = v && val_sub(schema, schema, v, &ge);
    cJSON_Delete(v);
    if (!ok)
      err_set(e, &p, "fleetmock cannot generate a value valid under this schema: %s %s", ge.path,
              ge.message);
  }
  fm_buf_free(&b);
  if (!ok) {
    ntab_free(t);
    memset(t, 0, sizeof(*t));
  }
  return ok;
}

/* ---- grammars --------------------------------------------------------------- */

/* The supported GBNF subset: one rule, `root ::= "a" | "b" | ...`, string
 * literals (with \" \\ \n escapes) as alternatives, each alternative one
 * literal. Reads the literal at *p into out (NULL: just skip it). */
static bool gbnf_literal(const char **p, fm_buf *out) {
  const char *s = *p;
  if (*s != '"') return false;
  for (s++; *s && *s != '"'; s++) {
    char c = *s;
    if (c == '\\') {
      s++;
      c = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
      if (!*s) return false;
    }
    if (out) fm_buf_putc(out, c);
  }
  if (*s != '"') return false;
  *p = s + 1;
  return true;
}

static const char *gbnf_skip(const char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
    s++;
  return s;
}

/* Counts the alternatives, or -1 when the grammar is outside the subset. */
static int gbnf_parse(const char *g, int pick, fm_buf *out) {
  const char *s = gbnf_skip(g);
  if (strncmp(s, "root", 4) != 0) return -1;
  s = gbnf_skip(s + 4);
  if (strncmp(s, "::=", 3) != 0) return -1;
  int n = 0;
  for (;;) {
    s = gbnf_skip(s + (n == 0 ? 3 : 1));
    if (!gbnf_literal(&s, n == pick ? out : NULL)) return -1;
    n++;
    s = gbnf_skip(s);
    if (*s == '\0') return n;
    if (*s != '|') return -1;
  }
}

bool fm_grammar_check(const char *gbnf, const char *path, fm_schema_err *e) {
  if (gbnf_parse(gbnf, -1, NULL) > 0) return true;
  snprintf(e->path, sizeof(e->path), "%s", path);
  snprintf(e->message, sizeof(e->message),
           "fleetmock generates only from grammars of the form root ::= \"yes\" | \"no\" (one "
           "rule of string-literal alternatives); use response_format json_schema for anything "
           "richer");
  return false;
}

bool fm_grammar_generate(const char *gbnf, uint64_t seed, fm_buf *out) {
  int n = gbnf_parse(gbnf, -1, NULL);
  if (n <= 0) return false;
  fm_rng rng;
  fm_rng_seed(&rng, seed);
  gbnf_parse(gbnf, (int)fm_rng_below(&rng, (uint32_t)n), out);
  return true;
}
